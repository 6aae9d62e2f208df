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
one image alone is over the budget, a band of output rows at a time). Each chunk pads only
its own band of input rows, straight into im2col's channel-major layout, and every buffer of
a chunk (`chunk_bytes`) is freed before the next chunk's are made.

With the batch innermost (`batch_innermost`) and numba on, im2col's copies and col2im's adds
run as compiled loops over the input channels, split across the threads; col2im then gathers
each input cell's terms in kernel-offset order (the sums of NumPy's strided adds, bit for
bit) and writes (N, C, H, W) without a transposed copy (LeNet's second layer: im2col 1.3 ->
0.9 ms, col2im 2.8 -> 0.7-1.1 ms).

Large images (`banded`: one image's windows fill BAND_BYTES, the ResNet stem's 7.4 MB) are
unrolled one image at a time, in bands of output rows whose windows stay in the cache: with
numba on, each band is unrolled by `_im2col_band_kernel` straight from the unpadded input into
one reused buffer, its GEMM writes into the output's rows (no transposed copy), the weight
gradient unrolls each band again rather than keep the whole batch's windows from the forward
pass (`keeps_windows`), and the input gradient adds each band's window gradients back with
`_col2im_band_kernel`. The stem (N=8, 3->64, 7x7, stride 2, 224x224): the peak of its
forward+backward 100 -> 25 MiB (PyTorch's), one core: forward 1.0 -> 1.4-1.6x PyTorch's
speed, forward+backward 1.1 -> 1.7-2.9x.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .jit import jit, runs_compiled, runs_compiled_on
from .threads import run_pieces, split_run
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
    if batch_last:
        source = np.ascontiguousarray(x_padded.transpose(1, 2, 3, 0))   # (C, Hp, Wp, N)
    else:
        source = np.ascontiguousarray(x_padded.transpose(1, 0, 2, 3)) if c > 1 else \
            x_padded.reshape(1, n, *x_padded.shape[2:])
    return _unroll(source, window, batch_last)


def _unroll(source: np.ndarray, window: Window2d, batch_last: bool) -> np.ndarray:
    """im2col of an input already padded and laid out channel-major: source (C, N, Hp, Wp)
    -> col (C, kh, kw, N, H_out, W_out), or batch_last (C, Hp, Wp, N) -> (C, kh, kw, H_out,
    W_out, N)."""
    kh, kw = window.kernel
    if batch_last:
        c, n = source.shape[0], source.shape[3]
        col = np.empty((c, kh, kw, window.out_height, window.out_width, n), source.dtype)
        if runs_compiled(col.dtype):
            # the same copies, compiled, input channels split across the threads
            geometry = (*window.stride, *window.dilation)
            split_run(lambda source_part, col_part: _im2col_batch_last_kernel(
                source_part, col_part, *geometry), source, col)
            return col
        source = source.transpose(0, 3, 1, 2)                  # viewed as (C, N, Hp, Wp)
        dest = col.transpose(0, 1, 2, 5, 3, 4)                 # viewed as (C, kh, kw, N, ...)
    else:
        c, n = source.shape[:2]
        col = dest = np.empty((c, kh, kw, n, window.out_height, window.out_width),
                              source.dtype)
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
    return per_image.reshape(n, c * window.kernel[0] * window.kernel[1],
                             window.out_height * window.out_width)


def fold(col: np.ndarray, window: Window2d, x_shape: tuple) -> np.ndarray:
    """The adjoint of `unfold`: (N, C*kh*kw, H_out*W_out) -> x_shape (N, C, H, W)."""
    n, c = x_shape[:2]
    kh, kw = window.kernel
    col = col.reshape(n, c, kh, kw, window.out_height, window.out_width)
    return col2im(np.moveaxis(col, 0, 3), window, x_shape)


def unrolled(x: np.ndarray, window: Window2d, groups: int) -> np.ndarray:
    """im2col of x (N, C, H, W), padded on the way, grouped: col (G, K, N*L), its columns in
    `batch_innermost` order. Holds one padded copy of x besides col while it works."""
    n, c = x.shape[:2]
    batch_last = batch_innermost(n, window)
    col = _unroll(_padded_band(x, window, slice(0, window.out_height), batch_last), window,
                  batch_last)
    return col.reshape(groups, (c // groups) * window.kernel[0] * window.kernel[1], -1)


# the source rows `_transpose_kernel` copies at a time: each column of such a block is one run
# of this many numbers in the destination (16 float32: a cache line)
TRANSPOSE_ROWS = 16


@jit()
def _transpose_kernel(source, dest, first, end):
    """dest[j, i] = source[i, j] for the source rows i in [first, end), TRANSPOSE_ROWS rows at
    a time: each column j of a block goes into dest's row j as one run of consecutive
    numbers, where a plain transposing copy writes one number per cache line."""
    columns = source.shape[1]
    block_end = first + (end - first) // TRANSPOSE_ROWS * TRANSPOSE_ROWS
    for top in range(first, block_end, TRANSPOSE_ROWS):
        for j in range(columns):
            row = dest[j]
            for i in range(TRANSPOSE_ROWS):
                row[top + i] = source[top + i, j]
    for i in range(block_end, end):
        for j in range(columns):
            dest[j, i] = source[i, j]


def transpose_into(source: np.ndarray, dest: np.ndarray) -> None:
    """dest (B, A) = source (A, B).T, both C-contiguous: the batch-innermost layouts' copies
    (`_to_rows`, `forward`'s output). With the compiled kernels, `_transpose_kernel` on
    corrnet's threads, pieces of source rows each (NumPy's copy of ResNet-18's 64 -> 128
    stride-2 output, (128*144, 64) -> (64, 128*144): 7 ms; the kernel 1.2 ms on one thread);
    else NumPy's copy. A plain reference: ``dest[...] = source.T``."""
    if runs_compiled(source.dtype) and source.flags.c_contiguous and dest.flags.c_contiguous:
        run_pieces(lambda first, end: _transpose_kernel(source, dest, first, end),
                   source.shape[0], source.size)
    else:
        np.copyto(dest, source.T)


def _to_rows(images: np.ndarray, groups: int, window: Window2d) -> np.ndarray:
    """(N, C_out, H_out, W_out) -> (G, C_out/G, N*L), columns in the order of `unrolled`."""
    n, c_out = images.shape[:2]
    if batch_innermost(n, window):
        # (C_out*L, N) = (N, C_out*L).T
        rows = np.empty((c_out * window.out_height * window.out_width, n), images.dtype)
        transpose_into(np.ascontiguousarray(images).reshape(n, -1), rows)
        return rows.reshape(groups, c_out // groups, -1)
    return np.ascontiguousarray(images.transpose(1, 0, 2, 3)).reshape(
        groups, c_out // groups, -1)


def _rows_as_images(rows: np.ndarray, n: int, window: Window2d) -> np.ndarray:
    """The inverse of `_to_rows`, as a view: (G, C_out/G, N*L) -> (N, C_out, H_out, W_out)."""
    c_out = rows.shape[0] * rows.shape[1]
    oh, ow = window.out_height, window.out_width
    if batch_innermost(n, window):
        return rows.reshape(c_out, oh, ow, n).transpose(3, 0, 1, 2)
    return rows.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3)


def _from_rows(rows: np.ndarray, n: int, window: Window2d) -> np.ndarray:
    """The inverse of `_to_rows`: (G, C_out/G, N*L) -> (N, C_out, H_out, W_out)."""
    return np.ascontiguousarray(_rows_as_images(rows, n, window))


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
    """d loss / d bias (C_out,) = grad_out (N, C_out, H_out, W_out) summed over (N, H, W):
    with the compiled kernels, each channel in float64 on one thread (`_channel_sums_kernel`:
    2.0-3.0x NumPy's strided float32 sum, interleaved, on ResNet-18's, LeNet's and the stem's
    output gradients); else NumPy's. A broadcast gradient (zero strides along some of those
    axes: ``out.sum().backward()``'s ones) is summed over its distinct numbers only, in
    float64, times their copies (a depthwise layer's 6.4 million ones: 1 ms less).

    >>> conv2d_grad_bias(np.broadcast_to(np.float32(0.5), (2, 3, 4, 4))).tolist()
    [16.0, 16.0, 16.0]
    """
    copies, cut = 1, [slice(None)] * grad_out.ndim
    for axis in (0, 2, 3):
        if grad_out.strides[axis] == 0 and grad_out.shape[axis] > 1:
            copies *= grad_out.shape[axis]
            cut[axis] = slice(0, 1)
    if copies == 1:
        if runs_compiled_on(grad_out) and grad_out.size:
            n, c_out = grad_out.shape[:2]
            sums = np.empty(c_out, np.float64)
            run_pieces(_channel_sums_kernel, c_out, grad_out.size,
                       grad_out.reshape(n, c_out, -1), sums)
            return sums.astype(grad_out.dtype)
        return grad_out.sum(axis=(0, 2, 3))
    distinct = grad_out[tuple(cut)].sum(axis=(0, 2, 3), dtype=np.float64)
    return (distinct * copies).astype(grad_out.dtype)


@jit(reassociate=True)
def _channel_sums_kernel(grad_out, sums, first, end):
    """sums[c] = the sum of grad_out[:, c] (N, C, L), in float64, for the channels first ...
    end - 1: each channel's rows read in order, no thread's sums shared (NumPy's sum over the
    axes (0, 2, 3) reads them strided)."""
    for c in range(first, end):
        total = 0.0
        for n in range(grad_out.shape[0]):
            row = grad_out[n, c]
            for p in range(row.shape[0]):
                total += row[p]
        sums[c] = total
    return 0


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


def _band_span(window: Window2d, out_rows: slice) -> tuple[int, int]:
    """The padded input rows [first, last) that output rows `out_rows` read."""
    first = out_rows.start * window.stride[0]
    last = ((out_rows.stop - 1) * window.stride[0]
            + window.dilation[0] * (window.kernel[0] - 1) + 1)
    return first, last


def _band_window(window: Window2d, out_rows: slice) -> Window2d:
    """The window over a band of padded input (`_band_span`) giving output rows `out_rows`:
    unpadded, as tall as the band, as wide as the padded input."""
    first, last = _band_span(window, out_rows)
    return dataclasses.replace(window, height=last - first, width=window.padded_width,
                               padding=((0, 0), (0, 0)),
                               out_height=out_rows.stop - out_rows.start)


def chunk_bytes(images: int, out_rows: int, x_shape, weight_shape, window: Window2d,
                dtype) -> int:
    """Most bytes of temporaries one chunk of `images` images by `out_rows` output rows holds
    at once, in any of the three passes (with L' = out_rows*W_out positions per image):

        2 x the padded input band, channel-major   C_in * band rows * Wp     per image
            (the forward's and grad_weight's copy of the input; grad_input's col2im sum and
            its unpadded copy)
        the unrolled windows, col                  C_in*kh*kw * L'           per image
        the output rows (a GEMM result, or         C_out * L'                per image
            a contiguous copy of grad_out)
        2 x the weight (grad_weight's product, a transposed copy of the weight)
    """
    c_in, kh, kw = x_shape[1], *window.kernel
    first, last = _band_span(window, slice(0, out_rows))
    per_image = (2 * c_in * (last - first) * window.padded_width
                 + (c_in * kh * kw + weight_shape[0]) * out_rows * window.out_width)
    return (images * per_image + 2 * int(np.prod(weight_shape))) * np.dtype(dtype).itemsize


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name) -> int:
    """The temporaries of the smallest chunk, one output row of one image: a budget below it
    is exceeded (by that much at most)."""
    return chunk_bytes(1, 1, x_shape, weight_shape, window, dtype)


# Large images are unrolled one image at a time, in bands of output rows whose windows fill
# about BAND_BYTES: a buffer that stays in the cache (L2 and L3: a few MiB per core on Intel
# Xeons and AMD EPYCs) while the GEMM reads it, where the whole batch's windows (the ResNet
# stem's: 59 MB) would go out to memory and back. The GEMM writes each band straight into the
# output, already (N, C_out, H, W). Not smaller: each band hands work to the threads twice
# (the unrolling, the GEMM), and a band must carry enough work to pay for that: at 4 MiB the
# stem's bands are ~120 MFLOP of GEMM each (16 bands); at 1 MiB (64 bands) the hand-offs cost
# more than the cache gains on a loaded 2-core machine (median 2.3 s against 0.6 s per
# forward pass, with the cores oversubscribed 4x).
BAND_BYTES = 4 << 20
# ... from this many output positions per image: a band then still gives the GEMM rows of a
# few hundred columns (smaller maps are unrolled many images at a time, `batch_innermost`)
BANDED_MIN_POSITIONS = 32 * 32


def _row_bytes(x_shape, window: Window2d, dtype) -> int:
    """The bytes of the unrolled windows of one output row of one image: C_in*kh*kw*W_out."""
    kh, kw = window.kernel
    return x_shape[1] * kh * kw * window.out_width * np.dtype(dtype).itemsize


def banded(x_shape, window: Window2d, dtype) -> bool:
    """Whether the passes unroll one image at a time, in bands of output rows (`_chunks`):
    where one image's windows alone fill the band buffer (BAND_BYTES) and its output has at
    least BANDED_MIN_POSITIONS positions. Else many images are unrolled together, and the
    forward pass may keep the whole batch's windows for the weight gradient (`keeps_windows`)."""
    return (window.out_height * window.out_width >= BANDED_MIN_POSITIONS
            and window.out_height * _row_bytes(x_shape, window, dtype) >= BAND_BYTES)


def keeps_windows(x_shape, weight_shape, window: Window2d, dtype, budget: int) -> bool:
    """Whether the forward pass should unroll the whole batch at once and keep the windows
    for the weight gradient (functional's Conv2d): where they are small (at most
    KEEP_COL_BYTES, and the whole batch within the memory budget) and not `banded`. A banded
    layer rebuilds each band in cache instead: the rebuild costs one copy per element, the
    weight gradient's GEMM 2*C_out/G flops per element, and keeping them costs their whole
    size in memory (the stem's: 59 MB beside a 26 MB output)."""
    return (not banded(x_shape, window, dtype)
            and col_bytes(x_shape, weight_shape, window, dtype) <= KEEP_COL_BYTES
            and chunk_bytes(x_shape[0], window.out_height, x_shape, weight_shape, window,
                            dtype) <= budget)


KEEP_COL_BYTES = 64 * 2**20


def _band_columns(array: np.ndarray, groups: int) -> np.ndarray:
    """One image's band of an (C, rows, W) array as GEMM rows (G, C/G, rows*W): a view where
    its rows are contiguous (an output band, a contiguous gradient's), else a copy (a
    broadcast gradient's)."""
    c, rows, width = array.shape
    itemsize = array.dtype.itemsize
    if array.strides[2] != itemsize or array.strides[1] != width * itemsize:
        array = np.ascontiguousarray(array)
    return array.reshape(groups, c // groups, rows * width)


def _unrolled_band(x, window: Window2d, groups: int, image: int, out_rows: slice, buffers):
    """col (G, K, L') of one image's band of output rows, built by the compiled kernel into
    the front of `buffers` (`_band_buffers`: the windows', and the band's column phases')."""
    c_in, (kh, kw) = x.shape[1], window.kernel
    rows = out_rows.stop - out_rows.start
    col_buffer, phase_buffer = buffers
    col = col_buffer[:c_in * kh * kw * rows * window.out_width].reshape(
        c_in, kh, kw, rows, window.out_width)
    first, last = _band_span(window, out_rows)
    phase_width = -(-window.width // window.stride[1])
    phases = phase_buffer[:c_in * (last - first) * window.stride[1] * phase_width].reshape(
        c_in, last - first, window.stride[1], phase_width)
    (top, _), (left, _) = window.padding
    _im2col_band_kernel(x[image], col, phases, out_rows.start, *window.stride,
                        *window.dilation, top, left)
    return col.reshape(groups, -1, rows * window.out_width)


@jit()
def _im2col_band_kernel(image, col, phases, first_row, sh, sw, dh, dw, top, left):
    """col[c, i, j, r, ox] = image[c, (first_row + r)*sh + i*dh - top, ox*sw + j*dw - left],
    zero where that falls in the padding: the windows of output rows first_row... of one
    unpadded image (C, H, W), col (C, kh, kw, rows, W_out).

    The band's input rows are first split into their sw column phases, phases (C, band rows,
    sw, ceil(W/sw)) with phases[c, y', p, m] = image[c, y, m*sw + p]: then every window
    column is a contiguous copy from one phase where it was a strided gather.

    Serial: the copies are a fraction of the band's GEMM (the stem: 4 of 19 ms of work), and
    one hand-off to threads fewer per band is worth more than the 2 ms it could save on two
    idle cores: with the cores oversubscribed (other processes), each hand-off waits for a
    time slice (the stem's forward pass on a loaded 2-core machine, two rounds of 25 runs:
    median 311-363 ms parallel, 336 ms serial; best 47-56 ms parallel, 33 ms serial)."""
    channels, kh, kw, rows, out_width = col.shape
    height, width = image.shape[1], image.shape[2]
    span = phases.shape[1]
    y_first = first_row * sh - top              # the input row of phases[:, 0]
    for task in range(channels * span):
        c, y = task // span, y_first + task % span
        if 0 <= y < height:
            source, into_phases = image[c, y], phases[c, task % span]
            for p in range(sw):
                into = into_phases[p]
                for m in range((width - p + sw - 1) // sw):
                    into[m] = source[m * sw + p]
    for task in range(channels * kh * kw):
        c, i, j = task // (kh * kw), task // kw % kh, task % kw
        shift = j * dw - left                   # input column = ox*sw + shift
        phase, base = shift % sw, shift // sw   # = (ox + base)*sw + phase
        inside_from = min(out_width, max(0, (-shift + sw - 1) // sw))
        inside_to = max(inside_from, min(out_width, (width - 1 - shift) // sw + 1))
        for r in range(rows):
            y = (first_row + r) * sh + i * dh - top
            into = col[c, i, j, r]
            if y < 0 or y >= height:
                for ox in range(out_width):
                    into[ox] = 0
                continue
            source = phases[c, y - y_first, phase]
            for ox in range(inside_from):
                into[ox] = 0
            # unsigned indices: numba then adds no test for negative ones, and the copy
            # vectorizes (5x faster than a slice assignment, 14x than signed indices)
            start, first = np.uint64(inside_from + base), np.uint64(inside_from)
            for m in range(np.uint64(inside_to - inside_from)):
                into[first + m] = source[start + m]
            for ox in range(inside_to, out_width):
                into[ox] = 0


@jit()
def _col2im_band_kernel(col, image_grad, first_row, sh, sw, dh, dw, top, left):
    """The adjoint of `_im2col_band_kernel`, added into one image's gradient (C, H, W):
    image_grad[c, y, x] += col[c, i, j, r, ox] for every (i, j, r, ox) that reads (y, x).
    Row by row of the input (c, y), each gathering that row's terms; serial, as
    `_im2col_band_kernel` (the stem's input gradient: median 311 -> 286 ms, best 28 -> 20 ms
    against the parallel build on a loaded 2-core machine)."""
    channels, kh, kw, rows, out_width = col.shape
    height, width = image_grad.shape[1], image_grad.shape[2]
    y_first = max(0, first_row * sh - top)
    y_stop = min(height, (first_row + rows - 1) * sh + (kh - 1) * dh - top + 1)
    span = max(0, y_stop - y_first)
    for task in range(channels * span):
        c, y = task // span, y_first + task % span
        into = image_grad[c, y]
        for i in range(kh):
            offset = y + top - i * dh - first_row * sh      # = r*sh for the band's row r
            if offset < 0 or offset % sh != 0 or offset // sh >= rows:
                continue
            r = offset // sh
            for j in range(kw):
                shift = j * dw - left
                inside_from = min(out_width, max(0, (-shift + sw - 1) // sw))
                inside_to = max(inside_from, min(out_width, (width - 1 - shift) // sw + 1))
                terms = col[c, i, j, r]
                # (unsigned indices, as in _im2col_band_kernel)
                start, first = np.uint64(inside_from * sw + shift), np.uint64(inside_from)
                for m in range(np.uint64(inside_to - inside_from)):
                    into[start + m * np.uint64(sw)] += terms[first + m]


def _chunks(x_shape, weight_shape, window: Window2d, dtype, budget: int):
    """Yield (batch slice, output-row slice) pieces whose temporaries (`chunk_bytes`) stay
    within `budget` bytes: as many whole images as fit, else bands of output rows of one
    image (one row at least); a `banded` layer in cache-sized bands of one image."""
    n, out_height = x_shape[0], window.out_height

    def fits(images, rows):
        return chunk_bytes(images, rows, x_shape, weight_shape, window, dtype) <= budget

    if banded(x_shape, window, dtype):
        rows = max(1, min(out_height, BAND_BYTES // _row_bytes(x_shape, window, dtype)))
        while rows > 1 and not fits(1, rows):
            rows = (rows + 1) // 2
        bands = -(-out_height // rows)
        rows = -(-out_height // bands)               # bands of (nearly) equal height
        for image in range(n):
            for top in range(0, out_height, rows):
                yield slice(image, image + 1), slice(top, min(out_height, top + rows))
        return
    yield from budget_chunks(x_shape, weight_shape, window, dtype, budget)


def budget_chunks(x_shape, weight_shape, window: Window2d, dtype, budget: int):
    """Yield (batch slice, output-row slice) pieces whose temporaries (`chunk_bytes`) stay
    within `budget` bytes, as large as that allows: as many whole images as fit, else bands
    of output rows of one image (one row at least). (`_chunks` without the cache-sized bands;
    the device kernels, device_conv.py, chunk this way.)

    >>> from corrnet.kernels.windows import make_window
    >>> w = make_window("conv2d", 8, 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    >>> list(budget_chunks((4, 2, 8, 8), (3, 2, 3, 3), w, "float32", 2**20))
    [(slice(0, 4, None), slice(0, 8, None))]
    """
    n, out_height = x_shape[0], window.out_height

    def fits(images, rows):
        return chunk_bytes(images, rows, x_shape, weight_shape, window, dtype) <= budget

    if fits(1, out_height):
        step = 1
        while step < n and fits(min(n, 2 * step), out_height):
            step = min(n, 2 * step)
        low, high = step, min(n, 2 * step)          # fits(low); the largest that fits
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(middle, out_height) else (low, middle - 1)
        for start in range(0, n, low):
            yield slice(start, min(n, start + low)), slice(0, out_height)
        return
    low, high = 1, out_height - 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(1, middle) else (low, middle - 1)
    for image in range(n):
        for top in range(0, out_height, low):
            yield slice(image, image + 1), slice(top, min(out_height, top + low))


def _padded_band(x: np.ndarray, window: Window2d, out_rows: slice, batch_last: bool):
    """The padded input rows that output rows `out_rows` read (`_band_span`), of the images
    x (n, C, H, W), laid out channel-major as `_unroll` wants them: (C, n, band, Wp), or with
    `batch_last` (C, band, Wp, n). One copy of the band, zeros in the padding."""
    n, c, height, width = x.shape
    (top, _), (left, _) = window.padding
    first, last = _band_span(window, out_rows)
    low, high = max(first - top, 0), min(last - top, height)      # the image rows in it
    if batch_last:
        band = np.zeros((c, last - first, window.padded_width, n), x.dtype)
        if low < high and runs_compiled(x.dtype):
            # the transposing copy, channels split among the threads (x viewed as (C, n, H, W))
            split_run(lambda x_part, band_part: _batch_last_band_kernel(
                x_part, band_part, low, high, top - first, left), x.transpose(1, 0, 2, 3), band)
            return band
        as_images = band.transpose(3, 0, 1, 2)                       # viewed as (n, C, ...)
    else:
        band = np.zeros((c, n, last - first, window.padded_width), x.dtype)
        as_images = band.transpose(1, 0, 2, 3)
    if low < high:
        as_images[:, :, low + top - first:high + top - first, left:left + width] = \
            x[:, :, low:high]
    return band


@jit()
def _batch_last_band_kernel(x, band, low, high, shift, left):
    """band[c, row + shift, column + left, n] = x[c, n, row, column] for the image rows low
    ... high - 1 (x viewed as (C, n, H, W), band (C, rows, Wp, n), its padding already zero).
    TRANSPOSE_ROWS images at a time: each cell of their rows goes into the band as one run
    of consecutive numbers, where one image at a time writes one number per cache line
    (NumPy's strided copy of the same: 7.7 ms for (64, 64, 24, 24))."""
    channels, batch, _, width = x.shape
    block_end = batch // TRANSPOSE_ROWS * TRANSPOSE_ROWS
    for c in range(channels):
        for first in range(0, block_end, TRANSPOSE_ROWS):
            for row in range(low, high):
                into = band[c, row + shift]
                for column in range(width):
                    cell = into[column + left]
                    for n in range(TRANSPOSE_ROWS):
                        cell[first + n] = x[c, first + n, row, column]
        for n in range(block_end, batch):
            for row in range(low, high):
                into = band[c, row + shift]
                taken = x[c, n, row]
                for column in range(width):
                    into[column + left, n] = taken[column]


def _unrolled_chunk(x, window: Window2d, groups: int, images: slice, out_rows: slice):
    """col (G, K, n*L') of one chunk, and the band's window."""
    count = images.stop - images.start
    band = _band_window(window, out_rows)
    batch_last = batch_innermost(count, band)
    col = _unroll(_padded_band(x[images], window, out_rows, batch_last), band, batch_last)
    return col.reshape(groups, -1, col[0, 0, 0].size), band


def _band_buffers(x_shape, window: Window2d, chunks, dtype) -> tuple:
    """Flat buffers for the tallest band of `chunks`, reused by every band: its unrolled
    windows (C_in*kh*kw*L') and its input rows split into column phases (`_unrolled_band`);
    together within `chunk_bytes` (the phases hold no more than one padded copy of the band)."""
    rows = max(out_rows.stop - out_rows.start for _, out_rows in chunks)
    first, last = _band_span(window, slice(0, rows))
    phase_columns = window.stride[1] * -(-window.width // window.stride[1])
    return (np.empty(rows * _row_bytes(x_shape, window, dtype) // np.dtype(dtype).itemsize,
                     dtype),
            np.empty(x_shape[1] * (last - first) * phase_columns, dtype))


def _forward_banded(x, weight, bias, window: Window2d, groups: int, budget: int):
    """The forward pass of a `banded` layer with the compiled kernels: each band's windows
    unrolled into one cache-sized buffer, its GEMM written straight into the output."""
    n, c_out = x.shape[0], weight.shape[0]
    weight_rows = weight.reshape(groups, c_out // groups, -1)       # (G, C_out/G, K)
    out = np.empty((n, c_out, window.out_height, window.out_width), x.dtype)
    chunks = list(_chunks(x.shape, weight.shape, window, x.dtype, budget))
    buffers = _band_buffers(x.shape, window, chunks, x.dtype)
    for images, rows in chunks:
        col = _unrolled_band(x, window, groups, images.start, rows, buffers)     # (G, K, L')
        out_band = _band_columns(out[images.start, :, rows], groups)   # (G, C_out/G, L'), a view
        # (G, C_out/G, L') = (G, C_out/G, K) @ (G, K, L')
        np.matmul(weight_rows, col, out=out_band)
        if bias is not None:
            out_band += bias.reshape(groups, c_out // groups, 1)
    return out


def _grad_input_banded(grad_out, weight, window: Window2d, groups: int, x_shape, budget: int):
    """The input gradient of a `banded` layer with the compiled kernels: each band's window
    gradients into one cache-sized buffer, added back into the image by `_col2im_band_kernel`
    (bands of one image share their halo rows: their sums add up in grad_x)."""
    c_in, c_out, (kh, kw) = x_shape[1], weight.shape[0], window.kernel
    (top, _), (left, _) = window.padding
    weight_columns = weight.reshape(groups, c_out // groups, -1).transpose(0, 2, 1)
    grad_x = np.zeros(x_shape, grad_out.dtype)
    chunks = list(_chunks(x_shape, weight.shape, window, grad_out.dtype, budget))
    buffer = _band_buffers(x_shape, window, chunks, grad_out.dtype)[0]
    for images, rows in chunks:
        count = (rows.stop - rows.start) * window.out_width                  # L'
        grad_rows = _band_columns(grad_out[images.start, :, rows], groups)  # (G, C_out/G, L')
        grad_col = buffer[:c_in * kh * kw * count].reshape(groups, -1, count)
        # (G, K, L') = (G, K, C_out/G) @ (G, C_out/G, L')
        np.matmul(weight_columns, grad_rows, out=grad_col)
        _col2im_band_kernel(grad_col.reshape(c_in, kh, kw, -1, window.out_width),
                            grad_x[images.start], rows.start, *window.stride,
                            *window.dilation, top, left)
    return grad_x


def _grad_weight_banded(grad_out, x, weight_shape, window: Window2d, groups: int,
                        budget: int):
    """The weight gradient of a `banded` layer with the compiled kernels: each band's windows
    unrolled again into one cache-sized buffer (not kept from the forward pass), its product
    with the band's output gradient added up."""
    c_out = weight_shape[0]
    total = np.zeros((groups, c_out // groups, int(np.prod(weight_shape[1:]))), x.dtype)
    partial = np.empty_like(total)
    chunks = list(_chunks(x.shape, weight_shape, window, x.dtype, budget))
    buffers = _band_buffers(x.shape, window, chunks, x.dtype)
    for images, rows in chunks:
        col = _unrolled_band(x, window, groups, images.start, rows, buffers)     # (G, K, L')
        grad_rows = _band_columns(grad_out[images.start, :, rows], groups)  # (G, C_out/G, L')
        # (G, C_out/G, K) = (G, C_out/G, L') @ (G, L', K)
        np.matmul(grad_rows, col.transpose(0, 2, 1), out=partial)
        total += partial
    return total.reshape(weight_shape)


def forward(x, weight, bias, window: Window2d, groups: int, budget: int) -> np.ndarray:
    """conv2d forward, in chunks whose temporaries stay within `budget` bytes."""
    if banded(x.shape, window, x.dtype) and runs_compiled(x.dtype):
        return _forward_banded(x, weight, bias, window, groups, budget)
    n, c_out = x.shape[0], weight.shape[0]
    weight_rows = weight.reshape(groups, c_out // groups, -1)       # (G, C_out/G, K)
    out = np.empty((n, c_out, window.out_height, window.out_width), x.dtype)
    for images, rows in _chunks(x.shape, weight.shape, window, x.dtype, budget):
        col, band = _unrolled_chunk(x, window, groups, images, rows)
        # (G, C_out/G, n*L') = (G, C_out/G, K) @ (G, K, n*L')
        products = np.matmul(weight_rows, col)
        del col
        count = images.stop - images.start
        if batch_innermost(count, band) and rows.stop - rows.start == window.out_height:
            # (n, C_out*L) = (C_out*L, n).T, straight into the chunk's whole images
            transpose_into(products.reshape(-1, count), out[images].reshape(count, -1))
        else:
            out[images, :, rows] = _rows_as_images(products, count, band)
        del products
    if bias is not None:
        out += bias.reshape(1, c_out, 1, 1)
    return out


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape, budget: int):
    """d loss / d x in chunks: each chunk's windows added back (col2im) into its band of the
    padded input, and the band's image part added into the gradient."""
    if banded(x_shape, window, grad_out.dtype) and runs_compiled(grad_out.dtype):
        return _grad_input_banded(grad_out, weight, window, groups, x_shape, budget)
    n, c_in, height, width = x_shape
    c_out = weight.shape[0]
    kh, kw = window.kernel
    (top, _), (left, _) = window.padding
    weight_columns = weight.reshape(groups, c_out // groups, -1).transpose(0, 2, 1)
    chunks = list(_chunks(x_shape, weight.shape, window, grad_out.dtype, budget))
    whole_images = all(rows.stop - rows.start == window.out_height for _, rows in chunks)
    reached = _band_span(window, slice(0, window.out_height))[1] - top >= height
    # bands of one image overlap (their halo rows): their sums are added; rows no window
    # reaches (a stride's leftover) get zero
    grad_x = (np.empty if whole_images and reached else np.zeros)(x_shape, grad_out.dtype)
    for images, rows in chunks:
        count = images.stop - images.start
        band = _band_window(window, rows)
        batch_last = batch_innermost(count, band)
        grad_rows = _to_rows(grad_out[images, :, rows], groups, band)   # (G, C_out/G, n*L')
        # (G, K, n*L') = (G, K, C_out/G) @ (G, C_out/G, n*L')
        grad_col = np.matmul(weight_columns, grad_rows)
        del grad_rows
        spatial = (band.out_height, band.out_width)
        grad_col = grad_col.reshape(c_in, kh, kw,
                                    *((*spatial, count) if batch_last else (count, *spatial)))
        band_grad = col2im(grad_col, band, (count, c_in, band.height, band.width), batch_last)
        del grad_col
        first, last = _band_span(window, rows)
        low, high = max(first - top, 0), min(last - top, height)      # the image rows in it
        if low < high:   # (none where the band's windows read only the padding)
            image_part = band_grad[:, :, low + top - first:high + top - first,
                                   left:left + width]
            if whole_images:
                grad_x[images, :, low:high] = image_part
            else:
                grad_x[images, :, low:high] += image_part
            del image_part
        del band_grad
    return grad_x


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int, budget: int):
    """d loss / d weight, summed over chunks of the batch (or of one image's rows)."""
    if banded(x.shape, window, x.dtype) and runs_compiled(x.dtype):
        return _grad_weight_banded(grad_out, x, weight_shape, window, groups, budget)
    total = None
    for images, rows in _chunks(x.shape, weight_shape, window, x.dtype, budget):
        col, band = _unrolled_chunk(x, window, groups, images, rows)
        grad_rows = _to_rows(grad_out[images, :, rows], groups, band)   # (G, C_out/G, n*L')
        # (G, C_out/G, K) = (G, C_out/G, n*L') @ (G, n*L', K)
        product = np.matmul(grad_rows, col.transpose(0, 2, 1))
        del col, grad_rows
        total = product if total is None else np.add(total, product, out=total)
        del product
    return total.reshape(weight_shape)
