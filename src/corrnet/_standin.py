"""A stand-in CUDA device for tests without a GPU: NumPy arrays that behave as CuPy's.

`ndarray` wraps a NumPy array and a device index. Where it matters for catching mistakes it
behaves as ``cupy.ndarray`` does:

- implicit conversion to the host is refused: ``np.asarray(x)`` / ``np.array(x)`` (through
  ``__array__``) raise CuPy's TypeError ("Implicit conversion to a NumPy array is not
  allowed. Please use `.get()` to construct a NumPy array explicitly."); ``x.get()`` is the
  explicit copy; ``float(x)`` / ``int(x)`` / ``bool(x)`` work on one element only (TypeError
  otherwise) and ``x.item()`` / ``x.tolist()`` copy, as in CuPy;
- NumPy functions and ufuncs dispatch to it (NEP-18 ``__array_function__``, NEP-13
  ``__array_ufunc__``, NEP-35 ``like=``, which CuPy supports) and return stand-in arrays; a
  NumPy scalar result becomes a 0-d array on the device, as CuPy's reductions return;
- a host NumPy array of one or more dimensions among the operands is refused with CuPy's
  TypeError ("Unsupported type <class 'numpy.ndarray'>"); Python numbers, NumPy scalars and
  0-d host arrays are taken as scalars (NumPy hands a scalar operand to ``__array_ufunc__``
  as a 0-d array); arrays of two devices in one call raise ValueError, as CuPy does when a
  kernel's operand lives on another device than the current one.

The module itself is the device's array namespace ``xp``, as ``cupy`` is: the functions
that make arrays from none (``zeros``, ``empty``, ``full``, ``arange``, ``asarray``, ...)
make them on the current device (``with cuda.Device(i):``, as CuPy's), ``ascontiguousarray``
and ``lib.stride_tricks.as_strided`` take stand-in arrays, and every other name is NumPy's
function, which dispatches to the stand-in arrays it is given; ``x.__array_namespace__()``
returns the module. The device kernels (kernels/device_*.py) run on it in CI.

It is not a simulator: the values are NumPy's, computed on the host.

>>> x = from_host(np.arange(3.0), 0)
>>> np.add(x, 1)
standin.ndarray(cuda:0, array([1., 2., 3.]))
>>> np.asarray(x)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
TypeError: Implicit conversion to a NumPy array is not allowed. Please use `.get()` ...
"""

from __future__ import annotations

import weakref

import numpy as np

IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` "
                       "to construct a NumPy array explicitly.")

_live: dict = {}  # id -> weak reference of every live stand-in array, for memory_allocated
_in_use: dict = {}  # device index -> bytes held by live stand-in arrays (views counted too)
_peak: dict = {}  # device index -> the most bytes in use since the last reset_peak
_pinned: dict = {}  # id -> weak reference of each host array `pin` made ("page-locked")


def from_host(array, index: int = 0) -> ndarray:
    """A copy of the host `array` on stand-in device `index` (``cupy.asarray`` under
    ``cupy.cuda.Device(index)``)."""
    return ndarray(np.array(array, copy=True), index)


def asnumpy(array) -> np.ndarray:
    return array.get() if isinstance(array, ndarray) else np.asarray(array)


def bytes_in_use(index: int) -> int:
    """Bytes held by the live arrays on stand-in device `index` (a view counts its own bytes,
    so this over-counts where CuPy's pool would not)."""
    return _in_use.get(index, 0)


def peak_bytes_in_use(index: int) -> int:
    """The most bytes `bytes_in_use(index)` has been since `reset_peak(index)`."""
    return _peak.get(index, 0)


def reset_peak(index: int) -> None:
    _peak[index] = _in_use.get(index, 0)


def _release(key, index, nbytes):
    _live.pop(key, None)
    _in_use[index] -= nbytes


def pin(array: np.ndarray) -> np.ndarray:
    """A copy of the host `array` that `is_pinned` recognises (``cupyx.empty_pinned`` plus a
    copy, in CuPy; here the memory is ordinary host memory: only the mark is simulated)."""
    pinned = np.array(array, copy=True)
    key = id(pinned)
    _pinned[key] = weakref.ref(pinned, lambda _, key=key: _pinned.pop(key, None))
    return pinned


def is_pinned(array: np.ndarray) -> bool:
    """Whether `array` (or the array it is a view of) was made by `pin`."""
    while isinstance(array, np.ndarray):
        ref = _pinned.get(id(array))
        if ref is not None and ref() is array:
            return True
        array = array.base
    return False


class ndarray:
    """A NumPy array on stand-in device `index` (see the module's docstring)."""

    __slots__ = ("_array", "device_index", "__weakref__")

    def __init__(self, array: np.ndarray, index: int = 0):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"standin.ndarray wraps a numpy.ndarray, got {type(array).__name__}")
        self._array = array
        self.device_index = int(index)
        key, index, nbytes = id(self), self.device_index, array.nbytes
        _live[key] = weakref.ref(self, lambda _, key=key: _release(key, index, nbytes))
        used = _in_use[index] = _in_use.get(index, 0) + nbytes
        if used > _peak.get(index, 0):
            _peak[index] = used

    # -- explicit and refused conversions ------------------------------------------------------

    def get(self) -> np.ndarray:
        """The explicit copy to the host."""
        return self._array.copy()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT_CONVERSION)

    def item(self):
        return self._array.item()

    def tolist(self):
        return self._array.tolist()

    def _one(self, kind):
        if self._array.size != 1:
            raise TypeError(f"only length-1 arrays can be converted to Python scalars "
                            f"({kind}() of a stand-in array of shape {self._array.shape})")
        return self._array.reshape(()).item()

    def __float__(self):
        return float(self._one("float"))

    def __int__(self):
        return int(self._one("int"))

    def __index__(self):
        if self._array.dtype.kind not in "iu":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self._one("index"))

    def __bool__(self):
        if self._array.size != 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous.")
        return bool(self._array.reshape(()).item())

    def __iter__(self):
        if self._array.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._array.shape[0]))

    def __len__(self):
        return len(self._array)

    def __repr__(self):
        return f"standin.ndarray(cuda:{self.device_index}, {self._array!r})"

    # -- attributes and methods: NumPy's, unwrapped in and wrapped out -------------------------

    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: self._array.flags)
    T = property(lambda self: ndarray(self._array.T, self.device_index))
    mT = property(lambda self: ndarray(self._array.mT, self.device_index))

    @property
    def base(self):
        base = self._array.base
        return None if base is None else ndarray(base, self.device_index) if isinstance(
            base, np.ndarray) else None

    def __getattr__(self, name):
        if name.startswith("__") or name in ("data", "ctypes"):  # no way to the host memory
            raise AttributeError(f"'standin.ndarray' object has no attribute '{name}'")
        method = getattr(self._array, name)  # AttributeError as NumPy's
        if not callable(method):
            return _wrap(method, self.device_index)

        def call(*args, **kwargs):
            args, kwargs = _unwrap((args, kwargs), self.device_index, name)
            return _wrap(method(*args, **kwargs), self.device_index)

        call.__name__ = name
        return call

    def __getitem__(self, index):
        index = _unwrap_index(index, self.device_index)
        return _wrap(self._array[index], self.device_index)

    def __setitem__(self, index, value):
        index = _unwrap_index(index, self.device_index)
        (value,), _ = _unwrap(((value,), {}), self.device_index, "__setitem__")
        self._array[index] = value

    # -- NumPy protocols -----------------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        (inputs, kwargs) = _unwrap((inputs, kwargs), self.device_index, ufunc.__name__)
        return _wrap(getattr(ufunc, method)(*inputs, **kwargs), self.device_index)

    def __array_function__(self, func, types, args, kwargs):
        args, kwargs = _unwrap((args, kwargs), self.device_index, func.__name__)
        return _wrap(func(*args, **kwargs), self.device_index)

    # operators through the ufuncs (as numpy.lib.mixins.NDArrayOperatorsMixin)
    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        return np.positive(self)

    def __abs__(self):
        return np.absolute(self)

    def __invert__(self):
        return np.invert(self)

    def __matmul__(self, other):
        return np.matmul(self, other)

    def __rmatmul__(self, other):
        return np.matmul(other, self)


def _binary_operator(ufunc, name):
    def forward(self, other):
        return ufunc(self, other)

    def reflected(self, other):
        return ufunc(other, self)

    def inplace(self, other):
        return ufunc(self, other, out=(self,))

    forward.__name__, reflected.__name__, inplace.__name__ = (
        f"__{name}__", f"__r{name}__", f"__i{name}__")
    return forward, reflected, inplace


for _ufunc, _name in ((np.add, "add"), (np.subtract, "sub"), (np.multiply, "mul"),
                      (np.true_divide, "truediv"), (np.floor_divide, "floordiv"),
                      (np.remainder, "mod"), (np.power, "pow"), (np.bitwise_and, "and"),
                      (np.bitwise_or, "or"), (np.bitwise_xor, "xor"),
                      (np.left_shift, "lshift"), (np.right_shift, "rshift")):
    for _method in _binary_operator(_ufunc, _name):
        setattr(ndarray, _method.__name__, _method)
for _ufunc, _name in ((np.less, "lt"), (np.less_equal, "le"), (np.equal, "eq"),
                      (np.not_equal, "ne"), (np.greater, "gt"), (np.greater_equal, "ge")):
    setattr(ndarray, f"__{_name}__", _binary_operator(_ufunc, _name)[0])
ndarray.__hash__ = None


def _unwrap(value, index, what):
    """`value` (nested tuples/lists/dicts) with stand-in arrays replaced by their NumPy
    arrays; a host array of one or more dimensions, or an array of another device, refused."""
    if isinstance(value, ndarray):
        if value.device_index != index:
            raise ValueError(f"{what}: array device ({value.device_index}) is different from "
                             f"the current device ({index}); move it with to_device first")
        return value._array
    if isinstance(value, np.ndarray):
        if value.ndim == 0 or value.dtype == object:
            return value
        raise TypeError(f"Unsupported type {np.ndarray} (a host array of shape {value.shape} "
                        f"given to {what} on stand-in device cuda:{index})")
    if isinstance(value, tuple):
        return tuple(_unwrap(v, index, what) for v in value)
    if isinstance(value, list):
        return [_unwrap(v, index, what) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v, index, what) for k, v in value.items()}
    return value


def _unwrap_index(index, device_index):
    """An index: stand-in arrays unwrapped (same device); host arrays and lists accepted,
    as CuPy accepts them in indices."""
    if isinstance(index, ndarray):
        return _unwrap(index, device_index, "__getitem__")
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i, device_index) for i in index)
    return index


def _wrap(value, index):
    if isinstance(value, np.ndarray):
        return ndarray(value, index)
    if isinstance(value, np.generic):  # CuPy's reductions return 0-d arrays
        return ndarray(np.asarray(value), index)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_wrap(v, index) for v in value)
    if isinstance(value, list):
        return [_wrap(v, index) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# the module as an array namespace ``xp`` (as ``cupy``): functions that make arrays make them
# on the current device (`Device`, as ``cupy.cuda.Device``); the others are NumPy's, which
# dispatch to the stand-in arrays they are given
# ---------------------------------------------------------------------------------------------

_current = [0]   # the current stand-in device, as CuPy's current device


class Device:
    """``with Device(i):`` makes stand-in device i current (``cupy.cuda.Device``)."""

    def __init__(self, index: int = 0):
        self.id = int(index)

    def __enter__(self):
        self._previous = _current[0]
        _current[0] = self.id
        return self

    def __exit__(self, *exc):
        _current[0] = self._previous

    def use(self):
        _current[0] = self.id


cuda = type("cuda", (), {"Device": Device})


def asarray(value, dtype=None, index: int | None = None):
    """`value` on the current device (or `index`): a stand-in array as it is (cast to
    `dtype`), a host array or number copied there (``cupy.asarray``)."""
    if isinstance(value, ndarray):
        return value if dtype is None else value.astype(dtype, copy=False)
    return ndarray(np.array(value, dtype=dtype), _current[0] if index is None else index)


def _creating(name):
    function = getattr(np, name)

    def create(*args, **kwargs):
        return _wrap(function(*args, **kwargs), _current[0])

    create.__name__ = name
    return create


# the functions that make an array from no array (their results land on the current device)
for _name in ("zeros", "empty", "ones", "full", "arange", "eye", "linspace"):
    globals()[_name] = _creating(_name)


def ascontiguousarray(array):
    """A C-ordered copy of a stand-in array (itself when it is already)."""
    if not isinstance(array, ndarray):
        return asarray(np.ascontiguousarray(array))
    return array if array.flags.c_contiguous else array.copy()


def _as_strided(array, shape=None, strides=None):
    return ndarray(np.lib.stride_tricks.as_strided(array._array, shape=shape, strides=strides,
                                                   writeable=False), array.device_index)


lib = type("lib", (), {"stride_tricks": type("stride_tricks", (), {
    "as_strided": staticmethod(_as_strided)})})


def __getattr__(name):
    """Any other function of the namespace: NumPy's (dispatching to stand-in arrays)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(np, name)


def _namespace(self, api_version=None):
    import sys
    return sys.modules[__name__]


ndarray.__array_namespace__ = _namespace


__all__ = ["IMPLICIT_CONVERSION", "Device", "asarray", "asnumpy", "from_host", "ndarray"]
