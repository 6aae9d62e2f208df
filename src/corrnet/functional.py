"""Differentiable convolution, pooling, padding and windows (``corrnet.nn.functional``, ``F``).

Each op checks its arguments (errors name the argument and the shapes), builds the window
geometry once (kernels/windows.py) and hands plain arrays to the kernels. The 1-D ops are the
2-D ones on inputs of height 1: (N, C, L) is viewed as (N, C, 1, L).

Output size along an axis of length L, for a kernel k, stride s, padding p, dilation d:

    convolution, pooling, unfold:  L_out = floor((L + 2p - d*(k - 1) - 1) / s) + 1
    transposed convolution:        L_out = (L - 1)*s - 2p + d*(k - 1) + output_padding + 1
"""

from __future__ import annotations

import functools
import math
import numbers
import weakref

import numpy as np

from . import _args, backend, devices
from ._args import check_bool, check_int
from .autograd import Context, Function, LinearMap, Node, _like, is_grad_enabled
from .io import check_channels_first
from .kernels import activation as activation_kernels
from .kernels import conv as conv_kernels
from .kernels import plan, windows
from .kernels import pool as pool_kernels
from .kernels.windows import (
    Window2d,
    make_window,
    pad_array,
    pad_array_backward,
    without_idle_strides,
)
from .tensor import Tensor, _c_type_name, _wrap, as_tensor, result_type

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "pad", "unfold", "fold",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "max_unpool1d", "max_unpool2d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "corr2d", "convolve2d", "relu", "sigmoid", "tanh",
]


# ---------------------------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1


