/*
 * jobs.c -- the agent's table of jobs.
 *
 * A job lives in the spool from the moment it is claimed until its result is
 * acknowledged: jobs_on_poll_row() parses the assignment once (assign.c),
 * creates <workdir>/jobs/<id>.<attempt>/ (the agent's, mode 0711) and in it
 * the job's work dir work-<random> (the job user's, mode 0700: other jobs
 * can neither list the spool nor guess the name) and forks its supervisor
 * (runner.c); the supervisor writes the status file when the job ends.  A job
 * whose spool dir cannot be made is still reported, failed, from a status
 * held in memory: a job is never left running without a process.  The spool, not
 * this table, is the truth: jobs_init() rebuilds the table from it after a
 * restart, and a job whose supervisor is gone without a status gets one
 * saying "supervisor vanished".  An inotify watch on every job dir marks the
 * job dirty when its output or status changes; jobs_report.c takes it from
 * there to the server.
 */
#include "jobs.h"
#include "control.h"

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
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const AgentConf *jobs_conf;
Job		   *jobs_list;
static int	ino_fd = -1;
static char jobs_root[PATH_MAX];

static Job *add_job(int64_t job_id, int attempt, char *err, size_t errlen);
static Job *add_failed_job(const JobSpec *spec, const char *detail);
static int	make_workdir(const Job *j, char *path, size_t len, char *err, size_t errlen);
static Job *find_job(int64_t job_id, int attempt);
static void adopt(const char *name);
static void start_job(const JobSpec *spec);

/* Returns the job (job_id, attempt), or NULL. */
static Job *
find_job(int64_t job_id, int attempt)
{
	for (Job *j = jobs_list; j != NULL; j = j->next)
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
	j->next = jobs_list;
	jobs_list = j;
	return j;
}

/* Creates the table entry for a job that has no spool dir, ended with detail (reported like any other). */
static Job *
add_failed_job(const JobSpec *spec, const char *detail)
{
	Job		   *j = xmalloc(sizeof(Job));

	memset(j, 0, sizeof(Job));
	j->job_id = spec->job_id;
	j->attempt = spec->attempt;
	j->wd = -1;
	j->dirty = 1;
	j->done = 1;
	j->resumed = 1;
	j->no_spool = xmalloc(sizeof(JobStatus));
	memset(j->no_spool, 0, sizeof(JobStatus));
	snprintf(j->no_spool->detail, sizeof(j->no_spool->detail), "%s", detail);
	j->next = jobs_list;
	jobs_list = j;
	log_warning("job %" PRId64 " attempt %d: %s", j->job_id, j->attempt, detail);
	return j;
}

/* Reads the status of the ended job j (from its spool, or from memory when it has none). */
int
jobs_read_status(const Job *j, JobStatus *st, char *err, size_t errlen)
{
	if (j->no_spool == NULL)
		return spool_read_status(j->dir, st, err, errlen);
	*st = *j->no_spool;
	return 0;
}

/* Unlinks j from the table and frees it; with remove set, deletes its spool dir too. */
void
jobs_drop(Job *j, int remove)
{
	char		err[AGENT_ERRLEN];

	for (Job **p = &jobs_list; *p != NULL; p = &(*p)->next)
		if (*p == j)
		{
			*p = j->next;
			break;
		}
	if (j->wd >= 0)
		inotify_rm_watch(ino_fd, j->wd);
	control_forget(j->job_id, j->attempt);
	jobs_artefacts_free(j);
	if (j->no_spool != NULL)
		free(j->no_spool);		/* nothing on disk */
	else if (remove && jobs_conf->keep_workdirs)
	{
		if (spool_write_file(j->dir, "reported", "", 0, err, sizeof(err)) < 0)
			log_warning("%s", err);
	}
	else if (remove && jobuser_remove_tree(j->dir, err, sizeof(err)) < 0)
		log_warning("%s", err);
	free(j);
}

/*
 * Marks j done, writing a status with detail first unless the supervisor left
 * one; processes the dead supervisor left behind (in its session) are killed.
 */
void
jobs_set_status(Job *j, const char *detail)
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

