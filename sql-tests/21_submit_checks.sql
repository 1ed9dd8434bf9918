-- submit_joblist checks a whole spec with one set-based query and hands only what it
-- cannot vouch for to the exact validators (30_joblists.sql, _joblist_suspects).  So
-- each bad job, wherever it stands among valid ones, must get the error the exact
-- validator gives it alone; unusual but valid jobs must be accepted; and the first
-- error in spec order must win, rendering errors last.  Prints no serial ids.
-- (A count or retries written 2.0 is refused by a cast, 22P02, not 22023: the
-- allocator reads counts as integer text, so they are not accepted.)
\set SHOW_CONTEXT never
-- The error submit_joblist(spec) raises; with job_at, the one _validate_job(spec, job_at) raises.
CREATE FUNCTION pg_temp.error_of(spec jsonb, job_at text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    msg text;
    detail text;
BEGIN
    IF job_at IS NULL THEN
        PERFORM dispatch.submit_joblist(spec);
    ELSE
        PERFORM dispatch._validate_job(spec, job_at);
    END IF;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ' ' || msg || coalesce(' (' || nullif(detail, '') || ')', '');
END
$$;
CREATE TEMP TABLE cases (n serial, job jsonb);
INSERT INTO cases (job) VALUES
  ('{"name": "x", "command": "true", "timeout": "1.5 hours"}'),
  ('{"name": "x", "command": "true", "timeout": 311040000}'),
  ('{"name": "x", "command": "true", "timeout": 311040001}'),
  ('{"name": "x", "command": "true", "timeout": 2.5}'),
  ('{"name": "x", "command": "true", "timeout": "90 days"}'),
  ('{"name": "x", "command": "true", "timeout": "99999 days"}'),
  ('{"name": "x", "command": "true", "timeout": "10 parsecs"}'),
  ('{"name": "x", "command": "true", "timeout": "0 seconds"}'),
  ('{"name": "x", "command": "true", "needs": {"cpu": 2.0}}'),
  ('{"name": "x", "command": "true", "retries": 1.0}'),
  ('{"name": "x", "command": "true", "constraints": {"reported:zone": "a"}}'),
  ('{"name": "x", "command": "true", "constraints": {"zone": "a", "reported:": "b"}}'),
  ('{"name": "x", "command": "true", "env": {"dispatch_x": "1", "DISPATCHX": "2"}}'),
  ('{"name": "x", "command": "true", "env": {"DISPATCH_": "1"}}'),
  ('{"name": "x", "command": "true", "template": "yes"}'),
  ('{"name": "x", "command": "@A@", "template": true, "replacements": {"@A@": "a"}}'),
  ('{"name": "x", "command": "true", "replacements": {"@A@": "a"}, "template": false}'),
  ('{"name": "x", "command": "true", "replacements": {"@A@": "a"},
     "files": [{"path": "f", "content": "@A@", "template": false}]}'),
  ('{"name": "x", "command": "true", "replacements": {"@A@": "a"},
     "files": [{"path": "f", "content": "@A@", "template": true}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "f", "content": "", "replacements": {}}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "f", "content": "", "template": false,
     "replacements": {}}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "f", "content": "", "replacements": {"": "a"}}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "a/b/c", "content": ""},
     {"path": "a/b", "content": ""}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "a/b", "content": ""},
     {"path": "a/bc", "content": ""}, {"path": "a/b.c/d", "content": ""}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "a b/.c..", "content": "", "mode": "755"}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "a/./b", "content": ""}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "a/b/", "content": ""}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "a\u007fb", "content": ""}]}'),
  ('{"name": "x", "command": "true", "files": [{"path": "f", "content": "", "mode": "0644"},
     {"path": "f", "content": ""}]}'),
  ('{"name": "x", "command": "true", "files": []}'),
  ('{"name": "x", "command": "true", "files": null}'),
  ('{"name": "x", "command": "true", "needs": null}'),
  ('{"name": "x", "command": "true", "env": {}}');
-- Alone through the exact validator, and as the middle job of three in the second stage
-- of a joblist: the same verdict.
SELECT n, pg_temp.error_of(job, 'stages[1].jobs[1]') AS exact,
       pg_temp.error_of(jsonb_build_object('name', 'v', 'stages', jsonb_build_array(
           '{"jobs": [{"name": "s0", "command": "true"}]}'::jsonb,
           jsonb_build_object('jobs', jsonb_build_array(
               '{"name": "a", "command": "true", "files": [{"path": "f", "content": ""}]}'::jsonb,
               job, '{"name": "b", "command": "true", "env": {"B": "1"}}'::jsonb)))))
           = pg_temp.error_of(job, 'stages[1].jobs[1]') AS same
  FROM cases ORDER BY n;

