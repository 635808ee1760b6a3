"""Benchmark: one training pass of a first hidden layer, eventprop (Rust) vs. the
plain-PyTorch implementation of docs/spec.md §1-§3 (python/tests/reference.py).

Pass = synapse forward, neuron forward, neuron backward, synapse backward to the weight,
through torch autograd in both cases. Input spikes Bernoulli(p = 0.05), weight
W ~ N(0.3 / (N_in p), 1 / sqrt(N_in p)), grad_spikes ~ N(0, 1), leak = reset = 0,
threshold = 1, tau_syn = 5 µs, tau_mem = 10 µs, dt = 1 µs, float32, 2 threads for torch
and for the Rust kernels (rayon).

Usage: python python/bench.py [--sizes yinyang,medium,shd] [--reps N] [--threads 2] [--json FILE]

On a machine busier than its cores, torch's OpenMP threads spin and its per-step ops slow
down many times over; compare with --threads 1 there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

THREADS = 2

import torch  # noqa: E402
from bench_data import DT, PARAMS, SIZES, make_data  # noqa: E402  (next to this script)

# Benchmark the installed package, not the source tree next to this script (which lacks
# the compiled extension unless built in place).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from eventprop.torch import EventPropNeuronFunction, EventPropSynapseFunction  # noqa: E402

sys.path.insert(0, os.path.join(_HERE, "tests"))
from reference import RefNeuronFunction, RefSynapseFunction  # noqa: E402

# Default repetitions (ours, reference): the reference takes seconds at the shd size.
REPS = {"yinyang": (50, 20), "medium": (10, 5), "shd": (5, 2)}


def one_pass(neuron, synapse, spikes, w, grad_spikes, extra=()):
    w = w.detach().requires_grad_()
    y = synapse(spikes, w)
    params = [torch.tensor(p) for p in PARAMS]
    z, _, _ = neuron(y, *params, None, DT, *extra)
    z.backward(grad_spikes)
    return z.detach(), w.grad


def ours(spikes, w, g):
    return one_pass(EventPropNeuronFunction.apply, EventPropSynapseFunction.apply, spikes, w, g)


def reference(spikes, w, g):
    return one_pass(RefNeuronFunction.apply, RefSynapseFunction.apply, spikes, w, g)


def timed(fn, reps, *args):
    # The correctness pass before the timing has already warmed up both implementations.
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="yinyang,medium,shd")
    ap.add_argument("--reps", type=int, default=None, help="repetitions for both (default per size)")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--threads", type=int, default=THREADS,
                    help="threads for torch and for the Rust kernels (default 2)")
    args = ap.parse_args()
    # The Rust kernels' thread pool (rayon) reads this when first used: no kernel has run yet.
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    results = []
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32")
    print(f"{'size':8} {'T':>5} {'B':>4} {'N_in':>5} {'N':>4} {'eventprop ms':>13} "
          f"{'torch ms':>10} {'speed-up':>9} {'spike mismatch':>15} {'grad_W rel err':>15}")
    for name in args.sizes.split(","):
        t, b, n_in, n = SIZES[name]
        spikes, w, g = make_data(t, b, n_in, n)
        reps_ours, reps_ref = REPS[name] if args.reps is None else (args.reps, args.reps)
        # Correctness next to the timing: same spikes (up to float32 rounding of the
        # synapse sum, which can flip a spike at the threshold) and weight gradient.
        za, gwa = ours(spikes, w, g)
        zb, gwb = reference(spikes, w, g)
        mismatch = float((za != zb).float().mean())
        rel = float((gwa - gwb).abs().max() / gwb.abs().max())
        ms_ours, _ = timed(ours, reps_ours, spikes, w, g)
        ms_ref, _ = timed(reference, reps_ref, spikes, w, g)
        speedup = ms_ref / ms_ours
        print(f"{name:8} {t:5} {b:4} {n_in:5} {n:4} {ms_ours:13.2f} {ms_ref:10.1f} "
              f"{speedup:8.1f}x {mismatch:15.2e} {rel:15.2e}", flush=True)
        results.append(dict(size=name, T=t, B=b, N_in=n_in, N=n, eventprop_ms=ms_ours,
                            torch_ms=ms_ref, speedup=speedup, reps=[reps_ours, reps_ref],
                            spike_mismatch=mismatch, grad_w_rel_err=rel))
        del spikes, w, g, za, zb, gwa, gwb
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(results, f, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
