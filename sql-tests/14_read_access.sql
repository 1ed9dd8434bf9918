-- Users see all, read their own (issue 12, read access).  Every dispatch_user sees
-- every job's state; a job's command, env, files and output, a joblist's spec and a
-- goal's spec are readable only by the submitter and admins.  User B tries every
-- path to user A's secrets: tables, views, job_log, a leaky function, notifications.
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE ROLE ra_alice IN ROLE dispatch_user;
CREATE ROLE ra_bob IN ROLE dispatch_user;
CREATE ROLE ra_boss IN ROLE dispatch_admin;
CREATE ROLE ra_agent IN ROLE dispatch_agent;

-- Alice submits a job with a secret in its command, env and a file, and a goal.
SET ROLE ra_alice;
SELECT dispatch.submit_joblist('{"name": "ra-secret", "stages": [{"jobs": [
  {"name": "s", "command": "login --password=cmd-secret", "needs": {"ra_slot": 1},
   "env": {"TOKEN": "env-secret"},
   "files": [{"path": "creds.ini", "content": "file-secret"}]}]}]}') AS jl \gset
SELECT dispatch.create_goal('ra-goal', '{"schedule": "@yearly", "command": "goal-cmd-secret",
  "env": {"TOKEN": "goal-env-secret"}}') > 0 AS goal_created;
RESET ROLE;
SELECT job_id AS j FROM dispatch.jobs WHERE joblist_id = :jl \gset
-- Its node runs it and sends output.
SET ROLE ra_agent;
SELECT dispatch.agent_register('ra-node', '{}') IS NOT NULL AS registered;
RESET ROLE;
SELECT dispatch._assign(:j, 'ra-node', '{}', '{}');
SET ROLE ra_agent;
SELECT action, command, env, files FROM dispatch.agent_poll('ra-node');
SELECT dispatch.agent_output('ra-node', :j, 1, 'stdout', 0, 'output-secret') > 0 AS stored;
-- An agent reads nothing directly, not even the output of its own node's job.
SELECT count(*) FROM dispatch.job_output;
SELECT count(*) FROM dispatch.job_files;
RESET ROLE;

-- Bob sees the job, its state and its node ...
SET ROLE ra_bob;
SELECT name, state, node FROM dispatch.job_status WHERE job_id = :j;
SELECT state, submitted_by FROM dispatch.joblist_status WHERE joblist_id = :jl;
SELECT name, state, node, needs, output_bytes FROM dispatch.jobs WHERE job_id = :j;
SELECT name, state, submitted_by FROM dispatch.joblists WHERE joblist_id = :jl;
SELECT name, kind, owner, schedule FROM dispatch.goals WHERE name = 'ra-goal';
SELECT name, owner, active FROM dispatch.goal_status WHERE name = 'ra-goal';
-- ... but none of its secrets, by any path.
SELECT command, env FROM dispatch.job_status WHERE job_id = :j;
SELECT spec FROM dispatch.joblist_status WHERE joblist_id = :jl;
SELECT spec FROM dispatch.goal_status WHERE name = 'ra-goal';
SELECT command FROM dispatch.jobs WHERE job_id = :j;
SELECT env FROM dispatch.jobs WHERE job_id = :j;
SELECT * FROM dispatch.jobs WHERE job_id = :j;
SELECT spec FROM dispatch.joblists WHERE joblist_id = :jl;
SELECT spec FROM dispatch.goals WHERE name = 'ra-goal';
SELECT joblist FROM dispatch.goals WHERE name = 'ra-goal';
SELECT command FROM dispatch.goals WHERE name = 'ra-goal';
SELECT count(*) AS output_rows FROM dispatch.job_output WHERE job_id = :j;
SELECT count(*) AS file_rows FROM dispatch.job_files WHERE job_id = :j;
\set VERBOSITY sqlstate
SELECT dispatch.job_log(:j);
SELECT dispatch.job_log(:j, 'stderr');
SELECT dispatch.job_log(:j, 'stdout', 1);
\set VERBOSITY default
-- A function that leaks what it is shown sees no row of another user's output.
CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    RAISE NOTICE 'leaked: %', $1;
    RETURN true;
END
$$;
SELECT count(*) FROM dispatch.job_output WHERE pg_temp.leak(data);
SELECT count(*) FROM dispatch.job_files WHERE pg_temp.leak(content);
SELECT count(*) FROM dispatch.job_status WHERE job_id = :j AND pg_temp.leak(coalesce(command, '-') || coalesce(env::text, '-'));
-- Bob still cannot cancel Alice's work.
\set VERBOSITY sqlstate
SELECT dispatch.cancel_job(:j);
\set VERBOSITY default
DROP FUNCTION pg_temp.leak(text);
RESET ROLE;

