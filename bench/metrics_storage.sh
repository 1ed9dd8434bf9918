#!/usr/bin/env bash
# metrics_storage.sh: bytes on disk per metric sample, against plain rows.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh) and stores a day of 10-second samples (8,640 per node) from NODES
# simulated nodes in dispatch.metric_samples, the layout the extension uses: one row per
# node and interval with a real[] of values.  NODES defaults to 10, not the 100 of the
# issue: the baselines hold 8 million rows per 10 nodes, and the run takes about
# 3 minutes on a 2-core machine, 40 minutes at 100 nodes.  Bytes per sample barely
# depend on the node count (within 2 %, see bench/README.md), so the totals are also
# printed extrapolated linearly to 100 nodes; NODES=100 measures them.  The samples
# have the shape of what dispatch-agent sends (see agent/README.md, "Metrics"): cpu,
# load, memory, 4 filesystems, 2 disks, 2 network interfaces, 4 temperature sensors,
# processes, modules, top processes, and on every fourth node 4 GPUs.
#
# Ingest: the first REAL_MINUTES (10) of every node go through the real path, one
# dispatch.agent_metrics() call per node with that node's samples as one batch (a
# reconnecting agent sends its spool the same way).  That path costs about 10 ms per
# sample on a 2-core machine, so the whole day (864,000 samples) would take hours; the
# rest of the day is filled with copies of those rows shifted in time, inserted
# directly in the format agent_metrics wrote them (node id, instant, layout id, vals):
# the values repeat every REAL_MINUTES, which changes no byte count (real[] and double
# precision are fixed-size and the rows are far too small for TOAST compression).
# Rows are inserted in time order, all nodes interleaved, as a live system does, so
# the indexes grow by the same page splits as in production.
#
# Baselines in the same run, the same values, one row per metric per sample, inserted
# in the same order, each with the index one would give it:
#   plain_ids   (node_id int, metric_id int, at timestamptz, value double precision),
#               index (node_id, metric_id, at): what a careful DBA writes;
#   plain_names (node text, at timestamptz, metric text, value double precision),
#               index (node, metric, at): the straightforward table.
# Sizes are pg_total_relation_size() (heap, indexes, TOAST, free space and visibility
# maps) after VACUUM, summed over partitions; the compact figure also counts the name
# tables it needs (metric_series, metric_layouts, metric_nodes).  Then the minute and
# hour rollups of the day are computed with dispatch._rollup() and their sizes shown.
#
# Knobs: NODES (10), HOURS (24), REAL_MINUTES (10), PORT.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/metrics_storage.sh
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
nodes=${NODES:-10}
hours=${HOURS:-24}
real_minutes=${REAL_MINUTES:-10}
dir=$(mktemp -d /tmp/pg_dispatch-bench.XXXXXX)
port=${PORT:-54337}
trap '$bin/pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
started=$(date +%s)

bash "$(dirname "$0")/../scripts/cluster.sh" "$dir" "$port" 1h
psql() { $bin/psql -X -q -At -h "$dir" -p $port -d postgres -v ON_ERROR_STOP=1 "$@"; }
# Raw samples must outlive the run (retention drops whole partitions that are older),
# and the monitor must not roll up the day while it is being filled: after the tick
# the reload causes, it sleeps for an hour.
psql -c "ALTER SYSTEM SET dispatch.metrics_raw_retention = '$((hours + 72))h'" \
     -c "ALTER SYSTEM SET dispatch.monitor_interval = '1h'" \
     -c "SELECT pg_reload_conf()" >/dev/null

# For comparison, the metric count of a real sample of this machine, when the agent is built.
agent=$(dirname "$0")/../agent/dispatch-agent
here='{}'
[ -x "$agent" ] && here=$("$agent" --print-metrics 2>/dev/null || echo '{}')

psql -v nodes="$nodes" -v hours="$hours" -v real_minutes="$real_minutes" -v here="$here" <<'SQL'
-- The day ends at the last UTC midnight, so that with HOURS=24 it fills one partition.
SELECT date_trunc('day', now(), 'UTC') AS t_end,
       date_trunc('day', now(), 'UTC') - :hours * interval '1 hour' AS t_start \gset
