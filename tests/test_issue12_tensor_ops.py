"""Issue 12's tensor API: float64 finite-difference checks of the new backwards, the
in-place variants, 0-d inputs, set_printoptions (reprs compared with PyTorch's), the legacy
tensor types and new_* (the forward/gradient oracle tests over hypothesis configurations are
in tests/oracle/test_issue12_tensor_ops_oracle.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_gradcheck import gradcheck, rand  # finite differences of corrnet's own forward

import corrnet as cn

from torch_compare import assert_same, both


def distinct(*shape, seed=0):
    """Values without ties, spaced 1/4 apart."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) / 4.0 - n / 8.0).reshape(shape)


# -- finite differences ----------------------------------------------------------------------


@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("bii->bi", [(2, 3, 3)]), ("ii", [(3, 3)]),
    ("...ij,...jk", [(2, 1, 2, 3), (3, 3, 2)]), ("ij->", [(2, 3)]), ("i,j->ij", [(3,), (2,)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 2), (2, 2)]), ("ij,ij->i", [(1, 3), (4, 3)]),
    ("kii,ik", [(2, 1, 1), (3, 2)]),
])
def test_issue12_einsum_finite_differences(equation, shapes):
    arrays = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    gradcheck(lambda *xs: cn.einsum(equation, *xs), *arrays)
    gradcheck(lambda *xs: cn.einsum(equation, list(xs)), *arrays)


def test_issue12_sorting_finite_differences():
    x = distinct(3, 4)
    gradcheck(lambda a: a.sort(1, descending=True).values, x)
    gradcheck(lambda a: a.sort(0).values, x)
    gradcheck(lambda a: a.topk(2, dim=0).values, x)
    gradcheck(lambda a: a.topk(3, largest=False, sorted=True).values, x)


def test_issue12_indexing_finite_differences():
    x = rand(3, 4)
    index = cn.tensor([[0, 0, 2], [1, 3, 3]])
    gradcheck(lambda a: a.gather(1, index), x)
    gradcheck(lambda a: a.index_select(1, cn.tensor([3, 0, 0])), x)
    gradcheck(lambda a, s: a.scatter(1, cn.tensor([[2, 0], [1, 3]]), s), x, rand(2, 2, seed=3))
    gradcheck(lambda a, s: a.scatter_add(0, cn.tensor([[0, 0, 2, 2]]), s), x,
              rand(1, 4, seed=4))
    mask = cn.tensor([[True, False, True, False]])
    gradcheck(lambda a, v: a.masked_fill(mask, v), x, np.array(0.5))


def test_issue12_rearranging_finite_differences():
    x = rand(3, 4)
    gradcheck(lambda a: a.roll((1, -2), (0, 1)), x)
    gradcheck(lambda a: a.roll(5), x)
    gradcheck(lambda a: a.flip(0, 1), x)
    gradcheck(lambda a: a.tril(1), x)
    gradcheck(lambda a: a.triu(-1), rand(2, 3, 3))
    gradcheck(lambda a: a.cumsum(1), x)
    gradcheck(lambda a: a.logsumexp((0, 1)), x)
    gradcheck(lambda a: a.logsumexp(1, keepdim=True), x * 50)
    gradcheck(lambda a: a.chunk(3, 1)[1] * 2, x)
    gradcheck(lambda a: a.split([1, 2], 0)[1].exp(), x)
    gradcheck(lambda a: a.unbind(1)[2] * a.unbind(1)[0], x)


# -- in place and 0-d -------------------------------------------------------------------------


