/*
 * test_runner.c -- real supervisors running real /bin/sh jobs.
 *
 * Each case spawns a supervisor through runner_spawn(), waits for it (it is
 * our child) and checks the status file: exit code, signal, timed_out,
 * cancelled; plus the meta file, the output files, the job's own process
 * group and session, and that no descriptor of ours leaked into the job.
 */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Runs command as job 1.1 in a fresh spool dir; signals the supervisor with SIGTERM after cancel_ms (if > 0). */
static JobStatus
run_job(const char *name, const char *command, int64_t timeout_ms, int64_t grace_ms,
		int64_t cancel_ms, char *dirout)
{
	const char *dir = unit_tmpdir(name);
	char		work[4096], err[AGENT_ERRLEN];
	char	   *envp[] = {"PATH=/usr/bin:/bin", "DISPATCH_TEST=1", NULL};
	Assignment	job = {.spec = {1, 1, 1, command, NULL, NULL, timeout_ms, NULL}};
	JobStatus	st;
	pid_t		pid;
	int			ws;

	strcpy(dirout, dir);
	snprintf(work, sizeof(work), "%s/flow-0", dir);	/* as inputs_prepare() makes it */
	mkdir(work, 0700);
	snprintf(work, sizeof(work), "%s/work-0", dir);
	mkdir(work, 0755);
	memset(&st, 0, sizeof(st));
	if (runner_spawn(dirout, work, &job, envp, grace_ms, &pid, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "  runner_spawn: %s\n", err);
		st.exit_code = -999;
		return st;
	}
	if (cancel_ms > 0)
	{
		struct timespec ts = {cancel_ms / 1000, (cancel_ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
		kill(pid, SIGTERM);
	}
	CHECK(waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	CHECK(spool_read_status(dirout, &st, err, sizeof(err)) == 0);
	return st;
}

/* Returns the first line of dir/name (static buffer). */
static const char *
first_line(const char *dir, const char *name)
{
	static char out[1024];
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	out[0] = '\0';
	if ((f = fopen(path, "r")) != NULL)
	{
		if (fgets(out, sizeof(out), f) == NULL)
			out[0] = '\0';
		fclose(f);
	}
	out[strcspn(out, "\n")] = '\0';
	return out;
}

void
test_runner(void)
{
	char		dir[4096], err[AGENT_ERRLEN];
	JobStatus	st;
	JobMeta		m;
	long		pid, pgid, sid;
	int64_t		t0;
	char		cmd[1024];
	int			leak;

	/* exit code, output, environment, cwd, own process group and session, no leaked fds */
	leak = open("/dev/null", O_RDONLY);	/* inherited by the supervisor unless it closes it */
	snprintf(cmd, sizeof(cmd), "echo out; echo err >&2; echo $DISPATCH_TEST; pwd; "
			 "read -r s < /proc/$$/stat; set -- ${s#*) }; echo $$ $3 $4; "
			 "test -e /proc/$$/fd/%d && echo leak || echo noleak; exit 3", leak);
	st = run_job("exit3", cmd, 0, 1000, 0, dir);
	close(leak);
	CHECK(st.has_exit && st.exit_code == 3 && st.signal == 0 && !st.timed_out && !st.cancelled);
	CHECK_STR(first_line(dir, "stderr"), "err");
	{
		char		path[4096];
		FILE	   *f;
		char		line[4][1024] = {"", "", "", ""};

		snprintf(path, sizeof(path), "%s/stdout", dir);
		if ((f = fopen(path, "r")) != NULL)
		{
			for (int i = 0; i < 4 && fgets(line[i], sizeof(line[i]), f); i++)
				line[i][strcspn(line[i], "\n")] = '\0';
			CHECK(fgets(path, sizeof(path), f) != NULL && strcmp(path, "noleak\n") == 0);
			fclose(f);
		}
		CHECK_STR(line[0], "out");
		CHECK_STR(line[1], "1");
		CHECK(strstr(line[2], "/work") != NULL);
		CHECK(sscanf(line[3], "%ld %ld %ld", &pid, &pgid, &sid) == 3);
		CHECK(pgid == pid);				/* the job leads its own process group */
		CHECK(pgid != getpgrp());
		CHECK(sid != getsid(0));		/* and the supervisor has left our session */
	}
	CHECK(spool_read_meta(dir, &m, err, sizeof(err)) == 0 && m.job_id == 1 && m.attempt == 1 &&
		  m.pid > 0 && m.starttime > 0 && m.started_at > 0);
	CHECK(!proc_alive(m.pid, m.starttime));

	st = run_job("exit0", "true", 0, 1000, 0, dir);
	CHECK(st.has_exit && st.exit_code == 0 && st.signal == 0);
	CHECK_STR(st.detail, "");

	/* timeout: SIGTERM to the group ends it */
	t0 = proc_now_ms();
	st = run_job("timeout", "sleep 10", 200, 5000, 0, dir);
	CHECK(!st.has_exit && st.signal == SIGTERM && st.timed_out && !st.cancelled);
	CHECK_STR(st.detail, "timed out after 200 ms");
	CHECK(proc_now_ms() - t0 < 3000);

	/* a job ignoring SIGTERM is killed after the grace, its children too */
	t0 = proc_now_ms();
	st = run_job("kill", "trap '' TERM; sleep 30 & echo $! > child; wait; wait", 100, 300, 0, dir);
	CHECK(!st.has_exit && st.signal == SIGKILL && st.timed_out);
	CHECK(proc_now_ms() - t0 < 5000);
	{
		long		child = atol(first_line(dir, "work-0/child"));
		struct timespec ts = {0, 10000000};

		/* the orphan is reaped by init a moment after the kill */
		for (t0 = proc_now_ms(); child > 0 && kill((pid_t) child, 0) == 0 && proc_now_ms() - t0 < 3000;)
			nanosleep(&ts, NULL);
		CHECK(child > 0 && kill((pid_t) child, 0) < 0);
	}

	/* cancel: SIGTERM to the supervisor */
	st = run_job("cancel", "sleep 10", 0, 1000, 200, dir);
	CHECK(!st.has_exit && st.signal == SIGTERM && st.cancelled && !st.timed_out);
	CHECK_STR(st.detail, "cancelled");

	/* a SIGKILLed supervisor leaves its job behind; runner_kill_session finds and kills it */
	{
		const char *d = unit_tmpdir("vanish");
		char	   *envp[] = {"PATH=/usr/bin:/bin", NULL};
		Assignment	job = {.spec = {3, 1, 1, "echo $$ > ../pid; exec sleep 30", NULL, NULL, 0, NULL}};
		char		work[4096];
		pid_t		p;
		long		jobpid = 0;
		struct timespec ts = {0, 10000000};

		snprintf(work, sizeof(work), "%s/flow-0", d);
		mkdir(work, 0700);
		snprintf(work, sizeof(work), "%s/work-0", d);
		mkdir(work, 0755);
		CHECK(runner_spawn(d, work, &job, envp, 100, &p, err, sizeof(err)) == 0);
		for (t0 = proc_now_ms(); jobpid <= 0 && proc_now_ms() - t0 < 3000; nanosleep(&ts, NULL))
			jobpid = atol(first_line(d, "pid"));
		CHECK(jobpid > 0);
		CHECK(runner_kill_session(p) == 0);		/* the supervisor still lives: hands off */
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		CHECK(kill((pid_t) jobpid, 0) == 0);	/* the orphaned job runs on */
		CHECK(runner_kill_session(p) == 1);
		for (t0 = proc_now_ms(); kill((pid_t) jobpid, 0) == 0 && proc_now_ms() - t0 < 3000;)
			nanosleep(&ts, NULL);
		CHECK(kill((pid_t) jobpid, 0) < 0);
		CHECK(!spool_exists(d, "status"));
	}

	/* exec failures are precise: a missing work dir */
	{
		const char *d = unit_tmpdir("nowork");
		char	   *envp[] = {NULL};
		Assignment	job = {.spec = {2, 1, 1, "true", NULL, NULL, 0, NULL}};
		char		work[4096];
		pid_t		p;
		int			ws;

		snprintf(work, sizeof(work), "%s/flow-0", d);
		CHECK(mkdir(work, 0700) == 0);
		snprintf(work, sizeof(work), "%s/work-0", d);
		CHECK(runner_spawn(d, work, &job, envp, 100, &p, err, sizeof(err)) == 0);
		CHECK(waitpid(p, &ws, 0) == p);
		CHECK(spool_read_status(d, &st, err, sizeof(err)) == 0);
		CHECK(!st.has_exit && strstr(st.detail, "could not enter work directory") != NULL);
	}
}
