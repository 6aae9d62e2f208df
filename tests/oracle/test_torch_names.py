"""PyTorch's other names and the small operations beside them, against PyTorch: the aliases
(multiply, subtract, divide, true_divide, negative, absolute, greater, ..., clamp_min,
clip_ and the in-place forms), div's rounding_mode, sign/sgn, isinf/isposinf/isneginf, the
logical and bitwise functions, dot/mv/outer/bmm, lerp/addcmul/addcdiv, as methods and as
functions of the module.

Each call runs in both libraries on the same random operands (every dtype, broadcasting,
NaN, infinities, zeros and -0.0 among the values, Python numbers as the second operand): both
raise, or both return equal values of the same dtype and shape; with float64 operands that
need gradients, the gradients are equal too. Piecewise constant functions (sign, round,
trunc, a rounded quotient) pass a zero gradient even where the upstream one is inf or NaN,
as PyTorch's zeros_like(grad).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet

from torch_compare import assert_grad, assert_same

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


@st.composite
def arrays(draw, shape=None, dtypes=DTYPES):
    """A random array of a drawn dtype: normal values (halves, so that ties and exact zeros
    occur) with NaN, +-inf, 0 and -0.0 sprinkled into floats; small ints; bools."""
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == "bool":     # (np.asarray: a 0-d array, not a NumPy scalar)
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.startswith(("int", "uint")):
        low = 0 if dtype == "uint8" else -6
        return np.asarray(rng.integers(low, low + 13, shape).astype(dtype))
    values = np.asarray(np.round(rng.standard_normal(shape) * 4) / 2)
    special = rng.random(shape) < 0.2
    values[special] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0], int(special.sum()))
    return values.astype(dtype)


@st.composite
def partners(draw, shape):
    """An array that broadcasts with `shape` (its trailing dims, some of them 1)."""
    tail = list(shape[draw(st.integers(0, len(shape))):])
    tail = [1 if draw(st.booleans()) else n for n in tail]
    return draw(arrays(tuple(tail)))


NUMBERS = st.sampled_from([2, -3, 0, 2.5, -0.5, True, float("inf"), float("nan")])


def outcome(lib, call):
    """('ok', result) or ('raised', the exception's type)."""
    try:
        return "ok", call(lib)
    except Exception as error:  # noqa: BLE001 - the verdict is what is compared
        return "raised", type(error)


def assert_as_torch(call, what=""):
    """call(corrnet) as call(torch): both raise, or both return equal tensors (or bools)."""
    ours, theirs = outcome(corrnet, call), outcome(torch, call)
    assert ours[0] == theirs[0], f"{what}: corrnet {ours}, torch {theirs}"
    if ours[0] == "ok":
        got, expected = ours[1], theirs[1]
        if isinstance(expected, torch.Tensor):
            assert_same(got, expected, what)
        else:
            assert got == expected, what
    return ours[0]


def tensor(lib, array, **kwargs):
    return lib.tensor(array, **kwargs)


UNARY = ["sign", "sgn", "isinf", "isposinf", "isneginf", "logical_not", "bitwise_not",
         "negative", "absolute"]


@settings(max_examples=120, deadline=None)
@given(a=arrays(), name=st.sampled_from(UNARY), form=st.sampled_from(["method", "function"]))
def test_unary_names_as_torch(a, name, form):
    if form == "method":
        assert_as_torch(lambda m: getattr(tensor(m, a), name)(), f"x.{name}() on {a.dtype}")
    else:
        assert_as_torch(lambda m: getattr(m, name)(tensor(m, a)), f"{name}(x) on {a.dtype}")


BINARY = ["multiply", "subtract", "divide", "true_divide", "greater", "greater_equal", "less",
          "less_equal", "not_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and",
          "bitwise_or", "bitwise_xor", "clamp_min", "clamp_max"]


@settings(max_examples=250, deadline=None)
@given(data=st.data(), name=st.sampled_from(BINARY),
       form=st.sampled_from(["method", "function", "number"]))
def test_binary_names_as_torch(data, name, form):
    a = data.draw(arrays())
    if form == "number":
        b = data.draw(NUMBERS)
        assert_as_torch(lambda m: getattr(tensor(m, a), name)(b), f"x.{name}({b!r})")
        return
    b = data.draw(partners(a.shape))
    if form == "method":
        call = lambda m: getattr(tensor(m, a), name)(tensor(m, b))  # noqa: E731
    else:
        call = lambda m: getattr(m, name)(tensor(m, a), tensor(m, b))  # noqa: E731
    assert_as_torch(call, f"{name} of {a.dtype}{a.shape} and {b.dtype}{b.shape}")


@settings(max_examples=150, deadline=None)
@given(data=st.data(), mode=st.sampled_from([None, "floor", "trunc", "round"]),
       number=st.booleans(), name=st.sampled_from(["div", "divide"]))
def test_div_rounding_mode_as_torch(data, mode, number, name):
    """Values (integer quotients toward zero or down, by zero refused for integers), dtypes,
    and a rounding mode PyTorch does not know refused."""
    a = data.draw(arrays())
    b = data.draw(NUMBERS) if number else data.draw(partners(a.shape))

    def call(m):
        other = b if number else tensor(m, b)
        return getattr(tensor(m, a), name)(other, rounding_mode=mode)

    described = repr(b) if number else b.dtype
    assert_as_torch(call, f"{name}({a.dtype}, {described}, {mode})")


@pytest.mark.parametrize("call", [
    lambda m: m.zeros((0,), dtype=m.int8) // m.tensor(False),
    lambda m: m.zeros((0, 2), dtype=m.int64) % m.tensor([0, 1]),
    lambda m: m.zeros((0,), dtype=m.int32).div(0, rounding_mode="trunc"),
    lambda m: m.zeros((0,), dtype=m.int32).div(m.tensor(0), rounding_mode="floor"),
    lambda m: 5 // m.zeros((0,), dtype=m.int64),
    lambda m: m.ones((2,), dtype=m.int64).div(0, rounding_mode="trunc"),
    lambda m: m.ones((2,), dtype=m.int64) % m.tensor([1, 0]),
])
def test_integer_division_by_zero_refused_only_where_it_divides(call):
    """An empty result divides nothing: PyTorch refuses a zero divisor only where it is used
    (corrnet refused ``empty // 0``; found by this file's division test)."""
    assert_as_torch(call)


@pytest.mark.parametrize("mode", [None, "floor", "trunc"])
def test_div_rounding_mode_number_first_and_in_place(mode):
    a = np.array([-7, -6, 5, 7], dtype=np.int64)
    assert_as_torch(lambda m: m.div(17, tensor(m, a), rounding_mode=mode), "div(17, x)")
    assert_as_torch(lambda m: tensor(m, a.astype(np.float32)).div_(2, rounding_mode=mode),
                    "x.div_(2)")
    assert_as_torch(lambda m: tensor(m, a).divide_(tensor(m, a[::-1].copy()),
                                                   rounding_mode=mode), "x.divide_(y)")


@pytest.mark.parametrize("name", ["floor", "trunc", "round", "ceil", "sign", "sgn",
                                  "div_floor", "div_trunc"])
def test_piecewise_constant_gradients_are_zero_as_torch(name):
    """Zero where the upstream gradient is inf or NaN too (PyTorch's zeros_like(grad)); it
    was NaN for floor, trunc, round and ceil. div's rounded quotient too (DivBackward2),
    though PyTorch's ``//`` has no derivative."""
    values = np.array([1.5, -2.5, 0.25, 3.0])
    upstream = np.array([np.inf, np.nan, -np.inf, 2.0])
    grads = []
    for m in (corrnet, torch):
        x = m.tensor(values, requires_grad=True)
        if name.startswith("div_"):
            divisor = m.tensor([2.0, 3.0, -1.5, 0.5], requires_grad=True)
            y = x.div(divisor, rounding_mode=name[4:])
            assert y.grad_fn.name() == "DivBackward2"
        else:
            y = getattr(x, name)()
        y.backward(m.tensor(upstream))
        grads.append(x.grad if m is corrnet else torch.zeros_like(x.grad) + x.grad)
    assert_grad(*grads, name)
    assert not np.asarray(grads[0].numpy()).any()


@pytest.mark.parametrize("name", ["multiply_", "subtract_", "divide_", "true_divide_",
                                  "negative_", "absolute_", "clip_", "clamp_min_",
                                  "clamp_max_"])
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_in_place_names_as_torch(name, dtype):
    a = np.array([-1.5, 0.0, 2.5, 3.0]).astype(dtype)
    b = np.array([2.0, -1.0, 0.5, 4.0]).astype(dtype)

    def call(m):
        x = tensor(m, a)
        arguments = {"negative_": (), "absolute_": (), "clip_": (-1, 1), "clamp_min_": (0.5,),
                     "clamp_max_": (0.5,)}.get(name, (tensor(m, b),))
        result = getattr(x, name)(*arguments)
        assert result is x
        return x

    assert_as_torch(call, f"{name} on {dtype}")


@st.composite
def matrix_problems(draw):
    """dot / mv / outer / bmm operands: mostly fitting shapes of one dtype, sometimes not."""
    name = draw(st.sampled_from(["dot", "mv", "outer", "bmm"]))
    n, k, m, b = (draw(st.integers(0, 4)) for _ in range(4))
    shapes = {"dot": ((k,), (k,)), "mv": ((n, k), (k,)), "outer": ((n,), (m,)),
              "bmm": ((b, n, k), (b, k, m))}[name]
    if draw(st.integers(0, 5)) == 0:    # a wrong shape: another length, or another rank
        first, second = shapes
        second = (second + (2,)) if draw(st.booleans()) else tuple(s + 1 for s in second)
        shapes = (first, second)
    dtypes = draw(st.sampled_from([("float64", "float64"), ("float32", "float32"),
                                   ("float32", "float64"), ("int64", "int64"),
                                   ("int32", "float32")]))
    if dtypes[0] != dtypes[1]:
        # (PyTorch's batched product returns an empty result before its dtype check, a
        # defect of its own that tests/fuzz/worker.py names: operands of two dtypes here are
        # not empty)
        shapes = tuple(tuple(max(s, 1) for s in shape) for shape in shapes)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    operands = [(rng.standard_normal(shape) * 3).astype(dtype)
                for shape, dtype in zip(shapes, dtypes, strict=True)]
    return name, operands


@settings(max_examples=200, deadline=None)
@given(problem=matrix_problems(), form=st.sampled_from(["method", "function"]))
def test_matrix_products_as_torch(problem, form):
    """Values, dtypes, the refusals (rank, size, dtype) and, in float64, both gradients."""
    name, (a, b) = problem
    grad = a.dtype == b.dtype == np.float64
    leaves = {}

    def call(m):
        x, y = (m.tensor(v, requires_grad=grad) for v in (a, b))
        leaves[m.__name__] = (x, y)
        out = getattr(x, name)(y) if form == "method" else getattr(m, name)(x, y)
        if grad:
            out.backward(m.ones(out.shape, dtype=out.dtype) * 0.5)
        return out

    if assert_as_torch(call, f"{name} {a.dtype}{a.shape} {b.dtype}{b.shape}") == "ok" and grad:
        for ours, theirs in zip(leaves["corrnet"], leaves["torch"], strict=True):
            assert_grad(ours.grad, theirs.grad, name)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), name=st.sampled_from(["lerp", "addcmul", "addcdiv"]),
       form=st.sampled_from(["method", "function"]))
