------------------------------------------------------------------------------
-- Agent reports: the output and the ends of many jobs in one call
------------------------------------------------------------------------------
--
-- dispatch.agent_report(node, reports) takes a JSON array of reports, one per job
-- attempt: {"job_id", "attempt", "output": [{"stream", "offset", "data"}, ...],
-- "finish": {"exit_code", "signal", "timed_out", "detail"}}, both parts optional.
-- The whole array is checked first (its shape, dispatch.agent_report_max_batch
-- reports, dispatch.agent_report_max_size bytes): a malformed batch is refused whole
-- (22023, the detail naming the JSON path) and changes nothing.  Then the batch is
-- applied in one transaction, without subtransactions: its jobs are locked in job
-- order (the order cancel_joblist locks them in); a report for an attempt that is
-- not active on this node (stale, another node's job, or a job whose end is earlier
-- in the batch) is answered "stale", one whose output would leave a gap "rejected"
-- (nothing of it is stored), and neither stops the others; the ends are recorded
-- set-wise, a few statements for the whole batch.  A report with neither part asks
-- what agent_resume answers.  The answer is an array in the order of the reports
-- (agent/README.md).  The one-job calls of older agents, agent_output and
-- agent_finish, are one-report batches with their old errors (55000, 22023); their
-- typed arguments are checked by them, not as JSON.

