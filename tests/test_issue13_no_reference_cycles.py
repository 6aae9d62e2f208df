"""Autograd makes no reference cycles: a graph's tensors are freed when the last name goes.

Found by the pooling benchmark (issue 13): a loop of ``max_pool2d(x).sum().backward()`` with
``x`` requiring grad grew by ~9 MiB a call for some 40 calls, until Python's cycle collector ran,
because a leaf and its AccumulateGrad node held each other (and so the leaf's ``.grad``). Each
call then faulted in fresh memory: 8-12 ms instead of 1.3 ms. PyTorch's node holds the leaf and
the leaf only a weak reference to its node; corrnet now does the same, and a retained non-leaf
(``retain_grad``) is held weakly by its node.

Each case runs with the cycle collector off and checks that nothing is left for it to find.
"""

import gc
import weakref

import numpy as np
import pytest
import torch as pt

import corrnet
from corrnet.nn import functional as F


@pytest.fixture
def collector_off():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _leaf_and_grad(x):
    return (x * x).sum(), x


def _conv_pool(x):
    weight = corrnet.randn(4, 3, 3, 3, requires_grad=True)
    out = F.max_pool2d(F.relu(F.conv2d(x, weight, padding=1)), 2)
    return out.sum(), x


def _retained(x):
    y = x * 2
    y.retain_grad()
    return (y * y).sum(), y


def _hooked_leaf(x):
    x.register_hook(lambda grad: grad * 2)
    x.register_post_accumulate_grad_hook(lambda tensor: None)
    return (x * 3).sum(), x


def _double_backward(x):
    (grad,) = corrnet.autograd.grad((x ** 3).sum(), x, create_graph=True)
    return grad.sum(), x


def _in_place_on_view(x):
    y = x.clone()
    y[1:] *= 2
    y.view(-1)[0] = 5
    return y.sum(), x


_NET = corrnet.nn.Sequential(
    corrnet.nn.Conv2d(3, 4, kernel_size=3, padding=1), corrnet.nn.BatchNorm2d(4),
    corrnet.nn.ReLU(), corrnet.nn.MaxPool2d(2), corrnet.nn.Flatten(), corrnet.nn.Linear(36, 5))


def _module_training_step(x):
    loss = corrnet.nn.CrossEntropyLoss()(_NET(x), corrnet.tensor([0, 4]))
    _NET.zero_grad()
    return loss, x


@pytest.mark.parametrize("graph", [_leaf_and_grad, _conv_pool, _retained, _hooked_leaf,
                                   _double_backward, _in_place_on_view, _module_training_step])
def test_backward_leaves_nothing_for_the_cycle_collector(collector_off, graph):
    def one_step():
        x = corrnet.randn(2, 3, 6, 6, requires_grad=True)
        loss, kept = graph(x)
        loss.backward()
        assert kept.grad is not None
        return weakref.ref(x), weakref.ref(kept.grad)

    one_step()      # the first call compiles kernels: numba's compiler leaves cycles of its own
    gc.collect()
    x_ref, grad_ref = one_step()
    assert x_ref() is None, "the input outlived its step: a reference cycle holds it"
    assert grad_ref() is None, "the gradient outlived its step: a reference cycle holds it"
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        leftovers = sorted({type(item).__name__ for item in gc.garbage
                            if type(item).__module__.startswith("corrnet")
                            or isinstance(item, np.ndarray)})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert leftovers == [], f"corrnet objects in cycles left for the collector: {leftovers}"


def test_a_loop_over_an_input_requiring_grad_does_not_grow(collector_off):
    data = np.random.default_rng(0).standard_normal((64, 6, 28, 28)).astype(np.float32)
    alive = []
    for _ in range(5):
        x = corrnet.tensor(data, requires_grad=True)
        F.max_pool2d(x, 2, 2).sum().backward()
        alive.append(weakref.ref(x))
    del x
    assert [ref() for ref in alive] == [None] * 5


@pytest.mark.parametrize("library", [corrnet, pt], ids=["corrnet", "torch"])
def test_leaf_node_identity_and_lifetime_as_pytorch(library):
    """What the weak reference must keep: one node per leaf while a graph holds it, the node's
    ``variable`` is the leaf, and the graph keeps the leaf alive after its last name is gone."""
    x = library.ones(3, requires_grad=True)
    y1, y2 = x * 2, x * 3
    node = y1.grad_fn.next_functions[0][0]
    assert node is y2.grad_fn.next_functions[0][0]
    assert node.variable is x
    x_ref = weakref.ref(x)
    del x
    assert x_ref() is not None            # the graph holds it
    y1.sum().backward()
    assert node.variable.grad.tolist() == [2.0, 2.0, 2.0]
    del y1, y2, node
    gc.collect()
    assert x_ref() is None


@pytest.mark.parametrize("library", [corrnet, pt], ids=["corrnet", "torch"])
def test_leaf_hooks_outlive_the_graph_that_made_their_node(library):
    """Hooks registered on a leaf run in every later graph, and a handle removes them there,
    though each graph's node is a new one."""
    x = library.ones(2, requires_grad=True)
    seen, ready = [], []
    handle = x.register_hook(lambda grad: seen.append(grad.tolist()))
    post = x.register_post_accumulate_grad_hook(lambda tensor: ready.append(tensor.grad.tolist()))
    (x * 2).sum().backward()
    gc.collect()
    (x * 3).sum().backward()
    assert seen == [[2.0, 2.0], [3.0, 3.0]]
    assert ready == [[2.0, 2.0], [5.0, 5.0]]
    handle.remove()
    post.remove()
    (x * 4).sum().backward()
    assert len(seen) == 2 and len(ready) == 2
    assert x.grad.tolist() == [9.0, 9.0]


@pytest.mark.parametrize("library", [corrnet, pt], ids=["corrnet", "torch"])
def test_retain_grad_holds_the_tensor_weakly(library):
    x = library.ones(2, requires_grad=True)
    y = x * 2
    y.retain_grad()
    assert y.retains_grad
    (y * y).sum().backward()
    assert y.grad.tolist() == [4.0, 4.0]
    z = x * 5
    z.retain_grad()
    out = (z * 1).sum()
    del z                                  # the graph does not need z's tensor: it may go
    out.backward()
    assert x.grad.tolist() == [8.0 + 5.0, 8.0 + 5.0]
