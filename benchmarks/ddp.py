"""Data-parallel LeNet training on MPI: examples/s with 1 and 2 ranks on this machine, the
gradient all-reduce's time and bytes per step, and the all-reduce bandwidth between 2 local
ranks from 64 KB to 64 MB, as a markdown table.

    python benchmarks/ddp.py            # run on an idle machine
    python benchmarks/ddp.py --quick    # a few steps and sizes: a smoke run (seconds)

The script starts itself under ``mpirun -n 1`` and ``mpirun -n 2`` (the mpirun beside the
Python running it, else the one on PATH); each run trains the book's LeNet (sigmoid, average
pooling) wrapped in DistributedDataParallel, on random 28x28 images, with a global batch of 256
(256 / N per rank), SGD: warm-up steps, then timed steps. Per step it reports:

    examples/s      256 x steps / wall time of the timed steps (the slowest rank's)
    all-reduce ms   the time rank 0 spends in DDP's end-of-backward wait (the part of the
                    gradient all-reduce that the backward pass did not hide) per step
    bytes/step      the gradients each rank all-reduces per step (LeNet's 61,706 float32
                    parameters); a ring all-reduce sends 2 (N - 1) / N times that per rank

The bandwidth sweep times ``Iallreduce`` of float32 buffers (median of repetitions) between
the 2 ranks: algbw = bytes / time, busbw = algbw x 2 (N - 1) / N (NCCL's convention: what
each link carries), the figure to scale from when estimating a step at 100 machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GLOBAL_BATCH = 256
SIZES = [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20]
QUICK_SIZES = [64 << 10, 1 << 20]


def mpirun() -> str | None:
    """The mpirun beside this Python (a virtual environment's, from the mpich wheel), else
    the one on PATH."""
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.exists() else shutil.which("mpirun")



# ---------------------------------------------------------------------------------------------
# one rank's measurements (under mpirun)
# ---------------------------------------------------------------------------------------------


def worker(out: Path, warmup: int, steps: int, sizes: list[int], repeats: int) -> None:
    import numpy as np

    import corrnet
    import corrnet.distributed as dist
    from corrnet import nn, optim
    from corrnet.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    corrnet.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84),
        nn.Sigmoid(), nn.Linear(84, 10))
    net = DDP(model)
    waited = [0.0]
    if world > 1:  # time DDP's end-of-backward wait
        finish = net._finish_pass

        def timed_finish():
            start = time.perf_counter()
            finish()
            waited[0] += time.perf_counter() - start
        net._finish_pass = timed_finish
    optimizer = optim.SGD(net.parameters(), lr=0.1)
    loss = nn.CrossEntropyLoss()
    share = GLOBAL_BATCH // world
    X = corrnet.randn(share, 1, 28, 28)
    y = corrnet.randint(0, 10, (share,))

    def step():
        optimizer.zero_grad()
        loss(net(X), y).backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    dist.barrier()
    waited[0] = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        step()
    dist.barrier()
    seconds = time.perf_counter() - start
    grad_bytes = sum(p._data.nbytes for p in model.parameters())
    result = {"world": world, "steps": steps, "seconds": seconds,
              "examples_per_s": GLOBAL_BATCH * steps / seconds,
              "allreduce_ms": 1e3 * waited[0] / steps, "grad_bytes": grad_bytes,
              "threads": corrnet.get_num_threads(), "sweep": []}
    if world > 1:
        current = dist._default_group()
        for size in sizes:
            buffer = np.ones(size // 4, dtype=np.float32)
            times = []
            for _ in range(repeats):
                dist.barrier()
                begin = time.perf_counter()
                dist._wait(current.comm.Iallreduce(current.MPI.IN_PLACE, buffer,
                                                   current.MPI.SUM), "sweep")
                times.append(time.perf_counter() - begin)
            result["sweep"].append({"bytes": size, "seconds": statistics.median(times)})
    if rank == 0:
        from mpi4py import MPI

        result["mpi"] = " ".join(MPI.Get_library_version().splitlines()[0].split())
        (out / f"ddp-{world}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------


def run(ranks: int, out: Path, args, timeout: float) -> dict:
    launcher = mpirun()
    if launcher is None:
        raise SystemExit("benchmarks/ddp.py: no mpirun found (pip install 'corrnet[mpi]')")
    command = [launcher, "-n", str(ranks), sys.executable, __file__, "--worker", str(out),
               "--warmup", str(args.warmup), "--steps", str(args.steps), "--repeats",
               str(args.repeats), "--sizes", ",".join(map(str, args.sizes))]
    subprocess.run(command, check=True, timeout=timeout)
    return json.loads((out / f"ddp-{ranks}.json").read_text())


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n >> 10} KB"


def table(results: list[dict]) -> str:
    import mpi4py
    import numpy

    from corrnet.kernels.calibration import machine_key

    one = results[0]
    lines = [f"CPU: {machine_key()['cpu']}, {os.cpu_count()} cores; "
             f"Python {platform.python_version()}, "
             f"NumPy {numpy.__version__}, mpi4py {mpi4py.__version__}, "
             f"{results[-1].get('mpi', 'MPI')}", "",
             "| ranks | threads/rank | examples/s | speed-up | all-reduce wait ms/step | "
             "gradient bytes/step/rank |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['world']} | {r['threads']} | {r['examples_per_s']:.0f} | "
                     f"{r['examples_per_s'] / one['examples_per_s']:.2f}x | "
                     f"{r['allreduce_ms']:.2f} | {r['grad_bytes']:,} |")
    sweep = results[-1]["sweep"]
    if sweep:
        n = results[-1]["world"]
        lines += ["", f"All-reduce between {n} local ranks (float32, median):", "",
                  "| size | time ms | algbw GB/s | busbw GB/s |", "|---|---|---|---|"]
        for entry in sweep:
            algbw = entry["bytes"] / entry["seconds"] / 1e9
            lines.append(f"| {_size(entry['bytes'])} | {entry['seconds'] * 1e3:.3f} | "
                         f"{algbw:.2f} | {algbw * 2 * (n - 1) / n:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps and sizes")
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=SIZES)
    args = parser.parse_args(argv)
    if args.worker:
        worker(Path(args.worker), args.warmup, args.steps, args.sizes, args.repeats)
        return 0
    if args.quick:
        args.warmup, args.steps, args.repeats, args.sizes = 1, 3, 3, QUICK_SIZES
    with tempfile.TemporaryDirectory() as folder:
        results = [run(ranks, Path(folder), args, timeout=60 if args.quick else 600)
                   for ranks in (1, 2)]
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
