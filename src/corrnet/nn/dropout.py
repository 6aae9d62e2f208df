"""`Dropout`."""

from __future__ import annotations

from .._args import check_float
from . import functional as F
from .module import Module


class Dropout(Module):
    """In training mode, zero each element with probability `p` and scale the rest by
    1/(1-p); in eval mode, the identity."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= check_float("Dropout", "p", p) <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
