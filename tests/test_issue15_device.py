"""issue 15: PyTorch's device API on corrnet, through the stand-in CUDA device
(CORRNET_STANDIN_CUDA=2: two "GPUs" of NumPy arrays that refuse implicit host conversion as
CuPy does), and ops on it compared with the same ops on CPU tensors.

PyTorch's CPU build refuses 'cuda', so its semantics are checked where it can show them:
torch.device objects, its printing order on the 'meta' device, its documented errors."""

import numpy as np
import pytest
import torch

import corrnet as cn
from corrnet import _standin
from corrnet import nn as cnn
from corrnet.nn import functional as F


def on_device(t):
    return isinstance(t._data, _standin.ndarray)


# --------------------------------------------------------------------------- without CUDA


def test_without_cuda_nothing_changes(no_cuda):
    assert not cn.cuda.is_available() and cn.cuda.device_count() == 0
    x = cn.tensor([1.0, 2.0])
    for move in (x.cuda, lambda: x.to("cuda"), lambda: cn.zeros(2, device="cuda"),
                 lambda: cnn.Linear(2, 2).cuda(), cn.cuda.current_device):
        with pytest.raises(RuntimeError, match="CUDA"):
            move()
    assert x.device == cn.device("cpu") and not x.is_cuda and x.get_device() == -1
    cn.cuda.manual_seed(0)  # accepted without CUDA, as PyTorch's


# --------------------------------------------------------------------------- the device API


@pytest.mark.parametrize("args", [("cuda",), ("cuda:1",), ("cuda", 0), ("cpu",), ("cpu:0",)])
def test_device_objects_as_torch(args, cuda):
    ours, theirs = cn.device(*args), torch.device(*args)
    assert (repr(ours), str(ours), ours.type, ours.index) == (
        repr(theirs), str(theirs), theirs.type, theirs.index)


def test_cuda_module(cuda):
    assert cn.cuda.is_available() and cn.cuda.device_count() == 2
    assert cn.cuda.current_device() == 0 and "stand-in" in cn.cuda.get_device_name()
    cn.cuda.set_device(1)
    assert cn.cuda.current_device() == 1 and cn.ones(1).cuda().device == cn.device("cuda:1")
    cn.cuda.set_device("cuda:0")
    cn.cuda.synchronize()
    base, base_1 = cn.cuda.memory_allocated(), cn.cuda.memory_allocated(1)
    x = cn.zeros(1000, dtype=cn.float64, device="cuda")
    # (device 1 may hold tables other tests cached there: only its change counts)
    assert cn.cuda.memory_allocated() - base == 8000 and cn.cuda.memory_allocated(1) == base_1
    del x
    cn.cuda.manual_seed(3)
    a = cn.randn(3, device="cuda")
    cn.cuda.manual_seed_all(3)
    assert cn.equal(a.cpu(), cn.randn(3, device="cuda").cpu())
    assert cn.device(1) == cn.device("cuda:1")  # an int is the accelerator's index


def test_device_beyond_the_count_raises(cuda):
    for make in (lambda: cn.ones(2).cuda(2), lambda: cn.ones(2, device="cuda:2"),
                 lambda: cn.ones(2).to("cuda:5"), lambda: cn.cuda.set_device(2)):
        with pytest.raises(RuntimeError, match="invalid device ordinal.*cuda:1"):
            make()


@pytest.mark.parametrize("make", [
    lambda d: cn.tensor([1.0, 2.0], device=d), lambda d: cn.zeros(2, 3, device=d),
    lambda d: cn.ones(2, device=d), lambda d: cn.empty(2, device=d),
    lambda d: cn.full((2,), 7.0, device=d), lambda d: cn.arange(5, device=d),
    lambda d: cn.rand(2, device=d), lambda d: cn.randn(2, device=d),
    lambda d: cn.randint(0, 5, (3,), device=d), lambda d: cn.eye(2, device=d),
    lambda d: cn.linspace(0, 1, 3, device=d), lambda d: cn.Tensor([1.0], device=d),
], ids=["tensor", "zeros", "ones", "empty", "full", "arange", "rand", "randn", "randint",
        "eye", "linspace", "Tensor"])
def test_creation_functions_take_device(make, cuda):
    t = make("cuda:1")
    assert on_device(t) and t.device == cn.device("cuda:1") and t.is_cuda
    assert t.get_device() == 1 and str(t.device) == "cuda:1"
    assert not make(None).is_cuda and not make("cpu").is_cuda


