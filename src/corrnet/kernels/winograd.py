"""3x3 stride-1 convolution by Winograd's minimal filtering, F(4x4, 3x3).

A 3x3 correlation computed directly costs 9 multiplies per output per input channel. Winograd
cuts the output into 4x4 tiles; each tile reads a 6x6 patch of the padded input (tiles
overlap by 2), and the whole tile comes out of 36 products instead of 144:

    out_tile = A^T [ (G g G^T)  *  (B^T d B) ] A        (* elementwise, 6x6)

with g the 3x3 kernel, d the 6x6 input patch and B^T (6x6), G (6x3), A^T (4x6) the fixed
matrices below (Lavin & Gray 2015). They come from interpolating at 0, 1, -1, 1/2, -2 and
infinity, which Barabasz et al. (2020) found the most accurate choice for F(4, 3): in
float32 the error is ~2.5x smaller than with Lavin & Gray's 0, 1, -1, 2, -2. Summed over
input channels, the elementwise products at each of the 36 positions form one matrix
product, so a layer is

    U = G g G^T              kernel transform      (36, C_in, C_out)     once per call
    V = B^T d B              input transform       (36, C_in, N*tiles)   every 6x6 patch
    M = V^T @ U              36 batched GEMMs      (36, N*tiles, C_out)
    out = A^T M A            output transform      (N, C_out, H_out, W_out), partial
                                                   tiles at the right and bottom cropped

(per group with groups > 1). V keeps the input's channel-major order, so its transform runs
along image rows; the GEMM reads it transposed, so that M comes out channels-last and the
output transform runs along channels (contiguous, vectorized) instead of along the short
rows of tiles.

That is 4x fewer multiplies than im2col + GEMM (2.25 per output instead of 9; F(2x2, 3x3)
does 4 per output and transforms 1.8x more data per output: 1.2-2.7x slower, measured), at
the cost of the transforms, which touch each value a few times but multiply only by small
constants. They are the part NumPy does slowly: with numba (`jit.enabled()`) each transform
is one compiled pass over the data; the NumPy fallback applies B^T and A^T as small matrix
products over stacked strided views of the tiles (no loop over tiles or pixels).

When it wins (float32, against im2col + GEMM, measured with one BLAS and numba thread on a
shared 2-core machine): where the GEMMs dominate the transforms, i.e. many channels per
group and large enough images. With numba, roughly where (channels per group, the smaller
of C_in and C_out) x (the smaller output side) >= 900: from 7x7 at 128 channels, 14x14 at
64, 28x28 at 32, 56x56 at 16; 1.3-2.7x faster at 64-256 channels. A 3- to 16-channel layer
on small images loses (the transforms cost more than the multiplies they save). The NumPy
fallback wins only from ~128 channels, by 1.1-1.25x. The 36 GEMMs are separate BLAS calls:
on a machine crowded by other processes, multithreaded BLAS pays a thread hand-off for
each, and one big im2col GEMM suffers less.

The float32 error is several times im2col's (the transforms add and subtract values several
times larger than the result): measured against float64, up to ~1e-6 (8 channels) to ~5e-6
(256 channels) of the largest output, where im2col gives ~5e-7; fine for training, and
within the suite's float32 tolerance of PyTorch.

Only the forward pass and the input gradient (a stride-1 3x3 correlation of the output
gradient with the kernel turned by 180 degrees) are done here; the weight gradient is left
to im2col (`supports` says False). Within `budget`, a call holds U (36 numbers per 3x3
kernel) and chunks of images (`least_bytes`: U and one image, the smallest).
"""

from __future__ import annotations

import numpy as np

from .jit import enabled, jit, prange
from .windows import Window2d, pad_array

TILE = 4               # outputs per tile side (m in F(m x m, 3x3))
KERNEL = 3             # kernel side (r)
ALPHA = TILE + KERNEL - 1   # inputs per tile side: the 6x6 patch, and the 36 products

DEFAULT_BUDGET = 256 * 2**20

# The matrices for the interpolation points 0, 1, -1, 1/2, -2 and infinity, each row of B^T
# (and column of A^T) scaled to small integers, the scale moved into G. Row k of G, for the
# point p: (1, p, p^2) divided by that scale; the point at infinity takes the last tap.

# B^T: 6x6 patch rows -> transformed rows; every entry a small integer, exact in float32
INPUT_TRANSFORM = np.array([
    [2, -3, -4, 3, 2, 0],
    [0, -2, 1, 5, 2, 0],
    [0, -2, 5, -1, -2, 0],
    [0, 2, 1, -2, -1, 0],
    [0, 1, -2, -1, 2, 0],
    [0, 2, -3, -4, 3, 2],
], dtype=np.float64)

