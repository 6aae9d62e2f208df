"""3x3 stride-1 convolution by Winograd's minimal filtering, F(2x2, 3x3).

A 3x3 correlation computed directly costs 9 multiplies per output per input channel. Winograd
cuts the output into 2x2 tiles; each tile reads a 4x4 patch of the padded input (tiles
overlap by 2), and the whole tile comes out of 16 products instead of 36:

    out_tile = A^T [ (G g G^T)  *  (B^T d B) ] A        (* elementwise, 4x4)

with g the 3x3 kernel, d the 4x4 input patch and B^T (4x4), G (4x3), A^T (2x4) the fixed
matrices below (Lavin & Gray 2015; interpolation at 0, 1, -1 and infinity). Summed over
input channels, the elementwise products at each of the 16 positions form one matrix
product, so a layer is

    U = G g G^T              kernel transform      (16, C_in, C_out)     once per call
    V = B^T d B              input transform       (16, C_in, N*tiles)   every 4x4 patch
    M = V^T @ U              16 batched GEMMs      (16, N*tiles, C_out)
    out = A^T M A            output transform      (N, C_out, H_out, W_out), partial
                                                   tiles at the right and bottom cropped

(per group with groups > 1). V keeps the input's channel-major order, so its transform runs
along image rows; the GEMM reads it transposed, so that M comes out channels-last and the
output transform runs along channels (contiguous, vectorized) instead of along the short
rows of tiles.

Accuracy (issue 11, item 12). Every algorithm's float32 error against the float64 result
stays within 2x of PyTorch's float32 error on the same inputs (tests/test_float32_accuracy.py,
RMS-relative error: sqrt(mean((y - y64)^2) / mean(y64^2))). Winograd's error comes from the
channel sums of M: each product U*V is rounded relative to |U| |V|, which the transforms make
larger than the outputs they add up to, and the output transform subtracts them again. With
the 6x6 tiles of F(4x4, 3x3) used before (points 0, 1, -1, 1/2, -2, infinity) that made the
float32 error 5-9x PyTorch's (RMS; 6-23x in the largest error) at 64-256 channels, and no
choice of points, float64 transforms or even a float64 GEMM brought F(4x4) under 2x (a
float64 GEMM still left 2.4x: rounding U and V to float32 alone is too much). F(2x2, 3x3)
multiplies only by 0, +-1 and +-1/2: its error is 1.2-2.2x PyTorch's with one GEMM over all
channels, and 0.8-1.0x when the channel sum is done in blocks of `CHANNEL_BLOCK` channels,
added up afterwards (a two-level sum: BLAS adds one block's terms in sequence). That is what
this module does. U is computed in float64 and rounded once.

The cost: 4 multiplies per output instead of 2.25 (still 2.25x fewer than im2col's 9), and
the transforms touch 1.8x more data per output. See `plan._winograd_wins` for where it still
beats im2col.

The transforms are the part NumPy does slowly, and they move more data than the GEMMs (V is
4x the input, M 4x the output). With numba (`jit.enabled()`) the three steps run item by item
on each of corrnet's threads (`threads.run_pieces`): an item is a band of rows of tiles of
about `ITEM_BYTES` of V and M (across images where the maps are small), transformed, multiplied
(each GEMM on the thread's own BLAS call) and transformed back while it stays in the core's
caches (`_items_kernel`, which computes the weight gradient too). The kernel reads x in
place, its zero padding never written out, and runs its transforms along all of an item's
tiles at once (a row of tiles alone is too short for vector registers). Before, each step
was a pass over a chunk of the batch (its GEMMs on BLAS's threads): the layer suite's (c)-(e)
forward and input gradient 1.3-1.8x faster, (c) and (d) forward+backward 1.35-1.7x (idle
2-core AMD EPYC). The NumPy fallback keeps those passes, applying B^T and A^T as small
matrix products over stacked strided views of the tiles (no loop over tiles or pixels).

All three passes are done here: the forward, the input gradient (a stride-1 3x3 correlation
of the output gradient with the kernel turned by 180 degrees) and the weight gradient (the
adjoint of the forward's transforms, `grad_weight`: per transformed position one GEMM of the
transformed output gradient with the transformed input, summed over tiles and images, then
G^T dU G). Within `budget`, a call holds U (or dU's float64 sum: 16 numbers per 3x3 kernel)
and chunks of images (`least_bytes`: that and one image, the smallest).

A NaN or an inf in a patch reaches every output of its tile through the transforms (and
beyond, with its neighbours' tiles): the planner does not run this module on operands that
are not finite (plan.run).
"""

from __future__ import annotations

import numpy as np

from . import blas, simd
from .jit import enabled, jit
from .threads import MIN_PARALLEL_SIZE, active, numba_blas_on_one_thread, run_pieces, run_shared
from .windows import Window2d, pad_array

TILE = 2               # outputs per tile side (m in F(m x m, 3x3))
KERNEL = 3             # kernel side (r)
ALPHA = TILE + KERNEL - 1   # inputs per tile side: the 4x4 patch, and the 16 products

# The channel sums of M are done this many channels at a time, the blocks' sums then added:
# the float32 error of a sum of C products grows with the length BLAS adds in sequence.
CHANNEL_BLOCK = 64

DEFAULT_BUDGET = 256 * 2**20

# The NumPy path's forward and input gradient run in pieces of a chunk (images, then bands of
# rows of tiles) whose V and M take about this many bytes: V is written by the input transform
# and read by the GEMMs, M written by the GEMMs and read by the output transform, while still
# in cache (a core's L2 and its share of L3 on x86 servers: 2-4 MiB and more). Measured on
# the suite's (c)-(e) (one thread, CPU time): 20-28% faster than whole chunks of the batch,
# flat from 2 to 8 MiB, 10-20% slower again at 0.5 MiB (more, smaller GEMMs). With two
# threads every GEMM is a parallel region of its own and fewer, larger ones win: forward
# (c)/(d)/(e) 34/48/94 ms at 4 MiB, 25/37/62 ms at 16 MiB (idle 2-core AMD EPYC).
CACHE_BYTES = 16 * 2**20

# The compiled passes (`_items_kernel`) run the three steps item by item on each thread, an
# item a band of rows of tiles whose V, M and partial product take about this many bytes:
# they stay in the core's caches (L2, and its share of L3) between the steps. Larger items
# give each GEMM more tiles (its N): forward on one thread, items of 0.5/1/2/4 MiB, the suite's
# (c) 12.9/11.7/11.5/14.0 ms, (d) 25.1/22.6/21.0/25.3, (e) 54.5/47.0/41.3/52.0, 6x6 maps
# (64, 256 channels) 18.9/17.7/17.4/22.2 (AMD EPYC, 1 MiB L2 a core).
ITEM_BYTES = 2**21

