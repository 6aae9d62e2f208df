"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``, as ``torch.nn.utils``.

>>> loss.backward()
>>> total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
>>> opt.step()
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ... import _args
from ...autograd import no_grad
from ...tensor import Tensor, stack, tensor


def _grads(parameters) -> list:
    """The gradients of `parameters` (one tensor or an iterable) that have one."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"clip_grad: 'parameters' must be a tensor or an iterable of tensors, "
                        f"not {_args.type_name(parameters)}") from None
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad: 'parameters' must hold tensors, got "
                            f"{_args.type_name(p)}")
    return [p.grad for p in parameters if p.grad is not None]


def _limit(op: str, name: str, value) -> float:
    """max_norm / clip_value: a number, or a one-element tensor (PyTorch takes float(value))."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{op}: {name} must be a number or a one-element tensor, got a "
                             f"tensor of shape {tuple(value.shape)} (only one element tensors "
                             "can be converted to Python scalars)")
        value = value.item()
    return _args.check_float(op, name, value)


def _check_norm_type(norm_type) -> float:
    if isinstance(norm_type, str):
        if norm_type != "inf":
            raise ValueError(f"clip_grad_norm_: norm_type must be a number or 'inf', got "
                             f"{norm_type!r}")
        return math.inf
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, bool):
        raise TypeError(f"clip_grad_norm_: norm_type must be a number, got "
                        f"{type(norm_type).__name__}")
    return float(norm_type)


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None) -> Tensor:
    """Scale the gradients of `parameters` in place so that their joint `norm_type`-norm
    (the norm of the vector of every gradient's norm; ``inf``: the largest magnitude) is at
    most `max_norm`; returns that norm before clipping, as a 0-d tensor. A non-finite norm
    raises RuntimeError with `error_if_nonfinite`, else scales the gradients by it."""
    grads = _grads(parameters)
    max_norm = _limit("clip_grad_norm_", "max_norm", max_norm)
    norm_type = _check_norm_type(norm_type)
    if not grads:
        return tensor(0.0)
    norms = [g.norm(norm_type) for g in grads]
    dtypes = {n.dtype for n in norms}
    if len(dtypes) > 1:  # stack needs one dtype: the widest, as PyTorch's stack promotes
        norms = [n.double() for n in norms]
    total_norm = stack(norms).norm(norm_type)
    if error_if_nonfinite and not bool(total_norm.isfinite()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`")
    clip_coef = max_norm / (total_norm + 1e-6)
    clip_coef_clamped = clip_coef.clamp(max=1.0)
    with np.errstate(invalid="ignore"):  # a non-finite norm scales inf by 0: NaN, silently
        for g in grads:
            g.mul_(clip_coef_clamped.to(g.dtype))
    return total_norm


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                   foreach=None) -> Tensor:
    """Deprecated alias of `clip_grad_norm_` (PyTorch warns likewise)."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None) -> None:
    """Clamp every gradient of `parameters` to ``[-clip_value, clip_value]`` in place."""
    clip_value = _limit("clip_grad_value_", "clip_value", clip_value)
    for g in _grads(parameters):
        g.clamp_(min=-clip_value, max=clip_value)
