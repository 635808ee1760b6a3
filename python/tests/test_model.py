"""`eventprop.load` and the `eventprop.model` layers.

Expected values: a checkpoint loaded in Python computes what `eventprop eval` computes on
the same feature file: the same number of correct samples, the same hidden spike count,
and the loss to rounding (the readout's synapse sums in another order; measured
agreement ~1e-15 relative, checked at 1e-12).
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eventprop
from eventprop.model import LI, LIF, Sequential, rasterize, yinyang_input

from conftest import run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--epochs", "1", "--train-size", "200", "--val-size", "50", "--test-size", "10",
         "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def test_npz(eventprop_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("yy")
    run(eventprop_bin, "data", "yinyang", "--out", d, "--train-size", "10", "--val-size", "10",
        "--test-size", "400")
    return d / "test.npz"


def _eval(bin_, ckpt, data):
    out = run(bin_, "eval", "--checkpoint", ckpt, "--data", data, "--threads", "1").stdout
    correct, total = map(int, re.search(r"accuracy: .* \((\d+) of (\d+)\)", out).groups())
    loss = float(re.search(r"^loss: (\S+)$", out, re.M).group(1))
    spikes = float(re.search(r"^hidden spikes per sample: (\S+)$", out, re.M).group(1))
    return correct, total, loss, spikes


@pytest.mark.parametrize(
    "flags",
    [
        [],  # the defaults: corrected discretization, max-over-time
        ["--discretization", "seed"],
        ["--hidden", "20,10", "--loss", "sum"],
        ["--loss", "sum-exp"],
        ["--loss", "first-spike", "--readout-init-mean", "1.5", "--readout-init-std", "0.5"],
        ["--recurrent", "--hidden", "20,10"],
        ["--train-taus", "--train-threshold"],
    ],
    ids=["corrected", "seed", "two-hidden-sum", "sum-exp", "first-spike", "recurrent",
         "taus-thresholds"],
)
def test_load_computes_what_eval_computes(eventprop_bin, test_npz, tmp_path, flags):
    run(eventprop_bin, "train", "yinyang", *flags, *SMALL, "--out", tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    correct, total, loss, spikes = _eval(eventprop_bin, ckpt, test_npz)
    model = eventprop.load(ckpt)
    d = np.load(test_npz)
    x, y = yinyang_input(d["x"], model.config["encoding"]), torch.from_numpy(d["y"])
    with torch.no_grad():
        out = model(x)
        pred = model.predict(out)
        hidden = sum(layer(h).sum().item() for layer, h in _hidden_inputs(model, x))
    assert int((pred == y).sum()) == correct and total == 400
    assert hidden / total == pytest.approx(spikes, rel=1e-12)
    if model.decode == "first_spike":
        assert correct > 0 and (pred >= 0).any()  # the outputs spike: not a silent match
    else:
        assert model.loss(out, y).item() == pytest.approx(loss, rel=1e-12)


def _hidden_inputs(model, x):
    """(layer, its input) of every hidden layer."""
    h = x
    for layer in list(model)[:-1]:
        yield layer, h
        h = layer(h)


def test_loaded_parameters_are_the_runs(eventprop_bin, tmp_path):
    run(eventprop_bin, "train", "yinyang", "--tau-mem", "7e-6", "--discretization", "seed",
        *SMALL, "--out", tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    model = eventprop.load(ckpt)
    from eventprop.nir import read_checkpoint

    tensors, _ = read_checkpoint(ckpt)
    assert torch.equal(model[0].weight, torch.from_numpy(tensors["weight.0"]))
    assert torch.equal(model[1].weight, torch.from_numpy(tensors["weight.1"]))
    assert model[0].neurons.tau_mem.item() == 7e-6
    assert model[0].neurons.discretization == "seed" and model.dt == 1e-6
    assert isinstance(model[1], LI) and model[1].tau_syn == 6e-6
    # A float32 copy runs too.
    m32 = eventprop.load(ckpt, dtype=torch.float32)
    assert m32[0].weight.dtype == torch.float32


def test_load_refuses_what_it_cannot_build(eventprop_bin, trained, tmp_path):
    engine, ckpt, _ = trained
    if engine == "exact":
        with pytest.raises(ValueError, match="expected a stepped-engine checkpoint, got engine `exact`"):
            eventprop.load(ckpt)
    run(eventprop_bin, "train", "yinyang", "--delays", "--recurrent", *SMALL, "--out", tmp_path / "d")
    with pytest.raises(ValueError, match=r"expected no \[learn\] delays .* got \[learn\] delays, recurrent"):
        eventprop.load(tmp_path / "d" / "checkpoint.safetensors")
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{}   ")
    with pytest.raises(ValueError, match="not an eventprop checkpoint"):
        eventprop.load(bad)


def test_layers_validate_their_arguments():
    with pytest.raises(ValueError, match="out_features: expected an integer >= 1, got 0"):
        LIF(3, 0)
    with pytest.raises(ValueError, match="tau_mem: expected a finite value > 0, got -1"):
        LI(3, 2, tau_mem=-1)
    with pytest.raises(ValueError, match="decode: expected one of"):
        Sequential(LI(3, 2), decode="mean")
    with pytest.raises(ValueError, match=r"input: expected spikes \(T, B, 3\), got \(4, 2, 5\)"):
        LI(3, 2)(torch.zeros(4, 2, 5))
    # no time steps: empty outputs (as the LIF layers give), and no scores to decode
    net = Sequential(LIF(5, 4), LI(4, 3))
    out = net(torch.zeros(0, 2, 5))
    assert out.shape == (0, 2, 3)
    out.sum().backward()
    with pytest.raises(ValueError, match=r"output: expected at least one time step, got \(0, 2, 3\)"):
        net.scores(out)
    with pytest.raises(ValueError, match=r"samples\[1\]: expected events at steps 0..9"):
        rasterize([([0.0], [0]), ([1e-5], [0])], 2, 10, 1e-6)
    with pytest.raises(ValueError, match=r"features: expected shape \(B, 4\)"):
        yinyang_input(np.zeros((3, 2)), {})
    with pytest.raises(ValueError, match="first-spike loss is not available"):
        Sequential(LIF(3, 2), decode="first_spike").loss(torch.zeros(5, 1, 2), torch.zeros(1, dtype=torch.long))


def test_rasterize_places_events_like_the_engine():
    x = rasterize([([0.0, 2.4e-6, 2.6e-6], [0, 1, 1]), ([], [])], 2, 5, 1e-6)
    assert x.shape == (5, 2, 2)
    assert x[:, 0].nonzero().tolist() == [[0, 0], [2, 1], [3, 1]]
    assert x[:, 1].sum() == 0


def test_training_loop_example_runs_and_learns():
    """examples/train_yinyang.py, the training loop of docs/python.md, at a small size
    (measured: 69 % then 80 % test accuracy after epochs 1 and 2, ~3 s)."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_yinyang.py"), "--epochs", "2",
         "--train-size", "500", "--test-size", "300"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    losses = [float(v) for v in re.findall(r"train loss ([0-9.]+)", r.stdout)]
    accs = [float(v) for v in re.findall(r"test accuracy ([0-9.]+) %", r.stdout)]
    assert len(accs) == 2, r.stdout
    assert losses[1] < losses[0] and accs[1] > 60.0, r.stdout  # chance is 33 %


