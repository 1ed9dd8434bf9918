#!/usr/bin/env bash
# watch_bench.sh: what the file watcher costs, against baselines taken in the same run.
#
#   (a) digest_file() (OpenSSL's SHA-256 through the agent's digest.c) on one file of
#       WATCH_BENCH_MB MiB (default 1024, random bytes, read from the page cache),
#       against sha256sum on the same file: MB/s of both and the ratio;
#   (b) the watcher's CPU (user + sys) while a child writes one file in a watched dir
#       at full speed for WATCH_BENCH_SECONDS (default 10; 64 KiB writes, starting over
#       every WATCH_BENCH_WRITE_MB, default 256, so the disk holds little), against the
#       writer's own CPU, and the number of digests the watcher computed (1: after the end).
# Figures and ratios only; nothing asserts a time.   bash bench/watch_bench.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mb=${WATCH_BENCH_MB:-1024}
seconds=${WATCH_BENCH_SECONDS:-10}
write_mb=${WATCH_BENCH_WRITE_MB:-256}
make -s -C "$here" watch_bench >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/watch_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

head -c "$((mb * 1024 * 1024))" /dev/urandom >"$tmp/data"
cat "$tmp/data" >/dev/null     # both read from the page cache
read -r bytes ours hex < <("$here/watch_bench" hash "$tmp/data")
t0=$(date +%s.%N)
theirs_hex=$(sha256sum "$tmp/data" | cut -d' ' -f1)
t1=$(date +%s.%N)
[ "$hex" = "$theirs_hex" ] || { echo "digest_file and sha256sum disagree: $hex $theirs_hex"; exit 1; }
awk -v b="$bytes" -v a="$ours" -v t0="$t0" -v t1="$t1" 'BEGIN {
    mine = b / 1e6 / a; base = b / 1e6 / (t1 - t0)
    printf "hash %d MiB: digest_file %.0f MB/s, sha256sum %.0f MB/s, ratio %.2f\n", b / 1048576, mine, base, mine / base }'
rm -f "$tmp/data"

read -r watcher writer hashes < <("$here/watch_bench" write "$tmp" "$seconds" "$write_mb")
awk -v w="$watcher" -v c="$writer" -v h="$hashes" -v s="$seconds" 'BEGIN {
    printf "write %d s at full speed: watcher CPU %.3f s, writer CPU %.3f s, ratio %.3f; digests %d\n", s, w, c, w / c, h }'
