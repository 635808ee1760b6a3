"""The README's example runs and produces a weight gradient."""

import os
import re

import torch


def test_readme_example_runs():
    path = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
    with open(path) as f:
        code = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    weight, spikes = scope["weight"], scope["spikes"]
    assert weight.grad is not None and weight.grad.shape == (120, 5)
    # The example's weights (mean 4) make the layer spike, so the gradient is not zero.
    assert spikes.sum() > 0 and weight.grad.abs().sum() > 0
    assert scope["last_guard_stats"]() is not None  # the backward recorded its guard counts
