------------------------------------------------------------------------------
-- User API
------------------------------------------------------------------------------

-- Validates spec and queues it as a joblist of submitter; returns its id.
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
CREATE FUNCTION dispatch.submit_joblist(spec jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._submit(spec, dispatch.current_caller())
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
