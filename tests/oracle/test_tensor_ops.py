"""Oracle tests: corrnet's tensor operations against PyTorch.

Every expectation comes from running the same operation in PyTorch on the same NumPy input;
corrnet is never its own oracle. Dtypes and shapes must match exactly; float32 values to
rtol 1e-4 (atol 1e-5, scaled by magnitude), float64 to 1e-10, integers and booleans exactly.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corrnet as cn

from torch_compare import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    INT_DTYPES,
    NP_DTYPES,
    assert_same,
    both,
    corrnet_tensor,
    draw_reshape_target,
    numpy_of,
    seeds,
    torch_tensor,
)

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import oracle_settings
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import oracle_settings

FAST = oracle_settings(40)
QUICK = oracle_settings(25)

float_dtypes = st.sampled_from(FLOAT_DTYPES)
numeric_dtypes = st.sampled_from(FLOAT_DTYPES + INT_DTYPES)
all_dtypes = st.sampled_from(ALL_DTYPES)
reduce_styles = st.sampled_from(["method", "positional", "function"])  # see _reduce


# --------------------------------------------------------------------------- helpers


def random_array(rng, shape, dtype: str, kind: str = "any") -> np.ndarray:
    """Random values; kind is 'any', 'positive' (>= 0.5) or 'nonzero' (|x| >= 0.5)."""
    shape = tuple(shape)
    if dtype in FLOAT_DTYPES:
        if kind == "positive":
            v = rng.uniform(0.5, 2.0, shape)
        elif kind == "nonzero":
            v = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        else:
            v = rng.uniform(-2.0, 2.0, shape)
    elif dtype == "bool":
        v = np.ones(shape, bool) if kind != "any" else rng.random(shape) < 0.5
    else:
        if kind == "positive":
            v = rng.integers(1, 6, shape)
        elif kind == "nonzero":
            v = rng.integers(1, 6, shape) * rng.choice([-1, 1], shape)
        else:
            v = rng.integers(-5, 6, shape)
    return np.asarray(v, dtype=NP_DTYPES[dtype])


def distinct_array(rng, shape, dtype: str) -> np.ndarray:
    """Values with no ties (for max/min/argmax), spaced at least 0.05 apart."""
    n = math.prod(shape)
    v = rng.permutation(n).astype(np.float64) - n / 2
    if dtype in FLOAT_DTYPES:
        v = v * 0.25 + rng.uniform(-0.1, 0.1, n)
    return v.reshape(shape).astype(NP_DTYPES[dtype])


def shapes(min_dims=0, max_dims=4, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def dim_strategy(ndim: int):
    """A dim index valid for `ndim` dims, possibly negative."""
    return st.integers(-ndim, ndim - 1)


# --------------------------------------------------------------------------- creation


def _nest(it, shape):
    if not shape:
        return next(it)
    return [_nest(it, shape[1:]) for _ in range(shape[0])]


PY_SCALARS = {
    "bool": st.booleans(),
    "int": st.integers(-100, 100),
    "float": st.floats(-1000, 1000, allow_nan=False).map(lambda v: round(v, 3)),
}


@st.composite
def nested_lists(draw):
    shape = draw(shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    kinds = draw(st.lists(st.sampled_from(sorted(PY_SCALARS)), min_size=1, max_size=3,
                          unique=True))
    flat = [draw(PY_SCALARS[draw(st.sampled_from(kinds))]) for _ in range(math.prod(shape))]
    return _nest(iter(flat), shape)


@FAST
@given(data=nested_lists(), dtype=st.sampled_from((None,) + ALL_DTYPES))
def test_tensor_from_nested_python_lists(data, dtype):
    kw_cn = {} if dtype is None else {"dtype": getattr(cn, dtype)}
    kw_th = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    assert_same(cn.tensor(data, **kw_cn), torch.tensor(data, **kw_th), f"tensor({data!r})")


@pytest.mark.parametrize("value", [0, 3, -7, 2.5, -0.0, 1e-3, True, False])
def test_tensor_0d_from_python_scalar(value):
    got, expected = cn.tensor(value), torch.tensor(value)
    assert got.dim() == 0
    assert_same(got, expected, f"tensor({value!r})")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("factory", ["tensor", "from_numpy"])
def test_tensor_from_numpy_array_keeps_dtype(factory, dtype):
    rng = np.random.default_rng(0)
    for shape in [(), (3,), (2, 3), (2, 1, 3)]:
        arr = random_array(rng, shape, dtype)
        got = getattr(cn, factory)(arr)
        expected = getattr(torch, factory)(arr.copy())
        assert_same(got, expected, f"{factory}({dtype} {shape})")


def _call_with_shape(fn, shape, style, **kw):
    if style == "varargs":
        return fn(*shape, **kw)
    if style == "tuple":
        return fn(tuple(shape), **kw)
    if style == "list":
        return fn(list(shape), **kw)
    return fn(size=tuple(shape), **kw)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
@QUICK
@given(
    shape=shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    style=st.sampled_from(["varargs", "tuple", "list", "size"]),
    data=st.data(),
)
def test_factory_shapes_and_dtypes(name, shape, style, data):
    assume(style != "varargs" or len(shape) > 0)
    choices = (None,) + (FLOAT_DTYPES if name in ("rand", "randn") else ALL_DTYPES)
    dtype = data.draw(st.sampled_from(choices), label="dtype")
    kw_cn = {} if dtype is None else {"dtype": getattr(cn, dtype)}
    kw_th = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    got = _call_with_shape(getattr(cn, name), shape, style, **kw_cn)
    expected = _call_with_shape(getattr(torch, name), shape, style, **kw_th)
    assert str(got.dtype) == str(expected.dtype)
    assert tuple(got.shape) == tuple(expected.shape) == tuple(shape)
    assert not got.requires_grad
    if name in ("zeros", "ones"):
        assert_same(got, expected, name)
    elif name == "rand":
        values = numpy_of(got)
        assert np.all((values >= 0) & (values < 1))
    elif name == "randn":
        assert np.all(np.isfinite(numpy_of(got)))


@pytest.mark.parametrize(
    "args,kwargs",
    [
        (((2, 3), 1.5), {}),
        (((2, 3), 7), {}),
        (((4,), True), {}),
        (([2, 2], -2.25), {}),
        (((), 3.0), {}),
        (((2, 3), 7), {"dtype": "float64"}),
        (((2, 3), 2.5), {"dtype": "float64"}),
        (((3,), 2), {"dtype": "int32"}),
        (((3,), 1), {"dtype": "bool"}),
        (((2, 2),), {"fill_value": 0.5}),
    ],
)
def test_full(args, kwargs):
    kw_cn = {k: getattr(cn, v) if k == "dtype" else v for k, v in kwargs.items()}
    kw_th = {k: getattr(torch, v) if k == "dtype" else v for k, v in kwargs.items()}
    assert_same(cn.full(*args, **kw_cn), torch.full(*args, **kw_th), f"full{args}{kwargs}")


@st.composite
def arange_args(draw):
    use_float = draw(st.booleans())
    n_args = draw(st.integers(1, 3))
    if use_float:
        num = st.integers(-40, 40).map(lambda k: k / 4)
    else:
        num = st.integers(-20, 20)
    if n_args == 1:
        end = draw(num.filter(lambda v: v >= 0))
        return (end,), use_float
    start = draw(num)
    if n_args == 2:
        end = draw(num.filter(lambda v, s=start: v >= s))
        return (start, end), use_float
    step = draw(st.integers(1, 12).map(lambda k: k / 4) if use_float else st.integers(1, 5))
    if draw(st.booleans()):
        step = -step
        end = draw(num.filter(lambda v, s=start: v <= s))
    else:
        end = draw(num.filter(lambda v, s=start: v >= s))
    return (start, end, step), use_float


@FAST
@given(case=arange_args(), data=st.data())
def test_arange(case, data):
    args, use_float = case
    dtypes = (None, "float32", "float64") if use_float else (None, "float32", "float64", "int64")
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    kw_cn = {} if dtype is None else {"dtype": getattr(cn, dtype)}
    kw_th = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    assert_same(cn.arange(*args, **kw_cn), torch.arange(*args, **kw_th), f"arange{args}")


@pytest.mark.parametrize(
    "args", [(0, 1, 0.1), (1, 2.5, 0.5), (10,), (2, 9, 3), (5.0,), (0.5, 3), (3, 0, -1)]
)
def test_arange_fixed(args):
    assert_same(cn.arange(*args), torch.arange(*args), f"arange{args}")


@pytest.mark.parametrize("name", ["zeros_like", "ones_like"])
@pytest.mark.parametrize("src_dtype", ALL_DTYPES)
@pytest.mark.parametrize("dtype", [None, "float64", "int64"])
def test_like_factories(name, src_dtype, dtype):
    arr = random_array(np.random.default_rng(1), (2, 3), src_dtype)
    x_cn, x_th = both(arr)
    kw_cn = {} if dtype is None else {"dtype": getattr(cn, dtype)}
    kw_th = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    assert_same(getattr(cn, name)(x_cn, **kw_cn), getattr(torch, name)(x_th, **kw_th), name)


@pytest.mark.parametrize("style", ["positional", "size_kw", "size_obj"])
def test_normal_shape_dtype_and_statistics(style):
    shape = (400, 50)
    if style == "positional":
        x = cn.normal(0.5, 2.0, shape)
    elif style == "size_kw":
        x = cn.normal(0.5, 2.0, size=shape)
    else:
        x = cn.normal(0.5, 2.0, cn.zeros(shape).shape)
    expected = torch.normal(0.5, 2.0, size=shape)
    assert str(x.dtype) == str(expected.dtype)
    assert tuple(x.shape) == shape
    values = numpy_of(x).astype(np.float64)
    assert abs(values.mean() - 0.5) < 0.1
    assert abs(values.std() - 2.0) < 0.1


def test_rand_randn_statistics():
    u = numpy_of(cn.rand(200, 100)).astype(np.float64)
    assert abs(u.mean() - 0.5) < 0.02 and u.min() >= 0 and u.max() < 1
    z = numpy_of(cn.randn(200, 100)).astype(np.float64)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


@pytest.mark.parametrize(
    "draw",
    [
        lambda: cn.rand(3, 4),
        lambda: cn.randn(5),
        lambda: cn.normal(0.0, 1.0, size=(2, 3)),
        lambda: cn.randn(2, 2, dtype=cn.float64),
    ],
    ids=["rand", "randn", "normal", "randn_f64"],
)
def test_manual_seed_reproducible(draw):
    cn.manual_seed(1234)
    a, b = numpy_of(draw()), numpy_of(draw())
    cn.manual_seed(1234)
    c, d = numpy_of(draw()), numpy_of(draw())
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, d)
    assert not np.array_equal(a, b)
    cn.manual_seed(99)
    assert not np.array_equal(numpy_of(draw()), a)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "alias,name",
    [("float", "float32"), ("double", "float64"), ("long", "int64"), ("int", "int32")],
)
def test_dtype_aliases(alias, name):
    assert getattr(cn, alias) == getattr(cn, name)
    assert str(getattr(cn, alias)) == str(getattr(torch, alias)) == f"torch.{name}"


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_dtype_str(name):
    assert str(getattr(cn, name)) == str(getattr(torch, name))
    assert repr(getattr(cn, name)) == repr(getattr(torch, name))
    assert str(cn.zeros(2, dtype=getattr(cn, name)).dtype) == f"torch.{name}"
    assert cn.zeros(2, dtype=getattr(cn, name)).dtype == getattr(cn, name)


def test_default_dtypes():
    assert cn.tensor([1.0]).dtype == cn.float32
    assert cn.tensor([1]).dtype == cn.int64
    assert cn.tensor([True]).dtype == cn.bool
    assert cn.zeros(2).dtype == cn.float32


SPEC_PROMOTIONS = {
    "int*int": lambda M: M.tensor([1, 2]) * M.tensor([3, 4]),
    "int*pyfloat": lambda M: M.tensor([1, 2]) * 1.5,
    "pyfloat*int": lambda M: 1.5 * M.tensor([1, 2]),
    "int+0d_f64": lambda M: M.tensor([1, 2]) + M.tensor(1.5, dtype=M.float64),
    "f32+0d_f64": lambda M: M.tensor([1.0, 2.0]) + M.tensor(1.5, dtype=M.float64),
    "f32+f64": lambda M: M.tensor([1.0, 2.0]) + M.tensor([1.5, 1.0], dtype=M.float64),
    "int/int": lambda M: M.tensor([1, 2]) / M.tensor([2, 2]),
    "int/pyint": lambda M: M.tensor([1, 3]) / 2,
    "pyint/int": lambda M: 3 / M.tensor([2, 4]),
    "int//int": lambda M: M.tensor([7, -7]) // M.tensor([2, 2]),
    "int//pyint": lambda M: M.tensor([7, -7]) // 2,
    "int32+int64_0d": lambda M: M.tensor([1, 2], dtype=M.int32) + M.tensor(5),
    "int32+int64": lambda M: M.tensor([1, 2], dtype=M.int32) + M.tensor([5, 6]),
    "bool+pyint": lambda M: M.tensor([True, False]) + 1,
    "bool*bool": lambda M: M.tensor([True, False]) * M.tensor([True, True]),
    "f32*0d_int": lambda M: M.tensor([1.5, 2.5]) * M.tensor(3),
    "int**pyint": lambda M: M.tensor([2, 3]) ** 2,
    "int**pyfloat": lambda M: M.tensor([4, 9]) ** 0.5,
    "pyint**int": lambda M: 2 ** M.tensor([2, 3]),
}


@pytest.mark.parametrize("case", sorted(SPEC_PROMOTIONS))
def test_spec_promotion_examples(case):
    fn = SPEC_PROMOTIONS[case]
    assert_same(fn(cn), fn(torch), case)


@st.composite
def operands(draw, allow_scalar=True):
    """(kind, dtype, numpy value or python scalar); all values are positive."""
    kinds = ["dim", "zerodim", "scalar"] if allow_scalar else ["dim", "zerodim"]
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        py = draw(st.sampled_from(["bool", "int", "float"]))
        value = {"bool": True, "int": draw(st.integers(1, 3)),
                 "float": draw(st.sampled_from([0.5, 1.5, 2.0, 2.5]))}[py]
        return kind, py, value
    dtype = draw(all_dtypes)
    shape = draw(st.sampled_from([(2, 3), (3,)])) if kind == "dim" else ()
    rng = np.random.default_rng(draw(seeds))
    return kind, dtype, random_array(rng, shape, dtype, kind="positive")


def _operand_for(M, operand):
    kind, _, value = operand
    if kind == "scalar":
        return value
    return corrnet_tensor(value) if M is cn else torch_tensor(value)  # on the test devices


BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "pow": operator.pow,
    "lt": operator.lt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}


@pytest.mark.parametrize("op", sorted(BINARY))
@FAST
@given(a=operands(), b=operands())
def test_type_promotion_matches_torch(op, a, b):
    """Result dtype (and value) of tensor/0-d/python-scalar operand pairs, all dtype pairs."""
    assume(a[0] != "scalar" or b[0] != "scalar")
    fn = BINARY[op]
    try:
        expected = fn(_operand_for(torch, a), _operand_for(torch, b))
    except (RuntimeError, NotImplementedError):
        assume(False)  # torch rejects it (e.g. `-` on bool); not a promotion question
    got = fn(_operand_for(cn, a), _operand_for(cn, b))
    assert_same(got, expected, f"{a[0]} {a[1]} {op} {b[0]} {b[1]}")


INPLACE = {
    "iadd": operator.iadd,
    "isub": operator.isub,
    "imul": operator.imul,
    "itruediv": operator.itruediv,
}


@pytest.mark.parametrize("op", sorted(INPLACE))
@FAST
@given(self_dtype=all_dtypes, other=operands(), seed=seeds)
def test_inplace_promotion_matches_torch(op, self_dtype, other, seed):
    """In-place ops keep self's dtype, and raise where torch refuses the cast."""
    fn = INPLACE[op]
    arr = random_array(np.random.default_rng(seed), (2, 3), self_dtype, kind="positive")
    x_cn, x_th = both(arr)
    try:
        expected = fn(x_th, _operand_for(torch, other))
    except (RuntimeError, NotImplementedError):
        expected = None
    what = f"{self_dtype} {op} {other[0]} {other[1]}"
    if expected is None:
        with pytest.raises((RuntimeError, TypeError)):
            fn(x_cn, _operand_for(cn, other))
        return
    got = fn(x_cn, _operand_for(cn, other))
    assert got is x_cn, f"{what}: in-place op must return the same tensor object"
    assert_same(got, expected, what)


