"""The one windowing primitive under convolution and pooling.

A 2-D sliding window over an (N, C, H, W) input is described by a `Window2d`: kernel size,
stride, padding, dilation and the output size they give. Every op then works through
`shifted_views`: for each of the kh*kw kernel offsets (i, j), the strided view of the padded
input that holds, at output position (oh, ow), the input element under kernel cell (i, j):

    view[n, c, oh, ow] = padded[n, c, i*dilation_h + oh*stride_h, j*dilation_w + ow*stride_w]

im2col copies these views, col2im and the pooling backward passes add into them, pooling
forward takes their maximum or sum. Loops run over kernel offsets only, never over pixels.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from .. import devices
from ..autograd import _like


def memory_bytes() -> int:
    """This machine's physical memory in bytes (2**40 where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not on Linux/macOS
        return 2**40


def check_allocation(op: str, what: str, shape, itemsize: int, because: str = "") -> None:
    """Refuse, before anything is allocated, an array of `shape` larger than this machine's
    memory: a RuntimeError naming `op`, the array and the arguments (`because`) that make it
    so large, instead of a MemoryError (or a hang) deep in NumPy."""
    size = math.prod(int(n) for n in shape) * int(itemsize)
    limit = memory_bytes()
    if size > limit:
        raise RuntimeError(
            f"{op}: the {what} would have shape {tuple(int(n) for n in shape)}, {size:,} "
            f"bytes, more than this machine's {limit:,} bytes of memory"
            + (f" ({because})" if because else ""))


def output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                dilation: int = 1, ceil_mode: bool = False) -> int:
    """Number of window positions along one axis (PyTorch's formula).

        out = floor((size + pad_before + pad_after - dilation*(kernel-1) - 1) / stride) + 1

    With ``ceil_mode`` the division rounds up, but the last window must start inside the
    input or the left padding: ``(out-1)*stride < size + pad_before``.

    >>> output_size(8, 3, 2, 1, 1)      # 8x8 image, 3x3 kernel, stride 2, padding 1
    4
    """
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = (span + stride - 1) // stride + 1  # floor division: rounds toward -inf, as PyTorch
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


@dataclass(frozen=True)
class Window2d:
    """The geometry of a 2-D sliding window over an input of spatial size (height, width)."""

    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
    dilation: tuple[int, int]
    out_height: int
    out_width: int

    @property
    def padded_height(self) -> int:
        """Rows the windows reach: the padded input plus any rows ceil_mode adds at the end."""
        return max(self.height + sum(self.padding[0]), self._reach(0))

    @property
    def padded_width(self) -> int:
        return max(self.width + sum(self.padding[1]), self._reach(1))

    def _reach(self, axis: int) -> int:
        out = (self.out_height, self.out_width)[axis]
        return (out - 1) * self.stride[axis] + self.dilation[axis] * (self.kernel[axis] - 1) + 1

    def offsets(self):
        """The kernel offsets (i, j), row by row."""
        kh, kw = self.kernel
        return [(i, j) for i in range(kh) for j in range(kw)]


def adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """The windows of adaptive pooling along one axis: window i covers [start[i], end[i]).

        start[i] = floor(i * size / out),   end[i] = ceil((i + 1) * size / out)

    Windows may differ in length by one and may overlap when `out` does not divide `size`.

    >>> adaptive_bounds(5, 3)
    (array([0, 1, 3]), array([2, 4, 5]))
    """
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def make_window(op: str, height: int, width: int, kernel, stride, padding, dilation,
                ceil_mode: bool = False) -> Window2d:
    """Validate a window's parameters and compute its output size.

    `kernel`, `stride`, `dilation` are pairs; `padding` is ((top, bottom), (left, right)).
    Raises a RuntimeError naming `op`, the argument and the sizes when no window fits.
    """
    outs = []
    for axis, size in enumerate((height, width)):
        before, after = padding[axis]
        reach = dilation[axis] * (kernel[axis] - 1) + 1
        # (with ceil_mode a window may overhang the padded input: only the output size counts)
        if size + before + after < reach and not ceil_mode:
            raise RuntimeError(
                f"{op}: kernel_size {tuple(kernel)} (dilation {tuple(dilation)}) spans "
                f"{reach} along {'height' if axis == 0 else 'width'}, more than the padded "
                f"input's {size + before + after} (input {height}x{width}, padding "
                f"{padding[axis]}): the kernel can't be greater than the padded input"
            )
        outs.append(output_size(size, kernel[axis], stride[axis], before, after,
                                dilation[axis], ceil_mode))
    if min(outs) <= 0:
        raise RuntimeError(
            f"{op}: output size would be {outs[0]}x{outs[1]} for input {height}x{width} "
            f"(kernel_size {tuple(kernel)}, stride {tuple(stride)}, padding {padding}); "
            "output size is too small"
        )
    return without_idle_strides(Window2d(height, width, tuple(kernel), tuple(stride),
                                         (tuple(padding[0]), tuple(padding[1])),
                                         tuple(dilation), outs[0], outs[1]))


