"""Issue 11, round 2: the fuzzer's findings in the tensor API, each against PyTorch 2.13.

Classes (FINDINGS.md): in-place ops on non-leaves (3), indexing errors straight from NumPy
(4), reductions' dim checks (5), operators and dtypes (6), creation functions (10) and the
tensor corners of 11 (size/mT/softmax on 0-d, cat, repeat). An error must be of the type
PyTorch raises (or of the ValueError/TypeError/RuntimeError family) and be raised by
corrnet's own code, not by NumPy or Python internals (`_raised_by_corrnet`).
"""

from __future__ import annotations

import os
import traceback
import warnings

import numpy as np
import pytest
import torch as tt
from fuzz.worker import is_clear  # tests/ is on sys.path (tests/conftest.py)
from hypothesis import given
from hypothesis import strategies as st

import corrnet as ct

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import oracle_settings
    from .test_issue11_corners import INDEX_FORMS, _materialize
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from test_issue11_corners import INDEX_FORMS, _materialize

    from helpers import oracle_settings

CORRNET_DIR = os.path.dirname(os.path.abspath(ct.__file__))
CLEAR = (ValueError, TypeError, RuntimeError, IndexError, NotImplementedError)


def _raised_by_corrnet(exc: BaseException) -> bool:
    """Whether `exc` is a clear error in the fuzzer's sense: raised by a ``raise`` statement
    of corrnet's own source (not by NumPy under a corrnet line), with a message."""
    return is_clear(exc, CORRNET_DIR)


def _outcome(fn, lib):
    """``('ok', value)`` or ``('error', exception)`` of ``fn(lib)``, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return "ok", fn(lib)
        except Exception as exc:  # noqa: BLE001 - compared below
            return "error", exc


def _numpy(value):
    if isinstance(value, (tt.Tensor, ct.Tensor)):
        return np.asarray(value.detach().numpy())
    return value


def assert_as_torch(fn, *, same_type: bool = True, values: bool = True):
    """Run ``fn(lib)`` in both libraries: the same value (dtype, shape and, with `values`,
    elements), or an error in corrnet too — raised by corrnet itself, of PyTorch's type
    when `same_type`."""
    t_kind, t_value = _outcome(fn, tt)
    c_kind, c_value = _outcome(fn, ct)
    if t_kind == "error":
        assert c_kind == "error", f"torch raised {t_value!r}; corrnet returned {c_value!r}"
        assert isinstance(c_value, CLEAR), f"corrnet raised {c_value!r}"
        assert _raised_by_corrnet(c_value), (
            f"corrnet's {c_value!r} comes from {traceback.extract_tb(c_value.__traceback__)[-1]}")
        if same_type:
            assert isinstance(c_value, type(t_value)) or (
                type(t_value) in (OverflowError,) and isinstance(c_value, CLEAR)), (
                f"torch raised {t_value!r}; corrnet {c_value!r}")
        return c_value
    assert c_kind == "ok", f"torch returned {t_value!r}; corrnet raised {c_value!r}"
    values = t_value if isinstance(t_value, tuple) else (t_value,)
    c_values = c_value if isinstance(c_value, tuple) else (c_value,)
    for t, c in zip(values, c_values, strict=True):
        if isinstance(t, tt.Tensor):
            assert str(c.dtype) == str(t.dtype), f"dtype {c.dtype} != torch {t.dtype}"
            assert tuple(c.shape) == tuple(t.shape), f"shape {tuple(c.shape)} != {tuple(t.shape)}"
            if values:
                np.testing.assert_array_equal(_numpy(c), _numpy(t))
        else:
            assert c == t
    return c_value


# ---------------------------------------------------------------------------------------------
# class 4: indexing
# ---------------------------------------------------------------------------------------------

_BAD_INDICES = [
    ((2,), lambda m: 5), ((2,), lambda m: -3), ((2,), lambda m: 2**40),
    ((2,), lambda m: m.tensor([[0, 5]])), ((2,), lambda m: [0, -3]),
    ((0, 3), lambda m: m.tensor(1)), ((0, 3), lambda m: 1),
    ((3, 2), lambda m: (0, 5)), ((3, 2), lambda m: ([0, 1], [5, 0])), ((3, 2), lambda m: (..., 5)),
    ((5, 1), lambda m: m.tensor([True])), ((5, 2), lambda m: (slice(None), m.tensor([True] * 3))),
    ((3,), lambda m: [True]), ((3,), lambda m: (None, 0, 0)), ((3,), lambda m: (0, 0)),
    ((), lambda m: 0), ((3,), lambda m: 1.5),
]


@pytest.mark.parametrize("shape, index", _BAD_INDICES)
def test_issue11_bad_index_raises_torch_index_error(shape, index):
    """Out-of-range positions, masks of the wrong shape and too many indices reached NumPy,
    whose IndexError ("... for axis 0 ...") escaped raw; now corrnet raises PyTorch's."""
    error = assert_as_torch(lambda m: m.zeros(shape)[index(m)])
    assert "axis" not in str(error)


