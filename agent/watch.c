/*
 * watch.c -- the watcher's lifecycle, its inotify descriptor and the directory tree.
 *
 * One inotify descriptor watches every directory of every workspace; a
 * directory's watch descriptor leads to its workspace and its path.  A new
 * directory (created or moved in) is watched before it is read, so a file
 * created in it meanwhile is either found by the read or announced by an
 * event; a directory moved away or deleted is forgotten, its files reported
 * deleted.  An event only marks a file pending (watch_touch): what happened to
 * it is looked at once it settles (watch_settle.c), so a rename over a file
 * is the target changed and the old name deleted, whatever order the events
 * took.  A lost event (IN_Q_OVERFLOW) is answered by a rescan of every
 * workspace, which marks pending what differs from what the watcher knew and
 * reports deleted what it no longer finds; a start is such a rescan against
 * the state file of the last run.
 *
 * A workspace's dir may be written by hostile jobs, so every open is
 * resolved beneath the workspace's dir without following a symbolic link
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), a directory is watched
 * through the descriptor it was opened as, and only regular files are
 * reported.  Paths are relative, valid UTF-8 (they go to the server as JSON
 * text) and at most WATCH_PATH_MAX bytes; other names are skipped with a
 * warning.  When the kernel's watch limit is reached the watcher warns and goes
 * on: what it cannot watch it sees at the next rescan.
 */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#define DIR_MASK (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | \
				  IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

static int	file_eq(const WEntry *e, const void *key);
static int	dir_eq(const WEntry *e, const void *key);
static WDir *dir_of(const Watcher *w, int wd);
static int	path_ok(const Workspace *ws, const char *dir, const char *name, char *out);
static void file_found(Watcher *w, Workspace *ws, int dfd, const char *name, const char *path,
					   int64_t now);
static void dir_watch(Watcher *w, Workspace *ws, int fd, const char *path);
static void scan_tree(Watcher *w, Workspace *ws, const char *path, int64_t now);
static int	below(const char *p, const char *path);
static void forget(Watcher *w, Workspace *ws, const char *path);
static void dir_free(Watcher *w, WDir *d);
static void rescan(Watcher *w, Workspace *ws, int64_t now);
static void on_event(Watcher *w, const struct inotify_event *ev, int64_t now);

/* Compares a WFile with a path. */
static int
file_eq(const WEntry *e, const void *key)
{
	return strcmp(((const WFile *) e)->path, key) == 0;
}

/* Compares a WDir with a watch descriptor. */
static int
dir_eq(const WEntry *e, const void *key)
{
	return ((const WDir *) e)->wd == *(const int *) key;
}

/* Returns the directory watched as wd, or NULL. */
static WDir *
dir_of(const Watcher *w, int wd)
{
	return (WDir *) wtable_find(&w->dirs, (uint64_t) wd, dir_eq, &wd);
}

/* Takes d out of the table and frees it. */
static void
dir_free(Watcher *w, WDir *d)
{
	wtable_remove(&w->dirs, &d->entry);
	free(d->path);
	free(d);
}

/* Returns a new watcher keeping its files in <spool>/watch, settling files for settle_ms. */
Watcher *
watch_new(const char *spool, int64_t settle_ms, char *err, size_t errlen)
{
	Watcher    *w = xmalloc(sizeof(Watcher));

	memset(w, 0, sizeof(*w));
	snprintf(w->dir, sizeof(w->dir), "%s/watch", spool);
	w->settle_ms = settle_ms;
	w->max_events = WATCH_BATCH_EVENTS;
	w->wants = json_array();
	wtable_init(&w->dirs);
	sb_init(&w->unqueued);
	if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		agent_seterr(err, errlen, "could not initialize inotify: %s", strerror(errno));
	else if (own_dir(w->dir, 0700, err, errlen) == 0 && watch_queue_open(w, err, errlen) == 0 &&
			 watch_wants_load(w, err, errlen) == 0)
		return w;
	watch_free(w);
	return NULL;
}

