#!/usr/bin/env bash
# stage_bench.sh: what a scheduling cycle's statements cost for one big joblist.
#
# On a throwaway server (pg_dispatch installed beforehand; PGBIN picks another
# installation), one joblist of JOBS no-op jobs (20,000 by default) in one stage,
# statistics taken.  Two statements, each timed against a baseline in the same run:
#   - dispatch._sched_jobs_changed() of 10 jobs, the model's reload of what changed,
#     while every job is pending: the mean of 50 calls with jit = off (as the
#     scheduler runs it) against jit = on (the server's default, which the plan's
#     estimate for the joblist's pending jobs passes);
#   - dispatch._housekeeping(), which after every batch of ends asks of each joblist
#     it names whether its current stage still has an active job, or (fail_fast) a bad
#     one, once the first half of the jobs succeeded: the mean of 200 calls with the
#     partial indexes that answer those questions (jobs_stage_active_idx,
#     jobs_stage_bad_idx), then without them (dropped: the walk past the stage's
#     finished jobs they replace).
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/stage_bench.sh
set -euo pipefail
jobs=${JOBS:-20000}
bench_port=${PORT:-54339}
. "$(dirname "$0")/throwaway.sh"

psql <<SQL >/dev/null
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'big', 'stages', jsonb_build_array(
         jsonb_build_object('jobs', (SELECT jsonb_agg(jsonb_build_object('name', 'j' || k,
                                                                        'command', 'true'))
                                       FROM generate_series(1, $jobs) k)))));
ANALYZE;
SQL

# Mean ms of one reload of 10 changed jobs over 50 calls, with jit set to $1.
reload() {
    psql <<SQL
SET jit = $1;
DO \$\$
DECLARE
    ids bigint[] := ARRAY(SELECT job_id FROM dispatch.jobs ORDER BY job_id LIMIT 10);
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. 50 LOOP
        PERFORM count(*) FROM dispatch._sched_jobs_changed(ids, '{}');
    END LOOP;
    RAISE NOTICE '%', round((extract(epoch FROM clock_timestamp() - t0) * 1000 / 50)::numeric, 3);
END
\$\$;
SQL
}
jit_off=$(reload off 2>&1 | sed -n 's/.*NOTICE: *//p')
jit_on=$(reload on 2>&1 | sed -n 's/.*NOTICE: *//p')

psql <<SQL >/dev/null
-- Half the stage done, as after a while of running (no events: the triggers are off).
ALTER TABLE dispatch.jobs DISABLE TRIGGER USER;
UPDATE dispatch.jobs SET state = 'succeeded', finished_at = now()
 WHERE job_id <= (SELECT min(job_id) + $jobs / 2 - 1 FROM dispatch.jobs);
ALTER TABLE dispatch.jobs ENABLE TRIGGER USER;
VACUUM ANALYZE dispatch.jobs;
SQL
timed() {
    psql <<'SQL'
DO $$
DECLARE
    jl bigint := (SELECT joblist_id FROM dispatch.joblists);
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. 200 LOOP
        PERFORM dispatch._housekeeping(now(), false, ARRAY[jl]);
    END LOOP;
    RAISE NOTICE '%', round((extract(epoch FROM clock_timestamp() - t0) * 1000 / 200)::numeric, 3);
END
$$;
SQL
}
with=$(timed 2>&1 | sed -n 's/.*NOTICE: *//p')
psql -c "DROP INDEX dispatch.jobs_stage_active_idx, dispatch.jobs_stage_bad_idx"
without=$(timed 2>&1 | sed -n 's/.*NOTICE: *//p')
echo "stage_bench: one joblist of $jobs jobs in one stage, half succeeded"
echo "_housekeeping, mean of 200:  with the stage indexes $with ms, without them (baseline) $without ms"
awk -v a="$with" -v b="$without" 'BEGIN { printf "  ratio with / without: %.3f\n", a / b }'
echo "reload of 10 changed jobs, mean of 50:  jit off $jit_off ms, jit on (baseline) $jit_on ms"
awk -v a="$jit_off" -v b="$jit_on" 'BEGIN { printf "  ratio off / on: %.3f\n", a / b }'
