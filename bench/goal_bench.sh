#!/usr/bin/env bash
# goal_bench.sh: what goals firing every second cost each scheduling cycle.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh) and no nodes, then measures the scheduler's cycles for SECONDS
# seconds with no goal (the baseline) and again with GOALS goals on the schedule
# "1 seconds".  Each goal's first instance waits forever (there is no node), so every
# later fire is due, computed and skipped (overlap "skip"): each cycle works out the
# latest fire of every goal.  Prints the mean and the largest cycle time (from
# dispatch.scheduler_stats(), sampled every 100 ms) and the ratio of the means.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/goal_bench.sh
set -euo pipefail
goals=${GOALS:-20}
secs=${SECONDS_PER_RUN:-10}
bench_port=${PORT:-54342}
. "$(dirname "$0")/throwaway.sh"

# Wakes the scheduler every 100 ms for $secs seconds (so that a cycle runs whether or
# not a goal is due) and samples its counters; prints cycles, mean ms, max ms.
sample() {
    psql -c "CREATE TABLE IF NOT EXISTS s (run int, cycles bigint, ms double precision)" 2>/dev/null
    for _ in $(seq $((secs * 10))); do
        psql -c "SELECT dispatch.wake_scheduler()" \
             -c "INSERT INTO s SELECT $1, cycles, last_cycle_ms FROM dispatch.scheduler_stats()" >/dev/null
        sleep 0.1
    done
    psql -c "SELECT count(*) || ' ' || round(avg(ms)::numeric, 2) || ' ' || round(max(ms)::numeric, 2)
               FROM (SELECT DISTINCT cycles, ms FROM s WHERE run = $1) c"
}

read -r base_cycles base_mean base_max < <(sample 0)
psql -c "SELECT dispatch.create_goal('g' || i, '{\"schedule\": \"1 seconds\", \"command\": \"true\"}')
           FROM generate_series(1, $goals) i" >/dev/null
sleep 2                                 # every goal has fired once and now waits
read -r full_cycles full_mean full_max < <(sample 1)
echo "no goal:     $base_cycles cycles in $secs s, mean ${base_mean} ms, max ${base_max} ms"
echo "$goals goals: $full_cycles cycles in $secs s, mean ${full_mean} ms, max ${full_max} ms"
awk -v b="$base_mean" -v f="$full_mean" -v g="$goals" \
    'BEGIN { printf "mean cycle time ratio (%d goals / none): %.2f\n", g, f / b }'