@pytest.mark.parametrize("shape, index", _BAD_INDICES)
def test_issue11_bad_index_in_setitem_raises_torch_index_error(shape, index):
    def assign(m):
        y = m.zeros(shape)
        y[index(m)] = 1.0
        return y
    assert_as_torch(assign)


@pytest.mark.parametrize("dtype, value", [
    ("int32", float("nan")), ("int32", 2**40), ("uint8", -255), ("uint8", -256), ("uint8", 300),
    ("int8", 1.5), ("int8", 200.0), ("bool", 2), ("float16", 1e300), ("float16", 10**20),
    ("float32", [1.0]), ("float32", (1.0,)), ("int64", "a"), ("int64", None),
])
def test_issue11_setitem_value_checked_as_torch(dtype, value):
    """NaN into an int tensor was cast to garbage, 300 wrapped into uint8, a list was
    accepted; PyTorch refuses those (and wraps -255 into uint8)."""
    def assign(m):
        y = m.zeros(3, dtype=getattr(m, dtype))
        y[0] = value
        return y
    assert_as_torch(assign, same_type=False)


@pytest.mark.parametrize("index", [
    lambda m: m.tensor([0]), lambda m: [0], lambda m: m.tensor([True, False, True]),
    lambda m: (m.tensor([True, False, True]), 1), lambda m: slice(0, 1),
])
@pytest.mark.parametrize("value", [lambda m: m.tensor(1.5), lambda m: m.tensor([1.5])])
def test_issue11_index_put_dtype_as_torch(index, value):
    """A put through positions needs the destination's dtype; a mask fill or a slice casts."""
    def assign(m):
        y = m.zeros(3, 2, dtype=m.float16)
        y[index(m)] = value(m)
        return y
    assert_as_torch(assign)


# the widened strategy: shapes with empty and 0-d cases, huge positions, masks of 1 element
WIDE_INDEX_FORMS = st.one_of(
    INDEX_FORMS,
    st.tuples(st.sampled_from([2**40, -2**40, 7, -8]), INDEX_FORMS).map(
        lambda pair: (pair[0], pair[1])),
)


@oracle_settings(120)
@given(index=WIDE_INDEX_FORMS,
       shape=st.sampled_from([(3, 4, 2), (0, 4, 2), (3, 0, 2), (2, 4), (3,), ()]),
       setting=st.booleans())
def test_every_index_form_fails_as_torch_from_corrnet(index, shape, setting):
    """Every index form on several shapes (empty, 0-d): when PyTorch refuses, corrnet
    refuses from its own code (the earlier strategy accepted NumPy's IndexError)."""
    def apply(m):
        y = m.zeros(shape)
        if setting:
            y[_materialize(index, m)] = 1.0
            return y
        return y[_materialize(index, m)]

    t_kind, t_value = _outcome(apply, tt)
    c_kind, c_value = _outcome(apply, ct)
    if c_kind == "error":
        assert isinstance(c_value, CLEAR) and _raised_by_corrnet(c_value), repr(c_value)
    if t_kind == "error" and c_kind == "ok":
        # PyTorch checks positions only against the elements it gathers: an out-of-range
        # index into an empty result passes there and not in corrnet (the reverse is fine)
        assert c_value.numel() == 0 or setting, f"torch raised {t_value!r}"


