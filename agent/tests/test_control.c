/*
 * test_control.c -- continuations without a database: the `wait` and `signal`
 * subcommands' arguments and answers, the agent's reading of hostile request
 * files, its answer files, and a real `wait` process served through a control
 * dir with the batch and its answers played by the test.
 */
#include "unit.h"
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes text to dir/name (mode 0644). */
static void
put(const char *dir, const char *name, const char *text)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(text, f);
	fclose(f);
}

/* Runs control_read_request on dir/name as the owner given; fills body and err. */
static ReqVerdict
read_req(const char *dir, const char *name, uid_t owner, StrBuf *body, char *err)
{
	char		id[CONTROL_ID_MAX + 1];
	int			dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	ReqVerdict	v;

	sb_free(body);
	sb_init(body);
	err[0] = '\0';
	v = control_read_request(dirfd, name, owner, 7, 2, body, id, err, AGENT_ERRLEN);
	close(dirfd);
	return v;
}

/* Expects request file name, holding text (NULL: made by the caller), to be refused with want in the message. */
static void
expect_refused(const char *dir, const char *name, const char *text, const char *want)
{
	char		err[AGENT_ERRLEN];
	StrBuf		body;

	sb_init(&body);
	if (text != NULL)
		put(dir, name, text);
	CHECK(read_req(dir, name, geteuid(), &body, err) == REQ_REFUSED);
	CHECK(strstr(err, want) != NULL);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", name, err, want);
	sb_free(&body);
}

/* The subcommands' own checks of their arguments, and their reading of answers. */
static void
test_subcommand_args(void)
{
	char		err[AGENT_ERRLEN], *big = xmalloc(CONTROL_PAYLOAD_MAX + 8);
	StrBuf		req, out;
	char	   *w1[] = {"wait", "go"}, *w0[] = {"wait"}, *w3[] = {"wait", "go", "1"};
	char	   *s1[] = {"signal", "go"}, *s2[] = {"signal", "a.b:c-d_9", "{\"x\": 0.1}"};
	char	   *bad[] = {"signal", "a b"}, *badj[] = {"signal", "go", "{x"};
	char	   *big1[] = {"signal", "go", big}, *two[] = {"signal", "go", "1 2"};
	char	   *s4[] = {"signal", "go", "1", "2"};
	char		longname[CONTROL_NAME_MAX + 2];

	CHECK(control_id_ok("123-abc.DEF_9"));
	CHECK(!control_id_ok(""));
	CHECK(!control_id_ok("a/b"));
	CHECK(!control_id_ok("a:b"));
	CHECK(control_name_ok("a:b"));
	CHECK(!control_name_ok("a b"));
	CHECK(!control_name_ok("é"));
	memset(longname, 'n', sizeof(longname) - 1);
	longname[CONTROL_NAME_MAX] = '\0';
	CHECK(control_name_ok(longname));
	longname[CONTROL_NAME_MAX] = 'n';
	longname[CONTROL_NAME_MAX + 1] = '\0';
	CHECK(!control_name_ok(longname));

	sb_init(&req);
	CHECK(signal_cmd_request(2, w1, &req, err, sizeof(err)) == 0);
	CHECK_STR(req.data, "{\"wait\":\"go\"}\n");
	sb_free(&req);
	sb_init(&req);
	CHECK(signal_cmd_request(2, s1, &req, err, sizeof(err)) == 0);
	CHECK_STR(req.data, "{\"signal\":\"go\",\"payload\":null}\n");
	sb_free(&req);
	sb_init(&req);
	CHECK(signal_cmd_request(3, s2, &req, err, sizeof(err)) == 0);
	CHECK_STR(req.data, "{\"signal\":\"a.b:c-d_9\",\"payload\":{\"x\": 0.1}}\n");	/* as written */
	sb_free(&req);
	sb_init(&req);
	CHECK(signal_cmd_request(1, w0, &req, err, sizeof(err)) < 0 && strstr(err, "usage") != NULL);
	CHECK(signal_cmd_request(3, w3, &req, err, sizeof(err)) < 0 && strstr(err, "usage") != NULL);
	CHECK(signal_cmd_request(4, s4, &req, err, sizeof(err)) < 0 && strstr(err, "usage") != NULL);
	CHECK(signal_cmd_request(2, bad, &req, err, sizeof(err)) < 0 && strstr(err, "invalid signal name") != NULL);
	CHECK(signal_cmd_request(3, badj, &req, err, sizeof(err)) < 0 && strstr(err, "not valid JSON") != NULL);
	CHECK(signal_cmd_request(3, two, &req, err, sizeof(err)) < 0 && strstr(err, "not valid JSON") != NULL);
	memset(big, ' ', CONTROL_PAYLOAD_MAX + 1);
	big[CONTROL_PAYLOAD_MAX + 1] = '\0';
	CHECK(signal_cmd_request(3, big1, &req, err, sizeof(err)) < 0 && strstr(err, "more than") != NULL);
	CHECK(req.len == 0);
	sb_free(&req);
	free(big);

#define ANSWER(text) signal_cmd_answer(text, strlen(text), &out, err, sizeof(err))
	sb_init(&out);
	CHECK(ANSWER("{\"status\":\"delivered\",\"payload\":{\"n\": 123456789012345678901234567890}}\n") == 0);
	CHECK_STR(out.data, "{\"n\": 123456789012345678901234567890}\n");	/* never re-encoded */
	sb_free(&out);
	sb_init(&out);
	CHECK(ANSWER("{\"status\":\"delivered\",\"payload\":null}") == 0);
	CHECK_STR(out.data, "null\n");
	sb_free(&out);
	sb_init(&out);
	CHECK(ANSWER("{\"status\":\"sent\"}\n") == 0);
	CHECK(out.len == 0);
	CHECK(ANSWER("{\"status\":\"refused\",\"message\":\"joblist 3 has finished (failed)\"}") == 1);
	CHECK_STR(err, "refused: joblist 3 has finished (failed)");
	CHECK(ANSWER("{\"status\":\"stale\",\"message\":\"The job is at attempt 2.\"}") == 1);
	CHECK(strstr(err, "no longer active: The job is at attempt 2.") != NULL);
	CHECK(ANSWER("{\"status\":\"delivered\",\"payload\":") == 1);
	CHECK(ANSWER("{\"status\":\"delivered\",\"payload\":1\n2}") == 1);
	CHECK(ANSWER("garbage") == 1 && strstr(err, "not valid") != NULL);
	CHECK(ANSWER("{\"status\":\"waiting\"}") == 1 && strstr(err, "unexpected") != NULL);
	CHECK(out.len == 0);
	sb_free(&out);
#undef ANSWER
}

