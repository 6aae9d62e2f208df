"""Side-by-side timings of corrnet against PyTorch, SciPy and OpenCV, written to BENCHMARKS.md.

    python benchmarks/run.py            # full run (~10 minutes), rewrites BENCHMARKS.md
    python benchmarks/run.py --quick    # every full-size row, few repeats, prints only
    python benchmarks/run.py --smoke    # every row type on tiny shapes, 1 repeat, prints only

All three modes run the same functions; they differ only in the shapes (`Suite`), in how
many times each call is repeated (`Timing`), and the smoke run gives PyTorch one thread
(see SMOKE). tests/test_benchmarks.py runs the smoke suite. Each row is printed as soon as
it's measured, and a summary of the Targets at the end. `--repeats N` sets the full run's
most samples per candidate (20).

How it measures. Every row runs all its candidates in this one process, on the same float32
data, interleaved: each candidate is called twice to warm up (the second call timed), then the
samples are taken in rounds (corrnet, torch, ..., corrnet, torch, ...), and the row reports
each candidate's median. In each round a candidate first runs untimed for `Timing.settle_s` (50
ms; a call slower than that waits 50 ms instead): so each is timed as in a loop of its own
calls, not in the wake of the other library's. PyTorch's OpenMP threads (GNU libgomp) spin-wait
after every parallel call, 300,000 pause instructions (5-11 ms measured on the AMD EPYC, longer
where a pause takes more cycles) on the cores that the next call needs: timed at once, a
corrnet call after a PyTorch call lost a core for that long (LeNet's second layer fwd+bwd 9.3
ms instead of 5.0, interleaved; 5.0-5.7 ms with OMP_WAIT_POLICY=PASSIVE or when run alone). A
candidate gets up to `repeats` samples but no more than fit in about `budget_s` seconds, and at
least 3 — except a call that took over `slow_call_s` seconds, whose second warm-up call is
its one sample (the first may include compiling a kernel: numba's disk cache is empty after
an install or a change to a kernel). Peak memory and import time are measured in fresh
subprocesses. Run it on an idle machine: with 2 cores, one other busy process makes every
ratio meaningless.

How to read the ratios. In the timing tables, "X / corrnet" is X's time divided by
corrnet's: above 1, corrnet is faster (2.0: corrnet takes half the time); below 1, slower.
The memory table's ratio is the other way round, corrnet / torch: below 1, corrnet needs
less. The Targets section at the top of BENCHMARKS.md checks the goals against these rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy
import scipy.ndimage
import scipy.signal
import torch

import corrnet
from corrnet.nn import functional as F

try:
    import cv2
except ImportError:  # OpenCV is optional (pip install -e '.[bench]'): its column says n/a
    cv2 = None

ROOT = Path(__file__).resolve().parents[1]
MEMORY_SCRIPT = Path(__file__).resolve().with_name("memory.py")


# --------------------------------------------------------------------------------------------
# What is measured: the specs of every row, for the full run and for the smoke run
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvSpec:
    """One conv2d layer: input (n, c_in, size, size), weight (c_out, c_in / groups, k, k)."""

    label: str  # "(a)".."(h)": the Targets look rows up by it
    n: int
    c_in: int
    c_out: int
    size: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    name: str = ""  # e.g. "LeNet conv1"

    @property
    def title(self) -> str:
        parts = [f"N={self.n}", f"{self.c_in}->{self.c_out}", f"{self.kernel}x{self.kernel}"]
        if self.stride != 1:
            parts.append(f"stride {self.stride}")
        if self.padding:
            parts.append(f"pad {self.padding}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        parts.append(f"{self.size}x{self.size}")
        name = f" {self.name}:" if self.name else ""
        return f"{self.label}{name} " + ", ".join(parts)


@dataclass(frozen=True)
class PoolSpec:
    kind: str  # "max" or "avg"
    shape: tuple[int, int, int, int]
    kernel: int
    stride: int
    padding: int = 0

    @property
    def title(self) -> str:
        padding = f" p{self.padding}" if self.padding else ""
        return (f"{self.kind} {self.kernel}x{self.kernel} s{self.stride}{padding} "
                f"on {self.shape}")


@dataclass(frozen=True)
class FilterSpec:
    """A size x size image filtered with a kernel x kernel kernel."""

    size: int
    kernel: int

    @property
    def title(self) -> str:
        return f"{self.size}x{self.size} image, {self.kernel}x{self.kernel} kernel"


@dataclass(frozen=True)
class Timing:
    """How many samples each candidate gets (see the module docstring)."""

    repeats: int  # the most samples per candidate
    budget_s: float  # seconds of samples per candidate, beyond the minimum
    min_samples: int = 3
    slow_call_s: float = 5.0  # a second warm-up call slower than this is the only sample
    rounds: int = 5  # the samples are spread over this many interleaved rounds
    settle_s: float = 0.05  # untimed calls at the start of each candidate's turn in a round

    def describe(self) -> str:
        return (f"up to {self.repeats} samples per candidate, within ~{self.budget_s:g} s "
                f"each but at least {min(self.min_samples, self.repeats)} (a call over "
                f"{self.slow_call_s:g} s: its second warm-up call), after two warm-up calls; in "
                f"each of {self.rounds} rounds, {self.settle_s * 1000:g} ms of untimed calls "
                "before a candidate's samples (a slower call: a pause as long)")


@dataclass(frozen=True)
class Suite:
    name: str
    layers: tuple[ConvSpec, ...]
    pools: tuple[PoolSpec, ...]
    filters: tuple[FilterSpec, ...]
    memory_layer: ConvSpec  # peak memory of its forward+backward
    lenet_batch: int
    loop_batches: int  # batches of lenet_batch in the book-loop row's epoch
    resnet: tuple[int, int]  # ResNet-18's training step: (batch, image side)
    import_runs: int  # fresh subprocesses per library
    timing: Timing
    torch_threads: int | None = None  # None: PyTorch's default (one per core)


FULL_LAYERS = (
    ConvSpec("(a)", 256, 1, 6, 28, 5, padding=2, name="LeNet conv1"),
    ConvSpec("(b)", 256, 6, 16, 14, 5, name="LeNet conv2"),
    ConvSpec("(c)", 8, 64, 64, 56, 3, padding=1),
    ConvSpec("(d)", 16, 128, 128, 28, 3, padding=1),
    ConvSpec("(e)", 32, 256, 256, 14, 3, padding=1),
    ConvSpec("(f)", 32, 256, 64, 28, 1),
    ConvSpec("(g)", 8, 3, 64, 224, 7, stride=2, padding=3, name="ResNet stem"),
    ConvSpec("(h)", 16, 128, 128, 56, 3, padding=1, groups=128, name="depthwise"),
)
FULL = Suite(
    name="full",
    layers=FULL_LAYERS,
    pools=(PoolSpec("max", (256, 6, 28, 28), 2, 2),
           PoolSpec("max", (8, 64, 112, 112), 3, 2, 1),
           PoolSpec("avg", (256, 6, 28, 28), 2, 2)),
    filters=tuple(FilterSpec(size, kernel) for size in (512, 2048, 4096)
                  for kernel in (3, 7, 15, 31)),
    memory_layer=FULL_LAYERS[6],
    lenet_batch=256,
    loop_batches=20,
    resnet=(64, 96),
    import_runs=7,
    timing=Timing(repeats=20, budget_s=3.0),
)
QUICK = dataclasses.replace(FULL, name="quick", import_runs=3,
                            timing=Timing(repeats=3, budget_s=1.0))

SMOKE_LAYERS = (  # the same labels and kinds of layer as FULL_LAYERS, on tiny shapes
    ConvSpec("(a)", 2, 1, 2, 16, 5, padding=2, name="LeNet conv1"),
    ConvSpec("(b)", 2, 2, 3, 8, 5, name="LeNet conv2"),
    ConvSpec("(c)", 2, 4, 4, 16, 3, padding=1),
    ConvSpec("(d)", 2, 8, 8, 8, 3, padding=1),
    ConvSpec("(e)", 2, 8, 8, 4, 3, padding=1),
    ConvSpec("(f)", 2, 8, 4, 8, 1),
    ConvSpec("(g)", 1, 3, 4, 16, 7, stride=2, padding=3, name="ResNet stem"),
    ConvSpec("(h)", 2, 4, 4, 16, 3, padding=1, groups=4, name="depthwise"),
)
SMOKE = Suite(
    name="smoke",
    layers=SMOKE_LAYERS,
    pools=(PoolSpec("max", (2, 2, 8, 8), 2, 2),
           PoolSpec("max", (2, 2, 16, 16), 3, 2, 1),
           PoolSpec("avg", (2, 2, 8, 8), 2, 2)),
    filters=(FilterSpec(32, 3),),
    # (g) on 128x128: still tiny, but with buffers of a few MiB for the RSS to show
    memory_layer=dataclasses.replace(SMOKE_LAYERS[6], n=2, c_out=16, size=128),
    lenet_batch=2,
    loop_batches=3,
    resnet=(2, 32),
    import_runs=1,
    timing=Timing(repeats=1, budget_s=0.1, settle_s=0.0),
    # Tiny shapes gain nothing from a second thread, and on a busy machine (a CI runner)
    # PyTorch's thread pool makes each tiny op take ~100x longer: one thread keeps it fast.
    torch_threads=1,
)


# --------------------------------------------------------------------------------------------
# Timing: interleaved medians with an adaptive number of samples
# --------------------------------------------------------------------------------------------

def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _split(count: int, parts: int) -> list[int]:
    """count samples spread over `parts` rounds as evenly as possible: 7, 5 -> 2 2 1 1 1."""
    return [count // parts + (1 if i < count % parts else 0) for i in range(parts)]


def _settle(call: Callable[[], object], seconds: float) -> None:
    """Call `call`, untimed, until `seconds` have passed: the other candidate's threads, still
    spinning from its last call, go to sleep meanwhile (module docstring)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        call()


