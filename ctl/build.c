/*
 * build.c -- dispatchctl build: ask for a file of a workspace to be rebuilt and, with
 * --wait, wait for the rebuild that builds it.
 *
 * dispatch.request_build() queues the request and wakes the scheduler, which starts
 * the workspace's next rebuild (sql/src/79_rebuilds.sql): at once, or once the rebuild
 * running now has ended.  The rebuild that takes the request is the workspace's first
 * one newer than every joblist there was when the request committed: request_build
 * locks the workspace until then, and a rebuild is planned only under that lock.  So
 * --wait asks, reads the newest joblist id and the request's change in one
 * transaction, then waits, woken by dispatch_events' joblist events, until such a
 * rebuild exists, and follows it to its end as wait does (same output, same exit
 * status).  A rebuild that could not be submitted takes the request without a
 * joblist: build then says why (the file's reason) and fails.  That is seen on the
 * safety read, since no event tells of it.
 */
#include "dispatchctl.h"

#include <getopt.h>
#include <string.h>

/* The newest joblist and the request's change, right after request_build. */
static const char mark_sql[] =
	"SELECT coalesce(max(joblist_id), 0),"
	"       (SELECT max(c.change_id) FROM dispatch.artefact_changes c"
	"         WHERE c.workspace = $1 AND c.kind = 'request' AND c.path = $2)"
	"  FROM dispatch.joblists";

/* The rebuild of workspace $1 newer than joblist $3, whether the change $4 still
   waits, and what the file $2 says of itself. */
static const char rebuild_sql[] =
	"SELECT (SELECT min(l.joblist_id) FROM dispatch.joblists l"
	"         WHERE l.joblist_id > $3::bigint AND l.name = 'rebuild ' || $1"
	"           AND EXISTS (SELECT FROM dispatch.jobs j"
	"                        WHERE j.joblist_id = l.joblist_id AND j.builds = $1)),"
	"       EXISTS (SELECT FROM dispatch.artefact_changes c WHERE c.change_id = $4::bigint),"
	"       (SELECT a.reason FROM dispatch.artefact_status a"
	"         WHERE a.workspace = $1 AND a.path = $2)";

/* Runs sql without parameters (BEGIN, COMMIT); EXIT_OK or EXIT_ERROR. */
static int
command(Ctl *ctl, const char *sql)
{
	PGresult   *res = conn_exec(ctl, sql, 0, NULL);

	PQclear(res);
	return res ? EXIT_OK : EXIT_ERROR;
}

/* Asks for the build; with mark, also fills mark[0] (the newest joblist id) and
   mark[1] (the request's change id).  Returns EXIT_OK or EXIT_ERROR (printed). */
static int
request(Ctl *ctl, const char *const *params, char mark[2][32])
{
	PGresult   *res;

	if (mark && command(ctl, "BEGIN") != EXIT_OK)
		return EXIT_ERROR;
	res = conn_exec(ctl, "SELECT dispatch.request_build($1, $2)", 2, params);
	if (res == NULL)
		return EXIT_ERROR;
	PQclear(res);
	if (mark == NULL)
		return EXIT_OK;
	if ((res = conn_exec(ctl, mark_sql, 2, params)) == NULL)
		return EXIT_ERROR;
	snprintf(mark[0], sizeof(mark[0]), "%s", PQgetvalue(res, 0, 0));
	snprintf(mark[1], sizeof(mark[1]), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return command(ctl, "COMMIT");
}

/* Waits until the rebuild that takes the request has started and follows it to its
   end; returns wait's exit status. */
static int
wait_rebuild(Ctl *ctl, const char *const *params, char mark[2][32], long timeout,
			 const struct timespec *start)
{
	const char *values[4] = {params[0], params[1], mark[0], mark[1]};
	char		id[32];

	for (;;)
	{
		PGresult   *res = conn_exec(ctl, rebuild_sql, 4, values);
		long		left_ms;

		if (res == NULL)
			return EXIT_ERROR;
		if (!PQgetisnull(res, 0, 0))
		{
			snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
			PQclear(res);
			return follow_joblist(ctl, id, timeout, start);
		}
		if (PQgetvalue(res, 0, 1)[0] != 't')
		{
			ctl_error("no rebuild of workspace \"%s\" was started: %s", params[0],
					  PQgetisnull(res, 0, 2) ? "no reason given" : PQgetvalue(res, 0, 2));
			PQclear(res);
			return EXIT_FAILED;
		}
		PQclear(res);
		if ((left_ms = follow_left_ms(timeout, start)) < 0)
		{
			ctl_error("no rebuild of workspace \"%s\" has started after %ld seconds",
					  params[0], timeout);
			return EXIT_TIMEOUT;
		}
		if (conn_wait(ctl, (int) left_ms, follow_relevant, &(Watch) {.any_joblist = 1}) < 0)
			return EXIT_ERROR;
	}
}

/* dispatchctl build [--wait [--timeout SECONDS]] WORKSPACE PATH */
int
cmd_build(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"wait", no_argument, NULL, 'w'}, {"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0}
	};
	int			wait = 0;
	long		timeout = -1;
	int			opt;
	const char *params[2];
	char		mark[2][32];
	struct timespec start;

	while ((opt = ctl_getopt("build", argc, argv, "", opts)) >= 0)
	{
		if (opt == 'w')
			wait = 1;
		else if (ctl_parse_count("build", "--timeout", optarg, 0, 31536000, &timeout) != EXIT_OK)
			return EXIT_USAGE;
	}
	if (opt == -2)
		return EXIT_USAGE;
	if (timeout >= 0 && !wait)
		return ctl_usage_error("build", "--timeout needs --wait");
	if (argc - optind != 2)
		return ctl_usage_error("build", "expected a WORKSPACE and a PATH");
	params[0] = argv[optind];
	params[1] = argv[optind + 1];
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (conn_open(ctl, 1) != EXIT_OK)
		return EXIT_ERROR;
	/* LISTEN before asking: the rebuild's joblist event cannot come before it */
	if (wait && conn_listen(ctl, "dispatch_events") != EXIT_OK)
		return EXIT_ERROR;
	if (request(ctl, params, wait ? mark : NULL) != EXIT_OK)
		return EXIT_ERROR;
	if (ctl->json && !wait)
		return output_json(json_pack("{sssssb}", "workspace", params[0], "path", params[1],
									 "requested", 1));
	if (!ctl->json)
		printf("requested a build of \"%s\" in workspace \"%s\"\n", params[1], params[0]);
	if (!wait)
		return EXIT_OK;
	fflush(stdout);
	return wait_rebuild(ctl, params, mark, timeout, &start);
}
