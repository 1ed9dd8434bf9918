------------------------------------------------------------------------------
-- Metrics: compact storage of node samples, rollups, retention
------------------------------------------------------------------------------
--
-- Storage is designed for bytes per sample.  A sample is one row per node and
-- interval: the values of all its metrics in one real[] whose order is given by
-- a layout (an array of series ids, shared by every sample with the same metric
-- names), so a row carries ~4 bytes per value plus one row header.  Raw samples
-- are partitioned by day and expire by dropping whole partitions; minute and hour
-- rollups (avg, min, max per element) are kept longer, hour rollups partitioned by
-- month.  The monitor worker computes rollups and manages partitions.

CREATE TABLE dispatch.metric_series (
    series_id       int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
);
COMMENT ON TABLE dispatch.metric_series IS
    'Metric names (cpu.user, fs./.used_pct, plugin.queue{q="a"}...), numbered once';

CREATE TABLE dispatch.metric_layouts (
    layout_id       int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series          int[] NOT NULL UNIQUE
);
COMMENT ON TABLE dispatch.metric_layouts IS
    'The metric order of sample rows: element i of a row''s values is series[i]';

CREATE TABLE dispatch.metric_nodes (
    node_id         int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node            text NOT NULL UNIQUE,
    last_sample_at  timestamptz,
    top             jsonb,
    problems        jsonb
);
COMMENT ON TABLE dispatch.metric_nodes IS
    'Nodes that sent metrics, with their latest top processes and collection problems';

CREATE TABLE dispatch.metric_samples (
    node_id         int NOT NULL,
    at              timestamptz NOT NULL,
    layout_id       int NOT NULL,
    vals            real[] NOT NULL
) PARTITION BY RANGE (at);
COMMENT ON TABLE dispatch.metric_samples IS
    'Raw samples, one row per node and interval, partitioned by day';

CREATE TABLE dispatch.metric_rollups_1m (
    node_id         int NOT NULL,
    at              timestamptz NOT NULL,
    layout_id       int NOT NULL,
    avg             real[] NOT NULL,
    min             real[] NOT NULL,
    max             real[] NOT NULL
) PARTITION BY RANGE (at);
COMMENT ON TABLE dispatch.metric_rollups_1m IS 'Minute rollups of the samples, partitioned by day';

CREATE TABLE dispatch.metric_rollups_1h (LIKE dispatch.metric_rollups_1m INCLUDING ALL)
    PARTITION BY RANGE (at);
COMMENT ON TABLE dispatch.metric_rollups_1h IS 'Hour rollups of the minute rollups, partitioned by month';

CREATE TABLE dispatch.metric_rollup_state (
    resolution      text PRIMARY KEY CHECK (resolution IN ('1m', '1h')),
    done_until      timestamptz NOT NULL
);
COMMENT ON TABLE dispatch.metric_rollup_state IS 'How far each rollup has been computed';

CREATE TABLE dispatch.metric_rollup_redo (
    at              timestamptz PRIMARY KEY
);
COMMENT ON TABLE dispatch.metric_rollup_redo IS
    'Minutes that received samples after they were rolled up (a replayed agent queue): rolled up again';

CREATE FUNCTION dispatch._metric_partition(tbl text, at timestamptz) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unit text := CASE WHEN tbl = 'metric_rollups_1h' THEN 'month' ELSE 'day' END;
    lo timestamp := date_trunc(unit, at AT TIME ZONE 'UTC');	-- partitions follow UTC
    part text := format('%s_%s', tbl,
                        to_char(lo, CASE unit WHEN 'month' THEN 'YYYYMM' ELSE 'YYYYMMDD' END));
BEGIN
    IF to_regclass('dispatch.' || part) IS NULL THEN
        EXECUTE format('CREATE TABLE IF NOT EXISTS dispatch.%I PARTITION OF dispatch.%I
                        FOR VALUES FROM (%L) TO (%L)', part, tbl, lo AT TIME ZONE 'UTC',
                       (lo + ('1 ' || unit)::interval) AT TIME ZONE 'UTC');
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON dispatch.%I (node_id, at)',
                       part || '_node_at', part);
        EXECUTE format('COMMENT ON TABLE dispatch.%I IS %L', part,
                       format('%s from %s', tbl, lo));
    END IF;
    RETURN part;
