"""Data-parallel training of the Yin-Yang network with torch.distributed (DDP).

One process per worker; each takes an equal share of every global batch, DDP averages the
gradients (all-reduce), and every worker applies the same Adam step, so the weights stay
identical everywhere and the run equals a single process training on the whole batch.

    # one machine, 2 processes, CPU (gloo)
    torchrun --standalone --nproc_per_node 2 examples/ddp_yinyang.py --epochs 10

    # check that 2 workers give the single-process gradient (prints the difference)
    torchrun --standalone --nproc_per_node 2 examples/ddp_yinyang.py --check-grad

    # without torchrun: one process, same code path minus the all-reduce
    python examples/ddp_yinyang.py --epochs 10

Across machines, run the same command on every machine with ``--nnodes N
--node_rank K --rdzv_backend c10d --rdzv_endpoint HOST:PORT`` instead of ``--standalone``
(README, "Data-parallel training"). The backend is gloo for CPU tensors; the eventprop
kernels run on the CPU, so NCCL applies only once tensors live on a GPU.

The network and the training settings are those of ``eventprop train yinyang`` (stepped
engine defaults, DESIGN.md): 5-120-3, EventProp LIF hidden layer (tau 4 µs, corrected
discretization, dt 1 µs, 38 steps), leaky-integrator readout (6 µs), max-over-time
cross-entropy + 4e-4 mean(score²), Adam lr 1e-2, StepLR(2, 0.7), batch 50. The data are
generated here (Kriener et al. 2021, docs/spec.md §5) with numpy, so the splits differ from the
binary's generator.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from eventprop.torch import EventPropLIF, EventPropSynapse, rank_prefix

DT, T_EARLY, T_LATE, T_BIAS, STEPS = 1e-6, 2e-6, 26e-6, 2e-6, 38


def yinyang(n: int, seed: int):
    """Features (x, y, 1-x, 1-y) and labels by rejection sampling (docs/spec.md §5)."""
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    while len(labels) < n:
        goal = rng.integers(3)
        while True:
            x, y = rng.random(2)
            if (x - 0.5) ** 2 + (y - 0.5) ** 2 > 0.25:
                continue
            d_r = np.hypot(x - 0.75, y - 0.5)
            d_l = np.hypot(x - 0.25, y - 0.5)
            if d_r < 0.1 or d_l < 0.1:
                c = 2
            elif d_r <= 0.1 or 0.1 < d_l <= 0.25 or (y > 0.5 and d_r > 0.25):
                c = 1
            else:
                c = 0
            if c == goal:
                break
        feats.append((x, y, 1 - x, 1 - y))
        labels.append(goal)
    return np.array(feats), np.array(labels)


def encode(feats: np.ndarray) -> torch.Tensor:
    """One spike per feature at t_early + f (t_late - t_early), a bias spike at t_bias, on
    the dt grid: (T, B, 5)."""
    b = feats.shape[0]
    raster = np.zeros((STEPS, b, 5))
    steps = np.rint((T_EARLY + feats * (T_LATE - T_EARLY)) / DT).astype(int)
    for j in range(4):
        raster[steps[:, j], np.arange(b), j] = 1.0
    raster[int(round(T_BIAS / DT)), :, 4] = 1.0
    return torch.from_numpy(raster)


class YinYangNet(torch.nn.Module):
    def __init__(self, hidden: int = 120):
        super().__init__()
        self.syn = EventPropSynapse(5, hidden, init_mean=0.8, init_std=0.5, dtype=torch.float64)
        self.lif = EventPropLIF(hidden, tau_syn=4e-6, tau_mem=4e-6, dt=DT,
                                discretization="corrected", dtype=torch.float64)
        self.w_out = torch.nn.Parameter(torch.randn(3, hidden, dtype=torch.float64) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max-over-time readout membrane, (B, 3)."""
        z, _, _ = self.lif(self.syn(x))
        y = z @ self.w_out.T  # (T, B, 3)
        k_syn = k_mem = DT / 6e-6
        i = torch.zeros_like(y[0])
        v = torch.zeros_like(y[0])
        vs = [v]
        for t in range(y.shape[0] - 1):
            i = i * (1 - k_syn) + y[t]
            v = v + k_mem * (-v + i)
            vs.append(v)
        return torch.stack(vs).amax(dim=0)


def loss_fn(score: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(score, labels) + 4e-4 * score.pow(2).mean()


def shard(n: int, rank: int, world: int) -> slice:
    """This worker's equal share of a batch of n samples (n divisible by world)."""
    if n % world:
        raise ValueError(f"--batch-size: expected a multiple of the {world} workers, got {n}")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


def grads(model) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=50, help="global batch (all workers)")
    ap.add_argument("--train-size", type=int, default=5000)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-grad", action="store_true",
                    help="compare one DDP gradient with the single-process one and exit")
    args = ap.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    torch.manual_seed(args.seed)  # same initial weights on every worker
    model = YinYangNet()
    ddp = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    if args.check_grad:
        x_np, y_np = yinyang(args.batch_size, args.seed + 1)
        x, y = encode(x_np), torch.from_numpy(y_np)
        # Single-process reference on the whole batch (a copy, outside DDP).
        ref = YinYangNet()
        ref.load_state_dict(model.state_dict())
        loss_fn(ref(x), y).backward()
        s = shard(args.batch_size, rank, world)
        loss_fn(ddp(x[:, s]), y[s]).backward()  # DDP all-reduces (averages) the gradients
        g, g_ref = grads(model), grads(ref)
        scale = g_ref.abs().max().item()
        diff = (g - g_ref).abs().max().item()
        rel = diff / scale if scale > 0 else float("inf")
        print(f"rank {rank}/{world}: max |grad_single| = {scale:.3e}, "
              f"max |grad_ddp - grad_single| = {diff:.3e} (relative {rel:.3e})")
        if distributed:
            del ddp  # release the reducer before the group goes (see `shutdown`)
            shutdown()
        return 0 if rel <= 1e-12 else 1

    x_train, y_train = yinyang(args.train_size, args.seed + 1)
    x_test, y_test = yinyang(args.test_size, args.seed + 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.7)
    for epoch in range(args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(args.train_size)
        n_batches = args.train_size // args.batch_size
        for b in range(n_batches):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size][shard(args.batch_size, rank, world)]
            opt.zero_grad()
            loss_fn(ddp(encode(x_train[idx])), torch.from_numpy(y_train[idx])).backward()
            opt.step()
        sched.step()
        if rank == 0:
            with torch.no_grad():
                pred = model(encode(x_test)).argmax(dim=1).numpy()
            print(f"{rank_prefix()}epoch {epoch + 1}: test accuracy {np.mean(pred == y_test):.4f}",
                  flush=True)
    if distributed:
        del ddp  # release the reducer before the group goes (see `shutdown`)
        shutdown()
    return 0


def shutdown() -> None:
    """Leaves the process group cleanly, after the caller dropped its DDP wrapper (whose
    reducer holds gloo work objects): collect it, wait until every rank got here (no
    collective still in flight on another rank), then destroy the group. Destroying the
    group under a live reducer can abort the process at exit ("terminate called without an
    active exception", seen once in a local test run)."""
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
