"""The Tensor's Python surface against PyTorch: Size, conversions, dunders, .data and in-place
methods, printing (repr/str exactly as torch prints), and the refusal to move to CUDA.

PyTorch is the oracle: each expectation comes from doing the same thing to a torch tensor built
from the same NumPy array.
"""

from __future__ import annotations

import contextlib
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corrnet as cn

from torch_compare import ALL_DTYPES, FLOAT_DTYPES, NP_DTYPES, assert_same, both, seeds

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REPR = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Where the spec does not name an exception class, accept the ones a faithful port could raise.
CONVERSION_ERRORS = (RuntimeError, ValueError, TypeError)


def random_array(rng, shape, dtype: str) -> np.ndarray:
    if dtype in FLOAT_DTYPES:
        v = rng.uniform(-5.0, 5.0, shape)
    elif dtype == "bool":
        v = rng.random(shape) < 0.5
    else:
        v = rng.integers(-9, 10, shape)
    return np.asarray(v, dtype=NP_DTYPES[dtype])


# --------------------------------------------------------------------------- Size


@pytest.mark.parametrize("shape", [(), (3,), (8, 8), (1, 1, 6, 7), (2, 0, 3), (1, 2, 3, 4, 5)])
def test_shape_and_size(shape):
    x, t = cn.zeros(shape), torch.zeros(shape)
    for got, expected in [(x.shape, t.shape), (x.size(), t.size())]:
        assert isinstance(got, tuple)
        assert repr(got) == repr(expected)
        assert str(got) == str(expected)
        assert got == tuple(shape)
        assert tuple(got) == tuple(expected)
        assert all(type(s) is int for s in got)
    assert x.dim() == t.dim()
    assert x.numel() == t.numel()
    for d in range(-len(shape), len(shape)):
        assert x.size(d) == t.size(d)
        assert x.shape[d] == t.shape[d]
    if shape:
        assert len(x) == len(t)
    else:
        with pytest.raises(TypeError):
            len(x)


def test_size_repr_is_torch_size():
    assert repr(cn.zeros(8, 8).shape) == "torch.Size([8, 8])"
    assert repr(cn.tensor(1.0).shape) == "torch.Size([])"


def test_size_tuple_arithmetic_and_slicing():
    X, Xt = cn.ones((8, 8)), torch.ones((8, 8))
    assert (1, 1) + X.shape == (1, 1, 8, 8)
    assert tuple((1, 1) + X.shape) == tuple((1, 1) + Xt.shape)
    assert X.shape + (2,) == (8, 8, 2)
    assert tuple(X.reshape((1, 1) + X.shape).shape) == (1, 1, 8, 8)
    Y, Yt = cn.zeros((1, 1, 6, 7)), torch.zeros((1, 1, 6, 7))
    assert Y.shape[2:] == (6, 7)
    assert repr(Y.shape[2:]) == repr(Yt.shape[2:])
    assert tuple(Y.reshape(Y.shape[2:]).shape) == (6, 7)
    h, w = Y.shape[2:]
    assert (h, w) == (6, 7)
    assert cn.zeros(Y.shape).shape == Y.shape
    assert cn.ones(X.shape[0], 2).shape == (8, 2)


# --------------------------------------------------------------------------- conversions


CONVERSIONS = {
    "float": lambda M, x: x.float(),
    "double": lambda M, x: x.double(),
    "long": lambda M, x: x.long(),
    "int": lambda M, x: x.int(),
    "bool": lambda M, x: x.bool(),
    "to_float32": lambda M, x: x.to(M.float32),
    "to_float64": lambda M, x: x.to(M.float64),
    "to_int64": lambda M, x: x.to(M.int64),
    "to_int32": lambda M, x: x.to(M.int32),
    "to_bool": lambda M, x: x.to(M.bool),
    "to_dtype_kw": lambda M, x: x.to(dtype=M.float64),
    "to_cpu": lambda M, x: x.to("cpu"),
}


@pytest.mark.parametrize("conv", sorted(CONVERSIONS))
@FAST
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
       dtype=st.sampled_from(ALL_DTYPES), seed=seeds)
