"""The planner: which algorithm computes each pass of a convolution, chosen per shape.

A convolution has three passes — forward, grad_input and grad_weight — and each may run on a
different algorithm (Winograd's forward beside a GEMM weight gradient, say). The algorithms,
each in its own module with the same interface (`supports`, `forward`, `grad_input`,
`grad_weight`):

    gemm        im2col + GEMM (conv.py): every shape, dtype and option; the fallback
    pointwise   1x1 kernels as a plain GEMM, no unrolling (direct.py)
    depthwise   one filter per channel, multiply-adds over shifted views (direct.py)
    direct      small channel counts: a compiled loop, no unrolling (direct.py, numba only)
    unrolled    few channels, many outputs per window: im2col + GEMM one image at a time in
                cache, compiled (unrolled.py, numba only)
    lanes       direct, output channels (or neighbouring outputs) in vector lanes, sums in
                registers; input gradient at stride 1 only (lanes.py, numba only)
    winograd    3x3, stride 1: F(2x2, 3x3) minimal filtering (winograd.py)
    taps        small maps: one channel GEMM per kernel tap, the zero padding's products left
                out (taps.py)
    fft         large kernels, stride 1: products of spectra (fft.py)

`choose` picks, in this order: a forced algorithm (`Settings.algorithm`); with
``corrnet.backends.conv.benchmark = True`` (as ``torch.backends.cudnn.benchmark``), the
autotuned winner: every algorithm that supports the shape timed once, on the call's own data,
the fastest kept for that shape from then on and saved in this machine's calibration file, so
that later processes find it there instead of timing again; this machine's calibrated winner
for the exact pass, where the calibration file has one; else the rules (`RULES`), measured on
2-core x86 machines.

Tuning to the machine. ``corrnet tune`` (or ``corrnet.backends.conv.tune()``) times every
candidate of every pass of the benchmark's layers and of LeNet's and ResNet-18's (a minute
or two; ``--quick``: small layers, seconds), measures the machine (GEMM GFLOP/s, memory
bandwidth, a compiled kernel's rate: `calibration.rates()`, for rules that need them) and
writes a small JSON file, keyed by the CPU model, its SIMD features, the cores and the
versions of corrnet, NumPy and numba, into the user cache: ``$CORRNET_CACHE_DIR``, else
``$XDG_CACHE_HOME/corrnet`` or ``~/.cache/corrnet`` (``corrnet tune --show`` prints the path).
A damaged file, or another machine's, is ignored with a warning. ``corrnet tune --compare``
prints the rules' choice against the tuned one per benchmark row and pass. Delete the file
(``corrnet tune --forget``, or remove ``calibration-*.json`` there) to go back to the rules;
``corrnet.backends.conv.calibration = False`` ignores it in the running process. See
kernels/calibration.py.

CUDA devices. An array that lives on a CUDA device (CuPy's, or the stand-in's in CI; asked of
devices.py, one type check on the CPU path) runs every pass on im2col + GEMM written for
any array namespace (device_conv.py; its pooling: device_pool.py, `pool_kernels`), with
that device current and its own budget, `device_budget`: ``device_memory_budget`` (1 GiB),
at most half of the device's free memory (`devices.memory`). No finiteness check runs
there (im2col + GEMM keeps non-finite values local: nothing to read back to the host).

Non-finite values stay as local as in PyTorch on every algorithm: a pass whose operands hold
a NaN or an inf runs on im2col + GEMM (see `run`).

Settings (``corrnet.backends.conv`` is `settings`):

    memory_budget   most bytes of temporary buffers one pass may hold (default 256 MiB)
    device_memory_budget  the same on a CUDA device (default 1 GiB; at most half its free
                    memory)
    benchmark       autotune per shape (default False)
    algorithm       force one algorithm where it supports the shape (None: the planner's pick)
    calibration     take this machine's calibrated winners where it has them (default True)

The memory budget. One pass (forward, grad_input or grad_weight of a convolution; a
transposed convolution runs the same passes) holds at most `memory_budget` bytes of
temporaries at any moment: everything it allocates beyond its inputs and the array it
returns — padded or contiguous copies of the input and of the output gradient, unrolled
windows, transformed tiles, spectra, GEMM results before they are laid out as the output,
weight-sized transforms and partial sums, the compiled kernels' band buffers. Each algorithm
works in chunks of images (im2col + GEMM also in bands of output rows of one image) sized
from an upper bound of a chunk's bytes, and frees a chunk's buffers before the next. An
algorithm whose smallest chunk (`least_bytes`) does not fit is not chosen, forced or not;
im2col + GEMM always is, at one output row of one image per chunk at the least — a budget
below that is exceeded by that much. Not counted: what BLAS and scipy.fft allocate inside a
call (not NumPy arrays), and state kept between passes (the unrolled windows the forward
pass may keep for the weight gradient, themselves within the budget). The tests measure it
with tracemalloc (tests/test_memory_budget.py).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import time

import numpy as np

from .. import devices
from . import (
    calibration,
    conv,
    direct,
    fft,
    finite,
    jit,
    lanes,
    pool,
    taps,
    unrolled,
    winograd,
)
from .windows import Window2d

PASSES = ("forward", "grad_input", "grad_weight")

ALGORITHMS = {
    "gemm": conv,
    "pointwise": direct.pointwise,
    "depthwise": direct.depthwise,
    "direct": direct.small,
    "unrolled": unrolled,
    "lanes": lanes,
    "winograd": winograd,
    "taps": taps,
    "fft": fft,
}


class Settings:
    """The planner's settings; `corrnet.backends.conv` is the one instance."""

    def __init__(self):
        self._memory_budget = 256 * 2**20
        self._device_memory_budget = 2**30
        self._algorithm = None
        self.benchmark = False

    @property
    def memory_budget(self) -> int:
        """Most bytes of temporary buffers (unrolled windows, padded copies, spectra, ...) one
        pass holds beyond its inputs and result (see the module docstring)."""
        return self._memory_budget

    @memory_budget.setter
    def memory_budget(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"memory_budget must be a positive number of bytes, got {value!r}")
        self._memory_budget = int(value)

    @property
    def device_memory_budget(self) -> int:
        """Most bytes of temporaries one pass holds on a CUDA device (default 1 GiB), and
        never more than half the device's free memory (`device_budget`)."""
        return self._device_memory_budget

    @device_memory_budget.setter
    def device_memory_budget(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"device_memory_budget must be a positive number of bytes, got "
                             f"{value!r}")
        self._device_memory_budget = int(value)

    @property
    def algorithm(self) -> str | None:
        """The algorithm every pass uses where it supports the shape; None: the planner's."""
        return self._algorithm

    @algorithm.setter
    def algorithm(self, name):
        if name is not None and name not in ALGORITHMS:
            raise ValueError(f"algorithm must be None or one of {sorted(ALGORITHMS)}, "
                             f"got {name!r}")
        self._algorithm = name

    @property
    def calibration(self) -> bool:
        """Whether `choose` takes this machine's calibrated winners (``corrnet tune``, and the
        winners autotuning saved) where it has them; False: the rules only."""
        return calibration.enabled

    @calibration.setter
    def calibration(self, flag):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"calibration must be True or False, got {flag!r}")
        calibration.enabled = bool(flag)
        forget_choices()

    def tune(self, quick: bool = False, verbose: bool = True):
        """Measure this machine and write its calibration file (as ``corrnet tune``; a minute
        or two, `quick`: small layers, seconds); this process uses it at once. Returns the
        file's path (None where it could not be written). See kernels/calibration.py."""
        return calibration.tune(quick=quick, progress=print if verbose else None)

    def __repr__(self) -> str:
        return (f"conv settings(memory_budget={self.memory_budget}, "
                f"device_memory_budget={self.device_memory_budget}, benchmark={self.benchmark}, "
                f"algorithm={self.algorithm!r}, calibration={self.calibration})")


