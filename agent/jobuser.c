/*
 * jobuser.c -- the OS user that jobs run as (--job-user), and every crossing to it.
 *
 * A job must not be its agent: running as the agent's user it could read the
 * agent's /proc/PID/environ, its ~/.pgpass, its spool, and so speak for the
 * agent to the database.  So the agent runs every job as one unprivileged
 * user of its own (never root, never the agent's user).  The agent itself
 * stays unprivileged too, with three capabilities and nothing more:
 * CAP_SETUID and CAP_SETGID, to become the job user in a job's child (and in
 * the short-lived children that signal or clean up after the job user), and
 * CAP_CHOWN, to hand each job's fresh work directory to the job user.  The
 * job's child switches groups, gid and uid, drops every capability (for a
 * non-root agent setuid() clears none, and ambient ones survive exec), sets
 * no_new_privs and checks the result before it execs; any failure ends the
 * child with a message the supervisor reports.  Signals cross the other way
 * with the effective uid set to the job user's for the kill() alone.  What
 * a job leaves in its directories (work, flow and group scratch dirs) is removed
 * by a short-lived child with the job user's rights, relative to the directory
 * at hand (openat/unlinkat): no symbolic link is ever followed, a directory the
 * job made 0000 is opened again first, and no depth is too deep.
 *
 * The module holds the one job user of the process (jobuser_init); without
 * one (--insecure-run-jobs-as-agent, and the unit tests) every function acts
 * as the agent's own user.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOBUSER_MAX_GROUPS 256
#define EMPTY_TIMEOUT_MS (300 * 1000)	/* most time to empty a job's directories */

/* The capabilities the agent needs for a job user, with the names setcap and systemd use. */
static const struct
{
	cap_value_t cap;
	const char *name;
}			needed[] = {
	{CAP_SETUID, "CAP_SETUID"},
	{CAP_SETGID, "CAP_SETGID"},
	{CAP_CHOWN, "CAP_CHOWN"},
};

static JobUser the_user;		/* the job user; name NULL: none */

/* One directory on empty_tree()'s way down: its name in its parent, identity and entries. */
typedef struct Level
{
	char	   *name;			/* NULL: the top */
	dev_t		dev;
	ino_t		ino;
	StrList		names;			/* its entries, read when it was opened */
	int			next;			/* the next of names to remove */
} Level;

/* What the child of jobuser_empty_dirs() tells its parent. */
typedef struct EmptyAnswer
{
	int64_t		bytes;
	int			failed;			/* index of the first dir not emptied, -1: none */
	int			error;			/* its errno */
} EmptyAnswer;

static int	held_caps(uint64_t *mask, char *err, size_t errlen);
static int	list_names(int fd, StrList *out);
static int	open_level(int at, const char *name, Level *l);
static int	empty_tree(const char *path, int64_t *bytes);
static int	owned_dirs(const char *dir, uid_t uid, StrList *out);
static int	empty_all(const StrList *list, int64_t *bytes, int *failed);
static int	empty_child(void *arg, int fd);

/* Returns 0 when a job user with uid may be used by an agent running as agent_uid, else -1 and err. */
int
jobuser_check_ids(const char *name, uid_t uid, uid_t agent_uid, char *err, size_t errlen)
{
	if (uid == 0)
		agent_seterr(err, errlen, "job user \"%s\" cannot be root: jobs must run unprivileged", name);
	else if (uid == agent_uid)
		agent_seterr(err, errlen, "job user \"%s\" cannot be the agent's own user: jobs could read its credentials", name);
	else
		return 0;
	return -1;
}

/*
 * Writes into out the names of the capabilities needed for a job user that are
 * missing from mask (bit n: capability n), comma-separated; returns how many.
 */
int
jobuser_missing_caps(uint64_t mask, char *out, size_t outlen)
{
	int			n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
		if (!(mask & (UINT64_C(1) << needed[i].cap)))
		{
			size_t		used = strlen(out);

			snprintf(out + used, outlen - used, "%s%s", n > 0 ? ", " : "", needed[i].name);
			n++;
		}
	return n;
}

