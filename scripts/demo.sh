#!/usr/bin/env bash
# Demo: a throwaway PostgreSQL 15 cluster with pg_dispatch, two dispatch-agent
# processes, dispatch-web (its URL and login are printed), a staged sample joblist, and
# the status views while it runs.  Everything lives in a temporary directory that is
# removed at the end.  On a terminal the demo waits for Enter before it cleans up, so
# the page can be watched; otherwise it holds the cluster for DEMO_HOLD seconds (0).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"

user=${DISPATCH_DEMO_USER:-postgres}
bin=/usr/lib/postgresql/15/bin
demo=$(mktemp -d /tmp/pg_dispatch-demo.XXXXXX)
port=${DISPATCH_DEMO_PORT:-54329}
web_port=${DISPATCH_DEMO_WEB_PORT:-8080}
cp "$root/agent/dispatch-agent" "$root/scripts/cluster.sh" "$root/web/dispatch-web" "$demo/"
cp -r "$root/web/static" "$demo/static"
# The agents run their jobs as the job user that setup.sh created: it may enter (not list)
# the demo directory and the agents' spools, and the agent binary gets the capabilities
# to switch to it.  Without root there is no job user: the jobs run as the agent (insecure).
mkdir -m 0711 "$demo/work-w1" "$demo/work-w2" "$demo/work-desk"
if [ "$(id -u)" -eq 0 ]; then
    chown -R "$user" "$demo"
    chmod 0711 "$demo"
    setcap cap_setuid,cap_setgid,cap_chown+ep "$demo/dispatch-agent"
    jobs_as="--job-user ${DISPATCH_JOB_USER:-dispatch-job}"
else
    echo "demo: not root, so no job user: jobs run as the agent's own user (--insecure-run-jobs-as-agent)"
    jobs_as=--insecure-run-jobs-as-agent
fi

# Runs a command as the unprivileged demo user (PostgreSQL refuses root).
as_user() {
    if [ "$(id -u)" -eq 0 ]; then su "$user" -s /bin/bash -c "$1"; else bash -c "$1"; fi
}
# Runs the SQL given on standard input in the demo database.
psql_demo() {
    as_user "$bin/psql -X -q -h '$demo' -p $port -d postgres -v ON_ERROR_STOP=1"
}

cleanup() {
    as_user "kill \$(cat '$demo'/agent-*.pid '$demo'/web.pid 2>/dev/null) 2>/dev/null; sleep 1; $bin/pg_ctl -D '$demo/data' -m fast stop >/dev/null 2>&1" || true
    rm -rf "$demo"
}
trap cleanup EXIT

echo "== starting a throwaway PostgreSQL 15 cluster in $demo (port $port)"
as_user "bash '$demo/cluster.sh' '$demo' $port 10s"
psql_demo <<<"CREATE ROLE worker LOGIN IN ROLE dispatch_agent;"

# dispatch-web logs users in as database roles, with a password the server checks:
# the demo role "demo" gets a fresh one, and the socket asks it for it.
web_password=$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')
psql_demo <<<"CREATE ROLE demo LOGIN PASSWORD '$web_password' IN ROLE dispatch_user;"
as_user "sed -i '1i local all demo scram-sha-256' '$demo/data/pg_hba.conf' && $bin/pg_ctl -D '$demo/data' reload >/dev/null"
echo "== starting dispatch-web on 127.0.0.1:$web_port"
as_user "cd '$demo' || exit 1; nohup ./dispatch-web --dbname 'host=$demo port=$port dbname=postgres user=$user' \
    --listen 127.0.0.1:$web_port > '$demo/web.log' 2>&1 & echo \$! > '$demo/web.pid'"
for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$web_port/api/v1/openapi.json" && break
    sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$web_port/api/v1/openapi.json" \
    || { echo "demo: dispatch-web did not start (port $web_port taken? set DISPATCH_DEMO_WEB_PORT):"; cat "$demo/web.log"; }
echo "== open http://127.0.0.1:$web_port/ and log in as demo, password $web_password"

