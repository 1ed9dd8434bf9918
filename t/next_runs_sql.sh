#!/bin/sh
# next_runs_sql.sh 'EXPR' FROM_EPOCH N TZNAME: the interface of src/core/tests/cron_next,
# answered by dispatch.next_runs() through psql (connection from the PG* environment),
# so that croniter_compare.py can check the SQL function itself.
set -eu
out=$(psql -XAtq -v ON_ERROR_STOP=1 -v expr="$1" -v from="$2" -v n="$3" -v tz="$4" <<'SQL'
SELECT extract(epoch FROM t)::bigint
  FROM dispatch.next_runs(:'expr', to_timestamp(:from), :n, :'tz') t;
SQL
) || exit 2
[ -n "$out" ] && printf '%s\n' "$out"
if [ "$(printf '%s' "$out" | grep -c .)" -lt "$3" ]; then
    echo never
fi