# ---------------------------------------------------------------------------------------------
# class 5: reductions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda x: x.max(0), lambda x: x.max(-1, keepdim=True), lambda x: x.min(0),
    lambda x: x.argmax(0, keepdim=True), lambda x: x.argmin(-1), lambda x: x.argmax(keepdim=True),
    lambda x: x.prod(0), lambda x: x.amax(-1, keepdim=True), lambda x: x.std([]),
    lambda x: x.max(1), lambda x: x.prod(1), lambda x: x.any(1), lambda x: x.sum(2),
    lambda x: x.softmax(0), lambda x: x.softmax(1), lambda x: x.log_softmax(-2),
    lambda x: x.size(0), lambda x: x.mT, lambda x: x.T, lambda x: x.sigmoid(),
])
def test_issue11_reductions_and_dims_on_0d_as_torch(call):
    """max/min/argmax/prod with dim on a 0-d tensor reached NumPy (AxisError) or gave shape
    (1,); sigmoid gave (1,); size(0) was a tuple IndexError; mT was refused."""
    assert_as_torch(lambda m: call(m.tensor(2.5)))


@pytest.mark.parametrize("call", [
    lambda x: x.max(dim=2, keepdim=True), lambda x: x.max(dim=1), lambda x: x.min(dim=2),
    lambda x: x.argmax(dim=2), lambda x: x.argmax(dim=1), lambda x: x.argmin(),
    lambda x: x.amax(dim=(0, 2)), lambda x: x.amax(dim=(0, 1)), lambda x: x.max(),
])
def test_issue11_reductions_of_empty_tensors_as_torch(call):
    """max(dim) over a non-empty dim of an empty tensor was refused; argmin() reached
    NumPy's 'attempt to get argmin of an empty sequence'."""
    assert_as_torch(lambda m: call(m.zeros(4, 0, 3)))


@pytest.mark.parametrize("call", [
    lambda m: m.zeros(3, dtype=m.uint8).all(), lambda m: m.ones(3, 2, dtype=m.uint8).any(0, True),
    lambda m: m.zeros(3, dtype=m.int32).any(), lambda m: m.zeros(3, dtype=m.bool).argmax(),
    lambda m: m.zeros(3, dtype=m.bool).argmin(0), lambda m: m.zeros(3, dtype=m.bool).max(0),
    lambda m: m.zeros(3, dtype=m.int64).norm(), lambda m: m.ones(3, 3).prod(dim=True),
    lambda m: m.ones(3, 3).sum(dim=True), lambda m: m.ones(3, 3).std(dim=True, correction=1),
    # (a bool correction is a number: fuzz, seed 20261214)
    lambda m: m.tensor([1., 2., 4.]).std(correction=True),
    lambda m: m.tensor([1., 2., 4.]).var(0, correction=False),
    lambda m: m.ones(3, 3).std(True), lambda m: m.ones(3, 3).argmax(0, keepdim="2"),
    lambda m: m.ones(3, 3).argmax(0, keepdim=1), lambda m: m.ones(3, 3).any(0, keepdim=None),
    lambda m: m.ones(3, 3, requires_grad=True).prod(dtype=m.int64),
    lambda m: m.ones(3, 3).transpose(True, True), lambda m: m.zeros(3).softmax(10**20),
    lambda m: m.zeros(3).softmax(True), lambda m: m.zeros(0, dtype=m.uint8).softmax(0),
])
def test_issue11_reduction_arguments_as_torch(call):
    """uint8 all/any gave bool, bool argmax and int norm were accepted, bool/str keepdim and
    bool dims were accepted: as PyTorch now."""
    assert_as_torch(call, same_type=False)


def test_issue11_sigmoid_0d_gradient_as_torch():
    grads = []
    for m in (tt, ct):
        x = m.tensor(0.3, requires_grad=True)
        x.sigmoid().backward()
        grads.append(_numpy(x.grad))
    assert grads[1].shape == () and np.allclose(grads[0], grads[1])


