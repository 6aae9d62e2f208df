"""The few autograd Functions that the layers of issue 12 add, where composing existing tensor
ops would be inaccurate or slow (everything else in the new layers is composed from tensor
ops, and so differentiable as far as those ops are):

* `Expm1` (exp(x) - 1, exact near 0: ELU), `Log1p` (log(1 + x), exact near 0: Softplus,
  Mish), `Erf` (the error function, from scipy.special: the exact GELU);
* `Interpolate`: F.interpolate's separable resampling, a weighted sum of input taps along
  each resized axis; its backward scatters the gradient back with the same taps.

Each also has what the engine needs for ``create_graph=True`` (see autograd.py): the
elementwise ones a `backward_graph` written with Tensor ops, `Interpolate` (linear in x with
constant weights) a `jvp`, its forward applied to a tangent.
"""

from __future__ import annotations

import math

import numpy as np

from .. import devices
from ..autograd import Function
from ..kernels import interpolate as _interp


class Expm1(Function):
    """exp(a) - 1, accurate for small |a|."""

    @staticmethod
    def forward(ctx, a):
        with np.errstate(over="ignore"):
            out = np.expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad * (out + 1)

    @staticmethod
    def backward_graph(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out + 1)

    grad_fn_name = "Expm1Backward0"


class Log1p(Function):
    """log(1 + a), accurate for small |a|."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        with np.errstate(divide="ignore"):
            return grad / (a + 1)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (a + 1)

    grad_fn_name = "Log1PBackward0"


def _erf(a: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # scipy is a dependency; imported on first use (slow import)

    return erf(a).astype(a.dtype, copy=False)


class Erf(Function):
    """The error function erf(a) = 2/sqrt(pi) * integral_0^a exp(-t**2) dt."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _erf(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad * (np.exp(-(a * a)) * np.asarray(2 / math.sqrt(math.pi), dtype=a.dtype))

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * ((-(a * a)).exp() * (2 / math.sqrt(math.pi)))

    grad_fn_name = "ErfBackward0"


class Interpolate(Function):
    """Resample the trailing axes of x: along each resized axis, output index o is
    ``sum_k weights[o, k] * x[..., taps[o, k], ...]`` (see kernels/interpolate.py).

    tables: one (taps, weights) pair per trailing axis, or None for an axis kept as it is.
    grad_tables: the tables whose adjoint the backward applies, where PyTorch's backward is not
    the adjoint of its forward (None: `tables`).
    """

    @staticmethod
    def forward(ctx, x, tables, name="UpsampleBackward0", grad_tables=None):
        ctx.tables, ctx.shape, ctx.name = tables, x.shape, name
        ctx.grad_tables = tables if grad_tables is None else grad_tables
        return _interp.resample(x, tables)

    @staticmethod
    def backward(ctx, grad):
        return _interp.resample_backward(devices.contiguous(grad), ctx.grad_tables, ctx.shape)

    @staticmethod
    def jvp(ctx, v):  # the resampling is linear in x
        return _interp.resample(v, ctx.tables)

    @staticmethod
    def grad_fn_name(ctx):
        return ctx.name