/* Returns 1 when user u may search (enter) a directory of owner, group and mode. */
int
jobuser_can_search(const JobUser *u, uid_t owner, gid_t group, mode_t mode)
{
	if (owner == u->uid)
		return (mode & S_IXUSR) != 0;
	if (group == u->gid)
		return (mode & S_IXGRP) != 0;
	for (int i = 0; i < u->ngroups; i++)
		if (group == u->groups[i])
			return (mode & S_IXGRP) != 0;
	return (mode & S_IXOTH) != 0;
}

/* Stores in *mask (bit n: capability n) the capabilities in this process's effective set. */
static int
held_caps(uint64_t *mask, char *err, size_t errlen)
{
	cap_t		caps = cap_get_proc();

	if (caps == NULL)
	{
		agent_seterr(err, errlen, "could not read the agent's capabilities: %s", strerror(errno));
		return -1;
	}
	*mask = 0;
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
	{
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(caps, needed[i].cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET)
			*mask |= UINT64_C(1) << needed[i].cap;
	}
	cap_free(caps);
	return 0;
}

/*
 * Makes name the job user: it must exist, be neither root nor the agent's
 * user, and the agent must hold the capabilities to switch to it.
 */
int
jobuser_init(const char *name, char *err, size_t errlen)
{
	struct passwd *pw;
	gid_t		groups[JOBUSER_MAX_GROUPS];
	int			ngroups = JOBUSER_MAX_GROUPS;
	uint64_t	mask;
	char		missing[128];

	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
	{
		if (errno != 0 && errno != ENOENT)
			agent_seterr(err, errlen, "could not look up job user \"%s\": %s", name, strerror(errno));
		else
			agent_seterr(err, errlen, "job user \"%s\" does not exist", name);
		return -1;
	}
	if (jobuser_check_ids(name, pw->pw_uid, geteuid(), err, errlen) < 0)
		return -1;
	if (getgrouplist(name, pw->pw_gid, groups, &ngroups) < 0)
	{
		agent_seterr(err, errlen, "job user \"%s\" is in more than %d groups", name, JOBUSER_MAX_GROUPS);
		return -1;
	}
	if (held_caps(&mask, err, errlen) < 0)
		return -1;
	if (jobuser_missing_caps(mask, missing, sizeof(missing)) > 0)
	{
		agent_seterr(err, errlen, "cannot run jobs as \"%s\": the agent lacks the capabilities %s (setcap cap_setuid,cap_setgid,cap_chown+ep on the binary, or AmbientCapabilities= in its systemd unit; see docs/security.md)",
					 name, missing);
		return -1;
	}
	the_user.name = xstrdup(name);
	the_user.uid = pw->pw_uid;
	the_user.gid = pw->pw_gid;
	the_user.ngroups = ngroups;
	the_user.groups = xmalloc(sizeof(gid_t) * (size_t) ngroups);
	memcpy(the_user.groups, groups, sizeof(gid_t) * (size_t) ngroups);
	return 0;
}

/* Returns the job user, or NULL when jobs run as the agent's own user. */
const JobUser *
jobuser_get(void)
{
	return the_user.name != NULL ? &the_user : NULL;
}

/*
 * Checks that the job user can reach the spool dir (absolute; every directory
 * on the way searchable by it) and cannot change it (owned by the agent, not
 * writable by group or others); without a job user there is nothing to check.
 */
