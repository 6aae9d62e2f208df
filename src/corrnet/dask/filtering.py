"""corr2d, convolve2d and the named filters of `corrnet.filters` on dask arrays.

Each function takes a dask array X of shape (..., H, W) — one plane, or planes stacked in
front (channels, batch) — and returns a lazy dask array equal to the in-memory function of the
same name applied to the whole image (``corrnet.corr2d(X.compute(), K)``, ...): the same
modes ('same', 'valid', 'full'), boundaries ('symm', 'fill', 'wrap') and result dtypes,
whatever the chunking.

How: the whole array is padded lazily once, at its true edges, exactly as the in-memory
function pads it (a 'same' or 'full' filter becomes a 'valid' one over the padded image); then
`dask.array.map_overlap` gives each chunk the rows and columns its windows reach into its
neighbours (depth kh - 1 and kw - 1 in all, split before/after; asymmetric for even kernels,
``boundary='none'``), and each block is filtered in memory by corrnet's own function in mode
'valid' (NumPy blocks in, NumPy blocks out). Why not map_overlap's own boundaries: those are
symmetric (an even kernel's 'same' needs one more row after than before), 'full' and 'valid'
change the shape, and padding wider than a chunk or than the image itself (a large kernel on
a small image: mirrored again and again, as NumPy's and corrnet's padding do) is out of their
reach — padding once handles every mode and boundary alike. (The padding is built from slices
of X, NumPy's pad indices: ``dask.array.pad`` returns too short an array when a pad is wider
than the array, dask issue 6127.) Chunks too small for the depth (a 1-pixel chunk under a
15x15 kernel) are merged with their neighbours first; in mode 'same' the output keeps the
(merged) input chunks.

X must be a dask array: a NumPy array is refused with the fix (the in-memory function, or
``dask.array.from_array(X, chunks=...)``) rather than silently made one chunk. The kernel must
be in memory (NumPy, a nested list or a tensor), never a dask array.

>>> import dask.array as da, numpy as np, corrnet, corrnet.dask
>>> image = np.arange(144.0).reshape(12, 12)
>>> X = da.from_array(image, chunks=6)
>>> Y = corrnet.dask.gaussian(X, 1.0)     # lazy: nothing computed yet; a 9x9 kernel
>>> Y.chunks
((6, 6), (6, 6))
>>> bool(np.allclose(Y.compute(), corrnet.filters.gaussian(image, 1.0).numpy()))
True
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import filters as _filters
from .. import functional as _functional
from ..autograd import no_grad
from ..io import check_channels_first
from ..tensor import Tensor

__all__ = [
    "box", "convolve2d", "corr2d", "correlate", "edge", "emboss", "gaussian", "laplacian",
    "prewitt", "prewitt_x", "prewitt_y", "scharr", "scharr_x", "scharr_y", "sharpen", "sobel",
    "sobel_x", "sobel_y", "unsharp",
]

# scipy.signal's boundary names (with its aliases) -> NumPy's pad modes (corrnet pads as NumPy)
_PAD_MODES = {"fill": "constant", "pad": "constant", "wrap": "wrap", "circular": "wrap",
              "symm": "symmetric", "symmetric": "symmetric"}


def _dask_array():
    try:
        import dask.array as da
    except ImportError as err:  # pragma: no cover - the extra is installed with the tests
        raise ImportError("corrnet.dask needs Dask: pip install corrnet[dask]") from err
    return da


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------

def _check_image(op: str, X, in_memory: str):
    da = _dask_array()
    if not isinstance(X, da.Array):
        raise TypeError(f"{op}: X must be a dask array (dask.array.Array), got "
                        f"{type(X).__name__}; for an image in memory use {in_memory}, or wrap "
                        f"it: dask.array.from_array(X, chunks=...)")
    if X.ndim < 2:
        raise ValueError(f"{op}: X must have shape (..., H, W), got a dask array of shape "
                         f"{X.shape}")
    check_channels_first(op, "X", X.shape)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{op}: X must hold booleans, integers or floating-point numbers, got "
                        f"dtype {X.dtype} (X of shape {X.shape})")
    if any(math.isnan(size) for sizes in X.chunks for size in sizes):
        raise ValueError(f"{op}: X of shape {X.shape} has unknown chunk sizes; compute them "
                         f"first: X.compute_chunk_sizes()")
    if 0 in X.shape:
        raise ValueError(f"{op}: X must not be empty, got shape {X.shape}")
    return X


def _check_kernel(op: str, K) -> np.ndarray:
    if hasattr(K, "__dask_graph__"):
        raise TypeError(f"{op}: K must be in memory (a NumPy array, nested list or Tensor), "
                        f"got a {type(K).__name__} of shape {getattr(K, 'shape', '?')}: pass "
                        f"K.compute()")
    kernel = K.detach().cpu().numpy() if isinstance(K, Tensor) else np.asarray(K)
    if kernel.ndim != 2:
        raise ValueError(f"{op}: K must be 2-D (kh, kw), got K of shape {kernel.shape}")
    if kernel.dtype.kind not in "biuf":
        raise TypeError(f"{op}: K must hold booleans, integers or floating-point numbers, got "
                        f"dtype {kernel.dtype} (K of shape {kernel.shape})")
    if 0 in kernel.shape:
        raise ValueError(f"{op}: K must not be empty, got shape {kernel.shape}")
    return kernel


def _check_mode(op: str, mode, boundary) -> None:
    if mode not in ("same", "valid", "full"):
        raise ValueError(f"{op}: mode must be 'same', 'valid' or 'full', got mode={mode!r}")
    if boundary not in _PAD_MODES:
        raise ValueError(f"{op}: boundary must be 'symm', 'fill' or 'wrap' (or scipy's aliases "
                         f"'symmetric', 'pad', 'circular'), got boundary={boundary!r}")


# ---------------------------------------------------------------------------------------------
# the plan: pads, depths and chunks along one image axis
# ---------------------------------------------------------------------------------------------

def _merge_small(chunks, minimum: int) -> list[int]:
    """`chunks` with each chunk smaller than `minimum` merged into its neighbours (one chunk
    when the whole axis is smaller).

    >>> _merge_small((1, 1, 5, 1, 2), 3)
    [7, 3]
    """
    merged, current = [], 0
    for size in chunks:
        current += size
        if current >= minimum:
            merged.append(current)
            current = 0
    if current:
        if merged:
            merged[-1] += current
        else:
            merged.append(current)
    return merged


def _axis_plan(chunks, k: int, before: int, after: int, mode: str):
    """(depth, padded chunks, output chunks) along one axis for a kernel of size k and the
    whole image padded by `before` and `after`. Each output chunk o_i is computed from padded
    chunk i plus depth = (d_before, d_after) cells of its neighbours, d_before + d_after =
    k - 1; in mode 'same' the depth is the padding itself, so the output keeps the chunks."""
    if mode == "same":
        depth = (before, after)
    else:
        depth = ((k - 1) // 2, k - 1 - (k - 1) // 2)
    # every chunk at least as deep as the depth (map_overlap takes it from the next chunk
    # only) and, at the ends, deeper (an output chunk of at least one cell)
    merged = _merge_small(chunks, max(depth) + 1)
    padded = list(merged)
    padded[0] += before
    padded[-1] += after
    out = list(padded)
    if len(out) == 1:
        out[0] -= k - 1
    else:
        out[0] -= depth[0]
        out[-1] -= depth[1]
    return depth, tuple(padded), tuple(out)


def _runs(index: np.ndarray):
    """Split an index array into maximal runs of step +1 or -1, as slices."""
    start = 0
    while start < len(index):
        stop = start + 1
        step = int(index[stop] - index[start]) if stop < len(index) else 1
        if step not in (1, -1):
            step = 1
        else:
            while stop < len(index) and index[stop] - index[stop - 1] == step:
                stop += 1
        first, last = int(index[start]), int(index[stop - 1])
        yield slice(first, last + 1) if step == 1 else slice(first, last - 1 if last else None,
                                                             -1)
        start = stop


def _pad_axis(X, axis: int, before: int, after: int, mode: str, fill):
    """X padded lazily along `axis`, as ``np.pad(X, ..., mode)`` (and corrnet) pad it:
    mirrored or wrapped as often as the padding needs, or filled with `fill`."""
    da = _dask_array()
    if before == 0 and after == 0:
        return X
    size = X.shape[axis]
    parts = []
    for width, where in ((before, "before"), (after, "after")):
        if width == 0:
            parts.append(None)
            continue
        if mode == "constant":
            chunks = list(X.chunks)
            chunks[axis] = (width,)
            shape = list(X.shape)
            shape[axis] = width
            parts.append(da.full(shape, fill, dtype=X.dtype, chunks=tuple(chunks)))
            continue
        # which cell of X each padding cell copies (NumPy's rule: np.pad of the indices)
        index = np.pad(np.arange(size), (before, after), mode)
        index = index[:before] if where == "before" else index[before + size:]
        pieces = [X[(slice(None),) * axis + (piece,)] for piece in _runs(index)]
        parts.append(pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=axis))
    first, last = parts
    return da.concatenate([p for p in (first, X, last) if p is not None], axis=axis)


# ---------------------------------------------------------------------------------------------
# one lazy filter
# ---------------------------------------------------------------------------------------------

def _filter_block(block: np.ndarray, function, args: tuple, kwargs: dict) -> np.ndarray:
    """The in-memory `function` on one NumPy block (..., h, w) in mode 'valid'. The block's
    planes go in as (B, 1, h, w): a 3-D block such as (8, 40, 3) must not look like an
    (H, W, C) photo to the in-memory check."""
    *lead, h, w = block.shape
    with no_grad():
        out = function(block.reshape(-1, 1, h, w), *args, mode="valid", **kwargs).numpy()
    return out.reshape(*lead, *out.shape[-2:])


def _lazy(op: str, X, footprint, anchor, function, args=(), mode="same", boundary="symm",
          fillvalue=0, **kwargs):
    """`function(X, *args, mode, boundary, fillvalue, **kwargs)` on dask array X: a local
    filter whose output cell (i, j) in mode 'valid' reads the footprint (kh, kw) of X from
    (i, j) on, and whose 'same' output cell (i, j) is centred `anchor` cells after the
    footprint's first."""
    da = _dask_array()
    kh, kw = footprint
    *lead, h, w = X.shape
    if mode == "valid" and (kh > h or kw > w):
        raise ValueError(f"{op}: the kernel of shape {tuple(footprint)} is larger than the "
                         f"image X of shape {X.shape} (mode='valid')")
    block_kwargs = dict(kwargs, boundary=boundary, fillvalue=fillvalue)
    run = functools.partial(_filter_block, function=function, args=tuple(args),
                            kwargs=block_kwargs)
    # the dtype the in-memory function computes in and returns: ask it, on one window
    dtype = run(np.zeros((1, kh, kw), dtype=X.dtype)).dtype
    X = X.astype(dtype) if X.dtype != dtype else X  # in memory: cast first, then pad
    fill = np.full((), fillvalue, dtype=dtype)[()]  # cast as corrnet's padding casts it
    depth, padded_chunks, out_chunks = {}, {}, {}
    for axis, k, centre in ((X.ndim - 2, kh, anchor[0]), (X.ndim - 1, kw, anchor[1])):
        before, after = {"same": (centre, k - 1 - centre), "full": (k - 1, k - 1),
                         "valid": (0, 0)}[mode]
        depth[axis], padded_chunks[axis], out_chunks[axis] = _axis_plan(
            X.chunks[axis], k, before, after, mode)
        X = _pad_axis(X, axis, before, after, _PAD_MODES[boundary], fill)
    X = X.rechunk(padded_chunks)
    chunks = tuple(out_chunks.get(axis, X.chunks[axis]) for axis in range(X.ndim))
    return da.map_overlap(run, X, depth=depth, boundary="none", trim=False,
                          allow_rechunk=False, chunks=chunks, dtype=dtype,
                          meta=np.empty((0,) * X.ndim, dtype=dtype))


