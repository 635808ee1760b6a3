"""PyTorch front end of the Rust kernels: ``torch.autograd.Function`` s and ``nn.Module`` s.

Drop-in for the BrainScaleS-2 (hxtorch) seed::

    from eventprop.torch import EventPropNeuronFunction, EventPropSynapseFunction
    y = EventPropSynapseFunction.apply(spikes_in, weight)          # (2, T, B, N)
    z, v, i = EventPropNeuronFunction.apply(y, leak, reset, threshold, tau_syn, tau_mem)

Shapes are time-major (docs/spec.md §1): ``input`` ``(2, T, B, N)`` (``input[1]`` is the seed's zero
placeholder) or ``(T, B, N)``; outputs ``(T, B, N)``. CPU tensors of dtype float32 or
float64 only: a tensor on any other device (CUDA, meta, ...) raises ``RuntimeError`` naming
the argument and the device, as torch does for mismatched devices. Inputs are handed to
Rust without a copy (non-contiguous tensors are copied once inside), and the neuron's
outputs share memory with the Rust buffers.

In-place safety: the neuron's backward reads the spikes and the current it returned (the
same memory, no copy), so ``EventPropNeuronFunction`` saves both with
``ctx.save_for_backward``; an in-place edit of either (or of a view of either) after the
forward makes the backward raise torch's usual ``RuntimeError`` ("... modified by an
inplace operation"), as for any built-in op. The membrane is not read by the backward and
may be edited freely. The synapse saves its ``input`` and ``weight`` the same way and
returns a fresh tensor. Writes that bypass torch's version counter (``.data``, a numpy
view) are not detected, as everywhere in torch.

Backward (docs/spec.md §2): the neuron returns ``(2, T, B, N)`` = ``[lambda_i * tau_syn, lambda_v -
lambda_i]`` for ``input`` and ``None`` for everything else (the parameters get no gradient,
as in the seed). The gradients w.r.t. membrane and current are accepted and ignored: the
EventProp adjoint uses the loss's dependence on spikes only. For a ``(T, B, N)`` input the
first half ``lambda_i * tau_syn`` is returned, so that a plain linear layer in front gets the
EventProp weight gradient (its input gradient is then not the EventProp one; use
``EventPropSynapseFunction`` between EventProp layers).

Guard statistics (non-finite jump terms the adjoint set to 0, as the seed does silently) of
the last backward in this thread are returned by :func:`last_guard_stats`; a
``RuntimeWarning`` is issued when a guard dropped the contribution of an actual spike
(prefixed ``rank R/W:`` under ``torchrun`` with several processes, :func:`rank_prefix`).
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import _eventprop as _core
from ._eventprop import GuardStats

__all__ = [
    "EventPropLIF",
    "RecurrentLIF",
    "RecurrentLIFFunction",
    "EventPropNeuronFunction",
    "EventPropSynapse",
    "EventPropSynapseFunction",
    "GuardStats",
    "eventprop_neuron",
    "eventprop_synapse",
    "last_guard_stats",
    "rank_prefix",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)
_local = threading.local()

ParamLike = Union[float, torch.Tensor]



def _count(name: str, n) -> int:
    """``n`` as a layer size: an ``int >= 1`` (not a bool); a ``ValueError`` naming
    ``name`` otherwise."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {n!r}")
    return n


def _real(name, value):
    """``value`` as a float (a Python number or a one-element tensor); a ``TypeError``
    naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise TypeError(f"{name}: expected a real number, got a tensor of shape {tuple(value.shape)}")
    return float(value)

def last_guard_stats() -> Optional[GuardStats]:
    """Guard statistics of the last neuron backward run in this thread (``None`` before
    the first)."""
    return getattr(_local, "stats", None)


def rank_prefix() -> str:
    """``"rank R/W: "`` in a process of a multi-process run started by ``torchrun`` (the
    environment variables ``RANK`` and ``WORLD_SIZE``, ``WORLD_SIZE > 1``), else ``""``:
    the prefix of this package's messages, so that interleaved lines of several workers
    say whose they are."""
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    try:
        if rank is not None and world is not None and int(world) > 1:
            return f"rank {int(rank)}/{int(world)}: "
    except ValueError:
        pass
    return ""


def _record(stats: GuardStats) -> None:
    _local.stats = stats
    if stats.guarded_spikes:
        warnings.warn(
            f"{rank_prefix()}eventprop: the adjoint dropped {stats.guarded_spikes} spike contribution(s) "
            f"whose jump term was not finite (dv_m = 0), as the seed does: {stats!r}",
            RuntimeWarning,
            stacklevel=3,
        )


def _cpu(arg: str, t: torch.Tensor) -> None:
    """Raises ``RuntimeError`` naming ``arg`` and the device unless ``t`` is on the CPU
    (any other device type: cuda, mps, xpu, meta, ...)."""
    if t.device.type != "cpu":
        raise RuntimeError(
            f"{arg}: expected a CPU tensor, got device {t.device} "
            f"(eventprop runs on the CPU; move it with .cpu())"
        )


def _array(arg: str, t, dtype: Optional[torch.dtype] = None) -> np.ndarray:
    """A numpy view (no copy) of a CPU float tensor; with ``dtype``, converts to it."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{arg}: expected a torch.Tensor, got {type(t).__name__}")
    _cpu(arg, t)
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{arg}: expected dtype float32 or float64, got {t.dtype}")
    t = t.detach()
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    return t.numpy()


