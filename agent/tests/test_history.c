/*
 * test_history.c -- the agent's history file: whole lines appended, times in UTC.
 */
#include "unit.h"

#include <sys/stat.h>

void
test_history(void)
{
	const char *dir = unit_tmpdir("history");
	char		err[AGENT_ERRLEN], path[4096];
	StrBuf		sb;

	sb_init(&sb);
	history_put_time(&sb, 0);
	history_put_time(&sb, 1795437401815LL);
	CHECK_STR(sb.data, "\"1970-01-01T00:00:00.000Z\"\"2026-11-23T12:36:41.815Z\"");
	sb_free(&sb);

	/* two lines appended; the file is created with mode 0600 */
	snprintf(path, sizeof(path), "%s/history.jsonl", dir);
	for (int i = 0; i < 2; i++)
	{
		sb_init(&sb);
		history_begin(&sb, "job", "n\"1");
		sb_printf(&sb, ",\"i\":%d", i);
		CHECK(history_append(path, &sb, err, sizeof(err)) == 0);
		sb_free(&sb);
	}
	{
		const char *text = unit_read(dir, "history.jsonl");
		const char *second = strchr(text, '\n');
		struct stat st;

		CHECK(strncmp(text, "{\"t\":\"", 6) == 0);
		CHECK(strstr(text, ",\"event\":\"job\",\"node\":\"n\\\"1\",\"i\":0}\n") != NULL);
		CHECK(second != NULL && strstr(second + 1, ",\"i\":1}\n") != NULL);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	}

	/* a file that cannot be opened: the error names it */
	sb_init(&sb);
	history_begin(&sb, "presence", "n1");
	CHECK(history_append("/nonexistent/dir/history.jsonl", &sb, err, sizeof(err)) == -1);
	CHECK(strstr(err, "could not open file \"/nonexistent/dir/history.jsonl\"") != NULL);
	sb_free(&sb);

	/* a failing write, fsync or close is reported, and the lines before stay whole */
	for (int op = SPOOL_FAULT_OPEN; op <= SPOOL_FAULT_CLOSE; op++)
	{
		static const char *const ops[] = {"open", "write", "fsync", "close"};
		char		want[64];

		sb_init(&sb);
		history_begin(&sb, "presence", "n1");
		spool_fault_inject(op, 1);
		CHECK(history_append(path, &sb, err, sizeof(err)) == -1);
		spool_fault_inject(op, 0);
		snprintf(want, sizeof(want), "could not %s file", ops[op]);
		CHECK(strstr(err, want) != NULL && strstr(err, "Input/output error") != NULL);
		sb_free(&sb);
	}
	CHECK(strstr(unit_read(dir, "history.jsonl"), ",\"i\":1}\n") != NULL);
}
