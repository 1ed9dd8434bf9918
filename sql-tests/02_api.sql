-- Cancelling, resources and output: the user API and its error paths.
\set SHOW_CONTEXT never
\set VERBOSITY default

-- Jobs that need a type nobody offers stay pending whatever the scheduler does; without
-- fail_fast, cancelling one job leaves the joblist running.
SELECT dispatch.submit_joblist('{"name": "c1", "fail_fast": false, "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"nothing": 1}},
  {"name": "b", "command": "true", "needs": {"nothing": 1}}]},
  {"jobs": [{"name": "c", "command": "true", "needs": {"nothing": 1}}]}]}') AS c1 \gset
SELECT dispatch.submit_joblist('{"name": "twin", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"nothing": 1}}]}]}') AS twin1 \gset
SELECT dispatch.submit_joblist('{"name": "twin", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"nothing": 1}}]}]}') AS twin2 \gset

-- cancel_job
SELECT dispatch.cancel_job(-1);
SELECT dispatch.cancel_job(job_id) FROM dispatch.jobs WHERE joblist_id = :c1 AND name = 'b';
SELECT dispatch.cancel_job(job_id) FROM dispatch.jobs WHERE joblist_id = :c1 AND name = 'b';
SELECT name, state, reason = 'cancelled by ' || current_user AS reason_ok
  FROM dispatch.jobs WHERE joblist_id = :c1 ORDER BY job_id;

-- cancel_joblist by id
SELECT dispatch.cancel_joblist(-1::bigint);
SELECT dispatch.cancel_joblist(:c1::bigint);
SELECT dispatch.cancel_joblist(:c1::bigint);
SELECT state, finished_at IS NOT NULL AS finished FROM dispatch.joblists WHERE joblist_id = :c1;
SELECT name, state FROM dispatch.jobs WHERE joblist_id = :c1 ORDER BY job_id;

-- cancel_joblist by name: every queued or running joblist of that name
SELECT dispatch.cancel_joblist('no such joblist');
SELECT dispatch.cancel_joblist('twin');
SELECT dispatch.cancel_joblist('twin');
SELECT joblist_id = :twin1 OR joblist_id = :twin2 AS twin, state
  FROM dispatch.joblists WHERE name = 'twin';

-- Resources: cluster-wide pools and node-local instances.
SELECT dispatch.add_resource('matlab', 'matlab-1') > 0 AS added;
SELECT dispatch.add_resource('matlab', 'matlab-1');
SELECT dispatch.add_resource('Matlab', 'x');
SELECT dispatch.add_resource('matlab', 'a,b');
SELECT dispatch.add_resource('matlab', 'a b');
SELECT dispatch.add_resource('matlab', '');
SELECT dispatch.add_resource(NULL, 'x');
SELECT dispatch.add_resource('matlab', 'm2', 'nowhere');
SELECT dispatch.agent_register('r1', '{}') IS NOT NULL AS registered;
SELECT dispatch.add_resource('fpga', '0', 'r1') > 0 AS added;
SELECT dispatch.add_resource('fpga', '0', 'r1');
SELECT type, ident, node, job_id, amount, capacity FROM dispatch.resource_status
 WHERE type IN ('matlab', 'fpga') ORDER BY type;
SELECT dispatch.remove_resource('fpga', '0');
SELECT dispatch.remove_resource('fpga', '0', 'r1');
SELECT dispatch.remove_resource('fpga', '0', 'r1');
-- A resource in use cannot be removed; the message names the job.
SELECT dispatch.submit_joblist('{"name": "holder", "stages": [{"jobs": [
  {"name": "h", "command": "true", "needs": {"nothing": 1}}]}]}') AS holder \gset
SELECT job_id AS holder_job FROM dispatch.jobs WHERE joblist_id = :holder \gset
SELECT dispatch._assign(:holder_job, 'r1', ARRAY[resource_id], ARRAY[1::bigint])
  FROM dispatch.resources WHERE type = 'matlab';
SELECT dispatch.remove_resource('matlab', 'matlab-1') IS NULL AS removed;
SELECT state, node, resources FROM dispatch.job_status WHERE job_id = :holder_job;
SELECT type, ident, node, job_id = :holder_job AS held FROM dispatch.resource_status
 WHERE type = 'matlab';

-- job_log
SELECT dispatch.job_log(-1);
SELECT dispatch.job_log(:holder_job, 'stdin');
SELECT dispatch.job_log(:holder_job) = '' AS empty_log;
SELECT dispatch.cancel_joblist(:holder::bigint);
