"""Oracle tests: unfold / fold (and nn.Unfold / nn.Fold) and pad against PyTorch.

Every comparison goes through `helpers.check_op` (via `check_functional` / `check_module`):
values, shapes, dtypes, gradients and the verdict (corrnet must reject what torch rejects).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt
from hypothesis import assume, given
from hypothesis import strategies as st

import corrnet as ct

from torch_compare import seeds

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import (
        assert_accepted,
        check_functional,
        check_module,
        conv_out_len,
        drop_none,
        free_int,
        int_or_pair,
        note_verdict,
        oracle_settings,
        random_array,
        rarely,
    )
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import (
        assert_accepted,
        check_functional,
        check_module,
        conv_out_len,
        drop_none,
        free_int,
        int_or_pair,
        note_verdict,
        oracle_settings,
        random_array,
        rarely,
    )

FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])
OTHER_DTYPES = st.sampled_from([np.bool_, np.uint8, np.uint16, np.int64])


@st.composite
def window_knobs(draw, free: bool):
    """kernel (kh, kw), dilation, padding, stride; free: any of them may be invalid."""
    if free:
        k = (free_int(draw, 1, 4, [0, -1]), free_int(draw, 1, 4, [0]))
        d = (free_int(draw, 1, 2, [0]), free_int(draw, 1, 2, [0, -1]))
        p = (free_int(draw, 0, 2, [-1]), free_int(draw, 0, 2, [-1]))
        s = (free_int(draw, 1, 3, [0, -1]), free_int(draw, 1, 3, [0]))
    else:
        k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return k, d, p, s


def _window_kwargs(draw, d, p, s):
    return drop_none(
        dilation=None if d == (1, 1) and draw(st.booleans()) else int_or_pair(draw, *d),
        padding=None if p == (0, 0) and draw(st.booleans()) else int_or_pair(draw, *p),
        stride=None if s == (1, 1) and draw(st.booleans()) else int_or_pair(draw, *s),
    )


# --------------------------------------------------------------------------- unfold
@st.composite
def unfold_configs(draw, free: bool = False):
    k, d, p, s = draw(window_knobs(free))
    h, w = [draw(st.integers(1, 9)) if free else
            draw(st.integers(max(1, dd * (kk - 1) + 1 - 2 * pp), 10))
            for kk, dd, pp in zip(k, d, p, strict=True)]
    c = draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    if free and rarely(draw):
        # an empty dimension: the batch may be (F.unfold of (0, 1, 5, 2) crashed in NumPy's
        # reshape), the others are refused (fuzz, seed 20261208)
        n, c, h, w = [0 if i == draw(st.integers(0, 3)) else v for i, v in enumerate((n, c, h, w))]
    rank = draw(st.sampled_from([2, 5])) if free and rarely(draw) else draw(st.sampled_from([3, 4]))
    x_shape = {2: (h, w), 3: (c, h, w), 4: (n, c, h, w), 5: (1, 1, c, h, w)}[rank]
    return x_shape, int_or_pair(draw, *k), _window_kwargs(draw, d, p, s), draw(
        FLOAT_DTYPES), draw(seeds)


@oracle_settings(120)
@given(unfold_configs())
def test_unfold_matches_torch(cfg):
    x_shape, k, kwargs, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    assert_accepted(check_functional("unfold", x, k, seed=seed, **kwargs))


@oracle_settings(80)
@given(unfold_configs(free=True))
def test_unfold_any_config_accepted_or_rejected_like_torch(cfg):
    x_shape, k, kwargs, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    note_verdict(check_functional("unfold", x, k, seed=seed, **kwargs))


# ----------------------------------------------------------------------------- fold
@st.composite
def fold_configs(draw, free: bool = False):
    k, d, p, s = draw(window_knobs(free))
    out = [draw(st.integers(max(1, dd * (kk - 1) + 1 - 2 * pp) if not free else 1, 10))
           for kk, dd, pp in zip(k, d, p, strict=True)]
    if min(k + d + s) >= 1 and min(p) >= 0:
        blocks = [conv_out_len(o, kk, ss, pp, dd)
                  for o, kk, ss, pp, dd in zip(out, k, s, p, d, strict=True)]
    else:
        blocks = [draw(st.integers(1, 4)), draw(st.integers(1, 4))]
    if not free:
        assume(min(blocks) >= 1)
    length = max(0, blocks[0]) * max(0, blocks[1])
    c = draw(st.integers(1, 3))
    rows = c * max(k[0], 1) * max(k[1], 1)
    if free and rarely(draw):
        length = max(0, length + draw(st.sampled_from([-1, 1])))
    if free and rarely(draw):
        rows += 1  # not a multiple of kh * kw
    n = draw(st.integers(1, 3))
    if free and rarely(draw):   # an empty dimension: only the batch may be
        n, rows, length = [0 if i == draw(st.integers(0, 2)) else v
                           for i, v in enumerate((n, rows, length))]
    rank = draw(st.sampled_from([1, 4])) if free and rarely(draw) else draw(st.sampled_from([2, 3]))
    x_shape = {1: (rows * length,), 2: (rows, length), 3: (n, rows, length),
               4: (1, 1, rows, length)}[rank]
    output_size = int_or_pair(draw, *out)
    if free and rarely(draw):
        output_size = (out[0],) * draw(st.sampled_from([1, 3]))
    return (x_shape, output_size, int_or_pair(draw, *k), _window_kwargs(draw, d, p, s),
            draw(FLOAT_DTYPES), draw(seeds))


@oracle_settings(120)
@given(fold_configs())
def test_fold_matches_torch(cfg):
    x_shape, output_size, k, kwargs, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    assert_accepted(check_functional("fold", x, output_size, k, seed=seed, **kwargs))


@oracle_settings(80)
@given(fold_configs(free=True))
def test_fold_any_config_accepted_or_rejected_like_torch(cfg):
    x_shape, output_size, k, kwargs, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    note_verdict(check_functional("fold", x, output_size, k, seed=seed, **kwargs))


@oracle_settings(80)
@given(st.data())
def test_unfold_fold_modules_match_torch(data):
    if data.draw(st.booleans()):
        x_shape, k, kwargs, dtype, seed = data.draw(unfold_configs())
        x = random_array(np.random.default_rng(seed), x_shape, dtype)
        assert_accepted(check_module("Unfold", (k,), kwargs, [x], dtype=dtype, seed=seed))
    else:
        x_shape, output_size, k, kwargs, dtype, seed = data.draw(fold_configs())
        x = random_array(np.random.default_rng(seed), x_shape, dtype)
        assert_accepted(check_module("Fold", (output_size, k), kwargs, [x], dtype=dtype,
                                     seed=seed))


@pytest.mark.parametrize("shape", [(0, 1, 5, 2), (1, 0, 5, 2), (1, 1, 0, 2), (0, 5, 2),
                                   (0, 0, 5, 2)])
def test_unfold_empty_dimensions_as_torch(shape):
    """Only the batch may be empty: (0, 1, 5, 2) gives (0, 6, 5), the others are refused."""
    check_functional("unfold", np.zeros(shape, np.float32), (3, 2), padding=(1, 0))


@pytest.mark.parametrize("shape", [(0, 4, 4), (1, 0, 4), (1, 4, 0), (0, 0, 4), (4, 0), (0, 4)])
def test_fold_empty_dimensions_as_torch(shape):
    check_functional("fold", np.zeros(shape, np.float32), (3, 3), 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unfold_then_fold_fixed_cases(dtype):
    rng = np.random.default_rng(10)
    for x_shape, k, kwargs in [((1, 2, 5, 6), 2, {}),
                               ((2, 1, 7, 7), (3, 2), {"dilation": (2, 1), "padding": 1,
                                                       "stride": (2, 3)}),
                               ((3, 4, 4), 4, {"padding": 2, "stride": 4})]:
        x = random_array(rng, x_shape, dtype)
        res = assert_accepted(check_functional("unfold", x, k, **kwargs))
        cols = res.torch_outputs[0].detach().numpy().copy()
        assert_accepted(check_functional("fold", cols, x_shape[-2:], k, **kwargs))


# ------------------------------------------------------------------------------ pad
@st.composite
def pad_configs(draw):
    """Any mode, rank and pad tuple (asymmetric, negative = cropping, larger than the input):
    a "free" strategy, torch's verdict decides (e.g. reflect needs pad < size)."""
    mode = draw(st.sampled_from(["constant", "constant", "reflect", "replicate", "circular"]))
    if mode == "constant":
        rank = draw(st.integers(1, 5))
        n_pad = draw(st.integers(1, rank))
    else:
        n_pad = draw(st.integers(1, 3))
        rank = n_pad + draw(st.sampled_from([1, 2])) if not rarely(draw) else draw(
            st.integers(1, 5))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(rank - min(rank, n_pad))) + tuple(
        draw(st.integers(1, 6)) for _ in range(min(rank, n_pad)))
    pads = []
    for dim in range(n_pad):
        size = shape[-1 - dim] if dim < rank else 1
        for _ in range(2):
            if mode == "constant":
                pads.append(draw(st.integers(-size, 3)))
            elif rarely(draw):
                # crops, and pads past the size: with the other side cropping, more padding
                # on one side than the cells left (replicate (2, -2) on one cell)
                pads.append(draw(st.integers(-size, size + 2)))
            else:
                pads.append(draw(st.integers(0, max(0, size - 1))))
    kwargs = {}
    if draw(st.booleans()):
        kwargs["mode"] = mode
    elif mode != "constant":
        kwargs["mode"] = mode
    if mode == "constant" and draw(st.booleans()):
        kwargs["value"] = draw(st.sampled_from([0.0, 1.5, -2.0, 3]))
    if mode == "circular":
        # cropping one side and wrapping on the other by more than what is left: torch is
        # inconsistent (it may return the values, raise a memory-overlap error, or return
        # uninitialized memory); corrnet refuses it always. Not compared.
        for dim in range(min(n_pad, rank)):
            before, after = pads[2 * dim], pads[2 * dim + 1]
            left = shape[-1 - dim] - max(-before, 0) - max(-after, 0)
            assume(not (min(before, after) < 0 and max(before, after) > left))
    pad = tuple(pads) if draw(st.booleans()) else list(pads)
    # now and then an integer or bool input: PyTorch has no bool or uint16 kernel for reflect
    # and replicate (the fuzz found corrnet padding a bool input)
    dtype = draw(OTHER_DTYPES) if rarely(draw) else draw(FLOAT_DTYPES)
    return shape, pad, kwargs, dtype, draw(seeds)


