"""Issue 13, the lanes algorithm (corrnet.kernels.lanes): direct convolution with the output
channels (or, with fewer than 16, neighbouring outputs) in vector lanes and the sums in
registers (kernels.simd): the forward pass, and the weight and input gradients.

Against PyTorch (float64) and the plain-loop reference over random shapes that reach every
branch of both kernels: output channels per group from 1 to 40 (a part-filled last block of
lanes or of CHANNELS, several blocks), output widths that end in a part-filled block of
PIXELS or of lanes, strides
(the stride-1 loop and the strided one), asymmetric padding (the padded copy) and none
(the image read in place), dilation, groups, float32 (16 lanes) and float64 (8 lanes); on
several threads; the intrinsic against its plain equivalent; the planner's rule; and the
conv2d op end to end with the planner's choice.
"""

from __future__ import annotations

import doctest
import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_direct_conv import (
    arrays,
    assert_close,
    config_of,
    reference_forward,
    torch_results,
)

import corrnet as ct
from corrnet.kernels import jit, lanes, plan, simd, winograd
from corrnet.kernels import threads as kernel_threads
from corrnet.kernels.windows import make_window

COMPILED = pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")


@st.composite
def layers(draw):
    """A random convolution (the configuration dict of test_direct_conv) with output rows of
    any width (a few times the 16 lanes of float32 at most, so that a row's sums are written
    out in several squares: `lanes._write_squares`) and up to 40 output channels per group."""
    kernel = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    # (no padding half the time: the kernel reads the image in place where it can)
    if draw(st.booleans()):
        pads = ((0, 0), (0, 0))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3])))
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    low = [max(1, reach[axis] - sum(pads[axis])) for axis in (0, 1)]
    height = draw(st.integers(low[0], low[0] + 8))
    width = draw(st.integers(low[1], low[1] + draw(st.sampled_from([16, 16, 60]))))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 4))
    c_out = groups * draw(st.integers(1, 40))
    return dict(n=draw(st.integers(1, 4)), c_in=c_in, c_out=c_out, height=height, width=width,
                kernel=kernel, stride=stride, pads=pads, dilation=dilation, groups=groups,
                has_bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**32 - 1)))


def check_forward(config, budget=lanes.DEFAULT_BUDGET):
    """lanes.forward against PyTorch and the plain-loop reference."""
    x, weight, bias, grad_out, window = arrays(config)
    groups, dtype = config["groups"], config["dtype"]
    assert lanes.supports(x.shape, weight.shape, window, groups, dtype, "forward")
    out = lanes.forward(x, weight, bias, window, groups, budget)
    assert out.flags.c_contiguous
    expected, scale = (torch_results(x, weight, bias, grad_out, config, magnitude=m)[0]
                       for m in (False, True))
    assert_close(out, expected, scale, dtype, "forward vs torch")
    assert_close(out, reference_forward(x, weight, bias, config), scale, dtype,
                 "forward vs reference")


@COMPILED
@settings(max_examples=60, deadline=None)
@given(config=layers(), paired=st.booleans())
def test_issue13_lanes_forward_matches_torch_and_reference(config, paired):
    """On either kernel of output channels in lanes (two blocks a pass where the CPU's
    registers hold them, `lanes._pairs_blocks`, whichever this machine has)."""
    with jit.use_compiled(True), pytest.MonkeyPatch.context() as patch:
        patch.setattr(lanes, "_pairs_blocks", lambda: paired)
        check_forward(config)


def check_gradients(config, budget=lanes.DEFAULT_BUDGET):
    """lanes.grad_weight (and, at stride 1, lanes.grad_input) against PyTorch."""
    x, weight, bias, grad_out, window = arrays(config)
    groups, dtype = config["groups"], config["dtype"]
    expected, scale = (torch_results(x, weight, bias, grad_out, config, magnitude=m)
                       for m in (False, True))
    assert lanes.supports(x.shape, weight.shape, window, groups, dtype, "grad_weight")
    grad_weight = lanes.grad_weight(grad_out, x, weight.shape, window, groups, budget)
    assert_close(grad_weight, expected[2], scale[2], dtype, "grad_weight vs torch")
    stride_1 = tuple(window.stride) == (1, 1)
    assert lanes.supports(x.shape, weight.shape, window, groups, dtype,
                          "grad_input") is stride_1
    if stride_1:
        grad_x = lanes.grad_input(grad_out, weight, window, groups, x.shape, budget)
        assert grad_x.flags.c_contiguous
        assert_close(grad_x, expected[1], scale[1], dtype, "grad_input vs torch")


