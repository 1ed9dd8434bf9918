------------------------------------------------------------------------------
-- Scheduler interface: what the scheduler worker reads and writes (src/scheduler.c)
------------------------------------------------------------------------------
--
-- The worker keeps its model in memory (src/model.c).  It loads it whole from the
-- _sched_* views when it starts, and then each cycle takes the change queue
-- (33_sched_changes.sql), calls _housekeeping() for the joblists it names (and, when
-- a node's deadline has come, for liveness), reloads what the queue names through
-- _sched_jobs_changed() and the same views filtered by node or job, places jobs
-- with its C allocator, and writes the cycle back with one _assign_many() and one
-- _set_reasons() call for the waits whose reason changed.  Times cross the boundary
-- as whole seconds of the Unix epoch; a job's time limit is its timeout.

-- What advancing a joblist writes: the later stages' waiting jobs, or under fail_fast
-- every unfinished one, which it cancels; so it goes ahead only when it can lock them all.
CREATE FUNCTION dispatch._lock_unfinished(jl bigint) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT (SELECT count(*) FROM dispatch.jobs j
             WHERE j.joblist_id = jl AND j.state IN ('pending', 'assigned', 'running'))
           = (SELECT count(*) FROM (SELECT FROM dispatch.jobs j
                                     WHERE j.joblist_id = jl
                                       AND j.state IN ('pending', 'assigned', 'running')
                                       FOR UPDATE SKIP LOCKED) mine)
$$;
COMMENT ON FUNCTION dispatch._lock_unfinished(bigint) IS
    'Locks every unfinished job of joblist jl that no other transaction holds; true when '
    'that was all of them';

-- Silence counts from since at the earliest: the moment this server's first scheduler
-- started (kept in shared memory across scheduler restarts), so heartbeats missed
-- while no scheduler ran (a failover) do not count but a scheduler restart does not
-- grant a fresh timeout.  Liveness runs only when expire is set (the deadline it
-- returned last time has come); stages are looked at only for joblists (those the
-- change queue named; NULL: every active one, when the scheduler loads its model)
-- and for the joblists of jobs this call lost.  Liveness also acts on the joblists
-- past their timeout (36_dataflow.sql).  next_deadline: the seconds to the next
-- liveness deadline when it checked liveness, or to the next joblist timeout if that
-- is sooner (NULL: neither).
--
-- A joblist is advanced only when its row and those of its unfinished jobs can be
-- locked at once (SKIP LOCKED): a user's open transaction (a cancel not yet
-- committed) must not stall the scheduler, and waiting in this order (joblist, then
-- jobs, like a cancel) while the cycle holds other rows could deadlock.  skipped
-- lists the joblists left so (NULL: none); the scheduler names them again next cycle.
CREATE FUNCTION dispatch._housekeeping(since timestamptz, expire boolean, joblists bigint[],
                                       OUT next_deadline double precision,
                                       OUT skipped bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    timeout interval := current_setting('dispatch.node_timeout')::interval;
    n text;
    lost boolean := false;
    candidate bigint;
    jl dispatch.joblists;
BEGIN
    IF expire THEN
        FOR n IN UPDATE dispatch.nodes SET state = 'offline', state_changed_at = now()
                  WHERE state <> 'offline'
                    AND greatest(last_heartbeat, since) < now() - timeout
                 RETURNING node LOOP
            PERFORM dispatch._lose_jobs(n);
            lost := true;
        END LOOP;
        IF lost AND joblists IS NOT NULL THEN
            joblists := joblists || ARRAY(SELECT c.joblist_id FROM dispatch._sched_changes c
                                           WHERE c.kind = 'job');
        END IF;
        -- joblists past their timeout (36_dataflow.sql), when their rows are free
        FOR jl IN SELECT * FROM dispatch.joblists l
                   WHERE l.deadline <= now() AND l.state IN ('queued', 'running')
                   ORDER BY l.joblist_id FOR UPDATE SKIP LOCKED LOOP
            IF dispatch._lock_unfinished(jl.joblist_id) THEN
                PERFORM dispatch._expire_joblist(jl);
                joblists := joblists || jl.joblist_id;
            END IF;             -- else its deadline stays, and the next pass tries again
        END LOOP;
    END IF;

    -- A joblist needs attention when its current stage has no active job left, a bad
    -- one not yet seen, or a job held at a gate of its graph (36_dataflow.sql).
    FOR candidate IN SELECT l.joblist_id FROM dispatch.joblists l
               WHERE (joblists IS NULL OR l.joblist_id = ANY (joblists))
                 AND l.state IN ('queued', 'running')
                 AND (NOT EXISTS (SELECT 1 FROM dispatch.jobs j
                                   WHERE j.joblist_id = l.joblist_id
                                     AND j.stage = l.current_stage
                                     AND j.state IN ('pending', 'assigned', 'running'))
                      OR (l.failure IS NULL AND EXISTS (
                                  SELECT 1 FROM dispatch.jobs j
                                   WHERE j.joblist_id = l.joblist_id
                                     AND j.stage = l.current_stage
                                     AND j.state IN ('failed', 'lost', 'cancelled')))
                      OR l.failure IS NOT NULL AND l.fail_fast
                      OR EXISTS (SELECT 1 FROM dispatch.jobs j
                                  WHERE j.joblist_id = l.joblist_id
                                    AND j.stage = l.current_stage
                                    AND j.state = 'pending' AND j.held IS NOT NULL))
               ORDER BY l.joblist_id LOOP
        SELECT * INTO jl FROM dispatch.joblists
         WHERE joblist_id = candidate AND state IN ('queued', 'running') FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            -- held by another transaction, or finished since the candidates were read
            -- (which leaves the joblist alone: the next look finds nothing to do)
            skipped := skipped || candidate;
            CONTINUE;
        END IF;
        IF NOT dispatch._lock_unfinished(candidate) THEN
            skipped := skipped || candidate;
            CONTINUE;
        END IF;
        PERFORM dispatch._advance_joblist(jl);
    END LOOP;
    -- groups whose jobs have all ended, in these joblists whatever their state (49_scratch.sql)
    PERFORM dispatch._end_groups(g.joblist_id)
       FROM (SELECT DISTINCT s.joblist_id FROM dispatch.group_scratch s
              WHERE s.ended_at IS NULL AND (joblists IS NULL OR s.joblist_id = ANY (joblists))) g;

    IF expire THEN
        SELECT greatest(extract(epoch FROM greatest(min(last_heartbeat), since) + timeout
                                           - now()), 0.1)
          INTO next_deadline
          FROM dispatch.nodes WHERE state <> 'offline';
    END IF;
    -- the next joblist timeout counts too, whether or not liveness ran
    -- (greatest() would turn a missing minimum into 0.1: a cycle every 100 ms)
    next_deadline := least(next_deadline,
        (SELECT CASE WHEN min(l.deadline) IS NOT NULL
                     THEN greatest(extract(epoch FROM min(l.deadline) - now()), 0.1) END
           FROM dispatch.joblists l
          WHERE l.deadline IS NOT NULL AND l.state IN ('queued', 'running')));
END
$$;
COMMENT ON FUNCTION dispatch._housekeeping(timestamptz, boolean, bigint[]) IS
    'Scheduler: expire silent nodes (when expire), advance the stages of joblists and finish '
    'them; returns seconds to the next liveness deadline when it expired, and the joblists '
    'it left because another transaction held them';

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

-- A node's units in the order they are taken: by type, then by ident, its trailing
-- number compared as a number (cpu2 before cpu10).  The pool (node NULL) comes last.
CREATE VIEW dispatch._sched_units AS
    SELECT r.resource_id, r.type, r.node, r.capacity
      FROM dispatch.resources r
      LEFT JOIN dispatch.nodes n ON n.node = r.node
     WHERE r.node IS NULL OR n.state = 'online'
     ORDER BY r.node NULLS LAST, r.type,
              regexp_replace(r.ident, '[0-9]+$', ''),
              substring(r.ident FROM '[0-9]+$')::numeric NULLS FIRST, r.ident;
COMMENT ON VIEW dispatch._sched_units IS
    'Scheduler input: the resource units of online nodes and of the pool, in taking order';

-- A job as the scheduler sees it, whether or not it is runnable: its needs
-- ("type=count") and constraints ("key=value") sorted by key, read from its own row,
-- its time limit and what the tables show of its wait.
CREATE VIEW dispatch._sched_job_input AS
    SELECT x.job_id, x.joblist_id, x.state, x.stage, x.held,
           ARRAY(SELECT n.key || '=' || n.value::text::bigint
                   FROM jsonb_each(x.needs) n ORDER BY n.key) AS needs,
           ARRAY(SELECT c.key || '=' || c.value
                   FROM jsonb_each_text(x.constraints) c ORDER BY c.key) AS constraints,
           ceil(extract(epoch FROM x.timeout
                              + current_setting('dispatch.kill_grace')::interval))::bigint
               AS time_limit,
           ceil(extract(epoch FROM x.expected_start))::bigint AS expected_start,
           x.expected_node, x.reason
      FROM dispatch.jobs x;
COMMENT ON VIEW dispatch._sched_job_input IS
    'Scheduler input: each job''s needs, constraints, time limit and last reason and reservation';

-- No join here can degrade into comparing every pending job with every other (a
-- nested loop over aggregated subqueries took a 20,000-job cycle to minutes): each
-- active joblist's runnable jobs are one lookup in jobs_pending_idx (the ORDER BY
-- keeps the lateral subquery a parameterized scan).
CREATE VIEW dispatch._sched_jobs AS
    SELECT j.job_id, j.joblist_id, j.needs, j.constraints, j.time_limit, j.expected_start,
           j.expected_node, j.reason
      FROM dispatch.joblists l,
           LATERAL (SELECT x.* FROM dispatch._sched_job_input x
                     WHERE x.joblist_id = l.joblist_id
                       AND dispatch._runnable(x.state, x.stage, x.held, l.state, l.current_stage)
                     ORDER BY x.job_id) j
     WHERE l.state IN ('queued', 'running')
     ORDER BY l.joblist_id, j.job_id;
