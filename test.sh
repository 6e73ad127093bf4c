#!/usr/bin/env bash
# The test suite: the Rust workspace, then the Python package built into its own virtual
# environment (created under target/ from PyPI: maturin, pytest, numpy; pynwb and nwbinspector,
# pinned, for the NWB export's read-back and inspection tests; nir, and snnTorch with PyTorch,
# for the NIR tests) and tested with pytest.
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
  "pynwb==4.2.0" "hdmf==6.2.0" "nwbinspector==0.7.2" "nir==1.0.8"
# snnTorch (and PyTorch, which takes 5.4 GB with the CUDA libraries PyPI's build loads) for the
# NIR test against a library that exports NIR. Skipped, with a notice, where the disk has less
# than 12 GB free or NEUROGRAPH_SKIP_TORCH=1; the test then reports itself skipped.
free_gb=$(df -Pk "$target" | awk 'NR == 2 { print int($4 / 1048576) }')
if [ "${NEUROGRAPH_SKIP_TORCH:-0}" != 1 ] && [ "$free_gb" -ge 12 ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==2.15.0" \
    "snntorch==1.0.0" "nirtorch==2.6"
else
  echo "test.sh: not installing PyTorch (${free_gb} GB free, NEUROGRAPH_SKIP_TORCH=${NEUROGRAPH_SKIP_TORCH:-0}): the snnTorch NIR test will be skipped" >&2
fi
(cd python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$target" \
  maturin develop --quiet)
NEUROGRAPH_BIN="$target/debug/neurograph" "$venv/bin/python" -m pytest -q python/tests
