#!/usr/bin/env bash
# events_bench.sh: what the dispatch_events triggers (sql/src/47_events.sql) cost on the
# paths they fire on, against the same statements with the triggers disabled, in the
# same run and the same transaction-rolled-back state:
#   - one statement changing the state of JOBS jobs (a scheduling cycle assigning a
#     queue): the statement trigger with its transition tables, one NOTIFY;
#   - one statement changing only the reason of JOBS jobs (the cycle's reasons): the
#     statement trigger runs and finds no state change, no NOTIFY;
#   - CHUNKS single-row output inserts: no trigger since output is announced only to
#     the jobs' followers (follow_output), so both sides should match;
#   - CHUNKS heartbeats (UPDATE nodes SET last_heartbeat): the row trigger's WHEN
#     clause is false, so no trigger call.
# Starts a throwaway PostgreSQL 15 with pg_dispatch installed beforehand (e.g. by
# scripts/setup.sh).  Run as an unprivileged user:  bash bench/events_bench.sh
set -euo pipefail
jobs=${JOBS:-10000}
chunks=${CHUNKS:-5000}
bench_port=${PORT:-54349}
. "$(dirname "$0")/throwaway.sh"
# A queue of jobs on one node that never runs them (no agent: nothing is claimed).
psql <<SQL >/dev/null
SELECT dispatch.agent_register('n1', '{"resources": [{"type": "cpu", "ident": "0"}]}');
SELECT count(dispatch.submit_joblist(jsonb_build_object('name', 'bench' || l, 'stages',
         jsonb_build_array(jsonb_build_object('jobs',
           (SELECT jsonb_agg(jsonb_build_object('name', 'j' || j, 'command', 'true',
                    'needs', jsonb_build_object('gpu', 1)))
              FROM generate_series(1, 100) j))))))
  FROM generate_series(1, $jobs / 100) l;
SQL

# Prints the milliseconds of each measured statement, triggers enabled or not ($1); every
# statement is rolled back, so each run starts from the same queue.
measure() {
    psql <<SQL
SET client_min_messages = warning;
ALTER TABLE dispatch.jobs ${1}ABLE TRIGGER jobs_events;
ALTER TABLE dispatch.nodes ${1}ABLE TRIGGER nodes_state_events;
CREATE FUNCTION pg_temp.ms(stmt text) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE
    t0 timestamptz;
    ms numeric;
BEGIN
    BEGIN
        t0 := clock_timestamp();
        EXECUTE stmt;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        RAISE EXCEPTION 'rolled back' USING ERRCODE = 'P0001';
    EXCEPTION WHEN SQLSTATE 'P0001' THEN
        NULL;
    END;
    RETURN round(ms, 1);
END
\$\$;
SELECT pg_temp.ms(\$q\$UPDATE dispatch.jobs SET state = 'cancelled', finished_at = now(), reason = 'bench'\$q\$)
       || ' ' || pg_temp.ms(\$q\$UPDATE dispatch.jobs SET reason = 'bench reason'\$q\$)
       || ' ' || pg_temp.ms(\$q\$DO \$d\$ DECLARE j bigint := (SELECT min(job_id) FROM dispatch.jobs); BEGIN
                  FOR i IN 1 .. $chunks LOOP
                      INSERT INTO dispatch.job_output (job_id, attempt, stream, "offset", data)
                      VALUES (j + i % 100, 1, 'stdout', i, 'a line of output');
                  END LOOP; END \$d\$\$q\$)
       || ' ' || pg_temp.ms(\$q\$DO \$d\$ BEGIN FOR i IN 1 .. $chunks LOOP
                      UPDATE dispatch.nodes SET last_heartbeat = clock_timestamp() WHERE node = 'n1';
                  END LOOP; END \$d\$\$q\$);
SQL
}

# Warm up once, then alternate so neither side gets the warmer cache.
measure EN >/dev/null
read -r off_state off_reason off_output off_beat < <(measure DIS)
read -r on_state on_reason on_output on_beat < <(measure EN)
read -r off2_state off2_reason off2_output off2_beat < <(measure DIS)
read -r on2_state on2_reason on2_output on2_beat < <(measure EN)
echo "jobs: $jobs, output chunks and heartbeats: $chunks (ms, two runs each, triggers off / on)"
awk -v a="$off_state" -v b="$off2_state" -v c="$on_state" -v d="$on2_state" \
    'BEGIN { printf "state change of every job, one statement:  off %.1f  on %.1f  ratio %.2f\n", (a+b)/2, (c+d)/2, (c+d)/(a+b) }'
awk -v a="$off_reason" -v b="$off2_reason" -v c="$on_reason" -v d="$on2_reason" \
    'BEGIN { printf "reason of every job, one statement:         off %.1f  on %.1f  ratio %.2f\n", (a+b)/2, (c+d)/2, (c+d)/(a+b) }'
awk -v a="$off_output" -v b="$off2_output" -v c="$on_output" -v d="$on2_output" -v n="$chunks" \
    'BEGIN { printf "output chunk inserts:                       off %.1f  on %.1f  ratio %.2f (%.1f us per chunk more)\n", (a+b)/2, (c+d)/2, (c+d)/(a+b), 1000*((c+d)-(a+b))/2/n }'
awk -v a="$off_beat" -v b="$off2_beat" -v c="$on_beat" -v d="$on2_beat" \
    'BEGIN { printf "heartbeats:                                 off %.1f  on %.1f  ratio %.2f\n", (a+b)/2, (c+d)/2, (c+d)/(a+b) }'
