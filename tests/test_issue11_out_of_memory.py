"""Issue 11, from the nightly fuzz run: an op whose result does not fit in the memory the
process may use raises PyTorch's RuntimeError naming the op and the input shapes (NumPy's
MemoryError escaped from deep inside an op); `Tensor.equal` with a non-tensor is PyTorch's
TypeError (it was an AttributeError)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import corrnet as cn

CHILD = textwrap.dedent("""
    import resource
    import corrnet as cn
    from corrnet.nn import functional as F
    from pathlib import Path
    used = int(Path('/proc/self/statm').read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 512 * 2**20, resource.RLIM_INFINITY))
    x, w, b = cn.randn(3, 1, 2, 10), cn.randn(2, 1, 1, 1), cn.randn(2)
    try:
        F.conv2d(x, w, b, stride=3, padding=(10000, 10000), dilation=(1, 2))
    except RuntimeError as exc:
        print("RuntimeError:", exc)
    """)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_issue11_out_of_memory_in_an_op_is_a_clear_runtime_error():
    # (3, 2, 6668, 6670) float32 = 1018 MiB of output, in a process allowed 512 MiB more
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RuntimeError:" in done.stdout and "not enough memory" in done.stdout, done.stdout


def test_issue11_equal_with_a_non_tensor_is_torchs_type_error():
    with pytest.raises(TypeError) as expected:
        torch.ones(3, 0).equal(-1)
    with pytest.raises(TypeError, match="argument 'other'") as got:
        cn.ones(3, 0).equal(-1)
    assert str(got.value) == str(expected.value)
