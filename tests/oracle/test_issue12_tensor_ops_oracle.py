"""Oracle tests of issue 12's tensor ops against PyTorch: forward values, dtypes, shapes and
every input gradient (through `helpers.check_op`), over hypothesis-drawn shapes, dims and
options; a call PyTorch refuses must be refused by corrnet too.

Sorting ops (sort, argsort, topk) get inputs without ties (PyTorch does not specify the
order of equal elements, nor which of them topk picks)."""

from __future__ import annotations

import numpy as np
import torch as tt
from hypothesis import given
from hypothesis import strategies as st

import corrnet as ct

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import assert_accepted, check_op, distinct_array, oracle_settings, random_array
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import assert_accepted, check_op, distinct_array, oracle_settings, random_array

SETTINGS = oracle_settings(30)
FLOATS = st.sampled_from([np.float32, np.float64])
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def _rng(seed):
    return np.random.default_rng(seed)


@SETTINGS
@given(shape=shapes, data=st.data(), dtype=FLOATS, seed=st.integers(0, 2**16))
def test_issue12_sort_argsort_topk(shape, data, dtype, seed):
    x = distinct_array(_rng(seed), shape, dtype)
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="dim")  # some invalid
    descending = data.draw(st.booleans(), label="descending")
    check_op(lambda a: ct.sort(a, dim=dim, descending=descending),
             lambda a: tt.sort(a, dim=dim, descending=descending), [x], name="sort")
    check_op(lambda a: a.argsort(dim, descending=descending),
             lambda a: a.argsort(dim, descending=descending), [x], name="argsort")
    size = shape[dim] if -len(shape) <= dim < len(shape) else 1
    k = data.draw(st.integers(-1, size + 1), label="k")
    largest = data.draw(st.booleans(), label="largest")
    check_op(lambda a: a.topk(k, dim, largest=largest),
             lambda a: a.topk(k, dim, largest=largest), [x], name="topk")


def test_issue12_sort_stable_and_nan():
    """Equal elements keep their order (stable=True in PyTorch) and NaN sorts as the
    largest, both ways."""
    x = np.array([[2.0, np.nan, 1.0, 2.0, -np.inf, 1.0, np.nan]] * 2)
    for descending in (False, True):
        assert_accepted(check_op(lambda a, d=descending: ct.sort(a, descending=d, stable=True),
                                 lambda a, d=descending: tt.sort(a, descending=d, stable=True),
                                 [x], name="sort"))
    ints = np.array([3, 1, 3, 2, 1], dtype=np.int64)
    check_op(lambda a: a.sort(stable=True), lambda a: a.sort(stable=True), [ints])


@SETTINGS
@given(shape=shapes, data=st.data(), dtype=FLOATS, seed=st.integers(0, 2**16))
def test_issue12_gather_scatter(shape, data, dtype, seed):
    rng = _rng(seed)
    x = random_array(rng, shape, dtype)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    index_shape = tuple(data.draw(st.integers(1, n), label="index size") for n in shape)
    high = shape[dim] + (1 if data.draw(st.integers(0, 9)) == 0 else 0)  # rarely out of range
    index = rng.integers(0, high, size=index_shape).astype(np.int64)
    check_op(lambda a, i: a.gather(dim, i), lambda a, i: a.gather(dim, i), [x, index],
             name="gather")
    # scatter with unique targets per row, so that the result does not depend on the order
    unique = np.argsort(rng.random(shape), axis=dim)
    unique = np.take(unique, np.arange(min(index_shape[dim], shape[dim])), axis=dim)
    unique = unique[tuple(slice(0, n) for n in index_shape)]
    src = random_array(rng, unique.shape, dtype)
    check_op(lambda a, i, s: a.scatter(dim, i, s), lambda a, i, s: a.scatter(dim, i, s),
             [x, unique, src], name="scatter")
    # a src larger than index (only its part of index's shape is used): forward only, as
    # PyTorch's own backward refuses it ("ScatterBackward0 returned an invalid gradient")
    larger = random_array(rng, tuple(n + 1 for n in unique.shape), dtype)
    check_op(lambda a, i, s: a.scatter(dim, i, s), lambda a, i, s: a.scatter(dim, i, s),
             [x, unique, larger], grad=False, name="scatter larger src")
    check_op(lambda a, i: a.scatter(dim, i, 2.5), lambda a, i: a.scatter(dim, i, 2.5),
             [x, unique], name="scatter value")
    check_op(lambda a, i, s: a.scatter_add(dim, i, s), lambda a, i, s: a.scatter_add(dim, i, s),
             [x, index, random_array(rng, index.shape, dtype)], name="scatter_add")


