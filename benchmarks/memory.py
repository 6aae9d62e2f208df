"""Peak memory of one convolution forward+backward, measured in a fresh process.

benchmarks/run.py starts this script once per library, so that one library's allocations
(and its allocator's cached blocks) can't hide or inflate the other's:

    python benchmarks/memory.py corrnet '{"n": 8, "c_in": 3, "c_out": 64, "size": 224,
                                          "kernel": 7, "stride": 2, "padding": 3}'

It imports only that library, builds the float32 input, weight and bias, runs one warm-up
forward+backward (loss = out.sum()), and then measures one more: the high-water mark of
resident memory (RSS) during that call minus the resident memory just before it. Before that
call both processes hand their heap's free memory back to the system (glibc's malloc_trim):
corrnet keeps large freed blocks for reuse (kernels/heap.py), and blocks kept from the warm-up
would otherwise hide the call's working set. It prints one JSON line: {"library",
"growth_bytes", "before_kib", "peak_kib", "method"}.

On Linux the high-water mark is reset by writing "5" to /proc/self/clear_refs and read as
VmHWM from /proc/self/status. Where that isn't possible, it falls back to getrusage's
ru_maxrss, the process's lifetime peak: that one can't be reset, so it also counts the
warm-up call (the same size) and the imports (smaller) — an approximation, named in "method".
"""

from __future__ import annotations

import gc
import json
import resource
import sys
from pathlib import Path

import numpy as np


def read_status_kib(field: str) -> int | None:
    """A 'Vm...' line of /proc/self/status in KiB; None where /proc isn't there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_high_water_mark() -> bool:
    """Set VmHWM back to the current RSS (Linux); False where the kernel doesn't allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return read_status_kib("VmHWM") is not None


def trim_heap() -> None:
    """Give the heap's free memory back to the system (glibc); nothing elsewhere."""
    import ctypes
    import os

    if hasattr(os, "confstr") and os.confstr("CS_GNU_LIBC_VERSION"):
        ctypes.CDLL(None).malloc_trim(0)


def lifetime_peak_kib() -> int:
    """getrusage's ru_maxrss in KiB (macOS reports bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def conv_forward_backward(library: str, spec: dict):
    """One conv2d forward+backward on `library` ("corrnet" or "torch"), as run.conv_case
    builds it: loss = out.sum(), gradients for input, weight and bias."""
    if library == "corrnet":
        import corrnet as lib
        from corrnet.nn import functional
    elif library == "torch":
        import torch as lib
        from torch.nn import functional
    else:
        raise ValueError(f"library must be 'corrnet' or 'torch', got {library!r}")
    groups = spec.get("groups", 1)
    rng = np.random.default_rng(spec.get("seed", 0))
    x = rng.standard_normal((spec["n"], spec["c_in"], spec["size"], spec["size"]))
    w = rng.standard_normal((spec["c_out"], spec["c_in"] // groups, spec["kernel"],
                             spec["kernel"])) * 0.1
    b = rng.standard_normal(spec["c_out"])
    x, w, b = (lib.tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b))

    def step():
        out = functional.conv2d(x, w, b, stride=spec.get("stride", 1),
                                padding=spec.get("padding", 0), groups=groups)
        out.sum().backward()
        x.grad = w.grad = b.grad = None

    return step


def measure(library: str, spec: dict) -> dict:
    step = conv_forward_backward(library, spec)
    step()  # warm-up: lazy initialisation, compiled kernels, allocator pools
    if library == "corrnet":   # numba's set-up, started at import, is not the step's memory
        from corrnet.kernels import jit

        if jit._warm_up_thread is not None:
            jit._warm_up_thread.join()
    gc.collect()
    trim_heap()
    if reset_high_water_mark():
        before = read_status_kib("VmRSS")
        step()
        peak = read_status_kib("VmHWM")
        method = "VmHWM after clear_refs"
    else:
        before = read_status_kib("VmRSS") or lifetime_peak_kib()
        step()
        peak = lifetime_peak_kib()
        method = "getrusage ru_maxrss (lifetime peak, not reset: approximate)"
    return {"library": library, "growth_bytes": max(0, peak - before) * 1024,
            "before_kib": before, "peak_kib": peak, "method": method}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], json.loads(sys.argv[2]))), flush=True)