COMMENT ON VIEW dispatch._sched_jobs IS
    'Scheduler input (full load): runnable jobs in FIFO order, as _sched_job_input shows them';

-- The jobs the change queue named, whatever their state, and the current stage's
-- pending jobs of the joblists it named, each with whether it is runnable (else the
-- scheduler drops it from its queue).  A job may come twice.
CREATE FUNCTION dispatch._sched_jobs_changed(job_ids bigint[], joblist_ids bigint[])
RETURNS TABLE (job_id bigint, joblist_id bigint, needs text[], constraints text[],
               time_limit bigint, expected_start bigint, expected_node text, reason text,
               runnable boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $$
    SELECT x.job_id, x.joblist_id, x.needs, x.constraints, x.time_limit, x.expected_start,
           x.expected_node, x.reason,
           dispatch._runnable(x.state, x.stage, x.held, l.state, l.current_stage)
      FROM dispatch._sched_job_input x JOIN dispatch.joblists l USING (joblist_id)
     WHERE x.job_id = ANY (job_ids)
    UNION ALL
    SELECT x.job_id, x.joblist_id, x.needs, x.constraints, x.time_limit, x.expected_start,
           x.expected_node, x.reason,
           dispatch._runnable(x.state, x.stage, x.held, l.state, l.current_stage)
      FROM dispatch.joblists l JOIN dispatch._sched_job_input x
           ON x.joblist_id = l.joblist_id AND x.stage = l.current_stage AND x.state = 'pending'
              AND x.held IS NULL
     WHERE l.joblist_id = ANY (joblist_ids)
$$;
COMMENT ON FUNCTION dispatch._sched_jobs_changed(bigint[], bigint[]) IS
    'Scheduler input (reload): the named jobs and the named joblists'' current pending jobs, '
    'and whether each is runnable';

-- A job lets go of its units by its start + timeout + kill_grace (the agent stops it
-- then; its time limit in _sched_job_input counts the grace too), counted from the
-- second before its assignment: the cycle that placed it counted from its own start,
-- a moment earlier, and an estimate that grew from one cycle to the next would move
-- every reservation behind it.  (The agent starts a job milliseconds after it is
-- assigned; a job that overruns the estimate only delays what waits for its units.)
CREATE VIEW dispatch._sched_holds AS
    SELECT j.job_id, j.node, a.resource_id, a.amount,
           floor(extract(epoch FROM j.assigned_at))::bigint - 1
           + ceil(extract(epoch FROM j.timeout
                                   + current_setting('dispatch.kill_grace')::interval))::bigint
               AS ends
      FROM dispatch.allocations a JOIN dispatch.jobs j USING (job_id)
     WHERE j.state IN ('assigned', 'running') AND a.lent_by IS NULL;
COMMENT ON VIEW dispatch._sched_holds IS
    'Scheduler input: what assigned and running jobs hold and when they let go of it '
    '(NULL: not known); what a group''s reservation lent counts as the reservation''s';

CREATE FUNCTION dispatch._assign_many(job_ids bigint[], nodes text[], take_jobs bigint[],
                                      take_units bigint[], take_amounts bigint[])
RETURNS bigint[]
-- planned with the arrays' real sizes, never with a generic plan's guess of ten rows
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    assigned bigint[];
    notify text[];
    mine bigint[];
    queued bigint[];
    blocked bigint[];
    reserved boolean;
BEGIN
    -- No write here waits for another transaction's row lock: a user's open transaction
    -- (a cancel not yet committed) must not stall the scheduler, and lock orders that
    -- differ from a cancel's (joblist, then its jobs) could deadlock with it.  So the
    -- jobs, their queued joblists and the units are locked with SKIP LOCKED, and a job
    -- that misses any of them is skipped: the scheduler reloads it and tries again.
    -- The locks come first, each into an array, so that no plan below rests on an
    -- estimate of how many rows a lock kept.
    -- (nothing waits, so no lock order is needed)
    mine := ARRAY(SELECT j.job_id FROM dispatch.jobs j
                   WHERE j.job_id = ANY (job_ids) AND j.state = 'pending'
                   FOR NO KEY UPDATE SKIP LOCKED);
    queued := ARRAY(SELECT l.joblist_id FROM dispatch.joblists l
                     WHERE l.joblist_id IN (SELECT j.joblist_id FROM dispatch.jobs j
                                             WHERE j.job_id = ANY (mine))
                       AND l.state = 'queued');
    blocked := ARRAY(SELECT unnest(queued)
                     EXCEPT SELECT x.joblist_id
                              FROM (SELECT l.joblist_id FROM dispatch.joblists l
                                     WHERE l.joblist_id = ANY (queued) AND l.state = 'queued'
                                     FOR NO KEY UPDATE SKIP LOCKED) x);
    IF cardinality(blocked) > 0 THEN
        mine := ARRAY(SELECT j.job_id FROM dispatch.jobs j
                       WHERE j.job_id = ANY (mine) AND j.joblist_id <> ALL (blocked));
    END IF;

    -- One statement for the whole cycle.  Units are locked until the assignments
    -- commit; a job one of whose units an agent withdrew since the cycle read them is
    -- skipped (the registration that withdrew it wakes the scheduler again), and so is
    -- a job that stopped being pending (cancelled meanwhile).
    WITH take AS (
        SELECT * FROM unnest(take_jobs, take_units, take_amounts)
                      WITH ORDINALITY AS t(job_id, resource_id, amount, ord)),
    unit AS (
        SELECT r.resource_id, r.type, r.ident, r.is_amount FROM dispatch.resources r
         WHERE r.resource_id = ANY (take_units) FOR KEY SHARE SKIP LOCKED),
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
          FROM unnest(job_ids, nodes) AS p(job_id, node)
               JOIN unnest(mine) AS m(job_id) USING (job_id)
               LEFT JOIN held h USING (job_id)
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
        RETURNING j.job_id, j.joblist_id, j.node, j.reserves),
    alloc AS (
        INSERT INTO dispatch.allocations (resource_id, job_id, amount)
        SELECT t.resource_id, t.job_id, t.amount FROM take t JOIN upd USING (job_id)),
    -- (queued joblists of assigned jobs: all locked above)
    started AS (
        UPDATE dispatch.joblists l SET state = 'running', started_at = now()
         WHERE l.joblist_id IN (SELECT joblist_id FROM upd) AND l.state = 'queued')
    SELECT coalesce(array_agg(upd.job_id), '{}'), array_agg(DISTINCT upd.node),
           bool_or(upd.reserves IS NOT NULL)
      INTO assigned, notify, reserved FROM upd;
    -- a group's reservation placed: its jobs can be lent its units (39_reserve.sql) by
    -- the next cycle's housekeeping, which this cycle's commit starts at once
    IF reserved THEN
        PERFORM dispatch._wake_scheduler_again();
    END IF;

    IF EXISTS (SELECT 1 FROM dispatch.allocations a JOIN dispatch.resources r USING (resource_id)
                WHERE a.resource_id = ANY (take_units) AND a.lent_by IS NULL
                GROUP BY r.resource_id HAVING sum(a.amount) > r.capacity) THEN
        RAISE EXCEPTION 'allocator gave out more than a resource holds';
    END IF;
    PERFORM pg_notify('dispatch_node_' || n, 'run') FROM unnest(notify) n;
    RETURN assigned;
