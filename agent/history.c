/*
 * history.c -- the agent's own record: one JSON object per line in a local file.
 *
 * The database keeps the history of every job, but a worker machine cut off
 * from it should still say what it ran and when it was alone.  Each job that
 * ends appends an "event":"job" line (whether or not the server can be told),
 * and once a minute the agent appends an "event":"presence" line: connected or
 * not, to which server, its jobs, and the nodes the server counts online.
 * Lines are appended with O_APPEND and fsync'd, so a crash loses at most the
 * line being written and never tears an earlier one; the file is opened for
 * each line, so logrotate may rename or truncate it at any time.
 */
#include "agent.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

/* Appends "ISO 8601 UTC time with milliseconds" for unix_ms, quoted, to sb. */
void
history_put_time(StrBuf *sb, int64_t unix_ms)
{
	time_t		secs = (time_t) (unix_ms / 1000);
	struct tm	tm;
	char		buf[32];

	gmtime_r(&secs, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	sb_printf(sb, "\"%s.%03dZ\"", buf, (int) (unix_ms % 1000));
}

/* Starts a line in sb (initialised): {"t":<now>,"event":<event>,"node":<node> */
void
history_begin(StrBuf *sb, const char *event, const char *node)
{
	sb_puts(sb, "{\"t\":");
	history_put_time(sb, proc_unix_ms());
	sb_puts(sb, ",\"event\":");
	jsonio_put_str(sb, event);
	sb_puts(sb, ",\"node\":");
	jsonio_put_str(sb, node);
}

/* Closes the line in sb and appends it to the file at path; -1 with err set on failure. */
int
history_append(const char *path, StrBuf *sb, char *err, size_t errlen)
{
	sb_puts(sb, "}\n");
	return spool_append_file(path, sb->data, sb->len, err, errlen);
}
