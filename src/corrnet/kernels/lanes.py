"""Direct convolution with the output channels (or neighbouring outputs) in vector lanes
("lanes"): forward passes at the machine's multiply-add peak, without unrolling the windows.

LeNet's second layer (6 -> 16, 5x5, 14x14 maps) is a GEMM too small for BLAS: per image
(16, 150) @ (150, 100), which OpenBLAS runs at half the core's peak, and unrolled.py's
im2col adds the copy of the windows and 36% gap columns. This kernel does no unrolling. A
vector register holds `lanes` output channels (16 float32 or 8 float64 in 64 bytes: one
AVX-512 register, two AVX2 ones), and a block of PIXELS outputs of one output row keeps
one vector of sums each, in registers (simd.py), while the loop runs through the window's
K = Cg*kh*kw taps:

    for each tap t = (c, i, j):                     w_t = weight_lanes[g, b, t] (lanes,)
        for p in 0 .. PIXELS-1:
            sums[p] (lanes,) += padded[c, y*sh + i*dh, (q + p)*sw + j*dw] * w_t

one vector load of the tap's weights and PIXELS broadcast multiply-adds: arithmetic, not
loads, bounds it. Then the block's sums (plus the bias) are written to out[n, o, y, q + p].
Output channels come in blocks of `lanes` (the last one padded with zero weights, its
extra lanes dropped); a row's last block of pixels computes past W_out into the padded
buffer's spare columns, dropped too.

PIXELS = 5: five vectors of sums take 5 AVX-512 registers (10 AVX2 ones, of 16), leaving
room for the tap's weights and the broadcasts; ten spilled to the stack (measured: 36
GFLOP/s against 92 with five, one core with AVX-512, LeNet's second layer).

Few output channels (Og < 16, LeNet's first layer: 1 -> 6, 5x5 on 28x28), stride 1 along
the rows: the lanes hold `lanes` neighbouring outputs of one row instead (`_pixels_kernel`),
and CHANNELS output channels keep one vector of sums each:

    for each tap t:                                  cells = padded[c, y*sh + i*dh, q + j*dw:]
        for o in 0 .. CHANNELS-1:
            sums[o] (lanes,) += weight[o, c, i, j] * cells[:lanes]

one vector load of the input and CHANNELS broadcast multiply-adds. CHANNELS = 6: 6 AVX-512
registers of sums, 12 AVX2 ones (of 16); blocks of output channels padded with zero weights,
rows with spare columns, both dropped. Measured, LeNet's first layer, N=256, one thread:
1.07 ms against the direct engine's 1.39 (its passes load and store the sums every 8 taps).

Each image's channels of one group are copied into a zero-padded buffer per thread (the
padding, and spare columns for the last block of pixels), except where no padding or spare
column is needed (LeNet's second layer: 10 = 2 blocks of 5), where the channel kernel reads
the image in place. Taps are summed TAP_BLOCK at a time, each block's sums added into
totals (float32 accuracy). The images are split among corrnet's threads.

Forward pass only, compiled only (numba): `supports` says False for the gradients and with
the compiled kernels off, and the planner takes another algorithm for those (`rule` says
where lanes' forward is taken). Every stride, padding, dilation and groups; float32 and
float64. Non-finite values stay local: each output sums its own window's
products only (spare lanes and pixels are computed and dropped).

Memory: each thread holds one padded image group (Cg * padded height * padded width) and
the weight in lanes order (G * blocks * K * lanes or CHANNELS), `least_bytes`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from . import simd
from .jit import jit, runs_compiled
from .threads import MIN_PARALLEL_SIZE, active, helper_pool
from .windows import Window2d

DEFAULT_BUDGET = 256 * 2**20

# outputs of one row whose sums stay in registers together (see the module docstring)
PIXELS = 5
# output channels whose sums (vectors of neighbouring outputs) stay in registers together
# where the lanes hold pixels (see the module docstring)
CHANNELS = 6
# taps summed in registers before their sums are added into the totals: a sum of K products
# in one running total loses precision as K grows (float32 error 2.7x PyTorch's at K = 1152,
# 128 channels 3x3); in blocks of 160 it stays within 2x PyTorch's (tests/
# test_float32_accuracy), and LeNet's second layer (K = 150) is one block (blocks of 64:
# 6% slower there)
TAP_BLOCK = 160


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
             pass_name: str) -> bool:
    """The forward pass of every convolution of float32/float64, compiled kernels on."""
    return pass_name == "forward" and len(x_shape) == 4 and runs_compiled(dtype)


def _by_pixels(weight_shape, window: Window2d, groups: int) -> bool:
    """Whether the lanes hold neighbouring outputs of a row (`_pixels_kernel`: fewer than 16
    output channels per group, stride 1 along the rows) rather than output channels."""
    return weight_shape[0] // groups < RULE_MIN_OUTPUTS and window.stride[1] == 1


def _padded_size(weight_shape, window: Window2d, groups: int, dtype) -> tuple[int, int]:
    """(rows, columns) of the buffer the windows read: the rows of H_out outputs, the columns
    of W_out rounded up to whole blocks of PIXELS (of `lanes` outputs, `_by_pixels`)."""
    (kh, kw), (sh, sw), (dh, dw) = weight_shape[2:], window.stride, window.dilation
    rows = (window.out_height - 1) * sh + (kh - 1) * dh + 1
    if _by_pixels(weight_shape, window, groups):
        block = simd.lanes_of(dtype)
        return rows, -(-window.out_width // block) * block + (kw - 1) * dw
    blocks = -(-window.out_width // PIXELS)
    return rows, (blocks * PIXELS - 1) * sw + (kw - 1) * dw + 1


def _reads_in_place(x_shape, weight_shape, window: Window2d, groups: int, dtype) -> bool:
    """Whether the windows, spare columns included, lie inside the image (no padding): then
    the kernel reads the image itself instead of a padded copy (output channels in lanes;
    `_pixels_kernel` always copies)."""
    (top, _), (left, _) = window.padding
    rows, columns = _padded_size(weight_shape, window, groups, dtype)
    return (not _by_pixels(weight_shape, window, groups) and top == 0 and left == 0
            and rows <= x_shape[2] and columns <= x_shape[3])


def _weight_lanes(weight, groups: int, dtype) -> np.ndarray:
    """weight (C_out, Cg, kh, kw) as (G, blocks, K * lanes): block b of group g holds output
    channels g*Og + b*lanes + l in lane l of each tap's vector (zeros past Og)."""
    c_out = weight.shape[0]
    outs, k = c_out // groups, int(np.prod(weight.shape[1:]))
    lanes = simd.lanes_of(dtype)
    blocks = -(-outs // lanes)
    padded = np.zeros((groups, blocks * lanes, k), dtype)
    padded[:, :outs] = weight.reshape(groups, outs, k)
    # (G, blocks, K, lanes) <- (G, blocks, lanes, K)
    return np.ascontiguousarray(
        padded.reshape(groups, blocks, lanes, k).transpose(0, 1, 3, 2)).reshape(
            groups, blocks, k * lanes)


def _weight_columns(weight, groups: int, dtype) -> np.ndarray:
    """weight (C_out, Cg, kh, kw) as (G, blocks, K * CHANNELS): block b of group g holds tap
    t's weights of output channels g*Og + b*CHANNELS + o at t*CHANNELS + o (zeros past Og)."""
    c_out = weight.shape[0]
    outs, k = c_out // groups, int(np.prod(weight.shape[1:]))
    blocks = -(-outs // CHANNELS)
    padded = np.zeros((groups, blocks * CHANNELS, k), dtype)
    padded[:, :outs] = weight.reshape(groups, outs, k)
    # (G, blocks, K, CHANNELS) <- (G, blocks, CHANNELS, K)
    return np.ascontiguousarray(
        padded.reshape(groups, blocks, CHANNELS, k).transpose(0, 1, 3, 2)).reshape(
            groups, blocks, k * CHANNELS)


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name: str) -> int:
    """One thread's padded image group and the weight in lanes order."""
    itemsize = np.dtype(dtype).itemsize
    rows, columns = _padded_size(weight_shape, window, groups, dtype)
    c_out, channels_per_group, kh, kw = weight_shape
    block = CHANNELS if _by_pixels(weight_shape, window, groups) else simd.lanes_of(dtype)
    blocks = -(-(c_out // groups) // block)
    return (channels_per_group * rows * columns
            + groups * blocks * block * channels_per_group * kh * kw) * itemsize


@jit()
def _forward_kernel(x, weight_lanes, bias, out, geometry, in_place, first, end):
    """out[n] for the images n in [first, end): see the module docstring. x (N, C_in, H, W),
    weight_lanes (G, blocks, K * lanes), bias (C_out,), out (N, C_out, H_out, W_out);
    geometry (kh, kw, sh, sw, dh, dw, top, left, padded rows, padded columns)."""
    kh, kw, sh, sw, dh, dw, top, left, rows, columns = geometry
    groups, blocks = weight_lanes.shape[0], weight_lanes.shape[1]
    channels_per_group = x.shape[1] // groups
    height, width = x.shape[2], x.shape[3]
    outs = out.shape[1] // groups
    out_height, out_width = out.shape[2], out.shape[3]
    lanes = simd.lanes(out)
    sums = simd.stack_block(out.dtype)      # PIXELS vectors of sums, in registers
    totals = simd.stack_block(out.dtype)    # the sums of the blocks of taps
    # the windows read a group's channels as one flat source (the image itself, or the
    # padded copy): tap t = (c, i, j) of the output at (y, q) reads
    # source[y*sh*row_stride + q*sw + offsets[t]] (unsigned: no negative-index checks)
    row_stride = width if in_place else columns
    plane_size = height * width if in_place else rows * columns
    k = channels_per_group * kh * kw
    offsets = np.empty(k, np.uintp)
    for c in range(channels_per_group):
        for i in range(kh):
            for j in range(kw):
                offsets[(c * kh + i) * kw + j] = (c * plane_size + i * dh * row_stride
                                                  + j * dw)
    step = np.uintp(sw)
    padded = np.zeros(0 if in_place else channels_per_group * rows * columns, x.dtype)
    # the image's rows and columns inside the padded buffer (the rest of it stays zero)
    inside_rows = min(height, rows - top)
    inside_columns = min(width, columns - left)
    images = x.reshape(-1)
    group_size = channels_per_group * height * width
    for n in range(first, end):
        for g in range(groups):
            at = (n * groups + g) * group_size
            if in_place:
                source = images[at:at + group_size]
            else:
                source = padded
                for c in range(channels_per_group):
                    for r in range(inside_rows):
                        into = padded[(c * rows + r + top) * columns + left:]
                        taken = images[at + (c * height + r) * width:]
                        for s in range(inside_columns):
                            into[s] = taken[s]
            for b in range(blocks):
                taps = weight_lanes[g, b]
                valid = min(lanes, outs - b * lanes)
                first_out = g * outs + b * lanes
                for y in range(out_height):
                    for q in range(0, out_width, PIXELS):
                        for a in range(PIXELS * lanes):
                            totals[a] = 0
                        origin = np.uintp(y * sh * row_stride + q * sw)
                        # sums[p] (lanes,) += source[tap's cell of pixel q + p] * taps[t]
                        # (lanes,), for the K taps t and the PIXELS pixels p, TAP_BLOCK taps
                        # at a time, each block's sums added into the totals
                        for t_first in range(0, k, TAP_BLOCK):
                            t_end = min(k, t_first + TAP_BLOCK)
                            for a in range(PIXELS * lanes):
                                sums[a] = 0
                            if sw == 1:     # (pixels one apart: constant offsets)
                                for t in range(t_first, t_end):
                                    cells = source[origin + offsets[t]:]
                                    for p in range(PIXELS):
                                        simd.fma_lanes(sums, p * lanes, cells[np.uintp(p)],
                                                       taps, t * lanes)
                            else:
                                for t in range(t_first, t_end):
                                    cell = origin + offsets[t]
                                    for p in range(PIXELS):
                                        simd.fma_lanes(sums, p * lanes,
                                                       source[cell + np.uintp(p) * step],
                                                       taps, t * lanes)
                            for a in range(PIXELS * lanes):
                                totals[a] += sums[a]
                        count = min(PIXELS, out_width - q)
                        if valid == lanes and count == PIXELS:
                            # a whole block: loops of constant length, stores unrolled
                            for lane in range(lanes):
                                value = bias[first_out + lane]
                                for p in range(PIXELS):
                                    out[n, first_out + lane, y, q + p] = \
                                        totals[p * lanes + lane] + value
                            continue
                        for lane in range(valid):
                            value = bias[first_out + lane]
                            into = out[n, first_out + lane, y, q:q + count]
                            for p in range(count):
                                into[p] = totals[p * lanes + lane] + value


@jit()
def _pixels_kernel(x, weight_columns, bias, out, geometry, first, end):
    """`_forward_kernel` with the lanes holding neighbouring outputs of a row (stride 1 along
    the rows) and CHANNELS output channels a block: weight_columns (G, blocks, K *
    CHANNELS); the padded copy has whole blocks of `lanes` columns."""
    kh, kw, sh, sw, dh, dw, top, left, rows, columns = geometry
    groups, blocks = weight_columns.shape[0], weight_columns.shape[1]
    channels_per_group = x.shape[1] // groups
    height, width = x.shape[2], x.shape[3]
    outs = out.shape[1] // groups
    out_height, out_width = out.shape[2], out.shape[3]
    lanes = simd.lanes(out)
    sums = simd.stack_block(out.dtype)      # CHANNELS vectors of sums, in registers
    totals = simd.stack_block(out.dtype)
    # tap t = (c, i, j) of the outputs from (y, q) on reads padded[y*sh*columns + q +
    # offsets[t]:][:lanes]
    k = channels_per_group * kh * kw
    offsets = np.empty(k, np.uintp)
    for c in range(channels_per_group):
        for i in range(kh):
            for j in range(kw):
                offsets[(c * kh + i) * kw + j] = (c * rows + i * dh) * columns + j * dw
    padded = np.zeros(channels_per_group * rows * columns, x.dtype)
    inside_rows = min(height, rows - top)
    inside_columns = min(width, columns - left)
    images = x.reshape(-1)
    group_size = channels_per_group * height * width
    for n in range(first, end):
        for g in range(groups):
            at = (n * groups + g) * group_size
            for c in range(channels_per_group):
                for r in range(inside_rows):
                    into = padded[(c * rows + r + top) * columns + left:]
                    taken = images[at + (c * height + r) * width:]
                    for s in range(inside_columns):
                        into[s] = taken[s]
            for b in range(blocks):
                taps = weight_columns[g, b]
                valid = min(CHANNELS, outs - b * CHANNELS)
                first_out = g * outs + b * CHANNELS
                for y in range(out_height):
                    for q in range(0, out_width, lanes):
                        for a in range(CHANNELS * lanes):
                            totals[a] = 0
                        origin = np.uintp(y * sh * columns + q)
                        # sums[o] (lanes,) += taps[t, o] * padded[tap t's cells of outputs
                        # q ... q + lanes - 1] (lanes,), TAP_BLOCK taps at a time
                        for t_first in range(0, k, TAP_BLOCK):
                            t_end = min(k, t_first + TAP_BLOCK)
                            for a in range(CHANNELS * lanes):
                                sums[a] = 0
                            for t in range(t_first, t_end):
                                cells = origin + offsets[t]
                                for o in range(CHANNELS):
                                    simd.fma_lanes(sums, o * lanes, taps[t * CHANNELS + o],
                                                   padded, cells)
                            for a in range(CHANNELS * lanes):
                                totals[a] += sums[a]
                        count = min(lanes, out_width - q)
                        for o in range(valid):
                            value = bias[first_out + o]
                            into = out[n, first_out + o, y, q:q + count]
                            for p in range(count):
                                into[p] = totals[o * lanes + p] + value


def forward(x, weight, bias, window: Window2d, groups: int,
            budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """conv2d forward, out (N, C_out, H_out, W_out) with

        H_out = (H + top + bottom - dh*(kh-1) - 1) // sh + 1   (W_out alike)

    e.g. x (256, 6, 14, 14), weight (16, 6, 5, 5) -> out (256, 16, 10, 10)."""
    n, c_out = x.shape[0], weight.shape[0]
    dtype = x.dtype
    x = np.ascontiguousarray(x)
    bias = np.zeros(c_out, dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    out = np.empty((n, c_out, window.out_height, window.out_width), dtype)
    (top, _), (left, _) = window.padding
    geometry = (*weight.shape[2:], *window.stride, *window.dilation, top, left,
                *_padded_size(weight.shape, window, groups, dtype))
    if _by_pixels(weight.shape, window, groups):
        kernel = _pixels_kernel
        arguments = (x, _weight_columns(weight, groups, dtype), bias, out, geometry)
    else:
        kernel = _forward_kernel
        in_place = _reads_in_place(x.shape, weight.shape, window, groups, dtype)
        arguments = (x, _weight_lanes(weight, groups, dtype), bias, out, geometry, in_place)
    # threads: as many as hold a padded buffer within the budget, one image each at least
    fixed = least_bytes(x.shape, weight.shape, window, groups, dtype, "forward")
    work = out.size * int(np.prod(weight.shape[1:]))
    threads = 1 if work < MIN_PARALLEL_SIZE * 32 else int(
        max(1, min(active(), n, budget // max(fixed, 1))))
    bounds = [n * k // threads for k in range(threads + 1)]
    pool = helper_pool()
    futures = [pool.submit(kernel, *arguments, bounds[k], bounds[k + 1])
               for k in range(1, threads)]
    kernel(*arguments, bounds[0], bounds[1])
    for future in futures:
        future.result()
    return out


# Where lanes wins: the planner asks it after pointwise and the FFT, before the direct engine
# (plan._rule, which leaves Winograd's 3x3 stride-1 layers to Winograd). Output channels in
# lanes: each group has at least this many output channels (a float32 vector's lanes) ...
RULE_MIN_OUTPUTS = 16
# ... its output rows fill at least this share of their blocks of PIXELS (widths 4-5, 8-10
# and from 12: 6 fills 0.6, 7 0.7, 11 0.73); outputs in lanes: the output channels fill as
# much of their blocks of CHANNELS (5-6, 10-12, from 15), the rows of their blocks of 16 ...
RULE_MIN_FILLED = Fraction(4, 5)
# ... a block's weights (K vectors) stay within this many bytes of float32: the core's L1
# and L2 (K <= 1024; measured up to K = 576) ...
RULE_MAX_WEIGHT_BYTES = 64 * 2**10
# ... and, outputs in lanes, the window is at least this long (with fewer taps a block's
# set-up and stores outweigh its multiply-adds: 1 -> 6 3x3, K 9: 0.66 ms against direct's 0.42)
RULE_MIN_TAPS_BY_PIXELS = 25


def _fills(count: int, block: int) -> bool:
    """Whether `count` fills at least RULE_MIN_FILLED of its blocks of `block`."""
    return count >= RULE_MIN_FILLED * (-(-count // block) * block)


def rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """The forward pass; output channels in lanes: Og >= 16 per group, output rows that fill
    >= 4/5 of their blocks of PIXELS, K*64 bytes <= 64 KiB; outputs in lanes (Og < 16,
    stride 1 along rows): K >= 25, Og and W_out filling >= 4/5 of their blocks of CHANNELS
    and 16. Shape arithmetic: lanes computes whole blocks of output channels and columns at
    the core's multiply-add peak, without the unrolled copy of K numbers per output that
    im2col (unrolled, gemm) pays, a cost that weighs more the fewer output channels share it,
    nor the loads and stores of the sums every 8 taps of the direct engine. Measured (2
    threads, AMD EPYC with AVX-512, ms, lanes against the rules' choice before it):

    * LeNet's second layer, 6 -> 16 5x5 on 14x14, N=256: 0.77-1.04 against unrolled's
      1.25-1.64; 16 -> 16 5x5 on 12x12: 0.44 / 0.62; 32 -> 48 3x3 stride 2 on 32x32: 1.56 /
      4.74; 8 -> 24 3x3 stride 2: 0.45 / 0.57;
    * stems: 3 -> 64 7x7 stride 2 on 224x224, N=8: 10.6-11.2 against im2col's 15.9-16.8;
      D2L's ResNet-18, 1 -> 64 7x7 stride 2 on 96x96, N=64: 7.4-8.9 against direct's 11.5;
      3 -> 64 3x3 stride 2 on 64x64: 1.27 / 1.49 (direct); 3 -> 32 3x3 on 32x32: 0.66 /
      0.69;
    * im2col's layers: ResNet-18's 64 -> 128 3x3 stride 2 on 24x24: 8.9-11.2 / 14.2;
      64 -> 64 3x3 dilation 2 on 28x28: 6.1 / 13.1; 32 -> 32 5x5 on 28x28: 6.5 / 16.9;
      16 -> 32 3x3 on 32x32: 1.9 / 5.8;
    * outputs in lanes: LeNet's first layer, 1 -> 6 5x5 pad 2 on 28x28, N=256: 0.61-0.66
      against direct's 0.81; 6 -> 6 3x3 on 28x28: 0.31 / 0.45; 3 -> 12 3x3 on 32x32: 0.40 /
      0.53; 3 -> 6 5x5: 1.05 / 1.22; 8 -> 12 3x3 on 16x16: 0.25 against unrolled's 0.35;
    * left out: 1 -> 6 3x3 (K 9): 0.66 against direct's 0.42, one channel 3x3: 0.44 / 0.15;
      1 -> 4 5x5 (4 of 6 channels): 0.57 / 0.60; 6x6 outputs (ResNet-18's 128 -> 256 stride
      2, 2 blocks of 5 for 6 columns): 11.0 against im2col's 9.5; Winograd's 3x3 stride-1
      layers: 0.7-0.9x Winograd's speed.

    The arithmetic is the same on an AVX2 machine (a 64-byte vector is two AVX2 registers,
    the same lanes, PIXELS and CHANNELS, half the peak on both sides of each comparison).
    """
    if pass_name != "forward":
        return False
    c_out, channels_per_group, kh, kw = weight_shape
    outs, k = c_out // groups, channels_per_group * kh * kw
    if _by_pixels(weight_shape, window, groups):
        return (k >= RULE_MIN_TAPS_BY_PIXELS and _fills(outs, CHANNELS)
                and _fills(window.out_width, simd.lanes_of(np.float32))
                and k * CHANNELS * 4 <= RULE_MAX_WEIGHT_BYTES)
    return (outs >= RULE_MIN_OUTPUTS and _fills(window.out_width, PIXELS)
            and k * simd.lanes_of(np.float32) * 4 <= RULE_MAX_WEIGHT_BYTES)
