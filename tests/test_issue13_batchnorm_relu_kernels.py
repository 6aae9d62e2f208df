"""Issue 13: batch normalization's and ReLU's compiled passes (kernels/batchnorm.py,
kernels/activation.py `relu_backward`) against PyTorch, against the NumPy passes they replace,
and by float64 finite differences.

The compiled passes take arrays of `COMPILED_MIN_SIZE` numbers or more; here the threshold is
lowered to 1 so that hypothesis's small shapes (1-D maps, one image, one channel, odd sizes)
run on them too, and both paths are checked on the same draws.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gradcheck import gradcheck

import corrnet
from corrnet.kernels import activation, batchnorm, jit

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")


@pytest.fixture(autouse=True)
def compiled_for_every_size(monkeypatch):
    monkeypatch.setattr(batchnorm, "COMPILED_MIN_SIZE", 1)
    monkeypatch.setattr(activation, "COMPILED_MIN_SIZE", 1)


@st.composite
def batches(draw):
    n = draw(st.integers(1, 6))
    channels = draw(st.integers(1, 5))
    spatial = draw(st.lists(st.integers(1, 7), min_size=0, max_size=2))
    if n * int(np.prod(spatial)) < 2:
        n = 2                                  # training needs two numbers per channel
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    return ((n, channels, *spatial), dtype, seed, draw(st.booleans()), draw(st.booleans()),
            draw(st.booleans()))


def _run(lib, functional, x, weight, bias, running, training, grad):
    xs = lib.tensor(x, requires_grad=True)
    ws = None if weight is None else lib.tensor(weight, requires_grad=True)
    bs = None if bias is None else lib.tensor(bias, requires_grad=True)
    mean, var = (lib.tensor(a.copy()) for a in running)
    out = functional.batch_norm(xs, mean, var, ws, bs, training=training, momentum=0.1,
                                eps=1e-5)
    out.backward(lib.tensor(grad))
    results = {"out": out, "grad_x": xs.grad, "running_mean": mean, "running_var": var}
    if ws is not None:
        results["grad_weight"] = ws.grad
    if bs is not None:
        results["grad_bias"] = bs.grad
    return {name: value.detach().numpy() for name, value in results.items()}


@settings(max_examples=60, deadline=None)
@given(batches())
def test_batch_norm_compiled_matches_torch_and_the_numpy_passes(case):
    shape, dtype, seed, has_weight, has_bias, training = case
    rng = np.random.default_rng(seed)
    channels = shape[1]
    x = (rng.standard_normal(shape) * rng.uniform(0.1, 10) + rng.uniform(-5, 5)).astype(dtype)
    weight = rng.standard_normal(channels).astype(dtype) if has_weight else None
    bias = rng.standard_normal(channels).astype(dtype) if has_bias else None
    running = (rng.standard_normal(channels).astype(dtype),
               (rng.random(channels) + 0.5).astype(dtype))
    grad = rng.standard_normal(shape).astype(dtype)
    assert batchnorm.compiled(x, weight, bias)
    compiled = _run(corrnet, corrnet.nn.functional, x, weight, bias, running, training, grad)
    with jit.use_compiled(False):
        plain = _run(corrnet, corrnet.nn.functional, x, weight, bias, running, training, grad)
    expected = _run(torch, torch.nn.functional, x, weight, bias, running, training, grad)
    # float32: relative to each result's largest magnitude as well (with 2-3 numbers per
    # channel grad_x cancels: a -0.49 beside 72, where the NumPy passes' rounding shows)
    relative = 1e-4 if dtype == np.float32 else 1e-9
    assert compiled.keys() == expected.keys() == plain.keys()
    for name, value in expected.items():
        assert compiled[name].dtype == value.dtype, name
        assert compiled[name].shape == value.shape, name
        scale = max(1.0, float(np.abs(value).max(initial=0)))
        tolerance = dict(rtol=relative, atol=relative * scale)
        np.testing.assert_allclose(compiled[name], value, err_msg=name, **tolerance)
        np.testing.assert_allclose(compiled[name], plain[name], err_msg=name, **tolerance)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_compiled_gradients_match_finite_differences(training, affine):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 4, 3)) * 2 + 1
    weight, bias = rng.standard_normal(2), rng.standard_normal(2)
    mean, var = rng.standard_normal(2), rng.random(2) + 0.5

    def op(x, *affine_arrays):
        return corrnet.nn.functional.batch_norm(
            x, corrnet.tensor(mean.copy()), corrnet.tensor(var.copy()), *affine_arrays,
            training=training)

    assert batchnorm.compiled(x, weight, bias)
    gradcheck(op, x, *((weight, bias) if affine else ()))


def test_batch_norm_statistics_are_two_pass_accurate():
    """A channel far from zero (mean 1e4, spread 1): float32 squares of x would cancel. The
    compiled helper's float64 statistics, as the training kernel computes them."""
    numba = jit.load_numba()

    @numba.njit
    def moments(x3, mean, var):
        for c in range(x3.shape[1]):
            mean[c], var[c] = batchnorm.channel_moments(x3, c)

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((16, 3, 8, 8)) + 1e4).astype(np.float32)
    mean, var = np.empty(3), np.empty(3)
    moments(x.reshape(16, 3, 64), mean, var)
    exact = x.astype(np.float64)
    np.testing.assert_allclose(mean, exact.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, exact.var(axis=(0, 2, 3)), rtol=1e-9)


def test_batch_norm_takes_the_numpy_passes_where_the_kernels_do_not_apply():
    x = np.ones((4, 3, 5, 5), np.float32)
    assert not batchnorm.compiled(x[:, :, ::2])                      # not contiguous
    assert not batchnorm.compiled(x, np.ones(3, np.float64), None)   # mixed dtypes
    assert not batchnorm.compiled(x.astype(np.float16))
    assert not batchnorm.compiled(x.astype(np.int64))
    with jit.use_compiled(False):
        assert not batchnorm.compiled(x)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_relu_compiled_backward_matches_torch(shape, dtype, seed):
    """Values with zeros, NaN and inf among inputs and gradients: PyTorch's threshold_backward
    (0 where the output is <= 0, the gradient as it is elsewhere, NaN output included)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf], dtype)
    for array in (x, grad):
        spots = rng.random(shape) < 0.2
        array[spots] = rng.choice(specials, size=int(spots.sum()))
    xs = corrnet.tensor(x, requires_grad=True)
    out = corrnet.relu(xs)
    out.backward(corrnet.tensor(grad))
    xt = torch.tensor(x, requires_grad=True)
    out_t = torch.relu(xt)
    out_t.backward(torch.tensor(grad))
    np.testing.assert_array_equal(out.detach().numpy(), out_t.detach().numpy())
    np.testing.assert_array_equal(xs.grad.numpy(), xt.grad.numpy())
    assert xs.grad.numpy().dtype == xt.grad.numpy().dtype
    np.testing.assert_array_equal(activation.relu_backward(out.detach().numpy(), grad),
                                  activation.relu_grad_numpy(out.detach().numpy(), grad))