def time_candidates(candidates: dict[str, Callable | None], timing: Timing):
    """Median seconds per candidate, and a note per candidate that has no time.

    A candidate that is None (not installed) or that raises on its warm-up call (say, a
    MemoryError) gets the time None and a note saying why; the others are timed as the module
    docstring says. Returns (seconds, samples, notes), each a dict by candidate name.
    """
    notes: dict[str, str] = {}
    warm_call: dict[str, float] = {}
    for name, call in candidates.items():
        if call is None:
            notes[name] = "not installed"
            continue
        try:
            # the first call pays one-off costs (numba compiling a kernel or loading it from
            # its disk cache, a planner's first choice); the second one, timed, sets the
            # sample count
            call()
            warm_call[name] = _seconds(call)
        except Exception as error:  # one failing candidate mustn't end the run
            notes[name] = f"failed: {type(error).__name__}: {str(error)[:120]}"

    samples: dict[str, list[float]] = {name: [] for name in warm_call}
    planned: dict[str, list[int]] = {}
    for name, seconds in warm_call.items():
        if seconds > timing.slow_call_s:
            samples[name].append(seconds)  # too slow to repeat: the warm-up call is the sample
            count = 0
        else:
            affordable = int(timing.budget_s / max(seconds, 1e-9))
            count = min(timing.repeats, max(timing.min_samples, affordable))
        planned[name] = _split(count, timing.rounds)
    for round_index in range(timing.rounds):
        for name, counts in planned.items():
            if counts[round_index] and warm_call[name] < timing.settle_s:
                _settle(candidates[name], timing.settle_s)
            elif counts[round_index] and timing.settle_s:
                time.sleep(timing.settle_s)     # a slow call: the others' threads go idle
            for _ in range(counts[round_index]):
                samples[name].append(_seconds(candidates[name]))

    seconds = {name: statistics.median(samples[name]) if name in samples else None
               for name in candidates}
    sample_counts = {name: len(samples.get(name, ())) for name in candidates}
    return seconds, sample_counts, notes


