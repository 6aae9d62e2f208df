"""Devices: the one module that knows where an array lives.

A `device` names a place (``cpu``, ``cuda:N``) as PyTorch names it. For each device type this
module gives the array namespace that serves it (``numpy`` on the CPU; ``cupy`` for ``cuda``
where CuPy imports and sees a GPU; else, when the environment variable
``CORRNET_STANDIN_CUDA=N`` asks for it, corrnet's stand-in device of N "GPUs" that wrap NumPy
arrays and refuse implicit host conversion as CuPy does, see `_standin`), moves arrays between
devices (`to_device`, `to_host`), says which device an array is on (`device_of`) and which
kernel family serves it (`kernel_family`). Nothing else in corrnet imports CuPy.

Why a module of its own and not backend.py: backend.py is about dtypes and promotion, which
are the same on every device; placement, transfers and the CUDA runtime are a separate
concern, and keeping them here keeps CuPy's import (slow, and absent in CI) out of the dtype
path.

>>> from corrnet import devices
>>> devices.device_of(np.zeros(2))
device(type='cpu')
>>> devices.to_host(np.zeros(2)).shape
(2,)
"""

from __future__ import annotations

import numbers
import os
import re

import numpy as np

STANDIN_VARIABLE = "CORRNET_STANDIN_CUDA"

_DEVICE_STRING = re.compile(r"([a-z_]+)(?::(0|[1-9][0-9]*))?")  # PyTorch's device strings


def _type_name(value) -> str:
    return "None" if value is None else type(value).__name__


class device:
    """Where a tensor lives: ``device('cpu')``, ``device('cuda')``, ``device('cuda:1')``,
    ``device('cuda', 1)``, as PyTorch.

    An index is a non-negative int without leading zeros (``'cpu:x'``, ``'cpu:-1'``,
    ``'cpu:01'`` raise RuntimeError); ``device(1)`` is ``cuda:1`` where a CUDA device is
    available (PyTorch's current accelerator), refused otherwise.

    >>> device('cuda', 0)
    device(type='cuda', index=0)
    >>> str(device('cuda:1'))
    'cuda:1'
    """

    def __init__(self, type="cpu", index=None):
        if isinstance(type, device):
            if index is not None:
                raise TypeError("device(): an index cannot be given with a device object")
            type, index = type.type, type.index
        elif isinstance(type, numbers.Integral) and not isinstance(type, bool):
            if not is_available():
                raise RuntimeError(f"device({type}): an integer names an accelerator device; "
                                   "Cannot access accelerator device when none is available.")
            type, index = "cuda", _check_integer_index(int(type))
        elif not isinstance(type, str):
            raise TypeError(f"device(): expected a device string such as 'cpu' or 'cpu:0', "
                            f"got {_type_name(type)}")
        if index is not None and (
            not isinstance(index, numbers.Integral) or isinstance(index, bool)
        ):
            raise TypeError(f"device(): argument 'index' (position 2) must be int, not "
                            f"{_type_name(index)}")
        match = _DEVICE_STRING.fullmatch(type)
        if match is None:
            raise RuntimeError(f"Invalid device string: {type!r} (expected 'cpu', 'cuda' or "
                               "either followed by ':' and a non-negative index, e.g. 'cpu:0')")
        name, number = match.group(1), match.group(2)
        if name not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device "
                               f"string: {type}")
        if number is not None:
            if index is not None:
                raise RuntimeError("type (string) must not include an index because index was "
                                   f"passed explicitly: {type}")
            index = int(number)
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type, self.index = name, None if index is None else int(index)

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


def _check_integer_index(index: int) -> int:
    if index < 0:
        raise RuntimeError(f"Device index must not be negative, got {index}")
    return index


CPU = device("cpu")

# ---------------------------------------------------------------------------------------------
# The CUDA array library: CuPy with a GPU, else the stand-in when asked for, else none.
# ---------------------------------------------------------------------------------------------

_cuda = None  # (namespace module or None, device count, name), found on first use
# the CUDA array class (None until found): no device array exists before `_find_cuda` runs,
# so `is_device_array` is one comparison and one isinstance check
_array_type = None
ARRAY_TYPES = (np.ndarray,)  # the array classes of every device: isinstance(x, ARRAY_TYPES)


def _find_cuda():
    global _cuda, _array_type, ARRAY_TYPES
    if _cuda is None:
        _cuda = _probe()
        _array_type = None if _cuda[0] is None else _cuda[0].ndarray
        ARRAY_TYPES = (np.ndarray,) if _array_type is None else (np.ndarray, _array_type)
    return _cuda


