-- Limits on what a user submits (issue 12, holes 9 and 10, and its "also fix" list):
-- jobs per joblist, env and constraint sizes, goals per role, cancelling by name,
-- fire times at the end of the timestamp range.  Prints no serial ids.
\set SHOW_CONTEXT never
CREATE ROLE lim_alice LOGIN IN ROLE dispatch_user;  -- LOGIN: a SQL job runs as its owner
CREATE ROLE lim_bob IN ROLE dispatch_user;
CREATE ROLE lim_boss IN ROLE dispatch_admin;

-- dispatch.max_jobs_per_joblist: counted over all stages, refused before anything is
-- stored (no joblist, no job, no id used up), at the top level and inside a goal.
SET dispatch.max_jobs_per_joblist = 3;
SELECT (SELECT last_value FROM dispatch.joblists_joblist_id_seq) AS seq_before \gset
SELECT dispatch.submit_joblist('{"name": "lim_big", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "b", "command": "true"}]},
  {"jobs": [{"name": "c", "command": "true"}, {"name": "d", "command": "true"}]}]}');
SELECT count(*) AS stored FROM dispatch.joblists WHERE name = 'lim_big';
SELECT last_value = :seq_before AS no_id_used FROM dispatch.joblists_joblist_id_seq;
SELECT dispatch.create_goal('lim_goal', '{"schedule": "@daily", "joblist": {"stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "b", "command": "true"},
            {"name": "c", "command": "true"}, {"name": "d", "command": "true"}]}]}}');
SELECT count(*) AS goals FROM dispatch.goals WHERE name = 'lim_goal';
-- the limit itself is allowed; the count comes before any other error
SELECT dispatch.submit_joblist('{"name": "lim_ok", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "b", "command": "true"}]},
  {"jobs": [{"name": "c", "command": "true"}]}]}') IS NOT NULL AS submitted;
SELECT dispatch.submit_joblist('{"name": "lim_big", "stages": [
  {"jobs": [{"name": "a"}, {"name": "a"}, {"name": "a"}, {"name": "a"}]}]}');
SELECT dispatch.submit_joblist('{"name": "lim_big", "stages": [{}, {}, {}, {}]}');
RESET dispatch.max_jobs_per_joblist;
SELECT dispatch.cancel_joblist('lim_ok');

-- Duplicate names are found in one pass; the first error in spec order still wins.
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "b", "command": "true"}]},
  {"jobs": [{"name": "c", "command": "true"}, {"name": "b", "command": "true"},
            {"name": "a", "command": "true"}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "a", "command": 1}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "b", "command": 1},
            {"name": "a", "command": "true"}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"jobs": [{"name": "1", "command": "true"}, {"name": 1, "command": "true"}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, ["not", "a", "job"],
            {"name": "a", "command": "true"}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"name": "stage1", "jobs": [{"name": "a", "command": "true"}]},
  {"jobs": [{"name": "b", "command": "true"}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"name": "x", "jobs": [{"name": "a", "command": "true"}]},
  {"name": "y", "jobs": [{"name": "a", "command": "true"}]},
  {"name": "x", "jobs": [{"name": "c", "command": "true"}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"name": "x", "jobs": [{"name": "a", "command": "true"}]},
  {"name": "x", "jobs": [{"name": "a", "command": "true"}]}]}');
SELECT dispatch.submit_joblist('{"name": "d", "stages": [
  {"name": "x", "jobs": [{"name": "a", "command": "true"}]}, "x",
  {"name": "x", "jobs": [{"name": "b", "command": "true"}]}]}');
SELECT count(*) AS stored FROM dispatch.joblists WHERE name = 'd';

-- Plain jobs are vouched for in one set-based check; whatever it does not vouch for is
-- validated one by one, so each of these still gets its own error.
DO $$
DECLARE
    j jsonb;
    msg text;
    detail text;
