#!/usr/bin/env bash
# One thread against two on COBAHH (1 s) and on CUBA scaled to N = 40,000 (the bundled spec with
# 32,000 + 8,000 cells and p = 0.002, so in-degree 80 as at N = 4,000; 2 s): the fastest
# simulation loop of three runs each, the ratio, and whether the traces are identical.
# Usage: benches/threads.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build --release -q)
ng="${CARGO_TARGET_DIR:-$root/target}/release/neurograph"
sed -e 's/LIF\[3200\]/LIF[32000]/; s/LIF\[800\]/LIF[8000]/; s/bernoulli(0.02)/bernoulli(0.002)/g' \
  "$root/specs/cuba.ng" > "$work/cuba40k.ng"
same_trace() { # every file, and the manifests but for the start time (`started_utc`)
  diff -r -q -x manifest.json "$1" "$2" >/dev/null &&
    diff <(grep -v started_utc "$1/manifest.json") <(grep -v started_utc "$2/manifest.json") >/dev/null
}
best() { # spec seconds threads -> fastest loop seconds of three (trace in $work/t-THREADS)
  for _ in 1 2 3; do
    "$ng" run "$1" --duration "$2s" --threads "$3" --out "$work/t-$3" |
      sed -n 's/^setup [0-9.]* s, simulation \([0-9.]*\) s wall.*/\1/p'
  done | sort -g | head -1
}
printf '%-10s %6s %12s %12s %7s  %s\n' network "bio s" "1 thread s" "2 threads s" ratio traces
for entry in "cobahh:$root/specs/cobahh.ng:1" "cuba40k:$work/cuba40k.ng:2"; do
  IFS=: read -r name spec seconds <<<"$entry"
  one=$(best "$spec" "$seconds" 1)
  two=$(best "$spec" "$seconds" 2)
  same=$(same_trace "$work/t-1" "$work/t-2" && echo identical || echo DIFFER)
  printf '%-10s %6s %12s %12s %6sx  %s\n' "$name" "$seconds" "$one" "$two" \
    "$(echo "scale=2; $one / $two" | bc)" "$same"
done
