"""Winograd F(2x2, 3x3) convolution (corrnet.kernels.winograd) against the plain-loop
reference and PyTorch: forward values and the input gradient from torch autograd, over random
shapes, asymmetric paddings (including paddings past the kernel, which crop in the input
gradient), groups, float32 and float64, the compiled (numba) and NumPy paths, and batch
chunking under a small memory budget.

float32 Winograd adds and subtracts terms larger than the result, so its float32 tolerance is
relative to the sum of |terms| (the correlation of |x| with |weight|), not to each output
value. (Its error against PyTorch's own float32 error: tests/test_float32_accuracy.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from corrnet.kernels import conv, jit, reference, winograd
from corrnet.kernels.windows import make_window

# float32 error relative to the largest sum of |terms|; float64 likewise
TOLERANCE = {"float32": 1e-5, "float64": 1e-13}

PATHS = [pytest.param(True, id="numba",
                      marks=pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")),
         pytest.param(False, id="numpy")]


@st.composite
def configurations(draw, max_size=11):
    """A random 3x3 stride-1 convolution: shapes, ((top, bottom), (left, right)) padding,
    groups, dtype, seed."""
    groups = draw(st.integers(1, 3))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    # the padded input must hold one window (3 rows and columns)
    height = draw(st.integers(max(1, 3 - sum(pads[0])), max_size))
    width = draw(st.integers(max(1, 3 - sum(pads[1])), max_size))
    return dict(n=draw(st.integers(1, 3)), c_in=groups * draw(st.integers(1, 4)),
                c_out=groups * draw(st.integers(1, 4)), height=height, width=width,
                pads=pads, groups=groups, has_bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**32 - 1)))


def arrays(config):
    """x, weight, bias (or None) and the Window2d of a configuration."""
    rng = np.random.default_rng(config["seed"])
    dtype = config["dtype"]
    x = rng.standard_normal((config["n"], config["c_in"], config["height"], config["width"]))
    weight = rng.standard_normal((config["c_out"], config["c_in"] // config["groups"], 3, 3))
    bias = rng.standard_normal(config["c_out"]).astype(dtype) if config["has_bias"] else None
    window = make_window("conv2d", config["height"], config["width"], (3, 3), (1, 1),
                         config["pads"], (1, 1))
    return x.astype(dtype), weight.astype(dtype), bias, window


def torch_conv(x, weight, bias, pads, groups):
    """PyTorch's conv2d of x padded by ((top, bottom), (left, right)) (asymmetric: F.pad)."""
    (top, bottom), (left, right) = pads
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, groups=groups)


def sum_of_terms(x, weight, bias, pads, groups) -> float:
    """The largest sum of |terms| of any output: the correlation of |x| with |weight|."""
    magnitude = torch_conv(torch.from_numpy(np.abs(x)).double(),
                           torch.from_numpy(np.abs(weight)).double(),
                           None if bias is None else torch.from_numpy(np.abs(bias)).double(),
                           pads, groups)
    return max(1.0, float(magnitude.max()))


def assert_close(got, expected, dtype, scale, what=""):
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[np.dtype(dtype).name] * scale,
                               err_msg=what)


