"""A plain-PyTorch implementation of docs/spec.md §1-§3 (the seed's algorithm, written from the
spec with torch tensor ops only), against which the Rust kernels are tested and
benchmarked.

Elementwise expressions are written in the same order as the Rust kernels, and
``dt / tau`` is a tensor division, so that float64 forward results are bit-identical.
"""

from __future__ import annotations

import torch


def _coeffs(dtype, dt, tau_syn, tau_mem):
    dtv = torch.tensor(dt, dtype=dtype)
    k_syn = dtv / torch.as_tensor(tau_syn, dtype=dtype)
    k_mem = dtv / torch.as_tensor(tau_mem, dtype=dtype)
    return k_syn, k_mem, 1 - k_syn, 1 - k_mem


def current_from_input(x, tau_syn, dt):
    """``i[0] = 0, i[t+1] = i[t] (1 - dt/tau_syn) + x[t]`` (the hardware path's current)."""
    _, _, decay_syn, _ = _coeffs(x.dtype, dt, tau_syn, 1.0)
    i = torch.zeros_like(x)
    for t in range(x.shape[0] - 1):
        i[t + 1] = i[t] * decay_syn + x[t]
    return i


def lif_forward(x, leak, reset, threshold, tau_syn, tau_mem, dt):
    """docs/spec.md §1 without hardware data: ``x`` ``(T, B, N)`` -> ``(z, v, i)``."""
    p = lambda a: torch.as_tensor(a, dtype=x.dtype)  # noqa: E731
    leak, reset, threshold = p(leak), p(reset), p(threshold)
    _, k_mem, decay_syn, _ = _coeffs(x.dtype, dt, tau_syn, tau_mem)
    t_len = x.shape[0]
    z = torch.zeros_like(x)
    v = torch.zeros_like(x)
    i = torch.zeros_like(x)
    v[0] = leak
    for t in range(t_len - 1):
        i[t + 1] = i[t] * decay_syn + x[t]
        u = v[t] + k_mem * (leak - v[t] + i[t + 1])
        spike = u > threshold
        z[t + 1] = spike.to(x.dtype)
        v[t + 1] = torch.where(spike, reset.expand_as(u), u)
    return z, v, i


def lif_backward(z, i, grad_spikes, leak, reset, threshold, tau_syn, tau_mem, dt, corrected=False):
    """docs/spec.md §2: ``(2, T, B, N)`` = ``[lambda_i tau_syn, lambda_v - lambda_i]``; with
    ``corrected`` the jump terms use ``i[t]`` instead of ``i[t-1]``. Also returns the
    number of entries where ``out`` and ``jump`` were not finite."""
    dtype = z.dtype
    p = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    leak, reset, threshold, tau_syn_t = p(leak), p(reset), p(threshold), p(tau_syn)
    k_syn, _, _, decay_mem = _coeffs(dtype, dt, tau_syn, tau_mem)
    t_len = z.shape[0]
    lam_v = torch.zeros_like(z[0])
    lam_i = torch.zeros_like(z[0])
    grad = torch.zeros((2,) + tuple(z.shape), dtype=dtype)
    bad_out = bad_jump = 0
    for t in range(t_len - 1, 0, -1):
        i_star = i[t] if corrected else i[t - 1]
        dv_m = leak - threshold + i_star
        dv_p = leak - reset + i_star
        li = lam_i + k_syn * (lam_v - lam_i)
        w = lam_v * decay_mem
        out = z[t] * grad_spikes[t] / dv_m
        jump = z[t] * dv_p / dv_m
        bad_out += int((~torch.isfinite(out)).sum())
        bad_jump += int((~torch.isfinite(jump)).sum())
        out = torch.where(torch.isfinite(out), out, torch.zeros_like(out))
        jump = torch.where(torch.isfinite(jump), jump, torch.zeros_like(jump))
        lv = (1 - z[t]) * w + jump * w + out
        lam_i, lam_v = li, lv
        grad[0, t - 1] = li * tau_syn_t
        grad[1, t - 1] = lv - li
    return grad, (bad_out, bad_jump)


class RefNeuronFunction(torch.autograd.Function):
    """The seed's ``EventPropNeuronFunction`` in plain PyTorch (docs/spec.md §1-§2)."""

    @staticmethod
    def forward(ctx, input, leak, reset, threshold, tau_syn, tau_mem, hw_data=None, dt=1e-6,
                corrected=False):
        x = input[0] if input.dim() == 4 else input
        if hw_data is None:
            z, v, i = lif_forward(x, leak, reset, threshold, tau_syn, tau_mem, dt)
        else:
            z, v = hw_data[0].to(x.dtype), hw_data[1].to(x.dtype)
            if len(hw_data) > 2 and hw_data[2] is not None:
                i = hw_data[2].to(x.dtype)
            else:
                i = current_from_input(x, tau_syn, dt)
        ctx.save_for_backward(z, i)
        ctx.args = (leak, reset, threshold, tau_syn, tau_mem, dt, corrected)
        ctx.input_rank = input.dim()
        return z, v, i

    @staticmethod
    def backward(ctx, grad_spikes, grad_membrane, grad_current):
        z, i = ctx.saved_tensors
        grad, ctx.bad = lif_backward(z, i, grad_spikes, *ctx.args[:6], corrected=ctx.args[6])
        if ctx.input_rank == 3:
            grad = grad[0]
        return (grad,) + (None,) * 8


class RefSynapseFunction(torch.autograd.Function):
    """docs/spec.md §3: ``[x W^T, 0]`` forward; ``(g[1] W, sum g[0] ⊗ x)`` backward."""

    @staticmethod
    def forward(ctx, input, weight):
        ctx.save_for_backward(input, weight)
        y = input @ weight.t()
        return torch.stack([y, torch.zeros_like(y)])

    @staticmethod
    def backward(ctx, grad):
        input, weight = ctx.saved_tensors
        grad_x = grad[1] @ weight
        grad_w = torch.einsum("tbo,tbi->oi", grad[0], input)
        return grad_x, grad_w