def test_lerp_addcmul_addcdiv_as_torch(data, name, form):
    """Values and refusals over dtypes (lerp's weight a number or a tensor; addcmul's and
    addcdiv's value), and every gradient where all operands are float64."""
    a = data.draw(arrays(dtypes=["float16", "float32", "float64", "int64", "float64",
                                 "float64"]))
    b = data.draw(partners(a.shape))
    same = data.draw(st.booleans())
    if same:    # mostly operands of one dtype, whose gradients are compared
        with np.errstate(invalid="ignore"):     # (NaN into an integer: any value)
            b = b.astype(a.dtype)
    if name == "lerp":
        third = data.draw(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.5, 2.0]),
                                    partners(a.shape)))
    else:
        third = data.draw(partners(a.shape))
    if same and isinstance(third, np.ndarray):
        with np.errstate(invalid="ignore"):
            third = third.astype(a.dtype)
    value = data.draw(st.sampled_from([1, 2, -0.5]))
    grad = all(isinstance(v, float) or v.dtype == np.float64 for v in (a, b, third))
    leaves = {}

    def call(m):
        operands = [m.tensor(v, requires_grad=grad) if isinstance(v, np.ndarray) else v
                    for v in (a, b, third)]
        leaves[m.__name__] = [v for v in operands if isinstance(v, m.Tensor)]
        keywords = {} if name == "lerp" else {"value": value}
        out = (getattr(operands[0], name)(*operands[1:], **keywords) if form == "method"
               else getattr(m, name)(*operands, **keywords))
        if grad and out.numel():
            with m.no_grad():
                upstream = m.ones(out.shape, dtype=out.dtype) * 0.5
            out.backward(upstream)
        return out

    # (with NaN or inf among the operands the gradients' NaN places follow the formulas:
    # compared where every operand is finite)
    finite = all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in (a, b, third))
    if assert_as_torch(call, f"{name} {a.dtype}{a.shape}") == "ok" and grad and finite:
        for ours, theirs in zip(leaves["corrnet"], leaves["torch"], strict=True):
            assert_grad(ours.grad, theirs.grad, name)


