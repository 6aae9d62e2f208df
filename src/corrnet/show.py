"""Pictures of what a network learned: its first layer's kernels, the feature maps of an image
at a layer, and the input region one output unit sees.

Each picture comes from a data function that returns plain NumPy arrays (what is drawn, to
test and reuse) and a drawing function that returns a matplotlib ``Figure`` (matplotlib is the
optional ``plot`` extra: ``pip install corrnet[plot]``); `save` writes a figure as a PNG,
atomically. The figures are made without pyplot, so nothing global changes and no display is
needed.

>>> net = corrnet.models.lenet()
>>> kernel_mosaic(first_conv(net)[1].weight).shape   # 6 kernels 5x5 in 2 rows of 3, 1-pixel gaps
(11, 17)
>>> field = receptive_field(net, (1, 1, 28, 28), "2", unit=(0, 0))  # the first AvgPool2d
>>> field.rows, field.cols, field.clipped_rows
((-2, 3), (-2, 3), (0, 3))

Layers are the rows of `corrnet.summary` (``corrnet summary NAME``): one per call of a leaf
module, in call order. A layer is named by its name there (``3``, ``1.0.conv1``) or by its
position, counted from 0; in a string, a name wins over a position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import nn
from .autograd import no_grad
from .serialization import atomic_write
from .summary import LayerInfo, summary
from .tensor import Tensor, from_numpy

__all__ = ["MatplotlibMissing", "ReceptiveField", "ShowError", "feature_maps", "features",
           "first_conv", "kernel_mosaic", "kernels", "receptive_field", "receptive_field_figure",
           "resolve_layer", "rgb_scale", "save", "to_network_input"]


class ShowError(ValueError):
    """A request these pictures cannot answer: an unknown layer, a unit outside the output,
    a layer without feature maps, an unreadable image."""


class MatplotlibMissing(ImportError):
    """Drawing needs matplotlib, the optional ``plot`` extra."""


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissing("drawing needs matplotlib: pip install 'corrnet[plot]'") from None
    return Figure(**kwargs)


def save(figure, path) -> None:
    """Write `figure` to `path` as a PNG, atomically (a temporary file, then a rename)."""
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=100)


# -- kernels ----------------------------------------------------------------------------------


def first_conv(net) -> tuple[str, nn.Conv2d]:
    """``(name, layer)``: the first `Conv2d` of `net`, in the order `named_modules` gives."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ShowError(f"{type(net).__name__} has no Conv2d layer, so no kernels to draw")


