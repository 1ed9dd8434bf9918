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

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

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

/* Returns the wall clock in Unix milliseconds. */
int64_t
history_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Starts a line in sb (initialised): {"t":<now>,"event":<event>,"node":<node> */
void
history_begin(StrBuf *sb, const char *event, const char *node)
{
	sb_puts(sb, "{\"t\":");
	history_put_time(sb, history_now_ms());
	sb_puts(sb, ",\"event\":");
	json_put_str(sb, event);
	sb_puts(sb, ",\"node\":");
	json_put_str(sb, node);
}

/* Closes the line in sb and appends it to the file at path; -1 with err set on failure. */
int
history_append(const char *path, StrBuf *sb, char *err, size_t errlen)
{
	int			fd;
	size_t		done = 0;

	sb_puts(sb, "}\n");
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
	{
		agent_seterr(err, errlen, "could not open history file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	while (done < sb->len)
	{
		ssize_t		n = write(fd, sb->data + done, sb->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			agent_seterr(err, errlen, "could not write history file \"%s\": %s", path,
						 n < 0 ? strerror(errno) : "no space written");
			close(fd);
			return -1;
		}
		done += (size_t) n;
	}
	if (fsync(fd) < 0)
	{
		agent_seterr(err, errlen, "could not fsync history file \"%s\": %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
	{
		agent_seterr(err, errlen, "could not close history file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
