"""The pooling kernels (corrnet.kernels.pool), both paths, against PyTorch and the reference.

Each test runs twice: with the compiled (numba) kernels and with the NumPy fallback
(`jit.use_compiled`). The compiled max/avg forward and avg backward are compiled once per
window geometry and only run from `pool.COMPILED_MIN_SIZE` elements; here that threshold is
lowered to 0, and the compiled runs draw their geometry from a short list (`COMPILED_WINDOWS`:
each new geometry costs a compilation), while the NumPy runs draw any geometry.

Max pooling is checked for PyTorch's exact choice of winner (return_indices and where the
gradient goes): the data holds ties (small integers), -inf and NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corrnet.kernels import jit, pool, reference, threads
from corrnet.kernels.windows import make_window

from pool_geometry import pool_out_len, pool_windows_touch_input
from torch_compare import seeds

# (the `compiled` fixture only switches a setting: sharing it between examples is intended)
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])

# (kernel, stride, padding, dilation, ceil_mode): non-overlapping 2x2; ResNet's 3x3 stride 2
# padding 1; an odd one: non-square, dilated, ceil_mode windows that overhang the input
COMPILED_WINDOWS = [
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 2), (2, 1), (1, 1), (2, 1), True),
]


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def compiled(request, monkeypatch):
    """Run the test with the compiled kernels (at every size) or with the NumPy path."""
    if request.param and not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(pool, "COMPILED_MIN_SIZE", 0)
    monkeypatch.setattr(threads, "MIN_PARALLEL_SIZE", 0)   # batches of 2+ split across threads
    with jit.use_compiled(request.param):
        yield request.param


def tolerance(dtype) -> dict:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12,
                                                                      "atol": 1e-12}


@st.composite
def free_windows(draw, dilated: bool):
    """(kernel, stride, padding, dilation, ceil_mode) that PyTorch accepts, every window
    holding at least one input cell."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    return kernel, stride, padding, dilation, draw(st.booleans())


@st.composite
def cases(draw, compiled: bool, dilated: bool = True):
    """(x, window arguments, dtype): x (N, C, H, W) with ties, -inf and NaN."""
    if compiled:
        kernel, stride, padding, dilation, ceil_mode = draw(st.sampled_from(
            [w if dilated else (*w[:3], (1, 1), w[4]) for w in COMPILED_WINDOWS]))
    else:
        kernel, stride, padding, dilation, ceil_mode = draw(free_windows(dilated))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    for size, k, s, p, d in zip((height, width), kernel, stride, padding, dilation,
                                strict=True):
        assume(pool_out_len(size, k, s, p, d, ceil_mode) >= 1)
        assume(pool_windows_touch_input(size, k, s, p, d, ceil_mode))
    # (compiled: float64 on the first geometry only, each dtype is one more compilation)
    both = not compiled or (kernel, stride) == COMPILED_WINDOWS[0][:2]
    dtype = draw(st.sampled_from([np.float32, np.float64] if both else [np.float32]))
    rng = np.random.default_rng(draw(seeds))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), height, width)
    x = rng.integers(-3, 4, shape).astype(dtype)        # small integers: many ties
    if draw(st.booleans()):
        x[rng.random(shape) < 0.2] = -np.inf
    if draw(st.booleans()):
        x[rng.random(shape) < 0.1] = np.nan
    return x, (kernel, stride, padding, dilation, ceil_mode), dtype


def window_of(x, kernel, stride, padding, dilation, ceil_mode):
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    return make_window("pool", x.shape[2], x.shape[3], kernel, stride, pads, dilation,
                       ceil_mode)


