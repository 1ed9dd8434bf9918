------------------------------------------------------------------------------
-- Data flows, at run time: moving a joblist on through its graph and stages
------------------------------------------------------------------------------
--
-- A pending job may be held at a gate (jobs.held) that the scheduler's queue does
-- not see (_runnable): "after" until every job of the tasks it runs after has ended,
-- "group" until its group is placed, "slot" until its array has a free slot.  The
-- scheduler's housekeeping calls _advance_joblist() for each joblist whose jobs
-- changed, with the joblist's row and its unfinished jobs locked; it settles the
-- joblist, pass after pass until nothing moves:
--   1. the pending on_success jobs downstream of a job that went wrong end skipped
--      at once, however much of their upstream still runs; the first job that went
--      wrong (failed, lost, cancelled) is recorded as the joblist's failure and,
--      under fail_fast, every other unfinished job cancelled except those that run
--      after failures (when: on_failure, always);
--   2. a job whose upstream has ended is judged by its condition: it goes on to its
--      next gate, or ends skipped (upstream_failed when on_success saw a failure); a
--      for_each job is replaced by one cell per item of its source's result;
--   3. a group's held jobs follow its first job to the node it was placed on (a
--      constraint node=...), or one of them is let go to be that first job; a group
--      with a reservation queues it, then runs in it (39_reserve.sql);
--   4. an array lets as many cells go as its throttle has free slots;
--   5. a stage with no unfinished job hands over to the next, whose jobs are judged
--      against it (stages are sugar: each job is after the whole stage before), or the
--      joblist ends: failed when anything went wrong, else succeeded.
-- A job that went wrong is one that failed, was lost or cancelled, or was skipped for
-- an upstream failure.  on_success runs when nothing upstream went wrong (a job
-- skipped because it was not needed, such as an unneeded on_failure job, is fine),
-- on_failure when something did, always when everything upstream has ended.  Every
-- job it lets go is queued for the scheduler as a changed job, so that the cost is
-- that of what moved.  A joblist timeout acts like a failure that also stops what
-- runs (_expire_joblists, 50_scheduler.sql calls it).

