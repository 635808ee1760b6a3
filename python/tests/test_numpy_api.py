"""The numpy entry points (no torch involved)."""

import subprocess
import sys

import numpy as np
import pytest

import eventprop


def _layer(rng, t=30, b=3, n_in=6, n=5, p=0.2, dtype=np.float64):
    x = (rng.random((t, b, n_in)) < p).astype(dtype)
    w = rng.normal(2.0, 1.0, (n, n_in)).astype(dtype)
    return x, w


def test_import_does_not_need_torch():
    # `import eventprop` must work without torch: run it where importing torch fails.
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import eventprop\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_forward_hand_computed():
    # One neuron, k_mem = dt/tau_mem = 0.1, k_syn = dt/tau_syn = 0.2, input 20 at t=0:
    # i[1] = 20, u = 0 + 0.1 * (0 - 0 + 20) = 2 > 1 -> z[1] = 1, v[1] = reset = 0;
    # i[2] = 20 * 0.8 = 16, u = 0.1 * 16 = 1.6 > 1 -> z[2] = 1;
    # i[3] = 12.8, u = 1.28 -> z[3] = 1; i[4] = 10.24, u = 1.024 -> z[4] = 1;
    # i[5] = 8.192, u = 0.8192 -> no spike, v[5] = 0.8192.
    x = np.zeros((6, 1, 1))
    x[0, 0, 0] = 20.0
    ctx = eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    np.testing.assert_array_equal(ctx.spikes[:, 0, 0], [0, 1, 1, 1, 1, 0])
    np.testing.assert_allclose(ctx.current[:, 0, 0], [0, 20, 16, 12.8, 10.24, 8.192], rtol=1e-14)
    np.testing.assert_allclose(ctx.membrane[5, 0, 0], 0.8192, rtol=1e-13)


def test_outputs_share_memory_with_context():
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 1.0, (2, 10, 2, 3))
    ctx = eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    s1, s2 = ctx.spikes, ctx.spikes
    assert np.shares_memory(s1, s2)  # two views of the one Rust buffer, no copies
    assert s1.base is ctx
    assert s1.shape == (10, 2, 3) and s1.dtype == np.float64


def test_stacked_and_plain_input_agree_and_strides():
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 1.5, (2, 12, 3, 4)).astype(np.float32)
    a = eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    b = eventprop.neuron_forward(np.ascontiguousarray(x[0]), 0.0, 0.0, 1.0, 5e-6, 1e-5)
    # A non-contiguous view (every other neuron of a wider array) gives the same as a copy.
    wide = np.repeat(x[0], 2, axis=2)
    c = eventprop.neuron_forward(wide[:, :, ::2], 0.0, 0.0, 1.0, 5e-6, 1e-5)
    np.testing.assert_array_equal(a.membrane, b.membrane)
    np.testing.assert_array_equal(a.membrane, c.membrane)
    assert a.spikes.dtype == np.float32


