"""Batch normalization: `BatchNorm1d`, `BatchNorm2d`."""

from __future__ import annotations

import numbers

from .. import backend
from ..tensor import Tensor, empty, ones, tensor, zeros
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    """Normalizes each channel (dimension 1) by batch statistics in training mode, by running
    statistics in eval mode (when `track_running_stats`).

    Running statistics: ``running = (1 - momentum) * running + momentum * batch`` (unbiased
    batch variance); ``momentum=None`` gives the cumulative average (factor
    1 / num_batches_tracked).
    """

    _expected = ""  # the accepted input shapes, for messages

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        # num_features sizes the parameters and running statistics; without either (affine and
        # track_running_stats False) PyTorch never looks at it, and neither does corrnet
        if affine or track_running_stats:
            if not isinstance(num_features, numbers.Integral) or isinstance(num_features, bool):
                raise TypeError(f"{type(self).__name__}: num_features must be an int, got "
                                f"{num_features!r}")
            if num_features < 0:  # 0 features is accepted, as PyTorch (zero-size tensors)
                raise ValueError(f"{type(self).__name__}: num_features must be a non-negative "
                                 f"int, got {num_features!r}")
            num_features = int(num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(empty(num_features, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(empty(num_features, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=backend.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input) -> None:
        raise NotImplementedError

    def forward(self, input):
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a Tensor, got "
                            f"{type(input).__name__}")
        self._check_input_dim(input)
        if (self.affine or self.track_running_stats) and input.shape[1] != self.num_features:
            raise RuntimeError(
                f"{self!r}: expected input with num_features={self.num_features} channels in "
                f"dimension 1, {self._expected.replace('C', str(self.num_features))}, but got "
                f"input of shape {tuple(input.shape)}"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # the cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep else None,
                            self.running_var if keep else None, self.weight, self.bias,
                            use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) inputs, per channel C."""

    _expected = "(N, C) or (N, C, L)"

    def _check_input_dim(self, input) -> None:
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: expected 2D or 3D input {self._expected} "
                             f"(got {input.dim()}D input of shape {tuple(input.shape)})")


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) inputs, per channel C."""

    _expected = "(N, C, H, W)"

    def _check_input_dim(self, input) -> None:
        if input.dim() != 4:
            raise ValueError(f"{type(self).__name__}: expected 4D input {self._expected} (got "
                             f"{input.dim()}D input of shape {tuple(input.shape)})")
