"""Max and average pooling over (N, C, H, W) arrays, forward and backward.

Both reduce the kh*kw shifted views of the padded input (windows.py): a running maximum or
a running sum. For the max-pool backward pass, the forward can also say which kernel offset
won each window (asked for only when a gradient is wanted). Max pooling pads with -inf so a
padded cell never wins; the backward pass sends each window's gradient to the one offset
that won, with ties going to the first offset in row-major order, as PyTorch.
"""

from __future__ import annotations

import numpy as np

from .windows import Window2d, adaptive_bounds, pad, shifted_views, unpad


def _lowest(dtype) -> float | int:
    if np.issubdtype(dtype, np.floating):
        return -np.inf
    if dtype == np.bool_:
        return False
    return np.iinfo(dtype).min


def max_pool2d_forward(x: np.ndarray, window: Window2d, find_winner: bool = False):
    """Return (out, winner).

    out (N, C, H_out, W_out) is the maximum of each window: a running np.maximum over the kh*kw
    shifted views (NaN propagates, as in PyTorch). With `find_winner`, winner holds for each
    window the kernel offset index (i*kw + j) of its maximum, for the backward pass and for
    `max_pool2d_indices`: the first in row-major order, or the last NaN in a window that holds
    NaN (as PyTorch's CPU kernel); a padding cell never wins, even against an input of -inf.
    Otherwise winner is None.
    """
    padded = pad(x, window, value=_lowest(x.dtype))
    views = [view for _, view in shifted_views(padded, window)]
    out = views[0].copy()
    for view in views[1:]:
        np.maximum(out, view, out=out)
    if not find_winner:
        return out, None
    winner = np.zeros(out.shape, dtype=np.int32)
    for k in reversed(range(len(views))):  # backwards, so that the first match is kept
        np.copyto(winner, k, where=views[k] == out)
    reaches_outside = (window.padded_height, window.padded_width) != (window.height,
                                                                      window.width)
    if reaches_outside:
        # a padding cell ties only where the whole window is the lowest value; PyTorch then
        # keeps its first cell inside the input
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
    firsts = []
    for out, stride, dilation, (before, _), kernel in zip(
        (window.out_height, window.out_width), window.stride, window.dilation,
        window.padding, window.kernel, strict=True,
    ):
        start = np.arange(out) * stride - before              # coordinate of offset 0
        first = np.maximum(-(start // dilation), 0)           # = ceil(-start / dilation)
        firsts.append(np.minimum(first, kernel - 1))
    first_row, first_col = firsts
    return (first_row[:, None] * window.kernel[1] + first_col[None, :]).astype(np.int32)


def max_pool2d_indices(winner: np.ndarray, window: Window2d) -> np.ndarray:
    """The flat input index (row * W + col, per (n, c) plane) of each window's winner, as
    PyTorch's return_indices; int64, shape (N, C, H_out, W_out)."""
    kw = window.kernel[1]
    (stride_h, stride_w), (dil_h, dil_w) = window.stride, window.dilation
    (top, _), (left, _) = window.padding
    rows = np.arange(window.out_height)[:, None] * stride_h - top + (winner // kw) * dil_h
    cols = np.arange(window.out_width) * stride_w - left + (winner % kw) * dil_w
    return (rows * window.width + cols).astype(np.int64)


def max_pool2d_backward(grad_out: np.ndarray, winner: np.ndarray, window: Window2d,
                        x_shape: tuple) -> np.ndarray:
    n, c = x_shape[:2]
    padded = np.zeros((n, c, window.padded_height, window.padded_width), dtype=grad_out.dtype)
    zero = np.zeros((), dtype=grad_out.dtype)
    for k, (_, view) in enumerate(shifted_views(padded, window)):
        view += np.where(winner == k, grad_out, zero)
    return unpad(padded, window)


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
    padded = pad(x, window, value=0)
    floating = np.issubdtype(x.dtype, np.floating)
    total = np.zeros(x.shape[:2] + (window.out_height, window.out_width),
                     dtype=x.dtype if floating else np.int64)
    for _, view in shifted_views(padded, window):
        total += view
    if floating:
        return total / divisor.astype(x.dtype)
    # integer inputs: C-style division, truncating toward zero (as PyTorch)
    quotient = np.abs(total) // divisor
    return (np.sign(total) * quotient).astype(x.dtype)


def avg_pool2d_backward(grad_out: np.ndarray, divisor: np.ndarray, window: Window2d,
                        x_shape: tuple) -> np.ndarray:
    n, c = x_shape[:2]
    padded = np.zeros((n, c, window.padded_height, window.padded_width), dtype=grad_out.dtype)
    share = grad_out / divisor.astype(grad_out.dtype)
    for _, view in shifted_views(padded, window):
        view += share
    return unpad(padded, window)


# ---------------------------------------------------------------------------------------------
# adaptive pooling: windows of varying length (windows.adaptive_bounds), an output size given
# ---------------------------------------------------------------------------------------------


def _averaging_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size): row i averages window i of `adaptive_bounds(size, out)`."""
    start, end = adaptive_bounds(size, out)
    cells = np.arange(size)
    member = (cells >= start[:, None]) & (cells < end[:, None])
    return (member / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d_forward(x: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """Mean over each adaptive window, as two averaging products (rows, then columns)."""
    rows = _averaging_matrix(x.shape[-2], out_height, x.dtype)      # (H_out, H)
    cols = _averaging_matrix(x.shape[-1], out_width, x.dtype)       # (W_out, W)
    # (N, C, H_out, W_out) = (H_out, H) @ (N, C, H, W) @ (W, W_out)
    return rows @ x @ cols.T


def adaptive_avg_pool2d_backward(grad_out: np.ndarray, x_shape: tuple) -> np.ndarray:
    rows = _averaging_matrix(x_shape[-2], grad_out.shape[-2], grad_out.dtype)
    cols = _averaging_matrix(x_shape[-1], grad_out.shape[-1], grad_out.dtype)
    # (N, C, H, W) = (H, H_out) @ (N, C, H_out, W_out) @ (W_out, W)
    return rows.T @ grad_out @ cols


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
    if out_height == 0 or out_width == 0:
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
    flat = indices.reshape(n * c, -1) + (np.arange(n * c) * plane)[:, None]
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