# --------------------------------------------------------------------------------------------
# The candidates of each kind of row: {name: a call with no arguments}
# --------------------------------------------------------------------------------------------

def conv_case(spec: ConvSpec, backward: bool, seed: int = 0) -> dict[str, Callable]:
    """conv2d on corrnet and torch; with backward, also out.sum().backward() (gradients for
    input, weight and bias)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((spec.n, spec.c_in, spec.size, spec.size)).astype(np.float32)
    w = (rng.standard_normal((spec.c_out, spec.c_in // spec.groups, spec.kernel, spec.kernel))
         * 0.1).astype(np.float32)
    b = rng.standard_normal(spec.c_out).astype(np.float32)

    def make(lib, functional):
        xs, ws, bs = (lib.tensor(a, requires_grad=backward) for a in (x, w, b))

        def run():
            out = functional.conv2d(xs, ws, bs, stride=spec.stride, padding=spec.padding,
                                    groups=spec.groups)
            if backward:
                out.sum().backward()
                xs.grad = ws.grad = bs.grad = None

        return run

    return {"corrnet": make(corrnet, F), "torch": make(torch, torch.nn.functional)}


def pool_case(spec: PoolSpec, backward: bool, seed: int = 0) -> dict[str, Callable]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(spec.shape).astype(np.float32)

    def make(lib, functional):
        xs = lib.tensor(x, requires_grad=backward)
        pool = getattr(functional, f"{spec.kind}_pool2d")

        def run():
            out = pool(xs, spec.kernel, spec.stride, spec.padding)
            if backward:
                out.sum().backward()
                xs.grad = None

        return run

    return {"corrnet": make(corrnet, F), "torch": make(torch, torch.nn.functional)}


def filter_case(spec: FilterSpec, seed: int = 0) -> dict[str, Callable | None]:
    """Single-channel 2-D cross-correlation of a float32 image: corrnet.corr2d's valid mode,
    and the same filter in PyTorch, SciPy (direct and by FFT) and OpenCV. ndimage.correlate
    and cv2.filter2D compute a same-size output (zero padding), a little more work at the
    border; fftconvolve convolves, so it gets the kernel flipped. Each call returns its
    result (the tests compare them)."""
    rng = np.random.default_rng(seed)
    image = rng.random((spec.size, spec.size), dtype=np.float32)
    kernel = rng.random((spec.kernel, spec.kernel), dtype=np.float32)
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    image_c, kernel_c = corrnet.from_numpy(image), corrnet.from_numpy(kernel)
    image_t, kernel_t = torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None]
    return {
        "corrnet": lambda: corrnet.corr2d(image_c, kernel_c),
        "torch": lambda: torch.nn.functional.conv2d(image_t, kernel_t),
        "ndimage": lambda: scipy.ndimage.correlate(image, kernel, mode="constant"),
        "fftconvolve": lambda: scipy.signal.fftconvolve(image, flipped, mode="valid"),
        "opencv": None if cv2 is None else (
            lambda: cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT)),
    }


def _copy_weights(net_c, net_t) -> None:
    """Give the PyTorch network the corrnet network's parameters and buffers."""
    net_t.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                           for k, v in net_c.state_dict().items()})


def _torch_lenet():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


