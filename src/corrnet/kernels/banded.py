"""im2col + GEMM in cache-sized bands of images, the unrolling compiled ("banded").

For layers with few channels and small maps (LeNet's second layer: 6 -> 16, 5x5, 14x14)
the arithmetic is a few dozen million multiply-adds and im2col's strided NumPy copies cost
more than the matrix products. Here the windows of a band of images are unrolled by a
compiled loop into one buffer about the size of a core's L2 cache (`BAND_BYTES`), the band's
matrix product runs on BLAS straight from that buffer, and the next band reuses it: the
unrolled windows are never written to main memory, and BLAS does the arithmetic at the
machine's speed (whatever its vector width: AVX2, AVX-512).

Notation: x (N, C_in, H, W), weight (C_out, Cg, kh, kw), G = groups, Cg = C_in/G and
Og = C_out/G channels per group, K = Cg*kh*kw the length of one window, L = H_out*W_out
the windows of one image, n the images of a band. The band's windows of group g are laid out
col (K, n*L): row (c, i, j), column (image, y, x). The passes, per band and group:

    forward       (Og, n*L) = (Og, K) @ (K, n*L)            then to (n, Og, H_out, W_out)
    grad_weight   (Og, K)  += (Og, n*L) @ (n*L, K)           grad_out laid out (Og, n*L)
    grad_input    (K, n*L)  = (K, Og) @ (Og, n*L)            then added back into x's cells

Every stride, padding, dilation and groups, float32 and float64; compiled only (numba): with
the compiled kernels off `supports` says False and the planner's im2col + GEMM (conv.py),
the same arithmetic with NumPy's unrolling, takes the pass. Each output is the sum of exactly
the products PyTorch's is (zero padding included), as im2col's.

Threads: BLAS runs each product on its own threads; the compiled unrolling (and its
reverse, the input gradient's folding) splits a band's images among corrnet's threads
(`threads.get_num_threads()`), each writing its own columns (or its own images).

Memory: a band holds its col, the product (or grad_out's band laid out as rows) and, for
grad_weight, a weight-sized product and float64 sum; bands shrink to fit `budget` (one image
at the least, `least_bytes`).
"""

from __future__ import annotations

import numpy as np

from .jit import jit, runs_compiled
from .threads import get_num_threads, helper_pool
from .windows import Window2d

DEFAULT_BUDGET = 256 * 2**20

# The unrolled windows of one band: about a core's L2 cache (1-2 MiB on current x86 cores),
# so that BLAS reads them from cache, right after they are written.
BAND_BYTES = 1 << 20
# Below this many numbers unrolled per band, the compiled unrolling runs on the calling
# thread alone (handing a piece to another thread costs more).
PARALLEL_UNROLL = 1 << 16


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
             pass_name: str) -> bool:
    """Every convolution of float32/float64, compiled kernels on (numba)."""
    return len(x_shape) == 4 and runs_compiled(dtype)


def _sizes(x_shape, weight_shape, window: Window2d, groups: int) -> tuple[int, int, int]:
    """(K, L, Og): window length, windows per image, output channels per group."""
    c_out, channels_per_group, kh, kw = weight_shape
    return channels_per_group * kh * kw, window.out_height * window.out_width, c_out // groups


def _image_bytes(x_shape, weight_shape, window: Window2d, groups: int, itemsize: int) -> int:
    """Temporaries per image of a band: its windows (K*L), its product or output-gradient
    rows (Og*L), and one group's input (or input gradient) laid out batch-last (Cg*H*W)."""
    k, pixels, outs = _sizes(x_shape, weight_shape, window, groups)
    plane = window.height * window.width
    return ((k + outs) * pixels + x_shape[1] // groups * plane) * itemsize


def _fixed_bytes(weight_shape, itemsize: int) -> int:
    """Weight-sized temporaries: a transposed copy, grad_weight's product and float64 sum."""
    return int(np.prod(weight_shape)) * (2 * itemsize + 8)


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name: str) -> int:
    """The temporaries of a band of one image."""
    itemsize = np.dtype(dtype).itemsize
    return (_image_bytes(x_shape, weight_shape, window, groups, itemsize)
            + _fixed_bytes(weight_shape, itemsize))