def _ints(value, n: int, name: str, op: str, minimum: int,
          int32: bool = False, int64: bool = True) -> tuple[int, ...]:
    """An int, or a sequence of 1 or n ints, as an n-tuple of ints >= minimum.

    As PyTorch's argument parser: an int beyond int64 is refused ('Overflow when unpacking
    long long': a ValueError for a bare int, a TypeError inside a tuple); with `int32` (the
    ops whose kernels take C ints: the 2-D pools, transposed convolution) one beyond int32 is
    a RuntimeError. (`int64=False`: no limit, for the sizes computed in Python.)"""
    if _is_int(value):
        values = (int(value),) * n
    elif isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        values = tuple(int(v) for v in value)
    else:
        what = "an int" if n == 1 else f"an int or a tuple of {n} ints"
        raise TypeError(f"{op}: {name} must be {what}, got {value!r}")
    if int64 and values and max(abs(v) for v in values) > INT64_MAX:
        error = ValueError if _is_int(value) else TypeError
        raise error(f"{op}: {name}={value!r}: Overflow when unpacking long long (each value "
                    "must fit in int64)")
    if len(values) not in (1, n):
        raise RuntimeError(f"{op}: expected {name} to be a single integer value or a list of "
                           f"{n} values, got {name}={value!r}")
    values = values * (n // len(values))
    if int32 and max(abs(v) for v in values) > INT32_MAX:
        raise RuntimeError(f"{op}: {name}={value!r}: value cannot be converted to type int "
                           "without overflow (each value must fit in int32)")
    if min(values) < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise RuntimeError(f"{op}: {name} must be {kind}, got {name}={value!r}")
    return values


def _check_dtype(op: str, input, allowed: str, name: str = "input") -> None:
    """NotImplementedError (as PyTorch's kernels) where input's dtype has no kernel for op:
    `allowed` is 'float' (floating point only), 'float+bool', 'float+int64' or 'not bool'
    (nor uint16: PyTorch has no uint16 kernels for convolution or pooling; an integer
    convolution there would wrap around at 65536)."""
    dtype = input.dtype
    ok = {"float": dtype.is_floating_point,
          "float+bool": dtype.is_floating_point or dtype == backend.bool_,
          "float+int64": dtype.is_floating_point or dtype == backend.int64,
          "not bool": dtype not in (backend.bool_, backend.uint16)}[allowed]
    if not ok:
        hint = "; convert it with .float() first" if dtype == backend.uint16 else ""
        raise NotImplementedError(f"{op}: not implemented for {name} of dtype {dtype} "
                                  f"(shape {tuple(input.shape)}){hint}")


def check_allocation(op: str, what: str, shape, dtype, because: str = "") -> None:
    """A clear RuntimeError, before allocating, for an array of `shape` and `dtype` larger
    than this machine's memory (`windows.check_allocation`)."""
    windows.check_allocation(op, what, shape, dtype.itemsize, because)


def _check_padded(op: str, x, window: Window2d, because: str) -> None:
    """A clear error, before allocating, where the padded input (N, C, H_pad, W_pad) that the
    windows reach would not fit in memory (huge padding or dilation)."""
    check_allocation(op, "padded input", (*x.shape[:2], window.padded_height,
                                          window.padded_width), x.dtype, because)


def _lift(values: tuple, filler: int) -> tuple[int, int]:
    """A 1-D parameter as the 2-D one of a height-1 input: (k,) -> (filler, k)."""
    return (filler, values[0]) if len(values) == 1 else values


def _check_input(input, op: str, dims: int, name: str = "input") -> None:
    """input must be a Tensor of shape (N, C, *spatial) or, unbatched, (C, *spatial)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(input).__name__}")
    if input.dim() not in (dims + 1, dims + 2):
        spatial = "L" if dims == 1 else "H, W"
        raise RuntimeError(
            f"{op}: expected {name} to be {dims + 1}-D (C, {spatial}) or {dims + 2}-D "
            f"(N, C, {spatial}), but got {name} of shape {tuple(input.shape)} "
            f"({input.dim()}-D)"
        )


def _check_nonempty(op: str, input: Tensor, batched: bool) -> None:
    """As PyTorch's unfold and fold: only the batch (the first dimension of a batched input)
    may be empty."""
    inner = input.shape[1:] if batched else input.shape
    if 0 in inner:
        raise RuntimeError(f"{op}: expected input with possibly 0 batch size and other "
                           f"non-zero dimensions, got input of shape {tuple(input.shape)}")


def _as_4d(input: Tensor, dims: int) -> tuple[Tensor, bool]:
    """input as (N, C, H, W); say whether it was unbatched."""
    unbatched = input.dim() == dims + 1
    x = input.unsqueeze(0) if unbatched else input
    return (x.unsqueeze(2) if dims == 1 else x), unbatched


def _from_4d(out: Tensor, dims: int, unbatched: bool) -> Tensor:
    """The inverse of `_as_4d` for an (N, C, H_out, W_out) result."""
    if dims == 1:
        out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------------------------


class _Pad(Function):
    @staticmethod
    def forward(ctx, x, pads, mode, value):
        ctx.x_shape, ctx.pads, ctx.mode = x.shape, pads, mode
        return pad_array(x, pads, mode, value)

    @staticmethod
    def backward(ctx, grad):
        return pad_array_backward(grad, ctx.x_shape, ctx.pads, ctx.mode)

    @staticmethod
    def jvp(ctx, v):  # padding is linear in x (constant mode: with zeros)
        return pad_array(v, ctx.pads, ctx.mode, 0)

    @staticmethod
    def grad_fn_name(ctx):
        return {"constant": "ConstantPadNdBackward0", "reflect": "ReflectionPad2DBackward0",
                "replicate": "ReplicationPad2DBackward0"}.get(ctx.mode, "PadBackward0")


def pad(input, pad, mode="constant", value=None):
    """Pad the trailing dimensions of `input`; negative pads crop.

    `pad` lists (before, after) for the last dimension first, then the one before it:
    ``(left, right)``, ``(left, right, top, bottom)``, ... Each padded dimension grows to
    ``size + before + after``. Modes: 'constant' (with `value`, default 0; any number of
    dimensions), 'reflect' (mirror without repeating the edge; pads < size), 'replicate'
    (repeat the edge), 'circular' (wrap around; pads <= size); these three pad the last 1, 2
    or 3 dimensions of a batched or unbatched input.

    >>> F.pad(corrnet.tensor([[1., 2., 3.]]), (2, 1), mode="reflect")
    tensor([[3., 2., 1., 2., 3., 2.]])
    """
    op = "pad"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if value is not None:   # a number (a one-element tensor's value), as PyTorch
        number = value.item() if isinstance(value, Tensor) and value.numel() == 1 else value
        number = number.item() if isinstance(number, np.generic) else number
        if not isinstance(number, numbers.Real):
            raise TypeError(f"{op}: argument 'value' must be a number, not "
                            f"{_args.type_name(value)} ({value!r})")
        value = number
    if not isinstance(pad, (tuple, list)) or not all(_is_int(p) for p in pad):
        raise TypeError(f"{op}: pad must be a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise RuntimeError(f"{op}: pad must have an even length (a before, after pair per "
                           f"dimension), got pad={tuple(pad)} of length {len(pad)}")
    if len(pad) > 2 * input.dim():
        raise RuntimeError(f"{op}: pad={tuple(pad)} pads {len(pad) // 2} dimensions but input "
                           f"of shape {tuple(input.shape)} has only {input.dim()}")
    modes = ("constant", "reflect", "replicate", "circular")
    if mode not in modes:
        raise NotImplementedError(f"{op}: mode must be one of {modes}, got mode={mode!r}")
    count = len(pad) // 2
    # (before, after) per padded dimension, outermost first
    pads = tuple((int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(count)))
    sizes = tuple(input.shape[input.dim() - count:])
    if mode != "constant":
        if value is not None and value != 0:
            raise RuntimeError(f"{op}: mode={mode!r} takes no value (got value={value!r})")
        if not 1 <= count <= 3 or input.dim() not in (count + 1, count + 2):
            raise NotImplementedError(
                f"{op}: mode={mode!r} pads 1, 2 or 3 dimensions of a batched or unbatched "
                f"input: pad={tuple(pad)} pads {count} dimensions, input of shape "
                f"{tuple(input.shape)}")
        # reflect and replicate (as PyTorch): only the batch may be empty
        inner = input.shape[1:] if input.dim() == count + 2 else input.shape
        if mode in ("reflect", "replicate") and 0 in inner:
            raise RuntimeError(
                f"{op}: mode={mode!r} expects a {count + 1}-D or {count + 2}-D (batch mode) "
                f"input with possibly 0 batch size and other non-zero dimensions, but got "
                f"input of shape {tuple(input.shape)}")
        for size, (before, after) in zip(sizes, pads, strict=True):
            _check_pad_fits(mode, size, before, after, input.shape, pad)
        if mode in ("reflect", "replicate"):
            # (PyTorch has no bool or uint16 kernel for these two: pad a uint8 or float copy)
            _check_dtype(f"{op} (mode={mode!r})", input, "not bool")
    out_sizes = [size + before + after for size, (before, after) in zip(sizes, pads, strict=True)]
    # PyTorch's rule: a padded dimension may be cropped away to size 0, but reflect and
    # replicate padding must leave at least one of the padded dimensions non-empty
    # (`pad=()` pads nothing: a copy of the input, as PyTorch)
    if out_sizes and (min(out_sizes) < 0
                      or (mode in ("reflect", "replicate") and max(out_sizes) < 1)):
        raise RuntimeError(f"{op}: pad={tuple(pad)} leaves padded dimensions of sizes "
                           f"{out_sizes} of input shape {tuple(input.shape)}")
    if mode == "constant":
        # constant padding crops first (negative pads), then pads: it can't crop more than
        # the dimension holds, even where the padding would make up for it
        for size, (before, after) in zip(sizes, pads, strict=True):
            if size + min(before, 0) + min(after, 0) < 0:
                raise RuntimeError(f"{op}: pad={tuple(pad)} crops {-min(before, 0)} and "
                                   f"{-min(after, 0)} from a dimension of size {size} (input "
                                   f"shape {tuple(input.shape)}): more than it holds")
    check_allocation(op, "output", (*input.shape[:input.dim() - count], *out_sizes),
                     input.dtype, f"pad={tuple(pad)}")
    fill = 0
    if value is not None and any(after > 0 or before > 0 for before, after in pads):
        fill = _pad_fill(op, value, input.dtype)    # (unused, and unchecked, where none pads)
    return _Pad.apply(input, pads, mode, fill)


def _pad_fill(op: str, value, dtype) -> object:
    """The padding value as PyTorch converts it to the input's dtype where it pads: refused
    where it does not fit (NaN or a value out of an integer dtype's range, a finite float
    beyond a floating one's), truncated toward zero for integers, any number for bool."""
    if dtype == backend.bool_:
        return bool(value)
    if dtype.is_floating_point:
        if math.isfinite(value) and abs(value) > float(np.finfo(dtype.numpy).max):
            raise RuntimeError(f"{op}: value cannot be converted to type "
                               f"{_c_type_name(dtype)} without overflow (got value={value})")
        return value
    info = np.iinfo(dtype.numpy)
    if not (math.isfinite(value) and info.min <= value <= info.max):
        raise RuntimeError(f"{op}: value cannot be converted to type {_c_type_name(dtype)} "
                           f"without overflow (got value={value})")
    return int(value)


def _check_pad_fits(mode, size, before, after, shape, pad) -> None:
    where = f"(pad={tuple(pad)}, input shape {tuple(shape)})"
    if mode == "reflect" and max(before, after) >= size:
        raise RuntimeError(f"pad: reflect padding must be smaller than the padded dimension: "
                           f"got {max(before, after)} for a dimension of size {size} {where}")
    if mode == "circular":
        left = size - max(-before, 0) - max(-after, 0)  # circular padding crops first
        if max(before, after) > left:
            raise RuntimeError(f"pad: circular padding may wrap around at most once: got "
                               f"{max(before, after)} for a dimension of size {left} (after "
                               f"cropping) {where}")


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------


def _in_float32(method):
    """Wrap a convolution Function's forward or backward: float16 arrays are computed in
    float32 and each result rounded to float16 once, as PyTorch does, so that a partial sum
    beyond float16's range (65504) doesn't turn a finite result into inf or NaN. Arrays of
    any device (`devices.ARRAY_TYPES`) are cast where they live."""
    def run(ctx, first, *rest):
        if first.dtype != np.float16:
            return method(ctx, first, *rest)
        arrays = devices.ARRAY_TYPES
        first, *rest = (a.astype(np.float32) if isinstance(a, arrays) else a
                        for a in (first, *rest))
        results = method(ctx, first, *rest)
        with np.errstate(over="ignore"):   # beyond float16's range: inf, as PyTorch
            if isinstance(results, tuple):
                return tuple(None if r is None else r.astype(np.float16) for r in results)
            return results.astype(np.float16)
    return staticmethod(run)


class _Conv2d(Function):
    """Each pass runs on the algorithm the planner (kernels/plan.py) picks for its shape
    (float16 in float32: `_in_float32`)."""

    @staticmethod
    def remember(ctx, x, weight, window, groups) -> None:
        """Save what `backward` reads (a forward pass run elsewhere: `_ConvEpilogue`)."""
        ctx.save_for_backward(x, weight)
        ctx.window, ctx.groups, ctx.col = window, groups, None

    @_in_float32
    def forward(ctx, x, weight, bias, window, groups):
        _Conv2d.remember(ctx, x, weight, window, groups)
        problem = (x.shape, weight.shape, window, groups, x.dtype)
        args = (x, weight, bias, window, groups)
        needs_weight = len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]
        # (on a CUDA device every pass is the planner's: device_conv)
        keep_col = needs_weight and type(x) is np.ndarray and not plan.settings.benchmark \
            and conv_kernels.keeps_windows(
            x.shape, weight.shape, window, x.dtype, plan.settings.memory_budget)
        # im2col's forward keeps its unrolled windows for the weight gradient (not when
        # autotuning, which times each pass on its own). Where that gradient is im2col's
        # while the forward would be direct's, one unrolling serving both is faster (LeNet's
        # second layer forward+backward: 12 ms, against 20 ms with the direct forward and a
        # second unrolling).
        forward = plan.choose("forward", *problem)
        if keep_col and (forward == "gemm" or forward == "direct" and plan.choose(
                "grad_weight", *problem) == "gemm"):
            ctx.col = conv_kernels.unrolled(x, window, groups)             # (G, K, N*L)
            return conv_kernels.conv2d_forward(ctx.col, weight, bias, x.shape[0], window)
        return plan.conv_pass("forward", *problem, *args)

    @_in_float32
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        window, groups = ctx.window, ctx.groups
        problem = (x.shape, weight.shape, window, groups, x.dtype)
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        # the weight gradient first, so that the kept windows are freed before the input
        # gradient unrolls its own (the peak holds one of them, not both)
        if needs_weight and ctx.col is not None:
            grad_weight = conv_kernels.conv2d_grad_weight(grad, ctx.col, weight.shape, window)
        elif needs_weight:
            grad_weight = plan.conv_pass("grad_weight", *problem, grad, x, weight.shape, window,
                                         groups)
        ctx.col = None
        if needs_x:
            grad_x = plan.conv_pass("grad_input", *problem, grad, weight, window, groups, x.shape)
        if needs_bias:
            grad_bias = conv_kernels.conv2d_grad_bias(grad)
        return grad_x, grad_weight, grad_bias

    @staticmethod
    def backward_graph(ctx, grad):
        # the three gradients as recorded ops: conv2d's input gradient is the transposed
        # convolution of grad with the weight, its weight gradient the convolution of the
        # input with grad (_ConvWeightGrad), its bias gradient a sum
        x, weight = _saved_inputs(ctx, "ConvolutionBackward0")
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        return (
            _ConvTranspose2d.apply(grad, weight, None, ctx.window, ctx.groups, tuple(x.shape))
            if needs_x else None,
            _ConvWeightGrad.apply(grad, x, tuple(weight.shape), ctx.window, ctx.groups)
            if needs_weight else None,
            grad.sum(dim=(0, 2, 3)) if needs_bias else None)

    grad_fn_name = "ConvolutionBackward0"
    tensor_arguments = 3  # input, weight, bias


def _saved_inputs(ctx, name: str):
    """A convolution's saved (x, weight) as Tensors of the graph (create_graph); float16,
    computed on float32 copies, is not twice differentiable here."""
    if ctx.saved_arrays[0].dtype == np.float16 or None in ctx._saved_owners:
        raise RuntimeError(f"{name} of float16 tensors is not twice differentiable in corrnet "
                           "(create_graph=True); use float32 or float64")
    return ctx.saved_tensors


class _ConvWeightGrad(Function):
    """conv2d's weight gradient as an op of (grad, x), for a differentiable backward: both
    arguments enter linearly, so its gradients are a convolution and a transposed one."""

    @_in_float32
    def forward(ctx, grad, x, weight_shape, window, groups):
        ctx.save_for_backward(grad, x)
        ctx.window, ctx.groups, ctx.weight_shape = window, groups, weight_shape
        return plan.conv_pass("grad_weight", x.shape, weight_shape, window, groups, x.dtype,
                              grad, x, weight_shape, window, groups)

    @_in_float32
    def backward(ctx, grad_weight):
        grad, x = ctx.saved_arrays
        problem = (x.shape, ctx.weight_shape, ctx.window, ctx.groups, x.dtype)
        needs_grad, needs_x = (ctx.needs_input_grad + (False, False))[:2]
        return (plan.conv_pass("forward", *problem, x, grad_weight, None, ctx.window,
                               ctx.groups) if needs_grad else None,
                plan.conv_pass("grad_input", *problem, grad, grad_weight, ctx.window,
                               ctx.groups, x.shape) if needs_x else None)

    @staticmethod
    def backward_graph(ctx, grad_weight):
        grad, x = _saved_inputs(ctx, "ConvolutionBackwardBackward0")
        needs_grad, needs_x = (ctx.needs_input_grad + (False, False))[:2]
        return (_Conv2d.apply(x, grad_weight, None, ctx.window, ctx.groups)
                if needs_grad else None,
                _ConvTranspose2d.apply(grad, grad_weight, None, ctx.window, ctx.groups,
                                       tuple(x.shape)) if needs_x else None)

    grad_fn_name = "ConvolutionBackwardBackward0"


class _Empty(Function):
    """An output of zeros of the given shape that depends on its inputs, whose gradients are
    zeros: an empty convolution's (as PyTorch's), or one whose windows read padding only."""

    @staticmethod
    def forward(ctx, x, weight, bias, shape, bias_only=False):
        ctx.arrays, ctx.bias_only = (x, weight, bias), bias_only
        try:
            out = np.zeros(shape, dtype=x.dtype, like=_like(x))
        except ValueError:   # NumPy's "array is too big": its other dimensions overflow int64
            raise RuntimeError(f"convolution: the output would have shape {tuple(shape)}: "
                               "even with no elements, NumPy cannot make an array whose other "
                               "dimensions multiply beyond int64 (PyTorch can); check the "
                               "stride, padding and dilation") from None
        if bias_only and bias is not None:  # (filled in place: the output may be huge)
            out[...] = bias.reshape(1, -1, 1, 1)
        return out

    @staticmethod
    def backward(ctx, grad):
        grads = [None if a is None else np.zeros_like(a) for a in ctx.arrays]
        if ctx.bias_only and grads[2] is not None:
            grads[2] = grad.sum(axis=(0, 2, 3))
        return tuple(grads)

    @staticmethod
    def backward_graph(ctx, grad):
        return tuple(None if a is None else _wrap(np.zeros_like(a)) for a in ctx.arrays)

    grad_fn_name = "ConvolutionBackward0"


class _ConvTranspose2d(Function):
    """The adjoint of convolution: its forward is conv2d's input gradient, and the other way
    round. `window` is the convolution from this op's output back to its input."""

    @_in_float32
    def forward(ctx, x, weight, bias, window, groups, out_shape, half=False):
        ctx.save_for_backward(x, weight)
        ctx.window, ctx.groups = window, groups
        if half:
            out = _half_conv_transpose(x, weight, window, groups, out_shape)
        else:
            out = plan.conv_pass("grad_input", out_shape, weight.shape, window, groups,
                                 x.dtype, x, weight, window, groups, out_shape)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        return out

    @_in_float32
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        window, groups = ctx.window, ctx.groups
        # the convolution this op is the adjoint of: input `grad`, output `x`
        problem = (grad.shape, weight.shape, window, groups, grad.dtype)
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        if needs_x:
            grad_x = plan.conv_pass("forward", *problem, grad, weight, None, window, groups)
        if needs_weight:
            grad_weight = plan.conv_pass("grad_weight", *problem, x, grad, weight.shape, window,
                                         groups)
        if needs_bias:
            grad_bias = conv_kernels.conv2d_grad_bias(grad)
        return grad_x, grad_weight, grad_bias

    @staticmethod
    def backward_graph(ctx, grad):
        # the adjoint's gradients: a convolution of grad with the weight, and the weight
        # gradient of the convolution from grad (its input) to x (its output gradient)
        x, weight = _saved_inputs(ctx, "ConvolutionBackward0")
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        return (_Conv2d.apply(grad, weight, None, ctx.window, ctx.groups) if needs_x else None,
                _ConvWeightGrad.apply(x, grad, tuple(weight.shape), ctx.window, ctx.groups)
                if needs_weight else None,
                grad.sum(dim=(0, 2, 3)) if needs_bias else None)

    grad_fn_name = "ConvolutionBackward0"


def _half_conv_transpose(x, weight, window: Window2d, groups: int, out_shape) -> np.ndarray:
    """A float16 transposed convolution (arrays in float32) as PyTorch computes it: each
    input cell's contribution to each output cell (its sum over the input channels, in
    float32) is rounded to float16, and the contributions are added in float16, kernel cell
    by kernel cell, so that one beyond 65504 is inf and inf - inf is NaN, as in PyTorch
    (where float32 throughout would give a finite value). One image at a time: (C_out*kh*kw,
    H*W) columns."""
    n, c_in, height, width = x.shape
    _, c_out_group, kh, kw = weight.shape
    c_in_group = c_in // groups
    # (G, C_out/G*kh*kw, C_in/G)
    weight_columns = weight.reshape(groups, c_in_group, c_out_group * kh * kw).transpose(0, 2, 1)
    out = np.empty(out_shape, dtype=np.float32)
    for image in range(n):
        rows = x[image].reshape(groups, c_in_group, height * width)       # (G, C_in/G, H*W)
        col = np.matmul(weight_columns, rows)                     # (G, C_out/G*kh*kw, H*W)
        with np.errstate(over="ignore", invalid="ignore"):   # added in float16, in order
            out[image:image + 1] = conv_kernels.fold(
                col.astype(np.float16).reshape(1, -1, height * width), window,
                (1, *out_shape[1:]))
    return out


def _check_weight(op, weight, bias, x, input_shape, dims, groups, transposed):
    """Check weight, bias and groups against the (4-D) input x; return groups as an int."""
    layout = "C_in, C_out/groups" if transposed else "C_out, C_in/groups"
    kernel = "k" if dims == 1 else "kh, kw"
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.dim() != dims + 2:
        raise RuntimeError(f"{op}: expected weight to be {dims + 2}-D ({layout}, {kernel}), but "
                           f"got weight of shape {tuple(weight.shape)}")
    if not _is_int(groups) or groups < 1:
        raise RuntimeError(f"{op}: groups must be a positive integer, got groups={groups!r}")
    # empty weights (as PyTorch): at least one filter per group, no empty kernel axis, and
    # a transposed convolution needs output channels
    if weight.shape[0] < groups:
        raise RuntimeError(f"{op}: groups={groups} needs weight.shape[0] >= {groups}, got "
                           f"weight of shape {tuple(weight.shape)}")
    if min(weight.shape[2:]) < 1:
        raise RuntimeError(f"{op}: kernel size must be greater than zero, got weight of shape "
                           f"{tuple(weight.shape)}")
    if transposed and weight.shape[1] == 0:
        raise RuntimeError(f"{op}: weight of shape {tuple(weight.shape)} has no output "
                           "channels (weight.shape[1] = C_out/groups must be positive)")
    # an empty image is only accepted in an empty batch or without channels (as PyTorch)
    if min(x.shape[2:]) == 0 and x.shape[0] > 0 and x.shape[1] > 0:
        raise RuntimeError(f"{op}: input of shape {tuple(input_shape)} has an empty spatial "
                           "dimension: only an empty batch or zero channels are supported")
    c_in = x.shape[1]
    if transposed:
        if weight.shape[0] != c_in:
            raise RuntimeError(f"{op}: input has {c_in} channels (input shape "
                               f"{tuple(input_shape)}) but weight of shape "
                               f"{tuple(weight.shape)} expects {weight.shape[0]} "
                               f"(weight.shape[0] = C_in)")
        if c_in % groups:
            raise RuntimeError(f"{op}: in channels {c_in} must be divisible by groups={groups}")
        c_out = weight.shape[1] * groups
    else:
        c_out, c_group = weight.shape[:2]
        if c_group * groups != c_in:
            raise RuntimeError(
                f"{op}: input has {c_in} channels (input shape {tuple(input_shape)}) but weight "
                f"of shape {tuple(weight.shape)} expects {c_group * groups} "
                f"(weight.shape[1]={c_group} x groups={groups})")
        if c_out % groups:
            raise RuntimeError(f"{op}: out channels {c_out} (weight shape "
                               f"{tuple(weight.shape)}) must be divisible by groups={groups}")
    if bias is not None:
        if not isinstance(bias, Tensor) or tuple(bias.shape) != (c_out,):
            shape = tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__
            raise RuntimeError(f"{op}: expected bias of shape ({c_out},) to match weight "
                               f"{tuple(weight.shape)}, got {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        # (PyTorch checks the bias first, and returns an empty input's empty output before
        # it compares the weight's dtype: in the dtype of the two promoted)
        if t is not None and t.dtype != x.dtype and (x.numel() or name == "bias"):
            raise RuntimeError(f"{op}: input ({x.dtype}) and {name} ({t.dtype}) must have the "
                               "same dtype")
    return int(groups)


def _same_padding(kernel, dilation, stride, op):
    """((before, after), ...) for padding='same': the odd one goes at the end."""
    if any(s != 1 for s in stride):
        raise RuntimeError(f"{op}: padding='same' is not supported for strided convolutions "
                         f"(stride={stride})")
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                 for k, d in zip(kernel, dilation, strict=True))


# The windows of the convolutions whose arguments passed every check of `_conv` and took its
# common path, by `_checked_key`: a layer called again on batches of the same shape skips its
# checks (27 of the 58 microseconds of a call of F.conv2d on a (1, 6, 14, 14) input; LeNet's
# second layer forward, batch 256, takes 0.8 ms). At most CHECKED_MAX of them; then forgotten.
_CHECKED: dict = {}
CHECKED_MAX = 512


def _plain(value) -> bool:
    """An int or a tuple of ints, by type (not a bool, which hashes as 1 but fails the checks;
    not a list, which does not hash): arguments whose checks a key can stand for."""
    return type(value) is int or (type(value) is tuple and all(type(v) is int for v in value))


def _checked_key(op, dims, input, weight, bias, stride, padding, dilation, groups):
    """The key of `_CHECKED`: everything `_conv`'s checks read (the shapes and dtypes, the
    arguments themselves), or None where an argument is of a kind a key cannot stand for."""
    if not (isinstance(input, Tensor) and isinstance(weight, Tensor)
            and (bias is None or isinstance(bias, Tensor)) and type(groups) is int
            and _plain(stride) and _plain(dilation)
            and (_plain(padding) or type(padding) is str and padding in ("valid", "same"))):
        return None
    return (op, dims, input.shape, input.dtype, weight.shape, weight.dtype,
            None if bias is None else (bias.shape, bias.dtype), stride, padding, dilation,
            groups)


def _conv(op, dims, input, weight, bias, stride, padding, dilation, groups, apply=None):
    """conv1d/conv2d: the checks, the window, then the op; `apply(x, weight, bias, window,
    groups)` in place of `_Conv2d.apply` on the common path (a fused epilogue, see
    `fused_conv2d`). Arguments that passed the checks before skip them (`_CHECKED`)."""
    key = _checked_key(op, dims, input, weight, bias, stride, padding, dilation, groups)
    window = _CHECKED.get(key) if key is not None else None
    if window is not None:
        x, unbatched = _as_4d(input, dims)
        weight = weight.unsqueeze(2) if dims == 1 else weight
        return _from_4d((apply or _Conv2d.apply)(x, weight, bias, window, groups), dims,
                        unbatched)
    _check_input(input, op, dims)
    x, unbatched = _as_4d(input, dims)
    groups = _check_weight(op, weight, bias, x, input.shape, dims, groups, transposed=False)
    stride = _ints(stride, dims, "stride", op, minimum=1)
    # (PyTorch takes a dilation of 0 for an empty input: its output size is computed only)
    dilation = _ints(dilation, dims, "dilation", op, minimum=0 if x.numel() == 0 else 1)
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise RuntimeError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got "
                             f"{padding!r}")
        pads = (((0, 0),) * dims if padding == "valid"
                else _same_padding(kernel, dilation, stride, op))
    else:
        pads = tuple((p, p) for p in _ints(padding, dims, "padding", op, minimum=0))
    if dims == 1:
        weight = weight.unsqueeze(2)
        kernel, pads = (1, *kernel), ((0, 0), *pads)
    window = make_window(op, x.shape[2], x.shape[3], kernel, _lift(stride, 1), pads,
                         _lift(dilation, 1))
    # (PyTorch, by its kernels: no bool; a dilated convolution takes floats or int64 only)
    _check_dtype(op, x, "not bool" if set(dilation) == {1} else "float+int64")
    if x.numel() == 0:
        # an empty batch, or no input channels: then PyTorch returns an empty
        # (N, 0, H_out, W_out) output (not C_out channels of bias); zero gradients
        channels = 0 if x.shape[1] == 0 else weight.shape[0]
        if weight.dtype != x.dtype:
            x = x.to(result_type(x, weight))
        out = _Empty.apply(x, weight, bias,
                           (x.shape[0], channels, window.out_height, window.out_width))
        return _from_4d(out, dims, unbatched)
    because = f"stride={stride}, padding={padding}, dilation={dilation}"
    out_shape = (x.shape[0], weight.shape[0], window.out_height, window.out_width)
    check_allocation(op, "output", out_shape, x.dtype, because)
    crops = _crops(window, weight)
    if crops is not None:
        return _from_4d(_cropped_conv(op, x, weight, bias, window, groups, crops, because),
                        dims, unbatched)
    _check_padded(op, x, window, because)
    if key is not None and _crop_paying(window) is None:   # (not where weights decided)
        if len(_CHECKED) >= CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[key] = window
    out = (apply or _Conv2d.apply)(x, weight, bias, window, groups)
    return _from_4d(out, dims, unbatched)


