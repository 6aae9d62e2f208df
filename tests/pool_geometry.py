"""PyTorch's pooling geometry along one dimension, for building pooling test configurations.

Shared by oracle/test_conv_pool.py (where it is checked against torch) and test_reference.py.
"""

from __future__ import annotations

import numpy as np


def pool_out_len(size: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a pooling op along one dimension, PyTorch's rule."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_windows_touch_input(size: int, k: int, s: int, p: int, d: int = 1,
                             ceil_mode: bool = False) -> bool:
    """True when every pooling window contains at least one real (non-padding) element."""
    out = pool_out_len(size, k, s, p, d, ceil_mode)
    for o in range(out):
        pos = o * s - p + d * np.arange(k)
        if not np.any((pos >= 0) & (pos < size)):
            return False
    return True
