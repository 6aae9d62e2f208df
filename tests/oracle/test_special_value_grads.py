"""Gradients at special values (NaN, +-inf, +-0, huge) against PyTorch 2.13: where PyTorch's
backward gives a number, corrnet gives the same one, and NaN exactly where PyTorch has it.

The gradient audit (test_grad_audit.py) draws finite inputs; the fuzz suite, with another
seed, found abs's gradient NaN at a NaN input (PyTorch: 0, its sign of NaN), ELU's NaN
(PyTorch takes x's branch there: 1) and the product of all elements with two zeros
(PyTorch: 0 everywhere, even beside a NaN). These ops are checked on inputs made of such
values; and cat's empty 1-D inputs, which the same run found left out of the graph, and
norms over no numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import corrnet

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1.5, -0.5])
INPUTS = {
    "special": SPECIAL,
    "zeros-and-inf": np.array([0.0, -0.0, np.inf, 2.0, -3.0, 1e30, 0.5, -1.0, 4.0]),
    "one-zero": np.array([0.0, 2.0, -3.0, 0.5, np.inf, -1.0, 1.5, 2.5, -0.25]),
    "nan-no-zero": np.array([np.nan, 2.0, -3.0, 0.5, 1.0, -1.0, 1.5, 2.5, -0.25]),
}

OPS = {
    "abs": lambda lib, x: x.abs(),
    "abs_builtin": lambda lib, x: abs(x),
    "neg": lambda lib, x: -x,
    "exp": lambda lib, x: x.exp(),
    "sqrt": lambda lib, x: x.sqrt(),
    "square": lambda lib, x: x * x,
    "pow2": lambda lib, x: x ** 2,
    "clamp": lambda lib, x: x.clamp(-1, 1),
    "relu": lambda lib, x: x.relu(),
    "sigmoid": lambda lib, x: x.sigmoid(),
    "tanh": lambda lib, x: x.tanh(),
    "elu": lambda lib, x: lib.nn.functional.elu(x),
    "elu_alpha": lambda lib, x: lib.nn.functional.elu(x, 0.5),
    "leaky_relu": lambda lib, x: lib.nn.functional.leaky_relu(x, 0.1),
    "softplus": lambda lib, x: lib.nn.functional.softplus(x),
    "gelu": lambda lib, x: lib.nn.functional.gelu(x),
    "silu": lambda lib, x: lib.nn.functional.silu(x),
    "sum": lambda lib, x: x.sum(),
    "mean": lambda lib, x: x.mean(),
    "max": lambda lib, x: x.max(),
    "amax_rows": lambda lib, x: x.reshape(3, 3).amax(1),
    "norm": lambda lib, x: x.norm(),
    "logsumexp": lambda lib, x: x.logsumexp(0),
    "softmax": lambda lib, x: x.softmax(0),
    "cumsum": lambda lib, x: x.cumsum(0),
    "prod": lambda lib, x: x.prod(),
    "prod_rows": lambda lib, x: x.reshape(3, 3).prod(1),
    "prod_columns": lambda lib, x: x.reshape(3, 3).prod(0),
    # maximum / minimum beside a NaN: each input gets the whole gradient (corrnet gave the
    # NaN's partner all of it and the NaN none: fuzz, seed 20261212)
    "maximum_flipped": lambda lib, x: x.maximum(x.flip(0)),
    "minimum_flipped": lambda lib, x: x.minimum(x.flip(0)),
    "minimum_special": lambda lib, x: x.minimum(lib.tensor(SPECIAL[::-1].copy()).to(x.dtype)),
    # the elementwise functions of ops.UNARY
    **{name: (lambda lib, x, name=name: getattr(x, name)())
       for name in ("sin", "cos", "tan", "asin", "atan", "sinh", "log2", "log1p", "expm1",
                    "exp2", "rsqrt", "reciprocal", "frac", "deg2rad")},
}


# PyTorch's gradient at a NaN input depends on the element's position: NaN in its vectorized
# loop, a number in the loop's scalar tail (the last elements short of two vectors: 16 float32
# or 8 float64 with AVX2, twice that with AVX-512), so these 9-element inputs get a NaN's
# gradient from one loop or the other as the CPU goes: compared apart, at a NaN's every
# position of a longer input
NAN_BY_POSITION = {"elu", "elu_alpha"}


def _gradient(lib, op, values, dtype):
    x = lib.tensor(values.astype(dtype), requires_grad=True)
    y = op(lib, x)
    upstream = np.linspace(0.5, 1.5, max(1, int(np.prod(tuple(y.shape))))).reshape(
        tuple(y.shape)).astype(dtype)
    y.backward(lib.tensor(upstream))
    grad = x.grad.detach().numpy() if lib is torch else x.grad.numpy()
    return np.asarray(grad, dtype=np.float64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("inputs", list(INPUTS))
@pytest.mark.parametrize("name", list(OPS))
def test_gradient_at_special_values_as_torch(name, inputs, dtype):
    values = INPUTS[inputs]
    with np.errstate(all="ignore"):
        ours = _gradient(corrnet, OPS[name], values, dtype)
    theirs = _gradient(torch, OPS[name], values, dtype)
    if name in NAN_BY_POSITION:         # (test_elu_gradient_at_nan_as_torch_on_any_cpu)
        ours, theirs = ours[~np.isnan(values)], theirs[~np.isnan(values)]
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), (name, inputs, ours, theirs)
    numbers = ~np.isnan(theirs)
    # (float32: a subnormal result, below 1.2e-38, depends on the order of the roundings:
    # rsqrt's -0.5 * out**3 at 1e30 is -1.4e-45 in PyTorch, -0.0 in NumPy)
    np.testing.assert_allclose(ours[numbers], theirs[numbers],
                               rtol=1e-10 if dtype == "float64" else 1e-4,
                               atol=0 if dtype == "float64" else 1.2e-38,
                               err_msg=f"{name} on {inputs}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(NAN_BY_POSITION))
def test_elu_gradient_at_nan_as_torch_on_any_cpu(name, dtype):
    """ELU's gradient at NaN is NaN, as PyTorch's vectorized loop gives it: at every
    position of a 64-element input, a whole number of PyTorch's loop steps on AVX2 and on
    AVX-512 (32 float32 or 16 float64 at most), so that no element falls in its scalar tail
    (which gives 1: the test above leaves NaN inputs out). Found on an AMD EPYC (AVX2), where
    PyTorch's loop takes 8 float64 a step: corrnet gave x's branch's 1, as PyTorch's tail."""
    for position in (0, 1, 17, 40, 63):
        values = np.linspace(-3, 3, 64)
        values[position] = np.nan
        ours = _gradient(corrnet, OPS[name], values, dtype)
        theirs = _gradient(torch, OPS[name], values, dtype)
        assert np.isnan(theirs[position]), "PyTorch's loop changed: see NAN_BY_POSITION"
        assert np.array_equal(np.isnan(ours), np.isnan(theirs)), (position, ours, theirs)
        np.testing.assert_allclose(ours[~np.isnan(theirs)], theirs[~np.isnan(theirs)],
                                   rtol=1e-10 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("case", ["int-and-empty", "between", "only-empties", "double"])
def test_cat_keeps_empty_one_d_inputs_in_the_graph_as_torch(case):
    """cat's empty 1-D inputs beside larger tensors take no part in the shapes, but they are
    inputs all the same: the result requires grad through them, and their gradient is an
    empty tensor (found by the fuzz suite: corrnet dropped them from the graph)."""
    def run(lib):
        empty = lib.tensor(np.zeros(0), requires_grad=True)
        block = lib.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
        parts = {"int-and-empty": [lib.tensor([1, 2, 3], dtype=lib.int32), empty],
                 "between": [block, empty, block], "only-empties": [empty, empty],
                 "double": [block, empty]}[case]
        out = lib.cat(parts)
        if case == "double":     # a second derivative through cat
            (first,) = lib.autograd.grad((out * out).sum(), block, create_graph=True)
            first.sum().backward()
        elif out.requires_grad:
            out.backward(lib.ones(tuple(out.shape), dtype=out.dtype))
        grads = [None if t.grad is None else t.grad.detach().numpy().tolist()
                 for t in (empty, block)]
        return tuple(out.shape), str(out.dtype), out.requires_grad, grads

    assert run(corrnet) == run(torch)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (3,)])
@pytest.mark.parametrize("p", [1, 2, 3, 0.5, 4, "fro", float("inf"), 0])
@pytest.mark.parametrize("dim", [None, -1, (), [0]])
@pytest.mark.parametrize("value", [-9.8e18, 1e-30, -2.0, float("nan")])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_norm_of_single_elements_as_torch(shape, p, dim, value, dtype):
    """One element's norm is its magnitude, without powers that overflow or underflow, in
    PyTorch, except for a 0-d tensor's norm over a dim it is given, which PyTorch sums as any
    other: float32 3e20 gives inf there, 1e-30 gives 0 (corrnet gave the magnitude: found by
    the fuzz suite, seed 20261234). Values, dtypes and the gradient."""
    with np.errstate(over="ignore"):    # (-9.8e18 is -inf in float16)
        values = np.full(shape, value, dtype=dtype)

    def outcome(lib):
        x = lib.tensor(values, requires_grad=True)
        try:
            out = x.norm(p, dim=dim)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc)
        out.sum().backward()
        grad = None if x.grad is None else x.grad.numpy().astype(np.float64).tolist()
        return str(out.dtype), out.detach().numpy().astype(np.float64).tolist(), grad

    ours, theirs = outcome(corrnet), outcome(torch)
    if isinstance(theirs, type):
        assert ours is theirs
        return
    assert ours[0] == theirs[0]
    assert (ours[2] is None) == (theirs[2] is None)     # (p = 0: no gradient)
    for got, expected in zip(ours[1:], theirs[1:], strict=True):
        if expected is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-3, equal_nan=True,
                                       err_msg=f"{shape} p={p} dim={dim} {value} {dtype}")


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0,), (2, 3)])
@pytest.mark.parametrize("p", [float("inf"), float("-inf"), -1.0, -2, 0, 1, 2, "fro"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_norm_of_empty_reductions_as_torch(shape, p, dim):
    """norm over no numbers: p = +-inf and negative p have no identity and are refused with a
    RuntimeError, as PyTorch (corrnet's inf norm raised NumPy's ValueError), the others give
    PyTorch's value (found by the fuzz suite with another seed)."""
    def outcome(lib):
        try:
            out = lib.zeros(shape).norm(p, dim=dim)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc)
        return tuple(out.shape), float(out.sum())

    assert outcome(corrnet) == outcome(torch)


