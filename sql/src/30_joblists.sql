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
-- jobs it checked, so _submit walks the spec once.  allocations records which
-- resource units each job holds.

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

CREATE FUNCTION dispatch._validate_job(job jsonb, path text, taken text[] DEFAULT '{}')
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text;
BEGIN
    PERFORM dispatch._json_typed('object', job, path, 'job');
    PERFORM dispatch._check_keys(job, ARRAY['name', 'command', 'needs', 'constraints',
        'timeout', 'retries', 'env', 'files', 'replacements', 'template'], path, 'job');
    PERFORM dispatch._require_key(job, 'name', path, 'job');
    name := dispatch._json_text(job -> 'name', dispatch._path(path, 'name'), 'job name');
    IF name = ANY (taken) THEN
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
        PERFORM dispatch._json_string_map(job -> 'constraints', '^[A-Za-z0-9_.-]{1,63}$',
            dispatch._path(path, 'constraints'), 'constraints',
            'A constraint key is 1 to 63 letters, digits, "_", "." or "-".');
    END IF;
    IF job ? 'env' THEN
        PERFORM dispatch._json_string_map(job -> 'env', '^(?!DISPATCH_)[A-Za-z_][A-Za-z0-9_]*$',
            dispatch._path(path, 'env'), 'env',
            'An environment variable name is a letter or "_" followed by letters, digits or "_", and must not start with DISPATCH_.');
    END IF;
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
COMMENT ON FUNCTION dispatch._validate_job(jsonb, text, text[]) IS
    'Validates one job spec at path (taken: the names already used in its joblist); '
    'returns its name';

CREATE FUNCTION dispatch._validate_stage(spec jsonb, path text, default_name text,
                                         stage_names text[], job_names text[])
RETURNS TABLE (stage_name text, job_path text, job jsonb, job_name text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM dispatch._json_typed('object', spec, path, 'stage');
    PERFORM dispatch._check_keys(spec, ARRAY['name', 'jobs'], path, 'stage');
    stage_name := default_name;
    IF spec ? 'name' THEN
        stage_name := dispatch._json_text(spec -> 'name', dispatch._path(path, 'name'),
                                          'stage name');
    END IF;
    IF stage_name = ANY (stage_names) THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'name'),
            format('duplicate stage name "%s"', stage_name));
    END IF;
    FOR job, job_path IN SELECT item, item_path
                           FROM dispatch._json_items(spec, 'jobs', path, 'stage', true,
                                                     'stage has no jobs') LOOP
        job_name := dispatch._validate_job(job, job_path, job_names);
        job_names := job_names || job_name;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_stage(jsonb, text, text, text[], text[]) IS
    'Validates one stage spec at path (named default_name unless it says; stage_names and '
    'job_names: those taken by the stages before it); returns its jobs, one row each';

CREATE FUNCTION dispatch._validate_joblist(spec jsonb, path text)
RETURNS TABLE (stage int, stage_name text, job_path text, job jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s jsonb;
    sp text;
    stage_names text[] := '{}';
    job_names text[] := '{}';
    job_name text;
BEGIN
    PERFORM dispatch._json_typed('object', spec, path, 'joblist spec');
    PERFORM dispatch._check_keys(spec, ARRAY['name', 'stages', 'fail_fast'], path, 'joblist spec');
    PERFORM dispatch._require_key(spec, 'name', path, 'joblist spec');
    PERFORM dispatch._json_text(spec -> 'name', dispatch._path(path, 'name'), 'joblist name');
    IF spec ? 'fail_fast' THEN
        PERFORM dispatch._json_typed('boolean', spec -> 'fail_fast',
                                     dispatch._path(path, 'fail_fast'), 'fail_fast');
    END IF;
    FOR s, stage, sp IN SELECT *
                          FROM dispatch._json_items(spec, 'stages', path, 'joblist spec', true,
                                                    'joblist has no stages') LOOP
        FOR stage_name, job_path, job, job_name IN
            SELECT * FROM dispatch._validate_stage(s, sp, 'stage' || stage, stage_names,
                                                   job_names) LOOP
            job_names := job_names || job_name;
            RETURN NEXT;
        END LOOP;
        stage_names := stage_names || stage_name;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_joblist(jsonb, text) IS
    'Validates a whole joblist spec at path (empty: the top level) and returns its jobs in '
    'order, one row each; raises the first error found';

CREATE FUNCTION dispatch._submit(spec jsonb, submitter name) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jl bigint;
    r record;
    last_stage int := -1;
    job bigint;
    cmd text;
BEGIN
    -- A set-returning PL/pgSQL function runs to its end before its first row is read:
    -- the whole spec is valid before anything is inserted.
    FOR r IN SELECT * FROM dispatch._validate_joblist(spec, '') LOOP
        IF jl IS NULL THEN
            INSERT INTO dispatch.joblists (name, fail_fast, stage_count, spec, submitted_by)
            VALUES (spec ->> 'name', coalesce((spec ->> 'fail_fast')::boolean, true),
                    jsonb_array_length(spec -> 'stages'), spec, submitter)
            RETURNING joblist_id INTO jl;
        END IF;
        IF r.stage > last_stage THEN
            INSERT INTO dispatch.stages (joblist_id, stage, name)
            VALUES (jl, r.stage, r.stage_name);
            last_stage := r.stage;
        END IF;
        INSERT INTO dispatch.jobs (joblist_id, stage, name, command, needs, constraints,
                                   env, timeout, retries, reason)
        VALUES (jl, r.stage, r.job ->> 'name',
                CASE WHEN (r.job ->> 'template')::boolean
                     THEN dispatch._render_template(r.job ->> 'command',
                              coalesce(r.job -> 'replacements', '{}'),
                              dispatch._path(r.job_path, 'replacements'))
                     ELSE r.job ->> 'command' END,
                CASE WHEN coalesce(r.job -> 'needs', '{}') = '{}' THEN '{"cpu": 1}'
                     ELSE r.job -> 'needs' END,
                coalesce(r.job -> 'constraints', '{}'), coalesce(r.job -> 'env', '{}'),
                CASE WHEN r.job ? 'timeout'
                     THEN dispatch._json_interval(r.job -> 'timeout', '', 'timeout')
                     ELSE nullif(current_setting('dispatch.default_time_limit'), '0')::interval
                END,
                coalesce((r.job ->> 'retries')::int, 0),
                CASE WHEN r.stage = 0 THEN 'waiting for the scheduler'
                     ELSE dispatch._stage_reason(jl, 0) END)
        RETURNING job_id, command INTO job, cmd;
        IF (r.job ->> 'template')::boolean THEN
            PERFORM dispatch._check_size(cmd, 'dispatch.max_file_size',
                                         dispatch._path(r.job_path, 'command'), 'rendered command');
        END IF;
        PERFORM dispatch._store_files(job, r.job, r.job_path);
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