def test_backward_and_stats():
    rng = np.random.default_rng(2)
    x, w = _layer(rng)
    y = eventprop.synapse_forward(x, w, stacked=True)
    assert y.shape == (2, 30, 3, 5)
    np.testing.assert_allclose(y[0], x @ w.T, rtol=1e-12, atol=1e-12)
    assert not y[1].any()
    ctx = eventprop.neuron_forward(y, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    assert ctx.spikes.sum() > 0
    g = rng.normal(size=ctx.spikes.shape)
    grad, stats = eventprop.neuron_backward(ctx, g)
    grad2, stats2 = ctx.backward(g, np.zeros_like(g), np.zeros_like(g))
    np.testing.assert_array_equal(grad, grad2)
    assert stats == stats2
    assert grad.shape == (2, 30, 3, 5)
    # docs/spec.md §2: the last step's adjoint is 0.
    assert not grad[:, -1].any()
    assert set(stats.as_dict()) == {"nonfinite_out", "nonfinite_jump", "guarded_spikes"}
    gx, gw = eventprop.synapse_backward(x, w, grad)
    # docs/spec.md §3: grad_x = g[1] W, grad_W = sum_{t,b} g[0] ⊗ x.
    np.testing.assert_allclose(gx, grad[1] @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, np.einsum("tbo,tbi->oi", grad[0], x), rtol=1e-12, atol=1e-12)
    gx_none, gw2 = eventprop.synapse_backward(x, w, grad, need_input=False)
    assert gx_none is None
    np.testing.assert_array_equal(gw, gw2)


def test_guard_counts_zero_over_zero():
    # leak = threshold = 0 and no input: dv_m = 0 everywhere, so `out` and `jump` are 0/0 at
    # every non-spiking entry of steps 1..T-1 (T-1 steps x B x N), and the guard sets them to
    # 0 without touching a spike.
    x = np.zeros((5, 2, 3))
    ctx = eventprop.neuron_forward(x, 0.0, 0.0, 0.0, 5e-6, 1e-5)
    assert not ctx.spikes.any()
    _, stats = ctx.backward(np.ones_like(x))
    assert stats.nonfinite_out == 4 * 2 * 3
    assert stats.nonfinite_jump == 4 * 2 * 3
    assert stats.guarded_spikes == 0


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda x: eventprop.neuron_forward(x[0, 0], 0.0, 0.0, 1.0, 5e-6, 1e-5), ValueError,
         "input: expected shape (2, T, B, N) or (T, B, N), got (3, 4)"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, -5e-6, 1e-5), ValueError,
         "tau_syn: expected a value > 0"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5, dt=0.0), ValueError,
         "dt: expected a value > 0"),
        (lambda x: eventprop.neuron_forward(x, np.zeros(3), 0.0, 1.0, 5e-6, 1e-5), ValueError,
         "leak: expected shape a scalar or (N,) = (4,), got (3,)"),
        (lambda x: eventprop.neuron_forward(x, np.zeros((2, 4)), 0.0, 1.0, 5e-6, 1e-5), ValueError,
         "leak: expected a scalar or a 1-d array"),
        (lambda x: eventprop.neuron_forward(x, "a", 0.0, 1.0, 5e-6, 1e-5), TypeError,
         "leak: expected a float or a float32/float64 array"),
        (lambda x: eventprop.neuron_forward(x.astype(np.int32), 0.0, 0.0, 1.0, 5e-6, 1e-5),
         TypeError, "input: expected a numpy array of dtype float32 or float64"),
        (lambda x: eventprop.neuron_forward(x.tolist(), 0.0, 0.0, 1.0, 5e-6, 1e-5),
         TypeError, "input: expected a numpy array"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5, discretization="exact"),
         ValueError, "discretization: expected `seed` or `corrected`, got `exact`"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5, hw_data=(x[0],)),
         ValueError, "hw_data: expected a tuple (spikes, membrane[, current]) of 2 or 3"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5, hw_data=(x[0], x[0, :2])),
         ValueError, "hw_membrane: expected shape (5, 3, 4), got (2, 3, 4)"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5,
                                            hw_data=(x[0].astype(np.float32), x[0])),
         TypeError, "hw_spikes: expected dtype float64 (the dtype of input), got float32"),
        (lambda x: eventprop.neuron_forward(np.where(x > 0, np.nan, x), 0.0, 0.0, 1.0, 5e-6, 1e-5),
         ValueError, "input: expected finite values, got NaN"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5).backward(x[0, :, :2]),
         ValueError, "grad_spikes: expected shape (5, 3, 4), got (5, 2, 4)"),
        (lambda x: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5).backward(
            x[0].astype(np.float32)), TypeError, "grad_spikes: expected a numpy array of dtype float64"),
        (lambda x: eventprop.synapse_forward(x[0], np.ones((3, 5))), ValueError,
         "weight: expected shape (N_out, N_in) with N_in = 4, got (3, 5)"),
        (lambda x: eventprop.synapse_forward(x[0], np.ones((3, 4), np.float32)), TypeError,
         "weight: expected dtype float64 (the dtype of input), got float32"),
        (lambda x: eventprop.synapse_forward(x, np.ones((3, 4))), ValueError,
         "input: expected shape (T, B, N_in), got (2, 5, 3, 4)"),
        (lambda x: eventprop.synapse_backward(x[0], np.ones((3, 4)), np.zeros((2, 5, 3, 2))),
         ValueError, "grad: expected shape (2, 5, 3, 3), got (2, 5, 3, 2)"),
    ],
)
def test_bad_inputs_raise_with_message(call, exc, message):
    x = np.random.default_rng(3).normal(size=(2, 5, 3, 4))
    with pytest.raises(exc) as info:
        call(x)
    assert message in str(info.value)