def test_dtype_conversions(conv, shape, dtype, seed):
    x, t = both(random_array(np.random.default_rng(seed), shape, dtype))
    assert_same(CONVERSIONS[conv](cn, x), CONVERSIONS[conv](torch, t), f"{dtype}.{conv}")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_item_tolist_numpy(dtype):
    rng = np.random.default_rng(5)
    arr = random_array(rng, (2, 3), dtype)
    x, t = both(arr)
    got, expected = x.tolist(), t.tolist()
    assert got == expected
    assert type(got) is list and type(got[0]) is list
    assert type(got[0][0]) is type(expected[0][0])
    x0, t0 = both(arr[1, 2])
    assert x0.item() == t0.item()
    assert type(x0.item()) is type(t0.item())
    assert x0.tolist() == t0.tolist()
    assert type(x0.tolist()) is type(t0.tolist())
    assert x[1, 2].item() == t[1, 2].item()
    one = cn.tensor(arr[:1, :1])
    assert one.item() == torch.tensor(arr[:1, :1]).item()
    n = x.numpy()
    assert isinstance(n, np.ndarray)
    assert n.dtype == t.numpy().dtype
    assert n.shape == (2, 3)
    np.testing.assert_array_equal(n, t.numpy())


def test_item_on_many_elements_raises():
    with pytest.raises(CONVERSION_ERRORS):
        cn.tensor([1.0, 2.0]).item()


@pytest.mark.parametrize(
    "value,dtype",
    [(2.7, "float32"), (-2.7, "float32"), (3.25, "float64"), (-4, "int64"), (7, "int32"),
     (True, "bool"), (False, "bool"), (0.0, "float32")],
)
def test_python_number_dunders(value, dtype):
    for shape in [(), (1,), (1, 1)]:
        arr = np.full(shape, value, dtype=NP_DTYPES[dtype])
        x, t = both(arr)
        assert float(x) == float(t)
        assert int(x) == int(t)
        assert bool(x) == bool(t)
        assert type(float(x)) is float and type(int(x)) is int and type(bool(x)) is bool


def test_bool_of_many_elements_raises():
    with pytest.raises((RuntimeError, ValueError)):
        bool(cn.tensor([1.0, 2.0]))
    with pytest.raises(CONVERSION_ERRORS):
        float(cn.tensor([1.0, 2.0]))


def test_truthiness_in_if():
    assert cn.tensor(1.0)
    assert not cn.tensor(0)
    assert cn.tensor([3]) > 2


@pytest.mark.parametrize(
    "value,dtype,spec",
    [
        (1.23456, "float32", ".3f"),
        (0.000123456, "float32", ".3e"),
        (2.5, "float64", ">10.4f"),
        (1234.5678, "float32", ".2e"),
        (-0.5, "float32", "+.1f"),
        (7, "int64", "d"),
        (7, "int64", "4d"),
        (3.0, "float32", ""),
        (True, "bool", ""),
        (2.0, "float32", ".1%"),
    ],
)
def test_format_0d(value, dtype, spec):
    x, t = both(np.array(value, dtype=NP_DTYPES[dtype]))
    assert format(x, spec) == format(t, spec)


def test_format_loss_that_requires_grad():
    w, w_t = both(np.array([0.5, -1.25], dtype=np.float32), requires_grad=True)
    loss, loss_t = (w * w).sum(), (w_t * w_t).sum()
    assert f"{loss:.3f}" == f"{loss_t:.3f}"
    assert f"{float(loss):.4f}" == f"{float(loss_t.detach()):.4f}"
    assert loss.item() == loss_t.item()


def test_tensors_are_hashable_by_identity():
    a, b = cn.tensor([1.0]), cn.tensor([1.0])
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b"
    assert len({a, b, a}) == 2


def test_format_in_fstring_and_multi_element():
    loss, loss_t = both(np.array(0.123456, dtype=np.float32))
    assert f"{loss:.3f}" == f"{loss_t:.3f}" == "0.123"
    assert f"epoch 1, loss {loss:f}" == f"epoch 1, loss {loss_t:f}"
    x, t = both(np.array([[1.5, 2.0], [3.0, -4.25]], dtype=np.float32))
    assert f"{x}" == f"{t}"
    assert str(x) == str(t)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_array_protocol(dtype):
    arr = random_array(np.random.default_rng(6), (3, 2), dtype)
    x = cn.tensor(arr)
    got = np.asarray(x)
    assert got.dtype == arr.dtype
    np.testing.assert_array_equal(got, arr)
    as64 = np.array(x, dtype=np.float64)
    assert as64.dtype == np.float64
    np.testing.assert_array_equal(as64, arr.astype(np.float64))
    np.testing.assert_array_equal(np.asarray(cn.tensor(arr[0, 0])), arr[0, 0])


def test_tensor_class():
    x = cn.tensor([1.0])
    assert isinstance(x, cn.Tensor)
    assert isinstance(x * 2, cn.Tensor)
    assert isinstance(cn.zeros(2)[0], cn.Tensor)