echo "== starting two agents: w1 (4 cpus, 2 gpus, zone=a) and w2 (2 cpus, zone=b)"
start_agent() {
    local name=$1; shift
    as_user "cd '$demo' || exit 1; nohup ./dispatch-agent --dbname 'host=$demo port=$port dbname=postgres user=worker' \
        --node $name --workdir '$demo/work-$name' $jobs_as --metrics-interval 2 $* > '$demo/agent-$name.log' 2>&1 & echo \$! > '$demo/agent-$name.pid'"
}
start_agent w1 --resource 'cpu=[0-3]' --resource 'gpu=[0-1]' --label zone=a
start_agent w2 --resource 'cpu=[0-1]' --label zone=b
for _ in $(seq 100); do
    n=$(as_user "$bin/psql -X -At -h '$demo' -p $port -d postgres -c \"SELECT count(*) FROM dispatch.node_status WHERE state = 'online'\"")
    [ "$n" = 2 ] && break
    sleep 0.1
done
# What an agent reports (--label) is a claim; the labels plain constraints match are the
# ones an admin sets (docs/security.md, "Labels and node names").
echo "== as admin: the zones the constraints match"
psql_demo <<'SQL'
SELECT dispatch.set_node_labels('w1', '{"zone": "a"}'), dispatch.set_node_labels('w2', '{"zone": "b"}');
SELECT node, state, labels AS reported, admin_labels, running_jobs FROM dispatch.node_status ORDER BY node;
SQL

echo "== submitting the joblist 'nightly-build'"
psql_demo <<'SQL'
SET ROLE demo;    -- the page's login: a job's output is its submitter's (and admins')
SELECT dispatch.submit_joblist('{
  "name": "nightly-build",
  "stages": [
    {"name": "build", "jobs": [
       {"name": "compile-x86", "command": "echo compiling on $DISPATCH_NODE with cpus $DISPATCH_RES_CPU; sleep 2",
        "needs": {"cpu": 2}},
       {"name": "compile-gpu", "command": "echo building on gpu $CUDA_VISIBLE_DEVICES; sleep 3",
        "needs": {"cpu": 1, "gpu": 1}, "constraints": {"reported:arch": "x86_64"}, "timeout": "10 minutes"},
       {"name": "docs", "command": "echo docs built in zone b; sleep 1",
        "constraints": {"zone": "b"}}]},
    {"name": "test", "jobs": [{"name": "smoke", "command": "echo smoke test passed"}]}
  ]}') AS joblist_id;
SQL

for i in $(seq 60); do
    state=$(as_user "$bin/psql -X -At -h '$demo' -p $port -d postgres -c \"SELECT state FROM dispatch.joblist_status\"")
    if [ $((i % 4)) -eq 1 ] || [ "$state" = succeeded ] || [ "$state" = failed ]; then
        echo "-- job_status after ${i}x0.5 s"
        psql_demo <<<"SELECT job_id, stage, name, state, node, resources, reason FROM dispatch.job_status ORDER BY job_id"
    fi
    case $state in succeeded|failed|cancelled) break;; esac
    sleep 0.5
done
psql_demo <<'SQL'
SELECT joblist_id, name, state, submitted_by, current_stage, jobs_total, jobs_succeeded,
       finished_at - started_at AS took
  FROM dispatch.joblist_status;
SELECT name, node, attempt, exit_code, rtrim(dispatch.job_log(job_id), E'\n') AS output
  FROM dispatch.job_status ORDER BY job_id;
SELECT type, ident, node, job_id FROM dispatch.resource_status ORDER BY node, type, ident;
SELECT pid IS NOT NULL AS scheduler_running, cycles, jobs_assigned FROM dispatch.scheduler_stats();
SELECT job_id, attempt, joblist, name, node, state, exit_code FROM dispatch.job_history ORDER BY job_id;
-- host metrics the agents sent meanwhile (every 2 s here; 10 s by default)
SELECT node, state, cpu_pct, mem_pct, disk_pct, load1, running_jobs, sampled_at IS NOT NULL AS sampled
  FROM dispatch.node_overview ORDER BY node;
SQL

