"""`RemovableHandle`: what every ``register_*hook`` returns (PyTorch's
``torch.utils.hooks.RemovableHandle``)."""

from __future__ import annotations

import itertools

_next_id = itertools.count()


class RemovableHandle:
    """Removes one registered hook: ``handle.remove()``, or leave a ``with handle:`` block.

    >>> hooks = {}
    >>> handle = RemovableHandle(hooks)
    >>> hooks[handle.id] = print
    >>> handle.remove()
    >>> hooks
    {}
    """

    def __init__(self, hooks_dict: dict):
        self.hooks_dict = hooks_dict
        self.id = next(_next_id)
        self._extra_sets: list = []  # e.g. a module's set of hooks registered with_kwargs

    def remove(self) -> None:
        self.hooks_dict.pop(self.id, None)
        for extra in self._extra_sets:
            extra.discard(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
