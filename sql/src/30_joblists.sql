------------------------------------------------------------------------------
-- Joblists and jobs: tables, spec validation and submission
------------------------------------------------------------------------------
--
-- A joblist is an ordered list of stages whose jobs run in parallel.  submit_joblist()
-- validates the whole spec first (the first error found is raised and nothing is
-- stored), then inserts the joblist, its stages and jobs, and the jobs' files
-- (32_files.sql).  Validation reads top-down, one function a level (joblist, stage,
-- job, needs, files), each given the JSON path of its value: a goal validates its
-- joblist or job with its own path (70_goals.sql).  Those exact validators only see
-- what one set-based query (_joblist_suspects) could not vouch for, so a valid spec
-- costs a few statements whatever its size; _submit then checks what rendering makes
-- of the templates and inserts the jobs and files with one statement a table.
-- Everything is linear in the size of the spec: the job count is checked against
-- dispatch.max_jobs_per_joblist first, and duplicate names are found in one pass
-- (_joblist_duplicates) rather than by comparing each name with those before it.
-- allocations records which resource units each job holds.

CREATE TABLE dispatch.joblists (
    joblist_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    fail_fast       boolean NOT NULL DEFAULT true,
    current_stage   int NOT NULL DEFAULT 0,
    stage_count     int NOT NULL CHECK (stage_count > 0),
    spec            jsonb NOT NULL,
    submitted_by    name NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    reason          text,
    -- Data flows (36_dataflow.sql): the joblist's time limit and, until it has acted on
    -- it, when it expires; the first failure, once one was seen (it stays running while
    -- jobs that run after failures do).
    timeout         interval CHECK (timeout > '0'),
    deadline        timestamptz,
    failure         text,
    CHECK (current_stage >= 0 AND current_stage < stage_count),
    CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX joblists_name_idx ON dispatch.joblists (name);
CREATE INDEX joblists_active_idx ON dispatch.joblists (joblist_id)
    WHERE state IN ('queued', 'running');
CREATE INDEX joblists_deadline_idx ON dispatch.joblists (deadline)
    WHERE deadline IS NOT NULL AND state IN ('queued', 'running');
COMMENT ON TABLE dispatch.joblists IS 'Submitted joblists: ordered stages of parallel jobs';

CREATE TABLE dispatch.stages (
    joblist_id      bigint NOT NULL REFERENCES dispatch.joblists ON DELETE CASCADE,
    stage           int NOT NULL CHECK (stage >= 0),
    name            text NOT NULL,
    PRIMARY KEY (joblist_id, stage),
    UNIQUE (joblist_id, name)
);
COMMENT ON TABLE dispatch.stages IS 'Stages of each joblist, numbered from 0';

CREATE TABLE dispatch.jobs (
    job_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    joblist_id      bigint NOT NULL,
    stage           int NOT NULL,
    name            text NOT NULL,
    command         text NOT NULL,
    needs           jsonb NOT NULL,
    constraints     jsonb NOT NULL DEFAULT '{}',
    env             jsonb NOT NULL DEFAULT '{}',
    timeout         interval CHECK (timeout > '0'),
    retries         int NOT NULL DEFAULT 0 CHECK (retries >= 0),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'assigned', 'running', 'succeeded',
                                     'failed', 'cancelled', 'lost', 'skipped')),
    attempt         int NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    node            text REFERENCES dispatch.nodes,
    resources       jsonb,
    reason          text,
    exit_code       int,
    signal          int,
    timed_out       boolean NOT NULL DEFAULT false,
    cancel_requested boolean NOT NULL DEFAULT false,
    assigned_at     timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    output_bytes    bigint NOT NULL DEFAULT 0,
    output_truncated boolean NOT NULL DEFAULT false,
    -- The scheduler's reservation for a waiting job (50_scheduler.sql): from when
    -- (NULL: not known) and on which node (NULL: none).
    expected_start  timestamptz,
    expected_node   text,
    -- Data flows (31_flow_spec.sql, 36_dataflow.sql).  task: the spec name of the job
    -- when the graph needs it (a job some job is after, or a cell of a fanned-out job;
    -- NULL otherwise); after: the tasks it runs after; condition: its "when"; held: the
    -- gate a pending job still waits at (after: its upstream; group: its group's
    -- placement; slot: its array's throttle); cell: its matrix, array or for_each values;
    -- parallel: its array's throttle; for_each: the task whose result it fans out over
    -- (a placeholder, replaced by its cells); upstream_failed: it was skipped because
    -- something upstream went wrong; result: what it left at $DISPATCH_RESULT;
    -- waiting_signal: the signal it waits for (48_signals.sql); reserves: the group
    -- whose reservation this job is (39_reserve.sql: a job that runs nothing); builds:
    -- the workspace whose files it builds (79_rebuilds.sql).
    task            text,
    after           text[],
    condition       text NOT NULL DEFAULT 'on_success'
                    CHECK (condition IN ('on_success', 'on_failure', 'always')),
    held            text CHECK (held IN ('after', 'group', 'slot')),
    cell            jsonb,
    parallel        int CHECK (parallel > 0),
    for_each        text,
    group_name      text,
    upstream_failed boolean NOT NULL DEFAULT false,
    result          jsonb,
    waiting_signal  text,
    reserves        text,
    builds          text,
    FOREIGN KEY (joblist_id, stage) REFERENCES dispatch.stages ON DELETE CASCADE,
    UNIQUE (joblist_id, name),
    CHECK (state NOT IN ('assigned', 'running') OR node IS NOT NULL),
    CHECK (state <> 'pending' OR node IS NULL),
    CHECK (state = 'pending' OR held IS NULL),
    CHECK (reserves IS NULL OR group_name IS NULL),
    CHECK ((state IN ('succeeded', 'failed', 'cancelled', 'lost', 'skipped'))
           = (finished_at IS NOT NULL))
);
CREATE INDEX jobs_pending_idx ON dispatch.jobs (joblist_id, job_id) WHERE state = 'pending';
CREATE INDEX jobs_stage_idx ON dispatch.jobs (joblist_id, stage);
-- Whether a stage still has an active job, or a bad one (the scheduler's housekeeping
-- asks after every end): without these, the answer walked past every finished job of
-- the stage, so a joblist of 20,000 jobs cost O(n) per end and O(n^2) in all.
CREATE INDEX jobs_stage_active_idx ON dispatch.jobs (joblist_id, stage)
    WHERE state IN ('pending', 'assigned', 'running');
