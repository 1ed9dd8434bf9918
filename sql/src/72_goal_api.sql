------------------------------------------------------------------------------
-- Goal API
------------------------------------------------------------------------------

CREATE FUNCTION dispatch._goal_store(name text, spec jsonb, g bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jl jsonb := dispatch._validate_goal(name, spec);
    s jsonb := spec;
    id bigint;
BEGIN
    IF g IS NULL THEN
        IF EXISTS (SELECT FROM dispatch.goals x WHERE x.name = _goal_store.name AND x.kind = 'jobs') THEN
            RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
                MESSAGE = format('goal "%s" already exists', name),
                HINT = 'Use dispatch.alter_goal() to change it.';
        END IF;
        PERFORM dispatch._check_goal_quota();
        INSERT INTO dispatch.goals (name, kind, spec, joblist, schedule, owner)
        VALUES (name, 'jobs', s, jl, s ->> 'schedule', dispatch.current_caller())
        RETURNING goal_id INTO id;
    ELSE
        id := g;
    END IF;
    UPDATE dispatch.goals x
       SET spec = s, joblist = jl, schedule = s ->> 'schedule', timezone = s ->> 'timezone',
           run_window = CASE WHEN s ? 'window'
                             THEN dispatch._json_interval(s -> 'window', 'window', 'window') END,
           instances = coalesce((s ->> 'instances')::int, 1),
           spread = coalesce((s ->> 'spread')::boolean, false),
           overlap = coalesce(s ->> 'overlap', 'skip'),
           catch_up = coalesce(s ->> 'catch_up', 'skip'),
           failures = 0, retry_at = NULL, last_error = NULL
     WHERE x.goal_id = id;
    UPDATE dispatch.goals x SET next_fire_at = dispatch._goal_next(x, now()) WHERE x.goal_id = id;
    PERFORM dispatch.wake_scheduler();
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch._goal_store(text, jsonb, bigint) IS
    'Stores a validated goal spec into goal g''s row (a new one when g is NULL); returns '
    'its id';

CREATE FUNCTION dispatch.create_goal(name text, spec jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._goal_store(name, spec, NULL)
$$;
COMMENT ON FUNCTION dispatch.create_goal(text, jsonb) IS
    'Create a recurring goal (schedule, window, instances, a job or a joblist); returns '
    'its id';

CREATE FUNCTION dispatch.alter_goal(name text, spec jsonb) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._goal_store(name, spec, (dispatch._goal_for_change(name)).goal_id);
$$;
COMMENT ON FUNCTION dispatch.alter_goal(text, jsonb) IS
    'Replace the spec of a goal; running instances go on, new ones follow the new spec';

CREATE FUNCTION dispatch._goal_set_active(name text, active boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals := dispatch._goal_for_change(name);
BEGIN
    IF active THEN
        g.failures := 0;
        g.retry_at := NULL;
        g.next_fire_at := dispatch._goal_next(g, now());
    END IF;
    UPDATE dispatch.goals x
       SET active = _goal_set_active.active, failures = g.failures, retry_at = g.retry_at,
           next_fire_at = g.next_fire_at
     WHERE x.goal_id = g.goal_id;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch._goal_set_active(text, boolean) IS
    'Pauses or resumes goal name for the caller (resuming clears its backoff and fires from '
    'now on)';

CREATE FUNCTION dispatch.pause_goal(name text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._goal_set_active(name, false)
$$;
COMMENT ON FUNCTION dispatch.pause_goal(text) IS
    'Stop firing a goal and replacing its instances; running instances go on to their '
    'window end';

CREATE FUNCTION dispatch.resume_goal(name text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._goal_set_active(name, true)
$$;
COMMENT ON FUNCTION dispatch.resume_goal(text) IS
    'Resume a paused goal from now on (fires missed while paused are skipped)';

CREATE FUNCTION dispatch.drop_goal(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals := dispatch._goal_for_change(name);
    r dispatch.goal_runs;
BEGIN
    FOR r IN SELECT * FROM dispatch.goal_runs WHERE goal_id = g.goal_id AND state <> 'ended' LOOP
        PERFORM dispatch._goal_end_run(r, format('goal "%s" dropped', name));
    END LOOP;
    DELETE FROM dispatch.goals WHERE goal_id = g.goal_id;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.drop_goal(text) IS
    'Drop a goal, stopping its running instances';

CREATE FUNCTION dispatch.run_goal_now(name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g dispatch.goals := dispatch._goal_for_change(name);
    run bigint := dispatch._goal_fire(g, clock_timestamp(), 'manual');
BEGIN
    IF run IS NULL THEN
        RAISE NOTICE 'goal "%" is running and its overlap is "%": nothing started', name, g.overlap;
    END IF;
    RETURN run;
END
$$;
COMMENT ON FUNCTION dispatch.run_goal_now(text) IS
    'Fire a goal now, as its schedule would (its overlap rule applies); returns the run id';

CREATE VIEW dispatch.goal_status AS
    SELECT g.goal_id, g.name, g.kind, g.schedule,
           coalesce(g.timezone, current_setting('dispatch.timezone')) AS timezone,
           g.run_window AS "window", g.instances, g.active, g.owner,
           g.next_fire_at AS next_fire,
           last.fire_at AS last_fire, last.state AS last_run_state,
           (SELECT r.outcome FROM dispatch.goal_runs r WHERE r.goal_id = g.goal_id
               AND r.state = 'ended' ORDER BY r.fire_at DESC LIMIT 1) AS last_outcome,
           (SELECT count(*) FROM dispatch.goal_instances i
              JOIN dispatch.goal_runs r USING (run_id)
              JOIN dispatch.joblists l USING (joblist_id)
             WHERE r.goal_id = g.goal_id AND l.state IN ('queued', 'running')) AS instances_running,
           cur.window_end, cur.outcome AS note,
           g.failures, CASE WHEN g.retry_at > now() THEN g.retry_at END AS backoff_until,
           g.skipped_fires, g.last_error,
           CASE WHEN dispatch._caller_may_read(g.owner) THEN g.spec END AS spec
      FROM dispatch.goals g
      LEFT JOIN LATERAL (SELECT * FROM dispatch.goal_runs r WHERE r.goal_id = g.goal_id
                          ORDER BY r.fire_at DESC LIMIT 1) last ON true
      LEFT JOIN LATERAL (SELECT * FROM dispatch.goal_runs r
                          WHERE r.goal_id = g.goal_id AND r.state = 'active'
                          ORDER BY r.fire_at DESC LIMIT 1) cur ON true;
COMMENT ON VIEW dispatch.goal_status IS
    'One row per goal: next fire, last outcome, instances running, backoff; spec only for '
    'its owner and admins';
