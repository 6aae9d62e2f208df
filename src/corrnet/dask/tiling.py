"""Tiled inference of a translation-equivariant network over a Dask array: `apply`.

A fully-convolutional network computes each output pixel from a bounded window of the input
(its receptive field), on a grid set by its strides. So an image larger than memory can be
cut into chunks, each chunk run through the network with a margin (halo) of real
neighbouring pixels, and the outputs that saw only real pixels kept: the result equals the
network on the whole image. Three things make it exact (see `corrnet.summary` for the
geometry):

* **Halo from the receptive field.** `summary` gives, for the network's output, the jump J
  (input pixels between neighbouring outputs) and the real interval [lo + o J, hi + o J]
  holding the input pixels output o reads, through every branch (skip connections,
  upsampling). A chunk [a, b) owns the outputs [a / J, b / J); they read inputs from
  a + lo to b - J + hi, so the halo is ceil(-lo) pixels before the chunk and
  floor(hi - J) + 1 after it (or more where the network makes fewer outputs than its input
  size / J, as an unpadded or a transposed convolution does: a region must also reach far
  enough for its last outputs to exist at all).
* **A grid aligned with the network's.** Every chunk boundary and every halo is a multiple
  of the alignment A: the least common multiple of the numerators of every layer's jump
  (for a network of strides and pooling, the product of the strides down to its deepest
  layer). A region starting at a multiple of A meets every pooling window and strided
  convolution on the same grid as the whole image does, so region output o' is whole-image
  output o' + r / J.
* **Padding at the true border only.** Each region is cut from the image without padding:
  at the image's border the network pads as on the whole image; inside, the halo holds the
  real pixels, and the outputs next to a region's inner edge (which saw the network's
  padding there) are exactly the ones the halo leaves out.

The network travels as a `ShippedNetwork` (its module structure and its tensors as NumPy
arrays in the compute dtype): under a ``dask.distributed`` Client (current when `apply` is
called) it is scattered to every worker once and the block tasks refer to its future;
without one it is one key of the graph. Each worker rebuilds the network once per thread;
no task holds weights.

>>> import dask.array as da
>>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
>>> image = da.ones((1, 64, 48), chunks=(1, 16, 16), dtype="float32")
>>> out = corrnet.dask.apply(net, image)
>>> out.shape, out.chunks[1:]
((2, 32, 24), ((8, 8, 8, 8), (8, 8, 8)))
>>> with corrnet.no_grad():
...     whole = net(corrnet.ones(1, 1, 64, 48))[0].numpy()
>>> bool(abs(out.compute() - whole).max() < 1e-6)
True
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .. import backend, nn
from ..autograd import no_grad
from ..summary import summary as _summary
from ..tensor import Tensor, from_numpy, zeros
from .shipping import ShippedNetwork, scattered

__all__ = ["apply"]

_NAME = "corrnet.dask.apply"


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as err:  # pragma: no cover - the extra is installed in the tests
        raise ImportError(f"{_NAME} needs Dask: pip install corrnet[dask]") from err
    return dask, da


# -- which layers can be tiled ----------------------------------------------------------------


def _is(module, *names) -> bool:
    return any(cls.__name__ in names for cls in type(module).__mro__)


def _power_of_two(value: Fraction) -> bool:
    return value.denominator == 1 and value.numerator > 0 and \
        value.numerator & (value.numerator - 1) == 0


def _upsample_refusal(module) -> str | None:
    """Why an `nn.Upsample` is not exactly translation-equivariant on an aligned grid, or
    None. Nearest (and nearest-exact) by an integer factor f reads input floor(o / f): a
    shift by a multiple of the grid shifts it exactly (F.interpolate's float32 position
    o * (1/f) floors to the same index below 2**22 pixels). The linear and cubic modes
    weight the taps by the fractional part of (o + 1/2) / f - 1/2, exact in binary floating
    point (so the same at every position) only for f a power of two; with `align_corners`
    the positions scale with the image's size."""
    mode = module.mode
    if module.size is not None:
        return "resizes to a fixed size (size=...): give scale_factor instead"
    if mode not in ("nearest", "nearest-exact", "bilinear", "bicubic"):
        return f"has mode {mode!r}: tiling supports nearest, nearest-exact, bilinear, bicubic"
    if getattr(module, "align_corners", None):
        return ("aligns corners: its sample positions scale with the image's size (not "
                "translation-equivariant)")
    factors = module.scale_factor
    factors = factors if isinstance(factors, (tuple, list)) else (factors, factors)
    for factor in factors:
        exact = Fraction(factor)
        if exact.denominator != 1 or exact < 1:
            return (f"has scale factor {factor}: only integer factors keep the output on "
                    "a grid aligned with the input's")
        if mode in ("bilinear", "bicubic") and not _power_of_two(exact):
            return (f"has mode {mode!r} with scale factor {factor}: its weights come from "
                    "floating point positions that are exact only for power-of-two factors")
    return None


