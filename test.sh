#!/usr/bin/env bash
# The test suite: the Rust workspace, then the Python package built into its own virtual
# environment (created under target/ from PyPI: maturin, pytest, numpy; pynwb and nwbinspector,
# pinned, for the NWB export's read-back and inspection tests) and tested with pytest.
# Needs only the Rust toolchain and python3 with venv.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo test --workspace
venv=$target/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9,<2" pytest numpy \
  "pynwb==4.2.0" "hdmf==6.2.0" "nwbinspector==0.7.2"
(cd python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$target" \
  maturin develop --quiet)
NEUROGRAPH_BIN="$target/debug/neurograph" "$venv/bin/python" -m pytest -q python/tests
