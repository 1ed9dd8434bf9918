/*
 * test_flow.c -- what flows between jobs: a job's result file as a hostile job
 * leaves it (missing, a link, a fifo, too large, not JSON, valid), its inputs
 * with file names that try to leave their directory, and a group's scratch dir
 * removed with links, fifos, a 0000 directory and a tree deeper than PATH_MAX
 * in it.  The tests run without a job user, so the reading and removing children
 * run as the agent's user without its capabilities (as root, too: a mode 0000
 * stops them).
 */
#include "unit.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes len bytes of data to dir/name (replacing it); returns 0 or -1. */
static int
put(const char *dir, const char *name, const char *data, size_t len)
{
	return spool_write_file(dir, name, data, len, NULL, 0);
}

/* Returns what result_put_finish() appends for jobdir (static buffer). */
static const char *
finish_of(const char *jobdir)
{
	static char out[4096];
	StrBuf		sb;

	sb_init(&sb);
	CHECK(result_put_finish(&sb, jobdir) == sb.len);
	snprintf(out, sizeof(out), "%s", sb.data);
	sb_free(&sb);
	return out;
}

/* Expects the result left in flow as dir/name to be refused with a reason containing want. */
static void
expect_unusable(const char *jobdir, const char *want)
{
	char		why[AGENT_ERRLEN] = "";
	json_t	   *v = NULL;

	CHECK(result_load(jobdir, &v, why, sizeof(why)) == -1);
	CHECK(v == NULL);
	CHECK(strstr(why, want) != NULL);
	if (strstr(why, want) == NULL)
		fprintf(stderr, "  got \"%s\", want \"%s\"\n", why, want);
}

/* Results: every way a job can leave its result file. */
static void
test_results(void)
{
	const char *jobdir = unit_tmpdir("flow-result");
	char		flow[4096], path[4096 + 16], why[AGENT_ERRLEN];
	char	   *big = xmalloc(RESULT_MAX + 2);
	json_t	   *v = NULL;

	/* a job that ended before it had a flow dir, then one that wrote nothing */
	CHECK(result_load(jobdir, &v, why, sizeof(why)) == 0 && v == NULL);
	snprintf(flow, sizeof(flow), "%s/flow-0123456789abcdef", jobdir);
	CHECK(mkdir(flow, 0700) == 0);
	CHECK(result_load(jobdir, &v, why, sizeof(why)) == 0 && v == NULL);
	CHECK_STR(finish_of(jobdir), "");
	snprintf(path, sizeof(path), "%s/result.json", flow);

	/* valid: any JSON value */
	CHECK(put(flow, "result.json", "[\"a\", \"b\", \"c\"]\n", 16) == 0);
	CHECK(result_load(jobdir, &v, why, sizeof(why)) == 1);
	CHECK(json_is_array(v) && json_array_size(v) == 3);
	json_decref(v);
	CHECK_STR(finish_of(jobdir), ",\"result\":[\"a\",\"b\",\"c\"]");
	CHECK(put(flow, "result.json", "42", 2) == 0);
	CHECK_STR(finish_of(jobdir), ",\"result\":42");
	CHECK(put(flow, "result.json", "\"\xc3\xa9t\xc3\xa9\"", 7) == 0);
	CHECK_STR(finish_of(jobdir), ",\"result\":\"\xc3\xa9t\xc3\xa9\"");

	/* exactly RESULT_MAX bytes is read whole; one more is too large */
	memset(big, 'x', RESULT_MAX + 1);
	big[0] = '"';
	big[RESULT_MAX - 1] = '"';
	CHECK(put(flow, "result.json", big, RESULT_MAX) == 0);
	CHECK(result_load(jobdir, &v, why, sizeof(why)) == 1);
	CHECK(json_is_string(v) && strlen(json_string_value(v)) == RESULT_MAX - 2);
	json_decref(v);
	CHECK(put(flow, "result.json", big, RESULT_MAX + 1) == 0);
	expect_unusable(jobdir, "the result file is larger than 1048576 bytes");
	free(big);

	/* not JSON, not UTF-8, a NUL byte, duplicate keys */
	CHECK(put(flow, "result.json", "{\"a\": ", 6) == 0);
	expect_unusable(jobdir, "the result file holds invalid JSON");
	CHECK(put(flow, "result.json", "\"\xff\"", 3) == 0);
	expect_unusable(jobdir, "invalid JSON");
	CHECK(put(flow, "result.json", "1\0", 2) == 0);
	expect_unusable(jobdir, "the result file holds a NUL byte");
	CHECK(put(flow, "result.json", "{\"a\":1,\"a\":2}", 13) == 0);
	expect_unusable(jobdir, "duplicate");
	CHECK(put(flow, "result.json", "", 0) == 0);
	expect_unusable(jobdir, "invalid JSON");
	CHECK_STR(finish_of(jobdir), ",\"result_error\":\"the result file holds invalid JSON: unexpected token near end of file at line 1, column 0\"");

	/* a symbolic link to a secret: refused, the secret never read */
	CHECK(unlink(path) == 0);
	CHECK(put(jobdir, "secret", "{\"password\": 1}", 15) == 0);
	snprintf(why, sizeof(why), "%s/secret", jobdir);
	CHECK(symlink(why, path) == 0);
	expect_unusable(jobdir, "the result file is a symbolic link");
	CHECK_STR(finish_of(jobdir), ",\"result_error\":\"the result file is a symbolic link\"");
	CHECK(unlink(path) == 0);

	/* a fifo nobody writes: refused at once, never waited on */
	CHECK(mkfifo(path, 0600) == 0);
	expect_unusable(jobdir, "the result file is not a regular file");
	CHECK(unlink(path) == 0);
	/* a directory */
	CHECK(mkdir(path, 0700) == 0);
	expect_unusable(jobdir, "the result file is not a regular file");
	CHECK(rmdir(path) == 0);
	/* a file its reader may not read (the child has no capabilities, even as root) */
	CHECK(put(flow, "result.json", "1", 1) == 0);
	CHECK(chmod(path, 0000) == 0);
	expect_unusable(jobdir, "could not open the result file: Permission denied");
}

