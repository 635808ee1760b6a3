"""eventprop.torch against the plain-PyTorch reference of docs/spec.md §1-§3 (tests/reference.py)."""

import pytest
import torch

from eventprop.torch import (
    EventPropLIF,
    EventPropNeuronFunction,
    EventPropSynapse,
    EventPropSynapseFunction,
    eventprop_neuron,
    last_guard_stats,
)
from reference import RefNeuronFunction, RefSynapseFunction, lif_backward, lif_forward

T, B, N_IN, N = 40, 4, 8, 6
DT = 1e-6


def _params(per_neuron, dtype, gen):
    """Scalar params (hxtorch defaults), or per-neuron ones that all differ per neuron
    (tau_mem = tau_syn for one neuron, as in hxtorch's Yin-Yang default)."""
    if not per_neuron:
        return [torch.tensor(v, dtype=dtype) for v in (0.0, 0.0, 1.0, 5e-6, 1e-5)]
    leak = torch.rand(N, generator=gen, dtype=dtype) * 0.2 - 0.1
    reset = leak - 0.1 * torch.rand(N, generator=gen, dtype=dtype)
    threshold = 0.8 + 0.4 * torch.rand(N, generator=gen, dtype=dtype)
    tau_syn = (4 + 2 * torch.rand(N, generator=gen, dtype=dtype)) * 1e-6
    tau_mem = (8 + 4 * torch.rand(N, generator=gen, dtype=dtype)) * 1e-6
    tau_mem[0] = tau_syn[0]
    return [leak, reset, threshold, tau_syn, tau_mem]


def _input(dtype, gen, scale=1.0):
    spikes = (torch.rand(T, B, N_IN, generator=gen) < 0.15).to(dtype)
    w = (torch.randn(N, N_IN, generator=gen, dtype=dtype) * 0.8 + 1.0) * scale
    return spikes, w


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("discretization", ["seed", "corrected"])
def test_neuron_matches_reference(dtype, per_neuron, discretization):
    gen = torch.Generator().manual_seed(11)
    params = _params(per_neuron, dtype, gen)
    spikes_in, w = _input(dtype, gen)
    # The same (2, T, B, N) input for both: from the reference synapse.
    x = RefSynapseFunction.apply(spikes_in, w).detach()
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    za, va, ia = eventprop_neuron(xa, *params, dt=DT, discretization=discretization)
    zb, vb, ib = RefNeuronFunction.apply(xb, *params, None, DT, discretization == "corrected")
    # Forward: same operations in the same order -> bit-identical (docs/spec.md §1).
    assert torch.equal(za, zb) and torch.equal(va, vb) and torch.equal(ia, ib)
    assert 0 < za.sum() < 0.75 * za.numel()  # the test exercises spikes and silence
    g = torch.randn(T, B, N, generator=gen, dtype=dtype)
    (za * g).sum().backward()
    (zb * g).sum().backward()
    # docs/spec.md §2 gradient; 1e-6 relative is the bound for float64, and float32
    # tolerates rounding accumulated over T steps.
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    assert _rel(xa.grad, xb.grad) <= tol
    assert xa.grad.shape == (2, T, B, N)
    stats = last_guard_stats()
    assert stats is not None and stats.guarded_spikes == 0


@pytest.mark.parametrize("with_current", [False, True])
@pytest.mark.parametrize("discretization", ["seed", "corrected"])
def test_hardware_path(with_current, discretization):
    dtype = torch.float64
    gen = torch.Generator().manual_seed(12)
    params = _params(True, dtype, gen)
    spikes_in, w = _input(dtype, gen)
    x = RefSynapseFunction.apply(spikes_in, w).detach()
    # "Hardware" observables: a perturbed software run (spikes shifted by one step), so
    # that they differ from what the forward would compute.
    z0, v0, i0 = lif_forward(x[0], *params, DT)
    hw_z = torch.roll(z0, 1, dims=0)
    hw_v = v0 + 0.01 * torch.randn(v0.shape, generator=gen, dtype=dtype)
    hw = (hw_z.bool(), hw_v) + ((i0 * 1.1,) if with_current else ())
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    za, va, ia = eventprop_neuron(xa, *params, hw, DT, discretization=discretization)
    zb, vb, ib = RefNeuronFunction.apply(xb, *params, hw, DT, discretization == "corrected")
    # Recorded spikes and membrane come back unchanged; the current is recorded or
    # recomputed from the input (docs/spec.md §1).
    assert torch.equal(za, hw_z.to(dtype)) and torch.equal(va, hw_v)
    assert torch.equal(ia, ib)
    g = torch.randn(T, B, N, generator=gen, dtype=dtype)
    (za * g).sum().backward()
    (zb * g).sum().backward()
    assert _rel(xa.grad, xb.grad) <= 1e-6


