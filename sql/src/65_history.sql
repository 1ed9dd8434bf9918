------------------------------------------------------------------------------
-- History and presence: what ran, and which nodes were there, on every member
------------------------------------------------------------------------------
--
-- Every job attempt that ends and every joblist that finishes is copied, when it
-- ends, into a history table without foreign keys, so deleting old joblists keeps
-- their record.  The monitor records which nodes are online during each minute.  These
-- are ordinary tables of the primary, so streaming replication gives every member
-- of the cluster the same history and can answer for it (read-only) on a standby.

CREATE TABLE dispatch.job_history (
    job_id          bigint NOT NULL,
    attempt         int NOT NULL,
    joblist_id      bigint NOT NULL,
    joblist         text NOT NULL,
    stage           int NOT NULL,
    name            text NOT NULL,
    node            text,
    state           text NOT NULL,
    exit_code       int,
    signal          int,
    timed_out       boolean NOT NULL,
    reason          text,
    resources       jsonb,
    started_at      timestamptz,
    finished_at     timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX job_history_finished_idx ON dispatch.job_history (finished_at);
COMMENT ON TABLE dispatch.job_history IS
    'Every job attempt that ended, kept when its joblist is deleted (one row per attempt)';

CREATE TABLE dispatch.joblist_history (
    joblist_id      bigint PRIMARY KEY,
    name            text NOT NULL,
    state           text NOT NULL,
    submitted_by    name NOT NULL,
    submitted_at    timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz NOT NULL,
    reason          text,
    jobs            int NOT NULL,
    jobs_succeeded  int NOT NULL
);
CREATE INDEX joblist_history_finished_idx ON dispatch.joblist_history (finished_at);
COMMENT ON TABLE dispatch.joblist_history IS
    'Every joblist that finished, kept when the joblist is deleted';

CREATE TABLE dispatch.presence (
    at              timestamptz PRIMARY KEY,
    online          text[] NOT NULL,
    draining        text[] NOT NULL,
    offline         text[] NOT NULL
);
COMMENT ON TABLE dispatch.presence IS
    'Which nodes were online, draining and offline during each minute (kept for dispatch.presence_retention)';

CREATE FUNCTION dispatch._job_history() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dispatch.job_history
    SELECT NEW.job_id, NEW.attempt, NEW.joblist_id, l.name, NEW.stage, NEW.name, NEW.node,
           NEW.state, NEW.exit_code, NEW.signal, NEW.timed_out, NEW.reason, NEW.resources,
           NEW.started_at, NEW.finished_at
      FROM dispatch.joblists l WHERE l.joblist_id = NEW.joblist_id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._job_history() IS
    'Trigger: copies a job attempt that just ended into job_history';
CREATE TRIGGER jobs_history AFTER UPDATE OF finished_at ON dispatch.jobs
    FOR EACH ROW WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL)
    EXECUTE FUNCTION dispatch._job_history();

CREATE FUNCTION dispatch._joblist_history() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dispatch.joblist_history
    SELECT NEW.joblist_id, NEW.name, NEW.state, NEW.submitted_by, NEW.submitted_at,
           NEW.started_at, NEW.finished_at, NEW.reason, count(*),
           count(*) FILTER (WHERE j.state = 'succeeded')
      FROM dispatch.jobs j WHERE j.joblist_id = NEW.joblist_id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._joblist_history() IS
    'Trigger: copies a joblist that just finished into joblist_history';
CREATE TRIGGER joblists_history AFTER UPDATE OF finished_at ON dispatch.joblists
    FOR EACH ROW WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL)
    EXECUTE FUNCTION dispatch._joblist_history();

CREATE FUNCTION dispatch._node_union(a text[], b text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(a || b) x
$$;
COMMENT ON FUNCTION dispatch._node_union(text[], text[]) IS
    'The sorted union of two arrays of node names';

CREATE FUNCTION dispatch._record_presence() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    minute timestamptz := date_trunc('minute', now());
BEGIN
    INSERT INTO dispatch.presence AS p
    SELECT minute,
           coalesce(array_agg(node ORDER BY node) FILTER (WHERE state = 'online'), '{}'),
           coalesce(array_agg(node ORDER BY node) FILTER (WHERE state = 'draining'), '{}'),
           coalesce(array_agg(node ORDER BY node) FILTER (WHERE state = 'offline'), '{}')
      FROM dispatch.nodes
    ON CONFLICT (at) DO UPDATE
       SET online = dispatch._node_union(p.online, excluded.online),
           draining = dispatch._node_union(p.draining, excluded.draining),
           offline = dispatch._node_union(p.offline, excluded.offline);
    DELETE FROM dispatch.presence
     WHERE at < now() - current_setting('dispatch.presence_retention')::interval;
END
$$;
COMMENT ON FUNCTION dispatch._record_presence() IS
    'Monitor: adds the nodes'' states now to this minute''s record (a node that changed '
    'state within the minute is in both arrays) and forgets old records';
