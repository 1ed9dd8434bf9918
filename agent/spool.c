/*
 * spool.c -- the agent's on-disk spool.
 *
 * Layout: <workdir>/jobs/<job_id>.<attempt>/ holds, per job,
 *   meta    job_id, attempt, supervisor pid and start time (written by the supervisor)
 *   stdout, stderr   the job's output, appended by the job itself
 *   status  how the job ended (written by the supervisor when it is done)
 *   work-<random>/  the job's working directory (DISPATCH_WORKDIR), the job user's
 * meta and status are small "key=value" line files.  They are written the
 * way autoprewarm's apw_dump_now() writes its dump: to a temporary name,
 * fsync'd, renamed over the final name, and the directory fsync'd, so a crash
 * leaves either the old file or the new one, never a torn one.  meta alone is
 * renamed into place without the fsyncs: it only says which process
 * supervises the job, and after a crash of the machine that process is gone
 * whether its meta survived or not (a missing or torn meta reads as "no
 * supervisor", like a dead pid), so durability would buy nothing there while
 * costing two fsyncs on every job's start path.  Readers still never see a
 * half-written meta.  Every
 * open/write/fsync/close/rename goes through a wrapper that a test build
 * (-DSPOOL_FAULTS) can make fail on its Nth call, like SQLite's *fault.test.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int io_open(const char *path, int flags, mode_t mode);
static int io_write_all(int fd, const char *data, size_t len);
static int io_fsync(int fd);
static int io_close(int fd);
static int io_rename(const char *from, const char *to);
static const char *write_sync_close(int fd, const char *data, size_t len, int sync);
static int replace_file(const char *dir, const char *name, const char *data, size_t len, int sync,
						char *err, size_t errlen);
static int fsync_dir(const char *dir, char *err, size_t errlen);
static const char *kv_get(const char *text, const char *key, size_t *len);
static int kv_int(const char *text, const char *key, long long *out, int *empty);
static int read_kv_file(const char *jobdir, const char *name, StrBuf *out, char *err, size_t errlen);
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw);

#ifdef SPOOL_FAULTS
static int	fault_countdown[SPOOL_FAULT_NOPS];

static int fault(int op);

/* Makes the nth next call of I/O operation op fail with EIO (0 disarms it). */
void
spool_fault_inject(int op, int nth)
{
	fault_countdown[op] = nth;
}

/* Returns 1 (with errno = EIO) when the armed fault for op fires now. */
static int
fault(int op)
{
	if (fault_countdown[op] > 0 && --fault_countdown[op] == 0)
	{
		errno = EIO;
		return 1;
	}
	return 0;
}
#define FAULT(op) fault(SPOOL_FAULT_##op)
#else
#define FAULT(op) 0
#endif

/* open(2) behind the fault hook. */
static int
io_open(const char *path, int flags, mode_t mode)
{
	return FAULT(OPEN) ? -1 : open(path, flags, mode);
}

/* Writes all of data to fd, retrying short writes; -1 with errno on failure. */
static int
io_write_all(int fd, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = FAULT(WRITE) ? -1 : write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t) n;
	}
	return 0;
}

/* fsync(2) behind the fault hook. */
static int
io_fsync(int fd)
{
	return FAULT(FSYNC) ? -1 : fsync(fd);
}

/* close(2) behind the fault hook; the descriptor is closed even when it "fails". */
static int
io_close(int fd)
{
	if (FAULT(CLOSE))
	{
		close(fd);
		errno = EIO;
		return -1;
	}
	return close(fd);
}

/* rename(2) behind the fault hook. */
static int
io_rename(const char *from, const char *to)
{
	return FAULT(RENAME) ? -1 : rename(from, to);
}

/*
 * Writes data (NULL: nothing) to fd, fsyncs it unless !sync and closes it, always
 * closing fd; returns NULL, or the step that failed ("write", "fsync", "close") with
 * its errno.
 */
static const char *
write_sync_close(int fd, const char *data, size_t len, int sync)
{
	const char *what = NULL;
	int			saved;

	if (data != NULL && io_write_all(fd, data, len) < 0)
		what = "write";
	else if (sync && io_fsync(fd) < 0)
		what = "fsync";
	else
		return io_close(fd) < 0 ? "close" : NULL;
	saved = errno;
	close(fd);
	errno = saved;
	return what;
}

