/*
 * test_watch.c -- the file watcher against a real inotify, without a server.
 *
 * Each case drives the watcher by its calls (watch_read, watch_tick with the
 * monotonic clock) and reads the events from its queue the way watch_send()
 * does, acknowledging them: a file written for 2 s by another process is
 * hashed once, after it settles; an atomic replace reports the target, never
 * the temp name; a new directory's files are found however fast they came; a
 * real IN_Q_OVERFLOW is answered by a rescan reporting every file once;
 * deletions, moved-away directories, symbolic links, FIFOs and overlong paths;
 * followed files' appends, chunked, sanitized and restarted after a
 * truncation; a restart reports only what changed while the watcher was down,
 * and the queue outlives the watcher.
 */
#include "unit.h"
#include "watch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETTLE_MS 50

static void pump(Watcher *w, int64_t ms);
static json_t *collect(Watcher *w);
static int	matches(const json_t *e, const char *kind, const char *path);
static int	count(const json_t *events, const char *kind, const char *path);
static const json_t *find(const json_t *events, const char *kind, const char *path);
static void put(const char *dir, const char *name, const char *data);
static Watcher *start(const char *spool, const char *root, const char *follow);
static void test_settle(const char *spool, const char *root);
static void test_tree(const char *spool, const char *root);
static void test_overflow(const char *spool, const char *root);
static void test_follow(const char *spool, const char *root);
static void test_restart(const char *spool, const char *root);

/* Lets w read and settle for ms milliseconds of real time, then ticks once more. */
static void
pump(Watcher *w, int64_t ms)
{
	int64_t		until = proc_now_ms() + ms;

	for (int64_t now = proc_now_ms(); now < until; now = proc_now_ms())
	{
		struct pollfd p = {watch_fd(w), POLLIN, 0};
		int64_t		next = watch_tick(w, now);
		int64_t		wait = next - now < until - now ? next - now : until - now;

		poll(&p, 1, wait < 0 ? 0 : wait > 10 ? 10 : (int) wait);
		watch_read(w, proc_now_ms());
	}
	watch_tick(w, proc_now_ms());
}

/* Takes every queued event of w, acknowledging them as the server would; returns them as an array. */
static json_t *
collect(Watcher *w)
{
	char		err[AGENT_ERRLEN];
	json_t	   *all = json_array();
	int64_t		end;

	for (;;)
	{
		StrBuf		sb;
		json_t	   *batch;
		int			n;

		sb_init(&sb);
		n = watch_queue_batch(w, WATCH_BATCH_EVENTS, &sb, &end, err, sizeof(err));
		if (n > 0)
		{
			batch = jsonio_load(sb.data, 0, err, sizeof(err));
			CHECK(batch != NULL && (int) json_array_size(batch) == n);
			CHECK(sb.len <= WATCH_BATCH_BYTES);
			json_array_extend(all, batch);
			json_decref(batch);
			CHECK(watch_queue_ack(w, end, err, sizeof(err)) == 0);
		}
		sb_free(&sb);
		if (n <= 0)
			return all;
	}
}

/* Returns 1 when event e is of kind and for path (NULL: any). */
static int
matches(const json_t *e, const char *kind, const char *path)
{
	const char *p = json_string_value(json_object_get(e, "path"));

	return strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0 &&
		(path == NULL || (p != NULL && strcmp(p, path) == 0));
}

/* Returns the number of events of kind for path (NULL: any) in events. */
static int
count(const json_t *events, const char *kind, const char *path)
{
	size_t		i;
	json_t	   *e;
	int			n = 0;

	json_array_foreach(events, i, e)
		n += matches(e, kind, path);
	return n;
}

/* Returns the first event of kind for path in events, or NULL. */
static const json_t *
find(const json_t *events, const char *kind, const char *path)
{
	size_t		i;
	json_t	   *e;

	json_array_foreach(events, i, e)
		if (matches(e, kind, path))
			return e;
	return NULL;
}