def test_hw_data_of_own_observables_gives_same_gradient():
    dtype = torch.float64
    gen = torch.Generator().manual_seed(13)
    params = _params(True, dtype, gen)
    spikes_in, w = _input(dtype, gen)
    x = RefSynapseFunction.apply(spikes_in, w).detach()
    xa = x.clone().requires_grad_()
    z, v, i = eventprop_neuron(xa, *params, dt=DT)
    xb = x.clone().requires_grad_()
    zb, _, _ = eventprop_neuron(xb, *params, (z.detach(), v.detach()), DT)
    g = torch.randn(T, B, N, generator=gen, dtype=dtype)
    (z * g).sum().backward()
    (zb * g).sum().backward()
    assert torch.equal(xa.grad, xb.grad)


def test_plain_current_input_returns_first_half():
    # A (T, B, N) input gets grad_input[0] = lambda_i * tau_syn (documented choice).
    gen = torch.Generator().manual_seed(14)
    params = _params(False, torch.float64, gen)
    spikes_in, w = _input(torch.float64, gen)
    x = RefSynapseFunction.apply(spikes_in, w).detach()
    x4 = x.clone().requires_grad_()
    x3 = x[0].clone().requires_grad_()
    z4, _, _ = EventPropNeuronFunction.apply(x4, *params)
    z3, _, _ = EventPropNeuronFunction.apply(x3, *params)
    assert torch.equal(z4, z3)
    z4.sum().backward()
    z3.sum().backward()
    assert torch.equal(x3.grad, x4.grad[0])


def test_unused_spikes_give_zero_gradient():
    gen = torch.Generator().manual_seed(15)
    spikes_in, w = _input(torch.float64, gen)
    x = RefSynapseFunction.apply(spikes_in, w).detach().requires_grad_()
    z, v, i = eventprop_neuron(x)
    # Loss on the membrane only: EventProp ignores it (docs/spec.md §2), so the gradient is 0.
    v.sum().backward()
    assert x.grad is not None and not x.grad.any()


def test_synapse_gradcheck():
    gen = torch.Generator().manual_seed(16)
    x = torch.rand(5, 3, 4, generator=gen, dtype=torch.float64).requires_grad_()
    w = torch.randn(2, 4, generator=gen, dtype=torch.float64).requires_grad_()
    # The weight gradient is the true derivative of y = x W^T (docs/spec.md §3).
    assert torch.autograd.gradcheck(lambda w: EventPropSynapseFunction.apply(x.detach(), w), (w,))
    # The input gradient routes g[1] (EventProp's error path), so it is the true
    # derivative of out[0] + out[1]: there g[0] = g[1] = the upstream gradient.
    assert torch.autograd.gradcheck(
        lambda x, w: EventPropSynapseFunction.apply(x, w).sum(0), (x, w)
    )
    # And g[1] alone reaches the input but not the weight: grad_x = g1 W, grad_W = 0.
    g1 = torch.randn(5, 3, 2, generator=gen, dtype=torch.float64)
    out = EventPropSynapseFunction.apply(x, w)
    (out[1] * g1).sum().backward()
    assert torch.allclose(x.grad, g1 @ w.detach(), rtol=1e-13, atol=1e-13)
    assert not w.grad.any()


def _two_layer(neuron, synapse, spikes_in, w1, w2, w_out, params, target):
    """Input -> EventProp synapse/LIF (hidden 1) -> EventProp synapse/LIF (hidden 2) ->
    plain linear readout; loss on hidden-2 spikes and on the readout."""
    z1, _, _ = neuron(synapse(spikes_in, w1), *params)
    z2, _, _ = neuron(synapse(z1, w2), *params)
    readout = z2 @ w_out.t()  # (T, B, C), plain autograd
    loss = ((readout.sum(0) - target) ** 2).sum() + 0.1 * (z2 * torch.linspace(-1, 1, z2.shape[0], dtype=z2.dtype)[:, None, None]).sum()
    return loss, z1, z2


