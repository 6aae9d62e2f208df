"""Compiled kernels: numba, where NumPy can't reach the speed a kernel needs.

A few loops cannot be written fast as whole-array NumPy operations: a max pool that finds
each window's maximum and its position in one pass, a depthwise or single-channel filter that
multiplies and adds in registers instead of one full-array pass per kernel cell. Those
kernels are written once as plain Python loops and compiled by numba (a run-time dependency);
every one of them has a NumPy fallback, and the tests run both.

    @jit()
    def kernel(x, out, first, end):
        for n in range(first, end):      # the images of one piece of the work
            ...

Nothing is compiled, and numba is not even imported, at ``import corrnet`` (it would cost
0.1-0.3 s): numba is imported when a kernel path is first chosen (`enabled()`), and a kernel
compiled, or loaded from numba's on-disk cache (``cache=True``), on the kernel's first call.
A compilation (a first run, with the cache empty: about a second per kernel) says so on
stderr, one line per kernel, so that a first run does not look hung; loading from the cache
stays silent.

Where numba cannot be imported (not installed, or broken on this platform), corrnet runs on
its NumPy fallbacks and says so once on stderr, in one line.

Switches: the environment variable ``CORRNET_NUMBA=0`` turns the compiled kernels off;
``use_compiled(False)`` does the same at run time (a context manager too).

Threads. Every kernel may be called from several Python threads at once (a user's threads,
corrnet's helper threads): it runs on the calling thread with the GIL released and shares
nothing. A kernel that uses several cores is called on pieces of its work, one per thread,
by corrnet's own threads (threads.py: `run_pieces`, `split_run`), never on numba's thread
pool (``parallel=True``, prange): one pool for every kernel, whose helpers are kept off the
calling thread's core. (Winograd's transforms ran on numba's pool until that was measured:
its two workers, woken together, shared one core on the benchmark's VM, each waiting 2-7 ms
per forward pass of the suite's (c) for the other.)
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
import threading

import numpy as np

AVAILABLE = importlib.util.find_spec("numba") is not None
# None until the first `enabled()`: then True where numba imports (and CORRNET_NUMBA is not 0)
_enabled: bool | None = None if os.environ.get("CORRNET_NUMBA", "1") != "0" else False
_import_error: str | None = None   # why numba could not be imported, once it was tried


def enabled() -> bool:
    """Whether the compiled kernels run: not switched off, and numba imports (tried on the
    first call; where it fails, a one-line notice and the NumPy fallbacks from then on)."""
    global _enabled
    if _enabled is None:
        with _compile_lock:
            if _enabled is None:
                _enabled = _numba_imports()
    return _enabled


def _numba_imports() -> bool:
    """Import numba (set up for corrnet); False, with the one-line notice, where it fails."""
    global _import_error
    try:
        load_numba()
        return True
    except Exception as error:    # not installed, or broken (e.g. built for another NumPy)
        if _import_error is None:
            _import_error = ("not installed" if not AVAILABLE
                             else f"{type(error).__name__}: {error}")
            sys.stderr.write(f"corrnet: running without its compiled kernels (numba "
                             f"{_import_error}); NumPy fallbacks, several times slower\n")
        return False


def runs_compiled(dtype) -> bool:
    """Whether a compiled kernel runs for arrays of this dtype: the kernels are on, and the
    dtype is one they are written for (float32 or float64)."""
    return enabled() and np.dtype(dtype) in (np.float32, np.float64)


def runs_compiled_on(*arrays) -> bool:
    """Whether a compiled kernel takes these arrays (None skipped): `runs_compiled` for the
    first one's dtype, and every one a C-contiguous NumPy array of that dtype."""
    first = arrays[0]
    return (isinstance(first, np.ndarray) and runs_compiled(first.dtype)
            and all(a is None or (isinstance(a, np.ndarray) and a.dtype == first.dtype
                                  and a.flags.c_contiguous) for a in arrays))


def path() -> str:
    """Which kernels run, in words (for `corrnet demo` and the benchmark)."""
    if enabled():
        return f"compiled kernels (numba {load_numba().__version__})"
    if _import_error is None:
        return "NumPy fallbacks (compiled kernels switched off)"
    return f"NumPy fallbacks (numba {_import_error})"


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
    previous = enabled()
    if flag and not (AVAILABLE and _numba_imports()):
        raise ImportError("corrnet's compiled kernels need numba, which could not be imported: "
                          "pip install numba")
    _enabled = bool(flag)
    return _restoring(previous)


def load_numba():
    """Import numba, set up for corrnet (announcing compilations) the first time; every use
    of numba in corrnet goes through here."""
    import numba

    global _configured
    if not _configured:
        with _compile_lock:
            if not _configured:
                _announce_compilations(numba)
                from . import simd
                simd.build()        # (registered before any kernel that calls them compiles)
                for helper, reassociate in _inline_helpers:
                    _register_inline(helper, reassociate)
                _configured = True
    return numba


