-- The batched agent protocol (dispatch.agent_report): many jobs' output and ends in
-- one call, each report checked on its own.  Jobs need the type "batch16", which no
-- node offers, so only this script moves them (dispatch._assign with no units).
-- Nothing printed depends on serial ids: answers show the jobs' names.
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE ROLE b16_agent IN ROLE dispatch_agent;
CREATE ROLE b16_other IN ROLE dispatch_agent;
CREATE ROLE b16_nobody;
SET ROLE b16_agent;
SELECT dispatch.agent_register('b16-a', '{}') IS NOT NULL AS registered;
SET ROLE b16_other;
SELECT dispatch.agent_register('b16-b', '{}') IS NOT NULL AS registered;
RESET ROLE;

SELECT dispatch.submit_joblist('{"name": "b16", "stages": [{"jobs": [
  {"name": "one", "command": "x", "needs": {"batch16": 1}},
  {"name": "two", "command": "x", "needs": {"batch16": 1}},
  {"name": "three", "command": "x", "needs": {"batch16": 1}, "retries": 1},
  {"name": "four", "command": "x", "needs": {"batch16": 1}},
  {"name": "five", "command": "x", "needs": {"batch16": 1}},
  {"name": "six", "command": "x", "needs": {"batch16": 1}}]}]}') AS jl \gset
CREATE TEMP TABLE ids AS SELECT name, job_id FROM dispatch.jobs WHERE joblist_id = :jl;
GRANT SELECT ON ids TO b16_agent, b16_other;
SELECT job_id AS one FROM ids WHERE name = 'one' \gset
SELECT job_id AS two FROM ids WHERE name = 'two' \gset
SELECT job_id AS three FROM ids WHERE name = 'three' \gset
SELECT job_id AS four FROM ids WHERE name = 'four' \gset
SELECT job_id AS five FROM ids WHERE name = 'five' \gset
SELECT job_id AS six FROM ids WHERE name = 'six' \gset
SELECT count(dispatch._assign(job_id, CASE name WHEN 'five' THEN 'b16-b' ELSE 'b16-a' END, '{}', '{}'))
  FROM ids;
SET ROLE b16_agent;
SELECT action, name FROM dispatch.agent_poll('b16-a') ORDER BY name;
SET ROLE b16_other;
SELECT action, name FROM dispatch.agent_poll('b16-b');
RESET ROLE;

-- The answers with the jobs' names for their ids (also inside messages).
CREATE FUNCTION pg_temp.show(answers jsonb)
RETURNS TABLE (job text, attempt int, status text, stdout bigint, stderr bigint,
               truncated boolean, cancel boolean, state text, message text)
LANGUAGE sql AS $$
    SELECT coalesce(i.name, a ->> 'job_id'), (a ->> 'attempt')::int, a ->> 'status',
           (a ->> 'stdout')::bigint, (a ->> 'stderr')::bigint, (a ->> 'truncated')::boolean,
           (a ->> 'cancel')::boolean, a ->> 'state',
           regexp_replace(a ->> 'message', 'job \d+', 'job ' || coalesce(i.name, '?'))
      FROM jsonb_array_elements(answers) WITH ORDINALITY AS x(a, o)
      LEFT JOIN pg_temp.ids i ON i.job_id = (a ->> 'job_id')::bigint
     ORDER BY o
$$;
-- A batch for the current job ids: the text with ONE, TWO... replaced.
CREATE FUNCTION pg_temp.batch(template text) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT replace(replace(replace(replace(replace(replace(template,
             'ONE', i1.job_id::text), 'TWO', i2.job_id::text), 'THREE', i3.job_id::text),
             'FOUR', i4.job_id::text), 'FIVE', i5.job_id::text), 'SIX', i6.job_id::text)::jsonb
      FROM pg_temp.ids i1, pg_temp.ids i2, pg_temp.ids i3, pg_temp.ids i4, pg_temp.ids i5,
           pg_temp.ids i6
     WHERE i1.name = 'one' AND i2.name = 'two' AND i3.name = 'three' AND i4.name = 'four'
       AND i5.name = 'five' AND i6.name = 'six'
