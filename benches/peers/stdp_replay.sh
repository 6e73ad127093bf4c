#!/bin/sh
# Replays a neurograph run of specs/stdp.ng in Brian2 (see stdp_replay.py) and rewrites the
# test data tests/data/stdp_replay_brian2_{t,w}.npy. The first run creates the venv with
# $PYTHON (default python3; the committed data came from Python 3.13, PYENV_VERSION=3.13.0) and
# needs network access for `pip install brian2` (2.11.0 was used).
set -eu
cd "$(dirname "$0")/../.."
seconds=${SECONDS_REPLAY:-10}
seed=${SEED:-1}
venv=target/peers-venv
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q brian2
fi
cargo run -q --example stdp_export -- target/stdp-replay "$seconds" "$seed"
"$venv/bin/python" benches/peers/stdp_replay.py target/stdp-replay \
    tests/data/stdp_replay_brian2_t.npy tests/data/stdp_replay_brian2_w.npy "$seconds"
