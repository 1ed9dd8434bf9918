/*
 * watch_send.c -- the watcher's way to the server.
 *
 * While connected, the agent's loop hands the queue to
 * dispatch.agent_file_events(node, events), oldest first, in batches of at
 * most WATCH_BATCH_EVENTS events and WATCH_BATCH_BYTES, and drops a batch
 * from the queue only once the call has succeeded (the server accepts a whole
 * batch, in order, or none of it).  A failed call keeps the batch and waits
 * RETRY_MS, like the jobs' reports; one the server refuses as bad data
 * (SQLSTATE class 22) also halves the batch, down to one event, so that one
 * event the server cannot take is found out, and that event alone is then
 * dropped with a warning: it must not stop every report after it.  Events the
 * server refused one by one (its answer's "rejected") are logged.  The answer's "want" entries
 * name the blobs the server lacks; they are saved before the batch is
 * dropped (a crash between sends the batch again, and the same want is not
 * added twice) and uploaded with dispatch.agent_put_blob, the content as a
 * binary bytea parameter, once read again and hashed again: a file that
 * changed since is skipped, its newer event follows.  A file over
 * WATCH_BLOB_MAX is not uploaded.  A loop turn sends at most SEND_BATCHES
 * batches and UPLOAD_BYTES of blobs, so jobs are never kept waiting long.
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

#define RETRY_MS 2000			/* wait after a failed call */
#define SEND_BATCHES 4			/* most agent_file_events calls in one loop turn */
#define UPLOAD_BYTES (64 * 1024 * 1024)	/* most blob bytes uploaded in one loop turn */

static int	add_wants(Watcher *w, const json_t *want);
static int	send_batch(Watcher *w, Conn *c, const char *node);
static int	read_blob(const Workspace *ws, const char *path, char **data, size_t *len);
static CallResult upload(Watcher *w, Conn *c, const char *node, const json_t *want, int64_t *budget);

/* After (re)connecting: calls may go at once. */
void
watch_resume(Watcher *w)
{
	w->retry_at = 0;
}

/* Adds the well-formed entries of the reply's "want" array that are not listed yet; returns how many. */
static int
add_wants(Watcher *w, const json_t *want)
{
	size_t		i,
				j;
	json_t	   *e,
			   *o;
	int			added = 0;

	json_array_foreach(want, i, e)
	{
		const char *ws = json_string_value(json_object_get(e, "workspace"));
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *sha = json_string_value(json_object_get(e, "sha256"));
		int			dup = 0;

		if (ws == NULL || path == NULL || sha == NULL)
		{
			log_warning("agent_file_events: ignoring a malformed \"want\" entry");
			continue;
		}
		json_array_foreach(w->wants, j, o)
			dup |= json_equal(o, e);
		if (!dup)
		{
			json_array_append_new(w->wants, json_pack("{s:s, s:s, s:s}", "workspace", ws, "path", path,
													  "sha256", sha));
			added++;
		}
	}
	return added;
}

/* Sends the oldest batch of the queue; returns its number of events (0: empty), or -1 when the call failed. */
static int
send_batch(Watcher *w, Conn *c, const char *node)
{
	char		err[AGENT_ERRLEN];
	StrBuf		json,
				reply;
	json_t	   *answer = NULL;
	int64_t		end;
	int			n;
	CallResult	cr;

	sb_init(&json);
	sb_init(&reply);
	if ((n = watch_queue_batch(w, w->max_events, &json, &end, err, sizeof(err))) <= 0)
	{
		if (n < 0)
			log_warning("watcher: %s", err);
		else if (end > w->queue_head && watch_queue_ack(w, end, err, sizeof(err)) < 0)
			n = -1;				/* only broken lines: nothing to send */
		goto out;
	}
	cr = conn_file_events(c, node, json.data, &reply, err, sizeof(err));
	if (cr == CALL_REJECTED && w->max_events > 1)
	{
		w->max_events /= 2;
		log_warning("agent_file_events refused a batch of %d events (%zu bytes): %s; sending at most %d events from now on",
					n, json.len, err, w->max_events);
		n = -1;
	}
	else if (cr == CALL_REJECTED)
	{
		/* one event the server refuses as data: dropped, or it would stop every report */
		log_warning("agent_file_events refused an event, which is dropped: %s", err);
		if (watch_queue_ack(w, end, err, sizeof(err)) < 0)
		{
			log_warning("watcher: %s", err);
			n = -1;
		}
	}
	else if (cr != CALL_OK)
	{
		log_warning("agent_file_events failed: %s", err);
		n = -1;
	}
	else if ((answer = jsonio_load(reply.data, 0, err, sizeof(err))) == NULL || !json_is_object(answer))
	{
		log_warning("agent_file_events: unexpected reply: %s", answer == NULL ? err : "not an object");
		n = -1;
	}
	else if (add_wants(w, json_object_get(answer, "want")) > 0 && watch_wants_save(w, err, sizeof(err)) < 0)
	{
		log_warning("watcher: %s", err);
		n = -1;					/* the batch goes again and the server wants again */
	}
	else if (watch_queue_ack(w, end, err, sizeof(err)) < 0)
	{
		log_warning("watcher: %s", err);
		n = -1;
	}
	else
	{
		const json_t *refused = json_object_get(answer, "rejected");

		if (json_array_size(refused) > 0)
			log_warning("agent_file_events: %zu event(s) refused, the first: %s", json_array_size(refused),
						json_string_value(json_object_get(json_array_get(refused, 0), "message")) ?: "(no message)");
		log_debug("agent_file_events: %d event(s) accepted, %zu blob(s) wanted", n, json_array_size(w->wants));
	}
out:
	json_decref(answer);
	sb_free(&reply);
	sb_free(&json);
	return n;
}