def lenet_case(train: bool, batch: int, seed: int = 0) -> dict[str, Callable]:
    """D2L's LeNet, the same weights in both: one SGD training step (forward, cross-entropy,
    backward, update) or one inference forward pass on a batch of 1x28x28 images."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    corrnet.manual_seed(seed)
    net_c = corrnet.models.lenet()
    net_t = _torch_lenet()
    _copy_weights(net_c, net_t)
    x_c, y_c = corrnet.from_numpy(x), corrnet.from_numpy(y)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)

    def step(net, optimizer, loss, xb, yb):
        def run():
            optimizer.zero_grad()
            loss(net(xb), yb).backward()
            optimizer.step()
        return run

    def infer(lib, net, xb):
        def run():
            with lib.no_grad():
                net(xb)
        return run

    if train:
        return {"corrnet": step(net_c, corrnet.optim.SGD(net_c.parameters(), lr=0.9),
                                corrnet.nn.CrossEntropyLoss(), x_c, y_c),
                "torch": step(net_t, torch.optim.SGD(net_t.parameters(), lr=0.9),
                              torch.nn.CrossEntropyLoss(), x_t, y_t)}
    net_c.eval()
    net_t.eval()
    return {"corrnet": infer(corrnet, net_c, x_c), "torch": infer(torch, net_t, x_t)}


def book_loop_case(batch: int, batches: int, seed: int = 0) -> dict[str, Callable]:
    """One epoch of the book's LeNet training loop (``train_ch6``'s inner loop: a shuffling
    DataLoader over `batches` batches, forward, loss, backward, SGD step, and the per-batch
    metric of loss, accuracy and count in an Accumulator), the same code on both libraries,
    with the same weights and data (Fashion-MNIST-shaped: uint8 pixels scaled to [0, 1])."""
    from corrnet import d2l

    rng = np.random.default_rng(seed)
    images = (rng.integers(0, 256, (batch * batches, 1, 28, 28)) / 255).astype(np.float32)
    labels = rng.integers(0, 10, batch * batches)
    corrnet.manual_seed(seed)
    net_c = corrnet.models.lenet()
    net_t = _torch_lenet()
    _copy_weights(net_c, net_t)

    def epoch(lib, net):
        data = lib.utils.data.TensorDataset(lib.from_numpy(images), lib.from_numpy(labels))
        train_iter = lib.utils.data.DataLoader(data, batch_size=batch, shuffle=True)
        loss = lib.nn.CrossEntropyLoss()
        optimizer = lib.optim.SGD(net.parameters(), lr=0.9)

        def run():
            net.train()
            metric = d2l.Accumulator(3)   # plain Python: the book's own class
            for X, y in train_iter:
                optimizer.zero_grad()
                y_hat = net(X)
                batch_loss = loss(y_hat, y)
                batch_loss.backward()
                optimizer.step()
                with lib.no_grad():
                    metric.add(batch_loss * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
            return metric
        return run

    return {"corrnet": epoch(corrnet, net_c), "torch": epoch(torch, net_t)}


def resnet_case(batch: int, side: int, seed: int = 0) -> dict[str, Callable]:
    """D2L's ResNet-18 (1 input channel), the same weights in both: one SGD training step on
    a batch of 1 x side x side images (BatchNorm in training mode)."""
    sys.path.insert(0, str(ROOT / "tests"))   # the PyTorch twin of corrnet.models.resnet18
    try:
        from issue12_torch_nets import resnet18 as torch_resnet18
    finally:
        sys.path.remove(str(ROOT / "tests"))
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, side, side), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    corrnet.manual_seed(seed)
    net_c = corrnet.models.resnet18()
    net_t = torch_resnet18()
    _copy_weights(net_c, net_t)

    def step(lib, net):
        optimizer = lib.optim.SGD(net.parameters(), lr=0.01)   # small: no divergence
        loss = lib.nn.CrossEntropyLoss()
        xb, yb = lib.from_numpy(x), lib.from_numpy(y)

        def run():
            optimizer.zero_grad()
            loss(net(xb), yb).backward()
            optimizer.step()
        return run

    return {"corrnet": step(corrnet, net_c), "torch": step(torch, net_t)}


def _algorithm_note(spec: ConvSpec, backward: bool = False) -> str:
    """Which corrnet algorithm ran this conv layer row (e.g. "winograd"), as corrnet's
    planner reports it; "" where corrnet has no planner to ask (or a different one)."""
    try:
        from corrnet.kernels.plan import describe
        from corrnet.kernels.windows import make_window

        window = make_window("conv2d", spec.size, spec.size, (spec.kernel,) * 2,
                             (spec.stride,) * 2, ((spec.padding,) * 2,) * 2, (1, 1))
        passes = describe((spec.n, spec.c_in, spec.size, spec.size),
                          (spec.c_out, spec.c_in // spec.groups, spec.kernel, spec.kernel),
                          window, spec.groups, np.float32)
    except (ImportError, AttributeError, TypeError):
        return ""
    if not backward:
        return str(passes.get("forward", ""))
    if len(set(passes.values())) == 1:
        return str(next(iter(passes.values())))
    return ", ".join(f"{name} {algorithm}" for name, algorithm in passes.items())


# --------------------------------------------------------------------------------------------
# Rows: one measured line of a table
# --------------------------------------------------------------------------------------------

@dataclass
class Row:
    section: str  # a key of SECTIONS
    title: str
    values: dict[str, float | None]  # by candidate: seconds (MiB for memory); None: no value
    ratios: dict[str, float | None] = field(default_factory=dict)  # by column heading
    key: str = ""  # what the Targets look the row up by: "(a)", "train", ...
    passes: str = ""  # "fwd", "fwd+bwd" or ""
    notes: dict[str, str] = field(default_factory=dict)  # by candidate: why it has no value
    samples: dict[str, int] = field(default_factory=dict)  # by candidate
    detail: str = ""  # the section's detail column: corrnet's algorithm, memory's method

    def line(self) -> str:
        """The row as one printed line."""
        unit = SECTIONS[self.section].unit
        values = ", ".join(f"{name} {_format_value(value, unit, self.notes.get(name))}"
                           for name, value in self.values.items())
        ratios = ", ".join(f"{name} {_format_ratio(ratio)}" for name, ratio in self.ratios.items())
        detail = f" [{SECTIONS[self.section].detail}: {self.detail}]" if self.detail else ""
        return f"{self.title}: {values}" + (f" | {ratios}" if ratios else "") + detail


@dataclass(frozen=True)
class Section:
    heading: str
    unit: str  # "ms", "MiB" or "s": how its values are shown
    detail: str = ""  # the heading of the rows' detail column, if they have one


SECTIONS = {
    "layers": Section("Convolution layers", "ms", detail="corrnet algorithm"),
    "pooling": Section("Pooling", "ms"),
    "filtering": Section("Single-channel filtering", "ms"),
    "memory": Section("Peak memory", "MiB", detail="method"),
    "import": Section("Import time and first step", "s"),
    "lenet": Section("LeNet (D2L) on 1x28x28 images", "ms"),
    "resnet": Section("ResNet-18 (D2L)", "ms"),
    "overhead": Section("The book loop's per-batch overhead", "ms"),
    "load": Section("Under load", "ms"),
}


def _format_value(value: float | None, unit: str, note: str | None = None) -> str:
    if value is None:
        return f"n/a ({note})" if note else "n/a"
    if unit == "ms":
        return f"{value * 1e3:.2f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:.3f} s"


def _format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"  # 0.0042, not 0.00


def _over(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _timed_row(section, title, candidates, timing, **fields) -> Row:
    """Time the candidates; each ratio is a contender's time / corrnet's time."""
    seconds, samples, notes = time_candidates(candidates, timing)
    ratios = {f"{name} / corrnet": _over(seconds[name], seconds["corrnet"])
              for name in seconds if name != "corrnet"}
    return Row(section, title, seconds, ratios, notes=notes, samples=samples, **fields)


def conv_row(spec: ConvSpec, backward: bool, timing: Timing) -> Row:
    passes = "fwd+bwd" if backward else "fwd"
    return _timed_row("layers", f"{spec.title}, {passes}", conv_case(spec, backward), timing,
                      key=spec.label, passes=passes,
                      detail=_algorithm_note(spec, backward))


def pool_row(spec: PoolSpec, backward: bool, timing: Timing) -> Row:
    passes = "fwd+bwd" if backward else "fwd"
    return _timed_row("pooling", f"{spec.title}, {passes}", pool_case(spec, backward), timing,
                      key=spec.title, passes=passes)


def filter_row(spec: FilterSpec, timing: Timing) -> Row:
    return _timed_row("filtering", spec.title, filter_case(spec), timing, key=spec.title)


def lenet_row(train: bool, batch: int, timing: Timing) -> Row:
    what = "training step (SGD)" if train else "inference"
    return _timed_row("lenet", f"LeNet {what}, batch {batch}", lenet_case(train, batch),
                      timing, key="train" if train else "inference")


def book_loop_row(batch: int, batches: int, timing: Timing) -> Row:
    return _timed_row("lenet", f"LeNet, the book's training loop (train_ch6): one epoch of "
                      f"{batches} batches of {batch}", book_loop_case(batch, batches),
                      timing, key="loop")


def resnet_row(batch: int, side: int, timing: Timing) -> Row:
    return _timed_row("resnet", f"ResNet-18 training step (SGD), batch {batch}, "
                      f"1x{side}x{side}", resnet_case(batch, side), timing, key="resnet")


def loop_overhead_row(batch: int, smoke: bool) -> Row:
    """The book loop's per-batch work besides the training step (DataLoader, the accuracy
    metric, the Accumulator, the Timer): benchmarks/loop_overhead.py, over its step."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from loop_overhead import loop_overhead
    finally:
        sys.path.remove(str(Path(__file__).resolve().parent))
    parts = (loop_overhead(batch, batches=3, warmup=1, synthetic=True) if smoke
             else loop_overhead(batch))
    overhead = parts["step"] * parts["fraction"]
    return Row("overhead", f"LeNet, train_ch6's loop, batch {batch}, {parts['data']} data: "
               f"median per batch", {"corrnet": overhead, "corrnet step": parts["step"]},
               {"overhead / step": parts["fraction"]}, key="overhead")


