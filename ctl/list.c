/*
 * list.c -- the listings (status, jobs, nodes, resources, goals, alerts, artefacts,
 * top) and cancel.
 *
 * Each listing is one parameterised query over a reporting view and the columns its
 * table shows; --json prints every column the query returns.  Listings read (on a
 * standby when the connection allows, see conn.c), cancel changes.  Row counts are
 * bounded by --limit (at most LIST_MAX_LIMIT), so no listing can pull a whole
 * history table through one result.
 */
#include "dispatchctl.h"

#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIST_MAX_LIMIT 100000

/* The query of a joblist given by id or name (the latest of that name): its id. */
static const char joblist_id_sql[] =
	"SELECT coalesce((SELECT joblist_id FROM dispatch.joblists"
	"                  WHERE $1 ~ '^[0-9]{1,18}$' AND joblist_id = $1::bigint),"
	"                (SELECT max(joblist_id) FROM dispatch.joblists WHERE name = $1))";

static const Column joblist_columns[] = {
	{"joblist_id", "ID"}, {"name", "NAME"}, {"state", "STATE"}, {"current_stage", "STAGE"},
	{"progress", "DONE"}, {"submitted_by", "BY"}, {"submitted", "SUBMITTED"},
	{"reason", "REASON"}, {NULL, NULL}
};

static const Column job_columns[] = {
	{"job_id", "ID"}, {"joblist_id", "JOBLIST"}, {"stage", "STAGE"}, {"name", "NAME"},
	{"state", "STATE"}, {"node", "NODE"}, {"attempt", "TRY"}, {"exit_code", "EXIT"},
	{"reason", "REASON"}, {NULL, NULL}
};

/* Shown for one joblist, a line each, above its jobs. */
static const Column joblist_record[] = {
	{"joblist_id", "joblist"}, {"name", "name"}, {"state", "state"},
	{"current_stage", "stage"}, {"progress", "done"}, {"submitted_by", "submitted by"},
	{"submitted_at", "submitted at"}, {"started_at", "started at"},
	{"finished_at", "finished at"}, {"reason", "reason"}, {NULL, NULL}
};

#define JOBLIST_SELECT \
	"SELECT *, format('%s/%s', jobs_succeeded, jobs_total) AS progress," \
	"       to_char(submitted_at, 'YYYY-MM-DD HH24:MI:SS') AS submitted" \
	"  FROM dispatch.joblist_status "

#define JOB_SELECT \
	"SELECT job_id, joblist_id, joblist, stage, name, state, node, attempt, exit_code, signal," \
	"       resources, reason, assigned_at, started_at, finished_at, timed_out," \
	"       cancel_requested, output_bytes, output_truncated FROM dispatch.job_status "

/* Runs a listing: connect for reading, query, print; returns the exit code. */
static int
list(Ctl *ctl, const char *sql, int nparams, const char *const *params, const Column *columns)
{
	PGresult   *res;
	int			rc;

	if (conn_open(ctl, 0) != EXIT_OK)
		return EXIT_ERROR;
	res = conn_exec(ctl, sql, nparams, params);
	if (res == NULL)
		return EXIT_ERROR;
	rc = output_result(ctl, res, columns);
	PQclear(res);
	return rc;
}

/* Parses the options of a listing command: the long options given, option i stored in
   values[i] ("" when it takes no value); returns EXIT_OK or EXIT_USAGE. */
static int
list_options(const char *command, int argc, char **argv, const struct option *opts,
			 const char **values)
{
	int			i;

	while ((i = ctl_getopt(command, argc, argv, "", opts)) >= 0)
		values[i] = optarg ? optarg : "";
	return i == -1 ? EXIT_OK : EXIT_USAGE;
}

/* Writes the --limit given as value (NULL: def) into buf, the text of a $n; EXIT_OK, or
   EXIT_USAGE with a message when it is not a count up to LIST_MAX_LIMIT. */
static int
list_limit(const char *command, const char *value, long def, char *buf, size_t size)
{
	long		limit = def;

	if (value && ctl_parse_count(command, "--limit", value, 1, LIST_MAX_LIMIT, &limit) != EXIT_OK)
		return EXIT_USAGE;
	snprintf(buf, size, "%ld", limit);
	return EXIT_OK;
}

