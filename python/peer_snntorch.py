"""The peer a user would try first: an snnTorch surrogate-gradient network with its
tutorial settings, trained on the same event `.npz` files as `eventprop train events`
(results in docs/measurements.md, "Side by side with snnTorch").

Network (snnTorch tutorial 5): nn.Linear(C, H) -> snn.Leaky(beta=0.9) -> nn.Linear(H, K)
-> snn.Leaky(beta=0.9), the default surrogate (atan), a time-major loop over the steps,
loss `snntorch.functional.ce_rate_loss()`, accuracy = argmax of the output spike counts,
Adam lr 1e-3, batch 32, H = 256. The data are treated as `eventprop train events` treats
them: 10 % of the training file held out for validation (seeded), events binned at dt
(bin = round(t / dt); a bin holds 1 if any event of that channel falls in it), the window
= the latest training event's bin + 1 (test events past it are dropped and counted),
channels and classes from the data. `torch.manual_seed(seed)`, `torch.set_num_threads(1)`.

Usage (the commands of docs/measurements.md):

    eventprop data latency --out lat_tr.npz --samples 1000 --seed 1 --task-seed 7
    eventprop data latency --out lat_te.npz --samples 300 --seed 2 --task-seed 7
    python python/peer_snntorch.py --train lat_tr.npz --test lat_te.npz --epochs 10 \
        --json snn_lat.json

Flags: --train FILE --test FILE [--epochs 10] [--hidden 256] [--dt 1e-3] [--seed 0]
[--json OUT]. Prints validation and test accuracy and the epoch time per epoch; --json
writes the same per epoch plus the settings and versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import snntorch as snn
import snntorch.functional as SF


def load_events(path):
    d = np.load(path)
    times = np.asarray(d["times"], dtype=np.float64)
    units = np.asarray(d["units"], dtype=np.int64)
    labels = np.asarray(d["labels"], dtype=np.int64)
    if "offsets" in d.files:
        offsets = np.asarray(d["offsets"], dtype=np.int64)
    else:
        raise SystemExit(f"{path}: no `offsets` (per-event sample ids are not supported here)")
    return times, units, labels, offsets


def bin_events(times, units, offsets, dt, steps, channels):
    """Dense [S, T, C] uint8 raster: 1 where any event of the channel falls in the bin."""
    s = len(offsets) - 1
    sample = np.repeat(np.arange(s), np.diff(offsets))
    b = np.rint(times / dt).astype(np.int64)
    keep = (b >= 0) & (b < steps) & (units < channels)
    dropped = int((~keep).sum())
    x = np.zeros((s, steps, channels), dtype=np.uint8)
    x[sample[keep], b[keep], units[keep]] = 1
    return torch.from_numpy(x), dropped


class Net(nn.Module):
    def __init__(self, c, h, k, beta=0.9):
        super().__init__()
        self.fc1 = nn.Linear(c, h)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(h, k)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):  # x: [T, B, C]
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk_rec = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(spk2)
        return torch.stack(spk_rec)  # [T, B, K]


def accuracy(net, x, y, batch):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            xb = x[i : i + batch].float().transpose(0, 1)
            counts = net(xb).sum(0)
            correct += int((counts.argmax(1) == y[i : i + batch]).sum())
    net.train()
    return correct / max(1, len(y))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--dt", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--json")
    a = ap.parse_args(argv)

    torch.manual_seed(a.seed)
    torch.set_num_threads(1)

    tr_t, tr_u, tr_y, tr_o = load_events(a.train)
    te_t, te_u, te_y, te_o = load_events(a.test)
    channels = int(tr_u.max()) + 1 if len(tr_u) else 1
    classes = int(max(tr_y.max(), te_y.max())) + 1
    steps = int(np.rint(tr_t.max() / a.dt)) + 1
    x_all, _ = bin_events(tr_t, tr_u, tr_o, a.dt, steps, channels)
    x_te, dropped = bin_events(te_t, te_u, te_o, a.dt, steps, channels)
    y_all = torch.from_numpy(tr_y)
    y_te = torch.from_numpy(te_y)

    rng = np.random.default_rng(a.seed)
    perm = rng.permutation(len(tr_y))
    n_val = int(round(a.val_fraction * len(tr_y)))
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    x_val, y_val = x_all[val_idx], y_all[val_idx]
    x_tr, y_tr = x_all[tr_idx], y_all[tr_idx]
    print(
        f"channels {channels}, classes {classes}, steps {steps} (dt {a.dt}), "
        f"train {len(tr_idx)}, val {n_val}, test {len(te_y)} "
        f"({dropped} test events past the window dropped); "
        f"torch {torch.__version__}, snntorch {snn.__version__}",
        flush=True,
    )

    net = Net(channels, a.hidden, classes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = SF.ce_rate_loss()
    gen = torch.Generator().manual_seed(a.seed)
    epochs = []
    for ep in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(len(y_tr), generator=gen)
        total = 0.0
        for i in range(0, len(order), a.batch):
            idx = order[i : i + a.batch]
            xb = x_tr[idx].float().transpose(0, 1)
            spk = net(xb)
            loss = loss_fn(spk, y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_s = time.perf_counter() - t0
        val_acc = accuracy(net, x_val, y_val, a.batch)
        test_acc = accuracy(net, x_te, y_te, a.batch)
        epoch_s = time.perf_counter() - t0
        rec = dict(epoch=ep, loss=total / len(order), val_acc=val_acc, test_acc=test_acc,
                   train_seconds=train_s, epoch_seconds=epoch_s)
        epochs.append(rec)
        print(f"epoch {ep}: loss {rec['loss']:.4f}, val {val_acc:.4f}, test {test_acc:.4f}, "
              f"{train_s:.1f} s train, {epoch_s:.1f} s with evaluation", flush=True)
    print(f"test accuracy: {epochs[-1]['test_acc']:.4f}" if epochs else "no epochs")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(settings=vars(a), channels=channels, classes=classes, steps=steps,
                           dropped_test_events=dropped, torch=torch.__version__,
                           snntorch=snn.__version__, epochs=epochs), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
