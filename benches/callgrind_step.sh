#!/usr/bin/env bash
# Instructions per step and per synaptic event of a spec with the JIT backend, from two
# callgrind runs (T and 2T simulated) whose difference leaves out set-up and trace writing.
# Deterministic, unlike timings on a shared machine. NG=path compares another build.
# Usage: benches/callgrind_step.sh [SPEC] [T_SECONDS]   (default specs/coba.ng 0.25; needs valgrind)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
spec=$(realpath "${1:-$root/specs/coba.ng}")
t=${2:-0.25}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${NG:-}" ]; then
  (cd "$root" && cargo build --release -q)
  NG="${CARGO_TARGET_DIR:-$root/target}/release/neurograph"
fi
profile() { # seconds -> "instructions events steps"
  local out total
  out=$(valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" \
    "$NG" run "$spec" --backend jit --threads 1 --duration "$1s" --out "$work/trace-$1" 2>/dev/null)
  total=$(callgrind_annotate "$work/cg.$1" | awk '/PROGRAM TOTALS/ && !n {gsub(",", "", $1); print $1; n = 1}')
  echo "$total $(sed -n 's/.* \([0-9]*\) synaptic events$/\1/p' <<<"$out")"
}
t2=$(awk -v t="$t" 'BEGIN { print 2 * t }')
read -r i1 e1 < <(profile "$t")
read -r i2 e2 < <(profile "$t2")
dt=$(sed -n 's/.*dt = \([0-9.]*\) ms.*/\1/p' "$spec" | head -1)
steps=$(awk -v t="$t" -v dt="$dt" 'BEGIN { printf "%d", t * 1000 / dt + 0.5 }')
echo "$(basename "$spec"), --backend jit, the second $t s of a $t2 s run ($steps steps, $((e2 - e1)) synaptic events):"
echo "  instructions per step:  $(( (i2 - i1) / steps ))"
if [ $((e2 - e1)) -gt 0 ]; then
  echo "  per synaptic event (all instructions of the step / events): $(echo "scale=1; ($i2 - $i1) / ($e2 - $e1)" | bc)"
fi