settings = Settings()

_autotuned: dict[tuple, str] = {}   # autotuning's choices
_ruled: dict[tuple, str] = {}       # the rules' choices, remembered per shape


@contextlib.contextmanager
def forcing(name: str | None):
    """Run every convolution pass on algorithm `name` (where it supports the shape)."""
    previous = settings.algorithm
    settings.algorithm = name
    try:
        yield
    finally:
        settings.algorithm = previous


def candidates(pass_name, x_shape, weight_shape, window: Window2d, groups, dtype) -> list[str]:
    """The algorithms that can compute this pass for this shape within the memory budget,
    gemm always among them."""
    return [name for name in _supporting(pass_name, x_shape, weight_shape, window, groups, dtype)
            if _fits(name, pass_name, x_shape, weight_shape, window, groups, dtype)]


def _supporting(pass_name, x_shape, weight_shape, window: Window2d, groups, dtype) -> list[str]:
    return [name for name, algorithm in ALGORITHMS.items()
            if algorithm.supports(x_shape, weight_shape, window, groups, dtype, pass_name)]


def _fits(name, pass_name, x_shape, weight_shape, window: Window2d, groups, dtype) -> bool:
    """Whether the algorithm's smallest chunk (`least_bytes`) fits in the memory budget.
    im2col + GEMM always does, at one output row of one image a chunk (a budget below even
    that is exceeded by that much at most)."""
    return name == "gemm" or ALGORITHMS[name].least_bytes(
        x_shape, weight_shape, window, groups, dtype, pass_name) <= settings.memory_budget


