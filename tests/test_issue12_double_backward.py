"""corrnet.autograd.grad / backward and create_graph=True (issue 12, item 2): the API's
semantics and errors as PyTorch's, and second derivatives against float64 finite differences
of corrnet's first gradient. (The values against PyTorch: tests/oracle/
test_issue12_double_backward_oracle.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import corrnet
from corrnet.nn import functional as F


def _both(array, requires_grad=True):
    return (corrnet.tensor(array, dtype=corrnet.float64, requires_grad=requires_grad),
            torch.tensor(array, dtype=torch.float64, requires_grad=requires_grad))


def _raises_like_torch(call):
    """call(lib) raises the same exception type in corrnet as in torch; returns both."""
    with pytest.raises(Exception) as expected:
        call(torch)
    with pytest.raises(type(expected.value)) as got:
        call(corrnet)
    return got.value, expected.value


# ---------------------------------------------------------------------------------- the API
def test_issue12_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    for lib in (corrnet, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        grads = lib.autograd.grad((x * w).sum(), [x, w])
        assert isinstance(grads, tuple) and len(grads) == 2
        np.testing.assert_array_equal(grads[0].numpy(), [0.5, -1.0, 2.0])
        np.testing.assert_array_equal(grads[1].numpy(), [1.0, 2.0, 3.0])
        assert x.grad is None and w.grad is None
        assert not grads[0].requires_grad and grads[0].grad_fn is None


def test_issue12_grad_of_a_non_leaf_and_with_grad_outputs_matches_torch():
    def run(lib):
        x = lib.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=lib.float64, requires_grad=True)
        hidden = x.tanh()
        out = hidden * hidden * x
        upstream = lib.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=lib.float64)
        return lib.autograd.grad(out, [hidden, x], grad_outputs=upstream)

    for got, expected in zip(run(corrnet), run(torch), strict=True):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)


def test_issue12_grad_errors_as_torch():
    # an input the output does not depend on
    def unused(lib):
        x, y = (lib.tensor([1.0], requires_grad=True) for _ in range(2))
        lib.autograd.grad((x * 2).sum(), [x, y])

    got, _ = _raises_like_torch(unused)
    assert "allow_unused=True" in str(got)

    # allow_unused: None for it
    for lib in (corrnet, torch):
        x, y = (lib.tensor([1.0], requires_grad=True) for _ in range(2))
        assert lib.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)[1] is None
        zeros = lib.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True)[1]
        np.testing.assert_array_equal(zeros.numpy(), [0.0])

    # an input that does not require grad, an output that does not, a non-scalar output
    got, _ = _raises_like_torch(lambda lib: lib.autograd.grad(
        (lib.ones(2, requires_grad=True) * 2).sum(), lib.ones(2)))
    assert "does not require grad" in str(got)
    got, _ = _raises_like_torch(lambda lib: lib.autograd.grad(
        lib.ones(2).sum(), lib.ones(2, requires_grad=True)))
    assert "does not require grad" in str(got)
    got, _ = _raises_like_torch(lambda lib: lib.autograd.grad(
        lib.ones(2, requires_grad=True) * 2, lib.ones(2, requires_grad=True)))
    assert "scalar outputs" in str(got)

    # grad_outputs of the wrong shape
    def wrong_shape(lib):
        x = lib.ones(3, requires_grad=True)
        lib.autograd.grad(x * 2, x, grad_outputs=lib.ones(2))

    got, _ = _raises_like_torch(wrong_shape)
    assert "shape" in str(got)


def test_issue12_graph_is_freed_unless_retained_as_torch():
    def twice(lib, **options):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x.exp() * x).sum()
        first = lib.autograd.grad(y, x, **options)
        return first, lib.autograd.grad(y, x)

    got, _ = _raises_like_torch(lambda lib: twice(lib))
    assert "second time" in str(got)
    for lib in (corrnet, torch):  # retain_graph=True, or create_graph=True (its default)
        for options in ({"retain_graph": True}, {"create_graph": True}):
            first, second = twice(lib, **options)
            np.testing.assert_allclose(first[0].detach().numpy(), second[0].numpy())


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")  # torch's
def test_issue12_backward_create_graph_makes_dot_grad_differentiable():
    results = []
    for lib in (corrnet, torch):
        x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (x ** 3).sum().backward(create_graph=True)
        first = x.grad
        assert first.requires_grad and first.grad_fn is not None
        (x.grad * x).sum().backward()  # adds d/dx 3x^3 to the recorded 3x^2, out of place
        results.append((first.detach().numpy(), x.grad.detach().numpy()))
    for got, expected in zip(*results, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_issue12_autograd_backward_as_torch():
    results = []
    for lib in (corrnet, torch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, -1.0], requires_grad=True)
        lib.autograd.backward([a * b, (a * a).sum()], [lib.tensor([1.0, 0.5]), None])
        results.append((a.grad.numpy(), b.grad.numpy()))
    for got, expected in zip(*results, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_issue12_ordinary_backward_records_nothing():
    x = corrnet.tensor([1.0, 2.0], requires_grad=True)
    (x.sigmoid() * x).sum().backward()
    assert x.grad.grad_fn is None and not x.grad.requires_grad
    (g,) = corrnet.autograd.grad((x.tanh() * x).sum(), x)
    assert g.grad_fn is None and not g.requires_grad


def test_issue12_a_function_without_a_differentiable_backward_is_named():
    x = corrnet.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="ProdBackward0.*create_graph"):
        corrnet.autograd.grad(x.prod(), x, create_graph=True)
    # without create_graph the same op differentiates as before
    np.testing.assert_allclose(corrnet.autograd.grad(x.prod(), x)[0].numpy(), [6.0, 3.0, 2.0])


def test_issue12_grad_docstring_example():
    x = corrnet.tensor(3.0, requires_grad=True)
    (dx,) = corrnet.autograd.grad(x ** 3, x, create_graph=True)
    assert dx.item() == 27.0 and dx.grad_fn.name() == "MulBackward0"
    assert corrnet.autograd.grad(dx, x)[0].item() == 18.0


# --------------------------------------------------------- finite differences of the gradient
def _net(x, weight, bias, lin):
    y = F.conv2d(x, weight, bias, stride=1, padding=1)
    y = F.max_pool2d(y.tanh(), 2)
    y = F.batch_norm(y, None, None, training=True)
    y = F.avg_pool2d(y.sigmoid(), 2).flatten(1)
    return F.cross_entropy(F.linear(y, lin), corrnet.tensor([1, 0]))


def _gradients(function, arrays, create_graph):
    inputs = [corrnet.tensor(a, requires_grad=True) for a in arrays]
    grads = corrnet.autograd.grad(function(*inputs), inputs, create_graph=create_graph)
    return inputs, grads


@pytest.mark.parametrize("name", ["net", "softmax_mse", "norm_penalty"])
def test_issue12_second_derivatives_match_finite_differences(name):
    """A Hessian-vector product (the gradient of <first gradient, p>) equals the central
    finite difference of the first gradient along p, in float64."""
    rng = np.random.default_rng(5)
    if name == "net":
        function = _net
        arrays = [rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)),
                  rng.standard_normal(3), rng.standard_normal((2, 3))]
    elif name == "softmax_mse":
        def function(x, w):
            return F.mse_loss(F.softmax(x @ w, dim=1), corrnet.ones(3, 4) / 4)
        arrays = [rng.standard_normal((3, 5)), rng.standard_normal((5, 4))]
    else:
        def function(x, w):
            (g,) = corrnet.autograd.grad((x @ w).exp().sum(), x, create_graph=True)
            return (g.norm() - 1) ** 2
        arrays = [rng.standard_normal((2, 3)) * 0.5, rng.standard_normal((3, 2)) * 0.5]
    directions = [rng.standard_normal(a.shape) for a in arrays]
    inputs, grads = _gradients(function, arrays, create_graph=True)
    dot = sum((g * corrnet.tensor(p)).sum() for g, p in zip(grads, directions, strict=True))
    hessian_p = corrnet.autograd.grad(dot, inputs)
    eps = 1e-6
    plus = _gradients(function, [a + eps * p for a, p in zip(arrays, directions, strict=True)],
                      False)[1]
    minus = _gradients(function, [a - eps * p for a, p in zip(arrays, directions, strict=True)],
                       False)[1]
    for i, (hp, up, down) in enumerate(zip(hessian_p, plus, minus, strict=True)):
        finite = (up.numpy() - down.numpy()) / (2 * eps)
        np.testing.assert_allclose(hp.numpy(), finite, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: input {i}")


def test_issue12_autograd_docstring_examples():
    import doctest

    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(corrnet.autograd, "corrnet.autograd",
                                    globs={"corrnet": corrnet}) if t.examples]
    assert len(tests) >= 2  # grad and backward
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
