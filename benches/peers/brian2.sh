#!/usr/bin/env bash
# CUBA (N = 4000) in Brian2 cpp_standalone and in neurograph, measured in one invocation on
# this machine: setup/codegen, compile, simulation loop and whole process, and the ratios.
# Usage: benches/peers/brian2.sh [SIM_SECONDS]   (default 10; the whole-process comparison
# also runs 1 s). Brian2 2.11 needs Python >= 3.13: the venv is made with pyenv's 3.13.0.
# Simulation-loop times are the fastest of three runs on both sides (the machine is shared
# and noisy); whole-process times are single runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$root/benches/peers/lib.sh"
brian2_venv
sed 's/run { dt = 0.1 ms; duration = 1 s; seed = 1 }/run { dt = 0.1 ms; duration = 1 s; seed = 1; precision = f32 }/' \
  "$root/specs/cuba.ng" > "$work/cuba_f32.ng"

read -r b_setup b_compile b_sim b_total b_spikes < <("$venv/bin/python" "$root/benches/peers/cuba_brian2.py" "$seconds" "$work/b2" 3)
read -r _ _ _ b1_total _ < <("$venv/bin/python" "$root/benches/peers/cuba_brian2.py" 1 "$work/b2-1s" 1)
read -r n_setup n_sim n_total < <(ng_best "$root/specs/cuba.ng" "$seconds" jit)
read -r _ n32_sim _ < <(ng_best "$work/cuba_f32.ng" "$seconds" jit)
read -r _ ni_sim _ < <(ng_run "$root/specs/cuba.ng" "$seconds" interp)
read -r _ _ n1_total < <(ng_run "$root/specs/cuba.ng" 1 jit)

printf 'CUBA N=4000, %s s simulated, single-threaded\n' "$seconds"
printf '%-34s %10s %10s %10s %10s\n' "" "setup s" "compile s" "sim s" "process s"
printf '%-34s %10s %10s %10s %10s\n' "Brian2 cpp_standalone" "$b_setup" "$b_compile" "$b_sim" "$b_total"
printf '%-34s %10s %10s %10s %10s\n' "neurograph --backend jit (f64)" "$n_setup" "-" "$n_sim" "$n_total"
printf '%-34s %10s %10s %10s %10s\n' "neurograph --backend jit (f32)" "-" "-" "$n32_sim" "-"
printf '%-34s %10s %10s %10s %10s\n' "neurograph --backend interp" "-" "-" "$ni_sim" "-"
printf 'simulation loop, Brian2 / neurograph: f64 %sx (goal 2x), f32 %sx (goal 3x), interp %sx\n' \
  "$(ratio "$b_sim" "$n_sim")" "$(ratio "$b_sim" "$n32_sim")" "$(ratio "$b_sim" "$ni_sim")"
printf 'whole process for 1 s, Brian2 %s s / neurograph %s s = %sx (goal 30x)\n' \
  "$b1_total" "$n1_total" "$(ratio "$b1_total" "$n1_total")"
