"""Issue 14, item 5: the command line, finished: ``corrnet --version``, ``python -m corrnet``,
one line (no traceback) for a missing data set and for ``--resume`` without a checkpoint, a
1-epoch run whose curves show their points, checkpoints that name their network, and
``corrnet summary`` for every model. Training runs use small Fashion-MNIST look-alikes
(`fake_fashion_mnist`); nothing is downloaded."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_fashion_mnist import make

import corrnet
from corrnet import cli, datasets, models

SRC = Path(__file__).resolve().parents[1] / "src"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"corrnet {corrnet.__version__}\n"
    assert corrnet.__version__ == importlib.metadata.version("corrnet")


def test_python_dash_m_corrnet_runs_the_command_line():
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run([sys.executable, "-m", "corrnet", "--version"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == f"corrnet {corrnet.__version__}\n"
    done = subprocess.run([sys.executable, "-m", "corrnet", "nonsense"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "invalid choice: 'nonsense'" in done.stderr


def _train(tmp_path, *extra):
    return cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "run"),
                     "--no-progress", "--no-plot", *extra])


def test_missing_data_set_is_one_line_naming_where_and_the_flag(tmp_path, monkeypatch, capsys):
    make(tmp_path, monkeypatch)  # patches the tables; the data root below is empty
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _train(tmp_path, "--data-root", str(empty)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("corrnet train: error: Fashion-MNIST not "
                                                   "found; looked in ")
    for part in (f"{empty} (root=)", str(tmp_path / "cache" / "corrnet"), "fashion-mnist/",
                 "FashionMNIST/raw/", "downloading is off ($CORRNET_NO_DOWNLOAD)",
                 "pass --data-root FOLDER"):
        assert part in err, part
    assert not (tmp_path / "run").exists()


def test_missing_data_set_offline_names_the_download_failure(tmp_path, monkeypatch, capsys):
    make(tmp_path, monkeypatch)
    monkeypatch.delenv("CORRNET_NO_DOWNLOAD")

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets, "_urlopen", offline)
    assert _train(tmp_path, "--data-root", str(tmp_path / "empty")) == 2
    lines = capsys.readouterr().err.splitlines()
    # one progress line per mirror tried, then the error
    assert all(line.startswith("corrnet: downloading ") for line in lines[:-1])
    assert lines[-1].startswith("corrnet train: error: Fashion-MNIST not found")
    assert "the download failed" in lines[-1] and "network is unreachable" in lines[-1]
    assert "--data-root" in lines[-1]


def test_damaged_data_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    files = make(tmp_path, monkeypatch)
    (files / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b damaged")
    assert _train(tmp_path, "--data-root", str(files)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(files / "t10k-labels-idx1-ubyte.gz") in err


def test_resume_without_a_checkpoint_is_an_error(tmp_path, monkeypatch, capsys):
    files = make(tmp_path, monkeypatch)
    assert _train(tmp_path, "--data-root", str(files), "--resume") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume: there is no checkpoint" in err
    assert str(tmp_path / "run" / "checkpoint.npz") in err
    assert not (tmp_path / "run").exists()


def test_one_epoch_run_draws_its_points_and_names_its_network(tmp_path, monkeypatch, capsys):
    files = make(tmp_path, monkeypatch)
    from matplotlib.figure import Figure

    drawn = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig",
                        lambda self, *a, **k: drawn.append(self) or original(self, *a, **k))
    argv = ["train", "lenet-relu", "--epochs", "1", "--limit", "32", "--batch-size", "16",
            "--data-root", str(files), "--out", str(tmp_path / "run"), "--no-progress"]
    assert cli.main(argv) == 0
    assert (tmp_path / "run" / "curves.png").exists()
    lines = drawn[-1].axes[0].get_lines()
    assert len(lines) == 3
    for line in lines:  # one point each, drawn as a marker (a line needs two points)
        assert len(line.get_xdata()) == 1 and line.get_marker() not in ("None", "", None)
    net, info = models.from_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert (info.model, info.input_size, info.epoch) == ("lenet-relu", (1, 1, 28, 28), 1)
    # resuming continues after the epoch the checkpoint holds
    assert cli.main(argv[:3] + ["2"] + argv[4:] + ["--resume", "--no-plot"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert models.from_checkpoint(tmp_path / "run" / "checkpoint.npz")[1].epoch == 2
    # resuming it as another network is refused in one line, before any work
    assert cli.main(argv[:1] + ["lenet"] + argv[2:] + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a lenet-relu run, not lenet" in err


def test_checkpoint_records_the_resized_input(tmp_path, monkeypatch):
    files = make(tmp_path, monkeypatch, train=8, test=8)
    assert cli.main(["train", "googlenet", "--epochs", "1", "--limit", "4", "--batch-size",
                     "4", "--resize", "32", "--data-root", str(files), "--out",
                     str(tmp_path / "run"), "--no-progress", "--no-plot"]) == 0
    net, info = models.from_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert info.input_size == (1, 1, 32, 32) and info.kwargs == {"num_classes": 10}
    assert tuple(net(corrnet.zeros(*info.input_size)).shape) == (1, 10)
    from PIL import Image

    Image.new("L", (20, 30), 128).save(tmp_path / "grey.png")
    assert cli.main(["show", "features", str(tmp_path / "run" / "checkpoint.npz"),
                     str(tmp_path / "grey.png"), "--layer", "0.2"]) == 0  # a nested name
    with Image.open(tmp_path / "run" / "features-0.2.png") as png:
        assert png.format == "PNG"


SLOW_SUMMARIES = {"alexnet", "vgg11-full"}  # 2 and 5 s here; test_issue12_models runs alexnet


@pytest.mark.parametrize("name", sorted(set(models.MODELS) - SLOW_SUMMARIES))
def test_summary_takes_every_model(name, capsys):
    assert cli.main(["summary", name]) == 0
    text = capsys.readouterr().out
    total = sum(p.numel() for p in models.MODELS[name]().parameters())
    assert f"Total params: {total:,}" in text


@pytest.mark.skipif(not os.environ.get("CORRNET_SLOW"), reason="large 224x224 networks: "
                    "seconds each (set CORRNET_SLOW=1)")
@pytest.mark.parametrize("name", sorted(SLOW_SUMMARIES))
def test_summary_takes_every_large_model(name, capsys):
    test_summary_takes_every_model(name, capsys)


def test_every_model_has_an_input_size_and_a_learning_rate():
    assert set(models.MODELS) == set(models.INPUT_SIZES) == set(models.DEFAULT_LR)


def test_resume_from_a_damaged_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    from corrnet.train import History, save_checkpoint

    files = make(tmp_path, monkeypatch)
    net = models.MODELS["lenet"]()
    net[0].weight.data[0, 0, 0, 0] = float("nan")
    save_checkpoint(tmp_path / "run" / "checkpoint.npz", net,
                    corrnet.optim.SGD(net.parameters(), lr=0.1), 1, History(),
                    network=models.describe("lenet"))
    assert _train(tmp_path, "--data-root", str(files), "--resume", "--epochs", "2") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hold NaN or infinite values" in err
    assert str(tmp_path / "run" / "checkpoint.npz") in err
