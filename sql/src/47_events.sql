------------------------------------------------------------------------------
-- Events for watchers: NOTIFY dispatch_events on state changes
------------------------------------------------------------------------------
--
-- dispatch-web (and anyone else) LISTENs on the one channel dispatch_events and is
-- told, after commit, what changed; it then reads the details through the API with
-- its own role.  A payload is a small JSON object that carries only what every user
-- may see (ids, states, node names), never output or specs:
--   {"type": "joblist", "joblist_id": 7, "state": "running"}
--   {"type": "jobs", "jobs": [[job_id, joblist_id, state], ...], "more": false}
--   {"type": "node", "node": "w1", "state": "offline"}
-- Job changes come in bulk (a scheduler cycle assigns many jobs in one statement), so
-- their trigger runs once per statement and lists at most 50 jobs; "more": true says
-- there were more (a watcher refetches).  The others change one row at a time and
-- fire per row, their WHEN clause keeping heartbeats and reason updates free of cost.
-- New output is not announced here: a chunk NOTIFYs only while someone follows its job
-- (follow_output, 45_output.sql), which dispatch-web does for the jobs its clients watch.

CREATE FUNCTION dispatch._event() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r jsonb;
    changed jsonb;
    n bigint;
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN          -- jobs: the rows whose state changed
        -- EXECUTE: planned for each statement's own transition tables.  A plan kept
        -- from the session's first, small update (a long-lived scheduler's) joined
        -- them as a nested loop, and the first cycle after a submit of 20,000
        -- joblists then spent 37 s here writing their reasons.
        EXECUTE $q$
            SELECT jsonb_agg(jsonb_build_array(c.job_id, c.joblist_id, c.state))
                       FILTER (WHERE c.i <= 50),
                   count(*)
              FROM (SELECT nr.job_id, nr.joblist_id, nr.state,
                           row_number() OVER (ORDER BY nr.job_id) AS i
                      FROM new_rows nr JOIN old_rows o USING (job_id)
                     WHERE nr.state IS DISTINCT FROM o.state) c
        $q$ INTO changed, n;
        IF n > 0 THEN
            r := jsonb_build_object('type', 'jobs', 'jobs', changed, 'more', n > 50);
        END IF;
    ELSE
        r := to_jsonb(NEW);
        r := CASE TG_TABLE_NAME
            WHEN 'joblists' THEN jsonb_build_object('type', 'joblist',
                                                    'joblist_id', r -> 'joblist_id', 'state', r -> 'state')
            ELSE jsonb_build_object('type', 'node', 'node', r -> 'node', 'state', r -> 'state') END;
    END IF;
    IF r IS NOT NULL THEN
        PERFORM pg_notify('dispatch_events', r::text);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._event() IS
    'Trigger: a dispatch_events notification for jobs whose state changed (per statement), '
    'a new or changed joblist or node (per row)';

CREATE TRIGGER jobs_events AFTER UPDATE ON dispatch.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch._event();
CREATE TRIGGER joblists_events AFTER INSERT ON dispatch.joblists
    FOR EACH ROW EXECUTE FUNCTION dispatch._event();
CREATE TRIGGER joblists_state_events AFTER UPDATE OF state ON dispatch.joblists
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION dispatch._event();
CREATE TRIGGER nodes_events AFTER INSERT ON dispatch.nodes
    FOR EACH ROW EXECUTE FUNCTION dispatch._event();
CREATE TRIGGER nodes_state_events AFTER UPDATE OF state ON dispatch.nodes
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION dispatch._event();