def choose(pass_name, x_shape, weight_shape, window: Window2d, groups, dtype,
           trial=None) -> str:
    """The algorithm for one pass. x_shape is the convolution's input (N, C_in, H, W) and
    weight_shape (C_out, C_in/groups, kh, kw), whichever pass is asked for. `trial(name)`,
    when given, runs the pass on algorithm `name`; autotuning uses it to time them.

    In order: a forced algorithm (`settings.algorithm`); autotuning (`settings.benchmark`,
    with `trial`): a winner this process or an earlier one found (kept in the calibration
    file), else every candidate timed now and the fastest saved there; this machine's
    calibrated winner for this exact pass (`calibration.winner`); the rules (`RULES`). A
    calibrated winner the pass no longer supports, or that does not fit the memory budget,
    is passed over."""
    key = (pass_name, tuple(x_shape), tuple(weight_shape), window, groups,
           np.dtype(dtype).str, jit.enabled(), settings.memory_budget)
    if settings.algorithm is None and not settings.benchmark and key in _ruled:
        return _ruled[key]
    problem = (pass_name, x_shape, weight_shape, window, groups, dtype)
    able = _supporting(*problem)
    if settings.algorithm is not None:
        forced = settings.algorithm
        return forced if forced in able and _fits(forced, *problem) else "gemm"
    if settings.benchmark and trial is not None and len(able) > 1:
        if key not in _autotuned:
            saved = _calibrated(key, able, problem)
            if saved is None:
                saved = _fastest([name for name in able if _fits(name, *problem)], trial)
                calibration.remember({_entry_key(key): {"algorithm": saved,
                                                        "source": "autotune"}})
                _ruled.clear()   # the file's winners changed
            _autotuned[key] = saved
        return _autotuned[key]
    if len(_ruled) >= 4096:  # a bound, for programs that see endless shapes
        _ruled.clear()
    chosen = _calibrated(key, able, problem)
    _ruled[key] = chosen if chosen is not None else _rule(
        pass_name, able, x_shape, weight_shape, window, groups,
        lambda name: _fits(name, *problem))
    return _ruled[key]


def _entry_key(key: tuple) -> str:
    """choose's key as the calibration file's text key."""
    pass_name, x_shape, weight_shape, window, groups, dtype, compiled, budget = key
    return calibration.entry_key(pass_name, x_shape, weight_shape, window, groups, dtype,
                                 compiled, budget)


