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