@SETTINGS
@given(shape=shapes, data=st.data(), dtype=FLOATS, seed=st.integers(0, 2**16))
def test_issue12_index_select_masked_fill(shape, data, dtype, seed):
    rng = _rng(seed)
    x = random_array(rng, shape, dtype)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    index = rng.integers(0, shape[dim], size=data.draw(st.integers(0, 5))).astype(
        data.draw(st.sampled_from([np.int64, np.int32])))
    check_op(lambda a, i: a.index_select(dim, i), lambda a, i: a.index_select(dim, i),
             [x, index], name="index_select")
    mask_shape = shape[data.draw(st.integers(0, len(shape))):]  # broadcasts to x
    mask = np.asarray(rng.random(mask_shape) < 0.5)
    value = data.draw(st.sampled_from([0.0, -1.5, "tensor"]), label="value")
    if value == "tensor":
        v = np.array(3.25, dtype=dtype)
        check_op(lambda a, m, v: a.masked_fill(m, v), lambda a, m, v: a.masked_fill(m, v),
                 [x, mask, v], name="masked_fill tensor value")
    else:
        check_op(lambda a, m: a.masked_fill(m, value), lambda a, m: a.masked_fill(m, value),
                 [x, mask], name="masked_fill")


@SETTINGS
@given(shape=shapes, data=st.data(), dtype=FLOATS, seed=st.integers(0, 2**16))
def test_issue12_chunk_split(shape, data, dtype, seed):
    x = random_array(_rng(seed), shape, dtype)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    chunks = data.draw(st.integers(0, 5), label="chunks")
    check_op(lambda a: a.chunk(chunks, dim), lambda a: a.chunk(chunks, dim), [x], name="chunk")
    size = data.draw(st.integers(0, 4), label="split size")
    check_op(lambda a: a.split(size, dim), lambda a: a.split(size, dim), [x], name="split")
    n = shape[dim]
    cut = data.draw(st.integers(0, n), label="cut")
    sections = data.draw(st.sampled_from([[cut, n - cut], [n], [cut, n - cut, 0], [cut]]))
    # (check_op backpropagates through every output; empty pieces are compared by shape)
    result = check_op(lambda a: tuple(p for p in ct.split(a, sections, dim) if p.numel()),
                      lambda a: tuple(p for p in tt.split(a, sections, dim) if p.numel()),
                      [x], name="split sections")
    if not result.rejected:
        assert [tuple(p.shape) for p in ct.split(ct.tensor(x), sections, dim)] == [
            tuple(p.shape) for p in tt.split(tt.tensor(x), sections, dim)]


@SETTINGS
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple), data=st.data(),
       dtype=FLOATS, seed=st.integers(0, 2**16))
def test_unbind(shape, data, dtype, seed):
    """unbind (method and function), empty dimensions included: every slice's values and
    shape, and the gradient through all of them."""
    x = random_array(_rng(seed), shape, dtype)
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="dim")   # out of range too
    result = check_op(lambda a: tuple(p for p in a.unbind(dim) if p.numel()),
                      lambda a: tuple(p for p in a.unbind(dim) if p.numel()), [x],
                      name="unbind")
    if not result.rejected:
        assert [tuple(p.shape) for p in ct.unbind(ct.tensor(x), dim=dim)] == [
            tuple(p.shape) for p in tt.unbind(tt.tensor(x), dim=dim)]


@SETTINGS
@given(shape=shapes, data=st.data(), dtype=FLOATS, seed=st.integers(0, 2**16))
def test_issue12_roll_flip_tril_triu(shape, data, dtype, seed):
    x = random_array(_rng(seed), shape, dtype)
    ndim = len(shape)
    dims = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=0, max_size=2))
    shifts = [data.draw(st.integers(-5, 5)) for _ in dims]
    if data.draw(st.booleans()) and dims:  # sometimes misaligned
        shifts = shifts[:-1] or [1, 2]
    if not dims:
        check_op(lambda a: a.roll(shifts[0] if shifts else 3),
                 lambda a: a.roll(shifts[0] if shifts else 3), [x], name="roll flat")
    else:
        check_op(lambda a: a.roll(shifts, dims), lambda a: a.roll(shifts, dims), [x],
                 name="roll")
    check_op(lambda a: a.flip(dims), lambda a: a.flip(dims), [x], name="flip")
    diagonal = data.draw(st.integers(-4, 4), label="diagonal")
    check_op(lambda a: a.tril(diagonal), lambda a: a.tril(diagonal), [x], name="tril")
    check_op(lambda a: ct.triu(a, diagonal), lambda a: tt.triu(a, diagonal), [x], name="triu")


