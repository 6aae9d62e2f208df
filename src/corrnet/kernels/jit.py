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
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import types

import numpy as np

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
    """Import numba, set up for corrnet (its own thread pool, `threads.get_num_threads()`
    threads) the first time; every use of numba in corrnet goes through here."""
    import numba

    global _configured
    if not _configured:
        if "NUMBA_THREADING_LAYER" not in os.environ:
            # numba's own thread pool: its OpenMP layer would share (and reset) the OpenMP
            # thread count of other libraries in the process, PyTorch's too
            numba.config.THREADING_LAYER = "workqueue"
        from .threads import apply_to_numba
        apply_to_numba()
        _configured = True
    return numba


_configured = False


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
    """

    def decorate(function):
        compiled = None

        @functools.wraps(function)
        def call(*args):
            nonlocal compiled
            if compiled is None:
                numba = load_numba()
                # the same code, with numba's prange in place of the module's range alias
                source = types.FunctionType(
                    function.__code__, {**function.__globals__, "prange": numba.prange},
                    function.__name__, function.__defaults__, function.__closure__)
                source.__module__ = function.__module__
                source.__qualname__ = function.__qualname__
                compiled = numba.njit(
                    cache=True, parallel=parallel, nogil=True, error_model="numpy",
                    fastmath={"reassoc", "contract"} if reassociate else False)(source)
            return compiled(*args)

        call.py_func = function
        return call

    return decorate
