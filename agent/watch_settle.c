/*
 * watch_settle.c -- the watcher's tick: what settled files have become.
 *
 * A pending file is looked at once it is due (watch.c sets when: quiet for
 * the settle time, or at once after IN_CLOSE_WRITE or a rename into place).
 * Only then is it stat'ed, and only a size or an mtime (to the nanosecond)
 * other than the ones last reported makes it hashed, so a file written for
 * seconds is hashed once, after its last write, and one touched without a
 * change of size or mtime costs a stat.  The digest is taken from an open
 * descriptor that is stat'ed again afterwards: a file that changed while it
 * was read is still being written and waits for another settle instead of
 * being reported half-written.  A followed file is never hashed: its new
 * bytes, from the offset last reported (0 again after a truncation), go out
 * as "append" events of at most WATCH_CHUNK bytes, made valid UTF-8 the way
 * job output is (a character cut by the end waits for its rest until the
 * file is quiet).  A tick hashes and reads at most WATCH_TICK_BYTES, so the
 * agent's loop is back to its jobs soon; what is left stays due for the next
 * tick.  While the queue holds WATCH_QUEUE_MAX bytes nothing is looked at: the
 * files keep what they have to say until the server takes the queue.
 */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_FULL_RETRY_MS 1000	/* a full queue is looked at again this often */

static int64_t mtime_ns(const struct stat *st);
static void open_failed(Watcher *w, WFile *f);
static int64_t hash(Watcher *w, WFile *f, int64_t now, int64_t *budget);
static int64_t follow(Watcher *w, WFile *f, const struct stat *st, int64_t now, int64_t *budget);
static int64_t settle(Watcher *w, WFile *f, int64_t now, int64_t *budget);

/* Returns st's modification time in nanoseconds. */
static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/*
 * After a failed open of f: a file gone (or made a link or a directory) is
 * forgotten, one that cannot be read is logged and left for its next event.
 */
static void
open_failed(Watcher *w, WFile *f)
{
	if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR || errno == EXDEV || errno == EISDIR)
		watch_forget(w, f);
	else
	{
		log_warning("workspace \"%s\": could not open \"%s\": %s", f->ws->name, f->path, strerror(errno));
		watch_unpend(w, f);
	}
}

/* Hashes f and reports it changed; returns its next due time (INT64_MAX: settled). */
static int64_t
hash(Watcher *w, WFile *f, int64_t now, int64_t *budget)
{
	char		hex[DIGEST_HEX_LEN + 1],
				err[AGENT_ERRLEN];
	struct stat before,
				after;
	int64_t		size = 0;
	int			fd = watch_open(f->ws, f->path, O_RDONLY | O_NONBLOCK),
				rc;

	if (fd < 0)
	{
		open_failed(w, f);
		return INT64_MAX;
	}
	if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode))
	{
		close(fd);
		watch_forget(w, f);
		return INT64_MAX;
	}
	rc = digest_fd(fd, hex, &size, err, sizeof(err));
	w->hashes++;
	if (fstat(fd, &after) < 0)
		after.st_size = -1;
	close(fd);					/* read-only */
	*budget -= size;
	if (rc < 0)
	{
		log_warning("workspace \"%s\": \"%s\": %s", f->ws->name, f->path, err);
		watch_unpend(w, f);
		return INT64_MAX;
	}
	if (after.st_size != before.st_size || size != before.st_size || mtime_ns(&after) != mtime_ns(&before))
	{
		f->due = now + w->settle_ms;	/* written while read: not settled after all */
		return f->due;
	}
	f->known = 1;
	f->size = size;
	f->mtime_ns = mtime_ns(&before);
	memcpy(f->sha256, hex, sizeof(hex));
	f->ws->state_dirty = 1;
	watch_put_changed(w, f);
	watch_unpend(w, f);
	return INT64_MAX;
}

