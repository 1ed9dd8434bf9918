-- Packed metrics (issue 16): the monitor packs a closed hour of samples and of minute
-- rollups (and closed days of hour rollups), every reader gets the same values back bit
-- for bit (history, the metric_samples view, rollups), a redo of a packed hour replaces
-- its pack, a replay of a packed hour stores nothing, a late sample of it goes into a
-- further pack, values are exact doubles, and the glue refuses what is not a pack.
-- Prints no serial ids, so it passes alone after 00_setup and in the full run.
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT dispatch.agent_register('pk1', '{}') IS NOT NULL AS registered;
-- A full hour, two hours ago: 360 samples 10 s apart (a few ms of jitter), with a counter
-- that resets, percentages, a big counter beyond 2^53, tiny and negative numbers, and a
-- layout that grows in the middle (a plugin appears).
SELECT date_trunc('hour', now()) - interval '2 hours' AS h0 \gset
CREATE FUNCTION pg_temp.pk_sample(h timestamptz, k int, shift_ms int DEFAULT 0) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        't', (extract(epoch FROM h) * 1000)::bigint + k * 10000 + (k % 3) + shift_ms,
        'cpu', jsonb_build_object('user', round((50 + 40 * sin(k / 9.0))::numeric, 1), 'count', 32),
        'disk', jsonb_build_array(jsonb_build_object('name', 'sda',
                    'reads', CASE WHEN k < 200 THEN 1000000 + 37 * k ELSE 37 * (k - 200) END)),
        'net', jsonb_build_object('rx_bytes', 123456789012345678 + k * 4096),
        'tiny', 1e-7 * k, 'neg', -0.5 * k, 'third', round(k / 3.0, 6))
      || CASE WHEN k >= 180 THEN jsonb_build_object('plugins', jsonb_build_array(
             jsonb_build_object('name', 'queue', 'value', k % 7))) ELSE '{}' END
$$;
SELECT dispatch.agent_metrics('pk1', (SELECT jsonb_agg(pg_temp.pk_sample(:'h0', k)) FROM generate_series(0, 359) k))
    AS stored;
SELECT count(*) AS plain, count(DISTINCT layout_id) AS layouts
  FROM dispatch.metric_recent r JOIN dispatch.metric_nodes USING (node_id) WHERE node = 'pk1';
-- A fingerprint of every value, to compare after packing.
SELECT md5(string_agg(at || ' ' || vals::text, ',' ORDER BY at)) AS plain_md5
  FROM dispatch.metric_recent r JOIN dispatch.metric_nodes USING (node_id) WHERE node = 'pk1' \gset
SELECT avg, min, max FROM dispatch.metric_history('pk1', 'net.rx_bytes', :'h0', :'h0'::timestamptz + interval '25 seconds');

-- The monitor's packing of closed hours: one pack of 360 samples, no plain row left.
SELECT dispatch._metrics_pack(date_trunc('hour', now())) > 0 AS packed;
SELECT p.t0 = :'h0'::timestamptz AS starts_at_h0, p.n, cardinality(p.layouts) AS layouts,
       octet_length(p.data) < 360 * 8 * 3 AS smaller_than_a_third_of_8_bytes_per_value
  FROM dispatch.metric_packs p JOIN dispatch.metric_nodes USING (node_id) WHERE node = 'pk1';
SELECT count(*) AS plain_left FROM dispatch.metric_recent r JOIN dispatch.metric_nodes USING (node_id)
 WHERE node = 'pk1';
-- Read back bit for bit, through the view and through metric_history.
SELECT md5(string_agg(at || ' ' || vals::text, ',' ORDER BY at)) = :'plain_md5' AS same_values
  FROM dispatch.metric_samples s JOIN dispatch.metric_nodes USING (node_id) WHERE node = 'pk1';
SELECT avg, min, max, source FROM dispatch.metric_history('pk1', 'net.rx_bytes', :'h0',
                                                          :'h0'::timestamptz + interval '25 seconds');
