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
 * The path is walked one directory at a time relative to the last one
 * (openat with O_NOFOLLOW), so a link planted anywhere on the way is refused,
 * not followed; a build job's artefacts (artefacts.c) are written and read
 * through the same walk.
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

static int	parse_mode(const char *s, mode_t *mode);
static int	write_one(const char *workdir, const char *path, mode_t mode, const char *content,
					  char *err, size_t errlen);

/* Returns 1 when path is relative and has no empty, "." or ".." component. */
int
files_path_ok(const char *path)
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

/*
 * Opens the directory holding the last component of dir/path, walking down
 * from dir one component at a time without following a symbolic link; with
 * create set, missing directories are made (mode 0755) on the way.  Returns
 * its descriptor with *base pointing at the last component, or -1 with err
 * set and errno ENOENT (a component is missing), ENOTDIR (it is not a
 * directory), ELOOP (it is a symbolic link) or the error of the call.
 */
int
files_open_parent(const char *dir, const char *path, int create, const char **base,
				  char *err, size_t errlen)
{
	char		comp[PATH_MAX];
	const char *p = path,
			   *slash;
	struct stat st;
	int			fd,
				next,
				saved;

	if (strlen(dir) + strlen(path) + 2 > PATH_MAX)
	{
		agent_seterr(err, errlen, "file path \"%s\" is too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
	{
		saved = errno;
		agent_seterr(err, errlen, "could not open directory \"%s\": %s", dir, strerror(saved));
		errno = saved;
		return -1;
	}
	for (; (slash = strchr(p, '/')) != NULL; p = slash + 1)
	{
		memcpy(comp, p, (size_t) (slash - p));
		comp[slash - p] = '\0';
		if (create && mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
			next = -1;
		else if ((next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
		{
			close(fd);			/* read-only: nothing to lose */
			fd = next;
			continue;
		}
		/* O_DIRECTORY says ENOTDIR for a symbolic link too: tell the two apart */
		saved = errno;
		if (saved == ENOTDIR && fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			saved = ELOOP;
		agent_seterr(err, errlen, "could not %s directory \"%s/%.*s\": %s", create ? "create" : "open",
					 dir, (int) (slash - path), path,
					 saved == ELOOP ? "it is a symbolic link" :
					 saved == ENOTDIR ? "a file of that name exists" : strerror(saved));
		close(fd);
		errno = saved;
		return -1;
	}
	*base = p;
	return fd;
}

/*
 * Creates dir/path exclusively (mode 0600 until files_put() sets one), never
 * through a symbolic link, with the directories leading to it; returns a
 * read-write descriptor, or -1 with err set.
 */
int
files_create(const char *dir, const char *path, char *err, size_t errlen)
{
	const char *base;
	int			at = files_open_parent(dir, path, 1, &base, err, errlen),
				fd;

	if (at < 0)
		return -1;
	fd = openat(at, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		agent_seterr(err, errlen, "could not create file \"%s/%s\": %s", dir, path, strerror(errno));
	close(at);					/* read-only: nothing to lose */
	return fd;
}

/* Writes len bytes of data to fd, the file dir/path (for messages), and gives it mode; returns 0 or -1. */
int
files_put(int fd, const char *dir, const char *path, const char *data, size_t len, mode_t mode,
		  char *err, size_t errlen)
{
	if (write_all(fd, data, len) < 0)
	{
		agent_seterr(err, errlen, "could not write file \"%s/%s\": %s", dir, path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) < 0)
	{
		agent_seterr(err, errlen, "could not set the mode of file \"%s/%s\": %s", dir, path,
					 strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes one file; returns 0 or -1. */
static int
write_one(const char *workdir, const char *path, mode_t mode, const char *content,
		  char *err, size_t errlen)
{
	int			fd = files_create(workdir, path, err, errlen);

	if (fd < 0)
		return -1;
	if (files_put(fd, workdir, path, content, strlen(content), mode, err, errlen) < 0)
	{
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
	{
		agent_seterr(err, errlen, "could not close file \"%s/%s\": %s", workdir, path, strerror(errno));
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
		else if (!files_path_ok(path))
			agent_seterr(err, errlen, "refusing unsafe job file path \"%s\"", path);
		else if (parse_mode(mode, &m) < 0)
			agent_seterr(err, errlen, "invalid mode \"%s\" of job file \"%s\"", mode, path);
		else if (write_one(workdir, path, m, content, err, errlen) == 0)
			continue;
		return -1;
	}
	return 0;
}
