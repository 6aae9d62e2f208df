"""Issue 13: the pooling backward passes where windows don't overlap (kernel == stride, no
padding, dilation or ceil_mode overhang) write each input cell once (kernels/pool.py,
`_avg_pool_backward_disjoint_kernel`, `_max_pool_backward_disjoint_kernel`) instead of
zeroing the gradient and adding into it. Compared with PyTorch on both kernel paths, with
inputs whose sides are not multiples of the kernel (rows and columns no window holds), ties,
-inf and NaN, a contiguous and a broadcast (out.sum()'s) upstream gradient, and batches split
across threads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet
from corrnet.kernels import jit, pool, reference, threads
from corrnet.nn import functional as F

from torch_compare import assert_same, seeds

# non-square among them; each is one more compilation per dtype
KERNELS = [(2, 2), (3, 3), (2, 3)]


@pytest.mark.parametrize("compiled", [True, False] if jit.AVAILABLE else [False])
def test_issue13_disjoint_pool_backward_matches_torch(monkeypatch, compiled):
    monkeypatch.setattr(pool, "COMPILED_MIN_SIZE", 0)
    monkeypatch.setattr(threads, "MIN_PARALLEL_SIZE", 0)   # batches of 2+ split across threads

    @settings(max_examples=30, deadline=None)
    @given(st.sampled_from(["max", "avg"]), st.sampled_from(KERNELS),
           st.sampled_from([np.float32, np.float64]), st.booleans(), seeds)
    def check(kind, kernel, dtype, broadcast_grad, seed):
        rng = np.random.default_rng(seed)
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)),
                 int(rng.integers(kernel[0], 4 * kernel[0] + 2)),
                 int(rng.integers(kernel[1], 4 * kernel[1] + 2)))
        x = rng.integers(-3, 4, shape).astype(dtype)          # small integers: many ties
        if kind == "max":
            x[rng.random(shape) < 0.1] = -np.inf
            x[rng.random(shape) < 0.05] = np.nan
        tx = torch.tensor(x, requires_grad=True)
        expected = getattr(torch.nn.functional, f"{kind}_pool2d")(tx, kernel, kernel)
        grad = None if broadcast_grad else rng.standard_normal(expected.shape).astype(dtype)
        (expected.sum() if grad is None else expected).backward(
            None if grad is None else torch.tensor(grad))
        with jit.use_compiled(compiled):
            cx = corrnet.tensor(x, requires_grad=True)
            out = getattr(F, f"{kind}_pool2d")(cx, kernel, kernel)
            (out.sum() if grad is None else out).backward(
                None if grad is None else corrnet.tensor(grad))
        assert_same(out, expected, f"{kind} pool forward {shape} {kernel}")
        assert_same(cx.grad, tx.grad, f"{kind} pool input gradient {shape} {kernel}")

    check()


@pytest.mark.parametrize("compiled", [True, False] if jit.AVAILABLE else [False])
def test_issue13_disjoint_avg_pool_forward_matches_the_reference(monkeypatch, compiled):
    """The forward the disjoint backward is the adjoint of, against reference.py's loops."""
    monkeypatch.setattr(pool, "COMPILED_MIN_SIZE", 0)
    x = np.random.default_rng(13).standard_normal((2, 3, 11, 9))
    with jit.use_compiled(compiled):
        got = F.avg_pool2d(corrnet.tensor(x), (2, 3)).numpy()
    np.testing.assert_allclose(got, reference.avg_pool2d(x, (2, 3), (2, 3)), rtol=1e-12)
