/*
 * routes.c: what /api/v1 serves, in one table.
 *
 * Each route names its method and path, documents itself (the OpenAPI document is
 * generated from this table, so the two cannot disagree) and, for most routes, holds
 * the SQL that answers it: one statement returning one value, the response body, built
 * as JSON by PostgreSQL itself.  The statement runs as the caller's role, so every
 * refusal is the database's own (42501 becomes 403 with its message); a NULL answer
 * means "no such object" (404).  Parameters reach the SQL as $1, $2, ... in the order
 * listed, always as text: the SQL casts them, and a bad value is a SQL error (400).
 * Listings are capped (limit at most 1000, a log read at most 256 kB).  A body sent
 * as application/yaml is turned into JSON first (lib/yamljson.c), and an error whose
 * detail names a JSON path gets the line and column of that place in the YAML.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pqerror.h"
#include "web.h"
#include "yamljson.h"

/* Progress of every stage of joblist s: jobs in total, running, succeeded, failed. */
#define STAGES_JSON \
	"(SELECT json_agg(json_build_object('stage', st.stage, 'name', st.name, " \
	"'total', c.total, 'running', c.running, 'succeeded', c.succeeded, 'failed', c.failed) " \
	"ORDER BY st.stage) FROM dispatch.stages st CROSS JOIN LATERAL (" \
	"SELECT count(*) AS total, count(*) FILTER (WHERE j.state IN ('assigned', 'running')) AS running, " \
	"count(*) FILTER (WHERE j.state = 'succeeded') AS succeeded, " \
	"count(*) FILTER (WHERE j.state IN ('failed', 'lost', 'cancelled', 'skipped')) AS failed " \
	"FROM dispatch.jobs j WHERE j.joblist_id = st.joblist_id AND j.stage = st.stage) c " \
	"WHERE st.joblist_id = s.joblist_id)"

/* The text of key k of body b; a body without it is refused (SQL/JSON's 2203A, a 400). */
#define JSON_KEY(k) "jsonb_path_query_first(b, 'strict $." k "') #>> '{}'"

/* A listing's limit: $n, 100 by default, at most 1000. */
#define LIMIT(n) " LIMIT least(coalesce($" #n "::int, 100), 1000)"

#define P_ID {"id", PARAM_PATH, "integer", true, "The id."}
#define P_LIMIT {"limit", PARAM_QUERY, "integer", false, "At most this many (100 by default, 1000 at most)."}
#define P_GOAL {"name", PARAM_PATH, "string", true, "The goal's name."}
#define P_NODE {"node", PARAM_PATH, "string", true, "The node's name."}

