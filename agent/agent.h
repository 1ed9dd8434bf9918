/*
 * agent.h -- the modules of the agent process (and its job supervisors).
 *
 * dispatch-agent is split by concern, in the spirit of Redis's ae.c/anet.c.
 * Shared with the metrics sampler (metrics/, a process of its own):
 *   util.h    util.c, log.c, jsonio.c, utf8.c: strings, the log, JSON, UTF-8
 *   proc.h    proc.c: process titles, signal reset, liveness, clocks
 *   spool.h   spool.c: crash-safe files, the job's meta and status files
 *   conn.h    conn.c: libpq, LISTEN/NOTIFY, the dispatch.agent_* calls
 * The agent's own (declared below):
 *   main.c      the poll() event loop
 *   options.c   the command line
 *   names.c     the node-name, resource-type and label-key patterns
 *   idlist.c    Slurm-style id lists ("gpu[0-3],n[01-02]")
 *   workdir.c   choosing, creating and locking the spool directory
 *   register.c  the agent_register payload and its reply
 *   assign.c    a job's assignment, parsed once for files, env and runner
 *   files.c     the job's configuration files in its work directory
 *   artefacts.c a build job's artefacts: its flow's list checked, inputs written, outputs read
 *   env.c       the job environment (no libpq variables, DISPATCH_* added)
 *   inputs.c    a job's flow dir: $DISPATCH_INPUTS, $DISPATCH_RESULT, $DISPATCH_SCRATCH
 *   result.c    reading the result a job left, as the job user, for its finish
 *   scratch.c   the groups' scratch dirs: made for their jobs, removed when told
 *   jobuser.c   the OS user jobs run as (--job-user): checks, switching, kill, cleanup
 *   runner.c    the per-job supervisor (like slurmstepd) and its signals
 *   jobs.c      the agent's table of jobs: adopt, start, cancel, reap
 *   jobs_report.c  the jobs' way back: output, results, the history lines
 *   jobs_artefacts.c  a build job's inputs fetched before it starts, outputs stored after
 *   history.c   the agent's own record of jobs and presence, one JSON line each
 *   control.c, signal_cmd.c  continuations: wait and signal requests (control.h)
 *   fixpoint.c, iterate_cmd.c  `dispatch-agent iterate`: a build cycle to its fixed point (fixpoint.h)
 * Errors follow util.h: -1 and a filled error buffer, or a CallResult.
 */
#ifndef AGENT_H
#define AGENT_H

#include "util.h"
#include "proc.h"
#include "spool.h"
#include "conn.h"
#include "digest.h"

#include <sys/types.h>

#define AGENT_HEARTBEAT_MS 10000	/* until the server says otherwise */
#define AGENT_KILL_GRACE_MS 10000	/* SIGTERM to SIGKILL, until the server says otherwise */

/* ---- options.c ---- */

typedef struct Resource
{
	char	   *type;
	StrList		ids;
} Resource;

typedef struct Options
{
	const char *dbname;
	const char *node;
	const char *workdir;
	const char *history_file;	/* NULL: <workdir>/history.jsonl */
	Resource   *res;
	int			nres;
	StrList		amounts;		/* "type=N" */
	StrList		labels;			/* "key=value" */
	int			allow_root;
	int64_t		heartbeat_ms;	/* 0: from the server */
	int64_t		kill_grace_ms;	/* 0: from the server */
	int			keep_workdirs;
	int64_t		metrics_interval_s; /* 0: no metrics */
	int64_t		metrics_spool_kb;	/* bound of the metrics queue */
	const char *plugin_dir;		/* NULL: no plugins */
	int			print_metrics;
	const char *job_user;		/* NULL: none (then insecure_jobs must be set) */
	int			insecure_jobs;	/* --insecure-run-jobs-as-agent */
	StrList		watches;		/* (workspace, absolute dir) pairs, --watch */
	StrList		follows;		/* (workspace, glob) pairs, --follow */
	int64_t		watch_settle_ms;	/* quiet time before a watched file is looked at */
} Options;

