"""Oracle tests: corrnet's conv2d / max_pool2d / avg_pool2d / corr2d against PyTorch.

Every comparison goes through `helpers.check_op`, which compares forward values, shapes,
dtypes, requires_grad flags and the gradients of every input for a random upstream
gradient, and which requires corrnet to reject whatever PyTorch rejects.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch as tt
import torch.nn.functional as tF
from hypothesis import assume, event, given
from hypothesis import strategies as st

import corrnet as ct

from pool_geometry import pool_out_len, pool_windows_touch_input
from torch_compare import seeds

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import (
        as_pair,
        check_functional,
        check_op,
        distinct_array,
        oracle_settings,
        random_array,
    )
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import (
        as_pair,
        check_functional,
        check_op,
        distinct_array,
        oracle_settings,
        random_array,
    )

SETTINGS = oracle_settings(150)
FREE_SETTINGS = oracle_settings(100)

FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])


def _arg(draw, a: int, b: int, default: int | None = None):
    """An int when both dimensions agree (sometimes), else a pair; ``None`` = omit."""
    if default is not None and a == b == default and draw(st.booleans()):
        return None
    if a == b and draw(st.booleans()):
        return a
    return (a, b)


def _kwargs(**kw):
    return {k: v for k, v in kw.items() if v is not None}


# a batch of 17 also takes convolution's batch-innermost layout (kernels.conv.batch_innermost)
BATCHES = st.sampled_from([1, 2, 3, 17])


def _input_shape(draw, c: int, h: int, w: int) -> tuple[int, ...]:
    if draw(st.booleans()):
        return (draw(BATCHES), c, h, w)
    return (c, h, w)  # unbatched


def _assert_accepted(res) -> None:
    """For configurations built to be valid."""
    assert not res.rejected, f"valid config rejected by torch: {res.torch_error}"


def _note_verdict(res) -> None:
    """For "free" configurations: either verdict is fine once corrnet agrees with torch."""
    event("rejected by torch" if res.rejected else "accepted by torch")


def _check_pool(op: str, make_array, cfg):
    """check_functional on a drawn pooling configuration (x_shape, kernel, kwargs, dtype,
    seed), the input made by make_array(rng, x_shape, dtype)."""
    x_shape, kernel, kwargs, dtype, seed = cfg
    x = make_array(np.random.default_rng(seed), x_shape, dtype)
    return check_functional(op, x, kernel, seed=seed, **kwargs)


# --------------------------------------------------------------------------- conv2d
@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    cin = groups * draw(st.integers(1, max(1, 4 // groups)))
    cout = groups * draw(st.integers(1, max(1, 4 // groups)))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pad_kind = draw(st.sampled_from(["int", "int", "int", "same", "valid"]))
    if pad_kind == "same":  # stride 1 only; any input size (the output has the same size)
        sh = sw = 1
        ph = pw = 12  # only bounds h, w below: any size from 1
    elif pad_kind == "valid":
        ph = pw = 0
    # keep the (dilated) kernel within the padded input
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 12))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 12))
    x_shape = _input_shape(draw, cin, h, w)
    w_shape = (cout, cin // groups, kh, kw)
    b_shape = (cout,) if draw(st.booleans()) else None
    padding = pad_kind if pad_kind != "int" else _arg(draw, ph, pw, 0)
    kwargs = _kwargs(
        stride=_arg(draw, sh, sw, 1),
        padding=padding,
        dilation=_arg(draw, dh, dw, 1),
        groups=None if groups == 1 and draw(st.booleans()) else groups,
    )
    rg = draw(st.one_of(st.just((True, True, True)),
                        st.tuples(st.booleans(), st.booleans(), st.booleans())))
    return x_shape, w_shape, b_shape, kwargs, rg, draw(FLOAT_DTYPES), draw(seeds)


@SETTINGS
@given(conv_configs())
def test_conv2d_matches_torch(cfg):
    x_shape, w_shape, b_shape, kwargs, rg, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    x = random_array(rng, x_shape, dtype)
    w = random_array(rng, w_shape, dtype)
    b = None if b_shape is None else random_array(rng, b_shape, dtype)
    _assert_accepted(check_functional("conv2d", x, w, b, requires_grad=rg, seed=seed, **kwargs))


def _rarely(draw) -> bool:
    """Rarely True: each knob of a "free" configuration is usually valid."""
    return draw(st.integers(0, 15)) == 7


def _free_int(draw, lo: int, hi: int, bad: list[int]) -> int:
    return draw(st.sampled_from(bad)) if _rarely(draw) else draw(st.integers(lo, hi))


def _free_size(draw, eff: int, pad: int) -> int:
    """An input length that usually fits the window (sometimes not)."""
    if _rarely(draw) or pad < 0 or eff < 1:
        return draw(st.integers(1, 8))
    return draw(st.integers(max(1, eff - 2 * pad), max(1, eff - 2 * pad) + 6))


def _free_pool_window(draw):
    """((kh, kw), stride, (sh, sw), (ph, pw)) of a "free" pooling configuration, any of which
    may be invalid; stride is None (the kernel's) or (sh, sw), the stride in effect."""
    kh, kw = _free_int(draw, 1, 5, [0, -1]), _free_int(draw, 1, 5, [0, -1])
    if draw(st.booleans()):
        stride, sh, sw = None, kh, kw
    else:
        sh, sw = _free_int(draw, 1, 3, [0, -1]), _free_int(draw, 1, 3, [0, -1])
        stride = (sh, sw)
    ph = _free_int(draw, 0, max(kh, 0) // 2, [-1, max(kh, 0) // 2 + 1])
    pw = _free_int(draw, 0, max(kw, 0) // 2, [-1, max(kw, 0) // 2 + 1])
    return (kh, kw), stride, (sh, sw), (ph, pw)


def _free_pool_input_shape(draw, h: int, w: int) -> tuple[int, ...]:
    """Usually (C, H, W) or (N, C, H, W); rarely an invalid 2-D input."""
    rank = 2 if _rarely(draw) else draw(st.sampled_from([3, 4]))
    return {2: (h, w), 3: (2, h, w), 4: (2, 2, h, w)}[rank]


@st.composite
def free_conv_configs(draw):
    """Configurations where every knob may be invalid: torch's verdict decides."""
    groups = _free_int(draw, 1, 3, [0, -1])
    g = max(groups, 1)
    cin = draw(st.integers(1, 5)) if _rarely(draw) else g * draw(st.integers(1, 2))
    cout = draw(st.integers(1, 5)) if _rarely(draw) else g * draw(st.integers(1, 2))
    w_cin = draw(st.integers(1, 3)) if _rarely(draw) else max(1, cin // g)
    # rarely something empty (issue 11): no input channels (PyTorch returns an empty
    # (N, 0, H_out, W_out)), an empty batch, or what PyTorch refuses: an empty image, no
    # filters, an empty kernel
    empty = (draw(st.sampled_from(["channels", "batch", "image", "filters", "kernel"]))
             if _rarely(draw) else None)
    if empty == "channels":
        cin, w_cin = 0, 0
    elif empty == "filters":
        cout = 0
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = _free_int(draw, 1, 3, [0, -1]), _free_int(draw, 1, 3, [0, -1])
    ph, pw = _free_int(draw, 0, 2, [-1]), _free_int(draw, 0, 2, [-1])
    dh, dw = _free_int(draw, 1, 2, [0]), _free_int(draw, 1, 2, [0])
    h, w = _free_size(draw, dh * (kh - 1) + 1, ph), _free_size(draw, dw * (kw - 1) + 1, pw)
    rank = draw(st.sampled_from([2, 5])) if _rarely(draw) else draw(st.sampled_from([3, 4]))
    if empty == "image":
        h = 0
    elif empty == "kernel":
        kh = 0
    batch = 0 if empty == "batch" else 2
    x_shape = {2: (h, w), 3: (cin, h, w), 4: (batch, cin, h, w), 5: (1, 2, cin, h, w)}[rank]
    b_len = cout + 1 if _rarely(draw) else draw(st.sampled_from([None, cout]))
    if draw(st.integers(0, 5)) == 0:  # a padding string, with any stride
        padding = draw(st.sampled_from(["same", "valid", "full"]))
    else:
        padding = _arg(draw, ph, pw)
    kwargs = {
        "stride": _arg(draw, sh, sw),
        "padding": padding,
        "dilation": _arg(draw, dh, dw),
        "groups": groups,
    }
    return x_shape, (cout, w_cin, kh, kw), b_len, kwargs, draw(FLOAT_DTYPES), draw(seeds)


@FREE_SETTINGS
@given(free_conv_configs())
def test_conv2d_any_config_accepted_or_rejected_like_torch(cfg):
    x_shape, w_shape, b_len, kwargs, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    x = random_array(rng, x_shape, dtype)
    w = random_array(rng, w_shape, dtype)
    b = None if b_len is None else random_array(rng, (b_len,), dtype)
    _note_verdict(check_functional("conv2d", x, w, b, seed=seed, **kwargs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((1, 1, 28, 28), (6, 1, 5, 5), {"padding": 2}),  # LeNet conv1
        ((2, 6, 14, 14), (16, 6, 5, 5), {}),  # LeNet conv2, all defaults
        ((1, 1, 3, 3), (1, 1, 3, 3), {}),  # kernel == input -> 1x1 output
        ((1, 1, 1, 1), (2, 1, 1, 1), {"padding": 2, "stride": 3}),
        ((1, 2, 5, 7), (4, 2, 1, 1), {"stride": (2, 3)}),  # 1x1 conv
        ((3, 4, 8, 6), (4, 1, 3, 2), {"groups": 4, "padding": (1, 0)}),  # depthwise
        ((2, 3, 9, 9), (3, 3, 3, 3), {"stride": 2, "padding": 1, "dilation": 2}),
        ((2, 4, 6, 6), (2, 2, 2, 3), {"groups": 2, "stride": (1, 2), "dilation": (2, 1)}),
        ((3, 7, 7), (2, 3, 3, 3), {"padding": 1}),  # unbatched
        ((1, 5, 4), (3, 1, 4, 2), {"stride": 5}),  # unbatched, stride > input
        ((2, 2, 7, 6), (3, 2, 3, 3), {"padding": "same"}),
        ((1, 1, 6, 8), (1, 1, 4, 2), {"padding": "same"}),  # even kernels: extra pad at end
        ((2, 2, 9, 8), (2, 1, 2, 3), {"padding": "same", "dilation": (3, 2), "groups": 2}),
        ((1, 3, 5, 5), (2, 3, 2, 4), {"padding": "valid", "stride": 2}),
    ],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d_fixed_cases(x_shape, w_shape, kwargs, with_bias, dtype):
    rng = np.random.default_rng(0)
    x = random_array(rng, x_shape, dtype)
    w = random_array(rng, w_shape, dtype)
    b = random_array(rng, (w_shape[0],), dtype) if with_bias else None
    assert not check_functional("conv2d", x, w, b, **kwargs).rejected


def test_conv2d_padding_same_refused_with_stride_like_torch():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 1, 8, 8)), rng.standard_normal((1, 1, 3, 3))
    assert check_functional("conv2d", x, w, None, padding="same", stride=2).rejected


def test_conv2d_keyword_bias_and_positional_args():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)), \
        rng.standard_normal(3)
    check_op(lambda x, w, b: ct.nn.functional.conv2d(x, w, bias=b, stride=2),
             lambda x, w, b: tF.conv2d(x, w, bias=b, stride=2), [x, w, b])
    check_op(lambda x, w, b: ct.nn.functional.conv2d(x, w, b, 1, 1, 1, 1),
             lambda x, w, b: tF.conv2d(x, w, b, 1, 1, 1, 1), [x, w, b])


@pytest.mark.parametrize(
    "x_dtype, w_dtype, b_dtype",
    [(np.float32, np.float64, None), (np.float64, np.float32, None),
     (np.float32, np.float32, np.float64)],
)
def test_conv2d_mixed_float_dtypes_rejected_like_torch(x_dtype, w_dtype, b_dtype):
    rng = np.random.default_rng(2)
    x = random_array(rng, (1, 2, 5, 5), x_dtype)
    w = random_array(rng, (3, 2, 3, 3), w_dtype)
    b = None if b_dtype is None else random_array(rng, (3,), b_dtype)
    assert check_functional("conv2d", x, w, b).rejected


# ------------------------------------------------------------------------ max_pool2d
@st.composite
def max_pool_configs(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    if draw(st.booleans()):
        sh, sw = kh, kw
        stride = None
    else:
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = _arg(draw, sh, sw)
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 12))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 12))
    # windows made only of padding give -inf in torch: not a meaningful comparison
    assume(pool_windows_touch_input(h, kh, sh, ph, dh, ceil_mode))
    assume(pool_windows_touch_input(w, kw, sw, pw, dw, ceil_mode))
    x_shape = _input_shape(draw, draw(st.integers(1, 4)), h, w)
    kwargs = _kwargs(
        stride=stride,
        padding=_arg(draw, ph, pw, 0),
        dilation=_arg(draw, dh, dw, 1),
        ceil_mode=ceil_mode if ceil_mode or draw(st.booleans()) else None,
        return_indices=draw(st.sampled_from([None, False, True, True])),
    )
    kernel = _arg(draw, kh, kw)
    return x_shape, kernel, kwargs, draw(FLOAT_DTYPES), draw(seeds)