CREATE INDEX jobs_stage_bad_idx ON dispatch.jobs (joblist_id, stage)
    WHERE state IN ('failed', 'lost', 'cancelled') OR upstream_failed;
-- The graph's questions (36_dataflow.sql), asked only of jobs that take part in it:
-- which held jobs a joblist has, whether a task still has an active job, how many
-- cells of an array are busy.
CREATE INDEX jobs_held_idx ON dispatch.jobs (joblist_id, stage, held)
    WHERE state = 'pending' AND held IS NOT NULL;
CREATE INDEX jobs_task_idx ON dispatch.jobs (joblist_id, task) WHERE task IS NOT NULL;
CREATE INDEX jobs_task_active_idx ON dispatch.jobs (joblist_id, task)
    WHERE task IS NOT NULL AND state IN ('pending', 'assigned', 'running');
CREATE INDEX jobs_task_busy_idx ON dispatch.jobs (joblist_id, task)
    WHERE task IS NOT NULL
      AND (state IN ('assigned', 'running') OR state = 'pending' AND held IS NULL);
CREATE INDEX jobs_group_idx ON dispatch.jobs (joblist_id, group_name)
    WHERE group_name IS NOT NULL;
CREATE INDEX jobs_reserves_idx ON dispatch.jobs (joblist_id, reserves)
    WHERE reserves IS NOT NULL;
CREATE INDEX jobs_active_node_idx ON dispatch.jobs (node) WHERE state IN ('assigned', 'running');
COMMENT ON TABLE dispatch.jobs IS 'Jobs; attempt grows each time a job is retried';

CREATE TABLE dispatch.allocations (
    resource_id     bigint NOT NULL REFERENCES dispatch.resources,
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    amount          bigint NOT NULL CHECK (amount > 0),
    -- the group reservation (39_reserve.sql) that lent the job this much of what it
    -- holds itself; NULL: the job holds it alone
    lent_by         bigint REFERENCES dispatch.jobs ON DELETE CASCADE,
    PRIMARY KEY (resource_id, job_id)
);
CREATE INDEX allocations_job_idx ON dispatch.allocations (job_id);
CREATE INDEX allocations_lent_idx ON dispatch.allocations (lent_by) WHERE lent_by IS NOT NULL;
COMMENT ON TABLE dispatch.allocations IS
    'Resources held by assigned and running jobs; a unit lent by a group''s reservation to '
    'one of its jobs is held by both, and counts once (the reservation''s)';

-- Inlined into the row-level security policies of job_files and job_output (no SET
-- clause, every name qualified).
CREATE FUNCTION dispatch._caller_may_read_job(job bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT FROM dispatch.jobs j JOIN dispatch.joblists l USING (joblist_id)
                    WHERE j.job_id OPERATOR(pg_catalog.=) job
                      AND dispatch._caller_may_read(l.submitted_by))
$$;
COMMENT ON FUNCTION dispatch._caller_may_read_job(bigint) IS
    'True when the caller may read the private parts (command, env, files, output) of job';

CREATE FUNCTION dispatch._job_map_limit() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 64
$$;
COMMENT ON FUNCTION dispatch._job_map_limit() IS
    'The most resource types a job may need, and the most constraints it may give: each '
    'costs every scheduling cycle a little (docs/security.md)';

