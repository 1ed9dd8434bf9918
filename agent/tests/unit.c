/*
 * unit.c -- runs every unit test group of dispatch-agent and prints the tally.
 */
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int			unit_passed;
int			unit_failed;

/* Returns the content of dir/name (static buffer), or "(missing)". */
const char *
unit_read(const char *dir, const char *name)
{
	static char out[4096];
	char		path[4096], err[AGENT_ERRLEN];
	StrBuf		sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	sb_init(&sb);
	if (spool_read_file(path, &sb, err, sizeof(err)) < 0)
		snprintf(out, sizeof(out), "(missing)");
	else
		snprintf(out, sizeof(out), "%s", sb.data);
	sb_free(&sb);
	return out;
}

/* Returns a fresh, empty directory tests/tmp/<name> (absolute path). */
const char *
unit_tmpdir(const char *name)
{
	static char path[4096];
	char		cwd[2048];
	char		err[AGENT_ERRLEN];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/tests/tmp/%s", cwd, name);
	spool_remove_tree(path, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/tests/tmp", cwd);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/tests/tmp/%s", cwd, name);
	if (mkdir(path, 0755) < 0)
		abort();
	return path;
}

int
main(void)
{
	test_idlist();
	test_json();
	test_utf8();
	test_env();
	test_files();
	test_spool();
	test_runner();
	test_collect();
	test_plugins();
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
