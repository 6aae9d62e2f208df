"""The thread policy: how many cores corrnet's own kernels use.

Three kinds of work run in parallel:

- matrix products, on the BLAS library's own threads (OpenBLAS under NumPy; set with its
  environment variables, e.g. ``OPENBLAS_NUM_THREADS``);
- compiled kernels (jit.py) and large elementwise passes (sigmoid, ...), cut into pieces
  (`run_pieces`: runs of jobs; `split_run`: slices along the first axis) that run on the
  calling thread and on a small pool of helper threads, ``get_num_threads() - 1`` of them:
  the compiled kernels and NumPy's loops release the GIL, so the pieces run on different
  cores at once. Below `MIN_PARALLEL_SIZE` elements the hand-off costs more than it saves,
  and the work runs whole on the calling thread. (numba's own thread pool is not used.)

``corrnet.set_num_threads(n)`` / ``corrnet.get_num_threads()`` set and read the count, as
PyTorch's functions of the same names. The default is the number of cores this process may
run on.

Under load (`active`). Two threads on two cores, one of which another process keeps busy, run
at the speed of the slower: every parallel region waits for its piece on the shared core, and
BLAS's threads, which busy-wait for their next job, take turns with the work (a LeNet training
step went from 20 ms to over 1 s with another process spinning; with one thread, 60 ms). So
the kernels ask `active()` for their thread count: `get_num_threads()` less the cores other
processes kept busy lately. It looks at most every `LOAD_INTERVAL` seconds: the busy time of
this process's cores in /proc/stat, less this process's own CPU time, over the time since the
last look (a core counts as taken from 60% busy). Where it takes cores away it also gives
OpenBLAS (NumPy's and SciPy's BLAS) that many threads fewer, through threadpoolctl, and gives
them back when the load is gone. Without /proc/stat (not Linux) the count stays as set.

BLAS's idle threads (`quiet_blas_threads`, at ``import corrnet``). After each product that
OpenBLAS splits among its threads, its helper threads keep polling for the next one, calling
sched_yield, for 2**28 CPU cycles (about 0.1 s) before they sleep. On two cores such a
thread takes its core's time from whatever runs next: corrnet's compiled kernels and helper
threads, PyTorch's. Measured on a 2-core AMD EPYC VM: 0.11 s of CPU burnt
per product, a LeNet training step (batch 256) 17 ms instead of 10.6 ms (PyTorch's, in the same
process, 14.3 instead of 12.8), and any layer that alternates products and compiled passes
(the stem (g), forward+backward) 115 ms instead of 55 ms whenever the polling thread shared
a core with one of corrnet's. So corrnet sets OpenBLAS's ``OPENBLAS_THREAD_TIMEOUT`` to
`BLAS_THREAD_TIMEOUT` (2**16 cycles, some 25 microseconds: back-to-back products still find
the threads awake), unless the environment already names one. OpenBLAS reads it when the
library loads, so that reaches the libraries loaded after ``import corrnet`` (NumPy's, where
corrnet is imported first; SciPy's, OpenCV's); one loaded before (``import numpy`` first) has
its helper threads stopped and started again with the new setting, through the functions
OpenBLAS exports for that (those its fork handlers use), found with threadpoolctl. A build
that exports none of them is left as it is, and so is every library when the importing
thread is not the process's only Python thread: as around a fork, a restart needs no other
thread inside that BLAS at the moment (a product running there would lose its helpers).
Timeouts of 2**4, 2**12, 2**16 and 2**20 cycles measured (two rounds): 2**16 the best or level
with the best on every row; 2**20 (0.4 ms) lost most of the gain on the 3x3 layers and all of
it on the stem.

Where the helpers run (`helper_pool`). A kernel split between the calling thread and a helper
wakes the helper and computes its own piece meanwhile, so the two must run on two cores. Some
kernels do not wake a thread on an idle core: the 2-core VMs these figures come from (Linux
6.18 with a `sched_vcpu_pack` setting) wake a thread that has been idle for a while on the
core of the thread that wakes it, and move it away only some 20 wakes later. Measured there,
LeNet's second layer forward (b), 1.3 ms when its two pieces ran on two cores: 2.3-3.3 ms for
the first dozen calls after any pause of 0.1 s or more (the benchmark's alternation with
PyTorch is such a pause), helper and caller on one core, each waiting ~1 ms per call for
the other. So each `helper_pool()` call, made by the thread about to hand out pieces, lets the
helpers run on every core they may use except the caller's current one (sched_getcpu; one
sched_setaffinity per helper where that core changed since the last call). A helper whose
affinity allows that core alone keeps it; the count of helpers is `active()`'s, which leaves
out cores that other processes keep busy.

Every function here may be called from any thread while others compute: `set_num_threads`
puts a new helper pool in place of the old one (under `_lock`) and leaves the old one to
finish the pieces it was handed — a `split_run` already under way keeps its pool; its threads
exit once nothing refers to it any more.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

MIN_PARALLEL_SIZE = 1 << 17   # elements
# seconds between two looks at the cores' load (see Under load)
LOAD_INTERVAL = 0.25
# a core busy with other processes this fraction of the time is taken
TAKEN_BUSY = 0.6


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


class _Helpers(ThreadPoolExecutor):
    """corrnet's helper threads; each one notes, as it starts, its thread id and the cores
    it may run on (its affinity, inherited from the thread that started it)."""

    def __init__(self, count: int):
        self.cores: dict[int, frozenset[int]] = {}     # thread id -> the cores it may use
        self.cores_lock = threading.Lock()             # held while `cores` is written or read
        self.kept_off: tuple[int, int] | None = None   # (core, helpers) of the last placing
        super().__init__(max_workers=count, thread_name_prefix="corrnet",
                         initializer=self._note_cores)

    def _note_cores(self) -> None:
        with contextlib.suppress(AttributeError, OSError):   # no affinity: not placed
            cores = frozenset(os.sched_getaffinity(0))
            with self.cores_lock:
                self.cores[threading.get_native_id()] = cores


def helper_pool() -> ThreadPoolExecutor:
    """The threads that work beside the calling one: ``get_num_threads() - 1`` of them,
    shared by every parallel kernel, started on first use; each call keeps them off the
    calling thread's core (`_keep_off_calling_core`), as the caller hands them work."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = _Helpers(max(1, _threads - 1))
            pool = _pool
    _keep_off_calling_core(pool)
    return pool