def _spinner() -> subprocess.Popen:
    """Another busy process: a Python loop spinning on the last core this process may use."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = f"import os\nos.sched_setaffinity(0, {{{cores[-1]}}})\n" if cores else ""
    return subprocess.Popen([sys.executable, "-c", pin + "while True:\n    pass\n"])


def load_row(batch: int, timing: Timing) -> Row:
    """The LeNet training step idle, then with one other process spinning on one core: each
    library's median under load and its ratio to its own idle median."""
    candidates = lenet_case(True, batch)
    idle, _, _ = time_candidates(candidates, timing)
    spinner = _spinner()
    try:
        time.sleep(0.2)   # the spinner is running
        loaded, samples, notes = time_candidates(candidates, timing)
    finally:
        spinner.kill()
        spinner.wait()
    values = {"corrnet idle": idle["corrnet"], "corrnet": loaded["corrnet"],
              "torch idle": idle["torch"], "torch": loaded["torch"]}
    ratios = {f"{name} loaded / idle": _over(loaded[name], idle[name]) for name in idle}
    return Row("load", f"LeNet training step, batch {batch}, one core busy with another "
               f"process", values, ratios, key="load", notes=notes,
               samples=samples)


FIRST_STEP_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {benchmarks!r})
import run
cases = run.lenet_case(True, {batch})
seconds = {{}}
for name, step in cases.items():
    times = []
    for _ in range(6):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    seconds[name] = times[0] - statistics.median(times[2:])
