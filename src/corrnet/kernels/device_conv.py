"""2-D convolution by im2col + GEMM on any array namespace: CuPy's on a GPU, NumPy's in CI.

How it is plugged in. The module has the interface of an algorithm of the planner (plan.py;
the same as conv.py's): `supports`, `least_bytes`, `forward(x, weight, bias, window, groups,
budget)`, `grad_input(grad_out, weight, window, groups, x_shape, budget)` and
`grad_weight(grad_out, x, weight_shape, window, groups, budget)`, plus `unfold` / `fold`
(F.unfold, F.fold). `plan.conv_pass` runs every pass of an array that lives on a CUDA
device here (`plan.on_device`: devices.py decides), with that device current
(`devices.using`), its namespace as ``xp`` (`devices.namespace_of`: ``cupy``, or the
stand-in in CI) and the device's budget (`plan.device_budget`). It never imports CuPy.

Shapes: x (N, C_in, H, W), weight (C_out, C_in/G, kh, kw), output (N, C_out, H_out, W_out);
K = (C_in/G)*kh*kw the length of one unrolled window, L' the output positions of a chunk.
Each pass works chunk by chunk (`conv.budget_chunks`: as many whole images as the memory
budget allows, else bands of output rows of one image), each chunk in four steps:

1. its band of input rows, padded, channel-major (C_in, n, rows, W_pad): `xp.zeros` and one
   strided copy (CuPy: a fill and an elementwise copy kernel);
2. im2col: a strided view of the band with the windows as axes (C_in, kh, kw, n, H', W')
   (`namespace.as_strided`, no copy), made contiguous by `xp.ascontiguousarray` (CuPy: one
   gather kernel), and read as (G, K, n*L');
3. one batched matrix product over the groups, `xp.matmul` (CuPy: cuBLAS's strided batched
   GEMM for floats, CuPy's own kernel for integers);
4. for the input gradient, col2im: the window gradients added back into a zero band with
   kh*kw strided adds, one per kernel offset (windows.shifted_views; CuPy: one elementwise
   kernel each, no atomics, no loop over pixels), as Chainer's col2im.

Every dtype the CPU path takes: float32 and float64 as they are, float16 computed in float32
and rounded once (as PyTorch's CPU kernels and functional's `_in_float32`; those float32
copies of the operands are outside the budget, as on the CPU), integers exactly (products
and sums wrap around in the integer type, as PyTorch's).

The memory budget counts what conv.chunk_bytes counts (the padded band, the unrolled
windows, a chunk of output rows, weight-sized partial sums): on a GPU these come from CuPy's
memory pool, which keeps freed blocks for reuse, so a pass holds the same peak there.

>>> import numpy as np
>>> from corrnet.kernels.windows import make_window
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> w = make_window("conv2d", 4, 4, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1))
>>> forward(x, np.ones((1, 1, 2, 2)), None, w, 1, 2**20)[0, 0]
array([[10., 18.],
       [42., 50.]])
"""

from __future__ import annotations

import numpy as np

from . import conv
from .namespace import as_strided, namespace_of
from .windows import Window2d, shifted_views

# the planner's bookkeeping is the same as im2col + GEMM's on the CPU: same temporaries
least_bytes = conv.least_bytes
col_bytes = conv.col_bytes


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype, pass_name) -> bool:
    """Every shape, dtype and option."""
    return True