def _calling_core() -> int | None:
    """The core the calling thread runs on now (glibc's and musl's sched_getcpu), or None."""
    global _sched_getcpu
    if _sched_getcpu is None:
        try:
            import ctypes
            _sched_getcpu = ctypes.CDLL(None).sched_getcpu
            _sched_getcpu.restype = ctypes.c_int
        except (OSError, AttributeError):   # no such function here: nothing is placed
            _sched_getcpu = False
    if _sched_getcpu is False:
        return None
    core = _sched_getcpu()
    return core if core >= 0 else None


_sched_getcpu = None


def _keep_off_calling_core(pool: _Helpers) -> None:
    """Let the helpers run anywhere they may except on the core of the thread about to hand
    them work (see "Where the helpers run" in the module docstring). Only where the core or
    the number of helpers changed since the last call: then one sched_setaffinity per
    helper. A helper that may run on that core alone keeps its cores."""
    core = _calling_core()
    if core is None or pool.kept_off == (core, len(pool.cores)):
        return
    with pool.cores_lock:
        helpers = list(pool.cores.items())
    for thread_id, cores in helpers:
        with contextlib.suppress(OSError):   # a helper that has exited; a refusing sandbox
            os.sched_setaffinity(thread_id, (cores - {core}) or cores)
    # (two threads handing out work at once may each place the helpers: harmless)
    pool.kept_off = (core, len(helpers))


