------------------------------------------------------------------------------
-- Groups: co-located jobs and the scratch directory they share
------------------------------------------------------------------------------
--
-- The jobs of a joblist that name the same "group" run on one node: the first one
-- placed pins the group (36_dataflow.sql holds the others until then and then gives
-- them the constraint node=<that node>).  They share $DISPATCH_SCRATCH, a directory
-- the agent makes for the group's first job on the node and keeps until the server
-- says the group has ended: once none of its jobs can run any more, housekeeping
-- marks its row ended, agent_poll hands the node a scratch_remove row until the agent
-- acknowledges with agent_scratch_removed(), which records how many bytes it held.
-- A group that never ran on a node has nothing to remove and is closed at once.

CREATE TABLE dispatch.group_scratch (
    joblist_id      bigint NOT NULL REFERENCES dispatch.joblists ON DELETE CASCADE,
    group_name      text NOT NULL,
    key             text NOT NULL UNIQUE,
    node            text,
    ended_at        timestamptz,
    removed_at      timestamptz,
    bytes           bigint CHECK (bytes >= 0),
    PRIMARY KEY (joblist_id, group_name)
);
CREATE INDEX group_scratch_open_idx ON dispatch.group_scratch (node)
    WHERE ended_at IS NOT NULL AND removed_at IS NULL;
COMMENT ON TABLE dispatch.group_scratch IS
    'The groups of joblists, their node and the scratch directory they shared there';

CREATE FUNCTION dispatch._add_groups(jl bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO dispatch.group_scratch (joblist_id, group_name, key)
    SELECT jl, g.group_name, jl || '-' || row_number() OVER (ORDER BY g.group_name)
      FROM (SELECT DISTINCT j.group_name FROM dispatch.jobs j
             WHERE j.joblist_id = jl AND j.group_name IS NOT NULL) g
$$;
COMMENT ON FUNCTION dispatch._add_groups(bigint) IS
    'Records the groups of a newly submitted joblist jl, each with its scratch key';

-- Called by housekeeping for each joblist it settled.
CREATE FUNCTION dispatch._end_groups(jl bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record;
BEGIN
    FOR g IN UPDATE dispatch.group_scratch s
                SET ended_at = now(),
                    node = (SELECT j.node FROM dispatch.jobs j
                             WHERE j.joblist_id = jl AND j.group_name = s.group_name
                               AND j.node IS NOT NULL
                             ORDER BY j.assigned_at NULLS LAST, j.job_id LIMIT 1)
              WHERE s.joblist_id = jl AND s.ended_at IS NULL
                AND NOT EXISTS (SELECT FROM dispatch.jobs j
                                 WHERE j.joblist_id = jl AND j.group_name = s.group_name
                                   AND j.state IN ('pending', 'assigned', 'running'))
             RETURNING s.key, s.node LOOP
        IF g.node IS NULL THEN
            UPDATE dispatch.group_scratch SET removed_at = now(), bytes = 0 WHERE key = g.key;
        ELSE
            PERFORM pg_notify('dispatch_node_' || g.node, 'scratch');
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._end_groups(bigint) IS
    'Marks the groups of joblist jl whose jobs have all ended, and tells their nodes to '
    'remove their scratch directories';

CREATE FUNCTION dispatch.agent_scratch_removed(node text, key text, bytes bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
BEGIN
    IF bytes < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('bytes must not be negative, not %s', bytes);
    END IF;
    UPDATE dispatch.group_scratch s SET removed_at = now(), bytes = agent_scratch_removed.bytes
     WHERE s.key = agent_scratch_removed.key AND s.node = n.node AND s.ended_at IS NOT NULL
       AND s.removed_at IS NULL;
END
$$;
COMMENT ON FUNCTION dispatch.agent_scratch_removed(text, text, bigint) IS
    'Agent: the scratch directory of group key is removed from the node; it held bytes '
    '(NULL: not measured)';
