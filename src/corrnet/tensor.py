"""`Tensor`: a NumPy array with a dtype, a gradient and a place in the autograd graph.

Names and semantics follow PyTorch, so that code written for ``torch`` runs with
``import corrnet as torch``. The differentiable ops themselves live in ops.py (tensor ops),
functional.py (convolution, pooling, activations) and are recorded by autograd.py.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import math
import numbers
import operator
import sys
import warnings
import weakref
from collections import namedtuple

import numpy as np

from . import _args, backend, devices, ops
from ._args import check_float as _check_float
from .autograd import AccumulateGrad, is_grad_enabled, no_grad, run_backward  # noqa: F401 (re-exported)
from .backend import as_dtype, from_numpy_dtype, result_type


class Size(tuple):
    """A tensor's shape: a tuple printed as PyTorch prints it, ``torch.Size([8, 8])``."""

    def __repr__(self) -> str:
        return f"torch.Size([{', '.join(str(n) for n in self)}])"

    __str__ = __repr__

    def __getitem__(self, item):
        result = tuple.__getitem__(self, item)
        return Size(result) if isinstance(item, slice) else result

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


from .devices import CPU, device  # noqa: E402,F401 (re-exported: corrnet.device)


def _type_name(value) -> str:
    return "None" if value is None else type(value).__name__


def _refuse_cuda(what: str):
    devices._require_cuda(what)


def _check_device(dev, what: str = "device"):
    """`dev` as a checked device (None: None, the caller's default): a cuda device needs
    CUDA available and an index below the device count."""
    if dev is None or dev == "cpu":
        return None if dev is None else CPU
    return devices.as_device(dev, f"{what} {str(dev)!r}")


def _place(t, dev):
    """`t` moved (in place, as it was just made) to the checked device `dev`."""
    if dev is not None and dev.type != "cpu":
        t._data = devices.to_device(t._data, dev)
    return t


def _return_type(name: str):
    """A (values, indices) named tuple printed as PyTorch prints ``torch.return_types``."""

    class ReturnType(namedtuple(name, ["values", "indices"])):
        __slots__ = ()

        def __repr__(self) -> str:
            return (f"torch.return_types.{name}(\nvalues={self.values!r},\n"
                    f"indices={self.indices!r})")

    ReturnType.__name__ = ReturnType.__qualname__ = name
    return ReturnType


max_result, min_result = _return_type("max"), _return_type("min")


class aminmax_result(namedtuple("aminmax", ["min", "max"])):  # noqa: N801 (PyTorch's name)
    """aminmax's (min, max), printed as PyTorch prints it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"torch.return_types.aminmax(\nmin={self.min!r},\nmax={self.max!r})"
sort_result, topk_result = _return_type("sort"), _return_type("topk")
cummax_result, cummin_result = _return_type("cummax"), _return_type("cummin")
median_result, nanmedian_result = _return_type("median"), _return_type("nanmedian")
kthvalue_result, mode_result = _return_type("kthvalue"), _return_type("mode")


def _check_unique_slices(op: str, data, axis: int) -> None:
    """Empty slices: PyTorch refuses them where there are some along `axis`, or where
    another dimension is empty too."""
    if data.size == 0 and data.shape[axis]:
        raise RuntimeError(f"{op}(): There are 0 sized dimensions, and they aren't selected, "
                           f"so unique cannot be applied (shape {data.shape}, dim {axis})")
    if data.shape.count(0) > 1:
        raise RuntimeError(f"{op}(): Number of zero sized dimensions is more than one, so "
                           f"unique cannot be applied (shape {data.shape})")


def _unique_result(source, aten_name: str, values, inverse, counts, return_inverse: bool,
                   return_counts: bool):
    """unique's tensor, or the tuple with its inverse and counts as asked. Where `source`
    requires grad the values do too, as PyTorch's, and a backward pass through them raises
    (PyTorch does not differentiate unique)."""
    if source.requires_grad and is_grad_enabled():
        node = "Unique2Backward0" if aten_name == "_unique2" else "UniqueConsecutiveBackward0"
        result = (ops.NotDifferentiable.apply(source, values, aten_name, node),)
    else:
        result = (_wrap(values),)
    if return_inverse:
        result += (_wrap(inverse.astype(np.int64)),)
    if return_counts:
        result += (_wrap(counts.astype(np.int64)),)
    return result[0] if len(result) == 1 else result


# the references to a gradient array that only the backward engine holds, as
# `_only_reference` counts them: the engine's `grad`, `Tensor._accumulate_grad`'s,
# `_only_reference`'s argument and sys.getrefcount's own
_ENGINE_REFERENCES = 4
# where reference counts count every reference (CPython up to 3.13; 3.14's interpreter may
# hold references on its stack that it does not count, and PyPy has none to read): elsewhere
# every first gradient is copied
_COUNTS_REFERENCES = sys.implementation.name == "cpython" and sys.version_info < (3, 14)


def _only_reference(array) -> bool:
    """Whether `array`, passed by the backward engine to `Tensor._accumulate_grad`, is a plain
    writeable NumPy array that owns its memory (it views no other array) and that nothing
    but the engine refers to (CPython's reference count: no other tensor, hook, list or
    array view holds it)."""
    return (_COUNTS_REFERENCES and type(array) is np.ndarray and array.flags.owndata
            and array.flags.writeable and sys.getrefcount(array) <= _ENGINE_REFERENCES)


def _wrap(array, grad_fn=None, version=None):
    """Make a Tensor around `array` without copying (the internal constructor)."""
    t = object.__new__(Tensor)
    t._data = array if isinstance(array, np.ndarray) else devices.as_array(array)
    t.grad_fn = grad_fn
    t._requires_grad = grad_fn is not None
    t.grad = None
    t._version = version if version is not None else [0]
    t._base = None  # the tensor whose memory this one views (for in-place ops on views)
    t._view_fn = None  # array of the base -> array of this view
    t._view_version = None  # for a view: the version at which grad_fn was derived from the base
    t._accumulator = None  # a weak reference to the leaf's AccumulateGrad node
    t._leaf_hooks = None  # a leaf's hook tables: (register_hook's, post-accumulate's)
    return t


def _numpy_names(method):
    """Accept NumPy's keyword names as PyTorch does: ``axis=`` for ``dim=`` and ``keepdims=``
    for ``keepdim=`` (``x.argmax(axis=1)``, ``x.sum(axis=0, keepdims=True)``)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        for alias, name in (("axis", "dim"), ("keepdims", "keepdim")):
            if alias in kwargs:
                if name in kwargs:
                    raise TypeError(f"{method.__name__}() got both '{name}' and its alias "
                                    f"'{alias}'")
                kwargs[name] = kwargs.pop(alias)
        return method(self, *args, **kwargs)

    return wrapper


_ALL = object()  # max()/min() without dim: over every element (PyTorch refuses dim=None)


def _is_operand(value) -> bool:
    """Whether `value` can be an arithmetic operand: a Tensor, a number, a NumPy array or
    scalar."""
    return isinstance(value, (Tensor, numbers.Number, np.generic, np.ndarray))


# squeeze's default: every size-1 dim (an explicit None is refused, as PyTorch)
_ALL_DIMS = object()


def _method_operand(name: str, argument: str, value):
    """`value`, the Tensor-or-number argument of a method (``x.mul(other)``); anything else
    is refused as PyTorch refuses it, not left to the operator protocol (`_operator`), where
    ``x * '2'`` would repeat the str."""
    if not _is_operand(value):
        raise TypeError(f"{name}(): argument '{argument}' must be Tensor or Number, not "
                        f"{_args.type_name(value)}")
    return value


def _operator(method):
    """A Tensor's arithmetic or bitwise operator (``x * other``): NotImplemented for an
    operand that is not a Tensor, a number or a NumPy array or scalar, so that Python tries
    the other operand's reflected method, as with PyTorch's tensors (``[1, 2] * x`` repeats the
    list by a one-element integer tensor; a class of the user's gets its ``__rmul__``), and
    otherwise raises its own TypeError ("unsupported operand type(s) for *")."""
    @functools.wraps(method)
    def operator(self, other):
        if not _is_operand(other):
            return NotImplemented
        return method(self, other)

    return operator


