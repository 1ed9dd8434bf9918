/*
 * agent.h -- the one header shared by the modules of dispatch-agent.
 *
 * dispatch-agent is split by concern, in the spirit of Redis's ae.c/anet.c:
 *   util.c    allocation that aborts on OOM, growable strings and string lists, clocks
 *   log.c     one timestamped line per event on stderr
 *   idlist.c  Slurm-style id lists ("gpu[0-3],n[01-02]")
 *   json.c    a small JSON reader (replies, job env/resources) and an escaping writer
 *   utf8.c    turning raw job output into text PostgreSQL accepts, byte for byte
 *   env.c     the job environment (no libpq variables, DISPATCH_* added)
 *   spool.c   the on-disk spool: crash-safe files, meta and status files
 *   runner.c  the per-job supervisor (like slurmstepd) and its signals
 *   conn.c    libpq: connect with backoff, the dispatch.agent_* calls
 *   jobs.c    the agent's table of jobs: start, stream output, report, cancel
 *   main.c    options and the poll() event loop
 * Functions that can fail return 0 on success and -1 on failure, filling an
 * error buffer (char *err, size_t errlen) with a message in PostgreSQL style.
 */
#ifndef AGENT_H
#define AGENT_H

#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_VERSION "0.1.0"
#define AGENT_ERRLEN 512

/* ---- util.c ---- */

typedef struct StrBuf
{
	char	   *data;			/* always NUL-terminated once initialised */
	size_t		len;
	size_t		cap;
} StrBuf;

typedef struct StrList
{
	char	  **items;			/* items[n] is always NULL (usable as argv/envp) */
	int			n;
	int			cap;
} StrList;

