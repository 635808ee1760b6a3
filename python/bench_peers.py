"""Benchmark: one first-layer training pass, `eventprop bench` (Rust CLI, fused and seed
paths) against Python SNN libraries doing the same work, in one run.

Pass = synapse forward (input spikes through W), a current-based LIF layer over T steps,
backward of `sum(spikes * grad_spikes)` to W. Same sizes and statistics as `eventprop
bench` and python/bench.py: input spikes Bernoulli(p = 0.05), W ~ N(0.3 / (N_in p),
1 / sqrt(N_in p)), grad_spikes ~ N(0, 1), threshold 1, leak = reset = 0, tau_syn = 5 µs,
tau_mem = 10 µs, dt = 1 µs, float32, the same thread count for torch and for the Rust
kernels (rayon).

Peers (whichever are installed; a missing one is reported and skipped):

* plain PyTorch: python/tests/reference.py (the seed's algorithm with torch ops and a
  custom autograd function, as hxtorch runs it);
* snnTorch `Synaptic` (alpha = exp(-dt/tau_syn), beta = exp(-dt/tau_mem), reset to zero),
  stepped in a Python loop, backpropagation through time with its surrogate gradient;
* norse `LIF` (current-based LIF with `LIFParameters(tau_syn_inv, tau_mem_inv, v_th=1)`,
  the whole sequence in one call), backpropagation through time.

The peers use surrogate gradients (BPTT), not EventProp: the work per pass is comparable
(forward over T steps, one backward pass), the numbers are not; only the timing is
compared.

``--epoch``: the real job instead, a training step of the whole event network on an event
file (default: an SHD-shaped generated timing task written with ``eventprop data timing``;
or ``--data FILE``): 700-256-20 (the channels of the file, ``--hidden``), batch 32, dt =
1 ms over the file's window, hidden LIF tau_syn = 5 ms, tau_mem = 20 ms, threshold 1,
a leaky-integrator readout (the same torch loop for every peer), cross-entropy of the
time-summed readout voltage, Adam. Each peer's step rasterises the batch's events into a
dense ``(T, B, channels)`` tensor (its input format), runs forward and backward and the
optimiser step; ``eventprop bench --task events --rows plain`` trains a whole epoch of
``train events`` on the same file (its own rasterisation-free fused path, data-calibrated
init and ``sum_exp`` loss). Training and evaluation samples/s are compared. Usage:

    python python/bench_peers.py [--eventprop PATH] [--sizes yinyang,medium,shd]
        [--threads 2] [--json FILE]
    python python/bench_peers.py --epoch [--eventprop PATH] [--data FILE --test FILE]
        [--samples 1000] [--batches 8] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch

from bench_data import DT, PARAMS, SIZES, TAU_MEM, TAU_SYN, make_data  # noqa: E402

REPS = {"yinyang": 30, "medium": 5, "shd": 3}


def reference_pass():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "tests"))
    from reference import RefNeuronFunction, RefSynapseFunction  # noqa: E402

    params = [torch.tensor(p) for p in PARAMS]

    def run(spikes, w, g):
        w = w.detach().requires_grad_()
        y = RefSynapseFunction.apply(spikes, w)
        z, _, _ = RefNeuronFunction.apply(y, *params, None, DT)
        z.backward(g)
        return w.grad

    return run


def snntorch_pass():
    import snntorch as snn

    alpha, beta = math.exp(-DT / TAU_SYN), math.exp(-DT / TAU_MEM)
    lif = snn.Synaptic(alpha=alpha, beta=beta, threshold=1.0, reset_mechanism="zero")

    def run(spikes, w, g):
        w = w.detach().requires_grad_()
        cur = torch.nn.functional.linear(spikes, w)
        syn, mem = lif.init_synaptic()
        out = []
        # unbind, not cur[t]: the backward of T selections would fill T full-size tensors
        for ct in cur.unbind(0):
            spk, syn, mem = lif(ct, syn, mem)
            out.append(spk)
        (torch.stack(out) * g).sum().backward()
        return w.grad

    return run


def norse_pass():
    import norse.torch as norse

    p = norse.LIFParameters(
        tau_syn_inv=torch.tensor(1.0 / TAU_SYN),
        tau_mem_inv=torch.tensor(1.0 / TAU_MEM),
        v_leak=torch.tensor(0.0),
        v_th=torch.tensor(1.0),
        v_reset=torch.tensor(0.0),
    )
    lif = norse.LIF(p, dt=DT)

    def run(spikes, w, g):
        w = w.detach().requires_grad_()
        cur = torch.nn.functional.linear(spikes, w)
        z, _ = lif(cur)
        (z * g).sum().backward()
        return w.grad

    return run


def timed(fn, reps, *args):
    fn(*args)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def ours(exe, size, threads):
    """`eventprop bench` records for `size`: {path: median_ms}."""
    out = subprocess.run(
        [exe, "bench", "--size", size, "--threads", str(threads), "--path", "both",
         "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["path"]: (r["median_ms"], r["min_ms"]) for r in recs}


# --- --epoch: the event network's training step ----------------------------------------

EPOCH_DT, EPOCH_TAU_SYN, EPOCH_TAU_MEM, BATCH, EVAL_BATCH = 1e-3, 5e-3, 2e-2, 32, 64


def read_events(path):
    """An event `.npz` (`times`, `units`, `offsets`, `labels`) as a list of samples."""
    import numpy as np

    d = np.load(path)
    # each `d[key]` reads the whole array again: once each (a view per sample of a fresh
    # copy of the file's events kept every copy alive, 24 GB for 1000 SHD-shaped samples)
    off, times, units = d["offsets"], d["times"], d["units"]
    samples = [(times[off[k]:off[k + 1]], units[off[k]:off[k + 1]])
               for k in range(len(off) - 1)]
    return samples, d["labels"]


def rasterise(samples, steps, channels):
    """Events -> dense spikes `(T, B, channels)` at dt = 1 ms (float32; events past the
    window are dropped)."""
    import numpy as np

    t = np.concatenate([s[0] for s in samples])
    u = np.concatenate([s[1] for s in samples]).astype("int64")
    b = np.repeat(np.arange(len(samples)), [len(s[0]) for s in samples])
    k = (t / EPOCH_DT).astype("int64")
    keep = k < steps
    flat = (k[keep] * len(samples) + b[keep]) * channels + u[keep]
    counts = np.bincount(flat, minlength=steps * len(samples) * channels)
    return torch.from_numpy(counts.astype("float32")).view(steps, len(samples), channels)


def readout(cur):
    """Leaky-integrator readout over `cur` `(T, B, n_out)` (torch ops, backpropagated
    through time): the voltage summed over time, `(B, n_out)`."""
    a, b = math.exp(-EPOCH_DT / EPOCH_TAU_SYN), math.exp(-EPOCH_DT / EPOCH_TAU_MEM)
    i = torch.zeros_like(cur[0])
    v = torch.zeros_like(cur[0])
    total = torch.zeros_like(cur[0])
    # unbind, not cur[t]: the backward of T selections would fill T full-size tensors
    for c in cur.unbind(0):
        i = a * i + c
        v = b * v + (1 - b) * i
        total = total + v
    return total


def hidden_torch():
    """The seed's algorithm: RefSynapseFunction + RefNeuronFunction (EventProp)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "tests"))
    from reference import RefNeuronFunction, RefSynapseFunction  # noqa: E402

    def run(x, w):
        y = RefSynapseFunction.apply(x, w)
        z, _, _ = RefNeuronFunction.apply(y, 0.0, 0.0, 1.0, EPOCH_TAU_SYN, EPOCH_TAU_MEM,
                                          None, EPOCH_DT)
        return z

    return run


