/*
 * watch.h -- the file watcher (--watch WS=DIR): workspaces, their directories
 * and files, shared by
 *   watch.c         lifecycle, inotify, the directory tree and its (re)scans
 *   watch_settle.c  the tick: settled files stat'ed, hashed or followed
 *   watch_store.c   the spool: events, their queue file, the state files, wanted blobs
 *   watch_send.c    the queue to dispatch.agent_file_events, blobs to agent_put_blob
 *   watch_table.c   the hash table behind the files and directories
 * The watcher is driven by explicit calls and knows no clock of its own:
 * watch_start() scans, watch_read() takes what inotify has, watch_tick(now)
 * looks at the files that settled by now, and the events it finds wait in the
 * queue file until watch_send() (or a test, through watch_queue_batch() and
 * watch_queue_ack()) takes them.  The agent's loop calls these in turn; the
 * unit tests call them without a server.
 */
#ifndef AGENT_WATCH_H
#define AGENT_WATCH_H

#include "agent.h"
#include "digest.h"

#include <limits.h>

#define WATCH_PATH_MAX 1024		/* longest path below a workspace's dir; longer ones are skipped */
#define WATCH_CHUNK (64 * 1024) /* most bytes of one append event */
#define WATCH_BATCH_EVENTS 1000 /* most events in one agent_file_events call */
#define WATCH_BATCH_BYTES (1024 * 1024)	/* most bytes of events in one call */
#define WATCH_BLOB_MAX (64 * 1024 * 1024)	/* larger files are not uploaded */
#define WATCH_QUEUE_MAX (256LL * 1024 * 1024)	/* past it, settled files wait */
#define WATCH_FILES_MAX 1000000 /* files one watcher tracks; more are ignored */
#define WATCH_TICK_BYTES (64 * 1024 * 1024)	/* bytes hashed or followed in one tick */

/* ---- watch_table.c: a chained hash table of entries embedded in their owners ---- */

typedef struct WEntry
{
	struct WEntry *next;
	uint64_t	hash;
} WEntry;

typedef struct WTable
{
	WEntry	  **buckets;
	size_t		nbuckets;
	size_t		n;
} WTable;

void		wtable_init(WTable *t);
void		wtable_free(WTable *t);
uint64_t	wtable_hash(const char *s);
WEntry	   *wtable_find(const WTable *t, uint64_t hash, int (*eq) (const WEntry *, const void *),
						const void *key);
void		wtable_add(WTable *t, WEntry *e);
void		wtable_remove(WTable *t, WEntry *e);
WEntry	   *wtable_next(const WTable *t, size_t *bucket, const WEntry *e);

/* ---- the watcher's table ---- */

typedef struct Workspace Workspace;

/* A path of a workspace that is, or was, a regular file. */
typedef struct WFile
{
	WEntry		entry;			/* first: keyed by wtable_hash(path) */
	Workspace  *ws;
	char	   *path;			/* relative to the workspace's dir */
	int			follow;			/* matches a --follow glob: streamed, never hashed */
	int			known;			/* size, mtime_ns and sha256 or offset were reported */
	int64_t		size;
	int64_t		mtime_ns;
	char		sha256[DIGEST_HEX_LEN + 1];
	int64_t		offset;			/* followed: bytes reported */
	int			pending;		/* an event came: look at it once due */
	int64_t		due;
	int64_t		last_event;
	int			rescan;			/* counted in its workspace's rescan_left */
	unsigned	seen;			/* the scan generation that found it */
	struct WFile *pnext,
			   *pprev;			/* the watcher's list of pending files */
} WFile;

/* A watched directory. */
typedef struct WDir
{
	WEntry		entry;			/* first: keyed by its watch descriptor */
	Workspace  *ws;
	int			wd;
	char	   *path;			/* relative; "" for the workspace's dir */
	unsigned	seen;
} WDir;

