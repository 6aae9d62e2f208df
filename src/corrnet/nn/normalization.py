"""Batch normalization: `BatchNorm1d`, `BatchNorm2d`; and (issue 12) `LayerNorm`, `GroupNorm`,
`InstanceNorm1d`, `InstanceNorm2d`, `LocalResponseNorm`."""

from __future__ import annotations

import numbers
import warnings

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


# ---------------------------------------------------------------------------------------------
# issue 12: layer, group, instance and local response normalization
# ---------------------------------------------------------------------------------------------


def _affine_parameters(module, shape, affine: bool, bias: bool, dtype, device) -> None:
    """LayerNorm's and GroupNorm's learnt ``* weight + bias`` of `shape` (ones and zeros),
    or None for each one left out."""
    module.register_parameter(
        "weight", Parameter(empty(shape, dtype=dtype, device=device)) if affine else None)
    module.register_parameter(
        "bias", Parameter(empty(shape, dtype=dtype, device=device)) if affine and bias else None)
    module.reset_parameters()


def _reset_affine(module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class LayerNorm(Module):
    """Normalize each sample over its trailing dimensions `normalized_shape` (mean 0, biased
    variance 1), then ``* weight + bias`` (learnt, of shape normalized_shape; ones and zeros
    at first) when `elementwise_affine`; ``bias=False`` keeps only the weight.

    >>> nn.LayerNorm(2)(corrnet.tensor([[1., 3.]])).detach()
    tensor([[-1.0000,  1.0000]])
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype, device)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Split the `num_channels` channels into `num_groups` groups and normalize each group of
    each sample over its channels and positions; then a learnt per-channel
    ``* weight + bias`` when `affine`.

    >>> nn.GroupNorm(1, 2)(corrnet.tensor([[[1.], [3.]]])).detach().reshape(-1)
    tensor([-1.0000,  1.0000])
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        _affine_parameters(self, (num_channels,), affine, bias, dtype, device)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _InstanceNorm(_BatchNorm):
    """Normalize each channel of each sample over its positions (batch statistics, also in
    eval mode unless `track_running_stats`); parameters and buffers as batch normalization's,
    but without affine parameters or running statistics by default."""

    _batched_dim = 0  # the rank of a batched input

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def _check_input_dim(self, input) -> None:
        if input.dim() not in (self._batched_dim - 1, self._batched_dim):
            raise ValueError(f"expected {self._batched_dim - 1}D or {self._batched_dim}D input "
                             f"(got {input.dim()}D input of shape {tuple(input.shape)})")

    def forward(self, input):
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a Tensor, got "
                            f"{type(input).__name__}")
        self._check_input_dim(input)
        feature_dim = input.dim() - (self._batched_dim - 1)
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match "
                                 f"num_features ({self.num_features}), but got: "
                                 f"{input.shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You "
                          "can silence this warning by not passing in num_features, which is "
                          "not used because affine=False", stacklevel=2)
        unbatched = input.dim() == self._batched_dim - 1
        x = input.unsqueeze(0) if unbatched else input
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of (N, C, L) or unbatched (C, L) input."""

    _batched_dim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of (N, C, H, W) or unbatched (C, H, W) input: each channel of
    each sample normalized over its H x W positions.

    >>> nn.InstanceNorm2d(1)(corrnet.tensor([[[[1., 3.]]]])).reshape(-1)
    tensor([-1.0000,  1.0000])
    """

    _batched_dim = 4


class LocalResponseNorm(Module):
    """Divide each element by ``(k + alpha / size * sum of squares over `size` neighbouring
    channels) ** beta`` (AlexNet's normalization, PyTorch's formula: a zero-padded average
    over the channel window).

    >>> nn.LocalResponseNorm(1, alpha=1.0, beta=1.0)(corrnet.ones(1, 1, 2)).reshape(-1)
    tensor([0.5000, 0.5000])
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
