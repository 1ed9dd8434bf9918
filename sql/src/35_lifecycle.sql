------------------------------------------------------------------------------
-- The job state machine: how jobs and joblists move between states
------------------------------------------------------------------------------
--
-- pending -> assigned (scheduler) -> running (agent claims) -> succeeded | failed |
-- cancelled | lost; a failed or lost attempt with retries left goes back to pending
-- as a new attempt.  Every change of state or attempt is recorded in job_events by
-- a trigger, which also queues the job for the scheduler (33_sched_changes.sql).
-- A job that never runs because its condition cannot hold ends skipped.
-- _advance_joblist() (36_dataflow.sql) moves a joblist on through its graph and
-- stages when the scheduler's housekeeping sees it change.

CREATE TABLE dispatch.job_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    attempt         int NOT NULL,
    state           text NOT NULL,
    node            text,
    detail          text,
    at              timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX job_events_job_idx ON dispatch.job_events (job_id);
COMMENT ON TABLE dispatch.job_events IS 'History of every job state change';

-- A group's reservation that lets go of its units (39_reserve.sql) leaves the jobs it
-- lent them to holding them alone, until they end: the scheduler reloads what they hold.
CREATE FUNCTION dispatch._return_lent(jobs bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH kept AS (
        UPDATE dispatch.allocations a SET lent_by = NULL
         WHERE a.lent_by = ANY (jobs)
        RETURNING a.job_id)
    INSERT INTO dispatch._sched_changes (kind, id, joblist_id)
    SELECT 'job', j.job_id, j.joblist_id
      FROM dispatch.jobs j WHERE j.job_id IN (SELECT job_id FROM kept)
$$;
COMMENT ON FUNCTION dispatch._return_lent(bigint[]) IS
    'Leaves what the reservations among jobs lent to their groups'' jobs with those jobs alone';

CREATE FUNCTION dispatch._release(job bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._return_lent(ARRAY[job]);
    DELETE FROM dispatch.allocations WHERE job_id = job
$$;
COMMENT ON FUNCTION dispatch._release(bigint) IS
    'Releases whatever job holds';

-- settle: whether the jobs end for good (_end_attempt says no for an attempt that is
-- retried): a group's reservation ends with the last of its jobs, a build job's
-- outputs are recorded (79_rebuilds.sql).
CREATE FUNCTION dispatch._finish_jobs(jobs bigint[], finals text[], whys text[],
                                      settle boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jls bigint[];
    groups text[];
    reservation boolean;
    build boolean;
BEGIN
    WITH done AS (
        UPDATE dispatch.jobs j
           SET state = e.final, reason = e.why, finished_at = now(), held = NULL
          FROM unnest(jobs, finals, whys) AS e(job_id, final, why)
         WHERE j.job_id = e.job_id
        RETURNING j.joblist_id, j.group_name, j.reserves, j.builds)
    SELECT array_agg(d.joblist_id) FILTER (WHERE d.group_name IS NOT NULL),
           array_agg(d.group_name) FILTER (WHERE d.group_name IS NOT NULL),
           bool_or(d.reserves IS NOT NULL), bool_or(d.builds IS NOT NULL)
      INTO jls, groups, reservation, build FROM done d;
    IF reservation THEN
        PERFORM dispatch._return_lent(jobs);
    END IF;
    DELETE FROM dispatch.allocations a WHERE a.job_id = ANY (jobs);
    IF settle AND groups IS NOT NULL THEN
        PERFORM dispatch._settle_reservations(jls, groups);
    END IF;
    IF settle AND build THEN
        PERFORM dispatch._builds_ended(jobs);
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._finish_jobs(bigint[], text[], text[], boolean) IS
    'Ends each of jobs in its final state with its reason (parallel arrays) and frees their '
    'resources, one statement for all; for good (settle), the reservations of groups left '
    'with nothing to run end too and build jobs record their outputs';

CREATE FUNCTION dispatch._finish_job(job bigint, final text, why text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._finish_jobs(ARRAY[job], ARRAY[final], ARRAY[why])
$$;
COMMENT ON FUNCTION dispatch._finish_job(bigint, text, text) IS
    'Ends a job in a final state with a reason and frees its resources';

CREATE FUNCTION dispatch._requeue_job(job bigint, new_attempt boolean, why text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM dispatch._release(job);
    UPDATE dispatch.jobs
       SET state = 'pending', node = NULL, resources = NULL, reason = why,
           attempt = attempt + new_attempt::int, assigned_at = NULL, started_at = NULL,
           finished_at = NULL, exit_code = NULL, signal = NULL, timed_out = false,
           result = NULL, waiting_signal = NULL,
           -- a job of a reserved group waits for its reservation again
           held = CASE WHEN group_name IS NOT NULL AND EXISTS (
                           SELECT FROM dispatch.jobs h
                            WHERE h.joblist_id = jobs.joblist_id AND h.reserves = jobs.group_name
                              AND h.state IN ('pending', 'assigned', 'running'))
                       THEN 'group' END,
           output_bytes = CASE WHEN new_attempt THEN 0 ELSE output_bytes END,
           output_truncated = output_truncated AND NOT new_attempt
     WHERE job_id = job;
END
$$;
COMMENT ON FUNCTION dispatch._requeue_job(bigint, boolean, text) IS
    'Puts a job back in the queue; a new attempt when it had started';

CREATE FUNCTION dispatch._end_attempt(job bigint, final text, why text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    SELECT * INTO j FROM dispatch.jobs WHERE job_id = job;
    PERFORM dispatch._finish_jobs(ARRAY[job], ARRAY[final], ARRAY[why],
                                  j.attempt > j.retries OR j.cancel_requested);
    IF j.attempt <= j.retries AND NOT j.cancel_requested THEN
        PERFORM dispatch._requeue_job(job, true,
            format('retrying after attempt %s: %s', j.attempt, why));
        RETURN 'pending';
    END IF;
    RETURN final;
END
$$;
COMMENT ON FUNCTION dispatch._end_attempt(bigint, text, text) IS
    'Ends an attempt that did not succeed: retried while retries remain, else final';

CREATE FUNCTION dispatch._lose_jobs(node text, keep bigint[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    FOR j IN SELECT * FROM dispatch.jobs
              WHERE jobs.node = _lose_jobs.node AND state IN ('assigned', 'running')
                AND NOT job_id = ANY (keep)
              ORDER BY job_id FOR UPDATE LOOP
        IF j.cancel_requested THEN
            PERFORM dispatch._finish_job(j.job_id, 'cancelled',
                format('cancelled; node "%s" was lost', node));
        ELSIF j.state = 'assigned' THEN
            PERFORM dispatch._requeue_job(j.job_id, false,
                format('node "%s" was lost before the job started', node));
        ELSE
            PERFORM dispatch._end_attempt(j.job_id, 'lost',
                format('node "%s" was lost while the job ran', node));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._lose_jobs(text, bigint[]) IS
    'Handles the active jobs of a node that went away, except those listed in keep';

CREATE FUNCTION dispatch._job_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dispatch.job_events (job_id, attempt, state, node, detail)
    VALUES (NEW.job_id, NEW.attempt, NEW.state, NEW.node,
            CASE WHEN NEW.state IN ('assigned', 'running') THEN NULL ELSE NEW.reason END);
    INSERT INTO dispatch._sched_changes (kind, id, joblist_id)
    VALUES ('job', NEW.job_id, NEW.joblist_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._job_event() IS
    'Records every job state change in job_events and queues the job for the scheduler';
-- Jobs arrive by the thousand in one INSERT (_submit): their first events are written
-- with one statement, not a trigger call per job, and the scheduler is told once per
-- joblist (it reloads the joblist's runnable jobs).
CREATE FUNCTION dispatch._job_events_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dispatch.job_events (job_id, attempt, state, node, detail)
    SELECT n.job_id, n.attempt, n.state, n.node,
           CASE WHEN n.state IN ('assigned', 'running') THEN NULL ELSE n.reason END
      FROM new_jobs n ORDER BY n.job_id;
    INSERT INTO dispatch._sched_changes (kind, id)
    SELECT DISTINCT 'joblist', n.joblist_id FROM new_jobs n;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._job_events_inserted() IS
    'Records the first state of every job an INSERT added in job_events, and queues their '
    'joblists for the scheduler';
CREATE TRIGGER jobs_event_ins AFTER INSERT ON dispatch.jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch._job_events_inserted();
CREATE TRIGGER jobs_event_upd AFTER UPDATE OF state, attempt ON dispatch.jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.attempt <> NEW.attempt)
    EXECUTE FUNCTION dispatch._job_event();

CREATE FUNCTION dispatch._stage_reason(jl bigint, stage int) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('waiting for stage "%s" to finish', s.name)
      FROM dispatch.stages s WHERE s.joblist_id = jl AND s.stage = _stage_reason.stage
$$;
COMMENT ON FUNCTION dispatch._stage_reason(bigint, int) IS
    'The "waiting for stage" reason of a joblist''s later stages';
