#!/usr/bin/env bash
# submit_bench.sh: what one big joblist costs to submit and to schedule.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh), registers 10 nodes with 8 cpus each (no agents: assigned jobs are
# never claimed), then for each size in SIZES submits one joblist of that many jobs in
# one stage and prints the time submit_joblist() took and the time of the scheduler's
# first cycle over the queue (dispatch.scheduler_stats().last_cycle_ms).  The baseline
# is the first size, in the same run; the ratio compares the submit time per job
# (1.0 = linear).  A cycle that has not ended after WAIT seconds is printed as such.
# Each size is submitted in each shape of SHAPES: "plain" (a name, a command, one env
# variable) and "files" (a template command with its replacements, a timeout and two
# files, one a template with its own map), so the baseline is per shape.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/submit_bench.sh
set -euo pipefail
sizes=${SIZES:-"2000 20000 100000"}
shapes=${SHAPES:-"plain files"}
wait_s=${WAIT:-120}
bench_port=${PORT:-54341}
. "$(dirname "$0")/throwaway.sh"
# (before the limit existed the setting is unknown: ignore that)
psql -c "ALTER SYSTEM SET dispatch.max_jobs_per_joblist = 1000000" -c "SELECT pg_reload_conf()" \
    >/dev/null 2>&1 || true
psql <<SQL >/dev/null
SELECT dispatch.agent_register('node' || n, jsonb_build_object('resources',
         (SELECT jsonb_agg(jsonb_build_object('type', 'cpu', 'ident', c::text))
            FROM generate_series(0, 7) c)))
  FROM generate_series(1, 10) n;
SQL

# The spec of job j in shape $1, as SQL.
job_of() {
    case $1 in
    plain) echo "jsonb_build_object('name', 'job' || j, 'command', 'true',
                                    'env', jsonb_build_object('I', j::text))" ;;
    files) echo "jsonb_build_object('name', 'job' || j, 'command', 'echo @I@', 'template', true,
                   'replacements', jsonb_build_object('@I@', j::text), 'timeout', '10 minutes',
                   'env', jsonb_build_object('I', j::text), 'files', jsonb_build_array(
                     jsonb_build_object('path', 'conf/job.ini', 'content', 'id=@I@ zone=@Z@',
                                        'replacements', jsonb_build_object('@Z@', 'z' || j % 4)),
                     jsonb_build_object('path', 'run.sh', 'content', 'exec true', 'mode', '0755')))" ;;
    esac
}

# Submits one joblist of n jobs of shape $2; prints the submit seconds and the first cycle's ms.
run() {
    local n=$1
    psql <<SQL
\\set QUIET on
SET client_min_messages = warning;
SELECT count(dispatch.cancel_joblist(joblist_id)) FROM dispatch.joblists
 WHERE state IN ('queued', 'running') \\gset
DELETE FROM dispatch.joblists;
CREATE TEMP TABLE spec AS
SELECT jsonb_build_object('name', 'big', 'stages', jsonb_build_array(jsonb_build_object(
         'jobs', jsonb_agg($(job_of "$2"))))) AS s
  FROM generate_series(1, $n) j;
CREATE TEMP TABLE c0 AS SELECT cycles FROM dispatch.scheduler_stats();
SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset
SELECT dispatch.submit_joblist(s) IS NOT NULL AS ok FROM spec \\gset
SELECT extract(epoch FROM clock_timestamp()) AS t1 \\gset
-- the first cycle that starts after the commit is the one to time: wait for two more
DO \$\$
BEGIN
    FOR i IN 1 .. $wait_s * 100 LOOP
        EXIT WHEN (SELECT cycles FROM dispatch.scheduler_stats()) >= (SELECT cycles FROM c0) + 2
              AND NOT EXISTS (SELECT FROM dispatch.jobs
                               WHERE state = 'pending' AND reason = 'waiting for the scheduler');
        PERFORM pg_sleep(0.01);
    END LOOP;
END
\$\$;
SELECT round((:t1 - :t0)::numeric, 3) || ' ' ||
       CASE WHEN EXISTS (SELECT FROM dispatch.jobs
                          WHERE state = 'pending' AND reason = 'waiting for the scheduler')
            THEN 'unfinished'
            ELSE (SELECT round(last_cycle_ms::numeric, 1)::text FROM dispatch.scheduler_stats())
       END || ' ' ||
       (SELECT count(*) FROM dispatch.jobs WHERE state = 'assigned');
SQL
}

for shape in $shapes; do
    base_n=
    base_s=
    for n in $sizes; do
        read -r submit_s cycle_ms assigned < <(run "$n" "$shape")
        [ -n "$base_n" ] || { base_n=$n; base_s=$submit_s; }
        awk -v n="$n" -v s="$submit_s" -v c="$cycle_ms" -v a="$assigned" -v bn="$base_n" \
            -v bs="$base_s" -v shape="$shape" \
            'BEGIN { printf "%7d jobs (%s): submitted in %8.3f s (%.1f us per job, ratio to %d jobs %.2f); first cycle %s ms, %d assigned\n",
                     n, shape, s, 1e6 * s / n, bn, (s / n) / (bs / bn), c, a }'
    done
done
