import os
import sys

# reference.py sits next to the tests.
sys.path.insert(0, os.path.dirname(__file__))

# Fixtures of the NIR tests (test_nir.py, test_nir_peers.py): the `eventprop` binary and
# small trained checkpoints of both engines.
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def eventprop_bin():
    """The `eventprop` binary: $EVENTPROP_BIN, else the one `cargo test --workspace` builds
    (test profile, target/debug). The same command with `--no-run` is a no-op after the
    README's test command (as in .ci/run, which runs it first), whereas building the CLI
    alone re-resolves features and rebuilds its dependencies (`cargo build --profile test
    -p eventprop-cli` after `cargo test --workspace`: 3.5 min on 2 cores)."""
    if os.environ.get("EVENTPROP_BIN"):
        return os.environ["EVENTPROP_BIN"]
    cargo = shutil.which("cargo")
    assert cargo, "cargo is needed to build the eventprop binary (or set EVENTPROP_BIN)"
    subprocess.run([cargo, "test", "--workspace", "--no-run", "--quiet"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "eventprop")


def run(bin_, *args, ok=True):
    r = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def trained_hidden_layer(bin_, out, kind):
    """The hidden layer of a one-epoch stepped Yin-Yang run of `kind` — "plain",
    "taus_thresholds" (trained per-neuron time constants and thresholds, checked to differ
    across neurons) or "recurrent" — trained into `out` and exported to NIR: `(graph, dt,
    CubaLIF node, input weights, recurrent weights)`, the last zeros without recurrence."""
    import numpy as np

    import eventprop.nir as enir

    flags = {"plain": [], "taus_thresholds": ["--train-taus", "--train-threshold"],
             "recurrent": ["--recurrent"]}[kind]
    run(bin_, "train", "yinyang", *flags, "--epochs", "1", "--train-size", "200",
        "--val-size", "50", "--test-size", "50", "--quiet", "--out", out)
    g = enir.to_graph(Path(out) / "checkpoint.safetensors")
    lif, w = g.nodes["lif0"], g.nodes["linear0"].weight
    n = w.shape[0]
    r = g.nodes["rec0"].weight if kind == "recurrent" else np.zeros((n, n))
    if kind == "taus_thresholds":
        assert len(set(lif.tau_mem)) > 1 and len(set(lif.v_threshold)) > 1  # trained apart
    return g, g.metadata["dt"], lif, w, r


SMALL = {
    "stepped": ["--epochs", "1", "--train-size", "200", "--val-size", "50", "--test-size", "300"],
    "exact": ["--engine", "exact", "--hidden", "20", "--epochs", "1", "--train-size", "100",
              "--val-size", "20", "--test-size", "200"],
}


@pytest.fixture(scope="session", params=["stepped", "exact"])
def trained(request, eventprop_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    run(eventprop_bin, "train", "yinyang", *SMALL[request.param], "--quiet", "--out", d / "run")
    ckpt = d / "run" / "checkpoint.safetensors"
    return request.param, ckpt, run(eventprop_bin, "eval", "--checkpoint", ckpt).stdout


