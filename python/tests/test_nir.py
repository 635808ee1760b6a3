"""NIR export/import through the `eventprop` binary and the `nir` package.

Expected values: a network exported by `eventprop export`, read and re-written by
`nir.read`/`nir.write` (gzip-compressed, h5py's layout), must evaluate to exactly what the
checkpoint itself evaluates to (`eventprop eval` on the safetensors file: every printed
line); `eventprop.nir.to_graph` must give the graph the binary writes.
"""

import json

import numpy as np
import pytest

import nir  # installed by .ci/python.sh

import eventprop
import eventprop.nir as enir

from conftest import run  # noqa: E402  (fixtures: eventprop_bin, trained)


def test_nir_write_round_trip_gives_the_checkpoint_accuracy(eventprop_bin, trained, tmp_path):
    engine, ckpt, expected = trained
    out = tmp_path / "model.nir"
    run(eventprop_bin, "export", "--checkpoint", ckpt, "--nir", out)
    g = nir.read(out)
    assert g.metadata["engine"] == engine
    assert g.metadata["time_unit"] == "s"
    if engine == "stepped":
        assert g.metadata["dt"] == 1e-6 and g.metadata["discretization"] == "corrected"
    else:
        assert "dt" not in g.metadata
    rewritten = tmp_path / "rewritten.nir"
    nir.write(rewritten, g)  # gzip-compressed datasets, h5py's own writer
    got = run(eventprop_bin, "eval", "--checkpoint", rewritten).stdout
    assert got == expected
    assert "accuracy: " in got


def assert_same_graph(a, b):
    """Node by node, field by field (bit-identical arrays), the same edges and metadata
    (the config compared as parsed JSON; `source` names the writer)."""
    assert sorted(a.edges) == sorted(b.edges)
    assert sorted(a.nodes) == sorted(b.nodes)
    for name, na in a.nodes.items():
        nb = b.nodes[name]
        assert type(na) is type(nb), name
        for field, va in vars(na).items():
            if field in ("input_type", "output_type", "metadata"):
                continue
            assert np.array_equal(np.asarray(va), np.asarray(getattr(nb, field))), (name, field)
    ma, mb = dict(a.metadata), dict(b.metadata)
    assert json.loads(ma.pop("eventprop_config")) == json.loads(mb.pop("eventprop_config"))
    ma.pop("source"), mb.pop("source")
    assert ma == mb


def test_python_export_is_the_cli_export(eventprop_bin, trained, tmp_path):
    engine, ckpt, expected = trained
    cli = tmp_path / "cli.nir"
    run(eventprop_bin, "export", "--checkpoint", ckpt, "--nir", cli)
    assert_same_graph(nir.read(cli), enir.to_graph(ckpt))
    py = tmp_path / "py.nir"
    enir.export(ckpt, py)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.nir", "py.nir"]  # no temporaries
    assert run(eventprop_bin, "eval", "--checkpoint", py).stdout == expected


# Event runs of every network kind the trainer makes (the CLI and the Python exporter are
# checked against each other on each; `eval` of the file against `eval` of the checkpoint).
EVENT_KINDS = {
    "stepped": [],
    "stepped-recurrent-taus-threshold": ["--recurrent", "--train-taus", "--train-threshold"],
    "exact": ["--engine", "exact"],
    "exact-first-spike-recurrent-taus-threshold": [
        "--engine", "exact", "--loss", "first-spike", "--recurrent", "--train-taus",
        "--train-threshold",
    ],
}