def test_int_tensor_iadd_float_raises():
    x = cn.tensor([1, 2, 3])
    with pytest.raises((RuntimeError, TypeError)):
        x += 1.5
    np.testing.assert_array_equal(numpy_of(x), [1, 2, 3])


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_assigning_float_into_int_tensor_truncates(dtype):
    results = []
    for M in (cn, torch):
        x = M.zeros(6, dtype=getattr(M, dtype))
        x[0] = 2.7
        x[1] = -2.7
        x[2:4] = M.tensor([1.9, -1.9])
        x[4] = M.tensor(3.99)
        x[5:] = 0.5
        results.append(x)
    assert_same(*results, "float into int")


@pytest.mark.parametrize("value", [2.7, -2.7, 0.2, True])
def test_fill_int_tensor_with_float(value):
    got = cn.zeros(3, dtype=cn.int64).fill_(value)
    expected = torch.zeros(3, dtype=torch.int64).fill_(value)
    assert_same(got, expected, f"fill_({value})")


FLOAT64_PRECISION = {
    "tensor_0d": lambda M: M.tensor(0.1, dtype=M.float64),
    "tensor_list": lambda M: M.tensor([0.1, 1 / 3, 1e-300], dtype=M.float64),
    "full": lambda M: M.full((2,), 0.1, dtype=M.float64),
    "arange": lambda M: M.arange(0, 1, 0.1, dtype=M.float64),
    "mul_scalar": lambda M: M.ones(3, dtype=M.float64) * 0.1,
    "add_scalar": lambda M: M.zeros(3, dtype=M.float64) + 1 / 3,
    "rdiv_scalar": lambda M: 0.1 / M.ones(2, dtype=M.float64),
    "where_scalar": lambda M: M.where(M.tensor([True, False]), M.zeros(2, dtype=M.float64), 0.1),
    "clamp": lambda M: M.tensor([0.0, 1.0], dtype=M.float64).clamp(0.1, 0.7),
    "fill_": lambda M: M.zeros(2, dtype=M.float64).fill_(0.1),
    "setitem": lambda M: _set_first(M.zeros(2, dtype=M.float64), 0.1),
}


