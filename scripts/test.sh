#!/usr/bin/env bash
# Runs every test: unit tests of src/core and the agent, pg_regress, and the TAP tests
# (real PostgreSQL 15 servers and real agents).  PostgreSQL refuses to run as root, so
# the tests run as an unprivileged user (postgres) from a private copy of the tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"

user=${DISPATCH_TEST_USER:-postgres}
work=$(mktemp -d /tmp/pg_dispatch-test.XXXXXX)
cp -a "$root/." "$work/"
if [ "$(id -u)" -eq 0 ]; then
    chown -R "$user" "$work"
    # The agents run jobs as the job user (--job-user): it must reach their spools in the
    # copy (search only, no listing), and the agent binary needs the capabilities to switch
    # to it.  Nothing rebuilds the binary after this (make check finds it up to date); a
    # rebuild would drop the capabilities.
    chmod 0711 "$work"
    setcap cap_setuid,cap_setgid,cap_chown+ep "$work/agent/dispatch-agent"
fi

# Runs a shell command in the copy, as the test user.
run() {
    if [ "$(id -u)" -eq 0 ]; then
        su "$user" -s /bin/bash -c "cd '$work' && PATH=/usr/lib/postgresql/15/bin:\$PATH $1"
    else
        (cd "$work" && PATH=/usr/lib/postgresql/15/bin:$PATH bash -c "$1")
    fi
}

status=0
run "make -s unit" || status=1
if ! run "make -s installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config"; then
    status=1
    for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs "$work"/tmp_check/log/*; do
        [ -f "$f" ] && { echo "=== $f"; tail -n 200 "$f"; }
    done
fi
if [ $status -eq 0 ]; then
    rm -rf "$work"
else
    echo "test: failures; the test tree is kept in $work"
fi
exit $status