BEGIN
    FOR j IN VALUES ('{"name": "a"}'::jsonb), ('{"name": "a", "command": ""}'),
                    ('{"name": "a", "command": "true", "needs": {"cpu": 1.5}}'),
                    ('{"name": "a", "command": "true", "needs": {"cpu": "1"}}'),
                    ('{"name": "a", "command": "true", "needs": {"cpu": 0}}'),
                    ('{"name": "a", "command": "true", "needs": {"cpu": 1000000001}}'),
                    ('{"name": "a", "command": "true", "needs": {"CPU": 1}}'),
                    ('{"name": "a", "command": "true", "needs": []}'),
                    ('{"name": "a", "command": "true", "env": {"DISPATCH_X": "1"}}'),
                    ('{"name": "a", "command": "true", "env": {"A": 1}}'),
                    ('{"name": "a", "command": "true", "env": ["A"]}'),
                    ('{"name": "a", "command": "true", "retries": 101}'),
                    ('{"name": "a", "command": "true", "retries": -1}'),
                    ('{"name": "a", "command": "true", "retries": 1.5}'),
                    ('{"name": "a", "command": "true", "cmd": "x"}'),
                    ('{"name": "ok", "command": "true"}'),
                    ('{"name": "", "command": "true"}'),
                    (jsonb_build_object('name', repeat('n', 201), 'command', 'true')) LOOP
        BEGIN
            PERFORM dispatch.submit_joblist(jsonb_build_object('name', 'p', 'stages',
                jsonb_build_array(jsonb_build_object('jobs', jsonb_build_array(
                    '{"name": "ok", "command": "true", "needs": {"cpu": 2}, "env": {"A": "1"},
                      "retries": 3}'::jsonb, j)))));
            RAISE NOTICE 'accepted: %', j;
        EXCEPTION WHEN invalid_parameter_value THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
            RAISE NOTICE '% (%)', msg, detail;
        END;
    END LOOP;
END
$$;

-- env is bounded by dispatch.max_env_size (as JSON text), a constraint value by the
-- longest label value (255 characters): the error names the JSON path.
SET dispatch.max_env_size = '1kB';
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'lim_env', 'stages', jsonb_build_array(
  jsonb_build_object('jobs', jsonb_build_array(
    jsonb_build_object('name', 'a', 'command', 'true', 'env', jsonb_build_object('A', 'x')),
    jsonb_build_object('name', 'b', 'command', 'true',
                       'env', jsonb_build_object('A', repeat('x', 600), 'B', repeat('y', 600))))))));
SELECT dispatch.create_goal('lim_goal', jsonb_build_object('schedule', '@daily',
  'command', 'true', 'env', jsonb_build_object('A', repeat('x', 1100))));
RESET dispatch.max_env_size;
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'lim_env', 'stages', jsonb_build_array(
  jsonb_build_object('jobs', jsonb_build_array(
    jsonb_build_object('name', 'a', 'command', 'true',
                       'constraints', jsonb_build_object('zone', repeat('z', 255))),
    jsonb_build_object('name', 'b', 'command', 'true',
                       'constraints', jsonb_build_object('rack', 'r1', 'zone', repeat('z', 256))))))));
SELECT count(*) AS stored FROM dispatch.joblists WHERE name = 'lim_env';

-- dispatch.max_goals_per_user: goals and SQL jobs count together, per owner; admins
-- are exempt; changing a goal one owns is not creating one.
SET dispatch.max_goals_per_user = 2;
SET ROLE lim_alice;
SELECT dispatch.create_goal('lim_a1', '{"schedule": "@daily", "command": "true"}') > 0 AS created;
SELECT dispatch.schedule('lim_a2', '@daily', 'SELECT 1') > 0 AS created;
SELECT dispatch.create_goal('lim_a3', '{"schedule": "@daily", "command": "true"}');
SELECT dispatch.schedule('lim_a4', '@daily', 'SELECT 1');
SELECT dispatch.alter_goal('lim_a1', '{"schedule": "@hourly", "command": "true"}');
SELECT dispatch.schedule('lim_a2', '@hourly', 'SELECT 2') > 0 AS changed;
RESET ROLE;
SET ROLE lim_bob;
SELECT dispatch.create_goal('lim_b1', '{"schedule": "@daily", "command": "true"}') > 0 AS created;
RESET ROLE;
SET ROLE lim_boss;
SELECT count(dispatch.create_goal('lim_boss' || i, '{"schedule": "@daily", "command": "true"}'))
  AS admin_created FROM generate_series(1, 3) i;
RESET ROLE;
SELECT owner, count(*) FROM dispatch.goals WHERE owner::text LIKE 'lim\_%' GROUP BY owner
 ORDER BY owner;
SET dispatch.max_goals_per_user = 0;
SET ROLE lim_bob;
SELECT dispatch.create_goal('lim_b2', '{"schedule": "@daily", "command": "true"}');
RESET ROLE;
RESET dispatch.max_goals_per_user;
SELECT dispatch.drop_goal(name) FROM dispatch.goals WHERE owner::text LIKE 'lim\_%' AND kind = 'jobs';
SELECT dispatch.unschedule(goal_id) FROM dispatch.goals WHERE owner::text LIKE 'lim\_%';