@SETTINGS
@given(max_pool_configs())
def test_max_pool2d_matches_torch(cfg):
    _assert_accepted(_check_pool("max_pool2d", distinct_array, cfg))  # no ties


@st.composite
def free_max_pool_configs(draw):
    (kh, kw), stride, (sh, sw), (ph, pw) = _free_pool_window(draw)
    dh, dw = _free_int(draw, 1, 2, [0]), _free_int(draw, 1, 2, [0])
    ceil_mode = draw(st.booleans())
    h, w = _free_size(draw, dh * (kh - 1) + 1, ph), _free_size(draw, dw * (kw - 1) + 1, pw)
    if min(kh, kw, sh, sw, dh, dw) >= 1 and min(ph, pw) >= 0:
        for size, k, s, p, d in ((h, kh, sh, ph, dh), (w, kw, sw, pw, dw)):
            if pool_out_len(size, k, s, p, d, ceil_mode) >= 1:
                # windows made only of padding give -inf in torch: not compared
                assume(pool_windows_touch_input(size, k, s, p, d, ceil_mode))
    x_shape = _free_pool_input_shape(draw, h, w)
    kwargs = {"stride": stride, "padding": (ph, pw), "dilation": (dh, dw), "ceil_mode": ceil_mode,
              "return_indices": draw(st.booleans())}
    return x_shape, (kh, kw), kwargs, draw(FLOAT_DTYPES), draw(seeds)


