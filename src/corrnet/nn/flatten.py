"""`Flatten`."""

from __future__ import annotations

from .module import Module


class Flatten(Module):
    """Flatten dimensions `start_dim` to `end_dim` into one: (N, C, H, W) -> (N, C*H*W) by
    default (the batch dimension is kept)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