/* Writes data to dir/name (replacing it). */
static void
put(const char *dir, const char *name, const char *data)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL)
	{
		fputs(data, f);
		fclose(f);
	}
}

/* Returns a started watcher of workspace "src" over root (following glob follow, if any) spooling in spool. */
static Watcher *
start(const char *spool, const char *root, const char *follow)
{
	char		err[AGENT_ERRLEN];
	Watcher    *w = watch_new(spool, SETTLE_MS, err, sizeof(err));

	CHECK(w != NULL);
	if (w == NULL)
		abort();
	CHECK(watch_add(w, "src", root, err, sizeof(err)) == 0);
	if (follow != NULL)
		CHECK(watch_follow(w, "src", follow, err, sizeof(err)) == 0);
	CHECK(watch_start(w, proc_now_ms(), err, sizeof(err)) == 0);
	return w;
}

/*
 * A file written in small writes for 2 s by another process, its descriptor
 * open all along, is not hashed while written and hashed once after; an
 * atomic replace reports the target changed and its temp name never.
 */
static void
test_settle(const char *spool, const char *root)
{
	Watcher    *w = start(spool, root, NULL);
	json_t	   *ev;
	int64_t		hashes, start_ms;
	char		path[4096], tmp[4096];
	pid_t		pid;
	int			status, during;

	put(root, "target", "old");
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "changed", "target") == 1 && count(ev, "rescanned", NULL) == 1);
	json_decref(ev);

	hashes = w->hashes;
	snprintf(path, sizeof(path), "%s/busy", root);
	start_ms = proc_now_ms();
	if ((pid = fork()) == 0)
	{
		int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int64_t		until = start_ms + 2000;

		while (proc_now_ms() < until)
		{
			if (write(fd, "0123456789abcdef", 16) != 16)
				_exit(1);
			usleep(1000);
		}
		_exit(close(fd) == 0 ? 0 : 1);
	}
	while (proc_now_ms() < start_ms + 1900)
		pump(w, 10);
	during = (int) (w->hashes - hashes);
	CHECK(during == 0);			/* still written: never hashed */
	while (waitpid(pid, &status, WNOHANG) == 0)
		pump(w, 10);
	pump(w, 4 * SETTLE_MS);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(w->hashes - hashes == 1);
	ev = collect(w);
	CHECK(count(ev, "changed", "busy") == 1);
	{
		struct stat st;
		const json_t *e = find(ev, "changed", "busy");

		CHECK(stat(path, &st) == 0 && e != NULL &&
			  json_integer_value(json_object_get(e, "size")) == (json_int_t) st.st_size);
	}
	json_decref(ev);

	/* write a temp file, rename it over the target */
	put(root, ".target.tmp", "new content");
	snprintf(tmp, sizeof(tmp), "%s/.target.tmp", root);
	snprintf(path, sizeof(path), "%s/target", root);
	CHECK(rename(tmp, path) == 0);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "changed", "target") == 1);
	CHECK(count(ev, "changed", ".target.tmp") == 0 && count(ev, "deleted", ".target.tmp") == 0);
	CHECK((int) json_array_size(ev) == 1);
	{
		const json_t *e = find(ev, "changed", "target");

		/* SHA-256 of "new content" */
		CHECK(e != NULL && strcmp(json_string_value(json_object_get(e, "sha256")),
								  "fe32608c9ef5b6cf7e3f946480253ff76f24f4ec0678f3d0f07f9844cbff9601") == 0);
	}
	json_decref(ev);

	/* a rename within the tree: the old name deleted, the new one changed */
	snprintf(tmp, sizeof(tmp), "%s/renamed", root);
	CHECK(rename(path, tmp) == 0);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "deleted", "target") == 1 && count(ev, "changed", "renamed") == 1);
	json_decref(ev);

	/* touched without a change of size or mtime: a stat, no hash, no event */
	hashes = w->hashes;
	CHECK(chmod(tmp, 0600) == 0);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(json_array_size(ev) == 0 && w->hashes == hashes);
	json_decref(ev);
	watch_free(w);
}

