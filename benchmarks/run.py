"""Side-by-side timings of corrnet and PyTorch (and SciPy), written to BENCHMARKS.md.

Every row runs both libraries in this one process, interleaved (corrnet, torch, corrnet,
torch, ...), on the same float32 data, and reports the median of each and the ratio
torch-time / corrnet-time (above 1: corrnet is faster). Run it on an idle machine: with 2
cores, one other busy process makes every ratio meaningless.

    python benchmarks/run.py               # full run, rewrites BENCHMARKS.md
    python benchmarks/run.py --quick       # a smoke run (few repeats), prints only
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.signal
import torch

import corrnet
from corrnet.nn import functional as F

LENET_BATCH = 256

ROOT = Path(__file__).resolve().parents[1]


def _median_seconds(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def interleaved(candidates: dict, repeats: int, rounds: int = 5) -> dict[str, float]:
    """Median seconds per candidate, measured in alternating rounds after one warm-up call."""
    for fn in candidates.values():
        fn()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            samples[name] += _median_seconds(fn, max(1, repeats // rounds))
    return {name: statistics.median(values) for name, values in samples.items()}


def conv_case(n, c_in, c_out, size, kernel, stride=1, padding=0, backward=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, size, size)).astype(np.float32)
    w = (rng.standard_normal((c_out, c_in, kernel, kernel)) * 0.1).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)

    def make(lib, functional):
        xs = lib.tensor(x, requires_grad=backward)
        ws = lib.tensor(w, requires_grad=backward)
        bs = lib.tensor(b, requires_grad=backward)

        def run():
            out = functional.conv2d(xs, ws, bs, stride=stride, padding=padding)
            if backward:
                out.sum().backward()
                xs.grad = ws.grad = bs.grad = None

        return run

    return {"corrnet": make(corrnet, F), "torch": make(torch, torch.nn.functional)}


def pool_case(kind, shape, kernel, stride, padding=0, backward=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)

    def make(lib, functional):
        xs = lib.tensor(x, requires_grad=backward)
        pool = getattr(functional, f"{kind}_pool2d")

        def run():
            out = pool(xs, kernel, stride, padding)
            if backward:
                out.sum().backward()
                xs.grad = None

        return run

    return {"corrnet": make(corrnet, F), "torch": make(torch, torch.nn.functional)}


def filter_case(size, kernel, seed=0):
    """Single-channel 2-D cross-correlation (valid positions)."""
    rng = np.random.default_rng(seed)
    image = rng.random((size, size), dtype=np.float32)
    k = rng.random((kernel, kernel), dtype=np.float32)
    image_c, k_c = corrnet.from_numpy(image), corrnet.from_numpy(k)
    image_t, k_t = torch.from_numpy(image)[None, None], torch.from_numpy(k)[None, None]
    return {
        "corrnet": lambda: corrnet.corr2d(image_c, k_c),
        "torch": lambda: torch.nn.functional.conv2d(image_t, k_t),
        "scipy": lambda: scipy.signal.correlate2d(image, k, mode="valid"),
    }


def _torch_lenet():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


def lenet_case(train: bool, batch: int = LENET_BATCH, seed=0):
    """D2L's LeNet, the same weights in both: one SGD training step (forward, cross-entropy,
    backward, update) or one inference forward pass on a batch of 1x28x28 images."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    corrnet.manual_seed(seed)
    net_c = corrnet.models.lenet()
    net_t = _torch_lenet()
    net_t.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                           for k, v in net_c.state_dict().items()})
    x_c, y_c = corrnet.from_numpy(x), corrnet.from_numpy(y)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    opt_c = corrnet.optim.SGD(net_c.parameters(), lr=0.9)
    opt_t = torch.optim.SGD(net_t.parameters(), lr=0.9)
    loss_c, loss_t = corrnet.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def step(net, opt, loss, xb, yb):
        def run():
            opt.zero_grad()
            loss(net(xb), yb).backward()
            opt.step()
        return run

    def infer(lib, net, xb):
        def run():
            with lib.no_grad():
                net(xb)
        return run

    if train:
        return {"corrnet": step(net_c, opt_c, loss_c, x_c, y_c),
                "torch": step(net_t, opt_t, loss_t, x_t, y_t)}
    net_c.eval()
    net_t.eval()
    return {"corrnet": infer(corrnet, net_c, x_c), "torch": infer(torch, net_t, x_t)}


