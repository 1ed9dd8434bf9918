------------------------------------------------------------------------------
-- Scheduler interface: what the scheduler worker reads and writes (src/scheduler.c)
------------------------------------------------------------------------------
--
-- Each cycle the worker calls _housekeeping() (expire silent nodes, advance stages),
-- reads the _sched_* views, places jobs with its C allocator, and writes the whole
-- cycle back with one _assign_many() and one _set_reasons() call.  Times cross the
-- boundary as whole seconds of the Unix epoch; a job's time limit is its timeout.

CREATE FUNCTION dispatch._housekeeping() RETURNS double precision
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    timeout interval := current_setting('dispatch.node_timeout')::interval;
    n text;
    jl dispatch.joblists;
    since timestamptz;
    next_deadline double precision;
BEGIN
    -- Heartbeats missed while no scheduler ran (a restart, a failover) do not count:
    -- silence is measured from this scheduler's start at the earliest.
    SELECT backend_start INTO since FROM pg_stat_activity WHERE pid = pg_backend_pid();
    FOR n IN UPDATE dispatch.nodes SET state = 'offline', state_changed_at = now()
              WHERE state <> 'offline'
                AND greatest(last_heartbeat, since) < now() - timeout
             RETURNING node LOOP
        PERFORM dispatch._lose_jobs(n);
    END LOOP;

    -- A joblist needs attention when its current stage has no active job left or a bad one.
    FOR jl IN SELECT l.* FROM dispatch.joblists l
               WHERE l.state IN ('queued', 'running')
                 AND (NOT EXISTS (SELECT 1 FROM dispatch.jobs j
                                   WHERE j.joblist_id = l.joblist_id
                                     AND j.stage = l.current_stage
                                     AND j.state IN ('pending', 'assigned', 'running'))
                      OR (l.fail_fast AND EXISTS (
                                  SELECT 1 FROM dispatch.jobs j
                                   WHERE j.joblist_id = l.joblist_id
                                     AND j.stage = l.current_stage
                                     AND j.state IN ('failed', 'lost', 'cancelled'))))
               ORDER BY l.joblist_id FOR UPDATE LOOP
        -- A stage may finish as soon as the next is entered (it was already done).
        LOOP
            PERFORM dispatch._advance_joblist(jl);
            SELECT * INTO jl FROM dispatch.joblists WHERE joblist_id = jl.joblist_id;
            EXIT WHEN jl.state NOT IN ('queued', 'running')
                   OR EXISTS (SELECT 1 FROM dispatch.jobs j
                               WHERE j.joblist_id = jl.joblist_id
                                 AND j.stage = jl.current_stage
                                 AND j.state IN ('pending', 'assigned', 'running'));
        END LOOP;
    END LOOP;

    SELECT extract(epoch FROM greatest(min(last_heartbeat), since) + timeout - now())
      INTO next_deadline
      FROM dispatch.nodes WHERE state <> 'offline';
    RETURN greatest(next_deadline, 0.1);
END
$$;
COMMENT ON FUNCTION dispatch._housekeeping() IS
    'Scheduler: expire silent nodes, advance stages, finish joblists; returns seconds to '
    'the next deadline';

CREATE VIEW dispatch._sched_nodes AS
    SELECT node FROM dispatch.nodes WHERE state = 'online' ORDER BY node;
COMMENT ON VIEW dispatch._sched_nodes IS 'Scheduler input: online nodes';

-- A plain constraint key matches the labels an admin set and the node's name; an
-- agent's claims (its labels, hostname, arch and os) match only keys that say
-- "reported:" (docs/security.md, "Labels and node names").
CREATE VIEW dispatch._sched_node_labels AS
    SELECT n.node, l.key, l.value
      FROM dispatch.nodes n,
           LATERAL (SELECT key, value FROM jsonb_each_text(n.admin_labels)
                    UNION ALL VALUES ('node', n.node)
                    UNION ALL SELECT 'reported:' || key, value FROM jsonb_each_text(n.labels)
                    UNION ALL VALUES ('reported:arch', n.arch),
                                     ('reported:os', lower(split_part(n.os, ' ', 1))),
                                     ('reported:hostname', n.hostname)) l(key, value)
     WHERE n.state = 'online' AND l.value IS NOT NULL
     ORDER BY n.node, l.key;
