/*
 * test_plugins.c -- the plugin line format, real plugins under a deadline,
 * and nvidia-smi (a stand-in in tests/fixtures/gpu).
 *
 * The plugins are shell scripts written into a scratch directory: a good
 * one, one with labels, one that hangs (and leaves a child behind), one
 * that crashes, one that exits non-zero, one printing garbage, one without
 * "#!", one writing more than EXEC_MAX_OUTPUT, one that reports whether it
 * sees PG* variables, plus files that must not run: not executable, a dot
 * file, a directory, a file everyone may write.
 */
#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 1500

/* Writes dir/name with content and mode. */
static void
put(const char *dir, const char *name, const char *content, mode_t mode)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(content, f);
	CHECK(fclose(f) == 0);
	CHECK(chmod(path, mode) == 0);
}

/* Returns the message of problem source in problems, or "" when there is none. */
static const char *
problem(const StrList *problems, const char *source)
{
	for (int i = 0; i + 1 < problems->n; i += 2)
		if (strcmp(problems->items[i], source) == 0)
			return problems->items[i + 1];
	return "";
}

/* Runs plugins_parse on one text and checks the metrics JSON and the error (NULL: none). */
static void
expect_parse(const char *text, const char *json, const char *error)
{
	StrBuf		m;
	char		err[AGENT_ERRLEN] = "";
	int			rc;

	sb_init(&m);
	rc = plugins_parse("p", text, &m, err, sizeof(err));
	CHECK(rc == (error != NULL ? -1 : 0));
	CHECK_STR(m.data, json);
	if (strcmp(m.data, json) != 0)
		fprintf(stderr, "  %s\n  got  %s\n  want %s\n", text, m.data, json);
	if (error != NULL)
	{
		CHECK_STR(err, error);
		if (strcmp(err, error) != 0)
			fprintf(stderr, "  got error \"%s\"\n", err);
	}
	sb_free(&m);
}

/* The line format: every accepted shape, every garbage line. */
static void
test_format(void)
{
#define M(name, labels, value) "{\"plugin\":\"p\",\"name\":\"" name "\",\"labels\":{" labels "},\"value\":" value "}"
	expect_parse("a 1\n", M("a", "", "1"), NULL);
	expect_parse("  jobs_waiting   42  \r\n\n# comment\n   # indented comment\n", M("jobs_waiting", "", "42"), NULL);
	expect_parse("x.y:z_1 -2.5e3", M("x.y:z_1", "", "-2.5e3"), NULL);
	expect_parse("_ 0\nb\t0.25", M("_", "", "0") "," M("b", "", "0.25"), NULL);
	expect_parse("q{} 1", M("q", "", "1"), NULL);
	expect_parse("q{a=\"1\",b_2=\"x y\",} 7", M("q", "\"a\":\"1\",\"b_2\":\"x y\"", "7"), NULL);
	expect_parse("q{path=\"C:\\\\tmp\",say=\"\\\"hi\\\"\\n\"} 1",
				 M("q", "\"path\":\"C:\\\\tmp\",\"say\":\"\\\"hi\\\"\\n\"", "1"), NULL);
	expect_parse("q{u=\"caf\xc3\xa9 \xff\"} 1", M("q", "\"u\":\"caf\xc3\xa9 ?\"", "1"), NULL);
	/* a counter beyond int64 is a number too, sent as written */
	expect_parse("big 99999999999999999999", M("big", "", "99999999999999999999"), NULL);

	expect_parse("1abc 1", "", "line 1: invalid metric name: \"1abc 1\"");
	expect_parse("a-b 1", "", "line 1: expected white space before the value: \"a-b 1\"");
	expect_parse("novalue", "", "line 1: missing value: \"novalue\"");
	expect_parse("novalue   ", "", "line 1: missing value: \"novalue   \"");
	expect_parse("a 1 1700000000", "", "line 1: unexpected text after the value: \"a 1 1700000000\"");
	expect_parse("a abc", "", "line 1: the value is not a number: \"a abc\"");
	expect_parse("a NaN", "", "line 1: the value is not a number: \"a NaN\"");
	expect_parse("a +1", "", "line 1: the value is not a number: \"a +1\"");
	expect_parse("a 0x10", "", "line 1: the value is not a number: \"a 0x10\"");
	expect_parse("a 01", "", "line 1: the value is not a number: \"a 01\"");
	expect_parse("a 1e400", "", "line 1: the value is not a number: \"a 1e400\"");
	expect_parse("a [1]", "", "line 1: the value is not a number: \"a [1]\"");
	expect_parse("a \"1\"", "", "line 1: the value is not a number: \"a \"1\"\"");
	expect_parse("q{a=1} 1", "", "line 1: expected =\"...\" after a label name: \"q{a=1} 1\"");
	expect_parse("q{1a=\"x\"} 1", "", "line 1: invalid label name: \"q{1a=\"x\"} 1\"");
	expect_parse("q{a=\"x\" b=\"y\"} 1", "", "line 1: expected \",\" or \"}\" after a label: \"q{a=\"x\" b=\"y\"} 1\"");
	expect_parse("q{a=\"x\",a=\"y\"} 1", "", "line 1: duplicate label name: \"q{a=\"x\",a=\"y\"} 1\"");
	expect_parse("q{a=\"x} 1", "", "line 1: unterminated label value: \"q{a=\"x} 1\"");
	expect_parse("q{a=\"\\t\"} 1", "", "line 1: invalid escape in a label value: \"q{a=\"\\t\"} 1\"");
	expect_parse("q{a=\"x\"}1", "", "line 1: expected white space before the value: \"q{a=\"x\"}1\"");
	expect_parse("q {a=\"x\"} 1", "", "line 1: unexpected text after the value: \"q {a=\"x\"} 1\"");
	{
		char		line[200], want[200];

		memset(line, 'n', 129);
		strcpy(line + 129, " 1");	/* a name one byte too long */
		snprintf(want, sizeof(want), "line 1: invalid metric name: \"%.80s\"", line);
		expect_parse(line, "", want);
		strcpy(line, "q{");
		for (char c = 'a'; c <= 'q'; c++)	/* 17 labels */
			snprintf(line + strlen(line), sizeof(line) - strlen(line), "%c=\"1\",", c);
		strcat(line, "} 1");
		snprintf(want, sizeof(want), "line 1: more than 16 labels: \"%.80s\"", line);
		expect_parse(line, "", want);
	}
	/* good lines around garbage are kept; the count and the first bad one are told */
	expect_parse("good 1\nbad line\n\nalso 2\n$$ 3\n", M("good", "", "1") "," M("also", "", "2"),
				 "2 invalid lines, the first at line 2: the value is not a number: \"bad line\"");
	{
		StrBuf		text, m;
		char		err[AGENT_ERRLEN];

		sb_init(&text);
		sb_init(&m);
		for (int i = 0; i < 1001; i++)
			sb_printf(&text, "m%d %d\n", i, i);
		CHECK(plugins_parse("p", text.data, &m, err, sizeof(err)) == -1);
		CHECK_STR(err, "more than 1000 metrics; the rest were ignored");
		CHECK(strstr(m.data, "\"m999\"") != NULL && strstr(m.data, "\"m1000\"") == NULL);
		sb_free(&text);
		sb_free(&m);
	}
#undef M
}

