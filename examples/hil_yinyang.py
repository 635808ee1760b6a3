"""Hardware-in-the-loop training of Yin-Yang from PyTorch on the mock chip.

    python examples/hil_yinyang.py --epochs 5

The reference library's HIL loop written with this package's functions: every forward pass
runs on the chip (``eventprop.chip.MockChip``: 6-bit weights, fixed-pattern variation,
noise, 125 MHz timestamps, 8-bit CADC); the chip's hidden spikes enter
``EventPropLIF`` as ``hw_data`` (the layer returns them, its backward is the EventProp
adjoint with the current recomputed from the inputs); the readout's value is the chip's
recorded membrane with the gradient of the software readout (straight-through); the
weights are clamped to the chip's range after each step. A real chip plugs in by
replacing ``chip.run`` with its recording mapped by ``eventprop.chip.map_recording``.

The network and settings are those of ``eventprop train yinyang --chip mock`` (5-120-3,
dt 1 µs, 38 steps, Adam 1e-2 with StepLR(2, 0.7), max-over-time + ``4e-3 mean(score²)``).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ddp_yinyang import encode, yinyang  # noqa: E402  (same data and encoding)

from eventprop.chip import MockChip  # noqa: E402
from eventprop.torch import EventPropLIF, EventPropSynapse  # noqa: E402


class HilNet(torch.nn.Module):
    def __init__(self, chip: MockChip):
        super().__init__()
        p, hidden = chip.params, chip.hidden[0]
        self.chip = chip
        self.syn = EventPropSynapse(chip.n_in, hidden, init_mean=0.8, init_std=0.5, dtype=torch.float64)
        self.lif = EventPropLIF(hidden, leak=p["leak"], reset=p["reset"], threshold=p["threshold"],
                                tau_syn=p["tau_syn"], tau_mem=p["tau_mem"], dt=chip.dt,
                                discretization="corrected", dtype=torch.float64)
        self.w_out = torch.nn.Parameter(torch.randn(chip.n_out, hidden, dtype=torch.float64) * 0.1)
        self.k_syn = chip.dt / p["readout_tau_syn"]
        self.k_mem = chip.dt / p["readout_tau_mem"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max-over-time of the chip's readout membrane, (B, 3), with the software gradient."""
        hw = self.chip.run([self.syn.weight, self.w_out], x)  # the chip's recording on the grid
        z, _, _ = self.lif(self.syn(x), hw_data=hw[0])         # = the recorded hidden spikes
        y = z @ self.w_out.T
        i = torch.zeros_like(y[0])
        v = torch.zeros_like(y[0])
        vs = [v]
        for t in range(y.shape[0] - 1):
            i = i * (1 - self.k_syn) + y[t]
            v = v + self.k_mem * (-v + i)
            vs.append(v)
        v_sw = torch.stack(vs)
        v = v_sw + (hw[1][1] - v_sw).detach()                  # value from the chip
        return v.amax(dim=0)

    @torch.no_grad()
    def clamp_(self) -> None:
        lim = self.chip.weight_limit
        for w in (self.syn.weight, self.w_out):
            w.clamp_(-lim, lim)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--train-size", type=int, default=5000)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chip-seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    chip = MockChip(chip_seed=args.chip_seed)
    print(f"calibration: {chip.calibration}")
    model = HilNet(chip)
    x_train, y_train = yinyang(args.train_size, args.seed + 1)
    x_test, y_test = yinyang(args.test_size, args.seed + 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.7)
    for epoch in range(args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(args.train_size)
        for b in range(args.train_size // args.batch_size):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            score = model(encode(x_train[idx]))
            loss = F.cross_entropy(score, torch.from_numpy(y_train[idx])) + 4e-3 * score.pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.clamp_()
        sched.step()
        with torch.no_grad():
            pred = model(encode(x_test)).argmax(dim=1).numpy()
        print(f"epoch {epoch + 1}: test accuracy on the chip {np.mean(pred == y_test):.4f}, "
              f"last batch {chip.last_stats}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
