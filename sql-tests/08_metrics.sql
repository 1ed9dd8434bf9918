-- Metrics: samples stored compactly and read back through the views, history from raw
-- samples, rollups and retention; alert rules: every malformed spec, and the states an
-- alert goes through with the notifications it queues.  The monitor worker sleeps for an
-- hour in these tests, so alerts are evaluated here by hand.
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT dispatch.agent_register('mx1', '{"labels": {"zone": "a"}}') IS NOT NULL AS registered;
SELECT dispatch.agent_register('mx2', '{"labels": {"zone": "b"}}') IS NOT NULL AS registered;
-- A sample as the agent sends it: nested objects and arrays become dotted names.
CREATE FUNCTION pg_temp.sample(t timestamptz, queue real, cpu real DEFAULT 12.5) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('t', (extract(epoch FROM t) * 1000)::bigint,
      'cpu', jsonb_build_object('user', cpu, 'system', 3.5, 'iowait', 1, 'steal', 0),
      'load', jsonb_build_array(0.5, 0.4, 0.3),
      'mem', jsonb_build_object('used', 412, 'total', 1000),
      'fs', jsonb_build_array(jsonb_build_object('mount', '/', 'size', 1000, 'used', 701),
                              jsonb_build_object('mount', '/data', 'size', 200, 'used', 181)),
      'net', jsonb_build_array(jsonb_build_object('iface', 'eth0', 'rx_bps', 1000, 'errors', 0)),
      'temp', jsonb_build_array(jsonb_build_object('name', 'cpu0', 'celsius', 55),
          -- two sensors of one chip: told apart by their sensor id, not their name
          jsonb_build_object('sensor', 'hwmon1/temp1', 'name', 'coretemp', 'celsius', 48),
          jsonb_build_object('sensor', 'hwmon1/temp2', 'name', 'coretemp', 'celsius', 50)),
      'procs', 120, 'modules', 42, 'label', 'not a number',
      'plugins', jsonb_build_array(jsonb_build_object('name', 'queue', 'labels',
                                   '{"q": "a"}'::jsonb, 'value', queue)),
      'top_cpu', '[{"pid": 1, "command": "init"}]'::jsonb, 'problems', '["no gpu"]'::jsonb)
$$;
SELECT now() - interval '20 seconds' AS t1, now() - interval '10 seconds' AS t2 \gset
SELECT dispatch.agent_metrics('mx1', jsonb_build_array(pg_temp.sample(:'t1', 1), pg_temp.sample(:'t2', 2)));
-- A replay of the same samples stores nothing new.
SELECT dispatch.agent_metrics('mx1', jsonb_build_array(pg_temp.sample(:'t2', 2)));
SELECT metric, value FROM dispatch.metric_latest WHERE node = 'mx1' ORDER BY metric;
SELECT node, state, cpu_pct, mem_pct, disk_pct, load1, temp_max, running_jobs
  FROM dispatch.node_overview WHERE node LIKE 'mx%' ORDER BY node;
SELECT top, problems FROM dispatch.metric_nodes WHERE node = 'mx1';
SELECT count(*) AS rows, count(DISTINCT layout_id) AS layouts FROM dispatch.metric_samples;
SELECT avg, source FROM dispatch.metric_history('mx1', 'plugin.queue{q="a"}', now() - interval '1 hour');
-- Errors: unknown node, a node that is not the caller's, not an array.
SELECT dispatch.agent_metrics('ghost', '[]');
SELECT dispatch.agent_metrics('mx1', '{}');
SELECT dispatch.agent_metrics('mx1', '[{"no_t": 1}]');

-- Rollups of complete minutes; old partitions are dropped by retention.
INSERT INTO dispatch.metric_rollup_state VALUES ('1m', date_trunc('minute', now()) - interval '3 days')
ON CONFLICT (resolution) DO UPDATE SET done_until = excluded.done_until;
-- (stored directly: agent_metrics() takes nothing older than the raw retention)
INSERT INTO dispatch.metric_layouts (series, digest)
SELECT ARRAY[series_id], (dispatch._sample_flat('{"cpu": {"user": 0}}', 255)).digest
  FROM dispatch.metric_series WHERE name = 'cpu.user';
INSERT INTO dispatch.metric_recent
SELECT node_id, date_trunc('minute', now()) - interval '3 days' + s * interval '10 seconds',
       (SELECT layout_id FROM dispatch.metric_layouts ORDER BY layout_id DESC LIMIT 1), ARRAY[s]
  FROM dispatch.metric_nodes, generate_series(0, 5) s WHERE node = 'mx1';
SELECT dispatch._metric_partition('metric_packs', now() - interval '3 days') IS NOT NULL AS packs_partition;
SELECT count(*) AS partitions_before FROM pg_inherits
 WHERE inhparent = 'dispatch.metric_packs'::regclass \gset
SELECT dispatch._metrics_maintain();
-- (read plain or packed: avg is sum / n)
SELECT ARRAY(SELECT v / r.n FROM unnest(r.sum) v) AS avg, min, max
  FROM dispatch.metric_rollups r JOIN dispatch.metric_layouts l USING (layout_id)
 WHERE r.resolution = '1m'
   AND l.series = ARRAY[(SELECT series_id FROM dispatch.metric_series WHERE name = 'cpu.user')];
SELECT :partitions_before - count(*) AS partitions_dropped FROM pg_inherits
 WHERE inhparent = 'dispatch.metric_packs'::regclass;
SELECT count(*) AS old_samples FROM dispatch.metric_samples WHERE at < now() - interval '2 days';

