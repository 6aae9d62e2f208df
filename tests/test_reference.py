"""corrnet.kernels.reference (plain loops) against PyTorch, and the fast path against it.

The reference functions take NumPy arrays (batched, N C H W) and pairs for
stride / padding / dilation, and return NumPy arrays.  Two independent checks:

* reference == torch.nn.functional (the reference is right);
* corrnet.nn.functional (the fast path) == reference, forward values.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch as tt
import torch.nn.functional as tF
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import corrnet as ct
from corrnet.kernels import reference as ref
from corrnet.nn import functional as cF

from pool_geometry import pool_windows_touch_input
from torch_compare import seeds

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
DTYPES = st.sampled_from([np.float32, np.float64])


def tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if np.dtype(dtype) == np.float32 else {
        "rtol": 1e-10, "atol": 1e-10}


def torch_np(fn, *arrays, **kwargs):
    ts = [None if a is None else tt.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    return fn(*ts, **kwargs).numpy()


def corrnet_np(fn, *arrays, **kwargs):
    ts = [None if a is None else ct.tensor(a) for a in arrays]
    return np.asarray(fn(*ts, **kwargs).detach().numpy())


def check(actual, expected, dtype, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_allclose(actual, expected, err_msg=what, **tol(dtype))


# ----------------------------------------------------------------------------- conv2d
@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7))
    n = draw(st.integers(1, 2))
    dtype = draw(DTYPES)
    rng = np.random.default_rng(draw(seeds))
    x = rng.standard_normal((n, cin, h, w)).astype(dtype)
    wt = rng.standard_normal((cout, cin // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if draw(st.booleans()) else None
    return x, wt, b, {"stride": (sh, sw), "padding": (ph, pw), "dilation": (dh, dw),
                      "groups": groups}


@SETTINGS
@given(conv_cases())
def test_reference_conv2d_matches_torch_and_fast_path(case):
    x, w, b, kw = case
    expected = ref.conv2d(x, w, b, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
    check(expected, torch_np(tF.conv2d, x, w, b, **kw), x.dtype, f"reference conv2d {kw}")
    check(corrnet_np(cF.conv2d, x, w, b, **kw), expected, x.dtype, f"fast conv2d {kw}")


# ------------------------------------------------------------------------ max_pool2d
@st.composite
def max_pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 8))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 8))
    assume(pool_windows_touch_input(h, kh, sh, ph, dh, ceil_mode))
    assume(pool_windows_touch_input(w, kw, sw, pw, dw, ceil_mode))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    rng = np.random.default_rng(draw(seeds))
    n = int(np.prod(shape))
    x = ((rng.permutation(n) - n / 2) / 8.0).reshape(shape).astype(draw(DTYPES))
    return x, {"kernel_size": (kh, kw), "stride": (sh, sw), "padding": (ph, pw),
               "dilation": (dh, dw), "ceil_mode": ceil_mode}


@SETTINGS
@given(max_pool_cases())
def test_reference_max_pool2d_matches_torch_and_fast_path(case):
    x, kw = case
    expected = ref.max_pool2d(x, kw["kernel_size"], kw["stride"], kw["padding"],
                              kw["dilation"], kw["ceil_mode"])
    check(expected, torch_np(tF.max_pool2d, x, **kw), x.dtype, f"reference max_pool2d {kw}")
    check(corrnet_np(cF.max_pool2d, x, **kw), expected, x.dtype, f"fast max_pool2d {kw}")


# ------------------------------------------------------------------------ avg_pool2d
@st.composite
def avg_pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 8))
    w = draw(st.integers(max(1, kw - 2 * pw), 8))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    rng = np.random.default_rng(draw(seeds))
    x = rng.standard_normal(shape).astype(draw(DTYPES))
    return x, {"kernel_size": (kh, kw), "stride": (sh, sw), "padding": (ph, pw),
               "ceil_mode": draw(st.booleans()), "count_include_pad": draw(st.booleans()),
               "divisor_override": draw(st.one_of(st.none(), st.integers(1, 5)))}


@SETTINGS
@given(avg_pool_cases())
def test_reference_avg_pool2d_matches_torch_and_fast_path(case):
    x, kw = case
    expected = ref.avg_pool2d(x, kw["kernel_size"], kw["stride"], kw["padding"],
                              kw["ceil_mode"], kw["count_include_pad"], kw["divisor_override"])
    check(expected, torch_np(tF.avg_pool2d, x, **kw), x.dtype, f"reference avg_pool2d {kw}")
    check(corrnet_np(cF.avg_pool2d, x, **kw), expected, x.dtype, f"fast avg_pool2d {kw}")


# ---------------------------------------------------------------------------- corr2d
@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.float64])
@pytest.mark.parametrize("x_shape, k_shape", [((3, 3), (2, 2)), ((6, 8), (3, 1)),
                                              ((5, 5), (5, 5)), ((1, 7), (1, 3))])
def test_reference_corr2d_matches_scipy_torch_and_fast_path(x_shape, k_shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(-9, 10, size=x_shape).astype(dtype)
    k = rng.integers(-9, 10, size=k_shape).astype(dtype)
    expected = ref.corr2d(x, k)
    assert expected.dtype == np.dtype(dtype)
    np.testing.assert_allclose(expected, scipy.signal.correlate2d(x, k, mode="valid"))
    via_torch = tF.conv2d(tt.from_numpy(x)[None, None], tt.from_numpy(k)[None, None])[0, 0]
    np.testing.assert_allclose(expected, via_torch.numpy())
    fast = np.asarray(ct.corr2d(ct.tensor(x), ct.tensor(k)).numpy())
    assert fast.dtype == expected.dtype
    np.testing.assert_allclose(fast, expected, rtol=1e-6)


def test_reference_lenet_sized_conv():
    """One realistic size, fixed: 28x28 input, 5x5 kernels, padding 2."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 28, 28))
    w = rng.standard_normal((2, 1, 5, 5))
    b = rng.standard_normal(2)
    expected = ref.conv2d(x, w, b, (1, 1), (2, 2), (1, 1), 1)
    check(expected, torch_np(tF.conv2d, x, w, b, padding=2), x.dtype, "reference lenet conv")
    check(corrnet_np(cF.conv2d, x, w, b, padding=2), expected, x.dtype, "fast lenet conv")


