-- Data flows at run time (sql/src/36_dataflow.sql, 46_results, 48_signals,
-- 49_scratch), driven by hand: jobs need the type "handflow", which no node offers,
-- so only this script assigns them; pg_temp.settle() runs the scheduler's
-- housekeeping as its cycle does.  Skips, fail_fast, on_failure and always, a for_each
-- over a result, inputs, array throttles, groups and their scratch, signals and
-- every error of the agent calls.
\set SHOW_CONTEXT never
\set VERBOSITY default
\i sql-tests/include/wait_until.sql
CREATE FUNCTION pg_temp.settle(expire boolean DEFAULT false) RETURNS boolean
LANGUAGE sql AS $$
    SELECT pg_temp.wait_until(format('SELECT skipped IS NULL FROM dispatch._housekeeping(now(), %L, NULL)',
                                     expire))
$$;
-- Runs a statement and shows its error with joblist ids left out.
CREATE FUNCTION pg_temp.try(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    msg text;
    detail text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    RETURN regexp_replace(SQLSTATE || ': ' || concat_ws(' ', msg, nullif(detail, '')),
                          '([Jj]oblist|job) \d+', '\1 N', 'g');
END
$$;
CREATE FUNCTION pg_temp.job(jl bigint, name text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT job_id FROM dispatch.jobs j WHERE j.joblist_id = jl AND j.name = job.name
$$;
-- Assigns a job to fr1 and claims it: its flow column.
CREATE FUNCTION pg_temp.start(jl bigint, name text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    flow jsonb;
BEGIN
    PERFORM dispatch._assign(pg_temp.job(jl, name), 'fr1', '{}', '{}');
    SELECT p.flow INTO flow FROM dispatch.agent_poll('fr1') p
     WHERE p.action = 'run' AND p.job_id = pg_temp.job(jl, start.name);
    RETURN flow;
END
$$;
-- Reports a claimed job's end (finish object), settles, and says what became of it.
CREATE FUNCTION pg_temp.finish(jl bigint, name text, finish jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    answer jsonb;
BEGIN
    answer := dispatch.agent_report('fr1', jsonb_build_array(jsonb_build_object(
        'job_id', pg_temp.job(jl, name), 'attempt', 1, 'finish', finish))) -> 0;
    PERFORM pg_temp.settle();
    RETURN coalesce(answer ->> 'state', answer ->> 'status');
END
$$;
CREATE FUNCTION pg_temp.run(jl bigint, name text, finish jsonb DEFAULT '{"exit_code": 0}')
RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.start(jl, name);
    SELECT pg_temp.finish(jl, name, finish)
$$;
CREATE FUNCTION pg_temp.states(jl bigint)
RETURNS TABLE (name text, state text, held text, reason text, waiting text)
LANGUAGE sql AS $$
    -- (the running scheduler may have said why it cannot place a job meanwhile)
    SELECT s.name, s.state, s.held,
           CASE WHEN s.reason = 'no online node offers handflow' THEN 'waiting for the scheduler'
                ELSE s.reason END, s.waiting
      FROM dispatch.job_status s
     WHERE s.joblist_id = jl ORDER BY s.job_id
$$;
CREATE FUNCTION pg_temp.graph(jobs text, extra text DEFAULT '') RETURNS bigint
LANGUAGE sql AS $$
    SELECT dispatch.submit_joblist(format('{"name": "fr"%s, "jobs": %s}', extra,
        regexp_replace(jobs, '"command": "c"', '"command": "c", "needs": {"handflow": 1}', 'g'))::jsonb)
$$;
-- No joblist has a timeout: housekeeping names no deadline (the scheduler sleeps).
SELECT next_deadline FROM dispatch._housekeeping(now(), false, '{}');
SELECT dispatch.agent_register('fr1', '{"resources": [{"type": "cpu", "ident": "0"}]}') IS NOT NULL AS registered;

-- A diamond with clean-up: c fails while b still runs.  d and e end skipped at once,
-- b is stopped (fail_fast), notify (on_failure) and clean (always) still run.
SELECT pg_temp.graph('[{"name": "a", "command": "c"},
                       {"name": "b", "command": "c", "after": ["a"]},
                       {"name": "c", "command": "c", "after": ["a"]},
                       {"name": "d", "command": "c", "after": ["b", "c"]},
                       {"name": "e", "command": "c", "after": ["d"]},
                       {"name": "notify", "command": "c", "after": ["c"], "when": "on_failure"},
                       {"name": "clean", "command": "c", "after": ["e"], "when": "always"}]') AS jl \gset
SELECT * FROM pg_temp.states(:jl);
SELECT pg_temp.run(:jl, 'a') AS a;
SELECT pg_temp.start(:jl, 'b') AS b_flow;
SELECT pg_temp.run(:jl, 'c', '{"exit_code": 3}') AS c;
SELECT * FROM pg_temp.states(:jl);
SELECT state, failure FROM dispatch.joblist_status WHERE joblist_id = :jl;
SELECT action, name FROM dispatch.agent_poll('fr1');
SELECT pg_temp.finish(:jl, 'b', '{"signal": 15}') AS b;
SELECT pg_temp.run(:jl, 'notify') AS notify, pg_temp.run(:jl, 'clean') AS clean;
SELECT * FROM pg_temp.states(:jl);
SELECT state, reason, jobs_skipped FROM dispatch.joblist_status WHERE joblist_id = :jl;

-- Without fail_fast the rest goes on; on_failure jobs not needed end skipped, and a
-- job after both a failure and an always job is skipped too.
SELECT pg_temp.graph('[{"name": "x", "command": "c"}, {"name": "y", "command": "c"},
                       {"name": "z", "command": "c", "after": ["x"]},
                       {"name": "fix", "command": "c", "after": ["y"], "when": "on_failure"},
                       {"name": "all", "command": "c", "after": ["x", "y"], "when": "always"}]',
                     ', "fail_fast": false') AS jl \gset
SELECT pg_temp.run(:jl, 'x', '{"exit_code": 1}') AS x;
SELECT * FROM pg_temp.states(:jl);
SELECT pg_temp.run(:jl, 'y') AS y;
SELECT pg_temp.run(:jl, 'all') AS "all";
SELECT * FROM pg_temp.states(:jl);
SELECT state, reason FROM dispatch.joblist_status WHERE joblist_id = :jl;

-- Stages are sugar: an on_failure job of stage 2 runs after a failure of stage 1.
SELECT dispatch.submit_joblist('{"name": "fr", "stages": [
  {"name": "one", "jobs": [{"name": "s1", "command": "c", "needs": {"handflow": 1}}]},
  {"name": "two", "jobs": [{"name": "s2", "command": "c", "needs": {"handflow": 1}},
                           {"name": "s2f", "command": "c", "needs": {"handflow": 1},
                            "when": "on_failure"}]}]}') AS jl \gset
SELECT pg_temp.run(:jl, 's1', '{"exit_code": 1}') AS s1;
SELECT * FROM pg_temp.states(:jl);
SELECT pg_temp.run(:jl, 's2f') AS s2f;
SELECT state, reason FROM dispatch.joblist_status WHERE joblist_id = :jl;

-- Results: a for_each over a result, the cells' inputs, fan-in of every cell.
SELECT pg_temp.graph('[{"name": "split", "command": "c"},
                       {"name": "work", "command": "c", "for_each": "split",
                        "files": [{"path": "item.txt", "content": "{{index}}: {{item}}", "template": true}]},
                       {"name": "sum", "command": "c", "after": ["work"]}]') AS jl \gset
SELECT pg_temp.run(:jl, 'split', '{"exit_code": 0, "result": ["ab", {"n": 2}]}') AS split;
SELECT * FROM pg_temp.states(:jl);
SELECT j.name, j.env, f.content FROM dispatch.jobs j JOIN dispatch.job_files f USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY j.job_id;
SELECT pg_temp.start(:jl, 'work[0]') AS work0_flow;
SELECT pg_temp.finish(:jl, 'work[0]', '{"exit_code": 0, "result": 1}') AS work0;
SELECT pg_temp.run(:jl, 'work[1]', '{"exit_code": 0, "result": {"partial": 2}}') AS work1;
SELECT pg_temp.start(:jl, 'sum') AS sum_flow;
SELECT pg_temp.finish(:jl, 'sum', '{"exit_code": 0, "result": 3}') AS sum;
SELECT dispatch.job_result(pg_temp.job(:jl, 'sum')) AS sum_result;
SELECT dispatch.job_result(-1);
SELECT name, result FROM dispatch.job_status WHERE joblist_id = :jl ORDER BY job_id;
SELECT state FROM dispatch.joblist_status WHERE joblist_id = :jl;
-- another user sees the graph, not the results, nor the items cells were made from
CREATE ROLE fr_eve IN ROLE dispatch_user;
SET ROLE fr_eve;
SELECT name, cell, result FROM dispatch.job_status WHERE joblist_id = :jl ORDER BY job_id;
SELECT n -> 'cell' AS graph_cell FROM jsonb_array_elements(dispatch.joblist_graph(:jl) -> 'nodes') n
 WHERE n ->> 'name' = 'work[1]';
SELECT pg_temp.try(format('SELECT dispatch.job_result(%s)', pg_temp.job(:jl, 'sum')));
SELECT cell FROM dispatch.jobs WHERE joblist_id = :jl;
SELECT count(*) AS eve_reads_job_names FROM dispatch.jobs WHERE joblist_id = :jl;
RESET ROLE;
DROP ROLE fr_eve;
-- for_each of a result that is not an array fails the job; of an empty one skips it
SELECT pg_temp.graph('[{"name": "split", "command": "c"},
                       {"name": "work", "command": "c", "for_each": "split"}]') AS jl \gset
SELECT pg_temp.run(:jl, 'split', '{"exit_code": 0, "result": {"not": "an array"}}') AS split;
SELECT * FROM pg_temp.states(:jl);
SELECT pg_temp.graph('[{"name": "split", "command": "c"},
                       {"name": "work", "command": "c", "for_each": "split"},
                       {"name": "after", "command": "c", "after": ["work"]}]') AS jl \gset
SELECT pg_temp.run(:jl, 'split', '{"exit_code": 0, "result": []}') AS split;
SELECT * FROM pg_temp.states(:jl);
SELECT pg_temp.run(:jl, 'after') AS after;
-- no result at all is not an array either
SELECT pg_temp.graph('[{"name": "split", "command": "c"},
                       {"name": "work", "command": "c", "for_each": "split"}]') AS jl \gset
SELECT pg_temp.run(:jl, 'split') AS split;
SELECT * FROM pg_temp.states(:jl);
-- more items than dispatch.max_jobs_per_joblist leaves room for (the end and the
-- fan-out in one transaction, so that the running scheduler, which has the default
-- limit, cannot fan it out first)
SELECT pg_temp.graph('[{"name": "split", "command": "c"},
                       {"name": "work", "command": "c", "for_each": "split"}]') AS jl \gset
BEGIN;
SET LOCAL dispatch.max_jobs_per_joblist = 4;
SELECT pg_temp.run(:jl, 'split', '{"exit_code": 0, "result": [1, 2, 3, 4]}') AS split;
COMMIT;
SELECT * FROM pg_temp.states(:jl);
-- an item too large for a cell's environment (one transaction, as above)
SELECT pg_temp.graph('[{"name": "split", "command": "c"},
                       {"name": "work", "command": "c", "for_each": "split"}]') AS jl \gset
BEGIN;
SET LOCAL dispatch.max_env_size = 1024;
SELECT pg_temp.run(:jl, 'split', jsonb_build_object('exit_code', 0, 'result',
                                                    jsonb_build_array(repeat('x', 2000)))) AS split;
COMMIT;
SELECT * FROM pg_temp.states(:jl);
-- a result too large, or one the agent could not read, fails the job
SET dispatch.max_result_size = 10;
SELECT pg_temp.graph('[{"name": "big", "command": "c"}, {"name": "bad", "command": "c"}]',
                     ', "fail_fast": false') AS jl \gset
SELECT pg_temp.run(:jl, 'big', '{"exit_code": 0, "result": "more than ten bytes"}') AS big;
SELECT pg_temp.run(:jl, 'bad', '{"exit_code": 0, "result_error": "not JSON: line 1"}') AS bad;
RESET dispatch.max_result_size;
SELECT * FROM pg_temp.states(:jl);
SELECT dispatch.job_result(pg_temp.job(:jl, 'big')) AS big_result;
SELECT dispatch.agent_report('fr1', '[{"job_id": 1, "attempt": 1, "finish": {"result_error": 5}}]');
SELECT dispatch.agent_report('fr1', '[{"job_id": 1, "attempt": 1, "finish": {"result": 1, "extra": 1}}]');

-- An array throttle: one slot, the cells take turns.
SELECT pg_temp.graph('[{"name": "chunk", "command": "c", "array": {"count": 3, "parallel": 1}}]') AS jl \gset
SELECT * FROM pg_temp.states(:jl);
SELECT pg_temp.run(:jl, 'chunk[0]') AS chunk0;
SELECT * FROM pg_temp.states(:jl);

-- A group: the first job placed pins it; the others follow it to that node; its
-- scratch is removed on the node once the group has ended.
SELECT pg_temp.graph('[{"name": "fill", "command": "c", "group": "pond"},
                       {"name": "drain", "command": "c", "group": "pond"},
                       {"name": "alone", "command": "c"}]') AS jl \gset
\set group_jl :jl
SELECT * FROM pg_temp.states(:jl);
SELECT pg_temp.settle();
SELECT pg_temp.start(:jl, 'fill') -> 'group' = jsonb_build_object('key', :jl || '-1', 'name', 'pond')
    AS fill_group;
SELECT pg_temp.settle();
SELECT name, held, constraints FROM dispatch.job_status WHERE joblist_id = :jl ORDER BY job_id;
SELECT pg_temp.finish(:jl, 'fill', '{"exit_code": 0}') AS fill;
SELECT pg_temp.start(:jl, 'drain') -> 'group' ->> 'key' = :jl || '-1' AS drain_same_scratch;
SELECT pg_temp.finish(:jl, 'drain', '{"exit_code": 0}') AS drain;
SELECT group_name, node, ended_at IS NOT NULL AS ended, removed_at, bytes
  FROM dispatch.group_scratch WHERE joblist_id = :jl;
SELECT action, joblist_id = :jl AS same_joblist, name = :jl || '-1' AS key_ok
  FROM dispatch.agent_poll('fr1') WHERE action = 'scratch_remove';
SELECT dispatch.agent_scratch_removed('fr1', :jl || '-1', -1);
SELECT dispatch.agent_scratch_removed('ghost', :jl || '-1', 1);
SELECT dispatch.agent_scratch_removed('fr1', :jl || '-1', 4096);
SELECT dispatch.agent_scratch_removed('fr1', :jl || '-1', 1);
SELECT node, removed_at IS NOT NULL AS removed, bytes FROM dispatch.group_scratch WHERE joblist_id = :jl;
SELECT count(*) AS scratch_rows FROM dispatch.agent_poll('fr1') WHERE action = 'scratch_remove';
SELECT pg_temp.run(:jl, 'alone') AS alone;

-- Signals: a wait before the signal, a signal before the wait, a job's own signal.
SELECT pg_temp.graph('[{"name": "solver", "command": "c"}, {"name": "poker", "command": "c"}]') AS jl \gset
SELECT pg_temp.start(:jl, 'solver') IS NULL AS solver_flow, pg_temp.start(:jl, 'poker') IS NULL AS poker_flow;
SELECT pg_temp.job(:jl, 'solver') AS solver, pg_temp.job(:jl, 'poker') AS poker \gset
SELECT dispatch.agent_signals('fr1', format('[{"job_id": %s, "attempt": 1, "id": "w1", "wait": "go"}]', :solver)::jsonb);
SELECT name, waiting, reason FROM dispatch.job_status WHERE job_id = :solver;
SELECT dispatch.signal(:jl, 'go', '{"x": 1}') > 0 AS sent;
SELECT dispatch.agent_signals('fr1', format('[{"job_id": %s, "attempt": 1, "id": "w1", "wait": "go"}]', :solver)::jsonb);
-- asked again (an agent restart): the same signal, not another one
SELECT dispatch.signal(:jl, 'go', '{"x": 2}') > 0 AS sent;
SELECT dispatch.agent_signals('fr1', format('[{"job_id": %s, "attempt": 1, "id": "w1", "wait": "go"}]', :solver)::jsonb);
SELECT name, waiting, reason FROM dispatch.job_status WHERE job_id = :solver;
-- the second signal was sent before this wait: delivered at once
SELECT dispatch.agent_signals('fr1', format('[{"job_id": %s, "attempt": 1, "id": "w2", "wait": "go"}]', :solver)::jsonb);
-- a job's signal, sent once however often its agent relays it, then waited for
SELECT dispatch.agent_signals('fr1', format('[{"job_id": %s, "attempt": 1, "id": "s1", "signal": "next", "payload": [1]},
                                              {"job_id": %s, "attempt": 1, "id": "s1", "signal": "next", "payload": [1]},
                                              {"job_id": %s, "attempt": 1, "id": "w3", "wait": "next"},
                                              {"job_id": %s, "attempt": 1, "id": "w4", "wait": "next"}]',
                                       :poker, :poker, :solver, :solver)::jsonb);
SELECT name, replace(sent_by, :'poker', 'POKER') AS sent_by, payload, to_request
  FROM dispatch.signals WHERE joblist_id = :jl ORDER BY signal_id;
-- refused and stale requests
SELECT dispatch.agent_signals('fr1', format('[{"job_id": %s, "attempt": 1, "id": "s2", "signal": "bad name"},
                                              {"job_id": %s, "attempt": 2, "id": "w5", "wait": "go"},
                                              {"job_id": %s, "attempt": 1, "id": "w6", "wait": "go"}]',
                                       :poker, :poker, pg_temp.job(:group_jl, 'alone'))::jsonb);