def test_like_and_new_keep_the_device(cuda):
    x = cn.ones(2, 3, device="cuda:1")
    for t in (cn.zeros_like(x), cn.ones_like(x), cn.empty_like(x), cn.rand_like(x),
              cn.randn_like(x), cn.full_like(x, 2.0), x.new_zeros(2), x.new_ones(2),
              x.new_empty(2), x.new_full((2,), 1.0), x.new_tensor([1.0])):
        assert t.device == cn.device("cuda:1")
    assert not cn.zeros_like(x, device="cpu").is_cuda


def test_moving_tensors(cuda):
    x = cn.tensor([1.0, 2.0])
    y = x.cuda()
    assert y.device == cn.device("cuda:0") and y.cuda() is y and y.cuda(0) is y
    assert x.cuda(1).device == cn.device("cuda:1") and y.to("cuda:1").get_device() == 1
    assert y.cpu().tolist() == [1.0, 2.0] and not y.cpu().is_cuda and x.cpu() is x
    z = y.to(cn.float64)
    assert z.is_cuda and z.dtype == cn.float64
    z = x.to("cuda", cn.float16)
    assert z.is_cuda and z.dtype == cn.float16
    z = x.to(device="cuda", dtype=cn.float64, non_blocking=True)
    assert z.is_cuda and z.dtype == cn.float64
    other = cn.zeros(1, dtype=cn.int64, device="cuda:1")
    z = x.to(other)
    assert z.device == other.device and z.dtype == cn.int64
    assert y.to(cn.zeros(1)).device == cn.device("cpu")
    assert cn.tensor(y).is_cuda  # a copy of a cuda tensor stays there, as PyTorch's
    assert y[0].item() == 1.0 and y.sum().item() == 3.0 and float(y[1]) == 2.0
    assert y.tolist() == [1.0, 2.0]


def test_gradients_flow_back_across_devices(cuda):
    x = cn.tensor([1.0, 2.0], requires_grad=True)
    y = x.cuda()
    assert y.grad_fn.name() == "ToCopyBackward0"
    (y * y).sum().backward()
    assert not x.grad.is_cuda and x.grad.tolist() == [2.0, 4.0]


def test_repr_prints_the_device_as_torch(cuda):
    assert repr(cn.tensor([1.0, 2.0]).cuda()) == "tensor([1., 2.], device='cuda:0')"
    x = cn.tensor([1.0, 2.0], dtype=cn.float64, device="cuda:1", requires_grad=True)
    # PyTorch's order, seen on its 'meta' device: device, then dtype, then requires_grad
    meta = repr(torch.ones(2, dtype=torch.float64, device="meta", requires_grad=True))
    assert meta.index("device=") < meta.index("dtype=") < meta.index("requires_grad")
    assert repr(x) == ("tensor([1., 2.], device='cuda:1', dtype=torch.float64, "
                       "requires_grad=True)")
    assert repr(x * 2).endswith("device='cuda:1', dtype=torch.float64, grad_fn=<MulBackward0>)")
    assert repr(cn.tensor(3, device="cuda")) == "tensor(3, device='cuda:0')"
    assert repr(cn.tensor([1.0])) == "tensor([1.])"


def test_host_conversions_of_a_cuda_tensor_raise(cuda):
    x = cn.tensor([1.0, 2.0], device="cuda")
    for convert in (lambda: x.numpy(), lambda: np.asarray(x)):
        with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to "
                                            "numpy.*Use Tensor.cpu()"):
            convert()
    assert x.cpu().numpy().tolist() == [1.0, 2.0]


def test_mixing_devices_raises_as_torch(cuda):
    x, c = cn.tensor([1.0, 2.0], device="cuda"), cn.tensor([1.0, 2.0])
    message = ("Expected all tensors to be on the same device, but found at least two "
               "devices, cuda:0 and cpu!")
    for op in (lambda: x + c, lambda: c * x, lambda: x @ c, lambda: cn.cat([x, c]),
               lambda: cn.where(x > 0, x, c)):
        with pytest.raises(RuntimeError) as info:
            op()
        assert message in str(info.value)
    with pytest.raises(RuntimeError, match="cuda:1 and cuda:0|cuda:0 and cuda:1"):
        x + x.cuda(1)
    # a 0-d CPU tensor goes with a tensor on any device, as in PyTorch
    assert (x + cn.tensor(1.0)).is_cuda and (cn.tensor(2.0) * x).tolist() == [2.0, 4.0]