/* Adds workspace name over the absolute directory dir. */
int
watch_add(Watcher *w, const char *name, const char *dir, char *err, size_t errlen)
{
	Workspace  *ws;
	int			fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
	{
		agent_seterr(err, errlen, "could not open directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	ws = xmalloc(sizeof(Workspace));
	memset(ws, 0, sizeof(*ws));
	ws->name = xstrdup(name);
	ws->root = xstrdup(dir);
	ws->root_fd = fd;
	strlist_init(&ws->follows);
	wtable_init(&ws->files);
	ws->next = w->workspaces;
	w->workspaces = ws;
	return 0;
}

/* Makes the files of workspace name that match glob followed. */
int
watch_follow(Watcher *w, const char *name, const char *glob, char *err, size_t errlen)
{
	Workspace  *ws = watch_workspace(w, name);

	if (ws == NULL)
	{
		agent_seterr(err, errlen, "no workspace \"%s\" is watched", name);
		return -1;
	}
	strlist_add(&ws->follows, glob);
	return 0;
}

/* Returns workspace name, or NULL. */
Workspace *
watch_workspace(const Watcher *w, const char *name)
{
	for (Workspace *ws = w->workspaces; ws != NULL; ws = ws->next)
		if (strcmp(ws->name, name) == 0)
			return ws;
	return NULL;
}

/* Returns the file at path of ws, or NULL. */
WFile *
watch_file(const Workspace *ws, const char *path)
{
	return (WFile *) wtable_find(&ws->files, wtable_hash(path), file_eq, path);
}

/*
 * Loads every workspace's state, watches and scans its tree: files that
 * differ from the state are pending, files gone are reported deleted, and
 * each workspace gets its "rescanned" once its files have settled.
 */
int
watch_start(Watcher *w, int64_t now, char *err, size_t errlen)
{
	for (Workspace *ws = w->workspaces; ws != NULL; ws = ws->next)
	{
		if (watch_state_load(w, ws, err, errlen) < 0)
			return -1;
		rescan(w, ws, now);
	}
	return watch_flush(w, now);
}

/* Returns the inotify descriptor to poll(). */
int
watch_fd(const Watcher *w)
{
	return w->fd;
}

/*
 * Opens path of ws (NULL or "": its dir) with flags, resolved beneath the
 * workspace's dir and through no symbolic link; -1 with errno otherwise.
 */
int
watch_open(const Workspace *ws, const char *path, int flags)
{
	struct open_how how;
	long		fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t) (flags | O_NOFOLLOW | O_CLOEXEC);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, ws->root_fd, path && path[0] ? path : ".", &how, sizeof(how));
	return (int) fd;
}

/*
 * Writes dir/name (dir "" for the top) into out (WATCH_PATH_MAX + 1 bytes) and
 * returns 1, or warns and returns 0 for a path the watcher does not report.
 */
static int
path_ok(const Workspace *ws, const char *dir, const char *name, char *out)
{
	size_t		dlen = strlen(dir),
				nlen = strlen(name);
	char	   *copy;
	int			utf8;

	if (dlen + (dlen > 0) + nlen > WATCH_PATH_MAX)
	{
		log_warning("workspace \"%s\": skipping \"%.64s...\" in \"%.64s...\": its path is longer than %d bytes",
					ws->name, name, dir, WATCH_PATH_MAX);
		return 0;
	}
	snprintf(out, WATCH_PATH_MAX + 1, "%s%s%s", dir, dlen > 0 ? "/" : "", name);
	copy = xstrdup(out);
	utf8_sanitize(copy, strlen(copy), 1);
	utf8 = strcmp(copy, out) == 0;
	if (!utf8)
		log_warning("workspace \"%s\": skipping \"%s\": its path is not valid UTF-8", ws->name, copy);
	free(copy);
	return utf8;
}