@FREE_SETTINGS
@given(free_max_pool_configs())
def test_max_pool2d_any_config_accepted_or_rejected_like_torch(cfg):
    _note_verdict(_check_pool("max_pool2d", distinct_array, cfg))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, args, kwargs",
    [
        ((1, 1, 4, 4), (2,), {}),
        ((2, 3, 5, 5), (2,), {"ceil_mode": True}),  # partial last window kept
        ((1, 1, 5, 5), (2,), {"stride": 2, "padding": 1, "ceil_mode": True}),
        ((1, 1, 6, 6), (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),  # window dropped
        ((1, 2, 7, 9), ((3, 2),), {"stride": (2, 1), "dilation": (2, 3)}),
        ((1, 1, 7, 7), (3,), {"stride": 1, "padding": 1, "dilation": 2, "ceil_mode": True}),
        ((3, 6, 6), (2, 1), {}),  # unbatched, stride given positionally
        ((1, 1, 1, 1), (1,), {}),
        ((1, 1, 3, 2), ((3, 2),), {}),  # kernel == input
        ((2, 3, 5, 5), (2,), {"ceil_mode": True, "return_indices": True}),
        ((1, 2, 7, 9), ((3, 2),), {"stride": (2, 1), "dilation": (2, 3), "padding": (1, 1),
                                   "return_indices": True}),
        ((3, 6, 6), (3, 2, 1, 1, False, True), {}),  # unbatched, all positional
    ],
)
def test_max_pool2d_fixed_cases(x_shape, args, kwargs, dtype):
    x = distinct_array(np.random.default_rng(3), x_shape, dtype)
    assert not check_functional("max_pool2d", x, *args, **kwargs).rejected


