"""The array backend: NumPy, corrnet's dtypes and PyTorch's type-promotion rules.

Everything above this module speaks in `corrnet.dtype` objects; everything below it
(kernels/) speaks in NumPy dtypes. `to_numpy_dtype` and `from_numpy_dtype` cross the line.
"""

from __future__ import annotations

import numpy as np


class dtype:
    """A tensor element type, printed as PyTorch prints it (``torch.float32``).

    The ``torch.`` prefix is deliberate: code written for PyTorch (``import corrnet as torch``)
    prints exactly what it printed before.
    """

    def __init__(self, name: str, numpy_dtype, category: int, itemsize: int):
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.category = category  # 0 bool, 1 integer, 2 floating point
        self.itemsize = itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.category == 2

    @property
    def is_signed(self) -> bool:
        return self.name not in ("bool", "uint8", "uint16")

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


BOOL, INT, FLOAT = 0, 1, 2

bool_ = dtype("bool", np.bool_, BOOL, 1)
uint8 = dtype("uint8", np.uint8, INT, 1)
# uint16 is a "shell" dtype in PyTorch (for 16-bit image files): it holds and converts
# values, but promotes with no other integer or bool dtype (see `promote_types`)
uint16 = dtype("uint16", np.uint16, INT, 2)
int8 = dtype("int8", np.int8, INT, 1)
int16 = dtype("int16", np.int16, INT, 2)
int32 = dtype("int32", np.int32, INT, 4)
int64 = dtype("int64", np.int64, INT, 8)
float16 = dtype("float16", np.float16, FLOAT, 2)
float32 = dtype("float32", np.float32, FLOAT, 4)
float64 = dtype("float64", np.float64, FLOAT, 8)

ALL_DTYPES = (bool_, uint8, uint16, int8, int16, int32, int64, float16, float32, float64)
_BY_NUMPY = {d.numpy: d for d in ALL_DTYPES}
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_ALIASES = {
    "float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
    "short": int16, "bool": bool_,
}

_default_float = float32

# PyTorch's short names for dtypes, as its error messages print them ('Byte', 'UInt16')
_TORCH_SHORT_NAMES = {
    "bool": "Bool", "uint8": "Byte", "uint16": "UInt16", "int8": "Char", "int16": "Short",
    "int32": "Int", "int64": "Long", "float16": "Half", "float32": "Float",
    "float64": "Double",
}


def from_name(name: str) -> dtype:
    return _BY_NAME[name]


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d) -> None:
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating point dtypes are allowed, got {d}")
    _default_float = d


def from_numpy_dtype(np_dtype) -> dtype:
    np_dtype = np.dtype(np_dtype)
    try:
        return _BY_NUMPY[np_dtype]
    except KeyError:
        raise TypeError(
            f"can't convert numpy array of type {np_dtype}: corrnet supports "
            + ", ".join(d.name for d in ALL_DTYPES)
        ) from None


def as_dtype(d) -> dtype:
    """Accept a corrnet dtype, a NumPy dtype, a Python type (float, int, bool) or a name."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return float64  # as PyTorch: torch.tensor(..., dtype=float) is float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        name = d.removeprefix("torch.").removeprefix("corrnet.")
        if name in _ALIASES:
            return _ALIASES[name]
        if name in _BY_NAME:
            return _BY_NAME[name]
        raise TypeError(f"dtype: unknown dtype name {d!r}")
    try:
        return from_numpy_dtype(np.dtype(d))
    except TypeError as err:
        raise TypeError(f"dtype: expected a corrnet dtype, got {d!r}") from err


def to_numpy_dtype(d) -> np.dtype:
    return as_dtype(d).numpy


# ---------------------------------------------------------------------------------------------
# Type promotion, as torch.result_type: operands fall into three priority classes —
# dimensioned tensors, zero-dimensional tensors, Python scalars. A lower class only changes the
# result when it belongs to a higher category (bool < integer < floating point).
# ---------------------------------------------------------------------------------------------

def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype both `a` and `b` convert to (bool < integer < floating point).

    As in PyTorch, uint16 promotes only with itself and the floating point dtypes:

    >>> promote_types(uint16, float32)
    torch.float32
    >>> promote_types(uint16, int32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    RuntimeError: Promotion for uint16, ... not supported, attempted to promote UInt16 and Int ...
    """
    if (a is uint16) != (b is uint16) and not (a.is_floating_point or b.is_floating_point):
        raise RuntimeError(
            "Promotion for uint16, uint32, uint64 types is not supported, attempted to "
            f"promote {_TORCH_SHORT_NAMES[a.name]} and {_TORCH_SHORT_NAMES[b.name]} (convert "
            "one operand first, e.g. with .int() or .float())")
    if a.category != b.category:
        return a if a.category > b.category else b
    return from_numpy_dtype(np.promote_types(a.numpy, b.numpy))


def _scalar_dtype(value) -> dtype:
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return _default_float
    raise TypeError(f"unsupported operand of type {type(value).__name__}")


def result_type(*operands) -> dtype:
    """The dtype of an elementwise op on `operands`: tensors (objects with ``.dtype`` and
    ``.dim()``) and Python scalars."""
    dims = zero_dims = scalars = None
    for op in operands:
        if hasattr(op, "dtype") and hasattr(op, "dim"):
            d, nd = op.dtype, op.dim()
            if nd > 0:
                dims = d if dims is None else promote_types(dims, d)
            else:
                zero_dims = d if zero_dims is None else promote_types(zero_dims, d)
        else:
            d = _scalar_dtype(op)
            scalars = d if scalars is None else promote_types(scalars, d)
    result = dims
    for lower in (zero_dims, scalars):
        if lower is None:
            continue
        if result is None:
            result = lower
        elif lower.category > result.category:
            # a Python float with an int tensor gives the default float, not float64; a
            # zero-dimensional tensor goes through promote_types, which refuses bool with uint16
            result = (promote_types(result, lower) if lower is zero_dims
                      else _category_default(lower.category))
    return result


def _category_default(category: int) -> dtype:
    return {BOOL: bool_, INT: int64, FLOAT: _default_float}[category]


def can_cast(source: dtype, target: dtype) -> bool:
    """Whether an in-place op may write a `source` result into a `target` tensor."""
    return source.category <= target.category