def _grid(count: int) -> tuple[int, int]:
    """(rows, columns) of a near-square grid for `count` panels."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def kernel_mosaic(weight, gap: int = 1) -> np.ndarray:
    """The kernels of a convolution weight (C_out, C_in, kh, kw) laid out as one image, with
    `gap` pixels of NaN between panels (drawn as blank):

    * C_in == 1: the C_out kernels in a near-square grid, row by row;
    * C_in == 3: one RGB panel per output channel in such a grid, (H, W, 3), each weight
      channel one colour channel (scale them with `rgb_scale` to show);
    * otherwise one row per output channel, one column per input channel.

    Panel (r, c) of a grid starts at pixel ``(r * (kh + gap), c * (kw + gap))``.
    """
    w = weight.detach().numpy() if isinstance(weight, Tensor) else np.asarray(weight)
    if w.ndim != 4:
        raise ShowError(f"kernel_mosaic: a convolution weight is (C_out, C_in, kh, kw), got "
                        f"shape {tuple(w.shape)}")
    c_out, c_in, kh, kw = w.shape
    if c_in in (1, 3):
        rows, columns = _grid(c_out)
        panels = [w[o].transpose(1, 2, 0) for o in range(c_out)]  # each (kh, kw, C_in)
    else:
        rows, columns = c_out, c_in
        panels = [w[o, i][..., None] for o in range(c_out) for i in range(c_in)]
    depth = panels[0].shape[-1]
    mosaic = np.full((rows * (kh + gap) - gap, columns * (kw + gap) - gap, depth), np.nan)
    for index, panel in enumerate(panels):
        r, c = divmod(index, columns)
        mosaic[r * (kh + gap):r * (kh + gap) + kh, c * (kw + gap):c * (kw + gap) + kw] = panel
    return mosaic if depth == 3 else mosaic[..., 0]


def rgb_scale(mosaic: np.ndarray) -> np.ndarray:
    """An RGB kernel mosaic mapped to [0, 1] with 0.5 for a zero weight (the largest |weight|
    reaches 0 or 1), gaps white."""
    largest = np.nanmax(np.abs(mosaic)) if np.isfinite(mosaic).any() else 0.0
    scaled = 0.5 + 0.5 * mosaic / (largest if largest > 0 else 1.0)
    return np.where(np.isnan(scaled), 1.0, scaled)


def kernels(net, title: str | None = None):
    """A figure of every kernel of `net`'s first convolution (see `kernel_mosaic` for the
    layout) on a diverging colour map centred at 0, with a colour bar; for 3 input channels,
    one RGB image per output channel."""
    name, conv = first_conv(net)
    weight = conv.weight.detach().numpy()
    c_out, c_in, kh, kw = weight.shape
    mosaic = kernel_mosaic(weight)
    height, width = mosaic.shape[:2]
    scale = 5.0 / max(height, width)
    figure = _figure(figsize=(max(3.0, width * scale) + 1.6, max(2.5, height * scale) + 0.8))
    ax = figure.add_subplot()
    if c_in == 3:
        ax.imshow(rgb_scale(mosaic), interpolation="nearest")
        what = "RGB: grey (0.5) is a zero weight"
    else:
        limit = float(np.nanmax(np.abs(mosaic))) or 1.0
        image = ax.imshow(np.ma.masked_invalid(mosaic), cmap="RdBu_r", vmin=-limit,
                          vmax=limit, interpolation="nearest")
        figure.colorbar(image, ax=ax, shrink=0.8, label="weight")
        what = ("one kernel per output channel" if c_in == 1
                else "rows: output channels, columns: input channels")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"layer {name}: {c_out}x{c_in} kernels {kh}x{kw}\n({what})",
                 fontsize=9)
    figure.tight_layout()
    return figure


# -- layers -----------------------------------------------------------------------------------


def resolve_layer(rows: list[LayerInfo], layer) -> int:
    """The index in `rows` (a summary's rows) of `layer`: an int is a position counted from 0
    (negative from the end); a string is a row's name, else such a position."""
    text = str(layer).strip()
    if not isinstance(layer, int):
        for index, row in enumerate(rows):
            if row.name == text:
                return index
    try:
        index = int(text)
    except ValueError:
        index = None
    if index is not None and -len(rows) <= index < len(rows):
        return index % len(rows)
    names = ", ".join(f"{i}: {row.label}" for i, row in enumerate(rows))
    raise ShowError(f"no layer {text!r}; the layers (position: name type) are {names}")


def _leaf_outputs(net, x, target: int) -> Tensor:
    """The output of the `target`-th call of a leaf module (summary's row order) when net
    runs on x."""
    leaves = [m for m in net.modules() if not any(True for _ in m.children())]
    calls, found = [0], []

    def hook(module, args, output):
        if calls[0] == target:
            found.append(output)
        calls[0] += 1

    handles = [leaf.register_forward_hook(hook) for leaf in leaves]
    try:
        net(x)
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise ShowError(f"the network made {calls[0]} layer calls, fewer than {target + 1}")
    return found[0]


def to_network_input(gray: np.ndarray, size: tuple[int, int], invert: bool = False) -> Tensor:
    """A grey uint8 image (H, W) as one network input (1, 1, h, w) float32 in [0, 1], as the
    training data is: resized with Pillow's bilinear filter (antialiased when shrinking, what
    `corrnet.datasets.FashionMNIST`'s resize reproduces), divided by 255. `invert`: 255 - x
    first (Fashion-MNIST's clothes are light on black)."""
    from PIL import Image

    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ShowError(f"to_network_input: expected a grey uint8 image (H, W), got "
                        f"{gray.dtype} {tuple(gray.shape)}")
    if invert:
        gray = 255 - gray
    height, width = size
    if gray.shape != (height, width):
        gray = np.asarray(Image.fromarray(gray).resize((width, height), Image.BILINEAR))
    return from_numpy(np.divide(gray, np.float32(255), dtype=np.float32)[None, None])


def feature_maps(net, x, layer, input_size=None) -> tuple[LayerInfo, np.ndarray]:
    """``(row, maps)``: the summary row of `layer` and its output on the input `x` (1, C, H, W),
    as an array (C', H', W'). Refused for a layer whose output has no (N, C, H, W) layout."""
    x = x if isinstance(x, Tensor) else from_numpy(np.asarray(x, dtype=np.float32))
    rows = summary(net, tuple(input_size or x.shape)).rows
    index = resolve_layer(rows, layer)
    row = rows[index]
    if len(row.output_shape) != 4:
        spatial = ", ".join(f"{i}: {r.label}" for i, r in enumerate(rows)
                            if len(r.output_shape) == 4)
        raise ShowError(f"layer {index} ({row.label}) outputs {list(row.output_shape)}, not "
                        f"feature maps (N, C, H, W); layers with feature maps: {spatial}")
    was_training = net.training
    net.eval()
    try:
        with no_grad():
            out = _leaf_outputs(net, x, index)
    finally:
        net.train(was_training)
    return row, out.detach().numpy()[0]


def features(net, x, layer, title: str | None = None, max_channels: int = 64):
    """A figure of the feature maps of `x` at `layer` (see `feature_maps`): one panel per
    channel (the first `max_channels`), on one colour scale with a colour bar."""
    row, maps = feature_maps(net, x, layer)
    shown = maps[:max_channels]
    rows, columns = _grid(len(shown))
    figure = _figure(figsize=(1.3 * columns + 1.4, 1.3 * rows + 0.8))
    low, high = float(shown.min()), float(shown.max())
    if low < 0 < high:  # signed values: a diverging map centred at 0
        limit = max(-low, high)
        cmap, low, high = "RdBu_r", -limit, limit
    else:
        cmap = "viridis"
    axes = figure.subplots(rows, columns, squeeze=False)
    image = None
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index < len(shown):
            image = ax.imshow(shown[index], cmap=cmap, vmin=low, vmax=high,
                              interpolation="nearest")
            ax.set_title(str(index), fontsize=7, pad=2)
        else:
            ax.axis("off")
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    more = f", first {len(shown)} of {len(maps)}" if len(shown) < len(maps) else ""
    figure.suptitle(title or f"layer {row.label}: {len(maps)} maps "
                             f"{maps.shape[1]}x{maps.shape[2]}{more}", fontsize=9)
    return figure


# -- receptive field --------------------------------------------------------------------------


@dataclass
class ReceptiveField:
    """The input region output unit `unit` of layer `row` sees: `rows` and `cols` are the
    first and last input index (inclusive) of the theoretical field, which can reach into
    the padding (below 0 or past the input); `clipped_rows`, `clipped_cols` the part on the
    input."""

    row: LayerInfo
    unit: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]
    clipped_rows: tuple[int, int]
    clipped_cols: tuple[int, int]


