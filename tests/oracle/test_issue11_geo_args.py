"""Issue 11, round 2: the argument parsing of convolution, pooling, padding, unfold/fold and
max_unpool against PyTorch 2.13 (fuzz classes 1, 8 and 9 and the pools' strictness).

Each call runs with torch and with corrnet: where torch raises, corrnet raises the same
exception type (a clear message from corrnet's own checks); where torch returns, corrnet
returns the same shape, dtype and values. A hypothesis strategy draws hostile arguments (ints
at the int32 and int64 limits, bools, floats, None, tuples of every length) for every window
op, the class of argument the fuzzer found and the earlier strategies never drew.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt
from hypothesis import given
from hypothesis import strategies as st

import corrnet as ct

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import oracle_settings, to_numpy
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import oracle_settings, to_numpy


def _outcome(lib, call):
    try:
        out = call(lib, lib.nn.functional)
    except Exception as error:  # noqa: BLE001 - the type is what is compared
        return error
    return out[0] if isinstance(out, tuple) else out


def assert_as_torch(call):
    """call(lib, F) raises the same exception type in both libraries, or returns the same
    shape, dtype and values; corrnet's errors come from its own checks (not NumPy's)."""
    expected, actual = _outcome(tt, call), _outcome(ct, call)
    if isinstance(expected, Exception):
        assert isinstance(actual, Exception), f"corrnet returned where torch raised {expected!r}"
        assert type(actual) is type(expected), f"torch {expected!r}, corrnet {actual!r}"
        frame = actual.__traceback__
        while frame.tb_next is not None:
            frame = frame.tb_next
        assert "corrnet" in frame.tb_frame.f_code.co_filename, f"raised outside corrnet: {actual!r}"
        return
    assert not isinstance(actual, Exception), f"corrnet raised {actual!r} where torch returned"
    assert tuple(actual.shape) == tuple(expected.shape)
    assert str(actual.dtype) == str(expected.dtype)
    np.testing.assert_allclose(to_numpy(actual).astype(np.float64),
                               to_numpy(expected).astype(np.float64), rtol=1e-5, atol=1e-5)


def _x(lib, shape, dtype="float32"):
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) % 7 - 3
    return lib.tensor(values).to(getattr(lib, dtype))


# ---------------------------------------------------------------------------------------------
# ints beyond int32 / int64 (fuzz class 1): PyTorch's pools and transposed convolution take
# C ints, its argument parser int64
# ---------------------------------------------------------------------------------------------

_HUGE = [2**31 - 1, 2**31, 2**32 + 1, 2**63, 10**20, (2**31, 1), (2**63, 1)]


@pytest.mark.parametrize("value", _HUGE, ids=str)
@pytest.mark.parametrize("op", [
    "conv2d_stride", "conv_transpose2d_stride", "conv_transpose2d_dilation",
    "conv_transpose1d_stride", "max_pool2d_stride", "max_pool2d_kernel", "max_pool2d_dilation",
    "avg_pool2d_stride", "avg_pool1d_stride", "max_pool1d_stride", "unfold_stride",
    "fold_stride", "max_unpool2d_stride",
])
def test_issue11_window_ops_take_ints_within_torchs_limits(op, value):
    """max_pool2d(stride=2**31) returned where torch refuses ('value cannot be converted to
    type int without overflow'), conv1d(stride=2**63) returned where torch's parser refuses
    (ValueError), conv_transpose2d(dilation=2**31) returned where torch refuses (int32)."""
    x4, w4 = (lambda L: _x(L, (1, 2, 8, 8))), (lambda L: _x(L, (2, 2, 3, 3)))
    calls = {
        "conv2d_stride": lambda L, F: F.conv2d(x4(L), w4(L), stride=value),
        "conv_transpose2d_stride": lambda L, F: F.conv_transpose2d(x4(L), w4(L), stride=value),
        "conv_transpose2d_dilation":
            lambda L, F: F.conv_transpose2d(x4(L), w4(L), dilation=value),
        "conv_transpose1d_stride": lambda L, F: F.conv_transpose1d(
            _x(L, (1, 2, 8)), _x(L, (2, 2, 3)), stride=value),
        "max_pool2d_stride": lambda L, F: F.max_pool2d(x4(L), 2, stride=value),
        "max_pool2d_kernel": lambda L, F: F.max_pool2d(x4(L), value),
        "max_pool2d_dilation": lambda L, F: F.max_pool2d(x4(L), 1, dilation=value),
        "avg_pool2d_stride": lambda L, F: F.avg_pool2d(x4(L), 2, stride=value),
        "avg_pool1d_stride": lambda L, F: F.avg_pool1d(_x(L, (2, 8)), 2, stride=value),
        "max_pool1d_stride": lambda L, F: F.max_pool1d(_x(L, (2, 8)), 2, stride=value),
        "unfold_stride": lambda L, F: F.unfold(x4(L), 2, stride=value),
        "fold_stride": lambda L, F: F.fold(_x(L, (1, 8, 1)), (4, 4), 2, stride=value),
        "max_unpool2d_stride": lambda L, F: F.max_unpool2d(
            *F.max_pool2d(x4(L), 1, return_indices=True), 1, stride=value),
    }
    if op == "conv2d_stride" and value == 2**32 + 1 or op.startswith("max_unpool") and (
            value in (2**31 - 1, 2**31, 2**32 + 1) or value == (2**31, 1)):
        pytest.skip("torch and corrnet both refuse, with different types (size overflow)")
    assert_as_torch(calls[op])


# ---------------------------------------------------------------------------------------------
# dtypes without a kernel in PyTorch (fuzz class 9: uint8 transposed convolution, ...)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int32", "int64", "float16"])
@pytest.mark.parametrize("op", [
    "conv2d", "conv1d", "conv_transpose2d", "conv_transpose1d", "max_pool2d",
    "max_pool1d", "max_pool1d_indices", "avg_pool2d", "avg_pool1d", "unfold", "fold",
    "max_unpool2d",
])
def test_issue11_window_ops_refuse_dtypes_as_torch(op, dtype):
    """conv_transpose2d of uint8, avg_pool2d of uint8, unfold/fold of int, max_pool1d of
    bool returned where PyTorch has no kernel (NotImplementedError)."""
    calls = {
        "conv2d": lambda L, F: F.conv2d(_x(L, (1, 2, 6, 6), dtype), _x(L, (2, 2, 3, 3), dtype)),
        "conv1d": lambda L, F: F.conv1d(_x(L, (1, 2, 6), dtype), _x(L, (2, 2, 3), dtype)),
        "conv_transpose2d": lambda L, F: F.conv_transpose2d(
            _x(L, (1, 2, 6, 6), dtype), _x(L, (2, 2, 3, 3), dtype)),
        "conv_transpose1d": lambda L, F: F.conv_transpose1d(
            _x(L, (1, 2, 6), dtype), _x(L, (2, 2, 3), dtype)),
        "max_pool2d": lambda L, F: F.max_pool2d(_x(L, (1, 2, 6, 6), dtype), 2),
        "max_pool1d": lambda L, F: F.max_pool1d(_x(L, (1, 2, 6), dtype), 2),
        "max_pool1d_indices": lambda L, F: F.max_pool1d(_x(L, (1, 2, 6), dtype), 2,
                                                        return_indices=True),
        "avg_pool2d": lambda L, F: F.avg_pool2d(_x(L, (1, 2, 6, 6), dtype), 2),
        "avg_pool1d": lambda L, F: F.avg_pool1d(_x(L, (1, 2, 6), dtype), 2),
        "unfold": lambda L, F: F.unfold(_x(L, (1, 2, 6, 6), dtype), 2),
        "fold": lambda L, F: F.fold(_x(L, (1, 4, 25), dtype), (6, 6), 2),
        "max_unpool2d": lambda L, F: F.max_unpool2d(
            _x(L, (1, 2, 6, 6), dtype), L.zeros(1, 2, 6, 6, dtype=L.int64), 1),
    }
    assert_as_torch(calls[op])


# ---------------------------------------------------------------------------------------------
# the pools' bool and int arguments (PyTorch's strict parsing)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, 1, 0, 10**20, 1.0, float("nan"), None,
                                   (1, 2, 3), "a"], ids=repr)
@pytest.mark.parametrize("argument", ["max_pool2d ceil_mode", "max_pool1d ceil_mode",
                                      "max_pool2d return_indices", "avg_pool2d ceil_mode",
                                      "avg_pool2d count_include_pad", "avg_pool1d ceil_mode",
                                      "avg_pool1d count_include_pad",
                                      "avg_pool2d divisor_override"])
def test_issue11_pool_flags_parsed_as_torch(argument, value):
    """ceil_mode=10**20, ceil_mode=float('nan'), ceil_mode=(1, 2, 3) were taken for True
    (torch: 'argument ceil_mode must be bool'); return_indices is truthy, as in torch;
    divisor_override=1.0 is a TypeError."""
    op, name = argument.split()
    shape = (1, 2, 6, 6) if op.endswith("2d") else (2, 6)
    assert_as_torch(lambda L, F: getattr(F, op)(_x(L, shape), 2, **{name: value}))


@pytest.mark.parametrize("output_size", ["abc", (4, 4, 4), [4.0, 4], (1, 1, 4, 4), None, (4, 4)],
                         ids=repr)
def test_issue11_max_unpool_output_size_checked(output_size):
    """output_size='abc' raised 'invalid literal for int()' from Python."""
    assert_as_torch(lambda L, F: F.max_unpool2d(
        *F.max_pool2d(_x(L, (1, 1, 4, 4)), 2, return_indices=True), 2, output_size=output_size))


# ---------------------------------------------------------------------------------------------
# padding (fuzz class 8)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [
    ((0, 5), (1, 1)), ((0, 5), (-2, -2)), ((5, 0), (0, 0)), ((3, 0), (1, 1)),
    ((0, 2, 5), (1, 1)), ((2, 0, 5), (1, 1)), ((0, 5, 1), (1, 1, 1, 1)),
    ((2, 0, 5, 5), (1, 1, 1, 1)), ((0, 2, 5, 5), (1, 1, 1, 1)), ((0, 2, 0, 5), (1, 1, 1, 1)),
    ((5, 2, 6, 6, 3), (0, 2, 2, 2, -1, 2, -2, 0)), ((2, 3, 3, 3, 3), (1,) * 8), ((6, 2), ()),
], ids=str)
def test_issue11_non_constant_pads_of_empty_inputs_as_torch(shape, pad, mode):
    """replicate/reflect padding of a (0, 5) input returned where torch refuses (only the
    batch may be empty), replicate of (3, 0) raised NumPy's IndexError, circular padding of 4
    dimensions returned where torch refuses (NotImplementedError)."""
    assert_as_torch(lambda L, F: F.pad(_x(L, shape), pad, mode=mode))


# ---------------------------------------------------------------------------------------------
# the widened strategy: hostile arguments for every window op
# ---------------------------------------------------------------------------------------------

_hostile_int = st.sampled_from([0, 1, 2, 3, -1, 2**31, 2**63, 10**20])
_hostile_arg = st.one_of(
    _hostile_int.filter(lambda v: v < 2**31 or v >= 2**63),  # (no 10**9-cell outputs)
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(1, 3)), st.tuples(st.integers(1, 3), st.integers(1, 3),
                                            st.integers(1, 3)),
    st.sampled_from([True, 1.0, None, (), (2**63, 1), (2**31, 1), "2"]),
)
_flag = st.sampled_from([True, False, 0, 1, 10**20, 1.0, None, (1, 2)])


@oracle_settings(max_examples=150)
@given(op=st.sampled_from(["max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d",
                           "conv_transpose2d", "conv2d", "unfold", "max_unpool2d"]),
       name=st.sampled_from(["kernel_size", "stride", "padding", "dilation"]),
       value=_hostile_arg, flag=_flag, dtype=st.sampled_from(["float32", "int64", "uint8"]))
def test_window_ops_hostile_arguments_match_torch(op, name, value, flag, dtype):
    """Every window op with one hostile argument (and, for the pools, a hostile ceil_mode):
    corrnet refuses what torch refuses with the same exception type, and computes the same
    result otherwise."""
    def call(L, F):
        if op in ("conv2d", "conv_transpose2d"):
            if name == "kernel_size":
                return None
            return getattr(F, op)(_x(L, (1, 2, 6, 6), dtype), _x(L, (2, 2, 2, 2), dtype),
                                  **{name: value})
        if op == "unfold":
            args = {"kernel_size": 2, name: value}
            return F.unfold(_x(L, (1, 2, 6, 6), dtype), **args)
        if op == "max_unpool2d":
            # (torch's Python wrapper computes an empty or wrong-sized output from a kernel or
            # stride that is not positive or a negative padding, dropping the values, takes
            # True for 1 and fails on a 1- or 3-tuple with IndexError; corrnet refuses those)
            if name == "dilation" or value is True or isinstance(value, int) and value < 1 or (
                    isinstance(value, tuple) and len(value) != 2):
                return None
            values, indices = F.max_pool2d(_x(L, (1, 2, 6, 6)), 2, return_indices=True)
            return F.max_unpool2d(values, indices, **{"kernel_size": 2, name: value})
        shape = (1, 2, 6, 6) if op.endswith("2d") else (2, 6)
        args = {"kernel_size": 2, "ceil_mode": flag, name: value}
        if op.startswith("avg") and name == "dilation":
            return None
        return getattr(F, op)(_x(L, shape, dtype), **args)

    if _outcome(tt, call) is None:
        return
    assert_as_torch(call)


# ---------------------------------------------------------------------------------------------
# pools with a kernel, padding or dilation far larger than the input (cut down to the cells
# that can meet, as the convolutions)
# ---------------------------------------------------------------------------------------------

_HUGE_POOLS = {
    "max_pool2d_k1e6_p5e5": (lambda F, x, ceil: F.max_pool2d(
        x, 10**6, stride=1, padding=5 * 10**5, ceil_mode=ceil, return_indices=True), (1, 2, 8, 8)),
    "avg_pool2d_k1e6_p5e5": (lambda F, x, ceil: F.avg_pool2d(
        x, 10**6, stride=1, padding=5 * 10**5, ceil_mode=ceil), (1, 2, 8, 8)),
    "avg_pool2d_k1e6_p5e5_no_pad": (lambda F, x, ceil: F.avg_pool2d(
        x, 10**6, stride=1, padding=5 * 10**5, ceil_mode=ceil, count_include_pad=False),
        (1, 2, 8, 8)),
    "avg_pool2d_k1e6_divisor": (lambda F, x, ceil: F.avg_pool2d(
        x, 10**6, stride=1, padding=5 * 10**5, ceil_mode=ceil, divisor_override=3),
        (1, 2, 8, 8)),
    "max_pool2d_mixed": (lambda F, x, ceil: F.max_pool2d(
        x, (7, 10**5), stride=(1, 3), padding=(3, 5 * 10**4), dilation=(1, 2), ceil_mode=ceil,
        return_indices=True), (2, 3, 9, 11)),
    "avg_pool2d_mixed": (lambda F, x, ceil: F.avg_pool2d(
        x, (7, 10**5), stride=(2, 3), padding=(3, 5 * 10**4), ceil_mode=ceil,
        count_include_pad=False), (2, 3, 9, 11)),
    "max_pool1d_k2e31": (lambda F, x, ceil: F.max_pool1d(
        x, 2**31 - 1, ceil_mode=ceil, return_indices=True), (2, 6)),
    "avg_pool1d_k3e5_s1e5": (lambda F, x, ceil: F.avg_pool1d(
        x, 3 * 10**5, stride=10**5, padding=10**5, ceil_mode=ceil), (2, 6)),
}


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("name", sorted(_HUGE_POOLS))
def test_issue11_pools_with_huge_kernels_as_torch(name, ceil_mode):
    """max_pool2d/avg_pool2d with kernel_size 10**6 and padding 5*10**5 refused ('the padded
    input would have ... bytes'), max_pool1d(kernel_size=2**31 - 1, ceil_mode=True) raised
    MemoryError, where PyTorch computes them: now torch's values, indices and gradients."""
    call, shape = _HUGE_POOLS[name]
    values = np.random.default_rng(7).standard_normal(shape)
    results = []
    for lib in (tt, ct):
        x = lib.tensor(values, requires_grad=True)
        try:
            out = call(lib.nn.functional, x, ceil_mode)
        except RuntimeError as error:
            results.append(type(error))
            continue
        out, indices = out if isinstance(out, tuple) else (out, None)
        out.sum().backward()
        results.append((to_numpy(out), None if indices is None else to_numpy(indices),
                         to_numpy(x.grad)))
    expected, actual = results
    if not isinstance(expected, tuple):   # torch refuses (output size too small): so do we
        assert actual is expected
        return
    for what, mine, theirs in zip(("out", "indices", "grad"), actual, expected, strict=True):
        if theirs is not None:
            assert mine.shape == theirs.shape, what
            np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-9, err_msg=what)


@pytest.mark.parametrize("arguments", [
    {"kernel_size": 3, "padding": 10**6, "stride": 10**6},
    {"kernel_size": 3, "padding": 10**6, "stride": 7 * 10**5},
    {"kernel_size": (2, 3), "padding": (10**5, 2), "stride": (3 * 10**4, 1), "dilation": (5, 1)},
    {"kernel_size": 3, "padding": 10**3, "stride": 10**3},
], ids=str)
def test_issue11_unfold_with_huge_padding_as_torch(arguments):
    """unfold(x, 3, padding=10**6, stride=10**6) refused (a padded input of 10**12 cells)
    where PyTorch computes it: now cut down to the windows that meet the input, with torch's
    values and input gradient."""
    values = np.random.default_rng(3).standard_normal((2, 3, 8, 8))
    results = []
    for lib in (tt, ct):
        x = lib.tensor(values, requires_grad=True)
        out = lib.nn.functional.unfold(x, **arguments)
        weights = np.random.default_rng(4).standard_normal(tuple(out.shape))
        (out * lib.tensor(weights)).sum().backward()
        results.append((to_numpy(out), to_numpy(x.grad)))
    (out_t, grad_t), (out_c, grad_c) = results
    assert out_c.shape == out_t.shape
    np.testing.assert_allclose(out_c, out_t, rtol=1e-12, atol=0)
    np.testing.assert_allclose(grad_c, grad_t, rtol=1e-9, atol=1e-12)



# ---------------------------------------------------------------------------------------------
# float16 transposed convolution: PyTorch rounds each contribution to float16 before adding
# ---------------------------------------------------------------------------------------------


def _torch_rounds_float16_products() -> bool:
    """Whether PyTorch on this CPU runs float16 convolutions on its own kernels, each product
    rounded to float16 ([300, 300] transposed-convolved with [300, -300]: [inf, nan, -inf]).
    Where the CPU has AVX512-FP16 (Intel's Sapphire Rapids and later) it runs them on oneDNN,
    summing in float32 ([inf, 0, -inf])."""
    out = tt.nn.functional.conv_transpose1d(
        tt.tensor([[[300.0, 300.0]]], dtype=tt.float16),
        tt.tensor([[[300.0, -300.0]]], dtype=tt.float16))
    return bool(tt.isnan(out).any())


@pytest.mark.skipif(not _torch_rounds_float16_products(),
                    reason="PyTorch on this CPU computes float16 convolutions on oneDNN "
                           "(AVX512-FP16), summing in float32: its NaN and inf places are not "
                           "those of its own kernels, which corrnet follows")
@pytest.mark.parametrize("scale", [1, 100, 200, 300])
@pytest.mark.parametrize("seed", range(6))
def test_issue11_float16_conv_transpose_rounds_as_torch(seed, scale):
    """conv_transpose1d of [300, 300] with [300, -300] in float16: PyTorch gives [inf, nan,
    -inf] (each product rounded to float16 before the sum: 90000 is inf), corrnet (in float32,
    since round 1) gave [inf, 0, -inf]. Now its NaN and inf places and values are torch's."""
    rng = np.random.default_rng(100 * seed + scale)
    groups = int(rng.integers(1, 3))
    kernel, stride, dilation = rng.integers(1, 4, 2), rng.integers(1, 3, 2), rng.integers(1, 3, 2)
    padding = tuple(int(rng.integers(0, d * (k - 1) + 1))
                    for d, k in zip(dilation, kernel, strict=True))
    x = (rng.standard_normal((2, 2 * groups, 4, 5)) * scale).astype(np.float16)
    w = (rng.standard_normal((2 * groups, 2, *kernel)) * scale).astype(np.float16)
    b = rng.standard_normal(2 * groups).astype(np.float16)
    outs = [to_numpy(lib.nn.functional.conv_transpose2d(
        lib.tensor(x), lib.tensor(w), lib.tensor(b), stride=tuple(stride), padding=padding,
        dilation=tuple(dilation), groups=groups)).astype(np.float64) for lib in (tt, ct)]
    expected, actual = outs
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(actual), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=2e-3,
                               atol=2e-3 * max(1.0, np.abs(expected[finite]).max(initial=0)))
    if scale == 300 and seed == 0:
        one = [to_numpy(lib.nn.functional.conv_transpose1d(
            lib.tensor([[[300.0, 300.0]]], dtype=lib.float16),
            lib.tensor([[[300.0, -300.0]]], dtype=lib.float16))) for lib in (tt, ct)]
        np.testing.assert_array_equal(one[1], one[0])    # [inf, nan, -inf]