# A convolution is cut down to the part that meets its input (`_cropped_conv`) where that
# part's padded input is less than 1/CROP_GAIN of the whole one, and the whole one has more
# than CROP_FROM cells: huge padding, stride or dilation, never the common layers.
CROP_GAIN, CROP_FROM = 4, 2**16


def _crops(window: Window2d, weight: Tensor | None = None):
    """(rows, columns): `windows.useful_crop` along each axis (None where nothing meets the
    input) where cropping pays (CROP_GAIN, CROP_FROM); else None. Never for a convolution
    whose `weight` has a NaN or an inf: PyTorch multiplies every kernel cell with the padding
    it reads, and inf * 0 is NaN there, not the bias."""
    crops = _crop_paying(window)
    if crops is None:
        return None
    # (on a device: one boolean read back, only where cropping would pay)
    if weight is not None and not bool(np.isfinite(weight._data).all()):
        return None
    return crops


def _crop_paying(window: Window2d):
    """`_crops` by the geometry alone: the crops where cropping pays, else None."""
    whole = window.padded_height * window.padded_width
    if whole <= CROP_FROM:
        return None
    crops = tuple(windows.useful_crop(size, pads[0], k, s, d, out) for size, pads, k, s, d, out
                  in zip((window.height, window.width), window.padding, window.kernel,
                         window.stride, window.dilation, (window.out_height, window.out_width),
                         strict=True))
    if None not in crops:
        part = np.prod([c.end_in - c.first_in + c.before + c.after for c in crops])
        if CROP_GAIN * part >= whole:
            return None
    return crops


