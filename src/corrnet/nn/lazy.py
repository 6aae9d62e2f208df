"""Lazy modules: layers whose input size is inferred from their first input.

``nn.LazyLinear(256)`` is an `nn.Linear` whose ``in_features`` is read off the first input.
Until that first call its parameters are `UninitializedParameter` objects (printed
``<UninitializedParameter>``); the first forward materializes them *in place* (an optimizer
built before holds the same objects), initializes them as the ordinary layer's
``reset_parameters`` does, and turns the module into that layer: afterwards
``type(m) is nn.Linear``. ``load_state_dict`` into a module that has not run materializes the
parameters from the state dict instead.

>>> net = nn.Sequential(nn.LazyConv2d(6, 5), nn.Flatten(), nn.LazyLinear(10))
>>> net[0]
LazyConv2d(0, 6, kernel_size=(5, 5), stride=(1, 1))
>>> net(corrnet.rand(1, 1, 28, 28)).shape
torch.Size([1, 10])
>>> net[0]
Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
"""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor, tensor
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .linear import Linear
from .normalization import BatchNorm1d, BatchNorm2d
from .parameter import UninitializedBuffer, UninitializedParameter, is_lazy


class LazyModuleMixin:
    """Put first among a lazy layer's bases: ``class LazyLinear(LazyModuleMixin, Linear)``.

    A subclass defines ``initialize_parameters(input)`` (materialize the parameters from the
    input's shape and reset them) and ``cls_to_become``, the class the module takes once
    nothing is left uninitialized. The inference runs as a forward pre-hook, so a direct
    ``module.forward(x)`` does not trigger it (as in PyTorch).
    """

    cls_to_become: type | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters,
                                                               with_kwargs=True)

    def initialize_parameters(self, *args, **kwargs) -> None:
        raise NotImplementedError(
            f"initialize_parameters is not implemented for {type(self).__name__}")

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer of this module is still uninitialized."""
        return any(is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def _infer_parameters(self, module, args, kwargs=None) -> None:
        if not args or not isinstance(args[0], Tensor):
            raise TypeError(f"{type(self).__name__}: the first input must be a Tensor (its "
                            f"shape sizes the parameters), got "
                            f"{type(args[0]).__name__ if args else 'no input'}")
        module.initialize_parameters(*args, **(kwargs or {}))
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {type(self).__name__} has not been fully initialized")
        module._initialize_hook.remove()
        del module.__dict__["_initialize_hook"]
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become


class LazyLinear(LazyModuleMixin, Linear):
    """`nn.Linear` with ``in_features`` inferred from the first input's last dimension.

    >>> nn.LazyLinear(256)
    LazyLinear(in_features=0, out_features=256, bias=True)
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__(0, out_features, False, device=device, dtype=dtype)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        if self.has_uninitialized_params():
            if input.dim() == 0:
                raise RuntimeError(f"{type(self).__name__}: expected an input with at least one "
                                   "dimension (its last is in_features), got a 0-d tensor")
            self.in_features = int(input.shape[-1])
            self.weight.materialize((self.out_features, self.in_features))
            if self.bias is not None:
                self.bias.materialize((self.out_features,))
            self.reset_parameters()
        elif self.in_features == 0:  # materialized by load_state_dict
            self.in_features = int(self.weight.shape[-1])


class _LazyConvMixin(LazyModuleMixin):
    """What the lazy convolutions share: ``in_channels`` from the input's channel dimension
    (dimension 1 of a batch, 0 of a single unbatched sample)."""

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", output_padding=0, device=None, dtype=None):
        geometry = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                        dilation=dilation, groups=groups, padding_mode=padding_mode)
        if self.transposed:
            geometry["output_padding"] = output_padding
        # the ordinary layer checks and stores the geometry; its parameters are replaced
        super().__init__(0, 0, bias=False, device=device, dtype=dtype, **geometry)
        self.out_channels = out_channels
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def _get_in_channels(self, input) -> int:
        batched = self.dims + 2
        if input.dim() not in (batched - 1, batched):
            raise RuntimeError(f"Expected {batched - 1}D (unbatched) or {batched}D (batched) "
                               f"input to {type(self).__name__}, but got input of size: "
                               f"{input.shape}")
        return int(input.shape[1] if input.dim() == batched else input.shape[0])

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if not self.has_uninitialized_params():
            if self.in_channels == 0:  # materialized by load_state_dict
                self.in_channels = int(self.weight.shape[0 if self.transposed else 1]) * (
                    1 if self.transposed else self.groups)
            return
        self.in_channels = self._get_in_channels(input)
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels must be divisible by groups: {type(self).__name__} "
                             f"got {self.in_channels} input channels for groups={self.groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels must be divisible by groups: {type(self).__name__} "
                             f"has out_channels={self.out_channels}, groups={self.groups}")
        if self.transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight.materialize(shape)
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()


class LazyConv1d(_LazyConvMixin, Conv1d):
    """`nn.Conv1d` with ``in_channels`` inferred from the first input.

    >>> nn.LazyConv1d(4, 3)
    LazyConv1d(0, 4, kernel_size=(3,), stride=(1,))
    """

    cls_to_become = Conv1d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class LazyConv2d(_LazyConvMixin, Conv2d):
    """`nn.Conv2d` with ``in_channels`` inferred from the first input.

    >>> nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1)
    LazyConv2d(0, 96, kernel_size=(11, 11), stride=(4, 4), padding=(1, 1))
    """

    cls_to_become = Conv2d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class LazyConvTranspose1d(_LazyConvMixin, ConvTranspose1d):
    """`nn.ConvTranspose1d` with ``in_channels`` inferred from the first input."""

    cls_to_become = ConvTranspose1d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)


class LazyConvTranspose2d(_LazyConvMixin, ConvTranspose2d):
    """`nn.ConvTranspose2d` with ``in_channels`` inferred from the first input.

    >>> nn.LazyConvTranspose2d(3, kernel_size=4, stride=2, padding=1)
    LazyConvTranspose2d(0, 3, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))
    """

    cls_to_become = ConvTranspose2d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)


class _LazyNormMixin(LazyModuleMixin):
    """What the lazy batch norms share: ``num_features`` from the input's dimension 1."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__(0, eps, momentum, False, False, device=device, dtype=dtype,
                         bias=False)
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = tensor(0, dtype=backend.int64)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        if not self.has_uninitialized_params():
            if self.num_features == 0:  # materialized by load_state_dict
                known = self.weight if self.affine else self.running_mean
                if known is not None:
                    self.num_features = int(known.shape[0])
            return
        if input.dim() < 2:
            self._check_input_dim(input)  # the ordinary layer's message
        self.num_features = int(input.shape[1])
        for name in ("weight", "bias", "running_mean", "running_var"):
            value = getattr(self, name)
            if value is not None:
                value.materialize((self.num_features,))
        self.reset_parameters()


class LazyBatchNorm1d(_LazyNormMixin, BatchNorm1d):
    """`nn.BatchNorm1d` with ``num_features`` inferred from the first input.

    >>> nn.LazyBatchNorm1d()
    LazyBatchNorm1d(0, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormMixin, BatchNorm2d):
    """`nn.BatchNorm2d` with ``num_features`` inferred from the first input.

    >>> nn.LazyBatchNorm2d()
    LazyBatchNorm2d(0, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    cls_to_become = BatchNorm2d