/*
 * Sends SIGTERM to j's supervisor once, which cancels the job (TERM, then KILL
 * after the grace); a build job still fetching its inputs just ends.
 */
void
jobs_cancel(Job *j)
{
	if (j->done || j->cancel_sent)
		return;
	if (j->fetch != NULL)
	{
		log_info("job %" PRId64 " attempt %d: cancelled while fetching its inputs", j->job_id, j->attempt);
		jobs_artefacts_free(j);
		jobs_set_status(j, "cancelled");
		return;
	}
	if (proc_alive(j->pid, j->starttime) && kill(j->pid, SIGTERM) == 0)
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
		jobs_drop(j, 0);
		return;
	}
	if (spool_read_meta(j->dir, &meta, err, sizeof(err)) == 0)
	{
		j->pid = meta.pid;
		j->starttime = meta.starttime;
	}
	if (spool_exists(j->dir, "status"))
		j->done = 1;
	else if (!proc_alive(j->pid, j->starttime))
		jobs_set_status(j, "supervisor vanished");
	if (!j->done)
		control_adopt(j->job_id, j->attempt, j->dir);
	log_info("job %" PRId64 " attempt %d found in the spool (%s)", j->job_id, j->attempt,
			 j->done ? "finished" : "running");
}

/* Creates the spool under jobs_conf->workdir, starts inotify and adopts the jobs found there. */
int
jobs_init(const AgentConf *c, char *err, size_t errlen)
{
	DIR		   *d;
	struct dirent *e;

	jobs_conf = c;
	snprintf(jobs_root, sizeof(jobs_root), "%s/jobs", jobs_conf->workdir);
	if ((mkdir(jobs_root, 0711) < 0 && errno != EEXIST) || chmod(jobs_root, 0711) < 0)
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
	while (jobs_list != NULL)
		jobs_drop(jobs_list, 0);
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
			for (Job *j = jobs_list; j != NULL; j = j->next)
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
		for (Job *j = jobs_list; j != NULL; j = j->next)
			if (j->pid == pid)
			{
				jobs_set_status(j, "supervisor vanished");
				j->pid = 0;
			}
}

/* Safety net for supervisors that are not our children: notices their death without a status (a job fetching its inputs has none yet). */
void
jobs_check_alive(void)
{
	for (Job *j = jobs_list; j != NULL; j = j->next)
		if (!j->done && j->fetch == NULL && !proc_alive(j->pid, j->starttime))
			jobs_set_status(j, "supervisor vanished");
}

/* Returns a new JSON array of the (job_id, attempt) pairs in the spool (stale ones aside), for agent_register. */
json_t *
jobs_info_json(void)
{
	json_t	   *a = json_array();

	for (Job *j = jobs_list; j != NULL; j = j->next)
		if (!j->stale)
			json_array_append_new(a, json_pack("{sIsi}", "job_id", (json_int_t) j->job_id,
											   "attempt", j->attempt));
	return a;
}

/* Marks j stale after a 55000 refusal: cancel it if it runs, forget it when it ends. */
void
jobs_make_stale(Job *j, const char *why)
{
	log_warning("job %" PRId64 " attempt %d: dropped: %s", j->job_id, j->attempt, why);
	j->stale = 1;
	jobs_cancel(j);
}

