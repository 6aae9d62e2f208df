"""Issue 14's big-image checks, kept out of the test run: corrnet.filters on a large image
against scipy.ndimage and OpenCV (time and largest difference), and corrnet.io / corrnet
filter on a large RGB file.

    PYTHONPATH=src python benchmarks/image_filters.py [--size 4096]

Prints one row per filter: best of 3 wall times in seconds and the largest absolute
difference from each oracle on the same boundary ('symm' = 'reflect' = BORDER_REFLECT).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

import corrnet
from corrnet import filters, io
from corrnet.cli import main

try:
    import cv2
except ImportError:  # OpenCV is a benchmark extra
    cv2 = None


def best_of(fn, repeat=3):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def filter_rows(size: int):
    X = np.random.default_rng(0).random((size, size))
    reflect = cv2.BORDER_REFLECT if cv2 is not None else None
    f64 = cv2.CV_64F if cv2 is not None else None
    cases = [
        ("sobel (magnitude)", lambda: filters.sobel(X),
         lambda: np.hypot(ndi.sobel(X, 0), ndi.sobel(X, 1)),
         cv2 and (lambda: np.hypot(cv2.Sobel(X, f64, 1, 0, borderType=reflect),
                                   cv2.Sobel(X, f64, 0, 1, borderType=reflect)))),
        ("laplacian", lambda: filters.laplacian(X), lambda: ndi.laplace(X),
         cv2 and (lambda: cv2.Laplacian(X, f64, ksize=1, borderType=reflect))),
        ("gaussian sigma 3", lambda: filters.gaussian(X, 3.0),
         lambda: ndi.gaussian_filter(X, 3.0),
         cv2 and (lambda: cv2.GaussianBlur(X, (25, 25), 3.0, borderType=reflect))),
        ("box 7", lambda: filters.box(X, 7), lambda: ndi.uniform_filter(X, 7),
         cv2 and (lambda: cv2.blur(X, (7, 7), borderType=reflect))),
        ("correlate 15x15", lambda: filters.correlate(X, np.ones((15, 15)) / 225),
         lambda: ndi.correlate(X, np.ones((15, 15)) / 225),
         cv2 and (lambda: cv2.filter2D(X, -1, np.ones((15, 15)) / 225, borderType=reflect))),
    ]
    print(f"{size} x {size} float64, boundary symm      corrnet   scipy   OpenCV   "
          f"max |diff| scipy, OpenCV")
    for name, ours, scipy_fn, cv_fn in cases:
        ours()  # compile / warm up
        t_ours, got = best_of(ours)
        got = got.numpy()
        t_scipy, expected = best_of(scipy_fn)
        t_cv, cv_out = best_of(cv_fn) if cv_fn else (float("nan"), None)
        cv_diff = np.abs(got - cv_out).max() if cv_out is not None else float("nan")
        print(f"{name:38s} {t_ours:7.3f} {t_scipy:7.3f} {t_cv:8.3f}   "
              f"{np.abs(got - expected).max():.1e}, {cv_diff:.1e}")


def file_rows(size: int):
    y, x = np.mgrid[0:size, 0:size]
    rgb = np.stack([(x // 3 + y // 5) % 256, (x * y) % 251, (x + 2 * y) % 256]).astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.png"
        t_write, _ = best_of(lambda: io.write_png(corrnet.from_numpy(rgb), path), 1)
        t_read, _ = best_of(lambda: io.read_image(path), 1)
        print(f"\n3 x {size} x {size} PNG ({path.stat().st_size / 1e6:.1f} MB): write_png "
              f"{t_write:.2f} s, read_image {t_read:.2f} s")
        for kernel in ("sobel", "gaussian:2", "edge"):
            t, _ = best_of(lambda k=kernel: main(["filter", str(path),
                                                  str(Path(folder) / "out.png"),
                                                  "--kernel", k]), 1)
            print(f"corrnet filter --kernel {kernel}: {t:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--file-size", type=int, default=2048)
    args = parser.parse_args()
    filter_rows(args.size)
    file_rows(args.file_size)
