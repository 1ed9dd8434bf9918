#!/bin/bash
# live.sh -- dispatch-agent against a real PostgreSQL speaking the real SQL API.
#
# Creates a throwaway cluster, loads sql/pg_dispatch--0.1.sql with its three C
# functions replaced by SQL stand-ins (wake_scheduler: no-op; current_caller:
# session_user; scheduler_stats: NULLs), and plays the scheduler itself with
# dispatch._assign().  Everything else -- registration, NOTIFY, claiming,
# output streaming, results, cancel, timeout, agent crash and restart, database
# restart, drain -- is the real thing.  Waits poll with a deadline, never sleep
# blindly.  The full end-to-end tests with the scheduler are in t/.
#
# Usage: tests/live.sh   (from agent/, after make; PGBIN defaults to pg_config --bindir)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
sqlfile=$here/../sql/pg_dispatch--0.1.sql
agent=$here/dispatch-agent
PGBIN=${PGBIN:-$(pg_config --bindir)}
port=${PGPORT_LIVE:-5498}
tmp=$(mktemp -d /tmp/dispatch-live.XXXXXX)
pass=0
fail=0
agent_pid=

as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else sh -c "$*"; fi; }
psql_q() { psql -X -h "$tmp" -p "$port" -d live -Atq -v ON_ERROR_STOP=1 -U "$1" -c "$2"; }
ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $1"; }

# wait_for WHAT SQL: polls SQL (as postgres) until it returns t, for up to 20 s.
wait_for() {
	local deadline=$((SECONDS + 20))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(psql_q postgres "$2" 2>/dev/null)" = t ] && { ok "$1"; return 0; }
		sleep 0.1
	done
	not_ok "$1 (timed out waiting for: $2)"
	return 0
}

# wait_log WHAT PATTERN: waits until the agent log matches PATTERN.
wait_log() {
	local deadline=$((SECONDS + 20))
	while [ $SECONDS -lt $deadline ]; do
		grep -q -- "$2" "$tmp/agent.log" && { ok "$1"; return 0; }
		sleep 0.1
	done
	not_ok "$1 (no log line matching \"$2\")"
}

start_agent() {
	local root=
	[ "$(id -u)" = 0 ] && root=--allow-root
	PGPASSWORD=must-not-leak "$agent" --dbname "host=$tmp port=$port dbname=live user=worker" \
		--node w1 --resource 'gpu=[0-1]' --label zone=a --workdir "$tmp/spool" $root -v \
		"$@" >>"$tmp/agent.log" 2>&1 &
	agent_pid=$!
}

# submit NAME JOBS-JSON: submits a one-stage joblist as alice, assigns every job to w1; prints the joblist id.
submit() {
	local jl
	jl=$(psql_q alice "select dispatch.submit_joblist('{\"name\": \"$1\", \"stages\": [{\"jobs\": $2}]}')")
	psql_q postgres "select count(dispatch._assign(job_id, 'w1',
		array(select resource_id from dispatch.resources where node = 'w1' and type = 'mem_mb'), array[10]))
		from dispatch.jobs where joblist_id = $jl and state = 'pending'" >/dev/null
	echo "$jl"
}

# supervisor_pid JOB: the pid in the job's meta file (only this test's spool is looked at).
supervisor_pid() { sed -n 's/^pid=//p' "$tmp"/spool/jobs/"$1".*/meta 2>/dev/null; }

cleanup() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	supervisor_pid '*' | xargs -r kill -TERM 2>/dev/null || true
	as_pg "$PGBIN/pg_ctl -D $tmp/data -m immediate stop" >/dev/null 2>&1 || true
	if [ $fail -gt 0 ]; then echo "agent log: $tmp/agent.log"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

[ -x "$agent" ] || { echo "build the agent first (make -C agent)"; exit 1; }
[ -f "$sqlfile" ] || { echo "missing $sqlfile"; exit 1; }
[ "$(id -u)" = 0 ] && chown postgres "$tmp"
as_pg "$PGBIN/initdb -D $tmp/data -A trust" >/dev/null
cat >>"$tmp/data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
dispatch.node_timeout = '3s'
dispatch.kill_grace = '1s'
dispatch.max_output_bytes = '100kB'
EOF
as_pg "$PGBIN/pg_ctl -D $tmp/data -l $tmp/data/log start -w" >/dev/null
psql -X -h "$tmp" -p "$port" -U postgres -d postgres -q -c 'create database live'
sed -e 's/^\\echo .*/CREATE SCHEMA dispatch;/' \
	-e "s/LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'wake_scheduler'/LANGUAGE sql AS 'SELECT'/" \
	-e "s/LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'current_caller'/LANGUAGE sql AS 'SELECT session_user'/" \
	-e "s/LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'scheduler_stats'/LANGUAGE sql AS 'SELECT NULL::int, 0::bigint, 0::bigint, NULL::timestamptz, NULL::float8'/" \
	"$sqlfile" >"$tmp/load.sql"
psql -X -h "$tmp" -p "$port" -U postgres -d live -q -v ON_ERROR_STOP=1 -f "$tmp/load.sql" >/dev/null
psql_q postgres "create role worker login in role dispatch_agent; create role alice login in role dispatch_user"

# 1. registration
start_agent
wait_for "agent registers its node with labels and resources" \
	"select count(*) = 1 from dispatch.nodes where node = 'w1' and state = 'online' and labels = '{\"zone\": \"a\"}'
	 and (select count(*) from dispatch.resources where node = 'w1' and type = 'gpu') = 2
	 and exists (select 1 from dispatch.resources where node = 'w1' and type = 'mem_mb' and capacity > 0)"

