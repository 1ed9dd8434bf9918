/*
 * result.c -- the result a job leaves at $DISPATCH_RESULT, on its way into the
 * job's finish.
 *
 * The file is the job's, and the job may be hostile: it may leave nothing, a
 * symbolic link to a secret, a fifo nobody writes, a device, a file of a
 * terabyte, or text that is not JSON.  So the file is read when the agent builds
 * the job's finish for agent_report (the flow dir stays in the spool until that
 * report is acknowledged, so an agent that restarts reads it again), in a
 * short-lived child with the job user's rights (jobuser_run: a link to a file
 * the job user may not read gives nothing; no child at all when the agent can
 * see that there is no file), opened with O_NOFOLLOW and
 * O_NONBLOCK, only when it is a regular file, and never more than RESULT_MAX + 1
 * bytes of it; the child is killed after RESULT_READ_MS.  The text must then pass the
 * agent's JSON limits (jsonio.c: UTF-8, no duplicate keys, no \u0000, at most 64
 * levels) and hold no NUL byte.  A usable file becomes "result": VALUE in the
 * finish, an unusable one "result_error": WHY, a missing one neither; the
 * server keeps results up to dispatch.max_result_size and fails the job past it.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESULT_READ_MS 10000	/* most time the reading child may take */

_Static_assert(AGENT_ERRLEN <= RESULT_ERROR_MAX, "a result_error always fits the server's limit");

/* What the reading child sends first: the outcome of result_read_file(). */
enum
{
	READ_NONE = 'n', READ_DATA = 'd', READ_ERROR = 'e'
};

static int	open_result(const char *path, char *why, size_t whylen);
static int	find_flow_dir(const char *jobdir, char *out, size_t len);
static int	read_child(void *arg, int fd);
static int	read_as_job_user(const char *path, StrBuf *out, char *why, size_t whylen);

/*
 * Opens the result file path for reading when it is usable: returns the
 * descriptor, -2 when there is none, or -1 with why set (a link, not a regular
 * file, more than RESULT_MAX bytes, not readable).  Never blocks on a fifo.
 */
static int
open_result(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int			fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return -2;
	if (fd < 0 && errno == ELOOP)
		agent_seterr(why, whylen, "the result file is a symbolic link");
	else if (fd < 0)
		agent_seterr(why, whylen, "could not open the result file: %s", strerror(errno));
	else if (fstat(fd, &st) < 0)
		agent_seterr(why, whylen, "could not stat the result file: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		agent_seterr(why, whylen, "the result file is not a regular file");
	else if (st.st_size > RESULT_MAX)
		agent_seterr(why, whylen, "the result file is larger than %d bytes", RESULT_MAX);
	else
		return fd;
	if (fd >= 0)
		close(fd);				/* read-only: nothing to lose */
	return -1;
}

/*
 * Reads the result file path into out (initialised): returns 1 when read, 0 when
 * there is none, -1 with why set when it is there but unusable (see
 * open_result(); a file that grows past RESULT_MAX while read is cut off too).
 */
int
result_read_file(const char *path, StrBuf *out, char *why, size_t whylen)
{
	char		buf[65536];
	ssize_t		n = 0;
	int			fd = open_result(path, why, whylen);

	if (fd < 0)
		return fd == -2 ? 0 : -1;
	while (out->len <= RESULT_MAX && (n = read(fd, buf, sizeof(buf))) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		sb_append(out, buf, (size_t) n);
	}
	if (n < 0)
		agent_seterr(why, whylen, "could not read the result file: %s", strerror(errno));
	else if (out->len > RESULT_MAX)
		agent_seterr(why, whylen, "the result file is larger than %d bytes", RESULT_MAX);
	close(fd);					/* read-only: nothing to lose */
	return n < 0 || out->len > RESULT_MAX ? -1 : 1;
}

/* Writes into out the flow dir (flow-<token>) of the job spool dir jobdir; returns 0, or -1 when it has none. */
static int
find_flow_dir(const char *jobdir, char *out, size_t len)
{
	DIR		   *d = opendir(jobdir);
	struct dirent *e;
	int			rc = -1;

	if (d == NULL)
		return -1;
	while (rc < 0 && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "flow-", 5) == 0)
		{
			snprintf(out, len, "%s/%s", jobdir, e->d_name);
			rc = 0;
		}
	closedir(d);				/* read-only: nothing to lose */
	return rc;
}

