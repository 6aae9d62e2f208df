"""PyTorch's legacy tensor types: ``corrnet.FloatTensor``, ``LongTensor``, ...

Each is a constructor of tensors of one dtype, called with sizes (an uninitialized tensor)
or with data (a copy), and a type that ``isinstance`` checks by dtype, as in PyTorch:

>>> x = corrnet.FloatTensor(2, 3)
>>> isinstance(x, corrnet.FloatTensor), isinstance(x, corrnet.LongTensor)
(True, False)
>>> corrnet.LongTensor([1, 2]).type()
'torch.LongTensor'
"""

from __future__ import annotations

from . import backend
from .tensor import Tensor


class _LegacyTensorType(type):
    """The metaclass: calling the class makes a `Tensor` of its dtype; `isinstance` holds for
    the tensors of that dtype."""

    def __call__(cls, *args, device=None):
        if not args:  # FloatTensor(): an empty 1-d tensor
            args = (0,)
        if len(args) == 1 and isinstance(args[0], Tensor):
            source = args[0]
            if source.dtype != cls.dtype:
                raise TypeError(f"expected {cls.__name__.removesuffix('Tensor')} (got "
                                f"{source.dtype}); convert it with .to({cls.dtype})")
            return source
        return Tensor(*args, dtype=cls.dtype, device=device)

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, Tensor) and instance.dtype == cls.dtype

    def __repr__(cls) -> str:
        return f"<class 'torch.{cls.__name__}'>"


def _legacy_type(name: str, dtype) -> type:
    return _LegacyTensorType(name, (), {"dtype": dtype, "is_cuda": False,
                                        "__doc__": f"Tensors of dtype {dtype}."})


FloatTensor = _legacy_type("FloatTensor", backend.float32)
DoubleTensor = _legacy_type("DoubleTensor", backend.float64)
HalfTensor = _legacy_type("HalfTensor", backend.float16)
LongTensor = _legacy_type("LongTensor", backend.int64)
IntTensor = _legacy_type("IntTensor", backend.int32)
ShortTensor = _legacy_type("ShortTensor", backend.int16)
CharTensor = _legacy_type("CharTensor", backend.int8)
ByteTensor = _legacy_type("ByteTensor", backend.uint8)
BoolTensor = _legacy_type("BoolTensor", backend.bool_)

__all__ = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
           "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor"]