void	   *xmalloc(size_t n);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);
void		sb_init(StrBuf *sb);
void		sb_free(StrBuf *sb);
void		sb_append(StrBuf *sb, const char *s, size_t n);
void		sb_puts(StrBuf *sb, const char *s);
void		sb_printf(StrBuf *sb, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		strlist_init(StrList *l);
void		strlist_free(StrList *l);
void		strlist_add(StrList *l, const char *s);
int			strlist_find(const StrList *l, const char *s);
int64_t		agent_now_ms(void);
void		agent_seterr(char *err, size_t errlen, const char *fmt,...) __attribute__((format(printf, 3, 4)));
int			agent_type_name_ok(const char *s);

/* ---- log.c ---- */

enum
{
	LOG_DEBUG_ = 0, LOG_INFO_, LOG_WARNING_, LOG_ERROR_
};
extern int	agent_log_verbose;
void		agent_log(int level, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) agent_log(LOG_DEBUG_, __VA_ARGS__)
#define log_info(...) agent_log(LOG_INFO_, __VA_ARGS__)
#define log_warning(...) agent_log(LOG_WARNING_, __VA_ARGS__)
#define log_error(...) agent_log(LOG_ERROR_, __VA_ARGS__)

/* ---- idlist.c ---- */

#define IDLIST_MAX 4096			/* most ids one list may expand to */

int			idlist_parse(const char *spec, StrList *out, char *err, size_t errlen);

/* ---- json.c ---- */

typedef enum JsonType
{
	JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT
} JsonType;

typedef struct JsonValue
{
	JsonType	type;
	char	   *text;			/* STRING: decoded text; NUMBER: the literal */
	int			boolean;
	char	   *key;			/* member name when inside an object */
	struct JsonValue *child;	/* first element or member */
	struct JsonValue *next;		/* next sibling */
} JsonValue;

int			json_parse(const char *text, JsonValue **out, char *err, size_t errlen);
void		json_free(JsonValue *v);
const JsonValue *json_get(const JsonValue *obj, const char *key);
int			json_int(const JsonValue *v, int64_t *out);
void		json_put_str(StrBuf *sb, const char *s);

/* ---- utf8.c ---- */

size_t		utf8_sanitize(char *buf, size_t len, int final);

/* ---- the job as the server hands it out (agent_poll 'run' row) ---- */

typedef struct JobSpec
{
	int64_t		job_id;
	int			attempt;
	int64_t		joblist_id;
	const char *command;
	const char *env_json;		/* may be NULL */
	const char *resources_json; /* may be NULL */
	int64_t		timeout_ms;		/* <= 0: none */
	const char *files_json;		/* rendered files to write first; may be NULL */
} JobSpec;

/* ---- files.c ---- */

int			files_write(const char *workdir, const char *json, char *err, size_t errlen);

/* ---- env.c ---- */

void		env_without_pg(char *const *base, StrList *out);
int			env_build(char *const *base, const JobSpec *job, const char *node,
					  const char *workdir, StrList *out, char *err, size_t errlen);

/* ---- spool.c ---- */

typedef struct JobStatus
{
	int			has_exit;		/* exit_code is meaningful */
	int			exit_code;
	int			signal;			/* 0: not killed by a signal */
	int			timed_out;
	int			cancelled;
	char		detail[256];	/* one line, may be empty */
} JobStatus;

typedef struct JobMeta
{
	int64_t		job_id;
	int			attempt;
	pid_t		pid;			/* the supervisor */
	unsigned long long starttime;	/* its start time in clock ticks since boot */
	int64_t		started_at;		/* unix time */
} JobMeta;

#ifdef SPOOL_FAULTS
enum
{
	SPOOL_FAULT_OPEN, SPOOL_FAULT_WRITE, SPOOL_FAULT_FSYNC, SPOOL_FAULT_CLOSE,
	SPOOL_FAULT_RENAME, SPOOL_FAULT_NOPS
};
void		spool_fault_inject(int op, int nth);
#endif

int			spool_write_file(const char *dir, const char *name, const char *data, size_t len,
							 char *err, size_t errlen);
int			spool_read_file(const char *path, StrBuf *out, char *err, size_t errlen);
int			spool_write_status(const char *jobdir, const JobStatus *st, char *err, size_t errlen);
int			spool_read_status(const char *jobdir, JobStatus *st, char *err, size_t errlen);
int			spool_write_meta(const char *jobdir, const JobMeta *m, char *err, size_t errlen);
int			spool_read_meta(const char *jobdir, JobMeta *m, char *err, size_t errlen);
int			spool_exists(const char *jobdir, const char *name);
int			spool_remove_tree(const char *path, char *err, size_t errlen);
int			spool_proc_starttime(pid_t pid, unsigned long long *out);
int			spool_alive(pid_t pid, unsigned long long starttime);

/* ---- runner.c ---- */

void		runner_set_title_area(int argc, char **argv);
int			runner_kill_session(pid_t sid);
int			runner_spawn(const char *jobdir, const JobSpec *job, char *const *envp,
						 int64_t kill_grace_ms, pid_t *pid, char *err, size_t errlen);

/* ---- conn.c ---- */

typedef enum CallResult
{
	CALL_OK = 0, CALL_ERROR = -1, CALL_STALE = -2	/* SQLSTATE 55000: drop the job */
} CallResult;

typedef struct PollRow
{
	int			cancel;			/* 1: 'cancel' row, 0: 'run' row */
	JobSpec		spec;
} PollRow;

typedef struct Conn Conn;

Conn	   *conn_new(const char *conninfo);
void		conn_free(Conn *c);
int			conn_connect(Conn *c, char *err, size_t errlen);
void		conn_close(Conn *c);
int			conn_ok(const Conn *c);
int			conn_socket(const Conn *c);
int			conn_consume(Conn *c, int *notified, char *err, size_t errlen);
int			conn_listen(Conn *c, const char *channel, char *err, size_t errlen);
CallResult	conn_register(Conn *c, const char *node, const char *info, StrBuf *reply,
						  char *err, size_t errlen);
CallResult	conn_heartbeat(Conn *c, const char *node, StrBuf *state, char *err, size_t errlen);
CallResult	conn_poll(Conn *c, const char *node, void (*cb) (const PollRow *, void *), void *arg,
					  char *err, size_t errlen);
CallResult	conn_resume(Conn *c, const char *node, int64_t job, int attempt, int64_t *out_bytes,
						int64_t *err_bytes, int *cancel, char *err, size_t errlen);
CallResult	conn_output(Conn *c, const char *node, int64_t job, int attempt, const char *stream,
						int64_t offset, const char *data, int64_t *stored, char *err, size_t errlen);
CallResult	conn_finish(Conn *c, const char *node, int64_t job, int attempt, const JobStatus *st,
						StrBuf *state, char *err, size_t errlen);
CallResult	conn_node_call(Conn *c, const char *func, const char *node, char *err, size_t errlen);

/* ---- jobs.c ---- */

typedef struct AgentConf
{
	const char *node;
	const char *workdir;		/* contains jobs/ */
	int64_t		kill_grace_ms;
	int			keep_workdirs;
} AgentConf;

int			jobs_init(const AgentConf *conf, char *err, size_t errlen);
void		jobs_shutdown(void);
int			jobs_inotify_fd(void);
void		jobs_inotify_read(void);
void		jobs_reap(void);
void		jobs_check_alive(void);
void		jobs_info_json(StrBuf *sb);
void		jobs_resume_all(Conn *c);
void		jobs_on_poll_row(const PollRow *row, void *arg);
void		jobs_pump(Conn *c, int all);
void		jobs_abandon_all(void);
int			jobs_running(void);
int			jobs_count(void);
int			jobs_want_pump(int64_t *deadline);

#endif							/* AGENT_H */
