------------------------------------------------------------------------------
-- Job output: chunks at byte offsets, streamed while the job runs
------------------------------------------------------------------------------
--
-- The agent sends output in chunks at byte offsets (agent_output); a chunk sent
-- again after a reconnect is acknowledged without being stored twice, and output
-- beyond dispatch.max_output_bytes is cut at a character boundary and marked
-- truncated.  job_log() reads it back.
--
-- Followers (dispatchctl logs -f, dispatch-web) call follow_output(job): a shared
-- session advisory lock on the job's key.  agent_output() tries the same lock,
-- exclusive, for its transaction; only when that fails (someone follows) does it
-- NOTIFY dispatch_job_<id> "output", so output nobody follows costs no NOTIFY (a
-- NOTIFY serialises commits cluster-wide).  The lock is also the barrier against a
-- lost wake-up: a follower's lock waits for a storing transaction that found nobody,
-- so the follower's first read after it sees that chunk.  The payload has no data:
-- readers go through job_log().

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

-- The two keys of a job's follow lock.  No SET clause, so that the planner inlines them
-- into agent_output(); everything they name is schema-qualified instead.
CREATE FUNCTION dispatch._follow_class() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 1685287780           -- "dspd" in ASCII
$$;
COMMENT ON FUNCTION dispatch._follow_class() IS
    'The first key of the advisory locks that mark a job''s output as followed';

CREATE FUNCTION dispatch._follow_key(job bigint) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (job OPERATOR(pg_catalog.%) 2147483648)::pg_catalog.int4   -- a collision costs one NOTIFY
$$;
COMMENT ON FUNCTION dispatch._follow_key(bigint) IS
    'The second key of the advisory lock that marks job''s output as followed';

CREATE FUNCTION dispatch.follow_output(job bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s' AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM dispatch.jobs WHERE job_id = job) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('job %s does not exist', job);
    END IF;
    PERFORM pg_advisory_lock_shared(dispatch._follow_class(), dispatch._follow_key(job));
    RETURN true;
EXCEPTION WHEN lock_not_available THEN
    RETURN false;               -- held exclusively by someone else: every chunk NOTIFYs anyway
END
$$;
COMMENT ON FUNCTION dispatch.follow_output(bigint) IS
    'Until unfollow_output() or the session ends, NOTIFY dispatch_job_<job> ''output'' '
    'for each chunk stored; LISTEN first, read after';

CREATE FUNCTION dispatch.unfollow_output(job bigint) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_advisory_unlock_shared(dispatch._follow_class(), dispatch._follow_key(job))
$$;
COMMENT ON FUNCTION dispatch.unfollow_output(bigint) IS
    'Undoes one follow_output(job) of this session; false when it held none';

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
        IF NOT pg_try_advisory_xact_lock(dispatch._follow_class(), dispatch._follow_key(job)) THEN
            PERFORM pg_notify('dispatch_job_' || job, 'output');    -- followed: see the header
        END IF;
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
