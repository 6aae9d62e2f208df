"""Optional compiled kernels: numba, where NumPy can't reach the speed a kernel needs.

A few loops cannot be written fast as whole-array NumPy operations: a max pool that finds
each window's maximum and its position in one pass, a depthwise or single-channel filter that
multiplies and adds in registers instead of one full-array pass per kernel cell. Those
kernels are written once as plain Python loops and compiled by numba when it is installed
(``pip install corrnet[fast]``); every one of them has a NumPy fallback, and the tests run
both.

    @jit(parallel=True)
    def kernel(x, out):
        for n in prange(x.shape[0]):     # prange: parallel under numba, range otherwise
            ...

Nothing is compiled at import: numba itself is imported, and a kernel compiled (or loaded
from numba's on-disk cache, ``cache=True``), on the kernel's first call.

Switches: the environment variable ``CORRNET_NUMBA=0`` turns the compiled kernels off;
``use_compiled(False)`` does the same at run time (a context manager too).

Threads. Every kernel may be called from several Python threads at once (a user's threads,
corrnet's helper threads). A serial kernel (``jit()``) runs on the calling thread with the GIL
released and shares nothing. A parallel one (``jit(parallel=True)``) runs on numba's thread
pool, and numba's workqueue layer (the one corrnet picks, see `load_numba`) aborts the whole
process when two threads enter a parallel region at once ("Concurrent access"). So one
thread at a time runs the parallel build, under `_parallel_region`; a thread that finds it
taken runs a serial build of the same kernel on its own thread instead of waiting: no abort,
no deadlock, and two threads still use two cores. numba's thread count is per thread, so the
parallel build is given corrnet's `threads.get_num_threads()` on each call.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import threading
import types

import numpy as np

from . import threads

AVAILABLE = importlib.util.find_spec("numba") is not None
_enabled = AVAILABLE and os.environ.get("CORRNET_NUMBA", "1") != "0"

prange = range   # the name the kernels use; numba's prange is put in its place when compiling


def enabled() -> bool:
    """Whether the compiled kernels run (numba installed and not switched off)."""
    return _enabled


def runs_compiled(dtype) -> bool:
    """Whether a compiled kernel runs for arrays of this dtype: the kernels are on, and the
    dtype is one they are written for (float32 or float64)."""
    return _enabled and np.dtype(dtype) in (np.float32, np.float64)


@contextlib.contextmanager
def _restoring(previous: bool):
    global _enabled
    try:
        yield
    finally:
        _enabled = previous


def use_compiled(flag: bool):
    """Turn the compiled kernels on or off; returns a context manager that restores the
    previous setting, so both ``use_compiled(False)`` and ``with use_compiled(False):`` work.
    Asking for them without numba installed raises ImportError."""
    global _enabled
    if flag and not AVAILABLE:
        raise ImportError("corrnet's compiled kernels need numba: pip install corrnet[fast]")
    previous, _enabled = _enabled, bool(flag)
    return _restoring(previous)


def load_numba():
    """Import numba, set up for corrnet (its own thread pool) the first time; every use of
    numba in corrnet goes through here."""
    import numba

    global _configured
    if not _configured:
        with _compile_lock:
            if not _configured and "NUMBA_THREADING_LAYER" not in os.environ:
                # numba's own thread pool: its OpenMP layer would share (and reset) the OpenMP
                # thread count of other libraries in the process, PyTorch's too
                numba.config.THREADING_LAYER = "workqueue"
            _configured = True
    return numba


_configured = False
# held while a thread compiles a kernel (or sets numba up): each kernel is compiled once
_compile_lock = threading.RLock()
# held by the one thread running a parallel kernel on numba's threads (see the docstring)
_parallel_region = threading.Lock()


def _after_fork_in_child() -> None:
    # a fork taken while another thread held a lock leaves it held in the child for good
    global _compile_lock, _parallel_region
    _compile_lock, _parallel_region = threading.RLock(), threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def numba_loaded() -> bool:
    return _configured


def jit(parallel: bool = False, reassociate: bool = False):
    """Decorator: compile the function with numba (nopython, cached on disk) on its first
    call. The plain-Python function stays reachable as ``.py_func``; callers decide between
    it and a NumPy path with `enabled()`.

    Floating point stays IEEE: no fast-math assumptions about NaN or infinity. Division
    follows NumPy (x / 0 is inf or NaN, not an exception): the check for a zero divisor that
    Python's rule needs keeps a loop from vectorizing. `reassociate=True` lets LLVM reorder
    sums and fuse multiply-adds (fast-math flags ``reassoc`` and ``contract``, nothing else),
    so that a loop that sums into one number (a dot product) vectorizes; its result then
    differs from the sequential sum by rounding only.

    `parallel=True` compiles its ``prange`` loops onto numba's threads; the call is safe from
    several threads at once (see the module docstring): a thread that finds numba's threads
    busy with another call runs a serial build (compiled on first need) instead.
    """

    def decorate(function):
        builds = {}     # "parallel" or "serial" -> numba's dispatcher, compiled on first use

        def build(kind: str):
            dispatcher = builds.get(kind)
            if dispatcher is None:
                with _compile_lock:
                    dispatcher = builds.get(kind)
                    if dispatcher is None:
                        # (a parallel kernel's serial build is cached under a name of its own)
                        dispatcher = builds[kind] = _compile(
                            function, kind == "parallel", reassociate,
                            "__serial" if parallel and kind == "serial" else "")
            return dispatcher

        if not parallel:
            @functools.wraps(function)
            def call(*args):
                return build("serial")(*args)
        else:
            @functools.wraps(function)
            def call(*args):
                if not _parallel_region.acquire(blocking=False):
                    # another thread is in a parallel region: numba's workqueue would abort
                    return build("serial")(*args)
                try:
                    kernel = build("parallel")
                    _use_corrnet_thread_count()
                    return kernel(*args)
                finally:
                    _parallel_region.release()

        call.py_func = function
        return call

    return decorate


def _compile(function, parallel: bool, reassociate: bool, name_suffix: str):
    """numba's dispatcher for `function`, with numba's prange in place of the module's range
    alias (a plain range when not parallel). numba's disk cache keys a build by its qualified
    name and argument types, not by `parallel`: a second build of one function needs a
    `name_suffix` of its own."""
    numba = load_numba()
    source = types.FunctionType(
        function.__code__, {**function.__globals__, "prange": numba.prange},
        function.__name__, function.__defaults__, function.__closure__)
    source.__module__ = function.__module__
    source.__qualname__ = function.__qualname__ + name_suffix
    return numba.njit(cache=True, parallel=parallel, nogil=True, error_model="numpy",
                      fastmath={"reassoc", "contract"} if reassociate else False)(source)


def _use_corrnet_thread_count() -> None:
    """Give numba's parallel regions started from this thread corrnet's thread count (numba's
    count is per thread: a thread that never set it gets all of numba's threads)."""
    import numba
    wanted = min(threads.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if numba.get_num_threads() != wanted:
        numba.set_num_threads(wanted)