def test_clamp_with_a_nan_bound_tensor_as_torch():
    """A NaN in a tensor bound gives NaN there (corrnet kept x: found by clamp_min above)."""
    x = np.array([1.0, np.nan, -2.0, 0.5])
    low = np.array([np.nan, 0.0, 0.0, -1.0])
    high = np.array([2.0, 1.0, np.nan, np.nan])
    assert_as_torch(lambda m: tensor(m, x).clamp(min=tensor(m, low)), "min")
    assert_as_torch(lambda m: tensor(m, x).clamp(max=tensor(m, high)), "max")
    assert_as_torch(lambda m: tensor(m, x).clamp(tensor(m, low), tensor(m, high)), "both")
    assert_as_torch(lambda m: m.clamp_max(tensor(m, x), tensor(m, high)), "clamp_max")


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("weight", [0.3, 0.7, 0.1234, 0.51, "tensor"])
def test_lerp_gives_pytorchs_very_numbers_in_float16_and_float32(dtype, weight):
    """PyTorch fuses each end's multiply-add (float16 in float32): 25% of float32 results
    were one rounding apart before corrnet fused them too."""
    rng = np.random.default_rng(7)
    start, end = ((rng.standard_normal(20000) * 100).astype(dtype) for _ in range(2))
    weights = rng.random(20000).astype(dtype) if weight == "tensor" else weight
    results = [m.lerp(m.tensor(start), m.tensor(end), m.tensor(weights) if weight == "tensor"
                      else weights).numpy() for m in (corrnet, torch)]
    np.testing.assert_array_equal(*results)


