/*
 * test_artefacts.c -- a build job's artefacts on the agent: the "artefacts" of
 * its flow with every malformed field, inputs written into a work dir (nested
 * dirs, a wrong size or SHA-256, a link planted where a parent dir goes), and
 * outputs as a hostile job leaves them (missing, a link, a link for a parent, a
 * fifo, a directory, one byte too large) next to a good one with its SHA-256.
 * The children run as the agent's user without capabilities (no job user here).
 */
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Expects artefacts json to be refused with a message containing want. */
static void
expect_bad(const char *json, const char *want)
{
	char		err[AGENT_ERRLEN] = "";
	json_t	   *art = jsonio_load(json, JSON_DECODE_ANY, err, sizeof(err));

	CHECK(art != NULL);
	CHECK(artefacts_check(art, err, sizeof(err)) == -1);
	CHECK(strstr(err, want) != NULL);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "  %.200s: got \"%s\", want \"%s\"\n", json, err, want);
	json_decref(art);
}

/* Returns artefacts JSON with n inputs (or outputs) named f0, f1, ... (malloc'd). */
static char *
many(int n, int outputs)
{
	StrBuf		sb;

	sb_init(&sb);
	sb_printf(&sb, "{\"workspace\": \"w\", \"max_blob_size\": 10, \"%s\": [", outputs ? "outputs" : "inputs");
	for (int i = 0; i < n; i++)
		if (outputs)
			sb_printf(&sb, "%s\"f%d\"", i ? "," : "", i);
		else
			sb_printf(&sb, "%s{\"path\": \"f%d\", \"sha256\": \"" SHA_ABC "\", \"size\": 3}", i ? "," : "", i);
	sb_puts(&sb, "]}");
	return sb.data;
}

