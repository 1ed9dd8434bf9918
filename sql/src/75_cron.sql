------------------------------------------------------------------------------
-- pg_cron compatibility: SQL jobs, run in any database by a background worker
------------------------------------------------------------------------------
--
-- schedule, schedule_in_database, unschedule and alter_job have pg_cron's
-- signatures, checks and messages, and dispatch.job and dispatch.job_run_details
-- its columns and row-level security (each user sees their own jobs and runs;
-- superusers and dispatch_admin see all), so a pg_cron user migrates by changing
-- the schema name.  They are executable by PUBLIC: as in pg_cron, USAGE on the
-- schema is what a role needs.  A SQL job is a goal of kind 'sql' whose owner is
-- the user it runs as.  At each fire the goal evaluator creates a job_run_details
-- row ('starting'); the scheduler claims it ('running'), hands it to a background
-- worker through shared memory and records the outcome the worker leaves there
-- (_sql_runs_sync; docs/internals.md, "SQL jobs").  History older than
-- dispatch.run_history_retention is deleted.

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
    end_time        timestamptz
);
CREATE INDEX job_run_details_open_idx ON dispatch.job_run_details (runid)
    WHERE status IN ('starting', 'running');
CREATE INDEX job_run_details_jobid_idx ON dispatch.job_run_details (jobid, runid);
COMMENT ON TABLE dispatch.job_run_details IS
    'Runs of SQL jobs, as pg_cron records them (bounded by dispatch.run_history_retention)';
ALTER TABLE dispatch.job_run_details ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_run_details_read ON dispatch.job_run_details FOR SELECT
    USING (username OPERATOR(pg_catalog.=) current_user
           OR pg_catalog.pg_has_role('dispatch_admin', 'MEMBER'));
CREATE POLICY job_run_details_purge ON dispatch.job_run_details FOR DELETE
    USING (username OPERATOR(pg_catalog.=) current_user AND end_time IS NOT NULL);

CREATE VIEW dispatch.job WITH (security_barrier) AS
    SELECT g.goal_id AS jobid, g.schedule, g.command, 'localhost'::text AS nodename,
           pg_catalog.current_setting('port')::int AS nodeport, g.database,
           g.username::text AS username, g.active, g.name AS jobname
      FROM dispatch.goals g
     WHERE g.kind = 'sql'
       AND (g.username OPERATOR(pg_catalog.=) current_user
            OR pg_catalog.pg_has_role('dispatch_admin', 'MEMBER'));
COMMENT ON VIEW dispatch.job IS
    'SQL jobs with the columns of pg_cron''s cron.job: the caller''s own (all for superusers '
    'and dispatch_admin)';

CREATE FUNCTION dispatch._sql_job_for_change(job bigint) RETURNS dispatch.goals
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals;
BEGIN
    PERFORM dispatch._check_not_null(job, 'job_id');
    SELECT * INTO g FROM dispatch.goals x WHERE x.goal_id = job AND x.kind = 'sql' FOR UPDATE;
    IF NOT FOUND OR (g.owner <> dispatch.current_caller() AND NOT dispatch._caller_is_admin()) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('job %s does not exist or you don''t own it', job);
    END IF;
    RETURN g;
END
$$;
COMMENT ON FUNCTION dispatch._sql_job_for_change(bigint) IS
    'Locks and returns SQL job job for a change by the caller (its user or an admin); a job '
    'of another user is reported as missing, since the caller cannot see it';