CLAMP_FORMS = {
    "clamp": lambda m, x, low, high: x.clamp(low, high),
    "clamp min=": lambda m, x, low, high: x.clamp(min=low),
    "clamp max=": lambda m, x, low, high: x.clamp(max=high),
    "torch.clamp": lambda m, x, low, high: m.clamp(x, low, high),
    "clip": lambda m, x, low, high: x.clip(low, high),
    "clamp_min": lambda m, x, low, high: x.clamp_min(low),
    "clamp_max": lambda m, x, low, high: x.clamp_max(high),
    "torch.clamp_max": lambda m, x, low, high: m.clamp_max(x, high),
}


@st.composite
def clamp_bound(draw, shape):
    """A bound for clamp: a tensor that broadcasts with `shape` (wanting a gradient or not,
    0-d ones among them), or a Python number."""
    kind = draw(st.sampled_from(["tensor", "tensor", "tensor", "0-d", "number"]))
    if kind == "number":
        return draw(NUMBERS), False
    if kind == "0-d":
        array = draw(arrays((), dtypes=["float32", "float64", "float64", "int64"]))
    else:
        array = draw(partners(shape))
    return array, array.dtype.kind == "f" and draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(data=st.data(), form=st.sampled_from(sorted(CLAMP_FORMS)))