void		options_parse(int argc, char **argv, Options *o);
void		options_add_defaults(Options *o);
void		options_require_job_user(const Options *o);
void		options_die_usage(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- names.c ---- */

int			names_node_ok(const char *s);
int			names_type_ok(const char *s);
int			names_label_key_ok(const char *s);
int			names_workspace_ok(const char *s);

/* ---- idlist.c ---- */

#define IDLIST_MAX 4096			/* most ids one list may expand to */

int			idlist_parse(const char *spec, StrList *out, char *err, size_t errlen);

/* ---- workdir.c ---- */

int			workdir_setup(const char *workdir, const char *node, char *out, size_t outlen,
						  char *err, size_t errlen);

/* ---- register.c ---- */

int			register_node(Conn *c, const Options *o, int listen, int64_t *heartbeat_ms,
						  int64_t *kill_grace_ms);

/* ---- assign.c ---- */

typedef struct Assignment
{
	JobSpec		spec;			/* ids, command, timeout (strings as long as the row) */
	json_t	   *env;			/* the "env" map; NULL: none */
	json_t	   *resources;		/* the allocated resources; NULL: none */
	json_t	   *files;			/* the rendered files; NULL: none */
	json_t	   *flow;			/* inputs, group, artefacts (inputs.c); NULL: none */
} Assignment;

int			assign_parse(const JobSpec *spec, Assignment *a, char *err, size_t errlen);
void		assign_free(Assignment *a);

/* ---- files.c ---- */

int			files_path_ok(const char *path);
int			files_open_parent(const char *dir, const char *path, int create, const char **base,
							  char *err, size_t errlen);
int			files_create(const char *dir, const char *path, char *err, size_t errlen);
int			files_put(int fd, const char *dir, const char *path, const char *data, size_t len,
					  mode_t mode, char *err, size_t errlen);
int			files_write(const char *workdir, const Assignment *a, char *err, size_t errlen);

/* ---- artefacts.c ---- */

#define ARTEFACTS_MAX 10000		/* most inputs, and most outputs, of one build job */
#define ARTEFACT_PATH_MAX 1024	/* longest artefact path */
#define ARTEFACT_BLOB_MAX 1073741819	/* most bytes of one artefact: a bytea's, 1 GB less its header */

/* An output read for agent_store_output: its content (in raw, after the reader's header) and SHA-256. */
typedef struct ArtefactOutput
{
	StrBuf		raw;			/* what the reading child sent */
	const char *data;			/* the content, in raw */
	size_t		len;
	char		sha256[DIGEST_HEX_LEN + 1];
} ArtefactOutput;

int			artefacts_check(const json_t *art, char *err, size_t errlen);
int			artefacts_put_input(const char *workdir, const json_t *input, const char *data, size_t len,
								char *err, size_t errlen);
int			artefacts_read_output(const char *workdir, const char *path, int64_t max,
								  ArtefactOutput *out, char *why, size_t whylen);
void		artefacts_output_free(ArtefactOutput *out);

/* ---- env.c ---- */

void		env_set(StrList *env, const char *name, const char *value);
int			env_build(char *const *base, const Assignment *a, const char *node,
					  const char *workdir, StrList *out, char *err, size_t errlen);

/* ---- inputs.c ---- */

#define INPUTS_FILE_MAX 255		/* longest input file name */

int			inputs_flow_dir(const char *workdir, char *out, size_t len);
int			inputs_prepare(const char *workdir, const Assignment *a, const char *spool,
						   StrList *env, char *err, size_t errlen);
int			inputs_write(const char *workdir, const Assignment *a, char *err, size_t errlen);

/* ---- result.c ---- */

#define RESULT_MAX (1024 * 1024)	/* most bytes of a result file (the server's cap) */
#define RESULT_ERROR_MAX 1000	/* longest result_error the server takes */

int			result_read_file(const char *path, StrBuf *out, char *why, size_t whylen);
int			result_load(const char *jobdir, json_t **value, char *why, size_t whylen);
size_t		result_put_finish(StrBuf *sb, const char *jobdir);

/* ---- scratch.c ---- */

int			scratch_key_ok(const char *key);
int			scratch_prepare(const char *spool, const char *key, char *path, size_t len,
							char *err, size_t errlen);
void		scratch_queue(const char *key);
int			scratch_remove(const char *spool, const char *key, int64_t *bytes,
						   char *err, size_t errlen);
void		scratch_process(Conn *c, const char *node, const char *spool);

/* ---- jobuser.c ---- */

typedef struct JobUser
{
	const char *name;			/* NULL: jobs run as the agent's own user */
	uid_t		uid;
	gid_t		gid;
	gid_t	   *groups;			/* supplementary groups (initgroups' list) */
	int			ngroups;
} JobUser;

int			jobuser_check_ids(const char *name, uid_t uid, uid_t agent_uid, char *err, size_t errlen);
int			jobuser_missing_caps(uint64_t mask, char *out, size_t outlen);
int			jobuser_can_search(const JobUser *u, uid_t owner, gid_t group, mode_t mode);
int			jobuser_init(const char *name, char *err, size_t errlen);
const JobUser *jobuser_get(void);
int			jobuser_check_spool(const char *dir, char *err, size_t errlen);
int			jobuser_enter(char *err, size_t errlen);
int			jobuser_give(const char *path, char *err, size_t errlen);
int			jobuser_kill(pid_t pid, int sig);
int			jobuser_remove_tree(const char *dir, char *err, size_t errlen);
int			jobuser_run(int (*fn) (void *arg, int fd), void *arg, size_t max, int64_t timeout_ms,
						StrBuf *out, char *err, size_t errlen);
int			jobuser_empty_dirs(const StrList *dirs, int64_t *bytes, char *err, size_t errlen);

/* ---- runner.c ---- */

int			runner_kill_session(pid_t sid);
int			runner_spawn(const char *jobdir, const char *workdir, const Assignment *a,
						 char *const *envp, int64_t kill_grace_ms, pid_t *pid,
						 char *err, size_t errlen);

/* ---- history.c ---- */

void		history_put_time(StrBuf *sb, int64_t unix_ms);
void		history_begin(StrBuf *sb, const char *event, const char *node);
int			history_append(const char *path, StrBuf *sb, char *err, size_t errlen);

/* ---- jobs.c, jobs_report.c, jobs_artefacts.c ---- */

typedef struct AgentConf
{
	const char *node;
	const char *workdir;		/* contains jobs/ */
	int64_t		kill_grace_ms;
	int			keep_workdirs;
	const char *history_file;	/* the agent's own record; NULL: none */
} AgentConf;

int			jobs_init(const AgentConf *conf, char *err, size_t errlen);
void		jobs_shutdown(void);
int			jobs_inotify_fd(void);
void		jobs_inotify_read(void);
void		jobs_reap(void);
void		jobs_check_alive(void);
json_t	   *jobs_info_json(void);
void		jobs_resume_all(void);
void		jobs_on_poll_row(const PollRow *row, void *arg);
void		jobs_pump(Conn *c, int all);
void		jobs_record_ended(int connected);
void		jobs_abandon_all(void);
int			jobs_running(void);
int			jobs_count(void);
int			jobs_want_pump(int64_t *deadline);
void		jobs_fetch(Conn *c);
int			jobs_fetching(void);

#endif							/* AGENT_H */
