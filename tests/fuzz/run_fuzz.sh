#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time from the seed corpus and prints
# the figures (executions, seconds, executions per second, coverage).
# usage: run_fuzz.sh TARGET SECONDS SEED_DIR DICT
set -euo pipefail
target=$1 seconds=$2 seeds=$3 dict=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/fuzz.log
mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus"/ 2>/dev/null || true
set +e
"$target" -max_total_time="$seconds" -dict="$dict" -print_final_stats=1 \
  -artifact_prefix="$work/" -rss_limit_mb=2048 "$work/corpus" >"$log" 2>&1
rc=$?
set -e
grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|cov:' "$log" | tail -5
if [ $rc -ne 0 ]; then
  echo "fuzzer failed (exit $rc):"
  tail -60 "$log"
  for crash in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
    [ -e "$crash" ] && { echo "input: $crash"; xxd "$crash" | head -20; }
  done
  exit 1
fi
echo "$(basename "$target"): no crash in ${seconds}s"
