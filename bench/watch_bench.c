/*
 * watch_bench.c -- the driver of watch_bench.sh: the watcher's costs, measured
 * with the agent's own code (digest.c, watch*.c), not a model of it.
 *
 *   watch_bench hash FILE
 *       digest_file() of FILE: prints "bytes seconds" of the one digest.
 *   watch_bench write DIR SECONDS MAX_MB
 *       watches DIR as the agent does (settle 20 ms) while a child writes one
 *       file in it at full speed for SECONDS (64 KiB writes, starting over at
 *       offset 0 every MAX_MB, so the disk holds at most that), then lets it
 *       settle; prints the watcher's and the writer's CPU seconds (user + sys,
 *       getrusage) and how many digests the watcher computed.
 */
#include "watch.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SETTLE_MS 20
#define BLOCK (64 * 1024)

static double cpu(const struct rusage *r);
static double wall(void);
static int	bench_hash(const char *file);
static void writer(const char *path, int seconds, int64_t max) __attribute__((noreturn));
static void pump(Watcher *w, int64_t until);
static int	bench_write(const char *dir, int seconds, int64_t max);

/* Returns the user + system seconds of r. */
static double
cpu(const struct rusage *r)
{
	return r->ru_utime.tv_sec + r->ru_stime.tv_sec + (r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

/* Returns the monotonic clock in seconds. */
static double
wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Prints the bytes and seconds of one digest_file() of file. */
static int
bench_hash(const char *file)
{
	char		hex[DIGEST_HEX_LEN + 1],
				err[AGENT_ERRLEN];
	int64_t		size;
	double		t0 = wall();

	if (digest_file(file, hex, &size, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "watch_bench: %s\n", err);
		return 1;
	}
	printf("%lld %.3f %s\n", (long long) size, wall() - t0, hex);
	return 0;
}

/* Writes path at full speed for seconds, starting over at offset 0 every max bytes. */
static void
writer(const char *path, int seconds, int64_t max)
{
	char	   *buf = xmalloc(BLOCK);
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	double		until = wall() + seconds;
	int64_t		off = 0;

	memset(buf, 'w', BLOCK);
	while (fd >= 0 && wall() < until)
	{
		if (pwrite(fd, buf, BLOCK, (off_t) off) != BLOCK)
			_exit(1);
		off = off + BLOCK >= max ? 0 : off + BLOCK;
	}
	_exit(fd >= 0 && close(fd) == 0 ? 0 : 1);
}

/* Runs w as the agent's loop does until the monotonic clock (ms) reads until. */
static void
pump(Watcher *w, int64_t until)
{
	for (int64_t now = proc_now_ms(); now < until; now = proc_now_ms())
	{
		struct pollfd p = {watch_fd(w), POLLIN, 0};
		int64_t		next = watch_tick(w, now);
		int64_t		wait = next < until ? next - now : until - now;

		poll(&p, 1, wait < 0 ? 0 : (int) wait);
		watch_read(w, proc_now_ms());
	}
	watch_tick(w, proc_now_ms());
}

/* Measures the watcher over dir while a child writes a file in it; prints the CPU figures. */
static int
bench_write(const char *dir, int seconds, int64_t max)
{
	char		err[AGENT_ERRLEN],
				spool[PATH_MAX],
				root[PATH_MAX],
				path[PATH_MAX + 16];
	struct rusage before,
				after,
				child;
	Watcher    *w;
	pid_t		pid;
	int			status;

	snprintf(spool, sizeof(spool), "%s/spool", dir);
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(path, sizeof(path), "%s/big", root);
	if ((mkdir(spool, 0700) < 0 || mkdir(root, 0755) < 0) ||
		(w = watch_new(spool, SETTLE_MS, err, sizeof(err))) == NULL ||
		watch_add(w, "bench", root, err, sizeof(err)) < 0 ||
		watch_start(w, proc_now_ms(), err, sizeof(err)) < 0)
	{
		fprintf(stderr, "watch_bench: could not set up in \"%s\"\n", dir);
		return 1;
	}
	getrusage(RUSAGE_SELF, &before);
	if ((pid = fork()) == 0)
		writer(path, seconds, max);
	while (wait4(pid, &status, WNOHANG, &child) == 0)
		pump(w, proc_now_ms() + 100);
	pump(w, proc_now_ms() + 10 * SETTLE_MS);	/* settle, hash */
	getrusage(RUSAGE_SELF, &after);
	printf("%.3f %.3f %lld\n", cpu(&after) - cpu(&before), cpu(&child), (long long) w->hashes);
	watch_free(w);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "hash") == 0)
		return bench_hash(argv[2]);
	if (argc == 5 && strcmp(argv[1], "write") == 0)
		return bench_write(argv[2], atoi(argv[3]), atoll(argv[4]) * 1024 * 1024);
	fprintf(stderr, "usage: watch_bench hash FILE | watch_bench write DIR SECONDS MAX_MB\n");
	return 2;
}
