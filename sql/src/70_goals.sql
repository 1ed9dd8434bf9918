------------------------------------------------------------------------------
-- Goals: recurring runs on cron schedules, n instances kept alive in windows
------------------------------------------------------------------------------
--
-- A goal fires on its schedule; each fire is a row in goal_runs, unique per
-- (goal, fire time), inserted in the same transaction that starts the run, so a
-- new primary that continues from the stored state never starts a fire twice.
-- A run with a window keeps `instances` joblists alive until the window ends
-- (replacing those that end, with backoff after repeated failures) and then
-- cancels them; a run without a window is a one-shot.  SQL goals (pg_cron's
-- jobs, 75_cron.sql) run a command in a background worker instead.  Everything
-- is evaluated by _goal_tick(), called by the scheduler on the primary.

CREATE TABLE dispatch.goals (
    goal_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text,
    kind            text NOT NULL CHECK (kind IN ('jobs', 'sql')),
    spec            jsonb NOT NULL,
    joblist         jsonb,
    command         text,
    database        text,
    username        name,
    schedule        text NOT NULL,
    timezone        text,
    run_window      interval CHECK (run_window > interval '0'),
    instances       int NOT NULL DEFAULT 1 CHECK (instances BETWEEN 1 AND 1000),
    spread          boolean NOT NULL DEFAULT false,
    overlap         text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'queue', 'replace')),
    catch_up        text NOT NULL DEFAULT 'skip' CHECK (catch_up IN ('skip', 'once')),
    active          boolean NOT NULL DEFAULT true,
    owner           name NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    next_fire_at    timestamptz,
    skipped_fires   bigint NOT NULL DEFAULT 0,
    failures        int NOT NULL DEFAULT 0,
    retry_at        timestamptz,
    last_error      text,
    CHECK (name IS NOT NULL OR kind = 'sql'),
    CHECK ((kind = 'jobs') = (joblist IS NOT NULL)),
    CHECK ((kind = 'sql') = (command IS NOT NULL AND database IS NOT NULL AND username IS NOT NULL))
);
-- Goals are named uniquely; SQL jobs, as in pg_cron, per user (and apart from goals).
CREATE UNIQUE INDEX goals_name_idx ON dispatch.goals (name) WHERE kind = 'jobs';
CREATE UNIQUE INDEX goals_sql_name_idx ON dispatch.goals (name, username) WHERE kind = 'sql';
COMMENT ON TABLE dispatch.goals IS
    'Recurring goals: a schedule, an optional window, n instances of a joblist, or a SQL command';

CREATE TABLE dispatch.goal_runs (
    run_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    goal_id         bigint NOT NULL REFERENCES dispatch.goals ON DELETE CASCADE,
    fire_at         timestamptz NOT NULL,
    cause           text NOT NULL CHECK (cause IN ('schedule', 'manual', 'catch_up', 'reboot')),
    state           text NOT NULL CHECK (state IN ('queued', 'active', 'ended')),
    started_at      timestamptz,
    window_end      timestamptz,
    ended_at        timestamptz,
    outcome         text,
    UNIQUE (goal_id, fire_at),
    CHECK ((state = 'ended') = (ended_at IS NOT NULL))
);
CREATE INDEX goal_runs_open_idx ON dispatch.goal_runs (goal_id) WHERE state <> 'ended';
COMMENT ON TABLE dispatch.goal_runs IS
    'Fires of goals: one row per goal and fire time, so a fire is never started twice';

CREATE TABLE dispatch.goal_instances (
    joblist_id      bigint PRIMARY KEY REFERENCES dispatch.joblists ON DELETE CASCADE,
    run_id          bigint NOT NULL REFERENCES dispatch.goal_runs ON DELETE CASCADE,
    slot            int NOT NULL,
    node            text,
    accounted       boolean NOT NULL DEFAULT false
);
CREATE INDEX goal_instances_run_idx ON dispatch.goal_instances (run_id);
COMMENT ON TABLE dispatch.goal_instances IS 'The joblists started for each goal run';

CREATE FUNCTION dispatch._goal_tz(g dispatch.goals) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(g.timezone, current_setting('dispatch.timezone'))
$$;
COMMENT ON FUNCTION dispatch._goal_tz(dispatch.goals) IS
    'The time zone of goal g: its own, else dispatch.timezone';

