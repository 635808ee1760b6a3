"""Arrays and tensors handed back to Python cannot change a later gradient behind its back,
and tensors on a device other than the CPU are rejected with torch's ``RuntimeError``."""

import types

import numpy as np
import pytest
import torch

import eventprop
import eventprop.torch as ept
from eventprop.torch import (
    EventPropNeuronFunction,
    EventPropSynapseFunction,
    eventprop_neuron,
)

T, B, N_IN, N = 30, 3, 6, 5
OUTPUTS = ("spikes", "membrane", "current")


def _data(seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    spikes_in = (torch.rand(T, B, N_IN, generator=gen) < 0.2).to(dtype)
    w = torch.randn(N, N_IN, generator=gen, dtype=dtype) + 2.5
    g = torch.randn(T, B, N, generator=gen, dtype=dtype)
    x = EventPropSynapseFunction.apply(spikes_in, w).detach()
    return x, g


# In-place edits of an output after the forward; each changes values that the forward
# produced (checked in test_edits_would_change_the_gradient).
EDITS = {
    "mul_(0)": lambda t: t.mul_(0),
    "add_(1)": lambda t: t.add_(1),
    "view[T//2].fill_(1)": lambda t: t[T // 2].fill_(1),
}


def _grad(x, g, which=None, edit=None, hw=False):
    """Input gradient of sum(z * g); with `which`, `edit` runs on that output after the loss
    is built and before the backward."""
    xa = x.clone().requires_grad_()
    hw_data = None
    if hw:  # the forward's own observables, recorded as if on hardware
        z0, v0, i0 = eventprop_neuron(x)
        hw_data = (z0.detach().clone(), v0.detach().clone(), i0.detach().clone())
    outs = eventprop_neuron(xa, hw_data=hw_data)
    loss = (outs[0] * g).sum()  # `mul` saves only g (g needs no gradient), not the spikes
    if which is not None:
        edit(outs[OUTPUTS.index(which)])
    loss.backward()
    return xa.grad


@pytest.mark.parametrize("hw", [False, True])
@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("which", OUTPUTS)
def test_inplace_edit_of_output_raises_or_leaves_gradient_unchanged(which, edit, hw):
    x, g = _data()
    ref = _grad(x, g, hw=hw)
    assert ref.abs().max() > 0
    try:
        got = _grad(x, g, which, EDITS[edit], hw=hw)
    except RuntimeError as e:
        assert "inplace" in str(e)
        outcome = "raised"
    else:
        assert torch.equal(got, ref)  # bit-identical to the unmodified run
        outcome = "unchanged"
    # The backward reads spikes and current (saved for backward), not the membrane.
    assert outcome == ("unchanged" if which == "membrane" else "raised")


def test_edits_would_change_the_gradient():
    # Without the protection, editing the buffers the backward reads changes the gradient:
    # the zero-copy views torch wraps are the context's own buffers.
    x, g = _data()
    xs = x.numpy()
    gs = g.numpy()
    ref, _ = eventprop.neuron_forward(xs, 0.0, 0.0, 1.0, 5e-6, 1e-5).backward(gs)
    for k, which in enumerate(OUTPUTS):
        for name, edit in EDITS.items():
            ctx = eventprop.neuron_forward(xs, 0.0, 0.0, 1.0, 5e-6, 1e-5)
            buffers = [torch.from_numpy(a) for a in ctx._writeable_outputs()]
            assert np.shares_memory(buffers[k].numpy(), getattr(ctx, which))
            before = buffers[k].clone()
            edit(buffers[k])
            assert not torch.equal(buffers[k], before), (which, name)
            got, _ = ctx.backward(gs)
            changed = not np.array_equal(got, ref)
            assert changed == (which != "membrane"), (which, name)


def test_returned_tensors_are_the_saved_ones():
    # No copy: the returned spikes and current are what the backward reads.
    x, _ = _data()
    z, v, i = eventprop_neuron(x.clone().requires_grad_())
    state = z.grad_fn.eventprop
    assert np.shares_memory(z.detach().numpy(), state.spikes)
    assert np.shares_memory(i.detach().numpy(), state.current)
    saved = z.grad_fn.saved_tensors
    assert len(saved) == 2
    assert saved[0].data_ptr() == z.data_ptr() and saved[1].data_ptr() == i.data_ptr()


def test_synapse_output_edit_leaves_gradients_unchanged():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(T, B, N_IN, generator=gen, dtype=torch.float64)
    w0 = torch.randn(N, N_IN, generator=gen, dtype=torch.float64)
    G = torch.randn(2, T, B, N, generator=gen, dtype=torch.float64)
    grads = []
    for edit in (False, True):
        xa, w = x.clone().requires_grad_(), w0.clone().requires_grad_()
        y = EventPropSynapseFunction.apply(xa, w)
        loss = (y * G).sum()
        if edit:
            y.mul_(0)
        loss.backward()
        grads.append((xa.grad, w.grad))
    assert grads[0][1].abs().max() > 0
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


@pytest.mark.parametrize("which", ["input", "weight"])
def test_synapse_saved_argument_edit_raises(which):
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(T, B, N_IN, generator=gen, dtype=torch.float64)
    w = torch.randn(N, N_IN, generator=gen, dtype=torch.float64).requires_grad_()
    y = EventPropSynapseFunction.apply(x, w)
    with torch.no_grad():  # e.g. an optimizer step before the backward
        (x if which == "input" else w).mul_(2)
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()


# numpy API


def test_numpy_context_outputs_are_read_only():
    rng = np.random.default_rng(5)
    x, g = _data(seed=5)
    xs, gs = x.numpy(), g.numpy()
    ctx = eventprop.neuron_forward(xs, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    ref, _ = ctx.backward(gs)
    for which in OUTPUTS:
        a = getattr(ctx, which)
        assert not a.flags.writeable and a.base is ctx
        with pytest.raises(ValueError, match="read-only"):
            a[T // 2] = 1.0
        with pytest.raises(ValueError, match="read-only"):
            np.multiply(a, 0.0, out=a)
        with pytest.raises(ValueError, match="cannot set WRITEABLE flag"):
            a.flags.writeable = True
        c = a.copy()  # the documented way to get a modifiable array
        c[:] = rng.normal(size=c.shape)
    got, _ = ctx.backward(gs)
    assert np.array_equal(got, ref)
    assert ref.any()


def test_numpy_returned_arrays_are_fresh_and_writeable():
    rng = np.random.default_rng(6)
    x = (rng.random((T, B, N_IN)) < 0.2).astype(np.float64)
    w = rng.normal(2.5, 1.0, (N, N_IN))
    y = eventprop.synapse_forward(x, w, stacked=True)
    assert y.flags.writeable and not np.shares_memory(y, x) and not np.shares_memory(y, w)
    ctx = eventprop.neuron_forward(y, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    y[:] = 0.0  # the forward copied what it needs
    g = rng.normal(size=(T, B, N))
    grad, _ = eventprop.neuron_backward(ctx, g)
    expected = grad.copy()
    assert grad.flags.writeable
    assert not any(np.shares_memory(grad, getattr(ctx, k)) for k in OUTPUTS)
    grad[:] = 0.0
    again, _ = eventprop.neuron_backward(ctx, g)
    assert np.array_equal(again, expected) and expected.any()
    gx, gw = eventprop.synapse_backward(x, w, expected)
    assert gx.flags.writeable and gw.flags.writeable
    assert not np.shares_memory(gx, expected) and not np.shares_memory(gw, w)


# Devices


def test_device_check_names_argument_and_device():
    # Stand-ins with a CUDA device (no GPU needed): only `.device` is consulted.
    for dev in ("cuda:0", "cuda:1", "mps", "xpu:0", "meta"):
        fake = types.SimpleNamespace(device=torch.device(dev))
        with pytest.raises(RuntimeError, match=f"weight: expected a CPU tensor, got device {dev}"):
            ept._cpu("weight", fake)
    ept._cpu("weight", torch.zeros(1))  # CPU passes


class _FakeCuda(torch.Tensor):
    """A CPU tensor that reports device cuda:0, to reach the device check through the
    public API on a machine without a GPU."""

    @property
    def device(self):
        return torch.device("cuda:0")


def _neuron_args(dtype=torch.float32):
    x = torch.zeros(2, 5, 2, 3, dtype=dtype)
    params = [torch.tensor(v, dtype=dtype) for v in (0.0, 0.0, 1.0, 5e-6, 1e-5)]
    hw = [torch.zeros(5, 2, 3, dtype=dtype) for _ in range(3)]
    return x, params, hw


@pytest.mark.parametrize("device", ["cuda", "meta"])
@pytest.mark.parametrize(
    "arg",
    ["input", "leak", "reset", "threshold", "tau_syn", "tau_mem", "hw_spikes", "hw_membrane",
     "hw_current"],
)
def test_neuron_rejects_non_cpu_tensor(arg, device):
    x, params, hw = _neuron_args()
    names = ["leak", "reset", "threshold", "tau_syn", "tau_mem"]
    hw_names = ["hw_spikes", "hw_membrane", "hw_current"]

    def move(t):
        return t.as_subclass(_FakeCuda) if device == "cuda" else t.to("meta")

    if arg == "input":
        x = move(x)
    elif arg in names:
        params[names.index(arg)] = move(params[names.index(arg)])
    else:
        hw[hw_names.index(arg)] = move(hw[hw_names.index(arg)])
    shown = "cuda:0" if device == "cuda" else "meta"
    with pytest.raises(RuntimeError, match=f"^{arg}: expected a CPU tensor, got device {shown} "):
        EventPropNeuronFunction.apply(x, *params, tuple(hw))


@pytest.mark.parametrize("device", ["cuda", "meta"])
@pytest.mark.parametrize("arg", ["input", "weight"])
def test_synapse_rejects_non_cpu_tensor(arg, device):
    x, w = torch.zeros(5, 2, 3), torch.zeros(4, 3)

    def move(t):
        return t.as_subclass(_FakeCuda) if device == "cuda" else t.to("meta")

    if arg == "input":
        x = move(x)
    else:
        w = move(w)
    shown = "cuda:0" if device == "cuda" else "meta"
    with pytest.raises(RuntimeError, match=f"^{arg}: expected a CPU tensor, got device {shown} "):
        EventPropSynapseFunction.apply(x, w)


def test_outputs_too_large_to_allocate_are_a_memory_error():
    """A small input through a wide weight declares an output of 80 TB (10^7 steps × 10^6
    outputs × 8 B): a MemoryError naming `input`, not an abort of the interpreter."""
    x = np.zeros((10_000_000, 1, 1))
    w = np.zeros((1_000_000, 1))
    with pytest.raises(MemoryError, match=r"input: the output .* cannot be allocated"):
        eventprop.synapse_forward(x, w)
