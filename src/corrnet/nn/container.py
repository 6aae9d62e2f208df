"""Containers: `Sequential` (modules applied one after another), `ModuleList`, `ModuleDict`,
`ParameterList` and `ParameterDict` (sub-modules and parameters registered under their index
or key, so that ``parameters()`` and ``state_dict()`` find them: keys ``0.weight``, ...)."""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Mapping

from ..tensor import Tensor
from . import _fusion
from .module import Module
from .parameter import Parameter


class Sequential(Module):
    """Chain modules: ``Sequential(a, b)(x) == b(a(x))``; indexable, sliceable, iterable.

    >>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.MaxPool2d(2))
    >>> net(corrnet.rand(1, 1, 28, 28)).shape
    torch.Size([1, 6, 14, 14])
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"index {index} is out of range for a Sequential of {len(items)} "
                             "modules")
        return items[index][1]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    # list operations, as PyTorch's: a deletion or insertion renumbers the keys '0', '1', ...

    def __setitem__(self, index, module: Module) -> None:
        key = list(self._modules)[_index(index, len(self))]
        self.add_module(key, module)

    def __delitem__(self, index) -> None:
        modules = list(self._modules.values())
        del modules[index if isinstance(index, slice) else _index(index, len(self))]
        _renumber(self, modules)

    def insert(self, index: int, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        modules = list(self._modules.values())
        modules.insert(index, module)
        _renumber(self, modules)
        return self

    def extend(self, modules) -> Sequential:
        for module in list(modules):
            self.append(module)
        return self

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def __add__(self, other) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError("add operator supports only objects of Sequential class, but "
                             f"{type(other)} is given.")
        return Sequential(*self, *other)

    def __iadd__(self, other) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError("add operator supports only objects of Sequential class, but "
                             f"{type(other)} is given.")
        return self.extend(other)

    def forward(self, input):
        # Conv2d -> Sigmoid/ReLU (-> AvgPool2d) runs without hooks are fused (see _fusion)
        return _fusion.forward_sequence(list(self._modules.values()), input)


def _renumber(container: Module, modules: list) -> None:
    """Register `modules` under the keys '0', '1', ... in order (after a deletion or an
    insertion), as PyTorch's Sequential and ModuleList do."""
    container._modules.clear()
    for position, module in enumerate(modules):
        container._modules[str(position)] = module


def _items(owner: str, value) -> list:
    """The items of an iterable argument, or a TypeError naming the container."""
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{owner} should be called with an iterable, but got "
                        f"{type(value).__name__}") from None


def _index(index, length: int) -> int:
    """A non-negative position for an int `index` into a container of `length` items."""
    try:
        index = operator.index(index)
    except TypeError:
        raise TypeError(f"indices must be integers or slices, not "
                        f"{type(index).__name__}") from None
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range")
    return index + length if index < 0 else index


class ModuleList(Module):
    """A list of sub-modules, registered under their positions ``'0'``, ``'1'``, ...

    >>> layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
    >>> layers.append(nn.ReLU())
    ModuleList(
      (0-1): 2 x Linear(in_features=4, out_features=4, bias=True)
      (2): ReLU()
    )
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[str(_index(index, len(self)))]

    def __setitem__(self, index, module) -> None:
        self.add_module(str(_index(index, len(self))), module)

    def __delitem__(self, index) -> None:
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [
            keys[_index(index, len(self))]]
        for key in doomed:
            del self._modules[key]
        _renumber(self, list(self._modules.values()))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other) -> ModuleList:
        # any iterable of modules, as PyTorch's (a list too)
        return ModuleList([*self, *_items("ModuleList.__add__", other)])

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> ModuleList:
        if isinstance(modules, (Module, Tensor)) and not isinstance(modules, ModuleList):
            raise TypeError("ModuleList.extend should be called with an iterable, but got "
                            f"{type(modules).__name__}")
        for module in _items("ModuleList.extend", modules):
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        modules = list(self._modules.values())
        modules.insert(index, module)
        _renumber(self, modules)

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList is not callable: iterate over it in your "
                                  "module's forward")

    def __repr__(self) -> str:
        """As PyTorch: runs of equal modules are printed once, ``(0-2): 3 x Linear(...)``."""
        reprs = [repr(module) for module in self]
        if not reprs:
            return "ModuleList()"
        runs = []  # [first, last, text]
        for position, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = position
            else:
                runs.append([position, position, text])
        lines = []
        for first, last, text in runs:
            label = f"({first})" if first == last else f"({first}-{last}): {last - first + 1} x"
            line = f"{label}: {text}" if first == last else f"{label} {text}"
            lines.append(line.replace("\n", "\n  "))
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered dict of sub-modules, registered under their keys.

    >>> heads = nn.ModuleDict({"cls": nn.Linear(8, 10), "box": nn.Linear(8, 4)})
    >>> list(heads.state_dict())[:2]
    ['cls.weight', 'cls.bias']
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def update(self, modules) -> None:
        """Add (key, module) pairs from a mapping or an iterable of pairs."""
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else \
            _items("ModuleDict.update", modules)
        for position, pair in enumerate(pairs):
            if isinstance(modules, (Mapping, ModuleDict)):
                key, module = pair
            else:
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise TypeError(f"ModuleDict update sequence element #{position} should be "
                                    "a (key, module) pair, got "
                                    f"{type(pair).__name__}")
                key, module = pair
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict is not callable: index it in your module's "
                                  "forward")


def _as_parameter(value):
    """PyTorch's containers turn a plain tensor into a Parameter (sharing its memory)."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


