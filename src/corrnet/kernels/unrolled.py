"""im2col + GEMM one image at a time, in cache, compiled ("unrolled").

For layers with few channels and small maps (LeNet's second layer: 6 -> 16, 5x5, 14x14) the
arithmetic is a few dozen million multiply-adds, and NumPy's im2col (conv.py) spends more
on writing the whole batch's unrolled windows to memory, and on transposing the product back
to images, than on the product. Here a compiled loop takes one image at a time: it unrolls
the image's windows into a buffer that stays in the core's cache, multiplies it there with
one BLAS call (`blas.product_into`: NumPy's BLAS), and writes the product straight
into the image's output; the next image reuses the buffer. The windows are never written to
main memory, no transposed copy is made, and BLAS does the arithmetic at the machine's speed
(whatever its vector width).

Notation: x (N, C_in, H, W), weight (C_out, Cg, kh, kw), G = groups, Cg = C_in/G and
Og = C_out/G channels per group, K = Cg*kh*kw the length of one window, L = H_out*W_out the
windows of one image. The windows of image n, group g are laid out col (K, L): row (c, i, j),
column (y, x). The passes, per image and group:

    forward       out[n, g] (Og, L) = weight[g] (Og, K) @ col (K, L)     (+ bias)
    grad_weight   partial (K, Og)  += col (K, L) @ grad_out[n, g]^T (L, Og)
    grad_input    col (K, L)        = weight[g]^T (K, Og) @ grad_out[n, g] (Og, L)
                  then each window's cells added back into grad_x[n] (col2im)

Threads: the images are split among corrnet's threads (`threads.active()`); each
runs the compiled loop over its own images with its own buffers (the GIL released), and its
products are computed on the calling thread: BLAS runs on one thread during a pass (its
threads, once woken, busy-wait and slow down what runs next). From `BLAS_THREADED_PRODUCT`
multiply-adds a product the images also run on one thread (the planner's rule keeps unrolled
to smaller products).
The weight gradient sums each thread's images into its own float64 partial sums, added at
the end. Nothing waits on another thread until the pass is done. (A first version unrolled
bands of 16 images and ran each band's product on BLAS's own threads: as fast on a quiet
machine, but 16 hand-offs between BLAS's threads per pass, and with other processes on the
cores (load 7 on 2 cores) a pass took 30-480 ms instead of 2.5.)

Stride 1 has kernels of its own (`_stride1_kernel`, below) that copy each window cell's
plane as one run instead of one short run per output row.

Every stride, padding, dilation and groups, float32 and float64; compiled only (numba): with
the compiled kernels off `supports` says False and the planner's im2col + GEMM (conv.py),
the same arithmetic with NumPy's unrolling, takes the pass. The stride-1 kernels also
multiply zeros outside the windows (their gap columns): a pass with a NaN or an inf among its
operands runs on im2col instead, as for `direct` (plan.run).

Memory: each thread holds one image's windows (K*L), product and output-gradient copy
(Og*L), a weight-sized product and float64 sum, and with stride 1 the padded image
(`_thread_bytes`); fewer threads run where the budget holds fewer of them, and `least_bytes`
is one thread's.
"""

from __future__ import annotations

import numpy as np

from . import blas
from .jit import jit, runs_compiled
from .threads import active, helper_pool, numba_blas_on_one_thread
from .windows import Window2d

DEFAULT_BUDGET = 256 * 2**20

# Below this many multiply-adds a pass runs on the calling thread alone (handing work to a
# helper thread costs more than it saves).
PARALLEL_WORK = 1 << 22
# From this many multiply-adds per image and group on, OpenBLAS computes a product on its own
# threads (2 * 2**18: its threshold for two threads); then the images run on the calling
# thread alone, one product at a time on BLAS's threads, instead of corrnet's threads each
# starting BLAS's.
BLAS_THREADED_PRODUCT = 1 << 19


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
             pass_name: str) -> bool:
    """Every convolution of float32/float64, compiled kernels on (numba)."""
    return len(x_shape) == 4 and runs_compiled(dtype)


def _sizes(weight_shape, window: Window2d, groups: int) -> tuple[int, int, int]:
    """(K, L, Og): window length, windows per image, output channels per group."""
    c_out, channels_per_group, kh, kw = weight_shape
    return channels_per_group * kh * kw, window.out_height * window.out_width, c_out // groups