def _cropped_conv(op, x, weight, bias, window: Window2d, groups: int, crops, because):
    """The convolution of (4-D) x computed on the kernel cells, output positions and input
    cells that can meet (`_crops`); the other outputs are the bias (their windows read
    padding only), and the cut-off weights and inputs get zero gradients."""
    out_shape = (x.shape[0], weight.shape[0], window.out_height, window.out_width)
    if None in crops:         # no window meets the input: the bias alone
        return _Empty.apply(x, weight, bias, out_shape, True)
    rows, cols = crops
    part = make_window(op, rows.end_in - rows.first_in, cols.end_in - cols.first_in,
                       (rows.end_tap - rows.first_tap, cols.end_tap - cols.first_tap),
                       window.stride, ((rows.before, rows.after), (cols.before, cols.after)),
                       window.dilation)
    x_part = x[:, :, rows.first_in:rows.end_in, cols.first_in:cols.end_in]
    _check_padded(op, x_part, part, because)
    out_part = _Conv2d.apply(
        x_part, weight[:, :, rows.first_tap:rows.end_tap, cols.first_tap:cols.end_tap],
        None, part, groups)
    # one allocation of the (large) output: bias everywhere, plus the computed part
    return _Place.apply(out_part, bias, out_shape, (rows.first_out, cols.first_out))


class _Place(Function):
    """`part` (N, C, h, w) added at (row, column) `offsets` into an output of `shape` whose
    cells hold the bias (C,) (or zeros): a cropped convolution's output, built in place."""

    @staticmethod
    def forward(ctx, part, bias, shape, offsets):
        ctx.region = (slice(None), slice(None)) + tuple(
            slice(start, start + size) for start, size in zip(offsets, part.shape[2:],
                                                              strict=True))
        out = np.zeros(shape, dtype=part.dtype, like=_like(part))
        if bias is not None:
            out[...] = bias.reshape(1, -1, 1, 1)
        out[ctx.region] += part
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_bias = grad.sum(axis=(0, 2, 3)) if ctx.needs_input_grad[1] else None
        return grad[ctx.region], grad_bias


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of a batch of images with a bank of filters.

    input (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in/groups, kh, kw); bias (C_out,).
    Output (N, C_out, H_out, W_out) with, along each axis,

        H_out = floor((H + 2*padding - dilation*(kh - 1) - 1) / stride) + 1

    `padding` may also be 'valid' (0) or 'same' (output size = input size, stride 1; for an
    even kernel the extra row/column of padding goes at the bottom/right). `groups` splits the
    channels into independent convolutions (groups == C_in: depthwise).

    >>> x = corrnet.arange(9.).reshape(1, 1, 3, 3)
    >>> F.conv2d(x, corrnet.tensor([[[[0., 1.], [2., 3.]]]]))
    tensor([[[[19., 25.],
              [37., 43.]]]])
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation of a batch of sequences with a bank of filters.

    input (N, C_in, L) or (C_in, L); weight (C_out, C_in/groups, k); output (N, C_out, L_out),

        L_out = floor((L + 2*padding - dilation*(k - 1) - 1) / stride) + 1

    >>> F.conv1d(corrnet.tensor([[[1., 2., 3., 4.]]]), corrnet.tensor([[[1., -1.]]]))
    tensor([[[-1., -1., -1.]]])
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(op, dims, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    _check_input(input, op, dims)
    x, unbatched = _as_4d(input, dims)
    groups = _check_weight(op, weight, bias, x, input.shape, dims, groups, transposed=True)
    if isinstance(padding, str):
        raise TypeError(f"{op}: padding must be an int or a tuple of ints, got {padding!r} "
                        "(transposed convolutions take no 'same' or 'valid')")
    # (PyTorch's transposed convolution takes C ints: a value beyond int32 is refused)
    stride = _ints(stride, dims, "stride", op, minimum=1, int32=True)
    padding = _ints(padding, dims, "padding", op, minimum=0, int32=True)
    dilation = _ints(dilation, dims, "dilation", op, minimum=0 if x.numel() == 0 else 1,
                     int32=True)
    output_padding = _ints(output_padding, dims, "output_padding", op, minimum=0, int32=True)
    for o, s, d in zip(output_padding, stride, dilation, strict=True):
        # (PyTorch checks it for a non-empty input only: an empty batch takes any size)
        if o >= s and o >= d and x.numel() > 0:
            raise RuntimeError(f"{op}: output_padding must be smaller than either stride or "
                               f"dilation, got output_padding={output_padding}, "
                               f"stride={stride}, dilation={dilation}")
    kernel = tuple(weight.shape[2:])
    sizes = tuple(x.shape[4 - dims:])
    outs = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in zip(
        sizes, stride, padding, dilation, kernel, output_padding, strict=True))
    # (an output of size 0 along an axis is empty, as in PyTorch; a negative one is refused)
    if min(outs) < 0:
        raise RuntimeError(f"{op}: output size would be {outs} for input of shape "
                           f"{tuple(input.shape)} (kernel {kernel}, stride {stride}, padding "
                           f"{padding}, dilation {dilation}): output size is too small")
    if dims == 1:
        weight = weight.unsqueeze(2)
        kernel, outs, padding = (1, *kernel), (1, *outs), (0, *padding)
    # the convolution that maps this op's output (out_h, out_w) back to its input (H, W)
    window = without_idle_strides(Window2d(
        outs[0], outs[1], kernel, _lift(stride, 1),
        ((padding[0], padding[0]), (padding[1], padding[1])), _lift(dilation, 1),
        x.shape[2], x.shape[3]))
    out_shape = (x.shape[0], weight.shape[1] * groups, *outs)
    because = (f"stride={stride}, padding={padding}, output_padding={output_padding}, "
               f"dilation={dilation}")
    check_allocation(op, "output", out_shape, x.dtype, because)
    # (the padded output that the windows of the adjoint convolution reach)
    check_allocation(op, "padded output", (*out_shape[:2], window.padded_height,
                                           window.padded_width), x.dtype, because)
    _check_dtype(op, x, "float+int64")   # (PyTorch: after the arguments, by its kernel)
    if x.numel() == 0 or 0 in out_shape:   # an empty batch: an empty output
        return _from_4d(_Empty.apply(x, weight, bias, out_shape), dims, unbatched)
    # (float16 added in float16 kernel cell by kernel cell, as PyTorch's CPU kernel, on the
    # CPU; on a CUDA device in float32 and rounded once, as PyTorch's CUDA kernels)
    out = _ConvTranspose2d.apply(x, weight, bias, window, groups, out_shape,
                                 x.dtype == backend.float16 and not x.is_cuda)
    return _from_4d(out, dims, unbatched)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input).

    input (N, C_in, H, W) or (C_in, H, W); weight (C_in, C_out/groups, kh, kw); bias (C_out,).
    Output (N, C_out, H_out, W_out) with, along each axis,

        H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1

    output_padding (smaller than stride or dilation) picks among the sizes that a strided
    conv2d maps to the same H.

    >>> F.conv_transpose2d(corrnet.ones(1, 1, 2, 2), corrnet.ones(1, 1, 2, 2), stride=2)
    tensor([[[[1., 1., 1., 1.],
              [1., 1., 1., 1.],
              [1., 1., 1., 1.],
              [1., 1., 1., 1.]]]])
    """
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 1-D convolution: input (N, C_in, L), weight (C_in, C_out/groups, k),

        L_out = (L - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1

    >>> F.conv_transpose1d(corrnet.tensor([[[1., 2.]]]), corrnet.tensor([[[1., 1., 1.]]]))
    tensor([[[1., 3., 3., 2.]]])
    """
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


# ---------------------------------------------------------------------------------------------
# windows as data: unfold (im2col) and fold (col2im)
# ---------------------------------------------------------------------------------------------


class _Unfold(Function):
    @staticmethod
    def forward(ctx, x, window):
        ctx.window, ctx.x_shape = window, x.shape
        return plan.window_kernels(x).unfold(x, window)

    @staticmethod
    def backward(ctx, grad):
        return plan.window_kernels(grad).fold(grad, ctx.window, ctx.x_shape)

    @staticmethod
    def jvp(ctx, v):
        return plan.window_kernels(v).unfold(v, ctx.window)

    grad_fn_name = "Im2ColBackward0"


class _Fold(Function):
    @staticmethod
    def forward(ctx, col, window, out_shape):
        ctx.window, ctx.out_shape = window, out_shape
        return plan.window_kernels(col).fold(col, window, out_shape)

    @staticmethod
    def backward(ctx, grad):
        return plan.window_kernels(grad).unfold(grad, ctx.window)

    @staticmethod
    def jvp(ctx, v):
        return plan.window_kernels(v).fold(v, ctx.window, ctx.out_shape)

    grad_fn_name = "Col2ImBackward0"


