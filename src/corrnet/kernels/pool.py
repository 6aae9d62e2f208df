"""Max and average pooling over (N, C, H, W) arrays, forward and backward.

Both reduce the kh*kw shifted views of the padded input (windows.py): a running maximum or
a running sum. For the max-pool backward pass, the forward can also say which kernel offset
won each window (asked for only when a gradient is wanted). Max pooling pads with -inf so a
padded cell never wins; the backward pass sends each window's gradient to the one offset
that won, with ties going to the first offset in row-major order, as PyTorch.
"""

from __future__ import annotations

import numpy as np

from .windows import Window2d, pad, shifted_views, unpad


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
    window the kernel offset index (i*kw + j) of its maximum, for the backward pass: the first
    in row-major order, or the last NaN in a window that holds NaN (as PyTorch's CPU kernel);
    otherwise winner is None.
    """
    padded = pad(x, window, value=_lowest(x.dtype))
    views = [view for _, view in shifted_views(padded, window)]
    out = views[0].copy()
    for view in views[1:]:
        np.maximum(out, view, out=out)
    if not find_winner:
        return out, None
    winner = np.zeros(out.shape, dtype=np.int32)
    for k in reversed(range(1, len(views))):  # backwards, so that the first match is kept
        np.copyto(winner, k, where=views[k] == out)
    if np.issubdtype(x.dtype, np.floating) and np.isnan(out).any():
        for k, view in enumerate(views):
            np.copyto(winner, k, where=np.isnan(view))
    return out, winner


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