def test_transforms_compute_one_dimensional_correlation():
    """A^T [(G g) * (B^T d)] is the correlation of ALPHA inputs with a 3-tap kernel: TILE
    outputs."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        d, g = rng.standard_normal(winograd.ALPHA), rng.standard_normal(3)
        expected = [d[k:k + 3] @ g for k in range(winograd.TILE)]
        got = winograd.OUTPUT_TRANSFORM @ (
            (winograd.KERNEL_TRANSFORM @ g) * (winograd.INPUT_TRANSFORM @ d))
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=25, deadline=None)
@given(config=configurations())
def test_forward_and_grad_input_match_torch(compiled, config):
    x, weight, bias, window = arrays(config)
    pads, groups, dtype = config["pads"], config["groups"], config["dtype"]
    tx = torch.tensor(x, requires_grad=True)
    expected = torch_conv(tx, torch.from_numpy(weight),
                          None if bias is None else torch.from_numpy(bias), pads, groups)
    upstream = np.random.default_rng(config["seed"] + 1).standard_normal(
        tuple(expected.shape)).astype(dtype)
    expected.backward(torch.from_numpy(upstream))
    assert winograd.supports(x.shape, weight.shape, window, groups, dtype, "forward")
    assert winograd.supports(x.shape, weight.shape, window, groups, dtype, "grad_input")

    with jit.use_compiled(compiled):
        out = winograd.forward(x, weight, bias, window, groups)
        grad_x = winograd.grad_input(upstream, weight, window, groups, x.shape)
    assert out.flags.c_contiguous and grad_x.flags.c_contiguous
    scale = sum_of_terms(x, weight, bias, pads, groups)
    assert_close(out, expected.detach().numpy(), dtype, scale, f"forward {config}")
    # the input gradient's terms: the upstream gradient against the (turned) kernel
    grad_scale = float(np.abs(upstream).max() * np.abs(weight).sum(axis=(0, 2, 3)).max()) + 1
    assert_close(grad_x, tx.grad.numpy(), dtype, grad_scale, f"grad_input {config}")


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=8, deadline=None)
@given(config=configurations(max_size=7))
def test_forward_matches_reference(compiled, config):
    x, weight, bias, window = arrays(config)
    (top, bottom), (left, right) = config["pads"]
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    expected = reference.conv2d(padded, weight, bias, groups=config["groups"])
    with jit.use_compiled(compiled):
        out = winograd.forward(x, weight, bias, window, config["groups"])
    scale = sum_of_terms(x, weight, bias, config["pads"], config["groups"])
    assert_close(out, expected, config["dtype"], scale, f"reference {config}")


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=8, deadline=None)
@given(config=configurations())
def test_grad_input_matches_im2col(compiled, config):
    """The input gradient equals im2col's col2im of W^T @ grad (another algorithm entirely)."""
    x, weight, _, window = arrays(config)
    groups = config["groups"]
    upstream = np.random.default_rng(config["seed"] + 2).standard_normal(
        (x.shape[0], weight.shape[0], window.out_height, window.out_width)).astype(x.dtype)
    expected = conv.conv2d_grad_input(upstream.astype(np.float64), weight.astype(np.float64),
                                      window, groups, x.shape)
    with jit.use_compiled(compiled):
        grad_x = winograd.grad_input(upstream, weight, window, groups, x.shape)
    scale = float(np.abs(upstream).max() * np.abs(weight).sum() + 1.0)
    assert_close(grad_x, expected.astype(x.dtype), x.dtype, scale, f"im2col {config}")


@pytest.mark.parametrize("compiled", PATHS)
def test_chunks_under_a_small_budget_give_the_same_result(compiled):
    """A budget too small for one image runs the batch one image at a time."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 9, 10)).astype(np.float32)
    weight = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    window = make_window("conv2d", 9, 10, (3, 3), (1, 1), ((1, 0), (2, 1)), (1, 1))
    upstream = rng.standard_normal((5, 6, window.out_height, window.out_width)).astype(
        np.float32)
    with jit.use_compiled(compiled):
        whole = winograd.forward(x, weight, None, window, 1)
        chunked = winograd.forward(x, weight, None, window, 1, budget=1)
        grad_whole = winograd.grad_input(upstream, weight, window, 1, x.shape)
        grad_chunked = winograd.grad_input(upstream, weight, window, 1, x.shape, budget=1)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(grad_chunked, grad_whole)


@pytest.mark.parametrize("compiled", PATHS)
def test_float32_accuracy_at_network_sizes(compiled):
    """256 -> 256 channels at 14x14: the float32 result is within the suite's float32
    tolerance of the float64 truth (rtol 1e-4, atol 1e-5 of the largest output)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 256, 14, 14)).astype(np.float32)
    weight = (rng.standard_normal((256, 256, 3, 3)) / 48).astype(np.float32)
    window = make_window("conv2d", 14, 14, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    truth = F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(weight).double(),
                     padding=1).numpy()
    with jit.use_compiled(compiled):
        out = winograd.forward(x, weight, None, window, 1)
    np.testing.assert_allclose(out, truth, rtol=1e-4, atol=1e-5 * np.abs(truth).max())


def test_supports_only_3x3_stride_1_floating():
    x_shape, weight_shape = (2, 4, 8, 8), (6, 4, 3, 3)
    window = make_window("conv2d", 8, 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    for dtype in (np.float32, np.float64):
        for pass_name in ("forward", "grad_input"):
            assert winograd.supports(x_shape, weight_shape, window, 1, dtype, pass_name)
    # (the weight gradient too since issue 13: tests/test_issue13_winograd_grad_weight.py)
    assert winograd.supports(x_shape, weight_shape, window, 1, np.float32, "grad_weight")
    assert not winograd.supports(x_shape, weight_shape, window, 1, np.int64, "forward")
    strided = make_window("conv2d", 8, 8, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1))
    dilated = make_window("conv2d", 8, 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (2, 2))
    five = make_window("conv2d", 8, 8, (5, 5), (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert not winograd.supports(x_shape, weight_shape, strided, 1, np.float32, "forward")
    assert not winograd.supports(x_shape, weight_shape, dilated, 1, np.float32, "forward")
    assert not winograd.supports(x_shape, (6, 4, 5, 5), five, 1, np.float32, "forward")
