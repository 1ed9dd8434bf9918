------------------------------------------------------------------------------
-- The scheduler's change queue, and the one rule of which jobs are runnable
------------------------------------------------------------------------------
--
-- The scheduler keeps its model of the cluster and the queue in memory
-- (src/model.c, src/core/alloc_session.h) and changes it with what the committing
-- transactions wrote here: each row names one job, joblist or node (a NULL node of
-- kind 'pool' stands for the cluster-wide resource pool) whose rows the scheduler
-- must read again.  Each cycle takes the whole queue with one DELETE ... RETURNING
-- and reloads only what it names, so a cycle costs what changed.  Rows are written by
-- triggers in the committing transactions (a change and its row commit together):
--   jobs       a change of state or attempt (_job_event, 35_lifecycle.sql), an
--              INSERT as one row per joblist (_job_events_inserted, per statement),
--              a DELETE (an admin removing joblists) as one row per job
--   joblists   state, current_stage
--   nodes      insert, delete; state, labels, admin_labels, arch, os, hostname
--   resources  insert, update, delete (per statement)
-- Heartbeats, reasons and output touch none of these columns and cost nothing.
--
-- The table is UNLOGGED: it needs no WAL because nothing in it outlives the model it
-- feeds.  A crash empties it and a failover starts from a standby without it, but
-- the scheduler then starts afresh and loads its model from the tables anyway.

CREATE UNLOGGED TABLE dispatch._sched_changes (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('job', 'joblist', 'node', 'pool')),
    id              bigint,         -- job_id (job) or joblist_id (joblist)
    joblist_id      bigint,         -- the job's joblist (job)
    node            text            -- node
);
COMMENT ON TABLE dispatch._sched_changes IS
    'Scheduler input: what changed since its last cycle (unlogged: a restart reloads the '
    'model from the tables)';

-- Whether a job is in the queue.  The one definition: the scheduler's full load
-- (_sched_jobs) and its reload of changed jobs (_sched_jobs_changed) both use it, so
-- what makes a job runnable (its stage being current, and no gate of the graph holding
-- it: 36_dataflow.sql) changes here and nowhere else.  Plain SQL without SET, so it is inlined and the
-- pending-jobs index still serves both.
CREATE FUNCTION dispatch._runnable(job_state text, job_stage int, job_held text,
                                   joblist_state text, current_stage int) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT job_state = 'pending' AND job_stage = current_stage AND job_held IS NULL
       AND joblist_state IN ('queued', 'running')
$$;
COMMENT ON FUNCTION dispatch._runnable(text, int, text, text, int) IS
    'Whether a job (its state, stage and the gate it is held at) of a joblist (its state '
    'and current stage) waits in the scheduler''s queue';

CREATE FUNCTION dispatch._sched_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'joblists' THEN
        INSERT INTO dispatch._sched_changes (kind, id) VALUES ('joblist', NEW.joblist_id);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dispatch._sched_changes (kind, node) VALUES ('node', OLD.node);
    ELSE
        INSERT INTO dispatch._sched_changes (kind, node) VALUES ('node', NEW.node);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._sched_change() IS
    'Trigger: queues a changed joblist or node for the scheduler';

CREATE TRIGGER joblists_sched AFTER UPDATE OF state, current_stage ON dispatch.joblists
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
                       OR OLD.current_stage IS DISTINCT FROM NEW.current_stage)
    EXECUTE FUNCTION dispatch._sched_change();
CREATE TRIGGER nodes_sched_ins AFTER INSERT OR DELETE ON dispatch.nodes
    FOR EACH ROW EXECUTE FUNCTION dispatch._sched_change();
CREATE TRIGGER nodes_sched_upd
    AFTER UPDATE OF state, labels, admin_labels, arch, os, hostname ON dispatch.nodes
    FOR EACH ROW WHEN ((OLD.state, OLD.labels, OLD.admin_labels, OLD.arch, OLD.os, OLD.hostname)
                       IS DISTINCT FROM
                       (NEW.state, NEW.labels, NEW.admin_labels, NEW.arch, NEW.os, NEW.hostname))
    EXECUTE FUNCTION dispatch._sched_change();

-- Statement-level: an agent registers thousands of units in one statement (one row
-- per node it touched), and an admin may delete joblists, whose jobs and allocations
-- go by cascade (one row per job: the scheduler drops them and what they held).
CREATE FUNCTION dispatch._sched_rows_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'jobs' THEN
        INSERT INTO dispatch._sched_changes (kind, id, joblist_id)
        SELECT 'job', r.job_id, r.joblist_id FROM changed_rows r;
    ELSE
        INSERT INTO dispatch._sched_changes (kind, node)
        SELECT DISTINCT CASE WHEN r.node IS NULL THEN 'pool' ELSE 'node' END, r.node
          FROM changed_rows r;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._sched_rows_changed() IS
    'Trigger: queues the nodes (or the pool) whose resources a statement changed, or the '
    'jobs it deleted';

CREATE TRIGGER resources_sched_ins AFTER INSERT ON dispatch.resources
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch._sched_rows_changed();
CREATE TRIGGER resources_sched_upd AFTER UPDATE ON dispatch.resources
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch._sched_rows_changed();
CREATE TRIGGER resources_sched_del AFTER DELETE ON dispatch.resources
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch._sched_rows_changed();
CREATE TRIGGER jobs_sched_del AFTER DELETE ON dispatch.jobs
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch._sched_rows_changed();