def test_conv_and_pool_run_on_cuda_and_refuse_a_device_mix(cuda):
    """They run on the device now (tests/test_issue15_wire.py compares them with PyTorch);
    an operand on another device is refused as PyTorch refuses it."""
    x = cn.randn(1, 1, 4, 4, device="cuda")
    for op in (lambda: F.conv2d(x, cn.randn(1, 1, 3, 3, device="cuda")),
               lambda: F.max_pool2d(x, 2), lambda: F.avg_pool2d(x, 2),
               lambda: F.adaptive_avg_pool2d(x, 1), lambda: cn.corr2d(x[0, 0], x[0, 0, :2, :2])):
        assert on_device(op())
    with pytest.raises(RuntimeError, match="same device"):
        F.conv2d(x, cn.randn(1, 1, 3, 3))
    with pytest.raises(RuntimeError, match="same device"):
        F.conv2d(x, cn.randn(1, 1, 3, 3, device="cuda:1"))


# --------------------------------------------------------------------------- modules


def test_module_cuda_to_cpu_move_parameters_buffers_and_grads(cuda):
    net = cnn.Sequential(cnn.Linear(3, 4), cnn.BatchNorm1d(4), cnn.ReLU(), cnn.Linear(4, 2))
    net(cn.randn(5, 3)).sum().backward()
    weight = net[0].weight
    assert net.cuda() is net and net[0].weight is weight  # the same Parameter objects
    tensors = list(net.parameters()) + list(net.buffers()) + [weight.grad]
    assert all(t.device == cn.device("cuda:0") for t in tensors)
    net.to(device="cuda:1", dtype=cn.float64)
    assert weight.device == cn.device("cuda:1") and weight.dtype == cn.float64
    assert net[1].running_mean.device == cn.device("cuda:1") and weight.grad.is_cuda
    net.cpu()
    assert not any(t.is_cuda for t in list(net.parameters()) + list(net.buffers()))
    assert not weight.grad.is_cuda
    net.to(cn.device("cuda", 0))
    assert weight.get_device() == 0


# --------------------------------------------------------------------------- ops on the device


def _pair(array, requires_grad=False):
    cpu = cn.tensor(array, requires_grad=requires_grad)
    dev = cn.tensor(array).cuda().requires_grad_(requires_grad)
    return cpu, dev


def _same(cpu, dev):
    assert dev.is_cuda and on_device(dev), "left the device"
    assert dev.dtype == cpu.dtype and dev.shape == cpu.shape
    np.testing.assert_array_equal(dev.cpu().detach().numpy(), cpu.detach().numpy())


@pytest.mark.parametrize("op", [
    lambda a, b: a + b * 2 - 1, lambda a, b: a / (b.abs() + 1), lambda a, b: (a > b) & (a > 0),
    lambda a, b: (a.exp() + 1).log() + b.tanh() + a.sigmoid(), lambda a, b: a ** 2 + b.sqrt(),
    lambda a, b: a.sum(1), lambda a, b: a.mean(), lambda a, b: a.max(0).values,
    lambda a, b: a.argmax(1), lambda a, b: a.var(1), lambda a, b: a.softmax(1),
    lambda a, b: a @ b.T, lambda a, b: a[1:, ::2], lambda a, b: a[a > 0.5],
    lambda a, b: a[cn.tensor([0, 2])], lambda a, b: a.reshape(4, 3).T.contiguous(),
    lambda a, b: cn.cat([a, b], 1), lambda a, b: cn.stack([a, b]),
    lambda a, b: cn.where(a > b, a, b), lambda a, b: a.clamp(0.2, 0.8),
    lambda a, b: a.to(cn.float64) + 1, lambda a, b: a.flatten().cumsum(0),
    lambda a, b: a.topk(2, 1).values + a.topk(2, 1).indices,
    lambda a, b: a.scatter(1, cn.tensor([[0], [3], [1]], device=a.device), 1.0),
    lambda a, b: F.pad(a, (1, 2), value=0.5), lambda a, b: a.masked_fill(a > b, -1.0),
    lambda a, b: a.sort(1).values + a.argsort(0), lambda a, b: a.gather(1, (b * 3).long()),
    lambda a, b: (a.sin() * b.cos() + a.log2() - b.expm1() + a.reciprocal() + b.rsqrt()
                  + a.atan() + a.deg2rad() + a.frac() + a.sum().sin()),
    lambda a, b: a.clone().sin_() + b.clone().exp_() + a.clone().pow_(3),
], ids=["arith", "div", "compare", "unary", "pow", "sum", "mean", "max", "argmax", "var",
        "softmax", "matmul", "slice", "mask", "index", "view", "cat", "stack", "where",
        "clamp", "cast", "cumsum", "topk", "scatter", "pad", "masked_fill", "sort", "gather",
        "unary_more", "in_place_unary"])
