------------------------------------------------------------------------------
-- Agent API: the protocol between dispatch-agent and the server (docs/internals.md)
------------------------------------------------------------------------------
--
-- An agent acts only for the nodes its role registered, through these SECURITY
-- DEFINER functions: it registers, heartbeats, claims assigned jobs (agent_poll),
-- asks where the server stands on a job (agent_resume), drains and goes offline.
-- Every report carries (job, attempt) and is refused for a stale attempt
-- (_attempt_refusal), so a result is recorded exactly once.  Output, the reports of
-- output and ends, and metrics have their own files (45_output.sql,
-- 47_agent_report.sql, 80_metrics.sql).

CREATE FUNCTION dispatch._agent_node(node text) RETURNS dispatch.nodes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._lock_node(node,
        'The agent registers its node with dispatch.agent_register().');
BEGIN
    IF n.owner <> dispatch.current_caller() AND NOT dispatch._caller_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for node "%s"', node),
            DETAIL = format('Node "%s" belongs to role "%s".', node, n.owner),
            HINT = 'An agent may act only for the nodes its role registered.';
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch._agent_node(text) IS
    'Locks and returns the node row after checking that the caller acts for it';

CREATE FUNCTION dispatch._attempt_refusal(j dispatch.jobs, node text, job bigint, attempt int)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN j.job_id IS NULL THEN format('Job %s does not exist.', job)
                WHEN j.node IS DISTINCT FROM node OR j.attempt <> attempt
                     OR j.state NOT IN ('assigned', 'running')
                     -- (a group's reservation runs nothing: no agent reports on it)
                     OR j.reserves IS NOT NULL
                THEN format('The job is at attempt %s, %s, on node %s.', j.attempt, j.state,
                            coalesce('"' || j.node || '"', 'none')) END
$$;
COMMENT ON FUNCTION dispatch._attempt_refusal(dispatch.jobs, text, bigint, int) IS
    'Why a report for (job, attempt) from node is refused, given the job row j (NULL row: '
    'no such job); NULL when the attempt is active on that node';

CREATE FUNCTION dispatch._agent_job(node text, job bigint, attempt int)
RETURNS dispatch.jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
    refusal text;
BEGIN
    PERFORM dispatch._agent_node(node);
    SELECT * INTO j FROM dispatch.jobs x WHERE x.job_id = job FOR UPDATE;
    refusal := dispatch._attempt_refusal(j, node, job, attempt);
    IF refusal IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('report for job %s attempt %s from node "%s" refused',
                             job, attempt, node),
            DETAIL = refusal;
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION dispatch._agent_job(text, bigint, int) IS
    'Locks and returns a job after checking that (job, attempt) is active on node';

CREATE FUNCTION dispatch._offer(info jsonb)
RETURNS TABLE (type text, ident text, capacity bigint, is_amount boolean)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT e ->> 'type', e ->> 'ident', 1::bigint, false
      FROM jsonb_array_elements(coalesce(info -> 'resources', '[]')) e
    UNION ALL
    SELECT key, key, value::text::bigint, true
      FROM jsonb_each(coalesce(info -> 'amounts', '{}'))
$$;
COMMENT ON FUNCTION dispatch._offer(jsonb) IS
    'The resource instances and amounts an agent''s registration offers';

CREATE FUNCTION dispatch.agent_register(node text, info jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller name := dispatch.current_caller();
    keep bigint[];
    timeout_ms bigint;
BEGIN
    PERFORM dispatch._check_node_name(node);
    PERFORM dispatch._check_node_info(info);

    -- With dispatch.open_registration off, only the names an admin bound register.
    IF NOT current_setting('dispatch.open_registration')::boolean
       AND NOT dispatch._caller_is_admin()
       AND NOT EXISTS (SELECT 1 FROM dispatch.nodes x WHERE x.node = agent_register.node) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('node "%s" is not bound to an agent role', node),
            HINT = 'dispatch.open_registration is off: an admin binds node names with dispatch.bind_node().';
    END IF;
    -- A new node belongs to the role that inserts it.  When two roles register the
    -- same new name at once, the second's insert waits for the first and does
    -- nothing; the row lock and owner check below then refuse it.
    INSERT INTO dispatch.nodes (node, owner) VALUES (node, caller)
    ON CONFLICT ON CONSTRAINT nodes_pkey DO NOTHING;
    PERFORM dispatch._agent_node(node);
    UPDATE dispatch.nodes x
       SET state = 'online', hostname = info ->> 'hostname', arch = info ->> 'arch',
           os = info ->> 'os', cpus = (info ->> 'cpus')::int,
           memory_mb = (info ->> 'memory_mb')::bigint,
           labels = coalesce(info -> 'labels', '{}'), agent_version = info ->> 'version',
           agent_pid = (info ->> 'pid')::int, registered_at = now(), last_heartbeat = now(),
           state_changed_at = CASE WHEN x.state = 'online' THEN x.state_changed_at
                                   ELSE now() END
     WHERE x.node = agent_register.node;

    -- Reconcile what the agent offers: idle instances it no longer lists go away.
    DELETE FROM dispatch.resources x
     WHERE x.node = agent_register.node AND x.from_agent
       AND NOT EXISTS (SELECT 1 FROM dispatch._offer(info) o
                        WHERE o.type = x.type AND o.ident = x.ident)
       AND NOT EXISTS (SELECT 1 FROM dispatch.allocations a WHERE a.resource_id = x.resource_id);
    INSERT INTO dispatch.resources AS x (type, ident, node, capacity, is_amount, from_agent)
    SELECT o.type, o.ident, node, o.capacity, o.is_amount, true FROM dispatch._offer(info) o
    ON CONFLICT ON CONSTRAINT resources_type_ident_node_key DO UPDATE
       SET capacity = EXCLUDED.capacity, is_amount = EXCLUDED.is_amount, from_agent = true;

    -- Running jobs the agent does not know about any more are lost.
    SELECT coalesce(array_agg((e ->> 'job_id')::bigint), '{}') INTO keep
      FROM jsonb_array_elements(coalesce(info -> 'jobs', '[]')) e;
    PERFORM dispatch._lose_jobs(node, keep || ARRAY(
        SELECT job_id FROM dispatch.jobs WHERE jobs.node = agent_register.node
           AND state = 'assigned'));

    PERFORM dispatch.wake_scheduler();
    timeout_ms := (extract(epoch FROM current_setting('dispatch.node_timeout')::interval) * 1000)::bigint;
    RETURN jsonb_build_object(
        'channel', 'dispatch_node_' || node,
        'heartbeat_ms', greatest(timeout_ms / 3, 100),
        'node_timeout_ms', timeout_ms,
        'kill_grace_ms',
        (extract(epoch FROM current_setting('dispatch.kill_grace')::interval) * 1000)::bigint);
END
$$;
COMMENT ON FUNCTION dispatch.agent_register(text, jsonb) IS
    'Agent: register or re-register a node and the resources it offers';

CREATE FUNCTION dispatch.agent_heartbeat(node text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    IF n.state <> 'offline' THEN
        UPDATE dispatch.nodes x SET last_heartbeat = now() WHERE x.node = n.node;
    END IF;
    RETURN n.state;
END
$$;
COMMENT ON FUNCTION dispatch.agent_heartbeat(text) IS
    'Agent: keep the node alive; returns its state (offline: register again)';

CREATE FUNCTION dispatch.agent_online_nodes(node text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM dispatch._agent_node(node);
    RETURN (SELECT coalesce(jsonb_agg(n.node ORDER BY n.node), '[]')
              FROM dispatch.nodes n WHERE n.state = 'online');
END
$$;
COMMENT ON FUNCTION dispatch.agent_online_nodes(text) IS
    'Agent: the names of the nodes the server counts online, as a JSON array in name order';

CREATE FUNCTION dispatch.agent_poll(node text)
RETURNS TABLE (action text, job_id bigint, attempt int, joblist_id bigint, name text,
               command text, env jsonb, resources jsonb, timeout_ms bigint, files jsonb,
               flow jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    IF n.state = 'offline' THEN
        RETURN;
    END IF;
    UPDATE dispatch.nodes x SET last_heartbeat = now() WHERE x.node = n.node;
    RETURN QUERY
    WITH claimed AS (
        UPDATE dispatch.jobs j SET state = 'running', started_at = now()
         WHERE j.node = n.node AND j.state = 'assigned' AND n.state = 'online'
           AND j.reserves IS NULL
        RETURNING j.*)
    SELECT 'run'::text, c.job_id, c.attempt, c.joblist_id, c.name, c.command, c.env,
           c.resources, (extract(epoch FROM c.timeout) * 1000)::bigint,
           (SELECT jsonb_agg(jsonb_build_object('path', f.path, 'mode', f.mode,
                                                'content', f.content) ORDER BY f.path)
              FROM dispatch.job_files f WHERE f.job_id = c.job_id),
           -- (most jobs take no part in a flow: no call for them)
           CASE WHEN c.after IS NOT NULL OR c.group_name IS NOT NULL OR c.builds IS NOT NULL
                THEN dispatch._job_flow(c) END
      FROM claimed c ORDER BY c.job_id;
    RETURN QUERY
    SELECT 'cancel'::text, j.job_id, j.attempt, j.joblist_id, j.name, NULL::text,
           NULL::jsonb, NULL::jsonb, NULL::bigint, NULL::jsonb, NULL::jsonb
      FROM dispatch.jobs j
     WHERE j.node = n.node AND j.state = 'running' AND j.cancel_requested
     ORDER BY j.job_id;
    -- scratch directories of groups that have ended (49_scratch.sql), until acknowledged
    RETURN QUERY
    SELECT 'scratch_remove'::text, NULL::bigint, NULL::int, g.joblist_id, g.key, NULL::text,
           NULL::jsonb, NULL::jsonb, NULL::bigint, NULL::jsonb, NULL::jsonb
      FROM dispatch.group_scratch g
     WHERE g.node = n.node AND g.ended_at IS NOT NULL AND g.removed_at IS NULL
     ORDER BY g.key;
END
$$;
COMMENT ON FUNCTION dispatch.agent_poll(text) IS
    'Agent: claim the jobs assigned to the node (run, with their flow: inputs and group), '
    'learn which to stop (cancel) and which scratch directories to remove (scratch_remove)';

CREATE FUNCTION dispatch.agent_resume(node text, job bigint, attempt int,
                                      OUT stdout_bytes bigint, OUT stderr_bytes bigint,
                                      OUT cancel_requested boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs := dispatch._agent_job(node, job, attempt);
BEGIN
    stdout_bytes := dispatch._output_stored(j, 'stdout');
    stderr_bytes := dispatch._output_stored(j, 'stderr');
    cancel_requested := j.cancel_requested;
END
$$;
COMMENT ON FUNCTION dispatch.agent_resume(text, bigint, int) IS
    'Agent: how much output of a running job the server holds (after a reconnect)';

CREATE FUNCTION dispatch._finish_reason(j dispatch.jobs, exit_code int, signal int,
                                        timed_out boolean, detail text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN coalesce(timed_out, false)
            THEN coalesce('timed out after ' || j.timeout, 'timed out')
        WHEN signal IS NOT NULL THEN format('killed by signal %s', signal)
        WHEN exit_code IS NOT NULL AND exit_code <> 0 THEN format('exited with code %s', exit_code)
        WHEN exit_code IS NULL THEN coalesce(detail, 'ended without an exit status')
    END
$$;
COMMENT ON FUNCTION dispatch._finish_reason(dispatch.jobs, int, int, boolean, text) IS
    'Why an attempt of job j that ended so failed; NULL when it succeeded';

CREATE FUNCTION dispatch.agent_drain(node text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    j bigint;
BEGIN
    UPDATE dispatch.nodes x SET state = 'draining', state_changed_at = now()
     WHERE x.node = n.node AND x.state = 'online';
    FOR j IN SELECT job_id FROM dispatch.jobs
              WHERE jobs.node = n.node AND state = 'assigned' ORDER BY job_id FOR UPDATE LOOP
        PERFORM dispatch._requeue_job(j, false,
            format('node "%s" is draining', n.node));
    END LOOP;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.agent_drain(text) IS
    'Agent: take no new jobs on this node; unclaimed assignments go back to the queue';

CREATE FUNCTION dispatch.agent_offline(node text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    UPDATE dispatch.nodes x SET state = 'offline', state_changed_at = now()
     WHERE x.node = n.node;
    PERFORM dispatch._lose_jobs(n.node);
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.agent_offline(text) IS
    'Agent: the agent stops cleanly; jobs still on the node are lost';
