"""Resampling tables for F.interpolate, and the separable resampling they drive.

Every mode of F.interpolate is separable: along each resized axis an output index o reads a
few input indices ("taps") and sums them with weights,

    out[..., o, ...] = sum_k weights[o, k] * x[..., taps[o, k], ...]

so a 2-D resize is a 1-D resize of the last axis (W) followed by one of the axis before it (H),
as PyTorch computes it. (The last axis of finite input is resized as a product with the dense
(O, I) matrix of its table: NumPy's gathers along it are slow.)

A table is a pair (taps, weights): int64 (O, K) and (O, K) in the input's dtype, or weights
None for the nearest modes (K = 1, a plain gather); an antialias table has a third element, a
bool (O, K) mask of the taps in use (its rows have different numbers of taps: the unused ones
are skipped, not multiplied by 0, so that an infinite input stays as local as in PyTorch).
The tables reproduce PyTorch's index arithmetic (aten/src/ATen/native/UpSample.h), including
its precision: the nearest modes compute source indices in float32, the linear and cubic modes
in the input's floating type.

    nearest        src = min(floor(o * scale), I - 1)            (scale = I / O or 1 / s)
    nearest-exact  src = min(floor((o + 0.5) * scale), I - 1)
    linear         src = scale * o                                (align_corners)
                   src = max(scale * (o + 0.5) - 0.5, 0)          (otherwise)
                   taps floor(src) and the next, weights 1 - t and t (t = src - floor(src))
    cubic          src as linear without the clamp at 0; taps floor(src) - 1 ... + 2 (clamped
                   to the edge), Keys' cubic convolution weights with A = -0.75
    antialias      a filter (triangle, or Keys' cubic with A = -0.5) stretched by the
                   scale when downsampling, over the taps within its support, normalized
                   to sum 1 (Pillow's resampling, as PyTorch's _upsample_*_aa)

The backward of a resize is its adjoint: the gradient of an axis scatters back to the taps
with the same weights, computed here as a product with the dense (O, I) matrix of the
table (grad (..., O) @ A (O, I)).
"""

from __future__ import annotations

import numpy as np

from .. import devices

CUBIC_A = -0.75        # Keys' parameter in PyTorch's bicubic
CUBIC_A_AA = -0.5      # ... and in its antialiased bicubic (Pillow's)


def _scale(in_size: int, out_size: int, scale, dtype, align_corners: bool = False):
    """PyTorch's area_pixel_compute_scale: the step in input pixels per output pixel."""
    if align_corners:
        return dtype.type((in_size - 1) / (out_size - 1)) if out_size > 1 else dtype.type(0)
    if scale is not None and scale > 0:
        return dtype.type(1.0 / scale)
    return dtype.type(in_size) / dtype.type(out_size)


def nearest_table(in_size: int, out_size: int, scale, exact: bool, shortcuts: bool = True):
    """Taps (O, 1) of the 'nearest' or 'nearest-exact' mode; weights None (a gather).

    `shortcuts`: PyTorch's 2-D 'nearest' copies an axis whose size is kept and halves the
    indices of one doubled, whatever the scale factor (2 * 1.3 -> 2: taps 0, 1); the forward
    of its 1-D and 3-D 'nearest' computes every index from the scale (taps 0, 0): pass False
    for those (their backward takes the shortcuts)."""
    out_index = np.arange(out_size)
    if shortcuts and not exact and out_size == in_size:
        taps = out_index
    elif shortcuts and not exact and out_size == 2 * in_size:
        taps = out_index >> 1
    else:
        step = _scale(in_size, out_size, scale, np.dtype(np.float32))
        position = out_index.astype(np.float32)
        if exact:
            position = position + np.float32(0.5)
        taps = np.minimum(np.floor(position * step).astype(np.int64), in_size - 1)
    return taps.reshape(out_size, 1).astype(np.int64), None


def linear_table(in_size: int, out_size: int, scale, align_corners: bool, dtype):
    """Taps and weights (O, 2) of the linear modes (one axis of bilinear)."""
    dtype = np.dtype(dtype)
    out_index = np.arange(out_size)
    if out_size == in_size and not align_corners:  # PyTorch's shortcut: the identity
        taps = np.stack([out_index, out_index], axis=1)
        weights = np.zeros((out_size, 2), dtype=dtype)
        weights[:, 0] = 1
        return taps, weights
    step = _scale(in_size, out_size, scale, dtype, align_corners)
    position = out_index.astype(dtype)
    if align_corners:
        source = step * position
    else:
        source = np.maximum(step * (position + dtype.type(0.5)) - dtype.type(0.5), 0)
    first = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    t = np.clip(source - first.astype(dtype), 0, 1).astype(dtype)
    second = first + (first < in_size - 1)
    taps = np.stack([first, second], axis=1)
    weights = np.stack([dtype.type(1) - t, t], axis=1)
    return taps, weights


def _cubic_near(x, a):  # |x| <= 1
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic_far(x, a):  # 1 < |x| < 2
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def cubic_table(in_size: int, out_size: int, scale, align_corners: bool, dtype):
    """Taps and weights (O, 4) of one axis of bicubic (edge pixels repeat outside)."""
    dtype = np.dtype(dtype)
    step = _scale(in_size, out_size, scale, dtype, align_corners)
    position = np.arange(out_size).astype(dtype)
    source = step * position if align_corners else step * (position + dtype.type(0.5)) - \
        dtype.type(0.5)
    floor = np.floor(source)
    t = (source - floor).astype(dtype)
    a = dtype.type(CUBIC_A)
    one, two = dtype.type(1), dtype.type(2)
    weights = np.stack([_cubic_far(t + one, a), _cubic_near(t, a), _cubic_near(one - t, a),
                        _cubic_far(two - t, a)], axis=1).astype(dtype)
    taps = floor.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    return np.clip(taps, 0, in_size - 1), weights


