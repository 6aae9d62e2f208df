"""Direct convolution: three algorithms that skip im2col where it costs more than it saves.

im2col copies every window of the input (C_in*kh*kw numbers per output position) and hands
the copy to one big matrix product. That pays where the product is large. It does not when

* the kernel is 1x1: every "window" is one pixel, and the input already *is* the unrolled
  matrix — `pointwise` multiplies it as it lies, (C_out, C_in) @ (C_in, H*W) per image;
* every output channel reads one input channel (depthwise, groups == C_in): the "GEMM" has a
  single row per group, and the copy costs as much as the arithmetic — `depthwise`;
* there are few channels (an image filter, 1 -> 1; LeNet's first layer, 1 -> 6): again a
  GEMM with a handful of rows and a copy kh*kw times the input — `direct`.

Each of the three is a namespace with the planner's interface (`supports`, `forward`,
`grad_input`, `grad_weight`; see conv.py for the shapes): ``direct.pointwise``,
``direct.depthwise`` and ``direct.small``, registered as "pointwise", "depthwise" and
"direct". The functions are also module-level, prefixed: `pointwise_forward`, ...

Notation: x (N, C_in, H, W), weight (C_out, C_in/G, kh, kw), G = groups, Cg = C_in/G input
and Og = C_out/G output channels per group, out (N, C_out, H_out, W_out).

**pointwise** is a matrix product per image and group (BLAS), the input subsampled first for
stride > 1 (one strided copy). N small products (one per image) measured faster than
transposing x to (C_in, N*H*W) for one big product, except on maps of fewer than
`JOIN_BELOW_PIXELS` outputs (ResNet-18's 3x3 maps), whose products have too few columns for
BLAS; so does the weight gradient,
sum_n grad_n @ x_n^T, except on small maps with many channels, where each image's (C_out,
C_in) product outweighs its pixels and one product over all the pixels wins. With numba the
images are split among corrnet's threads, each thread calling BLAS on one thread for its
own images (`_pointwise_products`, `_pointwise_weight_kernel`, the weight gradient's
products summed in float64), instead of each product split between BLAS's threads in turn:
the suite's (f) (N=32, 256 -> 64 on 28x28), in one process, interleaved: forward 7.0 ->
6.5 ms, input gradient 7.1 -> 5.6, weight gradient 7.8 -> 6.6.

**depthwise** and **direct** share one compiled (numba) engine, written around *taps*. A
convolution is a sum of shifted planes: for each kernel cell (i, j) of input channel c,

    out[n, o, y, x] += weight[o, c, i, j] * padded[n, c, y*sh + i*dh, x*sw + j*dw]

and each term is an elementwise multiply-add of a whole output band with a shifted slice of
the input. Strides are taken out by splitting the padded input into its sh*sw *phases*
(phase (a, b) holds padded[r*sh + a, q*sw + b]); in phase coordinates every tap is a
stride-1 shift, and a band of output rows laid out row_width apart (row_width >= W_out, the
gap columns ignored) turns into one contiguous 1-D loop per tap, which LLVM vectorizes:

    acc[p] += w0*s0[p] + w1*s1[p] + ... + w7*s7[p]     (up to eight taps per pass)

Each parallel task takes one image, one group and one band of output rows: it copies the
band's input (its phases, zero padding included) into a small buffer that stays in cache —
or, for a stride-1 unpadded input (corr2d's 'valid'), reads the input in place — and runs
every output channel of the group over it. A big single image is cut into many bands, so
both cores work on it. The kernels are compiled serial (`jit()`, GIL released). The forward
kernel runs once on each thread (`threads.run_shared`), taking a few tasks at a time from a
shared counter until none is left; the weight gradient's kernel is called on fixed pieces of
the task list, which the threads (`threads.get_num_threads()` of them) take in turn. (numba's
own parallel loops, prange, measured slower here: the forward kernel compiled with
parallel=True ran 1.7x slower even on one thread.) The same engine does the other two passes:

* grad_weight: weight[o, c, i, j] gets the dot product of grad_out[n, o] with the tap's
  shifted slice (laid out like the forward pass, gap columns zero), for two output
  channels and four taps at a time (each loaded number serves two or four products), a
  channel left over eight taps at a time; each piece of the task list sums into its own row
  of partial sums, added at the end (no races);
* grad_input: with stride 1 it is a correlation of the zero-padded output gradient with the
  kernel turned by 180 degrees (the taps' offsets mirrored, input and output channels
  swapped); with stride s it splits into s_h*s_w such stride-1 correlations, one per phase
  of the input gradient, each with the taps that land in that phase.

Without numba, depthwise falls back to NumPy: kh*kw whole-array multiply-adds over shifted
views (and, for the gradients, adds into them). `direct` has no NumPy path: its `supports`
says False when the compiled kernels are off, and the planner uses im2col instead.

Where each beats im2col + GEMM (measured on a 2-core AVX2 machine) is written down, for the
planner, as `pointwise_rule`, `depthwise_rule` and `direct_rule`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import blas, simd, unrolled
from .jit import jit, runs_compiled
from .threads import (
    active,
    get_num_threads,
    helper_pool,
    numba_blas_on_one_thread,
    run_pieces,
    run_shared,
)
from .windows import Window2d, pad, shifted_views, unpad

DEFAULT_BUDGET = 256 * 2**20

# A band of output rows holds about this many numbers (its accumulator and its slice of the
# input stay in the 512 KiB L2 cache of a core).
BAND_ELEMENTS = 16384
# Below this many multiply-adds (about 0.3 ms on one core) a compiled kernel runs on the
# calling thread alone: handing work to others costs more than it saves, and on a busy machine
# a helper may wait milliseconds for a core.
PARALLEL_WORK = 4 << 20
# The forward engine (`_shifted_sum`) hands its bands out from a shared counter, one kernel
# call per thread (no Python call per piece): it gains from two threads from here on. Measured
# on an Intel Xeon (2 cores), a single-channel 3x3 filter, in loops of its own calls: 1.3M
# multiply-adds (384x384) level, 1.6M (256x256, 5x5) level, 2.3M (512x512) 1.3x faster than
# one thread; 0.3M (192x192) 1.8x slower.
SHARED_PARALLEL_WORK = 3 << 19
# A 3x3 kernel's sums (one pass over the band: `_shifted_sum_kernel`) go straight into the
# output rows where those hold at least this many outputs, instead of into the band's
# accumulator and then copied. Each row's loop then has its own set-up (nine slices, LLVM's
# checks that the output does not overlap them, the part of a vector left over), which pays
# on long rows only. Measured, interleaved, the same numbers out (AMD EPYC, AVX2):
# single-channel 3x3 filters of 512x512 images 1.11x faster on one thread (0.82-1.27x on two:
# noisy), of 2048x2048 1.73x on one thread and 1.38-1.55x on two, of 4096x4096 1.31x on two;
# depthwise 3x3 layers on one thread, on 250-wide maps 1.05-1.12x, 120-wide level, 24- to
# 56-wide 0.61-0.87x (the suite's depthwise row (h), 56 wide, 0.94-0.98x).
ROW_WRITE_MIN_WIDTH = 256
# The weight gradient's dot products take this many output channels together (with four
# taps: 8 sums from 6 vector loads; with three, LLVM's 12 sums spill AVX2's 16 registers)
OUT_BLOCK = 2
# `direct` accepts at most this many multiply-adds per output position and group
# (Cg*kh*kw * Og): beyond it im2col + GEMM is many times faster and not worth timing.
DIRECT_MAX_TAPS = 4096
# The tasks of a compiled kernel are handed out in this many pieces per thread, so that a
# thread slowed down (by another process, say) holds up the others less.
PIECES_PER_THREAD = 4
# The forward engine's threads take its tasks (bands) from a shared counter in about this
# many takes per thread: a few tasks a take, so that each thread reads on through neighbouring
# planes (one task a take: the depthwise layer (h) 2-4% slower, 2 cores), and enough takes for a
# thread slowed down to take fewer.
TAKES_PER_THREAD = 16


class Algorithm(NamedTuple):
    """One algorithm of the planner: the four functions of the conv interface."""

    supports: Callable
    forward: Callable
    grad_input: Callable
    grad_weight: Callable
    least_bytes: Callable   # the temporaries of its smallest chunk (see plan.candidates)


def _numeric(dtype) -> bool:
    return np.dtype(dtype).kind in "fiu"


def _batch_step(per_image_bytes: int, budget: int) -> int:
    """Images per chunk so that a chunk's temporary buffers stay within `budget` (one image
    at least)."""
    return max(1, int(budget // max(per_image_bytes, 1)))


# ---------------------------------------------------------------------------------------------
# pointwise: 1x1 kernels as a matrix product, no unrolling
# ---------------------------------------------------------------------------------------------


def pointwise_supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                       pass_name: str) -> bool:
    """1x1 kernels without padding, any stride, groups and numeric dtype, every pass."""
    return (len(x_shape) == 4 and tuple(weight_shape[2:]) == (1, 1)
            and window.padding == ((0, 0), (0, 0)) and _numeric(dtype))


def _visits_every_pixel(window: Window2d) -> bool:
    """Whether the 1x1 windows visit every pixel of the input: stride 1, and no rows or
    columns past the last window (a transposed convolution's output_padding adds such)."""
    return (tuple(window.stride) == (1, 1) and window.out_height == window.height
            and window.out_width == window.width)


def _visited_pixels(x: np.ndarray, window: Window2d) -> np.ndarray:
    """The pixels the 1x1 windows visit, (N, C, H_out, W_out): x itself, or every stride-th
    pixel up to the last window (rows and columns past it are left out)."""
    if _visits_every_pixel(window):
        return x
    (sh, sw), oh, ow = window.stride, window.out_height, window.out_width
    return x[:, :, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw]


def _pointwise_image_bytes(pass_name, x_shape, weight_shape, window: Window2d, groups: int,
                           itemsize: int) -> tuple[int, int]:
    """(bytes per image, fixed bytes) of a pointwise pass's temporaries: per image a copy of
    its visited pixels (strided, or from a non-contiguous input) and of its output gradient
    (from a non-contiguous one, e.g. the broadcast gradient of a sum); the strided input
    gradient's products; the weight gradient's per-image products (or channel-major copies).
    Fixed: weight-sized products and sums."""
    c_in, c_out = x_shape[1], weight_shape[0]
    outs, ins = c_out // groups, c_in // groups
    pixels = window.out_height * window.out_width
    fixed = 2 * c_out * ins * itemsize
    # the forward's and the input gradient's one product over all the images' pixels:
    # channel-major copies of its operand and of its result
    joined = c_in + c_out if pixels < JOIN_BELOW_PIXELS else 0
    if pass_name == "forward":
        return (c_in + joined) * pixels * itemsize, fixed
    if pass_name == "grad_input":
        strided = not _visits_every_pixel(window)
        return (c_out + (c_in if strided else 0) + joined) * pixels * itemsize, fixed
    if _per_image_products(groups, outs, ins, pixels):
        return (groups * outs * ins + (c_in + c_out) * pixels) * itemsize, fixed
    return 2 * (c_in + c_out) * pixels * itemsize, fixed


def _per_image_products(groups, outs, ins, pixels) -> bool:
    """Whether the weight gradient takes one product per image (see pointwise_grad_weight)."""
    return groups * outs * ins < pixels * (outs + ins)


# The forward pass and the input gradient join the images' pixels into one product per group
# where an image has fewer pixels than this (`_pointwise_products`): a product per image
# then has fewer columns than BLAS's blocks of them. Measured (N=64, Intel Xeon, 2 threads):
# joined 1.6-1.9x faster on 3x3 maps (256 -> 512 onto 3x3, 512 -> 512 on 3x3), 0.8-0.9x on
# 6x6 maps (128 -> 256 onto 6x6, 256 -> 256), 0.6-0.8x on 12x12 and 28x28 maps.
JOIN_BELOW_PIXELS = 16


def pointwise_least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                          pass_name: str) -> int:
    per_image, fixed = _pointwise_image_bytes(pass_name, x_shape, weight_shape, window,
                                              groups, np.dtype(dtype).itemsize)
    return per_image + fixed