def test_clamp_with_tensor_bounds_as_torch_gradients_included(data, form):
    """clamp, clip, clamp_min and clamp_max with tensor bounds (and a number beside a tensor,
    which PyTorch takes only where the tensor is 0-d and wants no gradient): values, dtypes,
    refusals, the node's name, and every gradient, NaN and infinities among the values and
    ties between input and bound. The gradients follow comparisons (PyTorch's
    clamp_backward): at a NaN input or bound no operand gets one (corrnet passed it to a NaN
    bound: found by the fuzzer, whose draw of clamp_max compared no gradient there)."""
    x_array = data.draw(arrays(dtypes=["float32", "float64", "float64", "int64"]))
    x_grad = x_array.dtype.kind == "f" and data.draw(st.booleans())
    (low_value, low_grad), (high_value, high_grad) = (data.draw(clamp_bound(x_array.shape))
                                                      for _ in range(2))
    leaves = {}

    def operand(m, value, wants_grad):
        return m.tensor(value, requires_grad=wants_grad) if isinstance(value, np.ndarray) \
            else value

    def call(m):
        operands = [operand(m, v, g) for v, g in ((x_array, x_grad), (low_value, low_grad),
                                                  (high_value, high_grad))]
        leaves[m.__name__] = operands
        out = CLAMP_FORMS[form](m, *operands)
        return out, (out.grad_fn.name() if out.grad_fn is not None else None)

    what = f"{form} of {x_array.dtype}{x_array.shape}, {low_value!r}, {high_value!r}"
    ours, theirs = outcome(corrnet, call), outcome(torch, call)
    assert ours[0] == theirs[0], f"{what}: corrnet {ours}, torch {theirs}"
    if ours[0] != "ok":
        return
    (out_ours, name_ours), (out_theirs, name_theirs) = ours[1], theirs[1]
    assert_same(out_ours, out_theirs, what)
    assert name_ours == name_theirs, what
    if not out_theirs.requires_grad or not out_theirs.numel():
        return
    upstream = np.linspace(-1.5, 2.5, out_theirs.numel()).reshape(tuple(out_theirs.shape))
    try:
        out_theirs.backward(torch.tensor(upstream, dtype=out_theirs.dtype))
    except RuntimeError as error:
        # PyTorch's own defect: a 0-d bound's gradient summed in place into a 0-d buffer
        # ("output with shape [] doesn't match the broadcast shape")
        assert "doesn't match the broadcast shape" in str(error), what
        return
    out_ours.backward(corrnet.tensor(upstream, dtype=out_ours.dtype))
    for ours_leaf, theirs_leaf in zip(leaves["corrnet"], leaves["torch"], strict=True):
        if isinstance(theirs_leaf, torch.Tensor):     # (a bound's: summed where broadcast)
            assert_grad(ours_leaf.grad, theirs_leaf.grad, what)


@pytest.mark.parametrize("call", [
    lambda m: m.tensor([True]).clamp(min=True), lambda m: m.tensor(True).clamp(max=False),
    lambda m: m.tensor([True]).clamp(True, False), lambda m: m.tensor([True]).clamp_(min=True),
    lambda m: m.tensor([True]).clamp_min(True), lambda m: m.tensor([True]).clip(0, 1),
    lambda m: m.tensor([True]).clamp(min=m.tensor([False])),
    lambda m: m.tensor([1, 2]).clamp(min=True),
])
def test_clamp_of_a_bool_tensor_as_torch(call):
    """Bool bounds on a bool tensor are refused (no kernel), as PyTorch; int or tensor bounds
    pass (found by the random draws of clamp_min: corrnet clamped)."""
    assert_as_torch(call)


def test_lerp_ends_exactly_at_end():
    """Weight 1 gives end exactly (PyTorch computes from the nearer end), weight 0 start."""
    start = corrnet.tensor([0.1, 1e8, -3.3], dtype=corrnet.float32)
    end = corrnet.tensor([0.7, -1e-3, 2.9], dtype=corrnet.float32)
    assert (corrnet.lerp(start, end, 1.0) == end).all()
    assert (corrnet.lerp(start, end, 0.0) == start).all()


# ---------------------------------------------------------------------------------------------
# the second batch: elementwise functions with gradients, tests of closeness and counts, and
# arrangements of the same elements (movedim, narrow, unflatten, tile, diagonal, ...)
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(["erf", "erfc", "atan2", "arctan2", "fmod",
                                             "hypot", "nan_to_num", "positive"]),
       form=st.sampled_from(["method", "function"]))
def test_elementwise_functions_as_torch(data, name, form):
    """Values and dtypes (integers promoted as PyTorch's: to float for erf, atan2 and hypot,
    kept for fmod, whose integer division by zero is refused), and with float64 operands
    the gradients of both."""
    a = data.draw(arrays())
    binary = name in ("atan2", "arctan2", "fmod", "hypot")
    b = data.draw(st.one_of(partners(a.shape), NUMBERS)) if binary else None
    grad = a.dtype == np.float64 and (not isinstance(b, np.ndarray) or b.dtype == np.float64)
    leaves = {}

    def call(m):
        x = m.tensor(a, requires_grad=grad)
        operands = [x]
        if binary:
            y = m.tensor(b, requires_grad=grad) if isinstance(b, np.ndarray) else b
            operands.append(y)
        leaves[m.__name__] = [v for v in operands if isinstance(v, m.Tensor)]
        out = getattr(x, name)(*operands[1:]) if form == "method" else getattr(m, name)(
            *operands)
        if grad and out.requires_grad and out.numel():
            out.backward(m.ones(out.shape, dtype=out.dtype) * 0.5)
        return out

    if assert_as_torch(call, f"{name} {a.dtype}{a.shape} {b!r}"[:200]) == "ok" and grad:
        finite = np.isfinite(a).all() and np.isfinite(np.asarray(b, float)).all()
        for ours, theirs in zip(leaves["corrnet"], leaves["torch"], strict=True):
            if finite or name in ("nan_to_num", "positive"):
                assert_grad(ours.grad, theirs.grad, name)


