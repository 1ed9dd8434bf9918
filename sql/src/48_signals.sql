------------------------------------------------------------------------------
-- Signals: continuations that wait for a named, durable signal
------------------------------------------------------------------------------
--
-- A running job pauses with `dispatch-agent wait NAME`, keeping its process, its
-- memory and its resources, until a signal NAME of its joblist arrives: sent in SQL
-- with dispatch.signal(joblist, name, payload) by the joblist's submitter or an
-- admin, or by another job of the joblist with `dispatch-agent signal NAME JSON`.
-- Signals are rows: durable (they survive agent restarts and failovers), queued in
-- the order sent (a signal sent before the wait waits for it), each delivered to
-- exactly one wait request, which gets the same payload however often its agent asks
-- again.  The agent relays its jobs' requests with agent_signals(): a wait either
-- takes the oldest undelivered signal of its name or records the job as waiting
-- (jobs.waiting_signal, shown by job_status); a signal sent to a waiting job's
-- joblist wakes that job's agent with NOTIFY 'signal'.  A job can signal only its own
-- joblist, a user only the joblists they may cancel; a joblist holds at most
-- _signal_limit() undelivered signals and a payload at most dispatch.max_signal_size.

CREATE TABLE dispatch.signals (
    signal_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    joblist_id      bigint NOT NULL REFERENCES dispatch.joblists ON DELETE CASCADE,
    name            text NOT NULL,
    payload         jsonb NOT NULL DEFAULT 'null',
    sent_by         text NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- a job's signal, once per request of that attempt
    from_job        bigint,
    from_attempt    int,
    from_request    text,
    -- the wait request it went to
    to_job          bigint,
    to_attempt      int,
    to_request      text,
    delivered_at    timestamptz,
    UNIQUE (from_job, from_attempt, from_request),
    UNIQUE (to_job, to_attempt, to_request)
);
CREATE INDEX signals_open_idx ON dispatch.signals (joblist_id, name, signal_id)
    WHERE delivered_at IS NULL;
COMMENT ON TABLE dispatch.signals IS
    'Signals sent to joblists, and the wait request each went to';

CREATE FUNCTION dispatch._signal_limit() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 1000
$$;
COMMENT ON FUNCTION dispatch._signal_limit() IS
    'The most undelivered signals one joblist may hold';

-- Why a signal cannot be sent (NULL: it can), for both senders.
CREATE FUNCTION dispatch._signal_refusal(jl dispatch.joblists, name text, payload jsonb)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN name IS NULL OR name !~ '^[A-Za-z0-9_.:-]{1,200}$'
            THEN format('invalid signal name "%s"', name)
        WHEN jl.state NOT IN ('queued', 'running')
            THEN format('joblist %s has finished (%s)', jl.joblist_id, jl.state)
        WHEN octet_length(coalesce(payload, 'null')::text)
             > dispatch._setting_bytes('dispatch.max_signal_size')
            THEN format('the payload is %s bytes, more than dispatch.max_signal_size = %s allows',
                        octet_length(payload::text), current_setting('dispatch.max_signal_size'))
        WHEN (SELECT count(*) FROM dispatch.signals s
               WHERE s.joblist_id = jl.joblist_id AND s.delivered_at IS NULL)
             >= dispatch._signal_limit()
            THEN format('joblist %s already holds %s undelivered signals', jl.joblist_id,
                        dispatch._signal_limit())
    END
$$;
COMMENT ON FUNCTION dispatch._signal_refusal(dispatch.joblists, text, jsonb) IS
    'Why signal name with payload cannot be sent to joblist jl; NULL when it can';

