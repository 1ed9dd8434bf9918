/*
 * runner.c -- the per-job supervisor, dispatch-agent's slurmstepd.
 *
 * runner_spawn() forks a supervisor for one job and returns at once.  The
 * supervisor detaches (setsid), closes every inherited descriptor (the libpq
 * socket, the inotify fd, the self-pipe, the spool lock), writes the job's
 * meta file and forks the job as "/bin/sh -c COMMAND" in its own process
 * group, with stdout/stderr appended to <jobdir>/stdout and <jobdir>/stderr
 * (opened by the agent's user, mode 0600), then as the job user (jobuser.c:
 * no capabilities left) with the job's files written into its work dir, its
 * inputs into its flow dir (inputs.c) and the work dir as cwd.  The
 * supervisor stays the agent's user: it writes the status into the agent's
 * spool.  It outlives the agent: an agent that
 * crashes, restarts or loses its database leaves the job running, and finds
 * the supervisor again through the meta file.
 *
 * The supervisor waits with sigtimedwait() on SIGCHLD, SIGTERM and its
 * deadlines.  A timeout or a SIGTERM (the agent's cancel) sends SIGTERM to
 * the job's process group and SIGKILL after the kill grace.  When the job's
 * main process ends, what is left of its process group is killed, and the
 * status file is written crash-safely; then the supervisor exits.  Whatever
 * fails in the job child before the exec (switching user, writing the files,
 * chdir, exec) is reported over a close-on-exec pipe so that the status
 * carries a precise detail.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUPERVISOR_FAILED 1

static void supervise(const char *jobdir, const char *workdir, const Assignment *a,
					  char *const *envp, int64_t kill_grace_ms) __attribute__((noreturn));
static sigset_t supervisor_signals(void);
static void child_failed(int fd, const char *msg) __attribute__((noreturn));
static void exec_job(const char *jobdir, const char *workdir, const Assignment *a, char *const *envp,
					 int fd) __attribute__((noreturn));
static struct timespec until(int64_t deadline);
static pid_t session_of(pid_t pid);

/* Returns the set of signals the supervisor waits for. */
static sigset_t
supervisor_signals(void)
{
	sigset_t	set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	return set;
}

/* In the job child: hands msg to the supervisor over pipe fd and exits. */
static void
child_failed(int fd, const char *msg)
{
	if (write(fd, msg, strlen(msg)) < 0)
		_exit(PROC_EXIT_EXEC_FAILED);	/* nothing more to tell anyone */
	_exit(PROC_EXIT_EXEC_FAILED);
}

/*
 * In the job child: redirects output, becomes the job user, writes the job's
 * files, enters the work dir and execs the shell; reports failure on pipe fd.
 */
static void
exec_job(const char *jobdir, const char *workdir, const Assignment *a, char *const *envp, int fd)
{
	char		path[4096], msg[AGENT_ERRLEN + 64], err[AGENT_ERRLEN];
	char	   *argv[] = {"/bin/sh", "-c", (char *) a->spec.command, NULL};
	int			in, out, errf;

	setpgid(0, 0);
	proc_reset_signals();
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/stdout", jobdir);
	out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	snprintf(path, sizeof(path), "%s/stderr", jobdir);
	errf = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (in < 0 || out < 0 || errf < 0)
		snprintf(msg, sizeof(msg), "could not %s: %s", in < 0 ? "open /dev/null" : "open output files",
				 strerror(errno));
	else if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errf, 2) < 0)
		snprintf(msg, sizeof(msg), "could not redirect output: %s", strerror(errno));
	else if (jobuser_enter(err, sizeof(err)) < 0)
		snprintf(msg, sizeof(msg), "%s", err);
	else if (files_write(workdir, a, err, sizeof(err)) < 0)
		snprintf(msg, sizeof(msg), "could not write the job's files: %s", err);
	else if (inputs_write(workdir, a, err, sizeof(err)) < 0)
		snprintf(msg, sizeof(msg), "could not write the job's inputs: %s", err);
	else if (chdir(workdir) < 0)
		snprintf(msg, sizeof(msg), "could not enter work directory: %s", strerror(errno));
	else
	{
		execve("/bin/sh", argv, envp);
		snprintf(msg, sizeof(msg), "could not execute /bin/sh: %s", strerror(errno));
	}
	child_failed(fd, msg);
}

/* Returns the milliseconds left until deadline (0 when none), as a timespec. */
static struct timespec
until(int64_t deadline)
{
	int64_t		left = deadline - proc_now_ms();
	struct timespec ts;

	if (left < 0)
		left = 0;
	ts.tv_sec = left / 1000;
	ts.tv_nsec = (left % 1000) * 1000000;
	return ts;
}