int
jobuser_check_spool(const char *dir, char *err, size_t errlen)
{
	char		path[PATH_MAX];
	struct stat st;

	if (the_user.name == NULL)
		return 0;
	if (stat(dir, &st) < 0)
	{
		agent_seterr(err, errlen, "could not stat \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
	{
		agent_seterr(err, errlen, "spool directory \"%s\" must be owned by the agent's user and not writable by group or others when jobs run as \"%s\"",
					 dir, the_user.name);
		return -1;
	}
	snprintf(path, sizeof(path), "%s", dir);
	for (;;)
	{
		const char *p = path[0] ? path : "/";
		char	   *slash;

		if (stat(p, &st) < 0)
		{
			agent_seterr(err, errlen, "could not stat \"%s\": %s", p, strerror(errno));
			return -1;
		}
		if (!jobuser_can_search(&the_user, st.st_uid, st.st_gid, st.st_mode))
		{
			agent_seterr(err, errlen, "job user \"%s\" cannot reach the spool directory \"%s\": \"%s\" is not searchable by it (chmod o+x, or StateDirectoryMode=0711)",
						 the_user.name, dir, p);
			return -1;
		}
		if (path[0] == '\0' || (slash = strrchr(path, '/')) == NULL)
			return 0;
		*slash = '\0';			/* one level up */
	}
}

/*
 * In a job's child before exec: becomes the job user (groups, gid, uid), drops
 * every capability and, with a job user, sets no_new_privs; then checks that
 * nothing of the agent is left.  Without a job user only the capabilities go.
 */
int
jobuser_enter(char *err, size_t errlen)
{
	const JobUser *u = &the_user;

	if (u->name != NULL &&
		(setgroups((size_t) u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0))
	{
		agent_seterr(err, errlen, "could not switch to job user \"%s\": %s", u->name, strerror(errno));
		return -1;
	}
	if (proc_drop_capabilities(err, errlen) < 0)
		return -1;
	if (u->name == NULL)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
	{
		agent_seterr(err, errlen, "could not set no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid || getegid() != u->gid ||
		setuid(0) == 0 || setegid(0) == 0)
	{
		agent_seterr(err, errlen, "switching to job user \"%s\" left privileges behind", u->name);
		return -1;
	}
	return 0;
}

/* Hands path (a fresh work dir) to the job user; without one, nothing to do. */
int
jobuser_give(const char *path, char *err, size_t errlen)
{
	if (the_user.name != NULL && chown(path, the_user.uid, the_user.gid) < 0)
	{
		agent_seterr(err, errlen, "could not give directory \"%s\" to job user \"%s\": %s", path,
					 the_user.name, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * kill(pid, sig) that may also signal the job user's processes: when the
 * agent's own rights do not suffice, the effective uid is the job user's for
 * one more try (real and saved uid stay the agent's, so it comes back).
 * Returns kill()'s result, errno kept.
 */
int
jobuser_kill(pid_t pid, int sig)
{
	int			rc, saved;

	if ((rc = kill(pid, sig)) == 0 || errno != EPERM || the_user.name == NULL)
		return rc;
	if (seteuid(the_user.uid) < 0)
		return -1;
	rc = kill(pid, sig);
	saved = errno;
	if (seteuid(getuid()) < 0)
		abort();				/* cannot happen: the real uid is always a permitted target */
	errno = saved;
	return rc;
}

/*
 * Opens directory name in directory at for emptying, never through a symbolic
 * link: made 0700 first (a job may leave it unreadable; a mode the current user
 * cannot change stays), its identity stored in l.  Returns the descriptor or -1.
 */
static int
open_level(int at, const char *name, Level *l)
{
	struct stat st;
	int			fd;

	(void) fchmodat(at, name, S_IRWXU, AT_SYMLINK_NOFOLLOW);	/* the open below tells */
	if ((fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || list_names(fd, &l->names) < 0)
	{
		int			saved = errno;

		close(fd);				/* read-only: nothing to lose */
		errno = saved;
		return -1;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->next = 0;
	return fd;
}

/* Fills out (not initialised) with the names in directory fd but "." and ".."; returns 0 or -1 (out untouched). */
static int
list_names(int fd, StrList *out)
{
	int			dup_fd = dup(fd);
	DIR		   *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
	struct dirent *e;

	if (d == NULL)
	{
		int			saved = errno;

		if (dup_fd >= 0)
			close(dup_fd);		/* read-only: nothing to lose */
		errno = saved;
		return -1;
	}
	strlist_init(out);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			strlist_add(out, e->d_name);
	closedir(d);				/* read-only: nothing to lose */
	return 0;
}

/*
 * Removes everything in directory path (not path itself), depth first, with
 * the *at() calls relative to the directory at hand: never through a symbolic
 * link, whatever a job swaps in meanwhile, and at any depth (no path grows, and
 * two descriptors are open at a time: a level's parent is found again through
 * "..", checked to be the directory it came from).  Adds the sizes of the
 * regular files removed to *bytes.  Returns 0, or -1 with errno when anything
 * is left.
 */
static int
empty_tree(const char *path, int64_t *bytes)
{
	Level	   *stack = xmalloc(sizeof(Level));
	int			depth = 1,
				cap = 1,
				rc = 0,
				saved = 0;
	int			fd;

	stack[0].name = NULL;
	if ((fd = open_level(AT_FDCWD, path, &stack[0])) < 0)
	{
		free(stack);
		return -1;
	}
	while (depth > 0)
	{
		Level	   *l = &stack[depth - 1];
		struct stat st;
		int			next;

		if (l->next < l->names.n)
		{
			const char *name = l->names.items[l->next++];

			if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				next = errno == ENOENT ? 0 : -1;
			else if (!S_ISDIR(st.st_mode))
			{
				if ((next = unlinkat(fd, name, 0)) == 0 && S_ISREG(st.st_mode))
					*bytes += (int64_t) st.st_size;
			}
			else if ((next = unlinkat(fd, name, AT_REMOVEDIR)) < 0 && errno != ENOENT)
			{
				Level		child = {.name = xstrdup(name)};

				if ((next = open_level(fd, name, &child)) < 0)
					free(child.name);
				else
				{
					if (depth == cap)
						stack = xrealloc(stack, sizeof(Level) * (size_t) (cap *= 2));
					stack[depth++] = child;
					close(fd);	/* read-only: nothing to lose */
					fd = next;
					continue;
				}
			}
			if (next < 0 && errno != ENOENT)
			{
				rc = -1;
				saved = errno;
			}
			continue;
		}
		if (depth > 1)
		{
			/* l is empty: back to its parent, which must still be where l came from */
			int			up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			const Level *p = &stack[depth - 2];

			close(fd);			/* read-only: nothing to lose */
			fd = up;
			if (up < 0 || fstat(up, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino)
			{
				saved = up < 0 ? errno : ESTALE;	/* moved away: stop here */
				rc = -1;
				break;
			}
			if (unlinkat(fd, l->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			{
				rc = -1;
				saved = errno;
			}
		}
		strlist_free(&l->names);
		free(l->name);
		depth--;
	}
	for (int i = 0; i < depth; i++)
	{
		strlist_free(&stack[i].names);
		free(stack[i].name);
	}
	free(stack);
	if (fd >= 0)
		close(fd);				/* read-only: nothing to lose */
	errno = saved;
	return rc;
}

/*
 * Adds to out the paths of the directories in dir that uid owns and that are not
 * empty; returns 0 or -1 with errno.  An empty one (a job that left nothing in its
 * work dir, the usual case) goes at once: rmdir needs only the agent's own write
 * permission on dir, which the job user has not, so the job cannot swap it for
 * something else meanwhile, and no child is forked for it on every job's end.
 */
static int
owned_dirs(const char *dir, uid_t uid, StrList *out)
{
	char		path[PATH_MAX];
	DIR		   *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL)
	{
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
			st.st_uid == uid && rmdir(path) < 0)
			strlist_add(out, path);
	}
	closedir(d);				/* read-only: nothing to lose */
	return 0;
}

/*
 * Empties every directory of list, adding the bytes of the files removed to *bytes;
 * returns 0, or -1 with errno and the index of the first directory not emptied in *failed.
 */
static int
empty_all(const StrList *list, int64_t *bytes, int *failed)
{
	int			saved = 0;

	*failed = -1;
	for (int i = 0; i < list->n; i++)
		if (empty_tree(list->items[i], bytes) < 0 && *failed < 0)
		{
			*failed = i;
			saved = errno;
		}
	errno = saved;
	return *failed < 0 ? 0 : -1;
}

/*
 * Runs fn(arg, fd) in a child with the job user's rights (without a job user, the
 * agent's own minus its capabilities) and collects what it writes to fd into out
 * (initialised), at most max bytes (the rest is read and dropped).  A child that
 * has not ended after timeout_ms is killed: any process of the job user may stop
 * it, and the agent must not wait on it forever.  Returns 0 when the child ended
 * with fn's 0, else -1 with err set.
 */
int
jobuser_run(int (*fn) (void *arg, int fd), void *arg, size_t max, int64_t timeout_ms,
			StrBuf *out, char *err, size_t errlen)
{
	char		buf[65536];
	int			p[2], ws = 0, late = 0;
	int64_t		deadline = proc_now_ms() + timeout_ms;
	pid_t		pid;
	ssize_t		n;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0)
	{
		agent_seterr(err, errlen, "could not start a process as the job user: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
	{
		char		e[AGENT_ERRLEN];

		close(p[0]);
		proc_default_signals();
		_exit(jobuser_enter(e, sizeof(e)) < 0 ? 2 : fn(arg, p[1]) < 0 ? 1 : 0);
	}
	close(p[1]);				/* pipe ends carry no data of ours: nothing to lose */
	for (;;)
	{
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int64_t		left = deadline - proc_now_ms();
		int			r = poll(&pfd, 1, left > 0 ? (int) left : 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
		{
			late = 1;
			jobuser_kill(pid, SIGKILL);
			break;
		}
		if (r < 0 || (n = read(p[0], buf, sizeof(buf))) == 0 || (n < 0 && errno != EINTR))
			break;
		if (n > 0 && out->len < max)
			sb_append(out, buf, (size_t) n < max - out->len ? (size_t) n : max - out->len);
	}
	close(p[0]);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (late)
		agent_seterr(err, errlen, "the job user's process did not end within %lld ms",
					 (long long) timeout_ms);
	else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	else if (WIFSIGNALED(ws))
		agent_seterr(err, errlen, "the job user's process was killed by signal %d", WTERMSIG(ws));
	else
		agent_seterr(err, errlen, "the job user's process %s",
					 WEXITSTATUS(ws) == 2 ? "could not become the job user" : "failed");
	return -1;
}

/* jobuser_run() body of jobuser_empty_dirs(): empties the dirs of arg, writes an EmptyAnswer. */
static int
empty_child(void *arg, int fd)
{
	EmptyAnswer ans = {0};

	if (empty_all(arg, &ans.bytes, &ans.failed) < 0)
		ans.error = errno;
	return write(fd, &ans, sizeof(ans)) == (ssize_t) sizeof(ans) ? 0 : -1;
}

/*
 * Empties the directories of dirs (the job user's, each in a directory the job
 * user cannot change) with the job user's rights, and adds the bytes of the
 * regular files removed to *bytes.  Returns 0, or -1 with err set when anything
 * is left.
 */
int
jobuser_empty_dirs(const StrList *dirs, int64_t *bytes, char *err, size_t errlen)
{
	EmptyAnswer ans;
	StrBuf		out;
	int			rc = 0;

	if (dirs->n == 0)
		return 0;
	sb_init(&out);
	if (jobuser_run(empty_child, (void *) dirs, sizeof(ans), EMPTY_TIMEOUT_MS, &out, err, errlen) < 0)
		rc = -1;
	else if (out.len != sizeof(ans))
	{
		agent_seterr(err, errlen, "the job user's process emptying \"%s\" said nothing", dirs->items[0]);
		rc = -1;
	}
	else
	{
		memcpy(&ans, out.data, sizeof(ans));
		*bytes += ans.bytes;
		if (ans.failed >= 0)
		{
			agent_seterr(err, errlen, "could not empty directory \"%s\": %s",
						 dirs->items[ans.failed < dirs->n ? ans.failed : 0], strerror(ans.error));
			rc = -1;
		}
	}
	sb_free(&out);
	return rc;
}

/*
 * Removes the spool dir of a job, whatever modes its job left in its work and
 * flow dirs: the directories in it that the job user owns, when not empty, are
 * emptied by a child running as the job user (jobuser_empty_dirs), the rest goes as
 * the agent.
 * Returns 0, or -1 with err set.
 */
int
jobuser_remove_tree(const char *dir, char *err, size_t errlen)
{
	StrList		owned;
	int64_t		bytes = 0;
	char		why[AGENT_ERRLEN];

	strlist_init(&owned);
	if (owned_dirs(dir, the_user.name != NULL ? the_user.uid : geteuid(), &owned) < 0)
		log_warning("could not list directory \"%s\": %s", dir, strerror(errno));
	if (jobuser_empty_dirs(&owned, &bytes, why, sizeof(why)) < 0)
		log_warning("%s", why);
	strlist_free(&owned);
	return spool_remove_tree(dir, err, errlen);
}