def _triangle(x):
    x = np.abs(x)
    return np.where(x < 1, 1 - x, 0.0)


def _keys_aa(x):
    x = np.abs(x)
    a = CUBIC_A_AA
    return np.where(x < 1, _cubic_near(x, a), np.where(x < 2, _cubic_far(x, a), 0.0))


def antialias_table(in_size: int, out_size: int, scale, align_corners: bool, cubic: bool,
                    dtype):
    """Taps and weights (O, K) of an antialiased bilinear / bicubic axis (Pillow's filter:
    support 1 or 2 input pixels, times the scale when downsampling); unused taps (past
    each row's window) repeat the last index with weight 0, and are marked unused."""
    step = float(_scale(in_size, out_size, scale, np.dtype(np.float64), align_corners))
    support = (2.0 if cubic else 1.0) * (step if step >= 1.0 else 1.0)
    inverse = 1.0 / step if step >= 1.0 else 1.0
    centre = step * (np.arange(out_size) + 0.5)
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    count = np.minimum((centre + support + 0.5).astype(np.int64), in_size) - first
    width = max(int(count.max()) if out_size else 1, 1)
    k = np.arange(width)
    taps = first[:, None] + k[None, :]                           # (O, K)
    inside = k[None, :] < count[:, None]
    weights = (_keys_aa if cubic else _triangle)(
        (taps - centre[:, None] + 0.5) * inverse) * inside
    total = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, total, out=np.zeros_like(weights), where=total != 0)
    taps = np.minimum(taps, in_size - 1)
    return taps, weights.astype(dtype), inside


def resample(x: np.ndarray, tables) -> np.ndarray:
    """Apply one table per trailing axis of x (None: the axis is kept), the last axis first.
    (inf * 0 is NaN silently, as in PyTorch.)"""
    with np.errstate(invalid="ignore"):
        return _resample(x, tables)


def _resample(x: np.ndarray, tables) -> np.ndarray:
    first_axis = x.ndim - len(tables)
    on_host = type(x) is np.ndarray
    for offset in reversed(range(len(tables))):
        if tables[offset] is None:
            continue
        axis = first_axis + offset
        taps, weights, used = (tuple(tables[offset]) + (None,))[:3]
        if not on_host:   # a CUDA array: the tables on its device (the taps' sums)
            taps, weights, used = (None if t is None else _on_device_of(x, t)
                                   for t in (taps, weights, used))
        if weights is None:  # a gather
            x = np.take(x, taps[:, 0], axis=axis)
            continue
        if on_host and axis == x.ndim - 1 and np.isfinite(x).all():
            # NumPy gathers along the last axis slowly (about 8x a row copy): a product with
            # the dense (O, I) matrix instead, the same sums plus exact zeros (an inf or NaN
            # would spread along the whole row: those take the taps below)
            x = x @ adjoint_matrix(tables[offset], x.shape[axis], x.dtype).T  # (..., I) @ (I, O)
            continue
        trailing = (1,) * (x.ndim - axis - 1)
        out = None
        for k in range(taps.shape[1]):
            term = np.take(x, taps[:, k], axis=axis) * weights[:, k].reshape((-1,) + trailing)
            if used is not None and (not on_host or not used[:, k].all()):
                term[...] = np.where(used[:, k].reshape((-1,) + trailing), term, 0)
            out = term if out is None else np.add(out, term, out=out)
        x = out
    return devices.contiguous(x)


def _on_device_of(array, table: np.ndarray):
    """A host-built table on `array`'s CUDA device, copied there once per content and device
    (`devices.table_like`; a table is small: its bytes are the key)."""
    return devices.table_like(table, array, ("interpolate", table.dtype.str, table.shape,
                                             table.tobytes()))


def adjoint_matrix(table, in_size: int, dtype) -> np.ndarray:
    """The dense (O, I) matrix A of a table: out = A @ x along the axis."""
    taps, weights = table[:2]
    matrix = np.zeros((taps.shape[0], in_size), dtype=dtype)
    rows = np.broadcast_to(np.arange(taps.shape[0])[:, None], taps.shape)
    np.add.at(matrix, (rows, taps), 1 if weights is None else weights)
    return matrix


def resample_backward(grad: np.ndarray, tables, in_shape) -> np.ndarray:
    """The gradient of `resample` with respect to x: each axis's adjoint, first axis first."""
    first_axis = grad.ndim - len(tables)
    for offset in range(len(tables)):
        if tables[offset] is None:
            continue
        axis = first_axis + offset
        if type(grad) is np.ndarray:
            matrix = adjoint_matrix(tables[offset], in_shape[axis], grad.dtype)
        else:   # a CUDA array: the matrix built on the host, copied to its device once
            matrix = _on_device_of(grad, adjoint_matrix(tables[offset], in_shape[axis],
                                                        grad.dtype))
        if axis == grad.ndim - 1:
            grad = grad @ matrix                            # (..., O) @ (O, I) -> (..., I)
        elif axis == grad.ndim - 2:
            grad = matrix.T @ grad                          # (I, O) @ (..., O, W) -> (..., I, W)
        else:
            moved = np.moveaxis(grad, axis, -1)             # (..., O)
            grad = np.moveaxis(moved @ matrix, -1, axis)    # (..., O) @ (O, I) -> (..., I)
    return devices.contiguous(grad)
