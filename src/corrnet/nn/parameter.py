"""`Parameter`: a tensor that a Module registers as learnable."""

from __future__ import annotations

from ..tensor import Tensor, _wrap


class Parameter(Tensor):
    """A leaf tensor that requires grad and that `Module` registers on attribute assignment.

    It shares storage with the tensor it is made from:

    >>> w = nn.Parameter(corrnet.zeros(2))
    >>> w
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            from ..tensor import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        self.__dict__.update(_wrap(data._data).__dict__)
        if requires_grad:
            self.requires_grad_(True)
