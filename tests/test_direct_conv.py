"""The direct convolution algorithms (corrnet.kernels.direct): pointwise (1x1 as a matrix
product), depthwise and direct ("small": few channels), each against the plain-loop reference
and PyTorch — forward values, and the input and weight gradients from torch autograd with a
random upstream gradient — over random shapes, strides, dilations, asymmetric paddings,
groups, depthwise multipliers, float32 and float64, the compiled (numba) and NumPy paths,
the banded and multi-threaded runs of a large single image, and batch chunking under a tiny
memory budget.

Tolerances are relative to the sum of |terms| of each result (the same convolution and
gradients computed on |x|, |weight| and |upstream gradient|), so that cancellation in a sum
does not make a correct float32 result look wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from corrnet.kernels import direct, jit, reference, threads
from corrnet.kernels.windows import make_window

TOLERANCE = {"float32": 2e-6, "float64": 1e-13}

NUMBA = pytest.param(True, id="numba",
                     marks=pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing"))
PATHS = [NUMBA, pytest.param(False, id="numpy")]


@st.composite
def configurations(draw, variant: str, max_size: int = 9):
    """A random convolution that `variant` supports: sizes, kernel, stride, dilation,
    ((top, bottom), (left, right)) padding, groups, dtype, seed."""
    if variant == "pointwise":
        kernel, pads, dilation = (1, 1), ((0, 0), (0, 0)), (1, 1)
    else:
        kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
        dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # the padded input must hold one window along each axis
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    low = [max(1, reach[axis] - sum(pads[axis])) for axis in (0, 1)]
    height = draw(st.integers(low[0], max(low[0], max_size)))
    width = draw(st.integers(low[1], max(low[1], max_size)))
    if variant == "depthwise":
        groups = c_in = draw(st.integers(1, 4))
        c_out = c_in * draw(st.integers(1, 4))          # the depth multiplier
    else:
        groups = draw(st.integers(1, 3))
        c_in = groups * draw(st.integers(1, 3))
        # up to 7 output channels per group: the weight gradient's blocks of
        # direct.OUT_BLOCK (2) with none or one left over, several blocks
        c_out = groups * draw(st.integers(1, 7))
    return dict(n=draw(st.integers(1, 3)), c_in=c_in, c_out=c_out, height=height,
                width=width, kernel=kernel, stride=stride, pads=pads, dilation=dilation,
                groups=groups, has_bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**32 - 1)))


def arrays(config):
    """x, weight, bias (or None), upstream gradient and the Window2d of a configuration."""
    rng = np.random.default_rng(config["seed"])
    dtype = config["dtype"]
    window = make_window("conv2d", config["height"], config["width"], config["kernel"],
                         config["stride"], config["pads"], config["dilation"])
    x = rng.standard_normal((config["n"], config["c_in"], config["height"], config["width"]))
    weight = rng.standard_normal((config["c_out"], config["c_in"] // config["groups"],
                                  *config["kernel"]))
    bias = rng.standard_normal(config["c_out"]).astype(dtype) if config["has_bias"] else None
    grad_out = rng.standard_normal((config["n"], config["c_out"], window.out_height,
                                    window.out_width))
    return x.astype(dtype), weight.astype(dtype), bias, grad_out.astype(dtype), window


def torch_results(x, weight, bias, grad_out, config, magnitude=False):
    """PyTorch's forward, grad_x and grad_weight (float64); with `magnitude`, the same on
    |x|, |weight|, |bias|, |grad_out|: the sums of |terms|, which scale the tolerances."""
    def tensor(a):
        a = np.abs(a) if magnitude else a
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    xt, wt = tensor(x), tensor(weight)
    bt = None if bias is None else tensor(bias)
    (top, bottom), (left, right) = config["pads"]
    out = F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, config["stride"], 0,
                   config["dilation"], config["groups"])
    out.backward(tensor(grad_out).detach())
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


def reference_forward(x, weight, bias, config):
    """The plain-loop reference, in float64, on the explicitly zero-padded input."""
    (top, bottom), (left, right) = config["pads"]
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    return reference.conv2d(padded, weight.astype(np.float64),
                            None if bias is None else bias.astype(np.float64),
                            config["stride"], (0, 0), config["dilation"], config["groups"])


def assert_close(got, expected, scale, dtype, what):
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    tolerance = TOLERANCE[np.dtype(dtype).name] * np.maximum(scale, 1.0)
    excess = np.abs(got.astype(np.float64) - expected) - tolerance
    assert (excess <= 0).all(), f"{what}: off by {np.abs(got - expected).max():.3g}"


def check_all_passes(algorithm, config, budget=direct.DEFAULT_BUDGET):
    """Run the three passes of `algorithm` and compare them with PyTorch and the reference."""
    x, weight, bias, grad_out, window = arrays(config)
    groups, dtype = config["groups"], config["dtype"]
    for pass_name in ("forward", "grad_input", "grad_weight"):
        assert algorithm.supports(x.shape, weight.shape, window, groups, dtype, pass_name)
    out = algorithm.forward(x, weight, bias, window, groups, budget)
    grad_x = algorithm.grad_input(grad_out, weight, window, groups, x.shape, budget)
    grad_weight = algorithm.grad_weight(grad_out, x, weight.shape, window, groups, budget)
    expected = torch_results(x, weight, bias, grad_out, config)
    scales = torch_results(x, weight, bias, grad_out, config, magnitude=True)
    assert out.flags.c_contiguous
    assert_close(out, reference_forward(x, weight, bias, config), scales[0], dtype,
                 "forward vs reference")
    for got, want, scale, what in zip((out, grad_x, grad_weight), expected, scales,
                                      ("forward", "grad_input", "grad_weight"), strict=True):
        assert_close(got, want, scale, dtype, f"{what} vs torch")


# ---------------------------------------------------------------------------------------------
# each algorithm against PyTorch and the reference, both paths
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=20, deadline=None)
@given(config=configurations("depthwise"))
def test_depthwise_matches_torch(compiled, config):
    with jit.use_compiled(compiled):
        check_all_passes(direct.depthwise, config)


@settings(max_examples=25, deadline=None)
@given(config=configurations("direct"))
@pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")
def test_direct_matches_torch(config):
    with jit.use_compiled(True):
        check_all_passes(direct.small, config)


@st.composite
def long_row_configurations(draw):
    """(algorithm, configuration): a 3x3 convolution on the direct engine (`direct.small`
    with one input and one output channel a group, or `direct.depthwise`) whose output rows
    are about `direct.ROW_WRITE_MIN_WIDTH` outputs wide, just under or over it: from that
    width on, the engine writes rows straight into the output."""
    variant = draw(st.sampled_from(["direct", "depthwise"]))
    config = draw(configurations(variant, max_size=5))
    if variant == "direct":
        config.update(c_in=config["groups"], c_out=config["groups"])
    (left, right), stride = config["pads"][1], config["stride"][1]
    (dilation_h, dilation_w) = config["dilation"]
    out_width = draw(st.integers(direct.ROW_WRITE_MIN_WIDTH - 3,
                                 direct.ROW_WRITE_MIN_WIDTH + 40))
    # the width that holds out_width windows of 3 dilated columns, with the padding
    config.update(kernel=(3, 3),
                  width=(out_width - 1) * stride + 2 * dilation_w + 1 - left - right,
                  height=max(config["height"], 2 * dilation_h + 1 - sum(config["pads"][0])))
    return (direct.small if variant == "direct" else direct.depthwise), config


@settings(max_examples=30, deadline=None)
@given(case=long_row_configurations())
@pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")
def test_3x3_rows_written_straight_to_the_output_match_torch(case):
    """Rows of ROW_WRITE_MIN_WIDTH outputs or more are summed straight into the output, not
    through the band's accumulator: the forward pass and the input gradient (a 3x3
    correlation too) against PyTorch and the reference, on both sides of that width."""
    algorithm, config = case
    with jit.use_compiled(True):
        check_all_passes(algorithm, config)


@pytest.mark.parametrize("compiled", PATHS)
@settings(max_examples=20, deadline=None)
@given(config=configurations("pointwise"))
def test_pointwise_matches_torch(compiled, config):
    with jit.use_compiled(compiled):
        check_all_passes(direct.pointwise, config)


# ---------------------------------------------------------------------------------------------
# the shapes the algorithms were written for, and their special paths
# ---------------------------------------------------------------------------------------------


def config_of(n, c_in, c_out, size, kernel, stride=1, pad=0, dilation=1, groups=1,
              dtype=np.float32, seed=0, has_bias=True):
    height, width = size if isinstance(size, tuple) else (size, size)
    return dict(n=n, c_in=c_in, c_out=c_out, height=height, width=width,
                kernel=(kernel, kernel), stride=(stride, stride), pads=((pad, pad), (pad, pad)),
                dilation=(dilation, dilation), groups=groups, has_bias=has_bias, dtype=dtype,
                seed=seed)


def check_against_torch(algorithm, config, budget=direct.DEFAULT_BUDGET):
    """As check_all_passes, without the (slow) plain-loop reference."""
    x, weight, bias, grad_out, window = arrays(config)
    groups, dtype = config["groups"], config["dtype"]
    results = (algorithm.forward(x, weight, bias, window, groups, budget),
               algorithm.grad_input(grad_out, weight, window, groups, x.shape, budget),
               algorithm.grad_weight(grad_out, x, weight.shape, window, groups, budget))
    expected = torch_results(x, weight, bias, grad_out, config)
    scales = torch_results(x, weight, bias, grad_out, config, magnitude=True)
    for got, want, scale, what in zip(results, expected, scales,
                                      ("forward", "grad_input", "grad_weight"), strict=True):
        assert_close(got, want, scale, dtype, what)


@pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")
@pytest.mark.parametrize("kernel", [3, 7])
@pytest.mark.parametrize("takes_per_thread", [1, 3, 16])
def test_big_single_image_in_bands_and_threads(monkeypatch, kernel, takes_per_thread):
    """A single-channel image (corr2d's case) is cut into bands of rows, run on several
    threads: small bands and zero work thresholds force both on a modest image. The
    forward's threads take its bands from a shared counter, several at a time (1 take per
    thread: a third of the bands each, the last take short), the weight gradient in fixed
    pieces."""
    monkeypatch.setattr(direct, "BAND_ELEMENTS", 500)
    monkeypatch.setattr(direct, "PARALLEL_WORK", 0)
    monkeypatch.setattr(direct, "SHARED_PARALLEL_WORK", 0)
    monkeypatch.setattr(direct, "TAKES_PER_THREAD", takes_per_thread)
    monkeypatch.setattr(direct, "get_num_threads", lambda: 3)
    monkeypatch.setattr(direct, "active", lambda: 3)      # the count under no load
    direct._layout.cache_clear()
    try:
        with jit.use_compiled(True):
            check_against_torch(direct.small, config_of(1, 1, 1, (157, 61), kernel))
            check_against_torch(direct.small, config_of(1, 1, 1, (157, 61), kernel, pad=2,
                                                        stride=2))
    finally:
        direct._layout.cache_clear()


@pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")
def test_lenet_first_layer_and_multithreaded_depthwise(monkeypatch):
    monkeypatch.setattr(direct, "PARALLEL_WORK", 0)
    monkeypatch.setattr(direct, "SHARED_PARALLEL_WORK", 0)
    monkeypatch.setattr(direct, "get_num_threads", lambda: 2)
    monkeypatch.setattr(direct, "active", lambda: 2)
    direct._layout.cache_clear()
    try:
        with jit.use_compiled(True):
            check_against_torch(direct.small, config_of(8, 1, 6, 28, 5, pad=2))
            check_against_torch(direct.depthwise, config_of(2, 8, 16, 14, 3, pad=1, stride=2))
    finally:
        direct._layout.cache_clear()


@pytest.mark.parametrize("compiled", PATHS)
def test_tiny_budget_runs_one_image_at_a_time(compiled):
    """A budget of one byte: every chunked loop runs image by image, results unchanged."""
    with jit.use_compiled(compiled):
        check_against_torch(direct.depthwise, config_of(3, 4, 8, 9, 3, stride=2, pad=1,
                                                        groups=4, dtype=np.float64), budget=1)
        check_against_torch(direct.pointwise, config_of(3, 6, 4, 7, 1, stride=2, groups=2,
                                                        dtype=np.float64), budget=1)
    if compiled:
        with jit.use_compiled(True):
            check_against_torch(direct.small, config_of(3, 2, 3, 9, 3, stride=2, pad=1,
                                                        dtype=np.float64), budget=1)


@pytest.mark.parametrize("compiled", PATHS)
def test_non_contiguous_inputs(compiled):
    config = config_of(2, 3, 3, 8, 3, pad=1, groups=3, dtype=np.float64)
    x, weight, bias, grad_out, window = arrays(config)
    expected = torch_results(x, weight, bias, grad_out, config)
    x_strided = np.asfortranarray(x)
    grad_strided = np.asfortranarray(grad_out)
    with jit.use_compiled(compiled):
        algorithms = [direct.depthwise] + ([direct.small] if compiled else [])
        for algorithm in algorithms:
            np.testing.assert_allclose(algorithm.forward(x_strided, weight, bias, window, 3),
                                       expected[0], atol=1e-12)
            np.testing.assert_allclose(
                algorithm.grad_input(grad_strided, weight, window, 3, x.shape),
                expected[1], atol=1e-12)
            np.testing.assert_allclose(
                algorithm.grad_weight(grad_strided, x_strided, weight.shape, window, 3),
                expected[2], atol=1e-12)


@pytest.mark.parametrize("algorithm, c_in, c_out, groups, compiled", [
    pytest.param("small", 2, 7, 1, True, marks=NUMBA.marks),
    pytest.param("small", 2, 4, 2, True, marks=NUMBA.marks),
    pytest.param("depthwise", 3, 9, 3, True, marks=NUMBA.marks),
    ("depthwise", 3, 9, 3, False)])
def test_broadcast_output_gradient(algorithm, c_in, c_out, groups, compiled):
    """An output gradient with zero strides (``out.sum().backward()``'s, or one number per
    channel), which the weight gradient reads as it is: both gradients as PyTorch's, in
    blocks of output channels (direct.OUT_BLOCK) and a channel left over."""
    config = config_of(2, c_in, c_out, (9, 8), 3, pad=1, groups=groups, dtype=np.float64)
    x, weight, bias, _, window = arrays(config)
    per_channel = np.random.default_rng(5).standard_normal(c_out)
    grad_out = np.broadcast_to(per_channel[None, :, None, None],
                               (2, c_out, window.out_height, window.out_width))
    assert grad_out.strides[0] == grad_out.strides[2] == 0
    expected = torch_results(x, weight, bias, np.array(grad_out), config)
    namespace = getattr(direct, algorithm)
    with jit.use_compiled(compiled):
        np.testing.assert_allclose(namespace.grad_weight(grad_out, x, weight.shape, window,
                                                         groups), expected[2], atol=1e-12)
        np.testing.assert_allclose(namespace.grad_input(grad_out, weight, window, groups,
                                                        x.shape), expected[1], atol=1e-12)


@pytest.mark.parametrize("compiled", PATHS)
@pytest.mark.parametrize("stride, groups, bias", [(1, 1, True), (1, 2, False), (2, 1, True)])
def test_pointwise_on_two_threads(compiled, stride, groups, bias):
    """Work large enough to be split among corrnet's threads (an odd count of images, so the
    runs differ in length), chunks of images within a small budget, with and without a bias
    and a stride (the input gradient then scattered into every other pixel)."""
    config = config_of(5, 32, 48, 40, 1, stride=stride, groups=groups, has_bias=bias)
    with jit.use_compiled(compiled):
        saved = threads.get_num_threads()
        threads.set_num_threads(2)
        try:
            check_against_torch(direct.pointwise, config)
            check_against_torch(direct.pointwise, config, budget=3 * 32 * 40 * 40 * 4)
        finally:
            threads.set_num_threads(saved)


@pytest.mark.parametrize("channels, size", [(2, 9), (8, 2), (16, 1)])
def test_pointwise_weight_gradient_per_image_and_channel_major(channels, size):
    """Both ways of summing the weight gradient over the batch: per-image products (large
    feature maps), one product over all pixels (small feature maps, many channels)."""
    check_against_torch(direct.pointwise, config_of(4, channels, channels, size, 1,
                                                    dtype=np.float64))
    check_against_torch(direct.pointwise, config_of(3, channels, 2 * channels, size, 1,
                                                    groups=2, dtype=np.float64), budget=1)


@pytest.mark.parametrize("compiled", PATHS)
@pytest.mark.parametrize("height, width, stride", [(3, 5, 1), (4, 4, 1), (6, 6, 2), (7, 8, 2)])
def test_pointwise_joins_the_images_on_small_maps(compiled, height, width, stride):
    """The forward pass and the input gradient join the images' pixels into one product on
    maps of fewer than JOIN_BELOW_PIXELS (15 and 9 pixels here), and take a product per image
    from that many on (16, 16 and 12: the threshold itself on both sides), with groups, a
    bias and a stride, in chunks of one image too."""
    out_pixels = -(-height // stride) * -(-width // stride)
    assert (out_pixels < direct.JOIN_BELOW_PIXELS) is (out_pixels in (15, 9))
    config = config_of(3, 4, 6, (height, width), 1, stride=stride, groups=2)
    with jit.use_compiled(compiled):
        check_against_torch(direct.pointwise, config)
        check_against_torch(direct.pointwise, config, budget=1)


def test_integer_inputs_on_the_numpy_paths():
    """pointwise and (NumPy) depthwise take integer arrays, exactly as the reference."""
    rng = np.random.default_rng(1)
    x = rng.integers(-5, 6, (2, 3, 6, 7))
    window = make_window("conv2d", 6, 7, (3, 3), (1, 2), ((1, 1), (0, 2)), (1, 1))
    weight = rng.integers(-3, 4, (6, 1, 3, 3))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 2)))
    assert direct.depthwise.supports(x.shape, weight.shape, window, 3, x.dtype, "forward")
    np.testing.assert_array_equal(direct.depthwise.forward(x, weight, None, window, 3),
                                  reference.conv2d(padded, weight, stride=(1, 2), groups=3))
    window = make_window("conv2d", 6, 7, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1))
    weight = rng.integers(-3, 4, (4, 3, 1, 1))
    np.testing.assert_array_equal(direct.pointwise.forward(x, weight, None, window, 1),
                                  reference.conv2d(x, weight))


# ---------------------------------------------------------------------------------------------
# supports(): what each algorithm takes
# ---------------------------------------------------------------------------------------------


def test_supports():
    window3 = make_window("conv2d", 8, 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    window1 = make_window("conv2d", 8, 8, (1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1))
    padded1 = make_window("conv2d", 8, 8, (1, 1), (1, 1), ((1, 1), (1, 1)), (1, 1))
    f32 = np.float32
    for pass_name in ("forward", "grad_input", "grad_weight"):
        assert direct.pointwise.supports((2, 4, 8, 8), (6, 2, 1, 1), window1, 2, f32, pass_name)
        assert not direct.pointwise.supports((2, 4, 8, 8), (6, 4, 3, 3), window3, 1, f32,
                                             pass_name)
        assert not direct.pointwise.supports((2, 4, 8, 8), (6, 4, 1, 1), padded1, 1, f32,
                                             pass_name)
        assert direct.depthwise.supports((2, 4, 8, 8), (8, 1, 3, 3), window3, 4, f32, pass_name)
        assert not direct.depthwise.supports((2, 4, 8, 8), (4, 2, 3, 3), window3, 2, f32,
                                             pass_name)
        assert not direct.depthwise.supports((2, 4, 8, 8), (8, 1, 3, 3), window3, 4, np.bool_,
                                             pass_name)
    # direct: compiled float kernels only, and not for many channels
    with jit.use_compiled(False):
        assert not direct.small.supports((2, 1, 8, 8), (6, 1, 3, 3), window3, 1, f32,
                                         "forward")
    if jit.AVAILABLE:
        with jit.use_compiled(True):
            assert direct.small.supports((2, 1, 8, 8), (6, 1, 3, 3), window3, 1, f32,
                                         "grad_weight")
            assert not direct.small.supports((2, 1, 8, 8), (6, 1, 3, 3), window3, 1,
                                             np.int64, "forward")
            assert not direct.small.supports((2, 256, 8, 8), (256, 256, 3, 3), window3, 1,
                                             f32, "forward")


@pytest.mark.parametrize("compiled", PATHS)
def test_empty_batch(compiled):
    config = config_of(0, 2, 4, 8, 3, stride=2, pad=1, groups=2)
    with jit.use_compiled(compiled):
        check_against_torch(direct.depthwise, config)
        check_against_torch(direct.pointwise, config_of(0, 2, 4, 8, 1, stride=2))
        if compiled:
            check_against_torch(direct.small, config)


def test_rules_for_the_planner():
    """The measured rules say yes where the algorithms were written to win, no far beyond."""
    def window(size, kernel, pad):
        return make_window("conv2d", size, size, (kernel, kernel), (1, 1),
                           ((pad, pad), (pad, pad)), (1, 1))

    lenet, filtering = window(28, 5, 2), window(512, 7, 0)
    wide = window(14, 3, 1)
    for pass_name in ("forward", "grad_input", "grad_weight"):
        assert direct.direct_rule(pass_name, (256, 1, 28, 28), (6, 1, 5, 5), lenet, 1)
        assert direct.direct_rule(pass_name, (1, 1, 512, 512), (1, 1, 7, 7), filtering, 1)
        assert not direct.direct_rule(pass_name, (8, 64, 14, 14), (64, 64, 3, 3), wide, 1)
        assert direct.pointwise_rule(pass_name, (32, 256, 28, 28), (64, 256, 1, 1),
                                     window(28, 1, 0), 1)
        assert direct.depthwise_rule(pass_name, (16, 128, 56, 56), (128, 1, 3, 3),
                                     window(56, 3, 1), 128)
