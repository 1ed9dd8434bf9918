#!/usr/bin/env bash
# agent_footprint.sh: memory and CPU of dispatch-agent against prometheus-node-exporter.
#
# Runs, side by side for SECONDS_TOTAL (180) seconds:
#   - dispatch-agent (agent/dispatch-agent of this tree) with --metrics-interval 10,
#     connected to a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand,
#     e.g. by scripts/setup.sh) under its own role in dispatch_agent, no jobs submitted;
#   - Debian's prometheus-node-exporter with its default collectors on a free loopback
#     port, scraped with curl every 10 s (what a Prometheus server would do).
# Every second it reads, for each of the two, the process tree under the process it
# started (the process and all its descendants: a sampler child, plugins, nvidia-smi;
# no jobs run here, so every descendant is monitoring overhead):
#   - RSS: the sum of VmRSS from /proc/PID/status over the tree (pages shared between a
#     parent and its forked child are counted in each, as RSS does);
#   - PSS, for information: the same sum of Pss from /proc/PID/smaps_rollup, which
#     splits shared pages between the processes that share them;
#   - CPU: the sum over the live tree of utime + stime + cutime + cstime from
#     /proc/PID/stat: cutime and cstime hold the children a process has reaped (the
#     kernel adds a reaped child's own cutime too), so a child that came and went
#     between two readings is counted by its parent and nothing is counted twice.
# CPU is the difference between the first and the last reading; the window opens once
# the agent is online and node_exporter has answered a first scrape, so start-up costs
# are left out; its resolution is one clock tick (getconf CLK_TCK: 10 ms).  The cost on
# the other end (the PostgreSQL backend storing samples, the scraper) is not counted for
# either.  Prints average and maximum RSS, CPU seconds and % of one core for both, and
# the ratios agent / node_exporter.
#
# Knobs: SECONDS_TOTAL (180), PORT (PostgreSQL, 54336), AGENT (the agent binary).  As
# root it installs prometheus-node-exporter when it is missing, then runs itself as
# BENCH_USER (postgres); as any other user it needs the package already installed.
set -euo pipefail
self=$(realpath "$0")
here=$(dirname "$self")
exporter=/usr/bin/prometheus-node-exporter

if [ "$(id -u)" -eq 0 ]; then
    if [ ! -x "$exporter" ]; then
        echo "installing prometheus-node-exporter"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            prometheus-node-exporter >/dev/null
    fi
    # PostgreSQL refuses root, and the agent would need --allow-root.
    exec runuser -u "${BENCH_USER:-postgres}" -- bash "$self"
fi
if [ ! -x "$exporter" ]; then
    echo "agent_footprint.sh: $exporter not found" >&2
    echo "Install it with: sudo apt-get install prometheus-node-exporter (or run this as root)" >&2
    exit 1
fi
agent=${AGENT:-$here/../agent/dispatch-agent}
if [ ! -x "$agent" ]; then
    echo "agent_footprint.sh: $agent not found; build it with make -C agent" >&2
    exit 1
fi

