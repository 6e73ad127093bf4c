#!/usr/bin/env bash
# The cortical microcircuit (specs/microcircuit.ng) against NEST's own model of it (PyPI
# `nest-simulator` and `microcircuit`, in target/nest-venv, created on first use), same scale,
# same threads, same invocation: set-up time, simulation time and real-time factor, peak RSS,
# bytes per synapse, and the mean rate per population over the simulated second after a 0.5 s
# presimulation, next to the paper's rates.
#
#   benches/microcircuit.sh [--scale S] [--threads N] [--bg poisson|dc] [--no-nest] [--one-thread]
#
# Defaults: full scale (77,169 neurons, ~3·10^8 synapses: ~4 GiB for neurograph and ~14 GiB
# for NEST, run one after the other), 2 threads, Poisson background. --scale multiplies the
# numbers of neurons (and so of synapses) and keeps in-degrees, in both simulators.
# --one-thread also runs neurograph on one thread and prints the speed-up and whether the
# traces are identical.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scale=1 threads=2 bg=poisson nest=1 one=0
while [ $# -gt 0 ]; do
  case $1 in
    --scale) scale=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --bg) bg=$2; shift 2 ;;
    --no-nest) nest=0; shift ;;
    --one-thread) one=1; shift ;;
    *) echo "usage: $0 [--scale S] [--threads N] [--bg poisson|dc] [--no-nest] [--one-thread]" >&2; exit 2 ;;
  esac
done
case $bg in poisson) set_bg=() ;; dc) set_bg=(--set bg_rate=0Hz --set dc_rate=8Hz) ;;
  *) echo "--bg is poisson or dc" >&2; exit 2 ;; esac

target=${CARGO_TARGET_DIR:-$root/target}
work=$root/target/microcircuit
mkdir -p "$work"
venv=${NEUROGRAPH_NEST_VENV:-$root/target/nest-venv}
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with nest-simulator and microcircuit ..." >&2
  PYENV_VERSION=3.13.0 python3 -m venv "$venv"
  "$venv/bin/pip" install -q nest-simulator microcircuit
fi
(cd "$root" && cargo build --release -q)
ng=$target/release/neurograph

# The spec at this scale: `scale` sets population sizes, fixed when the spec compiles.
spec=$work/microcircuit_$scale.ng
sed "s/^const scale = 1\$/const scale = $scale/" "$root/specs/microcircuit.ng" >"$spec"
grep -q "^const scale = $scale\$" "$spec" || { echo "could not set the scale in $spec" >&2; exit 1; }

# Peak RSS of a child, measured the same way for both simulators.
peak_rss() {
  "$venv/bin/python" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "w"))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
sys.exit(r.returncode)' "$@"
}

echo "microcircuit, scale $scale, $threads threads, $bg background, 0.5 s + 1 s" >&2
rm -rf "$work/trace"
rss=$(peak_rss "$work/ng.out" "$ng" run "$spec" --duration 1.5s --threads "$threads" \
  "${set_bg[@]}" --out "$work/trace")
"$venv/bin/python" - "$work/trace" "$work/ng.out" "$rss" "$threads" >"$work/ng.json" <<'PY'
import json, os, re, sys
import numpy as np
trace, out, rss, threads = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3]), int(sys.argv[4])
m = json.load(open(os.path.join(trace, "manifest.json")))
setup, sim = map(float, re.search(r"setup ([0-9.]+) s, simulation ([0-9.]+) s", out).groups())
synapses = int(re.search(r"(\d+) synapses", out).group(1))
rates = {}
for r in m["records"]:
    if r["kind"] == "events":
        t = np.load(os.path.join(trace, r["times"]["file"]))
        rates[r["population"]] = float((t >= 0.5).sum()) / r["size"] / (m["duration_s"] - 0.5)
json.dump({"simulator": "neurograph", "threads": threads, "synapses": synapses,
           "setup_s": setup, "sim_s": sim, "rtf": sim / m["duration_s"],
           "peak_rss_bytes": rss, "rates_hz": rates}, sys.stdout)
PY
if [ "$one" = 1 ]; then
  # The same run on one thread: simulation time against the N-thread run, and whether the
  # traces are the same bytes.
  rm -rf "$work/trace-1"
  "$ng" run "$spec" --duration 1.5s --threads 1 "${set_bg[@]}" --out "$work/trace-1" >"$work/ng-1.out"
  t1=$(sed -n 's/^setup [0-9.]* s, simulation \([0-9.]*\) s wall.*/\1/p' "$work/ng-1.out")
  tn=$(sed -n 's/^setup [0-9.]* s, simulation \([0-9.]*\) s wall.*/\1/p' "$work/ng.out")
  same=$(diff -r -q -x manifest.json "$work/trace-1" "$work/trace" >/dev/null && echo identical || echo DIFFER)
  echo "neurograph 1 thread ${t1} s, $threads threads ${tn} s: $(echo "scale=2; $t1 / $tn" | bc)x, traces $same" >&2
fi
if [ "$nest" = 1 ]; then
  (cd "$work" && peak_rss "$work/nest.out" "$venv/bin/python" "$root/benches/peers/microcircuit_nest.py" \
    --scale "$scale" --threads "$threads" --bg "$bg" --data "$work/nest-data" >/dev/null)
  tail -n 1 "$work/nest.out" >"$work/nest.json"
fi

"$venv/bin/python" - "$work/ng.json" "$([ "$nest" = 1 ] && echo "$work/nest.json")" <<'PY'
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:] if p]
# Potjans & Diesmann (2014), full scale, Poisson background (NEST's microcircuit, full_mean_rates).
paper = {"L23E": 0.903, "L23I": 2.965, "L4E": 4.414, "L4I": 5.876,
         "L5E": 7.569, "L5I": 8.633, "L6E": 1.105, "L6I": 7.829}
names = [r["simulator"] for r in runs]
print("| | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(runs))
def row(label, f):
    print(f"| {label} | " + " | ".join(f(r) for r in runs) + " |")
row("synapses", lambda r: f'{r["synapses"]:,}')
row("set-up (s)", lambda r: f'{r["setup_s"]:.1f}')
row("simulation (s)", lambda r: f'{r["sim_s"]:.1f}' + (" (1.5 s)" if r["simulator"] == "neurograph" else " (1 s)"))
row("real-time factor", lambda r: f'{r["rtf"]:.2f}')
row("peak RSS (GiB)", lambda r: f'{r["peak_rss_bytes"] / 2**30:.2f}')
row("bytes per synapse (RSS)", lambda r: f'{r["peak_rss_bytes"] / r["synapses"]:.1f}')
print()
print("| rate (Hz) | paper | " + " | ".join(names) + " |")
print("|---|---|" + "---|" * len(runs))
for p, ref in paper.items():
    print(f"| {p} | {ref:.3f} | " + " | ".join(f'{r["rates_hz"][p]:.3f}' for r in runs) + " |")
if len(runs) == 2:
    print(f'\nreal-time factor NEST / neurograph: {runs[1]["rtf"] / runs[0]["rtf"]:.2f}x; '
          f'set-up {runs[1]["setup_s"] / runs[0]["setup_s"]:.2f}x')
PY