# ---------------------------------------------------------------------------------------------
# class 6: operators and dtypes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda m: m.zeros(3, dtype=m.uint8) > -1, lambda m: m.zeros(3, dtype=m.uint8) > 300,
    lambda m: m.zeros(3, dtype=m.uint8) == 1.5, lambda m: -2 | m.zeros(3, dtype=m.uint8),
    lambda m: m.zeros(3, dtype=m.uint8) + (-2), lambda m: m.zeros(3, dtype=m.int8) + 300,
    lambda m: m.zeros(3, dtype=m.int32) & -1, lambda m: m.ones(3, dtype=m.int32) & (2**40 + 1),
    lambda m: m.zeros(3, dtype=m.int32) + 2**40, lambda m: m.zeros(3, dtype=m.int32) + 2**70,
    lambda m: m.zeros(3) ** 10**20, lambda m: m.zeros(3) == "2", lambda m: m.zeros(3) != [[1]],
    lambda m: m.zeros(3) == None,  # noqa: E711 - the comparison under test
    lambda m: m.zeros(3) < m.zeros(2), lambda m: m.zeros(5, 4).ge(m.zeros(3, 2)),
    lambda m: m.arange(3, dtype=m.uint8) % m.tensor(256),
    lambda m: m.zeros(3, dtype=m.int64) % 0, lambda m: m.ones(3, dtype=m.int64).pow(-2),
    lambda m: m.tensor(0, dtype=m.uint8).add(m.tensor(True), alpha=-1),
    lambda m: m.tensor([1, 2]).sub(3, alpha=2), lambda m: m.tensor([1, 2]).add(3, alpha=2.5),
    lambda m: m.zeros(3).maximum(True), lambda m: m.zeros(3).allclose(m.zeros(2, 3)),
    lambda m: m.zeros(4, 3, dtype=m.int32).allclose(m.zeros(2, 3, dtype=m.float64)),
    lambda m: m.zeros(3, dtype=m.bool).abs(), lambda m: +m.zeros(3, dtype=m.bool),
    lambda m: m.zeros(3, dtype=m.bool).relu(), lambda m: m.zeros(3).clip(min=1e300, max=1),
    lambda m: m.zeros(3, dtype=m.float64).clip(min=-1, max=1e300),
    lambda m: m.zeros(3).clip(min=-1, max=float("inf")),
    lambda m: m.tensor([0, 1, -1, 2, -2, 3]) ** m.tensor([-2, -3, -3, 2, -1, 1]),
    lambda m: m.tensor([0, 1, -1, 2, -2, 3], dtype=m.uint8) ** m.tensor(-2),
    lambda m: 2 ** m.tensor([-1, 2]), lambda m: m.tensor(True) ** m.tensor(False),
    lambda m: m.tensor([True, False]) ** True, lambda m: True ** m.tensor([True, False]),
    lambda m: m.tensor([True, False]) ** 2, lambda m: 2 ** m.tensor([True, False]),
    lambda m: m.tensor([2**63], dtype=m.bool), lambda m: m.zeros(3, 4).flatten([], -1),
    lambda m: m.zeros(()).flatten([], -1), lambda m: m.zeros(()).flatten(0, -1),
    lambda m: m.zeros(2, 3).max(None), lambda m: m.zeros(2, 3).min(dim=None, keepdim=True),
    lambda m: m.max(m.zeros(2, 3)), lambda m: m.max(m.zeros(2, 3), 1)[1],
])
def test_issue11_operators_and_dtypes_as_torch(call):
    """Python ints wrap into the tensor's integer dtype (uint8 > -1 raised OverflowError),
    == with a str or list is False (it raised), int % 0 after the cast, int ** -2, add with
    alpha in the un-promoted dtype, bool abs/relu/+ refused, clamp bounds beyond float32."""
    assert_as_torch(call, same_type=False)


@pytest.mark.parametrize("call", [
    lambda x: x <= (1, 2, 3), lambda x: [1] < x, lambda x: x > "2", lambda x: x.eq("2"),
])
def test_issue11_ordering_with_non_numbers_is_a_type_error(call):
    for m in (tt, ct):
        with pytest.raises(TypeError):
            call(m.zeros(3))