@oracle_settings(250)
@given(pad_configs())
def test_pad_matches_torch(cfg):
    shape, pad, kwargs, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), shape, dtype)
    note_verdict(check_functional("pad", x, pad, seed=seed, **kwargs))


@pytest.mark.parametrize(
    "shape, pad, kwargs",
    [
        ((1, 1, 4, 5), (1, 2, 0, 3), {}),  # asymmetric
        ((1, 1, 4, 5), (1, 2, 0, 3), {"value": -1.5}),
        ((2, 3, 4, 5), (-1, 0, 2, -2), {"mode": "constant"}),  # negative pads crop
        ((3, 4), (-2, -2), {"value": 7.0}),
        ((2, 5), (-3, -2), {}),  # cropped to nothing
        ((1, 2, 4, 5), (3, 1, 2, 3), {"mode": "reflect"}),
        ((1, 2, 4, 5), (4, 1, 2, 3), {"mode": "reflect"}),  # pad == size: refused
        ((2, 4, 5), (4, 0, 1, 3), {"mode": "replicate"}),
        ((2, 4, 5), (5, 2, 4, 1), {"mode": "circular"}),
        ((1, 1, 4, 5), (6, 0, 0, 0), {"mode": "circular"}),  # more than the size
        ((1, 3, 6), (2, 5), {"mode": "replicate"}),
        ((1, 3, 6), (-1, 2), {"mode": "circular"}),
        ((1, 1, 1), (3, 4, 2, -2), {"mode": "replicate"}),  # 2 rows padded, 2 cropped
        ((1, 2, 3), (4, -3), {"mode": "replicate"}),  # padding past the cropped-out cells
        ((2, 2, 3, 4, 5), (1, 0, 2, 1, 0, 2), {"mode": "reflect"}),
        ((2, 3), (1, 1, 1, 1), {"mode": "reflect"}),  # unsupported rank: torch refuses
        ((1, 1, 3, 3), (1, 1, 1), {}),  # odd pad length
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pad_fixed_cases(shape, pad, kwargs, dtype):
    x = random_array(np.random.default_rng(11), shape, dtype)
    check_functional("pad", x, pad, **kwargs)


def test_pad_integer_input_constant_value_like_torch():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    for kwargs in ({}, {"value": 5}, {"mode": "replicate"}, {"mode": "circular"}):
        check_functional("pad", x, (1, 2), **kwargs)  # values and dtype, or the refusal


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.uint16, np.int8, np.int64])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_bool_and_integer_inputs_every_mode_like_torch(mode, dtype):
    """bool and uint16 inputs: padded by constant and circular, refused by reflect and
    replicate (no PyTorch kernel), as PyTorch; the other integers padded by every mode."""
    x = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    check_functional("pad", x, (1, 2), mode=mode)