/* Returns ws's file at path, a new one (not known, not pending) when missing; NULL past WATCH_FILES_MAX. */
WFile *
watch_file_add(Watcher *w, Workspace *ws, const char *path)
{
	WFile	   *f = watch_file(ws, path);

	if (f != NULL)
		return f;
	if (w->nfiles >= WATCH_FILES_MAX)
	{
		if (!w->warned_files)
			log_warning("the watcher tracks %d files, its limit: further files are ignored", WATCH_FILES_MAX);
		w->warned_files = 1;
		return NULL;
	}
	f = xmalloc(sizeof(WFile));
	memset(f, 0, sizeof(*f));
	f->ws = ws;
	f->path = xstrdup(path);
	f->entry.hash = wtable_hash(path);
	for (int i = 0; i < ws->follows.n && !f->follow; i++)
		f->follow = fnmatch(ws->follows.items[i], path, FNM_PATHNAME) == 0;
	wtable_add(&ws->files, &f->entry);
	w->nfiles++;
	return f;
}

/*
 * Marks f pending, due after delay ms (0: at once).  A later event postpones
 * a hashed file (it is looked at once quiet), not a followed one (its new
 * bytes go out at least every delay).
 */
void
watch_touch(Watcher *w, WFile *f, int64_t now, int64_t delay)
{
	f->last_event = now;
	if (f->pending)
	{
		if (!f->follow || now + delay < f->due)
			f->due = now + delay;
		return;
	}
	f->pending = 1;
	f->due = now + delay;
	f->pprev = NULL;
	f->pnext = w->pending;
	if (w->pending != NULL)
		w->pending->pprev = f;
	w->pending = f;
	if (f->ws->rescanning && !f->rescan)
	{
		f->rescan = 1;
		f->ws->rescan_left++;
	}
}

/* Takes f off the pending list; the last file of a rescan to settle queues its "rescanned". */
void
watch_unpend(Watcher *w, WFile *f)
{
	if (f->pending)
	{
		if (f->pprev != NULL)
			f->pprev->pnext = f->pnext;
		else
			w->pending = f->pnext;
		if (f->pnext != NULL)
			f->pnext->pprev = f->pprev;
		f->pending = 0;
	}
	if (f->rescan)
	{
		f->rescan = 0;
		if (--f->ws->rescan_left == 0 && f->ws->rescanning)
		{
			f->ws->rescanning = 0;
			watch_put_rescanned(w, f->ws);
		}
	}
}

/* Forgets f (reported deleted when the server knows it) and frees it. */
void
watch_forget(Watcher *w, WFile *f)
{
	if (f->known)
	{
		watch_put_deleted(w, f);
		f->ws->state_dirty = 1;
	}
	watch_unpend(w, f);
	wtable_remove(&f->ws->files, &f->entry);
	w->nfiles--;
	free(f->path);
	free(f);
}

