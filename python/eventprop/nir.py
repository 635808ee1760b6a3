"""NIR (Neuromorphic Intermediate Representation) export of eventprop checkpoints, and a
simulator that runs NIR graphs with this package's kernels.

Needs the ``nir`` package (``pip install nir``, which brings ``h5py``); the rest of
``eventprop`` does not.

- ``to_graph(checkpoint) -> nir.NIRGraph`` and ``export(checkpoint, path)``: the network of
  a checkpoint written by ``eventprop train`` (safetensors, format ``eventprop-train/2``)
  as the same graph ``eventprop export --checkpoint C --nir OUT`` writes: ``input →
  linear0 → lif0 → … → linearL → readout → output``, a cycle ``lif{k} → rec{k} → lif{k}``
  per recurrent hidden layer, per-neuron time constants and thresholds as trained; trained
  delays are refused (``DELAYS_REFUSED``).
- ``to_per_step(graph, dt)``: the same network for simulators that read a spike as 1
  during one time step (snnTorch, norse): ``w_in`` divided by ``dt``.
- ``to_snntorch(graph, dt)``: the same network in snnTorch's parameterisation (its fixed
  step of 1e-4, ``r = tau_mem/dt``, weights scaled by ``dt/tau_mem``) for its importer.
- ``simulate(graph, x, dt)``: runs a feed-forward NIR graph (``Linear``/``Affine``,
  ``CubaLIF``, ``CubaLI``) on a time grid with the seed function (``neuron_forward``) and
  returns the output layer's spikes (``CubaLIF``) or membrane (``CubaLI``).

Conventions (DESIGN.md, "NIR"): times in seconds; ``r = 1`` and ``w_in = tau_syn``, so an
input spike through a weight ``W`` raises the synaptic current by ``W`` (``tau_mem dv/dt =
(v_leak - v) + I``); reset to ``v_reset``; a spike when ``v > v_threshold``. The graph's
metadata holds ``engine``, ``dt`` and ``discretization`` (stepped engine), ``t_sim``,
``time_unit``, ``conventions`` and the run's whole config (``eventprop_config``, JSON), with
which ``eventprop eval --checkpoint model.nir`` reproduces the checkpoint's accuracy.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

from . import neuron_forward, synapse_forward

FORMAT = "eventprop-nir/1"
CHECKPOINT_FORMAT = "eventprop-train/2"
CONVENTIONS = (
    "times in seconds; r = 1 and w_in = tau_syn, so an input spike through a weight W "
    "raises the synaptic current I by W (tau_mem dv/dt = (v_leak - v) + I); reset to "
    "v_reset (not subtractive); spike when v > v_threshold; readout CubaLI starts at "
    "v_leak; dt and discretization describe eventprop's time-stepped engine, the "
    "dynamics are continuous"
)

PathLike = Union[str, os.PathLike]


def _nir():
    try:
        import nir
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "eventprop.nir needs the `nir` package: pip install nir"
        ) from e
    return nir


def read_checkpoint(path: PathLike) -> Tuple[Dict[str, np.ndarray], dict]:
    """The tensors and the metadata of an ``eventprop train`` checkpoint (safetensors).

    Raises ``ValueError`` naming the file for anything but a format ``eventprop-train/2``
    checkpoint with F64/F32 tensors.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file size")
    try:
        header = json.loads(data[8 : 8 + n])
        meta = json.loads(header["__metadata__"]["eventprop"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not an eventprop checkpoint ({e})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path}: expected checkpoint format `{CHECKPOINT_FORMAT}`, "
            f"got `{meta.get('format')}`"
        )
    tensors = {}
    body = data[8 + n :]
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F64": "<f8", "F32": "<f4"}.get(t["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor `{name}` has dtype {t['dtype']}, expected F64 or F32")
        a, b = t["data_offsets"]
        tensors[name] = (
            np.frombuffer(body[a:b], dtype=dtype).astype(np.float64).reshape(t["shape"])
        )
    return tensors, meta


def _layer(n: int, v: float) -> np.ndarray:
    return np.full(n, float(v))


