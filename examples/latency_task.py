#!/usr/bin/env python3
"""A small latency-coded event task, written as an event `.npz` (docs/data.md).

Each class has a random 8x8 prototype image (intensities uniform in [0, 1]); a sample is
its class prototype plus Gaussian pixel noise (std `--noise`), clipped to [0, 1]. Every
pixel is one input channel that spikes once, at `(1 - intensity) * T` (bright pixels
early). Standard library only (no numpy), so it runs anywhere Python 3 does:

    python3 examples/latency_task.py --out latency_train.npz --samples 1400 --seed 1
    python3 examples/latency_task.py --out latency_test.npz --samples 600 --seed 2
    eventprop train events --train latency_train.npz --test latency_test.npz

`--add-noise FILE` instead copies an event file with Poisson background spikes added
(`--rate` Hz per channel over `--window` seconds), e.g. to make a noisy timing task:

    eventprop data timing --out t.npz --channels 100 --classes 10 --duration 0.1 \
        --events-per-sample 400 --jitter 0.02 --samples 1400 --seed 1
    python3 examples/latency_task.py --add-noise t.npz --out t_noisy.npz --rate 5 --window 0.1

Train and test files of one task share `--task-seed` (the prototypes) and differ in
`--seed` (the samples).
"""

import argparse
import io
import math
import re
import random
import struct
import zipfile


def npy(dtype, values):
    """A 1-D little-endian `.npy` file (dtype `<f8` or `<i8`)."""
    fmt = {"<f8": "d", "<i8": "q"}[dtype]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (dtype, len(values))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    out = io.BytesIO()
    out.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
    out.write(struct.pack("<%d%s" % (len(values), fmt), *values))
    return out.getvalue()


def read_npy(data):
    """A 1-D little-endian `.npy` array (float or integer) as a list."""
    assert data[:6] == b"\x93NUMPY"
    major = data[6]
    hl_size = 2 if major == 1 else 4
    hl = int.from_bytes(data[8:8 + hl_size], "little")
    header = data[8 + hl_size:8 + hl_size + hl].decode("latin1")
    descr = re.search(r"'descr':\s*'([^']+)'", header).group(1)
    n = int(re.search(r"'shape':\s*\((\d+),?\)", header).group(1))
    fmt = {"<f8": "d", "<f4": "f", "<i8": "q", "<u8": "Q", "<i4": "i", "<u4": "I", "<u2": "H"}[descr]
    body = data[8 + hl_size + hl:]
    return list(struct.unpack("<%d%s" % (n, fmt), body[: n * struct.calcsize(fmt)]))


def add_noise(a):
    """Adds Poisson background spikes at `--rate` Hz per channel to every sample."""
    with zipfile.ZipFile(a.input) as z:
        arr = {name[:-4]: read_npy(z.read(name)) for name in z.namelist()}
    times, units, offsets = arr["times"], arr["units"], arr["offsets"]
    channels = a.channels or (max(units) + 1)
    rng = random.Random(7_919 * a.seed + 3)
    out_t, out_u, out_o = [], [], [0]
    for s in range(len(arr["labels"])):
        events = list(zip(times[offsets[s]:offsets[s + 1]], units[offsets[s]:offsets[s + 1]]))
        for u in range(channels):
            t = rng.expovariate(a.rate) if a.rate > 0 else math.inf
            while t < a.window:
                events.append((t, u))
                t += rng.expovariate(a.rate)
        events.sort()
        out_t.extend(t for t, _ in events)
        out_u.extend(u for _, u in events)
        out_o.append(len(out_t))
    write(a.out, out_t, out_u, arr["labels"], out_o)
    print("%s: %d samples, %d events (%d noise)" % (a.out, len(arr["labels"]), len(out_t), len(out_t) - len(times)))


def write(path, times, units, labels, offsets):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("times.npy", npy("<f8", times))
        z.writestr("units.npy", npy("<i8", units))
        z.writestr("labels.npy", npy("<i8", labels))
        z.writestr("offsets.npy", npy("<i8", offsets))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, default=1400)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--side", type=int, default=8, help="image side (channels = side^2)")
    p.add_argument("--window", type=float, default=0.05, help="T (s)")
    p.add_argument("--noise", type=float, default=0.25, help="pixel noise std")
    p.add_argument("--task-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--add-noise", metavar="NPZ", dest="input",
                   help="instead: copy event file NPZ to --out with Poisson noise at --rate Hz")
    p.add_argument("--rate", type=float, default=5.0, help="noise rate per channel (Hz)")
    p.add_argument("--channels", type=int, default=0, help="noise channels (default: from the data)")
    a = p.parse_args()
    if a.input:
        add_noise(a)
        return
    n = a.side * a.side
    proto_rng = random.Random(a.task_seed)
    protos = [[proto_rng.random() for _ in range(n)] for _ in range(a.classes)]
    rng = random.Random(1_000_003 * a.seed + 17)
    times, units, labels, offsets = [], [], [], [0]
    for _ in range(a.samples):
        k = rng.randrange(a.classes)
        events = []
        for u in range(n):
            x = min(1.0, max(0.0, protos[k][u] + rng.gauss(0.0, a.noise)))
            events.append(((1.0 - x) * a.window, u))
        events.sort()
        times.extend(t for t, _ in events)
        units.extend(u for _, u in events)
        labels.append(k)
        offsets.append(len(times))
    write(a.out, times, units, labels, offsets)
    print("%s: %d samples, %d channels, %d classes, %d events" % (a.out, a.samples, n, a.classes, len(times)))


if __name__ == "__main__":
    main()
