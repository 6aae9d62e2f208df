"""The gradient audit (issue 11, item 2): every public op of corrnet against PyTorch 2.13.

Every public name — each attribute defined on ``corrnet.Tensor`` (operators included), each
function of ``corrnet`` and of ``corrnet.nn.functional`` — is listed by introspection and
must appear in exactly one of four tables below, so that a new op cannot slip through:

* `GRAD`: differentiable ops. Each case runs in corrnet and in PyTorch on the same inputs
  (float32 and float64) and compares values, dtypes, ``requires_grad`` and the gradient of
  every input for a random upstream gradient (``helpers.check_op``); in float64 corrnet's
  gradient is also checked against central finite differences of corrnet's own forward.
* `REFUSED`: ops that PyTorch records but cannot differentiate (``//``, ``2 % x``): the
  forward agrees, and a backward pass through them raises PyTorch's RuntimeError.
* `NO_GRAD`: ops whose result does not require grad in PyTorch (comparisons, argmax, casts
  to integers, ``detach``): the result agrees and does not require grad either.
* `EXEMPT`: names that take no tensor to differentiate or return no tensor (creation,
  properties, conversions to Python values, the engine itself), each with its reason.

Cases are small (a few dozen elements) so that the whole audit runs in seconds.
"""

from __future__ import annotations

import inspect
import math
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch as tt
import torch.nn.functional as tF
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corrnet as ct
from corrnet.nn import functional as cF

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import check_op, oracle_settings, to_numpy
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import check_op, oracle_settings, to_numpy

from torch_compare import assert_scaled_close, on_test_device

# ---------------------------------------------------------------------------------------------
# inputs: a shape is a float input drawn from (-2, 2); the wrappers choose other domains
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    shape: tuple
    kind: str  # 'positive', 'distinct', 'int', 'bool', 'away' (fractions away from 0 and 1),
    #            'const' (a float input that does not require grad), 'labels:C' (int64 < C)


def P(*shape):
    return Arg(shape, "positive")


def D(*shape):
    return Arg(shape, "distinct")


def I(*shape):  # noqa: E743 - the int input of a case
    return Arg(shape, "int")


def B(*shape):
    return Arg(shape, "bool")


def A(*shape):
    return Arg(shape, "away")


def K(*shape):
    return Arg(shape, "const")


def KP(*shape):
    return Arg(shape, "const positive")


def L(classes, *shape):
    return Arg(shape, f"labels:{classes}")


def _array(rng, spec, dtype):
    if not isinstance(spec, Arg):
        spec = Arg(tuple(spec), "real")
    shape, kind = spec.shape, spec.kind
    if kind in ("positive", "const positive"):
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    if kind == "distinct":
        n = math.prod(shape)
        return ((rng.permutation(n) - n / 2) / 4).reshape(shape).astype(dtype)
    if kind == "int":
        return rng.integers(0, 4, shape).astype(np.int64)
    if kind == "bool":
        return rng.random(shape) < 0.5
    if kind == "away":  # x = k + f with f in (0.2, 0.8): % and // are smooth there
        return (rng.integers(-3, 3, shape) + rng.uniform(0.2, 0.8, shape)).astype(dtype)
    if kind.startswith("labels:"):
        return rng.integers(0, int(kind.split(":")[1]), shape).astype(np.int64)
    return rng.uniform(-2.0, 2.0, shape).astype(dtype)


@dataclass
class Case:
    """``fn(m, F, *inputs)`` with m = corrnet or torch and F their nn.functional."""

    fn: Callable
    args: tuple
    torch_fn: Callable | None = None  # when PyTorch spells the op differently
    fd: bool = True  # also check against finite differences (float64)
    dtypes: tuple = ("float32", "float64")


def C(fn, *args, **kwargs):
    return Case(fn, args, **kwargs)


def _ct_tensor(m, data):
    return m.tensor(data)


# corrnet-only 2-D filters, written with PyTorch's conv2d
def _torch_corr2d(m, F, x, k):
    return F.conv2d(x[None, None], k[None, None])[0, 0]


def _torch_convolve2d(m, F, x, k):
    return F.conv2d(x[None, None], k.flip(0, 1)[None, None])[0, 0]


def _minus_detached(y):
    """Zero, with the gradient of y: compares the gradients of ops with random values."""
    return y - y.detach()


def _on_view(x, modify):
    """An in-place op on a view (row 1) of a non-leaf tensor: the base's graph changes."""
    y = x * 1
    modify(y[1])
    return y


def _inplace(method, *args, **kwargs):
    """``x.clone().method(*args)``: an in-place op on a non-leaf tensor."""

    def fn(m, F, x, *tensors):
        y = x.clone()
        getattr(y, method)(*tensors, *args, **kwargs)
        return y

    return fn


def _setitem(index):
    def fn(m, F, x, value):
        y = x.clone()
        y[index] = value
        return y

    return fn


def _iop(op):
    """``y = x.clone(); y <op>= other``: the augmented assignment operators."""

    def fn(m, F, x, other):
        y = x.clone()
        if op == "+":
            y += other
        elif op == "-":
            y -= other
        elif op == "*":
            y *= other
        elif op == "/":
            y /= other
        elif op == "%":
            y %= other
        elif op == "**":
            y **= other
        elif op == "//":
            y //= other
        return y

    return fn


# ---------------------------------------------------------------------------------------------
# the differentiable ops
# ---------------------------------------------------------------------------------------------

BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 1), (4,)), ((2, 3, 4), (1, 4))]


def _binary(op):
    return [C(op, a, b) for a, b in BINARY_SHAPES]


