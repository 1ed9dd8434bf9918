------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dispatch FROM PUBLIC;
GRANT USAGE ON SCHEMA dispatch TO dispatch_user, dispatch_agent, dispatch_admin;
GRANT SELECT ON dispatch.joblist_status, dispatch.job_status, dispatch.node_status,
                dispatch.resource_status, dispatch.joblists, dispatch.stages, dispatch.jobs,
                dispatch.nodes, dispatch.resources, dispatch.allocations,
                dispatch.job_events, dispatch.job_output, dispatch.job_files
    TO dispatch_user, dispatch_agent;
GRANT EXECUTE ON FUNCTION dispatch.current_caller(), dispatch.scheduler_stats(),
                          dispatch.render_template(text, jsonb)
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION dispatch.submit_joblist(jsonb), dispatch.cancel_joblist(bigint),
                          dispatch.cancel_joblist(text), dispatch.cancel_job(bigint),
                          dispatch.job_log(bigint, text, int)
    TO dispatch_user;
GRANT EXECUTE ON FUNCTION dispatch.agent_register(text, jsonb), dispatch.agent_heartbeat(text),
                          dispatch.agent_poll(text), dispatch.agent_resume(text, bigint, int),
                          dispatch.agent_output(text, bigint, int, text, bigint, text),
                          dispatch.agent_finish(text, bigint, int, int, int, boolean, text),
                          dispatch.agent_drain(text), dispatch.agent_offline(text)
    TO dispatch_agent;
GRANT EXECUTE ON FUNCTION dispatch.add_resource(text, text, text),
                          dispatch.remove_resource(text, text, text)
    TO dispatch_admin;

SELECT dispatch.wake_scheduler();
