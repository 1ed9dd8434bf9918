#!/usr/bin/env bash
# output_notify.sh: what the "output" NOTIFY of dispatch.agent_output() costs.
#
# dispatchctl logs -f follows a job through the NOTIFY that agent_output() sends for
# every stored chunk (sql/src/45_output.sql).  A NOTIFY is queued at commit under a
# cluster-wide lock, so it is paid by every agent streaming output, followed or not.
# This starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh), one node and CLIENTS (4) running jobs, and has CLIENTS pgbench
# clients each store 200-byte chunks into its own job for SECONDS (10) seconds, one
# agent_output() call and one transaction per chunk as the agent makes them.  The
# baseline is the same load through a copy of agent_output() without its pg_notify
# line, made in the same run from the installed definition.  The two alternate twice;
# it prints chunks/s of each run, the best of each, and the ratio notify / baseline.
# No one LISTENs (the common case: nobody follows most jobs).
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/output_notify.sh
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
clients=${CLIENTS:-4}
seconds=${SECONDS_EACH:-10}
dir=$(mktemp -d /tmp/pg_dispatch-bench.XXXXXX)
port=${PORT:-54341}
trap '$bin/pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

bash "$(dirname "$0")/../scripts/cluster.sh" "$dir" "$port" 1h
echo "dispatch.max_output_bytes = '1GB'" >> "$dir/data/postgresql.conf"
$bin/pg_ctl -D "$dir/data" reload >/dev/null
psql() { $bin/psql -X -q -At -h "$dir" -p $port -d postgres -v ON_ERROR_STOP=1 "$@"; }
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

# The baseline: agent_output() as installed, minus its NOTIFY, in schema bench.
psql <<'SQL' >/dev/null
CREATE SCHEMA bench;
DO $$
DECLARE
    def text := pg_get_functiondef(
        'dispatch.agent_output(text, bigint, int, text, bigint, text)'::regprocedure);
    copy text := regexp_replace(replace(def, 'FUNCTION dispatch.agent_output(',
                                        'FUNCTION bench.agent_output('),
                                'PERFORM pg_notify\([^;]*\);', '');
BEGIN
    IF copy = def OR copy ~ 'pg_notify' THEN
        RAISE EXCEPTION 'agent_output() has no NOTIFY line to remove';
    END IF;
    EXECUTE copy;
END
$$;
SQL

# Chunks per second with agent_output in schema $1.
run() {
    cat > "$dir/chunk.sql" <<SQL
SELECT $1.agent_output('b1', j.job_id, 1, 'stdout', j.output_bytes, repeat('x', 199) || E'\n')
  FROM dispatch.jobs j
 WHERE j.job_id = (SELECT min(job_id) FROM dispatch.jobs) + :client_id;
SQL
    $bin/pgbench -n -h "$dir" -p $port -c "$clients" -j "$clients" -T "$seconds" \
        -f "$dir/chunk.sql" postgres 2>/dev/null |
        awk '/^tps = / { printf "%.0f\n", $3 }'
}

b1=$(run bench); n1=$(run dispatch); b2=$(run bench); n2=$(run dispatch)
base=$(( b1 > b2 ? b1 : b2 ))
notify=$(( n1 > n2 ? n1 : n2 ))
stored=$(psql -c "SELECT pg_size_pretty(sum(octet_length(data))) FROM dispatch.job_output")
echo "clients: $clients, ${seconds} s per run, 200-byte chunks ($stored stored)"
echo "baseline (no NOTIFY): $b1, $b2 chunks/s"
echo "with NOTIFY:          $n1, $n2 chunks/s"
awk -v b="$base" -v n="$notify" 'BEGIN { printf "best: baseline %d, notify %d chunks/s; ratio notify / baseline %.3f\n", b, n, n / b }'
