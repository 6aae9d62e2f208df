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
    winograd    3x3, stride 1: F(2x2, 3x3) minimal filtering (winograd.py)
    fft         large kernels, stride 1: products of spectra (fft.py)

`choose` picks by rules measured on a 2-core x86 machine (`RULES`). With
``corrnet.backends.conv.benchmark = True`` (as ``torch.backends.cudnn.benchmark``) it instead
times every algorithm that supports the shape once, on the call's own data, and keeps the
fastest for that shape from then on.

Non-finite values stay as local as in PyTorch on every algorithm: a pass whose operands hold
a NaN or an inf runs on im2col + GEMM (see `run`).

Settings (``corrnet.backends.conv`` is `settings`):

    memory_budget   most bytes of temporary buffers one pass may hold (default 256 MiB)
    benchmark       autotune per shape (default False)
    algorithm       force one algorithm where it supports the shape (None: the planner's pick)

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
import time

import numpy as np

from . import conv, direct, fft, jit, unrolled, winograd
from .windows import Window2d

PASSES = ("forward", "grad_input", "grad_weight")

ALGORITHMS = {
    "gemm": conv,
    "pointwise": direct.pointwise,
    "depthwise": direct.depthwise,
    "direct": direct.small,
    "unrolled": unrolled,
    "winograd": winograd,
    "fft": fft,
}


class Settings:
    """The planner's settings; `corrnet.backends.conv` is the one instance."""

    def __init__(self):
        self._memory_budget = 256 * 2**20
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
    def algorithm(self) -> str | None:
        """The algorithm every pass uses where it supports the shape; None: the planner's."""
        return self._algorithm

    @algorithm.setter
    def algorithm(self, name):
        if name is not None and name not in ALGORITHMS:
            raise ValueError(f"algorithm must be None or one of {sorted(ALGORITHMS)}, "
                             f"got {name!r}")
        self._algorithm = name

    def __repr__(self) -> str:
        return (f"conv settings(memory_budget={self.memory_budget}, benchmark={self.benchmark}, "
                f"algorithm={self.algorithm!r})")


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
    when given, runs the pass on algorithm `name`; autotuning uses it to time them."""
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
            _autotuned[key] = _fastest([name for name in able if _fits(name, *problem)], trial)
        return _autotuned[key]
    if len(_ruled) >= 4096:  # a bound, for programs that see endless shapes
        _ruled.clear()
    _ruled[key] = _rule(pass_name, able, x_shape, weight_shape, window, groups,
                        lambda name: _fits(name, *problem))
    return _ruled[key]


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
    for name in ("pointwise", "fft", "direct", "depthwise", "winograd", "unrolled"):
        if (name in able and RULES[name](pass_name, x_shape, weight_shape, window, groups)
                and fits(name)):
            return name
    return "gemm"


def _fft_wins(pass_name, x_shape, weight_shape, window: Window2d, groups) -> bool:
    """Large kernels. Where each output reads one channel (single-channel filtering,
    depthwise): from 5x5 on 128x128 images, or from 11x11 where the compiled direct filter
    runs (it wins below that: 10-30x over im2col). With channels: from 7x7 on 32x32 images
    (9x9 for first layers, C_in <= 3). Stride 2 computes 4x the outputs: 4x the taps."""
    taps = weight_shape[2] * weight_shape[3] / (window.stride[0] * window.stride[1])
    area = window.height * window.width
    if groups == x_shape[1]:
        return taps >= (121 if jit.enabled() else 25) and area >= 128 * 128
    return taps >= (81 if x_shape[1] <= 3 else 49) and area >= 32 * 32


def _winograd_wins(pass_name, x_shape, weight_shape, window: Window2d, groups) -> bool:
    """Where the 16 GEMMs of F(2x2, 3x3) outweigh the transforms: with c channels per group
    (the smaller side) and s the smaller output side, from c*s >= 900 and s >= 14 with
    compiled transforms, from 128 channels and 14x14 with NumPy's. Measured with F(2x2) (which
    replaced F(4x4, 3x3) for float32 accuracy, see winograd.py) on a loaded 2-core machine,
    one BLAS thread: 0.9-2x im2col's speed on the suite's 3x3 layers (64-256 channels, 56x56
    to 14x14; F(4x4) was 1.3-5x), 1.1-1.6x at 16-32 channels on 56x56; on 7x7 maps at 512
    channels the transformed kernels (16/9 of the weights, in float64) cost as much as the
    convolution and F(2x2) ran at 0.5x im2col's speed forward: not picked below 14x14."""
    channels = min(x_shape[1], weight_shape[0]) // groups
    side = min(window.out_height, window.out_width)
    if jit.enabled():
        return channels * side >= 900 and side >= 14
    return channels >= 128 and side >= 14


# Each rule says where its algorithm beats im2col + GEMM, given that it supports the pass;
# called as rule(pass_name, x_shape, weight_shape, window, groups).
RULES = {
    "pointwise": direct.pointwise_rule,
    "fft": _fft_wins,
    "depthwise": direct.depthwise_rule,
    "direct": direct.direct_rule,
    "winograd": _winograd_wins,
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
# So a pass whose operands hold a NaN or an inf runs on im2col + GEMM instead; one sum over
# each operand finds out (a sum of finite values that overflows only sends the pass there
# too). A transform's result that is not finite although its operands are (an overflow inside
# the transform, where the exact sums may still be finite, or are non-finite only locally) is
# recomputed there as well.
KEEP_NON_FINITE_LOCAL = frozenset({"gemm", "pointwise"})
TRANSFORMS = frozenset({"winograd", "fft"})


def _all_finite(*arrays: np.ndarray) -> bool:
    """Whether every number of the arrays is finite (integers always are). Conservative: a
    sum that overflows says False."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(a.dtype.kind not in "fc" or bool(np.isfinite(a.sum())) for a in arrays)


def run(pass_name, algorithm: str, *args):
    """Run one pass on one algorithm, within the memory budget; on im2col + GEMM instead
    where the algorithm would spread a non-finite value beyond PyTorch's outputs (see
    `KEEP_NON_FINITE_LOCAL`). The first two of `args` are the pass's operands (x and the
    weight, the output gradient and the weight, the output gradient and x)."""
    if algorithm not in KEEP_NON_FINITE_LOCAL and not _all_finite(args[0], args[1]):
        algorithm = "gemm"
    result = getattr(ALGORITHMS[algorithm], pass_name)(*args, settings.memory_budget)
    if algorithm in TRANSFORMS and not _all_finite(result):
        result = getattr(conv, pass_name)(*args, settings.memory_budget)
    return result


def conv_pass(pass_name, x_shape, weight_shape, window: Window2d, groups, dtype, *args):
    """Choose the algorithm for one pass of the convolution (x_shape, weight_shape, window,
    groups, dtype) and run it on `args`, the arguments of that pass:

        forward      x, weight, bias, window, groups
        grad_input   grad_out, weight, window, groups, x_shape
        grad_weight  grad_out, x, weight_shape, window, groups
    """
    def trial(name):
        return run(pass_name, name, *args)

    return run(pass_name, choose(pass_name, x_shape, weight_shape, window, groups, dtype, trial),
               *args)


def describe(x_shape, weight_shape, window: Window2d, groups: int = 1, dtype=np.float32):
    """{pass: algorithm} as the planner's rules (or a forced algorithm) would choose."""
    return {pass_name: choose(pass_name, x_shape, weight_shape, window, groups, dtype)
            for pass_name in PASSES}