COMMENT ON VIEW dispatch._sched_node_labels IS
    'Scheduler input: node labels: the admin''s and node, and the agent''s as reported:key';

CREATE VIEW dispatch._sched_free AS
    SELECT r.resource_id, r.type, r.ident, r.node,
           (r.capacity - coalesce(sum(a.amount), 0))::bigint AS free, r.capacity
      FROM dispatch.resources r
      LEFT JOIN dispatch.allocations a USING (resource_id)
      LEFT JOIN dispatch.nodes n ON n.node = r.node
     WHERE r.node IS NULL OR n.state = 'online'
     GROUP BY r.resource_id
     ORDER BY r.type, r.node NULLS LAST,
              regexp_replace(r.ident, '[0-9]+$', ''),
              substring(r.ident FROM '[0-9]+$')::numeric NULLS FIRST, r.ident;
COMMENT ON VIEW dispatch._sched_free IS 'Scheduler input: resource units with their free amount';

-- No join here can degrade into comparing every pending job with every other (a
-- nested loop over aggregated subqueries took a 20,000-job cycle to minutes): each
-- active joblist's pending jobs are one lookup in jobs_pending_idx (the ORDER BY
-- keeps the lateral subquery a parameterized scan), and needs and constraints are
-- read from the job's own row.
CREATE VIEW dispatch._sched_jobs AS
    SELECT j.job_id, j.joblist_id,
           ARRAY(SELECT n.key || '=' || n.value::text::bigint
                   FROM jsonb_each(j.needs) n ORDER BY n.key) AS needs,
           ARRAY(SELECT c.key || '=' || c.value
                   FROM jsonb_each_text(j.constraints) c ORDER BY c.key) AS constraints,
           ceil(extract(epoch FROM j.timeout
                              + current_setting('dispatch.kill_grace')::interval))::bigint
               AS time_limit,
           ceil(extract(epoch FROM j.expected_start))::bigint AS expected_start,
           j.expected_node
      FROM dispatch.joblists l,
           LATERAL (SELECT x.job_id, x.joblist_id, x.needs, x.constraints, x.timeout,
                           x.expected_start, x.expected_node
                      FROM dispatch.jobs x
                     WHERE x.joblist_id = l.joblist_id AND x.state = 'pending'
                       AND x.stage = l.current_stage
                     ORDER BY x.job_id) j
     WHERE l.state IN ('queued', 'running')
     ORDER BY l.joblist_id, j.job_id;
COMMENT ON VIEW dispatch._sched_jobs IS
    'Scheduler input: runnable pending jobs in FIFO order, with their needs ("type=count") '
    'and constraints ("key=value") sorted by key, their limits and last reservations';

-- A job lets go of its units by its start + timeout + kill_grace (the agent stops it
-- then; its time limit in _sched_jobs counts the grace too), counted from the second
-- before its assignment: the cycle that placed it counted from its own start, a
-- moment earlier, and an estimate that grew from one cycle to the next would move
-- every reservation behind it.  (The agent starts a job milliseconds after it is
-- assigned; a job that overruns the estimate only delays what waits for its units.)
CREATE VIEW dispatch._sched_holds AS
    SELECT a.resource_id, a.amount,
           floor(extract(epoch FROM j.assigned_at))::bigint - 1
           + ceil(extract(epoch FROM j.timeout
                                   + current_setting('dispatch.kill_grace')::interval))::bigint
               AS ends
      FROM dispatch.allocations a JOIN dispatch.jobs j USING (job_id)
     WHERE j.state IN ('assigned', 'running');
COMMENT ON VIEW dispatch._sched_holds IS
    'Scheduler input: what running jobs hold and when they let go of it (NULL: not known)';

CREATE FUNCTION dispatch._assign_many(job_ids bigint[], nodes text[], take_jobs bigint[],
                                      take_units bigint[], take_amounts bigint[])
RETURNS int
-- planned with the arrays' real sizes, never with a generic plan's guess of ten rows
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    assigned int;
    notify text[];
