"""Finite-difference gradient checks of corrnet's autograd (float64).

The expected gradient is always a central finite difference of corrnet's own *forward*
(eps = 1e-6), never corrnet's backward: for an op ``f`` and a fixed random upstream
gradient ``G`` we differentiate ``phi(x) = sum(f(x) * G)`` numerically (the product and
the sum are taken in NumPy) and compare with the ``.grad`` that ``f(x).backward(G)``
leaves on each input.  Non-smooth ops are evaluated away from their kinks (no ties for
max / max-pooling, values away from clamp bounds, positive inputs for log / sqrt).
"""

from __future__ import annotations

import numpy as np
import pytest

import corrnet as torch
from corrnet.nn import functional as F

EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-6


def numerical_grad(f, arrays, i, eps=EPS):
    """Central finite difference of the scalar ``f(*arrays)`` w.r.t. ``arrays[i]``."""
    arrays = [a.copy() for a in arrays]
    x = arrays[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        f_plus = f(*arrays)
        x[idx] = orig - eps
        f_minus = f(*arrays)
        x[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def _np(t):
    return np.asarray(t.detach().numpy())


def gradcheck(op, *arrays, wrt=None, seed=0):
    """Compare corrnet's backward of ``op(*tensors)`` with finite differences of its forward.

    ``arrays``: float64 NumPy arrays; ``wrt``: indices to check (default: all).
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    wrt = list(range(len(arrays))) if wrt is None else list(wrt)
    tensors = [torch.tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = op(*tensors)
    out_np = _np(out)
    assert out_np.dtype == np.float64, f"forward lost float64: {out_np.dtype}"
    rng = np.random.default_rng(seed)
    if out_np.ndim == 0:
        upstream = np.float64(1.0)
        out.backward()
    else:
        upstream = rng.standard_normal(out_np.shape)
        out.backward(torch.tensor(upstream))

    def phi(*arrs):
        return float((_np(op(*[torch.tensor(a) for a in arrs])) * upstream).sum())

    for i in wrt:
        expected = numerical_grad(phi, arrays, i)
        grad = tensors[i].grad
        assert grad is not None, f"input {i}: no gradient"
        actual = _np(grad)
        assert actual.shape == arrays[i].shape, f"input {i}: grad shape {actual.shape}"
        scale = max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale,
                                   err_msg=f"gradient of input {i}")


def rand(*shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def distinct(*shape, seed=0):
    """No ties: a shuffled grid with spacing 1/8 (far larger than eps)."""
    n = int(np.prod(shape))
    return ((np.random.default_rng(seed).permutation(n) - n / 2) / 8.0).reshape(shape)


def away_from_zero(*shape, seed=0):
    """|values| in [0.5, 1.5] with random signs."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def test_numerical_grad_itself():
    x = rand(3, 4)
    g = numerical_grad(lambda a: float(np.sin(a).sum()), [x], 0)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-8, atol=1e-9)


# ----------------------------------------------------------------------- conv / pool
CONV_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 2), {}),
    ((1, 2, 7, 7), (3, 2, 3, 3), {"stride": 2, "padding": 1}),
    ((2, 2, 7, 6), (2, 2, 2, 3), {"stride": (2, 1), "padding": (0, 2), "dilation": (2, 1)}),
    ((1, 4, 5, 5), (4, 2, 3, 3), {"groups": 2, "padding": 1, "dilation": 2}),
    ((2, 3, 4, 4), (3, 1, 2, 2), {"groups": 3, "stride": 2}),  # depthwise
    ((3, 5, 6), (2, 3, 2, 2), {"padding": (1, 0)}),  # unbatched
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_CASES)
def test_conv2d(x_shape, w_shape, kwargs, with_bias):
    x, w = rand(*x_shape, seed=1), rand(*w_shape, seed=2)
    if with_bias:
        b = rand(w_shape[0], seed=3)
        gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), x, w, b)
    else:
        gradcheck(lambda x, w: F.conv2d(x, w, **kwargs), x, w)


MAX_POOL_CASES = [
    ((1, 2, 4, 4), 2, {}),
    ((2, 1, 5, 5), 2, {"ceil_mode": True}),
    ((1, 2, 6, 7), (3, 2), {"stride": (2, 1), "padding": 1}),  # overlapping windows
    ((1, 1, 7, 7), 3, {"stride": 1, "padding": 1, "dilation": 2}),
    ((2, 5, 6), 3, {"stride": 2, "padding": 1, "ceil_mode": True}),  # unbatched
]


