/*
 * workdir.c -- choosing, creating and locking the agent's spool directory.
 *
 * The spool directory is where everything the agent must not lose lives
 * (jobs/, metrics/, history.jsonl), so exactly one agent may use it: an
 * exclusive flock() on <workdir>/agent.lock, held by a descriptor that stays
 * open for the agent's life, keeps a second agent out and goes away by itself
 * when the agent dies.  Without --workdir the directory follows systemd's
 * $STATE_DIRECTORY, then the XDG base directory specification.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORKDIR_LOCK_FILE "agent.lock"
#define WORKDIR_PATH_ROOM 128	/* bytes left for the longest path the spool builds under it */

static int	mkdir_p(const char *dir, char *err, size_t errlen);

/* Creates dir and its missing parents (mode 0700 for new ones). */
static int
mkdir_p(const char *dir, char *err, size_t errlen)
{
	char		path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1;; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			char		save = *p;

			*p = '\0';
			if (mkdir(path, 0700) < 0 && errno != EEXIST)
			{
				agent_seterr(err, errlen, "could not create directory \"%s\": %s", path, strerror(errno));
				return -1;
			}
			*p = save;
			if (save == '\0')
				return 0;
		}
	}
}

/* Chooses, creates and locks the spool directory (workdir: --workdir or NULL); stores its absolute path in out. */
int
workdir_setup(const char *workdir, const char *node, char *out, size_t outlen, char *err, size_t errlen)
{
	char		dir[PATH_MAX], lock[PATH_MAX + 16];
	const char *state = getenv("STATE_DIRECTORY");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int			fd;

	if (workdir != NULL)
		snprintf(dir, sizeof(dir), "%s", workdir);
	else if (state != NULL && *state != '\0')
		snprintf(dir, sizeof(dir), "%.*s", (int) strcspn(state, ":"), state);
	else if (xdg != NULL && *xdg == '/')
		snprintf(dir, sizeof(dir), "%s/dispatch-agent/%s", xdg, node);
	else if (home != NULL && *home == '/')
		snprintf(dir, sizeof(dir), "%s/.local/state/dispatch-agent/%s", home, node);
	else
		snprintf(dir, sizeof(dir), "dispatch-work");
	if (mkdir_p(dir, err, errlen) < 0)
		return -1;
	if (realpath(dir, out) == NULL)
	{
		agent_seterr(err, errlen, "could not resolve directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	if (strlen(out) + WORKDIR_PATH_ROOM > outlen)
	{
		agent_seterr(err, errlen, "spool directory path \"%s\" is too long", out);
		return -1;
	}
	snprintf(lock, sizeof(lock), "%s/" WORKDIR_LOCK_FILE, out);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
	{
		agent_seterr(err, errlen, "could not open lock file \"%s\": %s", lock, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
	{
		agent_seterr(err, errlen, errno == EWOULDBLOCK ?
					 "another dispatch-agent uses the spool directory \"%s\"" :
					 "could not lock the spool directory \"%s\"", out);
		close(fd);				/* unused, unlocked: nothing to lose */
		return -1;
	}
	return 0;					/* the descriptor stays open: it holds the lock */
}
