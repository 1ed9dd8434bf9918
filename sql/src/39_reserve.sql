------------------------------------------------------------------------------
-- Group reservations: a whole group placed as one Tetris piece
------------------------------------------------------------------------------
--
-- A job whose "group" is {"name", "needs"} reserves for its group: the group's jobs
-- run inside one piece of that size, on one node, placed by the allocator in the
-- queue's FIFO order like any job (and backfilled around like one).  The piece is a
-- job of its own, the reservation: named "group:NAME", running nothing, reserves set
-- (30_joblists.sql).  It waits until one of the group's jobs is ready (held at the
-- gate "group"), then queues; once placed, the group's ready jobs are lent units of
-- its units in job order (a job that does not fit waits, and none after it overtakes
-- it); a lent unit is held by the job and by the reservation (allocations.lent_by)
-- and counts once, the reservation's.  The reservation ends with the group's last
-- job (_finish_jobs), succeeded, or skipped when it was never placed.  Its condition
-- is "always": a failure elsewhere does not take the units from clean-up jobs of the
-- group.  When it ends early all the same (the joblist cancelled or timed out, its
-- node drained or lost), the jobs it lent to keep their units alone until they end,
-- and the group's waiting jobs go on as in a group without a reservation
-- (36_dataflow.sql: they follow its node), or after a lost node wait for it to be
-- placed again.
--
-- At submit every job of a reserved group must fit in the reservation, all of them
-- in one stage (the piece is placed once), without an array throttle (the
-- reservation is the throttle), and the jobs' constraints must agree: the piece goes
-- where every job of the group may run.

-- The jobs of reserved groups in a validated spec: group, its needs (the first job's
-- that gives them), and each job with its stage, index and JSON path.
CREATE FUNCTION dispatch._reserved_jobs(spec jsonb)
RETURNS TABLE (group_name text, group_needs jsonb, group_path text, stage int, k int,
               job_path text, name text, job jsonb)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH m AS (
        SELECT dispatch._group_of(f.job) AS g, f.* FROM dispatch._flow_jobs(spec) f
         WHERE f.job ? 'group'),
    r AS (
        SELECT DISTINCT ON (m.g) m.g, m.job -> 'group' -> 'needs' AS needs, m.job_path
          FROM m WHERE jsonb_typeof(m.job -> 'group') = 'object'
         ORDER BY m.g, m.stage, m.k)
    SELECT r.g, r.needs, r.job_path, m.stage, m.k, m.job_path, m.name, m.job
      FROM m JOIN r USING (g)
$$;
COMMENT ON FUNCTION dispatch._reserved_jobs(jsonb) IS
    'The jobs of validated spec whose groups reserve, each with its group and the group''s needs';