def _set_first(x, value):
    x[0] = value
    return x


@pytest.mark.parametrize("case", sorted(FLOAT64_PRECISION))
def test_float64_keeps_python_float_precision(case):
    """Python floats going into float64 tensors must not pass through float32."""
    assert_same(FLOAT64_PRECISION[case](cn), FLOAT64_PRECISION[case](torch), case)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_ieee_special_values(dtype):
    """Division by zero, log(0), sqrt(<0) and overflow give inf/nan as in torch, not errors."""
    arr = np.array([-2.0, 0.0, 3.0, 500.0], dtype=NP_DTYPES[dtype])
    x_cn, x_th = both(arr)
    z_cn, z_th = both(np.zeros(4, dtype=NP_DTYPES[dtype]))
    assert_same(x_cn / z_cn, x_th / z_th, "x / 0")
    assert_same(x_cn / 0.0, x_th / 0.0, "x / 0.0")
    assert_same(x_cn.log(), x_th.log(), "log")
    assert_same(x_cn.sqrt(), x_th.sqrt(), "sqrt")
    assert_same((x_cn * 10).exp(), (x_th * 10).exp(), "exp overflow")
    assert_same(x_cn.log().exp(), x_th.log().exp(), "exp(log)")


# --------------------------------------------------------------------------- arithmetic


