"""Data-parallel training: 2 local processes (torchrun, gloo, CPU) give the single-process
gradient (examples/ddp_yinyang.py --check-grad).

Expected value: the gradient of the mean loss over a batch equals the average of the two
half-batch gradients that DDP's all-reduce forms; only the summation order differs, so the
difference is at rounding level (measured ~1e-16 relative in float64); the example fails
above 1e-12 relative.
"""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_yinyang.py"


def test_two_processes_give_the_single_process_gradient():
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(EXAMPLE), "--check-grad", "--batch-size", "50"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rel = [float(m) for m in re.findall(r"relative ([0-9.e+-]+)\)", r.stdout)]
    assert len(rel) == 2, r.stdout  # one line per rank
    assert max(rel) <= 1e-12
    # Not trivially zero: the single-process gradient is non-zero on both ranks.
    scales = [float(m) for m in re.findall(r"max \|grad_single\| = ([0-9.e+-]+),", r.stdout)]
    assert len(scales) == 2 and min(scales) > 0, r.stdout


def test_training_lines_under_torchrun_say_whose_they_are():
    """Under torchrun (RANK, WORLD_SIZE > 1) the example's epoch line carries the rank
    prefix of eventprop.torch.rank_prefix, as the package's own warnings do."""
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(EXAMPLE), "--epochs", "1", "--batch-size", "50", "--train-size", "100",
         "--test-size", "50"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^rank 0/2: epoch 1: test accuracy [0-9.]+$", r.stdout, re.M), r.stdout
