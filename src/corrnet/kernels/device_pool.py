"""Max and average pooling on any array namespace: CuPy's on a GPU, NumPy's in CI.

How it is plugged in. The functions have pool.py's interface (`max_pool2d_forward(x,
window, find_winner)` -> (out, winner), `max_pool2d_indices`, `max_pool2d_backward`,
`avg_pool2d_forward`, `avg_pool2d_backward`, the adaptive pools, `scatter_to_indices`,
`max_unpool_forward` / `max_unpool_backward`) and the same results; functional's pooling
Functions take their kernels from `plan.pool_kernels(x)`, which gives these, run on the
array's device with its namespace, for an array that lives on a CUDA device. Never
imports CuPy.

Every pass is whole-array operations over the kh*kw shifted views of the padded input
(windows.shifted_views: strided slices, no copies), never a loop over pixels: on a GPU,
a few elementwise kernels per kernel offset. Max pooling pads with the dtype's lowest value
(-inf for floats) and follows PyTorch's CPU kernel: each window starts at the lowest value
with its first cell inside the input as winner, and a cell replaces the winner where
``value > best or isnan(value)``, offsets in row-major order: a tie keeps the first maximum,
NaN wins (the last NaN), padding never wins. Backward, each offset's view of a zero padded
gradient gets the gradients of the windows that offset won (one add per offset: no two
windows of one offset share a cell, so no atomics and a fixed order of the sums).

>>> import numpy as np
>>> from corrnet.kernels.windows import make_window
>>> w = make_window("max_pool2d", 2, 3, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))
>>> out, winner = max_pool2d_forward(np.array([[[[1., 5, 5], [2, 0, 3]]]]), w, True)
>>> out.tolist(), winner.tolist()
([[[[5.0, 5.0]]]], [[[[1, 0]]]])
"""

from __future__ import annotations

import numpy as np

from . import pool as pool_kernels
from .namespace import namespace_of
from .pool import _lowest, _winner_dtype
from .windows import Window2d, adaptive_bounds, shifted_views, unpad