def test_clone_is_independent_copy():
    for M in (cn, torch):
        x = M.tensor([1.0, 2.0, 3.0])
        y = x.clone()
        y[0] = 10.0
        assert x[0].item() == 1.0
        assert str(y.dtype) == str(x.dtype) and tuple(y.shape) == (3,)


def test_detach_has_no_history_and_shares_storage():
    x_cn, x_th = both(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    for x in (x_cn, x_th):
        y = (x * 2).detach()
        assert not y.requires_grad and y.grad_fn is None
        d = x.detach()
        assert not d.requires_grad and d.grad_fn is None
        d[1] = 20.0
    assert_same(x_cn.detach(), x_th.detach(), "after writing through detach()")


def test_from_numpy_shares_memory_tensor_copies():
    arr = np.zeros(3, dtype=np.float32)
    shared = cn.from_numpy(arr)
    copied = cn.tensor(arr)
    arr[0] = 5.0
    assert shared[0].item() == 5.0
    assert copied[0].item() == 0.0


def test_numpy_shares_memory():
    for M in (cn, torch):
        x = M.zeros(3)
        x.numpy()[1] = 4.0
        assert x[1].item() == 4.0


# --------------------------------------------------------------------------- .data and in-place


def test_data_same_storage_no_history():
    arr = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    results = []
    for M in (cn, torch):
        w = M.tensor(arr, requires_grad=True)
        d = w.data
        assert not d.requires_grad and d.grad_fn is None
        d[0] = 5.0
        w.data[:] -= 0.5 * M.ones(3)
        w.data[1:] *= 2
        assert w.requires_grad and w.grad_fn is None
        y = w * 2
        assert y.data.grad_fn is None and not y.data.requires_grad
        results.append(w)
    assert_same(results[0].detach(), results[1].detach(), ".data writes")


@pytest.mark.parametrize(
    "dtype,op",
    [(d, o) for d in ("float32", "float64", "int64") for o in ("iadd", "isub", "imul", "itruediv")
     if not (d == "int64" and o == "itruediv")],  # int /= is an error (test_tensor_ops)
)
@pytest.mark.parametrize("other_kind", ["scalar", "same_shape", "row", "zerodim"])
def test_inplace_operators_keep_identity(dtype, op, other_kind):
    rng = np.random.default_rng(9)
    arr = random_array(rng, (2, 3), dtype)
    other = {"scalar": None, "same_shape": (2, 3), "row": (3,), "zerodim": ()}[other_kind]
    if other is None:
        o_cn = o_th = 3 if dtype == "int64" else 1.5
    else:
        o_arr = random_array(rng, other, dtype)
        if op == "itruediv":
            o_arr = np.where(o_arr == 0, 1, o_arr).astype(o_arr.dtype)
        o_cn, o_th = both(o_arr)
    x, t = both(arr)
    before = x
    if op == "iadd":
        x += o_cn
        t += o_th
    elif op == "isub":
        x -= o_cn
        t -= o_th
    elif op == "imul":
        x *= o_cn
        t *= o_th
    else:
        x /= o_cn
        t /= o_th
    assert x is before
    assert_same(x, t, f"{op} {other_kind}")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_fill_zero_return_self(dtype):
    arr = random_array(np.random.default_rng(10), (2, 3), dtype)
    x, t = both(arr)
    assert x.fill_(1) is x
    assert_same(x, t.fill_(1), "fill_(1)")
    assert x.zero_() is x
    assert_same(x, t.zero_(), "zero_()")
    x2, t2 = both(arr)
    assert_same(x2[0].fill_(True), t2[0].fill_(True), "row fill_")
    assert_same(x2, t2, "fill_ through a view")


@pytest.mark.parametrize(
    "dst_dtype,src_dtype,src_shape",
    [("float32", "float32", (2, 3)), ("float32", "float64", (3,)), ("int64", "float32", (2, 3)),
     ("float64", "int64", ()), ("bool", "float32", (1, 3)), ("int32", "int64", (2, 1))],
)
def test_copy_(dst_dtype, src_dtype, src_shape):
    rng = np.random.default_rng(11)
    x, t = both(random_array(rng, (2, 3), dst_dtype))
    s, st_ = both(random_array(rng, src_shape, src_dtype))
    assert x.copy_(s) is x
    assert_same(x, t.copy_(st_), f"copy_ {src_dtype}{src_shape} into {dst_dtype}")


def test_parameter_update_through_data():
    """The d2l training-loop idiom: backward, `p.data[:] -= lr * p.grad`, `p.grad.zero_()`."""
    rng = np.random.default_rng(12)
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    X = rng.standard_normal((5, 3)).astype(np.float32)
    y = rng.standard_normal((5, 2)).astype(np.float32)
    params = []
    for M in (cn, torch):
        p = M.nn.Parameter(M.tensor(w0))
        assert p.requires_grad and isinstance(p, M.Tensor)
        Xm, ym = M.tensor(X), M.tensor(y)
        for _ in range(3):
            loss = ((Xm @ p - ym) ** 2).sum()
            loss.backward()
            p.data[:] -= 0.05 * p.grad
            p.grad.zero_()
        assert p.grad_fn is None and p.requires_grad
        params.append(p)
    assert_same(params[0].detach(), params[1].detach(), "parameter after 3 SGD steps")
    assert_same(params[0].grad, params[1].grad, "zeroed grad")


# --------------------------------------------------------------------------- printing


FLOAT_REGIMES = {
    "small": st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    "integer_valued": st.integers(-1000, 1000).map(float),
    "tiny": st.floats(1e-12, 1e-5).flatmap(lambda v: st.sampled_from([v, -v])),
    "huge": st.floats(1e5, 1e12).flatmap(lambda v: st.sampled_from([v, -v])),
    "wide": st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    "special": st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 0.5]),
}
INT_REGIMES = {
    "small": st.integers(-20, 20),
    "medium": st.integers(-10**6, 10**6),
    "large": st.integers(-2**40, 2**40),
}
BIG_SHAPES = [(1001,), (1500,), (40, 30), (3, 400), (11, 10, 10), (2, 3, 12, 15), (1, 1200),
              (1200, 1), (2, 2, 300)]


