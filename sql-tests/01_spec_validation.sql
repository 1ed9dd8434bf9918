-- Every malformed joblist spec fails with SQLSTATE 22023, a message, and a detail
-- naming the JSON path; nothing is inserted.
\set SHOW_CONTEXT never
\set VERBOSITY default
SELECT dispatch.submit_joblist(NULL);
SELECT dispatch.submit_joblist('[]');
SELECT dispatch.submit_joblist('"x"');
SELECT dispatch.submit_joblist('{}');
SELECT dispatch.submit_joblist('{"stages": []}');
SELECT dispatch.submit_joblist('{"name": "x"}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [], "color": "red"}');
SELECT dispatch.submit_joblist('{"name": 1, "stages": []}');
SELECT dispatch.submit_joblist('{"name": "", "stages": []}');
SELECT dispatch.submit_joblist('{"name": null, "stages": []}');
SELECT dispatch.submit_joblist(jsonb_build_object('name', repeat('x', 201), 'stages', '[]'::jsonb));
SELECT dispatch.submit_joblist('{"name": "x", "fail_fast": "yes", "stages": []}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": {}}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": []}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [1]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [], "when": 1}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"name": 3, "jobs": []}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"name": "", "jobs": []}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"name": "a"}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"name": "a", "jobs": {}}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"name": "a", "jobs": []}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"name": "a", "jobs": [{"name": "j", "command": "c"}]}, {"name": "a", "jobs": [{"name": "k", "command": "c"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c"}]}, {"jobs": [[]]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"command": "c"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "prio": 1}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": 5, "command": "c"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c"}, {"name": "j", "command": "c"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c"}]}, {"jobs": [{"name": "j", "command": "c"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": ""}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": ["ls"]}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": [1]}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"GPU": 1}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"1gpu": 1}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"my-gpu": 1}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"my gpu": 1}}]}]}');
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'x', 'stages', jsonb_build_array(jsonb_build_object('jobs', jsonb_build_array(jsonb_build_object('name', 'j', 'command', 'c', 'needs', jsonb_build_object(repeat('g', 64), 1)))))));
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"name": "a", "jobs": [{"name": "j", "command": "c"}]}, {"jobs": [{"name": "k", "command": "c", "needs": {"gpu": 0}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"gpu": -1}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"gpu": 1.5}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"gpu": "2"}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"gpu": true}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"gpu": null}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "needs": {"gpu": 1e12}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "constraints": ["zone=a"]}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "constraints": {"zone a": "b"}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "constraints": {"zone": 1}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "env": "A=1"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "env": {"DISPATCH_NODE": "x"}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "env": {"1A": "x"}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "env": {"A": 1}}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "timeout": "soon"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "timeout": "-5 minutes"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "timeout": 0}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "timeout": true}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "timeout": 1e300}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "timeout": "11 years"}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "retries": -1}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "retries": 101}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "retries": 1.5}]}]}');
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "j", "command": "c", "retries": "1"}]}]}');

-- Nothing was inserted by any of the above.
SELECT (SELECT count(*) FROM dispatch.joblists) AS joblists,
       (SELECT count(*) FROM dispatch.stages) AS stages,
       (SELECT count(*) FROM dispatch.jobs) AS jobs;

-- Valid specs, normalised: needs default to one cpu, stage names to stageN, timeouts
-- become intervals, later stages wait for the current one.  Needs no online node can
-- satisfy are accepted.
SELECT dispatch.submit_joblist('{"name": "ok", "fail_fast": false, "stages": [
  {"jobs": [{"name": "a", "command": "true"},
            {"name": "b", "command": "true", "needs": {"gpu": 64, "cpu": 2},
             "constraints": {"zone": "b"}, "env": {"MODE": "fast"},
             "timeout": 90, "retries": 2}]},
  {"name": "check", "jobs": [{"name": "c", "command": "true", "timeout": "10 minutes"}]},
  {"jobs": [{"name": "d", "command": "true"}]}]}') > 0 AS submitted;
SELECT name, state, fail_fast, current_stage, stage_count, submitted_by = current_user AS mine
  FROM dispatch.joblists;
SELECT stage, name FROM dispatch.stages ORDER BY stage;
SELECT stage, name, command, needs, constraints, env, timeout, retries, state, attempt
  FROM dispatch.jobs ORDER BY job_id;
SELECT name, reason FROM dispatch.job_status WHERE stage_no > 0 ORDER BY job_id;
SELECT j.name, e.state, e.node FROM dispatch.job_events e JOIN dispatch.jobs j USING (job_id)
 ORDER BY event_id;
SELECT dispatch.cancel_joblist('ok');