END
$$;
COMMENT ON FUNCTION dispatch._metric_partition(text, timestamptz) IS
    'The partition of table tbl holding instant at (days for samples and minute rollups, '
    'months for hour rollups), created when missing; returns its name';

CREATE FUNCTION dispatch._series_id(name text) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id int;
BEGIN
    SELECT series_id INTO id FROM dispatch.metric_series s WHERE s.name = _series_id.name;
    IF id IS NULL THEN
        INSERT INTO dispatch.metric_series (name) VALUES (name)
        ON CONFLICT ON CONSTRAINT metric_series_name_key DO NOTHING RETURNING series_id INTO id;
        IF id IS NULL THEN
            SELECT series_id INTO id FROM dispatch.metric_series s WHERE s.name = _series_id.name;
        END IF;
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch._series_id(text) IS
    'The id of metric name, numbered on first sight';

CREATE FUNCTION dispatch._layout_id(series int[]) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id int;
BEGIN
    SELECT layout_id INTO id FROM dispatch.metric_layouts l WHERE l.series = _layout_id.series;
    IF id IS NULL THEN
        INSERT INTO dispatch.metric_layouts (series) VALUES (series)
        ON CONFLICT ON CONSTRAINT metric_layouts_series_key DO NOTHING RETURNING layout_id INTO id;
        IF id IS NULL THEN
            SELECT layout_id INTO id FROM dispatch.metric_layouts l
             WHERE l.series = _layout_id.series;
        END IF;
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch._layout_id(int[]) IS
    'The id of the layout with these series, created on first sight';

CREATE FUNCTION dispatch._store_sample(node_id int, at timestamptz, names text[], vals real[])
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    layout int := dispatch._layout_id(
        ARRAY(SELECT dispatch._series_id(n) FROM unnest(names) WITH ORDINALITY x(n, o) ORDER BY o));
BEGIN
    PERFORM dispatch._metric_partition('metric_samples', at);
    INSERT INTO dispatch.metric_samples VALUES (node_id, at, layout, vals);
END
$$;
COMMENT ON FUNCTION dispatch._store_sample(int, timestamptz, text[], real[]) IS
    'Stores one sample of node_id at instant at: metric names and values in the same order';

CREATE FUNCTION dispatch._flatten(prefix text, v jsonb)
RETURNS TABLE (name text, value real)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT prefix, (v #>> '{}')::real WHERE jsonb_typeof(v) = 'number'
    UNION ALL
    SELECT f.name, f.value
      FROM jsonb_each(CASE WHEN jsonb_typeof(v) = 'object' THEN v ELSE '{}' END) e,
           dispatch._flatten(concat_ws('.', prefix, e.key), e.value) f
    UNION ALL
    SELECT f.name, f.value
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(v) = 'array' THEN v ELSE '[]' END)
           WITH ORDINALITY a(e, o),
           dispatch._flatten(concat_ws('.', prefix,
               coalesce(a.e ->> 'mount', a.e ->> 'sensor', a.e ->> 'dev', a.e ->> 'iface',
                        a.e ->> 'name', a.e ->> 'index', (a.o - 1)::text)),
               CASE WHEN jsonb_typeof(a.e) = 'object'
                    THEN a.e - ARRAY['mount', 'sensor', 'dev', 'iface', 'name', 'index'] ELSE a.e END) f
$$;
COMMENT ON FUNCTION dispatch._flatten(text, jsonb) IS
    'The numeric leaves of v as (name, value): object keys and array elements join the '
    'name with "." (an array element is named by its mount, sensor, dev, iface, name or '
    'index: temperature sensors of one chip share a name but not a sensor id)';

