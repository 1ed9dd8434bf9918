------------------------------------------------------------------------------
-- Job output: chunks at byte offsets, streamed while the job runs
------------------------------------------------------------------------------
--
-- The agent sends output in chunks at byte offsets (in its reports,
-- 47_agent_report.sql, through _store_chunks); a chunk sent again after a reconnect
-- is acknowledged without being stored twice, one that would leave a gap is refused,
-- and output beyond dispatch.max_output_bytes is cut at a character boundary and
-- marked truncated.  job_log() reads it back.  Output is private: only the job's
-- submitter and admins read it, through job_log() or the table (row-level security).
--
-- Followers (dispatchctl logs -f, dispatch-web's listener) call follow_output(job),
-- any dispatch_user for any job, at most _max_follows() per session: a shared
-- session advisory lock on the job's key.  _store_chunks() (every report of output)
-- tries the same lock, exclusive, for its transaction; only when that fails (someone
-- follows) does it NOTIFY dispatch_job_<id> "output", so output nobody follows costs
-- no NOTIFY (a NOTIFY serialises commits cluster-wide).  The lock is also the barrier against a
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
ALTER TABLE dispatch.job_output ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_output_read ON dispatch.job_output FOR SELECT
    USING (dispatch._caller_may_read_job(job_id));

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

CREATE FUNCTION dispatch._readable_job(job bigint) RETURNS dispatch.jobs
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    SELECT * INTO j FROM dispatch.jobs x WHERE x.job_id = job;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('job %s does not exist', job);
    END IF;
    IF NOT dispatch._caller_may_read_job(job) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for the output of job %s', job),
            DETAIL = 'A job''s output is readable by its submitter and by members of dispatch_admin.';
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION dispatch._readable_job(bigint) IS
    'The row of job, when the caller may read its output (its submitter or an admin); '
    'fails otherwise';

CREATE FUNCTION dispatch.job_log(job bigint, stream text DEFAULT 'stdout',
                                 attempt int DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs := dispatch._readable_job(job);
    out text;
BEGIN
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
    'Output of a job stored so far (current attempt unless one is given); for its submitter '
    'and admins only';

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

CREATE FUNCTION dispatch._max_follows() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 256                  -- dispatch-web's listener follows for all its clients
$$;
COMMENT ON FUNCTION dispatch._max_follows() IS
    'How many jobs one session may follow at once (follow_output)';

CREATE FUNCTION dispatch.follow_output(job bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s' AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM dispatch.jobs x WHERE x.job_id = job) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('job %s does not exist', job);
    END IF;
    -- A follower makes each chunk of the job cost a NOTIFY (what it learns, that output
    -- was stored, job_status.output_bytes shows everyone), so a session follows few.
    IF (SELECT count(*) FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
           AND l.classid = dispatch._follow_class()::oid AND l.objsubid = 2
           AND l.objid <> dispatch._follow_key(job)::oid) >= dispatch._max_follows() THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
            MESSAGE = format('this session follows %s jobs already', dispatch._max_follows()),
            HINT = 'Call dispatch.unfollow_output() for a job you no longer watch.';
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

CREATE FUNCTION dispatch._store_chunks(j dispatch.jobs, chunks jsonb) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    have bigint[] := ARRAY[dispatch._output_stored(j, 'stdout'), dispatch._output_stored(j, 'stderr')];
    next bigint[] := have;
    bytes bigint;
    cut boolean;
    chunk text;
    stored_any boolean := false;
    c record;
BEGIN
    SELECT x.output_bytes, x.output_truncated INTO bytes, cut
      FROM dispatch.jobs x WHERE x.job_id = j.job_id;
    IF cut THEN
        RETURN NULL;                    -- the output limit was reached: nothing more is kept
    END IF;
    -- Every chunk must continue its stream or be stored already: check them all first.
    FOR c IN SELECT e ->> 'stream' AS stream, (e ->> 'offset')::bigint AS "offset",
                    e ->> 'data' AS data, (e ->> 'stream' = 'stderr')::int + 1 AS s
               FROM jsonb_array_elements(chunks) e LOOP
        CASE dispatch._chunk_fits(next[c.s], c."offset", octet_length(c.data))
            WHEN true THEN next[c.s] := c."offset" + octet_length(c.data);
            WHEN false THEN RETURN dispatch._gap_message(j.job_id, c.stream, c."offset", next[c.s]);
            ELSE NULL;
        END CASE;
    END LOOP;
    FOR c IN SELECT e ->> 'stream' AS stream, (e ->> 'offset')::bigint AS "offset",
                    e ->> 'data' AS data, (e ->> 'stream' = 'stderr')::int + 1 AS s
               FROM jsonb_array_elements(chunks) e LOOP
        -- a chunk sent again after a reconnect is acknowledged, not stored twice
        CONTINUE WHEN cut OR dispatch._chunk_fits(have[c.s], c."offset", octet_length(c.data)) IS NULL;
        chunk := c.data;
        IF octet_length(chunk) > dispatch._setting_bytes('dispatch.max_output_bytes') - bytes THEN
            chunk := dispatch._utf8_prefix(chunk, greatest(
                dispatch._setting_bytes('dispatch.max_output_bytes') - bytes, 0));
            cut := true;
        END IF;
        IF chunk <> '' THEN
            INSERT INTO dispatch.job_output (job_id, attempt, stream, "offset", data)
            VALUES (j.job_id, j.attempt, c.stream, c."offset", chunk);
        END IF;
        bytes := bytes + octet_length(chunk);
        have[c.s] := c."offset" + octet_length(c.data);
        stored_any := stored_any OR chunk <> '';
    END LOOP;
    IF stored_any AND NOT pg_try_advisory_xact_lock(dispatch._follow_class(),
                                                    dispatch._follow_key(j.job_id)) THEN
        PERFORM pg_notify('dispatch_job_' || j.job_id, 'output');   -- followed: see the header
    END IF;
    UPDATE dispatch.jobs x SET output_bytes = bytes, output_truncated = cut
     WHERE x.job_id = j.job_id AND (x.output_bytes, x.output_truncated) <> (bytes, cut);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._store_chunks(dispatch.jobs, jsonb) IS
    'Stores the output chunks (checked JSON) of the locked job j, cut at dispatch.max_output_bytes; '
    'returns NULL, or why nothing was stored (a chunk would leave a gap)';
