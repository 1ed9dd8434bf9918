-- The agent protocol driven by hand: registration, claims, output, results, retries,
-- stale attempts, draining and going offline.  Jobs need the type "handdriven", which
-- no node offers, so only this script moves them (dispatch._assign with no units).
\set SHOW_CONTEXT never
\set VERBOSITY default
-- Stages are moved by calling the scheduler's housekeeping by hand, as its cycle does;
-- it leaves a joblist the running scheduler holds meanwhile, so call it again until
-- it left none (true), for ten seconds at most.
\i sql-tests/include/wait_until.sql
CREATE FUNCTION pg_temp.housekeep() RETURNS boolean
LANGUAGE sql AS $$
    SELECT pg_temp.wait_until('SELECT skipped IS NULL FROM dispatch._housekeeping(now(), false, NULL)')
$$;

-- Registration: validation of the node name and the info object.
SELECT dispatch.agent_register('', '{}');
SELECT dispatch.agent_register('-n', '{}');
SELECT dispatch.agent_register('n/1', '{}');
SELECT dispatch.agent_register(repeat('n', 49), '{}');
SELECT dispatch.agent_register('a1', '[]');
SELECT dispatch.agent_register('a1', NULL);
SELECT dispatch.agent_register('a1', '{"colour": "red"}');
SELECT dispatch.agent_register('a1', '{"labels": []}');
SELECT dispatch.agent_register('a1', '{"labels": {"arch": "x"}}');
SELECT dispatch.agent_register('a1', '{"labels": {"node": "x"}}');
SELECT dispatch.agent_register('a1', '{"labels": {"zone": 1}}');
SELECT dispatch.agent_register('a1', '{"labels": {"bad key": "x"}}');
SELECT dispatch.agent_register('a1', '{"resources": {}}');
SELECT dispatch.agent_register('a1', '{"resources": [{"type": "cpu"}]}');
SELECT dispatch.agent_register('a1', '{"resources": [{"type": "CPU", "ident": "0"}]}');
SELECT dispatch.agent_register('a1', '{"resources": [{"type": "cpu", "ident": "0,1"}]}');
SELECT dispatch.agent_register('a1', '{"amounts": []}');
SELECT dispatch.agent_register('a1', '{"amounts": {"mem_mb": 0}}');
SELECT dispatch.agent_register('a1', '{"amounts": {"mem_mb": "1"}}');
SELECT count(*) AS nodes FROM dispatch.nodes WHERE node = 'a1';

-- A valid registration; the reply tells the agent its channel and timers.
SELECT dispatch.agent_register('a1', '{"hostname": "h1", "arch": "x86_64", "os": "Linux 6.1",
  "cpus": 2, "memory_mb": 512, "labels": {"zone": "a"}, "version": "0.1.0", "pid": 1,
  "resources": [{"type": "cpu", "ident": "0"}, {"type": "cpu", "ident": "1"}],
  "amounts": {"mem_mb": 512}}');
SELECT node, state, hostname, arch, os, cpus, memory_mb, labels, running_jobs
  FROM dispatch.node_status WHERE node = 'a1';
SELECT type, ident, capacity FROM dispatch.resource_status WHERE node = 'a1' ORDER BY type, ident;
-- Registering again is idempotent and reconciles: cpu 1 went away, gpu 0 came.
SELECT dispatch.agent_register('a1', '{"labels": {"zone": "b"},
  "resources": [{"type": "cpu", "ident": "0"}, {"type": "gpu", "ident": "0"}]}') IS NOT NULL AS ok;
SELECT type, ident, capacity FROM dispatch.resource_status WHERE node = 'a1' ORDER BY type, ident;
SELECT labels FROM dispatch.nodes WHERE node = 'a1';

-- Calls for unknown nodes.
SELECT dispatch.agent_heartbeat('ghost');
SELECT * FROM dispatch.agent_poll('ghost');
SELECT dispatch.agent_heartbeat('a1');
-- The nodes the server counts online, for the agent's presence history.
SELECT dispatch.agent_online_nodes('ghost');
SELECT dispatch.agent_online_nodes('a1');

-- A joblist of two stages; assign its first job by hand and claim it.
SELECT dispatch.submit_joblist('{"name": "proto", "stages": [
  {"jobs": [{"name": "one", "command": "echo one", "needs": {"handdriven": 1},
             "env": {"MODE": "x"}, "timeout": "1 minute", "retries": 1}]},
  {"jobs": [{"name": "two", "command": "echo two", "needs": {"handdriven": 1}}]}]}') AS jl \gset