@pytest.mark.parametrize("shape", [(1, 0, 10, 12), (0, 2, 10, 12), (2, 3, 0, 12), (0, 10, 12),
                                   (3, 0, 12)], ids=str)
@pytest.mark.parametrize("op", ["max_pool2d", "max_pool2d_indices", "avg_pool2d",
                                "max_unpool2d"])
def test_issue11_pools_of_empty_inputs_as_torch(op, shape):
    """avg_pool2d of a (1, 0, 10, 12) input returned where PyTorch refuses (only the batch of
    a batched input may be empty)."""
    calls = {
        "max_pool2d": lambda L, F: F.max_pool2d(L.ones(*shape), 2),
        "max_pool2d_indices": lambda L, F: F.max_pool2d(L.ones(*shape), 2, return_indices=True),
        "avg_pool2d": lambda L, F: F.avg_pool2d(L.ones(*shape), 2),
        "max_unpool2d": lambda L, F: F.max_unpool2d(L.ones(*shape),
                                                    L.zeros(*shape, dtype=L.int64), 1),
    }
    assert_as_torch(calls[op])


@pytest.mark.parametrize("batched", [False, True])
def test_issue11_conv_transpose_with_empty_output_as_torch(batched):
    """conv_transpose2d whose output has height 0 (padding 2 with a 1-row kernel on 4 rows)
    was refused ('output size is too small'); PyTorch returns the empty output and a zero
    gradient. (In float32, on its oneDNN path; its float64 path refuses: corrnet returns the
    empty output in every dtype.)"""
    values = np.random.default_rng(5).standard_normal((6, 4, 2)).astype(np.float32)
    results = []
    for lib in (tt, ct):
        x = lib.tensor(values[None] if batched else values, requires_grad=True)
        out = lib.nn.functional.conv_transpose2d(x, lib.ones(6, 3, 1, 4), lib.ones(6),
                                                 stride=(1, 2), padding=(2, 1), groups=2)
        out.sum().backward()
        results.append((tuple(out.shape), to_numpy(x.grad)))
    assert results[1][0] == results[0][0]
    np.testing.assert_array_equal(results[1][1], results[0][1])
