"""Convolution as a sum over the kernel's taps of channel GEMMs, the zero padding skipped.

im2col multiplies every window in full, zero padding included. On a small map that is a
large share of the work: a 3x3 kernel with padding 1 on a 3x3 map (ResNet-18's last stage on
96x96 inputs) reads the padding in 32 of its 81 window cells per channel pair, 40% of the
products. This module computes only the products whose input lies inside x. Each tap
(i, j) of the kernel shifts the input by (i*dh - top, j*dw - left); the outputs whose shifted
input lies inside x form a rectangle, [y_first, y_end) x [x_first, x_end), and on the
channels-last layout (H, W, N, C) that rectangle's inputs are one matrix of pixels by
channels:

    out_cl[rect, g]  += x_cl[shifted rect, g] @ weight[g, :, :, i, j]^T   per tap and group
        (rows*N, Og)  =      (rows*N, Cg)     @      (Cg, Og)

and the two gradients are the same products the other way round:

    grad_x_cl[shifted rect, g] += grad_cl[rect, g] @ weight[g, :, :, i, j]
         (rows*N, Cg)          =   (rows*N, Og)    @    (Og, Cg)
    grad_weight[g, :, :, i, j] = grad_cl[rect, g]^T @ x_cl[shifted rect, g]
         (Og, Cg)              =   (Og, rows*N)     @   (rows*N, Cg)

(x_cl: x as (H, W, N, C_in); out_cl, grad_cl: the output and its gradient as
(H_out, W_out, N, C_out); g the group's channels.) The layouts cost one transposed copy of
each operand and of the result; the shifted rectangles one copy per tap where they are not
whole rows of x (a stride, or a rectangle narrower than x). So the products must outweigh
the copies: many channels, small maps (`rule`).

Non-finite values: PyTorch's sum includes the padding's products, so an inf weight gives NaN
(inf * 0) where its tap meets the padding; this module leaves those products out. The planner
runs passes with non-finite operands on im2col + GEMM (plan.run), so this module only ever
sees finite ones.

Example (the output of a 3x3 kernel on a 3x3 map, padding 1, against the definition):

>>> import numpy as np
>>> from corrnet.kernels.windows import make_window
>>> x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3))
>>> window = make_window("conv2d", 3, 3, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
>>> forward(x, w, None, window, 1)[0, 0]
array([[4., 6., 4.],
       [6., 9., 6.],
       [4., 6., 4.]])
"""

from __future__ import annotations

import numpy as np

from .jit import jit, runs_compiled
from .windows import Window2d

DEFAULT_BUDGET = 256 * 2**20


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype, pass_name) -> bool:
    """Every geometry (stride, dilation, padding, groups) in float32 and float64."""
    return np.dtype(dtype) in (np.float32, np.float64) and len(x_shape) == 4


