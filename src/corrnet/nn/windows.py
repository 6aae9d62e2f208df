"""Layers that rearrange windows or pad: Unfold, Fold and the padding layers."""

from __future__ import annotations

from collections.abc import Iterable

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class Unfold(Module):
    """Every sliding window as a column (im2col); see `corrnet.nn.functional.unfold`.

    >>> nn.Unfold(kernel_size=2)(corrnet.rand(1, 3, 4, 4)).shape
    torch.Size([1, 12, 9])
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """Columns of windows back into an image (col2im); see `corrnet.nn.functional.fold`."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")


class _PadNd(Module):
    """Pads the last `dims` dimensions in one mode; `padding` is an int (all sides) or
    F.pad's (left, right[, top, bottom])."""

    dims = 2
    mode = "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        # as PyTorch: a sequence is kept as it is, anything else repeated for every side;
        # the values are checked when the layer is called (F.pad: a TypeError for a float,
        # a RuntimeError or NotImplementedError for a length that does not fit the input)
        if isinstance(padding, Iterable):
            padding = tuple(padding)
        else:
            padding = (padding,) * (2 * self.dims)
        self.padding, self.value = padding, value

    def forward(self, input):
        if self.mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        if self.mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ConstantPad2d(_PadNd):
    """Pads an image's borders with a constant.

    >>> nn.ConstantPad2d((1, 0, 0, 1), 9.)(corrnet.ones(1, 1, 2))
    tensor([[[9., 1., 1.],
             [9., 9., 9.]]])
    """

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ConstantPad1d(ConstantPad2d):
    dims = 1


class ZeroPad2d(_PadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ZeroPad1d(ZeroPad2d):
    dims = 1


class ReflectionPad2d(_PadNd):
    mode = "reflect"


class ReflectionPad1d(ReflectionPad2d):
    dims = 1


class ReplicationPad2d(_PadNd):
    mode = "replicate"


class ReplicationPad1d(ReplicationPad2d):
    dims = 1


class CircularPad2d(_PadNd):
    mode = "circular"

    def forward(self, input):
        # PyTorch's circular pad modules (unlike F.pad and the other pad modules) take only
        # an unbatched or a batched input
        if isinstance(input, Tensor) and input.dim() not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"{type(self).__name__}: expected {self.dims + 1}D or "
                             f"{self.dims + 2}D input (got {input.dim()}D input of shape "
                             f"{tuple(input.shape)})")
        return super().forward(input)


class CircularPad1d(CircularPad2d):
    dims = 1