LAYERS = [
    ("(a) LeNet conv1: N=256, 1->6, 5x5, pad 2, 28x28", dict(n=256, c_in=1, c_out=6, size=28,
                                                            kernel=5, padding=2)),
    ("(b) LeNet conv2: N=256, 6->16, 5x5, 14x14", dict(n=256, c_in=6, c_out=16, size=14,
                                                       kernel=5)),
    ("(c) N=8, 64->64, 3x3 pad 1, 56x56", dict(n=8, c_in=64, c_out=64, size=56, kernel=3,
                                               padding=1)),
]
POOLS = [
    ("max 2x2 s2 on (256, 6, 28, 28)", ("max", (256, 6, 28, 28), 2, 2, 0)),
    ("max 3x3 s2 p1 on (8, 64, 112, 112)", ("max", (8, 64, 112, 112), 3, 2, 1)),
    ("avg 2x2 s2 on (256, 6, 28, 28)", ("avg", (256, 6, 28, 28), 2, 2, 0)),
]
FILTERS = [(512, 3), (512, 7), (2048, 3)]


def run(repeats: int) -> list[tuple[str, str, dict]]:
    rows = []
    for title, spec in LAYERS:
        for backward in (False, True):
            times = interleaved(conv_case(**spec, backward=backward), repeats)
            rows.append(("layers", f"{title}, {'fwd+bwd' if backward else 'fwd'}", times))
            print(_line(rows[-1]), flush=True)
    for title, (kind, shape, k, s, p) in POOLS:
        for backward in (False, True):
            times = interleaved(pool_case(kind, shape, k, s, p, backward), repeats)
            rows.append(("pooling", f"{title}, {'fwd+bwd' if backward else 'fwd'}", times))
            print(_line(rows[-1]), flush=True)
    for size, k in FILTERS:
        times = interleaved(filter_case(size, k), repeats)
        rows.append(("filtering", f"corr2d {size}x{size}, {k}x{k} kernel", times))
        print(_line(rows[-1]), flush=True)
    for train in (True, False):
        times = interleaved(lenet_case(train), repeats)
        what = "training step (SGD)" if train else "inference"
        rows.append(("lenet", f"LeNet {what}, batch {LENET_BATCH}", times))
        print(_line(rows[-1]), flush=True)
    return rows


def _line(row) -> str:
    _, title, times = row
    parts = [f"{name} {seconds * 1e3:.2f} ms" for name, seconds in times.items()]
    ratio = times["torch"] / times["corrnet"]
    return f"{title}: " + ", ".join(parts) + f", torch/corrnet {ratio:.2f}"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def write_markdown(rows, path: Path, repeats: int) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/run.py`). Medians of interleaved runs in one "
        "process, float32; ratio = PyTorch time / corrnet time (above 1: corrnet is faster).",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {_machine()}",
        f"- versions: Python {platform.python_version()}, corrnet {corrnet.__version__}, "
        f"NumPy {np.__version__}, SciPy {scipy.__version__}, PyTorch {torch.__version__} "
        f"({torch.get_num_threads()} threads)",
        f"- repeats per candidate: {repeats}",
        "",
    ]
    for section, heading in (("layers", "Convolution layers"), ("pooling", "Pooling"),
                             ("filtering", "Single-channel filtering"),
                             ("lenet", "LeNet (D2L) on 1x28x28 images")):
        section_rows = [r for r in rows if r[0] == section]
        names = list(section_rows[0][2])
        lines += [f"## {heading}", "",
                  "| case | " + " | ".join(f"{n} (ms)" for n in names) + " | torch / corrnet |",
                  "| --- |" + " ---: |" * (len(names) + 1)]
        for _, title, times in section_rows:
            cells = " | ".join(f"{times[n] * 1e3:.2f}" for n in names)
            lines.append(f"| {title} | {cells} | {times['torch'] / times['corrnet']:.2f} |")
        lines.append("")
        if section == "lenet":
            lines += ["Examples per second (batch / median time):", ""]
            for _, title, times in section_rows:
                rates = ", ".join(f"{n} {LENET_BATCH / times[n]:,.0f}" for n in names)
                lines.append(f"- {title}: {rates}")
            lines.append("")
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: few repeats, print only, BENCHMARKS.md untouched")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    rows = run(repeats)
    if not args.quick:
        target = ROOT / "BENCHMARKS.md"
        temporary = target.with_suffix(".md.tmp")
        write_markdown(rows, temporary, repeats)
        temporary.replace(target)  # atomic: a killed run leaves the old file whole
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
