"""docs/data.md's tonic → event `.npz` snippet, on small data sets made of tonic's event
arrays (no download): the file holds each event at its channel `x + W (y + H p)` and time
in seconds, and `eventprop train events` trains on it."""

import re
from pathlib import Path

import numpy as np

import tonic  # installed by .ci/python.sh

from conftest import run  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def snippet():
    code = next(b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
                if "def tonic_to_npz" in b)
    scope = {}
    exec(compile(code, "docs/data.md", "exec"), scope)
    return scope["tonic_to_npz"]


class Tiny:
    """A tonic-style data set: ``sensor_size``, samples ``(events, label)``."""

    def __init__(self, dtype, sensor_size, samples):
        self.dtype, self.sensor_size, self.samples = dtype, sensor_size, samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        fields, label = self.samples[i]
        names = self.dtype.names
        return tonic.io.make_structured_array(*(fields[n] for n in names), dtype=self.dtype), label


def test_audio_like_set_converts_and_trains(eventprop_bin, tmp_path):
    rng = np.random.default_rng(0)
    samples = []
    for k in range(40):
        label = k % 2
        n = 30
        # class 0 fires early, class 1 late, on the same channels: only timing separates them
        t = np.sort(rng.uniform(0, 20_000, n) + (0 if label == 0 else 25_000)).astype(np.int64)
        samples.append(({"t": t, "x": rng.integers(0, 8, n), "p": np.ones(n, np.int64)}, label))
    ds = Tiny(tonic.datasets.SHD.dtype, (8, 1, 1), samples)
    out = tmp_path / "audio.npz"
    snippet()(ds, out)
    f = np.load(out)
    assert f["offsets"].tolist() == list(range(0, 30 * 41, 30))
    assert f["labels"].tolist() == [k % 2 for k in range(40)]
    np.testing.assert_array_equal(f["units"][:30], samples[0][0]["x"])
    np.testing.assert_allclose(f["times"][30:60], samples[1][0]["t"] * 1e-6)
    r = run(eventprop_bin, "train", "events", "--train", out, "--test", out, "--channels", "8",
            "--dt", "1e-3", "--hidden", "16", "--epochs", "1", "--threads", "1", "--quiet",
            "--out", tmp_path / "run")
    cfg = (tmp_path / "run" / "config.toml").read_text()
    assert "channels = 8" in cfg and "classes = 2" in cfg, cfg
    assert "test accuracy" in r.stdout + r.stderr


def test_camera_like_set_maps_x_y_and_polarity_to_channels(tmp_path):
    dtype = tonic.datasets.NMNIST.dtype  # (x, y, t, p)
    fields = {"x": np.array([0, 3, 1, 3]), "y": np.array([0, 0, 2, 2]),
              "t": np.array([5, 10, 15, 20]), "p": np.array([0, 1, 1, 0])}
    ds = Tiny(dtype, (4, 3, 2), [(fields, 3)])
    out = tmp_path / "cam.npz"
    snippet()(ds, out)
    f = np.load(out)
    # x + 4 (y + 3 p)
    assert f["units"].tolist() == [0, 3 + 4 * 3, 1 + 4 * (2 + 3), 3 + 4 * 2]
    np.testing.assert_allclose(f["times"], [5e-6, 10e-6, 15e-6, 20e-6])
    assert f["labels"].tolist() == [3] and f["offsets"].tolist() == [0, 4]
