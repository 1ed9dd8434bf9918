-- The goal API and the pg_cron-compatible API: what they store, and every error.
-- Schedules fire once a year at most here, so the scheduler stays out of the way.
\set SHOW_CONTEXT never
\set VERBOSITY default

-- Malformed goals: SQLSTATE 22023 and the JSON path in the detail; nothing stored.
SELECT dispatch.create_goal(NULL, '{"schedule": "@yearly", "command": "true"}');
SELECT dispatch.create_goal('', '{"schedule": "@yearly", "command": "true"}');
SELECT dispatch.create_goal(repeat('g', 201), '{"schedule": "@yearly", "command": "true"}');
SELECT dispatch.create_goal('g', NULL);
SELECT dispatch.create_goal('g', '[]');
SELECT dispatch.create_goal('g', '{"command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "command": "true", "colour": "red"}');
SELECT dispatch.create_goal('g', '{"schedule": 5, "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "61 * * * *", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "0 0 30 2 *", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "timezone": "Mars/Base", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "timezone": 1, "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "window": "soon", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "window": 0, "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "window": "-1 hour", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "instances": 0, "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "instances": 1001, "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "instances": "2", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "spread": "yes", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "overlap": "wait", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "overlap": 1, "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "catch_up": "all", "command": "true"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly"}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "command": ""}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "command": "true", "needs": {"gpu": 0}}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "command": "true", "files": [{"path": "/etc/x", "content": ""}]}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "command": "true", "joblist": {}}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "joblist": []}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "joblist": {"stages": []}}');
SELECT dispatch.create_goal('g', '{"schedule": "@yearly", "joblist": {"stages": [{"jobs": [{"name": "a"}]}]}}');
SELECT count(*) AS goals FROM dispatch.goals;

-- Valid goals; the instance joblist is derived from the job keys, or given whole.
SELECT dispatch.create_goal('nightly', '{"schedule": "0 3 1 1 *", "timezone": "Europe/Berlin",
  "window": "2 hours", "instances": 2, "spread": true, "overlap": "replace", "catch_up": "once",
  "command": "./serve.sh", "needs": {"cpu": 2}, "constraints": {"zone": "a"}}') > 0 AS created;
SELECT dispatch.create_goal('report', '{"schedule": "@yearly", "joblist": {"stages": [
  {"jobs": [{"name": "extract", "command": "true"}]}, {"jobs": [{"name": "mail", "command": "true"}]}]}}') > 0 AS created;
SELECT dispatch.create_goal('nightly', '{"schedule": "@yearly", "command": "true"}');
SELECT name, kind, schedule, timezone, run_window, instances, spread, overlap, catch_up, active,
       jsonb_pretty(joblist) AS joblist, next_fire_at > now() AS next_in_future
  FROM dispatch.goals ORDER BY goal_id;
SELECT name, timezone, "window", instances, active, next_fire > now() AS next_in_future,
       last_fire, last_outcome, instances_running, failures, backoff_until, skipped_fires
  FROM dispatch.goal_status ORDER BY goal_id;
-- The next fire follows the goal's time zone: 03:00 in Berlin is 02:00 UTC in winter.
SELECT to_char(next_fire_at AT TIME ZONE 'UTC', 'MM-DD HH24:MI') FROM dispatch.goals WHERE name = 'nightly';

-- Changing goals: unknown names, other owners, and what each call does.
SELECT dispatch.alter_goal('nope', '{"schedule": "@yearly", "command": "true"}');
SELECT dispatch.pause_goal('nope');
SELECT dispatch.resume_goal('nope');
SELECT dispatch.drop_goal('nope');
SELECT dispatch.run_goal_now('nope');
SELECT dispatch.alter_goal('report', '{"schedule": "@yearly", "command": "bad", "retries": -1}');
SELECT dispatch.alter_goal('report', '{"schedule": "@monthly", "command": "echo changed"}');
SELECT schedule, joblist #>> '{stages,0,jobs,0,command}' AS command FROM dispatch.goals WHERE name = 'report';
SELECT dispatch.pause_goal('report');
SELECT active FROM dispatch.goals WHERE name = 'report';
SELECT dispatch.resume_goal('report');
SELECT active, next_fire_at > now() AS next_in_future FROM dispatch.goals WHERE name = 'report';
CREATE ROLE goal_carol IN ROLE dispatch_user;
CREATE ROLE goal_dave IN ROLE dispatch_user;
SET ROLE goal_carol;
SELECT dispatch.create_goal('carols', '{"schedule": "@yearly", "command": "true"}') > 0 AS created;
SET ROLE goal_dave;
SELECT dispatch.pause_goal('carols');
SELECT dispatch.drop_goal('carols');
SELECT dispatch.run_goal_now('carols');
RESET ROLE;
SELECT owner, active FROM dispatch.goals WHERE name = 'carols';
-- run_goal_now starts a run at once; a second one while it runs follows the overlap rule.
SELECT dispatch.pause_goal('carols');
SELECT dispatch.run_goal_now('carols') > 0 AS fired;
SELECT cause, state, window_end FROM dispatch.goal_runs r JOIN dispatch.goals g USING (goal_id)
 WHERE g.name = 'carols';
