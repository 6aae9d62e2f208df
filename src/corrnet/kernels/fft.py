"""2-D convolution (cross-correlation, as in deep learning) by the fast Fourier transform.

Direct convolution and im2col + GEMM cost about kh*kw multiply-adds per output pixel per
channel pair; by FFT the cost per pixel grows only with log(H*W) and hardly at all with the
kernel: transform each image and each kernel once, multiply the spectra, transform back.
Measured on 2 cores against im2col + GEMM (float32, stride 1, forward + both gradients), it
wins from 7x7 kernels with channels on 32x32 images and up, and on single-channel images
from 5x5 at 128x128 and up (9x9 at 64x64); grad_input wins earliest (im2col's col2im is slow),
the forward pass latest. It loses for the 3x3 kernels of most layers.

The grid. Every spatial plane is laid on an Fh x Fw grid (sizes from scipy.fft.next_fast_len)
and the transforms are circular: index arithmetic is modulo (Fh, Fw). The input image sits at
the grid's origin, unpadded, with zeros after it; kernel tap (i, j) sits at

    ((i*dh - top) mod Fh, (j*dw - left) mod Fw)

(the dilation spreads the taps, the padding shifts them backwards). Then the circular
cross-correlation of the image with that kernel plane, at grid cell (y*sh, x*sw), is exactly

    out[y, x] = sum_{i,j} w[i, j] * x[y*sh + i*dh - top, x*sw + j*dw - left]

with zeros where the index is outside the image: the grid is chosen large enough that every
index the windows reach falls either on the image or on the zeros behind it (top padding
wraps around to the end of the grid, bottom padding runs into it), never onto the image
again. That needs Fh >= H + top and Fh >= (last row any window reaches) - top, and the kernel
taps and the output cells must not collide modulo Fh (`_grid_length`); Fh can be smaller than
the padded height H + top + bottom, since top and bottom padding share the same zeros.

The three passes, per spatial frequency f (hats are 2-D real FFTs on the grid, * conjugate;
G = groups, Cg = C_in/G input and Og = C_out/G output channels per group; `grad` is the
upstream gradient placed on the grid at the output cells (y*sh, x*sw), zeros elsewhere):

    forward      out^[n, o]  = sum_c  w^*[o, c] x^[n, c]        (correlation: conjugate)
    grad_input   gx^[n, c]   = sum_o  w^[o, c] grad^[n, o]      (the adjoint: convolution)
    grad_weight  gw^[o, c]   = sum_n  grad^*[n, o] x^[n, c]     (then read at the taps)

followed by the inverse transform and the read-off: the output cells for the forward pass,
the image region [0, H) x [0, W) for grad_input, the tap cells for grad_weight. Each sum over
channels is, per frequency, one small complex matrix product; with the F = Fh*(Fw//2+1)
frequencies as the batch axis all of them are one batched matmul, e.g. for the forward pass
(G, F, Og, n) = (G, F, Og, Cg) @ (G, F, Cg, n). Where the contracted axis has length 1
(single-channel images, depthwise convolution) it is an elementwise product instead.

A kernel has only kh*kw cells on its grid plane that are not zero: its real FFT runs along
the kh tap rows only, and the column transform is an FFT or, for large grids, a product with
a DFT matrix over the kh tap rows (`_kernel_spectra`); grad_weight reads its result back at
the taps the same way (`_values_at_taps`).

Large images: tiles (overlap-save). One transform of a whole 4096x4096 plane runs out of the
caches: every pass of the FFT over its columns goes to memory. Where the grid of a stride-1
forward pass exceeds `TILE_GRID_SIZE` numbers, the output is cut into tiles of th x tw
outputs and each tile's input (th + extent - 1 rows, likewise columns, zeros where it leaves
the image) is transformed on its own grid, a fast FFT length of at most `TILE_SIDE` a side
chosen so that the tiles' grids hold the fewest cells (`_tile_side`), with the kernels'
spectra computed once (`_tiled_forward`). The real FFT reads each tile as a view of the
input (no copy of the overlapping tiles; a zeroed copy only where a tile begins in the top or
left padding) and each tile's outputs go from the inverse transform straight into place.
About 15% more arithmetic than one big transform (the tiles overlap by extent - 1), measured
3-4x faster on a 4096x4096 image with a 31x31 kernel; the grids' sides and the copies left
out took a 2048x2048 image with a 31x31 kernel from 35 to 27-28 ms (4096x4096: 118 to 94 ms),
OpenCV's filter2D 26 and 98-100 ms in the same runs. The tiles are shared among corrnet's
threads, each taking one tile at a time through all its steps on one core, rather than
each step of a row of tiles split between the cores: the tile's planes stay in that core's
cache from the forward transform to the copy of its outputs, and the copies, the products
and the bias run on both cores too. Measured interleaved with the row-by-row version (2
cores, AMD EPYC; three rounds): 4096x4096 with a 31x31 kernel 78-110 ms against 97-168,
2048x2048 17-27 against 30-34; OpenCV 95-106 and 27-33.

Stride > 1 is done by computing every grid cell and keeping every sh-th row and sw-th column
(so it costs as much as stride 1: `supports` allows strides up to `MAX_STRIDE`).

Precision: float32 mostly stays float32 (scipy.fft transforms float32 in single precision,
complex64). The FFT's rounding error is not relative to each output but to the whole
transform: about eps * log2(Fh*Fw) times the magnitude of the largest sums, so small outputs
next to large ones carry a larger relative error than with direct convolution. The tests
hold every float32 output to 1e-5 * S (float64: 1e-12 * S), S the largest sum of |terms|
of the pass, e.g. max over outputs of sum_{c,i,j} |w| |x| for the forward pass; measured
errors are far below (4096x4096 single-channel float32: 1e-7 to 3e-7 * S). Against PyTorch's
float32 error (issue 11, item 12: within 2x, RMS-relative to the float64 result,
tests/test_float32_accuracy.py) the FFT in single precision loses where each output sums few
terms, for direct summation is then very accurate: measured 4.3x PyTorch's error at 9 terms
per output (3x3, one channel), 2.4x at 25, 1.8x at 49, 1.2-1.5x at 75-121, under 1x from
about 200; and with 3x3 kernels at any channel count (1.5-1.9x at 64-256 channels on
ReLU-like inputs, against 1.2x at 5x5 and under 1x from 7x7). So where a pass sums fewer
than `FLOAT32_MIN_TERMS` terms per output (Cg*kh*kw for the forward pass, Og*kh*kw for
grad_input, N*H_out*W_out for grad_weight), or the forward or grad_input pass has a kernel
of fewer than `FLOAT32_MIN_TAPS` taps, float32 operands are transformed in float64
(complex128) and the result rounded to float32 once: twice the spectra's memory and roughly
twice the time, on shapes where the planner picks im2col or the direct kernels anyway.

Memory: the spectra of a block of images and channels are held at once; blocks are sized so
that they stay within `budget` bytes (`_block_sizes`). The smallest block is one image, one
group and one produced channel with all the channels summed over; where that alone exceeds
the budget (a huge image), the pass goes over it.

The number of threads scipy.fft uses is `WORKERS` (default: os.cpu_count(), or the
environment variable CORRNET_FFT_WORKERS) for transforms of PARALLEL_FFT_SIZE numbers or more,
one below; assign ``corrnet.kernels.fft.WORKERS = n`` to change it at run time. The tiled
forward pass instead shares its tiles among corrnet's own threads (``corrnet.set_num_threads``,
fewer under load: `threads.active`), one transform thread each.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .windows import Window2d


def _sfft():
    """scipy.fft, imported on first use: it takes longer to import than all of corrnet."""
    import scipy.fft
    return scipy.fft

WORKERS = int(os.environ.get("CORRNET_FFT_WORKERS") or 0) or os.cpu_count() or 1

# Strided convolution is computed at stride 1 and subsampled: at stride s the FFT does s*s
# times the work the output needs, which only pays off for small s.
MAX_STRIDE = 2

DEFAULT_BUDGET = 256 * 2**20

# Below this many terms per output, or for kernels of fewer taps, a float32 forward or
# grad_input pass is computed in float64 (see Precision); grad_weight by its terms only.
FLOAT32_MIN_TERMS = 100
FLOAT32_MIN_TAPS = 25

# Transforms of fewer numbers than this run on one thread: below it (one 512x512 plane) the
# threads cost more than they save on 2 cores.
PARALLEL_FFT_SIZE = 2**18

# A stride-1 forward pass whose grid holds more numbers than this runs on tiles (see Large
# images): beyond it (a 1024x1024 plane, 4 MiB of float32) the transforms leave the caches.
TILE_GRID_SIZE = 2**20
# The largest side of a tile's grid: a fast FFT length, a plane of a few hundred KiB at most.
TILE_SIDE = 512

# Column DFTs of kernels of at least this many numbers (G*Fh*Fr*P*Q) are one matrix product
# with a DFT matrix over the kh tap rows instead of an FFT of the mostly-zero grid columns:
# fewer operations for large grids, but below this BLAS's threads cost more than they save.
MATMUL_DFT_SIZE = 2**21


def _workers(array: np.ndarray) -> int:
    """Threads for transforming `array`: WORKERS for large ones, else 1."""
    return WORKERS if array.size >= PARALLEL_FFT_SIZE else 1


def working_dtype(dtype, terms: int, taps: int = FLOAT32_MIN_TAPS) -> np.dtype:
    """The dtype a pass transforms in: float32 in float64 where each output sums fewer than
    `FLOAT32_MIN_TERMS` terms or the kernel has fewer than `FLOAT32_MIN_TAPS` taps (see
    Precision), else the operands' own."""
    dtype = np.dtype(dtype)
    if dtype == np.float32 and (terms < FLOAT32_MIN_TERMS or taps < FLOAT32_MIN_TAPS):
        return np.dtype(np.float64)
    return dtype


