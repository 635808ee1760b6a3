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


def hidden_only(graph):
    """input → linear0 → lif0 → output (peers without a leaky integrator run the hidden
    layer of a max-over-time network)."""
    import numpy as np

    import nir

    n = graph.nodes["lif0"].tau_syn.shape[0]
    return nir.NIRGraph(
        nodes={k: graph.nodes[k] for k in ("input", "linear0", "lif0")}
        | {"output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "linear0"), ("linear0", "lif0"), ("lif0", "output")],
        metadata=graph.metadata,
    )


def first_spike_step(z):
    """The first step with a spike of every (sample, neuron); inf where there is none."""
    import numpy as np

    f = z.argmax(0).astype(float)
    f[~z.any(0)] = np.inf
    return f


def stepped_layer(x, w, r, lif, dt, reset="value"):
    """The stepped engine's (recurrent) layer (crates/eventprop-core/src/stepped/layer.rs,
    "Forward"): i[t+1] = i[t](1 - dt/tau_syn) + W in[t] + R z[t];
    u = v[t] + dt/tau_mem (leak - v[t] + i[t+1]); z[0] = 0, v[0] = leak; then by `reset`:
    "value" (ours) z[t+1] = u > threshold, v[t+1] = reset where z[t+1], else u;
    "subtract" (Spyx) the same spike, v[t+1] = u - z[t+1]·threshold; "floor" (Rockpool)
    z[t+1] = floor(u/threshold) where u >= threshold (several per step possible),
    v[t+1] = u - z[t+1]·threshold."""
    import numpy as np

    T, B, _ = x.shape
    n = w.shape[0]
    i, v, z = np.zeros((B, n)), np.full((B, n), lif.v_leak), np.zeros((B, n))
    out = [z]
    for t in range(T - 1):
        i = i * (1 - dt / lif.tau_syn) + x[t] @ w.T + z @ r.T
        u = v + dt / lif.tau_mem * (lif.v_leak - v + i)
        if reset == "floor":
            z = np.where(u >= lif.v_threshold, np.floor(u / lif.v_threshold), 0.0)
        else:
            z = (u > lif.v_threshold).astype(np.float64)
        v = np.where(z > 0, lif.v_reset, u) if reset == "value" else u - z * lif.v_threshold
        out.append(z)
    return np.array(out)


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


