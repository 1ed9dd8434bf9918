-- metrics_sample.sql: the synthetic samples of the metrics benchmarks (metrics_storage.sh,
-- metrics_ingest.sh), shared so that both measure the same data.
--
-- bench_sample(n, t) is a sample of node n at instant t with the keys and value types
-- dispatch-agent sends (agent/README.md, "Metrics"): percentages and rates with one
-- decimal, exact integer counters and byte counts; cpu, load, memory, 4 filesystems,
-- 2 disks, 2 network interfaces, 4 temperature sensors, processes, modules, top
-- processes, and on every fourth node 4 GPUs (88 or 104 metrics).
CREATE FUNCTION public.bench_sample(n int, t timestamptz) RETURNS jsonb LANGUAGE sql VOLATILE AS $$
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