/*
 * The tree: a new directory with files made at once, deeper directories,
 * deletions, a directory moved away or deleted, symbolic links, FIFOs and a
 * path longer than WATCH_PATH_MAX.
 */
static void
test_tree(const char *spool, const char *root)
{
	Watcher    *w = start(spool, root, NULL);
	char		path[4096], away[4096], deep[4096];
	json_t	   *ev;
	size_t		len;

	pump(w, 2 * SETTLE_MS);
	json_decref(collect(w));
	snprintf(path, sizeof(path), "%s/sub", root);
	CHECK(mkdir(path, 0755) == 0);
	put(path, "f1", "1");		/* before the watcher has read the mkdir */
	snprintf(path, sizeof(path), "%s/sub/deeper", root);
	CHECK(mkdir(path, 0755) == 0);
	put(path, "f2", "2");
	pump(w, 4 * SETTLE_MS);
	put(path, "f3", "3");		/* the new directory is watched now */
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "changed", "sub/f1") == 1 && count(ev, "changed", "sub/deeper/f2") == 1 &&
		  count(ev, "changed", "sub/deeper/f3") == 1);
	CHECK(json_array_size(ev) == 3);
	json_decref(ev);

	/* links and FIFOs are never reported, nor followed */
	snprintf(path, sizeof(path), "%s/link", root);
	CHECK(symlink("/etc/passwd", path) == 0);
	snprintf(path, sizeof(path), "%s/fifo", root);
	CHECK(mkfifo(path, 0600) == 0);
	/* a path over WATCH_PATH_MAX bytes is skipped */
	snprintf(deep, sizeof(deep), "%s", root);
	for (len = 0; len <= WATCH_PATH_MAX; len += 201)
	{
		snprintf(deep + strlen(deep), sizeof(deep) - strlen(deep), "/%0200d", 0);
		CHECK(mkdir(deep, 0755) == 0);
	}
	put(deep, "far", "x");
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(json_array_size(ev) == 0);
	json_decref(ev);

	/* a file deleted, then a directory moved out of the tree, then one deleted */
	snprintf(path, sizeof(path), "%s/sub/f1", root);
	CHECK(unlink(path) == 0);
	pump(w, 2 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "deleted", "sub/f1") == 1 && json_array_size(ev) == 1);
	json_decref(ev);
	snprintf(path, sizeof(path), "%s/sub/deeper", root);
	snprintf(away, sizeof(away), "%s.away", root);
	CHECK(rename(path, away) == 0);
	put(away, "f4", "4");		/* no longer watched */
	pump(w, 2 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "deleted", "sub/deeper/f2") == 1 && count(ev, "deleted", "sub/deeper/f3") == 1);
	CHECK(json_array_size(ev) == 2);
	json_decref(ev);
	/* and moved back in: watched and scanned again */
	CHECK(rename(away, path) == 0);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "changed", "sub/deeper/f2") == 1 && count(ev, "changed", "sub/deeper/f4") == 1);
	json_decref(ev);
	snprintf(path, sizeof(path), "rm -rf '%s/sub'", root);
	CHECK(system(path) == 0);
	pump(w, 2 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "deleted", "sub/deeper/f2") == 1 && count(ev, "deleted", "sub/deeper/f3") == 1 &&
		  count(ev, "deleted", "sub/deeper/f4") == 1 && json_array_size(ev) == 3);
	json_decref(ev);
	watch_free(w);
}

/*
 * A real IN_Q_OVERFLOW: more events than fs.inotify.max_queued_events while
 * the watcher does not read; its rescan reports every file exactly once and
 * then "rescanned", and a file deleted meanwhile as deleted.
 */
