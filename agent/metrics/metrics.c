/*
 * metrics.c -- host metrics: the sampler process, its bounded queue on disk, delivery.
 *
 * The sampler is a child of the agent.  Every --metrics-interval it takes a
 * sample (collect.c) and writes it to <workdir>/metrics/<unix ms>.json the
 * crash-safe way (spool_write_file: temp file, fsync, rename).  Running apart
 * keeps nvidia-smi and slow plugins, which may take up to their deadline, from
 * stalling the event loop, and a crash in a parser from taking the agent down:
 * the loop reports it and starts a new sampler at its next metrics tick.  The queue is
 * bounded by --metrics-spool-max: after each write the sampler drops the
 * oldest samples until the queue fits.
 *
 * After each sample it sends SIGUSR1 to the agent, and the event loop, while
 * connected, sends the queue oldest first, in batches, to
 * dispatch.agent_metrics() and removes the files only once the server has
 * committed them.  The server skips a sample it already holds (same node, same
 * time), so a crash between its commit and the removal stores nothing twice.
 */
#include "collect.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH_BYTES (1024 * 1024)	/* most sample bytes sent in one call */
#define BATCH_FILES 500				/* most samples sent in one call */
#define SEND_REFUSED (-1)			/* send_batch(): the server refused the samples themselves */
#define SEND_FAILED (-2)			/* send_batch(): the queue or the connection failed */

static int	is_sample(const struct dirent *d);
static int	list_samples(const char *dir, struct dirent ***names, char *err, size_t errlen);
static void free_list(struct dirent **names, int n);
static void remove_leftovers(const char *dir);
static void sleep_until(int64_t when);
static void sampler_main(const Metrics *m, pid_t parent) __attribute__((noreturn));
static int	send_batch(Metrics *m, Conn *c, const char *node, int max_files, StrList *files);
static int	remove_sample(const Metrics *m, const char *name);

