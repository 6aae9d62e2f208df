"""The elementwise functions of one tensor (ops.UNARY: sin, cos, tan, asin, acos, atan,
sinh, cosh, log2, log10, log1p, expm1, exp2, rsqrt, reciprocal, frac, deg2rad, rad2deg; and
square) against PyTorch: values, dtypes (integers computed in float32, frac refusing them),
gradients, second derivatives (create_graph=True) and grad_fn names, over hypothesis-drawn
values with special ones (0, +-1, +-inf, NaN, outside the domain) mixed in; their
top-level forms (corrnet.sin(x)) and the in-place methods (sin_, exp_, pow_, ...); and
float64 finite differences of corrnet's own forward."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import corrnet

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import oracle_settings
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import oracle_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_gradcheck import gradcheck  # noqa: E402 (finite differences of corrnet's forward)

NAMES = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "log2", "log10", "log1p",
         "expm1", "exp2", "rsqrt", "reciprocal", "frac", "square", "deg2rad", "rad2deg"]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, np.inf, -np.inf, np.nan, 1e-30, 100.0]
VALUES = st.lists(st.one_of(st.sampled_from(SPECIAL),
                            st.floats(-50, 50, allow_nan=False, width=32)), min_size=0, max_size=7)
RTOL = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-12}


def _run(library, name, values, dtype, grad):
    """(dtype, values, grad_fn name, gradient) of ``x.<name>()``, or the exception's type."""
    x = library.tensor(np.array(values, np.float64)).to(getattr(library, dtype))
    if grad:
        x.requires_grad_(True)
    try:
        y = getattr(x, name)()
    except Exception as error:   # the refusals are compared by type
        return type(error)
    gradient = None
    if grad:
        y.backward(library.ones_like(y))
        gradient = x.grad.double().numpy()
    grad_fn = y.grad_fn.name() if y.grad_fn is not None else None
    return str(y.dtype), y.detach().double().numpy(), grad_fn, gradient


def _close(got, expected, rtol, what):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=what)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * 1e-3, err_msg=what)


@oracle_settings(200)
@given(name=st.sampled_from(NAMES), values=VALUES,
       dtype=st.sampled_from(["float32", "float64", "float16", "int64", "bool"]))
def test_unary_function_matches_torch(name, values, dtype):
    grad = dtype.startswith("float")
    expected = _run(torch, name, values, dtype, grad)
    got = _run(corrnet, name, values, dtype, grad)
    what = f"{name} of {values} ({dtype})"
    if isinstance(expected, type) or isinstance(got, type):
        assert got is expected, f"{what}: PyTorch {expected!r}, corrnet {got!r}"
        return
    assert got[0] == expected[0] and got[2] == expected[2], (what, expected, got)
    rtol = RTOL.get(dtype, 2e-6)
    _close(got[1], expected[1], rtol, what)
    if grad:
        _close(got[3], expected[3], rtol, what + ": gradient")


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if n not in ("square", "frac", "deg2rad", "rad2deg")])
def test_unary_second_derivative_matches_torch(name):
    """(Not for the functions whose derivative is a constant: it has no graph.)"""
    values = np.array([0.3, -0.6, 0.9, 2.0, -1.7])
    if name in ("log2", "log10", "rsqrt"):
        values = np.abs(values)
    seen = []
    for library in (torch, corrnet):
        x = library.tensor(values, requires_grad=True)
        (first,) = library.autograd.grad(getattr(x, name)().sum(), x, create_graph=True)
        (second,) = library.autograd.grad(first.sum(), x)
        seen.append((first.detach().numpy(), second.numpy()))
    for (t_value, c_value) in zip(seen[0], seen[1], strict=True):
        _close(c_value, t_value, 1e-10, name)


@pytest.mark.parametrize("name", NAMES)
def test_unary_gradient_finite_differences(name):
    values = np.array([[0.3, -0.6, 0.9], [0.45, -0.2, 0.75]])
    if name in ("log2", "log10", "rsqrt"):
        values = np.abs(values)
    gradcheck(lambda t: getattr(t, name)(), values)


@pytest.mark.parametrize("name", NAMES + ["arcsin", "arccos", "arctan"])
def test_unary_top_level_function_is_the_method(name):
    x = torch.tensor([0.25, -0.5, 0.75])
    c = corrnet.tensor([0.25, -0.5, 0.75])
    np.testing.assert_allclose(getattr(corrnet, name)(c).numpy(), getattr(torch, name)(x).numpy(),
                               rtol=2e-6)


@pytest.mark.parametrize("name", ["abs_", "neg_", "exp_", "log_", "sqrt_", "sigmoid_", "tanh_",
                                  "sin_", "cos_", "reciprocal_", "rsqrt_", "log1p_", "expm1_",
                                  "square_"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_in_place_unary_as_torch(name, dtype):
    """In place: the same tensor, its new values, or PyTorch's refusal (an integer tensor
    cannot hold a float result); through autograd, the gradient of the op it replaced."""
    seen = []
    for library in (torch, corrnet):
        x = library.tensor([0.3, 0.7, 2.5]).to(getattr(library, dtype))
        try:
            result = getattr(x, name)()
        except Exception as error:  # the refusals are compared by type
            seen.append(type(error))
            continue
        outcome = [result is x, str(x.dtype), x.double().numpy()]
        if dtype != "int64":
            a = library.tensor([0.3, 0.7, 2.5], dtype=getattr(library, dtype),
                               requires_grad=True)
            y = a * 2
            getattr(y, name)()
            y.sum().backward()
            outcome += [y.grad_fn.name(), a.grad.double().numpy()]
        seen.append(outcome)
    expected, got = seen
    if isinstance(expected, type) or isinstance(got, type):
        assert got is expected, (name, dtype, expected, got)
        return
    assert got[:2] == expected[:2] and got[3:4] == expected[3:4], (name, dtype, expected, got)
    _close(got[2], expected[2], 2e-6, name)
    if len(got) > 3:
        # (float32: tanh's 1 - out**2 at out = tanh(5) cancels 4 digits; the two libraries
        # round it differently, corrnet closer to the exact 3.63166e-4)
        _close(got[4], expected[4], 1e-4 if dtype == "float32" else 1e-12, name + ": gradient")


def test_pow_in_place_as_torch():
    seen = []
    for library in (torch, corrnet):
        a = library.tensor([0.3, 0.7, 2.5], requires_grad=True)
        y = a * 2
        y.pow_(3)
        y.sum().backward()
        seen.append((y.grad_fn.name(), y.detach().numpy(), a.grad.numpy()))
    assert seen[0][0] == seen[1][0]
    _close(seen[1][1], seen[0][1], 2e-6, "pow_")
    _close(seen[1][2], seen[0][2], 2e-6, "pow_ gradient")
