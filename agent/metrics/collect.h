/*
 * collect.h -- the sampler's insides: one reading of the host as a Sample.
 *
 *   collect_read.c  reading small kernel files line by line, lists, problems
 *   collect_cpu.c, collect_mem.c, collect_fs.c, collect_disk.c, collect_net.c,
 *   collect_temp.c, collect_proc.c  one parser per source under /proc and /sys
 *   collect_exec.c  programs run side by side under one deadline
 *   collect_gpu.c   nvidia-smi
 *   plugins.c       --plugin-dir executables and their output
 *   collect.c       the sample: every source, then the programs
 *   collect_json.c  its JSON and the rates against the previous reading
 * Parsers return 0, or -1 with the error buffer filled; a source that cannot
 * be read becomes a "problems" entry, not a failed sample.
 */
#ifndef AGENT_COLLECT_H
#define AGENT_COLLECT_H

#include "metrics.h"
#include "../proc.h"


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
	StrBuf		out;			/* its standard output (initialised by collect_exec_all) */
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

/* collect_exec.c (collect_problem: collect_read.c), collect_gpu.c, plugins.c */
void		collect_exec_all(ExecRun *runs, int n, int64_t timeout_ms);
int			collect_exec_outcome(const ExecRun *r, int64_t timeout_ms, char *msg, size_t msglen);
void		collect_problem(StrList *problems, const char *source, const char *fmt,...) __attribute__((format(printf, 3, 4)));
int			collect_gpu_find(const char *path, char *out, size_t outlen);
int			collect_gpu_parse(const char *csv, CollectList *out, char *err, size_t errlen);
void		plugins_list(const char *dir, StrList *paths, StrList *problems);
int			plugins_parse(const char *plugin, const char *output, StrBuf *metrics, char *err, size_t errlen);
void		plugins_report(const ExecRun *r, int64_t timeout_ms, StrBuf *metrics, StrList *problems);

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

#endif							/* AGENT_COLLECT_H */