# The one-line reasons and timing statements of the Rust exporter (crates/eventprop-nir,
# crates/eventprop-train/src/nir.rs); python/tests/test_nir.py checks that both write the
# same graph for every network kind.
DELAYS_REFUSED = (
    "trained delays are not exported: eventprop has one delay per synapse ((N_out, N_in) "
    "per weight matrix) and NIR's Delay node one per channel, so the exact graph would need "
    "N_in*N_out delay channels and an (N_out, N_in*N_out) weight per layer"
)
RECURRENCE = {
    "exact": "instantaneous: a spike of neuron m at time t adds r[n, m] to the synaptic "
    "current of neuron n at t",
    "stepped": "one step: a spike of step t enters the layer's synaptic current in step "
    "t + 1, as a spike of the layer below does",
}


def tensor_names(hidden, learn, spiking_readout=False):
    """The names of a checkpoint's tensors in layout order (``NetworkSpec::tensor_names``):
    the weights, then ``recurrent.k``, ``delay.k``, ``log_tau_mem.k``, ``log_tau_syn.k``,
    ``threshold_param.k`` as ``[learn]`` trains them. Checkpoints written before the tensors
    had names call tensor ``i`` of this list ``weight.{i}``."""
    n_ff = len(hidden) + 1
    n_spiking = len(hidden) + (1 if spiking_readout else 0)
    names = [f"weight.{k}" for k in range(n_ff)]
    for on, name, count in (
        (learn.get("recurrent"), "recurrent", len(hidden)),
        (learn.get("delays"), "delay", n_ff),
        (learn.get("taus"), "log_tau_mem", n_spiking),
        (learn.get("taus"), "log_tau_syn", n_spiking),
        (learn.get("threshold"), "threshold_param", n_spiking),
    ):
        if on:
            names += [f"{name}.{k}" for k in range(count)]
    return names


def _layout_tensor(tensors, c, hidden, spiking_readout):
    """Tensor ``i`` of the checkpoint's layout (:func:`tensor_names`), under its name or as
    ``weight.{i}``."""
    names = tensor_names(hidden, c.get("learn", {}), spiking_readout)

    def get(i):
        for name in (names[i], f"weight.{i}"):
            if name in tensors:
                return tensors[name]
        raise ValueError(f"checkpoint has no tensor `{names[i]}`")

    return get


def _neuron_params(tensor, c, hidden, sizes, spiking_readout):
    """The per-neuron parameters of every spiking layer as the engines use them
    (``NetworkSpec::neuron_params``): the config's values, with ``tau = e^{ln tau}`` and
    ``threshold = max(leak, reset) + e^s`` from the tensors where ``[learn]`` trains them.
    ``math.exp`` (the C library's, as Rust's ``f64::exp``) keeps the values bit-identical
    to the CLI's export."""
    net = c.get("network", c)
    learn = c.get("learn", {})
    n_ff = len(hidden) + 1
    n_spiking = len(hidden) + (1 if spiking_readout else 0)
    nxt = n_ff + (len(hidden) if learn.get("recurrent") else 0)
    nxt += n_ff if learn.get("delays") else 0
    taus_at = nxt if learn.get("taus") else None
    nxt += 2 * n_spiking if learn.get("taus") else 0
    thr_at = nxt if learn.get("threshold") else None
    floor = max(net["leak"], net["reset"])
    layers = []
    for k in range(n_spiking):
        n = sizes[k]
        readout = k == len(hidden)
        p = {
            "leak": _layer(n, net["leak"]),
            "reset": _layer(n, net["reset"]),
            "threshold": _layer(n, net["threshold"]),
            "tau_syn": _layer(n, net["readout_tau_syn"] if readout else net["tau_syn"]),
            "tau_mem": _layer(n, net["readout_tau_mem"] if readout else net["tau_mem"]),
        }
        row = lambda i: tensor(i).reshape(-1)  # noqa: E731
        if taus_at is not None:
            p["tau_mem"] = np.array([math.exp(v) for v in row(taus_at + k)])
            p["tau_syn"] = np.array([math.exp(v) for v in row(taus_at + n_spiking + k)])
        if thr_at is not None:
            p["threshold"] = np.array([floor + math.exp(v) for v in row(thr_at + k)])
        layers.append(p)
    return layers


