"""Issue 16, item 3: batch inference and evaluation on Dask. A LeNet trained briefly gives the
same float32 scores through corrnet.dask.predict as the in-process loop over the same batches,
and the same accuracy as d2l.evaluate_accuracy — with the threaded scheduler, under a
dask.distributed cluster of two worker processes, and from a list of image files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import fake_fashion_mnist
import numpy as np
import pytest

import corrnet
from corrnet import d2l, datasets, models, nn
from corrnet.utils.data import DataLoader

da = pytest.importorskip("dask.array")
cdask = pytest.importorskip("corrnet.dask")

SHARED_DATA = Path(os.environ.get("CORRNET_DATA") or Path(__file__).resolve().parents[2]
                   / "shared" / "data" / "fashion-mnist")


def trained_lenet(train_iter, steps: int):
    """The book's LeNet (sigmoid, average pooling) after a few SGD steps."""
    corrnet.manual_seed(0)
    net = models.lenet()
    optimizer = corrnet.optim.SGD(net.parameters(), lr=0.9)
    loss = nn.CrossEntropyLoss()
    step = 0
    while step < steps:
        for X, y in train_iter:
            optimizer.zero_grad()
            loss(net(X), y).backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    return net


def whole(dataset):
    """The dataset's images (N, 1, 28, 28) float32 and labels (N,), as NumPy arrays."""
    X, y = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    return X.numpy(), y.numpy()


def in_process_loop(net, X: np.ndarray, batch_size: int) -> np.ndarray:
    """The oracle: the network on the same batches, one after the other, in this process."""
    net.eval()
    with corrnet.no_grad():
        return np.concatenate([net(corrnet.from_numpy(X[i:i + batch_size])).numpy()
                               for i in range(0, len(X), batch_size)])


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    root = fake_fashion_mnist.make(tmp_path, monkeypatch, train=64, test=40)
    train = datasets.FashionMNIST(root=root, train=True)
    test = datasets.FashionMNIST(root=root, train=False)
    net = trained_lenet(DataLoader(train, batch_size=16, shuffle=True), steps=8)
    return net, test


def test_issue16_predict_equals_the_in_process_loop_and_evaluate_the_book(fake_fashion):
    net, test = fake_fashion
    X, y = whole(test)
    images = da.from_array(X, chunks=(7, 1, 28, 28))           # chunks unlike the batches
    net.train()
    scores = cdask.predict(net, images, batch_size=16)
    assert net.training                                         # the caller's net untouched
    assert isinstance(scores, da.Array) and scores.dtype == np.float32
    assert scores.shape == (40, 10) and scores.chunks == ((16, 16, 8), (10,))
    computed = scores.compute()
    np.testing.assert_array_equal(computed, in_process_loop(net, X, 16))   # same floats
    with corrnet.no_grad():                                     # the whole batch at once
        np.testing.assert_allclose(computed, net(corrnet.from_numpy(X)).numpy(), rtol=1e-5,
                                   atol=1e-6)
    accuracy = cdask.evaluate(net, images, y, batch_size=16)
    assert isinstance(accuracy, float)
    assert accuracy == d2l.evaluate_accuracy(net, DataLoader(test, batch_size=16))
    assert accuracy == float((computed.argmax(1) == y).mean())


def test_issue16_predict_keeps_the_weights_of_its_call_and_ships_the_network_once():
    corrnet.manual_seed(1)
    net = models.lenet()
    X = np.random.default_rng(0).random((12, 1, 28, 28), dtype=np.float32)
    scores = cdask.predict(net, da.from_array(X, chunks=3), batch_size=2)
    expected = in_process_loop(net, X, 2)
    with corrnet.no_grad():
        net[0].weight.mul_(0)                                   # training goes on
    np.testing.assert_array_equal(scores.compute(), expected)
    # the network is one key of the graph: no task but that one holds its weights
    graph = dict(scores.__dask_graph__())
    shipped = [key for key, task in graph.items() if "ShippedNetwork" in str(key)]
    assert len(shipped) == 1
    sizes = {key: len(pickle.dumps(task)) for key, task in graph.items()}
    assert sum(size > 10_000 for size in sizes.values()) == 1   # LeNet: ~250 kB, once
    assert sizes[shipped[0]] > 200_000


