"""``corrnet.cuda``: PyTorch's ``torch.cuda`` functions over corrnet's devices module.

CUDA is available where CuPy imports and sees a GPU, or (for tests without one) where the
environment variable ``CORRNET_STANDIN_CUDA=N`` asks for N stand-in devices; elsewhere
`is_available()` is False and `device_count()` 0, and the functions that need a device raise
a RuntimeError that says so.

>>> import corrnet
>>> corrnet.cuda.is_available() in (True, False)
True
"""

from __future__ import annotations

from . import devices


def is_available() -> bool:
    """Whether a CUDA device can hold tensors (CuPy with a GPU, or the stand-in)."""
    return devices.is_available()


def device_count() -> int:
    return devices.device_count()


def current_device() -> int:
    """The index of the device ``'cuda'`` without an index means."""
    return devices.current_device()


def set_device(device) -> None:
    """Make `device` (an int, ``'cuda:N'`` or a device) the current CUDA device."""
    devices.set_device(device)


def get_device_name(device=None) -> str:
    return devices.device_name(device)


def synchronize(device=None) -> None:
    """Wait for the device's queued work to finish (nothing to wait for on the stand-in)."""
    devices.synchronize(device)


def memory_allocated(device=None) -> int:
    """Bytes held by tensors on `device` (CuPy's memory pool in use)."""
    return devices.memory_allocated(device)


def manual_seed(seed: int) -> None:
    """Seed the random numbers of the CUDA devices. corrnet draws them on the host, from the
    generator that ``corrnet.manual_seed`` seeds, so with CUDA available this seeds that
    generator; without CUDA it does nothing, as PyTorch's (so CPU draws are unchanged)."""
    if devices.is_available():
        from .tensor import manual_seed as seed_host

        seed_host(seed)


manual_seed_all = manual_seed


def is_initialized() -> bool:
    return devices.is_available()