/* Request files as a hostile job may leave them. */
static void
test_hostile_requests(void)
{
	const char *dir = unit_tmpdir("control_req");
	char		err[AGENT_ERRLEN], path[4096], *big;
	StrBuf		body;
	FILE	   *f;

	sb_init(&body);
	put(dir, "a1.req", "{\"wait\": \"go\"}\n");
	CHECK(read_req(dir, "a1.req", geteuid(), &body, err) == REQ_OK);
	CHECK_STR(body.data, "{\"job_id\":7,\"attempt\":2,\"id\":\"a1\",\"wait\": \"go\"}\n");
	put(dir, "a2.req", " \n{\"signal\":\"go\",\"payload\":{\"y\":[2, 0.1]}}");
	CHECK(read_req(dir, "a2.req", geteuid(), &body, err) == REQ_OK);
	CHECK_STR(body.data, "{\"job_id\":7,\"attempt\":2,\"id\":\"a2\",\"signal\":\"go\",\"payload\":{\"y\":[2, 0.1]}}");
	put(dir, "a3.req", "{\"signal\":\"go\"}");
	CHECK(read_req(dir, "a3.req", geteuid(), &body, err) == REQ_OK);

	/* not requests, or no answer can be named for them: left alone */
	put(dir, "x.ans", "{}");
	CHECK(read_req(dir, "x.ans", geteuid(), &body, err) == REQ_IGNORE);
	put(dir, ".req", "{}");
	CHECK(read_req(dir, ".req", geteuid(), &body, err) == REQ_IGNORE);
	put(dir, "bad id.req", "{\"wait\":\"go\"}");
	CHECK(read_req(dir, "bad id.req", geteuid(), &body, err) == REQ_IGNORE);
	put(dir, "a:b.req", "{\"wait\":\"go\"}");
	CHECK(read_req(dir, "a:b.req", geteuid(), &body, err) == REQ_IGNORE);
	put(dir, "0123456789012345678901234567890123456789012345678901234567890123456789.req", "{}");
	CHECK(read_req(dir, "0123456789012345678901234567890123456789012345678901234567890123456789.req",
				   geteuid(), &body, err) == REQ_IGNORE);
	CHECK(read_req(dir, "missing.req", geteuid(), &body, err) == REQ_IGNORE);
	put(dir, ".a1.req.tmp", "{\"wait\":\"go\"}");
	CHECK(read_req(dir, ".a1.req.tmp", geteuid(), &body, err) == REQ_IGNORE);

	/* files that are not what they say */
	put(dir, "secret", "{\"wait\":\"go\"}");
	snprintf(path, sizeof(path), "%s/link.req", dir);
	CHECK(symlink("secret", path) == 0);
	expect_refused(dir, "link.req", NULL, "symbolic link");
	snprintf(path, sizeof(path), "%s/fifo.req", dir);
	CHECK(mkfifo(path, 0644) == 0);
	expect_refused(dir, "fifo.req", NULL, "not a regular file");	/* and returns at once */
	snprintf(path, sizeof(path), "%s/dir.req", dir);
	CHECK(mkdir(path, 0755) == 0);
	expect_refused(dir, "dir.req", NULL, "not a regular file");
	snprintf(path, sizeof(path), "%s/hard.req", dir);
	{
		char		src[4096];

		snprintf(src, sizeof(src), "%s/secret", dir);
		CHECK(link(src, path) == 0);
	}
	expect_refused(dir, "hard.req", NULL, "more than one link");
	put(dir, "other.req", "{\"wait\":\"go\"}");
	CHECK(read_req(dir, "other.req", geteuid() + 1, &body, err) == REQ_REFUSED);
	CHECK(strstr(err, "does not belong to the job user") != NULL);
	snprintf(path, sizeof(path), "%s/big.req", dir);
	big = xmalloc(CONTROL_REQUEST_MAX + 2);
	memset(big, ' ', CONTROL_REQUEST_MAX + 1);
	big[CONTROL_REQUEST_MAX + 1] = '\0';
	big[0] = '{';
	f = fopen(path, "w");
	fputs(big, f);
	fclose(f);
	free(big);
	expect_refused(dir, "big.req", NULL, "more than 1049600 allowed");

	/* what is in them */
	expect_refused(dir, "b1.req", "", "not valid");
	expect_refused(dir, "b2.req", "{\"wait\":", "not valid");
	expect_refused(dir, "b3.req", "[\"wait\"]", "must be a JSON object");
	expect_refused(dir, "b4.req", "{\"wait\":\"go\",\"job_id\":1}", "no key \"job_id\"");
	expect_refused(dir, "b5.req", "{\"wait\":\"go\",\"signal\":\"go\"}", "and not both");
	expect_refused(dir, "b6.req", "{\"payload\":1}", "and not both");
	expect_refused(dir, "b7.req", "{\"wait\":\"go\",\"payload\":1}", "a wait request has no payload");
	expect_refused(dir, "b8.req", "{\"wait\":\"a b\"}", "invalid signal name");
	expect_refused(dir, "b9.req", "{\"wait\":7}", "invalid signal name");
	expect_refused(dir, "b10.req", "{\"wait\":\"go\",\"wait\":\"go\"}", "duplicate");
	expect_refused(dir, "b11.req", "{\"signal\":\"go\",\"payload\":123456789012345678901234567890}", "not valid");
	expect_refused(dir, "b12.req", "{\"signal\":\"go\",\"payload\":\"\\u0000\"}", "not valid");
	snprintf(path, sizeof(path), "%s/b13.req", dir);
	f = fopen(path, "w");
	fwrite("{\"wait\":\"go\"}\0x", 1, 15, f);
	fclose(f);
	expect_refused(dir, "b13.req", NULL, "NUL byte");
	sb_free(&body);
}

