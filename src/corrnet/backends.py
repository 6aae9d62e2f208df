"""Settings of corrnet's kernels, named after ``torch.backends``.

    corrnet.backends.conv.benchmark = True          # time the algorithms once per shape
    corrnet.backends.conv.memory_budget = 2**30     # bytes of buffers one conv pass may hold
    corrnet.backends.conv.algorithm = "fft"         # force one algorithm where it applies
    corrnet.backends.conv.tune()                    # measure this machine once (corrnet tune)
    corrnet.backends.conv.calibration = False       # ignore the machine's calibration file
    corrnet.backends.numba.enabled = False          # NumPy kernels only
    corrnet.backends.memory.release()               # give the heap's free memory back

``corrnet.backends.cudnn`` is another name for ``conv``, so that PyTorch code setting
``torch.backends.cudnn.benchmark = True`` turns on the same autotuning here.
"""

from __future__ import annotations

from .kernels import heap as _heap
from .kernels import jit as _jit
from .kernels.plan import settings as conv

cudnn = conv


class _Numba:
    """Whether the compiled (numba) kernels run; `available` says whether numba is installed."""

    @property
    def available(self) -> bool:
        return _jit.AVAILABLE

    @property
    def enabled(self) -> bool:
        return _jit.enabled()

    @enabled.setter
    def enabled(self, flag: bool) -> None:
        _jit.use_compiled(flag)

    def __repr__(self) -> str:
        return f"numba settings(available={self.available}, enabled={self.enabled})"


numba = _Numba()


class _Memory:
    """The process heap (kernels/heap.py): whether corrnet set glibc's malloc to keep large
    freed blocks for reuse (`keeps_freed`, at import; ``CORRNET_KEEP_FREED_MEMORY=0`` before
    the import leaves glibc's defaults), and `release` to hand free memory back now."""

    @property
    def keeps_freed(self) -> bool:
        return _heap.kept()

    @staticmethod
    def release() -> bool:
        """Give the heap's free memory back to the system (glibc's malloc_trim); whether any
        was given back."""
        return _heap.release()

    def __repr__(self) -> str:
        why = _heap.chosen_elsewhere()
        return (f"memory settings(keeps_freed={self.keeps_freed}"
                + (f", left to {why}" if why and not self.keeps_freed else "") + ")")


memory = _Memory()

__all__ = ["conv", "cudnn", "memory", "numba"]