/* Reports the bytes appended to followed file f (stat'ed as st); returns its next due time. */
static int64_t
follow(Watcher *w, WFile *f, const struct stat *st, int64_t now, int64_t *budget)
{
	int			quiet = now - f->last_event >= w->settle_ms;
	int64_t		size = (int64_t) st->st_size;

	if (size < f->offset)
	{
		log_debug("workspace \"%s\": \"%s\" was truncated: following it from offset 0", f->ws->name, f->path);
		f->offset = 0;
	}
	if (size > f->offset)
	{
		int			fd = watch_open(f->ws, f->path, O_RDONLY | O_NONBLOCK);
		char	   *buf;

		if (fd < 0)
		{
			open_failed(w, f);
			return INT64_MAX;
		}
		buf = xmalloc(WATCH_CHUNK);
		while (f->offset < size && *budget > 0)
		{
			size_t		want = size - f->offset < WATCH_CHUNK ? (size_t) (size - f->offset) : WATCH_CHUNK;
			ssize_t		n = pread(fd, buf, want, (off_t) f->offset);
			size_t		len;

			if (n <= 0)
				break;			/* truncated meanwhile: its event follows */
			len = utf8_sanitize(buf, (size_t) n, quiet && f->offset + n >= size);
			if (len == 0)
				break;			/* a character cut by the end waits for its rest */
			watch_put_append(w, f, f->offset, buf, len);
			f->offset += (int64_t) len;
			*budget -= (int64_t) len;
		}
		free(buf);
		close(fd);				/* read-only */
	}
	f->known = 1;
	f->size = size;
	f->mtime_ns = mtime_ns(st);
	f->ws->state_dirty = 1;
	if (f->offset < size && *budget <= 0)
		return f->due = now;	/* more than a tick's worth: the next tick goes on */
	if (f->offset < size && !quiet)
		return f->due = f->last_event + w->settle_ms;	/* sent whole once quiet */
	watch_unpend(w, f);
	return INT64_MAX;
}

/* Looks at due file f: gone, unchanged, followed or hashed; returns its next due time. */
static int64_t
settle(Watcher *w, WFile *f, int64_t now, int64_t *budget)
{
	struct stat st;
	int			fd = watch_open(f->ws, f->path, O_PATH);

	if (fd < 0)
	{
		open_failed(w, f);
		return INT64_MAX;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		watch_forget(w, f);		/* not a regular file (any more) */
		return INT64_MAX;
	}
	close(fd);
	if (f->follow)
		return follow(w, f, &st, now, budget);
	if (f->known && st.st_size == f->size && mtime_ns(&st) == f->mtime_ns)
	{
		watch_unpend(w, f);		/* as reported: nothing to say */
		return INT64_MAX;
	}
	return hash(w, f, now, budget);
}

/*
 * Looks at every pending file due by now and queues what they became; returns
 * when the watcher next has something to do (INT64_MAX: only on an event).
 */
int64_t
watch_tick(Watcher *w, int64_t now)
{
	int64_t		budget = WATCH_TICK_BYTES,
				next = INT64_MAX;

	if (w->queue_bytes + (int64_t) w->unqueued.len >= WATCH_QUEUE_MAX)
	{
		if (!w->warned_queue)
			log_warning("the watcher's queue holds %" PRId64 " bytes the server has not taken: changed files wait",
						w->queue_bytes);
		w->warned_queue = 1;
		next = now + QUEUE_FULL_RETRY_MS;
	}
	else
	{
		w->warned_queue = 0;
		for (WFile *f = w->pending, *fn; f != NULL; f = fn)
		{
			int64_t		due = f->due;

			fn = f->pnext;
			if (due <= now)
				due = budget > 0 ? settle(w, f, now, &budget) : now;
			if (due < next)
				next = due;
		}
	}
	if (watch_flush(w, now) < 0 && now + QUEUE_FULL_RETRY_MS < next)
		next = now + QUEUE_FULL_RETRY_MS;	/* the events wait in memory: try again */
	for (Workspace *ws = w->workspaces; ws != NULL; ws = ws->next)
		if (ws->state_dirty && w->next_save < next)
			next = w->next_save;
	return next;
}