CREATE FUNCTION dispatch._is_reboot(schedule text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT lower(btrim(schedule)) IN ('@reboot', '@restart')
$$;
COMMENT ON FUNCTION dispatch._is_reboot(text) IS
    'True for @reboot and its pg_cron alias @restart: fires when a scheduler starts';

CREATE FUNCTION dispatch._check_schedule(schedule text, tz text, sp text, tp text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    msg text;
    detail text;
    hint text;
BEGIN
    BEGIN
        PERFORM dispatch.next_runs('@daily', now(), 1, tz);
    EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        PERFORM dispatch._spec_error(tp, msg);
    END;
    BEGIN
        IF NOT EXISTS (SELECT FROM dispatch.next_runs(schedule, now(), 1, tz))
           AND NOT dispatch._is_reboot(schedule) THEN
            PERFORM dispatch._spec_error(sp, format('schedule "%s" never fires', schedule),
                'Check the day of month against the month, e.g. "0 0 30 2 *" asks for February 30th.');
        END IF;
    EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                                hint = PG_EXCEPTION_HINT;
        IF detail LIKE 'The error is at %' THEN
            RAISE;
        END IF;
        PERFORM dispatch._raise_invalid(msg,
            concat_ws(' ', detail, format('The error is at %s.', sp)), hint);
    END;
END
$$;
COMMENT ON FUNCTION dispatch._check_schedule(text, text, text, text) IS
    'Checks a schedule and time zone (at JSON paths sp and tp); raises like a spec error';

CREATE FUNCTION dispatch._validate_goal(name text, spec jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job_keys text[] := ARRAY['command', 'needs', 'constraints', 'env', 'timeout', 'retries',
                             'files', 'replacements', 'template'];
    job jsonb;
BEGIN
    PERFORM dispatch._check_spec_name(name, 'goal name');
    PERFORM dispatch._json_typed('object', spec, '', 'goal spec');
    PERFORM dispatch._check_keys(spec, ARRAY['schedule', 'window', 'timezone', 'instances',
        'spread', 'overlap', 'catch_up', 'joblist'] || job_keys, '', 'goal spec');
    PERFORM dispatch._require_key(spec, 'schedule', '', 'goal spec');
    IF spec ? 'timezone' THEN
        PERFORM dispatch._json_text(spec -> 'timezone', 'timezone', 'timezone');
    END IF;
    PERFORM dispatch._check_schedule(dispatch._json_text(spec -> 'schedule', 'schedule', 'schedule'),
        coalesce(spec ->> 'timezone', current_setting('dispatch.timezone')), 'schedule', 'timezone');
    IF spec ? 'window' THEN
        PERFORM dispatch._json_interval(spec -> 'window', 'window', 'window');
    END IF;
    IF spec ? 'instances' THEN
        PERFORM dispatch._json_int(spec -> 'instances', 1, 1000, 'instances', 'instances');
    END IF;
    IF spec ? 'spread' THEN
        PERFORM dispatch._json_typed('boolean', spec -> 'spread', 'spread', 'spread');
    END IF;
    IF spec ? 'overlap' THEN
        PERFORM dispatch._json_choice(spec -> 'overlap', ARRAY['skip', 'queue', 'replace'],
            'overlap', 'overlap must be "skip", "queue" or "replace"');
    END IF;
    IF spec ? 'catch_up' THEN
        PERFORM dispatch._json_choice(spec -> 'catch_up', ARRAY['skip', 'once'],
            'catch_up', 'catch_up must be "skip" or "once"');
    END IF;

    -- The instance joblist is checked like any submission, at the goal's own paths.
    IF spec ? 'joblist' THEN
        IF spec ?| job_keys THEN
            PERFORM dispatch._spec_error('joblist',
                'a goal has either a "joblist" or the keys of a job, not both');
        END IF;
        PERFORM dispatch._validate_joblist(jsonb_build_object('name', name) ||
            dispatch._json_typed('object', spec -> 'joblist', 'joblist', 'joblist'), 'joblist');
        RETURN jsonb_build_object('name', name) || (spec -> 'joblist');
    ELSIF NOT spec ? 'command' THEN
        PERFORM dispatch._spec_error('', 'goal spec has no "command" and no "joblist"',
            'Give the command (and files, needs...) of a job, or a whole "joblist" spec.');
    END IF;
    job := jsonb_build_object('name', name) ||
        (SELECT jsonb_object_agg(key, value) FROM jsonb_each(spec) WHERE key = ANY (job_keys));
    PERFORM dispatch._validate_job(job, '');
    RETURN jsonb_build_object('name', name, 'stages', jsonb_build_array(
        jsonb_build_object('name', 'run', 'jobs', jsonb_build_array(job))));
END
$$;
COMMENT ON FUNCTION dispatch._validate_goal(text, jsonb) IS
    'Validates a goal spec; returns the joblist each instance submits';

CREATE FUNCTION dispatch._check_goal_quota() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller name := dispatch.current_caller();
    owned bigint;
BEGIN
    IF dispatch._caller_is_admin() THEN
        RETURN;
    END IF;
    -- one creation at a time per role, so that concurrent ones cannot pass the count together
    PERFORM pg_advisory_xact_lock(hashtext('dispatch.goals'), hashtext(caller));
    SELECT count(*) INTO owned FROM dispatch.goals WHERE owner = caller;
    IF owned >= current_setting('dispatch.max_goals_per_user')::bigint THEN
        RAISE EXCEPTION USING ERRCODE = 'configuration_limit_exceeded',
            MESSAGE = format('too many goals for role "%s"', caller),
            DETAIL = format('The role owns %s goals and SQL jobs; dispatch.max_goals_per_user is %s.',
                            owned, current_setting('dispatch.max_goals_per_user')),
            HINT = 'Drop one (dispatch.drop_goal, dispatch.unschedule), or ask an administrator to raise dispatch.max_goals_per_user.';
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_goal_quota() IS
    'Fails when the caller (unless an admin) owns dispatch.max_goals_per_user goals and SQL '
    'jobs already';

CREATE FUNCTION dispatch._goal_changeable(g dispatch.goals, what text) RETURNS dispatch.goals
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF g.goal_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('%s does not exist', what);
    END IF;
    IF g.owner <> dispatch.current_caller() AND NOT dispatch._caller_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s belongs to %s', what, g.owner),
            HINT = 'Only its owner or a member of dispatch_admin may change it.';
    END IF;
    RETURN g;
END
$$;
COMMENT ON FUNCTION dispatch._goal_changeable(dispatch.goals, text) IS
    'Returns goal g (what: its name in messages) when found and the caller owns it or is '
    'an admin; raises otherwise';

CREATE FUNCTION dispatch._goal_for_change(name text) RETURNS dispatch.goals
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals;
BEGIN
    SELECT * INTO g FROM dispatch.goals x
     WHERE x.name = _goal_for_change.name AND x.kind = 'jobs' FOR UPDATE;
    IF NOT FOUND AND EXISTS (SELECT FROM dispatch.goals x
                              WHERE x.name = _goal_for_change.name AND x.kind = 'sql') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('goal "%s" is a SQL job', name),
            HINT = 'Change it with dispatch.alter_job().';
    END IF;
    RETURN dispatch._goal_changeable(g, format('goal "%s"', name));
END
$$;
COMMENT ON FUNCTION dispatch._goal_for_change(text) IS
    'Locks and returns goal name (not a SQL job) for a change by the caller (its owner or an '
    'admin)';

CREATE FUNCTION dispatch._goal_next(g dispatch.goals, t timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._cron_next(g.schedule, t, dispatch._goal_tz(g))
$$;
COMMENT ON FUNCTION dispatch._goal_next(dispatch.goals, timestamptz) IS
    'The next fire of goal g after t (NULL: never, or @reboot)';

CREATE FUNCTION dispatch._goal_end_run(r dispatch.goal_runs, outcome text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jl bigint;
BEGIN
    FOR jl IN SELECT l.joblist_id FROM dispatch.goal_instances i
                JOIN dispatch.joblists l USING (joblist_id)
               WHERE i.run_id = r.run_id AND l.state IN ('queued', 'running') LOOP
        UPDATE dispatch.joblists SET state = 'cancelled', finished_at = now(), reason = outcome
         WHERE joblist_id = jl;
        PERFORM dispatch._cancel_jobs_of(jl, outcome);
    END LOOP;
    UPDATE dispatch.goal_instances SET accounted = true WHERE run_id = r.run_id;
    UPDATE dispatch.goal_runs x SET state = 'ended', ended_at = now(),
           outcome = _goal_end_run.outcome
     WHERE x.run_id = r.run_id;
END
$$;
COMMENT ON FUNCTION dispatch._goal_end_run(dispatch.goal_runs, text) IS
    'Stops the live instances of run r and ends it with outcome';

CREATE FUNCTION dispatch._goal_start_instance(g dispatch.goals, r dispatch.goal_runs)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    spec jsonb := g.joblist;
    chosen text;
    jl bigint;
BEGIN
    IF g.spread THEN
        SELECT n.node INTO chosen FROM dispatch._sched_nodes n
         WHERE NOT EXISTS (
                 SELECT FROM jsonb_each_text(coalesce(g.spec -> 'constraints', '{}')) c
                  WHERE NOT EXISTS (SELECT FROM dispatch._sched_node_labels l
                                     WHERE l.node = n.node AND l.key = c.key
                                       AND l.value = c.value))
           AND n.node NOT IN (SELECT i.node FROM dispatch.goal_instances i
                                JOIN dispatch.goal_runs x USING (run_id)
                                JOIN dispatch.joblists l USING (joblist_id)
                               WHERE x.goal_id = g.goal_id AND l.state IN ('queued', 'running')
                                 AND i.node IS NOT NULL)
         ORDER BY (SELECT count(*) FROM dispatch.jobs j
                    WHERE j.node = n.node AND j.state IN ('assigned', 'running')), n.node
         LIMIT 1;
        IF chosen IS NULL THEN
            RETURN false;
        END IF;
        -- pin every job of the instance to the chosen node
        SELECT jsonb_set(spec, '{stages}', jsonb_agg(jsonb_set(s, '{jobs}',
                 (SELECT jsonb_agg(j || jsonb_build_object('constraints',
                            coalesce(j -> 'constraints', '{}') || jsonb_build_object('node', chosen)))
                    FROM jsonb_array_elements(s -> 'jobs') j)) ORDER BY o))
          INTO spec
          FROM jsonb_array_elements(spec -> 'stages') WITH ORDINALITY AS x(s, o);
    END IF;
    jl := dispatch._submit(spec, g.owner);
    INSERT INTO dispatch.goal_instances (joblist_id, run_id, slot, node)
    VALUES (jl, r.run_id, (SELECT count(*) + 1 FROM dispatch.goal_instances i
                            WHERE i.run_id = r.run_id), chosen);
    RETURN true;
END
$$;
COMMENT ON FUNCTION dispatch._goal_start_instance(dispatch.goals, dispatch.goal_runs) IS
    'Starts one more instance of goal g in run r; returns false when spread finds no node';

CREATE FUNCTION dispatch._goal_start_run(g dispatch.goals, r dispatch.goal_runs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE dispatch.goal_runs SET state = 'active', started_at = now()
     WHERE run_id = r.run_id;
    IF g.kind = 'sql' THEN
        INSERT INTO dispatch.job_run_details (jobid, runid, database, username, command, status)
        VALUES (g.goal_id, r.run_id, g.database, g.username, g.command, 'starting');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._goal_start_run(dispatch.goals, dispatch.goal_runs) IS
    'Starts run r of goal g now: its SQL command, or (through _goal_keep) its instances';

CREATE FUNCTION dispatch._goal_fire(g dispatch.goals, at timestamptz, cause text)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur dispatch.goal_runs;
    r dispatch.goal_runs;
    queued boolean := false;
BEGIN
    SELECT * INTO cur FROM dispatch.goal_runs
     WHERE goal_id = g.goal_id AND state = 'active' ORDER BY fire_at DESC LIMIT 1;
    IF FOUND THEN
        IF g.overlap = 'skip' OR (g.overlap = 'queue' AND EXISTS (
                SELECT FROM dispatch.goal_runs WHERE goal_id = g.goal_id AND state = 'queued')) THEN
            UPDATE dispatch.goals SET skipped_fires = skipped_fires + 1 WHERE goal_id = g.goal_id;
            RETURN NULL;
        ELSIF g.overlap = 'replace' THEN
            PERFORM dispatch._goal_end_run(cur, format('replaced by the fire at %s', at));
        ELSE
            queued := true;
        END IF;
    END IF;
    INSERT INTO dispatch.goal_runs (goal_id, fire_at, cause, state, window_end)
    VALUES (g.goal_id, at, cause, 'queued', at + g.run_window)
    ON CONFLICT (goal_id, fire_at) DO NOTHING
    RETURNING * INTO r;
    IF r.run_id IS NULL THEN
        RETURN NULL;			-- this fire was started before (a restart, a failover)
    END IF;
    IF NOT queued THEN
        PERFORM dispatch._goal_start_run(g, r);
    END IF;
    PERFORM dispatch.wake_scheduler();
    RETURN r.run_id;
END
$$;
COMMENT ON FUNCTION dispatch._goal_fire(dispatch.goals, timestamptz, text) IS
    'Fires goal g for fire time at: starts a run, queues it, or skips it (overlap)';

CREATE FUNCTION dispatch._goal_keep(g dispatch.goals, r dispatch.goal_runs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ended record;
    live int;
    started int;
    failed int;
BEGIN
    IF r.state = 'queued' THEN
        IF EXISTS (SELECT FROM dispatch.goal_runs
                    WHERE goal_id = g.goal_id AND state = 'active') THEN
            RETURN;
        END IF;
        PERFORM dispatch._goal_start_run(g, r);
        SELECT * INTO r FROM dispatch.goal_runs WHERE run_id = r.run_id;
    END IF;
    IF g.kind = 'sql' THEN
        RETURN;					-- ended when its job_run_details row ends
    END IF;

    -- Instances that ended since the last look: a failure backs off the next start.
    FOR ended IN UPDATE dispatch.goal_instances i SET accounted = true
                   FROM dispatch.joblists l
                  WHERE i.run_id = r.run_id AND NOT i.accounted AND l.joblist_id = i.joblist_id
                    AND l.state NOT IN ('queued', 'running')
                 RETURNING l.state LOOP
        IF ended.state = 'succeeded' THEN
            g.failures := 0;
        ELSE
            g.failures := g.failures + 1;
        END IF;
        g.retry_at := CASE WHEN g.failures >= 2
                           THEN now() + make_interval(secs => least(2 ^ (g.failures - 1), 300)) END;
        UPDATE dispatch.goals SET failures = g.failures, retry_at = g.retry_at
         WHERE goal_id = g.goal_id;
    END LOOP;

    SELECT count(*) FILTER (WHERE l.state IN ('queued', 'running')), count(*),
           count(*) FILTER (WHERE l.state NOT IN ('queued', 'running', 'succeeded'))
      INTO live, started, failed
      FROM dispatch.goal_instances i JOIN dispatch.joblists l USING (joblist_id)
     WHERE i.run_id = r.run_id;

    IF r.window_end IS NOT NULL THEN
        IF now() >= r.window_end THEN
            PERFORM dispatch._goal_end_run(r, CASE WHEN failed = 0 THEN 'window ended'
                ELSE format('window ended; %s instance(s) failed', failed) END);
            RETURN;
        END IF;
        WHILE g.active AND live < g.instances AND (g.retry_at IS NULL OR now() >= g.retry_at) LOOP
            EXIT WHEN NOT dispatch._goal_start_instance(g, r);
            live := live + 1;
        END LOOP;
        UPDATE dispatch.goal_runs x SET outcome = n.note
          FROM (SELECT CASE WHEN live < g.instances AND g.spread
                  THEN format('%s of %s instances running: no other node for spread',
                              live, g.instances) END AS note) n
         WHERE x.run_id = r.run_id AND x.outcome IS DISTINCT FROM n.note;
    ELSIF started < g.instances THEN
        WHILE started < g.instances LOOP
            EXIT WHEN NOT dispatch._goal_start_instance(g, r);
            started := started + 1;
        END LOOP;
    ELSIF live = 0 THEN
        UPDATE dispatch.goal_runs SET state = 'ended', ended_at = now(),
               outcome = CASE WHEN failed = 0 THEN 'succeeded'
                              ELSE format('failed (%s of %s instances)', failed, started) END
         WHERE run_id = r.run_id;
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._goal_keep(dispatch.goals, dispatch.goal_runs) IS
    'Keeps run r of goal g true: counts ended instances, replaces them, ends the run';

-- Computed directly (core/cron_next.c cron_latest), not by listing every fire since
-- after: a "1 seconds" goal costs the same whether one fire or a day of them is due.
CREATE FUNCTION dispatch._goal_latest_fire(g dispatch.goals, after timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._cron_latest(g.schedule, after, now(), dispatch._goal_tz(g))
$$;
COMMENT ON FUNCTION dispatch._goal_latest_fire(dispatch.goals, timestamptz) IS
    'The latest fire of goal g in (after, now()], or NULL';

CREATE FUNCTION dispatch._goal_evaluate(g dispatch.goals, since timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    latest timestamptz;
    r dispatch.goal_runs;
BEGIN
    IF g.active AND dispatch._is_reboot(g.schedule) THEN
        -- once per scheduler start (a server start or a failover)
        IF NOT EXISTS (SELECT FROM dispatch.goal_runs
                        WHERE goal_id = g.goal_id AND fire_at >= since) THEN
            PERFORM dispatch._goal_fire(g, since, 'reboot');
        END IF;
    ELSIF g.active AND g.next_fire_at <= now() THEN
        latest := dispatch._goal_latest_fire(g, g.next_fire_at - interval '1 microsecond');
        IF latest >= since OR latest + g.run_window > now() THEN
            PERFORM dispatch._goal_fire(g, latest, 'schedule');
        ELSIF g.catch_up = 'once' THEN
            PERFORM dispatch._goal_fire(g, latest, 'catch_up');
        ELSE
            UPDATE dispatch.goals SET skipped_fires = skipped_fires + 1 WHERE goal_id = g.goal_id;
        END IF;
        UPDATE dispatch.goals SET next_fire_at = dispatch._goal_next(g, now())
         WHERE goal_id = g.goal_id;
    END IF;
    SELECT * INTO g FROM dispatch.goals WHERE goal_id = g.goal_id;
    FOR r IN SELECT * FROM dispatch.goal_runs
              WHERE goal_id = g.goal_id AND state <> 'ended' ORDER BY fire_at LOOP
        PERFORM dispatch._goal_keep(g, r);
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._goal_evaluate(dispatch.goals, timestamptz) IS
    'Fires goal g when due and keeps its open runs true; since: when this scheduler started';

CREATE FUNCTION dispatch._goal_tick() RETURNS double precision
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    since timestamptz;
    g dispatch.goals;
    keep interval := current_setting('dispatch.run_history_retention')::interval;
    msg text;
    deadline timestamptz;
BEGIN
    SELECT backend_start INTO since FROM pg_stat_activity WHERE pid = pg_backend_pid();

    -- SQL runs that ended (recorded by _sql_runs_sync earlier in the cycle) end their goal run.
    UPDATE dispatch.goal_runs r SET state = 'ended', ended_at = d.end_time, outcome = d.status
      FROM dispatch.job_run_details d
     WHERE d.runid = r.run_id AND r.state = 'active' AND d.status IN ('succeeded', 'failed');

    -- One goal's trouble (say, its joblist no longer validates) must not stop the others.
    FOR g IN SELECT * FROM dispatch.goals ORDER BY goal_id FOR UPDATE LOOP
        BEGIN
            PERFORM dispatch._goal_evaluate(g, since);
            UPDATE dispatch.goals SET last_error = NULL
             WHERE goal_id = g.goal_id AND last_error IS NOT NULL;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            UPDATE dispatch.goals SET last_error = msg,
                   next_fire_at = CASE WHEN next_fire_at <= now()
                                       THEN dispatch._goal_next(g, now()) ELSE next_fire_at END
             WHERE goal_id = g.goal_id;
        END;
    END LOOP;

    DELETE FROM dispatch.job_run_details WHERE end_time < now() - keep;
    DELETE FROM dispatch.goal_runs WHERE state = 'ended' AND ended_at < now() - keep;

    SELECT min(t) INTO deadline FROM (
        SELECT next_fire_at FROM dispatch.goals WHERE active
        UNION ALL
        SELECT r.window_end FROM dispatch.goal_runs r WHERE r.state = 'active'
        UNION ALL
        SELECT g2.retry_at FROM dispatch.goals g2
         WHERE g2.retry_at > now() AND EXISTS (SELECT FROM dispatch.goal_runs r
                                                WHERE r.goal_id = g2.goal_id AND r.state = 'active')
    ) x(t);
    IF deadline IS NULL THEN
        RETURN NULL;			-- nothing to wait for
    END IF;
    RETURN greatest(extract(epoch FROM deadline - now()), 0.01);
END
$$;
COMMENT ON FUNCTION dispatch._goal_tick() IS
    'Scheduler: evaluates every goal; returns seconds to the next goal deadline';
