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


class Event:
    """A marker in the current CUDA device's queue of work, as ``torch.cuda.Event``: to time
    work on the device (``enable_timing=True``, `record` before and after, `elapsed_time` in
    milliseconds) or wait for it (`synchronize`, `query`).

    On CuPy it is a CUDA event (``cupy.cuda.Event``) recorded on CuPy's current stream; on
    the stand-in, where every op has finished when it returns, `record` notes the host's
    clock. corrnet has no Stream objects: `record` and `wait` take no stream.

    >>> start = corrnet.cuda.Event(enable_timing=True)  # doctest: +SKIP
    >>> start.record(); ...; end.record(); end.synchronize()  # doctest: +SKIP
    >>> start.elapsed_time(end)  # doctest: +SKIP
    0.42
    """

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False):
        devices._require_cuda("cuda.Event()")
        self.enable_timing = bool(enable_timing)
        self._recorded_at = None  # the stand-in's record time (time.perf_counter)
        self._recorded = False
        self._event = None
        if devices.library() == "cupy":
            self._event = devices.cuda_namespace().cuda.Event(
                block=blocking, disable_timing=not enable_timing, interprocess=interprocess)

    @staticmethod
    def _no_stream(stream, what: str) -> None:
        if stream is not None:
            raise TypeError(f"Event.{what}(stream=...): corrnet has no Stream objects; its "
                            "work runs on CuPy's current stream (leave stream out)")

    def record(self, stream=None) -> None:
        """Mark this point of the device's queued work."""
        self._no_stream(stream, "record")
        if self._event is not None:
            self._event.record()
        else:
            import time

            self._recorded_at = time.perf_counter()
        self._recorded = True

    def query(self) -> bool:
        """Whether the work before the marker has finished (True when never recorded)."""
        return True if self._event is None else bool(self._event.done)

    def synchronize(self) -> None:
        """Wait until the work before the marker has finished."""
        if self._event is not None and self._recorded:
            self._event.synchronize()

    def wait(self, stream=None) -> None:
        """Make later work on the current stream wait for the marker."""
        self._no_stream(stream, "wait")
        if self._event is not None and self._recorded:
            devices.cuda_namespace().cuda.get_current_stream().wait_event(self._event)

    def elapsed_time(self, end_event: Event) -> float:
        """Milliseconds between this event's record and `end_event`'s (both need
        ``enable_timing=True`` and a `record`; the end event must have completed)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Event.elapsed_time: both events must be created with argument "
                               "'enable_timing=True'.")
        if not (self._recorded and end_event._recorded):
            raise RuntimeError("Event.elapsed_time: both events must be recorded before "
                               "calculating elapsed time.")
        if self._event is None:
            return (end_event._recorded_at - self._recorded_at) * 1e3
        return float(devices.cuda_namespace().cuda.get_elapsed_time(self._event,
                                                                    end_event._event))

    def __repr__(self) -> str:
        return f"<corrnet.cuda.Event {'recorded' if self._recorded else 'unrecorded'}>"
