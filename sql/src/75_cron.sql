------------------------------------------------------------------------------
-- pg_cron compatibility: SQL jobs run by a background worker
------------------------------------------------------------------------------
--
-- dispatch.schedule/unschedule/alter_job have pg_cron's signatures and
-- dispatch.job and dispatch.job_run_details its columns, so a pg_cron user
-- migrates by changing the schema name.  A SQL job is a goal of kind 'sql'; at
-- each fire a job_run_details row is created ('starting'), the scheduler starts
-- a background worker for it after its cycle commits, and the worker, logged in
-- as the job's user, claims the row, runs the command and records the result.
-- History older than dispatch.run_history_retention is deleted.

CREATE TABLE dispatch.job_run_details (
    jobid           bigint NOT NULL,
    runid           bigint PRIMARY KEY,
    job_pid         int,
    database        text NOT NULL,
    username        text NOT NULL,
    command         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('starting', 'running', 'succeeded', 'failed')),
    return_message  text,
    start_time      timestamptz,
    end_time        timestamptz,
    requested_at    timestamptz
);
CREATE INDEX job_run_details_open_idx ON dispatch.job_run_details (runid)
    WHERE status IN ('starting', 'running');
CREATE INDEX job_run_details_jobid_idx ON dispatch.job_run_details (jobid, runid);
COMMENT ON TABLE dispatch.job_run_details IS
    'Runs of SQL jobs, as pg_cron records them (bounded by dispatch.run_history_retention)';

CREATE VIEW dispatch.job AS
    SELECT g.goal_id AS jobid, g.schedule, g.command, 'localhost'::text AS nodename,
           pg_catalog.current_setting('port')::int AS nodeport, g.database, g.username::text AS username,
           g.active, g.name AS jobname
      FROM dispatch.goals g WHERE g.kind = 'sql';
COMMENT ON VIEW dispatch.job IS 'SQL jobs with the columns of pg_cron''s cron.job';

CREATE FUNCTION dispatch._sql_job_for_change(jobid bigint, label text) RETURNS dispatch.goals
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._goal_changeable(
        (SELECT x FROM dispatch.goals x WHERE x.goal_id = jobid AND x.kind = 'sql' FOR UPDATE),
        format('job %s', label))
$$;
COMMENT ON FUNCTION dispatch._sql_job_for_change(bigint, text) IS
    'Returns the SQL job jobid after checking that the caller may change it';

