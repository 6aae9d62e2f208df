"""This machine's calibration: measured once by ``corrnet tune``, kept in the user's cache.

The planner (plan.py) picks an algorithm per convolution pass by rules. Rules are measured on
some CPUs and may be wrong on others (an AVX-512 Xeon whose GEMM is 2-3x faster, an AVX2-only
EPYC), so ``corrnet tune`` (or `tune()`) times every candidate algorithm of each pass on a
list of representative layers (`BENCHMARK_ROWS`, `RESNET18_LAYERS`) and writes the winners,
with a few machine quantities (`measure_machine`: sgemm GFLOP/s, memory bandwidth GB/s, one
compiled kernel's GFLOP/s), into a small JSON file. Each pass's candidates are first screened
on one image (one that is over 3x the fastest there is not timed on the batch), then timed in
interleaved rounds, and the one with the smallest median wins (the smallest time where the
machine is busy with other work: the median would measure that work). The file:

    $CORRNET_CACHE_DIR/calibration-<digest>.json       when CORRNET_CACHE_DIR is set, else
    $XDG_CACHE_HOME/corrnet/calibration-<digest>.json  (~/.cache/corrnet/ without XDG_CACHE_HOME)

The file is keyed by the machine (`machine_key`: CPU model, its SIMD features avx2/avx512f,
the cores this process may use, and the versions of corrnet, NumPy and numba); <digest> is a
hash of that key, so machines sharing one home folder, or versions after an upgrade, each
have their own file. A file whose key is not this machine's, or that does not parse, is
ignored with a one-line `CalibrationWarning`, never an error. Every write goes to a temporary
file in the same folder first and replaces the file in one step (`os.replace`), so a reader
sees the old file or the new one, never half of one.

The autotune mode (``corrnet.backends.conv.benchmark = True``) keeps its winners in the same
file (`remember`): a later process finds them there instead of timing again. Each winner is
stored under the exact key of the pass (`entry_key`: pass, shapes, window, groups, dtype,
compiled kernels on or off, memory budget); plan.choose asks `winner` for it.

Delete the file (``corrnet tune --forget``, or remove it: ``corrnet tune --show`` prints its
path) to go back to the rules; ``corrnet.backends.conv.calibration = False`` ignores it for
the running process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

# (hashlib, json, platform, statistics and tempfile are imported where they are used: the
# planner imports this module, and `import corrnet` should not pay for them)

FORMAT = "corrnet-calibration"
VERSION = 1


class CalibrationWarning(UserWarning):
    """A calibration file was ignored (damaged, or another machine's) or could not be
    written."""


# -- the machine and where its file lives -----------------------------------------------------


def cache_dir() -> Path:
    """The folder of the calibration file: ``$CORRNET_CACHE_DIR`` if set, else corrnet's
    user cache folder (``$XDG_CACHE_HOME/corrnet`` or ``~/.cache/corrnet``)."""
    override = os.environ.get("CORRNET_CACHE_DIR", "")
    if override:
        return Path(override).expanduser()
    from ..datasets import cache_dir as user_cache_dir

    return user_cache_dir()


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and which of the SIMD features that matter here it has, from
    /proc/cpuinfo (Linux); elsewhere platform.processor() and no features."""
    import platform

    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                name, _, value = line.partition(":")
                name = name.strip()
                if name == "model name" and not model:
                    model = value.strip()
                elif name == "flags" and not flags:
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown"
    return model, tuple(sorted(flags & {"avx2", "avx512f"}))


def has_avx512() -> bool:
    """Whether the CPU has AVX-512 (its "avx512f" flag in /proc/cpuinfo): 512-bit vectors,
    and 32 vector registers, which the kernels' rules ask about."""
    return "avx512f" in _cpuinfo()[1]


def _version(package: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine_key() -> dict:
    """What a calibration is valid for: the CPU model, its SIMD features (avx2, avx512f), the
    cores this process may run on, and the versions of corrnet, NumPy and numba (None where
    numba is not installed)."""
    from .. import __version__
    from .threads import _cores

    model, simd = _cpuinfo()
    return {"cpu": model, "simd": list(simd), "cores": _cores(), "corrnet": __version__,
            "numpy": np.__version__, "numba": _version("numba")}


def path(key: dict | None = None) -> Path:
    """This machine's calibration file (it may not exist)."""
    import hashlib
    import json

    key = machine_key() if key is None else key
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"calibration-{digest}.json"


def entry_key(pass_name, x_shape, weight_shape, window, groups, dtype, compiled: bool,
              budget: int) -> str:
    """The text key of one pass's winner, e.g. ``forward x=256,6,14,14 w=16,6,5,5 s=1,1
    p=0,0,0,0 d=1,1 g=1 float32 numba budget=268435456``: everything plan.choose keys its
    choice by (the window's kernel is the weight's, its size the input's)."""
    def ints(values):
        return ",".join(str(int(v)) for v in values)

    pads = (*window.padding[0], *window.padding[1])
    return (f"{pass_name} x={ints(x_shape)} w={ints(weight_shape)} s={ints(window.stride)} "
            f"p={ints(pads)} d={ints(window.dilation)} g={int(groups)} {np.dtype(dtype).name} "
            f"{'numba' if compiled else 'numpy'} budget={int(budget)}")


# -- reading and writing the file -------------------------------------------------------------


def _warn(message: str) -> None:
    warnings.warn(message, CalibrationWarning, stacklevel=3)


def read(file: Path | None = None, key: dict | None = None) -> dict | None:
    """The calibration in `file` (default: this machine's) if it is a calibration for `key`
    (default: this machine's); None if there is none, and None with a one-line warning if the
    file is damaged or another machine's."""
    import json

    key = machine_key() if key is None else key
    file = path(key) if file is None else Path(file)
    try:
        raw = file.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        _warn(f"corrnet: calibration file {file} ignored: it cannot be read ({error})")
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
        valid = (isinstance(data, dict) and data.get("format") == FORMAT
                 and isinstance(data.get("winners"), dict)
                 and all(isinstance(k, str) and isinstance(v, dict)
                         and isinstance(v.get("algorithm"), str)
                         for k, v in data["winners"].items()))
    except (ValueError, RecursionError):
        valid = False
    if not valid:
        _warn(f"corrnet: calibration file {file} ignored: it is damaged or not corrnet's "
              "(run `corrnet tune` to measure again)")
        return None
    if data.get("version") != VERSION or data.get("machine") != key:
        _warn(f"corrnet: calibration file {file} ignored: it was measured on another machine "
              "or with other versions (run `corrnet tune` to measure this one)")
        return None
    return data


def empty(key: dict | None = None) -> dict:
    """A calibration with no measurements yet."""
    return {"format": FORMAT, "version": VERSION,
            "machine": machine_key() if key is None else key, "rates": None, "winners": {}}


def write(data: dict, file: Path | None = None) -> Path:
    """Write `data` to `file` (default: this machine's) atomically: a temporary file in the
    same folder, then os.replace. Returns the path."""
    import json
    import tempfile

    file = path(data["machine"]) if file is None else Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=file.name + ".", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.write("\n")
        os.replace(temporary, file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return file


# -- what this process knows: loaded lazily, on the planner's first question -------------------

enabled = True           # plan.settings.calibration: whether the planner consults the file
_loaded: dict | None = None   # this machine's calibration (empty() when there is no file)
_write_failed = False
_lock = threading.RLock()     # one reader or writer of the file at a time in this process


def _current() -> dict:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = read() or empty()
    return _loaded


def forget_loaded() -> None:
    """Drop what this process has read, so that the next question reads the file again."""
    global _loaded
    _loaded = None


def winner(key: str) -> str | None:
    """The calibrated winner for the pass with this `entry_key`, or None."""
    if not enabled:
        return None
    entry = _current()["winners"].get(key)
    return None if entry is None else entry["algorithm"]


def rates() -> dict | None:
    """This machine's measured quantities (`measure_machine`), or None where it has not been
    tuned (or the calibration is switched off): for rules that need them."""
    return _current().get("rates") if enabled else None


def remember(entries: dict[str, dict], rates_measured: dict | None = None) -> Path | None:
    """Add winners ({entry_key: {"algorithm": name, ...}}) and, if given, the machine's rates
    to this process's calibration and to the file, merged with what the file holds now
    (another process may have added winners since it was read). A file that cannot be
    written is warned about once; the winners are still kept in this process."""
    global _loaded, _write_failed
    with _lock:
        held = _current()
        data = read() or empty()
        data["winners"] = {**held["winners"], **data["winners"], **entries}
        data["rates"] = rates_measured or data.get("rates") or held.get("rates")
        _loaded = data
        try:
            return write(data)
        except OSError as error:
            if not _write_failed:
                _write_failed = True
                _warn(f"corrnet: calibration not saved ({error}); it holds for this process "
                      "only")
            return None


# -- measuring ---------------------------------------------------------------------------------


class Layer(NamedTuple):
    """One conv2d layer: input (n, c_in, size, size), weight (c_out, c_in/groups, k, k)."""

    label: str
    n: int
    c_in: int
    c_out: int
    size: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def title(self) -> str:
        extra = (f" s{self.stride}" if self.stride != 1 else "") + \
            (f" p{self.padding}" if self.padding else "") + \
            (f" g{self.groups}" if self.groups != 1 else "")
        return (f"N={self.n} {self.c_in}->{self.c_out} {self.kernel}x{self.kernel}{extra} "
                f"{self.size}x{self.size}")


# The benchmark's conv rows (benchmarks/run.py, FULL suite; a test keeps them equal). (a) and
# (b) are LeNet's two layers at the book's batch of 256.
BENCHMARK_ROWS = (
    Layer("(a)", 256, 1, 6, 28, 5, padding=2),
    Layer("(b)", 256, 6, 16, 14, 5),
    Layer("(c)", 8, 64, 64, 56, 3, padding=1),
    Layer("(d)", 16, 128, 128, 28, 3, padding=1),
    Layer("(e)", 32, 256, 256, 14, 3, padding=1),
    Layer("(f)", 32, 256, 64, 28, 1),
    Layer("(g)", 8, 3, 64, 224, 7, stride=2, padding=3),
    Layer("(h)", 16, 128, 128, 56, 3, padding=1, groups=128),
)

# D2L's ResNet-18 (models.resnet18) on 96x96 Fashion-MNIST images, batch 64: the stem, then
# per stage the 3x3 convolutions (the first with stride 2 from stage 2 on) and the 1x1
# shortcut with stride 2.
RESNET18_LAYERS = (
    Layer("resnet stem", 64, 1, 64, 96, 7, stride=2, padding=3),
    Layer("resnet 1", 64, 64, 64, 24, 3, padding=1),
    Layer("resnet 2 down", 64, 64, 128, 24, 3, stride=2, padding=1),
    Layer("resnet 2", 64, 128, 128, 12, 3, padding=1),
    Layer("resnet 2 1x1", 64, 64, 128, 24, 1, stride=2),
    Layer("resnet 3 down", 64, 128, 256, 12, 3, stride=2, padding=1),
    Layer("resnet 3", 64, 256, 256, 6, 3, padding=1),
    Layer("resnet 3 1x1", 64, 128, 256, 12, 1, stride=2),
    Layer("resnet 4 down", 64, 256, 512, 6, 3, stride=2, padding=1),
    Layer("resnet 4", 64, 512, 512, 3, 3, padding=1),
    Layer("resnet 4 1x1", 64, 256, 512, 6, 1, stride=2),
)

LAYERS = BENCHMARK_ROWS + RESNET18_LAYERS

# `corrnet tune --quick`: small layers of the same kinds, measured in seconds (for tests and
# a first look; the full list is what the planner should be tuned on)
QUICK_LAYERS = (
    Layer("(a)", 8, 1, 6, 28, 5, padding=2),
    Layer("(b)", 8, 6, 16, 14, 5),
    Layer("(c)", 2, 16, 16, 16, 3, padding=1),
    Layer("(f)", 2, 32, 16, 8, 1),
    Layer("(h)", 2, 8, 8, 16, 3, padding=1, groups=8),
)


def _best_time(call, samples: int) -> float:
    """The fastest of `samples` calls, in seconds: a rate the machine reaches (another
    process's load only ever slows a call down)."""
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_machine(quick: bool = False) -> dict:
    """The machine's quantities: float32 GEMM GFLOP/s at a few square sizes (NumPy's BLAS),
    memory bandwidth GB/s (bytes read + written by a large copy), and one compiled kernel's
    GFLOP/s (the depthwise 3x3 forward, numba; None without it)."""
    from . import direct, jit
    from .windows import make_window

    rng = np.random.default_rng(0)
    gemm = {}
    for size in (128, 256) if quick else (128, 512, 1024):
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        product = functools.partial(np.matmul, a, b)
        product()
        gemm[str(size)] = round(2 * size**3 / _best_time(product, 5) / 1e9, 2)
    count = (4 if quick else 32) * 2**20 // 4          # a 4 (32) MiB float32 array
    source, target = np.ones(count, np.float32), np.empty(count, np.float32)
    np.copyto(target, source)
    bandwidth = 2 * source.nbytes / _best_time(lambda: np.copyto(target, source), 5) / 1e9
    compiled = None
    if jit.enabled():
        channels, side = 16, 128 if quick else 256
        x = rng.standard_normal((1, channels, side, side), dtype=np.float32)
        w = rng.standard_normal((channels, 1, 3, 3), dtype=np.float32)
        window = make_window("tune", side, side, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))

        def depthwise():
            return direct.depthwise_forward(x, w, None, window, channels, 2**30)

        depthwise()
        compiled = round(2 * 9 * x.size / _best_time(depthwise, 5) / 1e9, 2)
    return {"sgemm_gflops": gemm, "bandwidth_gbs": round(bandwidth, 2),
            "numba_gflops": compiled}


def _shapes(layer: Layer):
    """The input shape, weight shape and window of one layer."""
    from .windows import make_window

    pad = ((layer.padding,) * 2,) * 2
    window = make_window("tune", layer.size, layer.size, (layer.kernel,) * 2,
                         (layer.stride,) * 2, pad, (1, 1))
    x_shape = (layer.n, layer.c_in, layer.size, layer.size)
    w_shape = (layer.c_out, layer.c_in // layer.groups, layer.kernel, layer.kernel)
    return x_shape, w_shape, window


def _pass_arguments(layer: Layer, dtype) -> dict[str, tuple]:
    """Random operands of each pass of one layer, as plan.run takes them."""
    x_shape, w_shape, window = _shapes(layer)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=dtype)
    w = rng.standard_normal(w_shape, dtype=dtype)
    bias = rng.standard_normal(layer.c_out, dtype=dtype)
    grad = rng.standard_normal((layer.n, layer.c_out, window.out_height, window.out_width),
                               dtype=dtype)
    return {"forward": (x, w, bias, window, layer.groups),
            "grad_input": (grad, w, window, layer.groups, x_shape),
            "grad_weight": (grad, x, w_shape, window, layer.groups)}


def _race(trials: dict, screens: dict, rounds: int, budget_s: float,
          keep=()) -> dict[str, list[float] | None]:
    """The seconds of each of `trials` (name: call), timed in interleaved rounds.

    First a screening: each name's `screens` call (the same pass on one image) runs twice,
    the first compiling what it needs, the second timed; a name over 3x the fastest screen
    cannot win (the algorithms' work grows alike with the batch) and is not timed on the
    whole batch (None), unless it is in `keep`. Then one warm-up call of each name left, and
    rounds of one call each, at least 3 and at most `rounds`, more while `budget_s` (seconds
    since the first round) is not spent."""
    screened = {}
    for name, call in screens.items():
        call()
        begin = time.perf_counter()
        call()
        screened[name] = time.perf_counter() - begin
    best = min(screened.values())
    running = [name for name in trials if screened[name] <= 3 * best or name in keep]
    samples = {name: [] for name in running}
    for name in running:
        trials[name]()
    start = time.perf_counter()
    for round_index in range(rounds):
        for name in running:
            begin = time.perf_counter()
            trials[name]()
            samples[name].append(time.perf_counter() - begin)
        if round_index >= 2 and time.perf_counter() - start > budget_s:
            break
    return {name: samples.get(name) for name in trials}


def _one_image(layer: Layer) -> Layer:
    return layer._replace(n=1)


def measure_layer(layer: Layer, dtype=np.float32, rounds: int = 5, budget_s: float = 0.5,
                  statistic=None) -> dict[str, dict]:
    """{entry_key: {"algorithm": fastest, "seconds": {candidate: `statistic` of its samples
    (the median; the minimum where the machine is busy, see `tune`), or None where the
    screening on one image ruled it out}, ...}} for the three passes of `layer`, every
    candidate algorithm that supports the pass timed on this machine (see `_race`)."""
    import statistics

    from . import jit, plan

    statistic = statistic or statistics.median
    x_shape, w_shape, window = _shapes(layer)
    args = _pass_arguments(layer, dtype)
    small = _pass_arguments(_one_image(layer), dtype)
    entries = {}
    for pass_name in plan.PASSES:
        names = plan.candidates(pass_name, x_shape, w_shape, window, layer.groups, dtype)
        default = plan.rule_choice(pass_name, x_shape, w_shape, window, layer.groups, dtype)
        if len(names) > 1:
            trials = {name: functools.partial(plan.run, pass_name, name, *args[pass_name])
                      for name in names}
            screens = {name: functools.partial(plan.run, pass_name, name, *small[pass_name])
                       for name in names}
            samples = _race(trials, screens, rounds, budget_s, keep={default})
            seconds = {name: None if got is None else statistic(got)
                       for name, got in samples.items()}
        else:
            seconds = {names[0]: None}
        timed = {name: t for name, t in seconds.items() if t is not None}
        fastest = min(timed, key=timed.get) if timed else names[0]
        key = entry_key(pass_name, x_shape, w_shape, window, layer.groups, dtype,
                        jit.enabled(), plan.settings.memory_budget)
        entries[key] = {"algorithm": fastest, "source": "tune", "layer": layer.label,
                        "seconds": {n: None if t is None else float(f"{t:.4g}")
                                    for n, t in seconds.items()}}
    return entries


def _busy() -> str | None:
    """A note when other work keeps this machine's cores busy (the 1-minute load average
    over the cores this process may use), which the timings would measure too."""
    from .threads import _cores

    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on Unix
        return None
    cores = _cores()
    if load < 0.75 * cores:
        return None
    return (f"note: this machine is busy (load average {load:.1f} on {cores} cores): the "
            "timings measure that too; run `corrnet tune` again when it is idle")


def tune(quick: bool = False, layers=None, progress=None) -> Path | None:
    """Measure this machine (`measure_machine`) and the fastest algorithm of every pass of
    `layers` (default `LAYERS`, or `QUICK_LAYERS` with quick), write them to the calibration
    file and use them from now on in this process. `progress(text)` is told each step.
    Returns the file's path (None where it could not be written)."""
    import statistics

    from . import plan

    say = progress or (lambda text: None)
    layers = (QUICK_LAYERS if quick else LAYERS) if layers is None else layers
    start = time.perf_counter()
    say("measuring the machine: GEMM rate, memory bandwidth, compiled kernel rate")
    measured = measure_machine(quick)
    say(f"   sgemm GFLOP/s {measured['sgemm_gflops']}, {measured['bandwidth_gbs']} GB/s, "
        f"compiled depthwise {measured['numba_gflops']} GFLOP/s")
    busy = _busy()
    if busy:
        say(busy + "; each algorithm's fastest run is compared, not its median")
    entries = {}
    rounds, budget_s = (3, 0.05) if quick else (5, 0.5)
    for index, layer in enumerate(layers, 1):
        say(f"[{index}/{len(layers)}] {layer.label}: {layer.title}")
        found = measure_layer(layer, rounds=rounds, budget_s=budget_s,
                              statistic=min if busy else statistics.median)
        entries.update(found)
        say("   " + ", ".join(f"{key.split()[0]} {entry['algorithm']}"
                              for key, entry in found.items()))
    measured["seconds"] = round(time.perf_counter() - start, 1)
    measured["statistic"] = "min" if busy else "median"
    with contextlib.suppress(AttributeError, OSError):
        measured["load_average"] = round(os.getloadavg()[0], 2)
    measured["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    where = remember(entries, measured)
    plan.forget_choices()
    return where


# -- the report: the rules' choice against the tuned one ---------------------------------------


def compare(layers=BENCHMARK_ROWS, dtype=np.float32) -> list[dict]:
    """Per layer and pass: the rules' choice (what runs without a calibration file), the
    calibrated winner and the rules' time over the winner's (from the times the calibration
    measured). Layers the calibration has not measured are left out."""
    from . import jit, plan

    calibration = _current()["winners"]
    rows = []
    for layer in layers:
        x_shape, w_shape, window = _shapes(layer)
        for pass_name in plan.PASSES:
            key = entry_key(pass_name, x_shape, w_shape, window, layer.groups, dtype,
                            jit.enabled(), plan.settings.memory_budget)
            entry = calibration.get(key)
            if entry is None:
                continue
            default = plan.rule_choice(pass_name, x_shape, w_shape, window, layer.groups, dtype)
            seconds = entry.get("seconds") or {}
            tuned_s, default_s = seconds.get(entry["algorithm"]), seconds.get(default)
            ratio = default_s / tuned_s if tuned_s and default_s else None
            rows.append({"layer": layer.label, "title": layer.title, "pass": pass_name,
                         "default": default, "tuned": entry["algorithm"], "ratio": ratio,
                         "default_s": default_s, "tuned_s": tuned_s})
    return rows


def compare_table(rows: list[dict]) -> str:
    """`compare`'s rows as a text table, with each layer's three passes together
    (fwd+bwd: sum of the times) and a closing line on the worst ratio."""
    def ratio_text(ratio):
        return "   -" if ratio is None else f"{ratio:5.2f}x"

    lines = [f"{'layer':<14}{'shape':<34}{'pass':<13}{'default':<11}{'tuned':<11}"
             f"default/tuned"]
    worst = []
    for label in dict.fromkeys(row["layer"] for row in rows):
        mine = [row for row in rows if row["layer"] == label]
        for row in mine:
            lines.append(f"{label:<14}{row['title']:<34}{row['pass']:<13}{row['default']:<11}"
                         f"{row['tuned']:<11}{ratio_text(row['ratio'])}")
            if row["ratio"] is not None:
                worst.append((row["ratio"], f"{label} {row['pass']}"))
        if len(mine) == 3 and all(row["ratio"] is not None for row in mine):
            total = sum(r["default_s"] for r in mine) / sum(r["tuned_s"] for r in mine)
            lines.append(f"{label:<14}{'':<34}{'fwd+bwd':<13}{'':<22}{ratio_text(total)}")
            worst.append((total, f"{label} fwd+bwd"))
    if worst:
        ratio, where = max(worst)
        within = sum(r <= 1.2 for r, _ in worst)
        lines.append(f"defaults within 20% of the tuned choice on {within} of {len(worst)} "
                     f"(passes and fwd+bwd); worst {ratio:.2f}x ({where})")
    return "\n".join(lines)


def describe_file(file: Path | None = None) -> str:
    """A short account of this machine's calibration file: path, key, rates, winners."""
    import json

    key = machine_key()
    file = path(key) if file is None else file
    lines = [f"calibration file: {file}", f"machine: {json.dumps(key, sort_keys=True)}"]
    data = read(file, key)
    if data is None:
        lines.append("(no calibration for this machine: run `corrnet tune`)")
        return "\n".join(lines)
    lines.append(f"measured: {json.dumps(data.get('rates'), sort_keys=True)}")
    by_source = {}
    for entry in data["winners"].values():
        by_source[entry.get("source", "?")] = by_source.get(entry.get("source", "?"), 0) + 1
    lines.append("winners: " + (", ".join(f"{n} from {s}" for s, n in sorted(by_source.items()))
                                or "none"))
    return "\n".join(lines)