ARITH = {
    "add": (operator.add, "any", "any"),
    "sub": (operator.sub, "any", "any"),
    "mul": (operator.mul, "any", "any"),
    "truediv": (operator.truediv, "any", "nonzero"),
    "pow": (operator.pow, "positive", "any"),
    "add_method": (lambda a, b: a.add(b), "any", "any"),
    "sub_method": (lambda a, b: a.sub(b), "any", "any"),
    "mul_method": (lambda a, b: a.mul(b), "any", "any"),
    "div_method": (lambda a, b: a.div(b), "any", "nonzero"),
    "pow_method": (lambda a, b: a.pow(b), "positive", "any"),
}


@pytest.mark.parametrize("op", sorted(ARITH))
@FAST
@given(
    bs=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
    dtype=float_dtypes,
    seed=seeds,
)
def test_broadcasting_arithmetic(op, bs, dtype, seed):
    fn, kind_a, kind_b = ARITH[op]
    rng = np.random.default_rng(seed)
    a_cn, a_th = both(random_array(rng, bs.input_shapes[0], dtype, kind_a))
    b_cn, b_th = both(random_array(rng, bs.input_shapes[1], dtype, kind_b))
    assert_same(fn(a_cn, b_cn), fn(a_th, b_th), op)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "floordiv", "pow"])
@FAST
@given(
    shape=shapes(),
    dtype=all_dtypes,
    scalar=st.sampled_from([2, 3, 0.5, 1.5, 2.25, 0.1, 1 / 3]),
    scalar_left=st.booleans(),
    seed=seeds,
)
def test_python_scalar_on_either_side(op, shape, dtype, scalar, scalar_left, seed):
    fn = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
          "truediv": operator.truediv, "floordiv": operator.floordiv,
          "pow": operator.pow}[op]
    rng = np.random.default_rng(seed)
    kind = "positive" if op in ("truediv", "floordiv", "pow") else "any"
    x_cn, x_th = both(random_array(rng, shape, dtype, kind))

    def apply(x):
        return fn(scalar, x) if scalar_left else fn(x, scalar)

    try:
        expected = apply(x_th)
    except (RuntimeError, NotImplementedError):
        assume(False)  # torch rejects it (e.g. `-` on bool); not what this test is about
    what = f"{scalar} {op} x" if scalar_left else f"x {op} {scalar}"
    assert_same(apply(x_cn), expected, f"{what} with x {dtype}")