CREATE FUNCTION dispatch._check_sql_job(schedule text, command text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF command IS NULL OR btrim(command) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'command must not be empty';
    END IF;
    IF schedule IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'schedule must not be null';
    END IF;
    PERFORM dispatch._check_schedule(schedule, current_setting('dispatch.timezone'),
                                     'schedule', 'dispatch.timezone');
END
$$;
COMMENT ON FUNCTION dispatch._check_sql_job(text, text) IS
    'Fails unless command is a non-empty SQL string and schedule a schedule that fires';

CREATE FUNCTION dispatch.schedule(job_name text, schedule text, command text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals;
    new_schedule text := schedule;
    new_command text := command;
BEGIN
    PERFORM dispatch._check_sql_job(new_schedule, new_command);
    IF job_name IS NOT NULL THEN
        SELECT * INTO g FROM dispatch.goals x WHERE x.name = job_name FOR UPDATE;
        IF FOUND AND (g.kind <> 'sql' OR g.owner <> dispatch.current_caller()) THEN
            RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
                MESSAGE = format('a goal named "%s" already exists', job_name),
                HINT = 'Job names are shared with goals; choose another name.';
        END IF;
    END IF;
    IF g.goal_id IS NULL THEN
        INSERT INTO dispatch.goals (name, kind, spec, command, database, username, schedule,
                                    overlap, owner)
        VALUES (job_name, 'sql', '{}', new_command, current_database(), dispatch.current_caller(),
                new_schedule, 'queue', dispatch.current_caller())
        RETURNING * INTO g;
    ELSE
        UPDATE dispatch.goals x SET schedule = new_schedule, command = new_command
         WHERE x.goal_id = g.goal_id RETURNING * INTO g;
    END IF;
    UPDATE dispatch.goals x SET next_fire_at = dispatch._goal_next(g, now()) WHERE x.goal_id = g.goal_id;
    PERFORM dispatch.wake_scheduler();
    RETURN g.goal_id;
END
$$;
COMMENT ON FUNCTION dispatch.schedule(text, text, text) IS
    'pg_cron: schedule (or reschedule, by name) a SQL command; returns the job id';

CREATE FUNCTION dispatch.schedule(schedule text, command text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch.schedule(NULL, schedule, command)
$$;
COMMENT ON FUNCTION dispatch.schedule(text, text) IS
    'pg_cron: schedule an unnamed SQL command; returns the job id';

CREATE FUNCTION dispatch.unschedule(job_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals := dispatch._sql_job_for_change(job_id, job_id::text);
BEGIN
    DELETE FROM dispatch.goals WHERE goal_id = g.goal_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch.unschedule(bigint) IS 'pg_cron: remove a SQL job by id';

CREATE FUNCTION dispatch.unschedule(job_name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN dispatch.unschedule(coalesce(
        (SELECT goal_id FROM dispatch.goals WHERE name = job_name AND kind = 'sql'
            AND (owner = dispatch.current_caller() OR dispatch._caller_is_admin())),
        -1));
EXCEPTION WHEN undefined_object THEN
    RAISE EXCEPTION USING ERRCODE = 'undefined_object',
        MESSAGE = format('job "%s" does not exist', job_name);
END
$$;
COMMENT ON FUNCTION dispatch.unschedule(text) IS 'pg_cron: remove a SQL job by name';

CREATE FUNCTION dispatch.alter_job(job_id bigint, schedule text DEFAULT NULL,
                                   command text DEFAULT NULL, database text DEFAULT NULL,
                                   username text DEFAULT NULL, active boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals := dispatch._sql_job_for_change(job_id, job_id::text);
BEGIN
    PERFORM dispatch._check_sql_job(coalesce(schedule, g.schedule), coalesce(command, g.command));
    IF database IS NOT NULL AND database <> current_database() THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = 'SQL jobs run only in the database of pg_dispatch',
            DETAIL = format('This database is "%s".', current_database());
    END IF;
    IF username IS NOT NULL AND username <> g.username THEN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = username) THEN
            RAISE EXCEPTION USING ERRCODE = 'undefined_object',
                MESSAGE = format('role "%s" does not exist', username);
        END IF;
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = dispatch.current_caller()) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = 'only a superuser may change the user a job runs as';
        END IF;
    END IF;
    UPDATE dispatch.goals x
       SET schedule = coalesce(alter_job.schedule, x.schedule),
           command = coalesce(alter_job.command, x.command),
           username = coalesce(alter_job.username, x.username),
           active = coalesce(alter_job.active, x.active)
     WHERE x.goal_id = g.goal_id RETURNING * INTO g;
    UPDATE dispatch.goals x SET next_fire_at = dispatch._goal_next(g, now())
     WHERE x.goal_id = g.goal_id;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.alter_job(bigint, text, text, text, text, boolean) IS
    'pg_cron: change the schedule, command, user or active flag of a SQL job';

CREATE FUNCTION dispatch._sql_runs_to_launch()
RETURNS TABLE (runid bigint, database text, username text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.job_run_details d SET requested_at = now()
     WHERE d.status = 'starting'
       AND (d.requested_at IS NULL
            OR d.requested_at < (SELECT backend_start FROM pg_stat_activity
                                  WHERE pid = pg_backend_pid()))
    RETURNING d.runid, d.database, d.username
$$;
COMMENT ON FUNCTION dispatch._sql_runs_to_launch() IS
    'Scheduler: the SQL runs to start a worker for (new ones, and those a previous '
    'scheduler asked for but may not have started)';

CREATE FUNCTION dispatch._sql_run_claim(run bigint) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.job_run_details
       SET status = 'running', job_pid = pg_backend_pid(), start_time = now()
     WHERE runid = run AND status = 'starting' AND username = session_user
    RETURNING command
$$;
COMMENT ON FUNCTION dispatch._sql_run_claim(bigint) IS
    'SQL run worker: claims a run; returns its command, or NULL when another took it';

CREATE FUNCTION dispatch._sql_run_finish(run bigint, ok boolean, message text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE dispatch.job_run_details
       SET status = CASE WHEN ok THEN 'succeeded' ELSE 'failed' END,
           return_message = message, end_time = now()
     WHERE runid = run AND status = 'running' AND job_pid = pg_backend_pid();
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch._sql_run_finish(bigint, boolean, text) IS
    'SQL run worker: records the end of a run, from the worker that claimed it';

CREATE FUNCTION dispatch._sql_run_unstarted(run bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.job_run_details
       SET status = 'failed', end_time = now(),
           return_message = 'could not start a background worker (raise max_worker_processes)'
     WHERE runid = run AND status = 'starting'
$$;
COMMENT ON FUNCTION dispatch._sql_run_unstarted(bigint) IS
    'The scheduler could not start a worker for a run';
