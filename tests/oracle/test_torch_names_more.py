"""The fourth batch of PyTorch's names, against PyTorch: nonzero/argwhere, the running
products and extremes (cumprod, cummax, cummin), order statistics (median, nanmedian,
kthvalue), unique/unique_consecutive, bincount, diff, searchsorted/bucketize; the products
with a scaled sum (addmm, addmv, addbmm, baddbmm), tensordot, inner, kron, cross, dist;
take/take_along_dim, index_add/index_copy/index_fill, tensor_split and its h/v/d forms, the
column/row/depth stacks, block_diag, cartesian_prod; sinc, heaviside, gcd, lcm; and the dtype
questions (is_tensor, result_type, promote_types, can_cast).

As in test_torch_names.py: each call runs in both libraries on the same random operands
(every dtype, NaN, infinities, zeros and -0.0 among the values): both raise, or both return
equal values of the same dtype and shape. Where PyTorch leaves a choice open (which of equal
elements median(dim) and kthvalue return the index of), the index must point at an element
equal to the value returned.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet

from torch_compare import assert_grad, assert_same

try:  # as a package module, or with pytest's rootdir/prepend import mode
    from .test_torch_names import DTYPES, arrays, outcome
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from test_torch_names import DTYPES, arrays, outcome


def assert_results(got, expected, what=""):
    """Equal tensors, or equal tuples (named tuples too) of them, or equal Python values."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, corrnet.Tensor), f"{what}: corrnet gave {type(got).__name__}"
        assert_same(got, expected, what)
    elif isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected), (
            f"{what}: corrnet {got!r}, torch {expected!r}")
        if hasattr(expected, "_fields"):
            assert getattr(got, "_fields", None) == expected._fields, what
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_results(g, e, f"{what}[{i}]")
    elif isinstance(expected, torch.dtype):
        assert str(got) == str(expected), f"{what}: {got} != torch {expected}"
    else:
        assert got == expected, f"{what}: {got!r} != torch {expected!r}"


def assert_as_torch(call, what=""):
    """call(corrnet) as call(torch): both raise, or both return equal results."""
    ours, theirs = outcome(corrnet, call), outcome(torch, call)
    assert ours[0] == theirs[0], f"{what}: corrnet {ours}, torch {theirs}"
    if ours[0] == "ok":
        assert_results(ours[1], theirs[1], what)
    return ours[0]


def assert_selection_as_torch(call, source, what=""):
    """For (values, indices) whose indices PyTorch leaves open among equal elements: equal
    values, and indices of torch's shape and dtype that point at elements equal to them."""
    ours, theirs = outcome(corrnet, lambda m: call(m, m.tensor(source))), outcome(
        torch, lambda m: call(m, m.tensor(source)))
    assert ours[0] == theirs[0], f"{what}: corrnet {ours}, torch {theirs}"
    if ours[0] != "ok":
        return
    (values, indices), (expected_values, expected_indices) = ours[1], theirs[1]
    assert type(ours[1]).__name__ == type(theirs[1]).__name__, what
    assert_same(values, expected_values, what + " values")
    assert str(indices.dtype) == str(expected_indices.dtype), what
    assert tuple(indices.shape) == tuple(expected_indices.shape), what


# ---------------------------------------------------------------------------------------------
# searching, counting, running products and extremes, order statistics
# ---------------------------------------------------------------------------------------------

@st.composite
def searching_calls(draw):
    """(name, array, call) with arguments mostly valid."""
    array = draw(arrays(dtypes=DTYPES))
    ndim = array.ndim
    dim = draw(st.integers(-ndim - 1, ndim)) if ndim else draw(st.sampled_from([0, -1, 1]))
    keepdim = draw(st.booleans())
    name = draw(st.sampled_from([
        "nonzero", "argwhere", "cumprod", "cummax", "cummin", "median", "nanmedian",
        "kthvalue", "unique", "unique_consecutive", "diff", "bincount", "ravel"]))
    if name == "nonzero":
        as_tuple = draw(st.booleans())
        return name, array, lambda m, x: x.nonzero(as_tuple=as_tuple)
    if name == "cumprod":
        dtype = draw(st.sampled_from([None, "float64", "int64", "bool"]))
        return name, array, lambda m, x: x.cumprod(dim, dtype=dtype and getattr(m, dtype))
    if name in ("cummax", "cummin"):
        if array.size == 0 and not -max(ndim, 1) <= dim < max(ndim, 1):
            # PyTorch's cummax and cummin return an empty tensor before they check dim (its
            # cumsum and cumprod check it): corrnet refuses the dim, as everywhere
            return name, array, lambda m, x: _refused_by_corrnet(m, lambda: getattr(x, name)(
                dim), IndexError)
        return name, array, lambda m, x: getattr(x, name)(dim)
    if name in ("median", "nanmedian"):
        if draw(st.booleans()):
            return name, array, lambda m, x: getattr(x, name)()
        return name, array, lambda m, x: getattr(x, name)(dim, keepdim)
    if name == "kthvalue":
        k = draw(st.integers(0, 5))
        return name, array, lambda m, x: x.kthvalue(k, dim, keepdim)
    if name == "unique":
        flags = dict(sorted=draw(st.booleans()), return_inverse=draw(st.booleans()),
                     return_counts=draw(st.booleans()))
        axis = draw(st.sampled_from([None, dim]))
        if axis is not None and array.dtype.kind == "f":
            # (NaN out: PyTorch sorts slices holding NaN in no consistent order, as mode's)
            array = np.where(np.isnan(array), 0, array).astype(array.dtype)
        return name, array, lambda m, x: x.unique(dim=axis, **flags)
    if name == "unique_consecutive":
        flags = dict(return_inverse=draw(st.booleans()), return_counts=draw(st.booleans()))
        axis = draw(st.sampled_from([None, dim]))
        return name, array, lambda m, x: x.unique_consecutive(dim=axis, **flags)
    if name == "diff":
        n = draw(st.integers(-1, 3))
        extra = draw(st.sampled_from([None, "prepend", "append", "both"]))

        def call(m, x):
            pieces = {}
            if extra in ("prepend", "both"):
                pieces["prepend"] = x.narrow(dim, 0, 1) if x.dim() and x.shape[dim] else x
            if extra in ("append", "both"):
                pieces["append"] = x[..., :1] * 2 if x.dim() else x
            return x.diff(n, dim, **pieces)
        if n == 0 and ndim and not -ndim <= dim < ndim:
            # PyTorch's diff with n=0 returns its input before it checks dim: corrnet refuses
            # the dim, as everywhere
            return name, array, lambda m, x: _refused_by_corrnet(m, lambda: call(m, x),
                                                                 IndexError)
        return name, array, call
    if name == "bincount":
        values = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(
            draw(st.sampled_from([0, -1])), 6, draw(st.integers(0, 6)))
        weights = draw(st.sampled_from([None, "float32", "float64", "int32", "float16"]))
        minlength = draw(st.integers(-1, 8))
        return name, values, lambda m, x: x.bincount(
            None if weights is None else m.arange(x.numel()).to(getattr(m, weights)) / 2,
            minlength)
    return name, array, lambda m, x: getattr(x, name)()


