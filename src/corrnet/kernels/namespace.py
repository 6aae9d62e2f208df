"""The array namespace adapter of the device kernels (device_conv.py, device_pool.py).

The device kernels are written once against an array namespace `xp`: NumPy's module on the
CPU (and in CI, where a stand-in device wraps NumPy arrays), CuPy's on an NVIDIA GPU. They
call only the functions both libraries provide (`PORTABLE`, each checked against CuPy's
reference, docs.cupy.dev) and array methods and operators both have (reshape, transpose,
astype, slicing, ``+=``, comparisons); where the two differ, the difference is here and
nowhere else. Nothing here imports CuPy: the namespace comes with the arrays.

>>> import numpy as np
>>> namespace_of(np.zeros(2)) is np
True
>>> as_strided(np, np.arange(4.0), (3, 2), (8, 8)).tolist()
[[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]
"""

from __future__ import annotations

import sys

import numpy as np

# The module-level functions of `xp` the device kernels may call: each is in NumPy and in
# CuPy with the same meaning (CuPy's name below where it runs a library routine).
PORTABLE = (
    "abs",                  # cupy.abs (elementwise kernel)
    "arange",               # cupy.arange
    "asarray",              # cupy.asarray: an explicit host -> device copy of a NumPy array
    "ascontiguousarray",    # cupy.ascontiguousarray: one copy kernel (a strided gather)
    "bincount",             # cupy.bincount (weights, minlength): adaptive max's gradient
    "broadcast_to",         # cupy.broadcast_to
    "empty",                # cupy.empty (from CuPy's memory pool)
    "full",                 # cupy.full
    "isnan",                # cupy.isnan
    "matmul",               # cupy.matmul: batched GEMM, cuBLAS (cublasGemmStridedBatchedEx)
                            # for float16/32/64; CuPy's own kernel for integer types
    "maximum",              # cupy.maximum (NaN propagates, as NumPy's)
    "minimum",              # cupy.minimum
    "sign",                 # cupy.sign
    "take",                 # cupy.take (axis): adaptive pooling's window cells
    "take_along_axis",      # cupy.take_along_axis: adaptive max, max_unpool's gradient
    "where",                # cupy.where
    "zeros",                # cupy.zeros
)


def namespace_of(array):
    """The array namespace an array belongs to: `numpy` for a NumPy array; for another
    array, its ``__array_namespace__()`` (NumPy 2 and CuPy 14 arrays give their module),
    else the module its type is defined in (``cupy`` for ``cupy.ndarray``).

    >>> namespace_of(np.float32(1)).__name__
    'numpy'
    """
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    get = getattr(array, "__array_namespace__", None)
    if get is not None:
        return get()
    module = sys.modules.get(type(array).__module__.partition(".")[0])
    if module is None:
        raise TypeError(f"no array namespace for an array of type {type(array).__name__}")
    return module


def as_strided(xp, array, shape, strides):
    """A view of `array` with the given shape and byte strides (no copy): NumPy's and CuPy's
    ``lib.stride_tricks.as_strided`` (same arguments; CuPy's takes no `writeable`, so the
    view is only ever read by the kernels).

    >>> as_strided(np, np.arange(6), (2, 2), (16, 8)).tolist()
    [[0, 1], [2, 3]]
    """
    return xp.lib.stride_tricks.as_strided(array, shape=tuple(shape), strides=tuple(strides))
