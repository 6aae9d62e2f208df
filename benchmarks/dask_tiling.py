"""Tiled network inference on Dask (`corrnet.dask.apply`, issue 16): throughput, peak
memory per worker, and the distributed scheduler's overhead per task.

    python benchmarks/dask_tiling.py            # (a) at 4096x4096, (b) up to 8000x8000, (c)
    python benchmarks/dask_tiling.py --huge     # (b) on the issue's 30000x30000 image too
    python benchmarks/dask_tiling.py --quick    # small sizes: checks that everything runs

(a) Throughput (input megapixels per second) of a small U-Net-like network: the in-memory
    ``net(image)`` against `apply` on the threaded scheduler, for a few chunk sizes.
(b) A single-channel float32 image generated lazily (a function of the pixel position: never
    materialized whole) through the same network on ``Client(LocalCluster(n_workers=2,
    threads_per_worker=1, memory_limit=...))``, the output reduced (sum and maximum) so that
    nothing whole is ever held. Each worker's peak resident memory (the kernel's high-water
    mark, VmHWM, reset before the run) against the bound stated from the chunk size and the
    network's width (one block's working set) plus what Dask may hold between tasks (its
    memory target and transfer limit, `held_config`), for a few chunk sizes and image sizes:
    the peak follows the chunk, not the image.
(c) The distributed scheduler's overhead per task: many tiny tasks (``client.map`` of a
    no-op, and a dask array of one-element chunks), wall time per task; the threaded
    scheduler's for comparison.

Run it on an idle machine: timings under load mean nothing. Not part of ``make test``
(tests/test_issue16_dask_tiling_benchmark.py runs ``--quick`` so that it cannot rot). Run it
as a script: the workers find `synthetic` and `SmallUNet` in the script they re-run as their
main module.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

import corrnet
from corrnet import nn
from corrnet.kernels.calibration import machine_key

#: sizes per mode: (a) image side and chunk sides; (b) chunk sides, image sides, memory limit
QUICK = {"a_size": 256, "a_chunks": (64, 128), "b_chunks": (128,), "b_sizes": (256,),
         "memory_limit": "2GiB", "held": 64, "c_tasks": 200, "width": 4}
FULL = {"a_size": 4096, "a_chunks": (512, 1024, 2048), "b_chunks": (512, 1024, 2048),
        "b_sizes": (2000, 4000, 8000), "memory_limit": "6GiB", "held": 256, "c_tasks": 5000,
        "width": 8}
HUGE_SIZE = 30000


class SmallUNet(nn.Module):
    """A U-Net-like network of two levels: `width` channels at full resolution, 2x at half,
    4x at a quarter; the skips joined by concatenation; nearest then bilinear upsampling;
    `classes` output channels at full resolution. Alignment 4 (two 2x2 max pools)."""

    def __init__(self, channels=1, width=8, classes=2):
        super().__init__()

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out),
                                 nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())

        self.enc1, self.enc2 = block(channels, width), block(width, 2 * width)
        self.pool = nn.MaxPool2d(2)
        self.bottom = block(2 * width, 4 * width)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec2 = block(6 * width, 2 * width)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear")
        self.dec1 = block(3 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        skip1 = self.enc1(x)
        skip2 = self.enc2(self.pool(skip1))
        deep = self.bottom(self.pool(skip2))
        x = self.dec2(corrnet.cat([skip2, self.up2(deep)], 1))
        x = self.dec1(corrnet.cat([skip1, self.up1(x)], 1))
        return self.head(x)


def make_net(width: int):
    corrnet.manual_seed(0)
    return SmallUNet(width=width).eval()


def synthetic(i, j):
    """The test image, a function of the pixel position (so any block can be made alone)."""
    return (np.sin(i * 0.013) * np.cos(j * 0.007) + 0.1 * np.sin((i + 2 * j) * 0.31)).astype(
        np.float32)


def _synthetic_block(block_info=None):
    """One (1, h, w) block of the test image, made from its position alone."""
    (_, _), (top, bottom), (left, right) = block_info[None]["array-location"]
    rows, cols = np.mgrid[top:bottom, left:right]
    return synthetic(rows, cols)[None]


def lazy_image(size: int, chunk: int):
    """The (1, size, size) test image in chunks of chunk x chunk, each made by one task with
    no inputs (`da.fromfunction(...)[None]` took two tasks per block and held the sliced
    copies). Dask still makes these cheap blocks well ahead of the network's tasks, so a
    worker holds more input blocks the larger the image (see BENCHMARKS.md)."""
    import dask.array as da

    sides = tuple(min(chunk, size - start) for start in range(0, size, chunk))
    return da.map_blocks(_synthetic_block, chunks=((1,), sides, sides), dtype=np.float32,
                         meta=np.empty((0, 0, 0), np.float32))


# -- environment ----------------------------------------------------------------------------



def environment() -> list:
    import dask
    import distributed

    return [("CPU", f"{machine_key()['cpu']} ({os.cpu_count()} logical cores)"),
            ("Python", platform.python_version()), ("NumPy", np.__version__),
            ("Dask", dask.__version__), ("distributed", distributed.__version__),
            ("corrnet", getattr(corrnet, "__version__", "?"))]


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# -- (a) throughput ---------------------------------------------------------------------------


def best_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput(config) -> list:
    import dask.array as da

    import corrnet.dask as cdask

    net, size = make_net(config["width"]), config["a_size"]
    image = synthetic(*np.meshgrid(np.arange(size), np.arange(size), indexing="ij"))[None]
    megapixels = size * size / 1e6
    repeats = 1 if size > 1024 else 3

    def in_memory():
        with corrnet.no_grad():
            return net(corrnet.from_numpy(image[None])).numpy()

    whole = in_memory()
    rows = [("in memory: net(image)", "-", f"{megapixels / best_time(in_memory, repeats):.2f}",
             "-")]
    for chunk in config["a_chunks"]:
        tiled = cdask.apply(net, da.from_array(image, chunks=(1, chunk, chunk)))
        result = tiled.compute(scheduler="threads")
        error = float(np.abs(result - whole[0]).max())
        seconds = best_time(lambda tiled=tiled: tiled.compute(scheduler="threads"), repeats)
        rows.append((f"apply, threads, chunk {chunk}", tiled.npartitions,
                     f"{megapixels / seconds:.2f}", f"{error:.1e}"))
    return rows


# -- (b) peak memory per worker ---------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def reset_peak() -> int:
    """In a worker: reset the high-water mark to the current RSS; the RSS in KiB."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass
    return _status_kib("VmRSS")


