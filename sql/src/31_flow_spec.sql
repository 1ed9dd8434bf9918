------------------------------------------------------------------------------
-- Data flows, at submit: a joblist's graph checked, its fan-outs expanded
------------------------------------------------------------------------------
--
-- A joblist is a graph of jobs (docs/dataflow.md).  It is given as stages (each
-- job after every job of the stage before: the stages are kept as they are, and a
-- stage's jobs wait for the stage before it to end) or, with "jobs" instead of
-- "stages", as one stage ("main") of jobs that say what they run "after".  Per job:
-- "after" (names of jobs of its own stage or earlier ones), "when" (on_success,
-- on_failure, always), one fan-out of "matrix" (one cell per combination), "array"
-- ({"count", "parallel"}) or "for_each" (a job whose JSON array result it fans out
-- over at run time), and "group" (co-location with a shared scratch directory).
--
-- The graph is checked once the jobs are (_check_flow): unknown and later names,
-- self-references and cycles (src/core/graph.c finds one and the error spells it out).
-- _flow_stages then turns the spec into what _insert_jobs stores: stages form, a
-- matrix or array job replaced by its cells.  A plain stages spec without fan-outs
-- passes through unchanged, so the large joblists of the benchmarks pay a jsonpath
-- test and nothing more.

-- Inlined (no SET clause).
CREATE FUNCTION dispatch._group_of(job jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(job -> 'group') = 'object' THEN job -> 'group' ->> 'name'
                ELSE job ->> 'group' END
$$;
COMMENT ON FUNCTION dispatch._group_of(jsonb) IS
    'The group a job spec names: "group" itself, or its name when it reserves ({"name", "needs"})';

-- Whether some job of a spec (either form) reserves for its group.  Inlined.
CREATE FUNCTION dispatch._spec_reserves(spec jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT spec @? '$.stages[*].jobs[*].group ? (@.type() == "object")'
        OR spec @? '$.jobs[*].group ? (@.type() == "object")'
$$;
COMMENT ON FUNCTION dispatch._spec_reserves(jsonb) IS
    'Whether a job of joblist spec reserves for its group ({"name", "needs"})';

CREATE FUNCTION dispatch._validate_flow(job jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
    v record;
    seen text[] := '{}';
    fans text[] := ARRAY(SELECT k FROM unnest(ARRAY['matrix', 'array', 'for_each']) k
                          WHERE job ? k);
    p text;
BEGIN
    FOR e IN SELECT * FROM dispatch._json_items(job, 'after', path, 'job', false,
                                                 NULL, 1000) LOOP
        PERFORM dispatch._json_text(e.item, e.item_path, 'a name in after');
        IF e.item #>> '{}' = ANY (seen) THEN
            PERFORM dispatch._spec_error(e.item_path,
                format('job "%s" is named twice in after', e.item #>> '{}'));
        END IF;
        seen := seen || (e.item #>> '{}');
    END LOOP;
    IF job ? 'when' THEN
        PERFORM dispatch._json_choice(job -> 'when', ARRAY['on_success', 'on_failure', 'always'],
            dispatch._path(path, 'when'), 'when must be "on_success", "on_failure" or "always"');
    END IF;
    IF cardinality(fans) > 1 THEN
        PERFORM dispatch._spec_error(dispatch._path(path, fans[2]),
            format('a job may fan out only one way, not by both "%s" and "%s"', fans[1], fans[2]));
    END IF;
    IF job ? 'matrix' THEN
        p := dispatch._path(path, 'matrix');
        PERFORM dispatch._json_typed('object', job -> 'matrix', p, 'matrix', 'matrix has no keys');
        IF (SELECT count(*) FROM jsonb_object_keys(job -> 'matrix')) > 8 THEN
            PERFORM dispatch._spec_error(p, 'a matrix may have at most 8 keys');
        END IF;
        FOR e IN SELECT key, value FROM jsonb_each(job -> 'matrix') ORDER BY key LOOP
            IF e.key !~ dispatch._env_name_pattern() THEN
                PERFORM dispatch._spec_error(dispatch._path(p, e.key),
                    format('invalid matrix key "%s"', e.key),
                    'A matrix key becomes an environment variable: a letter or "_" followed by letters, digits or "_", not starting with DISPATCH_.');
            END IF;
            PERFORM dispatch._json_typed('array', e.value, dispatch._path(p, e.key),
                                         format('matrix key "%s"', e.key),
                                         format('matrix key "%s" has no values', e.key));
            IF jsonb_array_length(e.value) > 1000 THEN
                PERFORM dispatch._spec_error(dispatch._path(p, e.key),
                    format('matrix key "%s" has more than 1000 values', e.key));
            END IF;
            seen := '{}';
            FOR v IN SELECT x, (o - 1)::int AS i FROM jsonb_array_elements(e.value)
                                                   WITH ORDINALITY AS a(x, o) LOOP
                IF jsonb_typeof(v.x) NOT IN ('string', 'number', 'boolean')
                   OR length(v.x #>> '{}') NOT BETWEEN 1 AND 100 THEN
                    PERFORM dispatch._spec_error(format('%s[%s]', dispatch._path(p, e.key), v.i),
                        'a matrix value must be a string, number or boolean of 1 to 100 characters');
                END IF;
                IF v.x #>> '{}' = ANY (seen) THEN
                    PERFORM dispatch._spec_error(format('%s[%s]', dispatch._path(p, e.key), v.i),
                        format('matrix key "%s" has the value %s twice', e.key, v.x));
                END IF;
                seen := seen || (v.x #>> '{}');
            END LOOP;
        END LOOP;
    END IF;
    IF job ? 'array' THEN
        p := dispatch._path(path, 'array');
        PERFORM dispatch._json_typed('object', job -> 'array', p, 'array');
        PERFORM dispatch._check_keys(job -> 'array', ARRAY['count', 'parallel'], p, 'array');
        PERFORM dispatch._require_key(job -> 'array', 'count', p, 'array');
        PERFORM dispatch._json_int(job -> 'array' -> 'count', 1,
            current_setting('dispatch.max_jobs_per_joblist')::bigint,
            dispatch._path(p, 'count'), 'array count');
        IF job -> 'array' ? 'parallel' THEN
            PERFORM dispatch._json_int(job -> 'array' -> 'parallel', 1,
                (job -> 'array' ->> 'count')::bigint, dispatch._path(p, 'parallel'),
                'array parallel');
        END IF;
    END IF;
    IF job ? 'for_each' THEN
        PERFORM dispatch._json_text(job -> 'for_each', dispatch._path(path, 'for_each'),
                                    'for_each');
    END IF;
    IF jsonb_typeof(job -> 'group') = 'object' THEN
        -- a reservation for the whole group (39_reserve.sql checks it against its jobs)
        p := dispatch._path(path, 'group');
        PERFORM dispatch._check_keys(job -> 'group', ARRAY['name', 'needs'], p, 'group');
        PERFORM dispatch._require_key(job -> 'group', 'name', p, 'group');
        PERFORM dispatch._json_text(job -> 'group' -> 'name', dispatch._path(p, 'name'),
                                    'group name');
        PERFORM dispatch._require_key(job -> 'group', 'needs', p, 'group');
        PERFORM dispatch._validate_needs(job -> 'group' -> 'needs', dispatch._path(p, 'needs'));
    ELSIF job ? 'group' THEN
        PERFORM dispatch._json_text(job -> 'group', dispatch._path(path, 'group'), 'group');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._validate_flow(jsonb, text) IS
    'Validates the data-flow keys of one job spec at path (after, when, matrix, array, '
    'for_each, group); what they name is checked by _check_flow';

-- The graph form: {"name", "jobs": [...]} is validated as one stage whose jobs' paths
-- are jobs[k] (the stage's own path is the top level).
CREATE FUNCTION dispatch._validate_graph_joblist(spec jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    one jsonb;
    dup record;
    r record;
BEGIN
    IF spec ? 'stages' THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'jobs'),
            'a joblist has "stages" or "jobs", not both',
            'Give "jobs" for a graph of jobs, "stages" for stages of them.');
    END IF;
    PERFORM dispatch._json_typed('array', spec -> 'jobs', dispatch._path(path, 'jobs'), 'jobs',
                                 'joblist has no jobs');
    PERFORM dispatch._check_count(jsonb_array_length(spec -> 'jobs'),
        'dispatch.max_jobs_per_joblist', dispatch._path(path, 'jobs'), 'the joblist', 'jobs');
    one := jsonb_build_object('stages', jsonb_build_array(
               jsonb_build_object('name', 'main', 'jobs', spec -> 'jobs')));
    dup := dispatch._joblist_duplicates(one);
    FOR r IN SELECT * FROM dispatch._joblist_suspects(one, NULL, dup.job_stage, dup.job) LOOP
        PERFORM dispatch._validate_stage(one -> 'stages' -> 0, path, 'main', false, dup.job, r.jobs);
    END LOOP;
    PERFORM dispatch._check_flow(spec, path);
    PERFORM dispatch._check_groups(spec) WHERE dispatch._spec_reserves(spec);
END
$$;
COMMENT ON FUNCTION dispatch._validate_graph_joblist(jsonb, text) IS
    'Validates the jobs of a joblist spec given as a graph ("jobs" instead of "stages")';

-- The jobs of a spec of either form, validated: stage, index, JSON path, name, spec.
CREATE FUNCTION dispatch._flow_jobs(spec jsonb)
RETURNS TABLE (stage int, k int, job_path text, name text, job jsonb)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 0, (o - 1)::int, format('jobs[%s]', o - 1), y ->> 'name', y
      FROM jsonb_array_elements(CASE WHEN spec ? 'jobs' THEN spec -> 'jobs' END)
           WITH ORDINALITY AS j(y, o)
    UNION ALL
    SELECT u.stage, u.k, u.job_path, u.job ->> 'name', u.job
      FROM dispatch._spec_jobs(CASE WHEN NOT spec ? 'jobs' THEN spec END) u
$$;
COMMENT ON FUNCTION dispatch._flow_jobs(jsonb) IS
    'The jobs of a validated joblist spec in either form: stage, index, JSON path, name, spec';

CREATE FUNCTION dispatch._check_flow(spec jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad record;
    cyc int[];
    froms int[];
    tos int[];
    names text[];
    paths text[];
BEGIN
    IF NOT (spec @? '$.stages[*].jobs[*] ? (exists(@.after) || exists(@.for_each) || @.when == "on_failure")'
            OR spec @? '$.jobs[*] ? (exists(@.after) || exists(@.for_each) || @.when == "on_failure")') THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS _flow_nodes (i int, stage int, path text, name text,
                                                  fanned boolean, has_up boolean, job jsonb)
        ON COMMIT DROP;
    TRUNCATE _flow_nodes;
    INSERT INTO _flow_nodes
    SELECT (row_number() OVER (ORDER BY f.stage, f.k) - 1)::int, f.stage, f.job_path, f.name,
           f.job ?| ARRAY['matrix', 'array', 'for_each'], f.job ?| ARRAY['after', 'for_each'], f.job
      FROM dispatch._flow_jobs(spec) f;
    -- every edge: what a job is after (and what it fans out over), with its JSON path
    WITH e AS (
        SELECT n.i, n.stage, n.name, a.x #>> '{}' AS up, format('%s.after[%s]', n.path, a.o - 1) AS p,
               false AS fan, a.o AS o
          FROM _flow_nodes n, jsonb_array_elements(n.job -> 'after') WITH ORDINALITY AS a(x, o)
         WHERE n.job ? 'after'
        UNION ALL
        SELECT n.i, n.stage, n.name, n.job ->> 'for_each', dispatch._path(n.path, 'for_each'), true, 0
          FROM _flow_nodes n WHERE n.job ? 'for_each')
    SELECT e.*, u.i AS up_i, u.stage AS up_stage, u.fanned AS up_fanned,
           (SELECT s.x ->> 'name' FROM jsonb_array_elements(spec -> 'stages')
                                        WITH ORDINALITY AS s(x, o) WHERE s.o - 1 = u.stage) AS up_stage_name
      INTO bad
      FROM e LEFT JOIN _flow_nodes u ON u.name = e.up
     WHERE u.i IS NULL OR u.i = e.i OR u.stage > e.stage OR (e.fan AND u.fanned)
     ORDER BY e.i, e.fan DESC, e.o LIMIT 1;
    IF FOUND THEN
        IF bad.up_i IS NULL THEN
            PERFORM dispatch._spec_error(bad.p, format('job "%s" names an unknown job "%s"', bad.name, bad.up),
                'Name jobs of this joblist as they are written in it (a fanned-out job by its own name, which means all of its cells).');
        ELSIF bad.up_i = bad.i THEN
            PERFORM dispatch._spec_error(bad.p, format('job "%s" cannot run after itself', bad.name));
        ELSIF bad.up_stage > bad.stage THEN
            PERFORM dispatch._spec_error(bad.p,
                format('job "%s" cannot run after job "%s" of a later stage', bad.name, bad.up),
                format('Job "%s" is in stage "%s", which runs after this job''s stage.', bad.up,
                       coalesce(bad.up_stage_name, 'stage' || bad.up_stage)));
        ELSE
            PERFORM dispatch._spec_error(bad.p,
                format('job "%s" cannot fan out over job "%s", which fans out itself', bad.name, bad.up),
                'for_each names one job whose result is a JSON array.');
        END IF;
    END IF;
    SELECT n.path, n.name INTO bad FROM _flow_nodes n
     WHERE n.stage = 0 AND NOT n.has_up AND n.job ->> 'when' = 'on_failure' ORDER BY n.i LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(dispatch._path(bad.path, 'when'),
            format('job "%s" runs only after a failure but runs after no job', bad.name),
            'Give it "after", or put it in a later stage.');
    END IF;
    SELECT array_agg(n.i ORDER BY n.i, a.o), array_agg(u.i ORDER BY n.i, a.o) INTO froms, tos
      FROM _flow_nodes n,
           jsonb_array_elements_text(n.job -> 'after') WITH ORDINALITY AS a(up, o)
      JOIN _flow_nodes u ON u.name = a.up
     WHERE n.job ? 'after';
    cyc := dispatch._dag_cycle(froms, tos, (SELECT count(*)::int FROM _flow_nodes));
    IF cyc IS NOT NULL THEN
        -- spelled in the order they would run (the cycle follows "after" backwards)
        SELECT array_agg(n.name ORDER BY c.o DESC), array_agg(n.path ORDER BY c.o DESC)
          INTO names, paths
          FROM unnest(cyc) WITH ORDINALITY AS c(i, o) JOIN _flow_nodes n USING (i);
        PERFORM dispatch._spec_error(dispatch._path(paths[1], 'after'),
            format('the jobs'' "after" lists form a cycle: %s', array_to_string(names, ' -> ')),
            'A job cannot run after a job that runs after it.');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_flow(jsonb, text) IS
    'Fails unless every after and for_each of a validated joblist spec names another job '
    'of its own or an earlier stage, for_each names a job that does not fan out, and the '
    'after lists form no cycle (the error spells one out)';

-- A cell's job: the job with the cell's values in its env (each key as a variable)
-- and its job-wide replacement map (each key K as the pattern {{K}}), its own name and
-- the task (its job's name) and JSON path it comes from.
CREATE FUNCTION dispatch._cell_job(job jsonb, path text, name text, cell jsonb, env jsonb,
                                   patterns jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (job - ARRAY['matrix', 'array', 'for_each'])
           || jsonb_build_object('name', name, '_task', job ->> 'name', '_path', path,
                                 '_cell', cell,
                                 'env', coalesce(job -> 'env', '{}') || env,
                                 'replacements', coalesce(job -> 'replacements', '{}') || patterns)
$$;
COMMENT ON FUNCTION dispatch._cell_job(jsonb, text, text, jsonb, jsonb, jsonb) IS
    'The job spec of one cell (name, values cell, its env and replacement entries) of fanned job';

-- The cells of a matrix job, in order: the keys sorted, the first varying slowest.
CREATE FUNCTION dispatch._matrix_cells(job jsonb, path text) RETURNS SETOF jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cells jsonb[] := ARRAY['{}'::jsonb];
    k text;
BEGIN
    FOR k IN SELECT key FROM jsonb_object_keys(job -> 'matrix') key ORDER BY key LOOP
        cells := ARRAY(SELECT c.x || jsonb_build_object(k, v.x #>> '{}')
                         FROM unnest(cells) WITH ORDINALITY AS c(x, o),
                              jsonb_array_elements(job -> 'matrix' -> k) WITH ORDINALITY AS v(x, o)
                        ORDER BY c.o, v.o);
    END LOOP;
    RETURN QUERY
    SELECT dispatch._cell_job(job, path,
               format('%s[%s]', job ->> 'name',
                      (SELECT string_agg(e.key || '=' || e.value, ',' ORDER BY e.key)
                         FROM jsonb_each_text(c) e)),
               c, c,
               (SELECT jsonb_object_agg('{{' || e.key || '}}', e.value) FROM jsonb_each_text(c) e))
      FROM unnest(cells) WITH ORDINALITY AS x(c, o) ORDER BY x.o;
END
$$;
COMMENT ON FUNCTION dispatch._matrix_cells(jsonb, text) IS
    'The cells of a matrix job spec (at path), one job spec per combination of its values';

-- The cells of an array job: name[i] with DISPATCH_ARRAY_INDEX and {{index}}; those
-- past its "parallel" start held at their throttle.
CREATE FUNCTION dispatch._array_cells(job jsonb, path text) RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._cell_job(job, path, format('%s[%s]', job ->> 'name', i),
               jsonb_build_object('index', i),
               jsonb_build_object('DISPATCH_ARRAY_INDEX', i::text,
                                  'DISPATCH_ARRAY_COUNT', job -> 'array' ->> 'count'),
               jsonb_build_object('{{index}}', i::text))
           || CASE WHEN job -> 'array' ? 'parallel'
                   THEN jsonb_build_object('_parallel', (job -> 'array' -> 'parallel')::int,
                                           '_slot', i >= (job -> 'array' ->> 'parallel')::int)
                   ELSE '{}' END
      FROM generate_series(0, (job -> 'array' ->> 'count')::int - 1) i
$$;
COMMENT ON FUNCTION dispatch._array_cells(jsonb, text) IS
    'The cells of an array job spec (at path): one per index, those past parallel held';

-- The cells for_each makes of one item list (36_dataflow.sql calls it when the job it
-- fans out over has left its result): name[i] with DISPATCH_ITEM (a string as it is,
-- anything else as JSON), DISPATCH_ITEM_INDEX, {{item}} and {{index}}.
CREATE FUNCTION dispatch._item_cells(job jsonb, path text, items jsonb) RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._cell_job(job, path, format('%s[%s]', job ->> 'name', o - 1),
               jsonb_build_object('index', o - 1, 'item', x),
               jsonb_build_object('DISPATCH_ITEM', x #>> '{}', 'DISPATCH_ITEM_INDEX', (o - 1)::text),
               jsonb_build_object('{{item}}', x #>> '{}', '{{index}}', (o - 1)::text))
      FROM jsonb_array_elements(items) WITH ORDINALITY AS a(x, o) ORDER BY o
$$;
COMMENT ON FUNCTION dispatch._item_cells(jsonb, text, jsonb) IS
    'The cells of a for_each job spec (at path) over the JSON array items';

-- What _insert_jobs stores for a validated spec: stages form, with each job that some
-- job runs after marked with its task (_task), for_each turned into an after of its
-- source, and every matrix or array job replaced by its cells.
CREATE FUNCTION dispatch._flow_stages(spec jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    upstream text[];
    total bigint;
BEGIN
    IF NOT spec ? 'jobs'
       AND NOT spec @? '$.stages[*].jobs[*] ? (exists(@.after) || exists(@.for_each) || exists(@.matrix) || exists(@.array) || exists(@.group) || exists(@.when))' THEN
        RETURN spec;
    END IF;
    upstream := ARRAY(SELECT DISTINCT x FROM dispatch._flow_jobs(spec) f,
                      LATERAL (SELECT jsonb_array_elements_text(f.job -> 'after')
                               UNION ALL SELECT f.job ->> 'for_each') u(x)
                      WHERE x IS NOT NULL);
    SELECT sum(CASE WHEN f.job ? 'array' THEN (f.job -> 'array' ->> 'count')::bigint
                    WHEN f.job ? 'matrix'
                        -- (at most 1000^8: capped, as anything past the limit is refused)
                        THEN (SELECT least(round(exp(sum(ln(jsonb_array_length(m.value))))),
                                           1e11)::bigint
                                FROM jsonb_each(f.job -> 'matrix') m)
                    ELSE 1 END)
      INTO total FROM dispatch._flow_jobs(spec) f;
    PERFORM dispatch._check_count(total, 'dispatch.max_jobs_per_joblist',
        CASE WHEN spec ? 'jobs' THEN 'jobs' ELSE 'stages' END, 'the joblist',
        'jobs, counting every matrix and array cell');
    RETURN (spec - ARRAY['jobs', 'stages']) || jsonb_build_object('stages', (
        SELECT jsonb_agg(jsonb_build_object('name', s.name, 'jobs', s.jobs) ORDER BY s.stage)
          FROM (SELECT f.stage,
                       coalesce(spec -> 'stages' -> f.stage ->> 'name',
                                CASE WHEN spec ? 'jobs' THEN 'main' ELSE 'stage' || f.stage END) AS name,
                       jsonb_agg(c.job ORDER BY f.k, c.o) AS jobs
                  FROM dispatch._flow_jobs(spec) f,
                       LATERAL (SELECT f.job || jsonb_build_object('_path', f.job_path)
                                       || CASE WHEN f.name = ANY (upstream)
                                               THEN jsonb_build_object('_task', f.name) ELSE '{}' END
                                       || CASE WHEN f.job ? 'for_each' THEN jsonb_build_object('after',
                                               coalesce(f.job -> 'after', '[]')
                                               || CASE WHEN coalesce(f.job -> 'after', '[]') ? (f.job ->> 'for_each')
                                                       THEN '[]' ELSE jsonb_build_array(f.job ->> 'for_each') END,
                                               '_task', f.name)
                                               ELSE '{}' END AS j) x,
                       LATERAL (SELECT m, o FROM dispatch._matrix_cells(x.j, f.job_path) WITH ORDINALITY AS y(m, o)
                                 WHERE f.job ? 'matrix'
                                UNION ALL
                                SELECT m, o FROM dispatch._array_cells(x.j, f.job_path) WITH ORDINALITY AS y(m, o)
                                 WHERE f.job ? 'array'
                                UNION ALL
                                SELECT x.j, 1 WHERE NOT f.job ?| ARRAY['matrix', 'array']) c(job, o)
                 GROUP BY f.stage) s));
END
$$;
COMMENT ON FUNCTION dispatch._flow_stages(jsonb) IS
    'The jobs to store for validated joblist spec: stages form, fan-outs expanded into '
    'cells, upstream jobs marked with their task (the spec itself when it has no data-flow key)';

CREATE FUNCTION dispatch._held_reason(held text, job jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE held
        WHEN 'after' THEN format('waiting for %s',
            (SELECT string_agg(format('"%s"', a), ', ') FROM jsonb_array_elements_text(job -> 'after') a))
        WHEN 'group' THEN format('waiting for its group "%s" to be placed', dispatch._group_of(job))
        WHEN 'slot' THEN format('waiting for one of the %s slots of "%s"', job ->> '_parallel',
                                job ->> '_task')
    END
$$;
COMMENT ON FUNCTION dispatch._held_reason(text, jsonb) IS
    'Why a job (its stored spec) held at gate held waits';