-- The first error in spec order wins, whatever kind it is.
SELECT pg_temp.error_of('{"name": "o", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "b", "command": "true", "retries": 200}]},
  {"jobs": [{"name": "c", "command": "true"}], "when": 1}]}');
SELECT pg_temp.error_of('{"name": "o", "stages": [
  {"jobs": [{"name": "a", "command": "true"}]},
  {"jobs": [{"name": "c", "command": "true", "files": [{"path": "/x", "content": ""}]}], "when": 1}]}');
SELECT pg_temp.error_of('{"name": "o", "stages": [
  {"jobs": [{"name": "a", "command": "true"}, {"name": "b", "command": "true"},
            {"name": "a", "command": "true", "files": [{"path": "/x", "content": ""}]}]}]}');
SELECT pg_temp.error_of('{"name": "o", "stages": [
  {"jobs": [{"name": "a", "command": "true", "files": [{"path": "/x", "content": ""}]},
            {"name": "b", "command": "true"}, {"name": "a", "command": "true"}]}]}');
-- Rendering comes after every other check: a later job's bad timeout before an earlier
-- job's oversized rendered file; then rendered commands (in order) before rendered
-- files; then, job by job, each file and then the job's total.
SET dispatch.max_file_size = 10;
SET dispatch.max_job_files_size = 15;
SELECT pg_temp.error_of('{"name": "o", "stages": [{"jobs": [
  {"name": "a", "command": "true", "files": [{"path": "f", "content": "@@", "replacements": {"@": "0123456789"}}]},
  {"name": "b", "command": "true", "timeout": "soon"}]}]}');
SELECT pg_temp.error_of('{"name": "o", "stages": [{"jobs": [
  {"name": "a", "command": "true", "files": [{"path": "f", "content": "@@", "replacements": {"@": "0123456789"}}]},
  {"name": "b", "command": "@@", "template": true, "replacements": {"@": "0123456789"}},
  {"name": "c", "command": "@@", "template": true, "replacements": {"@": "abcdefghij"}}]}]}');
SELECT pg_temp.error_of('{"name": "o", "stages": [{"jobs": [
  {"name": "a", "command": "true", "files": [{"path": "f", "content": "0123456789"},
                                              {"path": "g", "content": "0123456789"}]},
  {"name": "b", "command": "true", "files": [{"path": "f", "content": "@@", "replacements": {"@": "0123456789"}}]}]}]}');
SELECT pg_temp.error_of('{"name": "o", "stages": [{"jobs": [
  {"name": "a", "command": "true", "files": [{"path": "f", "content": "01234"},
                                              {"path": "g", "content": "@@", "replacements": {"@": "0123456789"}}]}]}]}');
SELECT pg_temp.error_of('{"name": "o", "stages": [{"jobs": [
  {"name": "a", "command": "true", "files": [{"path": "f", "content": "01234"},
                                              {"path": "g", "content": "@@@", "replacements": {"@": "abc"}}]}]}]}');
RESET dispatch.max_file_size;
RESET dispatch.max_job_files_size;
SELECT count(*) AS stored FROM dispatch.joblists WHERE name = 'o';
SELECT count(dispatch.cancel_joblist(joblist_id)) AS accepted FROM dispatch.joblists WHERE name = 'v';

-- Many jobs with templates and files: each gets its own rendering, stored once.
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'many', 'stages', jsonb_build_array(
  jsonb_build_object('jobs', (SELECT jsonb_agg(jsonb_build_object('name', 'j' || i,
      'command', 'echo @I@', 'template', true, 'replacements', jsonb_build_object('@I@', i::text),
      'timeout', '5 minutes', 'files', jsonb_build_array(
          jsonb_build_object('path', 'conf/a', 'content', 'i=@I@ x=@X@',
                             'replacements', jsonb_build_object('@X@', 'x' || i)),
          jsonb_build_object('path', 'b', 'content', '@I@', 'mode', '0600'))))
    FROM generate_series(1, 500) i))))) IS NOT NULL AS submitted;
SELECT count(*) AS jobs, count(*) FILTER (WHERE j.command = 'echo ' || substr(j.name, 2)) AS rendered,
       count(DISTINCT j.timeout) AS timeouts
  FROM dispatch.jobs j JOIN dispatch.joblists l USING (joblist_id) WHERE l.name = 'many';
SELECT count(*) AS files,
       count(*) FILTER (WHERE f.path = 'conf/a' AND f.template
                          AND f.content = format('i=%s x=x%s', substr(j.name, 2), substr(j.name, 2))) AS a_ok,
       count(*) FILTER (WHERE f.path = 'b' AND NOT f.template AND f.mode = '0600'
                          AND f.content = '@I@') AS b_ok
  FROM dispatch.job_files f JOIN dispatch.jobs j USING (job_id) JOIN dispatch.joblists l USING (joblist_id)
 WHERE l.name = 'many';
SELECT dispatch.cancel_joblist('many');