GRAD: dict[str, list[Case]] = {
    "Tensor.T": [C(lambda m, F, x: x.T, (3, 4))],
    "Tensor.mT": [C(lambda m, F, x: x.mT, (2, 3, 4))],
    "Tensor.__abs__": [C(lambda m, F, x: abs(x), (3, 4))],
    "Tensor.abs": [C(lambda m, F, x: x.abs(), (3, 4))],
    "corrnet.abs": [C(lambda m, F, x: m.abs(x), (3, 4))],
    # (piecewise constant: a zero gradient; inputs scaled so no cell sits on a step)
    **{f"Tensor.{op}": [C(lambda m, F, x, op=op: getattr(x * 3 + 0.25, op)(), (3, 4))]
       for op in ("round", "floor", "ceil", "trunc")},
    **{f"corrnet.{op}": [C(lambda m, F, x, op=op: getattr(m, op)(x * 3 + 0.25), (3, 4))]
       for op in ("round", "floor", "ceil", "trunc")},
    "Tensor.__add__": _binary(lambda m, F, x, y: x + y) + [C(lambda m, F, x: x + 2, (3,))],
    "Tensor.__radd__": [C(lambda m, F, x: 2.5 + x, (3, 4))],
    "Tensor.add": [C(lambda m, F, x, y: x.add(y, alpha=2), (3, 1), (4,))],
    "corrnet.add": [C(lambda m, F, x, y: m.add(x, y, alpha=-0.5), (3, 4), (4,))],
    "Tensor.add_": [C(_inplace("add_", alpha=0.5), (3, 4), (4,)),
                    C(_inplace("add_"), (3, 4), (3, 4))],
    "Tensor.__iadd__": [C(_iop("+"), (3, 4), (4,))],
    "Tensor.__sub__": _binary(lambda m, F, x, y: x - y),
    "Tensor.__rsub__": [C(lambda m, F, x: 2 - x, (3, 4))],
    "Tensor.sub": [C(lambda m, F, x, y: x.sub(y, alpha=3), (3, 4), (4,))],
    "corrnet.sub": [C(lambda m, F, x, y: m.sub(x, y), (3, 4), (4,))],
    "Tensor.sub_": [C(_inplace("sub_", alpha=2), (3, 4), (4,))],
    "Tensor.__isub__": [C(_iop("-"), (3, 4), (4,))],
    "Tensor.__mul__": _binary(lambda m, F, x, y: x * y),
    "Tensor.__rmul__": [C(lambda m, F, x: 3 * x, (3, 4))],
    "Tensor.mul": [C(lambda m, F, x, y: x.mul(y), (3, 4), (4,))],
    "corrnet.mul": [C(lambda m, F, x, y: m.mul(x, y), (3, 4), (4,))],
    "Tensor.mul_": [C(_inplace("mul_"), (3, 4), (4,)),
                    C(lambda m, F, x, y: _on_view(x, lambda v: v.mul_(y)), (3, 4), (4,))],
    "Tensor.__imul__": [C(_iop("*"), (3, 4), (4,))],
    "Tensor.__truediv__": [C(lambda m, F, x, y: x / y, (3, 4), P(4)),
                           C(lambda m, F, x, y: x / y, (3, 1), P(4)),
                           C(lambda m, F, x: x / 3, (3, 4))],
    "Tensor.__rtruediv__": [C(lambda m, F, x: 2 / x, P(3, 4))],
    "Tensor.div": [C(lambda m, F, x, y: x.div(y), (3, 4), P(4))],
    "corrnet.div": [C(lambda m, F, x, y: m.div(x, y), (3, 4), P(4))],
    "corrnet.remainder": [C(lambda m, F, x, y: m.remainder(x, y), (3, 4), P(4), fd=False)],
    "Tensor.div_": [C(_inplace("div_"), (3, 4), P(4))],
    "Tensor.__itruediv__": [C(_iop("/"), (3, 4), P(4))],
    "Tensor.__mod__": [C(lambda m, F, x: x % 1.0, A(3, 4)),
                       C(lambda m, F, x: (x % 1.0) * 3 + x, A(3, 4)),
                       C(lambda m, F, x, y: x % y, A(3, 4), K(4)),
                       C(lambda m, F, x: x % -0.7, (3, 4), fd=False),
                       C(lambda m, F, x, y: x % y, (3, 4), P(3, 1), fd=False)],
    "Tensor.remainder": [C(lambda m, F, x, y: x.remainder(y), (3, 4), P(4), fd=False)],
    "Tensor.__imod__": [C(_iop("%"), A(3, 4), K(4)),
                        C(lambda m, F, x, y: _on_view(x, lambda v: v.__imod__(y)), A(3, 4),
                          P(4))],
    "Tensor.__pow__": [C(lambda m, F, x: x ** 2, (3, 4)), C(lambda m, F, x: x ** 0.5, P(3, 4)),
                       C(lambda m, F, x, y: x ** y, P(3, 4), (4,)),
                       C(lambda m, F, x: x ** 0, (3, 4))],
    "Tensor.__rpow__": [C(lambda m, F, x: 2 ** x, (3, 4)), C(lambda m, F, x: 0.5 ** x, (3, 4))],
    "Tensor.pow": [C(lambda m, F, x, y: x.pow(y), P(3, 1), (4,))],
    "corrnet.pow": [C(lambda m, F, x: m.pow(x, 3), (3, 4))],
    "Tensor.__ipow__": [C(_iop("**"), P(3, 4), (4,))],
    "Tensor.__neg__": [C(lambda m, F, x: -x, (3, 4))],
    "Tensor.neg": [C(lambda m, F, x: x.neg(), (3, 4))],
    "corrnet.neg": [C(lambda m, F, x: m.neg(x), (3, 4))],
    "Tensor.__pos__": [C(lambda m, F, x: +x * 2, (3, 4))],
    "Tensor.__matmul__": [C(lambda m, F, x, y: x @ y, (3, 4), (4, 2)),
                          C(lambda m, F, x, y: x @ y, (4,), (4,)),
                          C(lambda m, F, x, y: x @ y, (2, 3, 4), (4,)),
                          C(lambda m, F, x, y: x @ y, (4,), (2, 4, 3)),
                          C(lambda m, F, x, y: x @ y, (2, 1, 3, 4), (3, 4, 2))],
    "Tensor.matmul": [C(lambda m, F, x, y: x.matmul(y), (3, 4), (4, 2))],
    "corrnet.matmul": [C(lambda m, F, x, y: m.matmul(x, y), (2, 3, 4), (4, 5))],
    "Tensor.mm": [C(lambda m, F, x, y: x.mm(y), (3, 4), (4, 2))],
    "corrnet.mm": [C(lambda m, F, x, y: m.mm(x, y), (3, 4), (4, 2))],
    "Tensor.exp": [C(lambda m, F, x: x.exp(), (3, 4))],
    "corrnet.exp": [C(lambda m, F, x: m.exp(x), (3, 4))],
    "Tensor.log": [C(lambda m, F, x: x.log(), P(3, 4))],
    "corrnet.log": [C(lambda m, F, x: m.log(x), P(3, 4))],
    "Tensor.sqrt": [C(lambda m, F, x: x.sqrt(), P(3, 4))],
    "corrnet.sqrt": [C(lambda m, F, x: m.sqrt(x), P(3, 4))],
    "Tensor.sigmoid": [C(lambda m, F, x: x.sigmoid(), (3, 4))],
    "corrnet.sigmoid": [C(lambda m, F, x: m.sigmoid(x), (3, 4))],
    "F.sigmoid": [C(lambda m, F, x: F.sigmoid(x), (3, 4))],
    "Tensor.tanh": [C(lambda m, F, x: x.tanh(), (3, 4))],
    "corrnet.tanh": [C(lambda m, F, x: m.tanh(x), (3, 4))],
    "F.tanh": [C(lambda m, F, x: F.tanh(x), (3, 4))],
    "Tensor.relu": [C(lambda m, F, x: x.relu(), (3, 4))],
    "corrnet.relu": [C(lambda m, F, x: m.relu(x), (3, 4))],
    "F.relu": [C(lambda m, F, x: F.relu(x), (3, 4)),
               C(lambda m, F, x: F.relu(x * 1, inplace=True), (3, 4))],
    "Tensor.clamp": [C(lambda m, F, x: x.clamp(-0.5, 0.7), (3, 4)),
                     C(lambda m, F, x: x.clamp(min=0.1), (3, 4)),
                     C(lambda m, F, x, lo: x.clamp(min=lo), (3, 4), (4,)),
                     C(lambda m, F, x, lo, hi: x.clamp(lo, hi), (3, 4), (3, 1), (4,))],
    "Tensor.clip": [C(lambda m, F, x: x.clip(max=0.3), (3, 4))],
    "corrnet.clamp": [C(lambda m, F, x: m.clamp(x, -1, 1), (3, 4))],
    "corrnet.clip": [C(lambda m, F, x, hi: m.clip(x, max=hi), (3, 4), (3, 1))],
    "Tensor.relu_": [C(_inplace("relu_"), (3, 4)),
                     C(lambda m, F, x: _on_view(x, lambda v: v.relu_()), (3, 4))],
    "Tensor.clamp_": [C(_inplace("clamp_", -0.5, 0.5), (3, 4)),
                      C(lambda m, F, x: _on_view(x, lambda v: v.clamp_(max=0.2)), (3, 4))],
    "Tensor.maximum": _binary(lambda m, F, x, y: x.maximum(y)),
    "corrnet.maximum": [C(lambda m, F, x, y: m.maximum(x, y), (3, 4), (4,))],
    "Tensor.minimum": _binary(lambda m, F, x, y: x.minimum(y)),
    "corrnet.minimum": [C(lambda m, F, x, y: m.minimum(x, y), (3, 4), (4,))],
    "Tensor.max": [C(lambda m, F, x: x.max(), D(3, 4)), C(lambda m, F, x: x.max(1), D(3, 4)),
                   C(lambda m, F, x: x.max(dim=0, keepdim=True), D(3, 4)),
                   C(lambda m, F, x, y: x.max(y), (3, 4), (4,))],
    "corrnet.max": [C(lambda m, F, x: m.max(x, -1), D(2, 3, 4))],
    "Tensor.min": [C(lambda m, F, x: x.min(), D(3, 4)), C(lambda m, F, x: x.min(1), D(3, 4))],
    "corrnet.min": [C(lambda m, F, x: m.min(x), D(3, 4))],
    "Tensor.amax": [C(lambda m, F, x: x.amax(), D(3, 4)), C(lambda m, F, x: x.amax(1), D(3, 4)),
                    C(lambda m, F, x: x.amax((0, 2), keepdim=True), D(2, 3, 4)),
                    # ties share the gradient: half of it reaches x through the first copy
                    C(lambda m, F, x: m.cat([x, x.detach()], 1).amax(1), (3, 4), fd=False)],
    "corrnet.amax": [C(lambda m, F, x: m.amax(x, 0), D(3, 4))],
    "Tensor.amin": [C(lambda m, F, x: x.amin(-1), D(3, 4)),
                    C(lambda m, F, x: m.cat([x.detach(), x]).amin(), (3, 4), fd=False)],
    "corrnet.amin": [C(lambda m, F, x: m.amin(x, (0, 1)), D(3, 4))],
    "Tensor.sum": [C(lambda m, F, x: x.sum(), (3, 4)), C(lambda m, F, x: x.sum(1), (3, 4)),
                   C(lambda m, F, x: x.sum((0, 2), keepdim=True), (2, 3, 4)),
                   C(lambda m, F, x: x.sum(dtype=m.float64), (3, 4))],
    "corrnet.sum": [C(lambda m, F, x: m.sum(x, -1), (3, 4))],
    "Tensor.mean": [C(lambda m, F, x: x.mean(), (3, 4)), C(lambda m, F, x: x.mean(0), (3, 4)),
                    C(lambda m, F, x: x.mean((1, 2), keepdim=True), (2, 3, 4))],
    "corrnet.mean": [C(lambda m, F, x: m.mean(x, 1), (3, 4))],
    "Tensor.prod": [C(lambda m, F, x: x.prod(), (3, 4)), C(lambda m, F, x: x.prod(1), (3, 4)),
                    C(lambda m, F, x: x.prod(0, keepdim=True), (3, 4)),
                    C(lambda m, F, x: (x * (x > 0)).prod(1), (3, 4), fd=False)],
    "corrnet.prod": [C(lambda m, F, x: m.prod(x, 0), (3, 4))],
    "Tensor.norm": [C(lambda m, F, x: x.norm(), (3, 4)),
                    C(lambda m, F, x: x.norm(p=1, dim=1), (3, 4)),
                    C(lambda m, F, x: x.norm(p=3, dim=0, keepdim=True), (3, 4)),
                    C(lambda m, F, x: x.norm(p=0.5), (3, 4)),
                    C(lambda m, F, x: x.norm(p=-1, dim=1), (3, 4)),
                    C(lambda m, F, x: x.norm(p=float("inf"), dim=1), D(3, 4)),
                    C(lambda m, F, x: x.norm(p=float("-inf")), D(3, 4)),
                    C(lambda m, F, x: x.norm(p=0) + x.sum(), (3, 4)),
                    C(lambda m, F, x: x.norm(p=0, dim=1), (3, 4)),
                    C(lambda m, F, x: (x * (x > 0)).norm(p=3, dim=1), (3, 4), fd=False),
                    C(lambda m, F, x: (x * 0).norm(), (3, 4), fd=False)],
    "corrnet.norm": [C(lambda m, F, x: m.norm(x, dim=(0, 1)), (3, 4))],
    "Tensor.std": [C(lambda m, F, x: x.std(), (3, 4)), C(lambda m, F, x: x.std(1), (3, 4)),
                   C(lambda m, F, x: x.std(0, unbiased=False, keepdim=True), (3, 4)),
                   C(lambda m, F, x: x.std(dim=(0, 2), correction=2), (3, 2, 4)),
                   C(lambda m, F, x: (x * 0).std(1), (3, 4), fd=False)],
    "corrnet.std": [C(lambda m, F, x: m.std(x, 0), (3, 4))],
    "Tensor.var": [C(lambda m, F, x: x.var(), (3, 4)), C(lambda m, F, x: x.var(1), (3, 4)),
                   C(lambda m, F, x: x.var(0, correction=0, keepdim=True), (3, 4))],
    "corrnet.var": [C(lambda m, F, x: m.var(x, 1), (3, 4))],
    "Tensor.softmax": [C(lambda m, F, x: x.softmax(1), (3, 4)),
                       C(lambda m, F, x: x.softmax(0), (3, 4))],
    "corrnet.softmax": [C(lambda m, F, x: m.softmax(x, -1), (2, 3, 4))],
    "F.softmax": [C(lambda m, F, x: F.softmax(x, dim=1), (2, 3, 4))],
    "Tensor.log_softmax": [C(lambda m, F, x: x.log_softmax(1), (3, 4))],
    "corrnet.log_softmax": [C(lambda m, F, x: m.log_softmax(x, 0), (3, 4))],
    "F.log_softmax": [C(lambda m, F, x: F.log_softmax(x, dim=-1), (2, 3, 4))],
    # shape ops
    "Tensor.reshape": [C(lambda m, F, x: x.reshape(4, 3), (3, 4)),
                       C(lambda m, F, x: x.reshape(-1), (3, 4))],
    "corrnet.reshape": [C(lambda m, F, x: m.reshape(x, (2, 6)), (3, 4))],
    "Tensor.reshape_as": [C(lambda m, F, x, y: x.reshape_as(y), (3, 4), K(6, 2))],
    "Tensor.view": [C(lambda m, F, x: x.view(2, 6), (3, 4))],
    "Tensor.view_as": [C(lambda m, F, x, y: x.view_as(y), (3, 4), K(12))],
    "Tensor.flatten": [C(lambda m, F, x: x.flatten(1), (2, 3, 4))],
    "corrnet.flatten": [C(lambda m, F, x: m.flatten(x), (2, 3, 4))],
    "Tensor.permute": [C(lambda m, F, x: x.permute(2, 0, 1), (2, 3, 4))],
    "corrnet.permute": [C(lambda m, F, x: m.permute(x, (1, 0, 2)), (2, 3, 4))],
    "Tensor.transpose": [C(lambda m, F, x: x.transpose(0, 2), (2, 3, 4))],
    "corrnet.transpose": [C(lambda m, F, x: m.transpose(x, 0, 1), (3, 4))],
    "Tensor.swapaxes": [C(lambda m, F, x: x.swapaxes(0, 1), (3, 4))],
    "Tensor.t": [C(lambda m, F, x: x.t(), (3, 4))],
    "corrnet.t": [C(lambda m, F, x: m.t(x), (3, 4))],
    "Tensor.squeeze": [C(lambda m, F, x: x.squeeze(), (3, 1, 4)),
                       C(lambda m, F, x: x.squeeze(1), (3, 1, 4))],
    "corrnet.squeeze": [C(lambda m, F, x: m.squeeze(x, 0), (1, 4))],
    "Tensor.unsqueeze": [C(lambda m, F, x: x.unsqueeze(1), (3, 4))],
    "corrnet.unsqueeze": [C(lambda m, F, x: m.unsqueeze(x, -1), (3, 4))],
    "Tensor.expand": [C(lambda m, F, x: x.expand(2, 3, 4), (3, 1))],
    "Tensor.expand_as": [C(lambda m, F, x, y: x.expand_as(y), (4,), K(3, 4))],
    "Tensor.repeat": [C(lambda m, F, x: x.repeat(2, 1, 3), (3, 4))],
    "Tensor.contiguous": [C(lambda m, F, x: x.t().contiguous(), (3, 4))],
    "Tensor.clone": [C(lambda m, F, x: x.clone(), (3, 4))],
    "corrnet.clone": [C(lambda m, F, x: m.clone(x), (3, 4))],
    "Tensor.cpu": [C(lambda m, F, x: x.cpu() * 2, (3, 4))],
    "corrnet.as_tensor": [C(lambda m, F, x: m.as_tensor(x) * 2, (3, 4))],
    "Tensor.__iter__": [C(lambda m, F, x: m.stack(list(x)) * 2, (3, 4))],
    "Tensor.__getitem__": [
        C(lambda m, F, x: x[1], (3, 4)),
        C(lambda m, F, x: x[:, 1:3], (3, 4)),
        C(lambda m, F, x: x[..., None, ::2], (3, 4)),
        C(lambda m, F, x: x[[0, 2, 0]], (3, 4)),
        C(lambda m, F, x: x[[0, 2], [1, 1]], (3, 4)),
        C(lambda m, F, x: x[[[0, 1], [1, 0]]], (3, 4)),  # a tuple in PyTorch 2.13
        C(lambda m, F, x: x[m.tensor([[0, 1], [2, 2]])], (3, 4)),
        C(lambda m, F, x: x[x > 0], (3, 4)),
        C(lambda m, F, x: x[[True, False, True]], (3, 4)),
        C(lambda m, F, x: x[1:, m.tensor([3, 0, 3])], (3, 4)),
    ],
    "Tensor.__setitem__": [C(_setitem(0), (3, 4), (4,)),
                           C(_setitem((slice(None), 1)), (3, 4), (3,)),
                           C(_setitem([0, 2]), (3, 4), (2, 4)),
                           C(_setitem((1, slice(0, 2))), (3, 4), (1,))],
    "Tensor.fill_": [C(lambda m, F, x: x.clone().fill_(2.0) * x, (3, 4))],
    "Tensor.zero_": [C(lambda m, F, x: x.clone().zero_() + x, (3, 4))],
    "Tensor.copy_": [C(_inplace("copy_"), (3, 4), (4,))],
    # random values: y - y.detach() is zero, and its gradient to x zero (not one)
    "Tensor.normal_": [C(lambda m, F, x: _minus_detached(x.clone().normal_()) + x, (3, 4))],
    "Tensor.uniform_": [C(lambda m, F, x: _minus_detached(x.clone().uniform_(-1, 2)), (3, 4),
                          fd=False)],
    "corrnet.normal": [C(lambda m, F, x, s: _minus_detached(m.normal(x, s)), (3, 4), P(3, 4),
                         fd=False)],
    # dtype conversions between floating dtypes keep the graph
    "Tensor.to": [C(lambda m, F, x: x.to(m.float64) * 1, (3, 4)),
                  C(lambda m, F, x: x.to(m.float32) * 1, (3, 4), fd=False)],
    "Tensor.double": [C(lambda m, F, x: x.double(), (3, 4))],
    "Tensor.float": [C(lambda m, F, x: x.float(), (3, 4), fd=False)],
    "Tensor.half": [C(lambda m, F, x: x.half(), (3, 4), fd=False)],
    "Tensor.type": [C(lambda m, F, x: x.type(m.float64), (3, 4))],
    # functions of several tensors
    "corrnet.cat": [C(lambda m, F, x, y: m.cat([x, y], 1), (3, 4), (3, 2))],
    "corrnet.concat": [C(lambda m, F, x, y: m.concat([x, y]), (3, 4), (1, 4))],
    "corrnet.concatenate": [C(lambda m, F, x, y: m.concatenate([x, y], -1), (3, 4), (3, 1))],
    "corrnet.stack": [C(lambda m, F, x, y: m.stack([x, y], 1), (3, 4), (3, 4))],
    "corrnet.where": [C(lambda m, F, x, y: m.where(x > 0, x, y), (3, 4), (4,)),
                      C(lambda m, F, x: m.where(x > 0, x, 0.5), (3, 4))],
    "Tensor.where": [C(lambda m, F, x, y: x.where(x > 0, y), (3, 4), (4,)),
                     C(lambda m, F, x: x.where(x < 0, 2.0), (3, 4))],
    # nn.functional
    "F.linear": [C(lambda m, F, x, w, b: F.linear(x, w, b), (2, 3, 4), (5, 4), (5,)),
                 C(lambda m, F, x, w: F.linear(x, w), (3, 4), (4,))],
    "F.batch_norm": [
        C(lambda m, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
          (4, 3, 2), (3,), (3,)),
        C(lambda m, F, x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, training=True),
          (4, 3), K(3), KP(3), (3,), (3,)),
        C(lambda m, F, x, rm, rv: F.batch_norm(x, rm, rv), (4, 3, 2, 2), K(3), KP(3))],
    "F.mse_loss": [C(lambda m, F, x, y: F.mse_loss(x, y), (3, 4), (3, 4)),
                   C(lambda m, F, x, y: F.mse_loss(x, y, reduction="none"), (3, 4), (3, 4)),
                   C(lambda m, F, x, y: F.mse_loss(x, y, reduction="sum"), (3, 4), (3, 4))],
    "F.cross_entropy": [
        C(lambda m, F, x, t: F.cross_entropy(x, t), (4, 3), L(3, 4)),
        C(lambda m, F, x, t: F.cross_entropy(x, t, reduction="none"), (4, 3, 2), L(3, 4, 2)),
        C(lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.2),
          (4, 3), L(3, 4), KP(3)),
        C(lambda m, F, x, t: F.cross_entropy(x, t, ignore_index=1, reduction="sum"),
          (5, 3), L(3, 5)),
        C(lambda m, F, x, t: F.cross_entropy(x, t.softmax(1)), (4, 3), (4, 3)),
        C(lambda m, F, x, t: F.cross_entropy(x, t.softmax(0), label_smoothing=0.1), (3,), (3,))],
    "F.nll_loss": [C(lambda m, F, x, t: F.nll_loss(x, t), (4, 3), L(3, 4)),
                   C(lambda m, F, x, t, w: F.nll_loss(x, t, weight=w, reduction="none"),
                     (4, 3, 2), L(3, 4, 2), KP(3))],
    "F.dropout": [C(lambda m, F, x: F.dropout(x, 0.0), (3, 4)),
                  C(lambda m, F, x: F.dropout(x, 0.5, training=False), (3, 4)),
                  C(lambda m, F, x: F.dropout(x, 1.0), (3, 4))],
    "F.conv1d": [C(lambda m, F, x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
                   (2, 2, 7), (3, 2, 3), (3,))],
    "F.conv2d": [C(lambda m, F, x, w, b: F.conv2d(x, w, b, padding=1, dilation=(1, 2)),
                   (1, 2, 5, 6), (3, 2, 3, 2), (3,)),
                 C(lambda m, F, x, w: F.conv2d(x, w, stride=2, groups=2),
                   (2, 4, 5, 5), (2, 2, 3, 3))],
    "F.conv_transpose1d": [C(lambda m, F, x, w, b: F.conv_transpose1d(x, w, b, stride=2),
                             (1, 2, 4), (2, 3, 3), (3,))],
    "F.conv_transpose2d": [C(lambda m, F, x, w: F.conv_transpose2d(x, w, stride=2, padding=1,
                                                                   output_padding=1),
                             (1, 2, 3, 3), (2, 2, 3, 3))],
    "F.pad": [C(lambda m, F, x: F.pad(x, (1, 2)), (2, 3, 4)),
              C(lambda m, F, x: F.pad(x, (1, 1, 2, 0), mode="reflect"), (1, 2, 3, 4)),
              C(lambda m, F, x: F.pad(x, (2, 1), mode="replicate"), (1, 2, 4)),
              C(lambda m, F, x: F.pad(x, (1, 2, 1, 1), mode="circular"), (1, 1, 3, 4))],
    "F.unfold": [C(lambda m, F, x: F.unfold(x, 2, padding=1), (1, 2, 3, 4))],
    "F.fold": [C(lambda m, F, x: F.fold(x, (3, 4), 2), (1, 8, 6))],
    "F.max_pool1d": [C(lambda m, F, x: F.max_pool1d(x, 2), D(2, 2, 6))],
    "F.max_pool2d": [C(lambda m, F, x: F.max_pool2d(x, 2, stride=1), D(1, 2, 4, 4)),
                     C(lambda m, F, x: F.max_pool2d(x, 3, 2, 1, return_indices=True),
                       D(1, 2, 5, 5))],
    "F.avg_pool1d": [C(lambda m, F, x: F.avg_pool1d(x, 3, 2, 1), (2, 2, 7))],
    "F.avg_pool2d": [C(lambda m, F, x: F.avg_pool2d(x, 2, ceil_mode=True), (1, 2, 5, 5)),
                     C(lambda m, F, x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                       (1, 2, 4, 4))],
    "F.max_unpool1d": [C(lambda m, F, x: F.max_unpool1d(*F.max_pool1d(x, 2,
                                                                      return_indices=True), 2),
                         D(1, 2, 6))],
    "F.max_unpool2d": [C(lambda m, F, x: F.max_unpool2d(*F.max_pool2d(x, 2,
                                                                      return_indices=True), 2),
                         D(1, 2, 4, 4))],
    "F.adaptive_avg_pool1d": [C(lambda m, F, x: F.adaptive_avg_pool1d(x, 3), (1, 2, 7))],
    "F.adaptive_avg_pool2d": [C(lambda m, F, x: F.adaptive_avg_pool2d(x, (2, 3)), (1, 2, 5, 7))],
    "F.adaptive_max_pool1d": [C(lambda m, F, x: F.adaptive_max_pool1d(x, 3), D(1, 2, 7))],
    "F.adaptive_max_pool2d": [C(lambda m, F, x: F.adaptive_max_pool2d(x, 2, return_indices=True),
                                D(1, 2, 5, 5))],
    "corrnet.corr2d": [C(lambda m, F, x, k: m.corr2d(x, k), (5, 6), (2, 3),
                         torch_fn=_torch_corr2d)],
    "F.corr2d": [C(lambda m, F, x, k: F.corr2d(x, k), (4, 4), (3, 3), torch_fn=_torch_corr2d)],
    "corrnet.convolve2d": [C(lambda m, F, x, k: m.convolve2d(x, k), (5, 6), (2, 3),
                             torch_fn=_torch_convolve2d)],
    "F.convolve2d": [C(lambda m, F, x, k: F.convolve2d(x, k), (4, 5), (3, 2),
                       torch_fn=_torch_convolve2d)],
    # issue 12: sorting, selection and rearranging (helper tensorapi)
    "Tensor.sort": [C(lambda m, F, x: x.sort(1, descending=True).values, D(3, 4))],
    "corrnet.sort": [C(lambda m, F, x: m.sort(x, 0).values, D(3, 4))],
    "Tensor.topk": [C(lambda m, F, x: x.topk(2).values, D(3, 4)),
                    C(lambda m, F, x: x.topk(2, 0, largest=False).values, D(3, 4))],
    "corrnet.topk": [C(lambda m, F, x: m.topk(x, 3).values, D(2, 5))],
    "Tensor.masked_fill": [C(lambda m, F, x: x.masked_fill(x.detach() > 0, 0.5), (3, 4)),
                           C(lambda m, F, x, v: x.masked_fill(x.detach() > 0, v), (3, 4), ())],
    "Tensor.masked_fill_": [C(lambda m, F, x: x.clone().masked_fill_(x.detach() > 0, -1.0),
                              (3, 4))],
    "corrnet.masked_fill": [C(lambda m, F, x: m.masked_fill(x, x.detach() < 0, 2.0), (3, 4))],
    "Tensor.chunk": [C(lambda m, F, x: x.chunk(3, 1)[1], (3, 4))],
    "corrnet.chunk": [C(lambda m, F, x: m.chunk(x, 2)[1], (3, 4))],
    "Tensor.split": [C(lambda m, F, x: x.split([1, 3], 1)[1], (3, 4)),
                     C(lambda m, F, x: x.split(2)[1], (3, 4))],
    "corrnet.split": [C(lambda m, F, x: m.split(x, 3, 1)[0], (3, 4))],
    "Tensor.unbind": [C(lambda m, F, x: x.unbind(1)[2], (3, 4)),
                      C(lambda m, F, x: x.unbind()[0] * x.unbind(-1)[1][0], (3, 4))],
    "corrnet.unbind": [C(lambda m, F, x: m.unbind(x, dim=0)[1], (2, 3, 2))],
    "Tensor.gather": [C(lambda m, F, x: x.gather(1, m.tensor([[0, 0], [3, 1], [2, 2]])),
                        (3, 4))],
    "corrnet.gather": [C(lambda m, F, x: m.gather(x, 0, m.tensor([[2, 0, 1, 1]])), (3, 4))],
    "Tensor.scatter": [C(lambda m, F, x, s: x.scatter(1, m.tensor([[0, 2], [3, 1]]), s),
                         (3, 4), (2, 2)),
                       C(lambda m, F, x: x.scatter(0, m.tensor([[1, 0, 2, 2]]), 0.5), (3, 4))],
    "Tensor.scatter_": [C(lambda m, F, x, s: x.clone().scatter_(1, m.tensor([[0, 2]]), s),
                          (3, 4), (1, 2))],
    "corrnet.scatter": [C(lambda m, F, x, s: m.scatter(x, 0, m.tensor([[2, 0]]), s), (3, 4),
                          (1, 2))],
    "Tensor.scatter_add": [C(lambda m, F, x, s: x.scatter_add(1, m.tensor([[0, 0, 3]]), s),
                             (3, 4), (1, 3))],
    "Tensor.scatter_add_": [C(lambda m, F, x, s: x.clone().scatter_add_(0, m.tensor(
        [[1, 1], [1, 0]]), s), (3, 4), (2, 2))],
    "corrnet.scatter_add": [C(lambda m, F, x, s: m.scatter_add(x, 1, m.tensor([[2, 2]]), s),
                              (3, 4), (1, 2))],
    "Tensor.index_select": [C(lambda m, F, x: x.index_select(1, m.tensor([3, 0, 3])), (3, 4))],
    "corrnet.index_select": [C(lambda m, F, x: m.index_select(x, 0, m.tensor([2])), (3, 4))],
    "Tensor.roll": [C(lambda m, F, x: x.roll((1, -2), (0, 1)), (3, 4)),
                    C(lambda m, F, x: x.roll(5), (3, 4))],
    "corrnet.roll": [C(lambda m, F, x: m.roll(x, 1, 1), (3, 4))],
    "Tensor.flip": [C(lambda m, F, x: x.flip(0, 1), (3, 4))],
    "corrnet.flip": [C(lambda m, F, x: m.flip(x, [1]), (3, 4))],
    "Tensor.tril": [C(lambda m, F, x: x.tril(1), (3, 4))],
    "Tensor.tril_": [C(lambda m, F, x: x.clone().tril_(), (2, 3, 3))],
    "corrnet.tril": [C(lambda m, F, x: m.tril(x, -1), (3, 4))],
    "Tensor.triu": [C(lambda m, F, x: x.triu(-1), (3, 4))],
    "Tensor.triu_": [C(lambda m, F, x: x.clone().triu_(2), (3, 4))],
    "corrnet.triu": [C(lambda m, F, x: m.triu(x), (3, 4))],
    "Tensor.cumsum": [C(lambda m, F, x: x.cumsum(1), (3, 4)),
                      C(lambda m, F, x: x.cumsum(0, dtype=m.float64), (3, 4))],
    "corrnet.cumsum": [C(lambda m, F, x: m.cumsum(x, -1), (2, 3, 4))],
    "Tensor.logsumexp": [C(lambda m, F, x: x.logsumexp(1), (3, 4)),
                         C(lambda m, F, x: x.logsumexp((0, 1), keepdim=True), (3, 4))],
    "corrnet.logsumexp": [C(lambda m, F, x: m.logsumexp(x, 0), (3, 4))],
    "corrnet.einsum": [C(lambda m, F, x, y: m.einsum("ij,jk->ik", x, y), (3, 4), (4, 2)),
                       C(lambda m, F, x, y: m.einsum("...ij,...j", [x, y]), (2, 3, 4), (4,)),
                       C(lambda m, F, x: m.einsum("ii->i", x), (3, 3))],
    # issue 12's layers (tested at length in test_issue12_layers_oracle.py)
    "F.leaky_relu": [C(lambda m, F, x: F.leaky_relu(x, 0.2), (3, 4)),
                     C(lambda m, F, x: F.leaky_relu(x * 1, inplace=True), (3, 4))],
    "F.elu": [C(lambda m, F, x: F.elu(x, 1.5), (3, 4))],
    "F.gelu": [C(lambda m, F, x: F.gelu(x), (3, 4)),
               C(lambda m, F, x: F.gelu(x, approximate="tanh"), (3, 4))],
    "F.silu": [C(lambda m, F, x: F.silu(x), (3, 4))],
    "F.mish": [C(lambda m, F, x: F.mish(x), (3, 4))],
    "F.hardswish": [C(lambda m, F, x: F.hardswish(x * 2), (3, 4))],
    "F.hardtanh": [C(lambda m, F, x: F.hardtanh(x * 2), (3, 4)),
                   C(lambda m, F, x: F.hardtanh(x * 1, -0.5, 0.5, inplace=True), (3, 4))],
    "F.relu6": [C(lambda m, F, x: F.relu6(x * 5 + 3), (3, 4))],
    "F.l1_loss": [C(lambda m, F, x, y: F.l1_loss(x, y), (3, 4), (3, 4)),
                  C(lambda m, F, x, y, w: F.l1_loss(x, y, weight=w.abs()), (3, 4), (3, 4),
                    (3, 4)),
                  C(lambda m, F, x, y: F.l1_loss(x, y, reduction="none"), (3, 4), (4,))],
    "F.smooth_l1_loss": [C(lambda m, F, x, y: F.smooth_l1_loss(x, y, beta=0.5), (3, 4), (3, 4)),
                         C(lambda m, F, x, y: F.smooth_l1_loss(x, y, reduction="sum"), (3, 4),
                           (3, 1))],
    "F.huber_loss": [C(lambda m, F, x, y: F.huber_loss(x, y, delta=0.5), (3, 4), (3, 4)),
                     C(lambda m, F, x, y, w: F.huber_loss(x, y, reduction="none", weight=w),
                       (3, 4), (3, 4), (3, 4))],
    "F.softplus": [C(lambda m, F, x: F.softplus(x, beta=2, threshold=1), (3, 4))],
    "F.prelu": [C(lambda m, F, x, w: F.prelu(x, w), (2, 3, 4), (3,))],
    "F.dropout2d": [C(lambda m, F, x: F.dropout2d(x, 0.5, training=False), (2, 3, 2, 2)),
                    C(lambda m, F, x: F.dropout2d(x, 1.0), (2, 3, 2, 2))],
    "F.layer_norm": [C(lambda m, F, x, w, b: F.layer_norm(x, (4,), w, b), (3, 4), (4,), (4,))],
    "F.group_norm": [C(lambda m, F, x, w, b: F.group_norm(x, 2, w, b), (2, 4, 3), (4,), (4,))],
    "F.instance_norm": [C(lambda m, F, x, w, b: F.instance_norm(x, weight=w, bias=b),
                          (2, 3, 4), (3,), (3,))],
    "F.local_response_norm": [C(lambda m, F, x: F.local_response_norm(x, 3, 0.5), (2, 4, 3))],
    "F.pixel_shuffle": [C(lambda m, F, x: F.pixel_shuffle(x, 2), (1, 8, 2, 3))],
    "F.pixel_unshuffle": [C(lambda m, F, x: F.pixel_unshuffle(x, 2), (1, 2, 4, 6))],
    "F.interpolate": [C(lambda m, F, x: F.interpolate(x, size=(5, 3), mode="bilinear"),
                        (1, 2, 3, 4)),
                      C(lambda m, F, x: F.interpolate(x, scale_factor=1.5), (1, 2, 3))],
    "F.upsample": [C(lambda m, F, x: F.upsample(x, scale_factor=2), (1, 2, 3, 4))],
    "F.upsample_nearest": [C(lambda m, F, x: F.upsample_nearest(x, size=5), (1, 2, 3, 4))],
    "F.upsample_bilinear": [C(lambda m, F, x: F.upsample_bilinear(x, size=5), (1, 2, 3, 4))],
}