/* A scan found regular file name (path) in directory dfd: pending unless the watcher knows it as it is. */
static void
file_found(Watcher *w, Workspace *ws, int dfd, const char *name, const char *path, int64_t now)
{
	WFile	   *f = watch_file_add(w, ws, path);
	struct stat st;

	if (f == NULL)
		return;
	f->seen = ws->gen;
	if (f->pending || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !f->known ||
		st.st_size != f->size || (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != f->mtime_ns)
		watch_touch(w, f, now, w->settle_ms);
}

/* Watches directory fd (opened as path of ws), or warns why it cannot. */
static void
dir_watch(Watcher *w, Workspace *ws, int fd, const char *path)
{
	char		proc[64];
	int			wd;
	WDir	   *d;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((wd = inotify_add_watch(w->fd, proc, DIR_MASK)) < 0)
	{
		if (errno != ENOSPC)
			log_warning("workspace \"%s\": could not watch \"%s\": %s", ws->name, path, strerror(errno));
		else if (!w->warned_limit)
			log_warning("workspace \"%s\": could not watch \"%s\": the inotify watch limit is reached (raise the sysctl fs.inotify.max_user_watches); directories not watched are seen only at rescans",
						ws->name, path);
		w->warned_limit |= errno == ENOSPC;
		return;
	}
	if ((d = dir_of(w, wd)) == NULL)
	{
		d = xmalloc(sizeof(WDir));
		d->wd = wd;
		d->path = NULL;
		d->entry.hash = (uint64_t) wd;
		wtable_add(&w->dirs, &d->entry);
	}
	if (d->path == NULL || strcmp(d->path, path) != 0)
	{
		free(d->path);
		d->path = xstrdup(path);
	}
	d->ws = ws;					/* it may have moved from another workspace */
	d->seen = ws->gen;
}

/*
 * Watches and reads directory path of ws and every directory below it,
 * breadth first (a deep tree needs no deep stack); each is watched before it
 * is read.
 */
static void
scan_tree(Watcher *w, Workspace *ws, const char *path, int64_t now)
{
	StrList		todo;

	strlist_init(&todo);
	strlist_add(&todo, path);
	for (int i = 0; i < todo.n; i++)
	{
		const char *dir = todo.items[i];
		int			fd = watch_open(ws, dir, O_RDONLY | O_DIRECTORY);
		DIR		   *d;
		struct dirent *e;

		if (fd < 0)
		{
			if (errno != ENOENT)
				log_warning("workspace \"%s\": could not open directory \"%s\": %s", ws->name,
							dir[0] ? dir : ".", strerror(errno));
			continue;
		}
		dir_watch(w, ws, fd, dir);
		if ((d = fdopendir(fd)) == NULL)
		{
			close(fd);
			continue;
		}
		while ((e = readdir(d)) != NULL)
		{
			char		child[WATCH_PATH_MAX + 1];
			unsigned char type = e->d_type;
			struct stat st;

			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
				!path_ok(ws, dir, e->d_name, child))
				continue;
			if (type == DT_UNKNOWN && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
			if (type == DT_DIR)
				strlist_add(&todo, child);
			else if (type == DT_REG)
				file_found(w, ws, dirfd(d), e->d_name, child, now);
		}
		closedir(d);			/* read-only */
	}
	strlist_free(&todo);
}

/* Returns 1 when p is path or lies below it ("" : everything). */
static int
below(const char *p, const char *path)
{
	size_t		len = strlen(path);

	return len == 0 || (strncmp(p, path, len) == 0 && (p[len] == '/' || p[len] == '\0'));
}

/*
 * Forgets the directories and files of ws below path, or with path NULL those
 * the scan of ws's current generation did not find; the files are reported
 * deleted.
 */
static void
forget(Watcher *w, Workspace *ws, const char *path)
{
	size_t		b = 0;
	WEntry	   *e,
			   *next;

	for (e = wtable_next(&w->dirs, &b, NULL); e != NULL; e = next)
	{
		WDir	   *d = (WDir *) e;

		next = wtable_next(&w->dirs, &b, e);
		if (d->ws == ws && (path ? below(d->path, path) : d->seen != ws->gen))
		{
			inotify_rm_watch(w->fd, d->wd); /* EINVAL when the kernel dropped it already */
			dir_free(w, d);
		}
	}
	b = 0;
	for (e = wtable_next(&ws->files, &b, NULL); e != NULL; e = next)
	{
		WFile	   *f = (WFile *) e;

		next = wtable_next(&ws->files, &b, e);
		if (path ? below(f->path, path) : f->seen != ws->gen)
			watch_forget(w, f);
	}
}

/*
 * Scans all of ws again: what differs from what the watcher knows becomes
 * pending, the files and directories no longer there are forgotten, and
 * "rescanned" follows once the pending files have settled.
 */
static void
rescan(Watcher *w, Workspace *ws, int64_t now)
{
	if (ws->gone)
		return;
	ws->gen++;
	ws->rescanning = 1;
	for (WFile *f = w->pending; f != NULL; f = f->pnext)
		if (f->ws == ws && !f->rescan)
		{
			f->rescan = 1;
			ws->rescan_left++;
		}
	scan_tree(w, ws, "", now);
	forget(w, ws, NULL);
	if (ws->rescan_left == 0)
	{
		ws->rescanning = 0;
		watch_put_rescanned(w, ws);
	}
}

/* Applies one inotify event. */
static void
on_event(Watcher *w, const struct inotify_event *ev, int64_t now)
{
	WDir	   *d = dir_of(w, ev->wd);
	char		path[WATCH_PATH_MAX + 1];
	Workspace  *ws;
	WFile	   *f;

	if (d == NULL)
		return;					/* a directory forgotten since */
	ws = d->ws;
	if (ev->mask & IN_IGNORED)
	{
		dir_free(w, d);
		return;
	}
	if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) && d->path[0] == '\0')
	{
		log_warning("workspace \"%s\": its directory \"%s\" was %s: it is no longer watched", ws->name,
					ws->root, ev->mask & IN_DELETE_SELF ? "deleted" : "moved");
		forget(w, ws, "");
		ws->gone = 1;
		return;
	}
	if (ev->len == 0 || !path_ok(ws, d->path, ev->name, path))
		return;					/* a subdirectory's own events: its parent's say it */
	if (ev->mask & IN_ISDIR)
	{
		if (ev->mask & (IN_CREATE | IN_MOVED_TO))
			scan_tree(w, ws, path, now);
		else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
			forget(w, ws, path);
		return;
	}
	if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
	{
		if ((f = watch_file(ws, path)) != NULL)
			watch_forget(w, f);
	}
	else if ((f = watch_file_add(w, ws, path)) != NULL)
		watch_touch(w, f, now, ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO) ? 0 : w->settle_ms);
}