def torch_max_pool(x, grad, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's output, indices and input gradient for upstream gradient `grad`."""
    xt = torch.tensor(x, requires_grad=True)
    out, indices = tF.max_pool2d(xt, kernel, stride, padding, dilation, ceil_mode,
                                 return_indices=True)
    out.backward(torch.tensor(grad))
    return out.detach().numpy(), indices.numpy(), xt.grad.numpy()


def check_max_pool(x, args, dtype):
    window = window_of(x, *args)
    out, winner = pool.max_pool2d_forward(x, window, find_winner=True)
    grad = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    expected_out, expected_indices, expected_grad = torch_max_pool(x, grad, *args)
    assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected_out)                 # NaN == NaN here
    np.testing.assert_array_equal(pool.max_pool2d_indices(winner, window), expected_indices)
    without, none = pool.max_pool2d_forward(x, window, find_winner=False)
    assert none is None
    np.testing.assert_array_equal(without, expected_out)
    grad_x = pool.max_pool2d_backward(grad, winner, window, x.shape)
    assert grad_x.dtype == dtype and grad_x.shape == x.shape
    np.testing.assert_allclose(grad_x, expected_grad, **tolerance(dtype))
    # the upstream gradient of out.sum(): a read-only broadcast
    ones = np.broadcast_to(np.ones((), dtype), out.shape)
    _, _, expected_ones_grad = torch_max_pool(x, np.ones(out.shape, dtype), *args)
    np.testing.assert_allclose(pool.max_pool2d_backward(ones, winner, window, x.shape),
                               expected_ones_grad, **tolerance(dtype))


@SETTINGS
@given(data=st.data())
def test_max_pool_matches_torch_values_indices_and_gradients(compiled, data):
    check_max_pool(*data.draw(cases(compiled)))


@SETTINGS
@given(data=st.data())
def test_max_pool_matches_reference(compiled, data):
    x, (kernel, stride, padding, dilation, ceil_mode), dtype = data.draw(cases(compiled))
    x = np.nan_to_num(x, nan=0.0)           # the reference's `value > best` skips NaN
    out, _ = pool.max_pool2d_forward(x, window_of(x, kernel, stride, padding, dilation,
                                                  ceil_mode))
    expected = reference.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    np.testing.assert_array_equal(out, expected)


def check_avg_pool(x, args, dtype, count_include_pad, divisor_override):
    kernel, stride, padding, _, ceil_mode = args
    window = window_of(x, *args)
    divisor = pool.avg_pool2d_divisor(window, count_include_pad, divisor_override)
    out = pool.avg_pool2d_forward(x, window, divisor)
    grad = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    expected = tF.avg_pool2d(xt, kernel, stride, padding, ceil_mode, count_include_pad,
                             divisor_override)
    expected.backward(torch.tensor(grad))
    assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected.detach().numpy(), **tolerance(dtype))
    np.testing.assert_allclose(
        out, reference.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad,
                                  divisor_override), **tolerance(dtype))
    grad_x = pool.avg_pool2d_backward(grad, divisor, window, x.shape)
    assert grad_x.dtype == dtype and grad_x.shape == x.shape
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), **tolerance(dtype))
    ones = np.broadcast_to(np.ones((), dtype), out.shape)
    np.testing.assert_allclose(
        pool.avg_pool2d_backward(ones, divisor, window, x.shape),
        pool.avg_pool2d_backward(np.ones(out.shape, dtype), divisor, window, x.shape),
        **tolerance(dtype))


@SETTINGS
@given(data=st.data(), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, None, 3, -2]))
def test_avg_pool_matches_torch_and_reference(compiled, data, count_include_pad,
                                              divisor_override):
    x, args, dtype = data.draw(cases(compiled, dilated=False))
    x = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)   # finite values
    check_avg_pool(x, args, dtype, count_include_pad, divisor_override)


@pytest.mark.parametrize("args", COMPILED_WINDOWS)
def test_lenet_and_resnet_sized_batches(compiled, args):
    """Batches as the benchmarks' (where, at the default threshold, the compiled kernels
    run), a few planes of them; float32 random values, and a NaN."""
    x = np.random.default_rng(2).standard_normal((3, 4, 28, 27)).astype(np.float32)
    x[1, 2, 5, 6] = np.nan
    check_max_pool(x, args, np.float32)
    check_avg_pool(np.nan_to_num(x), (*args[:3], (1, 1), args[4]), np.float32, True, None)


