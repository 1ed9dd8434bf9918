#!/usr/bin/env bash
# e2e_bench.sh: jobs per second end to end, and idle submit -> start latency.
#
# A throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh; PGBIN picks another installation) and two real dispatch-agent
# processes (this tree's agent/dispatch-agent, --job-user dispatch-job, CPUS cpu
# instances each) run no-op jobs (`true`).  In one run it measures:
#   - the fork+exec ceiling: `sh -c true` started one after the other for 2 s (the
#     work every job needs at least once), the baseline of the throughput ratios;
#   - idle latency: LAT joblists of one job submitted one at a time into an empty
#     queue; the job prints `date +%s.%N` when its process starts, against
#     clock_timestamp() just before the submitting COMMIT (p50, p99, max);
#   - N1 and N2 one-job joblists submitted in one transaction (a N1-deep and a N2-deep
#     queue): jobs/s from the commit to the last job's end, the ratio N2 / N1;
#   - LISTS joblists of PER jobs (one stage each) and one joblist of BIG jobs (with
#     its submit time).
# Each throughput phase is cut after CAP seconds (jobs/s is then counted over what
# ended by then, and the line says so), so a slow build cannot hold the machine.
# Sizes: N1=1000 N2=20000 LISTS=1000 PER=20 BIG=20000 LAT=200 CAP=300 CPUS=16 by
# default; `e2e_bench.sh quick` runs N1=100 N2=2000 LISTS=100 BIG=2000 LAT=50 (a few
# minutes; the 2,000-deep queue is what takes them).  PROFILE=1 loads
# pg_stat_statements (track = all) and prints where the server's time went.  As root it
# copies the agent, gives the copy the capabilities --job-user needs and runs itself
# as BENCH_USER (postgres); PostgreSQL refuses root.
set -euo pipefail
self=$(realpath "$0")
here=$(dirname "$self")
if [ "${1:-}" = quick ]; then
    : "${N1:=100}" "${N2:=2000}" "${LISTS:=100}" "${PER:=20}" "${BIG:=2000}" "${LAT:=50}"
fi
export N1=${N1:-1000} N2=${N2:-20000} LISTS=${LISTS:-1000} PER=${PER:-20} BIG=${BIG:-20000}
export LAT=${LAT:-200} CAP=${CAP:-300} CPUS=${CPUS:-16} PORT=${PORT:-54341}
export PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

. "$here/agent_user.sh"

dir=$(mktemp -d /tmp/pg_dispatch-e2e.XXXXXX)
chmod 0711 "$dir"
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT

PGBIN=$PGBIN bash "$here/../scripts/cluster.sh" "$dir" "$PORT" 1h
psql() { "$PGBIN/psql" -X -q -At -h "$dir" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 "$@"; }
if [ -n "${PROFILE:-}" ]; then
    cat >>"$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_dispatch, pg_stat_statements'
pg_stat_statements.track = all
CONF
    "$PGBIN/pg_ctl" -D "$dir/data" -w restart >/dev/null
    psql -c 'CREATE EXTENSION pg_stat_statements'
fi
psql -c 'CREATE ROLE agent_bench LOGIN IN ROLE dispatch_agent'
for n in e2e1 e2e2; do
    mkdir "$dir/work-$n"
    "$agent" --dbname "host=$dir port=$PORT dbname=postgres user=agent_bench" --node "$n" \
        --workdir "$dir/work-$n" --job-user dispatch-job --metrics-interval 0 \
        --resource "cpu=[0-$((CPUS - 1))]" >"$dir/agent-$n.log" 2>&1 &
    pids+=($!)
done
for _ in $(seq 100); do
    [ "$(psql -c "SELECT count(*) FROM dispatch.nodes WHERE state = 'online'")" = 2 ] && break
    sleep 0.1
done

# fork+exec ceiling: `sh -c true` one after the other for 2 s.
ceiling=$(perl -MTime::HiRes=time -e '
    my ($n, $t0) = (0, time);
    while (time - $t0 < 2) { system("sh", "-c", "true") == 0 or die; $n++ }
    printf "%.0f\n", $n / (time - $t0)')

# Submits the joblists that the SQL expression $1 builds (a set of specs) in one
# transaction, waits until every job ended (at most CAP s) and prints:
# jobs submit_s run_s jobs_done cut(0/1).
run_phase() {
    psql <<SQL
\\set QUIET on
SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset
BEGIN;
SELECT count(dispatch.submit_joblist(s)) AS lists FROM ($1) q(s) \\gset
COMMIT;
SELECT extract(epoch FROM clock_timestamp()) AS t1 \\gset
DO \$\$
BEGIN
    FOR i IN 1 .. $CAP * 5 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM dispatch.jobs
                               WHERE state IN ('pending', 'assigned', 'running'));
        PERFORM pg_sleep(0.2);
    END LOOP;
END
\$\$;
SELECT count(*) || ' ' || round((:t1 - :t0)::numeric, 3) || ' ' ||
       round(coalesce(extract(epoch FROM max(finished_at)) - :t1, 0)::numeric, 3) || ' ' ||
       count(*) FILTER (WHERE state = 'succeeded') || ' ' ||
       (count(*) FILTER (WHERE state IN ('pending', 'assigned', 'running')) > 0)::int
  FROM dispatch.jobs;
SQL
    empty_queue
}

# Cancels what is left, waits until no job runs and deletes every joblist (again until
# the delete succeeds).
empty_queue() {
    psql -c "SET client_min_messages = warning" -c "SELECT count(dispatch.cancel_joblist(joblist_id))
              FROM dispatch.joblists WHERE state IN ('queued', 'running')" >/dev/null
    for _ in $(seq 600); do
        [ "$(psql -c "SELECT count(*) FROM dispatch.jobs WHERE state IN ('assigned', 'running')")" = 0 ] &&
            psql -c "DELETE FROM dispatch.joblists" >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "e2e_bench.sh: could not empty the queue" >&2
    exit 1
}

