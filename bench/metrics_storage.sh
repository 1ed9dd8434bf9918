#!/usr/bin/env bash
# metrics_storage.sh: bytes on disk per metric value, packed against plain rows, and
# metric_history() over a day, packed against plain.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh) and stores a day of 10-second samples (8,640 per node) from NODES
# simulated nodes (bench/metrics_sample.sql: the shape of what dispatch-agent sends,
# 92 metrics on average).  NODES defaults to 10, not the 100 of the issue: the plain
# baseline holds 8 million rows per 10 nodes; bytes per value barely depend on the node
# count, so the totals are also printed extrapolated to 100 nodes; NODES=100 measures them.
#
# Ingest: the first REAL_MINUTES (10) of every node go through the real path, one
# dispatch.agent_metrics() call per node with that node's samples as one batch (a
# reconnecting agent sends its queue the same way); the rest of the day is filled with
# copies of those rows shifted in time, inserted into dispatch.metric_recent in the
# format agent_metrics() wrote, in time order, all nodes interleaved, into the hourly
# partitions the monitor creates.  Then, in the same run, the same values as:
#   plain_ids  (node_id int, metric_id int, at timestamptz, value double precision),
#              index (node_id, metric_id, at): one row per value, what a careful DBA writes;
#   real_rows  (node_id int, at timestamptz, layout_id int, vals real[]), index (node_id, at):
#              the format before packing (4-byte reals, so not exact);
#   metric_recent: one row per sample with a double precision[] (how samples wait for packing);
#   metric_packs: what dispatch._metrics_pack() makes of the day (the monitor's packing),
#              checked to give back every value bit for bit.
# Sizes are pg_total_relation_size() (heap, indexes, TOAST, free space and visibility
# maps) after VACUUM, summed over partitions; the row formats also count the name tables
# they need.  metric_history('node1', 'cpu.user') over the whole day is timed on the
# plain rows and on the packs (best of 3).  Then the minute and hour rollups of the day
# are computed with dispatch._rollup() and the cost of a node at the default
# retentions is printed.
#
# Knobs: NODES (10), HOURS (24), REAL_MINUTES (10), PORT.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/metrics_storage.sh
set -euo pipefail
nodes=${NODES:-10}
hours=${HOURS:-24}
real_minutes=${REAL_MINUTES:-10}
port=${PORT:-54337}
settings="ALTER SYSTEM SET dispatch.metrics_raw_retention = '$((hours + 72))h'"	# samples outlive the run
source "$(dirname "$0")/metrics_server.sh"

psql -v nodes="$nodes" -v hours="$hours" -v real_minutes="$real_minutes" <<'SQL'
-- The day ends at the last UTC midnight, so that with HOURS=24 it is one UTC day.
SELECT date_trunc('day', now(), 'UTC') AS t_end,
       date_trunc('day', now(), 'UTC') - :hours * interval '1 hour' AS t_start \gset
SELECT set_config('bench.t_start', :'t_start', false), set_config('bench.t_end', :'t_end', false),
       set_config('bench.window', :real_minutes || ' min', false) \g /dev/null
-- The monitor rolls up only what is newer than its state: keep it off the bench's data.
INSERT INTO dispatch.metric_rollup_state VALUES ('1m', now()), ('1h', now())
ON CONFLICT (resolution) DO UPDATE SET done_until = greatest(excluded.done_until,
                                                             dispatch.metric_rollup_state.done_until);
-- The hourly partitions the monitor would have created while the day went by.
SELECT dispatch._metric_partition('metric_recent', h)
  FROM generate_series(:'t_start'::timestamptz, :'t_end'::timestamptz - interval '1 s',
                       interval '1 hour') h \g /dev/null

SELECT setseed(0.5) \g /dev/null
SELECT dispatch.agent_register('node' || n, '{}') FROM generate_series(1, :nodes) n \g /dev/null
-- Each node samples at its own phase within the 10 s.
CREATE TEMP TABLE batches AS
SELECT n, (SELECT jsonb_agg(bench_sample(n, t) ORDER BY t)
             FROM generate_series(:'t_start'::timestamptz + (n * 997 % 10000) * interval '1 ms',
                                  :'t_start'::timestamptz + :real_minutes * interval '1 min'
                                      - interval '1 ms', interval '10 s') t) AS samples
  FROM generate_series(1, :nodes) n;

SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
-- One call, and one transaction, per node, as an agent sends its queue.
\o /dev/null
SELECT format('SELECT dispatch.agent_metrics(%L, samples) FROM batches WHERE n = %s', 'node' || n, n)
  FROM batches ORDER BY n \gexec
\o
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS ingest_s \gset
SELECT count(*) AS real_samples FROM dispatch.metric_recent \gset
DELETE FROM dispatch.metric_rollup_redo;	-- the bench rolls the day up itself

-- The rest of the day: copies of the real rows, shifted by whole REAL_MINUTES,
-- inserted in time order.
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
DO $$
DECLARE
    w interval := current_setting('bench.window')::interval;
    t_end timestamptz := current_setting('bench.t_end')::timestamptz;
    k int := 1;
BEGIN
    LOOP
        INSERT INTO dispatch.metric_recent
        SELECT s.node_id, s.at + k * w, s.layout_id, s.vals
          FROM dispatch.metric_recent s
         WHERE s.at < current_setting('bench.t_start')::timestamptz + w
           AND s.at + k * w < t_end
         ORDER BY s.at + k * w, s.node_id;
        EXIT WHEN NOT FOUND;
        k := k + 1;
    END LOOP;
END
$$ \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS copy_s \gset
VACUUM ANALYZE;

-- Baselines: the same values, in time order, indexes in place.
CREATE TABLE plain_ids (node_id int NOT NULL, metric_id int NOT NULL,
                        at timestamptz NOT NULL, value double precision NOT NULL);
CREATE INDEX ON plain_ids (node_id, metric_id, at);
CREATE TABLE real_rows (node_id int NOT NULL, at timestamptz NOT NULL, layout_id int NOT NULL,
                        vals real[] NOT NULL);