-- Fails when the JSON object v (what, at path) has more keys than _job_map_limit().
CREATE FUNCTION dispatch._check_job_map_count(v jsonb, path text, what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint := (SELECT count(*) FROM jsonb_object_keys(v));
BEGIN
    IF n > dispatch._job_map_limit() THEN
        PERFORM dispatch._spec_error(path,
            format('a job may have at most %s %s, not %s', dispatch._job_map_limit(), what, n),
            'Each costs every scheduling cycle a little, for as long as the job waits.');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_job_map_count(jsonb, text, text) IS
    'Fails when a job''s needs or constraints (v, at path) have more than _job_map_limit() keys';

CREATE FUNCTION dispatch._validate_needs(needs jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record;
BEGIN
    PERFORM dispatch._check_job_map_count(dispatch._json_typed('object', needs, path, 'needs'),
                                          path, 'needs');
    FOR n IN SELECT * FROM jsonb_each(needs) LOOP
        PERFORM dispatch._check_resource_type(n.key, dispatch._path(path, n.key));
        PERFORM dispatch._json_int(n.value, 1, 1000000000, dispatch._path(path, n.key),
                                   format('count of "%s"', n.key));
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_needs(jsonb, text) IS
    'Validates the needs of a job (at path): resource types with positive counts';

CREATE FUNCTION dispatch._env_name_pattern() RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '^(?!DISPATCH_)[A-Za-z_][A-Za-z0-9_]*$'
$$;
COMMENT ON FUNCTION dispatch._env_name_pattern() IS
    'The pattern of the names in a job''s env: not DISPATCH_*';

CREATE FUNCTION dispatch._validate_job(job jsonb, path text, duplicate boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text;
BEGIN
    PERFORM dispatch._json_typed('object', job, path, 'job');
    PERFORM dispatch._check_keys(job, ARRAY['name', 'command', 'needs', 'constraints',
        'timeout', 'retries', 'env', 'files', 'replacements', 'template', 'after', 'when',
        'matrix', 'array', 'for_each', 'group'], path, 'job');
    PERFORM dispatch._require_key(job, 'name', path, 'job');
    name := dispatch._json_text(job -> 'name', dispatch._path(path, 'name'), 'job name');
    IF duplicate THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'name'),
            format('duplicate job name "%s"', name),
            'Job names must be unique within a joblist.');
    END IF;
    PERFORM dispatch._require_key(job, 'command', path, 'job');
    PERFORM dispatch._check_size(dispatch._json_text(job -> 'command',
            dispatch._path(path, 'command'), 'command', 1073741823),
        'dispatch.max_file_size', dispatch._path(path, 'command'), 'command');
    IF job ? 'needs' THEN
        PERFORM dispatch._validate_needs(job -> 'needs', dispatch._path(path, 'needs'));
    END IF;
    IF job ? 'constraints' THEN
        PERFORM dispatch._json_string_map(job -> 'constraints',
            '^(reported:)?[A-Za-z0-9_.-]{1,63}$', dispatch._path(path, 'constraints'),
            'constraints',
            'A constraint key is a label key (1 to 63 letters, digits, "_", "." or "-"), matching the labels an admin set, or "reported:" and a label key, matching what the agent reports.');
        PERFORM dispatch._check_job_map_count(job -> 'constraints',
                                              dispatch._path(path, 'constraints'), 'constraints');
    END IF;
    IF job ? 'env' THEN
        PERFORM dispatch._json_string_map(job -> 'env', dispatch._env_name_pattern(),
            dispatch._path(path, 'env'), 'env',
            'An environment variable name is a letter or "_" followed by letters, digits or "_", and must not start with DISPATCH_.');
    END IF;
    PERFORM dispatch._check_job_maps(job, path);
    IF job ? 'timeout' THEN
        PERFORM dispatch._json_interval(job -> 'timeout', dispatch._path(path, 'timeout'),
                                        'timeout');
    END IF;
    IF job ? 'retries' THEN
        PERFORM dispatch._json_int(job -> 'retries', 0, 100, dispatch._path(path, 'retries'),
                                   'retries');
    END IF;
    PERFORM dispatch._validate_files(job, path);
    PERFORM dispatch._validate_flow(job, path);
    RETURN name;
END
$$;
COMMENT ON FUNCTION dispatch._validate_job(jsonb, text, boolean) IS
    'Validates one job spec at path (duplicate: an earlier job of its joblist has its '
    'name, an error once the name itself is valid); returns its name';

CREATE FUNCTION dispatch._check_job_maps(job jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
BEGIN
    -- A constraint value is compared with label values, which are at most this long.
    SELECT key INTO e FROM jsonb_each_text(coalesce(job -> 'constraints', '{}'))
     WHERE length(value) > dispatch._agent_limit('label value') ORDER BY key LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(dispatch._path(dispatch._path(path, 'constraints'), e.key),
            format('value of constraint "%s" is longer than %s characters', e.key,
                   dispatch._agent_limit('label value')),
            'No node label can be that long, so the job could never run.');
    END IF;
    IF job ? 'env' THEN
        PERFORM dispatch._check_size((job -> 'env')::text, 'dispatch.max_env_size',
                                     dispatch._path(path, 'env'), 'env');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_job_maps(jsonb, text) IS
    'Fails when a constraint value of job (at path) is longer than a label can be, or its '
    'env is larger than dispatch.max_env_size';

CREATE FUNCTION dispatch._joblist_duplicates(spec jsonb, OUT stage int, OUT job_stage int,
                                             OUT job int)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    -- One pass over the spec as it is: whatever is malformed is skipped here and
    -- raised by the validator when it gets there, before any later duplicate.
    WITH s AS MATERIALIZED (
        SELECT (o - 1)::int AS i, x,
               CASE WHEN jsonb_typeof(x) <> 'object' THEN NULL
                    WHEN NOT x ? 'name' THEN 'stage' || (o - 1)
                    WHEN jsonb_typeof(x -> 'name') = 'string' THEN x ->> 'name' END AS name
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(spec -> 'stages') = 'array'
                                         THEN spec -> 'stages' ELSE '[]' END)
               WITH ORDINALITY AS a(x, o)),
    j AS MATERIALIZED (
        SELECT s.i, (o - 1)::int AS k, y ->> 'name' AS name
          FROM s, jsonb_array_elements(CASE WHEN jsonb_typeof(s.x -> 'jobs') = 'array'
                                            THEN s.x -> 'jobs' ELSE '[]' END)
                  WITH ORDINALITY AS b(y, o)
         WHERE jsonb_typeof(y -> 'name') = 'string')
    SELECT (SELECT min(i) FROM (SELECT i, row_number() OVER (PARTITION BY name ORDER BY i) AS n
                                  FROM s WHERE name IS NOT NULL) d WHERE n > 1),
           d.i, d.k
      FROM (SELECT 1) one
      LEFT JOIN (SELECT i, k FROM (SELECT i, k, row_number() OVER (PARTITION BY name
                                                                   ORDER BY i, k) AS n
                                     FROM j) d WHERE n > 1 ORDER BY i, k LIMIT 1) d ON true
$$;
COMMENT ON FUNCTION dispatch._joblist_duplicates(jsonb) IS
    'The first stage of joblist spec whose name an earlier stage has, and the first job '
    '(stage and index in it) whose name an earlier job has; NULLs when none';

-- The exact validators below name the first error precisely, but they cost a function
-- call per check and per job.  So a spec is first read by one set-based query that
-- vouches for every stage and job it can see is valid; the exact validators then look
-- only at what it does not vouch for, in spec order, and raise the first error there.
-- The query may be stricter than the validators (what it does not vouch for is merely
-- checked exactly), never looser: each rule here is the rule of _validate_stage,
-- _validate_job or _validate_files (32_files.sql), or a narrower one.
CREATE FUNCTION dispatch._joblist_suspects(spec jsonb, dup_stage int, dup_job_stage int,
                                           dup_job int)
RETURNS TABLE (stage int, jobs int[])
-- PL/pgSQL, not SQL: its query is planned once per session and kept, where a SQL
-- function called from _validate_joblist's loop would be planned again on every call
-- (a millisecond, three times what a one-job submit cost before).
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH lim AS MATERIALIZED (
        SELECT dispatch._setting_bytes('dispatch.max_file_size') AS max_file,
               dispatch._setting_bytes('dispatch.max_env_size') AS max_env,
               dispatch._agent_limit('label value') AS max_label,
               dispatch._job_map_limit() AS max_keys),
    s AS MATERIALIZED (
        SELECT (o - 1)::int AS i, x
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(spec -> 'stages') = 'array'
                                         THEN spec -> 'stages' END) WITH ORDINALITY AS a(x, o)),
    j AS MATERIALIZED (
        SELECT s.i, (o - 1)::int AS k, y AS job
          FROM s, jsonb_array_elements(CASE WHEN jsonb_typeof(s.x -> 'jobs') = 'array'
                                            THEN s.x -> 'jobs' END) WITH ORDINALITY AS b(y, o)),
    f AS MATERIALIZED (
        SELECT j.i, j.k, (o - 1)::int AS n, y AS file
          FROM j, jsonb_array_elements(CASE WHEN jsonb_typeof(j.job -> 'files') = 'array'
                                            THEN j.job -> 'files' END) WITH ORDINALITY AS c(y, o)),
    p AS MATERIALIZED (
        SELECT f.i, f.k, f.file ->> 'path' AS path FROM f
         WHERE jsonb_typeof(f.file -> 'path') = 'string'),
    bad_job AS (
        SELECT j.i, j.k FROM j, lim WHERE NOT coalesce(
               jsonb_typeof(job) = 'object'
           AND job - ARRAY['name', 'command', 'needs', 'constraints', 'timeout', 'retries',
                           'env', 'files', 'replacements', 'template'] = '{}'
           AND jsonb_typeof(job -> 'name') = 'string'
           AND length(job ->> 'name') BETWEEN 1 AND 200
           AND jsonb_typeof(job -> 'command') = 'string' AND job ->> 'command' <> ''
           AND octet_length(job ->> 'command') <= max_file
           AND (NOT job ? 'needs' OR jsonb_typeof(job -> 'needs') = 'object')
           AND (NOT job ? 'constraints' OR jsonb_typeof(job -> 'constraints') = 'object')
           AND (NOT job ? 'env' OR jsonb_typeof(job -> 'env') = 'object'
                                   AND octet_length((job -> 'env')::text) <= max_env)
           AND (NOT job ? 'timeout'
                OR (job -> 'timeout')::text ~ '^[1-9][0-9]{0,8}$'
                   AND (job -> 'timeout')::text::bigint <= 311040000      -- 10 years
                OR jsonb_typeof(job -> 'timeout') = 'string'
                   AND job ->> 'timeout' ~ '^[1-9][0-9]{0,4} (second|minute|hour|day)s?$'
                   AND (job ->> 'timeout')::interval <= interval '10 years')
           AND (NOT job ? 'retries' OR (job -> 'retries')::text ~ '^(100|[1-9]?[0-9])$')
           AND (NOT job ? 'template' OR jsonb_typeof(job -> 'template') = 'boolean')
           AND (NOT job ? 'replacements' OR jsonb_typeof(job -> 'replacements') = 'object')
           AND (NOT job ? 'files' OR jsonb_typeof(job -> 'files') = 'array'
                                     AND jsonb_array_length(job -> 'files') <= 1000), false)
        UNION
        SELECT j.i, j.k FROM j, lim,
               jsonb_each(CASE WHEN jsonb_typeof(job -> 'needs') = 'object'
                               THEN job -> 'needs' END) WITH ORDINALITY AS e(key, value, o)
         WHERE NOT coalesce(e.key ~ dispatch._name_pattern('resource type')
                            AND e.value::text ~ '^([1-9][0-9]{0,8}|1000000000)$'
                            AND e.o <= max_keys, false)
        UNION
        SELECT j.i, j.k FROM j, jsonb_each(CASE WHEN jsonb_typeof(job -> 'env') = 'object'
                                                THEN job -> 'env' END) e
         WHERE NOT coalesce(e.key ~ '^[A-Za-z_][A-Za-z0-9_]*$'     -- _env_name_pattern(),
                            AND NOT starts_with(e.key, 'DISPATCH_')  -- without its slow (?!)
                            AND jsonb_typeof(e.value) = 'string', false)
        UNION
        SELECT j.i, j.k FROM j, lim,
               jsonb_each(CASE WHEN jsonb_typeof(job -> 'constraints') = 'object'
                               THEN job -> 'constraints' END) WITH ORDINALITY AS e(key, value, o)
         WHERE NOT coalesce(e.key ~ '^(reported:)?[A-Za-z0-9_.-]{1,63}$'
                            AND jsonb_typeof(e.value) = 'string'
                            AND length(e.value #>> '{}') <= max_label
                            AND e.o <= max_keys, false)
        UNION
        SELECT j.i, j.k FROM j, jsonb_each(CASE WHEN jsonb_typeof(job -> 'replacements') = 'object'
                                                THEN job -> 'replacements' END) e
         WHERE NOT coalesce(e.key <> '' AND jsonb_typeof(e.value) = 'string', false)
        UNION
        -- replacements need a template to be used in
        SELECT j.i, j.k FROM j
         WHERE job ? 'replacements' AND job -> 'template' IS DISTINCT FROM 'true'
           AND NOT EXISTS (SELECT FROM f WHERE f.i = j.i AND f.k = j.k
                              AND (f.file -> 'template' = 'true'
                                   OR NOT f.file ? 'template' AND f.file ? 'replacements'))
        UNION
        SELECT f.i, f.k FROM f, lim WHERE NOT coalesce(
               jsonb_typeof(file) = 'object'
           AND file - ARRAY['path', 'content', 'mode', 'template', 'replacements'] = '{}'
           AND jsonb_typeof(file -> 'path') = 'string'
           AND octet_length(file ->> 'path') BETWEEN 1 AND 1024
           AND file ->> 'path' ~ '^[^/\x01-\x1f\x7f]+(/[^/\x01-\x1f\x7f]+)*$'
           AND file ->> 'path' !~ '(^|/)\.\.?(/|$)'
           AND jsonb_typeof(file -> 'content') = 'string'
           AND octet_length(file ->> 'content') <= max_file
           AND (NOT file ? 'mode' OR jsonb_typeof(file -> 'mode') = 'string'
                                     AND file ->> 'mode' ~ '^0?[0-7]{3}$')
           AND (NOT file ? 'template' OR jsonb_typeof(file -> 'template') = 'boolean')
           AND (NOT file ? 'replacements' OR file -> 'template' IS DISTINCT FROM 'false'
                                             AND jsonb_typeof(file -> 'replacements') = 'object'),
               false)
        UNION
        SELECT f.i, f.k FROM f, jsonb_each(CASE WHEN jsonb_typeof(file -> 'replacements') = 'object'
                                                THEN file -> 'replacements' END) e
         WHERE NOT coalesce(e.key <> '' AND jsonb_typeof(e.value) = 'string', false)
        UNION
        -- two files of a job at one path, or one inside the other (well-formed paths)
        SELECT p.i, p.k FROM p GROUP BY p.i, p.k, p.path HAVING count(*) > 1
        UNION
        SELECT a.i, a.k
          FROM (SELECT p.i, p.k, array_to_string((string_to_array(p.path, '/'))[1:d], '/') AS dir
                  FROM p, generate_series(1, cardinality(string_to_array(p.path, '/')) - 1) d) a
          JOIN p b ON b.i = a.i AND b.k = a.k AND b.path = a.dir
        UNION
        SELECT dup_job_stage, dup_job WHERE dup_job IS NOT NULL),
    bad_stage AS (
        SELECT s.i FROM s WHERE NOT coalesce(
               jsonb_typeof(x) = 'object' AND x - ARRAY['name', 'jobs'] = '{}'
           AND (NOT x ? 'name' OR jsonb_typeof(x -> 'name') = 'string'
                                  AND length(x ->> 'name') BETWEEN 1 AND 200)
           AND jsonb_typeof(x -> 'jobs') = 'array' AND jsonb_array_length(x -> 'jobs') > 0, false)
        UNION
        SELECT dup_stage WHERE dup_stage IS NOT NULL)
    SELECT b.i, coalesce(array_agg(b.k ORDER BY b.k) FILTER (WHERE b.k IS NOT NULL), '{}')
      FROM (SELECT i, k FROM bad_job UNION ALL SELECT i, NULL FROM bad_stage) b
     GROUP BY b.i ORDER BY b.i;
END
$$;
COMMENT ON FUNCTION dispatch._joblist_suspects(jsonb, int, int, int) IS
    'The stages of joblist spec that the exact validators must look at, in order, each with '
    'the indexes of its jobs they must look at: all that one set-based query could not '
    'vouch for, and the duplicates found by _joblist_duplicates (dup_*: its result)';

CREATE FUNCTION dispatch._validate_stage(spec jsonb, path text, default_name text,
                                         duplicate boolean, duplicate_job int, jobs int[])
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i int;
    stage_name text := default_name;
    jobs_path text := dispatch._path(path, 'jobs');
BEGIN
    PERFORM dispatch._json_typed('object', spec, path, 'stage');
    PERFORM dispatch._check_keys(spec, ARRAY['name', 'jobs'], path, 'stage');
    IF spec ? 'name' THEN
        stage_name := dispatch._json_text(spec -> 'name', dispatch._path(path, 'name'),
                                          'stage name');
    END IF;
    IF duplicate THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'name'),
            format('duplicate stage name "%s"', stage_name));
    END IF;
    PERFORM dispatch._require_key(spec, 'jobs', path, 'stage');
    PERFORM dispatch._json_typed('array', spec -> 'jobs', jobs_path, 'jobs', 'stage has no jobs');
    FOREACH i IN ARRAY jobs LOOP
        PERFORM dispatch._validate_job(spec -> 'jobs' -> i, format('%s[%s]', jobs_path, i),
                                       i IS NOT DISTINCT FROM duplicate_job);
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_stage(jsonb, text, text, boolean, int, int[]) IS
    'Validates one stage spec at path (named default_name unless it says; duplicate: an '
    'earlier stage has its name; duplicate_job: the index of its first job whose name an '
    'earlier job has, or NULL) and those of its jobs listed in jobs (the others are vouched for)';