def _pointwise_step(pass_name, x_shape, weight_shape, window, groups, itemsize, budget):
    per_image, fixed = _pointwise_image_bytes(pass_name, x_shape, weight_shape, window,
                                              groups, itemsize)
    return _batch_step(per_image, budget - fixed)


def pointwise_forward(x, weight, bias, window: Window2d, groups: int,
                      budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """out_n = weight @ x_n per image and group: (Og, Cg) @ (Cg, H_out*W_out)."""
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    pixels = window.out_height * window.out_width
    weight_rows = np.ascontiguousarray(weight.reshape(groups, c_out // groups, c_in // groups))
    visited = _visited_pixels(x, window)
    out = np.empty((n, c_out, window.out_height, window.out_width), dtype=x.dtype)
    step = _pointwise_step("forward", x.shape, weight.shape, window, groups, x.itemsize,
                           budget)
    compiled = runs_compiled(x.dtype) and weight.dtype == x.dtype
    bias_rows = np.zeros((groups, 0), x.dtype) if bias is None else np.ascontiguousarray(
        bias, x.dtype).reshape(groups, c_out // groups)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        chunk = np.ascontiguousarray(visited[images])
        count = chunk.shape[0]
        # (n, G, Og, L) = (G, Og, Cg) @ (n, G, Cg, L)
        _pointwise_products(weight_rows, chunk.reshape(count, groups, c_in // groups, pixels),
                            bias_rows, out[images].reshape(count, groups, c_out // groups,
                                                           pixels), compiled)
        del chunk       # (before the next chunk's copy is made)
    return out


def pointwise_grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
                         budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """grad_x_n = weight^T @ grad_n per image and group; with a stride (or rows past the last
    window), into the visited pixels, the others zero."""
    n, c_in = x_shape[:2]
    c_out = weight.shape[0]
    pixels = window.out_height * window.out_width
    weight_columns = np.ascontiguousarray(
        weight.reshape(groups, c_out // groups, c_in // groups).transpose(0, 2, 1))
    compiled = runs_compiled(grad_out.dtype) and weight.dtype == grad_out.dtype
    no_bias = np.zeros((groups, 0), grad_out.dtype)
    strided = not _visits_every_pixel(window)   # then the pixels not visited get zero
    grad_x = (np.zeros if strided else np.empty)(x_shape, dtype=grad_out.dtype)
    step = _pointwise_step("grad_input", x_shape, weight.shape, window, groups,
                           grad_out.itemsize, budget)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        count = images.stop - start
        # (a copy where grad_out is not contiguous)
        grad_rows = np.ascontiguousarray(grad_out[images]).reshape(
            count, groups, c_out // groups, pixels)
        if strided:
            # (n, G, Cg, L) = (G, Cg, Og) @ (n, G, Og, L), then into the visited pixels
            grad_pixels = np.empty((count, groups, c_in // groups, pixels), grad_out.dtype)
            _pointwise_products(weight_columns, grad_rows, no_bias, grad_pixels, compiled)
            _visited_pixels(grad_x[images], window)[...] = grad_pixels.reshape(
                count, c_in, window.out_height, window.out_width)
            del grad_pixels
        else:
            _pointwise_products(weight_columns, grad_rows, no_bias, grad_x[images].reshape(
                count, groups, c_in // groups, pixels), compiled)
        del grad_rows
    return grad_x


def pointwise_grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                          budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """sum_n grad_n @ x_n^T: one product per image, summed; or, where an image's (Og, Cg)
    product is larger than its pixels (small feature maps, many channels), one product over
    the pixels of all the images, both arrays first turned channel-major."""
    n, c_in = x.shape[:2]
    c_out = weight_shape[0]
    outs, ins = c_out // groups, c_in // groups
    pixels = window.out_height * window.out_width
    visited = _visited_pixels(x, window)
    per_image_products = _per_image_products(groups, outs, ins, pixels)
    compiled = (per_image_products and runs_compiled(x.dtype)
                and grad_out.dtype == x.dtype)
    # (the compiled products are summed in float64, rounded once at the end)
    grad_weight = np.zeros((groups, outs, ins), dtype=np.float64 if compiled else x.dtype)
    step = _pointwise_step("grad_weight", x.shape, weight_shape, window, groups, x.itemsize,
                           budget)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        count = images.stop - start
        pixel_rows = np.ascontiguousarray(visited[images]).reshape(count, groups, ins, pixels)
        grad_rows = np.ascontiguousarray(grad_out[images]).reshape(count, groups, outs, pixels)
        if compiled:
            # (G, Og, Cg) = (Og, L) @ (L, Cg) per image and group, summed over the images in
            # float64, each thread its run of images
            with numba_blas_on_one_thread():
                for total in run_pieces(_pointwise_weight_kernel, count, grad_rows.size,
                                        grad_rows, pixel_rows,
                                        blas.weight_gradient_gemm(grad_rows.dtype)):
                    grad_weight += total
        elif per_image_products:
            # (n, G, Og, Cg) = (n, G, Og, L) @ (n, G, L, Cg), summed over the images
            grad_weight += np.matmul(grad_rows, pixel_rows.transpose(0, 1, 3, 2)).sum(axis=0)
        else:
            # (G, Og, Cg) = (G, Og, n*L) @ (G, n*L, Cg)
            grad_cols = np.ascontiguousarray(grad_rows.transpose(1, 2, 0, 3))
            pixel_cols = np.ascontiguousarray(pixel_rows.transpose(1, 2, 0, 3))
            grad_weight += np.matmul(grad_cols.reshape(groups, outs, -1),
                                     pixel_cols.reshape(groups, ins, -1).transpose(0, 2, 1))
            del grad_cols, pixel_cols
        del pixel_rows, grad_rows
    return grad_weight.reshape(weight_shape).astype(x.dtype, copy=False)


def _pointwise_products(matrices, images, bias_rows, out, compiled: bool) -> None:
    """out[n, g] = matrices[g] @ images[n, g] (+ bias_rows[g] down each row):
    (n, G, R, L) = (G, R, K) @ (n, G, K, L), out contiguous. Compiled
    (`_pointwise_images_kernel`): the images split among corrnet's threads, each product on
    its thread's own BLAS call, where NumPy's matmul hands every image's product to BLAS's
    two threads in turn (on a 2-core AMD EPYC: one thread's products of these shapes run at
    86-95 GFLOP/s, two BLAS threads on one product at 110-130).

    On maps of fewer than `JOIN_BELOW_PIXELS` pixels (D2L's ResNet-18: 256 -> 512 onto 3x3
    maps, L = 9) a product per image has too few columns for BLAS: there the images' pixels
    are joined into one product per group, channel-major, and its result turned back.
    Measured there (N=64, Intel Xeon, 2 threads): forward 3.1 -> 1.9 ms, input gradient 3.5
    -> 2.3 (PyTorch 0.9-1.1 and 2.7-3.0)."""
    count, groups, k, pixels = images.shape
    rows = matrices.shape[1]
    if pixels < JOIN_BELOW_PIXELS:
        # (G, R, n*L) = (G, R, K) @ (G, K, n*L)
        columns = np.ascontiguousarray(images.transpose(1, 2, 0, 3)).reshape(
            groups, k, count * pixels)
        product = np.matmul(matrices, columns)
        del columns
        if bias_rows.shape[1]:
            product += bias_rows[:, :, None]
        # (n, G, R, L) <- (G, R, n, L)
        out[...] = product.reshape(groups, rows, count, pixels).transpose(2, 0, 1, 3)
        return
    if compiled:
        with numba_blas_on_one_thread():
            run_pieces(_pointwise_images_kernel, images.shape[0], out.size, matrices, images,
                       bias_rows, out, blas.gemm_for(out.dtype))
        return
    np.matmul(matrices, images, out=out)
    if bias_rows.shape[1]:
        out += bias_rows[:, :, None]


@jit()
def _pointwise_images_kernel(matrices, images, bias_rows, out, gemm, first, end):
    """`_pointwise_products` for the images first ... end - 1 (gemm: `blas.gemm_for`)."""
    groups, rows = matrices.shape[0], matrices.shape[1]
    for n in range(first, end):
        for g in range(groups):
            # (R, L) = (R, K) @ (K, L)
            result = out[n, g]
            blas.product_into(gemm, matrices[g], images[n, g], result)
            if bias_rows.shape[1]:
                for r in range(rows):
                    row = result[r]
                    shift = bias_rows[g, r]
                    for p in range(row.shape[0]):
                        row[p] += shift
    return 0


@jit()
def _pointwise_weight_kernel(grad_rows, pixel_rows, gemm, first, end):
    """sum over the images first ... end - 1 of grad_rows[n, g] @ pixel_rows[n, g]^T:
    (G, Og, Cg) = (Og, L) @ (L, Cg) per group, summed in float64 (gemm: `blas.gemm_for`)."""
    groups, outs, ins = grad_rows.shape[1], grad_rows.shape[2], pixel_rows.shape[2]
    total = np.zeros((groups, outs, ins), np.float64)
    product = np.empty((outs, ins), grad_rows.dtype)
    for n in range(first, end):
        for g in range(groups):
            blas.product_into(gemm, grad_rows[n, g], pixel_rows[n, g].T, product)
            total[g] += product
    return total


pointwise = Algorithm(pointwise_supports, pointwise_forward, pointwise_grad_input,
                      pointwise_grad_weight, pointwise_least_bytes)


# ---------------------------------------------------------------------------------------------
# the compiled engine: sums of shifted planes, band by band
# ---------------------------------------------------------------------------------------------


@jit()
def _shifted_sum_kernel(source, source_dims, weight_rows, tap_offsets, bias, out,
                        stride_h, stride_w, top, left, groups,
                        band_rows, source_rows, row_width, copy_source, tasks, tasks_per_take,
                        next_task):
    """out[n, o, y, x] = bias[o] + sum_t weight_rows[o, t] * (tap t's plane)[y, x], for the
    tasks (image, group, band of output rows) 0 ... tasks - 1 that this thread takes,
    tasks_per_take at a time, from the counter next_task (`threads.run_shared`) until none is
    left.

    `source` is the flattened input (N, C, H, W) = `source_dims`; tap t of an output channel
    of group g reads, for output band row r and column x, position
    ``start + tap_offsets[t] + r*row_width + x`` of the band buffer (see `_layout`).
    """
    batch, channels, height, width = source_dims
    out_channels, taps = weight_rows.shape
    out_height, out_width = out.shape[2], out.shape[3]
    channels_per_group = channels // groups
    outs_per_group = out_channels // groups
    bands = (out_height + band_rows - 1) // band_rows
    halo = source_rows - band_rows
    phase_size = source_rows * row_width
    channel_size = stride_h * stride_w * phase_size
    task = end = 0
    while True:
        if task == end:         # this thread's next take of tasks
            task = simd.take_next(next_task) * tasks_per_take
            end = min(task + tasks_per_take, tasks)
            if task >= end:
                break
        n = task // (groups * bands)
        g = (task // bands) % groups
        first_row = (task % bands) * band_rows
        rows = min(band_rows, out_height - first_row)
        # the band's input: copied into a buffer, phase by phase, or read in place
        if copy_source:
            band = np.zeros(channels_per_group * channel_size, dtype=source.dtype)
            for c in range(channels_per_group):
                plane = (n * channels + g * channels_per_group + c) * height * width
                for b in range(stride_w):
                    # buffer columns low ... low+count-1 read input columns q*stride_w + b - left
                    low = max(0, -((b - left) // stride_w))
                    count = min(row_width, -((b - left - width) // stride_w)) - low
                    for a in range(stride_h):
                        for r in range(rows + halo):
                            row = (first_row + r) * stride_h + a - top
                            if count <= 0 or row < 0 or row >= height:
                                continue
                            into = c * channel_size + (a * stride_w + b) * phase_size \
                                + r * row_width + low
                            begin = plane + row * width + low * stride_w + b - left
                            into_row = band[into:into + count]
                            from_row = source[begin:begin + (count - 1) * stride_w + 1]
                            if stride_w == 1:
                                for q in range(count):
                                    into_row[q] = from_row[q]
                            else:
                                for q in range(count):
                                    into_row[q] = from_row[q * stride_w]
            start = 0
        else:
            band = source
            start = (n * channels + g * channels_per_group) * height * width \
                + first_row * width
        length = (rows - 1) * row_width + out_width
        # acc (length,): the output band of one channel, rows row_width apart; every pass
        # adds weights (scalars) times tap slices (length,) of the band buffer
        acc = np.empty(length, dtype=out.dtype)
        # the first pass over the band sets acc from 1 to 4 taps, each later one adds eight
        # (while eight are left: fewer loads and stores of acc per tap) or four; a first pass
        # of one tap is done in the loop of the first eight where there are eight more
        first = taps - 4 * ((taps - 1) // 4)
        fused_first = first == 1 and taps >= 9     # (odd square kernels: 9, 25, 49 taps)
        for o in range(g * outs_per_group, (g + 1) * outs_per_group):
            # (taps past the first pass's are read, unused, to keep the loops alike)
            at0, at1 = start + tap_offsets[0], start + tap_offsets[min(1, taps - 1)]
            at2, at3 = start + tap_offsets[min(2, taps - 1)], start + tap_offsets[min(3, taps - 1)]
            s0, s1 = band[at0:at0 + length], band[at1:at1 + length]
            s2, s3 = band[at2:at2 + length], band[at3:at3 + length]
            w0, w1, w2, w3 = weight_rows[o, 0], weight_rows[o, min(1, taps - 1)], \
                weight_rows[o, min(2, taps - 1)], weight_rows[o, min(3, taps - 1)]
            base = bias[o]
            if fused_first:
                # the first pass's one tap and the first eight-tap pass in one loop: the same
                # sums in the same order, one store and load of acc fewer per output (-20%
                # on a 3x3 filter of a 512x512 image)
                at1, at2 = start + tap_offsets[1], start + tap_offsets[2]
                at3, at4 = start + tap_offsets[3], start + tap_offsets[4]
                at5, at6 = start + tap_offsets[5], start + tap_offsets[6]
                at7, at8 = start + tap_offsets[7], start + tap_offsets[8]
                s1, s2 = band[at1:at1 + length], band[at2:at2 + length]
                s3, s4 = band[at3:at3 + length], band[at4:at4 + length]
                s5, s6 = band[at5:at5 + length], band[at6:at6 + length]
                s7, s8 = band[at7:at7 + length], band[at8:at8 + length]
                w1, w2 = weight_rows[o, 1], weight_rows[o, 2]
                w3, w4 = weight_rows[o, 3], weight_rows[o, 4]
                w5, w6 = weight_rows[o, 5], weight_rows[o, 6]
                w7, w8 = weight_rows[o, 7], weight_rows[o, 8]
                if taps == 9 and out_width >= ROW_WRITE_MIN_WIDTH:
                    # a 3x3 kernel: that one loop is the whole sum, so each output row of
                    # long rows is written to out as it is summed, not to acc and then
                    # copied (see ROW_WRITE_MIN_WIDTH)
                    for r in range(rows):
                        out_row = out[n, o, first_row + r]
                        at = r * row_width
                        r0, r1 = s0[at:at + out_width], s1[at:at + out_width]
                        r2, r3 = s2[at:at + out_width], s3[at:at + out_width]
                        r4, r5 = s4[at:at + out_width], s5[at:at + out_width]
                        r6, r7 = s6[at:at + out_width], s7[at:at + out_width]
                        r8 = s8[at:at + out_width]
                        for x in range(out_width):
                            out_row[x] = (base + w0 * r0[x]) \
                                + (((w1 * r1[x] + w2 * r2[x]) + (w3 * r3[x] + w4 * r4[x]))
                                   + ((w5 * r5[x] + w6 * r6[x]) + (w7 * r7[x] + w8 * r8[x])))
                    continue
                for p in range(length):
                    acc[p] = (base + w0 * s0[p]) \
                        + (((w1 * s1[p] + w2 * s2[p]) + (w3 * s3[p] + w4 * s4[p]))
                           + ((w5 * s5[p] + w6 * s6[p]) + (w7 * s7[p] + w8 * s8[p])))
            elif first == 1:
                for p in range(length):
                    acc[p] = base + w0 * s0[p]
            elif first == 2:
                for p in range(length):
                    acc[p] = base + (w0 * s0[p] + w1 * s1[p])
            elif first == 3:
                for p in range(length):
                    acc[p] = base + ((w0 * s0[p] + w1 * s1[p]) + w2 * s2[p])
            else:
                for p in range(length):
                    acc[p] = base + ((w0 * s0[p] + w1 * s1[p]) + (w2 * s2[p] + w3 * s3[p]))
            eights_end = first + 8 * ((taps - first) // 8)
            for t in range(first + 8 if fused_first else first, eights_end, 8):
                at0, at1 = start + tap_offsets[t], start + tap_offsets[t + 1]
                at2, at3 = start + tap_offsets[t + 2], start + tap_offsets[t + 3]
                at4, at5 = start + tap_offsets[t + 4], start + tap_offsets[t + 5]
                at6, at7 = start + tap_offsets[t + 6], start + tap_offsets[t + 7]
                s0, s1 = band[at0:at0 + length], band[at1:at1 + length]
                s2, s3 = band[at2:at2 + length], band[at3:at3 + length]
                s4, s5 = band[at4:at4 + length], band[at5:at5 + length]
                s6, s7 = band[at6:at6 + length], band[at7:at7 + length]
                w0, w1 = weight_rows[o, t], weight_rows[o, t + 1]
                w2, w3 = weight_rows[o, t + 2], weight_rows[o, t + 3]
                w4, w5 = weight_rows[o, t + 4], weight_rows[o, t + 5]
                w6, w7 = weight_rows[o, t + 6], weight_rows[o, t + 7]
                for p in range(length):
                    acc[p] += ((w0 * s0[p] + w1 * s1[p]) + (w2 * s2[p] + w3 * s3[p])) \
                        + ((w4 * s4[p] + w5 * s5[p]) + (w6 * s6[p] + w7 * s7[p]))
            for t in range(eights_end, taps, 4):
                at0, at1 = start + tap_offsets[t], start + tap_offsets[t + 1]
                at2, at3 = start + tap_offsets[t + 2], start + tap_offsets[t + 3]
                s0, s1 = band[at0:at0 + length], band[at1:at1 + length]
                s2, s3 = band[at2:at2 + length], band[at3:at3 + length]
                w0, w1 = weight_rows[o, t], weight_rows[o, t + 1]
                w2, w3 = weight_rows[o, t + 2], weight_rows[o, t + 3]
                for p in range(length):
                    acc[p] += (w0 * s0[p] + w1 * s1[p]) + (w2 * s2[p] + w3 * s3[p])
            for r in range(rows):
                out_row = out[n, o, first_row + r]
                acc_row = acc[r * row_width:r * row_width + out_width]
                for x in range(out_width):
                    out_row[x] = acc_row[x]
        task += 1


@jit(reassociate=True)
def _shifted_dot_kernel(source, source_dims, grad_out, tap_offsets, partial,
                        stride_h, stride_w, top, left, groups,
                        band_rows, source_rows, row_width, copy_source, first_task, end_task):
    """partial[o, t] += sum_{y, x} grad_out[n, o, y, x] * (tap t's plane)[y, x], summed over
    the tasks first_task ... end_task - 1. Tasks, buffers and offsets as
    `_shifted_sum_kernel`; each dot product is summed in vector lanes (reassociate=True)."""
    batch, channels, height, width = source_dims
    out_channels, taps = partial.shape
    out_height, out_width = grad_out.shape[2], grad_out.shape[3]
    channels_per_group = channels // groups
    outs_per_group = out_channels // groups
    bands = (out_height + band_rows - 1) // band_rows
    halo = source_rows - band_rows
    phase_size = source_rows * row_width
    channel_size = stride_h * stride_w * phase_size
    # the bands of grad_out[n, o] for a block of up to OUT_BLOCK output channels, rows
    # row_width apart, zeros in the gap columns (which no band's copy writes)
    grad_bands = np.zeros((min(OUT_BLOCK, outs_per_group),
                           (band_rows - 1) * row_width + out_width), dtype=grad_out.dtype)
    zero = grad_bands[0, 0]
    for task in range(first_task, end_task):
        n = task // (groups * bands)
        g = (task // bands) % groups
        first_row = (task % bands) * band_rows
        rows = min(band_rows, out_height - first_row)
        if copy_source:     # the band's input, as in _shifted_sum_kernel
            band = np.zeros(channels_per_group * channel_size, dtype=source.dtype)
            for c in range(channels_per_group):
                plane = (n * channels + g * channels_per_group + c) * height * width
                for b in range(stride_w):
                    # buffer columns low ... low+count-1 read input columns q*stride_w + b - left
                    low = max(0, -((b - left) // stride_w))
                    count = min(row_width, -((b - left - width) // stride_w)) - low
                    for a in range(stride_h):
                        for r in range(rows + halo):
                            row = (first_row + r) * stride_h + a - top
                            if count <= 0 or row < 0 or row >= height:
                                continue
                            into = c * channel_size + (a * stride_w + b) * phase_size \
                                + r * row_width + low
                            begin = plane + row * width + low * stride_w + b - left
                            into_row = band[into:into + count]
                            from_row = source[begin:begin + (count - 1) * stride_w + 1]
                            if stride_w == 1:
                                for q in range(count):
                                    into_row[q] = from_row[q]
                            else:
                                for q in range(count):
                                    into_row[q] = from_row[q * stride_w]
            start = 0
        else:
            band = source
            start = (n * channels + g * channels_per_group) * height * width \
                + first_row * width
        length = (rows - 1) * row_width + out_width
        last_out = (g + 1) * outs_per_group
        for o_first in range(g * outs_per_group, last_out, OUT_BLOCK):
            block = min(OUT_BLOCK, last_out - o_first)
            for k in range(block):
                for r in range(rows):
                    grad_row = grad_out[n, o_first + k, first_row + r]
                    band_row = grad_bands[k, r * row_width:r * row_width + out_width]
                    for x in range(out_width):
                        band_row[x] = grad_row[x]
            # () = (length,) . (length,) for each channel and tap, summed in vector lanes
            # (reassociate=True) and in the input's dtype; each band's sum is added to a
            # float64 partial sum.
            if block == OUT_BLOCK:
                # Two channels and four taps at a time: 8 sums from 6 loads (LeNet's first
                # layer, one thread, interleaved with the eight-tap loop alone: 1.60 -> 1.17
                # ms with AVX-512, 1.64 -> 1.23 compiled for AVX2 (NUMBA_CPU_NAME=haswell)
                # on the same AMD EPYC; three channels, 12 sums, ran 1.09 with AVX-512 but
                # 1.87 for AVX2, whose 16 registers they spill)
                fours_end = 4 * (taps // 4)
                band0, band1 = grad_bands[0, :length], grad_bands[1, :length]
                for t in range(0, fours_end, 4):
                    at0, at1 = start + tap_offsets[t], start + tap_offsets[t + 1]
                    at2, at3 = start + tap_offsets[t + 2], start + tap_offsets[t + 3]
                    s0, s1 = band[at0:at0 + length], band[at1:at1 + length]
                    s2, s3 = band[at2:at2 + length], band[at3:at3 + length]
                    t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = zero
                    for p in range(length):
                        u0, u1 = band0[p], band1[p]
                        v0, v1, v2, v3 = s0[p], s1[p], s2[p], s3[p]
                        t00 += u0 * v0
                        t01 += u0 * v1
                        t02 += u0 * v2
                        t03 += u0 * v3
                        t10 += u1 * v0
                        t11 += u1 * v1
                        t12 += u1 * v2
                        t13 += u1 * v3
                    o = o_first
                    partial[o, t] += t00
                    partial[o, t + 1] += t01
                    partial[o, t + 2] += t02
                    partial[o, t + 3] += t03
                    partial[o + 1, t] += t10
                    partial[o + 1, t + 1] += t11
                    partial[o + 1, t + 2] += t12
                    partial[o + 1, t + 3] += t13
                first_single = fours_end
            else:
                first_single = 0
            for k in range(block):
                o = o_first + k
                grad_band = grad_bands[k, :length]
                # Eight taps at a time: each load of grad_band serves eight products
                # (LeNet's first layer: 1.14-1.39 -> 0.84-1.05 ms; a 3x3 filter of a
                # 512x512 image 0.22 -> 0.13 ms), then the last taps one at a time.
                eights_end = first_single + 8 * ((taps - first_single) // 8)
                for t in range(first_single, eights_end, 8):
                    at0, at1 = start + tap_offsets[t], start + tap_offsets[t + 1]
                    at2, at3 = start + tap_offsets[t + 2], start + tap_offsets[t + 3]
                    at4, at5 = start + tap_offsets[t + 4], start + tap_offsets[t + 5]
                    at6, at7 = start + tap_offsets[t + 6], start + tap_offsets[t + 7]
                    s0, s1 = band[at0:at0 + length], band[at1:at1 + length]
                    s2, s3 = band[at2:at2 + length], band[at3:at3 + length]
                    s4, s5 = band[at4:at4 + length], band[at5:at5 + length]
                    s6, s7 = band[at6:at6 + length], band[at7:at7 + length]
                    total0 = total1 = total2 = total3 = zero
                    total4 = total5 = total6 = total7 = zero
                    for p in range(length):
                        value = grad_band[p]
                        total0 += value * s0[p]
                        total1 += value * s1[p]
                        total2 += value * s2[p]
                        total3 += value * s3[p]
                        total4 += value * s4[p]
                        total5 += value * s5[p]
                        total6 += value * s6[p]
                        total7 += value * s7[p]
                    partial[o, t] += total0
                    partial[o, t + 1] += total1
                    partial[o, t + 2] += total2
                    partial[o, t + 3] += total3
                    partial[o, t + 4] += total4
                    partial[o, t + 5] += total5
                    partial[o, t + 6] += total6
                    partial[o, t + 7] += total7
                for t in range(eights_end, taps):
                    shifted = band[start + tap_offsets[t]:start + tap_offsets[t] + length]
                    total = zero
                    for p in range(length):
                        total += grad_band[p] * shifted[p]
                    partial[o, t] += total


class _Layout(NamedTuple):
    """Where the compiled kernels find each tap: the band buffer's shape and the taps'
    offsets in it."""

    tap_offsets: np.ndarray    # (T,) int64, from the start of the group's first channel
    band_rows: int             # output rows per task
    source_rows: int           # rows of each phase in the buffer: band_rows + halo
    row_width: int             # W_out + the widest column shift
    copy_source: bool          # False: the (stride-1, unpadded) input is read in place
    tasks: int                 # (image, group, band) triples
    pieces: int                # contiguous runs of tasks handed to the threads


def _threads(work: int, least: int = PARALLEL_WORK) -> int:
    """Threads for a kernel doing `work` multiply-adds: corrnet's thread count
    (`threads.get_num_threads()`), or one for work below `least`."""
    return active() if work >= least else 1


def _in_parallel(layout: _Layout, threads: int, run_piece) -> None:
    """Call run_piece(k, first_task, end_task) for each piece k of the tasks, on `threads`
    threads: the calling one and threads - 1 of corrnet's helper threads, each taking the
    next piece not yet taken until none is left (the kernels release the GIL)."""
    bounds = [k * layout.tasks // layout.pieces for k in range(layout.pieces + 1)]
    pieces = itertools.count()          # next() hands out each piece number once

    def work():
        while (k := next(pieces)) < layout.pieces:
            run_piece(k, bounds[k], bounds[k + 1])

    helpers = min(threads, layout.pieces) - 1      # (threads <= get_num_threads())
    if helpers > 0:
        pool = helper_pool()
        futures = [pool.submit(work) for _ in range(helpers)]
    work()
    if helpers > 0:
        for future in futures:
            future.result()


@functools.lru_cache(maxsize=512)
def _layout(source_dims, taps: tuple, stride, top: int, left: int, out_size,
            groups: int, threads: int) -> _Layout:
    """Lay out the band buffer for `taps`, a tuple of (channel in group, row, column), the
    row and column in padded coordinates: tap t of output (y, x) reads
    padded[c, y*sh + row, x*sw + column], where padded[r, q] = source[r - top, q - left]."""
    n, _, height, width = source_dims
    out_height, out_width = out_size
    sh, sw = stride
    channel, row, column = np.array(taps, dtype=np.int64).T
    # in phase coordinates: phase (row % sh, column % sw), shift (row // sh, column // sw)
    halo = int((row // sh).max())
    row_width = out_width + int((column // sw).max())
    in_place = (sh == sw == 1 and top == left == 0 and row_width == width
                and out_height + halo <= height)
    band_rows = max(1, min(out_height, BAND_ELEMENTS // row_width))
    # enough tasks to keep every thread busy: cut the bands finer when there are few images
    # (one thread takes all the tasks in one piece)
    pieces = PIECES_PER_THREAD * threads if threads > 1 else 1
    wanted_bands = -(-pieces // max(1, n * groups))
    if wanted_bands > 1:
        band_rows = max(1, min(band_rows, -(-out_height // wanted_bands)))
    source_rows = band_rows + halo
    if in_place:
        offsets = channel * (height * width) + row * width + column
    else:
        phase_size = source_rows * row_width
        offsets = (channel * (sh * sw * phase_size)
                   + ((row % sh) * sw + column % sw) * phase_size
                   + (row // sh) * row_width + column // sw)
    offsets.flags.writeable = False
    tasks = n * groups * -(-out_height // band_rows)
    return _Layout(offsets, band_rows, source_rows, row_width, not in_place, tasks,
                   max(1, min(tasks, pieces)))


def _shifted_sum(source, weight_rows, taps, bias, stride, top, left, out_size,
                 groups: int, out=None) -> np.ndarray:
    """out[n, o] = bias[o] + sum_t weight_rows[o, t] * padded[n, g(o)*Cg + c_t] shifted by
    tap t (compiled); source (N, C, H, W), taps as `_layout`. `out`, if given, is the
    (N, C_out, *out_size) array (a strided view, say) to write into."""
    source = np.ascontiguousarray(source)
    n = source.shape[0]
    out_channels = weight_rows.shape[0]
    if out is None:
        out = np.empty((n, out_channels, *out_size), dtype=source.dtype)
    threads = _threads(out.size * len(taps), SHARED_PARALLEL_WORK)
    layout = _layout(source.shape, taps, tuple(stride), top, left, tuple(out_size), groups,
                     threads)
    flat = source.reshape(-1)
    weight_rows = np.ascontiguousarray(weight_rows, dtype=source.dtype)
    bias = np.zeros(out_channels, source.dtype) if bias is None else \
        np.ascontiguousarray(bias, dtype=source.dtype)

    # one kernel call per thread, each taking bands from a shared counter: the outputs of a
    # band are written by the one thread that took it, so the result does not depend on
    # which (and a 512x512 image's 3x3 filter on 2 threads: no Python call per band)
    run_shared(min(threads, layout.tasks), _shifted_sum_kernel, flat, source.shape,
               weight_rows, layout.tap_offsets, bias, out, stride[0], stride[1], top, left,
               groups, layout.band_rows, layout.source_rows, layout.row_width,
               layout.copy_source, layout.tasks,
               max(1, layout.tasks // (TAKES_PER_THREAD * threads)))
    return out


def _shifted_dot(source, grad_out, taps, stride, top, left, groups: int) -> np.ndarray:
    """(C_out, T): sum over n, y, x of grad_out[n, o, y, x] * (tap t's shifted plane)[y, x]
    (compiled), the weight gradient of `_shifted_sum`."""
    source = np.ascontiguousarray(source)
    # any strides: the kernel copies grad_out's rows into its bands (a broadcast output
    # gradient, of ``out.sum()``, is not written out first)
    grad_out = grad_out.astype(source.dtype, copy=False)
    out_channels = grad_out.shape[1]
    out_size = grad_out.shape[2:]
    threads = _threads(grad_out.size * len(taps))
    layout = _layout(source.shape, taps, tuple(stride), top, left, tuple(out_size), groups,
                     threads)
    flat = source.reshape(-1)
    # one row of partial sums per piece, added at the end: no two threads write one number
    # (float64: a big image adds up thousands of bands' dot products)
    partial = np.zeros((layout.pieces, out_channels, len(taps)), dtype=np.float64)

    def run_piece(k, first_task, end_task):
        _shifted_dot_kernel(flat, source.shape, grad_out, layout.tap_offsets, partial[k],
                            stride[0], stride[1], top, left, groups, layout.band_rows,
                            layout.source_rows, layout.row_width, layout.copy_source,
                            first_task, end_task)

    _in_parallel(layout, threads, run_piece)
    return partial.sum(axis=0).astype(source.dtype)


@functools.lru_cache(maxsize=512)
def _window_taps(weight_shape, dilation) -> tuple:
    """The taps of a convolution, in weight order: (c, i*dh, j*dw) for c, i, j."""
    _, channels, kh, kw = weight_shape
    dh, dw = dilation
    return tuple((c, i * dh, j * dw) for c in range(channels) for i in range(kh)
                 for j in range(kw))


def _engine_fixed_bytes(pass_name, x_shape, weight_shape, window: Window2d, groups: int,
                        itemsize: int) -> int:
    """Bytes the compiled engine holds whatever the batch: on each thread a band buffer (the
    band's input phases, `_layout`) and an accumulator row (the weight gradient: the bands
    of up to OUT_BLOCK output channels' gradients), the float64 partial sums of the weight
    gradient (a row per piece of the task list) and weight-sized copies. An upper bound: the
    band as tall as BAND_ELEMENTS allows, before any cutting for the threads."""
    c_out, channels_per_group, kh, kw = weight_shape
    (sh, sw), (dh, dw) = window.stride, window.dilation
    if pass_name == "grad_input":    # stride-1 correlations of grad_out, one per phase
        channels, phases, out_height = c_out // groups, 1, window.height
        halo, row_width = kh * dh, window.width + kw * dw
    else:
        channels, phases, out_height = channels_per_group, sh * sw, window.out_height
        halo, row_width = (dh * (kh - 1)) // sh, window.out_width + (dw * (kw - 1)) // sw
    band_rows = max(1, min(out_height, BAND_ELEMENTS // row_width))
    rows = max(2, min(OUT_BLOCK, c_out // groups)) if pass_name == "grad_weight" else 2
    per_thread = (channels * phases * (band_rows + halo) + rows * band_rows) * row_width \
        * itemsize
    weights = int(np.prod(weight_shape))
    return (get_num_threads() * per_thread
            + 8 * weights * (PIECES_PER_THREAD * get_num_threads() + 2))


def engine_least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                       pass_name: str) -> int:
    """The compiled engine's temporaries at one image a chunk: the contiguous copies of a
    non-contiguous input or output gradient (the kernels read them in place otherwise), and
    `_engine_fixed_bytes`."""
    itemsize = np.dtype(dtype).itemsize
    per_image = {"forward": x_shape[1] * window.height * window.width,
                 "grad_input": weight_shape[0] * window.out_height * window.out_width}
    per_image["grad_weight"] = per_image["forward"] + per_image["grad_input"]
    return per_image[pass_name] * itemsize + _engine_fixed_bytes(
        pass_name, x_shape, weight_shape, window, groups, itemsize)


def _engine_chunks(budget: int, pass_name, x_shape, weight_shape, window: Window2d,
                   groups: int, *arrays) -> list[slice]:
    """Slices of the batch for the compiled engine, which reads its arrays contiguous: the
    whole batch where they are (read in place), else chunks of images whose contiguous
    copies stay within `budget` bytes."""
    n = arrays[0].shape[0]
    copied = sum(array[:1].nbytes for array in arrays if not array.flags.c_contiguous)
    if copied:
        fixed = _engine_fixed_bytes(pass_name, x_shape, weight_shape, window, groups,
                                    arrays[0].itemsize)
        step = _batch_step(copied, budget - fixed)
    else:
        step = n
    return [slice(start, min(n, start + step)) for start in range(0, n, max(1, step))]


def _compiled_forward(x, weight, bias, window: Window2d, groups: int,
                      budget: int = DEFAULT_BUDGET) -> np.ndarray:
    (top, _), (left, _) = window.padding
    c_out = weight.shape[0]
    taps = _window_taps(tuple(weight.shape), window.dilation)
    out = np.empty((x.shape[0], c_out, window.out_height, window.out_width), x.dtype)
    for images in _engine_chunks(budget, "forward", x.shape, weight.shape, window, groups, x):
        _shifted_sum(x[images], weight.reshape(c_out, -1), taps, bias, window.stride, top,
                     left, (window.out_height, window.out_width), groups, out=out[images])
    return out


def _compiled_grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                          budget: int = DEFAULT_BUDGET):
    (top, _), (left, _) = window.padding
    taps = _window_taps(tuple(weight_shape), window.dilation)
    grad_weight = np.zeros((weight_shape[0], len(taps)), grad_out.dtype)
    for images in _engine_chunks(budget, "grad_weight", x.shape, weight_shape, window, groups,
                                 x, grad_out):
        grad_weight += _shifted_dot(x[images], grad_out[images], taps, window.stride, top,
                                    left, groups)
    return grad_weight.reshape(weight_shape)


class _InputPhase(NamedTuple):
    """The input cells x[first_row::sh, first_col::sw] (count_rows x count_cols of them),
    whose gradient is one stride-1 correlation of grad_out with the kernel cells
    (kernel_rows[t], kernel_cols[t]), mirrored: tap t of phase cell (k, l) reads
    padded_grad[k + rows[t], l + cols[t]], padded_grad[r, q] = grad_out[r - top, q - left]."""

    first_row: int
    first_col: int
    count_rows: int
    count_cols: int
    kernel_rows: tuple
    kernel_cols: tuple
    taps: tuple          # (o in group, row, column) for each output channel o and cell t
    top: int
    left: int


@functools.lru_cache(maxsize=256)
def _input_phases(weight_shape, window: Window2d) -> tuple:
    """The input gradient of a convolution as stride-1 correlations, one per phase.

    Input row r (padded row R = r + top) gets grad_out[y] * weight[i] wherever
    R = y*sh + i*dh: then R and i*dh leave the same remainder rho mod sh, and
    y = R//sh - (i*dh)//sh. So the rows with remainder rho form a stride-1 correlation of
    grad_out with the kernel rows whose i*dh leaves remainder rho, mirrored; columns alike.
    Phases no kernel cell lands in are left out (their gradient is zero).
    """
    outs_per_group, kh, kw = weight_shape[0], weight_shape[2], weight_shape[3]
    (sh, sw), (dh, dw) = window.stride, window.dilation
    (top, _), (left, _) = window.padding
    phases = []
    # only the remainders some kernel cell leaves (at most kh of them, however large the
    # stride): the other phases get no gradient
    for rho in sorted({(i * dh) % sh for i in range(kh)}):
        kernel_rows = [i for i in range(kh) if (i * dh) % sh == rho]
        first_row = (rho - top) % sh
        count_rows = len(range(first_row, window.height, sh))
        for sigma in sorted({(j * dw) % sw for j in range(kw)}):
            kernel_cols = [j for j in range(kw) if (j * dw) % sw == sigma]
            first_col = (sigma - left) % sw
            count_cols = len(range(first_col, window.width, sw))
            if not (count_rows and count_cols):
                continue
            cells = [(i, j) for i in kernel_rows for j in kernel_cols]
            row_shift = {i: (i * dh) // sh for i in kernel_rows}
            col_shift = {j: (j * dw) // sw for j in kernel_cols}
            most_rows, most_cols = max(row_shift.values()), max(col_shift.values())
            taps = tuple((o, most_rows - row_shift[i], most_cols - col_shift[j])
                         for o in range(outs_per_group) for i, j in cells)
            # phase cell k is padded row R = rho + sh*(k + (first_row + top - rho)//sh)
            phases.append(_InputPhase(
                first_row, first_col, count_rows, count_cols,
                tuple(i for i, _ in cells), tuple(j for _, j in cells), taps,
                most_rows - (first_row + top - rho) // sh,
                most_cols - (first_col + left - sigma) // sw))
    return tuple(phases)


def _compiled_grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
                         budget: int = DEFAULT_BUDGET):
    """The input gradient: for each phase of the input (`_input_phases`; one for stride 1),
    a stride-1 correlation of grad_out, input and output channels swapped, written into
    that phase's cells."""
    c_in, height, width = x_shape[1:]
    c_out, channels_per_group = weight.shape[:2]
    outs_per_group = c_out // groups
    (sh, sw) = window.stride

    def phase_weights(phase):
        """(C_out, Cg, T) -> (G, Og, Cg, T) -> (G, Cg, Og, T) -> (C_in, Og*T), o outermost"""
        weight_taps = weight[:, :, list(phase.kernel_rows), list(phase.kernel_cols)]
        return (weight_taps.reshape(groups, outs_per_group, channels_per_group, -1)
                .transpose(0, 2, 1, 3).reshape(c_in, -1))

    phases = _input_phases((outs_per_group, *weight.shape[1:]), window)
    # each phase's cells written in place; cells no window reaches (phases left out) are 0
    grad_x = (np.empty if len(phases) == sh * sw else np.zeros)(x_shape, grad_out.dtype)
    for images in _engine_chunks(budget, "grad_input", x_shape, weight.shape, window, groups,
                                 grad_out):
        grad_images = np.ascontiguousarray(grad_out[images])
        for phase in phases:
            _shifted_sum(grad_images, phase_weights(phase), phase.taps, None, (1, 1),
                         phase.top, phase.left, (phase.count_rows, phase.count_cols), groups,
                         out=grad_x[images, :, phase.first_row::sh, phase.first_col::sw])
        del grad_images
    return grad_x


# ---------------------------------------------------------------------------------------------
# depthwise: one filter (or `multiplier` filters) per channel
# ---------------------------------------------------------------------------------------------


def depthwise_supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                       pass_name: str) -> bool:
    """groups == C_in (C_out = multiplier * C_in), any kernel, stride, padding, dilation;
    numeric dtypes (float32/float64 compiled when numba is on, NumPy otherwise)."""
    return (len(x_shape) == 4 and groups == x_shape[1] and weight_shape[1] == 1
            and _numeric(dtype))


def _depthwise_image_bytes(pass_name, x_shape, weight_shape, window: Window2d,
                           itemsize: int) -> int:
    """Bytes of the NumPy path's temporaries per image: the padded input (or its gradient)
    and one product of every output channel (grad_input: and its sum over the multiplier)."""
    c, multiplier = x_shape[1], weight_shape[0] // x_shape[1]
    padded = window.padded_height * window.padded_width
    outputs = window.out_height * window.out_width
    products = (2 if pass_name == "grad_input" else 1) * multiplier
    return c * (padded + products * outputs) * itemsize


def depthwise_least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                          pass_name: str) -> int:
    if runs_compiled(dtype):
        return engine_least_bytes(x_shape, weight_shape, window, groups, dtype, pass_name)
    return _depthwise_image_bytes(pass_name, x_shape, weight_shape, window,
                                  np.dtype(dtype).itemsize)


def depthwise_forward(x, weight, bias, window: Window2d, groups: int,
                      budget: int = DEFAULT_BUDGET) -> np.ndarray:
    if runs_compiled(x.dtype):
        return _compiled_forward(x, weight, bias, window, groups, budget)
    n, c = x.shape[:2]
    multiplier = weight.shape[0] // c
    kernels = weight.reshape(c, multiplier, *window.kernel)
    out_shape = (window.out_height, window.out_width)
    out = np.zeros((n, c, multiplier, *out_shape), dtype=x.dtype)
    step = _batch_step(_depthwise_image_bytes("forward", x.shape, weight.shape, window,
                                              x.itemsize), budget)
    for start in range(0, n, step):
        chunk_out = out[start:start + step]
        product = np.empty_like(chunk_out)
        padded = pad(x[start:start + step], window)
        for (i, j), view in shifted_views(padded, window):
            # (n, C, m, H_out, W_out) += (C, m, 1, 1) * (n, C, 1, H_out, W_out)
            np.multiply(kernels[:, :, i, j, None, None], view[:, :, None], out=product)
            chunk_out += product
        del product, padded, view     # (before the next chunk's are made)
    out = out.reshape(n, c * multiplier, *out_shape)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def depthwise_grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
                         budget: int = DEFAULT_BUDGET) -> np.ndarray:
    if runs_compiled(grad_out.dtype):
        return _compiled_grad_input(grad_out, weight, window, groups, x_shape, budget)
    n, c = x_shape[:2]
    multiplier = weight.shape[0] // c
    kernels = weight.reshape(c, multiplier, *window.kernel)
    out_shape = (window.out_height, window.out_width)
    grads = grad_out.reshape(n, c, multiplier, *out_shape)
    grad_x = np.empty(x_shape, dtype=grad_out.dtype)
    step = _batch_step(_depthwise_image_bytes("grad_input", x_shape, weight.shape, window,
                                              grad_out.itemsize), budget)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        padded = np.zeros((images.stop - start, c, window.padded_height, window.padded_width),
                          dtype=grad_out.dtype)
        for (i, j), view in shifted_views(padded, window):
            # (n, C, H_out, W_out) += sum over m of (C, m, 1, 1) * (n, C, m, H_out, W_out)
            view += (kernels[:, :, i, j, None, None] * grads[images]).sum(axis=2)
        grad_x[images] = unpad(padded, window)
        del padded, view
    return grad_x


def depthwise_grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                          budget: int = DEFAULT_BUDGET) -> np.ndarray:
    if runs_compiled(x.dtype):
        return _compiled_grad_weight(grad_out, x, weight_shape, window, groups, budget)
    n, c = x.shape[:2]
    multiplier = weight_shape[0] // c
    out_shape = (window.out_height, window.out_width)
    grads = grad_out.reshape(n, c, multiplier, *out_shape)
    grad_weight = np.zeros((c, multiplier, *window.kernel), dtype=x.dtype)
    step = _batch_step(_depthwise_image_bytes("grad_weight", x.shape, weight_shape, window,
                                              x.itemsize), budget)
    for start in range(0, n, step):
        images = slice(start, min(n, start + step))
        padded = pad(x[images], window)
        for (i, j), view in shifted_views(padded, window):
            # (C, m) = sum over n, y, x of (n, C, m, H_out, W_out) * (n, C, 1, H_out, W_out)
            grad_weight[:, :, i, j] += (grads[images] * view[:, :, None]).sum(axis=(0, 3, 4))
        del padded, view
    return grad_weight.reshape(weight_shape)


depthwise = Algorithm(depthwise_supports, depthwise_forward, depthwise_grad_input,
                      depthwise_grad_weight, depthwise_least_bytes)


# ---------------------------------------------------------------------------------------------
# direct ("small"): any convolution with few channels, compiled only
# ---------------------------------------------------------------------------------------------


def small_supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                   pass_name: str) -> bool:
    """Any groups, stride, padding and dilation, float32/float64, every pass — but only with
    numba (no NumPy path: False when the compiled kernels are off, and the planner falls
    back to im2col) and at most `DIRECT_MAX_TAPS` multiply-adds per output position and
    group (Cg*kh*kw * Og)."""
    c_out, channels_per_group, kh, kw = weight_shape
    return (len(x_shape) == 4 and runs_compiled(dtype)
            and channels_per_group * kh * kw * (c_out // groups) <= DIRECT_MAX_TAPS)


def small_forward(x, weight, bias, window: Window2d, groups: int,
                  budget: int = DEFAULT_BUDGET) -> np.ndarray:
    return _compiled_forward(x, weight, bias, window, groups, budget)


def small_grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
                     budget: int = DEFAULT_BUDGET) -> np.ndarray:
    return _compiled_grad_input(grad_out, weight, window, groups, x_shape, budget)


def small_grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                      budget: int = DEFAULT_BUDGET) -> np.ndarray:
    return _compiled_grad_weight(grad_out, x, weight_shape, window, groups, budget)


small = Algorithm(small_supports, small_forward, small_grad_input, small_grad_weight,
                  engine_least_bytes)


# ---------------------------------------------------------------------------------------------
# where each algorithm beats im2col + GEMM: rules for the planner, all with the signature
# rule(pass_name, x_shape, weight_shape, window, groups) -> bool, and meant to be asked only
# where the algorithm's `supports` is True
# ---------------------------------------------------------------------------------------------


def pointwise_rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """Always: no unrolling at all; 1.1x to 3x faster than im2col on every measured shape
    (28x28 maps 256 -> 64, 7x7 maps 512 -> 512, 1x1 maps, strided, grouped), every pass."""
    return True


def depthwise_rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """Always: compiled, 5x to 20x faster than im2col (whose per-group products have a
    single row); the NumPy fallback still about even with it forward and 2x faster
    forward + backward."""
    return True


def direct_rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """Few multiply-adds per output (K*Og = Cg*kh*kw * C_out/G), and output maps large
    enough that the per-band work pays for itself. Measured, one core:

    * forward and grad_input win up to K*Og ~ 2000 (3 -> 64 3x3: 2x; 16 -> 16 3x3: 1.1x to
      2x; lose at 6 -> 16 5x5, K*Og 2400) and on maps from about 8x8 (lose on 4x4 maps);
    * grad_weight is a dot product per tap and image, BLAS calls that want long rows: it
      wins up to K*Og ~ 500 on maps from about 16x16 (1 -> 32 3x3 28x28: 1.1x; 3 -> 16 3x3
      32x32: 1.2x; loses at 8 -> 8 3x3 16x16, K*Og 576, and on 8x8 maps), and with groups
      (im2col's grouped products are slow) to about twice that;
    * single-channel filtering (1 -> 1, corr2d): 10x to 30x, every pass.

    It declines where each window feeds many output channels (`unrolled.outranks_direct`:
    LeNet's 6 -> 16 5x5, K*Og 2400): there unrolled im2col + GEMM is 1.3x to 1.7x faster.
    """
    if unrolled.outranks_direct(weight_shape, window, groups):
        return False
    c_out, channels_per_group, kh, kw = weight_shape
    per_output = channels_per_group * kh * kw * (c_out // groups)
    out_pixels = window.out_height * window.out_width
    if pass_name == "grad_weight":
        limit = 1024 if groups > 1 else 512
        return per_output <= limit and out_pixels >= 256
    if pass_name == "forward":
        return per_output <= DIRECT_MAX_TAPS and out_pixels >= 64
    return per_output <= 2048 and out_pixels >= 64