def supports(x_shape, weight_shape, window: Window2d, groups: int, dtype,
             pass_name: str) -> bool:
    """Floating inputs (float32, float64), stride at most MAX_STRIDE along each axis; every
    padding, dilation and grouping, and all three passes."""
    dtype = np.dtype(dtype)
    return (dtype in (np.float32, np.float64) and max(window.stride) <= MAX_STRIDE
            and pass_name in ("forward", "grad_input", "grad_weight"))


# ---------------------------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------------------------


def _grid_length(size: int, before: int, kernel_extent: int, out_span: int) -> int:
    """The FFT length along one axis (see the module docstring).

    size: image length; before: padding before it; kernel_extent: dilation*(k-1)+1;
    out_span: (out-1)*stride+1, the grid cells holding outputs. The windows reach the image
    indices [-before, out_span + kernel_extent - 1 - before); the indices past the image must
    land on the grid's zeros ([size, length)), and the negative ones wrap around onto them.
    The kernel's taps and the output cells must each be distinct modulo the length.
    """
    reach_end = out_span + kernel_extent - 1 - before
    needed = max(size + before, reach_end, kernel_extent, out_span)
    return _sfft().next_fast_len(needed, real=True)


@dataclass(frozen=True)
class _Grid:
    """Where everything sits on the Fh x Fw FFT grid of one window geometry."""

    height: int               # Fh
    width: int                # Fw
    tap_rows: np.ndarray      # (kh,): grid row of kernel row i, (i*dh - top) mod Fh
    tap_cols: np.ndarray      # (kw,)
    out_rows: slice           # grid rows holding output rows 0, 1, ..: 0, sh, 2*sh, ...
    out_cols: slice

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def frequencies(self) -> int:
        """Number of spectrum cells of one plane: Fh * (Fw//2 + 1)."""
        return self.height * (self.width // 2 + 1)


def fft_grid(window: Window2d) -> _Grid:
    """The FFT grid for a window geometry."""
    lengths, taps, outs = [], [], []
    for axis, size in enumerate((window.height, window.width)):
        kernel, stride = window.kernel[axis], window.stride[axis]
        dilation, before = window.dilation[axis], window.padding[axis][0]
        out = (window.out_height, window.out_width)[axis]
        length = _grid_length(size, before, dilation * (kernel - 1) + 1, (out - 1) * stride + 1)
        lengths.append(length)
        taps.append((np.arange(kernel) * dilation - before) % length)
        outs.append(slice(0, (out - 1) * stride + 1, stride))
    return _Grid(lengths[0], lengths[1], taps[0], taps[1], outs[0], outs[1])


def _image_spectra(images: np.ndarray, grid: _Grid, workers: int | None = None) -> np.ndarray:
    """(..., H, W) real planes at the grid's origin -> (..., Fh, Fw//2+1) spectra, on
    `workers` threads (default `_workers`)."""
    return _sfft().rfft2(images, s=grid.shape, workers=workers or _workers(images))


def _output_spectra(grad_out: np.ndarray, grid: _Grid) -> np.ndarray:
    """(..., H_out, W_out) -> spectra of the planes holding them at the output cells."""
    if grid.out_rows.step == 1 and grid.out_cols.step == 1:
        # rfft2 pads with zeros up to the grid's size
        return _sfft().rfft2(grad_out, s=grid.shape, workers=_workers(grad_out))
    planes = np.zeros(grad_out.shape[:-2] + grid.shape, dtype=grad_out.dtype)
    planes[..., grid.out_rows, grid.out_cols] = grad_out
    return _sfft().rfft2(planes, workers=_workers(planes), overwrite_x=True)


def _tap_row_dft(grid: _Grid, dtype) -> np.ndarray:
    """(Fh, kh): the DFT along a grid column of a column that is zero but at the tap rows,
    dft[u, i] = exp(-2 pi sqrt(-1) u tap_rows[i] / Fh), complex of `dtype`'s precision."""
    phase = (np.arange(grid.height)[:, None] * grid.tap_rows[None, :]) % grid.height
    return np.exp(-2j * np.pi * phase / grid.height).astype(np.result_type(dtype, np.complex64))


def _kernel_spectra(weight: np.ndarray, grid: _Grid) -> np.ndarray:
    """Kernels (G, P, Q, kh, kw), taps placed on the grid -> spectra (G, Fh, Fr, P, Q), one
    (P, Q) matrix per frequency, Fr = Fw//2 + 1.

    The 2-D real FFT in its two steps, the first skipping the grid's empty rows: the real FFT
    along the kh rows holding taps, then the complex DFT along the columns: an FFT of the
    mostly-zero columns, or for large grids (MATMUL_DFT_SIZE) a matrix product over the kh
    tap rows only.
    """
    groups, rows, inner, kh, kw = weight.shape
    on_rows = np.zeros((groups, kh, grid.width, rows, inner), dtype=weight.dtype)
    on_rows[:, :, grid.tap_cols] = weight.transpose(0, 3, 4, 1, 2)      # (G, kh, Fw, P, Q)
    row_spectra = _sfft().rfft(on_rows, axis=2, workers=_workers(on_rows))  # (G, kh, Fr, P, Q)
    shape = (groups, grid.height, *row_spectra.shape[2:])               # (G, Fh, Fr, P, Q)
    if math.prod(shape) >= MATMUL_DFT_SIZE:
        # (G, Fh, Fr*P*Q) = (Fh, kh) @ (G, kh, Fr*P*Q)
        spectra = _tap_row_dft(grid, weight.dtype) @ row_spectra.reshape(groups, kh, -1)
        return spectra.reshape(shape)
    spectra = np.zeros(shape, dtype=row_spectra.dtype)
    spectra[:, grid.tap_rows] = row_spectra
    return _sfft().fft(spectra, axis=1, workers=_workers(spectra), overwrite_x=True)


def _values_at_taps(spectra: np.ndarray, grid: _Grid) -> np.ndarray:
    """The inverse of `_kernel_spectra`, read at the taps: spectra (G, Fh, Fr, P, Q) ->
    (G, P, Q, kh, kw). The inverse complex DFT along the columns (an FFT, or for large grids a
    matrix product giving the kh tap rows only), then the inverse real FFT of the kh tap rows.
    Overwrites `spectra`."""
    groups, height, fr, rows, inner = spectra.shape
    if spectra.size >= MATMUL_DFT_SIZE:
        inverse = np.conj(_tap_row_dft(grid, spectra.real.dtype)).T / height  # (kh, Fh)
        # (G, kh, Fr*P*Q) = (kh, Fh) @ (G, Fh, Fr*P*Q)
        tap_rows = inverse @ spectra.reshape(groups, height, -1)
        tap_rows = tap_rows.reshape(groups, -1, fr, rows, inner)
    else:
        columns = _sfft().ifft(spectra, axis=1, workers=_workers(spectra), overwrite_x=True)
        tap_rows = columns[:, grid.tap_rows]                            # (G, kh, Fr, P, Q)
    tap_rows = _sfft().irfft(tap_rows, n=grid.width, axis=2, workers=_workers(tap_rows))
    return tap_rows[:, :, grid.tap_cols].transpose(0, 3, 4, 1, 2)       # (G, P, Q, kh, kw)


def _planes(spectra: np.ndarray, grid: _Grid, workers: int | None = None) -> np.ndarray:
    """(..., Fh, Fw//2+1) spectra -> (..., Fh, Fw) real planes, on `workers` threads (default
    `_workers`)."""
    return _sfft().irfft2(spectra, s=grid.shape, workers=workers or _workers(spectra),
                          overwrite_x=True)


# ---------------------------------------------------------------------------------------------
# the per-frequency channel sums
# ---------------------------------------------------------------------------------------------


def _frequency_major(spectra: np.ndarray) -> np.ndarray:
    """(n, G, C, Fh, Fr) -> (G, F, C, n) contiguous: one (C, n) matrix per frequency."""
    n, groups, channels = spectra.shape[:3]
    return np.ascontiguousarray(spectra.reshape(n, groups, channels, -1).transpose(1, 3, 2, 0))


def _prepared(matrices: np.ndarray) -> np.ndarray:
    """Per-frequency matrices (G, Fh, Fr, P, Q) in the layout `_apply` wants: (G, P, Fh, Fr)
    contiguous when Q == 1 (an elementwise product), else (G, F, P, Q) for matmul."""
    groups, fh, fr, rows, inner = matrices.shape
    if inner == 1:
        return np.ascontiguousarray(matrices[..., 0].transpose(0, 3, 1, 2))
    return matrices.reshape(groups, fh * fr, rows, inner)


def _apply(prepared: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """out[n, g, p, f] = sum_q matrix[g, f, p, q] * spectra[n, g, q, f] for every frequency f.

    prepared: from `_prepared`; spectra (n, G, Q, Fh, Fr) -> (n, G, P, Fh, Fr).
    """
    n, groups, inner, fh, fr = spectra.shape
    if inner == 1:
        if prepared.shape[1] == 1:    # one channel in, one out: an elementwise product
            return np.multiply(spectra, prepared, out=spectra)
        # (n, G, P, Fh, Fr) = (n, G, 1, Fh, Fr) * (G, P, Fh, Fr)
        return spectra * prepared
    rows = prepared.shape[2]
    # (G, F, P, n) = (G, F, P, Q) @ (G, F, Q, n)
    products = np.matmul(prepared, _frequency_major(spectra))
    return np.ascontiguousarray(products.transpose(3, 0, 2, 1)).reshape(n, groups, rows, fh, fr)


def _correlate_batch(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """out[g, f, p, q] = sum_n conj(left[n, g, p, f]) * right[n, g, q, f].

    left (n, G, P, Fh, Fr), right (n, G, Q, Fh, Fr) -> (G, Fh, Fr, P, Q).
    """
    n, groups, rows, fh, fr = left.shape
    inner = right.shape[2]
    if inner == 1:
        # (G, P, Fh, Fr) = sum over n of (n, G, P, Fh, Fr) * (n, G, 1, Fh, Fr)
        products = np.conj(left, out=left)
        products *= right
        return products.sum(axis=0).transpose(0, 2, 3, 1)[..., None]
    left = _frequency_major(left)
    # (G, F, P, Q) = (G, F, P, n) @ (G, F, n, Q)
    products = np.matmul(np.conj(left, out=left), _frequency_major(right).transpose(0, 1, 3, 2))
    return products.reshape(groups, fh, fr, rows, inner)


# ---------------------------------------------------------------------------------------------
# blocks within the memory budget
# ---------------------------------------------------------------------------------------------


def _block_sizes(n: int, groups: int, produced: int, contracted: int, grid: _Grid,
                 itemsize: int, budget: int) -> tuple[int, int, int]:
    """How many groups, produced channels per group and images to do at once.

    Per block the pass holds the per-frequency matrices (groups x produced x contracted
    spectra, with up to two more copies of that size: the frequency-major layout, grad_weight's
    per-chunk sum and the read-off at the taps) and per image the contracted and produced
    spectra (each with a frequency-major copy) and the produced real planes. Halve the groups,
    then the produced channels, until one image fits; then take as many images as fit.
    """
    fixed, per_image = _block_bytes(grid, contracted, itemsize)
    group_block, produced_block = groups, produced
    while fixed(group_block, produced_block) + per_image(group_block, produced_block) > budget:
        if group_block > 1:
            group_block = math.ceil(group_block / 2)
        elif produced_block > 1:
            produced_block = math.ceil(produced_block / 2)
        else:
            break
    spare = budget - fixed(group_block, produced_block)
    images = max(1, min(n, spare // per_image(group_block, produced_block)))
    return group_block, produced_block, images


def _block_bytes(grid: _Grid, contracted: int, itemsize: int):
    """The two parts of a block's bytes (see `_block_sizes`), as functions of the block's
    groups gb and produced channels pb: fixed(gb, pb) and per_image(gb, pb)."""
    spectrum = grid.frequencies * 2 * itemsize                    # bytes of one complex plane
    plane = grid.height * grid.width * itemsize                   # bytes of one real plane

    def fixed(gb, pb):
        return gb * pb * contracted * 3 * spectrum

    def per_image(gb, pb):
        return gb * ((contracted + pb) * 2 * spectrum + pb * plane)

    return fixed, per_image


def least_bytes(x_shape, weight_shape, window: Window2d, groups: int, dtype,
                pass_name: str) -> int:
    """The bytes of the smallest block: one image, one group, one produced channel."""
    c_out, c_group, kh, kw = weight_shape
    contracted = c_out // groups if pass_name == "grad_input" else c_group
    if pass_name == "grad_weight":
        work = working_dtype(dtype, x_shape[0] * window.out_height * window.out_width)
    else:
        work = working_dtype(dtype, contracted * kh * kw, kh * kw)
    grid = fft_grid(window)
    if pass_name == "forward" and _tiles(window, grid) is not None:
        grid = fft_grid(_tile_window(window))         # one tile's block (see `_tiled_forward`)
    fixed, per_image = _block_bytes(grid, contracted, work.itemsize)
    return fixed(1, 1) + per_image(1, 1)


def _blocks(total: int, size: int):
    """Consecutive slices of at most `size` covering range(total)."""
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def _grouped(array: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, ...) -> (N, G, C/G, ...), a view."""
    return array.reshape(array.shape[0], groups, array.shape[1] // groups, *array.shape[2:])


# ---------------------------------------------------------------------------------------------
# the three passes
# ---------------------------------------------------------------------------------------------


def forward(x, weight, bias, window: Window2d, groups: int = 1,
            budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """out (N, C_out, H_out, W_out) = the cross-correlation of x (N, C_in, H, W) with weight
    (C_out, C_in/G, kh, kw), plus bias (C_out,) or None."""
    if _tiles(window, fft_grid(window)) is not None:
        return _tiled_forward(x, weight, bias, window, groups, budget)
    return _whole_forward(x, weight, bias, window, groups, budget)


def _whole_forward(x, weight, bias, window: Window2d, groups: int, budget: int) -> np.ndarray:
    """The forward pass on one grid holding each whole plane."""
    n = x.shape[0]
    c_out, c_group, kh, kw = weight.shape
    grid = fft_grid(window)
    work = working_dtype(x.dtype, c_group * kh * kw, kh * kw)
    weight = _grouped(weight.astype(work, copy=False)[None], groups)[0]  # (G, Og, Cg, kh, kw)
    x_grouped = _grouped(x, groups)                                      # (N, G, Cg, H, W)
    out = np.empty((n, c_out, window.out_height, window.out_width), dtype=x.dtype)
    out_grouped = _grouped(out, groups)                              # (N, G, Og, H_out, W_out)
    group_block, out_block, image_block = _block_sizes(
        n, groups, c_out // groups, c_group, grid, work.itemsize, budget)
    # blocks: groups gs, output channels (within each group) ks, images ns
    for gs in _blocks(groups, group_block):
        for ks in _blocks(c_out // groups, out_block):
            kernels = _kernel_spectra(weight[gs, ks], grid)          # (G', Fh, Fr, Og', Cg)
            kernels = _prepared(np.conj(kernels, out=kernels))       # the forward correlates
            for ns in _blocks(n, image_block):
                spectra = _image_spectra(x_grouped[ns, gs].astype(work, copy=False),
                                         grid)                       # (n', G', Cg, Fh, Fr)
                products = _apply(kernels, spectra)                      # (n', G', Og', Fh, Fr)
                out_grouped[ns, gs, ks] = _planes(products, grid)[..., grid.out_rows,
                                                                  grid.out_cols]
    if bias is not None:
        out += bias.astype(x.dtype, copy=False).reshape(1, c_out, 1, 1)
    return out


def grad_input(grad_out, weight, window: Window2d, groups: int, x_shape,
               budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d x (N, C_in, H, W): grad_out convolved with the kernels (the adjoint of the
    forward correlation), summed over output channels, read back on the image region."""
    n, c_in, height, width = x_shape
    c_out, c_group, kh, kw = weight.shape
    grid = fft_grid(window)
    work = working_dtype(grad_out.dtype, c_out // groups * kh * kw, kh * kw)
    # (G, Cg, Og, kh, kw): per group, input channels by output channels
    weight = _grouped(weight.astype(work, copy=False)[None], groups)[0].transpose(0, 2, 1, 3, 4)
    grad_grouped = _grouped(grad_out, groups)                        # (N, G, Og, H_out, W_out)
    grad_x = np.empty((n, c_in, height, width), dtype=grad_out.dtype)
    grad_x_grouped = _grouped(grad_x, groups)                        # (N, G, Cg, H, W)
    group_block, in_block, image_block = _block_sizes(
        n, groups, c_group, c_out // groups, grid, work.itemsize, budget)
    # blocks: groups gs, input channels (within each group) cs, images ns
    for gs in _blocks(groups, group_block):
        for cs in _blocks(c_group, in_block):
            kernels = _prepared(_kernel_spectra(weight[gs, cs], grid))   # (G', Fh, Fr, Cg', Og)
            for ns in _blocks(n, image_block):
                spectra = _output_spectra(grad_grouped[ns, gs].astype(work, copy=False),
                                          grid)                      # (n', G', Og, Fh, Fr)
                products = _apply(kernels, spectra)                      # (n', G', Cg', Fh, Fr)
                grad_x_grouped[ns, gs, cs] = _planes(products, grid)[..., :height, :width]
    return grad_x


def grad_weight(grad_out, x, weight_shape, window: Window2d, groups: int = 1,
                budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """d loss / d weight (C_out, C_in/G, kh, kw): the correlation of x with grad_out, summed
    over the batch in frequency space, read at the kernel's taps."""
    n = x.shape[0]
    c_out, c_group = weight_shape[:2]
    grid = fft_grid(window)
    work = working_dtype(grad_out.dtype, n * window.out_height * window.out_width)
    x_grouped = _grouped(x, groups)                                  # (N, G, Cg, H, W)
    grad_grouped = _grouped(grad_out, groups)                        # (N, G, Og, H_out, W_out)
    grad_w = np.empty(weight_shape, dtype=grad_out.dtype)
    grad_w_grouped = _grouped(grad_w[None], groups)[0]               # (G, Og, Cg, kh, kw)
    group_block, out_block, image_block = _block_sizes(
        n, groups, c_out // groups, c_group, grid, work.itemsize, budget)
    # blocks: groups gs, output channels (within each group) ks, images ns
    for gs in _blocks(groups, group_block):
        for ks in _blocks(c_out // groups, out_block):
            total = None                                             # (G', Fh, Fr, Og', Cg)
            for ns in _blocks(n, image_block):
                grads = _output_spectra(grad_grouped[ns, gs, ks].astype(work, copy=False),
                                        grid)                        # (n', G', Og', Fh, Fr)
                images = _image_spectra(x_grouped[ns, gs].astype(work, copy=False),
                                        grid)                        # (n', G', Cg, Fh, Fr)
                batch_sum = _correlate_batch(grads, images)              # (G', Fh, Fr, Og', Cg)
                total = batch_sum if total is None else np.add(total, batch_sum, out=total)
            grad_w_grouped[gs, ks] = _values_at_taps(total, grid)
    return grad_w


# ---------------------------------------------------------------------------------------------
# large images: the forward pass on tiles
# ---------------------------------------------------------------------------------------------


def _extent(window: Window2d, axis: int) -> int:
    """The rows (axis 0) or columns (axis 1) one window spans: dilation*(k-1)+1."""
    return window.dilation[axis] * (window.kernel[axis] - 1) + 1


def _tile_side(out: int, extent: int) -> int:
    """Outputs per tile along one axis: all of them where they fit one grid of TILE_SIDE
    (out + extent - 1 <= TILE_SIDE); else a tile whose input, outputs + extent - 1, is a fast
    FFT length T of at most TILE_SIDE, the one whose count of tiles times T is least (the
    transforms' cost along this axis, about proportional to the grid cells). E.g. 2018
    outputs of a 31-tap kernel: 7 tiles of 290 on grids of 320 (2240 cells) rather than 5
    of 482 on 512 (2560)."""
    if out + extent - 1 <= TILE_SIDE:
        return out
    fewest = -(-out // (TILE_SIDE - extent + 1))
    best = None
    for count in range(fewest, fewest + 4):
        length = _sfft().next_fast_len(-(-out // count) + extent - 1, real=True)
        if length <= TILE_SIDE and (best is None or count * length < best[0]):
            best = (count * length, length)
    return best[1] - extent + 1


def _tiles(window: Window2d, grid: _Grid) -> tuple[int, int] | None:
    """The output tile's (rows, columns) where the forward pass runs on tiles (stride 1, a
    grid of more than TILE_GRID_SIZE numbers, windows at most TILE_SIDE / 4 across); else
    None. Each side from `_tile_side`."""
    if window.stride != (1, 1) or grid.height * grid.width <= TILE_GRID_SIZE:
        return None
    extents = (_extent(window, 0), _extent(window, 1))
    if max(extents) > TILE_SIDE // 4:
        return None
    return (_tile_side(window.out_height, extents[0]), _tile_side(window.out_width, extents[1]))


def _tile_window(window: Window2d) -> Window2d:
    """The tiles' own window: 'valid' on a tile's input of (outputs + extent - 1) a side."""
    from .windows import make_window

    tile_rows, tile_cols = _tiles(window, fft_grid(window))
    tile_in = (tile_rows + _extent(window, 0) - 1, tile_cols + _extent(window, 1) - 1)
    return make_window("conv2d", *tile_in, window.kernel, (1, 1), ((0, 0), (0, 0)),
                       window.dilation)


def _tile_input(planes: np.ndarray, first_row: int, first_col: int, size) -> np.ndarray:
    """The padded input's block of `size` (rows, columns) from x's row `first_row` and column
    `first_col` (negative ones lie in the top or left padding), for planes (..., H, W): a view
    of the planes, cut short where they end (the real FFT pads it with zeros up to the grid,
    from no rows at all for a tile in the bottom padding), or where the block begins in the
    top or left padding, a zeroed copy."""
    rows, cols = size
    view = planes[..., max(first_row, 0):max(first_row + rows, 0),
                  max(first_col, 0):max(first_col + cols, 0)]
    if first_row >= 0 and first_col >= 0:
        return view
    block = np.zeros(planes.shape[:-2] + (rows, cols), planes.dtype)
    top, left = max(-first_row, 0), max(-first_col, 0)
    block[..., top:top + view.shape[-2], left:left + view.shape[-1]] = view
    return block


def _tiled_forward(x, weight, bias, window: Window2d, groups: int, budget: int) -> np.ndarray:
    """The forward pass of a stride-1 window on tiles of outputs (see Large images).

    Output tile (a, b) covers outputs [a*th, (a+1)*th) x [b*tw, (b+1)*tw) and reads the padded
    input's rows [a*th, a*th + th + extent_h - 1) and columns likewise, i.e. x's rows from
    a*th - top (`_tile_input`: a view of x, or a zeroed copy where it begins in the padding).
    The tiles of all images are shared among corrnet's threads (`threads.run_pieces`: a run of
    consecutive tiles each), and each thread takes its tiles one at a time through the real
    FFT, the product with the kernels' spectra, the inverse FFT and the copy of its outputs
    (plus the bias) into place, on one thread each: all of them release the GIL, and a tile's
    planes stay in that core's cache from one step to the next. Where the memory budget holds
    one tile's transforms but not one per thread, the tiles run on the calling thread.
    """
    from .threads import active, run_pieces

    n = x.shape[0]
    c_out, c_group, kh, kw = weight.shape
    tile_rows, tile_cols = _tiles(window, fft_grid(window))
    (top, _), (left, _) = window.padding
    across = -(-window.out_width // tile_cols)                   # tiles in a row of tiles
    down = -(-window.out_height // tile_rows)
    tile_in = (tile_rows + _extent(window, 0) - 1, tile_cols + _extent(window, 1) - 1)
    grid = fft_grid(_tile_window(window))
    work = working_dtype(x.dtype, c_group * kh * kw, kh * kw)
    weight = _grouped(weight.astype(work, copy=False)[None], groups)[0]  # (G, Og, Cg, kh, kw)
    threads = active()
    group_block, out_block, at_once = _block_sizes(
        threads, groups, c_out // groups, c_group, grid, work.itemsize, budget)
    x_grouped = _grouped(x, groups)                                  # (N, G, Cg, H, W)
    out = np.empty((n, c_out, window.out_height, window.out_width), dtype=x.dtype)
    out_grouped = _grouped(out, groups)                              # (N, G, Og, H_out, W_out)
    if bias is not None:
        bias = _grouped(bias.astype(x.dtype, copy=False)[None], groups)[0]       # (G, Og)

    def run_tiles(gs, ks, kernels, first, end):
        """Tiles first ... end - 1 (image-major, then row-major), groups gs, channels ks."""
        for job in range(first, end):
            image, tile = divmod(job, down * across)
            row, column = divmod(tile, across)
            rows = slice(row * tile_rows, min((row + 1) * tile_rows, window.out_height))
            cols = slice(column * tile_cols, min((column + 1) * tile_cols, window.out_width))
            # (G', Cg, tile_in_h, tile_in_w), or fewer rows and columns where x ends
            tile_x = _tile_input(x_grouped[image, gs], rows.start - top, cols.start - left,
                                 tile_in).astype(work, copy=False)[None]
            spectra = _image_spectra(tile_x, grid, workers=1)        # (1, G', Cg, Fh, Fr)
            del tile_x                                   # (a copy in the padding: freed now)
            products = _apply(kernels, spectra)                      # (1, G', Og', Fh, Fr)
            planes = _planes(products, grid, workers=1)[0]           # (G', Og', Fh, Fw)
            outputs = planes[..., :rows.stop - rows.start, :cols.stop - cols.start]
            target = out_grouped[image, gs, ks, rows, cols]          # (G', Og', th', tw')
            if bias is None:
                target[...] = outputs
            else:
                np.add(outputs, bias[gs, ks, None, None], out=target)

    jobs = n * down * across
    for gs in _blocks(groups, group_block):
        for ks in _blocks(c_out // groups, out_block):
            kernels = _kernel_spectra(weight[gs, ks], grid)          # (G', Fh, Fr, Og', Cg)
            kernels = _prepared(np.conj(kernels, out=kernels))       # the forward correlates
            # several threads where the budget holds one tile's transforms per thread
            size = out.size if at_once >= threads else 0
            run_pieces(run_tiles, jobs, size, gs, ks, kernels)
    return out
