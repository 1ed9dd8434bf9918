#!/usr/bin/env bash
# metrics_rules.sh: time of one alert evaluation, 100 rules over 1,000 and 10,000 nodes.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand), registers
# NODES simulated nodes (half in zone a), gives each a latest sample of the bench's
# shape (bench/metrics_sample.sql, stored once through dispatch.agent_metrics() for the
# first node and copied, with other values, into dispatch.metric_nodes for the rest) and
# creates RULES rules: thresholds on cpu.user, mem.used, load.1, fs./.used and
# node.up, some with a node pattern or labels, so that about a tenth of the nodes hold
# each condition.  Then dispatch._evaluate_alerts() runs three times (the first
# creates the pending and firing alerts, the others find them unchanged) and the best
# of the last two is printed, at 1,000 nodes (the baseline) and at NODES; the ratio
# of the times over the ratio of the node counts shows how it grows (1.0 = linear).
#
# Knobs: NODES (10000), RULES (100), PORT.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/metrics_rules.sh
set -euo pipefail
nodes=${NODES:-10000}
rules=${RULES:-100}
port=${PORT:-54339}
source "$(dirname "$0")/metrics_server.sh"

# Sets the cluster up with $1 nodes and prints the best evaluation time in ms.
measure() {
	psql -v n="$1" -v rules="$rules" <<'SQL'
SET client_min_messages = warning;
TRUNCATE dispatch.alerts, dispatch.alert_events, dispatch.notifications;
DELETE FROM dispatch.alert_rules;
SELECT setseed(0.75) \g /dev/null
SELECT dispatch.agent_register('r' || i, jsonb_build_object('labels',
           jsonb_build_object('zone', CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END)))
  FROM generate_series((SELECT count(*) FROM dispatch.nodes) + 1, :n) i \g /dev/null
SELECT dispatch.agent_metrics('r1', jsonb_build_array(bench_sample(1, now()))) \g /dev/null
-- Every node's latest sample: the first node's layout, its values scaled at random.
INSERT INTO dispatch.metric_nodes (node, last_sample_at, latest_layout, latest_vals)
SELECT n.node, now(), m.latest_layout,
       ARRAY(SELECT v * (0.5 + random()) FROM unnest(m.latest_vals) v)
  FROM dispatch.nodes n, dispatch.metric_nodes m
 WHERE m.node = 'r1' AND n.node <> 'r1'
ON CONFLICT (node) DO UPDATE SET last_sample_at = excluded.last_sample_at,
    latest_layout = excluded.latest_layout, latest_vals = excluded.latest_vals;
SELECT dispatch.create_alert_rule('rule' || i, jsonb_build_object(
           'metric', (ARRAY['cpu.user', 'mem.used', 'load.1', 'fs./.used', 'node.up'])[i % 5 + 1],
           'op', CASE WHEN i % 5 = 4 THEN '=' ELSE '>' END,
           'threshold', CASE i % 5 WHEN 0 THEN 40 WHEN 1 THEN 2.2e11 WHEN 2 THEN 22
                                   WHEN 3 THEN 2.1e11 ELSE 0 END,
           'for', CASE WHEN i % 3 = 0 THEN '1 hour' ELSE '0' END,
           'notify', jsonb_build_array('mailto:ops@example.com'))
           || CASE WHEN i % 7 = 0 THEN jsonb_build_object('node', 'r1*') ELSE '{}' END
           || CASE WHEN i % 4 = 0 THEN jsonb_build_object('labels', jsonb_build_object('zone', 'a'))
                   ELSE '{}' END)
  FROM generate_series(1, :rules) i \g /dev/null
VACUUM ANALYZE;
CREATE FUNCTION pg_temp.evaluate_ms() RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    best numeric;
BEGIN
    PERFORM dispatch._evaluate_alerts();		-- creates the alerts
    FOR i IN 1 .. 2 LOOP
        t := clock_timestamp();
        PERFORM dispatch._evaluate_alerts();
        best := least(best, extract(epoch FROM clock_timestamp() - t) * 1000);
    END LOOP;
    RETURN round(best);
END
$$;
\o /dev/null
SELECT pg_temp.evaluate_ms() AS ms \gset
\o
SELECT :ms || ' ' || count(*) FROM dispatch.alerts;
SQL
}

read -r base_ms base_alerts <<< "$(measure 1000)"
read -r full_ms full_alerts <<< "$(measure "$nodes")"
echo "$rules rules over 1000 nodes: ${base_ms} ms per evaluation ($base_alerts alerts open)"
echo "$rules rules over $nodes nodes: ${full_ms} ms per evaluation ($full_alerts alerts open)"
awk -v a="$full_ms" -v b="$base_ms" -v n="$nodes" 'BEGIN {
	printf "ratio %.1f for %.0f times the nodes (%.2f per node, 1.0 = linear)\n", a / b, n / 1000, (a / b) / (n / 1000) }'
echo "bench took $(( $(date +%s) - started )) s"