# The elementwise functions of ops.UNARY, as methods and as corrnet's functions, each on
# inputs inside its domain and away from its kinks: (name, its argument: P positive, A away
# from integers, D distinct); their in-place forms also on a view
_UNARY_CASES = [("sin", (3, 4)), ("cos", (3, 4)), ("tan", (3, 4)), ("atan", (3, 4)),
                ("sinh", (3, 4)), ("cosh", (3, 4)), ("log2", P(3, 4)), ("log10", P(3, 4)),
                ("log1p", P(3, 4)), ("expm1", (3, 4)), ("exp2", (3, 4)), ("rsqrt", P(3, 4)),
                ("reciprocal", P(3, 4)), ("frac", A(3, 4)), ("square", (3, 4)),
                ("deg2rad", (3, 4)), ("rad2deg", (3, 4)), ("arctan", (3, 4))]
for _name, _arg in _UNARY_CASES:
    GRAD[f"Tensor.{_name}"] = [C(lambda m, F, x, n=_name: getattr(x, n)(), _arg)]
    GRAD[f"corrnet.{_name}"] = [C(lambda m, F, x, n=_name: getattr(m, n)(x), _arg)]
for _name in ("asin", "acos", "arcsin", "arccos"):   # (|x| < 1)
    GRAD[f"Tensor.{_name}"] = [C(lambda m, F, x, n=_name: getattr(x * 0.4, n)(), (3, 4))]
    GRAD[f"corrnet.{_name}"] = [C(lambda m, F, x, n=_name: getattr(m, n)(x * 0.4), (3, 4))]