SELECT dispatch.agent_signals('ghost', '[]');
SELECT dispatch.agent_signals('fr1', '{}');
SELECT dispatch.agent_signals('fr1', '[1]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "id": "a"}]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "id": "a", "wait": "x", "signal": "x"}]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "id": "a b", "wait": "x"}]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "wait": "x"}]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "id": "a", "wait": "x", "payload": 1}]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "id": "a", "wait": 7}]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "id": "a", "wait": "x", "colour": 1}]');
SELECT dispatch.agent_signals('fr1', '[{"job_id": 0, "attempt": 1, "id": "a", "wait": "x"}]');
SET dispatch.agent_report_max_batch = 1;
SELECT dispatch.agent_signals('fr1', '[{"job_id": 1, "attempt": 1, "id": "a", "wait": "x"},
                                       {"job_id": 1, "attempt": 1, "id": "b", "wait": "x"}]');
RESET dispatch.agent_report_max_batch;
-- dispatch.signal's errors
SELECT dispatch.signal(-1, 'go');
SELECT dispatch.signal(:jl, 'bad name');
SELECT dispatch.signal(:jl, repeat('n', 201));
SELECT dispatch.signal(:jl, NULL);
SET dispatch.max_signal_size = 10;
SELECT dispatch.signal(:jl, 'go', '"more than ten bytes"');
RESET dispatch.max_signal_size;
CREATE ROLE fr_mallory IN ROLE dispatch_user;
SET ROLE fr_mallory;
SELECT pg_temp.try(format('SELECT dispatch.signal(%s, %L)', :jl, 'go'));
SELECT count(*) AS mallory_sees_signals FROM dispatch.signals;
RESET ROLE;
DROP ROLE fr_mallory;
SELECT count(*) AS signals_before FROM dispatch.signals WHERE joblist_id = :jl \gset
SELECT dispatch.signal(:jl, 'n' || i) FROM generate_series(1, 1000) i \g /dev/null
SELECT pg_temp.try(format('SELECT dispatch.signal(%s, %L)', :jl, 'one-too-many'));
SELECT count(*) - :signals_before AS signals_added FROM dispatch.signals WHERE joblist_id = :jl;
-- a job that ends stops waiting
SELECT dispatch.agent_signals('fr1', format('[{"job_id": %s, "attempt": 1, "id": "w7", "wait": "never"}]', :solver)::jsonb);
SELECT pg_temp.finish(:jl, 'solver', '{"exit_code": 0}') AS solver, pg_temp.finish(:jl, 'poker', '{"exit_code": 0}') AS poker;
SELECT name, waiting FROM dispatch.job_status WHERE joblist_id = :jl ORDER BY job_id;
SELECT pg_temp.try(format('SELECT dispatch.signal(%s, %L)', :jl, 'late'));

