#!/usr/bin/env bash
# How long neurograph's spikes stay identical to Brian2's, spike for spike, on CUBA, COBA and
# COBAHH given the same network: Brian2 cpp_standalone builds each network (seed 1) and exports
# its connectivity and initial state (identity_brian2.py); the bundled spec, with
# `connect file(...)` and `load(...)` in place of its random connectivity and initial values,
# then runs in neurograph (--backend jit) and the spike trains are compared
# (identity_compare.py). COBAHH calls exp and expm1 at every step, so this checks that
# neurograph's exponentials (compiler/src/math.rs) give the C library's results where Brian2
# runs. Usage: benches/peers/identity.sh [DURATION_S=10] [NETWORK...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
duration=${1:-10}
shift || true
nets=("$@")
[ ${#nets[@]} -gt 0 ] || nets=(cuba coba cobahh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$root/benches/peers/lib.sh"
brian2_venv
for net in "${nets[@]}"; do
  dir="$work/$net"
  "$venv/bin/python" "$root/benches/peers/identity_brian2.py" "$net" "$duration" "$dir" >/dev/null
  # Initial values Brian2 drew, per population (CUBA draws v only; its ge, gi start at 0).
  case $net in
    cuba) vars="v:mV" ;;
    coba) vars="v:mV ge:1 gi:1" ;;
    cobahh) vars="v:mV ge:nS gi:nS" ;;
  esac
  for pop in E I; do
    o=""
    for vu in $vars; do
      v=${vu%%:*}
      u=${vu##*:}
      # load() gives SI values; as a quantity in the variable's unit.
      case $u in
        mV) o="$o $v = load(\"$dir/${pop}_$v.npy\") * 1000 mV;" ;;
        nS) o="$o $v = load(\"$dir/${pop}_$v.npy\") * 1e9 nS;" ;;
        *) o="$o $v = load(\"$dir/${pop}_$v.npy\");" ;;
      esac
    done
    eval "over_$pop=\"\$o\""
  done
  sed -e "s|^\(population E = [A-Za-z]*\[3200\]\).*|\1 {$over_E }|" \
      -e "s|^\(population I = [A-Za-z]*\[800\]\).*|\1 {$over_I }|" \
      -e "s|^\(project E -> (E, I) via [A-Za-z]* {\) connect bernoulli(0.02) }|\1 connect file(\"$dir/exc.npy\") }|" \
      -e "s|^\(project I -> (E, I) via [A-Za-z]* {\) connect bernoulli(0.02) }|\1 connect file(\"$dir/inh.npy\") }|" \
      "$root/specs/$net.ng" > "$dir/$net.ng"
  "$ng" run "$dir/$net.ng" --duration "${duration}s" --out "$dir/trace" >/dev/null
  printf '%-8s ' "$net"
  "$venv/bin/python" "$root/benches/peers/identity_compare.py" "$dir/trace" \
    "$dir/brian2_spikes.npy" 0.0001 "$duration"
done
