"""The sigmoid kernels (corrnet.kernels.activation), both paths, against PyTorch and float64.

Each test runs with the compiled float32 loops (at every size, and split across threads
wherever an array has two rows or more) and with the NumPy passes (`jit.use_compiled`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corrnet
from corrnet.kernels import activation, jit, threads

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def compiled(request, monkeypatch):
    if request.param and not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(activation, "COMPILED_MIN_SIZE", 0)
    monkeypatch.setattr(threads, "MIN_PARALLEL_SIZE", 0)
    with jit.use_compiled(request.param):
        yield request.param


def float32_arrays(max_side: int = 12):
    """float32 arrays of 1 to 4 dimensions holding any float32: NaN, +-inf, huge, tiny."""
    return hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=max_side),
                      elements=st.floats(width=32, allow_nan=True, allow_infinity=True))


def exact_sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


@SETTINGS
@given(x=float32_arrays())
def test_forward_matches_torch(compiled, x):
    out = activation.sigmoid_forward(x)
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-37, equal_nan=True)


def test_forward_within_3_ulp_of_exact(compiled):
    """Every 97th float32 from -90 to 90, and the region where exp(-x) overflows."""
    grid = np.arange(-90.0, 90.0, 1 / 97, dtype=np.float32)
    x = np.concatenate([grid, np.float32([0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, -87.99])])
    out = activation.sigmoid_forward(x).astype(np.float64)
    exact = exact_sigmoid(x)
    normal = exact >= np.finfo(np.float32).tiny
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact)[normal] / ulp[normal]) <= 3
    # below float32's smallest normal number (x < -87.3) the error is absolute
    assert np.max(np.abs(out - exact)[~normal]) < 2 * np.finfo(np.float32).tiny


def test_special_values(compiled):
    x = np.float32([np.nan, np.inf, -np.inf, -1000, 1000, 0])
    out = activation.sigmoid_forward(x)
    np.testing.assert_array_equal(out, np.float32([np.nan, 1, 0, 0, 1, 0.5]))


def assert_close_gradient(actual, expected, grad):
    """grad * out * (1 - out): where out is near 1, 1 - out keeps only the last bits of
    out, so one unit in the last place of the forward result (out = 0.99 here, 1 - out =
    0.01, relative error 1e-5) shows up in the gradient; the error is bounded by
    |grad| * 3 ulp(1) absolutely."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    finite = ~np.isnan(expected)
    error = np.abs(actual - expected)[finite].astype(np.float64)
    bound = 1e-5 * np.abs(expected[finite]) + 4e-7 * np.abs(grad[finite])
    assert np.all(error <= bound), np.max(error - bound)


@SETTINGS
@given(x=float32_arrays(), seed=st.integers(0, 2**31 - 1))
def test_backward_matches_torch(compiled, x, seed):
    grad = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    x_t = torch.from_numpy(x).requires_grad_()
    torch.sigmoid(x_t).backward(torch.from_numpy(grad))
    grad_x = activation.sigmoid_backward(activation.sigmoid_forward(x), grad)
    assert grad_x.dtype == np.float32 and grad_x.shape == x.shape
    assert_close_gradient(grad_x, x_t.grad.numpy(), grad)


def test_float64_and_broadcast_gradients_take_numpy_path(compiled):
    x = np.linspace(-30, 30, 5000)
    np.testing.assert_allclose(activation.sigmoid_forward(x), torch.sigmoid(torch.from_numpy(x)),
                               rtol=1e-14, atol=0)
    x32 = x.astype(np.float32)
    grad_x = activation.sigmoid_backward(activation.sigmoid_forward(x32),
                                         np.float32(2.0))        # a broadcast gradient
    x_t = torch.from_numpy(x32).requires_grad_()
    torch.sigmoid(x_t).backward(torch.full(x32.shape, 2.0))
    assert grad_x.dtype == np.float32
    assert_close_gradient(grad_x, x_t.grad.numpy(), np.full(x32.shape, 2.0, np.float32))


def test_tensor_sigmoid_uses_the_kernels(compiled):
    """corrnet.sigmoid through autograd, a LeNet-sized feature map: values and gradient."""
    x = np.random.default_rng(0).standard_normal((8, 6, 28, 28)).astype(np.float32) * 8
    x_c = corrnet.from_numpy(x).requires_grad_()
    x_t = torch.from_numpy(x).requires_grad_()
    out_c, out_t = corrnet.sigmoid(x_c), torch.sigmoid(x_t)
    (out_c * out_c).sum().backward()
    (out_t * out_t).sum().backward()
    np.testing.assert_allclose(out_c.detach().numpy(), out_t.detach().numpy(), rtol=1e-6,
                               atol=1e-37)
    assert_close_gradient(x_c.grad.numpy(), x_t.grad.numpy(), 2 * out_t.detach().numpy())
    assert x_c.grad.dtype == corrnet.float32
