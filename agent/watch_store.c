/*
 * watch_store.c -- what the watcher keeps in the spool: its events, the state
 * of every workspace, and the blobs the server wants.
 *
 * <spool>/watch/ holds
 *   queue.jsonl   the events not yet accepted, one JSON object a line, oldest first
 *   queue.head    "INODE OFFSET": where the queue's unaccepted part starts
 *   WS.state      per workspace, one JSON object a line per file reported:
 *                 {"path", "size", "mtime_ns", "sha256"}, or "offset" for a followed file
 *   wants.json    the server's "want" entries not uploaded yet
 * An event goes into the queue (appended, fsync'd) before the state that
 * counts it as reported is saved, so a crash in between reports a file again
 * rather than never.  The state is saved at most every STATE_SAVE_MS (a
 * workspace of many busy files would otherwise be rewritten on every tick);
 * what a crash loses of it is reported again after the restart's rescan.
 * Accepting a batch moves the head (written crash-safely) instead of rewriting
 * the queue; once all is accepted the head is reset and then the queue
 * removed, and a head naming another inode than the queue's counts as 0, so a
 * crash between two of these steps sends events again but never skips one.
 * A line torn by a crash or a failed append is cut off or skipped.
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

#define STATE_SAVE_MS 1000		/* least time between two saves of the state files */

static void put_event(Watcher *w, json_t *ev);
static void queue_path(const Watcher *w, const char *name, char *out, size_t len);
static int	read_store(const Watcher *w, const char *name, StrBuf *text, char *err, size_t errlen);
static int	write_head(Watcher *w, int64_t ino, int64_t head, char *err, size_t errlen);
static int64_t last_line_end(int fd, int64_t from, int64_t size);
static int	load_line(Watcher *w, Workspace *ws, const char *line);

/* Appends ev (released) to the events not yet in the queue file. */
static void
put_event(Watcher *w, json_t *ev)
{
	jsonio_put(&w->unqueued, ev);
	sb_puts(&w->unqueued, "\n");
}

/* Queues a "changed" event for f with its size, mtime_ns and sha256. */
void
watch_put_changed(Watcher *w, const WFile *f)
{
	put_event(w, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "workspace", f->ws->name, "path", f->path,
						   "kind", "changed", "size", (json_int_t) f->size,
						   "mtime_ns", (json_int_t) f->mtime_ns, "sha256", f->sha256));
}

/* Queues a "deleted" event for f. */
void
watch_put_deleted(Watcher *w, const WFile *f)
{
	put_event(w, json_pack("{s:s, s:s, s:s}", "workspace", f->ws->name, "path", f->path,
						   "kind", "deleted"));
}

/* Queues an "append" event: len bytes of text (valid UTF-8, no NUL) at offset of followed file f. */
void
watch_put_append(Watcher *w, const WFile *f, int64_t offset, const char *data, size_t len)
{
	put_event(w, json_pack("{s:s, s:s, s:s, s:I, s:s%}", "workspace", f->ws->name, "path", f->path,
						   "kind", "append", "offset", (json_int_t) offset, "data", data, len));
}

/* Queues the "rescanned" event of ws: the events of its rescan are all queued. */
void
watch_put_rescanned(Watcher *w, const Workspace *ws)
{
	put_event(w, json_pack("{s:s, s:s}", "workspace", ws->name, "kind", "rescanned"));
}

/* Writes the path of <spool>/watch/name into out. */
static void
queue_path(const Watcher *w, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", w->dir, name);
}

/*
 * Appends the events not yet queued to the queue file, then, STATE_SAVE_MS
 * after the last save, saves the states that changed.
 * Returns 0, or -1 (logged) when the events or a state could not be written:
 * the events stay in memory for the next try, the state is not saved before.
 */