@FAST
@given(
    bs=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4),
    dtype=numeric_dtypes,
    seed=seeds,
)
def test_floor_division(bs, dtype, seed):
    """`//` floors (towards -inf) like torch; ints stay ints. Floats are multiples of 1/4."""
    rng = np.random.default_rng(seed)
    if dtype in FLOAT_DTYPES:
        a = (rng.integers(-40, 41, bs.input_shapes[0]) / 4).astype(dtype)
        b = (rng.integers(1, 13, bs.input_shapes[1]) / 4
             * rng.choice([-1, 1], bs.input_shapes[1])).astype(dtype)
    else:
        a = rng.integers(-20, 21, bs.input_shapes[0]).astype(dtype)
        b = (rng.integers(1, 6, bs.input_shapes[1])
             * rng.choice([-1, 1], bs.input_shapes[1])).astype(dtype)
    a_cn, a_th = both(np.asarray(a))
    b_cn, b_th = both(np.asarray(b))
    assert_same(a_cn // b_cn, a_th // b_th, "a // b")
    assert_same(a_cn // 3, a_th // 3, "a // 3")
    assert_same(7 // b_cn, 7 // b_th, "7 // b")


UNARY = {
    "neg": (lambda M, x: -x, "any"),
    "abs": (lambda M, x: x.abs(), "any"),
    "abs_builtin": (lambda M, x: abs(x), "any"),
    "abs_fn": (lambda M, x: M.abs(x), "any"),
    "exp": (lambda M, x: x.exp(), "any"),
    "exp_fn": (lambda M, x: M.exp(x), "any"),
    "log": (lambda M, x: x.log(), "positive"),
    "log_fn": (lambda M, x: M.log(x), "positive"),
    "sqrt": (lambda M, x: x.sqrt(), "positive"),
    "sqrt_fn": (lambda M, x: M.sqrt(x), "positive"),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@FAST
@given(shape=shapes(), dtype=numeric_dtypes, seed=seeds)
def test_unary_ops(op, shape, dtype, seed):
    fn, kind = UNARY[op]
    arr = random_array(np.random.default_rng(seed), shape, dtype, kind)
    x_cn, x_th = both(arr)
    assert_same(fn(cn, x_cn), fn(torch, x_th), f"{op}({dtype})")


CLAMPS = {
    "both": lambda M, x, lo, hi: x.clamp(lo, hi),
    "kw_both": lambda M, x, lo, hi: x.clamp(min=lo, max=hi),
    "min_only": lambda M, x, lo, hi: x.clamp(min=lo),
    "max_only": lambda M, x, lo, hi: x.clamp(max=hi),
    "function": lambda M, x, lo, hi: M.clamp(x, lo, hi),
    "function_kw": lambda M, x, lo, hi: M.clamp(x, min=lo),
}


@pytest.mark.parametrize("form", sorted(CLAMPS))
@FAST
@given(shape=shapes(), dtype=st.sampled_from(("float32", "float64", "int64")), seed=seeds)
def test_clamp(form, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x_cn, x_th = both(random_array(rng, shape, dtype))
    lo, hi = (-0.7, 1.3) if dtype in FLOAT_DTYPES else (-2, 3)
    assert_same(CLAMPS[form](cn, x_cn, lo, hi), CLAMPS[form](torch, x_th, lo, hi), form)


COMPARISONS = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}


def _tie_prone(rng, shape, dtype):
    return np.asarray(rng.integers(-2, 3, shape) / (2 if dtype in FLOAT_DTYPES else 1)).astype(
        NP_DTYPES[dtype]
    )


@pytest.mark.parametrize("op", sorted(COMPARISONS))
@FAST
@given(
    bs=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
    dtype_a=all_dtypes,
    dtype_b=all_dtypes,
    scalar=st.sampled_from([0, 1, 0.5, -1.0]),
    seed=seeds,
)
def test_comparisons(op, bs, dtype_a, dtype_b, scalar, seed):
    fn = COMPARISONS[op]
    rng = np.random.default_rng(seed)
    a_cn, a_th = both(_tie_prone(rng, bs.input_shapes[0], dtype_a))
    b_cn, b_th = both(_tie_prone(rng, bs.input_shapes[1], dtype_b))
    assert_same(fn(a_cn, b_cn), fn(a_th, b_th), f"a {op} b")
    assert_same(fn(a_cn, scalar), fn(a_th, scalar), f"a {op} {scalar}")
    assert_same(fn(scalar, b_cn), fn(scalar, b_th), f"{scalar} {op} b")


@FAST
@given(
    bs=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4, max_side=4),
    dtype=st.sampled_from(("float32", "float64", "int64")),
    seed=seeds,
)
def test_where(bs, dtype, seed):
    rng = np.random.default_rng(seed)
    c_cn, c_th = both(rng.random(bs.input_shapes[0]) < 0.5)
    x_cn, x_th = both(random_array(rng, bs.input_shapes[1], dtype))
    y_cn, y_th = both(random_array(rng, bs.input_shapes[2], dtype))
    assert_same(cn.where(c_cn, x_cn, y_cn), torch.where(c_th, x_th, y_th), "where")
    assert_same(cn.where(x_cn > 0, x_cn, y_cn), torch.where(x_th > 0, x_th, y_th), "where(x>0)")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_where_python_scalar_branches(dtype):
    arr = random_array(np.random.default_rng(3), (3, 4), dtype)
    x_cn, x_th = both(arr)
    assert_same(cn.where(x_cn > 0, x_cn, 0.0), torch.where(x_th > 0, x_th, 0.0), "where(.,x,0.)")
    assert_same(cn.where(x_cn > 0, 1.0, x_cn), torch.where(x_th > 0, 1.0, x_th), "where(.,1.,x)")


@st.composite
def matmul_shapes(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    a_core = draw(st.sampled_from([(k,), (n, k)]))
    b_core = draw(st.sampled_from([(k,), (k, m)]))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                   max_side=3))
    a_batch, b_batch = batch.input_shapes
    if len(a_core) == 1:
        a_batch = ()
    if len(b_core) == 1:
        b_batch = ()
    return tuple(a_batch) + a_core, tuple(b_batch) + b_core


@pytest.mark.parametrize("form", ["matmul_fn", "matmul_method", "at_operator"])
@FAST
@given(sh=matmul_shapes(), dtype=st.sampled_from(("float32", "float64", "int64")), seed=seeds)
def test_matmul(form, sh, dtype, seed):
    rng = np.random.default_rng(seed)
    a_cn, a_th = both(random_array(rng, sh[0], dtype))
    b_cn, b_th = both(random_array(rng, sh[1], dtype))
    fn = {"matmul_fn": lambda M, a, b: M.matmul(a, b),
          "matmul_method": lambda M, a, b: a.matmul(b),
          "at_operator": lambda M, a, b: a @ b}[form]
    assert_same(fn(cn, a_cn, b_cn), fn(torch, a_th, b_th), f"{sh[0]} @ {sh[1]}")


@pytest.mark.parametrize("form", ["function", "method"])
@FAST
@given(n=st.integers(1, 5), k=st.integers(1, 5), m=st.integers(1, 5),
       dtype=st.sampled_from(("float32", "float64", "int64")), seed=seeds)
def test_mm(form, n, k, m, dtype, seed):
    rng = np.random.default_rng(seed)
    a_cn, a_th = both(random_array(rng, (n, k), dtype))
    b_cn, b_th = both(random_array(rng, (k, m), dtype))
    if form == "function":
        assert_same(cn.mm(a_cn, b_cn), torch.mm(a_th, b_th), "mm")
    else:
        assert_same(a_cn.mm(b_cn), a_th.mm(b_th), "mm")


# --------------------------------------------------------------------------- reductions


def _reduce(M, x, name, dim, keepdim, style, p=None):
    kw = {} if p is None else {"p": p}
    if style == "function":
        fn = getattr(M, name)
        if dim is None:
            return fn(x, **kw)
        return fn(x, dim=dim, keepdim=keepdim, **kw)
    method = getattr(x, name)
    if dim is None:
        return method(**kw)
    if style == "positional" and not kw and name != "norm":
        return method(dim, keepdim) if keepdim else method(dim)
    return method(dim=dim, keepdim=keepdim, **kw)


REDUCTION_DTYPES = {
    "sum": ALL_DTYPES,
    "mean": FLOAT_DTYPES,
    "prod": ("float32", "float64", "int64", "int32", "bool"),
    "norm": FLOAT_DTYPES,
}


@pytest.mark.parametrize("name", sorted(REDUCTION_DTYPES))
@FAST
@given(
    shape=shapes(min_dims=0, max_dims=4, max_side=4),
    data=st.data(),
    keepdim=st.booleans(),
    style=reduce_styles,
    seed=seeds,
)
def test_reductions(name, shape, data, keepdim, style, seed):
    dtype = data.draw(st.sampled_from(REDUCTION_DTYPES[name]), label="dtype")
    dims = [None] + (list(range(-len(shape), len(shape))) if shape else [])
    dim = data.draw(st.sampled_from(dims), label="dim")
    rng = np.random.default_rng(seed)
    if name == "prod":
        arr = (rng.uniform(0.7, 1.3, shape) * rng.choice([-1, 1], shape)
               if dtype in FLOAT_DTYPES else rng.integers(-2, 3, shape))
        arr = np.asarray(arr).astype(NP_DTYPES[dtype])
    else:
        arr = random_array(rng, shape, dtype)
    x_cn, x_th = both(arr)
    assert_same(_reduce(cn, x_cn, name, dim, keepdim, style),
                _reduce(torch, x_th, name, dim, keepdim, style),
                f"{name}(dim={dim}, keepdim={keepdim}) [{style}]")


@pytest.mark.parametrize("name", ["sum", "mean"])
@pytest.mark.parametrize("dim", [(0, 1), (-1, 0), (1, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean_over_several_dims(name, dim, keepdim):
    x_cn, x_th = both(random_array(np.random.default_rng(7), (2, 3, 4), "float32"))
    assert_same(getattr(x_cn, name)(dim=dim, keepdim=keepdim),
                getattr(x_th, name)(dim=dim, keepdim=keepdim), f"{name}({dim})")


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("dim", [None, 0, -1])
def test_norm_p(p, dim):
    x_cn, x_th = both(random_array(np.random.default_rng(8), (3, 4), "float64"))
    kw = {} if dim is None else {"dim": dim}
    assert_same(x_cn.norm(p=p, **kw), x_th.norm(p=p, **kw), f"norm(p={p}, dim={dim})")


@pytest.mark.parametrize("name", ["max", "min"])
@FAST
@given(
    shape=shapes(min_dims=1, max_dims=4, max_side=4),
    dtype=numeric_dtypes,
    data=st.data(),
    keepdim=st.booleans(),
    style=reduce_styles,
    seed=seeds,
)
def test_max_min(name, shape, dtype, data, keepdim, style, seed):
    x_cn, x_th = both(distinct_array(np.random.default_rng(seed), shape, dtype))
    assert_same(getattr(x_cn, name)(), getattr(x_th, name)(), f"{name}()")
    dim = data.draw(dim_strategy(len(shape)), label="dim")
    got = _reduce(cn, x_cn, name, dim, keepdim, style)
    expected = _reduce(torch, x_th, name, dim, keepdim, style)
    what = f"{name}(dim={dim}, keepdim={keepdim})"
    assert_same(got.values, expected.values, what + ".values")
    assert_same(got.indices, expected.indices, what + ".indices")
    assert_same(got[0], expected[0], what + "[0]")
    assert_same(got[1], expected[1], what + "[1]")
    values, indices = got
    assert_same(values, expected.values, what + " unpacked values")
    assert_same(indices, expected.indices, what + " unpacked indices")


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@FAST
@given(
    shape=shapes(min_dims=0, max_dims=4, max_side=4),
    dtype=numeric_dtypes,
    data=st.data(),
    keepdim=st.booleans(),
    style=reduce_styles,
    seed=seeds,
)
def test_argmax_argmin(name, shape, dtype, data, keepdim, style, seed):
    x_cn, x_th = both(distinct_array(np.random.default_rng(seed), shape, dtype))
    dims = [None] + list(range(-len(shape), len(shape)))
    dim = data.draw(st.sampled_from(dims), label="dim")
    assert_same(_reduce(cn, x_cn, name, dim, keepdim, style),
                _reduce(torch, x_th, name, dim, keepdim, style),
                f"{name}(dim={dim}, keepdim={keepdim})")


# --------------------------------------------------------------------------- indexing


@st.composite
def index_cases(draw, advanced: bool, unique: bool = False):
    """(shape, (as_tuple, components)). Components are ints, slices, None, Ellipsis, or tagged
    arrays ('list', [...]), ('long', ndarray), ('mask', ndarray), turned into a real index for
    one library by `build_index`."""
    shape = draw(shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    ndim = len(shape)
    comps = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]) if not advanced
                    else st.sampled_from(["slice", "full"]))
        if kind == "int":
            comps.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-size - 2, size + 2)
            comps.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3]))))
        else:
            comps.append(slice(None))
    if advanced:
        d = draw(st.integers(0, ndim - 1))
        size = shape[d]
        kind = draw(st.sampled_from(["list", "long", "mask"]))
        if kind == "mask":
            comps[d] = ("mask", np.array(draw(st.lists(st.booleans(), min_size=size,
                                                         max_size=size))))
        else:
            if unique:
                picks = draw(st.permutations(range(size)))
                picks = picks[: draw(st.integers(1, size))]
                values = [p - size if draw(st.booleans()) else p for p in picks]
            else:
                values = draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=5))
            comps[d] = ("list", values) if kind == "list" else ("long", np.array(values))
        protected = {d}
    else:
        protected = set()
    # Replace a run of plain full slices by an Ellipsis.
    if draw(st.booleans()):
        start = draw(st.integers(0, ndim))
        stop = draw(st.integers(start, ndim))
        if all(comps[i] == slice(None) and i not in protected for i in range(start, stop)):
            comps = comps[:start] + [Ellipsis] + comps[stop:]
    # Drop trailing full slices (not after an Ellipsis: that would shift what they address).
    while (Ellipsis not in comps and comps and isinstance(comps[-1], slice)
           and comps[-1] == slice(None) and draw(st.booleans())):
        comps.pop()
    for _ in range(draw(st.integers(0, 2))):
        comps.insert(draw(st.integers(0, len(comps))), None)
    as_tuple = len(comps) != 1 or draw(st.booleans())
    return shape, (as_tuple, tuple(comps))


