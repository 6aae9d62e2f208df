"""2-D convolution (cross-correlation, as in deep learning) by im2col + GEMM.

Shapes: input x (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw), output
(N, C_out, H_out, W_out); G = groups, Cg = C_in/G channels per group, K = Cg*kh*kw the
length of one unrolled window, L = H_out*W_out the windows of one image.

The unrolled windows ("col") are laid out with the batch folded into the columns,
(G, K, N*L): then the forward pass, the weight gradient and the input gradient are each one
(batched over groups) matrix product, and the weight gradient sums over the batch inside
that product instead of after it.
"""

from __future__ import annotations

import numpy as np

from .windows import Window2d, pad, shifted_views, unpad


def im2col(x_padded: np.ndarray, window: Window2d) -> np.ndarray:
    """Unroll every window: (N, C, Hp, Wp) -> col (C, kh, kw, N, H_out, W_out).

    One strided copy per kernel offset (kh*kw copies), no loop over pixels. The input is
    first put channel-major, (C, N, Hp, Wp), so that every copy reads and writes in the same
    order.
    """
    n, c = x_padded.shape[:2]
    kh, kw = window.kernel
    channel_major = np.ascontiguousarray(x_padded.transpose(1, 0, 2, 3)) if c > 1 else \
        x_padded.reshape(1, n, *x_padded.shape[2:])
    col = np.empty((c, kh, kw, n, window.out_height, window.out_width), dtype=x_padded.dtype)
    for (i, j), view in shifted_views(channel_major, window):
        col[:, i, j] = view
    return col


def col2im(col: np.ndarray, window: Window2d, x_shape: tuple) -> np.ndarray:
    """The adjoint of `im2col`: add each unrolled window back where it came from.

    col (C, kh, kw, N, H_out, W_out) -> (N, C, H, W); one strided add per kernel offset, into
    a channel-major (C, N, Hp, Wp) buffer that is turned to (N, C, H, W) once at the end.
    """
    n, c = x_shape[:2]
    padded = np.zeros((c, n, window.padded_height, window.padded_width), dtype=col.dtype)
    for (i, j), view in shifted_views(padded, window):
        view += col[:, i, j]
    image = unpad(padded, window).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(image) if c > 1 else image.reshape(x_shape)


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


def unrolled(x: np.ndarray, window: Window2d, groups: int) -> np.ndarray:
    """im2col of x, grouped: col (G, K, N*L)."""
    c = x.shape[1]
    col = im2col(pad(x, window), window)
    return col.reshape(groups, (c // groups) * window.kernel[0] * window.kernel[1], -1)


def conv2d_forward(col: np.ndarray, weight, bias, n: int, window: Window2d) -> np.ndarray:
    """out[n, o, y, x'] = sum_{c, i, j} weight[o, c, i, j] * padded[n, g(o)*Cg + c, window]."""
    groups = col.shape[0]
    c_out = weight.shape[0]
    weight_rows = weight.reshape(groups, c_out // groups, -1)   # (G, C_out/G, K)
    # (G, C_out/G, N*L) = (G, C_out/G, K) @ (G, K, N*L)
    out = np.matmul(weight_rows, col)
    out = out.reshape(c_out, n, window.out_height, window.out_width).transpose(1, 0, 2, 3)
    out = np.ascontiguousarray(out)
    if bias is not None:
        out += bias.reshape(1, c_out, 1, 1)
    return out


def _grad_rows(grad_out: np.ndarray, groups: int) -> np.ndarray:
    """(N, C_out, H_out, W_out) -> (G, C_out/G, N*L), the layout of the products."""
    n, c_out = grad_out.shape[:2]
    rows = np.ascontiguousarray(grad_out.reshape(n, c_out, -1).transpose(1, 0, 2))
    return rows.reshape(groups, c_out // groups, -1)


def conv2d_grad_input(grad_out, weight, window: Window2d, groups: int, x_shape) -> np.ndarray:
    """d loss / d x: each window's gradient, W^T @ grad, added back by col2im."""
    n, c_in = x_shape[:2]
    c_out = weight.shape[0]
    kh, kw = window.kernel
    weight_rows = weight.reshape(groups, c_out // groups, -1)           # (G, C_out/G, K)
    # (G, K, N*L) = (G, K, C_out/G) @ (G, C_out/G, N*L)
    grad_col = np.matmul(weight_rows.transpose(0, 2, 1), _grad_rows(grad_out, groups))
    grad_col = grad_col.reshape(c_in, kh, kw, n, window.out_height, window.out_width)
    return col2im(grad_col, window, x_shape)


def conv2d_grad_weight(grad_out, col: np.ndarray, weight_shape) -> np.ndarray:
    """d loss / d weight: grad @ col^T, the sum over the batch done by the product."""
    groups = col.shape[0]
    # (G, C_out/G, K) = (G, C_out/G, N*L) @ (G, N*L, K)
    grad_weight = np.matmul(_grad_rows(grad_out, groups), col.transpose(0, 2, 1))
    return grad_weight.reshape(weight_shape)


def conv2d_grad_bias(grad_out) -> np.ndarray:
    return grad_out.sum(axis=(0, 2, 3))
