/*
 * proc.c -- process helpers shared by the agent, its supervisors and the sampler.
 *
 * Everything that deals with "this process" or "that process" lives here, so
 * that each question has one answer: the title ps shows (argv's memory reused
 * as PostgreSQL's ps_status.c does), putting signals back to their defaults
 * in a fresh child, whether a pid is still the process that started at a
 * given time (pids are reused; /proc/PID/stat's start time tells them apart),
 * the two clocks (monotonic for timers and deadlines, wall for timestamps
 * that leave the machine), the environment a child may inherit (never
 * libpq's PG* variables: the agent's credentials stay with the agent), and
 * the process's privileges: no core dumps or ptrace by other users, and a
 * way to drop every capability (ambient ones included) before an exec.
 */
#include "proc.h"
#include "spool.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <time.h>

#define PROC_TITLE_PREFIX "dispatch-agent: "
#define PROC_STAT_STARTTIME 22	/* field number of starttime in /proc/PID/stat */

static char *title_area;		/* the agent's argv strings, reused for children's titles */
static size_t title_len;

static int64_t clock_ms(clockid_t clock);

/* Remembers argv's memory so that children can retitle themselves. */
void
proc_title_init(int argc, char **argv)
{
	if (argc < 1)
		return;
	title_area = argv[0];
	title_len = (size_t) (argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]);
}

/*
 * Makes ps and pkill -f show this process as "dispatch-agent: <what>", not as the
 * agent's command line, and names its thread comm (at most 15 bytes).
 */
void
proc_set_title(const char *comm, const char *fmt,...)
{
	va_list		ap;
	int			n;

	prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (title_area == NULL || title_len < 2)
		return;
	memset(title_area, 0, title_len + 1);
	n = snprintf(title_area, title_len, PROC_TITLE_PREFIX);
	if (n < 0 || (size_t) n >= title_len)
		return;
	va_start(ap, fmt);
	vsnprintf(title_area + n, title_len - (size_t) n, fmt, ap);
	va_end(ap);
}

/* Puts every signal back to its default disposition (the agent's handlers must not run here). */
void
proc_default_signals(void)
{
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

/* Puts every signal back to its default disposition and unblocks them all (in a child about to exec). */
void
proc_reset_signals(void)
{
	sigset_t	none;

	proc_default_signals();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Stores the start time (clock ticks after boot) of process pid in *out; -1 when it does not exist. */
int
proc_starttime(pid_t pid, unsigned long long *out)
{
	char		path[64];
	StrBuf		sb;
	const char *p;
	int			field = 2;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	sb_init(&sb);
	if (spool_read_file(path, &sb, NULL, 0) < 0 || (p = strrchr(sb.data, ')')) == NULL)
	{
		sb_free(&sb);
		return -1;
	}
	/* fields after "(comm)" are space separated */
	while (*p && field < PROC_STAT_STARTTIME)
		if (*p++ == ' ')
			field++;
	*out = strtoull(p, NULL, 10);
	sb_free(&sb);
	return 0;
}

/* Returns 1 when process pid still exists and is the one that started at starttime. */
int
proc_alive(pid_t pid, unsigned long long starttime)
{
	unsigned long long now;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return 0;
	return proc_starttime(pid, &now) == 0 && now == starttime;
}

/* Returns clock in milliseconds. */
static int64_t
clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns CLOCK_MONOTONIC in milliseconds: for timers, deadlines and rates. */
int64_t
proc_now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* Returns the wall clock in Unix milliseconds: for timestamps that leave the machine. */
int64_t
proc_unix_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

/* Adds to out the definitions of base except those whose name starts with "PG" (libpq's). */
void
proc_env_without_pg(char *const *base, StrList *out)
{
	for (; base != NULL && *base != NULL; base++)
		if (strncmp(*base, "PG", 2) != 0 && strchr(*base, '=') != NULL)
			strlist_add(out, *base);
}

/* Drops every capability of this process (effective, permitted, inheritable, ambient); returns 0 or -1. */
int
proc_drop_capabilities(char *err, size_t errlen)
{
	cap_t		none;
	int			rc;

	/* EINVAL: a kernel without ambient capabilities (before 4.3) has none to clear */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
	{
		agent_seterr(err, errlen, "could not clear the ambient capabilities: %s", strerror(errno));
		return -1;
	}
	if ((none = cap_init()) == NULL)
	{
		agent_seterr(err, errlen, "could not drop capabilities: %s", strerror(errno));
		return -1;
	}
	rc = cap_set_proc(none);
	if (rc < 0)
		agent_seterr(err, errlen, "could not drop capabilities: %s", strerror(errno));
	cap_free(none);
	return rc;
}

/* Makes this process undumpable: other users can neither ptrace it nor read its /proc/PID/environ or memory. */
int
proc_set_undumpable(char *err, size_t errlen)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
	{
		agent_seterr(err, errlen, "could not make the process undumpable: %s", strerror(errno));
		return -1;
	}
	return 0;
}
