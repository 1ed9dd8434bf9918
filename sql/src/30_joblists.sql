------------------------------------------------------------------------------
-- Joblists and jobs: tables, spec validation and submission
------------------------------------------------------------------------------
--
-- A joblist is an ordered list of stages whose jobs run in parallel.  submit_joblist()
-- validates the whole spec first (the first error found is raised and nothing is
-- stored), then inserts the joblist, its stages and jobs, and the jobs' files
-- (32_files.sql).  Validation reads top-down, one function a level (joblist, stage,
-- job, needs, files), each given the JSON path of its value: a goal validates its
-- joblist or job with its own path (70_goals.sql).  The joblist level returns the
-- jobs it checked, so _submit walks the spec once, and inserts them with one
-- statement a table.  Everything is linear in the size of the spec: the job count is
-- checked against dispatch.max_jobs_per_joblist first, and duplicate names are found
-- in one pass (_joblist_duplicates) rather than by comparing each name with those
-- before it.  allocations records which resource units each job holds.

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
    CHECK (current_stage >= 0 AND current_stage < stage_count),
    CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX joblists_name_idx ON dispatch.joblists (name);
CREATE INDEX joblists_active_idx ON dispatch.joblists (joblist_id)
    WHERE state IN ('queued', 'running');
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
                                     'failed', 'cancelled', 'lost')),
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
    FOREIGN KEY (joblist_id, stage) REFERENCES dispatch.stages ON DELETE CASCADE,
    UNIQUE (joblist_id, name),
    CHECK (state NOT IN ('assigned', 'running') OR node IS NOT NULL),
    CHECK (state <> 'pending' OR node IS NULL),
    CHECK ((state IN ('succeeded', 'failed', 'cancelled', 'lost')) = (finished_at IS NOT NULL))
);
CREATE INDEX jobs_pending_idx ON dispatch.jobs (joblist_id, job_id) WHERE state = 'pending';
CREATE INDEX jobs_stage_idx ON dispatch.jobs (joblist_id, stage);
CREATE INDEX jobs_active_node_idx ON dispatch.jobs (node) WHERE state IN ('assigned', 'running');
COMMENT ON TABLE dispatch.jobs IS 'Jobs; attempt grows each time a job is retried';

CREATE TABLE dispatch.allocations (
    resource_id     bigint NOT NULL REFERENCES dispatch.resources,
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    amount          bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (resource_id, job_id)
);
CREATE INDEX allocations_job_idx ON dispatch.allocations (job_id);
COMMENT ON TABLE dispatch.allocations IS 'Resources held by assigned and running jobs';

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

