"""How long `corrnet.identify_kernel` takes on large pairs (issue 14: 2048 x 2048 with a 7 x 7
kernel under 1 s; 4096 x 4096 with 15 x 15 must work).

    python benchmarks/identify.py            # both sizes
    python benchmarks/identify.py --quick    # 2048 x 2048 only

For each size: a random image X in [0, 1), a random normal kernel K and bias 0.5, Y made by
SciPy's FFT correlation; the first call (cold: FFT plans, imports) and the median of the next
`--repeats` calls, the largest error of the recovered kernel, and the growth of the process's
peak memory (resident set) over the images themselves.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import scipy.signal

import corrnet


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(side: int, k: int, repeats: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    X = rng.random((side, side))
    K = rng.normal(size=(k, k))
    Y = scipy.signal.fftconvolve(X, K[::-1, ::-1], mode="valid") + 0.5  # corr2d, 'valid'
    before = peak_mib()
    start = time.perf_counter()
    fit = corrnet.identify_kernel(X, Y)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        corrnet.identify_kernel(X, Y)
        times.append(time.perf_counter() - start)
    return {"side": side, "k": k, "first_s": first,
            "median_s": statistics.median(times) if times else float("nan"),
            "kernel_error": float(np.abs(fit.kernel - K).max()),
            "bias_error": abs(fit.bias - 0.5), "identifiable": fit.identifiable,
            "peak_growth_mib": peak_mib() - before,
            "images_mib": (X.nbytes + Y.nbytes) / 2**20}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2048 x 2048 only")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    args = parser.parse_args(argv)
    cases = [(2048, 7)] + ([] if args.quick else [(4096, 15)])
    print(f"corrnet.identify_kernel, float64, {corrnet.get_num_threads()} threads")
    for side, k in cases:
        r = measure(side, k, args.repeats if side <= 2048 else min(args.repeats, 1))
        print(f"{side}x{side} image, {k}x{k} kernel: first call {r['first_s']:.3f} s, "
              f"median of next {r['median_s']:.3f} s; kernel error {r['kernel_error']:.1e}, "
              f"bias error {r['bias_error']:.1e}; peak memory +{r['peak_growth_mib']:.0f} MiB "
              f"(the two images: {r['images_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
