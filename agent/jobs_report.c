/*
 * jobs_report.c -- the jobs' way back to the server, and to the history file.
 *
 * Output is streamed, never polled: every job dir has an inotify watch
 * (jobs.c), an event marks the job dirty, and jobs_pump() reports what is
 * ready in one dispatch.agent_report call per event-loop round: for each job
 * the new bytes of stdout and stderr (at most CHUNK per stream, cut on a
 * UTF-8 character boundary and sanitized by utf8.c) from the byte offset the
 * server holds and, once the status file exists and all output is in the
 * batch, the job's end.  A batch holds at most BATCH_REPORTS reports and
 * BATCH_BYTES output bytes (below the server's dispatch.agent_report_max_batch
 * and _max_size defaults; when the server refuses a batch as too large, the
 * limits are halved).  A running job's output goes at most every
 * OUTPUT_INTERVAL_MS unless more than a chunk is waiting.  After each
 * (re)connection every job is first asked about (a report with neither part:
 * how much output the server holds, whether a cancel is pending), so the
 * spool is replayed in batches too.  The answer says per report accepted,
 * stale or rejected: a stale job is cancelled if still running and removed,
 * unreported, when it ends; a rejected one (its output would leave a gap) is
 * asked about again.  After a failed call the pump waits RETRY_MS before
 * calling again.  A build job's end waits until its outputs are stored
 * (jobs_artefacts.c); its finish then carries outputs_error when they could
 * not be.  Each job's end is also appended once to the agent's own
 * history file.
 */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64 * 1024)		/* most bytes of one stream of one job in one batch */
#define BATCH_REPORTS 256		/* most reports in one call (server default 1000) */
#define BATCH_BYTES (4 * 1024 * 1024)	/* most output bytes in one call (server default 16 MB) */
#define OUTPUT_INTERVAL_MS 200	/* least time between two outputs of a running job */
#define RETRY_MS 2000			/* wait after a failed call */

/* One report of a batch: its job and what it carries. */
typedef struct Report
{
	Job		   *job;
	int			finish;			/* carries the job's end */
	int			more;			/* output is left for a later batch */
} Report;

/* The batch being built: its JSON text and its reports, in the same order. */
typedef struct Batch
{
	StrBuf		json;
	Report		reports[BATCH_REPORTS];
	int			n;
	size_t		bytes;			/* output bytes in it */
} Batch;

static const char *const streams[2] = {"stdout", "stderr"};
static int64_t retry_at;		/* no calls before this time after a failed one */
static int	max_reports = BATCH_REPORTS;	/* halved when the server refuses a batch */
static size_t max_bytes = BATCH_BYTES;

static int	put_stream(Batch *b, Job *j, int s, int final, int *more);
static void cut_json(Batch *b, size_t len);
static void add_report(Batch *b, Job *j, int query);
static int	apply_answer(Report *r, const json_t *a);
static int	send_batch(Conn *c, Batch *b);
static void put_file_size(StrBuf *sb, const Job *j, const char *name);
static void record_end(Job *j, int connected);

/* After (re)connecting: forgets what the server held; the next batches ask again for every job. */
void
jobs_resume_all(void)
{
	retry_at = 0;
	for (Job *j = jobs_list; j != NULL; j = j->next)
		j->resumed = 0;
}

/*
 * Appends to b the output of stream s of j the server does not hold, up to
 * CHUNK bytes and what is left of the batch's budget (final: the job ended,
 * send even a cut character); sets *more when the file may hold more.
 * Returns 1 when a chunk was added.
 */