def test_erf_is_twice_differentiable_and_fmod_keeps_the_dividend_sign():
    for m in (corrnet, torch):
        x = m.tensor([0.3, -1.2], dtype=m.float64, requires_grad=True)
        (first,) = m.autograd.grad(x.erf().sum(), x, create_graph=True)
        (second,) = m.autograd.grad(first.sum(), x)
        if m is corrnet:
            ours = second
        else:
            assert_grad(ours, second, "erf''")
    assert_as_torch(lambda m: m.tensor([-7, 7, -7, 7]).fmod(m.tensor([3, 3, -3, -3])), "int")
    assert_as_torch(lambda m: m.tensor([-7, 7]).fmod(0), "by zero")


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(["isclose", "count_nonzero"]))
def test_isclose_and_count_nonzero_as_torch(data, name):
    a = data.draw(arrays())
    if name == "isclose":
        b = data.draw(partners(a.shape))
        if data.draw(st.booleans()):
            with np.errstate(invalid="ignore"):
                b = (a + data.draw(st.sampled_from([0.0, 1e-9, 1e-3]))).astype(a.dtype)
        keywords = data.draw(st.fixed_dictionaries(
            {}, optional={"rtol": st.sampled_from([0.0, 1e-3, 0.1]),
                          "atol": st.sampled_from([0.0, 1e-6, 1.0]),
                          "equal_nan": st.booleans()}))
        assert_as_torch(lambda m: tensor(m, a).isclose(tensor(m, b), **keywords),
                        f"isclose {a.dtype} {b.dtype} {keywords}")
    else:
        dim = data.draw(st.one_of(st.none(), st.integers(-3, 3),
                                  st.tuples(st.integers(-2, 2), st.integers(-2, 2))))
        assert_as_torch(lambda m: m.count_nonzero(tensor(m, a), dim), f"dim {dim}")


@st.composite
def arrangement_calls(draw):
    """(name, shape, a call on x) for the arrangements, with arguments mostly valid."""
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=4)))
    ndim = len(shape)
    dim = draw(st.integers(-ndim - 1, ndim))
    name = draw(st.sampled_from(["movedim", "moveaxis", "swapdims", "narrow", "broadcast_to",
                                 "unflatten", "tile", "fliplr", "flipud", "repeat_interleave",
                                 "masked_select", "diagonal", "diag", "trace", "type_as"]))
    if name in ("movedim", "moveaxis"):
        count = draw(st.integers(1, ndim))
        source = draw(st.lists(st.integers(-ndim, ndim - 1), min_size=count, max_size=count))
        destination = draw(st.lists(st.integers(-ndim, ndim - 1), min_size=count,
                                    max_size=count))
        arguments = ((source, destination) if count > 1 or draw(st.booleans())
                     else (source[0], destination[0]))
        return name, shape, lambda m, x: getattr(x, name)(*arguments)
    if name == "swapdims":
        other = draw(st.integers(-ndim, ndim - 1))
        return name, shape, lambda m, x: x.swapdims(dim, other)
    if name == "narrow":
        start, length = draw(st.integers(-5, 5)), draw(st.integers(-1, 5))
        return name, shape, lambda m, x: x.narrow(dim, start, length)
    if name == "broadcast_to":
        target = tuple(draw(st.sampled_from([n, 1, -1, 3])) for n in shape)
        target = (draw(st.integers(1, 2)),) * draw(st.integers(0, 1)) + target
        return name, shape, lambda m, x: x.broadcast_to(target)
    if name == "unflatten":
        size = shape[dim] if -ndim <= dim < ndim else 2
        sizes = draw(st.sampled_from([(size,), (1, size), (-1, 1), (2, -1), (size, 1, 1),
                                      (3, 2), (), (-1, -1), (0, -1), (-1, 0)]))
        return name, shape, lambda m, x: x.unflatten(dim, sizes)
    if name == "tile":
        counts = tuple(draw(st.lists(st.integers(0, 3), max_size=ndim + 1)))
        return name, shape, lambda m, x: m.tile(x, counts)
    if name == "repeat_interleave":
        n = shape[dim] if -ndim <= dim < ndim else 1
        repeats = draw(st.one_of(st.integers(-1, 3),
                                 st.lists(st.integers(0, 3), min_size=n, max_size=n),
                                 st.lists(st.integers(0, 3), min_size=1, max_size=2)))
        axis = draw(st.sampled_from([None, dim]))

        def call(m, x):
            counts = m.tensor(repeats) if isinstance(repeats, list) else repeats
            return x.repeat_interleave(counts, axis)
        return name, shape, call
    if name == "masked_select":
        mask_shape = shape[draw(st.integers(0, ndim)):]
        seed = draw(st.integers(0, 2**32 - 1))
        mask = np.random.default_rng(seed).random(mask_shape) < 0.5
        return name, shape, lambda m, x: x.masked_select(m.tensor(mask))
    if name in ("diagonal", "diag"):
        offset = draw(st.integers(-3, 3))
        if name == "diag":
            return name, shape, lambda m, x: m.diag(x, offset)
        other = draw(st.integers(-ndim, ndim - 1))
        return name, shape, lambda m, x: x.diagonal(offset, dim, other)
    if name == "type_as":
        return name, shape, lambda m, x: x.type_as(m.zeros(1, dtype=m.float16))
    return name, shape, lambda m, x: getattr(x, name)()


