/*
 * jobs.c -- the agent's table of jobs and their way back to the server.
 *
 * A job lives in the spool from the moment it is claimed until its result is
 * acknowledged: jobs_on_poll_row() creates <workdir>/jobs/<id>.<attempt>/ and
 * forks its supervisor (runner.c); the supervisor writes the status file when
 * the job ends.  The spool, not this table, is the truth: jobs_init() rebuilds
 * the table from it after a restart, and a job whose supervisor is gone
 * without a status gets one saying "supervisor vanished".
 *
 * Output is streamed, never polled: every job dir has an inotify watch, an
 * event marks the job dirty, and jobs_pump() sends the new bytes of stdout and
 * stderr (at most every OUTPUT_INTERVAL_MS per running job, in chunks of up to
 * CHUNK bytes, cut on a UTF-8 character boundary and sanitized by utf8.c)
 * from the byte offset the server holds.  After each (re)connection that
 * offset comes from agent_resume.  Once the status file exists and all
 * output is out, agent_finish reports the result and the job dir goes away.
 * A report refused with SQLSTATE 55000 marks the job stale: it is cancelled
 * if still running and removed, unreported, when it ends.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define OUTPUT_INTERVAL_MS 200
#define RETRY_MS 2000

extern char **environ;

typedef struct Job
{
	int64_t		job_id;
	int			attempt;
	char		dir[PATH_MAX];
	pid_t		pid;			/* supervisor; 0 when unknown */
	unsigned long long starttime;	/* supervisor's, to tell a reused pid */
	int			wd;				/* inotify watch, -1 if none */
	int64_t		sent[2];		/* bytes of stdout/stderr the server holds */
	int			resumed;		/* sent[] is valid for the current connection */
	int			done;			/* the status file exists */
	int			stale;			/* the server refused a report: never report again */
	int			output_stopped; /* the server truncated the output */
	int			dirty;			/* output may have grown */
	int			cancel_sent;
	int			logged;			/* its end is in the history file ("logged" marker) */
	int64_t		next_send;		/* earliest time for the next output of a running job */
	struct Job *next;
} Job;

static const char *const streams[2] = {"stdout", "stderr"};
static const AgentConf *conf;
static Job *jobs;
static int	ino_fd = -1;
static char jobs_root[PATH_MAX];
static int64_t retry_at;		/* no calls before this time after a failed one */

static Job *add_job(int64_t job_id, int attempt, char *err, size_t errlen);
static void set_status(Job *j, const char *detail);
static Job *find_job(int64_t job_id, int attempt);
static void drop_job(Job *j, int remove);
static void cancel_job(Job *j);
static void adopt(const char *name);
static void make_stale(Job *j, const char *why);
static int resume_job(Conn *c, Job *j);
static void start_job(const JobSpec *spec);
static int send_stream(Conn *c, Job *j, int s, int final);
static int finish_job(Conn *c, Job *j);
static int pump_job(Conn *c, Job *j, int all, int64_t now);
static void record_end(Job *j, int connected);
static void put_file_size(StrBuf *sb, const char *dir, const char *name);

/* Returns the job (job_id, attempt), or NULL. */
static Job *
find_job(int64_t job_id, int attempt)
{
	for (Job *j = jobs; j != NULL; j = j->next)
		if (j->job_id == job_id && j->attempt == attempt)
			return j;
	return NULL;
}

/* Creates the table entry for (job_id, attempt) with an inotify watch on its (existing) dir. */
static Job *
add_job(int64_t job_id, int attempt, char *err, size_t errlen)
{
	Job		   *j = xmalloc(sizeof(Job));

	memset(j, 0, sizeof(Job));
	j->job_id = job_id;
	j->attempt = attempt;
	snprintf(j->dir, sizeof(j->dir), "%s/%" PRId64 ".%d", jobs_root, job_id, attempt);
	j->wd = inotify_add_watch(ino_fd, j->dir, IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO);
	if (j->wd < 0)
	{
		agent_seterr(err, errlen, "could not watch \"%s\": %s", j->dir, strerror(errno));
		free(j);
		return NULL;
	}
	j->dirty = 1;
	j->next = jobs;
	jobs = j;
	return j;
}

