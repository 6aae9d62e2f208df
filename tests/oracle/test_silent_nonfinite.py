"""NaN and inf are values, not events: where PyTorch returns them silently (0 * inf, inf - inf,
a float beyond its dtype's range, a NaN through a matrix product or a convolution), corrnet
returns the same values without a NumPy warning ("invalid value encountered in multiply"),
forward and backward.

The fuzz found `corrnet.tensor([1e40])` warning "overflow encountered in cast"; the suite's
convolutions with NaN inputs warned from inside their kernels. Each case here runs with
RuntimeWarnings as errors for corrnet (the suite as a whole also fails on one raised from a
line of corrnet: pyproject.toml's filterwarnings), and its values and gradients are compared
with PyTorch's. `Function.apply` and the backward engine run every op under
``np.errstate(all="ignore")`` (autograd.py); the creation functions, which are not ops, say so
at their casts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import corrnet
from corrnet.kernels import jit, plan

from torch_compare import assert_grad, assert_same

INF, NAN = float("inf"), float("nan")


def _leaf(lib, values, dtype="float32"):
    return lib.tensor(np.array(values, dtype=dtype), requires_grad=True)


def _image(lib, poison):
    """A (2, 3, 6, 6) float32 input with `poison` at one pixel, and a (4, 3, 3, 3) weight."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    x[1, 2, 3, 1] = poison
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    return lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)


def _conv(lib, poison):
    x, w = _image(lib, poison)
    return lib.nn.functional.conv2d(x, w, padding=1), [x, w]


def _two(lib, a, b, op):
    x, y = _leaf(lib, a), _leaf(lib, b)
    return op(x, y), [x, y]


# name -> case(lib) = (output, leaves whose gradients are compared)
CASES = {
    "tensor beyond float32": lambda lib: (lib.tensor([1e40, -1e40, 1.0]), []),
    "tensor beyond float16": lambda lib: (lib.tensor([1e10, 70000.0], dtype=lib.float16), []),
    "as_tensor of float64 to float32": lambda lib: (
        lib.as_tensor(np.array([1e40, 2.0]), dtype=lib.float32), []),
    "arange beyond float32": lambda lib: (lib.arange(0, 1e40, 1e39), []),
    # (the in-place write of a wider result: fuzz, seed 20261218)
    "float16 += float64 beyond its range": lambda lib: (
        lib.zeros(2, dtype=lib.float16).__iadd__(lib.tensor([1e30, 1.0], dtype=lib.float64)),
        []),
    "0 * inf": lambda lib: _two(lib, [0.0, 1.0, -0.0], [INF, INF, -INF], lambda x, y: x * y),
    "inf - inf": lambda lib: _two(lib, [INF, 1.0], [INF, 2.0], lambda x, y: x - y),
    "0 / 0 and inf / inf": lambda lib: _two(lib, [0.0, INF, 1.0], [0.0, INF, 0.0],
                                            lambda x, y: x / y),
    "float16 product beyond its range": lambda lib: _two(
        lib, [300.0, -300.0], [300.0, 300.0], lambda x, y: x.half() * y.half()),
    "exp beyond float32": lambda lib: (lambda x: (x.exp(), [x]))(_leaf(lib, [100.0, -200.0])),
    "log and sqrt below 0": lambda lib: (
        lambda x: (x.log() + x.sqrt(), [x]))(_leaf(lib, [-1.0, 0.0, 4.0])),
    "pow beyond float32": lambda lib: (lambda x: (x ** 2, [x]))(_leaf(lib, [1e30, 2.0])),
    "matmul through inf and 0": lambda lib: _two(lib, [[INF, 1.0]], [[0.0], [1.0]],
                                                 lambda x, y: x @ y),
    "sum, mean, var of inf and -inf": lambda lib: (
        lambda x: (lib.stack([x.sum(), x.mean(), x.var()]), [x]))(_leaf(lib, [INF, -INF, 1.0])),
    "softmax and log_softmax of inf": lambda lib: (
        lambda x: (lib.cat([x.softmax(0), x.log_softmax(0)]), [x]))(_leaf(lib, [INF, 1.0])),
    "cross_entropy of inf logits": lambda lib: (
        lambda x: (lib.nn.functional.cross_entropy(x, lib.tensor([0, 1])), [x]))(
        _leaf(lib, [[INF, 1.0], [1.0, -INF]])),
    "sigmoid and tanh of inf and NaN": lambda lib: (
        lambda x: (x.sigmoid() + x.tanh(), [x]))(_leaf(lib, [INF, -INF, NAN, 0.5])),
    "linear with inf": lambda lib: (
        lambda x, w: (lib.nn.functional.linear(x, w), [x, w]))(
        _leaf(lib, [[INF, 0.0], [1.0, 2.0]]), _leaf(lib, [[0.0, 1.0], [1.0, -1.0]])),
    "batch_norm with inf": lambda lib: (
        lambda x: (lib.nn.functional.batch_norm(x, None, None, training=True), [x]))(
        _leaf(lib, [[INF, 1.0], [2.0, 3.0], [4.0, 5.0]])),
    "avg_pool2d over inf and -inf": lambda lib: (
        lambda x: (lib.nn.functional.avg_pool2d(x, 2), [x]))(
        _leaf(lib, [[[[INF, -INF], [1.0, 2.0]]]])),
    "max_pool2d over NaN": lambda lib: (
        lambda x: (lib.nn.functional.max_pool2d(x, 2), [x]))(
        _leaf(lib, [[[[NAN, 1.0], [1.0, 2.0]]]])),
    "conv2d of a NaN pixel": lambda lib: _conv(lib, NAN),
    "conv2d of an inf pixel": lambda lib: _conv(lib, INF),
}