static int
put_stream(Batch *b, Job *j, int s, int final, int *more)
{
	char		path[PATH_MAX + 8];
	size_t		cap = max_bytes - b->bytes < CHUNK ? max_bytes - b->bytes : CHUNK;
	char	   *buf;
	ssize_t		n;
	size_t		len;
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", j->dir, streams[s]);
	if (j->output_stopped || j->no_spool != NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;				/* nothing written (yet), or nothing wanted */
	buf = xmalloc(cap + 1);
	n = cap > 0 ? pread(fd, buf, cap, (off_t) j->sent[s]) : 0;
	if (n < 0)
		log_warning("could not read file \"%s\": %s", path, strerror(errno));
	close(fd);					/* read-only: nothing to lose */
	if (cap == 0 || n == (ssize_t) cap)
		*more = 1;
	/* a full read may end in a cut character that the next read completes */
	len = n > 0 ? utf8_sanitize(buf, (size_t) n, final && n < (ssize_t) cap) : 0;
	if (len > 0)
	{
		buf[len] = '\0';
		sb_printf(&b->json, "%s{\"stream\":\"%s\",\"offset\":%" PRId64 ",\"data\":",
				  b->json.data[b->json.len - 1] == '[' ? "" : ",", streams[s], j->sent[s]);
		jsonio_put_str(&b->json, buf);
		sb_puts(&b->json, "}");
		b->bytes += len;
	}
	free(buf);
	return len > 0;
}

/* Truncates b's JSON text back to len bytes. */
static void
cut_json(Batch *b, size_t len)
{
	b->json.len = len;
	b->json.data[len] = '\0';
}

/*
 * Appends j's report to b: a question only (query), else its new output and,
 * once all is out, its end; a report that would carry neither is left out.
 */
static void
add_report(Batch *b, Job *j, int query)
{
	Report	   *r = &b->reports[b->n++];
	JobStatus	st;
	char		err[AGENT_ERRLEN];
	size_t		start = b->json.len, output;
	int			chunks = 0,
				ended = j->done && j->outputs == OUTPUTS_SETTLED;

	r->job = j;
	r->finish = 0;
	r->more = 0;
	sb_printf(&b->json, "%s{\"job_id\":%" PRId64 ",\"attempt\":%d", b->n > 1 ? "," : "",
			  j->job_id, j->attempt);
	if (!query)
	{
		output = b->json.len;
		sb_puts(&b->json, ",\"output\":[");
		chunks += put_stream(b, j, 0, j->done, &r->more);
		chunks += put_stream(b, j, 1, j->done, &r->more);
		if (chunks > 0)
			sb_puts(&b->json, "]");
		else
			cut_json(b, output);
	}
	if (!query && chunks == 0 && !(ended && !r->more))
	{
		cut_json(b, start);		/* nothing new: no report */
		b->n--;
		if (r->more)
		{
			j->dirty = 1;		/* the batch was full: next round */
			j->next_send = 0;
		}
		return;
	}
	if (!query && ended && !r->more)
	{
		if (jobs_read_status(j, &st, err, sizeof(err)) < 0)
		{
			log_error("job %" PRId64 ": %s", j->job_id, err);
			memset(&st, 0, sizeof(st));
			snprintf(st.detail, sizeof(st.detail), "unreadable status file");
		}
		r->finish = 1;
		sb_puts(&b->json, ",\"finish\":{\"exit_code\":");
		if (st.has_exit)
			sb_printf(&b->json, "%d", st.exit_code);
		else
			sb_puts(&b->json, "null");
		if (st.signal)
			sb_printf(&b->json, ",\"signal\":%d", st.signal);
		sb_printf(&b->json, ",\"timed_out\":%s", st.timed_out ? "true" : "false");
		if (st.detail[0])
		{
			sb_puts(&b->json, ",\"detail\":");
			jsonio_put_str(&b->json, st.detail);
		}
		if (j->no_spool == NULL)
			b->bytes += result_put_finish(&b->json, j->dir);
		if (j->outputs_error != NULL)
		{
			sb_puts(&b->json, ",\"outputs_error\":");
			jsonio_put_str(&b->json, j->outputs_error);
		}
		sb_puts(&b->json, "}");
		log_debug("job %" PRId64 " attempt %d: reporting its end (exit code %d, signal %d%s%s%s)",
				  j->job_id, j->attempt, st.has_exit ? st.exit_code : -1, st.signal,
				  st.timed_out ? ", timed out" : "", st.detail[0] ? ", " : "", st.detail);
	}
	sb_puts(&b->json, "}");
}

/* Applies the server's answer a to report r (may free its job); returns -1 when the report was rejected. */
static int
apply_answer(Report *r, const json_t *a)
{
	Job		   *j = r->job;
	const char *status = json_string_value(json_object_get(a, "status"));
	const char *why = json_string_value(json_object_get(a, "message"));
	const char *state = json_string_value(json_object_get(a, "state"));
	int64_t		n;

	if (why == NULL)
		why = "no reason given";
	if (status == NULL || strcmp(status, "rejected") == 0)
	{
		log_warning("job %" PRId64 " attempt %d: report rejected: %s", j->job_id, j->attempt, why);
		j->resumed = 0;			/* ask where the server stands before sending again */
		return -1;
	}
	if (strcmp(status, "stale") == 0)
	{
		jobs_make_stale(j, why);
		if (j->done)
			jobs_drop(j, 1);
		return 0;
	}
	for (int s = 0; s < 2; s++)
		if (jsonio_int(json_object_get(a, streams[s]), &n) == 0)
			j->sent[s] = n;
	if (json_is_true(json_object_get(a, "truncated")) && !j->output_stopped)
	{
		log_info("job %" PRId64 " attempt %d: output truncated by the server", j->job_id, j->attempt);
		j->output_stopped = 1;
	}
	if (json_is_true(json_object_get(a, "cancel")))
		jobs_cancel(j);
	j->resumed = 1;
	if (r->more)
	{
		j->dirty = 1;
		j->next_send = 0;		/* more than a chunk waits: no pause */
	}
	if (r->finish)
	{
		log_info("job %" PRId64 " attempt %d reported: %s", j->job_id, j->attempt,
				 state != NULL ? state : "?");
		jobs_drop(j, 1);
	}
	return 0;
}

/* Sends batch b with agent_report and applies the answers; returns -1 when the call failed. */
static int
send_batch(Conn *c, Batch *b)
{
	char		err[AGENT_ERRLEN];
	StrBuf		reply;
	json_t	   *answers = NULL;
	int			i, ends = 0, rc = 0;
	CallResult	cr;

	for (i = 0; i < b->n; i++)
		ends += b->reports[i].finish;
	log_debug("agent_report: %d report(s), %d end(s), %zu output bytes", b->n, ends, b->bytes);
	sb_init(&reply);
	cr = conn_report(c, jobs_conf->node, b->json.data, &reply, err, sizeof(err));
	if (cr == CALL_REJECTED && (max_reports > 1 || max_bytes > CHUNK))
	{
		max_reports = max_reports > 1 ? max_reports / 2 : 1;
		max_bytes = max_bytes / 2 > CHUNK ? max_bytes / 2 : CHUNK;
		log_warning("agent_report refused a batch of %d reports (%zu output bytes): %s; "
					"sending at most %d reports and %zu bytes from now on",
					b->n, b->bytes, err, max_reports, max_bytes);
		rc = -1;
	}
	else if (cr != CALL_OK)
	{
		log_warning("agent_report failed: %s", err);
		rc = -1;
	}
	else if ((answers = jsonio_load(reply.data, 0, err, sizeof(err))) == NULL ||
			 !json_is_array(answers))
	{
		log_warning("agent_report: unexpected reply: %s", answers == NULL ? err : "not an array");
		rc = -1;
	}
	else
	{
		for (i = 0; i < b->n && (size_t) i < json_array_size(answers); i++)
			if (apply_answer(&b->reports[i], json_array_get(answers, i)) < 0)
				rc = -1;
		if (i < b->n)
			log_warning("agent_report answered %d of %d reports", i, b->n);
	}
	json_decref(answers);
	sb_free(&reply);
	return rc;
}

/* Appends ",\"<name>_bytes\":N" for file name of j's spool dir (0 when missing) to sb. */
static void
put_file_size(StrBuf *sb, const Job *j, const char *name)
{
	char		path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", j->dir, name);
	sb_printf(sb, ",\"%s_bytes\":%lld", name,
			  j->no_spool == NULL && stat(path, &st) == 0 ? (long long) st.st_size : 0LL);
}

/*
 * Appends the end of j to the agent's history file, once: a "logged" marker in
 * its spool dir remembers it across restarts (a crash between the two writes
 * repeats the line).  A failure is logged and not retried.
 */
static void
record_end(Job *j, int connected)
{
	char		err[AGENT_ERRLEN], path[PATH_MAX];
	JobStatus	st;
	JobMeta		m;
	StrBuf		line;
	struct stat sst;

	if (!j->done || j->logged || jobs_conf->history_file == NULL)
		return;
	j->logged = 1;
	if (j->no_spool == NULL && spool_exists(j->dir, "logged"))
		return;
	sb_init(&line);
	history_begin(&line, "job", jobs_conf->node);
	sb_printf(&line, ",\"job_id\":%" PRId64 ",\"attempt\":%d", j->job_id, j->attempt);
	if (j->no_spool == NULL && spool_read_meta(j->dir, &m, err, sizeof(err)) == 0)
	{
		sb_puts(&line, ",\"started_at\":");
		history_put_time(&line, m.started_at * 1000);
	}
	snprintf(path, sizeof(path), "%s/status", j->dir);
	if (j->no_spool == NULL && stat(path, &sst) == 0)
	{
		sb_puts(&line, ",\"finished_at\":");
		history_put_time(&line, (int64_t) sst.st_mtim.tv_sec * 1000 + sst.st_mtim.tv_nsec / 1000000);
	}
	if (jobs_read_status(j, &st, err, sizeof(err)) == 0)
	{
		if (st.has_exit)
			sb_printf(&line, ",\"exit_code\":%d", st.exit_code);
		else
			sb_puts(&line, ",\"exit_code\":null");
		sb_printf(&line, ",\"signal\":%d,\"timed_out\":%s,\"cancelled\":%s,\"detail\":", st.signal,
				  st.timed_out ? "true" : "false", st.cancelled ? "true" : "false");
		jsonio_put_str(&line, st.detail);
	}
	put_file_size(&line, j, "stdout");
	put_file_size(&line, j, "stderr");
	sb_printf(&line, ",\"connected\":%s", connected ? "true" : "false");
	if (history_append(jobs_conf->history_file, &line, err, sizeof(err)) < 0 ||
		(j->no_spool == NULL && spool_write_file(j->dir, "logged", "", 0, err, sizeof(err)) < 0))
		log_warning("job %" PRId64 " attempt %d: %s", j->job_id, j->attempt, err);
	sb_free(&line);
}

/* Appends every job that ended and is not in the history file yet to it. */
void
jobs_record_ended(int connected)
{
	for (Job *j = jobs_list; j != NULL; j = j->next)
		record_end(j, connected);
}

/*
 * Sends what the server is missing in one batch: questions for the jobs it has
 * not been asked about on this connection, else the output of dirty jobs (of
 * all jobs with all set) and the ends of ended ones.  A later round sends
 * what did not fit.  After a failed call it waits RETRY_MS.
 */
void
jobs_pump(Conn *c, int all)
{
	int64_t		now = proc_now_ms();
	int			query = 0;
	Batch		b;
	Job		   *next;

	if (now < retry_at || !conn_ok(c))
		return;
	for (Job *j = jobs_list; j != NULL; j = next)
	{
		next = j->next;
		record_end(j, 1);		/* before a report may remove its spool dir */
		if (j->stale && j->done)
			jobs_drop(j, 1);
		else if (!j->stale && !j->resumed)
			query = 1;
	}
	jobs_store(c);				/* a build job's end waits for its outputs */
	if (!conn_ok(c))
		return;
	sb_init(&b.json);
	sb_puts(&b.json, "[");
	b.n = 0;
	b.bytes = 0;
	for (Job *j = jobs_list; j != NULL && b.n < max_reports && b.bytes < max_bytes; j = j->next)
	{
		if (j->stale || (query ? j->resumed : !(all || j->done || (j->dirty && now >= j->next_send))))
			continue;
		if (!query)
		{
			j->dirty = 0;
			j->next_send = now + OUTPUT_INTERVAL_MS;
		}
		add_report(&b, j, query);
	}
	sb_puts(&b.json, "]");
	if (b.n > 0 && send_batch(c, &b) < 0)
		retry_at = now + RETRY_MS;
	sb_free(&b.json);
}

/* Returns 1 and the earliest time in *deadline when some job has something to send. */
int
jobs_want_pump(int64_t *deadline)
{
	int			want = 0;

	for (Job *j = jobs_list; j != NULL; j = j->next)
		if (j->stale ? j->done : (j->dirty || j->done || !j->resumed))
		{
			int64_t		t = (j->done || !j->resumed) ? retry_at : j->next_send;

			if (t < retry_at)
				t = retry_at;

			if (!want || t < *deadline)
				*deadline = t;
			want = 1;
		}
	return want;
}
