"""`Module`: the base of every layer and network.

Assigning a `Parameter` or a `Module` to an attribute registers it, so that `parameters()`,
`state_dict()`, `zero_grad()` and `train()`/`eval()` find it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from .. import backend, devices
from ..tensor import Tensor, _check_device, device, no_grad
from .hooks import RemovableHandle, _BackwardHook, _register_hook
from .parameter import Parameter, _raw, is_lazy


class Module:
    """Base class of layers: subclass it, assign parameters and sub-modules in ``__init__``
    (after ``super().__init__()``) and define ``forward``."""

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "training", True)
        for table in _HOOK_TABLES:
            object.__setattr__(self, table, OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks_with_kwargs", set())
        object.__setattr__(self, "_forward_hooks_with_kwargs", set())

    # -- registration --------------------------------------------------------------------------

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__ and isinstance(value, (Parameter, Module)):
            raise AttributeError(
                f"cannot assign {type(value).__name__} '{name}' before Module.__init__() call "
                f"(call super().__init__() first in {type(self).__name__}.__init__)"
            )
        params = self.__dict__.get("_parameters", {})
        if name in params and value is not None and not isinstance(value, Parameter):
            raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                            "(corrnet.nn.Parameter or None expected)")
        buffers = self.__dict__.get("_buffers", {})
        if name in buffers and not isinstance(value, (Parameter, Module)):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(corrnet.Tensor or None expected)")
            buffers[name] = value  # stays a buffer (``self.running_mean = x.to(device)``)
            return
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__.get(registry, {}).pop(name, None)
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)  # e.g. ``self.bias = None`` assigned before
            self._parameters[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            self._modules[name] = value
        elif name in self.__dict__.get("_parameters", {}) and value is None:
            self._parameters[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, {}):
                del self.__dict__[registry][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def _check_name(self, name, what: str, registry: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call (call "
                                 f"super().__init__() first in {type(self).__name__}.__init__)")
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string. Got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{what} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{what} name can\'t contain ".", got: {name}')
        if hasattr(self, name) and name not in self.__dict__[registry]:
            raise KeyError(f"attribute '{name}' already exists")

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is part of the module's state but not a parameter (e.g.
        BatchNorm's running_mean). Non-persistent buffers are left out of state_dict."""
        self._check_name(name, "buffer", "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(corrnet.Tensor or None required)")
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a sub-module under `name` (as ``setattr(self, name, module)``)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module", "_modules")
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules[name] = module

    register_module = add_module

    # -- traversal -----------------------------------------------------------------------------

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """(dotted name, module) for this module ('') and every sub-module, depth first."""
        memo = set() if memo is None else memo
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                                remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, param in module._parameters.items():
                if param is None or param in seen:
                    continue
                seen.add(param)
                yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_prefix}.{name}" if module_prefix else name), buffer

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # -- behaviour -----------------------------------------------------------------------------

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  "\"forward\" function")

    def __call__(self, *args, **kwargs):
        """Run ``forward`` with this module's hooks around it (as PyTorch, hooks fire on a
        call of the module, not on a direct call of ``forward``)."""
        hooks = self.__dict__
        if not (hooks.get("_forward_pre_hooks") or hooks.get("_forward_hooks")
                or hooks.get("_backward_hooks") or hooks.get("_backward_pre_hooks")):
            return self.forward(*args, **kwargs)
        for hook_id, hook in list(hooks["_forward_pre_hooks"].items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:  # a returned value replaces the input
                    args = result if isinstance(result, tuple) else (result,)
        backward_hook = None
        if hooks["_backward_hooks"] or hooks["_backward_pre_hooks"]:
            backward_hook = _BackwardHook(self, list(self._backward_hooks.values()),
                                          list(self._backward_pre_hooks.values()))
            args = backward_hook.setup_input_hook(args)
        result = self.forward(*args, **kwargs)
        for hook_id, hook in list(hooks["_forward_hooks"].items()):
            if hook_id in self._forward_hooks_with_kwargs:
                hook_result = hook(self, args, kwargs, result)
            else:
                hook_result = hook(self, args, result)
            if hook_result is not None:  # a returned value replaces the output
                result = hook_result
        if backward_hook is not None:
            result = backward_hook.setup_output_hook(result)
        return result

    # -- hooks ---------------------------------------------------------------------------------

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward (``hook(module, args, kwargs)``
        with `with_kwargs`); a value it returns replaces the input (args, or (args, kwargs)).

        >>> layer = nn.Identity()
        >>> handle = layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        >>> layer(corrnet.ones(2))
        tensor([2., 2.])
        >>> handle.remove()
        """
        handle = _register_hook(self._forward_pre_hooks, hook, prepend)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
            handle._extra_sets.append(self._forward_pre_hooks_with_kwargs)
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward (``hook(module, args,
        kwargs, output)`` with `with_kwargs`); a value it returns replaces the output.

        >>> shapes = []
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        >>> with net[0].register_forward_hook(lambda m, args, out: shapes.append(out.shape)):
        ...     _ = net(corrnet.ones(2, 4))
        >>> shapes
        [torch.Size([2, 3])]
        """
        handle = _register_hook(self._forward_hooks, hook, prepend)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
            handle._extra_sets.append(self._forward_hooks_with_kwargs)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when the gradients with respect to the module's
        outputs are computed; a tuple it returns replaces grad_output.

        >>> layer = nn.Identity()
        >>> handle = layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
        >>> x = corrnet.ones(2, requires_grad=True)
        >>> layer(x).sum().backward()
        >>> x.grad
        tensor([3., 3.])
        """
        return _register_hook(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to
        the module's inputs are computed (tuples of tensors, None where an input is not a
        tensor or needs no gradient); a tuple it returns replaces grad_input.

        >>> layer = nn.Linear(3, 2)
        >>> handle = layer.register_full_backward_hook(
        ...     lambda m, grad_input, grad_output: print(grad_input[0].shape, grad_output[0].shape))
        >>> layer(corrnet.ones(4, 3, requires_grad=True)).sum().backward()
        torch.Size([4, 3]) torch.Size([4, 2])
        """
        return _register_hook(self._backward_hooks, hook, prepend)

    def register_backward_hook(self, hook) -> RemovableHandle:
        raise NotImplementedError("register_backward_hook (deprecated in PyTorch): use "
                                  "register_full_backward_hook")

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.zero_()

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module (children first), then on self; return
        self. Typical use: ``net.apply(init_weights)``."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _apply_to_tensors(self, convert) -> Module:
        """Convert every parameter, gradient and buffer in place: parameters stay the same
        objects (optimizers holding them keep working)."""
        for module in self.modules():
            for param in list(module._parameters.values()) + list(module._buffers.values()):
                if is_lazy(param):  # only its dtype can change
                    object.__setattr__(param, "_data", convert(_raw(param)))
            for param in module._parameters.values():
                if param is None or is_lazy(param):
                    continue
                param._data = convert(param._data)
                if param.grad is not None:
                    param.grad._data = convert(param.grad._data)
            for buffer in module._buffers.values():
                if buffer is not None and not is_lazy(buffer):
                    buffer._data = convert(buffer._data)
        return self

    def to(self, *args, **kwargs) -> Module:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(tensor)``: convert the
        floating point parameters and buffers in place. corrnet computes on the CPU: 'cpu'
        is accepted, 'cuda' refused with a clear error."""
        dtype = kwargs.pop("dtype", None)
        target_device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, (str, device)):
                target_device = arg
            elif isinstance(arg, bool) or arg is None:  # non_blocking
                continue
            else:
                dtype = arg
        if target_device is not None:
            try:
                target_device = _check_device(target_device)
            except RuntimeError as err:
                raise RuntimeError(f"{type(self).__name__}.to({str(target_device)!r}): "
                                   f"{err}") from None
        if dtype is not None:
            dtype = backend.as_dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError("nn.Module.to only accepts floating point dtypes, but got "
                                f"desired dtype={dtype}")
        if dtype is None and target_device is None:
            return self
        target = None if dtype is None else dtype.numpy

        def convert(array):
            if target is not None and array.dtype.kind == "f":
                array = array.astype(target)
            return array if target_device is None else devices.to_device(array, target_device)

        return self._apply_to_tensors(convert)

    def float(self) -> Module:
        return self.to(backend.float32)

    def double(self) -> Module:
        return self.to(backend.float64)

    def half(self) -> Module:
        return self.to(backend.float16)

    def type(self, dst_type) -> Module:
        """Convert every parameter and buffer (integer ones too) to `dst_type`."""
        target = backend.as_dtype(dst_type).numpy
        return self._apply_to_tensors(lambda array: array.astype(target))

    def cuda(self, device=None) -> Module:
        """Move every parameter and buffer (and gradient) to CUDA device `device` (None: the
        current one), in place, as PyTorch's ``Module.cuda``."""
        target = devices.cuda_device(device, f"{type(self).__name__}.cuda()")
        return self._apply_to_tensors(lambda array: devices.to_device(array, target))

    def cpu(self) -> Module:
        """Move every parameter and buffer (and gradient) to host memory, in place."""
        return self._apply_to_tensors(devices.to_host)

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """Parameters and buffers by dotted name (tensors detached unless keep_vars)."""
        state = OrderedDict() if destination is None else destination
        for name, tensor in self._state_entries(prefix.rstrip(".")):
            state[name] = tensor if keep_vars or is_lazy(tensor) else tensor.detach()
        return state

    def _state_entries(self, prefix: str = ""):
        """The state dict's entries in PyTorch's order: each module's parameters, then its
        persistent buffers, then its children's (a parameter shared by two modules once)."""
        seen = set()
        for module_prefix, module in self.named_modules(prefix=prefix):
            for name, param in module._parameters.items():
                if param is not None and param not in seen:
                    seen.add(param)
                    yield (f"{module_prefix}.{name}" if module_prefix else name), param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers_set:
                    yield (f"{module_prefix}.{name}" if module_prefix else name), buffer

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into this module's parameters and buffers, checking names and shapes.

        As PyTorch: `state_dict` must be a mapping whose values are tensors (a list, a NumPy
        array or a number is refused) of the parameters' shapes; their dtypes are cast to the
        parameters'. Unlike PyTorch, every entry is checked before anything is copied, so a
        refused state dict leaves the module exactly as it was.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        own = dict(self._state_entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if is_lazy(value) and not is_lazy(target):
                value.shape  # noqa: B018 (PyTorch's RuntimeError: an uninitialized value)
            if not isinstance(value, Tensor):
                problems.append(
                    f'While copying the parameter named "{name}", expected torch.Tensor or '
                    f"Tensor-like object from checkpoint but received {type(value)}"
                )
            elif is_lazy(target) or is_lazy(value):
                continue  # an uninitialized target takes the value's shape (materialized below)
            elif value._data.shape != target._data.shape:
                problems.append(
                    f"size mismatch for {name}: copying a param with shape "
                    f"{tuple(value.shape)} from checkpoint, the shape in current model is "
                    f"{tuple(target.shape)}."
                )
        if strict and (missing or unexpected):
            if missing:
                problems.insert(0, "Missing key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                problems.insert(0, "Unexpected key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if problems:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(problems)
            )
        # every entry is a tensor of the right shape: the copies below cannot fail
        with no_grad():
            for name, target in own.items():
                value = state_dict.get(name)
                if value is None or is_lazy(value):
                    continue
                if is_lazy(target):  # PyTorch's lazy load hook: materialize, then copy
                    target.materialize(tuple(value.shape))
                target.copy_(value)
        return _IncompatibleKeys(missing, unexpected)

    # -- printing ------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra_lines = self.extra_repr().split("\n") if self.extra_repr() else []
        child_lines = [
            f"({name}): " + repr(module).replace("\n", "\n  ")
            for name, module in self._modules.items()
        ]
        if len(extra_lines) == 1 and not child_lines:
            return f"{type(self).__name__}({extra_lines[0]})"
        lines = extra_lines + child_lines
        body = "\n  " + "\n  ".join(lines) + "\n" if lines else ""
        return f"{type(self).__name__}({body})"


_HOOK_TABLES = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks",
                "_backward_pre_hooks")


class _IncompatibleKeys(tuple):
    def __new__(cls, missing_keys, unexpected_keys):
        result = tuple.__new__(cls, (missing_keys, unexpected_keys))
        result.missing_keys, result.unexpected_keys = missing_keys, unexpected_keys
        return result

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")
