#!/usr/bin/env bash
# report_bench.sh: what reporting a job's end costs the server, one call per job
# against batches.
#
# A throwaway PostgreSQL 15 with pg_dispatch (installed beforehand; PGBIN picks another
# installation), one node registered, JOBS jobs assigned to it by hand (a type no node
# offers, so the scheduler leaves them alone) and claimed.  Then, each over its own
# third of the jobs, through one psql connection over the socket, as an agent would:
#   - one-job calls, the baseline: dispatch.agent_finish, each in its own transaction;
#   - batches: dispatch.agent_report with BATCH ends per call (the agent's 256);
#   - the same batches with the job event and history triggers disabled, to show what
#     the triggers cost per end.
# Prints ends/s of each and the ratio batches / one-job calls (an installation without
# agent_report, such as an older one for comparison, gets the one-job calls only).  Run as an unprivileged
# user (PostgreSQL refuses root):  bash bench/report_bench.sh   (JOBS=6000 BATCH=256)
set -euo pipefail
jobs=${JOBS:-6000}
batch=${BATCH:-256}
bench_port=${PORT:-54342}
. "$(dirname "$0")/throwaway.sh"
psql >/dev/null <<SQL
SELECT dispatch.agent_register('rb', '{}');
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'rb', 'stages', jsonb_build_array(
         jsonb_build_object('jobs', (SELECT jsonb_agg(jsonb_build_object('name', 'j' || k,
           'command', 'true', 'needs', jsonb_build_object('reportbench', 1)))
           FROM generate_series(1, $jobs) k)))));
SELECT count(dispatch._assign(job_id, 'rb', '{}', '{}')) FROM dispatch.jobs;
SELECT count(*) FROM dispatch.agent_poll('rb');
SQL
third=$((jobs / 3))

# Runs the SQL script on stdin; prints ends/s for n ends.
timed() {
    local n=$1 t0 t1
    t0=$(date +%s.%N)
    psql >/dev/null
    t1=$(date +%s.%N)
    awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}
# Prints the agent_report calls that end the running jobs of the given third, BATCH each.
batches() {
    local from=$1
    for ((i = 0; i < third; i += batch)); do
        echo "SELECT dispatch.agent_report('rb', (SELECT jsonb_agg(jsonb_build_object('job_id', job_id,
                'attempt', 1, 'finish', jsonb_build_object('exit_code', 0)))
                FROM generate_series($((from + i)), $((from + (i + batch < third ? i + batch : third) - 1))) job_id));"
    done
}

single=$(for ((i = 1; i <= third; i++)); do
             echo "SELECT dispatch.agent_finish('rb', $i, 1, 0, NULL, false);"
         done | timed "$third")
echo "ends reported: $third per way, batches of $batch"
echo "one-job calls (agent_finish, one transaction each): $single ends/s"
if [ "$(psql -c "SELECT to_regprocedure('dispatch.agent_report(text, jsonb)') IS NULL")" = t ]; then
    echo "(this installation has no dispatch.agent_report: one-job calls only)"
    exit 0
fi
batched=$(batches $((third + 1)) | timed "$third")
untriggered=$( (echo 'ALTER TABLE dispatch.jobs DISABLE TRIGGER jobs_event_upd, DISABLE TRIGGER jobs_history;'
               batches $((2 * third + 1))) | timed "$third")
[ "$(psql -c "SELECT count(*) FROM dispatch.jobs WHERE state = 'succeeded'")" = $((3 * third)) ] ||
    { echo "report_bench.sh: not every end was recorded" >&2; exit 1; }
echo "batches (agent_report):                            $batched ends/s"
echo "batches, event and history triggers disabled:      $untriggered ends/s"
awk -v s="$single" -v b="$batched" -v u="$untriggered" 'BEGIN {
    printf "ratio batches / one-job calls: %.1f\n", b / s
    printf "the triggers cost %.1f us of the %.1f us of a batched end\n", 1e6 / b - 1e6 / u, 1e6 / b }'
