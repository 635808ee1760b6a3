#!/usr/bin/env bash
# Builds the `eventprop` Python package (crates/eventprop-py + python/eventprop) into a
# fresh virtual environment, installs torch/numpy/pytest, and runs the Python test suite.
# Called by .ci/run; needs Rust, Python >= 3.9 with pip/venv, and gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
venv=$(mktemp -d "${TMPDIR:-/tmp}/eventprop-venv.XXXXXX")
trap 'rm -rf "$venv"' EXIT
start=$(date +%s)
"$python" -m venv "$venv"
# torch first (the default PyPI wheel, used on the CPU), then the package itself; nir,
# snntorch, norse, rockpool, spyx and jaxsnn for the NIR tests (test_nir*.py; spyx and jaxsnn
# bring jax), tonic for the conversion snippet of docs/data.md (test_tonic.py).
"$venv/bin/python" -m pip install --quiet torch numpy pytest nir snntorch norse rockpool spyx jaxsnn tonic
echo "python.sh: dependencies installed after $(( $(date +%s) - start )) s"
# The one documented install command (builds the abi3 wheel with maturin, in release mode).
"$venv/bin/python" -m pip install --quiet "$root"
echo "python.sh: eventprop built and installed after $(( $(date +%s) - start )) s"
# Run from outside the source tree so that the installed package (not python/) is tested.
cd "$venv"
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests"
rc=$?
set -e
echo "python.sh: finished after $(( $(date +%s) - start )) s"
if [ "$rc" -eq 5 ]; then
    echo "python.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
