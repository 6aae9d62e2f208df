"""`summary(net, input_size)`: the layer table of a network.

The notebooks' "feature map and receptive field" as a tool: one forward pass on zeros, and
per layer the output shape, the parameter count, the multiply-accumulates, and the receptive
field and jump of each output element on the input.

>>> print(corrnet.summary(corrnet.models.lenet(), (1, 1, 28, 28)))   # doctest: +SKIP
Layer (type)   Output shape     Param #  MACs     RF            Jump
...

Conventions
-----------
* **Rows** are the calls of leaf modules (modules without sub-modules), in call order, named
  as `named_modules` names them (``0``, ``features.3``); a module called twice gives two
  rows. Its parameters are counted in the first row that uses them (shared weights once).
  The totals count ``net.parameters()``, so parameters that a container uses directly in
  its own ``forward`` are in the totals though in no row.
* **MACs** count only multiply-accumulates with weights, per forward pass of the given
  input (the batch included), the bias not counted:
  convolution = output elements x (C_in/groups x kernel cells); transposed convolution =
  input elements x (C_out/groups x kernel cells); Linear = rows x in_features x
  out_features. Pooling, activations, BatchNorm (an affine map per element in eval mode),
  Flatten, padding and dropout count 0. A leaf of an unknown type that holds parameters
  shows ``?`` and the total then reads "at least".
* **Receptive field** (RF) and **jump** per spatial axis of the input (the axes after
  (N, C)): the RF is the extent of input elements that one output element depends on, the
  jump the distance on the input between neighbouring output elements. Through a window
  layer (convolution, pooling) with kernel k, stride s and dilation d, k_eff = d(k-1)+1:
  ``rf_out = rf_in + (k_eff - 1) * jump_in``, ``jump_out = jump_in * s``; padding only
  shifts ``start`` (the first input index, negative into the padding, that output element
  0 sees): ``start_out = start_in - p * jump_in``. The RF is the theoretical one: not
  clipped to the input, and normalization statistics are not counted (the usual
  convention). Elementwise layers (activations, BatchNorm in eval mode, dropout) keep the
  geometry; padding layers shift ``start``.
  Linear on (N, features) and adaptive pools to size 1: every output element sees the whole
  input, shown as the input size with "(all)" and jump ``-``. Flatten (and Unfold) keep
  each element's RF but lose the spatial layout: jump ``-``; a window layer after them is
  ``?``.
  Upper bounds, marked ``<=``: a transposed convolution with stride s > 1 (or MaxUnpool)
  divides the jump by s (a fraction such as ``1/2``), and its outputs see different
  numbers of inputs; an adaptive pool whose input size is not a multiple of its output
  size has windows of different sizes (the jump shown is the mean). The row shows the
  largest RF; after such a layer the geometry is no longer affine in the output index
  and each RF is bounded through a real interval holding every element's extent (see
  `_Axis`), a bound that is not always reached. Transposed layers of stride 1 are exact.
  `nn.Upsample` multiplies the jump by in/out (1/f for a factor f) and is a bound too:
  nearest upsampling by f reads input floor(o / f), not affine in o.
  ``?``: a leaf of an unknown type, or a window layer after a flattened layout.
* **Ops outside any leaf.** A layer's input computed in a ``forward`` (``F.relu``, a
  residual sum, the concatenation of a U-Net's skip connection) is followed back through
  the autograd graph to the tensors whose geometry is known: elementwise ops keep it, a
  sum or a concatenation along channels takes the hull of its inputs' extents (which needs
  one jump), softmax along a spatial axis sees that whole axis. `Summary.output_row` is
  the network's output, followed the same way. ``~``: an op the graph cannot follow (a
  functional pool or convolution, a crop); the geometry of the last recorded output of the
  same shape is assumed, and `LayerInfo.why` names the op.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

from . import backend, nn
from .autograd import enable_grad
from .tensor import Tensor, zeros

__all__ = ["LayerInfo", "Summary", "summary"]


# -- geometry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """Receptive field along one input axis.

    Affine (exact) geometry: output element o sees the `rf` input elements from
    ``start + o * jump`` on. Once a layer breaks that (a strided transposed convolution, an
    adaptive pool that does not divide its input), `rf` is an upper bound: each element's
    extent lies in a real interval of width `width` whose left end is affine in o with slope
    `jump`, so it holds at most floor(width) + 1 elements. `whole`: sees the whole axis.
    `left`: that interval's left end for element 0 (element o's interval is
    [left + o * jump, left + o * jump + width]); equal to `start` where the geometry is
    affine."""

    rf: int = 1
    jump: Fraction = Fraction(1)
    start: Fraction | None = Fraction(0)
    whole: bool = False
    width: Fraction = Fraction(0)
    affine: bool = True
    left: Fraction = Fraction(0)


def _whole_axis(size: int) -> _Axis:
    return _Axis(size, Fraction(0), Fraction(0), whole=True, width=Fraction(size - 1))


@dataclass(frozen=True)
class _Geometry:
    axes: tuple = ()          # one _Axis per spatial axis of the network input
    layout: bool = True       # False once the spatial axes are flattened away
    known: bool = True        # False: "?"
    assumed: bool = False     # True: "~"
    why: str = ""             # what made it unknown or assumed (an op outside any layer)

    @property
    def bound(self) -> bool:
        return any(not axis.affine and not axis.whole for axis in self.axes)


_UNKNOWN = _Geometry(known=False)


def _whole(geometry: _Geometry, sizes: tuple) -> _Geometry:
    return _Geometry(tuple(_whole_axis(size) for size in sizes), layout=False,
                     assumed=geometry.assumed)


def _tuple(value, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        value = tuple(value)
        return value * n if len(value) == 1 else value[-n:]
    return (value,) * n


def _classes(*names) -> tuple:
    return tuple(cls for cls in (getattr(nn, name, None) for name in names) if cls is not None)


_ONE_D = _classes("Conv1d", "ConvTranspose1d", "MaxPool1d", "AvgPool1d", "MaxUnpool1d",
                  "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "LPPool1d")
_CONV = _classes("Conv1d", "Conv2d")
_TRANSPOSED = _classes("ConvTranspose1d", "ConvTranspose2d")
_POOL = _classes("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "LPPool1d", "LPPool2d")
_UNPOOL = _classes("MaxUnpool1d", "MaxUnpool2d")
_ADAPTIVE = _classes("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d",
                     "AdaptiveMaxPool2d")
_SOFTMAX = _classes("Softmax", "LogSoftmax", "Softmin")
_UPSAMPLE = _classes("Upsample")
_FLATTEN = _classes("Flatten", "Unfold")
_PAD = _classes(*(f"{kind}Pad{n}d" for kind in ("Constant", "Zero", "Reflection", "Replication",
                                                 "Circular") for n in (1, 2, 3)))
# Layers that act element by element (normalization statistics not counted, by convention).
_ELEMENTWISE = {
    "Identity", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU",
    "Mish", "Sigmoid", "Tanh", "Softplus", "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish",
    "LogSigmoid", "Tanhshrink", "Threshold", "Dropout", "Dropout1d", "Dropout2d",
    "AlphaDropout", "BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm", "InstanceNorm1d",
    "InstanceNorm2d", "LocalResponseNorm",
}


def _dims(module) -> int:
    return 1 if isinstance(module, _ONE_D) else 2


def _windowed_axes(geometry, dims):
    """The indices of the axes a `dims`-D window layer acts on (the last ones), or None."""
    if not geometry.known or not geometry.layout or len(geometry.axes) < dims:
        return None
    return range(len(geometry.axes) - dims, len(geometry.axes))


def _through_window(geometry, dims, kernel, stride, dilation, left_pad) -> _Geometry:
    """Geometry after a window layer acting on the last `dims` axes: the union of k_eff
    neighbouring input elements (the taps in between included)."""
    indices = _windowed_axes(geometry, dims)
    if indices is None:
        return _UNKNOWN
    axes = list(geometry.axes)
    for i, k, s, d, p in zip(indices, kernel, stride, dilation, left_pad, strict=True):
        axis = axes[i]
        if axis.whole:
            continue
        grow = (d * (k - 1)) * axis.jump
        width = axis.width + grow
        left = axis.left - p * axis.jump
        if axis.affine:
            start = None if axis.start is None else axis.start - p * axis.jump
            axes[i] = _Axis(axis.rf + int(grow), axis.jump * s, start, width=width, left=left)
        else:
            axes[i] = _Axis(math.floor(width) + 1, axis.jump * s, None, width=width,
                            affine=False, left=left)
    return replace(geometry, axes=tuple(axes))


def _transposed_span(k: int, s: int, d: int) -> int:
    """The most neighbouring inputs (first to last) that one output of a transposed window
    layer receives: output o gets input (o + p - j*d) / s for the kernel indices j that
    make it an integer."""
    widest = 1
    for residue in range(s):
        taps = [j for j in range(k) if (residue - j * d) % s == 0]
        if taps:
            widest = max(widest, (max(taps) - min(taps)) * d // s + 1)
    return widest


def _through_transposed(geometry, dims, kernel, stride, dilation, padding) -> _Geometry:
    """Geometry after a transposed window layer: output o receives the inputs i with
    o = i*s - p + j*d for a kernel index j, all in the real interval
    [(o + p - d(k-1)) / s, (o + p) / s]: the jump divides by s, the width grows by
    (k_eff - 1) / s input steps. Exact for stride 1."""
    indices = _windowed_axes(geometry, dims)
    if indices is None:
        return _UNKNOWN
    axes = list(geometry.axes)
    for i, k, s, d, p in zip(indices, kernel, stride, dilation, padding, strict=True):
        axis = axes[i]
        if axis.whole:
            continue
        width = axis.width + Fraction(d * (k - 1), s) * axis.jump
        left = axis.left + Fraction(p - d * (k - 1), s) * axis.jump
        if axis.affine and s == 1:  # output 0 receives the inputs p - j*d, j = 0 .. k-1
            start = None if axis.start is None else axis.start + (p - d * (k - 1)) * axis.jump
            axes[i] = _Axis(axis.rf + int(d * (k - 1) * axis.jump), axis.jump, start,
                            width=width, left=left)
            continue
        rf = math.floor(width) + 1
        if axis.affine:  # the most inputs one output receives, each seeing rf_in
            rf = min(rf, axis.rf + (_transposed_span(k, s, d) - 1) * axis.jump)
        axes[i] = _Axis(int(rf), axis.jump / s, None, width=width, affine=False, left=left)
    return _Geometry(tuple(axes), assumed=geometry.assumed)


def _through_adaptive(geometry, in_sizes, out_sizes, input_sizes) -> _Geometry:
    """Adaptive pooling: window o of n over L is [floor(o L/n), ceil((o+1) L/n)), which
    lies in the real interval [o L/n - (n-1)/n, (o+1) L/n - 1/n]. L a multiple of n: a
    pool with kernel = stride = L/n."""
    dims = len(out_sizes)
    indices = _windowed_axes(geometry, dims)
    if indices is None or min(in_sizes) <= 0 or min(out_sizes) <= 0:
        return _UNKNOWN
    axes = list(geometry.axes)
    for i, size_in, size_out in zip(indices, in_sizes, out_sizes, strict=True):
        axis = axes[i]
        if axis.whole:
            continue
        if size_out == 1:
            axes[i] = _whole_axis(input_sizes[i])
            continue
        if size_in % size_out == 0:
            ratio = size_in // size_out
            single = replace(geometry, axes=(axis,))
            axes[i] = _through_window(single, 1, (ratio,), (ratio,), (1,), (0,)).axes[0]
            continue
        widest = max(-(-(o + 1) * size_in // size_out) - o * size_in // size_out
                     for o in range(size_out))
        width = axis.width + (Fraction(size_in, size_out) + 1
                              - Fraction(2, size_out)) * axis.jump
        rf = math.floor(width) + 1
        if axis.affine:
            rf = min(rf, axis.rf + (widest - 1) * axis.jump)
        axes[i] = _Axis(int(rf), axis.jump * Fraction(size_in, size_out), None, width=width,
                        affine=False, left=axis.left - Fraction(size_out - 1, size_out) * axis.jump)
    layout = geometry.layout and not all(axis.whole for axis in axes)
    return replace(geometry, axes=tuple(axes), layout=layout)


def _upsample_ratios(module, in_sizes, out_sizes) -> tuple:
    """Per resized axis the step on the input per output index, as F.interpolate places
    its samples: 1 / scale_factor where a scale factor is given (and not recomputed), else
    in / out; (in - 1) / (out - 1) with `align_corners`."""
    dims = len(in_sizes)
    scales = module.scale_factor
    if scales is not None and not isinstance(scales, (tuple, list)):
        scales = (scales,) * dims
    ratios = []
    for i, (size_in, size_out) in enumerate(zip(in_sizes, out_sizes, strict=True)):
        if getattr(module, "align_corners", None) and module.mode not in (
                "nearest", "nearest-exact", "area"):
            ratios.append(Fraction(size_in - 1, size_out - 1) if size_out > 1 else Fraction(0))
        elif scales is not None and not module.recompute_scale_factor and scales[i] > 0:
            ratios.append(1 / Fraction(scales[i]))
        else:
            ratios.append(Fraction(size_in, size_out))
    return tuple(ratios)


# taps (the most neighbouring inputs one output reads) and the real interval, relative to
# the sample's position x, that holds them: linear modes read floor(x) and floor(x) + 1,
# cubic floor(x) - 1 .. floor(x) + 2 (edge taps clamped to the border)
_RESAMPLE_TAPS = {"linear": (2, 1), "bilinear": (2, 1), "trilinear": (2, 1), "bicubic": (4, 2)}


def _through_upsample(module, geometry, input, output, input_sizes) -> _Geometry:
    """Geometry after F.interpolate (`nn.Upsample`): output o reads input samples around
    x = o * r (nearest: floor(o * r); nearest-exact: floor((o + 1/2) r); linear and cubic
    without `align_corners`: around (o + 1/2) r - 1/2; with it: o * r), r the step of
    `_upsample_ratios`: the jump is multiplied by r, and every element's extent lies in a
    real interval whose left end is affine in o. Only a ratio of 1 keeps the geometry
    affine (nearest upsampling by 2 reads input floor(o / 2): not affine in o). Positions
    F.interpolate computes in floating point are exact where r = 1/f; elsewhere the
    interval is widened by one input step each side for their rounding."""
    mode = module.mode
    dims = input.dim() - 2
    if mode == "area":
        return _through_adaptive(geometry, tuple(input.shape[-dims:]),
                                 tuple(output.shape[-dims:]), input_sizes)
    indices = _windowed_axes(geometry, dims)
    if indices is None or mode not in ("nearest", "nearest-exact", *_RESAMPLE_TAPS):
        return _UNKNOWN
    in_sizes, out_sizes = tuple(input.shape[-dims:]), tuple(output.shape[-dims:])
    ratios = _upsample_ratios(module, in_sizes, out_sizes)
    aligned = bool(getattr(module, "align_corners", None))
    axes = list(geometry.axes)
    for i, ratio, size_in, size_out in zip(indices, ratios, in_sizes, out_sizes, strict=True):
        axis = axes[i]
        if axis.whole or (ratio == 1 and size_in == size_out and not aligned):
            continue  # the identity (PyTorch's shortcut for the linear modes too)
        if mode == "nearest":
            taps, lower, upper = 1, -(1 - Fraction(1, ratio.denominator)), Fraction(0)
        elif mode == "nearest-exact":
            taps, lower, upper = 1, ratio / 2 - 1, ratio / 2
        else:
            taps, reach = _RESAMPLE_TAPS[mode]
            centre = Fraction(0) if aligned else ratio / 2 - Fraction(1, 2)
            lower, upper = centre - reach, centre + reach
        if ratio.numerator != 1 and not (aligned and ratio == 0):
            lower, upper = lower - 1, upper + 1  # floating point positions
        width = axis.width + (upper - lower) * axis.jump
        rf = math.floor(width) + 1
        if axis.affine:
            rf = min(rf, axis.rf + (taps - 1) * axis.jump)
        axes[i] = _Axis(int(rf), axis.jump * ratio, None, width=width, affine=False,
                        left=axis.left + lower * axis.jump)
    return _Geometry(tuple(axes), assumed=geometry.assumed)


def _left_pads(module, dims) -> tuple:
    padding = module.padding
    if padding == "valid":
        return (0,) * dims
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(_tuple(module.kernel_size, dims),
                                                      _tuple(module.dilation, dims),
                                                      strict=True))
    return _tuple(padding, dims)


def _propagate(module, geometry: _Geometry, input, output, input_sizes) -> _Geometry:
    """The geometry of `output` = module(input), given that of `input`."""
    if isinstance(module, _TRANSPOSED):
        dims = _dims(module)
        return _through_transposed(geometry, dims, _tuple(module.kernel_size, dims),
                                   _tuple(module.stride, dims), _tuple(module.dilation, dims),
                                   _tuple(module.padding, dims))
    if isinstance(module, _UNPOOL):
        dims = _dims(module)
        stride = module.stride if module.stride is not None else module.kernel_size
        return _through_transposed(geometry, dims, _tuple(module.kernel_size, dims),
                                   _tuple(stride, dims), (1,) * dims,
                                   _tuple(module.padding, dims))
    if isinstance(module, _CONV + _POOL):
        dims = _dims(module)
        stride = getattr(module, "stride", None)
        stride = module.kernel_size if stride in (None, (), []) else stride
        return _through_window(geometry, dims, _tuple(module.kernel_size, dims),
                               _tuple(stride, dims), _tuple(getattr(module, "dilation", 1),
                                                            dims), _left_pads(module, dims))
    if isinstance(module, _UPSAMPLE):
        return _through_upsample(module, geometry, input, output, input_sizes)
    if isinstance(module, _ADAPTIVE):
        dims = _dims(module)
        return _through_adaptive(geometry, tuple(input.shape[-dims:]),
                                 tuple(output.shape[-dims:]), input_sizes)
    if isinstance(module, nn.Linear):
        if input.dim() >= 3 and geometry.known and geometry.layout and geometry.axes:
            axes = list(geometry.axes)
            axes[-1] = _whole_axis(input_sizes[-1])
            return replace(geometry, axes=tuple(axes))
        return _whole(geometry, input_sizes)
    if isinstance(module, _FLATTEN):
        if isinstance(module, nn.Flatten):
            ndim = input.dim()
            first, last = module.start_dim % max(ndim, 1), module.end_dim % max(ndim, 1)
            spatial = set(range(ndim - len(geometry.axes), ndim))
            if not spatial.intersection(range(first, last + 1)) or first == last:
                return geometry
        return replace(geometry, layout=False)
    if isinstance(module, _SOFTMAX):
        dim = getattr(module, "dim", None)
        ndim = input.dim()
        if dim is None or not geometry.known or not geometry.layout:
            return geometry
        index = dim % ndim - (ndim - len(geometry.axes))
        if index < 0:
            return geometry
        axes = list(geometry.axes)
        axes[index] = _whole_axis(input_sizes[index])
        return replace(geometry, axes=tuple(axes))
    if isinstance(module, _PAD):  # padding: (left, right) per axis, the last axis first
        if not geometry.known or not geometry.layout:
            return geometry
        axes = list(geometry.axes)
        for offset in range(min(len(module.padding) // 2, len(axes))):
            axis = axes[len(axes) - 1 - offset]
            if not axis.whole:
                shift = module.padding[2 * offset] * axis.jump
                axes[len(axes) - 1 - offset] = replace(
                    axis, start=None if axis.start is None else axis.start - shift,
                    left=axis.left - shift)
        return replace(geometry, axes=tuple(axes))
    if any(cls.__name__ in _ELEMENTWISE for cls in type(module).__mro__):
        return geometry
    return _UNKNOWN


# -- ops outside any layer: followed through the autograd graph ------------------------------


@functools.cache
def _op_classes():
    """The Functions that act element by element (each output element reads the elements
    of its inputs at the same index, after broadcasting), and the concatenation and
    softmax ops, whose axis decides."""
    from . import functional as core
    from . import ops
    from .nn import _layer_ops

    names = [(ops, "Add Sub Mul Div Pow Remainder FloorDivide Neg Rounding Abs Exp Log Sqrt "
                   "Sigmoid Tanh Relu Clamp Extremum Where Cast Clone Contiguous"),
             (core, "_SigmoidShown _ReluShown"), (_layer_ops, "Expm1 Log1p Erf")]
    elementwise = {getattr(module, name) for module, text in names for name in text.split()
                   if hasattr(module, name)}
    return (frozenset(elementwise), getattr(ops, "Concatenate", None),
            tuple(getattr(ops, name) for name in ("Softmax", "LogSoftmax") if hasattr(ops, name)))


def _merge(geometries, sizes, input_sizes) -> _Geometry:
    """The geometry of an element that reads one element of each input (an elementwise op,
    a concatenation): per axis the hull of the inputs' extents, which needs one jump. A
    geometry whose spatial size is 1 where the output's is not (broadcast) must see the
    whole axis there."""
    geometries = list(geometries)
    for geometry in geometries:
        if not geometry.known or not geometry.layout:
            return geometry
    n = len(geometries[0].axes)
    if any(len(g.axes) != n for g in geometries):
        return _unknown("inputs of different ranks")
    out_sizes = [max(size[i] for size in sizes) for i in range(n)]
    axes = []
    for i in range(n):
        column = [g.axes[i] for g in geometries]
        for axis, size in zip(column, sizes, strict=True):
            if size[i] != out_sizes[i] and not axis.whole:
                return _unknown("a feature map broadcast along a spatial axis")
        if any(axis.whole for axis in column):
            axes.append(_whole_axis(input_sizes[i]))
            continue
        if len({axis.jump for axis in column}) != 1:
            return _unknown("branches of different jumps joined")
        left = min(axis.left for axis in column)
        width = max(axis.left + axis.width for axis in column) - left
        if all(axis.affine and axis.start is not None for axis in column):
            axes.append(_Axis(int(width) + 1, column[0].jump, left, width=width, left=left))
        else:
            axes.append(_Axis(math.floor(width) + 1, column[0].jump, None, width=width,
                              affine=False, left=left))
    return _Geometry(tuple(axes), assumed=any(g.assumed for g in geometries))


def _unknown(why: str) -> _Geometry:
    return _Geometry(known=False, why=why)


def _spatial(shape, n: int) -> tuple:
    return tuple(shape[len(shape) - n:]) if n else ()


def _trace(node, known: dict, n: int, input_sizes) -> _Geometry:
    """The geometry of the output of autograd `node`, followed back to nodes whose geometry
    is `known` (id -> (node, geometry): the input's, the layers' outputs') through the ops
    of `_op_classes` (iteratively: a long chain needs no recursion). Any other op, or an
    input that leads nowhere known, gives an unknown geometry naming the op."""
    from .autograd import AccumulateGrad

    elementwise, concatenate, softmax = _op_classes()
    memo = {key: geometry for key, (_, geometry) in known.items()}
    stack = [node]
    while stack:
        current = stack[-1]
        if id(current) in memo:
            stack.pop()
            continue
        if isinstance(current, AccumulateGrad):  # a parameter or another leaf: a constant
            memo[id(current)] = None
            stack.pop()
            continue
        function = current.function
        if function not in elementwise and function is not concatenate and \
                function not in softmax:
            memo[id(current)] = _unknown(f"{current.name()} outside any layer")
            stack.pop()
            continue
        pending = [child for child in current.next_nodes
                   if child is not None and id(child) not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        inputs = [(memo[id(child)], _spatial(meta[0], n))
                  for child, meta in zip(current.next_nodes, current.input_meta, strict=True)
                  if child is not None and memo[id(child)] is not None]
        if not inputs:  # computed from constants only
            memo[id(current)] = None
            continue
        ndim = len(current.input_meta[0][0])
        if function is concatenate or function in softmax:
            axis = current.ctx.axis % max(ndim, 1)
            if axis >= ndim - n:
                if function is concatenate:
                    memo[id(current)] = _unknown(f"{current.name()} along a spatial axis")
                    continue
                geometry = inputs[0][0]
                if geometry.known and geometry.layout:
                    axes = list(geometry.axes)
                    axes[axis - (ndim - n)] = _whole_axis(input_sizes[axis - (ndim - n)])
                    geometry = replace(geometry, axes=tuple(axes))
                memo[id(current)] = geometry
                continue
        memo[id(current)] = _merge([g for g, _ in inputs], [size for _, size in inputs],
                                   input_sizes)
    geometry = memo[id(node)]
    return _unknown("no path to the input") if geometry is None else geometry


# -- the table ------------------------------------------------------------------------------


def _fraction_text(value: Fraction) -> str:
    """3, 0.5, 3.75 (short finite decimals), else 1/3."""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.3f}".rstrip("0")
    return text if Fraction(text) == value else f"{value}"


@dataclass
class LayerInfo:
    """One row of the table: one call of a leaf module.

    `rf`, `jump`, `start`: one entry per spatial axis of the input (rf_h, rf_w), None where
    unknown; a `jump` entry is None where the output has no layout along that axis (after
    Flatten, or where an element sees the whole axis). `whole`: every output element sees
    the whole input. `rf_bound`: the RF is an upper bound (or, with `rf_assumed`, assumed).
    `span`: per axis (lo, hi), real numbers such that output element o reads only input
    elements in [lo + o * jump, hi + o * jump] (exact rows: lo = start, hi = start + rf - 1;
    None where unknown or whole). `why`: what made the geometry unknown or assumed.
    """

    name: str
    type: str
    input_shape: tuple
    output_shape: tuple
    params: int
    trainable_params: int
    macs: int | None
    rf: tuple | None
    jump: tuple | None
    start: tuple | None
    whole: bool
    rf_bound: bool
    rf_assumed: bool
    _input_sizes: tuple = field(default=(), repr=False)
    span: tuple | None = None
    why: str = ""

    @property
    def center(self) -> tuple | None:
        """Input coordinate of the centre of output element 0's receptive field."""
        if self.start is None or self.rf is None:
            return None
        return tuple(None if s is None else s + Fraction(r - 1, 2)
                     for s, r in zip(self.start, self.rf, strict=True))

    @property
    def label(self) -> str:
        return f"{self.name} {self.type}" if self.name else self.type

    @property
    def rf_text(self) -> str:
        if self.rf is None:
            return "?"
        prefix = "~" if self.rf_assumed else "<=" if self.rf_bound else ""
        if self.whole:
            sizes = "x".join(str(size) for size in self._input_sizes)
            return prefix + (f"{sizes} (all)" if sizes else "all")
        return prefix + "x".join(str(r) for r in self.rf) if self.rf else prefix + "1"

    @property
    def jump_text(self) -> str:
        if self.jump is None:
            return "?"
        if self.whole or not self.jump or all(j is None for j in self.jump):
            return "-"
        return "x".join("-" if j is None else _fraction_text(j) for j in self.jump)


def _bytes_text(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1024
    return ""  # pragma: no cover


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


class Summary:
    """What `summary` returns: `rows` (a `LayerInfo` per leaf call) and the totals;
    ``str()`` is the table."""

    def __init__(self, net, rows, input_size, output_shape, dtype, total_params,
                 trainable_params, output_row=None):
        self.net_type = type(net).__name__
        self.rows = rows
        #: a `LayerInfo` for the network's output, which may be computed outside any leaf (a
        #: concatenation, a sum): its geometry followed through the autograd graph
        self.output_row = output_row
        self.input_size = tuple(input_size)
        self.output_shape = tuple(output_shape) if output_shape is not None else None
        self.dtype = dtype
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.macs_complete = all(row.macs is not None for row in rows)
        self.total_macs = sum(row.macs or 0 for row in rows)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def input_bytes(self) -> int:
        return math.prod(self.input_size) * self.dtype.itemsize

    @property
    def output_bytes(self) -> int:
        if self.output_shape is None:
            return 0
        return math.prod(self.output_shape) * self.dtype.itemsize

    def __getitem__(self, index) -> LayerInfo:
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Param #", "MACs", "RF", "Jump")
        body = [(row.label, _shape_text(row.output_shape), f"{row.params:,}",
                 "?" if row.macs is None else f"{row.macs:,}", row.rf_text, row.jump_text)
                for row in self.rows]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

        def line(cells):
            return "  ".join(cell.ljust(width) for cell, width in
                             zip(cells, widths, strict=True)).rstrip()

        width = max(len(line(header)), 50)
        macs = f"{self.total_macs:,}" + ("" if self.macs_complete else " (at least)")
        millions = f" ({self.total_macs / 1e6:.2f} M)" if self.total_macs >= 1e5 else ""
        output = "-" if self.output_shape is None else _shape_text(self.output_shape)
        lines = [
            "=" * width, line(header), "=" * width, *(line(cells) for cells in body),
            "=" * width,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            f"Total MACs: {macs}{millions}",
            "-" * width,
            f"Input size: {_shape_text(self.input_size)} {self.dtype} "
            f"({_bytes_text(self.input_bytes)})",
            f"Output size: {output}" + (f" ({_bytes_text(self.output_bytes)})"
                                        if self.output_shape is not None else ""),
            f"Params size: {_bytes_text(self.total_params * self.dtype.itemsize)}",
            "=" * width,
            "MACs: multiply-accumulates with weights, bias not counted.",
            "RF, Jump: receptive field and stride product of an output element on the input.",
        ]
        marks = [text for mark, text in (("<=", "<= upper bound"), ("~", "~ assumed"),
                                         ("?", "? unknown"))
                 if any(mark in row.rf_text for row in self.rows)]
        if marks:
            lines.append("(" + ", ".join(marks) + ")")
        return "\n".join(lines)

    __repr__ = __str__


# -- the forward pass -----------------------------------------------------------------------


_ABSENT = object()


def _first_tensor(value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _macs(module, input, output) -> int | None:
    if isinstance(module, _TRANSPOSED):
        per = (module.out_channels // module.groups) * math.prod(module.kernel_size)
        return input.numel() * per
    if isinstance(module, _CONV):
        per = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() * per
    if isinstance(module, nn.Linear):
        rows = input.numel() // module.in_features if module.in_features else 0
        return rows * module.in_features * module.out_features
    if any(p is not None for p in module._parameters.values()) and not any(
            cls.__name__ in _ELEMENTWISE for cls in type(module).__mro__):
        return None  # a layer with weights whose arithmetic is unknown here
    return 0


def _reraise(err: BaseException, message: str):
    try:
        new = type(err)(message)
    except Exception:  # an exception type with another constructor
        new = RuntimeError(message)
    new._corrnet_summary = True
    raise new from err


def _check_input_size(input_size) -> tuple:
    if isinstance(input_size, (str, bytes)) or not hasattr(input_size, "__iter__"):
        raise TypeError("summary: input_size must be a sequence of ints with the batch "
                        f"dimension first, e.g. (1, 1, 28, 28), got {input_size!r}")
    sizes = tuple(input_size)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                        for s in sizes):
        raise ValueError("summary: input_size must be positive ints with the batch dimension "
                         f"first, e.g. (1, 1, 28, 28), got {input_size!r}")
    return sizes


def summary(net, input_size, dtype=None) -> Summary:
    """The layer table of `net` for one input of `input_size` (batch dimension included,
    e.g. ``(1, 1, 28, 28)``), in `dtype` (default: the default dtype).

    Runs one forward pass on zeros, with every module in eval mode (so that BatchNorm's
    running statistics are not updated and dropout is off; the training flags are restored
    afterwards), and records each leaf module's call. The pass records the autograd graph
    (nothing is back-propagated): a layer whose input was computed outside any leaf (a
    concatenation of a skip connection, a sum, ``F.relu`` in a ``forward``) gets its
    geometry by following that graph back to known tensors (the ops followed: elementwise
    ones, concatenation along channels, softmax), as does `Summary.output_row`. See the module's
    docstring for what the columns count. A layer that fails is named in the error, with
    the shape it was given.

    >>> s = corrnet.summary(corrnet.models.lenet(), (1, 1, 28, 28))
    >>> s.total_params, s.rows[0].rf, s.rows[3].jump == (2, 2), s.rows[3].rf_text
    (61706, (5, 5), True, '14x14')
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"summary: net must be a corrnet.nn.Module, got {type(net).__name__}")
    sizes = _check_input_size(input_size)
    dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    input_sizes = sizes[2:]

    names = {}
    for name, module in net.named_modules():
        names.setdefault(id(module), name)
    leaves = [module for module in net.modules() if not any(True for _ in module.children())]

    source = zeros(*sizes, dtype=dtype, requires_grad=dtype.is_floating_point)
    x = source.clone() if dtype.is_floating_point else source
    start = _Geometry(tuple(_Axis() for _ in input_sizes))
    tracked = {id(x): (x, start)}
    known = {} if x.grad_fn is None else {id(x.grad_fn): (x.grad_fn, start)}
    history = []              # (tensor, geometry) of every recorded output, in order
    rows = []
    seen_params = set()
    last = {"name": None}

    def geometry_of(tensor) -> _Geometry:
        if id(tensor) in tracked and tracked[id(tensor)][0] is tensor:
            return tracked[id(tensor)][1]
        traced = _UNKNOWN
        if tensor.grad_fn is not None:
            traced = _trace(tensor.grad_fn, known, len(input_sizes), input_sizes)
            if traced.known:
                return traced
        # an op the graph cannot follow: assume the geometry of the last output of this shape
        same = [g for t, g in reversed(history) if tuple(t.shape) == tuple(tensor.shape)]
        return replace(same[0], assumed=True, why=traced.why) if same else traced

    def record(module, args, output):
        name, kind = names.get(id(module), ""), type(module).__name__
        first = _first_tensor(list(args))
        out = _first_tensor(output)
        geometry = geometry_of(first) if first is not None else _UNKNOWN
        if out is not None and first is not None:
            geometry = _propagate(module, geometry, first, out, input_sizes)
            macs = _macs(module, first, out)
        else:
            geometry, macs = _UNKNOWN, _macs(module, first, out) if first is not None else None
        params = trainable = 0
        for param in module.parameters():
            if id(param) not in seen_params:
                seen_params.add(id(param))
                params += param.numel()
                trainable += param.numel() if param.requires_grad else 0
        if out is not None:
            tracked[id(out)] = (out, geometry)
            history.append((out, geometry))
            if out.grad_fn is not None:
                known[id(out.grad_fn)] = (out.grad_fn, geometry)
        rows.append(_row(name, kind, first, out, params, trainable, macs, geometry,
                         input_sizes))
        last["name"] = name or kind

    def wrap(module, original):
        def forward(*args, **kwargs):
            try:
                output = original(*args, **kwargs)
            except Exception as err:
                if getattr(err, "_corrnet_summary", False):
                    raise
                shapes = [tuple(a.shape) for a in args if isinstance(a, Tensor)]
                shape = shapes[0] if len(shapes) == 1 else shapes
                _reraise(err, f"summary: layer '{names.get(id(module), '') or 'net'}' "
                              f"({type(module).__name__}) failed on an input of shape "
                              f"{shape}: {err}")
            record(module, args, output)
            return output
        return forward

    training = [(module, module.training) for module in net.modules()]
    wrapped = []              # (module, its own "forward" attribute if it had one)
    try:
        for module in leaves:
            wrapped.append((module, module.__dict__.get("forward", _ABSENT)))
            object.__setattr__(module, "forward", wrap(module, module.forward))
        net.eval()
        with enable_grad():
            try:
                output = net(x)
            except Exception as err:
                if getattr(err, "_corrnet_summary", False):
                    raise
                where = (f"after layer '{last['name']}'" if last["name"] is not None
                         else "before its first layer")
                _reraise(err, f"summary: the forward pass of {type(net).__name__} failed "
                              f"{where} (input_size {sizes}): {err}")
    finally:
        for module, own in wrapped:
            if own is _ABSENT:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = own
        for module, mode in training:
            object.__setattr__(module, "training", mode)

    out = _first_tensor(output)
    total = trainable = 0
    for param in net.parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    output_row = None
    if out is not None:
        output_row = _row("", "output", x, out, 0, 0, 0, geometry_of(out), input_sizes)
    return Summary(net, rows, sizes, tuple(out.shape) if out is not None else None, dtype,
                   total, trainable, output_row)


def _row(name, kind, first, out, params, trainable, macs, geometry, input_sizes) -> LayerInfo:
    known = geometry.known
    whole = known and bool(geometry.axes) and all(a.whole for a in geometry.axes) or (
        known and not geometry.axes and not geometry.layout)
    return LayerInfo(
        name=name, type=kind,
        input_shape=tuple(first.shape) if first is not None else (),
        output_shape=tuple(out.shape) if out is not None else (),
        params=params, trainable_params=trainable, macs=macs,
        rf=tuple(a.rf for a in geometry.axes) if known else None,
        jump=tuple(None if a.whole or not geometry.layout else a.jump
                   for a in geometry.axes) if known else None,
        start=tuple(None if a.whole or a.start is None else a.start
                    for a in geometry.axes) if known else None,
        whole=whole, rf_bound=geometry.bound, rf_assumed=geometry.assumed,
        _input_sizes=input_sizes,
        span=tuple(None if a.whole else (a.left, a.left + a.width) for a in geometry.axes)
        if known and geometry.layout else None,
        why=geometry.why,
    )