/* Sets m up for workdir and creates its queue directory; no sampler runs yet. */
int
metrics_init(Metrics *m, const char *workdir, int64_t interval_ms, int64_t spool_max,
			 const char *plugin_dir, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "%s/metrics", workdir);
	m->interval_ms = interval_ms;
	m->spool_max = spool_max;
	/* a copy: the sampler's title overwrites argv, where the option's value lives */
	m->plugin_dir = plugin_dir ? xstrdup(plugin_dir) : NULL;
	if (mkdir(m->dir, 0700) < 0 && errno != EEXIST)
	{
		agent_seterr(err, errlen, "could not create directory \"%s\": %s", m->dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* A queued sample: "<digits>.json" (temp files start with a dot). */
static int
is_sample(const struct dirent *d)
{
	size_t		n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0 &&
		strspn(d->d_name, "0123456789") == n - 5;
}

/* Lists the queued samples oldest first; returns their number, or -1. */
static int
list_samples(const char *dir, struct dirent ***names, char *err, size_t errlen)
{
	int			n = scandir(dir, names, is_sample, alphasort);

	if (n < 0)
		agent_seterr(err, errlen, "could not read directory \"%s\": %s", dir, strerror(errno));
	return n;
}

/* Releases what scandir() returned. */
static void
free_list(struct dirent **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * Drops the oldest samples of dir until the rest take at most max_bytes;
 * returns how many were dropped, or -1.
 */
int
metrics_trim(const char *dir, int64_t max_bytes, char *err, size_t errlen)
{
	struct dirent **names;
	int64_t	   *sizes;
	int64_t		total = 0;
	int			n = list_samples(dir, &names, err, errlen),
				dropped = 0;

	if (n < 0)
		return -1;
	sizes = xmalloc(sizeof(int64_t) * (size_t) (n + 1));
	for (int i = 0; i < n; i++)
	{
		char		path[PATH_MAX];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		sizes[i] = stat(path, &st) == 0 ? (int64_t) st.st_size : 0;
		total += sizes[i];
	}
	for (int i = 0; i < n && total > max_bytes; i++)
	{
		char		path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (unlink(path) == 0 || errno == ENOENT)	/* the loop may have sent it meanwhile */
		{
			total -= sizes[i];
			dropped++;
		}
	}
	free(sizes);
	free_list(names, n);
	return dropped;
}

/*
 * Reads the oldest queued samples into a JSON array in json (initialised) and
 * their file names into files, at most max_files of them and, past the first,
 * about BATCH_BYTES; returns how many, or -1.
 */
int
metrics_batch(const char *dir, int max_files, StrBuf *json, StrList *files, char *err, size_t errlen)
{
	struct dirent **names;
	int			n = list_samples(dir, &names, err, errlen);

	if (n < 0)
		return -1;
	sb_puts(json, "[");
	for (int i = 0; i < n && files->n < max_files && (files->n == 0 || json->len < BATCH_BYTES); i++)
	{
		char		path[PATH_MAX];
		StrBuf		one;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		sb_init(&one);
		if (spool_read_file(path, &one, err, errlen) == 0)
		{
			if (files->n > 0)
				sb_puts(json, ",");
			sb_append(json, one.data, one.len);
			strlist_add(files, names[i]->d_name);
		}
		sb_free(&one);			/* unreadable: dropped by the sampler in time, or retried next time */
	}
	sb_puts(json, "]");
	free_list(names, n);
	return files->n;
}

/* Removes the temp files a sampler killed while writing left behind. */
static void
remove_leftovers(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		size_t		n = strlen(e->d_name);

		if (e->d_name[0] == '.' && n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* Sleeps until the monotonic clock reads when (ms). */
static void
sleep_until(int64_t when)
{
	int64_t		left;

	while ((left = when - proc_now_ms()) > 0)
	{
		struct timespec ts = {left / 1000, (left % 1000) * 1000000};

		nanosleep(&ts, NULL);
	}
}

/* The sampler process: a sample every interval, queued, until the agent goes away. */
static void
sampler_main(const Metrics *m, pid_t parent)
{
	Collector	c;
	char		err[AGENT_ERRLEN];
	int64_t		next;

	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* a second agent would start a second sampler */
	if (getppid() != parent)
		_exit(0);
	/* none of the agent's descriptors (database socket, spool lock, inotify, self-pipe) */
	closefrom(3);
	proc_reset_signals();
	proc_set_title("dispatch-metric", "metrics sampler");
	/* plugins and nvidia-smi get none of the capabilities the agent keeps for its job user */
	if (proc_drop_capabilities(err, sizeof(err)) < 0)
	{
		log_error("metrics: %s", err);
		_exit(1);
	}
	remove_leftovers(m->dir);
	collect_init(&c);
	c.plugin_dir = m->plugin_dir;
	if (collect_prime(&c, err, sizeof(err)) < 0)
		log_warning("metrics: %s", err);
	next = proc_now_ms() + m->interval_ms;
	for (;;)
	{
		StrBuf		json;
		char		name[64];
		int			dropped;

		sleep_until(next);
		next += m->interval_ms;
		if (next <= proc_now_ms())	/* suspended or stalled: no burst to catch up */
			next = proc_now_ms() + m->interval_ms;
		sb_init(&json);
		snprintf(name, sizeof(name), "%016" PRId64 ".json", proc_unix_ms());
		if (collect_sample(&c, &json, err, sizeof(err)) < 0 ||
			spool_write_file(m->dir, name, json.data, json.len, err, sizeof(err)) < 0)
			log_warning("metrics: %s", err);
		else if ((dropped = metrics_trim(m->dir, m->spool_max, err, sizeof(err))) < 0)
			log_warning("metrics: %s", err);
		else
		{
			if (dropped > 0)
				log_warning("metrics: the queue is over %" PRId64 " bytes: dropped the %d oldest sample(s)",
							m->spool_max, dropped);
			kill(parent, SIGUSR1);	/* "send it now" */
		}
		sb_free(&json);
	}
}

/*
 * Reaps the sampler if it has ended and says how (SIGCHLD calls this before the
 * jobs reap their supervisors, which waits for any child); the next
 * metrics_check() starts another.
 */
void
metrics_reap(Metrics *m)
{
	int			wstatus;
	pid_t		r;

	if (m->pid <= 0 || (r = waitpid(m->pid, &wstatus, WNOHANG)) == 0)
		return;
	if (r == m->pid && WIFSIGNALED(wstatus))
		log_warning("metrics sampler (pid %d) was killed by signal %d", (int) m->pid, WTERMSIG(wstatus));
	else if (r == m->pid)
		log_warning("metrics sampler (pid %d) exited with status %d", (int) m->pid, WEXITSTATUS(wstatus));
	else
		log_warning("metrics sampler (pid %d) is gone", (int) m->pid);
	m->pid = 0;
}

/* Starts a sampler unless one runs. */
void
metrics_check(Metrics *m)
{
	pid_t		parent = getpid(),
				pid;

	metrics_reap(m);
	if (m->pid > 0)
		return;
	fflush(NULL);
	if ((pid = fork()) < 0)
	{
		log_warning("metrics: could not fork the sampler: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		sampler_main(m, parent);
	m->pid = pid;
	log_info("metrics sampler started (pid %d)", (int) pid);
}

/* Stops the sampler and waits for it. */
void
metrics_stop(Metrics *m)
{
	if (m->pid <= 0)
		return;
	kill(m->pid, SIGTERM);
	waitpid(m->pid, NULL, 0);
	m->pid = 0;
}

/*
 * Sends one batch of at most max_files samples and removes them once stored.
 * Returns how many were sent (0: the queue is empty), SEND_REFUSED when the
 * server refused the data itself, or SEND_FAILED.
 */
static int
send_batch(Metrics *m, Conn *c, const char *node, int max_files, StrList *files)
{
	StrBuf		json;
	char		err[AGENT_ERRLEN];
	CallResult	rc;
	int			n;

	sb_init(&json);
	if ((n = metrics_batch(m->dir, max_files, &json, files, err, sizeof(err))) < 0)
	{
		log_warning("metrics: %s", err);
		n = SEND_FAILED;
	}
	else if (n > 0 && (rc = conn_metrics(c, node, json.data, err, sizeof(err))) != CALL_OK)
	{
		log_warning("metrics: could not send %d sample(s): %s", n, err);
		n = rc == CALL_REJECTED ? SEND_REFUSED : SEND_FAILED;
	}
	for (int i = 0; n > 0 && i < files->n; i++)
		if (remove_sample(m, files->items[i]) < 0)
			n = SEND_FAILED;	/* it would be sent again and again */
	sb_free(&json);
	return n;
}

/* Removes the queued sample name; returns -1 when it is still there. */
static int
remove_sample(const Metrics *m, const char *name)
{
	char		path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", m->dir, name);
	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	log_warning("metrics: could not remove \"%s\": %s", path, strerror(errno));
	return -1;
}

/*
 * Sends the whole queue, oldest first.  When the server refuses a batch's data
 * (SQLSTATE class 22), the samples go one by one and a sample refused on its
 * own is dropped, so that one bad file cannot block the queue; any other
 * failure leaves the queue for the next attempt.
 */
void
metrics_send(Metrics *m, Conn *c, const char *node)
{
	int			max_files = BATCH_FILES,
				n;

	do
	{
		StrList		files;

		strlist_init(&files);
		n = send_batch(m, c, node, max_files, &files);
		if (n == SEND_REFUSED && files.n == 1)
		{
			log_warning("metrics: dropping sample \"%s\", which the server refuses", files.items[0]);
			if (remove_sample(m, files.items[0]) < 0)
				n = SEND_FAILED;
		}
		max_files = n == SEND_REFUSED ? 1 : max_files;
		strlist_free(&files);
	} while (n > 0 || n == SEND_REFUSED);
}
