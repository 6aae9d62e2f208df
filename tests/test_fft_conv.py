"""The FFT convolution kernels (corrnet.kernels.fft) against the plain-loop reference and
PyTorch.

Every pass (forward, grad_input, grad_weight) over random geometries: batch, groups, channels
per group, image size, kernel size, stride (up to fft.MAX_STRIDE), asymmetric padding (done
with an explicit pad before PyTorch's conv2d, or before the reference's unpadded one) and
dilation, in float32 and float64, with the kernels' column DFTs done both ways (FFT and
matrix product, see fft.MATMUL_DFT_SIZE). Oracles: `reference.conv2d` for forward values,
PyTorch's conv2d and its autograd (with a random upstream gradient) for all three passes,
scipy.signal.correlate2d for a larger single-channel case. Also: blocks split to fit a tiny
budget give the same results, tracemalloc's peak stays within the budget, edge geometries
(padding wider than the image, kernels larger than the image), dtypes and layouts.

The error bound tested. An FFT's rounding error is spread over the whole transform instead of
staying with each output, so it is bounded relative to the largest sums of |terms| rather
than to each output: with S the largest sum_{terms} |a| |b| of the pass (computed by the same
PyTorch operation on the absolute values of the inputs), but at least max|a| * max|b| (one
term: an output whose windows see only padding is 0 exactly, while the transform still
carries the rest of the image), every output is within

    float32: 1e-5 * S        float64: 1e-12 * S

of the oracle (float32's eps is 6e-8; the FFT adds a few eps * log2(Fh*Fw), well inside).
"""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as tF
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corrnet.kernels import fft, reference
from corrnet.kernels.windows import make_window

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def torch_passes(x, weight, bias, grad, stride, padding, dilation, groups):
    """PyTorch's forward output and autograd's input and weight gradients, in float64 numpy.

    padding ((top, bottom), (left, right)) is applied by tF.pad first, so it may be
    asymmetric; `grad` is the upstream gradient of the output."""
    (top, bottom), (left, right) = padding
    x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    w_t = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
    b_t = None if bias is None else torch.tensor(bias, dtype=torch.float64)
    out = tF.conv2d(tF.pad(x_t, (left, right, top, bottom)), w_t, b_t, stride=stride,
                    dilation=dilation, groups=groups)
    out.backward(torch.tensor(grad, dtype=torch.float64))
    return out.detach().numpy(), x_t.grad.numpy(), w_t.grad.numpy()