def _window_args(op, kernel_size, dilation, padding, stride):
    # unfold and fold take an int or exactly a pair (no 1-tuple, unlike conv and pooling)
    for name, value in (("kernel_size", kernel_size), ("dilation", dilation),
                        ("padding", padding), ("stride", stride)):
        if isinstance(value, (tuple, list)) and len(value) != 2:
            raise RuntimeError(f"{op}: {name} must be an int or a pair, got {name}={value!r} "
                               f"of length {len(value)}")
    # (PyTorch passes an int on as a pair: beyond int64 it is a TypeError, as in a tuple)
    kernel_size, dilation, padding, stride = (
        (v, v) if _is_int(v) else v for v in (kernel_size, dilation, padding, stride))
    kernel = _ints(kernel_size, 2, "kernel_size", op, minimum=1)
    dilation = _ints(dilation, 2, "dilation", op, minimum=1)
    padding = _ints(padding, 2, "padding", op, minimum=0)
    stride = _ints(stride, 2, "stride", op, minimum=1)
    return kernel, dilation, ((padding[0], padding[0]), (padding[1], padding[1])), stride


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Every sliding window as a column (im2col): (N, C, H, W) -> (N, C*kh*kw, L).

    L = H_out * W_out windows, with H_out = floor((H + 2*padding - dilation*(kh-1) - 1) /
    stride) + 1 (and W_out alike); column l holds window l, channel by channel, row by row.

    >>> F.unfold(corrnet.arange(9.).reshape(1, 1, 3, 3), 2)
    tensor([[[0., 1., 3., 4.],
             [1., 2., 4., 5.],
             [3., 4., 6., 7.],
             [4., 5., 7., 8.]]])
    """
    op = "unfold"
    _check_input(input, op, 2)
    _check_nonempty(op, input, batched=input.dim() == 4)
    x, unbatched = _as_4d(input, 2)
    kernel, dilation, pads, stride = _window_args(op, kernel_size, dilation, padding, stride)
    window = make_window(op, x.shape[2], x.shape[3], kernel, stride, pads, dilation)
    because = f"kernel_size={kernel_size}, dilation={dilation}, padding={padding}"
    check_allocation(op, "output", (x.shape[0], x.shape[1] * kernel[0] * kernel[1],
                                    window.out_height * window.out_width), x.dtype, because)
    _check_dtype(op, input, "float+bool")
    crops = _crops(window)
    if crops is None:
        _check_padded(op, x, window, because)
        out = _Unfold.apply(x, window)
    else:
        out = _cropped_unfold(op, x, window, crops, because)
    return out.squeeze(0) if unbatched else out


def _cropped_unfold(op, x, window: Window2d, crops, because):
    """unfold of (4-D) x computed on the kernel cells, windows and input cells that can meet
    (`_crops`: huge padding, stride or dilation); the other entries read padding: zeros."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = window.kernel, (window.out_height, window.out_width)
    if None in crops:        # no window meets the input: all padding
        return _Empty.apply(x, None, None, (n, c * kh * kw, oh * ow))
    rows, cols = crops
    taps = (rows.end_tap - rows.first_tap, cols.end_tap - cols.first_tap)
    part = make_window(op, rows.end_in - rows.first_in, cols.end_in - cols.first_in, taps,
                       window.stride, ((rows.before, rows.after), (cols.before, cols.after)),
                       window.dilation)
    x_part = x[:, :, rows.first_in:rows.end_in, cols.first_in:cols.end_in]
    _check_padded(op, x_part, part, because)
    col = _Unfold.apply(x_part, part).reshape(n, c, *taps, part.out_height, part.out_width)
    # (N, C, kh', kw', oh', ow') -> (N, C, kh, kw, oh, ow): zeros for the cut-off cells
    col = _Pad.apply(col, ((rows.first_tap, kh - rows.end_tap),
                           (cols.first_tap, kw - cols.end_tap),
                           (rows.first_out, oh - rows.end_out),
                           (cols.first_out, ow - cols.end_out)), "constant", 0)
    return col.reshape(n, c * kh * kw, oh * ow)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The inverse layout of `unfold` (col2im): (N, C*kh*kw, L) -> (N, C, H, W), adding the
    values of overlapping windows. (H, W) = output_size, and L must equal the number of
    windows unfold would make from an H x W input.

    >>> F.fold(corrnet.ones(1, 4, 4), (3, 3), 2)
    tensor([[[[1., 2., 1.],
              [2., 4., 2.],
              [1., 2., 1.]]]])
    """
    op = "fold"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.dim() not in (2, 3):
        raise RuntimeError(f"{op}: expected input to be 2-D (C*kh*kw, L) or 3-D "
                           f"(N, C*kh*kw, L), got input of shape {tuple(input.shape)}")
    _check_nonempty(op, input, batched=input.dim() == 3)
    _check_dtype(op, input, "float+bool")
    if isinstance(output_size, (tuple, list)) and len(output_size) != 2:
        raise RuntimeError(f"{op}: output_size must be an int or a pair (H, W), got "
                           f"{output_size!r}")
    height, width = _ints(output_size, 2, "output_size", op, minimum=1)
    kernel, dilation, pads, stride = _window_args(op, kernel_size, dilation, padding, stride)
    col, unbatched = (input.unsqueeze(0), True) if input.dim() == 2 else (input, False)
    n, rows, length = col.shape
    cells = kernel[0] * kernel[1]
    if rows % cells:
        raise RuntimeError(f"{op}: input.shape[1] = {rows} (input shape {tuple(input.shape)}) "
                           f"must be divisible by kh*kw = {cells} (kernel_size {kernel})")
    window = make_window(op, height, width, kernel, stride, pads, dilation)
    _check_padded(op, col[:, :1].reshape(n, 1, 1, length), window,
                  f"output_size={output_size}, padding={padding}, dilation={dilation}")
    windows = window.out_height * window.out_width
    if length != windows:
        raise RuntimeError(
            f"{op}: input has {length} windows (input shape {tuple(input.shape)}) but an "
            f"output of size {(height, width)} with kernel_size {kernel}, dilation {dilation}, "
            f"padding {pads[0][0], pads[1][0]} and stride {stride} has "
            f"{window.out_height} x {window.out_width} = {windows}")
    out = _Fold.apply(col, window, (n, rows // cells, height, width))
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------


def _pool_window(op, dims, x, kernel_size, stride, padding, dilation, ceil_mode, int32):
    """The pool's window; `int32` where PyTorch's kernel takes C ints (values beyond int32
    refused, as there)."""
    ceil_mode = check_bool(op, "ceil_mode", ceil_mode)
    kernel = _ints(kernel_size, dims, "kernel_size", op, minimum=1, int32=int32)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if no_stride else _ints(stride, dims, "stride", op, minimum=1, int32=int32)
    padding = _ints(padding, dims, "padding", op, minimum=0, int32=int32)
    dilation = _ints(dilation, dims, "dilation", op, minimum=1, int32=int32)
    if any(p > k // 2 for p, k in zip(padding, kernel, strict=True)):
        raise RuntimeError(
            f"{op}: padding should be at most half of kernel_size (whatever the dilation), "
            f"but got padding={padding} and kernel_size={kernel}")
    kernel, stride = _lift(kernel, 1), _lift(stride, 1)
    padding, dilation = _lift(padding, 0), _lift(dilation, 1)
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    window = make_window(op, x.shape[2], x.shape[3], kernel, stride, pads, dilation, ceil_mode)
    because = f"kernel_size={kernel_size}, padding={padding}, dilation={dilation}"
    check_allocation(op, "output", (*x.shape[:2], window.out_height, window.out_width),
                     x.dtype, because)
    return window


def _pool_part(op, x, window: Window2d, because: str):
    """(x_part, part_window, crops): the pool cut down to the kernel cells and input cells
    that can meet (`_crops`, as for a convolution) where a huge kernel, padding or dilation
    makes that pay; the kernel cells cut off read padding for every output, which never wins
    a max and adds nothing to a sum, so every output keeps its value. Else (x, window, None).
    """
    crops = _crops(window)
    if crops is not None and None not in crops and all(
            c.first_out == 0 and c.end_out == out for c, out
            in zip(crops, (window.out_height, window.out_width), strict=True)):
        rows, cols = crops
        part = Window2d(rows.end_in - rows.first_in, cols.end_in - cols.first_in,
                        (rows.end_tap - rows.first_tap, cols.end_tap - cols.first_tap),
                        window.stride, ((rows.before, rows.after), (cols.before, cols.after)),
                        window.dilation, window.out_height, window.out_width)
        x_part = x[:, :, rows.first_in:rows.end_in, cols.first_in:cols.end_in]
        _check_padded(op, x_part, part, because)
        return x_part, part, crops
    _check_padded(op, x, window, because)
    return x, window, None


def _window_counts(size, before, after, kernel, stride, out, include_pad) -> np.ndarray:
    """Along one axis (dilation 1), how many cells of each output's window are input cells
    (or, with include_pad, input or padding cells, not the ones ceil_mode adds): (out,)."""
    start = np.arange(out, dtype=np.int64) * stride            # in padded coordinates
    low, high = (0, size + before + after) if include_pad else (before, before + size)
    return np.clip(np.minimum(start + kernel, high) - np.maximum(start, low), 0, None)


class _MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, window, report):
        find_winner = report is not None or (
            bool(ctx.needs_input_grad) and ctx.needs_input_grad[0])
        kernels = plan.pool_kernels(x)         # pool.py, or device_pool.py on a CUDA device
        out, ctx.winner = kernels.max_pool2d_forward(x, window, find_winner)
        if report is not None:  # return_indices: hand the winners' indices to the caller
            report["indices"] = kernels.max_pool2d_indices(ctx.winner, window)
        ctx.window, ctx.x_shape = window, x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        return plan.pool_kernels(grad).max_pool2d_backward(grad, ctx.winner, ctx.window,
                                                            ctx.x_shape)

    @staticmethod
    def jvp(ctx, v):  # each output takes its winner's value
        indices = plan.pool_kernels(v).max_pool2d_indices(ctx.winner, ctx.window)
        return _gather_planes(v, indices)

    grad_fn_name = "MaxPool2DWithIndicesBackward0"


def _gather_planes(v: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """v (N, C, H, W) at flat plane indices (N, C, H_out, W_out): the adjoint of
    `pool_kernels.scatter_to_indices`."""
    n, c = indices.shape[:2]
    flat = v.reshape(n, c, -1)
    return np.take_along_axis(flat, indices.reshape(n, c, -1), 2).reshape(indices.shape)


def _check_pool_input(op, input, dims) -> None:
    """As PyTorch's pools: only the batch of a batched input may be empty."""
    _check_input(input, op, dims)
    inner = input.shape[1:] if input.dim() == dims + 2 else input.shape
    if 0 in inner:
        raise RuntimeError(f"{op}: expected a {dims + 1}-D or {dims + 2}-D (batch mode) input "
                           f"with optional 0 dim batch size, but got input of shape "
                           f"{tuple(input.shape)}")


