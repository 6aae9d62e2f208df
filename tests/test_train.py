"""The training stack around `corrnet.fit`: save/load, checkpoints and resume, the plot, the
models, the command line, and one short real training run (accuracy well above chance)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as tt

import corrnet as ct
from corrnet import cli, models, nn, optim
from corrnet.train import History, evaluate_accuracy, fit, load_checkpoint, save_checkpoint
from corrnet.utils.data import DataLoader, TensorDataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
DATA_DIRS = [SHARED_DATA, Path("/usr/share/datasets/fashion-mnist")]
REAL_DATA = next((d for d in DATA_DIRS if (d / "t10k-labels-idx1-ubyte.gz").exists()), None)


def blobs(n=240, seed=0):
    """Three well-separated classes of 1x6x6 images: bright top, bright left, dark."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(0, 0.1, (n, 1, 6, 6)).astype(np.float32)
    X[y == 0, :, :3, :] += 1.0
    X[y == 1, :, :, :3] += 1.0
    return ct.from_numpy(X), ct.from_numpy(y.astype(np.int64))


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3))


def loaders(seed=0, batch_size=32):
    X, y = blobs(seed=seed)
    data = TensorDataset(X, y)
    return DataLoader(data, batch_size=batch_size, shuffle=True), DataLoader(data, 64)


# ------------------------------------------------------------------------ save / load
def test_save_load_round_trip_nested(tmp_path):
    obj = {"w": ct.arange(6.).reshape(2, 3), "i": ct.tensor([1, 2]), "n": 3, "x": 0.5,
           "s": "text", "none": None, "list": [ct.ones(1), {"deep": np.arange(3)}],
           "tuple": (1, "a"), 7: "int key", "flag": True}
    path = tmp_path / "obj.npz"
    ct.save(obj, path)
    back = ct.load(path)
    assert back["w"].dtype == ct.float32 and back["w"].tolist() == obj["w"].tolist()
    assert back["i"].dtype == ct.int64
    assert back["n"] == 3 and back["x"] == 0.5 and back["s"] == "text" and back["none"] is None
    assert back["list"][0].tolist() == [1.0] and back["list"][1]["deep"].tolist() == [0, 1, 2]
    assert back["tuple"] == (1, "a") and back[7] == "int key" and back["flag"] is True


def test_save_file_is_a_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "m.npz"
    ct.save(small_net().state_dict(), path)
    with zipfile.ZipFile(path) as archive:
        assert "structure.json" in archive.namelist()
    with np.load(path, allow_pickle=False) as arrays:  # numpy reads it without pickle
        assert sorted(arrays.files) == ["0", "1", "2", "3", "structure.json"]
        assert arrays["0"].shape == (4, 1, 3, 3)


def test_save_refuses_arbitrary_objects(tmp_path):
    with pytest.raises(TypeError, match="cannot store an object of type object"):
        ct.save({"x": object()}, tmp_path / "bad.npz")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    ct.save({"v": ct.ones(3)}, path)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(KeyboardInterrupt):
        ct.save({"v": ct.zeros(3)}, path)
    assert ct.load(path)["v"].tolist() == [1.0, 1.0, 1.0]  # the old file survives
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary left over