print(json.dumps(seconds))
"""


def first_step_row(batch: int) -> Row:
    """How much longer a fresh process's first LeNet training step takes than a warm one
    (numba loading its compiled kernels from the disk cache, PyTorch's own first-call work):
    run twice in fresh interpreters, the first run filling numba's cache if it was empty;
    the second one is reported."""
    script = FIRST_STEP_CHILD.format(benchmarks=str(Path(__file__).resolve().parent),
                                     batch=batch)
    for _ in range(2):
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               check=True, cwd=ROOT)
    seconds = json.loads(child.stdout.strip().splitlines()[-1])
    return Row("import", f"first LeNet training step (batch {batch}) of a fresh process, "
               f"minus a warm step (numba's cache warm)", seconds, key="first-step",
               samples={name: 1 for name in seconds})


def memory_row(spec: ConvSpec) -> Row:
    """Peak RSS growth of spec's forward+backward, each library in its own fresh process
    (benchmarks/memory.py); ratio corrnet / torch."""
    spec_json = json.dumps(dataclasses.asdict(spec))
    children = {library: subprocess.Popen(  # side by side: each counts only its own memory
                    [sys.executable, str(MEMORY_SCRIPT), library, spec_json], cwd=ROOT,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for library in ("corrnet", "torch")}
    mib: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    methods = set()
    for library, child in children.items():
        stdout, stderr = child.communicate()
        if child.returncode != 0:
            mib[library] = None
            last_line = (stderr.strip().splitlines() or ["no output"])[-1]
            notes[library] = f"failed: {last_line[:120]}"
            continue
        result = json.loads(stdout.strip().splitlines()[-1])
        mib[library] = result["growth_bytes"] / 2**20
        methods.add(result["method"])
    return Row("memory", f"{spec.title}, fwd+bwd: peak RSS growth", mib,
               {"corrnet / torch": _over(mib["corrnet"], mib["torch"])},
               key=spec.label, passes="fwd+bwd", notes=notes, detail=", ".join(sorted(methods)))


IMPORT_CHILD = ("import time; start = time.perf_counter(); import {module}; "
                "print(time.perf_counter() - start)")


def import_row(runs: int) -> Row:
    """Median seconds of `import corrnet` (and, for reference, `import torch`), each timed
    inside `runs` fresh interpreters, alternating, with Python's bytecode cached as a user's
    installation has it (pip compiles it at install time; otherwise the first import writes
    it): the children may write bytecode, into a temporary PYTHONPYCACHEPREFIX (nothing in
    the source tree), and one untimed import of each module writes it first. (An
    environment with PYTHONDONTWRITEBYTECODE=1, as this project's sandboxes set, compiles an
    editable install's sources on every import: corrnet 0.28 s instead of 0.11.)"""
    samples: dict[str, list[float]] = {"corrnet": [], "torch": []}
    with tempfile.TemporaryDirectory(prefix="corrnet-bench-pyc-") as cache:
        env = {name: value for name, value in os.environ.items()
               if name != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache

        def child(module: str) -> float:
            result = subprocess.run([sys.executable, "-c", IMPORT_CHILD.format(module=module)],
                                    capture_output=True, text=True, check=True, cwd=ROOT,
                                    env=env)
            return float(result.stdout.strip().splitlines()[-1])

        for module in samples:
            child(module)       # writes the bytecode cache
        for _ in range(runs):
            for module in samples:
                samples[module].append(child(module))
    seconds = {module: statistics.median(times) for module, times in samples.items()}
    return Row("import", f"import time, bytecode cached, median of {runs} fresh interpreters",
               seconds,
               key="import", samples={module: runs for module in samples})


def run_suite(suite: Suite, print_rows: bool = True) -> list[Row]:
    """Measure every row of the suite, in the order of BENCHMARKS.md's sections."""
    timing = suite.timing
    steps: list[tuple[str, Callable[[], Row]]] = []
    for spec in suite.layers:
        for backward in (False, True):
            steps.append(("layers", lambda s=spec, b=backward: conv_row(s, b, timing)))
    for spec in suite.pools:
        for backward in (False, True):
            steps.append(("pooling", lambda s=spec, b=backward: pool_row(s, b, timing)))
    for spec in suite.filters:
        steps.append(("filtering", lambda s=spec: filter_row(s, timing)))
    steps.append(("memory", lambda: memory_row(suite.memory_layer)))
    steps.append(("import", lambda: import_row(suite.import_runs)))
    steps.append(("import", lambda: first_step_row(suite.lenet_batch)))
    for train in (True, False):
        steps.append(("lenet", lambda t=train: lenet_row(t, suite.lenet_batch, timing)))
    steps.append(("lenet", lambda: book_loop_row(suite.lenet_batch, suite.loop_batches,
                                                 timing)))
    steps.append(("overhead", lambda: loop_overhead_row(suite.lenet_batch,
                                                        suite.name == "smoke")))
    steps.append(("resnet", lambda: resnet_row(*suite.resnet, timing)))
    steps.append(("load", lambda: load_row(suite.lenet_batch, timing)))

    rows: list[Row] = []
    section = None
    default_threads = torch.get_num_threads()
    torch.set_num_threads(suite.torch_threads or default_threads)
    try:
        for step_section, measure in steps:
            if print_rows and step_section != section:
                print(f"\n== {SECTIONS[step_section].heading} ==", flush=True)
            section = step_section
            rows.append(measure())
            if print_rows:
                print(rows[-1].line(), flush=True)
    finally:
        torch.set_num_threads(default_threads)
    return rows


# --------------------------------------------------------------------------------------------
# Targets: the goals, checked against the measured rows
# --------------------------------------------------------------------------------------------

@dataclass
class Target:
    goal: str
    value: float | None
    comparison: str  # ">=", ">", "<=" or "<", against threshold
    threshold: float
    status: str  # "met", "missed" or "n/a"
    where: str = ""  # which row gave the value, or why there is none
    unit: str = ""

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{_format_ratio(self.value)}{self.unit}"
        where = f" ({self.where})" if self.where else ""
        return (f"{self.status:>6}  {self.goal}: {value}{where}, "
                f"target {self.comparison} {self.threshold:g}{self.unit}")


COMPARISONS = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b,
               "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}


def _geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def _target(goal, rows, pick, combine, comparison, threshold, unit="") -> Target:
    """A goal over some rows: `pick(row)` is each row's number (None: none), `combine`
    "lowest", "geometric mean" or "only" joins them. A row where corrnet itself has no value
    (it failed) misses the goal; rows without a contender (not installed) are left out."""
    failed = [row for row in rows if row.values.get("corrnet") is None]
    picked = [(pick(row), row) for row in rows if pick(row) is not None]
    failures = "corrnet failed on " + "; ".join(row.title for row in failed) if failed else ""
    if not picked:
        why = failures or ("no rows" if not rows else "; ".join(
            f"{name} {note}" for row in rows for name, note in row.notes.items()))
        return Target(goal, None, comparison, threshold, "missed" if failed else "n/a",
                      where=why, unit=unit)
    if combine == "lowest":
        value, lowest_row = min(picked, key=lambda pair: pair[0])
        where = lowest_row.key if lowest_row.section == "layers" else lowest_row.title
    elif combine == "geometric mean":
        value, where = _geometric_mean([number for number, _ in picked]), f"{len(picked)} rows"
    else:
        (value, _), where = picked[0], ""
    met = COMPARISONS[comparison](value, threshold) and not failed
    where = "; ".join(part for part in (where, failures) if part)
    return Target(goal, value, comparison, threshold, "met" if met else "missed", where, unit)


def compute_targets(rows: list[Row]) -> list[Target]:
    def select(section, passes=None, key=None):
        return [row for row in rows if row.section == section
                and (passes is None or row.passes == passes) and (key is None or row.key == key)]

    def ratio(name):
        return lambda row: row.ratios.get(name)

    layers_both = select("layers", "fwd+bwd")
    return [
        _target("layer suite fwd+bwd, geometric mean of torch/corrnet", layers_both,
                ratio("torch / corrnet"), "geometric mean", ">=", 1.5),
        _target("layer suite, lowest torch/corrnet of any row, fwd or fwd+bwd",
                select("layers"), ratio("torch / corrnet"), "lowest", ">=", 0.8),
        _target("pooling, lowest torch/corrnet, fwd or fwd+bwd", select("pooling"),
                ratio("torch / corrnet"), "lowest", ">=", 1.5),
        _target("filtering, lowest torch/corrnet", select("filtering"), ratio("torch / corrnet"),
                "lowest", ">=", 1.0),
        _target("filtering, lowest ndimage/corrnet", select("filtering"),
                ratio("ndimage / corrnet"), "lowest", ">=", 1.0),
        _target("filtering, lowest fftconvolve/corrnet", select("filtering"),
                ratio("fftconvolve / corrnet"), "lowest", ">=", 1.0),
        _target("filtering, lowest opencv/corrnet", select("filtering"),
                ratio("opencv / corrnet"), "lowest", ">=", 0.8),
        _target("LeNet, the book's training loop, torch/corrnet time (= examples/s ratio)",
                select("lenet", key="loop"), ratio("torch / corrnet"), "only", ">=", 1.5),
        _target("LeNet inference, torch/corrnet", select("lenet", key="inference"),
                ratio("torch / corrnet"), "only", ">=", 1.5),
        _target("ResNet-18 training step, torch/corrnet", select("resnet"),
                ratio("torch / corrnet"), "only", ">=", 1.0),
        _target("peak memory of (g) fwd+bwd, corrnet/torch", select("memory"),
                ratio("corrnet / torch"), "only", "<=", 1.2),
        _target("import corrnet", select("import", key="import"),
                lambda row: row.values.get("corrnet"), "only", "<", 0.3, unit=" s"),
        _target("first LeNet step of a fresh process, over a warm step",
                select("import", key="first-step"), lambda row: row.values.get("corrnet"),
                "only", "<=", 0.3, unit=" s"),
        _target("the book loop's per-batch overhead over the LeNet step", select("overhead"),
                ratio("overhead / step"), "only", "<", 0.05),
        _target("LeNet training step under load, corrnet loaded/idle", select("load"),
                ratio("corrnet loaded / idle"), "only", "<=", 3.0),
    ]


def print_targets(targets: list[Target]) -> None:
    met = sum(target.status == "met" for target in targets)
    print(f"\n== Targets: {met} of {len(targets)} met ==", flush=True)
    for target in targets:
        print(target.line(), flush=True)


# --------------------------------------------------------------------------------------------
# BENCHMARKS.md
# --------------------------------------------------------------------------------------------

def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    avx2 = avx512 = "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = line.split()
            avx2 = "yes" if "avx2" in flags else "no"
            avx512 = "yes" if "avx512f" in flags else "no"
            break
    return f"{cpu}, {os.cpu_count()} cores, AVX2: {avx2}, AVX-512: {avx512}"


def _cpu_ticks() -> tuple[int, int] | None:
    """(all ticks, steal ticks) of the machine's cores so far, from /proc/stat; None where
    there is none. Steal is time the hypervisor gave this virtual machine's cores to others."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [int(field) for field in fields[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: counted in user]
    return sum(ticks[:8]), ticks[7] if len(ticks) > 7 else 0


def _steal(before, after) -> str:
    """The share of the cores' time the hypervisor took while the run ran."""
    if before is None or after is None or after[0] <= before[0]:
        return "not known (no /proc/stat)"
    share = (after[1] - before[1]) / (after[0] - before[0])
    return (f"{share:.1%} of the cores' time (/proc/stat): time a virtual machine's cores "
            "were given to others, which slows whichever library it falls on")


def _planner() -> str:
    """Whether the planner ran on its rules or on a calibration file (`corrnet tune`)."""
    try:
        from corrnet.kernels import calibration
        file = calibration.path()
    except (ImportError, AttributeError):
        return "rules"
    if file.exists():
        return f"calibration file {file.name} (`corrnet tune`), rules where it has no entry"
    return "its rules (no calibration file: `corrnet tune` not run on this machine)"


def _versions(suite: Suite) -> str:
    torch_threads = suite.torch_threads or torch.get_num_threads()
    versions = [f"Python {platform.python_version()}", f"corrnet {corrnet.__version__}",
                f"NumPy {np.__version__}", f"SciPy {scipy.__version__}",
                f"PyTorch {torch.__version__} ({torch_threads} threads)"]
    try:
        import numba
        versions.append(f"numba {numba.__version__}")
    except Exception:  # not installed, or broken: corrnet falls back to NumPy
        versions.append("numba not importable")
    if cv2 is None:
        versions.append("OpenCV not installed")
    else:
        versions.append(f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)")
    return ", ".join(versions)


SECTION_NOTES = {
    "layers": "float32, NCHW, `corrnet.nn.functional.conv2d` against "
              "`torch.nn.functional.conv2d`; fwd+bwd adds `out.sum().backward()` (gradients "
              "for input, weight and bias).",
    "filtering": "`corrnet.corr2d(image, kernel)` (valid mode, float32) against "
                 "`F.conv2d` on (1, 1, H, W), `scipy.ndimage.correlate(image, k, "
                 "mode='constant')`, `scipy.signal.fftconvolve(image, k[::-1, ::-1], "
                 "mode='valid')` and `cv2.filter2D(image, -1, k, "
                 "borderType=cv2.BORDER_CONSTANT)`. ndimage and filter2D compute a "
                 "same-size output, slightly more work at the border.",
    "memory": "The high-water mark of resident memory during one forward+backward minus the "
              "resident memory just before it (after the imports, the inputs, one warm-up "
              "call and handing the heap's free memory back to the system, so that blocks "
              "kept from the warm-up hide nothing), each library in its own fresh process "
              "(`benchmarks/memory.py`). "
              "Ratio corrnet / torch: below 1, corrnet needs less.",
    "import": ("Timed with `time.perf_counter()` inside each fresh interpreter; the import with "
               "Python's bytecode cached, as an installation has it (one untimed import writes "
               "it first, into a temporary `PYTHONPYCACHEPREFIX`)."),
    "overhead": "`benchmarks/loop_overhead.py`: the book's `train_ch6` loop, timed part by "
                "part; corrnet is the DataLoader's batch, `.to(device)`, the accuracy metric, "
                "the Accumulator and the Timer per batch, corrnet step the training step "
                "(forward, loss, backward, SGD), medians over the batches.",
    "load": "The LeNet training step's median with one other process spinning on one of the "
            "cores (columns corrnet and torch), beside the same step's median just before, "
            "idle.",
}


def _markdown_table(rows: list[Row]) -> list[str]:
    section = SECTIONS[rows[0].section]
    unit = section.unit
    names = list(rows[0].values)
    ratio_names = list(rows[0].ratios)
    last = [section.detail] if any(row.detail for row in rows) else []
    header = ["case"] + [f"{name} ({unit})" for name in names] + ratio_names + last
    lines = ["| " + " | ".join(header) + " |",
             "| --- |" + " ---: |" * (len(names) + len(ratio_names)) + " --- |" * len(last)]
    for row in rows:
        cells = [row.title]
        for name in names:
            value = row.values[name]
            if value is None:
                note = row.notes.get(name, "not installed")  # "failed: MemoryError: ..."
                cells.append("n/a" if note == "not installed" else ":".join(note.split(":")[:2]))
            elif unit == "ms":
                one_call = "\\*" if row.samples.get(name) == 1 else ""
                cells.append(f"{value * 1e3:.2f}{one_call}")
            elif unit == "MiB":
                cells.append(f"{value:.1f}")
            else:
                cells.append(f"{value:.3f}")
        cells += [_format_ratio(row.ratios[name]) for name in ratio_names]
        cells += [row.detail] if last else []
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_markdown(rows: list[Row], targets: list[Target], path: Path, suite: Suite,
                   steal: str = "not measured") -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/run.py`, whose docstring says how it measures). "
        "Medians of interleaved runs in one process, float32. In the timing tables each "
        "ratio is the contender's time / corrnet's time: above 1, corrnet is faster.",
        "",
        "The contenders run in corrnet's process, so with the heap settings `import corrnet` "
        "makes (`kernels/heap.py`: freed blocks kept for reuse instead of fresh pages): "
        "PyTorch's own large outputs gain from them too (its forward pass of the ResNet "
        "stem, row (g), 24-29 ms in a process without corrnet, 7-10 ms with it, on the "
        "Intel Xeon below). The ratios are against that faster PyTorch.",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {_machine()}",
        f"- versions: {_versions(suite)}",
        f"- planner: {_planner()}",
        f"- hypervisor steal during the run: {steal}",
        f"- repeats: {suite.timing.describe()}; \\* marks a time from a single call",
        "",
        "## Targets",
        "",
        "| goal | measured | target | status |",
        "| --- | ---: | ---: | --- |",
    ]
    for target in targets:
        value = "n/a" if target.value is None else f"{_format_ratio(target.value)}{target.unit}"
        where = f" ({target.where})" if target.where else ""
        lines.append(f"| {target.goal}{where} | {value} | {target.comparison} "
                     f"{target.threshold:g}{target.unit} | {target.status} |")
    lines.append("")

    for section, info in SECTIONS.items():
        section_rows = [row for row in rows if row.section == section]
        lines += [f"## {info.heading}", ""]
        if section in SECTION_NOTES:
            lines += [SECTION_NOTES[section], ""]
        if section == "filtering" and cv2 is None:
            lines += ["OpenCV wasn't installed (`pip install -e '.[bench]'`): its column "
                      "says n/a.", ""]
        if not section_rows:
            lines += ["(not measured)", ""]
            continue
        lines += _markdown_table(section_rows) + [""]
        if section == "lenet":
            lines += ["Examples per second (batch / median time):", ""]
            for row in section_rows:
                examples = suite.lenet_batch * (suite.loop_batches if row.key == "loop" else 1)
                rates = ", ".join(f"{name} {examples / seconds:,.0f}"
                                  for name, seconds in row.values.items() if seconds)
                lines.append(f"- {row.title}: {rates}")
            lines.append("")
    path.write_text("\n".join(lines))


#: BENCHMARKS.md's sections from this line on are written by other scripts (scale-out on Dask
#: and MPI, the GPU): a run of this one keeps them as they are.
KEPT_MARKER = "<!-- from here on: sections measured by other scripts, kept by benchmarks/run.py -->"


def kept_sections(path: Path) -> str:
    """The part of the markdown file at `path` from `KEPT_MARKER` on ('' if none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    at = text.find(KEPT_MARKER)
    return text[at:] if at >= 0 else ""


# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="every full-size row, few repeats; prints only")
    mode.add_argument("--smoke", action="store_true",
                      help="every row type on tiny shapes, 1 repeat, a few seconds; prints only")
    parser.add_argument("--repeats", type=int, default=FULL.timing.repeats,
                        help="the most samples per candidate in the full run")
    args = parser.parse_args(argv)
    if args.smoke:
        suite = SMOKE
    elif args.quick:
        suite = QUICK
    else:
        suite = dataclasses.replace(FULL, timing=dataclasses.replace(FULL.timing,
                                                                    repeats=args.repeats))
    writes_markdown = not (args.smoke or args.quick)
    start, ticks = time.perf_counter(), _cpu_ticks()
    rows = run_suite(suite)
    targets = compute_targets(rows)
    print_targets(targets)
    steal = _steal(ticks, _cpu_ticks())
    print(f"\n{suite.name} run took {time.perf_counter() - start:.0f} s; hypervisor steal: "
          f"{steal}", flush=True)
    if writes_markdown:
        target = ROOT / "BENCHMARKS.md"
        temporary = target.with_suffix(".md.tmp")
        write_markdown(rows, targets, temporary, suite, steal)
        kept = kept_sections(target)
        if kept:
            temporary.write_text(temporary.read_text().rstrip("\n") + "\n\n" + kept)
        temporary.replace(target)  # atomic: a killed run leaves the old file whole
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