struct Workspace
{
	char	   *name;
	char	   *root;			/* absolute */
	int			root_fd;		/* O_PATH: every open is resolved beneath it */
	StrList		follows;		/* fnmatch(3) globs */
	WTable		files;
	unsigned	gen;			/* scan generation */
	int			rescan_left;	/* files of the last rescan not settled yet */
	int			rescanning;		/* "rescanned" is queued once rescan_left is 0 */
	int			gone;			/* its dir was deleted or moved away */
	int			state_dirty;
	Workspace  *next;
};

typedef struct Watcher
{
	char		dir[PATH_MAX];	/* <spool>/watch */
	int			fd;				/* inotify */
	int64_t		settle_ms;
	Workspace  *workspaces;
	WTable		dirs;			/* by watch descriptor */
	int			nfiles;
	WFile	   *pending;		/* files with an event not looked at yet */
	StrBuf		unqueued;		/* event lines not yet in the queue file */
	int64_t		queue_bytes;	/* bytes in the queue file past its head */
	int64_t		queue_head;
	json_t	   *wants;			/* the server's wanted blobs not uploaded yet */
	int64_t		hashes;			/* SHA-256 digests computed (the tests count them) */
	int64_t		next_save;		/* earliest time for the next state save */
	int64_t		retry_at;		/* no calls before this time after a failed one */
	int			max_events;		/* halved when the server refuses a batch */
	int			warned_limit;	/* the inotify watch limit was reported */
	int			warned_files;
	int			warned_queue;
} Watcher;

/* ---- watch.c ---- */

Watcher    *watch_new(const char *spool, int64_t settle_ms, char *err, size_t errlen);
int			watch_add(Watcher *w, const char *name, const char *dir, char *err, size_t errlen);
int			watch_follow(Watcher *w, const char *name, const char *glob, char *err, size_t errlen);
int			watch_start(Watcher *w, int64_t now, char *err, size_t errlen);
int			watch_fd(const Watcher *w);
void		watch_read(Watcher *w, int64_t now);
void		watch_free(Watcher *w);
Workspace  *watch_workspace(const Watcher *w, const char *name);
WFile	   *watch_file(const Workspace *ws, const char *path);
WFile	   *watch_file_add(Watcher *w, Workspace *ws, const char *path);
int			watch_open(const Workspace *ws, const char *path, int flags);
void		watch_touch(Watcher *w, WFile *f, int64_t now, int64_t delay);
void		watch_unpend(Watcher *w, WFile *f);
void		watch_forget(Watcher *w, WFile *f);

/* ---- watch_settle.c ---- */

int64_t		watch_tick(Watcher *w, int64_t now);

/* ---- watch_store.c ---- */

void		watch_put_changed(Watcher *w, const WFile *f);
void		watch_put_deleted(Watcher *w, const WFile *f);
void		watch_put_append(Watcher *w, const WFile *f, int64_t offset, const char *data, size_t len);
void		watch_put_rescanned(Watcher *w, const Workspace *ws);
int			watch_flush(Watcher *w, int64_t now);
int			watch_queue_open(Watcher *w, char *err, size_t errlen);
int			watch_queue_batch(Watcher *w, int max_events, StrBuf *json, int64_t *end,
							  char *err, size_t errlen);
int			watch_queue_ack(Watcher *w, int64_t end, char *err, size_t errlen);
int			watch_state_load(Watcher *w, Workspace *ws, char *err, size_t errlen);
int			watch_state_save(Watcher *w, Workspace *ws, char *err, size_t errlen);
int			watch_wants_load(Watcher *w, char *err, size_t errlen);
int			watch_wants_save(Watcher *w, char *err, size_t errlen);

/* ---- watch_send.c ---- */

void		watch_send(Watcher *w, Conn *c, const char *node, int64_t now);
void		watch_resume(Watcher *w);
int			watch_want_send(const Watcher *w, int64_t *deadline);

#endif							/* AGENT_WATCH_H */
