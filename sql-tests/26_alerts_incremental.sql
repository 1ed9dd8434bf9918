-- Incremental alert evaluation (issue 16): a pass looks only at the nodes that sent a
-- sample or changed state since the last pass, at rules not evaluated yet and at alerts
-- whose "for" or "repeat" ran out.  An alert of an untouched node keeps its state, a new
-- sample fires and resolves as before, "for" runs out without a new sample, a node going
-- offline is seen, and a whole pass finds what was hidden from the incremental one.
-- Prints no serial ids, so it passes alone after 00_setup and in the full run.
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT dispatch.agent_register('incr1', '{}') IS NOT NULL AS registered;
SELECT dispatch.agent_register('incr2', '{}') IS NOT NULL AS registered;
CREATE FUNCTION pg_temp.s(t timestamptz, load numeric) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('t', (extract(epoch FROM t) * 1000)::bigint,
                              'load', jsonb_build_array(load, 0, 0))
$$;
CREATE FUNCTION pg_temp.alerts() RETURNS TABLE (rule text, node text, state text, value double precision)
LANGUAGE sql AS $$
    SELECT rule, node, state, value FROM dispatch.alert_status WHERE node LIKE 'incr%' ORDER BY 1, 2
$$;
CREATE FUNCTION pg_temp.events() RETURNS TABLE (rule text, node text, event text, value double precision)
LANGUAGE sql AS $$
    SELECT r.name, e.node, e.event, e.value FROM dispatch.alert_events e JOIN dispatch.alert_rules r USING (rule_id)
     WHERE e.node LIKE 'incr%' ORDER BY e.event_id
$$;
SELECT dispatch.agent_metrics('incr1', jsonb_build_array(pg_temp.s(now() - interval '3 seconds', 9))) AS stored;
SELECT dispatch.agent_metrics('incr2', jsonb_build_array(pg_temp.s(now() - interval '3 seconds', 9))) AS stored;
SELECT dispatch.create_alert_rule('incr-hot', '{"metric": "load.1", "node": "incr*", "op": ">", "threshold": 5,
  "notify": ["mailto:ops@example.com"]}') > 0 AS created;
SELECT dispatch.create_alert_rule('incr-warm', '{"metric": "load.1", "node": "incr*", "op": ">", "threshold": 5,
  "for": "1 hour", "notify": ["mailto:ops@example.com"]}') > 0 AS created;
SELECT dispatch.create_alert_rule('incr-down', '{"metric": "node.up", "node": "incr*", "op": "=", "threshold": 0,
  "notify": ["mailto:ops@example.com"]}') > 0 AS created;
-- The rules' first pass covers every node, samples sent before the rules existed too.
SELECT dispatch._evaluate_alerts();
SELECT * FROM pg_temp.alerts();
SELECT count(*) AS left_dirty FROM dispatch.alert_dirty;
SELECT bool_and(evaluated) AS rules_evaluated FROM dispatch.alert_rules WHERE name LIKE 'incr-%';

-- An untouched node is not looked at: incr2's latest value, changed behind the
-- evaluation's back (not through agent_metrics), stays unseen and its alerts keep
-- their state; incr1's new sample below the threshold resolves its alerts as before.
UPDATE dispatch.metric_nodes SET latest_vals = ARRAY(SELECT 1::float8 FROM unnest(latest_vals))
 WHERE node = 'incr2';
SELECT dispatch.agent_metrics('incr1', jsonb_build_array(pg_temp.s(now() - interval '2 seconds', 1))) AS stored;
SELECT node AS dirty FROM dispatch.alert_dirty WHERE node LIKE 'incr%';
SELECT dispatch._evaluate_alerts();
SELECT * FROM pg_temp.alerts();
SELECT * FROM pg_temp.events();
-- A new sample above fires again; "ai-warm" is pending for its hour.
SELECT dispatch.agent_metrics('incr1', jsonb_build_array(pg_temp.s(now() - interval '1 second', 8))) AS stored;
SELECT dispatch._evaluate_alerts();
SELECT * FROM pg_temp.alerts();
-- "for" runs out with no new sample: the pending alert fires at the next pass.
UPDATE dispatch.alerts SET since = now() - interval '2 hours'
 WHERE node = 'incr1' AND rule_id = (SELECT rule_id FROM dispatch.alert_rules WHERE name = 'incr-warm');
SELECT count(*) AS dirty FROM dispatch.alert_dirty WHERE node LIKE 'incr%';
SELECT dispatch._evaluate_alerts();
SELECT * FROM pg_temp.alerts();
-- A whole pass looks at everything: incr2's hidden value now resolves its load alerts.
SELECT dispatch._evaluate_alerts(true);
SELECT * FROM pg_temp.alerts();
SELECT * FROM pg_temp.events();
-- A node going offline is a change (the trigger on dispatch.nodes), so node.up is seen.
SELECT dispatch.agent_offline('incr2');
SELECT node AS dirty FROM dispatch.alert_dirty WHERE node LIKE 'incr%';
SELECT dispatch._evaluate_alerts();
SELECT * FROM pg_temp.alerts();
SELECT * FROM pg_temp.events();

-- Clean up: later tests see no incr rules or nodes.
SELECT dispatch.drop_alert_rule(name) FROM dispatch.alert_rules WHERE name LIKE 'incr-%' ORDER BY name;
SELECT dispatch.agent_offline('incr1');
DELETE FROM dispatch.alert_dirty WHERE node LIKE 'incr%';
