#!/usr/bin/env bash
# BDH-GPU generation speed: neurograph (`neurograph generate` on the spec of the configuration,
# written by benches/peers/bdh_spec.py) against a PyTorch (CPU) per-token recurrent step written
# from the same equations (benches/peers/bdh_torch.py), in one invocation on this machine:
# tokens/s of both, their ratio (goal: neurograph >= 3x), set-up time and peak memory, and the
# fraction of layer 1's x and y activations that is non-zero.
# Default: the reference configuration (6 layers, D = 256, 4 heads, N = 8192 per head, vocab
# 256), batch 1, 2 threads.
# Usage: benches/peers/bdh_torch.sh [--layers L] [--d D] [--heads H] [--n N] [--threads T]
#        [--tokens K]   (the first run creates target/torch-venv: PyTorch from PyPI, 5.4 GB)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
layers=6 d=256 heads=4 n=8192 threads=2 tokens=16
while [ $# -gt 0 ]; do
  case $1 in
    --layers) layers=$2; shift 2 ;;
    --d) d=$2; shift 2 ;;
    --heads) heads=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    *) echo "usage: $0 [--layers L] [--d D] [--heads H] [--n N] [--threads T] [--tokens K]" >&2; exit 2 ;;
  esac
done
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/torch-venv
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with torch ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==2.15.0" numpy
fi
(cd "$root" && cargo build --release -q)
ng="$target/release/neurograph"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data"
cp "$root/specs/data/tiny.txt" "$work/data/"
# Two specs of one network: the timed one records only the logits (as generate reads them);
# the activity run records layer 1's activations too.
python3 "$root/benches/peers/bdh_spec.py" "$work/bdh.ng" --layers "$layers" --d "$d" \
  --heads "$heads" --n "$n"
python3 "$root/benches/peers/bdh_spec.py" "$work/bdh_activity.ng" --layers "$layers" --d "$d" \
  --heads "$heads" --n "$n" --record X1h0.xs --record Y1h0.xy
echo "BDH-GPU: $layers layers, D = $d, $heads heads, N = $n per head, vocab 256; batch 1, $threads threads, $tokens tokens" >&2
# neurograph: set-up (the process until the prompt's first step) is the whole wall time minus
# the prompt's and the tokens' steps, which generate reports.
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$ng" generate "$work/bdh.ng" --prompt "Once" \
  --tokens "$tokens" --ids --threads "$threads" >/dev/null 2>"$work/gen"
end=$(date +%s.%N)
ng_tps=$(sed -n 's/.*(\([0-9.]*\) tokens\/s).*/\1/p' "$work/gen")
ng_prompt=$(sed -n 's/^prompt: [0-9]* tokens in \([0-9.]*\) s;.*/\1/p' "$work/gen")
ng_gen=$(sed -n 's/.*generated [0-9]* tokens in \([0-9.]*\) s.*/\1/p' "$work/gen")
ng_setup=$(echo "$end - $start - $ng_prompt - $ng_gen" | bc)
ng_rss=$(( $(cat "$work/rss") / 1024 ))
read -r pt_tps pt_rss < <("$venv/bin/python" "$root/benches/peers/bdh_torch.py" "$layers" "$d" \
  "$heads" "$n" 256 "$threads" "$tokens")
# The weights: encoder, encoder_v, decoder, embedding and head, in f32.
weights_mib=$(echo "scale=0; 4 * (3 * $heads * $d * $n + 2 * 256 * $d) / 1048576" | bc)
printf '%-11s %12s %10s %14s\n' "" "tokens/s" "set-up s" "peak RSS MiB"
printf '%-11s %12s %10.1f %14s\n' neurograph "$ng_tps" "$ng_setup" "$ng_rss"
printf '%-11s %12s %10s %14s\n' PyTorch "$pt_tps" "-" "$pt_rss"
echo "neurograph / PyTorch: $(echo "scale=3; $ng_tps / $pt_tps" | bc)x (goal 3x); weights $weights_mib MiB in f32"
# Activity: how much of layer 1, head 0 is non-zero over the same number of tokens (the
# activity-sparse couplings skip the rest).
"$ng" run "$work/bdh_activity.ng" --duration "${tokens}ms" --out "$work/trace" --quiet
"$venv/bin/python" - "$work/trace" <<'PY'
import sys, numpy as np
for name in ("X1h0.xs", "Y1h0.xy"):
    a = np.load(f"{sys.argv[1]}/{name}.npy")
    print(f"non-zero fraction of {name}: {(a != 0).mean():.3f}")
PY