/* Real plugins in a scratch directory, run the way collect.c runs them. */
static void
test_run(void)
{
	const char *dir = unit_tmpdir("plugins");
	char		child_file[4096], script[1024];
	StrList		paths, problems;
	StrBuf		metrics;
	ExecRun    *runs;
	char	  **argv;
	int64_t		t0;

	snprintf(child_file, sizeof(child_file), "%s/hang.child", dir);
	put(dir, "10-good.sh", "#!/bin/sh\necho 'load_jobs 3'\necho 'queue_depth 17'\n", 0755);
	put(dir, "20-labels.sh", "#!/bin/sh\necho 'disk_free{mount=\"/scratch\",kind=\"nvme\"} 1.5e12'\n", 0755);
	snprintf(script, sizeof(script), "#!/bin/sh\necho 'before_hang 1'\nprintf 'cut_short 12'\n"
			 "sleep 30 &\necho $! > %s\nwait\n", child_file);
	put(dir, "30-hang.sh", script, 0755);
	put(dir, "40-crash.sh", "#!/bin/sh\necho 'crash_metric 5'\nkill -SEGV $$\n", 0755);
	put(dir, "50-fail.sh", "#!/bin/sh\necho 'fail_metric 6'\nexit 3\n", 0755);
	put(dir, "60-garbage.sh", "#!/bin/sh\necho 'fine 1'\necho 'this is not a metric'\necho 'x = 3'\n", 0755);
	put(dir, "70-noshebang", "echo 'never 1'\n", 0755);
	put(dir, "80-big.sh", "#!/bin/sh\nyes 'big_metric_with_a_name_long_enough_that_64_KiB_hold_fewer_than_a_thousand_lines 0'"
		" | head -n 1000\n", 0755);
	/* the child writes its pid once in its own session: only then may the plugin exit */
	snprintf(script, sizeof(script), "#!/bin/sh\necho 'escaper 1'\n"
			 "setsid sh -c 'echo $$ > %s/escape.child; exec sleep 30' &\n"
			 "while [ ! -s %s/escape.child ]; do sleep 0.01; done\n", dir, dir);
	put(dir, "85-escape.sh", script, 0755);
	put(dir, "90-env.sh", "#!/bin/sh\necho \"pg_vars $(env | grep -c '^PG')\"\necho \"stderr is ignored\" >&2\n", 0755);
	put(dir, "README", "#!/bin/sh\necho 'readme 1'\n", 0644);
	put(dir, ".hidden.sh", "#!/bin/sh\necho 'hidden 1'\n", 0755);
	put(dir, "95-open.sh", "#!/bin/sh\necho 'open 1'\n", 0777);
	snprintf(script, sizeof(script), "%s/subdir", dir);
	CHECK(mkdir(script, 0755) == 0);
	setenv("PGPASSWORD", "secret", 1);

	strlist_init(&paths);
	strlist_init(&problems);
	sb_init(&metrics);
	plugins_list(dir, &paths, &problems);
	CHECK(paths.n == 10);
	CHECK(problems.n == 2 && strcmp(problem(&problems, "plugins"), "plugin \"95-open.sh\" is writable by everyone and was not run") == 0);
	runs = xmalloc(sizeof(ExecRun) * (size_t) paths.n);
	argv = xmalloc(sizeof(char *) * (size_t) paths.n * 2);
	for (int i = 0; i < paths.n; i++)
	{
		argv[2 * i] = paths.items[i];
		argv[2 * i + 1] = NULL;
		runs[i].argv = &argv[2 * i];
	}
	t0 = proc_now_ms();
	collect_exec_all(runs, paths.n, TIMEOUT_MS);
	CHECK(proc_now_ms() - t0 < TIMEOUT_MS + 1000);	/* side by side: one timeout in all */
	for (int i = 0; i < paths.n; i++)
	{
		plugins_report(&runs[i], TIMEOUT_MS, &metrics, &problems);
		sb_free(&runs[i].out);
	}
	unsetenv("PGPASSWORD");

#define P(plugin, name, labels, value) "{\"plugin\":\"" plugin "\",\"name\":\"" name "\",\"labels\":{" labels "},\"value\":" value "}"
	{
		const char *want = P("10-good.sh", "load_jobs", "", "3") "," P("10-good.sh", "queue_depth", "", "17") ","
			P("20-labels.sh", "disk_free", "\"mount\":\"/scratch\",\"kind\":\"nvme\"", "1.5e12") ","
			P("30-hang.sh", "before_hang", "", "1") "," P("40-crash.sh", "crash_metric", "", "5") ","
			P("50-fail.sh", "fail_metric", "", "6") "," P("60-garbage.sh", "fine", "", "1") ","
			P("80-big.sh", "big_metric_with_a_name_long_enough_that_64_KiB_hold_fewer_than_a_thousand_lines", "", "0") ",";

		CHECK(strncmp(metrics.data, want, strlen(want)) == 0);
		if (strncmp(metrics.data, want, strlen(want)) != 0)
			fprintf(stderr, "  got  %.*s\n  want %s\n", (int) strlen(want), metrics.data, want);
	}
	CHECK(strstr(metrics.data, "cut_short") == NULL);	/* the hung plugin's unfinished line */
	CHECK(strstr(metrics.data, "never") == NULL && strstr(metrics.data, "readme") == NULL &&
		  strstr(metrics.data, "hidden") == NULL && strstr(metrics.data, "\"open\"") == NULL);
	{
		size_t		n = strlen(metrics.data);
		const char *tail = P("90-env.sh", "pg_vars", "", "0");

		CHECK(n > strlen(tail) && strcmp(metrics.data + n - strlen(tail), tail) == 0);
	}
	CHECK_STR(problem(&problems, "plugin:10-good.sh"), "");
	CHECK_STR(problem(&problems, "plugin:20-labels.sh"), "");
	CHECK_STR(problem(&problems, "plugin:30-hang.sh"), "timed out after 1500 ms and was killed");
	CHECK_STR(problem(&problems, "plugin:40-crash.sh"), "was killed by signal 11 (Segmentation fault)");
	CHECK_STR(problem(&problems, "plugin:50-fail.sh"), "exited with status 3");
	CHECK_STR(problem(&problems, "plugin:60-garbage.sh"),
			  "2 invalid lines, the first at line 2: unexpected text after the value: \"this is not a metric\"");
	CHECK_STR(problem(&problems, "plugin:70-noshebang"), "could not execute: Exec format error");
	CHECK_STR(problem(&problems, "plugin:80-big.sh"), "wrote more than 65536 bytes; the rest was ignored");
	CHECK_STR(problem(&problems, "plugin:85-escape.sh"),
			  "exited, but a process it started in another session kept its output open; it was read for 200 ms more");
	CHECK(strstr(metrics.data, P("85-escape.sh", "escaper", "", "1")) != NULL);
	CHECK_STR(problem(&problems, "plugin:90-env.sh"), "");
	CHECK(problems.n == 2 * 8);
#undef P
	kill((pid_t) atol(unit_read(dir, "escape.child")), SIGKILL);	/* it left our reach on purpose */

	/* the hung plugin's child went down with its process group */
	{
		long		child = atol(unit_read(dir, "hang.child"));
		struct timespec ts = {0, 10000000};

		for (t0 = proc_now_ms(); child > 0 && kill((pid_t) child, 0) == 0 && proc_now_ms() - t0 < 3000;)
			nanosleep(&ts, NULL);
		CHECK(child > 0 && kill((pid_t) child, 0) < 0);
	}
	free(runs);
	free(argv);
	strlist_free(&paths);
	strlist_free(&problems);
	sb_free(&metrics);

	/* a missing plugin directory is a problem, not a failure */
	strlist_init(&paths);
	strlist_init(&problems);
	plugins_list("tests/tmp/no-such-plugin-dir", &paths, &problems);
	CHECK(paths.n == 0 && problems.n == 2);
	CHECK_STR(problem(&problems, "plugins"),
			  "could not open directory \"tests/tmp/no-such-plugin-dir\": No such file or directory");
	strlist_free(&paths);
	strlist_free(&problems);
}