def build_index(M, spec):
    """The index described by `spec` (from `index_cases`) with array parts as M tensors."""
    as_tuple, comps = spec

    def one(c):
        if isinstance(c, tuple):
            tag, value = c
            if tag == "list":
                return list(value)
            if tag == "long":
                return M.tensor(value.astype(np.int64))
            return M.tensor(value.astype(bool))
        return c

    if as_tuple:
        return tuple(one(c) for c in comps)
    return one(comps[0])


@FAST
@given(case=index_cases(advanced=False), dtype=all_dtypes, seed=seeds)
def test_basic_indexing(case, dtype, seed):
    shape, spec = case
    x_cn, x_th = both(random_array(np.random.default_rng(seed), shape, dtype))
    assert_same(x_cn[build_index(cn, spec)], x_th[build_index(torch, spec)], f"x{shape}[{spec}]")


@FAST
@given(case=index_cases(advanced=True), dtype=all_dtypes, seed=seeds)
def test_advanced_indexing(case, dtype, seed):
    shape, spec = case
    x_cn, x_th = both(random_array(np.random.default_rng(seed), shape, dtype))
    assert_same(x_cn[build_index(cn, spec)], x_th[build_index(torch, spec)], f"x{shape}[{spec}]")


@QUICK
@given(shape=shapes(min_dims=1, max_dims=4), lead=st.integers(1, 4), dtype=all_dtypes,
       seed=seeds)
