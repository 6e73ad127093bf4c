#!/usr/bin/env bash
# Native runner of CUBA against `neurograph run` (release builds): executable size, start-up
# (`--info`, and a run of one step: compile of the embedded spec, network set-up, first step),
# and a 10 s simulation, each the best of 5 wall times. Usage: benches/runner.sh [SPEC]
set -euo pipefail
cd "$(dirname "$0")/.."
spec=$(realpath "${1:-specs/cuba.ng}")
# Separately: built together, cargo would unify features and give the runner library the
# code generator (`neurograph build` brings it up to date without).
cargo build --release --quiet -p neurograph
cargo build --release --quiet -p neurograph-runner
target=${CARGO_TARGET_DIR:-target}
ng=$target/release/neurograph
dir=$target/bench-runner
mkdir -p "$dir"
"$ng" build "$spec" -o "$dir/runner" 2>/dev/null
best() { # best wall time in ms of 5 runs of "$@"
  local b=""
  for _ in 1 2 3 4 5; do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    local t=$(( (e - s) / 1000 ))
    if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi
  done
  awk -v t="$b" 'BEGIN { printf "%.2f ms", t / 1000 }'
}
echo "spec: $spec"
echo "runner size: $(stat -c %s "$dir/runner") bytes ($(du -h "$dir/runner" | cut -f1)); links: $(ldd "$dir/runner" | awk '{print $1}' | tr '\n' ' ')"
echo "runner --info: $(best "$dir/runner" --info)"
echo "one step   runner: $(best "$dir/runner" --duration 0.1ms --quiet --out "$dir/t1")   run: $(best "$ng" run "$spec" --duration 0.1ms --quiet --out "$dir/t2")"
echo "10 s       runner: $(best "$dir/runner" --duration 10s --quiet --out "$dir/t1")   run: $(best "$ng" run "$spec" --duration 10s --quiet --out "$dir/t2")"
# Every file, and the manifests but for the start time (`started_utc`), which two runs differ in.
if diff -r -q -x manifest.json "$dir/t1" "$dir/t2" >/dev/null &&
  diff <(grep -v started_utc "$dir/t1/manifest.json") <(grep -v started_utc "$dir/t2/manifest.json") >/dev/null; then
  echo "traces: identical (every file)"
else
  echo "traces: DIFFER"
fi
