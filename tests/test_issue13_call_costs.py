"""Issue 13: what a call costs before its kernel runs, and the compiled kernels' shared pieces.

* `F.conv2d` keeps the window of arguments that passed its checks (`functional._CHECKED`): a
  call again with the same shapes, dtypes and arguments skips them, so the cache must never
  let through what the checks would refuse, nor change a result.
* `jit.inline` helpers (plain Python functions that kernels call, LLVM inlining them) and the
  intrinsics `simd.fma`, `simd.float32_from_bits` and `simd.add_lanes`, against their plain
  equivalents.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import corrnet
from corrnet import functional as CF
from corrnet.kernels import activation, jit, simd
from corrnet.nn import functional as F

COMPILED = pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")


@pytest.fixture
def conv_args():
    rng = np.random.default_rng(0)
    x = corrnet.tensor(rng.standard_normal((2, 4, 9, 8)).astype(np.float32))
    weight = corrnet.tensor(rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    bias = corrnet.tensor(rng.standard_normal(6).astype(np.float32))
    return x, weight, bias


def _torch(*tensors):
    return [None if t is None else torch.from_numpy(t.numpy()) for t in tensors]


@pytest.mark.parametrize("conv", ["conv2d", "conv1d"])
def test_issue13_checked_arguments_give_the_same_results(conv_args, conv):
    """The second and third calls (the checks skipped) equal the first and torch's, for
    every form of the arguments that the checks accept; other shapes are checked anew."""
    x, weight, bias = conv_args
    if conv == "conv1d":
        x, weight = x[:, :, 0], weight[:, :, 0]
    ours, theirs = getattr(F, conv), getattr(torch.nn.functional, conv)
    for kwargs in ({}, {"stride": 2, "padding": 1, "groups": 2},
                   {"stride": (2,) * (x.dim() - 2), "padding": "same", "dilation": 1},
                   {"padding": "valid", "groups": 2}):
        if kwargs.get("padding") == "same":
            kwargs = {k: v for k, v in kwargs.items() if k != "stride"}
        groups = kwargs.get("groups", 1)
        w = weight if groups == 2 else weight.repeat(1, 2, *(1,) * (weight.dim() - 2))
        expected = theirs(*_torch(x, w, bias), **kwargs).numpy()
        for _ in range(3):
            np.testing.assert_allclose(ours(x, w, bias, **kwargs).numpy(), expected,
                                       rtol=1e-5, atol=1e-5)
    smaller = x[:1]
    np.testing.assert_allclose(ours(smaller, weight, bias, groups=2).numpy(),
                               theirs(*_torch(smaller, weight, bias), groups=2).numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change, error, match", [
    (dict(stride=True), TypeError, "stride must be an int"),
    (dict(stride=[1, 1]), None, None),
    (dict(padding=np.array([1, 1])), TypeError, "padding must be"),
    (dict(padding="full"), RuntimeError, "padding must be an int, a tuple, 'valid' or 'same'"),
    (dict(groups=True), RuntimeError, "groups must be a positive integer"),
    (dict(bias="wrong shape"), RuntimeError, r"expected bias of shape \(6,\)"),
    (dict(bias="float64"), RuntimeError, "must have the same dtype"),
    (dict(weight="float64"), RuntimeError, "must have the same dtype"),
    (dict(x="no channels"), RuntimeError, "input has 3 channels"),
])
def test_issue13_checked_arguments_still_refuse_what_the_checks_refuse(conv_args, change,
                                                                         error, match):
    """A call that passed the checks, then one that differs in one argument: refused as on a
    first call (a bool is not an int, though it hashes as one), or, for a list that the
    checks accept, the same result."""
    x, weight, bias = conv_args
    kwargs = dict(stride=1, padding=1, groups=2)
    expected = F.conv2d(x, weight, bias, **kwargs)
    F.conv2d(x, weight, bias, **kwargs)         # (the second call skips the checks)
    arguments = dict(x=x, weight=weight, bias=bias, **kwargs)
    for name, value in change.items():
        if isinstance(value, str) and value == "wrong shape":
            value = corrnet.zeros(5)
        elif isinstance(value, str) and value == "float64":
            value = arguments[name].double()
        elif isinstance(value, str) and value == "no channels":
            value = x[:, :3]
        arguments[name] = value
    x, weight, bias = arguments.pop("x"), arguments.pop("weight"), arguments.pop("bias")
    if error is None:
        np.testing.assert_array_equal(F.conv2d(x, weight, bias, **arguments).numpy(),
                                      expected.numpy())
        return
    for _ in range(2):
        with pytest.raises(error, match=match):
            F.conv2d(x, weight, bias, **arguments)


def test_issue13_checked_arguments_are_bounded(conv_args, monkeypatch):
    """At most CHECKED_MAX windows are kept; then the table starts again."""
    x, weight, bias = conv_args
    monkeypatch.setattr(CF, "_CHECKED", {})
    monkeypatch.setattr(CF, "CHECKED_MAX", 3)
    for padding in range(5):
        F.conv2d(x, weight, bias, padding=padding, groups=2)
        assert 1 <= len(CF._CHECKED) <= 3


@COMPILED
def test_issue13_simd_fma_and_float32_from_bits_against_their_plain_equivalents():
    """fma rounds a * b + c once (float32 and float64); float32_from_bits reads an int32's
    bits as a float32 (2**k from (k + 127) << 23, and any other pattern)."""
    numba = jit.load_numba()

    @numba.njit
    def fused(a, b, c, out):
        for i in range(a.size):
            out[i] = simd.fma(a[i], b[i], c[i])

    @numba.njit
    def from_bits(bits, out):
        for i in range(bits.size):
            out[i] = simd.float32_from_bits(bits[i])

    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        a, b, c = (rng.standard_normal(1000).astype(dtype) for _ in range(3))
        out = np.empty_like(a)
        fused(a, b, c, out)
        expected = np.array([simd.fma_reference(*abc) for abc in zip(a, b, c, strict=True)])
        np.testing.assert_array_equal(out, expected) if dtype == np.float32 else \
            np.testing.assert_allclose(out, a * b + c, rtol=1e-15, atol=1e-15)
    # one rounding, not two: a product whose low bits a separate rounding would lose
    third = np.float32(1 + 2**-12)
    out = np.empty(1, np.float32)
    fused(np.array([third]), np.array([third]), np.array([np.float32(-1 - 2**-11)]), out)
    assert out[0] == np.float32(2**-24)
    bits = np.concatenate([(np.arange(-126, 128, dtype=np.int32) + 127) << 23,
                           rng.integers(-2**31, 2**31, 1000, dtype=np.int64).astype(np.int32)])
    out = np.empty(bits.size, np.float32)
    from_bits(bits, out)
    np.testing.assert_array_equal(out.view(np.int32), bits)
    np.testing.assert_array_equal(out[:254], 2.0 ** np.arange(-126, 128))
    assert simd.float32_from_bits_reference(np.int32(127 << 23)) == np.float32(1.0)


@COMPILED
def test_issue13_simd_add_lanes_against_its_plain_equivalent():
    """add_lanes adds one vector of sums into wider (or equal) totals at any offset, each
    number converted first: float32 into float64 exactly as NumPy's conversion and add, and
    the numbers around the vector untouched."""
    numba = jit.load_numba()

    @numba.njit
    def add(totals, at, sums, sums_at):
        simd.add_lanes(totals, at, sums, sums_at)

    rng = np.random.default_rng(3)
    for totals_dtype, sums_dtype in ((np.float64, np.float32), (np.float64, np.float64),
                                     (np.float32, np.float32)):
        lanes = simd.lanes_of(sums_dtype)
        sums = (rng.standard_normal(3 * lanes) * 1e3).astype(sums_dtype)
        for at, sums_at in ((0, 0), (5, 3), (2 * lanes + 1, 2 * lanes)):
            totals = rng.standard_normal(4 * lanes).astype(totals_dtype)
            original, expected = totals.copy(), totals.copy()
            expected[at:at + lanes] += sums[sums_at:sums_at + lanes].astype(totals_dtype)
            add(totals, at, sums, sums_at)
            np.testing.assert_array_equal(totals, expected)
            inside = np.zeros(totals.size, bool)
            inside[at:at + lanes] = True
            np.testing.assert_array_equal(totals[~inside], original[~inside])
            reference = original.copy()
            simd.add_lanes_reference(reference, at, sums, sums_at)
            np.testing.assert_array_equal(reference, expected)


@COMPILED
def test_issue13_inline_helpers_run_in_kernels_and_in_python():
    """An `inline` helper is the plain function from Python and a function of the kernels
    that call it (registered once numba is set up, or at once after): sigmoid_value within
    3 units in the last place of float64's sigmoid, as the compiled sigmoid pass computes it;
    a helper defined after numba's set-up is registered then."""
    numba = jit.load_numba()
    helper = jit.inline()(lambda value: value * 2.0 + 1.0)
    assert helper(3.0) == 7.0

    @numba.njit
    def twice_plus_one(values, out):
        for i in range(values.size):
            out[i] = helper(values[i])

    values = np.linspace(-3, 3, 101)
    out = np.empty_like(values)
    twice_plus_one(values, out)
    np.testing.assert_array_equal(out, values * 2 + 1)

    @numba.njit
    def sigmoid(values, out):
        for i in range(values.size):
            out[i] = activation.sigmoid_value(values[i])

    x = np.concatenate([np.linspace(-100, 100, 20001), [np.nan, np.inf, -np.inf]]).astype(
        np.float32)
    out = np.empty_like(x)
    sigmoid(x, out)
    with jit.use_compiled(True):
        np.testing.assert_array_equal(out, activation.sigmoid_forward(x))
    normal = x[:-3] > -87      # (below -88: 0, the docstring's flush of tiny results)
    exact = 1 / (1 + np.exp(-x[:-3][normal].astype(np.float64)))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert (np.abs(out[:-3][normal] - exact) <= 3 * ulp).all()
    assert (out[:-3][~normal] < 2e-38).all()
    assert np.isnan(out[-3]) and out[-2] == 1 and out[-1] == 0