CREATE FUNCTION dispatch._validate_joblist(spec jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stages_path text := dispatch._path(path, 'stages');
    dup record;
    r record;
BEGIN
    PERFORM dispatch._json_typed('object', spec, path, 'joblist spec');
    PERFORM dispatch._check_keys(spec, ARRAY['name', 'stages', 'jobs', 'fail_fast', 'timeout'],
                                 path, 'joblist spec');
    PERFORM dispatch._require_key(spec, 'name', path, 'joblist spec');
    PERFORM dispatch._json_text(spec -> 'name', dispatch._path(path, 'name'), 'joblist name');
    IF spec ? 'fail_fast' THEN
        PERFORM dispatch._json_typed('boolean', spec -> 'fail_fast',
                                     dispatch._path(path, 'fail_fast'), 'fail_fast');
    END IF;
    IF spec ? 'timeout' THEN
        PERFORM dispatch._json_interval(spec -> 'timeout', dispatch._path(path, 'timeout'),
                                        'timeout');
    END IF;
    IF spec ? 'jobs' THEN
        PERFORM dispatch._validate_graph_joblist(spec, path);
        RETURN;
    END IF;
    -- Counted before any job is looked at, so that an oversized spec costs little (a
    -- stage has a job at least, so the jobs' limit bounds the stages too).
    IF jsonb_typeof(spec -> 'stages') = 'array' THEN
        PERFORM dispatch._check_count(jsonb_array_length(spec -> 'stages'),
            'dispatch.max_jobs_per_joblist', stages_path, 'the joblist', 'stages');
    END IF;
    PERFORM dispatch._check_count(
        (SELECT coalesce(sum(jsonb_array_length(x -> 'jobs')), 0)
           FROM jsonb_array_elements(CASE WHEN jsonb_typeof(spec -> 'stages') = 'array'
                                          THEN spec -> 'stages' ELSE '[]' END) x
          WHERE jsonb_typeof(x -> 'jobs') = 'array'),
        'dispatch.max_jobs_per_joblist', stages_path, 'the joblist', 'jobs');
    PERFORM dispatch._require_key(spec, 'stages', path, 'joblist spec');
    PERFORM dispatch._json_typed('array', spec -> 'stages', stages_path, 'stages',
                                 'joblist has no stages');
    dup := dispatch._joblist_duplicates(spec);
    FOR r IN SELECT * FROM dispatch._joblist_suspects(spec, dup.stage, dup.job_stage, dup.job) LOOP
        PERFORM dispatch._validate_stage(spec -> 'stages' -> r.stage,
                                         format('%s[%s]', stages_path, r.stage), 'stage' || r.stage,
                                         r.stage IS NOT DISTINCT FROM dup.stage,
                                         CASE WHEN r.stage = dup.job_stage THEN dup.job END, r.jobs);
    END LOOP;
    PERFORM dispatch._check_flow(spec, path);
    PERFORM dispatch._check_groups(spec) WHERE dispatch._spec_reserves(spec);
END
$$;
COMMENT ON FUNCTION dispatch._validate_joblist(jsonb, text) IS
    'Validates a whole joblist spec at path (empty: the top level); raises the first error '
    'found (the job count first)';

CREATE FUNCTION dispatch._spec_jobs(spec jsonb)
RETURNS TABLE (stage int, stage_name text, k int, job_path text, job jsonb)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((j.y ->> '_stage')::int, (s.o - 1)::int),
           coalesce(s.x ->> 'name', 'stage' || (s.o - 1)), (j.o - 1)::int,
           coalesce(j.y ->> '_path', format('stages[%s].jobs[%s]', s.o - 1, j.o - 1)), j.y
      FROM jsonb_array_elements(spec -> 'stages') WITH ORDINALITY AS s(x, o),
           jsonb_array_elements(s.x -> 'jobs') WITH ORDINALITY AS j(y, o)
     ORDER BY s.o, j.o
$$;
COMMENT ON FUNCTION dispatch._spec_jobs(jsonb) IS
    'The jobs of a validated joblist spec in stages form (_flow_stages) in order: stage '
    '(index and name), index in the stage, JSON path (a cell''s _path: its job''s) and spec';

-- No SET clause, so that it is inlined into its callers' queries (their search_path is safe).
CREATE FUNCTION dispatch._job_command(job jsonb, path text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN (job ->> 'template')::boolean
                THEN dispatch._render_template(job ->> 'command',
                         coalesce(job -> 'replacements', '{}'), path || '.replacements')
                ELSE job ->> 'command' END
$$;
COMMENT ON FUNCTION dispatch._job_command(jsonb, text) IS
    'The command of a validated job spec (at path), rendered when the job is a template';

CREATE FUNCTION dispatch._check_rendered_commands(spec jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    IF NOT spec @? '$.stages[*].jobs[*] ? (@.template == true)' THEN
        RETURN;
    END IF;
    SELECT u.job_path, c.cmd INTO bad
      FROM dispatch._spec_jobs(spec) u,
           LATERAL (SELECT dispatch._job_command(u.job, u.job_path) AS cmd) c
     WHERE (u.job ->> 'template')::boolean
       AND octet_length(c.cmd) > dispatch._setting_bytes('dispatch.max_file_size')
     ORDER BY u.stage, u.k LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._check_size(bad.cmd, 'dispatch.max_file_size',
                                     dispatch._path(bad.job_path, 'command'), 'rendered command');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_rendered_commands(jsonb) IS
    'Fails when the rendered command of a template job of validated spec is larger than '
    'dispatch.max_file_size allows (the first such job)';

-- The jobs of flat (what _flow_stages makes of a spec) inserted into joblist jl, whose
-- current stage is current: submit inserts them all, for_each the cells it makes.
-- Job ids follow the spec's order, which is the order the scheduler serves them in.
CREATE FUNCTION dispatch._insert_jobs(jl bigint, flat jsonb, current int) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    waiting text := dispatch._stage_reason(jl, current);
BEGIN
    INSERT INTO dispatch.jobs (joblist_id, stage, name, command, needs, constraints,
                               env, timeout, retries, reason, task, after, condition, held,
                               cell, parallel, for_each, group_name)
    SELECT jl, u.stage, u.job ->> 'name', dispatch._job_command(u.job, u.job_path),
           CASE WHEN coalesce(u.job -> 'needs', '{}') = '{}' THEN '{"cpu": 1}'
                ELSE u.job -> 'needs' END,
           coalesce(u.job -> 'constraints', '{}'), coalesce(u.job -> 'env', '{}'),
           CASE WHEN u.job ? 'timeout' THEN dispatch._interval_of(u.job -> 'timeout')
                ELSE nullif(current_setting('dispatch.default_time_limit'), '0')::interval
           END,
           coalesce((u.job ->> 'retries')::int, 0),
           CASE WHEN u.stage > current THEN waiting
                WHEN h.held IS NOT NULL THEN dispatch._held_reason(h.held, u.job)
                ELSE 'waiting for the scheduler' END,
           u.job ->> '_task',
           CASE WHEN u.job ? 'after' THEN ARRAY(SELECT jsonb_array_elements_text(u.job -> 'after')) END,
           coalesce(u.job ->> 'when', 'on_success'), h.held, u.job -> '_cell',
           (u.job ->> '_parallel')::int, u.job ->> 'for_each', dispatch._group_of(u.job)
      FROM dispatch._spec_jobs(flat) u,
           LATERAL (SELECT CASE WHEN u.job ? 'after' THEN 'after'
                                WHEN u.job ? 'group' THEN 'group'
                                WHEN (u.job ->> '_slot')::boolean THEN 'slot' END AS held) h
     ORDER BY u.stage, u.k;
    IF dispatch._spec_has_files(flat) THEN
        INSERT INTO dispatch.job_files (job_id, path, mode, template, content)
        SELECT j.job_id, f.path, f.mode, f.template, f.content
          FROM dispatch._spec_files(flat) f
          JOIN dispatch.jobs j ON j.joblist_id = jl AND j.name = f.job_name;
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._insert_jobs(bigint, jsonb, int) IS
    'Inserts the jobs and files of flat (stages form, validated and expanded) into joblist jl '
    'at current stage current';

CREATE FUNCTION dispatch._submit(spec jsonb, submitter name) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    jl bigint;
    flat jsonb;
    limit_ interval;
BEGIN
    -- Everything is checked before anything is stored: the spec, then what rendering
    -- makes of the commands and of the files.
    PERFORM dispatch._validate_joblist(spec, '');
    flat := dispatch._flow_stages(spec);
    PERFORM dispatch._check_rendered_commands(flat);
    PERFORM dispatch._check_rendered_files(flat);
    limit_ := dispatch._interval_of(spec -> 'timeout');
    INSERT INTO dispatch.joblists (name, fail_fast, stage_count, spec, submitted_by, timeout,
                                   deadline)
    VALUES (spec ->> 'name', coalesce((spec ->> 'fail_fast')::boolean, true),
            jsonb_array_length(flat -> 'stages'), spec, submitter, limit_, now() + limit_)
    RETURNING joblist_id INTO jl;
    INSERT INTO dispatch.stages (joblist_id, stage, name)
    SELECT jl, (o - 1)::int, coalesce(x ->> 'name', 'stage' || (o - 1))
      FROM jsonb_array_elements(flat -> 'stages') WITH ORDINALITY AS s(x, o);
    PERFORM dispatch._insert_jobs(jl, flat, 0);
    PERFORM dispatch._add_groups(jl) WHERE flat @? '$.stages[*].jobs[*].group';
    PERFORM dispatch._add_reservations(jl, spec) WHERE dispatch._spec_reserves(spec);
    PERFORM dispatch.wake_scheduler();
    RETURN jl;
END
$$;
COMMENT ON FUNCTION dispatch._submit(jsonb, name) IS
    'Validates spec and queues it as a joblist of submitter; returns its id';

CREATE FUNCTION dispatch.submit_joblist(spec jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._submit(spec, dispatch.current_caller())
$$;
COMMENT ON FUNCTION dispatch.submit_joblist(jsonb) IS
    'Validate a joblist spec and queue it; returns the joblist id';
