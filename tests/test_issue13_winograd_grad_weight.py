"""Issue 13: the Winograd F(2x2, 3x3) weight gradient (corrnet.kernels.winograd.grad_weight).

PyTorch is the oracle: the weight gradient (and, through the planner with Winograd forced,
the forward value, the input gradient and the bias gradient of the same layers) against torch
autograd over random shapes (channels 1-64, sizes 1-40 with odd sizes, batch 1-4, groups,
asymmetric padding), float32 and float64, on the compiled (numba) and the NumPy path; against
the plain reference loops and central finite differences in float64; its float32 error
against torch's own (within 2x of it, and no worse than im2col's by more than that); chunking
under a small memory budget.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet as ct
import corrnet.nn.functional as F
from corrnet.kernels import conv, jit, plan, reference, winograd
from corrnet.kernels.windows import make_window

PATHS = [pytest.param(True, id="numba",
                      marks=pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")),
         pytest.param(False, id="numpy")]

# float32 error relative to the largest sum of |terms| of one weight-gradient entry
TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-13}


@st.composite
def layers(draw, max_channels=64, max_size=40):
    """A random 3x3 stride-1 convolution: n, channels, sizes, ((top, bottom), (left, right))
    padding, groups, dtype, seed. Many channels come with small images (a bounded cost)."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, max(1, max_channels // groups)))
    c_out = groups * draw(st.integers(1, max(1, max_channels // groups)))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    # at most ~64 * 20 * 20 values per image and channel side
    largest = max(3, min(max_size, int(40 * (16 / max(c_in, c_out, 16)) ** 0.5)))
    height = draw(st.integers(max(1, 3 - sum(pads[0])), max(3, largest)))
    width = draw(st.integers(max(1, 3 - sum(pads[1])), max(3, largest)))
    return dict(n=draw(st.integers(1, 4)), c_in=c_in, c_out=c_out, height=height, width=width,
                pads=pads, groups=groups,
                dtype=np.dtype(draw(st.sampled_from([np.float32, np.float64]))),
                seed=draw(st.integers(0, 2**32 - 1)))


def _arrays(layer):
    rng = np.random.default_rng(layer["seed"])
    dtype = layer["dtype"]
    x = rng.standard_normal((layer["n"], layer["c_in"], layer["height"], layer["width"]))
    weight = rng.standard_normal((layer["c_out"], layer["c_in"] // layer["groups"], 3, 3))
    window = make_window("conv2d", layer["height"], layer["width"], (3, 3), (1, 1),
                         layer["pads"], (1, 1))
    upstream = rng.standard_normal((layer["n"], layer["c_out"], window.out_height,
                                    window.out_width))
    return x.astype(dtype), weight.astype(dtype), upstream.astype(dtype), window


def _torch_padded(x, pads):
    (top, bottom), (left, right) = pads
    return TF.pad(x, (left, right, top, bottom))


def _torch_grad_weight(x, weight, upstream, pads, groups):
    """torch's weight gradient of conv2d(x padded by pads, weight)."""
    tw = torch.tensor(weight, requires_grad=True)
    out = TF.conv2d(_torch_padded(torch.from_numpy(x), pads), tw, groups=groups)
    out.backward(torch.from_numpy(upstream))
    return tw.grad.numpy()


def _sum_of_terms(x, weight, upstream, pads, groups) -> float:
    """The largest sum of |terms| of any weight-gradient entry (in float64)."""
    magnitude = _torch_grad_weight(np.abs(x).astype(np.float64),
                                   np.abs(weight).astype(np.float64),
                                   np.abs(upstream).astype(np.float64), pads, groups)
    return max(1.0, float(magnitude.max()))


def _assert_close(got, expected, dtype, scale, what):
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    assert got.flags.c_contiguous, what
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[dtype] * scale,
                               err_msg=what)


def test_issue13_winograd_supports_every_pass_of_3x3_stride_1():
    window = make_window("conv2d", 8, 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    strided = make_window("conv2d", 8, 8, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1))
    for dtype in (np.float32, np.float64):
        assert winograd.supports((2, 4, 8, 8), (6, 4, 3, 3), window, 1, dtype, "grad_weight")
    assert not winograd.supports((2, 4, 8, 8), (6, 4, 3, 3), strided, 1, np.float32,
                                 "grad_weight")


def test_issue13_winograd_weight_transforms_are_the_forward_adjoints():
    """<A^T M A, dY> = <M, A dY A^T> and <G g G^T, dU> = <g, G^T dU G>: the back-transforms
    the weight gradient uses are the adjoints of the forward's."""
    rng = np.random.default_rng(0)
    a_t, g = winograd.OUTPUT_TRANSFORM, winograd.KERNEL_TRANSFORM
    for _ in range(10):
        m, dy = rng.standard_normal((4, 4)), rng.standard_normal((2, 2))
        assert np.isclose(np.sum((a_t @ m @ a_t.T) * dy), np.sum(m * (a_t.T @ dy @ a_t)))
        kernel, du = rng.standard_normal((3, 3)), rng.standard_normal((4, 4))
        assert np.isclose(np.sum((g @ kernel @ g.T) * du), np.sum(kernel * (g.T @ du @ g)))
        # the module's own back-transform, for one kernel
        got = winograd.back_transform_kernel(du.reshape(16, 1, 1, 1), (1, 1, 3, 3), 1)
        np.testing.assert_allclose(got[0, 0], g.T @ du @ g, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=30, deadline=None)
@given(layer=layers())
def test_issue13_winograd_grad_weight_matches_torch(compiled, layer):
    x, weight, upstream, window = _arrays(layer)
    pads, groups, dtype = layer["pads"], layer["groups"], layer["dtype"]
    expected = _torch_grad_weight(x, weight, upstream, pads, groups)
    with jit.use_compiled(compiled):
        got = winograd.grad_weight(upstream, x, weight.shape, window, groups)
    scale = _sum_of_terms(x, weight, upstream, pads, groups)
    _assert_close(got, expected, dtype, scale, f"grad_weight {layer}")


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=15, deadline=None)
@given(layer=layers(max_channels=32, max_size=24), has_bias=st.booleans())
def test_issue13_winograd_layer_every_pass_matches_torch(compiled, layer, has_bias):
    """conv2d through the planner with Winograd forced on every pass (the weight gradient
    included): forward, input, weight and bias gradients as torch's autograd."""
    (top, _), (left, _) = layer["pads"]
    layer = dict(layer, pads=((top, top), (left, left)))     # conv2d pads symmetrically
    layer["height"] = max(layer["height"], 3 - 2 * top)
    layer["width"] = max(layer["width"], 3 - 2 * left)
    x, weight, upstream, window = _arrays(layer)
    groups, dtype = layer["groups"], layer["dtype"]
    bias = np.linspace(-1, 1, layer["c_out"]).astype(dtype) if has_bias else None
    problem = (x.shape, weight.shape, window, groups, dtype)
    with jit.use_compiled(compiled), plan.forcing("winograd"):
        assert all(plan.choose(p, *problem) == "winograd" for p in plan.PASSES)
        tensors = [ct.tensor(a, requires_grad=True) for a in (x, weight)]
        tb = None if bias is None else ct.tensor(bias, requires_grad=True)
        out = F.conv2d(*tensors, tb, padding=(top, left), groups=groups)
        out.backward(ct.tensor(upstream))
    torch_tensors = [torch.tensor(a, requires_grad=True) for a in (x, weight)]
    torch_bias = None if bias is None else torch.tensor(bias, requires_grad=True)
    torch_out = TF.conv2d(*torch_tensors, torch_bias, padding=(top, left), groups=groups)
    torch_out.backward(torch.from_numpy(upstream))
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for what, got, want in [("forward", out, torch_out),
                            ("grad_input", tensors[0].grad, torch_tensors[0].grad),
                            ("grad_weight", tensors[1].grad, torch_tensors[1].grad)] + (
            [("grad_bias", tb.grad, torch_bias.grad)] if bias is not None else []):
        want = want.detach().numpy()
        scale = max(1.0, float(np.abs(want).max())) * max(1, layer["c_in"], layer["n"])
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=rtol, atol=rtol * scale,
                                   err_msg=f"{what} {layer}")


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_winograd_grad_weight_matches_reference_and_finite_differences(compiled):
    """float64: the weight gradient is d/dw of sum(upstream * out) with out from the plain
    reference loops; checked by central differences of that reference, entry by entry."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 5, 7))
    weight = rng.standard_normal((6, 2, 3, 3))
    window = make_window("conv2d", 5, 7, (3, 3), (1, 1), ((1, 1), (0, 2)), (1, 1))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 2)))
    upstream = rng.standard_normal((2, 6, window.out_height, window.out_width))
    with jit.use_compiled(compiled):
        got = winograd.grad_weight(upstream, x, weight.shape, window, 2)

    def loss(w):
        return float(np.sum(upstream * reference.conv2d(padded, w, groups=2)))

    step = 1e-5
    numeric = np.empty_like(weight)
    for index in np.ndindex(weight.shape):
        plus, minus = weight.copy(), weight.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (loss(plus) - loss(minus)) / (2 * step)
    np.testing.assert_allclose(got, numeric, rtol=1e-7, atol=1e-7)
    # the loss is linear in w: the gradient is also exact as the reference's unit responses
    unit = np.zeros_like(weight)
    unit[3, 1, 2, 0] = 1
    assert np.isclose(got[3, 1, 2, 0], loss(unit), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_winograd_grad_weight_float32_error_within_2x_of_torch(compiled):
    """The suite's 3x3 layers' shapes (smaller batches): the float32 weight gradient's
    RMS-relative error against float64 is within 2x of PyTorch's float32 error, and within
    2x of im2col's."""
    rng = np.random.default_rng(13)
    for n, channels, size in [(2, 64, 56), (4, 128, 28), (8, 256, 14)]:
        x = rng.standard_normal((n, channels, size, size)).astype(np.float32)
        weight = (rng.standard_normal((channels, channels, 3, 3)) / 48).astype(np.float32)
        upstream = rng.standard_normal((n, channels, size, size)).astype(np.float32)
        window = make_window("conv2d", size, size, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
        truth = _torch_grad_weight(x.astype(np.float64), weight.astype(np.float64),
                                   upstream.astype(np.float64), ((1, 1), (1, 1)), 1)

        def error(got, truth=truth):
            return float(np.sqrt(np.mean((got - truth) ** 2) / np.mean(truth ** 2)))

        torch_error = error(_torch_grad_weight(x, weight, upstream, ((1, 1), (1, 1)), 1))
        im2col_error = error(conv.grad_weight(upstream, x, weight.shape, window, 1, 2**28))
        with jit.use_compiled(compiled):
            got = winograd.grad_weight(upstream, x, weight.shape, window, 1)
        assert got.dtype == np.float32
        assert error(got) <= 2 * torch_error, (channels, error(got), torch_error)
        assert error(got) <= 2 * im2col_error, (channels, error(got), im2col_error)


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_winograd_grad_weight_in_chunks_matches_whole_batch(compiled):
    """A budget too small for one image runs the batch one image at a time; the chunks'
    sums add up to the whole batch's, to float32 rounding of the largest (their products
    are float32 GEMMs of other shapes, which OpenBLAS's AVX2 kernels round otherwise: 1.6e-5
    apart on an AMD EPYC where the gradient reaches 37; the sums over items are float64)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 9, 10)).astype(np.float32)
    window = make_window("conv2d", 9, 10, (3, 3), (1, 1), ((1, 0), (2, 1)), (1, 1))
    upstream = rng.standard_normal((5, 6, window.out_height, window.out_width)).astype(
        np.float32)
    with jit.use_compiled(compiled):
        whole = winograd.grad_weight(upstream, x, (6, 4, 3, 3), window, 1)
        chunked = winograd.grad_weight(upstream, x, (6, 4, 3, 3), window, 1, budget=1)
    expected = _torch_grad_weight(x.astype(np.float64), np.zeros((6, 4, 3, 3)),
                                  upstream.astype(np.float64), ((1, 0), (2, 1)), 1)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=2e-6 * scale)
    np.testing.assert_allclose(chunked, expected, rtol=1e-4, atol=1e-4)


def test_issue13_winograd_grad_weight_broadcast_gradient():
    """out.sum().backward() hands a broadcast (stride-0) output gradient to the pass."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 8, 12, 11))
    window = make_window("conv2d", 12, 11, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    upstream = np.broadcast_to(1.0, (3, 5, 12, 11))
    expected = _torch_grad_weight(x, np.zeros((5, 8, 3, 3)), np.ascontiguousarray(upstream),
                                  ((1, 1), (1, 1)), 1)
    for compiled in (False, True) if jit.AVAILABLE else (False,):
        with jit.use_compiled(compiled):
            got = winograd.grad_weight(upstream, x, (5, 8, 3, 3), window, 1)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_winograd_bands_of_tile_rows_match_torch(compiled, monkeypatch):
    """Forward and input gradient run in cache-sized pieces: with `CACHE_BYTES` at 1 byte,
    one image and one row of tiles at a time (odd sizes: a partial last tile)."""
    monkeypatch.setattr(winograd, "CACHE_BYTES", 1)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 9, 7))
    weight = rng.standard_normal((6, 2, 3, 3))
    pads = ((1, 2), (0, 1))
    window = make_window("conv2d", 9, 7, (3, 3), (1, 1), pads, (1, 1))
    tx = torch.tensor(x, requires_grad=True)
    out = TF.conv2d(_torch_padded(tx, pads), torch.from_numpy(weight), groups=2)
    upstream = rng.standard_normal(tuple(out.shape))
    out.backward(torch.from_numpy(upstream))
    with jit.use_compiled(compiled):
        got = winograd.forward(x, weight, None, window, 2)
        grad_x = winograd.grad_input(upstream, weight, window, 2, x.shape)
    np.testing.assert_allclose(got, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_winograd_planner_rule_by_shape(compiled):
    """The planner's Winograd rule (plan._winograd_wins), stated in shape quantities: every
    pass of the suite's 3x3 layers (c)-(e) and of D2L's ResNet-18 on 96x96 inputs (even maps
    down to 6x6); not on maps whose 2x2 tiles are much cropped (7x7, 3x3), not on 4x4 maps,
    not with few channels."""
    def chosen(n, channels, size):
        window = make_window("conv2d", size, size, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
        with jit.use_compiled(compiled):
            return plan.describe((n, channels, size, size), (channels, channels, 3, 3), window)

    for n, channels, size in [(16, 128, 28), (32, 256, 14), (64, 128, 12), (64, 256, 6)]:
        assert chosen(n, channels, size) == dict.fromkeys(plan.PASSES, "winograd"), (
            n, channels, size)
    for n, channels, size in [(8, 64, 56), (64, 64, 24)]:
        # NumPy's transforms: forward and input gradient from 128 channels
        expected = "winograd" if compiled else "gemm"
        assert chosen(n, channels, size) == {"forward": expected, "grad_input": expected,
                                             "grad_weight": "winograd"}, (n, channels, size)
    for n, channels, size in [(32, 512, 7), (32, 128, 7), (64, 512, 3), (64, 512, 4),
                              (32, 64, 8)]:
        assert "winograd" not in chosen(n, channels, size).values(), (n, channels, size)
    # the weight gradient wants 64 channels (its GEMMs are C_out x C_in)
    assert chosen(8, 32, 56)["grad_weight"] == "gemm"


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=25, deadline=None)
@given(groups=st.sampled_from([1, 2, 3]), outs=st.integers(1, 40), ins=st.integers(1, 20),
       dtype=st.sampled_from([np.float32, np.float64]), turned=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_issue13_winograd_kernel_transforms_match_their_definition(compiled, groups, outs, ins,
                                                                   dtype, turned, seed):
    """U = G g G^T (rounded once from float64) and d weight = G^T dU G, kernel by kernel
    against the matrices themselves, on either path; the forward transform also from a
    turned view of the weight (the input gradient's), read in place."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((groups * outs, ins, 3, 3)).astype(dtype)
    if turned:
        weight = weight[:, :, ::-1, ::-1]
    g = winograd.KERNEL_TRANSFORM
    with jit.use_compiled(compiled):
        got = winograd.transform_kernel(weight, groups, np.dtype(dtype))
    assert got.shape == (16, groups, ins, outs) and got.dtype == dtype
    du = rng.standard_normal((16, groups, outs, ins))
    with jit.use_compiled(compiled):
        back = winograd.back_transform_kernel(du, weight.shape, groups)
    assert back.shape == weight.shape and back.dtype == np.float64
    for group in range(groups):
        for o in range(outs):
            for c in range(ins):
                kernel = weight[group * outs + o, c].astype(np.float64)
                expected = (g @ kernel @ g.T).astype(dtype).reshape(16)
                np.testing.assert_array_equal(got[:, group, c, o], expected)
                expected_back = g.T @ du[:, group, o, c].reshape(4, 4) @ g
                np.testing.assert_allclose(back[group * outs + o, c], expected_back,
                                           rtol=1e-14, atol=1e-14)