def read_peak() -> int:
    return _status_kib("VmHWM")


def spilled_bytes(dask_worker) -> float:
    """Bytes this worker has written to its spill directory so far."""
    return dask_worker.data.cumulative_metrics.get(("disk-write", "bytes"), 0.0)


def block_bound(net, channels: int, region: int, chunk: int, dtype_size: int = 4) -> dict:
    """Bytes one block task can hold at once, from the layer table on a region of `region`
    pixels a side: every layer's output and every concatenation alive together (an upper
    bound: each map is freed once used), plus the largest convolution's im2col matrix
    (C_in * 3 * 3 per output pixel), plus the joined input blocks and their crop, plus the
    output. Per pixel of the region this is a constant of the network (its width): the
    bound grows as the region's area, not the image's."""
    s = corrnet.summary(net, (1, channels, region, region))
    maps = sum(math.prod(row.output_shape) for row in s.rows)
    # inputs made outside any layer (the concatenations): those not the previous output
    maps += sum(math.prod(row.input_shape)
                for previous, row in zip(s.rows[:-1], s.rows[1:], strict=True)
                if row.input_shape != previous.output_shape)
    im2col = max((math.prod(row.output_shape[2:]) * row.input_shape[1] * 9
                  for row in s.rows if row.type == "Conv2d"), default=0)
    inputs = 2 * channels * region * region + 9 * channels * chunk * chunk
    output = math.prod(s.output_shape)
    return {"maps": maps * dtype_size, "im2col": im2col * dtype_size,
            "inputs": inputs * dtype_size, "output": output * dtype_size,
            "total": (maps + im2col + inputs + output) * dtype_size,
            "per_pixel": (maps + im2col) * dtype_size / (region * region)}


