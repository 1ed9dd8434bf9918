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
unit_failed=
run "make -s unit" || { status=1; unit_failed=1; }
# (pipefail: the pipeline fails when make does)
if ! run "make -s installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config" 2>&1 |
        tee "$work/installcheck.out"; then
    status=1
    for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs "$work"/tmp_check/log/*; do
        [ -f "$f" ] && { echo "=== $f"; tail -n 200 "$f"; }
    done
    # Last, where a reader of only the end of the output sees it: what failed.
    echo "=== what failed"
    grep -E "^not ok|FAILED|failed \(|Dubious|^t/.*(Failed|Wstat)" "$work/installcheck.out" || true
    for f in "$work"/tmp_check/log/regress_log_*; do
        [ -f "$f" ] && grep -q "not ok" "$f" && { echo "--- $f"; grep -n -A3 "not ok" "$f" | head -n 40; }
    done
    for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs; do
        [ -f "$f" ] && { echo "--- $f"; head -n 60 "$f"; }
    done
fi
[ -n "$unit_failed" ] && echo "=== what failed: the unit tests (make unit, above)"
if [ $status -eq 0 ]; then
    rm -rf "$work"
else
    echo "test: failures; the test tree is kept in $work"
fi
exit $status