def _probe():
    requested = os.environ.get(STANDIN_VARIABLE, "").strip()
    if requested:
        try:
            count = int(requested)
        except ValueError:
            raise RuntimeError(f"{STANDIN_VARIABLE}={requested!r}: expected the number of "
                               "stand-in CUDA devices, e.g. 2") from None
        if count > 0:
            from . import _standin

            return _standin, count, "standin"
    try:
        import cupy  # the only import of CuPy in corrnet
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # not installed, no driver, no GPU: CUDA is not available
        return None, 0, None
    return (cupy, count, "cupy") if count > 0 else (None, 0, None)


_peak_tracker = None  # CuPy's allocator wrapped to record the peak bytes in use per device


class _PeakTracker:
    """CuPy's default memory pool as its allocator, recording after each allocation the
    most bytes in use on the current device (CuPy keeps no peak; PyTorch's
    ``max_memory_allocated`` needs one). It costs a Python call and a pool query per
    allocation, so it is installed only when a peak is first asked for."""

    def __init__(self, cupy):
        self.cupy, self.pool, self.peak = cupy, cupy.get_default_memory_pool(), {}

    def __call__(self, size):
        memory = self.pool.malloc(size)
        index = self.cupy.cuda.runtime.getDevice()
        used = self.pool.used_bytes()
        if used > self.peak.get(index, 0):
            self.peak[index] = used
        return memory


def _track_peak_memory() -> _PeakTracker:
    global _peak_tracker
    if _peak_tracker is None:
        cupy = cuda_namespace()
        _peak_tracker = _PeakTracker(cupy)
        cupy.cuda.set_allocator(_peak_tracker)
    return _peak_tracker


def reset() -> None:
    """Look for CuPy / the stand-in again (tests change ``CORRNET_STANDIN_CUDA``)."""
    global _cuda, _current, _array_type, ARRAY_TYPES
    _cuda = _array_type = None
    _tables.clear()
    ARRAY_TYPES = (np.ndarray,)
    _current = 0


def cuda_namespace():
    """The array module serving ``cuda`` arrays (``cupy`` or the stand-in), or None."""
    return _find_cuda()[0]


def library() -> str | None:
    """``'cupy'``, ``'standin'`` or None: what serves the ``cuda`` device."""
    return _find_cuda()[2]


def is_available() -> bool:
    return _find_cuda()[1] > 0


def device_count() -> int:
    return _find_cuda()[1]


_current = 0


def current_device() -> int:
    _require_cuda("current_device()")
    return _current


def set_device(dev) -> None:
    global _current
    dev = cuda_device(dev, "set_device()")
    _current = dev.index
    if library() == "cupy":
        cuda_namespace().cuda.Device(_current).use()


def _require_cuda(what: str) -> None:
    if not is_available():
        raise RuntimeError(
            f"{what}: corrnet has no CUDA backend available (CuPy is not installed or sees no "
            f"GPU; tests may set {STANDIN_VARIABLE}=N for N stand-in devices). Remove the "
            ".cuda() / .to('cuda') calls (corrnet.cuda.is_available() is False).")


def as_device(dev, what: str = "device") -> device:
    """`dev` (a string, a device, an int meaning ``cuda:int``, or None for the CPU) checked:
    a ``cuda`` device needs CUDA available and an index below the device count. ``cuda``
    without an index means the current device."""
    if dev is None:
        return CPU
    if isinstance(dev, numbers.Integral) and not isinstance(dev, bool):
        _require_cuda(f"{what} {dev}")
        dev = device("cuda", int(dev))
    elif not isinstance(dev, device):
        dev = device(dev)
    if dev.type == "cpu":
        return CPU
    return cuda_device(dev, what)


def cuda_device(dev, what: str) -> device:
    """A ``cuda:N`` device with N checked against the device count (None: the current one)."""
    if isinstance(dev, numbers.Integral) and not isinstance(dev, bool):
        dev = device("cuda", int(dev))
    elif dev is None:
        dev = device("cuda")
    elif not isinstance(dev, device):
        dev = device(dev)
    if dev.type != "cuda":
        raise ValueError(f"{what}: expected a cuda device, got {str(dev)!r}")
    _require_cuda(f"{what} on {str(dev)!r}")
    index = _current if dev.index is None else dev.index
    count = device_count()
    if index >= count:
        raise RuntimeError(
            f"{what}: CUDA error: invalid device ordinal: {str(dev)!r} does not exist, this "
            f"machine has {count} CUDA device{'s' if count != 1 else ''} (cuda:0 to "
            f"cuda:{count - 1})")
    return device("cuda", index)


# ---------------------------------------------------------------------------------------------
# Arrays: where one lives, and moving it
# ---------------------------------------------------------------------------------------------

def is_host(array) -> bool:
    """Whether `array` is a NumPy array (the CPU path: one isinstance check)."""
    return isinstance(array, np.ndarray)


