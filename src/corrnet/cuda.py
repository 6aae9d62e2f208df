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


def max_memory_allocated(device=None) -> int:
    """The most bytes `memory_allocated(device)` has been since the start of the program or
    the last `reset_peak_memory_stats(device)` (with CuPy, tracked from the first call of
    either: allocations pay for the tracking only from then on)."""
    return devices.max_memory_allocated(device)


def reset_peak_memory_stats(device=None) -> None:
    """Start `max_memory_allocated(device)` again from what is allocated now."""
    devices.reset_peak_memory_stats(device)


def empty_cache() -> None:
    """Give the memory CuPy's pools cache but no tensor uses back to the driver, so that
    other programs (nvidia-smi) see it free; a no-op on the stand-in and without CUDA."""
    devices.empty_cache()


def get_device_properties(device=None) -> devices.DeviceProperties:
    """``name``, ``major``, ``minor``, ``total_memory`` (bytes) and ``multi_processor_count``
    of a CUDA device, as PyTorch's."""
    return devices.device_properties(device)


def manual_seed(seed: int) -> None:
    """Seed the random numbers of the CUDA devices. corrnet draws them on the host, from the
    generator that ``corrnet.manual_seed`` seeds, so with CUDA available this seeds that
    generator; without CUDA it does nothing, as PyTorch's (so CPU draws are unchanged)."""
    if devices.is_available():
        from .tensor import manual_seed as seed_host

        seed_host(seed)


manual_seed_all = manual_seed


def seed() -> None:
    """Seed the CUDA random numbers non-deterministically (the host generator, as
    `manual_seed`); without CUDA it does nothing, as PyTorch's."""
    if devices.is_available():
        from .tensor import seed as seed_host

        seed_host()


seed_all = seed


def initial_seed() -> int:
    """The seed the CUDA random numbers were last seeded with (needs CUDA, as PyTorch's)."""
    devices._require_cuda("cuda.initial_seed()")
    from .tensor import initial_seed as host_initial_seed

    return host_initial_seed()


def is_initialized() -> bool:
    return devices.is_available()
