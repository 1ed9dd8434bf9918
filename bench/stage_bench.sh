#!/usr/bin/env bash
# stage_bench.sh: what the scheduler's housekeeping costs for one big stage.
#
# After every batch of ends, dispatch._housekeeping() asks of each joblist it names
# whether its current stage still has an active job, or (fail_fast) a bad one.  On a
# throwaway server (pg_dispatch installed beforehand; PGBIN picks another
# installation), one joblist of JOBS no-op jobs (20,000 by default) in one stage, the
# first half marked succeeded: the mean time of one _housekeeping call over 200 calls,
# with the partial indexes that answer those questions (jobs_stage_active_idx,
# jobs_stage_bad_idx), then in the same run without them (dropped: the walk past the
# stage's finished jobs they replace), and the ratio.
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
echo "stage_bench: one stage of $jobs jobs, half succeeded; one _housekeeping call, mean of 200"
echo "with the stage indexes:    $with ms"
echo "without them (baseline):   $without ms"
awk -v a="$with" -v b="$without" 'BEGIN { printf "ratio with / without: %.3f\n", a / b }'