def without_idle_strides(window: Window2d) -> Window2d:
    """The same window with stride 1 along each axis that has a single output position.

    There the stride moves no window, yet the kernels' loops over stride phases and the
    buffers sized by them would grow with its value (stride=2**31 on an 8x8 image): with
    stride 1 they are as small as the data. Only the stored output size counts from here on.
    """
    stride = tuple(1 if out == 1 else s for out, s in
                   zip((window.out_height, window.out_width), window.stride, strict=True))
    return window if stride == tuple(window.stride) else replace(window, stride=stride)


class Crop(NamedTuple):
    """The part of a window problem along one axis that can meet the input: kernel cells
    [first_tap, end_tap), output positions [first_out, end_out), input cells [first_in,
    end_in), and the padding (before, after) of the smaller problem they make."""

    first_tap: int
    end_tap: int
    first_out: int
    end_out: int
    first_in: int
    end_in: int
    before: int
    after: int


def useful_crop(size: int, before: int, kernel: int, stride: int, dilation: int,
                out: int) -> Crop | None:
    """Along one axis, the kernel cells and output positions that can read an input cell
    (the others read padding only: for a convolution, their outputs are the bias and their
    gradients zero), and the input cells they read; None where none can.

    Kernel cell i of output y reads input cell y*stride + i*dilation - before. Cells that
    read padding for every output, and outputs that read padding with every cell, are cut
    off in turn until neither changes. The smaller problem reaches
    (outs - 1)*stride + dilation*(taps - 1) + 1 padded cells, however large the padding.

    >>> useful_crop(8, 10**6, 3, 10**6, 1, 3)   # padding and stride 10**6: one output
    Crop(first_tap=0, end_tap=3, first_out=1, end_out=2, first_in=0, end_in=3, before=0, after=0)
    """
    first_tap, end_tap, first_out, end_out = 0, kernel, 0, out
    while True:
        if first_tap >= end_tap or first_out >= end_out:
            return None
        # cell i is useful if some output y in range reads 0 <= y*s + i*d - before < size
        taps = (max(first_tap, -((-(before - (end_out - 1) * stride)) // dilation)),
                min(end_tap, (before + size - 1 - first_out * stride) // dilation + 1))
        # output y is useful (at most) if its first cell is not past the input's end and
        # its last cell not before the input's start
        outs = (max(first_out, -((-(before - (taps[1] - 1) * dilation)) // stride)),
                min(end_out, (before + size - 1 - taps[0] * dilation) // stride + 1))
        if (taps, outs) == ((first_tap, end_tap), (first_out, end_out)):
            break
        (first_tap, end_tap), (first_out, end_out) = taps, outs
    first = first_out * stride + first_tap * dilation - before      # input cell read first
    last = (end_out - 1) * stride + (end_tap - 1) * dilation - before
    first_in, end_in = max(0, first), min(size, last + 1)
    reach = (end_out - first_out - 1) * stride + (end_tap - first_tap - 1) * dilation + 1
    new_before = first_in - first
    return Crop(first_tap, end_tap, first_out, end_out, first_in, end_in, new_before,
                reach - new_before - (end_in - first_in))


PAD_MODES = ("constant", "reflect", "replicate", "circular", "symmetric")


def source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each position of a padded axis, the input position whose value it takes.

    The padded axis has ``size + before + after`` positions; position p lies at input
    coordinate ``p - before`` (negative pads crop). Where that coordinate is outside the input,
    the mode decides: 'constant' gives -1 (the fill value), 'replicate' the nearest edge,
    'reflect' mirrors about the edge cell (d c b | a b c d | c b a), 'symmetric' mirrors with
    the edge cell repeated (c b a | a b c d | d c b), and 'circular' wraps around what is left
    after cropping (as PyTorch: it crops first, then pads).

    >>> source_index(4, 2, 1, "reflect")
    array([2, 1, 0, 1, 2, 3, 2])
    """
    coord = np.arange(size + before + after) - before
    if mode == "constant":
        return np.where((coord >= 0) & (coord < size), coord, -1)
    if mode == "replicate":
        return np.clip(coord, 0, size - 1)
    if mode == "circular":
        low, high = max(-before, 0), size - max(-after, 0)  # the part left after cropping
        return low + (coord - low) % max(high - low, 1)
    if mode == "reflect":
        period = max(2 * (size - 1), 1)
        folded = coord % period
        return np.where(folded < size, folded, period - folded)
    if mode == "symmetric":
        folded = coord % (2 * size)
        return np.where(folded < size, folded, 2 * size - 1 - folded)
    raise ValueError(f"padding mode must be one of {PAD_MODES}, got {mode!r}")


def pad_array(x: np.ndarray, pads, mode: str = "constant", value=0) -> np.ndarray:
    """Pad (or, with negative pads, crop) the trailing axes of `x`.

    `pads` holds one (before, after) pair per trailing axis, outermost first:
    ((top, bottom), (left, right)) pads an image. Output size along each padded axis:
    ``size + before + after``.

    >>> pad_array(np.array([1, 2, 3]), [(2, 1)], "replicate")
    array([1, 1, 1, 2, 3, 3])
    """
    axes = range(x.ndim - len(pads), x.ndim)
    if mode == "constant":
        # copy the part of x that survives the (possibly negative) pads, and fill the
        # borders around it (each cell written once, not filled first and then copied over:
        # a 3x3 layer's padded copies 10% of its forward+backward)
        out_shape = x.shape[:x.ndim - len(pads)] + tuple(
            x.shape[a] + before + after for a, (before, after) in zip(axes, pads, strict=True))
        out = np.empty(out_shape, dtype=x.dtype, like=_like(x))
        src, dst = [Ellipsis], [Ellipsis]
        for a, (before, after) in zip(axes, pads, strict=True):
            src.append(slice(max(-before, 0), x.shape[a] - max(-after, 0)))
            dst.append(slice(max(before, 0), out_shape[a] - max(after, 0)))
        for a, inside in zip(axes, dst[1:], strict=True):
            border = [slice(None)] * out.ndim
            border[a] = slice(0, inside.start)
            out[tuple(border)] = value
            border[a] = slice(max(inside.start, inside.stop), None)
            out[tuple(border)] = value
        out[tuple(dst)] = x[tuple(src)]
        return out
    plans = [_copy_plan(x.shape[a], before, after, mode)
             for a, (before, after) in zip(axes, pads, strict=True)]
    if all(plan is not None for plan in plans):
        return _pad_by_copies(x, plans)
    return pad_array_reference(x, pads, mode)


def pad_array_reference(x: np.ndarray, pads, mode: str) -> np.ndarray:
    """`pad_array` for the modes other than 'constant' as one gather per axis,
    ``x[..., source_index(...), ...]``: the plain reference beside `_pad_by_copies`, and
    the path for pads that crop one side and copy, on the other, cells the crop removed."""
    axes = range(x.ndim - len(pads), x.ndim)
    for a, (before, after) in zip(axes, pads, strict=True):
        if before or after:
            # (an index table built on the host; on a CUDA device copied there once)
            key = ("pad_array", x.shape[a], before, after, mode)
            index = devices.table_like(source_index(*key[1:]), x, key)
            x = np.take(x, index, axis=a)
    return x


class _CopyPlan(NamedTuple):
    """One padded axis as slices: output positions [first, last) hold input positions
    [first - before, last - before) unchanged (the part that survives cropping), and each
    padding position p is a copy of output position copies[p] in that range."""

    length: int
    first: int
    last: int
    before: int
    copies: dict


def _copy_plan(size: int, before: int, after: int, mode: str) -> _CopyPlan | None:
    """The axis's `_CopyPlan`, or None where some padding position copies a cell that a
    negative pad (cropping) removes from the output."""
    source = source_index(size, before, after, mode)
    length = len(source)
    first, last = max(before, 0), min(length, before + size)
    if first >= last or not np.array_equal(source[first:last],
                                            np.arange(first, last) - before):
        return None
    copies = {}
    for position in (*range(first), *range(last, length)):
        target = int(source[position]) + before
        if not first <= target < last:
            return None
        copies[position] = target
    return _CopyPlan(length, first, last, before, copies)


def _pad_by_copies(x: np.ndarray, plans: list) -> np.ndarray:
    """Pad the trailing len(plans) axes of `x` with one output array: the surviving part of
    x copied in once, then every padding row (column, ...) copied from the row it mirrors
    (wraps, repeats), one slice per padding position, axis by axis: by the time an axis's
    padding is copied, the axes before it are complete, so corners come out right. A
    gather (`pad_array_reference`) costs 3-30x more on a large image: it reads through an
    index array and makes an intermediate array per axis."""
    lead = x.ndim - len(plans)
    out = np.empty(x.shape[:lead] + tuple(plan.length for plan in plans), dtype=x.dtype,
                   like=_like(x))
    inside = [slice(plan.first, plan.last) for plan in plans]
    out[(Ellipsis, *inside)] = x[(Ellipsis, *(slice(plan.first - plan.before,
                                                     plan.last - plan.before)
                                               for plan in plans))]
    for axis, plan in enumerate(plans):
        # axes before `axis` are filled whole, those after it only inside
        span = [slice(None)] * axis + [None] + inside[axis + 1:]
        for position, target in plan.copies.items():
            span[axis] = position
            destination = (Ellipsis, *span)
            span[axis] = target
            out[destination] = out[(Ellipsis, *span)]
    return out


def pad_array_backward(grad: np.ndarray, input_shape: tuple, pads, mode: str) -> np.ndarray:
    """The adjoint of `pad_array`: each padded cell's gradient goes back to the input cell
    it was copied from (summed where several copies were made); fill cells get nothing."""
    axes = range(len(input_shape) - len(pads), len(input_shape))
    for a, (before, after) in reversed(list(zip(axes, pads, strict=True))):
        if not (before or after):
            continue
        size = input_shape[a]
        source = source_index(size, before, after, mode)
        folded = np.zeros(grad.shape[:a] + (size,) + grad.shape[a + 1:], dtype=grad.dtype,
                          like=_like(grad))
        moved_grad, moved_folded = np.moveaxis(grad, a, 0), np.moveaxis(folded, a, 0)
        # the cells that are not padding: one slice, copied straight back
        first, last = max(before, 0), min(len(source), before + size)
        if first < last:
            moved_folded[first - before:last - before] += moved_grad[first:last]
        # the padding cells: one strided add per padding position (never per pixel); where
        # the other side's crop leaves fewer cells than this side's padding, only those
        for position in (*range(0, min(first, len(source))),
                         *range(max(last, first), len(source))):
            if source[position] >= 0:
                moved_folded[source[position]] += moved_grad[position]
        grad = folded
    return grad


def pad(x: np.ndarray, window: Window2d, value=0) -> np.ndarray:
    """Pad the last two axes of `x` to the extent the windows reach, with `value`."""
    (top, _), (left, _) = window.padding
    bottom = window.padded_height - window.height - top
    right = window.padded_width - window.width - left
    if top == bottom == left == right == 0:
        return x
    return pad_array(x, ((top, bottom), (left, right)), "constant", value)


def unpad(x_padded: np.ndarray, window: Window2d) -> np.ndarray:
    """The inverse of `pad`: the input region of a padded array."""
    (top, _), (left, _) = window.padding
    return x_padded[..., top:top + window.height, left:left + window.width]


def shifted_views(x_padded: np.ndarray, window: Window2d):
    """Yield ((i, j), view) for each kernel offset; view has shape (..., out_h, out_w)."""
    (sh, sw), (dh, dw) = window.stride, window.dilation
    oh, ow = window.out_height, window.out_width
    for i, j in window.offsets():
        rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
        cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
        yield (i, j), x_padded[..., rows, cols]