-- A joblist timeout: what runs is stopped, what waits is cancelled, an always job runs.
SELECT pg_temp.graph('[{"name": "slow", "command": "c"}, {"name": "next", "command": "c", "after": ["slow"]},
                       {"name": "tidy", "command": "c", "after": ["slow"], "when": "always"}]',
                     ', "timeout": "1 hour"') AS jl \gset
SELECT next_deadline BETWEEN 3500 AND 3600 AS deadline_in_an_hour
  FROM dispatch._housekeeping(now(), false, '{}');
SELECT pg_temp.start(:jl, 'slow') IS NULL AS slow_flow;
UPDATE dispatch.joblists SET deadline = now() - interval '1 second' WHERE joblist_id = :jl;
SELECT pg_temp.settle(true);
SELECT * FROM pg_temp.states(:jl);
SELECT action, name FROM dispatch.agent_poll('fr1') WHERE action = 'cancel';
SELECT pg_temp.finish(:jl, 'slow', '{"signal": 15}') AS slow;
SELECT pg_temp.run(:jl, 'tidy') AS tidy;
SELECT state, reason, failure FROM dispatch.joblist_status WHERE joblist_id = :jl;

-- A group's reservation (39_reserve.sql): the running scheduler places it as one
-- piece of two units; the group's jobs run inside it as they fit, in order, while
-- another joblist's job takes the unit the piece left.  The reservation runs nothing,
-- no agent may report on it, and it ends with the group's last job.
SELECT count(dispatch.add_resource('handpond', 'p' || i, 'fr1')) AS ponds FROM generate_series(0, 2) i;
SELECT dispatch.submit_joblist('{"name": "fr", "jobs": [
  {"name": "fill", "command": "x", "needs": {"handpond": 1}, "group": {"name": "pond", "needs": {"handpond": 2}}},
  {"name": "stir", "command": "x", "needs": {"handpond": 1}, "group": "pond"},
  {"name": "skim", "command": "x", "needs": {"handpond": 1}, "after": ["fill"], "group": "pond"},
  {"name": "sift", "command": "x", "needs": {"handpond": 1}, "group": "pond"}]}') AS jl \gset
