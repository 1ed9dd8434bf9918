#!/usr/bin/env bash
# rebuild_bench.sh: change-to-rebuild-start latency (docs/artefacts.md).
#
# A throwaway PostgreSQL 15 with pg_dispatch (installed beforehand; PGBIN picks another
# installation) and one real dispatch-agent that watches a workspace (--watch, settle
# 20 ms) and builds it.  One rule copies src.txt to out.txt.  In one run it measures:
#   - the baseline: LAT one-job joblists submitted one at a time into an empty queue,
#     commit -> the job claimed by the agent (jobs.started_at);
#   - EDITS edits of src.txt, one after the other (each after the last rebuild ended):
#     the write -> the rebuild's job claimed by the agent, which adds the watcher's
#     settle time, the report, dispatch.rebuild_delay (DELAY ms, default the GUC's 500)
#     and the rebuild's planning and submit;
# and prints p50, p99 and max of both, and the ratio of the p50s.  Sizes: LAT=50
# EDITS=20.  As root it copies the agent, gives the copy the capabilities --job-user
# needs and runs itself as BENCH_USER (postgres); PostgreSQL refuses root.
set -euo pipefail
self=$(realpath "$0")
here=$(dirname "$self")
export LAT=${LAT:-50} EDITS=${EDITS:-20} DELAY=${DELAY:-500} PORT=${PORT:-54343}
export PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

. "$here/agent_user.sh"

dir=$(mktemp -d /tmp/pg_dispatch-rebuild.XXXXXX)
chmod 0711 "$dir"
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT

PGBIN=$PGBIN bash "$here/../scripts/cluster.sh" "$dir" "$PORT" 1h
psql() { "$PGBIN/psql" -X -q -At -h "$dir" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql -c "ALTER SYSTEM SET dispatch.rebuild_delay = '${DELAY}ms'" -c 'SELECT pg_reload_conf()' >/dev/null
mkdir "$dir/src" "$dir/work"
echo 0 >"$dir/src/src.txt"
psql <<'SQL' >/dev/null
CREATE ROLE agent_bench LOGIN IN ROLE dispatch_agent;
CREATE ROLE bench_owner IN ROLE dispatch_user;
SELECT dispatch.bind_node('w1', 'agent_bench');
SELECT dispatch.create_workspace('bench', 'bench_owner', 'w1');
SET ROLE bench_owner;
SELECT dispatch.create_rule('copy', '{"workspace": "bench", "inputs": ["src.txt"],
  "outputs": ["out.txt"], "job": {"command": "cp src.txt out.txt"}}');
SQL
"$agent" --dbname "host=$dir port=$PORT dbname=postgres user=agent_bench" --node w1 \
    --workdir "$dir/work" --job-user dispatch-job --metrics-interval 0 --resource 'cpu=[0-3]' \
    --watch "bench=$dir/src" >"$dir/agent.log" 2>&1 &
pid=$!

# Waits (at most 30 s) until the SQL condition $1 holds.
wait_sql() {
    for _ in $(seq 300); do
        [ "$(psql -c "SELECT ($1)::int")" = 1 ] && return 0
        sleep 0.1
    done
    echo "rebuild_bench.sh: timed out waiting for: $1" >&2
    exit 1
}
rebuilds="(SELECT count(*) FROM dispatch.joblists WHERE name = 'rebuild bench')"
quiet="NOT EXISTS (SELECT FROM dispatch.joblists WHERE state IN ('queued', 'running'))
       AND (SELECT rebuild IS NULL AND changed_at IS NULL FROM dispatch.workspaces)"
wait_sql "$rebuilds >= 1 AND $quiet"      # the first rebuild, of the initial file

# Baseline: submit -> claim of a one-job joblist in an empty queue, LAT times.
: >"$dir/base"
for _ in $(seq "$LAT"); do
    psql <<'SQL' >>"$dir/base"
\set QUIET on
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT dispatch.submit_joblist('{"name": "base", "jobs": [{"name": "j", "command": "true"}]}') AS jl \gset
DO $$ BEGIN
    FOR i IN 1 .. 3000 LOOP
        EXIT WHEN EXISTS (SELECT FROM dispatch.jobs WHERE joblist_id = (SELECT max(joblist_id) FROM dispatch.joblists)
                             AND started_at IS NOT NULL AND state NOT IN ('pending', 'assigned', 'running'));
        PERFORM pg_sleep(0.002);
    END LOOP;
END $$;
SELECT round(((extract(epoch FROM started_at) - :t0) * 1000)::numeric, 1) FROM dispatch.jobs WHERE joblist_id = :jl;
SQL
done

# Edits: the write -> the rebuild's job claimed, EDITS times.
: >"$dir/edits"
for i in $(seq "$EDITS"); do
    before=$(psql -c "SELECT $rebuilds")
    t0=$(date +%s.%N)
    echo "edit $i" >"$dir/src/src.txt"
    wait_sql "$rebuilds > $before AND $quiet"
    psql -c "SELECT round(((extract(epoch FROM j.started_at) - $t0) * 1000)::numeric, 1)
               FROM dispatch.jobs j JOIN dispatch.joblists l USING (joblist_id)
              WHERE l.name = 'rebuild bench' ORDER BY j.job_id DESC LIMIT 1" >>"$dir/edits"
done
[ "$(psql -c "SELECT convert_from(b.content, 'UTF8') FROM dispatch.artefacts a
               JOIN dispatch.blobs b ON b.sha256 = a.blob WHERE a.path = 'out.txt'")" = "edit $EDITS" ] ||
    { echo "rebuild_bench.sh: out.txt is not the last edit" >&2; exit 1; }

# p50 p99 max of the numbers in file $1.
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END {
    p50 = v[int((NR + 1) / 2)]; p99 = v[int(NR * 0.99 + 0.999)]; if (p99 == "") p99 = v[NR];
    printf "%s %s %s\n", p50, p99, v[NR] }'; }
read -r b50 b99 bmax < <(stats "$dir/base")
read -r e50 e99 emax < <(stats "$dir/edits")
echo "rebuild_bench: one agent watching and building, settle 20 ms, dispatch.rebuild_delay $DELAY ms; $(nproc) cores"
printf 'baseline: submit -> job claimed (%s one-job joblists): p50 %s ms, p99 %s ms, max %s ms\n' "$LAT" "$b50" "$b99" "$bmax"
printf 'edit -> rebuild job claimed (%s edits):                p50 %s ms, p99 %s ms, max %s ms\n' "$EDITS" "$e50" "$e99" "$emax"
awk -v e="$e50" -v b="$b50" -v d="$DELAY" 'BEGIN {
    printf "ratio of p50s, edit / baseline: %.1f; the edit p50 less rebuild_delay: %.1f ms\n", e / b, e - d }'
