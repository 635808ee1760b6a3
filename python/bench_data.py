"""The benchmark workload shared by python/bench.py and python/bench_peers.py: the sizes
and input statistics of `eventprop bench` (Bernoulli(P) input spikes, W ~ N(0.3 / (N_in P),
1 / sqrt(N_in P)), upstream gradients N(0, 1)) and the LIF parameters of the pass."""

from __future__ import annotations

import torch

SIZES = {
    # name: (T, B, N_in, N), as `eventprop bench`
    "yinyang": (38, 50, 5, 120),
    "medium": (200, 128, 700, 256),
    "shd": (1000, 256, 700, 256),
}
P = 0.05
TAU_SYN, TAU_MEM, DT = 5e-6, 1e-5, 1e-6
PARAMS = (0.0, 0.0, 1.0, TAU_SYN, TAU_MEM)  # leak, reset, threshold, tau_syn, tau_mem


def make_data(t, b, n_in, n, seed=0):
    """Input spikes `(T, B, N_in)`, weight `(N, N_in)` and upstream gradient `(T, B, N)`."""
    gen = torch.Generator().manual_seed(seed)
    spikes = (torch.rand(t, b, n_in, generator=gen) < P).float()
    mean, std = 0.3 / (n_in * P), 1.0 / (n_in * P) ** 0.5
    w = torch.randn(n, n_in, generator=gen) * std + mean
    grad_spikes = torch.randn(t, b, n, generator=gen)
    return spikes, w, grad_spikes