/* The flow's "artefacts": a good one, through inputs_prepare() too, and every malformed field. */
static void
test_check(void)
{
	const char *spool = unit_tmpdir("artefacts-check");
	char		err[AGENT_ERRLEN], work[4096], path[1100], json[2048];
	JobSpec		spec = {.flow_json = "{\"artefacts\": {\"workspace\": \"paper\", \"max_blob_size\": 1048576,"
		" \"inputs\": [{\"path\": \"src/paper.tex\", \"sha256\": \"" SHA_ABC "\", \"size\": 3}],"
	" \"outputs\": [\"paper.pdf\", \"paper.aux\"]}}"};
	Assignment	a;
	StrList		env;
	char	   *text;

	snprintf(work, sizeof(work), "%s/work-0001", spool);
	CHECK(mkdir(work, 0700) == 0);
	strlist_init(&env);
	CHECK(assign_parse(&spec, &a, err, sizeof(err)) == 0);
	CHECK(inputs_prepare(work, &a, spool, &env, err, sizeof(err)) == 0);
	assign_free(&a);
	strlist_free(&env);
	spec.flow_json = "{\"artefacts\": {\"workspace\": \"w\", \"max_blob_size\": 1, \"outputs\": [\"/etc/passwd\"]}}";
	snprintf(work, sizeof(work), "%s/work-0002", spool);
	CHECK(mkdir(work, 0700) == 0);
	strlist_init(&env);
	CHECK(assign_parse(&spec, &a, err, sizeof(err)) == 0);
	CHECK(inputs_prepare(work, &a, spool, &env, err, sizeof(err)) == -1);
	CHECK(strstr(err, "refusing artefact output path \"/etc/passwd\"") != NULL);
	assign_free(&a);
	strlist_free(&env);

	CHECK(artefacts_check(NULL, err, sizeof(err)) == 0);
	CHECK(artefacts_check(json_null(), err, sizeof(err)) == 0);
	text = many(ARTEFACTS_MAX, 0);
	{
		json_t	   *art = jsonio_load(text, 0, err, sizeof(err));

		CHECK(artefacts_check(art, err, sizeof(err)) == 0);
		json_decref(art);
	}
	free(text);
	/* the workspace as an id, no inputs, an empty output list */
	{
		json_t	   *art = jsonio_load("{\"workspace\": 7, \"max_blob_size\": 0, \"outputs\": []}", 0, err, sizeof(err));

		CHECK(artefacts_check(art, err, sizeof(err)) == 0);
		json_decref(art);
	}

	expect_bad("[]", "job flow artefacts must be a JSON object");
	expect_bad("\"x\"", "job flow artefacts must be a JSON object");
	expect_bad("{\"max_blob_size\": 1}", "need a \"workspace\"");
	expect_bad("{\"workspace\": \"\", \"max_blob_size\": 1}", "need a \"workspace\"");
	expect_bad("{\"workspace\": [], \"max_blob_size\": 1}", "need a \"workspace\"");
	expect_bad("{\"workspace\": \"w\"}", "need a \"max_blob_size\" from 0 to 1073741819 bytes");
	expect_bad("{\"workspace\": \"w\", \"max_blob_size\": -1}", "need a \"max_blob_size\"");
	expect_bad("{\"workspace\": \"w\", \"max_blob_size\": 1.5}", "need a \"max_blob_size\"");
	expect_bad("{\"workspace\": \"w\", \"max_blob_size\": \"10\"}", "need a \"max_blob_size\"");
	expect_bad("{\"workspace\": \"w\", \"max_blob_size\": 1073741820}", "need a \"max_blob_size\"");
	expect_bad("{\"workspace\": \"w\", \"max_blob_size\": 1, \"inputs\": {}}",
			   "artefact inputs must be a JSON array of at most 10000");
	expect_bad("{\"workspace\": \"w\", \"max_blob_size\": 1, \"outputs\": \"a\"}",
			   "artefact outputs must be a JSON array of at most 10000");
	text = many(ARTEFACTS_MAX + 1, 0);
	expect_bad(text, "artefact inputs must be a JSON array of at most 10000");
	free(text);
	text = many(ARTEFACTS_MAX + 1, 1);
	expect_bad(text, "artefact outputs must be a JSON array of at most 10000");
	free(text);

#define IN(body) "{\"workspace\": \"w\", \"max_blob_size\": 9, \"inputs\": [" body "]}"
#define GOOD_SHA "\"sha256\": \"" SHA_ABC "\""
	expect_bad(IN("\"a\""), "artefact input 0 needs a string \"path\", a string \"sha256\" and an integer \"size\"");
	expect_bad(IN("{\"path\": \"a\", " GOOD_SHA "}"), "artefact input 0 needs");
	expect_bad(IN("{\"path\": \"a\", " GOOD_SHA ", \"size\": \"3\"}"), "artefact input 0 needs");
	expect_bad(IN("{\"path\": \"a\", " GOOD_SHA ", \"size\": 3.0}"), "artefact input 0 needs");
	expect_bad(IN("{\"path\": 1, " GOOD_SHA ", \"size\": 3}"), "artefact input 0 needs");
	expect_bad(IN("{\"path\": \"a\", \"sha256\": 1, \"size\": 3}"), "artefact input 0 needs");
	expect_bad(IN("{\"path\": \"a\", " GOOD_SHA ", \"size\": 3}, {\"path\": \"b\", " GOOD_SHA "}"),
			   "artefact input 1 needs");
	expect_bad(IN("{\"path\": \"../x\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path \"../x\"");
	expect_bad(IN("{\"path\": \"a/../../x\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path");
	expect_bad(IN("{\"path\": \"..\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path");
	expect_bad(IN("{\"path\": \"/etc/passwd\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path \"/etc/passwd\"");
	expect_bad(IN("{\"path\": \"a//b\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path");
	expect_bad(IN("{\"path\": \"a/\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path");
	expect_bad(IN("{\"path\": \"./a\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path");
	expect_bad(IN("{\"path\": \"\", " GOOD_SHA ", \"size\": 3}"), "refusing artefact input path");
	memset(path, 'p', ARTEFACT_PATH_MAX + 1);
	path[ARTEFACT_PATH_MAX + 1] = '\0';
	snprintf(json, sizeof(json), IN("{\"path\": \"%s\", " GOOD_SHA ", \"size\": 3}"), path);
	expect_bad(json, "at most 1024 bytes");
	path[ARTEFACT_PATH_MAX] = '\0';		/* exactly the limit is fine */
	snprintf(json, sizeof(json), IN("{\"path\": \"%s\", " GOOD_SHA ", \"size\": 3}"), path);
	{
		json_t	   *art = jsonio_load(json, 0, err, sizeof(err));

		CHECK(artefacts_check(art, err, sizeof(err)) == 0);
		json_decref(art);
	}
	expect_bad(IN("{\"path\": \"a\", \"sha256\": \"abc\", \"size\": 3}"), "artefact input \"a\" has an invalid sha256 \"abc\"");
	expect_bad(IN("{\"path\": \"a\", \"sha256\": \"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\", \"size\": 3}"),
			   "invalid sha256");
	expect_bad(IN("{\"path\": \"a\", \"sha256\": \"" SHA_ABC "0\", \"size\": 3}"), "invalid sha256");
	expect_bad(IN("{\"path\": \"a\", \"sha256\": \"g" SHA_ABC "\", \"size\": 3}"), "invalid sha256");
	expect_bad(IN("{\"path\": \"a\", " GOOD_SHA ", \"size\": -1}"), "artefact input \"a\" has an invalid size -1");
	expect_bad(IN("{\"path\": \"a\", " GOOD_SHA ", \"size\": 1073741820}"), "invalid size 1073741820");
	expect_bad(IN("{\"path\": \"a\", " GOOD_SHA ", \"size\": 3}, {\"path\": \"a\", " GOOD_SHA ", \"size\": 3}"),
			   "artefact input \"a\" is given more than once");
#define OUT(body) "{\"workspace\": \"w\", \"max_blob_size\": 9, \"outputs\": [" body "]}"
	expect_bad(OUT("\"a\", 3"), "artefact output 1 must be a string");
	expect_bad(OUT("null"), "artefact output 0 must be a string");
	expect_bad(OUT("\"../a\""), "refusing artefact output path \"../a\"");
	expect_bad(OUT("\"/tmp/a\""), "refusing artefact output path");
	expect_bad(OUT("\"a/../b\""), "refusing artefact output path");
	expect_bad(OUT("\"\""), "refusing artefact output path");
	expect_bad(OUT("\"a\", \"a\""), "artefact output \"a\" is given more than once");
}

/* Writes data (len bytes) as input {path, sha256, size} into workdir; returns artefacts_put_input()'s result. */
static int
put(const char *workdir, const char *path, const char *sha, int size, const char *data, size_t len,
	char *err, size_t errlen)
{
	json_t	   *in = json_pack("{sssssi}", "path", path, "sha256", sha, "size", size);
	int			rc = artefacts_put_input(workdir, in, data, len, err, errlen);

	json_decref(in);
	return rc;
}

/* Inputs: nested dirs, exact content, wrong size or digest, and links planted on the way. */
static void
test_inputs(void)
{
	const char *work = unit_tmpdir("artefacts-inputs");
	char		err[AGENT_ERRLEN] = "", outside[4096], link[4096 + 16];
	struct stat st;

	CHECK(put(work, "src/chapters/one.tex", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == 0);
	CHECK_STR(unit_read(work, "src/chapters/one.tex"), "abc");
	CHECK(put(work, "src/empty", SHA_EMPTY, 0, "", 0, err, sizeof(err)) == 0);
	CHECK_STR(unit_read(work, "src/empty"), "");
	CHECK(put(work, "top", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == 0);
	snprintf(link, sizeof(link), "%s/top", work);
	CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);

	/* what the server sends must be what the flow says */
	CHECK(put(work, "none", SHA_ABC, 3, NULL, 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "the server has no content for it") != NULL);
	CHECK(put(work, "short", SHA_ABC, 3, "ab", 2, err, sizeof(err)) == -1);
	CHECK(strstr(err, "the server sent 2 bytes, not 3") != NULL);
	CHECK(put(work, "wrong", SHA_ABC, 3, "abd", 3, err, sizeof(err)) == -1);
	CHECK(strstr(err, "not " SHA_ABC) != NULL);
	/* created exclusively: an input never replaces a file */
	CHECK(put(work, "top", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == -1);
	CHECK(strstr(err, "could not create file") != NULL);
	CHECK(put(work, "top/x", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == -1);
	CHECK(strstr(err, "a file of that name exists") != NULL);

	/* a link planted where a parent dir goes, or where the file goes: refused, nothing written outside */
	snprintf(outside, sizeof(outside), "%s/../artefacts-outside", work);
	mkdir(outside, 0700);
	snprintf(link, sizeof(link), "%s/evil", work);
	CHECK(symlink(outside, link) == 0);
	CHECK(put(work, "evil/x.tex", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == -1);
	CHECK(strstr(err, "it is a symbolic link") != NULL);
	CHECK(put(work, "src/../evil/y", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == -1);
	CHECK(put(work, "evil", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == -1);
	snprintf(link, sizeof(link), "%s/src/chapters/deeper", work);
	CHECK(symlink(outside, link) == 0);
	CHECK(put(work, "src/chapters/deeper/z", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == -1);
	CHECK(strstr(err, "symbolic link") != NULL);
	CHECK_STR(unit_read(outside, "x.tex"), "(missing)");
	CHECK_STR(unit_read(outside, "z"), "(missing)");
	snprintf(link, sizeof(link), "%s/dangling", work);
	CHECK(symlink("/nonexistent-artefact", link) == 0);
	CHECK(put(work, "dangling", SHA_ABC, 3, "abc", 3, err, sizeof(err)) == -1);
	CHECK(access("/nonexistent-artefact", F_OK) < 0);
}

/* Reads output path of work with max; returns the outcome, with why or the content and digest. */
static int
get(const char *work, const char *path, int64_t max, char *why, size_t whylen, char *sha, StrBuf *content)
{
	ArtefactOutput out;
	int			rc = artefacts_read_output(work, path, max, &out, why, whylen);

	if (rc == 0)
	{
		snprintf(sha, DIGEST_HEX_LEN + 1, "%s", out.sha256);
		sb_append(content, out.data, out.len);
	}
	artefacts_output_free(&out);
	return rc;
}

/* Expects output path of work (max bytes allowed) to be refused with why containing want. */
static void
expect_refused(const char *work, const char *path, int64_t max, const char *want)
{
	char		why[AGENT_ERRLEN] = "", sha[DIGEST_HEX_LEN + 1];
	StrBuf		content;

	sb_init(&content);
	CHECK(get(work, path, max, why, sizeof(why), sha, &content) == -1);
	CHECK(content.len == 0);
	CHECK(strstr(why, want) != NULL);
	if (strstr(why, want) == NULL)
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", path, why, want);
	sb_free(&content);
}

/* Outputs: good ones with their SHA-256, and what a hostile job leaves instead. */
static void
test_outputs(void)
{
	const char *work = unit_tmpdir("artefacts-outputs");
	char		why[AGENT_ERRLEN], sha[DIGEST_HEX_LEN + 1], path[4096 + 16], secret[4096];
	StrBuf		content;
	char	   *big = xmalloc(300001);

	CHECK(spool_write_file(work, "paper.pdf", "abc", 3, NULL, 0) == 0);
	sb_init(&content);
	CHECK(get(work, "paper.pdf", 3, why, sizeof(why), sha, &content) == 0);
	CHECK_STR(sha, SHA_ABC);
	CHECK(content.len == 3 && memcmp(content.data, "abc", 3) == 0);
	content.len = 0;
	CHECK(spool_write_file(work, "empty", "", 0, NULL, 0) == 0);
	CHECK(get(work, "empty", 0, why, sizeof(why), sha, &content) == 0);
	CHECK_STR(sha, SHA_EMPTY);
	CHECK(content.len == 0);
	/* larger than a read block: streamed whole, digest and content agree */
	memset(big, 'z', 300000);
	snprintf(path, sizeof(path), "%s/out", work);
	CHECK(mkdir(path, 0755) == 0);
	CHECK(spool_write_file(path, "big.bin", big, 300000, NULL, 0) == 0);
	CHECK(get(work, "out/big.bin", 300000, why, sizeof(why), sha, &content) == 0);
	CHECK(content.len == 300000 && memcmp(content.data, big, 300000) == 0);
	{
		char		want[DIGEST_HEX_LEN + 1];

		snprintf(path, sizeof(path), "%s/out/big.bin", work);
		CHECK(digest_file(path, want, NULL, why, sizeof(why)) == 0);
		CHECK_STR(sha, want);
	}
	sb_free(&content);

	expect_refused(work, "out/big.bin", 299999, "output \"out/big.bin\" is larger than 299999 bytes");
	expect_refused(work, "paper.aux", 10, "output \"paper.aux\" was not made");
	expect_refused(work, "nodir/paper.aux", 10, "output \"nodir/paper.aux\" was not made");
	expect_refused(work, "paper.pdf/x", 10, "was not made");
	/* a symbolic link to a secret, for the file or for a parent dir: refused, never followed */
	snprintf(secret, sizeof(secret), "%s/../artefacts-secret", work);
	mkdir(secret, 0700);
	CHECK(spool_write_file(secret, "key", "secret", 6, NULL, 0) == 0);
	snprintf(path, sizeof(path), "%s/key", secret);
	snprintf(why, sizeof(why), "%s/link.pdf", work);
	CHECK(symlink(path, why) == 0);
	expect_refused(work, "link.pdf", 100, "output \"link.pdf\" is not a regular file");
	snprintf(why, sizeof(why), "%s/linkdir", work);
	CHECK(symlink(secret, why) == 0);
	expect_refused(work, "linkdir/key", 100, "output \"linkdir/key\" is not a regular file");
	/* a fifo nobody writes (never waited on), a directory */
	snprintf(path, sizeof(path), "%s/fifo", work);
	CHECK(mkfifo(path, 0600) == 0);
	expect_refused(work, "fifo", 100, "output \"fifo\" is not a regular file");
	expect_refused(work, "out", 100, "output \"out\" is not a regular file");
	/* one the reader may not read (no capabilities, even as root) */
	snprintf(path, sizeof(path), "%s/locked", work);
	CHECK(spool_write_file(work, "locked", "x", 1, NULL, 0) == 0);
	CHECK(chmod(path, 0000) == 0);
	expect_refused(work, "locked", 100, "output \"locked\" could not be read");
	free(big);
}

void
test_artefacts(void)
{
	test_check();
	test_inputs();
	test_outputs();
}
