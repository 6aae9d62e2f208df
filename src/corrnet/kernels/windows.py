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

from dataclasses import dataclass

import numpy as np


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
    return Window2d(height, width, tuple(kernel), tuple(stride),
                    (tuple(padding[0]), tuple(padding[1])), tuple(dilation), outs[0], outs[1])


def pad(x: np.ndarray, window: Window2d, value=0) -> np.ndarray:
    """Pad the last two axes of `x` to the extent the windows reach, with `value`."""
    (top, _), (left, _) = window.padding
    bottom = window.padded_height - window.height - top
    right = window.padded_width - window.width - left
    if top == bottom == left == right == 0:
        return x
    padded = np.full(x.shape[:-2] + (window.padded_height, window.padded_width), value,
                     dtype=x.dtype)
    padded[..., top:top + window.height, left:left + window.width] = x
    return padded


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