/* jobuser_run() body: reads the result file arg and writes the outcome byte and the data or the reason to fd. */
static int
read_child(void *arg, int fd)
{
	char		why[AGENT_ERRLEN];
	StrBuf		data;
	int			rc;
	char		tag;

	sb_init(&data);
	rc = result_read_file(arg, &data, why, sizeof(why));
	tag = rc > 0 ? READ_DATA : rc == 0 ? READ_NONE : READ_ERROR;
	if (rc < 0)
	{
		data.len = 0;
		sb_puts(&data, why);
	}
	rc = write_all(fd, &tag, 1) < 0 || write_all(fd, data.data, data.len) < 0 ? -1 : 0;
	sb_free(&data);
	return rc;
}

/* result_read_file() with the job user's rights, in a child; the same returns. */
static int
read_as_job_user(const char *path, StrBuf *out, char *why, size_t whylen)
{
	StrBuf		raw;
	struct stat st;
	int			rc;

	/*
	 * Most jobs leave no result: the flow dir (the agent's group may search it)
	 * lets the agent see that without a child (its mode is the job's to change:
	 * then the child looks).
	 */
	if (lstat(path, &st) < 0 && errno == ENOENT)
		return 0;
	sb_init(&raw);
	if (jobuser_run(read_child, (void *) path, RESULT_MAX + 2, RESULT_READ_MS, &raw, why, whylen) < 0)
		rc = -1;
	else if (raw.len == 0 || raw.data[0] == READ_NONE)
		rc = 0;
	else if (raw.data[0] == READ_ERROR)
	{
		agent_seterr(why, whylen, "%s", raw.data + 1);
		rc = -1;
	}
	else
	{
		sb_append(out, raw.data + 1, raw.len - 1);
		rc = 1;
	}
	sb_free(&raw);
	return rc;
}

/*
 * Loads the result the job of spool dir jobdir left: returns 1 with *value set
 * (the caller's reference), 0 when there is none, -1 with why set when it
 * cannot be used.
 */
int
result_load(const char *jobdir, json_t **value, char *why, size_t whylen)
{
	char		dir[PATH_MAX], path[PATH_MAX + 16], err[AGENT_ERRLEN];
	StrBuf		text;
	int			rc;

	*value = NULL;
	if (find_flow_dir(jobdir, dir, sizeof(dir)) < 0)
		return 0;				/* it ended before it had one */
	snprintf(path, sizeof(path), "%s/result.json", dir);
	sb_init(&text);
	rc = read_as_job_user(path, &text, why, whylen);
	if (rc > 0 && memchr(text.data, '\0', text.len) != NULL)
	{
		agent_seterr(why, whylen, "the result file holds a NUL byte");
		rc = -1;
	}
	else if (rc > 0 && (*value = jsonio_load(text.data, JSON_DECODE_ANY, err, sizeof(err))) == NULL)
	{
		agent_seterr(why, whylen, "the result file holds %s", err);
		rc = -1;
	}
	sb_free(&text);
	return rc;
}

/*
 * Appends ",\"result\":VALUE" or ",\"result_error\":WHY" for the job of spool dir
 * jobdir to sb (a finish object being written), or nothing when it left no
 * result; returns how many bytes it appended.
 */
size_t
result_put_finish(StrBuf *sb, const char *jobdir)
{
	char		why[AGENT_ERRLEN];
	json_t	   *value;
	size_t		start = sb->len;
	int			rc = result_load(jobdir, &value, why, sizeof(why));

	if (rc > 0)
	{
		sb_puts(sb, ",\"result\":");
		jsonio_put(sb, value);
	}
	else if (rc < 0)
	{
		sb_puts(sb, ",\"result_error\":");
		jsonio_put_str(sb, why);
	}
	return sb->len - start;
}
