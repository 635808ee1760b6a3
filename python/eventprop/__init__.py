"""EventProp LIF neuron and synapse functions with Rust kernels.

The numpy entry points below need only numpy; ``eventprop.torch`` (which needs PyTorch)
wraps them as ``torch.autograd.Function`` s and ``torch.nn.Module`` s.

Shapes are time-major: ``T`` steps, ``B`` batch, ``N`` neurons (see docs/spec.md §1-§3).

- ``neuron_forward(input, leak, reset, threshold, tau_syn, tau_mem, hw_data=None,
  dt=1e-6, discretization="seed") -> NeuronContext``: ``input`` ``(2, T, B, N)`` (``input[1]``
  ignored) or ``(T, B, N)``; the context has ``.spikes``, ``.membrane``, ``.current``
  ``(T, B, N)``: **read-only** views (no copy) of the buffers the backward reads, so that
  they cannot be edited behind its back (``ValueError: assignment destination is
  read-only``); use ``ctx.spikes.copy()`` for a modifiable array.
- ``neuron_backward(ctx, grad_spikes, grad_membrane=None, grad_current=None)
  -> (grad_input, GuardStats)``: ``grad_input`` ``(2, T, B, N)`` =
  ``[lambda_i * tau_syn, lambda_v - lambda_i]``. The membrane and current gradients are
  not used by EventProp (as in the seed).
- ``synapse_forward(input, weight, stacked=False)``: ``input @ weight.T``.
- ``synapse_backward(input, weight, grad, need_input=True) -> (grad_input, grad_weight)``.

Arrays are float32 or float64 (all of one call the same dtype); C-contiguous arrays are read
without a copy and the kernels run with the GIL released. Every other returned array
(gradients, synapse outputs) is freshly allocated, writeable, and aliases nothing that a
later call reads. Bad shapes or values raise
``ValueError`` and bad dtypes ``TypeError``, with a message naming the argument.

``eventprop.load(checkpoint)`` (needs PyTorch) returns the network of a checkpoint written by
``eventprop train`` as torch modules (``eventprop.model``).

The kernels run on a rayon thread pool of one thread per core; set the environment
variable ``RAYON_NUM_THREADS`` before the first call to choose another number.
"""

from ._eventprop import (
    GuardStats,
    NeuronContext,
    __version__,
    neuron_backward,
    neuron_forward,
    synapse_backward,
    synapse_forward,
)


def load(checkpoint, **kwargs):
    """The network of an ``eventprop train`` checkpoint as a :class:`eventprop.model.Sequential`
    with its trained weights and neuron parameters (``eventprop.model.load``; needs
    PyTorch)."""
    from .model import load as _load

    return _load(checkpoint, **kwargs)


__all__ = [
    "GuardStats",
    "NeuronContext",
    "__version__",
    "load",
    "neuron_backward",
    "neuron_forward",
    "synapse_backward",
    "synapse_forward",
]
