"""eventprop.chip: the mock chip's hw_data through EventPropNeuronFunction, and recording
files (the path a real chip's recording takes)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from eventprop.chip import MockChip, map_recording  # noqa: E402
from eventprop.torch import EventPropLIF, EventPropSynapse  # noqa: E402


def raster(b: int, seed: int) -> torch.Tensor:
    """Yin-Yang-like inputs: one spike per channel 0-3 in steps 2-26, the bias at step 2."""
    rng = np.random.default_rng(seed)
    x = np.zeros((38, b, 5))
    for j in range(4):
        x[rng.integers(2, 27, size=b), np.arange(b), j] = 1.0
    x[2, :, 4] = 1.0
    return torch.from_numpy(x)


def weights(seed: int, hidden: int = 16):
    g = torch.Generator().manual_seed(seed)
    w0 = torch.randn(hidden, 5, generator=g, dtype=torch.float64) * 0.5 + 0.8
    w1 = torch.randn(3, hidden, generator=g, dtype=torch.float64) * 0.3
    return w0, w1


@pytest.fixture(scope="module")
def chip():
    return MockChip(hidden=[16], chip_seed=3)


def test_run_shapes_and_determinism(chip):
    w0, w1 = weights(0)
    x = raster(6, 0)
    hw = chip.run([w0, w1], x)
    assert len(hw) == 2
    z, v = hw[0]
    assert z.shape == (38, 6, 16) and torch.all(v == 0)
    assert set(torch.unique(z).tolist()) <= {0.0, 1.0} and z.sum() > 0
    zo, vo = hw[1]
    assert zo.shape == (38, 6, 3) and vo.shape == (38, 6, 3)
    assert torch.all(zo == 0) and torch.isfinite(vo).all()
    stats = chip.last_stats
    assert stats["spikes"] >= z.sum().item() and stats["total_weights"] == 16 * 5 + 3 * 16
    again = chip.run([w0, w1], x)
    assert torch.equal(hw[0][0], again[0][0]) and torch.equal(hw[1][1], again[1][1])


def test_readout_on_cadc_grid(chip):
    """The output membrane is (code - readout_offset) * trace_scale with integer 8-bit
    codes (the readout's own operating point, its rest code measured by calibration), so
    every sample lies on that lattice (the CADC rounds). Grid steps at even µs hit a sample
    exactly (CADC every 2 µs, linear interpolation)."""
    w0, w1 = weights(1)
    _, v = chip.run([w0, w1], raster(4, 1))[1]
    cal = chip.calibration
    codes = v[::2].numpy() / cal["trace_scale"] + cal["readout_offset"]
    assert np.allclose(codes, np.round(codes), atol=1e-6)
    assert codes.min() >= -1e-6 and codes.max() <= 255 + 1e-6


def test_switches_change_the_recording():
    w0, w1 = weights(2)
    x = raster(4, 2)
    base = MockChip(hidden=[16], chip_seed=0, config={"noise": False}).run([w0, w1], x)
    noisy = MockChip(hidden=[16], chip_seed=0).run([w0, w1], x)
    other = MockChip(hidden=[16], chip_seed=1, config={"noise": False}).run([w0, w1], x)
    assert not torch.equal(base[1][1], noisy[1][1])
    assert not torch.equal(base[1][1], other[1][1])


def test_hil_gradient_through_neuron_function(chip):
    """The reference's HIL step: hidden spikes from the chip through EventPropLIF's hw_data
    (the output equals the recording), the readout value from the chip with the software
    gradient; the weight gradients are finite and non-zero."""
    w0, w1 = weights(3)
    x = raster(8, 3)
    hw = chip.run([w0, w1], x)
    syn = EventPropSynapse(5, 16, dtype=torch.float64)
    with torch.no_grad():
        syn.weight.copy_(w0)
    p = chip.params
    lif = EventPropLIF(16, tau_syn=p["tau_syn"], tau_mem=p["tau_mem"], dt=chip.dt,
                       discretization="corrected", dtype=torch.float64)
    w_out = w1.clone().requires_grad_(True)
    z, _, _ = lif(syn(x), hw_data=hw[0])
    assert torch.equal(z.detach(), hw[0][0])
    y = z @ w_out.T
    k_syn, k_mem = chip.dt / p["readout_tau_syn"], chip.dt / p["readout_tau_mem"]
    i = torch.zeros_like(y[0])
    v = torch.zeros_like(y[0])
    vs = [v]
    for t in range(y.shape[0] - 1):
        i = i * (1 - k_syn) + y[t]
        v = v + k_mem * (-v + i)
        vs.append(v)
    v_sw = torch.stack(vs)
    v_hil = v_sw + (hw[1][1] - v_sw).detach()
    assert torch.allclose(v_hil.detach(), hw[1][1], rtol=0, atol=1e-12)
    loss = torch.nn.functional.cross_entropy(v_hil.amax(dim=0), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    loss.backward()
    for g in (syn.weight.grad, w_out.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_bad_arguments(chip):
    w0, w1 = weights(0)
    with pytest.raises(ValueError, match=r"weights\[0\]: expected shape \(16, 5\)"):
        chip.run([w0[:, :4], w1], raster(2, 0))
    with pytest.raises(ValueError, match=r"input: expected shape \(38, B, 5\)"):
        chip.run([w0, w1], raster(2, 0)[:10])
    with pytest.raises(ValueError, match="input: expected spikes 0 or 1"):
        chip.run([w0, w1], raster(2, 0) * 0.5)
    with pytest.raises(ValueError, match="weights: expected 2 arrays"):
        chip.run([w0], raster(2, 0))
    with pytest.raises(ValueError, match="mock_toml"):
        MockChip(hidden=[4], config={"no_such_key": True})
    # a network far beyond the mock's synapse bound: refused before anything is allocated
    with pytest.raises(ValueError, match="hidden: expected at most 134217728 synapses"):
        MockChip(hidden=[10**6, 10**6])
    # chip seeds outside u64 (they were an OverflowError of the binding)
    for seed in (-1, 2**64, 1.5, True):
        with pytest.raises(ValueError, match=r"chip_seed: expected an integer in 0..2\^64-1"):
            MockChip(hidden=[4], chip_seed=seed)
    with pytest.raises(ValueError, match=r"hidden\[0\]: expected an integer >= 1, got -1"):
        MockChip(hidden=[-1])
    w = w0.clone()
    w[0, 0] = math.nan
    with pytest.raises(ValueError):
        chip.run([w, w1], raster(2, 0))


def write_recording(path, spike_time=0.5e-6, values=(80.0, 125.0, 170.0)):
    """A one-layer recording of 1 sample and 1 neuron in the record_file layout."""
    i = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    np.savez(
        path,
        samples=i([1]),
        layers=i([1]),
        **{
            "l0.size": i([1]),
            "l0.spikes_recorded": i([1]),
            "l0.spike_sample": i([0]),
            "l0.spike_neuron": i([0]),
            "l0.spike_time": np.array([spike_time]),
            "l0.trace_offsets": i([0, 3]),
            "l0.trace_times": np.array([0.0, 2e-6, 4e-6]),
            "l0.trace_values": np.array(values, dtype=np.float64),
        },
    )


def test_map_recording(tmp_path):
    """Provenance: a spike at 0.5 µs goes to step round(0.5) = 1 (half away from zero);
    codes 80, 125, 170 at 0, 2, 4 µs with offset 80 and scale 1/45 are 0, 1, 2 model
    units, and step 1 (1 µs) interpolates to 0.5."""
    p = tmp_path / "rec.npz"
    write_recording(p)
    (layers, stats) = map_recording(p, dt=1e-6, steps=5, offset=80.0, trace_scale=1 / 45)
    z, v = layers[0]
    assert z[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert np.allclose(v[:, 0, 0].numpy(), [0.0, 0.5, 1.0, 1.5, 2.0])
    assert stats == {"spikes": 1, "collapsed": 0, "dropped": 0, "held": 0}
    # 6 steps read 0..5 µs; the trace ends at 4 µs: one read holds the last sample
    (_, stats) = map_recording(p, dt=1e-6, steps=6, offset=80.0, trace_scale=1 / 45)
    assert stats["held"] == 1
    # shifted past the trace (reads at 4.5..8.5 µs): no grid time reads a sample
    with pytest.raises(ValueError, match=r"trace samples overlapping the grid's read times"):
        map_recording(p, dt=1e-6, steps=5, shift=4.5e-6)


def test_map_recording_errors(tmp_path):
    p = tmp_path / "rec.npz"
    write_recording(p, spike_time=math.nan)
    with pytest.raises(ValueError, match=r"l0\.spike_time.*finite"):
        map_recording(p, dt=1e-6, steps=5)
    write_recording(p, values=(80.0, math.inf, 1.0))
    with pytest.raises(ValueError, match=r"l0\.trace_values.*finite"):
        map_recording(p, dt=1e-6, steps=5)
    write_recording(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="rec.npz"):
        map_recording(p, dt=1e-6, steps=5)
    # a missing file: the path and the reason
    with pytest.raises(ValueError, match=r"nonexistent\.npz: No such file or directory"):
        map_recording(tmp_path / "nonexistent.npz", dt=1e-6, steps=5)
    with pytest.raises(ValueError, match="interpolation"):
        map_recording(p, dt=1e-6, steps=5, interpolation="cubic")
    with pytest.raises(ValueError):
        map_recording(tmp_path / "missing.npz", dt=1e-6, steps=5)


def test_docs_hil_snippet_runs(eventprop_bin, tmp_path, monkeypatch):
    """docs/hil.md's Python snippet, on a recording written by `eventprop chip record`: the
    HIL gradient reaches both weights, and the recording maps with the chip's calibration
    (the readout rests at 0 model units at step 0, up to the CADC's offsets)."""
    import re
    import subprocess
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "hil.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "MockChip" in b)
    monkeypatch.chdir(tmp_path)
    r = subprocess.run([eventprop_bin, "chip", "record", "--chip", "mock", "--size", "7",
                        "--out", "rec.npz"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    scope = {}
    exec(compile(code, "docs/hil.md", "exec"), scope)
    hidden, readout, hw, stats = scope["hidden"], scope["readout"], scope["hw"], scope["stats"]
    assert hidden.weight.grad.abs().sum() > 0 and readout.weight.grad.abs().sum() > 0
    assert [tuple(s.shape) for s, _ in hw] == [(38, 7, 120), (38, 7, 3)]
    assert stats["spikes"] == int(hw[0][0].sum()) + stats["collapsed"] + stats["dropped"] > 0
    assert hw[1][1][0].abs().max() < 0.2 and hw[1][1].abs().max() > 0.01