def assert_within(got, expected, scale, one_term, dtype, what):
    """|got - expected| <= TOLERANCE[dtype] * max(scale.max(), one_term) elementwise, where
    scale holds the sums of |terms| and one_term bounds a single term (see the docstring)."""
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, wanted {dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    bound = TOLERANCE[dtype] * max(float(np.abs(scale).max()), one_term)
    np.testing.assert_allclose(got, expected, rtol=0, atol=bound, err_msg=what)


@st.composite
def geometries(draw, max_size=12, max_kernel=5, max_channels=3, max_batch=3):
    """A valid convolution geometry; padding may be asymmetric and larger than the kernel."""
    n = draw(st.integers(1, max_batch))
    groups = draw(st.integers(1, max_channels))
    c_group, out_group = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    height, width = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, fft.MAX_STRIDE)), draw(st.integers(1, fft.MAX_STRIDE)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(2))
    for size, k, d, (before, after) in zip((height, width), kernel, dilation, padding,
                                           strict=True):
        assume(size + before + after >= d * (k - 1) + 1)
    return dict(n=n, groups=groups, c_group=c_group, out_group=out_group, height=height,
                width=width, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


def arrays(g, dtype, seed):
    """Random x, weight, bias for a geometry, and the Window2d."""
    rng = np.random.default_rng(seed)
    c_in, c_out = g["groups"] * g["c_group"], g["groups"] * g["out_group"]
    x = rng.uniform(-2, 2, (g["n"], c_in, g["height"], g["width"])).astype(dtype)
    weight = rng.uniform(-1, 1, (c_out, g["c_group"], *g["kernel"])).astype(dtype)
    bias = rng.uniform(-1, 1, c_out).astype(dtype)
    window = make_window("conv2d", g["height"], g["width"], g["kernel"], g["stride"],
                         g["padding"], g["dilation"])
    return x, weight, bias, window


@contextlib.contextmanager
def column_dfts(method: str):
    """Do the kernels' column DFTs by 'fft' or by 'matmul' (fft.MATMUL_DFT_SIZE picks one by
    size; the tests' grids are small, so 'matmul' needs the threshold lowered)."""
    saved = fft.MATMUL_DFT_SIZE
    fft.MATMUL_DFT_SIZE = 0 if method == "matmul" else 2**62
    try:
        yield
    finally:
        fft.MATMUL_DFT_SIZE = saved


@pytest.mark.parametrize("column_dft", ["fft", "matmul"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@SETTINGS
@given(g=geometries(), seed=st.integers(0, 2**32 - 1))
def test_three_passes_match_torch(dtype, column_dft, g, seed):
    with column_dfts(column_dft):
        check_three_passes(dtype, g, seed)


def check_three_passes(dtype, g, seed):
    x, weight, bias, window = arrays(g, dtype, seed)
    grad = np.random.default_rng(seed + 1).uniform(
        -1, 1, (g["n"], weight.shape[0], window.out_height, window.out_width)).astype(dtype)
    geometry = (g["stride"], g["padding"], g["dilation"], g["groups"])
    expected = torch_passes(x, weight, bias, grad, *geometry)
    # the sums of |terms|: forward's includes |bias|
    scales = torch_passes(np.abs(x), np.abs(weight), np.abs(bias), np.abs(grad), *geometry)

    groups = g["groups"]
    assert fft.supports(x.shape, weight.shape, window, groups, x.dtype, "forward")
    out = fft.forward(x, weight, bias, window, groups)
    assert out.flags.c_contiguous
    largest = {name: float(np.abs(a).max()) for name, a in
               (("x", x), ("w", weight), ("grad", grad))}
    assert_within(out, expected[0], scales[0], largest["x"] * largest["w"], dtype,
                  f"forward {g}")
    grad_x = fft.grad_input(grad, weight, window, groups, x.shape)
    assert_within(grad_x, expected[1], scales[1], largest["grad"] * largest["w"], dtype,
                  f"grad_input {g}")
    grad_w = fft.grad_weight(grad, x, weight.shape, window, groups)
    assert_within(grad_w, expected[2], scales[2], largest["grad"] * largest["x"], dtype,
                  f"grad_weight {g}")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=geometries(max_size=6, max_kernel=3, max_channels=2, max_batch=2),
       seed=st.integers(0, 2**32 - 1))
def test_forward_matches_reference(g, seed):
    """float64 forward against the plain loops (padding applied to x beforehand)."""
    x, weight, bias, window = arrays(g, "float64", seed)
    padded = np.pad(x, ((0, 0), (0, 0), *g["padding"]))
    expected = reference.conv2d(padded, weight, bias, g["stride"], (0, 0), g["dilation"],
                                g["groups"])
    got = fft.forward(x, weight, bias, window, g["groups"])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_budget_splits_groups_channels_and_images(dtype):
    """A budget below one image's spectra: one group, one channel, one image per block."""
    g = dict(n=3, groups=2, c_group=3, out_group=3, height=9, width=11, kernel=(4, 3),
             stride=(1, 2), padding=((2, 1), (0, 3)), dilation=(2, 1))
    x, weight, bias, window = arrays(g, dtype, 7)
    grid = fft.fft_grid(window)
    assert fft._block_sizes(3, 2, 3, 3, grid, x.itemsize, 1) == (1, 1, 1)
    grad = np.random.default_rng(8).uniform(-1, 1, (3, 6, window.out_height,
                                                    window.out_width)).astype(dtype)
    tight = TOLERANCE[dtype] * 100
    np.testing.assert_allclose(fft.forward(x, weight, bias, window, 2, budget=1),
                               fft.forward(x, weight, bias, window, 2), rtol=0, atol=tight)
    np.testing.assert_allclose(fft.grad_input(grad, weight, window, 2, x.shape, budget=1),
                               fft.grad_input(grad, weight, window, 2, x.shape), atol=tight)
    np.testing.assert_allclose(fft.grad_weight(grad, x, weight.shape, window, 2, budget=1),
                               fft.grad_weight(grad, x, weight.shape, window, 2), atol=tight)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_single_channel_large_kernel(dtype):
    """The corr2d case: a stack of single-channel images, one large kernel, 'valid' mode,
    against scipy.signal.correlate2d (values) and PyTorch (all three passes)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2, 1, 70, 93)).astype(dtype)
    weight = rng.uniform(-1, 1, (1, 1, 15, 17)).astype(dtype)
    window = make_window("conv2d", 70, 93, (15, 17), (1, 1), ((0, 0), (0, 0)), (1, 1))
    out = fft.forward(x, weight, None, window)
    for image in range(2):
        expected = scipy.signal.correlate2d(x[image, 0].astype(np.float64),
                                            weight[0, 0].astype(np.float64), mode="valid")
        scale = scipy.signal.correlate2d(np.abs(x[image, 0]).astype(np.float64),
                                         np.abs(weight[0, 0]).astype(np.float64), mode="valid")
        assert_within(out[image, 0], expected, scale, 0, dtype, "corr2d")
    grad = rng.uniform(-1, 1, out.shape).astype(dtype)
    geometry = ((1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    expected = torch_passes(x, weight, None, grad, *geometry)
    scales = torch_passes(np.abs(x), np.abs(weight), None, np.abs(grad), *geometry)
    assert_within(fft.grad_input(grad, weight, window, 1, x.shape), expected[1], scales[1], 0,
                  dtype, "grad_input")
    assert_within(fft.grad_weight(grad, x, weight.shape, window, 1), expected[2], scales[2], 0,
                  dtype, "grad_weight")


@pytest.mark.parametrize("column_dft", ["fft", "matmul"])
@pytest.mark.parametrize("case", [
    # (H, W, kernel, stride, padding, dilation): padding wider than the image, a kernel
    # larger than the image, 'same' padding, a 1x1 image
    (1, 1, (1, 1), (1, 1), ((5, 5), (5, 5)), (1, 1)),
    (1, 2, (11, 3), (2, 1), ((5, 6), (1, 1)), (1, 1)),
    (3, 5, (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 2)),
    (16, 16, (7, 7), (1, 1), ((3, 3), (3, 3)), (1, 1)),
    (5, 8, (2, 2), (2, 2), ((0, 7), (4, 0)), (3, 2)),
])
def test_edge_geometries(case, column_dft):
    height, width, kernel, stride, padding, dilation = case
    g = dict(n=2, groups=1, c_group=2, out_group=3, height=height, width=width, kernel=kernel,
             stride=stride, padding=padding, dilation=dilation)
    x, weight, bias, window = arrays(g, "float64", 5)
    grad = np.random.default_rng(6).uniform(
        -1, 1, (2, 3, window.out_height, window.out_width))
    expected = torch_passes(x, weight, bias, grad, stride, padding, dilation, 1)
    with column_dfts(column_dft):
        got = (fft.forward(x, weight, bias, window, 1),
               fft.grad_input(grad, weight, window, 1, x.shape),
               fft.grad_weight(grad, x, weight.shape, window, 1))
    for name, value, wanted in zip(("forward", "grad_input", "grad_weight"), got, expected,
                                   strict=True):
        np.testing.assert_allclose(value, wanted, rtol=1e-12, atol=1e-12, err_msg=name)


def test_grid_shares_the_padding_zeros():
    """'same' padding p on both sides needs a grid of H + p, not H + 2p (the module
    docstring): the top padding wraps around onto the zeros the bottom padding uses."""
    window = make_window("conv2d", 64, 64, (15, 15), (1, 1), ((7, 7), (7, 7)), (1, 1))
    grid = fft.fft_grid(window)
    assert grid.shape == (72, 72)              # next_fast_len(71); 78 would give 80
    assert list(grid.tap_rows[:8]) == [65, 66, 67, 68, 69, 70, 71, 0]


def test_dtypes_and_layouts():
    """float32 stays float32 (also with a float64 weight); non-contiguous inputs work;
    supports() refuses integers and strides beyond MAX_STRIDE."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 10, 9, 3)).astype(np.float32).transpose(0, 3, 2, 1)  # (2,3,9,10)
    weight = rng.uniform(-1, 1, (4, 3, 5, 5))
    window = make_window("conv2d", 9, 10, (5, 5), (1, 1), ((1, 1), (2, 2)), (1, 1))
    out = fft.forward(x, weight, None, window, 1)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    expected = tF.conv2d(torch.tensor(np.ascontiguousarray(x), dtype=torch.float64),
                         torch.tensor(weight), padding=(1, 2)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-4)
    grad = np.ones(out.shape, np.float32)
    assert fft.grad_input(grad, weight, window, 1, x.shape).dtype == np.float32
    assert fft.grad_weight(grad, x, weight.shape, window, 1).dtype == np.float32

    assert fft.supports(x.shape, weight.shape, window, 1, np.float32, "grad_weight")
    assert not fft.supports(x.shape, weight.shape, window, 1, np.int64, "forward")
    strided = make_window("conv2d", 9, 10, (5, 5), (3, 1), ((0, 0), (0, 0)), (1, 1))
    assert not fft.supports(x.shape, weight.shape, strided, 1, np.float32, "forward")


def test_temporary_memory_stays_within_budget():
    """Peak NumPy allocations beyond the result (tracemalloc sees NumPy's buffers) stay under
    the budget, once the budget holds one image's spectra."""
    g = dict(n=16, groups=2, c_group=4, out_group=4, height=64, width=64, kernel=(11, 11),
             stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1))
    x, weight, bias, window = arrays(g, "float32", 9)
    grad = np.ones((16, 8, window.out_height, window.out_width), np.float32)
    budget = 3 * 2**20
    passes = {"forward": lambda: fft.forward(x, weight, bias, window, 2, budget),
              "grad_input": lambda: fft.grad_input(grad, weight, window, 2, x.shape, budget),
              "grad_weight": lambda: fft.grad_weight(grad, x, weight.shape, window, 2, budget)}
    for name, run in passes.items():
        tracemalloc.start()
        try:
            result = run()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak - result.nbytes <= budget, f"{name}: {peak - result.nbytes} bytes"
