/*
 * files.c -- writes a job's configuration files into its work directory.
 *
 * The server hands the files out already rendered, as the agent_poll column
 * "files": a JSON array of {"path", "mode", "content"}, parsed once into the
 * job's Assignment (assign.c).  The server has checked
 * the paths at submit time; the agent checks them again (relative, no "." or
 * ".." or empty components), because it writes with its own rights.  Parent
 * directories are created as needed; files are created exclusively and never
 * through a symbolic link, and get exactly the mode asked for, whatever the umask.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int	path_ok(const char *path);
static int	parse_mode(const char *s, mode_t *mode);
static int	make_parents(const char *workdir, const char *path, char *err, size_t errlen);
static int	write_one(const char *workdir, const char *path, mode_t mode, const char *content,
					  char *err, size_t errlen);

/* Returns 1 when path is relative and has no empty, "." or ".." component. */
static int
path_ok(const char *path)
{
	const char *p = path;

	if (*p == '\0' || *p == '/')
		return 0;
	while (*p)
	{
		size_t		n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/' && *++p == '\0')
			return 0;			/* trailing slash */
	}
	return 1;
}

/* Parses an octal mode "0644" or "644" (no setuid, setgid or sticky bits); returns 0 or -1. */
static int
parse_mode(const char *s, mode_t *mode)
{
	size_t		n = strlen(s);
	unsigned	v = 0;

	if (n < 3 || n > 4 || (n == 4 && s[0] != '0'))
		return -1;
	for (size_t i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '7')
			return -1;
		v = v * 8 + (unsigned) (s[i] - '0');
	}
	*mode = (mode_t) v;
	return 0;
}

/* Creates the directories leading to workdir/path (mode 0755); returns 0 or -1. */
static int
make_parents(const char *workdir, const char *path, char *err, size_t errlen)
{
	char		full[PATH_MAX];
	size_t		base = strlen(workdir) + 1;

	if (snprintf(full, sizeof(full), "%s/%s", workdir, path) >= (int) sizeof(full))
	{
		agent_seterr(err, errlen, "file path \"%s\" is too long", path);
		return -1;
	}
	for (char *slash = strchr(full + base, '/'); slash != NULL; slash = strchr(slash + 1, '/'))
	{
		struct stat st;

		*slash = '\0';
		if (mkdir(full, 0755) < 0 &&
			(errno != EEXIST || lstat(full, &st) < 0 || !S_ISDIR(st.st_mode)))
		{
			agent_seterr(err, errlen, "could not create directory \"%s\": %s", full,
						 errno == EEXIST ? "a file of that name exists" : strerror(errno));
			return -1;
		}
		*slash = '/';
	}
	return 0;
}

/* Writes one file; returns 0 or -1. */
static int
write_one(const char *workdir, const char *path, mode_t mode, const char *content,
		  char *err, size_t errlen)
{
	char		full[PATH_MAX];
	size_t		len = strlen(content),
				done = 0;
	int			fd;

	if (make_parents(workdir, path, err, errlen) < 0)
		return -1;
	snprintf(full, sizeof(full), "%s/%s", workdir, path);
	if ((fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
	{
		agent_seterr(err, errlen, "could not create file \"%s\": %s", full, strerror(errno));
		return -1;
	}
	while (done < len)
	{
		ssize_t		n = write(fd, content + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			agent_seterr(err, errlen, "could not write file \"%s\": %s", full, strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t) n;
	}
	if (fchmod(fd, mode) < 0)
	{
		agent_seterr(err, errlen, "could not set the mode of file \"%s\": %s", full, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
	{
		agent_seterr(err, errlen, "could not close file \"%s\": %s", full, strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes the files of assignment a (none: nothing) into workdir; returns 0, or -1 with err set. */
int
files_write(const char *workdir, const Assignment *a, char *err, size_t errlen)
{
	json_t	   *f;
	size_t		i;

	if (a->files == NULL)
		return 0;
	if (!json_is_array(a->files))
	{
		agent_seterr(err, errlen, "job files must be a JSON array");
		return -1;
	}
	json_array_foreach(a->files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path")),
				   *mode = json_string_value(json_object_get(f, "mode")),
				   *content = json_string_value(json_object_get(f, "content"));
		mode_t		m;

		if (path == NULL || mode == NULL || content == NULL)
			agent_seterr(err, errlen, "a job file needs string \"path\", \"mode\" and \"content\"");
		else if (!path_ok(path))
			agent_seterr(err, errlen, "refusing unsafe job file path \"%s\"", path);
		else if (parse_mode(mode, &m) < 0)
			agent_seterr(err, errlen, "invalid mode \"%s\" of job file \"%s\"", mode, path);
		else if (write_one(workdir, path, m, content, err, errlen) == 0)
			continue;
		return -1;
	}
	return 0;
}