# ---------------------------------------------------------------------------------------------
# class 10: creation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda m: m.ones(dtype=m.float32), lambda m: m.zeros(dtype=m.uint8), lambda m: m.empty(),
    lambda m: m.rand(dtype=None), lambda m: m.randn(), lambda m: m.zeros(()),
    lambda m: m.ones(1, dtype="float32"), lambda m: m.empty(0, 2, dtype="float32"),
    lambda m: m.rand(3, 0, 4, dtype=m.bool), lambda m: m.rand(3, dtype=m.int64),
    lambda m: m.randn(1, 2, dtype=m.uint8), lambda m: m.randn(2, 2**31, 0, dtype=m.int32),
    lambda m: m.arange(0, -2, -1, dtype=m.bool), lambda m: m.arange(0, -2, 2, dtype="float32"),
    lambda m: m.arange(1, 0, 0.5, dtype=m.float64), lambda m: m.arange(1, (1, 2), 0.5),
    lambda m: m.arange("a"), lambda m: m.arange(float("nan")), lambda m: m.arange(float("inf")),
    lambda m: m.arange(0, 10**20), lambda m: m.arange(5.5), lambda m: m.arange(0, 5, 2),
    lambda m: m.randperm(5, dtype=m.bool), lambda m: m.randperm(-1), lambda m: m.randperm(2.5),
    lambda m: m.full(2**63, 2, dtype=m.int32), lambda m: m.full(3, 2),
    lambda m: m.full((), -3, dtype=m.uint8), lambda m: m.full((2,), 300, dtype=m.uint8),
    lambda m: m.full((2,), float("nan"), dtype=m.int32), lambda m: m.full((2,), 1.5),
    lambda m: m.full((2,), "a"), lambda m: m.full((2,), 10**20), lambda m: m.full((2,), True),
    lambda m: m.ones(4, 10**20, 0), lambda m: m.ones(4, 2**62, 0), lambda m: m.ones(4, -1),
    lambda m: m.ones(2.5), lambda m: m.ones((2, "a")), lambda m: m.ones(None),
    lambda m: m.ones(True), lambda m: m.randint(0, 5, 0, dtype=m.float16),
    lambda m: m.randint(5, 0, (2,)), lambda m: m.randint(0, 5, (2,), dtype=m.bool),
    lambda m: m.tensor([float("nan")], dtype=m.uint8), lambda m: m.tensor([300], dtype=m.uint8),
    lambda m: m.tensor([float("inf")], dtype=m.int64), lambda m: m.tensor([1e10], dtype=m.int32),
    lambda m: m.tensor([-1], dtype=m.uint8), lambda m: m.eye(-1), lambda m: m.eye(2.5),
    lambda m: m.eye(3, -1), lambda m: m.eye(10**20), lambda m: m.eye(3, dtype=m.bool),
    lambda m: m.eye("a"), lambda m: m.eye(2, None), lambda m: m.linspace(0, 1, -1),
    lambda m: m.linspace(0, 1, 2.5), lambda m: m.linspace(0, 1, 5, dtype=m.int64),
    lambda m: m.linspace(0, 1, 5, dtype=m.bool), lambda m: m.linspace("a", 1, 5),
    lambda m: m.zeros_like(m.tensor(1.0)), lambda m: m.rand_like(m.tensor([1, 2])),
    lambda m: m.arange(0, 5, 0.5, dtype=m.uint8), lambda m: m.arange(1, 7.5, 2, dtype=m.int64),
    lambda m: m.arange(-0.5, 7.5, 2.5, dtype=m.int64), lambda m: m.arange(5, 0, -1.5),
    lambda m: m.arange(1, 10, 1, dtype=np.float32), lambda m: m.empty(3, dtype=np.float32),
    lambda m: m.tensor([2**63]), lambda m: m.tensor([-2**63]), lambda m: m.tensor([1], dtype=float),
    lambda m: m.tensor([1, 2], dtype=np.float32), lambda m: m.tensor([[[]]], dtype="float32"),
    lambda m: m.linspace(-1.0, 2, 1, dtype=m.uint8), lambda m: m.linspace(-1.0, 2, 0, dtype=m.bool),
    lambda m: m.linspace(float("inf"), 2, 2, dtype=m.int32),
    lambda m: m.full((2,), -1.0, dtype=m.uint8),
    lambda m: m.full_like(m.zeros(2), True, dtype=np.float32), lambda m: m.ones(size=2**63),
    # an int in [2**63, 2**64): PyTorch's uint64, its value for a floating dtype (fuzz, seed
    # 20261220: corrnet refused it)
    lambda m: m.full((1, 2), 2**63, dtype=m.float64), lambda m: m.full((1,), 2**64 - 1,
                                                                        dtype=m.float32),
    lambda m: m.full((2,), 2**64 - 1, dtype=m.float16), lambda m: m.full((1,), 2**63),
    lambda m: m.full((1,), 2**63, dtype=m.int64), lambda m: m.full((1,), 2**64, dtype=m.float64),
    lambda m: m.full((1,), -2**63 - 1, dtype=m.float64),
    lambda m: m.full_like(m.zeros(2), 2**63 + 2**40), lambda m: m.zeros(2).new_full((2,), 2**63),
    # beyond a floating dtype's range: refused, as PyTorch's fill_ (its full of one float16
    # element rounds to inf instead: corrnet refuses there too)
    lambda m: m.full((2,), 70000, dtype=m.float16), lambda m: m.full((3,), 1e10, dtype=m.float16),
    lambda m: m.zeros(2).fill_(2**64), lambda m: m.zeros(2).fill_(2**100),
    lambda m: m.zeros(2, dtype=m.float64).fill_(-2**63 - 1),
    lambda m: m.zeros(2).masked_fill(m.tensor([True, False]), 2**100),
    # an infinite step: no element, after the sign check (fuzz, seed 20261223: refused)
    lambda m: m.arange(2.5, 5, float("inf"), dtype=m.float64),
    lambda m: m.arange(0, 5, float("inf")), lambda m: m.arange(0.0, -5.0, float("-inf")),
    lambda m: m.arange(0, -5, float("inf")), lambda m: m.arange(0, 5, float("inf"), dtype=m.int32),
    lambda m: m.arange(0, 5, float("nan")), lambda m: m.arange(5.0, 5.0, float("-inf")),
    lambda m: m.arange(0, float("inf"), 1),
    # linspace of an int in [2**63, 2**64): its value for a floating dtype (same seed)
    lambda m: m.linspace(2**63, 0, 3), lambda m: m.linspace(2**63, float("nan"), 6),
    lambda m: m.linspace(0, 2**64 - 1, 2, dtype=m.float64),
    lambda m: m.linspace(2**63, 0, 3, dtype=m.int64), lambda m: m.linspace(2**64, 0, 3),
    # a bool full of an int in [2**63, 2**64): True (fuzz, seed 20261227: refused)
    lambda m: m.full_like(m.tensor(1.0), 2**63, dtype=m.bool),
    lambda m: m.full((2,), 2**64 - 1, dtype=m.bool), lambda m: m.full((2,), 2**64, dtype=m.bool),
])
def test_issue11_creation_arguments_as_torch(call):
    """No size, dtype strings, kernels PyTorch lacks (bool rand, int randn...), hostile
    n/m/steps/start/end: as PyTorch (the random values themselves are not compared)."""
    random = any(name.startswith("rand") for name in call.__code__.co_names)
    assert_as_torch(call, same_type=False, values=not random)