@settings(max_examples=300, deadline=None)
@given(problem=arrangement_calls(), seed=st.integers(0, 2**32 - 1))
def test_arrangements_as_torch(problem, seed):
    """Values, shapes and refusals, and (float64) the gradient of a random weighting of the
    result."""
    name, shape, call = problem
    values = np.random.default_rng(seed).standard_normal(shape)
    leaves = {}

    def run(m):
        x = m.tensor(values, requires_grad=True)
        leaves[m.__name__] = x
        out = call(m, x)
        if out.requires_grad and out.numel():
            weights = np.random.default_rng(seed + 1).standard_normal(tuple(out.shape))
            (out * m.tensor(weights, dtype=out.dtype)).sum().backward()
        return out

    if assert_as_torch(run, f"{name} of {shape}") == "ok":
        assert_grad(leaves["corrnet"].grad, leaves["torch"].grad, f"{name} gradient")


@pytest.mark.parametrize("call", [
    lambda m: m.hstack([m.ones(2, 1), m.zeros(2, 3)]), lambda m: m.hstack([m.tensor(1.0)]),
    lambda m: m.hstack([m.tensor([1, 2]), m.tensor(3)]), lambda m: m.hstack([]),
    lambda m: m.hstack([m.ones(2, 1), m.zeros(3, 1)]),
    lambda m: m.vstack([m.tensor([1, 2]), m.tensor([3, 4])]), lambda m: m.vstack([m.tensor(1)]),
    lambda m: m.vstack([m.ones(2, 3), m.zeros(3)]), lambda m: m.vstack([m.ones(2), m.zeros(3)]),
    lambda m: m.repeat_interleave(m.tensor([2, 0, 1])), lambda m: m.repeat_interleave(m.tensor(3)),
    lambda m: m.repeat_interleave(m.tensor([1.5])),
    lambda m: m.repeat_interleave(m.tensor([[1, 2], [3, 4]]), 2, dim=0),
    lambda m: m.tensor([1, 2]).repeat_interleave(2, output_size=4),
])
def test_stacks_and_repeat_interleave_as_torch(call):
    assert_as_torch(call)


# ---------------------------------------------------------------------------------------------
# the third batch: log-sum-exp, signs, logit and xlogy, NaN-ignoring reductions, rotations,
# grids and triangles
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(["logaddexp", "logaddexp2", "copysign", "xlogy",
                                             "float_power", "signbit", "logit", "nansum",
                                             "nanmean"]),
       form=st.sampled_from(["method", "function"]))
