#!/usr/bin/env bash
# Share of the step loop spent in the inf/NaN check of every state value (Sim::check_finite,
# every FINITE_CHECK_EVERY steps), from callgrind instruction counts of a CUBA run (0.5 s,
# release build): deterministic, unlike timings on a shared machine.
# Usage: benches/callgrind_finite_check.sh   (needs valgrind)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build --release -q)
valgrind --tool=callgrind --callgrind-out-file="$work/cg" \
  "${CARGO_TARGET_DIR:-$root/target}/release/neurograph" run "$root/specs/cuba.ng" --duration 0.5s --threads 1 --quiet \
  --out "$work/trace" 2>/dev/null
inclusive() { # function name -> inclusive instruction count
  callgrind_annotate --inclusive=yes --threshold=100 "$work/cg" | awk -v f="$1" \
    '$0 ~ f && $0 !~ /=>/ && !n {gsub(",", "", $1); print $1; n = 1}'
}
run=$(inclusive 'sim::Sim::run ')
check=$(inclusive 'sim::Sim::check_finite ')
echo "CUBA 0.5 s, --backend jit: Sim::run $run instructions, Sim::check_finite $check"
echo "  check share of the step loop: $(echo "scale=3; 100 * $check / $run" | bc | sed "s/^\./0./") %"
