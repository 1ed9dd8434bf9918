#!/usr/bin/env bash
# template_bench.sh: dispatch.render_template against chained replace() calls.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh) and renders a 10 MB template in which 1,000 distinct patterns
# (@P0@ .. @P999@) occur about 200,000 times.  The baseline, in the same run, is what
# a user would write without the renderer: one replace() per pattern, chained
# (a PL/pgSQL loop over the map), which scans the whole text once per pattern.  Both
# are checked to give the same text here (no pattern occurs in a replacement).  Then
# the renderer runs on the same text with 10 and 10,000 patterns, to show that its
# speed does not depend on the number of patterns (with 10,000 patterns the matches are
# the same as with 1,000; with 10 most occurrences do not match).  Renderer figures are
# the best of 3 runs; the baseline, two orders of magnitude slower, runs once.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/template_bench.sh
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
dir=$(mktemp -d /tmp/pg_dispatch-bench.XXXXXX)
port=${PORT:-54338}
trap '$bin/pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

bash "$(dirname "$0")/../scripts/cluster.sh" "$dir" "$port" 1h
"$bin/psql" -X -q -At -h "$dir" -p "$port" -d postgres -v ON_ERROR_STOP=1 <<'SQL'
CREATE TEMP TABLE input AS
SELECT string_agg(format('line %s host=@P%s@ port=@P%s@ and filler text that makes a line about 100 bytes, more or less', i,
                         (i * 7) % 1000, (i * 13) % 1000), E'\n') AS t
  FROM generate_series(1, 100000) i;
CREATE TEMP TABLE maps AS
SELECT n, (SELECT jsonb_object_agg('@P' || i || '@', 'value-' || i)
             FROM generate_series(0, n - 1) i) AS m
  FROM unnest(ARRAY[10, 1000, 10000]) n;

-- Best of runs runs of sql (a query over input and map m), in seconds.
CREATE FUNCTION pg_temp.best(sql text, m jsonb, runs int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    best float8;
    t0 timestamptz;
BEGIN
    FOR k IN 1 .. runs LOOP
        t0 := clock_timestamp();
        EXECUTE sql USING m;
        best := least(best, extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
    RETURN best;
END
$$;

-- The baseline: one replace() per pattern.
CREATE FUNCTION pg_temp.chained(t text, m jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    e record;
BEGIN
    FOR e IN SELECT * FROM jsonb_each_text(m) LOOP
        t := replace(t, e.key, e.value);
    END LOOP;
    RETURN t;
END
$$;

SELECT 'template: ' || round(octet_length(t) / 1e6, 2) || ' MB, ' ||
       (length(t) - length(replace(t, '@P', ''))) / 2 || ' pattern occurrences'
  FROM input;
SELECT 'same output: ' || (SELECT dispatch.render_template(t, m) = pg_temp.chained(t, m)
                             FROM input, maps WHERE n = 1000);
WITH r AS (
    SELECT n, pg_temp.best('SELECT length(dispatch.render_template(t, $1)) FROM input', m, 3) AS s
      FROM maps),
     c AS (
    SELECT pg_temp.best('SELECT length(pg_temp.chained(t, $1)) FROM input', m, 1) AS s
      FROM maps WHERE n = 1000),
     mb AS (SELECT octet_length(t) / 1e6 AS mb FROM input)
SELECT format('render_template, %s patterns: %s s, %s MB/s', n, round(r.s::numeric, 3),
              round((mb / r.s)::numeric, 1))
  FROM r, mb
UNION ALL
SELECT format('chained replace(), 1000 patterns: %s s, %s MB/s', round(c.s::numeric, 3),
              round((mb / c.s)::numeric, 1))
  FROM c, mb
UNION ALL
SELECT format('ratio (chained replace / render_template, 1000 patterns): %s',
              round((c.s / r.s)::numeric, 1))
  FROM c, r WHERE r.n = 1000
UNION ALL
SELECT format('pattern count effect (render time, 10,000 / 1,000 patterns, same matches): %s',
              round(((SELECT s FROM r WHERE n = 10000) / (SELECT s FROM r WHERE n = 1000))::numeric, 2));
SQL
