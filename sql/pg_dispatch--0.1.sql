/*
 * pg_dispatch 0.1: schema, SQL API, agent protocol and scheduler helpers.
 *
 * The database is the single source of truth.  Users call submit/cancel functions,
 * agents call the agent_* functions for their own node, and the scheduler background
 * worker runs _housekeeping(), reads the _sched_* views, places jobs with its C
 * allocator and writes the result back with _assign()/_set_reasons().  Every function
 * that changes what the scheduler should look at calls wake_scheduler(), which sets
 * the worker's latch when the transaction commits.  See docs/internals.md.
 */

\echo Use "CREATE EXTENSION pg_dispatch" to load this file. \quit

-- Roles are cluster-wide: create them only when a previous database has not.
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['dispatch_admin', 'dispatch_user', 'dispatch_agent'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    IF NOT pg_catalog.pg_has_role('dispatch_admin', 'dispatch_user', 'MEMBER') THEN
        GRANT dispatch_user, dispatch_agent TO dispatch_admin;
    END IF;
END
$roles$;

------------------------------------------------------------------------------
-- C functions
------------------------------------------------------------------------------

CREATE FUNCTION dispatch.wake_scheduler() RETURNS void
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'wake_scheduler';
COMMENT ON FUNCTION dispatch.wake_scheduler() IS
    'Wake the scheduler worker when the current transaction commits';

CREATE FUNCTION dispatch.current_caller() RETURNS name
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'current_caller';
COMMENT ON FUNCTION dispatch.current_caller() IS
    'The role that called into pg_dispatch (outside any SECURITY DEFINER function)';

CREATE FUNCTION dispatch.scheduler_stats(OUT pid int, OUT cycles bigint,
        OUT jobs_assigned bigint, OUT last_cycle_at timestamptz,
        OUT last_cycle_ms double precision)
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'scheduler_stats';
COMMENT ON FUNCTION dispatch.scheduler_stats() IS
    'Counters of the scheduler worker on this server (pid is NULL when none runs)';

CREATE FUNCTION dispatch.render_template(template text, replacements jsonb) RETURNS text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'render_template';
COMMENT ON FUNCTION dispatch.render_template(text, jsonb) IS
    'Replace every pattern (key) of replacements by its value in one left-to-right pass; the longest pattern wins';

CREATE FUNCTION dispatch._render_template(template text, replacements jsonb, path text)
    RETURNS text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'render_template';

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE dispatch.nodes (
    node            text PRIMARY KEY
                    CHECK (node ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$'),
    state           text NOT NULL DEFAULT 'online'
                    CHECK (state IN ('online', 'offline', 'draining')),
    owner           name NOT NULL,
    hostname        text,
    arch            text,
    os              text,
    cpus            int,
    memory_mb       bigint,
    labels          jsonb NOT NULL DEFAULT '{}'
                    CHECK (pg_catalog.jsonb_typeof(labels) = 'object'),
    agent_version   text,
    agent_pid       int,
    registered_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_heartbeat  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    state_changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.nodes IS 'Worker machines, registered by their agents';

CREATE TABLE dispatch.resources (
    resource_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type            text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,62}$'),
    ident           text NOT NULL
                    CHECK (ident ~ '^[^\s,]{1,200}$'),
    node            text REFERENCES dispatch.nodes ON DELETE CASCADE,
    capacity        bigint NOT NULL DEFAULT 1 CHECK (capacity > 0),
    is_amount       boolean NOT NULL DEFAULT false,
    from_agent      boolean NOT NULL DEFAULT false,
    added_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE NULLS NOT DISTINCT (type, ident, node),
    CHECK (is_amount OR capacity = 1)
);
COMMENT ON TABLE dispatch.resources IS
    'Resource instances: node-local (node set) or cluster-wide pools (node NULL); amount resources have a capacity';

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

CREATE TABLE dispatch.job_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    attempt         int NOT NULL,
    state           text NOT NULL,
    node            text,
    detail          text,
    at              timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX job_events_job_idx ON dispatch.job_events (job_id);
COMMENT ON TABLE dispatch.job_events IS 'History of every job state change';

CREATE TABLE dispatch.job_output (
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    attempt         int NOT NULL,
    stream          text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    "offset"        bigint NOT NULL CHECK ("offset" >= 0),
    data            text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (job_id, attempt, stream, "offset")
);
COMMENT ON TABLE dispatch.job_output IS
    'Job output in chunks at byte offsets, stored while the job runs';

CREATE TABLE dispatch.job_files (
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    path            text NOT NULL,
    mode            text NOT NULL CHECK (mode ~ '^0[0-7]{3}$'),
    template        boolean NOT NULL,
    content         text NOT NULL,
    bytes           bigint GENERATED ALWAYS AS (pg_catalog.octet_length(content)) STORED,
    PRIMARY KEY (job_id, path)
);
COMMENT ON TABLE dispatch.job_files IS
    'Files of each job as rendered at submit time; the agent writes them into the work directory';

------------------------------------------------------------------------------
-- Internal helpers
------------------------------------------------------------------------------

-- Raises the standard spec error: message plus the JSON path in the detail.
CREATE FUNCTION dispatch._spec_error(path text, message text, hint text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message,
            DETAIL = format('The error is at %s.', path);
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message,
        DETAIL = format('The error is at %s.', path), HINT = hint;
END
$$;

-- Appends a key to a JSON path, quoting keys that are not plain identifiers.
CREATE FUNCTION dispatch._path(path text, key text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN key ~ '^[A-Za-z_][A-Za-z0-9_]*$'
                THEN concat_ws('.', nullif(path, ''), key)
                ELSE concat(path, '.', to_jsonb(key)::text) END
$$;

-- Fails unless every key of obj is in allowed.
CREATE FUNCTION dispatch._check_keys(obj jsonb, allowed text[], path text, what text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    FOR k IN SELECT jsonb_object_keys(obj) LOOP
        IF NOT k = ANY (allowed) THEN
            PERFORM dispatch._spec_error(dispatch._path(path, k),
                format('unknown key "%s" in %s', k, what),
                format('Valid keys are: %s.', array_to_string(allowed, ', ')));
        END IF;
    END LOOP;
END
$$;

-- Returns v as a bigint when it is a JSON integer in [lo, hi], else raises.
CREATE FUNCTION dispatch._json_int(v jsonb, lo bigint, hi bigint, path text, what text)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(v) <> 'number' THEN
        PERFORM dispatch._spec_error(path, format('%s must be an integer', what));
    END IF;
    IF v::text::numeric <> trunc(v::text::numeric) THEN
        PERFORM dispatch._spec_error(path, format('%s must be an integer', what));
    END IF;
    IF v::text::numeric < lo OR v::text::numeric > hi THEN
        PERFORM dispatch._spec_error(path,
            format('%s must be between %s and %s', what, lo, hi));
    END IF;
    RETURN v::text::bigint;
END
$$;

-- Returns v as text when it is a non-empty JSON string, else raises.
CREATE FUNCTION dispatch._json_text(v jsonb, path text, what text, max_len int DEFAULT 200)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF v IS NULL OR jsonb_typeof(v) <> 'string' THEN
        PERFORM dispatch._spec_error(path, format('%s must be a string', what));
    END IF;
    IF v #>> '{}' = '' THEN
        PERFORM dispatch._spec_error(path, format('%s must not be empty', what));
    END IF;
    IF length(v #>> '{}') > max_len THEN
        PERFORM dispatch._spec_error(path,
            format('%s is longer than %s characters', what, max_len));
    END IF;
    RETURN v #>> '{}';
END
$$;

-- Fails unless v is a JSON object whose values are all strings.
CREATE FUNCTION dispatch._json_string_map(v jsonb, key_re text, path text, what text,
                                          key_hint text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
BEGIN
    IF jsonb_typeof(v) <> 'object' THEN
        PERFORM dispatch._spec_error(path, format('%s must be a JSON object', what));
    END IF;
    FOR e IN SELECT * FROM jsonb_each(v) LOOP
        IF e.key !~ key_re THEN
            PERFORM dispatch._spec_error(dispatch._path(path, e.key),
                format('invalid key "%s" in %s', e.key, what), key_hint);
        END IF;
        IF jsonb_typeof(e.value) <> 'string' THEN
            PERFORM dispatch._spec_error(dispatch._path(path, e.key),
                format('value of "%s" in %s must be a string', e.key, what));
        END IF;
    END LOOP;
END
$$;

-- Parses a job timeout (interval string or seconds) and returns it, or raises.
CREATE FUNCTION dispatch._json_timeout(v jsonb, path text) RETURNS interval
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t interval;
BEGIN
    IF jsonb_typeof(v) NOT IN ('number', 'string') THEN
        PERFORM dispatch._spec_error(path, 'timeout must be a string or a number');
    END IF;
    IF jsonb_typeof(v) = 'number' AND v::text::numeric > 315360000 THEN
        PERFORM dispatch._spec_error(path, 'timeout is longer than 10 years');
    END IF;
    BEGIN
        IF jsonb_typeof(v) = 'number' THEN
            t := make_interval(secs => v::text::numeric);
        ELSE
            t := (v #>> '{}')::interval;
        END IF;
    EXCEPTION WHEN data_exception THEN
        PERFORM dispatch._spec_error(path,
            format('invalid timeout %s', v::text),
            'Write an interval such as "10 minutes" or a number of seconds.');
    END;
    IF t <= interval '0' THEN
        PERFORM dispatch._spec_error(path, 'timeout must be positive');
    END IF;
    IF t > interval '10 years' THEN
        PERFORM dispatch._spec_error(path, 'timeout is longer than 10 years');
    END IF;
    RETURN t;
END
$$;

-- A size setting in bytes (SHOW prints units such as 10B or 1MB).
CREATE FUNCTION dispatch._setting_bytes(guc text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_size_bytes(regexp_replace(current_setting(guc), '([0-9])B$', '\1 bytes'))
$$;

-- Fails when content is larger than the size setting guc allows.
CREATE FUNCTION dispatch._check_size(content text, guc text, path text, what text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(content) > dispatch._setting_bytes(guc) THEN
        PERFORM dispatch._spec_error(path,
            format('%s is %s bytes, more than %s = %s allows', what, octet_length(content),
                   guc, current_setting(guc)),
            format('Make it smaller, or raise %s.', guc));
    END IF;
END
$$;

-- Fails unless path is a safe relative file path.
CREATE FUNCTION dispatch._check_file_path(path text, at text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(path) > 1024 THEN
        PERFORM dispatch._spec_error(at, 'file path is longer than 1024 bytes');
    ELSIF path LIKE '/%' THEN
        PERFORM dispatch._spec_error(at, format('file path "%s" is absolute', path),
            'A file path is relative to the job''s work directory.');
    ELSIF path ~ '[\x01-\x1f\x7f]' THEN
        PERFORM dispatch._spec_error(at, 'file path contains a control character');
    ELSIF '..' = ANY (string_to_array(path, '/')) OR '.' = ANY (string_to_array(path, '/')) THEN
        PERFORM dispatch._spec_error(at, format('file path "%s" contains "." or ".."', path),
            'A file path names a place inside the job''s work directory, without "." or ".." components.');
    ELSIF '' = ANY (string_to_array(path, '/')) THEN
        PERFORM dispatch._spec_error(at, format('file path "%s" has an empty component', path),
            'Separate directories with a single "/" and do not end a path with "/".');
    END IF;
END
$$;

-- Validates the files, replacements and template keys of job j (at path jp).
CREATE FUNCTION dispatch._validate_files(j jsonb, jp text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    fi int;
    fp text;
    path text;
    paths text[] := '{}';
    other int;
    used boolean := false;
BEGIN
    IF j ? 'template' AND jsonb_typeof(j -> 'template') <> 'boolean' THEN
        PERFORM dispatch._spec_error(jp || '.template', 'template must be a boolean');
    END IF;
    used := coalesce((j ->> 'template')::boolean, false);
    IF j ? 'replacements' THEN
        PERFORM dispatch._render_template('', j -> 'replacements', jp || '.replacements');
    END IF;
    IF j ? 'files' AND jsonb_typeof(j -> 'files') <> 'array' THEN
        PERFORM dispatch._spec_error(jp || '.files', 'files must be a JSON array');
    END IF;
    IF jsonb_array_length(coalesce(j -> 'files', '[]')) > 1000 THEN
        PERFORM dispatch._spec_error(jp || '.files', 'a job has more than 1000 files');
    END IF;

    FOR f, fi IN SELECT e, o - 1 FROM jsonb_array_elements(coalesce(j -> 'files', '[]'))
                 WITH ORDINALITY AS x(e, o) LOOP
        fp := format('%s.files[%s]', jp, fi);
        IF jsonb_typeof(f) <> 'object' THEN
            PERFORM dispatch._spec_error(fp, 'file must be a JSON object');
        END IF;
        PERFORM dispatch._check_keys(f, ARRAY['path', 'content', 'mode', 'template',
            'replacements'], fp, 'file');
        IF NOT f ? 'path' THEN
            PERFORM dispatch._spec_error(fp, 'file has no "path"');
        END IF;
        path := dispatch._json_text(f -> 'path', fp || '.path', 'file path', 1024);
        PERFORM dispatch._check_file_path(path, fp || '.path');
        other := array_position(paths, path);
        IF other IS NULL THEN
            SELECT o INTO other FROM unnest(paths) WITH ORDINALITY AS x(p, o)
             WHERE starts_with(path, p || '/') OR starts_with(p, path || '/');
        END IF;
        IF other IS NOT NULL THEN
            PERFORM dispatch._spec_error(fp || '.path',
                format('file path "%s" collides with files[%s] ("%s")', path, other - 1,
                       paths[other]),
                'Two files of a job cannot have the same path, and a file cannot be a directory of another.');
        END IF;
        paths := paths || path;
        IF NOT f ? 'content' THEN
            PERFORM dispatch._spec_error(fp, 'file has no "content"');
        END IF;
        IF jsonb_typeof(f -> 'content') <> 'string' THEN
            PERFORM dispatch._spec_error(fp || '.content', 'file content must be a string');
        END IF;
        PERFORM dispatch._check_size(f ->> 'content', 'dispatch.max_file_size',
                                     fp || '.content', 'file content');
        IF f ? 'mode' AND (jsonb_typeof(f -> 'mode') <> 'string'
                           OR f ->> 'mode' !~ '^0?[0-7]{3}$') THEN
            PERFORM dispatch._spec_error(fp || '.mode',
                'file mode must be an octal string from "0000" to "0777"',
                'Write the mode as a string such as "0755"; setuid, setgid and sticky bits are not allowed.');
        END IF;
        IF f ? 'template' AND jsonb_typeof(f -> 'template') <> 'boolean' THEN
            PERFORM dispatch._spec_error(fp || '.template', 'template must be a boolean');
        END IF;
        IF f ? 'replacements' THEN
            IF f -> 'template' = 'false' THEN
                PERFORM dispatch._spec_error(fp || '.replacements',
                    'file has replacements but "template" is false');
            END IF;
            PERFORM dispatch._render_template('', f -> 'replacements', fp || '.replacements');
        END IF;
        used := used OR coalesce((f ->> 'template')::boolean, f ? 'replacements');
    END LOOP;

    IF j ? 'replacements' AND NOT used THEN
        PERFORM dispatch._spec_error(jp || '.replacements',
            'job has replacements but neither its command nor any of its files is a template',
            'Set "template": true on the job to render its command, or on a file to render it.');
    END IF;
END
$$;

-- Renders and stores the files of job j (its spec at path jp); returns their total size.
CREATE FUNCTION dispatch._store_files(job bigint, j jsonb, jp text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    fi int;
    fp text;
    tpl boolean;
    content text;
    total bigint := 0;
BEGIN
    FOR f, fi IN SELECT e, o - 1 FROM jsonb_array_elements(coalesce(j -> 'files', '[]'))
                 WITH ORDINALITY AS x(e, o) LOOP
        fp := format('%s.files[%s]', jp, fi);
        tpl := coalesce((f ->> 'template')::boolean, f ? 'replacements');
        content := f ->> 'content';
        IF tpl THEN
            content := dispatch._render_template(content,
                coalesce(j -> 'replacements', '{}') || coalesce(f -> 'replacements', '{}'),
                fp || '.replacements');
            PERFORM dispatch._check_size(content, 'dispatch.max_file_size', fp,
                                         'rendered file');
        END IF;
        total := total + octet_length(content);
        INSERT INTO dispatch.job_files (job_id, path, mode, template, content)
        VALUES (job, f ->> 'path', lpad(coalesce(f ->> 'mode', '644'), 4, '0'), tpl, content);
    END LOOP;
    IF total > dispatch._setting_bytes('dispatch.max_job_files_size') THEN
        PERFORM dispatch._spec_error(jp || '.files',
            format('the rendered files of the job total %s bytes, more than dispatch.max_job_files_size = %s allows',
                   total, current_setting('dispatch.max_job_files_size')),
            'Make them smaller, or raise dispatch.max_job_files_size.');
    END IF;
    RETURN total;
END
$$;

-- Validates a whole joblist spec; raises the first error found, returns nothing.
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
                    IF n.key !~ '^[a-z][a-z0-9_]{0,62}$' THEN
                        PERFORM dispatch._spec_error(dispatch._path(jp || '.needs', n.key),
                            format('invalid resource type "%s"', n.key),
                            'A resource type is a lower-case letter followed by lower-case letters, digits or underscores.');
                    END IF;
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
                PERFORM dispatch._json_timeout(j -> 'timeout', jp || '.timeout');
            END IF;
            IF j ? 'retries' THEN
                PERFORM dispatch._json_int(j -> 'retries', 0, 100, jp || '.retries', 'retries');
            END IF;
            PERFORM dispatch._validate_files(j, jp);
        END LOOP;
    END LOOP;
END
$$;

-- True when the caller may act for everything (member of dispatch_admin).
CREATE FUNCTION dispatch._caller_is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_has_role(dispatch.current_caller(), 'dispatch_admin', 'MEMBER')
$$;

-- Fails unless the caller submitted joblist jl or is an admin.
CREATE FUNCTION dispatch._check_may_cancel(jl dispatch.joblists) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jl.submitted_by <> dispatch.current_caller() AND NOT dispatch._caller_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied to cancel joblist %s', jl.joblist_id),
            DETAIL = format('Joblist %s was submitted by role "%s".', jl.joblist_id,
                            jl.submitted_by),
            HINT = 'Only the submitting role or a member of dispatch_admin can cancel it.';
    END IF;
END
$$;

-- Releases whatever job holds.
CREATE FUNCTION dispatch._release(job bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM dispatch.allocations WHERE job_id = job
$$;

-- Ends a job in a final state with a reason and frees its resources.
CREATE FUNCTION dispatch._finish_job(job bigint, final text, why text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE dispatch.jobs SET state = final, reason = why, finished_at = now()
     WHERE job_id = job;
    PERFORM dispatch._release(job);
END
$$;

-- Puts a job back in the queue; a new attempt when it had started.
CREATE FUNCTION dispatch._requeue_job(job bigint, new_attempt boolean, why text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM dispatch._release(job);
    UPDATE dispatch.jobs
       SET state = 'pending', node = NULL, resources = NULL, reason = why,
           attempt = attempt + new_attempt::int, assigned_at = NULL, started_at = NULL,
           finished_at = NULL, exit_code = NULL, signal = NULL, timed_out = false,
           output_bytes = CASE WHEN new_attempt THEN 0 ELSE output_bytes END,
           output_truncated = output_truncated AND NOT new_attempt
     WHERE job_id = job;
END
$$;

-- Ends an attempt that did not succeed: retried while retries remain, else final.
CREATE FUNCTION dispatch._end_attempt(job bigint, final text, why text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    SELECT * INTO j FROM dispatch.jobs WHERE job_id = job;
    PERFORM dispatch._finish_job(job, final, why);
    IF j.attempt <= j.retries AND NOT j.cancel_requested THEN
        PERFORM dispatch._requeue_job(job, true,
            format('retrying after attempt %s: %s', j.attempt, why));
        RETURN 'pending';
    END IF;
    RETURN final;
END
$$;

-- Handles the active jobs of a node that went away, except those listed in keep.
CREATE FUNCTION dispatch._lose_jobs(p_node text, keep bigint[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    FOR j IN SELECT * FROM dispatch.jobs
              WHERE node = p_node AND state IN ('assigned', 'running')
                AND NOT job_id = ANY (keep)
              ORDER BY job_id FOR UPDATE LOOP
        IF j.cancel_requested THEN
            PERFORM dispatch._finish_job(j.job_id, 'cancelled',
                format('cancelled; node "%s" was lost', p_node));
        ELSIF j.state = 'assigned' THEN
            PERFORM dispatch._requeue_job(j.job_id, false,
                format('node "%s" was lost before the job started', p_node));
        ELSE
            PERFORM dispatch._end_attempt(j.job_id, 'lost',
                format('node "%s" was lost while the job ran', p_node));
        END IF;
    END LOOP;
END
$$;

-- Records every job state change in job_events.
CREATE FUNCTION dispatch._job_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dispatch.job_events (job_id, attempt, state, node, detail)
    VALUES (NEW.job_id, NEW.attempt, NEW.state, NEW.node,
            CASE WHEN NEW.state IN ('assigned', 'running') THEN NULL ELSE NEW.reason END);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_event_ins AFTER INSERT ON dispatch.jobs
    FOR EACH ROW EXECUTE FUNCTION dispatch._job_event();
CREATE TRIGGER jobs_event_upd AFTER UPDATE OF state, attempt ON dispatch.jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.attempt <> NEW.attempt)
    EXECUTE FUNCTION dispatch._job_event();

-- The "waiting for stage" reason of a joblist's later stages.
CREATE FUNCTION dispatch._stage_reason(jl bigint, stage int) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('waiting for stage "%s" to finish', s.name)
      FROM dispatch.stages s WHERE s.joblist_id = jl AND s.stage = _stage_reason.stage
$$;

-- Cancels every job of joblist jl that has not finished; running ones are signalled.
CREATE FUNCTION dispatch._cancel_jobs_of(jl bigint, why text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    FOR j IN SELECT * FROM dispatch.jobs
              WHERE joblist_id = jl AND state IN ('pending', 'assigned', 'running')
              ORDER BY job_id FOR UPDATE LOOP
        PERFORM dispatch._cancel_one(j, why);
    END LOOP;
END
$$;

-- Cancels one unfinished job: at once unless it runs, then asks its agent.
CREATE FUNCTION dispatch._cancel_one(j dispatch.jobs, why text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF j.state = 'running' THEN
        UPDATE dispatch.jobs SET cancel_requested = true, reason = why
         WHERE job_id = j.job_id;
        PERFORM pg_notify('dispatch_node_' || j.node, 'cancel');
    ELSE
        PERFORM dispatch._finish_job(j.job_id, 'cancelled', why);
    END IF;
END
$$;

------------------------------------------------------------------------------
-- User API
------------------------------------------------------------------------------

CREATE FUNCTION dispatch.submit_joblist(spec jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
            jsonb_array_length(spec -> 'stages'), spec, dispatch.current_caller())
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
                         THEN dispatch._json_timeout(j -> 'timeout', '') END,
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
COMMENT ON FUNCTION dispatch.submit_joblist(jsonb) IS
    'Validate a joblist spec and queue it; returns the joblist id';

CREATE FUNCTION dispatch.cancel_joblist(joblist bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jl dispatch.joblists;
BEGIN
    SELECT * INTO jl FROM dispatch.joblists WHERE joblist_id = joblist FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('joblist %s does not exist', joblist);
    END IF;
    PERFORM dispatch._check_may_cancel(jl);
    IF jl.state NOT IN ('queued', 'running') THEN
        RAISE NOTICE 'joblist % has already finished (%)', joblist, jl.state;
        RETURN false;
    END IF;
    UPDATE dispatch.joblists
       SET state = 'cancelled', finished_at = now(),
           reason = format('cancelled by %s', dispatch.current_caller())
     WHERE joblist_id = joblist;
    PERFORM dispatch._cancel_jobs_of(joblist, format('cancelled by %s', dispatch.current_caller()));
    PERFORM dispatch.wake_scheduler();
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch.cancel_joblist(bigint) IS
    'Cancel a joblist: waiting jobs at once, running jobs are signalled on their agents';

CREATE FUNCTION dispatch.cancel_joblist(name text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[];
    id bigint;
BEGIN
    SELECT array_agg(joblist_id ORDER BY joblist_id) INTO ids
      FROM dispatch.joblists WHERE joblists.name = cancel_joblist.name
       AND state IN ('queued', 'running');
    IF ids IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('no queued or running joblist is named "%s"', name);
    END IF;
    FOREACH id IN ARRAY ids LOOP
        PERFORM dispatch.cancel_joblist(id);
    END LOOP;
    RETURN cardinality(ids);
END
$$;
COMMENT ON FUNCTION dispatch.cancel_joblist(text) IS
    'Cancel every queued or running joblist with this name; returns how many';

CREATE FUNCTION dispatch.cancel_job(job bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
    jl dispatch.joblists;
BEGIN
    SELECT * INTO j FROM dispatch.jobs WHERE job_id = job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('job %s does not exist', job);
    END IF;
    SELECT * INTO jl FROM dispatch.joblists WHERE joblist_id = j.joblist_id;
    PERFORM dispatch._check_may_cancel(jl);
    IF j.state NOT IN ('pending', 'assigned', 'running') THEN
        RAISE NOTICE 'job % has already finished (%)', job, j.state;
        RETURN false;
    END IF;
    PERFORM dispatch._cancel_one(j, format('cancelled by %s', dispatch.current_caller()));
    PERFORM dispatch.wake_scheduler();
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch.cancel_job(bigint) IS
    'Cancel one job; under fail_fast its joblist then fails';

-- Fails unless type and ident are valid resource names.
CREATE FUNCTION dispatch._check_resource_name(type text, ident text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF type IS NULL OR type !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid resource type "%s"', type),
            HINT = 'A resource type is a lower-case letter followed by lower-case letters, digits or underscores.';
    END IF;
    IF ident IS NULL OR ident !~ '^[^\s,]{1,200}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid resource ident "%s"', ident),
            HINT = 'A resource ident is 1 to 200 characters without white space or commas.';
    END IF;
END
$$;

-- Describes where a resource lives, for messages.
CREATE FUNCTION dispatch._resource_place(node text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN node IS NULL THEN 'in the cluster-wide pool'
                ELSE format('on node "%s"', node) END
$$;

CREATE FUNCTION dispatch.add_resource(type text, ident text, node text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM dispatch._check_resource_name(type, ident);
    IF node IS NOT NULL AND NOT EXISTS (SELECT 1 FROM dispatch.nodes n WHERE n.node = add_resource.node) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('node "%s" is not registered', node);
    END IF;
    INSERT INTO dispatch.resources (type, ident, node)
    VALUES (type, ident, node)
    ON CONFLICT DO NOTHING
    RETURNING resource_id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('resource %s "%s" already exists %s', type, ident,
                             dispatch._resource_place(node));
    END IF;
    PERFORM dispatch.wake_scheduler();
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch.add_resource(text, text, text) IS
    'Add a resource instance: cluster-wide when node is NULL (licences), else on that node';

CREATE FUNCTION dispatch.remove_resource(type text, ident text, node text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r dispatch.resources;
    holder bigint;
BEGIN
    SELECT * INTO r FROM dispatch.resources x
     WHERE x.type = remove_resource.type AND x.ident = remove_resource.ident
       AND x.node IS NOT DISTINCT FROM remove_resource.node
     FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('resource %s "%s" does not exist %s', type, ident,
                             dispatch._resource_place(node));
    END IF;
    SELECT min(job_id) INTO holder FROM dispatch.allocations WHERE resource_id = r.resource_id;
    IF holder IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = format('resource %s "%s" is in use by job %s', type, ident, holder),
            HINT = 'Wait for the job to finish or cancel it.';
    END IF;
    DELETE FROM dispatch.resources WHERE resource_id = r.resource_id;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.remove_resource(text, text, text) IS
    'Remove an idle resource instance';

-- Fails unless stream names a job output stream.
CREATE FUNCTION dispatch._check_stream(stream text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF stream IS NULL OR stream NOT IN ('stdout', 'stderr') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid stream "%s"', stream),
            HINT = 'Use "stdout" or "stderr".';
    END IF;
END
$$;

CREATE FUNCTION dispatch.job_log(job bigint, stream text DEFAULT 'stdout',
                                 attempt int DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
    out text;
BEGIN
    SELECT * INTO j FROM dispatch.jobs WHERE job_id = job;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('job %s does not exist', job);
    END IF;
    PERFORM dispatch._check_stream(stream);
    SELECT coalesce(string_agg(o.data, '' ORDER BY o."offset"), '') INTO out
      FROM dispatch.job_output o
     WHERE o.job_id = job AND o.stream = job_log.stream
       AND o.attempt = coalesce(job_log.attempt, j.attempt);
    IF j.output_truncated AND job_log.attempt IS NOT DISTINCT FROM NULL THEN
        out := out || format(E'\n[output truncated at dispatch.max_output_bytes = %s]',
                             current_setting('dispatch.max_output_bytes'));
    END IF;
    RETURN out;
END
$$;
COMMENT ON FUNCTION dispatch.job_log(bigint, text, int) IS
    'Output of a job stored so far (current attempt unless one is given)';

------------------------------------------------------------------------------
-- Agent protocol (docs/internals.md)
------------------------------------------------------------------------------

-- Fails unless node is a valid node name.
CREATE FUNCTION dispatch._check_node_name(node text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF node IS NULL OR node !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid node name "%s"', node),
            HINT = 'A node name is 1 to 48 letters, digits, ".", "_" or "-", starting with a letter or digit.';
    END IF;
END
$$;

-- Locks and returns the node row after checking that the caller acts for it.
CREATE FUNCTION dispatch._agent_node(p_node text) RETURNS dispatch.nodes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes;
BEGIN
    PERFORM dispatch._check_node_name(p_node);
    SELECT * INTO n FROM dispatch.nodes WHERE node = p_node FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('node "%s" is not registered', p_node),
            HINT = 'The agent registers its node with dispatch.agent_register().';
    END IF;
    IF n.owner <> dispatch.current_caller() AND NOT dispatch._caller_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for node "%s"', p_node),
            DETAIL = format('Node "%s" belongs to role "%s".', p_node, n.owner),
            HINT = 'An agent may act only for the nodes its role registered.';
    END IF;
    RETURN n;
END
$$;

-- Locks and returns a job after checking that (job, attempt) is active on node.
CREATE FUNCTION dispatch._agent_job(p_node text, p_job bigint, p_attempt int)
RETURNS dispatch.jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    PERFORM dispatch._agent_node(p_node);
    SELECT * INTO j FROM dispatch.jobs WHERE job_id = p_job FOR UPDATE;
    IF NOT FOUND OR j.node IS DISTINCT FROM p_node OR j.attempt <> p_attempt
       OR j.state NOT IN ('assigned', 'running') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('report for job %s attempt %s from node "%s" refused',
                             p_job, p_attempt, p_node),
            DETAIL = CASE WHEN j.job_id IS NULL THEN format('Job %s does not exist.', p_job)
                          ELSE format('The job is at attempt %s, %s, on node %s.', j.attempt,
                                      j.state, coalesce('"' || j.node || '"', 'none')) END;
    END IF;
    RETURN j;
END
$$;

-- The resource instances and amounts an agent's registration offers.
CREATE FUNCTION dispatch._offer(info jsonb)
RETURNS TABLE (type text, ident text, capacity bigint, is_amount boolean)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT e ->> 'type', e ->> 'ident', 1::bigint, false
      FROM jsonb_array_elements(coalesce(info -> 'resources', '[]')) e
    UNION ALL
    SELECT key, key, value::text::bigint, true
      FROM jsonb_each(coalesce(info -> 'amounts', '{}'))
$$;

CREATE FUNCTION dispatch.agent_register(node text, info jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller name := dispatch.current_caller();
    n dispatch.nodes;
    keep bigint[];
    r record;
    timeout_ms bigint;
BEGIN
    PERFORM dispatch._check_node_name(node);
    IF info IS NULL OR jsonb_typeof(info) <> 'object' THEN
        PERFORM dispatch._spec_error('the top level', 'node info must be a JSON object');
    END IF;
    PERFORM dispatch._check_keys(info, ARRAY['hostname', 'arch', 'os', 'cpus', 'memory_mb',
        'labels', 'version', 'pid', 'resources', 'amounts', 'jobs'], '', 'node info');
    PERFORM dispatch._json_string_map(coalesce(info -> 'labels', '{}'),
        '^(?!(arch|os|hostname|node)$)[A-Za-z0-9_.-]{1,63}$', 'labels', 'labels',
        'A label key is 1 to 63 letters, digits, "_", "." or "-"; arch, os, hostname and node are reserved.');
    IF jsonb_typeof(coalesce(info -> 'resources', '[]')) <> 'array' THEN
        PERFORM dispatch._spec_error('resources', 'resources must be a JSON array');
    END IF;
    IF jsonb_typeof(coalesce(info -> 'amounts', '{}')) <> 'object' THEN
        PERFORM dispatch._spec_error('amounts', 'amounts must be a JSON object');
    END IF;
    FOR r IN SELECT e, o - 1 AS i FROM jsonb_array_elements(coalesce(info -> 'resources', '[]'))
             WITH ORDINALITY AS x(e, o) LOOP
        IF jsonb_typeof(r.e) <> 'object' OR NOT r.e ? 'type' OR NOT r.e ? 'ident' THEN
            PERFORM dispatch._spec_error(format('resources[%s]', r.i),
                'resource must be an object with "type" and "ident"');
        END IF;
        PERFORM dispatch._check_resource_name(r.e ->> 'type', r.e ->> 'ident');
    END LOOP;
    FOR r IN SELECT * FROM jsonb_each(coalesce(info -> 'amounts', '{}')) LOOP
        PERFORM dispatch._check_resource_name(r.key, r.key);
        PERFORM dispatch._json_int(r.value, 1, 9223372036854775807,
            dispatch._path('amounts', r.key), format('amount of "%s"', r.key));
    END LOOP;

    SELECT * INTO n FROM dispatch.nodes x WHERE x.node = agent_register.node FOR UPDATE;
    IF FOUND AND n.owner <> caller AND NOT dispatch._caller_is_admin() THEN
        PERFORM dispatch._agent_node(node);     -- raises the ownership error
    END IF;

    INSERT INTO dispatch.nodes AS x (node, state, owner, hostname, arch, os, cpus, memory_mb,
                                     labels, agent_version, agent_pid)
    VALUES (node, 'online', caller, info ->> 'hostname', info ->> 'arch', info ->> 'os',
            (info ->> 'cpus')::int, (info ->> 'memory_mb')::bigint,
            coalesce(info -> 'labels', '{}'), info ->> 'version', (info ->> 'pid')::int)
    ON CONFLICT ON CONSTRAINT nodes_pkey DO UPDATE
       SET state = 'online', hostname = EXCLUDED.hostname, arch = EXCLUDED.arch,
           os = EXCLUDED.os, cpus = EXCLUDED.cpus, memory_mb = EXCLUDED.memory_mb,
           labels = EXCLUDED.labels, agent_version = EXCLUDED.agent_version,
           agent_pid = EXCLUDED.agent_pid, registered_at = now(), last_heartbeat = now(),
           state_changed_at = CASE WHEN x.state = 'online' THEN x.state_changed_at
                                   ELSE now() END;

    -- Reconcile what the agent offers: idle instances it no longer lists go away.
    DELETE FROM dispatch.resources x
     WHERE x.node = agent_register.node AND x.from_agent
       AND NOT EXISTS (SELECT 1 FROM dispatch._offer(info) o
                        WHERE o.type = x.type AND o.ident = x.ident)
       AND NOT EXISTS (SELECT 1 FROM dispatch.allocations a WHERE a.resource_id = x.resource_id);
    INSERT INTO dispatch.resources AS x (type, ident, node, capacity, is_amount, from_agent)
    SELECT o.type, o.ident, node, o.capacity, o.is_amount, true FROM dispatch._offer(info) o
    ON CONFLICT ON CONSTRAINT resources_type_ident_node_key DO UPDATE
       SET capacity = EXCLUDED.capacity, is_amount = EXCLUDED.is_amount, from_agent = true;

    -- Running jobs the agent does not know about any more are lost.
    SELECT coalesce(array_agg((e ->> 'job_id')::bigint), '{}') INTO keep
      FROM jsonb_array_elements(coalesce(info -> 'jobs', '[]')) e;
    PERFORM dispatch._lose_jobs(node, keep || ARRAY(
        SELECT job_id FROM dispatch.jobs WHERE jobs.node = agent_register.node
           AND state = 'assigned'));

    PERFORM dispatch.wake_scheduler();
    timeout_ms := (extract(epoch FROM current_setting('dispatch.node_timeout')::interval) * 1000)::bigint;
    RETURN jsonb_build_object(
        'channel', 'dispatch_node_' || node,
        'heartbeat_ms', greatest(timeout_ms / 3, 100),
        'node_timeout_ms', timeout_ms,
        'kill_grace_ms',
        (extract(epoch FROM current_setting('dispatch.kill_grace')::interval) * 1000)::bigint);
END
$$;
COMMENT ON FUNCTION dispatch.agent_register(text, jsonb) IS
    'Agent: register or re-register a node and the resources it offers';

CREATE FUNCTION dispatch.agent_heartbeat(node text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    IF n.state <> 'offline' THEN
        UPDATE dispatch.nodes x SET last_heartbeat = now() WHERE x.node = n.node;
    END IF;
    RETURN n.state;
END
$$;
COMMENT ON FUNCTION dispatch.agent_heartbeat(text) IS
    'Agent: keep the node alive; returns its state (offline: register again)';

CREATE FUNCTION dispatch.agent_poll(node text)
RETURNS TABLE (action text, job_id bigint, attempt int, joblist_id bigint, name text,
               command text, env jsonb, resources jsonb, timeout_ms bigint, files jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    IF n.state = 'offline' THEN
        RETURN;
    END IF;
    UPDATE dispatch.nodes x SET last_heartbeat = now() WHERE x.node = n.node;
    RETURN QUERY
    WITH claimed AS (
        UPDATE dispatch.jobs j SET state = 'running', started_at = now()
         WHERE j.node = n.node AND j.state = 'assigned' AND n.state = 'online'
        RETURNING j.*)
    SELECT 'run'::text, c.job_id, c.attempt, c.joblist_id, c.name, c.command, c.env,
           c.resources, (extract(epoch FROM c.timeout) * 1000)::bigint,
           (SELECT jsonb_agg(jsonb_build_object('path', f.path, 'mode', f.mode,
                                                'content', f.content) ORDER BY f.path)
              FROM dispatch.job_files f WHERE f.job_id = c.job_id)
      FROM claimed c ORDER BY c.job_id;
    RETURN QUERY
    SELECT 'cancel'::text, j.job_id, j.attempt, j.joblist_id, j.name, NULL::text,
           NULL::jsonb, NULL::jsonb, NULL::bigint, NULL::jsonb
      FROM dispatch.jobs j
     WHERE j.node = n.node AND j.state = 'running' AND j.cancel_requested
     ORDER BY j.job_id;
END
$$;
COMMENT ON FUNCTION dispatch.agent_poll(text) IS
    'Agent: claim the jobs assigned to the node (run) and learn which to stop (cancel)';

CREATE FUNCTION dispatch.agent_resume(node text, job bigint, attempt int,
                                      OUT stdout_bytes bigint, OUT stderr_bytes bigint,
                                      OUT cancel_requested boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs := dispatch._agent_job(node, job, attempt);
BEGIN
    SELECT coalesce(max(o."offset" + octet_length(o.data)) FILTER (WHERE o.stream = 'stdout'), 0),
           coalesce(max(o."offset" + octet_length(o.data)) FILTER (WHERE o.stream = 'stderr'), 0)
      INTO stdout_bytes, stderr_bytes
      FROM dispatch.job_output o WHERE o.job_id = j.job_id AND o.attempt = j.attempt;
    cancel_requested := j.cancel_requested;
END
$$;
COMMENT ON FUNCTION dispatch.agent_resume(text, bigint, int) IS
    'Agent: how much output of a running job the server holds (after a reconnect)';


-- Returns the longest prefix of s that fits in max_bytes bytes.
CREATE FUNCTION dispatch._utf8_prefix(s text, max_bytes bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r text := left(s, max_bytes::int);
BEGIN
    WHILE octet_length(r) > max_bytes LOOP
        r := left(r, length(r) - greatest(1, ((octet_length(r) - max_bytes) / 4)::int));
    END LOOP;
    RETURN r;
END
$$;

CREATE FUNCTION dispatch.agent_output(node text, job bigint, attempt int, stream text,
                                      "offset" bigint, data text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs := dispatch._agent_job(node, job, attempt);
    stored bigint;
    room bigint;
    chunk text := data;
BEGIN
    PERFORM dispatch._check_stream(stream);
    IF j.output_truncated THEN
        RETURN -1;
    END IF;
    SELECT coalesce(max(o."offset" + octet_length(o.data)), 0) INTO stored
      FROM dispatch.job_output o
     WHERE o.job_id = job AND o.attempt = j.attempt AND o.stream = agent_output.stream;
    IF "offset" + octet_length(chunk) <= stored THEN
        RETURN stored;                  -- a chunk sent again after a reconnect
    END IF;
    IF "offset" <> stored THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('output chunk of job %s starts at byte %s of %s, but %s bytes are stored',
                             job, "offset", stream, stored),
            HINT = 'Send output from the stored length returned by dispatch.agent_resume().';
    END IF;
    room := dispatch._setting_bytes('dispatch.max_output_bytes') - j.output_bytes;
    IF octet_length(chunk) > room THEN
        chunk := dispatch._utf8_prefix(chunk, greatest(room, 0));
    END IF;
    IF chunk <> '' THEN
        INSERT INTO dispatch.job_output (job_id, attempt, stream, "offset", data)
        VALUES (job, j.attempt, stream, "offset", chunk);
    END IF;
    UPDATE dispatch.jobs x
       SET output_bytes = output_bytes + octet_length(chunk),
           output_truncated = chunk IS DISTINCT FROM data
     WHERE x.job_id = job;
    IF chunk IS DISTINCT FROM data THEN
        RETURN -1;
    END IF;
    RETURN stored + octet_length(chunk);
END
$$;
COMMENT ON FUNCTION dispatch.agent_output(text, bigint, int, text, bigint, text) IS
    'Agent: store a chunk of job output; returns the stored length, -1 once truncated';

CREATE FUNCTION dispatch.agent_finish(node text, job bigint, attempt int, exit_code int,
                                      signal int, timed_out boolean, detail text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs := dispatch._agent_job(node, job, attempt);
    why text;
    result text;
BEGIN
    UPDATE dispatch.jobs x
       SET exit_code = agent_finish.exit_code, signal = agent_finish.signal,
           timed_out = coalesce(agent_finish.timed_out, false)
     WHERE x.job_id = job;
    why := CASE
        WHEN coalesce(timed_out, false)
            THEN coalesce('timed out after ' || j.timeout, 'timed out')
        WHEN signal IS NOT NULL THEN format('killed by signal %s', signal)
        WHEN exit_code IS NOT NULL AND exit_code <> 0 THEN format('exited with code %s', exit_code)
        WHEN exit_code IS NULL THEN coalesce(detail, 'ended without an exit status')
    END;
    IF j.cancel_requested THEN
        PERFORM dispatch._finish_job(job, 'cancelled', j.reason);
        result := 'cancelled';
    ELSIF why IS NULL THEN
        PERFORM dispatch._finish_job(job, 'succeeded', NULL);
        result := 'succeeded';
    ELSE
        result := dispatch._end_attempt(job, 'failed', why);
    END IF;
    PERFORM dispatch.wake_scheduler();
    RETURN result;
END
$$;
COMMENT ON FUNCTION dispatch.agent_finish(text, bigint, int, int, int, boolean, text) IS
    'Agent: report how a job attempt ended; returns the job state afterwards';

CREATE FUNCTION dispatch.agent_drain(node text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    j bigint;
BEGIN
    UPDATE dispatch.nodes x SET state = 'draining', state_changed_at = now()
     WHERE x.node = n.node AND x.state = 'online';
    FOR j IN SELECT job_id FROM dispatch.jobs
              WHERE jobs.node = n.node AND state = 'assigned' ORDER BY job_id FOR UPDATE LOOP
        PERFORM dispatch._requeue_job(j, false,
            format('node "%s" is draining', n.node));
    END LOOP;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.agent_drain(text) IS
    'Agent: take no new jobs on this node; unclaimed assignments go back to the queue';

CREATE FUNCTION dispatch.agent_offline(node text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    UPDATE dispatch.nodes x SET state = 'offline', state_changed_at = now()
     WHERE x.node = n.node;
    PERFORM dispatch._lose_jobs(n.node);
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.agent_offline(text) IS
    'Agent: the agent stops cleanly; jobs still on the node are lost';

------------------------------------------------------------------------------
-- Scheduler helpers (called by the background worker only)
------------------------------------------------------------------------------

-- Advances, finishes or fails one active joblist whose current stage changed.
CREATE FUNCTION dispatch._advance_joblist(jl dispatch.joblists) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    active bigint;
    bad text;
BEGIN
    SELECT count(*) FILTER (WHERE state IN ('pending', 'assigned', 'running')),
           min(format('job "%s" %s', name,
                      CASE state WHEN 'failed' THEN coalesce(reason, 'failed')
                                 ELSE state END) ORDER BY job_id)
               FILTER (WHERE state IN ('failed', 'lost', 'cancelled'))
      INTO active, bad
      FROM dispatch.jobs WHERE joblist_id = jl.joblist_id AND stage = jl.current_stage;

    IF bad IS NOT NULL AND jl.fail_fast THEN
        UPDATE dispatch.joblists SET state = 'failed', finished_at = now(), reason = bad
         WHERE joblist_id = jl.joblist_id;
        PERFORM dispatch._cancel_jobs_of(jl.joblist_id, format('joblist failed: %s', bad));
        RETURN;
    END IF;
    IF active > 0 THEN
        RETURN;
    END IF;
    IF jl.current_stage + 1 < jl.stage_count THEN
        UPDATE dispatch.joblists SET current_stage = current_stage + 1
         WHERE joblist_id = jl.joblist_id;
        UPDATE dispatch.jobs
           SET reason = CASE WHEN stage = jl.current_stage + 1 THEN 'waiting for the scheduler'
                             ELSE dispatch._stage_reason(jl.joblist_id, jl.current_stage + 1) END
         WHERE joblist_id = jl.joblist_id AND stage > jl.current_stage AND state = 'pending';
        RETURN;
    END IF;
    SELECT min(format('job "%s" %s', name, state) ORDER BY job_id) INTO bad
      FROM dispatch.jobs WHERE joblist_id = jl.joblist_id AND state <> 'succeeded';
    UPDATE dispatch.joblists
       SET state = CASE WHEN bad IS NULL THEN 'succeeded' ELSE 'failed' END,
           finished_at = now(), reason = bad
     WHERE joblist_id = jl.joblist_id;
END
$$;

CREATE FUNCTION dispatch._housekeeping() RETURNS double precision
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    timeout interval := current_setting('dispatch.node_timeout')::interval;
    n text;
    jl dispatch.joblists;
    since timestamptz;
    next_deadline double precision;
BEGIN
    -- Heartbeats missed while no scheduler ran (a restart, a failover) do not count:
    -- silence is measured from this scheduler's start at the earliest.
    SELECT backend_start INTO since FROM pg_stat_activity WHERE pid = pg_backend_pid();
    FOR n IN UPDATE dispatch.nodes SET state = 'offline', state_changed_at = now()
              WHERE state <> 'offline'
                AND greatest(last_heartbeat, since) < now() - timeout
             RETURNING node LOOP
        PERFORM dispatch._lose_jobs(n);
    END LOOP;

    -- A joblist needs attention when its current stage has no active job left or a bad one.
    FOR jl IN SELECT l.* FROM dispatch.joblists l
               WHERE l.state IN ('queued', 'running')
                 AND (NOT EXISTS (SELECT 1 FROM dispatch.jobs j
                                   WHERE j.joblist_id = l.joblist_id
                                     AND j.stage = l.current_stage
                                     AND j.state IN ('pending', 'assigned', 'running'))
                      OR (l.fail_fast AND EXISTS (
                                  SELECT 1 FROM dispatch.jobs j
                                   WHERE j.joblist_id = l.joblist_id
                                     AND j.stage = l.current_stage
                                     AND j.state IN ('failed', 'lost', 'cancelled'))))
               ORDER BY l.joblist_id FOR UPDATE LOOP
        -- A stage may finish as soon as the next is entered (it was already done).
        LOOP
            PERFORM dispatch._advance_joblist(jl);
            SELECT * INTO jl FROM dispatch.joblists WHERE joblist_id = jl.joblist_id;
            EXIT WHEN jl.state NOT IN ('queued', 'running')
                   OR EXISTS (SELECT 1 FROM dispatch.jobs j
                               WHERE j.joblist_id = jl.joblist_id
                                 AND j.stage = jl.current_stage
                                 AND j.state IN ('pending', 'assigned', 'running'));
        END LOOP;
    END LOOP;

    SELECT extract(epoch FROM greatest(min(last_heartbeat), since) + timeout - now())
      INTO next_deadline
      FROM dispatch.nodes WHERE state <> 'offline';
    RETURN greatest(next_deadline, 0.1);
END
$$;
COMMENT ON FUNCTION dispatch._housekeeping() IS
    'Scheduler: expire silent nodes, advance stages, finish joblists; returns seconds to the next deadline';

CREATE VIEW dispatch._sched_nodes AS
    SELECT node FROM dispatch.nodes WHERE state = 'online' ORDER BY node;

CREATE VIEW dispatch._sched_node_labels AS
    SELECT n.node, l.key, l.value
      FROM dispatch.nodes n,
           LATERAL (SELECT key, value FROM jsonb_each_text(n.labels)
                    UNION ALL VALUES ('arch', n.arch),
                                     ('os', lower(split_part(n.os, ' ', 1))),
                                     ('hostname', n.hostname),
                                     ('node', n.node)) l(key, value)
     WHERE n.state = 'online' AND l.value IS NOT NULL
     ORDER BY n.node, l.key;

CREATE VIEW dispatch._sched_free AS
    SELECT r.resource_id, r.type, r.ident, r.node,
           (r.capacity - coalesce(sum(a.amount), 0))::bigint AS free, r.capacity
      FROM dispatch.resources r
      LEFT JOIN dispatch.allocations a USING (resource_id)
      LEFT JOIN dispatch.nodes n ON n.node = r.node
     WHERE r.node IS NULL OR n.state = 'online'
     GROUP BY r.resource_id
     ORDER BY r.type, r.node NULLS LAST,
              regexp_replace(r.ident, '[0-9]+$', ''),
              substring(r.ident FROM '[0-9]+$')::numeric NULLS FIRST, r.ident;

CREATE VIEW dispatch._sched_jobs AS
    SELECT j.job_id, j.joblist_id
      FROM dispatch.jobs j JOIN dispatch.joblists l USING (joblist_id)
     WHERE l.state IN ('queued', 'running') AND j.stage = l.current_stage
       AND j.state = 'pending'
     ORDER BY j.joblist_id, j.job_id;

CREATE VIEW dispatch._sched_job_needs AS
    SELECT j.job_id, n.key AS type, n.value::text::bigint AS count
      FROM dispatch._sched_jobs s JOIN dispatch.jobs j USING (job_id),
           jsonb_each(j.needs) n
     ORDER BY j.job_id, n.key;

CREATE VIEW dispatch._sched_job_constraints AS
    SELECT j.job_id, c.key, c.value
      FROM dispatch._sched_jobs s JOIN dispatch.jobs j USING (job_id),
           jsonb_each_text(j.constraints) c
     ORDER BY j.job_id, c.key;

CREATE FUNCTION dispatch._assign_many(job_ids bigint[], nodes text[], take_jobs bigint[],
                                      take_units bigint[], take_amounts bigint[])
RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    assigned int;
    notify text[];
BEGIN
    -- One statement for the whole cycle.  Units are locked until the assignments
    -- commit; a job one of whose units an agent withdrew since the cycle read them is
    -- skipped (the registration that withdrew it wakes the scheduler again), and so is
    -- a job that stopped being pending (cancelled meanwhile).
    WITH take AS (
        SELECT * FROM unnest(take_jobs, take_units, take_amounts)
                      WITH ORDINALITY AS t(job_id, resource_id, amount, ord)),
    unit AS (
        SELECT r.resource_id, r.type, r.ident, r.is_amount FROM dispatch.resources r
         WHERE r.resource_id = ANY (take_units) FOR KEY SHARE),
    placed AS (
        SELECT p.job_id, p.node,
               (SELECT jsonb_object_agg(x.type, x.v)
                  FROM (SELECT u.type,
                               CASE WHEN bool_or(u.is_amount) THEN to_jsonb(sum(t.amount))
                                    ELSE jsonb_agg(u.ident ORDER BY t.ord) END AS v
                          FROM take t JOIN unit u USING (resource_id)
                         WHERE t.job_id = p.job_id GROUP BY u.type) x) AS held
          FROM unnest(job_ids, nodes) AS p(job_id, node)
         WHERE NOT EXISTS (SELECT 1 FROM take t WHERE t.job_id = p.job_id
                              AND t.resource_id NOT IN (SELECT resource_id FROM unit))),
    upd AS (
        UPDATE dispatch.jobs j
           SET state = 'assigned', node = p.node, resources = p.held, reason = NULL,
               assigned_at = now()
          FROM placed p
         WHERE j.job_id = p.job_id AND j.state = 'pending'
        RETURNING j.job_id, j.joblist_id, j.node),
    alloc AS (
        INSERT INTO dispatch.allocations (resource_id, job_id, amount)
        SELECT t.resource_id, t.job_id, t.amount FROM take t JOIN upd USING (job_id)),
    started AS (
        UPDATE dispatch.joblists l SET state = 'running', started_at = now()
         WHERE l.joblist_id IN (SELECT joblist_id FROM upd) AND l.state = 'queued')
    SELECT count(*), array_agg(DISTINCT upd.node) INTO assigned, notify FROM upd;

    IF EXISTS (SELECT 1 FROM dispatch.allocations a JOIN dispatch.resources r USING (resource_id)
                WHERE a.resource_id = ANY (take_units)
                GROUP BY r.resource_id HAVING sum(a.amount) > r.capacity) THEN
        RAISE EXCEPTION 'allocator gave out more than a resource holds';
    END IF;
    PERFORM pg_notify('dispatch_node_' || n, 'run') FROM unnest(notify) n;
    RETURN assigned;
END
$$;
COMMENT ON FUNCTION dispatch._assign_many(bigint[], text[], bigint[], bigint[], bigint[]) IS
    'Scheduler: assign pending jobs to nodes with resource units (take_* list each job''s units); returns how many';

CREATE FUNCTION dispatch._assign(job bigint, p_node text, resource_ids bigint[],
                                 amounts bigint[])
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._assign_many(ARRAY[job], ARRAY[p_node],
                                 array_fill(job, ARRAY[cardinality(resource_ids)]),
                                 resource_ids, amounts) = 1
$$;
COMMENT ON FUNCTION dispatch._assign(bigint, text, bigint[], bigint[]) IS
    'Assign one pending job to a node with the given resource units (tests, manual repair)';

CREATE FUNCTION dispatch._set_reasons(job_ids bigint[], reasons text[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.jobs j SET reason = u.reason
      FROM unnest(job_ids, reasons) AS u(job_id, reason)
     WHERE j.job_id = u.job_id AND j.state = 'pending'
       AND j.reason IS DISTINCT FROM u.reason
$$;
COMMENT ON FUNCTION dispatch._set_reasons(bigint[], text[]) IS
    'Scheduler: record why pending jobs wait';

------------------------------------------------------------------------------
-- Reporting views
------------------------------------------------------------------------------

CREATE VIEW dispatch.joblist_status AS
    SELECT l.joblist_id, l.name, l.state, l.submitted_by, l.submitted_at, l.started_at,
           l.finished_at, s.name AS current_stage,
           c.total AS jobs_total, c.pending AS jobs_pending, c.running AS jobs_running,
           c.succeeded AS jobs_succeeded, c.failed AS jobs_failed, l.reason
      FROM dispatch.joblists l
      JOIN dispatch.stages s ON s.joblist_id = l.joblist_id AND s.stage = l.current_stage
      CROSS JOIN LATERAL (
          SELECT count(*) AS total,
                 count(*) FILTER (WHERE j.state = 'pending') AS pending,
                 count(*) FILTER (WHERE j.state IN ('assigned', 'running')) AS running,
                 count(*) FILTER (WHERE j.state = 'succeeded') AS succeeded,
                 count(*) FILTER (WHERE j.state IN ('failed', 'lost')) AS failed
            FROM dispatch.jobs j WHERE j.joblist_id = l.joblist_id) c;
COMMENT ON VIEW dispatch.joblist_status IS 'One row per joblist with job counts';

CREATE VIEW dispatch.job_status AS
    SELECT j.job_id, j.joblist_id, s.name AS stage, j.name, j.state, j.node, j.attempt,
           j.exit_code, j.signal, j.resources, j.reason, j.assigned_at, j.started_at,
           j.finished_at, l.name AS joblist, j.stage AS stage_no, j.command, j.needs,
           j.constraints, j.timeout, j.retries, j.timed_out, j.cancel_requested,
           j.output_bytes, j.output_truncated
      FROM dispatch.jobs j
      JOIN dispatch.joblists l USING (joblist_id)
      JOIN dispatch.stages s ON s.joblist_id = j.joblist_id AND s.stage = j.stage;
COMMENT ON VIEW dispatch.job_status IS
    'One row per job; reason says why a pending job waits or why a job ended';

CREATE VIEW dispatch.node_status AS
    SELECT n.node, n.state, n.last_heartbeat, n.labels,
           (SELECT count(*) FROM dispatch.jobs j
             WHERE j.node = n.node AND j.state IN ('assigned', 'running')) AS running_jobs,
           n.hostname, n.arch, n.os, n.cpus, n.memory_mb, n.owner, n.agent_version,
           n.registered_at, n.state_changed_at
      FROM dispatch.nodes n;
COMMENT ON VIEW dispatch.node_status IS 'One row per node with its liveness and load';

CREATE VIEW dispatch.resource_status AS
    SELECT r.type, r.ident, r.node, a.job_id, coalesce(a.amount, 0) AS amount,
           r.capacity, r.resource_id
      FROM dispatch.resources r
      LEFT JOIN dispatch.allocations a USING (resource_id);
COMMENT ON VIEW dispatch.resource_status IS
    'One row per resource instance and holder (job_id NULL: free)';

-- Internal helpers carry their contract line as a comment too.
DO $comments$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT p.oid::regprocedure AS fn, d.text
               FROM (VALUES
        ('_check_stream', 'Fails unless stream names a job output stream'),
        ('_spec_error', 'Raises the standard spec error: message plus the JSON path in the detail'),
        ('_path', 'Appends a key to a JSON path, quoting keys that are not plain identifiers'),
        ('_check_keys', 'Fails unless every key of obj is in allowed'),
        ('_json_int', 'Returns v as a bigint when it is a JSON integer in [lo, hi], else raises'),
        ('_json_text', 'Returns v as text when it is a non-empty JSON string, else raises'),
        ('_json_string_map', 'Fails unless v is a JSON object whose values are all strings'),
        ('_json_timeout', 'Parses a job timeout (interval string or seconds) and returns it, or raises'),
        ('_validate_spec', 'Validates a whole joblist spec; raises the first error found, returns nothing'),
        ('_caller_is_admin', 'True when the caller may act for everything (member of dispatch_admin)'),
        ('_check_may_cancel', 'Fails unless the caller submitted joblist jl or is an admin'),
        ('_release', 'Releases whatever job holds'),
        ('_finish_job', 'Ends a job in a final state with a reason and frees its resources'),
        ('_requeue_job', 'Puts a job back in the queue; a new attempt when it had started'),
        ('_end_attempt', 'Ends an attempt that did not succeed: retried while retries remain, else final'),
        ('_lose_jobs', 'Handles the active jobs of a node that went away, except those listed in keep'),
        ('_job_event', 'Records every job state change in job_events'),
        ('_stage_reason', 'The "waiting for stage" reason of a joblist''s later stages'),
        ('_cancel_jobs_of', 'Cancels every job of joblist jl that has not finished; running ones are signalled'),
        ('_cancel_one', 'Cancels one unfinished job: at once unless it runs, then asks its agent'),
        ('_check_resource_name', 'Fails unless type and ident are valid resource names'),
        ('_resource_place', 'Describes where a resource lives, for messages'),
        ('_check_node_name', 'Fails unless node is a valid node name'),
        ('_agent_node', 'Locks and returns the node row after checking that the caller acts for it'),
        ('_agent_job', 'Locks and returns a job after checking that (job, attempt) is active on node'),
        ('_offer', 'The resource instances and amounts an agent''s registration offers'),
        ('_setting_bytes', 'A size setting in bytes (SHOW prints units such as 10B or 1MB)'),
        ('_check_size', 'Fails when content is larger than the size setting guc allows'),
        ('_check_file_path', 'Fails unless path is a safe relative file path'),
        ('_validate_files', 'Validates the files, replacements and template keys of job j'),
        ('_store_files', 'Renders and stores the files of job j; returns their total size'),
        ('_render_template', 'render_template with the JSON path of the map, for spec errors'),
        ('_utf8_prefix', 'Returns the longest prefix of s that fits in max_bytes bytes'),
        ('_advance_joblist', 'Advances, finishes or fails one active joblist whose current stage changed')
                    ) AS d(name, text)
               JOIN pg_catalog.pg_proc p ON p.proname = d.name
                AND p.pronamespace = 'dispatch'::regnamespace LOOP
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', c.fn, c.text);
    END LOOP;
END
$comments$;
COMMENT ON VIEW dispatch._sched_nodes IS 'Scheduler input: online nodes';
COMMENT ON VIEW dispatch._sched_node_labels IS 'Scheduler input: node labels and pseudo-labels';
COMMENT ON VIEW dispatch._sched_free IS 'Scheduler input: resource units with their free amount';
COMMENT ON VIEW dispatch._sched_jobs IS 'Scheduler input: runnable pending jobs in FIFO order';
COMMENT ON VIEW dispatch._sched_job_needs IS 'Scheduler input: needs of runnable jobs';
COMMENT ON VIEW dispatch._sched_job_constraints IS 'Scheduler input: constraints of runnable jobs';

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dispatch FROM PUBLIC;
GRANT USAGE ON SCHEMA dispatch TO dispatch_user, dispatch_agent, dispatch_admin;
GRANT SELECT ON dispatch.joblist_status, dispatch.job_status, dispatch.node_status,
                dispatch.resource_status, dispatch.joblists, dispatch.stages, dispatch.jobs,
                dispatch.nodes, dispatch.resources, dispatch.allocations,
                dispatch.job_events, dispatch.job_output, dispatch.job_files
    TO dispatch_user, dispatch_agent;
GRANT EXECUTE ON FUNCTION dispatch.current_caller(), dispatch.scheduler_stats(),
                          dispatch.render_template(text, jsonb)
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION dispatch.submit_joblist(jsonb), dispatch.cancel_joblist(bigint),
                          dispatch.cancel_joblist(text), dispatch.cancel_job(bigint),
                          dispatch.job_log(bigint, text, int)
    TO dispatch_user;
GRANT EXECUTE ON FUNCTION dispatch.agent_register(text, jsonb), dispatch.agent_heartbeat(text),
                          dispatch.agent_poll(text), dispatch.agent_resume(text, bigint, int),
                          dispatch.agent_output(text, bigint, int, text, bigint, text),
                          dispatch.agent_finish(text, bigint, int, int, int, boolean, text),
                          dispatch.agent_drain(text), dispatch.agent_offline(text)
    TO dispatch_agent;
GRANT EXECUTE ON FUNCTION dispatch.add_resource(text, text, text),
                          dispatch.remove_resource(text, text, text)
    TO dispatch_admin;

SELECT dispatch.wake_scheduler();