/* Unlinks j from the table and frees it; with remove set, deletes its spool dir too. */
static void
drop_job(Job *j, int remove)
{
	char		err[AGENT_ERRLEN];

	for (Job **p = &jobs; *p != NULL; p = &(*p)->next)
		if (*p == j)
		{
			*p = j->next;
			break;
		}
	if (j->wd >= 0)
		inotify_rm_watch(ino_fd, j->wd);
	if (remove && conf->keep_workdirs)
	{
		if (spool_write_file(j->dir, "reported", "", 0, err, sizeof(err)) < 0)
			log_warning("%s", err);
	}
	else if (remove && spool_remove_tree(j->dir, err, sizeof(err)) < 0)
		log_warning("%s", err);
	free(j);
}

/*
 * Marks j done, writing a status with detail first unless the supervisor left
 * one; processes the dead supervisor left behind (in its session) are killed.
 */
static void
set_status(Job *j, const char *detail)
{
	JobStatus	st;
	char		err[AGENT_ERRLEN];
	int			killed;

	j->dirty = 1;
	if (spool_exists(j->dir, "status"))
	{
		j->done = 1;
		return;
	}
	if (j->pid > 0 && (killed = runner_kill_session(j->pid)) > 0)
		log_warning("job %" PRId64 ": killed %d process(es) its supervisor left behind", j->job_id, killed);
	memset(&st, 0, sizeof(st));
	snprintf(st.detail, sizeof(st.detail), "%s", detail);
	if (spool_write_status(j->dir, &st, err, sizeof(err)) < 0)
	{
		log_error("job %" PRId64 ": %s", j->job_id, err);
		return;					/* retried by the next jobs_check_alive() */
	}
	log_warning("job %" PRId64 " attempt %d: %s", j->job_id, j->attempt, detail);
	j->done = 1;
}

/* Sends SIGTERM to j's supervisor once, which cancels the job (TERM, then KILL after the grace). */
static void
cancel_job(Job *j)
{
	if (j->done || j->cancel_sent)
		return;
	if (spool_alive(j->pid, j->starttime) && kill(j->pid, SIGTERM) == 0)
	{
		log_info("job %" PRId64 " attempt %d: cancelling", j->job_id, j->attempt);
		j->cancel_sent = 1;
	}
}

/* Takes up spool dir name (from a previous agent) unless it is not a job dir or already reported. */
static void
adopt(const char *name)
{
	char		err[AGENT_ERRLEN];
	long long	id;
	int			attempt, used = 0;
	JobMeta		meta;
	Job		   *j;

	if (sscanf(name, "%lld.%d%n", &id, &attempt, &used) != 2 || name[used] != '\0')
		return;
	if ((j = add_job(id, attempt, err, sizeof(err))) == NULL)
	{
		log_error("%s", err);
		return;
	}
	if (spool_exists(j->dir, "reported"))
	{
		drop_job(j, 0);
		return;
	}
	if (spool_read_meta(j->dir, &meta, err, sizeof(err)) == 0)
	{
		j->pid = meta.pid;
		j->starttime = meta.starttime;
	}
	if (spool_exists(j->dir, "status"))
		j->done = 1;
	else if (!spool_alive(j->pid, j->starttime))
		set_status(j, "supervisor vanished");
	log_info("job %" PRId64 " attempt %d found in the spool (%s)", j->job_id, j->attempt,
			 j->done ? "finished" : "running");
}

