"""linspace against PyTorch: its values computed from both ends as PyTorch's loop computes
them, its refusals (an endpoint beyond the dtype's range, a bool dtype) and its edge cases
(0 or 1 steps, infinite endpoints), over hypothesis-drawn endpoints, lengths and dtypes;
and arange computed in pieces.

Found by the differential fuzz (seed 20261206): ``linspace(0, 70000, 3, dtype=float16)``
gave [0, 35008, inf] where PyTorch refuses the endpoint, and NumPy's formula differed from
PyTorch's in the last bit of one value in four (``linspace(0, 70000, 4)``'s third value).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch as tt
from hypothesis import given
from hypothesis import strategies as st

import corrnet as cn

corrnet_tensor = importlib.import_module("corrnet.tensor")   # (corrnet.tensor is the function)

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import oracle_settings
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import oracle_settings

DTYPES = ["float16", "float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]
# PyTorch's vectorized loop runs from two vectors of values (8 float64 numbers with AVX2,
# more otherwise): shorter sequences take its scalar loop, which corrnet follows exactly
SCALAR_STEPS = 8

ENDPOINT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(
        lambda v: math.ldexp(math.frexp(v)[0], max(-30, min(140, math.frexp(v)[1])))),
    st.integers(-300, 300),
    st.sampled_from([0.0, -0.0, 65504.0, 65519.0, 65520.0, -70000.0, 3.4e38, 3.5e38, 1e39,
                     math.inf, -math.inf, 2**24 + 1, True]),
)


def _run(library, start, end, steps, dtype):
    """linspace's values as a float64 array, or the exception type it raised."""
    try:
        return library.linspace(start, end, steps, dtype=getattr(library, dtype)).numpy()
    except Exception as error:  # the refusals are compared by type
        return type(error)


def _assert_same(start, end, steps, dtype):
    expected, got = _run(tt, start, end, steps, dtype), _run(cn, start, end, steps, dtype)
    where = f"linspace({start!r}, {end!r}, {steps}, dtype={dtype})"
    if isinstance(expected, type) or isinstance(got, type):
        assert expected is got, f"{where}: PyTorch {expected!r}, corrnet {got!r}"
        return
    assert got.dtype == expected.dtype and got.shape == expected.shape, where
    if steps < SCALAR_STEPS or expected.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected, err_msg=where)
        return
    # the vectorized loop adds the step to each vector's first value: within 2 units of the
    # last place of the largest value
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(got), finite, err_msg=where)
    if not finite.any():
        return
    unit = np.spacing(np.abs(expected[finite]).max())
    assert np.all(np.abs(got[finite].astype(np.float64) - expected[finite]) <= 2 * unit), where


@oracle_settings(300)
@given(start=ENDPOINT, end=ENDPOINT, steps=st.integers(0, 12) | st.integers(0, 2000),
       dtype=st.sampled_from(DTYPES))
def test_linspace_matches_torch(start, end, steps, dtype):
    _assert_same(start, end, steps, dtype)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("start, end", [
    (0, 70000.0), (-70000.0, 0), (0, 65519.0), (0, 65504.0), (0, 1e39), (3.5e38, 0),
    (0, math.inf), (-math.inf, math.inf), (0, 70000)])
@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4, 7])
def test_linspace_endpoints_beyond_the_dtype_are_refused_as_torch(start, end, steps, dtype):
    _assert_same(start, end, steps, dtype)


def test_linspace_overflow_error_names_the_dtype_and_the_value():
    with pytest.raises(RuntimeError, match=r"linspace\(\).*Half.*70000"):
        cn.linspace(0, 70000.0, 3, dtype=cn.float16)


@pytest.mark.parametrize("args, dtype", [
    ((0, 50), "int64"), ((1, 300, 3), "uint8"), ((-7, 40, 2), "int8"), ((0, 5, 0.125), "float32"),
    ((2.5, -3, -0.25), "float64"), ((0, 30, 0.5), "int32"), ((0.1, 7.3, 0.3), "float16")])
def test_arange_in_pieces_matches_torch(monkeypatch, args, dtype):
    """arange computes its values a piece at a time (a huge uint8 range took 8x its size in
    int64 first: fuzz, seed 20261210): pieces of 7 values give PyTorch's values exactly."""
    monkeypatch.setattr(corrnet_tensor, "_ARANGE_PIECE", 7)
    expected = tt.arange(*args, dtype=getattr(tt, dtype)).numpy()
    got = cn.arange(*args, dtype=getattr(cn, dtype)).numpy()
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