@pytest.mark.parametrize("x_shape, kernel, kwargs", MAX_POOL_CASES)
def test_max_pool2d(x_shape, kernel, kwargs):
    gradcheck(lambda x: F.max_pool2d(x, kernel, **kwargs), distinct(*x_shape, seed=4))


AVG_POOL_CASES = [
    ((1, 2, 4, 4), 2, {}),
    ((2, 1, 5, 5), 2, {"ceil_mode": True}),
    ((1, 2, 6, 7), (3, 2), {"stride": (2, 1), "padding": 1}),
    ((1, 1, 6, 6), 3, {"stride": 2, "padding": 1, "count_include_pad": False}),
    ((1, 1, 6, 6), 3, {"stride": 2, "padding": 1, "ceil_mode": True,
                       "count_include_pad": False}),
    ((1, 1, 5, 5), 2, {"divisor_override": 3, "ceil_mode": True}),
    ((2, 5, 6), 3, {"stride": 1, "padding": 1}),  # unbatched
]


@pytest.mark.parametrize("x_shape, kernel, kwargs", AVG_POOL_CASES)
def test_avg_pool2d(x_shape, kernel, kwargs):
    gradcheck(lambda x: F.avg_pool2d(x, kernel, **kwargs), rand(*x_shape, seed=5))


@pytest.mark.parametrize("x_shape, k_shape", [((3, 3), (2, 2)), ((6, 5), (3, 1)),
                                              ((4, 4), (4, 4)), ((1, 5), (1, 2))])
def test_corr2d(x_shape, k_shape):
    gradcheck(torch.corr2d, rand(*x_shape, seed=6), rand(*k_shape, seed=7))


# ------------------------------------------------------------------------ tensor ops
def _setitem_slice(x):
    z = torch.zeros(3, 4, dtype=torch.float64)
    z[1:, ::2] = x
    return z * 2.0


def _setitem_int_index(x):
    z = torch.zeros(4, 3, dtype=torch.float64)
    z[1] = x
    return z


