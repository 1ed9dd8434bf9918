#!/bin/bash
# iterate.sh -- `dispatch-agent iterate` as a real process: a fake "latex" whose .aux settles
# after one pass, one that never settles, a failing command, the job's result, and every bad
# argument (exit 2, checked before anything runs).  Needs no database.  Run by `make check`.
set -u
agent=$(cd "$(dirname "$0")/.." && pwd)/dispatch-agent
pass=0
fail=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# expect NAME RC MESSAGE-PART RESULT-JSON|- ARGS...: iterate (in a fresh $dir/NAME) must exit RC,
# print the message part on stderr and, unless RESULT-JSON is -, leave that result.
expect() {
	local name=$1 want_rc=$2 want=$3 want_result=$4 out rc result
	shift 4
	mkdir "$dir/$name"
	out=$(cd "$dir/$name" && DISPATCH_RESULT="$dir/$name.result" "$agent" iterate "$@" 2>&1 >/dev/null)
	rc=$?
	result=$(cat "$dir/$name.result" 2>/dev/null || echo -)
	if [ $rc -eq "$want_rc" ] && [[ "$out" == *"$want"* ]] && [ "$result" = "$want_result" ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: $name: iterate $* -> exit $rc: $out, result $result (expected exit $want_rc, \"$want\", $want_result)"
	fi
}

# a fake latex: the first run writes the .aux it will keep writing, the pdf always follows the aux
latex='n=$(cat runs 2>/dev/null || echo 0); echo $((n + 1)) > runs; echo "labels: 3" > paper.aux; cp paper.aux paper.pdf'
expect settles 0 "dispatch-agent iterate: fixed point after 2 passes" \
	'{"passes":2,"converged":true,"changed":[]}' --output paper.aux --output paper.pdf -- "$latex"
[ "$(cat "$dir/settles/runs")" = 2 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: settles ran $(cat "$dir/settles/runs") passes"; }

# the .aux fetched from the last build is already right: one pass
mkdir "$dir/fetched"
printf 'labels: 3\n' > "$dir/fetched/paper.aux"
out=$(cd "$dir/fetched" && "$agent" iterate --output paper.aux -- "$latex" 2>&1)
[ $? -eq 0 ] && [ "$out" = "dispatch-agent iterate: fixed point after 1 pass" ] && pass=$((pass + 1)) ||
	{ fail=$((fail + 1)); echo "FAIL: fetched: $out"; }

# an aux that changes every time: no fixed point, exit 3, and it ran exactly --max-passes passes
expect never 3 'dispatch-agent iterate: no fixed point after 4 passes: "paper.aux" still changed' \
	'{"passes":4,"converged":false,"changed":["paper.aux"]}' \
	--max-passes 4 --output paper.aux --output stable -- 'date +%s%N >> paper.aux; echo s > stable'
[ "$(wc -l < "$dir/never/paper.aux")" = 4 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: never ran $(wc -l < "$dir/never/paper.aux") passes"; }
expect default-max 3 'no fixed point after 10 passes' \
	'{"passes":10,"converged":false,"changed":["a"]}' --output=a -- 'date +%N >> a'

# commands run in order, each pass; a failing one stops it with its own status and no result
expect order 0 "fixed point after 2 passes" '{"passes":2,"converged":true,"changed":[]}' \
	--output log2 -- 'echo one >> log' 'tail -1 log > log2; echo two >> log'
[ "$(tr '\n' ' ' < "$dir/order/log")" = "one two one two " ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: order: $(cat "$dir/order/log")"; }
expect fails 5 'pass 2: command "[ -e x ] && exit 5; touch x" exited with status 5' - \
	--output x -- 'true' '[ -e x ] && exit 5; touch x'
expect killed 137 "was killed by signal 9" - --output x -- 'kill -9 $$'
expect unreadable 1 'dispatch-agent iterate: could not' - --output d -- 'mkdir -p d'

# bad arguments: exit 2 before any command runs
expect no-output 2 "at least one --output is required" - -- 'touch ran'
expect no-dashes 2 '"--" and the commands are missing' - --output x
expect no-command 2 'no command after "--"' - --output x --
expect empty-command 2 "a command must not be empty" - --output x -- ''
expect passes-0 2 "--max-passes must be an integer from 1 to 100, not \"0\"" - --max-passes 0 --output x -- 'touch ran'
expect passes-101 2 "--max-passes must be an integer from 1 to 100" - --max-passes 101 --output x -- 'touch ran'
expect passes-text 2 "--max-passes must be an integer from 1 to 100" - --max-passes=ten --output x -- 'touch ran'
expect passes-empty 2 "--max-passes must be an integer from 1 to 100" - --max-passes= --output x -- 'touch ran'
expect passes-missing 2 'option "--max-passes" requires a value' - --output x --max-passes
expect output-missing 2 'option "--output" requires a value' - --output
expect output-empty 2 "--output must not be empty" - --output '' -- 'touch ran'
expect output-twice 2 'output "x" is given more than once' - --output x --output=x -- 'touch ran'
expect unknown 2 'unexpected argument "--bogus" before "--"' - --output x --bogus -- 'touch ran'
expect positional 2 'unexpected argument "latex" before "--"' - --output x latex
expect usage 2 "usage: dispatch-agent iterate [--max-passes N] --output PATH... -- COMMAND..." - --output x
commands=()
for i in $(seq 101); do commands+=("touch ran"); done
expect too-many 2 "at most 100 commands can be given" - --output x -- "${commands[@]}"
for d in no-output passes-0 output-empty unknown too-many; do
	[ -e "$dir/$d/ran" ] && { fail=$((fail + 1)); echo "FAIL: $d ran a command"; } || pass=$((pass + 1))
done
"$agent" --help | grep -q -- "dispatch-agent iterate \[--max-passes N\] --output PATH... -- COMMAND..." &&
	pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --help does not show iterate"; }

echo "iterate: $pass passed, $fail failed"
[ $fail -eq 0 ]
