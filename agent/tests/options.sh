#!/bin/bash
# options.sh -- dispatch-agent's command line: every bad option exits 2 with a clear message.
# Needs no database: each case fails before connecting.  Run by `make check`.
set -u
agent=$(cd "$(dirname "$0")/.." && pwd)/dispatch-agent
pass=0
fail=0

# bad EXPECTED-MESSAGE-PART ARGS...: the agent must exit 2 and print the message part.
bad() {
	local want=$1 out rc
	shift
	out=$("$agent" "$@" 2>&1)
	rc=$?
	if [ $rc -eq 2 ] && [[ "$out" == *"$want"* ]]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: dispatch-agent $* -> exit $rc: $out (expected exit 2 and \"$want\")"
	fi
}

ok=(--dbname 'host=/nonexistent' --node w1)
bad "--dbname is required"
bad "--dbname is required" --node w1
bad "--node is required" --dbname x
bad "invalid node name \"-w\"" --dbname x --node -w
bad "invalid node name" --dbname x --node "w 1"
bad "invalid node name" --dbname x --node "$(printf 'n%.0s' {1..49})"
bad "invalid resource type \"GPU\"" "${ok[@]}" --resource GPU=0
bad "invalid resource type \"1gpu\"" "${ok[@]}" --resource 1gpu=0
bad "expected NAME=VALUE" "${ok[@]}" --resource gpu
bad "expected NAME=VALUE" "${ok[@]}" --resource =0
bad "unterminated \"[\"" "${ok[@]}" --resource 'gpu=[1-'
bad "range 3-1 is reversed" "${ok[@]}" --resource 'gpu=[3-1]'
bad "empty id list" "${ok[@]}" --resource 'gpu='
bad "empty id" "${ok[@]}" --resource 'gpu=,,'
bad "more than 4096 ids" "${ok[@]}" --resource 'cpu=[0-5000]'
bad "duplicate id" "${ok[@]}" --resource 'gpu=0,0'
bad "resource type \"cpu\" is given more than once" "${ok[@]}" --resource cpu=0 --resource cpu=1
bad "resource type \"gpu\" is given more than once" "${ok[@]}" --resource gpu=0 --amount gpu=2
bad "a positive integer is required" "${ok[@]}" --amount mem_mb=0
bad "a positive integer is required" "${ok[@]}" --amount mem_mb=12x
bad "a positive integer is required" "${ok[@]}" --amount mem_mb=99999999999999999999
bad "invalid label key \"os\"" "${ok[@]}" --label os=linux
bad "invalid label key \"a b\"" "${ok[@]}" --label 'a b=c'
bad "label \"zone\" is given more than once" "${ok[@]}" --label zone=a --label zone=b
bad "--label must be valid UTF-8" "${ok[@]}" --label "zone=$(printf 'a\xff')"
bad "--label must be valid UTF-8" "${ok[@]}" --label "zone=$(printf '\xc0\xaf')"
bad "--resource must be valid UTF-8" "${ok[@]}" --resource "gpu=$(printf 'g\xc3')"
bad "a positive integer is required" "${ok[@]}" --heartbeat-ms 0
bad "a positive integer is required" "${ok[@]}" --kill-grace-ms -5
bad "a number of seconds from 0 to 86400 is required" "${ok[@]}" --metrics-interval -1
bad "a number of seconds from 0 to 86400 is required" "${ok[@]}" --metrics-interval 86401
bad "a number of seconds from 0 to 86400 is required" "${ok[@]}" --metrics-interval 1.5
bad "a number of seconds from 0 to 86400 is required" "${ok[@]}" --metrics-interval 10s
bad "a number of seconds from 0 to 86400 is required" "${ok[@]}" --metrics-interval ''
bad "a number of seconds from 0 to 86400 is required" "${ok[@]}" --metrics-interval 99999999999999999999
bad "requires a value" "${ok[@]}" --metrics-interval
bad "--history-file must not be empty" "${ok[@]}" --history-file ''
bad "a number of kilobytes from 16 to 67108864 is required" "${ok[@]}" --metrics-spool-max 15
bad "a number of kilobytes from 16 to 67108864 is required" "${ok[@]}" --metrics-spool-max 67108865
bad "a number of kilobytes from 16 to 67108864 is required" "${ok[@]}" --metrics-spool-max 1MB
bad "invalid value \"/nonexistent\" for --plugin-dir: No such file or directory" "${ok[@]}" --plugin-dir /nonexistent
bad "invalid value \"/etc/passwd\" for --plugin-dir: not a directory" "${ok[@]}" --plugin-dir /etc/passwd
bad "--plugin-dir cannot be used with --metrics-interval 0" "${ok[@]}" --metrics-interval 0 --plugin-dir /tmp
bad "--plugin-dir cannot be used with --metrics-interval 0" --print-metrics --plugin-dir /tmp --metrics-interval 0
bad "unexpected argument \"now\"" --print-metrics now
# --watch, --watch-settle-ms, --follow
bad "expected NAME=VALUE" "${ok[@]}" --watch /tmp
bad "expected NAME=VALUE" "${ok[@]}" --watch =/tmp
bad "invalid workspace name \"-src\" for --watch" "${ok[@]}" --watch -src=/tmp
bad "invalid workspace name \"a b\" for --watch" "${ok[@]}" --watch 'a b=/tmp'
bad "invalid workspace name" "${ok[@]}" --watch "$(printf 'w%.0s' {1..64})=/tmp"
bad "--watch must not be empty" "${ok[@]}" --watch src=
bad "invalid value \"/nonexistent\" for --watch: No such file or directory" "${ok[@]}" --watch src=/nonexistent
bad "invalid value \"/etc/passwd\" for --watch: not a directory" "${ok[@]}" --watch src=/etc/passwd
bad "workspace \"src\" is given more than once" "${ok[@]}" --watch src=/tmp --watch src=/var
bad "a number of milliseconds from 1 to 600000 is required" "${ok[@]}" --watch-settle-ms 0
bad "a number of milliseconds from 1 to 600000 is required" "${ok[@]}" --watch-settle-ms 600001
bad "a number of milliseconds from 1 to 600000 is required" "${ok[@]}" --watch-settle-ms 20ms
bad "expected NAME=VALUE" "${ok[@]}" --watch src=/tmp --follow '*.log'
bad "--follow must not be empty" "${ok[@]}" --watch src=/tmp --follow src=
bad "the pattern is relative to the workspace's directory" "${ok[@]}" --watch src=/tmp --follow 'src=/tmp/*.log'
bad "--follow names workspace \"logs\", which no --watch gives" "${ok[@]}" --watch src=/tmp --follow 'logs=*.log'
bad "requires a value" "${ok[@]}" --watch
bad "unrecognized option" "${ok[@]}" --bogus
bad "requires a value" "${ok[@]}" --workdir
bad "unexpected argument \"extra\"" "${ok[@]}" extra
if [ "$(id -u)" = 0 ]; then
	bad "refusing to run as root: jobs would run as root too" "${ok[@]}" --insecure-run-jobs-as-agent
	bad "refusing to run as root: run the agent as an unprivileged user" "${ok[@]}" --job-user nobody
fi

# the job user: required (or the insecure flag), never root or the agent, and the agent needs its capabilities
bad "no job user: give --job-user NAME" "${ok[@]}" --allow-root
bad "--job-user and --insecure-run-jobs-as-agent cannot be used together" "${ok[@]}" --job-user nobody --insecure-run-jobs-as-agent
bad "--job-user must not be empty" "${ok[@]}" --job-user ''
bad "job user \"no-such-user-x\" does not exist" "${ok[@]}" --allow-root --job-user no-such-user-x
bad "job user \"root\" cannot be root" "${ok[@]}" --allow-root --job-user root
if [ "$(id -u)" != 0 ]; then
	bad "job user \"$(id -un)\" cannot be the agent's own user" "${ok[@]}" --job-user "$(id -un)"
	# a copy has no file capabilities (cp drops them), whatever the binary was given
	nocaps=$(mktemp -d)
	cp "$agent" "$nocaps/dispatch-agent"
	real=$agent
	agent=$nocaps/dispatch-agent
	bad "cannot run jobs as \"nobody\": the agent lacks the capabilities CAP_SETUID, CAP_SETGID, CAP_CHOWN" "${ok[@]}" --job-user nobody
	agent=$real
	rm -rf "$nocaps"
fi

for opt in --dbname --node --resource --amount --label --workdir --heartbeat-ms --kill-grace-ms \
	--keep-workdirs --history-file --metrics-interval --metrics-spool-max --plugin-dir --print-metrics --allow-root \
	--job-user --insecure-run-jobs-as-agent --watch --watch-settle-ms --follow --verbose --help --version; do
	if "$agent" --help | grep -q -- "$opt"; then pass=$((pass + 1)); else
		fail=$((fail + 1)); echo "FAIL: --help does not document $opt"; fi
done
[ "$("$agent" --version)" = "dispatch-agent 0.1.0" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --version"; }

# --print-metrics needs no database: one JSON object with rates (after its 1 s), plugins included
plugins=$(mktemp -d)
printf '#!/bin/sh\necho "options_test{from=\\"plugin\\"} 42"\n' > "$plugins/probe.sh"
chmod 755 "$plugins/probe.sh"
out=$("$agent" --print-metrics --plugin-dir "$plugins" 2>&1)
rc=$?
rm -rf "$plugins"
if [ $rc -eq 0 ] && [[ "$out" == '{"t":'*'"interval_ms":'*'"cpu":{"count":'*'"mem":{"total":'* ]] &&
	[[ "$out" == *'"plugins":[{"plugin":"probe.sh","name":"options_test","labels":{"from":"plugin"},"value":42}]'* ]] &&
	[[ "$out" == *'"problems":[]}' ]] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then
	pass=$((pass + 1))
else
	fail=$((fail + 1))
	echo "FAIL: dispatch-agent --print-metrics -> exit $rc: $out"
fi

echo "options: $pass passed, $fail failed"
[ $fail -eq 0 ]