/* fsyncs directory dir so that a rename in it is durable. */
static int
fsync_dir(const char *dir, char *err, size_t errlen)
{
	int			fd = io_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	const char *what;

	if (fd < 0)
		what = "open";
	else if ((what = write_sync_close(fd, NULL, 0, 1)) == NULL)
		return 0;
	agent_seterr(err, errlen, "could not %s directory \"%s\": %s", what, dir, strerror(errno));
	return -1;
}

/* Replaces dir/name by data crash-safely (temp file, fsync, rename, fsync dir). */
int
spool_write_file(const char *dir, const char *name, const char *data, size_t len,
				 char *err, size_t errlen)
{
	return replace_file(dir, name, data, len, 1, err, errlen);
}

/*
 * Replaces dir/name by data through a temp file renamed over it, so that readers see
 * the old file or the new one; with sync, fsyncs the file and the directory too.
 */
static int
replace_file(const char *dir, const char *name, const char *data, size_t len, int sync,
			 char *err, size_t errlen)
{
	char		tmp[4096], path[4096];
	const char *what;
	int			fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		agent_seterr(err, errlen, "could not create file \"%s\": %s", tmp, strerror(errno));
		return -1;
	}
	if ((what = write_sync_close(fd, data, len, sync)) == NULL)
	{
		if (io_rename(tmp, path) == 0)
			return sync ? fsync_dir(dir, err, errlen) : 0;
		what = "rename";
	}
	agent_seterr(err, errlen, "could not %s file \"%s\": %s", what, tmp, strerror(errno));
	unlink(tmp);
	return -1;
}

/*
 * Appends data to the file at path (created 0600 when missing) and fsyncs it:
 * a crash loses at most this append and never tears an earlier one.
 */
int
spool_append_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
	int			fd = io_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	const char *what;

	if (fd < 0)
		what = "open";
	else if ((what = write_sync_close(fd, data, len, 1)) == NULL)
		return 0;
	agent_seterr(err, errlen, "could not %s file \"%s\": %s", what, path, strerror(errno));
	return -1;
}

/* Reads the whole (small) file at path into out (initialised). */
int
spool_read_file(const char *path, StrBuf *out, char *err, size_t errlen)
{
	char		buf[4096];
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t		n;

	if (fd < 0)
	{
		agent_seterr(err, errlen, "could not open file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			agent_seterr(err, errlen, "could not read file \"%s\": %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		sb_append(out, buf, (size_t) n);
	}
	close(fd);					/* read-only: nothing to lose */
	return 0;
}

/* Reads the whole (small) file at path into out, which this initialises, and frees again on failure. */
int
spool_read_text(const char *path, StrBuf *out, char *err, size_t errlen)
{
	sb_init(out);
	if (spool_read_file(path, out, err, errlen) < 0)
	{
		sb_free(out);
		return -1;
	}
	return 0;
}

/* Returns the value of key in "key=value" lines text (a pointer into text, up to '\n'), or NULL. */
static const char *
kv_get(const char *text, const char *key, size_t *len)
{
	size_t		klen = strlen(key);

	for (const char *line = text; *line; )
	{
		const char *eol = strchr(line, '\n');

		if (eol == NULL)
			eol = line + strlen(line);
		if (strncmp(line, key, klen) == 0 && line[klen] == '=')
		{
			*len = (size_t) (eol - line - (ptrdiff_t) klen - 1);
			return line + klen + 1;
		}
		line = *eol ? eol + 1 : eol;
	}
	return NULL;
}

/* Stores key's integer value from text in *out; -1 when missing (empty allowed if allow_empty, giving 1 in *empty). */
static int
kv_int(const char *text, const char *key, long long *out, int *empty)
{
	size_t		len;
	const char *v = kv_get(text, key, &len);
	char	   *end;

	if (v == NULL)
		return -1;
	if (empty != NULL)
		*empty = (len == 0);
	if (len == 0)
	{
		*out = 0;
		return empty != NULL ? 0 : -1;
	}
	*out = strtoll(v, &end, 10);
	return end == v + len ? 0 : -1;
}

/* Reads jobdir/name into out, a parse-ready NUL-terminated text. */
static int
read_kv_file(const char *jobdir, const char *name, StrBuf *out, char *err, size_t errlen)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%s", jobdir, name);
	return spool_read_text(path, out, err, errlen);
}