def _working(dtype):
    """The dtype a pass computes in: float16 in float32 (rounded once at the end)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def padded_band(xp, x, window: Window2d, out_rows: slice):
    """The padded input rows that output rows `out_rows` read (conv._band_span), of the
    images x (n, C, H, W), channel-major: (C, n, band rows, W_pad), zeros in the padding.

    >>> from corrnet.kernels.windows import make_window
    >>> w = make_window("conv2d", 2, 2, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    >>> padded_band(np, np.ones((1, 1, 2, 2)), w, slice(0, 1))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 0.]])
    """
    n, c, height, width = x.shape
    (top, _), (left, _) = window.padding
    first, last = conv._band_span(window, out_rows)
    band = xp.zeros((c, n, last - first, window.padded_width), dtype=x.dtype)
    low, high = max(first - top, 0), min(last - top, height)     # the image rows in it
    if low < high:
        band[:, :, low + top - first:high + top - first, left:left + width] = \
            x[:, :, low:high].transpose(1, 0, 2, 3)
    return band


def im2col(xp, band, window: Window2d):
    """Every window of a padded channel-major band (C, n, Hp, Wp), unrolled:
    col (C, kh, kw, n, H_out, W_out) with col[c, i, j, b, y, x] =
    band[c, b, y*sh + i*dh, x*sw + j*dw]. One strided view (as_strided) and one copy
    (`xp.ascontiguousarray`; CuPy: a single gather kernel).

    >>> from corrnet.kernels.windows import make_window
    >>> w = make_window("conv2d", 3, 3, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))
    >>> im2col(np, np.arange(9).reshape(1, 1, 3, 3), w)[0, :, :, 0, 0, 0]
    array([[0, 1],
           [3, 4]])
    """
    c, n = band.shape[:2]
    kh, kw = window.kernel
    (sh, sw), (dh, dw) = window.stride, window.dilation
    if band.size == 0:
        return xp.zeros((c, kh, kw, n, window.out_height, window.out_width), band.dtype)
    band = xp.ascontiguousarray(band)
    s_c, s_n, s_y, s_x = band.strides
    view = as_strided(xp, band, (c, kh, kw, n, window.out_height, window.out_width),
                      (s_c, dh * s_y, dw * s_x, s_n, sh * s_y, sw * s_x))
    return xp.ascontiguousarray(view)


def col2im(xp, col, window: Window2d):
    """The adjoint of `im2col`: col (C, kh, kw, n, H_out, W_out) -> the padded band
    (C, n, Hp, Wp), each window's values added back where they came from. kh*kw strided
    adds, one per kernel offset: within one offset no two windows share a cell, so each add
    is a plain elementwise kernel (CuPy), with no atomics and a fixed order of the sums.

    >>> from corrnet.kernels.windows import make_window
    >>> w = make_window("conv2d", 3, 3, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))
    >>> col2im(np, np.ones((1, 2, 2, 1, 2, 2)), w)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    c, n = col.shape[0], col.shape[3]
    padded = xp.zeros((c, n, window.padded_height, window.padded_width), dtype=col.dtype)
    for (i, j), view in shifted_views(padded, window):      # view (C, n, H_out, W_out)
        view += col[:, i, j]
    return padded


def _chunk(xp, x, window: Window2d, groups: int, images: slice, out_rows: slice):
    """col (G, K, n*L') of one chunk of images and output rows, and the band's window."""
    band_window = conv._band_window(window, out_rows)
    col = im2col(xp, padded_band(xp, x[images], window, out_rows), band_window)
    return col.reshape(groups, -1, col[0, 0, 0].size), band_window