def test_load_damaged_file_says_so(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(RuntimeError, match="broken.npz is not a corrnet save file"):
        ct.load(path)


def test_module_state_dict_survives_save_load(tmp_path):
    ct.manual_seed(0)
    net, other = small_net(), small_net()
    ct.save(net.state_dict(), tmp_path / "w.npz")
    other.load_state_dict(ct.load(tmp_path / "w.npz"))
    x = ct.rand(2, 1, 6, 6)
    assert np.array_equal(net(x).detach().numpy(), other(x).detach().numpy())


# ------------------------------------------------------------------------------- fit
def test_fit_learns_and_reports_the_books_lines():
    ct.manual_seed(0)
    train_iter, test_iter = loaders()
    lines = []
    history = fit(small_net(), train_iter, test_iter, 4, lr=0.5, progress=False,
                  log=lines.append)
    assert len(history.epochs) == 4
    assert history.last.test_acc > 0.9  # three separable classes; chance is 1/3
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    first, second = history.summary().splitlines()
    assert first.startswith("loss ") and ", train acc " in first and ", test acc " in first
    assert second.endswith(" examples/sec on cpu")
    assert lines[-1] == history.summary() and len(lines) == 5


def test_fit_matches_a_hand_written_torch_loop():
    """Same start, same batches, SGD: fit's parameters after one epoch equal torch's."""
    X, y = blobs(n=64)
    ct.manual_seed(0)
    net = small_net().double()
    t_net = tt.nn.Sequential(tt.nn.Conv2d(1, 4, 3), tt.nn.ReLU(), tt.nn.MaxPool2d(2),
                             tt.nn.Flatten(), tt.nn.Linear(16, 3)).double()
    with tt.no_grad():
        for (_, c), (_, t) in zip(net.state_dict().items(), t_net.state_dict().items(),
                                  strict=True):
            t.copy_(tt.from_numpy(c.numpy().copy()))
    Xd = X.double()
    data = DataLoader(TensorDataset(Xd, y), batch_size=16)
    fit(net, data, data, 1, lr=0.3, progress=False, log=None)
    t_opt = tt.optim.SGD(t_net.parameters(), lr=0.3)
    for i in range(0, 64, 16):
        t_opt.zero_grad()
        loss = tt.nn.functional.cross_entropy(t_net(tt.from_numpy(Xd.numpy()[i:i + 16])),
                                              tt.from_numpy(y.numpy()[i:i + 16]))
        loss.backward()
        t_opt.step()
    for (name, c), t in zip(net.state_dict().items(), t_net.state_dict().values(), strict=True):
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_fit_needs_lr_or_optimizer():
    train_iter, test_iter = loaders()
    net = small_net()
    with pytest.raises(ValueError, match="lr"):
        fit(net, train_iter, test_iter, 1, progress=False, log=None)
    with pytest.raises(ValueError, match="not both"):
        fit(net, train_iter, test_iter, 1, lr=0.1, optimizer=optim.SGD(net.parameters(), 0.1),
            progress=False, log=None)


def test_fit_with_progress_bar_and_scheduler(capsys):
    ct.manual_seed(0)
    train_iter, test_iter = loaders()
    net = small_net()
    opt = optim.SGD(net.parameters(), lr=0.5)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    fit(net, train_iter, test_iter, 2, optimizer=opt, scheduler=sched, progress=True, log=None)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.125)
    assert "epoch 2/2" in capsys.readouterr().err  # the tqdm bar


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    """Two epochs straight == one epoch, stop, resume from the checkpoint for the second
    (same parameters, same shuffling, same history)."""
    def run(epochs, resume, path):
        ct.manual_seed(1)
        net = small_net()
        train_iter, test_iter = loaders()
        ct.manual_seed(2)
        history = fit(net, train_iter, test_iter, epochs, lr=0.2, checkpoint=path,
                      resume=resume, progress=False, log=None)
        return net, history

    straight, h_straight = run(2, False, tmp_path / "a.npz")
    run(1, False, tmp_path / "b.npz")
    resumed, h_resumed = run(2, True, tmp_path / "b.npz")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert np.array_equal(a.numpy(), b.numpy()), name
    assert [e.train_loss for e in h_straight.epochs] == [e.train_loss for e in h_resumed.epochs]
    assert [e.epoch for e in h_resumed.epochs] == [1, 2]


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    net = small_net()
    opt = optim.SGD(net.parameters(), lr=0.1)
    save_checkpoint(tmp_path / "c.npz", net, opt, 1, History())
    other = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32, 3))
    with pytest.raises(RuntimeError, match="different network") as excinfo:
        load_checkpoint(tmp_path / "c.npz", other)
    message = str(excinfo.value)
    assert "0.weight: checkpoint [4, 1, 3, 3] vs model [8, 1, 3, 3]" in message
    assert "4.weight" in message


def test_not_a_checkpoint_is_refused(tmp_path):
    ct.save({"weight": ct.ones(1)}, tmp_path / "w.npz")
    with pytest.raises(RuntimeError, match="not a corrnet training checkpoint"):
        load_checkpoint(tmp_path / "w.npz", small_net())


def test_plot_is_written_as_png(tmp_path):
    pytest.importorskip("matplotlib")
    ct.manual_seed(0)
    train_iter, test_iter = loaders()
    fit(small_net(), train_iter, test_iter, 2, lr=0.5, plot=tmp_path / "curves.png",
        progress=False, log=None)
    data = (tmp_path / "curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_evaluate_accuracy_restores_training_mode():
    X, y = blobs(n=32)
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(36, 3))
    net.train()
    acc = evaluate_accuracy(net, DataLoader(TensorDataset(X, y), 8))
    assert 0.0 <= acc <= 1.0 and net.training


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", ["lenet", "lenet-relu"])
def test_lenet_shapes_and_parameter_count(name):
    net = models.MODELS[name]()
    assert tuple(net(ct.zeros(2, 1, 28, 28)).shape) == (2, 10)
    assert sum(p.numel() for p in net.parameters()) == 61706  # D2L's LeNet


