"""NIR export/import through the `eventprop` binary and the `nir` package.

Expected values: a network exported by `eventprop export`, read and re-written by
`nir.read`/`nir.write` (gzip-compressed, h5py's layout), must evaluate to exactly what the
checkpoint itself evaluates to (`eventprop eval` on the safetensors file: every printed
line); `eventprop.nir.to_graph` must give the graph the binary writes.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import nir  # installed by .ci/python.sh

import eventprop.nir as enir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def eventprop_bin():
    """The `eventprop` binary: $EVENTPROP_BIN, else built from this checkout (debug)."""
    if os.environ.get("EVENTPROP_BIN"):
        return os.environ["EVENTPROP_BIN"]
    cargo = shutil.which("cargo")
    assert cargo, "cargo is needed to build the eventprop binary (or set EVENTPROP_BIN)"
    subprocess.run(
        [cargo, "build", "--quiet", "-p", "eventprop-cli", "--bin", "eventprop"],
        cwd=ROOT, check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "eventprop")


def run(bin_, *args, ok=True):
    r = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


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