# G: kernel rows (3) -> transformed rows (6)
KERNEL_TRANSFORM = np.array([
    [1 / 2, 0, 0],
    [1 / 6, 1 / 6, 1 / 6],
    [1 / 6, -1 / 6, 1 / 6],
    [2 / 15, 1 / 15, 1 / 30],
    [1 / 30, -1 / 15, 2 / 15],
    [0, 0, 1 / 2],
], dtype=np.float64)

# A^T: the 6 products of a row -> its 4 outputs; column k holds p^0..p^3 (times 8 for 1/2)
OUTPUT_TRANSFORM = np.array([
    [1, 1, 1, 8, 1, 0],
    [0, 1, -1, 4, -2, 0],
    [0, 1, 1, 2, 4, 0],
    [0, 1, -1, 1, -8, 1],
], dtype=np.float64)


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype, pass_name) -> bool:
    """3x3 kernels, stride 1, dilation 1, float32/float64; forward and grad_input only."""
    dtype = np.dtype(dtype)
    return (pass_name in ("forward", "grad_input")
            and dtype in (np.float32, np.float64)
            and tuple(weight_shape[2:]) == (KERNEL, KERNEL)
            and tuple(window.kernel) == (KERNEL, KERNEL)
            and tuple(window.stride) == (1, 1)
            and tuple(window.dilation) == (1, 1))


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
    raise NotImplementedError("winograd: the weight gradient is left to im2col (see supports)")


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

    transformed_kernel = transform_kernel(weight, groups, x.dtype)  # (36, G, Cg, C_out/G)
    bias = np.zeros(c_out, x.dtype) if bias is None else np.asarray(bias, x.dtype)
    out = np.empty((n, c_out, out_height, out_width), dtype=x.dtype)

    per_image = _image_bytes(c_in, c_out, out_height, out_width, x.dtype.itemsize)
    chunk = max(1, int((budget - 2 * transformed_kernel.nbytes) // per_image))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        padded = pad_array(x[start:stop], patch_pads)
        _correlate_chunk(padded, transformed_kernel, bias, groups, out[start:stop])
    return out


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
    (counted twice: their transform's intermediate)."""
    c_out, c_group = weight_shape[:2]
    itemsize = np.dtype(dtype).itemsize
    kernel_bytes = 2 * ALPHA**2 * c_out * c_group * itemsize
    if pass_name == "forward":
        return kernel_bytes + _image_bytes(x_shape[1], c_out, window.out_height,
                                           window.out_width, itemsize)
    return kernel_bytes + _image_bytes(c_out, x_shape[1], window.height, window.width, itemsize)


def _correlate_chunk(padded, transformed_kernel, bias, groups, out) -> None:
    """out (n, C_out, H_out, W_out) <- the tiles of padded (n, C_in, 4*th + 2, 4*tw + 2)."""
    c_in = padded.shape[1]
    tiles_high = (padded.shape[2] - (KERNEL - 1)) // TILE
    tiles_wide = (padded.shape[3] - (KERNEL - 1)) // TILE
    transformed_input = transform_input(padded, tiles_high, tiles_wide)
    by_group = transformed_input.reshape(ALPHA**2, groups, c_in // groups, -1)
    # (36, G, n*tiles, C_out/G) = (36, G, n*tiles, Cg) @ (36, G, Cg, C_out/G)
    products = np.matmul(by_group.swapaxes(2, 3), transformed_kernel)
    del transformed_input, by_group
    transform_output(products, tiles_high, tiles_wide, bias, out)


def transform_kernel(weight, groups: int, dtype) -> np.ndarray:
    """U = G g G^T for every kernel: (C_out, Cg, 3, 3) -> (36, G, Cg, C_out/G), in `dtype`
    (G's fractions rounded to float32 add ~1e-7 relative error, far below the transforms')."""
    c_out, c_group = weight.shape[:2]
    g = KERNEL_TRANSFORM.astype(dtype)
    # the kernels as columns, in U's order: (3_i, 3_j, G*Cg*C_out/G)
    columns = weight.astype(dtype, copy=False).reshape(
        groups, c_out // groups, c_group, KERNEL, KERNEL).transpose(3, 4, 0, 2, 1)
    columns = columns.reshape(KERNEL, KERNEL, -1)
    # (6_a, 3_j*K) = (6_a, 3_i) @ (3_i, 3_j*K): G g
    rows_done = (g @ columns.reshape(KERNEL, -1)).reshape(ALPHA, KERNEL, -1)
    # (6_a, 6_b, K) = (6_b, 3_j) @ (6_a, 3_j, K): (G g) G^T
    transformed = np.matmul(g, rows_done)
    return transformed.reshape(ALPHA**2, groups, c_group, c_out // groups)


def transform_input(padded, tiles_high: int, tiles_wide: int) -> np.ndarray:
    """V = B^T d B for every 6x6 patch d (rows and columns starting at multiples of 4):
    padded (n, C, 4*th + 2, 4*tw + 2) -> (6, 6, C, n, th, tw)."""
    n, channels = padded.shape[:2]
    transformed = np.empty((ALPHA, ALPHA, channels, n, tiles_high, tiles_wide), padded.dtype)
    if enabled():
        _input_kernel(padded, tiles_high, tiles_wide, transformed)
    else:
        _input_numpy(padded, tiles_high, tiles_wide, transformed)
    return transformed


def transform_output(products, tiles_high: int, tiles_wide: int, bias, out) -> None:
    """out = A^T M A + bias for every tile, cropped to out's size: products
    (36, G, n*th*tw, C_out/G), bias (C_out,) -> out (n, C_out, H_out, W_out)."""
    if enabled():
        _output_kernel(products, tiles_high, tiles_wide, bias, out)
    else:
        _output_numpy(products, tiles_high, tiles_wide, bias, out)


def _every_tile(first: int, tiles: int) -> slice:
    """The positions `first`, first + 4, ... of `tiles` tiles along one axis."""
    return slice(first, first + TILE * (tiles - 1) + 1, TILE)


def _input_numpy(padded, tiles_high, tiles_wide, transformed) -> None:
    """B^T d B as two small matrix products over strided views of the tiles."""
    input_transform = INPUT_TRANSFORM.astype(padded.dtype)
    # column j of every tile: (6_j, n, C, Hp, tw)
    columns = np.stack([padded[..., _every_tile(j, tiles_wide)] for j in range(ALPHA)])
    # (6_b, n*C*Hp*tw) = (6_b, 6_j) @ (6_j, n*C*Hp*tw)
    across = (input_transform @ columns.reshape(ALPHA, -1)).reshape(columns.shape)
    del columns
    # row i of every tile, channels before images: (6_i, 6_b, C, n, th, tw)
    rows = np.empty((ALPHA, *transformed.shape[1:]), padded.dtype)
    for i in range(ALPHA):
        rows[i] = across[:, :, :, _every_tile(i, tiles_high)].transpose(0, 2, 1, 3, 4)
    del across
    # (6_a, 6_b*C*n*th*tw) = (6_a, 6_i) @ (6_i, 6_b*C*n*th*tw)
    np.matmul(input_transform, rows.reshape(ALPHA, -1),
              out=transformed.reshape(ALPHA, -1))


def _output_numpy(products, tiles_high, tiles_wide, bias, out) -> None:
    """A^T M A as two small matrix products, then the tiles laid out as images and cropped."""
    _, groups, _, c_group = products.shape
    n, c_out = out.shape[:2]
    output_transform = OUTPUT_TRANSFORM.astype(products.dtype)
    # (4_p, 6_b*G*n*th*tw*Cog) = (4_p, 6_a) @ (6_a, 6_b*G*n*th*tw*Cog)
    down = (output_transform @ products.reshape(ALPHA, -1)).reshape(TILE, ALPHA, -1)
    across_first = down.transpose(1, 0, 2).reshape(ALPHA, -1)     # (6_b, 4_p*G*n*th*tw*Cog)
    del down
    # (4_q, 4_p*G*n*th*tw*Cog) = (4_q, 6_b) @ (6_b, 4_p*G*n*th*tw*Cog)
    tiles = (output_transform @ across_first).reshape(
        TILE, TILE, groups, n, tiles_high, tiles_wide, c_group)
    # tiles[q, p, g, n, ty, tx, j] -> image[n, g*Cog + j, ty*4 + p, tx*4 + q]
    images = tiles.transpose(3, 2, 6, 4, 1, 5, 0).reshape(n, c_out, TILE * tiles_high,
                                                          TILE * tiles_wide)
    out_height, out_width = out.shape[2:]
    np.add(images[..., :out_height, :out_width], bias.reshape(1, c_out, 1, 1), out=out)


@jit(parallel=True)
def _input_kernel(padded, tiles_high, tiles_wide, transformed):
    """Compiled B^T d B: padded (n, C, Hp, Wp) -> transformed (6, 6, C, n, th, tw).

    Per (image, channel) and row of tiles: first B^T down the 6 rows the tiles read, for
    every column at once (`across`, (6, Wp)), then B^T along each tile's 6 columns."""
    n, channels, _, width = padded.shape
    for job in prange(n * channels):
        image, channel = job // channels, job % channels
        across = np.empty((ALPHA, width), padded.dtype)
        for tile_row in range(tiles_high):
            top = TILE * tile_row
            for col in range(width):
                d0 = padded[image, channel, top, col]
                d1 = padded[image, channel, top + 1, col]
                d2 = padded[image, channel, top + 2, col]
                d3 = padded[image, channel, top + 3, col]
                d4 = padded[image, channel, top + 4, col]
                d5 = padded[image, channel, top + 5, col]
                # the rows of B^T, with the shared differences factored out
                odd, even = d1 - d3, d2 - d4
                across[0, col] = 2 * (d0 + d4) - 3 * odd - 4 * d2
                across[1, col] = 2 * (d4 - d1) + d2 + 5 * d3
                across[2, col] = 5 * d2 - d3 - 2 * (d1 + d4)
                across[3, col] = 2 * odd + even
                across[4, col] = odd - 2 * even
                across[5, col] = 2 * (d1 + d5) - 3 * even - 4 * d3
            for a in range(ALPHA):
                row = across[a]
                done = transformed[a, :, channel, image, tile_row]     # (6_b, tw)
                for tile_col in range(tiles_wide):
                    left = TILE * tile_col
                    d0 = row[left]
                    d1 = row[left + 1]
                    d2 = row[left + 2]
                    d3 = row[left + 3]
                    d4 = row[left + 4]
                    d5 = row[left + 5]
                    odd, even = d1 - d3, d2 - d4
                    done[0, tile_col] = 2 * (d0 + d4) - 3 * odd - 4 * d2
                    done[1, tile_col] = 2 * (d4 - d1) + d2 + 5 * d3
                    done[2, tile_col] = 5 * d2 - d3 - 2 * (d1 + d4)
                    done[3, tile_col] = 2 * odd + even
                    done[4, tile_col] = odd - 2 * even
                    done[5, tile_col] = 2 * (d1 + d5) - 3 * even - 4 * d3


@jit(parallel=True)
def _output_kernel(products, tiles_high, tiles_wide, bias, out):
    """Compiled A^T M A + bias: products (36, G, n*th*tw, Cog) -> out (n, C_out, H, W).

    Per image and row of tiles: A^T along each tile's 6 columns, for every channel at once
    (contiguous in M; `across`, (6, 4*tw, G, Cog)), then A^T down the 6 rows, channel by
    channel, into the output rows that lie inside the output."""
    _, groups, _, c_group = products.shape
    n, c_out, out_height, out_width = out.shape
    for job in prange(n * tiles_high):
        image, tile_row = job // tiles_high, job % tiles_high
        across = np.empty((ALPHA, TILE * tiles_wide, groups, c_group), products.dtype)
        down = np.empty((TILE, out_width), products.dtype)
        for tile_col in range(tiles_wide):
            tile = job * tiles_wide + tile_col     # (image, tile_row, tile_col) in M's order
            left = TILE * tile_col
            for a in range(ALPHA):
                for g in range(groups):
                    for j in range(c_group):
                        m0 = products[ALPHA * a, g, tile, j]
                        m1 = products[ALPHA * a + 1, g, tile, j]
                        m2 = products[ALPHA * a + 2, g, tile, j]
                        m3 = products[ALPHA * a + 3, g, tile, j]
                        m4 = products[ALPHA * a + 4, g, tile, j]
                        m5 = products[ALPHA * a + 5, g, tile, j]
                        # the rows of A^T, with the shared sums factored out
                        plus, minus = m1 + m2, m1 - m2
                        across[a, left, g, j] = m0 + plus + 8 * m3 + m4
                        across[a, left + 1, g, j] = minus + 4 * m3 - 2 * m4
                        across[a, left + 2, g, j] = plus + 2 * m3 + 4 * m4
                        across[a, left + 3, g, j] = minus + m3 - 8 * m4 + m5
        top = TILE * tile_row
        for g in range(groups):
            for j in range(c_group):
                for col in range(out_width):
                    m0 = across[0, col, g, j]
                    m1 = across[1, col, g, j]
                    m2 = across[2, col, g, j]
                    m3 = across[3, col, g, j]
                    m4 = across[4, col, g, j]
                    m5 = across[5, col, g, j]
                    plus, minus = m1 + m2, m1 - m2
                    down[0, col] = m0 + plus + 8 * m3 + m4
                    down[1, col] = minus + 4 * m3 - 2 * m4
                    down[2, col] = plus + 2 * m3 + 4 * m4
                    down[3, col] = minus + m3 - 8 * m4 + m5
                channel = g * c_group + j
                for p in range(min(TILE, out_height - top)):
                    for col in range(out_width):
                        out[image, channel, top + p, col] = down[p, col] + bias[channel]
