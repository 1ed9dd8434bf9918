#!/usr/bin/env bash
# cluster.sh DIR PORT NODE_TIMEOUT: creates and starts a throwaway PostgreSQL 15 server
# in DIR/data that listens only on a socket in DIR, with pg_dispatch preloaded and
# created in database postgres.  Used by the demo and the benchmarks; run it as an
# unprivileged user (PostgreSQL refuses root).  Stop it with pg_ctl -D DIR/data stop.
# PG_BIN names another PostgreSQL 15 bin directory (default: Debian's).
set -euo pipefail
dir=$1
port=$2
node_timeout=$3
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}

"$bin/initdb" -D "$dir/data" -A trust >/dev/null
cat >> "$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
listen_addresses = ''
shared_preload_libraries = 'pg_dispatch'
dispatch.database = 'postgres'
dispatch.node_timeout = '$node_timeout'
CONF
"$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
"$bin/psql" -X -q -h "$dir" -p "$port" -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION pg_dispatch"