def _count_rate_while_running(fn):
    """Runs `fn` in a thread and returns (iterations per second of a counting loop in this
    thread meanwhile, result of `fn`). While `fn` holds the GIL inside C code, this thread
    runs only in the short gaps the interpreter gives it."""
    import threading
    import time

    started = threading.Event()
    box = {}

    def work():
        started.set()
        box["result"] = fn()

    th = threading.Thread(target=work)
    t0 = time.perf_counter()
    th.start()
    started.wait()
    count = 0
    while th.is_alive():
        count += 1
    th.join()
    return count / (time.perf_counter() - t0), box["result"]


def test_kernels_release_the_gil():
    rng = np.random.default_rng(4)
    x = rng.normal(0.3, 1.0, (400, 64, 256))
    # Baseline: a C call that holds the GIL (sum over a range) for a comparable time.
    held, _ = _count_rate_while_running(lambda: sum(range(20_000_000)))
    forward, ctx = _count_rate_while_running(
        lambda: eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    )
    backward, _ = _count_rate_while_running(lambda: ctx.backward(x))
    # Measured here: ~25-50 k/s while the GIL is held, ~1 M/s while the kernels run.
    assert forward > 5 * held, (forward, held)
    assert backward > 5 * held, (backward, held)


def test_wrong_types_of_dt_and_discretization_name_the_argument():
    x = np.zeros((2, 5, 1, 1))
    with pytest.raises(TypeError, match=r"^dt: expected a real number \(seconds\), got str$"):
        eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5, dt="x")
    with pytest.raises(TypeError, match=r"^discretization: expected"):
        eventprop.neuron_forward(x, 0.0, 0.0, 1.0, 5e-6, 1e-5, discretization=3)
    # The defaults (dt = 1e-6, seed discretization) are those of an explicit call.
    a = eventprop.neuron_forward(x + 1.0, 0.0, 0.0, 1.0, 5e-6, 1e-5)
    b = eventprop.neuron_forward(x + 1.0, 0.0, 0.0, 1.0, 5e-6, 1e-5, dt=1e-6, discretization="seed")
    np.testing.assert_array_equal(a.membrane, b.membrane)



def test_synapse_events_reused_by_the_backward_match_the_public_functions():
    """`eventprop.torch`'s synapse collects the input's non-zeros once
    (`_synapse_forward_events`) and its backward reuses them. Expected values: the public
    `synapse_forward`/`synapse_backward`, which collect the non-zeros again, bit for bit on
    the event-driven (p = 0.05) and the dense (p = 0.5) path; an input of another shape or
    dtype than the forward's is refused, naming `input`."""
    from eventprop import _eventprop as core

    rng = np.random.default_rng(0)
    for p in (0.05, 0.5):
        x = (rng.random((6, 3, 20)) < p).astype(np.float32)
        w = rng.standard_normal((7, 20)).astype(np.float32)
        g = rng.standard_normal((2, 6, 3, 7)).astype(np.float32)
        y, events = core._synapse_forward_events(x, w)
        np.testing.assert_array_equal(y, eventprop.synapse_forward(x, w, stacked=True))
        gx, gw = core._synapse_backward_events(events, x, w, g, True)
        gx_ref, gw_ref = eventprop.synapse_backward(x, w, g)
        np.testing.assert_array_equal(gx, gx_ref)
        np.testing.assert_array_equal(gw, gw_ref)
        gx_none, gw2 = core._synapse_backward_events(events, x, w, g, False)
        assert gx_none is None
        np.testing.assert_array_equal(gw2, gw_ref)
    with pytest.raises(ValueError, match=r"^input: expected the \(T, B, N_in\) of the forward"):
        core._synapse_backward_events(events, x[:5], w, g[:, :5], False)
    with pytest.raises(TypeError, match=r"^input: expected the dtype of the forward"):
        x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
        core._synapse_backward_events(events, x64, w64, g64, False)