# the weight gradient's placeholder for `_items_kernel`'s counter (it runs fixed items)
_NO_COUNTER = np.zeros(1, np.int64)
# `_items_kernel`'s arrays that a pass does not use, per dtype
_NO_ARRAY = {np.dtype(np.float32): np.empty((0, 0, 0, 0), np.float32),
             np.dtype(np.float64): np.empty((0, 0, 0, 0), np.float64)}

# With fewer channels per group than this a float32 correlation is computed in float64 (each
# output then sums only 9 or 18 terms, which direct summation gets very accurate: F(2x2) in
# float32 measured 2.1x PyTorch's error at one channel, 1.5x at two, 1.3x at three). The
# planner does not pick Winograd for so few channels; this keeps a forced one accurate.
FLOAT64_BELOW_CHANNELS = 3

# The matrices for the interpolation points 0, 1, -1 and infinity.

# B^T: 4x4 patch rows -> transformed rows; every entry 0 or +-1, exact
INPUT_TRANSFORM = np.array([
    [1, 0, -1, 0],
    [0, 1, 1, 0],
    [0, -1, 1, 0],
    [0, 1, 0, -1],
], dtype=np.float64)

# G: kernel rows (3) -> transformed rows (4)
KERNEL_TRANSFORM = np.array([
    [1, 0, 0],
    [1 / 2, 1 / 2, 1 / 2],
    [1 / 2, -1 / 2, 1 / 2],
    [0, 0, 1],
], dtype=np.float64)

# A^T: the 4 products of a row -> its 2 outputs
OUTPUT_TRANSFORM = np.array([
    [1, 1, 1, 0],
    [0, 1, -1, -1],
], dtype=np.float64)


def working_dtype(dtype, channels: int) -> np.dtype:
    """The dtype a correlation over `channels` channels per group is computed in."""
    dtype = np.dtype(dtype)
    if dtype == np.float32 and channels < FLOAT64_BELOW_CHANNELS:
        return np.dtype(np.float64)
    return dtype


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype, pass_name) -> bool:
    """3x3 kernels, stride 1, dilation 1, float32/float64; every pass. The output is every
    position of the window over the padded input (this module computes that many): not so
    where an idle stride (a single output along an axis, `windows.without_idle_strides`) was
    replaced by 1 — an 8x8 input padded by 1 with stride (9, 1) has one output row, not 8."""
    dtype = np.dtype(dtype)
    return (pass_name in ("forward", "grad_input", "grad_weight")
            and dtype in (np.float32, np.float64)
            and tuple(weight_shape[2:]) == (KERNEL, KERNEL)
            and tuple(window.kernel) == (KERNEL, KERNEL)
            and tuple(window.stride) == (1, 1)
            and tuple(window.dilation) == (1, 1)
            and window.out_height == window.padded_height - KERNEL + 1
            and window.out_width == window.padded_width - KERNEL + 1)


