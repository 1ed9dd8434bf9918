/*
 * collect_exec.c -- runs a few programs at once under one deadline and keeps
 * their standard output: nvidia-smi and the --plugin-dir plugins.
 *
 * They run side by side, so a sample takes at most one timeout however many
 * of them hang.  Each one gets its own process group (a timeout kills it and
 * whatever it started), stdin and stderr on /dev/null, stdout on a pipe, the
 * agent's environment without libpq's PG* variables (as jobs get it),
 * default signal dispositions and no other descriptor of the agent.  A
 * failing exec is reported over a close-on-exec pipe, as runner.c does for
 * jobs, so "Exec format error" (a script without #!) reaches the problems.
 *
 * One poll() loop reads every pipe.  A program that has ended is seen with
 * waitid(WNOWAIT); its process group is killed (what it left behind) while
 * its zombie still holds the group id, so the id cannot have been reused,
 * and then it is reaped.  Whatever still holds its output after that has
 * left the group (setsid); it gets EXEC_LINGER_MS to finish writing, then
 * the pipe is closed and the run marked held_open, so that a daemonizing
 * plugin does not stall every sample until the deadline.  At the deadline
 * what still runs is SIGKILLed with its group.  Every child is reaped before collect_exec_all() returns, so the
 * event loop's waitpid(-1) never meets one; the exception is a process stuck
 * in the kernel (a hung GPU driver) that SIGKILL cannot end within a second:
 * it is left to that waitpid(-1).
 */
#include "collect.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXEC_POLL_MS 20			/* how often ended programs are looked for */
#define EXEC_REAP_MS 1000		/* how long a SIGKILLed program is waited for */
#define EXEC_LINGER_MS 200		/* how long output is read after the program ended */
#define EXEC_REAP_STEP_MS 5		/* pause between two looks for a SIGKILLed program */

extern char **environ;

static void start(ExecRun *r, char *const *envp);
static void close_pair(int p[2]);
static void child(char *const *argv, char *const *envp, int out, int errfd) __attribute__((noreturn));
static void child_failed(int fd) __attribute__((noreturn));
static void drain(ExecRun *r);
static void set_status(ExecRun *r, int status);
static void reap_if_ended(ExecRun *r);
static void kill_and_reap(ExecRun *r);