@pytest.mark.parametrize("discretization", ["seed", "corrected"])
def test_end_to_end_weight_gradients_match_reference(discretization):
    dtype = torch.float64
    gen = torch.Generator().manual_seed(17)
    params = _params(True, dtype, gen)
    spikes_in, w1 = _input(dtype, gen)
    w2 = torch.randn(N, N, generator=gen, dtype=dtype) * 1.5 + 2.5
    w_out = torch.randn(3, N, generator=gen, dtype=dtype)
    target = torch.randn(B, 3, generator=gen, dtype=dtype)
    corrected = discretization == "corrected"

    def ours(x, *p):
        return eventprop_neuron(x, *p, dt=DT, discretization=discretization)

    def ref(x, *p):
        return RefNeuronFunction.apply(x, *p, None, DT, corrected)

    grads = []
    for neuron, synapse in ((ours, EventPropSynapseFunction.apply), (ref, RefSynapseFunction.apply)):
        ws = [w.clone().requires_grad_() for w in (w1, w2, w_out)]
        loss, z1, z2 = _two_layer(neuron, synapse, spikes_in, *ws, params, target)
        loss.backward()
        grads.append(([w.grad for w in ws], z1, z2, loss.detach()))
    (ga, z1a, z2a, la), (gb, z1b, z2b, lb) = grads
    assert torch.equal(z1a, z1b) and torch.equal(z2a, z2b)
    assert z1a.sum() > 0 and z2a.sum() > 0
    assert la.item() == pytest.approx(lb.item(), rel=1e-12)
    for a, b in zip(ga, gb):
        assert b.abs().max() > 0
        assert _rel(a, b) <= 1e-6


def test_modules():
    torch.manual_seed(18)
    syn = EventPropSynapse(N_IN, N, init_mean=2.0, init_std=1.0, dtype=torch.float64)
    lif = EventPropLIF(N, tau_syn=torch.full((N,), 5e-6, dtype=torch.float64), tau_mem=1e-5,
                       dtype=torch.float64)
    readout = torch.nn.Linear(N, 3, dtype=torch.float64)
    assert set(dict(lif.named_buffers())) == {"leak", "reset", "threshold", "tau_syn", "tau_mem"}
    assert [n for n, _ in syn.named_parameters()] == ["weight"]
    spikes_in = (torch.rand(T, B, N_IN) < 0.2).double()
    z, v, i = lif(syn(spikes_in))
    loss = readout(z).sum()
    loss.backward()
    # Same as the functional form with the module's parameters.
    w = syn.weight.detach().clone().requires_grad_()
    z2, _, _ = eventprop_neuron(EventPropSynapseFunction.apply(spikes_in, w), 0.0, 0.0, 1.0,
                                torch.full((N,), 5e-6, dtype=torch.float64), 1e-5)
    readout(z2).sum().backward()
    assert torch.equal(z, z2)
    assert torch.equal(syn.weight.grad, w.grad)
    with pytest.raises(ValueError, match="leak: expected a scalar or \\(6,\\)"):
        EventPropLIF(N, leak=torch.zeros(N + 1))
    with pytest.raises(ValueError, match="discretization"):
        EventPropLIF(N, discretization="exact")
    # layer sizes: integers >= 1, as every other layer of the package
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"size: expected an integer >= 1, got {bad!r}"):
            EventPropLIF(bad)
        with pytest.raises(ValueError, match=f"in_features: expected an integer >= 1, got {bad!r}"):
            EventPropSynapse(bad, 4)
        with pytest.raises(ValueError, match=f"out_features: expected an integer >= 1, got {bad!r}"):
            EventPropSynapse(4, bad)