# ------------------------------------------------- transposed conv, adaptive pools, pad, unfold
def _three_way(reference, torch_fn, corrnet_fn, arrays, dtype, what, **kwargs):
    """reference == torch, and the fast path == reference."""
    expected = reference(*arrays)
    check(expected, torch_np(torch_fn, *arrays, **kwargs), dtype, f"reference {what} vs torch")
    check(corrnet_np(corrnet_fn, *arrays, **kwargs), expected, dtype, f"fast {what} vs reference")


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 3), st.integers(0, 1), st.integers(1, 2), st.integers(1, 5), DTYPES,
       seeds)
def test_reference_conv_transpose2d(groups, cout_g, kh, kw, stride, padding, dilation, size,
                                    dtype, seed):
    rng = np.random.default_rng(seed)
    output_padding = stride - 1
    assume((size - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1 >= 1)
    assume((size - 1) * stride - 2 * padding + dilation * (kw - 1) + output_padding + 1 >= 1)
    x = rng.standard_normal((2, groups, size, size + 1)).astype(dtype)
    w = rng.standard_normal((groups, cout_g, kh, kw)).astype(dtype)
    b = rng.standard_normal(groups * cout_g).astype(dtype)
    kwargs = {"stride": stride, "padding": padding, "output_padding": output_padding,
              "groups": groups, "dilation": dilation}
    pair = {k: (v, v) if k != "groups" else v for k, v in kwargs.items()}
    _three_way(lambda x, w, b: ref.conv_transpose2d(x, w, b, **pair), tF.conv_transpose2d,
               cF.conv_transpose2d, [x, w, b], dtype, "conv_transpose2d", **kwargs)


@SETTINGS
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 8), st.integers(1, 8),
       st.sampled_from(["avg", "max"]), DTYPES, seeds)
def test_reference_adaptive_pool2d(h, w, out_h, out_w, kind, dtype, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w)).astype(dtype)
    torch_fn = tF.adaptive_avg_pool2d if kind == "avg" else tF.adaptive_max_pool2d
    corrnet_fn = cF.adaptive_avg_pool2d if kind == "avg" else cF.adaptive_max_pool2d
    _three_way(lambda x: ref.adaptive_pool2d(x, (out_h, out_w), kind), torch_fn, corrnet_fn,
               [x], dtype, f"adaptive_{kind}_pool2d", output_size=(out_h, out_w))