@COMPILED
@settings(max_examples=60, deadline=None)
@given(config=layers(), stride_1=st.booleans(), paired=st.booleans())
def test_issue13_lanes_gradients_match_torch(config, stride_1, paired):
    """Both gradients; the input gradient's padding is turned into the kernel's reach less
    the padding (cropped where the padding is wider than the reach); its forward pass on
    either kernel of output channels in lanes."""
    if stride_1:
        config = {**config, "stride": (1, 1)}
    with jit.use_compiled(True), pytest.MonkeyPatch.context() as patch:
        patch.setattr(lanes, "_pairs_blocks", lambda: paired)
        check_gradients(config)


@COMPILED
@pytest.mark.parametrize("config", [
    config_of(5, 6, 16, 14, 5),                              # LeNet's second layer
    config_of(2, 16, 32, 12, 3, pad=1),                      # im2col's territory
    config_of(2, 4, 20, 9, 3, pad=4, dilation=2, groups=2),  # padding past the reach: cropped
    config_of(2, 3, 40, 13, 3, pad=1, dtype=np.float64),
], ids=["lenet2", "3x3", "cropped", "float64"])
def test_issue13_lanes_gradients_named_shapes(config):
    with jit.use_compiled(True):
        check_gradients(config)


@COMPILED
@pytest.mark.parametrize("threads", [2, 3])
def test_issue13_lanes_gradients_on_threads(monkeypatch, threads):
    """Each thread's images summed into its own float64 partial sums, added at the end."""
    monkeypatch.setattr(lanes, "active", lambda: threads)
    monkeypatch.setattr(lanes, "MIN_PARALLEL_SIZE", 0)
    with jit.use_compiled(True):
        for n in (2, 5):
            check_gradients(config_of(n, 6, 20, 12, 5, pad=1))


@COMPILED
def test_issue13_lanes_weight_gradient_flushes_long_sums(monkeypatch):
    """Outputs past PIXEL_SPAN go into the float64 sums in several flushes: 2 rows of 9
    outputs a flush on a 9x9 map (the last flush one row), 1 row a flush on a 16-wide map."""
    monkeypatch.setattr(lanes, "PIXEL_SPAN", 20)
    with jit.use_compiled(True):
        check_gradients(config_of(3, 4, 16, 13, 5))
        check_gradients(config_of(2, 4, 16, (9, 20), 5, pad=0))


@COMPILED
@pytest.mark.parametrize("tap_block", [1, 7])
def test_issue13_lanes_taps_summed_in_blocks(monkeypatch, tap_block):
    """Taps past TAP_BLOCK go into the totals block by block (one tap a block; blocks of 7,
    the last part-filled), in both forward kernels."""
    monkeypatch.setattr(lanes, "TAP_BLOCK", tap_block)
    with jit.use_compiled(True):
        check_forward(config_of(3, 6, 16, 14, 5))                   # K 150, channels in lanes
        check_forward(config_of(3, 2, 6, 20, 5, pad=2))             # K 50, outputs in lanes
        check_forward(config_of(2, 3, 20, 11, 3, pad=1, dtype=np.float64))


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 12), kh=st.integers(1, 6), sh=st.integers(1, 3),
       dh=st.integers(1, 3), top=st.integers(0, 8), bottom=st.integers(0, 8),
       channels=st.integers(1, 3), kw=st.integers(1, 4))
