"""RMSprop (with momentum and the centered variant) and Adagrad."""

from __future__ import annotations

from .. import backend
from ..autograd import no_grad
from ..tensor import full_like, tensor, zeros_like
from .adam import _lerp_
from .optimizer import Optimizer, check_real


def _step_counter():
    """A parameter's step count: a 0-d float tensor, float64 under a float64 default dtype
    (as PyTorch's optimizers keep it)."""
    dtype = backend.float64 if backend.get_default_dtype() == backend.float64 \
        else backend.float32
    return tensor(0.0, dtype=dtype)


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop`` (its single-tensor algorithm).

    For each parameter with a gradient ``g`` (``-g`` when `maximize`):

    - ``g = g + weight_decay * p``
    - ``v = alpha * v + (1 - alpha) * g * g``
    - centered: ``m = lerp(m, g, 1 - alpha)`` and ``avg = sqrt(v - m * m) + eps``; else
      ``avg = sqrt(v) + eps``
    - with momentum: ``b = momentum * b + g / avg`` and ``p = p - lr * b``; else
      ``p = p - lr * g / avg``

    The state holds ``'step'``, ``'square_avg'``, and ``'momentum_buffer'`` (momentum > 0),
    ``'grad_avg'`` (centered) per parameter.

    >>> opt = optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9, momentum=0.5)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, capturable=capturable,
                        foreach=foreach, maximize=maximize, differentiable=differentiable)
        self._check_group(defaults, "")
        super().__init__(params, defaults)

    def _check_group(self, group: dict, where: str) -> None:
        owner = "RMSprop" + (f" {where}" if where else "")
        for name in ("lr", "eps", "momentum", "weight_decay", "alpha"):
            check_real(owner, name, group[name], low=0.0)
        if group["differentiable"]:
            raise NotImplementedError(f"{owner}: `differentiable`=True is not supported")

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure's loss, if any."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum, centered = (group["weight_decay"], group["momentum"],
                                                group["centered"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = _step_counter()
                    state["square_avg"] = zeros_like(p)
                    if momentum > 0:
                        state["momentum_buffer"] = zeros_like(p)
                    if centered:
                        state["grad_avg"] = zeros_like(p)
                grad = p.grad if not group["maximize"] else -p.grad
                state["step"].add_(1)
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                square_avg = state["square_avg"]
                square_avg.mul_(alpha).add_(grad.mul(1 - alpha).mul(grad))
                if centered:
                    grad_avg = state["grad_avg"]
                    _lerp_(grad_avg, grad, 1 - alpha)
                    avg = square_avg.sub(grad_avg.mul(grad_avg)).sqrt()
                else:
                    avg = square_avg.sqrt()
                avg = avg.add_(eps)
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).add_(grad.div(avg))
                    p.add_(buf, alpha=-lr)
                else:
                    p.add_(grad.div(avg).mul(-lr))
        return loss


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad`` (its single-tensor algorithm).

    For each parameter with a gradient ``g`` (``-g`` when `maximize`), at step ``t``:

    - ``g = g + weight_decay * p``
    - ``clr = lr / (1 + (t - 1) * lr_decay)``
    - ``s = s + g * g`` (``s`` starts at `initial_accumulator_value`)
    - ``p = p - clr * g / (sqrt(s) + eps)``

    The state (``'step'`` and ``'sum'`` per parameter) is made by the constructor, as
    PyTorch's.

    >>> opt = optim.Adagrad(model.parameters(), lr=0.1, lr_decay=1e-3)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        self._check_group(defaults, "")
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _step_counter()
                state["sum"] = full_like(p, group["initial_accumulator_value"])

    def _check_group(self, group: dict, where: str) -> None:
        owner = "Adagrad" + (f" {where}" if where else "")
        for name in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_real(owner, name, group[name], low=0.0)
        if group["differentiable"]:
            raise NotImplementedError(f"{owner}: `differentiable`=True is not supported")

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure's loss, if any."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # a parameter group added after construction
                    state["step"] = _step_counter()
                    state["sum"] = full_like(p, group["initial_accumulator_value"])
                grad = p.grad if not group["maximize"] else -p.grad
                state["step"].add_(1)
                step = state["step"].item()
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                clr = lr / (1 + (step - 1) * lr_decay)
                state_sum = state["sum"]
                state_sum.add_(grad.mul(grad))
                std = state_sum.sqrt().add_(eps)
                p.add_(grad.div(std).mul(-clr))
        return loss
