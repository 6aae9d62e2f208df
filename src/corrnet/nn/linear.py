"""`Linear` and `Identity`."""

from __future__ import annotations

import math
import numbers

from ..tensor import Tensor, empty
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Identity(Module):
    """Returns its input; accepts and ignores any constructor arguments (as PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x @ weight.T + bias``: weight (out_features, in_features), bias (out_features,).

    Initialized as PyTorch does: weight ~ kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in),
    1/sqrt(in)), bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).

    >>> nn.Linear(400, 120)
    Linear(in_features=400, out_features=120, bias=True)
    >>> nn.Linear(400, 120)(corrnet.rand(8, 400)).shape
    torch.Size([8, 120])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        if isinstance(out_features, bool):  # PyTorch's empty((out, in)) refuses a bool first
            raise TypeError(f"Linear: out_features must be an int, not bool ({out_features})")
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            # but a bool in_features is an int there (Linear(True, 3) has one input feature)
            if not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(empty(int(out_features), int(in_features), dtype=dtype,
                                      device=device))
        if bias:
            self.bias = Parameter(empty(int(out_features), dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if isinstance(input, Tensor) and (input.dim() == 0
                                          or input.shape[-1] != self.in_features):
            raise RuntimeError(
                f"{self!r}: expected input of shape (*, {self.in_features}) (its last dimension "
                f"is in_features={self.in_features}), but got input of shape "
                f"{tuple(input.shape)}"
            )
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
