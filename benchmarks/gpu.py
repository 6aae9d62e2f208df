"""``make bench-gpu``: corrnet on a CUDA GPU (through CuPy) against PyTorch CUDA on the same GPU.

    python benchmarks/gpu.py                      # full run on the GPU, prints the markdown
    python benchmarks/gpu.py --out build/gpu.md   # ... and writes it (a BENCHMARKS.md section)
    python benchmarks/gpu.py --standin            # no GPU: a smoke run on the stand-in device

What is measured:

- **LeNet training, examples/s**: the book's ``train_ch6`` loop (batch 256, SGD lr 0.9,
  cross-entropy, each batch moved to the GPU, the per-batch metric of loss and accuracy read
  back as the book's Accumulator does), timed as the book times it (the training step, not
  the loading), on Fashion-MNIST (``--data``, default ``../shared/data/fashion-mnist``; else
  random images of its shape: the rate does not depend on the pixels). Against PyTorch CUDA
  running the same loop, and against the book's figure: 84,565 examples/s.
- **The convolution layer suite (a)-(h)** of ``benchmarks/run.py`` (imported from there) and
  its **pooling rows**, forward and forward+backward, against PyTorch CUDA (cuDNN), float32.
  PyTorch runs with TF32 off (``torch.backends.cudnn.allow_tf32 = False``), so both compute
  in float32; its default (TF32 convolutions on Ampere and later) is a second column.

Each time is a median of calls bracketed by ``synchronize()`` on both libraries (two warm-up
calls first: CuPy compiles its kernels on first use). Without CuPy and a GPU the script
refuses to run, unless ``--standin`` asks for corrnet's stand-in CUDA device (NumPy arrays on
the host, tiny shapes, PyTorch on the CPU): a smoke test of this script whose numbers mean
nothing, as its output says.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BOOK_LENET_EXAMPLES_PER_S = 84565.0  # the book's train_ch6 LeNet on its GPU
# where the Fashion-MNIST files are looked for: beside the checkout (a developer's machine,
# CI), or inside it (a copy that travels to a lent GPU machine)
DATA_FOLDERS = (ROOT.parent / "shared" / "data" / "fashion-mnist",
                ROOT / "shared" / "data" / "fashion-mnist")
DEFAULT_DATA = next((folder for folder in DATA_FOLDERS if folder.is_dir()), DATA_FOLDERS[0])


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--standin", action="store_true",
                        help="no GPU: run on corrnet's stand-in device (a smoke test; the "
                             "numbers mean nothing)")
    parser.add_argument("--quick", action="store_true", help="fewer samples per row")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of the Fashion-MNIST .gz files (else random images)")
    parser.add_argument("--batches", type=int, default=None,
                        help="LeNet batches timed (default: one epoch; --standin: 2)")
    parser.add_argument("--only", choices=("lenet", "layers", "pooling"), action="append",
                        help="run only these sections (repeatable)")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------------------------
# The two libraries on their devices
# --------------------------------------------------------------------------------------------

class Setup:
    """Where each library runs, and how to wait for its device."""

    def __init__(self, standin: bool):
        import torch

        import corrnet

        self.standin = standin
        self.corrnet, self.torch = corrnet, torch
        self.device = corrnet.device("cuda:0")
        self.torch_device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
        if self.torch_device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest algorithm

    def sync(self) -> None:
        self.corrnet.cuda.synchronize()

    def torch_sync(self) -> None:
        if self.torch_device.type == "cuda":
            self.torch.cuda.synchronize()

    def torch_tf32(self, allowed: bool) -> None:
        self.torch.backends.cudnn.allow_tf32 = allowed
        self.torch.backends.cuda.matmul.allow_tf32 = allowed

    def versions(self) -> list[str]:
        corrnet, torch = self.corrnet, self.torch
        lines = [f"GPU: {corrnet.cuda.get_device_name()}"
                 + (" (corrnet's STAND-IN device: NumPy on the host)" if self.standin else "")]
        if corrnet.devices.library() == "cupy":
            cupy = corrnet.devices.cuda_namespace()
            runtime = cupy.cuda.runtime
            properties = corrnet.cuda.get_device_properties()
            lines.append(f"{properties.total_memory / 2**30:.0f} GiB, compute capability "
                         f"{properties.major}.{properties.minor}, "
                         f"{properties.multi_processor_count} SMs")
            lines.append(f"CUDA runtime {runtime.runtimeGetVersion()}, driver "
                         f"{runtime.driverGetVersion()}, CuPy {cupy.__version__}")
        cuda = torch.version.cuda or "none"
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        lines.append(f"PyTorch {torch.__version__} (CUDA {cuda}, cuDNN {cudnn}) on "
                     f"{self.torch_device}; corrnet {corrnet.__version__}, NumPy "
                     f"{np.__version__}, Python {platform.python_version()}")
        return lines


def median_seconds(call, sync, repeats: int, budget_s: float) -> float:
    """The median time of `call`, each call between two `sync()`s, after two warm-up calls;
    at least 3 and at most `repeats` samples, within about `budget_s` seconds."""
    for _ in range(2):
        call()
        sync()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < repeats and (len(samples) < 3 or time.perf_counter() < deadline):
        sync()
        start = time.perf_counter()
        call()
        sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def attempt(what: str, measure):
    """`measure()`, or None and a note when it raises (one failing row must not end a run
    on a machine lent for minutes)."""
    try:
        return measure(), ""
    except Exception as error:  # reported in the row, and in full on stdout
        print(f"  {what}: failed: {type(error).__name__}: {error}", flush=True)
        return None, f"(failed: {type(error).__name__})"


# --------------------------------------------------------------------------------------------
# LeNet: the book's training loop
# --------------------------------------------------------------------------------------------

def fashion_mnist(folder: Path, count: int):
    """(images float32 (count, 1, 28, 28) in [0, 1], labels int64 (count,)), and where from."""
    images_file = folder / "train-images-idx3-ubyte.gz"
    labels_file = folder / "train-labels-idx1-ubyte.gz"
    if images_file.exists() and labels_file.exists():
        from corrnet import datasets

        images = datasets.read_idx(images_file)[:count]
        labels = datasets.read_idx(labels_file)[:count]
        return ((images[:, None] / np.float32(255)).astype(np.float32),
                labels.astype(np.int64), f"Fashion-MNIST from {folder}")
    rng = np.random.default_rng(0)
    images = (rng.integers(0, 256, (count, 1, 28, 28)) / 255).astype(np.float32)
    return images, rng.integers(0, 10, count), "random 28x28 images (no Fashion-MNIST found)"


def lenet_examples_per_s(lib, device, sync, images, labels, batch: int):
    """The book's train_ch6 inner loop on `lib` (corrnet or torch) over (images, labels):
    examples per second of the timed training steps, and the peak device memory."""
    import corrnet
    from corrnet import d2l

    sys.path.insert(0, str(HERE))
    from run import _copy_weights, _torch_lenet  # the suite's own LeNet twin

    corrnet.manual_seed(0)
    net_c = corrnet.models.lenet()
    if lib is corrnet:
        net = net_c
    else:
        net = _torch_lenet()
        _copy_weights(net_c, net)
    net.to(device)
    data = lib.utils.data.TensorDataset(lib.from_numpy(images), lib.from_numpy(labels))
    loader = lib.utils.data.DataLoader(data, batch_size=batch, shuffle=True,
                                       pin_memory=device.type == "cuda")
    optimizer = lib.optim.SGD(net.parameters(), lr=0.9)
    loss = lib.nn.CrossEntropyLoss()
    timer = d2l.Timer()
    metric = d2l.Accumulator(3)
    net.train()
    for round_ in range(2):  # the first pass warms up (kernels compile), the second is timed
        timer.times.clear()
        metric.reset()
        for X, y in loader:
            sync()
            timer.start()
            optimizer.zero_grad()
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            y_hat = net(X)
            batch_loss = loss(y_hat, y)
            batch_loss.backward()
            optimizer.step()
            with lib.no_grad():
                metric.add(batch_loss * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
            sync()
            timer.stop()
            if round_ == 0:
                break
    return metric[2] / timer.sum(), metric[1] / metric[2]


def lenet_section(setup: Setup, args) -> list[str]:
    batch = 256
    batches = args.batches or (2 if args.standin else 235)
    images, labels, source = fashion_mnist(args.data, batch * batches)
    print(f"\n== LeNet training (book's train_ch6 loop), batch {batch}, {len(images)} "
          f"examples of {source} ==", flush=True)
    corrnet, torch = setup.corrnet, setup.torch
    corrnet.cuda.reset_peak_memory_stats()
    ours, note = attempt("corrnet", lambda: lenet_examples_per_s(
        corrnet, setup.device, setup.sync, images, labels, batch))
    peak = corrnet.cuda.max_memory_allocated()
    setup.torch_tf32(False)
    theirs, torch_note = attempt("torch", lambda: lenet_examples_per_s(
        torch, setup.torch_device, setup.torch_sync, images, labels, batch))
    rate = ours[0] if ours else None
    torch_rate = theirs[0] if theirs else None
    print(f"corrnet {_rate(rate)} examples/s (peak {peak / 2**20:.0f} MiB on the device), "
          f"torch {_rate(torch_rate)}, the book {BOOK_LENET_EXAMPLES_PER_S:,.0f}", flush=True)
    lines = ["| loop | corrnet (cuda) | PyTorch | corrnet / PyTorch | the book's GPU | "
             "corrnet / book |", "|---|---:|---:|---:|---:|---:|",
             f"| train_ch6, batch {batch}, {len(images)} examples | {_rate(rate)} ex/s "
             f"{note} | {_rate(torch_rate)} ex/s {torch_note} | {_ratio(rate, torch_rate)} | "
             f"{BOOK_LENET_EXAMPLES_PER_S:,.0f} ex/s | "
             f"{_ratio(rate, BOOK_LENET_EXAMPLES_PER_S)} |", "",
             f"corrnet's peak device memory over the loop: {peak / 2**20:.1f} MiB. Target: "
             f"LeNet training at or above the book's figure: "
             f"{_verdict(rate, BOOK_LENET_EXAMPLES_PER_S, 1.0)}."]
    return lines


# --------------------------------------------------------------------------------------------
# The layer suite and pooling
# --------------------------------------------------------------------------------------------

def conv_call(lib, functional, device, spec, backward: bool):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((spec.n, spec.c_in, spec.size, spec.size)).astype(np.float32)
    w = (rng.standard_normal((spec.c_out, spec.c_in // spec.groups, spec.kernel, spec.kernel))
         * 0.1).astype(np.float32)
    b = rng.standard_normal(spec.c_out).astype(np.float32)
    xs, ws, bs = (lib.tensor(a, device=device, requires_grad=backward) for a in (x, w, b))

    def run():
        out = functional.conv2d(xs, ws, bs, stride=spec.stride, padding=spec.padding,
                                groups=spec.groups)
        if backward:
            out.sum().backward()
            xs.grad = ws.grad = bs.grad = None

    return run


def pool_call(lib, functional, device, spec, backward: bool):
    x = np.random.default_rng(0).standard_normal(spec.shape).astype(np.float32)
    xs = lib.tensor(x, device=device, requires_grad=backward)
    pool = getattr(functional, f"{spec.kind}_pool2d")

    def run():
        out = pool(xs, spec.kernel, spec.stride, spec.padding)
        if backward:
            out.sum().backward()
            xs.grad = None

    return run


def timed_rows(setup: Setup, specs, make_call, repeats: int, budget_s: float):
    """Rows of (title, passes, corrnet s, torch fp32 s, torch TF32 s, note)."""
    from corrnet.nn import functional as F

    torch = setup.torch
    rows = []
    for spec in specs:
        for backward in (False, True):
            passes = "fwd+bwd" if backward else "fwd"
            ours, note = attempt(
                f"{spec.title} {passes} corrnet",
                lambda spec=spec, backward=backward: median_seconds(
                    make_call(setup.corrnet, F, setup.device, spec, backward), setup.sync,
                    repeats, budget_s))
            times = []
            for tf32 in (False, True):
                setup.torch_tf32(tf32)
                theirs, _ = attempt(
                    f"{spec.title} {passes} torch",
                    lambda spec=spec, backward=backward: median_seconds(
                        make_call(torch, torch.nn.functional, setup.torch_device, spec,
                                  backward), setup.torch_sync, repeats, budget_s))
                times.append(theirs)
            setup.torch_tf32(False)
            rows.append((spec.title, passes, ours, times[0], times[1], note))
            print(f"{spec.title:52s} {passes:8s} corrnet {_ms(ours):>10s}  torch "
                  f"{_ms(times[0]):>10s}  (TF32 {_ms(times[1])})  torch/corrnet "
                  f"{_ratio(times[0], ours)}", flush=True)
    return rows


def table(rows) -> list[str]:
    lines = ["| case | passes | corrnet (cuda) | PyTorch fp32 | PyTorch / corrnet | "
             "PyTorch default (TF32) |", "|---|---|---:|---:|---:|---:|"]
    for title, passes, ours, theirs, tf32, note in rows:
        lines.append(f"| {title} | {passes} | {_ms(ours)} {note} | {_ms(theirs)} | "
                     f"{_ratio(theirs, ours)} | {_ms(tf32)} |")
    return lines


def geometric_mean_ratio(rows) -> float | None:
    ratios = [theirs / ours for _, _, ours, theirs, _, _ in rows if ours and theirs]
    if len(ratios) != len(rows) or not ratios:
        return None  # a failed row: no honest mean
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def layer_sections(setup: Setup, args, sections) -> list[str]:
    sys.path.insert(0, str(HERE))
    import run  # the CPU benchmark's suite: the same layers and pools

    suite = run.SMOKE if args.standin else run.FULL
    repeats, budget = (3, 0.05) if args.standin else ((5, 0.3) if args.quick else (20, 1.0))
    lines: list[str] = []
    if "layers" in sections:
        print("\n== The convolution layer suite (a)-(h), float32 ==", flush=True)
        rows = timed_rows(setup, suite.layers, conv_call, repeats, budget)
        mean = geometric_mean_ratio(rows)
        lines += ["### The convolution layer suite", ""] + table(rows) + [
            "", f"Geometric mean of PyTorch / corrnet over the {len(rows)} rows: "
            f"{_ratio(mean, 1.0) if mean else 'n/a (a row failed)'}; target >= 0.5: "
            f"{_verdict(mean, 0.5, 1.0) if mean else 'n/a'}.", ""]
    if "pooling" in sections:
        print("\n== Pooling, float32 ==", flush=True)
        rows = timed_rows(setup, suite.pools, pool_call, repeats, budget)
        lines += ["### Pooling", ""] + table(rows) + [""]
    return lines


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------

def _ms(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.3f} ms"


def _rate(value) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _ratio(numerator, denominator) -> str:
    if not numerator or not denominator:
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def _verdict(value, threshold, scale) -> str:
    if value is None:
        return "n/a"
    return "met" if value >= threshold * scale else "missed"


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.standin:
        os.environ["CORRNET_STANDIN_CUDA"] = os.environ.get("CORRNET_STANDIN_CUDA") or "1"
    import corrnet

    corrnet.devices.reset()
    library = corrnet.devices.library()
    if library is None or (library == "standin" and not args.standin):
        print("benchmarks/gpu.py: no CUDA GPU through CuPy here (corrnet.cuda.is_available() "
              "is False): run it on a machine with CuPy and a GPU, or pass --standin for a "
              "smoke run on the stand-in device (numbers meaningless)", file=sys.stderr)
        return 2
    if library == "standin":
        print("STAND-IN RUN: corrnet's 'GPU' is NumPy on the host and PyTorch runs on the "
              "CPU, on tiny shapes: these numbers mean NOTHING (a smoke test of this script)",
              flush=True)
    setup = Setup(standin=library == "standin")
    header = setup.versions()
    for line in header:
        print(line, flush=True)
    sections = set(args.only or ("lenet", "layers", "pooling"))
    lines = [f"## GPU: corrnet through CuPy against PyTorch CUDA (`make bench-gpu`, "
             f"{datetime.date.today().isoformat()})", ""]
    if setup.standin:
        lines += ["**Stand-in run: the numbers below mean nothing** (NumPy on the host, "
                  "PyTorch on the CPU, tiny shapes).", ""]
    lines += [f"- {line}" for line in header] + [
        "- float32; each time the median of calls between two `synchronize()`s, after two "
        "warm-up calls; PyTorch with TF32 off unless its column says TF32", ""]
    if "lenet" in sections:
        lines += ["### LeNet training", ""] + lenet_section(setup, args) + [""]
    lines += layer_sections(setup, args, sections)
    markdown = "\n".join(lines).rstrip() + "\n"
    print("\n" + markdown, flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown)
        print(f"written to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