/* Answer files: their text, their mode, and names a job filled with traps first. */
static void
test_answers(void)
{
	const char *dir = unit_tmpdir("control_ans");
	char		err[AGENT_ERRLEN], path[4096];
	int			dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct stat st;

	CHECK(control_write_answer(dirfd, "i1", "delivered", NULL, "{\"x\": 1}", err, sizeof(err)) == 0);
	CHECK_STR(unit_read(dir, "i1.ans"), "{\"status\":\"delivered\",\"payload\":{\"x\": 1}}\n");
	snprintf(path, sizeof(path), "%s/i1.ans", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644);
	CHECK(control_write_answer(dirfd, "i2", "delivered", NULL, NULL, err, sizeof(err)) == 0);
	CHECK_STR(unit_read(dir, "i2.ans"), "{\"status\":\"delivered\",\"payload\":null}\n");
	CHECK(control_write_answer(dirfd, "i3", "sent", NULL, NULL, err, sizeof(err)) == 0);
	CHECK_STR(unit_read(dir, "i3.ans"), "{\"status\":\"sent\"}\n");
	CHECK(control_write_answer(dirfd, "i4", "refused", "say \"no\"\n", NULL, err, sizeof(err)) == 0);
	CHECK_STR(unit_read(dir, "i4.ans"), "{\"status\":\"refused\",\"message\":\"say \\\"no\\\"\\n\"}\n");

	/* symlinks at the temp name and at the answer's name are replaced, never followed */
	put(dir, "victim", "keep");
	CHECK(symlinkat("victim", dirfd, ".i5.ans.tmp") == 0);
	CHECK(symlinkat("victim", dirfd, "i5.ans") == 0);
	CHECK(control_write_answer(dirfd, "i5", "sent", NULL, NULL, err, sizeof(err)) == 0);
	CHECK_STR(unit_read(dir, "victim"), "keep");
	CHECK(fstatat(dirfd, "i5.ans", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode));
	CHECK(fstatat(dirfd, ".i5.ans.tmp", &st, AT_SYMLINK_NOFOLLOW) < 0);
	/* a directory where the answer goes: an error, nothing left behind */
	CHECK(mkdirat(dirfd, "i6.ans", 0755) == 0);
	CHECK(control_write_answer(dirfd, "i6", "sent", NULL, NULL, err, sizeof(err)) < 0);
	CHECK(strstr(err, "could not rename answer file \"i6.ans\"") != NULL);
	CHECK(fstatat(dirfd, ".i6.ans.tmp", &st, AT_SYMLINK_NOFOLLOW) < 0);
	close(dirfd);
}