def held_config(config) -> dict:
    """Dask's own bound on what a worker holds between tasks: past `held` MiB of stored
    blocks (its memory target) it spills the least recently used to disk, and it fetches at
    most `held` / 4 MiB from other workers at once. Dask makes the cheap input blocks long
    before the network's tasks consume them (more of them the larger the image); without
    this they are bounded only by the worker's memory_limit."""
    import dask

    limit = dask.utils.parse_bytes(config["memory_limit"])
    held = config["held"] * 2**20
    return {"distributed.worker.memory.target": held / limit,
            "distributed.worker.memory.transfer": held / 4 / limit}


def cluster(config):
    """A LocalCluster of 2 worker processes of 1 thread each, and its Client; the workers
    spill held blocks past `config["held"]` MiB (`held_config`)."""
    import dask
    import distributed

    with dask.config.set({"distributed.worker.daemon": False, **held_config(config)}):
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                         memory_limit=config["memory_limit"],
                                         dashboard_address=None)
    return local, distributed.Client(local)


def peak_memory(client, config, sizes, chunks) -> tuple:
    """Rows (image side, chunk, seconds, MP/s, per worker: baseline, peak; bound) and the
    notes on the bound."""
    import dask

    import corrnet.dask as cdask

    net = make_net(config["width"])
    rows, notes = [], {}
    # warm up: the workers import corrnet and load its compiled kernels once
    dask.compute(cdask.apply(net, lazy_image(64, 32)).sum())
    for size in sizes:
        for chunk in chunks:
            if chunk > size:
                continue
            image = lazy_image(size, chunk)
            tiled = cdask.apply(net, image, progress=True)
            halo = tiled_halo(net, image)
            region = chunk + 2 * halo
            bound = block_bound(net, 1, region, chunk)
            held = config["held"] * 2**20 * 5 // 4  # stored blocks + incoming transfers
            spilled = client.run(spilled_bytes)
            baselines = client.run(reset_peak)
            start = time.perf_counter()
            total, _ = dask.compute(tiled.sum(), abs(tiled).max())
            seconds = time.perf_counter() - start
            peaks = client.run(read_peak)
            spilled = {w: b - spilled[w] for w, b in client.run(spilled_bytes).items()}
            workers = sorted(peaks)
            base = [baselines[w] * 1024 for w in workers]
            peak = [peaks[w] * 1024 for w in workers]
            limit = [b + bound["total"] + held for b in base]
            ok = all(p <= lim for p, lim in zip(peak, limit, strict=True))
            rows.append((f"{size}x{size}", chunk, f"{seconds:.1f}",
                         f"{size * size / 1e6 / seconds:.2f}",
                         " / ".join(f"{b / 2**20:.0f}" for b in base),
                         " / ".join(f"{p / 2**20:.0f}" for p in peak),
                         f"{bound['total'] / 2**20:.0f} + {held / 2**20:.0f}",
                         "yes" if ok else "NO",
                         " / ".join(f"{spilled[w] / 2**20:.0f}" for w in workers),
                         f"{float(total):.4g}"))
            notes[chunk] = (halo, region, bound)
    return rows, notes


def tiled_halo(net, image) -> int:
    """The halo `apply` adds before each chunk along H (as its plan computes it)."""
    from corrnet.dask.tiling import _plan

    plans, _ = _plan(net, image.shape[0], tuple(image.shape[-2:]), corrnet.float32,
                     image.shape)
    return max(plans[0].before, plans[0].after)


# -- (c) scheduler overhead -------------------------------------------------------------------


def _nothing(x):
    return x