def _calibrated(key: tuple, able, problem) -> str | None:
    """The calibration's winner for this pass, where the pass still supports it and it fits
    the memory budget; else None."""
    name = calibration.winner(_entry_key(key))
    return name if name in able and _fits(name, *problem) else None


def rule_choice(pass_name, x_shape, weight_shape, window: Window2d, groups, dtype) -> str:
    """The rules' algorithm for one pass: what `choose` picks with no calibration, forcing or
    autotuning."""
    problem = (pass_name, x_shape, weight_shape, window, groups, dtype)
    return _rule(pass_name, _supporting(*problem), x_shape, weight_shape, window, groups,
                 lambda name: _fits(name, *problem))


def forget_choices() -> None:
    """Forget the choices remembered per shape (after the calibration changed)."""
    _ruled.clear()
    _autotuned.clear()


def _fastest(names, trial) -> str:
    """Time each algorithm once (after a first call that may compile), keep the fastest."""
    seconds = {}
    for name in names:
        trial(name)
        start = time.perf_counter()
        trial(name)
        seconds[name] = time.perf_counter() - start
    return min(seconds, key=seconds.get)


def _rule(pass_name, able, x_shape, weight_shape, window: Window2d, groups, fits) -> str:
    """The measured rules: the first algorithm in this order that supports the pass, whose
    rule holds and which `fits` the memory budget; else im2col + GEMM."""
    for name in ("pointwise", "fft", "lanes", "direct", "depthwise", "winograd", "taps",
                 "unrolled"):
        if (name in able and RULES[name](pass_name, x_shape, weight_shape, window, groups)
                and fits(name)):
            return name
    return "gemm"


def _fft_wins(pass_name, x_shape, weight_shape, window: Window2d, groups) -> bool:
    """Large kernels. Where each output reads one channel (single-channel filtering,
    depthwise): from 5x5 on 128x128 images with NumPy's kernels; with the compiled direct
    filter, whose time grows with the taps while the FFT's hardly does, from
    `_direct_filter_taps()` taps. With channels: from 7x7 on 32x32 images (9x9 for first
    layers, C_in <= 3). Stride 2 computes 4x the outputs: 4x the taps."""
    taps = weight_shape[2] * weight_shape[3] / (window.stride[0] * window.stride[1])
    area = window.height * window.width
    if groups == x_shape[1]:
        return taps >= (_direct_filter_taps() if jit.enabled() else 25) and area >= 128 * 128
    return taps >= (81 if x_shape[1] <= 3 else 49) and area >= 32 * 32


@functools.cache
def _direct_filter_taps() -> int:
    """Where the FFT overtakes the compiled direct filter on one channel: 625 taps (25x25)
    with AVX-512, 313 with AVX2 or less. The direct filter does one multiply-add per tap and
    pixel, as many pixels at once as a SIMD register holds float32 numbers (16 with AVX-512, 8
    with AVX2); the FFT's work does not grow with the taps and gains less from wider
    registers. Measured with AVX-512 (AMD EPYC, 2 cores, 512x512 to 4096x4096 images): the
    direct filter 3x faster at 15x15 (225 taps), even at 25x25-27x27 (625-729), the FFT 1.2-1.8x
    faster at 31x31 (961); with half the lanes, half the taps."""
    return 625 if calibration.has_avx512() else 313