def test_issue16_predict_from_image_files(fake_fashion, tmp_path):
    net, test = fake_fashion
    X, _ = whole(test)
    paths = []
    for i in range(10):
        path = tmp_path / f"image{i}.png"
        corrnet.io.write_png(corrnet.from_numpy(test.data[i].numpy()[None]), path)
        paths.append(str(path) if i % 2 else path)
    scores = cdask.predict(net, paths, batch_size=4)
    assert scores.shape == (10, 10) and scores.chunks[0] == (4, 4, 2)
    np.testing.assert_array_equal(scores.compute(), in_process_loop(net, X[:10], 4))
    odd = tmp_path / "odd.png"
    corrnet.io.write_png(corrnet.zeros(1, 20, 28, dtype=corrnet.uint8), odd)
    with pytest.raises(ValueError, match=r"odd\.png' has shape \(1, 20, 28\).*\(1, 28, 28\)"):
        cdask.predict(net, [*paths[:3], odd], batch_size=4).compute()


# distributed's own start-up leaves a probing socket to the garbage collector (node.py)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_issue16_predict_under_a_distributed_cluster_of_two_processes(fake_fashion):
    distributed = pytest.importorskip("distributed")
    net, test = fake_fashion
    X, y = whole(test)
    images = da.from_array(X, chunks=10)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        scores = cdask.predict(net, images, batch_size=8).compute()
        accuracy = cdask.evaluate(net, images, y, batch_size=8)
    np.testing.assert_array_equal(scores, in_process_loop(net, X, 8))
    assert accuracy == d2l.evaluate_accuracy(net, DataLoader(test, batch_size=8))


SEEN_DEVICES = []


class RecordsItsInputDevice(nn.Module):
    def forward(self, x):
        SEEN_DEVICES.append(str(x.device))
        return x.flatten(1)


def test_issue16_predict_runs_on_the_device_asked_or_the_networks(monkeypatch):
    """On corrnet's stand-in CUDA device (issue 15): batches go to `device`, or to the
    network's own device; the outputs come back as NumPy."""
    from corrnet import devices

    monkeypatch.setenv(devices.STANDIN_VARIABLE, "1")
    devices.reset()
    try:
        corrnet.manual_seed(0)
        net = nn.Sequential(RecordsItsInputDevice(), nn.Linear(12, 5), nn.ReLU(),
                            nn.Linear(5, 3))
        X = np.random.default_rng(0).random((10, 3, 2, 2), dtype=np.float32)
        expected = in_process_loop(net, X, 5)
        images = da.from_array(X, chunks=4)
        SEEN_DEVICES.clear()
        np.testing.assert_array_equal(
            cdask.predict(net, images, batch_size=5, device="cuda").compute(), expected)
        assert set(SEEN_DEVICES) == {"cuda:0"}
        net.to("cuda")
        SEEN_DEVICES.clear()
        np.testing.assert_array_equal(cdask.predict(net, images, batch_size=5).compute(),
                                      expected)
        assert set(SEEN_DEVICES) == {"cuda:0"}
    finally:
        monkeypatch.delenv(devices.STANDIN_VARIABLE)
        devices.reset()


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"Fashion-MNIST is not in {SHARED_DATA}")
def test_issue16_fashion_mnist_test_set_accuracy_equals_the_single_process_figure(monkeypatch):
    monkeypatch.setenv("CORRNET_DATA", str(SHARED_DATA))
    monkeypatch.setenv("CORRNET_NO_DOWNLOAD", "1")
    train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    net = trained_lenet(train_iter, steps=20)
    X, y = whole(test_iter.dataset)
    accuracy = cdask.evaluate(net, da.from_array(X, chunks=2500), y, batch_size=256)
    assert accuracy == d2l.evaluate_accuracy(net, test_iter)


def test_issue16_predict_bad_input_is_refused_clearly():
    net = models.lenet()
    images = da.zeros((4, 1, 28, 28), dtype="float32", chunks=2)
    with pytest.raises(TypeError, match=r"net must be a corrnet\.nn\.Module"):
        cdask.predict(lambda x: x, images)
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer.*0"):
        cdask.predict(net, images, batch_size=0)
    with pytest.raises(TypeError, match=r"images must be a dask array.*from_array"):
        cdask.predict(net, np.zeros((4, 1, 28, 28), dtype="float32"))
    with pytest.raises(ValueError, match=r"images must be a batch.*\(28,\)"):
        cdask.predict(net, da.zeros(28, chunks=7))
    with pytest.raises(TypeError, match=r"images must hold numbers.*complex"):
        cdask.predict(net, images.astype(complex))
    with pytest.raises(TypeError, match=r"list of image file paths, got a list of int"):
        cdask.predict(net, [1, 2])
    with pytest.raises(RuntimeError, match=r"predict: the network fails on one example of "
                                           r"shape \(1, 20, 20\)"):
        cdask.predict(net, da.zeros((4, 1, 20, 20), dtype="float32", chunks=2))
    with pytest.raises(ValueError, match=r"labels must be class indices \(N,\) for the N = 4 "
                                         r"images, got labels of shape \(3,\)"):
        cdask.evaluate(net, images, np.zeros(3, dtype=int))