def _thread_bytes(weight_shape, window: Window2d, groups: int, itemsize: int) -> int:
    """One thread's buffers: an image's windows (K*L), its product and output-gradient copy
    (Og*L each), one group's weight-gradient product (K*Og) and the float64 partial sums of
    all groups; with stride 1 (`_stride1_kernel`) L is the span of a band of rows row_width
    apart, and the padded image (or its gradient) is one more buffer (Cg * its size)."""
    k, pixels, outs = _sizes(weight_shape, window, groups)
    padded = 0
    if window.stride == (1, 1):
        (kh, kw), (dh, dw) = window.kernel, window.dilation
        row_width = window.out_width + (kw - 1) * dw
        pixels = (window.out_height - 1) * row_width + window.out_width
        padded = weight_shape[1] * (window.out_height + (kh - 1) * dh) * row_width
    return (((k + 2 * outs) * pixels + k * outs + padded) * itemsize
            + int(np.prod(weight_shape)) * 8)


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name: str) -> int:
    """One thread's buffers, and weight-sized copies (a transposed weight, the sum)."""
    itemsize = np.dtype(dtype).itemsize
    return (_thread_bytes(weight_shape, window, groups, itemsize)
            + int(np.prod(weight_shape)) * (itemsize + 8))


def _threads(x_shape, weight_shape, window: Window2d, groups: int, itemsize: int,
             budget: int) -> int:
    """Threads for a pass: corrnet's count for large work made of products BLAS runs on the
    calling thread, as many as the budget holds buffers for, one per image at most."""
    k, pixels, outs = _sizes(weight_shape, window, groups)
    work = x_shape[0] * groups * k * pixels * outs
    if work < PARALLEL_WORK or k * pixels * outs >= BLAS_THREADED_PRODUCT:
        return 1
    fixed = int(np.prod(weight_shape)) * (itemsize + 8)
    room = (budget - fixed) // _thread_bytes(weight_shape, window, groups, itemsize)
    return int(max(1, min(active(), x_shape[0], room)))


