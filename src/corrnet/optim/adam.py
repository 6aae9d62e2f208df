"""Adam and AdamW (decoupled weight decay), with AMSGrad."""

from __future__ import annotations

from .. import backend
from ..autograd import no_grad
from ..tensor import tensor, zeros_like
from .optimizer import Optimizer, check_real


def _lerp_(start, end, weight: float):
    """``start += weight * (end - start)`` in place, in PyTorch's two-sided form (``lerp_``)."""
    if abs(weight) < 0.5:
        return start.add_(end.sub(start).mul(weight))
    return start.copy_(end.sub(end.sub(start).mul(1 - weight)))


class Adam(Optimizer):
    r"""Adam, as ``torch.optim.Adam`` (its single-tensor algorithm).

    For each parameter with a gradient ``g`` (``-g`` when `maximize`), at step ``t``:

    - weight decay: ``g = g + weight_decay * p``, or, when `decoupled_weight_decay` (AdamW),
      ``p = p * (1 - lr * weight_decay)``
    - ``m = lerp(m, g, 1 - beta1)``; ``v = beta2 * v + (1 - beta2) * g * g``
    - with `amsgrad`: ``v_max = max(v_max, v)`` is used in place of ``v`` below
    - ``p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``

    The state holds ``'step'`` (a 0-d float tensor), ``'exp_avg'``, ``'exp_avg_sq'`` and, with
    `amsgrad`, ``'max_exp_avg_sq'`` per parameter.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        self._check_group(defaults, "")
        super().__init__(params, defaults)

    def _check_group(self, group: dict, where: str) -> None:
        owner = type(self).__name__ + (f" {where}" if where else "")
        check_real(owner, "lr", group["lr"], low=0.0)
        check_real(owner, "eps", group["eps"], low=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{owner}: `betas` must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            check_real(owner, f"betas[{i}]", beta, low=0.0, high=1.0, high_open=True)
        if not all(isinstance(beta, float) for beta in betas):  # PyTorch refuses (0, 0.9) too
            raise ValueError(f"{owner}: betas must be either both floats or both Tensors, got "
                             f"{betas!r}")
        check_real(owner, "weight_decay", group["weight_decay"], low=0.0)
        if group["differentiable"]:
            raise NotImplementedError(f"{owner}: `differentiable`=True is not supported")

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure's loss, if any."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            amsgrad = group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    dtype = backend.float64 if backend.get_default_dtype() == backend.float64 \
                        else backend.float32
                    state["step"] = tensor(0.0, dtype=dtype)
                    state["exp_avg"] = zeros_like(p)
                    state["exp_avg_sq"] = zeros_like(p)
                grad = p.grad if not group["maximize"] else -p.grad
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                step_t = state["step"]
                step_t.add_(1)

                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        p.mul_(1 - lr * weight_decay)
                    else:
                        grad = grad.add(p, alpha=weight_decay)
                _lerp_(exp_avg, grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).add_(grad.mul(1 - beta2).mul(grad))

                step = step_t.item()
                bias_correction1 = 1 - beta1**step
                bias_correction2_sqrt = (1 - beta2**step) ** 0.5
                step_size = lr / bias_correction1
                if amsgrad:
                    if "max_exp_avg_sq" not in state:  # also when amsgrad is switched on later
                        state["max_exp_avg_sq"] = zeros_like(p)
                    max_exp_avg_sq = state["max_exp_avg_sq"]
                    max_exp_avg_sq.copy_(max_exp_avg_sq.maximum(exp_avg_sq))
                    second = max_exp_avg_sq
                else:
                    second = exp_avg_sq
                denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
                p.add_(exp_avg.mul(-step_size).div(denom))
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (``p *= 1 - lr * weight_decay`` before the update), as
    ``torch.optim.AdamW``; its default `weight_decay` is 1e-2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