def test_issue11_empty_reshape_beyond_numpy_refused_clearly():
    """An empty tensor reshaped to (0, 2**62): PyTorch makes it; NumPy cannot hold its shape
    (the nonzero sizes times the item size beyond 2**63 - 1), so corrnet refuses it with a
    RuntimeError that says so, not NumPy's ValueError."""
    with pytest.raises(RuntimeError, match="beyond what a NumPy array can hold"):
        ct.zeros(0).reshape(0, 2**62)
    with pytest.raises(RuntimeError, match="beyond what a NumPy array can hold"):
        ct.zeros(0).view(0, 2**63 - 1)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("value", [1e300, -1e300, float("inf"), 70000.0, 1e39, True, 3])
@pytest.mark.parametrize("where", ["mask", "int", "slice"])
def test_issue11_setitem_of_a_number_beyond_the_dtype_as_torch(dtype, value, where):
    """float32 refuses a finite number beyond its range, as PyTorch's (corrnet wrote inf:
    fuzz, seed 20261227); float16 takes it as inf, as PyTorch's does."""
    def call(m):
        y = m.zeros(3, dtype=getattr(m, dtype))
        index = {"mask": m.tensor([True, False, True]), "int": 0, "slice": slice(1, None)}[where]
        y[index] = value
        return y

    assert_as_torch(call, same_type=False)


