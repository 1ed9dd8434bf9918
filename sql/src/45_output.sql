------------------------------------------------------------------------------
-- Job output: chunks at byte offsets, streamed while the job runs
------------------------------------------------------------------------------
--
-- The agent sends output in chunks at byte offsets (agent_output); a chunk sent
-- again after a reconnect is acknowledged without being stored twice, and output
-- beyond dispatch.max_output_bytes is cut at a character boundary and marked
-- truncated.  job_log() reads it back.

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
COMMENT ON FUNCTION dispatch._check_stream(text) IS
    'Fails unless stream names a job output stream';

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
COMMENT ON FUNCTION dispatch._utf8_prefix(text, bigint) IS
    'Returns the longest prefix of s that fits in max_bytes bytes';

CREATE FUNCTION dispatch._output_stored(j dispatch.jobs, stream text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(o."offset" + octet_length(o.data)), 0)
      FROM dispatch.job_output o
     WHERE o.job_id = j.job_id AND o.attempt = j.attempt AND o.stream = _output_stored.stream
$$;
COMMENT ON FUNCTION dispatch._output_stored(dispatch.jobs, text) IS
    'How many bytes of stream the server holds for the current attempt of job j';

CREATE FUNCTION dispatch._chunk_fits(stored bigint, "offset" bigint, len bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN "offset" + len <= stored THEN NULL ELSE "offset" = stored END
$$;
COMMENT ON FUNCTION dispatch._chunk_fits(bigint, bigint, bigint) IS
    'Whether a chunk of len bytes at offset continues a stream of stored bytes: true, '
    'false (it would leave a gap) or NULL (stored already: a chunk sent again)';

CREATE FUNCTION dispatch._gap_message(job bigint, stream text, "offset" bigint, stored bigint)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('output chunk of job %s starts at byte %s of %s, but %s bytes are stored',
                  job, "offset", stream, stored)
$$;
COMMENT ON FUNCTION dispatch._gap_message(bigint, text, bigint, bigint) IS
    'The message for an output chunk that would leave a gap';

CREATE FUNCTION dispatch._store_output(j dispatch.jobs, stream text, "offset" bigint, data text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stored bigint;
    room bigint;
    chunk text := data;
BEGIN
    PERFORM dispatch._check_stream(stream);
    SELECT x.output_bytes, x.output_truncated INTO j.output_bytes, j.output_truncated
      FROM dispatch.jobs x WHERE x.job_id = j.job_id;
    IF j.output_truncated THEN
        RETURN -1;
    END IF;
    stored := dispatch._output_stored(j, stream);
    CASE dispatch._chunk_fits(stored, "offset", octet_length(chunk))
        WHEN true THEN NULL;
        WHEN false THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = dispatch._gap_message(j.job_id, stream, "offset", stored),
                HINT = 'Send output from the stored length returned by dispatch.agent_resume().';
        ELSE RETURN stored;             -- a chunk sent again after a reconnect
    END CASE;
    room := dispatch._setting_bytes('dispatch.max_output_bytes') - j.output_bytes;
    IF octet_length(chunk) > room THEN
        chunk := dispatch._utf8_prefix(chunk, greatest(room, 0));
    END IF;
    IF chunk <> '' THEN
        INSERT INTO dispatch.job_output (job_id, attempt, stream, "offset", data)
        VALUES (j.job_id, j.attempt, stream, "offset", chunk);
    END IF;
    UPDATE dispatch.jobs x
       SET output_bytes = output_bytes + octet_length(chunk),
           output_truncated = chunk IS DISTINCT FROM data
     WHERE x.job_id = j.job_id;
    IF chunk IS DISTINCT FROM data THEN
        RETURN -1;
    END IF;
    RETURN stored + octet_length(chunk);
END
$$;
COMMENT ON FUNCTION dispatch._store_output(dispatch.jobs, text, bigint, text) IS
    'Stores a chunk of output of the locked job j at offset of stream; returns the stored '
    'length, -1 once truncated; a gap raises 22023';

CREATE FUNCTION dispatch.agent_output(node text, job bigint, attempt int, stream text,
                                      "offset" bigint, data text)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._store_output(dispatch._agent_job(node, job, attempt), stream, "offset", data)
$$;
COMMENT ON FUNCTION dispatch.agent_output(text, bigint, int, text, bigint, text) IS
    'Agent (one chunk per call; dispatch.agent_report batches): store a chunk of job output; '
    'returns the stored length, -1 once truncated';