def to_graph(checkpoint: PathLike):
    """The NIR graph of a checkpoint's network (the graph ``eventprop export`` writes):
    any sizes and depth, Yin-Yang and event runs, both engines; recurrent hidden layers as
    a cycle ``lif{k} → rec{k} → lif{k}`` (metadata ``recurrence`` says the engine's timing);
    per-neuron time constants and thresholds (``[learn] taus``, ``threshold``) as trained.
    Raises ``ValueError`` for trained delays (``DELAYS_REFUSED``: NIR cannot express them
    exactly at a sensible size)."""
    nir = _nir()
    tensors, meta = read_checkpoint(checkpoint)
    c = meta["config"]
    learn = c.get("learn", {})
    if learn.get("delays"):
        raise ValueError(f"{checkpoint}: node `graph` (export): {DELAYS_REFUSED}")
    copies = c.get("events", {}).get("delay_line", 1)
    if copies != 1:
        raise ValueError(
            f"{checkpoint}: events.delay_line: expected 1 for a NIR export (the delay-line "
            "input copies every input channel with fixed delays before the network), got "
            f"{copies}"
        )
    # The network's settings: the `[network]` section, or the top level of a config
    # written before the config had sections.
    net = c.get("network", c)
    hidden = list(net["hidden"])
    n_ff = len(hidden) + 1
    missing = [f"weight.{k}" for k in range(n_ff) if f"weight.{k}" not in tensors]
    if missing:
        raise ValueError(f"{checkpoint}: checkpoint has no tensor `{missing[0]}`")
    weights = [tensors[f"weight.{k}"] for k in range(n_ff)]
    sizes = [w.shape[0] for w in weights]
    spiking_readout = c["loss"]["kind"] == "first_spike"
    tensor = _layout_tensor(tensors, c, hidden, spiking_readout)
    params = _neuron_params(tensor, c, hidden, sizes, spiking_readout)

    def cuba_lif(p):
        n = p["tau_syn"].shape[0]
        return nir.CubaLIF(
            tau_syn=p["tau_syn"], tau_mem=p["tau_mem"], r=_layer(n, 1.0), v_leak=p["leak"],
            v_threshold=p["threshold"], v_reset=p["reset"], w_in=p["tau_syn"].copy(),
        )

    nodes = {"input": nir.Input(input_type={"input": np.array([weights[0].shape[1]])})}
    chain, loops = ["input"], []
    for k, w in enumerate(weights):
        nodes[f"linear{k}"] = nir.Linear(weight=w)
        chain.append(f"linear{k}")
        n = w.shape[0]
        if k < len(hidden):
            name, node = f"lif{k}", cuba_lif(params[k])
            if learn.get("recurrent"):
                nodes[f"rec{k}"] = nir.Linear(weight=tensor(n_ff + k))
                loops += [(name, f"rec{k}"), (f"rec{k}", name)]
        elif not spiking_readout:
            ts = net["readout_tau_syn"]
            name, node = "readout", nir.CubaLI(
                tau_syn=_layer(n, ts), tau_mem=_layer(n, net["readout_tau_mem"]),
                r=_layer(n, 1.0), v_leak=_layer(n, net["leak"]), w_in=_layer(n, ts),
            )
        else:
            name, node = "readout", cuba_lif(params[k])
        nodes[name] = node
        chain.append(name)
    nodes["output"] = nir.Output(output_type={"output": np.array([weights[-1].shape[0]])})
    chain.append("output")
    events = c.get("task") == "events"
    metadata = {
        "format": FORMAT,
        "time_unit": "s",
        "engine": c["engine"],
        "t_sim": float(c["events"]["t_max"] if events else c["encoding"]["t_sim"]),
        "conventions": CONVENTIONS,
        "epochs_done": int(meta["epochs_done"]),
        "eventprop_config": json.dumps(c),
        "source": "eventprop (python)",
    }
    if c["engine"] == "stepped":
        metadata["dt"] = float(c["events"]["dt"] if events else c["encoding"]["dt"])
        metadata["discretization"] = c.get("stepped", c)["discretization"]
    if learn.get("recurrent"):
        metadata["recurrence"] = RECURRENCE[c["engine"]]
    return nir.NIRGraph(
        nodes=nodes, edges=list(zip(chain[:-1], chain[1:])) + loops, metadata=metadata
    )