# ---------------------------------------------------------------------------------------------
# corr2d and convolve2d
# ---------------------------------------------------------------------------------------------

def _filter2d(op, X, K, mode, boundary, fillvalue, function, anchor):
    X = _check_image(op, X, f"corrnet.{op}")
    kernel = _check_kernel(op, K)
    _check_mode(op, mode, boundary)
    if np.result_type(X.dtype, kernel.dtype) == np.uint16:  # (as the in-memory function)
        raise NotImplementedError(f"{op}: not implemented for X and K of dtype uint16 (X of "
                                  f"shape {X.shape}); convert X to float first: "
                                  f"X.astype('float32')")
    return _lazy(op, X, kernel.shape, anchor(kernel.shape), function, (kernel,), mode,
                 boundary, fillvalue)


def corr2d(X, K, mode="valid", boundary="fill", fillvalue=0):
    """`corrnet.corr2d` on a dask array X (..., H, W): the 2-D cross-correlation with the
    in-memory kernel K, lazily, chunk by chunk; modes, boundaries and the result's dtype as
    the in-memory function's (an even kernel's 'same' output keeps scipy.signal's centre).

    >>> import dask.array as da
    >>> X = da.from_array(np.arange(9).reshape(3, 3), chunks=1)
    >>> corrnet.dask.corr2d(X, [[0, 1], [2, 3]]).compute()
    array([[19, 25],
           [37, 43]])
    """
    return _filter2d("corr2d", X, K, mode, boundary, fillvalue, _functional.corr2d,
                     lambda shape: tuple((k - 1) // 2 for k in shape))


def convolve2d(X, K, mode="valid", boundary="fill", fillvalue=0):
    """`corrnet.convolve2d` on a dask array X (..., H, W): `corr2d` with the kernel turned by
    180 degrees, as scipy.signal.convolve2d.

    >>> import dask.array as da
    >>> X = da.from_array(np.array([[1., 2., 3.]]), chunks=1)
    >>> corrnet.dask.convolve2d(X, [[1., -1.]], mode="full").compute()
    array([[ 1.,  1.,  1., -3.]])
    """
    return _filter2d("convolve2d", X, K, mode, boundary, fillvalue, _functional.convolve2d,
                     lambda shape: tuple(k // 2 for k in shape))


# ---------------------------------------------------------------------------------------------
# the named filters
# ---------------------------------------------------------------------------------------------

def _centred(shape):
    """scipy.ndimage's and OpenCV's centre, the named filters': K[kh // 2, kw // 2]."""
    return tuple(k // 2 for k in shape)


def correlate(X, K, mode="same", boundary="symm", fillvalue=0):
    """`corrnet.filters.correlate` on a dask array X (..., H, W): correlation with K centred
    at ``K[kh // 2, kw // 2]``; integer images are filtered in floating point."""
    X = _check_image("correlate", X, "corrnet.filters.correlate")
    kernel = _check_kernel("correlate", K)
    _check_mode("correlate", mode, boundary)
    return _lazy("correlate", X, kernel.shape, _centred(kernel.shape), _filters.correlate,
                 (kernel,), mode, boundary, fillvalue)


def _fixed(name: str):
    in_memory = getattr(_filters, name)
    shape = _filters.KERNELS[name].shape

    def apply(X, mode="same", boundary="symm", fillvalue=0):
        X = _check_image(name, X, f"corrnet.filters.{name}")
        _check_mode(name, mode, boundary)
        return _lazy(name, X, shape, _centred(shape), in_memory, (), mode, boundary,
                     fillvalue)

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"`corrnet.filters.{name}` on a dask array X (..., H, W), lazily."
    return apply


edge = _fixed("edge")
sobel_x, sobel_y = _fixed("sobel_x"), _fixed("sobel_y")
prewitt_x, prewitt_y = _fixed("prewitt_x"), _fixed("prewitt_y")
scharr_x, scharr_y = _fixed("scharr_x"), _fixed("scharr_y")
laplacian, sharpen, emboss = _fixed("laplacian"), _fixed("sharpen"), _fixed("emboss")


def _magnitude(name: str):
    in_memory = getattr(_filters, name)

    def magnitude(X, mode="same", boundary="symm", fillvalue=0):
        X = _check_image(name, X, f"corrnet.filters.{name}")
        _check_mode(name, mode, boundary)
        return _lazy(name, X, (3, 3), (1, 1), in_memory, (), mode, boundary, fillvalue)

    magnitude.__name__ = magnitude.__qualname__ = name
    magnitude.__doc__ = (f"`corrnet.filters.{name}` (the gradient magnitude) on a dask array "
                         f"X (..., H, W), lazily.")
    return magnitude


sobel, prewitt, scharr = _magnitude("sobel"), _magnitude("prewitt"), _magnitude("scharr")


def gaussian(X, sigma, mode="same", boundary="symm", fillvalue=0, truncate=4.0):
    """`corrnet.filters.gaussian` on a dask array X (..., H, W): a Gaussian blur of standard
    deviation `sigma`, the halo its radius int(truncate * sigma + 0.5)."""
    X = _check_image("gaussian", X, "corrnet.filters.gaussian")
    _check_mode("gaussian", mode, boundary)
    shape = _filters.gaussian_kernel(sigma, truncate).shape  # (checks sigma and truncate)
    return _lazy("gaussian", X, shape, _centred(shape), _filters.gaussian, (sigma,), mode,
                 boundary, fillvalue, truncate=truncate)


def box(X, n, mode="same", boundary="symm", fillvalue=0):
    """`corrnet.filters.box` on a dask array X (..., H, W): the mean of each n x n window."""
    X = _check_image("box", X, "corrnet.filters.box")
    _check_mode("box", mode, boundary)
    shape = _filters.box_kernel(n).shape  # (checks n)
    return _lazy("box", X, shape, _centred(shape), _filters.box, (n,), mode, boundary,
                 fillvalue)


def unsharp(X, sigma, amount, mode="same", boundary="symm", fillvalue=0, truncate=4.0):
    """`corrnet.filters.unsharp` on a dask array X (..., H, W): X + amount * (X -
    gaussian(X, sigma)) in mode 'same' (as in memory: the blur, then the sums); in 'valid'
    and 'full' one correlation with `unsharp_kernel`, as the in-memory function."""
    X = _check_image("unsharp", X, "corrnet.filters.unsharp")
    _check_mode("unsharp", mode, boundary)
    kernel = _filters.unsharp_kernel(sigma, amount, truncate)  # (checks the numbers)
    if mode != "same":
        return correlate(X, kernel, mode, boundary, fillvalue)
    blurred = gaussian(X, sigma, mode, boundary, fillvalue, truncate)
    X = X.astype(blurred.dtype).rechunk(blurred.chunks)
    return X + float(amount) * (X - blurred)