def _run(lib, case):
    out, leaves = case(lib)
    if out.requires_grad:
        out.backward(lib.ones_like(out))
    return out.detach(), [leaf.grad for leaf in leaves]


def _check(name):
    want, want_grads = _run(torch, CASES[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got, got_grads = _run(corrnet, CASES[name])
    assert_same(got, want, name)
    for index, (g, w) in enumerate(zip(got_grads, want_grads, strict=True)):
        assert_grad(g, w, f"{name}: gradient of input {index}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_nonfinite_values_come_silently_as_in_torch(name):
    _check(name)


@pytest.mark.parametrize("compiled", [False, True] if jit.AVAILABLE else [False])
@pytest.mark.parametrize("algorithm", plan.ALGORITHMS)
def test_every_convolution_algorithm_is_silent_on_nan_and_inf(algorithm, compiled):
    """Each algorithm the planner may pick, forced, on both kernel paths (those it supports:
    the planner runs im2col + GEMM where an algorithm does not take the shape)."""
    for name in ("conv2d of a NaN pixel", "conv2d of an inf pixel"):
        with jit.use_compiled(compiled), plan.forcing(algorithm):
            _check(name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_corr2d_is_silent_on_nan_and_inf(dtype):
    """corrnet.corr2d's common call (valid mode, no gradient) runs the planner's pass outside
    an op: the same silence, and scipy.signal.correlate2d's values (fuzz, seed 20261216)."""
    import scipy.signal

    image = np.random.default_rng(2).standard_normal((7, 9)).astype(dtype)
    image[1, 2], image[4, 6], image[5, 0] = NAN, INF, -INF
    kernel = np.random.default_rng(3).standard_normal((3, 2)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = corrnet.corr2d(corrnet.tensor(image), corrnet.tensor(kernel)).numpy()
    with np.errstate(all="ignore"):
        want = scipy.signal.correlate2d(image, kernel, mode="valid")
    np.testing.assert_allclose(got, want, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("args", [(-70000, 70000, 7), (-1e5, 1e5, 3.5), (65500.0, 65530.0, 0.5),
                                  (-(2**40), 2**40, 2**35)])
def test_float16_arange_beyond_its_range(args):
    """arange into float16 past its range: each value rounded from the exact one, inf beyond
    65504 (the values beyond take a fast path: NumPy's cast of each took 90 ns, and
    arange(-2**31, 0, 2, dtype=float16) 93 s, fuzz seed 20261219). The reference is NumPy's
    cast of the exact values: PyTorch's float16 arange rounds its own intermediates (it gives
    -inf for -65513, which rounds to -65504)."""
    with np.errstate(over="ignore"):
        want = np.arange(*args, dtype=np.float64).astype(np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = corrnet.arange(*args, dtype=corrnet.float16).numpy()
    np.testing.assert_array_equal(got, want)