def export(checkpoint: PathLike, path: PathLike) -> None:
    """Writes the checkpoint's network to ``path`` as a NIR file (``nir.write``), atomically:
    a temporary file in the same folder, then a rename."""
    nir = _nir()
    graph = to_graph(checkpoint)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_per_step(graph, dt: float):
    """A copy of ``graph`` for simulators that read a spike as 1 during one step of ``dt``
    (area ``dt``; snnTorch, norse): ``w_in`` of every ``CubaLIF``/``CubaLI`` is divided by
    ``dt`` (``tau_syn`` → ``tau_syn/dt`` for this project's graphs), so that a spike through
    weight ``W`` still raises the synaptic current by ``r·w_in_dirac·W/tau_syn``.
    ``dt`` is in the graph's time unit (seconds for this project's graphs; the stepped
    engine's is ``graph.metadata["dt"]``)."""
    nir = _nir()
    _check_dt(dt)
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            _check_neuron(name, type(node).__name__, node)
        if isinstance(node, nir.CubaLIF):
            node = nir.CubaLIF(
                tau_syn=node.tau_syn, tau_mem=node.tau_mem, r=node.r, v_leak=node.v_leak,
                v_threshold=node.v_threshold, v_reset=node.v_reset, w_in=node.w_in / dt,
            )
        elif isinstance(node, nir.CubaLI):
            node = nir.CubaLI(
                tau_syn=node.tau_syn, tau_mem=node.tau_mem, r=node.r, v_leak=node.v_leak,
                w_in=node.w_in / dt,
            )
        nodes[name] = node
    metadata = dict(graph.metadata)
    metadata["spikes"] = f"per_step (area dt = {dt})"
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=metadata)


# snnTorch 1.0.0's `import_from_nir` fixes the step at 1e-4 (its time unit: seconds).
SNNTORCH_DT = 1e-4