CREATE FUNCTION dispatch._sample_metrics(sample jsonb)
RETURNS TABLE (name text, value real)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.name, f.value
      FROM jsonb_each(sample - ARRAY['t', 'load', 'plugins', 'top_cpu', 'top_rss', 'problems']) e,
           dispatch._flatten(e.key, e.value) f
    UNION ALL
    SELECT 'load.' || m, (sample -> 'load' ->> (o - 1)::int)::real
      FROM unnest(ARRAY['1', '5', '15']) WITH ORDINALITY x(m, o)
     WHERE jsonb_typeof(sample -> 'load' -> (o - 1)::int) = 'number'
    UNION ALL
    SELECT 'plugin.' || (p ->> 'name') ||
           coalesce((SELECT '{' || string_agg(format('%s="%s"', l.key, l.value), ',' ORDER BY l.key) || '}'
                       FROM jsonb_each_text(p -> 'labels') l), ''),
           (p ->> 'value')::real
      FROM jsonb_array_elements(coalesce(sample -> 'plugins', '[]')) p
     WHERE jsonb_typeof(p -> 'value') = 'number'
$$;
COMMENT ON FUNCTION dispatch._sample_metrics(jsonb) IS
    'The metrics of one agent sample: its numeric values, the load averages as load.1, '
    'load.5 and load.15, plugins as name{labels}';