@pytest.mark.parametrize("value", [(), (1,), [1.0], "1", None, 1, True, 2.5, np.float32(3),
                                   float("nan"), float("-inf")])
def test_pad_value_types_as_torch(value):
    """value is a number or None: a tuple, list or string is PyTorch's TypeError (an empty
    tuple crashed in NumPy's broadcast, "1" padded with ones: fuzz, seed 20261210)."""
    seen = []
    for library in (tt, ct):
        try:
            seen.append(library.nn.functional.pad(library.ones(2, 3), (1, 1), value=value)
                        .numpy())
        except Exception as error:  # the refusals are compared by type
            seen.append(type(error))
    expected, got = seen
    if isinstance(expected, type) or isinstance(got, type):
        assert got is expected, (value, expected, got)
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", ["float16", "float32", "uint8", "int8", "int64", "bool"])
@pytest.mark.parametrize("value", [70000.0, 1e39, -2.0, -2, 300, 2.7, -2.7, 0.5, float("nan"),
                                   float("inf"), 255, True])
@pytest.mark.parametrize("pad", [(0, 1), (0, 0), (-1, 0), (-1, 1)])
def test_pad_value_converted_to_the_dtype_as_torch(dtype, value, pad):
    """The value is converted to the input's dtype where something is padded, refused where
    it does not fit (uint8 with -2.0 raised NumPy's OverflowError, even where nothing was
    padded: the widened strategy above found it)."""
    seen = []
    for library in (tt, ct):
        try:
            x = library.ones(3, dtype=getattr(library, dtype))
            seen.append(str(library.nn.functional.pad(x, pad, value=value).tolist()))
        except Exception as error:  # the refusals are compared by type
            seen.append(type(error))
    assert seen[1] == seen[0], (dtype, value, pad, seen)
