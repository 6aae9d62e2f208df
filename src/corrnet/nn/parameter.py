"""`Parameter`: a tensor that a Module registers as learnable."""

from __future__ import annotations

import numpy as np

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


# -- uninitialized (lazy) parameters and buffers ----------------------------------------------

_UNINITIALIZED_HELP = (
    "This error happens when you are using a `LazyModule` or explicitly manipulating "
    "`corrnet.nn.parameter.{cls}` objects. When using LazyModules Call `forward` with a dummy "
    "batch to initialize the parameters before calling torch functions"
)


def _raw(tensor):
    """The array inside `tensor`, read past an uninitialized tensor's guard (for the few places
    that must: materializing, dtype conversion)."""
    return object.__getattribute__(tensor, "_data")


class UninitializedTensorMixin:
    """What `UninitializedParameter` and `UninitializedBuffer` share: a tensor whose shape is
    not known yet. As PyTorch, it can change dtype (``.double()``, ``.to(dtype)``) and be
    materialized; any use of its values raises ValueError and ``.shape`` RuntimeError, until
    `materialize(shape)` turns it, in place, into a `cls_to_become`."""

    cls_to_become: type = Tensor
    # attributes readable before materializing: those a Module, an optimizer and PyTorch's
    # allowed methods (size, dtype and device conversions, requires_grad) need
    _allowed = frozenset({
        "materialize", "cls_to_become", "size", "dtype", "device", "is_cuda", "is_leaf",
        "is_floating_point", "is_complex", "requires_grad", "requires_grad_", "grad",
        "grad_fn", "data", "to", "float", "double", "half", "cpu", "cuda", "get_device",
        "share_memory_", "shape", "retains_grad",
    })

    def __getattribute__(self, name):
        if (name.startswith("__") or name in UninitializedTensorMixin._allowed
                or (name.startswith("_") and name != "_data")):
            return object.__getattribute__(self, name)
        cls = type(self).__name__
        what = "a corrnet operation" if name == "_data" else f"<method '{name}' of 'Tensor'>"
        raise ValueError(f"Attempted to use an uninitialized parameter in {what}. "
                         + _UNINITIALIZED_HELP.format(cls=cls))

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give this tensor memory of `shape` (uninitialized values, as ``torch.empty``) and
        make it a `cls_to_become` in place: modules and optimizers that hold it keep it.

        >>> w = nn.UninitializedParameter()
        >>> w.materialize((2, 3))
        >>> type(w).__name__, tuple(w.shape)
        ('Parameter', (2, 3))
        """
        from .. import backend
        from ..tensor import _check_device

        device = _check_device(device)
        placeholder = _raw(self)
        if device is None and not isinstance(placeholder, np.ndarray):
            # moved with the module (Module.cuda() / .to('cuda')) before it ran: there
            from .. import devices

            device = devices.device_of(placeholder)
        array_dtype = placeholder.dtype if dtype is None else backend.as_dtype(dtype).numpy
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        array = np.empty(tuple(int(n) for n in shape), dtype=array_dtype)
        if device is not None and device.type != "cpu":
            from .. import devices

            array = devices.to_device(array, device)
        object.__setattr__(self, "_data", array)
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError(
            "Can't access the shape of an uninitialized parameter or buffer. This error usually "
            "happens in `load_state_dict` when trying to load an uninitialized parameter into "
            "an initialized one. Call `forward` to initialize the parameters before accessing "
            "their attributes."
        )

    def size(self, dim=None):  # PyTorch allows size(): the placeholder's, torch.Size([0])
        from ..tensor import Size

        return Size(_raw(self).shape) if dim is None else _raw(self).shape[dim]

    @property
    def dtype(self):
        from ..backend import from_numpy_dtype

        return from_numpy_dtype(_raw(self).dtype)

    @property
    def data(self):
        return _wrap(_raw(self))

    def is_floating_point(self) -> bool:
        return _raw(self).dtype.kind == "f"

    def is_complex(self) -> bool:
        return _raw(self).dtype.kind == "c"

    def to(self, *args, **kwargs):
        """Only a dtype change is possible (in place, as for a module's parameters)."""
        from .. import backend
        from ..tensor import _check_device, device

        dtype = kwargs.pop("dtype", None)
        _check_device(kwargs.pop("device", None))
        for arg in args:
            if isinstance(arg, (str, device)):
                _check_device(arg)
            elif arg is not None and not isinstance(arg, bool):
                dtype = arg
        if dtype is not None:
            object.__setattr__(self, "_data", _raw(self).astype(backend.as_dtype(dtype).numpy))
        return self

    def float(self):
        return self.to("float32")

    def double(self):
        return self.to("float64")

    def half(self):
        return self.to("float16")

    def cpu(self):
        return self

    def share_memory_(self):
        raise RuntimeError("Can't share memory on an uninitialized parameter or buffer. Call "
                           "`forward` to initialize the parameters before calling "
                           "`module.share_memory()`.")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        return (type(self), (self.requires_grad,))

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.requires_grad, dtype=self.dtype)
        return memo[id(self)]


def is_lazy(param) -> bool:
    """Whether `param` is an `UninitializedParameter` or `UninitializedBuffer`."""
    return isinstance(param, UninitializedTensorMixin)


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (a lazy module's, before its first forward).

    >>> nn.UninitializedParameter()
    <UninitializedParameter>
    """

    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        from ..tensor import empty

        Parameter.__init__(self, empty(0, dtype=dtype, device=device), requires_grad)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet (LazyBatchNorm's running statistics).

    >>> nn.UninitializedBuffer()
    <UninitializedBuffer>
    """

    cls_to_become = Tensor

    def __init__(self, requires_grad: bool = False, device=None, dtype=None,
                 persistent: bool = True):
        from ..tensor import empty

        self.__dict__.update(_wrap(_raw(empty(0, dtype=dtype, device=device))).__dict__)
        self.persistent = persistent
        if requires_grad:
            self.requires_grad_(True)