def _refusal(module) -> str | None:
    """Why `module` (a leaf) cannot be tiled, or None."""
    if _is(module, "Linear", "LazyLinear", "Bilinear"):
        return "mixes every position of its input: its output is not local"
    if _is(module, "Flatten", "Unflatten", "Unfold", "Fold"):
        return "rearranges the spatial axes: its output is not local"
    if _is(module, "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d"):
        return "pools to a fixed output size (global or adaptive pooling): not local"
    if _is(module, "GroupNorm", "LayerNorm"):
        return "normalizes with statistics over the spatial axes: not local"
    if _is(module, "InstanceNorm1d", "InstanceNorm2d") and (
            module.training or not getattr(module, "track_running_stats", False)):
        return "normalizes with statistics over the spatial axes: not local"
    if _is(module, "BatchNorm1d", "BatchNorm2d", "LazyBatchNorm1d", "LazyBatchNorm2d") and (
            module.training or not getattr(module, "track_running_stats", True)):
        return ("normalizes with the batch's statistics (training mode): call net.eval() "
                "to use its running statistics")
    if _is(module, "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout") and module.training \
            and module.p > 0:
        return "is in training mode (random): call net.eval()"
    if _is(module, "Upsample"):
        return _upsample_refusal(module)
    if _is(module, "CircularPad1d", "CircularPad2d") or \
            getattr(module, "padding_mode", "zeros") == "circular":
        return "pads circularly: the image's far side would be read at its border"
    if _is(module, "MaxUnpool1d", "MaxUnpool2d"):
        return "places values by indices computed elsewhere: not local"
    return None


def _check_layers(net) -> None:
    for name, module in net.named_modules():
        if any(True for _ in module.children()):
            continue
        reason = _refusal(module)
        if reason is not None:
            raise ValueError(f"{_NAME}: layer '{name or type(net).__name__}' "
                             f"({type(module).__name__}) {reason}; tiled inference needs a "
                             "translation-equivariant network whose output is local")


def _check_rows(s) -> None:
    """Every row (and the output) must have a bounded, located receptive field."""
    for row in [*s.rows, s.output_row]:
        where = ("the network's output" if row is s.output_row
                 else f"layer '{row.name or row.type}' ({row.type})")
        if row.rf is None:
            why = f" ({row.why})" if row.why else ""
            raise ValueError(f"{_NAME}: {where}: corrnet.summary cannot bound its receptive "
                             f"field{why}; tiling needs layers it knows (convolution, "
                             "pooling, elementwise ops, nn.Upsample, channel concatenation)")
        if row.rf_assumed:
            raise ValueError(f"{_NAME}: {where}: its input is computed by an op "
                             f"corrnet.summary cannot follow ({row.why}); use a layer "
                             "(a module) for it")
        if row.whole or row.jump is None or any(j is None for j in row.jump) or \
                row.span is None or any(span is None for span in row.span):
            raise ValueError(f"{_NAME}: {where}: its output depends on the whole input "
                             "along a spatial axis (not local)")


# -- geometry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AxisPlan:
    """One spatial axis: the alignment, the halo before and after each chunk, the output
    jump and the output size for the image's size."""

    align: int
    before: int
    after: int
    jump: Fraction
    size: int
    out_size: int


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _probe(net, shape, dtype):
    """The network's output on zeros of `shape`."""
    with no_grad():
        return net(zeros(*shape, dtype=dtype))


