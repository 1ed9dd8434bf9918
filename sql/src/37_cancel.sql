------------------------------------------------------------------------------
-- Cancellation: of joblists and jobs, by their submitter or an admin
------------------------------------------------------------------------------
--
-- A job that has not started is cancelled at once; a running one is marked
-- cancel_requested and its agent is told on the node's channel; the agent's report
-- then ends it as cancelled.

CREATE FUNCTION dispatch._check_may_cancel(jl dispatch.joblists, verb text DEFAULT 'cancel')
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jl.submitted_by <> dispatch.current_caller() AND NOT dispatch._caller_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied to %s joblist %s', verb, jl.joblist_id),
            DETAIL = format('Joblist %s was submitted by role "%s".', jl.joblist_id,
                            jl.submitted_by),
            HINT = format('Only the submitting role or a member of dispatch_admin can %s it.', verb);
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_may_cancel(dispatch.joblists, text) IS
    'Fails unless the caller submitted joblist jl or is an admin (verb: what the caller '
    'does to it, for the message)';

CREATE FUNCTION dispatch._cancellable(what text, id bigint, state text, unfinished text[],
                                     jl dispatch.joblists) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF state IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('%s %s does not exist', what, id);
    END IF;
    PERFORM dispatch._check_may_cancel(jl);
    IF NOT state = ANY (unfinished) THEN
        RAISE NOTICE '% % has already finished (%)', what, id, state;
        RETURN false;
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch._cancellable(text, bigint, text, text[], dispatch.joblists) IS
    'Whether the caller may cancel joblist or job what id (state: NULL when missing, '
    'which raises) of joblist jl; false, with a notice, when it has already finished';

CREATE FUNCTION dispatch._cancel_jobs_of(jl bigint, why text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
BEGIN
    FOR j IN SELECT * FROM dispatch.jobs
              WHERE joblist_id = jl AND state IN ('pending', 'assigned', 'running')
              ORDER BY job_id FOR UPDATE LOOP
        PERFORM dispatch._cancel_one(j, why);
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._cancel_jobs_of(bigint, text) IS
    'Cancels every job of joblist jl that has not finished; running ones are signalled';

CREATE FUNCTION dispatch._cancel_one(j dispatch.jobs, why text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF j.state = 'running' THEN
        UPDATE dispatch.jobs SET cancel_requested = true, reason = why
         WHERE job_id = j.job_id;
        PERFORM pg_notify('dispatch_node_' || j.node, 'cancel');
    ELSE
        PERFORM dispatch._finish_job(j.job_id, 'cancelled', why);
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._cancel_one(dispatch.jobs, text) IS
    'Cancels one unfinished job: at once unless it runs, then asks its agent';

CREATE FUNCTION dispatch.cancel_joblist(joblist bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jl dispatch.joblists;
BEGIN
    SELECT * INTO jl FROM dispatch.joblists WHERE joblist_id = joblist FOR UPDATE;
    IF NOT dispatch._cancellable('joblist', joblist, jl.state, ARRAY['queued', 'running'], jl) THEN
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

-- By name, a role cancels only its own joblists, admins included: a name says nothing
-- about whose work it is, so another role's joblist is cancelled by its id.
CREATE FUNCTION dispatch.cancel_joblist(name text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[];
    others bigint;
    id bigint;
BEGIN
    SELECT array_agg(joblist_id ORDER BY joblist_id)
               FILTER (WHERE submitted_by = dispatch.current_caller()),
           count(*) FILTER (WHERE submitted_by <> dispatch.current_caller())
      INTO ids, others
      FROM dispatch.joblists WHERE joblists.name = cancel_joblist.name
       AND state IN ('queued', 'running');
    IF ids IS NULL AND others > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('no queued or running joblist of role "%s" is named "%s"',
                             dispatch.current_caller(), name),
            DETAIL = format('%s joblist(s) of that name belong to other roles.', others),
            HINT = 'Cancelling by name cancels only your own joblists; cancel another role''s by its id.';
    ELSIF ids IS NULL THEN
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
    'Cancel every queued or running joblist of the caller with this name; returns how many';

CREATE FUNCTION dispatch.cancel_job(job bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs;
    jl dispatch.joblists;
BEGIN
    SELECT * INTO j FROM dispatch.jobs WHERE job_id = job FOR UPDATE;
    SELECT * INTO jl FROM dispatch.joblists WHERE joblist_id = j.joblist_id;
    IF NOT dispatch._cancellable('job', job, j.state, ARRAY['pending', 'assigned', 'running'],
                                 jl) THEN
        RETURN false;
    END IF;
    PERFORM dispatch._cancel_one(j, format('cancelled by %s', dispatch.current_caller()));
    PERFORM dispatch.wake_scheduler();
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch.cancel_job(bigint) IS
    'Cancel one job; under fail_fast its joblist then fails';
