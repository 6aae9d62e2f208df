"""corrnet.d2l: the book's helpers for both editions behave as the d2l package's do (what
they print and return), plots go to PNGs in $CORRNET_PLOTS outside Jupyter, and training runs
without matplotlib, saying once that plots are off."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import corrnet
from corrnet import d2l, models, nn
from corrnet.utils.data import DataLoader, TensorDataset

SHARED_DATA = Path(os.environ.get("CORRNET_DATA") or Path(__file__).resolve().parents[2]
                   / "shared" / "data" / "fashion-mnist")
needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                reason=f"Fashion-MNIST is not in {SHARED_DATA}")


@pytest.fixture(autouse=True)
def plots_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("CORRNET_PLOTS", str(tmp_path))
    monkeypatch.setattr(d2l, "_warned_no_plots", False)
    return tmp_path


def tiny_fashion(n=64, seed=0):
    """Synthetic 1x28x28 images with 10 classes, learnable (class = brightest row block)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    X = rng.random((n, 1, 28, 28)).astype(np.float32) * 0.2
    for i, label in enumerate(y):
        X[i, 0, 2 * label:2 * label + 3] += 1.0
    return corrnet.tensor(X), corrnet.tensor(y)


def test_issue12_devices_as_on_a_cpu_only_pytorch():
    assert d2l.try_gpu() == corrnet.device("cpu") and repr(d2l.try_gpu()) == \
        repr(torch.device("cpu"))
    assert d2l.try_gpu(3) == d2l.cpu()
    assert d2l.try_all_gpus() == [corrnet.device("cpu")]
    assert d2l.num_gpus() == 0 and str(d2l.gpu(1)) == "cuda:1"


def test_issue12_counting_and_timing_helpers():
    metric = d2l.Accumulator(3)
    metric.add(1, 2.5, corrnet.tensor(3.0))
    metric.add(1, 1, 1)
    assert metric[0] == 2.0 and metric[1] == 3.5 and metric[2] == 4.0
    assert isinstance(metric[2], float)
    metric.reset()
    assert metric.data == [0.0, 0.0, 0.0]
    timer = d2l.Timer()
    timer.stop()
    timer.start()
    timer.stop()
    assert len(timer.times) == 2 and timer.sum() >= 0 and len(timer.cumsum()) == 2
    assert timer.avg() == pytest.approx(timer.sum() / 2)


def test_issue12_accuracy_and_labels():
    y_hat = corrnet.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    y = corrnet.tensor([1, 1, 1])
    assert d2l.accuracy(y_hat, y) == 2.0 and isinstance(d2l.accuracy(y_hat, y), float)
    assert d2l.get_fashion_mnist_labels([0, 9, corrnet.tensor(5)]) == \
        ["t-shirt", "ankle boot", "sandal"]
    X = corrnet.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = corrnet.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert d2l.corr2d(X, K).tolist() == [[19.0, 25.0], [37.0, 43.0]]


def test_issue12_train_ch6_prints_the_books_lines_and_animates(capsys, plots_in_tmp):
    X, y = tiny_fashion()
    train_iter = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    test_iter = DataLoader(TensorDataset(X, y), batch_size=16)
    corrnet.manual_seed(0)
    net = models.lenet_bn()
    d2l.train_ch6(net, train_iter, test_iter, 2, 1.0, d2l.try_gpu())
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "training on cpu"
    assert re.fullmatch(r"loss \d+\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}", lines[1])
    assert re.fullmatch(r"\d+\.\d examples/sec on cpu", lines[2])
    assert (plots_in_tmp / "d2l-animator.png").stat().st_size > 0
    assert net.training is False  # evaluate_accuracy_gpu leaves it in eval mode, as d2l


def test_issue12_evaluate_accuracy_gpu_counts_correct_predictions():
    X, y = tiny_fashion(32)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    data = DataLoader(TensorDataset(X, y), batch_size=10)
    with corrnet.no_grad():
        expected = float((net(X).argmax(axis=1) == y).float().mean())
    assert d2l.evaluate_accuracy_gpu(net, data) == pytest.approx(expected)
    assert net.training is False


def test_issue12_training_without_matplotlib_says_once_that_plots_are_off(
        monkeypatch, capsys, plots_in_tmp):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    X, y = tiny_fashion(32)
    data = DataLoader(TensorDataset(X, y), batch_size=8)
    d2l.train_ch6(models.lenet(), data, data, 1, 0.9)
    d2l.plot([1, 2, 3], [[1, 4, 9]])
    out = capsys.readouterr().out
    assert out.count("plots are off") == 1
    assert "examples/sec on cpu" in out
    assert not list(plots_in_tmp.glob("*.png"))


def test_issue12_plot_and_show_images_write_pngs(plots_in_tmp):
    x = corrnet.arange(0, 3, 0.1)
    d2l.plot(x, [x ** 2, 2 * x - 3], "x", "f(x)", legend=["f(x)", "tangent"])
    assert (plots_in_tmp / "d2l-plot.png").stat().st_size > 0
    axes = d2l.show_images(corrnet.rand(4, 28, 28), 2, 2, titles=list("abcd"))
    assert len(axes) == 4 and axes[2].get_title() == "c"
    assert (plots_in_tmp / "d2l-images.png").stat().st_size > 0


def test_issue12_plots_off_by_environment(monkeypatch, plots_in_tmp):
    monkeypatch.setenv("CORRNET_PLOTS", "off")
    d2l.plot([1, 2], [[3, 4]])
    assert not list(plots_in_tmp.glob("*.png"))