END
$$;
COMMENT ON FUNCTION dispatch._assign_many(bigint[], text[], bigint[], bigint[], bigint[]) IS
    'Scheduler: assign pending jobs to nodes with resource units (take_* list each job''s'
    ' units); returns the jobs it assigned (the others stay pending)';

-- By hand, unlike the scheduler, it waits for the job and its joblist when another
-- transaction holds them (the running scheduler writing a reason, say).
CREATE FUNCTION dispatch._assign(job bigint, node text, resource_ids bigint[],
                                 amounts bigint[])
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM FROM dispatch.jobs j JOIN dispatch.joblists l USING (joblist_id)
      WHERE j.job_id = job FOR NO KEY UPDATE;
    RETURN dispatch._assign_many(ARRAY[job], ARRAY[node],
                                 array_fill(job, ARRAY[cardinality(resource_ids)]),
                                 resource_ids, amounts) = ARRAY[job];
END
$$;
COMMENT ON FUNCTION dispatch._assign(bigint, text, bigint[], bigint[]) IS
    'Assign one pending job to a node with the given resource units (tests, manual repair; '
    'waits for rows other transactions hold)';

-- Like _assign_many(), never waits for another transaction's row lock: a job that a
-- transaction still holds (a cancel not yet committed) is left alone and returned, for
-- the scheduler to say again next cycle.
CREATE FUNCTION dispatch._set_reasons(job_ids bigint[], reasons text[],
                                      starts timestamptz[], nodes text[]) RETURNS bigint[]
