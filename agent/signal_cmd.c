/*
 * signal_cmd.c -- `dispatch-agent wait NAME` and `dispatch-agent signal NAME [JSON]`.
 *
 * A job runs these with the agent's own binary ("$DISPATCH_AGENT"), as the
 * job user and under no_new_privs.  They open no database connection and
 * need no credentials: they speak to the job's agent through the job
 * attempt's control directory, $DISPATCH_CONTROL (control.c), by writing a
 * request file <id>.req (a temp file renamed into place) and waiting for the
 * agent's <id>.ans, with inotify on the directory and a poll every second as
 * a fallback.  The id is the process id and 64 random bits: unique within
 * the attempt, and the same for as long as this process waits, so the agent
 * may ask the server about it as often as it likes (after its own restart,
 * say) and the server gives the same answer.  `wait` prints the payload it
 * got as one line of JSON, as the server wrote it (jsonb text), and exits 0;
 * `signal` exits 0 once the server says "sent".  Bad arguments exit 2;
 * refused, stale and every other failure exit 1, with a message on stderr.
 * A waiter stopped by SIGTERM, SIGINT or SIGHUP (`timeout 60 dispatch-agent
 * wait go`) removes its request first, so no later signal goes to it.
 *
 * The binary carries file capabilities for the agent (setcap), which exec
 * under no_new_privs does not grant; whoever runs it outside a job, the
 * subcommands drop every capability before anything else.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_FAILED 1
#define POLL_FALLBACK_MS 1000

static char req_path[PATH_MAX];	/* the request to withdraw when stopped by a signal */

static void on_stop(int signo);
static int	new_id(char *id, size_t len, char *err, size_t errlen);
static int	write_request(const char *dir, const char *id, const StrBuf *req, char *err, size_t errlen);
static int	read_answer(const char *path, StrBuf *out, char *err, size_t errlen);
static int	wait_answer(const char *dir, const char *id, StrBuf *ans, char *err, size_t errlen);

/* Returns 1 when arg names a subcommand of this file ("wait", "signal"). */
int
signal_cmd_is(const char *arg)
{
	return arg != NULL && (strcmp(arg, "wait") == 0 || strcmp(arg, "signal") == 0);
}

/*
 * Checks the arguments of argv[0] ("wait" or "signal") and builds the request
 * file's text into req (initialised): {"wait":NAME} or {"signal":NAME,
 * "payload":JSON}, the payload as given.  Returns 0, or -1 with err.
 */
int
signal_cmd_request(int argc, char **argv, StrBuf *req, char *err, size_t errlen)
{
	int			wait = strcmp(argv[0], "wait") == 0;
	const char *payload = argc > 2 ? argv[2] : "null";
	json_t	   *v;
	char		jerr[AGENT_ERRLEN];

	if (argc < 2 || argc > (wait ? 2 : 3))
	{
		agent_seterr(err, errlen, wait ? "usage: dispatch-agent wait NAME" :
					 "usage: dispatch-agent signal NAME [JSON]");
		return -1;
	}
	if (!control_name_ok(argv[1]))
	{
		agent_seterr(err, errlen, "invalid signal name \"%.200s%s\": a name is 1 to %d letters, digits, \"_\", \".\", \":\" or \"-\"",
					 argv[1], strlen(argv[1]) > 200 ? "..." : "", CONTROL_NAME_MAX);
		return -1;
	}
	if (strlen(payload) > CONTROL_PAYLOAD_MAX)
	{
		agent_seterr(err, errlen, "the payload has %zu bytes, more than %d allowed",
					 strlen(payload), CONTROL_PAYLOAD_MAX);
		return -1;
	}
	if ((v = jsonio_load(payload, JSON_DECODE_ANY, jerr, sizeof(jerr))) == NULL)
	{
		agent_seterr(err, errlen, "the payload is not valid JSON: %s", jerr);
		return -1;
	}
	json_decref(v);
	sb_printf(req, "{\"%s\":\"%s\"", wait ? "wait" : "signal", argv[1]);
	if (!wait)
		sb_printf(req, ",\"payload\":%s", payload);
	sb_puts(req, "}\n");
	return 0;
}

