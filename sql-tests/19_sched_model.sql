-- The scheduler's model (src/model.c) follows the change queue: after every kind of
-- change (submits, cancels, retries, finishes through agent_report, nodes going
-- offline and online, resources added and removed, admin labels) the model it
-- keeps is what a fresh load of the tables gives (check_scheduler_model()).  A
-- change the queue never heard of is found and the model rebuilt; a failing cycle
-- is retried by the same process.  Jobs need "mslot", offered by m1 and m2 only,
-- and the pool licence "mlic".  No serial id is printed, so this file passes alone
-- after 00_setup as well as in the full run.
\set SHOW_CONTEXT never

-- Waits (with a deadline) until the scheduler has looked at every m- job, then
-- checks its model twice: the second check follows a cycle that began after the
-- first answer, so what the step changed has been scheduled by then.
CREATE FUNCTION pg_temp.check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first text;
BEGIN
    IF NOT wait_for($q$SELECT NOT EXISTS (SELECT 1 FROM dispatch.job_status
                         WHERE joblist LIKE 'm-%' AND state = 'pending'
                           AND reason = 'waiting for the scheduler')$q$) THEN
        RETURN 'not settled';
    END IF;
    first := dispatch.check_scheduler_model();
    RETURN CASE WHEN first = 'ok' THEN dispatch.check_scheduler_model() ELSE first END;
END
$$;
CREATE FUNCTION pg_temp.submit(name text, slots int, licences int, retries int DEFAULT 0)
RETURNS bigint LANGUAGE sql AS $$
    SELECT dispatch.submit_joblist(jsonb_build_object('name', name, 'stages', jsonb_build_array(
             jsonb_build_object('jobs', jsonb_build_array(jsonb_build_object(
               'name', 'a', 'command', 'true', 'retries', retries,
               'needs', jsonb_build_object('mslot', slots) || CASE WHEN licences > 0
                        THEN jsonb_build_object('mlic', licences) ELSE '{}' END))),
             jsonb_build_object('jobs', jsonb_build_array(jsonb_build_object(
               'name', 'b', 'command', 'true', 'needs', jsonb_build_object('mslot', 1)))))))
$$;
-- Ends the assigned or running jobs of joblist_name through agent_report (claiming
-- them first); returns the answers' statuses.
CREATE FUNCTION pg_temp.finish(joblist_name text, code int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    j record;
    answers text := '';
BEGIN
    FOR j IN SELECT job_id, node FROM dispatch.job_status
              WHERE joblist = joblist_name AND state IN ('assigned', 'running')
              ORDER BY job_id LOOP
        PERFORM dispatch.agent_poll(j.node);
        answers := answers || (SELECT string_agg(r ->> 'status', ',')
            FROM dispatch.jobs s,
                 jsonb_array_elements(dispatch.agent_report(j.node, jsonb_build_array(
                   jsonb_build_object('job_id', s.job_id, 'attempt', s.attempt,
                                      'finish', jsonb_build_object('exit_code', code))))) r
           WHERE s.job_id = j.job_id);
    END LOOP;
    RETURN answers;
END
$$;
CREATE FUNCTION pg_temp.states() RETURNS TABLE (joblist text, job text, state text, node text,
                                                attempt int)
LANGUAGE sql AS $$
    SELECT joblist, name, state, node, attempt FROM dispatch.job_status
     WHERE joblist LIKE 'm-%' ORDER BY joblist, name
$$;

-- Nodes and resources come.
SELECT dispatch.agent_register('m1', '{"resources": [
  {"type": "mslot", "ident": "0"}, {"type": "mslot", "ident": "1"}]}') IS NOT NULL AS registered;
SELECT pg_temp.check() AS after_register;
SELECT dispatch.agent_register('m2', '{"resources": [{"type": "mslot", "ident": "0"}]}')
       IS NOT NULL AS registered;
SELECT dispatch.add_resource('mlic', 'mlic-1') IS NOT NULL AS added;
SELECT pg_temp.check() AS after_pool;

-- Submits: m-a takes both of m1's slots and the licence, m-b waits for the licence,
-- m-c (one slot, no licence) runs on m2.
SELECT pg_temp.submit('m-a', 2, 1) IS NOT NULL AS submitted;
SELECT pg_temp.submit('m-b', 1, 1, 1) IS NOT NULL AS submitted;
SELECT pg_temp.submit('m-c', 1, 0) IS NOT NULL AS submitted;
SELECT pg_temp.check() AS after_submits;
SELECT * FROM pg_temp.states();