/* Creates the spool under conf->workdir, starts inotify and adopts the jobs found there. */
int
jobs_init(const AgentConf *c, char *err, size_t errlen)
{
	DIR		   *d;
	struct dirent *e;

	conf = c;
	snprintf(jobs_root, sizeof(jobs_root), "%s/jobs", conf->workdir);
	if (mkdir(jobs_root, 0755) < 0 && errno != EEXIST)
	{
		agent_seterr(err, errlen, "could not create directory \"%s\": %s", jobs_root, strerror(errno));
		return -1;
	}
	if ((ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
	{
		agent_seterr(err, errlen, "could not initialize inotify: %s", strerror(errno));
		return -1;
	}
	if ((d = opendir(jobs_root)) == NULL)
	{
		agent_seterr(err, errlen, "could not open directory \"%s\": %s", jobs_root, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		adopt(e->d_name);
	closedir(d);
	return 0;
}

/* Forgets every job (their supervisors keep running) and closes inotify. */
void
jobs_shutdown(void)
{
	while (jobs != NULL)
		drop_job(jobs, 0);
	if (ino_fd >= 0)
		close(ino_fd);			/* no data behind it */
	ino_fd = -1;
}

/* Returns the inotify descriptor to poll(). */
int
jobs_inotify_fd(void)
{
	return ino_fd;
}

/* Reads pending inotify events: marks jobs dirty and notices new status files. */
void
jobs_inotify_read(void)
{
	char		buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t		n;

	while ((n = read(ino_fd, buf, sizeof(buf))) > 0)
	{
		for (char *p = buf; p < buf + n;)
		{
			const struct inotify_event *ev = (const struct inotify_event *) p;

			p += sizeof(struct inotify_event) + ev->len;
			for (Job *j = jobs; j != NULL; j = j->next)
				if (ev->mask & IN_Q_OVERFLOW || j->wd == ev->wd)
				{
					j->dirty = 1;
					if (ev->len > 0 && strcmp(ev->name, "status") == 0)
						j->done = 1;
				}
		}
	}
}

/* Reaps exited supervisors (our children); one that left no status "vanished". */
void
jobs_reap(void)
{
	pid_t		pid;
	int			wstatus;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
		for (Job *j = jobs; j != NULL; j = j->next)
			if (j->pid == pid)
			{
				set_status(j, "supervisor vanished");
				j->pid = 0;
			}
}

/* Safety net for supervisors that are not our children: notices their death without a status. */
void
jobs_check_alive(void)
{
	for (Job *j = jobs; j != NULL; j = j->next)
		if (!j->done && !spool_alive(j->pid, j->starttime))
			set_status(j, "supervisor vanished");
}

/* Appends the JSON array of the (job_id, attempt) pairs in the spool (stale ones aside), for agent_register. */
void
jobs_info_json(StrBuf *sb)
{
	const char *sep = "";

	sb_puts(sb, "[");
	for (Job *j = jobs; j != NULL; j = j->next)
		if (!j->stale)
		{
			sb_printf(sb, "%s{\"job_id\": %" PRId64 ", \"attempt\": %d}", sep, j->job_id, j->attempt);
			sep = ", ";
		}
	sb_puts(sb, "]");
}

/* Marks j stale after a 55000 refusal: cancel it if it runs, forget it when it ends. */
static void
make_stale(Job *j, const char *why)
{
	log_warning("job %" PRId64 " attempt %d: dropped: %s", j->job_id, j->attempt, why);
	j->stale = 1;
	cancel_job(j);
}

/* Asks the server how much output of j it holds; returns -1 when the call failed. */
static int
resume_job(Conn *c, Job *j)
{
	char		err[AGENT_ERRLEN];
	int			cancel = 0;
	CallResult	rc = conn_resume(c, conf->node, j->job_id, j->attempt, &j->sent[0], &j->sent[1],
								 &cancel, err, sizeof(err));

	if (rc == CALL_STALE)
		make_stale(j, err);
	else if (rc != CALL_OK)
	{
		log_warning("job %" PRId64 ": agent_resume failed: %s", j->job_id, err);
		return -1;
	}
	else if (cancel)
		cancel_job(j);
	j->resumed = 1;
	j->dirty = 1;
	return 0;
}

/* After (re)connecting: forgets what the server held and asks again for every job. */
void
jobs_resume_all(Conn *c)
{
	retry_at = 0;
	for (Job *j = jobs; j != NULL; j = j->next)
		j->resumed = 0;
	for (Job *j = jobs; j != NULL && conn_ok(c); j = j->next)
		resume_job(c, j);
}

/* Creates the spool dir of a new job and starts its supervisor; on failure the job gets a status saying why. */
static void
start_job(const JobSpec *spec)
{
	char		err[AGENT_ERRLEN], path[PATH_MAX + 8], detail[AGENT_ERRLEN + 64];
	StrList		env;
	Job		   *j;

	snprintf(path, sizeof(path), "%s/%" PRId64 ".%d", jobs_root, spec->job_id, spec->attempt);
	if (mkdir(path, 0755) < 0)
	{
		log_error("could not create directory \"%s\": %s", path, strerror(errno));
		return;					/* not in info.jobs at the next register: the server loses it */
	}
	if ((j = add_job(spec->job_id, spec->attempt, err, sizeof(err))) == NULL)
	{
		log_error("%s", err);
		return;
	}
	j->resumed = 1;				/* a fresh attempt: the server holds no output */
	snprintf(path, sizeof(path), "%s/work", j->dir);
	strlist_init(&env);
	if (spec->command == NULL)
		snprintf(detail, sizeof(detail), "job has no command");
	else if (mkdir(path, 0755) < 0)
		snprintf(detail, sizeof(detail), "could not create directory \"%s\": %s", path, strerror(errno));
	else if (files_write(path, spec->files_json, err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "could not write the job's files: %s", err);
	else if (env_build(environ, spec, conf->node, path, &env, err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "invalid job environment: %s", err);
	else if (runner_spawn(j->dir, spec, env.items, conf->kill_grace_ms, &j->pid, err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "%s", err);
	else
	{
		detail[0] = '\0';
		if (spool_proc_starttime(j->pid, &j->starttime) < 0)
			log_warning("job %" PRId64 ": could not read the supervisor's start time", j->job_id);
		log_info("job %" PRId64 " attempt %d started (supervisor pid %d)", j->job_id, j->attempt,
				 (int) j->pid);
	}
	strlist_free(&env);
	if (detail[0] != '\0')
		set_status(j, detail);
}

/* agent_poll callback: starts run rows (unless *(int *) arg, draining) and cancels cancel rows. */
void
jobs_on_poll_row(const PollRow *row, void *arg)
{
	Job		   *j = find_job(row->spec.job_id, row->spec.attempt);

	if (row->cancel)
	{
		if (j != NULL)
			cancel_job(j);
		else
			log_debug("cancel for unknown job %" PRId64 " attempt %d", row->spec.job_id, row->spec.attempt);
	}
	else if (*(const int *) arg)
		log_warning("job %" PRId64 " not started: the agent is draining", row->spec.job_id);
	else if (j != NULL)
		log_debug("job %" PRId64 " attempt %d already runs", row->spec.job_id, row->spec.attempt);
	else
		start_job(&row->spec);
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
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
	{
		free(buf);
		return 0;				/* nothing written yet */
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
		cr = conn_output(c, conf->node, j->job_id, j->attempt, streams[s], j->sent[s], buf,
						 &stored, err, sizeof(err));
		if (cr == CALL_STALE)
			make_stale(j, err);
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

	if (spool_read_status(j->dir, &st, err, sizeof(err)) < 0)
	{
		log_error("job %" PRId64 ": %s", j->job_id, err);
		memset(&st, 0, sizeof(st));
		snprintf(st.detail, sizeof(st.detail), "unreadable status file");
	}
	sb_init(&state);
	rc = conn_finish(c, conf->node, j->job_id, j->attempt, &st, &state, err, sizeof(err));
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
	drop_job(j, 1);
	return 0;
}

/* Appends ",\"<name>_bytes\":N" for file dir/name (0 when missing) to sb. */
static void
put_file_size(StrBuf *sb, const char *dir, const char *name)
{
	char		path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	sb_printf(sb, ",\"%s_bytes\":%lld", name, stat(path, &st) == 0 ? (long long) st.st_size : 0LL);
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

	if (!j->done || j->logged || conf->history_file == NULL)
		return;
	j->logged = 1;
	if (spool_exists(j->dir, "logged"))
		return;
	sb_init(&line);
	history_begin(&line, "job", conf->node);
	sb_printf(&line, ",\"job_id\":%" PRId64 ",\"attempt\":%d", j->job_id, j->attempt);
	if (spool_read_meta(j->dir, &m, err, sizeof(err)) == 0)
	{
		sb_puts(&line, ",\"started_at\":");
		history_put_time(&line, m.started_at * 1000);
	}
	snprintf(path, sizeof(path), "%s/status", j->dir);
	if (stat(path, &sst) == 0)
	{
		sb_puts(&line, ",\"finished_at\":");
		history_put_time(&line, (int64_t) sst.st_mtim.tv_sec * 1000 + sst.st_mtim.tv_nsec / 1000000);
	}
	if (spool_read_status(j->dir, &st, err, sizeof(err)) == 0)
	{
		if (st.has_exit)
			sb_printf(&line, ",\"exit_code\":%d", st.exit_code);
		else
			sb_puts(&line, ",\"exit_code\":null");
		sb_printf(&line, ",\"signal\":%d,\"timed_out\":%s,\"cancelled\":%s,\"detail\":", st.signal,
				  st.timed_out ? "true" : "false", st.cancelled ? "true" : "false");
		json_put_str(&line, st.detail);
	}
	put_file_size(&line, j->dir, "stdout");
	put_file_size(&line, j->dir, "stderr");
	sb_printf(&line, ",\"connected\":%s", connected ? "true" : "false");
	if (history_append(conf->history_file, &line, err, sizeof(err)) < 0 ||
		spool_write_file(j->dir, "logged", "", 0, err, sizeof(err)) < 0)
		log_warning("job %" PRId64 " attempt %d: %s", j->job_id, j->attempt, err);
	sb_free(&line);
}

/* Appends every job that ended and is not in the history file yet to it. */
void
jobs_record_ended(int connected)
{
	for (Job *j = jobs; j != NULL; j = j->next)
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
		drop_job(j, 1);
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
	int64_t		now = agent_now_ms();
	Job		   *next;

	if (now < retry_at)
		return;
	for (Job *j = jobs; j != NULL && conn_ok(c); j = next)
	{
		next = j->next;
		if (pump_job(c, j, all, now) < 0)
		{
			retry_at = now + RETRY_MS;
			return;
		}
	}
}

/*
 * Stops every running job because the agent is shutting down, without reporting
 * them: agent_offline then makes them lost, and the server retries them elsewhere
 * while their retries allow, instead of counting a failure of the job.
 */
void
jobs_abandon_all(void)
{
	for (Job *j = jobs; j != NULL; j = j->next)
		if (!j->done)
			make_stale(j, "the agent is shutting down; the server will retry it as lost");
}

/* Returns how many jobs have not ended yet. */
int
jobs_running(void)
{
	int			n = 0;

	for (Job *j = jobs; j != NULL; j = j->next)
		n += !j->done;
	return n;
}

/* Returns how many jobs are in the table (running or waiting to be reported). */
int
jobs_count(void)
{
	int			n = 0;

	for (Job *j = jobs; j != NULL; j = j->next)
		n++;
	return n;
}

/* Returns 1 and the earliest time in *deadline when some job has something to send. */
int
jobs_want_pump(int64_t *deadline)
{
	int			want = 0;

	for (Job *j = jobs; j != NULL; j = j->next)
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
