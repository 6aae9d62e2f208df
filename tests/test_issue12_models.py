"""The chapter's networks in corrnet.models against the same networks written in PyTorch
(tests/issue12_torch_nets.py, from the published layer specifications) with copied weights:
forward values, every parameter's gradient, and after an SGD step the parameters and the
BatchNorm running buffers, in float32 and float64, at small input sizes. Plus the command
line for each network and a short real training run of ResNet-18."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from issue12_torch_nets import CASES, inputs, pair

import corrnet
from corrnet import cli, models

SHARED_DATA = Path(os.environ.get("CORRNET_DATA") or Path(__file__).resolve().parents[2]
                   / "shared" / "data" / "fashion-mnist")
# of the RMS-relative difference; float32's is loose because BatchNorm networks amplify
# rounding (both libraries' float32 results differ from float64 by as much: the tight claim
# is test_issue12_float32_accuracy's, against float64)
TOLERANCE = {"float32": 2e-3, "float64": 1e-10}


def rms(a) -> float:
    return float(np.sqrt(np.mean(np.asarray(a, np.float64) ** 2)))


def rms_relative(a, b, floor: float = 0.0) -> float:
    """RMS of a - b over the RMS of b (or `floor` when that is larger: a gradient that is
    zero but for rounding, such as a bias before BatchNorm, is judged on the net's scale)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(rms(a - b) / max(rms(b), floor, 1e-300))


def run_step(net, library, x, upstream, dtype, lr=0.1):
    """Forward, backward with `upstream`, one SGD step; returns the output (NumPy)."""
    tx = library.tensor(x.astype(dtype))
    out = net(tx)
    out.backward(library.tensor(upstream.astype(dtype)))
    grads = {name: p.grad.numpy().copy() for name, p in net.named_parameters()}
    optimizer = library.optim.SGD(net.parameters(), lr=lr)
    optimizer.step()
    return out.detach().numpy(), grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_issue12_network_matches_torch(name, dtype):
    cn_net, torch_net = pair(name, dtype)
    x, upstream = inputs(name)
    cn_out, cn_grads = run_step(cn_net, corrnet, x, upstream, dtype)
    torch_out, torch_grads = run_step(torch_net, torch, x, upstream, dtype)
    tol = TOLERANCE[dtype]
    assert cn_out.dtype == torch_out.dtype and cn_out.shape == torch_out.shape == (x.shape[0], 10)
    assert rms_relative(cn_out, torch_out) < tol, "forward"
    assert list(cn_grads) == list(torch_grads)
    floor = 1e-2 * max(rms(g) for g in torch_grads.values())
    errors = {k: rms_relative(cn_grads[k], torch_grads[k], floor) for k in cn_grads}
    bad = {k: e for k, e in errors.items() if e >= tol}
    assert not bad, f"gradients differ: {bad}"
    theirs = torch_net.state_dict()
    for key, value in cn_net.state_dict().items():  # parameters after SGD, BN buffers
        expected = theirs[key].numpy()
        if key.endswith("num_batches_tracked"):
            assert int(value.item()) == int(expected) == 1, key
        else:
            assert value.numpy().dtype == expected.dtype, key
            assert rms_relative(value.numpy(), expected) < tol, key


def test_issue12_batchnorm_buffers_move_in_the_step():
    """The buffers compared above really changed (a train-mode step, not an eval one)."""
    cn_net, _ = pair("resnet18", "float64")
    before = cn_net[0][1].running_mean.numpy().copy()
    x, upstream = inputs("resnet18")
    run_step(cn_net, corrnet, x, upstream, "float64")
    assert not np.allclose(cn_net[0][1].running_mean.numpy(), before)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_issue12_every_model_builds_for_its_input_size(name):
    net = models.MODELS[name]()
    net.eval()
    with corrnet.no_grad():
        out = net(corrnet.zeros(*models.INPUT_SIZES[name]))
    assert tuple(out.shape) == (1, 10)
    assert name in models.DEFAULT_LR


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "nin", "googlenet", "lenet-bn",
                                  "resnet18", "densenet"])
def test_issue12_cli_summary(name, capsys):
    assert cli.main(["summary", name]) == 0
    text = capsys.readouterr().out
    assert "Total params" in text or "params" in text.lower()


def test_issue12_parameter_counts_are_the_books():
    """Sizes known from the architectures (the 1-channel, 10-class versions)."""
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(models.resnet18()) == 11_178_378
    assert count(models.alexnet()) == 46_764_746


needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                reason=f"Fashion-MNIST is not in {SHARED_DATA}")


@needs_data
@pytest.mark.parametrize("name", ["googlenet", "lenet-bn", "densenet"])
def test_issue12_cli_train_each_network_briefly(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CORRNET_DATA", str(SHARED_DATA))
    resize = [] if name == "lenet-bn" else ["--resize", "32"]
    assert cli.main(["train", name, *resize, "--epochs", "1", "--limit", "16",
                     "--batch-size", "8", "--out", str(tmp_path), "--no-progress",
                     "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "16 train / 16 test images" in out and "examples/sec on cpu" in out


@needs_data
def test_issue12_resnet18_loss_falls_on_real_data(monkeypatch):
    """ResNet-18 (Xavier init and lr 0.05 as the book) on 64 real images at 32x32: the
    training loss of the same two batches falls from the first pass to the third."""
    monkeypatch.setenv("CORRNET_DATA", str(SHARED_DATA))
    from corrnet.datasets import FashionMNIST
    from corrnet.utils.data import DataLoader, Subset

    corrnet.manual_seed(0)
    net = models.resnet18()
    net.apply(models.init_xavier)
    data = Subset(FashionMNIST(train=True, resize=32), range(64))
    batches = list(DataLoader(data, batch_size=32))
    optimizer = corrnet.optim.SGD(net.parameters(), lr=0.05)
    loss = corrnet.nn.CrossEntropyLoss()

    net.train()
    epoch_losses = []
    for _ in range(3):
        losses = []
        for X, y in batches:
            optimizer.zero_grad()
            l = loss(net(X), y)
            l.backward()
            optimizer.step()
            losses.append(l.item())
        epoch_losses.append(np.mean(losses))
    before, after = epoch_losses[0], epoch_losses[-1]
    assert after < before, (before, after)
