"""2-D convolution (cross-correlation, as in deep learning) by im2col + GEMM.

Shapes: input x (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw), output
(N, C_out, H_out, W_out); G = groups, Cg = C_in/G channels per group, K = Cg*kh*kw the
length of one unrolled window, L = H_out*W_out the number of windows.
"""

from __future__ import annotations

import numpy as np

from .windows import Window2d, pad, shifted_views, unpad


def im2col(x_padded: np.ndarray, window: Window2d) -> np.ndarray:
    """Unroll every window: (N, C, Hp, Wp) -> col (N, C, kh, kw, H_out, W_out).

    One strided copy per kernel offset (kh*kw copies), no loop over pixels.
    """
    n, c = x_padded.shape[:2]
    kh, kw = window.kernel
    col = np.empty((n, c, kh, kw, window.out_height, window.out_width), dtype=x_padded.dtype)
    for (i, j), view in shifted_views(x_padded, window):
        col[:, :, i, j] = view
    return col


def col2im(col: np.ndarray, window: Window2d, x_shape: tuple) -> np.ndarray:
    """The adjoint of `im2col`: add each unrolled window back where it came from.

    col (N, C, kh, kw, H_out, W_out) -> (N, C, H, W); one strided add per kernel offset.
    """
    n, c = x_shape[:2]
    padded = np.zeros((n, c, window.padded_height, window.padded_width), dtype=col.dtype)
    for (i, j), view in shifted_views(padded, window):
        view += col[:, :, i, j]
    return unpad(padded, window)


def unfold(x: np.ndarray, window: Window2d) -> np.ndarray:
    """Every window as a column: (N, C, H, W) -> (N, C*kh*kw, H_out*W_out)."""
    n, c = x.shape[:2]
    return im2col(pad(x, window), window).reshape(n, c * window.kernel[0] * window.kernel[1], -1)


def fold(col: np.ndarray, window: Window2d, x_shape: tuple) -> np.ndarray:
    """The adjoint of `unfold`: (N, C*kh*kw, H_out*W_out) -> x_shape (N, C, H, W)."""
    n, c = x_shape[:2]
    kh, kw = window.kernel
    return col2im(col.reshape(n, c, kh, kw, window.out_height, window.out_width), window,
                  x_shape)


def _grouped_col(x: np.ndarray, window: Window2d, groups: int) -> np.ndarray:
    """im2col of x, grouped: (N, G, K, L)."""
    n, c = x.shape[:2]
    col = im2col(pad(x, window), window)
    return col.reshape(n, groups, (c // groups) * window.kernel[0] * window.kernel[1], -1)


def conv2d_forward(x, weight, bias, window: Window2d, groups: int) -> np.ndarray:
    """out[n, o, y, x'] = sum_{c, i, j} weight[o, c, i, j] * padded[n, g(o)*Cg + c, window]."""
    n = x.shape[0]
    c_out = weight.shape[0]
    col = _grouped_col(x, window, groups)                       # (N, G, K, L)
    weight_rows = weight.reshape(groups, c_out // groups, -1)   # (G, C_out/G, K)
    # (N, G, C_out/G, L) = (G, C_out/G, K) @ (N, G, K, L)
    out = np.matmul(weight_rows, col)
    out = out.reshape(n, c_out, window.out_height, window.out_width)
    if bias is not None:
        out += bias.reshape(1, c_out, 1, 1)
    return out


def conv2d_grad_input(grad_out, weight, window: Window2d, groups: int, x_shape) -> np.ndarray:
    """d loss / d x: each window's gradient, W^T @ grad, added back by col2im."""
    n, c_in = x_shape[:2]
    c_out = weight.shape[0]
    kh, kw = window.kernel
    grad_rows = grad_out.reshape(n, groups, c_out // groups, -1)        # (N, G, C_out/G, L)
    weight_rows = weight.reshape(groups, c_out // groups, -1)           # (G, C_out/G, K)
    # (N, G, K, L) = (G, K, C_out/G) @ (N, G, C_out/G, L)
    grad_col = np.matmul(weight_rows.transpose(0, 2, 1), grad_rows)
    grad_col = grad_col.reshape(n, c_in, kh, kw, window.out_height, window.out_width)
    return col2im(grad_col, window, x_shape)


def conv2d_grad_weight(grad_out, x, window: Window2d, groups: int, weight_shape) -> np.ndarray:
    """d loss / d weight: grad @ col^T, summed over the batch."""
    n = x.shape[0]
    c_out = weight_shape[0]
    col = _grouped_col(x, window, groups)                               # (N, G, K, L)
    grad_rows = grad_out.reshape(n, groups, c_out // groups, -1)        # (N, G, C_out/G, L)
    # (G, C_out/G, K) = sum_n (N, G, C_out/G, L) @ (N, G, L, K)
    grad_weight = np.einsum("ngol,ngkl->gok", grad_rows, col, optimize=True)
    return grad_weight.reshape(weight_shape)


def conv2d_grad_bias(grad_out) -> np.ndarray:
    return grad_out.sum(axis=(0, 2, 3))