SELECT pg_temp.wait_until(format($$SELECT count(*) = 3 FROM dispatch.jobs
                                    WHERE joblist_id = %s AND state = 'assigned'$$, :jl)) AS placed;
SELECT dispatch.submit_joblist('{"name": "fr", "jobs": [{"name": "other", "command": "x", "needs": {"handpond": 1}}]}') AS other_jl \gset
SELECT pg_temp.wait_until(format($$SELECT state = 'assigned' FROM dispatch.jobs
                                    WHERE joblist_id = %s$$, :other_jl)) AS other_placed;
SELECT name, state, node, resources, held, reason FROM dispatch.job_status
 WHERE joblist_id = :jl ORDER BY job_id;
SELECT r.ident, j.name, r.amount, l.name AS lent_by
  FROM dispatch.resource_status r JOIN dispatch.jobs j USING (job_id)
  LEFT JOIN dispatch.jobs l ON l.job_id = r.lent_by
 WHERE r.type = 'handpond' ORDER BY r.ident, j.job_id;
SELECT action, name FROM dispatch.agent_poll('fr1') ORDER BY name;
SELECT dispatch.agent_report('fr1', format('[{"job_id": %s, "attempt": 1, "finish": {"exit_code": 0}}]',
                                           pg_temp.job(:jl, 'group:pond'))::jsonb) -> 0 ->> 'status' AS report;