SELECT set_config('bench.t_start', :'t_start', false), set_config('bench.t_end', :'t_end', false),
       set_config('bench.window', :real_minutes || ' min', false) \g /dev/null
-- The monitor rolls up only what is newer than its state: keep it off the bench's data.
INSERT INTO dispatch.metric_rollup_state VALUES ('1m', now()), ('1h', now())
ON CONFLICT (resolution) DO UPDATE SET done_until = greatest(excluded.done_until,
                                                             dispatch.metric_rollup_state.done_until);

-- A sample of node n at instant t with the agent's keys and value types: percentages
-- and rates with one decimal, exact integer counters and byte counts.
CREATE FUNCTION pg_temp.sample(n int, t timestamptz) RETURNS jsonb LANGUAGE sql VOLATILE AS $$
SELECT jsonb_build_object(
    't', (extract(epoch FROM t) * 1000)::bigint,
    'interval_ms', 10000 + (random() * 6)::int,
    'cpu', jsonb_build_object('count', 32, 'user', round(u::numeric, 1),
                              'system', round(sy::numeric, 1), 'iowait', round(io::numeric, 1),
                              'steal', 0.0, 'idle', round((100 - u - sy - io)::numeric, 1)),
    'load', jsonb_build_array(round((u * 0.32)::numeric, 2), round((u * 0.3)::numeric, 2),
                              round((u * 0.29)::numeric, 2)),
    'mem', jsonb_build_object('total', 270355025920, 'available', 270355025920 - used,
                              'used', used, 'free', 230355025920 - used,
                              'buffers', 1073741824, 'cached', 38654705664,
                              'swap_total', 8589930496, 'swap_used', 0),
    'fs', (SELECT jsonb_agg(jsonb_build_object('mount', m, 'device', d, 'type', ty,
                   'size', sz, 'used', (sz * f)::bigint, 'avail', (sz * (0.95 - f))::bigint,
                   'inodes', sz / 16384, 'inodes_used', (sz / 16384 * f / 4)::bigint) ORDER BY o)
             FROM (VALUES (1, '/', '/dev/sda2', 'ext4', 480103981056, 0.31 + random() * 0.001),
                          (2, '/dev/shm', 'tmpfs', 'tmpfs', 135177512960, random() * 0.01),
                          (3, '/tmp', 'tmpfs', 'tmpfs', 34359738368, 0.05 + random() * 0.02),
                          (4, '/scratch', '/dev/nvme0n1', 'xfs', 3840755982336, 0.4 + random() * 0.1))
                  AS x(o, m, d, ty, sz, f)),
    'disk', (SELECT jsonb_agg(jsonb_build_object('name', d,
                   'reads', (up * 37)::bigint, 'writes', (up * 21)::bigint,
                   'read_bytes', (up * 37 * 65536)::bigint, 'write_bytes', (up * 21 * 131072)::bigint,
                   'busy_ms', (up * 120)::bigint, 'reads_s', round((random() * 500)::numeric, 1),
                   'writes_s', round((random() * 300)::numeric, 1),
                   'read_bytes_s', round((random() * 3e7)::numeric, 1),
                   'write_bytes_s', round((random() * 4e7)::numeric, 1),
                   'busy_pct', round((random() * 30)::numeric, 1)) ORDER BY d)
             FROM unnest(ARRAY['nvme0n1', 'sda']) d),
    'net', (SELECT jsonb_agg(jsonb_build_object('name', i,
                   'rx_bytes', (up * 91234)::bigint, 'rx_packets', (up * 80)::bigint,
                   'rx_errors', 0, 'rx_drops', (up / 86400)::bigint,
                   'tx_bytes', (up * 45678)::bigint, 'tx_packets', (up * 60)::bigint,
                   'tx_errors', 0, 'tx_drops', 0,
                   'rx_bytes_s', round((random() * 1e8)::numeric, 1),
                   'rx_packets_s', round((random() * 8e4)::numeric, 1),
                   'tx_bytes_s', round((random() * 5e7)::numeric, 1),
                   'tx_packets_s', round((random() * 6e4)::numeric, 1)) ORDER BY i)
             FROM unnest(ARRAY['eno1', 'ib0']) i),
    'temp', jsonb_build_array(
        jsonb_build_object('sensor', 'thermal_zone0', 'name', 'acpitz', 'celsius', 27.8),
        jsonb_build_object('sensor', 'thermal_zone1', 'name', 'x86_pkg_temp',
                           'celsius', 40 + round((u / 3)::numeric)),
        jsonb_build_object('sensor', 'hwmon1/temp1', 'name', 'coretemp', 'label', 'Package id 0',
                           'celsius', 41 + round((u / 3)::numeric)),
        jsonb_build_object('sensor', 'hwmon2/temp1', 'name', 'nvme', 'label', 'Composite',
                           'celsius', 38.85)),
    'procs', 600 + (random() * 80)::int,
    'top_cpu', (SELECT jsonb_agg(jsonb_build_object('pid', 4000 + p, 'ppid', 3999,
                   'command', 'job' || p, 'cpu', round((u * 0.3 / p)::numeric, 1), 'mem', 1.2,
                   'rss', 3221225472 / p)) FROM generate_series(1, 5) p),
    'top_rss', (SELECT jsonb_agg(jsonb_build_object('pid', 4000 + p, 'ppid', 3999,
                   'command', 'job' || p, 'cpu', round((u * 0.3 / p)::numeric, 1), 'mem', 1.2,
                   'rss', 3221225472 / p)) FROM generate_series(1, 5) p),
    'modules', 187)
  || CASE WHEN n % 4 = 0 THEN jsonb_build_object('gpu',
        (SELECT jsonb_agg(jsonb_build_object('index', g, 'util', (random() * 100)::int,
                   'mem_used', (random() * 80e9)::bigint, 'mem_total', 85899345920,
                   'celsius', 35 + (random() * 40)::int) ORDER BY g)
           FROM generate_series(0, 3) g)) ELSE '{}' END
  || jsonb_build_object('problems', '[]'::jsonb)
  FROM (SELECT extract(epoch FROM t) - 1790000000 + n * 3600 AS up,
               least(94, greatest(0, 55 + 40 * sin(extract(epoch FROM t) / 3600 + n)
                                     + random() * 10 - 5)) AS u,
               random() * 4 AS sy, random() * 2 AS io,
               (120e9 + 60e9 * sin(extract(epoch FROM t) / 7200 + n) + random() * 1e9)::bigint
                   AS used) x