/* /metrics in Prometheus' text format: queue, scheduler, node states, node samples. */
static const char prometheus_sql[] =
	"WITH q AS (SELECT st AS state, (SELECT count(*) FROM dispatch.jobs j WHERE j.state = st) AS n "
	"      FROM unnest(ARRAY['pending', 'assigned', 'running', 'succeeded', 'failed', "
	"                        'cancelled', 'lost', 'skipped']) st), "
	"l AS (SELECT st AS state, (SELECT count(*) FROM dispatch.joblists j WHERE j.state = st) AS n "
	"      FROM unnest(ARRAY['queued', 'running', 'succeeded', 'failed', 'cancelled']) st), "
	"s AS (SELECT * FROM dispatch.scheduler_stats()), "
	"n AS (SELECT n.node, st, (n.state = st)::int AS v FROM dispatch.node_status n, "
	"      unnest(ARRAY['online', 'offline', 'draining']) st), "
	"m AS (SELECT node, metric, value FROM dispatch.metric_latest) "
	"SELECT concat_ws(E'\\n', "
	"'# HELP dispatch_jobs Jobs by state.', '# TYPE dispatch_jobs gauge', "
	"(SELECT string_agg(format('dispatch_jobs{state=\"%s\"} %s', state, n), E'\\n') FROM q), "
	"'# HELP dispatch_joblists Joblists by state.', '# TYPE dispatch_joblists gauge', "
	"(SELECT string_agg(format('dispatch_joblists{state=\"%s\"} %s', state, n), E'\\n') FROM l), "
	"'# HELP dispatch_jobs_finished_per_second Jobs that finished in the last minute, per second.', "
	"'# TYPE dispatch_jobs_finished_per_second gauge', "
	"format('dispatch_jobs_finished_per_second %s', (SELECT round(count(*) / 60.0, 3) "
	"  FROM dispatch.jobs WHERE finished_at > now() - interval '1 minute')), "
	"'# HELP dispatch_scheduler_up Whether the scheduler runs on this server.', "
	"'# TYPE dispatch_scheduler_up gauge', "
	"format('dispatch_scheduler_up %s', (SELECT (pid IS NOT NULL)::int FROM s)), "
	"'# HELP dispatch_scheduler_cycles_total Scheduling cycles since the scheduler started.', "
	"'# TYPE dispatch_scheduler_cycles_total counter', "
	"format('dispatch_scheduler_cycles_total %s', (SELECT coalesce(cycles, 0) FROM s)), "
	"'# HELP dispatch_scheduler_jobs_assigned_total Jobs assigned since the scheduler started.', "
	"'# TYPE dispatch_scheduler_jobs_assigned_total counter', "
	"format('dispatch_scheduler_jobs_assigned_total %s', (SELECT coalesce(jobs_assigned, 0) FROM s)), "
	"'# HELP dispatch_scheduler_last_cycle_seconds Duration of the last scheduling cycle.', "
	"'# TYPE dispatch_scheduler_last_cycle_seconds gauge', "
	"format('dispatch_scheduler_last_cycle_seconds %s', (SELECT coalesce(last_cycle_ms, 0) / 1000.0 FROM s)), "
	"'# HELP dispatch_node_state Whether a node is in a state.', '# TYPE dispatch_node_state gauge', "
	"(SELECT string_agg(format('dispatch_node_state{node=\"%s\",state=\"%s\"} %s', node, st, v), "
	"  E'\\n' ORDER BY node, st) FROM n), "
	"'# HELP dispatch_node_metric The latest sample of each metric of each node.', "
	"'# TYPE dispatch_node_metric gauge', "
	"(SELECT string_agg(format('dispatch_node_metric{node=\"%s\",metric=\"%s\"} %s', node, "
	"  replace(replace(replace(metric, '\\', '\\\\'), '\"', '\\\"'), E'\\n', '\\n'), "
	"  CASE WHEN value = 'Infinity' THEN '+Inf' WHEN value = '-Infinity' THEN '-Inf' "
	"       ELSE value::text END), E'\\n' ORDER BY node, metric) FROM m)) || E'\\n'";

