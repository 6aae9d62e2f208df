"""`Flatten`."""

from __future__ import annotations

from .._args import check_int, type_name
from ..tensor import Tensor
from .module import Module


class Flatten(Module):
    """Flatten dimensions `start_dim` to `end_dim` into one: (N, C, H, W) -> (N, C*H*W) by
    default (the batch dimension is kept)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        if not isinstance(input, Tensor):
            raise TypeError(f"Flatten: input must be a Tensor, got {type_name(input)}")
        start = check_int("flatten", "start_dim", self.start_dim)  # checked when called, as
        end = check_int("flatten", "end_dim", self.end_dim)  # PyTorch (a bool is no int)
        return input.flatten(start, end)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