def test_third_batch_elementwise_and_reductions_as_torch(data, name, form):
    """Values, dtypes and refusals; with float64 operands (finite), the gradients."""
    a = data.draw(arrays())
    arguments: tuple = ()
    if name in ("logaddexp", "logaddexp2", "copysign", "xlogy", "float_power"):
        arguments = (data.draw(st.one_of(partners(a.shape), NUMBERS)),)
    elif name == "logit":
        a = np.asarray(np.abs(a) / 4 if a.dtype.kind == "f" else a)
    if name == "float_power" and a.dtype.kind == "f":
        # (-inf ** 0.5: PyTorch's pow gives inf for a tensor exponent, NaN (its square root)
        # for a number; corrnet, NumPy's, NaN for any exponent of one element: left alone)
        a = np.asarray(np.nan_to_num(a, neginf=-3.0))
        arguments = data.draw(st.sampled_from([(), (1e-6,), (0.1,)]))
    elif name in ("nansum", "nanmean"):
        arguments = data.draw(st.sampled_from([(), (0,), (-1, True)])) if a.ndim else ()
    grad = a.dtype == np.float64 and all(not isinstance(v, np.ndarray) or v.dtype == np.float64
                                         for v in arguments)
    leaves = {}

    def call(m):
        x = m.tensor(a, requires_grad=grad and name != "signbit")
        operands = [m.tensor(v, requires_grad=grad) if isinstance(v, np.ndarray) else v
                    for v in arguments]
        leaves[m.__name__] = [x] + [v for v in operands if isinstance(v, m.Tensor)]
        out = (getattr(x, name)(*operands) if form == "method"
               else getattr(m, name)(x, *operands))
        if out.requires_grad and out.numel():
            out.backward(m.ones(out.shape, dtype=out.dtype) * 0.5)
        return out

    finite = all(np.isfinite(np.asarray(v, float)).all() for v in (a, *arguments))
    if assert_as_torch(call, f"{name} {a.dtype}{a.shape}") == "ok" and grad and finite:
        for ours, theirs in zip(leaves["corrnet"], leaves["torch"], strict=True):
            assert_grad(ours.grad, theirs.grad, name)


@settings(max_examples=100, deadline=None)
@given(a=arrays(dtypes=["float32", "float64", "int64"]), k=st.integers(-5, 5),
       dims=st.tuples(st.integers(-3, 2), st.integers(-3, 2)),
       dim=st.one_of(st.none(), st.integers(-2, 1)), keepdim=st.booleans())
def test_rot90_aminmax_std_mean_as_torch(a, k, dims, dim, keepdim):
    assert_as_torch(lambda m: m.rot90(tensor(m, a), k, dims), f"rot90 {a.shape} {k} {dims}")

    def minmax(m):
        result = m.aminmax(tensor(m, a), dim=dim, keepdim=keepdim)
        return m.stack([result.min.double(), result.max.double()])

    assert_as_torch(minmax, f"aminmax {a.shape} {dim}")
    # (with an inf among the values PyTorch's one-pass std_mean gives the mean NaN where its
    # mean gives inf: corrnet's std_mean is its std and mean, compared on finite values)
    if a.dtype.kind == "f" and np.isfinite(a).all():
        for function in ("std_mean", "var_mean"):
            assert_as_torch(lambda m, f=function: m.stack(getattr(m, f)(
                tensor(m, a), dim, keepdim=keepdim) if dim is not None else getattr(m, f)(
                tensor(m, a))), f"{function} {a.shape} {dim}")


@pytest.mark.parametrize("call", [
    lambda m: m.stack(m.meshgrid(m.tensor([1, 2]), m.tensor([3, 4, 5]), indexing="ij")),
    lambda m: m.stack(m.meshgrid(m.tensor([1, 2]), m.tensor([3, 4, 5]), m.tensor([6, 7]),
                                 indexing="xy")),
    lambda m: m.stack(m.meshgrid([m.tensor(1.0), m.tensor([2.0, 3.0])], indexing="xy")),
    lambda m: m.meshgrid(m.tensor([1, 2]), indexing="yx")[0],
    lambda m: m.meshgrid(m.zeros(2, 2), indexing="ij")[0],
    lambda m: m.logspace(0, 2, 3), lambda m: m.logspace(-1, 1, 5, base=2),
    lambda m: m.logspace(0, 3, 4, dtype=m.float64), lambda m: m.logspace(0, 1, 0),
    lambda m: m.tril_indices(3, 3), lambda m: m.tril_indices(4, 3, -1),
    lambda m: m.triu_indices(3, 4, 1), lambda m: m.triu_indices(0, 3),
    lambda m: m.tril_indices(-1, 3), lambda m: m.triu_indices(3, 3, 5),
    lambda m: m.atleast_1d(m.tensor(1.0)), lambda m: m.atleast_2d(m.tensor([1, 2])),
    lambda m: m.atleast_3d(m.ones(2, 3)), lambda m: m.stack(m.atleast_2d(m.tensor(1),
                                                                       m.tensor(2))),
    lambda m: m.atleast_3d(m.tensor([1.0, 2.0])),
])
def test_grids_ranges_and_shapes_as_torch(call):
    assert_as_torch(call)
