"""eventprop.torch.RecurrentLIF: the time-stepped layer with recurrent weights, delays and
trained neuron parameters from PyTorch (the Rust layer's gradients are checked against the
exact engine in the Rust tests; here: agreement with the seed modules, the chain rule of
the parameterisation, and errors)."""

import pytest
import torch

from eventprop.torch import EventPropLIF, EventPropSynapse, RecurrentLIF, RecurrentLIFFunction


def _input(T=40, B=3, n_in=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n_in, generator=g, dtype=torch.float64) < 0.15).to(torch.float64)


def test_plain_layer_equals_synapse_and_corrected_neuron():
    # Nothing trained, no recurrence: the same model as EventPropSynapse + EventPropLIF
    # ("corrected"); spikes identical, weight gradients equal to rounding.
    torch.manual_seed(0)
    x = _input()
    layer = RecurrentLIF(3, 4, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(4, 3, dtype=torch.float64) * 4 + 1)
    syn = EventPropSynapse(3, 4, dtype=torch.float64)
    with torch.no_grad():
        syn.weight.copy_(layer.weight)
    lif = EventPropLIF(4, discretization="corrected", dtype=torch.float64)
    z_a = layer(x)
    z_b, _, _ = lif(syn(x))
    assert torch.equal(z_a, z_b)
    assert z_a.sum() >= 4
    G = torch.randn(z_a.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (z_a * G).sum().backward()
    (z_b * G).sum().backward()
    assert torch.allclose(layer.weight.grad, syn.weight.grad, rtol=1e-10, atol=1e-12)


def test_every_extra_gets_a_finite_gradient_and_the_chain_rule_holds():
    torch.manual_seed(1)
    x = _input(T=60, seed=2)
    layer = RecurrentLIF(3, 5, recurrent=True, delays=True, train_taus=True, train_threshold=True, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(5, 3, dtype=torch.float64) * 4 + 1)
        layer.delays.fill_(0.3)
    z = layer(x)
    assert z.sum() > 0
    G = torch.randn(z.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (z * G).sum().backward()
    for name in ("weight", "recurrent_weight", "delays", "log_tau_syn", "log_tau_mem", "threshold_param"):
        g = getattr(layer, name).grad
        assert g is not None and torch.isfinite(g).all(), name
        assert g.abs().sum() > 0, name
    # The raw function's tau_mem gradient times tau_mem is the ln tau_mem gradient.
    tau_mem = layer.log_tau_mem.detach().exp().requires_grad_()
    tau_syn = layer.log_tau_syn.detach().exp()
    delays = layer.delays.detach().clamp(min=0) * tau_syn.unsqueeze(1)
    z2 = RecurrentLIFFunction.apply(
        x, layer.weight.detach(), layer.recurrent_weight.detach(), delays,
        layer.leak, layer.reset, layer.threshold().detach(), tau_syn, tau_mem, layer.dt,
    )
    assert torch.equal(z, z2)
    (z2 * G).sum().backward()
    assert torch.allclose(tau_mem.grad * tau_mem.detach(), layer.log_tau_mem.grad, rtol=1e-12)


def test_bad_arguments_name_themselves():
    layer = RecurrentLIF(3, 4, recurrent=True)
    with pytest.raises(ValueError, match="input"):
        layer(torch.zeros(10, 2, 5))
    with pytest.raises(ValueError, match="threshold"):
        RecurrentLIF(3, 4, threshold=-1.0)
    with pytest.raises(ValueError, match="tau_mem"):
        RecurrentLIF(3, 4, tau_mem=0.0)
    with pytest.raises(ValueError, match="dt"):
        RecurrentLIF(3, 4, dt=0.0)
    # a layer of no neurons is a ValueError naming `size`, not a ZeroDivisionError
    # graded or negative inputs are refused, not read as whole spikes (0.5 and -1 as 1,
    # unlike EventPropSynapse + EventPropLIF, which weight the value)
    x = _input()
    for scale in (0.5, -1.0):
        with pytest.raises(ValueError, match=r"input: expected spikes, each entry 0 or 1"):
            RecurrentLIF(3, 4, dtype=torch.float64)(scale * x)
    with pytest.raises(ValueError, match=r"size: expected an integer >= 1, got 0"):
        RecurrentLIF(5, 0, recurrent=True)
    with pytest.raises(ValueError, match=r"in_features: expected an integer >= 1"):
        RecurrentLIF(-1, 4)
