/*
 * test_files.c -- writing a job's rendered files into its work directory.
 */
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Returns the permission bits of dir/name, or -1. */
static int
mode_of(const char *dir, const char *name)
{
	char		path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) < 0 ? -1 : (int) (st.st_mode & 07777);
}

/* Parses json as an assignment's files (NULL: none) and writes them into dir; returns files_write's result. */
static int
write_files(const char *dir, const char *json, char *err, size_t errlen)
{
	JobSpec		spec = {.files_json = json};
	Assignment	a;
	int			rc = assign_parse(&spec, &a, err, errlen) < 0 ? -1 : files_write(dir, &a, err, errlen);

	assign_free(&a);
	return rc;
}

/* Expects files_write(json) into a fresh directory to fail with a message containing want. */
static void
expect_refused(const char *name, const char *json, const char *want)
{
	const char *dir = unit_tmpdir(name);
	char		err[AGENT_ERRLEN] = "";

	CHECK(write_files(dir, json, err, sizeof(err)) == -1);
	CHECK(strstr(err, want) != NULL);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", name, err, want);
}

void
test_files(void)
{
	const char *dir = unit_tmpdir("files");
	char		err[AGENT_ERRLEN];
	mode_t		old = umask(077);	/* the mode asked for wins over the umask */

	CHECK(write_files(dir, NULL, err, sizeof(err)) == 0);
	CHECK(write_files(dir, "[]", err, sizeof(err)) == 0);
	CHECK(write_files(dir,
					  "[{\"path\": \"conf/deep/app.ini\", \"mode\": \"0640\", \"content\": \"port=8081\\n\"},"
					  " {\"path\": \"run.sh\", \"mode\": \"755\", \"content\": \"#!/bin/sh\\necho \\u00e9\\n\"},"
					  " {\"path\": \"conf/empty\", \"mode\": \"0600\", \"content\": \"\"}]",
					  err, sizeof(err)) == 0);
	CHECK_STR(unit_read(dir, "conf/deep/app.ini"), "port=8081\n");
	CHECK_STR(unit_read(dir, "run.sh"), "#!/bin/sh\necho \xc3\xa9\n");
	CHECK_STR(unit_read(dir, "conf/empty"), "");
	CHECK(mode_of(dir, "conf/deep/app.ini") == 0640);
	CHECK(mode_of(dir, "run.sh") == 0755);
	CHECK(mode_of(dir, "conf/empty") == 0600);
	CHECK(mode_of(dir, "conf/deep") == 0700);	/* directories follow the umask */
	umask(old);

	/* a second write of the same file is refused: files are created exclusively */
	CHECK(write_files(dir, "[{\"path\": \"run.sh\", \"mode\": \"0644\", \"content\": \"x\"}]",
					  err, sizeof(err)) == -1);
	CHECK(strstr(err, "could not create file") != NULL);
	CHECK_STR(unit_read(dir, "run.sh"), "#!/bin/sh\necho \xc3\xa9\n");
	/* a file where a directory is needed */
	CHECK(write_files(dir, "[{\"path\": \"run.sh/x\", \"mode\": \"0644\", \"content\": \"x\"}]",
					  err, sizeof(err)) == -1);
	CHECK(strstr(err, "a file of that name exists") != NULL);
	/* never through a symbolic link */
	{
		char		link[4096];

		snprintf(link, sizeof(link), "%s/evil", dir);
		CHECK(symlink("/tmp", link) == 0);
		CHECK(write_files(dir, "[{\"path\": \"evil\", \"mode\": \"0644\", \"content\": \"x\"}]",
						  err, sizeof(err)) == -1);
		CHECK(write_files(dir, "[{\"path\": \"evil/x\", \"mode\": \"0644\", \"content\": \"x\"}]",
						  err, sizeof(err)) == -1);
	}

	expect_refused("files-absolute", "[{\"path\": \"/etc/x\", \"mode\": \"0644\", \"content\": \"\"}]",
				   "unsafe job file path \"/etc/x\"");
	expect_refused("files-dotdot", "[{\"path\": \"a/../../x\", \"mode\": \"0644\", \"content\": \"\"}]",
				   "unsafe job file path");
	expect_refused("files-dot", "[{\"path\": \"./x\", \"mode\": \"0644\", \"content\": \"\"}]",
				   "unsafe job file path");
	expect_refused("files-empty-component", "[{\"path\": \"a//x\", \"mode\": \"0644\", \"content\": \"\"}]",
				   "unsafe job file path");
	expect_refused("files-trailing-slash", "[{\"path\": \"a/\", \"mode\": \"0644\", \"content\": \"\"}]",
				   "unsafe job file path");
	expect_refused("files-empty-path", "[{\"path\": \"\", \"mode\": \"0644\", \"content\": \"\"}]",
				   "unsafe job file path");
	expect_refused("files-setuid", "[{\"path\": \"x\", \"mode\": \"4755\", \"content\": \"\"}]",
				   "invalid mode \"4755\"");
	expect_refused("files-bad-mode", "[{\"path\": \"x\", \"mode\": \"0888\", \"content\": \"\"}]",
				   "invalid mode");
	expect_refused("files-no-content", "[{\"path\": \"x\", \"mode\": \"0644\"}]",
				   "needs string \"path\", \"mode\" and \"content\"");
	expect_refused("files-not-object", "[\"x\"]", "needs string");
	expect_refused("files-not-array", "{\"path\": \"x\"}", "must be a JSON array");
	expect_refused("files-bad-json", "[{", "");
}
