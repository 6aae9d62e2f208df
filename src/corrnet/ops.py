"""The differentiable tensor ops: each a `Function` on NumPy arrays (see autograd.py).

Backward methods may return gradients in the broadcast shape of the output; the autograd
engine sums them back to each input's shape and dtype. To be twice differentiable
(``create_graph=True``) an op also defines `backward_graph` (its backward on Tensors) or, for
a backward linear in grad, `jvp` (its adjoint): see the top of autograd.py. `grad_fn_name` is
the node's name as PyTorch prints it.
"""

from __future__ import annotations

import itertools
import math
import operator
import types

import numpy as np

from . import devices
from .autograd import Function, _as_array, _like
from .kernels import activation


def _const(array):
    """An array as a Tensor outside the graph (a constant of a differentiable backward)."""
    from .tensor import _wrap

    return _wrap(_as_array(array))


def _where(condition: np.ndarray, a, b):
    """``where(condition, a, b)`` recorded (either operand may be a Tensor or an array)."""
    return Where.apply(condition, a, b)

# ---------------------------------------------------------------------------------------------
# Elementwise arithmetic
# ---------------------------------------------------------------------------------------------


class Add(Function):
    tensor_arguments = 2
    grad_fn_name = "AddBackward0"

    @staticmethod
    def forward(ctx, a, b):
        return np.add(a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad

    backward_graph = backward


class Sub(Function):
    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b):
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad

    backward_graph = backward


def _needs(ctx, index: int) -> bool:
    return len(ctx.needs_input_grad) > index and ctx.needs_input_grad[index]


class Mul(Function):
    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b):
        # save a only if b's gradient is wanted and vice versa (x * 2 keeps no copy of x)
        ctx.save_for_backward(a if _needs(ctx, 1) else None, b if _needs(ctx, 0) else None)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        return (grad * b if b is not None else None), (grad * a if a is not None else None)

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.saved_tensors
        return (grad * b if b is not None else None), (grad * a if a is not None else None)


class Div(Function):
    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if _needs(ctx, 1) else None, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.true_divide(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        with np.errstate(divide="ignore", invalid="ignore"):
            # -grad * ((a / b) / b): PyTorch's order, which rounds as its float16 does
            return grad / b, (-grad * ((a / b) / b) if a is not None else None)

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / b, (-grad * ((a / b) / b) if a is not None else None)


class Pow(Function):
    """``a ** b``; `bool_exponent` says `b` was a bool tensor, whose derivative PyTorch
    refuses (it subtracts 1 from the exponent); `scalar_base` is the Python number of
    ``number ** tensor`` (a is it, cast to the result's dtype), whose log the exponent's
    gradient takes in float64 as PyTorch's (``1e40 ** x`` in float32: log(1e40) = 92.1, not
    the log of the cast base, inf)."""

    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b, bool_exponent=False, scalar_base=None):
        ctx.bool_exponent = bool_exponent
        ctx.log_base = None
        if scalar_base is not None:
            with np.errstate(divide="ignore", invalid="ignore"):   # (0: -inf, < 0: NaN)
                ctx.log_base = np.log(np.float64(scalar_base)).astype(a.dtype)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # (inf, as PyTorch)
            if a.dtype.kind == "i" and np.any(b < 0):
                out = _int_power(a, b)
            else:
                out = np.power(a, b).astype(a.dtype, copy=False)  # bool ** bool stays bool
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_arrays
        if ctx.bool_exponent and _needs(ctx, 0):
            raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not "
                               "supported (the derivative of pow for a bool exponent); "
                               "convert the exponent with .float()")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            grad_a = grad * b * np.power(a, b - 1)
            grad_a = np.where(b == 0, 0, grad_a)  # d/da a**0 is 0, even at a == 0
            grad_b = None
            if _needs(ctx, 1):
                # d/db a**b = a**b log a, defined as 0 where a == 0 and b >= 0 (as PyTorch)
                log_a = np.log(a) if ctx.log_base is None else ctx.log_base
                grad_b = grad * np.where((a == 0) & (b >= 0), 0, out * log_a)
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        a, b, out = ctx.saved_tensors
        a_array, b_array = ctx.saved_arrays[:2]
        if ctx.bool_exponent and _needs(ctx, 0):
            Pow.backward(ctx, grad._data)  # raises PyTorch's error
        with np.errstate(divide="ignore", invalid="ignore"):
            zero = np.zeros((), dtype=grad._data.dtype, like=_like(grad._data))
            grad_a = grad * b * a ** (b - 1)
            if np.any(b_array == 0):  # d/da a**0 is 0, even at a == 0
                grad_a = _where(np.broadcast_to(b_array == 0, grad_a.shape), zero, grad_a)
            grad_b = None
            if _needs(ctx, 1):
                undefined = np.broadcast_to((a_array == 0) & (b_array >= 0), grad.shape)
                log_a = a.log() if ctx.log_base is None else ctx.log_base
                grad_b = grad * _where(undefined, zero, out * log_a)
        return grad_a, grad_b

    @staticmethod
    def grad_fn_name(ctx):
        if ctx.log_base is not None:
            return "PowBackward2"    # (PyTorch's pow(Scalar, Tensor))
        return "PowBackward1" if _needs(ctx, 1) else "PowBackward0"


def _int_power(a, b):
    """Integer ``a ** b`` with some negative exponents, as PyTorch computes it: 1 / a**|b|
    truncated — 1 for a == 1, +-1 for a == -1 (by parity), else 0 (0 too for a == 0)."""
    negative = b < 0
    out = np.power(a, np.where(negative, 0, b)).astype(a.dtype, copy=False)
    odd = (b % 2) == 1
    inverse = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0)).astype(a.dtype)
    return np.where(negative, inverse, out)