@st.composite
def printable_arrays(draw, dtypes=("float32", "float64", "int64", "bool")):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(st.one_of(
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=30),
        st.sampled_from(BIG_SHAPES),
    ))
    if dtype == "bool":
        pool = draw(st.lists(st.booleans(), min_size=1, max_size=2))
    else:
        regimes = FLOAT_REGIMES if dtype.startswith("float") else INT_REGIMES
        names = draw(st.lists(st.sampled_from(sorted(regimes)), min_size=1, max_size=2,
                              unique=True))
        element = st.one_of(*[regimes[n] for n in names])
        pool = draw(st.lists(element, min_size=1, max_size=8))
    rng = np.random.default_rng(draw(seeds))
    flat = np.array(pool, dtype=object)[rng.integers(0, len(pool), math.prod(shape))]
    return np.array(flat.tolist(), dtype=NP_DTYPES[dtype]).reshape(shape)


@REPR
@given(arr=printable_arrays())
def test_repr_matches_torch(arr):
    got, expected = both(arr)
    assert repr(got) == repr(expected)
    assert str(got) == str(expected)


@REPR
@given(arr=printable_arrays(dtypes=("float32", "float64")))
def test_repr_requires_grad_matches_torch(arr):
    got, expected = both(arr, requires_grad=True)
    assert repr(got) == repr(expected)


_GRAD_FN = re.compile(r"^(.*),\s+grad_fn=<\w+>\)$", re.DOTALL)


@REPR
@given(arr=printable_arrays(dtypes=("float32", "float64")))
def test_repr_grad_fn_suffix(arr):
    """`, grad_fn=<...>` appears iff torch's does; the rest matches exactly (names may differ)."""
    x, t = both(arr, requires_grad=True)
    got, expected = repr(x * 2), repr(t * 2)
    m_exp = _GRAD_FN.match(expected)
    m_got = _GRAD_FN.match(got)
    assert m_exp is not None
    assert m_got is not None, f"no grad_fn suffix in {got!r}"
    assert m_got.group(1) == m_exp.group(1)
    leaf_got, leaf_exp = repr(x), repr(t)
    assert ("grad_fn=<" in leaf_got) == ("grad_fn=<" in leaf_exp)
    with torch.no_grad():
        expected_ng = repr(t * 2)
    with cn.no_grad():
        got_ng = repr(x * 2)
    assert got_ng == expected_ng


@REPR
@given(arr=printable_arrays(dtypes=("float32", "float64")))
def test_repr_parameter_matches_torch(arr):
    got = cn.nn.Parameter(cn.tensor(arr))
    expected = torch.nn.Parameter(torch.tensor(arr))
    assert repr(got) == repr(expected)