def _winograd_wins(pass_name, x_shape, weight_shape, window: Window2d, groups) -> bool:
    """Where the 16 GEMMs of F(2x2, 3x3) outweigh the transforms. Winograd and im2col run
    their products on the same BLAS, so what decides is shape arithmetic that holds on any
    x86 CPU (AVX2 or AVX-512, OpenBLAS or MKL): Winograd's multiplies per output are
    16 / 4 against im2col's 9, times the share of its 2x2 tiles that lies inside the output
    (`filled`: 1 for even sides, 49/64 on 7x7 maps, 9/16 on 3x3); its transforms cost one
    memory pass over 16 numbers per tile and channel, against the GEMMs' C_in * C_out
    products per tile, so they pay back with more channels per group c (the smaller side) and
    larger maps (fewer border tiles, s the smaller output side: on a 4x4 map every tile
    touches the padding).

    Rules, measured one BLAS thread per library against im2col, on a loaded 2-core AVX-512
    machine (CPU time; ratios im2col/Winograd):

    - every pass: `filled` >= 0.85 (even sides, or from 13x13) and s >= 6. 7x7 maps
      (filled 0.77) at 128-512 channels: 0.75-1.03; 3x3 and 4x4 maps at 512 channels, N=64:
      0.46-0.91. Even 6x6 and 12x12 maps at 256 and 128 channels, N=64 (D2L's ResNet-18 on
      96x96 inputs): 1.2-1.9.
    - forward and grad_input: c * s >= 800 with compiled transforms (the suite's (c)-(e):
      1.2-2.3; 16 channels on 56x56 and 64 on 14x14: 1.1-1.6; 8 channels on 56x56: 0.6),
      from 128 channels with NumPy's (slower transforms: 0.5-0.9 below).
    - grad_weight: c >= 64 and c * s >= 800 on either path: its GEMMs are
      (C_out, tiles) @ (tiles, C_in), whose outputs below 64 x 64 run BLAS below speed, and
      it pays two transforms (input and output gradient). 1.2-1.5 on the suite's (c)-(e),
      1.1 at 64 channels on 14x14."""
    channels = min(x_shape[1], weight_shape[0]) // groups
    out_height, out_width = window.out_height, window.out_width
    side = min(out_height, out_width)
    tiles = -(-out_height // 2) * -(-out_width // 2)
    filled = out_height * out_width / (4 * tiles)
    if filled < 0.85 or side < 6:
        return False
    if pass_name == "grad_weight":
        return channels >= 64 and channels * side >= 800
    if jit.enabled():
        return channels * side >= 800
    return channels >= 128


def _lanes_wins(pass_name, x_shape, weight_shape, window: Window2d, groups) -> bool:
    """lanes' rule (`lanes.rule`), except where Winograd takes the pass (3x3, stride 1: its
    4/9 of the multiplies beat lanes' peak; measured on the suite's (c) and (d) and
    ResNet-18's stride-1 layers: lanes 0.7-0.9x Winograd's time)."""
    return lanes.rule(pass_name, x_shape, weight_shape, window, groups) and not (
        winograd.supports(x_shape, weight_shape, window, groups, np.float32, pass_name)
        and _winograd_wins(pass_name, x_shape, weight_shape, window, groups))


# Each rule says where its algorithm beats im2col + GEMM, given that it supports the pass;
# called as rule(pass_name, x_shape, weight_shape, window, groups).
RULES = {
    "pointwise": direct.pointwise_rule,
    "fft": _fft_wins,
    "lanes": _lanes_wins,
    "depthwise": direct.depthwise_rule,
    "direct": direct.direct_rule,
    "winograd": _winograd_wins,
    "taps": taps.rule,
    "unrolled": unrolled.rule,
}


# Non-finite values. PyTorch's convolution is the sum of every product of a zero-padded
# window, so a NaN or inf reaches exactly the outputs whose windows read it (inf * 0 = NaN
# included: an inf weight meeting the zero padding gives NaN). im2col + GEMM and pointwise
# compute exactly those products. The others do not: Winograd's and the FFT's transforms mix
# every value of a tile or of a whole plane into every output of it (one NaN pixel: 1,600 NaN
# outputs instead of 576 on Winograd, 65,536 instead of 784 on the FFT), and the compiled
# direct engine multiplies zeros that lie outside the windows (its input gradient correlates a
# zero-padded output gradient: an inf weight gives NaN where PyTorch's sum has no term).
# (Its forward pass does keep them local: each output is the sum of its own window's
# products, zero padding included, as PyTorch's, and so does depthwise's, on that engine or
# on NumPy's shifted views of the zero-padded input; so do lanes' forward and weight
# gradient, whose spare lanes, pixels and taps are dropped.) So a pass whose operands hold a
# NaN or an inf runs on im2col + GEMM instead; one sum over each operand finds out (a sum of
# finite values that overflows only sends the pass there too). That sum is a full read of the
# input: the passes that keep non-finite values local skip it (a single-channel 3x3 filter of
# a 2048x2048 image takes about 1.5 ms; the sum over its input 0.5 ms more). The transforms
# (Winograd, the FFT) read their result instead of their operands: a result that is not
# finite runs again on im2col + GEMM. That also covers an overflow inside a transform (where
# the exact sums may still be finite, or non-finite only locally), and a non-finite operand
# always leaves some output non-finite there: each output reaches each number its window
# reads through at least one path of nonzero transform coefficients (the transforms' maps
# give it exactly the window's products, whatever the weight), and neither a product nor a
# sum turns inf or NaN finite (inf * 0 and inf - inf are NaN). One read of the result instead
# of three (operands and result): ResNet-18's Winograd passes 1.00-1.07x, interleaved.
KEEP_NON_FINITE_LOCAL = frozenset({("gemm", "forward"), ("gemm", "grad_input"),
                                   ("gemm", "grad_weight"), ("pointwise", "forward"),
                                   ("pointwise", "grad_input"), ("pointwise", "grad_weight"),
                                   ("direct", "forward"), ("depthwise", "forward"),
                                   ("lanes", "forward"), ("lanes", "grad_weight")})
TRANSFORMS = frozenset({"winograd", "fft"})
# The input gradients that keep a non-finite output gradient local, but not a non-finite
# weight: each correlates the zero-padded output gradient with the weight (lanes and the
# direct engine; unrolled's stride-1 kernel lays rows out with zero gaps), and its terms
# beyond PyTorch's are those zeros times a weight, zero unless the weight is not finite. Only
# the weight is read (LeNet's training step 1.00-1.02x, interleaved).
ONLY_THE_WEIGHT_SPREADS = frozenset({("lanes", "grad_input"), ("direct", "grad_input"),
                                     ("depthwise", "grad_input"), ("unrolled", "grad_input")})


def _all_finite(*arrays: np.ndarray) -> bool:
    """Whether every number of the arrays is finite (`finite.all_finite`: one compiled pass
    per array; integers always are)."""
    return all(finite.all_finite(a) for a in arrays)


def run(pass_name, algorithm: str, *args):
    """Run one pass on one algorithm, within the memory budget; on im2col + GEMM instead
    where the algorithm would spread a non-finite value beyond PyTorch's outputs (see
    `KEEP_NON_FINITE_LOCAL`). The first two of `args` are the pass's operands (x and the
    weight, the output gradient and the weight, the output gradient and x)."""
    if (algorithm, pass_name) in ONLY_THE_WEIGHT_SPREADS:
        if not _all_finite(args[1]):
            algorithm = "gemm"
    elif ((algorithm, pass_name) not in KEEP_NON_FINITE_LOCAL and algorithm not in TRANSFORMS
            and not _all_finite(args[0], args[1])):
        algorithm = "gemm"
    result = getattr(ALGORITHMS[algorithm], pass_name)(*args, settings.memory_budget)
    if algorithm in TRANSFORMS and not _all_finite(result):
        result = getattr(conv, pass_name)(*args, settings.memory_budget)
    return result


# ---------------------------------------------------------------------------------------------
# CUDA devices: arrays that live on one are served by the device kernels (device_conv.py,
# device_pool.py), which run on the arrays' own namespace (CuPy, or the stand-in in CI)
# ---------------------------------------------------------------------------------------------


def on_device(array) -> bool:
    """Whether `array` lives on a CUDA device (devices.py decides); on the CPU path one type
    check."""
    return type(array) is not np.ndarray and devices.kernel_family(array) == "cuda"


def device_budget(array) -> int:
    """The memory budget of one pass on `array`'s device: `settings.device_memory_budget`,
    at most half of the device's free memory (`devices.memory`), at least one byte (then
    im2col + GEMM works one output row at a time)."""
    free = devices.memory(devices.device_of(array))
    return max(1, min(settings.device_memory_budget, free // 2))


def _device_run(function, array, *args):
    """`function(*args, xp=...)` with `array`'s device current, so that what it allocates
    lands there."""
    with devices.using(array):
        return function(*args, xp=devices.namespace_of(array))


class _DeviceKernels:
    """A kernel module's functions run on the device of their first array argument; the
    module is imported on first use (a CPU-only program never needs it)."""

    def __init__(self, module_name: str):
        self._module_name = module_name

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        module = importlib.import_module(f"{__package__}.{self._module_name}")
        function = getattr(module, name)

        def run(first, *rest):
            return _device_run(function, first, first, *rest)

        run.__name__ = name
        setattr(self, name, run)
        return run


DEVICE_POOL = _DeviceKernels("device_pool")
DEVICE_CONV = _DeviceKernels("device_conv")


def pool_kernels(array):
    """The pooling kernels for `array`: pool.py on the CPU, device_pool.py (run on the
    array's device) for a CUDA array."""
    return pool if type(array) is np.ndarray or not on_device(array) else DEVICE_POOL


def window_kernels(array):
    """unfold / fold (im2col and col2im as ops): conv.py on the CPU, device_conv.py on a
    CUDA device."""
    return conv if type(array) is np.ndarray or not on_device(array) else DEVICE_CONV


def conv_pass(pass_name, x_shape, weight_shape, window: Window2d, groups, dtype, *args):
    """Choose the algorithm for one pass of the convolution (x_shape, weight_shape, window,
    groups, dtype) and run it on `args`, the arguments of that pass:

        forward      x, weight, bias, window, groups
        grad_input   grad_out, weight, window, groups, x_shape
        grad_weight  grad_out, x, weight_shape, window, groups
    """
    if type(args[0]) is not np.ndarray and on_device(args[0]):
        # a CUDA device: im2col + GEMM there, within the device's budget (it keeps non-finite
        # values local, so no finiteness check: no sum read back to the host)
        return getattr(DEVICE_CONV, pass_name)(*args, device_budget(args[0]))

    def trial(name):
        return run(pass_name, name, *args)

    return run(pass_name, choose(pass_name, x_shape, weight_shape, window, groups, dtype, trial),
               *args)


# the algorithms whose forward pass runs a convolution's epilogue on each image as it finishes
# it (`forward_epilogue`: the bias, the activation and the pool while the image's outputs are
# in the cache, instead of a pass of their own over the whole output afterwards)
EPILOGUE_ALGORITHMS = {"lanes": lanes}


def forward_epilogue(x_shape, weight_shape, window: Window2d, groups, dtype, x, weight, bias,
                     activation: str, pool: int):
    """The forward pass with its epilogue, (activation(conv2d(x, weight, bias)), its k x k
    average pool or None), where the planner's algorithm for the pass runs the epilogue itself
    (`EPILOGUE_ALGORITHMS`); else None, and the caller runs the pass (`conv_pass`) and the
    epilogue (`activation.bias_activation_forward`) one after the other."""
    def trial(name):
        return run("forward", name, x, weight, bias, window, groups)

    name = choose("forward", x_shape, weight_shape, window, groups, dtype, trial)
    if name not in EPILOGUE_ALGORITHMS:
        return None
    return EPILOGUE_ALGORITHMS[name].forward_epilogue(x, weight, bias, window, groups,
                                                      activation, pool, settings.memory_budget)


def describe(x_shape, weight_shape, window: Window2d, groups: int = 1, dtype=np.float32):
    """{pass: algorithm} as the planner's rules (or a forced algorithm) would choose."""
    return {pass_name: choose(pass_name, x_shape, weight_shape, window, groups, dtype)
            for pass_name in PASSES}