@SETTINGS
@given(st.integers(2, 5), st.integers(2, 5), st.lists(st.integers(-1, 3), min_size=4,
       max_size=4), st.sampled_from(["constant", "reflect", "replicate", "circular"]), DTYPES,
       seeds)
def test_reference_pad(h, w, pads, mode, dtype, seed):
    left, right, top, bottom = pads
    if mode == "reflect":
        assume(max(left, right) < w and max(top, bottom) < h)
    if mode == "circular":  # no mixed crop-and-wrap; wrap at most once
        assume(min(left, right) >= 0 or max(left, right) <= 0)
        assume(min(top, bottom) >= 0 or max(top, bottom) <= 0)
        assume(max(left, right) <= w and max(top, bottom) <= h)
    assume(h + top + bottom >= 1 and w + left + right >= 1)
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w)).astype(dtype)
    _three_way(lambda x: ref.pad(x, ((top, bottom), (left, right)), mode), tF.pad, cF.pad, [x],
               dtype, f"pad {mode}", pad=tuple(pads), mode=mode)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1),
       st.integers(1, 2), st.integers(3, 6), DTYPES, seeds)
def test_reference_unfold(kh, kw, dilation, padding, stride, size, dtype, seed):
    assume(size + 2 * padding >= dilation * (max(kh, kw) - 1) + 1)
    x = np.random.default_rng(seed).standard_normal((2, 2, size, size + 1)).astype(dtype)
    kwargs = {"kernel_size": (kh, kw), "dilation": dilation, "padding": padding,
              "stride": stride}
    _three_way(lambda x: ref.unfold(x, (kh, kw), (dilation,) * 2, (padding,) * 2, (stride,) * 2),
               tF.unfold, cF.unfold, [x], dtype, "unfold", **kwargs)


@pytest.mark.parametrize("batch", [2, 17])  # channel-major and batch-innermost layouts
def test_conv_layouts_agree_with_the_reference_forward_and_backward(batch):
    """Both layouts of the unrolled windows (kernels.conv.batch_innermost) give conv2d's and
    conv_transpose2d's values and every gradient (torch as the oracle for the gradients)."""
    from corrnet.kernels import conv as conv_kernels
    from corrnet.kernels.windows import make_window

    window = make_window("t", 9, 9, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert conv_kernels.batch_innermost(batch, window) == (batch == 17)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 4, 9, 9))
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    check(corrnet_np(cF.conv2d, x, w, b, padding=1, groups=2),
          ref.conv2d(x, w, b, padding=(1, 1), groups=2), np.float64, "conv2d")
    for fn_c, fn_t, weight in ((cF.conv2d, tF.conv2d, w),
                               (cF.conv_transpose2d, tF.conv_transpose2d, w[:4])):
        xc, wc = ct.tensor(x, requires_grad=True), ct.tensor(weight, requires_grad=True)
        xt, wt = tt.tensor(x, requires_grad=True), tt.tensor(weight, requires_grad=True)
        out_c, out_t = fn_c(xc, wc, padding=1, groups=2), fn_t(xt, wt, padding=1, groups=2)
        up = rng.standard_normal(tuple(out_t.shape))
        out_c.backward(ct.tensor(up))
        out_t.backward(tt.tensor(up))
        check(out_c.detach().numpy(), out_t.detach().numpy(), np.float64, "forward")
        check(xc.grad.numpy(), xt.grad.numpy(), np.float64, "input gradient")
        check(wc.grad.numpy(), wt.grad.numpy(), np.float64, "weight gradient")


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2),
       st.integers(0, 2), st.integers(1, 3), st.integers(3, 8), DTYPES, seeds)