SELECT count(*) AS samples, min(avg), max(avg) FROM dispatch.metric_history('pk1', 'disk.sda.reads', :'h0');
SELECT count(*) AS samples, sum(avg) FROM dispatch.metric_history('pk1', 'plugin.queue', :'h0');
SELECT avg FROM dispatch.metric_history('pk1', 'tiny', :'h0', :'h0'::timestamptz + interval '25 seconds');
SELECT count(*) AS unknown_metric FROM dispatch.metric_history('pk1', 'no.such', :'h0');

-- A replay of the packed hour stores nothing; a sample it did not have goes into a
-- second pack of the hour at the next packing, and is read with the first.
SELECT dispatch.agent_metrics('pk1', (SELECT jsonb_agg(pg_temp.pk_sample(:'h0', k)) FROM generate_series(0, 359, 7) k))
    AS replayed;
SELECT dispatch.agent_metrics('pk1', jsonb_build_array(pg_temp.pk_sample(:'h0', 100, 5000))) AS late;
SELECT count(*) AS plain_late FROM dispatch.metric_recent_default r JOIN dispatch.metric_nodes USING (node_id)
 WHERE node = 'pk1';
SELECT dispatch._metrics_pack(date_trunc('hour', now())) > 0 AS packed;
SELECT count(*) AS packs, sum(n) AS samples FROM dispatch.metric_packs p JOIN dispatch.metric_nodes USING (node_id)
 WHERE node = 'pk1';
SELECT count(*) AS history, count(DISTINCT at) AS instants
  FROM dispatch.metric_history('pk1', 'cpu.user', :'h0', :'h0'::timestamptz + interval '1 hour');

-- Rollups read the packs: one row a minute, the minute's average.
SELECT dispatch._rollup('metric_samples', 'metric_rollups_1m', 'minute', :'h0',
                        :'h0'::timestamptz + interval '1 hour');
SELECT count(*) AS minutes, min(r.max[array_position(l.series, s.series_id)]) AS lowest_max
  FROM dispatch.metric_rollups_1m r JOIN dispatch.metric_layouts l USING (layout_id)
  JOIN dispatch.metric_nodes n USING (node_id), dispatch.metric_series s
 WHERE n.node = 'pk1' AND s.name = 'neg' AND r.at >= :'h0' AND r.at < :'h0'::timestamptz + interval '1 hour';
-- The minute rollups of the closed hour are packed too (one pack, the minute where the
-- layout changed holding two rows: a late sample of the new layout in the minute before),
-- and read back bit for bit, as rows and through metric_history (minute rollups serve a
-- t0 older than the raw retention).
SELECT dispatch.agent_metrics('pk1', jsonb_build_array(pg_temp.pk_sample(:'h0', 180, -5000))) AS late;
SELECT dispatch._rollup('metric_samples', 'metric_rollups_1m', 'minute', :'h0',
                        :'h0'::timestamptz + interval '1 hour');
CREATE FUNCTION pg_temp.rollups_md5(h timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(concat_ws(' ', r.at, r.layout_id, r.n, r.sum, r.min, r.max), ','
                          ORDER BY r.at, r.layout_id))
      FROM dispatch._rollups_in('1m', h, h + interval '1 hour') r JOIN dispatch.metric_nodes USING (node_id)
     WHERE node = 'pk1'
$$;
SELECT count(*) AS rows, count(DISTINCT at) AS minutes, pg_temp.rollups_md5(:'h0') AS rollups_md5
  FROM dispatch.metric_rollups_1m r JOIN dispatch.metric_nodes USING (node_id) WHERE node = 'pk1' \gset
SELECT :rows AS rollup_rows, :minutes AS minutes;
SELECT dispatch._metrics_pack(date_trunc('hour', now())) > 0 AS packed;
SELECT count(*) AS packs, sum(p.n) AS rows, cardinality(min(p.layouts)) AS layouts
  FROM dispatch.metric_rollup_packs_1m p JOIN dispatch.metric_nodes USING (node_id) WHERE node = 'pk1';
SELECT count(*) AS plain_rollups_left FROM dispatch.metric_rollups_1m r JOIN dispatch.metric_nodes USING (node_id)
 WHERE node = 'pk1';
