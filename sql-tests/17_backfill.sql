-- Backfill without overtaking: reservations with and without time limits, the
-- reasons and expected starts of waiting jobs, and dispatch.default_time_limit.
-- Jobs need the type "bfslot", which only node bf1 offers (four of them); nothing
-- claims them, so an assigned job holds its slots until assigned_at + timeout +
-- kill_grace (10s).  No serial id is printed, so this file passes alone after
-- 00_setup as well as in the full run.
\set SHOW_CONTEXT never
SELECT dispatch.agent_register('bf1', '{"resources": [
  {"type": "bfslot", "ident": "0"}, {"type": "bfslot", "ident": "1"},
  {"type": "bfslot", "ident": "2"}, {"type": "bfslot", "ident": "3"}]}') IS NOT NULL AS registered;

-- Waits (with a deadline) until the scheduler has seen every bf job.
CREATE FUNCTION pg_temp.settle() RETURNS boolean LANGUAGE sql AS $$
    SELECT wait_for($q$SELECT NOT EXISTS (SELECT 1 FROM dispatch.job_status
                         WHERE joblist LIKE 'bf-%' AND state = 'pending'
                           AND reason = 'waiting for the scheduler')$q$)
$$;
CREATE FUNCTION pg_temp.bf(name text, slots int, timeout text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT dispatch.submit_joblist(jsonb_build_object('name', name, 'stages',
             jsonb_build_array(jsonb_build_object('jobs', jsonb_build_array(
               jsonb_build_object('name', 'j', 'command', 'true',
                                  'needs', jsonb_build_object('bfslot', slots))
               || CASE WHEN timeout IS NULL THEN '{}'
                       ELSE jsonb_build_object('timeout', timeout) END)))))
$$;
CREATE FUNCTION pg_temp.job(joblist_name text) RETURNS dispatch.job_status LANGUAGE sql AS $$
    SELECT * FROM dispatch.job_status WHERE joblist = joblist_name
$$;

-- With time limits.  hold takes 3 of the 4 slots for an hour; big needs all 4, so
-- it is promised the slots from hold's end.  short ends before that and starts at
-- once; long and nolimit would still run then: they wait behind big's reservation
-- and are promised the slots from big's end.
BEGIN;
SELECT pg_temp.bf('bf-hold', 3, '1h') IS NOT NULL AS submitted;
SELECT pg_temp.bf('bf-big', 4, '10min') IS NOT NULL AS submitted;
SELECT pg_temp.bf('bf-long', 1, '2h') IS NOT NULL AS submitted;
SELECT pg_temp.bf('bf-nolimit', 1, NULL) IS NOT NULL AS submitted;
SELECT pg_temp.bf('bf-short', 1, '30min') IS NOT NULL AS submitted;
COMMIT;
SELECT pg_temp.settle() AS settled;
SELECT joblist, state, node,
       regexp_replace(reason, 'job [0-9]+ from [0-9]{2}:[0-9]{2}$', 'job <big> from <hh:mm>')
           AS reason,
       expected_start IS NOT NULL AS has_start, expected_node
  FROM dispatch.job_status WHERE joblist LIKE 'bf-%' ORDER BY job_id;
-- long names the job it waits for.
SELECT (pg_temp.job('bf-long')).reason
           = 'reserved for job ' || (pg_temp.job('bf-big')).job_id || ' from '
             || substring((pg_temp.job('bf-long')).reason FROM '[0-9]{2}:[0-9]{2}$')
           AS long_names_big;
-- A reservation is a promise: a new submission wakes the scheduler, and the next
-- cycle moves none later (the cycle that placed hold counted its end from its own
-- start; from now on it counts from the second before hold's assignment).  short
-- now holds the slot that was free, so long's reason changes.
SELECT expected_start AS big_start FROM dispatch.job_status WHERE joblist = 'bf-big' \gset
SELECT pg_temp.bf('bf-later', 1, '5h') IS NOT NULL AS submitted;
SELECT pg_temp.settle() AS settled;
SELECT (pg_temp.job('bf-big')).expected_start <= :'big_start' AS big_kept,
       (pg_temp.job('bf-later')).reason = 'not enough bfslot free (needs 1)' AS later_reason,
       (pg_temp.job('bf-long')).reason = 'not enough bfslot free (needs 1)' AS long_now_full;
-- big starts when hold has used up its limit and grace; the others when big has.
SELECT (pg_temp.job('bf-big')).expected_start
           = to_timestamp(floor(extract(epoch FROM (pg_temp.job('bf-hold')).assigned_at))
                          - 1 + 3610) AS big_after_hold,
       (pg_temp.job('bf-long')).expected_start
           = (pg_temp.job('bf-big')).expected_start + interval '10min 10s' AS long_after_big,
       (pg_temp.job('bf-nolimit')).expected_start
           = (pg_temp.job('bf-big')).expected_start + interval '10min 10s' AS nolimit_after_big,
       (pg_temp.job('bf-later')).expected_start
           = (pg_temp.job('bf-big')).expected_start + interval '10min 10s' AS later_after_big;
-- An assigned job has no reservation to show.
SELECT expected_start IS NULL AND expected_node IS NULL AS none_when_assigned
  FROM dispatch.job_status WHERE joblist = 'bf-short';
SELECT count(dispatch.cancel_joblist(joblist_id)) AS cancelled
  FROM dispatch.joblist_status WHERE name LIKE 'bf-%' AND state IN ('queued', 'running');

-- Without time limits.  hold2 has no limit, so nobody knows when big2 can start:
-- big2 holds its slots from now on, and small2 waits although its limit is short
-- and a slot is free (strict FIFO, as t/002_fifo.pl checks with real agents).
BEGIN;
SELECT pg_temp.bf('bf-hold2', 3, NULL) IS NOT NULL AS submitted;
SELECT pg_temp.bf('bf-big2', 4, '10min') IS NOT NULL AS submitted;
SELECT pg_temp.bf('bf-small2', 1, '1min') IS NOT NULL AS submitted;
COMMIT;
SELECT pg_temp.settle() AS settled;
SELECT joblist, state, expected_start, expected_node
  FROM dispatch.job_status WHERE joblist IN ('bf-hold2', 'bf-big2', 'bf-small2')
 ORDER BY job_id;
SELECT (pg_temp.job('bf-big2')).reason = 'not enough bfslot free (needs 4)' AS big2_reason,
       (pg_temp.job('bf-small2')).reason
           = 'earlier joblist ' || (pg_temp.job('bf-big2')).joblist_id || ' holds the queue'
           AS small2_reason;
SELECT count(dispatch.cancel_joblist(joblist_id)) AS cancelled
  FROM dispatch.joblist_status WHERE name LIKE 'bf-%' AND state IN ('queued', 'running');

-- dispatch.default_time_limit: the limit of jobs submitted without a timeout.
SHOW dispatch.default_time_limit;
SET dispatch.default_time_limit = '5min';
BEGIN;
SELECT pg_temp.bf('bf-default', 1, NULL) IS NOT NULL AS submitted;
SELECT pg_temp.bf('bf-own', 1, '1h') IS NOT NULL AS submitted;
COMMIT;
RESET dispatch.default_time_limit;
SELECT pg_temp.bf('bf-none', 1, NULL) IS NOT NULL AS submitted;
SELECT joblist, timeout FROM dispatch.job_status
 WHERE joblist IN ('bf-default', 'bf-own', 'bf-none') ORDER BY job_id;
SET dispatch.default_time_limit = -1;
SET dispatch.default_time_limit = 'soon';
SET ROLE dispatch_user;
SET dispatch.default_time_limit = '1h';
RESET ROLE;
SHOW dispatch.max_reservations;
SET dispatch.max_reservations = 10;
SHOW dispatch.max_job_test;
SET dispatch.max_job_test = 10;
SELECT pg_temp.settle() AS settled;

-- Clean up: nothing of this file stays queued or online.
SELECT count(dispatch.cancel_joblist(joblist_id)) AS cancelled
  FROM dispatch.joblist_status WHERE name LIKE 'bf-%' AND state IN ('queued', 'running');
SELECT dispatch.agent_offline('bf1');
SELECT count(*) AS bf_slots_held FROM dispatch.resource_status
 WHERE type = 'bfslot' AND job_id IS NOT NULL;