bin=/usr/lib/postgresql/15/bin
total=${SECONDS_TOTAL:-180}
port=${PORT:-54336}
dir=$(mktemp -d /tmp/pg_dispatch-bench.XXXXXX)
agent_pid=
exporter_pid=
cleanup() {
    set +e      # a stopped process's exit status must not cut the cleanup short
    [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [ -n "$exporter_pid" ] && kill -TERM "$exporter_pid" 2>/dev/null && wait "$exporter_pid" 2>/dev/null
    $bin/pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

bash "$here/../scripts/cluster.sh" "$dir" "$port" 1h
psql() { $bin/psql -X -q -At -h "$dir" -p "$port" -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql -c 'CREATE ROLE agent_bench LOGIN IN ROLE dispatch_agent'

# The agent, under its own role, as a service would start it.  No job runs here, so it
# needs no job user (and no capabilities to switch to one).
mkdir "$dir/work"
"$agent" --dbname "host=$dir port=$port dbname=postgres user=agent_bench" --node bench \
    --workdir "$dir/work" --metrics-interval 10 --insecure-run-jobs-as-agent \
    >"$dir/agent.log" 2>&1 &
agent_pid=$!

# node_exporter on the first free loopback port from 9100 on.
nport=9100
while (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null; do
    nport=$((nport + 1))
done
"$exporter" --web.listen-address="127.0.0.1:$nport" >"$dir/exporter.log" 2>&1 &
exporter_pid=$!
url=http://127.0.0.1:$nport/metrics

# Ready: the agent's node is online and node_exporter answers, within 30 s.
for _ in $(seq 300); do
    online=$(psql -c "SELECT count(*) FROM dispatch.node_status WHERE node = 'bench' AND state = 'online'")
    if [ "$online" = 1 ] && curl -sf -o /dev/null "$url"; then
        break
    fi
    if ! kill -0 "$agent_pid" 2>/dev/null || ! kill -0 "$exporter_pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ "$online" != 1 ] || ! curl -sf -o "$dir/scrape" "$url"; then
    echo "agent_footprint.sh: the agent or node_exporter did not start" >&2
    tail -n 20 "$dir/agent.log" "$dir/exporter.log" >&2
    exit 1
fi

# Prints "RSS_kB CPU_ticks processes PSS_kB" for the tree under pid $1 (parsing /proc/PID/stat
# after the last ')', since the command name may hold spaces and parentheses).
tree() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '
        { pid = $1; sub(/^.*\) /, ""); parent[pid] = $2; ticks[pid] = $12 + $13 + $14 + $15 }
        END {
            in_tree[root] = 1; n = 1
            do {        # add the children of what is in the tree until nothing changes
                grew = 0
                for (p in parent)
                    if (!(p in in_tree) && (parent[p] in in_tree)) { in_tree[p] = 1; grew = 1; n++ }
            } while (grew)
            for (p in in_tree) {
                if (!(p in ticks)) { n--; continue }
                cpu += ticks[p]
                f = "/proc/" p "/status"
                while ((getline line < f) > 0)
                    if (line ~ /^VmRSS:/) { split(line, a); rss += a[2] }
                close(f)
                f = "/proc/" p "/smaps_rollup"
                while ((getline line < f) > 0)
                    if (line ~ /^Pss:/) { split(line, a); pss += a[2] }
                close(f)
            }
            printf "%d %d %d %d\n", rss, cpu, n, pss
        }'
}

hz=$(getconf CLK_TCK)
start=$(date +%s.%N)
read -r _ a_cpu0 _ _ < <(tree "$agent_pid")
read -r _ e_cpu0 _ _ < <(tree "$exporter_pid")
samples0=$(psql -c "SELECT count(*) FROM dispatch.metric_samples s
                      JOIN dispatch.metric_nodes m USING (node_id) WHERE m.node = 'bench'")
: >"$dir/readings"
scrapes=0
for ((tick = 0; ; tick++)); do
    if ((tick % 10 == 0)); then
        curl -sf -o "$dir/scrape" "$url" && scrapes=$((scrapes + 1))
    fi
    for pid in "$agent_pid" "$exporter_pid"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "agent_footprint.sh: process $pid ended during the run" >&2
            tail -n 20 "$dir/agent.log" "$dir/exporter.log" >&2
            exit 1
        fi
    done
    echo "$(tree "$agent_pid") $(tree "$exporter_pid")" >>"$dir/readings"
    now=$(date +%s.%N)
    awk -v s="$start" -v n="$now" -v t="$total" 'BEGIN { exit !(n - s >= t) }' && break
    sleep 1
done
elapsed=$(awk -v s="$start" -v n="$now" 'BEGIN { print n - s }')
samples=$(psql -c "SELECT count(*) FROM dispatch.metric_samples s
                     JOIN dispatch.metric_nodes m USING (node_id) WHERE m.node = 'bench'")
series=$(grep -vc '^#' "$dir/scrape" || true)

echo "window: $(printf '%.0f' "$elapsed") s, $(wc -l <"$dir/readings") readings of both process trees, 1 per second"
echo "dispatch-agent: $("$agent" --version 2>&1 | head -n 1), --metrics-interval 10; samples it stored meanwhile: $((samples - samples0))"
echo "node_exporter: $("$exporter" --version 2>&1 | head -n 1 | sed 's/, version / /; s/ (.*//'), default collectors; $scrapes scrapes of $series series, $(( $(wc -c <"$dir/scrape") / 1024 )) kB each"
awk -v hz="$hz" -v el="$elapsed" -v a0="$a_cpu0" -v e0="$e_cpu0" '
    { ar += $1; if ($1 > am) am = $1; ac = $2; if ($3 > an) an = $3; ap += $4
      er += $5; if ($5 > em) em = $5; ec = $6; if ($7 > en) en = $7; ep += $8; k++ }
    END {
        acpu = (ac - a0) / hz; ecpu = (ec - e0) / hz
        f = "%-15s RSS avg %6d kB, max %6d kB (PSS avg %6d kB); CPU %6.2f s = %5.2f %% of one core; processes at most %d\n"
        printf f, "dispatch-agent:", ar / k, am, ap / k, acpu, 100 * acpu / el, an
        printf f, "node_exporter:", er / k, em, ep / k, ecpu, 100 * ecpu / el, en
        printf "ratio (agent / node_exporter): RSS avg %.2f, RSS max %.2f, CPU %s\n",
               (ar / k) / (er / k), am / em, (ecpu > 0 ? sprintf("%.2f", acpu / ecpu) : "n/a")
    }' "$dir/readings"