$$;

SELECT setseed(0.5) \g /dev/null
SELECT dispatch.agent_register('node' || n, '{}') FROM generate_series(1, :nodes) n \g /dev/null
-- Each node samples at its own phase within the 10 s.
CREATE TEMP TABLE batches AS
SELECT n, (SELECT jsonb_agg(pg_temp.sample(n, t) ORDER BY t)
             FROM generate_series(:'t_start'::timestamptz + (n * 997 % 10000) * interval '1 ms',
                                  :'t_start'::timestamptz + :real_minutes * interval '1 min'
                                      - interval '1 ms', interval '10 s') t) AS samples
  FROM generate_series(1, :nodes) n;

SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
-- One call, and one transaction, per node, as an agent sends its spool.
\o /dev/null
SELECT format('SELECT dispatch.agent_metrics(%L, samples) FROM batches WHERE n = %s', 'node' || n, n)
  FROM batches ORDER BY n \gexec
\o
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS ingest_s \gset
SELECT count(*) AS real_samples FROM dispatch.metric_samples \gset
-- Versions that redo the rollup of minutes that got samples after they were rolled up
-- have just marked the bench's minutes: unmark them, the bench rolls the day up itself.
DO $$
BEGIN
    IF to_regclass('dispatch.metric_rollup_redo') IS NOT NULL THEN
        DELETE FROM dispatch.metric_rollup_redo;
    END IF;
END
$$;

-- The rest of the window: copies of the real rows, shifted by whole REAL_MINUTES,
-- inserted in time order.
SELECT dispatch._metric_partition('metric_samples', d)
  FROM generate_series(:'t_start'::timestamptz, :'t_end'::timestamptz - interval '1 s',
                       interval '1 day') d \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