class Tensor:
    """A multi-dimensional array that records the ops applied to it for `backward()`.

    >>> x = corrnet.tensor([[0., 1.], [2., 3.]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([[0., 2.],
            [4., 6.]])
    """

    __array_priority__ = 1000  # numpy scalars and arrays defer to Tensor's operators

    def __init__(self, *args, dtype=None, device=None):
        # torch.Tensor(2, 3) is an uninitialized float tensor; torch.Tensor([1, 2]) a copy
        device = _check_device(device)
        dtype = as_dtype(dtype) if dtype is not None else backend.get_default_dtype()
        if len(args) == 1 and not isinstance(args[0], numbers.Integral):
            array = np.array(_plain(args[0]), dtype=dtype.numpy)
        else:
            array = np.empty(_shape_arg(args), dtype=dtype.numpy)
        self.__dict__.update(_place(_wrap(array), device).__dict__)

    # -- basic properties ----------------------------------------------------------------------

    @property
    def dtype(self) -> backend.dtype:
        return from_numpy_dtype(self._data.dtype)

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @_numpy_names
    def size(self, dim=None):
        if dim is None:
            return self.shape
        if self.dim() == 0:
            _args.check_int("size", "dim", dim, position=1)
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return self._data.shape[_args.check_dim("size", dim, self.dim())]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def device(self) -> device:
        return CPU if isinstance(self._data, np.ndarray) else devices.device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return not isinstance(self._data, np.ndarray) and devices.is_device_array(self._data)

    def get_device(self) -> int:
        """The index of the tensor's CUDA device; -1 on the CPU (as PyTorch)."""
        index = self.device.index
        return -1 if index is None else index

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    @property
    def requires_grad(self) -> bool:
        if self._base is not None:
            self._refresh_view()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if not self.is_leaf:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use .detach() to "
                "get a tensor that does not require grad"
            )
        if flag and not self.dtype.is_floating_point:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients, got {self.dtype}"
            )
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def data(self) -> Tensor:
        """The same storage without history: changes through it are not recorded."""
        return _wrap(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data if isinstance(value, Tensor) else devices.as_array(value)

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.dim()))))

    @property
    def mT(self) -> Tensor:
        """The last two dimensions swapped; a 0-d tensor is returned as it is, with
        PyTorch's deprecation warning; a 1-d tensor is refused."""
        if self.dim() == 0:
            warnings.warn("Tensor.mT is deprecated on 0-D tensors. This function is the "
                          "identity in these cases.", UserWarning, stacklevel=2)
            return self
        if self.dim() == 1:
            raise RuntimeError("tensor.mT is only supported on matrices or batches of "
                               f"matrices. Got 1-D tensor (shape {tuple(self.shape)}).")
        return self.transpose(-2, -1)

    def __len__(self) -> int:
        if self.dim() == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.dim() == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__

    # -- conversions --------------------------------------------------------------------------

    def numpy(self, force: bool = False) -> np.ndarray:
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        if not isinstance(self._data, np.ndarray):
            if force:
                return devices.to_host(self._data)
            self._refuse_host("numpy()")
        return self._data

    def _refuse_host(self, what: str):
        raise TypeError(f"can't convert {self.device} device type tensor to numpy ({what}). "
                        "Use Tensor.cpu() to copy the tensor to host memory first.")

    def __array__(self, dtype=None, copy=None):
        array = self._data
        if not isinstance(array, np.ndarray):
            self._refuse_host("np.asarray(tensor)")
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy else array

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"item(): a Tensor with {self._data.size} elements cannot be converted to "
                f"a Python scalar (shape {tuple(self.shape)})"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def _scalar(self, what: str):
        if self._data.size != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars: "
                             f"{what}() of a tensor of shape {tuple(self.shape)}")
        return self._data.reshape(()).item()

    def __index__(self) -> int:
        if self.dtype.category != backend.INT or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous "
                f"(shape {tuple(self.shape)})"
            )
        return bool(self.item())

    def __format__(self, spec: str) -> str:
        if self.dim() == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __repr__(self) -> str:
        from ._printing import tensor_repr

        return tensor_repr(self)

    __str__ = __repr__

    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other_tensor)``, each
        optionally followed by ``non_blocking`` and ``copy`` (positional or by keyword).

        ``non_blocking`` is accepted: copies are synchronous (a later op on the device waits
        for them anyway); ``copy=True`` returns a new tensor even when nothing changes.

        >>> x = corrnet.ones(2)
        >>> x.to("cpu", corrnet.float32, False, True) is x
        False
        """
        if len(args) > 4:
            raise TypeError(f"to() takes from 0 to 4 positional arguments but {len(args)} were "
                            "given")
        target_dtype = kwargs.pop("dtype", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        target_device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        flags = []  # the positional non_blocking and copy, in that order
        for arg in args:
            if isinstance(arg, Tensor):
                target_dtype, target_device = arg.dtype, arg.device
            elif isinstance(arg, (str, device)):
                target_device = arg
            elif isinstance(arg, bool):  # to(device, dtype, non_blocking, copy)
                flags.append(arg)
            elif arg is not None:
                target_dtype = arg
        if len(flags) > 1:
            copy = flags[1]
        target_device = _check_device(target_device, "Tensor.to()")
        result = self if target_dtype is None else self._cast(as_dtype(target_dtype))
        if target_device is not None and result.device != target_device:
            return ops.ToDevice.apply(result, target_device)
        return result.clone() if copy and result is self else result

    def cuda(self, device=None, non_blocking: bool = False, memory_format=None) -> Tensor:
        """This tensor on CUDA device `device` (None: the current one; an int or a string);
        itself when it is there already.

        >>> corrnet.tensor([1., 2.]).cuda()  # doctest: +SKIP
        tensor([1., 2.], device='cuda:0')
        """
        target = devices.cuda_device(device, "Tensor.cuda()")
        return self if self.device == target else ops.ToDevice.apply(self, target)

    def pin_memory(self, device=None) -> Tensor:
        """A copy of this host tensor in page-locked memory, from which copies to a CUDA
        device are faster (``cupyx.empty_pinned``; on the stand-in the copy is only marked as
        pinned); itself when it is pinned already. Needs CUDA, as PyTorch's (which raises
        without an accelerator); a cuda tensor cannot be pinned.

        >>> corrnet.ones(2).is_pinned()
        False
        """
        if not isinstance(self._data, np.ndarray):
            raise RuntimeError(f"cannot pin '{self.type()}' on {self.device}: only dense CPU "
                               "tensors can be pinned")
        if not devices.is_available():
            raise RuntimeError("pin_memory(): Cannot access accelerator device when none is "
                               "available (page-locked memory is for copies to a CUDA device; "
                               "corrnet.cuda.is_available() is False)")
        if devices.is_pinned(self._data):
            return self
        result = _wrap(devices.pin(self._data))
        result._requires_grad = self._requires_grad if self.is_leaf else False
        return result

    def is_pinned(self, device=None) -> bool:
        """Whether this tensor lives in page-locked host memory (False without CUDA and for
        cuda tensors)."""
        return devices.is_pinned(self._data)

    def cpu(self, memory_format=None) -> Tensor:
        """This tensor in host memory (itself when it is there already)."""
        if isinstance(self._data, np.ndarray):
            return self
        return ops.ToDevice.apply(self, CPU)

    def type(self, dtype=None):
        """The legacy type name (``'torch.FloatTensor'``), or a copy converted to `dtype`
        (a dtype or a legacy name such as ``'torch.LongTensor'``)."""
        if dtype is None:
            return f"torch.{_LEGACY_NAMES[self.dtype.name]}"
        if type(dtype).__name__ == "_LegacyTensorType":  # x.type(corrnet.LongTensor)
            dtype = dtype.dtype
        if isinstance(dtype, str):
            name = dtype.removeprefix("torch.").removeprefix("corrnet.")
            dtype = as_dtype(_LEGACY_DTYPES.get(name, dtype))
        return self.to(dtype=dtype)

    def float(self) -> Tensor:
        return self._cast(backend.float32)

    def double(self) -> Tensor:
        return self._cast(backend.float64)

    def half(self) -> Tensor:
        return self._cast(backend.float16)

    def long(self) -> Tensor:
        return self._cast(backend.int64)

    def byte(self) -> Tensor:
        return self._cast(backend.uint8)

    def char(self) -> Tensor:
        return self._cast(backend.int8)

    def short(self) -> Tensor:
        return self._cast(backend.int16)

    def int(self) -> Tensor:
        return self._cast(backend.int32)

    def bool(self) -> Tensor:
        return self._cast(backend.bool_)

    def _cast(self, dtype: backend.dtype) -> Tensor:
        if self._data.dtype == dtype.numpy:
            return self
        if self.requires_grad and dtype.is_floating_point:
            return ops.Cast.apply(self, dtype.numpy)
        # 65535 -> float16 is inf, NaN or inf -> an integer some integer, silently as PyTorch
        with np.errstate(over="ignore", invalid="ignore"):
            return _wrap(self._data.astype(dtype.numpy))

    def clone(self) -> Tensor:
        return ops.Clone.apply(self)

    def detach(self) -> Tensor:
        """A new tensor on the same storage, cut off from the graph (shares the version)."""
        return _wrap(self._data, version=self._version)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def contiguous(self) -> Tensor:
        if self._data.flags.c_contiguous:
            return self
        return ops.Contiguous.apply(self)

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    # -- autograd ----------------------------------------------------------------------------

    def _refresh_view(self) -> None:
        """If this is a view whose base was modified in place since its grad_fn was made,
        derive its grad_fn from the base anew (a view made under no_grad is left alone)."""
        base = self._base
        if base is not None and self._view_version not in (None, self._version[0]) and (
            base._requires_grad
        ):
            self.grad_fn = self._as_view_of_base().grad_fn
            self._requires_grad = True
            self._view_version = self._version[0]

    def _grad_node(self):
        """The node that gradients for this tensor flow into (None if none are wanted)."""
        self._refresh_view()
        if self.grad_fn is not None:
            return self.grad_fn
        if not self._requires_grad:
            return None
        # As PyTorch's: the node holds the leaf, the leaf only a weak reference to the node.
        # A strong one both ways would make a reference cycle, and the leaf and its .grad
        # would wait for the garbage collector (a loop whose input requires grad grew by both
        # every step, faulting in fresh memory). The leaf keeps its hooks' tables, which a new
        # node takes over.
        node = self._accumulator() if self._accumulator is not None else None
        if node is None:
            node = AccumulateGrad(self)
            if self._leaf_hooks is not None:
                node.grad_hooks, node.post_accumulate_hooks = self._leaf_hooks
            self._accumulator = weakref.ref(node)
        return node

    def _accumulate_grad(self, grad: np.ndarray, may_keep: bool = False) -> None:
        """Add `grad` into ``.grad`` (in place, as PyTorch). The first gradient is copied,
        unless `may_keep` (a leaf's AccumulateGrad) and the engine holds the only reference
        to a NumPy array that owns its memory: then it becomes ``.grad`` as it is, as
        PyTorch's AccumulateGrad steals a gradient nothing else refers to (an input's
        gradient of 25 MB is not copied again)."""
        if isinstance(grad, Tensor):  # create_graph: kept with its graph, out of place
            # (a copy: the same gradient tensor may reach several leaves)
            self.grad = grad.clone() if self.grad is None else self.grad + grad
            return
        on_host = isinstance(grad, np.ndarray) or not devices.is_device_array(grad)
        grad = (np.asarray(grad, dtype=self._data.dtype) if on_host
                else grad.astype(self._data.dtype, copy=False))
        if grad.shape != self._data.shape:
            grad = np.broadcast_to(grad, self._data.shape)
        if self.grad is None and may_keep and _only_reference(grad):
            self.grad = _wrap(grad)
        elif self.grad is None:
            self.grad = _wrap(np.array(grad, copy=True) if on_host else grad.copy())
        elif self.grad._data.flags.writeable:
            np.add(self.grad._data, grad, out=self.grad._data)  # in place, as PyTorch
        else:
            self.grad._data = self.grad._data + grad

    def retain_grad(self) -> None:
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)  # weak: the tensor holds its node

    def register_hook(self, hook):
        """Call ``hook(grad)`` each time the gradient with respect to this tensor is computed;
        a tensor it returns replaces the gradient. Returns a handle with ``remove()``.

        >>> x = corrnet.ones(2, requires_grad=True)
        >>> handle = x.register_hook(lambda grad: grad * 10)
        >>> (x * 3).sum().backward()
        >>> x.grad
        tensor([30., 30.])
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        node = self._grad_node()
        handle = node.add_grad_hook(hook)
        if isinstance(node, AccumulateGrad):   # a leaf: the tables outlive this node
            self._leaf_hooks = (node.grad_hooks, node.post_accumulate_hooks)
        return handle

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` after a backward pass has accumulated into this leaf's
        ``.grad`` (once per pass, with every contribution summed), as PyTorch's: the moment a
        parameter's gradient is ready (DistributedDataParallel starts its all-reduce there).
        The hook returns None. Returns a handle with ``remove()``.

        >>> w = corrnet.ones(2, requires_grad=True)
        >>> _ = w.register_post_accumulate_grad_hook(lambda t: print("ready:", t.grad))
        >>> (w * 3).sum().backward()
        ready: tensor([3., 3.])
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors (this one has grad_fn "
                               f"{self.grad_fn.name()}): register_hook sees its gradient")
        if not callable(hook):
            raise TypeError("register_post_accumulate_grad_hook: hook must be callable, got "
                            f"{type(hook).__name__}")
        node = self._grad_node()
        handle = node.add_post_accumulate_hook(hook)
        self._leaf_hooks = (node.grad_hooks, node.post_accumulate_hooks)  # outlive this node
        return handle

    @property
    def retains_grad(self) -> bool:
        return (self.grad_fn is not None and self.grad_fn.retained is not None
                and self.grad_fn.retained() is self)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute the gradient of this tensor with respect to the graph's leaves.

        `gradient` is required unless the tensor holds a single element. With
        ``create_graph=True`` the gradients are recorded (``.grad`` has a grad_fn) so that
        they can be differentiated again; `retain_graph` then defaults to True.
        """
        if create_graph:
            from .autograd import backward

            if inputs is not None:
                raise NotImplementedError("backward(inputs=...)")
            if gradient is not None and not isinstance(gradient, Tensor):
                gradient = tensor(gradient)
            return backward(self, gradient, retain_graph=retain_graph, create_graph=True)
        if inputs is not None:
            raise NotImplementedError("backward(inputs=...)")
        node = self._grad_node()
        if node is None:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    "grad can be implicitly created only for scalar outputs: backward() on a "
                    f"tensor of shape {tuple(self.shape)} needs a `gradient` of that shape"
                )
            grad = np.ones_like(self._data)
        else:
            gradient = gradient if isinstance(gradient, Tensor) else tensor(gradient)
            if gradient.shape != self.shape:
                raise RuntimeError(
                    f"backward(): `gradient` has shape {tuple(gradient.shape)} but the tensor "
                    f"has shape {tuple(self.shape)}"
                )
            grad = gradient._data.astype(self._data.dtype, copy=False)
        run_backward([(node, grad)], retain_graph=bool(retain_graph))

    # -- in-place machinery ----------------------------------------------------------------------

    def _check_inplace(self, recording: bool) -> None:
        if not recording:
            return
        if self.is_leaf and self._requires_grad:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation. "
                "Modify it under corrnet.no_grad(), or through .data."
            )
        base = self._base
        if base is not None and base.is_leaf and base._requires_grad:
            raise RuntimeError(
                "a view of a leaf Variable that requires grad is being used in an in-place "
                f"operation (view of shape {tuple(self.shape)}, leaf of shape "
                f"{tuple(base.shape)}). Modify it under corrnet.no_grad(), or through .data."
            )

    def _check_writeable(self) -> None:
        if not self._data.flags.writeable:
            raise RuntimeError(
                f"cannot write into this tensor of shape {tuple(self.shape)}: it is an expanded "
                "view whose elements share memory; call .clone() first"
            )

    def _bump_version(self) -> None:
        self._version[0] += 1

    def _snapshot(self) -> Tensor:
        """A copy of the current value at the same place in the graph."""
        node = self._grad_node()
        return _wrap(self._data.copy(), grad_fn=None if self.is_leaf else node)

    def _view_positions(self) -> np.ndarray:
        """For each element of this view, its flat index in the base."""
        base = self._base
        positions = np.asarray(self._view_fn(np.arange(base.numel()).reshape(base._data.shape)))
        return devices.table_like(positions, self._data)  # beside the view, for its backward

    def _as_view_of_base(self) -> Tensor:
        return ops.ViewOfBase.apply(self._base, self._view_positions(), self._data)

    def _inplace(self, result: Tensor) -> Tensor:
        """Make `self` take the value (and the graph position) of an out-of-place `result`.

        For a view, the base's graph is rebased instead: its new value is the old one with the
        view's elements replaced by `result` (PyTorch's CopySlices), and the view's gradient
        function is derived from the base anew.
        """
        recording = is_grad_enabled() and (result.requires_grad or self.requires_grad)
        self._check_inplace(recording)
        if not backend.can_cast(result.dtype, self.dtype):
            raise RuntimeError(
                f"result type {_LEGACY_NAMES[result.dtype.name].removesuffix('Tensor')} can't "
                f"be cast to the desired output type "
                f"{_LEGACY_NAMES[self.dtype.name].removesuffix('Tensor')}"
            )
        self._check_writeable()
        source = result._data
        if isinstance(source, np.ndarray) != isinstance(self._data, np.ndarray):
            source = devices.to_device(source, self.device)  # copy_ across devices, fill_
        try:
            # (a wider result beyond this dtype's range: inf, or the CPU's integer conversion,
            # silently as PyTorch)
            with np.errstate(over="ignore", invalid="ignore"):
                np.copyto(self._data, np.broadcast_to(source, self._data.shape),
                          casting="unsafe")
        except ValueError as err:
            raise RuntimeError(
                f"in-place operation: a result of shape {tuple(result.shape)} cannot be written "
                f"into a tensor of shape {tuple(self.shape)}"
            ) from err
        if recording:
            base = self._base
            if base is not None:
                positions = self._view_positions()
                new_base = ops.CopySlices.apply(base, result, positions)
                base.grad_fn, base._requires_grad = new_base.grad_fn, True
                self._bump_version()
                self.grad_fn = ops.ViewOfBase.apply(base, positions, self._data).grad_fn
                self._requires_grad = True
                self._view_version = self._version[0]
                return self
            self.grad_fn, self._requires_grad = result.grad_fn, result.requires_grad
        self._bump_version()
        return self

    def __setitem__(self, index, value) -> None:
        mask_fill = _masks_only(index) and isinstance(value, Tensor) and value.numel() == 1
        index, advanced = _convert_index(index, self.shape, like=self._data)
        if isinstance(value, Tensor):
            if advanced and value.dtype != self.dtype and not mask_fill:
                raise RuntimeError(
                    f"Index put requires the source and destination dtypes match, got "
                    f"{_legacy_short(self.dtype)} for the destination and "
                    f"{_legacy_short(value.dtype)} for the source.")
        elif isinstance(value, np.ndarray):
            value = _wrap(value.astype(self._data.dtype))
        else:   # (a float32 target refuses a finite number beyond its range, as PyTorch's;
            #     float16 takes it as inf, as PyTorch's too)
            number = value.item() if isinstance(value, np.generic) else value
            if (isinstance(number, int) and not isinstance(number, bool)
                    and not _args.INT64_MIN <= number <= _args.INT64_MAX):
                # (PyTorch reads the int as an int64 whatever the dtype, where fill_ and
                # full also take uint64's range)
                raise ValueError(f"setitem(): the Python int {number} does not fit in int64: "
                                 "Overflow when unpacking long long")
            convert = (_fill_array if self.dtype is backend.float32 and isinstance(
                value, numbers.Real) and not isinstance(value, bool) else _scalar_array)
            value = _wrap(convert(value, self.dtype, "setitem"))
        if value.dtype != self.dtype:
            value = value._cast(self.dtype) if self.dtype.is_floating_point else _wrap(
                value._data.astype(self._data.dtype)
            )
        recording = is_grad_enabled() and (self.requires_grad or value.requires_grad)
        self._check_inplace(recording)
        try:
            if recording and self._base is None:
                # writes into self directly; the node only needs the index
                result = ops.SetItem.apply(self, value, index)
                self.grad_fn, self._requires_grad = result.grad_fn, True
                self._bump_version()
            elif recording:
                self._inplace(ops.SetItem.apply(self._snapshot(), value, index))
            else:
                self._check_writeable()
                ops.set_index(self._data, index, value._data)
                self._bump_version()
        except ValueError as err:
            raise RuntimeError(
                f"setitem: a value of shape {tuple(value.shape)} cannot be assigned to "
                f"the indexed part of a tensor of shape {tuple(self.shape)}"
            ) from err

    def _inplace_op(self, op, *args):
        """``self.op_(*args)``: compute ``op(self, *args)`` out of place, then write it back.

        While gradients are recorded the op reads a snapshot of self, so that what its
        backward saved is not overwritten by the write (as PyTorch, ``q *= y`` then works) —
        also when only an argument needs a gradient: ``y /= x`` saves y's old value for x's.
        """
        recording = is_grad_enabled() and (self.requires_grad or any(
            isinstance(a, Tensor) and a.requires_grad for a in args))
        self._check_inplace(recording)
        source = self._snapshot() if recording else self
        result = op(source, *args)
        widened = recording and result.dtype != self.dtype and self.dtype.is_floating_point
        if widened and op is Tensor.__truediv__:
            # `y /= x`: PyTorch's division backward keeps the operands' own dtypes, x's
            # gradient -grad * ((y / x) / x) is computed wide: the wide op, cast to y's dtype
            result = result._cast(self.dtype)
        elif widened:
            # `y *= x` with x of a wider float dtype: PyTorch computes the value in the wider
            # dtype, but the backward in y's (its gradient has y's dtype and its formulas
            # multiply in it). So the graph is the op on operands cast to y's dtype, carrying
            # the value computed wide.
            value = result._data
            result = op(source, *(a._cast(self.dtype) if isinstance(a, Tensor) else a
                                  for a in args))
            np.copyto(result._data, value, casting="unsafe")
        return self._inplace(result)

    @_operator
    def __iadd__(self, other):
        return self._inplace_op(Tensor.__add__, other)

    @_operator
    def __isub__(self, other):
        return self._inplace_op(Tensor.__sub__, other)

    @_operator
    def __imul__(self, other):
        return self._inplace_op(Tensor.__mul__, other)

    @_operator
    def __itruediv__(self, other):
        return self._inplace_op(Tensor.__truediv__, other)

    @_operator
    def __ifloordiv__(self, other):
        return self._inplace_op(Tensor.__floordiv__, other)

    @_operator
    def __imod__(self, other):
        return self._inplace_op(Tensor.__mod__, other)

    @_operator
    def __ipow__(self, other):
        return self._inplace_op(Tensor.__pow__, other)

    def add_(self, other, alpha=1):
        if (isinstance(other, Tensor) and other._data.shape == self._data.shape
                and other._data.dtype == self._data.dtype and self._data.dtype.kind == "f"
                and isinstance(alpha, (int, float))
                and not (is_grad_enabled() and (self.requires_grad or other.requires_grad))):
            # nothing to record (an optimizer's update): add in place, without the two ops
            # and the copy of the general path (the same arithmetic, in self's dtype)
            self._check_writeable()
            np.add(self._data, other._data if alpha == 1 else other._data * alpha,
                   out=self._data)
            self._bump_version()
            return self
        self._check_float_alpha(alpha)
        return self._inplace_op(Tensor.add, other, alpha)

    def sub_(self, other, alpha=1):
        self._check_float_alpha(alpha)
        return self._inplace_op(Tensor.sub, other, alpha)

    def _check_float_alpha(self, alpha) -> None:
        """An in-place add_/sub_ with a float alpha computes in floating point (PyTorch's
        message), which an integer tensor cannot hold."""
        if isinstance(alpha, float) and not self.dtype.is_floating_point:
            raise RuntimeError(f"result type Float can't be cast to the desired output type "
                               f"{_legacy_short(self.dtype)} (alpha={alpha})")

    def mul_(self, other):
        return self._inplace_op(Tensor.__mul__, _method_operand("mul_", "other", other))

    def div_(self, other, *, rounding_mode=None):
        other = _method_operand("div_", "other", other)
        if rounding_mode is None:
            return self._inplace_op(Tensor.__truediv__, other)
        return self._inplace_op(
            lambda source, divisor: source.div(divisor, rounding_mode=rounding_mode), other)

    def clamp_(self, min=None, max=None):
        return self._inplace_op(Tensor.clamp, min, max)

    def _overwrite(self, value: Tensor) -> Tensor:
        """Replace every element by `value` (broadcast) in place: the gradient reaches `value`,
        and zero reaches self's old value (as PyTorch's fill_ / copy_ / normal_)."""
        return self._inplace(ops.Overwrite.apply(self, value))

    def fill_(self, value) -> Tensor:
        if not isinstance(value, Tensor):
            value = _wrap(_fill_array(value, self.dtype, "fill_"))
        elif value.dim() != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                               f"with {value.dim()} dimensions")
        return self._overwrite(value._cast(self.dtype) if self.dtype.is_floating_point
                               else _wrap(value._data.astype(self._data.dtype)))

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def copy_(self, src) -> Tensor:
        """Copy `src` (a Tensor, or a Python number) into this tensor, broadcast to its shape
        and cast to its dtype. A number is copied as PyTorch copies it, as a 0-d tensor
        (`_copy_source`) cast like any other: ``zeros(2, dtype=float16).copy_(1e10)`` is inf
        and ``zeros(2, dtype=uint8).copy_(300)`` is 44 (where fill_ refuses both)."""
        src = src if isinstance(src, Tensor) else _wrap(_copy_source(src, self))
        if not (isinstance(src._data, np.ndarray) and isinstance(self._data, np.ndarray)) and (
                src.device != self.device):
            src = src.to(self.device)  # copy_ crosses devices, as PyTorch's
        try:
            expanded = src.expand(tuple(self.shape))
        except RuntimeError as err:
            raise RuntimeError(f"copy_: src of shape {tuple(src.shape)} does not broadcast to "
                               f"the destination's shape {tuple(self.shape)}") from err
        if not self.dtype.is_floating_point:
            # (NaN and floats beyond the integer dtype's range: the CPU's conversion, as
            # PyTorch's, silently)
            with np.errstate(invalid="ignore", over="ignore"):
                return self._overwrite(_wrap(expanded._data.astype(self._data.dtype)))
        return self._overwrite(expanded._cast(self.dtype))

    def normal_(self, mean=0.0, std=1.0, *, generator=None) -> Tensor:
        """Fill with samples of N(mean, std²); std must be >= 0 (PyTorch's checks)."""
        mean, std = _check_float("normal_", "mean", mean), _check_float("normal_", "std", std)
        self._check_random_fill("normal_")
        if not std >= 0.0:  # NaN too
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        sample = _rng(generator).normal(mean, std, self._data.shape)
        return self._overwrite(self._sampled(sample))

    def uniform_(self, a=0.0, b=1.0, *, generator=None) -> Tensor:
        """Fill with samples of U(a, b): a <= b, both finite in the tensor's dtype, b - a too."""
        a, b = _check_float("uniform_", "from", a), _check_float("uniform_", "to", b)
        self._check_random_fill("uniform_")
        largest = float(np.finfo(self._data.dtype).max)
        for name, bound in (("from", a), ("to", b)):
            if not -largest <= bound <= largest:  # NaN and infinities too
                raise RuntimeError(f"uniform_: {name} is out of bounds for {self.dtype} "
                                   f"({name}={bound})")
        if a > b:
            raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                               f"from={a} > to={b}")
        if b - a > largest:
            raise RuntimeError(f"uniform_ expects to-from <= the largest {self.dtype}, but found "
                               f"to={b} and from={a}")
        sample = _rng(generator).uniform(a, b, self._data.shape)
        return self._overwrite(self._sampled(sample))

    def _sampled(self, sample: np.ndarray) -> Tensor:
        """Host samples in this tensor's dtype, on its device (drawn on the host, so that a
        seed gives the same numbers on every device; one copy to a CUDA device)."""
        sample = sample.astype(self._data.dtype)
        if not isinstance(self._data, np.ndarray):
            sample = devices.to_device(sample, self.device)
        return _wrap(sample)

    def _check_random_fill(self, op: str) -> None:
        if not self.dtype.is_floating_point:
            raise NotImplementedError(f"{op}: random floating point samples cannot fill a "
                                      f"tensor of dtype {self.dtype} (PyTorch: not implemented "
                                      "for integer and bool tensors)")

    # -- arithmetic ------------------------------------------------------------------------------

    def _binary(self, other, function, reverse=False, result_dtype=None, options=()):
        """``function(self, other)`` after PyTorch's type promotion and a broadcast check;
        `options` are passed to the function after the operands."""
        other = _as_operand(_uint64_scalar(self, other, (result_dtype or self.dtype)
                                           .is_floating_point), "other")
        _broadcast_check(self, other, function.__name__.lower())
        dtype = result_dtype or result_type(self, other)
        a, b = self._cast(dtype), _cast_operand(other, dtype)
        return function.apply(b, a, *options) if reverse else function.apply(a, b, *options)

    @_operator
    def __add__(self, other):
        return self._binary(other, ops.Add)

    @_operator
    def __radd__(self, other):
        return self._binary(other, ops.Add, reverse=True)

    @_operator
    def __sub__(self, other):
        _refuse_bool_subtraction(self, other)
        return self._binary(other, ops.Sub)

    @_operator
    def __rsub__(self, other):
        _refuse_bool_subtraction(self, other)
        return self._binary(other, ops.Sub, reverse=True)

    @_operator
    def __mul__(self, other):
        return self._binary(other, ops.Mul)

    @_operator
    def __rmul__(self, other):
        return self._binary(other, ops.Mul, reverse=True)

    @_operator
    def __truediv__(self, other):
        other = _uint64_scalar(self, other, floating_result=True)
        return self._binary(other, ops.Div, result_dtype=_true_div_dtype(self, other))

    @_operator
    def __rtruediv__(self, other):
        other = _uint64_scalar(self, other, floating_result=True, refuse_bool=False)
        return self._binary(other, ops.Div, reverse=True, result_dtype=_true_div_dtype(self, other))

    @_operator
    def __floordiv__(self, other):
        return _floor_divide(self, other)

    @_operator
    def __rfloordiv__(self, other):
        return _floor_divide(other, self)

    @_operator
    def __mod__(self, other):
        return _remainder(self, other)

    @_operator
    def __rmod__(self, other):
        return _remainder(other, self)

    def remainder(self, other):
        return _remainder(self, _method_operand("remainder", "other", other))

    def floor_divide(self, other):
        return _floor_divide(self, _method_operand("floor_divide", "other", other))

    @_operator
    def __pow__(self, exponent):
        exponent = _uint64_scalar(self, exponent, self.dtype.is_floating_point)
        _check_pow(self, exponent)
        bool_exponent = isinstance(exponent, Tensor) and exponent.dtype is backend.bool_
        return self._binary(exponent, ops.Pow, options=(bool_exponent,))

    @_operator
    def __rpow__(self, base):
        base = _uint64_scalar(self, base, self.dtype.is_floating_point)
        _check_pow(base, self)
        scalar = base.item() if isinstance(base, np.generic) else base
        # (a bool base is the number 0 or 1, as in PyTorch's pow(Scalar, Tensor))
        return self._binary(base, ops.Pow, reverse=True, options=(
            self.dtype is backend.bool_,
            int(scalar) if isinstance(scalar, bool) else
            scalar if isinstance(scalar, numbers.Real) else None))

    def __matmul__(self, other):
        if not isinstance(other, Tensor):
            return NotImplemented  # Python raises its TypeError: unsupported operand type(s)
        return matmul(self, other)

    def __rmatmul__(self, other):
        if not isinstance(other, Tensor):
            return NotImplemented
        return matmul(other, self)

    def __neg__(self):
        if self.dtype is backend.bool_:
            raise RuntimeError("negation, the `-` operator, on a bool tensor is not supported; "
                               "use the `~` operator instead")
        return ops.Neg.apply(self)

    def __pos__(self):
        if self.dtype is backend.bool_:
            raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
        return self

    def __abs__(self):
        return self.abs()

    def __invert__(self):
        if self.dtype.is_floating_point:
            raise TypeError("~ (bitwise not) is only defined for integer and bool tensors")
        return _wrap(np.invert(self._data))

    @_operator
    def __and__(self, other):
        return _bitwise(np.bitwise_and, "bitwise_and", self, other)

    @_operator
    def __rand__(self, other):
        return _bitwise(np.bitwise_and, "bitwise_and", other, self)

    @_operator
    def __or__(self, other):
        return _bitwise(np.bitwise_or, "bitwise_or", self, other)

    @_operator
    def __ror__(self, other):
        return _bitwise(np.bitwise_or, "bitwise_or", other, self)

    @_operator
    def __xor__(self, other):
        return _bitwise(np.bitwise_xor, "bitwise_xor", self, other)

    @_operator
    def __rxor__(self, other):
        return _bitwise(np.bitwise_xor, "bitwise_xor", other, self)

    def add(self, other, alpha=1):
        other = _method_operand("add", "other", other)
        if alpha == 1:
            return self + other
        scaled, dtype = self._scaled_operand("add", other, alpha)
        return self._binary(scaled, ops.Add, result_dtype=dtype)

    def sub(self, other, alpha=1):
        other = _method_operand("sub", "other", other)
        if alpha == 1:
            return self - other
        _refuse_bool_subtraction(self, other)
        scaled, dtype = self._scaled_operand("sub", other, alpha)
        return self._binary(scaled, ops.Sub, result_dtype=dtype)

    def _scaled_operand(self, name, other, alpha):
        """``alpha * other`` in the dtype of ``self + other`` (as PyTorch's add/sub: alpha
        does not promote), and that dtype."""
        other = _as_operand(other, "other")
        if not isinstance(alpha, (bool, numbers.Number, np.generic)):
            raise TypeError(f"{name}(): argument 'alpha' must be Number, not "
                            f"{_args.type_name(alpha)}")
        dtype = result_type(self, other)
        if isinstance(alpha, float) and not dtype.is_floating_point:
            raise RuntimeError(f"{name}(): For integral input tensors, argument alpha must not "
                               "be a floating point number.")
        scaled = (other._cast(dtype) if isinstance(other, Tensor) else _scalar_as(other, dtype))
        return (scaled * _scalar_as(alpha, dtype) if not isinstance(other, Tensor)
                else scaled * alpha), dtype



    def mul(self, other):
        return self * _method_operand("mul", "other", other)

    def div(self, other, *, rounding_mode=None):
        """``self / other``; rounding_mode "floor" rounds the quotient down (``self //
        other``), "trunc" toward zero (integers stay integers: ``tensor([-7]).div(2,
        rounding_mode="trunc")`` is -3); a rounded quotient's gradient is zero."""
        other = _method_operand("div", "other", other)
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("floor", "trunc"):
            raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or "
                               f"'floor' but found {rounding_mode!r}")
        if result_type(self, _as_operand(other, "other")) is backend.bool_:
            raise NotImplementedError(f"\"div_{rounding_mode}_cpu\" not implemented for "
                                      "'Bool'")
        with no_grad():
            quotient = self._rounded_quotient(other, rounding_mode)
        if not (is_grad_enabled() and (self.requires_grad or isinstance(other, Tensor)
                                       and other.requires_grad)):
            return quotient
        return ops.RoundedQuotient.apply(self, other, quotient._data)

    def _rounded_quotient(self, other, rounding_mode: str) -> Tensor:
        """`div`'s quotient rounded down ("floor": ``self // other``) or toward zero."""
        if rounding_mode == "floor":
            return self // other
        if self.dtype.is_floating_point or (isinstance(other, Tensor)
                                            and other.dtype.is_floating_point) or isinstance(
                other, float):
            return (self / other).trunc()
        # integers: the floor quotient, one up where it was rounded down below zero (the
        # signs those of the operands in the quotient's dtype: -3 is 253 in uint8)
        quotient, remainder = self // other, self % other
        divisor = (other._cast(quotient.dtype) if isinstance(other, Tensor)
                   else _wrap(_scalar_as(other, quotient.dtype)))
        below_zero = (remainder != 0) & ((self._cast(quotient.dtype) < 0) ^ (divisor < 0))
        return quotient + below_zero.to(quotient.dtype)

    def pow(self, exponent):
        return self ** _method_operand("pow", "exponent", exponent)

    def neg(self):
        return -self

    def abs(self):
        if self.dtype is backend.bool_:
            raise NotImplementedError("\"abs_cpu\" not implemented for 'Bool'")
        return ops.Abs.apply(self)

    def round(self, decimals: int | None = None):
        """Round half to even (``decimals`` places after the point); integers unchanged."""
        return self._rounded("round", decimals)

    def floor(self):
        return self._rounded("floor")

    def ceil(self):
        return self._rounded("ceil")

    def trunc(self):
        return self._rounded("trunc")

    def _rounded(self, how: str, decimals: int | None = None):
        if self.dtype is backend.bool_:
            raise NotImplementedError(f"\"{how}_cpu\" not implemented for 'Bool'")
        if not self.is_floating_point():
            return self.clone()
        return ops.Rounding.apply(self, how, None if decimals is None else int(decimals))

    def exp(self):
        return ops.Exp.apply(self._floating())

    def log(self):
        return ops.Log.apply(self._floating())

    def sqrt(self):
        return ops.Sqrt.apply(self._floating())

    def sigmoid(self):
        return ops.Sigmoid.apply(self._floating())

    def tanh(self):
        return ops.Tanh.apply(self._floating())

    def _unary(self, name: str) -> Tensor:
        """``self.<name>()`` for a function of `ops.UNARY` (integers computed in the default
        float dtype, as PyTorch)."""
        if self.dtype is backend.bool_ and name == "frac":
            raise NotImplementedError("\"frac_cpu\" not implemented for 'Bool'")
        if self.dtype.category == backend.INT and name == "frac":
            raise NotImplementedError(f"\"frac_cpu\" not implemented for "
                                      f"'{_legacy_short(self.dtype)}'")
        return ops.Unary.apply(self._floating(), name)

    def erf(self):
        """The error function 2/sqrt(pi) * integral of exp(-t**2) from 0 to self (SciPy's)."""
        return self._unary("erf")

    def erfc(self):
        """1 - erf(self), accurate where erf is near 1."""
        return self._unary("erfc")

    def _binary_function(self, name: str, other) -> Tensor:
        """``self.<name>(other)`` for a function of `ops.BINARY`, promoted and broadcast as
        PyTorch's: integers to the default float (atan2, copysign, xlogy), or refused (hypot,
        logaddexp), or kept (fmod, whose integer division by zero is refused)."""
        if name in ("fmod", "copysign", "xlogy"):
            other = _method_operand(name, "other", other)
        else:   # (PyTorch's atan2, hypot and logaddexp take no number)
            _check_tensor_argument(name, "other", 1, other)
        if name == "fmod":
            a, b = _division_operands(self, other, "fmod", "fmod", "fmod")
            return ops.Binary.apply(a, b, name)
        dtype = result_type(self, _as_operand(other, "other"))
        if not dtype.is_floating_point:
            if name in ("hypot", "logaddexp", "logaddexp2"):
                raise NotImplementedError(f"\"{name}_cpu\" not implemented for "
                                          f"'{_legacy_short(dtype)}' ({name} takes floating "
                                          "tensors)")
            dtype = backend.get_default_dtype()
        return self._binary(other, ops.Binary, result_dtype=dtype, options=(name,))

    def logaddexp(self, other):
        """log(exp(self) + exp(other)), without overflowing exp."""
        return self._binary_function("logaddexp", other)

    def logaddexp2(self, other):
        """log2(2**self + 2**other), without overflow."""
        return self._binary_function("logaddexp2", other)

    def copysign(self, other):
        """|self| with the sign of `other` (a tensor or a number; -0.0 counts as negative)."""
        return self._binary_function("copysign", other)

    def signbit(self):
        """Where the sign bit is set (negative numbers, -0.0 and negative NaN): a bool
        tensor."""
        return _wrap(np.signbit(self._data) if self.dtype is not backend.bool_
                     else np.zeros_like(self._data, dtype=bool))

    def logit(self, eps=None):
        """log(self / (1 - self)), self first clamped to [eps, 1 - eps] where eps is given
        (its gradient then zero outside them)."""
        return ops.Logit.apply(self._floating(), None if eps is None else float(eps))

    def xlogy(self, other):
        """self * log(other), 0 where self is 0 (unless other is NaN)."""
        return self._binary_function("xlogy", other)

    def float_power(self, exponent):
        """self ** exponent in float64 (PyTorch's float_power: both operands widened)."""
        exponent = _method_operand("float_power", "exponent", exponent)
        base = self.double()
        return base ** (exponent.double() if isinstance(exponent, Tensor) else exponent)

    def atan2(self, other):
        """The angle of the point (other, self), in (-pi, pi]: atan(self / other) by
        quadrant, e.g. tensor([1.]).atan2(tensor([-1.])) is 3*pi/4."""
        return self._binary_function("atan2", other)

    arctan2 = atan2

    def fmod(self, other):
        """The remainder of self / other with self's sign (C's fmod): self - other *
        trunc(self / other); `remainder` (``%``) takes other's sign instead."""
        return self._binary_function("fmod", other)

    def hypot(self, other):
        """sqrt(self**2 + other**2), without overflow in the squares."""
        return self._binary_function("hypot", other)

    def sin(self):
        return self._unary("sin")

    def cos(self):
        return self._unary("cos")

    def tan(self):
        return self._unary("tan")

    def asin(self):
        return self._unary("asin")

    def acos(self):
        return self._unary("acos")

    def atan(self):
        return self._unary("atan")

    def sinh(self):
        return self._unary("sinh")

    def cosh(self):
        return self._unary("cosh")

    def log2(self):
        return self._unary("log2")

    def log10(self):
        return self._unary("log10")

    def log1p(self):
        return self._unary("log1p")

    def expm1(self):
        return self._unary("expm1")

    def exp2(self):
        return self._unary("exp2")

    def rsqrt(self):
        return self._unary("rsqrt")

    def reciprocal(self):
        return self._unary("reciprocal")

    def frac(self):
        return self._unary("frac")

    def square(self):
        return self ** 2     # (PyTorch's square is pow(self, 2): PowBackward0)

    def deg2rad(self):
        return self._unary("deg2rad")

    def rad2deg(self):
        return self._unary("rad2deg")

    arcsin, arccos, arctan = asin, acos, atan

    # in place: out of place, then written back (`_inplace_op`); an integer tensor refuses a
    # floating result, as PyTorch

    def abs_(self):
        return self._inplace_op(Tensor.abs)

    def neg_(self):
        return self._inplace_op(Tensor.neg)

    def exp_(self):
        return self._inplace_op(Tensor.exp)

    def log_(self):
        return self._inplace_op(Tensor.log)

    def sqrt_(self):
        return self._inplace_op(Tensor.sqrt)

    def sigmoid_(self):
        return self._inplace_op(Tensor.sigmoid)

    def tanh_(self):
        return self._inplace_op(Tensor.tanh)

    def sin_(self):
        return self._inplace_op(Tensor.sin)

    def cos_(self):
        return self._inplace_op(Tensor.cos)

    def reciprocal_(self):
        return self._inplace_op(Tensor.reciprocal)

    def rsqrt_(self):
        return self._inplace_op(Tensor.rsqrt)

    def log1p_(self):
        return self._inplace_op(Tensor.log1p)

    def expm1_(self):
        return self._inplace_op(Tensor.expm1)

    def square_(self):
        return self._inplace_op(Tensor.square)

    def pow_(self, exponent):
        return self._inplace_op(Tensor.__pow__, _method_operand("pow_", "exponent", exponent))

    def relu(self):
        if self.dtype is backend.bool_:
            raise RuntimeError("Boolean inputs not supported for relu")
        return ops.Relu.apply(self)

    def relu_(self):
        if self.dtype is backend.bool_:
            raise RuntimeError("Boolean inputs not supported for relu")
        return self._inplace_op(Tensor.relu)

    @_numpy_names
    def softmax(self, dim, dtype=None):
        """exp(x) / sum(exp(x)) along `dim`, computed stably (the maximum is subtracted)."""
        return ops.Softmax.apply(*self._softmax_args("softmax", dim, dtype))

    @_numpy_names
    def log_softmax(self, dim, dtype=None):
        """log(softmax(x)) along `dim` in one stable pass (no log of a rounded-off zero)."""
        return ops.LogSoftmax.apply(*self._softmax_args("log_softmax", dim, dtype))

    def _softmax_args(self, name, dim, dtype):
        source = self._cast(as_dtype(dtype)) if dtype is not None else self
        if not source.dtype.is_floating_point and source.numel():
            raise RuntimeError(f"{name}(): expected a floating point input, got {source.dtype}; "
                               "convert it with .float() or pass dtype=corrnet.float32")
        axis = _args.check_dim(name, dim, source.dim())  # a 0-d tensor takes dim 0 or -1
        return source, axis if source.dim() else None

    def clamp(self, min=None, max=None):
        return self._clamp(min, max, "clamp")

    def _clamp(self, low, high, op: str) -> Tensor:
        """clamp, clamp_min or clamp_max (`op`: the name PyTorch's node takes after): bounds
        that are numbers (ops.Clamp) or tensors (ops.ClampTensors)."""
        if low is None and high is None:
            raise RuntimeError("clamp(): at least one of 'min' or 'max' must not be None")
        if (isinstance(low, Tensor) != isinstance(high, Tensor)) and None not in (low, high):
            # a number beside a tensor: PyTorch takes the tensor as a number where it can
            # (0-d, no gradient wanted), else refuses the mix
            as_numbers = []
            for bound in (low, high):
                if isinstance(bound, Tensor):
                    if bound.dim() != 0 or bound.requires_grad:
                        raise TypeError(
                            f"clamp() received an invalid combination of arguments - got "
                            f"(min={type(low).__name__}, max={type(high).__name__}): min "
                            "and max must be both Tensors or both numbers (a tensor may "
                            "stand for a number when it is 0-d and requires no grad)")
                    bound = bound.item()
                as_numbers.append(bound)
            low, high = as_numbers
        if isinstance(low, Tensor) or isinstance(high, Tensor):
            return self._clamp_tensors(low, high, op)
        if self.dtype.is_floating_point:   # (an int bound in [2**63, 2**64): its value)
            low, high = (_uint64_scalar(self, v, True) for v in (low, high))
        given = [_as_operand(v, name) for v, name in ((low, "min"), (high, "max"))
                 if v is not None]
        dtype = result_type(self, *given)
        if dtype is backend.bool_:      # (bool bounds on a bool tensor: PyTorch has no kernel)
            which = "clamp" if low is not None and high is not None else (
                "clamp_min" if low is not None else "clamp_max")
            raise NotImplementedError(f"\"{which}_scalar_cpu\" not implemented for 'Bool' "
                                      "(clamp a bool tensor with int bounds, or convert it)")
        for v in given:
            if dtype.is_floating_point and math.isfinite(v) and abs(v) > float(np.finfo(
                    dtype.numpy).max):
                raise RuntimeError(f"clamp(): value cannot be converted to type "
                                   f"{_c_type_name(dtype)} without overflow (bound {v})")
            if dtype.category == backend.INT:
                _scalar_array(v, dtype, "clamp()")  # out of the dtype's range: refused
        bounds = [None if v is None else _scalar_as(v, dtype) for v in (low, high)]
        return ops.Clamp.apply(self._cast(dtype), *bounds, op)

    clip = clamp

    def _clamp_tensors(self, low, high, op: str) -> Tensor:
        """clamp with tensor bounds (broadcast, promoted with self): PyTorch's values and
        gradients (ops.ClampTensors)."""
        bounds = [_as_operand(v, name) for v, name in ((low, "min"), (high, "max"))
                  if v is not None]
        dtype = result_type(self, *bounds)
        shapes = {name: np.shape(_operand_array(v)) for v, name in ((low, "min"), (high, "max"))
                  if v is not None}
        try:
            np.broadcast_shapes(tuple(self.shape), *shapes.values())
        except ValueError:
            named = " and ".join(f"{name} {shape}" for name, shape in shapes.items())
            raise RuntimeError(f"{op}: the shapes of input {tuple(self.shape)} and {named} do "
                               "not broadcast (each size must match or be 1)") from None
        low, high = (None if v is None else _cast_operand(_as_operand(v, name), dtype)
                     for v, name in ((low, "min"), (high, "max")))
        return ops.ClampTensors.apply(self._cast(dtype), low, high, op)

    def maximum(self, other):
        _check_tensor_argument("maximum", "other", 1, other)
        return self._binary(other, ops.Extremum, options=(False,))

    def minimum(self, other):
        _check_tensor_argument("minimum", "other", 1, other)
        return self._binary(other, ops.Extremum, options=(True,))

    def _floating(self) -> Tensor:
        return self if self.dtype.is_floating_point else self._cast(backend.get_default_dtype())

    # -- comparisons (not differentiable) ------------------------------------------------------

    def _compare(self, other, ufunc):
        if not isinstance(other, (Tensor, bool, numbers.Number, np.generic, np.ndarray)):
            return NotImplemented  # == is False, < a TypeError from Python (as PyTorch)
        other = _as_operand(_uint64_scalar(self, other, self.dtype.is_floating_point), "other")
        _broadcast_check(self, other, ufunc.__name__)
        dtype = result_type(self, other)
        return _wrap(ufunc(self._data.astype(dtype.numpy, copy=False),
                           _operand_array(other, dtype)))

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def _compare_method(self, name, other, ufunc):
        """``t.eq(other)`` and friends: unlike the operators, a non-number is a TypeError."""
        result = self._compare(other, ufunc)
        if result is NotImplemented:
            raise TypeError(f"{name}(): argument 'other' must be Tensor or Number, not "
                            f"{_args.type_name(other)}")
        return result

    def eq(self, other):
        return self._compare_method("eq", other, np.equal)

    def ne(self, other):
        return self._compare_method("ne", other, np.not_equal)

    def lt(self, other):
        return self._compare_method("lt", other, np.less)

    def le(self, other):
        return self._compare_method("le", other, np.less_equal)

    def gt(self, other):
        return self._compare_method("gt", other, np.greater)

    def ge(self, other):
        return self._compare_method("ge", other, np.greater_equal)

    def equal(self, other) -> bool:
        _check_tensor_argument("equal", "other", 1, other)
        backend.promote_types(self.dtype, other.dtype)  # (refuses uint16 with int32, as PyTorch)
        return self.shape == other.shape and bool(np.array_equal(self._data, other._data))

    def allclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
        _check_tensor_argument("allclose", "other", 1, other)
        if other.dtype != self.dtype:
            raise RuntimeError(f"allclose(): {_legacy_short(self.dtype)} did not match "
                               f"{_legacy_short(other.dtype)} (both tensors need one dtype)")
        _broadcast_check(self, other, "allclose")
        return bool(np.allclose(self._data, _operand_array(other), rtol, atol, equal_nan))

    def isnan(self):
        return _wrap(np.isnan(self._data))

    def isfinite(self):
        return _wrap(np.isfinite(self._data))

    def isinf(self):
        return _wrap(np.isinf(self._data))

    def isposinf(self):
        return _wrap(np.isposinf(self._data) if self.dtype.is_floating_point
                     else np.zeros_like(self._data, dtype=bool))

    def isneginf(self):
        return _wrap(np.isneginf(self._data) if self.dtype.is_floating_point
                     else np.zeros_like(self._data, dtype=bool))

    def sign(self):
        """-1, 0 or 1 as self is below, at or above zero, in self's dtype (0 for NaN, as
        PyTorch: (x > 0) - (x < 0)); a bool tensor is itself. Its gradient is zero."""
        if self.dtype is backend.bool_:
            return self.clone()
        return ops.Sign.apply(self)

    def sgn(self):
        """`sign` (for real numbers, PyTorch's sgn is sign)."""
        return self.sign()

    # -- logical operations (not differentiable): a number's truth is that it is not zero ----

    def _logical(self, name: str, ufunc, other) -> Tensor:
        _check_tensor_argument(name, "other", 2, other)
        _broadcast_check(self, other, name)
        return _wrap(devices.as_array(ufunc(self._data.astype(bool), other._data.astype(bool))))

    def logical_and(self, other):
        return self._logical("logical_and", np.logical_and, other)

    def logical_or(self, other):
        return self._logical("logical_or", np.logical_or, other)

    def logical_xor(self, other):
        return self._logical("logical_xor", np.logical_xor, other)

    def logical_not(self):
        return _wrap(np.logical_not(self._data))

    # -- bitwise operations: the operators &, |, ^ and ~ -----------------------------------------

    def bitwise_and(self, other):
        return _bitwise(np.bitwise_and, "bitwise_and", self,
                        _method_operand("bitwise_and", "other", other))

    def bitwise_or(self, other):
        return _bitwise(np.bitwise_or, "bitwise_or", self,
                        _method_operand("bitwise_or", "other", other))

    def bitwise_xor(self, other):
        return _bitwise(np.bitwise_xor, "bitwise_xor", self,
                        _method_operand("bitwise_xor", "other", other))

    def bitwise_not(self):
        if self.dtype.is_floating_point:
            raise NotImplementedError("\"bitwise_not_cpu\" not implemented for 'Float': "
                                      "bitwise_not takes bool or integer tensors")
        return ~self

    # -- PyTorch's other names for the operations above -------------------------------------------

    def multiply(self, other):
        return self * _method_operand("multiply", "other", other)

    def subtract(self, other, alpha=1):
        return self.sub(_method_operand("subtract", "other", other), alpha=alpha)

    def divide(self, other, *, rounding_mode=None):
        return self.div(_method_operand("divide", "other", other), rounding_mode=rounding_mode)

    def true_divide(self, other):
        return self / _method_operand("true_divide", "other", other)

    def negative(self):
        return -self

    def absolute(self):
        return self.abs()

    def greater(self, other):
        return self._compare_method("greater", other, np.greater)

    def greater_equal(self, other):
        return self._compare_method("greater_equal", other, np.greater_equal)

    def less(self, other):
        return self._compare_method("less", other, np.less)

    def less_equal(self, other):
        return self._compare_method("less_equal", other, np.less_equal)

    def not_equal(self, other):
        return self._compare_method("not_equal", other, np.not_equal)

    def clamp_min(self, min):
        return self._clamp(min, None, "clamp_min")

    def clamp_max(self, max):
        return self._clamp(None, max, "clamp_max")

    def multiply_(self, other):
        return self.mul_(other)

    def subtract_(self, other, alpha=1):
        return self.sub_(other, alpha=alpha)

    def divide_(self, other, *, rounding_mode=None):
        return self.div_(other, rounding_mode=rounding_mode)

    def true_divide_(self, other):
        return self.div_(other)

    def negative_(self):
        return self.neg_()

    def absolute_(self):
        return self.abs_()

    def clip_(self, min=None, max=None):
        return self.clamp_(min, max)

    def clamp_min_(self, min):
        return self.clamp_(min=min)

    def clamp_max_(self, max):
        return self.clamp_(max=max)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """Where |self - other| <= atol + rtol * |other| (equal infinities are close; NaN
        only with equal_nan), elementwise: a bool tensor. Both of one dtype, as PyTorch."""
        _check_tensor_argument("isclose", "other", 2, other)
        if other.dtype != self.dtype:
            raise RuntimeError(f"{_legacy_short(self.dtype)} did not match "
                               f"{_legacy_short(other.dtype)} (isclose needs one dtype)")
        if not (rtol >= 0 and atol >= 0):
            raise RuntimeError(f"isclose(): rtol and atol must be non-negative, got rtol={rtol} "
                               f"and atol={atol}")
        _broadcast_check(self, other, "isclose")
        a, b = self._data, other._data
        if self.dtype is backend.bool_:     # (as numbers: True is within atol=1 of False)
            a, b = a.astype(np.float64), b.astype(np.float64)
        return _wrap(devices.as_array(np.isclose(a, b, rtol=rtol, atol=atol,
                                                 equal_nan=bool(equal_nan))))

    def count_nonzero(self, dim=None):
        """The number of nonzero elements (along `dim`, an int or a tuple): int64."""
        axes = None if dim is None else self._axes(dim)
        return _wrap(devices.as_array(np.asarray(np.count_nonzero(self._data, axis=axes),
                                                 dtype=np.int64)))

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN replaced by `nan`, inf by `posinf`, -inf by `neginf` (by default the dtype's
        largest and lowest finite numbers); integer and bool tensors unchanged (a copy). The
        gradient passes where self is finite."""
        if not self.dtype.is_floating_point:
            return self.clone()
        info = np.finfo(self.dtype.numpy)
        replaced = where(self.isnan(), nan, self)
        replaced = where(self.isposinf(), float(info.max) if posinf is None else posinf,
                         replaced)
        return where(self.isneginf(), float(info.min) if neginf is None else neginf, replaced)

    def nansum(self, dim=None, keepdim=False, *, dtype=None):
        """The sum with NaN counted as zero."""
        return where(self.isnan(), 0, self).sum(dim, keepdim, dtype=dtype)

    def nanmean(self, dim=None, keepdim=False, *, dtype=None):
        """The mean of the numbers that are not NaN (NaN where there are none)."""
        if not (self.dtype.is_floating_point or dtype is not None):
            raise RuntimeError(f"nanmean(): expected input to have floating point dtype but "
                               f"got {_legacy_short(self.dtype)}")
        counted = ~self.isnan()
        return self.nansum(dim, keepdim, dtype=dtype) / counted.sum(dim, keepdim)

    def aminmax(self, *, dim=None, keepdim=False):
        """(min, max): `amin` and `amax` (over `dim`, or everything), as a named tuple."""
        axes = () if dim is None else dim
        return aminmax_result(self.amin(axes, keepdim), self.amax(axes, keepdim))

    def positive(self):
        """self (the unary ``+``); a bool tensor is refused, as PyTorch."""
        return +self

    # -- PyTorch's other arrangements of the same elements (views where PyTorch's are) ---------

    def movedim(self, source, destination):
        """The dimensions `source` moved to positions `destination` (ints, or sequences of
        one length), the others kept in order, e.g. zeros(2, 3, 4).movedim(0, -1).shape is
        (3, 4, 2)."""
        sources = tuple(source) if isinstance(source, (tuple, list)) else (source,)
        destinations = (tuple(destination) if isinstance(destination, (tuple, list))
                         else (destination,))
        if len(sources) != len(destinations):
            raise RuntimeError(f"movedim: Invalid source or destination dims: source "
                               f"({list(sources)}) and destination ({list(destinations)}) must "
                               "have the same number of elements")
        sources = tuple(self._axis(_args.check_int("movedim", "source", d)) for d in sources)
        destinations = tuple(self._axis(_args.check_int("movedim", "destination", d))
                             for d in destinations)
        for name, dims in (("source", sources), ("destination", destinations)):
            if len(set(dims)) != len(dims):
                raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(dims)})")
        if not self.dim():
            return self.view(())
        order = [None] * self.dim()     # order[destination] = source, the rest in order
        for moved, to in zip(sources, destinations, strict=True):
            order[to] = moved
        kept = iter(d for d in range(self.dim()) if d not in sources)
        return self.permute(*(d if d is not None else next(kept) for d in order))

    moveaxis = movedim

    def narrow(self, dim, start, length):
        """The `length` slices from `start` along `dim` (a view), e.g. arange(5).narrow(0, 1,
        2) is [1, 2]; start may be negative (counted from the end)."""
        axis = _args.check_dim("narrow", dim, self.dim())
        if isinstance(start, Tensor):
            start = start.item()
        start = _args.check_int("narrow", "start", start)
        length = _args.check_int("narrow", "length", length)
        size = self.shape[axis]
        if not -size <= start <= size:
            raise IndexError(f"start out of range (expected to be in range of [{-size}, "
                             f"{size}], but got {start})")
        if start < 0:
            start += size
        if length < 0:
            raise RuntimeError(f"narrow(): length must be non-negative, got {length}")
        if start + length > size:
            raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                               f"({size}).")
        return self[(slice(None),) * axis + (slice(start, start + length),)]

    def broadcast_to(self, size):
        """`expand` to `size` (a sequence; -1 keeps a dimension)."""
        return self.expand(_shape_arg((size,), "broadcast_to"))

    def unflatten(self, dim, sizes):
        """Dimension `dim` split into `sizes` (a sequence; one -1 is inferred), e.g.
        zeros(2, 6).unflatten(1, (2, 3)).shape is (2, 2, 3)."""
        axis = _args.check_dim("unflatten", dim, self.dim())
        sizes = _shape_arg((sizes,), "unflatten")
        if not sizes:
            raise RuntimeError("unflatten: sizes must be non-empty")
        if sizes.count(-1) > 1:
            raise RuntimeError(f"unflatten: only one dimension can be inferred, got sizes "
                               f"{list(sizes)}")
        known = math.prod(n for n in sizes if n != -1)
        size = self.shape[axis]
        if (-1 not in sizes and known != size) or (-1 in sizes and (known == 0 or size % known)):
            raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to "
                               f"the size of dim {dim} ({size}) in the input tensor")
        if -1 in sizes:     # (inferred from the dim alone: 0 of an empty one, not ambiguous)
            sizes = tuple(size // known if n == -1 else n for n in sizes)
        return self.reshape(self.shape[:axis] + sizes + self.shape[axis + 1:])

    def tile(self, dims):
        """`repeat` with `dims` padded with leading 1s to the tensor's dimensions (tile(
        (2,)) of a matrix repeats its columns)."""
        counts = _shape_arg((dims,), "tile")
        return self.repeat((1,) * (self.dim() - len(counts)) + counts)

    def type_as(self, other):
        _check_tensor_argument("type_as", "other", 1, other)
        return self.to(other.dtype)

    def rot90(self, k=1, dims=(0, 1)):
        """Rotated by 90 degrees k times in the plane of `dims` (from the first toward the
        second), e.g. arange(6).reshape(2, 3).rot90() is [[2, 5], [1, 4], [0, 3]]."""
        k = _args.check_int("rot90", "k", k)
        if not isinstance(dims, (tuple, list)) or len(dims) != 2:
            raise RuntimeError(f"expected total rotation dims == 2, but got dims = "
                               f"{len(dims) if isinstance(dims, (tuple, list)) else dims}")
        if self.dim() < 2:
            raise RuntimeError(f"expected total dims >= 2, but got total dims = {self.dim()}")
        first, second = self._axis(dims[0]), self._axis(dims[1])
        if first == second:
            raise RuntimeError(f"expected rotation dims to be different, but got dim0 = "
                               f"{dims[0]} and dim1 = {dims[1]}")
        turns = k % 4
        if turns == 1:
            return self.flip(second).transpose(first, second)
        if turns == 2:
            return self.flip(first, second)
        if turns == 3:
            return self.flip(first).transpose(first, second)
        return self.clone()

    def fliplr(self):
        if self.dim() < 2:
            raise RuntimeError(f"Input must be >= 2-d (fliplr of shape {tuple(self.shape)})")
        return self.flip(1)

    def flipud(self):
        if self.dim() < 1:
            raise RuntimeError("Input must be >= 1-d (flipud of a 0-d tensor)")
        return self.flip(0)

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        """Each element (each slice along `dim`; with dim None, of the flattened tensor)
        repeated `repeats` times (an int, or a 0-d or 1-D tensor of counts, one per slice),
        e.g. tensor([1, 2]).repeat_interleave(2) is [1, 1, 2, 2]."""
        source = self.reshape(-1) if dim is None else self
        axis = 0 if dim is None else _args.check_dim("repeat_interleave", dim, self.dim())
        size = source.shape[axis] if source.dim() else 1
        if isinstance(repeats, Tensor):
            if repeats.dtype not in (backend.int64, backend.int32) or repeats.dim() > 1:
                raise RuntimeError(f"repeat_interleave: repeats must be a 0-d or 1-d int tensor "
                                   f"(got {repeats.dtype}, shape {tuple(repeats.shape)})")
            counts = repeats._data.reshape(-1).astype(np.int64)
        else:
            counts = np.array([_args.check_int("repeat_interleave", "repeats", repeats)])
        if (counts < 0).any():
            raise RuntimeError("repeat_interleave: repeats can not be negative")
        if counts.size == 1:
            counts = np.repeat(counts, size)
        if counts.size != size:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got "
                               f"repeats.size(0) = {counts.size} and input.size({axis}) = "
                               f"{size}")
        indices = np.repeat(np.arange(size, dtype=np.int64), counts)
        if output_size is not None and output_size != indices.size:
            raise RuntimeError(f"repeat_interleave: output_size {output_size} is not the sum "
                               f"of the repeats ({indices.size})")
        if source.dim() == 0:
            source = source.reshape(1)
        return source.index_select(axis, _wrap(indices))

    def masked_select(self, mask):
        """The elements where the bool `mask` (broadcast with self) is True, as a 1-D tensor
        in order."""
        _check_tensor_argument("masked_select", "mask", 1, mask)
        if mask.dtype is not backend.bool_:
            raise RuntimeError(f"masked_select: expected BoolTensor for mask, got "
                               f"{mask.dtype}")
        _broadcast_check(self, mask, "masked_select")
        shape = np.broadcast_shapes(tuple(self.shape), tuple(mask.shape))
        return self.expand(shape)[mask.expand(shape)]

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The diagonal of the dim1 x dim2 planes (`offset` above it, or below for a
        negative one), as the last dimension, e.g. eye(3).diagonal() is [1, 1, 1]. (A copy,
        where PyTorch's is a view: writing into it does not change self.)"""
        offset = _args.check_int("diagonal", "offset", offset)
        if self.dim() < 2:
            raise RuntimeError(f"diagonal(): expected a tensor of at least 2 dimensions, got "
                               f"shape {tuple(self.shape)}")
        first, second = self._axis(dim1), self._axis(dim2)
        if first == second:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        rest = [d for d in range(self.dim()) if d not in (first, second)]
        planes = self.permute(*rest, first, second)
        rows, columns = planes.shape[-2], planes.shape[-1]
        length = max(0, min(rows + min(offset, 0), columns - max(offset, 0)))
        start_row, start_column = max(-offset, 0), max(offset, 0)
        index = np.arange(length, dtype=np.int64)
        return planes[(Ellipsis, _wrap(index + start_row), _wrap(index + start_column))]

    def diag(self, diagonal=0):
        """A 1-D tensor as the `diagonal` of a square matrix (zeros elsewhere); a 2-D
        tensor's diagonal, as a 1-D tensor."""
        diagonal = _args.check_int("diag", "diagonal", diagonal)
        if self.dim() == 2:
            return self.diagonal(diagonal)
        if self.dim() != 1:
            raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {self.dim()}D (shape "
                               f"{tuple(self.shape)})")
        n = self.shape[0] + abs(diagonal)
        index = np.arange(self.shape[0], dtype=np.int64)
        rows, columns = index + max(-diagonal, 0), index + max(diagonal, 0)
        # out[rows[i], columns[i]] = self[i], in the flattened matrix
        flat_index = _wrap(np.asarray(rows * n + columns, like=self._data))
        return self.new_zeros(n * n).scatter(0, flat_index, self).reshape(n, n)

    def trace(self):
        """The sum of a matrix's diagonal."""
        if self.dim() != 2:
            raise RuntimeError(f"trace: expected a matrix, but got tensor with dim "
                               f"{self.dim()} (shape {tuple(self.shape)})")
        return self.diagonal().sum()

    # -- combinations of two or three tensors ------------------------------------------------------

    def lerp(self, end, weight):
        """self + weight * (end - self), computed as PyTorch's (from the nearer end: weight
        below 0.5 from self, else from end, so that weight 1 gives end exactly); `end` (and a
        tensor `weight`) of self's dtype, floating."""
        return lerp(self, end, weight)

    def addcmul(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 * tensor2."""
        return addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 / tensor2 (floating tensor1 and tensor2)."""
        return addcdiv(self, tensor1, tensor2, value=value)

    def dot(self, other):
        return dot(self, other)

    def mv(self, vec):
        return mv(self, vec)

    def outer(self, vec2):
        return outer(self, vec2)

    def bmm(self, mat2):
        return bmm(self, mat2)

    # -- matrix products -------------------------------------------------------------------------

    def mm(self, mat2):
        _check_tensor_argument("mm", "mat2", 1, mat2)
        return mm(self, mat2)

    def matmul(self, other):
        _check_tensor_argument("matmul", "other", 1, other)
        return matmul(self, other)

    # -- reductions ------------------------------------------------------------------------------

    @_numpy_names
    def sum(self, dim=None, keepdim=False, dtype=None, axis=None):
        keepdim = _args.check_bool("sum", "keepdim", keepdim)
        axes = self._axes(dim if dim is not None else axis)
        if dtype is not None:
            out_dtype = as_dtype(dtype)
        elif self.dtype.category == backend.FLOAT:
            out_dtype = self.dtype
        else:
            out_dtype = backend.int64
        if not out_dtype.is_floating_point and is_grad_enabled() and self.requires_grad:
            raise RuntimeError(f"sum(): Autograd not support dtype: {_legacy_short(out_dtype)} "
                               f"(the input requires grad; sum to a floating dtype)")
        source = self._cast(out_dtype) if out_dtype.is_floating_point else self
        return ops.Sum.apply(source, axes, keepdim, out_dtype.numpy)

    @_numpy_names
    def mean(self, dim=None, keepdim=False, dtype=None, axis=None):
        keepdim = _args.check_bool("mean", "keepdim", keepdim)
        source = self._cast(as_dtype(dtype)) if dtype is not None else self
        if not source.dtype.is_floating_point:
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating "
                f"point or complex dtype. Got: {source.dtype}; use .float() first"
            )
        return ops.Mean.apply(source, self._axes(dim if dim is not None else axis), keepdim)

    @_numpy_names
    def prod(self, dim=None, keepdim=False, dtype=None):
        keepdim = _args.check_bool("prod", "keepdim", keepdim)
        source = self._cast(as_dtype(dtype)) if dtype is not None else self
        if not source.dtype.is_floating_point:
            if is_grad_enabled() and self.requires_grad:
                raise RuntimeError(f"prod(): Autograd not support dtype: "
                                   f"{_legacy_short(source.dtype)} (the input requires grad)")
            source = source._cast(backend.int64)
        axis = None if dim is None else self._axis(dim)
        if self.dim() == 0:
            axis = None  # prod(dim=0) of a 0-d tensor is the tensor itself
        return ops.Prod.apply(source, axis, keepdim)

    @_numpy_names
    def max(self, dim=_ALL, keepdim=False):
        return self._extreme(dim, keepdim, use_min=False)

    @_numpy_names
    def min(self, dim=_ALL, keepdim=False):
        return self._extreme(dim, keepdim, use_min=True)

    def _extreme(self, dim, keepdim, use_min):
        name = "min" if use_min else "max"
        if isinstance(dim, Tensor):  # max(other): the elementwise maximum
            return self.minimum(dim) if use_min else self.maximum(dim)
        if dim is None:
            raise TypeError(f"{name}(): argument 'dim' must be int, not NoneType (leave it out "
                            "to reduce over every element)")
        if dim is _ALL:
            if keepdim is not False:
                raise TypeError(f"{name}(): keepdim needs a dim (max() over every element "
                                "takes no other argument)")
            if self.numel() == 0:
                raise RuntimeError(
                    f"{name}(): Expected reduction dim to be specified for input.numel() == 0."
                    " Specify the reduction dim with the 'dim' argument."
                )
            return ops.MaxAll.apply(self, use_min)
        keepdim = _args.check_bool(name, "keepdim", keepdim)
        axis = self._reduction_axis(name, dim)
        result = min_result if use_min else max_result
        if self.dim() == 0:  # max(dim=0) of a 0-d tensor: itself, at index 0
            return result(ops.Clone.apply(self), _wrap(np.zeros((), dtype=np.int64)))
        indices = _arg_extreme(self._data, axis, use_min)
        values = ops.MaxDim.apply(self, axis, keepdim, indices)
        if keepdim:
            indices = np.expand_dims(indices, axis)
        return result(values, _wrap(indices.astype(np.int64)))

    def _reduction_axis(self, name: str, dim) -> int:
        """The axis of a reduction over one `dim` that picks an element (max, argmax...):
        in range, and not of size 0 (there is nothing to pick there)."""
        axis = _args.check_dim(name, dim, self.dim())
        if self.dim() and self.shape[axis] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero size "
                             f"(input of shape {tuple(self.shape)})")
        return axis

    @_numpy_names
    def amax(self, dim=(), keepdim=False):
        """The largest values over `dim` (all dimensions by default); ties share the
        gradient equally (unlike ``max(dim)``, whose gradient goes to the returned index)."""
        return self._amax(dim, keepdim, use_min=False)

    @_numpy_names
    def amin(self, dim=(), keepdim=False):
        return self._amax(dim, keepdim, use_min=True)

    def _amax(self, dim, keepdim, use_min):
        name = "amin" if use_min else "amax"
        keepdim = _args.check_bool(name, "keepdim", keepdim)
        axes = self._axes(dim)
        if self.numel() == 0:
            if axes is None:
                raise RuntimeError(
                    f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                    "Specify the reduction dim with the 'dim' argument."
                )
            for axis in axes:
                if self.shape[axis] == 0:
                    raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero "
                                     f"size (input of shape {tuple(self.shape)})")
        return ops.Amax.apply(self, axes, keepdim, use_min)

    @_numpy_names
    def argmax(self, dim=None, keepdim=False):
        return self._arg(dim, keepdim, use_min=False)

    @_numpy_names
    def argmin(self, dim=None, keepdim=False):
        return self._arg(dim, keepdim, use_min=True)

    def _arg(self, dim, keepdim, use_min):
        name = "argmin" if use_min else "argmax"
        keepdim = _args.check_bool(name, "keepdim", keepdim)
        if self.dtype is backend.bool_:
            raise RuntimeError(f"{name}(): does not support bool input; convert it with "
                               ".int() first")
        if dim is None:
            if self.numel() == 0:
                raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                                 f"input.numel() == 0 (input of shape {tuple(self.shape)}).")
            flat = _arg_extreme(self._data.reshape(-1), 0, use_min)
            # on self's device (NumPy would pull a device scalar to the host)
            result = devices.namespace_of(self._data).asarray(flat, dtype=np.int64)
            return _wrap(result.reshape((1,) * self.dim()) if keepdim else result)
        axis = self._reduction_axis(name, dim)
        if self.dim() == 0:
            return _wrap(np.zeros((), dtype=np.int64, like=self._data))
        indices = _arg_extreme(self._data, axis, use_min).astype(np.int64)
        return _wrap(np.expand_dims(indices, axis) if keepdim else indices)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The vector p-norm over `dim` (all elements by default): p = 'fro' or 2 (the
        default), any real p, inf / -inf (largest / smallest magnitude), 0 (the number of
        nonzero elements, with no gradient)."""
        if p in ("fro", None):
            p = 2
        if p == "nuc":
            raise NotImplementedError("norm(p='nuc')")
        if isinstance(p, str) or not isinstance(p, numbers.Real):
            raise RuntimeError(f"norm(): p must be a number, 'fro' or 'nuc', got {p!r}")
        if dtype is None and not self.dtype.is_floating_point:
            raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex "
                               f"tensor as input. Got {_legacy_short(self.dtype)}")
        source = self._cast(as_dtype(dtype)) if dtype is not None else self
        keepdim = _args.check_bool("norm", "keepdim", keepdim)
        axes = self._axes(dim)
        if (p < 0 or math.isinf(p)) and (self.numel() == 0 if axes is None else any(
                self.shape[a] == 0 for a in axes)):
            # (a minimum or maximum of no numbers: PyTorch refuses it, as here)
            where = ("an empty tensor" if axes is None else
                     f"the dimension {next(a for a in axes if self.shape[a] == 0)}, which is "
                     "empty")
            raise RuntimeError(f"linalg.vector_norm cannot compute the {p:g} norm on {where} "
                               f"(input of shape {tuple(self.shape)}): the operation has no "
                               "identity")
        # (PyTorch takes a 0-d tensor's norm over a dim it is given by its general loop, whose
        # powers overflow and underflow: float32 3e20 gives inf, where with no dim it gives
        # the magnitude, as for any single element)
        powers = self.dim() == 0 and dim is not None and not (
            isinstance(dim, (list, tuple)) and len(dim) == 0)
        return ops.Norm.apply(source, float(p), axes, keepdim, powers)

    @_numpy_names
    def std(self, dim=None, unbiased=True, keepdim=False, correction=None):
        """The standard deviation over `dim`: sqrt(sum((x - mean)**2) / (n - correction)),
        correction 1 by default (``unbiased=False``: 0); float32 accumulates in float64."""
        return self._variance("std", dim, unbiased, keepdim, correction, root=True)

    @_numpy_names
    def var(self, dim=None, unbiased=True, keepdim=False, correction=None):
        """The variance over `dim`: sum((x - mean)**2) / (n - correction)."""
        return self._variance("var", dim, unbiased, keepdim, correction, root=False)

    def _variance(self, name, dim, unbiased, keepdim, correction, root):
        if isinstance(dim, bool):  # std(False): PyTorch's std(unbiased) overload
            if correction is not None or keepdim is not False or unbiased is not True:
                raise TypeError(f"{name}(): received an invalid combination of arguments: "
                                f"dim={dim!r} (a bool is the 'unbiased' overload, which takes "
                                "no other argument); pass dim as an int or a tuple of ints")
            dim, unbiased = None, dim
        keepdim = _args.check_bool(name, "keepdim", keepdim)
        if not self.dtype.is_floating_point:
            raise RuntimeError(f"{name}(): expected a floating point input, got {self.dtype}; "
                               "convert it with .float()")
        if correction is not None and not isinstance(correction, numbers.Real):
            # (a bool is a number there: correction=True is 1, as PyTorch)
            raise TypeError(f"{name}(): argument 'correction' must be Number, not "
                            f"{_args.type_name(correction)}")
        correction = (1 if unbiased else 0) if correction is None else correction
        axes = self._axes(dim)
        count = self.numel() if axes is None else math.prod(self.shape[a] for a in axes)
        if count - correction <= 0:
            warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly "
                          "less than the reduction factor (input numel divided by output numel).",
                          UserWarning, stacklevel=4)
        return ops.Variance.apply(self, axes, correction, keepdim, root)

    @_numpy_names
    def all(self, dim=None, keepdim=False):
        return self._logical_reduction("all", np.all, dim, keepdim)

    @_numpy_names
    def any(self, dim=None, keepdim=False):
        return self._logical_reduction("any", np.any, dim, keepdim)

    def _logical_reduction(self, name, function, dim, keepdim):
        """all / any: bool, except that a uint8 input gives uint8 (as PyTorch)."""
        keepdim = _args.check_bool(name, "keepdim", keepdim)
        if isinstance(dim, (tuple, list)) and not dim:  # dim=(): nothing reduced (PyTorch)
            out = self._data.astype(bool)
            return _wrap(out.astype(np.uint8) if self.dtype is backend.uint8 else out)
        out = devices.as_array(function(self._data, axis=self._axes(dim), keepdims=keepdim))
        return _wrap(out.astype(np.uint8) if self.dtype is backend.uint8 else out)

    def _axis(self, dim) -> int:
        """Normalize one dimension index, with a clear error."""
        ndim = max(self.dim(), 1)
        if not _args.is_int(dim):
            raise TypeError(f"dim must be an int, got {type(dim).__name__}")
        if not -ndim <= dim < ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but "
                f"got {dim}) for a tensor of shape {tuple(self.shape)}"
            )
        return int(dim) % ndim

    def _axes(self, dim):
        if dim is None:
            return None
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        if not dims:  # dim=() or []: every dimension, as PyTorch
            return None
        axes = tuple(self._axis(d) for d in dims)
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"dim {tuple(dims)} appears multiple times in the list of dims")
        return axes if self.dim() > 0 else None

    # -- shape ops ---------------------------------------------------------------------------

    def _view_of(self, result: Tensor, view_fn) -> Tensor:
        """Mark `result` as a view of `self` when it shares memory with it.

        `view_fn` maps self's array to result's; composed with self's own, it derives the view
        from the base, which is what an in-place op on the view needs (see _inplace).
        """
        if np.may_share_memory(result._data, self._data):
            result._version = self._version
            # a view made under no_grad stays out of the graph (None: never re-derived)
            result._view_version = self._version[0] if is_grad_enabled() else None
            if self._base is None:
                result._base, result._view_fn = self, view_fn
            else:
                parent_fn = self._view_fn
                result._base = self._base
                result._view_fn = lambda array: view_fn(parent_fn(array))
        return result

    def reshape(self, *shape):
        if not shape:
            raise TypeError('reshape() missing 1 required positional arguments: "shape"')
        shape = _infer_shape(_shape_arg(shape), self.numel(), "reshape",
                             self._data.itemsize)
        return self._view_of(ops.Reshape.apply(self, shape), lambda a: a.reshape(shape))

    def view(self, *shape):
        if not shape:
            raise TypeError("view() received an invalid combination of arguments - got (), "
                            "but expected (torch.dtype dtype) or (tuple of ints size)")
        if len(shape) == 1 and isinstance(shape[0], (backend.dtype, type(np.float32))):
            raise NotImplementedError("view(dtype)")
        shape = _infer_shape(_shape_arg(shape), self.numel(), "view", self._data.itemsize)
        result = ops.Reshape.apply(self, shape)
        if self.numel() > 1 and not np.may_share_memory(result._data, self._data):
            raise RuntimeError(
                f"view size {list(shape)} is not compatible with input tensor's size and stride "
                f"(shape {tuple(self.shape)}, at least one dimension spans across two "
                "contiguous subspaces). Use .reshape(...) instead."
            )
        return self._view_of(result, lambda a: a.reshape(shape))

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        start = _args.check_dim("flatten", start_dim, self.dim())
        end = _args.check_dim("flatten", end_dim, self.dim())
        if self.dim() == 0:
            return self.reshape(1)
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        merged = math.prod(self.shape[start:end + 1])  # not -1: an empty tensor has no size
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def permute(self, *dims):
        if not dims:
            raise TypeError('permute() missing 1 required positional arguments: "dims"')
        dims = _shape_arg(dims, "permute")
        axes = tuple(self._axis(d) for d in dims)
        if sorted(axes) != list(range(self.dim())):
            raise RuntimeError(
                f"permute(): dims {tuple(dims)} are not a permutation of the {self.dim()} "
                f"dimensions of a tensor of shape {tuple(self.shape)}"
            )
        return self._view_of(ops.Permute.apply(self, axes), lambda a: a.transpose(axes))

    def transpose(self, dim0, dim1):
        return self._transpose(dim0, dim1, "TransposeBackward0")

    def _transpose(self, dim0, dim1, torch_name):
        """transpose, its grad_fn named `torch_name` (t() is TBackward0 in PyTorch)."""
        if self.dim() < 2 and dim0 in (0, -1) and dim1 in (0, -1):
            shape = self.shape
            return self._view_of(ops.Reshape.apply(self, shape, torch_name),
                                 lambda a: a.reshape(shape))
        axes = list(range(self.dim()))
        a, b = self._axis(dim0), self._axis(dim1)
        axes[a], axes[b] = axes[b], axes[a]
        axes = tuple(axes)
        return self._view_of(ops.Permute.apply(self, axes, torch_name),
                             lambda a: a.transpose(axes))

    swapaxes = swapdims = transpose

    def t(self):
        if self.dim() > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.dim()}D (shape {tuple(self.shape)})")
        return self._transpose(0, -1, "TBackward0") if self.dim() == 2 else self

    @_numpy_names
    def squeeze(self, dim=_ALL_DIMS):
        if dim is None:     # (PyTorch's parser refuses it: squeeze() takes no dim, or ints)
            raise TypeError("squeeze(): argument 'dim' must be int or tuple of ints, not "
                            "NoneType (call squeeze() without it to remove every size-1 dim)")
        if dim is _ALL_DIMS:
            dim = None
            shape = tuple(n for n in self.shape if n != 1)
        else:
            axes = self._axes(dim) or ()
            shape = tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1))
        name = "SqueezeBackward0" if dim is None else "SqueezeBackward1"
        return self._view_of(ops.Reshape.apply(self, shape, name), lambda a: a.reshape(shape))

    @_numpy_names
    def unsqueeze(self, dim):
        dim = _args.check_int("unsqueeze", "dim", dim, position=1)
        ndim = self.dim() + 1
        if not -ndim <= dim < ndim:
            raise IndexError(f"unsqueeze(): dim {dim} out of range [{-ndim}, {ndim - 1}] for a "
                             f"tensor of shape {tuple(self.shape)}")
        dim %= ndim
        shape = self.shape[:dim] + (1,) + self.shape[dim:]
        return self._view_of(ops.Reshape.apply(self, shape, "UnsqueezeBackward0"),
                             lambda a: a.reshape(shape))

    def expand(self, *sizes):
        if not sizes:
            raise TypeError('expand() missing 1 required positional arguments: "size"')
        sizes = _args.check_size("expand", _shape_arg(sizes, "expand"), allow_minus_one=True)
        if len(sizes) < self.dim():
            raise RuntimeError(
                f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal "
                f"to the number of dimensions in the tensor ({self.dim()})"
            )
        new_dims = len(sizes) - self.dim()
        if -1 in sizes[:new_dims]:
            raise RuntimeError(f"expand: the expanded size of the tensor (-1) isn't allowed in "
                               f"a leading, non-existing dimension {sizes.index(-1)}")
        own = (1,) * new_dims + tuple(self.shape)
        target = tuple(o if s == -1 else s for s, o in zip(sizes, own, strict=True))
        for s, o in zip(target, own, strict=True):
            if o != 1 and s != o:
                raise RuntimeError(
                    f"expand: the expanded size {list(target)} must match the existing size "
                    f"{list(self.shape)} at non-singleton dimensions"
                )
        return self._view_of(ops.Expand.apply(self, target),
                             lambda a: np.broadcast_to(a, target))

    def expand_as(self, other):
        return self.expand(tuple(other.shape))

    def repeat(self, *sizes):
        """The tensor tiled `sizes` times along each dimension (leading new dimensions for
        extra sizes)."""
        if not sizes:
            raise TypeError('repeat() missing 1 required positional arguments: "repeats"')
        if len(sizes) == 1 and isinstance(sizes[0], (bool, float)):
            raise TypeError(f"repeat(): argument 'repeats' (position 1) must be tuple of ints, "
                            f"not {_args.type_name(sizes[0])}")
        counts = _args.check_size("repeat", _shape_arg(sizes, "repeat"))
        if len(counts) < self.dim():
            raise RuntimeError(f"repeat(): Number of dimensions of repeat dims ({len(counts)}) "
                               f"can not be smaller than number of dimensions of tensor "
                               f"({self.dim()}, shape {tuple(self.shape)})")
        source = self.reshape((1,) * (len(counts) - self.dim()) + tuple(self.shape))
        return ops.Repeat.apply(source, counts)

    def __getitem__(self, index):
        index, advanced = _convert_index(index, self.shape, like=self._data)
        result = ops.GetItem.apply(self, index)
        return result if advanced else self._view_of(result, lambda a: a[index])

    # -- issue 12: sorting, selection, rearranging, new_* -------------------------------------

    def sort(self, dim=-1, descending=False, stable=False):
        """``(values, indices)`` sorted along `dim` (ascending; NaN counts as the largest).
        Equal elements keep their order (the sort is always stable)."""
        axis = _args.check_dim("sort", dim, self.dim())
        _args.check_bool("sort", "descending", descending)
        indices = self._sort_indices(axis, descending)
        return sort_result(self._take_along(ops.Sort, indices, axis), _wrap(indices))

    def argsort(self, dim=-1, descending=False, stable=False):
        """The indices that sort the tensor along `dim` (see `sort`)."""
        axis = _args.check_dim("argsort", dim, self.dim())
        _args.check_bool("argsort", "descending", descending)
        _args.check_bool("argsort", "stable", stable)
        return _wrap(self._sort_indices(axis, descending))

    def _sort_indices(self, axis: int, descending: bool) -> np.ndarray:
        """Stable sorting indices (int64) along `axis`; descending keeps equal elements in
        their order too (a stable ascending sort of the reversed array, reversed)."""
        data = self._data if self.dim() else self._data.reshape(1)
        if not descending:
            order = np.argsort(data, axis=axis, kind="stable")
        else:
            n = data.shape[axis]
            reversed_order = np.argsort(np.flip(data, axis), axis=axis, kind="stable")
            order = (n - 1) - np.flip(reversed_order, axis)
        order = order.astype(np.int64)
        return order if self.dim() else order.reshape(())

    def _take_along(self, function, indices: np.ndarray, axis: int) -> Tensor:
        if self.dim() == 0:
            return ops.Clone.apply(self)
        return function.apply(self, indices, axis)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """``(values, indices)`` of the `k` largest (or, ``largest=False``, smallest)
        elements along `dim`, in order. Which of equal elements is picked is not specified
        by PyTorch; corrnet picks the first."""
        k = _args.check_int("topk", "k", k, position=1)
        axis = _args.check_dim("topk", dim, self.dim())
        _args.check_bool("topk", "largest", largest)
        size = self.shape[axis] if self.dim() else 1
        if not 0 <= k <= size:
            raise RuntimeError(f"selected index k out of range: topk(k={k}) along dim {dim} "
                               f"of a tensor of shape {tuple(self.shape)}")
        order = self._sort_indices(axis, descending=largest)
        indices = order if self.dim() == 0 else np.take(order, np.arange(k, like=order),
                                                         axis=axis)
        return topk_result(self._take_along(ops.Topk, indices, axis), _wrap(indices))

    def where(self, condition, other):
        """``corrnet.where(condition, self, other)``: this tensor's elements where `condition`
        holds, else `other`'s.

        >>> corrnet.tensor([1., 2., 3.]).where(corrnet.tensor([True, False, True]), 0.5)
        tensor([1.0000, 0.5000, 3.0000])
        """
        return where(condition, self, other)

    def masked_fill(self, mask, value):
        """A copy with `value` (a number or a 0-d tensor) where the bool `mask` (broadcast
        with the tensor) holds; a tensor `value` gets the gradient of the filled places.

        >>> corrnet.tensor([1., 2., 3.]).masked_fill(corrnet.tensor([True, False, True]), 0)
        tensor([0., 2., 0.])
        """
        value = self._masked_fill_value(mask, value)
        try:
            shape = np.broadcast_shapes(self._data.shape, mask._data.shape)
        except ValueError:
            raise RuntimeError(f"masked_fill: the size of the mask {tuple(mask.shape)} does not "
                               f"broadcast with the tensor's shape {tuple(self.shape)}") from None
        source = self if tuple(shape) == self._data.shape else self.expand(shape)
        return ops.MaskedFill.apply(source, value, np.broadcast_to(mask._data, shape))

    def masked_fill_(self, mask, value):
        value = self._masked_fill_value(mask, value)
        try:
            mask_array = np.broadcast_to(mask._data, self._data.shape)
        except ValueError:
            raise RuntimeError(f"masked_fill_: the mask of shape {tuple(mask.shape)} does not "
                               f"broadcast to the tensor's shape {tuple(self.shape)}") from None
        return self._inplace_op(lambda source, v: ops.MaskedFill.apply(source, v, mask_array),
                                value)

    def _masked_fill_value(self, mask, value) -> Tensor:
        """masked_fill's `value` as a 0-d tensor of self's dtype, checked with `mask`."""
        _check_tensor_argument("masked_fill", "mask", 1, mask)
        if mask.dtype is not backend.bool_:
            c_name = {"uint8": "unsigned char", "int8": "signed char", "int64": "long int",
                      "float16": "c10::Half"}.get(mask.dtype.name, _c_type_name(mask.dtype))
            raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with "
                               f"dtype {c_name}")
        if not isinstance(value, Tensor):
            return _wrap(_fill_array(value, self.dtype, "masked_fill"))
        if value.dim() != 0:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, "
                               f"but got tensor with {value.dim()} dimension(s).")
        if value.dtype == self.dtype:
            return value
        if self.dtype.is_floating_point:
            return value._cast(self.dtype)  # the gradient still reaches value
        return _wrap(value._data.astype(self._data.dtype))

    def chunk(self, chunks, dim=0):
        """At most `chunks` views of equal size along `dim` (the last may be smaller)."""
        chunks = _args.check_int("chunk", "chunks", chunks, position=1)
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        if self.dim() == 0:
            raise RuntimeError("chunk expects at least a 1-dimensional tensor")
        axis = _args.check_dim("chunk", dim, self.dim())
        size = self.shape[axis]
        if size == 0:  # `chunks` empty views, as PyTorch
            return tuple(self.split(0, axis)[0][...] for _ in range(chunks))
        return self.split(-(-size // chunks), axis)

    def split(self, split_size_or_sections, dim=0):
        """Views along `dim`: of `split_size` each (the last may be smaller), or of the
        listed sizes, which must add up to the dimension's size."""
        if self.dim() == 0:
            raise RuntimeError("split expects at least a 1-dimensional tensor")
        axis = _args.check_dim("split", dim, self.dim())
        size = self.shape[axis]
        if isinstance(split_size_or_sections, (list, tuple)):
            sections = [_args.check_int("split", "split_size", s) for s in
                        split_size_or_sections]
            if sum(sections) != size or any(s < 0 for s in sections):
                raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to "
                                   f"{size} (input tensor's size at dimension {axis}), but got "
                                   f"split_sizes={sections}")
        else:
            step = _args.check_int("split", "split_size", split_size_or_sections)
            if step < 0:
                raise RuntimeError(f"split expects split_size be non-negative, but got "
                                   f"split_size={step}")
            if step == 0 and size:
                raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                                   f"dimension size of {size}")
            # (an empty dimension gives one empty piece, as PyTorch)
            sections = [min(step, size - start) for start in range(0, size, step)] \
                if step and size else [0]
        pieces, start = [], 0
        for length in sections:
            index = (slice(None),) * axis + (slice(start, start + length),)
            pieces.append(self[index])
            start += length
        return tuple(pieces)

    def unbind(self, dim=0):
        """The slices along `dim`, that dimension removed: a tuple of ``shape[dim]`` views
        (``t.unbind(0)[i]`` is ``t[i]``), each with its gradient back to `self`.

        >>> corrnet.tensor([[1, 2], [3, 4]]).unbind(1)
        (tensor([1, 3]), tensor([2, 4]))
        """
        if self.dim() == 0:
            dim = _args.check_int("unbind", "dim", dim)
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        axis = _args.check_dim("unbind", dim, self.dim())
        return tuple(self[(slice(None),) * axis + (position,)]
                     for position in range(self.shape[axis]))

    def _index_argument(self, op: str, index, dtypes=(np.int64,)) -> np.ndarray:
        _check_tensor_argument(op, "index", 2, index)
        if index._data.dtype not in dtypes:
            expected = " or ".join("int32" if d is np.int32 else "int64" for d in dtypes)
            raise RuntimeError(f"{op}(): Expected dtype {expected} for index, got "
                               f"{index.dtype}")
        return index._data

    def _check_along(self, op: str, axis: int, index: np.ndarray, src_shape=None) -> None:
        """PyTorch's checks of gather/scatter: as many dimensions as self, no larger than
        self outside `axis` (and than src everywhere), indices in range."""
        ndim = max(self.dim(), 1)
        if index.ndim != self.dim() and not (index.ndim <= 1 and self.dim() <= 1):
            raise RuntimeError(f"Index tensor must have the same number of dimensions as "
                               f"input tensor ({op}: index of shape {index.shape}, input of "
                               f"shape {tuple(self.shape)})")
        own = self._data.shape or (1,)
        shape = index.shape or (1,)
        too_big = any(shape[d] > own[d] for d in range(ndim) if d != axis)
        if src_shape is not None:
            src = src_shape or (1,)
            too_big = too_big or any(shape[d] > src[d] for d in range(min(len(src), ndim)))
        if too_big and index.size:
            raise RuntimeError(f"{op}(): Expected index {list(index.shape)} to be no larger "
                               f"than self {list(self.shape)} apart from dimension {axis}"
                               + (f" and to be no larger size than src {list(src_shape)}"
                                  if src_shape is not None else ""))
        if index.size:
            bad = (index < 0) | (index >= own[axis])  # no wrapping, as PyTorch
            if np.any(bad):
                raise RuntimeError(f"index {index[bad].flat[0]} is out of bounds for dimension "
                                   f"{axis} with size {own[axis]}")

    def gather(self, dim, index, *, sparse_grad=False):
        """``out[i][j] = self[i][index[i][j]]`` for dim 1 (and so on): the elements at
        `index` (int64, as many dimensions as self) along `dim`."""
        if _args.check_bool("gather", "sparse_grad", sparse_grad):
            raise NotImplementedError("gather(sparse_grad=True): corrnet has no sparse tensors")
        axis = _args.check_dim("gather", dim, self.dim())
        index = self._index_argument("gather", index, (np.int32, np.int64)).astype(np.int64)
        self._check_along("gather", axis, index)
        if self.dim() == 0:
            return ops.Reshape.apply(self, index.shape)
        return ops.Gather.apply(self, index, axis)

    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        """A copy with ``out[i][index[i][j]] = src[i][j]`` for dim 1 (and so on): `src` a
        tensor of self's dtype (only its part of `index`'s shape is used) or a number."""
        return self._scatter("scatter", dim, index, src, value, reduce, add=False)

    def scatter_add(self, dim, index, src):
        """A copy with ``out[i][index[i][j]] += src[i][j]`` for dim 1 (repeats add up)."""
        return self._scatter("scatter_add", dim, index, src, None, None, add=True)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        return self._inplace_op(lambda source: source.scatter(dim, index, src, value,
                                                              reduce=reduce))

    def scatter_add_(self, dim, index, src):
        return self._inplace_op(lambda source: source.scatter_add(dim, index, src))

    def _scatter(self, op, dim, index, src, value, reduce, add):
        if reduce is not None:
            raise NotImplementedError(f"{op}(reduce={reduce!r})")
        if src is None:
            src = value
        if src is None:
            raise TypeError(f"{op}() missing 1 required argument: 'src' (or 'value')")
        axis = _args.check_dim(op, dim, self.dim())
        index = self._index_argument(op, index, (np.int32, np.int64)).astype(np.int64)
        if isinstance(src, Tensor):
            if src.dtype != self.dtype:
                raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype "
                                   f"(self {self.dtype}, src {src.dtype})")
            self._check_along(op, axis, index, tuple(src.shape))
        else:
            if add:
                raise TypeError(f"{op}(): argument 'src' must be Tensor, not "
                                f"{_args.type_name(src)}")
            self._check_along(op, axis, index)
            src = _scalar_array(src.item() if isinstance(src, np.generic) else src,
                                self.dtype, op)
        if self.dim() == 0:
            flat = self.reshape(1)
            out = flat._scatter(op, 0, _wrap(index.reshape(-1)),
                                src.reshape(-1) if isinstance(src, Tensor) else src.item(),
                                None, None, add)
            return out.reshape(())
        return (ops.ScatterAdd if add else ops.Scatter).apply(self, src, index, axis, add)

    def index_select(self, dim, index):
        """The slices at the 1-D (or 0-d) int `index` along `dim`, in that order."""
        axis = _args.check_dim("index_select", dim, self.dim())
        _check_tensor_argument("index_select", "index", 2, index)
        if index.dim() > 1:
            raise IndexError("index_select(): Index is supposed to be a vector (got an index "
                             f"of shape {tuple(index.shape)})")
        indices = self._index_argument("index_select", index, (np.int32, np.int64))
        indices = indices.reshape(-1).astype(np.int64)
        size = self._data.shape[axis] if self.dim() else 1
        if indices.size and (indices.min() < 0 or indices.max() >= size):
            bad = indices[(indices < 0) | (indices >= size)][0]
            raise RuntimeError(f"index_select(): index {bad} is out of range for dimension "
                               f"{axis} with size {size} (INDICES element is out of DATA "
                               "bounds)")
        if self.dim() == 0:
            if indices.size != 1:
                raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, "
                                   f"got {indices.size} value(s)")
            return ops.Reshape.apply(self, index.shape)
        return ops.IndexSelect.apply(self, indices, axis)

    def roll(self, shifts, dims=None):
        """The elements shifted cyclically by `shifts` along `dims` (none: the flattened
        tensor, shape kept)."""
        shifts_t = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
        if not shifts_t:
            raise RuntimeError("`shifts` required")
        shifts_t = tuple(_args.check_int("roll", "shifts", s) for s in shifts_t)
        if dims is None:
            if len(shifts_t) != 1:
                raise RuntimeError(f"shifts and dimensions must align. shifts: "
                                   f"{len(shifts_t)}, dims:0")
            return ops.Roll.apply(self, shifts_t[0], None)
        dims_t = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        if len(shifts_t) != len(dims_t):
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts_t)}, "
                               f"dims:{len(dims_t)}")
        if self.dim() == 0:
            raise IndexError(f"Dimension specified as {dims_t[0]} but tensor has no "
                             "dimensions (roll of a 0-d tensor takes no dims)")
        axes = tuple(_args.check_dim("roll", d, self.dim()) for d in dims_t)
        return ops.Roll.apply(self, shifts_t, axes)

    def flip(self, *dims):
        """A copy with the order of elements reversed along `dims`."""
        if not dims:
            raise TypeError('flip() missing 1 required positional arguments: "dims"')
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        axes = tuple(_args.check_dim("flip", d, self.dim()) for d in dims)
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"dim {axes[0]} appears multiple times in the list of dims")
        if self.dim() == 0 or not axes:
            return ops.Clone.apply(self)
        return ops.Flip.apply(self, axes)

    def tril(self, diagonal=0):
        """The lower triangle of the last two dimensions (from the `diagonal`-th diagonal:
        0 the main one, > 0 above, < 0 below); the rest zero."""
        return self._triangle("tril", diagonal, upper=False)

    def triu(self, diagonal=0):
        """The upper triangle of the last two dimensions; see `tril`."""
        return self._triangle("triu", diagonal, upper=True)

    def tril_(self, diagonal=0):
        return self._inplace_op(Tensor.tril, diagonal)

    def triu_(self, diagonal=0):
        return self._inplace_op(Tensor.triu, diagonal)

    def _triangle(self, op, diagonal, upper):
        diagonal = _args.check_int(op, "diagonal", diagonal)
        if self.dim() < 2:
            raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions (got shape "
                               f"{tuple(self.shape)})")
        return (ops.Triu if upper else ops.Tril).apply(self, diagonal, upper)

    def cumsum(self, dim, dtype=None):
        """The running sum along `dim`; integer and bool tensors sum in int64 (as PyTorch),
        or in `dtype` when given."""
        return self._running("cumsum", dim, dtype, ops.Cumsum)

    def logsumexp(self, dim, keepdim=False):
        """log(sum(exp(x))) over `dim`, computed stably; integer tensors give the default
        float dtype."""
        keepdim = _args.check_bool("logsumexp", "keepdim", keepdim)
        if dim is None:  # (PyTorch's logsumexp, unlike sum, has no "all dimensions" None)
            raise TypeError("logsumexp(): argument 'dim' (position 2) must be tuple of ints, "
                            "not NoneType")
        source = self if self.dtype.is_floating_point else self._cast(
            backend.get_default_dtype())
        if isinstance(dim, (tuple, list)) and not dim:
            return source.logsumexp(tuple(range(self.dim())), keepdim) if self.dim() else \
                ops.Logsumexp.apply(source, None, keepdim)
        axes = self._axes(dim)
        return ops.Logsumexp.apply(source, axes, keepdim)

    # -- searching, counting, running products and order statistics ---------------------------

    def nonzero(self, *, as_tuple=False):
        """The indices of the nonzero elements (NaN counts as nonzero) in row-major order,
        an int64 tensor (count, dims), e.g. tensor([0, 3, 0, 5]).nonzero() is [[1], [3]];
        with `as_tuple`, one 1-D tensor of indices per dimension (a 0-d tensor: one)."""
        as_tuple = _args.check_bool("nonzero", "as_tuple", as_tuple)
        data = self._data
        if as_tuple:
            found = np.nonzero(data.reshape(1) if data.ndim == 0 else data)
            return tuple(_wrap(axis.astype(np.int64)) for axis in found)
        if data.ndim == 0:
            return _wrap(np.zeros((int(bool(data)), 0), dtype=np.int64, like=data))
        return _wrap(np.argwhere(data).astype(np.int64))

    def argwhere(self):
        """`nonzero()`: the indices of the nonzero elements, (count, dims)."""
        return self.nonzero()

    def is_nonzero(self):
        """Whether a one-element tensor is not zero (PyTorch refuses more or fewer)."""
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with "
                               f"{'no values' if self.numel() == 0 else 'more than one value'} "
                               f"is ambiguous (is_nonzero of shape {tuple(self.shape)})")
        return bool(self._data.reshape(-1)[0])

    def is_complex(self):
        """False: corrnet has no complex dtypes."""
        return False

    def _running_dtype(self, op: str, dtype):
        """The dtype cumsum and cumprod compute in: `dtype`, else a floating tensor's own,
        else int64 (as PyTorch)."""
        if dtype is not None:
            target = as_dtype(_args.check_dtype(op, dtype))
            if target is backend.bool_ and self.dim() and self.numel():
                # (PyTorch's kernel refuses; a 0-d or empty tensor never reaches it)
                raise NotImplementedError(f'"{op}_out_cpu" not implemented for \'Bool\' '
                                          f"({op} has no bool dtype)")
            return target
        return self.dtype if self.dtype.is_floating_point else backend.int64

    def cumprod(self, dim, dtype=None):
        """The running product along `dim`, e.g. tensor([1, 2, 3]).cumprod(0) is [1, 2, 6];
        integer and bool tensors multiply in int64 (as PyTorch), or in `dtype` when given.
        Its gradient is exact where the slice holds zeros (ops.Cumprod)."""
        return self._running("cumprod", dim, dtype, ops.Cumprod)

    def _running(self, op: str, dim, dtype, function):
        """cumsum and cumprod: `function` (ops.Cumsum or ops.Cumprod) along `dim`, in the
        dtype `_running_dtype` gives (a 0-d tensor: itself, in that dtype)."""
        axis = _args.check_dim(op, dim, self.dim())
        target = self._running_dtype(op, dtype)
        source = self._cast(target) if target.is_floating_point else self
        if self.dim() == 0:
            return ops.Cast.apply(source, target.numpy) if source is self else ops.Clone.apply(
                source)
        return function.apply(source, axis, target.numpy)

    def cummax(self, dim):
        """``(values, indices)``: the running maximum along `dim` and where it was found,
        the latest of equal values; a NaN, once met, stays the maximum (at the latest NaN),
        e.g. tensor([1, 3, 2, 3]).cummax(0) is values [1, 3, 3, 3], indices [0, 1, 1, 3]."""
        return self._running_extreme("cummax", dim, np.maximum, ops.Cummax, cummax_result)

    def cummin(self, dim):
        """``(values, indices)``: the running minimum along `dim` (see `cummax`)."""
        return self._running_extreme("cummin", dim, np.minimum, ops.Cummin, cummin_result)

    def _running_extreme(self, op, dim, extreme, function, result):
        axis = _args.check_dim(op, dim, self.dim())
        data = self._data if self.dim() else self._data.reshape(1)
        n = data.shape[axis]
        running = extreme.accumulate(data, axis=axis) if n else data
        # the index of each running extreme: the latest position whose element equals the
        # extreme so far (a NaN counts at its own position), carried forward
        position = np.arange(n, like=data).reshape([n if d == axis else 1
                                                    for d in range(data.ndim)])
        found = data == running
        if self.dtype.is_floating_point:
            found |= np.isnan(data)
        indices = np.maximum.accumulate(np.where(found, position, 0), axis=axis) if n else (
            np.zeros(data.shape, dtype=np.int64, like=data))
        indices = indices.astype(np.int64).reshape(self._data.shape)
        return result(self._take_along(function, indices, axis), _wrap(indices))

    def median(self, dim=_ALL_DIMS, keepdim=False):
        """The lower of the two middle values (of an even count), NaN where there is a NaN:
        a 0-d tensor over every element, e.g. tensor([1., 4., 2., 3.]).median() is 2.; with
        `dim`, ``(values, indices)`` along it. Equal elements share median()'s gradient
        (as PyTorch); median(dim)'s goes to the returned index."""
        return self._middle("median", dim, keepdim, ignore_nan=False)

    def nanmedian(self, dim=_ALL_DIMS, keepdim=False):
        """`median` of the numbers that are not NaN (NaN where there are none)."""
        return self._middle("nanmedian", dim, keepdim, ignore_nan=True)

    def _middle(self, op, dim, keepdim, ignore_nan):
        keepdim = _args.check_bool(op, "keepdim", keepdim)
        every = dim is _ALL_DIMS    # (an explicit None is refused, as PyTorch's)
        if self.dtype is backend.bool_ and (not every or self.numel()):
            # (PyTorch's median() of an empty bool tensor never reaches its kernel)
            raise NotImplementedError(f'"{op}_cpu" not implemented for \'Bool\' (convert '
                                      "first, e.g. with .int())")
        if every:
            return ops.MedianAll.apply(self, ignore_nan)
        axis = _args.check_dim(op, dim, self.dim())
        data = self._data if self.dim() else self._data.reshape(1)
        n = data.shape[axis]
        if n == 0:
            raise IndexError(f"{op}(): Expected reduction dim {axis} to have non-zero size "
                             f"(shape {tuple(self.shape)})")
        order = np.argsort(data, axis=axis, kind="stable")      # NaN last
        nan_count = (np.count_nonzero(np.isnan(data), axis=axis, keepdims=True)
                     if self.dtype.is_floating_point else 0)
        if ignore_nan:
            # the middle of the numbers; all NaN: the first element (a NaN)
            count = n - nan_count
            rank = np.where(count > 0, (count - 1) // 2, 0)
        else:
            # a slice with a NaN: its first NaN (the first of the NaNs sorted last)
            rank = np.where(nan_count > 0, n - nan_count, (n - 1) // 2) + np.zeros(
                (1,) * data.ndim, dtype=np.int64, like=data)
        return self._selected(order, rank, axis, keepdim,
                              ops.NanmedianDim if ignore_nan else ops.MedianDim,
                              nanmedian_result if ignore_nan else median_result)

    def kthvalue(self, k, dim=-1, keepdim=False):
        """``(values, indices)``: the k-th smallest element along `dim` (k from 1; NaN counts
        as the largest), e.g. tensor([3, 1, 2]).kthvalue(2) is values 2, indices 2."""
        k = _args.check_int("kthvalue", "k", k, position=1)
        keepdim = _args.check_bool("kthvalue", "keepdim", keepdim)
        axis = _args.check_dim("kthvalue", dim, self.dim())
        if self.dtype is backend.bool_ and self.dim():     # (a 0-d one is its own value)
            raise NotImplementedError('"kthvalue_cpu" not implemented for \'Bool\' (convert '
                                      "first, e.g. with .int())")
        data = self._data if self.dim() else self._data.reshape(1)
        if not 1 <= k <= data.shape[axis]:
            raise IndexError(f"kthvalue(): selected number k out of range for dimension "
                             f"{axis} (k={k}, size {data.shape[axis]})")
        order = np.argsort(data, axis=axis, kind="stable")
        rank = np.full((1,) * data.ndim, k - 1, dtype=np.int64, like=data)
        return self._selected(order, rank, axis, keepdim, ops.Kthvalue, kthvalue_result)

    def _selected(self, order, rank, axis, keepdim, function, result):
        """The elements at position `rank` (broadcast against the slices) of the sorting
        `order` along `axis`, as ``result(values, indices)``."""
        rank = np.broadcast_to(rank, order.shape[:axis] + (1,) + order.shape[axis + 1:])
        indices = np.take_along_axis(order, rank.astype(np.intp), axis=axis).astype(np.int64)
        if not keepdim or self.dim() == 0:
            indices = indices.reshape(indices.shape[:axis] + indices.shape[axis + 1:]
                                      if self.dim() else ())
        values_index = indices if keepdim or self.dim() == 0 else np.expand_dims(indices, axis)
        if self.dim() == 0:
            values = ops.Clone.apply(self)
        else:
            values = function.apply(self, values_index, axis)
            if not keepdim:
                values = values.squeeze(axis)
        return result(values, _wrap(indices))

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct elements, in ascending order (each NaN counts as distinct), e.g.
        tensor([3, 1, 3]).unique() is [1, 3]; `return_inverse`: where each element of self
        is in them; `return_counts`: how often each occurs; with `dim`, the distinct slices
        along it. (Not differentiable, as PyTorch's.)"""
        for name, flag in (("sorted", sorted), ("return_inverse", return_inverse),
                           ("return_counts", return_counts)):
            _args.check_bool("unique", name, flag)
        data = self._data
        if dim is None:
            values, inverse, counts = np.unique(data.reshape(-1), return_inverse=True,
                                                return_counts=True, equal_nan=False)
            inverse = inverse.reshape(data.shape)
        else:
            axis = _args.check_dim("unique", dim, self.dim())
            if self.dim() == 0:
                raise IndexError("unique(): a 0-d tensor has no dimension to take slices along")
            _check_unique_slices("unique", data, axis)
            values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True,
                                                axis=axis, equal_nan=False)
            inverse = inverse.reshape(-1)
        return _unique_result(self, "_unique2", values, inverse, counts, return_inverse,
                              return_counts)

    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        """Each run of equal consecutive elements (or slices along `dim`) once, e.g.
        tensor([1, 1, 2, 1]).unique_consecutive() is [1, 2, 1]; `return_inverse`: each
        element's run; `return_counts`: each run's length."""
        for name, flag in (("return_inverse", return_inverse), ("return_counts", return_counts)):
            _args.check_bool("unique_consecutive", name, flag)
        data = self._data
        if dim is None:
            flat = data.reshape(-1)
            starts = np.ones(flat.shape, dtype=bool)
            starts[1:] = flat[1:] != flat[:-1]
            values, inverse_shape = flat[starts], data.shape
        else:
            axis = _args.check_dim("unique_consecutive", dim, self.dim())
            if self.dim() == 0:
                raise IndexError("unique_consecutive(): a 0-d tensor has no dimension to "
                                 "take slices along")
            _check_unique_slices("unique_consecutive", data, axis)
            slices = np.moveaxis(data, axis, 0).reshape(data.shape[axis], -1 if data.size else 0)
            starts = np.ones(slices.shape[0], dtype=bool)
            starts[1:] = np.any(slices[1:] != slices[:-1], axis=1)
            values = np.compress(starts, data, axis=axis)
            inverse_shape = (data.shape[axis],)
        run = np.cumsum(starts) - 1
        counts = np.diff(np.append(np.flatnonzero(starts), starts.size))
        return _unique_result(self, "unique_consecutive", values, run.reshape(inverse_shape),
                              counts, return_inverse, return_counts)

    def bincount(self, weights=None, minlength=0):
        """How often each value 0, 1, ... occurs in a 1-D tensor of non-negative ints (at
        least `minlength` counts), e.g. tensor([0, 2, 2]).bincount() is [1, 0, 2]; with
        `weights`, their sums instead (float32 weights sum in float32, others in float64,
        as PyTorch)."""
        minlength = _args.check_int("bincount", "minlength", minlength)
        if self.dim() != 1 or self.dtype.is_floating_point or self.dtype is backend.bool_:
            raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs "
                               f"(got {self.dtype} of shape {tuple(self.shape)})")
        if minlength < 0:
            raise RuntimeError(f"minlength should be >= 0 (got {minlength})")
        data = self._data
        if data.size and data.min() < 0:
            raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs "
                               f"(got {int(data.min())})")
        if weights is None or data.size == 0:   # (no input: int64 counts, as PyTorch)
            return _wrap(np.bincount(data, minlength=minlength).astype(np.int64))
        _check_tensor_argument("bincount", "weights", 2, weights)
        if tuple(weights.shape) != tuple(self.shape):
            raise RuntimeError(f"weights should be 1-d and have the same length as input "
                               f"(input {tuple(self.shape)}, weights {tuple(weights.shape)})")
        out_dtype = np.float32 if weights.dtype is backend.float32 else np.float64
        return _wrap(np.bincount(data, weights=weights._data.astype(np.float64),
                                 minlength=minlength).astype(out_dtype))

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along `dim`: out[i] = self[i + 1] - self[i] (bool:
        their xor), after `prepend` and `append` are joined on, e.g.
        tensor([1, 4, 9]).diff() is [3, 5]."""
        n = _args.check_int("diff", "n", n)
        if self.dim() == 0:
            raise RuntimeError("diff expects input to be at least one-dimensional")
        if n < 0:
            raise RuntimeError(f"order must be non-negative but got {n}")
        axis = self._axis(dim)
        parts = []
        for name, extra in (("prepend", prepend), ("append", append)):
            if extra is None:
                continue
            if not isinstance(extra, Tensor):
                raise TypeError(f"diff(): argument '{name}' must be Tensor, not "
                                f"{type(extra).__name__}")
            if extra.dim() != self.dim():
                raise RuntimeError(f"diff expects prepend or append to be the same dimension "
                                   f"as input ({name} of shape {tuple(extra.shape)}, input "
                                   f"{tuple(self.shape)})")
            if any(size != own for d, (size, own) in enumerate(
                    zip(extra.shape, self.shape, strict=True)) if d != axis):
                raise RuntimeError(f"diff expects the shape of tensor to prepend or append to "
                                   f"match that of input except along the differencing "
                                   f"dimension ({name} {tuple(extra.shape)}, input "
                                   f"{tuple(self.shape)}, dim {axis})")
            parts.append((name, extra))
        if n == 0:      # (prepend and append not joined on, as PyTorch)
            return self
        result = cat([t for name, t in parts if name == "prepend"] + [self]
                     + [t for name, t in parts if name == "append"], axis) if parts else self
        for _ in range(n):
            length = result.shape[axis]
            if length == 0:
                break
            later, earlier = result.narrow(axis, 1, length - 1), result.narrow(axis, 0,
                                                                              length - 1)
            result = (later.logical_xor(earlier) if result.dtype is backend.bool_
                      else later - earlier)
        return result

    def logcumsumexp(self, dim):
        """The running log(sum(exp(x))) along `dim`, computed stably (a floating tensor), e.g.
        tensor([0., 0.]).logcumsumexp(0) is [0., log 2]."""
        axis = _args.check_dim("logcumsumexp", dim, self.dim())
        if not self.dtype.is_floating_point:
            raise NotImplementedError(f'"logcumsumexp_out_cpu" not implemented for '
                                      f"'{_legacy_short(self.dtype)}' (a floating tensor)")
        if self.dim() == 0:
            return ops.Clone.apply(self)
        return ops.Logcumsumexp.apply(self, axis)

    def mode(self, dim=-1, keepdim=False):
        """``(values, indices)``: the most frequent value along `dim` (of equally frequent
        ones the smallest; each NaN counts once) and its last place, e.g.
        tensor([1, 2, 2, 3, 3]).mode() is values 2, indices 2."""
        keepdim = _args.check_bool("mode", "keepdim", keepdim)
        axis = _args.check_dim("mode", dim, self.dim())
        data = self._data if self.dim() else self._data.reshape(1)
        n = data.shape[axis]
        if n == 0:
            raise IndexError(f"mode(): Expected reduction dim {axis} to have non-zero size "
                             f"(shape {tuple(self.shape)})")
        # each slice as a row: sorted, cut into runs of equal values (NaN equals nothing)
        order = np.argsort(np.moveaxis(data, axis, -1).reshape(-1, n), axis=1, kind="stable")
        rows = np.moveaxis(data, axis, -1).reshape(-1, n)
        ordered = np.take_along_axis(rows, order, axis=1)
        starts = np.ones(ordered.shape, dtype=bool)
        starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        run = np.cumsum(starts, axis=1) - 1
        row_index = np.arange(rows.shape[0])[:, None]
        lengths = np.zeros(ordered.shape, dtype=np.int64)
        np.add.at(lengths, (np.broadcast_to(row_index, run.shape), run), 1)
        longest = lengths.argmax(axis=1)        # the first longest run: the smallest value
        in_longest = run == longest[:, None]
        last = n - 1 - np.argmax(in_longest[:, ::-1], axis=1)
        found = order[np.arange(rows.shape[0]), last]
        shape = list(data.shape)
        shape[axis] = 1
        indices = np.moveaxis(found.reshape(shape[:axis] + shape[axis + 1:] + [1]), -1, axis)
        rank = np.zeros(indices.shape, dtype=np.int64)
        return self._selected(indices.astype(np.int64), rank, axis, keepdim, ops.Mode,
                              mode_result)

    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """The q-th quantiles (q a number or a 1-D tensor in [0, 1]) of a floating tensor,
        over every element or along `dim`: the sorted values at position q * (n - 1),
        between two of them by `interpolation` ('linear', 'lower', 'higher', 'midpoint' or
        'nearest'); NaN where a NaN is among them. With a tensor q, its dimension comes
        first. E.g. tensor([1., 2., 3., 4.]).quantile(0.5) is 2.5."""
        return _quantile("quantile", self, q, dim, keepdim, interpolation, ignore_nan=False)

    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """`quantile` of the numbers that are not NaN (NaN where there are none)."""
        return _quantile("nanquantile", self, q, dim, keepdim, interpolation, ignore_nan=True)

    def histc(self, bins=100, min=0, max=0):
        """Counts of the elements in `bins` equal bins over [min, max] (elements outside are
        left out, max falls in the last bin; min == max: the data's own range), in self's
        floating dtype, e.g. tensor([1., 2., 1.]).histc(4, 0, 3) is [0., 2., 1., 0.]."""
        return histc(self, bins, min, max)

    def cov(self, *, correction=1, fweights=None, aweights=None):
        return cov(self, correction=correction, fweights=fweights, aweights=aweights)

    def corrcoef(self):
        return corrcoef(self)

    def addr(self, vec1, vec2, *, beta=1, alpha=1):
        return addr(self, vec1, vec2, beta=beta, alpha=alpha)

    # -- more of PyTorch's indexing and joining ------------------------------------------------

    def select(self, dim, index):
        """The slice at `index` along `dim`, that dimension removed (a negative index from
        the end), e.g. arange(6).reshape(2, 3).select(1, -1) is [2, 5]."""
        if self.dim() == 0:
            raise IndexError("select() cannot be applied to a 0-dim tensor.")
        axis = _args.check_dim("select", dim, self.dim())
        index = _args.check_int("select", "index", index)
        size = self.shape[axis]
        if not -size <= index < size:
            raise IndexError(f"select(): index {index} out of range for tensor of size "
                             f"{list(self.shape)} at dimension {axis}")
        return self.narrow(axis, index % size, 1).squeeze(axis)

    def take(self, index):
        """The elements at `index` (int64) of self read as 1-D (negative ones from the end),
        in index's shape, e.g. tensor([[1, 2], [3, 4]]).take(tensor([0, 3])) is [1, 4]."""
        return take(self, index)

    def take_along_dim(self, indices, dim=None):
        """`gather` along `dim` with `indices` broadcast against self (apart from `dim`);
        without `dim`, both read as 1-D."""
        return take_along_dim(self, indices, dim)

    def index_add(self, dim, index, source, *, alpha=1):
        """A copy of self with alpha * source's slices added at `index` (1-D, int64 or int32)
        along `dim`, repeated indices adding up, e.g. zeros(3).index_add(0, tensor([0, 0]),
        tensor([1., 2.])) is [3., 0., 0.]."""
        axis, expanded = self._index_positions("index_add", dim, index, source)
        if alpha != 1:
            source = source * alpha
        return self.scatter_add(axis, expanded, source)

    def index_copy(self, dim, index, source):
        """A copy of self with source's slices written at `index` along `dim` (the last of
        repeated indices is not specified by PyTorch)."""
        axis, expanded = self._index_positions("index_copy", dim, index, source)
        return self.scatter(axis, expanded, source)

    def index_fill(self, dim, index, value):
        """A copy of self with `value` (a number or a 0-d tensor) in the slices at `index`
        along `dim` (negative indices from the end)."""
        axis = _args.check_dim("index_fill", dim, self.dim())
        positions = self._index_argument("index_fill", index)
        if positions.ndim > 1:
            raise IndexError(f"index_fill(): Index is supposed to be a vector (got shape "
                             f"{tuple(positions.shape)})")
        size = self.shape[axis] if self.dim() else 1
        if positions.size and (positions.min() < -size or positions.max() >= size):
            raise IndexError(f"index_fill(): index out of range for dimension {axis} of size "
                             f"{size}")
        chosen = np.zeros(size, dtype=bool, like=self._data)
        chosen[positions.reshape(-1) % max(size, 1)] = True
        mask = chosen.reshape([size if d == axis else 1 for d in range(self.dim())])
        return self.masked_fill(_wrap(mask), value)

    def index_add_(self, dim, index, source, *, alpha=1):
        return self._inplace_op(lambda target, added: target.index_add(dim, index, added,
                                                                       alpha=alpha), source)

    def index_copy_(self, dim, index, source):
        return self._inplace_op(lambda target, copied: target.index_copy(dim, index, copied),
                                source)

    def index_fill_(self, dim, index, value):
        return self._inplace_op(lambda target: target.index_fill(dim, index, value))

    def _index_positions(self, op, dim, index, source):
        """index_add's and index_copy's checks; (axis, index expanded to source's shape)."""
        axis = _args.check_dim(op, dim, self.dim())
        positions = self._index_argument(op, index, (np.int64, np.int32))
        _check_tensor_argument(op, "source", 3, source)
        if positions.ndim > 1:
            raise IndexError(f"{op}(): Index is supposed to be a vector (got shape "
                             f"{tuple(positions.shape)})")
        positions = positions.reshape(-1).astype(np.int64)
        expected = list(self.shape) or [1]
        expected[axis] = positions.size
        same_rank = source.dim() == self.dim() or max(source.dim(), self.dim()) <= 1
        if not same_rank or list(source.shape or [1]) != expected:
            raise RuntimeError(f"{op}(): source of shape {tuple(source.shape)} does not fit: "
                               f"expected {tuple(expected)} (self {tuple(self.shape)}, "
                               f"{positions.size} indices along dim {axis})")
        if source.dtype != self.dtype:
            raise RuntimeError(f"{op}(): self ({self.dtype}) and source ({source.dtype}) must "
                               f"have the same scalar type")
        size = self.shape[axis] if self.dim() else 1
        if positions.size and (positions.min() < 0 or positions.max() >= size):
            raise IndexError(f"{op}(): index out of range in self (indices must be in [0, "
                             f"{size}) along dim {axis})")
        shape = [positions.size if d == axis else 1 for d in range(max(self.dim(), 1))]
        expanded = np.broadcast_to(positions.reshape(shape), tuple(expected))
        if self.dim() == 0:
            expanded = expanded.reshape(())
        return axis, _wrap(np.ascontiguousarray(expanded))

    def tensor_split(self, indices_or_sections, dim=0):
        """Pieces along `dim`: `sections` (an int) of sizes as equal as can be (the first
        ones one longer), or cut before each of the `indices`, e.g.
        arange(7).tensor_split(3) has sizes 3, 2, 2."""
        return tensor_split(self, indices_or_sections, dim)

    def hsplit(self, sections):
        """tensor_split along dim 1 (dim 0 for a 1-D tensor); an int must divide the size."""
        return _split_along("hsplit", self, sections, 0 if self.dim() == 1 else 1, 1)

    def vsplit(self, sections):
        """tensor_split along dim 0 of a tensor of at least 2 dims."""
        return _split_along("vsplit", self, sections, 0, 2)

    def dsplit(self, sections):
        """tensor_split along dim 2 of a tensor of at least 3 dims."""
        return _split_along("dsplit", self, sections, 2, 3)

    def ravel(self):
        """The elements as a 1-D tensor, in row-major order (`flatten`)."""
        return self.reshape(-1)

    def sinc(self):
        """sin(pi x) / (pi x), 1 at 0 (integers give the default float dtype)."""
        source = self if self.dtype.is_floating_point else self._cast(
            backend.get_default_dtype())
        at_zero = source == 0
        safe = source.masked_fill(at_zero, 1) * math.pi      # (no 0/0 in the gradient)
        return (safe.sin() / safe).masked_fill(at_zero, 1)

    def heaviside(self, values):
        """The step function: 1 where self > 0, `values` (broadcast) where self == 0, else 0
        (NaN too, as PyTorch); one dtype for both; not differentiable."""
        _check_tensor_argument("heaviside", "values", 1, values)
        if values.dtype != self.dtype:
            raise RuntimeError(f"heaviside is not yet implemented for tensors with different "
                               f"dtypes ({self.dtype} and {values.dtype})")
        if is_grad_enabled() and (self.requires_grad or values.requires_grad):
            raise NotImplementedError("the derivative for 'heaviside' is not implemented")
        _broadcast_check(self, values, "heaviside")
        data = self._data
        return _wrap(np.where(data == 0, values._data, data > 0).astype(data.dtype))

    def gcd(self, other):
        """The greatest common divisor of integers, elementwise (non-negative)."""
        return _integer_function("gcd", np.gcd, self, other)

    def lcm(self, other):
        """The least common multiple of integers, elementwise (non-negative)."""
        return _integer_function("lcm", np.lcm, self, other)

    def kron(self, other):
        """The Kronecker product: every element of self times the whole of other, blocks in
        self's layout, e.g. kron(tensor([1, 2]), tensor([1, 10])) is [1, 10, 2, 20]."""
        return kron(self, other)

    def cross(self, other, dim=None):
        """The cross product of 3-vectors along `dim` (without it, the first dim of size 3,
        as PyTorch's deprecated default)."""
        return cross(self, other, dim)

    def inner(self, other):
        """The sum of products over the last dims of both (a number scales the other)."""
        return inner(self, other)

    def dist(self, other, p=2):
        """The p-norm of self - other."""
        return dist(self, other, p)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def addmv(self, mat, vec, *, beta=1, alpha=1):
        return addmv(self, mat, vec, beta=beta, alpha=alpha)

    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return addbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        """A tensor of zeros of `size`, of this tensor's dtype unless `dtype` is given."""
        return zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=_new_requires_grad("new_zeros", requires_grad))

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=_new_requires_grad("new_ones", requires_grad))

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return empty(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=_new_requires_grad("new_empty", requires_grad))

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=_new_requires_grad("new_full", requires_grad))

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        """A new tensor holding a copy of `data`, of this tensor's dtype unless given."""
        if isinstance(data, Tensor):
            warnings.warn("To copy construct from a tensor, it is recommended to use "
                          "sourceTensor.detach().clone() or sourceTensor.detach().clone()"
                          ".requires_grad_(True), rather than tensor.new_tensor(sourceTensor).",
                          UserWarning, stacklevel=2)
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=_new_requires_grad("new_tensor", requires_grad))

    # -- misc ---------------------------------------------------------------------------------

    def __reduce__(self):
        raise TypeError(
            "corrnet tensors are not pickled (pickle can run arbitrary code on load); save "
            "them with corrnet.save (an .npz archive) and read them with corrnet.load"
        )

    def __deepcopy__(self, memo):
        """``copy.deepcopy``: a leaf tensor (or Parameter) with its own copy of the data, the
        same requires_grad and a copy of its .grad; as in PyTorch, not for non-leaf tensors."""
        if self.grad_fn is not None:
            raise RuntimeError("Only tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol; use .detach().clone() for "
                               f"this one ({self.grad_fn.name()})")
        if id(self) in memo:
            return memo[id(self)]
        copy = object.__new__(type(self))
        copy.__dict__.update(_wrap(self._data.copy()).__dict__)
        memo[id(self)] = copy
        if self.requires_grad:
            copy.requires_grad_(True)
        if self.grad is not None:
            copy.grad = _wrap(self.grad._data.copy())
        return copy


_LEGACY_NAMES = {
    "bool": "BoolTensor", "uint8": "ByteTensor", "uint16": "UInt16Tensor", "int8": "CharTensor",
    "int16": "ShortTensor",
    "int32": "IntTensor", "int64": "LongTensor", "float16": "HalfTensor",
    "float32": "FloatTensor", "float64": "DoubleTensor",
}
_LEGACY_DTYPES = {legacy: name for name, legacy in _LEGACY_NAMES.items()}


# ---------------------------------------------------------------------------------------------
# helpers for operands, indices and shapes
# ---------------------------------------------------------------------------------------------


def _is_uint64_int(value) -> bool:
    """Whether `value` is a Python int between 2**63 and 2**64, which PyTorch reads as a
    uint64 (beyond int64: a floating result takes its value)."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and _args.INT64_MAX < value < 2**64)


def _uint64_scalar(tensor, value, floating_result: bool, refuse_bool: bool = True):
    """A Python int between 2**63 and 2**64 as PyTorch reads it, a uint64: a floating result
    takes its value (a float), an integer one its low bits (wrapping into int64), a bool
    tensor refuses it (but as the divisor of ``v / a``); any other value unchanged. E.g.
    ``ones(2) / 2**63`` is 1.0842e-19 and ``ones(2, dtype=int64) + 2**63`` is
    -9223372036854775807."""
    if not _is_uint64_int(value):
        return value
    if tensor.dtype is backend.bool_ and refuse_bool:
        raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, "
                           f"attempted to promote Bool and UInt64 (the Python int {value} does "
                           "not fit in int64)")
    return float(value) if floating_result else value - 2**64


def _as_operand(value, name):
    """A Tensor or a Python/NumPy scalar; anything else is refused clearly."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, numbers.Number, np.generic)):
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, int) and not _args.INT64_MIN <= value <= _args.INT64_MAX:
            raise RuntimeError(f"Overflow: the Python int {value} given for '{name}' does not "
                               "fit in int64 (int too big to convert)")
        return value
    if isinstance(value, np.ndarray):
        return _wrap(value)
    raise TypeError(
        f"unsupported operand: expected a Tensor or a number for '{name}', "
        f"got {type(value).__name__}"
    )


def _fill_array(value, dtype: backend.dtype, op: str) -> np.ndarray:
    """A Python number for fill_ / masked_fill / full as a 0-d array of `dtype`, refused as
    PyTorch refuses it: not a number, out of an integer dtype's range, NaN into an integer
    dtype, a finite number beyond a floating dtype's range, an int beyond int64 and uint64
    (one within uint64's range: its value in a floating tensor, true in a bool one)."""
    if isinstance(value, np.generic):
        value = value.item()
    if dtype.is_floating_point and isinstance(value, numbers.Real) and not isinstance(
            value, bool):
        if isinstance(value, numbers.Integral) and not (_args.INT64_MIN <= value < 2**64):
            raise ValueError(f"{op}(): {value} does not fit in int64 (nor uint64): Overflow "
                             "when unpacking long long")
        number = float(value)
        if math.isfinite(number) and abs(number) > float(np.finfo(dtype.numpy).max):
            raise RuntimeError(f"{op}(): value cannot be converted to type "
                               f"{_c_type_name(dtype)} without overflow (got {value})")
        return np.asarray(number, dtype=dtype.numpy)
    if (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and _args.INT64_MAX < value < 2**64):
        # (PyTorch reads it as a uint64: true in a bool tensor, too large for an integer one)
        if dtype is backend.bool_:
            return np.asarray(True)
        raise RuntimeError(f"{op}(): value cannot be converted to type {_c_type_name(dtype)} "
                           f"without overflow (got {value})")
    return _scalar_array(value, dtype, op)


def _copy_source(value, dest: Tensor) -> np.ndarray:
    """A Python number for ``dest.copy_`` as PyTorch wraps it: a 0-d array of float64 (a
    float), int64 (an int; one between 2**63 and 2**64 is PyTorch's uint64, `_uint64_scalar`)
    or bool, which copy_ then casts like any source tensor. Not a number, or an int beyond
    that: refused (`_scalar_array`)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return np.asarray(value)
    value = _uint64_scalar(dest, value, dest.dtype.is_floating_point, refuse_bool=False)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return np.asarray(float(value), dtype=np.float64)
    return _scalar_array(value, backend.int64, "copy_")


def _check_int_range(array: np.ndarray, dtype: backend.dtype, op: str) -> None:
    """Python numbers bound for an integer dtype: refused as PyTorch refuses them when NaN,
    infinite or out of range (unsigned types take negatives down to -max, which wrap)."""
    info = np.iinfo(dtype.numpy)
    low = -info.max if info.min == 0 else info.min
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = array[~np.isfinite(array)].flat[0]
    elif array.dtype.kind in "iuf" and (array.min() < low or array.max() > info.max):
        bad = array.min() if array.min() < low else array.max()
    else:
        return
    raise RuntimeError(f"{op}(): value cannot be converted to type {dtype.name} without "
                       f"overflow (got {bad})")


def _wrap_negative_ints(data, array: np.ndarray, dtype: backend.dtype) -> np.ndarray:
    """`array` (floats, from the Python numbers `data`) bound for the unsigned `dtype`, as
    PyTorch converts it: a negative int wraps (-1 is 255 in uint8) but a negative float is
    refused, though the list ``[-1, 2.5]`` made both floats in `array`."""
    negative_float = next((v for v in _flat_numbers(data) if isinstance(v, float) and v < 0),
                          None)
    if negative_float is not None:
        raise RuntimeError(f"tensor(): value cannot be converted to type {dtype.name} without "
                           f"overflow (got {negative_float})")
    modulus = np.iinfo(dtype.numpy).max + 1
    return np.where(array < 0, array + modulus, array)  # (only ints are negative here)


def _flat_numbers(data):
    if isinstance(data, (list, tuple)):
        for item in data:
            yield from _flat_numbers(item)
    else:
        yield data


def _legacy_short(dtype: backend.dtype) -> str:
    """PyTorch's short type name in messages: Float, Long, Half, Byte..."""
    return _LEGACY_NAMES[dtype.name].removesuffix("Tensor")


def _c_type_name(dtype: backend.dtype) -> str:
    """The C++ type name PyTorch's overflow messages use ('int', 'uint8_t', 'c10::Half')."""
    return {"int32": "int", "int64": "long", "int16": "short", "int8": "int8_t",
            "uint8": "uint8_t", "uint16": "uint16_t", "float16": "c10::Half", "float32": "float",
            "float64": "double", "bool": "bool"}[dtype.name]


def _scalar_array(value, dtype: backend.dtype, op: str) -> np.ndarray:
    """A Python number as a 0-d array of `dtype`, refused as PyTorch refuses it: a value
    that is not a number (TypeError), an int beyond int64 (ValueError), a value out of an
    integer dtype's range, NaN or inf into an integer dtype (RuntimeError). Negative ints
    down to -max wrap into uint8, as in PyTorch."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, numbers.Number)) or isinstance(value, complex):
        raise TypeError(f"{op}: can't assign a {_args.type_name(value)} to a "
                        f"torch.{_LEGACY_NAMES[dtype.name]}")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and not (
            _args.INT64_MIN <= value <= _args.INT64_MAX):
        raise ValueError(f"{op}: {value} does not fit in int64: Overflow when unpacking long "
                         "long")
    if dtype.category == backend.INT and not isinstance(value, bool):
        info = np.iinfo(dtype.numpy)
        # an unsigned type takes negative ints down to -max (they wrap), but no negative float
        low = -info.max if info.min == 0 and isinstance(value, numbers.Integral) else info.min
        if not (math.isfinite(value) and low <= value <= info.max):
            raise RuntimeError(f"{op}: value cannot be converted to type {_c_type_name(dtype)} "
                               f"without overflow (got {value})")
        if info.min == 0 and value < 0:  # two's complement wrap, as PyTorch
            value = int(value) % (info.max + 1)
        return np.asarray(int(value), dtype=dtype.numpy)
    with np.errstate(over="ignore"):
        return np.asarray(value).astype(dtype.numpy)


def _operand_array(value, dtype=None):
    if isinstance(value, Tensor):
        return value._data if dtype is None else value._data.astype(dtype.numpy, copy=False)
    return np.asarray(value) if dtype is None else _scalar_as(value, dtype)


def _cast_operand(value, dtype):
    if isinstance(value, Tensor):
        return value._cast(dtype)
    return _scalar_as(value, dtype)


def _is_nan(value):
    """Where `value` (a Tensor or a number) is NaN: a bool Tensor, or a bool."""
    if isinstance(value, Tensor):
        return value.isnan()
    return isinstance(value, float) and math.isnan(value)


def _scalar_as(value, dtype: backend.dtype) -> np.ndarray:
    """A Python scalar operand converted to the op's dtype as PyTorch converts it: an int
    wraps around (``uint8 > -1`` compares with 255, ``-2 | uint8`` is 254), a float beyond
    float16's range becomes inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(value).astype(dtype.numpy)


def _refuse_bool_subtraction(a, b):
    for operand in (a, b):
        if isinstance(operand, (bool, np.bool_)) or (
            isinstance(operand, Tensor) and operand.dtype is backend.bool_
        ):
            raise RuntimeError(
                "Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
                "trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )


def _check_pow(base, exponent) -> None:
    """Refuse what PyTorch's pow refuses: an integer tensor to a negative Python int (a
    tensor of negative exponents is computed), bool ** bool. (A bool exponent tensor is
    refused in the backward, see ops.Pow.)"""
    dtype = result_type(_as_operand(base, "input"), _as_operand(exponent, "exponent"))
    if (dtype.category == backend.INT and isinstance(exponent, numbers.Integral)
            and not isinstance(exponent, (bool, Tensor)) and exponent < 0):
        raise RuntimeError(f"Integers to negative integer powers are not allowed (exponent "
                           f"{exponent} for a {dtype} tensor)")
    if dtype is backend.bool_ and isinstance(exponent, Tensor):  # (bool_tensor ** True works)
        raise NotImplementedError("\"pow\" not implemented for 'Bool'")
    if (isinstance(base, Tensor) and base.dtype is backend.float16
            and isinstance(exponent, numbers.Real) and not isinstance(exponent, bool)
            and math.isfinite(exponent) and abs(exponent) > float(np.finfo(np.float16).max)):
        # (PyTorch converts a scalar exponent to the half-precision base's dtype)
        raise RuntimeError(f"pow(): value cannot be converted to type c10::Half without "
                           f"overflow (exponent {exponent} for a float16 tensor)")


def _true_div_dtype(a, b):
    dtype = result_type(a, _as_operand(b, "other"))
    return dtype if dtype.is_floating_point else backend.get_default_dtype()


def _division_operands(a, b, name, symbol, kernel):
    """`a` and `b` of ``a // b`` or ``a % b`` promoted to their common dtype; integer division
    by zero is refused as PyTorch refuses it (a Python int in [2**63, 2**64): `_uint64_scalar`,
    by the tensor's dtype)."""
    tensor = a if isinstance(a, Tensor) else b
    if isinstance(tensor, Tensor):
        floating = tensor.dtype.is_floating_point
        a, b = (_uint64_scalar(tensor, v, floating) for v in (a, b))
    a, b = _as_operand(a, "input"), _as_operand(b, "other")
    _broadcast_check(a, b, name)
    dtype = result_type(a, b)
    if dtype.category == backend.BOOL:
        raise NotImplementedError(f"{name}: \"{kernel}_cpu\" not implemented for 'Bool'; "
                                  "convert the operands with .int() or .float() first")
    a, b = _cast_operand(a, dtype), _cast_operand(b, dtype)
    divisor = _operand_array(b)
    # (an empty result divides nothing: PyTorch refuses a zero divisor only where it is used)
    if (dtype.category == backend.INT and np.any(divisor == 0)
            and math.prod(np.broadcast_shapes(np.shape(_operand_array(a)), divisor.shape))):
        raise RuntimeError(f"ZeroDivisionError: integer division by zero in `{symbol}` (the "
                           f"divisor, converted to {dtype}, holds a zero)")
    return a, b


def _floor_divide(a, b):
    """``a // b``: recorded, but (as in PyTorch) not differentiable; see ops.FloorDivide."""
    return ops.FloorDivide.apply(*_division_operands(a, b, "floor_divide", "//", "div_floor"))


def _remainder(a, b):
    """``a % b`` with the sign of `b`; differentiable in both operands (ops.Remainder), except
    that a Python number divided by a tensor has no derivative, as in PyTorch."""
    scalar_dividend = not isinstance(a, (Tensor, np.ndarray))
    operands = _division_operands(a, b, "remainder", "%", "remainder")
    return ops.Remainder.apply(*operands, scalar_dividend)


def _bitwise(ufunc, name, a, b):
    """``a & b`` / ``|`` / ``^`` on bool and integer tensors (no gradient), after PyTorch's
    type promotion; floating operands are refused as PyTorch refuses them (a Python int in
    [2**63, 2**64): its low bits, `_uint64_scalar`)."""
    tensor = a if isinstance(a, Tensor) else b
    if isinstance(tensor, Tensor):   # (a float tensor: then refused below, as PyTorch)
        a, b = (_uint64_scalar(tensor, v, tensor.dtype.is_floating_point) for v in (a, b))
    a, b = _as_operand(a, "input"), _as_operand(b, "other")
    _broadcast_check(a, b, name)
    dtype = result_type(a, b)
    if dtype.is_floating_point:
        raise NotImplementedError(f"\"{name}_cpu\" not implemented for 'Float': {name} takes "
                                  "bool or integer tensors")
    return _wrap(devices.as_array(ufunc(_operand_array(a, dtype), _operand_array(b, dtype))))


def _arg_extreme(array, axis, use_min):
    """argmax/argmin that, like PyTorch, treats NaN as the extreme value."""
    found = np.argmin(array, axis=axis) if use_min else np.argmax(array, axis=axis)
    if np.issubdtype(array.dtype, np.floating):
        nan = np.isnan(array)
        if nan.any():  # (a one-value read-back on a device) the lines with a NaN pick the first
            found = np.where(nan.any(axis=axis), np.argmax(nan, axis=axis), found)
    return found


_SEQUENCE_INDEX_WARNING = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated and will be changed "
    "in pytorch 2.9; use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will be "
    "interpreted as tensor index, x[torch.tensor(seq)], which will result either in an error "
    "or a different result"
)
_INDEX_TYPES = "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables"


def _sequence_as_tuple(index: list) -> bool:
    """PyTorch 2.13's rule (treatSequenceAsTuple): a list of fewer than 32 items that holds a
    tensor, a sequence, a slice, None or Ellipsis indexes as the tuple of its items (with a
    deprecation warning): ``x[[[0, 1], [1, 0]]]`` is ``x[[0, 1], [1, 0]]``."""
    return len(index) < 32 and any(
        isinstance(item, (Tensor, np.ndarray, list, tuple, slice)) or item is None
        or item is Ellipsis for item in index
    )


def _array_index(array: np.ndarray, what: str) -> np.ndarray:
    """A tensor or array used as an index: int64/int32 positions, or a bool (or, deprecated,
    uint8) mask; other dtypes are refused as PyTorch refuses them."""
    if array.dtype == np.bool_ or array.dtype == np.int64:
        return array
    if array.dtype == np.uint8:
        return array.astype(bool)
    if array.dtype == np.int32:
        return array.astype(np.int64)
    raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors, got "
                     f"{what} of dtype {array.dtype}")


def _list_index(item) -> np.ndarray:
    """A list inside an index becomes an int64 tensor index (floats truncated, as PyTorch),
    or a mask if it holds only bools."""
    try:
        array = np.asarray(_plain(item))
    except ValueError:
        raise IndexError(f"an index list must be rectangular, got {item!r}") from None
    if array.dtype == np.bool_:
        return array
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind not in "iuf":
        raise IndexError(f"{_INDEX_TYPES} are valid indices; a list in an index must hold "
                         f"numbers, got {item!r}")
    return array.astype(np.int64)


def _expand_ellipses(items: list, ndim: int) -> list:
    """PyTorch accepts several ``...``: each stands for as many full slices as the index
    leaves dimensions unnamed (``x[..., ...]`` is ``x``)."""
    named = 0
    for item in items:
        if isinstance(item, devices.ARRAY_TYPES):
            named += item.ndim if item.dtype == np.bool_ and item.ndim else 1
        elif not (item is None or item is Ellipsis or isinstance(item, bool)):
            named += 1
    expanded = []
    for item in items:
        expanded.extend([slice(None)] * max(ndim - named, 0) if item is Ellipsis else [item])
    # full slices past the last dimension are no-ops there (PyTorch only moves its counter)
    excess = named + (sum(item is Ellipsis for item in items)) * max(ndim - named, 0) - ndim
    while excess > 0 and expanded and isinstance(expanded[-1], slice) and (
        expanded[-1].start in (None, 0) and expanded[-1].stop is None
        and expanded[-1].step in (None, 1)
    ):
        expanded.pop()
        excess -= 1
    return expanded


def _convert_index(index, shape=None, like=None):
    """Turn a Tensor-bearing index into a NumPy index; say whether it is advanced (a copy).
    Its index arrays are put on the device of `like` (the indexed tensor's array), where
    PyTorch, too, moves CPU index tensors to index a CUDA tensor.

    Follows PyTorch 2.13: nested lists (see `_sequence_as_tuple`), lists and int/bool tensors
    as tensor indices, negative slice steps refused (ValueError), floats refused
    (IndexError); with the indexed tensor's `shape`, out-of-range positions, masks of the
    wrong shape and too many indices are refused with PyTorch's IndexError (see
    `_check_index`)."""
    ndim = None if shape is None else len(shape)
    if isinstance(index, list) and _sequence_as_tuple(index):
        warnings.warn(_SEQUENCE_INDEX_WARNING, UserWarning, stacklevel=3)
        index = tuple(index)
    items = index if isinstance(index, tuple) else (index,)
    converted, advanced = [], False
    for item in items:
        if isinstance(item, Tensor):
            if item.dim() == 0 and item.dtype.category == backend.INT and (
                item.dtype is not backend.uint8
            ):
                item = int(item._data)  # any integer dtype, as PyTorch
            else:
                item = _array_index(item._data, "a tensor")
                advanced = True
        elif isinstance(item, np.ndarray):
            item = _array_index(item, "an array")
            advanced = True
        elif isinstance(item, (list, tuple)):
            item = _list_index(item)
            advanced = True
        elif isinstance(item, slice):
            if item.step is not None:
                step = operator.index(item.step)
                if step == 0:
                    raise ValueError("slice step cannot be zero")
                if step < 0:
                    raise ValueError(f"step must be greater than zero, got a slice with step "
                                     f"{step}")
        elif isinstance(item, bool):
            advanced = True
        elif isinstance(item, str):
            raise TypeError(f"a string cannot index a tensor: {item!r}")
        elif item is None or item is Ellipsis:
            pass
        elif isinstance(item, numbers.Integral) and not isinstance(item, np.bool_):
            item = operator.index(item)
        else:
            raise IndexError(f"{_INDEX_TYPES} are valid indices (got {type(item).__name__})")
        converted.append(item)
    if ndim is not None and sum(item is Ellipsis for item in converted) > 1:
        converted = _expand_ellipses(converted, ndim)
    if shape is not None:
        _check_index(converted, tuple(shape))  # (may replace positions that gather nothing)
    if not advanced:
        return tuple(converted), False
    return _torch_index(converted, like), True


def _masks_only(index) -> bool:
    """Whether an index's advanced parts are all masks (bool tensors, arrays, lists or
    Python bools): PyTorch fills through them with a one-element value of another dtype
    (masked_fill), where a put through positions (index_put) needs the same dtype."""
    if isinstance(index, list) and _sequence_as_tuple(index):
        index = tuple(index)
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if isinstance(item, Tensor) and item.dim() > 0:
            item = item._data
        if isinstance(item, np.ndarray) and item.dtype not in (np.bool_, np.uint8):
            return False
        if isinstance(item, (list, tuple)):
            try:
                if np.asarray(_plain(item)).dtype != np.bool_:
                    return False
            except ValueError:  # ragged: refused later, by _list_index
                return False
    return True


def _dims_named(item) -> int:
    """How many dimensions of the indexed tensor an index item consumes."""
    if item is None or item is Ellipsis or isinstance(item, bool):
        return 0
    if isinstance(item, devices.ARRAY_TYPES) and item.dtype == np.bool_:
        return item.ndim  # a mask spans as many dimensions as it has (a 0-d one: none)
    return 1  # an integer, a slice, an array of positions


def _new_requires_grad(op: str, value) -> bool:
    """The new_* constructors' requires_grad: a bool, or None for the default (False), as
    PyTorch parses it (1 or 'yes' are TypeErrors)."""
    return False if value is None else _args.check_bool(op, "requires_grad", value)


def _check_index(items, shape: tuple) -> None:
    """Refuse an index as PyTorch refuses it, before NumPy sees it: more indices than
    dimensions, a position out of range (``index 5 is out of bounds for dimension 0 with
    size 2``), a mask whose shape differs from the dimensions it covers."""
    ndim = len(shape)
    named = sum(_dims_named(item) for item in items)
    if named > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim} (shape "
                         f"{list(shape)}, {named} indexed)")
    dim = 0
    for position, item in enumerate(items):
        if item is Ellipsis:
            dim += ndim - named
            continue
        count = _dims_named(item)
        if isinstance(item, devices.ARRAY_TYPES) and item.dtype == np.bool_:
            covered = shape[dim:dim + count]
            for k, (m, n) in enumerate(zip(item.shape, covered, strict=True)):
                if m != n:
                    raise IndexError(f"The shape of the mask {list(item.shape)} at index {k} "
                                     f"does not match the shape of the indexed tensor "
                                     f"{list(shape)} at index {dim + k}")
        elif isinstance(item, devices.ARRAY_TYPES) and item.size and not (
                math.prod(shape) or not shape[dim]):
            # PyTorch checks positions only against the elements it gathers: none when the
            # tensor is empty in another dimension; any valid position gives that result
            items[position] = np.zeros_like(item)
        elif isinstance(item, devices.ARRAY_TYPES) and item.size:
            low, high = int(item.min()), int(item.max())
            if high >= shape[dim] or low < -shape[dim]:
                bad = high if high >= shape[dim] else low
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size "
                                 f"{shape[dim]}")
        elif count and not isinstance(item, (slice, *devices.ARRAY_TYPES)):  # an integer
            if not -shape[dim] <= item < shape[dim]:
                raise IndexError(f"index {item} is out of bounds for dimension {dim} with "
                                 f"size {shape[dim]}")
        dim += count
    # the index tensors (a mask: its positions; a bool: a size-1 or size-0 dimension) must
    # broadcast together
    shapes = [(int(np.count_nonzero(item)),) if item.dtype == np.bool_ else item.shape
              for item in (i if isinstance(i, devices.ARRAY_TYPES) else np.asarray(i)
                           for i in items if isinstance(i, (bool, *devices.ARRAY_TYPES)))]
    if len(shapes) > 1:
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise IndexError("shape mismatch: indexing tensors could not be broadcast together "
                             f"with shapes {', '.join(str(list(s)) for s in shapes)}") from None


def _torch_index(items, like=None) -> ops.TorchIndex:
    """Split an advanced index into PyTorch's two steps (see ops.TorchIndex): the basic part
    keeps a slice where an array will index, drops nothing; the advanced part has an entry
    for every dimension the basic part leaves (none for an integer, which selects). Host
    index arrays go to the device of `like` (the indexed array), so that the gather and its
    backward's scatter-add see one device."""
    basic, advanced = [], []
    for item in items:
        if isinstance(item, devices.ARRAY_TYPES) and item.ndim == 0 and item.dtype == np.bool_:
            item = bool(item)  # (a 0-d mask on a device: a one-value read-back)
        if isinstance(item, devices.ARRAY_TYPES):  # a mask indexes as many dims as it has
            basic.extend([slice(None)] * (item.ndim if item.dtype == np.bool_ else 1))
            advanced.append(item)
        elif isinstance(item, bool):  # a new dimension of size 1, indexed by [0] or []
            basic.append(None)
            advanced.append(np.zeros(1 if item else 0, dtype=np.int64))
        elif item is Ellipsis:
            basic.append(Ellipsis)
            advanced.append(Ellipsis)
        elif item is None or isinstance(item, slice):
            basic.append(item)
            advanced.append(slice(None))
        else:  # an integer selects in the basic step
            basic.append(item)
    if like is not None:
        advanced = [devices.table_like(item, like) if isinstance(item, np.ndarray) else item
                    for item in advanced]
    return ops.TorchIndex(tuple(basic), tuple(advanced))


def _plain(data):
    """Replace Tensors inside nested lists by their arrays (for np.array)."""
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)):
        return [_plain(item) for item in data]
    return data


def _refuse_numpy_non_integers(data) -> None:
    """PyTorch reads a NumPy scalar into an integer or bool tensor only if it is an integer
    (np.float64 counts as a Python float): np.float32(2.5) is a TypeError."""
    if isinstance(data, (list, tuple)):
        for item in data:
            _refuse_numpy_non_integers(item)
    elif isinstance(data, (np.floating, np.bool_)) and not isinstance(data, float):
        raise TypeError(f"tensor(): '{type(data).__module__}.{type(data).__name__}' object "
                        "cannot be interpreted as an integer (the NumPy scalar is not an "
                        "integer; convert it with int() or pass a floating dtype)")


def _holds_big_int(data) -> bool:
    """Whether nested data holds a Python int outside int64."""
    if isinstance(data, (list, tuple)):
        return any(_holds_big_int(item) for item in data)
    return isinstance(data, int) and not _args.INT64_MIN <= data <= _args.INT64_MAX


def _contains_arrays(data) -> bool:
    if isinstance(data, (Tensor, np.ndarray, np.generic)):
        return True
    if isinstance(data, (list, tuple)):
        return any(_contains_arrays(item) for item in data)
    return False


def _shape_arg(args, op: str | None = None) -> tuple:
    """Shapes given as varargs ``(2, 3)``, a tuple/list/Size ``((2, 3),)`` or a 1-D tensor."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    elif len(args) == 1 and isinstance(args[0], Tensor):
        args = tuple(args[0].tolist())
    if all(type(n) is int for n in args):  # the common case, checked fast
        return tuple(args)
    shape = []
    for n in args:
        if isinstance(n, Tensor):
            n = n.item()
        if not isinstance(n, numbers.Integral) or isinstance(n, bool):
            argument = {"permute": "dims", "repeat": "repeats"}.get(op, "size")
            prefix = f"{op}(): argument '{argument}' must be tuple of ints: " if op else ""
            raise TypeError(f"{prefix}a shape must be a sequence of ints, got {args!r}")
        shape.append(int(n))
    return tuple(shape)


def _infer_shape(shape, numel, what, itemsize: int = 1):
    """`shape` for a reshape of `numel` elements, its -1 inferred; refused where it does not
    fit, and where NumPy cannot hold it (the product of its nonzero sizes times `itemsize`
    beyond 2**63 - 1: an empty tensor of shape (0, 2**62) of float32, which PyTorch makes)."""
    if any(abs(n) > _args.INT64_MAX for n in shape):
        raise TypeError(f"{what}(): argument 'shape' holds a size beyond int64: Overflow when "
                        f"unpacking long long (shape {list(shape)})")
    if shape.count(-1) > 1:
        raise RuntimeError(f"{what}: only one dimension can be inferred, got shape {list(shape)}")
    if any(n < -1 for n in shape):
        raise RuntimeError(f"{what}: invalid shape dimension in {list(shape)}")
    known = math.prod(n for n in shape if n != -1)
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(
                f"shape '{list(shape)}' is invalid for input of size {numel}"
            )
        shape = tuple(numel // known if n == -1 else n for n in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    if math.prod(n for n in shape if n) * itemsize > _args.INT64_MAX:
        raise RuntimeError(f"{what}: shape {list(shape)} is beyond what a NumPy array can "
                           f"hold (its nonzero sizes times the {itemsize}-byte items exceed "
                           "2**63 - 1), though it has no element")
    return shape


# ---------------------------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------------------------

class Generator:
    """A random number generator with ``torch.Generator``'s interface, over a NumPy
    ``Generator`` (so the values differ from PyTorch's for the same seed).
    ``Generator(device='cuda')`` is accepted where CUDA is available: its numbers are drawn on
    the host and copied to the device, so a seed gives the same values on every device.

    Pass it as ``generator=`` to the random functions, to ``Tensor.uniform_`` / ``normal_``,
    the ``nn.init`` functions and ``DataLoader``; ``corrnet.manual_seed`` seeds the default one.

    >>> g = corrnet.Generator().manual_seed(42)
    >>> a = corrnet.rand(3, generator=g)
    >>> bool((a == corrnet.rand(3, generator=corrnet.Generator().manual_seed(42))).all())
    True
    """

    DEFAULT_SEED = 67280421310721  # PyTorch's default initial seed

    def __init__(self, device="cpu"):
        self.device = devices.as_device(device, "Generator(device=...)")
        if self.device.type == "cuda" and self.device.index is None:
            self.device = devices.device("cuda", devices.current_device())
        self.manual_seed(self.DEFAULT_SEED)

    def manual_seed(self, seed) -> Generator:
        seed = int(seed)
        self._seed = seed
        self.numpy = np.random.default_rng(seed & (2**128 - 1))
        return self

    def seed(self) -> int:
        """Seed with a fresh non-deterministic number and return it."""
        seed = int(np.random.SeedSequence().entropy) % 2**63
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        """The generator's state as a uint8 tensor, for `set_state`."""
        encoded = json.dumps(self.numpy.bit_generator.state).encode()
        return _wrap(np.frombuffer(encoded, dtype=np.uint8).copy())

    def set_state(self, state: Tensor) -> Generator:
        if not isinstance(state, Tensor) or state.dtype is not backend.uint8:
            raise TypeError("Generator.set_state: state must be a uint8 tensor from get_state()")
        self.numpy.bit_generator.state = json.loads(state.numpy().tobytes().decode())
        return self

    def __repr__(self) -> str:
        return "<corrnet.Generator object>"


default_generator = Generator()


def _rng(generator=None) -> np.random.Generator:
    """The NumPy generator to draw from: `generator`'s, or the default generator's."""
    if generator is None:
        return default_generator.numpy
    if isinstance(generator, Generator):
        return generator.numpy
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator must be a corrnet.Generator (or a numpy.random.Generator), got "
                    f"{type(generator).__name__}")


def manual_seed(seed: int) -> Generator:
    """Seed corrnet's default random number generator; returns it, as PyTorch does (the values
    differ from PyTorch's for the same seed)."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def seed() -> int:
    """Seed the default generator non-deterministically; return the seed."""
    return default_generator.seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(new_state: Tensor) -> None:
    default_generator.set_state(new_state)



def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists of numbers/bools, arrays, tensors).

    Python floats become the default float dtype (float32), ints int64, bools bool:

    >>> corrnet.tensor([[0., 1.], [2., 3.]])
    tensor([[0., 1.],
            [2., 3.]])
    """
    device = _check_device(device)
    if isinstance(data, Tensor):
        array = data._data.copy()
    else:
        try:
            array = np.array(_plain(data))
        except ValueError as err:  # NumPy: "inhomogeneous shape"
            raise ValueError(
                "tensor(): data must be a rectangular nested sequence, but its rows have "
                f"different lengths ({err})"
            ) from None
        if (dtype is None or as_dtype(dtype).category == backend.INT) and (
                array.dtype == np.uint64 or (array.dtype == object and _holds_big_int(data))):
            raise ValueError("tensor(): a Python int in data does not fit in int64 (Overflow "
                             "when unpacking long long)")
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"tensor(): data must hold numbers or bools, got {type(data).__name__} of "
                f"{array.dtype.name if array.dtype.kind != 'U' else 'strings'}"
            )
        if dtype is None and not _contains_arrays(data):
            if array.dtype.kind == "f" or (array.size == 0 and array.dtype == np.float64):
                with np.errstate(over="ignore"):   # beyond float32's range: inf, as PyTorch
                    array = array.astype(backend.get_default_dtype().numpy)
            elif array.dtype.kind in "iu":
                array = array.astype(np.int64)
    if dtype is not None:
        target = as_dtype(_args.check_dtype("tensor", dtype))
        if target.category != backend.FLOAT:
            _refuse_numpy_non_integers(data)
        if target.category == backend.INT and not isinstance(data, Tensor) and not (
                _contains_arrays(data)) and array.size:
            _check_int_range(array, target, "tensor")
            if not target.is_signed and array.dtype.kind == "f" and array.min() < 0:
                array = _wrap_negative_ints(data, array, target)
        with np.errstate(over="ignore"):   # beyond a float dtype's range: inf, as PyTorch
            array = array.astype(target.numpy)
    from_numpy_dtype(array.dtype)  # refuse unsupported dtypes (strings, complex...)
    t = _place(_wrap(array), device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None:
        return data
    if isinstance(data, np.ndarray) and dtype is None:
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy(): expected np.ndarray, got {type(array).__name__}")
    from_numpy_dtype(array.dtype)
    return _wrap(array)


def _make(shape_args, size, dtype, default, fill, requires_grad=False, device=None,
          op="tensor", kinds=None):
    """A new tensor of a shape given as varargs or `size`, filled by ``fill(shape, np_dtype)``.

    `kinds` (a string of categories, 'b' bool, 'i' integer, 'f' floating point) limits the
    dtypes the function has a kernel for in PyTorch; others raise its NotImplementedError."""
    device = _check_device(device)
    if size is None and shape_args == ():
        raise TypeError(f'{op}() missing 1 required positional arguments: "size"')
    if size is not None and not isinstance(size, (tuple, list, Size)):
        raise TypeError(f"{op}(): argument 'size' must be tuple of ints, not "
                        f"{_args.type_name(size)}")
    # size= is one shape (a sequence of ints), never varargs: size=[[1]] is refused
    shape = _args.check_size(op, _shape_arg((size,) if size is not None else shape_args, op))
    dtype = as_dtype(_args.check_dtype(op, dtype)) if dtype is not None else default
    if kinds is not None and "bif"[dtype.category] not in kinds and (
            op not in ("randn", "linspace") or math.prod(shape)):  # these check when they fill
        raise NotImplementedError(f"{op}(): \"{op}\" not implemented for "
                                  f"'{_legacy_short(dtype)}' (dtype {dtype})")
    if math.prod(n for n in shape if n) * dtype.itemsize > _args.INT64_MAX:
        raise RuntimeError(f"{op}(): Storage size calculation overflowed with sizes="
                           f"{list(shape)}")
    try:
        t = _place(_wrap(fill(shape, dtype.numpy)), device)
    except (MemoryError, ValueError) as err:  # NumPy: "array is too big", allocation failed
        raise RuntimeError(f"{op}(): cannot allocate a tensor of shape {list(shape)} and dtype "
                           f"{dtype}: {err}") from None
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*args, size=None, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros; the shape as varargs ``zeros(2, 3)``, a tuple or ``size=``."""
    return _make(args, size, dtype, backend.get_default_dtype(), np.zeros, requires_grad, device,
                 op="zeros")


def ones(*args, size=None, dtype=None, device=None, requires_grad=False):
    return _make(args, size, dtype, backend.get_default_dtype(), np.ones, requires_grad, device,
                 op="ones")


def empty(*args, size=None, dtype=None, device=None, requires_grad=False):
    return _make(args, size, dtype, backend.get_default_dtype(), np.empty, requires_grad, device,
                 op="empty")


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of `size` (a sequence of ints, as PyTorch) filled with `fill_value`, whose
    type gives the default dtype (bool, int64 or the default float)."""
    if not isinstance(size, (tuple, list, Tensor)):
        raise TypeError(f"full(): argument 'size' (position 1) must be tuple of ints, not "
                        f"{_args.type_name(size)}")
    fill_value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    if not isinstance(fill_value, (bool, numbers.Number, np.generic)) or isinstance(
            fill_value, complex):
        raise TypeError(f"full(): argument 'fill_value' (position 2) must be Number, not "
                        f"{_args.type_name(fill_value)}")
    default = backend._scalar_dtype(fill_value)
    target = as_dtype(_args.check_dtype("full", dtype)) if dtype is not None else default
    if target.is_floating_point and _is_uint64_int(fill_value):
        fill_value = float(fill_value)      # (its value, as PyTorch's uint64: full((2,),
        #                                   2**63, dtype=float64) is 9.2234e18)
    elif target is backend.bool_ and _is_uint64_int(fill_value):
        fill_value = True                   # (not zero)
    # as PyTorch's (its fill_), a finite number beyond a floating dtype's range is refused
    # (PyTorch's full of a single element rounds it to inf in float16: corrnet refuses it
    # there too, as its fill_ and PyTorch's fill_ of a single element do)
    value = (_fill_array if target.is_floating_point else _scalar_array)(
        fill_value, target, "full")
    return _make((size,), None, target, default,
                 lambda shape, np_dtype: np.full(shape, value, dtype=np_dtype),
                 requires_grad, device, op="full")


def rand(*args, size=None, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform samples from [0, 1) (floating point dtypes only, as PyTorch)."""
    rng = _rng(generator)
    return _make(args, size, dtype, backend.get_default_dtype(),
                 lambda shape, d: rng.random(shape).astype(d), requires_grad, device,
                 op="rand", kinds="f")


def randn(*args, size=None, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal samples (floating point dtypes only, as PyTorch)."""
    rng = _rng(generator)
    return _make(args, size, dtype, backend.get_default_dtype(),
                 lambda shape, d: rng.standard_normal(shape).astype(d), requires_grad, device,
                 op="randn", kinds="f")


def randint(low, high=None, size=None, dtype=None, device=None, generator=None):
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)``, `size` a sequence of ints."""
    if size is None and isinstance(high, (tuple, list, Size)):
        high, size = None, high  # randint(high, size)
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if not isinstance(size, (tuple, list, Tensor)):
        raise TypeError(f"randint(): argument 'size' must be tuple of ints, not "
                        f"{_args.type_name(size)}")
    low, high = _args.check_int("randint", "low", low), _args.check_int("randint", "high", high)
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} "
                           f">= to={high}")
    target = as_dtype(_args.check_dtype("randint", dtype)) if dtype is not None else None
    if target is not None and target.category == backend.BOOL and high > 2:
        raise RuntimeError(f"randint(): to - 1 is out of bounds for bool (high={high})")
    rng = _rng(generator)
    return _make((size,), None, target, backend.int64,
                 lambda shape, d: rng.integers(low, high, shape).astype(d), False, device,
                 op="randint")


def randperm(n, dtype=None, device=None, generator=None):
    """A random permutation of 0 .. n - 1 (int64 by default; not bool, as PyTorch)."""
    n = _args.check_int("randperm", "n", n, position=1)
    if n < 0:
        raise RuntimeError(f"randperm(): n must be non-negative, got {n}")
    rng = _rng(generator)
    return _make(((n,),), None, dtype, backend.int64,
                 lambda shape, d: rng.permutation(n).astype(d), False, device,
                 op="randperm", kinds="if")


def normal(mean=0.0, std=1.0, size=None, dtype=None, generator=None, device=None,
           requires_grad=False):
    """Samples from N(mean, std²): tensors `mean`/`std` broadcast, or floats with a `size`."""
    rng = _rng(generator)
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        m, s = _operand_array(mean), _operand_array(std)
        dtype_ = result_type(*(v for v in (mean, std) if isinstance(v, Tensor)))
        if np.any(s < 0):  # (on a device, a one-value read-back)
            raise RuntimeError("normal expects all elements of std >= 0.0")
        parameters = [v for v in (mean, std) if isinstance(v, Tensor)]
        on_device = [p._data for p in parameters if devices.is_device_array(p._data)]
        if on_device:
            # the standard normal draws come from corrnet's (host) generator, as every
            # random tensor made for a device; mean and std stay where they are
            devices.check_same_device([p._data for p in parameters], "normal")
            m, s = (v._data if isinstance(v, Tensor) else float(v) for v in (mean, std))
            draws = rng.standard_normal(np.broadcast_shapes(np.shape(m), np.shape(s)))
            sample = (m + s * devices.table_like(draws, on_device[0])).astype(dtype_.numpy)
        else:
            sample = rng.normal(m, s).astype(dtype_.numpy)
        return ops.RandomSample.apply(sample, *parameters)  # zero gradients, as PyTorch
    if size is None:
        raise TypeError("normal(mean: float, std: float) needs a `size`")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _make((size,), None, dtype, backend.get_default_dtype(),
                 lambda shape, d: rng.normal(mean, std, shape).astype(d), requires_grad, device,
                 op="normal", kinds="f")


def _range_number(op: str, name: str, value):
    """A start/end/step of arange or linspace: a real number (a 0-d tensor's value)."""
    value = value.item() if isinstance(value, Tensor) and value.numel() == 1 else value
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, numbers.Real)):
        raise TypeError(f"{op}(): argument '{name}' must be Number, not "
                        f"{_args.type_name(value)}")
    if isinstance(value, int) and not _args.INT64_MIN <= value <= _args.INT64_MAX:
        raise RuntimeError(f"{op}(): argument '{name}' is {value}, which does not fit in int64 "
                           "(int too big to convert)")
    return value


# |v| from here rounds to inf in float16 (its largest number is 65504)
_FLOAT16_INF_FROM = 65520.0


def _as_float16(values: np.ndarray) -> np.ndarray:
    """float64 or int64 `values` as float16, those beyond its range as inf directly: NumPy's
    cast takes its overflow path for each of them, about 90 ns a number against 3 in range
    (arange(-2**31, 0, 2, dtype=float16), a billion numbers, took 93 s; PyTorch 1 s)."""
    beyond = np.abs(values) >= _FLOAT16_INF_FROM
    if not beyond.any():
        return values.astype(np.float16)
    out = np.where(beyond, 0, values).astype(np.float16)
    out[beyond] = np.copysign(np.inf, values[beyond])
    return out


_ARANGE_PIECE = 2**20   # values of arange computed at a time


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from `start` to `end` (exclusive): int64 for int arguments, float32 otherwise.

    With an integer dtype, PyTorch truncates start and step to integers (int64: end too)
    before counting and computing the values: ``arange(0, 5, 0.5, dtype=int32)`` is ten
    zeros, ``arange(1, 7.5, 2, dtype=int64)`` is [1, 3, 5]."""
    if end is None:
        start, end = 0, start
    arguments = (("start", start), ("end", end), ("step", step))
    if (as_dtype(_args.check_dtype("arange", dtype)).is_floating_point if dtype is not None
            else any(isinstance(v, float) for _, v in arguments)):
        # a floating range reads a Python int between 2**63 and 2**64 as its value (PyTorch's
        # uint64): arange(2.5, 7.5, 2**63) is [2.5]
        arguments = tuple((name, float(v) if _is_uint64_int(v) else v)
                          for name, v in arguments)
    values = [_range_number("arange", name, v) for name, v in arguments]
    low, high, stride = values
    if not (math.isfinite(low) and math.isfinite(high)):
        raise RuntimeError(f"arange(): unsupported range: {low} -> {high} (step {stride})")
    is_float = any(isinstance(v, float) for v in values)
    default = backend.get_default_dtype() if is_float else backend.int64
    target = as_dtype(_args.check_dtype("arange", dtype)) if dtype is not None else default
    integral = target.category == backend.INT
    if math.isnan(stride):
        raise RuntimeError("arange: step must be nonzero (got NaN)")
    if math.isinf(stride):
        # as PyTorch's: no element (its count ceil((end - start) / step) is 0), after the
        # sign check; an integer range cannot hold the step
        if integral:
            raise RuntimeError(f"arange(): step {stride} cannot be converted to type int64_t "
                               "without overflow")
        if (high - low) * stride < 0:
            raise RuntimeError(f"arange(): upper bound and lower bound inconsistent with "
                               f"step sign (start {low}, end {high}, step {stride})")
        return _make(((0,),), None, target, default, lambda shape, np_dtype: np.empty(
            0, np_dtype), requires_grad, device, op="arange", kinds="if")
    if integral and target is backend.int64:
        low, high = int(low), int(high)  # C++'s truncation toward zero
    if stride == 0 or (integral and int(stride) == 0 and target is backend.int64):
        raise RuntimeError("arange: step must be nonzero")
    if (high - low) * stride < 0:
        raise RuntimeError(f"arange(): upper bound and lower bound inconsistent with step "
                           f"sign (start {low}, end {high}, step {stride})")
    length = math.ceil((high - low) / (int(stride) if target is backend.int64 else stride))
    if length > _args.INT64_MAX:
        raise RuntimeError(f"arange(): the range {low} -> {high} with step {stride} has "
                           f"{length} elements, more than int64 can count")

    def fill(shape, np_dtype):
        # start + i * step, in int64 (start and step truncated) or float64, then rounded to
        # the dtype: in pieces, so that the wide intermediate never takes more than a piece
        # (arange(1, 2**31, dtype=uint8) is 2 GiB, not 16 GiB of int64 first)
        out = np.empty(length, np_dtype)
        for first in range(0, length, _ARANGE_PIECE):
            index = np.arange(first, min(length, first + _ARANGE_PIECE), dtype=np.int64)
            values = (int(low) + index * int(stride) if integral
                      else low + index.astype(np.float64) * stride)
            if np_dtype == np.float16:
                values = _as_float16(values)
            with np.errstate(over="ignore"):   # beyond the dtype's range: inf, as PyTorch
                out[first:first + index.size] = values.astype(np_dtype)
        return out

    return _make(((length,),), None, target, default, fill, requires_grad, device,
                 op="arange", kinds="if")


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """`steps` values evenly spaced from `start` to `end` (both included)."""
    target = (as_dtype(_args.check_dtype("linspace", dtype)) if dtype is not None
              else backend.get_default_dtype())
    if target.is_floating_point:    # (an int in [2**63, 2**64): its value, PyTorch's uint64)
        start, end = (float(v) if _is_uint64_int(v) else v for v in (start, end))
    start = _range_number("linspace", "start", start)
    end = _range_number("linspace", "end", end)
    steps = _args.check_int("linspace", "steps", steps, position=3)
    if steps < 0:
        raise RuntimeError(f"linspace(): number of steps must be non-negative, got {steps}")
    if target.category == backend.INT and steps:
        # out of range: refused (a single value is start: end is not checked)
        for value in (start, end) if steps > 1 else (start,):
            _scalar_array(value, target, "linspace()")
    if target.is_floating_point and steps:
        # as PyTorch: a finite endpoint beyond the dtype's range is refused (not an inf
        # value); a single value is start, rounded, refused beyond float32's range only (as
        # in `full`: half precision rounds it to inf)
        checked = (start, end) if steps > 1 else (start,) if target == backend.float32 else ()
        for value in checked:
            if math.isfinite(value) and abs(value) > float(np.finfo(target.numpy).max):
                raise RuntimeError(f"linspace(): value cannot be converted to type "
                                   f"{_c_type_name(target)} without overflow (got {value})")

    # (one value is start: a bool one too, where PyTorch has no bool kernel for more)
    return _make(((steps,),), None, dtype, backend.get_default_dtype(),
                 lambda shape, np_dtype: _spaced(start, end, steps, np.dtype(np_dtype)),
                 requires_grad, device, op="linspace", kinds="bif" if steps == 1 else "if")


def _spaced(start, end, steps: int, dtype: np.dtype) -> np.ndarray:
    """linspace's values as PyTorch computes them, from both ends:

        step = (end - start) / (steps - 1)
        value[i] = start + step * i                    for i < steps // 2
        value[i] = end - step * (steps - 1 - i)        for the others

    start and end first rounded to the dtype, step computed in it. PyTorch's compiled loop
    fuses each value's multiply-add (one rounding): float32's is done here in float64 (the
    product exact, so one rounding but for rare ties), float64's in NumPy's long double
    (exact where that has 64 bits of mantissa, x86: the last bit may differ elsewhere);
    float16 rounds after each operation (PyTorch's Half arithmetic). An integer dtype works
    in float64 from the integer start and end, each value truncated. E.g. (0, 70000, 4) in
    float32: [0, 23333.334, 46666.664, 70000] (NumPy's linspace: 46666.668 for the third).
    PyTorch's vectorized loop (sequences of 2 vectors and more) may differ in the last bit."""
    if steps == 0:
        return np.empty(0, dtype)
    integer = dtype.kind in "iu"
    work = np.dtype(np.float64) if integer else dtype
    wide = {np.dtype(np.float32): np.float64, np.dtype(np.float64): np.longdouble}.get(
        work, work.type)
    with np.errstate(over="ignore", invalid="ignore"):   # (an inf end: inf * 0 is NaN)
        first, last = (np.asarray(value).astype(dtype).astype(work) for value in (start, end))
        if steps == 1:
            return np.asarray([first]).astype(dtype)
        step = (last - first) / work.type(steps - 1)
        halfway = steps // 2
        index = np.arange(steps).astype(wide)
        values = np.concatenate([
            wide(first) + wide(step) * index[:halfway],
            wide(last) - wide(step) * (wide(steps - 1) - index[halfway:])])
        return values.astype(work).astype(dtype)


_SQUARE = object()  # eye's default m (PyTorch refuses an explicit None)


def eye(n, m=_SQUARE, dtype=None, device=None, requires_grad=False):
    """The n x m identity matrix (m = n by default)."""
    n = _args.check_int("eye", "n", n, position=1)
    m = n if m is _SQUARE else _args.check_int("eye", "m", m, position=2)
    for name, value in (("n", n), ("m", m)):
        if value < 0:
            raise RuntimeError(f"eye(): {name} must be greater or equal to 0, got {value}")
    return _make(((n, m),), None, dtype, backend.get_default_dtype(),
                 lambda shape, d: np.eye(n, m, dtype=d), requires_grad, device, op="eye")


def _like(fill):
    def like(input, dtype=None, device=None, requires_grad=False):
        dtype = input.dtype if dtype is None else _args.check_dtype(f"{fill.__name__}_like",
                                                                    dtype)
        return fill(tuple(input.shape), dtype=dtype, device=device or input.device,
                    requires_grad=requires_grad)

    return like


zeros_like, ones_like, empty_like = _like(zeros), _like(ones), _like(empty)
rand_like, randn_like = _like(rand), _like(randn)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    _args.check_dtype("full_like", dtype)
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------------
# functions of several tensors
# ---------------------------------------------------------------------------------------------


def _check_tensors(tensors, name):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{name}(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): expected a sequence of Tensors, but element {i} is "
                            f"{type(t).__name__}")
    # every tensor counts as dimensioned here, 0-d ones too (as PyTorch's cat/stack)
    dtype = functools.reduce(backend.promote_types, (t.dtype for t in tensors))
    return [t._cast(dtype) for t in tensors]


def cat(tensors, dim=0, axis=None):
    """Join tensors along an existing dimension."""
    tensors = _check_tensors(tensors, "cat")
    dim = axis if axis is not None else dim
    for i, t in enumerate(tensors):
        if t.dim() == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    # empty 1-D tensors take no part in the shapes (as PyTorch's), but stay the op's inputs
    shaped = [t for t in tensors if not (t.dim() == 1 and t.numel() == 0)] or tensors[:1]
    first = shaped[0]
    axis_ = first._axis(dim)
    for i, t in enumerate(shaped):
        if t.dim() != first.dim() or any(
            a != b for k, (a, b) in enumerate(zip(t.shape, first.shape, strict=True)) if k != axis_
        ):
            raise RuntimeError(
                f"cat(): sizes of tensors must match except in dimension {dim}: tensor 0 has "
                f"shape {tuple(first.shape)} and tensor {i} has shape {tuple(t.shape)}"
            )
    return ops.Concatenate.apply(axis_, *tensors)


concat = concatenate = cat


def stack(tensors, dim=0, axis=None):
    """Join tensors of equal shape along a new dimension."""
    dim = axis if axis is not None else dim
    tensors = _check_tensors(tensors, "stack")
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.shape != first.shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(first.shape)} at "
                f"entry 0 and {list(t.shape)} at entry {i}"
            )
    ndim = first.dim() + 1
    dim = _args.check_int("stack", "dim", dim)
    if not -ndim <= dim < ndim:
        raise IndexError(f"stack(): dim {dim} out of range [{-ndim}, {ndim - 1}]")
    return ops.Stack.apply(dim % ndim, *tensors)


def where(condition, input=None, other=None):
    """Elements of `input` where `condition` holds, else of `other`."""
    condition = condition if isinstance(condition, Tensor) else tensor(condition)
    if input is None and other is None:
        data = condition._data.reshape(1) if condition.dim() == 0 else condition._data
        return tuple(_wrap(i.astype(np.int64)) for i in np.nonzero(data))
    # (a Python int between 2**63 and 2**64 beside a floating tensor: its value, as PyTorch)
    if isinstance(input, Tensor) and input.dtype.is_floating_point:
        other = _uint64_scalar(input, other, floating_result=True)
    if isinstance(other, Tensor) and other.dtype.is_floating_point:
        input = _uint64_scalar(other, input, floating_result=True)
    a, b = _as_operand(input, "input"), _as_operand(other, "other")
    dtype = result_type(a, b)
    try:
        np.broadcast_shapes(condition._data.shape, np.shape(_operand_array(a)),
                            np.shape(_operand_array(b)))
    except ValueError:
        raise RuntimeError(
            f"where(): condition {tuple(condition.shape)}, input {np.shape(_operand_array(a))} "
            f"and other {np.shape(_operand_array(b))} do not broadcast together"
        ) from None
    return ops.Where.apply(condition._data.astype(bool), _cast_operand(a, dtype),
                           _cast_operand(b, dtype))


def _check_matrix_dtypes(a, b, name):
    if a.dtype != b.dtype:
        raise RuntimeError(f"{name}: expected both operands to have the same dtype, but got "
                           f"{a.dtype} for input and {b.dtype} for other")
    if a.dtype is backend.bool_:   # (PyTorch has no bool kernel for dot, addmv or addmm)
        raise NotImplementedError(f"{name}: not implemented for bool operands (shapes "
                                  f"{tuple(a.shape)} and {tuple(b.shape)}); convert them with "
                                  ".int() or .float() first")


def _check_tensor_argument(function, name, position, value):
    if not isinstance(value, Tensor):
        kind = type(value)
        kind = kind.__name__ if kind.__module__ == "builtins" else (
            f"{kind.__module__.split('.')[0]}.{kind.__name__}")
        raise TypeError(f"{function}(): argument '{name}' (position {position}) must be Tensor, "
                        f"not {kind}")


def mm(input, mat2):
    """The matrix product of two 2-D tensors: (n, k) @ (k, m) -> (n, m)."""
    _check_tensor_argument("mm", "input", 1, input)
    _check_tensor_argument("mm", "mat2", 2, mat2)
    if input.dim() != 2 or mat2.dim() != 2:
        raise RuntimeError(
            f"mm: both arguments must be 2-D matrices, got input of shape {tuple(input.shape)} "
            f"and mat2 of shape {tuple(mat2.shape)}"
        )
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(
            f"mm: input and mat2 shapes cannot be multiplied ({input.shape[0]}x{input.shape[1]} "
            f"and {mat2.shape[0]}x{mat2.shape[1]}): input's columns must equal mat2's rows"
        )
    _check_matrix_dtypes(input, mat2, "mm")
    return ops.MatMul.apply(input, mat2)


def matmul(input, other):
    """The matrix product with NumPy/PyTorch broadcasting of batch dimensions."""
    _check_tensor_argument("matmul", "input", 1, input)
    _check_tensor_argument("matmul", "other", 2, other)
    if input.dim() == 0 or other.dim() == 0:
        raise RuntimeError(
            f"matmul: both arguments need at least 1 dimension, got shapes "
            f"{tuple(input.shape)} and {tuple(other.shape)}"
        )
    k_in = input.shape[-1]
    k_other = other.shape[0] if other.dim() == 1 else other.shape[-2]
    try:
        if k_in != k_other:
            raise ValueError
        np.broadcast_shapes(input.shape[:-2], other.shape[:-2])
    except ValueError:
        raise RuntimeError(
            f"matmul: shapes {tuple(input.shape)} and {tuple(other.shape)} cannot be multiplied "
            f"(the last dimension of input, {k_in}, must equal the "
            f"{'first' if other.dim() == 1 else 'second-to-last'} dimension of other, "
            f"{k_other}, and batch dimensions must broadcast)"
        ) from None
    _check_matrix_dtypes(input, other, "matmul")
    return ops.MatMul.apply(input, other)



def std_mean(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """(std, mean) of `input` over `dim` (as `Tensor.std` and `Tensor.mean`; where the
    values hold an inf the mean is inf, where PyTorch's one-pass std_mean gives NaN)."""
    _check_tensor_argument("std_mean", "input", 1, input)
    return (input.std(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim) if dim is not None else input.mean())


def var_mean(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """(var, mean) of `input` over `dim` (as `Tensor.var` and `Tensor.mean`)."""
    _check_tensor_argument("var_mean", "input", 1, input)
    return (input.var(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim) if dim is not None else input.mean())


def atleast_1d(*tensors):
    """Each tensor with at least 1 dimension (a 0-d one as (1,)); one tensor alone, not in
    a tuple."""
    return _at_least(tensors, lambda t: t.reshape(1) if t.dim() == 0 else t)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dimensions: (1, 1) for 0-d, (1, n) for 1-D."""
    return _at_least(tensors, lambda t: t.reshape(1, -1) if t.dim() < 2 else t)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dimensions: (1, 1, 1), (1, n, 1), (m, n, 1)."""
    def widened(t):
        if t.dim() == 0:
            return t.reshape(1, 1, 1)
        if t.dim() == 1:
            return t.reshape(1, -1, 1)
        return t.unsqueeze(-1) if t.dim() == 2 else t
    return _at_least(tensors, widened)


def _at_least(tensors, widen):
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        return tuple(widen(t) for t in tensors[0])
    if len(tensors) == 1:
        return widen(tensors[0])
    return tuple(widen(t) for t in tensors)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids of 1-D tensors: with indexing "ij" (the default, as PyTorch's, which
    warns that it will change) grid k varies along dimension k; with "xy" the first two
    dimensions swap (NumPy's default)."""
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    if indexing is None:
        import warnings

        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass "
                      "the indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                           f"received: {indexing}")
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for t in tensors:
        if not isinstance(t, Tensor) or t.dim() > 1:
            raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list")
    vectors = [t.reshape(-1) for t in tensors]
    if indexing == "xy" and len(vectors) >= 2:
        vectors[0], vectors[1] = vectors[1], vectors[0]
    shape = tuple(v.shape[0] for v in vectors)
    grids = [v.reshape([-1 if k == i else 1 for k in range(len(vectors))]).expand(shape)
             for i, v in enumerate(vectors)]
    if indexing == "xy" and len(grids) >= 2:    # (the grids of the inputs, in their order)
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    """`steps` values base**x for x evenly spaced from `start` to `end`."""
    exponents = linspace(start, end, steps, dtype=backend.float64)
    values = (float(base) ** exponents).to(as_dtype(dtype) if dtype is not None
                                            else backend.get_default_dtype())
    if device is not None:
        values = values.to(device)
    return values.requires_grad_(True) if requires_grad else values


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    """The (2, N) row and column indices of the lower triangle of a row x col matrix (on and
    below diagonal `offset`), in row-major order: int64."""
    return _triangle_indices("tril_indices", np.tril_indices, row, col, offset, dtype, device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    """The (2, N) indices of the upper triangle (on and above diagonal `offset`)."""
    return _triangle_indices("triu_indices", np.triu_indices, row, col, offset, dtype, device)


def _triangle_indices(op, numpy_indices, row, col, offset, dtype, device):
    row, col = (_args.check_int(op, name, v) for name, v in (("row", row), ("col", col)))
    offset = _args.check_int(op, "offset", offset)
    if row < 0 or col < 0:
        raise RuntimeError(f"{op}: row must be non-negative, got {row}" if row < 0 else
                           f"{op}: col must be non-negative, got {col}")
    rows, columns = numpy_indices(row, offset, col)
    target = as_dtype(dtype) if dtype is not None else backend.int64
    out = _wrap(np.stack([rows, columns]).astype(target.numpy).reshape(2, -1))
    return out if device is None else out.to(device)


def hstack(tensors):
    """The tensors joined along their columns: along dim 0 where all are 1-D (0-d ones count
    as 1-D), else dim 1, e.g. hstack([ones(2, 1), zeros(2, 3)]).shape is (2, 4)."""
    tensors = _tensor_list("hstack", tensors)
    tensors = [t.reshape(1) if t.dim() == 0 else t for t in tensors]
    return cat(tensors, 0 if all(t.dim() == 1 for t in tensors) else 1)


def vstack(tensors):
    """The tensors joined along their rows (dim 0), 0-d and 1-D ones taken as rows (1, n),
    e.g. vstack([tensor([1, 2]), tensor([3, 4])]).shape is (2, 2)."""
    tensors = _tensor_list("vstack", tensors)
    return cat([t.reshape(1, -1) if t.dim() < 2 else t for t in tensors], 0)


def _tensor_list(op: str, tensors) -> list:
    if not isinstance(tensors, (tuple, list)) or not all(isinstance(t, Tensor)
                                                         for t in tensors):
        raise TypeError(f"{op}(): argument 'tensors' (position 1) must be tuple of Tensors")
    if not tensors:
        raise RuntimeError(f"{op} expects a non-empty TensorList")
    return list(tensors)


def dot(input, tensor):
    """The inner product of two 1-D tensors of one dtype and length: a 0-d tensor, e.g.
    dot(tensor([1., 2.]), tensor([3., 4.])) is 11."""
    _check_tensor_argument("dot", "input", 1, input)
    _check_tensor_argument("dot", "tensor", 2, tensor)
    if input.dim() != 1 or tensor.dim() != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.dim()}D and {tensor.dim()}D "
                           f"tensors (dot of shapes {tuple(input.shape)} and "
                           f"{tuple(tensor.shape)})")
    if input.dtype != tensor.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_legacy_short(input.dtype)} and {_legacy_short(tensor.dtype)}")
    if input.shape[0] != tensor.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and "
                           f"src [{tensor.shape[0]}] to have the same number of elements, but "
                           f"got {input.shape[0]} and {tensor.shape[0]} elements respectively")
    return matmul(input, tensor)


def mv(input, vec):
    """The product of a matrix (n, m) and a vector (m,): (n,)."""
    _check_tensor_argument("mv", "input", 1, input)
    _check_tensor_argument("mv", "vec", 2, vec)
    if input.dim() != 2 or vec.dim() != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.dim()}, "
                           f"{vec.dim()} (mv of shapes {tuple(input.shape)} and "
                           f"{tuple(vec.shape)}: a 2-D input and a 1-D vec)")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({input.shape[0]}), mat "
                           f"({input.shape[0]}x{input.shape[1]}), vec ({vec.shape[0]})")
    return matmul(input, vec)


def outer(input, vec2):
    """The outer product of two 1-D tensors (n,) and (m,): (n, m), out[i, j] = input[i] *
    vec2[j] (the dtypes promote as in ``*``)."""
    _check_tensor_argument("outer", "input", 1, input)
    _check_tensor_argument("outer", "vec2", 2, vec2)
    if input.dim() != 1 or vec2.dim() != 1:
        raise RuntimeError(f"outer: expected 1-D tensors, got shapes {tuple(input.shape)} and "
                           f"{tuple(vec2.shape)}")
    return input.reshape(-1, 1) * vec2


def bmm(input, mat2):
    """Batched matrix product of (b, n, k) and (b, k, m): (b, n, m), one dtype."""
    _check_tensor_argument("bmm", "input", 1, input)
    _check_tensor_argument("bmm", "mat2", 2, mat2)
    if input.dim() != 3 or mat2.dim() != 3:
        which = "batch1" if input.dim() != 3 else "batch2"
        raise RuntimeError(f"{which} must be a 3D tensor (bmm of shapes {tuple(input.shape)} "
                           f"and {tuple(mat2.shape)})")
    expected = [input.shape[0], input.shape[2]]
    if list(mat2.shape[:2]) != expected:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"{expected} but got: {list(mat2.shape[:2])}.")
    if input.dtype != mat2.dtype:
        raise RuntimeError(f"expected scalar type {_legacy_short(input.dtype)} but found "
                           f"{_legacy_short(mat2.dtype)} (bmm needs one dtype)")
    return matmul(input, mat2)


def lerp(input, end, weight):
    """input + weight * (end - input), as PyTorch computes it: from input where |weight| <
    0.5, else end - (end - input) * (1 - weight), so that weight 1 gives end exactly (float16
    and float32: PyTorch's very numbers, `_lerp_fused`; float64: its multiply-add rounded
    twice where PyTorch fuses it, one rounding apart). `end` and a tensor `weight` (but a
    0-d one) have input's dtype, a floating one; e.g. lerp(tensor([0.]), tensor([10.]),
    0.25) is 2.5."""
    _check_tensor_argument("lerp", "input", 1, input)
    _check_tensor_argument("lerp", "end", 2, end)
    if isinstance(weight, Tensor) and weight.dim() == 0 and weight.dtype != input.dtype:
        # a 0-d weight of another dtype is promoted with the others (it widens them only
        # where they are 0-d too, as PyTorch's)
        dtype = result_type(input, end, weight)
        if end.dtype == input.dtype and dtype != input.dtype:
            input, end = input.to(dtype), end.to(dtype)
        weight = weight.to(input.dtype)
    for name, value in (("end", end), ("weight", weight)):
        if isinstance(value, Tensor) and value.dtype != input.dtype:
            c_names = {"float32": "float", "float64": "double", "float16": "c10::Half",
                       "int64": "long int", "int32": "int", "int16": "short int",
                       "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}
            raise RuntimeError(f"expected dtype {c_names.get(input.dtype.name)} for `{name}` "
                               f"but got dtype {c_names.get(value.dtype.name, value.dtype.name)}")
    if not input.dtype.is_floating_point:
        # (integer operands that a 0-d floating weight did not promote)
        kernel = "lerp_kernel_tensor" if isinstance(weight, Tensor) else "lerp_kernel_scalar"
        raise NotImplementedError(f"\"{kernel}\" not implemented for "
                                  f"'{_legacy_short(input.dtype)}' (lerp takes floating tensors)")
    if not isinstance(weight, Tensor):
        weight = _method_operand("lerp", "weight", weight)
    if input.dtype in (backend.float16, backend.float32):
        return _lerp_fused(input, end, weight)
    difference = end - input
    small = abs(weight) < 0.5
    if not isinstance(small, Tensor):
        return input + weight * difference if small else end - difference * (1 - weight)
    return where(small, input + weight * difference, end - difference * (1 - weight))


def _lerp_fused(input, end, weight):
    """lerp of float16 or float32 tensors as PyTorch computes it: in float32 (float16's too),
    each end's multiply-add fused (rounded once: computed in float64, whose product of two
    float32 numbers is exact), then rounded to input's dtype."""
    start, end = input.float(), end.float()
    weight = weight.float() if isinstance(weight, Tensor) else np.float32(weight)
    difference = end - start                                    # float32
    complement = 1 - weight                                     # float32
    near = (start.double() + _as_double(weight) * difference.double()).float()
    far = (end.double() - difference.double() * _as_double(complement)).float()
    if isinstance(weight, Tensor):
        out = where(abs(weight) < 0.5, near, far)
    else:
        out = near if abs(weight) < 0.5 else far
    return out.to(input.dtype)


def _as_double(value):
    return value.double() if isinstance(value, Tensor) else float(value)


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2, in the dtype of the three tensors (value cast to
    it), e.g. addcmul(tensor([1.]), tensor([2.]), tensor([3.]), value=0.5) is 4."""
    for position, (name, operand) in enumerate((("input", input), ("tensor1", tensor1),
                                                ("tensor2", tensor2)), 1):
        _check_tensor_argument("addcmul", name, position, operand)
    input, tensor1, tensor2 = _in_common_dtype(input, tensor1, tensor2)
    if input.dtype is backend.bool_:
        raise NotImplementedError("\"addcmul_cpu_out\" not implemented for 'Bool'")
    if not input.dtype.is_floating_point:   # (value in the integer dtype, as PyTorch's: 2.7
        value = int(value)                  # counts as 2)
    if input.dtype is backend.float16:      # (in float32, rounded once, as PyTorch's)
        return addcmul(*(t.float() for t in (input, tensor1, tensor2)), value=value).half()
    product = tensor1 * tensor2
    return input + (product if value == 1 else value * product)


def _in_common_dtype(*tensors):
    """The tensors cast to their common dtype, promoted over all of them at once (as PyTorch's
    ternary ops: a 0-d float64 among float32 tensors does not widen them, though it would
    widen an integer one in a pairwise product)."""
    dtype = result_type(*tensors)
    return tuple(t if t.dtype == dtype else t.to(dtype) for t in tensors)


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2; integer tensor1 and tensor2 are refused, as
    PyTorch refuses them."""
    for position, (name, operand) in enumerate((("input", input), ("tensor1", tensor1),
                                                ("tensor2", tensor2)), 1):
        _check_tensor_argument("addcdiv", name, position, operand)
    if not (tensor1.dtype.is_floating_point or tensor2.dtype.is_floating_point):
        raise RuntimeError("Integer division with addcdiv is no longer supported, and in a "
                           "future release addcdiv will perform a true division of tensor1 "
                           "and tensor2. Use torch.addcmul(input, tensor1, 1 / tensor2) (or "
                           "floating tensors) instead.")
    input, tensor1, tensor2 = _in_common_dtype(input, tensor1, tensor2)
    if input.dtype is backend.float16:      # (in float32, rounded once, as PyTorch's)
        return addcdiv(*(t.float() for t in (input, tensor1, tensor2)), value=value).half()
    quotient = tensor1 / tensor2
    return input + (quotient if value == 1 else value * quotient)

def _broadcast_check(a, b, op):
    """Refuse operands whose shapes do not broadcast, naming both shapes."""
    shape_a, shape_b = np.shape(_operand_array(a)), np.shape(_operand_array(b))
    if shape_a == shape_b or not shape_a or not shape_b:
        return
    for n, m in zip(reversed(shape_a), reversed(shape_b), strict=False):
        if n != m and n != 1 and m != 1:
            raise RuntimeError(
                f"{op}: the size of tensor a {tuple(shape_a)} must match the size of tensor b "
                f"{tuple(shape_b)} at every non-singleton dimension (shapes do not broadcast)"
            )


# ---------------------------------------------------------------------------------------------
# issue 12: einsum
# ---------------------------------------------------------------------------------------------


def einsum(equation, *operands):
    """Sum of products over labelled dimensions, as ``torch.einsum``: ``'ij,jk->ik'`` is a
    matrix product, ``'bii->bi'`` takes diagonals, ``'...ij,...jk'`` broadcasts the leading
    dimensions. Operands follow the equation or come as one list (``einsum(eq, [a, b])``);
    without ``->`` the output holds the labels used once, in alphabetical order, after the
    ``...`` dimensions. Size-1 dimensions broadcast against their label's size.

    >>> corrnet.einsum("i,i->", corrnet.tensor([1., 2.]), corrnet.tensor([3., 4.]))
    tensor(11.)
    """
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): argument 'equation' (position 1) must be str, not "
                        f"{_args.type_name(equation)}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, operand in enumerate(operands):
        if not isinstance(operand, Tensor):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, not "
                            f"{_args.type_name(operand)}")
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    equation = equation.replace(" ", "")
    explicit = "->" in equation
    lhs, output = equation.split("->", 1) if explicit else (equation, None)
    terms = lhs.split(",")
    if len(terms) != len(operands):
        which = "more" if len(operands) > len(terms) else "fewer"
        raise RuntimeError(f"einsum(): {which} operands were provided than specified in the "
                           f"equation ({len(terms)} subscripts in {equation!r}, "
                           f"{len(operands)} operands)")
    for term in terms + ([output] if explicit else []):
        letters = term.replace("...", "", 1)
        if not all(c.isascii() and c.isalpha() for c in letters):
            raise RuntimeError(f"einsum(): invalid subscript given at index "
                               f"{equation.find(term)} in the equation string {equation!r}: "
                               "subscripts must be letters, with at most one ellipsis each")
    dtype = operands[0].dtype
    for operand in operands[1:]:
        if operand.dtype != dtype:
            raise RuntimeError(f"expected scalar type {_legacy_short(dtype)} but found "
                               f"{_legacy_short(operand.dtype)} (einsum operands must have "
                               "the same dtype)")

    # replace every ellipsis by letters unused in the equation, right-aligned
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            if c not in equation]
    ellipsis_dims = 0
    for i, (term, operand) in enumerate(zip(terms, operands, strict=True)):
        named = len(term.replace("...", ""))
        if "..." in term:
            if named > operand.dim():
                raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                                   f"({named}) is more than the number of dimensions "
                                   f"({operand.dim()}) for operand {i}")
            ellipsis_dims = max(ellipsis_dims, operand.dim() - named)
        elif named != operand.dim():
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({named}) "
                               f"does not match the number of dimensions ({operand.dim()}) "
                               f"for operand {i} and no ellipsis was given")
    ellipsis = "".join(free[:ellipsis_dims])
    counts = collections.Counter("".join(terms).replace(".", ""))
    if explicit:
        if "..." in output:
            output = output.replace("...", ellipsis)
        for c in output:
            if output.count(c) > 1:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in "
                                   "the output")
            if c not in counts and c not in ellipsis:
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the "
                                   "equation for any input operand")
    else:
        has_ellipsis = any("..." in term for term in terms)
        output = (ellipsis if has_ellipsis else "") + "".join(
            sorted(c for c, n in counts.items() if n == 1))
    subscripts = []
    for term, operand in zip(terms, operands, strict=True):
        if "..." in term:
            own = operand.dim() - len(term.replace("...", ""))
            term = term.replace("...", ellipsis[len(ellipsis) - own:] if own else "")
        subscripts.append(term)

    # each label's size; size-1 dimensions broadcast
    sizes: dict = {}
    for i, (term, operand) in enumerate(zip(subscripts, operands, strict=True)):
        own: dict = {}
        for c, n in zip(term, operand.shape, strict=True):
            if own.setdefault(c, n) != n:
                raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {i} but "
                                   f"the sizes don't match, {n} != {own[c]}")
            seen = sizes.get(c, 1)
            if n != seen and n != 1 and seen != 1:
                raise RuntimeError(f"einsum(): subscript {c} has size {n} for operand {i} "
                                   f"which does not broadcast with previously seen size {seen}")
            if c not in sizes or seen == 1:
                sizes[c] = n
    if dtype is backend.bool_ and set("".join(subscripts)) - set(output):
        # bool and a sum over some label: PyTorch has no bool kernel for a contraction of
        # two operands, and counts a single operand's sum in int64 ("ii": a trace)
        if len(operands) > 1:
            raise NotImplementedError(f"einsum(): {equation!r} sums over a label of bool "
                                      "operands, which PyTorch's bmm has no kernel for; "
                                      "convert them with .int() or .float() first")
        operands = (operands[0].long(),)
    expanded, expanded_terms = [], []
    for term, operand in zip(subscripts, operands, strict=True):
        target = tuple(sizes[c] for c in term)
        if target != tuple(operand.shape):
            if len(set(term)) != len(term):  # a broadcast diagonal: take the diagonal first
                unique = "".join(dict.fromkeys(term))
                operand, term = ops.Einsum.apply((term,), unique, operand), unique
                target = tuple(sizes[c] for c in term)
            operand = operand.expand(target)
        expanded.append(operand)
        expanded_terms.append(term)
    return ops.Einsum.apply(tuple(expanded_terms), output, *expanded)

# ---------------------------------------------------------------------------------------------
# more of PyTorch's functions: products with a scaled sum, splits and joins, searching,
# dtype questions
# ---------------------------------------------------------------------------------------------

def _scaled_sum(op: str, input, product, beta, alpha):
    """beta * input + alpha * product, input broadcast to product's shape (beta == 0: input
    not read, so that its NaN and inf do not reach the result, as in BLAS and PyTorch)."""
    for name, number in (("beta", beta), ("alpha", alpha)):
        if isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise TypeError(f"{op}(): argument '{name}' must be Number, not "
                            f"{type(number).__name__}")
    if input.dtype != product.dtype:
        raise RuntimeError(f"{op}(): self and the product must have the same dtype, got "
                           f"{input.dtype} and {product.dtype}")
    try:
        np.broadcast_shapes(tuple(input.shape), tuple(product.shape))
        base = input.expand(product.shape)
    except (ValueError, RuntimeError):
        raise RuntimeError(f"{op}(): the input of shape {tuple(input.shape)} does not "
                           f"broadcast to the product's shape {tuple(product.shape)}") from None
    if not product.dtype.is_floating_point:     # (PyTorch truncates them to integers)
        beta, alpha = int(beta), int(alpha)
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:   # (input's gradient: zeros, as PyTorch's)
        return where(_wrap(np.ones((), dtype=bool, like=product._data)), scaled, base)
    return (base if beta == 1 else base * beta) + scaled


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2): mat1 (n, k), mat2 (k, m), input broadcast to
    (n, m), one dtype; beta == 0 ignores input."""
    _check_tensor_argument("addmm", "input", 1, input)
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec): mat (n, m), vec (m,), input broadcast to (n,)."""
    _check_tensor_argument("addmv", "input", 1, input)
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2): (b, n, k) and (b, k, m), input broadcast
    to (b, n, m)."""
    _check_tensor_argument("baddbmm", "input", 1, input)
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (the sum over b of batch1[b] @ batch2[b]): input broadcast to
    (n, m)."""
    _check_tensor_argument("addbmm", "input", 1, input)
    return _scaled_sum("addbmm", input, bmm(batch1, batch2).sum(0), beta, alpha)


def tensordot(a, b, dims=2):
    """The sum of products over dims of a and b: `dims` an int (a's last dims with b's
    first), or two lists of dims, e.g. tensordot(a (2, 3, 4), b (3, 4, 5)) is (2, 5)."""
    _check_tensor_argument("tensordot", "a", 1, a)
    _check_tensor_argument("tensordot", "b", 2, b)
    if _args.is_int(dims):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.dim(), b.dim()):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims} "
                               f"(a {tuple(a.shape)}, b {tuple(b.shape)})")
        dims_a, dims_b = list(range(a.dim() - dims, a.dim())), list(range(dims))
    else:
        if isinstance(dims, Tensor):
            dims = dims.tolist()
        if not isinstance(dims, (list, tuple)) or len(dims) != 2:
            raise TypeError("tensordot(): argument 'dims' must be an int or two lists of ints")
        dims_a, dims_b = ([d] if _args.is_int(d) else list(d) for d in dims)
        if len(dims_a) != len(dims_b):
            raise RuntimeError(f"both dimension lists should have same length (got "
                               f"{dims_a} and {dims_b})")
        dims_a = [a._axis(d) for d in dims_a]
        dims_b = [b._axis(d) for d in dims_b]
    for da, db in zip(dims_a, dims_b, strict=True):
        if a.shape[da] != b.shape[db]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size "
                               f"{a.shape[da]} in dim {da} and second has size {b.shape[db]} "
                               f"in dim {db}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected both tensors of one dtype, got {a.dtype} and {b.dtype} "
                           "(tensordot)")
    kept_a = [d for d in range(a.dim()) if d not in dims_a]
    kept_b = [d for d in range(b.dim()) if d not in dims_b]
    inner_size = math.prod(a.shape[d] for d in dims_a)
    # (rows, inner) @ (inner, columns), the kept dims in order
    rows = a.permute(*kept_a, *dims_a).reshape(-1, inner_size)
    columns = b.permute(*dims_b, *kept_b).reshape(inner_size, -1)
    out_shape = [a.shape[d] for d in kept_a] + [b.shape[d] for d in kept_b]
    return mm(rows, columns).reshape(out_shape)


def inner(input, other):
    """The sum of products over the last dims: (..., n) and (..., n) give a's leading dims
    then b's; a 0-d operand scales the other."""
    _check_tensor_argument("inner", "input", 1, input)
    _check_tensor_argument("inner", "other", 2, other)
    if input.dim() == 0 or other.dim() == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but "
                           f"got shapes {list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([-1], [-1]))


def kron(input, other):
    """The Kronecker product: out[i*n + j] = input[i] * other[j] along every dim (the fewer
    dims padded with leading ones), e.g. kron(eye(2), ones(2, 2)) is two 2x2 blocks."""
    _check_tensor_argument("kron", "input", 1, input)
    _check_tensor_argument("kron", "other", 2, other)
    ndim = max(input.dim(), other.dim())
    a_shape = (1,) * (ndim - input.dim()) + tuple(input.shape)
    b_shape = (1,) * (ndim - other.dim()) + tuple(other.shape)
    # (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...) -> (a0 * b0, a1 * b1, ...)
    a = input.reshape([n for size in a_shape for n in (size, 1)])
    b = other.reshape([n for size in b_shape for n in (1, size)])
    return (a * b).reshape([m * n for m, n in zip(a_shape, b_shape, strict=True)])


def cross(input, other, dim=None):
    """The cross product of 3-vectors along `dim` (input and other broadcast); without
    `dim`, the first dim of size 3 (PyTorch's deprecated default, with its warning)."""
    _check_tensor_argument("cross", "input", 1, input)
    _check_tensor_argument("cross", "other", 2, other)
    if input.dim() != other.dim():
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions "
                           f"(got {tuple(input.shape)} and {tuple(other.shape)})")
    _broadcast_check(input, other, "cross")
    shape = np.broadcast_shapes(tuple(input.shape), tuple(other.shape))
    if dim is None:
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated; "
                      "corrnet takes the first dim of size 3, as PyTorch", UserWarning,
                      stacklevel=2)
        threes = [d for d, n in enumerate(shape) if n == 3]
        if not threes:
            raise RuntimeError(f"no dimension of size 3 in input (shape {tuple(shape)})")
        axis = threes[0]
    else:
        axis = _args.check_dim("cross", dim, len(shape))
        if shape[axis] != 3:
            raise RuntimeError(f"linalg.cross: inputs dimension {axis} must have length 3. "
                               f"Got {input.shape[axis]} and {other.shape[axis]}")
    a, b = input.expand(shape), other.expand(shape)
    a0, a1, a2 = (a.narrow(axis, i, 1) for i in range(3))
    b0, b1, b2 = (b.narrow(axis, i, 1) for i in range(3))
    return cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis)


def dist(input, other, p=2):
    """The p-norm of input - other (broadcast)."""
    _check_tensor_argument("dist", "input", 1, input)
    _check_tensor_argument("dist", "other", 2, other)
    return (input - other).norm(p)


def take(input, index):
    """input's elements at `index` (int64) as if input were 1-D, negative indices from the
    end, in index's shape."""
    _check_tensor_argument("take", "input", 1, input)
    _check_tensor_argument("take", "index", 2, index)
    if index.dtype is not backend.int64:
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {index.dtype}")
    size = input.numel()
    positions = index._data
    if positions.size and (positions.min() < -size or positions.max() >= size):
        raise IndexError(f"take(): index out of range in a tensor of {size} elements")
    flat = positions.reshape(-1) % max(size, 1)
    return input.reshape(-1).index_select(0, _wrap(flat)).reshape(index.shape)


def take_along_dim(input, indices, dim=None):
    """gather along `dim` with `indices` (int64) broadcast against input apart from `dim`;
    without `dim`, input and indices read as 1-D."""
    _check_tensor_argument("take_along_dim", "input", 1, input)
    _check_tensor_argument("take_along_dim", "indices", 2, indices)
    if indices.dtype is not backend.int64:
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but got "
                           f"{indices.dtype}")
    if dim is None:
        return input.reshape(-1).gather(0, indices.reshape(-1))
    axis = _args.check_dim("take_along_dim", dim, input.dim())
    if input.dim() != indices.dim():
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same "
                           f"number of dimensions, but got {input.dim()} dimensions for input, "
                           f"and {indices.dim()} dimensions for indices")
    shape_in, shape_ix = list(input.shape), list(indices.shape)
    shape_in[axis] = shape_ix[axis] = 1
    try:
        common = list(np.broadcast_shapes(tuple(shape_in), tuple(shape_ix)))
    except ValueError:
        raise RuntimeError(f"take_along_dim(): input {tuple(input.shape)} and indices "
                           f"{tuple(indices.shape)} do not broadcast apart from dim "
                           f"{axis}") from None
    input_shape, index_shape = list(common), list(common)
    input_shape[axis], index_shape[axis] = input.shape[axis], indices.shape[axis]
    return input.expand(input_shape).gather(axis, indices.expand(index_shape))


def tensor_split(input, indices_or_sections, dim=0):
    """Pieces of input along `dim` (views' copies): `sections` pieces of sizes as equal as
    can be (the first ones one longer), or cut before each of `indices`, e.g.
    tensor_split(arange(7), [1, 5]) has sizes 1, 4, 2."""
    _check_tensor_argument("tensor_split", "input", 1, input)
    if input.dim() == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")
    axis = input._axis(dim)
    size = input.shape[axis]
    if isinstance(indices_or_sections, Tensor):
        if indices_or_sections.dtype is not backend.int64 or indices_or_sections.dim() > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to have "
                               "dtype long and be a 0-d or 1-d tensor")
        indices_or_sections = indices_or_sections.tolist()
    if _args.is_int(indices_or_sections):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {sections}")
        small, extra = divmod(size, sections)
        sizes = [small + 1] * extra + [small] * (sections - extra)
        cuts = list(itertools.accumulate(sizes))[:-1]
    else:
        if not isinstance(indices_or_sections, (list, tuple)) or not all(
                _args.is_int(i) for i in indices_or_sections):
            raise TypeError("tensor_split(): argument 'indices' must be an int or a list of "
                            "ints")
        cuts = [int(i) for i in indices_or_sections]
    # piece k is input[cuts[k-1]:cuts[k]] along axis, each bound as a Python slice's (from
    # the end where negative, clamped to the size; an empty piece where they cross)
    bounds = [0] + [min(max(cut + size if cut < 0 else cut, 0), size) for cut in cuts] + [size]
    return tuple(input.narrow(axis, start, max(stop - start, 0))
                 for start, stop in itertools.pairwise(bounds))


def _split_along(op, input, sections, axis, least_dims):
    """hsplit, vsplit, dsplit: tensor_split along `axis`, an int dividing the size."""
    if input.dim() < least_dims:
        raise RuntimeError(f"torch.{op} requires a tensor with at least {least_dims} "
                           f"dimension, but got a tensor with {input.dim()} dimensions!")
    if _args.is_int(sections) and (sections == 0 or input.shape[axis] % sections):
        raise RuntimeError(f"torch.{op} attempted to split along dimension {axis}, but the "
                           f"size of the dimension {input.shape[axis]} is not divisible by "
                           f"the split_size {sections}!")
    return tensor_split(input, sections, axis)


def hsplit(input, sections):
    return input.hsplit(sections)


def vsplit(input, sections):
    return input.vsplit(sections)


def dsplit(input, sections):
    return input.dsplit(sections)


def column_stack(tensors):
    """The tensors as columns side by side: 0-d and 1-D ones as (n, 1) columns, e.g.
    column_stack([tensor([1, 2]), tensor([3, 4])]) is [[1, 3], [2, 4]]."""
    tensors = _tensor_list("column_stack", tensors)
    return hstack([t.reshape(-1, 1) if t.dim() < 2 else t for t in tensors])


def row_stack(tensors):
    """`vstack`."""
    return vstack(tensors)


def dstack(tensors):
    """The tensors joined along dim 2 (depth), each taken as at least 3-D: (n,) as
    (1, n, 1), (m, n) as (m, n, 1)."""
    tensors = _tensor_list("dstack", tensors)
    return cat([atleast_3d(t) for t in tensors], 2)


def block_diag(*tensors):
    """The tensors (each at most 2-D: 0-d as (1, 1), 1-D as a row) as blocks down the
    diagonal of a matrix of zeros, in their common dtype."""
    blocks = []
    for i, t in enumerate(tensors):
        _check_tensor_argument("block_diag", f"tensors[{i}]", i + 1, t)
        if t.dim() > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer "
                               f"dimensions. Input {i} has {t.dim()} dimensions")
        blocks.append(t.reshape(1, -1) if t.dim() < 2 else t)
    if not blocks:
        return zeros(1, 0)
    dtype = functools.reduce(backend.promote_types, (b.dtype for b in blocks))
    width = sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        b = b if b.dtype is dtype else b._cast(dtype)
        right = width - left - b.shape[1]
        rows.append(cat([b.new_zeros(b.shape[0], left), b, b.new_zeros(b.shape[0], right)], 1))
        left += b.shape[1]
    return cat(rows, 0)


def cartesian_prod(*tensors):
    """Every combination of one element of each 1-D tensor, in order, as rows (one tensor:
    itself), e.g. cartesian_prod(tensor([1, 2]), tensor([3, 4])) is [[1, 3], [1, 4], [2, 3],
    [2, 4]]."""
    for i, t in enumerate(tensors):
        _check_tensor_argument("cartesian_prod", f"tensors[{i}]", i + 1, t)
        if t.dim() != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([g.reshape(-1) for g in grids], 1)


def _integer_function(op, function, input, other):
    """gcd and lcm: integer tensors (or a number as other), NumPy's function, the dtypes
    promoted as for arithmetic."""
    if not isinstance(other, Tensor):
        if isinstance(other, bool) or not isinstance(other, numbers.Integral):
            raise TypeError(f"{op}(): argument 'other' (position 1) must be Tensor, not "
                            f"{type(other).__name__}")
        other = tensor(other)
    for t in (input, other):
        if t.dtype.is_floating_point or t.dtype is backend.bool_:
            raise NotImplementedError(f'"{op}_cpu" not implemented for '
                                      f"'{_legacy_short(t.dtype).replace('Tensor', '')}' "
                                      f"({op} takes integer tensors)")
    _broadcast_check(input, other, op)
    dtype = backend.result_type(input, other)
    return _wrap(function(input._data, other._data).astype(dtype.numpy))


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """Where each of input's values would go in the ascending last dim of `sorted_sequence`
    (1-D: one sequence for all; else one per leading index, as input's): the first place
    (`right` or ``side="right"``: after equal values), e.g. searchsorted(tensor([1, 3, 5]),
    tensor([3, 6])) is [1, 3]. int64, or int32 with `out_int32`."""
    _check_tensor_argument("searchsorted", "sorted_sequence", 1, sorted_sequence)
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but "
                               f"got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to "
                               "opposites, got side of left while right was True")
        right = side == "right"
    number = not isinstance(input, Tensor)
    values = tensor(input, dtype=sorted_sequence.dtype) if number else input
    boundaries = sorted_sequence._data
    if sorter is not None:
        _check_tensor_argument("searchsorted", "sorter", 4, sorter)
        if tuple(sorter.shape) != tuple(sorted_sequence.shape):
            raise RuntimeError("torch.searchsorted(): boundary and sorter must have the same "
                               "size")
        if sorter.dtype is not backend.int64:
            raise RuntimeError(f"torch.searchsorted(): sorter must be a tensor of long dtype "
                               f"but got dtype {_legacy_short(sorter.dtype)}")
        order = sorter._data
        if order.size and (order.min() < 0 or order.max() >= boundaries.shape[-1]):
            raise RuntimeError(f"torch.searchsorted(): sorter index out of range (indices "
                               f"must be in [0, {boundaries.shape[-1]}))")
        boundaries = np.take_along_axis(boundaries, order, axis=-1)
    if sorted_sequence.dim() == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive "
                           "dimension, but got 0 dimension")
    if sorted_sequence.dim() > 1 and (
            values.dim() != sorted_sequence.dim()
            or tuple(values.shape[:-1]) != tuple(sorted_sequence.shape[:-1])):
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or "
                           f"the first N-1 dimensions of boundaries tensor and input value "
                           f"tensor must match, but we got boundaries tensor "
                           f"{list(sorted_sequence.shape)} and input value tensor "
                           f"{list(values.shape)}")
    how = "right" if right else "left"
    data = values._data
    if sorted_sequence.dim() == 1:
        found = np.searchsorted(boundaries, data, side=how)
    else:
        rows = boundaries.reshape(-1, boundaries.shape[-1])
        queries = data.reshape(rows.shape[0], -1)
        found = np.stack([np.searchsorted(r, q, side=how) for r, q in
                          zip(rows, queries, strict=True)]).reshape(data.shape)
    result = _wrap(np.asarray(found).astype(np.int32 if out_int32 else np.int64))
    return result


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each of input's values among the ascending 1-D `boundaries`: the first
    index whose boundary is >= the value (`right`: > it), e.g. bucketize(tensor([0, 3, 6]),
    tensor([1, 3, 5])) is [0, 1, 3]."""
    _check_tensor_argument("bucketize", "boundaries", 2, boundaries)
    if boundaries.dim() != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim("
                           f"{boundaries.dim()})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def is_tensor(obj):
    """Whether `obj` is a corrnet Tensor."""
    return isinstance(obj, Tensor)


def is_floating_point(input):
    _check_tensor_argument("is_floating_point", "input", 1, input)
    return input.is_floating_point()


def is_complex(input):
    _check_tensor_argument("is_complex", "input", 1, input)
    return False


def is_nonzero(input):
    _check_tensor_argument("is_nonzero", "input", 1, input)
    return input.is_nonzero()


def logcumsumexp(input, dim):
    _check_tensor_argument("logcumsumexp", "input", 1, input)
    return input.logcumsumexp(dim)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(op, input, q, dim, keepdim, interpolation, ignore_nan):
    """quantile and nanquantile: the sorted values (NaN last) at q * (count - 1), taken
    from the sort's differentiable values, between two of them as PyTorch's (linear: lerp)."""
    keepdim = _args.check_bool(op, "keepdim", keepdim)
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{op}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest. Got {interpolation!r}")
    if input.dtype not in (backend.float32, backend.float64):
        raise RuntimeError(f"{op}() input tensor must be either float or double dtype (got "
                           f"{input.dtype})")
    if input.numel() == 0:
        raise RuntimeError(f"{op}() input tensor must be non-empty")
    if isinstance(q, Tensor):
        if q.dim() > 1:
            raise RuntimeError(f"{op}() q must be a scalar or 1D tensor (got shape "
                               f"{tuple(q.shape)})")
        if q.dtype != input.dtype:
            raise RuntimeError(f"{op}() q tensor must be same dtype as the input tensor")
        levels = q._data.astype(np.float64).reshape(-1)
        scalar = q.dim() == 0
    else:
        if isinstance(q, bool) or not isinstance(q, numbers.Real):
            raise TypeError(f"{op}(): argument 'q' must be a number or a Tensor, not "
                            f"{type(q).__name__}")
        levels, scalar = np.array([float(q)]), True
    if levels.size and (np.isnan(levels).any() or levels.min() < 0 or levels.max() > 1):
        raise RuntimeError(f"{op}() q values must be in the range [0, 1] (got "
                           f"{levels.tolist()})")
    if dim is None:
        source, axis = input.reshape(-1), 0
        kept_shape = [1] * input.dim()
    else:
        axis = _args.check_dim(op, dim, input.dim())
        source = input.reshape(1) if input.dim() == 0 else input
        kept_shape = list(input.shape)
        if kept_shape:
            kept_shape[axis] = 1
    ordered = source.sort(axis).values       # NaN last
    n = ordered.shape[axis]
    data = ordered._data
    nan_count = np.count_nonzero(np.isnan(data), axis=axis, keepdims=True)
    count = (n - nan_count) if ignore_nan else np.full(nan_count.shape, n)
    results = []
    for level in levels:
        position = level * np.maximum(count - 1, 0)
        below = np.floor(position).astype(np.int64)
        above = np.ceil(position).astype(np.int64)
        if interpolation == "nearest":
            below = above = np.round(position).astype(np.int64)
        elif interpolation == "lower":
            above = below
        elif interpolation == "higher":
            below = above
        # a slice with a NaN (quantile) or only NaN (nanquantile): its NaN
        no_answer = (nan_count > 0) if not ignore_nan else (count == 0)
        below = np.where(no_answer, n - 1, below)
        above = np.where(no_answer, n - 1, above)
        low = ordered.gather(axis, _wrap(below))
        high = ordered.gather(axis, _wrap(above))
        if interpolation == "linear":
            weight = _wrap(np.asarray(position - np.floor(position), dtype=data.dtype))
            value = lerp(low, high, weight)
        elif interpolation == "midpoint":
            value = lerp(low, high, 0.5)
        else:
            value = low
        results.append(value)
    if not results:     # (an empty q: an empty result)
        return ordered.new_empty([0] + (kept_shape if keepdim else [] if dim is None else [
            k for i, k in enumerate(input.shape) if i != axis]))
    out = stack(results, 0)          # (levels, *kept)
    out = out.reshape([len(results)] + kept_shape) if keepdim else out.reshape(
        [len(results)] + ([] if dim is None else [k for i, k in enumerate(input.shape)
                                                  if i != axis]))
    return out[0] if scalar else out


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    _check_tensor_argument("quantile", "input", 1, input)
    return input.quantile(q, dim, keepdim, interpolation=interpolation)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    _check_tensor_argument("nanquantile", "input", 1, input)
    return input.nanquantile(q, dim, keepdim, interpolation=interpolation)


def histc(input, bins=100, min=0, max=0):  # noqa: A002 - PyTorch's names
    """See `Tensor.histc`. Its result does not require grad (as PyTorch's)."""
    _check_tensor_argument("histc", "input", 1, input)
    bins = _args.check_int("histc", "bins", bins)
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"histogram_cpu" not implemented for '
                                  f"'{_legacy_short(input.dtype)}' (a floating tensor)")
    if bins <= 0:
        raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins} for dimension 0")
    data = input._data.reshape(-1)
    low, high = float(min), float(max)
    if low == high and data.size:
        low, high = float(data.min()), float(data.max())
    if low == high:
        low, high = low - 1, high + 1
    if low > high:
        raise RuntimeError("torch.histc: max must be larger than min")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise RuntimeError(f"torch.histc: range of [{low:g}, {high:g}] is not finite")
    kept = data[(data >= low) & (data <= high)]          # (NaN fails both)
    # the bin, in the input's dtype as PyTorch computes it; max goes to the last bin
    dtype = data.dtype.type
    position = ((kept - dtype(low)) / (dtype(high) - dtype(low)) * dtype(bins)).astype(np.int64)
    position = np.minimum(position, bins - 1)
    return _wrap(np.bincount(position, minlength=bins).astype(data.dtype))


def cov(input, *, correction=1, fweights=None, aweights=None):
    """The covariance matrix of the variables in input's rows (observations in its
    columns; a 1-D input is one variable: a 0-d result), with `correction` subtracted from
    the observations' count (weighted by the int `fweights` and the float `aweights`)."""
    _check_tensor_argument("cov", "input", 1, input)
    if input.dim() > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an "
                           f"input with {input.dim()} dimensions")
    correction = _args.check_int("cov", "correction", correction)
    x = input.reshape(1, -1) if input.dim() < 2 else input
    if not x.dtype.is_floating_point:
        x = x._cast(backend.get_default_dtype())
    observations = x.shape[1]
    weights = None
    for name, w, integral in (("fweights", fweights, True), ("aweights", aweights, False)):
        if w is None:
            continue
        _check_tensor_argument("cov", name, 2, w)
        if w.dim() > 1:
            raise RuntimeError(f"cov(): expected {name} to have one or fewer dimensions but "
                               f"got {name} with {w.dim()} dimensions")
        if integral and w.dtype.is_floating_point or not integral and not (
                w.dtype.is_floating_point):
            kind = "an integral" if integral else "a floating point"
            raise RuntimeError(f"cov(): expected {name} to have {kind} dtype but got {name} "
                               f"with {w.dtype} dtype")
        if w.numel() != observations:
            raise RuntimeError(f"cov(): expected {name} to have the same numel as there are "
                               f"observations in the input but got {w.numel()} != "
                               f"{observations}")
        if w.numel() and bool((w < 0).any()):
            raise RuntimeError(f"cov(): {name} cannot be negative")
        weights = w if weights is None else weights * w
    if weights is None:
        weight_sum = x.new_tensor(float(observations))
        average = x.mean(1)
    else:
        weights = weights._cast(x.dtype) if weights.dtype != x.dtype else weights
        weight_sum = weights.sum()
        average = (x * weights).sum(1) / weight_sum
    if weights is None or aweights is None:
        normalizer = weight_sum - correction
    else:
        normalizer = weight_sum - correction * (weights * aweights).sum() / weight_sum
    if float(normalizer) <= 0:
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less "
                      "than the number of observations.", UserWarning, stacklevel=2)
        normalizer = normalizer.clamp_min(0)
    centered = x - average.unsqueeze(1)
    # (vars, vars) = (vars, obs) @ (obs, vars)
    weighted = centered if weights is None else centered * weights
    out = mm(weighted, centered.t()) / normalizer
    return out.squeeze()        # (one variable: a 0-d tensor, as PyTorch's)


def corrcoef(input):
    """Pearson's correlation coefficients of the variables in input's rows: cov divided by
    the outer product of the standard deviations, clipped to [-1, 1]."""
    _check_tensor_argument("corrcoef", "input", 1, input)
    if input.dim() > 2:
        raise RuntimeError(f"corrcoef(): expected input to have two or fewer dimensions but "
                           f"got an input with {input.dim()} dimensions")
    c = cov(input)
    if c.dim() == 0:
        return c / c
    deviation = c.diagonal().sqrt()
    c = c / deviation.unsqueeze(1)
    c = c / deviation.unsqueeze(0)
    return c.clamp(-1, 1)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distance of each row of x1 (..., P, M) to each row of x2 (..., R, M):
    (..., P, R), the leading dims broadcast; floating tensors, p >= 0."""
    _check_tensor_argument("cdist", "x1", 1, x1)
    _check_tensor_argument("cdist", "x2", 2, x2)
    for name, t in (("X1", x1), ("X2", x2)):
        if not t.dtype.is_floating_point:
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: "
                               f"{_legacy_short(t.dtype)}")
        if t.dim() < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: "
                               f"{t.dim()}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values (got {p!r})")
    if x1.dtype != x2.dtype:
        raise RuntimeError(f"cdist: X1 and X2 must have the same dtype, got {x1.dtype} and "
                           f"{x2.dtype}")
    # (..., P, 1, M) - (..., 1, R, M) -> (..., P, R, M), its p-norm over M
    return (x1.unsqueeze(-2) - x2.unsqueeze(-3)).norm(p, -1)


def vander(x, N=None, increasing=False):  # noqa: N803 - PyTorch's name
    """The Vandermonde matrix of a 1-D x: column j is x ** (N - 1 - j) (`increasing`:
    x ** j), N columns (len(x) by default), by running products as PyTorch's; integers and
    bools give int64."""
    _check_tensor_argument("vander", "x", 1, x)
    if x.dim() != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    columns = x.shape[0] if N is None else _args.check_int("vander", "N", N)
    if columns < 0:
        raise RuntimeError("N must be non-negative.")
    source = x if x.dtype.is_floating_point else x.long()
    if columns == 0:
        return source.new_empty(x.shape[0], 0)
    powers = cat([source.new_ones(x.shape[0], 1),
                  source.unsqueeze(1).expand(x.shape[0], columns - 1)], 1).cumprod(1)
    return powers if increasing else powers.flip(1)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoidal rule's integral of y along `dim`, at the points x (a tensor) or a
    spacing dx (1 by default): PyTorch's sums, e.g. trapezoid(tensor([1., 2., 3.])) is 4."""
    return _trapezoid("trapezoid", y, x, dx, dim, running=False)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoidal rule's running integral of y along `dim` (one fewer element)."""
    return _trapezoid("cumulative_trapezoid", y, x, dx, dim, running=True)


def _trapezoid(op, y, x, dx, dim, running):
    _check_tensor_argument(op, "y", 1, y)
    if x is not None and dx is not None:
        raise TypeError(f"{op}(): give the points x or the spacing dx, not both")
    axis = y._axis(dim)
    if not y.dtype.is_floating_point:
        y = y._cast(backend.get_default_dtype())
    n = y.shape[axis] if y.dim() else 1
    if n == 0 or (running and n == 1):
        shape = list(y.shape)
        if running:
            shape[axis] = max(n - 1, 0)
        else:
            del shape[axis]
        return y.new_zeros(shape)
    left, right = y.narrow(axis, 0, n - 1), y.narrow(axis, 1, n - 1)
    if isinstance(x, Tensor):
        if x.dim() == 1:
            if x.shape[0] != n:
                raise RuntimeError(f"{op}: There must be one `x` value for each sample point "
                                   f"(x of {x.shape[0]} for {n} samples)")
            shape = [1] * y.dim()
            shape[axis] = n
            x = x.reshape(shape)
        spacing = x.diff(dim=axis)
        areas = spacing * (left + right)
        return (areas.cumsum(axis) if running else areas.sum(axis)) / 2
    spacing = 1 if dx is None and x is None else (dx if dx is not None else x)
    if running:
        return (left + right).cumsum(axis) * (spacing / 2)
    return (y.sum(axis) - (y.select(axis, 0) + y.select(axis, -1)) * 0.5) * spacing


def combinations(input, r=2, with_replacement=False):
    """The r-element combinations of a 1-D tensor's elements, in order, as rows (with
    `with_replacement`, an element may repeat), e.g. combinations(tensor([1, 2, 3])) is
    [[1, 2], [1, 3], [2, 3]]."""
    _check_tensor_argument("combinations", "input", 1, input)
    if input.dim() != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    r = _args.check_int("combinations", "r", r)
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input.new_empty(0)
    choose = (itertools.combinations_with_replacement if with_replacement
              else itertools.combinations)
    rows = np.array(list(choose(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    return input.index_select(0, _wrap(rows.reshape(-1))).reshape(-1, r)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """beta * input + alpha * outer(vec1, vec2), input broadcast to (n, m)."""
    _check_tensor_argument("addr", "input", 1, input)
    _check_tensor_argument("addr", "vec1", 2, vec1)
    _check_tensor_argument("addr", "vec2", 3, vec2)
    if vec1.dim() != 1 or vec2.dim() != 1:
        raise RuntimeError(f"addr: Expected 1-D argument vec1 and vec2, but got "
                           f"{vec1.dim()}-D and {vec2.dim()}-D")
    return _scaled_sum("addr", input, outer(vec1, vec2), beta, alpha)
