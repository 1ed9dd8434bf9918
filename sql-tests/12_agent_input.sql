-- Hostile agents (docs/security.md): what a registration and a metrics sample may
-- carry.  Every refusal is invalid_parameter_value (SQLSTATE class 22, which the agent
-- treats as "drop this data") with the JSON path in the detail, and changes nothing.
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE ROLE ai_agent IN ROLE dispatch_agent;
CREATE FUNCTION pg_temp.try_register(node text, info jsonb) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dispatch.agent_register(node, info);
    RETURN 'accepted';
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN 'refused with ' || SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Registration limits, one per line.
SELECT dispatch.agent_register('ai-bad', '{"amounts": {"cpu": 9223372036854775807}}');
SELECT dispatch.agent_register('ai-bad', '{"amounts": {"mem_mb": 1099511627777}}');
SELECT dispatch.agent_register('ai-bad', '{"memory_mb": 1099511627777}');
SELECT dispatch.agent_register('ai-bad', '{"cpus": "many"}');
SELECT dispatch.agent_register('ai-bad', '{"pid": -1}');
SELECT dispatch.agent_register('ai-bad', '{"hostname": 7}');
SELECT dispatch.agent_register('ai-bad', jsonb_build_object('os', repeat('x', 256)));
SELECT dispatch.agent_register('ai-bad', jsonb_build_object('labels', jsonb_build_object('zone', repeat('z', 256))));
SELECT dispatch.agent_register('ai-bad', '{"jobs": {}}');
SELECT dispatch.agent_register('ai-bad', '{"jobs": [7]}');
SELECT dispatch.agent_register('ai-bad', '{"jobs": [{"job_id": "x"}]}');
SELECT dispatch.agent_register('ai-bad', '{"jobs": [{"attempt": 1}]}');
SET dispatch.max_node_labels = 2;
SELECT dispatch.agent_register('ai-bad', '{"labels": {"a": "1", "b": "2", "c": "3"}}');
RESET dispatch.max_node_labels;
SET dispatch.max_node_resources = 3;
SELECT dispatch.agent_register('ai-bad', '{"resources": [{"type": "cpu", "ident": "0"},
  {"type": "cpu", "ident": "1"}, {"type": "cpu", "ident": "2"}], "amounts": {"mem_mb": 1}}');
RESET dispatch.max_node_resources;
SET dispatch.max_node_info_size = 1024;
SELECT dispatch.agent_register('ai-bad', jsonb_build_object('resources',
  (SELECT jsonb_agg(jsonb_build_object('type', 'cpu', 'ident', i)) FROM generate_series(1, 50) i)));
RESET dispatch.max_node_info_size;
-- The limits are the superuser's: an agent cannot raise them for itself.
SET ROLE ai_agent;
SET dispatch.max_node_resources = 1000000;
RESET ROLE;
-- None of these created the node.
SELECT count(*) AS bad_nodes FROM dispatch.nodes WHERE node = 'ai-bad';
-- At the limits: accepted.
SELECT pg_temp.try_register('ai-max', jsonb_build_object('amounts', '{"ai_cpu": 1099511627776}'::jsonb,
  'labels', (SELECT jsonb_object_agg('l' || i, repeat('v', 255)) FROM generate_series(1, 64) i),
  'hostname', repeat('h', 255)));

-- The effect: a node with the largest amounts allowed, twice over, does not starve
-- a job pinned to another node.
SELECT pg_temp.try_register('ai-max2', '{"amounts": {"ai_cpu": 1099511627776}}');
SELECT pg_temp.try_register('ai-small', '{"amounts": {"ai_cpu": 1}}');
SELECT dispatch.submit_joblist('{"name": "ai-pinned", "stages": [{"jobs": [{"name": "p",
  "command": "true", "needs": {"ai_cpu": 1}, "constraints": {"node": "ai-small"}}]}]}') AS pinned \gset
SELECT wait_for($$SELECT EXISTS (SELECT FROM dispatch.jobs j, dispatch.joblists l
                                  WHERE l.name = 'ai-pinned' AND j.joblist_id = l.joblist_id
                                    AND j.state <> 'pending')$$) AS placed;
SELECT state, node, resources FROM dispatch.job_status WHERE joblist_id = :pinned;
SELECT dispatch.agent_offline(n) FROM unnest(ARRAY['ai-max', 'ai-max2', 'ai-small']) n;