def forward(x, weight, bias, window: Window2d, groups: int, budget=DEFAULT_BUDGET):
    """out[n, o, y, x'] = sum_{c, i, j} weight[o, c, i, j] * padded[n, g(o)*Cg + c, y+i, x'+j]"""
    return correlate(x, weight, bias, window.padding, groups, budget)


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape, budget=DEFAULT_BUDGET):
    """d loss / d x: the output gradient correlated with the kernel turned by 180 degrees, its
    input and output channels swapped (within each group).

    Along one axis x[h] meets grad_out[h + top - i] through weight[i], so
    grad_x[h] = sum_i' grad_out[h - (2 - top) + i'] * weight[2 - i']: a correlation of the
    output gradient padded by 2 - top before and 2 - bottom after (negative pads crop).
    """
    (top, bottom), (left, right) = window.padding
    c_out, c_group = weight.shape[:2]
    # (C_out, Cg, 3, 3) -> (G, C_out/G, Cg, 3, 3) -> (G, Cg, C_out/G, 3, 3) -> (C_in, C_out/G, ..)
    swapped = weight.reshape(groups, c_out // groups, c_group, KERNEL, KERNEL).transpose(
        0, 2, 1, 3, 4).reshape(groups * c_group, c_out // groups, KERNEL, KERNEL)
    turned = swapped[:, :, ::-1, ::-1]
    pads = ((KERNEL - 1 - top, KERNEL - 1 - bottom), (KERNEL - 1 - left, KERNEL - 1 - right))
    grad_x = correlate(grad_out, turned, None, pads, groups, budget)
    assert grad_x.shape == tuple(x_shape), (grad_x.shape, x_shape)
    return grad_x


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int, budget=DEFAULT_BUDGET):
    """d loss / d weight, the adjoint of the forward's three steps. The forward computes each
    2x2 output tile as Y = A^T M A with M = sum_c U[o, c] * V[c] (elementwise, 4x4) and
    U = G g G^T; so with dY the tile's output gradient

        dM = A dY A^T                 output-gradient transform  (16, C_out, N*tiles)
        dU = sum over tiles dM * V    16 batched GEMMs           (16, C_out, C_in) per group
        d weight = G^T dU G           kernel back-transform      (C_out, Cg, 3, 3)

    with V = B^T d B the forward's input transform. Outputs that a partial tile at the right
    or bottom edge would hold beyond the output get gradient 0 (they are cropped away).

    Runs over the batch in chunks within `budget` (one image at least), dU summed over the
    chunks in float64; the back-transform in float64, rounded once to x's dtype.
    """
    (top, _), (left, _) = window.padding
    n, c_in, height, width = x.shape
    c_out, c_group = weight_shape[:2]
    out_height, out_width = grad_out.shape[2:]
    tiles_high, tiles_wide = -(-out_height // TILE), -(-out_width // TILE)
    patch_pads = ((top, TILE * tiles_high + KERNEL - 1 - height - top),
                  (left, TILE * tiles_wide + KERNEL - 1 - width - left))
    work = working_dtype(x.dtype, c_group)

    transformed_sum = np.zeros((ALPHA**2, groups, c_out // groups, c_group), np.float64)
    if enabled():
        _fused_grad_weight(x, grad_out, work, patch_pads, groups, tiles_high, tiles_wide,
                           transformed_sum, budget)
        return back_transform_kernel(transformed_sum, weight_shape, groups).astype(x.dtype)
    per_image = _image_bytes(c_in, c_out, out_height, out_width, work.itemsize)
    fixed = least_bytes(x.shape, weight_shape, window, groups, x.dtype, "grad_weight") - per_image
    chunk = max(1, int((budget - fixed) // per_image))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        padded = pad_array(x[start:stop].astype(work, copy=False), patch_pads)
        transformed_input = transform_input(padded, tiles_high, tiles_wide).reshape(
            ALPHA**2, groups, c_group, -1)                        # V (16, G, Cg, n*tiles)
        del padded
        transformed_grad = transform_grad_output(
            grad_out[start:stop].astype(work, copy=False), tiles_high, tiles_wide).reshape(
            ALPHA**2, groups, c_out // groups, -1)                # dM (16, G, C_out/G, n*tiles)
        # (16, G, C_out/G, Cg) = (16, G, C_out/G, n*tiles) @ (16, G, n*tiles, Cg)
        transformed_sum += np.matmul(transformed_grad, transformed_input.swapaxes(2, 3))
        del transformed_input, transformed_grad
    return back_transform_kernel(transformed_sum, weight_shape, groups).astype(x.dtype)


def _fused_grad_weight(x, grad_out, work, patch_pads, groups: int, tiles_high: int,
                       tiles_wide: int, transformed_sum, budget: int) -> None:
    """The compiled weight gradient: dU summed into transformed_sum (16, G, C_out/G, Cg,
    float64), the rows of tiles cut into items as in `_fused_correlate` (`_items_kernel`);
    each thread sums its items in float64 and returns its sum. The transforms and products
    in dtype `work`. Within `budget`: the threads' items and sums, and where x and the output
    gradient are cast to `work`, the casts of a chunk of images."""
    n, c_in = x.shape[:2]
    c_out = grad_out.shape[1]
    itemsize = np.dtype(work).itemsize
    # at least as many tiles as channels: each item's products (Og x Cg per position) are
    # added to the float64 sums, which costs little only where each product sums at least
    # that many terms (256 channels on 14x14 maps: 42 ms with items of 1 MiB, 35 with these)
    widest = max(c_in, c_out) // groups
    rows = _item_rows(tiles_wide, c_in // groups, c_out // groups, itemsize,
                      n * tiles_high, budget, -(-widest // tiles_wide))
    threads = active()
    # each thread's float64 sum and product, and transformed_sum
    sums = (threads + 1) * transformed_sum.nbytes + threads * transformed_sum.size // 16 * 8
    chunk = n
    if x.dtype != work:
        cast_image = itemsize * (x[0].size + grad_out[0].size)
        chunk = max(1, min(n, int((budget - sums) // cast_image)))
    (top, _), (left, _) = patch_pads
    with numba_blas_on_one_thread():
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            images = x[start:stop].astype(work, copy=False)
            grads = grad_out[start:stop].astype(work, copy=False)
            items = -(-(stop - start) * tiles_high // rows)
            placeholder = _NO_ARRAY[images.dtype]
            for piece_sum in run_pieces(_weight_items, items, images.size, images, top, left,
                                        placeholder, placeholder.reshape(0), placeholder, grads,
                                        groups, c_out // groups, tiles_high, tiles_wide, rows,
                                        CHANNEL_BLOCK, True,
                                        blas.weight_gradient_gemm(images.dtype)):
                transformed_sum += piece_sum
            del images, grads


def _weight_items(*arguments):
    """`_items_kernel`'s weight gradient as `run_pieces` calls it: its arguments up to the
    items first ... end - 1 (the last two), which it runs without a counter."""
    return _items_kernel(*arguments, _NO_COUNTER)


def back_transform_kernel(transformed, weight_shape, groups: int) -> np.ndarray:
    """d weight = G^T dU G for every kernel: dU (16, G, C_out/G, Cg) -> (C_out, Cg, 3, 3), in
    float64 (the adjoint of `transform_kernel`); compiled where the kernels run
    (`_back_transform_compiled`), else `back_transform_numpy`."""
    if enabled():
        c_out, c_group = weight_shape[:2]
        kernels = np.empty((c_out, c_group, KERNEL, KERNEL), np.float64)
        _back_transform_compiled(np.ascontiguousarray(transformed, np.float64), kernels)
        return kernels
    return back_transform_numpy(transformed, weight_shape, groups)


def back_transform_numpy(transformed, weight_shape, groups: int) -> np.ndarray:
    """`back_transform_kernel` in NumPy: two small matrix products over all kernels at once
    (the plain reference of `_back_transform_compiled`)."""
    c_out, c_group = weight_shape[:2]
    g = KERNEL_TRANSFORM
    # (4_a, 4_b, K), K = G*C_out/G*Cg in weight order
    by_position = transformed.reshape(ALPHA, ALPHA, -1)
    # (3_i, 4_b*K) = (3_i, 4_a) @ (4_a, 4_b*K): G^T dU
    rows_done = (g.T @ by_position.reshape(ALPHA, -1)).reshape(KERNEL, ALPHA, -1)
    # (3_i, 3_j, K) = (3_j, 4_b) @ (3_i, 4_b, K): (G^T dU) G
    kernels = np.matmul(g.T, rows_done)
    return np.ascontiguousarray(kernels.reshape(KERNEL, KERNEL, c_out, c_group).transpose(
        2, 3, 0, 1))


@jit()
def _back_transform_compiled(transformed, kernels):
    """kernels[g*Og + o, c] = G^T dU G with dU = transformed[:, g, o, c] as 4x4 (float64):
    transformed (16, G, Og, Cg) -> kernels (C_out, Cg, 3, 3). The rows of G^T are
    (1, 1/2, 1/2, 0), (0, 1/2, -1/2, 0) and (0, 1/2, 1/2, 1): each kernel's 16 numbers
    are read along c (16 runs), its 9 written in a row. (NumPy's two products over all
    kernels and the transposed copy: 2.7 ms for 256 -> 256 channels, this 0.2 on one core.)"""
    _, groups, outs, c_group = transformed.shape
    d = transformed
    for g in range(groups):
        for o in range(outs):
            kernel_rows = kernels[g * outs + o]
            for c in range(c_group):
                # G^T dU: the 3 rows (i) of each of the 4 columns (b)
                r00 = d[0, g, o, c] + 0.5 * (d[4, g, o, c] + d[8, g, o, c])
                r01 = d[1, g, o, c] + 0.5 * (d[5, g, o, c] + d[9, g, o, c])
                r02 = d[2, g, o, c] + 0.5 * (d[6, g, o, c] + d[10, g, o, c])
                r03 = d[3, g, o, c] + 0.5 * (d[7, g, o, c] + d[11, g, o, c])
                r10 = 0.5 * (d[4, g, o, c] - d[8, g, o, c])
                r11 = 0.5 * (d[5, g, o, c] - d[9, g, o, c])
                r12 = 0.5 * (d[6, g, o, c] - d[10, g, o, c])
                r13 = 0.5 * (d[7, g, o, c] - d[11, g, o, c])
                r20 = 0.5 * (d[4, g, o, c] + d[8, g, o, c]) + d[12, g, o, c]
                r21 = 0.5 * (d[5, g, o, c] + d[9, g, o, c]) + d[13, g, o, c]
                r22 = 0.5 * (d[6, g, o, c] + d[10, g, o, c]) + d[14, g, o, c]
                r23 = 0.5 * (d[7, g, o, c] + d[11, g, o, c]) + d[15, g, o, c]
                # (G^T dU) G: the same along each row
                kernel = kernel_rows[c]
                kernel[0, 0] = r00 + 0.5 * (r01 + r02)
                kernel[0, 1] = 0.5 * (r01 - r02)
                kernel[0, 2] = 0.5 * (r01 + r02) + r03
                kernel[1, 0] = r10 + 0.5 * (r11 + r12)
                kernel[1, 1] = 0.5 * (r11 - r12)
                kernel[1, 2] = 0.5 * (r11 + r12) + r13
                kernel[2, 0] = r20 + 0.5 * (r21 + r22)
                kernel[2, 1] = 0.5 * (r21 - r22)
                kernel[2, 2] = 0.5 * (r21 + r22) + r23


def transform_grad_output(grad_out, tiles_high: int, tiles_wide: int) -> np.ndarray:
    """dM = A dY A^T for every 2x2 output tile dY (zeros beyond the output):
    grad_out (n, C_out, H_out, W_out) -> (4, 4, C_out, n, th, tw)."""
    n, channels = grad_out.shape[:2]
    transformed = np.empty((ALPHA, ALPHA, channels, n, tiles_high, tiles_wide), grad_out.dtype)
    _grad_output_numpy(grad_out, tiles_high, tiles_wide, transformed)
    return transformed


def correlate(x, weight, bias, pads, groups: int = 1, budget=DEFAULT_BUDGET) -> np.ndarray:
    """Stride-1 3x3 correlation of x (N, C_in, H, W) padded by pads ((top, bottom),
    (left, right)) (negative pads crop) with weight (C_out, C_in/groups, 3, 3), plus bias.

    Returns (N, C_out, H + top + bottom - 2, W + left + right - 2) in x's dtype. Runs over the
    batch in chunks whose temporary buffers stay within `budget` bytes (one image at least).
    """
    n, c_in, height, width = x.shape
    c_out = weight.shape[0]
    (top, bottom), (left, right) = pads
    out_height = height + top + bottom - (KERNEL - 1)
    out_width = width + left + right - (KERNEL - 1)
    tiles_high, tiles_wide = -(-out_height // TILE), -(-out_width // TILE)
    # the padded input the tiles read: whole tiles, so partial tiles read zeros
    patch_pads = ((top, TILE * tiles_high + KERNEL - 1 - height - top),
                  (left, TILE * tiles_wide + KERNEL - 1 - width - left))

    work = working_dtype(x.dtype, weight.shape[1])
    transformed_kernel = transform_kernel(weight, groups, work)  # (16, G, Cg, C_out/G)
    bias = np.zeros(c_out, work) if bias is None else np.asarray(bias, work)
    out = np.empty((n, c_out, out_height, out_width), dtype=x.dtype)
    if enabled():
        _fused_correlate(x, patch_pads, transformed_kernel, bias, out, tiles_high, tiles_wide,
                         budget)
        return out

    per_image = _image_bytes(c_in, c_out, out_height, out_width, work.itemsize)
    # per row of tiles of one image: V and M
    per_tile_row = work.itemsize * ALPHA**2 * tiles_wide * (c_in + c_out)
    chunk = max(1, int((budget - 2 * transformed_kernel.nbytes) // per_image))
    chunk = min(chunk, max(1, CACHE_BYTES // (per_tile_row * tiles_high)))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        padded = pad_array(x[start:stop].astype(work, copy=False), patch_pads)
        band = max(1, CACHE_BYTES // (per_tile_row * (stop - start)))
        for first in range(0, tiles_high, band):
            last = min(first + band, tiles_high)
            _correlate_chunk(padded[:, :, TILE * first:TILE * last + KERNEL - 1],
                             transformed_kernel, bias, groups,
                             out[start:stop, :, TILE * first:TILE * last])
    return out


def _fused_correlate(x, patch_pads, transformed_kernel, bias, out, tiles_high: int,
                     tiles_wide: int, budget: int) -> None:
    """The compiled `correlate`: the rows of tiles of the batch (N*th of them) cut into
    items of `rows` rows (across images where the maps are small), each item run through
    the input transform, the GEMMs and the output transform by one thread while its V and M
    stay in that core's cache (`_items_kernel`, which reads x and its padding in place); the
    items split among corrnet's threads, each thread's products on BLAS's calling thread.
    Measured against the chunked passes (whole-chunk transforms, each GEMM on BLAS's two
    threads), forward on an idle 2-core AMD EPYC, interleaved runs: the suite's (c) 13.0 ->
    7.2-7.4 ms, (d) 20.7 -> 13.8-13.9, (e) 37.9 -> 28.8-34.9. The transforms along the item's
    tiles rather than along each row of tiles, and x read in place instead of a padded copy
    (`conv2d`, in separate processes, interleaved): (c) 9.0-11.3 -> 6.7-7.7 ms, (d) 15.4-16.8
    -> 13.1-15.2, (e) 31.7-37.4 -> 24.9-27.3. Where x is cast to the working dtype, in chunks
    of images within `budget`."""
    n, c_in = x.shape[:2]
    _, groups, c_group, outs = transformed_kernel.shape
    rows = _item_rows(tiles_wide, c_group, outs, transformed_kernel.itemsize, n * tiles_high,
                      budget)
    chunk = n
    if x.dtype != transformed_kernel.dtype:
        cast_image = transformed_kernel.itemsize * x[0].size
        chunk = max(1, min(n, (budget - 2 * transformed_kernel.nbytes) // cast_image))
    (top, _), (left, _) = patch_pads
    with numba_blas_on_one_thread():
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            images = x[start:stop].astype(transformed_kernel.dtype, copy=False)
            items = -(-(stop - start) * tiles_high // rows)
            parallel = out[start:stop].size >= MIN_PARALLEL_SIZE
            run_shared(min(active(), items) if parallel else 1, _items_kernel, images, top,
                       left, transformed_kernel, bias, out[start:stop],
                       _NO_ARRAY[images.dtype], groups, outs, tiles_high, tiles_wide, rows,
                       CHANNEL_BLOCK, False, blas.gemm_for(images.dtype), 0, items)
            del images


def _item_rows(tiles_wide: int, c_group: int, outs: int, itemsize: int, most: int,
               budget: int, least: int = 1) -> int:
    """Rows of tiles per item of `_items_kernel`: about `ITEM_BYTES` of V (16 x Cg per tile),
    M (16 x Og) and the partial products and staged outputs (Og + 4), at least `least` rows,
    at most `most`; every thread's item within half of `budget`."""
    row_bytes = itemsize * tiles_wide * (ALPHA**2 * (c_group + outs) + outs + ALPHA)
    return max(1, min(most, max(ITEM_BYTES // row_bytes, least),
                      budget // 2 // (active() * row_bytes)))


@jit()
def _items_kernel(x, top, left, kernels, bias, out, grad_out, groups, outs, tiles_high,
                  tiles_wide, rows, channel_block, weight_pass, gemm, first, end, next_item):
    """The items of a chunk (item i is the rows of tiles i*rows ... (i+1)*rows - 1, row r
    being image r // th's row of tiles r % th) through the forward pass
    (`_fused_correlate`, weight_pass False: the items that this thread takes from the
    counter next_item, until `end`) or the weight gradient (`_fused_grad_weight`, True:
    the items first ... end - 1). Per item and group, with T its tiles:

        V (16, Cg, T)   = B^T d B of each tile's 4x4 patch of x (n, C_in, H, W) padded by
                          top and left (negative: cropped) and zeros past its end
      forward:
        M (16, Og, T)   = U[p, g]^T (Og, Cg) @ V[p] (Cg, T) for each position p, summed
                          `channel_block` channels at a time (see Accuracy)
        out             = A^T M A + bias per tile, cropped to out (n, C_out, H_out, W_out)
      weight gradient:
        dM (16, Og, T)  = A dY A^T of each tile's 2x2 output gradient dY of grad_out
                          (n, C_out, H_out, W_out), zeros beyond the output
        dU[p, g]       += dM[p] (Og, T) @ V[p]^T (T, Cg), in float64

    kernels: U (16, G, Cg, Og). Returns dU (16, G, Og, Cg) (forward: an empty array). The
    arrays a pass does not use are placeholders; gemm: the products' `blas.gemm_for`. The
    transforms are the NumPy path's (`_input_numpy`, `_output_numpy`, `_grad_output_numpy`),
    written out as the additions that the entries (0, +-1) of B^T, A^T and A make.

    The loops run along the item's tiles, not along one row of tiles (7 tiles on a 14x14
    map: too short for vector registers). B^T down the patch rows goes to `across`, row of
    tiles k at k * 2*tw: then tile j of the item (row j // tw) reads across[2j ... 2j + 3],
    in every row but its last tile, whose last two columns the next row has overwritten (they
    are kept in `tails`). A^T M A goes to four staged rows (a tile's upper and lower outputs,
    left and right), copied into out row by row; A down the output gradient's rows goes to
    `down`, row of tiles k at k * 2*tw, where tile j reads down[2j] and down[2j + 1]."""
    height, width = x.shape[2], x.shape[3]
    c_group = x.shape[1] // groups
    if weight_pass:
        out_height, out_width = grad_out.shape[2], grad_out.shape[3]
    else:
        out_height, out_width = out.shape[2], out.shape[3]
    total_rows = x.shape[0] * tiles_high
    most = rows * tiles_wide
    patch_width = TILE * tiles_wide + KERNEL - 1
    # the columns of a patch row that x holds: [held_first, held_end); zeros elsewhere
    held_first = max(0, left)
    held_end = max(held_first, min(patch_width, left + width))
    v_buffer = np.empty(ALPHA * ALPHA * c_group * most, x.dtype)
    m_buffer = np.empty(ALPHA * ALPHA * outs * most, x.dtype)      # M, or dM
    part_buffer = np.empty(outs * most, x.dtype)
    across = np.zeros((ALPHA, TILE * most + KERNEL - 1), x.dtype)
    across0, across1, across2, across3 = across[0], across[1], across[2], across[3]
    tails = np.empty((ALPHA, rows, KERNEL - 1), x.dtype)
    staged = np.empty((ALPHA, most), x.dtype)
    zero_row = np.zeros(width, x.dtype)       # a patch row above or below x
    down = np.empty((ALPHA, TILE * most), x.dtype)
    zero_grad = np.zeros(out_width, x.dtype)  # the lower row of a tile below the output
    sums = np.zeros((ALPHA * ALPHA, groups, outs, c_group) if weight_pass else (0, 0, 0, 0),
                    np.float64)
    product = np.empty((outs, c_group), x.dtype)
    full_tiles = out_width // TILE     # tiles with both output columns inside out
    item = first if weight_pass else simd.take_next(next_item)
    while item < end:
        row_first = item * rows
        count = min(rows, total_rows - row_first)
        tiles = count * tiles_wide
        transformed = v_buffer[:ALPHA * ALPHA * c_group * tiles].reshape(
            (ALPHA * ALPHA, c_group, tiles))
        products = m_buffer[:ALPHA * ALPHA * outs * tiles].reshape((ALPHA * ALPHA, outs, tiles))
        part = part_buffer[:outs * tiles].reshape((outs, tiles))
        for g in range(groups):
            for c in range(c_group):
                # B^T down the 4 patch rows of each row of tiles: across (4, count * 2*tw + 2)
                for k in range(count):
                    image = (row_first + k) // tiles_high
                    first_row = TILE * ((row_first + k) % tiles_high) - top   # x's row
                    plane = x[image, g * c_group + c]
                    row0 = plane[first_row] if 0 <= first_row < height else zero_row
                    row1 = plane[first_row + 1] if 0 <= first_row + 1 < height else zero_row
                    row2 = plane[first_row + 2] if 0 <= first_row + 2 < height else zero_row
                    row3 = plane[first_row + 3] if 0 <= first_row + 3 < height else zero_row
                    at = TILE * tiles_wide * k
                    for a in range(ALPHA):
                        for col in range(held_first):
                            across[a, at + col] = 0
                        for col in range(held_end, patch_width):
                            across[a, at + col] = 0
                    # the held columns: x's from held_first - left on, across's from
                    # at + held_first on (unsigned offsets: no negative-index checks, and no
                    # slices made per row of tiles)
                    read = np.uintp(held_first - left)
                    write = np.uintp(at + held_first)
                    for col in range(held_end - held_first):
                        d0 = row0[read + np.uintp(col)]
                        d1 = row1[read + np.uintp(col)]
                        d2 = row2[read + np.uintp(col)]
                        d3 = row3[read + np.uintp(col)]
                        across0[write + np.uintp(col)] = d0 - d2
                        across1[write + np.uintp(col)] = d1 + d2
                        across2[write + np.uintp(col)] = d2 - d1
                        across3[write + np.uintp(col)] = d1 - d3
                    for a in range(ALPHA):
                        tails[a, k, 0] = across[a, at + patch_width - 2]
                        tails[a, k, 1] = across[a, at + patch_width - 1]
                # B^T along each tile's 4 columns: V[4a + b, c] over the item's tiles
                for a in range(ALPHA):
                    row = across[a, :TILE * tiles + KERNEL - 1]
                    done0 = transformed[ALPHA * a, c]
                    done1 = transformed[ALPHA * a + 1, c]
                    done2 = transformed[ALPHA * a + 2, c]
                    done3 = transformed[ALPHA * a + 3, c]
                    for j in range(tiles):
                        d0 = row[TILE * j]
                        d1 = row[TILE * j + 1]
                        d2 = row[TILE * j + 2]
                        d3 = row[TILE * j + 3]
                        done0[j] = d0 - d2
                        done1[j] = d1 + d2
                        done2[j] = d2 - d1
                        done3[j] = d1 - d3
                    for k in range(count):     # each row's last tile: its last two columns
                        j = tiles_wide * (k + 1) - 1
                        d0 = row[TILE * j]
                        d1 = row[TILE * j + 1]
                        d2 = tails[a, k, 0]
                        d3 = tails[a, k, 1]
                        done0[j] = d0 - d2
                        done1[j] = d1 + d2
                        done2[j] = d2 - d1
                        done3[j] = d1 - d3
            if weight_pass:
                # dM: A down the tiles' 2 rows (to `down`, row of tiles k at k * 2*tw), then
                # along each tile's 2 columns, over the item's tiles
                for o in range(outs):
                    channel = g * outs + o
                    for k in range(count):
                        image = (row_first + k) // tiles_high
                        top_out = TILE * ((row_first + k) % tiles_high)
                        upper = grad_out[image, channel, top_out]
                        # the last row of tiles of an odd height: its lower row cut
                        lower = (grad_out[image, channel, top_out + 1]
                                 if top_out + 1 < out_height else zero_grad)
                        at = TILE * tiles_wide * k
                        done0 = down[0, at:at + out_width]
                        done1 = down[1, at:at + out_width]
                        done2 = down[2, at:at + out_width]
                        done3 = down[3, at:at + out_width]
                        for col in range(out_width):
                            y0 = upper[col]
                            y1 = lower[col]
                            done0[col] = y0
                            done1[col] = y0 + y1
                            done2[col] = y0 - y1
                            done3[col] = -y1
                        for a in range(ALPHA):     # an odd width: its last tile's right cut
                            for col in range(out_width, TILE * tiles_wide):
                                down[a, at + col] = 0
                    for a in range(ALPHA):
                        row = down[a, :TILE * tiles]
                        done0 = products[ALPHA * a, o]
                        done1 = products[ALPHA * a + 1, o]
                        done2 = products[ALPHA * a + 2, o]
                        done3 = products[ALPHA * a + 3, o]
                        for j in range(tiles):
                            y0 = row[TILE * j]
                            y1 = row[TILE * j + 1]
                            done0[j] = y0
                            done1[j] = y0 + y1
                            done2[j] = y0 - y1
                            done3[j] = -y1
                # dU[p, g] += (Og, Cg) = (Og, T) @ (T, Cg)
                for position in range(ALPHA * ALPHA):
                    blas.product_into(gemm, products[position], transformed[position].T,
                                      product)
                    total = sums[position, g]
                    for o in range(outs):
                        for c in range(c_group):
                            total[o, c] += product[o, c]
                continue
            # M: (Og, T) = (Og, block) @ (block, T) per position, the blocks' sums added
            for position in range(ALPHA * ALPHA):
                for start in range(0, c_group, channel_block):
                    stop = min(start + channel_block, c_group)
                    kernel_block = kernels[position, g, start:stop].T
                    if start == 0:
                        blas.product_into(gemm, kernel_block, transformed[position, start:stop],
                                          products[position])
                    else:
                        blas.product_into(gemm, kernel_block, transformed[position, start:stop],
                                          part)
                        total = products[position]
                        for o in range(outs):
                            for t in range(tiles):
                                total[o, t] += part[o, t]
            # out: A^T along each tile's columns, then down its rows, plus the bias, staged
            # over the item's tiles: (upper left, upper right, lower left, lower right)
            for o in range(outs):
                channel = g * outs + o
                shift = bias[channel]
                m0, m1, m2, m3 = products[0, o], products[1, o], products[2, o], products[3, o]
                m4, m5, m6, m7 = products[4, o], products[5, o], products[6, o], products[7, o]
                m8, m9, m10, m11 = (products[8, o], products[9, o], products[10, o],
                                    products[11, o])
                m12, m13, m14, m15 = (products[12, o], products[13, o], products[14, o],
                                      products[15, o])
                upper_left, upper_right = staged[0, :tiles], staged[1, :tiles]
                lower_left, lower_right = staged[2, :tiles], staged[3, :tiles]
                for j in range(tiles):
                    # across[a, q] for the tile's rows a = 0..3 and columns q = 0, 1
                    a0 = m0[j] + m1[j] + m2[j]
                    a1 = m4[j] + m5[j] + m6[j]
                    a2 = m8[j] + m9[j] + m10[j]
                    a3 = m12[j] + m13[j] + m14[j]
                    b0 = m1[j] - m2[j] - m3[j]
                    b1 = m5[j] - m6[j] - m7[j]
                    b2 = m9[j] - m10[j] - m11[j]
                    b3 = m13[j] - m14[j] - m15[j]
                    upper_left[j] = a0 + a1 + a2 + shift
                    upper_right[j] = b0 + b1 + b2 + shift
                    lower_left[j] = a1 - a2 - a3 + shift
                    lower_right[j] = b1 - b2 - b3 + shift
                for k in range(count):
                    image = (row_first + k) // tiles_high
                    top_out = TILE * ((row_first + k) % tiles_high)
                    at = k * tiles_wide
                    for p in range(min(TILE, out_height - top_out)):
                        out_row = out[image, channel, top_out + p]
                        lefts = staged[TILE * p, at:at + tiles_wide]
                        rights = staged[TILE * p + 1, at:at + tiles_wide]
                        for t in range(full_tiles):
                            out_row[TILE * t] = lefts[t]
                            out_row[TILE * t + 1] = rights[t]
                        if full_tiles < tiles_wide:     # an odd width: the last tile's left
                            out_row[TILE * full_tiles] = lefts[full_tiles]
        item = item + 1 if weight_pass else simd.take_next(next_item)
    return sums


def _image_bytes(c_in: int, c_out: int, out_height: int, out_width: int, itemsize: int) -> int:
    """Bytes of temporaries per image of a chunk: the padded copy, V and M, and as much again
    for the NumPy path's stacks."""
    tiles_high, tiles_wide = -(-out_height // TILE), -(-out_width // TILE)
    padded_size = c_in * (TILE * tiles_high + KERNEL - 1) * (TILE * tiles_wide + KERNEL - 1)
    return itemsize * (3 * padded_size
                       + ALPHA**2 * tiles_high * tiles_wide * (2 * c_in + 3 * c_out))


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name) -> int:
    """The temporaries of the smallest chunk, one image, and of the transformed kernels U
    (with their transform's float64 intermediates: 9 + 12 + 16 numbers per kernel)."""
    c_out, c_group = weight_shape[:2]
    channels = c_out // groups if pass_name == "grad_input" else c_group
    itemsize = working_dtype(dtype, channels).itemsize
    kernels = c_out * c_group
    if pass_name == "grad_weight":
        # per kernel: dU's float64 sum and a chunk's GEMM result (16 each), the back-transform's
        # float64 intermediates (12 + 9) and its contiguous result (9)
        kernel_bytes = kernels * (ALPHA**2 * (8 + itemsize) + (ALPHA * KERNEL + 2 * KERNEL**2) * 8)
        return kernel_bytes + _image_bytes(x_shape[1], c_out, window.out_height,
                                           window.out_width, itemsize)
    kernel_bytes = kernels * (ALPHA**2 * itemsize + (KERNEL**2 + ALPHA * KERNEL + ALPHA**2) * 8)
    if pass_name == "forward":
        return kernel_bytes + _image_bytes(x_shape[1], c_out, window.out_height,
                                           window.out_width, itemsize)
    return kernel_bytes + _image_bytes(c_out, x_shape[1], window.height, window.width, itemsize)


def _correlate_chunk(padded, transformed_kernel, bias, groups, out) -> None:
    """out (n, C_out, H_out, W_out) <- the tiles of padded (n, C_in, 2*th + 2, 2*tw + 2)."""
    c_in = padded.shape[1]
    tiles_high = (padded.shape[2] - (KERNEL - 1)) // TILE
    tiles_wide = (padded.shape[3] - (KERNEL - 1)) // TILE
    transformed_input = transform_input(padded, tiles_high, tiles_wide)
    by_group = transformed_input.reshape(ALPHA**2, groups, c_in // groups, -1)
    products = channel_sums(by_group, transformed_kernel)
    del transformed_input, by_group
    transform_output(products, tiles_high, tiles_wide, bias, out)


def channel_sums(transformed_input, transformed_kernel) -> np.ndarray:
    """M = V^T @ U per position and group, the sum over channels done `CHANNEL_BLOCK`
    channels at a time and the blocks' sums added (see the module's note on accuracy):
    V (16, G, Cg, n*tiles), U (16, G, Cg, C_out/G) -> M (16, G, n*tiles, C_out/G)."""
    c_group = transformed_input.shape[2]
    products = None
    for first in range(0, c_group, CHANNEL_BLOCK):
        block = slice(first, first + CHANNEL_BLOCK)
        # (16, G, n*tiles, C_out/G) = (16, G, n*tiles, block) @ (16, G, block, C_out/G)
        part = np.matmul(transformed_input[:, :, block].swapaxes(2, 3),
                         transformed_kernel[:, :, block])
        if products is None:
            products = part
        else:
            products += part
    return products


def transform_kernel(weight, groups: int, dtype) -> np.ndarray:
    """U = G g G^T for every kernel: (C_out, Cg, 3, 3) -> (16, G, Cg, C_out/G), computed in
    float64 and rounded once to `dtype`; compiled where the kernels run
    (`_transform_compiled`, which reads weight in place, a turned view too), else
    `transform_kernel_numpy`."""
    c_out, c_group = weight.shape[:2]
    if enabled() and np.dtype(dtype) in (np.float32, np.float64):
        transformed = np.empty((ALPHA**2, groups, c_group, c_out // groups), dtype)
        _transform_compiled(weight, transformed)
        return transformed
    return transform_kernel_numpy(weight, groups, dtype)


def transform_kernel_numpy(weight, groups: int, dtype) -> np.ndarray:
    """`transform_kernel` in NumPy: a transposed float64 copy of the kernels and two small
    matrix products over all of them at once (the plain reference of `_transform_compiled`)."""
    c_out, c_group = weight.shape[:2]
    g = KERNEL_TRANSFORM
    # the kernels as columns, in U's order: (3_i, 3_j, G*Cg*C_out/G), in float64
    columns = np.ascontiguousarray(weight.reshape(
        groups, c_out // groups, c_group, KERNEL, KERNEL).transpose(3, 4, 0, 2, 1),
        dtype=np.float64).reshape(KERNEL, KERNEL, -1)
    # (4_a, 3_j*K) = (4_a, 3_i) @ (3_i, 3_j*K): G g
    rows_done = (g @ columns.reshape(KERNEL, -1)).reshape(ALPHA, KERNEL, -1)
    # (4_a, 4_b, K) = (4_b, 3_j) @ (4_a, 3_j, K): (G g) G^T
    transformed = np.matmul(g, rows_done)
    return transformed.astype(dtype).reshape(ALPHA**2, groups, c_group, c_out // groups)


@jit()
def _transform_compiled(weight, transformed):
    """transformed[4a + b, g, c, o] = (G g G^T)[a, b] with g = weight[g*Og + o, c] (3x3),
    computed in float64 and rounded once to transformed's dtype: weight (C_out, Cg, 3, 3),
    any strides, -> transformed (16, G, Cg, Og). The rows of G are (1, 0, 0),
    (1/2, 1/2, 1/2), (1/2, -1/2, 1/2) and (0, 0, 1).

    Per (g, c): G g of the Og kernels first, into `rows` (4_a, 3_j, Og); then each of the 16
    numbers (a, b) along o, one run of Og at a time. (Writing a kernel's 16 numbers at once
    writes 16 runs whose addresses are a power of two apart: they fight for the same cache
    sets, 4.6 ms for 256 -> 256 channels; this 1.2. NumPy's transposed float64 copy and two
    products over all kernels: 4.3-7.3 ms, each forward and input-gradient pass.)"""
    groups, c_group, outs = transformed.shape[1], transformed.shape[2], transformed.shape[3]
    rows = np.empty((ALPHA, KERNEL, outs), np.float64)
    for g in range(groups):
        for c in range(c_group):
            for o in range(outs):
                kernel = weight[g * outs + o, c]
                for j in range(KERNEL):
                    top, middle, bottom = (np.float64(kernel[0, j]), np.float64(kernel[1, j]),
                                           np.float64(kernel[2, j]))
                    rows[0, j, o] = top
                    rows[1, j, o] = 0.5 * (top + middle + bottom)
                    rows[2, j, o] = 0.5 * (top - middle + bottom)
                    rows[3, j, o] = bottom
            # (G g) G^T along each row a
            for a in range(ALPHA):
                left, middle, right = rows[a, 0], rows[a, 1], rows[a, 2]
                done0 = transformed[ALPHA * a, g, c]
                done1 = transformed[ALPHA * a + 1, g, c]
                done2 = transformed[ALPHA * a + 2, g, c]
                done3 = transformed[ALPHA * a + 3, g, c]
                for o in range(outs):
                    done0[o] = left[o]
                for o in range(outs):
                    done1[o] = 0.5 * (left[o] + middle[o] + right[o])
                for o in range(outs):
                    done2[o] = 0.5 * (left[o] - middle[o] + right[o])
                for o in range(outs):
                    done3[o] = right[o]


def transform_input(padded, tiles_high: int, tiles_wide: int) -> np.ndarray:
    """V = B^T d B for every 4x4 patch d (rows and columns starting at multiples of 2):
    padded (n, C, 2*th + 2, 2*tw + 2) -> (4, 4, C, n, th, tw)."""
    n, channels = padded.shape[:2]
    transformed = np.empty((ALPHA, ALPHA, channels, n, tiles_high, tiles_wide), padded.dtype)
    _input_numpy(padded, tiles_high, tiles_wide, transformed)
    return transformed


def transform_output(products, tiles_high: int, tiles_wide: int, bias, out) -> None:
    """out = A^T M A + bias for every tile, cropped to out's size: products
    (16, G, n*th*tw, C_out/G), bias (C_out,) -> out (n, C_out, H_out, W_out)."""
    _output_numpy(products, tiles_high, tiles_wide, bias, out)


def _every_tile(first: int, tiles: int) -> slice:
    """The positions `first`, first + 2, ... of `tiles` tiles along one axis."""
    return slice(first, first + TILE * (tiles - 1) + 1, TILE)


def _input_numpy(padded, tiles_high, tiles_wide, transformed) -> None:
    """B^T d B as two small matrix products over strided views of the tiles."""
    input_transform = INPUT_TRANSFORM.astype(padded.dtype)
    # column j of every tile: (4_j, n, C, Hp, tw)
    columns = np.stack([padded[..., _every_tile(j, tiles_wide)] for j in range(ALPHA)])
    # (4_b, n*C*Hp*tw) = (4_b, 4_j) @ (4_j, n*C*Hp*tw)
    across = (input_transform @ columns.reshape(ALPHA, -1)).reshape(columns.shape)
    del columns
    # row i of every tile, channels before images: (4_i, 4_b, C, n, th, tw)
    rows = np.empty((ALPHA, *transformed.shape[1:]), padded.dtype)
    for i in range(ALPHA):
        rows[i] = across[:, :, :, _every_tile(i, tiles_high)].transpose(0, 2, 1, 3, 4)
    del across
    # (4_a, 4_b*C*n*th*tw) = (4_a, 4_i) @ (4_i, 4_b*C*n*th*tw)
    np.matmul(input_transform, rows.reshape(ALPHA, -1),
              out=transformed.reshape(ALPHA, -1))


def _output_numpy(products, tiles_high, tiles_wide, bias, out) -> None:
    """A^T M A as two small matrix products, then the tiles laid out as images and cropped."""
    _, groups, _, c_group = products.shape
    n, c_out = out.shape[:2]
    output_transform = OUTPUT_TRANSFORM.astype(products.dtype)
    # (2_p, 4_b*G*n*th*tw*Cog) = (2_p, 4_a) @ (4_a, 4_b*G*n*th*tw*Cog)
    down = (output_transform @ products.reshape(ALPHA, -1)).reshape(TILE, ALPHA, -1)
    across_first = down.transpose(1, 0, 2).reshape(ALPHA, -1)     # (4_b, 2_p*G*n*th*tw*Cog)
    del down
    # (2_q, 2_p*G*n*th*tw*Cog) = (2_q, 4_b) @ (4_b, 2_p*G*n*th*tw*Cog)
    tiles = (output_transform @ across_first).reshape(
        TILE, TILE, groups, n, tiles_high, tiles_wide, c_group)
    # tiles[q, p, g, n, ty, tx, j] -> image[n, g*Cog + j, ty*2 + p, tx*2 + q]
    images = tiles.transpose(3, 2, 6, 4, 1, 5, 0).reshape(n, c_out, TILE * tiles_high,
                                                          TILE * tiles_wide)
    out_height, out_width = out.shape[2:]
    np.add(images[..., :out_height, :out_width], bias.reshape(1, c_out, 1, 1), out=out)


def _grad_output_numpy(grad_out, tiles_high, tiles_wide, transformed) -> None:
    """A dY A^T as two small matrix products over the tiles, the output gradient padded with
    zeros to whole tiles."""
    n, channels, out_height, out_width = grad_out.shape
    spread = OUTPUT_TRANSFORM.T.astype(grad_out.dtype)         # A (4, 2)
    whole = np.zeros((n, channels, TILE * tiles_high, TILE * tiles_wide), grad_out.dtype)
    whole[:, :, :out_height, :out_width] = grad_out
    # tiles[n, c, ty, p, tx, q] -> (2_p, 2_q, C, n, th, tw)
    tiles = whole.reshape(n, channels, tiles_high, TILE, tiles_wide, TILE).transpose(
        3, 5, 1, 0, 2, 4)
    del whole
    # (4_a, 2_q*C*n*th*tw) = (4_a, 2_p) @ (2_p, 2_q*C*n*th*tw)
    down = (spread @ tiles.reshape(TILE, -1)).reshape(ALPHA, TILE, -1)
    del tiles
    # (4_a, 4_b, C*n*th*tw) = (4_b, 2_q) @ (4_a, 2_q, C*n*th*tw)
    np.matmul(spread, down, out=transformed.reshape(ALPHA, ALPHA, -1))