def _grad_rows(xp, grad_out, groups: int, images: slice, out_rows: slice):
    """The output gradient of one chunk as GEMM rows (G, C_out/G, n*L'), columns in the
    order of `_chunk`'s (n, H', W'): one contiguous copy."""
    part = grad_out[images, :, out_rows].transpose(1, 0, 2, 3)      # (C_out, n, H', W')
    return xp.ascontiguousarray(part).reshape(groups, part.shape[0] // groups, -1)


def forward(x, weight, bias, window: Window2d, groups: int, budget: int, xp=None):
    """conv2d's output (N, C_out, H_out, W_out), in chunks whose temporaries stay within
    `budget` bytes: per chunk, im2col and one batched GEMM (CuPy: cuBLAS),
    (G, C_out/G, K) @ (G, K, n*L'), written into the output's rows."""
    xp = xp or namespace_of(x)
    dtype, work = x.dtype, _working(x.dtype)
    x, weight = x.astype(work, copy=False), weight.astype(work, copy=False)
    n, c_out = x.shape[0], weight.shape[0]
    weight_rows = weight.reshape(groups, c_out // groups, -1)       # (G, C_out/G, K)
    out = xp.empty((n, c_out, window.out_height, window.out_width), dtype=work)
    for images, rows in conv.budget_chunks(x.shape, weight.shape, window, work, budget):
        col, band = _chunk(xp, x, window, groups, images, rows)
        products = xp.matmul(weight_rows, col)                     # (G, C_out/G, n*L')
        del col
        count = images.stop - images.start
        out[images, :, rows] = products.reshape(
            c_out, count, band.out_height, band.out_width).transpose(1, 0, 2, 3)
        del products
    if bias is not None:
        out += bias.astype(work, copy=False).reshape(1, c_out, 1, 1)
    return out.astype(dtype, copy=False)


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape, budget: int,
               xp=None):
    """d loss / d x (x_shape), in chunks: per chunk one batched GEMM for the window
    gradients, (G, K, C_out/G) @ (G, C_out/G, n*L'), added back by `col2im` into the chunk's
    padded band, whose image part is added into the gradient (bands of one image overlap in
    their halo rows: their sums add up)."""
    xp = xp or namespace_of(grad_out)
    dtype, work = grad_out.dtype, _working(grad_out.dtype)
    grad_out, weight = grad_out.astype(work, copy=False), weight.astype(work, copy=False)
    c_in, height, width = x_shape[1:]
    c_out, (kh, kw) = weight.shape[0], window.kernel
    (top, _), (left, _) = window.padding
    weight_columns = weight.reshape(groups, c_out // groups, -1).transpose(0, 2, 1)
    grad_x = xp.zeros(tuple(x_shape), dtype=work)
    for images, rows in conv.budget_chunks(tuple(x_shape), weight.shape, window, work,
                                           budget):
        count = images.stop - images.start
        band = conv._band_window(window, rows)
        grad_col = xp.matmul(weight_columns, _grad_rows(xp, grad_out, groups, images, rows))
        grad_col = grad_col.reshape(c_in, kh, kw, count, band.out_height, band.out_width)
        band_grad = col2im(xp, grad_col, band)                      # (C_in, n, rows, Wp)
        del grad_col
        first, last = conv._band_span(window, rows)
        low, high = max(first - top, 0), min(last - top, height)
        if low < high:
            grad_x[images, :, low:high] += band_grad[
                :, :, low + top - first:high + top - first, left:left + width
            ].transpose(1, 0, 2, 3)
        del band_grad
    return grad_x.astype(dtype, copy=False)


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int, budget: int,
                xp=None):
    """d loss / d weight (weight_shape), summed over chunks: per chunk one batched GEMM,
    (G, C_out/G, n*L') @ (G, n*L', K), the sum over the chunk's images done by the product."""
    xp = xp or namespace_of(x)
    dtype, work = x.dtype, _working(x.dtype)
    grad_out, x = grad_out.astype(work, copy=False), x.astype(work, copy=False)
    total = None
    for images, rows in conv.budget_chunks(x.shape, tuple(weight_shape), window, work,
                                           budget):
        col, _ = _chunk(xp, x, window, groups, images, rows)
        product = xp.matmul(_grad_rows(xp, grad_out, groups, images, rows),
                            col.transpose(0, 2, 1))                  # (G, C_out/G, K)
        del col
        if total is None:
            total = product
        else:
            total += product
        del product
    if total is None:                                                # an empty batch
        return xp.zeros(tuple(weight_shape), dtype=dtype)
    return total.reshape(tuple(weight_shape)).astype(dtype, copy=False)



def unfold(x, window: Window2d, xp=None):
    """Every window as a column, per image (F.unfold, conv.unfold's interface):
    (N, C, H, W) -> (N, C*kh*kw, H_out*W_out); the padded band of every output row and
    `im2col`, then one copy to the per-image layout."""
    xp = xp or namespace_of(x)
    n, c = x.shape[:2]
    col = im2col(xp, padded_band(xp, x, window, slice(0, window.out_height)), window)
    per_image = xp.ascontiguousarray(col.transpose(3, 0, 1, 2, 4, 5))   # (N, C, kh, kw, H', W')
    return per_image.reshape(n, c * window.kernel[0] * window.kernel[1],
                             window.out_height * window.out_width)


def fold(col, window: Window2d, x_shape, xp=None):
    """The adjoint of `unfold` (F.fold): (N, C*kh*kw, H_out*W_out) -> x_shape (N, C, H, W),
    overlapping windows added (`col2im`, kh*kw strided adds)."""
    xp = xp or namespace_of(col)
    n, c = x_shape[:2]
    kh, kw = window.kernel
    (top, _), (left, _) = window.padding
    col = col.reshape(n, c, kh, kw, window.out_height, window.out_width)
    padded = col2im(xp, col.transpose(1, 2, 3, 0, 4, 5), window)        # (C, N, Hp, Wp)
    image = padded[:, :, top:top + x_shape[2], left:left + x_shape[3]]
    return xp.ascontiguousarray(image.transpose(1, 0, 2, 3))


def grad_bias(grad_out, xp=None):
    """d loss / d bias: grad_out (N, C_out, H_out, W_out) summed to (C_out,)."""
    return grad_out.sum(axis=(0, 2, 3))
