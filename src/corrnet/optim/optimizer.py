"""`Optimizer`: parameter groups, per-parameter state, `zero_grad`, `state_dict`.

An optimizer holds ``param_groups``, a list of dicts: each has ``'params'`` (a list of leaf
tensors) and one value per option (``'lr'``, ...), taken from the group itself or, where the
group leaves it out, from ``defaults``. ``state`` maps each parameter to a dict of what the
algorithm keeps between steps (momentum buffers, moment estimates), made lazily by the first
``step()`` in which the parameter has a gradient.

``state_dict()`` has PyTorch's structure: parameters are replaced by their position counted
across the groups in order, ``{'state': {index: {...}}, 'param_groups': [{..., 'params':
[indices]}]}``. Unlike PyTorch, its state tensors are copies, and ``load_state_dict()`` copies
them again, so that later steps never change a saved dictionary or another optimizer.
"""

from __future__ import annotations

import copy
import functools
import numbers
import warnings
from collections import defaultdict
from collections.abc import Mapping

from ..autograd import enable_grad
from ..tensor import Tensor


class _RequiredParameter:
    """Marks a default that every parameter group must give (PyTorch's ``optim.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_real(owner: str, name: str, value, low=None, high=None, high_open=False) -> None:
    """Raise a TypeError/ValueError naming `name` unless `value` is a real number in range."""
    if not _is_real(value):
        raise TypeError(f"{owner}: `{name}` must be a real number, got {type(value).__name__} "
                        f"{value!r}")
    if value != value:  # NaN
        raise ValueError(f"{owner}: `{name}` must not be NaN")
    if low is not None and value < low:
        raise ValueError(f"{owner}: invalid `{name}` {value}: it must be >= {low}")
    if high is not None and (value >= high if high_open else value > high):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{owner}: invalid `{name}` {value}: it must be {bound}")


def _typename(value) -> str:
    return type(value).__module__ + "." + type(value).__qualname__


class Optimizer:
    """Base class of all optimizers.

    Subclasses pass their options as `defaults`, implement `step()` and may implement
    `_check_group(group, where)` to validate one group's options.

    >>> opt = optim.SGD([{'params': [w]}, {'params': [b], 'lr': 0.5}], lr=0.1)
    >>> [g['lr'] for g in opt.param_groups]
    [0.1, 0.5]
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: `params` must be an iterable of Tensors or of dicts, but got a "
                f"single {_typename(params)}; pass [tensor] or model.parameters()"
            )
        if isinstance(params, dict):
            raise TypeError(f"{name}: `params` must be an iterable of Tensors or of dicts, but "
                            "got a dict; pass a list of parameter groups: [{'params': ...}]")
        if isinstance(params, set):
            raise TypeError(self._set_message("params"))
        try:
            param_groups = list(params)
        except TypeError as err:
            raise TypeError(f"{name}: `params` must be an iterable of Tensors or of dicts, but "
                            f"got {_typename(params)}") from err
        if not param_groups:
            raise ValueError(f"{name}: optimizer got an empty parameter list (`params` is empty)")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs):
        # Mark every call of a subclass's step(), so that a learning-rate scheduler can warn
        # when it is stepped before the optimizer (as PyTorch does).
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_marks_call", False):
            @functools.wraps(step)
            def marked_step(self, *args, **kwargs):
                self._opt_called = True
                return step(self, *args, **kwargs)

            marked_step._marks_call = True
            cls.step = marked_step

    def _set_message(self, name: str) -> str:
        return (f"{type(self).__name__}: `{name}` must be an ordered collection (a list), not a "
                "set: the order of tensors in a set changes between runs")

    # -- groups ----------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (a dict with ``'params'`` and any per-group options) to `param_groups`."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got "
                            f"{_typename(param_group)}")
        if "params" not in param_group:
            raise KeyError(f"{name}: a parameter group must have a 'params' entry")
        where = f"param_groups[{len(self.param_groups)}]"
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(self._set_message(f"{where}['params']"))
        else:
            try:
                params = list(params)
            except TypeError as err:
                raise TypeError(f"{name}: `{where}['params']` must be an iterable of Tensors, "
                                f"got {_typename(params)}") from err
        if not params:
            raise ValueError(f"{name}: `{where}['params']` is an empty parameter list")

        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError(f"{name}: `{where}['params']`: give all parameters with names "
                                 "(as named_parameters() does) or none")
            params = [p[1] for p in params]
            group["param_names"] = names
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: `params` must hold Tensors, but {where}['params'][{i}] "
                                f"is {_typename(p)}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor "
                                 f"({where}['params'][{i}] has grad_fn {p.grad_fn!r}); pass the "
                                 "leaf it was computed from, or .detach().requires_grad_()")
        group["params"] = params

        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group {where} didn't specify a value of the "
                                 f"required optimization parameter `{key}`")
            group.setdefault(key, default)
        self._check_group(group, where)

        ids = [id(p) for p in params]
        if len(ids) != len(set(ids)):
            warnings.warn(f"{name}: {where} contains duplicate parameters; in PyTorch this will "
                          "become an error", UserWarning, stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise ValueError(f"{name}: some parameters of {where} appear in more than one "
                             "parameter group")
        for other in self.param_groups:
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError(f"{name}: all parameter groups should be given with names or "
                                 f"all without; {where} differs from the groups before it")
        self.param_groups.append(group)

    def _check_group(self, group: dict, where: str) -> None:
        """Validate one group's options (subclasses); `where` names the group in messages."""

    # -- steps -----------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (the default, as PyTorch) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    def step(self, closure=None):
        """Update the parameters once; `closure` re-evaluates the model and returns the loss."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    @staticmethod
    def _evaluate(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # -- saving and loading ----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}``.

        Parameters are numbered across the groups in order; the state's tensors are copies.
        """
        mapping: dict[int, int] = {}
        start = 0
        packed_groups = []
        for group in self.param_groups:
            packed = {k: _copy_state(v) for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(group["params"])
            packed_groups.append(packed)
        packed_state = {
            (mapping[id(key)] if isinstance(key, Tensor) else key): _copy_state(value)
            for key, value in self.state.items()
        }
        return {"state": packed_state, "param_groups": packed_groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what `state_dict()` returned (of an optimizer with groups of the same sizes).

        Everything is checked before anything changes (the structure, each group's options as
        the constructor checks them, and each per-parameter state tensor's shape against its
        parameter's), so a refused state dict leaves the optimizer as it was.
        """
        self.state, self.param_groups = self._prepare_load(state_dict)

    def _prepare_load(self, state_dict) -> tuple[defaultdict, list[dict]]:
        """The (state, param_groups) that loading `state_dict` gives, checked; nothing of
        the optimizer changes."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}: `state_dict` must be a dict, got {_typename(state_dict)}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise KeyError(f"{name}: `state_dict` has no '{key}' entry")
        saved_state, raw_groups = state_dict["state"], state_dict["param_groups"]
        if not isinstance(saved_state, Mapping):
            raise TypeError(f"{name}: `state_dict['state']` must be a dict, got "
                            f"{_typename(saved_state)}")
        if not isinstance(raw_groups, (list, tuple)):
            raise TypeError(f"{name}: `state_dict['param_groups']` must be a list of dicts, got "
                            f"{_typename(raw_groups)}")
        seen: set[int] = set()
        for i, group in enumerate(raw_groups):
            if not isinstance(group, Mapping) or "params" not in group:
                raise TypeError(f"{name}: `param_groups[{i}]` must be a dict with a 'params' "
                                f"entry, got {_typename(group)}")
            indices = group["params"]
            if not isinstance(indices, (list, tuple)) or not all(
                    isinstance(k, int) and not isinstance(k, bool) for k in indices):
                raise TypeError(f"{name}: `param_groups[{i}]['params']` must be a list of "
                                "parameter indices (ints)")
            if seen.intersection(indices) or len(set(indices)) != len(indices):
                raise ValueError(f"{name}: `param_groups[{i}]['params']` repeats a parameter "
                                 "index")
            seen.update(indices)
        groups = self.param_groups
        if len(groups) != len(raw_groups):
            raise ValueError(
                f"{name}: loaded state dict has a different number of parameter "
                f"groups: `param_groups` has {len(raw_groups)}, the optimizer {len(groups)}"
            )
        for i, (group, saved) in enumerate(zip(groups, raw_groups, strict=True)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"{name}: loaded state dict contains a parameter group "
                    f"that doesn't match the size of optimizer's group: param_groups[{i}] has "
                    f"{len(saved['params'])} parameters, the optimizer's {len(group['params'])}"
                )
        saved_groups = [_copy_state(dict(saved)) for saved in raw_groups]
        id_map = {}
        for group, saved in zip(groups, saved_groups, strict=True):
            for index, p in zip(saved["params"], group["params"], strict=True):
                id_map[index] = p

        state: defaultdict = defaultdict(dict)
        for key, value in saved_state.items():
            if key not in id_map:
                state[key] = _copy_state(value)
                continue
            param = id_map[key]
            if not isinstance(value, Mapping):
                raise TypeError(f"{name}: `state[{key!r}]` must be a dict, got "
                                f"{_typename(value)}")
            for entry, item in value.items():
                if (isinstance(item, Tensor) and entry != "step" and item.ndim
                        and tuple(item.shape) != tuple(param.shape)):
                    raise ValueError(f"{name}: `state[{key!r}][{entry!r}]` has shape "
                                     f"{tuple(item.shape)}, but its parameter has shape "
                                     f"{tuple(param.shape)}")
            state[param] = _copy_state(dict(value), param)

        new_groups = []
        for i, (group, saved) in enumerate(zip(groups, saved_groups, strict=True)):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for key, default in self.defaults.items():
                if default is not required:
                    saved.setdefault(key, default)
                elif key not in saved:
                    raise ValueError(f"{name}: `param_groups[{i}]` has no value of the required "
                                     f"optimization parameter `{key}`")
            self._check_group(saved, f"param_groups[{i}]")
            new_groups.append(saved)
        return state, new_groups

    # -- display ---------------------------------------------------------------------------------

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            text += "".join(f"    {key}: {group[key]}\n" for key in sorted(group)
                            if key != "params")
        return text + ")"


def _copy_state(value, param: Tensor | None = None, key=None):
    """A copy of one state entry; floating tensors take `param`'s dtype, and every tensor its
    device, as PyTorch's (except 'step', which stays where it was)."""
    if isinstance(value, Tensor):
        value = value.detach().clone()
        if (param is not None and key != "step" and value.is_floating_point()
                and value.dtype != param.dtype):
            value = value.to(param.dtype)
        if param is not None and key != "step" and value.device != param.device:
            value = value.to(param.device)
        return value
    if isinstance(value, dict):
        return {k: _copy_state(v, param, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_state(v, param, key) for v in value)
    return copy.deepcopy(value)
