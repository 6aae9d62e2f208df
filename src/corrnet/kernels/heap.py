"""The process heap: large arrays freed by one pass are reused by the next, not re-faulted.

Every convolution pass allocates arrays of megabytes (unrolled windows, Winograd's tiles, the
output, the gradients) and frees them a moment later. glibc's malloc serves such blocks with
a fresh ``mmap`` (blocks over its mmap threshold: 128 KiB at first, raised as blocks are
freed, at most 32 MiB) and gives them back with ``munmap``; what lies free at the top of its
heap it returns once there is more than its trim threshold. The next pass then touches fresh
pages, and each first touch is a page fault in the kernel, often a costly one on virtual
machines. Measured on a 2-core AMD EPYC VM, processes with and without these settings in
turn: 40 forward+backward passes of the layer suite's (c) (64 -> 64 channels, 3x3, 56x56,
N=8) spent 0.05 s in the kernel instead of 0.6 s. With OpenBLAS's idle threads quiet
(threads.py), two pairs: a LeNet training step at batch 256 12.2-13.3 ms -> 10.1-12.4 ms, (c)
53-57 ms -> 37-46 ms, D2L's ResNet-18 training step 1335-1343 ms -> 1170-1227 ms (a third pair,
in one of the machine's slow spells, came out level). PyTorch in the same processes, whose
oneDNN keeps its own buffers, did not change there (five pairs); but its large outputs come
from malloc too: on an Intel Xeon (Emerald Rapids, 2 cores), PyTorch's forward pass of the
benchmark's ResNet stem (a 25.7 MB output) took 24-29 ms in processes without corrnet and
6.7-10 ms in processes that imported it (three pairs; forward+backward 84-104 -> 72-82 ms,
the suite's (c) level). The benchmark's PyTorch runs in corrnet's process, with them.

So at ``import corrnet`` (`keep_freed_memory`), where the C library is glibc, corrnet sets

- ``M_MMAP_THRESHOLD`` to `MMAP_THRESHOLD` (256 MiB, the default memory budget of one pass's
  temporaries): blocks up to that size come from the heap, and a freed one is reused;
- ``M_TRIM_THRESHOLD`` to `TRIM_THRESHOLD` (512 MiB): the heap keeps up to that much free
  memory at its top instead of returning it at once.

The cost: the process's resident memory stays near its peak after a large computation,
instead of falling back (the peak itself does not grow: the same blocks are reused).
`release` hands the free memory back to the system (``malloc_trim``); ``corrnet.backends.memory``
shows the settings.

Left alone: where the environment already chose (``CORRNET_KEEP_FREED_MEMORY=0``, or any of
glibc's own ``MALLOC_*_`` variables or a ``glibc.malloc`` tunable in ``GLIBC_TUNABLES`` — Dask's
nanny, for one, sets ``MALLOC_TRIM_THRESHOLD_`` for its workers, whose memory it watches), and
on any other C library (macOS, musl), where the calls do not exist.
"""

from __future__ import annotations

import ctypes
import functools
import os

MMAP_THRESHOLD = 256 * 2**20
TRIM_THRESHOLD = 512 * 2**20

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# glibc's environment variables for the same settings; any of them means the user chose
_GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                    "MALLOC_MMAP_MAX_")

_kept = False     # whether keep_freed_memory changed the settings in this process


@functools.cache
def _glibc():
    """The process's C library through ctypes, where it is glibc; else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        return ctypes.CDLL(None)
    except (AttributeError, ValueError, OSError):   # no confstr, or no such name: not glibc
        return None


def chosen_elsewhere() -> str | None:
    """Why the heap's settings are not corrnet's to set: the variable that chose them, or
    None."""
    if os.environ.get("CORRNET_KEEP_FREED_MEMORY", "1") == "0":
        return "CORRNET_KEEP_FREED_MEMORY=0"
    for name in _GLIBC_VARIABLES:
        if name in os.environ:
            return name
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    return None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds as the module docstring says (once per process); whether they
    are corrnet's now."""
    global _kept
    if _kept or chosen_elsewhere() is not None:
        return _kept
    libc = _glibc()
    if libc is None:
        return False
    _kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                 and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _kept


def kept() -> bool:
    """Whether this process runs on corrnet's heap settings."""
    return _kept


def release() -> bool:
    """Give the heap's free memory back to the system now (glibc's ``malloc_trim(0)``);
    whether any was given back. Arrays still in use are untouched."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