SELECT dispatch.run_goal_now('carols') AS second;
SELECT skipped_fires FROM dispatch.goals WHERE name = 'carols';
SELECT dispatch.drop_goal('carols');
SELECT count(*) AS carols_left FROM dispatch.goals WHERE name = 'carols';

-- pg_cron's API: schedule, reschedule by name, alter_job, unschedule; dispatch.job.
SELECT dispatch.schedule('0 0 1 1 *', '') ;
SELECT dispatch.schedule('0 0 1 1 *', NULL);
SELECT dispatch.schedule(NULL, 'SELECT 1');
SELECT dispatch.schedule('0 0 31 2 *', 'SELECT 1');
SELECT dispatch.schedule('every day', 'SELECT 1');
-- SQL job names are apart from goal names (and per user), as in pg_cron.
SELECT dispatch.schedule('nightly', '@yearly', 'SELECT 1') > 0 AS scheduled;
SELECT dispatch.unschedule('nightly');
SELECT dispatch.schedule('0 0 1 1 *', 'SELECT 1') AS unnamed \gset
SELECT dispatch.schedule('vacuum-t', '0 0 1 1 *', 'VACUUM') AS named \gset
SELECT dispatch.schedule('vacuum-t', '0 1 1 1 *', 'VACUUM ANALYZE') = :named AS same_job;
SELECT jobname, schedule, command, database = current_database() AS here, username = current_user AS mine,
       active, nodename FROM dispatch.job ORDER BY jobid;
SELECT dispatch.alter_job(:named, schedule => '0 2 1 1 *', active => false);
SELECT schedule, active FROM dispatch.job WHERE jobid = :named;
SELECT dispatch.alter_job(:named, database => 'elsewhere');
SELECT dispatch.alter_job(:named, username => 'no_such_role');
SELECT dispatch.alter_job(:named, schedule => '* * *');
SELECT dispatch.alter_job(:named, command => ' ');
SELECT dispatch.alter_job(-5);
SELECT dispatch.alter_job(-5, active => true);
SET ROLE goal_dave;
SELECT dispatch.alter_job(:named, username => 'goal_dave');
SELECT dispatch.unschedule(:named);
SELECT dispatch.unschedule('vacuum-t');
RESET ROLE;
SELECT dispatch.unschedule(:unnamed);
SELECT dispatch.unschedule(:unnamed);
SELECT dispatch.unschedule('vacuum-t');
SELECT dispatch.unschedule('vacuum-t');
SELECT count(*) AS sql_jobs FROM dispatch.job;
-- History is bounded: runs that ended longer ago than dispatch.run_history_retention go.
INSERT INTO dispatch.job_run_details (jobid, runid, database, username, command, status, end_time)
VALUES (0, -1, 'db', 'u', 'SELECT 1', 'succeeded', now() - interval '8 days'),
       (0, -2, 'db', 'u', 'SELECT 1', 'succeeded', now() - interval '6 days');
SELECT count(*) AS ticked FROM dispatch._goal_tick();
SELECT runid FROM dispatch.job_run_details WHERE runid < 0;
DELETE FROM dispatch.job_run_details WHERE runid < 0;
SELECT dispatch.drop_goal(name) FROM dispatch.goals WHERE kind = 'jobs' ORDER BY goal_id;
DROP ROLE goal_carol, goal_dave;
