# agent_user.sh: sourced by the benchmarks that run real agents.  As root, it copies
# the agent (AGENT, default this tree's), gives the copy the capabilities --job-user
# needs, runs the sourcing script ($self) again as BENCH_USER (postgres: PostgreSQL
# refuses root) and exits with its status; as anyone else it sets agent to the binary
# to run, or stops when there is none.  Set self and here before sourcing it.
if [ "$(id -u)" -eq 0 ]; then
    user=${BENCH_USER:-postgres}
    agent_dir=$(mktemp -d /tmp/pg_dispatch-bench-agent.XXXXXX)
    cp "${AGENT:-$here/../agent/dispatch-agent}" "$agent_dir/dispatch-agent"
    setcap cap_setuid,cap_setgid,cap_chown+ep "$agent_dir/dispatch-agent"
    chmod 0755 "$agent_dir"
    rc=0
    runuser -u "$user" -- env AGENT="$agent_dir/dispatch-agent" bash "$self" "$@" || rc=$?
    rm -rf "$agent_dir"
    exit $rc
fi
agent=${AGENT:-$here/../agent/dispatch-agent}
[ -x "$agent" ] || { echo "$(basename "$self"): $agent not found; build it with make -C agent" >&2; exit 1; }
