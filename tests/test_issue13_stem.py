"""Issue 13: im2col + GEMM on large images, one image at a time in cache-sized bands of output
rows (kernels/conv.py, `banded`), and the ResNet stem's memory.

The banded passes are compared with PyTorch (forward values, input, weight and bias
gradients) on both kernel paths: the compiled band kernels, and NumPy's copies
(``use_compiled(False)``) over the same bands. Small problems reach the banded path by
shrinking `BAND_BYTES` and `BANDED_MIN_POSITIONS`, which also cuts them into many bands, of
one output row at the least. The forward pass is also checked against the plain loops of
kernels/reference.py.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet
from corrnet.kernels import conv, jit, plan, reference
from corrnet.kernels.windows import make_window
from corrnet.nn import functional as F

from torch_compare import assert_same, seeds

MiB = 2**20
PATHS = [True, False] if jit.AVAILABLE else [False]


@st.composite
def banded_problems(draw):
    """(x_shape, weight_shape, stride, padding, dilation, groups, band_rows)."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, (kh - 1) * dilation[0])),
               draw(st.integers(0, (kw - 1) * dilation[1])))
    smallest = [max(1, dilation[a] * (k - 1) + 1 - 2 * padding[a]) for a, k in ((0, kh), (1, kw))]
    height = draw(st.integers(smallest[0], smallest[0] + 20))
    width = draw(st.integers(smallest[1], smallest[1] + 20))
    n = draw(st.integers(1, 3))
    band_rows = draw(st.integers(1, 5))          # output rows a band holds at most
    return ((n, c_in, height, width), (c_out, c_in // groups, kh, kw), stride, padding,
            dilation, groups, band_rows)


def _banded_everywhere(monkeypatch, x_shape, window, dtype, band_rows):
    """Make `window` banded, in bands of `band_rows` output rows (fewer for the last)."""
    band_rows = min(band_rows, window.out_height)
    monkeypatch.setattr(conv, "BAND_BYTES", band_rows * conv._row_bytes(x_shape, window, dtype))
    monkeypatch.setattr(conv, "BANDED_MIN_POSITIONS", 1)


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_banded_im2col_matches_torch(monkeypatch, compiled):
    @settings(max_examples=30, deadline=None)
    @given(banded_problems(), st.sampled_from([np.float32, np.float64]), st.booleans(), seeds)
    def check(problem, dtype, broadcast_grad, seed):
        x_shape, w_shape, stride, padding, dilation, groups, band_rows = problem
        window = make_window("conv2d", *x_shape[2:], w_shape[2:], stride,
                             tuple((p, p) for p in padding), dilation)
        _banded_everywhere(monkeypatch, x_shape, window, dtype, band_rows)
        assert conv.banded(x_shape, window, dtype)
        assert not conv.keeps_windows(x_shape, w_shape, window, dtype, 256 * MiB)
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, x_shape).astype(dtype)
        w = rng.uniform(-1, 1, w_shape).astype(dtype)
        b = rng.uniform(-1, 1, w_shape[:1]).astype(dtype)
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        expected = torch.nn.functional.conv2d(tx, tw, tb, **kwargs)
        grad = None if broadcast_grad else rng.uniform(-1, 1, expected.shape).astype(dtype)
        (expected.sum() if grad is None else expected).backward(
            None if grad is None else torch.tensor(grad))
        with jit.use_compiled(compiled), plan.forcing("gemm"):
            cx, cw, cb = (corrnet.tensor(a, requires_grad=True) for a in (x, w, b))
            out = F.conv2d(cx, cw, cb, **kwargs)
            # a broadcast gradient (out.sum()'s) reaches the passes as a zero-stride view
            (out.sum() if grad is None else out).backward(
                None if grad is None else corrnet.tensor(grad))
        what = f"{problem}, {np.dtype(dtype).name}"
        assert_same(out, expected, f"forward {what}")
        for got, want, name in ((cx, tx, "input"), (cw, tw, "weight"), (cb, tb, "bias")):
            assert_same(got.grad, want.grad, f"{name} gradient {what}")

    check()


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_banded_forward_matches_the_reference(monkeypatch, compiled):
    """conv.forward in bands against reference.conv2d's plain loops (float64)."""
    rng = np.random.default_rng(13)
    for x_shape, w_shape, stride, padding, dilation, groups in [
            ((2, 3, 23, 19), (4, 3, 7, 7), (2, 2), (3, 3), (1, 1), 1),
            ((1, 4, 17, 21), (6, 2, 3, 5), (1, 3), (2, 1), (2, 1), 2),
            ((2, 2, 9, 30), (3, 2, 4, 2), (3, 1), (0, 1), (1, 2), 1)]:
        window = make_window("conv2d", *x_shape[2:], w_shape[2:], stride,
                             tuple((p, p) for p in padding), dilation)
        _banded_everywhere(monkeypatch, x_shape, window, np.float64, 2)
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[0])
        with jit.use_compiled(compiled):
            got = conv.forward(x, w, b, window, groups, 256 * MiB)
        expected = reference.conv2d(x, w, b, stride, padding, dilation, groups)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def _temporaries_of_forward_backward(x, w, b, kwargs) -> int:
    """tracemalloc's peak during one conv2d forward + backward (loss = out.sum()) beyond the
    memory before it, less the output and the three gradients every library must hold."""
    cx, cw, cb = (corrnet.tensor(a, requires_grad=True) for a in (x, w, b))
    F.conv2d(cx, cw, cb, **kwargs).sum().backward()      # warm-up: compiles the kernels
    cx.grad = cw.grad = cb.grad = None
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = F.conv2d(cx, cw, cb, **kwargs)
        out.sum().backward()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if started:
            tracemalloc.stop()
    return peak - out.detach().numpy().nbytes - sum(t.grad.numpy().nbytes for t in (cx, cw, cb))


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_stem_keeps_no_unrolled_windows(compiled):
    """The ResNet stem (3->64, 7x7, stride 2, padding 3, 224x224), two images: the forward
    pass keeps no unrolled windows for the weight gradient (a whole batch's would be 2 x 7.4
    MB), and forward + backward hold little besides the output and the gradients (issue 13:
    the stem's peak was 4x PyTorch's)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 224, 224)).astype(np.float32)
    w = (rng.standard_normal((64, 3, 7, 7)) * 0.1).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    window = make_window("conv2d", 224, 224, (7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1))
    assert conv.banded(x.shape, window, x.dtype)
    assert not conv.keeps_windows(x.shape, w.shape, window, x.dtype, 256 * MiB)
    with jit.use_compiled(compiled):
        extra = _temporaries_of_forward_backward(x, w, b, dict(stride=2, padding=3))
    whole_col = conv.col_bytes(x.shape, w.shape, window, x.dtype)
    # one band's buffers: its windows (BAND_BYTES at most), a copy of the broadcast
    # gradient's band (C_out/K of that), its input rows (a padded copy, or split into column
    # phases): 5-6.6 MiB at 4 MiB bands, where the kept windows made it 20 MiB
    assert extra <= 2 * conv.BAND_BYTES < whole_col, (extra / MiB, whole_col / MiB)
