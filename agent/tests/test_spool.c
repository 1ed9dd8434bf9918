/*
 * test_spool.c -- crash-safe spool files, with faults injected at every I/O call site.
 *
 * In the spirit of SQLite's *fault.test: for each wrapped operation
 * (open, write, fsync, close, rename) the Nth call fails; the test asserts
 * the error is reported, the previous file is intact and no temp file is left.
 */
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

void
test_spool(void)
{
	static const char *const ops[] = {"open", "write", "fsync", "close", "rename"};
	const char *dir = unit_tmpdir("spool");
	char		err[AGENT_ERRLEN], path[4096];
	JobStatus	st, rd;
	JobMeta		m, mr;
	unsigned long long start;

	CHECK(spool_write_file(dir, "f", "old", 3, err, sizeof(err)) == 0);
	CHECK_STR(unit_read(dir, "f"), "old");

	/* each operation failing on its first call (open and fsync also on the dir fsync) */
	for (int op = 0; op < SPOOL_FAULT_NOPS; op++)
		for (int nth = 1; nth <= 2; nth++)
		{
			int			rc;

			spool_fault_inject(op, nth);
			rc = spool_write_file(dir, "f", "new", 3, err, sizeof(err));
			spool_fault_inject(op, 0);
			if (nth == 1)
			{
				CHECK(rc == -1);
				CHECK(strstr(err, "could not") != NULL && strstr(err, "Input/output error") != NULL);
				CHECK_STR(unit_read(dir, "f"), "old");
				if (strcmp(unit_read(dir, "f"), "old") != 0)
					fprintf(stderr, "  fault in %s destroyed the old file\n", ops[op]);
			}
			else if (op == SPOOL_FAULT_OPEN || op == SPOOL_FAULT_FSYNC || op == SPOOL_FAULT_CLOSE)
			{
				/* the second call is the directory's: the new file is in place, the error still reported */
				CHECK(rc == -1 && strstr(err, "directory") != NULL);
				CHECK_STR(unit_read(dir, "f"), "new");
				CHECK(spool_write_file(dir, "f", "old", 3, err, sizeof(err)) == 0);
			}
			else
			{
				CHECK(rc == 0);
				CHECK_STR(unit_read(dir, "f"), "new");
				CHECK(spool_write_file(dir, "f", "old", 3, err, sizeof(err)) == 0);
			}
			CHECK(!spool_exists(dir, ".f.tmp"));
		}

	/* status round trip, including a null exit code and a multi-line detail */
	memset(&st, 0, sizeof(st));
	st.has_exit = 1;
	st.exit_code = 3;
	CHECK(spool_write_status(dir, &st, err, sizeof(err)) == 0);
	CHECK(spool_read_status(dir, &rd, err, sizeof(err)) == 0);
	CHECK(rd.has_exit && rd.exit_code == 3 && rd.signal == 0 && !rd.timed_out && !rd.cancelled);
	CHECK_STR(rd.detail, "");
	memset(&st, 0, sizeof(st));
	st.signal = 9;
	st.timed_out = 1;
	st.cancelled = 1;
	snprintf(st.detail, sizeof(st.detail), "line1\nline2");
	CHECK(spool_write_status(dir, &st, err, sizeof(err)) == 0);
	CHECK(spool_read_status(dir, &rd, err, sizeof(err)) == 0);
	CHECK(!rd.has_exit && rd.signal == 9 && rd.timed_out && rd.cancelled);
	CHECK_STR(rd.detail, "line1 line2");
	/* a failed status write keeps the previous status */
	spool_fault_inject(SPOOL_FAULT_WRITE, 1);
	st.signal = 15;
	CHECK(spool_write_status(dir, &st, err, sizeof(err)) == -1);
	spool_fault_inject(SPOOL_FAULT_WRITE, 0);
	CHECK(spool_read_status(dir, &rd, err, sizeof(err)) == 0 && rd.signal == 9);
	CHECK(spool_write_file(dir, "status", "exit_code=x\n", 12, err, sizeof(err)) == 0);
	CHECK(spool_read_status(dir, &rd, err, sizeof(err)) == -1 && strstr(err, "invalid status file"));
	CHECK(spool_read_status("/nonexistent", &rd, err, sizeof(err)) == -1 && strstr(err, "could not open"));

	/* meta round trip */
	m.job_id = 9000000000LL;
	m.attempt = 2;
	m.pid = getpid();
	m.starttime = 12345;
	m.started_at = 1700000000;
	CHECK(spool_write_meta(dir, &m, err, sizeof(err)) == 0);
	CHECK(spool_read_meta(dir, &mr, err, sizeof(err)) == 0);
	CHECK(mr.job_id == m.job_id && mr.attempt == 2 && mr.pid == m.pid && mr.starttime == 12345 &&
		  mr.started_at == 1700000000);
	/* meta is renamed into place but never fsynced (it is off the durable path): an armed
	 * fsync fault is left for the next durable write, the status */
	spool_fault_inject(SPOOL_FAULT_FSYNC, 1);
	m.started_at = 1700000001;
	CHECK(spool_write_meta(dir, &m, err, sizeof(err)) == 0);
	CHECK(spool_write_status(dir, &st, err, sizeof(err)) == -1 && strstr(err, "fsync"));
	spool_fault_inject(SPOOL_FAULT_FSYNC, 0);
	CHECK(spool_read_meta(dir, &mr, err, sizeof(err)) == 0 && mr.started_at == 1700000001);
	/* and a meta that cannot be written whole leaves the previous one */
	for (int op = SPOOL_FAULT_OPEN; op <= SPOOL_FAULT_RENAME; op++)
	{
		if (op == SPOOL_FAULT_FSYNC)
			continue;
		spool_fault_inject(op, 1);
		m.attempt = 3;
		CHECK(spool_write_meta(dir, &m, err, sizeof(err)) == -1);
		spool_fault_inject(op, 0);
		CHECK(spool_read_meta(dir, &mr, err, sizeof(err)) == 0 && mr.attempt == 2);
		m.attempt = 2;
	}

	/* process identity: ourselves alive, a wrong start time or pid 0 is not */
	CHECK(proc_starttime(getpid(), &start) == 0 && start > 0);
	CHECK(proc_alive(getpid(), start));
	CHECK(!proc_alive(getpid(), start + 1));
	CHECK(!proc_alive(0, 0));

	/* tree removal */
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	CHECK(mkdir(path, 0755) == -1);	/* parents missing */
	snprintf(path, sizeof(path), "%s/a", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	mkdir(path, 0755);
	CHECK(spool_write_file(path, "x", "1", 1, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/a", dir);
	CHECK(spool_remove_tree(path, err, sizeof(err)) == 0);
	CHECK(access(path, F_OK) == -1);
	CHECK(spool_remove_tree(path, err, sizeof(err)) == 0);	/* already gone is fine */
}
