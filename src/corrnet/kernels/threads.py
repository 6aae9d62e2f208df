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

Waiting (`_Helpers`, `waiting.py`). A thread that sleeps until another wakes it wakes late on
the VMs measured: 20-50 microseconds after the call that wakes it. A kernel split between the
calling thread and a helper met that twice: the helper started its piece some 50-75 us after
it was handed out (median, measured in a LeNet training step and on the suite's (b)), and
the caller, done first, slept until the helper's piece was done. PyTorch's OpenMP threads
wait for their next region spinning for a while. corrnet's do too, with the GIL released
(compiled loops, `waiting.py`): a helper, after each job, spins for `SPIN_SECONDS` on the
count of jobs handed out before it sleeps on the pool's queue; the calling thread spins on a
job's end for `WAIT_SPIN_SECONDS` before it sleeps on the job's lock. A helper writes a job's
end once it released the GIL, so that the caller finds the GIL free as it returns to
Python. A helper that sees a job while the caller still holds the GIL (the caller hands out
the job, then calls its own piece, whose compiled kernel releases the GIL as it starts)
would sleep on the GIL instead: so `run_shared` hands out jobs through the pool's gate, a
counter from which the caller's kernel takes its first job once it runs, and the helper
waits for that take before it takes the GIL. Measured on the suite's (b) forward, back to
back: the helper starts 18-38 us after the hand-off (was 53-75), and the caller waits 7-15 us
for its end (was 7-52). Without the compiled kernels nothing spins.

Every function here may be called from any thread while others compute: `set_num_threads`
puts a new helper pool in place of the old one (under `_lock`) and leaves the old one to
finish the pieces it was handed — a `split_run` already under way keeps its pool; its threads
exit once nothing refers to it any more.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import queue
import sys
import threading
import time
import weakref

MIN_PARALLEL_SIZE = 1 << 17   # elements
# seconds between two looks at the cores' load (see Under load)
LOAD_INTERVAL = 0.25
# a core busy with other processes this fraction of the time is taken
TAKEN_BUSY = 0.6
# after a job, a helper spins this long for the next one before it sleeps (see Waiting)
SPIN_SECONDS = 300e-6
# a thread waiting for a helper's job spins this long before it sleeps
WAIT_SPIN_SECONDS = 2e-3


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_threads = _cores()
_pool = None          # the _Helpers, started on first use
_lock = threading.Lock()   # held while the pool is replaced or started


def _forget_helpers_in_child() -> None:
    # a forked child has none of its parent's helper threads: it starts its own pool
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_helpers_in_child)


def get_num_threads() -> int:
    """The number of threads corrnet's kernels use."""
    return _threads


def set_num_threads(count: int) -> None:
    """Use `count` threads for corrnet's kernels (elementwise passes and compiled kernels).

    Safe while other threads compute: their passes finish on the pool they started with (its
    threads exit once it is unreferenced and the jobs handed to it are done), later ones use
    a pool of the new size; compiled kernels read the count on each call."""
    global _threads, _pool
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_num_threads: count must be a positive int, got {count!r}")
    with _lock:
        _threads = count
        _pool = None     # not shut down: a split_run may be handing it pieces right now


class _Job:
    """One piece of work handed to a helper: ``call(*arguments)``; `result()` waits for it."""

    __slots__ = ("call", "arguments", "done", "finished", "value", "error")

    def __init__(self, call, arguments, done):
        self.call, self.arguments = call, arguments
        self.done = done                         # done[0] = 1 once it ran (an int64 array)
        self.finished = _thread.allocate_lock()  # held until it ran
        self.finished.acquire()
        self.value = self.error = None

    def run(self) -> None:
        try:
            self.value = self.call(*self.arguments)
        except BaseException as error:   # noqa: BLE001  (raised again by result())
            self.error = error
        self.call = self.arguments = None
        self.finished.release()

    def result(self):
        """The call's value, or its exception raised again, once it ran: spinning for at most
        `WAIT_SPIN_SECONDS` (see "Waiting" in the module docstring), then asleep."""
        cycle_limit = _spin.wait_cycles
        if cycle_limit and not self.done[0]:
            _spin.waits.wait_for_change(self.done, 0, cycle_limit)
        with self.finished:
            pass
        if self.error is not None:
            raise self.error
        return self.value