def _in_parallel(kernel, n: int, threads: int, *arguments) -> None:
    """kernel(*arguments, k, first, end) for `threads` pieces [first, end) of the n images,
    piece k on the calling thread (k = 0) and on helper threads; numba's BLAS on one thread
    meanwhile (`threads.numba_blas_on_one_thread`)."""
    bounds = [n * k // threads for k in range(threads + 1)]
    with numba_blas_on_one_thread():
        pool = helper_pool()
        futures = [pool.submit(kernel, *arguments, k, bounds[k], bounds[k + 1])
                   for k in range(1, threads)]
        kernel(*arguments, 0, bounds[0], bounds[1])
        for future in futures:
            future.result()


@jit()
def _unrolling_kernel(x, weight_rows, bias, out, grad_out, partial, geometry, weight_pass,
                      gemm, piece, first, end):
    """The forward pass (weight_pass False) or the weight gradient (True) of the images n in
    [first, end), each image's windows of each group unrolled in turn into col (K, L):

        col[(c, i, j), (y, q)] = padded[n, g*Cg + c, y*sh + i*dh, q*sw + j*dw]  (0: padding)

    forward: out[n, g] (Og, L) = weight_rows[g] (Og, K) @ col, plus bias; x (N, C_in, H, W),
    out (N, C_out, L). Weight gradient: partial[piece, g] (K, Og) += col @ grad_out[n, g]^T,
    grad_out (N, C_out, H_out, W_out) (any strides), partial float64. geometry: (kh, kw, sh,
    sw, dh, dw, top, left, H_out, W_out); gemm: the products' `blas.gemm_for`. (Arrays a
    pass does not use are placeholders.)
    """
    kh, kw, sh, sw, dh, dw, top, left, out_height, out_width = geometry
    groups, outs, k = weight_rows.shape
    height, width = x.shape[2], x.shape[3]
    pixels = out_height * out_width
    channels_per_group = x.shape[1] // groups
    col = np.empty((k, pixels), x.dtype)
    grad_columns = np.empty((pixels, outs), x.dtype)
    product = np.empty((k, outs), x.dtype)
    for n in range(first, end):
        for g in range(groups):
            for c in range(channels_per_group):
                plane = x[n, g * channels_per_group + c]
                for i in range(kh):
                    for j in range(kw):
                        row = col[(c * kh + i) * kw + j]
                        shift = j * dw - left
                        # output rows y_low ... y_high-1 and columns low ... high-1 read
                        # the image, the others the padding (zeroed first, as a whole row:
                        # branches in the copy loop below keep it from vectorizing)
                        # (output positions p in [low, high) read input p*stride + shift
                        # inside [0, size); low == high where none does)
                        row_shift = i * dh - top
                        y_low = 0 if row_shift >= 0 else \
                            min(out_height, (-row_shift + sh - 1) // sh)
                        y_high = y_low if height - 1 - row_shift < 0 else \
                            max(y_low, min(out_height, (height - 1 - row_shift) // sh + 1))
                        low = 0 if shift >= 0 else min(out_width, (-shift + sw - 1) // sw)
                        high = low if width - 1 - shift < 0 else \
                            max(low, min(out_width, (width - 1 - shift) // sw + 1))
                        if low > 0 or high < out_width or y_low > 0 or y_high < out_height:
                            for p in range(pixels):
                                row[p] = 0
                        count = high - low
                        # (slices indexed from 0: numba drops its negative-index checks, and
                        # the stride-1 copy vectorizes)
                        if sw == 1:
                            for y in range(y_low, y_high):
                                into = row[y * out_width + low:y * out_width + high]
                                taken = plane[y * sh + row_shift, low + shift:high + shift]
                                for q in range(count):
                                    into[q] = taken[q]
                        else:
                            for y in range(y_low, y_high):
                                into = row[y * out_width + low:y * out_width + high]
                                taken = plane[y * sh + row_shift]
                                for q in range(count):
                                    into[q] = taken[(low + q) * sw + shift]
            if not weight_pass:
                products = out[n, g * outs:(g + 1) * outs]
                # (Og, L) = (Og, K) @ (K, L)
                blas.product_into(gemm, weight_rows[g], col, products)
                for o in range(outs):
                    value = bias[g * outs + o]
                    if value != 0:
                        out_row = products[o]
                        for p in range(pixels):
                            out_row[p] += value
                continue
            # (L, Og) <- (Og, H_out, W_out)
            for o in range(outs):
                grad_plane = grad_out[n, g * outs + o]
                for y in range(out_height):
                    for q in range(out_width):
                        grad_columns[y * out_width + q, o] = grad_plane[y, q]
            # (K, Og) = (K, L) @ (L, Og)
            blas.product_into(gemm, col, grad_columns, product)
            sums = partial[piece, g]
            for t in range(k):
                for o in range(outs):
                    sums[t, o] += product[t, o]


@jit()
def _grad_input_kernel(grad_out, weight_columns, grad_x, geometry, gemm, piece, first, end):
    """grad_x[n] for the images n in [first, end): per group, col (K, L) = weight_columns[g]
    (K, Og) @ grad_out[n, g] (Og, L), and each col[(c, i, j), (y, q)] added to the cell its
    window reads (padding cells dropped; terms in (i, j) order; the image's planes are
    overwritten). grad_out (N, C_out, H_out, W_out) (any strides), grad_x (N, C_in, H, W);
    gemm: the products' `blas.gemm_for`."""
    kh, kw, sh, sw, dh, dw, top, left, out_height, out_width = geometry
    groups, k, outs = weight_columns.shape
    height, width = grad_x.shape[2], grad_x.shape[3]
    pixels = out_height * out_width
    channels_per_group = grad_x.shape[1] // groups
    col = np.empty((k, pixels), grad_x.dtype)
    grad_rows = np.empty((outs, pixels), grad_x.dtype)
    for n in range(first, end):
        for g in range(groups):
            for o in range(outs):     # (a contiguous copy: grad_out may have any strides)
                grad_plane, into = grad_out[n, g * outs + o], grad_rows[o]
                for y in range(out_height):
                    for q in range(out_width):
                        into[y * out_width + q] = grad_plane[y, q]
            # (K, L) = (K, Og) @ (Og, L)
            blas.product_into(gemm, weight_columns[g], grad_rows, col)
            for c in range(channels_per_group):
                plane = grad_x[n, g * channels_per_group + c]
                for r in range(height):
                    cells = plane[r]
                    for s in range(width):
                        cells[s] = 0
                for i in range(kh):
                    for j in range(kw):
                        row = col[(c * kh + i) * kw + j]
                        shift = j * dw - left
                        # (output positions p in [low, high) read input p*stride + shift
                        # inside [0, size); low == high where none does)
                        row_shift = i * dh - top
                        y_low = 0 if row_shift >= 0 else \
                            min(out_height, (-row_shift + sh - 1) // sh)
                        y_high = y_low if height - 1 - row_shift < 0 else \
                            max(y_low, min(out_height, (height - 1 - row_shift) // sh + 1))
                        low = 0 if shift >= 0 else min(out_width, (-shift + sw - 1) // sw)
                        high = low if width - 1 - shift < 0 else \
                            max(low, min(out_width, (width - 1 - shift) // sw + 1))
                        for y in range(y_low, y_high):
                            r = y * sh + i * dh - top
                            taken = row[y * out_width + low:y * out_width + high]
                            if sw == 1:
                                into = plane[r, low + shift:high + shift]
                                for q in range(high - low):
                                    into[q] += taken[q]
                            else:
                                for q in range(high - low):
                                    plane[r, (low + q) * sw + shift] += taken[q]


# Stride 1: each window cell's plane is one contiguous run. With the image copied into a
# zero-padded buffer (the part the windows reach, rows row_width = W_out + (kw-1)*dw apart),
# cell (c, i, j) of output (y, q) reads padded[c, (y + i*dh)*row_width + q + j*dw]: for all
# outputs at once, the run padded[c, offset:offset + span], offset = i*dh*row_width + j*dw,
# span = (H_out - 1)*row_width + W_out. The columns past W_out of each row (the gap) are
# computed and dropped (forward) or multiply zeros (the gradients): row_width/W_out times
# the arithmetic (1.4x on LeNet's 10x10 outputs), for one copy per cell instead of one per
# cell and output row (LeNet's conv2, batch 256, one thread: forward 3.3 -> 2.8 ms, input
# gradient 3.9 -> 2.8, weight gradient 3.4 -> 2.5).


@jit()
def _stride1_kernel(x, weight_rows, bias, out, grad_out, partial, geometry, weight_pass,
                    gemm, piece, first, end):
    """`_unrolling_kernel` for stride 1, each cell's plane one contiguous run (see above):
    col (K, span), the product (Og, span) laid out rows row_width apart."""
    kh, kw, sh, sw, dh, dw, top, left, out_height, out_width = geometry
    groups, outs, k = weight_rows.shape
    channels_per_group = x.shape[1] // groups
    row_width = out_width + (kw - 1) * dw
    span = (out_height - 1) * row_width + out_width
    padded_height = out_height + (kh - 1) * dh
    padded = np.zeros((channels_per_group, padded_height * row_width), x.dtype)
    # the image's rows and columns inside the windows' reach
    inside_rows = min(x.shape[2], padded_height - top)
    inside_columns = min(x.shape[3], row_width - left)
    col = np.empty((k, span), x.dtype)
    band = np.empty((outs, span), x.dtype)
    grad_columns = np.zeros((span, outs), x.dtype)    # (gap rows stay zero)
    product = np.empty((k, outs), x.dtype)
    for n in range(first, end):
        for g in range(groups):
            # the image's cells into the padded buffer (its zero border stays as it is)
            for c in range(channels_per_group):
                plane = x[n, g * channels_per_group + c]
                for r in range(inside_rows):
                    at = (r + top) * row_width + left
                    into, taken = padded[c, at:at + inside_columns], plane[r]
                    for s in range(inside_columns):
                        into[s] = taken[s]
            for c in range(channels_per_group):
                source = padded[c]
                for i in range(kh):
                    for j in range(kw):
                        offset = i * dh * row_width + j * dw
                        into, taken = col[(c * kh + i) * kw + j], source[offset:offset + span]
                        for p in range(span):
                            into[p] = taken[p]
            if not weight_pass:
                # (Og, span) = (Og, K) @ (K, span), then its rows' first W_out columns
                blas.product_into(gemm, weight_rows[g], col, band)
                for o in range(outs):
                    value = bias[g * outs + o]
                    plane = out[n, g * outs + o]
                    for y in range(out_height):
                        into = plane[y * out_width:(y + 1) * out_width]
                        taken = band[o, y * row_width:y * row_width + out_width]
                        for q in range(out_width):
                            into[q] = taken[q] + value
                continue
            # (span, Og) <- (Og, H_out, W_out), gap rows zero
            for o in range(outs):
                grad_plane = grad_out[n, g * outs + o]
                for y in range(out_height):
                    for q in range(out_width):
                        grad_columns[y * row_width + q, o] = grad_plane[y, q]
            # (K, Og) = (K, span) @ (span, Og)
            blas.product_into(gemm, col, grad_columns, product)
            sums = partial[piece, g]
            for t in range(k):
                for o in range(outs):
                    sums[t, o] += product[t, o]


@jit()
def _stride1_grad_input_kernel(grad_out, weight_columns, grad_x, geometry, gemm, piece,
                               first, end):
    """`_grad_input_kernel` for stride 1: col (K, span) = weight_columns[g] @ the output
    gradient laid out rows row_width apart (gap columns zero), each cell's run added into a
    zero-padded buffer at its offset, whose inside is the image's gradient."""
    kh, kw, sh, sw, dh, dw, top, left, out_height, out_width = geometry
    groups, k, outs = weight_columns.shape
    height, width = grad_x.shape[2], grad_x.shape[3]
    channels_per_group = grad_x.shape[1] // groups
    row_width = out_width + (kw - 1) * dw
    span = (out_height - 1) * row_width + out_width
    padded_height = out_height + (kh - 1) * dh
    padded = np.empty((channels_per_group, padded_height * row_width), grad_x.dtype)
    col = np.empty((k, span), grad_x.dtype)
    grad_rows = np.zeros((outs, span), grad_x.dtype)     # (gap columns stay zero)
    for n in range(first, end):
        for g in range(groups):
            for o in range(outs):     # (a copy: grad_out may have any strides)
                grad_plane, into = grad_out[n, g * outs + o], grad_rows[o]
                for y in range(out_height):
                    for q in range(out_width):
                        into[y * row_width + q] = grad_plane[y, q]
            # (K, span) = (K, Og) @ (Og, span)
            blas.product_into(gemm, weight_columns[g], grad_rows, col)
            for c in range(channels_per_group):
                target = padded[c]
                for p in range(target.size):
                    target[p] = 0
                for i in range(kh):
                    for j in range(kw):
                        offset = i * dh * row_width + j * dw
                        into, taken = target[offset:offset + span], col[(c * kh + i) * kw + j]
                        for p in range(span):
                            into[p] += taken[p]
                # the image's cells: inside the buffer, or (past the windows' reach) zero
                plane = grad_x[n, g * channels_per_group + c]
                for r in range(height):
                    cells = plane[r]
                    inside = r + top < padded_height
                    for s in range(width):
                        if inside and s + left < row_width:
                            cells[s] = target[(r + top) * row_width + s + left]
                        else:
                            cells[s] = 0


def _geometry(weight_shape, window: Window2d) -> tuple:
    """The window's numbers the kernels take: (kh, kw, sh, sw, dh, dw, top, left, H_out,
    W_out)."""
    (top, _), (left, _) = window.padding
    return (*weight_shape[2:], *window.stride, *window.dilation, top, left,
            window.out_height, window.out_width)


def forward(x, weight, bias, window: Window2d, groups: int,
            budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """conv2d forward: out[n, g] = weight[g] @ col(n, g), image by image."""
    n, c_out = x.shape[0], weight.shape[0]
    k, pixels, outs = _sizes(weight.shape, window, groups)
    weight_rows = np.ascontiguousarray(weight.reshape(groups, outs, k), dtype=x.dtype)
    bias = np.zeros(c_out, x.dtype) if bias is None else \
        np.ascontiguousarray(bias, dtype=x.dtype)
    out = np.empty((n, c_out, window.out_height, window.out_width), x.dtype)
    threads = _threads(x.shape, weight.shape, window, groups, x.itemsize, budget)
    out_rows = out.reshape(n, c_out, pixels)
    placeholder = np.zeros((1, 1, 1, 1), np.float64)
    kernel = _stride1_kernel if window.stride == (1, 1) else _unrolling_kernel
    _in_parallel(kernel, n, threads, x, weight_rows, bias, out_rows, out,
                 placeholder, _geometry(weight.shape, window), False, blas.gemm_for(x.dtype))
    return out


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d weight: its transpose (K, Og) summed over the images of col @ grad^T, in
    float64, one partial sum per thread."""
    n = x.shape[0]
    k, pixels, outs = _sizes(weight_shape, window, groups)
    threads = _threads(x.shape, weight_shape, window, groups, x.itemsize, budget)
    partial = np.zeros((threads, groups, k, outs), np.float64)
    # (the weight's shape, (G, Og, K), is all the kernel reads of weight_rows here; out is
    # a placeholder)
    weight_shaped = np.empty((groups, outs, k), x.dtype)
    kernel = _stride1_kernel if window.stride == (1, 1) else _unrolling_kernel
    _in_parallel(kernel, n, threads, x, weight_shaped, np.empty(0, x.dtype),
                 np.empty((1, 1, 1), x.dtype), grad_out, partial,
                 _geometry(weight_shape, window), True, blas.weight_gradient_gemm(x.dtype))
    # (G, Og, K) <- (G, K, Og)
    return partial.sum(axis=0).transpose(0, 2, 1).astype(x.dtype).reshape(weight_shape)


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
               budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d x: col = weight[g]^T @ grad_out[n, g] per image and group, its windows
    added back into the image's cells."""
    n = x_shape[0]
    k, pixels, outs = _sizes(weight.shape, window, groups)
    dtype = grad_out.dtype
    weight_columns = np.ascontiguousarray(
        weight.reshape(groups, outs, k).transpose(0, 2, 1), dtype=dtype)    # (G, K, Og)
    grad_x = np.empty(x_shape, dtype)
    threads = _threads(x_shape, weight.shape, window, groups, np.dtype(dtype).itemsize,
                       budget)
    kernel = _stride1_grad_input_kernel if window.stride == (1, 1) else _grad_input_kernel
    _in_parallel(kernel, n, threads,
                 grad_out, weight_columns, grad_x,
                 _geometry(weight.shape, window), blas.gemm_for(dtype))
    return grad_x


# Where unrolled wins: the planner asks it after the other algorithms' rules (plan._rule).
# Every window feeds at least this many output channels (the rows of the GEMM) ...
RULE_MIN_OUTPUTS = 12
# ... and is at least this long (the GEMM's inner dimension) ...
RULE_MIN_WINDOW = 64
# ... and at most this many multiply-adds per output position and group: layers with few
# channels (wider ones are Winograd's, the FFT's and im2col's, measured there) ...
RULE_MAX_TAPS = 16384
# ... on maps whose one image's windows (K*L numbers) stay in a core's cache: 512 KiB of
# float32 (a ResNet stem, 3 -> 64 7x7 on 224x224, unrolls 7 MiB per image: im2col's).
RULE_MAX_WINDOWS = 1 << 17


def rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """Few channels, each window (K = Cg*kh*kw numbers) feeding Og >= 12 output channels,
    K >= 64, K*Og <= 16384, on maps of L outputs with K*L <= 2**17; every pass. There
    unrolling the windows costs K numbers per output position against K*Og multiply-adds
    that BLAS then does at full speed, and each image's windows stay in cache. Measured, one
    core, batch 64, against the compiled direct engine (direct.py, one pass per output
    channel and tap over short rows):

    * 6 -> 16 5x5 on 14x14 (LeNet's second layer, K 150, Og 16): 1.3x (forward) to 1.7x
      (input gradient); at batch 256 also 1.1x-2.5x NumPy's im2col + GEMM, which writes the
      whole batch's windows (15 MB) to memory;
    * 16 -> 16 3x3 on 16x16 (K 144): 1.1x-1.8x; 16 -> 32 3x3 on 8x8: 2.2x-3.4x;
      16 -> 16 5x5 on 12x12 (K*Og 6400, past direct's reach): 1.2x-3.4x, 3x im2col's;
    * it loses to direct with fewer output channels (1 -> 6 5x5: 0.8x-0.9x; 6 -> 6 5x5:
      0.6x-0.8x; 8 -> 8 3x3: 0.7x-1.1x); with short windows (K 25-27, Og 16) it wins
      1.1x-1.4x but loses the weight gradient at Og 64 (3 -> 64 3x3: 0.7x), and is left out.

    The rule counts channels and window length, not time: on a machine with a faster GEMM
    (AVX-512 with two FMA units, where PyTorch's oneDNN is 2-3x faster than here) unrolled
    gains more than the direct engine, whose passes over short rows are load-bound.
    """
    return outranks_direct(weight_shape, window, groups)


def outranks_direct(weight_shape, window: Window2d, groups: int) -> bool:
    """The rule's condition (it does not depend on the pass): where it holds, the direct
    engine's rule declines (`direct.direct_rule`)."""
    c_out, channels_per_group, kh, kw = weight_shape
    k, outs = channels_per_group * kh * kw, c_out // groups
    return (outs >= RULE_MIN_OUTPUTS and k >= RULE_MIN_WINDOW and k * outs <= RULE_MAX_TAPS
            and k * window.out_height * window.out_width <= RULE_MAX_WINDOWS)
