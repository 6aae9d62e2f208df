"""``grad_fn`` as PyTorch prints it (issue 12, item 2): ``repr(t.grad_fn)`` is
``<MulBackward0 object at 0x...>``, ``t.grad_fn.name()`` is ``'MulBackward0'`` and
``grad_fn.next_functions`` pairs each input's node with 0, as in PyTorch. The expected names
are what torch gives for the same expression, not a hand-written list."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import corrnet


def _functional(lib):
    return corrnet.nn.functional if lib is corrnet else torch.nn.functional


def _leaves(lib):
    rng = np.random.default_rng(0)
    make = lambda *shape: lib.tensor(rng.standard_normal(shape), requires_grad=True)  # noqa: E731
    return make(3, 4), make(2, 3, 4), make(5, 4), make(5), make(1, 2, 5, 5), make(4)


CASES = {
    "mul": lambda lib, a, b, w, bias, img, v: a * 2,
    "mul_tensors": lambda lib, a, b, w, bias, img, v: a * a,
    "add": lambda lib, a, b, w, bias, img, v: a + a,
    "add_scalar": lambda lib, a, b, w, bias, img, v: a + 1,
    "sub": lambda lib, a, b, w, bias, img, v: a - a,
    "div": lambda lib, a, b, w, bias, img, v: a / 2,
    "pow": lambda lib, a, b, w, bias, img, v: a ** 2,
    "pow_tensor": lambda lib, a, b, w, bias, img, v: a ** a,
    "neg": lambda lib, a, b, w, bias, img, v: -a,
    "abs": lambda lib, a, b, w, bias, img, v: a.abs(),
    "exp": lambda lib, a, b, w, bias, img, v: a.exp(),
    "log": lambda lib, a, b, w, bias, img, v: a.log(),
    "sqrt": lambda lib, a, b, w, bias, img, v: a.sqrt(),
    "clamp": lambda lib, a, b, w, bias, img, v: a.clamp(0, 1),
    "maximum": lambda lib, a, b, w, bias, img, v: lib.maximum(a, a * 2),
    "where": lambda lib, a, b, w, bias, img, v: lib.where(a > 0, a, a * 2),
    "relu": lambda lib, a, b, w, bias, img, v: _functional(lib).relu(a),
    "sigmoid": lambda lib, a, b, w, bias, img, v: a.sigmoid(),
    "tanh": lambda lib, a, b, w, bias, img, v: a.tanh(),
    "softmax": lambda lib, a, b, w, bias, img, v: _functional(lib).softmax(a, dim=1),
    "log_softmax": lambda lib, a, b, w, bias, img, v: _functional(lib).log_softmax(a, dim=1),
    "sum": lambda lib, a, b, w, bias, img, v: a.sum(),
    "sum_dim": lambda lib, a, b, w, bias, img, v: a.sum(1),
    "mean": lambda lib, a, b, w, bias, img, v: a.mean(),
    "mean_dim": lambda lib, a, b, w, bias, img, v: a.mean(0),
    "max": lambda lib, a, b, w, bias, img, v: a.max(),
    "max_dim": lambda lib, a, b, w, bias, img, v: a.max(1)[0],
    "norm": lambda lib, a, b, w, bias, img, v: a.norm(),
    "std": lambda lib, a, b, w, bias, img, v: a.std(),
    "var_dim": lambda lib, a, b, w, bias, img, v: a.var(1),
    "view": lambda lib, a, b, w, bias, img, v: a.view(12),
    "reshape": lambda lib, a, b, w, bias, img, v: a.reshape(2, 6),
    "flatten": lambda lib, a, b, w, bias, img, v: b.flatten(1),
    "T": lambda lib, a, b, w, bias, img, v: a.T,
    "t": lambda lib, a, b, w, bias, img, v: a.t(),
    "transpose": lambda lib, a, b, w, bias, img, v: b.transpose(0, 2),
    "permute": lambda lib, a, b, w, bias, img, v: b.permute(2, 0, 1),
    "expand": lambda lib, a, b, w, bias, img, v: bias.expand(3, 5),
    "select": lambda lib, a, b, w, bias, img, v: a[0],
    "slice": lambda lib, a, b, w, bias, img, v: a[1:],
    "index": lambda lib, a, b, w, bias, img, v: a[lib.tensor([0, 2])],
    "cat": lambda lib, a, b, w, bias, img, v: lib.cat([a, a]),
    "stack": lambda lib, a, b, w, bias, img, v: lib.stack([a, a]),
    "clone": lambda lib, a, b, w, bias, img, v: a.clone(),
    "to_float64": lambda lib, a, b, w, bias, img, v: a.float().to(lib.float64),
    "repeat": lambda lib, a, b, w, bias, img, v: a.repeat(2, 1),
    "mm": lambda lib, a, b, w, bias, img, v: a @ w.T,
    "mv": lambda lib, a, b, w, bias, img, v: w @ v,
    "dot": lambda lib, a, b, w, bias, img, v: v @ v,
    "linear": lambda lib, a, b, w, bias, img, v: _functional(lib).linear(a, w, bias),
    "linear_no_bias": lambda lib, a, b, w, bias, img, v: _functional(lib).linear(a, w),
    "linear_3d": lambda lib, a, b, w, bias, img, v: _functional(lib).linear(b, w, bias),
    "nn_linear": lambda lib, a, b, w, bias, img, v: lib.nn.Linear(4, 5).double()(a),
    "conv2d": lambda lib, a, b, w, bias, img, v: _functional(lib).conv2d(
        img, lib.ones(3, 2, 3, 3, dtype=lib.float64)),
    "conv_transpose2d": lambda lib, a, b, w, bias, img, v: _functional(lib).conv_transpose2d(
        img, lib.ones(2, 3, 3, 3, dtype=lib.float64)),
    "max_pool2d": lambda lib, a, b, w, bias, img, v: _functional(lib).max_pool2d(img, 2),
    "avg_pool2d": lambda lib, a, b, w, bias, img, v: _functional(lib).avg_pool2d(img, 2),
    "adaptive_avg_pool2d": lambda lib, a, b, w, bias, img, v:
        _functional(lib).adaptive_avg_pool2d(img, 2),
    "adaptive_max_pool2d": lambda lib, a, b, w, bias, img, v:
        _functional(lib).adaptive_max_pool2d(img, 2),
    "pad": lambda lib, a, b, w, bias, img, v: _functional(lib).pad(img, (1, 1)),
    "unfold": lambda lib, a, b, w, bias, img, v: _functional(lib).unfold(img, 2),
    "batch_norm": lambda lib, a, b, w, bias, img, v: _functional(lib).batch_norm(
        img, None, None, training=True),
    "cross_entropy": lambda lib, a, b, w, bias, img, v: _functional(lib).cross_entropy(
        a, lib.tensor([0, 1, 3])),
    "nll_loss": lambda lib, a, b, w, bias, img, v: _functional(lib).nll_loss(
        a, lib.tensor([0, 1, 3])),
}

_REPR = re.compile(r"<(\w+) object at 0x[0-9a-f]+>")


@pytest.mark.parametrize("name", sorted(CASES))
def test_issue12_grad_fn_name_as_torch(name):
    got = CASES[name](corrnet, *_leaves(corrnet)).grad_fn
    expected = CASES[name](torch, *_leaves(torch)).grad_fn
    assert got.name() == expected.name(), name
    match = _REPR.fullmatch(repr(got))
    assert match and match.group(1) == expected.name(), repr(got)


def test_issue12_next_functions_as_torch():
    def graph(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x * 2).exp() + x
        return y.grad_fn, x

    for lib in (corrnet, torch):
        add, x = graph(lib)
        (exp, i), (accumulate, j) = add.next_functions
        assert (exp.name(), i, j) == ("ExpBackward0", 0, 0)
        assert accumulate.name() == "torch::autograd::AccumulateGrad"
        assert _REPR.fullmatch(repr(accumulate)).group(1) == "AccumulateGrad"
        assert accumulate.variable is x
        (mul, _), = exp.next_functions
        assert mul.name() == "MulBackward0"
        assert [(None if f is None else f.name(), k) for f, k in mul.next_functions] == [
            ("torch::autograd::AccumulateGrad", 0), (None, 0)]


def test_issue12_grad_fn_name_survives_backward():
    x = corrnet.tensor([[1.0, 2.0]], requires_grad=True)
    y = x.sum(1)
    y.sum().backward()
    assert y.grad_fn.name() == "SumBackward1"
    assert "SumBackward1" in repr(y)
