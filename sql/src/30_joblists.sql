------------------------------------------------------------------------------
-- Joblists and jobs: tables, spec validation and submission
------------------------------------------------------------------------------
--
-- A joblist is an ordered list of stages whose jobs run in parallel.  submit_joblist()
-- validates the whole spec first (the first error found is raised and nothing is
-- stored), then inserts the joblist, its stages and jobs, and the jobs' files
-- (32_files.sql).  allocations records which resource units each job holds.

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

CREATE FUNCTION dispatch._validate_spec(spec jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s jsonb;
    j jsonb;
    n record;
    si int;
    ji int;
    sp text;
    jp text;
    stage_names text[] := '{}';
    job_names text[] := '{}';
    nm text;
BEGIN
    IF spec IS NULL OR jsonb_typeof(spec) <> 'object' THEN
        PERFORM dispatch._spec_error('the top level', 'joblist spec must be a JSON object');
    END IF;
    PERFORM dispatch._check_keys(spec, ARRAY['name', 'stages', 'fail_fast'], '', 'joblist spec');
    IF NOT spec ? 'name' THEN
        PERFORM dispatch._spec_error('the top level', 'joblist spec has no "name"');
    END IF;
    PERFORM dispatch._json_text(spec -> 'name', 'name', 'joblist name');
    IF spec ? 'fail_fast' AND jsonb_typeof(spec -> 'fail_fast') <> 'boolean' THEN
        PERFORM dispatch._spec_error('fail_fast', 'fail_fast must be a boolean');
    END IF;
    IF NOT spec ? 'stages' THEN
        PERFORM dispatch._spec_error('the top level', 'joblist spec has no "stages"');
    END IF;
    IF jsonb_typeof(spec -> 'stages') <> 'array' THEN
        PERFORM dispatch._spec_error('stages', 'stages must be a JSON array');
    END IF;
    IF jsonb_array_length(spec -> 'stages') = 0 THEN
        PERFORM dispatch._spec_error('stages', 'joblist has no stages');
    END IF;

    FOR s, si IN SELECT e, o - 1 FROM jsonb_array_elements(spec -> 'stages')
                 WITH ORDINALITY AS x(e, o) LOOP
        sp := format('stages[%s]', si);
        IF jsonb_typeof(s) <> 'object' THEN
            PERFORM dispatch._spec_error(sp, 'stage must be a JSON object');
        END IF;
        PERFORM dispatch._check_keys(s, ARRAY['name', 'jobs'], sp, 'stage');
        nm := 'stage' || si;
        IF s ? 'name' THEN
            nm := dispatch._json_text(s -> 'name', sp || '.name', 'stage name');
        END IF;
        IF nm = ANY (stage_names) THEN
            PERFORM dispatch._spec_error(sp || '.name', format('duplicate stage name "%s"', nm));
        END IF;
        stage_names := stage_names || nm;
        IF NOT s ? 'jobs' THEN
            PERFORM dispatch._spec_error(sp, 'stage has no "jobs"');
        END IF;
        IF jsonb_typeof(s -> 'jobs') <> 'array' THEN
            PERFORM dispatch._spec_error(sp || '.jobs', 'jobs must be a JSON array');
        END IF;
        IF jsonb_array_length(s -> 'jobs') = 0 THEN
            PERFORM dispatch._spec_error(sp || '.jobs', 'stage has no jobs');
        END IF;

        FOR j, ji IN SELECT e, o - 1 FROM jsonb_array_elements(s -> 'jobs')
                     WITH ORDINALITY AS x(e, o) LOOP
            jp := format('%s.jobs[%s]', sp, ji);
            IF jsonb_typeof(j) <> 'object' THEN
                PERFORM dispatch._spec_error(jp, 'job must be a JSON object');
            END IF;
            PERFORM dispatch._check_keys(j, ARRAY['name', 'command', 'needs', 'constraints',
                'timeout', 'retries', 'env', 'files', 'replacements', 'template'], jp, 'job');
            IF NOT j ? 'name' THEN
                PERFORM dispatch._spec_error(jp, 'job has no "name"');
            END IF;
            nm := dispatch._json_text(j -> 'name', jp || '.name', 'job name');
            IF nm = ANY (job_names) THEN
                PERFORM dispatch._spec_error(jp || '.name', format('duplicate job name "%s"', nm),
                    'Job names must be unique within a joblist.');
            END IF;
            job_names := job_names || nm;
            IF NOT j ? 'command' THEN
                PERFORM dispatch._spec_error(jp, 'job has no "command"');
            END IF;
            PERFORM dispatch._check_size(dispatch._json_text(j -> 'command', jp || '.command',
                'command', 1073741823), 'dispatch.max_file_size', jp || '.command', 'command');
            IF j ? 'needs' THEN
                IF jsonb_typeof(j -> 'needs') <> 'object' THEN
                    PERFORM dispatch._spec_error(jp || '.needs', 'needs must be a JSON object');
                END IF;
                FOR n IN SELECT * FROM jsonb_each(j -> 'needs') LOOP
                    PERFORM dispatch._check_resource_type(n.key,
                        dispatch._path(jp || '.needs', n.key));
                    PERFORM dispatch._json_int(n.value, 1, 1000000000,
                        dispatch._path(jp || '.needs', n.key),
                        format('count of "%s"', n.key));
                END LOOP;
            END IF;
            IF j ? 'constraints' THEN
                PERFORM dispatch._json_string_map(j -> 'constraints', '^[A-Za-z0-9_.-]{1,63}$',
                    jp || '.constraints', 'constraints',
                    'A constraint key is 1 to 63 letters, digits, "_", "." or "-".');
            END IF;
            IF j ? 'env' THEN
                PERFORM dispatch._json_string_map(j -> 'env', '^(?!DISPATCH_)[A-Za-z_][A-Za-z0-9_]*$',
                    jp || '.env', 'env',
                    'An environment variable name is a letter or "_" followed by letters, digits or "_", and must not start with DISPATCH_.');
            END IF;
            IF j ? 'timeout' THEN
                PERFORM dispatch._json_interval(j -> 'timeout', jp || '.timeout', 'timeout');
            END IF;
            IF j ? 'retries' THEN
                PERFORM dispatch._json_int(j -> 'retries', 0, 100, jp || '.retries', 'retries');
            END IF;
            PERFORM dispatch._validate_files(j, jp);
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_spec(jsonb) IS
    'Validates a whole joblist spec; raises the first error found, returns nothing';

CREATE FUNCTION dispatch._submit(spec jsonb, submitter name) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jl bigint;
    job bigint;
    s jsonb;
    j jsonb;
    si int;
    ji int;
    jp text;
    cmd text;
BEGIN
    PERFORM dispatch._validate_spec(spec);

    INSERT INTO dispatch.joblists (name, fail_fast, stage_count, spec, submitted_by)
    VALUES (spec ->> 'name', coalesce((spec ->> 'fail_fast')::boolean, true),
            jsonb_array_length(spec -> 'stages'), spec, submitter)
    RETURNING joblist_id INTO jl;

    FOR s, si IN SELECT e, o - 1 FROM jsonb_array_elements(spec -> 'stages')
                 WITH ORDINALITY AS x(e, o) LOOP
        INSERT INTO dispatch.stages (joblist_id, stage, name)
        VALUES (jl, si, coalesce(s ->> 'name', 'stage' || si));
        FOR j, ji IN SELECT e, o - 1 FROM jsonb_array_elements(s -> 'jobs')
                     WITH ORDINALITY AS x(e, o) LOOP
            jp := format('stages[%s].jobs[%s]', si, ji);
            INSERT INTO dispatch.jobs (joblist_id, stage, name, command, needs, constraints,
                                       env, timeout, retries, reason)
            VALUES (jl, si, j ->> 'name',
                    CASE WHEN (j ->> 'template')::boolean
                         THEN dispatch._render_template(j ->> 'command',
                                  coalesce(j -> 'replacements', '{}'), jp || '.replacements')
                         ELSE j ->> 'command' END,
                    CASE WHEN coalesce(j -> 'needs', '{}') = '{}' THEN '{"cpu": 1}'
                         ELSE j -> 'needs' END,
                    coalesce(j -> 'constraints', '{}'), coalesce(j -> 'env', '{}'),
                    CASE WHEN j ? 'timeout'
                         THEN dispatch._json_interval(j -> 'timeout', '', 'timeout') END,
                    coalesce((j ->> 'retries')::int, 0),
                    CASE WHEN si = 0 THEN 'waiting for the scheduler'
                         ELSE dispatch._stage_reason(jl, 0) END)
            RETURNING job_id, command INTO job, cmd;
            IF (j ->> 'template')::boolean THEN
                PERFORM dispatch._check_size(cmd, 'dispatch.max_file_size', jp || '.command',
                                             'rendered command');
            END IF;
            PERFORM dispatch._store_files(job, j, jp);
        END LOOP;
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