static void
test_overflow(const char *spool, const char *root)
{
	Watcher    *w = start(spool, root, NULL);
	StrBuf		text;
	char		err[AGENT_ERRLEN], name[64], gone[4096];
	long long	max = 16384;
	int			n, ok = 1, last_changed = -1, rescanned = -1;
	json_t	   *ev, *e;
	size_t		i;

	put(root, "gone", "soon");
	pump(w, 2 * SETTLE_MS);
	json_decref(collect(w));
	if (spool_read_text("/proc/sys/fs/inotify/max_queued_events", &text, err, sizeof(err)) == 0)
	{
		max = atoll(text.data);
		sb_free(&text);
	}
	n = (int) (max / 2 + 100);	/* three events each (create, modify, close) */
	if (n > 200000)
	{
		fprintf(stderr, "test_watch: max_queued_events %lld is too large to overflow; skipped\n", max);
		watch_free(w);
		return;
	}
	for (int k = 0; k < n; k++)
	{
		snprintf(name, sizeof(name), "many%06d", k);
		put(root, name, name);
	}
	snprintf(gone, sizeof(gone), "%s/gone", root);
	CHECK(unlink(gone) == 0);
	pump(w, 6 * SETTLE_MS);
	ev = collect(w);
	for (int k = 0; k < n; k++)
	{
		snprintf(name, sizeof(name), "many%06d", k);
		ok &= count(ev, "changed", name) == 1;
	}
	CHECK(ok);
	CHECK(count(ev, "deleted", "gone") == 1);
	CHECK(count(ev, "changed", NULL) == n);
	CHECK(count(ev, "rescanned", NULL) == 1);
	json_array_foreach(ev, i, e)
	{
		if (matches(e, "changed", NULL))
			last_changed = (int) i;
		if (matches(e, "rescanned", NULL))
			rescanned = (int) i;
	}
	CHECK(rescanned > last_changed);
	json_decref(ev);
	watch_free(w);
}

/* Followed files: appends from the last offset, chunks of at most 64 KiB, UTF-8, truncation, never hashed. */
static void
test_follow(const char *spool, const char *root)
{
	Watcher    *w;
	char		path[4096], *big;
	json_t	   *ev, *e;
	FILE	   *f;
	size_t		i;
	int64_t		offset = 6, total = 0;
	int			contiguous = 1, small = 1;

	snprintf(path, sizeof(path), "%s/logs", root);
	CHECK(mkdir(path, 0755) == 0);
	put(path, "a.log", "hello\n");
	put(path, "b.txt", "hashed");
	w = start(spool, root, "logs/*.log");
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	e = (json_t *) find(ev, "append", "logs/a.log");
	CHECK(e != NULL && json_integer_value(json_object_get(e, "offset")) == 0 &&
		  strcmp(json_string_value(json_object_get(e, "data")), "hello\n") == 0);
	CHECK(count(ev, "changed", "logs/b.txt") == 1 && count(ev, "changed", "logs/a.log") == 0);
	CHECK(w->hashes == 1);
	json_decref(ev);

	snprintf(path, sizeof(path), "%s/logs/a.log", root);
	f = fopen(path, "a");
	fputs("w\xffrld\n", f);		/* an invalid byte becomes '?' */
	fclose(f);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	e = (json_t *) find(ev, "append", "logs/a.log");
	CHECK(count(ev, "append", NULL) == 1 && e != NULL &&
		  json_integer_value(json_object_get(e, "offset")) == 6 &&
		  strcmp(json_string_value(json_object_get(e, "data")), "w?rld\n") == 0);
	json_decref(ev);
	offset = 12;

	/* 150 KiB: three events, contiguous */
	big = xmalloc(150 * 1024);
	memset(big, 'x', 150 * 1024);
	f = fopen(path, "a");
	fwrite(big, 1, 150 * 1024, f);
	fclose(f);
	free(big);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	json_array_foreach(ev, i, e)
	{
		size_t		len = strlen(json_string_value(json_object_get(e, "data")));

		contiguous &= json_integer_value(json_object_get(e, "offset")) == offset;
		small &= len <= WATCH_CHUNK;
		offset += (int64_t) len;
		total += (int64_t) len;
	}
	CHECK(count(ev, "append", "logs/a.log") == 3 && contiguous && small && total == 150 * 1024);
	json_decref(ev);

	/* truncated and rewritten: from offset 0 again */
	put(root, "logs/a.log", "new\n");
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	e = (json_t *) find(ev, "append", "logs/a.log");
	CHECK(count(ev, "append", NULL) == 1 && e != NULL &&
		  json_integer_value(json_object_get(e, "offset")) == 0 &&
		  strcmp(json_string_value(json_object_get(e, "data")), "new\n") == 0);
	json_decref(ev);
	CHECK(w->hashes == 1);		/* a followed file is never hashed */
	watch_free(w);
}

