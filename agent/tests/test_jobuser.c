/*
 * test_jobuser.c -- the job user's rules, and cleaning up after a hostile job.
 *
 * The pure parts of jobuser.c: which ids are refused, which capabilities are
 * reported missing, who may search a directory.  Then jobuser_remove_tree()
 * on a spool dir whose work dir a job left unreadable and unwritable (as the
 * tests run without a job user, the agent's own user empties it).
 */
#include "unit.h"

#include <signal.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates dir/name with mode (a directory when dir is set), as a job would. */
static void
make(const char *dir, const char *name, int is_dir, mode_t mode)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (is_dir)
		CHECK(mkdir(path, 0700) == 0);
	else
		CHECK(spool_write_file(dir, name, "x", 1, NULL, 0) == 0);
	CHECK(chmod(path, mode) == 0);
}

/* jobuser_run() bodies: one that says hello, one that stops itself (as any job user's process may stop it). */
static int
say_hello(void *arg, int fd)
{
	return write(fd, arg, strlen(arg)) == (ssize_t) strlen(arg) ? 0 : -1;
}

static int
stop_self(void *arg, int fd)
{
	(void) arg;
	(void) fd;
	raise(SIGSTOP);
	return 0;
}

void
test_jobuser(void)
{
	char		err[AGENT_ERRLEN], names[128];
	gid_t		groups[] = {50, 60};
	JobUser		u = {.name = "job", .uid = 1000, .gid = 1000, .groups = groups, .ngroups = 2};
	uint64_t	all = (UINT64_C(1) << CAP_SETUID) | (UINT64_C(1) << CAP_SETGID) | (UINT64_C(1) << CAP_CHOWN);

	/* ids: never root, never the agent's own user */
	CHECK(jobuser_check_ids("job", 1000, 101, err, sizeof(err)) == 0);
	CHECK(jobuser_check_ids("root", 0, 101, err, sizeof(err)) == -1);
	CHECK(strstr(err, "job user \"root\" cannot be root") != NULL);
	CHECK(jobuser_check_ids("me", 101, 101, err, sizeof(err)) == -1);
	CHECK(strstr(err, "cannot be the agent's own user") != NULL);

	/* capabilities: every one missing is named, in the order setcap takes them */
	CHECK(jobuser_missing_caps(all, names, sizeof(names)) == 0 && names[0] == '\0');
	CHECK(jobuser_missing_caps(0, names, sizeof(names)) == 3);
	CHECK_STR(names, "CAP_SETUID, CAP_SETGID, CAP_CHOWN");
	CHECK(jobuser_missing_caps(all & ~(UINT64_C(1) << CAP_SETGID), names, sizeof(names)) == 1);
	CHECK_STR(names, "CAP_SETGID");
	CHECK(jobuser_missing_caps(UINT64_C(1) << CAP_CHOWN, names, sizeof(names)) == 2);
	CHECK_STR(names, "CAP_SETUID, CAP_SETGID");
	/* a capability the agent does not need changes nothing */
	CHECK(jobuser_missing_caps(all | (UINT64_C(1) << CAP_SYS_ADMIN), names, sizeof(names)) == 0);

	/* search permission: owner bits for the owner, group bits for any of its groups, else other */
	CHECK(jobuser_can_search(&u, 1000, 0, 0700) == 1);
	CHECK(jobuser_can_search(&u, 1000, 0, 0077) == 0);	/* the owner's bits rule, even when others may */
	CHECK(jobuser_can_search(&u, 101, 1000, 0710) == 1);
	CHECK(jobuser_can_search(&u, 101, 60, 0710) == 1);
	CHECK(jobuser_can_search(&u, 101, 60, 0701) == 0);	/* the group's bits rule for a member */
	CHECK(jobuser_can_search(&u, 101, 104, 0711) == 1);
	CHECK(jobuser_can_search(&u, 101, 104, 0770) == 0);
	CHECK(jobuser_can_search(&u, 101, 104, 0700) == 0);

	/* cleanup: a job left its work dir, subdirs and files without any permission */
	{
		const char *d = unit_tmpdir("jobuser-remove");
		char		work[4096];

		snprintf(work, sizeof(work), "%s/work-0123", d);
		CHECK(spool_write_file(d, "status", "", 0, NULL, 0) == 0);
		make(d, "work-0123", 1, 0700);
		make(work, "locked", 1, 0700);
		make(work, "file", 0, 0000);
		snprintf(work, sizeof(work), "%s/work-0123/locked", d);
		make(work, "deeper", 1, 0000);
		make(work, "secret", 0, 0000);
		CHECK(chmod(work, 0000) == 0);
		snprintf(work, sizeof(work), "%s/work-0123", d);
		CHECK(chmod(work, 0000) == 0);
		CHECK(jobuser_remove_tree(d, err, sizeof(err)) == 0);
		CHECK(access(d, F_OK) < 0);
		CHECK(jobuser_remove_tree(d, err, sizeof(err)) == 0);	/* gone already: fine */
	}

	/* a child as the job user: its output, capped; one that never ends is killed in time */
	{
		StrBuf		out;
		int64_t		t0;

		sb_init(&out);
		CHECK(jobuser_run(say_hello, "hello", 4, 5000, &out, err, sizeof(err)) == 0);
		CHECK_STR(out.data, "hell");
		t0 = proc_now_ms();
		CHECK(jobuser_run(stop_self, NULL, 4, 200, &out, err, sizeof(err)) == -1);
		CHECK(strstr(err, "did not end within 200 ms") != NULL);
		CHECK(proc_now_ms() - t0 < 3000);
		sb_free(&out);
	}

	/* an empty directory the agent may not read (a work dir the job user emptied) goes too */
	{
		const char *d = unit_tmpdir("jobuser-unreadable");

		make(d, "work-4567", 1, 0000);
		CHECK(spool_remove_tree(d, err, sizeof(err)) == 0);
		CHECK(access(d, F_OK) < 0);
	}
}