/* The supervisor's whole life; never returns. */
static void
supervise(const char *jobdir, const char *workdir, const Assignment *a, char *const *envp,
		  int64_t kill_grace_ms)
{
	const JobSpec *job = &a->spec;
	sigset_t	set = supervisor_signals();
	JobMeta		meta;
	JobStatus	st;
	char		err[AGENT_ERRLEN];
	int			pfd[2];
	pid_t		child;
	int			wstatus = 0;
	int64_t		term_deadline = job->timeout_ms > 0 ? proc_now_ms() + job->timeout_ms : -1;
	int64_t		kill_deadline = -1;
	ssize_t		n;

	proc_set_title("dispatch-sup", "supervisor of job %lld.%d", (long long) job->job_id,
					 job->attempt);
	memset(&st, 0, sizeof(st));
	memset(&meta, 0, sizeof(meta));
	meta.job_id = job->job_id;
	meta.attempt = job->attempt;
	meta.pid = getpid();
	meta.started_at = proc_unix_ms() / 1000;
	if (proc_starttime(meta.pid, &meta.starttime) < 0 ||
		spool_write_meta(jobdir, &meta, err, sizeof(err)) < 0)
		_exit(SUPERVISOR_FAILED);	/* the agent reports "supervisor vanished" */

	if (pipe2(pfd, O_CLOEXEC) < 0 || (child = fork()) < 0)
	{
		snprintf(st.detail, sizeof(st.detail), "could not start job: %s", strerror(errno));
		goto done;
	}
	if (child == 0)
	{
		close(pfd[0]);
		exec_job(jobdir, workdir, a, envp, pfd[1]);
	}
	setpgid(child, child);		/* also done by the child: no race either way */
	close(pfd[1]);				/* pipe ends carry no data of ours: nothing to lose */
	while ((n = read(pfd[0], st.detail, sizeof(st.detail) - 1)) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (n > 0)
		st.detail[n] = '\0';

	for (;;)
	{
		int64_t		deadline = kill_deadline >= 0 ? kill_deadline : term_deadline;
		struct timespec ts = until(deadline);
		int			sig = sigtimedwait(&set, NULL, deadline >= 0 ? &ts : NULL);

		if (sig == SIGCHLD)
		{
			if (waitpid(child, &wstatus, WNOHANG) == child)
				break;
		}
		else if (sig == SIGTERM && !st.cancelled && kill_deadline < 0)
		{
			st.cancelled = 1;
			jobuser_kill(-child, SIGTERM);
			kill_deadline = proc_now_ms() + kill_grace_ms;
		}
		else if (sig < 0 && errno == EAGAIN)
		{
			if (kill_deadline >= 0)
			{
				jobuser_kill(-child, SIGKILL);
				kill_deadline = -1;
				term_deadline = -1;
			}
			else if (term_deadline >= 0)
			{
				st.timed_out = 1;
				jobuser_kill(-child, SIGTERM);
				kill_deadline = proc_now_ms() + kill_grace_ms;
			}
		}
	}
	jobuser_kill(-child, SIGKILL);		/* leftovers of the job's process group */
	if (WIFEXITED(wstatus) && st.detail[0] == '\0')
	{
		st.has_exit = 1;
		st.exit_code = WEXITSTATUS(wstatus);
	}
	else if (WIFSIGNALED(wstatus))
		st.signal = WTERMSIG(wstatus);
	if (st.detail[0] == '\0' && st.timed_out)
		snprintf(st.detail, sizeof(st.detail), "timed out after %lld ms", (long long) job->timeout_ms);
	else if (st.detail[0] == '\0' && st.cancelled)
		snprintf(st.detail, sizeof(st.detail), "cancelled");

done:
	if (spool_write_status(jobdir, &st, err, sizeof(err)) < 0)
		_exit(SUPERVISOR_FAILED);
	_exit(0);
}

/* Returns the session id of process pid from /proc, or -1. */
static pid_t
session_of(pid_t pid)
{
	char		path[64], buf[1024];
	const char *p;
	int			fd, field = 2;
	ssize_t		n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);					/* read-only: nothing to lose */
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* after "(comm)": state, ppid, pgrp, session */
	while (*p && field < 6)
		if (*p++ == ' ')
			field++;
	return (pid_t) atol(p);
}

/*
 * SIGKILLs every process left in the session of a vanished supervisor sid
 * (the job and its children: the supervisor made the session with setsid).
 * The kernel does not reuse sid as a pid while the session has members; so
 * when no process sid exists, members of session sid are the supervisor's
 * orphans, and when one exists it is someone else and nothing is touched.
 * Returns how many processes were signalled.
 */
int
runner_kill_session(pid_t sid)
{
	DIR		   *d;
	struct dirent *e;
	int			n = 0;

	if (sid <= 1 || kill(sid, 0) == 0 || errno != ESRCH || (d = opendir("/proc")) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		pid_t		pid = (pid_t) atol(e->d_name);

		if (pid > 0 && session_of(pid) == sid && jobuser_kill(pid, SIGKILL) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/*
 * Forks the detached supervisor of assignment a (its spool dir jobdir and work dir
 * workdir must exist) and stores its pid; the caller is the supervisor's parent until
 * it restarts.
 */
int
runner_spawn(const char *jobdir, const char *workdir, const Assignment *a, char *const *envp,
			 int64_t kill_grace_ms, pid_t *pid, char *err, size_t errlen)
{
	sigset_t	set = supervisor_signals();
	sigset_t	old;
	pid_t		p;

	/* block before fork so that a quick SIGTERM waits for sigtimedwait() */
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	p = fork();
	if (p == 0)
	{
		int			null = open("/dev/null", O_RDWR);

		setsid();
		proc_default_signals();
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(SUPERVISOR_FAILED);
		closefrom(3);
		supervise(jobdir, workdir, a, envp, kill_grace_ms);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (p < 0)
	{
		agent_seterr(err, errlen, "could not fork supervisor: %s", strerror(errno));
		return -1;
	}
	*pid = p;
	return 0;
}