for _name, _arg in [("abs_", D(3, 4)), ("neg_", (3, 4)), ("exp_", (3, 4)), ("log_", P(3, 4)),
                    ("sqrt_", P(3, 4)), ("sigmoid_", (3, 4)), ("tanh_", (3, 4)),
                    ("sin_", (3, 4)), ("cos_", (3, 4)), ("reciprocal_", P(3, 4)),
                    ("rsqrt_", P(3, 4)), ("log1p_", P(3, 4)), ("expm1_", (3, 4)),
                    ("square_", (3, 4))]:
    GRAD[f"Tensor.{_name}"] = [C(_inplace(_name), _arg),
                               C(lambda m, F, x, n=_name: _on_view(x, lambda v: getattr(v, n)()),
                                 P(3, 4) if _arg != (3, 4) else (3, 4))]
GRAD["Tensor.pow_"] = [C(_inplace("pow_", 3), (3, 4)),
                       C(lambda m, F, x, y: _on_view(x, lambda v: v.pow_(y)), P(3, 4), (4,))]

# PyTorch's other names, and the small operations beside them (tests/oracle/test_torch_names.py
# compares their values over dtypes and special values)
GRAD.update({
    "Tensor.multiply": [C(lambda m, F, x, y: x.multiply(y), (3, 4), (4,))],
    "corrnet.multiply": [C(lambda m, F, x, y: m.multiply(x, y), (3, 1), (4,))],
    "Tensor.subtract": [C(lambda m, F, x, y: x.subtract(y, alpha=2), (3, 4), (4,))],
    "corrnet.subtract": [C(lambda m, F, x, y: m.subtract(x, y), (3, 4), (3, 1))],
    "Tensor.divide": [C(lambda m, F, x, y: x.divide(y), (3, 4), P(4)),
                      C(lambda m, F, x, y: x.divide(y, rounding_mode="trunc"), (3, 4), P(4),
                        fd=False),
                      C(lambda m, F, x, y: x.divide(y, rounding_mode="floor"), (3, 4), P(4),
                        fd=False)],
    "corrnet.divide": [C(lambda m, F, x, y: m.divide(x, y), (3, 4), P(3, 1))],
    "Tensor.true_divide": [C(lambda m, F, x, y: x.true_divide(y), (3, 4), P(4))],
    "corrnet.true_divide": [C(lambda m, F, x: m.true_divide(2, x), P(3, 4))],
    "Tensor.negative": [C(lambda m, F, x: x.negative(), (3, 4))],
    "corrnet.negative": [C(lambda m, F, x: m.negative(x), (3, 4))],
    "Tensor.absolute": [C(lambda m, F, x: x.absolute(), A(3, 4))],
    "corrnet.absolute": [C(lambda m, F, x: m.absolute(x), A(3, 4))],
    "Tensor.sign": [C(lambda m, F, x: x.sign() * x, A(3, 4))],
    "corrnet.sign": [C(lambda m, F, x: m.sign(x) + x, A(3, 4))],
    "Tensor.sgn": [C(lambda m, F, x: x.sgn() * x, A(3, 4))],
    "corrnet.sgn": [C(lambda m, F, x: m.sgn(x) - x, A(3, 4))],
    "Tensor.clamp_min": [C(lambda m, F, x: x.clamp_min(0.2), (3, 4)),
                         C(lambda m, F, x, lo: x.clamp_min(lo), (3, 4), (4,))],
    "corrnet.clamp_min": [C(lambda m, F, x: m.clamp_min(x, -0.3), (3, 4))],
    "Tensor.clamp_max": [C(lambda m, F, x, hi: x.clamp_max(hi), (3, 4), (3, 1))],
    "corrnet.clamp_max": [C(lambda m, F, x: m.clamp_max(x, 0.4), (3, 4))],
    "Tensor.multiply_": [C(_inplace("multiply_"), (3, 4), (4,))],
    "Tensor.subtract_": [C(_inplace("subtract_", alpha=2), (3, 4), (4,))],
    "Tensor.divide_": [C(_inplace("divide_"), (3, 4), P(4))],
    "Tensor.true_divide_": [C(_inplace("true_divide_"), (3, 4), P(4))],
    "Tensor.negative_": [C(_inplace("negative_"), (3, 4))],
    "Tensor.absolute_": [C(_inplace("absolute_"), A(3, 4))],
    "Tensor.clip_": [C(_inplace("clip_", -0.5, 0.5), (3, 4))],
    "Tensor.clamp_min_": [C(_inplace("clamp_min_", 0.1), (3, 4))],
    "Tensor.clamp_max_": [C(_inplace("clamp_max_", 0.1), (3, 4))],
    "Tensor.lerp": [C(lambda m, F, x, y: x.lerp(y, 0.3), (3, 4), (4,)),
                    C(lambda m, F, x, y, w: x.lerp(y, w), (3, 4), (3, 4), (4,))],
    "corrnet.lerp": [C(lambda m, F, x, y: m.lerp(x, y, 0.8), (3, 4), (3, 4))],
    "Tensor.addcmul": [C(lambda m, F, x, a, b: x.addcmul(a, b, value=0.5), (3, 4), (4,),
                         (3, 1))],
    "corrnet.addcmul": [C(lambda m, F, x, a, b: m.addcmul(x, a, b), (3, 4), (3, 4), (3, 4))],
    "Tensor.addcdiv": [C(lambda m, F, x, a, b: x.addcdiv(a, b, value=2), (3, 4), (4,),
                         P(3, 1))],
    "corrnet.addcdiv": [C(lambda m, F, x, a, b: m.addcdiv(x, a, b), (3, 4), (3, 4), P(3, 4))],
    "Tensor.dot": [C(lambda m, F, x, y: x.dot(y), (4,), (4,))],
    "corrnet.dot": [C(lambda m, F, x, y: m.dot(x, y), (5,), (5,))],
    "Tensor.mv": [C(lambda m, F, x, y: x.mv(y), (3, 4), (4,))],
    "corrnet.mv": [C(lambda m, F, x, y: m.mv(x, y), (2, 3), (3,))],
    "Tensor.outer": [C(lambda m, F, x, y: x.outer(y), (3,), (4,))],
    "corrnet.outer": [C(lambda m, F, x, y: m.outer(x, y), (2,), (5,))],
    "Tensor.bmm": [C(lambda m, F, x, y: x.bmm(y), (2, 3, 4), (2, 4, 5))],
    "corrnet.bmm": [C(lambda m, F, x, y: m.bmm(x, y), (3, 2, 2), (3, 2, 1))],
    # the second batch
    "Tensor.erf": [C(lambda m, F, x: x.erf(), (3, 4))],
    "corrnet.erf": [C(lambda m, F, x: m.erf(x), (3, 4))],
    "Tensor.erfc": [C(lambda m, F, x: x.erfc(), (3, 4))],
    "corrnet.erfc": [C(lambda m, F, x: m.erfc(x), (3, 4))],
    "Tensor.atan2": [C(lambda m, F, x, y: x.atan2(y), (3, 4), (4,))],
    "corrnet.atan2": [C(lambda m, F, x, y: m.atan2(x, y), (3, 4), (3, 1))],
    "Tensor.arctan2": [C(lambda m, F, x, y: x.arctan2(y), (3, 4), (3, 4))],
    "corrnet.arctan2": [C(lambda m, F, x, y: m.arctan2(x, y), (4,), (3, 4))],
    "Tensor.fmod": [C(lambda m, F, x, y: x.fmod(y), A(3, 4), P(4))],
    "corrnet.fmod": [C(lambda m, F, x: m.fmod(x, 1.0), A(3, 4))],
    "Tensor.hypot": [C(lambda m, F, x, y: x.hypot(y), (3, 4), (4,))],
    "corrnet.hypot": [C(lambda m, F, x, y: m.hypot(x, y), (3, 4), (3, 4))],
    "Tensor.nan_to_num": [C(lambda m, F, x: (x.log()).nan_to_num(neginf=-5.0), (3, 4), fd=False)],
    "corrnet.nan_to_num": [C(lambda m, F, x: m.nan_to_num(x * 2), (3, 4))],
    "Tensor.positive": [C(lambda m, F, x: x.positive() * 2, (3, 4))],
    "corrnet.positive": [C(lambda m, F, x: m.positive(x) * 3, (3, 4))],
    "Tensor.swapdims": [C(lambda m, F, x: x.swapdims(0, 1), (3, 4))],
    "corrnet.swapdims": [C(lambda m, F, x: m.swapdims(x, 0, -1), (2, 3, 4))],
    "corrnet.swapaxes": [C(lambda m, F, x: m.swapaxes(x, 1, 0), (3, 4))],
    "Tensor.movedim": [C(lambda m, F, x: x.movedim(0, -1), (2, 3, 4))],
    "corrnet.movedim": [C(lambda m, F, x: m.movedim(x, (0, 1), (2, 0)), (2, 3, 4))],
    "Tensor.moveaxis": [C(lambda m, F, x: x.moveaxis(1, 0), (3, 4))],
    "corrnet.moveaxis": [C(lambda m, F, x: m.moveaxis(x, -1, 0), (2, 3, 4))],
    "Tensor.narrow": [C(lambda m, F, x: x.narrow(1, 1, 2), (3, 4))],
    "corrnet.narrow": [C(lambda m, F, x: m.narrow(x, 0, -2, 2), (3, 4))],
    "Tensor.broadcast_to": [C(lambda m, F, x: x.broadcast_to((2, 3, 4)), (3, 1))],
    "corrnet.broadcast_to": [C(lambda m, F, x: m.broadcast_to(x, (3, -1)), (1, 4))],
    "Tensor.unflatten": [C(lambda m, F, x: x.unflatten(1, (2, 2)), (3, 4))],
    "corrnet.unflatten": [C(lambda m, F, x: m.unflatten(x, 0, (-1, 1)), (3, 4))],
    "Tensor.tile": [C(lambda m, F, x: x.tile((2,)), (3, 4))],
    "corrnet.tile": [C(lambda m, F, x: m.tile(x, (2, 1, 2)), (3, 4))],
    "Tensor.type_as": [C(lambda m, F, x: x.type_as(x.double()) * 2, (3, 4))],
    "Tensor.fliplr": [C(lambda m, F, x: x.fliplr(), (3, 4))],
    "corrnet.fliplr": [C(lambda m, F, x: m.fliplr(x), (2, 3, 4))],
    "Tensor.flipud": [C(lambda m, F, x: x.flipud(), (3, 4))],
    "corrnet.flipud": [C(lambda m, F, x: m.flipud(x), (4,))],
    "Tensor.repeat_interleave": [C(lambda m, F, x: x.repeat_interleave(2, 1), (3, 4))],
    "corrnet.repeat_interleave": [C(lambda m, F, x: m.repeat_interleave(
        x, m.tensor([1, 0, 2]), dim=0), (3, 4))],
    "Tensor.masked_select": [C(lambda m, F, x: x.masked_select(x > 0), (3, 4))],
    "corrnet.masked_select": [C(lambda m, F, x: m.masked_select(x, m.tensor([True, False,
                                                                         True, True])),
                                (3, 4))],
    "Tensor.diagonal": [C(lambda m, F, x: x.diagonal(1), (3, 4)),
                        C(lambda m, F, x: x.diagonal(-1, 2, 0), (3, 2, 4))],
    "corrnet.diagonal": [C(lambda m, F, x: m.diagonal(x), (4, 3))],
    "Tensor.diag": [C(lambda m, F, x: x.diag(1), (4,)), C(lambda m, F, x: x.diag(), (3, 4))],
    "corrnet.diag": [C(lambda m, F, x: m.diag(x, -2), (3,))],
    "Tensor.trace": [C(lambda m, F, x: x.trace(), (3, 4))],
    "corrnet.trace": [C(lambda m, F, x: m.trace(x), (4, 4))],
    # the third batch
    "Tensor.logaddexp": [C(lambda m, F, x, y: x.logaddexp(y), (3, 4), (4,))],
    "corrnet.logaddexp": [C(lambda m, F, x, y: m.logaddexp(x, y), (3, 4), (3, 4))],
    "Tensor.logaddexp2": [C(lambda m, F, x, y: x.logaddexp2(y), (3, 4), (3, 1))],
    "corrnet.logaddexp2": [C(lambda m, F, x, y: m.logaddexp2(x, y), (4,), (3, 4))],
    "Tensor.copysign": [C(lambda m, F, x, y: x.copysign(y), A(3, 4), A(4))],
    "corrnet.copysign": [C(lambda m, F, x: m.copysign(x, -1.0), A(3, 4))],
    "Tensor.logit": [C(lambda m, F, x: (x / 3).logit(), P(3, 4)),
                     C(lambda m, F, x: (x / 2.5).logit(eps=0.3), P(3, 4))],
    "corrnet.logit": [C(lambda m, F, x: m.logit(x / 2.5), P(3, 4))],
    "Tensor.xlogy": [C(lambda m, F, x, y: x.xlogy(y), (3, 4), P(4))],
    "corrnet.xlogy": [C(lambda m, F, x: m.xlogy(x, 2.0), (3, 4))],
    "Tensor.float_power": [C(lambda m, F, x: x.float_power(2), (3, 4)),
                           C(lambda m, F, x, y: x.float_power(y), P(3, 4), (4,))],
    "corrnet.float_power": [C(lambda m, F, x: m.float_power(x, 3), (3, 4))],
    "Tensor.nansum": [C(lambda m, F, x: (x / (x > -1.5)).nansum(1), (3, 4), fd=False)],
    "corrnet.nansum": [C(lambda m, F, x: m.nansum(x), (3, 4))],
    "Tensor.nanmean": [C(lambda m, F, x: (x / (x > -1.5)).nanmean(0), (3, 4), fd=False)],
    "corrnet.nanmean": [C(lambda m, F, x: m.nanmean(x, -1, True), (3, 4))],
    "Tensor.aminmax": [C(lambda m, F, x: m.stack(x.aminmax(dim=1)), D(3, 4))],
    "corrnet.aminmax": [C(lambda m, F, x: m.stack(m.aminmax(x)), D(3, 4))],
    "Tensor.rot90": [C(lambda m, F, x: x.rot90(), (3, 4)),
                     C(lambda m, F, x: x.rot90(-3, (2, 0)), (2, 3, 4))],
    "corrnet.rot90": [C(lambda m, F, x: m.rot90(x, 2), (3, 4))],
    "corrnet.std_mean": [C(lambda m, F, x: m.stack(m.std_mean(x, 1)), (3, 4))],
    "corrnet.var_mean": [C(lambda m, F, x: m.stack(m.var_mean(x)), (3, 4))],
    "corrnet.atleast_1d": [C(lambda m, F, x: m.atleast_1d(x.sum()) * 2, (3, 4))],
    "corrnet.atleast_2d": [C(lambda m, F, x: m.atleast_2d(x), (4,))],
    "corrnet.atleast_3d": [C(lambda m, F, x: m.atleast_3d(x), (3, 4))],
    "corrnet.meshgrid": [C(lambda m, F, x, y: m.stack(m.meshgrid(x, y, indexing="ij")), (3,),
                           (4,))],
    "corrnet.hstack": [C(lambda m, F, x, y: m.hstack([x, y]), (3, 4), (3, 2))],
    "corrnet.vstack": [C(lambda m, F, x, y: m.vstack([x, y]), (4,), (2, 4))],
})