def _refused_by_corrnet(m, call, error):
    """corrnet raises `error` where PyTorch does not (see the caller); both then give True."""
    if m is torch:
        return True
    with pytest.raises(error):
        call()
    return True


@settings(max_examples=400, deadline=None)
@given(problem=searching_calls())
def test_searching_and_order_statistics_as_torch(problem):
    name, array, call = problem
    what = f"{name} of {array.dtype} {array.shape}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in ("median", "nanmedian", "kthvalue"):
            probe = outcome(torch, lambda m: call(m, m.tensor(array)))
            if probe[0] == "ok" and isinstance(probe[1], tuple):
                assert_selection_as_torch(call, array, what)
                return
        assert_as_torch(lambda m: call(m, m.tensor(array)), what)


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), seed=st.integers(0, 2**32),
       data=st.data())
def test_cumprod_gradient_with_zeros_as_torch(shape, seed, data):
    """float64, exact zeros among the values (one, two, or none per slice): the gradient of
    a random weighting of the running product, against PyTorch's."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape)
    values[rng.random(shape) < data.draw(st.sampled_from([0.0, 0.2, 0.5]))] = 0.0
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    weights = rng.standard_normal(shape)
    grads = {}
    for m in (corrnet, torch):
        x = m.tensor(values, requires_grad=True)
        (x.cumprod(dim) * m.tensor(weights)).sum().backward()
        grads[m.__name__] = x.grad
    assert_grad(grads["corrnet"], grads["torch"], f"cumprod({dim}) of {shape}")


@settings(max_examples=100, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), seed=st.integers(0, 2**32),
       data=st.data())
def test_selections_pass_their_gradient_as_torch(shape, seed, data):
    """Distinct float64 values (no ties, so the indices are PyTorch's): cummax, cummin,
    median, nanmedian and kthvalue pass the gradient to the elements they return."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 7
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = data.draw(st.integers(1, shape[dim]))
    name = data.draw(st.sampled_from(["cummax", "cummin", "median", "nanmedian", "kthvalue",
                                      "median_all"]))
    grads, outputs = {}, {}
    for m in (corrnet, torch):
        x = m.tensor(values, requires_grad=True)
        if name == "median_all":
            out = x.median()
        elif name == "kthvalue":
            out = x.kthvalue(k, dim)
        else:
            out = getattr(x, name)(dim)
        value = out if name == "median_all" else out.values
        (value * 3).sum().backward()
        grads[m.__name__], outputs[m.__name__] = x.grad, out
    assert_results(outputs["corrnet"], outputs["torch"], name)
    assert_grad(grads["corrnet"], grads["torch"], f"{name} gradient")


# ---------------------------------------------------------------------------------------------
# products with a scaled sum, contractions, elementwise functions
# ---------------------------------------------------------------------------------------------

F32, I64 = "float32", "int64"


def _t(m, shape, dtype=F32, seed=0, special=False):
    """A deterministic operand: halves in [-3, 3] (ints: -3..3), NaN and inf with `special`."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.uniform(-3, 3, shape) * 2) / 2
    if special and values.size:
        values.flat[0], values.flat[-1] = np.nan, np.inf
    return m.tensor(values.astype(dtype))


PRODUCT_CALLS = [
    lambda m: m.addmm(_t(m, (2, 4)), _t(m, (2, 3), seed=1), _t(m, (3, 4), seed=2)),
    lambda m: m.addmm(_t(m, (4,)), _t(m, (2, 3), seed=1), _t(m, (3, 4), seed=2), beta=0.5,
                      alpha=-2),
    lambda m: m.addmm(_t(m, (2, 4), special=True), _t(m, (2, 3)), _t(m, (3, 4)), beta=0),
    lambda m: m.addmm(_t(m, (2, 4), I64), _t(m, (2, 3), I64), _t(m, (3, 4), I64), beta=2),
    lambda m: m.addmm(_t(m, (2, 4), I64), _t(m, (2, 3), I64), _t(m, (3, 4), I64), beta=0.5),
    lambda m: m.addmm(_t(m, (2, 4), "float64"), _t(m, (2, 3)), _t(m, (3, 4))),
    lambda m: m.addmm(_t(m, (3, 4)), _t(m, (2, 3)), _t(m, (3, 4))),
    lambda m: m.addmm(_t(m, (2, 4)), _t(m, (2, 3)), _t(m, (2, 4))),
    lambda m: _t(m, (1, 4)).addmm(_t(m, (2, 3)), _t(m, (3, 4)), alpha=3),
    lambda m: m.addmv(_t(m, (2,)), _t(m, (2, 3)), _t(m, (3,)), beta=-1),
    lambda m: m.addmv(_t(m, (2,)), _t(m, (2, 3)), _t(m, (4,))),
    lambda m: m.addbmm(_t(m, (2, 4)), _t(m, (5, 2, 3)), _t(m, (5, 3, 4)), alpha=0.5),
    lambda m: m.baddbmm(_t(m, (5, 2, 4)), _t(m, (5, 2, 3)), _t(m, (5, 3, 4)), beta=2),
    lambda m: m.baddbmm(_t(m, (2, 4)), _t(m, (5, 2, 3)), _t(m, (4, 3, 4))),
    lambda m: m.tensordot(_t(m, (2, 3, 4)), _t(m, (3, 4, 5))),
    lambda m: m.tensordot(_t(m, (2, 3)), _t(m, (3, 2)), dims=([1], [0])),
    lambda m: m.tensordot(_t(m, (2, 3)), _t(m, (2, 3)), dims=0),
    lambda m: m.tensordot(_t(m, (2, 3)), _t(m, (2, 3)), dims=([0, 1], [0, 1])),
    lambda m: m.tensordot(_t(m, (2, 3)), _t(m, (3, 3)), dims=([0], [1])),
    lambda m: m.tensordot(_t(m, (2, 3)), _t(m, (3,)), dims=3),
    lambda m: m.tensordot(_t(m, (2, 3), I64), _t(m, (3, 2), I64), dims=1),
    lambda m: m.inner(_t(m, (2, 3)), _t(m, (4, 3))),
    lambda m: m.inner(_t(m, ()), _t(m, (3,))),
    lambda m: m.inner(_t(m, (2, 3)), _t(m, (2, 4))),
    lambda m: m.kron(_t(m, (2, 3)), _t(m, (2, 2), seed=1)),
    lambda m: m.kron(_t(m, (3,), I64), _t(m, (2, 1, 2), I64)),
    lambda m: m.kron(_t(m, ()), _t(m, (2,))),
    lambda m: m.kron(_t(m, (2,), "bool"), _t(m, (2,), I64)),
    lambda m: m.cross(_t(m, (4, 3)), _t(m, (4, 3), seed=1), dim=1),
    lambda m: m.cross(_t(m, (3, 4)), _t(m, (3, 1), seed=1), dim=0),
    lambda m: m.cross(_t(m, (2, 3), I64), _t(m, (2, 3), I64, seed=2), dim=-1),
    lambda m: m.cross(_t(m, (4, 2)), _t(m, (4, 2)), dim=1),
    lambda m: m.cross(_t(m, (3,)), _t(m, (1, 3)), dim=-1),
    lambda m: m.dist(_t(m, (2, 3)), _t(m, (3,), seed=1)),
    lambda m: m.dist(_t(m, (2, 3)), _t(m, (2, 3), seed=1), p=0),
    lambda m: m.dist(_t(m, (2, 3)), _t(m, (2, 3), seed=1), p=float("inf")),
    lambda m: m.sinc(_t(m, (3, 4), special=True)), lambda m: m.sinc(_t(m, (5,), I64)),
    lambda m: m.sinc(m.tensor([0.0, -0.0, 1e-30, 2.5])),
    lambda m: m.heaviside(_t(m, (2, 3), special=True), _t(m, (3,), seed=1)),
    lambda m: m.heaviside(m.tensor([-1, 0, 2]), m.tensor([5])),
    lambda m: m.heaviside(m.tensor([-1.0, 0.0]), m.tensor([5])),
    lambda m: m.gcd(_t(m, (3, 4), I64), _t(m, (4,), I64, seed=1)),
    lambda m: m.lcm(m.tensor([4, -6, 0, 7], dtype=m.int32), m.tensor([6, 4, 3, 0])),
    lambda m: m.gcd(m.tensor([4, 6], dtype=m.uint8), m.tensor([6, 4], dtype=m.int8)),
    lambda m: m.gcd(_t(m, (2,)), _t(m, (2,))),
    lambda m: m.gcd(m.tensor([True]), m.tensor([True])),
]


@pytest.mark.parametrize("call", PRODUCT_CALLS)
def test_products_and_elementwise_functions_as_torch(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_as_torch(call)


def test_cross_without_dim_takes_the_first_dim_of_size_3_with_a_warning():
    with pytest.warns(UserWarning):
        got = corrnet.cross(corrnet.ones(3, 2), corrnet.arange(6.0).reshape(3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.cross(torch.ones(3, 2), torch.arange(6.0).reshape(3, 2))
    assert_same(got, expected, "cross")


# ---------------------------------------------------------------------------------------------
# indexing, splits and joins
# ---------------------------------------------------------------------------------------------

INDEXING_CALLS = [
    lambda m: m.take(_t(m, (3, 4)), m.tensor([[0, 11], [-1, -12]])),
    lambda m: m.take(_t(m, (3, 4)), m.tensor([12])),
    lambda m: m.take(_t(m, (3, 4)), m.tensor([1], dtype=m.int32)),
    lambda m: m.take(_t(m, ()), m.tensor([0, -1])),
    lambda m: m.take(_t(m, (0,)), m.tensor([], dtype=m.int64)),
    lambda m: m.take_along_dim(_t(m, (3, 4)), m.tensor([[0], [3], [1]]), 1),
    lambda m: m.take_along_dim(_t(m, (3, 4)), m.tensor([[0, 1]]), 0),
    lambda m: m.take_along_dim(_t(m, (3, 4)), m.tensor([11, 0])),
    lambda m: m.take_along_dim(_t(m, (3, 4)), m.tensor([[[0]]]), 1),
    lambda m: m.take_along_dim(_t(m, (3, 4)), m.tensor([[0]], dtype=m.int32), 1),
    lambda m: m.take_along_dim(_t(m, (3, 1)), m.tensor([[0, 0, 0]]), 0),
    lambda m: _t(m, (3, 4)).index_add(0, m.tensor([2, 0, 2]), _t(m, (3, 4), seed=1)),
    lambda m: _t(m, (3, 4)).index_add(1, m.tensor([3], dtype=m.int32), _t(m, (3, 1)),
                                      alpha=-2),
    lambda m: _t(m, (3, 4), I64).index_add(0, m.tensor([1]), _t(m, (1, 4), I64), alpha=3),
    lambda m: _t(m, (3, 4)).index_add(0, m.tensor([3]), _t(m, (1, 4))),
    lambda m: _t(m, (3, 4)).index_add(0, m.tensor([0]), _t(m, (2, 4))),
    lambda m: _t(m, (3, 4)).index_add(0, m.tensor([0]), _t(m, (1, 4), "float64")),
    lambda m: _t(m, (3, 4)).index_add(0, m.tensor([0.0]), _t(m, (1, 4))),
    lambda m: _t(m, (4,)).index_add(0, m.tensor([1, 1]), m.tensor([1.0, 2.0])),
    lambda m: _t(m, (3, 4)).index_copy(1, m.tensor([3, 0]), _t(m, (3, 2), seed=1)),
    lambda m: _t(m, (3, 4)).index_copy(0, m.tensor([-1]), _t(m, (1, 4))),
    lambda m: _t(m, (3, 4)).index_fill(1, m.tensor([0, 2]), -1.5),
    lambda m: _t(m, (3, 4)).index_fill(0, m.tensor([-1]), m.tensor(7.0)),
    lambda m: _t(m, (3, 4), I64).index_fill(1, m.tensor([1]), 2),
    lambda m: _t(m, (3, 4)).index_fill(1, m.tensor([4]), 0.0),
    lambda m: _t(m, (3, 4)).index_fill(1, m.tensor([[1]]), 0.0),
    lambda m: _t(m, (3, 4)).index_fill_(0, m.tensor([1]), 9.0),
    lambda m: _t(m, (3, 4)).index_add_(1, m.tensor([0]), _t(m, (3, 1))),
    lambda m: _t(m, (3, 4)).index_copy_(0, m.tensor([2]), _t(m, (1, 4))),
    lambda m: m.tensor_split(m.arange(7), 3), lambda m: m.tensor_split(m.arange(7), [1, 5]),
    lambda m: m.tensor_split(m.arange(7), [5, 1, -2, 9]),
    lambda m: m.tensor_split(_t(m, (3, 4)), 5, dim=1),
    lambda m: m.tensor_split(_t(m, (3, 4)), m.tensor([1, 2]), dim=-1),
    lambda m: m.tensor_split(_t(m, (3, 4)), 0), lambda m: m.tensor_split(_t(m, ()), 2),
    lambda m: m.tensor_split(_t(m, (3, 4)), m.tensor(2)),
    lambda m: m.hsplit(_t(m, (3, 4)), 2), lambda m: m.hsplit(_t(m, (3, 4)), 3),
    lambda m: m.hsplit(m.arange(6), [1, 4]), lambda m: m.hsplit(_t(m, ()), 1),
    lambda m: m.vsplit(_t(m, (4, 3)), 2), lambda m: m.vsplit(_t(m, (4,)), 2),
    lambda m: m.dsplit(_t(m, (2, 3, 4)), [1]), lambda m: m.dsplit(_t(m, (2, 3)), 1),
    lambda m: _t(m, (2, 3, 6)).dsplit(3),
    lambda m: m.column_stack([m.tensor([1, 2]), m.tensor([[3], [4]]), m.tensor([5.0, 6.0])]),
    lambda m: m.column_stack([m.tensor(1), m.tensor(2)]),
    lambda m: m.column_stack([m.tensor([1, 2]), m.tensor([3])]),
    lambda m: m.row_stack([m.tensor([1, 2]), m.tensor([[3, 4]])]),
    lambda m: m.dstack([m.tensor([1, 2]), m.tensor([3, 4])]),
    lambda m: m.dstack([_t(m, (2, 3)), _t(m, (2, 3, 2))]),
    lambda m: m.dstack([m.tensor(1.0), m.tensor(2)]),
    lambda m: m.block_diag(m.tensor([[1, 2]]), m.tensor(3), m.tensor([[4], [5]])),
    lambda m: m.block_diag(_t(m, (2, 2)), m.tensor([1, 2], dtype=m.int32)),
    lambda m: m.block_diag(_t(m, (2, 2, 1))), lambda m: m.block_diag(),
    lambda m: m.block_diag(_t(m, (0, 2)), _t(m, (1, 0))),
    lambda m: m.cartesian_prod(m.tensor([1, 2]), m.tensor([3, 4]), m.tensor([5])),
    lambda m: m.cartesian_prod(m.tensor([1, 2])),
    lambda m: m.cartesian_prod(m.tensor([1, 2]), _t(m, (2, 1))),
    lambda m: m.ravel(_t(m, (3, 4)).t()), lambda m: _t(m, ()).ravel(),
    lambda m: m.nonzero(m.tensor(0.0), as_tuple=True), lambda m: m.argwhere(_t(m, (0, 3))),
    lambda m: m.is_nonzero(m.tensor([0.0])), lambda m: m.is_nonzero(m.tensor([[3]])),
    lambda m: m.is_nonzero(m.tensor([])), lambda m: m.is_nonzero(m.tensor([1, 2])),
    lambda m: m.tensor([True]).is_nonzero(),
]


@pytest.mark.parametrize("call", INDEXING_CALLS)
def test_indexing_splits_and_joins_as_torch(call):
    assert_as_torch(call)


SEARCH_CALLS = [
    lambda m: m.searchsorted(m.tensor([1, 3, 5]), m.tensor([0, 3, 6])),
    lambda m: m.searchsorted(m.tensor([1, 3, 5]), m.tensor([[3, 5]]), right=True),
    lambda m: m.searchsorted(m.tensor([1.0, 3.0, 5.0]), m.tensor([3.0, float("nan")]),
                             side="right", out_int32=True),
    lambda m: m.searchsorted(m.tensor([1, 3, 5]), 4),
    lambda m: m.searchsorted(m.tensor([[1, 3, 5], [2, 4, 6]]), m.tensor([[3], [3]])),
    lambda m: m.searchsorted(m.tensor([[1, 3, 5], [2, 4, 6]]), m.tensor([3, 3])),
    lambda m: m.searchsorted(m.tensor([5, 1, 3]), m.tensor([2, 4]),
                             sorter=m.tensor([1, 2, 0])),
    lambda m: m.searchsorted(m.tensor([5, 1, 3]), m.tensor([2]), sorter=m.tensor([0, 5, 1])),
    lambda m: m.searchsorted(m.tensor([5, 1, 3]), m.tensor([2]), sorter=m.tensor([-1, 0, 1])),
    lambda m: m.searchsorted(m.tensor([5, 1, 3]), m.tensor([2]),
                             sorter=m.tensor([1, 2, 0], dtype=m.int32)),
    lambda m: m.searchsorted(m.tensor([1, 3]), m.tensor([2]), side="middle"),
    lambda m: m.searchsorted(m.tensor([1, 3]), m.tensor([2]), side="left", right=True),
    lambda m: m.searchsorted(m.tensor(1), m.tensor([2])),
    lambda m: m.bucketize(m.tensor([0, 3, 6]), m.tensor([1, 3, 5])),
    lambda m: m.bucketize(m.tensor([[0.5, 3.0]]), m.tensor([1.0, 3.0]), right=True),
    lambda m: m.bucketize(m.tensor([1]), m.tensor([[1, 2]])),
]


@pytest.mark.parametrize("call", SEARCH_CALLS)
def test_searchsorted_and_bucketize_as_torch(call):
    assert_as_torch(call)


@pytest.mark.parametrize("first", DTYPES)
@pytest.mark.parametrize("second", DTYPES)
def test_dtype_questions_as_torch(first, second):
    for call in (
        lambda m: m.promote_types(getattr(m, first), getattr(m, second)),
        lambda m: m.can_cast(getattr(m, first), getattr(m, second)),
        lambda m: m.result_type(m.ones(2, dtype=getattr(m, first)),
                                m.ones((), dtype=getattr(m, second))),
        lambda m: m.result_type(m.ones((), dtype=getattr(m, first)), 2.5),
        lambda m: m.result_type(m.ones(1, dtype=getattr(m, first)), True),
        lambda m: m.is_floating_point(m.ones(1, dtype=getattr(m, first))),
        lambda m: m.is_complex(m.ones(1, dtype=getattr(m, second))),
    ):
        assert_as_torch(call, f"{first}, {second}")


def test_is_tensor_and_argument_refusals_as_torch():
    for call in (lambda m: m.is_tensor(m.ones(1)), lambda m: m.is_tensor([1]),
                 lambda m: m.is_tensor(np.ones(1)), lambda m: m.result_type([1], 2),
                 lambda m: m.is_floating_point(1.0), lambda m: m.promote_types("float", 1)):
        assert_as_torch(call)


@pytest.mark.parametrize("name", ["unique", "unique_consecutive"])
def test_unique_of_a_tensor_that_requires_grad_records_an_op_that_cannot_differentiate(name):
    """As PyTorch: the values require grad, and a backward pass through them raises."""
    for m in (corrnet, torch):
        x = m.tensor([1.0, 2.0, 2.0, 1.0], requires_grad=True)
        values = getattr(x, name)()
        assert values.requires_grad
        with pytest.raises(NotImplementedError, match="derivative"):
            values.sum().backward()
        with m.no_grad():
            assert not getattr(x, name)().requires_grad


def test_median_and_nanmedian_refuse_an_explicit_none_dim_as_torch():
    for call in (lambda m: m.tensor([1.0, 2.0]).median(dim=None),
                 lambda m: m.nanmedian(m.tensor([1.0, 2.0]), None),
                 lambda m: m.tensor([1.0, 2.0]).median(None, True)):
        assert_as_torch(call)


def _unpooled(m):
    values, indices = m.nn.functional.max_pool2d(m.ones(2, 3, 7, 1), (3, 4), (1, 2), (0, 2),
                                                  return_indices=True)
    return m.nn.functional.max_unpool2d(values.int(), indices, (3, 4), (1, 2), (0, 2))


@pytest.mark.parametrize("call", [
    # a repeat with a count of 0 is empty: NumPy's tile made the copies before it (192 GiB)
    lambda m: m.ones(4, 2, 1, 1).repeat(3, 2**31, 2, 0, 0),
    # an int max_unpool2d whose output is empty never reaches PyTorch's float-only kernel
    _unpooled,
    # cumprod's gradient through an empty slice
    lambda m: _cumprod_grad(m, (0, 3), 0), lambda m: _cumprod_grad(m, (2, 0), 1),
])
def test_fuzz_findings_of_seeds_20261228_and_20261229_as_torch(call):
    assert_as_torch(call)


@pytest.mark.parametrize("call", [
    lambda m: m.lerp(m.tensor([5, 1]), m.tensor([3, 2]), m.tensor(0.5, dtype=m.float16)),
    lambda m: m.lerp(m.tensor(5), m.tensor(3), m.tensor(0.5, dtype=m.float16)),
    lambda m: m.lerp(m.tensor(5), m.tensor(3), m.tensor(0.25, dtype=m.float64)),
    lambda m: m.lerp(m.tensor([5, 1]), m.tensor([3, 2]), 0.5),
    lambda m: m.lerp(m.tensor(5), m.tensor(3), 0.5),
    lambda m: m.lerp(m.tensor([5, 1]), m.tensor([3, 2]), m.tensor([0.5, 0.5])),
    lambda m: m.lerp(m.tensor(5), m.tensor(3), m.tensor(1)),
])
def test_lerp_of_integer_tensors_with_a_floating_0d_weight_as_torch(call):
    """A 0-d floating weight promotes integer input and end (PyTorch's 0-d rule), so lerp
    computes; a number or an integer weight leaves them integers, which lerp refuses (found
    by test_torch_names.py's random draw: lerp(tensor(5), tensor(5), tensor(0.5, float16)))."""
    assert_as_torch(call)


def _cumprod_grad(m, shape, dim):
    x = m.zeros(shape, requires_grad=True)
    x.cumprod(dim).sum().backward()
    return x.grad


# ---------------------------------------------------------------------------------------------
# the fifth batch: running log-sum-exp, quantiles, mode, histograms, covariance and
# correlation, distances, Vandermonde matrices, trapezoidal integrals, combinations, addr,
# select
# ---------------------------------------------------------------------------------------------

STATISTICS_CALLS = [
    lambda m: m.logcumsumexp(m.tensor([0.0, float("-inf"), 1.0, -1000.0, 5.0]), 0),
    lambda m: m.logcumsumexp(_t(m, (3, 4), special=True), 1),
    lambda m: m.logcumsumexp(m.tensor([1, 2]), 0), lambda m: m.logcumsumexp(_t(m, ()), 0),
    lambda m: _t(m, (0, 3)).logcumsumexp(1),
    lambda m: m.quantile(_t(m, (3, 4)), 0.5, dim=1, keepdim=True),
    lambda m: m.quantile(_t(m, (3, 4)), m.tensor([0.5]), keepdim=True),
    lambda m: m.quantile(_t(m, (5,), "float64"), m.tensor([0.0, 0.3, 1.0],
                                                          dtype=m.float64)),
    lambda m: m.quantile(_t(m, (3,)), m.tensor([0.5], dtype=m.float64)),
    lambda m: m.quantile(_t(m, (3,)), 1.5), lambda m: m.quantile(m.tensor([]), 0.5),
    lambda m: m.quantile(m.tensor([1, 2]), 0.5),
    lambda m: m.quantile(_t(m, (3,)), 0.5, interpolation="cubic"),
    lambda m: m.quantile(_t(m, (2, 2)), m.tensor([[0.5]])),
    lambda m: m.quantile(_t(m, (2, 3)), m.tensor([]), dim=1),
    lambda m: m.quantile(_t(m, (2, 3)), m.tensor([]), dim=1, keepdim=True),
    lambda m: m.quantile(_t(m, (2, 3)), m.tensor([])),
    lambda m: m.nanquantile(m.tensor([[float("nan")] * 2, [1.0, 2.0]]), 0.5, dim=1),
    lambda m: m.nanquantile(_t(m, (2, 3), special=True), 0.5, dim=0, interpolation="nearest"),
    lambda m: _t(m, (3, 4)).mode(0, keepdim=True),
    lambda m: m.tensor([1.0, float("nan"), float("nan")]).mode(),
    lambda m: m.tensor([True, False, True]).mode(), lambda m: _t(m, ()).mode(),
    lambda m: _t(m, (2, 0)).mode(1), lambda m: _t(m, (0, 2)).mode(1),
    lambda m: m.histc(m.tensor([1.0, 2.0, 1.0, 5.0]), bins=4, min=0, max=3),
    lambda m: m.histc(_t(m, (3, 4)), bins=5), lambda m: m.histc(m.tensor([2.0, 2.0]), bins=2),
    lambda m: m.histc(m.tensor([1, 2])), lambda m: m.histc(m.tensor([]), bins=3),
    lambda m: m.histc(m.tensor([float("inf"), 1.0])),
    lambda m: m.histc(m.tensor([1.0, float("nan")]), bins=2, min=0, max=2),
    lambda m: m.histc(m.tensor([1.0]), bins=2, min=2, max=1),
    lambda m: m.histc(m.tensor([1.0]), bins=0),
    lambda m: m.cov(_t(m, (3, 5))), lambda m: m.cov(_t(m, (3, 5)), correction=0),
    lambda m: m.cov(_t(m, (2, 3)), fweights=m.tensor([1, 2, 1]),
                    aweights=m.tensor([0.5, 1.0, 1.0])),
    lambda m: m.cov(m.tensor([[1, 2], [3, 5]])), lambda m: m.cov(_t(m, (4,))),
    lambda m: m.cov(_t(m, (1, 2)), correction=2), lambda m: m.cov(_t(m, (2, 2, 2))),
    lambda m: m.cov(_t(m, (2, 3)), fweights=m.tensor([1.0, 2.0, 1.0])),
    lambda m: m.cov(_t(m, (2, 3)), fweights=m.tensor([1, -2, 1])),
    lambda m: m.cov(_t(m, (2, 3)), aweights=m.tensor([1.0, 2.0])),
    lambda m: m.corrcoef(_t(m, (3, 5))), lambda m: m.corrcoef(_t(m, (4,))),
    lambda m: m.corrcoef(m.tensor([[1.0, 1.0], [1.0, 2.0]])),
    lambda m: m.cdist(_t(m, (3, 2)), _t(m, (4, 2), seed=1)),
    lambda m: m.cdist(_t(m, (2, 1, 3, 2)), _t(m, (4, 2, 2), seed=1), p=1),
    lambda m: m.cdist(_t(m, (3, 2)), _t(m, (4, 2), seed=1), p=0),
    lambda m: m.cdist(_t(m, (3, 2)), _t(m, (4, 2), seed=1), p=float("inf")),
    lambda m: m.cdist(_t(m, (3, 2)), _t(m, (4, 2), seed=1), p=3),
    lambda m: m.cdist(_t(m, (3, 2), I64), _t(m, (4, 2), I64)),
    lambda m: m.cdist(_t(m, (3, 2)), _t(m, (4, 3))), lambda m: m.cdist(_t(m, (3,)), _t(m, (3,))),
    lambda m: m.cdist(_t(m, (3, 2)), _t(m, (4, 2)), p=-1),
    lambda m: m.vander(m.tensor([1, 2, 3])), lambda m: m.vander(_t(m, (3,)), N=4,
                                                               increasing=True),
    lambda m: m.vander(m.tensor([True, False])), lambda m: m.vander(_t(m, (2,)), N=0),
    lambda m: m.vander(m.tensor([1, 2], dtype=m.int32)), lambda m: m.vander(_t(m, (2, 2))),
    lambda m: m.trapezoid(_t(m, (3, 4))), lambda m: m.trapezoid(_t(m, (3, 4)), dx=2),
    lambda m: m.trapezoid(_t(m, (3, 4)), _t(m, (4,), seed=1)),
    lambda m: m.trapezoid(_t(m, (3, 4)), _t(m, (3, 4), seed=1), dim=0),
    lambda m: m.trapezoid(m.tensor([1, 2, 3])), lambda m: m.trapezoid(m.tensor([])),
    lambda m: m.trapezoid(_t(m, (3,)), _t(m, (2,))),
    lambda m: m.cumulative_trapezoid(_t(m, (3, 4))),
    lambda m: m.cumulative_trapezoid(_t(m, (3, 4)), _t(m, (4,), seed=1)),
    lambda m: m.cumulative_trapezoid(_t(m, (3, 4)), dx=0.5, dim=0),
    lambda m: m.cumulative_trapezoid(_t(m, (1,))),
    lambda m: m.combinations(m.tensor([1, 2, 3])), lambda m: m.combinations(_t(m, (4,)), r=3),
    lambda m: m.combinations(m.tensor([1, 2]), with_replacement=True),
    lambda m: m.combinations(m.tensor([1, 2]), r=3), lambda m: m.combinations(m.tensor([1, 2]),
                                                                              r=0),
    lambda m: m.combinations(_t(m, (2, 2))), lambda m: m.combinations(m.tensor([1]), r=-1),
    lambda m: m.addr(m.zeros(2, 2), _t(m, (2,)), _t(m, (2,), seed=1), beta=0, alpha=2),
    lambda m: m.addr(m.zeros(2, 2, dtype=m.int64), m.tensor([1, 2]), m.tensor([3, 4])),
    lambda m: m.addr(_t(m, (3,)), _t(m, (2,)), _t(m, (3,))),
    lambda m: m.addr(_t(m, (2, 3)), _t(m, (2, 1)), _t(m, (3,))),
    lambda m: m.arange(6).reshape(2, 3).select(1, -1),
    lambda m: m.select(m.arange(6).reshape(2, 3), 0, 2), lambda m: m.tensor(5).select(0, 0),
    lambda m: m.arange(6).reshape(2, 3).select(2, 0),
]


@pytest.mark.parametrize("call", STATISTICS_CALLS)
def test_statistics_integrals_and_distances_as_torch(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_as_torch(call)


@settings(max_examples=150, deadline=None)
@given(array=arrays(dtypes=["float32", "float64"]), data=st.data())
def test_quantiles_as_torch(array, data):
    """Every interpolation, NaN among the values, one level or several, along a dim or not."""
    name = data.draw(st.sampled_from(["quantile", "nanquantile"]))
    levels = data.draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 0.1234, [0.3, 0.9], [1.0]]))
    interpolation = data.draw(st.sampled_from(["linear", "lower", "higher", "midpoint",
                                               "nearest"]))
    ndim = array.ndim
    dim = data.draw(st.sampled_from([None] + list(range(-ndim, ndim))))
    keepdim = data.draw(st.booleans())

    def call(m):
        q = m.tensor(levels, dtype=getattr(m, str(array.dtype))) if isinstance(
            levels, list) else levels
        return getattr(m, name)(m.tensor(array), q, dim, keepdim, interpolation=interpolation)
    assert_as_torch(call, f"{name} of {array.shape}, q={levels}, dim={dim}")


@settings(max_examples=150, deadline=None)
@given(array=arrays(dtypes=DTYPES), data=st.data())
def test_mode_and_histc_as_torch(array, data):
    """mode: the smallest of the most frequent values and its last place; histc: counts in
    equal bins (every dtype, NaN and infinities among the values). mode is compared without
    NaN: PyTorch's sorts a slice with NaN in no consistent order (its mode of
    [0.5, -1, 1.5, nan, 1.5] is -1, counted once), where corrnet counts each NaN once, last."""
    ndim = array.ndim
    if data.draw(st.booleans()):
        if array.dtype.kind == "f":
            array = np.where(np.isnan(array), 0, array).astype(array.dtype)
        dim = data.draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
        keepdim = data.draw(st.booleans())
        assert_as_torch(lambda m: m.tensor(array).mode(dim, keepdim), f"mode of {array}")
    else:
        bins = data.draw(st.integers(1, 6))
        low, high = data.draw(st.sampled_from([(0, 0), (-2, 2), (0, 1), (-0.5, 3.25)]))
        assert_as_torch(lambda m: m.histc(m.tensor(array), bins, low, high),
                        f"histc of {array}")


@settings(max_examples=100, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), seed=st.integers(0, 2**32),
       data=st.data())
