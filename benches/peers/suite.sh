#!/usr/bin/env bash
# The benchmark networks in Brian2 cpp_standalone and in neurograph, in one invocation on this
# machine: CUBA 10 s, COBA 5 s, COBAHH 1 s, STDP 20 s (the bundled specs; the Brian2 side is
# benches/peers/suite_brian2.py), each the fastest simulation loop of three runs per side, and
# the ratio Brian2 / neurograph (goal: 2x on every network).
# Usage: benches/peers/suite.sh [--threads N]   (N > 1: Brian2 with openmp_threads = N and
# neurograph with --threads N). The first run creates target/brian2-venv (pip).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=0
if [ "${1:-}" = "--threads" ]; then threads=${2:?--threads needs a number}; fi
export NG_THREADS=$((threads > 1 ? threads : 1))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$root/benches/peers/lib.sh"
brian2_venv
printf '%-8s %8s %14s %14s %8s   %s\n' network "bio s" "Brian2 loop s" "neurograph s" ratio spikes
for entry in cuba:10 coba:5 cobahh:1 stdp:20; do
  net=${entry%%:*}
  seconds=${entry##*:}
  read -r b_sim b_spikes < <("$venv/bin/python" "$root/benches/peers/suite_brian2.py" \
    "$net" "$seconds" "$work/b2-$net" 3 "$threads")
  read -r _ n_sim _ < <(ng_best "$root/specs/$net.ng" "$seconds" jit)
  printf '%-8s %8s %14s %14s %7sx   Brian2 %s\n' "$net" "$seconds" "$b_sim" "$n_sim" \
    "$(ratio "$b_sim" "$n_sim")" "$b_spikes"
done
if [ "$threads" -gt 1 ]; then
  echo "Brian2 ran with openmp_threads = $threads, neurograph with --threads $threads"
fi
