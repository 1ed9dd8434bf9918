------------------------------------------------------------------------------
-- Artefacts in psql: their states, and the graph of files and rules
------------------------------------------------------------------------------

CREATE VIEW dispatch.artefact_status AS
    SELECT a.workspace, a.path, a.state, a.reason,
           (SELECT r.name FROM dispatch.rules r
             WHERE r.workspace = a.workspace AND a.path = ANY (r.outputs)) AS rule,
           a.size, a.mtime, a.sha256, a.blob IS NOT NULL AS stored, a.built_by,
           (SELECT j.joblist_id FROM dispatch.jobs j WHERE j.job_id = a.built_by) AS built_in,
           a.nodes, a.changed_at,
           EXISTS (SELECT FROM dispatch.artefact_changes c
                    WHERE c.workspace = a.workspace AND c.path = a.path) AS change_waiting
      FROM dispatch.artefacts a;
COMMENT ON VIEW dispatch.artefact_status IS
    'One row per file of a workspace: its state and why, the rule that makes it (NULL: a '
    'source), what was last seen or built of it, whether its content is in the store and '
    'whether a change of it waits for the next rebuild';

-- The edges of workspace ws's file graph: each input a rule reads (its literal
-- paths, and the known files its globs match) to each of its outputs, and whether
-- the edge lies on a cycle (both ends made by rules of one strongly connected
-- component that is a cycle).
CREATE FUNCTION dispatch._artefact_edges(ws text)
RETURNS TABLE (source text, target text, rule text, cycle int)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record := dispatch._rule_graph(ws);
    comp int[] := dispatch._graph_components(g.froms, g.tos, cardinality(g.rules));
BEGIN
    RETURN QUERY
    WITH rc AS (
        SELECT r.*, comp[x.i::int] AS c FROM unnest(g.rules) WITH ORDINALITY AS x(id, i)
          JOIN dispatch.rules r ON r.rule_id = x.id),
    cyclic AS (
        SELECT rc.c FROM rc GROUP BY rc.c
        HAVING count(*) > 1 OR bool_or(rc.outputs && rc.input_paths)),
    e AS (
        SELECT i AS src, o AS dst, rc.name, rc.c
          FROM rc, unnest(rc.input_paths) i, unnest(rc.outputs) o
        UNION
        SELECT a.path, o, rc.name, rc.c
          FROM rc, unnest(rc.input_globs) gl, unnest(rc.outputs) o, dispatch.artefacts a
         WHERE a.workspace = ws AND a.path ~ dispatch._glob_regex(gl))
    SELECT e.src, e.dst, e.name,
           CASE WHEN e.c IN (SELECT c FROM cyclic)
                     AND EXISTS (SELECT FROM rc m WHERE m.c = e.c AND e.src = ANY (m.outputs))
                THEN e.c END
      FROM e ORDER BY e.dst, e.src;
END
$$;
COMMENT ON FUNCTION dispatch._artefact_edges(text) IS
    'The file graph of workspace ws: input -> output per rule, with the cycle (component '
    'number) the edge lies on, or NULL';

CREATE FUNCTION dispatch.artefact_graph(workspace text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH e AS (SELECT * FROM dispatch._artefact_edges(workspace))
    SELECT jsonb_build_object(
        'workspace', workspace,
        'nodes', coalesce((SELECT jsonb_agg(jsonb_build_object('path', p.path, 'state', a.state,
                                                               'rule', s.rule, 'sha256', a.sha256)
                                            ORDER BY p.path)
                             FROM (SELECT path FROM dispatch.artefacts x WHERE x.workspace = artefact_graph.workspace
                                   UNION SELECT source FROM e UNION SELECT target FROM e) p
                             LEFT JOIN dispatch.artefacts a ON a.workspace = artefact_graph.workspace AND a.path = p.path
                             LEFT JOIN dispatch.artefact_status s ON s.workspace = a.workspace AND s.path = a.path), '[]'),
        'edges', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                                'from', e.source, 'to', e.target, 'rule', e.rule,
                                                'cycle', e.cycle)) ORDER BY e.target, e.source)
                             FROM e), '[]'))
      FROM dispatch.workspaces w WHERE w.workspace = artefact_graph.workspace
$$;
COMMENT ON FUNCTION dispatch.artefact_graph(text) IS
    'The file graph of a workspace as JSON: nodes (path, state, rule, sha256) and edges '
    '(from input to output, rule, and the cycle it lies on); NULL when no such workspace';

CREATE FUNCTION dispatch.artefact_graph_dot(workspace text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT format(E'digraph %s {\n  rankdir=LR;\n  node [shape=box, style=filled];\n%s%s}\n',
                  dispatch._dot_quote(g ->> 'workspace'),
                  (SELECT string_agg(format(E'  %s [fillcolor=%s, label=%s];\n',
                                            dispatch._dot_quote(n ->> 'path'),
                                            CASE n ->> 'state' WHEN 'fresh' THEN 'palegreen'
                                                 WHEN 'stale' THEN 'khaki' WHEN 'building' THEN 'lightskyblue'
                                                 WHEN 'failed' THEN 'salmon' ELSE 'white' END,
                                            dispatch._dot_quote(n ->> 'path' || coalesce(E'\n' || (n ->> 'state'), ''))),
                                     '' ORDER BY n ->> 'path')
                     FROM jsonb_array_elements(g -> 'nodes') n),
                  coalesce((SELECT string_agg(format(E'  %s -> %s [label=%s%s];\n',
                                                     dispatch._dot_quote(e ->> 'from'), dispatch._dot_quote(e ->> 'to'),
                                                     dispatch._dot_quote(e ->> 'rule'),
                                                     CASE WHEN e ? 'cycle' THEN ', color=red, penwidth=2' ELSE '' END),
                                              '' ORDER BY e ->> 'to', e ->> 'from')
                              FROM jsonb_array_elements(g -> 'edges') e), ''))
      FROM dispatch.artefact_graph(workspace) g
$$;
COMMENT ON FUNCTION dispatch.artefact_graph_dot(text) IS
    'The file graph of a workspace as Graphviz DOT text, states as colours, the edges of '
    'cycles in red';
