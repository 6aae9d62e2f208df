"""Max and average pooling over (N, C, H, W) arrays, forward and backward.

Two implementations with the same results:

* NumPy (any dtype, and the fallback): whole-array operations over the kh*kw shifted views
  of the padded input (windows.py), never a loop over pixels. The forward pass is a running
  np.maximum or sum of the views; max pooling's winner (the kernel offset i*kw + j of each
  window's maximum) changes only where a view is strictly greater than the running maximum,
  so a tie keeps the earlier offset. Backward, where windows don't overlap (kernel == stride,
  no padding or dilation) each offset's view of the input gradient is written once; where
  they overlap, average pooling adds the views into a zero padded buffer, and max pooling
  adds every window's gradient into its winner cell with one np.bincount.
* compiled (numba, `jit.enabled()`, float32/float64): one pass over the input, window by
  window: a max-pool window keeps its maximum and, in the same pass, its offset (NumPy
  can't find both at once); the backward passes zero a plane of the input gradient and add
  each window's gradient to its winner cell (average: its share to every cell). Padding is
  never materialized: the windows wholly inside the input run fixed loops, the others scan
  only their cells inside it. The forward kernels and the average-pool backward are
  compiled for one window geometry (kernel size, stride, dilation as constants: the window
  loops unroll and vectorize, 3-5x faster than with the geometry as arguments); that costs
  about a second per geometry and dtype, once (numba caches it on disk), so they run from
  `COMPILED_MIN_SIZE` elements, and NumPy below. The max-pool backward is one kernel for
  every geometry, and runs at any size.

A large batch is cut into pieces of images that run on `threads.get_num_threads()` threads
(`threads.split_run`; the kernels release the GIL). On two cores, LeNet's first average pool
(256, 6, 28, 28): backward 1.2 -> 1.0 ms, forward 0.75 -> 0.68 ms; its max pool's backward
1.2 -> 0.85 ms, while its forward (0.6 ms) gains nothing.

Max pooling semantics (PyTorch's CPU kernel): padding counts as -inf and never wins; within
a window the scan starts at maxval = -inf with the first cell inside the input as winner and
replaces it where `value > maxval or isnan(value)`: a tie goes to the first cell in row-major
order, NaN to the last NaN, a window of -inf only to its first cell inside the input.
"""

from __future__ import annotations

import functools

import numpy as np

from .jit import jit, runs_compiled
from .threads import split_run
from .windows import Window2d, adaptive_bounds, pad, shifted_views, unpad

# arrays (N*C*H*W elements) from which the kernels compiled per geometry run (see above)
COMPILED_MIN_SIZE = 1 << 16

def _lowest(dtype) -> float | int:
    if np.issubdtype(dtype, np.floating):
        return -np.inf
    if dtype == np.bool_:
        return False
    return np.iinfo(dtype).min


def _winner_dtype(window: Window2d):
    """The smallest integer type that holds every kernel offset i*kw + j (unsigned: an index
    that numba knows is not negative needs no wraparound test)."""
    return np.uint8 if window.kernel[0] * window.kernel[1] <= 256 else np.uint32


def _non_overlapping(window: Window2d) -> bool:
    """Whether every input cell lies in at most one window and no window reaches outside the
    input: kernel == stride, no dilation, no padding, no ceil_mode overhang."""
    return (window.kernel == window.stride and window.dilation == (1, 1)
            and (window.padded_height, window.padded_width) == (window.height, window.width))