# ------------------------------------------------------------------------ avg_pool2d
@st.composite
def avg_pool_configs(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    if draw(st.booleans()):
        stride = None
    else:
        stride = _arg(draw, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, kh - 2 * ph), 12))
    w = draw(st.integers(max(1, kw - 2 * pw), 12))
    x_shape = _input_shape(draw, draw(st.integers(1, 4)), h, w)
    ceil_mode = draw(st.booleans())
    count_include_pad = draw(st.booleans())
    divisor = draw(st.one_of(st.none(), st.integers(1, 5)))
    kwargs = _kwargs(
        stride=stride,
        padding=_arg(draw, ph, pw, 0),
        ceil_mode=ceil_mode if ceil_mode or draw(st.booleans()) else None,
        count_include_pad=(count_include_pad
                           if not count_include_pad or draw(st.booleans()) else None),
        divisor_override=divisor,
    )
    return x_shape, _arg(draw, kh, kw), kwargs, draw(FLOAT_DTYPES), draw(seeds)


@SETTINGS
@given(avg_pool_configs())
def test_avg_pool2d_matches_torch(cfg):
    _assert_accepted(_check_pool("avg_pool2d", random_array, cfg))


@st.composite
def free_avg_pool_configs(draw):
    (kh, kw), stride, _, (ph, pw) = _free_pool_window(draw)
    h, w = _free_size(draw, kh, ph), _free_size(draw, kw, pw)
    x_shape = _free_pool_input_shape(draw, h, w)
    kwargs = {
        "stride": stride,
        "padding": (ph, pw),
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
        "divisor_override": _free_int(draw, 1, 3, [0]) if draw(st.booleans()) else None,
    }
    return x_shape, (kh, kw), kwargs, draw(FLOAT_DTYPES), draw(seeds)