def _param(arg: str, p: ParamLike):
    """A parameter for the kernels: a float, or a float64 numpy array (scalar or per
    neuron)."""
    if isinstance(p, torch.Tensor):
        _cpu(arg, p)
        if p.dtype.is_complex or p.dtype == torch.bool:
            raise TypeError(f"{arg}: expected a real tensor, got {p.dtype}")
        if p.dim() == 0:
            return p.item()  # the same value as a float64 array, without the array
        return p.detach().to("cpu", torch.float64).numpy()
    if isinstance(p, (int, float)):
        return float(p)
    return np.asarray(p, dtype=np.float64)


def _hw(hw_data, dtype: torch.dtype):
    if hw_data is None:
        return None
    if isinstance(hw_data, torch.Tensor) and hw_data.dim() == 4 and hw_data.shape[0] in (2, 3):
        hw_data = tuple(hw_data.unbind(0))  # stacked (spikes, membrane[, current])
    if not isinstance(hw_data, (tuple, list)) or len(hw_data) not in (2, 3):
        raise ValueError(
            "hw_data: expected None or a tuple (spikes, membrane[, current]), got "
            + (f"{len(hw_data)} items" if isinstance(hw_data, (tuple, list)) else type(hw_data).__name__)
        )
    names = ("hw_spikes", "hw_membrane", "hw_current")
    # Recorded observables may come as bool/int spikes: converted to the input's dtype.
    return tuple(None if t is None else _array(n, t, dtype) for n, t in zip(names, hw_data))


class EventPropNeuronFunction(torch.autograd.Function):
    """The seed's ``EventPropNeuronFunction`` with Rust kernels.

    ``apply(input, leak, reset, threshold, tau_syn, tau_mem, hw_data=None, dt=1e-6,
    discretization="seed")`` returns ``(spikes, membrane, current)``, each ``(T, B, N)``.
    Parameters are tensors (or floats), scalar or one value per neuron. ``hw_data`` is
    ``None`` or ``(spikes, membrane[, current])`` (a tuple, or a tensor stacked along dim 0)
    recorded on hardware: returned unchanged
    (current recomputed from ``input`` when not given) and used by the backward.

    The returned tensors share memory with the state the backward reads; spikes and
    current are saved with ``ctx.save_for_backward``, so an in-place edit of either after
    the forward makes the backward raise torch's ``RuntimeError`` instead of silently
    changing the gradient. Editing the membrane does not change the gradient.
    """

    @staticmethod
    def forward(
        ctx,
        input: torch.Tensor,
        leak: ParamLike,
        reset: ParamLike,
        threshold: ParamLike,
        tau_syn: ParamLike,
        tau_mem: ParamLike,
        hw_data: Optional[Sequence[Optional[torch.Tensor]]] = None,
        dt: float = 1e-6,
        discretization: str = "seed",
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _array("input", input)
        params = [
            _param(n, p)
            for n, p in zip(
                ("leak", "reset", "threshold", "tau_syn", "tau_mem"),
                (leak, reset, threshold, tau_syn, tau_mem),
            )
        ]
        hw = _hw(hw_data, input.dtype)
        state = _core.neuron_forward(x, *params, hw, _real("dt", dt), discretization)
        # Zero-copy tensors over the buffers that `state.backward` reads (spikes, current):
        # saved so that torch's version counter rejects the backward after an in-place edit.
        spikes, membrane, current = (torch.from_numpy(a) for a in state._writeable_outputs())
        ctx.save_for_backward(spikes, current)
        ctx.eventprop = state
        ctx.input_rank = input.dim()
        ctx.set_materialize_grads(False)
        return spikes, membrane, current

    @staticmethod
    def backward(ctx, grad_spikes, grad_membrane, grad_current):
        n_inputs = 9
        # Unpacking raises if spikes or current (the memory `state.backward` reads) were
        # modified in place since the forward.
        spikes, _current = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None,) * n_inputs
        state = ctx.eventprop
        if grad_spikes is None:  # spikes unused by the loss: lambda = 0
            grad_spikes = torch.zeros_like(spikes)
        g, stats = state.backward(_array("grad_spikes", grad_spikes))
        _record(stats)
        ctx.guard_stats = stats
        grad = torch.from_numpy(g)
        if ctx.input_rank == 3:
            grad = grad[0]
        return (grad,) + (None,) * (n_inputs - 1)