const Route web_routes[] = {
	{"GET", "/api/v1/openapi.json", "This document.", {{0}}, NULL, NULL, openapi_serve,
	 NULL, 200, false, true},
	{"GET", "/api/v1/session", "Who you are logged in as and what you may do.",
	 {{"read_only", PARAM_READONLY}},
	 "SELECT json_build_object('role', current_user, "
	 "'user', pg_has_role('dispatch_user', 'member'), "
	 "'admin', pg_has_role('dispatch_admin', 'member'), 'read_only', $1::boolean)"},
	{"GET", "/api/v1/events", "Live changes as Server-Sent Events (joblist, jobs, node, output).",
	 {{"follow", PARAM_QUERY, "integer", false,
	   "A job whose new output to announce (output events); you must be allowed to read it."}},
	 NULL, NULL, events_serve, "text/event-stream"},
	{"GET", "/api/v1/joblists", "Joblists, newest first, with the progress of each stage.",
	 {{"state", PARAM_QUERY, "string", false, "Only these states (a comma list)."}, P_LIMIT},
	 "SELECT coalesce(json_agg(l), '[]') FROM (SELECT s.*, " STAGES_JSON " AS stages "
	 "FROM dispatch.joblist_status s "
	 "WHERE $1::text IS NULL OR s.state = ANY (string_to_array($1, ',')) "
	 "ORDER BY s.joblist_id DESC" LIMIT(2) ") l"},
	{"POST", "/api/v1/joblists", "Submit a joblist (JSON, or YAML as application/yaml).",
	 {{"spec", PARAM_BODY, "object", true, "The joblist spec."}},
	 "SELECT json_build_object('joblist_id', dispatch.submit_joblist($1::jsonb))",
	 NULL, NULL, NULL, 201, true},
	{"GET", "/api/v1/joblists/{id}", "A joblist with its stages and jobs.", {P_ID},
	 "SELECT to_jsonb(s) || jsonb_build_object('stages', " STAGES_JSON ", 'jobs', "
	 "(SELECT coalesce(jsonb_agg(to_jsonb(j) - 'joblist' - 'joblist_id' ORDER BY j.job_id), '[]') "
	 "FROM dispatch.job_status j WHERE j.joblist_id = s.joblist_id)) "
	 "FROM dispatch.joblist_status s WHERE s.joblist_id = $1::bigint",
	 "joblist %s does not exist"},
	{"POST", "/api/v1/joblists/{id}/cancel", "Cancel a joblist (yours, or any as an admin).",
	 {P_ID},
	 "SELECT json_build_object('joblist_id', $1::bigint, "
	 "'cancelled', dispatch.cancel_joblist($1::bigint))", NULL, NULL, NULL, 200, true},
	{"GET", "/api/v1/jobs/{id}", "A job: state, node, resources, reason.", {P_ID},
	 "SELECT to_json(j) FROM dispatch.job_status j WHERE j.job_id = $1::bigint",
	 "job %s does not exist"},
	{"GET", "/api/v1/jobs/{id}/log", "A job's output from a character offset (256 kB at most).",
	 {P_ID, {"stream", PARAM_QUERY, "string", false, "stdout (default) or stderr."},
	  {"offset", PARAM_QUERY, "integer", false, "Characters already read (0 by default)."}},
	 "SELECT json_build_object('job_id', $1::bigint, 'stream', coalesce($2::text, 'stdout'), "
	 "'offset', o, 'data', substr(l, o + 1, 262144), 'length', length(l)) "
	 "FROM dispatch.job_log($1::bigint, coalesce($2, 'stdout')) AS l, "
	 "greatest(coalesce($3::int, 0), 0) AS o"},
	{"POST", "/api/v1/jobs/{id}/cancel", "Cancel one job (yours, or any as an admin).", {P_ID},
	 "SELECT json_build_object('job_id', $1::bigint, 'cancelled', dispatch.cancel_job($1::bigint))",
	 NULL, NULL, NULL, 200, true},
	{"GET", "/api/v1/nodes", "Nodes with their state, load and latest metrics.", {{0}},
	 "SELECT coalesce(json_agg(to_jsonb(n) || jsonb_build_object('cpu_pct', o.cpu_pct, "
	 "'mem_pct', o.mem_pct, 'disk_pct', o.disk_pct, 'load1', o.load1, 'temp_max', o.temp_max, "
	 "'sampled_at', o.sampled_at) ORDER BY n.node), '[]') "
	 "FROM dispatch.node_status n LEFT JOIN dispatch.node_overview o USING (node)"},
	{"GET", "/api/v1/nodes/{node}/metrics", "A node's latest value of every metric.", {P_NODE},
	 "SELECT json_build_object('node', $1::text, 'at', (SELECT max(at) FROM dispatch.metric_latest "
	 "WHERE node = $1), 'metrics', coalesce((SELECT json_object_agg(metric, value ORDER BY metric) "
	 "FROM dispatch.metric_latest WHERE node = $1), '{}')) "
	 "WHERE EXISTS (SELECT FROM dispatch.nodes WHERE node = $1)", "node %s does not exist"},
	{"GET", "/api/v1/nodes/{node}/series", "A metric of a node over time: [epoch, avg, min, max].",
	 {P_NODE, {"metric", PARAM_QUERY, "string", true, "The metric, e.g. cpu.user."},
	  {"since", PARAM_QUERY, "string", false, "An interval back from now (1 hour by default)."}},
	 "SELECT json_build_object('node', $1::text, 'metric', $2::text, 'points', coalesce((SELECT "
	 "json_agg(json_build_array(extract(epoch FROM h.at), h.avg, h.min, h.max) ORDER BY h.at) "
	 "FROM dispatch.metric_history($1, $2, now() - coalesce($3::interval, '1 hour')) h), '[]')) "
	 "WHERE EXISTS (SELECT FROM dispatch.nodes WHERE node = $1)", "node %s does not exist"},
	{"GET", "/api/v1/resources", "Every resource instance and the job holding it.", {{0}},
	 "SELECT coalesce(json_agg(r ORDER BY r.node NULLS LAST, r.type, r.ident), '[]') "
	 "FROM dispatch.resource_status r"},
	{"GET", "/api/v1/goals", "Recurring goals and SQL jobs.", {{0}},
	 "SELECT coalesce(json_agg(g ORDER BY g.goal_id), '[]') FROM dispatch.goal_status g"},
	{"POST", "/api/v1/goals", "Create a goal from {\"name\": ..., \"spec\": {...}}.",
	 {{"goal", PARAM_BODY, "object", true, "The goal's name and spec."}},
	 "SELECT json_build_object('goal_id', dispatch.create_goal(b ->> 'name', b -> 'spec')) "
	 "FROM (SELECT $1::jsonb AS b) x", NULL, NULL, NULL, 201, true},
	{"POST", "/api/v1/goals/{name}/pause", "Pause a goal.", {P_GOAL},
	 "SELECT json_build_object('goal', $1::text, 'active', false) FROM dispatch.pause_goal($1)",
	 NULL, NULL, NULL, 200, true},
	{"POST", "/api/v1/goals/{name}/resume", "Resume a paused goal.", {P_GOAL},
	 "SELECT json_build_object('goal', $1::text, 'active', true) FROM dispatch.resume_goal($1)",
	 NULL, NULL, NULL, 200, true},
	{"POST", "/api/v1/goals/{name}/run", "Fire a goal now, as its schedule would.", {P_GOAL},
	 "SELECT json_build_object('goal', $1::text, 'run_id', dispatch.run_goal_now($1))",
	 NULL, NULL, NULL, 200, true},
	{"GET", "/api/v1/alerts", "Alerts now pending or firing.", {{0}},
	 "SELECT coalesce(json_agg(a ORDER BY a.since DESC), '[]') FROM dispatch.alert_status a"},
	{"GET", "/api/v1/alerts/history", "Alert events (firing, repeat, resolved), newest first.",
	 {P_LIMIT},
	 "SELECT coalesce(json_agg(e), '[]') FROM (SELECT e.event_id, r.name AS rule, e.node, "
	 "e.event, e.value, e.at, r.severity, r.metric FROM dispatch.alert_events e "
	 "JOIN dispatch.alert_rules r USING (rule_id) ORDER BY e.event_id DESC" LIMIT(1) ") e"},
	{"GET", "/api/v1/artefacts", "Files of workspaces: state, reason, the rule making them, "
	 "the workspace's owner.",
	 {{"workspace", PARAM_QUERY, "string", false, "Only this workspace's files."}, P_LIMIT},
	 "SELECT coalesce(json_agg(a), '[]') FROM (SELECT s.*, w.owner "
	 "FROM dispatch.artefact_status s JOIN dispatch.workspaces w USING (workspace) "
	 "WHERE $1::text IS NULL OR s.workspace = $1 ORDER BY s.workspace, s.path" LIMIT(2) ") a"},
	{"GET", "/api/v1/artefacts/graph", "A workspace's files and the rules between them.",
	 {{"workspace", PARAM_QUERY, "string", true, "The workspace."}},
	 "SELECT dispatch.artefact_graph($1)", "workspace %s does not exist"},
	{"POST", "/api/v1/artefacts/build", "Rebuild a file of a workspace you own (or any as an "
	 "admin) and what it needs: {\"workspace\": ..., \"path\": ...}.",
	 {{"build", PARAM_BODY, "object", true, "The workspace and the path of a file a rule makes."}},
	 "SELECT json_build_object('workspace', w, 'path', p, 'requested', true) FROM (SELECT "
	 JSON_KEY("workspace") " AS w, " JSON_KEY("path") " AS p FROM (SELECT $1::jsonb AS b) x) y, "
	 "dispatch.request_build(w, p)", NULL, NULL, NULL, 202, true},
	{"GET", "/metrics", "Prometheus text exposition: queue, scheduler, nodes, node metrics.",
	 {{0}}, prometheus_sql, NULL, NULL, "text/plain; version=0.0.4"},
};
const int	web_route_count = sizeof(web_routes) / sizeof(web_routes[0]);

