"""The thread policy: how many cores corrnet's own kernels use.

Three kinds of work run in parallel:

- matrix products, on the BLAS library's own threads (OpenBLAS under NumPy; set with its
  environment variables, e.g. ``OPENBLAS_NUM_THREADS``);
- compiled kernels (jit.py), on numba's threads, ``get_num_threads()`` of them;
- large elementwise passes (sigmoid, ...), split along their first axis into pieces that
  run on a small pool of Python threads: NumPy releases the GIL inside its loops, so the
  pieces run on different cores at once. Below `MIN_PARALLEL_SIZE` elements the hand-off
  costs more than it saves, and the pass runs whole on the calling thread.

``corrnet.set_num_threads(n)`` / ``corrnet.get_num_threads()`` set and read the count, as
PyTorch's functions of the same names. The default is the number of cores this process may
run on.

Every function here may be called from any thread while others compute: `set_num_threads`
puts a new helper pool in place of the old one (under `_lock`) and leaves the old one to
finish the pieces it was handed — a `split_run` already under way keeps its pool; its threads
exit once nothing refers to it any more.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

MIN_PARALLEL_SIZE = 1 << 17   # elements


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_threads = _cores()
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()   # held while the pool is replaced or started


def get_num_threads() -> int:
    """The number of threads corrnet's kernels use."""
    return _threads


def set_num_threads(count: int) -> None:
    """Use `count` threads for corrnet's kernels (elementwise passes and compiled kernels).

    Safe while other threads compute: their passes finish on the pool they started with (a
    ThreadPoolExecutor lets its threads go once it is unreferenced and its queue is empty),
    later ones use a pool of the new size; compiled kernels read the count on each call."""
    global _threads, _pool
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_num_threads: count must be a positive int, got {count!r}")
    with _lock:
        _threads = count
        _pool = None     # not shut down: a split_run may be handing it pieces right now


def helper_pool() -> ThreadPoolExecutor:
    """The threads that work beside the calling one: ``get_num_threads() - 1`` of them,
    shared by every parallel kernel, started on first use."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=max(1, _threads - 1),
                                           thread_name_prefix="corrnet")
            pool = _pool
    return pool


def split_run(kernel, *arrays) -> None:
    """Run ``kernel(*pieces)`` on pieces of `arrays` cut alike along their first axis, on
    `get_num_threads()` threads when the arrays are large (the kernel writes its results
    into one of them, piece by piece); else ``kernel(*arrays)``, once."""
    rows = arrays[0].shape[0] if arrays[0].ndim else 0
    pieces = min(_threads, rows)
    if pieces < 2 or arrays[0].size < MIN_PARALLEL_SIZE:
        kernel(*arrays)
        return
    bounds = [rows * piece // pieces for piece in range(pieces + 1)]
    pool = helper_pool()
    futures = [pool.submit(kernel, *(array[start:stop] for array in arrays))
               for start, stop in zip(bounds[1:-1], bounds[2:], strict=True)]
    kernel(*(array[:bounds[1]] for array in arrays))
    for future in futures:
        future.result()