@pytest.mark.parametrize(
    "make",
    [
        lambda M: M.tensor(1.5),
        lambda M: M.tensor(3),
        lambda M: M.tensor(True),
        lambda M: M.tensor(2.0, dtype=M.float64),
        lambda M: M.tensor([1, 2], dtype=M.int32),
        lambda M: M.tensor([[1.5, 2.0]], dtype=M.int32),
        lambda M: M.tensor([]),
        lambda M: M.zeros(0, 3),
        lambda M: M.zeros(2, 0, dtype=M.int64),
        lambda M: M.tensor([1e-5, 1.0]),
        lambda M: M.tensor([1e10, 1.0]),
        lambda M: M.tensor([0.1, 0.25, 123.456]),
        lambda M: M.tensor([float("nan"), float("inf"), -1.0]),
        lambda M: M.arange(2000).reshape(40, 50),
        lambda M: M.arange(1001, dtype=M.float32) / 7,
        lambda M: M.ones(8, 8),
        lambda M: M.arange(6.0).reshape(2, 3).t(),
        lambda M: M.arange(24).reshape(2, 3, 4)[:, 1:, ::2],
        lambda M: M.tensor([1.0, 2.0], requires_grad=True).sum(),
        lambda M: M.tensor([[1.0, 2.0]], requires_grad=True),
        lambda M: M.tensor(0.5, dtype=M.float64, requires_grad=True),
    ],
)
def test_repr_examples(make):
    got, expected = repr(make(cn)), repr(make(torch))
    if "grad_fn=<" in expected:
        m_got, m_exp = _GRAD_FN.match(got), _GRAD_FN.match(expected)
        assert m_got is not None and m_got.group(1) == m_exp.group(1)
    else:
        assert got == expected


def test_print_uses_repr(capsys):
    print(cn.tensor([[1.0, 2.5], [3.0, 4.0]]))
    got = capsys.readouterr().out
    print(torch.tensor([[1.0, 2.5], [3.0, 4.0]]))
    assert got == capsys.readouterr().out


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize(
    "move",
    [lambda t: t.cuda(), lambda t: t.to("cuda"), lambda t: t.to("cuda:0")],
    ids=["cuda()", "to('cuda')", "to('cuda:0')"],
)
def test_cuda_raises_clear_error(move):
    x = cn.tensor([1.0, 2.0])
    with pytest.raises(Exception) as info:
        move(x)
    message = str(info.value).lower()
    assert "cuda" in message or "gpu" in message, f"unclear error: {info.value!r}"


@pytest.mark.parametrize("method", ["max", "min"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_print_like_torch(method, keepdim):
    arr = np.array([[1.0, 5.0, -2.0], [7.0, 2.0, 0.5]], dtype=np.float32)
    ours = getattr(cn.tensor(arr), method)(dim=1, keepdim=keepdim)
    theirs = getattr(torch.tensor(arr), method)(dim=1, keepdim=keepdim)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("grad_mode", ["no_grad", "plain"])
@pytest.mark.parametrize("alpha", [1, -0.9, 3])
def test_add_in_place_matches_torch(grad_mode, alpha):
    """add_ as an optimizer uses it (same shape and dtype, nothing recorded: the fast path) and
    with broadcasting or mixed dtypes (the general path): torch's values, dtype, version
    counter, and writes through a view into its base."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal((3, 4)).astype(np.float32)
    other = rng.standard_normal(4).astype(np.float32)
    context = cn.no_grad if grad_mode == "no_grad" else contextlib.nullcontext
    torch_context = torch.no_grad if grad_mode == "no_grad" else contextlib.nullcontext
    b_c, b_t = cn.from_numpy(base.copy()), torch.from_numpy(base.copy())
    with context(), torch_context():
        row_c, row_t = b_c[1], b_t[1]
        version = row_c._version[0]
        row_c.add_(cn.from_numpy(other), alpha=alpha)             # same shape: fast path
        row_t.add_(torch.from_numpy(other), alpha=alpha)
        assert row_c._version[0] == version + 1
        b_c.add_(cn.from_numpy(other), alpha=alpha)               # broadcast: general path
        b_t.add_(torch.from_numpy(other), alpha=alpha)
        b_c.add_(cn.from_numpy(base.astype(np.float64)[0]))       # float64 other, cast back
        b_t.add_(torch.from_numpy(base.astype(np.float64)[0]))
    assert b_c.dtype == cn.float32
    # (PyTorch may fuse alpha * other + self into one rounding: 1 ulp apart at most)
    np.testing.assert_allclose(b_c.numpy(), b_t.numpy(), rtol=3e-7, atol=1e-7)
    with pytest.raises(RuntimeError, match="result type"):
        cn.zeros(3, dtype=cn.int64).add_(cn.ones(3, dtype=cn.int64), alpha=0.5)
