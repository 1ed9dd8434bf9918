-- Graphs (src/flowgraph.c over src/core/graph.c): dispatch._dag_cycle and
-- dispatch._dag_order, their exact answers and every malformed input.
\set SHOW_CONTEXT never
\set VERBOSITY default

-- No edges: NULL arrays, empty arrays, or no nodes at all.
SELECT dispatch._dag_cycle(NULL, NULL, 0) AS no_cycle, dispatch._dag_order(NULL, NULL, 0) AS no_nodes;
SELECT dispatch._dag_cycle('{}', '{}', 3) AS no_cycle, dispatch._dag_order('{}', NULL, 3) AS index_order;
-- Dependency-first: froms[i] after tos[i]; ready nodes smallest first.
SELECT dispatch._dag_order('{0,1,5,2}', '{5,5,3,4}', 6) AS dag;
SELECT dispatch._dag_order('{0,0,1,2}', '{1,2,3,3}', 4) AS diamond;
SELECT dispatch._dag_cycle('{0,0,1,2}', '{1,2,3,3}', 4) AS diamond_no_cycle;
-- Components: {6}, then {2,3,4}, then {0,1}, then 5; members ascending.
SELECT dispatch._dag_order('{0,1,2,3,4,0,5,4}', '{1,0,3,4,2,2,0,6}', 7) AS components;
-- Cycles: through the smallest node on one, start repeated, a shortest one.
SELECT dispatch._dag_cycle('{0,3}', '{3,0}', 4) AS two_cycle;
SELECT dispatch._dag_cycle('{0,2}', '{1,2}', 3) AS self_loop;
SELECT dispatch._dag_cycle('{0,1,2,3,4}', '{1,2,3,1,0}', 5) AS not_through_0;
SELECT dispatch._dag_cycle('{0,1,2,3,0,4}', '{1,2,3,0,4,0}', 5) AS shortest;
SELECT dispatch._dag_cycle('{0,0,1,2}', '{2,1,0,0}', 3) AS first_edge_wins;
SELECT dispatch._dag_cycle('{0,1,2,3,4,0,5,4}', '{1,0,3,4,2,2,0,6}', 7) AS components_cycle;
-- Array bounds do not matter, only positions.
SELECT dispatch._dag_cycle('[5:6]={0,3}', '{3,0}', 4) AS other_lower_bound;
-- Long chains and rings: no recursion.
SELECT array_length(o, 1) AS chain, o[1] AS first, o[200000] AS last
  FROM dispatch._dag_order(array(SELECT generate_series(0, 199998)),
                           array(SELECT generate_series(1, 199999)), 200000) o;
SELECT array_length(c, 1) AS ring, c[1] AS first, c[2] AS second, c[200001] AS last
  FROM dispatch._dag_cycle(array(SELECT generate_series(0, 199999)),
                           array(SELECT (g + 1) % 200000 FROM generate_series(0, 199999) g),
                           200000) c;

-- Malformed input, one per line.
SELECT dispatch._dag_cycle('{0,1}', '{1}', 3);
SELECT dispatch._dag_cycle('{0,1}', NULL, 3);
SELECT dispatch._dag_order(NULL, '{0}', 3);
SELECT dispatch._dag_cycle('{{0,1}}', '{{1,0}}', 3);
SELECT dispatch._dag_cycle('{0,1}', '{{1,0}}', 3);
SELECT dispatch._dag_cycle('{0,NULL}', '{1,0}', 3);
SELECT dispatch._dag_order('{0,1}', '{1,NULL}', 3);
SELECT dispatch._dag_cycle('{0,1}', '{1,3}', 3);
SELECT dispatch._dag_cycle('{-1}', '{0}', 3);
SELECT dispatch._dag_order('{0}', '{0}', 0);
SELECT dispatch._dag_cycle('{}', '{}', -1);
SELECT dispatch._dag_order('{}', '{}', NULL);
SELECT dispatch._dag_order(NULL, NULL, 2147483647);
SELECT dispatch._dag_cycle(NULL, NULL, 134217727);

-- The artefacts' graphs, which may have cycles (78_rules.sql): components numbered
-- dependency-first, and the stale set of a change.  LaTeX: 0 latex reads its own
-- aux (self-loop) and 1 bibtex's bbl, 1 reads 0's aux, 2 reads 0's pdf, 3 alone.
SELECT dispatch._graph_components('{0,0,1,2}', '{0,1,0,0}', 4) AS components;
SELECT dispatch._graph_stale('{0,0,1,2}', '{0,1,0,0}', 4, '{1}') AS stale_from_bibtex,
       dispatch._graph_stale('{0,0,1,2}', '{0,1,0,0}', 4, '{2}') AS stale_from_publish,
       dispatch._graph_stale('{0,0,1,2}', '{0,1,0,0}', 4, '{}') AS nothing_changed,
       dispatch._graph_stale('{1,0}', '{0,1}', 2, NULL) AS no_changes;
-- and as upstream: what 2 depends on (the edges reversed)
SELECT dispatch._graph_stale('{0,1,0,0}', '{0,0,1,2}', 4, '{2}') AS upstream_of_publish;
SELECT dispatch._graph_stale('{0}', '{1}', 2, '{2}');
SELECT dispatch._graph_stale('{0}', '{1}', 2, '{-1}');
SELECT dispatch._graph_stale('{0}', '{1}', 2, '{NULL}');
SELECT dispatch._graph_components('{0}', '{}', 2);
SELECT dispatch._graph_components(NULL, NULL, 0);

-- Internal: not strict, immutable, parallel safe, not for PUBLIC.
SELECT p.proname, p.proisstrict, p.provolatile, p.proparallel,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_call
  FROM pg_proc p
 WHERE p.pronamespace = 'dispatch'::regnamespace
   AND (p.proname LIKE '\_dag\_%' OR p.proname LIKE '\_graph\_%')
 ORDER BY 1;