/*
 * Reads file path of ws whole into *data (malloc'd) and *len; returns 0, or
 * -1 (logged when it is more than a vanished file) when it is not a regular
 * file of at most WATCH_BLOB_MAX bytes.
 */
static int
read_blob(const Workspace *ws, const char *path, char **data, size_t *len)
{
	int			fd = watch_open(ws, path, O_RDONLY | O_NONBLOCK);
	struct stat st;
	ssize_t		n = 0;

	if (fd < 0)
	{
		if (errno != ENOENT)
			log_warning("workspace \"%s\": could not open \"%s\": %s", ws->name, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;			/* as good as gone */
	if (!S_ISREG(st.st_mode) || st.st_size > WATCH_BLOB_MAX)
	{
		if (S_ISREG(st.st_mode))
			log_warning("workspace \"%s\": not uploading \"%s\": its %lld bytes are more than %d",
						ws->name, path, (long long) st.st_size, WATCH_BLOB_MAX);
		close(fd);
		return -1;
	}
	*data = xmalloc((size_t) st.st_size + 1);	/* one more: growth shows as a longer read */
	*len = 0;
	while (*len <= (size_t) st.st_size &&
		   ((n = read(fd, *data + *len, (size_t) st.st_size + 1 - *len)) > 0 || (n < 0 && errno == EINTR)))
		*len += n > 0 ? (size_t) n : 0;
	close(fd);					/* read-only */
	if (n < 0)
	{
		log_warning("workspace \"%s\": could not read \"%s\": %s", ws->name, path, strerror(errno));
		free(*data);
		return -1;
	}
	return 0;
}

/*
 * Uploads one wanted blob if the file still is what the server wants (else
 * skips it); returns CALL_ERROR only when the call must be tried again.
 */
static CallResult
upload(Watcher *w, Conn *c, const char *node, const json_t *want, int64_t *budget)
{
	const char *name = json_string_value(json_object_get(want, "workspace"));
	const char *path = json_string_value(json_object_get(want, "path"));
	const char *sha = json_string_value(json_object_get(want, "sha256"));
	Workspace  *ws = watch_workspace(w, name);
	WFile	   *f = ws ? watch_file(ws, path) : NULL;
	char		hex[DIGEST_HEX_LEN + 1],
				err[AGENT_ERRLEN];
	char	   *data;
	size_t		len;
	CallResult	cr;

	/* only a file the watcher reported, as it reported it: never any path the server names */
	if (f == NULL || !f->known || f->follow || strcmp(f->sha256, sha) != 0 ||
		read_blob(ws, path, &data, &len) < 0)
		return CALL_OK;
	*budget -= (int64_t) len;
	if (digest_buf(data, len, hex, err, sizeof(err)) < 0 || strcmp(hex, sha) != 0)
	{
		log_debug("workspace \"%s\": \"%s\" changed since it was reported: not uploaded", name, path);
		free(data);
		return CALL_OK;
	}
	cr = conn_put_blob(c, node, name, path, sha, data, len, err, sizeof(err));
	free(data);
	if (cr == CALL_ERROR)
		log_warning("agent_put_blob failed: %s", err);
	else if (cr != CALL_OK)
		log_warning("agent_put_blob refused \"%s\" of workspace \"%s\": %s", path, name, err);
	return cr == CALL_ERROR ? CALL_ERROR : CALL_OK;
}

/*
 * Sends what the server is missing: queued events, then wanted blobs, a
 * bounded amount per call; after a failed call nothing goes for RETRY_MS.
 */
void
watch_send(Watcher *w, Conn *c, const char *node, int64_t now)
{
	char		err[AGENT_ERRLEN];
	int64_t		budget = UPLOAD_BYTES;
	int			uploaded = 0,
				n = 1;

	if (now < w->retry_at || !conn_ok(c))
		return;
	for (int i = 0; i < SEND_BATCHES && n > 0 && w->queue_bytes > 0; i++)
		n = send_batch(w, c, node);
	while (n >= 0 && budget > 0 && json_array_size(w->wants) > 0)
	{
		if (upload(w, c, node, json_array_get(w->wants, 0), &budget) == CALL_ERROR)
			n = -1;
		else
		{
			json_array_remove(w->wants, 0);
			uploaded++;
		}
	}
	if (uploaded > 0 && watch_wants_save(w, err, sizeof(err)) < 0)
		log_warning("watcher: %s", err);
	if (n < 0)
		w->retry_at = now + RETRY_MS;
}

/* Returns 1 and the earliest time for watch_send() in *deadline when something waits for the server. */
int
watch_want_send(const Watcher *w, int64_t *deadline)
{
	if (w->queue_bytes == 0 && json_array_size(w->wants) == 0)
		return 0;
	*deadline = w->retry_at;
	return 1;
}