/* The example plugin shipped in plugins/ reports its three metrics cleanly. */
static void
test_example(void)
{
	char	   *argv[] = {"plugins/example.sh", NULL};
	ExecRun		r;
	StrBuf		metrics;
	StrList		problems;

	sb_init(&metrics);
	strlist_init(&problems);
	r.argv = argv;
	collect_exec_all(&r, 1, 5000);
	plugins_report(&r, 5000, &metrics, &problems);
	CHECK(problems.n == 0);
	CHECK(strstr(metrics.data, "\"name\":\"users_logged_in\"") != NULL &&
		  strstr(metrics.data, "\"name\":\"scratch_free_bytes\",\"labels\":{\"path\":\"/tmp\"}") != NULL &&
		  strstr(metrics.data, "\"name\":\"procs_uninterruptible\"") != NULL);
	sb_free(&r.out);
	sb_free(&metrics);
	strlist_free(&problems);
}

/* nvidia-smi: found on a PATH or not, its CSV with unavailable fields, garbage. */
static void
test_gpu(void)
{
	char		path[4096], err[AGENT_ERRLEN];
	CollectList l = {0};

	CHECK(collect_gpu_find("/nonexistent:tests/fixtures/gpu/noexec::tests/fixtures/gpu/bin", path, sizeof(path)) == 1);
	CHECK_STR(path, "tests/fixtures/gpu/bin/nvidia-smi");
	CHECK(collect_gpu_find("tests/fixtures/gpu/noexec:", path, sizeof(path)) == 0);
	CHECK(collect_gpu_find("", path, sizeof(path)) == 0);

	CHECK(collect_gpu_parse("0, 37, 1234, 16384, 45\n1, [N/A], 0, 81920, [Not Supported]\n\n", &l, err, sizeof(err)) == 0);
	CHECK(l.n == 2);
	if (l.n == 2)
	{
		GpuStat    *g = (GpuStat *) l.items;

		CHECK(g[0].index == 0 && g[0].util == 37 && g[0].mem_used_mib == 1234 &&
			  g[0].mem_total_mib == 16384 && g[0].celsius == 45);
		CHECK(g[1].index == 1 && g[1].util == -1 && g[1].mem_used_mib == 0 &&
			  g[1].mem_total_mib == 81920 && g[1].celsius == -1);
	}
	collect_list_free(&l);
	CHECK(collect_gpu_parse("", &l, err, sizeof(err)) == 0 && l.n == 0);
	CHECK(collect_gpu_parse("No devices were found\n", &l, err, sizeof(err)) == -1);
	CHECK_STR(err, "nvidia-smi printed an unexpected line: \"No devices were found\"");
	CHECK(collect_gpu_parse("0, 1, 2, 3\n", &l, err, sizeof(err)) == -1);
	CHECK(collect_gpu_parse("0, 1, 2, 3, 4, 5\n", &l, err, sizeof(err)) == -1);
	CHECK(collect_gpu_parse("0, 1x, 2, 3, 4\n", &l, err, sizeof(err)) == -1);
	CHECK(collect_gpu_parse("[N/A], 1, 2, 3, 4\n", &l, err, sizeof(err)) == -1);
	collect_list_free(&l);
}

void
test_plugins(void)
{
	test_format();
	test_run();
	test_example();
	test_gpu();
}
