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
 *   history.c the agent's own record of jobs and presence, one JSON line each
 *   collect*.c  host metrics: one sample of /proc and /sys as one JSON object
 *             (collect_read.c helpers, collect_cpu/mem/fs/disk/net/temp/proc.c
 *             parsers, collect_exec.c programs with a deadline, collect_gpu.c
 *             nvidia-smi, plugins.c --plugin-dir, collect.c the sample,
 *             collect_json.c its JSON and rates)
 *   metrics.c   the sampler process, its bounded queue of samples, delivery
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
int			spool_append_file(const char *path, const char *data, size_t len, char *err, size_t errlen);
int			spool_read_file(const char *path, StrBuf *out, char *err, size_t errlen);
int			spool_read_text(const char *path, StrBuf *out, char *err, size_t errlen);
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
void		runner_set_title(const char *comm, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		runner_reset_signals(void);
int			runner_kill_session(pid_t sid);
int			runner_spawn(const char *jobdir, const JobSpec *job, char *const *envp,
						 int64_t kill_grace_ms, pid_t *pid, char *err, size_t errlen);

/* ---- conn.c ---- */

typedef enum CallResult
{
	CALL_OK = 0, CALL_ERROR = -1,
	CALL_STALE = -2,			/* SQLSTATE 55000: drop the job */
	CALL_REJECTED = -3			/* SQLSTATE class 22: the data itself is bad */
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
void		conn_server(const Conn *c, char *buf, size_t len);
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
CallResult	conn_online_nodes(Conn *c, StrBuf *json, char *err, size_t errlen);
CallResult	conn_metrics(Conn *c, const char *node, const char *samples, char *err, size_t errlen);
CallResult	conn_node_call(Conn *c, const char *func, const char *node, char *err, size_t errlen);

/* ---- history.c ---- */

void		history_put_time(StrBuf *sb, int64_t unix_ms);
int64_t		history_now_ms(void);
void		history_begin(StrBuf *sb, const char *event, const char *node);
int			history_append(const char *path, StrBuf *sb, char *err, size_t errlen);

/* ---- jobs.c ---- */

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
void		jobs_info_json(StrBuf *sb);
void		jobs_resume_all(Conn *c);
void		jobs_on_poll_row(const PollRow *row, void *arg);
void		jobs_pump(Conn *c, int all);
void		jobs_record_ended(int connected);
void		jobs_abandon_all(void);
int			jobs_running(void);
int			jobs_count(void);
int			jobs_want_pump(int64_t *deadline);

/* ---- collect*.c, plugins.c: host metrics ---- */

#define COLLECT_TOP 5			/* processes listed by CPU and by RSS */
#define COLLECT_NAMELEN 64		/* device, interface, sensor, command names */

typedef struct CollectList
{
	void	   *items;			/* an array of n elements of one struct type */
	int			n;
	int			cap;
} CollectList;

typedef struct CpuStat			/* /proc/stat "cpu" line, clock ticks since boot */
{
	uint64_t	user, nice, system, idle, iowait, irq, softirq, steal;
	int			ncpu;			/* "cpuN" lines: online CPUs */
} CpuStat;

typedef struct MemStat			/* /proc/meminfo, bytes */
{
	uint64_t	total, free, available, buffers, cached, swap_total, swap_free;
} MemStat;

typedef struct FsStat			/* one mounted filesystem; sizes in bytes */
{
	char		mount[512];
	char		device[256];
	char		type[COLLECT_NAMELEN];
	uint64_t	size, used, avail, inodes, inodes_used;
} FsStat;

typedef int (*FsUsageFn) (const char *path, FsStat *fs);	/* fills the numbers; -1: skip */

typedef struct DiskStat			/* /proc/diskstats, counters since boot */
{
	char		name[COLLECT_NAMELEN];
	uint64_t	reads, writes, read_bytes, write_bytes, busy_ms;
} DiskStat;

typedef struct NetStat			/* /proc/net/dev, counters since boot */
{
	char		name[COLLECT_NAMELEN];
	uint64_t	rx_bytes, rx_packets, rx_errors, rx_drops;
	uint64_t	tx_bytes, tx_packets, tx_errors, tx_drops;
} NetStat;

typedef struct TempStat			/* one temperature sensor */
{
	char		sensor[COLLECT_NAMELEN];	/* "thermal_zone0", "hwmon1/temp2" */
	char		name[COLLECT_NAMELEN];	/* zone type or hwmon chip name */
	char		label[COLLECT_NAMELEN];	/* hwmon temp*_label, may be empty */
	int64_t		millicelsius;
} TempStat;

typedef struct ProcStat			/* one process from /proc/PID/stat */
{
	pid_t		pid, ppid;
	unsigned long long start;	/* clock ticks after boot: tells a reused pid apart */
	uint64_t	ticks;			/* utime + stime */
	uint64_t	rss;			/* bytes */
	char		comm[COLLECT_NAMELEN];
	double		cpu;			/* % of one CPU over the interval; < 0: unknown */
} ProcStat;

typedef struct GpuStat			/* one nvidia-smi line; -1: not available */
{
	int64_t		index, util, mem_used_mib, mem_total_mib, celsius;
} GpuStat;

typedef struct Sample			/* one reading of everything */
{
	int64_t		mono_ms;		/* CLOCK_MONOTONIC: rates */
	int64_t		unix_ms;		/* wall clock: "t" */
	int			has_cpu, has_load, has_mem, has_fs, has_disk, has_net, has_procs;
	CpuStat		cpu;
	double		load[3];
	MemStat		mem;
	CollectList fs;				/* FsStat */
	CollectList disk;			/* DiskStat */
	CollectList net;			/* NetStat */
	CollectList temp;			/* TempStat */
	CollectList procs;			/* ProcStat, by pid */
	ProcStat   *top_cpu[COLLECT_TOP];
	ProcStat   *top_rss[COLLECT_TOP];
	int			ntop_cpu, ntop_rss;
	int			modules;		/* -1: no /proc/modules */
	int			has_gpu;		/* nvidia-smi was found */
	CollectList gpu;			/* GpuStat */
	int			has_plugins;	/* a plugin directory is set */
	StrBuf		plugins;		/* the "plugins" array's elements, comma separated */
	StrList		problems;		/* source, message, source, message, ... */
} Sample;

typedef struct Collector
{
	const char *root;			/* where proc/ and sys/ are: "/" */
	const char *plugin_dir;		/* NULL: no plugins */
	const char *path;			/* searched for nvidia-smi; NULL: $PATH */
	int64_t		timeout_ms;		/* for nvidia-smi and each plugin */
	long		hz;				/* clock ticks per second */
	long		page_size;
	FsUsageFn	fs_usage;		/* statvfs() by default */
	int			has_prev;
	Sample		prev;			/* the previous reading, for rates */
} Collector;

/* One program run by collect_exec.c. */
typedef enum ExecState
{
	EXEC_EXITED, EXEC_SIGNALED, EXEC_TIMED_OUT, EXEC_FAILED
} ExecState;

#define EXEC_MAX_OUTPUT 65536	/* bytes of a program's output kept */

typedef struct ExecRun
{
	char	   *const *argv;	/* argv[0] is the program's path */
	StrBuf		out;			/* its standard output (initialised by exec_run_all) */
	int			truncated;		/* it wrote more than EXEC_MAX_OUTPUT bytes */
	ExecState	state;
	int			code;			/* EXITED: exit status; SIGNALED: signal number */
	char		err[AGENT_ERRLEN];	/* FAILED: why it could not run */
	int			held_open;		/* it ended, but something it started kept its stdout open */
	pid_t		pid;			/* > 0: not reaped yet */
	int			fd;				/* >= 0: its stdout pipe is open */
	int64_t		ended_ms;		/* when it was reaped */
} ExecRun;

/* collect_read.c */
typedef struct CollectFile		/* a small kernel file read whole, then taken line by line */
{
	char		path[4096];		/* for messages */
	StrBuf		text;
	char	   *pos;			/* the next line */
} CollectFile;

#define COLLECT_SKIP ((size_t) -1)	/* a column collect_counters() checks but keeps nowhere */

void		collect_path(char *buf, size_t len, const char *root, const char *fmt,...) __attribute__((format(printf, 4, 5)));
int			collect_open(CollectFile *f, const char *root, char *err, size_t errlen,
						 const char *fmt,...) __attribute__((format(printf, 5, 6)));
char	   *collect_next(CollectFile *f);
void		collect_close(CollectFile *f);
int			collect_first_line(char *buf, size_t len, const char *root, const char *fmt,...) __attribute__((format(printf, 4, 5)));
int			collect_fields(char *line, char **f, int max);
int			collect_u64(const char *s, uint64_t *out);
int			collect_counters(char **f, int n, void *out, const size_t *offsets);
int			collect_list_dir(const char *dir, const char *prefix, StrList *names, char *err, size_t errlen);
void	   *collect_list_add(CollectList *l, size_t size);
void		collect_list_free(CollectList *l);

/* collect_cpu.c, collect_mem.c, collect_fs.c, collect_disk.c, collect_net.c, collect_temp.c */
int			collect_cpu(const char *root, CpuStat *out, char *err, size_t errlen);
int			collect_load(const char *root, double load[3], char *err, size_t errlen);
int			collect_mem(const char *root, MemStat *out, char *err, size_t errlen);
int			collect_fs_usage(const char *path, FsStat *fs);
int			collect_fs(const char *root, FsUsageFn usage, CollectList *out, char *err, size_t errlen);
int			collect_disk(const char *root, CollectList *out, char *err, size_t errlen);
int			collect_net(const char *root, CollectList *out, char *err, size_t errlen);
void		collect_temp(const char *root, CollectList *out);

/* collect_proc.c */
int			collect_procs(const char *root, long page_size, CollectList *out, char *err, size_t errlen);
void		collect_proc_rank(Sample *cur, const Sample *prev, double secs, long hz);
int			collect_modules(const char *root, int *count, char *err, size_t errlen);

/* collect_exec.c, collect_gpu.c, plugins.c */
void		exec_run_all(ExecRun *runs, int n, int64_t timeout_ms);
int			exec_outcome(const ExecRun *r, int64_t timeout_ms, char *msg, size_t msglen);
void		collect_problem(StrList *problems, const char *source, const char *fmt,...) __attribute__((format(printf, 3, 4)));
int			gpu_find(const char *path, char *out, size_t outlen);
int			gpu_parse(const char *csv, CollectList *out, char *err, size_t errlen);
void		plugins_list(const char *dir, StrList *paths, StrList *problems);
int			plugin_parse(const char *plugin, const char *output, StrBuf *metrics, char *err, size_t errlen);
void		plugins_report(const ExecRun *r, int64_t timeout_ms, StrBuf *metrics, StrList *problems);

/* metrics.c */
typedef struct Metrics
{
	char		dir[4096];		/* <workdir>/metrics: the queue */
	int64_t		interval_ms;
	int64_t		spool_max;		/* bytes the queue may take */
	const char *plugin_dir;		/* NULL: no plugins */
	pid_t		pid;			/* the sampler; 0: none */
} Metrics;

int			metrics_init(Metrics *m, const char *workdir, int64_t interval_ms, int64_t spool_max,
						 const char *plugin_dir, char *err, size_t errlen);
void		metrics_check(Metrics *m);
void		metrics_reap(Metrics *m);
void		metrics_stop(Metrics *m);
void		metrics_send(Metrics *m, Conn *c, const char *node);
int			metrics_trim(const char *dir, int64_t max_bytes, char *err, size_t errlen);
int			metrics_batch(const char *dir, int max_files, StrBuf *json, StrList *files,
						  char *err, size_t errlen);

/* collect.c */
void		collect_init(Collector *c);
void		collect_free(Collector *c);
int			collect_sample_at(Collector *c, int64_t mono_ms, int64_t unix_ms, int programs,
							  StrBuf *json, char *err, size_t errlen);
int			collect_sample(Collector *c, StrBuf *json, char *err, size_t errlen);
int			collect_prime(Collector *c, char *err, size_t errlen);

/* collect_json.c */
int			collect_rate(uint64_t prev, uint64_t cur, double secs, double *out);
void		collect_encode(StrBuf *sb, const Sample *s, const Sample *prev);

#endif							/* AGENT_H */
