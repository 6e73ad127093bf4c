#!/usr/bin/env bash
# Simulation-loop seconds of the bundled networks with each backend, the fastest of two runs
# (the machine is shared): COBA, COBAHH and the tripartite astrocyte network for 1 s, STDP
# for 10 s.   Usage: benches/networks.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build --release -q)
ng="${CARGO_TARGET_DIR:-$root/target}/release/neurograph"
loop_s() { # spec seconds backend -> simulation seconds from the run summary
  "$ng" run "$root/specs/$1.ng" --duration "$2s" --backend "$3" --threads 1 --out "$work/t" |
    sed -n 's/^setup [0-9.]* s, simulation \([0-9.]*\) s wall.*/\1/p'
}
best() { # spec seconds backend
  local a b
  a=$(loop_s "$@")
  b=$(loop_s "$@")
  echo "if ($a < $b) $a else $b" | bc
}
printf '%-18s %8s %10s %10s %8s\n' spec "sim s" "jit s" "interp s" ratio
for case in "coba 1" "cobahh 1" "astro_tripartite 1" "stdp 10"; do
  read -r spec secs <<<"$case"
  j=$(best "$spec" "$secs" jit)
  i=$(best "$spec" "$secs" interp)
  printf '%-18s %8s %10s %10s %7sx\n' "$spec" "$secs" "$j" "$i" "$(echo "scale=1; $i / $j" | bc)"
done
