/*
 * control.c -- relaying the wait and signal requests of running jobs.
 *
 * A job pauses with `dispatch-agent wait NAME` until a signal NAME of its
 * joblist arrives, or sends one with `dispatch-agent signal NAME JSON`
 * (signal_cmd.c).  Neither holds database credentials: they write a request
 * file into the job attempt's control directory, DISPATCH_CONTROL, and wait
 * for the agent's answer file there.  The directory is the job attempt's flow
 * dir, made before the job starts, <jobdir>/flow-<random> (inputs.c; one
 * directory for results, inputs and requests, as each costs a mkdir per job),
 * given here to the job user with the agent's group, mode 0770 (it cannot be
 * renamed, the spool dir around it being the agent's; only <id>.req names are
 * requests), so which job a request speaks for follows from where it lies:
 * nothing in the file says it.  The job is hostile: an inotify watch names
 * each new file (a regular one once closed or renamed into place), and a file is read only when its name is <id>.req with a
 * valid id, it is a regular file of the job user's with one link, opened
 * without following a symlink or blocking on a FIFO, and it holds at most
 * CONTROL_REQUEST_MAX bytes of a request object; a job holds at most
 * CONTROL_MAX_PENDING requests.  What is refused gets an answer saying why,
 * so the job's subcommand ends too.
 *
 * Requests travel in one dispatch.agent_signals call per loop round (at most
 * BATCH_REQUESTS and BATCH_BYTES; halved while the server refuses a batch as
 * bad data, down to the one request that it refuses, which is answered so),
 * the request file's own JSON spliced into the server's request, so a payload
 * reaches the server as the job wrote it, and the server's payload comes back
 * as jsonb text, never re-encoded.  An answer other than "waiting" is written
 * to <id>.ans (a temp file renamed into place; the agent's, 0644), the
 * request file is removed and the request forgotten; a waiting one is asked
 * again on NOTIFY 'signal', after each (re)connection and once per heartbeat
 * (control_reask), unless its file is gone (the waiter gave up).  The server
 * keeps the answer of each (job, attempt, id), so asking twice is harmless: a
 * restarted agent rescans the control dirs of the jobs still running and asks
 * again, and an agent cut off from the database holds its requests until it
 * is back.
 */
#include "control.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_REQUESTS 256		/* most requests in one call (server default 1000) */
#define BATCH_BYTES (4 * 1024 * 1024)	/* most request text in one call (server default 16 MB) */
#define RETRY_MS 2000			/* wait after a failed call */
#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW)

/* One request of a job, read from its file and not answered yet. */
typedef struct Request
{
	char		id[CONTROL_ID_MAX + 1];
	StrBuf		body;			/* the server request, JSON text */
	int			ask;			/* goes in the next batch */
	struct Request *next;
} Request;

/* The control dir of one running job attempt and its requests. */
typedef struct Control
{
	int64_t		job_id;
	int			attempt;
	char		dir[PATH_MAX];
	int			wd;				/* inotify watch, -1 if none (then rescanned at each reask) */
	int			nreq;
	int			refusals;		/* logged as warnings once, then as debug lines */
	Request    *reqs;
	struct Control *next;
} Control;

static Control *controls;
static int	ino_fd = -1;
static char agent_exe[PATH_MAX];	/* DISPATCH_AGENT: this binary */
static int64_t retry_at;
static int	max_batch = BATCH_REQUESTS;
static struct
{
	Control    *ctl;
	Request    *req;			/* NULL: forgotten meanwhile */
}			in_flight[BATCH_REQUESTS];
static int	n_in_flight;

static int	chars_ok(const char *s, size_t max, const char *extra);
static uid_t request_owner(void);
static int	open_dir(const Control *c);
static Control *find_control(int64_t job_id, int attempt);
static Control *add_control(int64_t job_id, int attempt, const char *dir);
static Request *find_request(const Control *c, const char *id);
static void drop_request(Control *c, Request *r);
static void refuse(Control *c, int dirfd, const char *id, const char *why);
static void handle_file(Control *c, int dirfd, const char *name, int created);
static void scan(Control *c);
static int	read_all(int fd, size_t max, StrBuf *out);
static int	check_request(const json_t *v, char *err, size_t errlen);
static void finish(Control *c, Request *r, const char *status, const char *message,
				   const char *payload);