def device_of(array) -> device:
    """The device an array lives on (NumPy arrays and scalars: the CPU)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return CPU
    index = _device_index(array)
    if index is None:
        return CPU
    return device("cuda", index)


def _device_index(array):
    if _array_type is None or not isinstance(array, _array_type):
        return None
    return array.device_index if library() == "standin" else array.device.id


def is_device_array(array) -> bool:
    """Whether `array` is a CUDA array (CuPy's or the stand-in's)."""
    return _array_type is not None and isinstance(array, _array_type)


def namespace(dev):
    """The array module serving `dev`: ``numpy`` for the CPU, CuPy or the stand-in for CUDA."""
    dev = as_device(dev)
    return np if dev.type == "cpu" else cuda_namespace()


def namespace_of(array):
    """The array module of `array` (``numpy`` for host arrays)."""
    return np if not is_device_array(array) else cuda_namespace()


def kernel_family(array) -> str:
    """Which kernels serve `array`: ``'cpu'`` (kernels/) or ``'cuda'`` (the GPU kernels)."""
    return "cpu" if not is_device_array(array) else "cuda"


def to_host(array) -> np.ndarray:
    """`array` as a NumPy array: a copy from the device (``.get()``), or `array` itself."""
    if isinstance(array, np.ndarray):
        return array
    if is_device_array(array):
        return array.get()
    return np.asarray(array)


def to_device(array, dev) -> object:
    """`array` on `dev` (a device or string): itself when already there, else a copy."""
    dev = as_device(dev)
    if dev.type == "cpu":
        return to_host(array)
    if device_of(array) == dev:
        return array
    namespace = cuda_namespace()
    if library() == "standin":
        host = array.get() if is_device_array(array) else np.asarray(array)
        return namespace.from_host(host, dev.index)
    with namespace.cuda.Device(dev.index):
        if is_device_array(array):  # another GPU: a peer copy
            return namespace.array(array, copy=True)
        return namespace.asarray(array)


def as_array(value) -> object:
    """`value` as an array for a Tensor: device arrays as they are, anything else through
    ``np.asarray``."""
    if isinstance(value, np.ndarray) or is_device_array(value):
        return value
    return np.asarray(value)


def check_same_device(arrays, op: str) -> None:
    """Refuse, as PyTorch, an op on arrays of two devices; a 0-d host array (a CPU scalar
    tensor) goes with any device. Called only when one of the arrays is on a device."""
    found = None
    for array in arrays:
        if isinstance(array, np.ndarray):
            if array.ndim == 0:
                continue
            where = CPU
        elif is_device_array(array):
            where = device_of(array)
        else:
            continue
        if found is None:
            found = where
        elif where != found:
            first, second = (found, where) if found.type == "cuda" else (where, found)
            raise RuntimeError(
                f"Expected all tensors to be on the same device, but found at least two "
                f"devices, {first} and {second}! ({op.lstrip('_')}: move them to one device "
                "first, e.g. with .to(other.device))")


def synchronize(dev=None) -> None:
    dev = cuda_device(dev, "synchronize()")
    if library() == "cupy":
        with cuda_namespace().cuda.Device(dev.index):
            cuda_namespace().cuda.runtime.deviceSynchronize()


def device_name(dev=None) -> str:
    dev = cuda_device(dev, "get_device_name()")
    if library() == "standin":
        return "corrnet stand-in CUDA device (NumPy)"
    properties = cuda_namespace().cuda.runtime.getDeviceProperties(dev.index)
    name = properties["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def memory_allocated(dev=None) -> int:
    """Bytes held by arrays on `dev` (CuPy's memory pool; the stand-in counts its live
    arrays); 0 without CUDA when no device is named, as PyTorch's."""
    if dev is None and not is_available():
        return 0
    dev = cuda_device(dev, "memory_allocated()")
    if library() == "standin":
        return cuda_namespace().bytes_in_use(dev.index)
    with cuda_namespace().cuda.Device(dev.index):
        return int(cuda_namespace().get_default_memory_pool().used_bytes())


# the stand-in's "free memory" (it has no memory of its own): tests shrink it to see the
# device budget at work; 16 GiB otherwise, a mid-sized GPU
STANDIN_MEMORY_BYTES = 16 * 2**30


def memory(dev=None) -> int:
    """Free bytes on CUDA device `dev` (None: the current one): CuPy's ``memGetInfo`` plus
    what its memory pool holds free for reuse; on the stand-in, `STANDIN_MEMORY_BYTES` less
    what its live arrays hold."""
    dev = cuda_device(dev, "memory()")
    if library() == "standin":
        return max(STANDIN_MEMORY_BYTES - cuda_namespace().bytes_in_use(dev.index), 0)
    cupy = cuda_namespace()
    with cupy.cuda.Device(dev.index):
        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(free) + int(cupy.get_default_memory_pool().free_bytes())