/*
 * Reads the agent's answer text (len bytes): returns 0 when it is "delivered"
 * (out gets the payload and a newline) or "sent" (out stays empty); else 1
 * with err saying why.
 */
int
signal_cmd_answer(const char *text, size_t len, StrBuf *out, char *err, size_t errlen)
{
	size_t		head = strlen(CONTROL_DELIVERED_HEAD);
	json_t	   *v;
	const char *status, *message;
	char		jerr[AGENT_ERRLEN];
	int			rc = 1;

	if (len > head && strncmp(text, CONTROL_DELIVERED_HEAD, head) == 0)
	{
		/* the payload as the server wrote it: not parsed, so no number changes on the way */
		size_t		end = len;

		while (end > head && text[end - 1] == '\n')
			end--;
		if (end > head + 1 && text[end - 1] == '}' && memchr(text + head, '\n', end - 1 - head) == NULL)
		{
			sb_append(out, text + head, end - 1 - head);
			sb_puts(out, "\n");
			return 0;
		}
		agent_seterr(err, errlen, "the agent's answer is not valid");
		return 1;
	}
	if ((v = jsonio_load(text, 0, jerr, sizeof(jerr))) == NULL ||
		(status = json_string_value(json_object_get(v, "status"))) == NULL)
		agent_seterr(err, errlen, "the agent's answer is not valid");
	else if (strcmp(status, "sent") == 0)
		rc = 0;
	else
	{
		message = json_string_value(json_object_get(v, "message"));
		agent_seterr(err, errlen, "%s%s%s", strcmp(status, "stale") == 0 ?
					 "the job's attempt is no longer active" :
					 strcmp(status, "refused") == 0 ? "refused" : "unexpected answer",
					 message != NULL ? ": " : "", message != NULL ? message : "");
	}
	json_decref(v);
	return rc;
}

/* Signal handler: withdraws the request, then dies of the signal. */
static void
on_stop(int signo)
{
	if (req_path[0] != '\0')
		unlink(req_path);
	signal(signo, SIG_DFL);
	raise(signo);
}

/* Writes a new request id (pid and 64 random bits) into id. */
static int
new_id(char *id, size_t len, char *err, size_t errlen)
{
	char		token[17];

	if (random_hex(token, "a request", err, errlen) < 0)
		return -1;
	snprintf(id, len, "%d-%s", (int) getpid(), token);
	return 0;
}

/* Writes dir/<id>.req with req through a temp file renamed into place, readable by the agent. */
static int
write_request(const char *dir, const char *id, const StrBuf *req, char *err, size_t errlen)
{
	char		tmp[PATH_MAX];
	const char *what = NULL;
	int			fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.req.tmp", dir, id);
	snprintf(req_path, sizeof(req_path), "%s/%s.req", dir, id);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0)
	{
		agent_seterr(err, errlen, "could not create file \"%s\": %s", tmp, strerror(errno));
		req_path[0] = '\0';
		return -1;
	}
	if (fchmod(fd, 0644) < 0)
		what = "chmod";
	else if (write(fd, req->data, req->len) != (ssize_t) req->len)
		what = "write";
	if (close(fd) < 0 && what == NULL)
		what = "close";
	if (what == NULL && rename(tmp, req_path) < 0)
		what = "rename";
	if (what == NULL)
		return 0;
	agent_seterr(err, errlen, "could not %s file \"%s\": %s", what, tmp, strerror(errno));
	unlink(tmp);
	req_path[0] = '\0';
	return -1;
}