# Runs one phase (its title, its set of specs) and prints its line; sets $rate.
phase() {
    local out
    out=$(run_phase "$2")
    report "$1" <<<"$out"
}

# Prints the line of phase $1 from run_phase's output: jobs/s, its ratio to the ceiling; sets $rate.
report() {
    local what=$1 jobs submit run done cut
    read -r jobs submit run done cut
    rate=$(awk -v d="$done" -v r="$run" 'BEGIN { printf "%.1f", (r > 0 ? d / r : 0) }')
    printf '%-34s %6d jobs, submit %7.3f s, run %8.3f s: %7.1f jobs/s, %.3f of fork+exec%s\n' \
        "$what" "$jobs" "$submit" "$run" "$rate" \
        "$(awk -v a="$rate" -v b="$ceiling" 'BEGIN { print a / b }')" \
        "$([ "$cut" = 1 ] && echo " (cut at ${CAP} s: $done ended)")"
}

one_job="jsonb_build_object('name', 'b' || i, 'stages', jsonb_build_array(jsonb_build_object(
           'jobs', jsonb_build_array(jsonb_build_object('name', 'j', 'command', 'true')))))"
jobs_of() {
    echo "jsonb_build_object('name', 'b' || i, 'stages', jsonb_build_array(jsonb_build_object(
           'jobs', (SELECT jsonb_agg(jsonb_build_object('name', 'j' || k, 'command', 'true'))
                      FROM generate_series(1, $1) k))))"
}

# Idle latency: one job at a time into an empty queue.
latency=$(psql <<SQL
CREATE TEMP TABLE lat (job bigint, committed double precision);
DO \$\$
DECLARE
    jl bigint;
    t double precision;
BEGIN
    FOR i IN 1 .. $LAT LOOP
        jl := dispatch.submit_joblist(jsonb_build_object('name', 'lat', 'stages',
                jsonb_build_array(jsonb_build_object('jobs', jsonb_build_array(
                  jsonb_build_object('name', 'j', 'command', 'date +%s.%N'))))));
        t := extract(epoch FROM clock_timestamp());
        INSERT INTO lat SELECT job_id, t FROM dispatch.jobs WHERE joblist_id = jl;
        COMMIT;
        FOR w IN 1 .. 3000 LOOP
            EXIT WHEN (SELECT j.state = 'succeeded' FROM dispatch.jobs j
                         WHERE j.joblist_id = jl);
            PERFORM pg_sleep(0.002);
        END LOOP;
    END LOOP;
END
\$\$;
WITH d AS (SELECT 1000 * (trim(dispatch.job_log(job))::double precision - committed) AS ms,
                  1000 * (extract(epoch FROM h.started_at) - committed) AS claim_ms
             FROM lat JOIN dispatch.job_history h ON h.job_id = lat.job)
SELECT count(*) || ' ' || round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)
       || ' ' || round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)
       || ' ' || round(max(ms)::numeric, 1)
       || ' ' || round(percentile_disc(0.5) WITHIN GROUP (ORDER BY claim_ms)::numeric, 1)
       || ' ' || round(percentile_disc(0.99) WITHIN GROUP (ORDER BY claim_ms)::numeric, 1)
       || ' ' || round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms - claim_ms)::numeric, 1)
       || ' ' || round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms - claim_ms)::numeric, 1)
  FROM d;
SQL
)
empty_queue

echo "e2e_bench: 2 agents x $CPUS cpus, no-op jobs; $(nproc) cores"
echo "fork+exec ceiling (sh -c true, sequential): $ceiling /s"
read -r n p50 p99 max c50 c99 s50 s99 <<<"$latency"
echo "idle latency commit -> process start ($n jobs): p50 $p50 ms, p99 $p99 ms, max $max ms"
echo "  of which commit -> claimed by agent_poll: p50 $c50 ms, p99 $c99 ms"
echo "  and claimed -> process start on the node: p50 $s50 ms, p99 $s99 ms"
phase "$N1 one-job joblists" "SELECT $one_job FROM generate_series(1, $N1) i"
rate1=$rate
phase "$N2 one-job joblists" "SELECT $one_job FROM generate_series(1, $N2) i"
rate2=$rate
phase "$LISTS joblists of $PER jobs" "SELECT $(jobs_of "$PER") FROM generate_series(1, $LISTS) i"
phase "1 joblist of $BIG jobs" "SELECT $(jobs_of "$BIG") FROM generate_series(1, 1) i"
awk -v a="$rate2" -v b="$rate1" -v n1="$N1" -v n2="$N2" \
    'BEGIN { printf "throughput ratio, %d-deep / %d-deep queue: %.3f\n", n2, n1, (b > 0 ? a / b : 0) }'
if [ -n "${PROFILE:-}" ]; then
    echo "where the server's time went (pg_stat_statements, top 12 by total ms; calls; ms per call),"
    echo "the benchmark's own waits (DO blocks, pg_sleep) left out:"
    psql -F ' | ' -c "SELECT round(total_exec_time::numeric) AS ms, calls,
                             round((total_exec_time / calls)::numeric, 3) AS ms_per_call,
                             regexp_replace(left(query, 90), '\s+', ' ', 'g')
                        FROM pg_stat_statements
                       WHERE query NOT LIKE 'DO %' AND query NOT LIKE '%pg_sleep%'
                       ORDER BY total_exec_time DESC LIMIT 12"
fi