SELECT pg_temp.rollups_md5(:'h0') = :'rollups_md5' AS same_rollups;
SELECT count(*) AS minutes, min(avg) AS min_avg, max(max) AS max_max, min(source) AS source
  FROM dispatch.metric_history('pk1', 'disk.sda.reads', now() - interval '3 days') WHERE at < :'h0'::timestamptz + interval '1 hour';
SELECT avg, min, max, source FROM dispatch.metric_history('pk1', 'disk.sda.reads', now() - interval '3 days')
 WHERE at = :'h0';
-- A dispatch_user reads the packed rollups too, through metric_history and the view.
CREATE ROLE pk_reader IN ROLE dispatch_user;
SET ROLE pk_reader;
SELECT count(*) AS minutes FROM dispatch.metric_history('pk1', 'disk.sda.reads', now() - interval '3 days')
 WHERE at < :'h0'::timestamptz + interval '1 hour';
SELECT count(*) AS rollup_rows FROM dispatch.metric_rollups
 WHERE resolution = '1m' AND node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
RESET ROLE;
DROP ROLE pk_reader;
-- A redo of one minute of the packed hour (a late sample) redoes the hour: the pack
-- goes, the hour's minutes come back as plain rows, with the same values.
SELECT dispatch._rollup('metric_samples', 'metric_rollups_1m', 'minute', :'h0'::timestamptz + interval '30 minutes',
                        :'h0'::timestamptz + interval '31 minutes');
SELECT count(*) AS packs_left FROM dispatch.metric_rollup_packs_1m p JOIN dispatch.metric_nodes USING (node_id)
 WHERE node = 'pk1';
SELECT count(*) = :rows AS all_minutes_back, pg_temp.rollups_md5(:'h0') = :'rollups_md5' AS same_rollups
  FROM dispatch.metric_rollups_1m r JOIN dispatch.metric_nodes USING (node_id) WHERE node = 'pk1';
-- Hour rollups are packed once their UTC day has closed: their rows of an earlier day.
SELECT dispatch._rollup('metric_rollups_1m', 'metric_rollups_1h', 'hour', :'h0', :'h0'::timestamptz + interval '1 hour');
SELECT r.n, r.sum[array_position(l.series, s.series_id)] / r.n AS avg
  FROM dispatch.metric_rollups r JOIN dispatch.metric_layouts l USING (layout_id)
  JOIN dispatch.metric_nodes n USING (node_id), dispatch.metric_series s
 WHERE r.resolution = '1h' AND n.node = 'pk1' AND s.name = 'cpu.count' ORDER BY r.layout_id;
UPDATE dispatch.metric_rollups_1h SET at = at - interval '2 days'
 WHERE node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
SELECT dispatch._metrics_pack(date_trunc('hour', now())) > 0 AS packed;
SELECT count(*) AS hour_packs FROM dispatch.metric_rollup_packs_1h p JOIN dispatch.metric_nodes USING (node_id)
 WHERE node = 'pk1';
SELECT r.at = :'h0'::timestamptz - interval '2 days' AS same_hour, r.n, r.min[array_position(l.series, s.series_id)] AS min
  FROM dispatch.metric_rollups r JOIN dispatch.metric_layouts l USING (layout_id)
  JOIN dispatch.metric_nodes n USING (node_id), dispatch.metric_series s
 WHERE r.resolution = '1h' AND n.node = 'pk1' AND s.name = 'neg' ORDER BY r.layout_id;

-- The latest sample is exact: a counter beyond 2^53 rounded once, not to a real.
SELECT dispatch.agent_metrics('pk1', jsonb_build_array(jsonb_build_object(
    't', (extract(epoch FROM now()) * 1000)::bigint, 'net', jsonb_build_object('rx_bytes', 123456789012345678),
    'cpu', jsonb_build_object('user', 12.3)))) AS stored;
SELECT metric, value, CASE metric WHEN 'net.rx_bytes' THEN value = 123456789012345678::float8 END AS exact
  FROM dispatch.metric_latest
 WHERE node = 'pk1' ORDER BY metric;