/* Resolves JOBLIST (an id or a name) to an id in buf; EXIT_OK, or EXIT_ERROR when none. */
int
list_joblist_id(Ctl *ctl, const char *arg, char *buf, size_t size)
{
	const char *params[1] = {arg};
	PGresult   *res = conn_exec(ctl, joblist_id_sql, 1, params);

	if (res == NULL)
		return EXIT_ERROR;
	if (PQgetisnull(res, 0, 0))
	{
		ctl_error("joblist \"%s\" does not exist", arg);
		PQclear(res);
		return EXIT_ERROR;
	}
	snprintf(buf, size, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return EXIT_OK;
}

/* Shows one joblist and its jobs. */
static int
show_joblist(Ctl *ctl, const char *arg)
{
	char		id[32];
	const char *params[1] = {id};
	PGresult   *jl;
	PGresult   *jobs;
	int			rc = EXIT_ERROR;

	if (conn_open(ctl, 0) != EXIT_OK || list_joblist_id(ctl, arg, id, sizeof(id)) != EXIT_OK)
		return EXIT_ERROR;
	jl = conn_exec(ctl, JOBLIST_SELECT "WHERE joblist_id = $1", 1, params);
	jobs = jl ? conn_exec(ctl, JOB_SELECT "WHERE joblist_id = $1 ORDER BY job_id", 1, params) : NULL;
	if (jl && jobs && PQntuples(jl) == 1)
	{
		if (ctl->json)
			rc = output_json(json_pack("{soso}", "joblist", output_row_json(jl, 0),
									   "jobs", output_rows_json(jobs)));
		else
		{
			output_record(ctl, jl, 0, joblist_record);
			fputc('\n', stdout);
			output_table(ctl, jobs, job_columns);
			rc = EXIT_OK;
		}
	}
	PQclear(jl);
	PQclear(jobs);
	return rc;
}

/* dispatchctl status [--all] [--limit N] [JOBLIST] */
int
cmd_status(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"all", no_argument, NULL, 0}, {"limit", required_argument, NULL, 1}, {NULL, 0, NULL, 0}
	};
	const char *v[16] = {0};
	char		limit_s[24];
	const char *params[2] = {NULL, limit_s};

	if (list_options("status", argc, argv, opts, v) != EXIT_OK ||
		list_limit("status", v[1], 50, limit_s, sizeof(limit_s)) != EXIT_OK)
		return EXIT_USAGE;
	if (argc - optind > 1)
		return ctl_usage_error("status", "expected at most one JOBLIST");
	if (argc - optind == 1)
		return show_joblist(ctl, argv[optind]);
	params[0] = v[0] ? "true" : "false";
	return list(ctl, JOBLIST_SELECT
				"WHERE $1::boolean OR state IN ('queued', 'running')"
				"   OR finished_at > now() - interval '1 day'"
				" ORDER BY joblist_id DESC LIMIT $2::int", 2, params, joblist_columns);
}

/* dispatchctl jobs [--joblist JOBLIST] [--state STATE] [--node NODE] [--limit N] */
int
cmd_jobs(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"joblist", required_argument, NULL, 0}, {"state", required_argument, NULL, 1},
		{"node", required_argument, NULL, 2}, {"limit", required_argument, NULL, 3},
		{NULL, 0, NULL, 0}
	};
	const char *v[16] = {0};
	char		limit_s[24];
	char		id[32];
	const char *params[4] = {NULL, NULL, NULL, limit_s};

	if (list_options("jobs", argc, argv, opts, v) != EXIT_OK ||
		list_limit("jobs", v[3], 100, limit_s, sizeof(limit_s)) != EXIT_OK)
		return EXIT_USAGE;
	if (argc > optind)
		return ctl_usage_error("jobs", "unexpected argument \"%s\"", argv[optind]);
	if (v[0])
	{
		if (conn_open(ctl, 0) != EXIT_OK || list_joblist_id(ctl, v[0], id, sizeof(id)) != EXIT_OK)
			return EXIT_ERROR;
		params[0] = id;
	}
	params[1] = v[1];
	params[2] = v[2];
	return list(ctl, JOB_SELECT
				"WHERE ($1::bigint IS NULL OR joblist_id = $1::bigint)"
				"  AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR node = $3)"
				" ORDER BY job_id DESC LIMIT $4::int", 4, params, job_columns);
}

/* A listing without options or arguments: the command, its query and table columns. */
typedef struct Plain
{
	const char *command;
	const char *sql;
	Column		columns[12];
} Plain;

