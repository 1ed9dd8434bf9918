-- Data flows at submit (sql/src/31_flow_spec.sql): every malformed after, when,
-- matrix, array, for_each, group and timeout fails with SQLSTATE 22023, the JSON path
-- and, for a cycle, the cycle spelled out; nothing is inserted.  Then what valid
-- specs expand to: matrix and array cells, a for_each placeholder, groups.
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE FUNCTION pg_temp.graph(jobs text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT dispatch.submit_joblist(format('{"name": "g", "jobs": %s}', jobs)::jsonb)
$$;
SELECT count(*) AS joblists_before FROM dispatch.joblists \gset

-- The graph form
SELECT dispatch.submit_joblist('{"name": "g", "jobs": [], "stages": []}');
SELECT dispatch.submit_joblist('{"name": "g", "jobs": {}}');
SELECT dispatch.submit_joblist('{"name": "g", "jobs": []}');
SELECT dispatch.submit_joblist('{"name": "g", "jobs": [{"name": "a"}]}');
SELECT dispatch.submit_joblist('{"name": "g", "timeout": "soon", "jobs": [{"name": "a", "command": "c"}]}');
SELECT dispatch.submit_joblist('{"name": "g", "timeout": "-1 minute", "jobs": [{"name": "a", "command": "c"}]}');

-- after: names, unknown names, self, later stages, cycles
SELECT pg_temp.graph('[{"name": "a", "command": "c", "after": "b"}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "after": [1]}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c"}, {"name": "b", "command": "c", "after": ["a", "a"]}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "after": ["nope"]}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "after": ["a"]}]');
SELECT dispatch.submit_joblist('{"name": "s", "stages": [
  {"name": "first", "jobs": [{"name": "a", "command": "c", "after": ["b"]}]},
  {"name": "second", "jobs": [{"name": "b", "command": "c"}]}]}');
SELECT pg_temp.graph('[{"name": "build", "command": "c", "after": ["test"]},
                       {"name": "test", "command": "c", "after": ["build"]}]');
SELECT pg_temp.graph('[{"name": "fetch", "command": "c"},
                       {"name": "build", "command": "c", "after": ["fetch", "package"]},
                       {"name": "test", "command": "c", "after": ["build"]},
                       {"name": "package", "command": "c", "after": ["test"]}]');
-- a cycle through a fanned-out job, found by its name
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"x": [1, 2]}, "after": ["b"]},
                       {"name": "b", "command": "c", "after": ["a"]}]');

-- when
SELECT pg_temp.graph('[{"name": "a", "command": "c", "when": "sometimes"}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "when": true}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "when": "on_failure"}]');

-- matrix
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": []}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"os": "linux"}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"os": []}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"os": [{"x": 1}]}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"os": [""]}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"os": ["a", "a"]}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"1os": ["a"]}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"DISPATCH_NODE": ["a"]}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix":
  {"a": [1], "b": [1], "c": [1], "d": [1], "e": [1], "f": [1], "g": [1], "h": [1], "i": [1]}}]');
SELECT pg_temp.graph(format('[{"name": "a", "command": "c", "matrix": {"x": %s}}]',
                            (SELECT jsonb_agg(i) FROM generate_series(1, 1001) i)));
-- too many cells for dispatch.max_jobs_per_joblist (8 keys of 1000 values: 10^24 cells)
SELECT pg_temp.graph(format('[{"name": "a", "command": "c", "matrix": %s}]',
    (SELECT jsonb_object_agg(k, (SELECT jsonb_agg(i) FROM generate_series(1, 1000) i))
       FROM unnest(ARRAY['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) k)));
SET dispatch.max_jobs_per_joblist = 10;
SELECT pg_temp.graph('[{"name": "a", "command": "c", "matrix": {"x": [1, 2, 3, 4], "y": [1, 2, 3]}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 11}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 6}},
                       {"name": "b", "command": "c", "array": {"count": 5}}]');
RESET dispatch.max_jobs_per_joblist;

-- array
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": 5}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 0}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": "5"}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 5, "parallel": 0}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 5, "parallel": 6}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 5, "step": 2}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 2}, "matrix": {"x": [1]}}]');

-- for_each
SELECT pg_temp.graph('[{"name": "a", "command": "c", "for_each": ["b"]}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "for_each": "nope"}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "for_each": "a"}]');
SELECT pg_temp.graph('[{"name": "s", "command": "c", "array": {"count": 2}},
                       {"name": "a", "command": "c", "for_each": "s"}]');
SELECT pg_temp.graph('[{"name": "s", "command": "c"},
                       {"name": "a", "command": "c", "for_each": "s", "array": {"count": 2}}]');

-- group, and a group's reservation ({"name", "needs"}, 39_reserve.sql)
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"name": "pond"}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": ""}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"needs": {"cpu": 1}}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"name": "pond", "needs": {"cpu": 1}, "size": 2}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"name": "pond", "needs": {"cpu": 0}}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"name": "pond", "needs": [1]}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"name": "pond", "needs": {"cpu": 2}}},
                       {"name": "b", "command": "c", "group": {"name": "pond", "needs": {"cpu": 3}}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "needs": {"cpu": 2, "gpu": 1},
                        "group": {"name": "pond", "needs": {"cpu": 2}}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"name": "pond", "needs": {"gpu": 2}}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "needs": {"cpu": 1}, "group": "pond"},
                       {"name": "b", "command": "c", "needs": {"cpu": 3}, "group": {"name": "pond", "needs": {"cpu": 2}}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "array": {"count": 4, "parallel": 2},
                        "group": {"name": "pond", "needs": {"cpu": 2}}}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "constraints": {"rack": "r1"}, "group": {"name": "pond", "needs": {"cpu": 2}}},
                       {"name": "b", "command": "c", "constraints": {"rack": "r2"}, "group": "pond"}]');