def test_issue13_lanes_tap_runs_are_the_rows_that_read_the_image(height, kh, sh, dh, top,
                                                                  bottom, channels, kw):
    """Each output row's run of taps (order (i, c, j)) is exactly the window rows i that
    read one of the image's rows, counted one by one (none: an empty run); without
    skip_padding, all K taps."""
    reach = dh * (kh - 1) + 1
    if height + top + bottom < reach:
        return
    window = make_window("conv2d", height, 4 * kw, (kh, kw), (sh, 1),
                         ((top, bottom), (0, 0)), (dh, 1))
    x_shape, w_shape = (1, channels, height, 4 * kw), (2, channels, kh, kw)
    runs = lanes._tap_runs(x_shape, w_shape, window, skip_padding=True)
    row_taps = channels * kw
    assert runs.shape == (window.out_height, 2)
    for y in range(window.out_height):
        reading = [i for i in range(kh) if top <= y * sh + i * dh < top + height]
        first, end = runs[y]
        assert first % row_taps == 0 and end % row_taps == 0
        if reading:
            assert (first // row_taps, end // row_taps) == (reading[0], reading[-1] + 1)
        else:
            assert first == end
    every = lanes._tap_runs(x_shape, w_shape, window, skip_padding=False)
    assert (every == [0, channels * kh * kw]).all()


@COMPILED
@pytest.mark.parametrize("config", [
    config_of(2, 3, 6, 9, 2, pad=3, seed=5),                 # rows 0-1 read padding only
    config_of(2, 2, 5, 8, 3, pad=4, dilation=2, seed=6),     # dilated, padding past reach
    config_of(2, 16, 6, 10, 5, pad=4, seed=7),               # LeNet's input gradient, turned
], ids=["bias-rows", "dilated", "turned"])
def test_issue13_lanes_pixels_skip_the_padding_rows(config):
    """Outputs in lanes: rows whose windows lie partly or wholly in the zero padding sum
    only the taps that read the image (the bias alone where none does), as PyTorch and the
    reference."""
    x, weight, _, _, window = arrays(config)
    assert lanes._by_pixels(weight.shape, window, config["groups"])
    runs = lanes._tap_runs(x.shape, weight.shape, window, skip_padding=True)
    assert (runs[:, 0] > 0).any() or (runs[:, 1] < weight[0].size).any()
    with jit.use_compiled(True):
        check_forward(config)


@COMPILED
def test_issue13_lanes_pixels_kernel_sums_exactly_the_runs(monkeypatch):
    """The kernel sums the taps of each row's run and no others: with every run made to
    leave out window row 0, the result is the convolution with that row of the kernel
    zeroed."""
    config = config_of(2, 3, 6, 12, 3, pad=1, seed=11)
    x, weight, bias, _, window = arrays(config)
    row_taps = weight.shape[1] * weight.shape[3]
    monkeypatch.setattr(lanes, "_tap_runs", lambda x_shape, w_shape, window, skip_padding:
                        np.tile(np.array([[row_taps, weight[0].size]], np.int64),
                                (window.out_height, 1)))
    with jit.use_compiled(True):
        got = lanes.forward(x, weight, bias, window, 1)
    without_row = weight.copy()
    without_row[:, :, 0, :] = 0
    magnitude = reference_forward(np.abs(x), np.abs(weight), np.abs(bias), config)
    assert_close(got, reference_forward(x, without_row, bias, config), magnitude, np.float32,
                 "row 0 left out")


@COMPILED
def test_issue13_lanes_pixels_inf_weight_meets_the_padding_as_the_definition():
    """An inf weight sums every tap (no rows skipped), so that inf * 0 of the padding gives
    NaN where the definition (PyTorch in float64 on a small shape) has it, and inf
    elsewhere."""
    config = config_of(1, 2, 6, 8, 3, pad=2, seed=3, has_bias=False)
    x, weight, _, _, window = arrays(config)
    x = np.abs(x) + 0.5                       # positive: inf * x = +inf, never cancelled
    weight[1, 0, 0, 0] = np.inf
    with jit.use_compiled(True):
        got = lanes.forward(x, weight, None, window, 1)
    want = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)),
                                      torch.from_numpy(weight.astype(np.float64)),
                                      padding=2).numpy()
    assert np.isnan(want[0, 1]).any() and np.isinf(want[0, 1]).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