_configured = False
# held while a thread compiles a kernel (or sets numba up): each kernel is compiled once
_compile_lock = threading.RLock()


def _after_fork_in_child() -> None:
    # a fork taken while another thread held a lock leaves it held in the child for good
    global _compile_lock
    _compile_lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def numba_loaded() -> bool:
    return _configured


# ---------------------------------------------------------------------------------------------
# setting numba up ahead of the first kernel call
# ---------------------------------------------------------------------------------------------
# numba's first kernel call in a process costs about 0.4 s before any kernel runs, even with
# every kernel in its disk cache: `import numba` (0.1 s), then numba's one-time set-up of its
# typing and lowering registries (0.3 s, most of it importing scipy.linalg for numba's BLAS).
# `import corrnet` starts that work on a daemon thread, so it overlaps whatever the program
# does next (building a network, reading a data set, importing other libraries) instead of
# landing on the first training step. Nothing else is done there: no kernel is loaded, no
# setting changed; a failure is left for `enabled()` to meet and report on the main thread.
# A fork waits for the thread first (the child of a fork taken mid-import could inherit a held
# import lock). CORRNET_WARM_UP=0 (or CORRNET_NUMBA=0) leaves it all to the first kernel call.

_warm_up_thread: threading.Thread | None = None


def warm_up_in_background() -> threading.Thread | None:
    """Start setting numba up on a daemon thread (once per process); returns the thread, or
    None where there is nothing to do (numba off, missing, or already set up)."""
    global _warm_up_thread
    if (_warm_up_thread is not None or _enabled is False or not AVAILABLE or _configured
            or os.environ.get("CORRNET_WARM_UP", "1") == "0"):
        return None
    _warm_up_thread = threading.Thread(target=_warm_up, name="corrnet-numba-warm-up",
                                       daemon=True)
    _warm_up_thread.start()
    return _warm_up_thread


def _warm_up() -> None:
    try:
        with _compile_lock:     # as enabled() imports: one thread imports numba at a time
            load_numba()
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target
        # numba makes its target context on first use, under a lock of its own and then its
        # compiler lock: asked for here under the compiler lock, it would deadlock with a
        # user's thread that makes it at the same moment (``@numba.njit`` right after
        # ``import corrnet``), each thread holding the lock the other waits for
        context = cpu_target.target_context
        with global_compiler_lock:      # the lock numba's own compilations hold
            context.refresh()
    except Exception:   # noqa: BLE001  (enabled() imports numba again and reports the failure)
        pass


def _wait_for_warm_up() -> None:
    thread = _warm_up_thread
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(timeout=30)


os.register_at_fork(before=_wait_for_warm_up)


def jit(reassociate: bool = False, wide_vectors: bool = True):
    """Decorator: compile the function with numba (nopython, cached on disk) on its first
    call. The plain-Python function stays reachable as ``.py_func``; callers decide between
    it and a NumPy path with `enabled()`.

    Floating point stays IEEE: no fast-math assumptions about NaN or infinity. Division
    follows NumPy (x / 0 is inf or NaN, not an exception): the check for a zero divisor that
    Python's rule needs keeps a loop from vectorizing. `reassociate=True` lets LLVM reorder
    sums and fuse multiply-adds (fast-math flags ``reassoc`` and ``contract``, nothing else),
    so that a loop that sums into one number (a dot product) vectorizes; its result then
    differs from the sequential sum by rounding only.

    Vector width. LLVM's tuning for Intel's server cores with AVX-512 (Skylake-SP through
    Emerald Rapids) vectorizes loops with 256-bit registers only ("prefer-vector-width" 256),
    while on AMD's Zen 4 it uses the 512-bit ones. corrnet's kernels are compiled with
    "prefer-vector-width" 512 (`wide_vectors=True`, the default): the same loops as on Zen 4,
    a change only where LLVM would have halved them (no effect without AVX-512). Measured on
    an Intel Xeon (Emerald Rapids, 2 cores), interleaved call by call against the same
    kernels at 256 bits: single-channel filters 4-17% faster, average pools 6-23%, the
    depthwise layer 2-8%, the benchmark's other rows level; the max pool's scan was 9-24%
    slower, so its kernel says `wide_vectors=False` (LLVM's own choice). The results are the
    same numbers: a wider loop computes each output alike; only a `reassociate` kernel's sums
    are split across more lanes, which rounds differently.
    """

    def decorate(function):
        built = []      # numba's dispatcher, compiled (or loaded) on first use

        def build():
            if not built:
                with _compile_lock:
                    if not built:
                        built.append(_compile(function, reassociate, wide_vectors))
            return built[0]

        @functools.wraps(function)
        def call(*args):
            return build()(*args)

        call.py_func = function
        call.wide_vectors = wide_vectors
        return call

    return decorate