CREATE FUNCTION dispatch._check_sql_job(schedule text, command text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    msg text;
    detail text;
BEGIN
    PERFORM dispatch._check_not_null(schedule, 'schedule');
    BEGIN
        PERFORM dispatch._check_schedule(schedule, current_setting('dispatch.timezone'),
                                         'schedule', 'dispatch.timezone');
    EXCEPTION WHEN invalid_parameter_value THEN
        -- pg_cron's message and hint; what is wrong goes to the detail
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
        detail := nullif(btrim(replace(detail, 'The error is at schedule.', '')), '');
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid schedule: %s', schedule),
            DETAIL = coalesce(detail, upper(left(msg, 1)) || substr(msg, 2) || '.'),
            HINT = 'Use cron format (e.g. 5 4 * * *), or interval format ''[1-59] seconds''';
    END;
    IF command IS NULL OR btrim(command) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'command must not be empty';
    END IF;
    PERFORM dispatch._check_size(command, 'dispatch.max_sql_command_size', 'command', 'command');
END
$$;
COMMENT ON FUNCTION dispatch._check_sql_job(text, text) IS
    'Fails unless schedule is a schedule that fires and command a non-empty SQL string that '
    'fits dispatch.max_sql_command_size';

CREATE FUNCTION dispatch._check_sql_target(database text, username text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM dispatch._check_not_null(database, 'database');
    IF NOT EXISTS (SELECT FROM pg_database d WHERE d.datname = _check_sql_target.database) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_catalog_name',
            MESSAGE = format('database "%s" does not exist', database);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = username) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('role "%s" does not exist', username);
    END IF;
    IF NOT (SELECT r.rolcanlogin FROM pg_roles r WHERE r.rolname = username) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_authorization_specification',
            MESSAGE = format('role "%s" cannot log in', username),
            DETAIL = 'Jobs may only be run by roles that have the LOGIN attribute.';
    END IF;
    IF NOT has_database_privilege(username, database, 'CONNECT') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for database "%s"', database),
            DETAIL = format('Role "%s" does not have CONNECT privilege.', username);
    END IF;
    IF NOT (SELECT d.datallowconn FROM pg_database d WHERE d.datname = _check_sql_target.database) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('database "%s" does not allow connections', database),
            HINT = 'ALTER DATABASE ... ALLOW_CONNECTIONS true allows them.';
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_sql_target(text, text) IS
    'Fails unless database exists and allows connections and role username exists, may '
    'log in and has CONNECT on it (pg_cron''s checks)';

CREATE FUNCTION dispatch.schedule_in_database(job_name text, schedule text, command text,
                                              database text, username text DEFAULT NULL,
                                              active boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals;
    caller name := dispatch.current_caller();
    run_as text := coalesce(username, caller);
    new_schedule text := schedule;
    new_command text := command;
    new_database text := database;
BEGIN
    IF run_as <> caller AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = caller) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'must be superuser to create a job for another role';
    END IF;
    IF length(job_name) > 200 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'job name must be at most 200 characters';
    END IF;
    PERFORM dispatch._check_sql_job(new_schedule, new_command);
    PERFORM dispatch._check_sql_target(new_database, run_as);
    PERFORM dispatch._check_not_null(active, 'active');
    -- as in pg_cron, a name is unique per user: the job of that name and user changes
    SELECT * INTO g FROM dispatch.goals x
     WHERE x.name = job_name AND x.kind = 'sql' AND x.username = run_as FOR UPDATE;
    IF g.goal_id IS NULL THEN
        PERFORM dispatch._check_goal_quota();
        INSERT INTO dispatch.goals (name, kind, spec, command, database, username, schedule,
                                    overlap, owner, active)
        VALUES (job_name, 'sql', '{}', new_command, new_database, run_as, new_schedule,
                'queue', run_as, schedule_in_database.active)
        RETURNING * INTO g;
    ELSE
        -- as pg_cron: scheduling a job again by name changes its schedule, command and database
        UPDATE dispatch.goals x SET schedule = new_schedule, command = new_command,
                                    database = new_database
         WHERE x.goal_id = g.goal_id RETURNING * INTO g;
    END IF;
    UPDATE dispatch.goals x SET next_fire_at = dispatch._goal_next(g, now()) WHERE x.goal_id = g.goal_id;
    PERFORM dispatch.wake_scheduler();
    RETURN g.goal_id;
END
$$;
COMMENT ON FUNCTION dispatch.schedule_in_database(text, text, text, text, text, boolean) IS
    'pg_cron: schedule (or reschedule, by name) a SQL command in a database, as a user '
    '(another than the caller only for a superuser); returns the job id';

CREATE FUNCTION dispatch.schedule(job_name text, schedule text, command text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch.schedule_in_database(job_name, schedule, command, current_database())
$$;
COMMENT ON FUNCTION dispatch.schedule(text, text, text) IS
    'pg_cron: schedule (or reschedule, by name) a SQL command in this database; returns the '
    'job id';

CREATE FUNCTION dispatch.schedule(schedule text, command text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch.schedule_in_database(NULL, schedule, command, current_database())
$$;
COMMENT ON FUNCTION dispatch.schedule(text, text) IS
    'pg_cron: schedule an unnamed SQL command in this database; returns the job id';

CREATE FUNCTION dispatch.unschedule(job_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals := dispatch._sql_job_for_change(job_id);
BEGIN
    DELETE FROM dispatch.goals WHERE goal_id = g.goal_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch.unschedule(bigint) IS 'pg_cron: remove a SQL job by id';

CREATE FUNCTION dispatch.unschedule(job_name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM dispatch._check_not_null(job_name, 'job_name');
    -- as in pg_cron, a name refers to the caller's own job, even for a superuser
    SELECT goal_id INTO job FROM dispatch.goals
     WHERE name = job_name AND kind = 'sql' AND owner = dispatch.current_caller();
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('job "%s" does not exist', job_name),
            HINT = 'A job name refers to one of your own jobs; unschedule another user''s job by its id.';
    END IF;
    RETURN dispatch.unschedule(job);
END
$$;
COMMENT ON FUNCTION dispatch.unschedule(text) IS 'pg_cron: remove one of the caller''s SQL jobs by name';

CREATE FUNCTION dispatch.alter_job(job_id bigint, schedule text DEFAULT NULL,
                                   command text DEFAULT NULL, database text DEFAULT NULL,
                                   username text DEFAULT NULL, active boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals;
BEGIN
    IF num_nonnulls(schedule, command, database, username, active) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'no updates specified',
            HINT = 'You must specify at least one job attribute to change when calling alter_job';
    END IF;
    g := dispatch._sql_job_for_change(job_id);
    IF username IS NOT NULL AND username <> g.username
       AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = dispatch.current_caller()) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'must be superuser to alter username';
    END IF;
    PERFORM dispatch._check_sql_job(coalesce(schedule, g.schedule), coalesce(command, g.command));
    PERFORM dispatch._check_sql_target(coalesce(database, g.database), coalesce(username, g.username));
    UPDATE dispatch.goals x
       SET schedule = coalesce(alter_job.schedule, x.schedule),
           command = coalesce(alter_job.command, x.command),
           database = coalesce(alter_job.database, x.database),
           username = coalesce(alter_job.username, x.username),
           owner = coalesce(alter_job.username, x.owner),
           active = coalesce(alter_job.active, x.active)
     WHERE x.goal_id = g.goal_id RETURNING * INTO g;
    UPDATE dispatch.goals x SET next_fire_at = dispatch._goal_next(g, now())
     WHERE x.goal_id = g.goal_id;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.alter_job(bigint, text, text, text, text, boolean) IS
    'pg_cron: change the schedule, command, database, user (superusers only) or active flag '
    'of a SQL job';

CREATE FUNCTION dispatch._sql_runs_to_launch()
RETURNS TABLE (runid bigint, database text, username text, command text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.job_run_details d SET status = 'running', start_time = now()
     WHERE d.status = 'starting'
    RETURNING d.runid, d.database, d.username, d.command
$$;
COMMENT ON FUNCTION dispatch._sql_runs_to_launch() IS
    'Scheduler: claims the SQL runs the goals created (starting -> running), to be handed '
    'to workers once the cycle has committed';

CREATE FUNCTION dispatch._sql_runs_sync(live bigint[], live_pids int[], ended bigint[],
                                        oks boolean[], pids int[], messages text[])
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE dispatch.job_run_details d SET job_pid = l.pid
      FROM unnest(live, live_pids) l(runid, pid)
     WHERE d.runid = l.runid AND d.status = 'running' AND l.pid <> 0
       AND d.job_pid IS DISTINCT FROM l.pid;
    UPDATE dispatch.job_run_details d
       SET status = CASE WHEN e.ok THEN 'succeeded' ELSE 'failed' END,
           job_pid = coalesce(nullif(e.pid, 0), d.job_pid),
           return_message = e.message, end_time = now()
      FROM unnest(ended, oks, pids, messages) e(runid, ok, pid, message)
     WHERE d.runid = e.runid AND d.status = 'running';
    UPDATE dispatch.job_run_details d
       SET status = 'failed', end_time = now(),
           return_message = 'the run''s worker was lost (a server restart or a failover)'
     WHERE d.status = 'running' AND d.runid <> ALL (live) AND d.runid <> ALL (ended);
END
$$;
COMMENT ON FUNCTION dispatch._sql_runs_sync(bigint[], int[], bigint[], boolean[], int[], text[]) IS
    'Scheduler: records the pids of the live SQL runs and the outcomes of the ended ones '
    '(from the shared-memory slots); a running run that no slot holds lost its worker';

CREATE FUNCTION dispatch._sql_run_unstarted(run bigint, message text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.job_run_details
       SET status = 'failed', end_time = now(), return_message = message
     WHERE runid = run AND status = 'running'
$$;
COMMENT ON FUNCTION dispatch._sql_run_unstarted(bigint, text) IS
    'Scheduler: a claimed run got no worker; it fails with message';
