"""Named image filters, built on ``corr2d``: edges, gradients, blurs and sharpening.

Every function takes an image X of shape (..., H, W) — one plane, or planes stacked in front
(channels (C, H, W), a batch (N, C, H, W)): each (H, W) plane is filtered alike — as a tensor
or a NumPy array, and returns a tensor (differentiable in X). An (H, W, C) photo is refused
with the fix (``X.permute(2, 0, 1)``).

``mode`` and ``boundary`` are ``corr2d``'s: ``mode='same'`` (the default here: the output has
the input's size), 'valid' or 'full'; ``boundary='symm'`` (the default here: the image
mirrored with its edge pixel repeated, so a flat border stays flat and no false edge
appears at the frame), 'fill' (`fillvalue`, 0 by default) or 'wrap'. The same boundaries in
the other libraries:

======================  ======================  ============================
corrnet / scipy.signal  scipy.ndimage           OpenCV
======================  ======================  ============================
'symm'   (dcba|abcd)    mode='reflect'          cv2.BORDER_REFLECT
'fill'   (0000|abcd)    mode='constant', cval=0 cv2.BORDER_CONSTANT
'wrap'   (abcd|abcd)    mode='wrap'             cv2.BORDER_WRAP (not in filter2D)
======================  ======================  ============================

With 'fill' and a fillvalue other than 0, corrnet pads the image once, as
``scipy.ndimage.correlate`` with the 2-D kernel does; scipy.ndimage's separable filters
(sobel, prewitt, gaussian_filter) pad each 1-D pass with `cval` instead, which differs near the
frame for kernels whose rows do not sum to 1.

A kernel's centre is ``K[kh // 2, kw // 2]``, as in scipy.ndimage and OpenCV (for an even
kernel, ``corr2d(mode='same')`` follows scipy.signal and centres it one cell earlier). All the
filters are correlations (no flip), so derivative signs follow scipy.ndimage and OpenCV:
``sobel_x`` is positive where the image gets brighter to the right. The notebooks' ``edge``
kernel [[1, -1]] has the opposite sign: positive where white turns black.

>>> import corrnet
>>> X = corrnet.tensor([[0., 0., 1., 1.]])
>>> corrnet.filters.sobel_x(X)              # brighter to the right: positive
tensor([[0., 4., 4., 0.]])
>>> corrnet.filters.kernel("box:2")
array([[0.25, 0.25],
       [0.25, 0.25]])
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np

from .functional import convolve2d
from .tensor import Tensor, as_tensor

__all__ = [
    "KERNELS", "box", "box_kernel", "correlate", "edge", "emboss", "gaussian",
    "gaussian_kernel", "kernel", "laplacian", "prewitt", "prewitt_x", "prewitt_y", "scharr",
    "scharr_x", "scharr_y", "sharpen", "sobel", "sobel_x", "sobel_y", "unsharp",
    "unsharp_kernel",
]

_SMOOTH = {"sobel": [1, 2, 1], "prewitt": [1, 1, 1], "scharr": [3, 10, 3]}
_DERIVATIVE = [-1, 0, 1]  # correlated: X[j + 1] - X[j - 1]


def _gradient_kernel(kind: str, axis: str) -> np.ndarray:
    """(3, 3) derivative along x (columns) or y (rows), smoothed across: an outer product."""
    smooth, derivative = np.array(_SMOOTH[kind], float), np.array(_DERIVATIVE, float)
    return np.outer(smooth, derivative) if axis == "x" else np.outer(derivative, smooth)


# the fixed kernels, each as a correlation kernel (see the module's notes on signs)
KERNELS = {
    "edge": np.array([[1.0, -1.0]]),                      # the notebooks': X[j] - X[j + 1]
    "sobel_x": _gradient_kernel("sobel", "x"),
    "sobel_y": _gradient_kernel("sobel", "y"),
    "prewitt_x": _gradient_kernel("prewitt", "x"),
    "prewitt_y": _gradient_kernel("prewitt", "y"),
    "scharr_x": _gradient_kernel("scharr", "x"),
    "scharr_y": _gradient_kernel("scharr", "y"),
    "laplacian": np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
    "sharpen": np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
    "emboss": np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]),
}
for _k in KERNELS.values():
    _k.flags.writeable = False
del _k


# ---------------------------------------------------------------------------------------------
# applying a kernel
# ---------------------------------------------------------------------------------------------

def _check_image(op: str, X):
    from .io import check_channels_first

    X = X if isinstance(X, Tensor) else as_tensor(np.asarray(X))
    if X.dim() < 2:
        raise ValueError(f"{op}: X must have shape (..., H, W), got shape {tuple(X.shape)}")
    check_channels_first(op, "X", X.shape)
    if not X.dtype.is_floating_point:
        X = X.double() if X.dtype.itemsize > 2 else X.float()
    return X


def correlate(X, K, mode="same", boundary="symm", fillvalue=0):
    """X (..., H, W) correlated with the 2-D kernel K, centred at ``K[kh // 2, kw // 2]``
    (scipy.ndimage's and OpenCV's centre; the same as ``corr2d`` for odd kernels). Integer
    images are filtered in floating point (float32 for 8- and 16-bit, else float64).

    >>> corrnet.filters.correlate(corrnet.tensor([[1., 2., 4.]]), [[1., -1.]])  # X[j-1] - X[j]
    tensor([[ 0., -1., -2.]])
    """
    X = _check_image("correlate", X)
    K = K if isinstance(K, Tensor) else as_tensor(np.asarray(K, dtype=X.dtype.numpy))
    if K.dim() != 2:
        raise ValueError(f"correlate: K must be 2-D (kh, kw), got shape {tuple(K.shape)}")
    if mode not in ("same", "valid", "full"):
        raise ValueError(f"correlate: mode must be 'same', 'valid' or 'full', got mode={mode!r}")
    if boundary not in ("symm", "fill", "wrap", "symmetric", "pad", "circular"):
        raise ValueError(f"correlate: boundary must be 'symm', 'fill' or 'wrap', got "
                         f"boundary={boundary!r}")
    if mode == "valid" and (K.shape[0] > X.shape[-2] or K.shape[1] > X.shape[-1]):
        raise ValueError(f"correlate: kernel of shape {tuple(K.shape)} is larger than the "
                         f"image X of shape {tuple(X.shape)} in mode 'valid'")
    # convolve2d's 'same' keeps the centre of an even kernel at index k // 2: the flip of a
    # flipped kernel is a correlation with scipy.ndimage's centre
    return convolve2d(X, K.flip((0, 1)).to(X.dtype), mode=mode, boundary=boundary,
                      fillvalue=fillvalue)


def _separable(X, column, row, mode, boundary, fillvalue):
    """Correlation with the outer product column x row, as two 1-D passes."""
    if boundary in ("fill", "pad") and fillvalue != 0:
        # the passes would fill with `fillvalue` twice: filter X - fillvalue against zeros
        # (correlation is linear), then add back what the fill contributes to every output
        total = float(np.sum(column) * np.sum(row))
        X = _check_image("filter", X)
        return _separable(X - fillvalue, column, row, mode, boundary, 0) + fillvalue * total
    X = correlate(X, np.asarray(row, float)[None, :], mode, boundary, fillvalue)
    return correlate(X, np.asarray(column, float)[:, None], mode, boundary, fillvalue)


def _named(name: str, doc: str):
    def apply(X, mode="same", boundary="symm", fillvalue=0):
        return correlate(X, KERNELS[name], mode, boundary, fillvalue)

    apply.__name__ = apply.__qualname__ = name
    kernel_text = np.array2string(KERNELS[name], separator=", ").replace("\n", "")
    apply.__doc__ = f"{doc}\n\n    Its kernel (a correlation): {kernel_text}."
    return apply


edge = _named("edge", "The notebooks' edge detector (kernel [[1, -1]]): in mode 'valid' "
                      "Y[i, j] = X[i, j] - X[i, j + 1], as corr2d; in 'same' the kernel's "
                      "centre is its second cell, so Y[i, j] = X[i, j - 1] - X[i, j].")
sobel_x = _named("sobel_x", "Sobel derivative along x (columns), smoothed [1, 2, 1] across; "
                            "as scipy.ndimage.sobel(X, axis=-1) and cv2.Sobel(X, dx=1, dy=0).")
sobel_y = _named("sobel_y", "Sobel derivative along y (rows), smoothed [1, 2, 1] across; as "
                            "scipy.ndimage.sobel(X, axis=-2) and cv2.Sobel(X, dx=0, dy=1).")
prewitt_x = _named("prewitt_x", "Prewitt derivative along x (columns), smoothed [1, 1, 1] "
                                "across; as scipy.ndimage.prewitt(X, axis=-1).")
prewitt_y = _named("prewitt_y", "Prewitt derivative along y (rows), smoothed [1, 1, 1] across; "
                                "as scipy.ndimage.prewitt(X, axis=-2).")
scharr_x = _named("scharr_x", "Scharr derivative along x (columns), smoothed [3, 10, 3] "
                              "across; as cv2.Scharr(X, dx=1, dy=0).")
scharr_y = _named("scharr_y", "Scharr derivative along y (rows), smoothed [3, 10, 3] across; "
                              "as cv2.Scharr(X, dx=0, dy=1).")
laplacian = _named("laplacian", "The 4-neighbour Laplacian; as scipy.ndimage.laplace and "
                                "cv2.Laplacian(X, ksize=1).")
sharpen = _named("sharpen", "Sharpening: 5 X - its 4 neighbours (= X - laplacian(X)).")
emboss = _named("emboss", "Emboss: a relief lit from the top left.")


def _magnitude(kind: str):
    def magnitude(X, mode="same", boundary="symm", fillvalue=0):
        column = _SMOOTH[kind]
        gx = _separable(X, column, _DERIVATIVE, mode, boundary, fillvalue)
        gy = _separable(X, _DERIVATIVE, column, mode, boundary, fillvalue)
        return (gx * gx + gy * gy).sqrt()

    magnitude.__name__ = magnitude.__qualname__ = kind
    magnitude.__doc__ = (f"The gradient magnitude sqrt({kind}_x(X)**2 + {kind}_y(X)**2), "
                         f"each computed in two separable 1-D passes.")
    return magnitude


sobel = _magnitude("sobel")
sobel.__doc__ += """ As np.hypot(scipy.ndimage.sobel(X, 0), scipy.ndimage.sobel(X, 1)).

    >>> corrnet.filters.sobel(corrnet.tensor([[0., 0., 1., 1.]]))
    tensor([[0., 4., 4., 0.]])
    """
prewitt = _magnitude("prewitt")
scharr = _magnitude("scharr")


# ---------------------------------------------------------------------------------------------
# kernels with parameters
# ---------------------------------------------------------------------------------------------

def _gaussian_1d(sigma: float, truncate: float) -> np.ndarray:
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"gaussian: sigma must be a finite number >= 0, got sigma={sigma!r}")
    if not np.isfinite(truncate) or truncate <= 0:
        raise ValueError(f"gaussian: truncate must be positive, got truncate={truncate!r}")
    radius = int(truncate * sigma + 0.5)  # scipy.ndimage.gaussian_filter's radius
    if radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=float)
    weights = np.exp(-0.5 * (x / sigma) ** 2)
    return weights / weights.sum()


def gaussian_kernel(sigma, truncate=4.0) -> np.ndarray:
    """The (2r + 1, 2r + 1) Gaussian kernel, r = int(truncate * sigma + 0.5), weights summing
    to 1 (scipy.ndimage.gaussian_filter's, truncate 4.0 as its default).

    >>> corrnet.filters.gaussian_kernel(0.5).shape
    (5, 5)
    """
    g = _gaussian_1d(float(sigma), float(truncate))
    return np.outer(g, g)


def gaussian(X, sigma, mode="same", boundary="symm", fillvalue=0, truncate=4.0):
    """Gaussian blur of X (..., H, W) with standard deviation `sigma` (pixels), in two 1-D
    passes; as scipy.ndimage.gaussian_filter(X, sigma, mode='reflect', truncate=4.0) and
    cv2.GaussianBlur with the same kernel size.

    >>> blurred = corrnet.filters.gaussian(corrnet.ones(3, 4), 1.0)
    >>> bool((blurred - 1).abs().max() < 1e-6)                  # a flat image stays flat
    True
    """
    g = _gaussian_1d(float(sigma), float(truncate))
    return _separable(X, g, g, mode, boundary, fillvalue)


def box_kernel(n) -> np.ndarray:
    """The (n, n) mean filter kernel (every weight 1 / n**2)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"box: n must be a positive integer, got n={n!r}")
    return np.full((n, n), 1.0 / (n * n))


def box(X, n, mode="same", boundary="symm", fillvalue=0):
    """The mean of each n x n window, in two 1-D passes; as scipy.ndimage.uniform_filter(X, n)
    and cv2.blur(X, (n, n)) (an even window reaches one pixel further up/left)."""
    ones = np.full(box_kernel(n).shape[0], 1.0 / n)
    return _separable(X, ones, ones, mode, boundary, fillvalue)


def unsharp_kernel(sigma, amount, truncate=4.0) -> np.ndarray:
    """The kernel of `unsharp`: (1 + amount) at the centre minus amount times the Gaussian."""
    if not np.isfinite(float(amount)):
        raise ValueError(f"unsharp: amount must be a finite number, got amount={amount!r}")
    k = -float(amount) * gaussian_kernel(sigma, truncate)
    k[k.shape[0] // 2, k.shape[1] // 2] += 1.0 + float(amount)
    return k


def unsharp(X, sigma, amount, mode="same", boundary="symm", fillvalue=0, truncate=4.0):
    """Unsharp masking: X + amount * (X - gaussian(X, sigma)) — the detail a blur removes,
    added back `amount` times."""
    if mode != "same":
        return correlate(X, unsharp_kernel(sigma, amount, truncate), mode, boundary, fillvalue)
    X = _check_image("unsharp", X)
    if not np.isfinite(float(amount)):
        raise ValueError(f"unsharp: amount must be a finite number, got amount={amount!r}")
    return X + float(amount) * (X - gaussian(X, sigma, mode, boundary, fillvalue, truncate))


# ---------------------------------------------------------------------------------------------
# the command line's kernel specs
# ---------------------------------------------------------------------------------------------

SPEC_HELP = ("a name (" + ", ".join(n.replace("_", "-") for n in KERNELS)
             + "), gaussian:SIGMA, box:N, unsharp:SIGMA,AMOUNT, a literal such as "
               "'[[1,-1]]', or a text or .npy file")


def _numbers(name: str, text: str, count: int) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(np.isfinite(values)):
        wanted = {"gaussian": "gaussian:SIGMA", "box": "box:N",
                  "unsharp": "unsharp:SIGMA,AMOUNT"}[name]
        raise ValueError(f"kernel: {name}:{text} does not parse: expected {wanted} with "
                         f"{count} finite number(s)")
    return values


def _checked(kernel, source: str) -> np.ndarray:
    try:
        array = np.asarray(kernel, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"kernel: {source} is not a table of numbers ({err})") from None
    if array.ndim == 1:
        array = array[None, :]            # [1, -1] is a row kernel
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"kernel: {source} must be a non-empty 2-D table of numbers, got "
                         f"shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"kernel: {source} holds values that are not finite")
    return array


def kernel(spec) -> np.ndarray:
    """The 2-D float64 kernel a spec names — what ``corrnet filter --kernel`` takes:

    * a name: edge, sobel-x, sobel-y, prewitt-x/y, scharr-x/y, laplacian, sharpen, emboss
      (underscores work too; `sobel` is a magnitude, not one kernel: see `sobel`);
    * ``gaussian:SIGMA``, ``box:N``, ``unsharp:SIGMA,AMOUNT``;
    * a literal such as ``"[[1, -1]]"`` (read with ast.literal_eval: numbers only, no code);
    * a text file (``np.loadtxt``: rows of numbers) or a ``.npy`` file (no pickles);
    * an array or nested list, checked and returned as float64.

    >>> corrnet.filters.kernel("sobel-x")
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]])
    >>> corrnet.filters.kernel("[[1, -1]]")
    array([[ 1., -1.]])
    """
    if isinstance(spec, Tensor):
        return _checked(spec.detach().cpu().numpy(), "the given tensor")
    if not isinstance(spec, (str, os.PathLike)):
        return _checked(spec, "the given kernel")
    text = os.fspath(spec).strip()
    name = text.lower().replace("-", "_")
    if name in KERNELS:
        return KERNELS[name].copy()
    if name in ("sobel", "prewitt", "scharr"):
        raise ValueError(f"kernel: {text} is a gradient magnitude, not one kernel: use "
                         f"{name}-x or {name}-y, or corrnet.filters.{name}(X)")
    head, colon, rest = text.partition(":")
    head = head.strip().lower()
    if colon and head in ("gaussian", "box", "unsharp"):
        if head == "gaussian":
            (sigma,) = _numbers(head, rest, 1)
            return gaussian_kernel(sigma)
        if head == "box":
            (n,) = _numbers(head, rest, 1)
            if n != int(n):
                raise ValueError(f"kernel: box:{rest} needs a whole number of pixels")
            return box_kernel(int(n))
        sigma, amount = _numbers(head, rest, 2)
        return unsharp_kernel(sigma, amount)
    if text.startswith(("[", "(")):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
            raise ValueError(f"kernel: the literal {text!r} does not parse "
                             f"({type(err).__name__}: {err}); write it as [[1, -1]]") from None
        return _checked(value, f"the literal {text!r}")
    path = Path(text)
    if path.is_file():
        try:
            if path.suffix.lower() == ".npy":
                value = np.load(path, allow_pickle=False)
            else:
                value = np.loadtxt(path, ndmin=2, delimiter=None)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"kernel: cannot read a kernel from '{path}' ({err})") from None
        return _checked(value, f"the file '{path}'")
    raise ValueError(f"kernel: unknown kernel {text!r} (and no such file); expected "
                     f"{SPEC_HELP}")