def test_compiled_batch_last_unrolling_matches_numpy(kh, kw, stride, dilation, padding,
                                                     channels, size, dtype, seed):
    """The compiled im2col and col2im of the batch-innermost layout (kernels.conv) give the
    NumPy copies' and adds' results bit for bit; im2col equals the reference unfold, and
    col2im is its adjoint: <unfold(x), col> = <x, col2im(col)>."""
    from corrnet.kernels import conv as conv_kernels
    from corrnet.kernels import jit
    from corrnet.kernels.windows import make_window, pad

    if not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    span = dilation * (max(kh, kw) - 1) + 1
    assume(size + 2 * padding >= span)
    window = make_window("t", size, size + 1, (kh, kw), (stride, stride),
                         ((padding, padding), (padding, padding)), (dilation, dilation))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, channels, size, size + 1)).astype(dtype)
    col_shape = (channels, kh, kw, window.out_height, window.out_width, 5)
    col = rng.standard_normal(col_shape).astype(dtype)
    results = {}
    for compiled in (True, False):
        with jit.use_compiled(compiled):
            results[compiled] = (conv_kernels.im2col(pad(x, window), window, batch_last=True),
                                 conv_kernels.col2im(col, window, x.shape, batch_last=True))
    np.testing.assert_array_equal(results[True][0], results[False][0])
    np.testing.assert_array_equal(results[True][1], results[False][1])
    unfolded = ref.unfold(x.astype(np.float64), (kh, kw), (dilation,) * 2, (padding,) * 2,
                          (stride,) * 2)                     # (N, C*kh*kw, L), the reference
    col_as_unfold = np.moveaxis(col, -1, 0).reshape(5, channels * kh * kw, -1)
    unrolled = np.moveaxis(results[True][0], -1, 0).reshape(unfolded.shape)
    np.testing.assert_array_equal(unrolled, unfolded.astype(dtype))
    adjoint = np.sum(results[True][1].astype(np.float64) * x)
    assert np.isclose(np.sum(unfolded * col_as_unfold), adjoint, rtol=1e-4)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 2), st.integers(0, 2), st.integers(1, 3),
       st.integers(3, 9), st.integers(1, 6) | st.sampled_from([16, 17, 31, 33]), st.data(),
       DTYPES, seeds)
def test_compiled_batch_last_band_matches_numpy(k, stride, padding, channels, size, batch,
                                                data, dtype, seed):
    """The padded band of input rows with the batch innermost (kernels.conv._padded_band):
    the compiled transposing copy equals NumPy's strided copy bit for bit, for every band of
    output rows (bands at the top and bottom read padding rows); batches of 16 and more take
    its blocks of TRANSPOSE_ROWS images, and their remainder."""
    from corrnet.kernels import conv as conv_kernels
    from corrnet.kernels import jit
    from corrnet.kernels.windows import make_window

    if not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    assume(size + 2 * padding >= k)
    window = make_window("t", size, size + 2, (k, k), (stride, stride),
                         ((padding, padding), (padding, padding)), (1, 1))
    first = data.draw(st.integers(0, window.out_height - 1))
    last = data.draw(st.integers(first + 1, window.out_height))
    x = np.random.default_rng(seed).standard_normal((batch, channels, size, size + 2))
    x = x.astype(dtype)
    bands = {}
    for compiled in (True, False):
        with jit.use_compiled(compiled):
            bands[compiled] = conv_kernels._padded_band(x, window, slice(first, last), True)
    np.testing.assert_array_equal(bands[True], bands[False])
    assert bands[True].shape == bands[False].shape


@SETTINGS
@given(st.integers(0, 70), st.integers(0, 40), DTYPES, st.data(), seeds)
def test_compiled_transpose_matches_numpy(rows, columns, dtype, data, seed):
    """kernels.conv.transpose_into (the batch-innermost layouts' copies): the compiled blocked
    kernel on corrnet's threads equals NumPy's transposing copy bit for bit, for any shape
    (blocks of TRANSPOSE_ROWS rows and a remainder; large ones are split among threads)."""
    from corrnet.kernels import conv as conv_kernels
    from corrnet.kernels import jit

    if not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    rows *= data.draw(st.sampled_from([1, 1, 60, 120]))   # (sometimes over MIN_PARALLEL_SIZE)
    source = np.random.default_rng(seed).standard_normal((rows, columns)).astype(dtype)
    results = {}
    for compiled in (True, False):
        dest = np.full((columns, rows), np.nan, dtype)
        with jit.use_compiled(compiled):
            conv_kernels.transpose_into(source, dest)
        results[compiled] = dest
    np.testing.assert_array_equal(results[True], results[False])
    np.testing.assert_array_equal(results[False], source.T)