def test_lenet_matches_torch_forward_with_the_same_weights():
    net = models.lenet()
    t_net = tt.nn.Sequential(
        tt.nn.Conv2d(1, 6, 5, padding=2), tt.nn.Sigmoid(), tt.nn.AvgPool2d(2, 2),
        tt.nn.Conv2d(6, 16, 5), tt.nn.Sigmoid(), tt.nn.AvgPool2d(2, 2), tt.nn.Flatten(),
        tt.nn.Linear(400, 120), tt.nn.Sigmoid(), tt.nn.Linear(120, 84), tt.nn.Sigmoid(),
        tt.nn.Linear(84, 10))
    t_net.load_state_dict({k: tt.from_numpy(v.numpy().copy())
                           for k, v in net.state_dict().items()})
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(net(ct.from_numpy(x)).detach().numpy(),
                               t_net(tt.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_lenet_weights_are_xavier_uniform():
    ct.manual_seed(0)
    weight = models.lenet()[7].weight.detach().numpy()  # Linear(400, 120)
    bound = np.sqrt(6 / (400 + 120))
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound


def test_the_book_network_in_plain_pytorch_style_runs():
    """The same network written as the book does, with `import corrnet as torch`."""
    torch, tnn = ct, ct.nn
    net = tnn.Sequential(
        tnn.Conv2d(1, 6, kernel_size=5, padding=2), tnn.Sigmoid(),
        tnn.AvgPool2d(kernel_size=2, stride=2),
        tnn.Conv2d(6, 16, kernel_size=5), tnn.Sigmoid(),
        tnn.AvgPool2d(kernel_size=2, stride=2),
        tnn.Flatten(),
        tnn.Linear(16 * 5 * 5, 120), tnn.Sigmoid(),
        tnn.Linear(120, 84), tnn.Sigmoid(),
        tnn.Linear(84, 10))
    X = torch.rand(size=(1, 1, 28, 28), dtype=torch.float32)
    shapes = []
    for layer in net:
        X = layer(X)
        shapes.append(tuple(X.shape))
    assert shapes[-1] == (1, 10) and shapes[5] == (1, 16, 5, 5)

    def init_weights(m):
        if type(m) is tnn.Linear or type(m) is tnn.Conv2d:
            tnn.init.xavier_uniform_(m.weight)

    net.apply(init_weights)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.9)
    loss = tnn.CrossEntropyLoss()
    y_hat = net(torch.rand(4, 1, 28, 28))
    l = loss(y_hat, torch.tensor([0, 1, 2, 3]))
    optimizer.zero_grad()
    l.backward()
    optimizer.step()
    assert float(l) > 0


# ------------------------------------------------------------------------ command line
def test_cli_train_rejects_bad_options(capsys):
    for argv in (["train", "--epochs", "0"], ["train", "--lr", "-1"],
                 ["train", "lenet", "--model", "lenet-relu"], ["train", "vgg"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
    assert "--epochs must be at least 1" in capsys.readouterr().err


def test_cli_train_without_data_or_network_says_where_it_looked(tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("CORRNET_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CORRNET_NO_DOWNLOAD", raising=False)
    import corrnet.datasets as datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets, "DEBIAN_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setattr(datasets, "_urlopen", offline)
    # one line, no traceback (issue 14): where it looked, why the download failed, the flag
    assert cli.main(["train", "--epochs", "1", "--data-root", str(tmp_path / "empty"),
                     "--out", str(tmp_path / "run"), "--no-progress", "--no-plot"]) == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert message.startswith("corrnet train: error: Fashion-MNIST not found")
    assert "network is unreachable" in message and str(tmp_path / "empty") in message
    assert "$CORRNET_DATA" in message and "--data-root" in message


@pytest.mark.skipif(REAL_DATA is None, reason="Fashion-MNIST files not found "
                    "(../shared/data/fashion-mnist or /usr/share/datasets/fashion-mnist)")
def test_cli_trains_lenet_relu_one_short_epoch_well_above_chance(tmp_path, capsys):
    """CI's real-data check: one epoch on 6,000 real images lifts test accuracy far above
    the 10% of chance; the checkpoint and the book's lines are written."""
    out = tmp_path / "run"
    cli.main(["train", "--model", "lenet-relu", "--epochs", "1", "--lr", "0.1",
              "--batch-size", "64", "--train-subset", "6000", "--test-subset", "2000",
              "--data-root", str(REAL_DATA), "--out", str(out), "--no-progress", "--no-plot"])
    text = capsys.readouterr().out
    last_two = text.strip().splitlines()[-2:]
    assert last_two[0].startswith("loss ") and last_two[1].endswith("examples/sec on cpu")
    test_acc = float(last_two[0].rsplit("test acc ", 1)[1])
    assert test_acc > 0.5, text
    assert (out / "checkpoint.npz").exists()


def test_cli_summary_lenet(capsys):
    assert cli.main(["summary", "lenet"]) == 0
    text = capsys.readouterr().out
    assert "Conv2d" in text and "Total params: 61,706" in text


def test_saved_files_follow_the_umask_not_the_private_temporary_mode(tmp_path):
    old = os.umask(0o022)
    try:
        ct.save({"v": ct.ones(1)}, tmp_path / "w.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "w.npz").stat().st_mode & 0o777 == 0o644


def test_deepcopy_of_a_model_is_independent():
    import copy

    net = small_net()
    twin = copy.deepcopy(net)
    assert isinstance(twin[0].weight, nn.Parameter) and twin[0].weight.requires_grad
    with ct.no_grad():
        twin[0].weight.fill_(0.0)
    assert net[0].weight.detach().abs().sum().item() > 0
    x = ct.rand(1, 1, 6, 6)
    (net(x).sum()).backward()
    assert twin[0].weight.grad is None
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(net(x))