def hidden_snntorch():
    import snntorch as snn

    alpha, beta = math.exp(-EPOCH_DT / EPOCH_TAU_SYN), math.exp(-EPOCH_DT / EPOCH_TAU_MEM)
    lif = snn.Synaptic(alpha=alpha, beta=beta, threshold=1.0, reset_mechanism="zero")

    def run(x, w):
        syn, mem = lif.init_synaptic()
        out = []
        # the tutorials' loop: the input layer applied per step
        for xt in x.unbind(0):
            spk, syn, mem = lif(torch.nn.functional.linear(xt, w), syn, mem)
            out.append(spk)
        return torch.stack(out)

    return run


def hidden_norse():
    import norse.torch as norse

    p = norse.LIFParameters(
        tau_syn_inv=torch.tensor(1.0 / EPOCH_TAU_SYN),
        tau_mem_inv=torch.tensor(1.0 / EPOCH_TAU_MEM),
        v_leak=torch.tensor(0.0), v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0),
    )
    lif = norse.LIF(p, dt=EPOCH_DT)

    def run(x, w):
        z, _ = lif(torch.nn.functional.linear(x, w))
        return z

    return run


def epoch_peer(hidden, train, test, steps, channels, n_hidden, n_out, batches):
    """Training samples/s over `batches` steps of batch 32 (after one warm-up step) and
    evaluation samples/s over the test samples (batch 64, no gradients)."""
    gen = torch.Generator().manual_seed(0)
    w1 = (torch.randn(n_hidden, channels, generator=gen) * 0.4).requires_grad_()
    w2 = (torch.randn(n_out, n_hidden, generator=gen) * 0.1).requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=5e-3)
    samples, labels = train

    def step(k):
        idx = [(k * BATCH + j) % len(samples) for j in range(BATCH)]
        x = rasterise([samples[i] for i in idx], steps, channels)
        y = torch.as_tensor(labels[idx])
        z = hidden(x, w1)
        loss = torch.nn.functional.cross_entropy(
            readout(torch.nn.functional.linear(z, w2)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(z.detach().sum()) / BATCH

    step(0)  # warm-up
    t0 = time.perf_counter()
    spikes = [step(k) for k in range(1, batches + 1)]
    train_s = time.perf_counter() - t0
    test_samples = test[0]
    t0 = time.perf_counter()
    with torch.no_grad():
        for k in range(0, len(test_samples), EVAL_BATCH):
            x = rasterise(test_samples[k:k + EVAL_BATCH], steps, channels)
            readout(torch.nn.functional.linear(hidden(x, w1), w2))
    eval_s = time.perf_counter() - t0
    return {
        "train_samples": batches * BATCH,
        "train_samples_per_s": batches * BATCH / train_s,
        "eval_samples": len(test_samples),
        "eval_samples_per_s": len(test_samples) / eval_s if test_samples else None,
        "hidden_spikes_per_sample": statistics.mean(spikes),
    }


def epoch_main(args):
    import tempfile

    work = tempfile.mkdtemp(prefix="bench-peers-")
    if args.data is None:
        args.data, args.test = os.path.join(work, "train.npz"), os.path.join(work, "test.npz")
        for path, n, seed in [(args.data, args.samples, 1),
                              (args.test, max(args.samples // 4, 1), 2)]:
            subprocess.run([args.eventprop, "data", "timing", "--out", path, "--samples",
                            str(n), "--seed", str(seed)], check=True, capture_output=True)
    train, test = read_events(args.data), read_events(args.test)
    channels = 1 + max(int(u.max()) for _, u in train[0] + test[0] if len(u))
    t_max = max(float(t.max()) for t, _ in train[0] + test[0] if len(t))
    steps = math.ceil(t_max / EPOCH_DT)
    n_out = 1 + int(max(train[1].max(), test[1].max()))
    # the peers' evaluation: the first 4 batches of the test file
    test_head = (test[0][:4 * EVAL_BATCH], test[1][:4 * EVAL_BATCH])
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32; "
          f"{channels}-{args.hidden}-{n_out}, {steps} steps of 1 ms, batch {BATCH}; "
          f"{len(train[0])} train / {len(test[0])} test samples in {args.data}")
    results = []
    for name, make in [("torch", hidden_torch), ("snntorch", hidden_snntorch),
                       ("norse", hidden_norse)]:
        try:
            hidden = make()
        except ImportError as e:
            print(f"{name}: not installed ({e}); skipped", file=sys.stderr)
            continue
        r = epoch_peer(hidden, train, test_head, steps, channels, args.hidden, n_out,
                       args.batches)
        r["name"] = name
        results.append(r)
        print(f"{name:<10} train {r['train_samples_per_s']:8.1f} samples/s "
              f"({r['train_samples']} samples) | eval {r['eval_samples_per_s']:8.1f} "
              f"samples/s ({r['eval_samples']} samples)", flush=True)
    out = subprocess.run(
        [args.eventprop, "bench", "--task", "events", "--rows", "plain", "--data", args.data,
         "--test", args.test, "--hidden", str(args.hidden), "--threads", str(args.threads),
         "--json", "--work-dir", os.path.join(work, "eventprop")],
        check=True, capture_output=True, text=True,
    ).stdout
    mine = [json.loads(line) for line in out.splitlines() if line.startswith("{")][0]
    mine["name"] = "eventprop"
    results.append(mine)
    print(f"{'eventprop':<10} train {mine['train_samples_per_s']:8.1f} samples/s "
          f"({mine['train_samples']} samples, one epoch of train events) | eval "
          f"{mine['eval_samples_per_s']:8.1f} samples/s ({mine['eval_samples']} samples); "
          f"peak RSS {mine['peak_rss_mb']:.0f} MB", flush=True)
    peers = [r for r in results if r["name"] != "eventprop"]
    if peers:
        best = max(peers, key=lambda r: r["train_samples_per_s"])
        ratio = mine["train_samples_per_s"] / best["train_samples_per_s"]
        print(f"eventprop vs best peer ({best['name']}): training {ratio:.1f}x, evaluation "
              f"{mine['eval_samples_per_s'] / best['eval_samples_per_s']:.1f}x")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(results, f, indent=2)
        os.replace(args.json + ".tmp", args.json)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eventprop", default="eventprop", help="the eventprop binary")
    ap.add_argument("--sizes", default="yinyang,medium,shd")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--epoch", action="store_true",
                    help="the event network's training step instead of one layer's pass")
    ap.add_argument("--data", default=None, help="--epoch: training event file")
    ap.add_argument("--test", default=None, help="--epoch: test event file")
    ap.add_argument("--samples", type=int, default=1000,
                    help="--epoch: generated training samples (a quarter as many test)")
    ap.add_argument("--batches", type=int, default=8, help="--epoch: timed peer batches")
    ap.add_argument("--hidden", type=int, default=256, help="--epoch: hidden neurons")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.epoch:
        if (args.data is None) != (args.test is None):
            ap.error("--data and --test go together")
        return epoch_main(args)
    peers = {}
    for name, make in [("torch", reference_pass), ("snntorch", snntorch_pass),
                       ("norse", norse_pass)]:
        try:
            peers[name] = make()
        except ImportError as e:
            print(f"{name}: not installed ({e}); skipped", file=sys.stderr)
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32; "
          "median ms (min) per pass")
    results = []
    for size in args.sizes.split(","):
        t, b, n_in, n = SIZES[size]
        spikes, w, g = make_data(t, b, n_in, n)
        rec = {"size": size, "T": t, "B": b, "N_in": n_in, "N": n}
        row = []
        for name, run in peers.items():
            med, lo = timed(run, REPS[size], spikes, w, g)
            rec[name + "_ms"] = med
            row.append(f"{name} {med:.2f} ({lo:.2f})")
        mine = ours(args.eventprop, size, args.threads)
        for path, (med, lo) in mine.items():
            rec["eventprop_" + path + "_ms"] = med
            row.append(f"eventprop {path} {med:.3f} ({lo:.3f})")
        best = min((rec[k + "_ms"], k) for k in peers)
        if "fused" in mine:
            rec["best_peer"] = best[1]
            rec["speedup_fused_vs_best_peer"] = best[0] / mine["fused"][0]
            row.append(f"fused vs best peer ({best[1]}): {rec['speedup_fused_vs_best_peer']:.1f}x")
        print(f"{size}: " + "; ".join(row), flush=True)
        results.append(rec)
        del spikes, w, g
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(results, f, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