def eventprop_neuron(
    input: torch.Tensor,
    leak: ParamLike = 0.0,
    reset: ParamLike = 0.0,
    threshold: ParamLike = 1.0,
    tau_syn: ParamLike = 5e-6,
    tau_mem: ParamLike = 1e-5,
    hw_data: Optional[Sequence[Optional[torch.Tensor]]] = None,
    dt: float = 1e-6,
    *,
    discretization: str = "seed",
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``EventPropNeuronFunction.apply`` with defaults (hxtorch's LIF defaults) and the
    ``discretization`` keyword: ``"seed"`` (jump terms use ``i[t-1]``, bit-compatible with
    the seed) or ``"corrected"`` (``i[t]``, converges to the exact EventProp gradient as
    ``dt -> 0``)."""
    if discretization not in ("seed", "corrected"):
        raise ValueError(
            f"discretization: expected 'seed' or 'corrected', got {discretization!r}"
        )
    return EventPropNeuronFunction.apply(
        input, leak, reset, threshold, tau_syn, tau_mem, hw_data, dt, discretization
    )


class EventPropSynapseFunction(torch.autograd.Function):
    """The seed's companion synapse (docs/spec.md §3).

    ``apply(input, weight)``: ``input`` ``(T, B, N_in)``, ``weight`` ``(N_out, N_in)``, same
    float dtype; returns ``(2, T, B, N_out) = [input @ weight.T, 0]``. Backward from the
    neuron's ``g`` ``(2, T, B, N_out)``: ``grad_input = g[1] @ weight`` and ``grad_weight =
    sum_{t,b} outer(g[0][t,b], input[t,b])``. Note the input gradient routes ``g[1]``, not
    ``g[0]``: this is EventProp's error routing, not the derivative of the forward.

    The output is a fresh tensor that the backward does not read; ``input`` and ``weight``
    are saved with ``ctx.save_for_backward``, so editing them in place after the forward
    makes the backward raise torch's ``RuntimeError``.
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor):
            _cpu("input", input)
            _cpu("weight", weight)
            if input.dtype != weight.dtype:
                raise TypeError(
                    f"input: expected the dtype of weight ({weight.dtype}), got {input.dtype}"
                )
        # The input's non-zeros are collected once here and reused by the backward; the
        # saved input's version counter guards them against an in-place edit.
        y, events = _core._synapse_forward_events(_array("input", input), _array("weight", weight))
        ctx.save_for_backward(input, weight)
        ctx.events = events
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, grad):
        input, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if grad is None or not (need_x or need_w):
            return None, None
        gx, gw = _core._synapse_backward_events(
            ctx.events,
            _array("input", input),
            _array("weight", weight),
            _array("grad", grad, input.dtype),
            bool(need_x),
        )
        return (
            torch.from_numpy(gx) if need_x else None,
            torch.from_numpy(gw) if need_w else None,
        )