int
watch_flush(Watcher *w, int64_t now)
{
	char		err[AGENT_ERRLEN],
				path[PATH_MAX];
	int			rc = 0;

	if (w->unqueued.len > 0)
	{
		queue_path(w, "queue.jsonl", path, sizeof(path));
		if (spool_append_file(path, w->unqueued.data, w->unqueued.len, err, sizeof(err)) < 0)
		{
			log_warning("watcher: %s", err);
			/* a partial append must not tear the next one's first line */
			if (truncate(path, (off_t) (w->queue_head + w->queue_bytes)) < 0 && errno != ENOENT)
				log_warning("watcher: could not truncate \"%s\": %s", path, strerror(errno));
			return -1;
		}
		w->queue_bytes += (int64_t) w->unqueued.len;
		w->unqueued.len = 0;
		w->unqueued.data[0] = '\0';
	}
	if (now < w->next_save)
		return 0;
	for (Workspace *ws = w->workspaces; ws != NULL; ws = ws->next)
		if (ws->state_dirty)
		{
			w->next_save = now + STATE_SAVE_MS; /* a failed save too is tried again then */
			if (watch_state_save(w, ws, err, sizeof(err)) < 0)
			{
				log_warning("watcher: %s", err);
				rc = -1;
			}
		}
	return rc;
}

/* Writes the queue's head crash-safely: the inode of the queue file and the offset. */
static int
write_head(Watcher *w, int64_t ino, int64_t head, char *err, size_t errlen)
{
	char		buf[64];
	int			n = snprintf(buf, sizeof(buf), "%" PRId64 " %" PRId64 "\n", ino, head);

	return spool_write_file(w->dir, "queue.head", buf, (size_t) n, err, errlen);
}

/* Returns the offset just past the last newline of fd in [from, size), or from when there is none. */
static int64_t
last_line_end(int fd, int64_t from, int64_t size)
{
	char		buf[4096];

	for (int64_t end = size; end > from;)
	{
		int64_t		start = end - (int64_t) sizeof(buf) > from ? end - (int64_t) sizeof(buf) : from;
		ssize_t		n = pread(fd, buf, (size_t) (end - start), (off_t) start);

		if (n <= 0)
			break;
		for (ssize_t i = n - 1; i >= 0; i--)
			if (buf[i] == '\n')
				return start + i + 1;
		end = start;
	}
	return from;
}

/* Reads the queue's head and size, cutting off a line a crash left unfinished. */
int
watch_queue_open(Watcher *w, char *err, size_t errlen)
{
	char		path[PATH_MAX];
	StrBuf		text;
	long long	ino = 0,
				head = 0;
	struct stat st;
	int			fd;

	queue_path(w, "queue.head", path, sizeof(path));
	if (spool_read_text(path, &text, err, errlen) == 0)
	{
		if (sscanf(text.data, "%lld %lld", &ino, &head) != 2)
			ino = head = 0;
		sb_free(&text);
	}
	queue_path(w, "queue.jsonl", path, sizeof(path));
	w->queue_head = w->queue_bytes = 0;
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return 0;				/* no queue: nothing waits */
	if (fstat(fd, &st) == 0)
	{
		int64_t		end = last_line_end(fd, 0, (int64_t) st.st_size);

		if (end < (int64_t) st.st_size && ftruncate(fd, (off_t) end) < 0)
			log_warning("watcher: could not truncate \"%s\": %s", path, strerror(errno));
		if ((long long) st.st_ino == ino && head >= 0 && head <= end)
			w->queue_head = head;
		w->queue_bytes = end - w->queue_head;
	}
	close(fd);
	return 0;
}

/*
 * Puts the oldest queued events into json (initialised) as a JSON array: at
 * most max_events and WATCH_BATCH_BYTES in all; *end is the queue offset after
 * them.  Returns how many (0: none), or -1.  A line that is not a JSON object
 * (torn) is skipped with a warning, though *end moves past it.
 */
