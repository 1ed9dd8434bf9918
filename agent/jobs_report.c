/*
 * jobs_report.c -- the jobs' way back to the server, and to the history file.
 *
 * Output is streamed, never polled: every job dir has an inotify watch
 * (jobs.c), an event marks the job dirty, and jobs_pump() sends the new bytes
 * of stdout and stderr (at most every OUTPUT_INTERVAL_MS per running job, in
 * chunks of up to CHUNK bytes, cut on a UTF-8 character boundary and
 * sanitized by utf8.c) from the byte offset the server holds.  After each
 * (re)connection that offset comes from agent_resume.  Once the status file
 * exists and all output is out, agent_finish reports the result and the job
 * dir goes away.  A report refused with SQLSTATE 55000 marks the job stale:
 * it is cancelled if still running and removed, unreported, when it ends.
 * After a failed call the pump waits RETRY_MS before calling again.  Each
 * job's end is also appended once to the agent's own history file.
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

#define CHUNK (64 * 1024)		/* most output bytes sent in one agent_output call */
#define OUTPUT_INTERVAL_MS 200	/* least time between two outputs of a running job */
#define RETRY_MS 2000			/* wait after a failed call */

static const char *const streams[2] = {"stdout", "stderr"};
static int64_t retry_at;		/* no calls before this time after a failed one */

static int	resume_job(Conn *c, Job *j);
static int	send_stream(Conn *c, Job *j, int s, int final);
static int	finish_job(Conn *c, Job *j);
static void put_file_size(StrBuf *sb, const Job *j, const char *name);
static void record_end(Job *j, int connected);
static int	pump_job(Conn *c, Job *j, int all, int64_t now);

/* Asks the server how much output of j it holds; returns -1 when the call failed. */
static int
resume_job(Conn *c, Job *j)
{
	char		err[AGENT_ERRLEN];
	int			cancel = 0;
	CallResult	rc = conn_resume(c, jobs_conf->node, j->job_id, j->attempt, &j->sent[0], &j->sent[1],
								 &cancel, err, sizeof(err));

	if (rc == CALL_STALE)
		jobs_make_stale(j, err);
	else if (rc != CALL_OK)
	{
		log_warning("job %" PRId64 ": agent_resume failed: %s", j->job_id, err);
		return -1;
	}
	else if (cancel)
		jobs_cancel(j);
	j->resumed = 1;
	j->dirty = 1;
	return 0;
}

/* After (re)connecting: forgets what the server held and asks again for every job. */
void
jobs_resume_all(Conn *c)
{
	retry_at = 0;
	for (Job *j = jobs_list; j != NULL; j = j->next)
		j->resumed = 0;
	for (Job *j = jobs_list; j != NULL && conn_ok(c); j = j->next)
		resume_job(c, j);
}

/*
 * Sends the output of stream s of j not yet held by the server, up to the end
 * of the file (final: the job ended, send even a cut character).  Returns 0
 * when caught up (or the server wants no more), -1 when a call failed.
 */
