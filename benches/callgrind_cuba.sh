#!/usr/bin/env bash
# Instructions per CUBA step with the JIT backend, and the share of the largest generated
# function (the fused population kernel), from two callgrind runs (0.5 s and 1 s simulated)
# whose difference leaves out start-up. Deterministic, unlike timings on a shared machine.
# Usage: benches/callgrind_cuba.sh   (needs valgrind)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build --release -q)
ng="${CARGO_TARGET_DIR:-$root/target}/release/neurograph"
profile() { # seconds -> "total top_jit_function"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" \
    "$ng" run "$root/specs/cuba.ng" --duration "$1s" --threads 1 --quiet --out "$work/trace-$1" 2>/dev/null
  local total top
  total=$(callgrind_annotate "$work/cg.$1" | awk '/PROGRAM TOTALS/ && !n {gsub(",", "", $1); print $1; n = 1}')
  # Generated code has no symbol: the largest `???:0x...` entry is the fused kernel.
  top=$(callgrind_annotate "$work/cg.$1" | awk '/\?\?\?:0x/ && !n {gsub(",", "", $1); print $1; n = 1}')
  echo "$total $top"
}
read -r t1 f1 < <(profile 0.5)
read -r t2 f2 < <(profile 1)
steps=5000 # the difference between the runs, at dt = 0.1 ms
echo "CUBA N=4000, --backend jit, per step (1 s run minus 0.5 s run):"
echo "  instructions per step:          $(( (t2 - t1) / steps ))"
echo "  in the fused population kernel: $(( (f2 - f1) / steps )) ($(( 100 * (f2 - f1) / (t2 - t1) )) %), $(echo "scale=2; ($f2 - $f1) / $steps / 4000" | bc) per neuron"