def test_issue12_inplace_variants_match_torch():
    x = rand(3, 4)
    mask = np.array([True, False, False, True])
    index = np.array([[1, 0, 2, 0]])
    for name, args in [("masked_fill_", (mask, -2.0)), ("scatter_", (0, index, 7.0)),
                       ("scatter_add_", (0, index, np.ones((1, 4)))), ("tril_", (0,)),
                       ("triu_", (1,))]:
        c_w, t_w = both(x, requires_grad=True)
        c, t = c_w * 1, t_w * 1
        c_args = [cn.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        t_args = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        assert getattr(c, name)(*c_args) is c
        getattr(t, name)(*t_args)
        assert_same(c, t, name)
        c.sum().backward()
        t.sum().backward()
        assert_same(c_w.grad, t_w.grad, f"{name} grad")


def test_issue12_zero_dim_inputs_match_torch():
    """0-d inputs: accepted (with the same result) or refused (with the same error type)
    as PyTorch does."""
    c, t = both(np.float64(2.5), requires_grad=True)
    calls = [lambda lib, a: a.sort().values, lambda lib, a: a.sort().indices,
             lambda lib, a: a.argsort(), lambda lib, a: a.topk(1).values,
             lambda lib, a: a.topk(2), lambda lib, a: a.cumsum(0), lambda lib, a: a.flip(0),
             lambda lib, a: a.roll(1, 0), lambda lib, a: a.roll(1), lambda lib, a: a.logsumexp(0),
             lambda lib, a: a.gather(0, lib.tensor(0)), lambda lib, a: a.chunk(1),
             lambda lib, a: a.index_select(0, lib.tensor([0, 0])),
             lambda lib, a: a.scatter(0, lib.tensor(0), 1.0),
             lambda lib, a: a.masked_fill(lib.tensor(True), 1.0)]
    for i, call in enumerate(calls):
        try:
            expected = call(torch, t)
        except Exception as exc:  # noqa: BLE001 - the same type must come from corrnet
            with pytest.raises(type(exc)):
                call(cn, c)
            continue
        assert_same(call(cn, c), expected, f"call {i}")


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, match", [
    (lambda lib, x: x.topk(5), RuntimeError, "selected index k out of range"),
    (lambda lib, x: x.sort(dim=2), IndexError, "out of range"),
    (lambda lib, x: x.gather(1, lib.tensor([0, 1])), RuntimeError, "same number of dimensions"),
    (lambda lib, x: x.gather(1, lib.tensor([[0, 7]])), RuntimeError, "out of bounds"),
    (lambda lib, x: x.gather(1, lib.tensor([[0.0]])), RuntimeError, "int64"),
    (lambda lib, x: x.scatter(1, lib.tensor([[0]]), lib.ones(1, 1, dtype=lib.float64)),
     RuntimeError, "self.dtype to be equal to src.dtype"),
    (lambda lib, x: x.index_select(0, lib.tensor([[0]])), IndexError, "vector"),
    (lambda lib, x: x.index_select(0, lib.tensor([0.0])), RuntimeError, "int32 or int64"),
    (lambda lib, x: x.masked_fill(lib.ones(3), 0.0), RuntimeError, "boolean masks"),
    (lambda lib, x: x.masked_fill(lib.ones(3, dtype=lib.bool), lib.ones(1)), RuntimeError,
     "0-dimensional value tensor"),
    (lambda lib, x: x.masked_fill(lib.ones(2, dtype=lib.bool), 0.0), RuntimeError, "(?i)size"),
    (lambda lib, x: x.chunk(0), RuntimeError, "greater than 0"),
    (lambda lib, x: x.split([1, 2]), RuntimeError, "sum exactly to 2"),
    (lambda lib, x: x.split(-1), RuntimeError, "non-negative"),
    (lambda lib, x: x.unbind(2), IndexError, "out of range"),
    (lambda lib, x: x[0, 0].unbind(), IndexError, "tensor has no dimensions"),
    (lambda lib, x: x.unbind(0.5), TypeError, "must be int"),
    (lambda lib, x: x.roll((1, 2), 0), RuntimeError, "shifts and dimensions must align"),
    (lambda lib, x: x.flip(0, 0), RuntimeError, "appears multiple times"),
    (lambda lib, x: x[0].tril(), RuntimeError, "at least 2 dimensions"),
    (lambda lib, x: lib.einsum("ij,jk", x, x), RuntimeError, "does not broadcast"),
    (lambda lib, x: lib.einsum("ij,jk", x), RuntimeError, "operands"),
    (lambda lib, x: lib.einsum("ijk", x), RuntimeError, "number of subscripts"),
])
def test_issue12_errors_match_torch(call, error, match):
    c, t = both(rand(2, 3).astype(np.float32))
    with pytest.raises(error, match=match):
        call(torch, t)
    with pytest.raises(error, match=match):
        call(cn, c)


# -- std / var / repeat, checked against torch -------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": (0, 2), "keepdim": True},
                                    {"dim": 0, "correction": 0}, {"dim": 1, "correction": 2},
                                    {"unbiased": False}])
def test_issue12_std_var_match_torch(kwargs):
    c, t = both(rand(3, 4, 2), requires_grad=True)
    for name in ("std", "var"):
        c_out, t_out = getattr(c, name)(**kwargs), getattr(t, name)(**kwargs)
        assert_same(c_out, t_out, name)
        c_out.sum().backward()
        t_out.sum().backward()
        assert_same(c.grad, t.grad, f"{name} grad")