@FREE_SETTINGS
@given(free_avg_pool_configs())
def test_avg_pool2d_any_config_accepted_or_rejected_like_torch(cfg):
    _note_verdict(_check_pool("avg_pool2d", random_array, cfg))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, args, kwargs",
    [
        ((1, 1, 4, 4), (2,), {}),
        ((2, 3, 5, 5), (2,), {"ceil_mode": True}),
        ((1, 1, 5, 5), (3,), {"stride": 2, "padding": 1}),
        ((1, 1, 5, 5), (3,), {"stride": 2, "padding": 1, "count_include_pad": False}),
        ((1, 1, 6, 6), (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
        ((1, 1, 6, 6), (3,), {"stride": 2, "padding": 1, "ceil_mode": True,
                              "count_include_pad": False}),
        ((1, 1, 5, 5), (2,), {"ceil_mode": True, "divisor_override": 3}),
        ((1, 2, 7, 5), ((3, 2),), {"stride": (2, 1), "padding": (1, 1),
                                   "divisor_override": 1}),
        ((3, 6, 6), (2, 1), {}),  # unbatched, stride positional
        ((1, 1, 1, 1), (1,), {}),
    ],
)
def test_avg_pool2d_fixed_cases(x_shape, args, kwargs, dtype):
    x = random_array(np.random.default_rng(4), x_shape, dtype)
    assert not check_functional("avg_pool2d", x, *args, **kwargs).rejected


INT_POOL_CASES = [
    ("max_pool2d", np.int64, (2,), {}),
    ("max_pool2d", np.int32, (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
    ("max_pool2d", np.int64, ((2, 3),), {"dilation": (2, 1), "padding": (1, 0)}),
    ("avg_pool2d", np.int64, (2,), {"ceil_mode": True}),
    ("avg_pool2d", np.int64, (3,), {"stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg_pool2d", np.int64, (3,), {"stride": 1, "padding": 1}),
    ("avg_pool2d", np.int64, (2,), {"divisor_override": 3}),
]


@pytest.mark.parametrize("op, dtype, args, kwargs", INT_POOL_CASES)
def test_integer_pooling_matches_torch(op, dtype, args, kwargs):
    """Integer inputs keep their dtype; integer average truncates toward zero (as torch)."""
    x = np.random.default_rng(7).integers(-20, 21, size=(2, 2, 7, 6)).astype(dtype)
    assert not check_functional(op, x, *args, **kwargs).rejected


# ------------------------------------------------- fixed configurations torch rejects
_X = (1, 2, 6, 6)
REJECTED = [
    # pooling: padding <= kernel_size / 2 is required on the *raw* kernel size as well as
    # on the dilated one (torch checks both)
    ("max_pool2d", [_X], (3,), {"padding": 2, "dilation": 2}),
    ("max_pool2d", [(2, 1, 1)], ((3, 1),), {"stride": 1, "padding": (2, 0),
                                            "dilation": (2, 1)}),
    ("max_pool2d", [_X], (3,), {"padding": 2}),
    ("max_pool2d", [_X], (2,), {"stride": 0}),
    ("max_pool2d", [_X], (0,), {"stride": 1}),
    ("max_pool2d", [_X], (2,), {"dilation": 0}),
    ("max_pool2d", [_X], (2,), {"padding": -1}),
    ("max_pool2d", [(1, 1, 2, 2)], (3,), {}),  # output size 0
    ("max_pool2d", [(6, 6)], (2,), {}),  # 2-D input
    ("avg_pool2d", [_X], (3,), {"padding": 2}),
    ("avg_pool2d", [_X], ((2, 4),), {"padding": (1, 3)}),
    ("avg_pool2d", [_X], (2,), {"stride": 0}),
    ("avg_pool2d", [_X], (2,), {"divisor_override": 0}),
    ("avg_pool2d", [(1, 1, 2, 2)], (3,), {}),
    ("conv2d", [_X, (3, 2, 7, 3)], (), {}),  # kernel taller than the input
    ("conv2d", [_X, (3, 2, 5, 3)], (), {"dilation": 2}),
    ("conv2d", [_X, (3, 1, 3, 3)], (), {}),  # channel mismatch
    ("conv2d", [_X, (3, 1, 3, 3)], (), {"groups": 2}),  # C_out not divisible by groups
    ("conv2d", [(1, 3, 6, 6), (2, 1, 3, 3)], (), {"groups": 2}),
    ("conv2d", [_X, (3, 2, 3, 3)], (), {"stride": 0}),
    ("conv2d", [_X, (3, 2, 3, 3)], (), {"padding": -1}),
    ("conv2d", [_X, (3, 2, 3, 3)], (), {"dilation": 0}),
    ("conv2d", [_X, (3, 2, 3, 3)], (), {"groups": 0}),
    ("conv2d", [_X, (3, 2, 3, 3), (2,)], (), {}),  # bias of the wrong length
    ("conv2d", [(6, 6), (3, 2, 3, 3)], (), {}),
    ("conv2d", [_X, (3, 2, 3)], (), {}),
]


@pytest.mark.parametrize("op, shapes, args, kwargs", REJECTED)
def test_configs_rejected_like_torch(op, shapes, args, kwargs):
    rng = np.random.default_rng(6)
    arrays = [distinct_array(rng, s, np.float64) for s in shapes]
    res = check_functional(op, *arrays, *args, **kwargs)
    assert res.rejected  # by torch (the helper then demands that corrnet rejects it too)


# --------------------------------------------------------------------------- corr2d
def _torch_corr2d(X, K):
    """Oracle: conv2d (a cross-correlation) on (1, 1, H, W) views, in the promoted dtype."""
    dtype = tt.promote_types(X.dtype, K.dtype)
    return tF.conv2d(X.to(dtype)[None, None], K.to(dtype)[None, None])[0, 0]


NUMERIC_DTYPES = [np.int32, np.int64, np.float32, np.float64]


@SETTINGS
@given(
    xh=st.integers(1, 9), xw=st.integers(1, 9), kh=st.integers(1, 5), kw=st.integers(1, 5),
    x_dtype=st.sampled_from(NUMERIC_DTYPES), k_dtype=st.sampled_from(NUMERIC_DTYPES),
    seed=seeds,
)
def test_corr2d_matches_torch(xh, xw, kh, kw, x_dtype, k_dtype, seed):
    """Values, dtype promotion and gradients; a kernel larger than X must be rejected."""
    rng = np.random.default_rng(seed)
    X = random_array(rng, (xh, xw), x_dtype, -5, 5)
    K = random_array(rng, (kh, kw), k_dtype, -5, 5)
    res = check_op(ct.corr2d, _torch_corr2d, [X, K], seed=seed,
                   name=f"corr2d({X.shape} {X.dtype}, {K.shape} {K.dtype})")
    assert res.rejected == (kh > xh or kw > xw)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_corr2d_integer_matches_scipy(dtype):
    rng = np.random.default_rng(5)
    for xh, xw, kh, kw in [(3, 3, 2, 2), (6, 8, 3, 1), (5, 5, 5, 5), (7, 4, 2, 3), (1, 9, 1, 4)]:
        X = rng.integers(-9, 10, size=(xh, xw)).astype(dtype)
        K = rng.integers(-9, 10, size=(kh, kw)).astype(dtype)
        out = ct.corr2d(ct.tensor(X), ct.tensor(K))
        expected = scipy.signal.correlate2d(X.astype(np.int64), K.astype(np.int64),
                                            mode="valid")
        assert str(out.dtype).rsplit(".", 1)[-1] == np.dtype(dtype).name
        np.testing.assert_array_equal(out.numpy(), expected.astype(dtype))


def test_corr2d_d2l_example():
    """The classic example: X = 0..8 reshaped 3x3, K = 0..3 reshaped 2x2."""
    X = ct.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = ct.tensor([[0.0, 1.0], [2.0, 3.0]])
    out = ct.corr2d(X, K)
    np.testing.assert_allclose(out.numpy(), [[19.0, 25.0], [37.0, 43.0]])
    assert str(out.dtype).rsplit(".", 1)[-1] == "float32"


def test_as_pair_helper_sanity():
    # guards the geometry helpers used to build valid configurations above
    assert as_pair(3) == (3, 3) and as_pair((1, 2)) == (1, 2)
    for size in range(1, 10):
        for k in range(1, 4):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    for ceil in (False, True):
                        x = tt.zeros(1, 1, size, size)
                        try:
                            out = tF.max_pool2d(x, k, s, p, 1, ceil)
                        except RuntimeError:
                            assert pool_out_len(size, k, s, p, 1, ceil) < 1
                            continue
                        assert out.shape[-1] == pool_out_len(size, k, s, p, 1, ceil)
