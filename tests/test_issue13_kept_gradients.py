"""Issue 13: a leaf's first gradient becomes its ``.grad`` without a copy where nothing but
the backward engine refers to it (PyTorch's AccumulateGrad steals such a gradient), and is
copied wherever anything else could see it: another leaf given the same array, a hook that
kept it, a retained non-leaf gradient, a view of another array, an array the caller passed.
Each case is checked the way it could go wrong: after the backward, the leaf's ``.grad`` is
changed in place, and everything else must keep its value (and the values must be
PyTorch's)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import corrnet as ct
from corrnet.kernels import plan

F = ct.nn.functional


def _address(array) -> int:
    return array.__array_interface__["data"][0]


@pytest.fixture
def results(monkeypatch):
    """Where the arrays the convolution's passes return keep their numbers (the address of
    their memory), by pass name; the arrays themselves are not held (a reference more would
    make them shared)."""
    made = {}
    conv_pass = plan.conv_pass

    def recording(pass_name, *args, **kwargs):
        result = conv_pass(pass_name, *args, **kwargs)
        made[pass_name] = (_address(result), result.flags.owndata)
        return result

    monkeypatch.setattr(plan, "conv_pass", recording)
    return made


def test_issue13_a_fresh_input_gradient_is_kept_without_a_copy(results):
    """conv2d's input gradient is the kernel's own new array: kept; the result is torch's, and
    a second backward adds into it in place."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w_np = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    x = ct.tensor(x_np, requires_grad=True)
    w = ct.tensor(w_np, requires_grad=True)
    F.conv2d(x, w, padding=1, groups=3).sum().backward()
    if sys.modules["corrnet.tensor"]._COUNTS_REFERENCES:
        assert results["grad_input"] == (_address(x.grad.numpy()), True)
    else:                                   # (no reference counts to trust: copied)
        assert results["grad_input"][0] != _address(x.grad.numpy())
    tx = torch.tensor(x_np, requires_grad=True)
    tw = torch.tensor(w_np, requires_grad=True)
    torch.nn.functional.conv2d(tx, tw, padding=1, groups=3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    first = x.grad.numpy()
    F.conv2d(x, w, padding=1, groups=3).sum().backward()
    assert x.grad.numpy() is first          # accumulated in place, as PyTorch
    np.testing.assert_allclose(first, 2 * tx.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_issue13_one_array_for_two_leaves_is_copied():
    """a + b passes the same gradient array to both leaves: neither may keep it."""
    a = ct.randn(5, requires_grad=True)
    b = ct.randn(5, requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.add_(10)
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(5, np.float32))


def test_issue13_a_gradient_a_hook_kept_is_copied():
    """A tensor hook that keeps its gradient: the leaf's .grad is a copy of it."""
    x = ct.randn(4, requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append(grad))
    (x * 3).sum().backward()
    x.grad.add_(100)
    np.testing.assert_array_equal(seen[0].numpy(), np.full(4, 3, np.float32))


def test_issue13_a_retained_gradient_is_not_shared_with_the_leaf():
    """y = x * 1 with y.retain_grad(): y's gradient and x's are separate arrays."""
    x = ct.randn(3, requires_grad=True)
    y = x * 1
    y.retain_grad()
    (y * 2).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    x.grad.add_(5)
    np.testing.assert_array_equal(y.grad.numpy(), np.full(3, 2, np.float32))


def test_issue13_the_callers_gradient_is_copied():
    """A leaf's backward(gradient): the gradient the caller passed stays the caller's."""
    x = ct.randn(3, requires_grad=True)
    given = ct.tensor([1.0, 2.0, 3.0])
    x.backward(given)
    x.grad.add_(1)
    np.testing.assert_array_equal(given.numpy(), [1.0, 2.0, 3.0])


def test_issue13_a_view_is_copied(results):
    """A gradient that views another array (the weight gradient: a reshape of the kernel's
    buffer) is copied: the buffer could be reached through it."""
    w = ct.randn(3, 1, 3, 3, requires_grad=True)
    x = ct.randn(2, 3, 9, 9)
    F.conv2d(x, w, padding=1, groups=3).sum().backward()
    address, owns_memory = results["grad_weight"]
    assert not owns_memory
    assert _address(w.grad.numpy()) != address