static void on_answer(const SignalAnswer *a, int i, void *arg);

/* Returns 1 when s is 1 to max characters of letters, digits and those of extra. */
static int
chars_ok(const char *s, size_t max, const char *extra)
{
	size_t		n = 0;

	for (; s[n] != '\0'; n++)
		if (n >= max || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
						  (s[n] >= '0' && s[n] <= '9') || strchr(extra, s[n]) != NULL))
			return 0;
	return n > 0;
}

/* Returns 1 when s can be a request id: 1-64 of [A-Za-z0-9_.-]. */
int
control_id_ok(const char *s)
{
	return chars_ok(s, CONTROL_ID_MAX, "_.-");
}

/* Returns 1 when s can be a signal name: 1-200 of [A-Za-z0-9_.:-], as the server checks. */
int
control_name_ok(const char *s)
{
	return chars_ok(s, CONTROL_NAME_MAX, "_.:-");
}

/* Returns the uid request files must have: the job user's, or ours without one. */
static uid_t
request_owner(void)
{
	const JobUser *u = jobuser_get();

	return u != NULL ? u->uid : geteuid();
}

/* Starts inotify for the control dirs and notes this binary's path for DISPATCH_AGENT. */
int
control_init(char *err, size_t errlen)
{
	ssize_t		n = readlink("/proc/self/exe", agent_exe, sizeof(agent_exe) - 1);

	if (n <= 0 || agent_exe[0] != '/')
	{
		agent_seterr(err, errlen, "could not find the agent's binary: %s",
					 n < 0 ? strerror(errno) : "not an absolute path");
		return -1;
	}
	agent_exe[n] = '\0';
	if ((ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
	{
		agent_seterr(err, errlen, "could not initialize inotify: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Forgets every control dir and closes inotify. */
void
control_shutdown(void)
{
	while (controls != NULL)
		control_forget(controls->job_id, controls->attempt);
	if (ino_fd >= 0)
		close(ino_fd);			/* no data behind it */
	ino_fd = -1;
}

/* Returns the inotify descriptor to poll(). */
int
control_inotify_fd(void)
{
	return ino_fd;
}

/* Opens c's dir (never through a symlink); -1 when it cannot be. */
static int
open_dir(const Control *c)
{
	return open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Returns the control dir of (job_id, attempt), or NULL. */
static Control *
find_control(int64_t job_id, int attempt)
{
	for (Control *c = controls; c != NULL; c = c->next)
		if (c->job_id == job_id && c->attempt == attempt)
			return c;
	return NULL;
}

/* Adds the (existing) control dir of (job_id, attempt) and watches it. */
static Control *
add_control(int64_t job_id, int attempt, const char *dir)
{
	Control    *c = xmalloc(sizeof(Control));

	memset(c, 0, sizeof(Control));
	c->job_id = job_id;
	c->attempt = attempt;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	if ((c->wd = inotify_add_watch(ino_fd, dir, WATCH_MASK)) < 0)
		log_warning("job %" PRId64 ": could not watch \"%s\": %s; looking at it once per heartbeat",
					job_id, dir, strerror(errno));
	c->next = controls;
	controls = c;
	return c;
}

/*
 * Makes dir, the flow dir of a new job attempt (inputs.c made it, the agent's
 * still), its control dir: the job user's with the agent's group, 0770 (both
 * write in it); watches it and sets DISPATCH_CONTROL (its path) and
 * DISPATCH_AGENT (this binary) in the job's environment env.
 */
int
control_attach(int64_t job_id, int attempt, const char *dir, StrList *env, char *err,
			   size_t errlen)
{
	const JobUser *u = jobuser_get();

	/* chmod while it is still ours: once it is the job user's, only the job user may */
	if (u != NULL && (chmod(dir, 0770) < 0 || chown(dir, u->uid, getegid()) < 0))
	{
		agent_seterr(err, errlen, "could not give directory \"%s\" to job user \"%s\": %s", dir,
					 u->name, strerror(errno));
		return -1;
	}
	add_control(job_id, attempt, dir);
	env_set(env, "DISPATCH_CONTROL", dir);
	if (agent_exe[0] != '\0')
		env_set(env, "DISPATCH_AGENT", agent_exe);
	return 0;
}

/* After a restart: takes up the control dir of running job (job_id, attempt) in jobdir and reads its requests. */
void
control_adopt(int64_t job_id, int attempt, const char *jobdir)
{
	char		path[PATH_MAX];
	DIR		   *d = opendir(jobdir);
	struct dirent *e;
	Control    *c = NULL;

	if (d == NULL || find_control(job_id, attempt) != NULL)
	{
		if (d != NULL)
			closedir(d);
		return;
	}
	while (c == NULL && (e = readdir(d)) != NULL)
	{
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", jobdir, e->d_name);
		if (strncmp(e->d_name, "flow-", 5) == 0 && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			c = add_control(job_id, attempt, path);
	}
	closedir(d);				/* read-only: nothing to lose */
	if (c != NULL)
		scan(c);
}

/* Forgets the control dir of (job_id, attempt) and its requests (the job has ended). */
void
control_forget(int64_t job_id, int attempt)
{
	for (Control **p = &controls; *p != NULL; p = &(*p)->next)
		if ((*p)->job_id == job_id && (*p)->attempt == attempt)
		{
			Control    *c = *p;

			*p = c->next;
			while (c->reqs != NULL)
				drop_request(c, c->reqs);
			if (c->wd >= 0)
				inotify_rm_watch(ino_fd, c->wd);
			free(c);
			return;
		}
}

/* Returns c's request id, or NULL. */
static Request *
find_request(const Control *c, const char *id)
{
	for (Request *r = c->reqs; r != NULL; r = r->next)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

/* Unlinks request r from c and frees it. */
static void
drop_request(Control *c, Request *r)
{
	for (Request **p = &c->reqs; *p != NULL; p = &(*p)->next)
		if (*p == r)
		{
			*p = r->next;
			break;
		}
	for (int i = 0; i < n_in_flight; i++)
		if (in_flight[i].req == r)
			in_flight[i].req = NULL;
	c->nreq--;
	sb_free(&r->body);
	free(r);
}

/* Reads at most max + 1 bytes of fd into out (initialised); returns 0, or -1 with errno. */
static int
read_all(int fd, size_t max, StrBuf *out)
{
	char		buf[65536];
	ssize_t		n;

	while (out->len <= max)
	{
		size_t		want = max + 1 - out->len < sizeof(buf) ? max + 1 - out->len : sizeof(buf);

		if ((n = read(fd, buf, want)) < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		sb_append(out, buf, (size_t) n);
	}
	return 0;
}

/* Returns 0 when v is a request object {"wait": NAME} or {"signal": NAME[, "payload": ANY]}, else -1 and err. */
static int
check_request(const json_t *v, char *err, size_t errlen)
{
	const json_t *wait = json_object_get(v, "wait");
	const json_t *sig = json_object_get(v, "signal");
	const json_t *name = wait != NULL ? wait : sig;
	const char *key;
	json_t	   *m;

	if (!json_is_object(v))
	{
		agent_seterr(err, errlen, "a request must be a JSON object");
		return -1;
	}
	json_object_foreach((json_t *) v, key, m)
		if (strcmp(key, "wait") != 0 && strcmp(key, "signal") != 0 && strcmp(key, "payload") != 0)
		{
			agent_seterr(err, errlen, "a request has no key \"%.64s\"", key);
			return -1;
		}
	if ((wait != NULL) == (sig != NULL))
		agent_seterr(err, errlen, "a request has \"wait\" or \"signal\", and not both");
	else if (!json_is_string(name) || !control_name_ok(json_string_value(name)))
		agent_seterr(err, errlen, "invalid signal name: a name is 1 to 200 letters, digits, \"_\", \".\", \":\" or \"-\"");
	else if (wait != NULL && json_object_get(v, "payload") != NULL)
		agent_seterr(err, errlen, "a wait request has no payload");
	else
		return 0;
	return -1;
}

/*
 * Reads request file name of the control dir dirfd, which owner must own, for
 * job (job_id, attempt).  REQ_OK: id holds the request id (CONTROL_ID_MAX + 1
 * bytes) and body (initialised) the server request.  REQ_REFUSED: id is set
 * and err says why.  REQ_IGNORE: not a request file, or one whose id is not
 * valid (no answer can be named for it), or gone already.
 */
ReqVerdict
control_read_request(int dirfd, const char *name, uid_t owner, int64_t job_id, int attempt,
					 StrBuf *body, char *id, char *err, size_t errlen)
{
	size_t		n = strlen(name);
	struct stat st;
	StrBuf		text;
	json_t	   *v = NULL;
	char		jerr[AGENT_ERRLEN];
	int			fd;
	ReqVerdict	verdict = REQ_REFUSED;

	if (n <= 4 || n - 4 > CONTROL_ID_MAX || strcmp(name + n - 4, ".req") != 0)
		return REQ_IGNORE;
	memcpy(id, name, n - 4);
	id[n - 4] = '\0';
	if (!control_id_ok(id))
		return REQ_IGNORE;
	/* O_NONBLOCK: a FIFO must not hang the agent; O_NOFOLLOW: nor a symlink lead it elsewhere */
	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
	{
		if (errno == ENOENT)
			return REQ_IGNORE;
		if (errno == ELOOP)
			agent_seterr(err, errlen, "the request file is a symbolic link");
		else
			agent_seterr(err, errlen, "could not open the request file: %s", strerror(errno));
		return REQ_REFUSED;
	}
	sb_init(&text);
	if (fstat(fd, &st) < 0)
		agent_seterr(err, errlen, "could not stat the request file: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		agent_seterr(err, errlen, "the request file is not a regular file");
	else if (st.st_uid != owner)
		agent_seterr(err, errlen, "the request file does not belong to the job user");
	else if (st.st_nlink != 1)
		agent_seterr(err, errlen, "the request file has more than one link");
	else if (st.st_size > CONTROL_REQUEST_MAX)
		agent_seterr(err, errlen, "the request file has %lld bytes, more than %d allowed",
					 (long long) st.st_size, CONTROL_REQUEST_MAX);
	else if (read_all(fd, CONTROL_REQUEST_MAX, &text) < 0)
		agent_seterr(err, errlen, "could not read the request file: %s", strerror(errno));
	else if (text.len > CONTROL_REQUEST_MAX)
		agent_seterr(err, errlen, "the request file has more than %d bytes", CONTROL_REQUEST_MAX);
	else if (strlen(text.data) != text.len)
		agent_seterr(err, errlen, "the request holds a NUL byte");
	else if ((v = jsonio_load(text.data, 0, jerr, sizeof(jerr))) == NULL)
		agent_seterr(err, errlen, "the request is not valid: %s", jerr);
	else if (check_request(v, err, errlen) == 0)
	{
		/* the job's object, its members as written, after the ones only the agent may say */
		const char *open = text.data + strspn(text.data, " \t\r\n");

		sb_printf(body, "{\"job_id\":%" PRId64 ",\"attempt\":%d,\"id\":\"%s\",%s", job_id,
				  attempt, id, open + 1);
		verdict = REQ_OK;
	}
	json_decref(v);
	sb_free(&text);
	close(fd);					/* read-only: nothing to lose */
	return verdict;
}

/*
 * Writes answer <id>.ans into the control dir dirfd: status with message
 * (NULL: none) or, for "delivered", payload (jsonb text, one line); through a
 * temp file renamed into place, readable by the job user.  Whatever the job
 * left at either name is replaced, never followed.
 */
int
control_write_answer(int dirfd, const char *id, const char *status, const char *message,
					 const char *payload, char *err, size_t errlen)
{
	char		tmp[CONTROL_ID_MAX + 16], name[CONTROL_ID_MAX + 8];
	StrBuf		sb;
	const char *what = NULL;
	int			fd = -1;

	snprintf(tmp, sizeof(tmp), ".%s.ans.tmp", id);
	snprintf(name, sizeof(name), "%s.ans", id);
	sb_init(&sb);
	if (strcmp(status, "delivered") == 0)
		sb_printf(&sb, CONTROL_DELIVERED_HEAD "%s}\n", payload != NULL ? payload : "null");
	else
	{
		sb_puts(&sb, "{\"status\":");
		jsonio_put_str(&sb, status);
		if (message != NULL)
		{
			sb_puts(&sb, ",\"message\":");
			jsonio_put_str(&sb, message);
		}
		sb_puts(&sb, "}\n");
	}
	for (int tries = 0; fd < 0 && tries < 2; tries++)
		if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0 &&
			(errno != EEXIST || unlinkat(dirfd, tmp, 0) < 0))
			break;
	if (fd < 0)
		what = "create";
	else
	{
		/* no fsync: the server holds the answer, and a crash ends the job that waits for it */
		const char *data = sb.data;
		size_t		left = sb.len;

		if (fchmod(fd, 0644) < 0)
			what = "chmod";
		while (what == NULL && left > 0)
		{
			ssize_t		n = write(fd, data, left);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				what = "write";
			else
			{
				data += n;
				left -= (size_t) n;
			}
		}
		if (close(fd) < 0 && what == NULL)
			what = "close";
		if (what == NULL && renameat(dirfd, tmp, dirfd, name) < 0)
			what = "rename";
		if (what != NULL)
			unlinkat(dirfd, tmp, 0);
	}
	sb_free(&sb);
	if (what == NULL)
		return 0;
	agent_seterr(err, errlen, "could not %s answer file \"%s\": %s", what, name, strerror(errno));
	return -1;
}

/* Answers request id of c "refused" because of why, and removes its file. */
static void
refuse(Control *c, int dirfd, const char *id, const char *why)
{
	char		err[AGENT_ERRLEN], file[CONTROL_ID_MAX + 8];

	agent_log(c->refusals++ == 0 ? LOG_WARNING_ : LOG_DEBUG_,
			  "job %" PRId64 " attempt %d: refused request \"%s\": %s", c->job_id, c->attempt, id, why);
	if (control_write_answer(dirfd, id, "refused", why, NULL, err, sizeof(err)) < 0)
		log_debug("job %" PRId64 ": %s", c->job_id, err);
	snprintf(file, sizeof(file), "%s.req", id);
	unlinkat(dirfd, file, 0);	/* gone already is fine */
}

/*
 * Takes up file name of c's dir (dirfd) when it is a new request; with created
 * (an IN_CREATE event) only when it is no regular file (a symlink, a FIFO: no
 * other event follows), a regular one being read once written and closed.
 */
static void
handle_file(Control *c, int dirfd, const char *name, int created)
{
	char		id[CONTROL_ID_MAX + 1], err[AGENT_ERRLEN], ans[CONTROL_ID_MAX + 8];
	struct stat st;
	Request    *r;
	ReqVerdict	v;
	size_t		n = strlen(name);

	if (n <= 4 || n - 4 > CONTROL_ID_MAX || strcmp(name + n - 4, ".req") != 0)
		return;
	snprintf(id, sizeof(id), "%.*s", (int) (n - 4), name);
	if (!control_id_ok(id) || find_request(c, id) != NULL)
		return;
	if (created && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		return;
	snprintf(ans, sizeof(ans), "%s.ans", id);
	if (fstatat(dirfd, ans, &st, AT_SYMLINK_NOFOLLOW) == 0)
	{
		unlinkat(dirfd, name, 0);	/* answered before a restart: the waiter reads the answer */
		return;
	}
	if (c->nreq >= CONTROL_MAX_PENDING)
	{
		snprintf(err, sizeof(err), "the job has %d requests pending already, the most allowed",
				 CONTROL_MAX_PENDING);
		refuse(c, dirfd, id, err);
		return;
	}
	r = xmalloc(sizeof(Request));
	memset(r, 0, sizeof(Request));
	sb_init(&r->body);
	v = control_read_request(dirfd, name, request_owner(), c->job_id, c->attempt, &r->body, r->id,
							 err, sizeof(err));
	if (v != REQ_OK)
	{
		if (v == REQ_REFUSED)
			refuse(c, dirfd, r->id, err);
		sb_free(&r->body);
		free(r);
		return;
	}
	log_debug("job %" PRId64 " attempt %d: request \"%s\"", c->job_id, c->attempt, r->id);
	r->ask = 1;
	r->next = c->reqs;
	c->reqs = r;
	c->nreq++;
}

/* Reads every request file of c's dir. */
static void
scan(Control *c)
{
	int			dirfd = open_dir(c);
	DIR		   *d;
	struct dirent *e;
	StrList		names;

	if (dirfd < 0 || (d = fdopendir(dup(dirfd))) == NULL)
	{
		if (dirfd >= 0)
			close(dirfd);
		log_debug("job %" PRId64 ": could not read \"%s\": %s", c->job_id, c->dir, strerror(errno));
		return;
	}
	strlist_init(&names);
	while ((e = readdir(d)) != NULL)
		strlist_add(&names, e->d_name);
	closedir(d);				/* read-only: nothing to lose */
	for (int i = 0; i < names.n; i++)
		handle_file(c, dirfd, names.items[i], 0);
	strlist_free(&names);
	close(dirfd);
}

/* Reads pending inotify events: takes up the request files they name. */
void
control_inotify_read(void)
{
	char		buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t		n;
	int			overflow = 0;

	while ((n = read(ino_fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;)
		{
			const struct inotify_event *ev = (const struct inotify_event *) p;

			p += sizeof(struct inotify_event) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				overflow = 1;
			else if (ev->len > 0)
				for (Control *c = controls; c != NULL; c = c->next)
					if (c->wd == ev->wd)
					{
						int			dirfd = open_dir(c);

						if (dirfd >= 0)
						{
							handle_file(c, dirfd, ev->name, (ev->mask & IN_CREATE) != 0);
							close(dirfd);
						}
						break;
					}
		}
	if (overflow)
		for (Control *c = controls; c != NULL; c = c->next)
			scan(c);
}

/*
 * Marks every waiting request to be asked again, forgetting those whose file
 * is gone (the waiter was stopped); dirs without a watch are read again.
 */
void
control_reask(void)
{
	char		file[CONTROL_ID_MAX + 8];

	for (Control *c = controls; c != NULL; c = c->next)
	{
		int			dirfd = open_dir(c);
		Request    *next;

		if (c->wd < 0)
			scan(c);
		for (Request *r = c->reqs; r != NULL; r = next)
		{
			struct stat st;

			next = r->next;
			snprintf(file, sizeof(file), "%s.req", r->id);
			if (dirfd >= 0 && fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			{
				log_debug("job %" PRId64 ": request \"%s\" withdrawn", c->job_id, r->id);
				drop_request(c, r);
			}
			else
				r->ask = 1;
		}
		if (dirfd >= 0)
			close(dirfd);
	}
}

/* Returns how many requests the agent holds (asked or waiting). */
int
control_pending(void)
{
	int			n = 0;

	for (Control *c = controls; c != NULL; c = c->next)
		n += c->nreq;
	return n;
}

/*
 * Builds the next batch into json (initialised): a JSON array of the requests
 * to ask, at most max_batch and BATCH_BYTES of them; returns how many.  The
 * answers go to control_apply() in the same order.
 */
int
control_take_batch(StrBuf *json)
{
	n_in_flight = 0;
	sb_puts(json, "[");
	for (Control *c = controls; c != NULL; c = c->next)
		for (Request *r = c->reqs; r != NULL; r = r->next)
		{
			if (!r->ask)
				continue;
			if (n_in_flight >= max_batch || (n_in_flight > 0 && json->len + r->body.len > BATCH_BYTES))
				goto full;
			sb_puts(json, n_in_flight > 0 ? "," : "");
			sb_append(json, r->body.data, r->body.len);
			in_flight[n_in_flight].ctl = c;
			in_flight[n_in_flight].req = r;
			n_in_flight++;
		}
full:
	sb_puts(json, "]");
	return n_in_flight;
}

/* Writes r's answer (not "waiting") into its control dir, removes its file and forgets it. */
static void
finish(Control *c, Request *r, const char *status, const char *message, const char *payload)
{
	char		err[AGENT_ERRLEN], file[CONTROL_ID_MAX + 8];
	int			dirfd = open_dir(c);

	log_debug("job %" PRId64 " attempt %d: request \"%s\": %s", c->job_id, c->attempt, r->id, status);
	if (dirfd < 0)
		log_warning("job %" PRId64 ": could not open \"%s\": %s", c->job_id, c->dir, strerror(errno));
	else if (control_write_answer(dirfd, r->id, status, message, payload, err, sizeof(err)) < 0)
		log_warning("job %" PRId64 ": %s", c->job_id, err);
	else
	{
		snprintf(file, sizeof(file), "%s.req", r->id);
		unlinkat(dirfd, file, 0);	/* gone already is fine */
	}
	if (dirfd >= 0)
		close(dirfd);
	drop_request(c, r);
}

/* conn_signals callback: applies answer i to the request it answers. */
static void
on_answer(const SignalAnswer *a, int i, void *arg)
{
	Control    *c;
	Request    *r;

	(void) arg;
	if (i >= n_in_flight || (r = in_flight[i].req) == NULL)
		return;
	c = in_flight[i].ctl;
	if (a->id == NULL || strcmp(a->id, r->id) != 0 || a->status == NULL)
		return;					/* left in flight: control_pump() waits before asking again */
	in_flight[i].req = NULL;
	if (strcmp(a->status, "waiting") == 0)
		r->ask = 0;
	else if (strcmp(a->status, "delivered") == 0 || strcmp(a->status, "sent") == 0 ||
			 strcmp(a->status, "stale") == 0 || strcmp(a->status, "refused") == 0)
		finish(c, r, a->status, a->message, a->payload);
	else
	{
		log_warning("agent_signals answered request \"%s\" with status \"%s\"", r->id, a->status);
		finish(c, r, "refused", "the server's answer was not understood", NULL);
	}
}

/* Applies the n answers of the batch last taken (control_take_batch), in order. */
void
control_apply(const SignalAnswer *answers, int n)
{
	for (int i = 0; i < n; i++)
		on_answer(&answers[i], i, NULL);
	n_in_flight = 0;
}

/*
 * Relays the requests to ask in one dispatch.agent_signals call and applies the
 * answers; requests the call did not answer are asked in the next round, after
 * RETRY_MS when it failed.
 */
void
control_pump(Conn *c, const char *node)
{
	char		err[AGENT_ERRLEN];
	int64_t		now = proc_now_ms();
	StrBuf		json;
	int			n;
	CallResult	cr;

	if (now < retry_at || !conn_ok(c))
		return;
	sb_init(&json);
	if ((n = control_take_batch(&json)) > 0)
	{
		log_debug("agent_signals: %d request(s)", n);
		cr = conn_signals(c, node, json.data, on_answer, NULL, err, sizeof(err));
		if (cr == CALL_REJECTED && n > 1)
		{
			max_batch = n / 2;
			log_warning("agent_signals refused a batch of %d requests: %s; trying %d at a time",
						n, err, max_batch);
		}
		else if (cr == CALL_REJECTED && in_flight[0].req != NULL)
		{
			log_warning("agent_signals refused request \"%s\": %s", in_flight[0].req->id, err);
			finish(in_flight[0].ctl, in_flight[0].req, "refused", err, NULL);
		}
		else if (cr != CALL_OK)
		{
			log_warning("agent_signals failed: %s", err);
			retry_at = now + RETRY_MS;
		}
		else
		{
			for (int i = 0; i < n; i++)
				if (in_flight[i].req != NULL)	/* not answered, or not in order */
				{
					log_warning("agent_signals did not answer request \"%s\"; asking again in %d ms",
								in_flight[i].req->id, RETRY_MS);
					retry_at = now + RETRY_MS;
					break;
				}
			if (max_batch < BATCH_REQUESTS)
				max_batch = max_batch * 2 < BATCH_REQUESTS ? max_batch * 2 : BATCH_REQUESTS;
		}
		n_in_flight = 0;
	}
	sb_free(&json);
}

/* Returns 1 and the earliest time in *deadline when some request is to be asked. */
int
control_want_pump(int64_t *deadline)
{
	for (Control *c = controls; c != NULL; c = c->next)
		for (Request *r = c->reqs; r != NULL; r = r->next)
			if (r->ask)
			{
				*deadline = retry_at;
				return 1;
			}
	return 0;
}