def _plan(net, channels: int, sizes: tuple, dtype, images_shape) -> tuple:
    """(per-axis `_AxisPlan`s, output channels) from the layer table on a small probe and
    one or two forward passes at the image's size modulo the alignment."""
    errors = []
    for probe in (128, 192, 256, 384):
        shape = (1, channels, *(min(size, probe) for size in sizes))
        try:
            s = _summary(net, shape, dtype=dtype)
            break
        except Exception as err:  # noqa: BLE001 - reported below if every probe fails
            errors.append(err)
    else:
        raise ValueError(f"{_NAME}: the network fails on images of shape {images_shape} "
                         f"(probed with {shape}): {errors[0]}") from errors[0]
    _check_rows(s)
    out_row = s.output_row
    if len(out_row.output_shape) != 4:
        raise ValueError(f"{_NAME}: the network's output must be (N, C, H, W), got shape "
                         f"{out_row.output_shape} for input {shape}")
    plans = []
    for axis in range(2):
        align = math.lcm(*(Fraction(row.jump[axis]).numerator for row in [*s.rows, out_row]))
        lo, hi = out_row.span[axis]
        jump = Fraction(out_row.jump[axis])
        before = _round_up(max(0, math.ceil(-lo)), align)
        # A layer inside the network that leaves out trailing outputs a larger input would
        # have (a transposed convolution of n pixels has 2n - 1 outputs at stride 2, not
        # 2n) leaves them out at a chunk's end too, where a later layer that pads or clamps
        # (a bicubic upsample, a padded convolution) reads them: the halo after a chunk
        # also covers those outputs, in input pixels (their receptive span, hi, says only
        # which input pixels their values depend on, not that they exist)
        unmade = sum(max(0, math.ceil((Fraction(shape[2 + axis]) / Fraction(row.jump[axis])
                                       - row.output_shape[2 + axis]) * row.jump[axis]))
                     for row in s.rows[:-1]
                     if row.output_shape is not None and len(row.output_shape) == 4)
        after = _round_up(max(0, math.floor(hi - jump) + 1) + unmade, align)
        plans.append((align, before, after, jump))
    # Output sizes. A region whose size is a multiple of the alignment (every region but
    # those that end at the image's end) gives size / J + c0 outputs: c0 < 0 (unpadded or
    # transposed convolutions) means its last outputs are missing, however local they are,
    # so the halo after a chunk also covers -c0 * J pixels. The image's own output size comes
    # from a probe of its size modulo the alignment (and one a grid step larger, to check
    # that the size is affine in the input's).
    bases = [_round_up(max(before + after + 2 * align, 64), align)
             for align, before, after, _ in plans]
    lengths = [min(base + size % plan[0], size)
               for base, plan, size in zip(bases, plans, sizes, strict=True)]
    extrapolate = any(length < size for length, size in zip(lengths, sizes, strict=True))
    shapes = [(1, channels, *bases), (1, channels, *lengths)]
    if extrapolate:
        shapes.append((1, channels, *(length + (plan[0] if length < size else 0)
                                      for length, plan, size in zip(lengths, plans, sizes,
                                                                    strict=True))))
    outs = []
    for shape in shapes:
        try:
            out = _probe(net, shape, dtype)
        except Exception as err:
            raise ValueError(f"{_NAME}: the network fails on an input of shape {shape} (the "
                             f"images' size {tuple(sizes)} modulo the alignment "
                             f"{tuple(p[0] for p in plans)}), so it would fail on the whole "
                             f"image of shape {images_shape} too: {err}") from err
        if not isinstance(out, Tensor):
            raise ValueError(f"{_NAME}: the network must return one tensor, got "
                             f"{type(out).__name__}")
        outs.append(tuple(out.shape))
    result = []
    for axis, ((align, before, after, jump), size) in enumerate(zip(plans, sizes,
                                                                    strict=True)):
        missing = bases[axis] / jump - outs[0][2 + axis]  # -c0
        after = max(after, _round_up(max(0, math.ceil(missing * jump)), align))
        out_size = outs[1][2 + axis]
        if lengths[axis] < size:
            step = outs[2][2 + axis] - out_size
            if step != align / jump:
                raise ValueError(f"{_NAME}: the network's output size is not affine in its "
                                 f"input size along axis {axis - 2} ({out_size} then {step} "
                                 f"more for {align} more input pixels; expected "
                                 f"{align / jump})")
            out_size += int((size - lengths[axis]) / jump)
        result.append(_AxisPlan(align, before, after, jump, size, out_size))
    return tuple(result), outs[1][1]