SELECT job_id AS one FROM dispatch.jobs WHERE joblist_id = :jl AND name = 'one' \gset
SELECT job_id AS two FROM dispatch.jobs WHERE joblist_id = :jl AND name = 'two' \gset
SELECT dispatch._assign(:one, 'a1', '{}', '{}');
SELECT dispatch._assign(:one, 'a1', '{}', '{}');
SELECT action, attempt, name, command, env, timeout_ms FROM dispatch.agent_poll('a1');
SELECT action FROM dispatch.agent_poll('a1');
SELECT state FROM dispatch.joblist_status WHERE joblist_id = :jl;

-- Output: chunks at byte offsets, duplicates ignored, gaps refused, multibyte counted
-- in bytes.
SELECT dispatch.agent_output('a1', :one, 1, 'stdout', 0, 'héllo ');
SELECT dispatch.agent_output('a1', :one, 1, 'stdout', 0, 'héllo ');
SELECT dispatch.agent_output('a1', :one, 1, 'stdout', 20, 'gap');
SELECT dispatch.agent_output('a1', :one, 1, 'stdout', 7, 'world');
SELECT dispatch.agent_output('a1', :one, 1, 'stdin', 0, 'x');
SELECT dispatch.agent_output('a1', :one, 1, 'stderr', 0, 'warn');
SELECT * FROM dispatch.agent_resume('a1', :one, 1);
SELECT dispatch.job_log(:one), dispatch.job_log(:one, 'stderr');

-- Stale reports are refused with SQLSTATE 55000.
\set VERBOSITY sqlstate
SELECT dispatch.agent_output('a1', :one, 2, 'stdout', 0, 'x');
SELECT dispatch.agent_finish('a1', :one, 2, 0, NULL, false);
\set VERBOSITY default
SELECT dispatch.agent_finish('a1', :one, 2, 0, NULL, false);
SELECT dispatch.agent_finish('a1', :two, 1, 0, NULL, false);
SELECT dispatch.agent_finish('a1', -5, 1, 0, NULL, false);

-- A failure with retries left makes a new attempt; its output starts afresh.
SELECT dispatch.agent_finish('a1', :one, 1, 3, NULL, false);
-- (The reason of a pending job belongs to the scheduler; the history keeps this one.)
SELECT state, attempt, node FROM dispatch.jobs WHERE job_id = :one;
SELECT state, attempt, detail FROM dispatch.job_events WHERE job_id = :one ORDER BY event_id;
SELECT dispatch.job_log(:one) = '' AS fresh, dispatch.job_log(:one, 'stdout', 1) AS first_attempt;
SELECT dispatch.agent_finish('a1', :one, 1, 0, NULL, false);
-- Attempt 2 succeeds; housekeeping then opens stage 1.
SELECT dispatch._assign(:one, 'a1', '{}', '{}');
SELECT count(*) FROM dispatch.agent_poll('a1');
SELECT dispatch.agent_finish('a1', :one, 2, 0, NULL, false);
SELECT pg_temp.housekeep() AS housekept;
SELECT current_stage FROM dispatch.joblist_status WHERE joblist_id = :jl;
SELECT name, state, reason NOT LIKE 'waiting for stage%' AS stage_open
  FROM dispatch.jobs WHERE job_id = :two;
SELECT attempt, state, node, detail FROM dispatch.job_events WHERE job_id = :one
 ORDER BY event_id;

-- Output beyond dispatch.max_output_bytes is cut, on a character boundary, visibly.
SET dispatch.max_output_bytes = 9;
SELECT dispatch._assign(:two, 'a1', '{}', '{}');
SELECT count(*) FROM dispatch.agent_poll('a1');
SELECT dispatch.agent_output('a1', :two, 1, 'stdout', 0, 'ééééé');
SELECT dispatch.agent_output('a1', :two, 1, 'stdout', 8, 'more');
SELECT output_bytes, output_truncated FROM dispatch.job_status WHERE job_id = :two;
SELECT dispatch.job_log(:two);
RESET dispatch.max_output_bytes;

-- Signals, timeouts and the end of the joblist.
SELECT dispatch.agent_finish('a1', :two, 1, NULL, 9, false);
SELECT state, signal, reason FROM dispatch.jobs WHERE job_id = :two;
SELECT pg_temp.housekeep() AS housekept;
SELECT state, reason FROM dispatch.joblist_status WHERE joblist_id = :jl;

-- Fail fast: a failure cancels the rest of the joblist, running jobs are asked to stop.
SELECT dispatch.submit_joblist('{"name": "ff", "stages": [
  {"jobs": [{"name": "x", "command": "x", "needs": {"handdriven": 1}},
            {"name": "y", "command": "y", "needs": {"handdriven": 1}},
            {"name": "z", "command": "z", "needs": {"handdriven": 1}}]},
  {"jobs": [{"name": "w", "command": "w", "needs": {"handdriven": 1}}]}]}') AS ff \gset
SELECT dispatch._assign(job_id, 'a1', '{}', '{}') FROM dispatch.jobs
 WHERE joblist_id = :ff AND name IN ('x', 'y') ORDER BY job_id;