static int
send_stream(Conn *c, Job *j, int s, int final)
{
	char		path[PATH_MAX + 8], err[AGENT_ERRLEN];
	char	   *buf = xmalloc(CHUNK + 1);
	int			fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", j->dir, streams[s]);
	if (j->no_spool != NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
	{
		free(buf);
		return 0;				/* nothing written (yet) */
	}
	while (!j->output_stopped && !j->stale)
	{
		ssize_t		n = pread(fd, buf, CHUNK, (off_t) j->sent[s]);
		size_t		len;
		int64_t		stored;
		CallResult	cr;

		if (n <= 0)
		{
			if (n < 0)
				log_warning("could not read file \"%s\": %s", path, strerror(errno));
			break;
		}
		/* a full chunk may end in a cut character that the next read completes */
		len = utf8_sanitize(buf, (size_t) n, final && n < CHUNK);
		if (len == 0)
			break;
		buf[len] = '\0';
		cr = conn_output(c, jobs_conf->node, j->job_id, j->attempt, streams[s], j->sent[s], buf,
						 &stored, err, sizeof(err));
		if (cr == CALL_STALE)
			jobs_make_stale(j, err);
		else if (cr != CALL_OK)
		{
			log_warning("job %" PRId64 ": agent_output failed: %s", j->job_id, err);
			j->resumed = 0;		/* ask agent_resume where the server stands before retrying */
			rc = -1;
			break;
		}
		else if (stored < 0)
		{
			log_info("job %" PRId64 " attempt %d: output truncated by the server", j->job_id, j->attempt);
			j->output_stopped = 1;
		}
		else if (stored < j->sent[s] + (int64_t) len)
		{
			log_warning("job %" PRId64 ": server holds %" PRId64 " bytes of %s, expected %" PRId64,
						j->job_id, stored, streams[s], j->sent[s] + (int64_t) len);
			j->sent[s] = stored;
			rc = -1;
			break;
		}
		else
			j->sent[s] = stored;
	}
	close(fd);					/* read-only: nothing to lose */
	free(buf);
	return rc;
}

/* Reports the ended job j (its output is out); returns -1 when the call failed. */
static int
finish_job(Conn *c, Job *j)
{
	char		err[AGENT_ERRLEN];
	JobStatus	st;
	StrBuf		state;
	CallResult	rc;

	if (jobs_read_status(j, &st, err, sizeof(err)) < 0)
	{
		log_error("job %" PRId64 ": %s", j->job_id, err);
		memset(&st, 0, sizeof(st));
		snprintf(st.detail, sizeof(st.detail), "unreadable status file");
	}
	sb_init(&state);
	rc = conn_finish(c, jobs_conf->node, j->job_id, j->attempt, &st, &state, err, sizeof(err));
	if (rc == CALL_OK)
		log_info("job %" PRId64 " attempt %d reported (exit code %d, signal %d%s%s%s): %s", j->job_id,
				 j->attempt, st.has_exit ? st.exit_code : -1, st.signal,
				 st.timed_out ? ", timed out" : "", st.detail[0] ? ", " : "", st.detail, state.data);
	else if (rc == CALL_STALE)
		log_warning("job %" PRId64 " attempt %d: result refused: %s", j->job_id, j->attempt, err);
	else
		log_warning("job %" PRId64 ": agent_finish failed: %s", j->job_id, err);
	sb_free(&state);
	if (rc != CALL_OK && rc != CALL_STALE)
		return -1;
	jobs_drop(j, 1);
	return 0;
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

/* Brings the server up to date on j (may free j); returns -1 when a call failed. */
static int
pump_job(Conn *c, Job *j, int all, int64_t now)
{
	record_end(j, 1);			/* before a report may remove its spool dir */
	if (!j->stale && !j->resumed && resume_job(c, j) < 0)
		return -1;
	if (!j->stale && (all || j->done || (j->dirty && now >= j->next_send)))
	{
		j->dirty = 0;
		j->next_send = now + OUTPUT_INTERVAL_MS;
		if (send_stream(c, j, 0, j->done) < 0 || send_stream(c, j, 1, j->done) < 0)
			return -1;
		if (!j->stale && j->done)
			return finish_job(c, j);
	}
	if (j->stale && j->done)
		jobs_drop(j, 1);
	return 0;
}

/*
 * Sends what the server is missing: output of dirty jobs (of all jobs with
 * all set), then the results of ended jobs.  After a failed call it stops
 * and waits RETRY_MS before trying again.
 */
void
jobs_pump(Conn *c, int all)
{
	int64_t		now = proc_now_ms();
	Job		   *next;

	if (now < retry_at)
		return;
	for (Job *j = jobs_list; j != NULL && conn_ok(c); j = next)
	{
		next = j->next;
		if (pump_job(c, j, all, now) < 0)
		{
			retry_at = now + RETRY_MS;
			return;
		}
	}
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