def test_issue11_from_numpy_complex_refused_clearly():
    """PyTorch has complex dtypes; corrnet has none, so it refuses with a TypeError naming
    the supported dtypes (a deliberate, documented difference)."""
    with pytest.raises(TypeError, match="complex128: corrnet supports"):
        ct.from_numpy(np.zeros(3, dtype=complex))


# ---------------------------------------------------------------------------------------------
# class 3: in-place ops; 11: cat, repeat
# ---------------------------------------------------------------------------------------------


def _grads(build):
    out = []
    for m in (tt, ct):
        leaves = build(m)
        out.append([None if t.grad is None else _numpy(t.grad) for t in leaves])
    return out


@pytest.mark.parametrize("build", [
    "y = x1 * 1; y /= x2", "y = x1 * 1; y.div_(x2)", "y = x1 * 1; y.mul_(x2)",
    "y = a * 1; y /= x2", "y = a * 1; y.mul_(x2)", "y = x1 * 1; y.copy_(a)",
    "y = x1 * 1; y.zero_()", "y = x1 * 1; y.relu_()", "y = x1 * 1; F.relu(y, inplace=True)",
    "y = F.relu(x1 * 1)",
])
def test_issue11_inplace_gradients_as_torch(build):
    """``y /= x2`` with only x2 requiring grad was refused by the version check (Div's saved
    y was overwritten); relu's gradient at NaN differed (PyTorch passes it)."""
    def run(m):
        x1 = m.tensor([-1.5, 0.0, float("nan"), 2.0], requires_grad=True)
        x2 = m.tensor(3.0, requires_grad=True)
        a = m.tensor([1.0, -2.0, 3.0, 4.0])
        namespace = {"x1": x1, "x2": x2, "a": a, "F": m.nn.functional}
        exec(build, namespace)  # noqa: S102 - the statements under test
        (namespace["y"] * m.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
        return x1, x2
    torch_grads, corrnet_grads = _grads(run)
    for t, c in zip(torch_grads, corrnet_grads, strict=True):
        assert (t is None) == (c is None)
        if t is not None:
            np.testing.assert_allclose(c, t, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("call", [
    lambda m: m.zeros(2, 3).repeat(2), lambda m: m.zeros(2).repeat(-1),
    lambda m: m.zeros(2).repeat(2.5), lambda m: m.zeros(2).repeat(True),
    lambda m: m.zeros(2).repeat([]), lambda m: m.zeros(()).repeat([]),
    lambda m: m.zeros(()).repeat(2, 3), lambda m: m.zeros(3).repeat(),
    lambda m: m.ones(1, 3, 4).repeat(3, 0, 2, 1),
    lambda m: m.arange(6).reshape(2, 3).repeat(2, 1, 2),
    lambda m: m.cat([m.zeros(()), m.zeros(())]), lambda m: m.cat([m.zeros(2), m.zeros(())], dim=-1),
    lambda m: m.cat([m.zeros(2), m.zeros(0)]), lambda m: m.cat([m.zeros(2, 3), m.zeros(2, 3)], 2),
    lambda m: m.zeros(3).expand(), lambda m: m.stack([m.zeros(3)], dim=True),
    lambda m: m.zeros(3).unsqueeze(True), lambda m: m.zeros(()).permute(),
    lambda m: m.zeros(()).reshape(), lambda m: m.zeros(()).view(),
    # a size beyond int64 is refused clearly (fuzz, seed 20261227: NumPy's ValueError); one
    # NumPy cannot hold, in an empty tensor, too (PyTorch makes it: see
    # test_issue11_empty_reshape_beyond_numpy_refused_clearly)
    lambda m: m.zeros(1, 2, 2, 0).reshape(0, 2, 2, 2**63),
    lambda m: m.zeros(0).reshape(0, -2**63), lambda m: m.zeros(0).reshape(0, 2**40),
    # squeeze with dim None: refused, as PyTorch (fuzz, seed 20261224: corrnet squeezed all)
    lambda m: m.zeros(1, 2, 1).squeeze(None), lambda m: m.squeeze(m.zeros(1, 2, 1), None),
    lambda m: m.zeros(1, 2, 1).squeeze(dim=None), lambda m: m.zeros(1, 2, 1).squeeze(),
    lambda m: m.zeros(1, 2, 1).squeeze(()), lambda m: m.zeros(1, 2, 1).squeeze((0, 2)),
    lambda m: m.zeros(4, 2).expand(2**63, 4, 2), lambda m: m.zeros(4, 2).expand(-1, 4, -1),
    lambda m: m.zeros(()).expand_as(m.zeros(())), lambda m: m.zeros(4, 1, 0, 4).flatten(-4, 1),
    lambda m: m.zeros(5, 2, 0)[[[0, 4], [2, 0]]], lambda m: m.zeros(0, 3)[:, m.tensor([5])],
    lambda m: m.where(m.tensor(True))[0], lambda m: m.zeros(3, 4).all(dim=[]),
    lambda m: m.ones(1, 2).amax(dim=1, keepdim=float("nan")),
    lambda m: m.ones(2, 3).sum(dim=-2, keepdim=[1]), lambda m: m.ones(2, 3).mean(0, keepdim="2"),
    lambda m: m.var(m.ones(1, 2), dim=-2, correction=object()),
    lambda m: m.zeros(3).fill_(1e300), lambda m: m.zeros(3).fill_([[1]]),
    lambda m: m.zeros(3, dtype=m.int32).fill_(2**40), lambda m: m.zeros(3).fill_(2**63),
    lambda m: m.zeros(3).copy_(2**63), lambda m: m.zeros(()).copy_(m.tensor(2)),
    lambda m: m.zeros(3, dtype=m.uint8).clip(max=300),
    lambda m: m.zeros(3, dtype=m.uint8).clip(min=None, max=-(2**31)),
])
def test_issue11_repeat_cat_shapes_as_torch(call):
    """repeat(3, 0, 2, 1) was refused (cat of nothing), repeat() accepted; cat of 0-d
    tensors reached a tuple IndexError; and the corners of a 12,000-call run (fill_ values,
    keepdim types, expand sizes, flatten of empty tensors...)."""
    assert_as_torch(call, same_type=False)


def test_issue11_repeat_gradient_as_torch():
    grads = []
    for m in (tt, ct):
        x = m.arange(6.0).reshape(2, 3).requires_grad_()
        (x.repeat(2, 1, 2) * m.arange(24.0).reshape(2, 2, 6)).sum().backward()
        grads.append(_numpy(x.grad))
    np.testing.assert_array_equal(grads[1], grads[0])


# ---------------------------------------------------------------------------------------------
# argmax / argmin / max / min with NaN in some lines only
# ---------------------------------------------------------------------------------------------


def test_issue11_argmin_nan_only_in_its_own_line():
    """One NaN anywhere made every line's argmin/argmax the position of its first NaN (0 for
    lines without one): ``[[nan, 1], [3, -2]].argmin(1)`` gave [0, 0]; PyTorch [0, 1]."""
    assert_as_torch(lambda m: m.tensor([[float("nan"), 1.0], [3.0, -2.0]]).argmin(1))
    assert_as_torch(lambda m: m.tensor([[float("nan"), 1.0], [3.0, -2.0]]).max(1))


@oracle_settings(100)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       dtype=st.sampled_from(["float16", "float32", "float64"]),
       name=st.sampled_from(["argmax", "argmin", "max", "min"]),
       nan_fraction=st.sampled_from([0.0, 0.1, 0.3, 1.0]), keepdim=st.booleans(),
       data=st.data())
def test_extreme_index_with_scattered_nans_matches_torch(shape, dtype, name, nan_fraction,
                                                          keepdim, data):
    """The widened strategy: NaN and +-inf scattered over some lines (the reduction suite's
    strategy drew finite values only)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    values = rng.standard_normal(shape)
    values[rng.random(shape) < nan_fraction] = np.nan
    values[rng.random(shape) < 0.1] = np.inf
    values = values.astype(dtype)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    assert_as_torch(lambda m: getattr(m.tensor(values), name)(dim, keepdim=keepdim))


def test_issue11_pow_with_a_bool_exponent_refused_in_backward():
    """PyTorch computes ``x ** bool_tensor`` but its derivative refuses the bool exponent;
    corrnet returned a gradient."""
    for m in (tt, ct):
        x = m.tensor(1.5, requires_grad=True)
        y = x ** m.tensor(True)
        with pytest.raises(RuntimeError, match="Subtraction"):
            y.backward()
