"""Issue 12: facts from the Builders' Guide (both editions) and the 1.0 edition's CNN chapter
(convolutions, padding and strides, channels, pooling, LeNet), checked against PyTorch.

The book's cells were run with only the imports swapped (outside this repository); these tests
pin what they rely on: `d2l.corr2d`'s result dtype, a module whose forward reuses a layer and
divides its output in place in a loop, parameters saved and loaded into lazy modules, the GPU
cells on a machine without a GPU, and the output shapes of the chapter's layers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as TF

import corrnet as cn
from corrnet import d2l, nn
from corrnet.nn import functional as F

from torch_compare import assert_same


@pytest.mark.parametrize("dtype", ["int64", "float32", "float64"])
def test_issue12_book_d2l_corr2d_gives_the_default_dtype(dtype):
    # the d2l package's corr2d fills a `zeros` tensor: float32 whatever X's and K's dtype
    rng = np.random.default_rng(0)
    X = rng.integers(-5, 6, (5, 6)).astype(dtype)
    K = rng.integers(-3, 4, (2, 3)).astype(dtype)
    got = d2l.corr2d(cn.tensor(X), cn.tensor(K))
    expected = TF.conv2d(torch.tensor(X, dtype=torch.float64)[None, None],
                         torch.tensor(K, dtype=torch.float64)[None, None])[0, 0].float()
    assert_same(got, expected, f"d2l.corr2d of {dtype}")


def test_issue12_book_d2l_corr2d_is_differentiable_through_the_cast():
    X64 = np.random.default_rng(1).standard_normal((4, 4))
    K = np.array([[1.0, -1.0]])
    X = cn.tensor(X64, requires_grad=True)
    d2l.corr2d(X, cn.tensor(K)).sum().backward()
    Xt = torch.tensor(X64, requires_grad=True)
    TF.conv2d(Xt[None, None], torch.tensor(K)[None, None])[0, 0].float().sum().backward()
    assert_same(X.grad, Xt.grad, "d2l.corr2d's gradient")


def _chimera(nn_, F_, lib):
    """The Builders' Guide's nested MLP: a fixed random matrix, a layer used twice, and a
    while-loop halving the output in place until its l1 norm is at most 1."""

    class FixedHidden(nn_.Module):
        def __init__(self):
            super().__init__()
            self.rand_weight = lib.zeros((20, 20), dtype=lib.float64)
            self.linear = nn_.Linear(20, 20)

        def forward(self, X):
            X = F_.relu(self.linear(X) @ self.rand_weight + 1)
            X = self.linear(X)
            while X.abs().sum() > 1:
                X /= 2
            return X.sum()

    nest = nn_.Sequential(nn_.Linear(20, 64), nn_.ReLU(), nn_.Linear(64, 32), nn_.ReLU(),
                          nn_.Linear(32, 16))
    return nn_.Sequential(nest, nn_.Linear(16, 20), FixedHidden()).double()


def test_issue12_book_reused_layer_and_in_place_loop_match_torch():
    theirs = _chimera(torch.nn, TF, torch)
    ours = _chimera(nn, F, cn)
    theirs[2].rand_weight = torch.rand((20, 20), dtype=torch.float64)
    ours[2].rand_weight = cn.tensor(theirs[2].rand_weight.numpy())
    ours.load_state_dict({k: cn.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    X = np.random.default_rng(2).random((2, 20))
    y_ours, y_theirs = ours(cn.tensor(X)), theirs(torch.tensor(X))
    assert_same(y_ours, y_theirs.detach(), "forward")
    y_ours.backward()
    y_theirs.backward()
    for (name, p), q in zip(theirs.named_parameters(), ours.parameters(), strict=True):
        assert_same(q.grad, p.grad, name)


def test_issue12_book_lazy_mlp_saved_and_loaded_gives_the_same_output(tmp_path):
    def mlp(nn_):
        return nn_.Sequential(nn_.LazyLinear(256), nn_.ReLU(), nn_.LazyLinear(10))

    net, net_torch = mlp(nn), mlp(torch.nn)
    X = cn.randn(size=(2, 20))
    Y = net(X)
    net_torch(torch.randn(2, 20))
    cn.save(net.state_dict(), tmp_path / "mlp.params")
    cn.save([cn.arange(4), cn.zeros(4)], tmp_path / "x-files")
    clone, clone_torch = mlp(nn), mlp(torch.nn)  # not run yet: parameters uninitialized
    clone.load_state_dict(cn.load(tmp_path / "mlp.params"))
    clone_torch.load_state_dict(net_torch.state_dict())
    # loaded but not run: still the lazy classes, as torch's (the book shows clone.eval())
    assert repr(clone.eval()) == repr(clone_torch.eval())
    assert bool((clone(X) == Y).all())
    clone_torch(torch.randn(2, 20))
    assert repr(clone) == repr(clone_torch) == repr(net)
    x2, y2 = cn.load(tmp_path / "x-files")
    assert x2.tolist() == [0, 1, 2, 3] and y2.tolist() == [0.0] * 4


def test_issue12_book_gpu_cells_behave_as_cpu_only_pytorch():
    devices = (cn.device("cpu"), cn.device("cuda"), cn.device("cuda:1"))
    assert repr(devices) == repr((torch.device("cpu"), torch.device("cuda"),
                                  torch.device("cuda:1")))
    assert cn.cuda.device_count() == torch.cuda.device_count() == 0
    assert d2l.num_gpus() == 0 and d2l.try_gpu() == d2l.try_gpu(10) == cn.device("cpu")
    X = cn.ones(2, 3, device=d2l.try_gpu())
    assert X.device == cn.device("cpu")
    with pytest.raises(RuntimeError):  # torch: "Cannot access accelerator device ..."
        X.cuda(1)
    net = nn.Sequential(nn.LazyLinear(1))
    assert net.to(device=d2l.try_gpu()) is net
    net(X)
    assert net[0].weight.data.device == cn.device("cpu")


# (module, input shape): the chapter's padding, stride and pooling examples
SHAPE_CASES = [
    (("Conv2d", 1, 1), {"kernel_size": 3, "padding": 1}, (1, 1, 8, 8)),
    (("Conv2d", 1, 1), {"kernel_size": (5, 3), "padding": (2, 1)}, (1, 1, 8, 8)),
    (("Conv2d", 1, 1), {"kernel_size": 3, "padding": 1, "stride": 2}, (1, 1, 8, 8)),
    (("Conv2d", 1, 1), {"kernel_size": (3, 5), "padding": (0, 1), "stride": (3, 4)},
     (1, 1, 8, 8)),
    (("MaxPool2d", 3), {}, (1, 2, 4, 4)),
    (("MaxPool2d", 3), {"padding": 1, "stride": 2}, (1, 2, 4, 4)),
    (("MaxPool2d", (2, 3)), {"stride": (2, 3), "padding": (0, 1)}, (1, 2, 4, 4)),
]


@pytest.mark.parametrize(("args", "kwargs", "shape"), SHAPE_CASES)
def test_issue12_book_padding_strides_and_pooling_match_torch(args, kwargs, shape):
    name, *rest = args
    theirs = getattr(torch.nn, name)(*rest, **kwargs).double()
    ours = getattr(nn, name)(*rest, **kwargs).double()
    if name == "Conv2d":
        ours.load_state_dict({k: cn.tensor(v.detach().numpy())
                              for k, v in theirs.state_dict().items()})
    X = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) % 7
    assert_same(ours(cn.tensor(X)), theirs(torch.tensor(X)).detach(), repr(theirs))


@pytest.mark.parametrize("seed", range(20))
def test_issue12_book_small_matmul_adds_products_in_order(seed):
    # the channels section checks a 1x1 convolution written as (c_o, c_i) @ (c_i, h*w) against
    # the same convolution summed channel by channel, to 1e-6 over all outputs: PyTorch's
    # small products add in order (each product, each sum rounded), so the two agree exactly
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((2, 3)).astype(np.float32)
    X = rng.standard_normal((3, 9)).astype(np.float32)
    Kc, Xc = cn.tensor(K), cn.tensor(X)
    by_channel = Kc[:, 0:1] * Xc[0:1] + Kc[:, 1:2] * Xc[1:2] + Kc[:, 2:3] * Xc[2:3]
    product = cn.matmul(Kc, Xc)
    assert np.array_equal(product.numpy(), by_channel.numpy())
    assert_same(product, torch.matmul(torch.tensor(K), torch.tensor(X)), "matmul")
    assert_same(Kc @ Xc, torch.tensor(K) @ torch.tensor(X), "@")


def test_issue12_book_gpu_cells_on_two_standin_gpus(monkeypatch):
    """The builders' guide's *GPUs* section on corrnet's stand-in device (issue 15), two GPUs
    as the book's machine: what its cells print, with the book's text for each."""
    import re

    from corrnet import devices as corrnet_devices

    monkeypatch.setenv(corrnet_devices.STANDIN_VARIABLE, "2")
    corrnet_devices.reset()
    try:
        assert cn.cuda.device_count() == 2
        assert repr((d2l.try_gpu(), d2l.try_gpu(10), d2l.try_all_gpus())) == (
            "(device(type='cuda', index=0), device(type='cpu'), "
            "[device(type='cuda', index=0), device(type='cuda', index=1)])")
        x = cn.tensor([1, 2, 3])
        assert repr(x.device) == "device(type='cpu')"
        X = cn.ones(2, 3, device=d2l.try_gpu())
        assert repr(X) == ("tensor([[1., 1., 1.],\n        [1., 1., 1.]], "
                           "device='cuda:0')")
        Y = cn.rand(2, 3, device=d2l.try_gpu(1))
        assert repr(Y).endswith("device='cuda:1')")
        Z = X.cuda(1)
        assert repr(Z) == repr(X).replace("cuda:0", "cuda:1")
        assert repr(Y + Z).endswith("device='cuda:1')")
        assert Z.cuda(1) is Z
        with pytest.raises(RuntimeError, match="same device.*cuda:0 and cuda:1"):
            X + Y  # the book: "Expected all tensors to be on the same device"
        net = nn.Sequential(nn.Linear(3, 1))
        net = net.to(device=d2l.try_gpu())
        out = repr(net(X))
        assert re.fullmatch(r"tensor\(\[\[-?\d\.\d{4}\],\n        \[-?\d\.\d{4}\]\], "
                            r"device='cuda:0', grad_fn=<AddmmBackward0>\)", out), out
        assert repr(net[0].weight.data.device) == "device(type='cuda', index=0)"
    finally:
        monkeypatch.delenv(corrnet_devices.STANDIN_VARIABLE)
        corrnet_devices.reset()