CREATE FUNCTION dispatch._check_groups(spec jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS _group_jobs (group_name text, group_needs jsonb,
                                                 group_path text, stage int, k int,
                                                 job_path text, name text, job jsonb)
        ON COMMIT DROP;
    TRUNCATE _group_jobs;
    INSERT INTO _group_jobs SELECT * FROM dispatch._reserved_jobs(spec);
    SELECT j.job_path, j.group_name INTO bad FROM _group_jobs j
     WHERE jsonb_typeof(j.job -> 'group') = 'object'
       AND j.job -> 'group' -> 'needs' <> j.group_needs
     ORDER BY j.stage, j.k LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(dispatch._path(dispatch._path(bad.job_path, 'group'), 'needs'),
            format('group "%s" is given other needs than before', bad.group_name),
            'Give a group''s needs once, or the same needs on every job that gives them.');
    END IF;
    SELECT j.* INTO bad FROM _group_jobs j
     WHERE j.stage <> (SELECT min(o.stage) FROM _group_jobs o WHERE o.group_name = j.group_name)
     ORDER BY j.stage, j.k LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(dispatch._path(bad.job_path, 'group'),
            format('the jobs of group "%s" must be in one stage: the group reserves for them all at once',
                   bad.group_name),
            'Put them in one stage and order them with "after".');
    END IF;
    SELECT j.* INTO bad FROM _group_jobs j WHERE j.job -> 'array' ? 'parallel'
     ORDER BY j.stage, j.k LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(dispatch._path(dispatch._path(bad.job_path, 'array'), 'parallel'),
            format('job "%s" of group "%s" cannot throttle its array', bad.name, bad.group_name),
            'The group''s reservation is the throttle: as many cells run as fit in it.');
    END IF;
    -- (a job without needs needs one cpu, as _insert_jobs stores it)
    SELECT j.*, n.key AS type, n.value AS count,
           dispatch._path(j.job_path, CASE WHEN j.job ? 'needs' THEN 'needs' ELSE 'group' END) AS at
      INTO bad
      FROM _group_jobs j,
           jsonb_each(CASE WHEN coalesce(j.job -> 'needs', '{}') = '{}' THEN '{"cpu": 1}'
                           ELSE j.job -> 'needs' END) n
     WHERE coalesce((j.group_needs ->> n.key)::bigint, 0) < n.value::text::bigint
     ORDER BY j.stage, j.k, n.key LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(bad.at,
            format('job "%s" needs %s %s, more than its group "%s" reserves (%s)', bad.name,
                   bad.count, bad.type, bad.group_name,
                   coalesce(bad.group_needs ->> bad.type, '0')),
            'A job of a reserved group runs on the group''s units; a job without needs needs 1 cpu.');
    END IF;
    SELECT j.job_path, j.name, c.key, c.value, o.name AS other, o.value AS other_value,
           j.group_name INTO bad
      FROM _group_jobs j, jsonb_each_text(j.job -> 'constraints') c,
           LATERAL (SELECT o.name, oc.value
                      FROM _group_jobs o, jsonb_each_text(o.job -> 'constraints') oc
                     WHERE o.group_name = j.group_name AND (o.stage, o.k) < (j.stage, j.k)
                       AND oc.key = c.key AND oc.value <> c.value
                     ORDER BY o.stage, o.k LIMIT 1) o
     WHERE j.job ? 'constraints'
     ORDER BY j.stage, j.k, c.key LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(dispatch._path(dispatch._path(bad.job_path, 'constraints'), bad.key),
            format('job "%s" constrains "%s" to "%s", but job "%s" of its group "%s" to "%s"',
                   bad.name, bad.key, bad.value, bad.other, bad.group_name, bad.other_value),
            'A group''s reservation is placed once, where every job of the group may run.');
    END IF;
    SELECT f.job_path, f.name INTO bad FROM dispatch._flow_jobs(spec) f
     WHERE f.name IN (SELECT 'group:' || j.group_name FROM _group_jobs j)
     ORDER BY f.stage, f.k LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(dispatch._path(bad.job_path, 'name'),
            format('the job name "%s" is taken by the reservation of its group', bad.name),
            'A reserved group''s reservation is a job named "group:" and the group''s name.');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_groups(jsonb) IS
    'Fails unless the reserved groups of a validated joblist spec are consistent: one '
    'reservation each, its jobs in one stage, unthrottled, fitting in it, their '
    'constraints in agreement, and no job named like a reservation';

-- At submit: one reservation per reserved group of joblist jl (spec: as submitted),
-- in the group's stage, held until a job of the group is ready.
CREATE FUNCTION dispatch._add_reservations(jl bigint, spec jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO dispatch.jobs (joblist_id, stage, name, command, needs, constraints, timeout,
                               reason, condition, held, reserves)
    SELECT jl, min(r.stage), 'group:' || r.group_name, '', r.group_needs,
           coalesce((SELECT jsonb_object_agg(c.key, c.value)
                       FROM (SELECT DISTINCT c.key, c.value
                               FROM dispatch._reserved_jobs(spec) o,
                                    jsonb_each(o.job -> 'constraints') c
                              WHERE o.group_name = r.group_name) c), '{}'),
           NULL, format('waiting for a job of group "%s" to be ready', r.group_name),
           'always', 'group', r.group_name
      FROM dispatch._reserved_jobs(spec) r
     GROUP BY r.group_name, r.group_needs
     ORDER BY r.group_name
$$;
COMMENT ON FUNCTION dispatch._add_reservations(bigint, jsonb) IS
    'Adds the reservations of the reserved groups of newly submitted joblist jl (its spec)';

-- What a placed reservation can still lend of type, unit by unit in taking order
-- (as _sched_units orders them).
CREATE FUNCTION dispatch._lendable(holder bigint, type text)
RETURNS TABLE (resource_id bigint, ident text, is_amount boolean, free bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.resource_id, r.ident, r.is_amount,
           a.amount - coalesce((SELECT sum(l.amount) FROM dispatch.allocations l
                                 WHERE l.lent_by = holder AND l.resource_id = a.resource_id), 0)
      FROM dispatch.allocations a JOIN dispatch.resources r USING (resource_id)
     WHERE a.job_id = holder AND a.lent_by IS NULL AND r.type = _lendable.type
     ORDER BY regexp_replace(r.ident, '[0-9]+$', ''),
              substring(r.ident FROM '[0-9]+$')::numeric NULLS FIRST, r.ident
$$;
COMMENT ON FUNCTION dispatch._lendable(bigint, text) IS
    'The units of type the placed reservation holder holds, each with how much it has not lent';

-- Lends units of the placed reservation h to its group's ready jobs, in job order,
-- until one does not fit; returns whether any was assigned.
CREATE FUNCTION dispatch._lend(h dispatch.jobs) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
    need record;
    u record;
    units bigint[];
    amounts bigint[];
    got jsonb;
    idents jsonb;
    missing bigint;
    lent boolean := false;
BEGIN
    <<jobs>>
    FOR m IN SELECT j.job_id, j.needs FROM dispatch.jobs j
              WHERE j.joblist_id = h.joblist_id AND j.group_name = h.reserves
                AND j.state = 'pending' AND j.held = 'group' AND j.stage = h.stage
              ORDER BY j.job_id LOOP
        units := '{}';
        amounts := '{}';
        got := '{}';
        FOR need IN SELECT n.key, n.value::text::bigint AS count FROM jsonb_each(m.needs) n
                     ORDER BY n.key LOOP
            missing := need.count;
            idents := '[]';
            FOR u IN SELECT * FROM dispatch._lendable(h.job_id, need.key) x WHERE x.free > 0 LOOP
                EXIT WHEN missing = 0;
                units := units || u.resource_id;
                amounts := amounts || least(u.free, missing);
                idents := idents || to_jsonb(u.ident);
                missing := missing - least(u.free, missing);
            END LOOP;
            EXIT jobs WHEN missing > 0;     -- FIFO: none after it goes first
            got := got || jsonb_build_object(need.key,
                CASE WHEN u.is_amount THEN to_jsonb(need.count) ELSE idents END);
        END LOOP;
        UPDATE dispatch.jobs
           SET state = 'assigned', node = h.node, resources = got, held = NULL, reason = NULL,
               expected_start = NULL, expected_node = NULL, assigned_at = clock_timestamp()
         WHERE job_id = m.job_id;
        INSERT INTO dispatch.allocations (resource_id, job_id, amount, lent_by)
        SELECT x.unit, m.job_id, x.amount, h.job_id FROM unnest(units, amounts) AS x(unit, amount);
        lent := true;
    END LOOP;
    IF lent THEN
        PERFORM pg_notify('dispatch_node_' || h.node, 'run');
    END IF;
    UPDATE dispatch.jobs j
       SET reason = format('waiting for room in the reservation of its group "%s" on node "%s"',
                           h.reserves, h.node)
     WHERE j.joblist_id = h.joblist_id AND j.group_name = h.reserves
       AND j.state = 'pending' AND j.held = 'group' AND j.stage = h.stage
       AND j.reason IS DISTINCT FROM format('waiting for room in the reservation of its group "%s" on node "%s"',
                                            h.reserves, h.node);
    RETURN lent;
END
$$;
COMMENT ON FUNCTION dispatch._lend(dispatch.jobs) IS
    'Assigns the ready jobs of placed reservation h''s group, in order, to units it lends them '
    'until one does not fit; true when any was assigned';

-- The reservations of the groups named (parallel arrays of joblists and groups) whose
-- jobs have all ended end too: succeeded once placed, else skipped.
CREATE FUNCTION dispatch._settle_reservations(jls bigint[], groups text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[];
    finals text[];
    whys text[];
BEGIN
    SELECT array_agg(h.job_id ORDER BY h.job_id),
           array_agg(CASE WHEN h.state = 'pending' THEN 'skipped' ELSE 'succeeded' END
                     ORDER BY h.job_id),
           array_agg(format(CASE WHEN h.state = 'pending'
                                 THEN 'skipped: group "%s" ended before it was placed'
                                 ELSE 'group "%s" has ended' END, h.reserves) ORDER BY h.job_id)
      INTO ids, finals, whys
      FROM dispatch.jobs h
     WHERE (h.joblist_id, h.reserves) IN (SELECT DISTINCT * FROM unnest(jls, groups))
       AND h.state IN ('pending', 'assigned', 'running')
       AND NOT EXISTS (SELECT FROM dispatch.jobs j
                        WHERE j.joblist_id = h.joblist_id AND j.group_name = h.reserves
                          AND j.state IN ('pending', 'assigned', 'running'));
    IF ids IS NOT NULL THEN
        PERFORM dispatch._finish_jobs(ids, finals, whys);
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._settle_reservations(bigint[], text[]) IS
    'Ends the unfinished reservations of the groups named (joblists jls, groups) that have '
    'no job left to run';