/*
 * The state file: a restart reports only what changed while the watcher was
 * down and hashes only that; the queue outlives the watcher, oldest first.
 */
static void
test_restart(const char *spool, const char *root)
{
	Watcher    *w = start(spool, root, NULL);
	char		path[4096], err[AGENT_ERRLEN];
	json_t	   *ev;
	StrBuf		sb;
	int64_t		end;

	put(root, "p", "p");
	put(root, "q", "q");
	put(root, "r", "r");
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "changed", NULL) == 3);
	json_decref(ev);
	watch_free(w);

	/* unchanged: nothing reported, nothing hashed; only "rescanned" */
	w = start(spool, root, NULL);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(json_array_size(ev) == 1 && count(ev, "rescanned", NULL) == 1 && w->hashes == 0);
	json_decref(ev);
	watch_free(w);

	/* while down: q grows, r goes, s comes */
	put(root, "q", "qq");
	snprintf(path, sizeof(path), "%s/r", root);
	CHECK(unlink(path) == 0);
	put(root, "s", "s");
	w = start(spool, root, NULL);
	pump(w, 4 * SETTLE_MS);
	ev = collect(w);
	CHECK(count(ev, "changed", "q") == 1 && count(ev, "changed", "s") == 1 &&
		  count(ev, "deleted", "r") == 1 && count(ev, "changed", "p") == 0 &&
		  count(ev, "rescanned", NULL) == 1 && json_array_size(ev) == 4);
	CHECK(w->hashes == 2);
	json_decref(ev);

	/* events not accepted survive: one taken, the rest wait for the next watcher */
	put(root, "t", "t");
	put(root, "u", "u");
	pump(w, 4 * SETTLE_MS);
	sb_init(&sb);
	CHECK(watch_queue_batch(w, 1, &sb, &end, err, sizeof(err)) == 1);
	CHECK(watch_queue_ack(w, end, err, sizeof(err)) == 0);
	sb_free(&sb);
	watch_free(w);
	w = start(spool, root, NULL);
	ev = collect(w);
	CHECK(json_array_size(ev) == 2 && count(ev, "changed", NULL) == 1 &&
		  matches(json_array_get(ev, 1), "rescanned", NULL));
	json_decref(ev);
	/* a line torn by a crash is cut off, the rest still read */
	snprintf(path, sizeof(path), "%s/watch/queue.jsonl", spool);
	put(root, "v", "v");
	pump(w, 4 * SETTLE_MS);
	watch_free(w);
	{
		FILE	   *f = fopen(path, "a");

		fputs("{\"workspace\":\"src\",\"pa", f);
		fclose(f);
	}
	w = start(spool, root, NULL);
	ev = collect(w);
	CHECK(count(ev, "changed", "v") == 1 && count(ev, "rescanned", NULL) == 1 && json_array_size(ev) == 2);
	json_decref(ev);
	watch_free(w);
}

void
test_watch(void)
{
	char		spool[4096], root[4096];
	const struct
	{
		const char *name;
		void		(*fn) (const char *, const char *);
	}			cases[] = {
		{"watch-settle", test_settle}, {"watch-tree", test_tree}, {"watch-overflow", test_overflow},
		{"watch-follow", test_follow}, {"watch-restart", test_restart}
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		snprintf(spool, sizeof(spool), "%s", unit_tmpdir(cases[i].name));
		snprintf(root, sizeof(root), "%s/root", spool);
		CHECK(mkdir(root, 0755) == 0);
		cases[i].fn(spool, root);
	}
}