# the fourth batch: running products and extremes, order statistics, differences, products
# with a scaled sum, splits and joins, indexing
GRAD.update({
    "Tensor.cumprod": [C(lambda m, F, x: x.cumprod(1), (3, 4)),
                       C(lambda m, F, x: x.masked_fill(x.abs() < 0.5, 0).cumprod(0), (4, 3)),
                       C(lambda m, F, x: x.cumprod(0, dtype=m.float64), (3, 4))],
    "corrnet.cumprod": [C(lambda m, F, x: m.cumprod(x, -1), (2, 3, 4))],
    "Tensor.cummax": [C(lambda m, F, x: x.cummax(1).values, D(3, 4))],
    "corrnet.cummax": [C(lambda m, F, x: m.cummax(x, 0).values, D(3, 4))],
    "Tensor.cummin": [C(lambda m, F, x: x.cummin(0).values, D(3, 4))],
    "corrnet.cummin": [C(lambda m, F, x: m.cummin(x, -1).values, D(3, 4))],
    "Tensor.median": [C(lambda m, F, x: x.median(), D(3, 4)),
                      C(lambda m, F, x: x.median(1, keepdim=True).values, D(3, 4))],
    "corrnet.median": [C(lambda m, F, x: m.median(x, 0).values, D(3, 4))],
    "Tensor.nanmedian": [C(lambda m, F, x: x.nanmedian(), D(3, 4)),
                         C(lambda m, F, x: x.nanmedian(0).values, D(3, 4))],
    "corrnet.nanmedian": [C(lambda m, F, x: m.nanmedian(x, 1).values, D(3, 4))],
    "Tensor.kthvalue": [C(lambda m, F, x: x.kthvalue(2).values, D(3, 4)),
                        C(lambda m, F, x: x.kthvalue(3, 0, keepdim=True).values, D(3, 4))],
    "corrnet.kthvalue": [C(lambda m, F, x: m.kthvalue(x, 1, 1).values, D(3, 4))],
    "Tensor.diff": [C(lambda m, F, x: x.diff(), (3, 4)), C(lambda m, F, x: x.diff(2, 0), (4, 3)),
                    C(lambda m, F, x, y: x.diff(dim=1, prepend=y), (3, 4), (3, 2))],
    "corrnet.diff": [C(lambda m, F, x, y: m.diff(x, append=y), (3, 4), (3, 1))],
    "Tensor.take": [C(lambda m, F, x: x.take(m.tensor([[0, 11], [-1, 5]])), (3, 4))],
    "corrnet.take": [C(lambda m, F, x: m.take(x, m.tensor([2, 2, 7])), (3, 4))],
    "Tensor.take_along_dim": [C(lambda m, F, x: x.take_along_dim(m.tensor([[0], [3]]), 1),
                                (2, 4))],
    "corrnet.take_along_dim": [C(lambda m, F, x: m.take_along_dim(x, m.tensor([5, 0, 5])),
                                 (3, 4))],
    "Tensor.index_add": [C(lambda m, F, x, y: x.index_add(0, m.tensor([2, 0, 2]), y, alpha=2),
                           (3, 4), (3, 4))],
    "corrnet.index_add": [C(lambda m, F, x, y: m.index_add(x, 1, m.tensor([1]), y), (3, 4),
                            (3, 1))],
    "Tensor.index_add_": [C(lambda m, F, x, y: x.clone().index_add_(1, m.tensor([3, 0]), y),
                            (3, 4), (3, 2))],
    "Tensor.index_copy": [C(lambda m, F, x, y: x.index_copy(1, m.tensor([3, 0]), y), (3, 4),
                            (3, 2))],
    "corrnet.index_copy": [C(lambda m, F, x, y: m.index_copy(x, 0, m.tensor([1]), y), (3, 4),
                             (1, 4))],
    "Tensor.index_copy_": [C(lambda m, F, x, y: x.clone().index_copy_(0, m.tensor([2, 0]), y),
                             (3, 4), (2, 4))],
    "Tensor.index_fill": [C(lambda m, F, x: x.index_fill(1, m.tensor([0, 2]), -1.5), (3, 4))],
    "corrnet.index_fill": [C(lambda m, F, x: m.index_fill(x, 0, m.tensor([1]), 2.0), (3, 4))],
    "Tensor.index_fill_": [C(lambda m, F, x: x.clone().index_fill_(1, m.tensor([1]), 0.5),
                             (3, 4))],
    "Tensor.tensor_split": [C(lambda m, F, x: x.tensor_split(3, 1)[0], (3, 4)),
                            C(lambda m, F, x: x.tensor_split([1, 2])[1], (3, 4))],
    "corrnet.tensor_split": [C(lambda m, F, x: m.tensor_split(x, [2], 1)[1], (3, 4))],
    "Tensor.hsplit": [C(lambda m, F, x: x.hsplit(2)[1], (3, 4))],
    "corrnet.hsplit": [C(lambda m, F, x: m.hsplit(x, [1])[1], (3, 4))],
    "Tensor.vsplit": [C(lambda m, F, x: x.vsplit([2])[0], (3, 4))],
    "corrnet.vsplit": [C(lambda m, F, x: m.vsplit(x, 3)[2], (3, 4))],
    "Tensor.dsplit": [C(lambda m, F, x: x.dsplit(2)[0], (2, 3, 4))],
    "corrnet.dsplit": [C(lambda m, F, x: m.dsplit(x, [3])[0], (2, 3, 4))],
    "Tensor.ravel": [C(lambda m, F, x: x.t().ravel(), (3, 4))],
    "corrnet.ravel": [C(lambda m, F, x: m.ravel(x), (3, 4))],
    "Tensor.sinc": [C(lambda m, F, x: x.sinc(), (3, 4)),
                    C(lambda m, F, x: (x * 0).sinc(), (3, 4))],
    "corrnet.sinc": [C(lambda m, F, x: m.sinc(x), (3, 4))],
    "Tensor.kron": [C(lambda m, F, x, y: x.kron(y), (2, 3), (3, 2))],
    "corrnet.kron": [C(lambda m, F, x, y: m.kron(x, y), (3,), (2, 2))],
    "Tensor.cross": [C(lambda m, F, x, y: x.cross(y, dim=1), (2, 3), (2, 3))],
    "corrnet.cross": [C(lambda m, F, x, y: m.cross(x, y, dim=0), (3, 4), (3, 1))],
    "Tensor.inner": [C(lambda m, F, x, y: x.inner(y), (3, 4), (2, 4))],
    "corrnet.inner": [C(lambda m, F, x, y: m.inner(x, y), (4,), (3, 4))],
    "Tensor.dist": [C(lambda m, F, x, y: x.dist(y), (3, 4), (4,)),
                    C(lambda m, F, x, y: x.dist(y, 1), (3, 4), (3, 4))],
    "corrnet.dist": [C(lambda m, F, x, y: m.dist(x, y, 3), (3, 4), (3, 4))],
    "Tensor.addmm": [C(lambda m, F, x, a, b: x.addmm(a, b, beta=0.5, alpha=2), (4,), (3, 2),
                       (2, 4))],
    "corrnet.addmm": [C(lambda m, F, x, a, b: m.addmm(x, a, b), (3, 4), (3, 2), (2, 4))],
    "Tensor.addmv": [C(lambda m, F, x, a, v: x.addmv(a, v, alpha=-1), (3,), (3, 4), (4,))],
    "corrnet.addmv": [C(lambda m, F, x, a, v: m.addmv(x, a, v, beta=2), (1,), (3, 4), (4,))],
    "Tensor.addbmm": [C(lambda m, F, x, a, b: x.addbmm(a, b), (3, 4), (2, 3, 2), (2, 2, 4))],
    "corrnet.addbmm": [C(lambda m, F, x, a, b: m.addbmm(x, a, b, beta=0), (3, 4), (2, 3, 2),
                         (2, 2, 4))],
    "Tensor.baddbmm": [C(lambda m, F, x, a, b: x.baddbmm(a, b), (2, 3, 4), (2, 3, 2),
                         (2, 2, 4))],
    "corrnet.baddbmm": [C(lambda m, F, x, a, b: m.baddbmm(x, a, b, alpha=0.5), (4,),
                          (2, 3, 2), (2, 2, 4))],
    "corrnet.tensordot": [C(lambda m, F, x, y: m.tensordot(x, y), (2, 3, 4), (3, 4, 2)),
                          C(lambda m, F, x, y: m.tensordot(x, y, ([0, 2], [2, 0])), (2, 3, 4),
                            (4, 2, 2))],
    "corrnet.block_diag": [C(lambda m, F, x, y: m.block_diag(x, y), (2, 3), (3,))],
    "corrnet.cartesian_prod": [C(lambda m, F, x, y: m.cartesian_prod(x, y), (3,), (2,))],
    "corrnet.column_stack": [C(lambda m, F, x, y: m.column_stack([x, y]), (3,), (3, 2))],
    "corrnet.row_stack": [C(lambda m, F, x, y: m.row_stack([x, y]), (4,), (2, 4))],
    "corrnet.dstack": [C(lambda m, F, x, y: m.dstack([x, y]), (3, 4), (3, 4))],
    # statistics, integrals, distances
    "Tensor.logcumsumexp": [C(lambda m, F, x: x.logcumsumexp(1), (3, 4))],
    "corrnet.logcumsumexp": [C(lambda m, F, x: m.logcumsumexp(x * 30, 0), (3, 4))],
    "Tensor.quantile": [C(lambda m, F, x: x.quantile(0.3), D(3, 4)),
                        C(lambda m, F, x: x.quantile(m.tensor([0.2, 0.9], dtype=x.dtype), 1,
                                                     keepdim=True), D(3, 4))],
    "corrnet.quantile": [C(lambda m, F, x: m.quantile(x, 0.5, 0, interpolation="midpoint"),
                           D(3, 4))],
    "Tensor.nanquantile": [C(lambda m, F, x: x.nanquantile(0.7, 1), D(3, 4))],
    "corrnet.nanquantile": [C(lambda m, F, x: m.nanquantile(x, 0.25, interpolation="lower"),
                              D(3, 4))],
    "Tensor.mode": [C(lambda m, F, x: x.mode(1).values, D(3, 4))],
    "corrnet.mode": [C(lambda m, F, x: m.mode(x.round(), 0).values, (4, 3))],
    "Tensor.select": [C(lambda m, F, x: x.select(1, -1), (3, 4))],
    "corrnet.select": [C(lambda m, F, x: m.select(x, 0, 2), (3, 4))],
    "Tensor.cov": [C(lambda m, F, x: x.cov(), (3, 5))],
    "corrnet.cov": [C(lambda m, F, x: m.cov(x, correction=0, aweights=m.tensor(
        [0.5, 1.0, 2.0, 1.0, 1.0], dtype=x.dtype)), (3, 5))],
    "Tensor.corrcoef": [C(lambda m, F, x: x.corrcoef(), (3, 5))],
    "corrnet.corrcoef": [C(lambda m, F, x: m.corrcoef(x), (2, 6))],
    "Tensor.addr": [C(lambda m, F, x, a, b: x.addr(a, b, beta=2), (3, 4), (3,), (4,))],
    "corrnet.addr": [C(lambda m, F, x, a, b: m.addr(x, a, b, alpha=0.5), (4,), (3,), (4,))],
    "corrnet.cdist": [C(lambda m, F, x, y: m.cdist(x, y), (3, 2), (4, 2)),
                      C(lambda m, F, x, y: m.cdist(x, y, p=1), (2, 3, 2), (2, 4, 2))],
    "corrnet.trapezoid": [C(lambda m, F, y: m.trapezoid(y), (3, 4)),
                          C(lambda m, F, y, x: m.trapezoid(y, x, dim=0), (3, 4), (3,))],
    "corrnet.cumulative_trapezoid": [C(lambda m, F, y: m.cumulative_trapezoid(y, dx=0.5),
                                       (3, 4))],
    "corrnet.combinations": [C(lambda m, F, x: m.combinations(x, 2), (4,))],
})


