------------------------------------------------------------------------------
-- Internal helpers
------------------------------------------------------------------------------

-- Raises the standard spec error: message plus the JSON path in the detail.
CREATE FUNCTION dispatch._spec_error(path text, message text, hint text DEFAULT NULL)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._raise_invalid(message, format('The error is at %s.', path), hint)
$$;

-- Raises invalid_parameter_value with message, detail and hint (NULL or '': none).
CREATE FUNCTION dispatch._raise_invalid(message text, detail text, hint text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message,
            DETAIL = detail;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message,
        DETAIL = detail, HINT = hint;
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

-- Parses a duration (interval string or seconds) called what and returns it, or raises.
CREATE FUNCTION dispatch._json_interval(v jsonb, path text, what text) RETURNS interval
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t interval;
BEGIN
    IF jsonb_typeof(v) NOT IN ('number', 'string') THEN
        PERFORM dispatch._spec_error(path, format('%s must be a string or a number', what));
    END IF;
    IF jsonb_typeof(v) = 'number' AND v::text::numeric > 315360000 THEN
        PERFORM dispatch._spec_error(path, format('%s is longer than 10 years', what));
    END IF;
    BEGIN
        IF jsonb_typeof(v) = 'number' THEN
            t := make_interval(secs => v::text::numeric);
        ELSE
            t := (v #>> '{}')::interval;
        END IF;
    EXCEPTION WHEN data_exception THEN
        PERFORM dispatch._spec_error(path,
            format('invalid %s %s', what, v::text),
            'Write an interval such as "10 minutes" or a number of seconds.');
    END;
    IF t <= interval '0' THEN
        PERFORM dispatch._spec_error(path, format('%s must be positive', what));
    END IF;
    IF t > interval '10 years' THEN
        PERFORM dispatch._spec_error(path, format('%s is longer than 10 years', what));
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