-- cancel_joblist(name) cancels the caller's joblists of that name, never another
-- role's (admins cancel those by id).
SET ROLE lim_alice;
SELECT dispatch.submit_joblist('{"name": "lim_twin", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"lim_nothing": 1}}]}]}') IS NOT NULL AS submitted;
RESET ROLE;
SET ROLE lim_bob;
SELECT dispatch.submit_joblist('{"name": "lim_twin", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"lim_nothing": 1}}]}]}') IS NOT NULL AS submitted;
SELECT dispatch.submit_joblist('{"name": "lim_twin", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"lim_nothing": 1}}]}]}') IS NOT NULL AS submitted;
SELECT dispatch.cancel_joblist('lim_twin') AS cancelled;
SELECT submitted_by, state, count(*) FROM dispatch.joblists WHERE name = 'lim_twin'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT dispatch.cancel_joblist('lim_twin');
RESET ROLE;
SET ROLE lim_boss;
SELECT dispatch.cancel_joblist('lim_twin');
RESET ROLE;
SET ROLE lim_alice;
SELECT dispatch.cancel_joblist('lim_twin') AS cancelled;
RESET ROLE;
SELECT dispatch.cancel_joblist('lim_twin');
SELECT submitted_by, state, count(*) FROM dispatch.joblists WHERE name = 'lim_twin'
 GROUP BY 1, 2 ORDER BY 1, 2;

-- Fire times end before the last timestamp PostgreSQL holds (294276-12-31 23:59:59 UTC).
SET timezone = 'UTC';
SELECT * FROM dispatch.next_runs('* * * * *', '294276-12-31 23:57:00+00', 5, 'UTC');
SELECT * FROM dispatch.next_runs('59 23 31 12 *', '294270-01-01 00:00:00+00', 10, 'UTC');
SELECT * FROM dispatch.next_runs('17 seconds', '294276-12-31 23:59:00+00', 10, 'UTC');
SELECT dispatch._cron_next('* * * * *', '294276-12-31 23:59:00+00', 'UTC') AS next_at_end;
SELECT dispatch._cron_next('0 0 1 1 *', '294276-12-31 23:59:30+00', 'Asia/Tokyo') AS next_at_end;
SELECT dispatch._cron_latest('* * * * *', '294276-12-31 23:50:00+00', 'infinity', 'UTC')
    AS latest_at_end;
RESET timezone;

-- The latest fire in (after, until] is exactly the last of the listed fires.
SELECT count(*) AS compared, count(*) FILTER (WHERE exact) AS exact
  FROM (SELECT dispatch._cron_latest(s, a, a + span, 'Europe/Berlin') IS NOT DISTINCT FROM
               (SELECT max(t) FROM dispatch.next_runs(s, a, 100000, 'Europe/Berlin') t
                 WHERE t <= a + span) AS exact
          FROM unnest(ARRAY['* * * * *', '*/7 * * * *', '30 2 * * *', '0 9 * * 1-5',
                            '0 0 $ * *', '1 seconds', '13 seconds', '0 0 30 2 *',
                            '@reboot']) s,
               (VALUES (timestamptz '2024-03-30 22:17:13+01'),
                       ('2024-10-26 23:59:59+02')) x(a),
               (VALUES (interval '0'), ('1 second'), ('1 minute'), ('1 hour'),
                       ('3 days')) y(span)
         WHERE NOT (s LIKE '%seconds' AND span > '1 hour')) c;

-- A job needs at most 64 resource types and gives at most 64 constraints (each costs
-- every scheduling cycle); the limit itself is allowed, one more is refused and
-- stores nothing, at the top level and inside a goal.
CREATE FUNCTION pg_temp.job_with(name text, what text, n int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('name', name, 'stages', jsonb_build_array(jsonb_build_object(
             'jobs', jsonb_build_array(jsonb_build_object('name', 'j', 'command', 'true', what,
               (SELECT jsonb_object_agg('t' || i, CASE what WHEN 'needs' THEN to_jsonb(1)
                                                            ELSE to_jsonb('x'::text) END)
                  FROM generate_series(1, n) i))))))
$$;
SELECT dispatch.submit_joblist(pg_temp.job_with('lim_needs', 'needs', 65));
SELECT dispatch.submit_joblist(pg_temp.job_with('lim_cons', 'constraints', 65));
SELECT dispatch.create_goal('lim_goal2', jsonb_build_object('schedule', '@daily',
         'joblist', pg_temp.job_with('g', 'needs', 65) - 'name'));
SELECT count(*) AS stored FROM dispatch.joblists WHERE name IN ('lim_needs', 'lim_cons');
SELECT count(*) AS goals FROM dispatch.goals WHERE name = 'lim_goal2';
SELECT dispatch.submit_joblist(pg_temp.job_with('lim_needs', 'needs', 64)) IS NOT NULL AS submitted;
SELECT dispatch.submit_joblist(pg_temp.job_with('lim_cons', 'constraints', 64)) IS NOT NULL AS submitted;
SELECT dispatch.cancel_joblist('lim_needs'), dispatch.cancel_joblist('lim_cons');

DROP ROLE lim_alice, lim_bob, lim_boss;
