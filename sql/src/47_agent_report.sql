------------------------------------------------------------------------------
-- The batched report: the output and the ends of many jobs in one call
------------------------------------------------------------------------------
--
-- dispatch.agent_report(node, reports) takes a JSON array of reports, one per job
-- attempt: {"job_id", "attempt", "output": [{"stream", "offset", "data"}, ...],
-- "finish": {"exit_code", "signal", "timed_out", "detail"}}, both parts optional.
-- The whole array is checked first (its shape, dispatch.agent_report_max_batch
-- reports, dispatch.agent_report_max_size bytes): a malformed batch is refused whole
-- (22023, the detail naming the JSON path) and changes nothing.  Then the reports are
-- applied in job order (the order cancel_joblist locks jobs in) through the code of
-- agent_output and agent_finish, in one transaction and without subtransactions: a
-- report for an attempt that is not active on this node (stale, or another node's
-- job) is answered "stale", one whose output would leave a gap "rejected" (before
-- anything of it is stored), and neither stops the others.  A report with neither
-- part asks what agent_resume answers.  The answer is an array in the order of the
-- reports; docs/agent.md describes it.

CREATE FUNCTION dispatch._check_reports(reports jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    c record;
    f jsonb;
    fp text;
BEGIN
    PERFORM dispatch._json_typed('array', reports, '', 'reports');
    PERFORM dispatch._check_size(reports::text, 'dispatch.agent_report_max_size', '',
                                 'the batch');
    PERFORM dispatch._check_count(jsonb_array_length(reports),
                                  'dispatch.agent_report_max_batch', '', 'the batch', 'reports');
    FOR r IN SELECT e, format('[%s]', o - 1) AS p
               FROM jsonb_array_elements(reports) WITH ORDINALITY AS x(e, o) LOOP
        PERFORM dispatch._json_typed('object', r.e, r.p, 'a report');
        PERFORM dispatch._check_keys(r.e, ARRAY['job_id', 'attempt', 'output', 'finish'], r.p,
                                     'a report');
        PERFORM dispatch._require_key(r.e, 'job_id', r.p, 'a report');
        PERFORM dispatch._json_int(r.e -> 'job_id', 1, 9223372036854775807,
                                   dispatch._path(r.p, 'job_id'), 'job_id');
        PERFORM dispatch._require_key(r.e, 'attempt', r.p, 'a report');
        PERFORM dispatch._json_int(r.e -> 'attempt', 1, 2147483647,
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
        PERFORM dispatch._check_keys(f, ARRAY['exit_code', 'signal', 'timed_out', 'detail'], fp,
                                     'finish');
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
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._check_reports(jsonb) IS
    'Fails unless reports is a batch of reports agent_report accepts (shape and limits)';

CREATE FUNCTION dispatch._report_one(node text, report jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint := (report ->> 'job_id')::bigint;
    attempt int := (report ->> 'attempt')::int;
    answer jsonb := jsonb_build_object('job_id', job, 'attempt', attempt);
    j dispatch.jobs;
    refusal text;
    have bigint[];
    c record;
    f jsonb := report -> 'finish';
BEGIN
    SELECT * INTO j FROM dispatch.jobs x WHERE x.job_id = job FOR UPDATE;
    refusal := dispatch._attempt_refusal(j, node, job, attempt);
    IF refusal IS NOT NULL THEN
        RETURN answer || jsonb_build_object('status', 'stale', 'message', refusal);
    END IF;

    -- Every chunk must continue its stream or be stored already; check all first.
    have := ARRAY[dispatch._output_stored(j, 'stdout'), dispatch._output_stored(j, 'stderr')];
    FOR c IN SELECT e ->> 'stream' AS stream, (e ->> 'offset')::bigint AS "offset",
                    e ->> 'data' AS data, (e ->> 'stream' = 'stderr')::int + 1 AS s
               FROM jsonb_array_elements(coalesce(report -> 'output', '[]')) e LOOP
        CONTINUE WHEN j.output_truncated;
        CASE dispatch._chunk_fits(have[c.s], c."offset", octet_length(c.data))
            WHEN true THEN have[c.s] := c."offset" + octet_length(c.data);
            WHEN false THEN
                RETURN answer || jsonb_build_object('status', 'rejected', 'message',
                    dispatch._gap_message(job, c.stream, c."offset", have[c.s]));
            ELSE NULL;
        END CASE;
    END LOOP;
    PERFORM dispatch._store_output(j, e ->> 'stream', (e ->> 'offset')::bigint, e ->> 'data')
       FROM jsonb_array_elements(coalesce(report -> 'output', '[]')) WITH ORDINALITY AS x(e, o)
      ORDER BY o;

    SELECT * INTO j FROM dispatch.jobs x WHERE x.job_id = job;
    answer := answer || jsonb_build_object('status', 'accepted',
        'stdout', dispatch._output_stored(j, 'stdout'),
        'stderr', dispatch._output_stored(j, 'stderr'),
        'truncated', j.output_truncated, 'cancel', j.cancel_requested);
    IF f IS NOT NULL THEN
        answer := answer || jsonb_build_object('state', dispatch._report_finish(j,
            (f ->> 'exit_code')::int, (f ->> 'signal')::int,
            coalesce((f ->> 'timed_out')::boolean, false), f ->> 'detail'));
    END IF;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION dispatch._report_one(text, jsonb) IS
    'Applies one checked report of node; returns its answer (accepted, stale or rejected)';

CREATE FUNCTION dispatch.agent_report(node text, reports jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    answers jsonb[] := '{}';
    finished boolean := false;
    r record;
BEGIN
    PERFORM dispatch._check_reports(reports);
    FOR r IN SELECT e, o FROM jsonb_array_elements(reports) WITH ORDINALITY AS x(e, o)
              ORDER BY (e ->> 'job_id')::bigint, o LOOP
        answers[r.o] := dispatch._report_one(n.node, r.e);
        finished := finished OR answers[r.o] ? 'state';
    END LOOP;
    IF finished THEN
        PERFORM dispatch.wake_scheduler();
    END IF;
    RETURN to_jsonb(answers);
END
$$;
COMMENT ON FUNCTION dispatch.agent_report(text, jsonb) IS
    'Agent: report the output and the ends of many job attempts in one call; returns one '
    'answer per report (accepted, stale or rejected), in their order';