-- Alert rules: every malformed spec.
SELECT dispatch.create_alert_rule(NULL, '{}');
SELECT dispatch.create_alert_rule('r', '[]');
SELECT dispatch.create_alert_rule('r', '{"op": ">", "threshold": 1, "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://x"], "colour": 1}');
SELECT dispatch.create_alert_rule('r', '{"metric": "", "op": ">", "threshold": 1, "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": "~", "threshold": 1, "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": "1", "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "for": "soon", "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "repeat": -5, "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "severity": "fatal", "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "labels": {"zone": 1}, "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": []}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["ftp://x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://x", "mailto:nobody"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": [3]}');
SELECT dispatch.drop_alert_rule('nope');
SELECT count(*) AS rules FROM dispatch.alert_rules;

-- An alert's life: pending for its "for", firing, repeated, resolved; node offline.
SELECT dispatch.create_alert_rule('queue-deep', '{"metric": "plugin.queue{q=\"a\"}", "labels": {"zone": "a"},
  "op": ">=", "threshold": 5, "for": "0", "severity": "critical", "repeat": "1 hour",
  "notify": ["mailto:ops@example.com", "https://hooks.example.com/x"]}') > 0 AS created;
SELECT dispatch.create_alert_rule('queue-deep', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://x"]}');
SELECT dispatch.create_alert_rule('slow', '{"metric": "cpu.user", "op": ">", "threshold": 10,
  "for": "1 hour", "notify": ["http://x"]}') > 0 AS created;
SELECT dispatch.create_alert_rule('down', '{"metric": "node.up", "node": "mx*", "op": "=", "threshold": 0,
  "notify": ["http://x"]}') > 0 AS created;
SELECT dispatch._evaluate_alerts();
SELECT rule, node, state, value FROM dispatch.alert_status ORDER BY rule, node;
SELECT dispatch.agent_metrics('mx1', jsonb_build_array(pg_temp.sample(now(), 9)));
SELECT dispatch._evaluate_alerts();
SELECT rule, node, state, value FROM dispatch.alert_status ORDER BY rule, node;
SELECT r.name, e.node, e.event, e.value FROM dispatch.alert_events e JOIN dispatch.alert_rules r USING (rule_id)
 ORDER BY e.event_id;
SELECT target, subject, body - 'at' - 'event_id' AS body FROM dispatch.notifications ORDER BY notification_id;
-- Nothing new while it stays firing within its repeat interval; a repeat once it is due.
SELECT dispatch._evaluate_alerts();
UPDATE dispatch.alerts SET notified_at = now() - interval '2 hours';
SELECT dispatch._evaluate_alerts();
SELECT dispatch.agent_offline('mx2');
SELECT dispatch._evaluate_alerts();
SELECT dispatch.agent_metrics('mx1', jsonb_build_array(pg_temp.sample(now() + interval '1 second', 1)));
SELECT dispatch._evaluate_alerts();
SELECT r.name, e.node, e.event, e.value FROM dispatch.alert_events e JOIN dispatch.alert_rules r USING (rule_id)
 ORDER BY e.event_id;
SELECT rule, node, state FROM dispatch.alert_status ORDER BY rule, node;
-- The outbox: claimed with an attempt counted, then sent or retried later.
SELECT count(*) AS due FROM dispatch._notifications_due(100);
SELECT count(*) AS due_again FROM dispatch._notifications_due(100);
SELECT dispatch._notification_done(min(notification_id), true, '') FROM dispatch.notifications;
SELECT dispatch._notification_done(max(notification_id), false, 'connection refused') FROM dispatch.notifications;
SELECT dispatch._notification_done(max(notification_id), false, 'late failure') FROM dispatch.notifications
 WHERE sent_at IS NOT NULL;
SELECT count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
       count(*) FILTER (WHERE last_error IS NOT NULL AND sent_at IS NULL) AS failed_once,
       min(attempts) AS attempts, max(attempts) AS max_attempts FROM dispatch.notifications;
SELECT dispatch.drop_alert_rule(name) FROM dispatch.alert_rules ORDER BY rule_id;
SELECT count(*) AS events_left FROM dispatch.alert_events;

-- A sample that arrives after its minute was rolled up (an agent's queue replayed after
-- a disconnection) has that minute rolled up again: replaced, not added twice.
SELECT date_trunc('minute', now()) - interval '10 minutes' AS late \gset
SELECT dispatch._metrics_maintain();
SELECT dispatch.agent_metrics('mx2', jsonb_build_array(pg_temp.sample(:'late', 7, 30)));
SELECT at = :'late' AS late_minute FROM dispatch.metric_rollup_redo;
SELECT dispatch._metrics_maintain();
SELECT dispatch.agent_metrics('mx2', jsonb_build_array(pg_temp.sample(:'late'::timestamptz + interval '30 seconds', 7, 50)));
SELECT dispatch._metrics_maintain();
SELECT r.at = :'late' AS late_minute,
       r.sum[array_position(l.series, s.series_id)] / r.n AS avg, r.max[array_position(l.series, s.series_id)] AS max
  FROM dispatch.metric_rollups r JOIN dispatch.metric_layouts l USING (layout_id)
  JOIN dispatch.metric_nodes n USING (node_id), dispatch.metric_series s
 WHERE r.resolution = '1m' AND n.node = 'mx2' AND s.name = 'cpu.user';
SELECT count(*) AS redo_left FROM dispatch.metric_rollup_redo;
-- A sample older than dispatch.metrics_raw_retention is not stored.
SELECT dispatch.agent_metrics('mx2', jsonb_build_array(pg_temp.sample(now() - interval '3 days', 1)));