-- Wakes the agents of the jobs of jl that wait for name.
CREATE FUNCTION dispatch._wake_waiters(jl bigint, name text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_notify('dispatch_node_' || n.node, 'signal')
      FROM (SELECT DISTINCT j.node FROM dispatch.jobs j
             WHERE j.joblist_id = jl AND j.waiting_signal = _wake_waiters.name
               AND j.state = 'running') n
$$;
COMMENT ON FUNCTION dispatch._wake_waiters(bigint, text) IS
    'Tells the nodes of the jobs of joblist jl that wait for signal name';

CREATE FUNCTION dispatch.signal(joblist bigint, name text, payload jsonb DEFAULT 'null')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jl dispatch.joblists;
    why text;
    id bigint;
BEGIN
    SELECT * INTO jl FROM dispatch.joblists l WHERE l.joblist_id = joblist;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('joblist %s does not exist', joblist);
    END IF;
    PERFORM dispatch._check_may_cancel(jl, 'signal');
    why := dispatch._signal_refusal(jl, name, payload);
    IF why LIKE 'invalid%' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = why,
            HINT = 'A signal name is 1 to 200 letters, digits, "_", ".", ":" or "-".';
    ELSIF why IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = why;
    END IF;
    INSERT INTO dispatch.signals (joblist_id, name, payload, sent_by)
    VALUES (jl.joblist_id, name, coalesce(payload, 'null'), dispatch.current_caller())
    RETURNING signal_id INTO id;
    PERFORM dispatch._wake_waiters(jl.joblist_id, name);
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch.signal(bigint, text, jsonb) IS
    'Sends signal name with payload to a joblist: the oldest wait for it gets it, or the '
    'next one (its submitter and admins); returns the signal id';

CREATE FUNCTION dispatch._check_signal_requests(requests jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM dispatch._check_agent_batch(requests, 'requests');
    FOR r IN SELECT e, format('[%s]', o - 1) AS p
               FROM jsonb_array_elements(requests) WITH ORDINALITY AS x(e, o) LOOP
        PERFORM dispatch._json_typed('object', r.e, r.p, 'a request');
        PERFORM dispatch._check_keys(r.e, ARRAY['job_id', 'attempt', 'id', 'wait', 'signal',
                                                'payload'], r.p, 'a request');
        PERFORM dispatch._require_key(r.e, 'job_id', r.p, 'a request');
        PERFORM dispatch._json_int(r.e -> 'job_id', 1, 9223372036854775807,
                                   dispatch._path(r.p, 'job_id'), 'job_id');
        PERFORM dispatch._require_key(r.e, 'attempt', r.p, 'a request');
        PERFORM dispatch._json_int(r.e -> 'attempt', 1, 2147483647,
                                   dispatch._path(r.p, 'attempt'), 'attempt');
        PERFORM dispatch._require_key(r.e, 'id', r.p, 'a request');
        IF jsonb_typeof(r.e -> 'id') IS DISTINCT FROM 'string'
           OR r.e ->> 'id' !~ '^[A-Za-z0-9_.-]{1,64}$' THEN
            PERFORM dispatch._spec_error(dispatch._path(r.p, 'id'),
                'id must be 1 to 64 letters, digits, "_", "." or "-"');
        END IF;
        IF (r.e ? 'wait') = (r.e ? 'signal') THEN
            PERFORM dispatch._spec_error(r.p, 'a request has "wait" or "signal", and not both');
        END IF;
        PERFORM dispatch._json_text(coalesce(r.e -> 'wait', r.e -> 'signal'),
            dispatch._path(r.p, CASE WHEN r.e ? 'wait' THEN 'wait' ELSE 'signal' END),
            'the signal name');
        IF r.e ? 'payload' AND r.e ? 'wait' THEN
            PERFORM dispatch._spec_error(dispatch._path(r.p, 'payload'),
                'a wait request has no payload');
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._check_signal_requests(jsonb) IS
    'Fails unless requests is a batch of wait and signal requests agent_signals accepts';

-- One wait request of an active attempt: the signal it already got, the oldest
-- undelivered one of its name (now its own), or nothing (the job is shown waiting).
CREATE FUNCTION dispatch._wait_for(j dispatch.jobs, request text, name text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s dispatch.signals;
BEGIN
    SELECT * INTO s FROM dispatch.signals x
     WHERE x.to_job = j.job_id AND x.to_attempt = j.attempt AND x.to_request = request;
    IF NOT FOUND THEN
        SELECT * INTO s FROM dispatch.signals x
         WHERE x.joblist_id = j.joblist_id AND x.name = _wait_for.name AND x.delivered_at IS NULL
         ORDER BY x.signal_id LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF s.signal_id IS NULL THEN
        UPDATE dispatch.jobs SET waiting_signal = _wait_for.name WHERE job_id = j.job_id;
        RETURN jsonb_build_object('status', 'waiting');
    END IF;
    UPDATE dispatch.signals
       SET to_job = j.job_id, to_attempt = j.attempt, to_request = request,
           delivered_at = coalesce(delivered_at, now())
     WHERE signal_id = s.signal_id;
    UPDATE dispatch.jobs SET waiting_signal = NULL
     WHERE job_id = j.job_id AND waiting_signal IS NOT NULL;
    RETURN jsonb_build_object('status', 'delivered', 'payload', s.payload);
END
$$;
COMMENT ON FUNCTION dispatch._wait_for(dispatch.jobs, text, text) IS
    'Answers one wait request of job j''s attempt: delivered (with the payload) or waiting';

CREATE FUNCTION dispatch.agent_signals(node text, requests jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    answers jsonb := '[]';
    r record;
    j dispatch.jobs;
    l dispatch.joblists;
    why text;
    answer jsonb;
BEGIN
    PERFORM dispatch._check_signal_requests(requests);
    PERFORM 1 FROM dispatch.jobs x
     WHERE x.job_id = ANY (ARRAY(SELECT (e ->> 'job_id')::bigint FROM jsonb_array_elements(requests) e))
     ORDER BY x.job_id FOR UPDATE;
    FOR r IN SELECT e, (e ->> 'job_id')::bigint AS job, (e ->> 'attempt')::int AS attempt,
                    e ->> 'id' AS id
               FROM jsonb_array_elements(requests) WITH ORDINALITY AS x(e, o) ORDER BY o LOOP
        SELECT * INTO j FROM dispatch.jobs x WHERE x.job_id = r.job;
        why := dispatch._attempt_refusal(j, n.node, r.job, r.attempt);
        IF why IS NOT NULL THEN
            answer := jsonb_build_object('status', 'stale', 'message', why);
        ELSIF r.e ? 'wait' THEN
            answer := dispatch._wait_for(j, r.id, r.e ->> 'wait');
        ELSE
            SELECT * INTO l FROM dispatch.joblists x WHERE x.joblist_id = j.joblist_id;
            IF EXISTS (SELECT FROM dispatch.signals s
                        WHERE s.from_job = j.job_id AND s.from_attempt = j.attempt
                          AND s.from_request = r.id) THEN
                answer := jsonb_build_object('status', 'sent');
            ELSE
                why := dispatch._signal_refusal(l, r.e ->> 'signal', r.e -> 'payload');
                IF why IS NOT NULL THEN
                    answer := jsonb_build_object('status', 'refused', 'message', why);
                ELSE
                    INSERT INTO dispatch.signals (joblist_id, name, payload, sent_by, from_job,
                                                  from_attempt, from_request)
                    VALUES (l.joblist_id, r.e ->> 'signal', coalesce(r.e -> 'payload', 'null'),
                            format('job %s', j.job_id), j.job_id, j.attempt, r.id);
                    PERFORM dispatch._wake_waiters(l.joblist_id, r.e ->> 'signal');
                    answer := jsonb_build_object('status', 'sent');
                END IF;
            END IF;
        END IF;
        answers := answers || jsonb_build_array(jsonb_build_object('id', r.id) || answer);
    END LOOP;
    RETURN answers;
END
$$;
COMMENT ON FUNCTION dispatch.agent_signals(text, jsonb) IS
    'Agent: relay the wait and signal requests of the node''s jobs, many in one call; '
    'returns one answer per request (delivered, waiting, sent, stale or refused), in order';