DO $$
DECLARE
    w interval := current_setting('bench.window')::interval;
    t_end timestamptz := current_setting('bench.t_end')::timestamptz;
    k int := 1;
BEGIN
    LOOP
        INSERT INTO dispatch.metric_samples
        SELECT s.node_id, s.at + k * w, s.layout_id, s.vals
          FROM dispatch.metric_samples s
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

-- Baselines: the same values, one row per metric, in time order, index in place.
CREATE TABLE plain_ids (node_id int NOT NULL, metric_id int NOT NULL,
                        at timestamptz NOT NULL, value double precision NOT NULL);
CREATE INDEX ON plain_ids (node_id, metric_id, at);
CREATE TABLE plain_names (node text NOT NULL, at timestamptz NOT NULL,
                          metric text NOT NULL, value double precision NOT NULL);
CREATE INDEX ON plain_names (node, metric, at);
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
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT pg_temp.fill_by_hour($q$
    INSERT INTO plain_ids
    SELECT s.node_id, l.series[u.i], s.at, u.v
      FROM dispatch.metric_samples s JOIN dispatch.metric_layouts l USING (layout_id),
           unnest(s.vals) WITH ORDINALITY u(v, i)
     WHERE s.at >= $1 AND s.at < $2
     ORDER BY s.at, s.node_id, u.i$q$);
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS plain_ids_s \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT pg_temp.fill_by_hour($q$
    INSERT INTO plain_names
    SELECT m.node, p.at, s.name, p.value
      FROM plain_ids p JOIN dispatch.metric_nodes m USING (node_id)
           JOIN dispatch.metric_series s ON s.series_id = p.metric_id
     WHERE p.at >= $1 AND p.at < $2
     ORDER BY p.at, p.node_id, s.name$q$);
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS plain_names_s \gset
VACUUM ANALYZE plain_ids;
VACUUM ANALYZE plain_names;

-- Sizes: [total, heap + TOAST + maps, indexes] of a table's leaves.
CREATE FUNCTION pg_temp.size(tbl regclass) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT ARRAY[sum(pg_total_relation_size(relid)), sum(pg_table_size(relid)),
                 sum(pg_indexes_size(relid))]::bigint[]
      FROM (SELECT relid FROM pg_partition_tree(tbl) WHERE isleaf
            UNION SELECT tbl WHERE (SELECT relkind FROM pg_class WHERE oid = tbl) = 'r') x
$$;
SELECT count(*) AS samples, avg(array_length(vals, 1)) AS per_sample,
       min(array_length(vals, 1)) AS per_min, max(array_length(vals, 1)) AS per_max
  FROM dispatch.metric_samples \gset
SELECT pg_temp.size('dispatch.metric_samples') AS compact,
       pg_total_relation_size('dispatch.metric_series') + pg_total_relation_size('dispatch.metric_layouts')
           + pg_total_relation_size('dispatch.metric_nodes') AS names,
       pg_temp.size('plain_ids') AS ids, pg_temp.size('plain_names') AS named,
       (SELECT count(*) FROM plain_ids) AS plain_rows \gset

SELECT format('samples: %s (%s nodes, %s h at 10 s), metrics per sample: %s (%s to %s)',
              :samples, :nodes, :hours, round(:per_sample, 1), :per_min, :per_max)
UNION ALL
SELECT format('(a sample of this machine from dispatch-agent --print-metrics has %s metrics)', count(*))
  FROM dispatch._sample_metrics(:'here'::jsonb) HAVING count(*) > 0;
SELECT format('ingest: %s samples through dispatch.agent_metrics() in %s s (%s samples/s); '
              '%s copied into place in %s s',
              :real_samples, round(:ingest_s::numeric, 1), round(:real_samples / :ingest_s::numeric),
              :samples - :real_samples, round(:copy_s::numeric, 1));
