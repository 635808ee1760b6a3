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
compared. Usage:

    python python/bench_peers.py [--eventprop PATH] [--sizes yinyang,medium,shd]
        [--threads 2] [--json FILE]
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
        for t in range(cur.shape[0]):
            spk, syn, mem = lif(cur[t], syn, mem)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eventprop", default="eventprop", help="the eventprop binary")
    ap.add_argument("--sizes", default="yinyang,medium,shd")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the results to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