static const Plain nodes_listing = {"nodes",
	"SELECT *, to_char(last_heartbeat, 'YYYY-MM-DD HH24:MI:SS') AS heartbeat"
	" FROM dispatch.node_status ORDER BY node",
	{{"node", "NODE"}, {"state", "STATE"}, {"running_jobs", "JOBS"}, {"cpus", "CPUS"},
	 {"memory_mb", "MEMORY_MB"}, {"heartbeat", "HEARTBEAT"}, {"labels", "LABELS"}}};

static const Plain goals_listing = {"goals",
	"SELECT *, to_char(next_fire, 'YYYY-MM-DD HH24:MI:SS') AS next"
	" FROM dispatch.goal_status ORDER BY name",
	{{"name", "NAME"}, {"kind", "KIND"}, {"schedule", "SCHEDULE"}, {"active", "ACTIVE"},
	 {"next", "NEXT"}, {"last_outcome", "LAST"}, {"instances_running", "RUNNING"},
	 {"owner", "OWNER"}}};

static const Plain alerts_listing = {"alerts",
	"SELECT *, to_char(since, 'YYYY-MM-DD HH24:MI:SS') AS since_at"
	" FROM dispatch.alert_status ORDER BY rule, node",
	{{"rule", "RULE"}, {"node", "NODE"}, {"state", "STATE"}, {"severity", "SEVERITY"},
	 {"metric", "METRIC"}, {"value", "VALUE"}, {"op", "OP"}, {"threshold", "THRESHOLD"},
	 {"since_at", "SINCE"}}};

/* Runs a plain listing, refusing options and arguments it does not take. */
static int
plain(Ctl *ctl, int argc, char **argv, const Plain *p)
{
	static const struct option none[] = {{NULL, 0, NULL, 0}};
	const char *v[16] = {0};

	if (list_options(p->command, argc, argv, none, v) != EXIT_OK)
		return EXIT_USAGE;
	if (argc > optind)
		return ctl_usage_error(p->command, "unexpected argument \"%s\"", argv[optind]);
	return list(ctl, p->sql, 0, NULL, p->columns);
}

/* dispatchctl nodes */
int
cmd_nodes(Ctl *ctl, int argc, char **argv)
{
	return plain(ctl, argc, argv, &nodes_listing);
}

/* dispatchctl goals */
int
cmd_goals(Ctl *ctl, int argc, char **argv)
{
	return plain(ctl, argc, argv, &goals_listing);
}

/* dispatchctl alerts */
int
cmd_alerts(Ctl *ctl, int argc, char **argv)
{
	return plain(ctl, argc, argv, &alerts_listing);
}

/* dispatchctl resources [--node NODE] */
int
cmd_resources(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 0}, {NULL, 0, NULL, 0}};
	static const Column columns[] = {
		{"node", "NODE"}, {"type", "TYPE"}, {"ident", "IDENT"}, {"job_id", "JOB"},
		{"amount", "AMOUNT"}, {"capacity", "CAPACITY"}, {NULL, NULL}
	};
	const char *v[16] = {0};

	if (list_options("resources", argc, argv, opts, v) != EXIT_OK)
		return EXIT_USAGE;
	if (argc > optind)
		return ctl_usage_error("resources", "unexpected argument \"%s\"", argv[optind]);
	return list(ctl, "SELECT * FROM dispatch.resource_status WHERE $1::text IS NULL OR node = $1"
				" ORDER BY node NULLS FIRST, type, ident, job_id", 1, v, columns);
}

/* dispatchctl artefacts [--limit N] [WORKSPACE] */
int
cmd_artefacts(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"limit", required_argument, NULL, 0}, {NULL, 0, NULL, 0}};
	static const Column columns[] = {
		{"workspace", "WORKSPACE"}, {"path", "PATH"}, {"state", "STATE"}, {"rule", "RULE"},
		{"reason", "REASON"}, {"sha", "SHA256"}, {"built_in", "BUILT_IN"}, {NULL, NULL}
	};
	const char *v[16] = {0};
	char		limit_s[24];
	const char *params[2] = {NULL, limit_s};

	if (list_options("artefacts", argc, argv, opts, v) != EXIT_OK ||
		list_limit("artefacts", v[0], 1000, limit_s, sizeof(limit_s)) != EXIT_OK)
		return EXIT_USAGE;
	if (argc - optind > 1)
		return ctl_usage_error("artefacts", "expected at most one WORKSPACE");
	params[0] = argc > optind ? argv[optind] : NULL;
	return list(ctl, "SELECT *, left(sha256, 12) AS sha FROM dispatch.artefact_status"
				" WHERE $1::text IS NULL OR workspace = $1"
				" ORDER BY workspace, path LIMIT $2::int", 2, params, columns);
}

