"""Convolution layers: Conv1d, Conv2d and their transposes, all on `corrnet.nn.functional`."""

from __future__ import annotations

import math
import numbers

from .. import functional as F
from ..tensor import empty
from . import init
from .module import Module
from .parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, n: int) -> tuple:
    """An int (or a 1-sequence) repeated n times; a sequence of n as a tuple."""
    if isinstance(value, (tuple, list)):
        return tuple(value) * (n // len(value)) if len(value) == 1 else tuple(value)
    return (value,) * n


class _ConvNd(Module):
    """What Conv1d, Conv2d, ConvTranspose1d and ConvTranspose2d share: the parameters and
    their initialization, the argument checks and the repr."""

    dims = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", output_padding=0,
                 dtype=None, device=None):
        super().__init__()
        name = type(self).__name__
        if not isinstance(groups, numbers.Integral) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        n = self.dims
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, n)
        self.stride = _tuple(stride, n)
        self.dilation = _tuple(dilation, n)
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self.transposed:
                raise ValueError(f"{name}: padding must be an int or a tuple of {n} ints"
                                 f"{'' if self.transposed else ', or same or valid'}, got "
                                 f"{padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride})")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n)
        self.output_padding = _tuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        if self.transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(*shape, dtype=dtype, device=device))
        self.bias = Parameter(empty(out_channels, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's initialization: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        fan_in = weight.shape[1] * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _pads_for_mode(self) -> tuple:
        """F.pad's (left, right, top, bottom) for a padding_mode other than 'zeros'."""
        if self.padding == "valid":
            return (0, 0) * self.dims
        pads = []
        for i in reversed(range(self.dims)):
            if self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                pads += [total // 2, total - total // 2]
            else:
                pads += [self.padding[i], self.padding[i]]
        return tuple(pads)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self.dims:
            text += f", padding={self.padding}"  # PyTorch prints padding=same unquoted
        if self.dilation != (1,) * self.dims:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.dims:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv2d(_ConvNd):
    """A 2-D convolution layer: weight (C_out, C_in/groups, kh, kw) and bias (C_out,).

    Output size: see `corrnet.nn.functional.conv2d`. padding_mode 'reflect', 'replicate' or
    'circular' pads the input with `F.pad` in that mode instead of with zeros.

    >>> conv = nn.Conv2d(1, 1, kernel_size=3, padding=1, padding_mode="reflect")
    >>> conv(corrnet.rand(1, 1, 8, 8)).shape
    torch.Size([1, 1, 8, 8])
    """

    dims = 2
    _function = staticmethod(F.conv2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=None,
                 device=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype=dtype, device=device)

    def forward(self, input):
        padding = self.padding
        if self.padding_mode != "zeros":
            input, padding = F.pad(input, self._pads_for_mode(), mode=self.padding_mode), 0
        return self._function(input, self.weight, self.bias, self.stride, padding,
                              self.dilation, self.groups)


class Conv1d(Conv2d):
    """A 1-D convolution layer over (N, C_in, L): weight (C_out, C_in/groups, k).

    Output length: see `corrnet.nn.functional.conv1d`.

    >>> nn.Conv1d(2, 4, kernel_size=3, padding="same")(corrnet.rand(1, 2, 10)).shape
    torch.Size([1, 4, 10])
    """

    dims = 1
    _function = staticmethod(F.conv1d)


class ConvTranspose2d(_ConvNd):
    """A transposed 2-D convolution layer: weight (C_in, C_out/groups, kh, kw).

    Output size: see `corrnet.nn.functional.conv_transpose2d`; ``layer(x, output_size=...)``
    chooses among the sizes a strided convolution maps to the same input size.

    >>> up = nn.ConvTranspose2d(1, 1, kernel_size=3, stride=2, padding=1)
    >>> up(corrnet.rand(1, 1, 4, 4), output_size=(8, 8)).shape
    torch.Size([1, 1, 8, 8])
    """

    dims = 2
    transposed = True
    _function = staticmethod(F.conv_transpose2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=None, device=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype=dtype,
                         device=device)

    def _output_padding(self, input, output_size) -> tuple:
        if output_size is None:
            return self.output_padding
        name, n = type(self).__name__, self.dims
        batched = input.dim() == n + 2
        sizes = list(output_size)
        if len(sizes) == n + 1 + batched:
            sizes = sizes[1 + batched:]
        if len(sizes) != n:
            raise ValueError(f"{name}: for {n}-D input, output_size must have {n} or "
                             f"{n + 1 + batched} elements, got output_size={output_size!r}")
        in_sizes = tuple(input.shape[input.dim() - n:])
        smallest = [(size - 1) * s - 2 * p + d * (k - 1) + 1 for size, s, p, d, k in zip(
            in_sizes, self.stride, self.padding, self.dilation, self.kernel_size, strict=True)]
        largest = [low + s - 1 for low, s in zip(smallest, self.stride, strict=True)]
        for want, low, high in zip(sizes, smallest, largest, strict=True):
            if not low <= want <= high:
                raise ValueError(f"{name}: requested an output size of {tuple(sizes)}, but "
                                 f"valid sizes range from {tuple(smallest)} to "
                                 f"{tuple(largest)} (for an input of size {in_sizes})")
        return tuple(want - low for want, low in zip(sizes, smallest, strict=True))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return self._function(input, self.weight, self.bias, self.stride, self.padding,
                              output_padding, self.groups, self.dilation)


class ConvTranspose1d(ConvTranspose2d):
    """A transposed 1-D convolution layer: weight (C_in, C_out/groups, k).

    >>> nn.ConvTranspose1d(1, 1, kernel_size=2, stride=2)(corrnet.rand(1, 1, 5)).shape
    torch.Size([1, 1, 10])
    """

    dims = 1
    _function = staticmethod(F.conv_transpose1d)
