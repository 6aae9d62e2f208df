"""Differentiable convolution, pooling and activations (``corrnet.nn.functional``, ``F``).

Each op checks its arguments (errors name the argument and the shapes), builds the window
geometry once (kernels/windows.py) and hands plain arrays to the kernels.
"""

from __future__ import annotations

import numbers

from . import backend
from .autograd import Function
from .kernels import conv as conv_kernels
from .kernels import pool as pool_kernels
from .kernels.windows import make_window
from .tensor import Tensor

__all__ = [
    "conv2d", "max_pool2d", "avg_pool2d", "corr2d", "relu", "sigmoid", "tanh",
]


# ---------------------------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------------------------


def _pair(value, name: str, op: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value
    ):
        pair = (int(value[0]), int(value[-1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise RuntimeError(f"{op}: {name} must be {kind}, got {name}={value!r}")
    return pair


def _check_input(input, op: str, name: str = "input") -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(input).__name__}")
    if input.dim() not in (3, 4):
        raise RuntimeError(
            f"{op}: expected {name} to be 3-D (C, H, W) or 4-D (N, C, H, W), but got {name} of "
            f"shape {tuple(input.shape)} ({input.dim()}-D)"
        )


def _batched(input: Tensor) -> tuple[Tensor, bool]:
    """Add a batch dimension to an unbatched (C, H, W) input; say whether one was added."""
    return (input.unsqueeze(0), True) if input.dim() == 3 else (input, False)


def _conv_padding(padding, kernel, dilation, stride, op):
    """((top, bottom), (left, right)) from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride={stride})")
        pads = []
        for k, d in zip(kernel, dilation, strict=True):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))  # the odd one goes at the end
        return tuple(pads)
    ph, pw = _pair(padding, "padding", op, minimum=0)
    return ((ph, ph), (pw, pw))


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------


class _Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, window, groups):
        ctx.save_for_backward(x, weight)
        ctx.window, ctx.groups = window, groups
        return conv_kernels.conv2d_forward(x, weight, bias, window, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        window, groups = ctx.window, ctx.groups
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        if needs_x:
            grad_x = conv_kernels.conv2d_grad_input(grad, weight, window, groups, x.shape)
        if needs_weight:
            grad_weight = conv_kernels.conv2d_grad_weight(grad, x, window, groups, weight.shape)
        if needs_bias:
            grad_bias = conv_kernels.conv2d_grad_bias(grad)
        return grad_x, grad_weight, grad_bias


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of a batch of images with a bank of filters.

    input (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in/groups, kh, kw); bias (C_out,).
    Output (N, C_out, H_out, W_out) with, along each axis,

        H_out = floor((H + 2*padding - dilation*(kh - 1) - 1) / stride) + 1

    `padding` may also be 'valid' (0) or 'same' (output size = input size, stride 1; for an
    even kernel the extra row/column of padding goes at the bottom/right).

    >>> x = corrnet.arange(9.).reshape(1, 1, 3, 3)
    >>> F.conv2d(x, corrnet.tensor([[[[0., 1.], [2., 3.]]]]))
    tensor([[[[19., 25.],
              [37., 43.]]]])
    """
    op = "conv2d"
    _check_input(input, op)
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.dim() != 4:
        raise RuntimeError(
            f"{op}: expected weight to be 4-D (C_out, C_in/groups, kh, kw), but got weight of "
            f"shape {tuple(weight.shape)}"
        )
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise RuntimeError(f"{op}: groups must be a positive integer, got groups={groups!r}")
    x, unbatched = _batched(input)
    c_in = x.shape[1]
    c_out, c_group = weight.shape[:2]
    if c_group * groups != c_in:
        raise RuntimeError(
            f"{op}: input has {c_in} channels (input shape {tuple(input.shape)}) but weight "
            f"of shape {tuple(weight.shape)} expects {c_group * groups} "
            f"(weight.shape[1]={c_group} x groups={groups})"
        )
    if c_out % groups:
        raise RuntimeError(f"{op}: out channels {c_out} (weight shape {tuple(weight.shape)}) "
                           f"must be divisible by groups={groups}")
    if bias is not None:
        if not isinstance(bias, Tensor) or tuple(bias.shape) != (c_out,):
            shape = tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__
            raise RuntimeError(f"{op}: expected bias of shape ({c_out},) to match weight "
                               f"{tuple(weight.shape)}, got {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise RuntimeError(f"{op}: input ({x.dtype}) and {name} ({t.dtype}) must have the "
                               "same dtype")
    stride = _pair(stride, "stride", op, minimum=1)
    dilation = _pair(dilation, "dilation", op, minimum=1)
    kernel = tuple(weight.shape[2:])
    pads = _conv_padding(padding, kernel, dilation, stride, op)
    window = make_window(op, x.shape[2], x.shape[3], kernel, stride, pads, dilation)
    out = _Conv2d.apply(x, weight, bias, window, int(groups))
    return out.squeeze(0) if unbatched else out


def corr2d(X, K):
    """The 2-D cross-correlation of a matrix X with a kernel K (valid positions only).

        Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b],   Y: (H - kh + 1, W - kw + 1)

    Any numeric dtypes (the result follows PyTorch's promotion: int64 for int inputs);
    differentiable in X and K.

    >>> corrnet.corr2d(corrnet.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]]),
    ...                corrnet.tensor([[0, 1], [2, 3]]))
    tensor([[19, 25],
            [37, 43]])
    """
    for name, t in (("X", X), ("K", K)):
        if not isinstance(t, Tensor):
            raise TypeError(f"corr2d: {name} must be a Tensor, got {type(t).__name__}")
        if t.dim() != 2:
            raise RuntimeError(f"corr2d: {name} must be 2-D, got {name} of shape "
                               f"{tuple(t.shape)}")
    dtype = backend.result_type(X, K)
    if dtype is backend.bool_:
        dtype = backend.int64
    x, k = X._cast(dtype), K._cast(dtype)
    kh, kw = k.shape
    h, w = x.shape
    if kh > h or kw > w:
        raise RuntimeError(f"corr2d: kernel K of shape {tuple(K.shape)} is larger than the "
                           f"input X of shape {tuple(X.shape)}")
    out = conv2d(x.reshape(1, 1, h, w), k.reshape(1, 1, kh, kw))
    return out.reshape(h - kh + 1, w - kw + 1)


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------


def _pool_window(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _pair(kernel_size, "kernel_size", op, minimum=1)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(
        stride, "stride", op, minimum=1)
    padding = _pair(padding, "padding", op, minimum=0)
    dilation = _pair(dilation, "dilation", op, minimum=1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise RuntimeError(
            f"{op}: padding should be at most half of kernel_size (whatever the dilation), "
            f"but got padding={padding} and kernel_size={kernel}"
        )
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    return make_window(op, x.shape[2], x.shape[3], kernel, stride, pads, dilation, ceil_mode)


class _MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, window):
        find_winner = bool(ctx.needs_input_grad) and ctx.needs_input_grad[0]
        out, ctx.winner = pool_kernels.max_pool2d_forward(x, window, find_winner)
        ctx.window, ctx.x_shape = window, x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        return pool_kernels.max_pool2d_backward(grad, ctx.winner, ctx.window, ctx.x_shape)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """The maximum of each kernel_size window (padding counts as -inf).

    input (N, C, H, W) or (C, H, W); `stride` defaults to `kernel_size`. Along each axis

        H_out = floor((H + 2*padding - dilation*(k - 1) - 1) / stride) + 1

    (ceil instead of floor with ceil_mode, as long as the last window starts inside the
    input or the left padding). padding may be at most half the (dilated) kernel.

    >>> F.max_pool2d(corrnet.arange(16.).reshape(1, 1, 4, 4), 3, stride=2, padding=1)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    op = "max_pool2d"
    if return_indices:
        raise NotImplementedError("max_pool2d(return_indices=True)")
    _check_input(input, op)
    x, unbatched = _batched(input)
    window = _pool_window(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    out = _MaxPool2d.apply(x, window)
    return out.squeeze(0) if unbatched else out


class _AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, window, divisor):
        ctx.window, ctx.divisor, ctx.x_shape = window, divisor, x.shape
        return pool_kernels.avg_pool2d_forward(x, window, divisor)

    @staticmethod
    def backward(ctx, grad):
        return pool_kernels.avg_pool2d_backward(grad, ctx.divisor, ctx.window, ctx.x_shape)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """The mean of each kernel_size window.

    Output size as for `max_pool2d` (no dilation). The divisor is the window size, or, with
    ``count_include_pad=False``, the number of input (not padding) cells in the window, or
    `divisor_override`.

    >>> F.avg_pool2d(corrnet.arange(9.).reshape(1, 1, 3, 3), 2, stride=1)
    tensor([[[[2., 3.],
              [5., 6.]]]])
    """
    op = "avg_pool2d"
    _check_input(input, op)
    if divisor_override is not None and (
        not isinstance(divisor_override, numbers.Integral) or divisor_override == 0
    ):
        raise RuntimeError(f"{op}: divisor_override must be a non-zero integer, got "
                           f"{divisor_override!r}")
    x, unbatched = _batched(input)
    window = _pool_window(op, x, kernel_size, stride, padding, 1, ceil_mode)
    divisor = pool_kernels.avg_pool2d_divisor(window, count_include_pad, divisor_override)
    out = _AvgPool2d.apply(x, window, divisor)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------


def relu(input):
    return input.relu()


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()
