#!/bin/sh
# Spike statistics of a CUBA trace by Elephant and by `neurograph analyze ... spikes`, side by
# side (benches/peers/elephant_stats.py). Makes a venv under target/ with Elephant from PyPI on first
# use. Usage: benches/peers/elephant.sh [DURATION] (default 1s; 10s for the timing the issue asks).
set -eu
cd "$(dirname "$0")/../.."
duration=${1:-1s}
venv=target/peers-venv-elephant
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q elephant
fi
cargo build --release -q
work=target/elephant-peer
rm -rf "$work"
mkdir -p "$work"
"${CARGO_TARGET_DIR:-target}"/release/neurograph run specs/cuba.ng --seed 1 --duration "$duration" --quiet --out "$work/cuba"
# Every pair of the smaller population, so the mean correlation is not a sample.
started=$(date +%s.%N)
"${CARGO_TARGET_DIR:-target}"/release/neurograph analyze "$work/cuba" spikes --bin 5ms --pairs 400000 --json "$work/ours.json" > /dev/null
ended=$(date +%s.%N)
seconds=$(echo "$ended - $started" | bc)
"$venv/bin/python" benches/peers/elephant_stats.py "$work/cuba" "$work/ours.json" "$seconds"