class _Helpers:
    """corrnet's helper threads (`count` of them), which run the jobs handed to `submit` in the
    order they came; each one notes, as it starts, its thread id and the cores it may run on
    (its affinity, inherited from the thread that started it). Between jobs a helper spins for
    a while before it sleeps (see "Waiting" in the module docstring). Its threads exit once
    nothing refers to the pool any more and the jobs handed to it are done."""

    def __init__(self, count: int):
        import numpy as np  # (not at import: see quiet_blas_threads)

        self.cores: dict[int, frozenset[int]] = {}     # thread id -> the cores it may use
        self.cores_lock = threading.Lock()             # held while `cores` is written or read
        self.kept_off: tuple[int, int] | None = None   # (core, helpers) of the last placing
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.posted = np.zeros(1, np.int64)            # jobs handed out so far
        self.posted_lock = threading.Lock()            # held while `posted` is counted up
        self.gate = np.zeros(1, np.int64)              # run_shared's counter (see run_shared)
        self.gated_post = np.zeros(1, np.int64)        # the post that waits for it to move
        self.gate_lock = threading.Lock()              # held by the run_shared using the gate
        self._new_done = lambda: np.zeros(1, np.int64)
        for number in range(count):
            threading.Thread(target=_serve, name=f"corrnet_{number}", daemon=True,
                             args=(self.jobs, self.posted, self.gated_post, self.gate,
                                   self.cores, self.cores_lock)).start()
        weakref.finalize(self, _stop_helpers, self.jobs, count)
        _spin.measure_in_background()

    def submit(self, call, *arguments) -> _Job:
        """Hand ``call(*arguments)`` to the first helper free; its `result()` waits for it."""
        job = _Job(call, arguments, self._new_done())
        self.jobs.put(job)
        with self.posted_lock:          # (after the put: a helper that sees it finds the job)
            self.posted[0] += 1
        return job


_STOP = object()   # the job that tells a helper to exit (None is "no job" in _serve)


def _stop_helpers(jobs: queue.SimpleQueue, count: int) -> None:
    for _ in range(count):
        jobs.put(_STOP)


def _serve(jobs: queue.SimpleQueue, posted, gated_post, gate, cores: dict,
           cores_lock: threading.Lock) -> None:
    """A helper thread: run the jobs it takes from `jobs` until it takes `_STOP`. Between jobs
    it spins for `SPIN_SECONDS` on `posted` (the jobs handed out) before it sleeps on the queue;
    a job's end (`done`) is written as the spinning starts, with the GIL released."""
    import numpy as np  # (not at import: see quiet_blas_threads)

    with contextlib.suppress(AttributeError, OSError):   # no affinity: not placed
        own_cores = frozenset(os.sched_getaffinity(0))
        with cores_lock:
            cores[threading.get_native_id()] = own_cores
    job = None
    no_job = np.zeros(1, np.int64)      # the end written when there was no job yet
    while True:
        seen = int(posted[0])
        follower = None
        with contextlib.suppress(queue.Empty):
            follower = jobs.get_nowait()         # one already waiting: no spin
        if follower is None and _spin.helper_cycles:
            _spin.waits.finish_then_wait(no_job if job is None else job.done, posted, seen,
                                         gated_post, gate, _spin.helper_cycles)
            with contextlib.suppress(queue.Empty):
                follower = jobs.get_nowait()
        elif job is not None:
            job.done[0] = 1
        job = follower if follower is not None else jobs.get()
        if job is _STOP:
            return
        job.run()


class _Spin:
    """How long corrnet's threads spin (see "Waiting" in the module docstring), in cycles of
    the CPU's time-stamp counter: 0 (no spinning) until its rate is measured, as the first
    pool starts, and for good without the compiled kernels."""

    def __init__(self):
        self.helper_cycles = 0      # a helper, between jobs
        self.wait_cycles = 0        # the thread waiting for a job's result
        self.waits = None           # the compiled loops (waiting.py)
        self.thread: threading.Thread | None = None     # the one measuring, once started
        self._started = False
        self._lock = threading.Lock()

    def measure_in_background(self) -> None:
        """Measure the time-stamp counter's rate and load the compiled loops, once per
        process, on a thread of its own (5 ms of sleep; the loops compiled, with numba's
        cache empty): until then nothing spins."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self.thread = threading.Thread(target=self._measure, name="corrnet-spin",
                                           daemon=True)
        self.thread.start()

    def _measure(self) -> None:
        import numpy as np

        from . import jit
        if not jit.enabled():
            return
        from . import waiting
        rate = waiting.cycles_per_second()
        counter = np.zeros(1, np.int64)
        waiting.wait_for_change(counter, 0, 1)          # compiled, or loaded from the cache
        waiting.finish_then_wait(counter, counter, 1, counter, counter, 1)
        self.waits = waiting
        self.wait_cycles = int(rate * WAIT_SPIN_SECONDS)
        self.helper_cycles = int(rate * SPIN_SECONDS)


_spin = _Spin()


def helper_pool() -> _Helpers:
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
    that starts late or runs on a slower core takes fewer, where fixed runs keep the calling
    thread waiting for the slowest. For work whose jobs write disjoint outputs (the result
    does not depend on which thread took a job); sums over the jobs keep fixed runs
    (`run_pieces`), added in the same order every time.

    The counter is the pool's gate where no other caller's run_shared holds it: a spinning
    helper waits for the calling thread's first take from it before it takes the GIL (see
    "Waiting" in the module docstring)."""
    import numpy as np  # (not at import: see quiet_blas_threads)

    if threads < 2:
        kernel(*arguments, np.zeros(1, np.int64))
        return
    pool = helper_pool()
    gated = pool.gate_lock.acquire(blocking=False)
    try:
        counter = pool.gate if gated else np.zeros(1, np.int64)
        counter[0] = 0
        if gated:       # the last of the posts below waits for the gate
            pool.gated_post[0] = pool.posted[0] + threads - 1
        futures = [pool.submit(kernel, *arguments, counter) for _ in range(1, threads)]
        try:
            kernel(*arguments, counter)
        finally:        # no helper may still take from the counter once it is let go
            for future in futures:
                with contextlib.suppress(BaseException):
                    future.result()
        for future in futures:
            future.result()
    finally:
        if gated:
            pool.gated_post[0] = 0
            pool.gate_lock.release()


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
    with _outside_blocks():
        if _load.blas is not None:
            _load.blas.restore_original_limits()
            _load.blas = None
        if taken:
            # OpenBLAS only: other libraries' threads (PyTorch's, in the benchmark) are theirs
            from threadpoolctl import ThreadpoolController
            openblas = ThreadpoolController().select(internal_api="openblas")
            _load.blas = openblas.limit(limits=max(1, _cores() - taken))