# A data flow (docs/dataflow.md): split leaves line ranges as its result, one count job
# per range runs on either agent, sum reads every count from $DISPATCH_INPUTS.
echo "== submitting examples/mapreduce.yaml with dispatchctl: a map-reduce over chunks"
flow=$(as_user "'$root/ctl/dispatchctl' -d 'host=$demo port=$port dbname=postgres' submit -q '$root/examples/mapreduce.yaml'")
for i in $(seq 60); do
    flow_state=$(as_user "$bin/psql -X -At -h '$demo' -p $port -d postgres -c \"SELECT state FROM dispatch.joblists WHERE joblist_id = $flow\"")
    case $flow_state in succeeded|failed|cancelled) break;; esac
    sleep 0.5
done
psql_demo <<SQL
SELECT name, state, node, cell, result FROM dispatch.job_status WHERE joblist_id = $flow ORDER BY job_id;
-- the graph, as Graphviz DOT (psql -Atc '...' | dot -Tsvg > graph.svg)
SELECT dispatch.joblist_graph_dot($flow);
SQL
# Artefacts (docs/artefacts.md): agent "desk" watches a paper; a change rebuilds what
# depends on it, the latex/bibtex cycle iterated to a fixed point, on any agent.
echo "== artefacts: agent desk watches $demo/paper; rules latex and bibtex form a cycle"
as_user "mkdir -p '$demo/paper' && echo 'A paper that cites knuth.' > '$demo/paper/paper.tex' && echo '@book{knuth}' > '$demo/paper/refs.bib'"
psql_demo <<'SQL'
SELECT dispatch.bind_node('desk', 'worker');
SELECT dispatch.create_workspace('paper', 'demo', 'desk');
SET ROLE demo;
SELECT dispatch.create_rule('latex', '{"workspace": "paper", "inputs": ["paper.tex", "paper.aux", "paper.bbl"],
  "outputs": ["paper.pdf", "paper.aux"], "max_passes": 5,
  "job": {"command": "if [ -f paper.bbl ]; then s=resolved; else s=unresolved; fi; { grep cite paper.tex; echo $s; } > paper.aux; { cat paper.tex paper.bbl 2>/dev/null; echo $s; } > paper.pdf"}}') > 0 AS latex,
       dispatch.create_rule('bibtex', '{"workspace": "paper", "inputs": ["paper.aux", "refs.bib"],
  "outputs": ["paper.bbl"], "job": {"command": "{ grep cite paper.aux; cat refs.bib; } > paper.bbl"}}') > 0 AS bibtex;
SQL
start_agent desk --resource 'cpu=0' --watch "paper=$demo/paper"
wait_rebuilt() {
    for _ in $(seq 60); do
        n=$(as_user "$bin/psql -X -At -h '$demo' -p $port -d postgres -c \"SELECT count(*) FROM dispatch.joblists WHERE name = 'rebuild paper' AND state NOT IN ('queued', 'running')\"")
        [ "$n" -ge "$1" ] && break
        sleep 0.5
    done
}
wait_rebuilt 1
psql_demo <<'SQL'
SELECT path, state, rule, left(sha256, 12) AS sha256, nodes FROM dispatch.artefact_status ORDER BY path;
SELECT dispatch.artefact_graph_dot('paper');
SQL
echo "== editing refs.bib: the stale set, then the rebuild"
as_user "printf '%s\n' '@book{knuth, title={TAOCP}}' > '$demo/paper/refs.bib'"
sleep 0.3
psql_demo <<<"SELECT path, state, reason FROM dispatch.artefact_status ORDER BY path"
wait_rebuilt 2
psql_demo <<'SQL'
SELECT name, state, node, result FROM dispatch.job_status
 WHERE joblist_id = (SELECT max(joblist_id) FROM dispatch.joblists WHERE name = 'rebuild paper');
SELECT path, state, left(sha256, 12) AS sha256 FROM dispatch.artefact_status ORDER BY path;
SQL
if [ -t 0 ]; then
    echo "== joblist $state; the page is still up at http://127.0.0.1:$web_port/ (demo / $web_password)"
    read -r -p "== press Enter to stop the demo and clean up " _
elif [ "${DEMO_HOLD:-0}" -gt 0 ]; then
    echo "== joblist $state; holding the cluster for $DEMO_HOLD s at http://127.0.0.1:$web_port/"
    sleep "$DEMO_HOLD"
fi
echo "== demo finished: joblist $state; cleaning up"