CREATE FUNCTION dispatch.agent_metrics(node text, samples jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    id int;
    s record;
    sample_at timestamptz;
    names text[];
    vals real[];
    stored int := 0;
    rolled_up timestamptz;
    latest jsonb;
    latest_at timestamptz;
    oldest timestamptz := now() - current_setting('dispatch.metrics_raw_retention')::interval;
BEGIN
    PERFORM dispatch._json_typed('array', samples, '', 'samples');
    PERFORM dispatch._check_count(jsonb_array_length(samples), 'dispatch.metrics_max_batch',
                                  'the top level', 'the batch', 'samples');
    -- The share lock makes the monitor's rollup wait for these samples, and lets a
    -- sample that comes after its minute was rolled up see that it must be redone.
    SELECT done_until INTO rolled_up FROM dispatch.metric_rollup_state
     WHERE resolution = '1m' FOR SHARE;
    INSERT INTO dispatch.metric_nodes (node) VALUES (n.node)
    ON CONFLICT ON CONSTRAINT metric_nodes_node_key DO NOTHING;
    SELECT node_id INTO id FROM dispatch.metric_nodes m WHERE m.node = n.node;
    -- Every sample is checked before any is stored (38_agent_input.sql): a bad one
    -- refuses the batch with SQLSTATE class 22, and the agent drops it alone.
    FOR s IN SELECT x.e, format('[%s]', x.o - 1) AS path,
                    dispatch._check_sample(x.e, format('[%s]', x.o - 1)) AS at
               FROM jsonb_array_elements(samples) WITH ORDINALITY x(e, o) ORDER BY 3 LOOP
        sample_at := s.at;
        CONTINUE WHEN sample_at < oldest;	-- its partition is gone or about to go
        -- a sample already stored (a replay after a lost reply) is skipped
        CONTINUE WHEN EXISTS (SELECT FROM dispatch.metric_samples x
                               WHERE x.node_id = id AND x.at = sample_at);
        SELECT array_agg(m.name ORDER BY m.name), array_agg(m.value ORDER BY m.name)
          INTO names, vals FROM dispatch._sample_metrics(s.e) m;
        CONTINUE WHEN names IS NULL;
        PERFORM dispatch._check_sample_metrics(names, s.path);
        PERFORM dispatch._store_sample(id, sample_at, names, vals);
        IF sample_at < rolled_up THEN
            INSERT INTO dispatch.metric_rollup_redo VALUES (date_trunc('minute', sample_at))
            ON CONFLICT DO NOTHING;
        END IF;
        latest := s.e;			-- samples come in time order
        latest_at := sample_at;
        stored := stored + 1;
    END LOOP;
    -- One row version per batch, not per sample.
    UPDATE dispatch.metric_nodes m
       SET last_sample_at = latest_at,
           top = jsonb_build_object('cpu', latest -> 'top_cpu', 'rss', latest -> 'top_rss'),
           problems = latest -> 'problems'
     WHERE m.node_id = id AND latest_at IS NOT NULL
       AND (m.last_sample_at IS NULL OR latest_at >= m.last_sample_at);
    RETURN stored;
END
$$;
COMMENT ON FUNCTION dispatch.agent_metrics(text, jsonb) IS
    'Agent: store a batch of metric samples (a replayed sample is stored once, one older '
    'than the raw retention not at all; a batch with a sample outside the limits of '
    '38_agent_input.sql is refused whole); returns how many were new';

CREATE VIEW dispatch.metric_latest AS
    SELECT m.node, s.name AS metric, v.value::numeric::double precision AS value, x.at
      FROM dispatch.metric_nodes m
      CROSS JOIN LATERAL (SELECT * FROM dispatch.metric_samples x
                           WHERE x.node_id = m.node_id ORDER BY x.at DESC LIMIT 1) x
      JOIN dispatch.metric_layouts l USING (layout_id)
      CROSS JOIN LATERAL unnest(l.series, x.vals) AS v(series_id, value)
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

-- Values of metric on node between t0 and t1: raw samples while they are kept, else
-- minute rollups, else hour rollups (source says which).
CREATE FUNCTION dispatch.metric_history(node text, metric text, t0 timestamptz,
                                        t1 timestamptz DEFAULT now())
RETURNS TABLE (at timestamptz, avg double precision, min double precision,
               max double precision, source text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id int := (SELECT node_id FROM dispatch.metric_nodes m WHERE m.node = metric_history.node);
    sid int := (SELECT series_id FROM dispatch.metric_series s WHERE s.name = metric);
BEGIN
    IF t0 >= now() - current_setting('dispatch.metrics_raw_retention')::interval THEN
        RETURN QUERY
        SELECT x.at, y.v, y.v, y.v, 'raw'::text
          FROM dispatch.metric_samples x JOIN dispatch.metric_layouts l USING (layout_id),
               LATERAL (SELECT x.vals[array_position(l.series, sid)]::double precision) AS y(v)
         WHERE x.node_id = id AND x.at BETWEEN t0 AND t1 AND sid = ANY (l.series)
         ORDER BY x.at;
    ELSIF t0 >= now() - current_setting('dispatch.metrics_minute_retention')::interval THEN
        RETURN QUERY
        SELECT x.at, x.avg[p]::float8, x.min[p]::float8, x.max[p]::float8, '1m'::text
          FROM dispatch.metric_rollups_1m x JOIN dispatch.metric_layouts l USING (layout_id),
               LATERAL array_position(l.series, sid) p
         WHERE x.node_id = id AND x.at BETWEEN t0 AND t1 AND p IS NOT NULL ORDER BY x.at;
    ELSE
        RETURN QUERY
        SELECT x.at, x.avg[p]::float8, x.min[p]::float8, x.max[p]::float8, '1h'::text
          FROM dispatch.metric_rollups_1h x JOIN dispatch.metric_layouts l USING (layout_id),
               LATERAL array_position(l.series, sid) p
         WHERE x.node_id = id AND x.at BETWEEN t0 AND t1 AND p IS NOT NULL ORDER BY x.at;
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch.metric_history(text, text, timestamptz, timestamptz) IS
    'A metric of a node over time, from raw samples or the rollups that cover the interval';

CREATE FUNCTION dispatch._rollup(src text, dst text, unit text, since timestamptz,
                                 upto timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d timestamptz;
BEGIN
    FOR d IN SELECT generate_series(date_trunc(CASE WHEN dst = 'metric_rollups_1h' THEN 'month' ELSE 'day' END, since, 'UTC'),
                                    upto, CASE WHEN dst = 'metric_rollups_1h' THEN '1 month' ELSE '1 day' END::interval) LOOP
        PERFORM dispatch._metric_partition(dst, d);
    END LOOP;
    EXECUTE format('DELETE FROM dispatch.%I WHERE at >= $1 AND at < $2', dst) USING since, upto;
    EXECUTE format($q$
        INSERT INTO dispatch.%I (node_id, at, layout_id, avg, min, max)
        SELECT node_id, t, layout_id, array_agg(a ORDER BY i), array_agg(lo ORDER BY i),
               array_agg(hi ORDER BY i)
          FROM (SELECT node_id, date_trunc(%L, at) AS t, layout_id, i,
                       avg(va)::real AS a, min(vl) AS lo, max(vh) AS hi
                  FROM dispatch.%I s, %s
                 WHERE at >= $1 AND at < $2
                 GROUP BY 1, 2, 3, 4) g
         GROUP BY node_id, t, layout_id$q$,
        dst, unit, src,
        CASE WHEN src = 'metric_samples'
             THEN 'unnest(s.vals, s.vals, s.vals) WITH ORDINALITY u(va, vl, vh, i)'
             ELSE 'unnest(s.avg, s.min, s.max) WITH ORDINALITY u(va, vl, vh, i)' END)
    USING since, upto;
END
$$;
COMMENT ON FUNCTION dispatch._rollup(text, text, text, timestamptz, timestamptz) IS
    'Rolls samples (or minute rollups) of [since, upto) of table src up into table dst, '
    'replacing what dst held for that span';

CREATE FUNCTION dispatch._metrics_maintain() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job record;
    done timestamptz;
    upto timestamptz;
    redo timestamptz;
    p record;
BEGIN
    PERFORM dispatch._metric_partition(t, now() + d)
       FROM unnest(ARRAY['metric_samples', 'metric_rollups_1m']) t,
            unnest(ARRAY[interval '0', interval '1 day']) d;
    PERFORM dispatch._metric_partition('metric_rollups_1h', now() + d)
       FROM unnest(ARRAY[interval '0', interval '1 month']) d;

    FOR job IN SELECT * FROM (VALUES ('1m', 'metric_samples', 'metric_rollups_1m', 'minute'),
                                     ('1h', 'metric_rollups_1m', 'metric_rollups_1h', 'hour'))
                             AS x(resolution, src, dst, unit) LOOP
        SELECT done_until INTO done FROM dispatch.metric_rollup_state
         WHERE resolution = job.resolution FOR UPDATE;
        IF job.resolution = '1m' THEN	-- the lock waited for agent_metrics() in flight
            WITH d AS (DELETE FROM dispatch.metric_rollup_redo RETURNING at)
            SELECT min(at) INTO redo FROM d;
        END IF;
        upto := date_trunc(job.unit, now());
        IF done IS NULL THEN
            EXECUTE format('SELECT date_trunc(%L, min(at)) FROM dispatch.%I', job.unit, job.src)
               INTO done;
            done := coalesce(done, upto);
            INSERT INTO dispatch.metric_rollup_state VALUES (job.resolution, done);
        END IF;
        done := least(done, date_trunc(job.unit, redo));
        IF upto > done THEN
            PERFORM dispatch._rollup(job.src, job.dst, job.unit, done, upto);
            UPDATE dispatch.metric_rollup_state SET done_until = upto
             WHERE resolution = job.resolution;
        END IF;
    END LOOP;

    -- Retention: a partition goes when all of it is older than its table's setting.
    FOR p IN SELECT c.relname, parent.relname AS tbl,
                    CASE WHEN parent.relname = 'metric_rollups_1h'
                         THEN to_date(right(c.relname, 6) || '01', 'YYYYMMDD') + interval '1 month'
                         ELSE to_date(right(c.relname, 8), 'YYYYMMDD') + interval '1 day'
                    END AT TIME ZONE 'UTC' AS ends
               FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class parent ON parent.oid = i.inhparent
              WHERE parent.relnamespace = 'dispatch'::regnamespace
                AND parent.relname IN ('metric_samples', 'metric_rollups_1m', 'metric_rollups_1h') LOOP
        IF p.ends <= now() - current_setting(CASE p.tbl
                WHEN 'metric_samples' THEN 'dispatch.metrics_raw_retention'
                WHEN 'metric_rollups_1m' THEN 'dispatch.metrics_minute_retention'
                ELSE 'dispatch.metrics_hour_retention' END)::interval THEN
            EXECUTE format('DROP TABLE dispatch.%I', p.relname);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._metrics_maintain() IS
    'Monitor: rollups of complete minutes and hours, partitions ahead, expired partitions'
    ' dropped';

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
