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
venv=${NEUROGRAPH_BRIAN2_VENV:-$root/target/brian2-venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with brian2 ..." >&2
  PYENV_VERSION=3.13.0 python3 -m venv "$venv"
  "$venv/bin/pip" install -q brian2
fi
(cd "$root" && cargo build --release -q)
ng="${CARGO_TARGET_DIR:-$root/target}/release/neurograph"
sed 's/run { dt = 0.1 ms; duration = 1 s; seed = 1 }/run { dt = 0.1 ms; duration = 1 s; seed = 1; precision = f32 }/' \
  "$root/specs/cuba.ng" > "$work/cuba_f32.ng"

# neurograph: simulation-loop seconds from its summary, whole process from the shell.
ng_run() { # spec seconds backend
  local start end out
  start=$(date +%s.%N)
  out=$("$ng" run "$1" --duration "$2s" --backend "$3" --seed 1 --out "$work/trace-$RANDOM")
  end=$(date +%s.%N)
  local setup sim
  setup=$(sed -n 's/^setup \([0-9.]*\) s, simulation \([0-9.]*\) s wall.*/\1/p' <<<"$out")
  sim=$(sed -n 's/^setup \([0-9.]*\) s, simulation \([0-9.]*\) s wall.*/\2/p' <<<"$out")
  echo "$setup $sim $(echo "$end - $start" | bc)"
}

# The fastest simulation loop of three runs: spec seconds backend -> "setup sim process"
# (setup and process of the first run).
ng_best() {
  local first setup sim total s
  first=$(ng_run "$@")
  read -r setup sim total <<<"$first"
  for _ in 1 2; do
    read -r _ s _ < <(ng_run "$@")
    sim=$(echo "if ($s < $sim) $s else $sim" | bc)
  done
  echo "$setup $sim $total"
}

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
ratio() { echo "scale=3; $1 / $2" | bc; }
printf 'simulation loop, Brian2 / neurograph: f64 %sx (goal 2x), f32 %sx (goal 3x), interp %sx\n' \
  "$(ratio "$b_sim" "$n_sim")" "$(ratio "$b_sim" "$n32_sim")" "$(ratio "$b_sim" "$ni_sim")"
printf 'whole process for 1 s, Brian2 %s s / neurograph %s s = %sx (goal 30x)\n' \
  "$b1_total" "$n1_total" "$(ratio "$b1_total" "$n1_total")"