def eventprop_synapse(input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``EventPropSynapseFunction.apply(input, weight)``."""
    return EventPropSynapseFunction.apply(input, weight)


def _buffer(value, size: int, dtype, name: str = "value") -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype).detach().clone()
    if t.dim() > 1 or (t.dim() == 1 and t.numel() not in (1, size)):
        raise ValueError(
            f"{name}: expected a scalar or ({size},) per-neuron values, got shape {tuple(t.shape)}"
        )
    return t


class EventPropLIF(torch.nn.Module):
    """A layer of ``size`` EventProp LIF neurons holding its parameters (as buffers: they
    get no gradient, as in the seed).

    Defaults are hxtorch's: ``leak = reset = 0``, ``threshold = 1``, ``tau_syn = 5 µs``,
    ``tau_mem = 10 µs``, ``dt = 1 µs``. Each parameter may be a scalar or ``size`` values.

    ``forward(input, hw_data=None)`` takes ``(2, T, B, size)`` (e.g. from
    :class:`EventPropSynapse`) and returns ``(spikes, membrane, current)``.
    """

    def __init__(
        self,
        size: int,
        leak: ParamLike = 0.0,
        reset: ParamLike = 0.0,
        threshold: ParamLike = 1.0,
        tau_syn: ParamLike = 5e-6,
        tau_mem: ParamLike = 1e-5,
        dt: float = 1e-6,
        discretization: str = "seed",
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        if discretization not in ("seed", "corrected"):
            raise ValueError(
                f"discretization: expected 'seed' or 'corrected', got {discretization!r}"
            )
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: expected a value > 0, got {dt!r}")
        dtype = dtype or torch.get_default_dtype()
        self.size = _count("size", size)
        self.dt = float(dt)
        self.discretization = discretization
        for name, value in (
            ("leak", leak),
            ("reset", reset),
            ("threshold", threshold),
            ("tau_syn", tau_syn),
            ("tau_mem", tau_mem),
        ):
            self.register_buffer(name, _buffer(value, size, dtype, name))

    def forward(self, input: torch.Tensor, hw_data=None):
        return eventprop_neuron(
            input,
            self.leak,
            self.reset,
            self.threshold,
            self.tau_syn,
            self.tau_mem,
            hw_data,
            self.dt,
            discretization=self.discretization,
        )

    def extra_repr(self) -> str:
        return f"size={self.size}, dt={self.dt}, discretization={self.discretization!r}"


class EventPropSynapse(torch.nn.Module):
    """A synapse ``in_features -> out_features`` holding ``weight`` ``(out, in)``.

    ``forward(input)`` maps spikes ``(T, B, in)`` to ``(2, T, B, out)`` for
    :class:`EventPropLIF`. The weight is initialised like ``torch.nn.Linear``'s unless
    ``init_mean``/``init_std`` are given (then ``N(init_mean, init_std)``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        init_mean: Optional[float] = None,
        init_std: Optional[float] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        self.in_features = _count("in_features", in_features)
        self.out_features = _count("out_features", out_features)
        self.weight = torch.nn.Parameter(
            torch.empty(out_features, in_features, dtype=dtype or torch.get_default_dtype())
        )
        self.init_mean = init_mean
        self.init_std = init_std
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init_mean is None and self.init_std is None:
            torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        else:
            torch.nn.init.normal_(
                self.weight, mean=self.init_mean or 0.0, std=self.init_std or 1.0
            )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return EventPropSynapseFunction.apply(input, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class RecurrentLIFFunction(torch.autograd.Function):
    """The time-stepped LIF layer with recurrent weights, per-neuron parameters and
    delays (Rust ``eventprop_train::stepped_layer``: the seed's update order and the
    ``corrected`` adjoint, extended; README "Training more than weights").

    ``apply(input, weight, recurrent, delays, leak, reset, threshold, tau_syn, tau_mem,
    dt)``: ``input`` ``(T, B, N_in)`` spikes (non-zero = spike), ``weight`` ``(N, N_in)``,
    ``recurrent`` ``(N, N)`` or ``None``, ``delays`` ``(N, N_in)`` seconds or ``None``,
    the five parameters ``(N,)``; returns the spikes ``(T, B, N)``. Every tensor argument
    gets its EventProp gradient (computed in float64); the input's is the spike gradient of
    the layer below (docs/spec.md §3 convention), formed at its spikes only.
    """

    @staticmethod
    def forward(ctx, input, weight, recurrent, delays, leak, reset, threshold, tau_syn, tau_mem, dt):
        f64 = torch.float64
        arrays = [_array(n, t, f64) for n, t in (("input", input), ("weight", weight))]
        opt = [None if t is None else _array(n, t, f64) for n, t in (("recurrent", recurrent), ("delays", delays))]
        params = [
            _array(n, t, f64)
            for n, t in (("leak", leak), ("reset", reset), ("threshold", threshold), ("tau_syn", tau_syn), ("tau_mem", tau_mem))
        ]
        c = _core.recurrent_lif_forward(*arrays, *params, recurrent=opt[0], delays=opt[1], dt=float(dt))
        ctx.rust = c
        ctx.dtypes = [None if t is None else t.dtype for t in (input, weight, recurrent, delays, leak, reset, threshold, tau_syn, tau_mem)]
        return torch.from_numpy(c.spikes).to(input.dtype)

    @staticmethod
    def backward(ctx, grad_spikes):
        g = _core.recurrent_lif_backward(ctx.rust, _array("grad_spikes", grad_spikes, torch.float64))
        names = ("input", "weight", "recurrent", "delays", "leak", "reset", "threshold", "tau_syn", "tau_mem")
        out = []
        for name, dtype, needs in zip(names, ctx.dtypes, ctx.needs_input_grad):
            v = g[name]
            out.append(None if (v is None or dtype is None or not needs) else torch.from_numpy(v).to(dtype))
        return (*out, None)


class RecurrentLIF(torch.nn.Module):
    """A synapse and a layer of LIF neurons ``in_features -> size`` in one, with optional
    recurrent weights, trained time constants and thresholds, and delays: the stepped
    layer of ``eventprop train ... --recurrent --delays --train-taus --train-threshold``.

    ``forward(input)`` maps spikes ``(T, B, in_features)`` to spikes ``(T, B, size)``.
    Parameters: ``weight`` ``(size, in_features)`` (init like ``EventPropSynapse``);
    ``recurrent_weight`` ``(size, size)`` (``recurrent=True``, init ``N(0, 0.1/sqrt(size))``);
    ``delays`` ``(size, in_features)`` in units of ``tau_syn`` (``delays=True``, init 0,
    clamped to >= 0 in the forward); ``log_tau_syn``, ``log_tau_mem`` (``train_taus=True``);
    ``threshold_param`` with ``threshold = max(leak, reset) + exp(threshold_param)``
    (``train_threshold=True``). Parameters not trained are buffers. Defaults are
    hxtorch's (``tau_syn = 5 µs``, ``tau_mem = 10 µs``, ``threshold = 1``, ``dt = 1 µs``);
    with nothing trained and no recurrence it computes what ``EventPropSynapse`` +
    ``EventPropLIF(discretization="corrected")`` compute (tested).
    """

    def __init__(
        self,
        in_features: int,
        size: int,
        recurrent: bool = False,
        delays: bool = False,
        train_taus: bool = False,
        train_threshold: bool = False,
        leak: ParamLike = 0.0,
        reset: ParamLike = 0.0,
        threshold: ParamLike = 1.0,
        tau_syn: ParamLike = 5e-6,
        tau_mem: ParamLike = 1e-5,
        dt: float = 1e-6,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: expected a value > 0, got {dt!r}")
        _count("in_features", in_features)
        _count("size", size)
        dtype = dtype or torch.get_default_dtype()
        self.in_features, self.size, self.dt = in_features, size, float(dt)
        full = lambda name, v: _buffer(v, size, dtype, name).expand(size).clone()  # noqa: E731
        self.weight = torch.nn.Parameter(torch.empty(size, in_features, dtype=dtype))
        torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.recurrent_weight = (
            torch.nn.Parameter(torch.randn(size, size, dtype=dtype) * (0.1 / math.sqrt(size)))
            if recurrent
            else None
        )
        self.delays = torch.nn.Parameter(torch.zeros(size, in_features, dtype=dtype)) if delays else None
        self.register_buffer("leak", full("leak", leak))
        self.register_buffer("reset", full("reset", reset))
        floor = torch.maximum(self.leak, self.reset)
        th = full("threshold", threshold)
        if not bool((th > floor).all()):
            raise ValueError("threshold: expected values > max(leak, reset)")
        taus = {"tau_syn": full("tau_syn", tau_syn), "tau_mem": full("tau_mem", tau_mem)}
        for name, v in taus.items():
            if not bool((v > 0).all()):
                raise ValueError(f"{name}: expected values > 0")
            if train_taus:
                setattr(self, "log_" + name, torch.nn.Parameter(v.log()))
            else:
                self.register_buffer("log_" + name, v.log())
        if train_threshold:
            self.threshold_param = torch.nn.Parameter((th - floor).log())
        else:
            self.register_buffer("threshold_param", (th - floor).log())

    def threshold(self) -> torch.Tensor:
        """The per-neuron thresholds."""
        return torch.maximum(self.leak, self.reset) + self.threshold_param.exp()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        tau_syn = self.log_tau_syn.exp()
        delays = None
        if self.delays is not None:
            delays = self.delays.clamp(min=0.0) * tau_syn.unsqueeze(1)
        return RecurrentLIFFunction.apply(
            input,
            self.weight,
            self.recurrent_weight,
            delays,
            self.leak,
            self.reset,
            self.threshold(),
            tau_syn,
            self.log_tau_mem.exp(),
            self.dt,
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, size={self.size}, dt={self.dt}, "
            f"recurrent={self.recurrent_weight is not None}, delays={self.delays is not None}"
        )