/* Reads the pending inotify events; a lost event makes every workspace rescanned. */
void
watch_read(Watcher *w, int64_t now)
{
	char		buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	int			overflow = 0;
	ssize_t		n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;)
		{
			const struct inotify_event *ev = (const struct inotify_event *) p;

			p += sizeof(struct inotify_event) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				overflow = 1;
			else
				on_event(w, ev, now);
		}
	if (overflow)
	{
		log_warning("the watcher lost inotify events (raise the sysctl fs.inotify.max_queued_events): rescanning every workspace");
		for (Workspace *ws = w->workspaces; ws != NULL; ws = ws->next)
			rescan(w, ws, now);
	}
	watch_flush(w, now);
}

/* Saves the states, closes inotify and frees w (NULL: nothing). */
void
watch_free(Watcher *w)
{
	size_t		b = 0;
	WEntry	   *e,
			   *next;

	if (w == NULL)
		return;
	w->next_save = 0;			/* save now, whatever the clock says */
	if (w->fd >= 0)
		watch_flush(w, 0);
	for (Workspace *ws = w->workspaces, *wn; ws != NULL; ws = wn)
	{
		wn = ws->next;
		b = 0;
		for (e = wtable_next(&ws->files, &b, NULL); e != NULL; e = next)
		{
			next = wtable_next(&ws->files, &b, e);
			free(((WFile *) e)->path);
			free(e);
		}
		wtable_free(&ws->files);
		strlist_free(&ws->follows);
		close(ws->root_fd);
		free(ws->name);
		free(ws->root);
		free(ws);
	}
	b = 0;
	for (e = wtable_next(&w->dirs, &b, NULL); e != NULL; e = next)
	{
		next = wtable_next(&w->dirs, &b, e);
		dir_free(w, (WDir *) e);
	}
	wtable_free(&w->dirs);
	if (w->fd >= 0)
		close(w->fd);			/* no data behind it */
	sb_free(&w->unqueued);
	json_decref(w->wants);
	free(w);
}