def _accumulator(dtype):
    """The dtype average pooling sums in: float16 in float32 (rounded once), other floats
    as they are, integers in int64 (then divided as C does, truncating toward zero)."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.int64)


def _pad(xp, x, window: Window2d, value):
    """x (N, C, H, W) padded to the extent the windows reach (ceil_mode's overhang
    included), with `value`; x itself where there is nothing to pad."""
    (top, _), (left, _) = window.padding
    height, width = window.height, window.width
    if (window.padded_height, window.padded_width) == (height, width):
        return x
    padded = xp.full((*x.shape[:2], window.padded_height, window.padded_width), value,
                     dtype=x.dtype)
    padded[:, :, top:top + height, left:left + width] = x
    return padded


def _first_offsets(xp, out: int, size: int, kernel: int, stride: int, dilation: int,
                   before: int):
    """Along one axis, for each output position: the first kernel offset whose cell lies at
    or after the input's start (clamped to the last offset), on the device."""
    start = xp.arange(out) * stride - before               # coordinate of offset 0
    return xp.minimum(xp.maximum(-(start // dilation), 0), kernel - 1)


def first_inside(xp, window: Window2d):
    """(H_out, W_out): each window's first kernel offset inside the input, the winner
    PyTorch starts from (and keeps where every input cell is the lowest value).

    >>> from corrnet.kernels.windows import make_window
    >>> w = make_window("max_pool2d", 3, 3, (2, 2), (2, 2), ((1, 1), (1, 1)), (1, 1))
    >>> first_inside(np, w).tolist()
    [[3, 2], [1, 0]]
    """
    (top, _), (left, _) = window.padding
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    rows = _first_offsets(xp, window.out_height, window.height, kh, sh, dh, top)
    cols = _first_offsets(xp, window.out_width, window.width, kw, sw, dw, left)
    return (rows[:, None] * kw + cols[None, :]).astype(_winner_dtype(window))


def max_pool2d_forward(x, window: Window2d, find_winner: bool = False, xp=None):
    """Return (out, winner): out (N, C, H_out, W_out) each window's maximum (NaN
    propagates); with `find_winner`, winner (same shape, uint8, or uint32 for kernels of
    more than 256 cells) each window's winning kernel offset i*kw + j, else None.

    Per kernel offset: a comparison (`xp.greater`, `xp.isnan`) and two `xp.where`
    (one without `find_winner`: `xp.maximum`); CuPy: elementwise kernels.
    """
    xp = xp or namespace_of(x)
    lowest = _lowest(x.dtype)
    padded = _pad(xp, x, window, lowest)
    shape = (*x.shape[:2], window.out_height, window.out_width)
    out = xp.full(shape, lowest, dtype=x.dtype)
    if not find_winner:
        for _, view in shifted_views(padded, window):
            out = xp.maximum(out, view)
        return out, None
    winner = xp.ascontiguousarray(xp.broadcast_to(first_inside(xp, window), shape))
    floating = np.issubdtype(x.dtype, np.floating)
    for k, (_, view) in enumerate(shifted_views(padded, window)):
        wins = view > out
        if floating:
            wins |= xp.isnan(view)
        out = xp.where(wins, view, out)
        winner = xp.where(wins, winner.dtype.type(k), winner)
    return out, winner


def max_pool2d_indices(winner, window: Window2d, xp=None):
    """The flat input index (row * W + col, per (n, c) plane) of each window's winner, as
    PyTorch's return_indices: int64, shape (N, C, H_out, W_out).

    >>> from corrnet.kernels.windows import make_window
    >>> w = make_window("max_pool2d", 2, 3, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))
    >>> max_pool2d_indices(np.array([[[[1, 0]]]], np.uint8), w).tolist()
    [[[[1, 1]]]]
    """
    xp = xp or namespace_of(winner)
    winner = winner.astype(np.int64)
    kw = window.kernel[1]
    (sh, sw), (dh, dw) = window.stride, window.dilation
    (top, _), (left, _) = window.padding
    rows = xp.arange(window.out_height)[:, None] * sh - top + (winner // kw) * dh
    cols = xp.arange(window.out_width) * sw - left + (winner % kw) * dw
    return rows * window.width + cols


def max_pool2d_backward(grad_out, winner, window: Window2d, x_shape, xp=None):
    """grad_x (x_shape): each window's gradient added to its winner cell. One masked add
    per kernel offset into a zero padded buffer (`xp.where`; CuPy: elementwise kernels);
    a window with no cell inside the input sends its gradient into the padding, dropped."""
    xp = xp or namespace_of(grad_out)
    n, c = x_shape[:2]
    padded = xp.zeros((n, c, window.padded_height, window.padded_width), dtype=grad_out.dtype)
    zero = xp.zeros((), dtype=grad_out.dtype)
    for k, (_, view) in enumerate(shifted_views(padded, window)):
        view += xp.where(winner == k, grad_out, zero)
    return xp.ascontiguousarray(unpad(padded, window))


def avg_pool2d_forward(x, window: Window2d, divisor, xp=None):
    """Each window's sum (padding adds nothing) over `divisor` (H_out, W_out; a host array
    of window geometry is copied to the device once, `xp.asarray`). Floats divide (float16
    summed in float32), integers divide truncating toward zero (as PyTorch)."""
    xp = xp or namespace_of(x)
    work = _accumulator(x.dtype)
    padded = _pad(xp, x, window, 0)
    total = xp.zeros((*x.shape[:2], window.out_height, window.out_width), dtype=work)
    for _, view in shifted_views(padded, window):
        total += view
    divisor = xp.asarray(divisor)
    if np.issubdtype(work, np.floating):
        return (total / divisor.astype(work)).astype(x.dtype, copy=False)
    quotient = xp.abs(total) // divisor.astype(work)
    return (xp.sign(total) * quotient).astype(x.dtype, copy=False)


def avg_pool2d_backward(grad_out, divisor, window: Window2d, x_shape, xp=None):
    """grad_x (x_shape): each window's share grad_out / divisor added to its cells inside
    the input; one strided add per kernel offset into a zero padded buffer (float16 in
    float32, rounded once)."""
    xp = xp or namespace_of(grad_out)
    work = _accumulator(grad_out.dtype)
    share = grad_out.astype(work, copy=False) / xp.asarray(divisor).astype(work)
    n, c = x_shape[:2]
    padded = xp.zeros((n, c, window.padded_height, window.padded_width), dtype=work)
    for _, view in shifted_views(padded, window):
        view += share
    return xp.ascontiguousarray(unpad(padded, window)).astype(grad_out.dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# adaptive pooling, scattering to indices, max unpooling (pool.py's interface); their window
# tables are built on the host (windows.adaptive_bounds) and copied to the device once a call
# ---------------------------------------------------------------------------------------------


def _runs(xp, start, length):
    """(first cells, lengths) of windows along one axis, uploaded, and the longest length."""
    longest = int(length.max()) if len(length) else 0
    return xp.asarray(start), xp.asarray(length), longest


def _sums_of_runs(xp, x, start, length, axis: int):
    """Along `axis`: out[i] = x[start[i]] + ... + x[start[i] + length[i] - 1] (host tables):
    as many steps as the longest run, each a gather (`xp.take`) of the runs' k-th cells,
    masked where a run is shorter. Each run adds its own cells only, so a NaN or an inf
    reaches only the runs that hold it (as pool._sums_of_runs)."""
    first, lengths, longest = _runs(xp, start, length)
    shape = [1] * x.ndim
    shape[axis] = len(start)
    total = xp.zeros((*x.shape[:axis], len(start), *x.shape[axis + 1:]), dtype=x.dtype)
    last = xp.maximum(first + lengths - 1, 0)
    for k in range(longest):
        cells = xp.take(x, xp.minimum(first + k, last), axis=axis)
        total += xp.where((lengths > k).reshape(shape), cells, xp.zeros((), dtype=x.dtype))
    return total


def _window_sums(xp, x, out: int, axis: int):
    start, end = adaptive_bounds(x.shape[axis], out)
    return _sums_of_runs(xp, x, start, end - start, axis)


def _spread_to_windows(xp, values, size: int, axis: int):
    start, end = adaptive_bounds(size, values.shape[axis])
    first, last = pool_kernels.spread_runs(start, end, size)
    return _sums_of_runs(xp, values, first, last - first + 1, axis)


def _window_areas(xp, size_h, out_h, size_w, out_w, dtype):
    start_h, end_h = adaptive_bounds(size_h, out_h)
    start_w, end_w = adaptive_bounds(size_w, out_w)
    return xp.asarray((end_h - start_h)[:, None] * (end_w - start_w)[None, :]).astype(dtype)


def adaptive_avg_pool2d_forward(x, out_height: int, out_width: int, xp=None):
    """Mean over each adaptive window (N, C, H_out, W_out): sums along the rows, then the
    columns, divided by the window's area (as pool.adaptive_avg_pool2d_forward)."""
    xp = xp or namespace_of(x)
    h, w = x.shape[-2:]
    sums = _window_sums(xp, _window_sums(xp, x, out_height, 2), out_width, 3)
    return sums / _window_areas(xp, h, out_height, w, out_width, x.dtype)


def adaptive_avg_pool2d_backward(grad_out, x_shape, xp=None):
    """grad_x: each window's share grad_out / area added to every cell of the window."""
    xp = xp or namespace_of(grad_out)
    h, w = x_shape[-2:]
    share = grad_out / _window_areas(xp, h, grad_out.shape[2], w, grad_out.shape[3],
                                     grad_out.dtype)
    return xp.ascontiguousarray(_spread_to_windows(
        xp, _spread_to_windows(xp, share, h, 2), w, 3))


def adaptive_max_pool2d_forward(x, out_height: int, out_width: int, xp=None):
    """(out, indices): each adaptive window's maximum and its flat input index; ties to the
    first cell in row-major order, NaN wins (the last NaN), as pool.py's."""
    xp = xp or namespace_of(x)
    n, c, h, w = x.shape
    shape = (n, c, out_height, out_width)
    if out_height == 0 or out_width == 0:
        return xp.empty(shape, dtype=x.dtype), xp.empty(shape, dtype=np.int64)
    row_cells = xp.asarray(pool_kernels._window_cells(h, out_height))   # (H_out, kh)
    col_cells = xp.asarray(pool_kernels._window_cells(w, out_width))    # (W_out, kw)
    kw = col_cells.shape[1]
    # (N, C, H_out, W_out, kh*kw): every window's cells, gathered
    cells = x[..., row_cells[:, None, :, None], col_cells[None, :, None, :]].reshape(
        *shape, -1)
    winner = cells.argmax(axis=-1)
    if np.issubdtype(x.dtype, np.floating):      # the last NaN wins (no test on the host)
        nan = xp.isnan(cells)
        last_nan = cells.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1)
        winner = xp.where(nan.any(axis=-1), last_nan, winner)
    out = xp.take_along_axis(cells, winner[..., None], axis=-1)[..., 0]
    rows = row_cells[xp.arange(out_height)[:, None], winner // kw]     # (N, C, H_out, W_out)
    cols = col_cells[xp.arange(out_width), winner % kw]
    return out, (rows * w + cols).astype(np.int64)


def scatter_to_indices(grad_out, indices, x_shape, xp=None):
    """Each output gradient added into the input cell its flat index names (per (n, c)
    plane; several may name one cell): one `xp.bincount` over all planes."""
    xp = xp or namespace_of(grad_out)
    n, c = x_shape[:2]
    plane = x_shape[2] * x_shape[3]
    # (the outputs per plane given: -1 cannot be inferred for an empty batch)
    flat = (indices.reshape(n * c, indices.shape[2] * indices.shape[3])
            + (xp.arange(n * c) * plane)[:, None])
    total = xp.bincount(flat.reshape(-1), weights=grad_out.reshape(-1),
                        minlength=n * c * plane)
    return total.astype(grad_out.dtype).reshape(tuple(x_shape))


def max_unpool_forward(x, indices, out_shape, xp=None):
    """(N, C, *in) values and flat indices -> (N, C, *out_shape) zeros with each value put at
    its index (one scatter)."""
    xp = xp or namespace_of(x)
    n, c = x.shape[:2]
    plane = 1
    for size in out_shape:
        plane *= int(size)
    out = xp.zeros((n * c, plane), dtype=x.dtype)
    if out.size:
        flat = indices.reshape(n * c, -1) + (xp.arange(n * c) * plane)[:, None]
        out.reshape(-1)[flat.reshape(-1)] = x.reshape(-1)
    return out.reshape((n, c) + tuple(out_shape))


def max_unpool_backward(grad_out, indices, xp=None):
    """Each input's gradient is the output gradient at its index (one gather)."""
    xp = xp or namespace_of(grad_out)
    n, c = grad_out.shape[:2]
    if grad_out.size == 0:
        return xp.zeros(indices.shape, dtype=grad_out.dtype)
    return xp.take_along_axis(grad_out.reshape(n * c, -1), indices.reshape(n * c, -1),
                              axis=1).reshape(indices.shape)