def test_docs_load_snippet_runs(eventprop_bin, tmp_path, monkeypatch):
    """docs/python.md's `eventprop.load` snippet, on the run and data folder it names: the
    accuracy it computes is `eventprop eval`'s."""
    doc = (ROOT / "docs" / "python.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "eventprop.load(" in b)
    monkeypatch.chdir(tmp_path)
    run(eventprop_bin, "train", "yinyang", *SMALL, "--out", "runs/s3")
    run(eventprop_bin, "data", "yinyang", "--out", "yy", "--train-size", "10", "--val-size", "10",
        "--test-size", "300")
    correct, total, _, _ = _eval(eventprop_bin, "runs/s3/checkpoint.safetensors", "yy/test.npz")
    scope = {}
    exec(compile(code, "docs/python.md", "exec"), scope)
    assert scope["accuracy"].item() == correct / total


def _rename(src, dst, rename):
    """A copy of the safetensors file `src` with its tensors renamed by `rename(name)`."""
    import json
    import struct

    data = Path(src).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header = {k if k == "__metadata__" else rename(k): v for k, v in header.items()}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    Path(dst).write_bytes(struct.pack("<Q", len(h)) + h + data[8 + n:])


def test_learned_tensors_load_under_their_names_and_the_old_ones(eventprop_bin, test_npz, tmp_path):
    """A recurrent network with trained taus and thresholds: the hidden layer holds the
    checkpoint's named tensors; the same checkpoint under the earlier index names
    (`weight.{i}` in layout order) loads to the same model and accuracy as `eval`'s."""
    run(eventprop_bin, "train", "yinyang", "--recurrent", "--train-taus", "--train-threshold",
        *SMALL, "--out", tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    from eventprop.nir import read_checkpoint
    from eventprop.torch import RecurrentLIF

    tensors, _ = read_checkpoint(ckpt)
    order = ["weight.0", "weight.1", "recurrent.0", "log_tau_mem.0", "log_tau_syn.0",
             "threshold_param.0"]
    assert sorted(k for k in tensors if not k.startswith("adam.")) == sorted(order)
    model = eventprop.load(ckpt)
    layer = model[0]
    assert isinstance(layer, RecurrentLIF)
    assert torch.equal(layer.recurrent_weight, torch.from_numpy(tensors["recurrent.0"]))
    assert torch.equal(layer.log_tau_mem, torch.from_numpy(tensors["log_tau_mem.0"][0]))
    assert torch.equal(layer.threshold_param, torch.from_numpy(tensors["threshold_param.0"][0]))
    assert layer.log_tau_syn.requires_grad and layer.recurrent_weight.requires_grad
    old = tmp_path / "old.safetensors"
    index = {name: i for i, name in enumerate(order)}
    _rename(ckpt, old, lambda k: f"adam.{k.split('.')[1]}.{index[k.split('.', 2)[2]]}"
            if k.startswith("adam.") else f"weight.{index[k]}")
    assert "recurrent.0" not in read_checkpoint(old)[0]
    old_model = eventprop.load(old)
    for (name, a), (_, b) in zip(model.named_parameters(), old_model.named_parameters()):
        assert torch.equal(a, b), name
    correct, _, _, _ = _eval(eventprop_bin, old, test_npz)
    d = np.load(test_npz)
    with torch.no_grad():
        pred = old_model.predict(old_model(yinyang_input(d["x"], old_model.config["encoding"])))
    assert int((pred == torch.from_numpy(d["y"])).sum()) == correct
    # The NIR export reads both namings to the same graph.
    import eventprop.nir as enir
    for name, node in enir.to_graph(ckpt).nodes.items():
        other = enir.to_graph(old).nodes[name]
        for field in ("weight", "tau_mem", "tau_syn", "v_threshold"):
            if hasattr(node, field):
                np.testing.assert_array_equal(getattr(node, field), getattr(other, field),
                                              err_msg=f"{name}.{field}")