@pytest.mark.parametrize(
    "env, prefix",
    [({}, "eventprop: the adjoint"),
     ({"RANK": "1", "WORLD_SIZE": "2"}, "rank 1/2: eventprop: the adjoint"),
     ({"RANK": "0", "WORLD_SIZE": "1"}, "eventprop: the adjoint")],
    ids=["single", "torchrun-2", "torchrun-1"],
)
def test_guard_warning_on_dropped_spike(env, prefix, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    # threshold = leak - i at a spike is impossible to hit by chance, so construct
    # dv_m = 0 at a spike with hardware data: a recorded spike at t=2 where
    # i[1] = threshold - leak = 1 (seed discretization uses i[t-1]).
    x = torch.zeros(2, 5, 1, 1, dtype=torch.float64)
    x[0, 0] = 1.0  # i[1] = 1
    tau_syn = 1e300  # decay_syn = 1 - 1e-306 -> i stays 1
    hw_z = torch.zeros(5, 1, 1, dtype=torch.float64)
    hw_z[2] = 1.0
    x.requires_grad_()
    z, _, _ = eventprop_neuron(x, 0.0, 0.0, 1.0, tau_syn, 1e-5, (hw_z, torch.zeros_like(hw_z)))
    with pytest.warns(RuntimeWarning, match="dropped 1 spike") as w:
        z.sum().backward()
    assert str(w[0].message).startswith(prefix), str(w[0].message)
    assert last_guard_stats().guarded_spikes == 1


def test_bad_inputs():
    x = torch.randn(2, 5, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="input: expected shape"):
        eventprop_neuron(x[0, 0])
    with pytest.raises(TypeError, match="input: expected dtype float32 or float64, got torch.int64"):
        eventprop_neuron(x.long())
    with pytest.raises(TypeError, match="input: expected dtype float32 or float64"):
        eventprop_neuron(x.half())
    with pytest.raises(ValueError, match="tau_mem: expected a value > 0, got -0.00001 at index 1"):
        eventprop_neuron(x, tau_mem=torch.tensor([1e-5, -1e-5, 1e-5], dtype=torch.float64))
    with pytest.raises(ValueError, match="hw_data: expected None or a tuple"):
        eventprop_neuron(x, hw_data=(x[0],))
    with pytest.raises(ValueError, match="hw_spikes: expected shape \\(5, 2, 3\\), got \\(4, 2, 3\\)"):
        eventprop_neuron(x, hw_data=(x[0, :4], x[0]))
    with pytest.raises(ValueError, match="discretization"):
        eventprop_neuron(x, discretization="Seed")
    with pytest.raises(ValueError, match="threshold: expected finite values"):
        eventprop_neuron(x, threshold=float("nan"))
    w = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match="input: expected the dtype of weight"):
        EventPropSynapseFunction.apply(torch.zeros(5, 2, 4), w)
    with pytest.raises(ValueError, match="weight: expected shape"):
        EventPropSynapseFunction.apply(torch.zeros(5, 2, 3, dtype=torch.float64), w)
    if torch.cuda.is_available():  # pragma: no cover - CPU CI; test_safety.py mocks CUDA
        with pytest.raises(RuntimeError, match="input: expected a CPU tensor, got device cuda:0"):
            eventprop_neuron(x.cuda())


def test_non_contiguous_inputs():
    gen = torch.Generator().manual_seed(19)
    spikes_in, w = _input(torch.float64, gen)
    x = RefSynapseFunction.apply(spikes_in, w).detach()
    # (2, B, T, N) storage transposed to (2, T, B, N): not contiguous.
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)
    assert not xt.is_contiguous()
    za, va, _ = eventprop_neuron(xt)
    zb, vb, _ = eventprop_neuron(x)
    assert torch.equal(za, zb) and torch.equal(va, vb)
    wt = w.t().contiguous().t()  # non-contiguous weight
    assert torch.equal(EventPropSynapseFunction.apply(spikes_in, wt), EventPropSynapseFunction.apply(spikes_in, w))


def test_hw_data_as_stacked_tensor():
    gen = torch.Generator().manual_seed(20)
    spikes_in, w = _input(torch.float64, gen)
    x = RefSynapseFunction.apply(spikes_in, w).detach()
    z, v, i = lif_forward(x[0], 0.0, 0.0, 1.0, 5e-6, 1e-5, DT)
    a = eventprop_neuron(x, hw_data=torch.stack([z, v, i]))
    b = eventprop_neuron(x, hw_data=(z, v, i))
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_wrong_type_of_dt_names_the_argument():
    gen = torch.Generator().manual_seed(15)
    params = _params(False, torch.float64, gen)
    spikes_in, w = _input(torch.float64, gen)
    x = RefSynapseFunction.apply(spikes_in, w).detach()
    with pytest.raises(TypeError, match=r"^dt: expected a real number, got str$"):
        EventPropNeuronFunction.apply(x, *params, None, "x")
    # A one-element tensor is a real number.
    z, _, _ = EventPropNeuronFunction.apply(x, *params, None, torch.tensor(1e-6))
    z0, _, _ = EventPropNeuronFunction.apply(x, *params, None, 1e-6)
    assert torch.equal(z, z0)