def _max_pool(op, dims, input, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    _check_pool_input(op, input, dims)
    # max_pool1d without indices has its own kernel (floating point only, int64 sizes); with
    # indices, as max_pool2d, it takes any dtype but bool and int32 sizes. (PyTorch takes
    # the one with indices also when the input requires a gradient.)
    plain_1d = dims == 1 and not return_indices and not (
        isinstance(input, Tensor) and input.requires_grad and is_grad_enabled())
    x, unbatched = _as_4d(input, dims)
    window = _pool_window(op, dims, x, kernel_size, stride, padding, dilation, ceil_mode,
                          int32=not plain_1d)
    _check_dtype(op, input, "float" if plain_1d else "not bool")
    report = {} if return_indices else None
    x_part, part, crops = _pool_part(op, x, window, f"kernel_size={kernel_size}, "
                                     f"padding={padding}, dilation={dilation}")
    out = _from_4d(_MaxPool2d.apply(x_part, part, report), dims, unbatched)
    if not return_indices:
        return out
    indices = report["indices"]
    if crops is not None:   # flat indices in the cut-down planes -> in the input's planes
        rows, cols = crops
        indices = ((indices // part.width + rows.first_in) * window.width
                   + indices % part.width + cols.first_in)
    return out, _from_4d(_wrap(indices), dims, unbatched)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """The maximum of each kernel_size window (padding counts as -inf and never wins).

    input (N, C, H, W) or (C, H, W); `stride` defaults to `kernel_size`. Along each axis

        H_out = floor((H + 2*padding - dilation*(k - 1) - 1) / stride) + 1

    (ceil instead of floor with ceil_mode, as long as the last window starts inside the
    input or the left padding). padding may be at most half the (undilated) kernel. With
    return_indices, also the flat index (row * W + col) of each maximum in its input plane.

    >>> F.max_pool2d(corrnet.arange(16.).reshape(1, 1, 4, 4), 3, stride=2, padding=1)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """The maximum of each window of a sequence: input (N, C, L) or (C, L),

        L_out = floor((L + 2*padding - dilation*(k - 1) - 1) / stride) + 1

    >>> F.max_pool1d(corrnet.tensor([[1., 3., 2., 5., 4.]]), 2)
    tensor([[3., 5.]])
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


class _AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, window, divisor):
        ctx.window, ctx.divisor, ctx.x_shape = window, divisor, x.shape
        return plan.pool_kernels(x).avg_pool2d_forward(x, window, divisor)

    @staticmethod
    def backward(ctx, grad):
        return plan.pool_kernels(grad).avg_pool2d_backward(grad, ctx.divisor, ctx.window,
                                                            ctx.x_shape)

    @staticmethod
    def jvp(ctx, v):
        return plan.pool_kernels(v).avg_pool2d_forward(v, ctx.window, ctx.divisor)

    grad_fn_name = "AvgPool2DBackward0"


def _avg_pool(op, dims, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    _check_pool_input(op, input, dims)
    x, unbatched = _as_4d(input, dims)
    window = _pool_window(op, dims, x, kernel_size, stride, padding, 1, ceil_mode, int32=True)
    count_include_pad = check_bool(op, "count_include_pad", count_include_pad)
    if divisor_override is not None and check_int(op, "divisor_override",
                                                  divisor_override) == 0:
        raise RuntimeError(f"{op}: divisor_override must be a non-zero integer, got "
                           f"{divisor_override!r}")
    _check_dtype(op, input, "float+int64")
    x_part, part, crops = _pool_part(op, x, window, f"kernel_size={kernel_size}, "
                                     f"padding={padding}")
    if crops is None:
        divisor = pool_kernels.avg_pool2d_divisor(window, count_include_pad, divisor_override)
    elif divisor_override:
        divisor = np.full((window.out_height, window.out_width), divisor_override, np.int64)
    else:   # the whole windows' cell counts (the cut-off cells count as padding)
        rows, cols = (_window_counts(size, *pads, k, s, out, count_include_pad)
                      for size, pads, k, s, out in zip(
                          (window.height, window.width), window.padding, window.kernel,
                          window.stride, (window.out_height, window.out_width), strict=True))
        divisor = rows[:, None] * cols[None, :]                       # (H_out, W_out)
    # (built on the host; on a CUDA device copied there once per geometry and kept)
    divisor = devices.table_like(divisor, x._data, ("avg_pool2d divisor", window, part,
                                                    count_include_pad, divisor_override))
    return _from_4d(_AvgPool2d.apply(x_part, part, divisor), dims, unbatched)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """The mean of each kernel_size window. Along each axis

        H_out = floor((H + 2*padding - (k - 1) - 1) / stride) + 1

    (ceil with ceil_mode, as for `max_pool2d`). The divisor is the window size (clipped to
    the padded input with ceil_mode), or, with ``count_include_pad=False``, the number of
    input (not padding) cells in the window, or `divisor_override`.

    >>> F.avg_pool2d(corrnet.arange(9.).reshape(1, 1, 3, 3), 2, stride=1)
    tensor([[[[2., 3.],
              [5., 6.]]]])
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """The mean of each window of a sequence: input (N, C, L) or (C, L),

        L_out = floor((L + 2*padding - (k - 1) - 1) / stride) + 1   (ceil with ceil_mode)

    >>> F.avg_pool1d(corrnet.tensor([[1., 3., 2., 6.]]), 2)
    tensor([[2., 4.]])
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


class _MaxUnpool(Function):
    @staticmethod
    def forward(ctx, x, indices, out_size):
        ctx.indices, ctx.out_size = indices, out_size
        return plan.pool_kernels(x).max_unpool_forward(x, indices, out_size)

    @staticmethod
    def backward(ctx, grad):
        plane = int(np.prod(grad.shape[2:]))
        if plane == 0 and ctx.indices.size:  # (the forward wrote nothing; PyTorch's gather)
            first = int(ctx.indices.reshape(-1)[0])
            raise RuntimeError(f"max_unpool backward: index {first} is out "
                               f"of bounds for the empty output planes of shape "
                               f"{tuple(grad.shape)}")
        return plan.pool_kernels(grad).max_unpool_backward(grad, ctx.indices), None

    @staticmethod
    def jvp(ctx, v):
        return plan.pool_kernels(v).max_unpool_forward(v, ctx.indices, ctx.out_size)

    grad_fn_name = "MaxUnpool2DBackward0"


def _max_unpool(op, dims, input, indices, kernel_size, stride, padding, output_size):
    _check_input(input, op, dims)
    if 0 in input.shape[1:]:   # (as PyTorch, which lets the first dimension be empty)
        raise RuntimeError(f"{op}: expected input to have non-zero size for non-batch "
                           f"dimensions, but got input of shape {tuple(input.shape)}")
    if not isinstance(indices, Tensor):
        raise TypeError(f"{op}: indices must be a Tensor, got {type(indices).__name__}")
    if indices.dtype != backend.int64:
        raise RuntimeError(f"{op}: indices must be int64 (as max pooling returns them), got "
                           f"{indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"{op}: indices of shape {tuple(indices.shape)} must have the shape "
                           f"of input, {tuple(input.shape)}")
    # (PyTorch computes the output size in Python: its arguments are unbounded, the size must
    # be non-negative (ValueError) and fit in int64 (TypeError))
    kernel = _ints(kernel_size, dims, "kernel_size", op, minimum=1, int64=False)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if no_stride else _ints(stride, dims, "stride", op, minimum=1, int64=False)
    padding = _ints(padding, dims, "padding", op, minimum=0, int64=False)
    sizes = tuple(input.shape[input.dim() - dims:])
    default = tuple((n - 1) * s - 2 * p + k
                    for n, s, p, k in zip(sizes, stride, padding, kernel, strict=True))
    if output_size is None:
        out_size = default
        if min(out_size) < 0:
            raise ValueError(f"{op}: output size would be {out_size} (kernel_size {kernel}, "
                             f"stride {stride}, padding {padding}): it must be non-negative")
        if max(out_size) > INT64_MAX:
            raise TypeError(f"{op}: the output size {out_size} (kernel_size {kernel}, stride "
                            f"{stride}, padding {padding}) overflows int64")
    else:
        if isinstance(output_size, str):
            raise ValueError(f"{op}: output_size should be a sequence containing {dims} or "
                             f"{dims + 2} ints, got {output_size!r}")
        if not isinstance(output_size, (tuple, list)) or not all(
                _is_int(v) for v in output_size):
            raise TypeError(f"{op}: output_size must be a tuple of {dims} or {dims + 2} ints, "
                            f"got {output_size!r}")
        out_size = tuple(int(v) for v in output_size)
        if len(out_size) == dims + 2:
            out_size = out_size[-dims:]
        if len(out_size) != dims:
            raise ValueError(f"{op}: output_size must have {dims} or {dims + 2} elements, got "
                             f"output_size={tuple(output_size)}")
        for size, d, s in zip(out_size, default, stride, strict=True):
            if not d - s < size < d + s:
                raise ValueError(f"{op}: output_size {tuple(output_size)} is invalid for input "
                                 f"of shape {tuple(input.shape)}: each size must lie strictly "
                                 f"between default - stride and default + stride, default "
                                 f"{default}, stride {stride}")
    if min(out_size) < 0:
        raise RuntimeError(f"{op}: output size would be {out_size}: too small")
    if input.shape[0] and min(out_size):    # (an empty output never reaches PyTorch's kernel)
        _check_dtype(op, input, "float")
    check_allocation(op, "output", (*input.shape[:input.dim() - dims], *out_size),
                     input.dtype, f"stride={stride}, padding={padding}")
    plane = int(np.prod(out_size))
    index_array = indices._data
    # (on a CUDA device: the two bounds read back, two numbers)
    low, high = (int(index_array.min()), int(index_array.max())) if index_array.size else (0, 0)
    if plane and index_array.size and (low < 0 or high >= plane):
        bad = high if high >= plane else low
        raise RuntimeError(f"{op}: found an invalid max index {bad} (the output planes have "
                           f"{' x '.join(map(str, out_size))} = {plane} cells)")
    x, unbatched = (input.unsqueeze(0), True) if input.dim() == dims + 1 else (input, False)
    idx = indices.unsqueeze(0) if unbatched else indices
    out = _MaxUnpool.apply(x, idx, out_size)
    return out.squeeze(0) if unbatched else out


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of `max_pool2d`: each value put back at its index, zeros elsewhere.

    Output size (unless output_size says otherwise, within a stride of it):

        H_out = (H - 1)*stride - 2*padding + kernel_size

    >>> x = corrnet.tensor([[[[1., 2.], [3., 4.]]]])
    >>> F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2)
    tensor([[[[0., 0.],
              [0., 4.]]]])
    """
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of `max_pool1d`; L_out = (L - 1)*stride - 2*padding + kernel_size.

    >>> F.max_unpool1d(*F.max_pool1d(corrnet.tensor([[1., 3., 2., 0.]]), 2,
    ...                return_indices=True), 2)
    tensor([[0., 3., 2., 0.]])
    """
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                       output_size)