/* Returns true when url matches pattern, with the {x} segments copied into req. */
static bool
match_path(const char *pattern, const char *url, Request *req)
{
	char	   *out = req->path_buf;
	char	   *end = req->path_buf + sizeof(req->path_buf);
	int			nvalues = 0;

	while (*pattern != '\0' && *url != '\0')
	{
		if (*pattern == '{')
		{
			size_t		len = strcspn(url, "/");

			if (len == 0 || out + len + 1 > end || nvalues == ROUTE_MAX_PARAMS)
				return false;
			memcpy(out, url, len);
			out[len] = '\0';
			req->path_values[nvalues++] = out;
			out += len + 1;
			url += len;
			pattern = strchr(pattern, '}') + 1;
		}
		else if (*pattern++ != *url++)
			return false;
	}
	return *pattern == '\0' && *url == '\0';
}

/* Returns the route for the request, or NULL; *path_known says whether another method
 * serves the path (405 rather than 404). */
const Route *
route_match(Request *req, bool *path_known)
{
	*path_known = false;
	for (int i = 0; i < web_route_count; i++)
	{
		if (!match_path(web_routes[i].path, req->url, req))
			continue;
		if (strcmp(web_routes[i].method, req->method) == 0)
			return &web_routes[i];
		*path_known = true;
	}
	return NULL;
}

