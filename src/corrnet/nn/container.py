"""`Sequential`: modules applied one after another."""

from __future__ import annotations

from collections import OrderedDict

from .module import Module


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

    def forward(self, input):
        for module in self:
            input = module(input)
        return input