def to_snntorch(graph, dt: float):
    """A copy of ``graph`` in snnTorch's parameterisation, for ``snntorch.import_nir.
    import_from_nir``: the network simulated on a grid of step ``dt`` (the graph's time
    unit; the stepped engine's is ``graph.metadata["dt"]``) as snnTorch's ``Synaptic``
    layers run it (``syn = alpha syn + W x``, ``mem = beta mem + syn``, reset to zero).

    snnTorch 1.0.0 reads a spike as 1 during one step, fixes that step at ``SNNTORCH_DT``
    (1e-4) and requires ``r = tau_mem/dt``, ``w_in = tau_syn/dt``, ``v_leak = 0`` and one
    threshold per layer. So times are scaled by ``SNNTORCH_DT/dt`` (one step of ``dt`` is
    one of snnTorch's; ``alpha = 1 - dt/tau_syn`` and ``beta = 1 - dt/tau_mem`` are kept),
    ``r = tau_mem/dt``, ``w_in = tau_syn/dt`` (with the scaled taus: ``tau/SNNTORCH_DT``), and
    row ``n`` of every weight into a ``CubaLIF`` is multiplied by
    ``(r·w_in/tau_syn)_n · dt/tau_mem_n`` (the graph's own current scaling, then the
    ``dt/tau_mem`` that snnTorch's ``mem += syn`` leaves out). Read with steps of
    ``SNNTORCH_DT``, the result is the same network (``simulate(g, x, SNNTORCH_DT,
    spikes="per_step")`` on it equals ``simulate(graph, x, dt)``).

    Raises ``ValueError`` naming the node and field for what snnTorch cannot run the same:
    ``v_leak`` or ``v_reset`` other than 0 (it has no leak potential and resets to zero),
    thresholds that differ between neurons (trained thresholds), ``CubaLI`` (no leaky
    integrator: run the hidden layers), and weight nodes that feed more than one node.
    """
    nir = _nir()
    _check_dt(dt)
    scale = SNNTORCH_DT / dt
    targets: Dict[str, list] = {}
    for a, b in graph.edges:
        targets.setdefault(a, []).append(b)
    row_scale = {}
    nodes = {}
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if isinstance(node, nir.CubaLI):
            raise ValueError(
                f"node `{name}` (CubaLI): snnTorch has no leaky integrator; export the "
                "hidden layers (a graph ending in a CubaLIF)"
            )
        if not isinstance(node, nir.CubaLIF):
            nodes[name] = node
            continue
        _check_neuron(name, kind, node)
        for param in ("v_leak", "v_reset"):
            a = np.asarray(getattr(node, param), dtype=np.float64).reshape(-1)
            if np.any(a != 0):
                raise ValueError(
                    f"node `{name}` (CubaLIF): `{param}` is {a[a != 0][0]}, expected 0 "
                    "(snnTorch has no leak potential and resets to zero)"
                )
        _one(name, kind, "v_threshold", node.v_threshold)
        tau_syn = np.asarray(node.tau_syn, dtype=np.float64) * np.ones(1)
        tau_mem = np.asarray(node.tau_mem, dtype=np.float64) * np.ones(1)
        n = max(tau_syn.size, tau_mem.size, np.asarray(node.v_threshold).size)
        tau_syn, tau_mem = np.broadcast_to(tau_syn, n), np.broadcast_to(tau_mem, n)
        row_scale[name] = (
            np.asarray(node.r, dtype=np.float64) * np.asarray(node.w_in, dtype=np.float64)
            / tau_syn * (dt / tau_mem)
        )
        nodes[name] = nir.CubaLIF(
            tau_syn=tau_syn * scale, tau_mem=tau_mem * scale, r=tau_mem / dt,
            v_leak=np.zeros(n), v_threshold=np.asarray(node.v_threshold, dtype=np.float64),
            v_reset=np.zeros(n), w_in=tau_syn / dt,
        )
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.Linear, nir.Affine)):
            continue
        into = [t for t in targets.get(name, []) if t in row_scale]
        if not into:
            continue
        if len(targets[name]) != 1:
            raise ValueError(
                f"node `{name}` ({type(node).__name__}): feeds {len(targets[name])} nodes, "
                "expected one (its rows are scaled for the CubaLIF it feeds)"
            )
        f = row_scale[into[0]].reshape(-1, 1)
        w = np.asarray(node.weight, dtype=np.float64) * f
        if isinstance(node, nir.Affine):
            nodes[name] = nir.Affine(weight=w, bias=np.asarray(node.bias) * f.reshape(-1))
        else:
            nodes[name] = nir.Linear(weight=w)
    metadata = dict(graph.metadata)
    metadata["spikes"] = f"per_step (area {SNNTORCH_DT})"
    metadata["time_unit"] = f"{dt / SNNTORCH_DT} s (one step of dt = {dt} s is {SNNTORCH_DT})"
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=metadata)


def _check_dt(dt) -> None:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: expected a finite value > 0, got {dt!r}")


def _check_neuron(name, kind, node) -> None:
    """The parameters of a CubaLIF/CubaLI node as the CLI's import checks them: time
    constants finite and > 0, every other parameter finite."""
    for param in ("tau_syn", "tau_mem"):
        a = np.asarray(getattr(node, param), dtype=np.float64)
        if not np.all(np.isfinite(a) & (a > 0)):
            bad = a[~(np.isfinite(a) & (a > 0))].reshape(-1)[0]
            raise ValueError(f"node `{name}` ({kind}): `{param}`: expected finite values > 0, got {bad}")
    for param in ("r", "w_in", "v_leak", "v_threshold", "v_reset"):
        if not hasattr(node, param):
            continue
        a = np.asarray(getattr(node, param), dtype=np.float64)
        if not np.all(np.isfinite(a)):
            bad = a[~np.isfinite(a)].reshape(-1)[0]
            raise ValueError(f"node `{name}` ({kind}): `{param}`: expected finite values, got {bad}")