/* Writes jobdir/status for st crash-safely. */
int
spool_write_status(const char *jobdir, const JobStatus *st, char *err, size_t errlen)
{
	StrBuf		sb;
	int			rc;

	sb_init(&sb);
	if (st->has_exit)
		sb_printf(&sb, "exit_code=%d\n", st->exit_code);
	else
		sb_puts(&sb, "exit_code=\n");
	sb_printf(&sb, "signal=%d\ntimed_out=%d\ncancelled=%d\ndetail=", st->signal,
			  st->timed_out, st->cancelled);
	for (const char *d = st->detail; *d; d++)
		sb_append(&sb, (*d == '\n' || *d == '\r') ? " " : d, 1);
	sb_puts(&sb, "\n");
	rc = spool_write_file(jobdir, "status", sb.data, sb.len, err, errlen);
	sb_free(&sb);
	return rc;
}

/* Reads jobdir/status into st; -1 when it is missing or malformed. */
int
spool_read_status(const char *jobdir, JobStatus *st, char *err, size_t errlen)
{
	StrBuf		sb;
	long long	code, sig, to, cancel;
	int			empty;
	const char *d;
	size_t		dlen;

	if (read_kv_file(jobdir, "status", &sb, err, errlen) < 0)
		return -1;
	memset(st, 0, sizeof(*st));
	if (kv_int(sb.data, "exit_code", &code, &empty) < 0 ||
		kv_int(sb.data, "signal", &sig, NULL) < 0 ||
		kv_int(sb.data, "timed_out", &to, NULL) < 0 ||
		kv_int(sb.data, "cancelled", &cancel, NULL) < 0)
	{
		agent_seterr(err, errlen, "invalid status file in \"%s\"", jobdir);
		sb_free(&sb);
		return -1;
	}
	st->has_exit = !empty;
	st->exit_code = (int) code;
	st->signal = (int) sig;
	st->timed_out = to != 0;
	st->cancelled = cancel != 0;
	if ((d = kv_get(sb.data, "detail", &dlen)) != NULL)
		snprintf(st->detail, sizeof(st->detail), "%.*s", (int) dlen, d);
	sb_free(&sb);
	return 0;
}

/* Writes jobdir/meta for m atomically (renamed into place, not fsynced: see the top). */
int
spool_write_meta(const char *jobdir, const JobMeta *m, char *err, size_t errlen)
{
	char		buf[256];
	int			n;

	n = snprintf(buf, sizeof(buf), "job_id=%" PRId64 "\nattempt=%d\npid=%d\nstarttime=%llu\nstarted_at=%" PRId64 "\n",
				 m->job_id, m->attempt, (int) m->pid, m->starttime, m->started_at);
	return replace_file(jobdir, "meta", buf, (size_t) n, 0, err, errlen);
}

/* Reads jobdir/meta into m; -1 when it is missing or malformed. */
int
spool_read_meta(const char *jobdir, JobMeta *m, char *err, size_t errlen)
{
	StrBuf		sb;
	long long	job, attempt, pid, start, at;

	if (read_kv_file(jobdir, "meta", &sb, err, errlen) < 0)
		return -1;
	if (kv_int(sb.data, "job_id", &job, NULL) < 0 || kv_int(sb.data, "attempt", &attempt, NULL) < 0 ||
		kv_int(sb.data, "pid", &pid, NULL) < 0 || kv_int(sb.data, "starttime", &start, NULL) < 0 ||
		kv_int(sb.data, "started_at", &at, NULL) < 0)
	{
		agent_seterr(err, errlen, "invalid meta file in \"%s\"", jobdir);
		sb_free(&sb);
		return -1;
	}
	m->job_id = job;
	m->attempt = (int) attempt;
	m->pid = (pid_t) pid;
	m->starttime = (unsigned long long) start;
	m->started_at = at;
	sb_free(&sb);
	return 0;
}

/* Returns 1 when jobdir/name exists. */
int
spool_exists(const char *jobdir, const char *name)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%s", jobdir, name);
	return access(path, F_OK) == 0;
}

static int	remove_errno;

/*
 * nftw callback: removes one entry, remembering the first failure.  A directory
 * we may not read (a job user's work dir, emptied by the job user) is rmdir'ed too.
 */
static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	int			dir = flag == FTW_DP || flag == FTW_DNR;

	(void) sb;
	(void) ftw;
	if ((dir ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT && remove_errno == 0)
		remove_errno = errno;
	return 0;
}

/* Removes the directory tree at path (never following symlinks). */
int
spool_remove_tree(const char *path, char *err, size_t errlen)
{
	remove_errno = 0;
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		remove_errno = errno;
	if (remove_errno != 0)
	{
		agent_seterr(err, errlen, "could not remove directory \"%s\": %s", path, strerror(remove_errno));
		return -1;
	}
	return 0;
}
