/*
 * scratch.c -- the scratch directories the jobs of a group share on a node.
 *
 * The jobs of a joblist that name one "group" run on one node (the server pins
 * them there) and share $DISPATCH_SCRATCH = <spool>/scratch/<key>.<token>/, where
 * key is "<joblist>-<n>" and token 16 random hex digits: the group's first job on
 * the node makes it (the job user's, mode 0700; every job runs as that user), the
 * later ones find the same one.  <spool>/scratch itself is the agent's (0711: no
 * job can list it), so no job can put a link where a key's directory belongs, and
 * the jobs of other joblists, although they run as the same user, cannot guess
 * the name of a group's directory from its key (which everyone may read in
 * dispatch.group_scratch).  When the group has ended, agent_poll hands out a
 * scratch_remove row until the agent answers agent_scratch_removed(node, key,
 * bytes): the keys are queued while the rows are read and removed right after
 * the poll, so only while connected, by jobuser_empty_dirs() with the job user's
 * rights (never through a symbolic link; directories the job made 0000 are
 * opened again) and a last rmdir by the agent.  A key whose directory does not
 * exist is answered with 0 bytes; an answer that could not be sent is sent again
 * after the next poll with the bytes counted the first time.  An agent that
 * restarts in between measures nothing more and answers 0 bytes.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCRATCH_KEY_MAX 64

/* A key the server asked to remove, until the answer is in. */
typedef struct Pending
{
	char		key[SCRATCH_KEY_MAX + 1];
	int			removed;		/* the directory is gone; bytes is what it held */
	int64_t		bytes;
	struct Pending *next;
} Pending;

static Pending *pending;

static int	scratch_root(const char *spool, char *path, size_t len, char *err, size_t errlen);
static int	scratch_find(const char *root, const char *key, char *path, size_t len);

/* Returns 1 when key (may be NULL) is a group key: digits, "-", digits, at most SCRATCH_KEY_MAX bytes. */
int
scratch_key_ok(const char *key)
{
	size_t		a, b;

	if (key == NULL || strlen(key) > SCRATCH_KEY_MAX)
		return 0;
	a = strspn(key, "0123456789");
	if (a == 0 || key[a] != '-')
		return 0;
	b = strspn(key + a + 1, "0123456789");
	return b > 0 && key[a + 1 + b] == '\0';
}

/* Creates <spool>/scratch (the agent's, 0711) unless it exists; writes its path into path. */
static int
scratch_root(const char *spool, char *path, size_t len, char *err, size_t errlen)
{
	snprintf(path, len, "%s/scratch", spool);
	return own_dir(path, 0711, err, errlen);
}

/*
 * Looks in root for the directory of group key (<key>.<16 hex digits>) and writes
 * its path into path.  Returns 1 when found, 0 when not, -1 (errno set) when root
 * cannot be read.
 */
static int
scratch_find(const char *root, const char *key, char *path, size_t len)
{
	DIR		   *d = opendir(root);
	struct dirent *e;
	size_t		k = strlen(key);
	int			found = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while (!found && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, key, k) == 0 && e->d_name[k] == '.' &&
			strlen(e->d_name + k + 1) == 16 &&
			strspn(e->d_name + k + 1, "0123456789abcdef") == 16)
		{
			snprintf(path, len, "%s/%s", root, e->d_name);
			found = 1;
		}
	closedir(d);
	return found;
}

/*
 * Makes sure the scratch dir of group key exists under spool (created for the
 * job user, 0700, or found as the job user's directory) and writes its path into
 * path.  Returns 0, or -1 with err set.
 */