_inline_helpers: list = []


def inline(reassociate: bool = False):
    """Decorator: a plain-Python helper that compiled kernels call as a function of theirs
    (numba's ``register_jitable``, done as numba is set up: `load_numba`), so that kernels in
    different modules share one written-out piece of arithmetic; LLVM inlines it into its
    callers' loops. From Python it stays the plain function. `reassociate` as `jit`'s, for
    the helper's own arithmetic (a sum that should vectorize in a caller that must not
    reassociate its own); a caller compiled with `reassociate=True` passes its flags on to
    the helpers it inlines, so a helper that must round alike everywhere is called from
    kernels without them and says where it wants a fused multiply-add (`simd.fma`).

        @inline()
        def halve(value):
            return value * 0.5

    A kernel's disk cache is keyed by its own source file: after a change to a helper in
    another module, touch the callers' files (or clear numba's cache) while developing. An
    installed version's files all change together."""

    def decorate(function):
        with _compile_lock:
            _inline_helpers.append((function, reassociate))
            if _configured:     # (else `load_numba` registers it)
                _register_inline(function, reassociate)
        return function

    return decorate


def _register_inline(function, reassociate: bool) -> None:
    from numba.extending import register_jitable

    register_jitable(error_model="numpy", fastmath=_fast_math(reassociate))(function)


def _fast_math(reassociate: bool):
    return {"reassoc", "contract"} if reassociate else False


def _announce_compilations(numba) -> None:
    """Print one line on stderr as numba starts compiling one of corrnet's kernels (not when
    it loads one from its disk cache: numba's "numba:compile" event marks a real compilation)."""
    from numba.core import event

    class Announcer(event.Listener):
        def on_start(self, compilation):
            function = getattr(compilation.data.get("dispatcher"), "py_func", None)
            helpers = [helper for helper, _ in _inline_helpers]
            if (getattr(function, "__module__", "").startswith("corrnet.")
                    and function not in helpers):   # (compiled into their callers)
                sys.stderr.write(f"corrnet: compiling kernel {function.__qualname__} with "
                                 f"numba (first run only: it is cached on disk for the next "
                                 f"ones)\n")

        def on_end(self, compilation):
            pass

    event.register("numba:compile", Announcer())


def _compile(function, reassociate: bool, wide_vectors: bool):
    """numba's dispatcher for `function`: nopython, the GIL released, cached on disk; with
    `wide_vectors`, its loops vectorized with 512-bit registers where the CPU has them."""
    numba = load_numba()
    compiler = _wide_vector_compiler() if wide_vectors else None
    pipeline = {"pipeline_class": compiler} if compiler is not None else {}
    return numba.njit(cache=True, nogil=True, error_model="numpy",
                      fastmath=_fast_math(reassociate), **pipeline)(function)


@functools.cache
def _wide_vector_compiler():
    """numba's nopython compiler, its lowering marking each function it lowers
    "prefer-vector-width"="512" for LLVM (see `jit`; where the CPU has no 512-bit registers,
    LLVM's vectors stay as wide as it has). numba's own lowering, subclassed at its
    `post_lower` hook; llvmlite's attribute set takes only LLVM's keyword attributes, so the
    string attribute goes in through `set.add`, written out as it is. None where this numba
    lacks the hooks (then numba's own compiler, LLVM's own width)."""
    try:
        from numba.core import lowering
        from numba.core.compiler import CompilerBase, DefaultPassBuilder
        from numba.core.compiler_machinery import register_pass
        from numba.core.typed_passes import NativeLowering
    except ImportError:
        return None
    if not hasattr(lowering.Lower, "post_lower") or not hasattr(NativeLowering,
                                                                  "lowering_class"):
        return None

    class WideLower(lowering.Lower):
        def post_lower(self):
            super().post_lower()
            with contextlib.suppress(TypeError):     # (an llvmlite whose set is not a set)
                set.add(self.function.attributes, '"prefer-vector-width"="512"')

    @register_pass(mutates_CFG=True, analysis_only=False)
    class WideLowering(NativeLowering):
        _name = "corrnet_wide_lowering"

        @property
        def lowering_class(self):
            return WideLower

    class WideCompiler(CompilerBase):
        def define_pipelines(self):
            pipeline = DefaultPassBuilder.define_nopython_pipeline(self.state)
            pipeline.passes = [(WideLowering if step is NativeLowering else step, text)
                               for step, text in pipeline.passes]
            return [pipeline]

    return WideCompiler