class Remainder(Function):
    """Python's ``a % b`` (the sign of the divisor), as ``torch.remainder``: the gradient is
    ``grad`` for `a` and ``-grad * floor(a / b)`` for `b`.

    ``2 % x`` (a Python number divided by a tensor) is ``remainder(Scalar, Tensor)`` in
    PyTorch, which has no derivative: `scalar_dividend` makes its backward refuse as
    PyTorch's does."""

    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b, scalar_dividend=False):
        ctx.scalar_dividend = scalar_dividend
        if _needs(ctx, 1):
            ctx.save_for_backward(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.remainder(a, b)

    @staticmethod
    def backward(ctx, grad):
        if ctx.scalar_dividend:
            raise not_implemented("remainder")
        grad_b = None
        if _needs(ctx, 1):
            a, b = ctx.saved_arrays
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_b = -grad * np.floor_divide(a, b)
        return grad, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        if ctx.scalar_dividend:
            raise not_implemented("remainder")
        grad_b = None
        if _needs(ctx, 1):
            a, b = ctx.saved_arrays
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_b = -grad * _const(np.floor_divide(a, b))
        return grad, grad_b


class FloorDivide(Function):
    """``a // b`` (rounding toward minus infinity). PyTorch defines no derivative for it: the
    op is recorded, and a backward pass through it raises PyTorch's error."""

    @staticmethod
    def forward(ctx, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.floor_divide(a, b)

    @staticmethod
    def backward(ctx, grad):
        raise not_implemented("floor_divide")

    backward_graph = backward


class NotDifferentiable(Function):
    """A result that PyTorch records but cannot differentiate (unique's values), computed
    beforehand (`values`): a backward pass through it raises PyTorch's NotImplementedError."""

    @staticmethod
    def forward(ctx, a, values, aten_name, node_name):
        ctx.aten_name, ctx.node_name = aten_name, node_name
        return values

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError(f"the derivative for '{ctx.aten_name}' is not implemented")

    backward_graph = backward

    @staticmethod
    def grad_fn_name(ctx):
        return ctx.node_name


def not_implemented(aten_name: str) -> RuntimeError:
    """The error of a backward pass through an op that PyTorch does not differentiate."""
    return RuntimeError(f"derivative for aten::{aten_name} is not implemented")


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, grad):
        return -grad

    backward_graph = backward


def _zero_gradient(grad):
    """The gradient of a piecewise constant function: zeros of grad's shape and dtype (as
    PyTorch's zeros_like(grad): zero also where grad is inf or NaN)."""
    return np.zeros(grad.shape, dtype=grad.dtype, like=_like(grad))


def _zero_gradient_graph(grad):
    """`_zero_gradient` of a Tensor grad, outside the graph."""
    return _const(_zero_gradient(grad._data))


class _PiecewiseConstant(Function):
    """An op of one tensor that is piecewise constant: its gradient is zero everywhere."""

    @staticmethod
    def backward(ctx, grad):
        return _zero_gradient(grad)

    jvp = backward

    @staticmethod
    def backward_graph(ctx, grad):
        return _zero_gradient_graph(grad)


class Rounding(_PiecewiseConstant):
    """round (half to even, to `decimals` places), floor, ceil or trunc: piecewise constant,
    so the gradient is zero everywhere (as PyTorch's)."""

    @staticmethod
    def forward(ctx, a, how, decimals=None):
        ctx.how, ctx.decimals = how, decimals
        if how == "round":
            return np.round(a, decimals or 0)
        return getattr(np, how)(a)

    @staticmethod
    def grad_fn_name(ctx):
        # (PyTorch's round with a `decimals` argument, even 0, is its second overload)
        number = "1" if ctx.how == "round" and ctx.decimals is not None else "0"
        return f"{ctx.how.capitalize()}Backward{number}"


class RoundedQuotient(Function):
    """``a.div(b, rounding_mode=...)``: the rounded quotient, computed by the caller, with a
    zero gradient for both operands (PyTorch's DivBackward2; its ``a // b`` has no
    derivative at all)."""

    grad_fn_name = "DivBackward2"

    @staticmethod
    def forward(ctx, a, b, quotient):
        return quotient

    @staticmethod
    def backward(ctx, grad):
        zero = _zero_gradient(grad)     # (the engine sums each to its operand's shape)
        return zero, zero

    @staticmethod
    def backward_graph(ctx, grad):
        zero = _zero_gradient_graph(grad)
        return zero, zero


class Logit(Function):
    """log(z / (1 - z)), z = a clamped to [eps, 1 - eps] where eps is given; its gradient
    1 / (a (1 - a)) as PyTorch's: NaN outside [0, 1] without eps, zero outside [eps, 1 - eps]
    with it."""

    @staticmethod
    def forward(ctx, a, eps):
        ctx.eps = eps
        ctx.save_for_backward(a)
        z = a if eps is None else np.clip(a, eps, 1 - eps)
        return np.log(z / (1 - z)).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        with np.errstate(all="ignore"):
            derivative = 1 / (a * (1 - a))
            outside, value = (((a < 0) | (a > 1)), np.nan) if ctx.eps is None else (
                ((a < ctx.eps) | (a > 1 - ctx.eps)), 0.0)
            return grad * np.where(outside, value, derivative).astype(grad.dtype, copy=False)


class Sign(_PiecewiseConstant):
    """-1, 0 or 1 in a's dtype: (a > 0) - (a < 0), so 0 at NaN and at -0.0 (as PyTorch's);
    piecewise constant, so its gradient is zero."""

    @staticmethod
    def forward(ctx, a):
        return (a > 0).astype(a.dtype) - (a < 0).astype(a.dtype)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad * _sgn(a)      # (0 at NaN, as PyTorch's abs backward)

    jvp = backward  # sign(a) is constant where abs is differentiable


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        with np.errstate(over="ignore"):  # overflow gives inf, silently, as in PyTorch
            out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        with np.errstate(invalid="ignore"):  # (0 * an overflowed inf: NaN, silently)
            return grad * out

    @staticmethod
    def backward_graph(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        with np.errstate(divide="ignore"):
            return grad / a

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):
            return grad / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        with np.errstate(invalid="ignore"):
            out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        with np.errstate(divide="ignore"):
            return grad / (2 * out)

    @staticmethod
    def backward_graph(ctx, grad):
        (out,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):
            return grad / (2 * out)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        out = activation.sigmoid_forward(a).reshape(a.shape)  # the kernel makes 0-d 1-d
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        if out.ndim == 0:  # the kernel works on 1-d arrays
            return activation.sigmoid_backward(out.reshape(1), grad.reshape(1)).reshape(())
        return activation.sigmoid_backward(out, grad)

    @staticmethod
    def backward_graph(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad * (1 - out * out)

    @staticmethod
    def backward_graph(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


# The functions the derivatives in `UNARY` call, on Tensors (recorded: a gradient built from
# them is differentiable again): m.cos(t) is t.cos()
_TENSOR_MATH = types.SimpleNamespace(**{name: operator.methodcaller(name)
                                        for name in ("sin", "cos", "sinh", "cosh", "sqrt",
                                                     "exp")})


def _special(name):
    """SciPy's special function `name` (erf, erfc), imported on first use (SciPy's special
    functions take 0.1 s to import: not at ``import corrnet``)."""
    import scipy.special

    return getattr(scipy.special, name)


_TWO_OVER_ROOT_PI = 2 / math.sqrt(math.pi)


# The elementwise functions of one tensor that `Unary` computes: name -> (NumPy's function,
# its derivative as d(m, a, out) with m NumPy or `_TENSOR_MATH`, a the input, out the result,
# written as PyTorch's derivatives.yaml writes it, in terms of the result where it does)
UNARY = {
    "erf": (lambda a: _special("erf")(a),
            lambda m, a, out: _TWO_OVER_ROOT_PI * m.exp(-(a * a))),
    "erfc": (lambda a: _special("erfc")(a),
             lambda m, a, out: -_TWO_OVER_ROOT_PI * m.exp(-(a * a))),
    "sin": (np.sin, lambda m, a, out: m.cos(a)),
    "cos": (np.cos, lambda m, a, out: -m.sin(a)),
    "tan": (np.tan, lambda m, a, out: 1 + out * out),
    "asin": (np.arcsin, lambda m, a, out: 1 / m.sqrt(1 - a * a)),
    "acos": (np.arccos, lambda m, a, out: -1 / m.sqrt(1 - a * a)),
    "atan": (np.arctan, lambda m, a, out: 1 / (a * a + 1)),
    "sinh": (np.sinh, lambda m, a, out: m.cosh(a)),
    "cosh": (np.cosh, lambda m, a, out: m.sinh(a)),
    "log2": (np.log2, lambda m, a, out: 1 / (a * math.log(2))),
    "log10": (np.log10, lambda m, a, out: 1 / (a * math.log(10))),
    "log1p": (np.log1p, lambda m, a, out: 1 / (a + 1)),
    "expm1": (np.expm1, lambda m, a, out: out + 1),
    "exp2": (np.exp2, lambda m, a, out: out * math.log(2)),
    "rsqrt": (lambda a: 1 / np.sqrt(a), lambda m, a, out: -0.5 * out * out * out),
    "reciprocal": (lambda a: 1 / a, lambda m, a, out: -(out * out)),
    "frac": (lambda a: a - np.trunc(a), lambda m, a, out: 1.0),
    "deg2rad": (lambda a: a * (math.pi / 180), lambda m, a, out: math.pi / 180),
    "rad2deg": (lambda a: a * (180 / math.pi), lambda m, a, out: 180 / math.pi),
}
# PyTorch's node names where they are not the capitalized name + "Backward0"
_UNARY_NODE_NAMES = {"log1p": "Log1PBackward0", "deg2rad": "Deg2RadBackward0",
                     "rad2deg": "Rad2DegBackward0"}


class Unary(Function):
    """An elementwise function of one tensor from `UNARY` (``x.sin()``, ``x.log2()``, ...):
    out = f(a), d a = grad * f'(a); its node is named as PyTorch's (SinBackward0)."""

    tensor_arguments = 1

    @staticmethod
    def forward(ctx, a, name):
        function, _ = UNARY[name]
        ctx.name = name
        with np.errstate(all="ignore"):   # (inf and NaN silently, as PyTorch)
            out = function(a)
        # (NumPy's functions give a 0-d input a scalar; NumPy's 1 / float16 stays float16)
        out = out.astype(a.dtype, copy=False)
        if isinstance(out, np.generic):
            out = np.asarray(out)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        with np.errstate(all="ignore"):
            derivative = UNARY[ctx.name][1](np, a, out)
            if isinstance(derivative, float):     # a constant
                return grad * a.dtype.type(derivative)
            return grad * derivative.astype(a.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, grad):
        a, out = ctx.saved_tensors
        return grad * UNARY[ctx.name][1](_TENSOR_MATH, a, out)

    @staticmethod
    def grad_fn_name(ctx):
        return _UNARY_NODE_NAMES.get(ctx.name, ctx.name.capitalize() + "Backward0")


# The elementwise functions of two tensors that `Binary` computes: name -> (NumPy's function,
# the gradients of both operands as d(a, b, out) -> (d out / d a, d out / d b), written as
# PyTorch's derivatives.yaml writes them)
BINARY = {
    # atan2(a, b): the angle of the point (b, a); 1 / (a^2 + b^2) taken as 0 where a^2 + b^2
    # is 0 (the origin, or squares below the dtype's least number), as PyTorch's
    "atan2": (np.arctan2, lambda a, b, out: (b * _reciprocal_or_zero(a * a + b * b),
                                             -a * _reciprocal_or_zero(a * a + b * b))),
    # fmod(a, b) = a - b * trunc(a / b): the remainder with a's sign
    "fmod": (np.fmod, lambda a, b, out: (np.ones_like(a), -np.trunc(a / b))),
    "hypot": (np.hypot, lambda a, b, out: (a / out, b / out)),
    # log(exp(a) + exp(b)) without overflow; its base-2 twin
    "logaddexp": (np.logaddexp, lambda a, b, out: (np.exp(a - out), np.exp(b - out))),
    "logaddexp2": (np.logaddexp2, lambda a, b, out: (np.exp2(a - out), np.exp2(b - out))),
    # |a| with b's sign: d/da is out / a (its sign flip), 0 at a == 0; nothing to b
    "copysign": (np.copysign, lambda a, b, out: (np.where(a == 0, 0.0, out / a),
                                                 np.zeros_like(b))),
    # a * log(b), 0 where a is 0 (unless b is NaN); d/da is log(b), also at a == 0 (but 0
    # there where b <= 0), as PyTorch's
    "xlogy": (lambda a, b: np.where((a == 0) & ~np.isnan(b), 0, a * np.log(b)),
              lambda a, b, out: (np.where((a == 0) & (b <= 0), 0, np.log(b)), a / b)),
}


def _reciprocal_or_zero(values):
    """1 / values, 0 where values is 0."""
    return np.where(values == 0, 0, 1 / values)


class Binary(Function):
    """An elementwise function of two tensors (promoted to one dtype and broadcast by the
    caller) from `BINARY` (``x.atan2(y)``, ``x.fmod(y)``, ``x.hypot(y)``): out = f(a, b), with
    the gradients of both; its node named as PyTorch's (Atan2Backward0). Differentiable
    once."""

    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b, name):
        ctx.name = name
        out = np.asarray(BINARY[name][0](a, b)).astype(np.result_type(a, b), copy=False)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_arrays
        with np.errstate(all="ignore"):
            d_a, d_b = BINARY[ctx.name][1](a, b, out)
        return grad * d_a.astype(grad.dtype, copy=False), grad * d_b.astype(grad.dtype,
                                                                             copy=False)

    @staticmethod
    def grad_fn_name(ctx):
        return ctx.name.capitalize() + "Backward0"


class Relu(Function):
    @staticmethod
    def forward(ctx, a):
        out = activation.relu_forward(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # PyTorch's threshold_backward: 0 where out <= 0, else the gradient as it is (a NaN
        # input passes its gradient on; an inf gradient at out = 0 gives 0, not NaN)
        (out,) = ctx.saved_arrays
        return activation.relu_backward(out, grad)

    jvp = backward  # the mask is constant where relu is differentiable


class Clamp(Function):
    """clamp with number bounds (low or high None where not given); `op` is the name the op
    was called by (clamp, clamp_min, clamp_max), which PyTorch's node is named after."""

    @staticmethod
    def forward(ctx, a, low, high, op="clamp"):
        out = a
        if low is not None:
            out = np.maximum(out, low)
        if high is not None:
            out = np.minimum(out, high)
        if out is a:
            out = a.copy()
        ctx.save_for_backward(a)
        ctx.low, ctx.high, ctx.op = low, high, op
        return out

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        inside = np.ones(a.shape, dtype=bool, like=_like(a))
        if ctx.low is not None:
            inside &= a >= ctx.low
        if ctx.high is not None:
            inside &= a <= ctx.high
        return grad * inside

    jvp = backward

    @staticmethod
    def grad_fn_name(ctx):
        return {"clamp_min": "ClampMinBackward0",
                "clamp_max": "ClampMaxBackward0"}.get(ctx.op, "ClampBackward1")


class ClampTensors(Function):
    """clamp with tensor bounds (low or high None where not given; each broadcast with a),
    as PyTorch's: the value NaN where a or a bound is NaN, else min(max(a, low), high); the
    gradient by comparisons (PyTorch's clamp_backward), so that at a NaN none gets it:

        a      where low <= a <= high
        low    where a < low, and low < high when both are given
        high   where a > high, or high < low when both are given

    `op` as Clamp's."""

    tensor_arguments = 3

    @staticmethod
    def forward(ctx, a, low, high, op="clamp"):
        out, inside = a, True
        low_wins = high_wins = None
        if low is not None:
            out = np.where((out < low) | (low != low), low, out)
            inside = inside & (a >= low)
            low_wins = a < low
        if high is not None:
            out = np.where((out > high) | (high != high), high, out)
            inside = inside & (a <= high)
            high_wins = a > high
        if low is not None and high is not None:
            low_wins = low_wins & (low < high)
            high_wins = high_wins | (high < low)
        ctx.masks = (inside, low_wins, high_wins)
        ctx.op = op
        return out

    @staticmethod
    def backward(ctx, grad):
        zero = np.zeros((), dtype=grad.dtype, like=_like(grad))
        return tuple(None if mask is None else np.where(mask, grad, zero)
                     for mask in ctx.masks)

    @staticmethod
    def backward_graph(ctx, grad):
        zero = np.zeros((), dtype=grad._data.dtype, like=_like(grad._data))
        return tuple(None if mask is None else Where.apply(mask, grad, zero)
                     for mask in ctx.masks)

    @staticmethod
    def grad_fn_name(ctx):
        return {"clamp_min": "ClampMinBackward1",
                "clamp_max": "ClampMaxBackward1"}.get(ctx.op, "ClampBackward0")


class Extremum(Function):
    """Elementwise maximum (or minimum); at ties each input gets half the gradient, and where
    either is NaN (the result NaN) each gets all of it (as PyTorch: an input's gradient is
    zeroed only where the other one wins)."""

    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b, use_min):
        ctx.save_for_backward(a, b)
        ctx.use_min = use_min
        return np.minimum(a, b) if use_min else np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        b_wins, a_wins = ((a > b), (a < b)) if ctx.use_min else ((a < b), (a > b))
        share = np.where(a == b, 0.5, 1.0)       # (a NaN: no tie, and neither wins)
        return grad * np.where(b_wins, 0.0, share), grad * np.where(a_wins, 0.0, share)

    @staticmethod
    def backward_graph(ctx, grad):
        share_a, share_b = Extremum.backward(
            ctx, np.ones((), dtype=grad._data.dtype, like=_like(grad._data)))
        return grad * _const(share_a), grad * _const(share_b)

    @staticmethod
    def grad_fn_name(ctx):
        return "MinimumBackward0" if ctx.use_min else "MaximumBackward0"


class Where(Function):
    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.condition = condition
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        zero = np.zeros((), dtype=grad.dtype, like=_like(grad))
        return None, np.where(ctx.condition, grad, zero), np.where(ctx.condition, zero, grad)

    @staticmethod
    def backward_graph(ctx, grad):
        zero = np.zeros((), dtype=grad._data.dtype, like=_like(grad._data))
        return None, Where.apply(ctx.condition, grad, zero), Where.apply(ctx.condition, zero, grad)


class Cast(Function):
    """A dtype conversion; the gradient is converted back by the engine."""

    grad_fn_name = "ToCopyBackward0"

    @staticmethod
    def forward(ctx, a, np_dtype):
        return a.astype(np_dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad

    backward_graph = backward


class Overwrite(Function):
    """`old` with every element replaced by `new` (broadcast): fill_, copy_, normal_... The
    gradient goes to `new`; `old`'s value is gone, so its gradient is zero (as PyTorch)."""

    @staticmethod
    def forward(ctx, old, new):
        ctx.shape = old.shape
        return np.broadcast_to(new, old.shape).astype(old.dtype)

    @staticmethod
    def backward(ctx, grad):
        return np.zeros(ctx.shape, dtype=grad.dtype, like=_like(grad)), grad

    @staticmethod
    def backward_graph(ctx, grad):
        return _const(np.zeros(ctx.shape, dtype=grad._data.dtype, like=_like(grad._data))), grad


class RandomSample(Function):
    """Samples drawn with tensor parameters (``normal(mean, std)``): the result is recorded,
    with zero gradients for the parameters, as PyTorch's NormalBackward."""

    @staticmethod
    def forward(ctx, sample, *parameters):
        ctx.shapes = [np.shape(p) for p in parameters]
        return sample

    @staticmethod
    def backward(ctx, grad):
        return (None, *(np.zeros(shape, dtype=grad.dtype, like=_like(grad))
                        for shape in ctx.shapes))

    @staticmethod
    def backward_graph(ctx, grad):
        return (None, *(_const(np.zeros(shape, dtype=grad._data.dtype, like=_like(grad._data)))
                        for shape in ctx.shapes))


class Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad

    backward_graph = backward


class ToDevice(Function):
    """A copy to another device (``.to(device)``, ``.cuda()``, ``.cpu()``); its gradient goes
    back to the source device."""

    grad_fn_name = "ToCopyBackward0"
    crosses_devices = True  # the one op whose operand and result live apart

    @staticmethod
    def forward(ctx, a, target):
        ctx.source = devices.device_of(a)
        return devices.to_device(a, target)

    @staticmethod
    def backward(ctx, grad):
        return devices.to_device(grad, ctx.source), None


# ---------------------------------------------------------------------------------------------
# Matrix products
# ---------------------------------------------------------------------------------------------


def _products_in_order(a, b):
    """The matrix product of two small 2-D float matrices as PyTorch's CPU build computes it
    (MKL's small-matrix kernel): the k products added in order, each product and each sum
    rounded, starting from +0. BLAS's blocked kernels (NumPy's) fuse and reorder them, which
    changes the last bit of a float32 result often enough that the book's check of a 1x1
    convolution written as a matrix product against the same convolution as a loop of
    products (sum of differences < 1e-6) fails on corrnet's default random draws."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.result_type(a.dtype, b.dtype), like=_like(a))
    for i in range(a.shape[1]):
        out += a[:, i:i + 1] * b[i:i + 1, :]
    return out


class MatMul(Function):
    """`np.matmul` semantics (1-D operands promoted and squeezed, batch dims broadcast)."""

    tensor_arguments = 2

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        ctx.needs = (_needs(ctx, 0), _needs(ctx, 1))
        # where PyTorch's results follow the in-order sum (measured on PyTorch 2.13's CPU
        # build): an inner dimension of at most 16 and at most 2 rows or 8 columns out (one
        # column is a matrix-vector product, which PyTorch sums otherwise); small outputs
        # only, where the k passes cost no more than the BLAS call
        if (a.ndim == b.ndim == 2 and a.shape[1] <= 16 and a.dtype.kind == "f"
                and b.dtype.kind == "f" and 1 < b.shape[1]
                and (a.shape[0] <= 2 or b.shape[1] <= 8)
                and a.shape[0] * b.shape[1] <= 4096):
            return _products_in_order(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        if a.ndim == 1 and b.ndim == 1:  # a dot product: the output is 0-d
            return grad * b, grad * a
        a2 = a[None, :] if a.ndim == 1 else a  # (.., n, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (.., k, m)
        g = grad
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        grad_a = grad_b = None
        if ctx.needs[0]:
            # (.., n, k) = (.., n, m) @ (.., m, k)
            grad_a = np.matmul(g, np.swapaxes(b2, -1, -2))
            grad_a = grad_a[..., 0, :] if a.ndim == 1 else grad_a
        if ctx.needs[1]:
            # (.., k, m) = (.., k, n) @ (.., n, m)
            grad_b = np.matmul(np.swapaxes(a2, -1, -2), g)
            grad_b = grad_b[..., :, 0] if b.ndim == 1 else grad_b
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.saved_tensors  # the same products, recorded
        if a.dim() == 1 and b.dim() == 1:
            return grad * b, grad * a
        a2 = a.unsqueeze(0) if a.dim() == 1 else a
        b2 = b.unsqueeze(1) if b.dim() == 1 else b
        g = grad.unsqueeze(-2) if a.dim() == 1 else grad
        g = g.unsqueeze(-1) if b.dim() == 1 else g
        grad_a = grad_b = None
        if ctx.needs[0]:
            grad_a = MatMul.apply(g, b2.transpose(-1, -2))
            grad_a = grad_a.squeeze(-2) if a.dim() == 1 else grad_a
        if ctx.needs[1]:
            grad_b = MatMul.apply(a2.transpose(-1, -2), g)
            grad_b = grad_b.squeeze(-1) if b.dim() == 1 else grad_b
        return grad_a, grad_b

    @staticmethod
    def grad_fn_name(ctx):
        a, b = ctx.saved_arrays
        if a.ndim == 1 and b.ndim == 1:
            return "DotBackward0"
        if a.ndim == 2 and b.ndim == 2:
            return "MmBackward0"
        if a.ndim == 2 and b.ndim == 1:
            return "MvBackward0"
        return "UnsafeViewBackward0" if a.ndim > 2 and b.ndim <= 2 else "BmmBackward0"


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------


def _expand_reduced(grad, shape, axes, keepdim):
    """Broadcast a reduced gradient back over the reduced axes."""
    if not keepdim and axes is not None:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim, np_dtype):
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        with np.errstate(over="ignore", invalid="ignore"):  # overflow gives inf, as PyTorch
            return _as_array(np.sum(a, axis=axes, keepdims=keepdim, dtype=np_dtype))

    @staticmethod
    def backward(ctx, grad):
        return _expand_reduced(grad, ctx.shape, ctx.axes, ctx.keepdim)

    @staticmethod
    def jvp(ctx, v):
        return _as_array(np.sum(v, axis=ctx.axes, keepdims=ctx.keepdim))

    @staticmethod
    def grad_fn_name(ctx):
        return "SumBackward0" if ctx.axes is None else "SumBackward1"


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        ctx.count = a.size if axes is None else int(np.prod([a.shape[i] for i in axes]))
        if ctx.count == 0:  # the mean of nothing is NaN, silently (as PyTorch)
            shape = np.sum(a, axis=axes, keepdims=keepdim).shape
            return np.full(shape, np.nan, dtype=a.dtype, like=_like(a))
        with np.errstate(over="ignore", invalid="ignore"):
            return _as_array(np.mean(a, axis=axes, keepdims=keepdim)).astype(a.dtype,
                                                                               copy=False)

    @staticmethod
    def backward(ctx, grad):
        with np.errstate(invalid="ignore", divide="ignore"):  # an empty mean: count 0
            return _expand_reduced(grad / ctx.count, ctx.shape, ctx.axes, ctx.keepdim)

    @staticmethod
    def jvp(ctx, v):
        with np.errstate(invalid="ignore", divide="ignore"):
            return _as_array(np.sum(v, axis=ctx.axes, keepdims=ctx.keepdim) / ctx.count)

    @staticmethod
    def grad_fn_name(ctx):
        return "MeanBackward0" if ctx.axes is None else "MeanBackward1"


class Prod(Function):
    """The product over one axis (or all elements). The backward is PyTorch's: ``grad * prod /
    a`` when no element is zero (so an overflowing product gives inf gradients, as there), 0
    everywhere for the product of all elements with two zeros or more, else the product of
    the other elements (exclusive cumulative products from both ends)."""

    @staticmethod
    def forward(ctx, a, axis, keepdim):
        with np.errstate(over="ignore", invalid="ignore"):
            out = _as_array(np.prod(a, axis=axis, keepdims=keepdim))
        ctx.save_for_backward(a, out)
        ctx.axis, ctx.keepdim = axis, keepdim
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        axis = ctx.axis
        if a.ndim == 0:
            return grad
        if axis is not None and not ctx.keepdim:
            grad, out = np.expand_dims(grad, axis), np.expand_dims(out, axis)
        zeros = int(np.count_nonzero(a == 0))
        if axis is None and zeros > 1:
            # (PyTorch's product of all elements: every gradient 0, NaN or inf elsewhere too)
            return np.zeros(a.shape, dtype=grad.dtype, like=_like(grad))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if not zeros:
                return grad * (out / a)
            flat = a.reshape(-1) if axis is None else np.moveaxis(a, axis, -1)
            ones = np.ones(flat.shape[:-1] + (1,), dtype=a.dtype, like=_like(a))
            left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
            right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1),
                               axis=-1)[..., ::-1]
            others = left * right
        if axis is None:
            return grad * others.reshape(a.shape)
        return grad * np.moveaxis(others, -1, axis)


class MaxAll(Function):
    """max() or min() over every element; ties share the gradient equally (as PyTorch)."""

    @staticmethod
    def forward(ctx, a, use_min):
        ctx.use_min = use_min
        out = _as_array(a.min() if use_min else a.max())
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        hits = (a == out) | (np.isnan(a) & np.isnan(out))
        return grad * hits / np.count_nonzero(hits)

    @staticmethod
    def backward_graph(ctx, grad):
        return grad * _const(MaxAll.backward(
            ctx, np.ones((), dtype=grad._data.dtype, like=_like(grad._data))))

    @staticmethod
    def grad_fn_name(ctx):
        return "MinBackward1" if ctx.use_min else "MaxBackward1"


class MaxDim(Function):
    """max(dim) or min(dim) values; the gradient goes to the returned index."""

    @staticmethod
    def forward(ctx, a, axis, keepdim, indices):
        ctx.shape, ctx.axis, ctx.keepdim, ctx.indices = a.shape, axis, keepdim, indices
        values = np.take_along_axis(a, np.expand_dims(indices, axis), axis)
        return values if keepdim else np.squeeze(values, axis)

    @staticmethod
    def backward(ctx, grad):
        g = grad if ctx.keepdim else np.expand_dims(grad, ctx.axis)
        out = np.zeros(ctx.shape, dtype=grad.dtype, like=_like(grad))
        np.put_along_axis(out, np.expand_dims(ctx.indices, ctx.axis), g, ctx.axis)
        return out

    @staticmethod
    def jvp(ctx, v):
        picked = np.take_along_axis(v, np.expand_dims(ctx.indices, ctx.axis), ctx.axis)
        return picked if ctx.keepdim else np.squeeze(picked, ctx.axis)

    grad_fn_name = "MaxBackward0"


class Amax(Function):
    """amax / amin over `axes` (None: all); tied elements share the gradient equally, and a
    NaN maximum gives its row NaN gradients (as PyTorch's amax)."""

    @staticmethod
    def forward(ctx, a, axes, keepdim, use_min):
        out = _as_array((np.min if use_min else np.max)(a, axis=axes, keepdims=keepdim))
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        hits = a == _expand_reduced(out, a.shape, ctx.axes, ctx.keepdim)
        count = np.sum(hits, axis=ctx.axes, keepdims=ctx.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = _expand_reduced(grad / count, a.shape, ctx.axes, ctx.keepdim)
        return share * hits

    @staticmethod
    def jvp(ctx, v):
        a, out = ctx.saved_arrays
        hits = a == _expand_reduced(out, a.shape, ctx.axes, ctx.keepdim)
        count = np.sum(hits, axis=ctx.axes, keepdims=ctx.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(v * hits, axis=ctx.axes, keepdims=ctx.keepdim) / count


def _expand_reduced_graph(grad, shape, axes, keepdim):
    """`_expand_reduced` for a Tensor gradient (recorded)."""
    if not keepdim and axes is not None:
        grad = grad.reshape(np.expand_dims(np.empty(grad.shape, dtype=bool), axes).shape)
    return grad.expand(tuple(shape))


def _sgn(a):
    """sign(a) with sign(NaN) = 0, as ``torch.sgn``."""
    return np.where(np.isnan(a), 0, np.sign(a)) if a.dtype.kind == "f" else np.sign(a)


def _norm_dtype(dtype):
    """The dtype a norm accumulates in: float32 for float16 (as PyTorch), else the input's."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


class Norm(Function):
    """The vector p-norm over `axes` (p = 2: the Frobenius norm; p = 0: the number of nonzero
    elements; p = +-inf: the largest / smallest magnitude). float16 accumulates in float32;
    the norm of a single element is its magnitude, without squares that could overflow
    (unless `powers`: a 0-d input's norm over a dim, which PyTorch sums as any other). The
    backward is ``torch.linalg.vector_norm``'s, case by case."""

    @staticmethod
    def forward(ctx, a, p, axes, keepdim, powers=False):
        acc = a.astype(_norm_dtype(a.dtype), copy=False)
        absolute = np.abs(acc)
        count = a.size if axes is None else math.prod(a.shape[i] for i in axes)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            if p == 0:
                out = np.sum(acc != 0, axis=axes, keepdims=keepdim)
            elif p == np.inf or count == 1 and not powers:   # one element: |a| exactly
                out = np.max(absolute, axis=axes, keepdims=keepdim)
            elif p == -np.inf:
                out = np.min(absolute, axis=axes, keepdims=keepdim)
            elif p == 1:
                out = np.sum(absolute, axis=axes, keepdims=keepdim)
            elif p == 2:
                out = np.sqrt(np.sum(acc * acc, axis=axes, keepdims=keepdim))
            else:
                out = np.sum(absolute**p, axis=axes, keepdims=keepdim) ** (1.0 / p)
        out = _as_array(out).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, out)
        ctx.p, ctx.axes, ctx.keepdim = p, axes, keepdim
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        p, axes, keepdim = ctx.p, ctx.axes, ctx.keepdim
        if p == 0:
            return None  # PyTorch's gradient of the count of nonzeros is undefined: no .grad
        norm = _expand_reduced(out, a.shape, axes, keepdim)
        g = _expand_reduced(grad, a.shape, axes, keepdim)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            if p == 1:
                return _sgn(a) * g
            if p == 2:
                return g * np.where(norm == 0, 0, a / norm)
            if np.isinf(p):  # the elements at the extreme (and NaNs) share the gradient
                absolute = np.abs(a)
                hits = (absolute == norm) | np.isnan(absolute)
                count = np.sum(hits, axis=axes, keepdims=True)
                return _sgn(a) * (_expand_reduced(grad, a.shape, axes, keepdim) / count) * hits
            if p < 1:
                scaled = _sgn(a) * np.where(a == 0, 0, np.abs(a) ** (p - 1))
                return scaled * g * norm ** (1 - p)
            scaled = _sgn(a) * np.abs(a) ** (p - 1) if p < 2 else a * np.abs(a) ** (p - 2)
            return scaled * np.where(norm == 0, 0, g / norm ** (p - 1))

    @staticmethod
    def backward_graph(ctx, grad):
        a, out = ctx.saved_tensors
        a_array, out_array = ctx.saved_arrays
        p, axes, keepdim = ctx.p, ctx.axes, ctx.keepdim
        g = _expand_reduced_graph(grad, a.shape, axes, keepdim)
        if p == 1:
            return g * _const(_sgn(a_array))
        if p != 2:
            raise RuntimeError(f"NormBackward1 of p={p} is not twice differentiable in corrnet "
                               "(p=1 and p=2 are): its gradient cannot be computed with "
                               "create_graph=True")
        norm = _expand_reduced_graph(out, a.shape, axes, keepdim)
        zero = np.broadcast_to(_expand_reduced(out_array, a_array.shape, axes, keepdim) == 0,
                               a_array.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * _where(zero, np.zeros((), dtype=a_array.dtype, like=_like(a_array)),
                              a / norm)

    grad_fn_name = "LinalgVectorNormBackward0"


def _dof(count: int, correction: float) -> float:
    """The variance's divisor in the forward pass, count - correction, or 0 where that is not
    positive (a NaN correction too: PyTorch's max(0, count - correction) keeps the 0)."""
    dof = count - correction
    return dof if dof > 0 else 0


class Variance(Function):
    """var (or, with `root`, std) over `axes` with `correction`: sum((a - mean)**2) / (n -
    correction), accumulated in float64 (as PyTorch), so that a float32 std of |a| ~ 1e19 or
    1e-30 stays finite. (Over all elements PyTorch takes the mean in float32 first, which
    overflows for some |a| ~ 1e38 depending on its summation order; corrnet's float64 mean
    does not.) The backward is PyTorch's var_backward / std_backward, in a's dtype."""

    @staticmethod
    def forward(ctx, a, axes, correction, keepdim, root):
        acc = a.astype(np.float64, copy=False)
        count = a.size if axes is None else math.prod(a.shape[i] for i in axes)
        mean = (np.mean(acc, axis=axes, keepdims=True) if a.size
                else np.full((1,) * a.ndim, np.nan, like=_like(a)))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            centred = acc - mean
            var = np.sum(centred * centred, axis=axes, keepdims=keepdim) / _dof(count,
                                                                                 correction)
            out = _as_array(np.sqrt(var) if root else var).astype(a.dtype)
        ctx.save_for_backward(a, out)
        ctx.mean = mean.astype(a.dtype)
        ctx.axes, ctx.correction, ctx.keepdim, ctx.root, ctx.count = (
            axes, correction, keepdim, root, count)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        # (count - correction itself: a NaN correction gives NaN gradients, as PyTorch)
        dof, mean = ctx.count - ctx.correction, ctx.mean
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if ctx.root:  # std: d sqrt(v) = dv / (2 std), and 0 where std is 0
                grad = np.where(out == 0, 0, grad / (2 * out))
            g = _expand_reduced(grad, a.shape, ctx.axes, ctx.keepdim)
            if ctx.axes is None and dof <= 0:  # 2 / dof is infinite: NaN where a == mean
                return g * np.where(a == mean, np.nan, np.inf)
            scale = float(np.float64(2.0) / dof)  # a Python float: g's dtype is kept
            return scale * g * (a - mean)

    @staticmethod
    def backward_graph(ctx, grad):
        a, out = ctx.saved_tensors
        a_array, out_array = ctx.saved_arrays
        dof = ctx.count - ctx.correction
        if dof <= 0:
            raise RuntimeError("the gradient of a variance with no degrees of freedom is not "
                               "twice differentiable in corrnet (create_graph=True)")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if ctx.root:
                grad = _where(np.broadcast_to(out_array == 0, grad.shape),
                              np.zeros((), dtype=grad._data.dtype, like=_like(grad._data)),
                              grad / (2 * out))
            g = _expand_reduced_graph(grad, a.shape, ctx.axes, ctx.keepdim)
            mean = a.mean(dim=ctx.axes, keepdim=True)
            return float(np.float64(2.0) / dof) * g * (a - mean)

    @staticmethod
    def grad_fn_name(ctx):
        return "StdBackward0" if ctx.root else "VarBackward0"


# ---------------------------------------------------------------------------------------------
# Shape ops (their outputs are views where NumPy gives views)
# ---------------------------------------------------------------------------------------------


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape, torch_name="ViewBackward0"):
        ctx.shape, ctx.torch_name = a.shape, torch_name  # (the name of the PyTorch op used)
        return a.reshape(shape)

    @staticmethod
    def grad_fn_name(ctx):
        return ctx.torch_name

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)

    @staticmethod
    def backward_graph(ctx, grad):
        return grad.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, a, axes, torch_name="PermuteBackward0"):
        ctx.axes, ctx.torch_name = axes, torch_name  # (the name of the PyTorch op used)
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(tuple(int(i) for i in np.argsort(ctx.axes)))

    @staticmethod
    def jvp(ctx, v):
        return v.transpose(ctx.axes)

    @staticmethod
    def grad_fn_name(ctx):
        return ctx.torch_name


class Expand(Function):
    @staticmethod
    def forward(ctx, a, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine sums it back to the input's shape

    backward_graph = backward


class Contiguous(Function):
    grad_fn_name = "CloneBackward0"

    @staticmethod
    def forward(ctx, a):
        return devices.contiguous(a)

    @staticmethod
    def backward(ctx, grad):
        return grad

    backward_graph = backward


class TorchIndex:
    """An index with advanced parts (arrays, masks, bools), applied as PyTorch applies it:
    first the basic part — integers select (their dimensions are gone before any array
    indexes), slices, None — then the arrays at the dimensions they index. NumPy alone would
    treat the integers as arrays too: ``x[0, :, [1, 0]]`` of a (3, 4, 2) array is (2, 4) there
    and (4, 2) in PyTorch."""

    __slots__ = ("basic", "advanced")

    def __init__(self, basic: tuple, advanced: tuple):
        self.basic, self.advanced = basic, advanced

    def get(self, a):
        return a[self.basic][self.advanced]  # a[basic] is a view

    def set(self, a, value) -> None:
        a[self.basic][self.advanced] = value

    def add_at(self, out, grad) -> None:
        np.add.at(out[self.basic], self.advanced, grad)  # an index may repeat: add them


def get_index(a, index):
    return index.get(a) if isinstance(index, TorchIndex) else a[index]


def set_index(a, index, value) -> None:
    if isinstance(index, TorchIndex):
        index.set(a, value)
    else:
        a[index] = value


class GetItem(Function):
    """``a[index]``: a view for a basic index, a copy for a TorchIndex (whose backward adds,
    since an index may repeat)."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index = a.shape, index
        return get_index(a, index)

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype, like=_like(grad))
        if isinstance(ctx.index, TorchIndex):
            ctx.index.add_at(out, grad)
        else:
            out[ctx.index] = grad
        return out

    @staticmethod
    def jvp(ctx, v):
        return get_index(v, ctx.index)

    @staticmethod
    def grad_fn_name(ctx):
        index = ctx.index
        if isinstance(index, TorchIndex) or isinstance(index, np.ndarray):
            return "IndexBackward0"
        items = index if isinstance(index, tuple) else (index,)
        if any(isinstance(i, (list, np.ndarray)) for i in items):
            return "IndexBackward0"
        if any(isinstance(i, (int, np.integer)) for i in items):
            return "SelectBackward0"
        if any(isinstance(i, slice) for i in items):
            return "SliceBackward0"
        return "AliasBackward0"


class SetItem(Function):
    """``a[index] = value`` as an op: the output is `a` with the indexed part replaced.

    Its forward writes into `a` itself (the caller makes the write in-place and rebinds the
    tensor to this node); the backward needs only the index, no saved data.
    """

    @staticmethod
    def forward(ctx, a, value, index):
        ctx.index = index
        set_index(a, index, value)
        return a

    @staticmethod
    def backward(ctx, grad):
        grad_a = grad.copy()
        set_index(grad_a, ctx.index, 0)
        return grad_a, get_index(grad, ctx.index)

    @staticmethod
    def backward_graph(ctx, grad):
        kept = np.ones(grad.shape, dtype=bool, like=_like(grad))
        set_index(kept, ctx.index, False)
        return grad * _const(kept), GetItem.apply(grad, ctx.index)

    grad_fn_name = "CopySlices"


class CopySlices(Function):
    """The base of a view after an in-place op on the view: the old base with the view's
    elements (at flat `positions` of the base) replaced by `value`. The write has already
    happened; this op only records it."""

    @staticmethod
    def forward(ctx, base, value, positions):
        ctx.positions = positions
        return base

    @staticmethod
    def backward(ctx, grad):
        grad_base = grad.copy()
        grad_base.reshape(-1)[ctx.positions] = 0
        return grad_base, grad.reshape(-1)[ctx.positions]

    @staticmethod
    def backward_graph(ctx, grad):
        kept = np.ones(grad.shape, dtype=bool, like=_like(grad))
        kept.reshape(-1)[ctx.positions] = False
        return grad * _const(kept), GetItem.apply(grad.reshape(-1), ctx.positions)


class ViewOfBase(Function):
    """A view re-derived from its base: the base's elements at flat `positions`."""

    @staticmethod
    def forward(ctx, base, positions, view):
        ctx.positions, ctx.base_shape = positions, base.shape
        return view

    @staticmethod
    def backward(ctx, grad):
        grad_base = np.zeros(int(np.prod(ctx.base_shape)), dtype=grad.dtype, like=_like(grad))
        np.add.at(grad_base, ctx.positions.reshape(-1), grad.reshape(-1))  # expand repeats
        return grad_base.reshape(ctx.base_shape)

    @staticmethod
    def jvp(ctx, v):
        return v.reshape(-1)[ctx.positions]


class Repeat(Function):
    """``a.repeat(*counts)`` (NumPy's tile; `a` already has one dimension per count): the
    backward sums the gradient over the copies."""

    @staticmethod
    def forward(ctx, a, counts):
        ctx.shape, ctx.counts = a.shape, counts
        return _tile(a, counts)

    @staticmethod
    def backward(ctx, grad):
        # (c0 * s0, c1 * s1, ...) -> (c0, s0, c1, s1, ...), summed over the copies c_i
        split = [n for pair in zip(ctx.counts, ctx.shape, strict=True) for n in pair]
        return grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))

    @staticmethod
    def jvp(ctx, v):
        return _tile(v, ctx.counts)


def _tile(a, counts):
    """np.tile, without its copies where the result is empty (NumPy repeats one dimension
    at a time: counts (3, 2**31, 0) would first make 3 * 2**31 copies)."""
    shape = tuple(n * c for n, c in zip(a.shape, counts, strict=True))
    if 0 in shape:
        return np.empty(shape, dtype=a.dtype, like=_like(a))
    return np.tile(a, counts)


class Concatenate(Function):
    """Tensors joined along `axis`. Empty 1-D inputs beside tensors of more dimensions take no
    part (PyTorch's legacy rule), and their gradient is empty."""

    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        ndim = max(a.ndim for a in arrays)
        ctx.skipped = [a.ndim == 1 and a.size == 0 and ndim > 1 for a in arrays]
        joined = [a for a, skipped in zip(arrays, ctx.skipped, strict=True) if not skipped]
        # where each input starts (Python ints: split points, not an array for the device)
        ctx.splits = list(itertools.accumulate(a.shape[axis] for a in joined))[:-1]
        return np.concatenate(joined, axis=axis)

    @staticmethod
    def _with_skipped(ctx, pieces, empty):
        pieces = iter(pieces)
        return (None, *(empty() if skipped else next(pieces) for skipped in ctx.skipped))

    @staticmethod
    def backward(ctx, grad):
        return Concatenate._with_skipped(ctx, np.split(grad, ctx.splits, axis=ctx.axis),
                                         lambda: grad.reshape(-1)[:0])

    @staticmethod
    def backward_graph(ctx, grad):
        bounds = [0, *ctx.splits, grad.shape[ctx.axis]]
        before = (slice(None),) * ctx.axis
        return Concatenate._with_skipped(
            ctx, (GetItem.apply(grad, (*before, slice(start, stop)))
                  for start, stop in zip(bounds[:-1], bounds[1:], strict=True)),
            lambda: GetItem.apply(grad.reshape(-1), (slice(0, 0),)))

    grad_fn_name = "CatBackward0"


class Stack(Function):
    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return (None, *np.moveaxis(grad, ctx.axis, 0))

    @staticmethod
    def backward_graph(ctx, grad):
        before = (slice(None),) * ctx.axis
        return (None, *(GetItem.apply(grad, (*before, i)) for i in range(grad.shape[ctx.axis])))


# ---------------------------------------------------------------------------------------------
# Softmax along one axis (numerically stable: the maximum is subtracted first)
# ---------------------------------------------------------------------------------------------


def log_softmax_array(a: np.ndarray, axis: int) -> np.ndarray:
    """log(softmax(a)) along `axis`, in one stable pass: a - max - log(sum(exp(a - max)))."""
    if a.size == 0:
        return a.copy()
    shifted = a - np.max(a, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):  # rows of -inf only give nan, as PyTorch
        shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


class Softmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        if a.size == 0:
            out = a.copy()
        else:
            out = np.exp(a - np.max(a, axis=axis, keepdims=True))
            with np.errstate(invalid="ignore"):
                out /= np.sum(out, axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        # d softmax: out * (g - sum(g * out))
        return out * (grad - np.sum(grad * out, axis=ctx.axis, keepdims=True))

    @staticmethod
    def backward_graph(ctx, grad):
        (out,) = ctx.saved_tensors
        return out * (grad - (grad * out).sum(dim=ctx.axis, keepdim=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        out = log_softmax_array(a, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        # d log_softmax: g - softmax * sum(g)
        return grad - np.exp(out) * np.sum(grad, axis=ctx.axis, keepdims=True)

    @staticmethod
    def backward_graph(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - out.exp() * grad.sum(dim=ctx.axis, keepdim=True)


# ---------------------------------------------------------------------------------------------
# Indexing, sorting and rearranging ops of issue 12 (einsum, sort/topk, gather/scatter, ...)
# ---------------------------------------------------------------------------------------------


def along_axis_index(index: np.ndarray, axis: int) -> tuple:
    """The full index that picks ``a[i0, .., index[i0, .., ik, ..], .., in]`` for every
    position of `index` (PyTorch's gather/scatter addressing): open ranges over `index`'s
    own shape in every dimension but `axis`, so `index` may be smaller than `a` there."""
    grids = []
    for d, n in enumerate(index.shape):
        if d == axis:
            grids.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = n
            grids.append(np.arange(n, like=_like(index)).reshape(shape))  # on index's device
    return tuple(grids)


class Einsum(Function):
    """``einsum`` of operands whose labels are explicit letters (no ``...``; the caller
    expands ellipses and broadcast dimensions): `inputs` one subscript string per operand,
    `output` the result's. The gradient of an operand is the einsum of the output gradient
    with the other operands, broadcast over labels only that operand has and placed on the
    diagonal where the operand repeats a label (``'ii->i'``)."""

    @staticmethod
    def forward(ctx, inputs, output, *arrays):
        ctx.inputs, ctx.output = inputs, output
        ctx.save_for_backward(*arrays)
        equation = ",".join(inputs) + "->" + output
        return _as_array(np.einsum(equation, *arrays, optimize=len(arrays) > 2))

    @staticmethod
    def backward(ctx, grad):
        arrays = ctx.saved_arrays
        sizes = {}
        for subscript, array in zip(ctx.inputs, arrays, strict=True):
            sizes.update(zip(subscript, array.shape, strict=True))
        grads = []
        for k, (subscript, array) in enumerate(zip(ctx.inputs, arrays, strict=True)):
            if not _needs(ctx, k + 2):
                grads.append(None)
                continue
            labels = "".join(dict.fromkeys(subscript))  # unique, in order of appearance
            others = [(s, a) for j, (s, a) in enumerate(zip(ctx.inputs, arrays, strict=True))
                      if j != k]
            available = set(ctx.output).union(*(s for s, _ in others))
            reachable = "".join(c for c in labels if c in available)
            equation = ",".join([ctx.output, *(s for s, _ in others)]) + "->" + reachable
            partial = np.einsum(equation, grad, *(a for _, a in others),
                                optimize=len(others) > 1)
            # broadcast over the labels that only this operand has: (reachable) -> (labels)
            partial = np.expand_dims(partial, tuple(
                i for i, c in enumerate(labels) if c not in available))
            partial = np.broadcast_to(partial, tuple(sizes[c] for c in labels))
            if len(labels) == len(subscript):
                grads.append(partial)
                continue
            # a repeated label: the diagonal
            full = np.zeros(array.shape, dtype=grad.dtype, like=_like(grad))
            # np.ix_ of the labels' ranges, built on grad's device
            grids = tuple(np.arange(sizes[c], like=_like(grad)).reshape(
                [-1 if j == i else 1 for j in range(len(labels))]) for i, c in enumerate(labels))
            full[tuple(grids[labels.index(c)] for c in subscript)] = partial
            grads.append(full)
        return (None, None, *grads)


class TakeAlongAxis(Function):
    """``a``'s elements at `index` along `axis` (gather; the values of sort and topk). The
    backward adds the gradient back at the same places (an index may repeat)."""

    @staticmethod
    def forward(ctx, a, index, axis):
        ctx.shape, ctx.where = a.shape, along_axis_index(index, axis)
        return a[ctx.where]

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype, like=_like(grad))
        np.add.at(out, ctx.where, grad)
        return out

    @staticmethod
    def jvp(ctx, v):
        return v[ctx.where]


class Scatter(Function):
    """``a`` with ``src``'s elements written (or, with `add`, added) at `index` along
    `axis`: ``out[i][index[i][j]] = src[i][j]`` for dim 1. Only the part of `src` of
    `index`'s shape is used. Gradients: to `a` the output gradient (with the overwritten
    places zeroed, unless `add`), to `src` the output gradient gathered at `index`."""

    @staticmethod
    def forward(ctx, a, src, index, axis, add):
        where = along_axis_index(index, axis)
        ctx.where, ctx.add = where, add
        ctx.src_shape = np.shape(src)
        own = tuple(np.arange(n, like=_like(index)).reshape(
                    [n if d == i else 1 for d in range(index.ndim)])
                    for i, n in enumerate(index.shape))
        ctx.src_part = own
        values = src if np.ndim(src) == 0 else src[own]  # (a scalar broadcasts in the writes)
        out = a.copy()
        if add:
            np.add.at(out, where, values)
        else:
            out[where] = values
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_a = grad
        if not ctx.add:
            grad_a = grad.copy()
            grad_a[ctx.where] = 0
        grad_src = None
        if _needs(ctx, 1):
            grad_src = np.zeros(ctx.src_shape, dtype=grad.dtype, like=_like(grad))
            grad_src[ctx.src_part] = grad[ctx.where]
        return grad_a, grad_src


class IndexSelect(Function):
    """The slices of ``a`` at the 1-D `index` along `axis`; the backward adds them back."""

    @staticmethod
    def forward(ctx, a, index, axis):
        ctx.shape, ctx.index, ctx.axis = a.shape, index, axis
        return np.take(a, index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype, like=_like(grad))
        where = (slice(None),) * ctx.axis + (ctx.index,)
        np.add.at(out, where, grad)
        return out

    @staticmethod
    def jvp(ctx, v):
        return np.take(v, ctx.index, axis=ctx.axis)


class MaskedFill(Function):
    """``a`` with `value` (a 0-d array) where `mask` holds (mask broadcast to a's shape)."""

    @staticmethod
    def forward(ctx, a, value, mask):
        ctx.mask = mask
        return np.where(mask, value.astype(a.dtype), a)

    @staticmethod
    def backward(ctx, grad):
        zero = np.zeros((), dtype=grad.dtype, like=_like(grad))
        grad_value = None
        if _needs(ctx, 1):
            grad_value = np.sum(np.where(ctx.mask, grad, zero))
        return np.where(ctx.mask, zero, grad), grad_value

    @staticmethod
    def backward_graph(ctx, grad):
        zero = _const(np.zeros((), dtype=grad._data.dtype, like=_like(grad._data)))
        grad_value = None
        if _needs(ctx, 1):
            grad_value = _where(ctx.mask, grad, zero).sum()
        return _where(ctx.mask, zero, grad), grad_value


class Roll(Function):
    """``np.roll`` by `shifts` along `axes` (None: the flattened tensor, reshaped back)."""

    @staticmethod
    def forward(ctx, a, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        if axes is None:
            return np.roll(a.reshape(-1), shifts).reshape(a.shape)
        return np.roll(a, shifts, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        if ctx.axes is None:
            return np.roll(grad.reshape(-1), back).reshape(grad.shape)
        return np.roll(grad, back, axis=ctx.axes)

    @staticmethod
    def jvp(ctx, v):
        if ctx.axes is None:
            return np.roll(v.reshape(-1), ctx.shifts).reshape(v.shape)
        return np.roll(v, ctx.shifts, axis=ctx.axes)


class Flip(Function):
    """The elements in reverse order along `axes` (a copy, as PyTorch's flip)."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return np.flip(a, axes).copy()

    @staticmethod
    def backward(ctx, grad):
        return np.flip(grad, ctx.axes)

    @staticmethod
    def jvp(ctx, v):
        return np.flip(v, ctx.axes).copy()


class Triangle(Function):
    """The lower (tril) or upper (triu) triangle of the last two dimensions, from the
    `diagonal`-th diagonal; the rest zero. The gradient is the same triangle of the
    output gradient."""

    @staticmethod
    def forward(ctx, a, diagonal, upper):
        ctx.diagonal, ctx.upper = diagonal, upper
        return (np.triu if upper else np.tril)(a, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return (np.triu if ctx.upper else np.tril)(grad, ctx.diagonal)

    jvp = backward  # the same triangle


class Cumsum(Function):
    """The running sum along `axis` (in `np_dtype`); the backward is the running sum of the
    gradient from the other end."""

    @staticmethod
    def forward(ctx, a, axis, np_dtype):
        ctx.axis = axis
        with np.errstate(over="ignore", invalid="ignore"):
            return np.cumsum(a, axis=axis, dtype=np_dtype)

    @staticmethod
    def backward(ctx, grad):
        return np.flip(np.cumsum(np.flip(grad, ctx.axis), axis=ctx.axis), ctx.axis)

    @staticmethod
    def jvp(ctx, v):
        return np.cumsum(v, axis=ctx.axis)


class Cumprod(Function):
    """The running product along `axis` (in `np_dtype`).

    out[j] = a[0] * ... * a[j], so d out[j] / d a[k] (k <= j) is the product of the others.
    Along a slice whose first zero is at z (z = n where it holds none):

    - k < z: sum over k <= j < z of grad[j] * out[j] / a[k] (no zero divides; the terms
      j >= z hold a[z] = 0), a running sum from the far end;
    - k = z: (a[0] * ... * a[z-1]) * sum over j >= z of grad[j] * (a[z+1] * ... * a[j]);
    - k > z: 0 (every term holds a[z])."""

    @staticmethod
    def forward(ctx, a, axis, np_dtype):
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.cumprod(a, axis=axis, dtype=np_dtype)
        ctx.axis = axis
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        if a.size == 0:
            return np.zeros_like(grad)
        axis, n = ctx.axis, a.shape[ctx.axis]
        position = np.arange(n, like=_like(a)).reshape([n if d == axis else 1
                                                         for d in range(a.ndim)])
        zero = a == 0
        has_zero = zero.any(axis=axis, keepdims=True)
        first_zero = np.where(has_zero, zero.argmax(axis=axis, keepdims=True), n)
        before = position < first_zero
        # k < z: the running sum of grad * out from the far end, over j < z, over a[k]
        terms = np.where(before, grad * out, 0)
        tail_sums = np.flip(np.cumsum(np.flip(terms, axis), axis=axis), axis)
        grad_a = np.where(before, tail_sums / np.where(before, a, 1), 0).astype(grad.dtype)
        if np.any(has_zero):
            at_zero = position == first_zero
            # (a[0] * ... * a[z-1]) at z: the running product with a[z] and after it as 1
            leading = np.cumprod(np.where(before, a, 1), axis=axis)
            # a[z+1] * ... * a[j] at each j > z (1 at z)
            following = np.cumprod(np.where(position > first_zero, a, 1), axis=axis)
            tail = np.sum(np.where(position >= first_zero, grad * following, 0), axis=axis,
                          keepdims=True)
            grad_a = np.where(at_zero, leading * tail, grad_a).astype(grad.dtype)
        return grad_a


class Logcumsumexp(Function):
    """The running log(sum(exp(a))) along `axis` (NumPy's logaddexp.accumulate: each step
    log(exp(out) + exp(a)) computed stably). The gradient, as PyTorch's,
    grad_a[j] = sum over k >= j of grad[k] * exp(a[j] - out[k]), is summed in log space,
    its positive and negative parts apart, so that no exp overflows:
    exp(a[j] + logsumexp over k >= j of (log grad[k]+ - out[k])) minus the same of grad-."""

    @staticmethod
    def forward(ctx, a, axis):
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.logaddexp.accumulate(a, axis=axis)
        ctx.axis = axis
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        axis = ctx.axis
        if a.size == 0:
            return np.zeros_like(grad)

        def from_the_end(terms):     # logsumexp over k >= j, at each j
            return np.flip(np.logaddexp.accumulate(np.flip(terms, axis), axis=axis), axis)

        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            positive = np.log(np.where(grad > 0, grad, 0)) - out
            negative = np.log(np.where(grad < 0, -grad, 0)) - out
            return (np.exp(a + from_the_end(positive))
                    - np.exp(a + from_the_end(negative))).astype(grad.dtype)


class Logsumexp(Function):
    """log(sum(exp(a))) over `axes`, stably: the maximum is taken out first (an infinite
    maximum is not, so that -inf rows give -inf and +inf rows +inf). The gradient is
    ``grad * exp(a - out)`` (the softmax)."""

    @staticmethod
    def forward(ctx, a, axes, keepdim):
        if a.size == 0:
            out = np.full(np.sum(a, axis=axes, keepdims=keepdim).shape, -np.inf, dtype=a.dtype,
                          like=_like(a))
        else:
            peak = np.max(a, axis=axes, keepdims=True)
            peak = np.where(np.isfinite(peak), peak, 0)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                total = np.sum(np.exp(a - peak), axis=axes, keepdims=True)
                out = np.log(total) + peak
            if not keepdim:
                out = np.squeeze(out, axis=axes)
            out = _as_array(out).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_arrays
        with np.errstate(over="ignore", invalid="ignore"):
            share = np.exp(a - _expand_reduced(out, a.shape, ctx.axes, ctx.keepdim))
        return _expand_reduced(grad, a.shape, ctx.axes, ctx.keepdim) * share

    @staticmethod
    def backward_graph(ctx, grad):
        a, out = ctx.saved_tensors
        share = (a - _expand_reduced_graph(out, a.shape, ctx.axes, ctx.keepdim)).exp()
        return _expand_reduced_graph(grad, a.shape, ctx.axes, ctx.keepdim) * share


# One class per PyTorch op, so that each records under its own name (SortBackward...).


class Sort(TakeAlongAxis):
    """sort's values: `a` at the sorting indices."""


class Topk(TakeAlongAxis):
    """topk's values: `a` at the indices of the k largest (or smallest)."""


class Gather(TakeAlongAxis):
    """gather: `a` at `index` along `axis`."""


class Cummax(TakeAlongAxis):
    """cummax's values: `a` at the running maximum's indices."""


class Cummin(TakeAlongAxis):
    """cummin's values: `a` at the running minimum's indices."""


class Kthvalue(TakeAlongAxis):
    """kthvalue's values: `a` at the indices of the k-th smallest."""


class Mode(TakeAlongAxis):
    """mode's values: `a` at the indices of the most frequent values."""


class MedianDim(TakeAlongAxis):
    """median(dim)'s values: `a` at the middle's indices."""
    grad_fn_name = "MedianBackward1"


class NanmedianDim(TakeAlongAxis):
    """nanmedian(dim)'s values."""
    grad_fn_name = "NanmedianBackward1"


# median() of an empty integer or bool tensor: PyTorch casts its NaN to the dtype, which on
# x86 gives the lowest int64 or int32, 0 for the smaller types, True for bool
_NAN_AS = {np.dtype(np.bool_).char: True, np.dtype(np.int64).char: np.iinfo(np.int64).min,
           np.dtype(np.int32).char: np.iinfo(np.int32).min,
           **{np.dtype(t).char: 0 for t in (np.int8, np.int16, np.uint8, np.uint16)}}


class MedianAll(MaxAll):
    """median() (or, `ignore_nan`, nanmedian()) of every element: the lower of the two
    middle values (NaN where there is one, for median; of the numbers, for nanmedian);
    equal elements share the gradient equally, as MaxAll's (and PyTorch's)."""

    @staticmethod
    def forward(ctx, a, ignore_nan):
        ctx.ignore_nan = ignore_nan
        ordered = np.sort(a.reshape(-1))        # NaN last
        count = ordered.size - (int(np.count_nonzero(np.isnan(ordered))) if ignore_nan else 0)
        if count == 0:      # (an empty tensor)
            out = _as_array(np.asarray(_NAN_AS.get(a.dtype.char, np.nan), dtype=a.dtype))
        elif not ignore_nan and np.isnan(ordered[-1]):
            out = _as_array(ordered[-1])
        else:
            out = _as_array(ordered[(count - 1) // 2])
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def grad_fn_name(ctx):
        return "NanmedianBackward0" if ctx.ignore_nan else "MedianBackward0"


class Tril(Triangle):
    """The lower triangle (Triangle with upper=False)."""


class Triu(Triangle):
    """The upper triangle (Triangle with upper=True)."""


class ScatterAdd(Scatter):
    """scatter_add (Scatter with add=True)."""