_tables: dict = {}  # (key, device) -> a host-built table copied to that device


def table_like(host, array, key=None):
    """The host array `host` on `array`'s device: `host` itself for a host `array`, else a
    copy there. With a hashable `key` (what `host` was built from), the copy is kept per
    device and handed out again, so a geometry table (window divisors, index tables) crosses
    to each device once. The caller must never write into the result.

    >>> table_like(np.arange(3), np.zeros(2)).tolist()
    [0, 1, 2]
    """
    if isinstance(array, np.ndarray) or not is_device_array(array):
        return host
    where = device_of(array)
    if key is None:
        return to_device(host, where)
    cached = _tables.get((key, where))
    if cached is None:
        if len(_tables) >= 512:  # a bound, for programs that see endless geometries
            _tables.clear()
        cached = _tables[(key, where)] = to_device(host, where)
    return cached


def using(array):
    """A context in which `array`'s CUDA device is the current one, so that the arrays a
    device kernel makes land beside it (``cupy.cuda.Device(i)``; the stand-in's alike)."""
    return cuda_namespace().cuda.Device(_device_index(array))


def max_memory_allocated(dev=None) -> int:
    """The most bytes `memory_allocated(dev)` has been since the start or the last
    `reset_peak_memory_stats(dev)`; 0 without CUDA when no device is named, as PyTorch's.
    With CuPy the peak is tracked from the first call of this function or of
    `reset_peak_memory_stats` on (call that one before the work to measure)."""
    if dev is None and not is_available():
        return 0
    dev = cuda_device(dev, "max_memory_allocated()")
    if library() == "standin":
        return cuda_namespace().peak_bytes_in_use(dev.index)
    return max(_track_peak_memory().peak.get(dev.index, 0), memory_allocated(dev))


def reset_peak_memory_stats(dev=None) -> None:
    dev = cuda_device(dev, "reset_peak_memory_stats()")
    if library() == "standin":
        cuda_namespace().reset_peak(dev.index)
    else:
        _track_peak_memory().peak[dev.index] = memory_allocated(dev)


def empty_cache() -> None:
    """Give the blocks CuPy's memory pools hold but no array uses back to the driver
    (nothing to give back on the stand-in, or without CUDA)."""
    if library() == "cupy":
        cuda_namespace().get_default_memory_pool().free_all_blocks()
        cuda_namespace().get_default_pinned_memory_pool().free_all_blocks()


class DeviceProperties:
    """What `device_properties` tells of a CUDA device, under PyTorch's attribute names."""

    def __init__(self, name, major, minor, total_memory, multi_processor_count):
        self.name, self.major, self.minor = name, major, minor
        self.total_memory, self.multi_processor_count = total_memory, multi_processor_count

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory // 2**20}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def device_properties(dev=None) -> DeviceProperties:
    """The name, compute capability, memory and multiprocessor count of a CUDA device (the
    stand-in: the host's memory and CPU count, capability 0.0)."""
    dev = cuda_device(dev, "get_device_properties()")
    if library() == "standin":
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            memory = 0
        return DeviceProperties(device_name(dev), 0, 0, memory, os.cpu_count() or 1)
    properties = cuda_namespace().cuda.runtime.getDeviceProperties(dev.index)
    return DeviceProperties(device_name(dev), int(properties["major"]),
                            int(properties["minor"]), int(properties["totalGlobalMem"]),
                            int(properties["multiProcessorCount"]))


def pin(array: np.ndarray) -> np.ndarray:
    """A page-locked copy of the host `array` (``cupyx.empty_pinned``; the stand-in only
    marks its copy), for faster and asynchronous copies to a CUDA device."""
    _require_cuda("pin_memory()")
    if library() == "standin":
        return cuda_namespace().pin(array)
    import cupyx

    pinned = cupyx.empty_pinned(array.shape, array.dtype)
    pinned[...] = array
    return pinned


def is_pinned(array) -> bool:
    """Whether the host `array` lives in page-locked memory (False without CUDA)."""
    if not isinstance(array, np.ndarray) or not is_available():
        return False
    if library() == "standin":
        return cuda_namespace().is_pinned(array)
    runtime = cuda_namespace().cuda.runtime
    try:
        attributes = runtime.pointerGetAttributes(array.ctypes.data)
    except Exception:  # memory CUDA never saw (older drivers raise for it)
        return False
    return getattr(attributes, "type", None) == getattr(runtime, "memoryTypeHost", 1)


def contiguous(array):
    """`array` in C order (itself when it is): ``np.ascontiguousarray`` on any device (NumPy
    does not dispatch that function to other array types)."""
    if isinstance(array, np.ndarray):
        return np.ascontiguousarray(array)
    return array if array.flags.c_contiguous else array.copy()