-- A finish through agent_report frees the licence: m-a's next stage and m-b run.
SELECT pg_temp.finish('m-a', 0) AS reported;
SELECT pg_temp.check() AS after_finish;
SELECT * FROM pg_temp.states();

-- A failure with a retry left puts m-b back in the queue as attempt 2.
SELECT pg_temp.finish('m-b', 1) AS reported;
SELECT pg_temp.check() AS after_retry;
SELECT * FROM pg_temp.states() WHERE joblist = 'm-b';

-- A cancel.
SELECT dispatch.cancel_joblist('m-c') AS cancelled;
SELECT pg_temp.check() AS after_cancel;

-- A node goes offline (its jobs are requeued or lost) and comes back.
SELECT dispatch.agent_offline('m1');
SELECT pg_temp.check() AS after_offline;
SELECT * FROM pg_temp.states();
SELECT dispatch.agent_register('m1', '{"resources": [
  {"type": "mslot", "ident": "0"}, {"type": "mslot", "ident": "1"},
  {"type": "mslot", "ident": "2"}]}') IS NOT NULL AS registered;
SELECT pg_temp.check() AS after_online;

-- Admin labels, and resources added and removed by an admin.
SELECT dispatch.set_node_labels('m2', '{"zone": "z2"}');
SELECT dispatch.add_resource('mspare', 'pooled') IS NOT NULL AS added;
SELECT dispatch.add_resource('mspare', 'local', 'm2') IS NOT NULL AS added;
SELECT pg_temp.check() AS after_admin;
SELECT dispatch.remove_resource('mspare', 'local', 'm2');
SELECT dispatch.remove_resource('mspare', 'pooled');
SELECT pg_temp.check() AS after_removal;

-- A change no trigger saw (triggers off for this session) is found, and the model
-- rebuilt: the next check is clean again.
SET session_replication_role = replica;
UPDATE dispatch.nodes SET admin_labels = '{"zone": "hidden"}' WHERE node = 'm2';
RESET session_replication_role;
SELECT regexp_replace(dispatch.check_scheduler_model(), '[0-9]+', 'N', 'g') <> 'ok'
       AS difference_found;
SELECT dispatch.check_scheduler_model() AS after_rebuild;

-- A failing cycle is retried by the same process, and the model is rebuilt.  The
-- trigger fails the first cycle that assigns a job, once (a sequence is not rolled
-- back with the cycle).
SELECT pid AS scheduler_pid FROM dispatch.scheduler_stats() \gset
CREATE SEQUENCE public.m_fail_once;
CREATE FUNCTION public.m_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'assigned' AND nextval('public.m_fail_once') = 1 THEN
        RAISE EXCEPTION 'injected cycle failure';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER m_fail_once BEFORE UPDATE OF state ON dispatch.jobs
    FOR EACH ROW EXECUTE FUNCTION public.m_fail_once();
SELECT pg_temp.submit('m-d', 1, 0) IS NOT NULL AS submitted;
SELECT wait_for($$SELECT state = 'running' FROM dispatch.joblist_status WHERE name = 'm-d'$$)
       AS assigned_after_retry;
SELECT (SELECT last_value > 1 FROM public.m_fail_once) AS failed_once_then_ran,
       pid = :scheduler_pid AS same_process FROM dispatch.scheduler_stats();
DROP TRIGGER m_fail_once ON dispatch.jobs;
DROP FUNCTION public.m_fail_once();
DROP SEQUENCE public.m_fail_once;
SELECT pg_temp.check() AS after_failed_cycle;

-- Only an admin may ask; the check names no data.
CREATE ROLE m_user LOGIN IN ROLE dispatch_user;
SET ROLE m_user;
SELECT dispatch.check_scheduler_model();
RESET ROLE;
DROP ROLE m_user;

-- Clean up: the m- joblists end, the nodes go.
SELECT dispatch.cancel_joblist(joblist_id) FROM dispatch.joblist_status
 WHERE name LIKE 'm-%' AND state IN ('queued', 'running') ORDER BY joblist_id;
SELECT dispatch.agent_offline(n) FROM unnest(ARRAY['m1', 'm2']) n;
SELECT dispatch.remove_resource('mlic', 'mlic-1');
SELECT dispatch.check_scheduler_model() AS at_end;