-- planned with the arrays' real sizes: a plan for ten rows looped over 20,000 waits
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    wanted bigint[];
    got bigint[];
BEGIN
    -- the waits that change, then those of them no other transaction holds
    wanted := ARRAY(
        SELECT j.job_id
          FROM unnest(job_ids, reasons, starts, nodes) AS u(job_id, reason, expected_start, node)
          JOIN dispatch.jobs j USING (job_id)
         WHERE j.state = 'pending'
           AND (j.reason, j.expected_start, j.expected_node)
               IS DISTINCT FROM (u.reason, u.expected_start, u.node));
    got := ARRAY(SELECT j.job_id FROM dispatch.jobs j
                  WHERE j.job_id = ANY (wanted) AND j.state = 'pending'
                  FOR NO KEY UPDATE SKIP LOCKED);
    UPDATE dispatch.jobs j
       SET reason = u.reason, expected_start = u.expected_start, expected_node = u.node
      FROM unnest(job_ids, reasons, starts, nodes) AS u(job_id, reason, expected_start, node)
      JOIN unnest(got) AS g(job_id) USING (job_id)
     WHERE j.job_id = u.job_id;
    RETURN ARRAY(SELECT unnest(wanted) EXCEPT SELECT unnest(got));
END
$$;
COMMENT ON FUNCTION dispatch._set_reasons(bigint[], text[], timestamptz[], text[]) IS
    'Scheduler: record why pending jobs wait, and their reservations (start, node); '
    'returns the jobs it left because another transaction held them';