/* Runs control_inotify_read until control_pending() is want or 5 s passed; returns control_pending(). */
static int
await_pending(int want)
{
	for (int i = 0; i < 500 && control_pending() != want; i++)
	{
		struct pollfd p = {.fd = control_inotify_fd(), .events = POLLIN};

		poll(&p, 1, 10);
		control_inotify_read();
	}
	return control_pending();
}

/* Forks `dispatch-agent NAME...` (signal_cmd_main) with DISPATCH_CONTROL=dir and stdout to out. */
static pid_t
spawn(const char *dir, const char *out, char **argv, int argc)
{
	pid_t		pid = fork();

	if (pid == 0)
	{
		int			fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		setenv("DISPATCH_CONTROL", dir, 1);
		_exit(signal_cmd_main(argc, argv));
	}
	return pid;
}

/* Returns the exit status of pid, or -1 when it does not end within 5 s (then it is killed). */
static int
reap(pid_t pid)
{
	int			ws;

	for (int i = 0; i < 500; i++)
	{
		if (waitpid(pid, &ws, WNOHANG) == pid)
			return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &ws, 0);
	return -1;
}

/* Returns how many files in dir end with suffix. */
static int
count_files(const char *dir, const char *suffix)
{
	char		cmd[4200];
	FILE	   *p;
	int			n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c -- '%s$'", dir, suffix);
	if ((p = popen(cmd, "r")) != NULL)
	{
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

/* A real waiter and a real sender, the agent's side played without a database. */
static void
test_round_trip(void)
{
	const char *jobdir = unit_tmpdir("control_job");
	char		err[AGENT_ERRLEN], out[4096], ctl[4096], name[128];
	char	   *wait_go[] = {"wait", "go"}, *sig[] = {"signal", "go", "{\"y\":2}"};
	StrList		env;
	StrBuf		batch;
	pid_t		pid;
	const char *v;

	CHECK(control_init(err, sizeof(err)) == 0);
	strlist_init(&env);
	snprintf(ctl, sizeof(ctl), "%s/flow-0123456789abcdef", jobdir);
	CHECK(mkdir(ctl, 0700) == 0);
	CHECK(control_attach(7, 1, ctl, &env, err, sizeof(err)) == 0);
	CHECK(env.n == 2 && strncmp(env.items[0], "DISPATCH_CONTROL=", 17) == 0);
	CHECK(env.n == 2 && strncmp(env.items[1], "DISPATCH_AGENT=/", 16) == 0);
	CHECK(strcmp(env.items[0] + 17, ctl) == 0);
	strlist_free(&env);
	snprintf(out, sizeof(out), "%s/out", jobdir);

	/* wait: asked, waiting (not asked again until a reask), then delivered */
	pid = spawn(ctl, out, wait_go, 2);
	CHECK(await_pending(1) == 1);
	sb_init(&batch);
	CHECK(control_take_batch(&batch) == 1);
	CHECK(strncmp(batch.data, "[{\"job_id\":7,\"attempt\":1,\"id\":\"", 31) == 0);
	CHECK(strstr(batch.data, "\"wait\":\"go\"}") != NULL);
	{
		/* the id is the file's: pid and random bits */
		const char *id = batch.data + 31;
		int			len = (int) strcspn(id, "\"");
		SignalAnswer waiting = {name, "waiting", NULL, NULL};
		SignalAnswer delivered = {name, "delivered", NULL, "{\"x\": 1}"};

		snprintf(name, sizeof(name), "%.*s", len, id);
		CHECK(control_id_ok(name));
		control_apply(&waiting, 1);
		sb_free(&batch);
		sb_init(&batch);
		CHECK(control_take_batch(&batch) == 0);
		CHECK(control_want_pump(&(int64_t) {0}) == 0);
		control_reask();
		sb_free(&batch);
		sb_init(&batch);
		CHECK(control_take_batch(&batch) == 1);
		control_apply(&delivered, 1);
	}
	CHECK(reap(pid) == 0);
	CHECK_STR(unit_read(jobdir, "out"), "{\"x\": 1}\n");
	CHECK(control_pending() == 0);
	CHECK(count_files(ctl, ".req") == 0 && count_files(ctl, ".ans") == 0);
	sb_free(&batch);

	/* signal: sent; then a refusal, which the sender reports with exit status 1 */
	for (int round = 0; round < 2; round++)
	{
		SignalAnswer a = {NULL, round == 0 ? "sent" : "refused", "joblist 1 has finished (failed)", NULL};

		pid = spawn(ctl, out, sig, 3);
		CHECK(await_pending(1) == 1);
		sb_init(&batch);
		CHECK(control_take_batch(&batch) == 1);
		CHECK(strstr(batch.data, "\"signal\":\"go\",\"payload\":{\"y\":2}}\n]") != NULL);
		snprintf(name, sizeof(name), "%.*s", (int) strcspn(batch.data + 31, "\""), batch.data + 31);
		a.id = name;
		control_apply(&a, 1);
		CHECK(reap(pid) == round);
		sb_free(&batch);
	}

	/* a waiter stopped by SIGTERM withdraws its request; the next reask forgets it */
	pid = spawn(ctl, out, wait_go, 2);
	CHECK(await_pending(1) == 1);
	kill(pid, SIGTERM);
	CHECK(reap(pid) == 128 + SIGTERM);
	CHECK(count_files(ctl, ".req") == 0);
	control_reask();
	CHECK(control_pending() == 0);

	/* a symlink for a request: refused with an answer; the agent goes on */
	put(jobdir, "secret", "{\"wait\":\"go\"}");
	snprintf(name, sizeof(name), "%s/secret", jobdir);
	snprintf(out, sizeof(out), "%s/evil.req", ctl);
	CHECK(symlink(name, out) == 0);
	for (int i = 0; i < 500 && count_files(ctl, "evil.ans") != 1; i++)
	{
		usleep(10000);
		control_inotify_read();
	}
	CHECK(strstr(unit_read(ctl, "evil.ans"), "\"refused\",\"message\":\"the request file is a symbolic link\"") != NULL);
	CHECK(count_files(ctl, "evil.req") == 0);
	CHECK(control_pending() == 0);

	/* at most CONTROL_MAX_PENDING requests per job; the rest are refused */
	for (int i = 0; i < CONTROL_MAX_PENDING + 3; i++)
	{
		snprintf(name, sizeof(name), "r%03d.req", i);
		put(ctl, name, "{\"wait\":\"go\"}");
	}
	CHECK(await_pending(CONTROL_MAX_PENDING) == CONTROL_MAX_PENDING);
	for (int i = 0; i < 100 && count_files(ctl, ".ans") < 4; i++)
	{
		usleep(10000);
		control_inotify_read();
	}
	CHECK(count_files(ctl, ".ans") == 4);	/* evil's and three refusals */
	v = unit_read(ctl, "r102.ans");
	CHECK(strstr(v, "requests pending already") != NULL);

	/* an agent restart: the requests still in the dir are read again */
	control_forget(7, 1);
	CHECK(control_pending() == 0);
	control_adopt(7, 1, jobdir);
	CHECK(control_pending() == CONTROL_MAX_PENDING);	/* answered ones are not asked again */
	sb_init(&batch);
	CHECK(control_take_batch(&batch) == CONTROL_MAX_PENDING);
	CHECK(strstr(batch.data, "\"id\":\"r000\",\"wait\":\"go\"}") != NULL);
	sb_free(&batch);
	control_shutdown();
}

void
test_control(void)
{
	test_subcommand_args();
	test_hostile_requests();
	test_answers();
	test_round_trip();
}
