------------------------------------------------------------------------------
-- Results between jobs: what a job leaves, and what its dependents get
------------------------------------------------------------------------------
--
-- A job may leave one JSON value in the file named by $DISPATCH_RESULT; its agent
-- reads it when the job ends and sends it with the end ("result" in agent_report's
-- finish, or "result_error" when the file was there but could not be used).  It is
-- stored in jobs.result when it is at most dispatch.max_result_size bytes as JSON
-- text; a result too large, or one that could not be read, fails the job with the
-- reason.  The jobs that run after it get it as $DISPATCH_INPUTS/<name>.json (the
-- "flow" column of agent_poll), for_each fans out over it (36_dataflow.sql), and SQL
-- reads it with job_result() or job_status.result: like output, a result is private
-- to the joblist's submitter and admins.

-- No SET clause: inlined into _end_reports' statements.
CREATE FUNCTION dispatch._result_problem(finish jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN finish ? 'result_error'
            THEN format('left a result that could not be read: %s', finish ->> 'result_error')
        WHEN finish ? 'result'
             AND pg_catalog.octet_length((finish -> 'result')::text)
                 > dispatch._setting_bytes('dispatch.max_result_size')
            THEN format('left a result of %s bytes, more than dispatch.max_result_size = %s allows',
                        pg_catalog.octet_length((finish -> 'result')::text),
                        pg_catalog.current_setting('dispatch.max_result_size'))
    END
$$;
COMMENT ON FUNCTION dispatch._result_problem(jsonb) IS
    'Why the result in an agent''s finish object cannot be kept (NULL: it can, or there is none)';

-- The file a dependent reads an input from: the job's name made one safe file name
-- (no "/", control characters or leading "."), its id added when that changed it.
CREATE FUNCTION dispatch._input_file(name text, job bigint) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN name ~ '^[^./\x01-\x1f\x7f][^/\x01-\x1f\x7f]{0,199}$' THEN name || '.json'
                ELSE left(regexp_replace(regexp_replace(name, '[/\x01-\x1f\x7f]', '_', 'g'),
                                         '^\.', '_'), 200) || '~' || job || '.json' END
$$;
COMMENT ON FUNCTION dispatch._input_file(text, bigint) IS
    'The file name under $DISPATCH_INPUTS of the result of job (named name)';

-- What agent_poll hands an agent with a job beyond its command: the results of the
-- jobs it runs after, and its group's scratch directory (49_scratch.sql).
-- (plpgsql: _build_flow comes later, 79_rebuilds.sql)
CREATE FUNCTION dispatch._job_flow(j dispatch.jobs) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN nullif(jsonb_strip_nulls(jsonb_build_object(
        'inputs', (SELECT jsonb_agg(jsonb_build_object('name', u.name,
                                                       'file', dispatch._input_file(u.name, u.job_id),
                                                       'result', u.result) ORDER BY u.job_id)
                     FROM dispatch.jobs u
                    WHERE j.after IS NOT NULL AND u.joblist_id = j.joblist_id
                      AND u.task = ANY (j.after) AND u.result IS NOT NULL),
        'group', (SELECT jsonb_build_object('key', g.key, 'name', g.group_name)
                    FROM dispatch.group_scratch g
                   WHERE j.group_name IS NOT NULL AND g.joblist_id = j.joblist_id
                     AND g.group_name = j.group_name),
        'artefacts', CASE WHEN j.builds IS NOT NULL THEN dispatch._build_flow(j.job_id) END)), '{}');
END
$$;
COMMENT ON FUNCTION dispatch._job_flow(dispatch.jobs) IS
    'The flow column of agent_poll for job j: its inputs, its group and, for a build job, '
    'its artefacts (NULL: none)';

CREATE FUNCTION dispatch.job_result(job bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT (dispatch._readable_job(job)).result
$$;
COMMENT ON FUNCTION dispatch.job_result(bigint) IS
    'The JSON result a job left at $DISPATCH_RESULT (NULL: none yet); its submitter and '
    'admins only';