CREATE INDEX ON real_rows (node_id, at);
-- Runs insert once per hour of the day, with $1 and $2 the hour's bounds, so that
-- every table is filled in time order as a live system fills it.
CREATE FUNCTION pg_temp.fill_by_hour(insert text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    h timestamptz;
BEGIN
    FOR h IN SELECT generate_series(current_setting('bench.t_start')::timestamptz,
                                    current_setting('bench.t_end')::timestamptz - interval '1 s',
                                    interval '1 hour') LOOP
        EXECUTE insert USING h, h + interval '1 hour';
    END LOOP;
END
$$;
SELECT pg_temp.fill_by_hour($q$
    INSERT INTO plain_ids
    SELECT s.node_id, l.series[u.i], s.at, u.v
      FROM dispatch.metric_recent s JOIN dispatch.metric_layouts l USING (layout_id),
           unnest(s.vals) WITH ORDINALITY u(v, i)
     WHERE s.at >= $1 AND s.at < $2
     ORDER BY s.at, s.node_id, u.i$q$);
SELECT pg_temp.fill_by_hour($q$
    INSERT INTO real_rows SELECT s.node_id, s.at, s.layout_id, s.vals
      FROM dispatch.metric_recent s WHERE s.at >= $1 AND s.at < $2 ORDER BY s.at, s.node_id$q$);
VACUUM ANALYZE plain_ids;
VACUUM ANALYZE real_rows;

-- Sizes of a table's leaves (or of the table).
CREATE FUNCTION pg_temp.size(tbl regclass) RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(pg_total_relation_size(relid))::bigint
      FROM (SELECT relid FROM pg_partition_tree(tbl) WHERE isleaf
            UNION SELECT tbl WHERE (SELECT relkind FROM pg_class WHERE oid = tbl) = 'r') x
$$;
-- The best of 3 runs of metric_history of node1's cpu.user from t0 to the day's end, in ms.
CREATE FUNCTION pg_temp.history_ms(t0 timestamptz) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    best numeric;
    t timestamptz;
    n bigint;
BEGIN
    FOR i IN 1 .. 3 LOOP
        t := clock_timestamp();
        SELECT count(*) INTO n FROM dispatch.metric_history('node1', 'cpu.user', t0,
                                                            current_setting('bench.t_end')::timestamptz);
        best := least(best, extract(epoch FROM clock_timestamp() - t) * 1000);
    END LOOP;
    RAISE NOTICE 'history rows: %', n;
    RETURN round(best, 1);
END
$$;
-- A checksum of every value with its node and instant, to compare before and after packing.
CREATE FUNCTION pg_temp.checksum(q text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    c numeric;
BEGIN
    EXECUTE format('SELECT sum(hashtextextended(node_id || '' '' || at || '' '' || layout_id '
                   '|| '' '' || vals::text, 0)::numeric) FROM (%s) x', q) INTO c;
    RETURN c;
END
$$;
SET client_min_messages = warning;
SELECT count(*) AS samples, sum(cardinality(vals)) AS vals FROM dispatch.metric_recent \gset
SELECT pg_total_relation_size('dispatch.metric_series') + pg_total_relation_size('dispatch.metric_layouts')
           + pg_total_relation_size('dispatch.metric_nodes') AS names,
       pg_temp.size('plain_ids') AS ids, pg_temp.size('real_rows') AS reals,
       pg_temp.size('dispatch.metric_recent') AS recent,
       pg_temp.checksum('SELECT * FROM dispatch.metric_recent') AS sum_before,
       pg_temp.history_ms(:'t_start') AS history_plain_ms \gset

SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT dispatch._metrics_pack(:'t_end') AS packs \gset
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS pack_s \gset
VACUUM ANALYZE dispatch.metric_packs;
SELECT pg_temp.size('dispatch.metric_packs') AS packed,
       (SELECT count(*) FROM dispatch.metric_recent) AS left_plain,
       pg_temp.checksum('SELECT * FROM dispatch.metric_samples') AS sum_after,
       pg_temp.history_ms(:'t_start') AS history_packed_ms \gset

SELECT format('samples: %s (%s nodes, %s h at 10 s), %s values (%s per sample)',
              :samples, :nodes, :hours, :vals, round(:vals::numeric / :samples, 1));
SELECT format('ingest: %s samples through dispatch.agent_metrics() in %s s (%s samples/s, one agent, '
              'batches of %s); %s copied into place in %s s',
              :real_samples, round(:ingest_s::numeric, 2), round(:real_samples / :ingest_s::numeric),
              :real_samples / :nodes, :samples - :real_samples, round(:copy_s::numeric, 1));
SELECT format('%s %s MB = %s bytes per value, %s per sample%s',
              rpad(label, 44), round(total / 1e6, 1), round(total::numeric / :vals, 2),
              round(total::numeric / :samples), extra)
  FROM (VALUES (1, 'plain_ids (one row per value):', :ids::numeric, ''),
               (2, 'real_rows (real[] per sample, before):', :reals + :names, ' (not exact)'),
               (3, 'metric_recent (double precision[] rows):', :recent + :names, ''),
               (4, 'metric_packs (packed):', :packed + :names, '')) x(o, label, total, extra)
 ORDER BY o;
SELECT format('packing: %s packs in %s s (%s samples/s); %s plain rows left; values bit-exact after packing: %s',
              :packs, round(:pack_s::numeric, 1), round(:samples / :pack_s::numeric), :left_plain,
              CASE WHEN :'sum_before' = :'sum_after' THEN 'yes' ELSE 'NO' END);
SELECT format('ratio plain_ids / packed: %s; real_rows / packed: %s; double rows / packed: %s',
              round(:ids::numeric / (:packed + :names), 1),
              round((:reals + :names)::numeric / (:packed + :names), 1),
              round((:recent + :names)::numeric / (:packed + :names), 1));
SELECT format('metric_history over the day (%s samples of node1): plain rows %s ms, packed %s ms, ratio %s',
              :samples / :nodes, :history_plain_ms, :history_packed_ms,
              round(:history_packed_ms / nullif(:history_plain_ms, 0), 2));
SELECT format('extrapolated to 100 nodes x 24 h (linearly): packed %s MB, real_rows %s MB, plain_ids %s MB',
              round(864000 * p / 1e6), round(864000 * r / 1e6), round(864000 * i / 1e6))
  FROM (SELECT (:packed + :names)::numeric / :samples AS p, (:reals + :names)::numeric / :samples AS r,
               :ids::numeric / :samples AS i) x
 WHERE :samples <> 864000;

-- Rollups of the day, as the monitor computes them (the tables hold nothing else),
-- measured as plain rows, as the real[] rows of before (avg, min, max; an index on
-- (node_id, at)), and packed as the monitor packs closed hours and days.
DROP TABLE plain_ids, real_rows;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT dispatch._rollup('metric_samples', 'metric_rollups_1m', 'minute', :'t_start', :'t_end') \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS m_s \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT dispatch._rollup('metric_rollups_1m', 'metric_rollups_1h', 'hour', :'t_start', :'t_end') \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS h_s \gset
CREATE TABLE real_1m AS
SELECT node_id, at, layout_id, ARRAY(SELECT v / n FROM unnest(sum) v)::real[] AS avg, min::real[] AS min,
       max::real[] AS max FROM dispatch.metric_rollups_1m;
CREATE INDEX ON real_1m (node_id, at);
CREATE TABLE real_1h AS
SELECT node_id, at, layout_id, ARRAY(SELECT v / n FROM unnest(sum) v)::real[] AS avg, min::real[] AS min,
       max::real[] AS max FROM dispatch.metric_rollups_1h;
CREATE INDEX ON real_1h (node_id, at);
VACUUM ANALYZE dispatch.metric_rollups_1m;
VACUUM ANALYZE dispatch.metric_rollups_1h;
VACUUM ANALYZE real_1m;
VACUUM ANALYZE real_1h;
CREATE FUNCTION pg_temp.rollup_sum(res text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    c numeric;
BEGIN
    SELECT sum(hashtextextended(concat_ws(' ', node_id, at, layout_id, n, sum, min, max), 0)::numeric)
      INTO c FROM dispatch._rollups_in(res, '-infinity', 'infinity');
    RETURN c;
END
$$;
SELECT pg_temp.size('dispatch.metric_rollups_1m') AS m_plain, pg_temp.size('real_1m') AS m_real,
       (SELECT count(*) FROM dispatch.metric_rollups_1m) AS m_rows,
       pg_temp.size('dispatch.metric_rollups_1h') AS h_plain, pg_temp.size('real_1h') AS h_real,
       (SELECT count(*) FROM dispatch.metric_rollups_1h) AS h_rows,
       pg_temp.rollup_sum('1m') AS m_sum_before, pg_temp.rollup_sum('1h') AS h_sum_before \gset
DROP TABLE real_1m, real_1h;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT dispatch._pack_closed('metric_rollups_1m', :'t_end') + dispatch._pack_closed('metric_rollups_1h', :'t_end')
    AS rollup_packs \gset
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS rp_s \gset
VACUUM ANALYZE dispatch.metric_rollup_packs_1m;
VACUUM ANALYZE dispatch.metric_rollup_packs_1h;
SELECT pg_temp.size('dispatch.metric_rollup_packs_1m') AS m_packed,
       pg_temp.size('dispatch.metric_rollup_packs_1h') AS h_packed,
       pg_temp.rollup_sum('1m') AS m_sum_after, pg_temp.rollup_sum('1h') AS h_sum_after \gset
SELECT format('%s rollups: %s rows (%s s); real[] rows (before) %s bytes, double rows %s, packed %s bytes '
              'per node-%s (ratio real[] / packed %s)',
              res, rows, round(secs::numeric, 1), round(r / rows), round(p / rows), round(k / rows), u,
              round(r / k, 1))
  FROM (VALUES ('minute', :m_rows, :m_s, :m_real::numeric, :m_plain::numeric, :m_packed::numeric, 'minute'),
               ('hour  ', :h_rows, :h_s, :h_real, :h_plain, :h_packed, 'hour')) x(res, rows, secs, r, p, k, u);
SELECT format('rollup packing: %s packs in %s s; values bit-exact after packing: %s', :rollup_packs,
              round(:rp_s::numeric, 1),
              CASE WHEN :'m_sum_before' = :'m_sum_after' AND :'h_sum_before' = :'h_sum_after' THEN 'yes'
                   ELSE 'NO' END);

-- What one node costs at the default retentions (the settings' built-in values): the
-- packs of the raw retention, the hour of samples and of minute rollups waiting to be
-- packed, the day of hour rollups waiting; packed minute and hour rollups of their
-- retentions (partitions are dropped whole, so this is a lower bound by up to one
-- partition each).  Also at the retentions before this version (30 d and 400 d).
SELECT max(boot_val::numeric / 86400) FILTER (WHERE name = 'dispatch.metrics_raw_retention') AS raw_d,
       max(boot_val::numeric / 86400) FILTER (WHERE name = 'dispatch.metrics_minute_retention') AS minute_d,
       max(boot_val::numeric / 86400) FILTER (WHERE name = 'dispatch.metrics_hour_retention') AS hour_d
  FROM pg_settings \gset
SELECT format('per node at %s (raw %s d, minute %s d, hour %s d): raw %s MB (packs %s + the plain hour %s) '
              '+ minute %s MB + hour %s MB = %s MB; as real[] rollup rows (before): %s MB',
              label, trim_scale(raw_d), trim_scale(minute_d), trim_scale(hour_d), round(p + r, 1), round(p, 1), round(r, 1),
              round(m, 1), round(h, 1), round(p + r + m + h, 1), round(p + r + mr + hr, 1))
  FROM (SELECT label, raw_d, minute_d, hour_d, raw_d * d * :packed AS p,
               d / 24 * (:recent + :m_plain) + d * :h_plain AS r,
               minute_d * d * :m_packed AS m, hour_d * d * :h_packed AS h,
               minute_d * d * :m_real AS mr, hour_d * d * :h_real AS hr
          FROM (SELECT 24.0 / :hours / :nodes / 1e6 AS d) x,
               (VALUES ('the default retentions', :raw_d, :minute_d, :hour_d),
                       ('the retentions before', 2, 30, 400)) r(label, raw_d, minute_d, hour_d)) y;

-- metric_history of node1's cpu.user over 30 days of minute rollups (the day's, copied
-- to the 29 days before; the minute retention is raised to 40 days for it), plain rows
-- against packs, best of 3.
ALTER SYSTEM SET dispatch.metrics_minute_retention = '40d';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
CREATE TEMP TABLE day1 AS
SELECT r.* FROM dispatch._rollups_in('1m', :'t_start', :'t_end') r
 WHERE r.node_id = (SELECT node_id FROM dispatch.metric_nodes WHERE node = 'node1');
DELETE FROM dispatch.metric_rollup_packs_1m;
INSERT INTO dispatch.metric_rollups_1m
SELECT node_id, at - k * interval '1 day', layout_id, n, sum, min, max
  FROM day1, generate_series(0, 29) k ORDER BY 2;
VACUUM ANALYZE dispatch.metric_rollups_1m;
SELECT pg_temp.history_ms(:'t_end'::timestamptz - interval '30 days') AS m30_plain_ms \gset
SELECT dispatch._pack_closed('metric_rollups_1m', :'t_end') \g /dev/null
VACUUM ANALYZE dispatch.metric_rollup_packs_1m;
SELECT pg_temp.history_ms(:'t_end'::timestamptz - interval '30 days') AS m30_packed_ms,
       (SELECT count(*) FROM dispatch.metric_history('node1', 'cpu.user', :'t_end'::timestamptz - interval '30 days',
                                                     :'t_end')) AS m30_rows,
       (SELECT min(source) FROM dispatch.metric_history('node1', 'cpu.user', :'t_end'::timestamptz - interval '30 days',
                                                        :'t_end')) AS m30_source \gset
SELECT format('metric_history over 30 days (%s rows of node1, source %s): plain rows %s ms, packed %s ms, ratio %s',
              :m30_rows, :'m30_source', :m30_plain_ms, :m30_packed_ms,
              round(:m30_packed_ms / nullif(:m30_plain_ms, 0), 2));
SQL
echo "bench took $(( $(date +%s) - started )) s"