# -- the 1.0 edition ----------------------------------------------------------------------


def test_issue12_hyperparameters_and_add_to_class():
    class Net(d2l.HyperParameters):
        def __init__(self, a, b=2, _private=3, c=4):
            self.save_hyperparameters(ignore=["c"])

    net = Net(1)
    assert net.hparams == {"a": 1, "b": 2} and net.a == 1 and net.b == 2
    assert not hasattr(net, "c") and not hasattr(net, "_private")

    @d2l.add_to_class(Net)
    def double(self):
        return 2 * self.a

    assert net.double() == 2


class ExplicitLeNet(d2l.Classifier):
    """The 1.0 edition's LeNet with explicit (not lazy) layers."""

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = models.lenet(num_classes=num_classes)


class TensorData(d2l.DataModule):
    def __init__(self, batch_size=16):
        super().__init__()
        self.save_hyperparameters()
        self.X, self.y = tiny_fashion(64)

    def get_dataloader(self, train):
        return self.get_tensorloader((self.X, self.y), train)


def test_issue12_trainer_fits_a_classifier_and_plots(plots_in_tmp):
    corrnet.manual_seed(0)
    data = TensorData()
    model = ExplicitLeNet(lr=0.9)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer = d2l.Trainer(max_epochs=3, num_gpus=1)
    assert trainer.gpus == [] and trainer.max_epochs == 3
    before = float(model.loss(model(data.X), data.y))
    trainer.fit(model, data)
    after = float(model.loss(model(data.X), data.y))
    assert after < before
    assert list(model.board.data) == ["train_loss", "val_loss", "val_acc"]
    assert len(model.board.data["train_loss"]) == 3 * 2  # plot_train_per_epoch=2
    assert [p.x for p in model.board.data["val_acc"]] == [1, 2, 3]
    assert (plots_in_tmp / "d2l-progress.png").stat().st_size > 0
    assert trainer.train_batch_idx == 3 * 4 and trainer.epoch == 2


def test_issue12_classifier_loss_and_accuracy_match_torch():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    model = ExplicitLeNet()
    Y_hat, Y = corrnet.tensor(logits), corrnet.tensor(labels)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels))
    assert float(model.loss(Y_hat, Y)) == pytest.approx(float(expected), rel=1e-12)
    per_example = model.loss(Y_hat, Y, averaged=False)
    assert tuple(per_example.shape) == (6,)
    assert float(model.accuracy(Y_hat, Y)) == pytest.approx(
        float((logits.argmax(1) == labels).mean()))


def test_issue12_layer_summary_prints_as_the_book(capsys):
    ExplicitLeNet().layer_summary((1, 1, 28, 28))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Conv2d output shape:\t torch.Size([1, 6, 28, 28])"
    assert lines[-1] == "Linear output shape:\t torch.Size([1, 10])"
    assert len(lines) == 12


def test_issue12_sgd_from_scratch_and_init_cnn():
    w = corrnet.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    sgd = d2l.SGD([w], lr=0.1)
    with corrnet.no_grad():
        sgd.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.8, 1.6])
    sgd.zero_grad()
    assert w.grad.tolist() == [0.0, 0.0]
    layer = nn.Conv2d(4, 8, 3)
    corrnet.manual_seed(0)
    d2l.init_cnn(layer)
    bound = np.sqrt(6 / (4 * 9 + 8 * 9))
    assert np.abs(layer.weight.detach().numpy()).max() <= bound


def test_issue12_classic_residual_from_d2l():
    blk = d2l.Residual(3, 6, use_1x1conv=True, strides=2)
    assert tuple(blk(corrnet.rand(4, 3, 6, 6)).shape) == (4, 6, 3, 3)
    assert tuple(d2l.Residual(3, 3)(corrnet.rand(4, 3, 6, 6)).shape) == (4, 3, 6, 6)


@pytest.mark.skipif(not hasattr(nn, "LazyConv2d"), reason="nn.LazyConv2d is not there yet")
def test_issue12_lazy_networks_of_the_1_0_edition():
    blk = d2l.Residual(6, use_1x1conv=True, strides=2)
    assert tuple(blk(corrnet.rand(4, 3, 6, 6)).shape) == (4, 6, 3, 3)
    model = d2l.LeNet()
    model.apply_init([corrnet.rand(2, 1, 28, 28)], d2l.init_cnn)
    assert tuple(model(corrnet.rand(2, 1, 28, 28)).shape) == (2, 10)
    block = d2l.ResNeXtBlock(32, 16, 1, use_1x1conv=True, strides=2)
    assert tuple(block(corrnet.rand(2, 32, 8, 8)).shape) == (2, 32, 4, 4)


@needs_data
def test_issue12_fashion_mnist_data_module(monkeypatch):
    monkeypatch.setenv("CORRNET_DATA", str(SHARED_DATA))
    data = d2l.FashionMNIST(batch_size=64, resize=(32, 32))
    assert len(data.train) == 60000 and len(data.val) == 10000
    assert tuple(data.train[0][0].shape) == (1, 32, 32)
    X, y = next(iter(data.val_dataloader()))
    assert tuple(X.shape) == (64, 1, 32, 32) and X.dtype == corrnet.float32
    assert y.dtype == corrnet.int64
    assert data.text_labels([0, 9]) == ["t-shirt", "ankle boot"]
    assert data.root == "../data" and data.num_workers == 4