UNARY = {
    "exp": (lambda x: x.exp(), rand(3, 4)),
    "torch.exp": (lambda x: torch.exp(x), rand(2, 3)),
    "log": (lambda x: x.log(), rand(3, 4, low=0.5, high=2.0)),
    "sqrt": (lambda x: x.sqrt(), rand(3, 4, low=0.5, high=2.0)),
    "pow_int": (lambda x: x ** 3, rand(3, 4)),
    "pow_float": (lambda x: x ** 1.5, rand(3, 4, low=0.5, high=2.0)),
    "pow_neg": (lambda x: x.pow(-2), away_from_zero(2, 3)),
    "rpow": (lambda x: 2.0 ** x, rand(3, 4)),
    "neg_sub": (lambda x: 1.0 - (-x), rand(3,)),
    "rdiv": (lambda x: 1.0 / x, away_from_zero(3, 4)),
    "sum_all": (lambda x: x.sum(), rand(3, 4)),
    "sum_dim": (lambda x: x.sum(dim=1), rand(3, 4)),
    "sum_dims_keepdim": (lambda x: x.sum(dim=(0, 2), keepdim=True), rand(2, 3, 4)),
    "mean_all": (lambda x: x.mean(), rand(3, 4)),
    "mean_dim": (lambda x: x.mean(dim=0), rand(3, 4)),
    "max_all": (lambda x: x.max(), distinct(3, 4)),
    "max_dim": (lambda x: x.max(dim=1)[0], distinct(3, 4)),
    "max_dim_keepdim": (lambda x: x.max(dim=0, keepdim=True)[0], distinct(3, 4)),
    "prod_all": (lambda x: x.prod(), away_from_zero(2, 3)),
    "prod_dim": (lambda x: x.prod(dim=1), away_from_zero(3, 4)),
    "norm": (lambda x: x.norm(), rand(3, 4)),
    "reshape": (lambda x: x.reshape(4, 3) * torch.tensor(rand(4, 3, seed=9)), rand(3, 4)),
    "reshape_infer": (lambda x: x.reshape(-1, 2), rand(2, 3, 2)),
    "view": (lambda x: x.view(6, 2), rand(3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1), rand(2, 3, 4)),
    "transpose_T": (lambda x: x.T, rand(2, 3)),
    "getitem_slice": (lambda x: x[1:, ::2], rand(3, 5)),
    "getitem_int": (lambda x: x[1], rand(3, 4)),
    "getitem_ellipsis": (lambda x: x[..., 0], rand(2, 3, 4)),
    "getitem_negative_start": (lambda x: x[-2:, 1:3], rand(4, 4)),
    "getitem_repeated_index": (lambda x: x[[0, 2, 0]], rand(3, 4)),  # grads accumulate
    "setitem_slice": (_setitem_slice, rand(2, 2)),
    "setitem_int": (_setitem_int_index, rand(3)),
    "clamp_both": (lambda x: x.clamp(-0.5, 0.5),
                   np.array([[-1.0, -0.7, -0.3, 0.0], [0.2, 0.45, 0.6, 1.2]])),
    "clamp_min": (lambda x: x.clamp(min=0.0), np.array([-1.0, -0.25, 0.25, 1.0])),
    "torch.clamp_max": (lambda x: torch.clamp(x, max=0.1), np.array([-1.0, -0.25, 0.25, 1.0])),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_and_shape_ops(name):
    op, x = UNARY[name]
    gradcheck(op, x)


BINARY = {
    "matmul_2d": (lambda a, b: a @ b, rand(3, 4), rand(4, 2, seed=1)),
    "matmul_fn": (lambda a, b: torch.matmul(a, b), rand(2, 3), rand(3, 5, seed=1)),
    "matmul_batched_broadcast": (lambda a, b: a @ b, rand(2, 3, 4), rand(4, 2, seed=1)),
    "matmul_vec_mat": (lambda a, b: a @ b, rand(4), rand(4, 3, seed=1)),
    "matmul_mat_vec": (lambda a, b: a @ b, rand(3, 4), rand(4, seed=1)),
    "mm": (lambda a, b: torch.mm(a, b), rand(2, 3), rand(3, 4, seed=1)),
    "add_broadcast": (lambda a, b: a + b, rand(3, 4), rand(4, seed=1)),
    "sub_broadcast": (lambda a, b: a - b, rand(3, 1), rand(1, 4, seed=1)),
    "mul": (lambda a, b: a * b, rand(3, 4), rand(3, 4, seed=1)),
    "mul_broadcast": (lambda a, b: a * b, rand(2, 3, 4), rand(3, 1, seed=1)),
    "div": (lambda a, b: a / b, rand(3, 4), away_from_zero(3, 4, seed=1)),
    "div_broadcast": (lambda a, b: a / b, rand(3, 4), away_from_zero(3, 1, seed=1)),
    "pow_tensor": (lambda a, b: a ** b, rand(3, 4, low=0.5, high=2.0), rand(3, 4, seed=1)),
    "cat_dim0": (lambda a, b: torch.cat([a, b], dim=0), rand(2, 3), rand(4, 3, seed=1)),
    "cat_dim1": (lambda a, b: torch.cat((a, b), dim=1), rand(2, 3), rand(2, 1, seed=1)),
    "stack_dim0": (lambda a, b: torch.stack([a, b]), rand(2, 3), rand(2, 3, seed=1)),
    "stack_dim2": (lambda a, b: torch.stack([a, b, a], dim=2), rand(2, 3), rand(2, 3, seed=1)),
    "where": (
        lambda a, b: torch.where(torch.tensor(np.array([[True, False, True], [False, True, True]])),
                                 a, b),
        rand(2, 3), rand(2, 3, seed=1),
    ),
    "where_broadcast": (
        lambda a, b: torch.where(torch.tensor(np.array([True, False, True])), a, b),
        rand(2, 3), rand(1, 3, seed=1),
    ),
    "chain": (lambda a, b: ((a @ b).exp() * 0.5 + a.sum() / 3.0).mean(dim=0),
              rand(3, 4), rand(4, 2, seed=1)),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops(name):
    op, a, b = BINARY[name]
    gradcheck(op, a, b)


def test_reused_input_accumulates():
    """The same tensor used several times: gradients from every use are summed."""
    gradcheck(lambda x: x * x + x.exp() * x - x.sum(), rand(3, 2))


def test_conv_pool_chain():
    """A tiny LeNet-like chain: conv -> max pool -> conv -> avg pool -> sum."""

    def net(x, w1, w2):
        h = F.conv2d(x, w1, padding=1)
        h = F.max_pool2d(h, 2)
        h = F.conv2d(h, w2)
        return F.avg_pool2d(h, 2).sum()

    # random weights make ties in the max pool (measure-zero) practically impossible
    gradcheck(net, rand(1, 1, 6, 6, seed=1), rand(2, 1, 3, 3, seed=2),
              rand(3, 2, 2, 2, seed=3))
