/*
 * pg_dispatch 0.1: schema, SQL API, agent protocol and scheduler interface.
 *
 * The database is the single source of truth.  Users call submit/cancel functions,
 * agents call the agent_* functions for their own node, and the scheduler background
 * worker keeps a model of the queue and the cluster in memory, follows the change
 * queue the committing transactions fill (33_sched_changes.sql), runs
 * _housekeeping(), places jobs with its C allocator and writes the cycle back with
 * one _assign_many() and one _set_reasons() call (50_scheduler.sql).  Every function that changes what the
 * scheduler should look at calls wake_scheduler(), which sets the worker's latch
 * when the transaction commits.  See docs/internals.md.
 *
 * The install script is built from the files of sql/src in name order, one feature per
 * file: this header (roles, the C functions, the caller), spec validation, nodes
 * and resources, joblists and jobs, job files, the job state machine,
 * cancellation, the agent API, job output, the scheduler interface, views,
 * history, goals, the goal API, the pg_cron API, metrics, alerts, privileges.
 * Each file says what it owns; each function carries its contract as a COMMENT.
 *
 * Parameter names: plain (job, node, spec); where one is also a column name in the
 * function's queries it is qualified with the function's name (add_resource.node),
 * never prefixed.
 */

\echo Use "CREATE EXTENSION pg_dispatch" to load this file. \quit

-- The schema is the extension's own (the control file names pg_catalog): DROP
-- EXTENSION drops it, and every grant on it, with everything else.
CREATE SCHEMA dispatch;