# ---------------------------------------------------------------------------------------------
# recorded but not differentiable in PyTorch: the backward raises
# ---------------------------------------------------------------------------------------------

REFUSED: dict[str, list[Case]] = {
    "Tensor.__floordiv__": [C(lambda m, F, x: x // 0.7, (3, 4)),
                            C(lambda m, F, x, y: x // y, (3, 4), P(4))],
    "Tensor.__rfloordiv__": [C(lambda m, F, x: 2 // x, P(3, 4))],
    "Tensor.floor_divide": [C(lambda m, F, x, y: x.floor_divide(y), (3, 1), P(4))],
    "corrnet.floor_divide": [C(lambda m, F, x, y: m.floor_divide(x, y), (3, 1), P(4))],
    "Tensor.__ifloordiv__": [C(_iop("//"), (3, 4), P(4))],
    "Tensor.__rmod__": [C(lambda m, F, x: 2 % x, P(3, 4))],
}

# ---------------------------------------------------------------------------------------------
# results that do not require grad (in PyTorch and in corrnet)
# ---------------------------------------------------------------------------------------------

NO_GRAD: dict[str, list[Case]] = {
    **{f"Tensor.__{op}__": [C(lambda m, F, x, y, op=op: getattr(operator, op)(x, y), (3, 4), (4,)),
                            C(lambda m, F, x, op=op: getattr(operator, op)(x, 0), (3, 4))]
       for op in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{f"Tensor.{op}": [C(lambda m, F, x, y, op=op: getattr(x, op)(y), (3, 4), (3, 1))]
       for op in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{f"corrnet.{op}": [C(lambda m, F, x, y, op=op: getattr(m, op)(x, y), (3, 4), (4,))]
       for op in ("eq", "ne", "lt", "le", "gt", "ge")},
    "Tensor.__and__": [C(lambda m, F, x, y: x & y, B(3, 4), B(4)),
                       C(lambda m, F, x: (x > 0) & True, (3, 4))],
    "Tensor.__or__": [C(lambda m, F, x, y: x | y, I(3, 4), I(4))],
    "Tensor.__xor__": [C(lambda m, F, x, y: x ^ y, B(3, 4), B(3, 4))],
    "Tensor.__rand__": [C(lambda m, F, x: True & (x > 0), (3, 4)),
                        C(lambda m, F, x: 3 & x, I(3, 4))],
    "Tensor.__ror__": [C(lambda m, F, x: 1 | x, I(3, 4))],
    "Tensor.__rxor__": [C(lambda m, F, x: False ^ x, B(3, 4))],
    "Tensor.__invert__": [C(lambda m, F, x: ~(x > 0), (3, 4))],
    "Tensor.all": [C(lambda m, F, x: x.all(), (3, 4)), C(lambda m, F, x: (x > 0).all(1), (3, 4))],
    "corrnet.all": [C(lambda m, F, x: m.all(x > -1), (3, 4))],
    "Tensor.any": [C(lambda m, F, x: x.any(0), (3, 4))],
    "corrnet.any": [C(lambda m, F, x: m.any(x > 0), (3, 4))],
    "Tensor.argmax": [C(lambda m, F, x: x.argmax(), (3, 4)),
                      C(lambda m, F, x: x.argmax(1), (3, 4))],
    "corrnet.argmax": [C(lambda m, F, x: m.argmax(x, 0), (3, 4))],
    "F.one_hot": [C(lambda m, F, x: F.one_hot((x > 0).long(), 3), (3, 4))],
    "Tensor.argmin": [C(lambda m, F, x: x.argmin(1, keepdim=True), (3, 4))],
    "corrnet.argmin": [C(lambda m, F, x: m.argmin(x), (3, 4))],
    **{f"{owner}.{op}": [C(lambda m, F, x, y, op=op, owner=owner: (
        getattr(x, op)(y) if owner == "Tensor" else getattr(m, op)(x, y)), (3, 4), (4,))]
       for op in ("greater", "greater_equal", "less", "less_equal", "not_equal",
                  "logical_and", "logical_or", "logical_xor")
       for owner in ("Tensor", "corrnet")},
    **{f"{owner}.{op}": [C(lambda m, F, x, y, op=op, owner=owner: (
        getattr(x, op)(y) if owner == "Tensor" else getattr(m, op)(x, y)), I(3, 4), I(4))]
       for op in ("bitwise_and", "bitwise_or", "bitwise_xor") for owner in ("Tensor", "corrnet")},
    **{f"{owner}.{op}": [C(lambda m, F, x, op=op, owner=owner: (
        getattr(x / (x > 0), op)() if owner == "Tensor" else getattr(m, op)(x.log())), (3, 4))]
       for op in ("isinf", "isposinf", "isneginf", "logical_not")
       for owner in ("Tensor", "corrnet")},
    "Tensor.signbit": [C(lambda m, F, x: x.signbit(), (3, 4))],
    "corrnet.signbit": [C(lambda m, F, x: m.signbit(x), (3, 4))],
    "Tensor.isclose": [C(lambda m, F, x, y: x.isclose(y, atol=0.5), (3, 4), (4,))],
    "corrnet.isclose": [C(lambda m, F, x: m.isclose(x, x + 1e-9), (3, 4))],
    "Tensor.count_nonzero": [C(lambda m, F, x: (x > 0).count_nonzero(1), (3, 4))],
    "corrnet.count_nonzero": [C(lambda m, F, x: m.count_nonzero(x > 0), (3, 4))],
    "Tensor.bitwise_not": [C(lambda m, F, x: (x > 0).bitwise_not(), (3, 4))],
    "corrnet.bitwise_not": [C(lambda m, F, x: m.bitwise_not(x), I(3, 4))],
    "Tensor.isnan": [C(lambda m, F, x: (x / (x > 0)).isnan(), (3, 4))],
    "corrnet.isnan": [C(lambda m, F, x: m.isnan(x), (3, 4))],
    "Tensor.isfinite": [C(lambda m, F, x: (1 / (x > 0)).isfinite(), (3, 4))],
    "corrnet.isfinite": [C(lambda m, F, x: m.isfinite(x.log()), (3, 4))],
    "Tensor.bool": [C(lambda m, F, x: x.bool(), (3, 4))],
    "Tensor.int": [C(lambda m, F, x: (x * 4).int(), (3, 4))],
    "Tensor.long": [C(lambda m, F, x: (x * 4).long(), (3, 4))],
    "Tensor.byte": [C(lambda m, F, x: (x.abs() * 4).byte(), (3, 4))],
    "Tensor.char": [C(lambda m, F, x: (x * 4).char(), (3, 4))],
    "Tensor.short": [C(lambda m, F, x: (x * 4).short(), (3, 4))],
    "Tensor.detach": [C(lambda m, F, x: x.detach(), (3, 4))],
    "corrnet.detach": [C(lambda m, F, x: m.detach(x * 2), (3, 4))],
    "Tensor.detach_": [C(lambda m, F, x: (x * 2).detach_(), (3, 4))],
    "Tensor.data": [C(lambda m, F, x: x.data, (3, 4))],
    "corrnet.tensor": [C(lambda m, F, x: m.tensor(x), (3, 4))],
    "corrnet.full_like": [C(lambda m, F, x: m.full_like(x, 2.5), (3, 4))],
    "corrnet.ones_like": [C(lambda m, F, x: m.ones_like(x), (3, 4))],
    "corrnet.zeros_like": [C(lambda m, F, x: m.zeros_like(x), (3, 4))],
    "corrnet.rand_like": [C(lambda m, F, x: m.rand_like(x) * 0, (3, 4))],
    "corrnet.randn_like": [C(lambda m, F, x: m.randn_like(x) * 0, (3, 4))],
    # issue 12 (helper tensorapi)
    "Tensor.argsort": [C(lambda m, F, x: x.argsort(1, descending=True), D(3, 4))],
    "corrnet.argsort": [C(lambda m, F, x: m.argsort(x, 0), D(3, 4))],
    "Tensor.new_zeros": [C(lambda m, F, x: x.new_zeros(2, 3), (3, 4))],
    "Tensor.new_ones": [C(lambda m, F, x: x.new_ones((2,)), (3, 4))],
    "Tensor.new_full": [C(lambda m, F, x: x.new_full((2, 2), 1.5), (3, 4))],
    "Tensor.new_tensor": [C(lambda m, F, x: x.new_tensor([1, 2]), (3, 4))],
    "Tensor.nonzero": [C(lambda m, F, x: x.nonzero(), (3, 4))],
    "corrnet.nonzero": [C(lambda m, F, x: m.nonzero(x > 0), (3, 4))],
    "Tensor.argwhere": [C(lambda m, F, x: x.argwhere(), (3, 4))],
    "corrnet.argwhere": [C(lambda m, F, x: m.argwhere(x > 0), (3, 4))],
    "Tensor.unique": [C(lambda m, F, x: x.unique(), I(3, 4))],
    "corrnet.unique": [C(lambda m, F, x: m.unique(x, dim=0), I(3, 4))],
    "Tensor.unique_consecutive": [C(lambda m, F, x: x.unique_consecutive(), I(3, 4))],
    "corrnet.unique_consecutive": [C(lambda m, F, x: m.unique_consecutive(x, dim=1), I(3, 4))],
    "Tensor.bincount": [C(lambda m, F, x: (x > 0).long().reshape(-1).bincount(), (3, 4))],
    "corrnet.bincount": [C(lambda m, F, x: m.bincount((x > 0).long().reshape(-1),
                                                      minlength=4), (3, 4))],
    "corrnet.searchsorted": [C(lambda m, F, x: m.searchsorted(m.tensor([-1., 0., 1.]), x),
                               (3, 4))],
    "corrnet.bucketize": [C(lambda m, F, x: m.bucketize(x, m.tensor([-1., 0., 1.])), (3, 4))],
    "Tensor.gcd": [C(lambda m, F, x, y: x.gcd(y), I(3, 4), I(4))],
    "corrnet.gcd": [C(lambda m, F, x, y: m.gcd(x, y), I(3, 4), I(3, 4))],
    "Tensor.lcm": [C(lambda m, F, x, y: x.lcm(y), I(3, 4), I(4))],
    "corrnet.lcm": [C(lambda m, F, x, y: m.lcm(x, y), I(3, 4), I(3, 4))],
    "Tensor.heaviside": [C(lambda m, F, x: x.detach().heaviside(m.tensor([0.5])), (3, 4))],
    "corrnet.heaviside": [C(lambda m, F, x: m.heaviside(x.detach(), x.detach()), (3, 4))],
    "Tensor.histc": [C(lambda m, F, x: x.histc(4, -1, 1), (3, 4))],
    "corrnet.histc": [C(lambda m, F, x: m.histc(x, 5), (3, 4))],
}

# ---------------------------------------------------------------------------------------------
# no tensor to differentiate, or no tensor result
# ---------------------------------------------------------------------------------------------

_CREATION = "creates a tensor from sizes or data: no tensor input to differentiate"
_PYTHON = "returns a Python value (or a NumPy array), not a tensor"
_PROPERTY = "describes the tensor (shape, dtype, device, graph state): no op"
_ENGINE = "part of the autograd engine itself, tested in test_autograd.py"
_PROTOCOL = "a Python protocol method that returns no tensor"
_STATE = "global state or files: no tensor op"

EXEMPT: dict[str, str] = {
    **{f"corrnet.{n}": _CREATION for n in (
        "arange", "empty", "eye", "full", "linspace", "ones", "rand", "randint", "randn",
        "randperm", "zeros", "from_numpy", "logspace", "tril_indices", "triu_indices")},
    "corrnet.empty_like": "an uninitialized tensor (arbitrary values), requires_grad False",
    **{f"corrnet.{n}": _STATE for n in (
        "get_default_dtype", "set_default_dtype", "get_num_threads", "set_num_threads",
        "get_rng_state", "set_rng_state", "initial_seed", "manual_seed", "seed",
        "is_grad_enabled", "load", "save")},
    "corrnet.fit": "the training loop: tested in test_train.py",
    "corrnet.summary": "prints a model summary: tested in test_summary.py",
    "corrnet.numel": _PYTHON,
    "corrnet.vander": ("PyTorch 2.13's vander has no working backward (it raises on its own "
                       "in-place cumprod_); corrnet's gradient is checked against finite "
                       "differences in test_torch_names_more.py"),
    **{f"corrnet.{n}": _PYTHON for n in (
        "is_tensor", "is_floating_point", "is_complex", "is_nonzero", "result_type",
        "promote_types", "can_cast")},
    **{f"Tensor.{n}": _PYTHON for n in ("is_complex", "is_nonzero")},
    "corrnet.equal": _PYTHON,
    "corrnet.allclose": _PYTHON,
    **{f"Tensor.{n}": _PYTHON for n in (
        "item", "tolist", "numpy", "equal", "allclose", "numel", "nelement", "element_size",
        "dim", "is_contiguous", "is_floating_point", "__float__", "__int__", "__index__",
        "__bool__", "__len__", "__array__", "__format__", "__repr__", "__str__", "__hash__")},
    **{f"Tensor.{n}": _PROPERTY for n in (
        "shape", "size", "dtype", "device", "ndim", "is_cuda", "is_leaf", "requires_grad",
        "retains_grad", "__array_priority__")},
    **{f"Tensor.{n}": _ENGINE for n in ("backward", "retain_grad", "requires_grad_")},
    "Tensor.register_hook": "a gradient hook in the engine: tested in test_issue12_hooks.py",
    "Tensor.__init__": "the legacy constructor torch.Tensor(data or sizes): creation",
    "Tensor.__deepcopy__": "copy.deepcopy of a leaf: tested in test_tensor_api.py",
    "Tensor.__reduce__": "pickling is refused on purpose (see serialization)",
    "Tensor.cuda": "a copy to a CUDA device (ToCopyBackward0, the gradient copied back): "
                   "needs CUDA or the stand-in, tested in test_issue15_device.py",
    "Tensor.get_device": "the CUDA device's index (-1 on the CPU), an int",
    "Tensor.is_pinned": "whether the array is in page-locked host memory, a bool",
    "Tensor.pin_memory": "a page-locked host copy for DataLoader(pin_memory=True): needs CUDA "
                         "(PyTorch's CPU build refuses it), tested in test_issue15_around.py",
    "Tensor.register_post_accumulate_grad_hook": "a hook the engine runs after a leaf's .grad "
                                                 "is accumulated: tested in "
                                                 "test_issue16_distributed.py",
    "Tensor.__rmatmul__": "reached only for a non-tensor left operand, refused as PyTorch "
                          "(test_issue11_matmul_with_non_tensors)",
    "F.is_grad_enabled": "the grad-mode query imported into nn.functional",
    "F.result_type": "type promotion of dtypes, imported into nn.functional",
    "F.log_softmax_array": "the array kernel behind log_softmax: takes arrays, not tensors",
    # issue 12 (helper tensorapi)
    **{f"corrnet.{n}": _STATE for n in ("set_printoptions", "get_printoptions", "printoptions")},
    "Tensor.new_empty": "an uninitialized tensor (arbitrary values), requires_grad False",
    # issue 14 (helper identify)
    "corrnet.identify_kernel": "least squares on arrays, returns NumPy arrays (no graph): "
                               "tested in test_issue14_identify.py",
}

_CLASS_MACHINERY = {"__dict__", "__doc__", "__module__", "__weakref__", "__firstlineno__",
                    "__static_attributes__", "__annotations__", "__qualname__", "__slots__"}


def public_ops() -> set[str]:
    """Every public name of corrnet's tensor API, found by introspection."""
    names = {f"Tensor.{n}" for cls in ct.Tensor.__mro__[:-1] for n in vars(cls)
             if not (n.startswith("_") and not n.startswith("__")) and n not in _CLASS_MACHINERY}
    for prefix, module in (("corrnet", ct), ("F", cF)):
        for n in dir(module):
            value = getattr(module, n)
            if n.startswith("_") or inspect.isclass(value) or inspect.ismodule(value):
                continue
            if callable(value):
                names.add(f"{prefix}.{n}")
    return names


def test_every_public_op_is_audited():
    """A public op must be gradient-checked, refused, no-grad-checked or exempt (with a
    reason) — exactly one of them — and every listed name must still exist."""
    tables = {"GRAD": set(GRAD), "REFUSED": set(REFUSED), "NO_GRAD": set(NO_GRAD),
              "EXEMPT": set(EXEMPT)}
    listed: dict[str, list[str]] = {}
    for table, names in tables.items():
        for n in names:
            listed.setdefault(n, []).append(table)
    twice = {n: t for n, t in listed.items() if len(t) > 1}
    assert not twice, f"ops listed in more than one table: {twice}"
    ops = public_ops()
    missing = sorted(ops - set(listed))
    assert not missing, f"public ops in no audit table (add a case or an exemption): {missing}"
    stale = sorted(set(listed) - ops)
    assert not stale, f"audit entries for names that are no longer public: {stale}"


# ---------------------------------------------------------------------------------------------
# running the cases
# ---------------------------------------------------------------------------------------------


def _ids(table):
    return [pytest.param(name, i, case, id=f"{name}[{i}]")
            for name, cases in table.items() for i, case in enumerate(cases)]


def _arrays(case, dtype, seed):
    rng = np.random.default_rng(seed)
    return [_array(rng, spec, np.dtype(dtype)) for spec in case.args]


def _flags(case):
    return [not (isinstance(s, Arg) and s.kind.startswith("const")) for s in case.args]


def _run(case, lib, device=True):
    """The case as a function of tensors; for corrnet, its ``m.tensor(...)`` (index tensors)
    on the test device — or on the CPU (``device=False``), where the inputs are."""
    m, F = ((on_test_device(ct) if device else ct), cF) if lib == "corrnet" else (tt, tF)
    fn = case.torch_fn if (lib == "torch" and case.torch_fn is not None) else case.fn
    return lambda *tensors: fn(m, F, *tensors)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "index", "case"), _ids(GRAD))
def test_gradient_matches_torch(name, index, case, dtype):
    if dtype not in case.dtypes:
        pytest.skip(f"{name} is checked in {case.dtypes}")
    result = check_op(_run(case, "corrnet"), _run(case, "torch"), _arrays(case, dtype, index),
                      requires_grad=_flags(case), name=f"{name}[{index}] {dtype}", seed=index)
    assert not result.rejected, f"{name}: the case is meant to be valid: {result.torch_error}"
    assert any(t.requires_grad for t in result.torch_outputs), (
        f"{name}[{index}]: torch's result does not require grad: list the op in NO_GRAD")


def _finite_difference_cases():
    return [p for p in _ids(GRAD) if p.values[2].fd and "float64" in p.values[2].dtypes]


@pytest.mark.parametrize(("name", "index", "case"), _finite_difference_cases())
def test_gradient_matches_finite_differences(name, index, case):
    """float64: corrnet's gradient against central differences of corrnet's forward."""
    arrays = _arrays(case, "float64", index)
    flags = [f and a.dtype.kind == "f" for f, a in zip(_flags(case), arrays, strict=True)]
    fn = _run(case, "corrnet", device=False)  # a CPU check: its inputs are ct.tensor(...)
    rng = np.random.default_rng(1000 + index)

    def outputs(values):
        out = fn(*[ct.tensor(v, requires_grad=f) for v, f in zip(values, flags, strict=True)])
        return [o for o in (out if isinstance(out, tuple) else (out,))
                if o.dtype.is_floating_point]

    first = outputs(arrays)
    upstream = [rng.standard_normal(tuple(o.shape)) for o in first]

    def loss(values):
        with ct.no_grad():
            return sum(float((o._data * u).sum()) for o, u in zip(outputs(values), upstream,
                                                                    strict=True))

    inputs = [ct.tensor(v, requires_grad=f) for v, f in zip(arrays, flags, strict=True)]
    out = fn(*inputs)
    out = [o for o in (out if isinstance(out, tuple) else (out,)) if o.dtype.is_floating_point]
    total = sum((o * ct.tensor(u)).sum() for o, u in zip(out, upstream, strict=True)
                if o.requires_grad)
    total.backward()
    eps = 1e-6
    for k, (array, flag, tensor) in enumerate(zip(arrays, flags, inputs, strict=True)):
        if not flag:
            continue
        numeric = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[k][i] += eps
            minus[k][i] -= eps
            numeric[i] = (loss(plus) - loss(minus)) / (2 * eps)
        analytic = np.zeros_like(array) if tensor.grad is None else to_numpy(tensor.grad)
        assert_scaled_close(analytic, numeric, 1e-5, 1e-6,
                            f"{name}[{index}]: gradient of input {k} vs finite differences")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "index", "case"), _ids(REFUSED))
def test_backward_refused_as_torch(name, index, case, dtype):
    """The forward agrees with PyTorch; a backward pass through the op raises as PyTorch."""
    arrays = _arrays(case, dtype, index)
    result = check_op(_run(case, "corrnet"), _run(case, "torch"), arrays, grad=False,
                      requires_grad=_flags(case), name=f"{name}[{index}]")
    assert not result.rejected
    (t_out,), (c_out,) = result.torch_outputs, result.corrnet_outputs
    assert t_out.requires_grad and c_out.requires_grad
    with pytest.raises(RuntimeError) as torch_error:
        t_out.sum().backward()
    with pytest.raises(RuntimeError) as corrnet_error:
        c_out.sum().backward()
    # the in-place form names aten::floor_divide_ in PyTorch; corrnet names the op
    assert str(corrnet_error.value) == str(torch_error.value).replace("_ is not", " is not")


@pytest.mark.parametrize(("name", "index", "case"), _ids(NO_GRAD))
def test_result_does_not_require_grad(name, index, case):
    result = check_op(_run(case, "corrnet"), _run(case, "torch"), _arrays(case, "float32", index),
                      requires_grad=_flags(case), name=f"{name}[{index}]")
    assert not result.rejected, f"{name}: the case is meant to be valid: {result.torch_error}"
    assert not any(t.requires_grad for t in result.torch_outputs)


def test_issue11_remainder_records_its_gradient():
    """``x % 1.0`` recorded no gradient: ((x % 1.0) * 3 + x).sum() gave grad 1 (PyTorch: 4)."""
    values = [1.5, -2.5, 3.25]
    grads = []
    for lib in (ct, tt):
        x = lib.tensor(values, requires_grad=True)
        ((x % 1.0) * 3 + x).sum().backward()
        grads.append(to_numpy(x.grad))
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_array_equal(grads[0], [4.0, 4.0, 4.0])


def test_issue11_floor_divide_backward_refused():
    """``x // 2`` was silently treated as a constant; PyTorch refuses its derivative."""
    x = ct.tensor([1.5, -2.5], requires_grad=True)
    y = (x // 2) * 0 + x
    assert y.requires_grad
    with pytest.raises(RuntimeError, match="derivative for aten::floor_divide is not implemented"):
        y.sum().backward()


# ---------------------------------------------------------------------------------------------
# calls PyTorch refuses outright: corrnet raises the same exception type
# ---------------------------------------------------------------------------------------------

REFUSED_CALLS: dict[str, Case] = {
    "float & float": C(lambda m, F, x, y: x & y, (3,), (3,)),
    "~float": C(lambda m, F, x: ~x, (3,)),
    "bool // bool": C(lambda m, F, x: (x > 0) // (x > 1), (3,)),
    "int // 0": C(lambda m, F, x: x // 0, I(3)),
    "int % 0": C(lambda m, F, x: x % m.zeros(3, dtype=m.int64), I(3)),
    "mm(t, 2)": C(lambda m, F, x: m.mm(x, 2), (2, 2)),
    "mm(2, t)": C(lambda m, F, x: m.mm(2, x), (2, 2)),
    "t.mm(2)": C(lambda m, F, x: x.mm(2.5), (2, 2)),
    "matmul(t, 2)": C(lambda m, F, x: m.matmul(x, 2), (2, 2)),
    "t.matmul(list)": C(lambda m, F, x: x.matmul([1.0, 2.0]), (2, 2)),
    "t @ 2": C(lambda m, F, x: x @ 2, (2, 2)),
    "2 @ t": C(lambda m, F, x: 2 @ x, (2, 2)),
    "x[::-1]": C(lambda m, F, x: x[::-1], (3, 4)),
    "x[:, ::-2]": C(lambda m, F, x: x[:, ::-2], (3, 4)),
    "x[::0]": C(lambda m, F, x: x[::0], (3, 4)),
    "x[1.0]": C(lambda m, F, x: x[1.0], (3, 4)),
    "x[float tensor]": C(lambda m, F, x: x[m.tensor([1.0])], (3, 4)),
    "x[int8 tensor]": C(lambda m, F, x: x[m.tensor([1], dtype=m.int8)], (3, 4)),
    "x[wrong mask]": C(lambda m, F, x: x[[[True, False], [False, True], [True, True]]], (3, 4)),
    "x[out of range]": C(lambda m, F, x: x[[0, 3]], (3, 4)),
    "x[too many]": C(lambda m, F, x: x[0, 1, 2], (3, 4)),
    "x[::-1] = v": C(lambda m, F, x: x.detach()[::-1].__setitem__(slice(None), 0.0), (3, 4)),
    "batch_norm running_var requires grad": C(
        lambda m, F, x, rm, rv: F.batch_norm(x, rm, rv, training=True), (4, 3), K(3), P(3)),
    "batch_norm running_mean requires grad": C(
        lambda m, F, x, rm, rv: F.batch_norm(x, rm, rv), (4, 3), (3,), KP(3)),
    "nll_loss weight requires grad": C(
        lambda m, F, x, t, w: F.nll_loss(x, t, weight=w), (4, 3), L(3, 4), P(3)),
    "norm p='nuc' of a vector": C(lambda m, F, x: x.norm(p="nuc"), (3,)),
    "std of int": C(lambda m, F, x: x.std(), I(3)),
    "amax of empty": C(lambda m, F, x: x[:0].amax(), (3,)),
    "fill_ with a 1-d tensor": C(lambda m, F, x: x.detach().clone().fill_(x[:2]), (3,)),
    "normal with negative std": C(lambda m, F, x: m.normal(x, x * 0 - 1), (3,)),
}


@pytest.mark.parametrize("name", list(REFUSED_CALLS))
def test_call_refused_as_torch(name):
    case = REFUSED_CALLS[name]
    arrays = _arrays(case, "float32", 0)
    flags = _flags(case)
    t_in = [tt.tensor(a, requires_grad=bool(f and a.dtype.kind == "f"))
            for a, f in zip(arrays, flags, strict=True)]
    with pytest.raises(Exception) as torch_error:
        _run(case, "torch")(*t_in)
    c_in = [ct.tensor(a, requires_grad=bool(f and a.dtype.kind == "f"))
            for a, f in zip(arrays, flags, strict=True)]
    with pytest.raises(Exception) as corrnet_error:
        _run(case, "corrnet")(*c_in)
    expected = type(torch_error.value)
    assert isinstance(corrnet_error.value, expected), (
        f"{name}: torch raises {expected.__name__}({torch_error.value}); corrnet raised "
        f"{type(corrnet_error.value).__name__}({corrnet_error.value})")


# ---------------------------------------------------------------------------------------------
# the widened strategy for arithmetic: every operator in every form, broadcast shapes, mixed
# dtypes (the class of `x % 1.0`: an operator form whose gradient nobody checked)
# ---------------------------------------------------------------------------------------------

_OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "%": operator.mod, "**": operator.pow, "//": operator.floordiv,
    "maximum": lambda a, b: a.maximum(b) if hasattr(a, "maximum") else b.maximum(a),
}
_INPLACE = {"+": operator.iadd, "-": operator.isub, "*": operator.imul, "/": operator.itruediv,
            "%": operator.imod, "**": operator.ipow, "//": operator.ifloordiv}


@oracle_settings(120)
@given(
    op=st.sampled_from(sorted(_OPERATORS)),
    form=st.sampled_from(["tensors", "scalar right", "scalar left", "0-d left", "in place"]),
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
    dtypes=st.sampled_from([("float32", "float32"), ("float64", "float64"),
                            ("float32", "float64"), ("int64", "float32"),
                            ("float64", "int64")]),
    scalar=st.sampled_from([2, 0.5, -1.5, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_operators_in_every_form_match_torch(op, form, shapes, dtypes, scalar, seed):
    """Values and gradients of ``a <op> b`` with tensors, Python numbers on either side, a 0-d
    tensor on the left, and the in-place form ``a <op>= b``; for ``//`` (and a number on the
    left of ``%``) the backward must be refused as PyTorch refuses it."""
    if op == "maximum" and form != "tensors":
        form = "tensors"
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes.input_shapes
    if form == "0-d left":
        a_shape = ()

    def draw(shape, dtype, positive):
        if np.dtype(dtype).kind == "i":
            return rng.integers(1, 4, shape).astype(dtype)
        low = 0.5 if positive else -2.0
        return rng.uniform(low, 2.0, shape).astype(dtype)

    positive_base = op == "**"
    a = draw(a_shape, dtypes[0], positive_base)
    b = draw(b_shape, dtypes[1], op in ("/", "%", "//"))

    def call(x, y=None):
        if form == "scalar right":
            return _OPERATORS[op](x, scalar)
        if form == "scalar left":
            return _OPERATORS[op](abs(scalar) if op == "**" else scalar, x)
        if form == "in place":
            return _INPLACE[op](x.clone(), y)
        return _OPERATORS[op](x, y)

    arrays = [a] if form.startswith("scalar") else [a, b]
    refused = op == "//" or (op == "%" and form == "scalar left")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # mixed float32/float64: PyTorch rounds some intermediates to float32
        mixed = len(set(dtypes)) > 1 and form not in ("scalar right", "scalar left")
        result = check_op(call, call, arrays, grad=not refused, rtol=1e-5 if mixed else None,
                          name=f"{form}: {dtypes} {op} {shapes.input_shapes}")
    if refused and not result.rejected:
        (t_out,), (c_out,) = result.torch_outputs, result.corrnet_outputs
        assert c_out.requires_grad == t_out.requires_grad
        if t_out.requires_grad:
            with pytest.raises(RuntimeError, match="is not implemented"):
                c_out.sum().backward()