def _chain(graph):
    nir = _nir()
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"graph: expected one Input node, got {len(inputs)}")
    succ: Dict[str, list] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    names, cur = [inputs[0]], inputs[0]
    while not isinstance(graph.nodes[cur], nir.Output):
        nxt = succ.get(cur, [])
        if len(nxt) != 1 or nxt[0] in names:
            raise ValueError(
                f"node `{cur}` ({type(graph.nodes[cur]).__name__}): expected one outgoing "
                f"edge in a feed-forward chain, got {nxt}"
            )
        names.append(nxt[0])
        cur = nxt[0]
    return names


def _one(name, kind, param, a):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    if not np.all(a == a[0]):
        raise ValueError(
            f"node `{name}` ({kind}): `{param}` differs between neurons; one value per layer is supported"
        )
    return float(a[0])


def simulate(
    graph, x: np.ndarray, dt: float, discretization: str = "seed", spikes: str = "dirac"
) -> np.ndarray:
    """Runs a feed-forward NIR graph on a time grid with this package's kernels.

    ``x``: input spikes ``(T, B, N_in)``; ``dt``: the step, in the graph's time unit.
    ``spikes``: how the graph reads the spike train ``S`` of ``tau_syn dI/dt = -I + w_in S``:
    ``"dirac"`` (a spike has area 1: this project's export, ``w_in = tau_syn``) or
    ``"per_step"`` (a spike is 1 during one step, area ``dt``: the reading of snnTorch and
    norse, whose exports write ``w_in = tau_syn/dt``).
    Weight nodes are ``Linear`` or ``Affine`` (the bias is added to the input of every
    step); neuron nodes ``CubaLIF`` (the seed function: current first, then membrane,
    spike when ``v > v_threshold``, reset to ``v_reset``) or ``CubaLI`` (the same recursion
    without threshold). ``r`` and ``w_in`` scale the current: a spike through weight ``W``
    raises our synaptic current by ``r·w_in·W·area/tau_syn`` (DESIGN.md, "NIR"). Returns the
    last neuron layer's spikes (``CubaLIF``) or membrane (``CubaLI``), ``(T, B, N_out)``.
    Raises ``ValueError`` naming the node for anything else.
    """
    nir = _nir()
    _check_dt(dt)
    if spikes not in ("dirac", "per_step"):
        raise ValueError(f"spikes: expected 'dirac' or 'per_step', got {spikes!r}")
    area = dt if spikes == "per_step" else 1.0
    h = np.ascontiguousarray(x, dtype=np.float64)
    out = h
    for name in _chain(graph)[1:-1]:
        node = graph.nodes[name]
        kind = type(node).__name__
        if isinstance(node, (nir.Linear, nir.Affine)):
            w = np.asarray(node.weight, dtype=np.float64)
            h = synapse_forward(np.ascontiguousarray(h), np.ascontiguousarray(w))
            if isinstance(node, nir.Affine):
                h = h + np.asarray(node.bias, dtype=np.float64)
        elif isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            _check_neuron(name, kind, node)
            tau_syn = _one(name, kind, "tau_syn", node.tau_syn)
            tau_mem = _one(name, kind, "tau_mem", node.tau_mem)
            leak = _one(name, kind, "v_leak", node.v_leak)
            scale = (
                np.asarray(node.r, dtype=np.float64)
                * np.asarray(node.w_in, dtype=np.float64)
                * (area / tau_syn)
            )
            cur = np.ascontiguousarray(h * scale)
            if isinstance(node, nir.CubaLIF):
                thr = _one(name, kind, "v_threshold", node.v_threshold)
                reset = _one(name, kind, "v_reset", node.v_reset)
                ctx = neuron_forward(
                    cur, leak, reset, thr, tau_syn, tau_mem, dt=dt,
                    discretization=discretization,
                )
                h = out = np.array(ctx.spikes)
            else:
                T = cur.shape[0]
                i = np.zeros(cur.shape[1:])
                v = np.full(cur.shape[1:], leak)
                mem = np.empty_like(cur)
                mem[0] = v
                for t in range(T - 1):
                    i = i * (1 - dt / tau_syn) + cur[t]
                    v = v + dt / tau_mem * (leak - v + i)
                    mem[t + 1] = v
                h = out = mem
        else:
            raise ValueError(
                f"node `{name}` ({kind}): not supported (Linear, Affine, CubaLIF, CubaLI are)"
            )
    return out