/* Calls inputs_prepare() then inputs_write() for flow json under work dir workdir; returns -1 at the first failure. */
static int
inputs_for(const char *workdir, const char *spool, const char *json, StrList *env, char *err, size_t errlen)
{
	JobSpec		spec = {.flow_json = json};
	Assignment	a;
	int			rc = -1;

	if (assign_parse(&spec, &a, err, errlen) == 0 &&
		inputs_prepare(workdir, &a, spool, env, err, errlen) == 0 &&
		inputs_write(workdir, &a, err, errlen) == 0)
		rc = 0;
	assign_free(&a);
	return rc;
}

/* Expects the flow json to be refused for a fresh job with a message containing want. */
static void
expect_flow_refused(const char *spool, const char *json, const char *want)
{
	char		work[4096], err[AGENT_ERRLEN] = "";
	StrList		env;
	static int	n;

	snprintf(work, sizeof(work), "%s/work-bad%d", spool, n++);
	CHECK(mkdir(work, 0700) == 0);
	strlist_init(&env);
	CHECK(inputs_for(work, spool, json, &env, err, sizeof(err)) == -1);
	CHECK(strstr(err, want) != NULL);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", json, err, want);
	strlist_free(&env);
}

/* Inputs: the files of the jobs before, and names that try to leave the directory. */
static void
test_inputs(void)
{
	const char *spool = unit_tmpdir("flow-inputs");
	char		work[4096], want[4096 + 64], err[AGENT_ERRLEN], name[300];
	StrList		env;
	struct stat st;
	JobSpec		spec = {.flow_json = "{\"inputs\": [{\"file\": \"../x\", \"result\": 1}]}"};
	Assignment	a;

	CHECK(inputs_flow_dir("/s/jobs/1.1/work-00ff", work, sizeof(work)) == 0);
	CHECK_STR(work, "/s/jobs/1.1/flow-00ff");
	CHECK(inputs_flow_dir("/s/jobs/1.1/other", work, sizeof(work)) == -1);
	CHECK(inputs_flow_dir("work-1", work, sizeof(work)) == -1);

	/* no flow: the result path, and the spool's one empty dir as the inputs */
	snprintf(work, sizeof(work), "%s/work-0001", spool);
	CHECK(mkdir(work, 0700) == 0);
	strlist_init(&env);
	CHECK(inputs_for(work, spool, NULL, &env, err, sizeof(err)) == 0);
	snprintf(want, sizeof(want), "%s/flow-0001/result.json", spool);
	CHECK_STR(unit_env_get(&env, "DISPATCH_RESULT"), want);
	snprintf(want, sizeof(want), "%s/no-inputs", spool);
	CHECK_STR(unit_env_get(&env, "DISPATCH_INPUTS"), want);
	CHECK(unit_env_get(&env, "DISPATCH_SCRATCH") == NULL);
	CHECK(access(want, R_OK | X_OK) == 0);
	CHECK(lstat(want, &st) == 0 && (st.st_mode & 07777) == 0755 && st.st_uid == geteuid());
	strlist_free(&env);

	/* inputs and a group */
	snprintf(work, sizeof(work), "%s/work-0002", spool);
	CHECK(mkdir(work, 0700) == 0);
	strlist_init(&env);
	CHECK(inputs_for(work, spool,
					 "{\"inputs\": [{\"name\": \"split\", \"file\": \"split.json\", \"result\": [\"a\", \"b\"]},"
					 " {\"name\": \"work[0]\", \"file\": \"work[0].json\", \"result\": {\"n\": 1}},"
					 " {\"name\": \"s\", \"file\": \"s.json\", \"result\": \"text\"}],"
					 " \"group\": {\"key\": \"17-2\", \"name\": \"g\"}}", &env, err, sizeof(err)) == 0);
	snprintf(want, sizeof(want), "%s/flow-0002/inputs", spool);
	CHECK_STR(unit_read(want, "split.json"), "[\"a\",\"b\"]\n");
	CHECK_STR(unit_read(want, "work[0].json"), "{\"n\":1}\n");
	CHECK_STR(unit_read(want, "s.json"), "\"text\"\n");
	/* <spool>/scratch/<key>.<16 hex digits>: nobody guesses it from the key */
	snprintf(want, sizeof(want), "%s/scratch/17-2.", spool);
	CHECK(unit_env_get(&env, "DISPATCH_SCRATCH") != NULL &&
		  strncmp(unit_env_get(&env, "DISPATCH_SCRATCH"), want, strlen(want)) == 0 &&
		  strlen(unit_env_get(&env, "DISPATCH_SCRATCH")) == strlen(want) + 16);
	CHECK(access(unit_env_get(&env, "DISPATCH_SCRATCH"), W_OK) == 0);
	strlist_free(&env);

	/* names that try to escape, or hide */
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \"../escape.json\", \"result\": 1}]}",
						"unsafe job input file name \"../escape.json\"");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \"a/b.json\", \"result\": 1}]}",
						"unsafe job input file name");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \"/etc/passwd\", \"result\": 1}]}",
						"unsafe job input file name");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \"..\", \"result\": 1}]}",
						"unsafe job input file name");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \".bashrc\", \"result\": 1}]}",
						"unsafe job input file name");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \"\", \"result\": 1}]}",
						"unsafe job input file name");
	memset(name, 'n', 256);
	name[256] = '\0';
	snprintf(want, sizeof(want), "{\"inputs\": [{\"file\": \"%s\", \"result\": 1}]}", name);
	expect_flow_refused(spool, want, "unsafe job input file name");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": 3, \"result\": 1}]}",
						"needs a string \"file\" and a \"result\"");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \"x.json\"}]}", "needs a string");
	expect_flow_refused(spool, "{\"inputs\": [{\"file\": \"x.json\", \"result\": 1},"
						" {\"file\": \"x.json\", \"result\": 2}]}", "could not create file");
	expect_flow_refused(spool, "{\"inputs\": {}}", "inputs must be a JSON array");
	expect_flow_refused(spool, "[]", "job flow must be a JSON object");
	expect_flow_refused(spool, "{\"group\": {\"key\": \"../../etc\"}}", "group needs a key");
	expect_flow_refused(spool, "{\"group\": {\"key\": \"1-1/..\"}}", "group needs a key");
	expect_flow_refused(spool, "{\"group\": {}}", "group needs a key");
	expect_flow_refused(spool, "{\"inputs\": [", "invalid job flow");
	snprintf(want, sizeof(want), "%s/escape.json", spool);
	CHECK(access(want, F_OK) < 0);

	/* inputs_write checks the names again, whatever inputs_prepare let by */
	snprintf(work, sizeof(work), "%s/work-0003", spool);
	snprintf(want, sizeof(want), "%s/flow-0003", spool);
	CHECK(mkdir(want, 0700) == 0);
	CHECK(assign_parse(&spec, &a, err, sizeof(err)) == 0);
	CHECK(inputs_write(work, &a, err, sizeof(err)) == -1);
	CHECK(strstr(err, "unsafe job input file name \"../x\"") != NULL);
	assign_free(&a);
	snprintf(want, sizeof(want), "%s/flow-0003/x", spool);
	CHECK(access(want, F_OK) < 0);
}