/* Reads answer file path into out (initialised): 1 when read, 0 when not there yet, -1 with err. */
static int
read_answer(const char *path, StrBuf *out, char *err, size_t errlen)
{
	char		buf[65536];
	struct stat st;
	ssize_t		n;
	int			fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONTROL_ANSWER_MAX)
	{
		agent_seterr(err, errlen, "could not read the agent's answer \"%s\": %s", path,
					 fd < 0 ? strerror(errno) : "not a regular file of at most 2 MiB");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (out->len <= CONTROL_ANSWER_MAX && (n = read(fd, buf, sizeof(buf))) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			agent_seterr(err, errlen, "could not read the agent's answer \"%s\": %s", path,
						 strerror(errno));
			close(fd);
			return -1;
		}
		sb_append(out, buf, (size_t) n);
	}
	close(fd);					/* read-only: nothing to lose */
	return 1;
}

/* Waits until dir/<id>.ans exists and reads it into ans (initialised); -1 with err. */
static int
wait_answer(const char *dir, const char *id, StrBuf *ans, char *err, size_t errlen)
{
	char		path[PATH_MAX], buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int			ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int			rc;

	snprintf(path, sizeof(path), "%s/%s.ans", dir, id);
	if (ino >= 0 && inotify_add_watch(ino, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0)
	{
		close(ino);
		ino = -1;				/* polling alone then */
	}
	while ((rc = read_answer(path, ans, err, errlen)) == 0)
	{
		struct pollfd pfd = {.fd = ino, .events = POLLIN};
		struct stat st;

		if (stat(dir, &st) < 0)
		{
			agent_seterr(err, errlen, "the control directory \"%s\" is gone: %s", dir, strerror(errno));
			rc = -1;
			break;
		}
		if (poll(&pfd, 1, POLL_FALLBACK_MS) > 0)
			while (read(ino, buf, sizeof(buf)) > 0)
				;
	}
	if (ino >= 0)
		close(ino);
	if (rc > 0)
		unlink(path);
	return rc > 0 ? 0 : -1;
}

/* Runs subcommand argv[0] ("wait" or "signal"); returns the exit status. */
int
signal_cmd_main(int argc, char **argv)
{
	char		err[AGENT_ERRLEN], id[CONTROL_ID_MAX + 1];
	const char *dir = getenv("DISPATCH_CONTROL");
	StrBuf		req, ans, out;
	struct sigaction sa;
	int			rc = EXIT_FAILED;

	if (proc_drop_capabilities(err, sizeof(err)) < 0)
	{
		fprintf(stderr, "dispatch-agent %s: %s\n", argv[0], err);
		return EXIT_FAILED;
	}
	sb_init(&req);
	sb_init(&ans);
	sb_init(&out);
	if (signal_cmd_request(argc, argv, &req, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "dispatch-agent %s: %s\n", argv[0], err);
		sb_free(&req);
		return EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (dir == NULL || dir[0] != '/')
		agent_seterr(err, sizeof(err), "DISPATCH_CONTROL is not set: run \"dispatch-agent %s\" inside a pg_dispatch job",
					 argv[0]);
	else if (new_id(id, sizeof(id), err, sizeof(err)) == 0 &&
			 write_request(dir, id, &req, err, sizeof(err)) == 0 &&
			 wait_answer(dir, id, &ans, err, sizeof(err)) == 0)
	{
		unlink(req_path);		/* the agent removes it too; gone already is fine */
		req_path[0] = '\0';
		if ((rc = signal_cmd_answer(ans.data, ans.len, &out, err, sizeof(err))) == 0 &&
			(fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0))
		{
			agent_seterr(err, sizeof(err), "could not write the payload: %s", strerror(errno));
			rc = EXIT_FAILED;
		}
	}
	else if (req_path[0] != '\0')
		unlink(req_path);
	if (rc != 0)
		fprintf(stderr, "dispatch-agent %s: %s\n", argv[0], err);
	sb_free(&req);
	sb_free(&ans);
	sb_free(&out);
	return rc;
}
