"""Direct convolution with the output channels (or neighbouring outputs) in vector lanes
("lanes"): passes at the machine's multiply-add peak, without unrolling the windows.

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
loads, bounds it. Then the block's sums plus the bias (a vector multiply-add of 1 and the
bias: the same rounding as the sum) are written to out[n, o, y, q + p], transposed by
shuffles (`simd.store_columns`; the paired kernel below, by squares).
Output channels come in blocks of `lanes` (the last one padded with zero weights, its
extra lanes dropped); a row's last block of pixels computes past W_out into the padded
buffer's spare columns, dropped too.

PIXELS = 5: five vectors of sums take 5 AVX-512 registers (10 AVX2 ones, of 16), leaving
room for the tap's weights and the broadcasts; a loop of ten pixels spilled its sums to the
stack (measured: 36 GFLOP/s against 92 with five, one core with AVX-512, LeNet's second
layer).

The scalar work per tap. Each tap's multiply-adds come with the instructions that find its
cell, and on a core whose time another thread shares (these VMs' cores each run at about
half speed for seconds at a time, as if a neighbour ran on the core's other hyperthread) the
core's instruction dispatch, not its multiply-add units, sets the pace: there corrnet's stem
lost 40-60% of its speed, PyTorch's 15-20%. So the loops index with unsigned numbers (no
negative-index fix-ups) and no slices, and take strides 1 and 2 (the weight gradient's
undilated taps) as constants, each pixel's cell an immediate offset: the AVX2 loop of the
stride-2 stem from about 60 instructions per 20 multiply-adds to 41. Measured on an AMD EPYC
(AVX2, one thread, each core in turn, interleaved with PyTorch; the same numbers out):
LeNet's second layer forward 2.8-3.3 ms -> 1.6-2.4 (PyTorch 2.5-3.1), its weight gradient
3.1-4.2 -> 2.1-3.0 (PyTorch 3.0-4.3); the suite's stem (N=2) 9.0-11.3 -> 7.4-9.5 in the slow
spells (an outlier each: 14.5, 12.3), level in the others; ResNet-18's 64 -> 128 3x3 stride
2 (N=64) 23-51 -> 23-30 (PyTorch 19-27). The paired kernel below, compiled for an AVX-512
Xeon (Sapphire Rapids) here: its main loops from 53 instructions per 20 multiply-adds to
29-47 (not timed there).

With AVX-512 (32 registers: `_pairs_blocks`), a pass keeps two blocks of sums, 2 * PIXELS
vectors (`_paired_kernel`; `_pairing` says which): two blocks of output channels at the
same PIXELS outputs where a group has an even number of blocks, each cell's broadcast
serving both,

    for each tap t:                 w_t, v_t = weight_lanes[g, b, t], weight_lanes[g, b+1, t]
        for p in 0 .. PIXELS-1:
            cell = padded[c, y*sh + i*dh, (q + p)*sw + j*dw]
            sums[p] += cell * w_t;  sums[PIXELS + p] += cell * v_t

or else one block at 2 * PIXELS outputs of a row, where the rows fill those (LeNet's second
layer: 16 channels, rows of 10). A core that multiply-adds two vectors a cycle, each
taking 4 cycles (Intel's AVX-512 cores), needs 8 sums in flight to keep both busy: with one
block's 5 it runs at 5/8 of its peak at most. Measured on an Intel Xeon
(Emerald Rapids, 2 threads, interleaved, the same numbers as one block a pass): the suite's
stem 3 -> 64 7x7 stride 2 on 224x224 1.28-1.44x faster, D2L's ResNet-18 stem 1 -> 64 on
96x96 1.20-1.37x, 64 -> 128 3x3 stride 2 1.40-1.47x, 32 -> 32 5x5 1.49-1.52x, 16 -> 32 3x3
1.49-1.68x, LeNet's second layer 1.23-1.26x. With AVX2 (16 registers, two to a 64-byte
vector) one block's sums already take 10; two would live on the stack.

The paired kernel keeps each pass's sums (with the bias) in a row of sums per block, pixel
by pixel, and writes a finished row out in squares of lanes x lanes numbers, each
transposed in registers and stored as one run of `lanes` outputs per output channel
(`simd.store_transposed`, `_write_squares`): about a third of the shuffles of
`store_columns`, and whole vectors stored instead of runs of PIXELS. Each pass of the next
row writes one or two of those squares, so that the stores, each to a line of memory not
yet in the cache, come among the multiply-adds (written as one burst at the end of the
row, the suite's stem was 3-6% slower than with `store_columns`). Measured against
`store_columns` after each pass (Intel Xeon, 2 threads, interleaved, eight processes): the
suite's stem 0.98-1.07x the speed, LeNet's second layer 1.02-1.22x, D2L's ResNet-18 stem
(1 -> 64, 7x7 stride 2 on 96x96, N=64) 0.95-1.33x (1.13 or more in six), 16 -> 40 3x3 on
30x30 1.08-1.20x, 64 -> 128 3x3 stride 2 on 24x24 0.97-1.01x; the same numbers. The one-block
kernel keeps `store_columns`: its five sums in flight leave the multiply-add units idle
part of the time, which the shuffles fill (rows of sums there: LeNet's second layer
0.92-0.96x).

Few output channels (Og < 16, LeNet's first layer: 1 -> 6, 5x5 on 28x28), stride 1 along
the rows: the lanes hold `lanes` neighbouring outputs of one row instead (`_pixels_kernel`),
and CHANNELS output channels keep one vector of sums each:

    for each tap t:                                  cells = padded[c, y*sh + i*dh, q + j*dw:]
        for o in 0 .. CHANNELS-1:
            sums[o] (lanes,) += weight[o, c, i, j] * cells[:lanes]

one vector load of the input and CHANNELS broadcast multiply-adds. CHANNELS = 6: 6 AVX-512
registers of sums, 12 AVX2 ones (of 16); blocks of output channels padded with zero weights,
rows with spare columns, both dropped. The taps run in the order (i, c, j), so that each
output row sums only the run of taps whose window rows read the image, not the zero padding
above or below it (`_tap_runs`): the input gradient's forward pass over an output gradient
padded by the kernel's reach (below) skips 20 of the 70 tap rows of LeNet's second layer.
Measured, LeNet's first layer, N=256, one thread: 1.07 ms against the direct engine's 1.39
(its passes load and store the sums every 8 taps).

Each image's channels of one group are copied into a zero-padded buffer per thread (the
padding, and spare columns for the last block of pixels), except where no padding or spare
column is needed (LeNet's second layer: 10 = 2 blocks of 5), where the channel kernel reads
the image in place. Taps are summed TAP_BLOCK at a time, each block's sums added into
totals (float32 accuracy). corrnet's threads take the images a few at a time from a shared
counter (`threads.run_shared`, `_images_per_take`), so that a helper thread woken late, or
on a core that runs slower for a while, takes fewer;
the weight gradient, whose sums per thread would then depend on the timing, gives each
thread a fixed run of images (`_in_parallel`).

The other passes use the same register blocking:

* grad_input, stride 1: the forward pass of the output gradient, padded by the kernel's
  reach, over the kernel turned by 180 degrees with its channels swapped (`_transposed`);
* grad_weight: output channels in lanes, PIXELS taps of a tap row a block, the sums over
  the outputs (`_grad_weight_kernel`): one vector load of the output gradient (transposed
  per image so that its channels are contiguous) and PIXELS broadcast multiply-adds per
  output, the sums added into float64 partial sums every PIXEL_SPAN outputs, one set per
  thread.

Compiled only (numba): `supports` says False with the compiled kernels off, and for the
input gradient of strides above 1; the planner then takes another algorithm (`rule` says
where lanes is taken). Every stride, padding, dilation and groups; float32 and float64. The
forward pass and the weight gradient keep non-finite values local: each result sums the
products PyTorch's sums (spare lanes, pixels and taps are computed and dropped); the input
gradient multiplies the zero padding of the output gradient (an inf weight gives NaN
there), and the planner checks its operands first (plan.KEEP_NON_FINITE_LOCAL).

A convolution's epilogue (`forward_epilogue`, for `corrnet.functional.fused_conv2d`): the
thread that finished an image's outputs runs the activation (sigmoid or ReLU) and the k x k
average pool on them at once, while they are in its cache (`activation.epilogue_planes`),
instead of a pass of its own over the whole output afterwards. Measured, LeNet's second
layer with its sigmoid and pool, 2 threads: 0.86 ms, against 1.01 with the epilogue's pass.

Memory: each thread holds one padded image group (Cg * padded height * padded width) and
the weight in lanes order (G * blocks * K * lanes or CHANNELS), the paired kernel two rows of
sums of two blocks (4 * lanes * about W_out); the weight gradient one
image's transposed output gradient and its float64 partial sums instead (`least_bytes`).
With an epilogue's pool, each thread also holds one image's window rows' sums (C_out *
(H_out // k) * W_out).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from . import calibration, simd
from .activation import EPILOGUE_CODES, epilogue_planes
from .jit import inline, jit, runs_compiled
from .threads import MIN_PARALLEL_SIZE, active, helper_pool, run_shared
from .windows import Window2d, make_window

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
# the weight gradient's sums go into float64 every this many outputs (whole output rows)
PIXEL_SPAN = 160
# the forward pass's threads take the images up to this many at a time (`threads.run_shared`):
# one at a time, each thread's reads jump from image to image (LeNet's second layer on 2
# threads: 0.84-0.86 ms, against 0.78-0.79 with 4); a fixed half each, the calling thread
# waits for a helper woken late (0.78-0.83)
IMAGES_PER_TAKE = 4
# ... and fewer where a take would hold more multiply-adds than this (`_images_per_take`)
TAKE_MULTIPLY_ADDS = 1 << 21


def _pairs_blocks() -> bool:
    """Whether the forward pass, output channels in lanes, may keep two blocks of sums a
    pass (`_paired_kernel`): where the CPU has AVX-512, whose 32 vector registers hold 2 *
    PIXELS vectors of sums besides two vectors of taps and the broadcast cell (see the module
    docstring)."""
    return calibration.has_avx512()


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
             pass_name: str) -> bool:
    """The forward pass and weight gradient of every convolution of float32/float64, and the
    input gradient of those with stride 1; compiled kernels on."""
    return (len(x_shape) == 4 and runs_compiled(dtype)
            and (pass_name in ("forward", "grad_weight")
                 or pass_name == "grad_input" and tuple(window.stride) == (1, 1)))


class _Transposed(NamedTuple):
    """The input gradient of a stride-1 convolution as a forward pass (`grad_input`): the
    output gradient's rows and columns kept (`crop`: (top, bottom, left, right) dropped), the
    kernel turned (`weight_shape`: (C_in, Og, kh, kw)), and the window over them."""
    crop: tuple[int, int, int, int]
    grad_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    window: Window2d


def _transposed(x_shape, grad_shape, weight_shape, window: Window2d,
                groups: int) -> _Transposed:
    """grad_x = forward(grad_out padded by d*(k-1) - top rows on top and enough rows below
    for x's height (cropped where either is negative; the same along the columns), the kernel
    turned by 180 degrees with its input and output channels swapped within each group):
    x's row r receives g[r + top - i*dh] * w[i] from each tap i, and the padded correlation
    with w[kh-1-i'] sums the same terms. (x's size decides the rows below: a transposed
    convolution's output_padding adds rows past the last window, whose gradient is 0.)"""
    c_out, channels_per_group, kh, kw = weight_shape
    (dh, dw), ((top, _), (left, _)) = window.dilation, window.padding
    n, _, out_height, out_width = grad_shape
    pads = (dh * (kh - 1) - top, x_shape[2] - out_height + top,
            dw * (kw - 1) - left, x_shape[3] - out_width + left)
    crop = tuple(max(0, -pad) for pad in pads)
    kept = (n, c_out, out_height - crop[0] - crop[1], out_width - crop[2] - crop[3])
    padding = ((max(0, pads[0]), max(0, pads[1])), (max(0, pads[2]), max(0, pads[3])))
    turned = make_window("conv2d", kept[2], kept[3], (kh, kw), (1, 1), padding, (dh, dw))
    return _Transposed(crop, kept, (groups * channels_per_group, c_out // groups, kh, kw),
                       turned)


def _by_pixels(weight_shape, window: Window2d, groups: int) -> bool:
    """Whether the lanes hold neighbouring outputs of a row (`_pixels_kernel`: fewer than 16
    output channels per group, stride 1 along the rows) rather than output channels."""
    return weight_shape[0] // groups < RULE_MIN_OUTPUTS and window.stride[1] == 1


# How a pass of output channels in lanes sums (`_pairing`): one block of PIXELS outputs
# (`_forward_kernel`), two blocks of output channels at the same PIXELS outputs, or one block
# at 2 * PIXELS outputs (`_paired_kernel`)
ONE_BLOCK, CHANNEL_PAIRS, PIXEL_PAIRS = 0, 1, 2


def _pairing(weight_shape, window: Window2d, groups: int, dtype, pairs: bool) -> int:
    """ONE_BLOCK without room for two blocks of sums (`pairs`: `_pairs_blocks()`) or with
    the lanes holding outputs (`_by_pixels`); else CHANNEL_PAIRS where each group has an
    even number of blocks of output channels, PIXEL_PAIRS where its output rows fill at
    least RULE_MIN_FILLED of their blocks of 2 * PIXELS (LeNet's second layer: one block of
    16 channels, rows of 10), ONE_BLOCK otherwise."""
    if not pairs or _by_pixels(weight_shape, window, groups):
        return ONE_BLOCK
    if -(-(weight_shape[0] // groups) // simd.lanes_of(dtype)) % 2 == 0:
        return CHANNEL_PAIRS
    return PIXEL_PAIRS if _fills(window.out_width, 2 * PIXELS) else ONE_BLOCK


def _pass_pixels(pairing: int) -> int:
    """The outputs of a row that one pass of the forward kernels sums (output channels in
    lanes): 2 * PIXELS with PIXEL_PAIRS, else PIXELS."""
    return 2 * PIXELS if pairing == PIXEL_PAIRS else PIXELS


def _padded_size(weight_shape, window: Window2d, groups: int, dtype,
                 pixels: int = PIXELS) -> tuple[int, int]:
    """(rows, columns) of the buffer the windows read: the rows of H_out outputs, the columns
    of W_out rounded up to whole blocks of `pixels` (of `lanes` outputs, `_by_pixels`)."""
    (kh, kw), (sh, sw), (dh, dw) = weight_shape[2:], window.stride, window.dilation
    rows = (window.out_height - 1) * sh + (kh - 1) * dh + 1
    if _by_pixels(weight_shape, window, groups):
        block = simd.lanes_of(dtype)
        return rows, -(-window.out_width // block) * block + (kw - 1) * dw
    blocks = -(-window.out_width // pixels)
    return rows, (blocks * pixels - 1) * sw + (kw - 1) * dw + 1


def _reads_in_place(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                    pixels: int = PIXELS) -> bool:
    """Whether the windows, spare columns included, lie inside the image (no padding): then
    the kernel reads the image itself instead of a padded copy (output channels in lanes,
    `pixels` outputs a pass; `_pixels_kernel` always copies)."""
    (top, _), (left, _) = window.padding
    rows, columns = _padded_size(weight_shape, window, groups, dtype, pixels)
    return (not _by_pixels(weight_shape, window, groups) and top == 0 and left == 0
            and rows <= x_shape[2] and columns <= x_shape[3])


def _weight_lanes(weight, groups: int, dtype) -> np.ndarray:
    """weight (C_out, Cg, kh, kw) as (G, blocks, K * lanes): block b of group g holds output
    channels g*Og + b*lanes + l in lane l of each tap's vector (zeros past Og)."""
    c_out = weight.shape[0]
    outs, k = c_out // groups, math.prod(weight.shape[1:])
    lanes = simd.lanes_of(dtype)
    blocks = -(-outs // lanes)
    by_group = weight.reshape(groups, outs, k)
    if outs < blocks * lanes:
        by_group = np.zeros((groups, blocks * lanes, k), dtype)
        by_group[:, :outs] = weight.reshape(groups, outs, k)
    # (G, blocks, K, lanes) <- (G, blocks, lanes, K)
    return np.ascontiguousarray(
        by_group.reshape(groups, blocks, lanes, k).transpose(0, 1, 3, 2), dtype=dtype).reshape(
            groups, blocks, k * lanes)


def _weight_columns(weight, groups: int, dtype) -> np.ndarray:
    """weight (C_out, Cg, kh, kw) as (G, blocks, K * CHANNELS): block b of group g holds tap
    t's weights of output channels g*Og + b*CHANNELS + o at t*CHANNELS + o (zeros past Og),
    the taps in the order t = (i, c, j): tap row i of every channel together, so that the
    taps of the window rows that read the image, not its padding, are one run (`_tap_runs`)."""
    c_out = weight.shape[0]
    outs, k = c_out // groups, int(np.prod(weight.shape[1:]))
    blocks = -(-outs // CHANNELS)
    padded = np.zeros((groups, blocks * CHANNELS, k), dtype)
    # (C_out, K) with the taps (i, c, j) <- (C_out, Cg, kh, kw)
    by_rows = weight.transpose(0, 2, 1, 3).reshape(c_out, k)
    padded[:, :outs] = by_rows.reshape(groups, outs, k)
    # (G, blocks, K, CHANNELS) <- (G, blocks, CHANNELS, K)
    return np.ascontiguousarray(
        padded.reshape(groups, blocks, CHANNELS, k).transpose(0, 1, 3, 2)).reshape(
            groups, blocks, k * CHANNELS)


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name: str) -> int:
    """One thread's padded image group and the weight in lanes order; for the input
    gradient, those of its forward pass, with the turned weight and the cropped output
    gradient's copy."""
    itemsize = np.dtype(dtype).itemsize
    if pass_name == "grad_input":
        grad_shape = (x_shape[0], weight_shape[0], window.out_height, window.out_width)
        problem = _transposed(x_shape, grad_shape, weight_shape, window, groups)
        cropped = int(np.prod(problem.grad_shape)) if any(problem.crop) else 0
        return (least_bytes(problem.grad_shape, problem.weight_shape, problem.window, groups,
                            dtype, "forward")
                + (cropped + int(np.prod(weight_shape))) * itemsize)
    c_out, channels_per_group, kh, kw = weight_shape
    if pass_name == "grad_weight":
        # the padded copy, the transposed output gradient and the float64 partial sums
        lanes = simd.lanes_of(dtype)
        blocks = -(-(c_out // groups) // lanes)
        rows = _padded_size(weight_shape, window, groups, dtype)[0]
        columns = _grad_weight_columns(weight_shape, window)
        return ((channels_per_group * rows * columns + PIXELS * window.dilation[1]
                 + window.out_height * window.out_width * blocks * lanes) * itemsize
                + groups * blocks * lanes * channels_per_group * kh * kw * 8)
    pairing = _pairing(weight_shape, window, groups, dtype, _pairs_blocks())
    rows, columns = _padded_size(weight_shape, window, groups, dtype, _pass_pixels(pairing))
    block = CHANNELS if _by_pixels(weight_shape, window, groups) else simd.lanes_of(dtype)
    blocks = -(-(c_out // groups) // block)
    # `_paired_kernel`'s two rows of sums of two blocks
    row_sums = (4 * block * _row_squares(window.out_width, _pass_pixels(pairing), 2, block)[0]
                if pairing != ONE_BLOCK else 0)
    return (channels_per_group * rows * columns
            + groups * blocks * block * channels_per_group * kh * kw + row_sums) * itemsize


@inline()
def _tap_offsets(channels_per_group, kh, kw, dh, dw, row_stride, plane_size):
    """(K,): where tap t = (c, i, j) of a window reads, from the window's first cell, in a
    group's channels laid out flat (planes of plane_size, rows of row_stride); unsigned, so
    that the kernels' reads need no negative-index checks."""
    offsets = np.empty(channels_per_group * kh * kw, np.uintp)
    for c in range(channels_per_group):
        for i in range(kh):
            for j in range(kw):
                offsets[(c * kh + i) * kw + j] = (c * plane_size + i * dh * row_stride
                                                  + j * dw)
    return offsets


@inline()
def _copy_inside(group, padded, geometry, height, width):
    """Copy one image's channels of a group (Cg * H * W numbers, flat) into the zero-padded
    buffer (Cg * rows * columns) at (top, left); the image's rows and columns past the
    buffer (read by no window) are left out, and the rest of the buffer stays zero."""
    top, left, rows, columns = geometry[6], geometry[7], geometry[8], geometry[9]
    for c in range(padded.size // (rows * columns)):
        for r in range(min(height, rows - top)):
            into = padded[(c * rows + r + top) * columns + left:]
            taken = group[(c * height + r) * width:]
            for s in range(min(width, columns - left)):
                into[s] = taken[s]


@inline()
def _group_source(images, at, group_size, in_place, padded, geometry, height, width):
    """What the windows of one image's group read, flat: the image's channels in x itself
    (`images[at:at + group_size]`) where they are read in place, else the padded buffer,
    after copying them in (`_copy_inside`)."""
    group = images[at:at + group_size]
    if in_place:
        return group
    _copy_inside(group, padded, geometry, height, width)
    return padded


@inline()
def _row_squares(out_width: int, pass_pixels: int, blocks: int, lanes: int):
    """(row_pixels, squares, per_pass) of an output row's sums in `_paired_kernel`
    (`_write_squares`): the pixels one block's row of sums has room for (the passes' whole
    runs of pass_pixels, and whole squares of `lanes` pixels), the lanes x lanes squares of
    the row's `blocks` blocks, and how many of them each of the next row's passes writes.

    >>> _row_squares(112, 5, 2, 16)     # the stem: 23 passes a row, 7 squares a block
    (115, 14, 1)
    """
    passes = -(-out_width // pass_pixels)
    squares_wide = -(-out_width // lanes)
    row_pixels = max(passes * pass_pixels, squares_wide * lanes)
    squares = blocks * squares_wide
    return row_pixels, squares, -(-squares // passes)


@inline()
def _write_squares(out, flat_out, row_sums, bias, n, first_out, outs_left, y, row_at,
                   row_pixels, first_square, end_square):
    """Write squares [first_square, end_square) of output row y's sums (row_sums from
    row_at: block h's pixel p's lanes at (h * row_pixels + p) * lanes) to out[n, first_out +
    h * lanes + lane, y]. Square s holds the lanes x lanes numbers of block h = s //
    squares_wide at pixels (s % squares_wide) * lanes on, transposed in registers and written
    one run of pixels per output channel (`simd.store_transposed`). A block of fewer than
    `lanes` channels (outs_left - h * lanes of them) is written number by number, its bias
    added, at its first square.

    The passes of row y + 1 call this a few squares at a time, so that the writes, each to
    a line of memory not yet in the cache, spread among the multiply-adds rather than come
    as one burst."""
    lanes = simd.lanes(row_sums)
    out_height, out_width = out.shape[2], out.shape[3]
    plane = np.uintp(out_height * out_width)
    squares_wide = -(-out_width // lanes)
    for square in range(first_square, end_square):
        block, first = square // squares_wide, square % squares_wide * lanes
        channel = first_out + block * lanes
        at = row_at + (block * row_pixels + first) * lanes
        valid = min(lanes, outs_left - block * lanes)
        if valid == lanes:
            simd.store_transposed(flat_out, np.uintp(
                ((n * out.shape[1] + channel) * out_height + y) * out_width + first), plane,
                row_sums, at, min(lanes, out_width - first))
        elif first == 0:
            for lane in range(valid):
                value = bias[channel + lane]
                for p in range(out_width):
                    out[n, channel + lane, y, p] = row_sums[at + p * lanes + lane] + value


@jit()
def _forward_kernel(x, weight_lanes, bias, out, geometry, in_place, tap_block, epilogue,
                    pooled, images_per_take, next_image):
    """out[n] for the images n this thread takes, images_per_take at a time, from the counter
    next_image (`threads.run_shared`) until none is left: see the module docstring. x (N, C_in,
    H, W), weight_lanes (G, blocks, K * lanes), bias (C_out,), out (N, C_out, H_out, W_out);
    geometry (kh, kw, sh, sw, dh, dw, top, left, padded rows, padded columns); tap_block:
    TAP_BLOCK (an argument, so that the tests can make it small); epilogue (activation, pool
    k): each image's outputs then go through `activation.epilogue_planes`, the pool into
    pooled (N, C_out, H_out // k, W_out // k) (activation 0 and k = 0: nothing)."""
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
    offsets = _tap_offsets(channels_per_group, kh, kw, dh, dw, row_stride, plane_size)
    step = np.uintp(sw)
    padded = np.zeros(0 if in_place else channels_per_group * rows * columns, x.dtype)
    images = x.reshape(-1)
    group_size = channels_per_group * height * width
    activation, pool = epilogue
    across = np.empty(out.shape[1] * (out_height // pool if pool > 0 else 0) * out_width,
                      out.dtype)      # (the pool's scratch: `activation.average_pool_planes`)
    flat_out = out.reshape(-1)              # (whole blocks' outputs: `simd.store_columns`)
    plane = np.uintp(out_height * out_width)
    one = out.dtype.type(1)
    n = end = 0
    while True:
        if n == end:                # this thread's next images_per_take images
            n = simd.take_next(next_image) * images_per_take
            end = min(n + images_per_take, x.shape[0])
            if n >= end:
                break
        for g in range(groups):
            source = _group_source(images, (n * groups + g) * group_size, group_size,
                                   in_place, padded, geometry, height, width)
            # each output row for every block of output channels in turn, so that the rows
            # of the image its windows read stay in the core's cache (blocks outermost, each
            # block read the whole image again, from the shared cache where the image
            # outgrows the core's: the stem's padded 635 KB on an AMD EPYC's 512 KB; measured
            # level there all the same)
            for y in range(out_height):
                for b in range(blocks):
                    taps = weight_lanes[g, b]
                    valid = min(lanes, outs - b * lanes)
                    first_out = g * outs + b * lanes
                    for q in range(0, out_width, PIXELS):
                        for a in range(PIXELS * lanes):
                            totals[a] = 0
                        origin = np.uintp(y * sh * row_stride + q * sw)
                        # sums[p] (lanes,) += source[tap's cell of pixel q + p] * taps[t]
                        # (lanes,), for the K taps t and the PIXELS pixels p, tap_block taps
                        # at a time, each block's sums added into the totals
                        for t_first in range(0, k, tap_block):
                            t_end = min(k, t_first + tap_block)
                            for a in range(PIXELS * lanes):
                                sums[a] = 0
                            # (the tap and its cell as unsigned numbers: no negative-index
                            # checks; strides 1 and 2 as constants, each pixel's cell an
                            # immediate offset: the scalar instructions per tap decide the
                            # speed where another thread shares the core, see above)
                            if sw == 1:
                                for t in range(np.uintp(t_first), np.uintp(t_end)):
                                    cell = origin + offsets[t]
                                    for p in range(PIXELS):
                                        simd.fma_lanes(sums, p * lanes,
                                                       source[cell + np.uintp(p)],
                                                       taps, t * lanes)
                            elif sw == 2:
                                for t in range(np.uintp(t_first), np.uintp(t_end)):
                                    cell = origin + offsets[t]
                                    for p in range(PIXELS):
                                        simd.fma_lanes(sums, p * lanes,
                                                       source[cell + np.uintp(2 * p)],
                                                       taps, t * lanes)
                            else:
                                for t in range(np.uintp(t_first), np.uintp(t_end)):
                                    cell = origin + offsets[t]
                                    for p in range(PIXELS):
                                        simd.fma_lanes(sums, p * lanes,
                                                       source[cell + np.uintp(p) * step],
                                                       taps, t * lanes)
                            for a in range(PIXELS * lanes):
                                totals[a] += sums[a]
                        count = min(PIXELS, out_width - q)
                        if valid == lanes and count == PIXELS:
                            # a whole block: the bias added to each pixel's vector, the
                            # vectors written out transposed (each output channel's PIXELS
                            # outputs one run of out)
                            for p in range(PIXELS):
                                simd.fma_lanes(totals, p * lanes, one, bias, first_out)
                            simd.store_columns(flat_out, np.uintp(
                                ((n * out.shape[1] + first_out) * out_height + y) * out_width
                                + q), plane, totals, 0, PIXELS)
                            continue
                        for lane in range(valid):
                            value = bias[first_out + lane]
                            into = out[n, first_out + lane, y, q:q + count]
                            for p in range(count):
                                into[p] = totals[p * lanes + lane] + value
        if activation or pool:      # (the image's outputs are in the cache)
            epilogue_planes(out[n].reshape(out.shape[1], out_height * out_width), activation,
                            out_width, pool, pooled[n], across)
        n += 1


@jit()
def _paired_kernel(x, weight_lanes, bias, out, geometry, in_place, pixel_pairs, tap_block,
                   epilogue, pooled, images_per_take, next_image):
    """`_forward_kernel` with two blocks of sums a pass (see the module docstring): sums[p]
    (lanes,) for block b at pixels q + p and sums[PIXELS + p] for block b + 1 at the same
    pixels (an even number of blocks), each cell broadcast once for both; or, with
    `pixel_pairs`, for block b at pixels q + PIXELS + p (the padded copy has whole blocks of
    2 * PIXELS columns)."""
    kh, kw, sh, sw, dh, dw, top, left, rows, columns = geometry
    groups, blocks = weight_lanes.shape[0], weight_lanes.shape[1]
    channels_per_group = x.shape[1] // groups
    height, width = x.shape[2], x.shape[3]
    outs = out.shape[1] // groups
    out_height, out_width = out.shape[2], out.shape[3]
    lanes = simd.lanes(out)
    sums = simd.stack_block(out.dtype)      # 2 * PIXELS vectors of sums, in registers
    totals = simd.stack_block(out.dtype)    # the sums of the blocks of taps
    row_stride = width if in_place else columns
    plane_size = height * width if in_place else rows * columns
    k = channels_per_group * kh * kw
    offsets = _tap_offsets(channels_per_group, kh, kw, dh, dw, row_stride, plane_size)
    step = np.uintp(sw)
    padded = np.zeros(0 if in_place else channels_per_group * rows * columns, x.dtype)
    images = x.reshape(-1)
    group_size = channels_per_group * height * width
    activation, pool = epilogue
    across = np.empty(out.shape[1] * (out_height // pool if pool > 0 else 0) * out_width,
                      out.dtype)      # (the pool's scratch: `activation.average_pool_planes`)
    flat_out = out.reshape(-1)      # (`_write_squares`)
    one = out.dtype.type(1)
    # the second half of a pass: the next block at the same pixels, or the same block at
    # the next PIXELS pixels
    block_step = 0 if pixel_pairs else 1
    pixel_shift = PIXELS if pixel_pairs else 0
    # two rows' sums of the pass's one or two blocks, pixel by pixel (`_write_squares`), and
    # how many of a row's squares each pass writes of the row before
    row_pixels, squares, per_pass = _row_squares(out_width, PIXELS + pixel_shift,
                                                 1 + block_step, lanes)
    row_size = (1 + block_step) * row_pixels * lanes
    row_sums = np.empty(2 * row_size, out.dtype)
    n = end = 0
    while True:
        if n == end:                # this thread's next images_per_take images
            n = simd.take_next(next_image) * images_per_take
            end = min(n + images_per_take, x.shape[0])
            if n >= end:
                break
        for g in range(groups):
            source = _group_source(images, (n * groups + g) * group_size, group_size,
                                   in_place, padded, geometry, height, width)
            for b in range(0, blocks, 1 + block_step):
                taps, next_taps = weight_lanes[g, b], weight_lanes[g, b + block_step]
                first_out, outs_left = g * outs + b * lanes, outs - b * lanes
                written = 0         # the squares of row y - 1 written so far
                for y in range(out_height):
                    row_at = (y % 2) * row_size
                    for q in range(0, out_width, PIXELS + pixel_shift):
                        for a in range(2 * PIXELS * lanes):
                            totals[a] = 0
                        origin = np.uintp(y * sh * row_stride + q * sw)
                        # sums[p] (lanes,) += source[tap's cell of pixel q + p] * taps[t],
                        # sums[PIXELS + p] += the same cell * next_taps[t] (or the cell of
                        # pixel q + PIXELS + p * taps[t]), for the K taps t and the PIXELS
                        # pixels p, tap_block taps at a time, each block's sums added into
                        # the totals
                        for t_first in range(0, k, tap_block):
                            t_end = min(k, t_first + tap_block)
                            for a in range(2 * PIXELS * lanes):
                                sums[a] = 0
                            # (unsigned taps and cells, and strides 1 and 2 as constants:
                            # see `_forward_kernel`)
                            if pixel_pairs and sw == 1:
                                for t in range(np.uintp(t_first), np.uintp(t_end)):
                                    cell = origin + offsets[t]
                                    for p in range(2 * PIXELS):
                                        simd.fma_lanes(sums, p * lanes,
                                                       source[cell + np.uintp(p)],
                                                       taps, t * lanes)
                            elif pixel_pairs:
                                for t in range(np.uintp(t_first), np.uintp(t_end)):
                                    cell = origin + offsets[t]
                                    for p in range(2 * PIXELS):
                                        simd.fma_lanes(sums, p * lanes,
                                                       source[cell + np.uintp(p) * step],
                                                       taps, t * lanes)
                            elif sw == 2:
                                for t in range(np.uintp(t_first), np.uintp(t_end)):
                                    cell = origin + offsets[t]
                                    for p in range(PIXELS):
                                        value = source[cell + np.uintp(2 * p)]
                                        simd.fma_lanes(sums, p * lanes, value, taps, t * lanes)
                                        simd.fma_lanes(sums, (PIXELS + p) * lanes, value,
                                                       next_taps, t * lanes)
                            else:
                                for t in range(np.uintp(t_first), np.uintp(t_end)):
                                    cell = origin + offsets[t]
                                    for p in range(PIXELS):
                                        value = source[cell + np.uintp(p) * step]
                                        simd.fma_lanes(sums, p * lanes, value, taps, t * lanes)
                                        simd.fma_lanes(sums, (PIXELS + p) * lanes, value,
                                                       next_taps, t * lanes)
                            for a in range(2 * PIXELS * lanes):
                                totals[a] += sums[a]
                        # each half's PIXELS vectors (block b + half * block_step at pixels
                        # q + half * pixel_shift on), the bias added where the block is whole
                        # (a multiply-add with 1: the same rounding as a sum), kept in the
                        # row's sums (written out with the next row's passes)
                        for half in range(2):
                            block = b + half * block_step
                            sums_at = half * PIXELS * lanes
                            if outs - block * lanes >= lanes:
                                for p in range(PIXELS):
                                    simd.fma_lanes(totals, sums_at + p * lanes, one, bias,
                                                   g * outs + block * lanes)
                            at = row_at + (half * block_step * row_pixels + q
                                           + half * pixel_shift) * lanes
                            kept = row_sums[at:at + PIXELS * lanes]     # (indices from 0)
                            for a in range(PIXELS * lanes):
                                kept[a] = totals[sums_at + a]
                        if y > 0:   # a few of the row before's squares, among the sums
                            until = min(squares, written + per_pass)
                            _write_squares(out, flat_out, row_sums, bias, n, first_out,
                                           outs_left, y - 1, row_size - row_at, row_pixels,
                                           written, until)
                            written = until
                    if y > 0:       # the rest of the row before's
                        _write_squares(out, flat_out, row_sums, bias, n, first_out, outs_left,
                                       y - 1, row_size - row_at, row_pixels, written, squares)
                    written = 0
                # the last row's
                _write_squares(out, flat_out, row_sums, bias, n, first_out, outs_left,
                               out_height - 1, (out_height - 1) % 2 * row_size, row_pixels, 0,
                               squares)
        if activation or pool:      # (the image's outputs are in the cache)
            epilogue_planes(out[n].reshape(out.shape[1], out_height * out_width), activation,
                            out_width, pool, pooled[n], across)
        n += 1


@jit()
def _pixels_kernel(x, weight_columns, bias, out, geometry, tap_runs, tap_block, epilogue,
                   pooled, images_per_take, next_image):
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
    # tap t = (i, c, j) of the outputs from (y, q) on reads padded[y*sh*columns + q +
    # offsets[t]:][:lanes]
    k = channels_per_group * kh * kw
    offsets = np.empty(k, np.uintp)
    for i in range(kh):
        for c in range(channels_per_group):
            for j in range(kw):
                offsets[(i * channels_per_group + c) * kw + j] = (
                    (c * rows + i * dh) * columns + j * dw)
    padded = np.zeros(channels_per_group * rows * columns, x.dtype)
    images = x.reshape(-1)
    group_size = channels_per_group * height * width
    activation, pool = epilogue
    across = np.empty(out.shape[1] * (out_height // pool if pool > 0 else 0) * out_width,
                      out.dtype)      # (the pool's scratch: `activation.average_pool_planes`)
    n = end = 0
    while True:
        if n == end:                # this thread's next images_per_take images
            n = simd.take_next(next_image) * images_per_take
            end = min(n + images_per_take, x.shape[0])
            if n >= end:
                break
        for g in range(groups):
            at = (n * groups + g) * group_size
            _copy_inside(images[at:at + group_size], padded, geometry, height, width)
            for b in range(blocks):
                taps = weight_columns[g, b]
                valid = min(CHANNELS, outs - b * CHANNELS)
                first_out = g * outs + b * CHANNELS
                for y in range(out_height):
                    t_start, t_last = tap_runs[y, 0], tap_runs[y, 1]
                    for q in range(0, out_width, lanes):
                        for a in range(CHANNELS * lanes):
                            totals[a] = 0
                        origin = np.uintp(y * sh * columns + q)
                        # sums[o] (lanes,) += taps[t, o] * padded[tap t's cells of outputs
                        # q ... q + lanes - 1] (lanes,), the row's taps, tap_block at a time
                        for t_first in range(t_start, t_last, tap_block):
                            # (indices from range(0, ...): no negative-index checks)
                            block_offsets = offsets[t_first:min(t_last, t_first + tap_block)]
                            block_taps = taps[t_first * CHANNELS:]
                            for a in range(CHANNELS * lanes):
                                sums[a] = 0
                            for t in range(block_offsets.size):
                                cells = origin + block_offsets[t]
                                for o in range(CHANNELS):
                                    simd.fma_lanes(sums, o * lanes,
                                                   block_taps[t * CHANNELS + o], padded, cells)
                            for a in range(CHANNELS * lanes):
                                totals[a] += sums[a]
                        count = min(lanes, out_width - q)
                        for o in range(valid):
                            value = bias[first_out + o]
                            into = out[n, first_out + o, y, q:q + count]
                            for p in range(count):
                                into[p] = totals[o * lanes + p] + value
        if activation or pool:      # (the image's outputs are in the cache)
            epilogue_planes(out[n].reshape(out.shape[1], out_height * out_width), activation,
                            out_width, pool, pooled[n], across)
        n += 1


def forward(x, weight, bias, window: Window2d, groups: int,
            budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """conv2d forward, out (N, C_out, H_out, W_out) with

        H_out = (H + top + bottom - dh*(kh-1) - 1) // sh + 1   (W_out alike)

    e.g. x (256, 6, 14, 14), weight (16, 6, 5, 5) -> out (256, 16, 10, 10)."""
    return forward_epilogue(x, weight, bias, window, groups, "", 0, budget)[0]


def forward_epilogue(x, weight, bias, window: Window2d, groups: int, activation: str,
                     pool: int, budget: int = DEFAULT_BUDGET) -> tuple:
    """`forward` with a convolution's epilogue (`corrnet.functional.fused_conv2d`) run on
    each image as its outputs are done, while they are in the cache: (out, pooled), out =
    activation(conv2d(x, weight, bias)) for activation "sigmoid" (float32), "relu" or ""
    (none), and pooled its k x k average pool, stride k, no padding (k = pool; None for 0).
    Its values are `activation.bias_activation_forward`'s on the convolution's output (the
    same arithmetic, the bias added by the convolution), e.g. LeNet's second layer: x (256, 6,
    14, 14), weight (16, 6, 5, 5), "sigmoid", 2 -> out (256, 16, 10, 10), pooled (256, 16, 5,
    5)."""
    n, c_out = x.shape[0], weight.shape[0]
    dtype = x.dtype
    x = np.ascontiguousarray(x)
    bias = np.zeros(c_out, dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    out = np.empty((n, c_out, window.out_height, window.out_width), dtype)
    pooled = (np.empty((n, c_out, window.out_height // pool, window.out_width // pool), dtype)
              if pool else np.empty((n, c_out, 0, 0), dtype))
    epilogue = (EPILOGUE_CODES[activation], pool)
    by_pixels, pairing, geometry, in_place, work, thread_bytes = _forward_setup(
        x.shape, weight.shape, window, groups, dtype, _pairs_blocks())
    if by_pixels:
        kernel = _pixels_kernel
        # (an inf or NaN weight times the zero padding is NaN, as the definition's sum has
        # it: then every tap is summed)
        tap_runs = _tap_runs(x.shape, weight.shape, window,
                             bool(np.isfinite(weight).all()))
        arguments = (x, _weight_columns(weight, groups, dtype), bias, out, geometry, tap_runs,
                     TAP_BLOCK, epilogue, pooled)
    elif pairing == ONE_BLOCK:
        kernel = _forward_kernel
        arguments = (x, _weight_lanes(weight, groups, dtype), bias, out, geometry, in_place,
                     TAP_BLOCK, epilogue, pooled)
    else:
        kernel = _paired_kernel
        arguments = (x, _weight_lanes(weight, groups, dtype), bias, out, geometry, in_place,
                     pairing == PIXEL_PAIRS, TAP_BLOCK, epilogue, pooled)
    run_shared(_threads(n, work, thread_bytes, budget), kernel, *arguments,
               _images_per_take(n, work))
    return out, pooled if pool else None


def _images_per_take(n: int, work: int) -> int:
    """How many images a thread of the forward pass takes at a time: IMAGES_PER_TAKE, or
    fewer where that many would hold more than TAKE_MULTIPLY_ADDS (of `work` over n images),
    one at least. Four of the suite's stem images (3 -> 64, 7x7 stride 2 on 224x224, N=8)
    were half the batch: one take per thread, so that the pass took as long as the slower
    core's half (the cores of these VMs run at different speeds for seconds at a time).
    Measured on an AMD EPYC (AVX2, 2 threads, the threads' run times from /proc): with 4, the
    helper ran 12-17 ms of each 18-20 ms call, the calling thread all of it; with 1, both ran
    the whole call (interleaved, 14 rounds: 4 a take took 0.84-1.90x the time of 1, median
    1.04x).
    LeNet's second layer (0.25 M multiply-adds an image) keeps 4."""
    per_image = work / max(n, 1)
    return int(min(IMAGES_PER_TAKE, max(1, TAKE_MULTIPLY_ADDS // max(per_image, 1))))


@functools.lru_cache(maxsize=256)
def _forward_setup(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                   pairs: bool) -> tuple:
    """What `forward` computes from the shapes alone, once per problem (its Python costs
    15 of the 22 microseconds of a one-image call of LeNet's second layer): (by pixels, the
    pairing, the kernel's geometry, whether it reads x in place, the multiply-adds, one
    thread's bytes); `pairs`: `_pairs_blocks()`."""
    (top, _), (left, _) = window.padding
    pairing = _pairing(weight_shape, window, groups, dtype, pairs)
    pixels = _pass_pixels(pairing)
    geometry = (*weight_shape[2:], *window.stride, *window.dilation, top, left,
                *_padded_size(weight_shape, window, groups, dtype, pixels))
    work = x_shape[0] * weight_shape[0] * window.out_height * window.out_width * math.prod(
        weight_shape[1:])
    return (_by_pixels(weight_shape, window, groups), pairing, geometry,
            _reads_in_place(x_shape, weight_shape, window, groups, dtype, pixels), work,
            least_bytes(x_shape, weight_shape, window, groups, dtype, "forward"))


@functools.lru_cache(maxsize=256)
def _tap_runs(x_shape, weight_shape, window: Window2d, skip_padding: bool) -> np.ndarray:
    """(H_out, 2): the taps [first, end), in `_weight_columns`'s order, that `_pixels_kernel`
    sums for output row y: with skip_padding, those of the window rows i that read the image
    rather than the zero padding above or below it (top <= y*sh + i*dh < top + H: a run of
    i, so a run of taps), else all K. A row whose window lies in the padding sums none: its
    outputs are the bias. E.g. LeNet's second layer's input gradient (a 5x5 window over 10
    rows padded by 4) sums 50 of the 70 tap rows of its 14 output rows.

    >>> _tap_runs((1, 1, 2, 2), (1, 1, 3, 1), make_window("conv2d", 2, 2, (3, 1), (1, 1),
    ...           ((1, 1), (0, 0)), (1, 1)), True).tolist()
    [[1, 3], [0, 2]]

    Read-only, and kept per set of arguments (shape tuples: NumPy's passes over so few
    numbers cost 65 microseconds a call, a tenth of LeNet's first layer).
    """
    _, channels_per_group, kh, kw = weight_shape
    (sh, _), (dh, _), ((top, _), _) = window.stride, window.dilation, window.padding
    row_taps = channels_per_group * kw
    out_rows = np.arange(window.out_height) * sh
    if not skip_padding:
        first, end = np.zeros_like(out_rows), np.full_like(out_rows, kh)
    else:
        # the least i with y*sh + i*dh >= top, and the least with >= top + H (ceilings)
        first = np.clip(-((out_rows - top) // dh), 0, kh)
        end = np.clip(-((out_rows - top - x_shape[2]) // dh), first, kh)
    runs = np.ascontiguousarray(np.stack([first, end], axis=1) * row_taps, dtype=np.int64)
    runs.flags.writeable = False
    return runs


def _threads(n: int, work: int, thread_bytes: int, budget: int) -> int:
    """Threads for a pass of `work` multiply-adds over n images: corrnet's count (`active`)
    from 32 * MIN_PARALLEL_SIZE multiply-adds on, as many as hold their buffers
    (`thread_bytes` each) within the budget, one image each at least."""
    if work < MIN_PARALLEL_SIZE * 32:
        return 1
    return int(max(1, min(active(), n, budget // max(thread_bytes, 1))))


def _in_parallel(n: int, threads: int, run_piece) -> None:
    """run_piece(piece, first, end) for `threads` runs [first, end) of the n images, piece 0
    on the calling thread and the others on corrnet's helper threads."""
    bounds = [n * piece // threads for piece in range(threads + 1)]
    pool = helper_pool()
    futures = [pool.submit(run_piece, piece, bounds[piece], bounds[piece + 1])
               for piece in range(1, threads)]
    run_piece(0, bounds[0], bounds[1])
    for future in futures:
        future.result()


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
               budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d x of a stride-1 convolution, (N, C_in, H, W): the forward pass of the
    output gradient over the kernel turned by 180 degrees, its channels swapped within each
    group (`_transposed`), e.g. grad_out (256, 16, 10, 10), weight (16, 6, 5, 5) -> a
    16 -> 6 5x5 forward pass on 10x10 padded by 4: (256, 6, 14, 14)."""
    problem = _transposed(x_shape, grad_out.shape, weight.shape, window, groups)
    top, bottom, left, right = problem.crop
    kept = grad_out[:, :, top:grad_out.shape[2] - bottom, left:grad_out.shape[3] - right]
    c_out, channels_per_group, kh, kw = weight.shape
    outs = c_out // groups
    # (C_in, Og, kh, kw): turned[g*Cg + c, o] = weight[g*Og + o, c] turned by 180 degrees
    turned = weight[:, :, ::-1, ::-1].reshape(groups, outs, channels_per_group, kh, kw)
    turned = turned.transpose(0, 2, 1, 3, 4).reshape(problem.weight_shape)
    grad_x = forward(kept, turned, None, problem.window, groups, budget)
    assert grad_x.shape == tuple(x_shape), (grad_x.shape, x_shape)
    return grad_x


def _grad_weight_columns(weight_shape, window: Window2d) -> int:
    """The padded copy's columns for the weight gradient: each row's windows, kw rounded up
    to whole blocks of PIXELS taps (the spare taps read spare columns, their sums dropped)."""
    kw, sw, dw = weight_shape[3], window.stride[1], window.dilation[1]
    return (window.out_width - 1) * sw + (-(-kw // PIXELS) * PIXELS - 1) * dw + 1


@jit()
def _grad_weight_kernel(x, grad_out, partial, geometry, span, piece, first, end):
    """partial[piece] (G, blocks, K * lanes), float64, += the weight gradient of the images n
    in [first, end), output channels in lanes: for each tap row (c, i) and PIXELS taps j of
    it at a time, a vector of sums per tap (in registers) over the outputs (y, q),

        sums[j] (lanes,) += padded[c, y*sh + i*dh, q*sw + j*dw] * grad[n, (y, q), lanes]

    one vector load of the output gradient (its channels, transposed per image into
    `grad_rows`) and PIXELS broadcast multiply-adds per output; the sums go into the float64
    partial sums every `span` outputs (PIXEL_SPAN, in whole output rows; float32 accuracy).
    x (N, C_in, H, W), grad_out (N, C_out, H_out, W_out) (any strides); geometry as
    `_forward_kernel`'s."""
    kh, kw, sh, sw, dh, dw, top, left, rows, columns = geometry
    groups, blocks = partial.shape[1], partial.shape[2]
    channels_per_group = x.shape[1] // groups
    height, width = x.shape[2], x.shape[3]
    outs = grad_out.shape[1] // groups
    out_height, out_width = grad_out.shape[2], grad_out.shape[3]
    lanes = simd.lanes(x)
    sums = simd.stack_block(x.dtype)      # PIXELS vectors of sums, in registers
    # (rows of PIXELS*dw spare numbers past the last row: the spare taps' reads)
    padded = np.zeros(channels_per_group * rows * columns + PIXELS * dw, x.dtype)
    grad_rows = np.zeros(out_height * out_width * blocks * lanes, x.dtype)
    inside_rows = min(height, rows - top)
    inside_columns = min(width, columns - left)
    row_span = max(1, span // out_width)     # output rows between two flushes
    for n in range(first, end):
        for g in range(groups):
            for c in range(channels_per_group):
                plane = x[n, g * channels_per_group + c]
                for r in range(inside_rows):
                    into = padded[(c * rows + r + top) * columns + left:]
                    taken = plane[r]
                    for s in range(inside_columns):
                        into[s] = taken[s]
            # (H_out*W_out, blocks*lanes) <- (Og, H_out, W_out), lanes past Og zero
            for o in range(outs):
                grad_plane = grad_out[n, g * outs + o]
                for y in range(out_height):
                    for q in range(out_width):
                        grad_rows[(y * out_width + q) * blocks * lanes + o] = grad_plane[y, q]
            for b in range(blocks):
                sums_of = partial[piece, g, b]
                for c in range(channels_per_group):
                    for i in range(kh):
                        for j_first in range(0, kw, PIXELS):
                            count = min(PIXELS, kw - j_first)
                            for y_first in range(0, out_height, row_span):
                                for a in range(PIXELS * lanes):
                                    sums[a] = 0
                                for y in range(y_first, min(out_height, y_first + row_span)):
                                    start = np.uintp((c * rows + y * sh + i * dh) * columns
                                                     + j_first * dw)
                                    # (cells as unsigned numbers, and undilated taps
                                    # at constant offsets: see `_forward_kernel`)
                                    for q in range(out_width):
                                        cell = start + np.uintp(q * sw)
                                        at = (y * out_width + q) * blocks * lanes + b * lanes
                                        if dw == 1:
                                            for jj in range(PIXELS):
                                                simd.fma_lanes(sums, jj * lanes,
                                                               padded[cell + np.uintp(jj)],
                                                               grad_rows, at)
                                        else:
                                            for jj in range(PIXELS):
                                                simd.fma_lanes(sums, jj * lanes,
                                                               padded[cell + np.uintp(jj * dw)],
                                                               grad_rows, at)
                                for jj in range(count):
                                    t = (c * kh + i) * kw + j_first + jj
                                    simd.add_lanes(sums_of, t * lanes, sums, jj * lanes)


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int,
                budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d weight (C_out, Cg, kh, kw), the output channels in lanes
    (`_grad_weight_kernel`), summed per thread in float64, e.g. x (256, 6, 14, 14),
    grad_out (256, 16, 10, 10) -> (16, 6, 5, 5)."""
    n, dtype = x.shape[0], x.dtype
    c_out, channels_per_group, kh, kw = weight_shape
    outs, k = c_out // groups, channels_per_group * kh * kw
    lanes = simd.lanes_of(dtype)
    blocks = -(-outs // lanes)
    (top, _), (left, _) = window.padding
    rows = _padded_size(weight_shape, window, groups, dtype)[0]
    geometry = (kh, kw, *window.stride, *window.dilation, top, left, rows,
                _grad_weight_columns(weight_shape, window))
    x = np.ascontiguousarray(x)
    threads = _threads(n, grad_out.size * k,
                       least_bytes(x.shape, weight_shape, window, groups, dtype, "grad_weight"),
                       budget)
    partial = np.zeros((threads, groups, blocks, k * lanes), np.float64)
    _in_parallel(n, threads, lambda piece, first, end: _grad_weight_kernel(
        x, grad_out, partial, geometry, PIXEL_SPAN, piece, first, end))
    # (G, blocks*lanes, K) <- (G, blocks, K, lanes), then the Og channels of each group
    summed = partial.sum(axis=0).reshape(groups, blocks, k, lanes).transpose(0, 1, 3, 2)
    summed = summed.reshape(groups, blocks * lanes, k)[:, :outs]
    return summed.astype(dtype).reshape(weight_shape)


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
# The weight gradient: the output gradient of one image, transposed to (H_out*W_out,
# C_out), stays within this many bytes of float32 (a core's L2: each tap row's pass reads it
# again; the suite's stem, 3.2 MB, ran at 0.56x im2col's speed) ...
RULE_MAX_GRAD_ROWS_BYTES = 256 * 2**10
# ... on maps of at least this many outputs (each tap row's sums go into the float64 sums
# once per image: 6x6 maps, 64 -> 64 3x3: 1.10 ms against im2col's 0.95; 8x8: 3.1 / 3.8) ...
RULE_MIN_MAP = 64
# ... with at most this many output channels per group: lanes sums one block of them at a
# time at a fixed share of the core's peak, while im2col's GEMM gets closer to BLAS's peak
# the more output channels (its N) share each unrolled window; at 128 it has caught up on
# both kinds of machine (ResNet-18's 64 -> 128 3x3 stride 2 on 24x24, N=64: lanes 16.7 ms
# against 17.3 on the AMD EPYC, 16.7-29.7 against 14.6-16.8 on the Intel Xeon; 32 -> 128
# stride 2 on 32x32: 12.3 / 8.6 on the Xeon, where 64 channels still go to lanes: 32 -> 64
# stride 2, 3.9 / 4.7; 64 -> 64 dilation 2, 10.3 / 11.6) ...
RULE_MAX_GRAD_WEIGHT_OUTPUTS = 64
# ... and the input gradient, a forward pass over the output gradient padded by the
# kernel's reach, computes at most this many times the products of its definition
# (`_growth`: LeNet's second layer, 1.4 with the padding's rows skipped, 1.28 ms against
# unrolled's 1.54; 1.96 without, level with it; 16 -> 16 5x5 on 12x12, 2.25: 3.13 / 2.61).
RULE_MAX_GROWTH = Fraction(3, 2)
# ... and, outputs in lanes, the window is at least this long (with fewer taps a block's
# set-up and stores outweigh its multiply-adds: 1 -> 6 3x3, K 9: 0.66 ms against direct's 0.42)
RULE_MIN_TAPS_BY_PIXELS = 25


def _growth(x_shape, weight_shape, window: Window2d, groups: int) -> Fraction:
    """The products the stride-1 input gradient computes over those of its definition (kh*kw
    per output-gradient value): its forward pass computes, for each of x's H*W outputs, the
    taps of the window rows that read the output gradient (`_tap_runs`, outputs in lanes), or
    all kh*kw (output channels in lanes). E.g. LeNet's second layer, 14x14 from 10x10, 5x5:
    50 of 70 window rows, 14 * 50 * 5 / (10 * 10 * 25) = 1.4."""
    kh, kw = weight_shape[2:]
    grad_shape = (x_shape[0], weight_shape[0], window.out_height, window.out_width)
    problem = _transposed(x_shape, grad_shape, weight_shape, window, groups)
    if _by_pixels(problem.weight_shape, problem.window, groups):
        runs = _tap_runs(problem.grad_shape, problem.weight_shape, problem.window, True)
        row_taps = problem.weight_shape[1] * kw
        computed = int((runs[:, 1] - runs[:, 0]).sum()) // row_taps * kw * x_shape[3]
    else:
        computed = x_shape[2] * x_shape[3] * kh * kw
    return Fraction(computed, window.out_height * window.out_width * kh * kw)


def _fills(count: int, block: int) -> bool:
    """Whether `count` fills at least RULE_MIN_FILLED of its blocks of `block`."""
    return count >= RULE_MIN_FILLED * (-(-count // block) * block)


def rule(pass_name, x_shape, weight_shape, window: Window2d, groups: int) -> bool:
    """The forward pass, output channels in lanes: Og >= 16 per group, output rows that fill
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

    The weight gradient: 16 <= Og <= 64, K*64 bytes <= 64 KiB, one image's transposed
    output gradient within 256 KiB and at least 64 outputs a map. The input gradient, stride 1: the
    rule for the forward pass it is (`_transposed`), computing at most 3/2 of the products
    of its definition (`_growth`).
    Measured as above, lanes against the rules' choice before it, (weight gradient; input
    gradient):

    * im2col's layers: 16 -> 32 3x3 on 32x32, N=32: 3.4 / 13.5; 3.2 / 9.7; 64 -> 64 3x3
      dilation 2 on 28x28: 11.1 / 18.0; 9.6 / 16.0; 32 -> 32 5x5 on 28x28: 9.8 / 23.0;
      10.3 / 29.4; ResNet-18's 64 -> 128 stride 2: 16.7 / 17.3 (weight gradient; left
      out since: Og 128, see RULE_MAX_GRAD_WEIGHT_OUTPUTS);
    * unrolled's: LeNet's second layer 1.42 / 1.58 (weight gradient); 16 -> 16 5x5 on
      12x12: 0.71 / 0.89;
    * unrolled's input gradient of LeNet's second layer, with the padding's rows skipped
      (growth 1.4): 1.28 / 1.54;
    * * left out: the same without skipping rows (growth 1.96): 1.97 / 1.94; 16 -> 16 5x5 on
      12x12 (2.25, output channels in lanes, no rows skipped): 1.35 / 1.04; the stems'
      weight gradients (one image's output gradient 3.2 MB and 590 KB, read again for every
      tap row): 33.5 against im2col's 18.9, 16.4 against depthwise's 14.0; LeNet's first
      layer (6 of 16 lanes): 1.51 against direct's 0.96.

    The arithmetic is the same on an AVX2 machine (a 64-byte vector is two AVX2 registers,
    the same lanes, PIXELS and CHANNELS, half the peak on both sides of each comparison).
    These figures are of one block of sums a pass; the forward pass's pairs of blocks
    (`_pairing`, AVX-512) only make lanes faster where it is chosen.
    """
    c_out, channels_per_group, kh, kw = weight_shape
    if pass_name == "grad_weight":
        outs, k = c_out // groups, channels_per_group * kh * kw
        grad_rows = window.out_height * window.out_width * -(-outs // 16) * 16 * 4
        return (RULE_MIN_OUTPUTS <= outs <= RULE_MAX_GRAD_WEIGHT_OUTPUTS
                and k * 16 * 4 <= RULE_MAX_WEIGHT_BYTES
                and grad_rows <= RULE_MAX_GRAD_ROWS_BYTES
                and window.out_height * window.out_width >= RULE_MIN_MAP)
    if pass_name == "grad_input":
        return (tuple(window.stride) == (1, 1)
                and _growth(x_shape, weight_shape, window, groups) <= RULE_MAX_GROWTH
                and rule("forward", *_transposed(
                    x_shape, (x_shape[0], c_out, window.out_height, window.out_width),
                    weight_shape, window, groups)[1:], groups))
    outs, k = c_out // groups, channels_per_group * kh * kw
    if _by_pixels(weight_shape, window, groups):
        return (k >= RULE_MIN_TAPS_BY_PIXELS and _fills(outs, CHANNELS)
                and _fills(window.out_width, simd.lanes_of(np.float32))
                and k * CHANNELS * 4 <= RULE_MAX_WEIGHT_BYTES)
    return (outs >= RULE_MIN_OUTPUTS and _fills(window.out_width, PIXELS)
            and k * simd.lanes_of(np.float32) * 4 <= RULE_MAX_WEIGHT_BYTES)