def _parameter_line(key, param, dtype_style: str) -> str:
    """One line of a ParameterList / ParameterDict repr, as PyTorch prints it."""
    from ..tensor import _LEGACY_NAMES

    if not isinstance(param, Tensor):
        return f"  ({key}): Object of type: {type(param).__name__}"
    size = "x".join(str(n) for n in param.shape)
    kind = "Parameter containing" if isinstance(param, Parameter) else "Tensor containing"
    dtype = (f"torch.{_LEGACY_NAMES[param.dtype.name]}" if dtype_style == "legacy"
             else f"torch.{param.dtype.name}")
    return f"  ({key}): {kind}: [{dtype} of size {size}]"


class ParameterList(Module):
    """A list of parameters, registered under their positions (state_dict keys '0', '1', ...);
    plain tensors are made Parameters.

    >>> nn.ParameterList([nn.Parameter(corrnet.ones(3, 3)), corrnet.zeros(3)])
    ParameterList(
        (0): Parameter containing: [torch.float32 of size 3x3]
        (1): Parameter containing: [torch.float32 of size 3]
    )
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._parameters.values())[index])
        return self._parameters[str(_index(index, len(self)))]

    def __setitem__(self, index, param) -> None:
        self.register_parameter(str(_index(index, len(self))),
                                _as_parameter(param))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values) -> ParameterList:
        return self.extend(values)

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values) -> ParameterList:
        if isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable, but got "
                            f"{type(values).__name__}")
        for value in _items("ParameterList.extend", values):
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(_parameter_line(key, param, "dtype")
                         for key, param in self._parameters.items())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList is not callable")


class ParameterDict(Module):
    """A dict of parameters, registered under their keys; plain tensors are made Parameters.
    As PyTorch, a plain dict's items are added in sorted key order (an OrderedDict's in its own).

    >>> nn.ParameterDict({"w": nn.Parameter(corrnet.ones(2)), "b": corrnet.zeros(1)})
    ParameterDict(
        (b): Parameter containing: [torch.FloatTensor of size 1]
        (w): Parameter containing: [torch.FloatTensor of size 2]
    )
    """

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str):
        return self._parameters[key]

    def __setitem__(self, key: str, value) -> None:
        if not isinstance(key, str):
            raise TypeError(f"Index given to ParameterDict cannot be used as a key as it is not "
                            f"a string (type is '{type(key).__name__}')")
        if "." in key or not key:  # (PyTorch's KeyError, as Module.register_parameter)
            raise KeyError(f"parameter name can't contain \".\" or be empty, got {key!r}")
        self.register_parameter(key, _as_parameter(value))

    def __delitem__(self, key: str) -> None:
        del self._parameters[key]

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key) -> bool:
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def get(self, key: str, default=None):
        return self._parameters.get(key, default)

    def pop(self, key: str):
        value = self[key]
        del self[key]
        return value

    def clear(self) -> None:
        self._parameters.clear()

    def update(self, parameters) -> None:
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = list(parameters.items())
        elif isinstance(parameters, Mapping):
            pairs = sorted(parameters.items())
        else:
            pairs = _items("ParameterDict.update", parameters)
        for key, value in pairs:
            self[key] = value

    def extra_repr(self) -> str:
        return "\n".join(_parameter_line(key, param, "legacy")
                         for key, param in self._parameters.items())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterDict is not callable")
