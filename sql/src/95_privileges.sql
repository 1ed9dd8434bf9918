------------------------------------------------------------------------------
-- Privileges: who may call and read what
------------------------------------------------------------------------------
--
-- PUBLIC gets the harmless C functions and, as in pg_cron, the pg_cron API: a role
-- with USAGE on the schema schedules, changes and removes its own SQL jobs and reads
-- their rows of job and job_run_details (row-level security), and nothing else.
-- Users read every table and view and act through the user API; agents act only through the agent_*
-- functions (SECURITY DEFINER, each checking that the caller owns the node) and
-- read nothing directly; admins are both, and manage resources and nodes.
-- What may carry a secret is private to the submitter and admins (docs/security.md,
-- "User against user"): the columns below are not granted (the views show them to
-- their owner), job_files and job_output have row-level security, job_log checks.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dispatch FROM PUBLIC;
GRANT USAGE ON SCHEMA dispatch TO dispatch_user, dispatch_agent, dispatch_admin;
GRANT SELECT ON dispatch.joblist_status, dispatch.job_status, dispatch.node_status,
                dispatch.resource_status, dispatch.stages, dispatch.nodes, dispatch.resources, dispatch.allocations,
                dispatch.job_events, dispatch.job_output, dispatch.job_files,
                dispatch.goal_runs, dispatch.goal_instances,
                dispatch.goal_status,
                dispatch.metric_series, dispatch.metric_layouts, dispatch.metric_nodes,
                dispatch.metric_samples, dispatch.metric_rollups_1m, dispatch.metric_rollups_1h,
                dispatch.metric_recent, dispatch.metric_packs, dispatch.metric_rollup_packs_1m,
                dispatch.metric_rollup_packs_1h, dispatch.metric_rollups,
                dispatch.metric_latest, dispatch.node_overview, dispatch.alert_rules,
                dispatch.alerts, dispatch.alert_events, dispatch.alert_status,
                dispatch.notifications, dispatch.job_history, dispatch.joblist_history,
                dispatch.presence, dispatch.group_scratch,
                dispatch.workspaces, dispatch.artefacts, dispatch.artefact_status,
                dispatch.artefact_changes, dispatch.build_jobs, dispatch.build_outputs
    TO dispatch_user;
-- Every other column of the tables that hold private ones (new columns are public).
DO $columns$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('jobs', ARRAY['command', 'env', 'result', 'cell']),
                                   ('joblists', ARRAY['spec']),
                                   ('goals', ARRAY['spec', 'joblist', 'command']),
                                   ('rules', ARRAY['spec'])) AS x(tbl, private) LOOP
        EXECUTE pg_catalog.format('GRANT SELECT (%s) ON dispatch.%I TO dispatch_user',
            (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = pg_catalog.format('dispatch.%I', t.tbl)::regclass
                AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attname <> ALL (t.private)), t.tbl);
    END LOOP;
END
$columns$;
GRANT EXECUTE ON FUNCTION dispatch._caller_may_read(name), dispatch._caller_may_read_job(bigint)
    TO dispatch_user;
GRANT EXECUTE ON FUNCTION dispatch.current_caller(), dispatch.scheduler_stats(),
                          dispatch.render_template(text, jsonb),
                          dispatch.next_runs(text, timestamptz, int, text),
                          dispatch.schedule(text, text, text), dispatch.schedule(text, text),
                          dispatch.schedule_in_database(text, text, text, text, text, boolean),
                          dispatch.unschedule(bigint), dispatch.unschedule(text),
                          dispatch.alter_job(bigint, text, text, text, text, boolean)
    TO PUBLIC;
GRANT SELECT ON dispatch.job TO PUBLIC;
GRANT SELECT, DELETE ON dispatch.job_run_details TO PUBLIC;
GRANT EXECUTE ON FUNCTION dispatch.submit_joblist(jsonb), dispatch.cancel_joblist(bigint),
                          dispatch.cancel_joblist(text), dispatch.cancel_job(bigint),
                          dispatch.job_log(bigint, text, int),
                          dispatch.follow_output(bigint), dispatch.unfollow_output(bigint),
                          dispatch.create_goal(text, jsonb), dispatch.alter_goal(text, jsonb),
                          dispatch.pause_goal(text), dispatch.resume_goal(text),
                          dispatch.drop_goal(text), dispatch.run_goal_now(text),
                          dispatch.metric_history(text, text, timestamptz, timestamptz),
                          dispatch._samples_in(timestamptz, timestamptz), dispatch._unpack(bytea),
                          dispatch._unpack_metric(bytea, int[], int[]),
                          dispatch._rollups_in(text, timestamptz, timestamptz),
                          dispatch._unpack_rollup(bytea), dispatch._unpack_rollup_metric(bytea, int[], int[]),
                          dispatch.create_alert_rule(text, jsonb), dispatch.drop_alert_rule(text),
                          dispatch.signal(bigint, text, jsonb), dispatch.job_result(bigint),
                          dispatch.joblist_graph(bigint), dispatch.joblist_graph_dot(bigint),
                          dispatch.create_rule(text, jsonb), dispatch.alter_rule(text, jsonb),
                          dispatch.drop_rule(text), dispatch.drop_workspace(text),
                          dispatch.request_build(text, text), dispatch.artefact_graph(text),
                          dispatch.artefact_graph_dot(text), dispatch.followed_text(text, text)
    TO dispatch_user;
GRANT EXECUTE ON FUNCTION dispatch.agent_register(text, jsonb), dispatch.agent_heartbeat(text),
                          dispatch.agent_poll(text), dispatch.agent_resume(text, bigint, int),
                          dispatch.agent_output(text, bigint, int, text, bigint, text),
                          dispatch.agent_finish(text, bigint, int, int, int, boolean, text),
                          dispatch.agent_drain(text), dispatch.agent_offline(text),
                          dispatch.agent_metrics(text, jsonb), dispatch.agent_online_nodes(text)
    TO dispatch_agent;
GRANT EXECUTE ON FUNCTION dispatch.agent_report(text, jsonb), dispatch.agent_signals(text, jsonb),
                          dispatch.agent_scratch_removed(text, text, bigint),
                          dispatch.agent_file_events(text, jsonb),
                          dispatch.agent_put_blob(text, text, text, text, bytea),
                          dispatch.agent_blob(text, bigint, int, text),
                          dispatch.agent_store_output(text, bigint, int, text, text, bytea)
    TO dispatch_agent;
GRANT EXECUTE ON FUNCTION dispatch.add_resource(text, text, text),
                          dispatch.remove_resource(text, text, text),
                          dispatch.bind_node(text, name), dispatch.set_node_labels(text, jsonb),
                          dispatch.check_scheduler_model(),
                          dispatch.create_workspace(text, name, text), dispatch.bind_workspace(text, text)
    TO dispatch_admin;

SELECT dispatch.wake_scheduler();
