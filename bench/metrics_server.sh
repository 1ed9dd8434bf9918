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
here_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started=$(date +%s)
bench_port=$port
. "$here_dir/throwaway.sh"
psql -c "ALTER SYSTEM SET dispatch.monitor_interval = '1h'" ${settings:+-c "$settings"} >/dev/null
$bin/pg_ctl -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
for i in $(seq 1 60); do
	[ "$(psql -c 'SELECT count(*) FROM dispatch.metric_rollup_state')" = 2 ] && break
	sleep 0.5
done
psql -f "$here_dir/metrics_sample.sql" >/dev/null
