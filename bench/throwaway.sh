# throwaway.sh: sourced by the benchmarks that need a server.  Starts a throwaway
# PostgreSQL 15 with pg_dispatch (installed beforehand, e.g. by scripts/setup.sh) on a
# socket in a temporary directory, stops and removes it when the script exits, and
# defines psql() for it.  Set bench_port before sourcing it.
bin=${PGBIN:-/usr/lib/postgresql/15/bin}
dir=$(mktemp -d /tmp/pg_dispatch-bench.XXXXXX)
trap '$bin/pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/cluster.sh" "$dir" "$bench_port" 1h
psql() { $bin/psql -X -q -At -h "$dir" -p "$bench_port" -d postgres -v ON_ERROR_STOP=1 "$@"; }