# 2. a job: output, environment, exit code, spool cleaned up
jl=$(submit env '[{"name": "e", "command": "echo hi; env | grep -E \"^(PG|DISPATCH_JOB_ID|DISPATCH_RES_MEM_MB|FOO)=\" | sort; printf \"bad \\\\377 byte\" >&2; exit 3", "env": {"FOO": "bar"}}]')
wait_for "job fails with its exit code" "select state = 'failed' and exit_code = 3 from dispatch.jobs where joblist_id = $jl"
out=$(psql_q postgres "select string_agg(data, '' order by \"offset\") from dispatch.job_output o join dispatch.jobs j using (job_id) where joblist_id = $jl and stream = 'stdout'")
jid=$(psql_q postgres "select job_id from dispatch.jobs where joblist_id = $jl")
[ "$out" = "$(printf 'hi\nDISPATCH_JOB_ID=%s\nDISPATCH_RES_MEM_MB=10\nFOO=bar' "$jid")" ] && ok "stdout and environment (no PG* variables)" || not_ok "stdout and environment: got [$out]"
wait_for "stderr with an invalid byte as '?'" "select data = 'bad ? byte' from dispatch.job_output o join dispatch.jobs j using (job_id) where joblist_id = $jl and stream = 'stderr'"
[ -z "$(ls "$tmp/spool/jobs")" ] && ok "spool directory removed after the report" || not_ok "spool not empty: $(ls "$tmp/spool/jobs")"

# 3. timeout and cancel
jl=$(submit tc '[{"name": "t", "command": "sleep 30", "timeout": 0.3}, {"name": "c", "command": "echo started; sleep 30"}]')
wait_for "timed-out job is killed and reported" "select timed_out and signal = 15 from dispatch.jobs where joblist_id = $jl and name = 't'"
wait_for "second job started" "select state = 'running' and output_bytes > 0 from dispatch.jobs where joblist_id = $jl and name = 'c'"
psql_q alice "select dispatch.cancel_job(job_id) from dispatch.jobs where joblist_id = $jl and name = 'c'" >/dev/null
wait_for "cancelled job is stopped" "select state = 'cancelled' and signal = 15 from dispatch.jobs where joblist_id = $jl and name = 'c'"

# 4. output limit
jl=$(submit big '[{"name": "b", "command": "head -c 300000 /dev/zero | tr \"\\\\0\" x"}]')
wait_for "output truncated at the server's limit, job still succeeds" "select state = 'succeeded' and output_truncated from dispatch.jobs where joblist_id = $jl"

# 5. agent crash: the job survives, output resumes, result reported by the next agent
jl=$(submit crash '[{"name": "s", "command": "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.3; done"}]')
wait_for "job streams output" "select output_bytes > 0 from dispatch.jobs where joblist_id = $jl"
kill -9 "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
start_agent
wait_for "job survives an agent crash and is reported by the new agent" "select state = 'succeeded' from dispatch.jobs where joblist_id = $jl"
wait_for "output complete and without duplicates after the restart" "select string_agg(data, '' order by \"offset\") = E'line 1\nline 2\nline 3\nline 4\nline 5\nline 6\n' from dispatch.job_output o join dispatch.jobs j using (job_id) where joblist_id = $jl"

# 6. database restart: the job finishes while the agent is cut off
jl=$(submit dbdown '[{"name": "d", "command": "sleep 1; echo done; exit 5"}]')
wait_for "job running" "select state = 'running' from dispatch.jobs where joblist_id = $jl"
as_pg "$PGBIN/pg_ctl -D $tmp/data -m fast stop" >/dev/null
sleep 2   # the database must stay down while the job ends: nothing to poll
as_pg "$PGBIN/pg_ctl -D $tmp/data -l $tmp/data/log start -w" >/dev/null
wait_for "result reported after reconnecting" "select state = 'failed' and exit_code = 5 from dispatch.jobs where joblist_id = $jl"

# 7. supervisor killed: reported as vanished, its job killed
jl=$(submit vanish '[{"name": "v", "command": "sleep 30"}]')
wait_for "job running" "select state = 'running' from dispatch.jobs where joblist_id = $jl"
kill -9 "$(supervisor_pid "$(psql_q postgres "select job_id from dispatch.jobs where joblist_id = $jl")")"
wait_for "vanished supervisor reported" "select state = 'failed' and reason = 'supervisor vanished' from dispatch.jobs where joblist_id = $jl"

# 8. drain on SIGTERM
jl=$(submit drain '[{"name": "short", "command": "sleep 0.5"}, {"name": "long", "command": "sleep 30"}]')
wait_for "both jobs running" "select count(*) = 2 from dispatch.jobs where joblist_id = $jl and state = 'running'"
kill -TERM "$agent_pid"
wait_for "short job finishes during the drain" "select state = 'succeeded' from dispatch.jobs where joblist_id = $jl and name = 'short'"
wait_for "long job stopped after the grace and lost, not failed" "select state = 'lost' from dispatch.jobs where joblist_id = $jl and name = 'long'"
wait_for "node offline after the drain" "select state = 'offline' from dispatch.nodes where node = 'w1'"
if wait "$agent_pid"; then ok "agent exits 0 after draining"; else not_ok "agent exit status $?"; fi
agent_pid=

grep -q must-not-leak "$tmp/agent.log" && not_ok "password in the log" || ok "no password in the log"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