def _band_images(x_shape, weight_shape, window: Window2d, groups: int, itemsize: int,
                 budget: int) -> int:
    """Images per band: the windows within `BAND_BYTES` and all temporaries within `budget`
    (one image at least)."""
    k, pixels, _ = _sizes(x_shape, weight_shape, window, groups)
    per_image = _image_bytes(x_shape, weight_shape, window, groups, itemsize)
    by_cache = BAND_BYTES // max(1, k * pixels * itemsize)
    by_budget = (budget - _fixed_bytes(weight_shape, itemsize)) // max(1, per_image)
    return int(max(1, min(x_shape[0], by_cache, by_budget)))


@jit()
def _unroll_kernel(source, col, kh, kw, sh, sw, dh, dw, top, left, out_height, out_width,
                   begin, end):
    """col[(c, i, j), (y, q, b)] = padded[b, c, y*sh + i*dh, q*sw + j*dw] (zero in the
    padding), for the rows (c, i) c*kh + i in [begin, end); source is the band laid out
    batch-last, (Cg, H, W*n), col (Cg*kh*kw, L*n). With stride 1 each output row of a window
    cell is one contiguous run of (columns in the image) * n numbers."""
    height = source.shape[1]
    n = col.shape[1] // (out_height * out_width)
    width = source.shape[2] // n
    span = out_width * n
    for row_index in range(begin, end):
        c, i = row_index // kh, row_index % kh
        for j in range(kw):
            row = col[row_index * kw + j]
            shift = j * dw - left
            # output columns low ... high-1 read the image; the others the padding
            low = 0 if shift >= 0 else min(out_width, (-shift + sw - 1) // sw)
            high = low
            if width - 1 - shift >= 0:
                high = max(low, min(out_width, (width - 1 - shift) // sw + 1))
            for y in range(out_height):
                r = y * sh + i * dh - top
                at = y * span
                # (slices indexed from 0: numba then drops the negative-index checks and
                # the loops vectorize)
                out_row = row[at:at + span]
                if r < 0 or r >= height:
                    for e in range(span):
                        out_row[e] = 0
                    continue
                for e in range(low * n):
                    out_row[e] = 0
                if sw == 1:
                    run = (high - low) * n
                    into = out_row[low * n:low * n + run]
                    taken = source[c, r, (low + shift) * n:(low + shift) * n + run]
                    for e in range(run):
                        into[e] = taken[e]
                else:
                    for q in range(low, high):
                        into = out_row[q * n:(q + 1) * n]
                        taken = source[c, r, (q * sw + shift) * n:(q * sw + shift + 1) * n]
                        for b in range(n):
                            into[b] = taken[b]
                tail = out_row[high * n:span]
                for e in range(tail.size):
                    tail[e] = 0


@jit()
def _fold_kernel(col, grad_band, kh, kw, sh, sw, dh, dw, top, left, out_height, out_width,
                 begin, end):
    """The reverse of `_unroll_kernel`: grad_band[c, r, s*n + b] += every col[(c, i, j),
    (y, q, b)] whose window cell lies there (padding cells dropped), for the channels c in
    [begin, end); terms added in (i, j) order. grad_band (Cg, H, W*n), batch-last."""
    height = grad_band.shape[1]
    n = col.shape[1] // (out_height * out_width)
    width = grad_band.shape[2] // n
    span = out_width * n
    for c in range(begin, end):
        for i in range(kh):
            for j in range(kw):
                row = col[(c * kh + i) * kw + j]
                shift = j * dw - left
                low = 0 if shift >= 0 else min(out_width, (-shift + sw - 1) // sw)
                high = low
                if width - 1 - shift >= 0:
                    high = max(low, min(out_width, (width - 1 - shift) // sw + 1))
                for y in range(out_height):
                    r = y * sh + i * dh - top
                    if r < 0 or r >= height:
                        continue
                    at = y * span
                    if sw == 1:     # (slices indexed from 0, as in _unroll_kernel)
                        run = (high - low) * n
                        taken = row[at + low * n:at + low * n + run]
                        into = grad_band[c, r, (low + shift) * n:(low + shift) * n + run]
                        for e in range(run):
                            into[e] += taken[e]
                    else:
                        for q in range(low, high):
                            taken = row[at + q * n:at + (q + 1) * n]
                            into = grad_band[c, r, (q * sw + shift) * n:(q * sw + shift + 1) * n]
                            for b in range(n):
                                into[b] += taken[b]


class _Geometry:
    """The window arguments the compiled kernels take, in their order."""

    def __init__(self, weight_shape, window: Window2d):
        (top, _), (left, _) = window.padding
        self.arguments = (*weight_shape[2:], *window.stride, *window.dilation, top, left,
                          window.out_height, window.out_width)


def _split(kernel, count: int, numbers: int, *arguments) -> None:
    """kernel(*arguments, begin, end) for pieces [begin, end) of `count` rows or channels,
    on corrnet's threads where a call moves at least `PARALLEL_UNROLL` numbers (the kernels
    release the GIL; each piece writes its own rows of col or channels of the band)."""
    pieces = min(count, get_num_threads()) if numbers >= PARALLEL_UNROLL else 1
    if pieces < 2:
        kernel(*arguments, 0, count)
        return
    bounds = [count * k // pieces for k in range(pieces + 1)]
    futures = [helper_pool().submit(kernel, *arguments, bounds[k], bounds[k + 1])
               for k in range(1, pieces)]
    kernel(*arguments, bounds[0], bounds[1])
    for future in futures:
        future.result()


def _unroll(x, col, start: int, count: int, first_channel: int, channels: int,
            kh: int, geometry) -> None:
    """The windows of images start ... start+count-1, channels first_channel ... +channels-1,
    into col (K, L*n): the band laid out batch-last, then unrolled."""
    # (Cg, H, W, n) <- (n, Cg, H, W)
    source = np.ascontiguousarray(
        x[start:start + count, first_channel:first_channel + channels].transpose(1, 2, 3, 0))
    source = source.reshape(channels, source.shape[1], -1)
    _split(_unroll_kernel, channels * kh, col.size, source, col, *geometry.arguments)


def _fold(col, grad_x, start: int, count: int, first_channel: int, channels: int,
          geometry) -> None:
    """col's windows added back into grad_x's images start ... start+count-1, channels
    first_channel ... + channels - 1 (which hold zeros before)."""
    height, width = grad_x.shape[2:]
    band = np.zeros((channels, height, width * count), grad_x.dtype)   # (Cg, H, W*n)
    _split(_fold_kernel, channels, col.size, col, band, *geometry.arguments)
    # (n, Cg, H, W) <- (Cg, H, W, n)
    grad_x[start:start + count, first_channel:first_channel + channels] = \
        band.reshape(channels, height, width, count).transpose(3, 0, 1, 2)


def _bands(n: int, step: int):
    """(first image, count) of each band."""
    return [(start, min(step, n - start)) for start in range(0, n, step)]


def forward(x, weight, bias, window: Window2d, groups: int,
            budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """conv2d forward, band by band: out = weight @ col per group."""
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    k, pixels, outs = _sizes(x.shape, weight.shape, window, groups)
    ins = c_in // groups
    weight_rows = np.ascontiguousarray(weight.reshape(groups, outs, k), dtype=x.dtype)
    geometry = _Geometry(weight.shape, window)
    kh = weight.shape[2]
    out = np.empty((n, c_out, window.out_height, window.out_width), x.dtype)
    out_rows = out.reshape(n, groups, outs, pixels)
    step = _band_images(x.shape, weight.shape, window, groups, x.itemsize, budget)
    col_buffer = np.empty(k * step * pixels, x.dtype)
    product_buffer = np.empty(outs * step * pixels, x.dtype)
    for start, count in _bands(n, step):
        col = col_buffer[:k * count * pixels].reshape(k, count * pixels)
        product = product_buffer[:outs * count * pixels].reshape(outs, count * pixels)
        for g in range(groups):
            _unroll(x, col, start, count, g * ins, ins, kh, geometry)
            # (Og, L*n) = (Og, K) @ (K, L*n)
            np.matmul(weight_rows[g], col, out=product)
            # (n, Og, L) <- (Og, L, n)
            images = product.reshape(outs, pixels, count).transpose(2, 0, 1)
            target = out_rows[start:start + count, g]
            if bias is None:
                target[...] = images
            else:
                np.add(images, bias[g * outs:(g + 1) * outs, None].astype(x.dtype, copy=False),
                       out=target)
    return out


def _grad_rows(grad_out, buffer, start: int, count: int, g: int, groups: int):
    """grad_out of a band's images, one group's channels, laid out (Og, n*L) in `buffer`."""
    n, c_out = grad_out.shape[:2]
    outs, pixels = c_out // groups, grad_out.shape[2] * grad_out.shape[3]
    rows = buffer[:outs * count * pixels].reshape(outs, pixels, count)
    # (Og, L, n) <- (n, Og, L)
    rows[...] = grad_out[start:start + count, g * outs:(g + 1) * outs].reshape(
        count, outs, pixels).transpose(1, 2, 0)
    return rows.reshape(outs, pixels * count)


def _grad_columns(grad_out, buffer, start: int, count: int, g: int, groups: int):
    """The same, laid out (L*n, Og): the weight gradient's product reads it untransposed
    (BLAS ran (Og, L*n) @ (L*n, K), col transposed, at 0.55x the speed of this
    (K, L*n) @ (L*n, Og) on LeNet's second layer)."""
    n, c_out = grad_out.shape[:2]
    outs, pixels = c_out // groups, grad_out.shape[2] * grad_out.shape[3]
    columns = buffer[:outs * count * pixels].reshape(pixels, count, outs)
    # (L, n, Og) <- (n, Og, L)
    columns[...] = grad_out[start:start + count, g * outs:(g + 1) * outs].reshape(
        count, outs, pixels).transpose(2, 0, 1)
    return columns.reshape(pixels * count, outs)


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d weight: its transpose (K, Og) += col @ grad columns per band and group,
    summed in float64 across bands."""
    n = x.shape[0]
    k, pixels, outs = _sizes(x.shape, weight_shape, window, groups)
    ins = x.shape[1] // groups
    geometry = _Geometry(weight_shape, window)
    kh = weight_shape[2]
    step = _band_images(x.shape, weight_shape, window, groups, x.itemsize, budget)
    col_buffer = np.empty(k * step * pixels, x.dtype)
    rows_buffer = np.empty(outs * step * pixels, x.dtype)
    product = np.empty((k, outs), x.dtype)
    total = np.zeros((groups, k, outs), np.float64)
    for start, count in _bands(n, step):
        col = col_buffer[:k * count * pixels].reshape(k, count * pixels)
        for g in range(groups):
            _unroll(x, col, start, count, g * ins, ins, kh, geometry)
            columns = _grad_columns(grad_out, rows_buffer, start, count, g, groups)
            # (K, Og) = (K, L*n) @ (L*n, Og)
            np.matmul(col, columns, out=product)
            total[g] += product
    # (G, Og, K) <- (G, K, Og)
    return total.transpose(0, 2, 1).astype(x.dtype).reshape(weight_shape)


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
               budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d x: col = weight^T @ grad rows per band and group, folded back into the
    cells its windows read."""
    n, c_in = x_shape[:2]
    k, pixels, outs = _sizes(x_shape, weight.shape, window, groups)
    ins = c_in // groups
    dtype = grad_out.dtype
    weight_columns = np.ascontiguousarray(
        weight.reshape(groups, outs, k).transpose(0, 2, 1), dtype=dtype)    # (G, K, Og)
    geometry = _Geometry(weight.shape, window)
    grad_x = np.zeros(x_shape, dtype)
    step = _band_images(x_shape, weight.shape, window, groups, np.dtype(dtype).itemsize,
                        budget)
    col_buffer = np.empty(k * step * pixels, dtype)
    rows_buffer = np.empty(outs * step * pixels, dtype)
    for start, count in _bands(n, step):
        col = col_buffer[:k * count * pixels].reshape(k, count * pixels)
        for g in range(groups):
            rows = _grad_rows(grad_out, rows_buffer, start, count, g, groups)
            # (K, n*L) = (K, Og) @ (Og, n*L)
            np.matmul(weight_columns[g], rows, out=col)
            _fold(col, grad_x, start, count, g * ins, ins, geometry)
    return grad_x


# Where banded wins: the planner asks it after the other algorithms' rules (plan._rule).
# Every window feeds at least this many output channels (the rows of the GEMM) ...
RULE_MIN_OUTPUTS = 12
# ... and is at least this long (the GEMM's inner dimension) ...
RULE_MIN_WINDOW = 64
# ... and at most this many multiply-adds per output position and group: layers with few
# channels (wider ones are Winograd's, the FFT's and im2col's, measured there).
RULE_MAX_TAPS = 16384


def rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """Few channels, each window (K = Cg*kh*kw numbers) feeding Og >= 12 output channels,
    K >= 64, K*Og <= 16384; every pass. There unrolling the windows costs K numbers per output
    position against K*Og multiply-adds that BLAS then does at full speed, and the band stays
    in cache. Measured, one core, against the compiled direct engine (`direct.py`, one pass
    per output channel and tap over short rows) and NumPy's im2col + GEMM (conv.py):

    * 6 -> 16 5x5 on 14x14 (LeNet's second layer, K 150, Og 16): forward 1.6x direct, input
      gradient 2.7x, weight gradient 1.3x; 1.1x to 3x im2col's (which writes the whole
      batch's windows to memory);
    * 16 -> 16 3x3 on 16x16 (K 144): 1.0x to 1.3x direct, 7x im2col; 16 -> 32 3x3 on 8x8:
      2.3x direct; 16 -> 16 5x5 on 12x12 (K*Og 6400, past direct's reach): 1.2x to 5x im2col;
    * it loses to direct with few output channels (1 -> 6 5x5: 0.5x, 6 -> 6 5x5: 0.6x to
      1.5x, 8 -> 8 3x3: 0.6x) and with short windows (1 -> 16 5x5, K 25: 0.7x to 0.9x;
      3 -> 16 3x3, K 27: 0.5x): there the copy is not paid back, and BLAS is slow on
      short inner dimensions.

    The rule counts channels and window length, not time: on a machine with a faster GEMM
    (AVX-512 with two FMA units, where PyTorch's oneDNN is 2-3x faster than here) banded
    gains more than the direct engine, whose passes over short rows are load-bound.
    """
    return outranks_direct(weight_shape, groups)


def outranks_direct(weight_shape, groups: int) -> bool:
    """The rule's shape condition (it does not depend on the pass or the maps): where it
    holds, the direct engine's rule declines (`direct.direct_rule`)."""
    c_out, channels_per_group, kh, kw = weight_shape
    k, outs = channels_per_group * kh * kw, c_out // groups
    return outs >= RULE_MIN_OUTPUTS and k >= RULE_MIN_WINDOW and k * outs <= RULE_MAX_TAPS