def split_run(kernel, *arrays) -> None:
    """Run ``kernel(*pieces)`` on pieces of `arrays` cut alike along their first axis, on
    `get_num_threads()` threads when the arrays are large (the kernel writes its results
    into one of them, piece by piece); else on the whole arrays, once (`run_pieces`)."""
    if not arrays[0].ndim:
        kernel(*arrays)
        return
    run_pieces(lambda first, end: kernel(*(array[first:end] for array in arrays)),
               arrays[0].shape[0], arrays[0].size)


def run_pieces(kernel, jobs: int, size: int, *arguments) -> list:
    """Run ``kernel(*arguments, first, end)`` over the jobs [0, jobs), cut into one run of
    consecutive jobs per thread (`active()` of them): the first run on the calling thread, the
    others on the helpers. Work on fewer than `MIN_PARALLEL_SIZE` elements (`size`) runs
    whole on the calling thread. The kernel releases the GIL (a compiled one) and its runs
    write disjoint parts of its output, or return their own results: the list of the runs'
    results, in the order of their jobs."""
    pieces = min(active(), jobs)
    if pieces < 2 or size < MIN_PARALLEL_SIZE:
        return [kernel(*arguments, 0, jobs)]
    bounds = [jobs * piece // pieces for piece in range(pieces + 1)]
    pool = helper_pool()
    futures = [pool.submit(kernel, *arguments, bounds[piece], bounds[piece + 1])
               for piece in range(1, pieces)]
    results = [kernel(*arguments, 0, bounds[1])]
    return results + [future.result() for future in futures]


def run_shared(threads: int, kernel, *arguments) -> None:
    """Run ``kernel(*arguments, counter)`` on `threads` threads, the calling one and the
    helpers, each taking its jobs from the shared counter (a one-element int64 array; a
    compiled kernel takes the next job with `simd.take_next`) until none is left: a helper
    woken late (some 50 microseconds on the VMs measured) or running on a slower core takes
    fewer, where fixed runs keep the calling thread waiting for the slowest. For work whose
    jobs write disjoint outputs (the result does not depend on which thread took a job);
    sums over the jobs keep fixed runs (`run_pieces`), added in the same order every time."""
    import numpy as np  # (not at import: see quiet_blas_threads)

    counter = np.zeros(1, np.int64)
    if threads < 2:
        kernel(*arguments, counter)
        return
    pool = helper_pool()
    futures = [pool.submit(kernel, *arguments, counter) for _ in range(1, threads)]
    kernel(*arguments, counter)
    for future in futures:
        future.result()


# --------------------------------------------------------------------------------------------
# under load: the threads that may run (see the module docstring)
# --------------------------------------------------------------------------------------------

class _Load:
    """The last look at the cores' load: when, their busy ticks, this process's CPU seconds,
    and the cores found taken by other processes."""

    def __init__(self):
        self.when = None
        self.busy_ticks = 0
        self.own_seconds = 0.0
        self.taken = 0
        self.blas = None          # threadpoolctl's limiter while BLAS runs on fewer threads


_load = _Load()
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_ticks() -> int | None:
    """Ticks this process's cores spent busy (user, nice, system, irq, softirq, steal), from
    /proc/stat; None where there is none."""
    try:
        cores = os.sched_getaffinity(0)
        with open("/proc/stat") as stat:
            lines = stat.read().splitlines()
    except (OSError, AttributeError):
        return None
    total = 0
    for line in lines:
        name, _, fields = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks = [int(field) for field in fields.split()]
            total += sum(ticks[:3]) + sum(ticks[5:8])     # all but idle and iowait
    return total


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def active() -> int:
    """The threads corrnet's kernels use now: `get_num_threads()`, less the cores that other
    processes kept busy since the last look (at least one)."""
    now = time.monotonic()
    if _load.when is not None and now - _load.when < LOAD_INTERVAL:
        return max(1, _threads - _load.taken)
    with _lock:
        if _load.when is None or now - _load.when >= LOAD_INTERVAL:
            _look(now)
    return max(1, _threads - _load.taken)


def _look(now: float) -> None:
    busy, own = _busy_ticks(), _own_seconds()
    if busy is None:
        _load.when = now
        return
    if _load.when is not None:
        elapsed = now - _load.when
        others = (busy - _load.busy_ticks) / _TICK - (own - _load.own_seconds)
        taken = int(max(0.0, others) / elapsed / TAKEN_BUSY) if elapsed > 0 else 0
        _set_taken(min(taken, max(0, _cores() - 1)))
    _load.when, _load.busy_ticks, _load.own_seconds = now, busy, own


def _set_taken(taken: int) -> None:
    """Record `taken` cores as busy elsewhere; BLAS gets that many threads fewer (or its own
    count back)."""
    if taken == _load.taken:
        return
    _load.taken = taken
    if _load.blas is not None:
        _load.blas.restore_original_limits()
        _load.blas = None
    if taken:
        # OpenBLAS only: other libraries' threads (PyTorch's, in the benchmark) are theirs
        from threadpoolctl import ThreadpoolController
        openblas = ThreadpoolController().select(internal_api="openblas")
        _load.blas = openblas.limit(limits=max(1, _cores() - taken))


_numba_blas = None     # threadpoolctl's controllers of the BLAS numba's np.dot calls (SciPy's)


@contextlib.contextmanager
def numba_blas_on_one_thread():
    """Run the block with the BLAS that numba's np.dot calls (SciPy's OpenBLAS, through
    scipy.linalg.cython_blas) on one thread, and give it back its count after. A compiled
    kernel that calls np.dot from corrnet's own threads wants its products done on the calling
    thread: OpenBLAS's threads, once woken for a large product, busy-wait for the next one
    and slow down whatever runs after (measured: im2col's forward of the suite's (c) 15 ms
    alone, 60 ms after a pass whose products ran on SciPy's BLAS threads)."""
    global _numba_blas
    if _numba_blas is None:
        import scipy.linalg.cython_blas  # noqa: F401 (loads the library numba calls)
        from threadpoolctl import ThreadpoolController
        _numba_blas = [lib for lib in ThreadpoolController().lib_controllers
                       if lib.user_api == "blas" and f"{os.sep}scipy" in lib.filepath]
    counts = [lib.num_threads for lib in _numba_blas]
    for lib in _numba_blas:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, count in zip(_numba_blas, counts, strict=True):
            lib.set_num_threads(count)


# --------------------------------------------------------------------------------------------
# BLAS's idle threads (see the module docstring)
# --------------------------------------------------------------------------------------------

# OpenBLAS's helper threads poll for the next product this many doublings of CPU cycles
# before they sleep (OPENBLAS_THREAD_TIMEOUT; OpenBLAS's own default: 28)
BLAS_THREAD_TIMEOUT = 16
_TIMEOUT_VARIABLES = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")


def quiet_blas_threads() -> None:
    """Set OpenBLAS's thread timeout to `BLAS_THREAD_TIMEOUT` where the environment names
    none: for the libraries loaded from now on, and, restarting their threads, for those
    already loaded. Called at ``import corrnet``, before corrnet imports NumPy."""
    if any(name in os.environ for name in _TIMEOUT_VARIABLES):
        return      # the user's choice, or a parent process's: every library read it
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(BLAS_THREAD_TIMEOUT)
    if "numpy" in sys.modules and threading.active_count() == 1:
        _restart_loaded_openblas()     # no other Python thread can be inside a BLAS call


def _restart_loaded_openblas() -> None:
    """Have every OpenBLAS already loaded read its environment again and restart its helper
    threads (shut down and started as around a fork); skip a library that read a timeout at
    load or does not export these functions."""
    import ctypes

    from threadpoolctl import ThreadpoolController

    for controller in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        try:
            library = ctypes.CDLL(controller.filepath)
            timeout, read_environment = library.openblas_thread_timeout, library.openblas_read_env
            stop_threads, start_threads = library.blas_thread_shutdown_, library.blas_thread_init
        except (OSError, AttributeError):
            continue
        if timeout() != 0:      # 0: no timeout in the environment when it loaded
            continue
        read_environment()
        stop_threads()
        start_threads()
