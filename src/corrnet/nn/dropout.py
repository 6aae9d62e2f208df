"""`Dropout`, `Dropout2d`."""

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


class Dropout2d(Dropout):
    """Channel-wise dropout of (N, C, H, W) input: in training mode, zero each whole channel
    input[n, c] with probability `p` and scale the others by 1/(1-p); in eval mode, the
    identity. (A 3-D input is taken as (N, C, L), with PyTorch's warning.)

    >>> nn.Dropout2d(0.5).eval()(corrnet.ones(1, 2, 1, 1)).reshape(-1)
    tensor([1., 1.])
    """

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)
