"""Issue 16's figures for corrnet.dask, kept out of the test run: tiled filtering throughput
(megapixels per second) on a large float32 image against corrnet's in-memory path on the whole
image and against dask_image.ndfilters on the same chunks and boundary, and batch inference
(examples per second) through corrnet.dask.predict against the in-process loop.

    PYTHONPATH=src python benchmarks/dask_filters.py [--size 8000] [--repeats 3] [--quick]

Dask runs its default threaded scheduler. Prints markdown tables (medians of the repeats),
with the machine's CPU and the versions; about 3 minutes on 2 cores at the default size.
``--quick`` runs a tiny size once (the test suite's smoke check).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

import corrnet
from corrnet import filters, models
from corrnet.kernels.calibration import machine_key

try:
    import dask
    import dask.array as da

    import corrnet.dask as cdask
except ImportError as err:  # pragma: no cover
    raise SystemExit(f"benchmarks/dask_filters.py needs Dask: pip install corrnet[dask] "
                     f"({err})") from err

try:
    from dask_image import ndfilters
except ImportError:  # a benchmark extra: pip install corrnet[bench]
    ndfilters = None


BUDGET_S = 10.0  # a figure whose runs took this long in all is not run again


def median_time(repeats: int, fn, *args):
    """(median wall time in seconds of fn(*args), the last result); fewer runs than `repeats`
    where they take longer than BUDGET_S in all (the slowest contender at 15x15)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
        if sum(times) > BUDGET_S:
            break
    return statistics.median(times), result


def compute(lazy_filter, X):
    return lazy_filter(X).compute()



def versions() -> str:
    import scipy

    parts = [f"Python {platform.python_version()}", f"NumPy {np.__version__}",
             f"SciPy {scipy.__version__}", f"Dask {dask.__version__}",
             f"corrnet {getattr(corrnet, '__version__', '?')}"]
    if ndfilters is not None:
        from importlib.metadata import version

        parts.append(f"dask-image {version('dask-image')}")
    return ", ".join(parts)


def filter_cases(sigma: float):
    """(name, corrnet in memory, corrnet.dask, dask_image): each a function of the image."""
    rng = np.random.default_rng(1)
    k3 = rng.standard_normal((3, 3)).astype(np.float32)
    k15 = rng.standard_normal((15, 15)).astype(np.float32)
    cases = []
    for name, K in (("correlate 3x3", k3), ("correlate 15x15", k15)):
        cases.append((name, lambda X, K=K: filters.correlate(X, K).numpy(),
                      lambda X, K=K: cdask.correlate(X, K),
                      ndfilters and (lambda X, K=K: ndfilters.correlate(X, K, mode="reflect"))))
    cases.append((f"gaussian sigma {sigma:g}",
                  lambda X: filters.gaussian(X, sigma).numpy(),
                  lambda X: cdask.gaussian(X, sigma),
                  ndfilters and (lambda X: ndfilters.gaussian_filter(X, sigma, mode="reflect",
                                                                     truncate=4.0))))
    return cases


def filtering_table(size: int, chunk_sizes, repeats: int, sigma: float) -> None:
    image = np.random.default_rng(0).random((size, size), dtype=np.float32)
    megapixels = size * size / 1e6
    warm = da.from_array(image[:64, :64], chunks=32)  # compile and load what runs, untimed
    for _, in_memory, ours, theirs in filter_cases(sigma):
        in_memory(image[:64, :64]), ours(warm).compute(), theirs and theirs(warm).compute()
    print(f"\n### Tiled filtering: {size} x {size} float32 ({megapixels:.3g} MP), boundary "
          f"symm ('reflect'), median of {repeats} runs (of fewer past {BUDGET_S:g} s)\n")
    print("| filter | chunks | corrnet in memory MP/s | corrnet.dask MP/s | "
          "dask_image MP/s | max abs diff (dask vs in memory) |")
    print("|---|---|---|---|---|---|")
    for name, in_memory, ours, theirs in filter_cases(sigma):
        in_memory(image)  # untimed: the first whole-image call pays the OS's fresh pages
        seconds, reference = median_time(repeats, in_memory, image)
        whole = f"{megapixels / seconds:.3g}"
        for chunk in chunk_sizes:
            X = da.from_array(image, chunks=chunk)
            seconds, result = median_time(repeats, compute, ours, X)
            diff = float(np.abs(result - reference).max())
            other = "n/a (pip install dask-image)"
            if theirs is not None:
                other_seconds, _ = median_time(repeats, compute, theirs, X)
                other = f"{megapixels / other_seconds:.3g}"
            print(f"| {name} | {chunk} | {whole} | {megapixels / seconds:.3g} | {other} | "
                  f"{diff:.2g} |")
            whole = "″"


def predict_table(count: int, batch_size: int, repeats: int) -> None:
    corrnet.manual_seed(0)
    net = models.lenet().eval()
    images = np.random.default_rng(0).random((count, 1, 28, 28), dtype=np.float32)

    def loop():
        with corrnet.no_grad():
            return np.concatenate([net(corrnet.from_numpy(images[i:i + batch_size])).numpy()
                                   for i in range(0, count, batch_size)])

    X = da.from_array(images, chunks=(batch_size, 1, 28, 28))
    loop_seconds, expected = median_time(repeats, loop)
    dask_seconds, got = median_time(
        repeats, lambda: cdask.predict(net, X, batch_size=batch_size).compute())
    assert np.array_equal(got, expected), "predict differs from the in-process loop"
    print(f"\n### Batch inference: LeNet on {count} images 1x28x28, batch {batch_size}, "
          f"median of {repeats}\n")
    print("| path | examples/s |")
    print("|---|---|")
    print(f"| in-process loop | {count / loop_seconds:,.0f} |")
    print(f"| corrnet.dask.predict (threads) | {count / dask_seconds:,.0f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8000, help="image side (default 8000)")
    parser.add_argument("--chunks", type=int, nargs="+", default=[1024, 2048],
                        help="chunk sides (default 1024 2048)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--examples", type=int, default=8192, help="images for predict")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny size, once: checks that the script runs")
    args = parser.parse_args(argv)
    sigma = 3.0
    if args.quick:
        args.size, args.chunks, args.repeats, args.examples = 96, [40], 1, 64
        sigma = 1.0
    print(f"CPU: {machine_key()['cpu']} ({os.cpu_count()} logical cores); {versions()}; "
          f"corrnet threads {corrnet.get_num_threads()}, Dask's threaded scheduler")
    filtering_table(args.size, args.chunks, args.repeats, sigma)
    predict_table(args.examples, 256 if not args.quick else 16, args.repeats)


if __name__ == "__main__":
    main()