/* Creates a chain of depth directories of 200-byte names below dir, a file of one byte at the bottom. */
static void
make_deep(const char *dir, int depth)
{
	char		name[201];
	int			fd = open(dir, O_RDONLY | O_DIRECTORY), next;

	memset(name, 'd', 200);
	name[200] = '\0';
	for (int i = 0; i < depth && fd >= 0; i++)
	{
		CHECK(mkdirat(fd, name, 0700) == 0);
		next = openat(fd, name, O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = next;
	}
	CHECK(fd >= 0);
	next = openat(fd, "bottom", O_WRONLY | O_CREAT, 0600);
	CHECK(next >= 0 && write(next, "b", 1) == 1);
	close(next);
	close(fd);
}

/* Scratch: keys, the shared dir, and its removal after a hostile group. */
static void
test_scratch(void)
{
	const char *spool = unit_tmpdir("flow-scratch");
	char		path[4096], again[4096], sub[4096 + 16], err[AGENT_ERRLEN], outside[4096];
	int64_t		bytes = -1;
	struct stat st;

	CHECK(scratch_key_ok("12-1"));
	CHECK(scratch_key_ok("1-10"));
	CHECK(!scratch_key_ok(NULL));
	CHECK(!scratch_key_ok(""));
	CHECK(!scratch_key_ok("12"));
	CHECK(!scratch_key_ok("-1"));
	CHECK(!scratch_key_ok("1-"));
	CHECK(!scratch_key_ok("a-1"));
	CHECK(!scratch_key_ok("1-1/.."));
	CHECK(!scratch_key_ok("1-1 "));
	CHECK(!scratch_key_ok(".."));
	CHECK(!scratch_key_ok("1-2-3"));

	/* made once, mode 0700, found again by the group's next job */
	CHECK(scratch_prepare(spool, "7-1", path, sizeof(path), err, sizeof(err)) == 0);
	CHECK(lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	snprintf(sub, sizeof(sub), "%s/scratch", spool);
	CHECK(lstat(sub, &st) == 0 && (st.st_mode & 07777) == 0711);
	CHECK(put(path, "from-a", "0123456789", 10) == 0);
	CHECK(scratch_prepare(spool, "7-1", again, sizeof(again), err, sizeof(err)) == 0);
	CHECK_STR(again, path);
	CHECK_STR(unit_read(again, "from-a"), "0123456789");
	CHECK(scratch_prepare(spool, "../x", again, sizeof(again), err, sizeof(err)) == -1);
	CHECK(strstr(err, "invalid scratch key") != NULL);
	snprintf(sub, sizeof(sub), "%s/scratch", spool);
	CHECK(put(sub, "7-9.0123456789abcdef", "", 0) == 0);
	snprintf(sub, sizeof(sub), "%s/scratch/7-9.0123456789abcdef", spool);
	CHECK(scratch_prepare(spool, "7-9", again, sizeof(again), err, sizeof(err)) == -1);
	CHECK(strstr(err, "is not the job user's directory") != NULL);
	CHECK(unlink(sub) == 0);
	/* another group's key gets a name of its own, not a prefix match of "7-1" */
	CHECK(scratch_prepare(spool, "7-10", again, sizeof(again), err, sizeof(err)) == 0);
	CHECK(strcmp(again, path) != 0);
	CHECK(rmdir(again) == 0);

	/* what a hostile group leaves: links out, a fifo, locked dirs and files, a deep tree */
	snprintf(outside, sizeof(outside), "%s/outside", spool);
	CHECK(mkdir(outside, 0700) == 0);
	CHECK(put(outside, "keep", "keep me", 7) == 0);
	snprintf(sub, sizeof(sub), "%s/link-dir", path);
	CHECK(symlink(outside, sub) == 0);
	snprintf(sub, sizeof(sub), "%s/link-file", path);
	snprintf(again, sizeof(again), "%s/keep", outside);
	CHECK(symlink(again, sub) == 0);
	snprintf(sub, sizeof(sub), "%s/fifo", path);
	CHECK(mkfifo(sub, 0600) == 0);
	snprintf(sub, sizeof(sub), "%s/locked", path);
	CHECK(mkdir(sub, 0700) == 0);
	CHECK(put(sub, "inner", "12345", 5) == 0);
	CHECK(mkdir(strcat(sub, "/deeper"), 0700) == 0);
	CHECK(put(sub, "x", "xy", 2) == 0);
	CHECK(chmod(sub, 0000) == 0);
	snprintf(sub, sizeof(sub), "%s/locked", path);
	CHECK(chmod(sub, 0000) == 0);
	CHECK(put(path, "nothing-for-anyone", "abc", 3) == 0);
	snprintf(sub, sizeof(sub), "%s/nothing-for-anyone", path);
	CHECK(chmod(sub, 0000) == 0);
	snprintf(sub, sizeof(sub), "%s/deep", path);
	CHECK(mkdir(sub, 0700) == 0);
	make_deep(sub, 40);			/* 8 KB of path: twice PATH_MAX */
	CHECK(chmod(path, 0000) == 0);	/* and the scratch dir itself */

	CHECK(scratch_remove(spool, "7-1", &bytes, err, sizeof(err)) == 0);
	CHECK(bytes == 10 + 5 + 2 + 3 + 1);
	if (bytes != 21)
		fprintf(stderr, "  bytes %lld: %s\n", (long long) bytes, err);
	CHECK(lstat(path, &st) < 0);
	CHECK_STR(unit_read(outside, "keep"), "keep me");	/* the links were not followed */

	/* a key whose directory is gone already, or never was: nothing, 0 bytes */
	CHECK(scratch_remove(spool, "7-1", &bytes, err, sizeof(err)) == 0 && bytes == 0);
	CHECK(scratch_remove(spool, "8-1", &bytes, err, sizeof(err)) == 0 && bytes == 0);
	CHECK(scratch_remove(spool, "../outside", &bytes, err, sizeof(err)) == -1);
	CHECK_STR(unit_read(outside, "keep"), "keep me");
}

void
test_flow(void)
{
	test_results();
	test_inputs();
	test_scratch();
}