SELECT action, name FROM dispatch.agent_poll('a1') ORDER BY job_id;
SELECT dispatch.agent_finish('a1', job_id, 1, NULL, NULL, true) FROM dispatch.jobs
 WHERE joblist_id = :ff AND name = 'x';
SELECT pg_temp.housekeep() AS housekept;
SELECT state, reason FROM dispatch.joblist_status WHERE joblist_id = :ff;
SELECT name, state, cancel_requested, reason FROM dispatch.jobs WHERE joblist_id = :ff
 ORDER BY job_id;
SELECT action, name FROM dispatch.agent_poll('a1');
SELECT dispatch.agent_finish('a1', job_id, 1, NULL, 15, false) FROM dispatch.jobs
 WHERE joblist_id = :ff AND name = 'y';

-- Draining gives unclaimed assignments back; going offline loses running jobs, which
-- are retried while retries remain.
SELECT dispatch.submit_joblist('{"name": "drain", "stages": [{"jobs": [
  {"name": "p", "command": "p", "needs": {"handdriven": 1}},
  {"name": "q", "command": "q", "needs": {"handdriven": 1}, "retries": 1},
  {"name": "r", "command": "r", "needs": {"handdriven": 1}, "retries": 1}]}]}') AS dl \gset
SELECT dispatch._assign(job_id, 'a1', '{}', '{}') FROM dispatch.jobs
 WHERE joblist_id = :dl AND name IN ('q', 'r') ORDER BY job_id;
SELECT name FROM dispatch.agent_poll('a1');
SELECT dispatch._assign(job_id, 'a1', '{}', '{}') FROM dispatch.jobs
 WHERE joblist_id = :dl AND name = 'p';
SELECT dispatch.agent_drain('a1');
SELECT state FROM dispatch.nodes WHERE node = 'a1';
SELECT count(*) FROM dispatch.agent_poll('a1');
SELECT dispatch.agent_offline('a1');
SELECT j.name, e.state, e.attempt, e.node, e.detail
  FROM dispatch.job_events e JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :dl ORDER BY j.job_id, e.event_id;
SELECT dispatch.agent_heartbeat('a1');
SELECT count(*) FROM dispatch.agent_poll('a1');
-- Re-registering brings the node back; running jobs it does not list are lost.
SELECT dispatch.agent_register('a1', '{}') IS NOT NULL AS ok;
SELECT dispatch._assign(job_id, 'a1', '{}', '{}') FROM dispatch.jobs
 WHERE joblist_id = :dl AND name = 'q';
SELECT name FROM dispatch.agent_poll('a1');
SELECT dispatch.agent_register('a1', '{"jobs": []}') IS NOT NULL AS ok;
SELECT name, state, attempt, reason FROM dispatch.jobs WHERE joblist_id = :dl AND name = 'q';
SELECT pg_temp.housekeep() AS housekept;
SELECT state, reason FROM dispatch.joblist_status WHERE joblist_id = :dl;

-- History: every attempt that ended and every finished joblist, kept when the joblists
-- are deleted.
SELECT j.name, h.attempt, h.joblist, h.node, h.state, h.exit_code, h.signal, h.reason
  FROM dispatch.job_history h JOIN dispatch.jobs j USING (job_id)
 WHERE h.joblist_id = :jl ORDER BY h.job_id, h.attempt;
SELECT name, state, jobs, jobs_succeeded, reason FROM dispatch.joblist_history
 WHERE joblist_id IN (:jl, :ff, :dl) ORDER BY joblist_id;
DELETE FROM dispatch.joblists WHERE joblist_id IN (:jl, :ff);
SELECT count(*) AS attempts, count(DISTINCT joblist_id) AS joblists FROM dispatch.job_history
 WHERE joblist_id IN (:jl, :ff);

-- Presence: one record a minute of which nodes are online, draining and offline; a
-- node that changes state within the minute is in both arrays.
SELECT dispatch.agent_register('a2', '{}') IS NOT NULL AS ok;
SELECT dispatch.agent_drain('a2');
DELETE FROM dispatch.presence;	-- the monitor's first round recorded the minute the server started
BEGIN;	-- one now(), so one minute
SELECT dispatch._record_presence();
SELECT dispatch.agent_offline('a2');
SELECT dispatch._record_presence();
COMMIT;
SELECT 'a1' = ANY (online) AS a1_online,
       'a2' = ANY (draining) AND 'a2' = ANY (offline) AS a2_draining_then_offline,
       cardinality(online) + cardinality(draining) + cardinality(offline) AS entries,
       (SELECT count(*) FROM dispatch.nodes) + 1 AS nodes_plus_one_change
  FROM dispatch.presence;
DROP FUNCTION pg_temp.housekeep();