-- fill ends: skim, after it, is ready, but sift was first; it takes fill's unit
SELECT pg_temp.finish(:jl, 'fill', '{"exit_code": 0}') AS fill;
SELECT name, state, reason FROM dispatch.job_status WHERE joblist_id = :jl ORDER BY job_id;
SELECT action, name FROM dispatch.agent_poll('fr1') ORDER BY name;
SELECT pg_temp.finish(:jl, 'stir', '{"exit_code": 0}') AS stir;
SELECT action, name FROM dispatch.agent_poll('fr1') ORDER BY name;
SELECT pg_temp.finish(:jl, 'sift', '{"exit_code": 0}') AS sift;
SELECT pg_temp.finish(:jl, 'skim', '{"exit_code": 3}') AS skim;
SELECT name, state, reason FROM dispatch.job_status WHERE joblist_id = :jl ORDER BY job_id;
SELECT state, reason FROM dispatch.joblists WHERE joblist_id = :jl;
SELECT count(*) AS held_by_the_group FROM dispatch.allocations a JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl;
-- A reservation that ends early (its joblist cancelled) leaves the job it lent to
-- holding its unit alone until the job ends; a group that never got its reservation
-- placed ends it skipped.
SELECT dispatch.submit_joblist('{"name": "fr", "jobs": [
  {"name": "long", "command": "x", "needs": {"handpond": 1}, "group": {"name": "pond", "needs": {"handpond": 1}}},
  {"name": "late", "command": "x", "needs": {"handpond": 1}, "group": "pond"}]}') AS jl \gset
