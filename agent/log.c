/*
 * log.c -- the agent's log: one line per event on stderr.
 *
 * Each line carries a local timestamp with milliseconds, the level and the
 * agent's pid, so that journald, a terminal and a test harness all read the
 * same format.  Debug lines appear only with --verbose.
 */
#include "proc.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

int			agent_log_verbose = 0;

/* Writes one formatted log line at level to stderr. */
void
agent_log(int level, const char *fmt,...)
{
	static const char *const names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
	char		line[2048];
	char		stamp[32];
	int64_t		now = proc_unix_ms();
	time_t		secs = (time_t) (now / 1000);
	struct tm	tm;
	va_list		ap;
	int			n;

	if (level == LOG_DEBUG_ && !agent_log_verbose)
		return;
	localtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03d [%d] %s: ", stamp, (int) (now % 1000),
				 (int) getpid(), names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';			/* libpq messages span lines; the log does not */
	fprintf(stderr, "%s\n", line);
}