_numba_blas = None     # threadpoolctl's controllers of the BLAS libraries compiled kernels call
# The thread counts that each running `numba_blas_on_one_thread` block gives back as it ends,
# the oldest block first; `_set_taken` changes the oldest's (see `_outside_blocks`)
_blocks_lock = threading.Lock()
_held_counts: list = []


def _kernels_blas() -> list:
    """threadpoolctl's controllers of the BLAS libraries that compiled kernels call: NumPy's
    (`blas.product_into`, where `blas.gemm_for` reaches it) and SciPy's (numba's np.dot,
    through scipy.linalg.cython_blas)."""
    global _numba_blas
    if _numba_blas is None:
        import scipy.linalg.cython_blas  # noqa: F401 (loads the library numba calls)
        from threadpoolctl import ThreadpoolController

        from . import blas
        libraries = [lib for lib in ThreadpoolController().lib_controllers
                     if lib.user_api == "blas" and f"{os.sep}scipy" in lib.filepath]
        numpy_blas = blas.controller()
        if numpy_blas is not None and numpy_blas.filepath not in [
                lib.filepath for lib in libraries]:
            libraries.append(numpy_blas)
        _numba_blas = libraries
    return _numba_blas


@contextlib.contextmanager
def numba_blas_on_one_thread():
    """Run the block with the BLAS libraries that compiled kernels call (`_kernels_blas`) on
    one thread, and give them back their counts after. A compiled kernel that multiplies
    matrices from corrnet's own threads wants its products done on the calling thread:
    OpenBLAS's threads, once woken for a large product, busy-wait for the next one and slow
    down whatever runs after (measured: im2col's forward of the suite's (c) 15 ms alone, 60 ms
    after a pass whose products ran on SciPy's BLAS threads). (OpenBLAS 0.3.31 ignores a
    count set from another thread than the one that set it first, usually the main thread:
    a block in another thread changes nothing there.)"""
    libraries = _kernels_blas()
    with _blocks_lock:
        counts = [lib.num_threads for lib in libraries]
        _held_counts.append(counts)
        for lib in libraries:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        with _blocks_lock:
            # (this block's own list: another block's may hold the same counts)
            del _held_counts[[id(held) for held in _held_counts].index(id(counts))]
            for lib, count in zip(libraries, counts, strict=True):
                lib.set_num_threads(count)


@contextlib.contextmanager
def _outside_blocks():
    """For a change of BLAS thread counts (`_set_taken`) while kernels' blocks run: the
    libraries show, during the change, the counts the oldest block will give back, which
    then become the changed ones, and go back to one thread after it. (threadpoolctl's
    limit keeps the counts it finds, to give them back later: inside a block it would keep
    one thread, and the block's end would undo the limit: NumPy's BLAS on every core under
    load, then on one for good once the load was gone.)"""
    with _blocks_lock:
        if not _held_counts:
            yield
            return
        libraries, outside = _kernels_blas(), _held_counts[0]
        for lib, count in zip(libraries, outside, strict=True):
            lib.set_num_threads(count)
        try:
            yield
        finally:
            outside[:] = [lib.num_threads for lib in libraries]
            for lib in libraries:
                lib.set_num_threads(1)


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