SELECT pg_temp.wait_until(format($$SELECT count(*) = 2 FROM dispatch.jobs
                                    WHERE joblist_id = %s AND state = 'assigned'$$, :jl)) AS placed;
SELECT action, name FROM dispatch.agent_poll('fr1') WHERE action = 'run' ORDER BY name;
SELECT dispatch.cancel_joblist(:jl::bigint);
SELECT j.name, j.state, r.ident, r.lent_by FROM dispatch.jobs j
  LEFT JOIN dispatch.resource_status r USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY j.job_id;
SELECT pg_temp.finish(:jl, 'long', '{"signal": 15}') AS long;
SELECT count(*) AS held_after_the_end FROM dispatch.allocations a JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl;
SELECT pg_temp.finish(:other_jl, 'other', '{"exit_code": 0}') AS other;
BEGIN;
SELECT dispatch.submit_joblist('{"name": "fr", "jobs": [
  {"name": "first", "command": "x", "needs": {"handpond": 1}},
  {"name": "then", "command": "x", "needs": {"handpond": 1}, "after": ["first"], "group": {"name": "pond", "needs": {"handpond": 1}}}]}') AS jl \gset
SELECT dispatch._finish_job(pg_temp.job(:jl, 'first'), 'failed', 'by hand');
SELECT pg_temp.settle();
SELECT name, state, reason FROM dispatch.job_status WHERE joblist_id = :jl ORDER BY job_id;
COMMIT;
-- A drained node: the reservation goes back to the queue (it may not stay where no new
-- job starts), the job that runs keeps its unit alone, the one waiting for room waits
-- for the reservation to be placed again.
SELECT dispatch.submit_joblist('{"name": "fr", "jobs": [
  {"name": "runs", "command": "x", "needs": {"handpond": 1}, "group": {"name": "pond", "needs": {"handpond": 2}}},
  {"name": "big", "command": "x", "needs": {"handpond": 2}, "group": "pond"}]}') AS jl \gset
SELECT pg_temp.wait_until(format($$SELECT count(*) = 2 FROM dispatch.jobs
                                    WHERE joblist_id = %s AND state = 'assigned'$$, :jl)) AS placed;
SELECT action, name FROM dispatch.agent_poll('fr1') WHERE action = 'run' ORDER BY name;
SELECT dispatch.agent_drain('fr1');
SELECT j.name, j.state, j.held, r.ident, r.lent_by FROM dispatch.jobs j
  LEFT JOIN dispatch.resource_status r USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY j.job_id, r.ident;
SELECT pg_temp.finish(:jl, 'runs', '{"exit_code": 0}') AS runs;
SELECT name, state, held FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT dispatch.cancel_joblist(:jl::bigint);
SELECT count(*) AS held_after_the_cancel FROM dispatch.allocations a JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl;
