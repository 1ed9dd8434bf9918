# metrics_server.sh: the throwaway server of the metrics benchmarks, sourced by
# metrics_storage.sh, metrics_ingest.sh and metrics_rules.sh (set port first, and
# settings to any extra ALTER SYSTEM commands).
#
# Starts a PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by
# scripts/setup.sh) in a temporary directory removed on exit, defines psql() for it,
# sets dispatch.monitor_interval to an hour and restarts, not reloads: the monitor then
# ticks once at start and sleeps for an hour (after a reload it would tick once more at
# its old interval), so it cannot pack, roll up or evaluate the bench's data; the
# bench goes on once that tick has run (its rollup state appears).  Then it loads the
# bench's sample generator (metrics_sample.sql).
bin=/usr/lib/postgresql/15/bin
here_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d /tmp/pg_dispatch-bench.XXXXXX)
trap '$bin/pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
started=$(date +%s)

bash "$here_dir/../scripts/cluster.sh" "$dir" "$port" 1h
psql() { $bin/psql -X -q -At -h "$dir" -p "$port" -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql -c "ALTER SYSTEM SET dispatch.monitor_interval = '1h'" ${settings:+-c "$settings"} >/dev/null
$bin/pg_ctl -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
for i in $(seq 1 60); do
	[ "$(psql -c 'SELECT count(*) FROM dispatch.metric_rollup_state')" = 2 ] && break
	sleep 0.5
done
psql -f "$here_dir/metrics_sample.sql" >/dev/null
