"""Hardware in the loop from PyTorch: the mock chip (and recording files) as ``hw_data``.

A chip run returns, per layer, what :class:`eventprop.torch.EventPropNeuronFunction`
takes as ``hw_data``: the recorded spikes on the time grid and the membrane (model units),
so the reference library's hardware-in-the-loop loop is written with this package's
functions (``examples/hil_yinyang.py``)::

    chip = MockChip(chip_seed=0)
    hw = chip.run([w_hidden, w_out], x)          # x: (T, B, 5) 0/1
    z, _, _ = lif(syn(x), hw_data=hw[0])         # recorded hidden spikes, adjoint in software
    v = li(z @ w_out.T)                          # software readout (for the gradient)
    v = v + (hw[1][1] - v).detach()              # ... with the chip's recorded values

A real chip plugs into the same path: write its recording as a ``.npz`` of
``eventprop_train::chip::record_file`` (spike events ``(sample, neuron, time)`` per layer;
membrane samples ``(times, values)`` per sample and neuron; README "Hardware in the loop")
and call :func:`map_recording` with the calibration's ``offset`` (spiking layers) or
``readout_offset`` (the non-spiking readout, which has its own operating point) and
``trace_scale``.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import _eventprop
from .torch import _count

HwData = Tuple[torch.Tensor, torch.Tensor]


def _toml(config: Optional[Dict[str, object]]) -> str:
    """``{key: value}`` of ``[chip.mock]`` as TOML lines (bool, int, float only)."""
    if config is None:
        return ""
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict or None, got {type(config).__name__}")
    lines = []
    for k, v in config.items():
        if not isinstance(k, str) or not k.replace("_", "").isalnum():
            raise ValueError(f"config: expected keys of [chip.mock], got {k!r}")
        if isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, (int, float)):
            lines.append(f"{k} = {float(v)!r}" if isinstance(v, float) else f"{k} = {v}")
        else:
            raise TypeError(f"config[{k!r}]: expected a bool or a number, got {type(v).__name__}")
    return "\n".join(lines)


def _tensors(layers, dtype: torch.dtype) -> List[HwData]:
    """Per layer ``(spikes, membrane)``; a membrane not recorded is zeros (the LIF adjoint
    does not read it, and ``hw_data`` needs both)."""
    out = []
    for z, v in layers:
        zt = torch.from_numpy(z).to(dtype)
        out.append((zt, torch.zeros_like(zt) if v is None else torch.from_numpy(v).to(dtype)))
    return out


def _numpy(arg: str, t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(t, dtype=np.float64))


class MockChip:
    """The mock BrainScaleS-2-like chip of ``eventprop train yinyang --chip mock``: the
    Yin-Yang network (5 inputs, ``hidden``, 3 leaky-integrator outputs; dt 1 µs, 38 steps)
    on chip instance ``chip_seed``, with the default non-idealities (DESIGN.md) changed by
    ``config`` (keys of ``[chip.mock]``, e.g. ``{"noise": False}``), calibrated unless
    ``calibrate=False``.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (120,),
        chip_seed: int = 0,
        config: Optional[Dict[str, object]] = None,
        calibrate: bool = True,
    ):
        if isinstance(chip_seed, bool) or not isinstance(chip_seed, int) or not 0 <= chip_seed < 2**64:
            raise ValueError(f"chip_seed: expected an integer in 0..2^64-1, got {chip_seed!r}")
        hidden = [_count(f"hidden[{k}]", n) for k, n in enumerate(hidden)]
        self._chip = _eventprop.MockChip(hidden, chip_seed, _toml(config), bool(calibrate))
        #: Recording statistics of the last :meth:`run`.
        self.last_stats: Optional[Dict[str, int]] = None

    n_in = property(lambda self: self._chip.n_in, doc="Input channels.")
    hidden = property(lambda self: self._chip.hidden, doc="Hidden layer sizes.")
    n_out = property(lambda self: self._chip.n_out, doc="Output neurons.")
    dt = property(lambda self: self._chip.dt, doc="Grid step (s).")
    steps = property(lambda self: self._chip.steps, doc="Grid steps T.")
    params = property(
        lambda self: self._chip.params,
        doc="Nominal neuron parameters (leak, reset, threshold, tau_syn, tau_mem, readout_*).",
    )
    calibration = property(lambda self: self._chip.calibration, doc="The calibration applied.")
    weight_limit = property(
        lambda self: self._chip.weight_limit,
        doc="Largest weight magnitude the chip applies: clamp to it after each update.",
    )

    def run(self, weights: Sequence[torch.Tensor], input: torch.Tensor) -> List[HwData]:
        """Runs the raster ``input`` ``(T, B, n_in)`` (0/1) with ``weights``
        ``[(N_1, n_in), …, (n_out, N_last)]`` on the chip; returns per layer
        ``(spikes, membrane)`` ``(T, B, N)`` in ``input``'s dtype (float tensors): hidden
        layers' membrane is zeros (not recorded; the LIF adjoint does not read it), the
        output's spikes are zero. Counts of the run are in :attr:`last_stats`."""
        dtype = input.dtype if isinstance(input, torch.Tensor) and input.is_floating_point() else torch.float64
        layers, stats = self._chip.run(
            [_numpy(f"weights[{k}]", w) for k, w in enumerate(weights)], _numpy("input", input)
        )
        self.last_stats = dict(stats)
        return _tensors(layers, dtype)


def map_recording(
    path: "os.PathLike[str] | str",
    dt: float,
    steps: int,
    offset: float = 0.0,
    trace_scale: float = 1.0,
    shift: float = 0.0,
    interpolation: str = "linear",
    dtype: torch.dtype = torch.float64,
) -> Tuple[List[HwData], Dict[str, int]]:
    """A recording file (e.g. a real chip's run) on the grid: per layer ``(spikes,
    membrane)`` ``(T, B, N)`` and the counts ``spikes, collapsed, dropped, held``. Spikes go
    to step ``round(t / dt)``; membrane samples are interpolated at ``k dt + shift`` and
    converted with ``(value - offset) * trace_scale``; ``held`` counts the reads outside a
    trace's sampled span (an end sample's value is used there). A trace whose span holds no
    grid read time is a ``ValueError``."""
    layers, stats = _eventprop.map_recording(
        os.fspath(path), float(dt), int(steps), float(offset), float(trace_scale), float(shift), interpolation
    )
    return _tensors(layers, dtype), dict(stats)


__all__ = ["MockChip", "map_recording", "HwData"]