/* Creates the work dir of j (a name nobody can guess, mode 0700, the job user's); stores its path. */
static int
make_workdir(const Job *j, char *path, size_t len, char *err, size_t errlen)
{
	char		token[17];

	if (random_hex(token, "the work directory", err, errlen) < 0)
		return -1;
	snprintf(path, len, "%s/work-%s", j->dir, token);
	if (mkdir(path, 0700) < 0)
	{
		agent_seterr(err, errlen, "could not create directory \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return jobuser_give(path, err, errlen);
}

/* Starts the supervisor of j for assignment a with work dir workdir and environment env; returns 0, or -1 with err set. */
int
jobs_spawn(Job *j, const char *workdir, const Assignment *a, const StrList *env, char *err,
		   size_t errlen)
{
	if (runner_spawn(j->dir, workdir, a, env->items, jobs_conf->kill_grace_ms, &j->pid, err, errlen) < 0)
		return -1;
	if (proc_starttime(j->pid, &j->starttime) < 0)
		log_warning("job %" PRId64 ": could not read the supervisor's start time", j->job_id);
	log_info("job %" PRId64 " attempt %d started (supervisor pid %d)", j->job_id, j->attempt, (int) j->pid);
	return 0;
}

/*
 * Creates the spool dir of a new job and starts its supervisor (a build job
 * first fetches its inputs: jobs_artefacts.c); on failure the
 * job gets a status saying why (in memory when the spool dir itself failed).
 */
static void
start_job(const JobSpec *spec)
{
	char		err[AGENT_ERRLEN], path[PATH_MAX + 8], flow[PATH_MAX + 8],
				detail[AGENT_ERRLEN + 64];
	Assignment	a;
	StrList		env;
	Job		   *j;
	int			waits;

	snprintf(path, sizeof(path), "%s/%" PRId64 ".%d", jobs_root, spec->job_id, spec->attempt);
	if (mkdir(path, 0711) < 0)
	{
		snprintf(detail, sizeof(detail), "could not create directory \"%s\": %s", path,
				 errno == EEXIST ? "it exists already" : strerror(errno));
		add_failed_job(spec, detail);
		return;
	}
	if ((j = add_job(spec->job_id, spec->attempt, err, sizeof(err))) == NULL)
	{
		add_failed_job(spec, err);
		return;
	}
	j->resumed = 1;				/* a fresh attempt: the server holds no output */
	strlist_init(&env);
	if (spec->command == NULL)
	{
		memset(&a, 0, sizeof(a));
		snprintf(detail, sizeof(detail), "job has no command");
	}
	else if (assign_parse(spec, &a, err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "%s", err);
	else if (make_workdir(j, path, sizeof(path), err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "%s", err);
	else if (env_build(environ, &a, jobs_conf->node, path, &env, err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "invalid job environment: %s", err);
	else if (inputs_prepare(path, &a, jobs_conf->workdir, &env, err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "%s", err);
	else if (inputs_flow_dir(path, flow, sizeof(flow)) < 0 ||
			 control_attach(j->job_id, j->attempt, flow, &env, err, sizeof(err)) < 0)
		snprintf(detail, sizeof(detail), "%s", err);
	else if ((waits = jobs_artefacts_start(j, &a, path, &env, err, sizeof(err))) < 0 ||
			 (waits == 0 && jobs_spawn(j, path, &a, &env, err, sizeof(err)) < 0))
		snprintf(detail, sizeof(detail), "%s", err);
	else
		detail[0] = '\0';
	assign_free(&a);
	strlist_free(&env);
	if (detail[0] != '\0')
		jobs_set_status(j, detail);
}

/*
 * agent_poll callback: starts run rows (unless *(int *) arg, draining), cancels
 * cancel rows and queues scratch_remove rows (scratch.c).
 */
void
jobs_on_poll_row(const PollRow *row, void *arg)
{
	Job		   *j = find_job(row->spec.job_id, row->spec.attempt);

	if (row->scratch_key != NULL)
		scratch_queue(row->scratch_key);
	else if (row->cancel)
	{
		if (j != NULL)
			jobs_cancel(j);
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
 * Stops every running job because the agent is shutting down, without reporting
 * them: agent_offline then makes them lost, and the server retries them elsewhere
 * while their retries allow, instead of counting a failure of the job.
 */
void
jobs_abandon_all(void)
{
	for (Job *j = jobs_list; j != NULL; j = j->next)
		if (!j->done)
			jobs_make_stale(j, "the agent is shutting down; the server will retry it as lost");
}

/* Returns how many jobs have not ended yet. */
int
jobs_running(void)
{
	int			n = 0;

	for (Job *j = jobs_list; j != NULL; j = j->next)
		n += !j->done;
	return n;
}

/* Returns how many jobs are in the table (running or waiting to be reported). */
int
jobs_count(void)
{
	int			n = 0;

	for (Job *j = jobs_list; j != NULL; j = j->next)
		n++;
	return n;
}