-- Alice reads her own job's secrets, by every path.
SET ROLE ra_alice;
SELECT command, env FROM dispatch.job_status WHERE job_id = :j;
SELECT spec #>> '{stages,0,jobs,0,env,TOKEN}' AS spec_token FROM dispatch.joblist_status
 WHERE joblist_id = :jl;
SELECT spec ->> 'command' AS goal_command FROM dispatch.goal_status WHERE name = 'ra-goal';
SELECT path, content FROM dispatch.job_files WHERE job_id = :j;
SELECT data FROM dispatch.job_output WHERE job_id = :j;
SELECT dispatch.job_log(:j);
RESET ROLE;

-- An admin reads everything.
SET ROLE ra_boss;
SELECT command, env FROM dispatch.job_status WHERE job_id = :j;
SELECT spec IS NOT NULL AS sees_spec FROM dispatch.joblist_status WHERE joblist_id = :jl;
SELECT spec ->> 'command' AS goal_command FROM dispatch.goal_status WHERE name = 'ra-goal';
SELECT content FROM dispatch.job_files WHERE job_id = :j;
SELECT data FROM dispatch.job_output WHERE job_id = :j;
SELECT dispatch.job_log(:j);
RESET ROLE;

-- No notification carries output, env or a spec: any role may LISTEN on any
-- channel, so a payload is public.  Every pg_notify of the extension sends a fixed
-- word ('run', 'cancel', 'scratch' or 'signal' on a node's channel, 'output' on a
-- job's), except dispatch._event(), whose payload is built from ids and states
-- only (47_events.sql); a new one shows up here and must be read.
SELECT p.proname, m[1] AS call
  FROM pg_proc p, regexp_matches(p.prosrc, '(pg_notify\s*\([^;]*)', 'g') m
 WHERE p.pronamespace = 'dispatch'::regnamespace
   AND m[1] !~ '^pg_notify\(''dispatch_node_'' \|\| [a-z.]+, ''(run|cancel|scratch|signal)''\)'
   AND m[1] !~ '^pg_notify\(''dispatch_job_'' \|\| [a-z._]+, ''output''\)';
SELECT count(*) > 0 AS notifies_checked
  FROM pg_proc p WHERE p.pronamespace = 'dispatch'::regnamespace AND p.prosrc ~ 'pg_notify';

-- Following a job's output tells only that output was stored (output_bytes shows it to
-- all), so bob may follow alice's job; he still cannot read it, and a session follows
-- at most 256 jobs (each makes every chunk of its job cost a NOTIFY).
SET ROLE ra_bob;
SELECT dispatch.follow_output(:j) AS bob_follows;
\set VERBOSITY sqlstate
SELECT dispatch.job_log(:j);
\set VERBOSITY default
SELECT dispatch.follow_output(:j) AS again_counts_once;
SELECT dispatch.unfollow_output(:j) AND dispatch.unfollow_output(:j) AS unfollowed;
SELECT dispatch.follow_output(-1);
RESET ROLE;
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'ra-many', 'stages',
    jsonb_build_array(jsonb_build_object('jobs', (SELECT jsonb_agg(jsonb_build_object(
        'name', 'm' || i, 'command', 'true', 'needs', jsonb_build_object('ra_nothing', 1)))
      FROM generate_series(1, 257) i))))) AS many \gset
SET ROLE ra_bob;
SELECT count(*) FILTER (WHERE dispatch.follow_output(job_id)) AS followed
  FROM (SELECT job_id FROM dispatch.job_status WHERE joblist_id = :many ORDER BY job_id LIMIT 256) j;
SELECT dispatch.follow_output(max(job_id)) FROM dispatch.job_status WHERE joblist_id = :many;
SELECT pg_advisory_unlock_all();
RESET ROLE;
DELETE FROM dispatch.joblists WHERE joblist_id = :many;

-- Clean up: later files see no trace.
SET ROLE ra_agent;
SELECT dispatch.agent_finish('ra-node', :j, 1, 0, NULL, false);
SELECT dispatch.agent_offline('ra-node');
RESET ROLE;
SELECT dispatch.drop_goal('ra-goal');
DELETE FROM dispatch.joblists WHERE joblist_id = :jl;
DELETE FROM dispatch.nodes WHERE node = 'ra-node';
DROP ROLE ra_alice, ra_bob, ra_boss, ra_agent;