def test_boolean_mask_indexing(shape, lead, dtype, seed):
    rng = np.random.default_rng(seed)
    x_cn, x_th = both(random_array(rng, shape, dtype))
    k = min(lead, len(shape))
    m_cn, m_th = both(rng.random(shape[:k]) < 0.5)
    assert_same(x_cn[m_cn], x_th[m_th], "x[mask]")
    assert_same(x_cn[x_cn > 0], x_th[x_th > 0], "x[x > 0]")


@pytest.mark.parametrize(
    "index",
    [
        lambda M: ([0, 1], [1, 2]),
        lambda M: (M.tensor([0, 2, 2]), M.tensor([1, 0, 3])),
        lambda M: (M.tensor([[0], [2]]), M.tensor([1, 3])),
        lambda M: (slice(None), M.tensor([0, 2]), M.tensor([1, 3])),
        lambda M: (Ellipsis, [1, 0]),
        lambda M: M.tensor([[0, 1], [2, 2]]),
        lambda M: (None, Ellipsis, 1),
        lambda M: (1, Ellipsis, None),
    ],
    ids=["two_lists", "two_tensors", "broadcast_tensors", "slice_then_two", "ellipsis_list",
         "2d_index_tensor", "none_ellipsis_int", "int_ellipsis_none"],
)
def test_multi_advanced_indexing(index):
    x_cn, x_th = both(np.arange(48, dtype=np.float32).reshape(3, 4, 4))
    assert_same(x_cn[index(cn)], x_th[index(torch)], "multi advanced")


@FAST
@given(case=st.one_of(index_cases(advanced=False), index_cases(advanced=True, unique=True)),
       dtype=all_dtypes, value_kind=st.sampled_from(["scalar", "0d", "full", "row"]),
       seed=seeds)
def test_setitem(case, dtype, value_kind, seed):
    shape, spec = case
    rng = np.random.default_rng(seed)
    x_cn, x_th = both(random_array(rng, shape, dtype))
    target = tuple(x_th[build_index(torch, spec)].shape)
    if value_kind == "scalar":
        v_cn = v_th = random_array(rng, (), dtype).item()
    else:
        vshape = {"0d": (), "full": target, "row": target[-1:]}[value_kind]
        v_cn, v_th = both(random_array(rng, vshape, dtype))
    x_cn[build_index(cn, spec)] = v_cn
    x_th[build_index(torch, spec)] = v_th
    assert_same(x_cn, x_th, f"x{shape}[{spec}] = {value_kind}")


def test_setitem_examples():
    """The spec's own examples: X[:, 2:6] = 0 and Y[i, j] = 0-d tensor."""
    results = []
    for M in (cn, torch):
        X = M.ones((6, 8))
        X[:, 2:6] = 0
        Y = M.zeros((2, 3))
        for i in range(2):
            for j in range(3):
                Y[i, j] = (X[i:i + 2, j:j + 2] * M.tensor([[1.0, -1.0], [0.5, 2.0]])).sum()
        M_mask = X.clone()
        M_mask[M_mask > 0] = -3.0
        results.append((X, Y, M_mask))
    for got, expected in zip(*results, strict=True):
        assert_same(got, expected, "setitem example")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_iteration_over_first_dim(dtype):
    arr = random_array(np.random.default_rng(4), (3, 2, 2), dtype)
    x_cn, x_th = both(arr)
    rows_cn, rows_th = list(x_cn), list(x_th)
    assert len(rows_cn) == len(rows_th) == 3
    for got, expected in zip(rows_cn, rows_th, strict=True):
        assert_same(got, expected, "row")
    vec_cn, vec_th = both(arr[0, 0])
    for got, expected in zip(vec_cn, vec_th, strict=True):
        assert_same(got, expected, "element")
    with pytest.raises(TypeError):
        list(cn.tensor(1.0))


# --------------------------------------------------------------------------- shape ops


@st.composite
def reshape_cases(draw):
    shape = draw(shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    return shape, draw_reshape_target(draw, shape)


@pytest.mark.parametrize("form", ["reshape", "reshape_tuple", "reshape_list", "reshape_fn",
                                  "view", "view_tuple", "reshape_noncontig"])
@FAST
@given(case=reshape_cases(), dtype=all_dtypes, seed=seeds)
def test_reshape_view(form, case, dtype, seed):
    shape, target = case
    x_cn, x_th = both(random_array(np.random.default_rng(seed), shape, dtype))
    if form == "reshape_noncontig":
        assume(len(shape) >= 2)
        x_cn, x_th = x_cn.transpose(0, -1), x_th.transpose(0, -1)
    name = "view" if form.startswith("view") else "reshape"
    if form in ("reshape", "view") and target:
        def fn(x, M):
            return getattr(x, name)(*target)
    elif form == "reshape_fn":
        def fn(x, M):
            return M.reshape(x, target)
    elif form == "reshape_list":
        def fn(x, M):
            return x.reshape(list(target))
    else:
        def fn(x, M):
            return getattr(x, name)(target)
    assert_same(fn(x_cn, cn), fn(x_th, torch), f"{form} {shape} -> {target}")
    assert_same(x_cn.reshape(-1), x_th.reshape(-1), "reshape(-1)")


@FAST
@given(shape=shapes(min_dims=1, max_dims=4), data=st.data(), dtype=all_dtypes, seed=seeds)
def test_permute_transpose_t(shape, data, dtype, seed):
    x_cn, x_th = both(random_array(np.random.default_rng(seed), shape, dtype))
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)), label="perm")
    perm = [p - nd if data.draw(st.booleans()) else p for p in perm]
    assert_same(x_cn.permute(*perm), x_th.permute(*perm), f"permute(*{perm})")
    assert_same(x_cn.permute(tuple(perm)), x_th.permute(tuple(perm)), f"permute({perm})")
    d0, d1 = data.draw(dim_strategy(nd)), data.draw(dim_strategy(nd))
    assert_same(x_cn.transpose(d0, d1), x_th.transpose(d0, d1), f"transpose({d0}, {d1})")
    assert_same(cn.transpose(x_cn, d0, d1), torch.transpose(x_th, d0, d1), "transpose fn")
    if nd <= 2:
        assert_same(x_cn.t(), x_th.t(), "t()")
    # Operating on the permuted (non-contiguous) result must follow its logical layout.
    assert_same(x_cn.permute(*perm) * 1, x_th.permute(*perm) * 1, "permuted * 1")
    assert_same(x_cn.transpose(d0, d1).contiguous(), x_th.transpose(d0, d1).contiguous(),
                "contiguous")