def test_logcumsumexp_values_and_gradient_as_torch(shape, seed, data):
    """float64, values over a wide range (exp of them overflows), -inf among them."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * data.draw(st.sampled_from([1.0, 300.0]))
    values[rng.random(shape) < 0.1] = -np.inf
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    weights = rng.standard_normal(shape)
    outputs, grads = {}, {}
    for m in (corrnet, torch):
        x = m.tensor(values, requires_grad=True)
        out = x.logcumsumexp(dim)
        (out.masked_fill(out.isinf(), 0) * m.tensor(weights)).sum().backward()
        outputs[m.__name__], grads[m.__name__] = out.detach(), x.grad
    assert_results(outputs["corrnet"], outputs["torch"], "logcumsumexp")
    assert_grad(grads["corrnet"], grads["torch"], "logcumsumexp gradient")


def test_vander_gradient_matches_finite_differences():
    """PyTorch 2.13's vander has no working backward (its in-place cumprod_), so corrnet's
    gradient is checked against central differences of its own forward, in float64."""
    values = np.array([0.7, -1.3, 2.1])
    weights = np.random.default_rng(0).standard_normal((3, 4))
    x = corrnet.tensor(values, requires_grad=True)
    (corrnet.vander(x, 4) * corrnet.tensor(weights)).sum().backward()

    def loss(v):
        return float((corrnet.vander(corrnet.tensor(v), 4) * corrnet.tensor(weights)).sum())
    step = 1e-6
    numeric = [(loss(values + step * e) - loss(values - step * e)) / (2 * step)
               for e in np.eye(3)]
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6)