int
watch_queue_batch(Watcher *w, int max_events, StrBuf *json, int64_t *end, char *err, size_t errlen)
{
	char		path[PATH_MAX];
	size_t		want = (size_t) (w->queue_bytes < WATCH_BATCH_BYTES - 1 ? w->queue_bytes : WATCH_BATCH_BYTES - 1);
	char	   *buf;
	ssize_t		n = 0;
	size_t		pos = 0;
	int			count = 0,
				fd;

	*end = w->queue_head;
	sb_puts(json, "[");
	if (want > 0)
	{
		queue_path(w, "queue.jsonl", path, sizeof(path));
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		{
			agent_seterr(err, errlen, "could not open file \"%s\": %s", path, strerror(errno));
			return -1;
		}
		buf = xmalloc(want + 1);
		n = pread(fd, buf, want, (off_t) w->queue_head);
		close(fd);				/* read-only */
		while (n > 0 && count < max_events && pos < (size_t) n)
		{
			char	   *nl = memchr(buf + pos, '\n', (size_t) n - pos);
			json_t	   *ev;

			if (nl == NULL)
				break;
			*nl = '\0';
			if ((ev = jsonio_load(buf + pos, 0, err, errlen)) == NULL || !json_is_object(ev))
				log_warning("watcher: skipping a broken line of \"%s\" at offset %" PRId64,
							path, w->queue_head + (int64_t) pos);
			else
			{
				sb_puts(json, count++ > 0 ? "," : "");
				sb_append(json, buf + pos, (size_t) (nl - buf) - pos);
			}
			json_decref(ev);
			pos = (size_t) (nl - buf) + 1;
		}
		free(buf);
		if (n < 0)
		{
			agent_seterr(err, errlen, "could not read file \"%s\": %s", path, strerror(errno));
			return -1;
		}
	}
	sb_puts(json, "]");
	*end = w->queue_head + (int64_t) pos;
	return count;
}

