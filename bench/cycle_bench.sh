#!/usr/bin/env bash
# cycle_bench.sh: how long the scheduler takes to place a queue, SQL included.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh), registers NODES nodes with 8 cpus each (no agents: assigned jobs
# are never claimed), then submits a queue of jobs and times, from the submitting
# commit, how long until the scheduler's first cycle has placed what fits and given
# every other job a reason.  The baseline is the same run with a queue 10 times
# smaller, in the same invocation; the ratio compares the cycle's cost per assigned job
# (assignments dominate: each is one _assign call with its inserts and NOTIFY).
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/cycle_bench.sh
set -euo pipefail
nodes=${NODES:-100}
jobs=${JOBS:-2000}
bench_port=${PORT:-54339}
. "$(dirname "$0")/throwaway.sh"
psql <<SQL >/dev/null
SELECT dispatch.agent_register('node' || n, jsonb_build_object('resources',
         (SELECT jsonb_agg(jsonb_build_object('type', 'cpu', 'ident', c::text))
            FROM generate_series(0, 7) c)))
  FROM generate_series(1, $nodes) n;
SQL

# Submits n jobs (joblists of 10 jobs needing 1-4 cpus) in one transaction; prints the
# seconds until the first cycle is done, the submit time, jobs assigned, cycle ms.
run() {
    local n=$1
    psql -c "SELECT dispatch.cancel_joblist(joblist_id) FROM dispatch.joblists
              WHERE state IN ('queued', 'running')" >/dev/null
    psql -c "DELETE FROM dispatch.joblists" 2>/dev/null || true
    psql <<SQL
\\set QUIET on
SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset
BEGIN;
SELECT count(dispatch.submit_joblist(jsonb_build_object('name', 'bench' || l, 'stages',
         jsonb_build_array(jsonb_build_object('jobs',
           (SELECT jsonb_agg(jsonb_build_object('name', 'j' || j, 'command', 'true',
                    'needs', jsonb_build_object('cpu', 1 + (l + j) % 4)))
              FROM generate_series(1, 10) j))))))
  FROM generate_series(1, $n / 10) l \\gset
COMMIT;
SELECT extract(epoch FROM clock_timestamp()) AS t1 \\gset
DO \$\$
BEGIN
    FOR i IN 1 .. 6000 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM dispatch.jobs
                               WHERE state = 'pending' AND reason = 'waiting for the scheduler');
        PERFORM pg_sleep(0.01);
    END LOOP;
END
\$\$;
SELECT round((extract(epoch FROM clock_timestamp()) - :t1)::numeric, 3) || ' ' ||
       round((:t1 - :t0)::numeric, 3) || ' ' ||
       (SELECT count(*) FROM dispatch.jobs WHERE state = 'assigned') || ' ' ||
       (SELECT round(last_cycle_ms::numeric, 1) FROM dispatch.scheduler_stats());
SQL
}

read -r base_s base_submit base_assigned base_cycle < <(run $((jobs / 10)))
read -r full_s full_submit full_assigned full_cycle < <(run "$jobs")
echo "nodes: $nodes x 8 cpus"
echo "baseline: $((jobs / 10)) jobs submitted in ${base_submit} s; first cycle done after ${base_s} s: $base_assigned assigned, cycle ${base_cycle} ms"
echo "full:     $jobs jobs submitted in ${full_submit} s; first cycle done after ${full_s} s: $full_assigned assigned, cycle ${full_cycle} ms"
awk -v bc="$base_cycle" -v ba="$base_assigned" -v fc="$full_cycle" -v fa="$full_assigned" \
    'BEGIN { printf "cycle cost per assigned job: baseline %.3f ms, full %.3f ms, ratio %.2f\n",
             bc / ba, fc / fa, (fc / fa) / (bc / ba) }'