-- Metrics: bounded batches, samples, metrics and names; bad times refused.
SELECT dispatch.agent_register('ai-m', '{}') IS NOT NULL AS registered;
SELECT (extract(epoch FROM now()) * 1000)::bigint AS now_ms \gset
-- A sample of n metrics named m1, m2... padded with x to name_len bytes.
CREATE FUNCTION pg_temp.metrics(t bigint, n int, name_len int DEFAULT 1) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('t', t) || (SELECT jsonb_object_agg(
               'm' || i || repeat('x', greatest(name_len - length('m' || i), 0)), i)
             FROM generate_series(1, n) i)
$$;
SELECT count(*) AS series_before FROM dispatch.metric_series \gset
SELECT count(*) AS partitions_before FROM pg_inherits
 WHERE inhparent = 'dispatch.metric_samples'::regclass \gset
-- 800 metrics in one sample (before: SQLSTATE 54000, retried forever).
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(:now_ms, 800)));
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(:now_ms, 2, 300)));
-- Stamped in 2047 (before: accepted, with a partition for it), or too far ahead.
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(2445279600000, 2)));
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(:now_ms + 600000, 2)));
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(253402300800000, 2)));
SELECT dispatch.agent_metrics('ai-m', '[{"t": -1, "m": 1}]');
SELECT dispatch.agent_metrics('ai-m', '[{"t": 1.5, "m": 1}]');
SELECT dispatch.agent_metrics('ai-m', '[{"m": 1}]');
SELECT dispatch.agent_metrics('ai-m', '[7]');
SELECT dispatch.agent_metrics('ai-m', format('[{"t": %s, "a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}]', :now_ms)::jsonb);
SELECT dispatch.agent_metrics('ai-m', format('[{"t": %s, "plugins": {}}]', :now_ms)::jsonb);
SELECT dispatch.agent_metrics('ai-m', format('[{"t": %s, "plugins": [7]}]', :now_ms)::jsonb);
SELECT dispatch.agent_metrics('ai-m', format('[{"t": %s, "plugins": [{"value": 1}]}]', :now_ms)::jsonb);
SELECT dispatch.agent_metrics('ai-m', format('[{"t": %s, "plugins": [{"name": "q", "labels": {"k": 1}, "value": 1}]}]', :now_ms)::jsonb);
SELECT dispatch.agent_metrics('ai-m', format('[{"t": %s, "plugins": [{"name": "q", "labels": {"k": "%s"}, "value": 1}]}]', :now_ms, repeat('v', 300))::jsonb);
SELECT dispatch.agent_metrics('ai-m', format('[{"t": %s, "top_cpu": "%s"}]', :now_ms, repeat('x', 300000))::jsonb);
SET dispatch.metrics_max_batch = 2;
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(:now_ms - 3000, 1),
  pg_temp.metrics(:now_ms - 2000, 1), pg_temp.metrics(:now_ms - 1000, 1)));
RESET dispatch.metrics_max_batch;
-- The cap of metrics per sample is what a metric_layouts index entry can hold.
SET dispatch.metrics_max_per_sample = 601;
-- One bad sample refuses its batch: the good one before it is not stored either.
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(:now_ms - 5000, 2),
  pg_temp.metrics(2445279600000, 2)));
-- Nothing above created a series, a partition or a sample.
SELECT count(*) - :series_before AS new_series FROM dispatch.metric_series;
SELECT count(*) - :partitions_before AS new_partitions FROM pg_inherits
 WHERE inhparent = 'dispatch.metric_samples'::regclass;
SELECT count(*) AS samples FROM dispatch.metric_samples s JOIN dispatch.metric_nodes m USING (node_id)
 WHERE m.node = 'ai-m';
-- At the limits: 500 metrics of 255-byte names, a clock 4 minutes ahead.
SELECT dispatch.agent_metrics('ai-m', jsonb_build_array(pg_temp.metrics(:now_ms, 500, 255),
  pg_temp.metrics(:now_ms + 240000, 1)));
SELECT count(*) AS samples, max(cardinality(vals)) AS most_metrics
  FROM dispatch.metric_samples s JOIN dispatch.metric_nodes m USING (node_id) WHERE m.node = 'ai-m';
SELECT dispatch.agent_offline('ai-m');