def _adaptive_output(op, dims, output_size, sizes):
    if output_size is None:  # (None is for single sizes: (None, 7) keeps the height)
        raise TypeError(f"{op}: output_size must be an int or a tuple of {dims} ints or None, "
                        "not None")
    if _is_int(output_size):
        values = (output_size,) * dims
    elif (isinstance(output_size, (tuple, list)) and dims == 1
          and not all(_is_int(value) for value in output_size)):
        # (PyTorch's 1-d pools read a list of ints first: None or a float is a TypeError)
        raise TypeError(f"{op}: output_size must be an int or a tuple of one int, got "
                        f"{output_size!r}")
    elif isinstance(output_size, (tuple, list)) and len(output_size) == dims:
        values = tuple(output_size)
    elif isinstance(output_size, (tuple, list)):
        # (as PyTorch: a sequence of another length is a RuntimeError, a 2-d pool's (5,) too)
        raise RuntimeError(f"{op}: output_size must be an int or {dims} size(s), got "
                           f"{output_size!r}")
    else:
        raise TypeError(f"{op}: output_size must be an int or a tuple of {dims}, got "
                        f"{output_size!r}")
    out = []
    for value, size in zip(values, sizes, strict=True):
        if value is None:
            value = size
        if not _is_int(value) or value < 0:
            raise RuntimeError(f"{op}: output_size must hold non-negative ints (or None), got "
                               f"{output_size!r}")
        if value > _args.INT64_MAX:
            raise ValueError(f"{op}: output_size={output_size!r} holds {value}: Overflow when "
                             "unpacking long long (each size must fit in int64)")
        out.append(int(value))
    return tuple(out)


def _check_adaptive_grad(op: str, grad, batched: bool = False) -> None:
    """PyTorch's adaptive pools compute an empty output, but refuse its backward; the average
    pool's batch of no channels likewise, except to an output of 1 x 1 (PyTorch's mean
    there: adaptive_avg_pool2d of (1, 0, 4, 4) to 1 passes, to 2 is refused); an unbatched
    input's empty channels pass."""
    global_average = all(size == 1 for size in grad.shape[2:])
    if 0 in grad.shape[2:] or batched and grad.shape[1] == 0 and not global_average:
        why = "an output_size of 0" if 0 in grad.shape[2:] else "no channels"
        raise RuntimeError(f"{op}_backward(): Expected grad_output to have non-zero size for "
                           f"non-batch dimensions, but grad_output has sizes "
                           f"{list(grad.shape)} ({why})")


class _AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, out_height, out_width, batched):
        ctx.x_shape, ctx.out_size, ctx.batched = x.shape, (out_height, out_width), batched
        return plan.pool_kernels(x).adaptive_avg_pool2d_forward(x, out_height, out_width)

    @staticmethod
    def backward(ctx, grad):
        _check_adaptive_grad("adaptive_avg_pool2d", grad, ctx.batched)
        return plan.pool_kernels(grad).adaptive_avg_pool2d_backward(grad, ctx.x_shape)

    @staticmethod
    def jvp(ctx, v):
        return plan.pool_kernels(v).adaptive_avg_pool2d_forward(v, *ctx.out_size)

    grad_fn_name = "AdaptiveAvgPool2DBackward0"


class _AdaptiveMaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, out_height, out_width, report):
        out, ctx.indices = plan.pool_kernels(x).adaptive_max_pool2d_forward(x, out_height,
                                                                            out_width)
        ctx.x_shape = x.shape
        report["indices"] = ctx.indices
        return out

    @staticmethod
    def backward(ctx, grad):
        _check_adaptive_grad("adaptive_max_pool2d", grad)
        return plan.pool_kernels(grad).scatter_to_indices(grad, ctx.indices, ctx.x_shape)

    @staticmethod
    def jvp(ctx, v):
        return _gather_planes(v, ctx.indices)

    grad_fn_name = "AdaptiveMaxPool2DBackward0"


def _adaptive_pool(op, dims, input, output_size, kind, return_indices=False):
    _check_input(input, op, dims)
    sizes = tuple(input.shape[input.dim() - dims:])
    if min(sizes) < 1:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} has an empty spatial "
                           "dimension")
    if kind == "max" and input.dim() == dims + 2 and input.shape[1] == 0:
        # (as PyTorch: an empty batch is computed, empty channels refused)
        raise RuntimeError(f"{op}: expected input to have non-zero size for non-batch "
                           f"dimensions, but got input of shape {tuple(input.shape)}")
    # (PyTorch checks the sizes above first, then the dtype: max always, average only where
    # the output holds a number, an empty one being returned in the input's dtype)
    if input.dtype.category != backend.FLOAT and kind == "max":
        raise NotImplementedError(f"{op}: input must be floating point, got {input.dtype}")
    out_size = _lift(_adaptive_output(op, dims, output_size, sizes), 1)
    x, unbatched = _as_4d(input, dims)
    if input.dtype.category != backend.FLOAT:
        if math.prod((*x.shape[:2], *out_size)):
            raise NotImplementedError(f"{op}: input must be floating point, got "
                                      f"{input.dtype}")
        return _from_4d(_wrap(np.zeros((*x.shape[:2], *out_size), dtype=x._data.dtype,
                                       like=_like(x._data))), dims, unbatched)
    check_allocation(op, "output", (*x.shape[:2], *out_size), x.dtype,
                     f"output_size={output_size!r}")
    if kind == "avg":
        return _from_4d(_AdaptiveAvgPool2d.apply(x, *out_size, not unbatched), dims,
                        unbatched)
    report = {}
    out = _from_4d(_AdaptiveMaxPool2d.apply(x, *out_size, report), dims, unbatched)
    if not return_indices:
        return out
    return out, _from_4d(_wrap(report["indices"]), dims, unbatched)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a given output size: H_out, W_out = output_size (an int for both;
    None keeps the input's size). Output cell (i, j) averages rows floor(i*H/H_out) to
    ceil((i+1)*H/H_out) (exclusive), and columns alike: windows may overlap when H_out does
    not divide H.

    >>> F.adaptive_avg_pool2d(corrnet.arange(16.).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 2.5000,  4.5000],
              [10.5000, 12.5000]]]])
    """
    return _adaptive_pool("adaptive_avg_pool2d", 2, input, output_size, "avg")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to a given output size: H_out, W_out = output_size; windows as in
    `adaptive_avg_pool2d`, return_indices as in `max_pool2d`.

    >>> F.adaptive_max_pool2d(corrnet.arange(16.).reshape(1, 1, 4, 4), (1, 2))
    tensor([[[[13., 15.]]]])
    """
    return _adaptive_pool("adaptive_max_pool2d", 2, input, output_size, "max", return_indices)


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (N, C, L) to L_out = output_size; window i covers positions
    floor(i*L/L_out) to ceil((i+1)*L/L_out) (exclusive).

    >>> F.adaptive_avg_pool1d(corrnet.tensor([[1., 2., 3., 4., 5.]]), 2)
    tensor([[2., 4.]])
    """
    return _adaptive_pool("adaptive_avg_pool1d", 1, input, output_size, "avg")


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of (N, C, L) to L_out = output_size; windows as `adaptive_avg_pool1d`.

    >>> F.adaptive_max_pool1d(corrnet.tensor([[1., 5., 3., 4., 2.]]), 2)
    tensor([[5., 4.]])
    """
    return _adaptive_pool("adaptive_max_pool1d", 1, input, output_size, "max", return_indices)


# ---------------------------------------------------------------------------------------------
# image filtering: corr2d and convolve2d (beyond PyTorch; the modes of scipy.signal)
# ---------------------------------------------------------------------------------------------

# scipy.signal's boundary names (with its aliases) -> pad modes
_BOUNDARIES = {"fill": "constant", "pad": "constant", "wrap": "circular",
               "circular": "circular", "symm": "symmetric", "symmetric": "symmetric"}


class _Turn180(Function):
    """A kernel turned by 180 degrees (flipped along both axes)."""

    @staticmethod
    def forward(ctx, k):
        return k[::-1, ::-1].copy()

    @staticmethod
    def backward(ctx, grad):
        return grad[::-1, ::-1]

    @staticmethod
    def jvp(ctx, v):
        return v[::-1, ::-1].copy()


def _plain_corr2d(X, K):
    """corr2d's common call, valid mode, without the general path's ops: a 2-D image and
    kernel, Tensors of one float dtype in host memory, no gradient wanted. The planner's
    forward pass runs on their arrays directly (the same pass `_Conv2d` runs); the checks,
    reshapes and graph ops around it cost ~0.08 ms a call, as much as the 3x3 filtering of
    a 512x512 image itself. None where the general path must decide (it also raises the
    errors)."""
    if type(X) is not Tensor or type(K) is not Tensor:
        return None
    x, k = X._data, K._data
    if (type(x) is not np.ndarray or type(k) is not np.ndarray or x.ndim != 2 or k.ndim != 2
            or x.dtype != k.dtype or x.dtype.type not in (np.float32, np.float64)
            or (is_grad_enabled() and (X.requires_grad or K.requires_grad))):
        return None
    (height, width), (kh, kw) = x.shape, k.shape
    if not (0 < kh <= height and 0 < kw <= width):
        return None
    window = _valid_window(height, width, kh, kw)
    images, kernel = x.reshape(1, 1, height, width), k.reshape(1, 1, kh, kw)
    # (1, 1, H - kh + 1, W - kw + 1) = images (1, 1, H, W) correlated with kernel (1, 1, kh, kw)
    with np.errstate(all="ignore"):   # NaN and inf silently, as Function.apply runs an op
        out = plan.conv_pass("forward", images.shape, kernel.shape, window, 1, x.dtype,
                             images, kernel, None, window, 1)
    return _wrap(out.reshape(window.out_height, window.out_width))


@functools.lru_cache(maxsize=256)
def _valid_window(height: int, width: int, kh: int, kw: int):
    """`_plain_corr2d`'s window, made once per shape (`make_window` checks and builds it in
    about 7 microseconds, 5% of a 3x3 filter of a 512x512 image)."""
    return make_window("corr2d", height, width, (kh, kw), (1, 1), ((0, 0), (0, 0)), (1, 1))