ATAN2_VALUES = [0.0, -0.0, 1e-200, -1e-200, 1e-160, 1.0, -2.5, np.inf, -np.inf, np.nan, 1e200]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_atan2_gradients_at_the_origin_and_beyond_as_torch(dtype):
    """atan2's gradients take 1 / (a^2 + b^2) as 0 where a^2 + b^2 is 0: signed zeros at the
    origin and where the squares underflow, as PyTorch's (corrnet gave NaN there: found by
    test_torch_names' random draws of -0.0), and its inf where they are subnormal; every
    pair of special values, signs of zeros included."""
    with np.errstate(over="ignore"):    # (1e200 is inf in float32)
        values = np.array(ATAN2_VALUES, dtype)
    a, b = np.meshgrid(values, values)
    results = []
    for lib in (corrnet, torch):
        x, y = (lib.tensor(v.ravel(), requires_grad=True) for v in (a, b))
        out = x.atan2(y)
        out.backward(lib.tensor(np.full(a.size, 0.5, dtype)))
        results.append([t.detach().numpy() for t in (out, x.grad, y.grad)])
    for ours, theirs, what in zip(*results, ("out", "grad a", "grad b"), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, equal_nan=True, err_msg=what)
        finite = np.isfinite(theirs)
        assert (np.signbit(ours) == np.signbit(theirs))[finite | np.isinf(theirs)].all(), what