$$;
-- Runs a single-job call; its result, or its error with the job's name for its id.
CREATE FUNCTION pg_temp.try(call text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE call INTO result;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || (SELECT regexp_replace(SQLERRM, 'job ' || i.job_id || '\M',
                                                      'job ' || i.name)
                                  FROM pg_temp.ids i WHERE SQLERRM ~ ('job ' || i.job_id || '\M')
                                 UNION ALL SELECT SQLERRM LIMIT 1);
END
$$;
CREATE FUNCTION pg_temp.states()
RETURNS TABLE (name text, state text, attempt int, exit_code int, output_bytes bigint)
LANGUAGE sql AS $$
    SELECT i.name, j.state, j.attempt, j.exit_code, j.output_bytes
      FROM pg_temp.ids i JOIN dispatch.jobs j USING (job_id) ORDER BY i.job_id
$$;

-- One batch: a success with output, a stale attempt, a failure that is retried,
-- output of a running job, another node's job, jobs that do not exist.  The stale
-- attempt, the other node's job and the missing ones are refused alone; the rest is
-- recorded.
SET ROLE b16_agent;
SELECT * FROM pg_temp.show(dispatch.agent_report('b16-a', pg_temp.batch('[
  {"job_id": ONE, "attempt": 1, "output": [{"stream": "stdout", "offset": 0, "data": "héllo "},
     {"stream": "stdout", "offset": 7, "data": "world"}, {"stream": "stderr", "offset": 0, "data": "w"}],
   "finish": {"exit_code": 0, "timed_out": false}},
  {"job_id": TWO, "attempt": 2, "finish": {"exit_code": 0}},
  {"job_id": THREE, "attempt": 1, "finish": {"exit_code": 3}},
  {"job_id": FOUR, "attempt": 1, "output": [{"stream": "stdout", "offset": 0, "data": "part"}]},
  {"job_id": FIVE, "attempt": 1, "finish": {"exit_code": 0}},
  {"job_id": 9223372036854775807, "attempt": 1, "finish": {"exit_code": 0}},
  {"job_id": -5, "attempt": 0}]')));
RESET ROLE;
SELECT * FROM pg_temp.states();
SELECT dispatch.job_log(:one) AS stdout, dispatch.job_log(:one, 'stderr') AS stderr;
SELECT i.name, e.attempt, e.state, e.node, e.detail
  FROM dispatch.job_events e JOIN pg_temp.ids i USING (job_id)
 WHERE e.state NOT IN ('pending', 'assigned', 'running') ORDER BY e.event_id;
SELECT i.name, h.attempt, h.state, h.exit_code, h.reason
  FROM dispatch.job_history h JOIN pg_temp.ids i USING (job_id) ORDER BY h.job_id, h.attempt;

-- The same batch again (a retry after a lost answer): the ends are not recorded
-- twice, the output chunks already stored are acknowledged and not stored again.
SET ROLE b16_agent;
SELECT * FROM pg_temp.show(dispatch.agent_report('b16-a', pg_temp.batch('[
  {"job_id": ONE, "attempt": 1, "output": [{"stream": "stdout", "offset": 0, "data": "héllo "}],
   "finish": {"exit_code": 0}},
  {"job_id": THREE, "attempt": 1, "finish": {"exit_code": 3}},
  {"job_id": FOUR, "attempt": 1, "output": [{"stream": "stdout", "offset": 0, "data": "part"},
     {"stream": "stdout", "offset": 0, "data": "part"}]},
  {"job_id": FOUR, "attempt": 1, "output": [{"stream": "stdout", "offset": 4, "data": "s"}]}]')));
RESET ROLE;
SELECT i.name, o.stream, o."offset", o.data
  FROM dispatch.job_output o JOIN pg_temp.ids i USING (job_id) ORDER BY i.job_id, o.stream, o."offset";
SELECT name, count(*) AS ends FROM dispatch.job_history JOIN pg_temp.ids USING (job_id, name)
 GROUP BY name ORDER BY name;

-- Two ends of one job in a batch: the first is recorded, the second is stale.
SET ROLE b16_agent;
SELECT * FROM pg_temp.show(dispatch.agent_report('b16-a', pg_temp.batch('[
  {"job_id": TWO, "attempt": 1, "finish": {"exit_code": 0}},
  {"job_id": TWO, "attempt": 1, "finish": {"exit_code": 1}},
  {"job_id": TWO, "attempt": 1}]')));
RESET ROLE;
SELECT * FROM pg_temp.states() WHERE name = 'two';

-- A report whose output would leave a gap is rejected whole (its end is not recorded,
-- its chunk before the gap not stored); the report after it in the batch is accepted.
SET ROLE b16_agent;
SELECT * FROM pg_temp.show(dispatch.agent_report('b16-a', pg_temp.batch('[
  {"job_id": FOUR, "attempt": 1, "output": [{"stream": "stdout", "offset": 5, "data": "!"},
     {"stream": "stdout", "offset": 100, "data": "gap"}], "finish": {"exit_code": 0}},
  {"job_id": SIX, "attempt": 1, "output": [{"stream": "stderr", "offset": 0, "data": "six"}]}]')));
RESET ROLE;
SELECT * FROM pg_temp.states() WHERE name IN ('four', 'six');

-- A report with neither part asks what agent_resume tells: the stored lengths and a
-- pending cancel.
SELECT dispatch.cancel_job(:four);
SET ROLE b16_agent;
SELECT * FROM pg_temp.show(dispatch.agent_report('b16-a', pg_temp.batch('[
  {"job_id": FOUR, "attempt": 1}, {"job_id": SIX, "attempt": 1}]')));
SELECT stdout_bytes, stderr_bytes, cancel_requested FROM dispatch.agent_resume('b16-a', :four, 1);
RESET ROLE;

-- Output past dispatch.max_output_bytes is cut and marked truncated; later chunks are
-- acknowledged with the stored length.
SET dispatch.max_output_bytes = 8;
SET ROLE b16_agent;
SELECT * FROM pg_temp.show(dispatch.agent_report('b16-a', pg_temp.batch('[
  {"job_id": SIX, "attempt": 1, "output": [{"stream": "stdout", "offset": 0, "data": "123456"},
     {"stream": "stdout", "offset": 6, "data": "789"}, {"stream": "stdout", "offset": 9, "data": "0"}]}]')));
RESET ROLE;
RESET dispatch.max_output_bytes;
SELECT dispatch.job_log(:six) AS stdout;

-- A malformed batch is refused whole with the JSON path, one case per line; the valid
-- report before the bad one is not recorded either.
SET ROLE b16_agent;
SELECT dispatch.agent_report('b16-a', '{}');
SELECT dispatch.agent_report('b16-a', NULL);
SELECT dispatch.agent_report('b16-a', '[7]');
SELECT dispatch.agent_report('b16-a', '[{"attempt": 1}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": "1", "attempt": 1}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 9223372036854775808, "attempt": 1}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1.5, "attempt": 1}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 2147483648}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "colour": "red"}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": {}}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": ["x"]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": [{"stream": "stdin", "offset": 0, "data": ""}]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": [{"offset": 0, "data": ""}]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": [{"stream": "stdout", "data": ""}]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": [{"stream": "stdout", "offset": -1, "data": ""}]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": [{"stream": "stdout", "offset": 0}]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": [{"stream": "stdout", "offset": 0, "data": 7}]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "output": [{"stream": "stdout", "offset": 0, "data": "", "at": 1}]}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": 0}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": {"code": 0}}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": {"exit_code": "0"}}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": {"exit_code": 2147483648}}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": {"signal": 0}}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": {"timed_out": "yes"}}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": {"detail": 7}}]');
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1, "finish": {"detail": ""}}]');
SELECT dispatch.agent_report('b16-a', jsonb_build_array(jsonb_build_object('job_id', 1,
  'attempt', 1, 'finish', jsonb_build_object('detail', repeat('d', 4097)))));
SELECT dispatch.agent_report('b16-a', pg_temp.batch('[{"job_id": SIX, "attempt": 1, "finish": {"exit_code": 0}},
  {"job_id": SIX, "attempt": 1, "finish": {"signal": "KILL"}}]'));
RESET ROLE;
SELECT * FROM pg_temp.states() WHERE name = 'six';

-- Limits: reports per call and bytes per call (settings an admin may tune).
SET dispatch.agent_report_max_batch = 2;
SET ROLE b16_agent;
SELECT dispatch.agent_report('b16-a', '[{"job_id": 1, "attempt": 1}, {"job_id": 1, "attempt": 1},
  {"job_id": 1, "attempt": 1}]');
RESET ROLE;
RESET dispatch.agent_report_max_batch;
SET dispatch.agent_report_max_size = '64kB';
SET ROLE b16_agent;
SELECT dispatch.agent_report('b16-a', jsonb_build_array(jsonb_build_object('job_id', 1000000,
  'attempt', 1, 'output', jsonb_build_array(jsonb_build_object('stream', 'stderr',
  'offset', 3, 'data', repeat('x', 70000))))));
RESET ROLE;
RESET dispatch.agent_report_max_size;
SELECT * FROM pg_temp.states() WHERE name = 'six';

-- Who may call: an agent only for its own node, nobody outside dispatch_agent.
SET ROLE b16_other;
SELECT dispatch.agent_report('b16-a', '[]');
SET ROLE b16_nobody;
SELECT dispatch.agent_report('b16-a', '[]');
SET ROLE b16_agent;
SELECT dispatch.agent_report('b16-ghost', '[]');
SELECT dispatch.agent_report('b16-a', '[]');

-- The single-job calls still work, through the same code path (and the same limits).
SELECT pg_temp.try(format($$SELECT dispatch.agent_output('b16-a', %s, 1, 'stdout', 5, '!')$$, :four));
SELECT pg_temp.try(format($$SELECT dispatch.agent_output('b16-a', %s, 1, 'stdout', 7, '!')$$, :four));
SELECT pg_temp.try(format($$SELECT dispatch.agent_finish('b16-a', %s, 1, 0, NULL, false, repeat('d', 4097))$$, :four));
SELECT pg_temp.try(format($$SELECT dispatch.agent_finish('b16-a', %s, 1, 0, NULL, false)$$, :four));
SELECT pg_temp.try(format($$SELECT dispatch.agent_finish('b16-a', %s, 1, 0, NULL, false)$$, :four));
SELECT pg_temp.try(format($$SELECT dispatch.agent_finish('b16-a', %s, 1, 0, NULL, false)$$, :five));
RESET ROLE;
SELECT * FROM pg_temp.states() WHERE name IN ('one', 'four');

-- Clean up: later files see none of this.
SELECT dispatch.agent_offline('b16-a'), dispatch.agent_offline('b16-b');
DELETE FROM dispatch.joblists WHERE joblist_id = :jl;
DELETE FROM dispatch.job_history WHERE joblist_id = :jl;
DELETE FROM dispatch.joblist_history WHERE joblist_id = :jl;
DELETE FROM dispatch.resources WHERE node IN ('b16-a', 'b16-b');
DELETE FROM dispatch.nodes WHERE node IN ('b16-a', 'b16-b');
DROP TABLE ids;
DROP ROLE b16_agent, b16_other, b16_nobody;