@pytest.fixture(scope="session")
def event_data(eventprop_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("events")
    data = d / "ev.npz"
    run(eventprop_bin, "data", "timing", "--out", data, "--samples", "64", "--channels", "8",
        "--classes", "3", "--duration", "0.1", "--events-per-sample", "40")
    return data


@pytest.fixture(scope="session", params=sorted(EVENT_KINDS))
def event_run(request, eventprop_bin, event_data, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    run(eventprop_bin, "train", "events", "--train", event_data, "--epochs", "1", "--hidden",
        "16", "--threads", "1", "--quiet", "--out", d / "run", *EVENT_KINDS[request.param])
    ckpt = d / "run" / "checkpoint.safetensors"
    expected = run(eventprop_bin, "eval", "--checkpoint", ckpt, "--data", event_data,
                   "--threads", "1").stdout
    return request.param, ckpt, expected


def test_event_runs_round_trip_through_nir_write(eventprop_bin, event_data, event_run, tmp_path):
    """export → nir.read → nir.write → eval: exactly the checkpoint's lines, and the
    Python exporter writes the CLI's graph."""
    kind, ckpt, expected = event_run
    out = tmp_path / "model.nir"
    run(eventprop_bin, "export", "--checkpoint", ckpt, "--nir", out)
    g = nir.read(out)
    assert_same_graph(g, enir.to_graph(ckpt))
    rewritten = tmp_path / "rewritten.nir"
    nir.write(rewritten, g)
    got = run(eventprop_bin, "eval", "--checkpoint", rewritten, "--data", event_data,
              "--threads", "1").stdout
    assert got == expected
    assert "accuracy: " in got
    if "recurrent" in kind:
        assert ("lif0", "rec0") in g.edges and ("rec0", "lif0") in g.edges
        assert g.metadata["recurrence"].startswith(
            "instantaneous" if kind.startswith("exact") else "one step")


def test_python_export_writes_what_it_used_to_drop(eventprop_bin, tmp_path):
    """Regression: the Python exporter once could write a network with trained extras as a
    plain one. Each field is now written as trained (expected values: the checkpoint's
    tensors, through the parameterisation of docs/exact.md, "Training ([learn])"), and the
    written file evaluates as the checkpoint."""
    run(eventprop_bin, "train", "yinyang", "--engine", "exact", "--hidden", "12",
        "--recurrent", "--train-taus", "--train-threshold", "--epochs", "1", "--train-size",
        "60", "--val-size", "10", "--test-size", "40", "--quiet", "--out", tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    tensors, _ = enir.read_checkpoint(ckpt)
    g = enir.to_graph(ckpt)
    # Tensors (NetworkSpec::tensor_names): weight.0-1 feed-forward, recurrent.0 (12, 12),
    # log_tau_mem.0-1 and log_tau_syn.0-1 (hidden, output), threshold_param.0-1 (s).
    assert np.array_equal(g.nodes["rec0"].weight, tensors["recurrent.0"])
    assert np.abs(tensors["recurrent.0"]).sum() > 0  # the recurrent matrix is not empty
    tau_mem = np.exp(tensors["log_tau_mem.0"].reshape(-1))
    np.testing.assert_allclose(g.nodes["lif0"].tau_mem, tau_mem, rtol=1e-15)
    assert len(set(g.nodes["lif0"].tau_mem)) > 1  # trained apart: not the nominal value
    np.testing.assert_allclose(g.nodes["readout"].tau_syn,
                               np.exp(tensors["log_tau_syn.1"].reshape(-1)), rtol=1e-15)
    np.testing.assert_array_equal(g.nodes["lif0"].w_in, g.nodes["lif0"].tau_syn)
    # threshold = max(leak, reset) + e^s with leak = reset = 0 (exact preset)
    np.testing.assert_allclose(g.nodes["readout"].v_threshold,
                               np.exp(tensors["threshold_param.1"].reshape(-1)), rtol=1e-15)
    assert len(set(g.nodes["lif0"].v_threshold)) > 1
    py = tmp_path / "py.nir"
    enir.export(ckpt, py)
    expected = run(eventprop_bin, "eval", "--checkpoint", ckpt).stdout
    assert run(eventprop_bin, "eval", "--checkpoint", py).stdout == expected


def test_trained_delays_are_refused_by_both_exports(eventprop_bin, event_data, tmp_path):
    run(eventprop_bin, "train", "events", "--train", event_data, "--epochs", "1", "--hidden",
        "8", "--delays", "--threads", "1", "--quiet", "--out", tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    r = run(eventprop_bin, "export", "--checkpoint", ckpt, "--nir", tmp_path / "cli.nir", ok=False)
    assert r.returncode == 1 and enir.DELAYS_REFUSED in r.stderr, r.stderr
    with pytest.raises(ValueError, match="trained delays are not exported") as e:
        enir.export(ckpt, tmp_path / "py.nir")
    assert enir.DELAYS_REFUSED in str(e.value)
    assert not (tmp_path / "py.nir").exists() and not (tmp_path / "cli.nir").exists()


def test_a_delay_line_input_is_refused_by_both_exports_and_by_load(eventprop_bin, event_data,
                                                                   tmp_path):
    run(eventprop_bin, "train", "events", "--train", event_data, "--epochs", "1", "--hidden",
        "8", "--delay-line", "3", "--threads", "1", "--quiet", "--out", tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    r = run(eventprop_bin, "export", "--checkpoint", ckpt, "--nir", tmp_path / "cli.nir", ok=False)
    assert r.returncode == 1 and "events.delay_line: expected 1 for a NIR export" in r.stderr
    with pytest.raises(ValueError, match="events.delay_line: expected 1 for a NIR export"):
        enir.export(ckpt, tmp_path / "py.nir")
    with pytest.raises(ValueError, match="expected no delay-line input, got events.delay_line = 3"):
        eventprop.load(ckpt)
    assert not (tmp_path / "py.nir").exists() and not (tmp_path / "cli.nir").exists()


def test_unsupported_node_is_a_one_line_error(eventprop_bin, trained, tmp_path):
    _, ckpt, _ = trained
    g = enir.to_graph(ckpt)
    n = g.nodes["lif0"].tau_mem.shape[0]
    g.nodes["lif0"] = nir.LIF(tau=np.full(n, 1e-5), r=np.ones(n), v_leak=np.zeros(n),
                              v_threshold=np.ones(n))
    path = tmp_path / "lif.nir"
    nir.write(path, g)
    r = run(eventprop_bin, "eval", "--checkpoint", path, ok=False)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "node `lif0` (LIF): expected a CubaLIF hidden layer" in lines[0]


def test_bad_checkpoint_for_python_export(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{}   ")
    with pytest.raises(ValueError, match="not an eventprop checkpoint"):
        enir.to_graph(p)


def test_nir_helpers_validate_their_arguments(eventprop_bin, trained, tmp_path):
    _, ckpt, _ = trained
    g = enir.to_graph(ckpt)
    for dt in (0.0, -1e-6, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="dt: expected a finite value > 0"):
            enir.to_per_step(g, dt)
    x = np.zeros((5, 1, 5))
    with pytest.raises(ValueError, match="dt: expected a finite value > 0"):
        enir.simulate(g, x, dt=0.0)
    lif = g.nodes["lif0"]
    n = lif.tau_mem.shape[0]

    def with_(**kw):
        p = dict(tau_syn=lif.tau_syn, tau_mem=lif.tau_mem, r=lif.r, v_leak=lif.v_leak,
                 v_threshold=lif.v_threshold, v_reset=lif.v_reset, w_in=lif.w_in)
        p.update(kw)
        g.nodes["lif0"] = nir.CubaLIF(**p)
        return g

    with_(w_in=np.full(n, np.nan))
    with pytest.raises(ValueError, match=r"node `lif0` \(CubaLIF\): `w_in`: expected finite"):
        enir.to_per_step(g, 1e-6)
    with pytest.raises(ValueError, match=r"`w_in`: expected finite"):
        enir.simulate(g, x, dt=1e-6)
    with_(w_in=lif.w_in, tau_syn=np.full(n, -5e-6))
    with pytest.raises(ValueError, match=r"`tau_syn`: expected finite values > 0, got -5e-06"):
        enir.simulate(g, x, dt=1e-6)
