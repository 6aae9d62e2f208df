"""Argument checks shared by the public API, with PyTorch's strictness and wording.

PyTorch parses its arguments strictly: a ``bool`` argument takes only a bool (not 1, not
'2'), an ``int`` argument takes an int but not a bool, a dtype argument takes a dtype (not the
string 'float32'), a dimension must lie in ``[-ndim, ndim - 1]`` (a 0-d tensor counts as
having one dimension). These helpers raise its error types with a message naming the
function, the argument and what was given, so that a mistaken call fails at the call rather
than deep inside NumPy.
"""

from __future__ import annotations

import numbers

import numpy as np

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def type_name(value) -> str:
    """The name PyTorch uses for a value's type in its argument errors."""
    return "NoneType" if value is None else type(value).__name__


def check_bool(op: str, name: str, value) -> bool:
    """A ``bool`` argument: True/False (or NumPy's bool), nothing else (``keepdim=1`` and
    ``keepdim='2'`` are TypeErrors in PyTorch)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{op}(): argument '{name}' must be bool, not {type_name(value)}")


def is_int(value) -> bool:
    """Whether `value` is an integer in PyTorch's sense (bools are not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(op: str, name: str, value, position: int | None = None) -> int:
    """An ``int`` argument: an integer that is not a bool, within int64 (PyTorch's
    'Overflow when unpacking long long')."""
    if not is_int(value):
        where = f" (position {position})" if position is not None else ""
        raise TypeError(f"{op}(): argument '{name}'{where} must be int, not {type_name(value)}")
    value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{op}(): argument '{name}' is {value}: Overflow when unpacking "
                         "long long (it must fit in int64)")
    return value


def check_dim(op: str, dim, ndim: int) -> int:
    """One dimension index, normalized to ``[0, max(ndim, 1))``: an int (not a bool) in
    ``[-ndim, ndim - 1]``, where a 0-d tensor counts as 1-d (as PyTorch's maybe_wrap_dim)."""
    dim = check_int(op, "dim", dim)
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(f"{op}(): Dimension out of range (expected to be in range of "
                         f"[{-rank}, {rank - 1}], but got {dim})")
    return dim % rank


def check_dtype(op: str, value):
    """A ``dtype`` argument: a corrnet dtype (or a NumPy dtype or Python type, which corrnet
    also accepts); a string such as ``'float32'`` is a TypeError in PyTorch."""
    if isinstance(value, str):
        raise TypeError(f"{op}(): argument 'dtype' must be torch.dtype, not str "
                        f"(use corrnet.{value.removeprefix('torch.')} rather than {value!r})")
    return value


def check_size(op: str, shape: tuple) -> tuple:
    """A shape of ints that each fit in int64 and are not negative."""
    for n in shape:
        if not INT64_MIN <= n <= INT64_MAX:
            raise ValueError(f"{op}(): argument 'size' holds {n}: Overflow when unpacking "
                             "long long (each size must fit in int64)")
    if any(n < 0 for n in shape):
        raise RuntimeError(f"{op}(): Trying to create tensor with negative dimension: "
                           f"{list(shape)}")
    return shape