def test_issue13_lanes_rule_for_the_gradients():
    """Weight gradient: 16 <= Og <= 64, K <= 1024, one image's transposed output gradient
    <= 256 KiB, maps of >= 64 outputs; input gradient: stride 1, at most 3/2 of its
    definition's products computed (the padding's rows skipped where the lanes hold
    outputs), and the forward rule on the turned problem."""
    lenet = _window(14, 5)
    three = _window(32, 3, 1, 1)
    stem = _window(224, 7, 2, 3)
    weight_cases = [((8, 6, 14, 14), (16, 6, 5, 5), lenet, True),
                    ((8, 6, 14, 14), (12, 6, 5, 5), lenet, False),              # Og 12
                    ((8, 3, 224, 224), (64, 3, 7, 7), stem, False),             # 3.2 MB
                    ((8, 16, 32, 32), (32, 16, 3, 3), three, True),             # 128 KiB
                    ((8, 16, 48, 48), (32, 16, 3, 3), _window(48, 3, 1, 1), False),  # 288
                    ((8, 64, 8, 8), (64, 64, 3, 3), _window(8, 3, 1, 1), True),      # 64 outputs
                    ((8, 64, 7, 7), (64, 64, 3, 3), _window(7, 3, 1, 1), False),     # 49
                    ((8, 32, 32, 32), (64, 32, 3, 3), _window(32, 3, 2, 1), True),   # Og 64
                    ((8, 64, 24, 24), (128, 64, 3, 3), _window(24, 3, 2, 1), False)]  # 128
    for x_shape, w_shape, window, expected in weight_cases:
        assert lanes.rule("grad_weight", x_shape, w_shape, window, 1) is expected, w_shape
    input_cases = [((8, 6, 14, 14), (16, 6, 5, 5), lenet, True, 1.4),         # rows skipped
                   ((8, 6, 16, 16), (16, 6, 7, 7), _window(16, 7), False, 1.6),  # 16 / 10
                   ((8, 16, 12, 12), (16, 16, 5, 5), _window(12, 5), False, 2.25),  # lanes: Og
                   ((8, 16, 32, 32), (32, 16, 3, 3), three, True, 1.0),        # 32 -> 16
                   ((8, 16, 32, 32), (32, 16, 3, 3), _window(32, 3, 2, 1), False, None),
                   ((8, 32, 32, 32), (16, 32, 3, 3), _window(32, 3, 1, 0), True, 1.14),
                   ((8, 32, 32, 32), (16, 32, 5, 5), _window(32, 5, 1, 0), True, 1.31),
                   ((8, 16, 20, 20), (32, 16, 5, 5), _window(20, 5, 1, 0), False, 1.56)]
    for x_shape, w_shape, window, expected, growth in input_cases:
        assert lanes.rule("grad_input", x_shape, w_shape, window, 1) is expected, window
        if growth is not None:
            assert float(lanes._growth(x_shape, w_shape, window, 1)) == pytest.approx(
                growth, abs=0.01), window


