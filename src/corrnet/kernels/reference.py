"""Plain-loop reference implementations, for tests only.

Written for obviousness, not speed: they loop over every output element and share no code
with the fast kernels (not even the window arithmetic), so that a test comparing the two
checks something.
"""

from __future__ import annotations

import math

import numpy as np


def corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid 2-D cross-correlation, as the notebooks define it."""
    h, w = k.shape
    out = np.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1), dtype=np.result_type(x, k))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i:i + h, j:j + w] * k).sum()
    return out


def conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """x (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw) -> (N, C_out, H_out, W_out)."""
    n, c_in, h, w = x.shape
    c_out, c_group, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c_out, out_h, out_w), dtype=np.result_type(x, weight))
    out_per_group = c_out // groups
    for b in range(n):
        for o in range(c_out):
            g = o // out_per_group
            for y in range(out_h):
                for xx in range(out_w):
                    total = 0
                    for c in range(c_group):
                        for i in range(kh):
                            for j in range(kw):
                                row = y * sh - ph + i * dh
                                col = xx * sw - pw + j * dw
                                if 0 <= row < h and 0 <= col < w:
                                    total += x[b, g * c_group + c, row, col] * weight[o, c, i, j]
                    out[b, o, y, xx] = total + (0 if bias is None else bias[o])
    return out


def _pool_out(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, kernel_size, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    """Max over each window; cells outside the input never win."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    out_h = _pool_out(h, kh, sh, ph, dh, ceil_mode)
    out_w = _pool_out(w, kw, sw, pw, dw, ceil_mode)
    out = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for y in range(out_h):
                for xx in range(out_w):
                    best = None
                    for i in range(kh):
                        for j in range(kw):
                            row, col = y * sh - ph + i * dh, xx * sw - pw + j * dw
                            if 0 <= row < h and 0 <= col < w:
                                value = x[b, ch, row, col]
                                if best is None or value > best:
                                    best = value
                    out[b, ch, y, xx] = best
    return out


def avg_pool2d(x, kernel_size, stride, padding=(0, 0), ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each window (float inputs)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    out_h = _pool_out(h, kh, sh, ph, 1, ceil_mode)
    out_w = _pool_out(w, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for y in range(out_h):
                for xx in range(out_w):
                    total, inside, in_padded = 0.0, 0, 0
                    for i in range(kh):
                        for j in range(kw):
                            row, col = y * sh - ph + i, xx * sw - pw + j
                            if -ph <= row < h + ph and -pw <= col < w + pw:
                                in_padded += 1
                            if 0 <= row < h and 0 <= col < w:
                                total += x[b, ch, row, col]
                                inside += 1
                    if divisor_override:
                        divisor = divisor_override
                    else:
                        divisor = in_padded if count_include_pad else inside
                    out[b, ch, y, xx] = total / divisor
    return out


def conv_transpose2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                     groups=1, dilation=(1, 1)):
    """x (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw): every input pixel scatters its
    value times the kernel into the output."""
    n, c_in, h, w = x.shape
    _, c_out_group, kh, kw = weight.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    out_w = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = np.zeros((n, c_out_group * groups, out_h, out_w), dtype=np.result_type(x, weight))
    in_per_group = c_in // groups
    for b in range(n):
        for c in range(c_in):
            g = c // in_per_group
            for y in range(h):
                for xx in range(w):
                    for o in range(c_out_group):
                        for i in range(kh):
                            for j in range(kw):
                                row = y * sh - ph + i * dh
                                col = xx * sw - pw + j * dw
                                if 0 <= row < out_h and 0 <= col < out_w:
                                    out[b, g * c_out_group + o, row, col] += (
                                        x[b, c, y, xx] * weight[c, o, i, j])
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def adaptive_pool2d(x, output_size, kind="avg"):
    """Window (i, j) covers rows floor(i*H/out_h) .. ceil((i+1)*H/out_h) - 1 (and columns
    alike); 'avg' averages it, 'max' takes its maximum."""
    n, c, h, w = x.shape
    out_h, out_w = output_size
    out = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        top, bottom = (i * h) // out_h, math.ceil((i + 1) * h / out_h)
        for j in range(out_w):
            left, right = (j * w) // out_w, math.ceil((j + 1) * w / out_w)
            window = x[:, :, top:bottom, left:right]
            out[:, :, i, j] = window.mean(axis=(2, 3)) if kind == "avg" else window.max(
                axis=(2, 3))
    return out


def pad(x, pads, mode="constant", value=0):
    """pads: one (before, after) per trailing axis, outermost first. Each output cell looks up
    its input cell with the mode's rule, written out case by case."""
    axes = list(range(x.ndim - len(pads), x.ndim))
    out_shape = list(x.shape)
    for a, (before, after) in zip(axes, pads, strict=True):
        out_shape[a] = x.shape[a] + before + after
    out = np.full(out_shape, value, dtype=x.dtype)
    for index in np.ndindex(*out_shape):
        source = list(index)
        inside = True
        for a, (before, after) in zip(axes, pads, strict=True):
            size, k = x.shape[a], index[a] - before
            if mode == "constant":
                inside = inside and 0 <= k < size
            elif mode == "replicate":
                k = min(max(k, 0), size - 1)
            elif mode == "reflect":
                while k < 0 or k >= size:
                    k = -k if k < 0 else 2 * (size - 1) - k
            elif mode == "circular":  # crops first, then wraps around what is left
                low, high = max(-before, 0), size - max(-after, 0)
                k = low + (k - low) % (high - low)
            source[a] = k
        if inside:
            out[index] = x[tuple(source)]
    return out


def unfold(x, kernel_size, dilation=(1, 1), padding=(0, 0), stride=(1, 1)):
    """(N, C, H, W) -> (N, C*kh*kw, L): column l is window l, zeros outside the input."""
    n, c, h, w = x.shape
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = kernel_size, dilation, padding, stride
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c * kh * kw, out_h * out_w), dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    for y in range(out_h):
                        for xx in range(out_w):
                            row, col = y * sh - ph + i * dh, xx * sw - pw + j * dw
                            if 0 <= row < h and 0 <= col < w:
                                out[b, (ch * kh + i) * kw + j, y * out_w + xx] = x[b, ch, row, col]
    return out
