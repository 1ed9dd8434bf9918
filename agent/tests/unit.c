/*
 * unit.c -- runs every unit test group of dispatch-agent and prints the tally.
 */
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int			unit_passed;
int			unit_failed;
const char *unit_usage_root;

/* A statvfs() stand-in below unit_usage_root: fixed numbers, the size telling the mount point's length; /boot/efi unreachable, /tmp empty. */
int
unit_fake_usage(const char *path, FsStat *fs)
{
	const char *mount = path + strlen(unit_usage_root);
	uint64_t	gib = 1024ULL * 1024 * 1024;

	if (strcmp(mount, "/boot/efi") == 0)
		return -1;
	if (strcmp(mount, "/tmp") == 0)
	{
		fs->size = 0;			/* as if it had no blocks: dropped */
		return 0;
	}
	fs->size = 100 * gib + (uint64_t) strlen(mount);
	fs->used = 40 * gib;
	fs->avail = 55 * gib;
	fs->inodes = 6553600;
	fs->inodes_used = 123456;
	return 0;
}

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

/* Returns the value of name in env, or NULL. */
const char *
unit_env_get(const StrList *env, const char *name)
{
	size_t		n = strlen(name);

	for (int i = 0; i < env->n; i++)
		if (strncmp(env->items[i], name, n) == 0 && env->items[i][n] == '=')
			return env->items[i] + n + 1;
	return NULL;
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
	test_names();
	test_json();
	test_utf8();
	test_env();
	test_files();
	test_spool();
	test_runner();
	test_collect();
	test_plugins();
	test_sample();
	test_metrics();
	test_history();
	test_jobuser();
	test_flow();
	test_control();
	test_digest();
	test_watch();
	test_artefacts();
	test_fixpoint();
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