@COMPILED
@pytest.mark.parametrize("config", [
    config_of(5, 1, 6, 28, 5, pad=2),                        # LeNet's first: outputs in lanes
    config_of(3, 3, 13, 19, 3, pad=1),                       # outputs in lanes, 6 + 6 + 1
    config_of(5, 6, 16, 14, 5),                              # LeNet's second layer: in place
    config_of(3, 3, 64, 30, 7, stride=2, pad=3),             # a stem: padded, strided
    config_of(2, 4, 40, 13, 3, pad=1, dtype=np.float64),     # 5 blocks of 8 lanes
    config_of(2, 8, 34, 11, 3, groups=2, dilation=2),        # 17 per group: 16 + 1 lanes
], ids=["lenet1", "pixels", "lenet2", "stem", "float64", "groups"])
def test_issue13_lanes_named_shapes(config):
    x, weight, _, _, window = arrays(config)
    by_pixels = lanes._by_pixels(weight.shape, window, config["groups"])
    assert by_pixels is (config["c_out"] // config["groups"] < 16)
    with jit.use_compiled(True):
        check_forward(config)


PAIRED_CASES = [   # (configuration, how a pass sums where the registers hold two blocks)
    (config_of(2, 3, 64, 30, 7, stride=2, pad=3), "channels"),      # a stem: 4 blocks
    (config_of(3, 6, 32, 14, 5), "channels"),                       # 2 blocks, read in place
    (config_of(2, 4, 24, (9, 13), 3, pad=1), "channels"),           # the second 8 of 16 lanes
    (config_of(2, 3, 64, 11, 3, pad=1, dilation=2, dtype=np.float64), "channels"),  # 8 of 8
    (config_of(2, 8, 48, 12, 3, stride=2, groups=2), "channels"),   # 24 a group: 16 + 8
    (config_of(3, 6, 16, 14, 5), "pixels"),      # LeNet's second layer: rows of 10, in place
    (config_of(2, 4, 48, 10, 3, pad=1), "pixels"),                  # 3 blocks, rows of 10
    (config_of(2, 3, 16, (7, 37), 3, stride=2), "pixels"),          # rows of 18: 10 + 5 + 3
    (config_of(2, 5, 16, (6, 16), 1), "pixels"),                    # rows of 16: 10 + 5 + 1
    (config_of(2, 3, 24, 12, 3, dtype=np.float64), "pixels"),       # 3 blocks of 8, rows of 10
    (config_of(2, 4, 48, 14, 3), "one"),                            # 3 blocks, rows of 12
    (config_of(2, 4, 16, 9, 3), "one"),                             # rows of 7
]


@COMPILED
@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("config,pairing", PAIRED_CASES,
                         ids=["stem", "in-place", "part-filled", "float64", "groups", "lenet2",
                              "odd-blocks", "strided-rows", "rows-of-16", "float64-rows", "one",
                              "short-rows"])
def test_issue13_lanes_paired_blocks(monkeypatch, config, pairing, paired):
    """Two blocks of sums a pass (`_paired_kernel`) where `_pairs_blocks` says the registers
    hold them: two blocks of output channels at the same outputs where a group has an even
    number of them, one block at twice PIXELS outputs of a row where the rows fill those
    (a part-filled last pair too), one block of PIXELS otherwise (`_forward_kernel`); the
    same values as PyTorch's either way, the input gradient (a forward pass) and the fused
    epilogue too."""
    monkeypatch.setattr(lanes, "_pairs_blocks", lambda: paired)
    kernels = []
    sharing = lanes.run_shared
    monkeypatch.setattr(lanes, "run_shared", lambda threads, kernel, *arguments: (
        kernels.append((kernel, arguments)), sharing(threads, kernel, *arguments)))
    x, weight, bias, grad_out, window = arrays(config)
    groups = config["groups"]
    with jit.use_compiled(True):
        check_forward(config)
        kernel, arguments = kernels[0]
        if not paired or pairing == "one":
            assert kernel is lanes._forward_kernel
        else:
            assert kernel is lanes._paired_kernel
            assert arguments[6] is (pairing == "pixels")     # pixel_pairs
        if tuple(window.stride) == (1, 1):
            check_gradients(config)
        out, pooled = lanes.forward_epilogue(x, weight, bias, window, groups, "relu", 2)
    conv, scale = (torch_results(x, weight, bias, grad_out, config, magnitude=m)[0]
                   for m in (False, True))
    expected = np.maximum(conv, 0)
    assert_close(out, expected, scale, config["dtype"], "relu(conv) vs torch")
    pool_of = lambda a: torch.nn.functional.avg_pool2d(torch.from_numpy(a), 2).numpy()  # noqa: E731
    assert_close(pooled, pool_of(expected), pool_of(scale), config["dtype"], "pooled vs torch")


@COMPILED
@pytest.mark.parametrize("threads", [2, 3])
def test_issue13_lanes_on_threads(monkeypatch, threads):
    """The images split among several threads (more threads than some images get)."""
    monkeypatch.setattr(lanes, "active", lambda: threads)
    monkeypatch.setattr(lanes, "MIN_PARALLEL_SIZE", 0)
    with jit.use_compiled(True):
        for n in (2, 5, 9):          # (fewer images than a take, and a part-filled last take)
            check_forward(config_of(n, 6, 20, 12, 5, pad=1))
            check_forward(config_of(n, 2, 6, 12, 5, pad=2))         # outputs in lanes


@COMPILED
def test_issue13_lanes_a_late_helper_takes_what_is_left(monkeypatch, late_helpers):
    """A helper that starts only after the calling thread has taken every image finds none
    left: the result is whole and the same."""
    taken = []
    sharing = kernel_threads.run_shared

    def counting(count, kernel, *arguments):
        sharing(count, lambda *given: (kernel(*given), taken.append(given[-1][0])),
                *arguments)

    monkeypatch.setattr(lanes, "active", lambda: 2)
    monkeypatch.setattr(lanes, "MIN_PARALLEL_SIZE", 0)
    monkeypatch.setattr(kernel_threads, "helper_pool", late_helpers(0.2))
    monkeypatch.setattr(lanes, "run_shared", counting)
    with jit.use_compiled(True):
        check_forward(config_of(9, 6, 20, 12, 5, pad=1))
    # (the counter ends one take past the last image per thread: 3 takes of 4 for 9 images,
    # then one empty take each)
    assert taken[-1] == 3 + 2


@COMPILED
def test_issue13_simd_take_next_gives_each_number_once():
    """take_next on one counter from two threads at once (numba, without the GIL): every
    number from 0 is taken exactly once."""
    numba = jit.load_numba()

    @numba.njit(nogil=True)
    def take(counter, into):
        for i in range(into.size):
            into[i] = simd.take_next(counter)

    counter = np.zeros(1, np.int64)
    taken = [np.empty(200_000, np.int64) for _ in range(2)]
    take(np.zeros(1, np.int64), np.empty(1, np.int64))      # compiled before the race
    threads = [threading.Thread(target=take, args=(counter, into)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter[0] == 400_000
    assert (np.sort(np.concatenate(taken)) == np.arange(400_000)).all()
    reference = np.zeros(1, np.int64)
    assert [simd.take_next_reference(reference) for _ in range(3)] == [0, 1, 2]


@COMPILED
def test_issue13_lanes_one_thread_under_a_small_budget():
    """A budget that holds one thread's buffers: one thread, same result."""
    config = config_of(4, 6, 16, 14, 5, pad=2)
    x, weight, _, _, window = arrays(config)
    least = lanes.least_bytes(x.shape, weight.shape, window, 1, np.float32, "forward")
    with jit.use_compiled(True):
        check_forward(config, budget=least)


@COMPILED
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_issue13_simd_fma_lanes_against_its_plain_equivalent(dtype):
    """fma_lanes adds value * w[w_at:w_at+lanes] into sums[at:at+lanes] and nothing else
    (compared with fma_lanes_reference; one rounding against two: float tolerance)."""
    numba = jit.load_numba()

    @numba.njit
    def apply(sums, at, value, w, w_at):
        simd.fma_lanes(sums, at, value, w, w_at)

    rng = np.random.default_rng(1)
    count = simd.lanes_of(dtype)
    assert count == 64 // np.dtype(dtype).itemsize
    for at, w_at in ((0, 0), (3, 5), (count, 2)):
        sums = rng.standard_normal(3 * count).astype(dtype)
        w = rng.standard_normal(2 * count + 7).astype(dtype)
        value = dtype(rng.standard_normal())
        expected = sums.copy()
        simd.fma_lanes_reference(expected, at, value, w, w_at)
        apply(sums, at, value, w, w_at)
        np.testing.assert_allclose(sums, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)
        untouched = np.r_[0:at, at + count:3 * count]
        assert (sums[untouched] == expected[untouched]).all()


@COMPILED
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 9])
def test_issue13_simd_store_columns_against_its_plain_equivalent(dtype, count):
    """store_columns writes sums[sums_at + p * lanes + lane] to out[at + lane * plane + p] for
    each lane and p < count, and nothing else of out (against store_columns_reference and a
    loop over lanes and pixels written out here)."""
    numba = jit.load_numba()

    @numba.njit
    def apply(out, at, plane, sums, sums_at):
        simd.store_columns(out, at, plane, sums, sums_at, count)

    rng = np.random.default_rng(count)
    lanes_count = simd.lanes_of(dtype)
    for at, plane, sums_at in ((0, count, 0), (7, 11, lanes_count), (3, count + 40, 2)):
        sums = rng.standard_normal(count * lanes_count + sums_at + 5).astype(dtype)
        out = np.full(at + lanes_count * plane + count + 9, -7.0, dtype)
        expected = out.copy()
        simd.store_columns_reference(expected, at, plane, sums, sums_at, count)
        looped = out.copy()
        for lane in range(lanes_count):
            for p in range(count):
                looped[at + lane * plane + p] = sums[sums_at + p * lanes_count + lane]
        apply(out, np.uintp(at), np.uintp(plane), sums, sums_at)
        np.testing.assert_array_equal(expected, looped)
        np.testing.assert_array_equal(out, expected)


@COMPILED
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_issue13_simd_store_transposed_against_its_plain_equivalent(dtype):
    """store_transposed writes block[block_at + p * lanes + lane] to out[at + lane * plane +
    p] for each lane and p < count (every count from 0 to lanes), and nothing else of out
    (against store_transposed_reference and a loop over lanes and pixels written out here)."""
    numba = jit.load_numba()

    @numba.njit
    def apply(out, at, plane, block, block_at, count):
        simd.store_transposed(out, at, plane, block, block_at, count)

    rng = np.random.default_rng(3)
    lanes_count = simd.lanes_of(dtype)
    for count in range(lanes_count + 1):
        for at, plane, block_at in ((0, lanes_count, 0), (7, 19, lanes_count), (3, 40, 5)):
            block = rng.standard_normal(lanes_count * lanes_count + block_at + 5).astype(dtype)
            out = np.full(at + lanes_count * plane + lanes_count + 9, -7.0, dtype)
            expected = out.copy()
            simd.store_transposed_reference(expected, at, plane, block, block_at, count)
            looped = out.copy()
            for lane in range(lanes_count):
                for p in range(count):
                    looped[at + lane * plane + p] = block[block_at + p * lanes_count + lane]
            apply(out, np.uintp(at), np.uintp(plane), block, block_at, count)
            np.testing.assert_array_equal(expected, looped)
            np.testing.assert_array_equal(out, expected, err_msg=f"count {count}")


def test_issue13_lanes_docstring_examples():
    failed, tried = doctest.testmod(lanes)
    assert tried >= 2 and failed == 0


def test_issue13_lanes_supports_every_pass_compiled_only_the_input_gradient_at_stride_1():
    window = make_window("conv2d", 14, 14, (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1))
    shapes = ((8, 6, 14, 14), (16, 6, 5, 5), window, 1)
    if jit.AVAILABLE:
        with jit.use_compiled(True):
            for pass_name in plan.PASSES:
                assert lanes.supports(*shapes, np.float32, pass_name)
                assert lanes.supports(*shapes, np.float64, pass_name)
                assert not lanes.supports(*shapes, np.float16, pass_name)
            strided = make_window("conv2d", 14, 14, (5, 5), (2, 1), ((0, 0), (0, 0)), (1, 1))
            assert not lanes.supports(shapes[0], shapes[1], strided, 1, np.float32,
                                      "grad_input")
            assert lanes.supports(shapes[0], shapes[1], strided, 1, np.float32,
                                  "grad_weight")
    with jit.use_compiled(False):
        assert not lanes.supports(*shapes, np.float32, "forward")
        assert plan.describe(*shapes)["forward"] == "gemm"


def _window(size, kernel, stride=1, padding=0):
    return make_window("conv2d", size, size, (kernel, kernel), (stride, stride),
                       ((padding, padding), (padding, padding)), (1, 1))


def test_issue13_lanes_rule_in_shape_quantities():
    """The forward pass: Og >= 16 per group; output rows that fill >= 4/5 of their blocks of 5
    (widths 4, 5, 8-10, 12 and more); K*64 bytes <= 64 KiB (K <= 1024)."""
    cases = [((8, 6, 14, 14), (16, 6, 5, 5), 1, _window(14, 5), True),        # LeNet: W_out 10
             ((8, 6, 14, 14), (12, 6, 5, 5), 1, _window(14, 5), False),       # Og 12
             ((8, 8, 14, 14), (32, 4, 5, 5), 2, _window(14, 5), True),        # Og 16 per group
             ((8, 8, 14, 14), (24, 4, 5, 5), 2, _window(14, 5), False),       # Og 12 per group
             ((8, 64, 24, 24), (128, 64, 3, 3), 1, _window(24, 3, 2, 1), True),   # W_out 12
             ((8, 64, 22, 22), (128, 64, 3, 3), 1, _window(22, 3, 2, 1), False),  # W_out 11
             ((8, 64, 12, 12), (128, 64, 3, 3), 1, _window(12, 3, 2, 1), False),  # W_out 6
             ((8, 64, 8, 8), (128, 64, 3, 3), 1, _window(8, 3, 2, 1), True),      # W_out 4
             ((8, 114, 24, 24), (32, 114, 3, 3), 1, _window(24, 3, 2, 1), False),  # K 1026
             ((8, 113, 24, 24), (32, 113, 3, 3), 1, _window(24, 3, 2, 1), True)]   # K 1017
    for x_shape, w_shape, groups, window, expected in cases:
        assert lanes.rule("forward", x_shape, w_shape, window, groups) is expected, w_shape


def test_issue13_lanes_rule_with_outputs_in_lanes():
    """Og < 16, stride 1 along rows: K >= 25, Og filling >= 4/5 of its blocks of 6 (5-6,
    10-12, 15), W_out >= 4/5 of its blocks of 16; stride 2 along rows: output channels in
    lanes, Og >= 16."""
    lenet = _window(28, 5, 1, 2)
    cases = [((8, 1, 28, 28), (6, 1, 5, 5), lenet, True),                 # LeNet's first layer
             ((8, 1, 28, 28), (5, 1, 5, 5), lenet, True),
             ((8, 1, 28, 28), (4, 1, 5, 5), lenet, False),                # 4 of 6 channels
             ((8, 1, 28, 28), (12, 1, 5, 5), lenet, True),
             ((8, 1, 28, 28), (9, 1, 5, 5), lenet, False),                # 9 of 12
             ((8, 1, 28, 28), (6, 1, 3, 3), _window(28, 3, 1, 1), False),     # K 9
             ((8, 3, 28, 28), (6, 3, 3, 3), _window(28, 3, 1, 1), True),      # K 27
             ((8, 3, 12, 12), (6, 3, 3, 3), _window(12, 3, 1, 1), False),     # W_out 12 of 16
             ((8, 3, 13, 13), (6, 3, 3, 3), _window(13, 3, 1, 1), True),      # 13 of 16
             ((8, 3, 28, 28), (6, 3, 3, 3), _window(28, 3, 2, 1), False)]     # stride 2
    for x_shape, w_shape, window, expected in cases:
        assert lanes._by_pixels(w_shape, window, 1) is (window.stride == (1, 1))
        assert lanes.rule("forward", x_shape, w_shape, window, 1) is expected, (w_shape, window)


@COMPILED
def test_issue13_planner_takes_lanes_for_forward_passes_and_leaves_winograd_its_layers():
    """LeNet's layers and the stems: lanes forward (LeNet's second layer's gradients too;
    the other gradients elsewhere); the 3x3
    stride-1 layers Winograd takes stay Winograd's; a one-channel 3x3 filter stays on the
    direct engine."""
    with jit.use_compiled(True):
        lenet = ((256, 6, 14, 14), (16, 6, 5, 5), _window(14, 5))
        assert plan.describe(*lenet) == {"forward": "lanes", "grad_input": "lanes",
                                         "grad_weight": "lanes"}
        stem = ((8, 3, 224, 224), (64, 3, 7, 7), _window(224, 7, 2, 3))
        assert plan.describe(*stem)["forward"] == "lanes"
        wide = ((8, 64, 56, 56), (64, 64, 3, 3), _window(56, 3, 1, 1))
        assert winograd.supports(*wide, 1, np.float32, "forward")
        assert plan.describe(*wide)["forward"] == "winograd"
        first = ((256, 1, 28, 28), (6, 1, 5, 5), _window(28, 5, 1, 2))
        assert plan.describe(*first) == {"forward": "lanes", "grad_input": "direct",
                                         "grad_weight": "direct"}
        one = ((8, 1, 64, 64), (1, 1, 3, 3), _window(64, 3, 1, 1))
        assert plan.describe(*one)["forward"] == "direct"


@COMPILED
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_issue13_lanes_through_conv2d_with_the_planner(dtype):
    """F.conv2d on LeNet's second layer (the planner's lanes forward, unrolled's gradients)
    against torch: values, gradients, dtype."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 6, 14, 14))
    weight = rng.standard_normal((16, 6, 5, 5))
    bias = rng.standard_normal(16)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    with jit.use_compiled(True):
        assert plan.choose("forward", x.shape, weight.shape, _window(14, 5), 1,
                           np_dtype) == "lanes"
        ours = [ct.tensor(a.astype(np_dtype), requires_grad=True) for a in (x, weight, bias)]
        out = ct.nn.functional.conv2d(*ours)
        (out * out).sum().backward()
    theirs = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in (x, weight, bias)]
    expected = torch.nn.functional.conv2d(*theirs)
    (expected * expected).sum().backward()
    tolerance = 1e-4 if dtype == torch.float32 else 1e-10
    assert out.dtype == ct.float32 if dtype == torch.float32 else out.dtype == ct.float64
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(),
                               rtol=tolerance, atol=tolerance)
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(),
                                   rtol=tolerance, atol=tolerance * 100)