-- Any batch an agent sends (reports, signal requests): an array within the batch
-- limits, dispatch.agent_report_max_batch items and dispatch.agent_report_max_size.
CREATE FUNCTION dispatch._check_agent_batch(batch jsonb, items text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM dispatch._json_typed('array', batch, '', items);
    PERFORM dispatch._check_size(batch::text, 'dispatch.agent_report_max_size', '', 'the batch');
    PERFORM dispatch._check_count(jsonb_array_length(batch), 'dispatch.agent_report_max_batch', '',
                                  'the batch', items);
END
$$;
COMMENT ON FUNCTION dispatch._check_agent_batch(jsonb, text) IS
    'Fails unless batch is a JSON array of items within the limits of one agent call';

CREATE FUNCTION dispatch._check_reports(reports jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    c record;
    f jsonb;
    fp text;
BEGIN
    PERFORM dispatch._check_agent_batch(reports, 'reports');
    FOR r IN SELECT e, format('[%s]', o - 1) AS p
               FROM jsonb_array_elements(reports) WITH ORDINALITY AS x(e, o) LOOP
        PERFORM dispatch._json_typed('object', r.e, r.p, 'a report');
        PERFORM dispatch._check_keys(r.e, ARRAY['job_id', 'attempt', 'output', 'finish'], r.p,
                                     'a report');
        PERFORM dispatch._require_key(r.e, 'job_id', r.p, 'a report');
        PERFORM dispatch._json_int(r.e -> 'job_id', -9223372036854775808, 9223372036854775807,
                                   dispatch._path(r.p, 'job_id'), 'job_id');
        PERFORM dispatch._require_key(r.e, 'attempt', r.p, 'a report');
        PERFORM dispatch._json_int(r.e -> 'attempt', -2147483648, 2147483647,
                                   dispatch._path(r.p, 'attempt'), 'attempt');
        FOR c IN SELECT * FROM dispatch._json_items(r.e, 'output', r.p, 'report', false) LOOP
            PERFORM dispatch._json_typed('object', c.item, c.item_path, 'an output chunk');
            PERFORM dispatch._check_keys(c.item, ARRAY['stream', 'offset', 'data'],
                                         c.item_path, 'an output chunk');
            PERFORM dispatch._json_choice(c.item -> 'stream', ARRAY['stdout', 'stderr'],
                                          dispatch._path(c.item_path, 'stream'),
                                          'stream must be "stdout" or "stderr"');
            PERFORM dispatch._require_key(c.item, 'offset', c.item_path, 'an output chunk');
            PERFORM dispatch._json_int(c.item -> 'offset', 0, 9223372036854775807,
                                       dispatch._path(c.item_path, 'offset'), 'offset');
            PERFORM dispatch._require_key(c.item, 'data', c.item_path, 'an output chunk');
            PERFORM dispatch._json_typed('string', c.item -> 'data',
                                         dispatch._path(c.item_path, 'data'), 'data');
        END LOOP;
        CONTINUE WHEN NOT r.e ? 'finish';
        fp := dispatch._path(r.p, 'finish');
        f := dispatch._json_typed('object', r.e -> 'finish', fp, 'finish');
        PERFORM dispatch._check_keys(f, ARRAY['exit_code', 'signal', 'timed_out', 'detail',
                                              'result', 'result_error', 'outputs_error'], fp, 'finish');
        PERFORM dispatch._json_int(f -> 'exit_code', -2147483648, 2147483647,
                                   dispatch._path(fp, 'exit_code'), 'exit_code')
          WHERE coalesce(f -> 'exit_code', 'null') <> 'null';
        PERFORM dispatch._json_int(f -> 'signal', 1, 2147483647,
                                   dispatch._path(fp, 'signal'), 'signal')
          WHERE coalesce(f -> 'signal', 'null') <> 'null';
        PERFORM dispatch._json_typed('boolean', f -> 'timed_out', dispatch._path(fp, 'timed_out'),
                                     'timed_out')
          WHERE f ? 'timed_out';
        PERFORM dispatch._json_text(f -> 'detail', dispatch._path(fp, 'detail'), 'detail',
                                    dispatch._agent_limit('finish detail')::int)
          WHERE coalesce(f -> 'detail', 'null') <> 'null';
        PERFORM dispatch._json_text(f -> 'result_error', dispatch._path(fp, 'result_error'),
                                    'result_error', dispatch._agent_limit('finish detail')::int)
          WHERE f ? 'result_error';
        PERFORM dispatch._json_text(f -> 'outputs_error', dispatch._path(fp, 'outputs_error'),
                                    'outputs_error', dispatch._agent_limit('finish detail')::int)
          WHERE f ? 'outputs_error';
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._check_reports(jsonb) IS
    'Fails unless reports is a batch of reports agent_report accepts (shape and limits)';

CREATE FUNCTION dispatch._end_reports(jobs bigint[], finishes jsonb[]) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    states text[] := '{}';
    done bigint[];
    finals text[];
    whys text[];
    r record;
BEGIN
    UPDATE dispatch.jobs x
       SET exit_code = (e.f ->> 'exit_code')::int, signal = (e.f ->> 'signal')::int,
           timed_out = coalesce((e.f ->> 'timed_out')::boolean, false),
           result = CASE WHEN dispatch._result_problem(e.f) IS NULL THEN e.f -> 'result' END,
           waiting_signal = NULL
      FROM unnest(jobs, finishes) AS e(job_id, f)
     WHERE x.job_id = e.job_id;
    FOR r IN SELECT x.job_id, x.cancel_requested, x.reason,
                    coalesce(dispatch._finish_reason(x, x.exit_code, x.signal, x.timed_out,
                                                     e.f ->> 'detail'),
                             dispatch._result_problem(e.f),
                             -- (a build job: its outputs must be in the store)
                             CASE WHEN x.builds IS NOT NULL THEN dispatch._build_problem(x, e.f) END) AS why
               FROM unnest(jobs, finishes) AS e(job_id, f) JOIN dispatch.jobs x USING (job_id)
              ORDER BY x.job_id LOOP
        IF r.cancel_requested OR r.why IS NULL THEN
            done := done || r.job_id;
            finals := finals || CASE WHEN r.cancel_requested THEN 'cancelled' ELSE 'succeeded' END;
            whys := whys || CASE WHEN r.cancel_requested THEN r.reason END;
            states := states || finals[cardinality(finals)];
        ELSE
            states := states || dispatch._end_attempt(r.job_id, 'failed', r.why);
        END IF;
    END LOOP;
    PERFORM dispatch._finish_jobs(done, finals, whys) WHERE done IS NOT NULL;
    RETURN states;
END
$$;
COMMENT ON FUNCTION dispatch._end_reports(bigint[], jsonb[]) IS
    'Records the ends of accepted reports (jobs in ascending order, locked, each with its '
    '"finish" object): exit codes, successes and cancels set-wise, failures one by one; '
    'returns each job''s state afterwards, in the same order';

CREATE FUNCTION dispatch._apply_reports(node text, reports jsonb) RETURNS jsonb[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    answers jsonb[] := '{}';
    end_jobs bigint[] := '{}';          -- the jobs whose accepted report has an end
                                        -- (in job order, each once),
    end_finishes jsonb[] := '{}';       -- those ends,
    end_at int[] := '{}';               -- the reports' ordinals
    states text[];                      -- and the jobs' states afterwards
    r record;
    why text;
BEGIN
    PERFORM 1 FROM dispatch.jobs j
     WHERE j.job_id = ANY (ARRAY(SELECT (e ->> 'job_id')::bigint FROM jsonb_array_elements(reports) e))
     ORDER BY j.job_id FOR UPDATE;
    FOR r IN SELECT x.o::int AS o, x.e, (x.e ->> 'job_id')::bigint AS job,
                    (x.e ->> 'attempt')::int AS attempt,
                    (SELECT j FROM dispatch.jobs j WHERE j.job_id = (x.e ->> 'job_id')::bigint) AS j
               FROM jsonb_array_elements(reports) WITH ORDINALITY AS x(e, o)
              ORDER BY 3, 1 LOOP
        answers[r.o] := jsonb_build_object('job_id', r.job, 'attempt', r.attempt);
        why := CASE WHEN end_jobs[cardinality(end_jobs)] = r.job  -- the reports come in job order
                    THEN format('The end of job %s is earlier in this batch.', r.job)
                    ELSE dispatch._attempt_refusal(r.j, node, r.job, r.attempt) END;
        IF why IS NOT NULL THEN
            answers[r.o] := answers[r.o] || jsonb_build_object('status', 'stale', 'message', why);
            CONTINUE;
        END IF;
        why := dispatch._store_chunks(r.j, r.e -> 'output') WHERE r.e ? 'output';
        IF why IS NOT NULL THEN
            answers[r.o] := answers[r.o] || jsonb_build_object('status', 'rejected', 'message', why);
            CONTINUE;
        END IF;
        answers[r.o] := answers[r.o] || jsonb_build_object('status', 'accepted',
            'cancel', (r.j).cancel_requested);
        IF r.e ? 'finish' THEN
            end_jobs := end_jobs || r.job;
            end_finishes := end_finishes || (r.e -> 'finish');
            end_at := end_at || r.o;
        END IF;
        IF r.e ? 'output' OR NOT r.e ? 'finish' THEN
            answers[r.o] := answers[r.o] || (SELECT jsonb_build_object(
                'stdout', dispatch._output_stored(x, 'stdout'),
                'stderr', dispatch._output_stored(x, 'stderr'), 'truncated', x.output_truncated)
                FROM dispatch.jobs x WHERE x.job_id = r.job);
        END IF;
    END LOOP;
    IF cardinality(end_jobs) > 0 THEN
        states := dispatch._end_reports(end_jobs, end_finishes);
        FOR i IN 1 .. cardinality(end_jobs) LOOP
            answers[end_at[i]] := answers[end_at[i]] || jsonb_build_object('state', states[i]);
        END LOOP;
        PERFORM dispatch.wake_scheduler();
    END IF;
    RETURN answers;
END
$$;
COMMENT ON FUNCTION dispatch._apply_reports(text, jsonb) IS
    'Applies a checked batch of reports of node (the caller checked that it acts for node); '
    'returns the answers in the order of the reports';

CREATE FUNCTION dispatch.agent_report(node text, reports jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    PERFORM dispatch._check_reports(reports);
    RETURN to_jsonb(dispatch._apply_reports(n.node, reports));
END
$$;
COMMENT ON FUNCTION dispatch.agent_report(text, jsonb) IS
    'Agent: report the output and the ends of many job attempts in one call; returns one '
    'answer per report (accepted, stale or rejected), in their order';

CREATE FUNCTION dispatch._report(node text, report jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    answer jsonb;
BEGIN
    PERFORM dispatch._agent_node(node);
    answer := (dispatch._apply_reports(node, jsonb_build_array(report)))[1];
    IF answer ->> 'status' = 'stale' THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('report for job %s attempt %s from node "%s" refused',
                             report -> 'job_id', report -> 'attempt', node),
            DETAIL = answer ->> 'message';
    ELSIF answer ->> 'status' = 'rejected' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = answer ->> 'message',
            HINT = 'Send output from the stored length returned by dispatch.agent_resume().';
    END IF;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION dispatch._report(text, jsonb) IS
    'One report built from the typed arguments of a one-job call (checked by it): its '
    'accepted answer, else the error of a stale attempt (55000) or of a gap (22023)';

CREATE FUNCTION dispatch.agent_output(node text, job bigint, attempt int, stream text,
                                      "offset" bigint, data text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    answer jsonb;
BEGIN
    PERFORM dispatch._check_stream(stream);
    PERFORM dispatch._check_not_null("offset", 'offset'), dispatch._check_not_null(data, 'data');
    answer := dispatch._report(node, jsonb_build_object('job_id', job, 'attempt', attempt,
        'output', jsonb_build_array(jsonb_build_object('stream', stream, 'offset', "offset",
                                                       'data', data))));
    RETURN CASE WHEN (answer ->> 'truncated')::boolean THEN -1
                ELSE (answer ->> stream)::bigint END;
END
$$;
COMMENT ON FUNCTION dispatch.agent_output(text, bigint, int, text, bigint, text) IS
    'Agent (one chunk per call; agent_report batches): store a chunk of job output; returns '
    'the stored length, -1 once truncated';

CREATE FUNCTION dispatch.agent_finish(node text, job bigint, attempt int, exit_code int,
                                      signal int, timed_out boolean, detail text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF length(detail) > dispatch._agent_limit('finish detail') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('detail is longer than %s characters',
                             dispatch._agent_limit('finish detail'));
    END IF;
    RETURN dispatch._report(node, jsonb_build_object('job_id', job, 'attempt', attempt,
        'finish', jsonb_strip_nulls(jsonb_build_object('exit_code', exit_code,
            'signal', signal, 'timed_out', coalesce(timed_out, false), 'detail', detail))))
        ->> 'state';
END
$$;
COMMENT ON FUNCTION dispatch.agent_finish(text, bigint, int, int, int, boolean, text) IS
    'Agent (one job per call; agent_report batches): report how a job attempt ended; returns '
    'the job state afterwards';