/* Drops the queued events before offset end (accepted by the server); the queue goes once empty. */
int
watch_queue_ack(Watcher *w, int64_t end, char *err, size_t errlen)
{
	char		path[PATH_MAX];
	struct stat st;

	queue_path(w, "queue.jsonl", path, sizeof(path));
	w->queue_bytes -= end - w->queue_head;
	w->queue_head = end;
	if (w->queue_bytes == 0)
	{
		w->queue_head = 0;
		if (write_head(w, 0, 0, err, errlen) < 0)
			return -1;
		if (unlink(path) < 0 && errno != ENOENT)
		{
			agent_seterr(err, errlen, "could not remove file \"%s\": %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (stat(path, &st) < 0)
	{
		agent_seterr(err, errlen, "could not stat file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return write_head(w, (int64_t) st.st_ino, end, err, errlen);
}

/* Applies one line of ws's state file; returns -1 when it is not a state line. */
static int
load_line(Watcher *w, Workspace *ws, const char *line)
{
	char		err[AGENT_ERRLEN];
	json_t	   *v = jsonio_load(line, 0, err, sizeof(err));
	const char *path = json_string_value(json_object_get(v, "path"));
	const char *sha = json_string_value(json_object_get(v, "sha256"));
	int64_t		size,
				mtime,
				offset = -1;
	WFile	   *f;

	if (path == NULL || jsonio_int(json_object_get(v, "size"), &size) < 0 ||
		jsonio_int(json_object_get(v, "mtime_ns"), &mtime) < 0 ||
		(sha == NULL && jsonio_int(json_object_get(v, "offset"), &offset) < 0) ||
		(sha != NULL && strlen(sha) != DIGEST_HEX_LEN) ||
		strlen(path) > WATCH_PATH_MAX || (f = watch_file_add(w, ws, path)) == NULL)
	{
		json_decref(v);
		return -1;
	}
	/* a file that changed between followed and hashed is new to the server's eyes */
	if (f->follow ? sha == NULL : sha != NULL)
	{
		f->known = 1;
		f->size = size;
		f->mtime_ns = mtime;
		f->offset = offset;
		if (sha != NULL)
			memcpy(f->sha256, sha, DIGEST_HEX_LEN + 1);
	}
	json_decref(v);
	return 0;
}

/* Reads <spool>/watch/name, if it exists, into text (then initialised); returns 1, 0 (none) or -1. */
static int
read_store(const Watcher *w, const char *name, StrBuf *text, char *err, size_t errlen)
{
	char		path[PATH_MAX];

	queue_path(w, name, path, sizeof(path));
	if (access(path, F_OK) < 0)
		return 0;
	return spool_read_text(path, text, err, errlen) < 0 ? -1 : 1;
}

/* Loads ws's state file, if any: the files reported before, as they were. */
int
watch_state_load(Watcher *w, Workspace *ws, char *err, size_t errlen)
{
	char		name[PATH_MAX];
	StrBuf		text;
	int			bad = 0,
				rc;

	snprintf(name, sizeof(name), "%s.state", ws->name);
	if ((rc = read_store(w, name, &text, err, errlen)) <= 0)
		return rc;
	for (char *line = text.data, *nl; *line; line = nl + 1)
	{
		if ((nl = strchr(line, '\n')) == NULL)
			break;				/* cannot happen: the file is written whole */
		*nl = '\0';
		bad += load_line(w, ws, line) < 0;
	}
	if (bad > 0)
		log_warning("watcher: ignored %d bad line(s) of \"%s/%s\"", bad, w->dir, name);
	sb_free(&text);
	return 0;
}

/* Saves ws's state file crash-safely: a line per file reported. */
int
watch_state_save(Watcher *w, Workspace *ws, char *err, size_t errlen)
{
	char		name[PATH_MAX];
	StrBuf		text;
	size_t		b = 0;
	int			rc;

	sb_init(&text);
	for (WEntry *e = wtable_next(&ws->files, &b, NULL); e != NULL; e = wtable_next(&ws->files, &b, e))
	{
		const WFile *f = (const WFile *) e;

		if (!f->known)
			continue;
		if (f->follow)
			jsonio_put(&text, json_pack("{s:s, s:I, s:I, s:I}", "path", f->path, "size", (json_int_t) f->size,
										"mtime_ns", (json_int_t) f->mtime_ns, "offset", (json_int_t) f->offset));
		else
			jsonio_put(&text, json_pack("{s:s, s:I, s:I, s:s}", "path", f->path, "size", (json_int_t) f->size,
										"mtime_ns", (json_int_t) f->mtime_ns, "sha256", f->sha256));
		sb_puts(&text, "\n");
	}
	snprintf(name, sizeof(name), "%s.state", ws->name);
	rc = spool_write_file(w->dir, name, text.data, text.len, err, errlen);
	sb_free(&text);
	if (rc == 0)
		ws->state_dirty = 0;
	return rc;
}

/* Loads the wanted blobs not uploaded before a restart. */
int
watch_wants_load(Watcher *w, char *err, size_t errlen)
{
	StrBuf		text;
	json_t	   *v;
	int			rc;

	if ((rc = read_store(w, "wants.json", &text, err, errlen)) <= 0)
		return rc;
	if ((v = jsonio_load(text.data, 0, err, errlen)) != NULL && json_is_array(v))
	{
		json_decref(w->wants);
		w->wants = v;
	}
	else
	{
		log_warning("watcher: ignoring \"%s/wants.json\": %s", w->dir, v == NULL ? err : "not an array");
		json_decref(v);
	}
	sb_free(&text);
	return 0;
}

/* Saves the wanted blobs not uploaded yet crash-safely. */
int
watch_wants_save(Watcher *w, char *err, size_t errlen)
{
	StrBuf		text;
	int			rc;

	sb_init(&text);
	jsonio_put(&text, json_incref(w->wants));
	rc = spool_write_file(w->dir, "wants.json", text.data, text.len, err, errlen);
	sb_free(&text);
	return rc;
}
