"""Training loop in PyTorch: the Yin-Yang network of `eventprop train yinyang` built from
`eventprop.model` layers, trained with the EventProp gradient and plain torch.optim.

    python examples/train_yinyang.py --epochs 10

5-120-3: a LIF hidden layer (tau 4 µs, corrected discretization, dt 1 µs, 38 steps) and a
leaky-integrator readout (6 µs), max-over-time cross-entropy + 4e-4 mean(score²), Adam
lr 1e-2, batch 50: the stepped engine's defaults. The data are generated here with numpy
(docs/spec.md §5), so the splits differ from the binary's generator.
"""

import argparse

import numpy as np
import torch

from eventprop.model import LI, LIF, Sequential, yinyang_input

ENCODING = dict(t_early=2e-6, t_late=26e-6, t_bias=2e-6, t_sim=38e-6, dt=1e-6)


def yinyang(n, rng):
    """Features (x, y, 1-x, 1-y) and class-balanced labels by rejection sampling."""
    feats, labels = [], []
    while len(labels) < n:
        goal = rng.integers(3)
        while True:
            x, y = rng.random(2)
            if np.hypot(x - 0.5, y - 0.5) > 0.5:
                continue
            d_r, d_l = np.hypot(x - 0.75, y - 0.5), np.hypot(x - 0.25, y - 0.5)
            c = 2 if min(d_r, d_l) < 0.1 else int(0.1 < d_l <= 0.25 or (y > 0.5 and d_r > 0.25))
            if c == goal:
                break
        feats.append((x, y, 1 - x, 1 - y))
        labels.append(goal)
    return yinyang_input(np.array(feats), ENCODING, torch.float64), torch.tensor(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--train-size", type=int, default=5000)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = yinyang(args.train_size, rng)
    x_test, y_test = yinyang(args.test_size, rng)
    model = Sequential(
        LIF(5, 120, tau_syn=4e-6, tau_mem=4e-6, init_mean=0.8, init_std=0.5, dtype=torch.float64),
        LI(120, 3, tau_syn=6e-6, tau_mem=6e-6, init_mean=0.0, init_std=0.1, dtype=torch.float64),
        decode="max_over_time", loss_params={"reg": 4e-4},
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.7)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(args.train_size)
        for b in range(0, args.train_size - args.batch_size + 1, args.batch_size):
            idx = order[b:b + args.batch_size]
            opt.zero_grad()
            loss = model.loss(model(x_train[:, idx]), y_train[idx])
            loss.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            acc = (model.predict(model(x_test)) == y_test).double().mean().item()
        print(f"epoch {epoch}/{args.epochs}: train loss {loss.item():.4f}, test accuracy {100 * acc:.2f} %",
              flush=True)


if __name__ == "__main__":
    main()