SELECT format('%s %s MB = %s bytes per sample (heap %s, indexes %s%s)',
              rpad(label, 34), round(total / 1e6, 1), round(total::numeric / :samples, 1),
              round(heap::numeric / :samples, 1), round(idx::numeric / :samples, 1),
              CASE WHEN nm > 0 THEN ', name tables ' || round(nm::numeric / :samples, 1) END)
  FROM (VALUES ('dispatch.metric_samples:', (:'compact'::bigint[])[1] + :names,
                (:'compact'::bigint[])[2], (:'compact'::bigint[])[3], :names),
               ('plain_ids (' || :plain_rows || ' rows):', (:'ids'::bigint[])[1],
                (:'ids'::bigint[])[2], (:'ids'::bigint[])[3], 0),
               ('plain_names (same rows):', (:'named'::bigint[])[1],
                (:'named'::bigint[])[2], (:'named'::bigint[])[3], 0)) x(label, total, heap, idx, nm);
SELECT format('baseline load time: plain_ids %s s, plain_names %s s',
              round(:plain_ids_s::numeric, 1), round(:plain_names_s::numeric, 1));
SELECT format('ratio (plain_ids / metric_samples): %s',
              round((:'ids'::bigint[])[1]::numeric / ((:'compact'::bigint[])[1] + :names), 1));
SELECT format('ratio (plain_names / metric_samples): %s',
              round((:'named'::bigint[])[1]::numeric / ((:'compact'::bigint[])[1] + :names), 1));

SELECT format('extrapolated to 100 nodes x 24 h (864000 samples, linearly): metric_samples %s MB, plain_ids %s MB, plain_names %s MB',
              round(864000 * c / 1e6), round(864000 * i / 1e6), round(864000 * n / 1e6))
  FROM (SELECT ((:'compact'::bigint[])[1] + :names)::numeric / :samples AS c,
               (:'ids'::bigint[])[1]::numeric / :samples AS i,
               (:'named'::bigint[])[1]::numeric / :samples AS n) x
 WHERE :samples <> 864000;

-- Rollups of the window, as the monitor computes them (the tables hold nothing else).
DROP TABLE plain_ids, plain_names;
TRUNCATE dispatch.metric_rollups_1m, dispatch.metric_rollups_1h;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT dispatch._rollup('metric_samples', 'metric_rollups_1m', 'minute', :'t_start', :'t_end') \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS m_s \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT dispatch._rollup('metric_rollups_1m', 'metric_rollups_1h', 'hour', :'t_start', :'t_end') \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS h_s \gset
VACUUM ANALYZE dispatch.metric_rollups_1m;
VACUUM ANALYZE dispatch.metric_rollups_1h;
SELECT (pg_temp.size('dispatch.metric_rollups_1m'))[1] AS m_bytes,
       (SELECT count(*) FROM dispatch.metric_rollups_1m) AS m_rows,
       (pg_temp.size('dispatch.metric_rollups_1h'))[1] AS h_bytes,
       (SELECT count(*) FROM dispatch.metric_rollups_1h) AS h_rows \gset
SELECT format('minute rollups: %s rows, %s MB = %s bytes per node-minute, %s%% of the raw samples (%s s)',
              :m_rows, round(:m_bytes / 1e6, 1), round(:m_bytes::numeric / :m_rows),
              round(100.0 * :m_bytes / (:'compact'::bigint[])[1], 1), round(:m_s::numeric, 1));
SELECT format('hour rollups:   %s rows, %s MB = %s bytes per node-hour, %s%% of the raw samples (%s s)',
              :h_rows, round(:h_bytes / 1e6, 2), round(:h_bytes::numeric / :h_rows),
              round(100.0 * :h_bytes / (:'compact'::bigint[])[1], 1), round(:h_s::numeric, 1));
-- What one node costs at the default retentions (partitions are dropped whole, so
-- this is a lower bound by up to one partition per table).
SELECT format('per node at the default retentions (raw 2 d, minute 30 d, hour 400 d): '
              'raw %s MB + minute %s MB + hour %s MB = %s MB',
              round(r, 1), round(m, 1), round(h, 1), round(r + m + h, 1))
  FROM (SELECT 2 * d * (:'compact'::bigint[])[1] AS r, 30 * d * :m_bytes AS m,
               400 * d * :h_bytes AS h
          FROM (SELECT 24.0 / :hours / :nodes / 1e6 AS d) x) y;
SQL
echo "bench took $(( $(date +%s) - started )) s"