def receptive_field(net, input_size, layer, unit=None) -> ReceptiveField:
    """Where output unit `unit` (i, j) of `layer` (default: the middle unit) looks on an
    input of `input_size` (N, C, H, W), from `corrnet.summary`'s receptive field, jump and
    start: unit i covers ``start + i * jump`` to ``start + i * jump + rf - 1``."""
    rows = summary(net, tuple(input_size)).rows
    index = resolve_layer(rows, layer)
    row = rows[index]
    height, width = input_size[-2:]
    if row.rf is None or row.rf_assumed or row.rf_bound:
        why = ("unknown" if row.rf is None else
               "assumed: its input was computed outside any layer, by an op summary cannot "
               f"follow ({row.why or 'say F.avg_pool2d in a forward'})"
               if row.rf_assumed else "an upper bound: the windows differ in size")
        raise ShowError(f"layer {index} ({row.label}): its receptive field is {row.rf_text}, "
                        f"{why}; pick a layer whose RF in `corrnet summary` has no ~, <= or ?")
    if row.whole:
        out_h, out_w = (1, 1)
    elif len(row.output_shape) != 4 or row.jump is None or None in row.jump:
        raise ShowError(f"layer {index} ({row.label}) outputs {list(row.output_shape)}: no "
                        "(N, C, H, W) layout to pick a unit in")
    else:
        out_h, out_w = row.output_shape[-2:]
    unit = (out_h // 2, out_w // 2) if unit is None else tuple(int(u) for u in unit)
    if len(unit) != 2 or not (0 <= unit[0] < out_h and 0 <= unit[1] < out_w):
        raise ShowError(f"unit {unit} is outside layer {index}'s output of {out_h}x{out_w} "
                        f"(rows 0..{out_h - 1}, columns 0..{out_w - 1})")
    if row.whole:
        spans = [(0, height - 1), (0, width - 1)]
    else:
        spans = []
        for u, rf, jump, start in zip(unit, row.rf, row.jump, row.start, strict=True):
            first = Fraction(start) + u * Fraction(jump)
            if first.denominator != 1:  # not reached for exact (affine, integer) geometry
                raise ShowError(f"layer {index}: the field starts between pixels ({first})")
            spans.append((int(first), int(first) + rf - 1))
    clipped = [(max(a, 0), min(b, size - 1)) for (a, b), size in
               zip(spans, (height, width), strict=True)]
    return ReceptiveField(row, unit, spans[0], spans[1], clipped[0], clipped[1])


def receptive_field_figure(field: ReceptiveField, image: np.ndarray | None = None,
                           title: str | None = None):
    """`field` drawn over `image` (H, W, values in [0, 1]; default a black Fashion-MNIST-like
    blank): the part on the input as a solid rectangle, the theoretical field (into the
    padding) dashed."""
    figure = _figure(figsize=(5, 5.4))
    from matplotlib.patches import Rectangle

    row = field.row
    height, width = row._input_sizes[-2:] if image is None else image.shape
    canvas = np.zeros((height, width)) if image is None else image
    ax = figure.add_subplot()
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    (r0, r1), (c0, c1) = field.rows, field.cols
    (q0, q1), (p0, p1) = field.clipped_rows, field.clipped_cols
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                           edgecolor="orange", linestyle="--", linewidth=1.2,
                           label=f"receptive field {r1 - r0 + 1}x{c1 - c0 + 1}"))
    ax.add_patch(Rectangle((p0 - 0.5, q0 - 0.5), p1 - p0 + 1, q1 - q0 + 1, fill=True,
                           facecolor=(1, 0.3, 0.1, 0.25), edgecolor="red", linewidth=1.8,
                           label=f"on the input: rows {q0}..{q1}, columns {p0}..{p1}"))
    pad = max(0, -r0, -c0, r1 - height + 1, c1 - width + 1)
    ax.set_xlim(-0.5 - pad, width - 0.5 + pad)
    ax.set_ylim(height - 0.5 + pad, -0.5 - pad)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.03), fontsize=8, frameon=False)
    ax.set_title(title or f"layer {row.label}, unit {field.unit}: what it sees", fontsize=9)
    figure.tight_layout()
    return figure
