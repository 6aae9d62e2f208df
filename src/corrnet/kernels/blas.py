"""The matrix product that compiled kernels call: NumPy's own BLAS, where it can be reached.

A compiled kernel that multiplies matrices (im2col's unrolled windows, Winograd's items, the
1x1 convolutions) calls `product_into` inside its loops:

    blas.product_into(gemm, a, b, out)      # out = a @ b: (R, L) = (R, K) @ (K, L)

with ``gemm = blas.gemm_for(dtype)``, passed down to it as an argument by the Python code
that calls the kernel. numba's own np.dot calls SciPy's BLAS (through
scipy.linalg.cython_blas); NumPy's wheels carry their own OpenBLAS, often a newer one, and
on the machine measured NumPy's ran the products these kernels make faster. On an Intel
Xeon (Emerald Rapids, AVX-512; NumPy 2.4's OpenBLAS 0.3.31, SciPy 1.17's 0.3.30), one
thread, the two called alternately from a compiled loop, in GFLOP/s:

    (R, K, L)            NumPy's   SciPy's
    (64, 256, 784)       68-93     38-58      the suite's 1x1 layer (f), per image
    (64, 64, 288)        68-100    56-87      Winograd's items, 64 channels
    (128, 128, 144)      76-114    68-104
    (256, 256, 240)      82-129    72-117
    (512, 512, 36)       61-90     61-88

Whole passes, interleaved with the previous kernels (same machine): the 1x1 layer (f)
forward 1.50-1.60x, 64 -> 256 1x1 input gradient 1.52-1.70x, im2col's compiled forward
1.05-1.24x, input gradient 1.03-1.06x; Winograd's passes level (0.99-1.03x). The weight
gradients' products take NumPy's BLAS too, except where its OpenBLAS runs AVX-512 kernels:
there they stay on np.dot (`weight_gradient_gemm`, below: on that Xeon NumPy's passes were
0.89-0.97x as fast, on an AVX2 AMD EPYC 1.03-1.19x).

`gemm_for(dtype)` is NumPy's BLAS's ``cblas_sgemm`` or ``cblas_dgemm`` as a ctypes function:
the 64-bit-integer interface (``scipy_cblas_sgemm64_``, ``cblas_sgemm64_``) that NumPy's
wheels build. Where NumPy's BLAS has neither (another build, another platform), it is None,
and `product_into` calls np.dot, SciPy's BLAS, as before. The function is an argument of
the kernel, not a global of its module: numba cannot cache a kernel that holds a function's
address as a constant, and the address changes from process to process. numba compiles (and
caches) a kernel once for each kind of `gemm` it is given (the function, or None).

Threads. A kernel runs its products on the thread that calls it; the Python code around it
sets that BLAS to one thread meanwhile (`threads.numba_blas_on_one_thread`, which asks
`controller()` here for NumPy's library).

The tests compare `product_into` with NumPy's float64 product, on both paths.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from .jit import inline

# CBLAS's enumerations
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# the 64-bit-integer ``cblas_?gemm`` of NumPy's wheels, and of an OpenBLAS built with
# INTERFACE64 and the usual symbol suffix
_GEMM_NAMES = {np.dtype(np.float32): ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
               np.dtype(np.float64): ("scipy_cblas_dgemm64_", "cblas_dgemm64_")}


@functools.cache
def gemm_for(dtype):
    """NumPy's BLAS's ``cblas_?gemm`` for `dtype` (float32 or float64) as a ctypes function
    with its argument types set, or None where NumPy's BLAS has no 64-bit-integer CBLAS
    interface (and for other dtypes): then `product_into` calls np.dot."""
    dtype = np.dtype(dtype)
    if dtype not in _GEMM_NAMES:
        return None
    found = _numpy_blas_function(_GEMM_NAMES[dtype])
    if found is None:
        return None
    number = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    size, pointer, flag = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    # (order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    found.argtypes = [flag, flag, flag, size, size, size, number, pointer, size, pointer,
                      size, number, pointer, size]
    found.restype = None
    return found


def _numpy_blas_function(names):
    """The first of `names` that NumPy's extension module reaches (its own symbols or those
    of the libraries it links: its BLAS), as a fresh ctypes function; None where none is
    there, or the module cannot be opened."""
    try:
        from numpy._core import _multiarray_umath as module
        library = ctypes.CDLL(module.__file__)
    except (ImportError, OSError, AttributeError):
        return None
    for name in names:
        try:
            return getattr(library, name)
        except AttributeError:
            continue
    return None


@functools.cache
def controller():
    """threadpoolctl's controller of the library `gemm_for` calls (the one that holds its
    float32 function), or None where there is none: to set its thread count."""
    gemm = gemm_for(np.float32)
    if gemm is None:
        return None
    from threadpoolctl import ThreadpoolController

    address = ctypes.cast(gemm, ctypes.c_void_p).value
    for library in ThreadpoolController().lib_controllers:
        for name in _GEMM_NAMES[np.dtype(np.float32)]:
            found = getattr(library.dynlib, name, None)
            if found is not None and ctypes.cast(found, ctypes.c_void_p).value == address:
                return library
    return None


@inline()
def product_into(gemm, a, b, out):
    """out = a @ b: (R, L) = (R, K) @ (K, L), in a compiled kernel. a and b: 2-D, each C- or
    F-ordered; out: C-ordered; one dtype, float32 or float64. gemm: `gemm_for(out.dtype)`, or
    None: np.dot (SciPy's BLAS).

        # (Og, L) = (Og, K) @ (K, L)
        blas.product_into(gemm, weight_rows[g], col, out[n, g])
    """
    if gemm is None:
        np.dot(a, b, out)
        return
    rows, inner = a.shape
    cols = b.shape[1]
    if rows == 0 or cols == 0:
        return
    if inner == 0:
        out[:] = 0
        return
    size = out.itemsize
    if ((a.strides[1] != size and a.strides[0] != size)
            or (b.strides[1] != size and b.strides[0] != size) or out.strides[1] != size):
        raise ValueError("product_into: a and b need their rows or their columns "
                         "contiguous, out its rows")
    # each operand as BLAS reads it: its rows contiguous (as it is) or its columns
    # (transposed), and the step from one row (column) to the next, in numbers
    if a.strides[1] == size:
        a_trans, a_step = _NO_TRANS, max(a.strides[0] // size, inner)
    else:
        a_trans, a_step = _TRANS, max(a.strides[1] // size, rows)
    if b.strides[1] == size:
        b_trans, b_step = _NO_TRANS, max(b.strides[0] // size, cols)
    else:
        b_trans, b_step = _TRANS, max(b.strides[1] // size, inner)
    out_step = max(out.strides[0] // size, cols)
    gemm(_ROW_MAJOR, a_trans, b_trans, rows, cols, inner, 1.0, a.ctypes.data, a_step,
         b.ctypes.data, b_step, 0.0, out.ctypes.data, out_step)


# The weight gradients' products, (Og, L) @ (L, Cg) with L the pixels (long), measured as
# whole passes on NumPy's BLAS, interleaved with SciPy's (np.dot): on the Intel Xeon above,
# where both OpenBLAS builds run their AVX-512 kernels ("SkylakeX"), 0.89-0.97x as fast (the
# 1x1 layers, im2col's compiled kernel, Winograd's items); on an AMD EPYC (Zen 3, AVX2),
# where both run their AVX2 kernels ("Haswell"), 1.03-1.19x as fast (the suite's 1x1 layer
# (f) 1.15x, Winograd's (c) 1.19x and (e) 1.03x, the stem's im2col 1.07x). So they take
# NumPy's BLAS except where its OpenBLAS runs one of these kernels:
AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


def weight_gradient_gemm(dtype):
    """The `gemm` argument for the weight gradients' products: `gemm_for(dtype)` (NumPy's
    BLAS), or None (np.dot: SciPy's) where NumPy's OpenBLAS runs AVX-512 kernels
    (`AVX512_CORES`) or NumPy's BLAS is not reachable."""
    if _openblas_core().lower() in AVX512_CORES:
        return None
    return gemm_for(dtype)


@functools.cache
def _openblas_core() -> str:
    """The name of the kernels NumPy's OpenBLAS chose for this CPU ("Haswell", "SkylakeX",
    ...; OpenBLAS's ``openblas_get_corename``), "" where NumPy's BLAS says none."""
    found = _numpy_blas_function(("scipy_openblas_get_corename64_",
                                  "openblas_get_corename64_", "openblas_get_corename"))
    if found is None:
        return ""
    found.argtypes, found.restype = [], ctypes.c_char_p
    return (found() or b"").decode("ascii", errors="replace").strip()
