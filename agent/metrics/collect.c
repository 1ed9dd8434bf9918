/*
 * collect.c -- one sample of the host: what the sampler and --print-metrics call.
 *
 * collect_sample() reads every source into a Sample (the parsers of
 * collect_*.c), runs nvidia-smi and the plugins side by side under one
 * deadline (collect_exec.c), has it encoded as one compact JSON object
 * (collect_json.c) and keeps it in the Collector as the previous reading,
 * which the next sample's rates are computed against.  A source that cannot
 * be read leaves its key out and adds an entry to "problems"; a sample fails
 * only when /proc itself is unreadable.  Everything reads below the
 * Collector's root, and the statvfs() and nvidia-smi lookups can be pointed
 * elsewhere, so the unit tests take whole samples of committed fixtures.
 */
#include "collect.h"

#include <errno.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COLLECT_TIMEOUT_MS 5000	/* default deadline of nvidia-smi and the plugins */

static void sample_free(Sample *s);
static void read_host(Collector *c, Sample *s);
static void run_programs(Collector *c, Sample *s);

/* Sets c up for this machine: root "/", no plugins, nvidia-smi from $PATH, a 5 s deadline. */
void
collect_init(Collector *c)
{
	memset(c, 0, sizeof(*c));
	c->root = "/";
	c->timeout_ms = COLLECT_TIMEOUT_MS;
	c->hz = sysconf(_SC_CLK_TCK);
	c->page_size = sysconf(_SC_PAGESIZE);
	c->fs_usage = collect_fs_usage;
}

/* Releases the previous reading c holds. */
void
collect_free(Collector *c)
{
	if (c->has_prev)
		sample_free(&c->prev);
	c->has_prev = 0;
}

/* Releases what s holds. */
static void
sample_free(Sample *s)
{
	collect_list_free(&s->fs);
	collect_list_free(&s->disk);
	collect_list_free(&s->net);
	collect_list_free(&s->temp);
	collect_list_free(&s->procs);
	collect_list_free(&s->gpu);
	sb_free(&s->plugins);
	strlist_free(&s->problems);
}

/* Reads the /proc and /sys sources of c's root into s, each failure a problem. */
static void
read_host(Collector *c, Sample *s)
{
	char		err[AGENT_ERRLEN];

#define READ(flag, source, call) \
	do { \
		(flag) = (call) == 0; \
		if (!(flag)) \
			collect_problem(&s->problems, source, "%s", err); \
	} while (0)
	READ(s->has_cpu, "cpu", collect_cpu(c->root, &s->cpu, err, sizeof(err)));
	READ(s->has_load, "load", collect_load(c->root, s->load, err, sizeof(err)));
	READ(s->has_mem, "mem", collect_mem(c->root, &s->mem, err, sizeof(err)));
	READ(s->has_fs, "fs", collect_fs(c->root, c->fs_usage, &s->fs, err, sizeof(err)));
	READ(s->has_disk, "disk", collect_disk(c->root, &s->disk, err, sizeof(err)));
	READ(s->has_net, "net", collect_net(c->root, &s->net, err, sizeof(err)));
	READ(s->has_procs, "procs", collect_procs(c->root, c->page_size, &s->procs, err, sizeof(err)));
#undef READ
	collect_temp(c->root, &s->temp);
	if (collect_modules(c->root, &s->modules, err, sizeof(err)) < 0)
		collect_problem(&s->problems, "modules", "%s", err);
}