def test_issue12_repeat_matches_torch():
    c, t = both(rand(2, 3), requires_grad=True)
    assert_same(c.repeat(2, 1, 3), t.repeat(2, 1, 3))
    (c.repeat(2, 2) * cn.arange(24.0).reshape(4, 6).double()).sum().backward()
    (t.repeat(2, 2) * torch.arange(24.0).reshape(4, 6).double()).sum().backward()
    assert_same(c.grad, t.grad)


# -- new_*, legacy types -----------------------------------------------------------------------


def test_issue12_new_factories_match_torch():
    c, t = both(rand(2).astype(np.float64))
    for fn in (lambda x: x.new_zeros(2, 3), lambda x: x.new_ones((2,)),
               lambda x: x.new_full((2, 2), 3), lambda x: x.new_tensor([1, 2]),
               lambda x: x.new_zeros(3, dtype=x.new_tensor([1]).long().dtype),
               lambda x: x.new_empty(0, 2)):
        assert_same(fn(c), fn(t))
    assert c.new_ones(2, requires_grad=True).requires_grad


def test_issue12_legacy_tensor_types():
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ByteTensor",
                 "BoolTensor", "HalfTensor"):
        c_type, t_type = getattr(cn, name), getattr(torch, name)
        c_x, t_x = c_type(2, 3), t_type(2, 3)
        assert str(c_x.dtype) == str(t_x.dtype) and c_x.shape == t_x.shape
        assert_same(c_type([[1, 0], [1, 1]]), t_type([[1, 0], [1, 1]]), name)
        assert isinstance(c_x, c_type) and isinstance(c_x, cn.Tensor)
        assert c_x.type() == t_x.type() == f"torch.{name}"
        assert not isinstance(c_x.float() if name != "FloatTensor" else c_x.double(), c_type)
        assert c_type().shape == t_type().shape
        assert c_type.dtype is getattr(cn, str(t_type.dtype).removeprefix("torch."))
    assert cn.ones(2).type(cn.LongTensor).dtype is cn.int64
    assert not isinstance(np.zeros(2), cn.FloatTensor)


# -- set_printoptions ----------------------------------------------------------------------------


PRINT_CASES = [np.array([1.123456789, 2.5, -3.0]), np.arange(2000.0).reshape(40, 50) / 7,
               np.array([1e-5, 1.0, 12345.678]), np.array([1.0, 2.0, 300.0]),
               np.arange(30.0) * 1.5, np.arange(12).reshape(3, 4)]
PRINT_OPTIONS = [dict(precision=2), dict(precision=7), dict(threshold=5), dict(edgeitems=1,
                 threshold=10), dict(linewidth=40), dict(sci_mode=True), dict(sci_mode=False),
                 dict(profile="short"), dict(profile="full"), dict(profile="short", precision=6),
                 dict(profile="default")]


@pytest.mark.parametrize("options", PRINT_OPTIONS)
def test_issue12_set_printoptions_matches_torch(options):
    try:
        torch.set_printoptions(**options)
        cn.set_printoptions(**options)
        for values in PRINT_CASES:
            dtype = np.float32 if values.dtype.kind == "f" else np.int64
            c, t = both(values.astype(dtype))
            assert repr(c) == repr(t), f"{options}: {values[:3]}"
        assert cn.get_printoptions() == torch._tensor_str.get_printoptions()
    finally:
        torch.set_printoptions(profile="default")
        cn.set_printoptions(profile="default")


def test_issue12_printoptions_context_and_reset():
    x = cn.tensor([1.23456])
    with cn.printoptions(precision=1):
        assert repr(x) == "tensor([1.2])"
    assert repr(x) == "tensor([1.2346])"
    with pytest.raises(ValueError, match="profile"):
        cn.set_printoptions(profile="long")
    with pytest.raises(TypeError, match="precision"):
        cn.set_printoptions(precision="2")


def test_issue12_docstring_examples_run():
    import doctest

    from corrnet import _legacy, _printing
    from corrnet.utils import data

    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    globs = {"corrnet": cn, **vars(data)}
    objects = [(_legacy, "_legacy"), (_printing.set_printoptions, "set_printoptions"),
               (cn.einsum, "einsum"), (cn.Tensor.masked_fill, "masked_fill"),
               (data.IterableDataset, "IterableDataset")]
    try:
        for obj, name in objects:
            tests = [t for t in finder.find(obj, name, globs=globs) if t.examples]
            assert tests, name
            for test in tests:
                runner.run(test)
    finally:
        cn.set_printoptions(profile="default")
    assert runner.summarize(verbose=False).failed == 0