/* dispatchctl top [--interval SECONDS] [--count N] */
int
cmd_top(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 0}, {"count", required_argument, NULL, 1},
		{NULL, 0, NULL, 0}
	};
	static const Column columns[] = {
		{"node", "NODE"}, {"state", "STATE"}, {"cpu_pct", "CPU%"}, {"mem_pct", "MEM%"},
		{"disk_pct", "DISK%"}, {"load1", "LOAD"}, {"temp_max", "TEMP"},
		{"running_jobs", "JOBS"}, {"sampled", "SAMPLED"}, {NULL, NULL}
	};
	const char *v[16] = {0};
	long		interval = 2;
	long		count = -1;
	int			screen = isatty(STDOUT_FILENO) && !ctl->json;

	if (list_options("top", argc, argv, opts, v) != EXIT_OK ||
		(v[0] && ctl_parse_count("top", "--interval", v[0], 1, 3600, &interval) != EXIT_OK) ||
		(v[1] && ctl_parse_count("top", "--count", v[1], 1, 1000000, &count) != EXIT_OK))
		return EXIT_USAGE;
	if (argc > optind)
		return ctl_usage_error("top", "unexpected argument \"%s\"", argv[optind]);
	if (conn_open(ctl, 0) != EXIT_OK)
		return EXIT_ERROR;
	for (long i = 0; count < 0 || i < count; i++)
	{
		PGresult   *res;

		if (i > 0)
			poll(NULL, 0, (int) interval * 1000);	/* a display refresh, not a work poll */
		res = conn_exec(ctl, "SELECT *, to_char(sampled_at, 'HH24:MI:SS') AS sampled"
						" FROM dispatch.node_overview ORDER BY node", 0, NULL);
		if (res == NULL)
			return EXIT_ERROR;
		if (screen)
			fputs("\033[H\033[2J", stdout);
		if (ctl->json)
		{
			json_t	   *rows = output_rows_json(res);

			json_dumpf(rows, stdout, JSON_COMPACT);	/* one line per refresh */
			fputc('\n', stdout);
			json_decref(rows);
		}
		else
			output_table(ctl, res, columns);
		PQclear(res);
		fflush(stdout);
	}
	return EXIT_OK;
}

/* Cancels one joblist (id or name) or, with job, one job; returns the exit code. */
static int
cancel_one(Ctl *ctl, const char *arg, int job)
{
	const char *params[1] = {arg};
	int			is_id = ctl_is_id(arg);
	PGresult   *res;
	int			done;

	res = conn_exec(ctl, job ? "SELECT dispatch.cancel_job($1::bigint)::int"
					: is_id ? "SELECT dispatch.cancel_joblist($1::bigint)::int"
					: "SELECT dispatch.cancel_joblist($1::text)", 1, params);
	if (res == NULL)
		return EXIT_ERROR;
	done = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (job && done)
		printf("job %s: cancel requested\n", arg);
	else if (is_id && done)
		printf("joblist %s: cancelled\n", arg);
	else if (!is_id)
		printf("%d joblists named \"%s\": cancelled\n", done, arg);
	return EXIT_OK;
}

/* dispatchctl cancel JOBLIST... | cancel --job JOB */
int
cmd_cancel(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"job", no_argument, NULL, 0}, {NULL, 0, NULL, 0}};
	const char *v[16] = {0};
	int			rc = EXIT_OK;

	if (list_options("cancel", argc, argv, opts, v) != EXIT_OK)
		return EXIT_USAGE;
	if (argc == optind)
		return ctl_usage_error("cancel", v[0] ? "expected a JOB" : "expected a JOBLIST");
	if (v[0] && argc - optind != 1)
		return ctl_usage_error("cancel", "--job takes exactly one JOB");
	if (v[0] && !ctl_is_id(argv[optind]))
		return ctl_usage_error("cancel", "JOB must be a job id, not \"%s\"", argv[optind]);
	if (conn_open(ctl, 1) != EXIT_OK)
		return EXIT_ERROR;
	for (int i = optind; i < argc && rc == EXIT_OK; i++)
		rc = cancel_one(ctl, argv[i], v[0] != NULL);
	return rc;
}