@FAST
@given(shape=shapes(min_dims=0, max_dims=4), data=st.data(), dtype=all_dtypes, seed=seeds)
def test_flatten(shape, data, dtype, seed):
    x_cn, x_th = both(random_array(np.random.default_rng(seed), shape, dtype))
    assert_same(x_cn.flatten(), x_th.flatten(), "flatten()")
    nd = max(len(shape), 1)
    s = data.draw(st.integers(0, nd - 1), label="start")
    e = data.draw(st.integers(s, nd - 1), label="end")
    if data.draw(st.booleans()):
        s -= nd
    if data.draw(st.booleans()):
        e -= nd
    assert_same(x_cn.flatten(s), x_th.flatten(s), f"flatten({s})")
    assert_same(x_cn.flatten(s, e), x_th.flatten(s, e), f"flatten({s}, {e})")
    assert_same(cn.flatten(x_cn, start_dim=s, end_dim=e),
                torch.flatten(x_th, start_dim=s, end_dim=e), "flatten fn")


@FAST
@given(shape=shapes(min_dims=0, max_dims=4, max_side=2), data=st.data(), dtype=all_dtypes,
       seed=seeds)
def test_squeeze_unsqueeze(shape, data, dtype, seed):
    x_cn, x_th = both(random_array(np.random.default_rng(seed), shape, dtype))
    nd = len(shape)
    assert_same(x_cn.squeeze(), x_th.squeeze(), "squeeze()")
    if nd:
        d = data.draw(dim_strategy(nd), label="squeeze dim")
        assert_same(x_cn.squeeze(d), x_th.squeeze(d), f"squeeze({d})")
        assert_same(cn.squeeze(x_cn, d), torch.squeeze(x_th, d), "squeeze fn")
    u = data.draw(st.integers(-nd - 1, nd), label="unsqueeze dim")
    assert_same(x_cn.unsqueeze(u), x_th.unsqueeze(u), f"unsqueeze({u})")
    assert_same(cn.unsqueeze(x_cn, u), torch.unsqueeze(x_th, u), "unsqueeze fn")


@st.composite
def expand_cases(draw):
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=3))
    target = []
    for s in shape:
        if s == 1:
            target.append(draw(st.sampled_from([1, 2, 3, -1])))
        else:
            target.append(draw(st.sampled_from([s, -1])))
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return shape, tuple(lead) + tuple(target)


@FAST
@given(case=expand_cases(), dtype=all_dtypes, seed=seeds, varargs=st.booleans())
def test_expand(case, dtype, seed, varargs):
    shape, target = case
    assume(target or not varargs)
    x_cn, x_th = both(random_array(np.random.default_rng(seed), shape, dtype))
    if varargs:
        got, expected = x_cn.expand(*target), x_th.expand(*target)
    else:
        got, expected = x_cn.expand(target), x_th.expand(target)
    assert_same(got, expected, f"expand {shape} -> {target}")
    assert_same(got + 0, expected + 0, "expanded + 0")


@FAST
@given(shape=shapes(min_dims=0, max_dims=3), n=st.integers(1, 3), data=st.data(),
       dtype=all_dtypes, seed=seeds, as_tuple=st.booleans())
def test_stack(shape, n, data, dtype, seed, as_tuple):
    rng = np.random.default_rng(seed)
    arrays = [random_array(rng, shape, dtype) for _ in range(n)]
    seq_cn = [cn.tensor(a) for a in arrays]
    seq_th = [torch.tensor(a) for a in arrays]
    if as_tuple:
        seq_cn, seq_th = tuple(seq_cn), tuple(seq_th)
    d = data.draw(st.integers(-len(shape) - 1, len(shape)), label="dim")
    assert_same(cn.stack(seq_cn), torch.stack(seq_th), "stack default dim")
    assert_same(cn.stack(seq_cn, dim=d), torch.stack(seq_th, dim=d), f"stack(dim={d})")
    assert_same(cn.stack(seq_cn, d), torch.stack(seq_th, d), f"stack({d})")


@FAST
@given(shape=shapes(min_dims=1, max_dims=3), sizes=st.lists(st.integers(1, 3), min_size=1,
                                                               max_size=3),
       data=st.data(), dtype=all_dtypes, seed=seeds)
def test_cat(shape, sizes, data, dtype, seed):
    rng = np.random.default_rng(seed)
    d = data.draw(dim_strategy(len(shape)), label="dim")
    arrays = []
    for s in sizes:
        sh = list(shape)
        sh[d] = s
        arrays.append(random_array(rng, sh, dtype))
    seq_cn = [cn.tensor(a) for a in arrays]
    seq_th = [torch.tensor(a) for a in arrays]
    assert_same(cn.cat(seq_cn, dim=d), torch.cat(seq_th, dim=d), f"cat(dim={d})")
    assert_same(cn.cat(tuple(seq_cn), d), torch.cat(tuple(seq_th), d), f"cat({d})")
    if d in (0, -len(shape)):
        assert_same(cn.cat(seq_cn), torch.cat(seq_th), "cat default dim")


VIEW_MUTATIONS = {
    "view": lambda x: x.view(-1).__setitem__(0, 100.0),
    "view_tuple": lambda x: x.view((4, 3)).__setitem__((1, 1), 100.0),
    "slice_row": lambda x: x[1].__setitem__(slice(None), 100.0),
    "slice_cols_iadd": lambda x: x[:, 1:3].__iadd__(1.0),
    "transpose": lambda x: x.transpose(0, 1).__setitem__((2, 0), 100.0),
    "t": lambda x: x.t()[0].__imul__(3.0),
    "permute": lambda x: x.permute(1, 0).__setitem__((0, 1), 100.0),
    "unsqueeze": lambda x: x.unsqueeze(0).__setitem__((0, 0, 0), 100.0),
    "squeeze": lambda x: x[None].squeeze(0).__setitem__((2, 3), 100.0),
    "detach": lambda x: x.detach().__setitem__((0, 0), 100.0),
    "data": lambda x: x.data.__setitem__((0, 0), 100.0),
    "fill_slice": lambda x: x[2].fill_(7.0),
    "zero_slice": lambda x: x[:, 0].zero_(),
    "copy_slice": lambda x: x[0].copy_(x[1]),
}


@pytest.mark.parametrize("name", sorted(VIEW_MUTATIONS))
def test_views_share_storage_with_base(name):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    x_cn, x_th = both(arr)
    VIEW_MUTATIONS[name](x_cn)
    VIEW_MUTATIONS[name](x_th)
    assert_same(x_cn, x_th, f"base after writing through {name}")