def overhead(client, config) -> list:
    import dask.array as da

    count = config["c_tasks"]
    rows = []
    client.gather(client.map(_nothing, range(50), pure=False))  # warm up
    start = time.perf_counter()
    client.gather(client.map(_nothing, range(count), pure=False))
    seconds = time.perf_counter() - start
    rows.append(("distributed, client.map of a no-op", count,
                 f"{seconds * 1e6 / count:.0f}"))
    array = da.ones(count, chunks=1) + 1
    tasks = len(array.sum().__dask_graph__())
    start = time.perf_counter()
    array.sum().compute()
    seconds = time.perf_counter() - start
    rows.append(("distributed, (ones(n, chunks=1) + 1).sum()", tasks,
                 f"{seconds * 1e6 / tasks:.0f}"))
    start = time.perf_counter()
    array.sum().compute(scheduler="threads")
    seconds = time.perf_counter() - start
    rows.append(("threads, (ones(n, chunks=1) + 1).sum()", tasks, f"{seconds * 1e6 / tasks:.0f}"))
    return rows


# -- main ---------------------------------------------------------------------------------------


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--huge", action="store_true",
                        help=f"also (b) on a {HUGE_SIZE}x{HUGE_SIZE} image (several minutes)")
    parser.add_argument("--size", type=int, help="the side of (a)'s image")
    parser.add_argument("--huge-size", type=int, default=HUGE_SIZE,
                        help="the side of --huge's image")
    parser.add_argument("--huge-chunk", type=int, default=1024)
    parser.add_argument("--sizes", help="(b)'s image sides, comma-separated")
    parser.add_argument("--chunks", help="(b)'s chunk sides, comma-separated")
    args = parser.parse_args(argv)
    config = dict(QUICK if args.quick else FULL)
    if args.size:
        config["a_size"] = args.size
    if args.sizes:
        config["b_sizes"] = tuple(int(size) for size in args.sizes.split(","))
    if args.chunks:
        config["b_chunks"] = tuple(int(chunk) for chunk in args.chunks.split(","))
    started = time.perf_counter()
    out = ["# Tiled inference on Dask (benchmarks/dask_tiling.py)", "",
           table(("", "version"), environment()), ""]
    net = make_net(config["width"])
    params = sum(p.numel() for p in net.parameters())
    out += [f"Network: SmallUNet(width={config['width']}), {params:,} parameters, alignment 4.",
            ""]
    out += ["## (a) Throughput, input megapixels per second",
            f"Image {config['a_size']}x{config['a_size']}, one channel, float32.", "",
            table(("run", "blocks", "MP/s", "max abs diff vs in memory"), throughput(config)),
            ""]
    sections = [("(b) Peak memory per worker, 2 workers x 1 thread", config["b_sizes"],
                 config["b_chunks"])]
    if args.huge:
        sections.append((f"(b, huge) {args.huge_size}x{args.huge_size}", (args.huge_size,),
                         (args.huge_chunk,)))
    local, client = cluster(config)
    for title, sizes, chunks in sections:
        rows, notes = peak_memory(client, config, sizes, chunks)
        out += [f"## {title}", f"memory_limit {config['memory_limit']} per worker, held "
                f"blocks spilled past {config['held']} MiB and at most {config['held'] // 4} "
                "MiB fetched at once (`held_config`); the output reduced to its sum and "
                "maximum. Baseline: a worker's resident memory before the run; peak: its "
                "high-water mark during it; spilled: what it wrote to disk (MiB).", "",
                table(("image", "chunk", "seconds", "MP/s", "baseline", "peak",
                       "bound - baseline: block + held", "peak <= baseline + bound",
                       "spilled", "sum"), rows), ""]
        for chunk, (halo, region, bound) in notes.items():
            out.append(f"- chunk {chunk}: halo {halo}, region {region}x{region} px; bound "
                       f"{bound['total'] / 2**20:.0f} MiB = feature maps "
                       f"{bound['maps'] / 2**20:.0f} + im2col {bound['im2col'] / 2**20:.0f} + "
                       f"input blocks {bound['inputs'] / 2**20:.0f} + output "
                       f"{bound['output'] / 2**20:.0f} MiB ({bound['per_pixel']:.0f} B per "
                       "region pixel x region area, one task at a time per worker)")
        out.append("")
    out += ["## (c) Scheduler overhead per task (microseconds)", "",
            table(("run", "tasks", "us per task"), overhead(client, config)), "",
            f"Total run time {time.perf_counter() - started:.0f} s."]
    client.close()
    local.close()
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main()