/* In the forked child: sets up descriptors and signals and execs argv; reports errno on errfd if that fails. */
static void
child(char *const *argv, char *const *envp, int out, int errfd)
{
	int			null = open("/dev/null", O_RDWR);

	setpgid(0, 0);
	proc_reset_signals();
	/* errfd moves to 3, close-on-exec, and every descriptor above it is closed */
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(null, 2) < 0 ||
		dup2(errfd, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		child_failed(errfd);
	closefrom(4);
	execve(argv[0], argv, envp);
	child_failed(3);
}

/* In the child: hands errno to the parent over fd and exits. */
static void
child_failed(int fd)
{
	int			e = errno;

	if (write(fd, &e, sizeof(e)) < 0)
		_exit(PROC_EXIT_EXEC_FAILED);	/* nobody left to tell */
	_exit(PROC_EXIT_EXEC_FAILED);
}

/* Forks and execs r->argv, leaving r running with its output pipe, or EXEC_FAILED with r->err. */
static void
start(ExecRun *r, char *const *envp)
{
	int			out[2], ep[2], e;
	ssize_t		n;

	sb_init(&r->out);
	r->truncated = 0;
	r->state = EXEC_FAILED;
	r->code = 0;
	r->err[0] = '\0';
	r->held_open = 0;
	r->pid = -1;
	r->fd = -1;
	if (pipe2(out, O_CLOEXEC) < 0)
	{
		agent_seterr(r->err, sizeof(r->err), "could not create pipe: %s", strerror(errno));
		return;
	}
	/* non-blocking read end: drain() must never wait on a pipe an escaped descendant holds */
	if (fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 || pipe2(ep, O_CLOEXEC) < 0)
	{
		agent_seterr(r->err, sizeof(r->err), "could not create pipe: %s", strerror(errno));
		close_pair(out);
		return;
	}
	if ((r->pid = fork()) < 0)
	{
		agent_seterr(r->err, sizeof(r->err), "could not fork: %s", strerror(errno));
		close_pair(out);
		close_pair(ep);
		return;
	}
	if (r->pid == 0)
		child(r->argv, envp, out[1], ep[1]);
	setpgid(r->pid, r->pid);	/* also done by the child: no race either way */
	close(out[1]);				/* the child's ends: nothing of ours to lose */
	close(ep[1]);
	while ((n = read(ep[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(ep[0]);				/* read end: nothing to lose */
	if (n == sizeof(e))
	{
		agent_seterr(r->err, sizeof(r->err), "could not execute: %s", strerror(e));
		close(out[0]);
		waitpid(r->pid, NULL, 0);	/* it has exited already */
		r->pid = -1;
		return;
	}
	r->fd = out[0];
	r->state = EXEC_EXITED;		/* running; settled when it is reaped */
}

/* Closes both ends of an unused pipe (nothing was written: nothing to lose). */
static void
close_pair(int p[2])
{
	close(p[0]);
	close(p[1]);
}

/* Reads what r's pipe holds now, keeping up to EXEC_MAX_OUTPUT bytes; closes it at end of file. */
static void
drain(ExecRun *r)
{
	char		buf[4096];

	while (r->fd >= 0)
	{
		ssize_t		n = read(r->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
		{
			close(r->fd);		/* read end: nothing to lose */
			r->fd = -1;
			return;
		}
		if (r->out.len + (size_t) n > EXEC_MAX_OUTPUT)
		{
			r->truncated = 1;
			n = (ssize_t) (EXEC_MAX_OUTPUT - r->out.len);
		}
		sb_append(&r->out, buf, (size_t) n);
	}
}

/* Records how r ended from its wait status. */
static void
set_status(ExecRun *r, int status)
{
	if (r->state == EXEC_TIMED_OUT)
		return;
	if (WIFSIGNALED(status))
	{
		r->state = EXEC_SIGNALED;
		r->code = WTERMSIG(status);
	}
	else
	{
		r->state = EXEC_EXITED;
		r->code = WEXITSTATUS(status);
	}
}

/* When r's process has ended: kills what is left of its group and reaps it. */
static void
reap_if_ended(ExecRun *r)
{
	siginfo_t	si;
	int			status;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t) r->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
		return;
	kill(-r->pid, SIGKILL);		/* its zombie still holds the group id */
	if (waitpid(r->pid, &status, 0) == r->pid)
		set_status(r, status);
	r->pid = -1;
	r->ended_ms = proc_now_ms();
}

/* Deadline: SIGKILLs r's process group and waits a moment for the process. */
static void
kill_and_reap(ExecRun *r)
{
	int64_t		until = proc_now_ms() + EXEC_REAP_MS;
	struct timespec ts = {0, EXEC_REAP_STEP_MS * 1000000};
	int			status;

	r->state = EXEC_TIMED_OUT;
	kill(-r->pid, SIGKILL);
	while (waitpid(r->pid, &status, WNOHANG) == 0 && proc_now_ms() < until)
		nanosleep(&ts, NULL);
	r->pid = -1;				/* reaped, or left to the agent's waitpid(-1) */
}

/* Runs runs[0..n) at the same time for at most timeout_ms; each ends EXITED, SIGNALED, TIMED_OUT or FAILED. */
void
collect_exec_all(ExecRun *runs, int n, int64_t timeout_ms)
{
	int64_t		deadline = proc_now_ms() + timeout_ms;
	struct pollfd *fds = xmalloc(sizeof(struct pollfd) * (size_t) (n + 1));
	int		   *which = xmalloc(sizeof(int) * (size_t) (n + 1));
	StrList		env;

	strlist_init(&env);
	proc_env_without_pg(environ, &env);
	for (int i = 0; i < n; i++)
		start(&runs[i], env.items);
	strlist_free(&env);
	for (;;)
	{
		int			nfds = 0,
					busy = 0;
		int64_t		left = deadline - proc_now_ms();

		for (int i = 0; i < n; i++)
		{
			if (runs[i].pid > 0)
				reap_if_ended(&runs[i]);
			if (runs[i].pid <= 0 && runs[i].fd >= 0 && proc_now_ms() - runs[i].ended_ms > EXEC_LINGER_MS)
			{
				drain(&runs[i]);
				if (runs[i].fd >= 0)
				{
					close(runs[i].fd);	/* read end: nothing to lose */
					runs[i].fd = -1;
					runs[i].held_open = 1;
				}
			}
			if (runs[i].fd >= 0)
			{
				fds[nfds].fd = runs[i].fd;
				fds[nfds].events = POLLIN;
				which[nfds++] = i;
			}
			busy += runs[i].pid > 0 || runs[i].fd >= 0;
		}
		if (busy == 0 || left <= 0)
			break;
		if (poll(fds, (nfds_t) nfds, (int) (left < EXEC_POLL_MS ? left : EXEC_POLL_MS)) > 0)
			for (int k = 0; k < nfds; k++)
				if (fds[k].revents != 0)
					drain(&runs[which[k]]);
	}
	for (int i = 0; i < n; i++)
	{
		if (runs[i].pid > 0)
			kill_and_reap(&runs[i]);
		if (runs[i].fd >= 0)
		{
			drain(&runs[i]);
			if (runs[i].fd >= 0)
				close(runs[i].fd);	/* a descendant that left the group holds it: stop reading */
			runs[i].fd = -1;
		}
	}
	free(fds);
	free(which);
}

/* Returns 0 when r exited with status 0 and its whole output was read and kept; else -1 with what went wrong in msg. */
int
collect_exec_outcome(const ExecRun *r, int64_t timeout_ms, char *msg, size_t msglen)
{
	switch (r->state)
	{
		case EXEC_FAILED:
			agent_seterr(msg, msglen, "%s", r->err);
			return -1;
		case EXEC_TIMED_OUT:
			agent_seterr(msg, msglen, "timed out after %lld ms and was killed", (long long) timeout_ms);
			return -1;
		case EXEC_SIGNALED:
			agent_seterr(msg, msglen, "was killed by signal %d (%s)", r->code, strsignal(r->code));
			return -1;
		case EXEC_EXITED:
			if (r->code != 0)
			{
				agent_seterr(msg, msglen, "exited with status %d", r->code);
				return -1;
			}
			break;
	}
	if (r->held_open)
	{
		agent_seterr(msg, msglen, "exited, but a process it started in another session kept its output open; "
					 "it was read for %d ms more", EXEC_LINGER_MS);
		return -1;
	}
	if (r->truncated)
	{
		agent_seterr(msg, msglen, "wrote more than %d bytes; the rest was ignored", EXEC_MAX_OUTPUT);
		return -1;
	}
	return 0;
}