BEGIN
    -- One statement for the whole cycle.  Units are locked until the assignments
    -- commit; a job one of whose units an agent withdrew since the cycle read them is
    -- skipped (the registration that withdrew it wakes the scheduler again), and so is
    -- a job that stopped being pending (cancelled meanwhile).
    WITH take AS (
        SELECT * FROM unnest(take_jobs, take_units, take_amounts)
                      WITH ORDINALITY AS t(job_id, resource_id, amount, ord)),
    unit AS (
        SELECT r.resource_id, r.type, r.ident, r.is_amount FROM dispatch.resources r
         WHERE r.resource_id = ANY (take_units) FOR KEY SHARE),
    -- what each job holds, by type: set-based, not a subquery per job over all takes,
    -- and computed once (inlined, a plan misled by stale statistics on jobs ran the
    -- aggregate again for every placed job)
    held AS MATERIALIZED (
        SELECT x.job_id, jsonb_object_agg(x.type, x.v) AS held
          FROM (SELECT t.job_id, u.type,
                       CASE WHEN bool_or(u.is_amount) THEN to_jsonb(sum(t.amount))
                            ELSE jsonb_agg(u.ident ORDER BY t.ord) END AS v
                  FROM take t JOIN unit u USING (resource_id)
                 GROUP BY t.job_id, u.type) x
         GROUP BY x.job_id),
    placed AS (
        SELECT p.job_id, p.node, h.held
          FROM unnest(job_ids, nodes) AS p(job_id, node) LEFT JOIN held h USING (job_id)
         WHERE NOT EXISTS (SELECT 1 FROM take t WHERE t.job_id = p.job_id
                              AND t.resource_id NOT IN (SELECT resource_id FROM unit))),
    upd AS (
        UPDATE dispatch.jobs j
           SET state = 'assigned', node = p.node, resources = p.held, reason = NULL,
               expected_start = NULL, expected_node = NULL,
               -- the cycle's transaction began before the snapshot that saw the units
               -- free: now() could predate the finish that freed them
               assigned_at = pg_catalog.clock_timestamp()
          FROM placed p
         WHERE j.job_id = p.job_id AND j.state = 'pending'
        RETURNING j.job_id, j.joblist_id, j.node),
    alloc AS (
        INSERT INTO dispatch.allocations (resource_id, job_id, amount)
        SELECT t.resource_id, t.job_id, t.amount FROM take t JOIN upd USING (job_id)),
    started AS (
        UPDATE dispatch.joblists l SET state = 'running', started_at = now()
         WHERE l.joblist_id IN (SELECT joblist_id FROM upd) AND l.state = 'queued')
    SELECT count(*), array_agg(DISTINCT upd.node) INTO assigned, notify FROM upd;

    IF EXISTS (SELECT 1 FROM dispatch.allocations a JOIN dispatch.resources r USING (resource_id)
                WHERE a.resource_id = ANY (take_units)
                GROUP BY r.resource_id HAVING sum(a.amount) > r.capacity) THEN
        RAISE EXCEPTION 'allocator gave out more than a resource holds';
    END IF;
    PERFORM pg_notify('dispatch_node_' || n, 'run') FROM unnest(notify) n;
    RETURN assigned;
END
$$;
COMMENT ON FUNCTION dispatch._assign_many(bigint[], text[], bigint[], bigint[], bigint[]) IS
    'Scheduler: assign pending jobs to nodes with resource units (take_* list each job''s'
    ' units); returns how many';

CREATE FUNCTION dispatch._assign(job bigint, node text, resource_ids bigint[],
                                 amounts bigint[])
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._assign_many(ARRAY[job], ARRAY[node],
                                 array_fill(job, ARRAY[cardinality(resource_ids)]),
                                 resource_ids, amounts) = 1
$$;
COMMENT ON FUNCTION dispatch._assign(bigint, text, bigint[], bigint[]) IS
    'Assign one pending job to a node with the given resource units (tests, manual repair)';

CREATE FUNCTION dispatch._set_reasons(job_ids bigint[], reasons text[],
                                      starts timestamptz[], nodes text[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.jobs j
       SET reason = u.reason, expected_start = u.expected_start, expected_node = u.node
      FROM unnest(job_ids, reasons, starts, nodes) AS u(job_id, reason, expected_start, node)
     WHERE j.job_id = u.job_id AND j.state = 'pending'
       AND (j.reason, j.expected_start, j.expected_node)
           IS DISTINCT FROM (u.reason, u.expected_start, u.node)
$$;
COMMENT ON FUNCTION dispatch._set_reasons(bigint[], text[], timestamptz[], text[]) IS
    'Scheduler: record why pending jobs wait, and their reservations (start, node)';