-- Inlined into the queries below (no SET clause).
CREATE FUNCTION dispatch._went_wrong(state text, upstream_failed boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT state IN ('failed', 'lost', 'cancelled') OR upstream_failed
$$;
COMMENT ON FUNCTION dispatch._went_wrong(text, boolean) IS
    'Whether a job in state (skipped for an upstream failure when upstream_failed) went wrong';

CREATE FUNCTION dispatch._wrong_reason(name text, state text, reason text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('job "%s" %s', name, CASE state WHEN 'failed' THEN coalesce(reason, 'failed')
                                                 WHEN 'skipped' THEN 'was skipped'
                                                 ELSE state END)
$$;
COMMENT ON FUNCTION dispatch._wrong_reason(text, text, text) IS
    'How a joblist''s reason names a job that went wrong';

-- Cancels the unfinished jobs of joblist jl that a failure stops: all, or (protect)
-- all but those whose condition runs them after failures.
CREATE FUNCTION dispatch._cancel_unprotected(jl bigint, why text, protect boolean)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    FOR j IN SELECT * FROM dispatch.jobs
              WHERE joblist_id = jl AND state IN ('pending', 'assigned', 'running')
                AND NOT (protect AND condition IN ('on_failure', 'always'))
                -- asked already: a second update of the row in this transaction would
                -- lock its node's row too (the foreign key check), which agent_offline
                -- may hold while it waits for this job
                AND NOT (state = 'running' AND cancel_requested)
              ORDER BY job_id LOOP
        PERFORM dispatch._cancel_one(j, why);
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._cancel_unprotected(bigint, text, boolean) IS
    'Cancels the unfinished jobs of joblist jl, except (protect) those that run after failures';

-- Skips every pending job of joblist jl whose condition can no longer hold: the
-- on_success jobs after a task that went wrong, and after those, transitively
-- (a job that runs after failures stops the chain: it still runs).  Returns whether
-- any was skipped.
CREATE FUNCTION dispatch._skip_descendants(jl bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    skip bigint[];
    whys text[];
BEGIN
    -- only a job still held at a gate can be downstream of what went wrong (one let
    -- go saw its upstream end well); most joblists have none and stop here
    IF NOT EXISTS (SELECT FROM dispatch.jobs j
                    WHERE j.joblist_id = jl AND j.state = 'pending' AND j.held IS NOT NULL) THEN
        RETURN false;
    END IF;
    WITH RECURSIVE bad(task, why) AS (
        (SELECT DISTINCT ON (j.task) j.task, dispatch._wrong_reason(j.name, j.state, j.reason)
           FROM dispatch.jobs j
          WHERE j.joblist_id = jl AND j.task IS NOT NULL
            AND dispatch._went_wrong(j.state, j.upstream_failed)
          ORDER BY j.task, j.job_id)
        UNION
        SELECT d.task, b.why
          FROM bad b JOIN dispatch.jobs d
            ON d.joblist_id = jl AND b.task = ANY (d.after)
         WHERE d.state = 'pending' AND d.held IS NOT NULL AND d.condition = 'on_success')
    SELECT array_agg(d.job_id ORDER BY d.job_id), array_agg(w.why ORDER BY d.job_id)
      INTO skip, whys
      FROM dispatch.jobs d
      CROSS JOIN LATERAL (SELECT min(b.why) AS why FROM bad b WHERE b.task = ANY (d.after)) w
     WHERE d.joblist_id = jl AND d.state = 'pending' AND d.held IS NOT NULL
       AND d.condition = 'on_success'
       AND d.after && ARRAY(SELECT b.task FROM bad b);
    IF skip IS NULL THEN
        RETURN false;
    END IF;
    UPDATE dispatch.jobs SET upstream_failed = true WHERE job_id = ANY (skip);
    PERFORM dispatch._finish_jobs(skip, array_fill('skipped'::text, ARRAY[cardinality(skip)]),
        ARRAY(SELECT 'skipped: ' || w FROM unnest(whys) AS w));
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch._skip_descendants(bigint) IS
    'Ends skipped every pending on_success job of joblist jl downstream of a job that went '
    'wrong; returns whether any was';

-- Lets the jobs go (the scheduler sees them as changed), with their new gate.
CREATE FUNCTION dispatch._let_go(jobs bigint[], gates text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE dispatch.jobs j
       SET held = g.gate,
           reason = CASE WHEN g.gate IS NULL THEN 'waiting for the scheduler'
                         ELSE dispatch._held_reason(g.gate, jsonb_build_object(
                                  'group', j.group_name, '_parallel', j.parallel, '_task', j.task))
                    END
      FROM unnest(jobs, gates) AS g(job_id, gate)
     WHERE j.job_id = g.job_id;
    INSERT INTO dispatch._sched_changes (kind, id, joblist_id)
    SELECT 'job', j.job_id, j.joblist_id FROM dispatch.jobs j
     WHERE j.job_id = ANY (jobs) AND j.held IS NULL;
END
$$;
COMMENT ON FUNCTION dispatch._let_go(bigint[], text[]) IS
    'Moves held jobs on to their next gates (NULL: the scheduler''s queue, which is told)';

-- The gate a job meets after the one it passed: its group's, its array's, or none.
CREATE FUNCTION dispatch._next_gate(after_gate text, group_name text, parallel int) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN after_gate = 'after' AND group_name IS NOT NULL THEN 'group'
                WHEN after_gate IN ('after', 'group') AND parallel IS NOT NULL THEN 'slot' END
$$;
COMMENT ON FUNCTION dispatch._next_gate(text, text, int) IS
    'The gate after after_gate for a job with group_name and array throttle parallel';

-- Step 2: judges the jobs of the current stage held at "after" whose upstream has
-- ended (and, at a stage's start, its jobs that are not: stage_start); returns
-- whether any moved.
CREATE FUNCTION dispatch._judge(jl dispatch.joblists, stage_start boolean) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    prev_wrong text;
    r record;
    go_jobs bigint[] := '{}';
    go_gates text[] := '{}';
    skip_jobs bigint[] := '{}';
    skip_whys text[] := '{}';
    skip_failed bigint[] := '{}';
    fans bigint[] := '{}';
    runs boolean;
BEGIN
    IF jl.current_stage > 0 THEN
        SELECT dispatch._wrong_reason(j.name, j.state, j.reason) INTO prev_wrong
          FROM dispatch.jobs j
         WHERE j.joblist_id = jl.joblist_id AND j.stage = jl.current_stage - 1
           AND dispatch._went_wrong(j.state, j.upstream_failed)
         ORDER BY j.job_id LIMIT 1;
    END IF;
    FOR r IN SELECT h.job_id, h.condition, h.for_each, h.held, h.group_name, h.parallel,
                    coalesce((SELECT dispatch._wrong_reason(u.name, u.state, u.reason)
                                FROM dispatch.jobs u
                               WHERE u.joblist_id = h.joblist_id AND u.task = ANY (h.after)
                                 AND dispatch._went_wrong(u.state, u.upstream_failed)
                               ORDER BY u.job_id LIMIT 1), prev_wrong) AS wrong
               FROM dispatch.jobs h
              WHERE h.joblist_id = jl.joblist_id AND h.stage = jl.current_stage
                AND h.state = 'pending'
                AND (h.held = 'after' AND NOT EXISTS (
                         SELECT FROM dispatch.jobs u
                          WHERE u.joblist_id = h.joblist_id AND u.task = ANY (h.after)
                            AND u.state IN ('pending', 'assigned', 'running'))
                     OR stage_start AND h.held IS DISTINCT FROM 'after'
                        AND (h.condition <> 'on_success' OR prev_wrong IS NOT NULL))
              ORDER BY h.job_id LOOP
        runs := CASE r.condition WHEN 'on_success' THEN r.wrong IS NULL
                                 WHEN 'on_failure' THEN r.wrong IS NOT NULL ELSE true END;
        IF runs THEN
            IF r.held IS DISTINCT FROM 'after' THEN
                CONTINUE;               -- at a stage's start: free to run, as it is
            ELSIF r.for_each IS NOT NULL THEN
                fans := fans || r.job_id;
            ELSE
                go_jobs := go_jobs || r.job_id;
                go_gates := go_gates || dispatch._next_gate('after', r.group_name, r.parallel);
            END IF;
        ELSE
            skip_jobs := skip_jobs || r.job_id;
            skip_whys := skip_whys || CASE WHEN r.condition = 'on_success'
                                           THEN format('skipped: %s', r.wrong)
                                           ELSE 'skipped: nothing it runs after went wrong' END;
            IF r.condition = 'on_success' THEN
                skip_failed := skip_failed || r.job_id;
            END IF;
        END IF;
    END LOOP;
    IF cardinality(skip_jobs) > 0 THEN
        UPDATE dispatch.jobs SET held = NULL, upstream_failed = job_id = ANY (skip_failed)
         WHERE job_id = ANY (skip_jobs);
        PERFORM dispatch._finish_jobs(skip_jobs,
            array_fill('skipped'::text, ARRAY[cardinality(skip_jobs)]), skip_whys);
    END IF;
    IF cardinality(go_jobs) > 0 THEN
        PERFORM dispatch._let_go(go_jobs, go_gates);
    END IF;
    FOR i IN 1 .. cardinality(fans) LOOP
        PERFORM dispatch._fan_out(fans[i]);
    END LOOP;
    RETURN cardinality(skip_jobs) + cardinality(go_jobs) + cardinality(fans) > 0;
END
$$;
COMMENT ON FUNCTION dispatch._judge(dispatch.joblists, boolean) IS
    'Lets go, skips or fans out the jobs of jl''s current stage whose upstream has ended '
    '(stage_start: also its ungated jobs, against the stage before); true when any moved';

-- Step 3: a group's held jobs follow its first placed job, or one goes first.
CREATE FUNCTION dispatch._place_groups(jl dispatch.joblists) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record;
    pin text;
    moved boolean := false;
    first bigint;
    r dispatch.jobs;
BEGIN
    FOR g IN SELECT DISTINCT h.group_name FROM dispatch.jobs h
              WHERE h.joblist_id = jl.joblist_id AND h.stage = jl.current_stage
                AND h.state = 'pending' AND h.held = 'group' AND h.reserves IS NULL
              ORDER BY 1 LOOP
        -- a group with a reservation (39_reserve.sql) that has not ended: it queues
        -- once a job of the group is ready, and lends to them once placed
        SELECT * INTO r FROM dispatch.jobs h
         WHERE h.joblist_id = jl.joblist_id AND h.reserves = g.group_name
           AND h.state IN ('pending', 'assigned', 'running');
        IF r.job_id IS NOT NULL THEN
            IF r.state = 'pending' AND r.held = 'group' THEN
                PERFORM dispatch._let_go(ARRAY[r.job_id], ARRAY[NULL::text]);
                moved := true;
            ELSIF r.state = 'assigned' THEN
                moved := dispatch._lend(r) OR moved;
            END IF;
            CONTINUE;
        END IF;
        SELECT j.node INTO pin FROM dispatch.jobs j
         WHERE j.joblist_id = jl.joblist_id AND j.group_name = g.group_name
           AND j.node IS NOT NULL
         ORDER BY j.assigned_at NULLS LAST, j.job_id LIMIT 1;
        IF pin IS NOT NULL THEN
            UPDATE dispatch.jobs j SET constraints = j.constraints || jsonb_build_object('node', pin)
             WHERE j.joblist_id = jl.joblist_id AND j.group_name = g.group_name
               AND j.state = 'pending' AND j.held = 'group' AND j.stage = jl.current_stage;
            PERFORM dispatch._let_go(array_agg(j.job_id), array_agg(dispatch._next_gate('group', NULL, j.parallel)))
               FROM dispatch.jobs j
              WHERE j.joblist_id = jl.joblist_id AND j.group_name = g.group_name
                AND j.state = 'pending' AND j.held = 'group' AND j.stage = jl.current_stage;
            moved := true;
        ELSIF NOT EXISTS (SELECT FROM dispatch.jobs j
                           WHERE j.joblist_id = jl.joblist_id AND j.group_name = g.group_name
                             AND (j.state IN ('assigned', 'running')
                                  OR j.state = 'pending' AND j.held IS DISTINCT FROM 'group'
                                     AND j.held IS DISTINCT FROM 'after')) THEN
            SELECT j.job_id INTO first FROM dispatch.jobs j
             WHERE j.joblist_id = jl.joblist_id AND j.group_name = g.group_name
               AND j.state = 'pending' AND j.held = 'group' AND j.stage = jl.current_stage
             ORDER BY j.job_id LIMIT 1;
            PERFORM dispatch._let_go(ARRAY[first], ARRAY[NULL::text]);
            moved := true;
        END IF;
    END LOOP;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION dispatch._place_groups(dispatch.joblists) IS
    'Lets the held jobs of jl''s groups follow the node their group was placed on, or lets '
    'one go first, or queues their reservation or has it lend to them; true when any moved';

-- Step 4: each array lets cells go while it has free slots.
CREATE FUNCTION dispatch._fill_slots(jl dispatch.joblists) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    free_ bigint;
    cells bigint[];
    moved boolean := false;
BEGIN
    FOR t IN SELECT DISTINCT h.task, h.parallel FROM dispatch.jobs h
              WHERE h.joblist_id = jl.joblist_id AND h.stage = jl.current_stage
                AND h.state = 'pending' AND h.held = 'slot' ORDER BY 1 LOOP
        free_ := t.parallel - (SELECT count(*) FROM dispatch.jobs j
                                WHERE j.joblist_id = jl.joblist_id AND j.task = t.task
                                  AND (j.state IN ('assigned', 'running')
                                       OR j.state = 'pending' AND j.held IS NULL));
        CONTINUE WHEN free_ <= 0;
        cells := ARRAY(SELECT j.job_id FROM dispatch.jobs j
                        WHERE j.joblist_id = jl.joblist_id AND j.stage = jl.current_stage
                          AND j.state = 'pending' AND j.held = 'slot' AND j.task = t.task
                        ORDER BY j.job_id LIMIT free_);
        PERFORM dispatch._let_go(cells, array_fill(NULL::text, ARRAY[cardinality(cells)]));
        moved := true;
    END LOOP;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION dispatch._fill_slots(dispatch.joblists) IS
    'Lets go as many held cells of each array of jl as its throttle has free slots; true '
    'when any moved';

-- The for_each job job_id, whose source has ended and whose condition holds, replaced
-- by its cells (in its stage, after what it was after).  Whatever goes wrong here
-- fails the job with the reason and leaves the scheduler alone: a user's result must
-- not make housekeeping raise.
CREATE FUNCTION dispatch._fan_out(job_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h dispatch.jobs;
    l dispatch.joblists;
    src dispatch.jobs;
    spec jsonb;
    flat jsonb;
    items jsonb;
    room bigint;
BEGIN
    SELECT * INTO h FROM dispatch.jobs j WHERE j.job_id = _fan_out.job_id;
    SELECT * INTO l FROM dispatch.joblists WHERE joblist_id = h.joblist_id;
    SELECT * INTO src FROM dispatch.jobs j
     WHERE j.joblist_id = h.joblist_id AND j.task = h.for_each ORDER BY j.job_id LIMIT 1;
    items := src.result;
    room := current_setting('dispatch.max_jobs_per_joblist')::bigint
            - (SELECT count(*) FROM dispatch.jobs j WHERE j.joblist_id = h.joblist_id) + 1;
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        UPDATE dispatch.jobs SET held = NULL WHERE jobs.job_id = h.job_id;
        PERFORM dispatch._finish_job(h.job_id, 'failed',
            format('for_each: job "%s" left %s, not a JSON array', h.for_each,
                   coalesce('a JSON ' || jsonb_typeof(items), 'no result')));
        RETURN;
    ELSIF jsonb_array_length(items) = 0 THEN
        UPDATE dispatch.jobs SET held = NULL WHERE jobs.job_id = h.job_id;
        PERFORM dispatch._finish_job(h.job_id, 'skipped',
            format('skipped: job "%s" left an empty array', h.for_each));
        RETURN;
    ELSIF jsonb_array_length(items) > room THEN
        UPDATE dispatch.jobs SET held = NULL WHERE jobs.job_id = h.job_id;
        PERFORM dispatch._finish_job(h.job_id, 'failed',
            format('for_each: job "%s" left %s items, more than the %s jobs dispatch.max_jobs_per_joblist leaves room for',
                   h.for_each, jsonb_array_length(items), room));
        RETURN;
    END IF;
    spec := coalesce(jsonb_path_query_first(l.spec, '$.stages[*].jobs[*] ? (@.name == $n)',
                                            jsonb_build_object('n', h.task)),
                     jsonb_path_query_first(l.spec, '$.jobs[*] ? (@.name == $n)',
                                            jsonb_build_object('n', h.task)))
            - 'for_each' || jsonb_build_object('after', to_jsonb(h.after));
    flat := jsonb_build_object('stages', jsonb_build_array(jsonb_build_object('jobs', (
        SELECT jsonb_agg(c || jsonb_build_object('_stage', h.stage) ORDER BY o)
          FROM dispatch._item_cells(spec, format('the for_each job "%s"', h.name), items)
               WITH ORDINALITY AS x(c, o)))));
    BEGIN
        IF EXISTS (SELECT FROM jsonb_array_elements(flat -> 'stages' -> 0 -> 'jobs') c
                    WHERE octet_length((c -> 'env')::text)
                          > dispatch._setting_bytes('dispatch.max_env_size')) THEN
            RAISE EXCEPTION 'an item makes a cell''s env larger than dispatch.max_env_size = %',
                current_setting('dispatch.max_env_size');
        END IF;
        PERFORM dispatch._check_rendered_commands(flat);
        PERFORM dispatch._check_rendered_files(flat);
        DELETE FROM dispatch.jobs j WHERE j.job_id = h.job_id;
        PERFORM dispatch._insert_jobs(h.joblist_id, flat, h.stage);
    EXCEPTION WHEN OTHERS THEN
        UPDATE dispatch.jobs SET held = NULL WHERE jobs.job_id = h.job_id;
        PERFORM dispatch._finish_job(h.job_id, 'failed',
            format('for_each: the cells could not be made: %s', SQLERRM));
        RETURN;
    END;
    -- the cells run after nothing more (their source has ended): let them on
    PERFORM dispatch._let_go(array_agg(j.job_id), array_agg(dispatch._next_gate('after', j.group_name, j.parallel)))
       FROM dispatch.jobs j
      WHERE j.joblist_id = h.joblist_id AND j.task = h.task AND j.state = 'pending';
END
$$;
COMMENT ON FUNCTION dispatch._fan_out(bigint) IS
    'Replaces a for_each job whose source ended by one cell per item of the source''s '
    'result (or fails or skips it, saying why)';

CREATE FUNCTION dispatch._advance_joblist(jl dispatch.joblists) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
    moved boolean;
    stage_start boolean := false;
BEGIN
    LOOP
        -- 1. the first failure: its descendants are skipped, the rest cancelled
        IF dispatch._skip_descendants(jl.joblist_id) THEN
            CONTINUE;
        END IF;
        IF jl.failure IS NULL THEN
            SELECT dispatch._wrong_reason(j.name, j.state, j.reason) INTO bad
              FROM dispatch.jobs j
             WHERE j.joblist_id = jl.joblist_id AND j.stage = jl.current_stage
               AND j.state IN ('failed', 'lost', 'cancelled')
             ORDER BY j.job_id LIMIT 1;
            IF bad IS NOT NULL THEN
                UPDATE dispatch.joblists SET failure = bad WHERE joblist_id = jl.joblist_id
                RETURNING * INTO jl;
                IF jl.fail_fast THEN
                    PERFORM dispatch._cancel_unprotected(jl.joblist_id,
                        format('joblist failed: %s', bad), true);
                END IF;
            END IF;
        END IF;
        IF jl.failure IS NOT NULL AND jl.fail_fast
           AND NOT EXISTS (SELECT FROM dispatch.jobs j
                            WHERE j.joblist_id = jl.joblist_id
                              AND j.state IN ('pending', 'assigned', 'running')
                              AND j.condition IN ('on_failure', 'always')) THEN
            -- nothing runs after the failure: the joblist fails now, as it always did
            PERFORM dispatch._cancel_unprotected(jl.joblist_id,
                format('joblist failed: %s', jl.failure), false);
            UPDATE dispatch.joblists SET state = 'failed', finished_at = now(), reason = jl.failure
             WHERE joblist_id = jl.joblist_id;
            RETURN;
        END IF;
        -- 2-4. the current stage's gates
        moved := false;
        IF stage_start OR EXISTS (SELECT FROM dispatch.jobs j
                                   WHERE j.joblist_id = jl.joblist_id AND j.stage = jl.current_stage
                                     AND j.state = 'pending' AND j.held IS NOT NULL) THEN
            moved := dispatch._judge(jl, stage_start);
            moved := dispatch._place_groups(jl) OR moved;
            moved := dispatch._fill_slots(jl) OR moved;
        END IF;
        stage_start := false;
        CONTINUE WHEN moved;
        -- 5. the stage's end
        IF EXISTS (SELECT FROM dispatch.jobs j
                    WHERE j.joblist_id = jl.joblist_id AND j.stage = jl.current_stage
                      AND j.state IN ('pending', 'assigned', 'running')) THEN
            RETURN;
        END IF;
        IF jl.current_stage + 1 < jl.stage_count THEN
            UPDATE dispatch.joblists SET current_stage = current_stage + 1
             WHERE joblist_id = jl.joblist_id RETURNING * INTO jl;
            UPDATE dispatch.jobs
               SET reason = CASE WHEN stage > jl.current_stage
                                 THEN dispatch._stage_reason(jl.joblist_id, jl.current_stage)
                                 WHEN held IS NOT NULL
                                 THEN dispatch._held_reason(held, jsonb_build_object(
                                          'after', to_jsonb(after), 'group', group_name,
                                          '_parallel', parallel, '_task', task))
                                 ELSE 'waiting for the scheduler' END
             WHERE joblist_id = jl.joblist_id AND stage >= jl.current_stage AND state = 'pending';
            stage_start := true;
            CONTINUE;
        END IF;
        SELECT dispatch._wrong_reason(j.name, j.state, j.reason) INTO bad
          FROM dispatch.jobs j
         WHERE j.joblist_id = jl.joblist_id AND j.state IN ('failed', 'lost', 'cancelled')
         ORDER BY j.job_id LIMIT 1;
        UPDATE dispatch.joblists
           SET state = CASE WHEN coalesce(jl.failure, bad) IS NULL THEN 'succeeded' ELSE 'failed' END,
               finished_at = now(), reason = coalesce(jl.failure, bad)
         WHERE joblist_id = jl.joblist_id;
        RETURN;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._advance_joblist(dispatch.joblists) IS
    'Settles one active joblist whose jobs changed (its row and unfinished jobs locked): '
    'records its first failure, moves held jobs on, enters its next stage, or ends it';

-- A joblist past its timeout: recorded as its failure; every running job is stopped
-- and every waiting one cancelled except those that run after failures, which still
-- run (clean-up); the deadline is cleared once acted on.
CREATE FUNCTION dispatch._expire_joblist(jl dispatch.joblists) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    why text := format('joblist timed out after %s', jl.timeout);
    j dispatch.jobs;
BEGIN
    UPDATE dispatch.joblists SET deadline = NULL, failure = coalesce(failure, why)
     WHERE joblist_id = jl.joblist_id;
    FOR j IN SELECT * FROM dispatch.jobs
              WHERE joblist_id = jl.joblist_id AND state IN ('pending', 'assigned', 'running')
                AND (state <> 'pending' OR condition = 'on_success')
              ORDER BY job_id LOOP
        PERFORM dispatch._cancel_one(j, why);
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._expire_joblist(dispatch.joblists) IS
    'Acts on a joblist whose timeout expired: stops what runs, cancels what waits except '
    'jobs that run after failures';