CREATE FUNCTION dispatch._validate_needs(needs jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record;
BEGIN
    FOR n IN SELECT * FROM jsonb_each(dispatch._json_typed('object', needs, path, 'needs')) LOOP
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

-- A plain job (no constraints, timeout, files or templates, every value obviously
-- valid) is vouched for by one expression, set-based; every other job, and every job
-- this does not vouch for, goes through _validate_job, which is exact and names the
-- error.  So this may be stricter than _validate_job, never looser.  It has no SET
-- clause so that it is inlined into its caller's query, whose search_path is safe.
CREATE FUNCTION dispatch._job_plainly_valid(job jsonb, max_command bigint, max_env bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_typeof(job) = 'object'
       AND job - ARRAY['name', 'command', 'needs', 'env', 'retries'] = '{}'
       AND jsonb_typeof(job -> 'name') = 'string'
       AND length(job ->> 'name') BETWEEN 1 AND 200
       AND jsonb_typeof(job -> 'command') = 'string' AND job ->> 'command' <> ''
       AND octet_length(job ->> 'command') <= max_command
       AND (NOT job ? 'needs'
            OR jsonb_typeof(job -> 'needs') = 'object'
               AND (SELECT coalesce(bool_and(
                               n.key ~ dispatch._name_pattern('resource type')
                               AND n.value::text ~ '^([1-9][0-9]{0,8}|1000000000)$'), true)
                      FROM jsonb_each(job -> 'needs') n))
       AND (NOT job ? 'env'
            OR jsonb_typeof(job -> 'env') = 'object'
               AND octet_length((job -> 'env')::text) <= max_env
               AND (SELECT coalesce(bool_and(
                               e.key ~ dispatch._env_name_pattern()
                               AND jsonb_typeof(e.value) = 'string'), true)
                      FROM jsonb_each(job -> 'env') e))
       AND (NOT job ? 'retries' OR (job -> 'retries')::text ~ '^(100|[1-9]?[0-9])$'),
           false)
$$;
COMMENT ON FUNCTION dispatch._job_plainly_valid(jsonb, bigint, bigint) IS
    'True when job is a plain job spec that _validate_job would accept (max_command, '
    'max_env: the size limits in bytes); false says nothing';

CREATE FUNCTION dispatch._validate_job(job jsonb, path text, duplicate boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text;
BEGIN
    PERFORM dispatch._json_typed('object', job, path, 'job');
    PERFORM dispatch._check_keys(job, ARRAY['name', 'command', 'needs', 'constraints',
        'timeout', 'retries', 'env', 'files', 'replacements', 'template'], path, 'job');
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

CREATE TYPE dispatch._spec_job AS (stage int, stage_name text, job_path text, job jsonb);
COMMENT ON TYPE dispatch._spec_job IS
    'One validated job of a joblist spec: its stage (index and name), JSON path and spec';

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

CREATE FUNCTION dispatch._validate_stage(spec jsonb, path text, default_name text,
                                         duplicate boolean, duplicate_job int)
RETURNS TABLE (stage_name text, job_path text, job jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i int;
    plain boolean;
    max_command bigint := dispatch._setting_bytes('dispatch.max_file_size');
    max_env bigint := dispatch._setting_bytes('dispatch.max_env_size');
BEGIN
    PERFORM dispatch._json_typed('object', spec, path, 'stage');
    PERFORM dispatch._check_keys(spec, ARRAY['name', 'jobs'], path, 'stage');
    stage_name := default_name;
    IF spec ? 'name' THEN
        stage_name := dispatch._json_text(spec -> 'name', dispatch._path(path, 'name'),
                                          'stage name');
    END IF;
    IF duplicate THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'name'),
            format('duplicate stage name "%s"', stage_name));
    END IF;
    FOR job, i, job_path, plain IN
        SELECT x.*, dispatch._job_plainly_valid(x.item, max_command, max_env)
          FROM dispatch._json_items(spec, 'jobs', path, 'stage', true, 'stage has no jobs') x LOOP
        IF plain IS NOT TRUE OR i IS NOT DISTINCT FROM duplicate_job THEN
            PERFORM dispatch._validate_job(job, job_path, i IS NOT DISTINCT FROM duplicate_job);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_stage(jsonb, text, text, boolean, int) IS
    'Validates one stage spec at path (named default_name unless it says; duplicate: an '
    'earlier stage has its name; duplicate_job: the index of its first job whose name an '
    'earlier job has, or NULL); returns its jobs, one row each';

CREATE FUNCTION dispatch._validate_joblist(spec jsonb, path text)
RETURNS SETOF dispatch._spec_job
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s jsonb;
    sp text;
    r dispatch._spec_job;
    dup record;
BEGIN
    PERFORM dispatch._json_typed('object', spec, path, 'joblist spec');
    PERFORM dispatch._check_keys(spec, ARRAY['name', 'stages', 'fail_fast'], path, 'joblist spec');
    PERFORM dispatch._require_key(spec, 'name', path, 'joblist spec');
    PERFORM dispatch._json_text(spec -> 'name', dispatch._path(path, 'name'), 'joblist name');
    IF spec ? 'fail_fast' THEN
        PERFORM dispatch._json_typed('boolean', spec -> 'fail_fast',
                                     dispatch._path(path, 'fail_fast'), 'fail_fast');
    END IF;
    -- Counted before any job is looked at, so that an oversized spec costs little (a
    -- stage has a job at least, so the jobs' limit bounds the stages too).
    IF jsonb_typeof(spec -> 'stages') = 'array' THEN
        PERFORM dispatch._check_count(jsonb_array_length(spec -> 'stages'),
            'dispatch.max_jobs_per_joblist', dispatch._path(path, 'stages'), 'the joblist',
            'stages');
    END IF;
    PERFORM dispatch._check_count(
        (SELECT coalesce(sum(jsonb_array_length(x -> 'jobs')), 0)
           FROM jsonb_array_elements(CASE WHEN jsonb_typeof(spec -> 'stages') = 'array'
                                          THEN spec -> 'stages' ELSE '[]' END) x
          WHERE jsonb_typeof(x -> 'jobs') = 'array'),
        'dispatch.max_jobs_per_joblist', dispatch._path(path, 'stages'), 'the joblist', 'jobs');
    dup := dispatch._joblist_duplicates(spec);
    FOR s, r.stage, sp IN SELECT *
                            FROM dispatch._json_items(spec, 'stages', path, 'joblist spec', true,
                                                      'joblist has no stages') LOOP
        FOR r.stage_name, r.job_path, r.job IN
            SELECT * FROM dispatch._validate_stage(s, sp, 'stage' || r.stage,
                                                   r.stage = dup.stage,
                                                   CASE WHEN r.stage = dup.job_stage
                                                        THEN dup.job END) LOOP
            RETURN NEXT r;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_joblist(jsonb, text) IS
    'Validates a whole joblist spec at path (empty: the top level) and returns its jobs in '
    'order, one row each; raises the first error found (the job count first)';

CREATE FUNCTION dispatch._job_command(job jsonb, path text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cmd text := dispatch._render_template(job ->> 'command',
                    coalesce(job -> 'replacements', '{}'), dispatch._path(path, 'replacements'));
BEGIN
    PERFORM dispatch._check_size(cmd, 'dispatch.max_file_size', dispatch._path(path, 'command'),
                                 'rendered command');
    RETURN cmd;
END
$$;
COMMENT ON FUNCTION dispatch._job_command(jsonb, text) IS
    'The rendered command of a validated job spec (at path) whose command is a template';

CREATE FUNCTION dispatch._submit(spec jsonb, submitter name) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- A set-returning PL/pgSQL function runs to its end before its first row is read:
    -- the whole spec is valid before anything is inserted.
    v dispatch._spec_job[] := ARRAY(SELECT x FROM dispatch._validate_joblist(spec, '') x);
    jl bigint;
    waiting text;
    r record;
BEGIN
    INSERT INTO dispatch.joblists (name, fail_fast, stage_count, spec, submitted_by)
    VALUES (spec ->> 'name', coalesce((spec ->> 'fail_fast')::boolean, true),
            jsonb_array_length(spec -> 'stages'), spec, submitter)
    RETURNING joblist_id INTO jl;
    INSERT INTO dispatch.stages (joblist_id, stage, name)
    SELECT DISTINCT ON (u.stage) jl, u.stage, u.stage_name FROM unnest(v) u ORDER BY u.stage;
    waiting := dispatch._stage_reason(jl, 0);
    -- Job ids follow the spec's order, which is the order the scheduler serves them in.
    INSERT INTO dispatch.jobs (joblist_id, stage, name, command, needs, constraints,
                               env, timeout, retries, reason)
    SELECT jl, u.stage, u.job ->> 'name',
           CASE WHEN (u.job ->> 'template')::boolean THEN dispatch._job_command(u.job, u.job_path)
                ELSE u.job ->> 'command' END,
           CASE WHEN coalesce(u.job -> 'needs', '{}') = '{}' THEN '{"cpu": 1}'
                ELSE u.job -> 'needs' END,
           coalesce(u.job -> 'constraints', '{}'), coalesce(u.job -> 'env', '{}'),
           CASE WHEN u.job ? 'timeout'
                THEN dispatch._json_interval(u.job -> 'timeout', '', 'timeout')
                ELSE nullif(current_setting('dispatch.default_time_limit'), '0')::interval
           END,
           coalesce((u.job ->> 'retries')::int, 0),
           CASE WHEN u.stage = 0 THEN 'waiting for the scheduler' ELSE waiting END
      FROM unnest(v) WITH ORDINALITY AS u(stage, stage_name, job_path, job, ord)
     ORDER BY u.ord;
    FOR r IN SELECT j.job_id, u.job, u.job_path
               FROM unnest(v) WITH ORDINALITY AS u(stage, stage_name, job_path, job, ord)
               JOIN dispatch.jobs j ON j.joblist_id = jl AND j.name = u.job ->> 'name'
              WHERE u.job ? 'files'
              ORDER BY u.ord LOOP
        PERFORM dispatch._store_files(r.job_id, r.job, r.job_path);
    END LOOP;

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