@SETTINGS
@given(shape=shapes, data=st.data(), seed=st.integers(0, 2**16))
def test_issue12_cumsum_logsumexp(shape, data, seed):
    rng = _rng(seed)
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.bool_]))
    x = random_array(rng, shape, dtype if dtype is not np.bool_ else np.int64, -3, 3)
    x = x.astype(dtype)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    check_op(lambda a: a.cumsum(dim), lambda a: a.cumsum(dim), [x], name="cumsum")
    check_op(lambda a: a.cumsum(dim, dtype=ct.float64), lambda a: a.cumsum(dim, dtype=tt.float64),
             [x], name="cumsum dtype")
    dims = data.draw(st.sampled_from([dim, (dim,), tuple(range(len(shape)))]))
    keepdim = data.draw(st.booleans())
    check_op(lambda a: a.logsumexp(dims, keepdim), lambda a: a.logsumexp(dims, keepdim), [x],
             name="logsumexp")


def test_issue12_logsumexp_infinities():
    x = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [1000.0, 1000.0], [-1000.0, 0.0]])
    assert_accepted(check_op(lambda a: a.logsumexp(1), lambda a: a.logsumexp(1), [x],
                             grad=False))


@st.composite
def einsum_cases(draw):
    """An equation and operand shapes: a random contraction of up to three operands over
    labels i..m, sometimes with an ellipsis, a repeated label (diagonal), broadcast size-1
    dimensions or an implicit output."""
    sizes = {c: draw(st.integers(1, 3)) for c in "ijklm"}
    count = draw(st.integers(1, 3))
    terms = [draw(st.lists(st.sampled_from("ijklm"), min_size=0, max_size=3)) for _ in
             range(count)]
    ellipsis = draw(st.booleans())
    batch = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)) if ellipsis else []
    shapes = []
    for t in terms:
        shape = [sizes[c] for c in t]
        if draw(st.integers(0, 4)) == 0 and shape:  # a size-1 dimension to broadcast
            shape[draw(st.integers(0, len(shape) - 1))] = 1
        if ellipsis:
            own = batch[draw(st.integers(0, len(batch))):]
            shape = list(own) + shape
        shapes.append(tuple(shape))
    lhs = ",".join(("..." if ellipsis else "") + "".join(t) for t in terms)
    used = sorted(set("".join("".join(t) for t in terms)))
    if draw(st.booleans()):
        out = draw(st.permutations(used))[:draw(st.integers(0, len(used)))]
        equation = lhs + "->" + ("..." if ellipsis else "") + "".join(out)
    else:
        equation = lhs
    return equation, shapes


@oracle_settings(50)
@given(case=einsum_cases(), dtype=FLOATS, seed=st.integers(0, 2**16), as_list=st.booleans())
def test_issue12_einsum(case, dtype, seed, as_list):
    equation, shapes = case
    rng = _rng(seed)
    arrays = [random_array(rng, s, dtype) for s in shapes]

    def call(lib):
        def run(*xs):
            return lib.einsum(equation, list(xs)) if as_list else lib.einsum(equation, *xs)
        return run

    check_op(call(ct), call(tt), arrays, name=f"einsum {equation!r} {shapes}")


def test_issue12_einsum_fixed_cases():
    rng = _rng(0)
    cases = [("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
             ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iij->j", [(2, 2, 3)]),
             ("...ij,...jk", [(5, 1, 2, 3), (4, 3, 2)]), ("i,j->ij", [(3,), (2,)]),
             ("ij->", [(2, 3)]), ("ij->j", [(2, 3)]),
             ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
             ("i j , j k -> i k", [(2, 3), (3, 2)]), ("ij,jk->ik", [(2, 3), (2, 4)]),
             ("ij,jk", [(2, 3)]), ("ij->ii", [(2, 2)]), ("i1->i", [(2, 2)])]
    for equation, shapes in cases:
        arrays = [random_array(rng, s) for s in shapes]
        check_op(lambda *xs, e=equation: ct.einsum(e, *xs),
                 lambda *xs, e=equation: tt.einsum(e, *xs), arrays, name=equation)
    ints = [np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)]
    check_op(lambda a, b: ct.einsum("ij,jk", a, b), lambda a, b: tt.einsum("ij,jk", a, b), ints)
    mixed = [random_array(rng, (2, 3)), random_array(rng, (3, 2), np.float32)]
    assert check_op(lambda a, b: ct.einsum("ij,jk", a, b),
                    lambda a, b: tt.einsum("ij,jk", a, b), mixed).rejected
