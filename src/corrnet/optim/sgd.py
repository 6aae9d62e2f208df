"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from ..autograd import no_grad
from .optimizer import Optimizer, check_real


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD`` (its single-tensor algorithm).

    For each parameter with a gradient ``g`` (``-g`` when `maximize`):

    - ``g = g + weight_decay * p``
    - with momentum: ``b = g`` on the first step, then ``b = momentum * b + (1 - dampening) *
      g``; ``g = g + momentum * b`` when `nesterov`, else ``g = b``
    - ``p = p - lr * g``

    The state holds ``'momentum_buffer'`` per parameter when momentum is non-zero.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        self._check_group(defaults, "")
        super().__init__(params, defaults)

    def _check_group(self, group: dict, where: str) -> None:
        owner = "SGD" + (f" {where}" if where else "")
        check_real(owner, "lr", group["lr"], low=0.0)
        check_real(owner, "momentum", group["momentum"], low=0.0)
        check_real(owner, "dampening", group["dampening"])
        check_real(owner, "weight_decay", group["weight_decay"], low=0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"{owner}: `nesterov` momentum requires a `momentum` > 0 and zero `dampening`, "
                f"got momentum={group['momentum']}, dampening={group['dampening']}"
            )
        if group["differentiable"]:
            raise NotImplementedError(f"{owner}: `differentiable`=True is not supported")

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure's loss, if any."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if not group["maximize"] else -p.grad
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = grad.detach().clone()
                        state["momentum_buffer"] = buf
                    else:
                        buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                    grad = grad.add(buf, alpha=momentum) if nesterov else buf
                p.add_(grad, alpha=-lr)
        return loss
