------------------------------------------------------------------------------
-- Metrics: compact storage of node samples, packing, rollups, retention
------------------------------------------------------------------------------
--
-- A sample is one row per node and interval: the values of all its metrics, as
-- double precision, in the order of a layout (an array of series ids shared by
-- every sample with the same metric names, found by the SHA-256 of the names).
-- Recent samples are plain rows in metric_recent, partitioned by UTC hour, with a
-- default partition for the stragglers of hours that have none.  Once an hour has
-- closed, the monitor packs each node's samples of it into one compressed row of
-- metric_packs (src/core/mpack.c: delta-of-delta instants, decimals as scaled
-- integers, other doubles XOR'd; bit-exact) and drops the hour's partition.
-- Readers see both through dispatch._samples_in() (the metric_samples view) or,
-- for one metric, dispatch._unpack_metric().  Minute and hour rollups (count, sum,
-- min, max per element) are kept longer, packed the same way once their hour (for
-- minutes) or day (for hours) has closed, and read through dispatch._rollups_in().
-- Agents create no partition, so concurrent agents never wait on each other's DDL:
-- the monitor creates them ahead.
--
-- Ingestion is set-based: agent_metrics() checks the whole batch, flattens each
-- sample in C (dispatch._sample_flat), creates unknown series and layouts in one
-- global order (names, then digests) so that agents registering new nodes at once
-- cannot deadlock, and stores the batch with one INSERT ... ON CONFLICT DO NOTHING
-- on (node_id, at): a replayed sample is stored once.  A replay of an hour already
-- packed is checked against the packs of that node.

CREATE TABLE dispatch.metric_series (
    series_id       int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
);
COMMENT ON TABLE dispatch.metric_series IS
    'Metric names (cpu.user, fs./.used_pct, plugin.queue{q="a"}...), numbered once';

CREATE TABLE dispatch.metric_layouts (
    layout_id       int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series          int[] NOT NULL UNIQUE,
    digest          bytea NOT NULL UNIQUE
);
COMMENT ON TABLE dispatch.metric_layouts IS
    'The metric order of samples: element i of a sample''s values is series[i]; digest is '
    'the SHA-256 of the names, each followed by a NUL byte';

CREATE TABLE dispatch.metric_nodes (
    node_id         int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node            text NOT NULL UNIQUE,
    last_sample_at  timestamptz,
    top             jsonb,
    problems        jsonb,
    latest_layout   int,
    latest_vals     double precision[]
);
COMMENT ON TABLE dispatch.metric_nodes IS
    'Nodes that sent metrics, with their latest sample (layout and values), top processes '
    'and collection problems';

CREATE TABLE dispatch.metric_recent (
    node_id         int NOT NULL,
    at              timestamptz NOT NULL,
    layout_id       int NOT NULL,
    vals            double precision[] NOT NULL
) PARTITION BY RANGE (at);
CREATE UNIQUE INDEX metric_recent_node_at ON dispatch.metric_recent (node_id, at);
CREATE TABLE dispatch.metric_recent_default PARTITION OF dispatch.metric_recent DEFAULT;
COMMENT ON TABLE dispatch.metric_recent IS
    'Samples not packed yet, one row per node and interval, partitioned by UTC hour';
COMMENT ON TABLE dispatch.metric_recent_default IS
    'Samples of hours that have no partition of their own (late replays, a monitor that was down)';

CREATE TABLE dispatch.metric_packs (
    node_id         int NOT NULL,
    t0              timestamptz NOT NULL,
    t1              timestamptz NOT NULL,
    n               int NOT NULL,
    layouts         int[] NOT NULL,
    data            bytea NOT NULL
) PARTITION BY RANGE (t0);
ALTER TABLE dispatch.metric_packs ALTER COLUMN data SET STORAGE EXTERNAL;	-- packed already
COMMENT ON TABLE dispatch.metric_packs IS
    'Packed samples: n samples of a node from t0 to t1 (at most one UTC hour, at most 4096), '
    'with the layouts they use; partitioned by day';

CREATE TABLE dispatch.metric_rollups_1m (
    node_id         int NOT NULL,
    at              timestamptz NOT NULL,
    layout_id       int NOT NULL,
    n               int NOT NULL,
    sum             double precision[] NOT NULL,
    min             double precision[] NOT NULL,
    max             double precision[] NOT NULL
) PARTITION BY RANGE (at);
CREATE INDEX metric_rollups_1m_node_at ON dispatch.metric_rollups_1m (node_id, at);
CREATE TABLE dispatch.metric_rollups_1m_default PARTITION OF dispatch.metric_rollups_1m DEFAULT;
COMMENT ON TABLE dispatch.metric_rollups_1m IS
    'Minute rollups not packed yet: n samples of a layout, the sum, min and max of each element; '
    'partitioned by UTC hour';
COMMENT ON TABLE dispatch.metric_rollups_1m_default IS
    'Minute rollups of hours that have no partition of their own (redone after a late sample)';

CREATE TABLE dispatch.metric_rollups_1h (LIKE dispatch.metric_rollups_1m INCLUDING ALL)
    PARTITION BY RANGE (at);
CREATE TABLE dispatch.metric_rollups_1h_default PARTITION OF dispatch.metric_rollups_1h DEFAULT;
COMMENT ON TABLE dispatch.metric_rollups_1h IS
    'Hour rollups (of the minute rollups) not packed yet, partitioned by UTC day';
COMMENT ON TABLE dispatch.metric_rollups_1h_default IS
    'Hour rollups of days that have no partition of their own (redone after a late sample)';

CREATE TABLE dispatch.metric_rollup_packs_1m (LIKE dispatch.metric_packs INCLUDING ALL)
    PARTITION BY RANGE (t0);
COMMENT ON TABLE dispatch.metric_rollup_packs_1m IS
    'Packed minute rollups: the n rollup rows of a node from t0 to t1 (one UTC hour), with the '
    'layouts they use; partitioned by day';

CREATE TABLE dispatch.metric_rollup_packs_1h (LIKE dispatch.metric_packs INCLUDING ALL)
    PARTITION BY RANGE (t0);
COMMENT ON TABLE dispatch.metric_rollup_packs_1h IS
    'Packed hour rollups: the n rollup rows of a node from t0 to t1 (one UTC day), with the '
    'layouts they use; partitioned by month';

CREATE TABLE dispatch.metric_rollup_state (
    resolution      text PRIMARY KEY CHECK (resolution IN ('1m', '1h')),
    done_until      timestamptz NOT NULL
);
COMMENT ON TABLE dispatch.metric_rollup_state IS
    'How far each rollup has been computed; agent_metrics() shares the 1m row, the monitor '
    'locks it while it rolls up and packs';

CREATE TABLE dispatch.metric_rollup_redo (
    at              timestamptz PRIMARY KEY
);
COMMENT ON TABLE dispatch.metric_rollup_redo IS
    'Minutes that received samples after they were rolled up (a replayed agent queue): rolled up again';

CREATE TYPE dispatch._metric_row AS (o int, at timestamptz, names text[], vals double precision[],
                                     digest bytea, long_name boolean);
COMMENT ON TYPE dispatch._metric_row IS
    'A flattened sample of an agent_metrics() batch: its position, instant, sorted metric names, '
    'values, the digest of the names and whether a name is too long';

CREATE FUNCTION dispatch._metric_unit(tbl text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN tbl IN ('metric_recent', 'metric_rollups_1m') THEN 'hour'
                WHEN tbl = 'metric_rollup_packs_1h' THEN 'month' ELSE 'day' END
$$;
COMMENT ON FUNCTION dispatch._metric_unit(text) IS
    'The span of one partition of metric table tbl: hour, day or month (for a table of plain '
    'rows, also the span one pack of its rows covers)';

CREATE FUNCTION dispatch._metric_packs_of(tbl text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE tbl WHEN 'metric_recent' THEN 'metric_packs'
                    ELSE replace(tbl, 'metric_rollups_', 'metric_rollup_packs_') END
$$;
COMMENT ON FUNCTION dispatch._metric_packs_of(text) IS
    'The table that holds the packs of the plain rows of metric table tbl';

CREATE FUNCTION dispatch._metric_suffix(unit text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE unit WHEN 'hour' THEN 'YYYYMMDDHH24' WHEN 'month' THEN 'YYYYMM' ELSE 'YYYYMMDD' END
$$;
COMMENT ON FUNCTION dispatch._metric_suffix(text) IS
    'The to_char() pattern of the UTC start that ends the names of partitions spanning unit';

CREATE FUNCTION dispatch._metric_partition(tbl text, at timestamptz) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unit text := dispatch._metric_unit(tbl);
    lo timestamp := date_trunc(unit, at AT TIME ZONE 'UTC');	-- partitions follow UTC
    part text := format('%s_%s', tbl, to_char(lo, dispatch._metric_suffix(unit)));
BEGIN
    IF to_regclass('dispatch.' || part) IS NULL THEN
        EXECUTE format('CREATE TABLE IF NOT EXISTS dispatch.%I PARTITION OF dispatch.%I
                        FOR VALUES FROM (%L) TO (%L)', part, tbl, lo AT TIME ZONE 'UTC',
                       (lo + ('1 ' || unit)::interval) AT TIME ZONE 'UTC');
        IF tbl LIKE '%packs%' THEN		-- the plain tables' indexes are inherited
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON dispatch.%I (node_id, t0)',
                           part || '_node_at', part);
        END IF;
        EXECUTE format('COMMENT ON TABLE dispatch.%I IS %L', part,
                       format('%s from %s', tbl, lo));
    END IF;
    RETURN part;
END
$$;
COMMENT ON FUNCTION dispatch._metric_partition(text, timestamptz) IS
    'The partition of table tbl holding instant at (hours for recent samples and minute '
    'rollups, days for packs and hour rollups, months for packed hour rollups), created when '
    'missing; returns its name';

CREATE FUNCTION dispatch._sample_flat(sample jsonb, max_name int, OUT names text[],
                                      OUT vals double precision[], OUT digest bytea,
                                      OUT long_name boolean)
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', '_sample_flat';
COMMENT ON FUNCTION dispatch._sample_flat(jsonb, int) IS
    'The metrics of one agent sample, sorted by name: object keys and array elements join the '
    'name with "." (an array element is named by its mount, sensor, dev, iface, name or index), '
    'load.1, load.5, load.15, plugins as name{labels}; the SHA-256 of the names; whether a name '
    'is longer than max_name bytes';

CREATE FUNCTION dispatch._pack_add(internal, timestamptz, int, double precision[]) RETURNS internal
    LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', '_pack_add';
COMMENT ON FUNCTION dispatch._pack_add(internal, timestamptz, int, double precision[]) IS
    'Step of dispatch._pack(): appends one sample';
CREATE FUNCTION dispatch._pack_final(internal) RETURNS bytea
    LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', '_pack_final';
COMMENT ON FUNCTION dispatch._pack_final(internal) IS 'End of dispatch._pack(): the pack';
CREATE AGGREGATE dispatch._pack(timestamptz, int, double precision[]) (
    SFUNC = dispatch._pack_add, STYPE = internal, FINALFUNC = dispatch._pack_final);
COMMENT ON AGGREGATE dispatch._pack(timestamptz, int, double precision[]) IS
    'Packs samples (at, layout_id, vals), given in time order, into one compressed bytea';

CREATE FUNCTION dispatch._unpack(pack bytea)
RETURNS TABLE (at timestamptz, layout_id int, vals double precision[])
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', '_unpack';
COMMENT ON FUNCTION dispatch._unpack(bytea) IS 'The samples of a pack, exactly as they were packed';

CREATE FUNCTION dispatch._unpack_metric(pack bytea, layouts int[], positions int[])
RETURNS TABLE (at timestamptz, value double precision)
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', '_unpack_metric';
COMMENT ON FUNCTION dispatch._unpack_metric(bytea, int[], int[]) IS
    'One metric of the samples of a pack: element positions[i] of each sample whose layout '
    'is layouts[i]';

CREATE FUNCTION dispatch._samples_in(t0 timestamptz, t1 timestamptz)
RETURNS TABLE (node_id int, at timestamptz, layout_id int, vals double precision[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.node_id, r.at, r.layout_id, r.vals FROM dispatch.metric_recent r
     WHERE r.at >= _samples_in.t0 AND r.at < _samples_in.t1
    UNION ALL
    SELECT p.node_id, u.at, u.layout_id, u.vals
      FROM dispatch.metric_packs p, dispatch._unpack(p.data) u
     WHERE p.t0 < _samples_in.t1 AND p.t1 >= _samples_in.t0
       AND u.at >= _samples_in.t0 AND u.at < _samples_in.t1
$$;
COMMENT ON FUNCTION dispatch._samples_in(timestamptz, timestamptz) IS
    'Every sample of [t0, t1), plain or packed';

CREATE FUNCTION dispatch._pack_rollup_add(internal, timestamptz, int, int, double precision[],
                                          double precision[], double precision[]) RETURNS internal
    LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', '_pack_rollup_add';
COMMENT ON FUNCTION dispatch._pack_rollup_add(internal, timestamptz, int, int, double precision[],
                                              double precision[], double precision[]) IS
    'Step of dispatch._pack_rollup(): appends one rollup row';
CREATE AGGREGATE dispatch._pack_rollup(timestamptz, int, int, double precision[], double precision[],
                                       double precision[]) (
    SFUNC = dispatch._pack_rollup_add, STYPE = internal, FINALFUNC = dispatch._pack_final);
COMMENT ON AGGREGATE dispatch._pack_rollup(timestamptz, int, int, double precision[], double precision[],
                                           double precision[]) IS
    'Packs rollup rows (at, layout_id, n, sum, min, max), given in time order, into one compressed '
    'bytea: the count and every statistic of every element is a column of its own';

CREATE FUNCTION dispatch._unpack_rollup(pack bytea)
RETURNS TABLE (at timestamptz, layout_id int, n int, sum double precision[],
               min double precision[], max double precision[])
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', '_unpack_rollup';
COMMENT ON FUNCTION dispatch._unpack_rollup(bytea) IS
    'The rollup rows of a pack, exactly as they were packed';

CREATE FUNCTION dispatch._unpack_rollup_metric(pack bytea, layouts int[], positions int[])
RETURNS TABLE (at timestamptz, avg double precision, min double precision, max double precision)
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', '_unpack_rollup_metric';
COMMENT ON FUNCTION dispatch._unpack_rollup_metric(bytea, int[], int[]) IS
    'One metric of the rollup rows of a pack: element positions[i] of each row whose layout is '
    'layouts[i], its avg being sum / n';

-- Rows of one minute (or hour) with different layouts are told apart in a pack by
-- microseconds added to their instant (rollups fall on whole minutes), which readers
-- truncate away.
CREATE FUNCTION dispatch._rollups_in(res text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (node_id int, at timestamptz, layout_id int, n int, sum double precision[],
               min double precision[], max double precision[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.node_id, r.at, r.layout_id, r.n, r.sum, r.min, r.max FROM dispatch.metric_rollups_1m r
     WHERE res = '1m' AND r.at >= _rollups_in.t0 AND r.at < _rollups_in.t1
    UNION ALL
    SELECT r.node_id, r.at, r.layout_id, r.n, r.sum, r.min, r.max FROM dispatch.metric_rollups_1h r
     WHERE res = '1h' AND r.at >= _rollups_in.t0 AND r.at < _rollups_in.t1
    UNION ALL
    SELECT p.node_id, date_trunc('second', u.at), u.layout_id, u.n, u.sum, u.min, u.max
      FROM dispatch.metric_rollup_packs_1m p, dispatch._unpack_rollup(p.data) u
     WHERE res = '1m' AND p.t0 < _rollups_in.t1 AND p.t1 >= _rollups_in.t0
       AND date_trunc('second', u.at) >= _rollups_in.t0 AND date_trunc('second', u.at) < _rollups_in.t1
    UNION ALL
    SELECT p.node_id, date_trunc('second', u.at), u.layout_id, u.n, u.sum, u.min, u.max
      FROM dispatch.metric_rollup_packs_1h p, dispatch._unpack_rollup(p.data) u
     WHERE res = '1h' AND p.t0 < _rollups_in.t1 AND p.t1 >= _rollups_in.t0
       AND date_trunc('second', u.at) >= _rollups_in.t0 AND date_trunc('second', u.at) < _rollups_in.t1
$$;
COMMENT ON FUNCTION dispatch._rollups_in(text, timestamptz, timestamptz) IS
    'Every rollup row of resolution res (1m or 1h) in [t0, t1), plain or packed';

CREATE VIEW dispatch.metric_rollups AS
    SELECT '1m'::text AS resolution, * FROM dispatch._rollups_in('1m', '-infinity', 'infinity')
    UNION ALL
    SELECT '1h'::text, * FROM dispatch._rollups_in('1h', '-infinity', 'infinity');
COMMENT ON VIEW dispatch.metric_rollups IS
    'Every rollup row, plain or packed: avg of element i is sum[i] / n (unpacks everything: '
    'use dispatch.metric_history() for one metric)';

CREATE VIEW dispatch.metric_samples AS
    SELECT * FROM dispatch._samples_in('-infinity', 'infinity');
COMMENT ON VIEW dispatch.metric_samples IS
    'Every sample, plain or packed: one row per node and interval (unpacks everything: '
    'use dispatch.metric_history() for one metric)';

CREATE FUNCTION dispatch.agent_metrics(node text, samples jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    id int;
    batch dispatch._metric_row[];
    stored int;
    rolled_up timestamptz;
    packed_to timestamptz;
    packed timestamptz[];			-- instants of the batch already packed
    latest_at timestamptz;
    oldest timestamptz := now() - current_setting('dispatch.metrics_raw_retention')::interval;
BEGIN
    PERFORM dispatch._json_typed('array', samples, '', 'samples');
    PERFORM dispatch._check_count(jsonb_array_length(samples), 'dispatch.metrics_max_batch',
                                  'the top level', 'the batch', 'samples');
    -- Every sample is checked before any is stored (38_agent_input.sql): a bad one
    -- refuses the batch with SQLSTATE class 22, and the agent drops it alone.  One
    -- older than the raw retention is skipped: its hour is packed and about to go.
    -- (materialized: each sample is checked once, not once per use of its time)
    WITH x AS MATERIALIZED (
        SELECT e.o::int AS o, e.v, dispatch._check_sample(e.v, format('[%s]', e.o - 1)) AS at
          FROM jsonb_array_elements(samples) WITH ORDINALITY e(v, o))
    SELECT array_agg(ROW(x.o, x.at, f.names, f.vals, f.digest, f.long_name)::dispatch._metric_row
                     ORDER BY x.at, x.o)
      INTO batch
      FROM x, dispatch._sample_flat(x.v, dispatch._agent_limit('metric name')::int) f
     WHERE x.at >= oldest AND cardinality(f.names) > 0;
    PERFORM dispatch._check_sample_metrics(b.names, format('[%s]', b.o - 1))
       FROM (SELECT * FROM unnest(batch) u
              WHERE cardinality(u.names) > current_setting('dispatch.metrics_max_per_sample')::int
                 OR u.long_name ORDER BY u.o) b;
    IF batch IS NULL THEN
        RETURN 0;
    END IF;
    -- The share lock makes the monitor's rollup and packing wait for these samples,
    -- and lets a sample that comes after its minute was rolled up see that it must
    -- be redone.
    SELECT done_until INTO rolled_up FROM dispatch.metric_rollup_state
     WHERE resolution = '1m' FOR SHARE;
    INSERT INTO dispatch.metric_nodes (node) VALUES (n.node)
    ON CONFLICT ON CONSTRAINT metric_nodes_node_key DO NOTHING;
    SELECT node_id INTO id FROM dispatch.metric_nodes m WHERE m.node = n.node;
    -- New names and layouts, in one order for every agent: series by name, then
    -- layouts by digest, so that agents waiting on each other's inserts queue up
    -- instead of deadlocking.
    IF EXISTS (SELECT FROM unnest(batch) b
                WHERE NOT EXISTS (SELECT FROM dispatch.metric_layouts l WHERE l.digest = b.digest)) THEN
        INSERT INTO dispatch.metric_series (name)
        SELECT d.nm FROM (SELECT DISTINCT nm FROM unnest(batch) b, unnest(b.names) nm
                           WHERE NOT EXISTS (SELECT FROM dispatch.metric_layouts l
                                              WHERE l.digest = b.digest)) d
         ORDER BY d.nm COLLATE "C"
        ON CONFLICT DO NOTHING;
        INSERT INTO dispatch.metric_layouts (series, digest)
        SELECT ARRAY(SELECT s.series_id FROM unnest(b.names) WITH ORDINALITY u(nm, k)
                       JOIN dispatch.metric_series s ON s.name = u.nm ORDER BY u.k), b.digest
          FROM (SELECT DISTINCT ON (u.digest) u.digest, u.names FROM unnest(batch) u
                 ORDER BY u.digest) b
         WHERE NOT EXISTS (SELECT FROM dispatch.metric_layouts l WHERE l.digest = b.digest)
         ORDER BY b.digest
        ON CONFLICT DO NOTHING;
    END IF;
    -- A sample of an hour already packed (a late replay) is looked for in the packs,
    -- each pack the batch reaches into decoded once.
    SELECT max(p.t1) INTO packed_to FROM dispatch.metric_packs p WHERE p.node_id = id;
    IF packed_to IS NOT NULL AND EXISTS (SELECT FROM unnest(batch) b WHERE b.at <= packed_to) THEN
        SELECT array_agg(u.at) INTO packed
          FROM dispatch.metric_packs p, dispatch._unpack(p.data) u
         WHERE p.node_id = id
           AND EXISTS (SELECT FROM unnest(batch) b WHERE b.at BETWEEN p.t0 AND p.t1)
           AND u.at IN (SELECT b.at FROM unnest(batch) b);
    END IF;
    WITH ins AS (
        INSERT INTO dispatch.metric_recent (node_id, at, layout_id, vals)
        SELECT id, b.at, l.layout_id, b.vals
          FROM unnest(batch) b JOIN dispatch.metric_layouts l ON l.digest = b.digest
         WHERE b.at <> ALL (coalesce(packed, '{}'))
         ORDER BY b.at
        ON CONFLICT (node_id, at) DO NOTHING
        RETURNING at),
    redo AS (
        INSERT INTO dispatch.metric_rollup_redo
        SELECT DISTINCT date_trunc('minute', at) FROM ins WHERE at < rolled_up
        ON CONFLICT DO NOTHING)
    SELECT count(*), max(at) INTO stored, latest_at FROM ins;
    -- One row version per batch, not per sample.
    UPDATE dispatch.metric_nodes m
       SET last_sample_at = latest_at,
           top = jsonb_build_object('cpu', s.e -> 'top_cpu', 'rss', s.e -> 'top_rss'),
           problems = s.e -> 'problems',
           latest_layout = s.layout_id, latest_vals = s.vals
      FROM (SELECT samples -> (b.o - 1) AS e, l.layout_id, b.vals
              FROM unnest(batch) b JOIN dispatch.metric_layouts l ON l.digest = b.digest
             WHERE b.at = latest_at LIMIT 1) s
     WHERE m.node_id = id AND latest_at IS NOT NULL
       AND (m.last_sample_at IS NULL OR latest_at >= m.last_sample_at);
    -- The next alert evaluation looks at this node (85_alerts.sql); with no rule, a
    -- new rule's first pass covers every node anyway.
    IF FOUND AND EXISTS (SELECT FROM dispatch.alert_rules) THEN
        INSERT INTO dispatch.alert_dirty VALUES (n.node) ON CONFLICT DO NOTHING;
    END IF;
    RETURN stored;
END
$$;
COMMENT ON FUNCTION dispatch.agent_metrics(text, jsonb) IS
    'Agent: store a batch of metric samples (a replayed sample is stored once, one older '
    'than the raw retention not at all; a batch with a sample outside the limits of '
    '38_agent_input.sql is refused whole); returns how many were new';

CREATE VIEW dispatch.metric_latest AS
    SELECT m.node, s.name AS metric, v.value, m.last_sample_at AS at
      FROM dispatch.metric_nodes m
      JOIN dispatch.metric_layouts l ON l.layout_id = m.latest_layout
      CROSS JOIN LATERAL unnest(l.series, m.latest_vals) AS v(series_id, value)
      JOIN dispatch.metric_series s USING (series_id);
COMMENT ON VIEW dispatch.metric_latest IS 'The latest value of every metric of every node';

CREATE VIEW dispatch.node_overview AS
    SELECT n.node, n.state,
           round((l.m ->> 'cpu.user')::numeric + (l.m ->> 'cpu.system')::numeric
                 + coalesce((l.m ->> 'cpu.iowait')::numeric, 0)
                 + coalesce((l.m ->> 'cpu.steal')::numeric, 0), 1) AS cpu_pct,
           round(100 * (l.m ->> 'mem.used')::numeric / nullif((l.m ->> 'mem.total')::numeric, 0), 1)
               AS mem_pct,
           round((SELECT max(100 * u.value::numeric / nullif((l.m ->> (left(u.key, -4) || 'size'))::numeric, 0))
                    FROM jsonb_each_text(l.m) u WHERE u.key LIKE 'fs.%.used'), 1) AS disk_pct,
           round((l.m ->> 'load.1')::numeric, 2) AS load1,
           round((SELECT max(value::numeric) FROM jsonb_each_text(l.m)
                   WHERE key LIKE 'temp.%'), 1) AS temp_max,
           (SELECT count(*) FROM dispatch.jobs j
             WHERE j.node = n.node AND j.state IN ('assigned', 'running')) AS running_jobs,
           l.at AS sampled_at
      FROM dispatch.nodes n
      LEFT JOIN LATERAL (SELECT jsonb_object_agg(x.metric, x.value) AS m, max(x.at) AS at
                           FROM dispatch.metric_latest x WHERE x.node = n.node) l ON true;
COMMENT ON VIEW dispatch.node_overview IS
    'One row per node: state, cpu, memory, fullest disk, load, hottest sensor, running jobs';

-- Values of metric on node between t0 and t1: samples (plain or packed) while they
-- are kept, else minute rollups, else hour rollups (plain or packed; source says which).
CREATE FUNCTION dispatch.metric_history(node text, metric text, t0 timestamptz,
                                        t1 timestamptz DEFAULT now())
RETURNS TABLE (at timestamptz, avg double precision, min double precision,
               max double precision, source text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id int := (SELECT node_id FROM dispatch.metric_nodes m WHERE m.node = metric_history.node);
    sid int := (SELECT series_id FROM dispatch.metric_series s WHERE s.name = metric);
    lay int[];
    pos int[];
    res text;
BEGIN
    SELECT array_agg(l.layout_id), array_agg(array_position(l.series, sid)) INTO lay, pos
      FROM dispatch.metric_layouts l WHERE sid = ANY (l.series);
    IF t0 >= now() - current_setting('dispatch.metrics_raw_retention')::interval THEN
        RETURN QUERY
        SELECT x.at, x.v, x.v, x.v, 'raw'::text
          FROM (SELECT r.at, r.vals[array_position(l.series, sid)] AS v
                  FROM dispatch.metric_recent r JOIN dispatch.metric_layouts l USING (layout_id)
                 WHERE r.node_id = id AND r.at BETWEEN metric_history.t0 AND metric_history.t1
                   AND sid = ANY (l.series)
                UNION ALL
                SELECT u.at, u.value
                  FROM dispatch.metric_packs p, dispatch._unpack_metric(p.data, lay, pos) u
                 WHERE p.node_id = id AND p.t0 <= metric_history.t1 AND p.t1 >= metric_history.t0
                   AND p.layouts && lay AND u.at BETWEEN metric_history.t0 AND metric_history.t1) x
         ORDER BY x.at;
        RETURN;
    END IF;
    res := CASE WHEN t0 >= now() - current_setting('dispatch.metrics_minute_retention')::interval
                THEN '1m' ELSE '1h' END;
    RETURN QUERY EXECUTE format($q$
        SELECT x.at, x.avg, x.min, x.max, %L::text
          FROM (SELECT r.at, r.sum[p] / r.n AS avg, r.min[p] AS min, r.max[p] AS max
                  FROM dispatch.%I r JOIN dispatch.metric_layouts l USING (layout_id),
                       LATERAL array_position(l.series, $1) p
                 WHERE r.node_id = $2 AND r.at BETWEEN $3 AND $4 AND p IS NOT NULL
                UNION ALL
                SELECT date_trunc('second', u.at), u.avg, u.min, u.max
                  FROM dispatch.%I k, dispatch._unpack_rollup_metric(k.data, $5, $6) u
                 WHERE k.node_id = $2 AND k.t0 <= $4 AND k.t1 >= $3 AND k.layouts && $5
                   AND date_trunc('second', u.at) BETWEEN $3 AND $4) x
         ORDER BY x.at$q$, res, 'metric_rollups_' || res, 'metric_rollup_packs_' || res)
    USING sid, id, t0, t1, lay, pos;
END
$$;
COMMENT ON FUNCTION dispatch.metric_history(text, text, timestamptz, timestamptz) IS
    'A metric of a node over time, from samples or the rollups that cover the interval (plain or packed)';

CREATE FUNCTION dispatch._rollup(src text, dst text, unit text, since timestamptz,
                                 upto timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    packs text := dispatch._metric_packs_of(dst);
    span interval := ('1 ' || dispatch._metric_unit(dst))::interval;
    first timestamptz;
    last timestamptz;
BEGIN
    -- A span of dst already packed is redone whole: its packs go with the rows.
    EXECUTE format('SELECT min(t0), max(t1) FROM dispatch.%I WHERE t1 >= $1 AND t0 < $2', packs)
       INTO first, last USING since, upto;
    since := least(since, date_trunc(dispatch._metric_unit(dst), first, 'UTC'));
    upto := greatest(upto, date_trunc(dispatch._metric_unit(dst), last, 'UTC') + span);
    EXECUTE format('DELETE FROM dispatch.%I WHERE t1 >= $1 AND t0 < $2', packs) USING since, upto;
    EXECUTE format('DELETE FROM dispatch.%I WHERE at >= $1 AND at < $2', dst) USING since, upto;
    -- avg is sum / n, the division avg() makes: kept as the sum, so that packs code
    -- it as a decimal and hours add minutes up exactly as computed.
    EXECUTE format($q$
        INSERT INTO dispatch.%I (node_id, at, layout_id, n, sum, min, max)
        SELECT node_id, t, layout_id, max(n), array_agg(a ORDER BY i), array_agg(lo ORDER BY i),
               array_agg(hi ORDER BY i)
          FROM (SELECT node_id, date_trunc(%L, at, 'UTC') AS t, layout_id, i,
                       %s AS n, sum(va) AS a, min(vl) AS lo, max(vh) AS hi
                  FROM %s s, %s
                 GROUP BY 1, 2, 3, 4) g
         GROUP BY node_id, t, layout_id$q$,
        dst, unit,
        CASE WHEN src = 'metric_samples' THEN 'count(*)' ELSE 'sum(s.n)' END,
        CASE WHEN src = 'metric_samples' THEN 'dispatch._samples_in($1, $2)'
             ELSE 'dispatch._rollups_in(''1m'', $1, $2)' END,
        CASE WHEN src = 'metric_samples'
             THEN 'unnest(s.vals, s.vals, s.vals) WITH ORDINALITY u(va, vl, vh, i)'
             ELSE 'unnest(s.sum, s.min, s.max) WITH ORDINALITY u(va, vl, vh, i)' END)
    USING since, upto;
END
$$;
COMMENT ON FUNCTION dispatch._rollup(text, text, text, timestamptz, timestamptz) IS
    'Rolls samples, plain and packed (src metric_samples), or minute rollups (src '
    'metric_rollups_1m, plain and packed) of [since, upto) up into table dst (n, sum, min, max '
    'per element), replacing what dst held for that span, packed or not (a packed span is '
    'redone whole)';

CREATE FUNCTION dispatch._metric_partition_end(relname text, tbl text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (CASE dispatch._metric_unit(tbl)
                WHEN 'hour' THEN to_date(left(right(relname, 10), 8), 'YYYYMMDD')
                                 + (right(relname, 2)::int + 1) * interval '1 hour'
                WHEN 'month' THEN to_date(right(relname, 6) || '01', 'YYYYMMDD') + interval '1 month'
                ELSE to_date(right(relname, 8), 'YYYYMMDD') + interval '1 day'
            END) AT TIME ZONE 'UTC'
$$;
COMMENT ON FUNCTION dispatch._metric_partition_end(text, text) IS
    'Where the partition relname of metric table tbl ends (its name says where it starts)';

CREATE FUNCTION dispatch._metric_default_holds(tbl text, lo timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT FROM dispatch.%I WHERE at >= $1 AND at < $2)',
                   tbl || '_default')
       INTO found USING lo, lo + ('1 ' || dispatch._metric_unit(tbl))::interval;
    RETURN found;
END
$$;
COMMENT ON FUNCTION dispatch._metric_default_holds(text, timestamptz) IS
    'Whether the default partition of plain metric table tbl holds rows of the partition that '
    'would start at lo (which then cannot be created)';

CREATE FUNCTION dispatch._pack_closed(tbl text, upto timestamptz) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    packs text := dispatch._metric_packs_of(tbl);
    unit text := dispatch._metric_unit(tbl);
    packed int;
    p record;
BEGIN
    EXECUTE format('SELECT dispatch._metric_partition(%L, d) FROM (SELECT DISTINCT
                        date_trunc(%L, r.at, ''UTC'') AS d FROM dispatch.%I r WHERE r.at < $1) x',
                   packs, dispatch._metric_unit(packs), tbl) USING upto;
    -- Rows that share an instant (a layout change in a rollup's minute) get apart by
    -- microseconds: row_number() - rank() counts the ties before a row.
    EXECUTE format($q$
        INSERT INTO dispatch.%I (node_id, t0, t1, n, layouts, data)
        SELECT x.node_id, min(x.t), max(x.t), count(*), array_agg(DISTINCT x.layout_id), %s
          FROM (SELECT r.*, r.at + (row_number() OVER w - rank() OVER w) * interval '1 microsecond' AS t,
                       date_trunc(%L, r.at, 'UTC') AS h,
                       (row_number() OVER w - 1) / 4096 AS chunk
                  FROM dispatch.%I r WHERE r.at < $1
                WINDOW w AS (PARTITION BY r.node_id, date_trunc(%L, r.at, 'UTC') ORDER BY r.at)) x
         GROUP BY x.node_id, x.h, x.chunk$q$,
        packs,
        CASE WHEN tbl = 'metric_recent' THEN 'dispatch._pack(x.t, x.layout_id, x.vals ORDER BY x.t)'
             ELSE 'dispatch._pack_rollup(x.t, x.layout_id, x.n, x.sum, x.min, x.max ORDER BY x.t)' END,
        unit, tbl, unit)
    USING upto;
    GET DIAGNOSTICS packed = ROW_COUNT;
    FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = ('dispatch.' || tbl)::regclass
                AND c.relname <> tbl || '_default'
                AND dispatch._metric_partition_end(c.relname, tbl) <= upto LOOP
        EXECUTE format('DROP TABLE dispatch.%I', p.relname);
    END LOOP;
    EXECUTE format('DELETE FROM dispatch.%I WHERE at < $1', tbl || '_default') USING upto;
    RETURN packed;
END
$$;
COMMENT ON FUNCTION dispatch._pack_closed(text, timestamptz) IS
    'Monitor: packs the rows of plain metric table tbl (metric_recent, metric_rollups_1m or '
    'metric_rollups_1h) before upto, one pack per node and partition span (at most 4096 rows '
    'each), and drops the plain rows; returns how many packs it wrote';

CREATE FUNCTION dispatch._metrics_pack(upto timestamptz) RETURNS int
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._pack_closed('metric_recent', upto)
           + dispatch._pack_closed('metric_rollups_1m', upto)
           + dispatch._pack_closed('metric_rollups_1h', date_trunc('day', upto, 'UTC'))
$$;
COMMENT ON FUNCTION dispatch._metrics_pack(timestamptz) IS
    'Monitor: packs samples and minute rollups before upto (one pack per node and UTC hour) and '
    'hour rollups of the days before it (one pack per node and UTC day); returns how many packs '
    'it wrote';

CREATE FUNCTION dispatch._metrics_maintain() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job record;
    done timestamptz;
    upto timestamptz;
    redo timestamptz;
    p record;
BEGIN
    -- First the lock agent_metrics() shares: calls in flight finish, new ones wait,
    -- so no agent holds a lock the partition DDL below needs.
    PERFORM FROM dispatch.metric_rollup_state WHERE resolution = '1m' FOR UPDATE;
    -- The partition of now and the next one of every table; for a table of plain
    -- rows, not when its default partition holds rows of that span.
    PERFORM dispatch._metric_partition(t.tbl, x.lo)
       FROM unnest(ARRAY['metric_recent', 'metric_packs', 'metric_rollups_1m', 'metric_rollup_packs_1m',
                         'metric_rollups_1h', 'metric_rollup_packs_1h']) t(tbl),
            LATERAL (SELECT date_trunc(dispatch._metric_unit(t.tbl),
                                       now() + k * ('1 ' || dispatch._metric_unit(t.tbl))::interval,
                                       'UTC') AS lo
                       FROM unnest(ARRAY[0, 1]) k) x
      WHERE t.tbl LIKE '%packs%' OR NOT dispatch._metric_default_holds(t.tbl, x.lo);

    FOR job IN SELECT * FROM (VALUES ('1m', 'metric_samples', 'metric_recent', 'metric_packs',
                                      'metric_rollups_1m', 'minute'),
                                     ('1h', 'metric_rollups_1m', 'metric_rollups_1m',
                                      'metric_rollup_packs_1m', 'metric_rollups_1h', 'hour'))
                             AS x(resolution, src, src_plain, src_packs, dst, unit) LOOP
        SELECT done_until INTO done FROM dispatch.metric_rollup_state
         WHERE resolution = job.resolution FOR UPDATE;
        IF job.resolution = '1m' THEN	-- the lock waited for agent_metrics() in flight
            WITH d AS (DELETE FROM dispatch.metric_rollup_redo RETURNING at)
            SELECT min(at) INTO redo FROM d;
        END IF;
        upto := date_trunc(job.unit, now(), 'UTC');
        IF done IS NULL THEN
            EXECUTE format('SELECT date_trunc(%L, least((SELECT min(at) FROM dispatch.%I),
                                                        (SELECT min(t0) FROM dispatch.%I)), ''UTC'')',
                           job.unit, job.src_plain, job.src_packs)
               INTO done;
            done := coalesce(done, upto);
            INSERT INTO dispatch.metric_rollup_state VALUES (job.resolution, done);
        END IF;
        done := least(done, date_trunc(job.unit, redo, 'UTC'));
        IF upto > done THEN
            PERFORM dispatch._rollup(job.src, job.dst, job.unit, done, upto);
            UPDATE dispatch.metric_rollup_state SET done_until = upto
             WHERE resolution = job.resolution;
        END IF;
    END LOOP;

    PERFORM dispatch._metrics_pack(date_trunc('hour', now(), 'UTC'));

    -- Retention: a partition of packs goes when all of it is older than its table's setting.
    FOR p IN SELECT c.relname, parent.relname AS tbl,
                    dispatch._metric_partition_end(c.relname, parent.relname) AS ends
               FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class parent ON parent.oid = i.inhparent
              WHERE parent.relnamespace = 'dispatch'::regnamespace
                AND parent.relname IN ('metric_packs', 'metric_rollup_packs_1m', 'metric_rollup_packs_1h')
    LOOP
        IF p.ends <= now() - current_setting(CASE p.tbl
                WHEN 'metric_packs' THEN 'dispatch.metrics_raw_retention'
                WHEN 'metric_rollup_packs_1m' THEN 'dispatch.metrics_minute_retention'
                ELSE 'dispatch.metrics_hour_retention' END)::interval THEN
            EXECUTE format('DROP TABLE dispatch.%I', p.relname);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._metrics_maintain() IS
    'Monitor: partitions ahead, rollups of complete minutes and hours, closed hours (and days, '
    'for hour rollups) packed, expired partitions dropped';

CREATE FUNCTION dispatch._monitor_tick() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM dispatch._evaluate_alerts();
    PERFORM dispatch._metrics_maintain();
    PERFORM dispatch._record_presence();
END
$$;
COMMENT ON FUNCTION dispatch._monitor_tick() IS
    'Monitor: one round of alert evaluation, metric upkeep and presence';
