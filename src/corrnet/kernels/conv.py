"""2-D convolution (cross-correlation, as in deep learning) by im2col + GEMM.

Shapes: input x (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw), output
(N, C_out, H_out, W_out); G = groups, Cg = C_in/G channels per group, K = Cg*kh*kw the
length of one unrolled window, L = H_out*W_out the windows of one image.

The unrolled windows ("col") are laid out with the batch folded into the columns,
(G, K, N*L): then the forward pass, the weight gradient and the input gradient are each one
(batched over groups) matrix product, and the weight gradient sums over the batch inside
that product instead of after it.

The algorithm works for every shape, dtype and option, and is the planner's fallback
(plan.py). Its cost is the col buffer, K/(stride_h*stride_w) times the input: `forward`,
`grad_input` and `grad_weight` bound it by unrolling a chunk of the batch at a time (or, when
one image alone is over the budget, a band of output rows at a time).

With the batch innermost (`batch_innermost`) and numba on, im2col's copies and col2im's adds
run as compiled loops over the input channels, split across the threads; col2im then gathers
each input cell's terms in kernel-offset order (the sums of NumPy's strided adds, bit for
bit) and writes (N, C, H, W) without a transposed copy (LeNet's second layer: im2col 1.3 ->
0.9 ms, col2im 2.8 -> 0.7-1.1 ms).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .jit import jit, runs_compiled
from .threads import split_run
from .windows import Window2d, pad, shifted_views, unpad


def batch_innermost(n: int, window: Window2d) -> bool:
    """The layout of the unrolled windows for a batch of n: with the batch innermost,
    (C, kh, kw, H_out, W_out, N), each strided copy runs over N contiguous numbers instead of
    W_out; that wins where rows are short and the batch is large (LeNet's second layer: im2col
    4.4 -> 1.4 ms, col2im 8.9 -> 3.2 ms), and loses to the output transpose where rows are
    long (its first layer)."""
    return n >= 16 and window.out_width <= 16


def im2col(x_padded: np.ndarray, window: Window2d, batch_last: bool = False) -> np.ndarray:
    """Unroll every window: (N, C, Hp, Wp) -> col (C, kh, kw, N, H_out, W_out), or with
    `batch_last` (C, kh, kw, H_out, W_out, N).

    One strided copy per kernel offset (kh*kw copies), no loop over pixels. The input is
    first rearranged like col, channel-major (C, N, Hp, Wp) or (C, Hp, Wp, N), so that every
    copy reads and writes in the same order.
    """
    n, c = x_padded.shape[:2]
    kh, kw = window.kernel
    if batch_last:
        source = np.ascontiguousarray(x_padded.transpose(1, 2, 3, 0))   # (C, Hp, Wp, N)
        col = np.empty((c, kh, kw, window.out_height, window.out_width, n), x_padded.dtype)
        if runs_compiled(col.dtype):
            # the same copies, compiled, input channels split across the threads
            geometry = (*window.stride, *window.dilation)
            split_run(lambda source_part, col_part: _im2col_batch_last_kernel(
                source_part, col_part, *geometry), source, col)
            return col
        source = source.transpose(0, 3, 1, 2)                  # viewed as (C, N, Hp, Wp)
        dest = col.transpose(0, 1, 2, 5, 3, 4)                 # viewed as (C, kh, kw, N, ...)
    else:
        source = np.ascontiguousarray(x_padded.transpose(1, 0, 2, 3)) if c > 1 else \
            x_padded.reshape(1, n, *x_padded.shape[2:])
        col = dest = np.empty((c, kh, kw, n, window.out_height, window.out_width),
                              x_padded.dtype)
    for (i, j), view in shifted_views(source, window):      # view (C, N, H_out, W_out)
        dest[:, i, j] = view
    return col


def col2im(col: np.ndarray, window: Window2d, x_shape: tuple, batch_last: bool = False):
    """The adjoint of `im2col`: add each unrolled window back where it came from.

    col (C, kh, kw, N, H_out, W_out) (or, batch_last, (C, kh, kw, H_out, W_out, N)) ->
    (N, C, H, W); one strided add per kernel offset, into a buffer laid out like col that is
    turned to (N, C, H, W) once at the end. With batch_last and the compiled kernels on,
    `_col2im_batch_last_kernel` gathers each input cell's terms instead (same sums, same
    order), writing (N, C, H, W) directly.
    """
    if batch_last and runs_compiled(col.dtype):
        out = np.empty(x_shape, dtype=col.dtype)
        (top, _), (left, _) = window.padding
        geometry = (*window.stride, *window.dilation, top, left)
        # pieces of the input channels on the threads: col (C, ...) and out as (C, N, H, W)
        split_run(lambda col_part, out_part: _col2im_batch_last_kernel(col_part, out_part,
                                                                       *geometry),
                  np.ascontiguousarray(col), out.transpose(1, 0, 2, 3))
        return out
    n, c = x_shape[:2]
    shape = (window.padded_height, window.padded_width)
    if batch_last:
        padded = np.zeros((c, *shape, n), dtype=col.dtype).transpose(0, 3, 1, 2)
        col = col.transpose(0, 1, 2, 5, 3, 4)                  # viewed as (C, kh, kw, N, ...)
    else:
        padded = np.zeros((c, n, *shape), dtype=col.dtype)
    for (i, j), view in shifted_views(padded, window):      # view (C, N, H_out, W_out)
        view += col[:, i, j]
    image = unpad(padded, window).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(image) if c > 1 or batch_last else image.reshape(x_shape)


@jit()
def _im2col_batch_last_kernel(source, col, sh, sw, dh, dw):
    """col[c, i, j, oy, ox, :] = source[c, oy*sh + i*dh, ox*sw + j*dw, :]: `im2col`'s copies
    with the batch innermost, source the padded input as (C, Hp, Wp, N)."""
    channels, kh, kw, out_height, out_width, batch = col.shape
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                for oy in range(out_height):
                    for ox in range(out_width):
                        window_cell = source[c, oy * sh + i * dh, ox * sw + j * dw]   # (N,)
                        into = col[c, i, j, oy, ox]
                        for n in range(batch):
                            into[n] = window_cell[n]


@jit()
def _col2im_batch_last_kernel(col, out, sh, sw, dh, dw, top, left):
    """out[n, c, y, x] (out viewed as (C, N, H, W)) = the sum, in kernel-offset order, of
    col[c, i, j, oy, ox, n] over the windows (oy, ox) whose offset (i, j) lands on padded
    cell (y + top, x + left): oy*sh + i*dh = y + top, ox*sw + j*dw = x + left."""
    channels, kh, kw, out_height, out_width, batch = col.shape
    height, width = out.shape[2], out.shape[3]
    total = np.empty(batch, dtype=col.dtype)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                for n in range(batch):
                    total[n] = 0
                for i in range(kh):
                    row = y + top - i * dh            # = oy * sh
                    if row < 0 or row % sh != 0 or row // sh >= out_height:
                        continue
                    for j in range(kw):
                        column = x + left - j * dw    # = ox * sw
                        if column < 0 or column % sw != 0 or column // sw >= out_width:
                            continue
                        terms = col[c, i, j, row // sh, column // sw]     # (N,)
                        for n in range(batch):
                            total[n] += terms[n]
                for n in range(batch):
                    out[c, n, y, x] = total[n]


def unfold(x: np.ndarray, window: Window2d) -> np.ndarray:
    """Every window as a column, per image: (N, C, H, W) -> (N, C*kh*kw, H_out*W_out)."""
    n, c = x.shape[:2]
    col = im2col(pad(x, window), window)                        # (C, kh, kw, N, H_out, W_out)
    per_image = np.ascontiguousarray(np.moveaxis(col, 3, 0))    # (N, C, kh, kw, H_out, W_out)
    return per_image.reshape(n, c * window.kernel[0] * window.kernel[1], -1)


def fold(col: np.ndarray, window: Window2d, x_shape: tuple) -> np.ndarray:
    """The adjoint of `unfold`: (N, C*kh*kw, H_out*W_out) -> x_shape (N, C, H, W)."""
    n, c = x_shape[:2]
    kh, kw = window.kernel
    col = col.reshape(n, c, kh, kw, window.out_height, window.out_width)
    return col2im(np.moveaxis(col, 0, 3), window, x_shape)


def unrolled(x: np.ndarray, window: Window2d, groups: int, padded: bool = False) -> np.ndarray:
    """im2col of x (already padded, if `padded`), grouped: col (G, K, N*L), its columns in
    `batch_innermost` order."""
    n, c = x.shape[:2]
    col = im2col(x if padded else pad(x, window), window, batch_innermost(n, window))
    return col.reshape(groups, (c // groups) * window.kernel[0] * window.kernel[1], -1)


def _to_rows(images: np.ndarray, groups: int, window: Window2d) -> np.ndarray:
    """(N, C_out, H_out, W_out) -> (G, C_out/G, N*L), columns in the order of `unrolled`."""
    n, c_out = images.shape[:2]
    order = (1, 2, 3, 0) if batch_innermost(n, window) else (1, 0, 2, 3)
    return np.ascontiguousarray(images.transpose(order)).reshape(groups, c_out // groups, -1)


def _from_rows(rows: np.ndarray, n: int, window: Window2d) -> np.ndarray:
    """The inverse of `_to_rows`: (G, C_out/G, N*L) -> (N, C_out, H_out, W_out)."""
    c_out = rows.shape[0] * rows.shape[1]
    oh, ow = window.out_height, window.out_width
    if batch_innermost(n, window):
        images = rows.reshape(c_out, oh, ow, n).transpose(3, 0, 1, 2)
    else:
        images = rows.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(images)


def conv2d_forward(col: np.ndarray, weight, bias, n: int, window: Window2d) -> np.ndarray:
    """out[n, o, y, x'] = sum_{c, i, j} weight[o, c, i, j] * padded[n, g(o)*Cg + c, window]."""
    groups = col.shape[0]
    c_out = weight.shape[0]
    weight_rows = weight.reshape(groups, c_out // groups, -1)   # (G, C_out/G, K)
    # (G, C_out/G, N*L) = (G, C_out/G, K) @ (G, K, N*L)
    out = _from_rows(np.matmul(weight_rows, col), n, window)
    if bias is not None:
        out += bias.reshape(1, c_out, 1, 1)
    return out


def conv2d_grad_input(grad_out, weight, window: Window2d, groups: int, x_shape) -> np.ndarray:
    """d loss / d x: each window's gradient, W^T @ grad, added back by col2im."""
    n, c_in = x_shape[:2]
    c_out = weight.shape[0]
    kh, kw = window.kernel
    weight_rows = weight.reshape(groups, c_out // groups, -1)           # (G, C_out/G, K)
    # (G, K, N*L) = (G, K, C_out/G) @ (G, C_out/G, N*L)
    grad_col = np.matmul(weight_rows.transpose(0, 2, 1), _to_rows(grad_out, groups, window))
    batch_last = batch_innermost(n, window)
    spatial = (window.out_height, window.out_width)
    grad_col = grad_col.reshape(c_in, kh, kw, *((*spatial, n) if batch_last else (n, *spatial)))
    return col2im(grad_col, window, x_shape, batch_last)


def conv2d_grad_weight(grad_out, col: np.ndarray, weight_shape, window: Window2d) -> np.ndarray:
    """d loss / d weight: grad @ col^T, the sum over the batch done by the product."""
    groups = col.shape[0]
    # (G, C_out/G, K) = (G, C_out/G, N*L) @ (G, N*L, K)
    grad_weight = np.matmul(_to_rows(grad_out, groups, window), col.transpose(0, 2, 1))
    return grad_weight.reshape(weight_shape)


def conv2d_grad_bias(grad_out) -> np.ndarray:
    return grad_out.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------------------------------------
# the planner's interface (plan.py): each pass in chunks, so that col stays within a budget
# ---------------------------------------------------------------------------------------------


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype, pass_name) -> bool:
    return True


def col_bytes(x_shape, weight_shape, window: Window2d, dtype) -> int:
    """The size of the whole batch's col, (G, K, N*L)."""
    n, c_in = x_shape[:2]
    kh, kw = window.kernel
    return n * c_in * kh * kw * window.out_height * window.out_width * np.dtype(dtype).itemsize


def _chunks(x_shape, weight_shape, window: Window2d, dtype, budget: int):
    """Yield (batch slice, output-row slice) pieces whose col and GEMM result stay within
    `budget` bytes: whole images while one fits, else bands of output rows of one image."""
    n, c_in = x_shape[:2]
    kh, kw = window.kernel
    # bytes per output position: its window (C_in*kh*kw numbers) and its C_out results
    per_position = (c_in * kh * kw + weight_shape[0]) * np.dtype(dtype).itemsize
    per_image = per_position * window.out_height * window.out_width
    if per_image <= budget:
        step = max(1, budget // max(per_image, 1))
        for start in range(0, n, step):
            yield slice(start, min(n, start + step)), slice(0, window.out_height)
        return
    rows = max(1, budget // (per_position * window.out_width))
    for image in range(n):
        for top in range(0, window.out_height, rows):
            yield slice(image, image + 1), slice(top, min(window.out_height, top + rows))


def _band(padded: np.ndarray, window: Window2d, out_rows: slice):
    """The padded input rows that output rows `out_rows` read, and the window over them."""
    stride_h, dil_h = window.stride[0], window.dilation[0]
    band = dataclasses.replace(window, out_height=out_rows.stop - out_rows.start)
    first = out_rows.start * stride_h
    last = (out_rows.stop - 1) * stride_h + dil_h * (window.kernel[0] - 1) + 1
    return padded[:, :, first:last], band


def forward(x, weight, bias, window: Window2d, groups: int, budget: int) -> np.ndarray:
    """conv2d forward, unrolling at most `budget` bytes of windows at a time."""
    n = x.shape[0]
    if col_bytes(x.shape, weight.shape, window, x.dtype) <= budget:
        return conv2d_forward(unrolled(x, window, groups), weight, bias, n, window)
    padded = pad(x, window)
    out = np.empty((n, weight.shape[0], window.out_height, window.out_width), x.dtype)
    for images, rows in _chunks(x.shape, weight.shape, window, x.dtype, budget):
        source, band = _band(padded[images], window, rows)
        col = unrolled(source, band, groups, padded=True)
        out[images, :, rows] = conv2d_forward(col, weight, bias, len(source), band)
    return out


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape, budget: int):
    """d loss / d x in pieces: each piece's windows added back into the padded gradient."""
    if col_bytes(x_shape, weight.shape, window, grad_out.dtype) <= budget:
        return conv2d_grad_input(grad_out, weight, window, groups, x_shape)
    n, c_in = x_shape[:2]
    grad_padded = np.zeros((n, c_in, window.padded_height, window.padded_width),
                           grad_out.dtype)
    for images, rows in _chunks(x_shape, weight.shape, window, grad_out.dtype, budget):
        target, band = _band(grad_padded[images], window, rows)
        piece = grad_out[images, :, rows]
        band_shape = (piece.shape[0], c_in, target.shape[2], target.shape[3])
        # the band is its own unpadded input: col2im adds the band's windows into it
        unpadded_band = dataclasses.replace(band, height=target.shape[2], width=target.shape[3],
                                            padding=((0, 0), (0, 0)))
        target += conv2d_grad_input(piece, weight, unpadded_band, groups, band_shape)
    return np.ascontiguousarray(unpad(grad_padded, window))


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int, budget: int):
    """d loss / d weight, summed over pieces of the batch (or of one image's rows)."""
    if col_bytes(x.shape, weight_shape, window, x.dtype) <= budget:
        return conv2d_grad_weight(grad_out, unrolled(x, window, groups), weight_shape, window)
    padded = pad(x, window)
    total = np.zeros(weight_shape, dtype=grad_out.dtype)
    for images, rows in _chunks(x.shape, weight_shape, window, x.dtype, budget):
        source, band = _band(padded[images], window, rows)
        col = unrolled(source, band, groups, padded=True)
        total += conv2d_grad_weight(np.ascontiguousarray(grad_out[images, :, rows]), col,
                                    weight_shape, band)
    return total