def test_default_threshold_runs_the_compiled_kernels_on_large_inputs(monkeypatch):
    """At the default threshold a large input takes the compiled kernels, a small one NumPy;
    both agree."""
    if not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    large = np.random.default_rng(3).standard_normal((4, 16, 32, 32)).astype(np.float32)
    assert large.size >= pool.COMPILED_MIN_SIZE
    window = window_of(large, (2, 2), (2, 2), (0, 0), (1, 1), False)
    calls = []
    real_compiled = pool._max_pool_compiled
    monkeypatch.setattr(pool, "_max_pool_compiled",
                        lambda *a: calls.append(1) or real_compiled(*a))
    with jit.use_compiled(True):
        out, winner = pool.max_pool2d_forward(large, window, True)
        pool.max_pool2d_forward(large[:1, :1], window_of(large[:1, :1], (2, 2), (2, 2), (0, 0),
                                                         (1, 1), False), True)
    assert len(calls) == 1
    with jit.use_compiled(False):
        numpy_out, numpy_winner = pool.max_pool2d_forward(large, window, True)
    np.testing.assert_array_equal(out, numpy_out)
    np.testing.assert_array_equal(winner, numpy_winner)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8, np.uint8])
def test_integer_max_pool_stays_integer(compiled, dtype):
    """Integer inputs (the NumPy path, whatever the setting): padding never wins, even
    against the lowest integer; ties go to the first cell."""
    info = np.iinfo(dtype)
    x = np.full((1, 2, 5, 5), info.min, dtype=dtype)
    x[0, 1, 2, 2] = info.max
    x[0, 1, 3, 4] = info.max
    window = window_of(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    out, winner = pool.max_pool2d_forward(x, window, find_winner=True)
    assert out.dtype == dtype
    # (as float64, where the lowest and the highest value stay apart and ties stay ties)
    _, expected_indices = tF.max_pool2d(torch.tensor(x.astype(np.float64)), 3, 2, 1,
                                        ceil_mode=True, return_indices=True)
    expected_indices = expected_indices.numpy()
    np.testing.assert_array_equal(pool.max_pool2d_indices(winner, window), expected_indices)
    cells = np.take_along_axis(x.reshape(1, 2, -1), expected_indices.reshape(1, 2, -1), axis=2)
    np.testing.assert_array_equal(out, cells.reshape(out.shape))


def test_integer_avg_pool_truncates_like_torch(compiled):
    x = np.random.default_rng(4).integers(-50, 50, (2, 3, 7, 6)).astype(np.int64)
    window = window_of(x, (3, 2), (2, 2), (1, 1), (1, 1), True)
    divisor = pool.avg_pool2d_divisor(window, True, None)
    out = pool.avg_pool2d_forward(x, window, divisor)
    expected = tF.avg_pool2d(torch.tensor(x), (3, 2), 2, 1, ceil_mode=True)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected.numpy())


def test_every_window_all_minus_infinity_sends_its_gradient_to_its_first_inside_cell(
        compiled):
    x = np.full((2, 2, 6, 7), -np.inf, dtype=np.float32)
    args = ((3, 3), (2, 2), (1, 1), (1, 1), True)
    check_max_pool(x, args, np.float32)


def test_winner_fits_kernels_of_more_than_256_cells(compiled, monkeypatch):
    # (the forward pass in NumPy: one more geometry to compile isn't worth it here)
    monkeypatch.setattr(pool, "COMPILED_MIN_SIZE", 1 << 30)
    x = np.random.default_rng(5).standard_normal((1, 2, 19, 18))
    args = ((17, 16), (2, 2), (0, 0), (1, 1), False)
    window = window_of(x, *args)
    _, winner = pool.max_pool2d_forward(x, window, True)
    assert winner.dtype == np.uint32
    check_max_pool(x, args, np.float64)