# -- chunks ---------------------------------------------------------------------------------


def _axis_chunks(value, existing: tuple, plan: _AxisPlan, axis_name: str, chunks) -> tuple:
    """The block sizes along one spatial axis: multiples of the alignment but the last."""
    size, align = plan.size, plan.align
    if value is None:  # the array's own chunks, if aligned, else its largest rounded up
        if all(c % align == 0 for c in existing[:-1]) and all(c > 0 for c in existing):
            return tuple(existing)
        value = max(align, _round_up(max(existing), align))
    if value == -1:
        value = size
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = int(value)
        if value < 1 or (value % align and value < size):
            raise ValueError(f"{_NAME}: chunks={chunks!r}: a chunk of {value} along {axis_name} "
                             f"must be a positive multiple of the network's alignment {align} "
                             f"(the product of its strides), e.g. "
                             f"{max(align, value // align * align)}; images of size {size} "
                             f"along {axis_name}")
        return tuple([value] * (size // value) + ([size % value] if size % value else [])) \
            or (size,)
    try:
        blocks = tuple(value)
    except TypeError:
        raise ValueError(f"{_NAME}: chunks={chunks!r}: along {axis_name}, an int or a tuple of "
                         f"block sizes, got {value!r}") from None
    if not blocks or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1
                         for b in blocks) or sum(blocks) != size:
        raise ValueError(f"{_NAME}: chunks={chunks!r}: the block sizes along {axis_name} must "
                         f"be positive ints summing to the images' size {size}, got {blocks}")
    if any(b % align for b in blocks[:-1]):
        raise ValueError(f"{_NAME}: chunks={chunks!r}: every block along {axis_name} but the "
                         f"last must be a multiple of the network's alignment {align}, got "
                         f"{blocks}")
    return tuple(int(b) for b in blocks)


def _spatial_chunks(chunks, images, plans) -> tuple:
    names = ("height", "width")
    if chunks is None or isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
        values = (chunks, chunks)
    elif isinstance(chunks, (tuple, list)) and len(chunks) == 2:
        values = tuple(chunks)
    else:
        raise ValueError(f"{_NAME}: chunks must be None, an int or a pair (height, width) "
                         f"(each an int or a tuple of block sizes), got {chunks!r}")
    return tuple(_axis_chunks(value, images.chunks[images.ndim - 2 + i], plan, names[i], chunks)
                 for i, (value, plan) in enumerate(zip(values, plans, strict=True)))


@dataclass(frozen=True)
class _Cut:
    """Along one axis, block k: the input blocks its region spans, where the region starts
    and ends within them, and which outputs of the region's run are kept."""

    blocks: tuple
    crop: tuple
    keep: tuple


def _cuts(blocks: tuple, plan: _AxisPlan) -> list:
    bounds = np.concatenate([[0], np.cumsum(blocks)]).astype(int).tolist()
    count = len(blocks)
    outs = [min(int(bounds[k] / plan.jump), plan.out_size) for k in range(count)]
    outs.append(plan.out_size)
    cuts = []
    for k in range(count):
        start = max(0, bounds[k] - plan.before)
        stop = min(plan.size, bounds[k + 1] + plan.after)
        first = max(j for j in range(count) if bounds[j] <= start)
        last = max(j for j in range(count) if bounds[j] < stop)
        shift = int(start / plan.jump)  # region output o' is whole-image output o' + shift
        cuts.append(_Cut(tuple(range(first, last + 1)),
                         (start - bounds[first], stop - bounds[first]),
                         (outs[k] - shift, max(outs[k], outs[k + 1]) - shift)))
    return cuts


# -- the network on the workers ---------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """One output block's recipe: crops of the joined input blocks, the outputs kept."""

    crop_h: tuple
    crop_w: tuple
    keep_h: tuple
    keep_w: tuple
    shape: tuple
    dtype: str
    batched: bool
    topic: str


def _run_block(payload: ShippedNetwork, parts: list, block: _Block):
    if any(size == 0 for size in block.shape):
        _report(block.topic)
        return np.empty(block.shape, dtype=block.dtype)
    region = parts[0][0] if len(parts) == 1 and len(parts[0]) == 1 else np.block(parts)
    region = region[..., slice(*block.crop_h), slice(*block.crop_w)]
    if not block.batched:
        region = region[None]
    region = np.ascontiguousarray(region, dtype=block.dtype)
    net = payload.network()
    with no_grad():
        out = net(from_numpy(region)).numpy()
    (h0, h1), (w0, w1) = block.keep_h, block.keep_w
    if h0 < 0 or w0 < 0 or h1 > out.shape[2] or w1 > out.shape[3]:
        raise RuntimeError(f"{_NAME}: a region of shape {region.shape} gave an output of shape "
                           f"{out.shape}, which lacks the rows {block.keep_h} and columns "
                           f"{block.keep_w} it should hold")
    out = out[:, :, h0:h1, w0:w1]
    if not block.batched:
        out = out[0]
    _report(block.topic)
    return np.ascontiguousarray(out)


# -- progress -----------------------------------------------------------------------------------


class _Bar:
    """A tqdm bar over the blocks of one `apply`, made at the first finished block and
    closed at the last (a second computation of the same array shows a new bar)."""

    def __init__(self, total: int, description: str):
        self.total, self.description = total, description
        self.count, self.bar = 0, None
        self.lock = threading.Lock()

    def advance(self, *_event) -> None:
        from tqdm.auto import tqdm

        with self.lock:
            if self.bar is None:
                self.bar = tqdm(total=self.total, desc=self.description, unit="block")
            self.bar.update(1)
            self.count += 1
            if self.count >= self.total:
                self.bar.close()
                self.bar, self.count = None, 0


_BARS: dict = {}


def _report(topic: str) -> None:
    """One block done: advance the bar if it lives in this process (the threaded scheduler,
    an in-process cluster), else tell the distributed client through a worker event."""
    if not topic:
        return
    bar = _BARS.get(topic)
    if bar is not None:
        bar.advance()
        return
    try:
        from distributed import get_worker

        get_worker().log_event(topic, 1)
    except (ImportError, ValueError):
        pass


def _progress_bar(topic: str, total: int) -> None:
    bar = _BARS[topic] = _Bar(total, _NAME)
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return
    client.subscribe_topic(topic, bar.advance)


# -- apply --------------------------------------------------------------------------------------


def _compute_dtype(net, dtype):
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
        if not dtype.is_floating_point:
            raise TypeError(f"{_NAME}: dtype must be a floating point dtype, got {dtype}")
        return dtype
    for tensor in net.state_dict().values():
        if tensor.dtype.is_floating_point:
            return tensor.dtype
    return backend.get_default_dtype()


def apply(net, images, *, chunks=None, dtype=None, progress=False):
    """``net(images)`` computed tile by tile: a lazy Dask array equal to the network on the
    whole image (within float32 rounding), for a translation-equivariant `net` (convolutions
    with any stride, dilation, groups and padding; max and average pooling; activations;
    BatchNorm and Dropout in eval mode; `nn.Upsample` by integer factors; skip connections
    joined by concatenation or a sum).

    `images`: a Dask array (a NumPy array is wrapped) of one image (C, H, W) or a stack
    (N, C, H, W), of any real dtype (cast to `dtype` block by block). `chunks`: the spatial
    chunking, an int, a pair (height, width) of ints (-1: the whole axis) or of tuples of
    block sizes; every block but the last of an axis a multiple of the network's alignment
    (the product of its strides). None: the array's own chunks, rounded up to the
    alignment where they are not multiples of it. The channel axis is joined into one
    chunk; a stack keeps its chunks along N (each block runs as one batch). `dtype`: the
    dtype the network computes in and returns (default: its parameters'). `progress`: show
    a progress bar over the blocks while the result is computed.

    Under dask.distributed, create the Client before calling `apply`: the network is then
    scattered to every worker once (and the progress bar follows the workers' events); the
    result must be computed on that Client.

    Memory per worker thread: one block's region (the chunk and its halo) through the
    network at a time, about every feature map of the region alive at once plus the largest
    convolution's im2col matrix; plus the blocks Dask holds between tasks. Dask makes cheap
    input blocks well ahead of the network's tasks that consume them, more of them the
    larger the image; bound what a worker holds with Dask's own setting,
    ``distributed.worker.memory.target`` (the fraction of its memory_limit past which it
    spills held blocks to disk), as ``benchmarks/dask_tiling.py`` does.

    The output's chunks are the input's divided by the network's output jump (the first and
    last blocks of an axis absorb what the network's padding adds or removes at the image's
    border). Layers whose output is not local (Linear, Flatten, global or adaptive pooling,
    normalization over the spatial axes, BatchNorm in training mode) and anything
    `corrnet.summary` cannot bound are refused with the layer named.
    """
    dask, da = _dask()
    if not isinstance(net, nn.Module):
        raise TypeError(f"{_NAME}: net must be a corrnet.nn.Module, got {type(net).__name__}")
    if isinstance(images, np.ndarray):
        images = da.from_array(images)
    if not isinstance(images, da.Array):
        raise TypeError(f"{_NAME}: images must be a dask array (or a NumPy array), got "
                        f"{type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"{_NAME}: images must be one image (C, H, W) or a stack "
                         f"(N, C, H, W), got shape {images.shape}")
    if images.dtype.kind not in "uif":
        raise TypeError(f"{_NAME}: images must hold real numbers (an integer or floating "
                        f"dtype), got {images.dtype} (shape {images.shape})")
    if any(math.isnan(size) for size in images.shape):
        raise ValueError(f"{_NAME}: images must have known sizes, got shape {images.shape}; "
                         "call images.compute_chunk_sizes() first")
    if min(images.shape) == 0:
        raise ValueError(f"{_NAME}: images is empty (shape {images.shape})")
    dtype = _compute_dtype(net, dtype)
    _check_layers(net)
    payload = ShippedNetwork(_NAME, net, dtype)
    batched = images.ndim == 4
    channels, sizes = images.shape[-3], tuple(images.shape[-2:])
    # the probes run on the network as the workers will rebuild it (in the compute dtype)
    plans, out_channels = _plan(payload.rebuild(), channels, sizes, dtype, images.shape)
    blocks_h, blocks_w = _spatial_chunks(chunks, images, plans)
    c_axis = images.ndim - 3
    x = images.rechunk({c_axis: -1, c_axis + 1: blocks_h, c_axis + 2: blocks_w})
    cuts_h, cuts_w = _cuts(blocks_h, plans[0]), _cuts(blocks_w, plans[1])

    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(x.name, payload.token, plans, blocks_h, blocks_w, str(dtype), progress)
    name = f"corrnet-apply-{token}"
    model_key = f"corrnet-network-{payload.token}"
    topic = f"{name}-progress" if progress else ""
    np_dtype = np.dtype(dtype.numpy).str
    batch_blocks = x.chunks[0] if batched else (1,)
    model = scattered(payload)
    if model is None:  # the one key that holds the weights
        layer, model = {model_key: payload}, model_key
    else:  # on every worker already, under the future's key
        layer = {}
    for n, batch in enumerate(batch_blocks):
        lead = (n, 0) if batched else (0,)
        for i, cut_h in enumerate(cuts_h):
            for j, cut_w in enumerate(cuts_w):
                parts = [[(x.name, *lead, bh, bw) for bw in cut_w.blocks] for bh in cut_h.blocks]
                rows, cols = cut_h.keep[1] - cut_h.keep[0], cut_w.keep[1] - cut_w.keep[0]
                shape = ((batch,) if batched else ()) + (out_channels, rows, cols)
                block = _Block(cut_h.crop, cut_w.crop, cut_h.keep, cut_w.keep, shape,
                               np_dtype, batched, topic)
                layer[(name, *lead, i, j)] = (_run_block, model, parts, block)
    out_h = tuple(cut.keep[1] - cut.keep[0] for cut in cuts_h)
    out_w = tuple(cut.keep[1] - cut.keep[0] for cut in cuts_w)
    out_chunks = ((tuple(batch_blocks),) if batched else ()) + ((out_channels,), out_h, out_w)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x])
    if progress:
        _progress_bar(topic, len(batch_blocks) * len(cuts_h) * len(cuts_w))
    meta = np.empty((0,) * images.ndim, dtype=np_dtype)
    return da.Array(graph, name, out_chunks, meta=meta)
