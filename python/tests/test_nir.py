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


def test_python_export_is_the_cli_export(eventprop_bin, trained, tmp_path):
    engine, ckpt, expected = trained
    cli = tmp_path / "cli.nir"
    run(eventprop_bin, "export", "--checkpoint", ckpt, "--nir", cli)
    a = nir.read(cli)
    b = enir.to_graph(ckpt)
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
    py = tmp_path / "py.nir"
    enir.export(ckpt, py)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.nir", "py.nir"]  # no temporaries
    assert run(eventprop_bin, "eval", "--checkpoint", py).stdout == expected


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


def test_python_export_refuses_learned_extras_like_the_cli(eventprop_bin, tmp_path):
    """A network with recurrent weights is refused by both exports (never written as a
    plain feed-forward graph)."""
    run(eventprop_bin, "train", "yinyang", "--recurrent", "--epochs", "1", "--train-size", "50",
        "--val-size", "10", "--test-size", "10", "--quiet", "--out", tmp_path / "rec")
    ckpt = tmp_path / "rec" / "checkpoint.safetensors"
    r = run(eventprop_bin, "export", "--checkpoint", ckpt, "--nir", tmp_path / "cli.nir", ok=False)
    assert r.returncode == 1 and "[learn]" in r.stderr, r.stderr
    with pytest.raises(ValueError, match=r"\[learn\] recurrent"):
        enir.export(ckpt, tmp_path / "py.nir")
    assert not (tmp_path / "py.nir").exists()


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