def _inside_offsets(out: int, size: int, kernel: int, stride: int, dilation: int,
                    before: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis, for each output position o: the kernel offsets [first, end) whose cell
    o*stride - before + offset*dilation lies inside the input [0, size)."""
    start = np.arange(out) * stride - before                    # coordinate of offset 0
    first = np.maximum(-(start // dilation), 0)                 # ceil(-start / dilation)
    end = np.minimum(-((start - size) // dilation), kernel)     # ceil((size - start) / dilation)
    return first.astype(np.int64), end.astype(np.int64)


def _inner_range(first: np.ndarray, end: np.ndarray, kernel: int) -> tuple[int, int]:
    """The output positions [from, to) whose whole window lies inside the input (a range:
    only windows at the two ends reach outside)."""
    inside = np.flatnonzero((first == 0) & (end == kernel))
    return (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, 0)


def _scan_plan(window: Window2d) -> tuple:
    """The geometry arguments of the compiled window kernels, in their order:

    top, left: the padding before the input; row_first, row_end (H_out,) and col_first,
    col_end (W_out,): the kernel offsets of each window row and column that lie inside the
    input (`_inside_offsets`); inner_rows_from, inner_rows_to, inner_cols_from,
    inner_cols_to: the windows wholly inside the input; outer_cols: the other columns;
    all_cols: 0 ... W_out - 1.
    """
    (top, _), (left, _) = window.padding
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    row_first, row_end = _inside_offsets(window.out_height, window.height, kh, sh, dh, top)
    col_first, col_end = _inside_offsets(window.out_width, window.width, kw, sw, dw, left)
    inner_cols = _inner_range(col_first, col_end, kw)
    all_cols = np.arange(window.out_width)
    outer_cols = np.concatenate([all_cols[:inner_cols[0]], all_cols[inner_cols[1]:]])
    return (top, left, row_first, row_end, col_first, col_end,
            *_inner_range(row_first, row_end, kh), *inner_cols, outer_cols, all_cols)


def _runs_compiled(a: np.ndarray) -> bool:
    """Whether a pooling pass over `a` (the input, or the input gradient) runs the kernels
    compiled for its window geometry: floats, numba on, and large enough (see above)."""
    return runs_compiled(a.dtype) and a.size >= max(COMPILED_MIN_SIZE, 1)


# ---------------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------------


def max_pool2d_forward(x: np.ndarray, window: Window2d, find_winner: bool = False):
    """Return (out, winner).

    out (N, C, H_out, W_out) is the maximum of each window (NaN propagates, as in PyTorch).
    With `find_winner`, winner (same shape, uint8, or uint32 for kernels of more than 256
    cells) holds each window's winning kernel offset i*kw + j, for the backward pass and for
    `max_pool2d_indices`: the first maximum in row-major order, or the last NaN in a window
    that holds NaN; a padding cell never wins, even against an input of -inf. Otherwise
    winner is None.
    """
    if _runs_compiled(x):
        out, winner = _max_pool_compiled(x, window)
        return out, (winner if find_winner else None)
    return _max_pool_numpy(x, window, find_winner)


def _max_pool_compiled(x: np.ndarray, window: Window2d):
    x = np.ascontiguousarray(x)
    shape = x.shape[:2] + (window.out_height, window.out_width)
    out = np.empty(shape, dtype=x.dtype)
    winner = np.empty(shape, dtype=_winner_dtype(window))
    kernel = _max_pool_kernel(*window.kernel, *window.stride, *window.dilation)
    plan = _scan_plan(window)
    split_run(lambda *images: kernel(*images, *plan, x.dtype.type(-np.inf)), x, out, winner)
    return out, winner


@functools.cache
def _max_pool_kernel(kh: int, kw: int, sh: int, sw: int, dh: int, dw: int):
    """The compiled max-pool forward for one geometry: kh ... dw are constants to numba.
    (At LLVM's own vector width: 512-bit vectors made it 9-24% slower on an Intel Xeon, see
    `jit.jit`.)"""

    @jit(wide_vectors=False)
    def kernel(x, out, winner, top, left, row_first, row_end, col_first, col_end,
               inner_rows_from, inner_rows_to, inner_cols_from, inner_cols_to, outer_cols,
               all_cols, lowest):
        """out[n, c, oy, ox] = the maximum of window (oy, ox), winner[n, c, oy, ox] its
        kernel offset, by PyTorch's rule over the window's cells inside the input. Windows
        inner_rows x inner_cols lie inside the input; outer_cols are the other columns."""
        batch, channels = x.shape[0], x.shape[1]
        out_height = out.shape[2]
        # Indices that numba can't prove non-negative get a wraparound test that keeps the
        # window loops from vectorizing (3-6x slower): so the inner windows count from 0,
        # and their first row and column are clamped at 0 (which changes nothing there).
        first_oy, first_ox = max(inner_rows_from, 0), max(inner_cols_from, 0)
        first_row = max(inner_rows_from * sh - top, 0)
        first_col = max(inner_cols_from * sw - left, 0)
        for plane in range(batch * channels):
            n, c = plane // channels, plane % channels
            image, plane_out, plane_winner = x[n, c], out[n, c], winner[n, c]
            # 1. the windows inside the input: fixed loops, where a NaN is only noted
            has_nan = False
            for a in range(inner_rows_to - inner_rows_from):
                top_row = first_row + a * sh
                for b in range(inner_cols_to - inner_cols_from):
                    left_col = first_col + b * sw
                    best = lowest
                    best_offset = 0
                    for i in range(kh):
                        for j in range(kw):
                            value = image[top_row + i * dh, left_col + j * dw]
                            has_nan |= value != value
                            if value > best:
                                best = value
                                best_offset = i * kw + j
                    plane_out[first_oy + a, first_ox + b] = best
                    plane_winner[first_oy + a, first_ox + b] = best_offset
            # 2. the windows reaching outside, and all windows again if the plane holds NaN:
            # PyTorch's rule over each window's cells inside the input
            for oy in range(out_height):
                inner_row = inner_rows_from <= oy < inner_rows_to and not has_nan
                top_row = oy * sh - top
                for ox in outer_cols if inner_row else all_cols:
                    left_col = ox * sw - left
                    best = lowest
                    best_offset = min(row_first[oy], kh - 1) * kw + min(col_first[ox], kw - 1)
                    for i in range(row_first[oy], row_end[oy]):
                        for j in range(col_first[ox], col_end[ox]):
                            value = image[top_row + i * dh, left_col + j * dw]
                            if value > best or value != value:
                                best = value
                                best_offset = i * kw + j
                    plane_out[oy, ox] = best
                    plane_winner[oy, ox] = best_offset

    return kernel


def _max_pool_numpy(x: np.ndarray, window: Window2d, find_winner: bool):
    """Running np.maximum over the shifted views of the -inf padded input (not copied when
    there is nothing to pad); the winner changes only where a view is strictly greater."""
    padded = pad(x, window, value=_lowest(x.dtype))
    views = [view for _, view in shifted_views(padded, window)]
    out = views[0].copy()
    winner = np.zeros(out.shape, dtype=_winner_dtype(window)) if find_winner else None
    greater = np.empty(out.shape, dtype=bool) if find_winner else None
    for k, view in enumerate(views[1:], start=1):
        if find_winner:
            np.greater(view, out, out=greater)      # False where out is NaN: fixed below
            np.copyto(winner, k, where=greater)
        np.maximum(out, view, out=out)
    if not find_winner:
        return out, None
    if padded is not x:
        # a padding cell wins only where the whole window is the lowest value (a tie kept by
        # offset 0); PyTorch then keeps the window's first cell inside the input
        all_lowest = out == _lowest(x.dtype)
        if all_lowest.any():
            first_inside = np.broadcast_to(_first_inside_offset(window), out.shape)
            np.copyto(winner, first_inside, where=all_lowest)
    if np.issubdtype(x.dtype, np.floating) and np.isnan(out).any():
        for k, view in enumerate(views):
            np.copyto(winner, k, where=np.isnan(view))
    return out, winner


def _first_inside_offset(window: Window2d) -> np.ndarray:
    """(H_out, W_out): the first kernel offset at or after the input's top-left corner, the
    winner of a window whose input cells are all the lowest value (PyTorch starts there)."""
    (top, _), (left, _) = window.padding
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    row_first, _ = _inside_offsets(window.out_height, window.height, kh, sh, dh, top)
    col_first, _ = _inside_offsets(window.out_width, window.width, kw, sw, dw, left)
    first_row, first_col = np.minimum(row_first, kh - 1), np.minimum(col_first, kw - 1)
    return (first_row[:, None] * kw + first_col[None, :]).astype(_winner_dtype(window))


def max_pool2d_indices(winner: np.ndarray, window: Window2d) -> np.ndarray:
    """The flat input index (row * W + col, per (n, c) plane) of each window's winner, as
    PyTorch's return_indices; int64, shape (N, C, H_out, W_out)."""
    winner = winner.astype(np.int64)
    kw = window.kernel[1]
    (stride_h, stride_w), (dil_h, dil_w) = window.stride, window.dilation
    (top, _), (left, _) = window.padding
    rows = np.arange(window.out_height)[:, None] * stride_h - top + (winner // kw) * dil_h
    cols = np.arange(window.out_width) * stride_w - left + (winner % kw) * dil_w
    return rows * window.width + cols


def max_pool2d_backward(grad_out: np.ndarray, winner: np.ndarray, window: Window2d,
                        x_shape: tuple) -> np.ndarray:
    """grad_x (N, C, H, W): each window's gradient added to its winner cell."""
    if runs_compiled(grad_out.dtype) and grad_out.size and _non_overlapping(window):
        grad_x = np.empty(x_shape, dtype=grad_out.dtype)
        kernel = _max_pool_backward_disjoint_kernel(*window.kernel)
        split_run(kernel, np.ascontiguousarray(grad_out), np.ascontiguousarray(winner), grad_x)
        return grad_x
    if runs_compiled(grad_out.dtype) and grad_out.size:
        grad_x = np.empty(x_shape, dtype=grad_out.dtype)
        (kh, kw), (dh, dw) = window.kernel, window.dilation
        offsets = np.arange(kh * kw)
        (top, _), (left, _) = window.padding
        # (contiguous: one compiled kernel per dtype, although grad_out is often a broadcast)
        shifts = (offsets // kw) * dh, (offsets % kw) * dw
        split_run(lambda *images: _max_pool_backward_kernel(*images, *window.stride, top, left,
                                                            *shifts),
                  np.ascontiguousarray(grad_out), np.ascontiguousarray(winner), grad_x)
        return grad_x
    if _non_overlapping(window):
        # each input cell lies in at most one window: each offset's view is written once
        grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
        for k, (_, view) in enumerate(shifted_views(grad_x, window)):
            np.copyto(view, grad_out, where=winner == k)
        return grad_x
    # overlapping windows: one bincount adds every window's gradient into its winner cell
    # (several windows may pick the same cell); a window with no cell inside the input
    # (possible with dilation) has nowhere to send its gradient
    indices = max_pool2d_indices(winner, window)
    row_first, row_end, col_first, col_end = _scan_plan(window)[2:6]
    reaching_in = (row_first < row_end)[:, None] & (col_first < col_end)[None, :]
    if not reaching_in.all():
        indices = np.where(reaching_in, indices, 0)
        grad_out = np.where(reaching_in, grad_out, 0)
    return scatter_to_indices(grad_out, indices, x_shape)


@jit()
def _max_pool_backward_kernel(grad_out, winner, grad_x, sh, sw, top, left, row_shift,
                              col_shift):
    """grad_x = 0, then grad_out[n, c, oy, ox] added to the winner cell of window (oy, ox):
    row oy*sh - top + row_shift[k], column ox*sw - left + col_shift[k] for offset k."""
    batch, channels, height, width = grad_x.shape
    out_height, out_width = grad_out.shape[2], grad_out.shape[3]
    for plane in range(batch * channels):
        n, c = plane // channels, plane % channels
        grad_image, plane_grad, plane_winner = grad_x[n, c], grad_out[n, c], winner[n, c]
        grad_image[:, :] = 0
        for oy in range(out_height):
            for ox in range(out_width):
                offset = plane_winner[oy, ox]
                row = oy * sh - top + row_shift[offset]
                col = ox * sw - left + col_shift[offset]
                if 0 <= row < height and 0 <= col < width:  # no cell inside: nowhere to go
                    grad_image[row, col] += plane_grad[oy, ox]


# ---------------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------------


def avg_pool2d_divisor(window: Window2d, count_include_pad: bool,
                       divisor_override: int | None) -> np.ndarray:
    """The number each window's sum is divided by, shape (H_out, W_out).

    With count_include_pad the window counts padding cells but not the cells that ceil_mode
    adds beyond the padding; without it, only input cells count.
    """
    if divisor_override:
        return np.full((window.out_height, window.out_width), divisor_override, dtype=np.int64)
    (top, bottom), (left, right) = window.padding
    counted = np.zeros((window.padded_height, window.padded_width), dtype=np.int64)
    if count_include_pad:
        counted[:window.height + top + bottom, :window.width + left + right] = 1
    else:
        counted[top:top + window.height, left:left + window.width] = 1
    return sum(view for _, view in shifted_views(counted, window))


def avg_pool2d_forward(x: np.ndarray, window: Window2d, divisor: np.ndarray) -> np.ndarray:
    """Each window's sum (its cells in row-major order; padding adds nothing) over `divisor`
    (H_out, W_out); integer inputs divide as C does, truncating toward zero (as PyTorch)."""
    if _runs_compiled(x):
        out = np.empty(x.shape[:2] + (window.out_height, window.out_width), dtype=x.dtype)
        kernel = _avg_pool_kernel(*window.kernel, *window.stride)
        divisor, plan = divisor.astype(x.dtype), _scan_plan(window)
        split_run(lambda images, out_images: kernel(images, divisor, out_images, *plan,
                                                    x.dtype.type(0)),
                  np.ascontiguousarray(x), out)
        return out
    padded = pad(x, window, value=0)
    floating = np.issubdtype(x.dtype, np.floating)
    views = [view for _, view in shifted_views(padded, window)]
    total = views[0].astype(x.dtype if floating else np.int64)     # a copy
    for view in views[1:]:
        total += view
    if floating:
        return np.divide(total, divisor.astype(x.dtype), out=total)
    quotient = np.abs(total) // divisor
    return (np.sign(total) * quotient).astype(x.dtype)


@functools.cache
def _avg_pool_kernel(kh: int, kw: int, sh: int, sw: int):
    """The compiled average-pool forward for one geometry (constants to numba, as for
    `_max_pool_kernel`, whose loop structure it shares)."""

    @jit()
    def kernel(x, divisor, out, top, left, row_first, row_end, col_first, col_end,
               inner_rows_from, inner_rows_to, inner_cols_from, inner_cols_to, outer_cols,
               all_cols, zero):
        """out[n, c, oy, ox] = the sum of window (oy, ox)'s cells inside the input, in
        row-major order, over divisor[oy, ox]."""
        batch, channels = x.shape[0], x.shape[1]
        out_height = out.shape[2]
        first_oy, first_ox = max(inner_rows_from, 0), max(inner_cols_from, 0)
        first_row = max(inner_rows_from * sh - top, 0)
        first_col = max(inner_cols_from * sw - left, 0)
        for plane in range(batch * channels):
            n, c = plane // channels, plane % channels
            image, plane_out = x[n, c], out[n, c]
            # 1. the windows inside the input: fixed loops
            for a in range(inner_rows_to - inner_rows_from):
                top_row = first_row + a * sh
                for b in range(inner_cols_to - inner_cols_from):
                    left_col = first_col + b * sw
                    total = zero
                    for i in range(kh):
                        for j in range(kw):
                            total += image[top_row + i, left_col + j]
                    oy, ox = first_oy + a, first_ox + b
                    plane_out[oy, ox] = total / divisor[oy, ox]
            # 2. the windows reaching outside: their cells inside the input
            for oy in range(out_height):
                inner_row = inner_rows_from <= oy < inner_rows_to
                top_row = oy * sh - top
                for ox in outer_cols if inner_row else all_cols:
                    left_col = ox * sw - left
                    total = zero
                    for i in range(row_first[oy], row_end[oy]):
                        for j in range(col_first[ox], col_end[ox]):
                            total += image[top_row + i, left_col + j]
                    plane_out[oy, ox] = total / divisor[oy, ox]

    return kernel


def avg_pool2d_backward(grad_out: np.ndarray, divisor: np.ndarray, window: Window2d,
                        x_shape: tuple) -> np.ndarray:
    """grad_x (N, C, H, W): each window's share grad_out / divisor added to its cells inside
    the input (in grad_out's dtype: float32 stays float32)."""
    grad_x = np.empty(x_shape, dtype=grad_out.dtype)
    if _runs_compiled(grad_x) and _non_overlapping(window):
        kernel = _avg_pool_backward_disjoint_kernel(*window.kernel)
        divisor = divisor.astype(grad_out.dtype)
        split_run(lambda grad_images, grad_x_images: kernel(grad_images, divisor,
                                                            grad_x_images),
                  np.ascontiguousarray(grad_out), grad_x)
        return grad_x
    if _runs_compiled(grad_x):
        kernel = _avg_pool_backward_kernel(*window.kernel, *window.stride)
        divisor, plan = divisor.astype(grad_out.dtype), _scan_plan(window)
        # (contiguous: one compiled kernel per dtype, although grad_out is often a broadcast)
        split_run(lambda grad_images, grad_x_images: kernel(grad_images, divisor,
                                                            grad_x_images, *plan),
                  np.ascontiguousarray(grad_out), grad_x)
        return grad_x
    share = grad_out / divisor.astype(grad_out.dtype)        # (N, C, H_out, W_out)
    if _non_overlapping(window):
        # each input cell lies in at most one window: each offset's view is written once
        grad_x[...] = 0
        for _, view in shifted_views(grad_x, window):
            np.copyto(view, share)
        return grad_x
    n, c = x_shape[:2]
    padded = np.zeros((n, c, window.padded_height, window.padded_width), dtype=grad_out.dtype)
    for _, view in shifted_views(padded, window):
        view += share
    return unpad(padded, window)


@functools.cache
def _avg_pool_backward_kernel(kh: int, kw: int, sh: int, sw: int):
    """The compiled average-pool backward for one geometry (see `_avg_pool_kernel`)."""

    @jit()
    def kernel(grad_out, divisor, grad_x, top, left, row_first, row_end, col_first, col_end,
               inner_rows_from, inner_rows_to, inner_cols_from, inner_cols_to, outer_cols,
               all_cols):
        """grad_x = 0, then grad_out[n, c, oy, ox] / divisor[oy, ox] added to every cell of
        window (oy, ox) inside the input."""
        batch, channels = grad_x.shape[0], grad_x.shape[1]
        out_height = grad_out.shape[2]
        first_oy, first_ox = max(inner_rows_from, 0), max(inner_cols_from, 0)
        first_row = max(inner_rows_from * sh - top, 0)
        first_col = max(inner_cols_from * sw - left, 0)
        for plane in range(batch * channels):
            n, c = plane // channels, plane % channels
            grad_image, plane_grad = grad_x[n, c], grad_out[n, c]
            grad_image[:, :] = 0
            # 1. the windows inside the input: fixed loops
            for a in range(inner_rows_to - inner_rows_from):
                top_row = first_row + a * sh
                for b in range(inner_cols_to - inner_cols_from):
                    left_col = first_col + b * sw
                    oy, ox = first_oy + a, first_ox + b
                    share = plane_grad[oy, ox] / divisor[oy, ox]
                    for i in range(kh):
                        for j in range(kw):
                            grad_image[top_row + i, left_col + j] += share
            # 2. the windows reaching outside: their cells inside the input
            for oy in range(out_height):
                inner_row = inner_rows_from <= oy < inner_rows_to
                top_row = oy * sh - top
                for ox in outer_cols if inner_row else all_cols:
                    left_col = ox * sw - left
                    share = plane_grad[oy, ox] / divisor[oy, ox]
                    for i in range(row_first[oy], row_end[oy]):
                        for j in range(col_first[ox], col_end[ox]):
                            grad_image[top_row + i, left_col + j] += share

    return kernel


@functools.cache
def _avg_pool_backward_disjoint_kernel(kh: int, kw: int):
    """The compiled average-pool backward where windows don't overlap (`_non_overlapping`),
    for one kernel size: each input cell is written once, row by row, with no zeroing pass
    before and no adding (LeNet's 2x2 pool on (256, 6, 28, 28), one core: 0.53 -> 0.22 ms;
    the max-pool twin below 0.65 -> 0.31 ms)."""

    @jit()
    def kernel(grad_out, divisor, grad_x):
        """grad_x[n, c, oy*kh + i, ox*kw + j] = grad_out[n, c, oy, ox] / divisor[oy, ox]; the
        cells beyond the last window row or column (no window holds them) 0."""
        batch, channels, height, width = grad_x.shape
        out_height, out_width = grad_out.shape[2], grad_out.shape[3]
        for plane in range(batch * channels):
            n, c = plane // channels, plane % channels
            grad_image, plane_grad = grad_x[n, c], grad_out[n, c]
            for oy in range(out_height):
                for i in range(kh):
                    row = grad_image[oy * kh + i]
                    for ox in range(out_width):
                        share = plane_grad[oy, ox] / divisor[oy, ox]
                        for j in range(kw):
                            row[ox * kw + j] = share
                    for column in range(out_width * kw, width):
                        row[column] = 0
            for y in range(out_height * kh, height):
                for column in range(width):
                    grad_image[y, column] = 0

    return kernel


@functools.cache
def _max_pool_backward_disjoint_kernel(kh: int, kw: int):
    """The compiled max-pool backward where windows don't overlap (`_non_overlapping`), for
    one kernel size: each input cell is written once (its window's gradient at the winner,
    0 elsewhere), with no zeroing pass before and no adding."""

    @jit()
    def kernel(grad_out, winner, grad_x):
        """grad_x[n, c, oy*kh + i, ox*kw + j] = grad_out[n, c, oy, ox] where i*kw + j is the
        window's winner, else 0 (and 0 beyond the last window row or column)."""
        batch, channels, height, width = grad_x.shape
        out_height, out_width = grad_out.shape[2], grad_out.shape[3]
        zero = grad_x.dtype.type(0)
        for plane in range(batch * channels):
            n, c = plane // channels, plane % channels
            grad_image, plane_grad, plane_winner = grad_x[n, c], grad_out[n, c], winner[n, c]
            for oy in range(out_height):
                for i in range(kh):
                    row = grad_image[oy * kh + i]
                    for ox in range(out_width):
                        offset = plane_winner[oy, ox] - i * kw      # its column j, if in row i
                        value = plane_grad[oy, ox]
                        for j in range(kw):
                            row[ox * kw + j] = value if offset == j else zero
                    for column in range(out_width * kw, width):
                        row[column] = 0
            for y in range(out_height * kh, height):
                for column in range(width):
                    grad_image[y, column] = 0

    return kernel


# ---------------------------------------------------------------------------------------------
# adaptive pooling: windows of varying length (windows.adaptive_bounds), an output size given
# ---------------------------------------------------------------------------------------------


def _sums_of_runs(x: np.ndarray, start: np.ndarray, length: np.ndarray,
                  axis: int) -> np.ndarray:
    """Along `axis`: out[i] = x[start[i]] + x[start[i] + 1] + ... (length[i] cells).

    Each run adds its own cells and nothing else, so a NaN or an inf reaches only the runs
    that hold it (a product with an averaging matrix would multiply it by the zeros of every
    other run: inf * 0 = NaN everywhere). Runs side by side of one length (the input a
    multiple of the output) are a sum of strided views; others are added cell by cell, the
    k-th cells of all runs at once (as many steps as the longest run)."""
    count = len(start)
    longest = int(length.max()) if count else 0
    index = [slice(None)] * x.ndim
    if longest and (length == longest).all() and (start == np.arange(count) * longest).all():
        index[axis] = slice(0, count * longest, longest)
        total = x[tuple(index)].copy()
        for k in range(1, longest):
            index[axis] = slice(k, count * longest, longest)
            total += x[tuple(index)]
        return total
    if count and length.min() > 0:
        total = np.take(x, start, axis=axis)                       # the first cells (a copy)
        first = 1
    else:
        total = np.zeros((*x.shape[:axis], count, *x.shape[axis + 1:]), x.dtype)
        first = 0
    for k in range(first, longest):
        longer = np.flatnonzero(length > k)                        # the runs with a k-th cell
        index[axis] = longer
        total[tuple(index)] += np.take(x, start[longer] + k, axis=axis)
    return total


def _window_sums(x: np.ndarray, out: int, axis: int) -> np.ndarray:
    """The sum of each adaptive window (`adaptive_bounds`) along `axis`: its size cells ->
    `out` sums."""
    start, end = adaptive_bounds(x.shape[axis], out)
    return _sums_of_runs(x, start, end - start, axis)


def _spread_to_windows(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """The adjoint of `_window_sums`: `out` window values along `axis` -> `size` cells, each
    the sum of the values of the windows that hold it (a run of consecutive windows)."""
    start, end = adaptive_bounds(size, values.shape[axis])
    first, last = spread_runs(start, end, size)
    return _sums_of_runs(values, first, np.maximum(last - first + 1, 0), axis)


def spread_runs(start: np.ndarray, end: np.ndarray, size: int):
    """For each of `size` cells, the first and last adaptive window ([start, end)) that holds
    it: a run of consecutive windows (empty where last < first)."""
    cells = np.arange(size)
    first = np.searchsorted(end, cells, side="right")        # the first window ending after
    last = np.searchsorted(start, cells, side="right") - 1   # the last window starting at/before
    return first, last


def _window_areas(size_h: int, out_h: int, size_w: int, out_w: int, dtype) -> np.ndarray:
    """(H_out, W_out): the number of cells of each adaptive window."""
    start_h, end_h = adaptive_bounds(size_h, out_h)
    start_w, end_w = adaptive_bounds(size_w, out_w)
    return ((end_h - start_h)[:, None] * (end_w - start_w)[None, :]).astype(dtype)


def adaptive_avg_pool2d_forward(x: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """Mean over each adaptive window: the window sums along the rows, then along the
    columns, divided by the window's area (as PyTorch: sum, then one division)."""
    h, w = x.shape[-2:]
    sums = _window_sums(_window_sums(x, out_height, axis=2), out_width, axis=3)
    return sums / _window_areas(h, out_height, w, out_width, x.dtype)


def adaptive_avg_pool2d_backward(grad_out: np.ndarray, x_shape: tuple) -> np.ndarray:
    """grad_x: each window's share grad_out / area added to every cell of the window."""
    h, w = x_shape[-2:]
    share = grad_out / _window_areas(h, grad_out.shape[2], w, grad_out.shape[3],
                                     grad_out.dtype)          # (N, C, H_out, W_out)
    return _spread_to_windows(_spread_to_windows(share, h, axis=2), w, axis=3)


def _window_cells(size: int, out: int) -> np.ndarray:
    """(out, longest window): the input cells of each adaptive window, the last one repeated
    to pad shorter windows (harmless for a maximum, and never the first to win a tie)."""
    start, end = adaptive_bounds(size, out)
    longest = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1)


def adaptive_max_pool2d_forward(x: np.ndarray, out_height: int, out_width: int):
    """Return (out, indices): each adaptive window's maximum and its flat input index
    (row * W + col); ties go to the first cell in row-major order, NaN wins (the last NaN)."""
    n, c, h, w = x.shape
    if out_height == 0 or out_width == 0 or n * c == 0:   # (no windows, or no planes)
        shape = (n, c, out_height, out_width)
        return np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    row_cells = _window_cells(h, out_height)                  # (H_out, kh)
    col_cells = _window_cells(w, out_width)                   # (W_out, kw)
    kw = col_cells.shape[1]
    # (N, C, H_out, W_out, kh, kw): every window's cells, gathered
    cells = x[..., row_cells[:, None, :, None], col_cells[None, :, None, :]]
    cells = cells.reshape(n, c, out_height, out_width, -1)
    winner = cells.argmax(axis=-1)
    if np.issubdtype(x.dtype, np.floating):
        nan = np.isnan(cells)
        has_nan = nan.any(axis=-1)
        if has_nan.any():
            last_nan = cells.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1)
            winner = np.where(has_nan, last_nan, winner)
    out = np.take_along_axis(cells, winner[..., None], axis=-1)[..., 0]
    rows = row_cells[np.arange(out_height)[:, None], winner // kw]   # (N, C, H_out, W_out)
    cols = col_cells[np.arange(out_width), winner % kw]
    return out, (rows * w + cols).astype(np.int64)


def scatter_to_indices(grad_out: np.ndarray, indices: np.ndarray, x_shape: tuple) -> np.ndarray:
    """Add each output gradient into the input cell its flat index names (per (n, c) plane);
    several outputs may name the same cell. (N, C, H_out, W_out) -> (N, C, H, W)."""
    n, c = x_shape[:2]
    plane = int(np.prod(x_shape[2:]))
    # one bincount over all planes: plane p's cells are numbered p*plane ... (p+1)*plane - 1
    # (the outputs per plane given: -1 cannot be inferred for an empty batch)
    flat = (indices.reshape(n * c, int(np.prod(indices.shape[2:])))
            + (np.arange(n * c) * plane)[:, None])
    total = np.bincount(flat.ravel(), weights=grad_out.reshape(-1), minlength=n * c * plane)
    return total.astype(grad_out.dtype).reshape(x_shape)


# ---------------------------------------------------------------------------------------------
# max unpooling: the values put back at the indices max pooling returned
# ---------------------------------------------------------------------------------------------


def max_unpool_forward(x: np.ndarray, indices: np.ndarray, out_shape: tuple) -> np.ndarray:
    """(N, C, *in) values and flat indices -> (N, C, *out_shape) zeros with the values put
    at their indices."""
    n, c = x.shape[:2]
    out = np.zeros((n * c, int(np.prod(out_shape))), dtype=x.dtype)
    if out.size == 0:
        return out.reshape((n, c) + tuple(out_shape))
    np.put_along_axis(out, indices.reshape(n * c, -1), x.reshape(n * c, -1), axis=1)
    return out.reshape((n, c) + tuple(out_shape))


def max_unpool_backward(grad_out: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Each input's gradient is the output gradient at its index."""
    n, c = grad_out.shape[:2]
    if grad_out.size == 0:
        return np.zeros(indices.shape, dtype=grad_out.dtype)
    grad = np.take_along_axis(grad_out.reshape(n * c, -1), indices.reshape(n * c, -1), axis=1)
    return grad.reshape(indices.shape)