-- What the glue refuses: not a pack, a damaged pack, samples out of order, NULLs, too
-- many values.
SELECT * FROM dispatch._unpack('\x00');
SELECT * FROM dispatch._unpack('\x02000000');
SELECT * FROM dispatch._unpack('\x01ffff0000');
SELECT count(*) FROM dispatch.metric_packs p JOIN dispatch.metric_nodes USING (node_id),
       dispatch._unpack(substr(p.data, 1, octet_length(p.data) - 8)) u WHERE node = 'pk1';
SELECT dispatch._pack(t, 1, ARRAY[1.0::float8] ORDER BY t DESC)
  FROM (VALUES (now()), (now() + interval '1 s')) x(t);
SELECT dispatch._pack(now(), 1, ARRAY[1.0, NULL]::float8[]);
SELECT dispatch._pack(now(), NULL, ARRAY[1.0]::float8[]);
SELECT dispatch._pack(now(), 1, array_fill(1.0::float8, ARRAY[601]));
SELECT dispatch._pack(now(), 1, ARRAY[[1.0, 2.0]]::float8[]);
SELECT * FROM dispatch._unpack_metric('\x0100000000', ARRAY[1, 2], ARRAY[1]);
-- and for rollup rows: unequal statistics, a count below 1, NULLs, too many values, a
-- pack of samples read as rollups
SELECT dispatch._pack_rollup(now(), 1, 6, ARRAY[1.0]::float8[], ARRAY[1.0, 2.0]::float8[], ARRAY[1.0]::float8[]);
SELECT dispatch._pack_rollup(now(), 1, 0, ARRAY[1.0]::float8[], ARRAY[1.0]::float8[], ARRAY[1.0]::float8[]);
SELECT dispatch._pack_rollup(now(), 1, NULL, ARRAY[1.0]::float8[], ARRAY[1.0]::float8[], ARRAY[1.0]::float8[]);
SELECT dispatch._pack_rollup(now(), 1, 6, array_fill(1.0::float8, ARRAY[601]), array_fill(1.0::float8, ARRAY[601]),
                             array_fill(1.0::float8, ARRAY[601]));
SELECT dispatch._pack_rollup(t, 1, 6, ARRAY[1.0]::float8[], ARRAY[1.0]::float8[], ARRAY[1.0]::float8[] ORDER BY t DESC)
  FROM (VALUES (now()), (now() + interval '1 s')) x(t);
SELECT * FROM dispatch._unpack_rollup((SELECT dispatch._pack(now(), 7, ARRAY[1.5, 2.5]::float8[])));
SELECT * FROM dispatch._unpack_rollup_metric((SELECT dispatch._pack(now(), 7, ARRAY[0, 2.5, 2.5, 2.5]::float8[])), ARRAY[7], ARRAY[1]);
SELECT n, sum::text, min::text, max::text
  FROM dispatch._unpack_rollup((SELECT dispatch._pack_rollup(now(), 7, 3, ARRAY[4.5, 'NaN']::float8[],
                                                             ARRAY[1, '-Infinity']::float8[], ARRAY[2, 'Infinity']::float8[])));
-- and what a pack keeps that JSON cannot carry
SELECT layout_id, vals::text AS back
  FROM dispatch._unpack((SELECT dispatch._pack(now(), 7, ARRAY[1.5, 'NaN', '-Infinity', '-0', '1e-310']::float8[])));

-- Clean up: later tests see no pk1 samples.
DELETE FROM dispatch.metric_packs WHERE node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
DELETE FROM dispatch.metric_recent WHERE node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
DELETE FROM dispatch.metric_rollups_1m WHERE node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
DELETE FROM dispatch.metric_rollup_packs_1m WHERE node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
DELETE FROM dispatch.metric_rollups_1h WHERE node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
DELETE FROM dispatch.metric_rollup_packs_1h WHERE node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'pk1');
DELETE FROM dispatch.metric_nodes WHERE node = 'pk1';
SELECT dispatch.agent_offline('pk1');
