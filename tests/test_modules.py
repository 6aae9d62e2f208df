"""nn.Module / nn.Parameter / nn.Conv2d / pooling modules / nn.Sequential against PyTorch.

Covers: parameter registration by attribute assignment, parameters() / named_parameters()
/ children() / modules(), __call__ -> forward, train() / eval(), zero_grad(), state_dict()
round trips and strict-loading errors, Conv2d attributes and initialisation
(U(-b, b), b = 1/sqrt(fan_in)), and repr strings identical to PyTorch's.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch as tt
from torch import nn as tnn

import corrnet as ct
from corrnet import nn
from corrnet.nn import functional as F


def A(t):
    """Tensor / Parameter / array -> NumPy array (copy)."""
    if hasattr(t, "detach"):
        t = t.detach()
    if hasattr(t, "numpy"):
        t = t.numpy()
    return np.array(t, copy=True)


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def dtype_name(dtype):
    return str(dtype).rsplit(".", 1)[-1]


# -------------------------------------------------------------------------- Parameter
def test_parameter_is_a_tensor_that_requires_grad():
    data = np.arange(6.0).reshape(2, 3)
    p = nn.Parameter(ct.tensor(data))
    assert isinstance(p, ct.Tensor)
    assert isinstance(p, nn.Parameter)
    assert p.requires_grad is True
    assert tuple(p.shape) == (2, 3)
    np.testing.assert_array_equal(A(p), data)
    q = nn.Parameter(ct.tensor(data), requires_grad=False)
    assert q.requires_grad is False


def test_parameter_gets_gradient():
    p = nn.Parameter(ct.tensor(np.array([1.0, 2.0, 3.0])))
    (p * p).sum().backward()
    np.testing.assert_allclose(A(p.grad), [2.0, 4.0, 6.0])


# ----------------------------------------------------------------------------- Conv2d
CONV_ARGS = [
    ((1, 6, 5), {"padding": 2}),
    ((6, 16, 5), {}),
    ((3, 8, (3, 5)), {"stride": 2}),
    ((4, 6, (3, 5)), {"stride": (2, 1), "padding": (1, 2), "dilation": 2, "groups": 2,
                      "bias": False}),
    ((2, 2, 1), {"dilation": (1, 3), "groups": 2}),
    ((3, 3, 3), {"bias": True, "padding": 0, "stride": 1}),
    ((1, 1, 2), {"padding": (0, 1), "bias": False}),
]


@pytest.mark.parametrize("args, kwargs", CONV_ARGS)
def test_conv2d_repr_matches_torch(args, kwargs):
    assert repr(nn.Conv2d(*args, **kwargs)) == repr(tnn.Conv2d(*args, **kwargs))


@pytest.mark.parametrize("args, kwargs", CONV_ARGS)
def test_conv2d_attributes_match_torch(args, kwargs):
    c, t = nn.Conv2d(*args, **kwargs), tnn.Conv2d(*args, **kwargs)
    for attr in ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "groups"]:
        assert getattr(c, attr) == getattr(t, attr), attr
    assert isinstance(c.weight, nn.Parameter)
    assert tuple(c.weight.shape) == tuple(t.weight.shape)
    assert dtype_name(c.weight.dtype) == "float32"
    assert c.weight.requires_grad
    if t.bias is None:
        assert c.bias is None
        assert [n for n, _ in c.named_parameters()] == ["weight"]
    else:
        assert isinstance(c.bias, nn.Parameter)
        assert tuple(c.bias.shape) == tuple(t.bias.shape)
        assert [n for n, _ in c.named_parameters()] == ["weight", "bias"]


@pytest.mark.parametrize("args, kwargs", CONV_ARGS)
def test_conv2d_forward_and_backward_match_torch_module(args, kwargs):
    c, t = nn.Conv2d(*args, **kwargs), tnn.Conv2d(*args, **kwargs)
    with tt.no_grad():  # torch module gets corrnet's parameters
        t.weight.copy_(tt.from_numpy(A(c.weight)))
        if t.bias is not None:
            t.bias.copy_(tt.from_numpy(A(c.bias)))
    x = rand(2, args[0], 9, 11, seed=1)
    cx, tx = ct.tensor(x, requires_grad=True), tt.tensor(x, requires_grad=True)
    cy, ty = c(cx), t(tx)
    np.testing.assert_allclose(A(cy), A(ty), rtol=1e-4, atol=1e-5)
    g = rand(*ty.shape, seed=2)
    cy.backward(ct.tensor(g))
    ty.backward(tt.tensor(g))
    np.testing.assert_allclose(A(cx.grad), A(tx.grad), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(A(c.weight.grad), A(t.weight.grad), rtol=1e-4, atol=1e-4)
    if t.bias is not None:
        np.testing.assert_allclose(A(c.bias.grad), A(t.bias.grad), rtol=1e-4, atol=1e-4)
    # the module is the functional op with its own parameters
    np.testing.assert_allclose(
        A(cy), A(F.conv2d(ct.tensor(x), c.weight, c.bias, c.stride, c.padding, c.dilation,
                          c.groups)), rtol=1e-6, atol=1e-6)


def test_conv2d_unbatched_input():
    c = nn.Conv2d(2, 3, 3, padding=1)
    x = rand(2, 5, 4)
    y = c(ct.tensor(x))
    assert tuple(y.shape) == (3, 5, 4)
    yb = c(ct.tensor(x[None]))
    np.testing.assert_allclose(A(y), A(yb)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "args, kwargs, fan_in",
    [((64, 128, 3), {}, 64 * 9), ((32, 64, (3, 5)), {"groups": 4}, 8 * 15),
     ((16, 96, (1, 2)), {"dilation": 2, "stride": 2}, 16 * 2)],
)
def test_conv2d_init_is_uniform_with_torch_bound(args, kwargs, fan_in):
    c = nn.Conv2d(*args, **kwargs)
    bound = 1.0 / np.sqrt(fan_in)
    w = A(c.weight).astype(np.float64).ravel()
    b = A(c.bias).astype(np.float64)
    # inside the bound, and spanning it
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert w.max() > 0.98 * bound and w.min() < -0.98 * bound
    # moments of U(-b, b): mean 0, variance b^2 / 3
    n = w.size
    assert abs(w.mean()) < 6 * bound / np.sqrt(3 * n)
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.05)
    # and the shape of the distribution (Kolmogorov-Smirnov)
    assert scipy.stats.kstest(w, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-4
    # bias: U(-b, b) with the same fan_in
    assert np.abs(b).max() <= bound * (1 + 1e-6)
    assert b.max() > 0.5 * bound and b.min() < -0.5 * bound


def test_conv2d_layers_are_initialised_independently():
    a, b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)
    assert not np.array_equal(A(a.weight), A(b.weight))


# ---------------------------------------------------------------------------- pooling
POOL_ARGS = [
    ("MaxPool2d", (3,), {}),
    ("MaxPool2d", (2,), {"stride": 1}),
    ("MaxPool2d", ((2, 3),), {"stride": (1, 2), "padding": 1, "dilation": 2, "ceil_mode": True}),
    ("MaxPool2d", (3, 2, 1), {}),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", ((2, 3),), {"stride": (1, 2), "padding": 1}),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True,
                         "count_include_pad": False}),
    ("AvgPool2d", (2,), {"divisor_override": 3}),
]


@pytest.mark.parametrize("cls, args, kwargs", POOL_ARGS)
def test_pool_repr_matches_torch(cls, args, kwargs):
    assert repr(getattr(nn, cls)(*args, **kwargs)) == repr(getattr(tnn, cls)(*args, **kwargs))


@pytest.mark.parametrize("cls, args, kwargs", POOL_ARGS)
def test_pool_module_forward_matches_torch(cls, args, kwargs):
    c, t = getattr(nn, cls)(*args, **kwargs), getattr(tnn, cls)(*args, **kwargs)
    n = 2 * 3 * 8 * 9
    x = ((np.random.default_rng(3).permutation(n) - n / 2) / 8.0).astype(np.float32)
    x = x.reshape(2, 3, 8, 9)  # distinct values: no ties for max pooling
    np.testing.assert_allclose(A(c(ct.tensor(x))), A(t(tt.tensor(x))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(A(c(ct.tensor(x[0]))), A(t(tt.tensor(x[0]))), rtol=1e-5,
                               atol=1e-6)
    assert list(c.parameters()) == []


@pytest.mark.parametrize("cls, args, kwargs", POOL_ARGS)
def test_pool_module_attributes_match_torch(cls, args, kwargs):
    c, t = getattr(nn, cls)(*args, **kwargs), getattr(tnn, cls)(*args, **kwargs)
    attrs = ["kernel_size", "stride", "padding", "ceil_mode"]
    attrs += ["dilation"] if cls == "MaxPool2d" else ["count_include_pad", "divisor_override"]
    for attr in attrs:
        assert getattr(c, attr) == getattr(t, attr), attr


# ------------------------------------------------------------------------- Sequential
def lenet_like(lib):
    return lib.Sequential(
        lib.Conv2d(1, 6, 5, padding=2),
        lib.MaxPool2d(2),
        lib.Conv2d(6, 16, 5),
        lib.AvgPool2d(2, stride=2),
        lib.Conv2d(16, 4, 1, bias=False),
    )


def test_sequential_repr_matches_torch():
    assert repr(lenet_like(nn)) == repr(lenet_like(tnn))
    assert repr(nn.Sequential()) == repr(tnn.Sequential())


def test_sequential_container_protocol():
    layers = [nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Conv2d(2, 3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3
    assert seq[0] is layers[0] and seq[1] is layers[1] and seq[-1] is layers[2]
    assert list(seq) == layers
    assert [m for m in seq] == layers
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential)
    assert len(tail) == 2 and tail[0] is layers[1] and tail[1] is layers[2]
    assert list(seq.children()) == layers
    with pytest.raises(IndexError):
        seq[3]


def test_sequential_forward_chains_modules():
    seq = lenet_like(nn)
    x = ct.tensor(rand(2, 1, 28, 28))
    h = x
    for layer in seq:
        h = layer(h)
    y = seq(x)
    assert tuple(y.shape) == (2, 4, 5, 5)
    np.testing.assert_allclose(A(y), A(h), rtol=1e-6, atol=1e-6)


def test_sequential_matches_torch_with_same_weights():
    c, t = lenet_like(nn), lenet_like(tnn)
    t.load_state_dict({k: tt.from_numpy(A(v)) for k, v in c.state_dict().items()})
    x = rand(2, 1, 28, 28, seed=4)
    cy, ty = c(ct.tensor(x)), t(tt.tensor(x))
    np.testing.assert_allclose(A(cy), A(ty), rtol=1e-4, atol=1e-5)
    cy.sum().backward()
    ty.sum().backward()
    for (cn, cp), (tn, tp) in zip(c.named_parameters(), t.named_parameters(), strict=True):
        assert cn == tn
        np.testing.assert_allclose(A(cp.grad), A(tp.grad), rtol=1e-4, atol=1e-4, err_msg=cn)


def test_sequential_named_parameters():
    seq = lenet_like(nn)
    names = [n for n, _ in seq.named_parameters()]
    assert names == [n for n, _ in lenet_like(tnn).named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight"]
    params = list(seq.parameters())
    assert len(params) == 5
    assert params[0] is seq[0].weight and params[-1] is seq[4].weight


# ----------------------------------------------------------------------- custom Module
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(ct.tensor(np.array([2.0], dtype=np.float32)))
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.not_a_param = ct.tensor(np.ones(3, dtype=np.float32))  # plain tensor
        self.note = "plain attribute"

    def forward(self, x, shift=0.0):
        return self.pool(self.conv(x)) * self.scale + shift


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Conv2d(2, 3, 1), nn.AvgPool2d(2))
        self.bias = nn.Parameter(ct.tensor(np.zeros(3, dtype=np.float32)))

    def forward(self, x):
        return self.head(self.block(x)).sum(dim=(2, 3)) + self.bias


class TorchBlock(tnn.Module):
    def __init__(self):
        super().__init__()
        self.scale = tnn.Parameter(tt.tensor([2.0]))
        self.conv = tnn.Conv2d(1, 2, 3, padding=1)
        self.pool = tnn.MaxPool2d(2)


class TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.block = TorchBlock()
        self.head = tnn.Sequential(tnn.Conv2d(2, 3, 1), tnn.AvgPool2d(2))
        self.bias = tnn.Parameter(tt.zeros(3))


TorchBlock.__name__ = "Block"
TorchNet.__name__ = "Net"

NET_PARAM_NAMES = ["bias", "block.scale", "block.conv.weight", "block.conv.bias",
                   "head.0.weight", "head.0.bias"]


def test_module_registers_parameters_and_submodules_in_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [n for n, _ in TorchNet().named_parameters()]
    assert names == NET_PARAM_NAMES
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert len(list(net.parameters())) == 6
    assert [n for n, _ in net.block.named_parameters()] == ["scale", "conv.weight", "conv.bias"]
    # plain tensors and other attributes are not parameters
    assert all(p is not net.block.not_a_param for p in net.parameters())
    assert net.block.note == "plain attribute"


def test_module_children_and_modules():
    net = Net()
    assert list(net.children()) == [net.block, net.head]
    assert list(net.block.children()) == [net.block.conv, net.block.pool]
    mods = list(net.modules())
    assert mods == [net, net.block, net.block.conv, net.block.pool, net.head, net.head[0],
                    net.head[1]]


def test_module_repr_matches_torch():
    assert repr(Net()) == repr(TorchNet())


def test_module_call_runs_forward_with_args_and_kwargs():
    block = Block()
    x = ct.tensor(rand(1, 1, 6, 6))
    y = block(x, shift=1.5)
    expected = A(block.pool(block.conv(x))) * 2.0 + 1.5
    assert tuple(y.shape) == (1, 2, 3, 3)
    np.testing.assert_allclose(A(y), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(A(block.forward(x, 1.5)), A(y), rtol=1e-6)


def test_module_without_forward_raises():
    class Empty(nn.Module):
        pass

    with pytest.raises((NotImplementedError, AttributeError, TypeError)):
        Empty()(ct.tensor(np.ones(2)))


def test_train_eval_flags_propagate():
    net = Net()
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net
    assert not net.training and not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not any(m.training for m in net.modules())
    net.head.train()
    assert net.head.training and net.head[0].training and not net.block.training


def test_backward_reaches_every_parameter_and_zero_grad_clears():
    net = Net()
    x = ct.tensor(rand(2, 1, 8, 8))
    net(x).sum().backward()
    first = {n: A(p.grad) for n, p in net.named_parameters()}
    assert set(first) == set(NET_PARAM_NAMES)
    for n, p in net.named_parameters():
        assert p.grad is not None and tuple(p.grad.shape) == tuple(p.shape), n
    # gradients accumulate across backward calls (PyTorch semantics)
    net(x).sum().backward()
    for n, p in net.named_parameters():
        np.testing.assert_allclose(A(p.grad), 2 * first[n], rtol=1e-5, atol=1e-6, err_msg=n)
    net.zero_grad()
    for n, p in net.named_parameters():
        assert p.grad is None or not np.any(A(p.grad)), n
    net(x).sum().backward()
    for n, p in net.named_parameters():
        np.testing.assert_allclose(A(p.grad), first[n], rtol=1e-5, atol=1e-6, err_msg=n)


# ------------------------------------------------------------------------- state_dict
def test_state_dict_keys_and_values():
    net = Net()
    sd = net.state_dict()
    assert list(sd.keys()) == list(TorchNet().state_dict().keys())
    assert list(sd.keys()) == NET_PARAM_NAMES
    params = dict(net.named_parameters())
    for k, v in sd.items():
        np.testing.assert_array_equal(A(v), A(params[k]), err_msg=k)


def test_state_dict_round_trip_between_modules():
    a, b = lenet_like(nn), lenet_like(nn)
    assert not np.array_equal(A(a[0].weight), A(b[0].weight))
    b.load_state_dict(a.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb
        np.testing.assert_array_equal(A(pa), A(pb), err_msg=na)
        assert pb.requires_grad, nb
        assert isinstance(pb, nn.Parameter)
    x = ct.tensor(rand(1, 1, 28, 28))
    np.testing.assert_array_equal(A(a(x)), A(b(x)))


def test_load_state_dict_copies_values():
    """After loading, training one module must not change the other."""
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    before = {n: A(p) for n, p in b.named_parameters()}
    a.load_state_dict({k: ct.tensor(A(v) + 1.0) for k, v in a.state_dict().items()})
    for n, p in b.named_parameters():
        np.testing.assert_array_equal(A(p), before[n], err_msg=n)
    for n, p in a.named_parameters():
        np.testing.assert_allclose(A(p), before[n] + 1.0, err_msg=n)


LOAD_ERRORS = (RuntimeError, KeyError, ValueError)


@pytest.mark.parametrize("kind, key", [("missing", "2.bias"), ("unexpected", "5.weight")])
def test_load_state_dict_wrong_keys_strict(kind, key):
    sd = lenet_like(nn).state_dict()
    if kind == "missing":
        del sd[key]
    else:
        sd[key] = ct.tensor(np.zeros((1, 1, 1, 1), dtype=np.float32))
    with pytest.raises(LOAD_ERRORS) as excinfo:
        lenet_like(nn).load_state_dict(sd)
    assert key in str(excinfo.value)
    assert kind in str(excinfo.value).lower()


def test_load_state_dict_shape_mismatch():
    sd = lenet_like(nn).state_dict()
    sd["0.weight"] = ct.tensor(np.zeros((6, 1, 3, 3), dtype=np.float32))
    target = lenet_like(nn)
    with pytest.raises(LOAD_ERRORS) as excinfo:
        target.load_state_dict(sd)
    msg = str(excinfo.value)
    assert "0.weight" in msg
    assert "6, 1, 3, 3" in msg and "6, 1, 5, 5" in msg
    with pytest.raises(LOAD_ERRORS):  # a size mismatch is an error even when not strict
        target.load_state_dict(sd, strict=False)


def test_load_state_dict_non_strict_reports_and_loads_the_rest():
    src, dst = lenet_like(nn), lenet_like(nn)
    sd = src.state_dict()
    del sd["0.bias"]
    sd["extra"] = ct.tensor(np.zeros(1, dtype=np.float32))
    old_bias = A(dst[0].bias)
    result = dst.load_state_dict(sd, strict=False)
    assert list(result.missing_keys) == ["0.bias"]
    assert list(result.unexpected_keys) == ["extra"]
    np.testing.assert_array_equal(A(dst[0].weight), A(src[0].weight))
    np.testing.assert_array_equal(A(dst[2].bias), A(src[2].bias))
    np.testing.assert_array_equal(A(dst[0].bias), old_bias)