def test_ops_on_the_device_match_the_cpu(op, cuda):
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 4)).astype(np.float32), rng.random((3, 4)).astype(np.float32)
    (a_cpu, a_dev), (b_cpu, b_dev) = _pair(a), _pair(b)
    _same(op(a_cpu, b_cpu), op(a_dev, b_dev))


def test_autograd_on_the_device_matches_the_cpu(cuda):
    rng = np.random.default_rng(1)
    a, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((2, 3))
    results = []
    for dev in (False, True):
        x, weight = _pair(a, True), _pair(w.astype(np.float32), True)
        x, weight = (x[1], weight[1]) if dev else (x[0], weight[0])
        y = (x @ weight.T).relu()
        loss = (y * y).mean() + x.abs().sum() * 0.1 + (x.max(1).values - x.min()).sum()
        loss.backward()
        results.append((loss, x.grad, weight.grad))
    for cpu, dev in zip(*results, strict=True):
        assert dev.is_cuda
        np.testing.assert_allclose(dev.cpu().detach().numpy(), cpu.detach().numpy(),
                                   rtol=1e-6)


@pytest.mark.parametrize("optimizer", [
    lambda p: cn.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda p: cn.optim.Adam(p, lr=0.01), lambda p: cn.optim.RMSprop(p, lr=0.01),
], ids=["SGD", "Adam", "RMSprop"])
def test_training_steps_on_the_device_match_the_cpu(optimizer, cuda):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    states = []
    for dev in (False, True):
        cn.manual_seed(0)
        net = cnn.Sequential(cnn.Linear(5, 6), cnn.ReLU(), cnn.Dropout(0.0), cnn.Linear(6, 3))
        inputs, targets = cn.tensor(X), cn.tensor(y)
        if dev:
            net.cuda()
            inputs, targets = inputs.cuda(), targets.cuda()
        opt = optimizer(net.parameters())
        for _ in range(3):
            opt.zero_grad()
            out = net(inputs)
            loss = cnn.CrossEntropyLoss()(out, targets) + cnn.MSELoss()(out, out.detach() * 0)
            loss.backward()
            opt.step()
        params = list(net.parameters())
        assert all(p.is_cuda == dev and p.grad.is_cuda == dev for p in params)
        states.append([loss] + params)
    for cpu, dev in zip(*states, strict=True):
        np.testing.assert_allclose(dev.cpu().detach().numpy(), cpu.detach().numpy(),
                                   rtol=1e-5, atol=1e-7)


def test_sigmoid_and_tanh_layers_on_the_device(cuda):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    results = []
    for dev in (False, True):
        x = cn.tensor(a).cuda() if dev else cn.tensor(a)
        x.requires_grad_()
        y = cnn.Sequential(cnn.Sigmoid(), cnn.Tanh(), cnn.Softmax(1))(x)
        (y * cn.arange(5.0, device=x.device)).sum().backward()
        results.append((y, x.grad))
    for cpu, dev in zip(*results, strict=True):
        _same(cpu, dev)


def test_dropout_fill_and_copy_across_devices(cuda):
    x = cn.ones(4, 6, device="cuda")
    cn.manual_seed(0)
    dropped = cnn.Dropout(0.5)(x)
    cn.manual_seed(0)
    _same(cnn.Dropout(0.5)(cn.ones(4, 6)), dropped)
    y = x.clone().fill_(2.0)
    assert y.is_cuda and y.sum().item() == 48.0 and x.clone().zero_().sum().item() == 0.0
    z = cn.zeros(2, device="cuda")
    z.copy_(cn.tensor([1.0, 2.0]))  # CPU -> device, as PyTorch's copy_ across devices
    host = cn.zeros(2)
    host.copy_(z)
    assert z.is_cuda and host.tolist() == [1.0, 2.0] and not host.is_cuda