def _tap_range(out_size: int, size: int, stride: int, start: int) -> tuple[int, int]:
    """The outputs [first, end) whose input out*stride + start lies in [0, size) (first ==
    end: none).

    >>> _tap_range(3, 3, 1, -1)     # a 3x3 map, padding 1, the kernel's first row
    (1, 3)
    """
    first = max(0, -(start // stride))             # the least out with out*stride >= -start
    end = min(out_size, (size - 1 - start) // stride + 1) if size - 1 - start >= 0 else 0
    return first, max(first, end)


def _taps(window: Window2d):
    """Each tap with any input inside x: (i, j, output rows, output columns, input rows,
    input columns), the ranges as slices (the input ones strided)."""
    (top, _), (left, _) = window.padding
    (sh, sw), (dh, dw) = window.stride, window.dilation
    kh, kw = window.kernel
    taps = []
    for i in range(kh):
        row_start = i * dh - top
        y_first, y_end = _tap_range(window.out_height, window.height, sh, row_start)
        for j in range(kw):
            col_start = j * dw - left
            x_first, x_end = _tap_range(window.out_width, window.width, sw, col_start)
            if y_first == y_end or x_first == x_end:
                continue        # this tap reads only padding
            taps.append((i, j, slice(y_first, y_end), slice(x_first, x_end),
                         slice(y_first * sh + row_start, (y_end - 1) * sh + row_start + 1, sh),
                         slice(x_first * sw + col_start, (x_end - 1) * sw + col_start + 1, sw)))
    return taps


def padding_share(window: Window2d) -> float:
    """The share of im2col's products that read the zero padding (or the rows a window
    reaches past the padding): what this module leaves out."""
    total = window.out_height * window.out_width * window.kernel[0] * window.kernel[1]
    inside = sum((rows.stop - rows.start) * (cols.stop - cols.start)
                 for _, _, rows, cols, _, _ in _taps(window))
    return 1 - inside / total


def _channels_last(array: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (H, W, N, C), contiguous."""
    return np.ascontiguousarray(array.transpose(2, 3, 0, 1))


def _pixel_rows(array_cl: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The rectangle rows x cols of a channels-last array as a (pixels*N, C) matrix (a view
    where it is whole rows, else a copy)."""
    rect = array_cl[rows, cols]
    return np.ascontiguousarray(rect).reshape(-1, array_cl.shape[3])


def _chunk(n: int, x_shape, weight_shape, window: Window2d, dtype, budget: int) -> int:
    """Images per chunk whose temporaries fit the budget beside the weight-sized ones (one
    image at least; see `least_bytes`)."""
    per_image = _image_bytes(x_shape, weight_shape, window, dtype)
    return max(1, min(n, (budget - _weight_bytes(weight_shape, dtype)) // max(per_image, 1)))


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name) -> int:
    """The temporaries of one image: the channels-last copies of x (or its gradient) and of
    the output (or its gradient), one shifted rectangle and one product, and the result's
    layout copy; plus the weight's tap-major copy (and the weight gradient's sums)."""
    return _image_bytes(x_shape, weight_shape, window, dtype) + _weight_bytes(weight_shape,
                                                                              dtype)


def _weight_bytes(weight_shape, dtype) -> int:
    """The weight's tap-major copy, and the weight gradient's sums."""
    return 2 * int(np.prod(weight_shape)) * np.dtype(dtype).itemsize


def _image_bytes(x_shape, weight_shape, window: Window2d, dtype) -> int:
    inputs = x_shape[1] * window.height * window.width
    outputs = weight_shape[0] * window.out_height * window.out_width
    return np.dtype(dtype).itemsize * 3 * (inputs + outputs)


def _tap_major(weight: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, Cg, kh, kw) -> (kh, kw, G, Og, Cg), contiguous: each tap's (Og, Cg) matrix.
    Compiled where the kernels run (`_tap_major_kernel`; NumPy's transposing copy of
    ResNet-18's 512 -> 512 3x3 weight took 5.0 ms, a quarter of the forward pass, this 1.6),
    else NumPy's."""
    c_out, c_group, kh, kw = weight.shape
    if not runs_compiled(weight.dtype):
        return np.ascontiguousarray(weight.reshape(groups, c_out // groups, c_group, kh, kw)
                                    .transpose(3, 4, 0, 1, 2))
    taps_first = np.empty((kh, kw, c_out, c_group), weight.dtype)
    _tap_major_kernel(weight, taps_first)
    return taps_first.reshape(kh, kw, groups, c_out // groups, c_group)


# `_tap_major_kernel` moves this many output channels' kernels at a time
TAP_MAJOR_BLOCK = 16


@jit()
def _tap_major_kernel(weight, taps_first):
    """taps_first[i, j, o, c] = weight[o, c, i, j] for weight (C_out, Cg, kh, kw), a block of
    TAP_MAJOR_BLOCK output channels at a time, tap by tap: each tap's (block, Cg) rows are
    written in one run while the block's kernels stay in the cache. (Each kernel's kh*kw
    numbers written at once, to kh*kw rows whose addresses are a power of two apart, took as
    long as NumPy's copy: the rows fight for the same cache sets.)"""
    c_out, c_group, kh, kw = weight.shape
    for first in range(0, c_out, TAP_MAJOR_BLOCK):
        for i in range(kh):
            for j in range(kw):
                for o in range(first, min(c_out, first + TAP_MAJOR_BLOCK)):
                    kernels, row = weight[o], taps_first[i, j, o]
                    for c in range(c_group):
                        row[c] = kernels[c, i, j]


def forward(x, weight, bias, window: Window2d, groups: int, budget=DEFAULT_BUDGET):
    """out[n, o, y, x'] = bias[o] + sum of weight[o, c, i, j] * x[n, g(o)*Cg + c,
    y*sh + i*dh - top, x'*sw + j*dw - left] over the taps whose input lies inside x."""
    n = x.shape[0]
    c_out, c_group = weight.shape[:2]
    outs = c_out // groups
    taps = _taps(window)
    weights = _tap_major(weight, groups)
    out = np.empty((n, c_out, window.out_height, window.out_width), x.dtype)
    step = _chunk(n, x.shape, weight.shape, window, x.dtype, budget)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        x_cl = _channels_last(x[images])                              # (H, W, n, C_in)
        out_cl = np.zeros((window.out_height, window.out_width, x_cl.shape[2], c_out),
                          x.dtype)
        for i, j, rows, cols, in_rows, in_cols in taps:
            pixels = _pixel_rows(x_cl, in_rows, in_cols)              # (pixels*n, C_in)
            target = out_cl[rows, cols]
            for g in range(groups):
                # (pixels*n, Og) = (pixels*n, Cg) @ (Cg, Og)
                product = pixels[:, g * c_group:(g + 1) * c_group] @ weights[i, j, g].T
                target[..., g * outs:(g + 1) * outs] += product.reshape(
                    *target.shape[:3], outs)
        if bias is not None:
            out_cl += bias
        out[images] = out_cl.transpose(2, 3, 0, 1)
    return out


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
               budget=DEFAULT_BUDGET):
    """d loss / d x: each tap's product of the output gradient with the tap's weights, added
    into the inputs the tap read."""
    n, c_in = x_shape[:2]
    c_out, c_group = weight.shape[:2]
    outs = c_out // groups
    taps = _taps(window)
    weights = _tap_major(weight, groups)
    grad_x = np.empty(x_shape, grad_out.dtype)
    step = _chunk(n, x_shape, weight.shape, window, grad_out.dtype, budget)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        grad_cl = _channels_last(grad_out[images])                    # (H_out, W_out, n, C_out)
        grad_x_cl = np.zeros((window.height, window.width, grad_cl.shape[2], c_in),
                             grad_out.dtype)
        for i, j, rows, cols, in_rows, in_cols in taps:
            grads = _pixel_rows(grad_cl, rows, cols)                  # (pixels*n, C_out)
            target = grad_x_cl[in_rows, in_cols]
            for g in range(groups):
                # (pixels*n, Cg) = (pixels*n, Og) @ (Og, Cg)
                product = grads[:, g * outs:(g + 1) * outs] @ weights[i, j, g]
                target[..., g * c_group:(g + 1) * c_group] += product.reshape(
                    *target.shape[:3], c_group)
        grad_x[images] = grad_x_cl.transpose(2, 3, 0, 1)
    return grad_x


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                budget=DEFAULT_BUDGET):
    """d loss / d weight: per tap, the output gradient over the outputs whose input lies
    inside x, times those inputs, summed over the pixels and images; the taps that read only
    padding get 0."""
    n = x.shape[0]
    c_out, c_group, kh, kw = weight_shape
    outs = c_out // groups
    taps = _taps(window)
    sums = np.zeros((kh, kw, groups, outs, c_group), x.dtype)
    step = _chunk(n, x.shape, weight_shape, window, x.dtype, budget)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        x_cl = _channels_last(x[images])                              # (H, W, n, C_in)
        grad_cl = _channels_last(grad_out[images])                    # (H_out, W_out, n, C_out)
        for i, j, rows, cols, in_rows, in_cols in taps:
            pixels = _pixel_rows(x_cl, in_rows, in_cols)              # (pixels*n, C_in)
            grads = _pixel_rows(grad_cl, rows, cols)                  # (pixels*n, C_out)
            for g in range(groups):
                # (Og, Cg) = (Og, pixels*n) @ (pixels*n, Cg)
                sums[i, j, g] += (grads[:, g * outs:(g + 1) * outs].T
                                  @ pixels[:, g * c_group:(g + 1) * c_group])
    # (kh, kw, G, Og, Cg) -> (C_out, Cg, kh, kw)
    return np.ascontiguousarray(sums.reshape(kh, kw, c_out, c_group).transpose(2, 3, 0, 1))


def rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """Where leaving out the padding's products beats im2col + GEMM: at least a fifth of them
    read padding (`padding_share`), and at least 64 channels per group, so that each number
    copied into the channels-last layouts feeds long dot products. Both are counts of work,
    not of one machine's speeds. Measured against im2col + GEMM (2-core AMD EPYC, in one
    process, interleaved; forward / input gradient / weight gradient, ms):

    - N=64, 512 -> 512 on 3x3 maps, padding 1 (ResNet-18's last stage at 96x96 inputs,
      share 0.40): 12.0 / 12.0 / 12.0 against 16.4 / 17.0 / 16.8;
    - N=64, 256 -> 512, stride 2 on 6x6 (share 0.21): 8.7 / 8.6 / 8.5 against 9.1 / 11.0 / 9.5;
    - N=64, 64 -> 64 on 4x4 (share 0.31): 0.9 / 0.7 / 0.9 against 0.9 / 1.3 / 1.2;
    - below a fifth, level or slower: N=16, 512 -> 512 on 7x7 (share 0.18) 21.5 / 21.5 /
      21.1 against 20.2 / 21.1 / 20.7; N=64, 128 -> 256, stride 2 on 12x12 (0.11) 10.9 / 12.0 /
      10.5 against 9.3 / 11.4 / 11.1."""
    channels = min(x_shape[1], weight_shape[0]) // groups
    return channels >= 64 and padding_share(window) >= 0.2
