#!/usr/bin/env bash
# metrics_ingest.sh: samples per second through dispatch.agent_metrics(), by batch size
# and by number of concurrent agents.
#
# Starts a throwaway PostgreSQL 15 with pg_dispatch (installed beforehand) and
# generates, before any timing, the batches every simulated agent will send
# (bench/metrics_sample.sql: the samples of metrics_storage.sh, 92 metrics on average).
# Each agent is one psql process with its own connection and its own new node, so the
# first batches also create series and layouts while the others do the same: the path
# that used to deadlock.  Two series:
#   - one agent, batches of 1, 10, 100 and BATCH samples: the baseline is the batch of
#     one (an agent that keeps up sends each sample alone), the ratio shows what a
#     batch buys;
#   - 1, 8 and 32 agents at once, batches of BATCH: the baseline is one agent.
# Every agent sends SAMPLES samples in all (SAMPLES / batch calls); the figure is all
# samples stored over the wall-clock time from the first call to the last commit, and
# the bench checks that every sample was stored once.
#
# Knobs: SAMPLES (2000 per agent), BATCH (500, the agent's batch), PORT.
# Run as an unprivileged user (PostgreSQL refuses root):  bash bench/metrics_ingest.sh
set -euo pipefail
samples=${SAMPLES:-2000}
batch=${BATCH:-500}
port=${PORT:-54338}
source "$(dirname "$0")/metrics_server.sh"
# The batches of every run: run r, agent a, call k; samples 10 s apart ending now.
psql -c "CREATE TABLE batches (run text, agent int, k int, samples jsonb, PRIMARY KEY (run, agent, k))"

# Generates the batches of run $1: $2 agents, batches of $3 samples.
generate() {
	psql -v run="$1" -v agents="$2" -v size="$3" -v total="$samples" <<'SQL'
SELECT setseed(0.25) \g /dev/null
SELECT dispatch.agent_register(:'run' || '_' || a, '{}') FROM generate_series(1, :agents) a \g /dev/null
INSERT INTO batches
SELECT :'run', a, i / :size, jsonb_agg(bench_sample(a, now() - (:total - i) * interval '10 s') ORDER BY i)
  FROM generate_series(1, :agents) a, generate_series(0, :total - 1) i
 GROUP BY a, i / :size;
SQL
}

# Runs run $1 with $2 agents at once; prints its samples per second.
run() {
	local t0 t1 stored
	for a in $(seq 1 "$2"); do
		psql -c "SELECT format('SELECT dispatch.agent_metrics(%L, samples) FROM batches WHERE run = %L AND agent = %s AND k = %s;',
		                       '$1_' || $a, '$1', $a, k)
		           FROM batches WHERE run = '$1' AND agent = $a ORDER BY k" > "$dir/$1_$a.sql"
	done
	t0=$(date +%s.%N)
	for a in $(seq 1 "$2"); do
		psql -f "$dir/$1_$a.sql" > /dev/null &
	done
	wait
	t1=$(date +%s.%N)
	stored=$(psql -c "SELECT count(*) FROM dispatch.metric_recent r JOIN dispatch.metric_nodes m USING (node_id)
	                   WHERE m.node LIKE '$1\_%'")
	[ "$stored" -eq $(( $2 * samples )) ] || { echo "run $1: $stored samples stored, not $(( $2 * samples ))" >&2; exit 1; }
	echo "$stored $t0 $t1" | awk '{ printf "%.0f", $1 / ($3 - $2) }'
}

sizes=$(printf "%s\n" 1 10 100 "$batch" | sort -nu | tr "\n" " ")
for s in $sizes; do generate "b$s" 1 "$s"; done
for c in 8 32; do generate "c$c" "$c" "$batch"; done

declare -A rate
for s in $sizes; do rate[b$s]=$(run "b$s" 1); done
for c in 8 32; do rate[c$c]=$(run "c$c" "$c"); done
rate[c1]=${rate[b$batch]}

echo "one agent, $samples samples, by batch size (baseline: batches of 1):"
for s in $sizes; do
	printf '  batches of %4s: %7s samples/s, ratio %s\n' "$s" "${rate[b$s]}" \
		"$(awk -v a="${rate[b$s]}" -v b="${rate[b1]}" 'BEGIN { printf "%.1f", a / b }')"
done
echo "concurrent agents, $samples samples each, batches of $batch (baseline: one agent):"
for c in 1 8 32; do
	printf '  %2s agents: %7s samples/s, ratio %s\n' "$c" "${rate[c$c]}" \
		"$(awk -v a="${rate[c$c]}" -v b="${rate[c1]}" 'BEGIN { printf "%.1f", a / b }')"
done
echo "every sample stored once; bench took $(( $(date +%s) - started )) s"
