"""Layers, a ``Sequential`` model and the checkpoints of ``eventprop train`` as torch modules.

Needs PyTorch. The layers are built on the functions of :mod:`eventprop.torch`, so a model
trains with the EventProp gradient of the stepped engine (docs/spec.md §3):

- :class:`LIF`: a synapse and a layer of LIF neurons, spikes ``(T, B, in)`` → spikes
  ``(T, B, out)`` (``EventPropSynapse`` + ``EventPropLIF``);
- :class:`LI`: a plain synapse and a leaky-integrator readout (a LIF neuron without
  threshold), spikes ``(T, B, in)`` → membrane ``(T, B, out)``;
- :class:`Sequential`: ``torch.nn.Sequential`` of such layers with the decoding of its
  output: :meth:`Sequential.scores`, :meth:`Sequential.predict`, :meth:`Sequential.loss`;
- :func:`load`: the network of a checkpoint written by ``eventprop train`` as a
  :class:`Sequential` (stepped engine, either discretization) with the trained weights
  and neuron parameters;
- :func:`rasterize` and :func:`yinyang_input`: spike events on the time grid, as the
  stepped engine places them (step ``round(t / dt)``).

Shapes are time-major; every layer takes and returns CPU tensors of one float dtype.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .torch import EventPropLIF, EventPropSynapse, RecurrentLIF, _count, _real

__all__ = ["LIF", "LI", "Sequential", "load", "rasterize", "yinyang_input"]

PathLike = Union[str, os.PathLike]

_DECODERS = ("max_over_time", "first_spike", "sum", "sum_exp")


def _positive(name: str, value) -> float:
    v = _real(name, value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a finite value > 0, got {value!r}")
    return v


class LIF(torch.nn.Module):
    """A synapse ``weight`` ``(out_features, in_features)`` and ``out_features`` LIF
    neurons: ``forward(spikes (T, B, in)) -> spikes (T, B, out)`` (the input is converted to the
    weight's dtype).

    The neuron parameters are those of :class:`eventprop.torch.EventPropLIF` (defaults:
    hxtorch's); ``discretization`` ``"corrected"`` (the default of ``eventprop train``) or
    ``"seed"``. The weight is initialised like ``torch.nn.Linear``'s unless
    ``init_mean``/``init_std`` are given. The layer's membrane and current of the last
    forward are kept in ``last_membrane`` / ``last_current`` (read-only use: editing them
    does not change the gradient).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        leak: float = 0.0,
        reset: float = 0.0,
        threshold: float = 1.0,
        tau_syn: float = 5e-6,
        tau_mem: float = 1e-5,
        dt: float = 1e-6,
        discretization: str = "corrected",
        init_mean: Optional[float] = None,
        init_std: Optional[float] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        _count("in_features", in_features)
        _count("out_features", out_features)
        self.synapse = EventPropSynapse(in_features, out_features, init_mean, init_std, dtype)
        self.neurons = EventPropLIF(
            out_features, leak, reset, threshold, tau_syn, tau_mem, dt, discretization, dtype
        )
        self.last_membrane: Optional[torch.Tensor] = None
        self.last_current: Optional[torch.Tensor] = None

    @property
    def weight(self) -> torch.nn.Parameter:
        """The synapse's weight ``(out_features, in_features)``."""
        return self.synapse.weight

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if isinstance(input, torch.Tensor):
            input = input.to(self.synapse.weight.dtype)  # spikes: exact in either dtype
        spikes, self.last_membrane, self.last_current = self.neurons(self.synapse(input))
        return spikes


class LI(torch.nn.Module):
    """A synapse ``weight`` ``(out_features, in_features)`` and a leaky-integrator readout:
    ``forward(spikes (T, B, in)) -> membrane (T, B, out)``.

    With ``y = input @ weight.T``, ``k_syn = dt / tau_syn``, ``k_mem = dt / tau_mem``:
    ``i[0] = 0``, ``v[0] = leak``, ``i[t+1] = i[t] (1 - k_syn) + y[t]``,
    ``v[t+1] = v[t] + k_mem (leak - v[t] + i[t+1])`` (the stepped engine's readout). The
    backward is torch's autograd of this recursion (the exact adjoint, as in the engine).
    The weight is initialised like ``torch.nn.Linear``'s unless ``init_mean``/``init_std``
    are given.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        leak: float = 0.0,
        tau_syn: float = 6e-6,
        tau_mem: float = 6e-6,
        dt: float = 1e-6,
        init_mean: Optional[float] = None,
        init_std: Optional[float] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        self.in_features = _count("in_features", in_features)
        self.out_features = _count("out_features", out_features)
        self.leak = _real("leak", leak)
        if not math.isfinite(self.leak):
            raise ValueError(f"leak: expected a finite value, got {leak!r}")
        self.tau_syn = _positive("tau_syn", tau_syn)
        self.tau_mem = _positive("tau_mem", tau_mem)
        self.dt = _positive("dt", dt)
        self.weight = torch.nn.Parameter(
            torch.empty(out_features, in_features, dtype=dtype or torch.get_default_dtype())
        )
        if init_mean is None and init_std is None:
            torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        else:
            torch.nn.init.normal_(self.weight, mean=init_mean or 0.0, std=init_std or 1.0)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not isinstance(input, torch.Tensor) or input.dim() != 3:
            got = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
            raise ValueError(f"input: expected spikes (T, B, {self.in_features}), got {got}")
        if input.shape[2] != self.in_features:
            raise ValueError(
                f"input: expected spikes (T, B, {self.in_features}), got {tuple(input.shape)}"
            )
        y = torch.matmul(input.to(self.weight.dtype), self.weight.t())
        if y.shape[0] == 0:
            # no steps: an empty membrane (T = 0), as the LIF layers return empty spikes
            return y.clone()
        ks, km = self.dt / self.tau_syn, self.dt / self.tau_mem
        try:
            cur = torch.zeros_like(y[0])
            v = torch.full_like(y[0], self.leak)
            out = [v]
            for t in range(y.shape[0] - 1):
                cur = cur * (1 - ks) + y[t]
                v = v + km * (self.leak - v + cur)
                out.append(v)
            return torch.stack(out)
        except RuntimeError as e:
            # torch reports a failed allocation as RuntimeError (std::bad_alloc / "not enough
            # memory"): the package's other layers raise MemoryError naming the input
            if "alloc" not in str(e) and "memory" not in str(e):
                raise
            raise MemoryError(
                f"input: the readout's membrane and autograd graph of {tuple(y.shape)} "
                f"(T, B, out) did not fit in memory ({str(e).splitlines()[0]})"
            ) from None

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"tau_syn={self.tau_syn}, tau_mem={self.tau_mem}, leak={self.leak}, dt={self.dt}"
        )


class Sequential(torch.nn.Sequential):
    """``torch.nn.Sequential`` of :class:`LIF` / :class:`LI` layers (or any modules mapping
    ``(T, B, N)`` tensors) with the decoding of ``eventprop train``'s losses.

    ``decode`` says how the output ``(T, B, K)`` becomes class scores (as the CLI's
    ``loss.kind``): ``"max_over_time"`` (the largest readout membrane), ``"sum"`` (its
    mean over time), ``"sum_exp"`` (its mean weighted by ``exp(-t / tau_w)``, ``tau_w``
    default ``T dt``) or ``"first_spike"`` (output spikes: the score is ``-t`` of each
    neuron's first spike, ``-T dt`` for a silent one). ``dt`` is the time step of the
    grid (used by the time-based decoders). ``loss_params`` holds the loss's settings
    (``reg`` for ``max_over_time``; ``tau0``, ``tau1``, ``alpha`` for ``first_spike``;
    ``tau_w`` for ``sum_exp``); ``config`` the run's config when loaded from a
    checkpoint (``None`` otherwise).
    """

    def __init__(
        self,
        *layers: torch.nn.Module,
        decode: str = "max_over_time",
        dt: float = 1e-6,
        loss_params: Optional[dict] = None,
    ):
        super().__init__(*layers)
        if decode not in _DECODERS:
            raise ValueError(f"decode: expected one of {', '.join(_DECODERS)}, got {decode!r}")
        self.decode = decode
        self.dt = _positive("dt", dt)
        self.loss_params = dict(loss_params or {})
        self.config: Optional[dict] = None

    def _first_steps(self, output: torch.Tensor) -> torch.Tensor:
        """The step of each output neuron's first spike ``(B, K)``, ``T`` when silent."""
        T = output.shape[0]
        fired = output != 0
        steps = torch.arange(T, device=output.device).view(T, 1, 1).expand_as(output)
        return torch.where(fired, steps, torch.full_like(steps, T)).amin(dim=0)

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, K)`` of the network's output ``(T, B, K)`` (larger is better;
        differentiable for the membrane decoders)."""
        T = output.shape[0]
        if T == 0:
            raise ValueError(f"output: expected at least one time step, got {tuple(output.shape)}")
        if self.decode == "max_over_time":
            return output.max(dim=0).values
        if self.decode == "first_spike":
            return -self._first_steps(output).to(output.dtype) * self.dt
        w = torch.full((T,), 1.0 / max(T, 1), dtype=output.dtype)
        if self.decode == "sum_exp":
            tau_w = self.loss_params.get("tau_w") or T * self.dt
            t = torch.arange(T, dtype=output.dtype) * self.dt
            w = torch.exp(-t / tau_w) / max(T, 1)
        return (output * w.view(T, 1, 1)).sum(dim=0)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The predicted class of each sample ``(B,)`` (int64) for the output ``(T, B, K)``:
        the largest score, the lowest index on ties; ``-1`` where no output neuron fired
        (``first_spike``), as ``eventprop eval`` counts it (never correct)."""
        s = self.scores(output)
        # first index of the maximum (torch.argmax does not promise the first on ties)
        best = s.max(dim=1, keepdim=True).values
        idx = torch.arange(s.shape[1]).expand_as(s)
        pred = torch.where(s == best, idx, torch.full_like(idx, s.shape[1])).amin(dim=1)
        if self.decode == "first_spike":
            silent = (output != 0).sum(dim=0).gather(1, pred.view(-1, 1)).view(-1) == 0
            pred = torch.where(silent, torch.full_like(pred, -1), pred)
        return pred

    def loss(self, output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss of the membrane decoders, as ``eventprop train`` computes it:
        cross-entropy of the scores (``max_over_time`` adds ``reg · mean(score²)``).
        ``first_spike`` needs the spike times' gradient, which the stepped engine forms
        inside its layers: refused here (``ValueError``)."""
        if self.decode == "first_spike":
            raise ValueError(
                "decode: the first-spike loss is not available in Python (train it with "
                "`eventprop train --loss first-spike`); expected max_over_time, sum or sum_exp"
            )
        s = self.scores(output)
        loss = torch.nn.functional.cross_entropy(s, labels)
        reg = self.loss_params.get("reg", 0.0) if self.decode == "max_over_time" else 0.0
        if reg:
            loss = loss + reg * (s * s).mean()
        return loss


def rasterize(
    samples: Iterable[Tuple[Sequence[float], Sequence[int]]],
    n_in: int,
    steps: int,
    dt: float,
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Spike events on the time grid, as the stepped engine places them: ``samples`` is one
    ``(times, channels)`` pair per sample (seconds, channel indices); the result is
    ``(steps, B, n_in)`` with 1 at step ``round(t / dt)``. Events outside the grid or the
    channels are a ``ValueError`` naming the sample."""
    n_in, steps = _count("n_in", n_in), _count("steps", steps)
    dt = _positive("dt", dt)
    samples = list(samples)
    x = torch.zeros(steps, len(samples), n_in, dtype=dtype or torch.get_default_dtype())
    for b, (times, channels) in enumerate(samples):
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        c = np.asarray(channels).reshape(-1)
        if t.shape != c.shape:
            raise ValueError(f"samples[{b}]: expected as many times as channels, got {t.size} and {c.size}")
        k = np.round(t / dt)
        bad = ~np.isfinite(k) | (k < 0) | (k >= steps) | (c < 0) | (c >= n_in)
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(
                f"samples[{b}]: expected events at steps 0..{steps - 1} on channels "
                f"0..{n_in - 1}, got t = {t[j]} s (step {k[j]}) on channel {c[j]}"
            )
        x[torch.from_numpy(k.astype(np.int64)), b, torch.from_numpy(c.astype(np.int64))] = 1.0
    return x


def yinyang_input(features, encoding: dict, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """The input spikes ``(T, B, 5)`` of Yin-Yang features ``(B, 4)`` (as
    ``eventprop data yinyang`` writes them, ``x`` of its ``.npz``) under ``encoding`` (the
    ``[encoding]`` of a config: ``t_early``, ``t_late``, ``t_bias``, ``t_sim``, ``dt``):
    feature ``f`` spikes at ``t_early + f (t_late - t_early)``, channel 4 at ``t_bias``."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 4:
        raise ValueError(f"features: expected shape (B, 4), got {f.shape}")
    try:
        e0, e1, tb = (float(encoding[k]) for k in ("t_early", "t_late", "t_bias"))
        dt = float(encoding["dt"])
        steps = int(round(float(encoding["t_sim"]) / dt))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"encoding: expected t_early, t_late, t_bias, t_sim and dt, got {encoding!r} ({e})") from None
    times = np.concatenate([e0 + f * (e1 - e0), np.full((f.shape[0], 1), tb)], axis=1)
    channels = np.arange(5)
    return rasterize(((t, channels) for t in times), 5, steps, dt, dtype)


class _Tensors:
    """The checkpoint's tensors by name, with the names of checkpoints written before the
    tensors had names (every tensor `weight.{i}`, `i` its index in the layout) as the
    fallback."""

    def __init__(self, tensors: dict, hidden: list, learn: dict, path):
        from .nir import tensor_names

        # [learn] is loaded with an integrator readout only
        self.index = {name: i for i, name in enumerate(tensor_names(hidden, learn))}
        self.tensors, self.path = tensors, path

    def __call__(self, name: str) -> np.ndarray:
        if name in self.tensors:
            return self.tensors[name]
        old = f"weight.{self.index[name]}"
        if old in self.tensors:
            return self.tensors[old]
        raise ValueError(f"{self.path}: checkpoint has no tensor `{name}`")


def load(checkpoint: PathLike, dtype: torch.dtype = torch.float64) -> Sequential:
    """The network of a checkpoint written by ``eventprop train`` (``checkpoint.safetensors``
    or ``best.safetensors``) as a :class:`Sequential` of :class:`LIF` layers and an
    :class:`LI` readout (a :class:`LIF` output layer for the first-spike loss), holding the
    trained weights and the run's neuron parameters, ``dt``, discretization and decoding.
    ``model.config`` is the run's config (a dict); the input of ``model(x)`` is spikes
    ``(T, B, N_in)`` on the run's grid (:func:`yinyang_input`, :func:`rasterize`).

    Hidden layers with ``[learn]`` extras (``--recurrent``, ``--train-taus``,
    ``--train-threshold``) are :class:`eventprop.torch.RecurrentLIF` layers holding the
    trained recurrent weights, ``ln tau`` and threshold parameters (trainable where the run
    trained them). Checkpoints of the earlier tensor names (every tensor ``weight.{i}``)
    load too.

    In float64 (the default) the model computes what ``eventprop eval`` computes on the same
    data (tested). Stepped-engine checkpoints only: the exact engine runs in continuous
    time (evaluate it with ``eventprop eval``, or export it to NIR), the chip engine on
    the chip; trained delays (``--delays``, which delay the readout's synapse too) and
    ``[learn]`` with a spiking output layer are refused too. Each refusal is a
    ``ValueError`` naming the file and what it holds.
    """
    from .nir import read_checkpoint

    tensors, meta = read_checkpoint(checkpoint)
    c = meta["config"]
    engine = c.get("engine")
    if engine != "stepped":
        raise ValueError(
            f"{checkpoint}: expected a stepped-engine checkpoint, got engine `{engine}` "
            + (
                "(continuous time: evaluate it with `eventprop eval`, or run it with "
                "`eventprop export --nir` and eventprop.nir.simulate)"
                if engine == "exact"
                else "(evaluate it with `eventprop eval --chip`)"
            )
        )
    copies = c.get("events", {}).get("delay_line", 1)
    if copies != 1:
        raise ValueError(
            f"{checkpoint}: expected no delay-line input, got events.delay_line = {copies} "
            "(the network takes delayed copies of every channel; evaluate it with "
            "`eventprop eval`)"
        )
    learn = {k: v is True for k, v in c.get("learn", {}).items()}
    net = c["network"]
    loss = dict(c["loss"])
    kind = loss.pop("kind")
    refused = [k for k in ("delays",) if learn.get(k)]
    if any(learn.values()) and kind == "first_spike":
        refused = [k for k, v in sorted(learn.items()) if v]
    if refused:
        raise ValueError(
            f"{checkpoint}: expected no [learn] {', '.join(refused)} (trained delays, and "
            "[learn] with a spiking output layer, have no torch layers here yet), got "
            f"[learn] {', '.join(k for k, v in sorted(learn.items()) if v)} "
            "(evaluate it with `eventprop eval`)"
        )
    dt = float(c["encoding"]["dt"] if c.get("task") == "yinyang" else c["events"]["dt"])
    discretization = c["stepped"]["discretization"]
    hidden = list(net["hidden"])
    tensor = _Tensors(tensors, hidden, learn, checkpoint)
    lif = dict(
        leak=net["leak"], reset=net["reset"], threshold=net["threshold"],
        tau_syn=net["tau_syn"], tau_mem=net["tau_mem"],
    )
    layers: List[torch.nn.Module] = []
    for k in range(len(hidden) + 1):
        w = tensor(f"weight.{k}")
        o, i = w.shape
        extras = {}
        if k < len(hidden) and any(learn.values()):
            layer = RecurrentLIF(
                i, o, recurrent=learn.get("recurrent", False),
                train_taus=learn.get("taus", False),
                train_threshold=learn.get("threshold", False), **lif, dt=dt, dtype=dtype,
            )
            if learn.get("recurrent"):
                extras["recurrent_weight"] = tensor(f"recurrent.{k}")
            if learn.get("taus"):
                extras["log_tau_mem"] = tensor(f"log_tau_mem.{k}").reshape(-1)
                extras["log_tau_syn"] = tensor(f"log_tau_syn.{k}").reshape(-1)
            if learn.get("threshold"):
                extras["threshold_param"] = tensor(f"threshold_param.{k}").reshape(-1)
        elif k < len(hidden):
            layer = LIF(i, o, **lif, dt=dt, discretization=discretization, dtype=dtype)
        elif kind == "first_spike":
            p = dict(lif, tau_syn=net["readout_tau_syn"], tau_mem=net["readout_tau_mem"])
            layer = LIF(i, o, **p, dt=dt, discretization=discretization, dtype=dtype)
        else:
            layer = LI(
                i, o, leak=net["leak"], tau_syn=net["readout_tau_syn"],
                tau_mem=net["readout_tau_mem"], dt=dt, dtype=dtype,
            )
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w))
            for name, value in extras.items():
                target = getattr(layer, name)
                if tuple(target.shape) != value.shape:
                    raise ValueError(
                        f"{checkpoint}: tensor for `{name}` of layer {k}: expected shape "
                        f"{tuple(target.shape)}, got {value.shape}"
                    )
                target.copy_(torch.from_numpy(value))
        layers.append(layer)
    model = Sequential(*layers, decode=kind, dt=dt, loss_params=loss)
    model.config = c
    return model