int
scratch_prepare(const char *spool, const char *key, char *path, size_t len, char *err, size_t errlen)
{
	const JobUser *u = jobuser_get();
	char		root[PATH_MAX], token[17];
	struct stat st;

	if (!scratch_key_ok(key))
	{
		agent_seterr(err, errlen, "invalid scratch key \"%s\"", key ? key : "(null)");
		return -1;
	}
	if (scratch_root(spool, root, sizeof(root), err, errlen) < 0)
		return -1;
	switch (scratch_find(root, key, path, len))
	{
		case 1:
			if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
				st.st_uid != (u != NULL ? u->uid : geteuid()))
			{
				agent_seterr(err, errlen, "scratch \"%s\" is not the job user's directory", path);
				return -1;
			}
			return 0;
		case -1:
			agent_seterr(err, errlen, "could not read directory \"%s\": %s", root, strerror(errno));
			return -1;
	}
	if (random_hex(token, "the scratch directory", err, errlen) < 0)
		return -1;
	snprintf(path, len, "%s/%s.%s", root, key, token);
	if (mkdir(path, 0700) < 0)
	{
		agent_seterr(err, errlen, "could not create directory \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return jobuser_give(path, err, errlen);
}

/* agent_poll's scratch_remove row for key: queues it for scratch_process() (once). */
void
scratch_queue(const char *key)
{
	Pending    *p;

	if (!scratch_key_ok(key))
	{
		log_warning("ignoring scratch_remove for invalid key \"%s\"", key);
		return;
	}
	for (p = pending; p != NULL; p = p->next)
		if (strcmp(p->key, key) == 0)
			return;
	p = xmalloc(sizeof(Pending));
	memset(p, 0, sizeof(Pending));
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->next = pending;
	pending = p;
}

/*
 * Removes the scratch dir of group key under spool (none: nothing to do) and
 * stores the bytes of the regular files it held in *bytes.  Returns 0, or -1
 * with err set when anything is left.
 */
int
scratch_remove(const char *spool, const char *key, int64_t *bytes, char *err, size_t errlen)
{
	char		root[PATH_MAX], path[PATH_MAX];
	struct stat st;
	StrList		dirs;
	int			rc;

	*bytes = 0;
	if (!scratch_key_ok(key))
	{
		agent_seterr(err, errlen, "invalid scratch key \"%s\"", key);
		return -1;
	}
	snprintf(root, sizeof(root), "%s/scratch", spool);
	switch (scratch_find(root, key, path, sizeof(path)))
	{
		case 0:
			return 0;
		case -1:
			agent_seterr(err, errlen, "could not read directory \"%s\": %s", root, strerror(errno));
			return -1;
	}
	if (lstat(path, &st) < 0)
	{
		agent_seterr(err, errlen, "could not stat \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
	{
		agent_seterr(err, errlen, "scratch \"%s\" is not a directory", path);
		return -1;
	}
	strlist_init(&dirs);
	strlist_add(&dirs, path);
	rc = jobuser_empty_dirs(&dirs, bytes, err, errlen);
	strlist_free(&dirs);
	if (rc == 0 && rmdir(path) < 0 && errno != ENOENT)
	{
		agent_seterr(err, errlen, "could not remove directory \"%s\": %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

/*
 * After a poll: removes the queued scratch dirs and tells the server, one
 * agent_scratch_removed per key.  A key whose removal failed leaves the queue
 * (the server asks again); one whose answer failed stays, measured, for the
 * next round.
 */
void
scratch_process(Conn *c, const char *node, const char *spool)
{
	char		err[AGENT_ERRLEN];

	for (Pending **pp = &pending; *pp != NULL;)
	{
		Pending    *p = *pp;

		if (!p->removed && scratch_remove(spool, p->key, &p->bytes, err, sizeof(err)) < 0)
			log_warning("scratch of group %s: %s", p->key, err);
		else
		{
			p->removed = 1;
			if (conn_scratch_removed(c, node, p->key, p->bytes, err, sizeof(err)) != CALL_OK)
			{
				log_warning("agent_scratch_removed for group %s failed: %s", p->key, err);
				pp = &p->next;
				continue;
			}
			log_info("scratch of group %s removed (%lld bytes)", p->key, (long long) p->bytes);
		}
		*pp = p->next;
		free(p);
	}
}
