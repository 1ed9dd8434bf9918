#!/usr/bin/env bash
# output_notify.sh: what following a job's output costs the agents that send it.
#
# dispatchctl logs -f follows a job through the NOTIFY that agent_output() sends for a
# stored chunk while someone follows the job (follow_output(), sql/src/45_output.sql).
# A NOTIFY is queued at commit under a cluster-wide lock, so agent_output() first tries
# an advisory lock to see whether anyone follows, and NOTIFYs only then.  This starts a
# throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh), one node and CLIENTS (4) running jobs, and has CLIENTS pgbench
# clients each store 200-byte chunks into its own job for SECONDS_EACH (5) seconds,
# one agent_output() call and one transaction per chunk as the agent makes them, in
# three ways:
#   baseline   a copy of agent_output() without the follow check and NOTIFY, made in
#              the same run from the installed definition;
#   unfollowed agent_output() as installed, nobody following (the common case);
#   followed   agent_output() as installed, every job followed by a session that
#              called follow_output() (no one LISTENs: the NOTIFY's cost is the sender's).
# The three alternate ROUNDS (4) times, so that load from elsewhere hits all three
# alike; it prints chunks/s of each run, the best of each, and the ratios to the
# baseline.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/output_notify.sh
set -euo pipefail
clients=${CLIENTS:-4}
seconds=${SECONDS_EACH:-5}
rounds=${ROUNDS:-4}
bench_port=${PORT:-54341}
port=$bench_port
. "$(dirname "$0")/throwaway.sh"
echo "dispatch.max_output_bytes = '1GB'" >> "$dir/data/postgresql.conf"
$bin/pg_ctl -D "$dir/data" reload >/dev/null
psql <<SQL >/dev/null
SELECT dispatch.agent_register('b1', jsonb_build_object('resources',
         (SELECT jsonb_agg(jsonb_build_object('type', 'cpu', 'ident', c::text))
            FROM generate_series(1, $clients) c)));
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'bench', 'stages',
         jsonb_build_array(jsonb_build_object('jobs',
           (SELECT jsonb_agg(jsonb_build_object('name', 'j' || j, 'command', 'true'))
              FROM generate_series(1, $clients) j)))));
SQL
for _ in $(seq 600); do
    [ "$(psql -c "SELECT count(*) FROM dispatch.jobs WHERE state = 'assigned'")" = "$clients" ] && break
    sleep 0.1
done
psql -c "SELECT count(*) FROM dispatch.agent_poll('b1')" >/dev/null
[ "$(psql -c "SELECT count(*) FROM dispatch.jobs WHERE state = 'running'")" = "$clients" ] ||
    { echo "output_notify: the jobs did not start" >&2; exit 1; }

# The baseline: agent_output() as installed, minus the follow check and NOTIFY, in
# schema bench.
psql <<'SQL' >/dev/null
CREATE SCHEMA bench;
DO $$
DECLARE
    def text := pg_get_functiondef(
        'dispatch.agent_output(text, bigint, int, text, bigint, text)'::regprocedure);
    copy text := regexp_replace(replace(def, 'FUNCTION dispatch.agent_output(',
                                        'FUNCTION bench.agent_output('),
                                'IF NOT pg_try_advisory_xact_lock[^;]*;[^;]*END IF;', '');
BEGIN
    IF copy = def OR copy ~ 'pg_notify|advisory' THEN
        RAISE EXCEPTION 'agent_output() has no follow check to remove';
    END IF;
    EXECUTE copy;
END
$$;
SQL

# Chunks per second with agent_output in schema $1, from no stored output (the stored
# length is looked up among a stream's chunks, so every run starts from the same size).
run() {
    psql -c "TRUNCATE dispatch.job_output" \
         -c "UPDATE dispatch.jobs SET output_bytes = 0, output_truncated = false" >/dev/null
    cat > "$dir/chunk.sql" <<SQL
SELECT $1.agent_output('b1', j.job_id, 1, 'stdout', j.output_bytes, repeat('x', 199) || E'\n')
  FROM dispatch.jobs j
 WHERE j.job_id = (SELECT min(job_id) FROM dispatch.jobs) + :client_id;
SQL
    $bin/pgbench -n -h "$dir" -p $port -c "$clients" -j "$clients" -T "$seconds" \
        -f "$dir/chunk.sql" postgres 2>/dev/null |
        awk '/^tps = / { printf "%.0f\n", $3 }'
}

# Runs the load with every job followed by one background session.
followed() {
    $bin/psql -X -q -h "$dir" -p $port -d postgres \
        -c "SELECT dispatch.follow_output(job_id) FROM dispatch.jobs" \
        -c "SELECT pg_sleep($seconds + 30)" >/dev/null 2>&1 &
    local follower=$!
    for _ in $(seq 100); do
        [ "$(psql -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                        AND mode = 'ShareLock' AND granted")" = "$clients" ] && break
        sleep 0.1
    done
    run dispatch
    kill "$follower"
    wait "$follower" 2>/dev/null || true
}

b=(); u=(); f=()
for _ in $(seq "$rounds"); do
    b+=("$(run bench)"); u+=("$(run dispatch)"); f+=("$(followed)")
done
best() { printf '%s\n' "$@" | sort -n | tail -1; }
stored=$(psql -c "SELECT pg_size_pretty(sum(octet_length(data))) FROM dispatch.job_output")
echo "clients: $clients, ${seconds} s per run, $rounds rounds, 200-byte chunks (the last run stored $stored)"
echo "baseline (no check, no NOTIFY): ${b[*]} chunks/s"
echo "unfollowed (check, no NOTIFY):  ${u[*]} chunks/s"
echo "followed (check and NOTIFY):    ${f[*]} chunks/s"
awk -v b="$(best "${b[@]}")" -v u="$(best "${u[@]}")" -v f="$(best "${f[@]}")" \
    'BEGIN { printf "best: baseline %d, unfollowed %d, followed %d chunks/s; ratios to the baseline: unfollowed %.3f, followed %.3f\n", b, u, f, u / b, f / b }'