def _filter2d(op, X, K, mode, boundary, fillvalue, flip):
    if mode == "valid" and not flip and boundary in _BOUNDARIES:  # (else the error below)
        out = _plain_corr2d(X, K)
        if out is not None:
            return out
    X = X if isinstance(X, Tensor) else as_tensor(np.asarray(X))
    K = K if isinstance(K, Tensor) else as_tensor(np.asarray(K))
    if X.dim() < 2:
        raise RuntimeError(f"{op}: X must have at least 2 dimensions (..., H, W), got X of "
                           f"shape {tuple(X.shape)}")
    check_channels_first(op, "X", X.shape)  # an (H, W, C) photo would filter the wrong axes
    if K.dim() != 2:
        raise RuntimeError(f"{op}: K must be 2-D (kh, kw), got K of shape {tuple(K.shape)}")
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"{op}: mode must be 'valid', 'same' or 'full', got mode={mode!r}")
    if boundary not in _BOUNDARIES:
        raise ValueError(f"{op}: boundary must be 'fill', 'wrap' or 'symm' (or scipy's "
                         f"aliases 'pad', 'circular', 'symmetric'), got boundary={boundary!r}")
    dtype = backend.result_type(X, K)
    if dtype is backend.bool_:
        dtype = backend.int64
    if dtype is backend.uint16:  # (as conv2d: sums of products would wrap around at 65536)
        raise NotImplementedError(f"{op}: not implemented for X and K of dtype torch.uint16 "
                                  f"(X of shape {tuple(X.shape)}); convert X to float first: "
                                  f"X.float()")
    x, k = X._cast(dtype), K._cast(dtype)
    if flip:  # convolution: the kernel turned by 180 degrees
        k = _Turn180.apply(k)
    *lead, h, w = x.shape
    kh, kw = k.shape
    if mode == "valid" and (kh > h or kw > w):
        raise RuntimeError(f"{op}: kernel K of shape {tuple(K.shape)} is larger than the "
                           f"input X of shape {tuple(X.shape)} (mode='valid')")
    if min(h, w, kh, kw) < 1:
        raise RuntimeError(f"{op}: X of shape {tuple(X.shape)} and K of shape "
                           f"{tuple(K.shape)} must not be empty")
    images = x.reshape(-1, 1, h, w)                                  # (B, 1, H, W)
    if mode != "valid":
        pads = []
        for size in (kh, kw):
            # 'same' keeps the centre of the 'full' output; for an even kernel, scipy.signal
            # keeps one cell more of the start for convolution than for correlation
            before = size - 1 if mode == "full" else (size // 2 if flip else (size - 1) // 2)
            pads.append((before, 2 * (size - 1) - before if mode == "full" else size - 1 - before))
        (top, bottom), (left, right) = pads
        images = _Pad.apply(images, ((top, bottom), (left, right)), _BOUNDARIES[boundary],
                            fillvalue)
    out = conv2d(images, k.reshape(1, 1, kh, kw))
    return out.reshape(*lead, out.shape[-2], out.shape[-1])


def corr2d(X, K, mode="valid", boundary="fill", fillvalue=0):
    """The 2-D cross-correlation of an image X with a kernel K.

        Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]

    mode 'valid' (the default, as the notebooks): windows inside X, Y is (H - kh + 1,
    W - kw + 1); 'same': Y is H x W; 'full': every overlap, (H + kh - 1, W + kw - 1). Outside X
    the boundary decides: 'fill' (fillvalue), 'wrap' (periodic) or 'symm' (mirrored, edge
    repeated) — the modes of ``scipy.signal.correlate2d``.

    Axes: the last two axes of X are the image's height and width, (..., H, W); leading axes
    (channels, batch) are planes filtered alike, so a colour image is (C, H, W), channels
    first. A 3-D X that can only be an (H, W, C) photo — last axis 1, 3 or 4 and both others
    longer than 4, e.g. (600, 510, 3) — is refused with the fix ``X.permute(2, 0, 1)``
    rather than filtered along the wrong axes (to filter such planes on purpose, add a
    leading axis: ``X[None]``). Any numeric dtypes (the result follows PyTorch's promotion:
    int64 for int inputs); differentiable in X and K.

    >>> corrnet.corr2d(corrnet.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]]),
    ...                corrnet.tensor([[0, 1], [2, 3]]))
    tensor([[19, 25],
            [37, 43]])
    """
    return _filter2d("corr2d", X, K, mode, boundary, fillvalue, flip=False)


def convolve2d(X, K, mode="valid", boundary="fill", fillvalue=0):
    """The 2-D convolution of X with K: `corr2d` with the kernel flipped in both axes,

        Y[i, j] = sum_{a, b} X[i + a, j + b] * K[kh - 1 - a, kw - 1 - b]

    Modes, boundaries and axes as `corr2d` (X is (..., H, W), channels first; an (H, W, C)
    photo is refused), matching ``scipy.signal.convolve2d``.

    >>> corrnet.convolve2d(corrnet.tensor([[1., 2., 3.]]), corrnet.tensor([[1., -1.]]),
    ...                    mode="full")
    tensor([[ 1.,  1.,  1., -3.]])
    """
    return _filter2d("convolve2d", X, K, mode, boundary, fillvalue, flip=True)


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------


def relu(input):
    return input.relu()


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()


# ---------------------------------------------------------------------------------------------
# fused: convolution + bias + activation (+ average pooling) as one op (issue 13)
# ---------------------------------------------------------------------------------------------


class _ConvEpilogue(Function):
    """conv2d, then the bias, the activation (sigmoid or ReLU) and optionally a k x k
    average pool (stride k, no padding) in one pass over the convolution's output
    (`kernels.activation.bias_activation_forward`): avg_pool2d(act(conv2d(x, w, b)), k)
    without the bias's, the activation's and the pool's own passes over the feature map, and
    its backward in one pass too (the pool's share of the gradient, times the activation's
    derivative from the saved activation, the bias's sums alongside). The convolution's own
    passes are `_Conv2d`'s (forward and backward called on a context of their own)."""

    @staticmethod
    def forward(ctx, x, weight, bias, window, groups, activation, pool):
        conv = Context()
        conv.needs_input_grad = (*ctx.needs_input_grad[:2], False)
        # the convolution's own kernel runs the epilogue on each image where it can
        # (`plan.forward_epilogue`), else its own pass after it
        fused = plan.forward_epilogue(x.shape, weight.shape, window, groups, x.dtype, x, weight,
                                      bias, activation, pool)
        if fused is not None:
            out, pooled = fused
            _Conv2d.remember(conv, x, weight, window, groups)
        else:
            z = np.ascontiguousarray(_Conv2d.forward(conv, x, weight, None, window, groups))
            out, pooled = activation_kernels.bias_activation_forward(z, bias, activation, pool)
        ctx.conv, ctx.activation, ctx.pool = conv, activation, pool
        ctx.window, ctx.groups = window, groups
        ctx.save_for_backward(x, weight, bias, out)
        return pooled if pool else out

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, out = ctx.saved_arrays
        needs_x, needs_weight, needs_bias = (*ctx.needs_input_grad, False, False)[:3]
        grad_z, grad_bias = activation_kernels.bias_activation_backward(out, grad,
                                                                        ctx.activation, ctx.pool)
        grad_x = grad_weight = None
        if needs_x or needs_weight:
            conv = ctx.conv
            conv.needs_input_grad = (needs_x, needs_weight, False)
            grad_x, grad_weight, _ = _Conv2d.backward(conv, grad_z)
        return grad_x, grad_weight, grad_bias if needs_bias else None

    @staticmethod
    def backward_graph(ctx, grad):
        # the unfused ops' backward, recorded: the activation recomputed in the graph (its
        # derivative depends on x, weight and bias), the pool's adjoint a linear map, the
        # convolution's gradients as in `_Conv2d.backward_graph`
        x, weight, bias, _ = ctx.saved_tensors
        z = _Conv2d.apply(x, weight, bias, ctx.window, ctx.groups)
        pool, shape = ctx.pool, tuple(z.shape)
        if pool:
            grad = LinearMap.apply(
                grad, lambda g: activation_kernels.average_pool_grad_numpy(g, shape, pool),
                lambda v: activation_kernels.average_pool_numpy(v, pool),
                "AvgPool2DBackwardBackward0")
        if ctx.activation == "sigmoid":
            out = z.sigmoid()
            grad_z = grad * out * (1 - out)
        else:
            grad_z = grad * (z.relu() > 0).to(grad.dtype)
        needs_x, needs_weight, needs_bias = (*ctx.needs_input_grad, False, False)[:3]
        return (
            _ConvTranspose2d.apply(grad_z, weight, None, ctx.window, ctx.groups,
                                   tuple(x.shape)) if needs_x else None,
            _ConvWeightGrad.apply(grad_z, x, tuple(weight.shape), ctx.window, ctx.groups)
            if needs_weight else None,
            grad_z.sum(dim=(0, 2, 3)) if needs_bias else None)

    @staticmethod
    def grad_fn_name(ctx):  # the last op's, as PyTorch's unfused graph ends
        if ctx.pool:
            return "AvgPool2DBackward0"
        return "SigmoidBackward0" if ctx.activation == "sigmoid" else "ReluBackward0"

    tensor_arguments = 3  # input, weight, bias


class _SigmoidShown(Function):
    grad_fn_name = "SigmoidBackward0"


class _ReluShown(Function):
    grad_fn_name = "ReluBackward0"


class _FusedNode(Node):
    """The node of a `_ConvEpilogue`, whose ``next_functions`` show PyTorch's unfused chain:
    (the pool's node ->) the activation's -> the convolution's -> the inputs'. The nodes
    before it are for display (a graph walk, a printout); the engine runs the fused node's
    backward, so a hook registered on one of them is never called."""

    __slots__ = ()

    @property
    def next_functions(self) -> tuple:
        return _SHOWN_CHAIN[self]


_SHOWN_CHAIN = weakref.WeakKeyDictionary()    # fused node -> its shown next_functions


def _show_unfused_chain(node: Node, activation: str, pool: int) -> None:
    conv = Node(_Conv2d, None, node.next_nodes, node.input_meta, node.positions)
    shown = conv
    if pool:
        shown = Node(_SigmoidShown if activation == "sigmoid" else _ReluShown, None, (conv,),
                     ())
    node.__class__ = _FusedNode
    _SHOWN_CHAIN[node] = ((shown, 0),)


def fused_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 activation="sigmoid", pool=0):
    """``avg_pool2d(act(conv2d(input, weight, bias, ...)), pool)`` (without the pool when
    pool is 0; act "sigmoid" or "relu"): the same values and gradients, as one op where its
    fused kernels run compiled (`kernels.activation.fuses`: float32, or float64 with ReLU)
    and the convolution takes its common path; else the three ops one after the other. The
    result's grad_fn is named as the last op's."""
    if activation not in activation_kernels.EPILOGUE_ACTIVATIONS:
        raise ValueError(f"fused_conv2d: activation must be one of "
                         f"{activation_kernels.EPILOGUE_ACTIVATIONS}, got {activation!r}")
    fused = []

    def apply(x, weight, bias, window, groups):
        if (type(x._data) is np.ndarray and activation_kernels.fuses(x._data.dtype, activation)
                and weight.dtype == x.dtype and (bias is None or bias.dtype == x.dtype)
                and window.out_height >= pool and window.out_width >= pool):
            fused.append(True)
            out = _ConvEpilogue.apply(x, weight, bias, window, groups, activation, pool)
            if out.grad_fn is not None:
                _show_unfused_chain(out.grad_fn, activation, pool)
            return out
        return _Conv2d.apply(x, weight, bias, window, groups)

    out = _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups, apply)
    if fused:
        return out
    out = out.sigmoid() if activation == "sigmoid" else out.relu()
    return avg_pool2d(out, pool) if pool else out