SELECT pg_temp.graph('[{"name": "a", "command": "c", "group": {"name": "pond", "needs": {"cpu": 2}}},
                       {"name": "group:pond", "command": "c"}]');
SELECT dispatch.submit_joblist('{"name": "s", "stages": [
  {"jobs": [{"name": "a", "command": "c", "group": {"name": "pond", "needs": {"cpu": 2}}}]},
  {"jobs": [{"name": "b", "command": "c", "group": "pond"}]}]}');

SELECT count(*) - :joblists_before AS joblists_added FROM dispatch.joblists;

-- What valid specs become: a 3x2 matrix, with its values in env and replacements
SELECT pg_temp.graph('[{"name": "test", "command": "run", "env": {"MODE": "ci"},
                        "files": [{"path": "cell.ini", "content": "os={{os}} py={{py}}\\n",
                                   "template": true}],
                        "matrix": {"os": ["debian", "alpine", "arch"], "py": ["3.11", "3.12"]}},
                       {"name": "report", "command": "r", "after": ["test"], "when": "always"}]') AS jl \gset
SELECT name, task, cell, env, after, condition, held, state
  FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT j.name, f.path, f.content FROM dispatch.jobs j JOIN dispatch.job_files f USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY j.job_id;
-- an array with a throttle: cells past the throttle wait for a slot (shown before the
-- commit, so that the running scheduler cannot give the queued ones a reason of its own)
BEGIN;
SELECT pg_temp.graph('[{"name": "chunk", "command": "c", "array": {"count": 4, "parallel": 2}}]') AS jl \gset
SELECT j.name, j.cell, j.env ->> 'DISPATCH_ARRAY_INDEX' AS index,
       j.env ->> 'DISPATCH_ARRAY_COUNT' AS count, j.held, s.reason
  FROM dispatch.job_status s JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY job_id;
COMMIT;
-- for_each: one placeholder, held until its source ends; groups get a scratch key
SELECT pg_temp.graph('[{"name": "split", "command": "s", "group": "pond"},
                       {"name": "work", "command": "w", "for_each": "split", "group": "pond"},
                       {"name": "sum", "command": "s", "after": ["work"]}]') AS jl \gset
SELECT j.name, j.after, j.for_each, j.group_name, j.held, s.reason
  FROM dispatch.job_status s JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY job_id;
SELECT group_name, key = :jl || '-1' AS key_ok, node, ended_at FROM dispatch.group_scratch
 WHERE joblist_id = :jl;
-- a reservation: one more job, held like the group's, with the group's needs and the
-- constraints of all its jobs (uncommitted while shown, as above)
BEGIN;
SELECT pg_temp.graph('[{"name": "fill", "command": "f", "constraints": {"rack": "r1"},
                        "group": {"name": "pond", "needs": {"cpu": 4, "mem_mb": 512}}},
                       {"name": "stir", "command": "s", "needs": {"cpu": 2, "mem_mb": 512},
                        "constraints": {"zone": "z"}, "after": ["fill"], "group": "pond"},
                       {"name": "scan", "command": "s", "matrix": {"x": [1, 2]},
                        "group": {"name": "pond", "needs": {"mem_mb": 512, "cpu": 4}}}]') AS jl \gset
SELECT j.name, j.command, j.needs, j.constraints, j.condition, j.held, j.group_name, j.reserves,
       j.timeout, s.reason
  FROM dispatch.job_status s JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY job_id;
COMMIT;
-- stages are sugar: a later stage may name a job of an earlier one (uncommitted while
-- shown, as above)
BEGIN;
SELECT dispatch.submit_joblist('{"name": "s", "timeout": "1 hour", "stages": [
  {"name": "build", "jobs": [{"name": "a", "command": "c"}, {"name": "b", "command": "c"}]},
  {"name": "test", "jobs": [{"name": "t", "command": "c", "after": ["b"]},
                            {"name": "u", "command": "c", "after": ["t"]}]}]}') AS jl \gset
SELECT name, stage, after, held FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT timeout, deadline IS NOT NULL AS has_deadline FROM dispatch.joblists WHERE joblist_id = :jl;
-- the graph of a joblist, as JSON and as DOT
-- (job ids shown as names, so that the output does not depend on earlier tests)
CREATE FUNCTION pg_temp.named(jl bigint, t text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    j record;
BEGIN
    FOR j IN SELECT job_id, name FROM dispatch.jobs WHERE joblist_id = jl ORDER BY job_id DESC LOOP
        t := replace(replace(t, '"j' || j.job_id || '"', '"' || j.name || '"'),
                     ': ' || j.job_id || ',', ': "' || j.name || '",');
    END LOOP;
    RETURN replace(t, format('"joblist %s"', jl), '"joblist"');
END
$$;
SELECT pg_temp.named(:jl, jsonb_pretty(dispatch.joblist_graph(:jl) - 'joblist_id'));
SELECT pg_temp.named(:jl, dispatch.joblist_graph_dot(:jl));
COMMIT;
SELECT dispatch.joblist_graph(-1);
SELECT dispatch.joblist_graph_dot(-1);
SELECT bool_and(dispatch.cancel_joblist(joblist_id)) AS cancelled FROM dispatch.joblists
 WHERE state = 'queued' AND name IN ('g', 's');