-- Roles are cluster-wide: create them only when a previous database has not.
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['dispatch_admin', 'dispatch_user', 'dispatch_agent'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    IF NOT pg_catalog.pg_has_role('dispatch_admin', 'dispatch_user', 'MEMBER') THEN
        GRANT dispatch_user, dispatch_agent TO dispatch_admin;
    END IF;
END
$roles$;

------------------------------------------------------------------------------
-- C functions, and who the caller is
------------------------------------------------------------------------------

CREATE FUNCTION dispatch.wake_scheduler() RETURNS void
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'wake_scheduler';
COMMENT ON FUNCTION dispatch.wake_scheduler() IS
    'Wake the scheduler worker when the current transaction commits';

CREATE FUNCTION dispatch._wake_scheduler_again() RETURNS void
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'wake_scheduler_again';
COMMENT ON FUNCTION dispatch._wake_scheduler_again() IS
    'Like wake_scheduler(), and from the scheduler''s own cycle too: its next cycle follows at once';

CREATE FUNCTION dispatch.current_caller() RETURNS name
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'current_caller';
COMMENT ON FUNCTION dispatch.current_caller() IS
    'The role that called into pg_dispatch (outside any SECURITY DEFINER function)';

CREATE FUNCTION dispatch._caller_is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_has_role(dispatch.current_caller(), 'dispatch_admin', 'MEMBER')
$$;
COMMENT ON FUNCTION dispatch._caller_is_admin() IS
    'True when the caller may act for everything (member of dispatch_admin)';

-- No SET clause and every name qualified, so that the planner inlines it into the
-- views and row-level security policies that filter with it (one call per row).
CREATE FUNCTION dispatch._caller_may_read(owner name) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT owner OPERATOR(pg_catalog.=) dispatch.current_caller()
        OR pg_catalog.pg_has_role(dispatch.current_caller(), 'dispatch_admin', 'MEMBER')
$$;
COMMENT ON FUNCTION dispatch._caller_may_read(name) IS
    'True when the caller may read the private parts (command, env, files, output, spec) '
    'of work that owner submitted: owner itself, or a member of dispatch_admin';

CREATE FUNCTION dispatch.scheduler_stats(OUT pid int, OUT cycles bigint,
        OUT jobs_assigned bigint, OUT last_cycle_at timestamptz,
        OUT last_cycle_ms double precision)
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'scheduler_stats';
COMMENT ON FUNCTION dispatch.scheduler_stats() IS
    'Counters of the scheduler worker on this server (pid is NULL when none runs)';

CREATE FUNCTION dispatch.check_scheduler_model() RETURNS text
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'check_scheduler_model';
COMMENT ON FUNCTION dispatch.check_scheduler_model() IS
    'Asks this server''s scheduler to compare its in-memory model with the tables: "ok", or '
    'the first difference (the scheduler then rebuilds its model)';

CREATE FUNCTION dispatch.render_template(template text, replacements jsonb) RETURNS text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'render_template';
COMMENT ON FUNCTION dispatch.render_template(text, jsonb) IS
    'Replace every pattern (key) of replacements by its value in one left-to-right pass; '
    'the longest pattern wins';

CREATE FUNCTION dispatch._render_template(template text, replacements jsonb, path text)
    RETURNS text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'render_template';
COMMENT ON FUNCTION dispatch._render_template(text, jsonb, text) IS
    'render_template with the JSON path of the map, for spec errors';

CREATE FUNCTION dispatch.next_runs(schedule text, "from" timestamptz, n int,
                                   tz text DEFAULT NULL)
    RETURNS SETOF timestamptz
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'next_runs';
COMMENT ON FUNCTION dispatch.next_runs(text, timestamptz, int, text) IS
    'The next n fire times of a schedule after "from" (time zone tz, default '
    'dispatch.timezone)';

CREATE FUNCTION dispatch._cron_next(schedule text, after timestamptz, tz text)
    RETURNS timestamptz
    LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', '_cron_next';
COMMENT ON FUNCTION dispatch._cron_next(text, timestamptz, text) IS
    'The next fire of schedule after a time in time zone tz, or NULL when none';

CREATE FUNCTION dispatch._cron_latest(schedule text, after timestamptz, until timestamptz,
                                      tz text)
    RETURNS timestamptz
    LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', '_cron_latest';
COMMENT ON FUNCTION dispatch._cron_latest(text, timestamptz, timestamptz, text) IS
    'The last fire of schedule in (after, until] in time zone tz, or NULL when none';

-- Graphs: edge i is froms[i] -> tos[i], "froms[i] runs after tos[i]", over the
-- nodes 0 .. n-1; a NULL array means no edges (src/flowgraph.c).
CREATE FUNCTION dispatch._dag_cycle(froms int[], tos int[], n int) RETURNS int[]
    LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', '_dag_cycle';
COMMENT ON FUNCTION dispatch._dag_cycle(int[], int[], int) IS
    'A cycle of the graph of nodes 0 .. n-1 and edges froms[i] -> tos[i] (a NULL array: no '
    'edges), or NULL when it has none: a shortest cycle through the smallest node on one, '
    'from that node along the edges back to it ({0,3,0}; a self-loop is {2,2}).  Refuses '
    'arrays of other lengths or dimensions, nulls and nodes outside 0 .. n-1';

CREATE FUNCTION dispatch._dag_order(froms int[], tos int[], n int) RETURNS int[]
    LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', '_dag_order';
COMMENT ON FUNCTION dispatch._dag_order(int[], int[], int) IS
    'The nodes 0 .. n-1 of the graph of edges froms[i] -> tos[i] (a NULL array: no edges), '
    'dependency-first: each after every node it reaches, except those on a cycle with it, '
    'which come together in ascending order; ties go to the smallest node.  Input as for '
    '_dag_cycle';

CREATE FUNCTION dispatch._graph_components(froms int[], tos int[], n int) RETURNS int[]
    LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', '_graph_components';
COMMENT ON FUNCTION dispatch._graph_components(int[], int[], int) IS
    'For each node 0 .. n-1 of the graph of edges froms[i] -> tos[i], its strongly connected '
    'component, numbered from 0 dependency-first (for every edge a -> b, b''s is at most '
    'a''s); input as for _dag_cycle';

CREATE FUNCTION dispatch._graph_stale(froms int[], tos int[], n int, changed int[]) RETURNS int[]
    LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', '_graph_stale';
COMMENT ON FUNCTION dispatch._graph_stale(int[], int[], int, int[]) IS
    'The nodes of the graph of edges froms[i] -> tos[i] that are in changed or reach one '
    '(depend on it), in ascending order; input as for _dag_cycle';
