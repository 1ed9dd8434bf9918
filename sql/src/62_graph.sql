------------------------------------------------------------------------------
-- A joblist's graph, for psql and for Graphviz
------------------------------------------------------------------------------
--
-- joblist_graph(joblist) returns the graph as JSON: its stages in order, a node per
-- job (state, when, cell values, the gate it is held at, its reason) and an edge per
-- "after" (from each job of the upstream task to the job, labelled with the job's
-- condition).  The stages' own order (each job after the whole stage before) is not
-- spelled out as edges, which would be n * m of them: the stages list says it, and
-- the DOT text draws each stage as a cluster with one edge from a stage to the next.
-- joblist_graph_dot(joblist) is the same graph as Graphviz DOT text
-- (`psql -Atc 'SELECT dispatch.joblist_graph_dot(7)' | dot -Tsvg > graph.svg`).
-- Everyone may see a joblist's graph, as everyone sees job_status (but a for_each
-- cell's item, which comes from a result: its submitter's and admins' only).

CREATE FUNCTION dispatch.joblist_graph(joblist bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    l dispatch.joblists;
BEGIN
    SELECT * INTO l FROM dispatch.joblists x WHERE x.joblist_id = joblist;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('joblist %s does not exist', joblist);
    END IF;
    RETURN jsonb_build_object(
        'joblist_id', l.joblist_id, 'name', l.name, 'state', l.state,
        'stages', (SELECT jsonb_agg(s.name ORDER BY s.stage) FROM dispatch.stages s
                    WHERE s.joblist_id = l.joblist_id),
        'nodes', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                      'id', j.job_id, 'name', j.name, 'task', coalesce(j.task, j.name),
                      'stage', s.name, 'state', j.state, 'when', j.condition,
                      'cell', CASE WHEN dispatch._caller_may_read(l.submitted_by) THEN j.cell
                                   ELSE j.cell - 'item' END,
                      'held', j.held, 'node', j.node, 'reason', j.reason,
                      'waiting', CASE WHEN j.waiting_signal IS NOT NULL
                                      THEN format('waiting for signal "%s"', j.waiting_signal) END))
                      ORDER BY j.job_id), '[]')
                    FROM dispatch.jobs j
                    JOIN dispatch.stages s ON s.joblist_id = j.joblist_id AND s.stage = j.stage
                   WHERE j.joblist_id = l.joblist_id),
        'edges', (SELECT coalesce(jsonb_agg(jsonb_build_object('from', u.job_id, 'to', j.job_id,
                                                               'when', j.condition)
                                            ORDER BY j.job_id, u.job_id), '[]')
                    FROM dispatch.jobs j
                    JOIN dispatch.jobs u ON u.joblist_id = j.joblist_id AND u.task = ANY (j.after)
                   WHERE j.joblist_id = l.joblist_id AND j.after IS NOT NULL));
END
$$;
COMMENT ON FUNCTION dispatch.joblist_graph(bigint) IS
    'A joblist''s graph as JSON: stages in order, a node per job with its state, an edge '
    'per "after" (upstream job to job)';

CREATE FUNCTION dispatch._dot_quote(s text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '"' || replace(replace(replace(replace(s, '\', '\\'), '"', '\"'), E'\n', '\n'),
                          E'\r', '') || '"'
$$;
COMMENT ON FUNCTION dispatch._dot_quote(text) IS 'A Graphviz DOT quoted string of s';

CREATE FUNCTION dispatch._dot_color(state text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE state WHEN 'succeeded' THEN 'palegreen' WHEN 'failed' THEN 'lightpink'
                      WHEN 'lost' THEN 'lightpink' WHEN 'running' THEN 'lightskyblue'
                      WHEN 'assigned' THEN 'lightskyblue' WHEN 'cancelled' THEN 'gray80'
                      WHEN 'skipped' THEN 'gray93' ELSE 'white' END
$$;
COMMENT ON FUNCTION dispatch._dot_color(text) IS 'The fill colour of a job in state in DOT pictures';

CREATE FUNCTION dispatch.joblist_graph_dot(joblist bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH g AS (SELECT dispatch.joblist_graph(joblist) AS g),
    n AS (SELECT x, o FROM g, jsonb_array_elements(g.g -> 'nodes') WITH ORDINALITY AS a(x, o)),
    st AS (SELECT s #>> '{}' AS name, o FROM g, jsonb_array_elements(g.g -> 'stages')
                                                  WITH ORDINALITY AS a(s, o))
    SELECT concat_ws(E'\n',
        'digraph ' || dispatch._dot_quote(format('joblist %s', joblist)) || ' {',
        '  rankdir=LR; compound=true;',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        (SELECT string_agg(format(E'  subgraph %s {\n    label=%s;\n%s\n  }',
                    dispatch._dot_quote('cluster_' || st.o), dispatch._dot_quote('stage ' || st.name),
                    (SELECT string_agg(format('    %s [label=%s, fillcolor=%s];',
                                dispatch._dot_quote('j' || (n.x ->> 'id')),
                                dispatch._dot_quote(concat_ws(E'\n', n.x ->> 'name', n.x ->> 'state',
                                                              n.x ->> 'waiting')),
                                dispatch._dot_quote(dispatch._dot_color(n.x ->> 'state'))), E'\n' ORDER BY n.o)
                       FROM n WHERE n.x ->> 'stage' = st.name)), E'\n' ORDER BY st.o)
           FROM st),
        (SELECT string_agg(format('  %s -> %s [ltail=%s, lhead=%s, style=bold];',
                    dispatch._dot_quote('j' || (SELECT n.x ->> 'id' FROM n WHERE n.x ->> 'stage' = a.name ORDER BY n.o LIMIT 1)),
                    dispatch._dot_quote('j' || (SELECT n.x ->> 'id' FROM n WHERE n.x ->> 'stage' = b.name ORDER BY n.o LIMIT 1)),
                    dispatch._dot_quote('cluster_' || a.o), dispatch._dot_quote('cluster_' || b.o)),
                    E'\n' ORDER BY a.o)
           FROM st a JOIN st b ON b.o = a.o + 1),
        (SELECT string_agg(format('  %s -> %s%s;', dispatch._dot_quote('j' || (e ->> 'from')),
                    dispatch._dot_quote('j' || (e ->> 'to')),
                    CASE WHEN e ->> 'when' <> 'on_success'
                         THEN format(' [style=dashed, label=%s]', dispatch._dot_quote(e ->> 'when')) ELSE '' END),
                    E'\n' ORDER BY o)
           FROM g, jsonb_array_elements(g.g -> 'edges') WITH ORDINALITY AS a(e, o)),
        '}')
$$;
COMMENT ON FUNCTION dispatch.joblist_graph_dot(bigint) IS
    'A joblist''s graph as Graphviz DOT text: a cluster per stage, a box per job coloured '
    'by state, an arrow per "after" (dashed with its condition unless on_success)';