/* Returns true when the request's body is YAML. */
static bool
body_is_yaml(Request *req)
{
	const char *type = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_CONTENT_TYPE);

	return type != NULL && strncasecmp(type, "application/yaml", 16) == 0;
}

/* Replaces a YAML body by its JSON text; returns false with a 400 queued in *ret when
 * the YAML does not parse. */
static bool
yaml_body_to_json(Request *req, enum MHD_Result *ret)
{
	YamlJsonError err;
	json_t	   *doc = yaml_to_json(req->body, req->body_len, &err);
	char	   *text;

	if (doc == NULL)
	{
		json_t	   *e = json_pack("{s:s, s:s+}", "sqlstate", "22P02", "message",
								  "invalid YAML: ", err.message);

		if (err.line > 0)
			json_object_update_new(e, json_pack("{s:i, s:i}", "line", err.line,
												"column", err.column));
		*ret = http_send_json(req, 400, e);
		return false;
	}
	text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(doc);
	if (text == NULL)
	{
		*ret = MHD_NO;
		return false;
	}
	free(req->body);
	req->body = text;
	req->body_len = strlen(text);
	return true;
}

/* Adds to err the line and column of the YAML place its detail names ("The error is
 * at PATH."), when it names one. */
static void
locate_in_yaml(json_t *err, const char *yaml, size_t len)
{
	static const char prefix[] = "The error is at ";
	const char *detail = json_string_value(json_object_get(err, "detail"));
	char		path[1024];
	size_t		n;
	int			line,
				column;

	if (detail == NULL || strncmp(detail, prefix, sizeof(prefix) - 1) != 0)
		return;
	detail += sizeof(prefix) - 1;
	n = strlen(detail);
	if (n == 0 || n >= sizeof(path))
		return;
	memcpy(path, detail, n);
	path[detail[n - 1] == '.' ? n - 1 : n] = '\0';
	if (yaml_json_locate(yaml, len, path, &line, &column) != 0 && line > 0)
		json_object_update_new(err, json_pack("{s:i, s:i}", "line", line, "column", column));
}

/* Runs the route's SQL with the request's parameters and sends its answer. */
enum MHD_Result
route_run_sql(Request *req, const Route *route, PGconn *conn)
{
	const char *values[ROUTE_MAX_PARAMS] = {0};
	int			n = 0,
				path = 0;
	PGresult   *res;
	enum MHD_Result ret;
	char		message[256];
	char	   *yaml = NULL;
	size_t		yaml_len = 0;

	for (; n < ROUTE_MAX_PARAMS && route->params[n].in != PARAM_NONE; n++)
	{
		const RouteParam *p = &route->params[n];

		if (p->in == PARAM_PATH)
			values[n] = req->path_values[path++];
		else if (p->in == PARAM_QUERY)
			values[n] = MHD_lookup_connection_value(req->mhd, MHD_GET_ARGUMENT_KIND, p->name);
		else if (p->in == PARAM_BODY && req->body_len > 0)
		{
			if (body_is_yaml(req))
			{
				if ((yaml = strdup(req->body)) == NULL)
					return MHD_NO;
				yaml_len = req->body_len;
				if (!yaml_body_to_json(req, &ret))
				{
					free(yaml);
					return ret;
				}
			}
			values[n] = req->body;
		}
		else if (p->in == PARAM_READONLY)
			values[n] = web_config.read_only ? "true" : "false";
		if (values[n] == NULL && p->required)
		{
			snprintf(message, sizeof(message), p->in == PARAM_BODY ?
					 "a request body is required" : "query parameter \"%s\" is required",
					 p->name);
			free(yaml);
			return http_error(req, 400, "22023", message, NULL);
		}
	}
	res = PQexecParams(conn, route->sql, n, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) > 1 || PQnfields(res) != 1)
	{
		json_t	   *err = pqerror_json(res, conn);

		if (yaml != NULL)
			locate_in_yaml(err, yaml, yaml_len);
		ret = http_sql_error(req, err);
	}
	else if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
	{
		snprintf(message, sizeof(message), route->missing ? route->missing : "not found",
				 values[0] ? values[0] : "");
		ret = http_error(req, 404, "42704", message, NULL);
	}
	else
		ret = http_send(req, route->ok_status ? route->ok_status : 200,
						route->content_type ? route->content_type : "application/json",
						PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
	PQclear(res);
	free(yaml);
	return ret;
}