/* Runs nvidia-smi (when found) and the plugins (when configured) at once and adds what they report to s. */
static void
run_programs(Collector *c, Sample *s)
{
	char		smi[4096], msg[AGENT_ERRLEN];
	char	   *smi_argv[] = {smi, "--query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu",
	"--format=csv,noheader,nounits", NULL};
	StrList		paths;
	ExecRun    *runs;
	char	  **argv;
	int			n = 0;

	strlist_init(&paths);
	s->has_gpu = collect_gpu_find(c->path, smi, sizeof(smi));
	s->has_plugins = c->plugin_dir != NULL;
	if (s->has_plugins)
		plugins_list(c->plugin_dir, &paths, &s->problems);
	runs = xmalloc(sizeof(ExecRun) * (size_t) (paths.n + 1));
	argv = xmalloc(sizeof(char *) * (size_t) (2 * paths.n + 1));
	if (s->has_gpu)
		runs[n++].argv = smi_argv;
	for (int i = 0; i < paths.n; i++)
	{
		argv[2 * i] = paths.items[i];
		argv[2 * i + 1] = NULL;
		runs[n++].argv = &argv[2 * i];
	}
	collect_exec_all(runs, n, c->timeout_ms);
	for (int i = 0; i < n; i++)
	{
		if (runs[i].argv != smi_argv)
			plugins_report(&runs[i], c->timeout_ms, &s->plugins, &s->problems);
		else if (collect_exec_outcome(&runs[i], c->timeout_ms, msg, sizeof(msg)) < 0)
			collect_problem(&s->problems, "gpu", "nvidia-smi %s", msg);
		else if (collect_gpu_parse(runs[i].out.data, &s->gpu, msg, sizeof(msg)) < 0)
			collect_problem(&s->problems, "gpu", "%s", msg);
		sb_free(&runs[i].out);
	}
	free(runs);
	free(argv);
	strlist_free(&paths);
}

/*
 * Takes a sample at mono_ms (monotonic) / unix_ms (wall clock); with programs
 * set, also runs nvidia-smi and the plugins.  Appends its JSON to json (NULL:
 * just keep the reading) and keeps it for the next sample's rates.  Returns
 * -1 only when /proc cannot be read at all.
 */
int
collect_sample_at(Collector *c, int64_t mono_ms, int64_t unix_ms, int programs,
				  StrBuf *json, char *err, size_t errlen)
{
	Sample		s;
	const Sample *prev;

	memset(&s, 0, sizeof(s));
	s.mono_ms = mono_ms;
	s.unix_ms = unix_ms;
	sb_init(&s.plugins);
	strlist_init(&s.problems);
	read_host(c, &s);
	if (!s.has_cpu && !s.has_mem && !s.has_procs)
	{
		agent_seterr(err, errlen, "could not read the host's counters: %s", s.problems.items[1]);
		sample_free(&s);
		return -1;
	}
	prev = c->has_prev && mono_ms > c->prev.mono_ms ? &c->prev : NULL;
	collect_proc_rank(&s, prev, prev != NULL ? (double) (mono_ms - prev->mono_ms) / 1000.0 : 0, c->hz);
	if (programs)
		run_programs(c, &s);
	if (json != NULL)
		collect_encode(json, &s, prev);
	collect_free(c);
	c->prev = s;
	c->has_prev = 1;
	return 0;
}

/* Takes a sample now and appends its JSON to json (the event loop's call). */
int
collect_sample(Collector *c, StrBuf *json, char *err, size_t errlen)
{
	return collect_sample_at(c, proc_now_ms(), proc_unix_ms(), 1, json, err, errlen);
}

/* Takes a reading of the counters only (no programs, no JSON) so that the next sample has rates. */
int
collect_prime(Collector *c, char *err, size_t errlen)
{
	return collect_sample_at(c, proc_now_ms(), 0, 0, NULL, err, errlen);
}

/* --print-metrics: a reading, 1 s, then a sample with rates (and plugin_dir's metrics) printed on stdout; returns the exit status. */
int
collect_print(const char *plugin_dir)
{
	struct timespec second = {1, 0};
	Collector	c;
	StrBuf		json;
	char		err[AGENT_ERRLEN];
	int			rc = 0;

	collect_init(&c);
	c.plugin_dir = plugin_dir;
	sb_init(&json);
	if (collect_prime(&c, err, sizeof(err)) < 0 || nanosleep(&second, NULL) < 0 ||
		collect_sample(&c, &json, err, sizeof(err)) < 0)
	{
		log_error("%s", err);
		rc = 1;
	}
	else if (printf("%s\n", json.data) < 0 || fflush(stdout) != 0)
	{
		log_error("could not write to standard output: %s", strerror(errno));
		rc = 1;
	}
	sb_free(&json);
	collect_free(&c);
	return rc;
}
