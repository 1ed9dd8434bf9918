#!/usr/bin/env bash
# metrics_rules.sh: time of one alert evaluation, 100 rules over 1,000 and 10,000 nodes,
# whole and incremental.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand), registers
# NODES simulated nodes (half in zone a), gives each a latest sample of the bench's
# shape (bench/metrics_sample.sql, the values of a fixed instant, stored once through
# dispatch.agent_metrics() for the first node and copied, with other values, into
# dispatch.metric_nodes for the rest) and
# creates RULES rules: thresholds on cpu.user, mem.used, load.1, fs./.used and
# node.up, some with a node pattern or labels, so that about a tenth of the nodes hold
# each condition.  Then dispatch._evaluate_alerts(true), the whole pass over every rule
# and node, runs three times (the first creates the pending and firing alerts, the
# others find them unchanged) and the best of the last two is printed, at 1,000 nodes
# (the baseline) and at NODES; the ratio of the times over the ratio of the node counts
# shows how it grows (1.0 = linear).  Then the monitor's incremental pass after a small
# batch: BATCH (100) nodes get a new latest sample (other values, marked as
# agent_metrics() marks them) and dispatch._evaluate_alerts() runs (best of 2 batches),
# against the whole pass in the same run.
#
# Knobs: NODES (10000), RULES (100), PORT.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/metrics_rules.sh
set -euo pipefail
nodes=${NODES:-10000}
rules=${RULES:-100}
batch=${BATCH:-100}
port=${PORT:-54339}
source "$(dirname "$0")/metrics_server.sh"

# Sets the cluster up with $1 nodes and prints the best whole and incremental
# evaluation times in ms and the alerts open.
measure() {
	psql -v n="$1" -v rules="$rules" -v batch="$batch" <<'SQL'
SET client_min_messages = warning;
TRUNCATE dispatch.alerts, dispatch.alert_events, dispatch.notifications;
DELETE FROM dispatch.alert_rules;
SELECT setseed(0.75) \g /dev/null
SELECT dispatch.agent_register('r' || i, jsonb_build_object('labels',
           jsonb_build_object('zone', CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END)))
  FROM generate_series((SELECT count(*) FROM dispatch.nodes) + 1, :n) i \g /dev/null
-- The values of a fixed instant (the generator follows the time of day), sent as now.
SELECT dispatch.agent_metrics('r1', jsonb_build_array(bench_sample(1, '2026-11-30 06:00+00')
           || jsonb_build_object('t', (extract(epoch FROM now()) * 1000)::bigint))) \g /dev/null
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
    PERFORM dispatch._evaluate_alerts(true);		-- creates the alerts
    FOR i IN 1 .. 2 LOOP
        t := clock_timestamp();
        PERFORM dispatch._evaluate_alerts(true);
        best := least(best, extract(epoch FROM clock_timestamp() - t) * 1000);
    END LOOP;
    RETURN round(best, 1);
END
$$;
-- batch nodes with a new latest sample, then the incremental pass, best of 2.
CREATE FUNCTION pg_temp.incremental_ms(batch int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    best numeric;
BEGIN
    FOR i IN 1 .. 2 LOOP
        WITH b AS (UPDATE dispatch.metric_nodes m
                      SET last_sample_at = now(), latest_vals = ARRAY(SELECT v * (0.5 + random()) FROM unnest(m.latest_vals) v)
                    WHERE m.node IN (SELECT node FROM dispatch.nodes ORDER BY random() LIMIT batch)
                   RETURNING m.node)
        INSERT INTO dispatch.alert_dirty SELECT node FROM b ON CONFLICT DO NOTHING;
        t := clock_timestamp();
        PERFORM dispatch._evaluate_alerts();
        best := least(best, extract(epoch FROM clock_timestamp() - t) * 1000);
    END LOOP;
    RETURN round(best, 1);
END
$$;
\o /dev/null
SELECT pg_temp.evaluate_ms() AS ms \gset
SELECT pg_temp.incremental_ms(:batch) AS inc_ms \gset
\o
SELECT :ms || ' ' || :inc_ms || ' ' || count(*) FROM dispatch.alerts;
SQL
}

read -r base_ms base_inc base_alerts <<< "$(measure 1000)"
read -r full_ms full_inc full_alerts <<< "$(measure "$nodes")"
echo "$rules rules over 1000 nodes: whole pass ${base_ms} ms ($base_alerts alerts open), incremental after $batch new samples ${base_inc} ms"
echo "$rules rules over $nodes nodes: whole pass ${full_ms} ms ($full_alerts alerts open), incremental after $batch new samples ${full_inc} ms"
awk -v a="$full_ms" -v b="$base_ms" -v n="$nodes" -v i="$full_inc" -v bi="$base_inc" 'BEGIN {
	printf "whole pass: ratio %.1f for %.0f times the nodes (%.2f per node, 1.0 = linear)\n", a / b, n / 1000, (a / b) / (n / 1000)
	printf "incremental / whole pass: %.3f at 1000 nodes, %.3f at %d nodes\n", bi / b, i / a, n }'
echo "bench took $(( $(date +%s) - started )) s"
