"""issue 15, around the GPU: the rest of PyTorch's device API (``to(..., non_blocking, copy)``,
pinned memory, CUDA generators, seeds and memory statistics, device properties), save/load of
cuda tensors with ``map_location``, training on a device (``fit(device=...)``, ``corrnet
train --device``), d2l's GPU helpers, and the ``make test-gpu`` switch.

CUDA is corrnet's stand-in device (``CORRNET_STANDIN_CUDA=2``); PyTorch's CPU build is the
oracle where it can say (its errors and no-ops without an accelerator, its ``to`` rules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import corrnet as cn
from corrnet import d2l, devices, optim
from corrnet import nn as cnn
from corrnet.serialization import LoadError
from corrnet.train import fit
from corrnet.utils.data import DataLoader, TensorDataset

import torch_compare
from torch_compare import both, numpy_of

ROOT = Path(__file__).resolve().parents[1]




def uses_cuda(monkeypatch, count: int) -> None:
    monkeypatch.setenv(devices.STANDIN_VARIABLE, str(count))
    devices.reset()


def on_the_host(array):
    """The same array as a corrnet and a torch tensor, both on the CPU whatever the test
    device (these tests are about host tensors)."""
    return cn.tensor(array), torch.tensor(array)


def torch_error(call) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


# ------------------------------------------------------------------------ Tensor.to, pinning


@pytest.mark.parametrize("args", [("cpu", "float32", False, True), ("cpu", "float32", True),
                                  ("float32", False, True), ("float64", False, False),
                                  ("cpu",), ("float32",)])
def test_to_positional_non_blocking_and_copy_as_torch(args):
    x_cn, x_th = on_the_host(np.arange(3, dtype=np.float32))

    def convert(lib, x):
        return x.to(*(getattr(lib, a) if a in ("float32", "float64") else a for a in args))

    got, expected = convert(cn, x_cn), convert(torch, x_th)
    assert (got is x_cn) == (expected is x_th), args
    torch_compare.assert_same(got, expected, str(args))


def test_to_refuses_a_fifth_positional_argument_as_torch():
    with pytest.raises(TypeError, match="0 to 4 positional arguments but 5"):
        cn.ones(1).to("cpu", cn.float32, False, True, 1)
    with pytest.raises(TypeError, match="0 to 4 positional arguments but 5"):
        torch.ones(1).to("cpu", torch.float32, False, True, 1)


def test_pinning_without_cuda_as_cpu_only_torch(no_cuda):
    x_cn, x_th = on_the_host(np.ones(3, np.float32))
    assert x_cn.is_pinned() is x_th.is_pinned() is False
    theirs = torch_error(x_th.pin_memory)
    with pytest.raises(type(theirs), match="accelerator"):
        x_cn.pin_memory()
    with warnings.catch_warnings(record=True) as ours, warnings.catch_warnings():
        warnings.simplefilter("always")
        batch = next(iter(DataLoader(TensorDataset(x_cn), batch_size=2, pin_memory=True)))
    with warnings.catch_warnings(record=True) as torchs:
        warnings.simplefilter("always")
        torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_th), batch_size=2,
                                    pin_memory=True).__iter__().__next__()
    assert [str(w.message) for w in ours] == [str(w.message) for w in torchs]
    assert not batch[0].is_pinned() and not batch[0].is_cuda


def test_pin_memory_on_cuda(cuda):
    x = cn.arange(6.0).reshape(2, 3)
    pinned = x.pin_memory()
    assert pinned is not x and pinned.is_pinned() and not x.is_pinned()
    assert pinned.tolist() == x.tolist() and not pinned.is_cuda
    assert pinned[1:].is_pinned() and pinned.pin_memory() is pinned  # a view of pinned memory
    moved = pinned.to("cuda:1", non_blocking=True)
    assert moved.device == cn.device("cuda:1") and moved.cpu().tolist() == x.tolist()
    assert x.cuda(non_blocking=True).is_cuda and not moved.is_pinned()
    with pytest.raises(RuntimeError, match="only dense CPU tensors can be pinned"):
        moved.pin_memory()
    loader = DataLoader(TensorDataset(cn.ones(5, 2), cn.arange(5)), batch_size=2,
                        pin_memory=True)
    batches = list(loader)
    assert len(batches) == 3 and all(t.is_pinned() and not t.is_cuda
                                     for batch in batches for t in batch)


# ------------------------------------------------------------------ generators, seeds, memory


def test_cuda_functions_without_cuda_as_cpu_only_torch(no_cuda):
    for name in ("memory_allocated", "max_memory_allocated"):
        assert getattr(cn.cuda, name)() == getattr(torch.cuda, name)() == 0
    for name in ("empty_cache", "seed", "seed_all"):
        assert getattr(cn.cuda, name)() is getattr(torch.cuda, name)() is None
    before = cn.initial_seed()
    cn.cuda.seed()  # a no-op without CUDA: the host generator is untouched
    assert cn.initial_seed() == before
    for name in ("initial_seed", "get_device_properties", "reset_peak_memory_stats"):
        torch_error(getattr(torch.cuda, name))  # torch raises (AssertionError or another)
        with pytest.raises(RuntimeError, match=f"{name}.*no CUDA backend"):
            getattr(cn.cuda, name)()
    torch_error(lambda: torch.Generator(device="cuda"))
    with pytest.raises(RuntimeError, match="Generator.*no CUDA"):
        cn.Generator(device="cuda")


def test_cuda_generators_seeds_and_properties(cuda):
    g = cn.Generator(device="cuda")
    assert g.device == cn.device("cuda:0") and cn.Generator("cuda:1").device.index == 1
    g.manual_seed(5)
    a = cn.rand(4, generator=g, device="cuda")
    assert a.is_cuda and a.cpu().tolist() == cn.rand(4, generator=cn.Generator().manual_seed(5)
                                                     ).tolist()
    cn.cuda.manual_seed(11)
    assert cn.cuda.initial_seed() == 11 == cn.initial_seed()
    cn.cuda.seed_all()
    assert cn.cuda.initial_seed() != 11
    properties = cn.cuda.get_device_properties(1)
    assert properties.name == cn.cuda.get_device_name(1)
    assert properties.total_memory > 0 and properties.multi_processor_count >= 1
    assert repr(properties).startswith("_CudaDeviceProperties(name='corrnet stand-in")
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        cn.cuda.get_device_properties(2)


def test_events_time_and_wait_as_torch(cuda):
    start, end = cn.cuda.Event(enable_timing=True), cn.cuda.Event(enable_timing=True)
    with pytest.raises(RuntimeError, match="must be recorded"):
        start.elapsed_time(end)
    start.record()
    (cn.ones(200, 200, device="cuda") @ cn.ones(200, 200, device="cuda")).sum().item()
    end.record()
    end.synchronize()
    end.wait()
    assert end.query() and start.elapsed_time(end) > 0
    untimed = cn.cuda.Event()
    untimed.record()
    with pytest.raises(RuntimeError, match="enable_timing=True"):
        start.elapsed_time(untimed)
    with pytest.raises(TypeError, match="no Stream objects"):
        start.record(stream=object())


def test_events_need_cuda(no_cuda):
    with pytest.raises(RuntimeError):
        torch.cuda.Event(enable_timing=True)
    with pytest.raises(RuntimeError, match="Event.*no CUDA backend"):
        cn.cuda.Event(enable_timing=True)


def test_peak_memory_statistics(cuda):
    cn.cuda.empty_cache()
    cn.cuda.reset_peak_memory_stats(1)
    base = cn.cuda.memory_allocated(1)
    assert cn.cuda.max_memory_allocated(1) == base
    x = cn.zeros(1000, dtype=cn.float64, device="cuda:1")
    y = cn.zeros(500, dtype=cn.float64, device="cuda:1")
    del x, y
    assert cn.cuda.memory_allocated(1) == base
    assert cn.cuda.max_memory_allocated(1) == base + 12000
    cn.cuda.reset_peak_memory_stats(1)
    assert cn.cuda.max_memory_allocated(1) == base


# ---------------------------------------------------------------------------- save and load


def saved_on_cuda(tmp_path) -> Path:
    """A file saved from cuda:1 (a Linear's state dict, a CPU tensor, an array, a number)."""
    net = cnn.Linear(3, 2).cuda(1)
    path = tmp_path / "gpu.npz"
    cn.save({"model": net.state_dict(), "host": cn.arange(3), "array": np.ones(2),
             "epoch": 4}, path)
    return path


def test_save_and_load_restore_the_device(cuda, tmp_path):
    path = saved_on_cuda(tmp_path)
    state = cn.load(path)
    assert state["model"]["weight"].device == cn.device("cuda:1") and state["epoch"] == 4
    assert not state["host"].is_cuda and isinstance(state["array"], np.ndarray)
    with zipfile.ZipFile(path) as archive:
        structure = json.loads(archive.read("structure.json"))
    assert '"__tensor_on__"' in json.dumps(structure) and '"cuda:1"' in json.dumps(structure)
    clone = cnn.Linear(3, 2).cuda()
    clone.load_state_dict(state["model"])  # copied across devices into clone's
    assert clone.weight.device == cn.device("cuda:0")


@pytest.mark.parametrize(("map_location", "model", "host"), [
    ("cpu", "cpu", "cpu"),
    (cn.device("cuda:0"), "cuda:0", "cuda:0"),
    ("cuda", "cuda:0", "cuda:0"),
    ({"cuda:1": "cuda:0"}, "cuda:0", "cpu"),
    ({"cpu": "cuda:1"}, "cuda:1", "cuda:1"),
    (lambda tensor, location: tensor, "cpu", "cpu"),  # torch's idiom for "all on the CPU"
    (lambda tensor, location: None, "cuda:1", "cpu"),  # None: the default placement
    (lambda tensor, location: tensor.cuda(0) if location == "cpu" else None, "cuda:1",
     "cuda:0"),
], ids=["cpu", "device", "cuda", "dict", "dict-cpu", "callable", "callable-none",
        "callable-by-location"])
def test_load_map_location_as_torch(cuda, tmp_path, map_location, model, host):
    state = cn.load(saved_on_cuda(tmp_path), map_location=map_location)
    assert str(state["model"]["weight"].device) == model
    assert str(state["host"].device) == host
    assert state["host"].tolist() == [0, 1, 2]


def test_loading_a_gpu_save_without_cuda_names_map_location(cuda, monkeypatch, tmp_path):
    path = saved_on_cuda(tmp_path)
    uses_cuda(monkeypatch, 0)
    with pytest.raises(RuntimeError, match="is_available.. is False.*map_location='cpu'"):
        cn.load(path)
    state = cn.load(path, map_location="cpu")
    assert state["model"]["weight"].shape == (2, 3)
    uses_cuda(monkeypatch, 1)
    with pytest.raises(RuntimeError, match="CUDA device 1 but .*device_count.. is 1.*"
                                           "map_location"):
        cn.load(path)
    assert cn.load(path, map_location={"cuda:1": "cuda:0"})["model"]["bias"].is_cuda


def test_load_refuses_bad_map_locations_and_device_tags(cuda, tmp_path):
    path = saved_on_cuda(tmp_path)
    with pytest.raises(TypeError, match="map_location must be"):
        cn.load(path, map_location=3)
    with pytest.raises(TypeError, match="map_location as a dict"):
        cn.load(path, map_location={"cuda:1": 0})
    with pytest.raises(TypeError, match=r"map_location\('cuda:1'\) returned a str"):
        cn.load(path, map_location=lambda tensor, location: "cpu")
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda device type"):
        cn.load(path, map_location="gpu")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["structure.json"] = members["structure.json"].replace(b'"cuda:1"', b'"tpu:1"')
    hostile = tmp_path / "hostile.npz"
    with zipfile.ZipFile(hostile, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(LoadError, match="__tensor_on__.*'cuda:N'"):
        cn.load(hostile)


def test_optimizer_state_follows_its_parameters_device(cuda):
    net = cnn.Linear(2, 1)
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(cn.ones(1, 2)).sum().backward()
    opt.step()
    state = opt.state_dict()
    net.cuda()
    moved = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    moved.load_state_dict(state)
    buffers = [s["momentum_buffer"] for s in moved.state.values()]
    assert buffers and all(b.is_cuda for b in buffers)
    net(cn.ones(1, 2, device="cuda")).sum().backward()
    moved.step()  # the momentum buffer and the gradient on one device


# ------------------------------------------------------------------------- training, the CLI


def tiny_data(n=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 1, 2, 2)).astype(np.float32)
    y = (X.reshape(n, -1).sum(axis=1) > 0).astype(np.int64)
    return TensorDataset(cn.tensor(X), cn.tensor(y))


def train_tiny(device):
    cn.manual_seed(0)
    net = cnn.Sequential(cnn.Flatten(), cnn.Linear(4, 8), cnn.ReLU(), cnn.Linear(8, 2))
    data = tiny_data()
    history = fit(net, DataLoader(data, batch_size=16, shuffle=True),
                  DataLoader(data, batch_size=32), 2, 0.5, progress=False, log=None,
                  device=device)
    return net, history


def test_fit_on_a_device_matches_the_cpu(cuda):
    cpu_net, cpu_history = train_tiny(None)
    net, history = train_tiny("cuda:1")
    assert all(p.device == cn.device("cuda:1") for p in net.parameters())
    assert history.summary().endswith("examples/sec on cuda:1")
    assert cpu_history.summary().endswith("examples/sec on cpu")
    for ours, theirs in zip(history.epochs, cpu_history.epochs, strict=True):
        assert ours.train_acc == theirs.train_acc and ours.test_acc == theirs.test_acc
        assert ours.train_loss == pytest.approx(theirs.train_loss, rel=1e-5)
    for p, q in zip(net.parameters(), cpu_net.parameters(), strict=True):
        np.testing.assert_allclose(numpy_of(p), numpy_of(q), rtol=1e-5, atol=1e-6)


def test_fit_checkpoint_from_a_device_resumes(cuda, tmp_path):
    checkpoint = tmp_path / "c.npz"
    cn.manual_seed(0)
    net = cnn.Sequential(cnn.Flatten(), cnn.Linear(4, 2))
    data = DataLoader(tiny_data(), batch_size=16)
    fit(net, data, data, 1, 0.1, progress=False, log=None, checkpoint=checkpoint, device="cuda")
    again = cnn.Sequential(cnn.Flatten(), cnn.Linear(4, 2))
    history = fit(again, data, data, 2, 0.1, progress=False, log=None, checkpoint=checkpoint,
                  resume=True, device="cuda")
    assert len(history.epochs) == 2 and again[1].weight.is_cuda


def run_cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), CORRNET_NO_DOWNLOAD="1")
    env.pop(devices.STANDIN_VARIABLE, None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "corrnet", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize(("device", "standin", "message"), [
    ("cuda", "0", "--device cuda: .*no CUDA backend"),
    ("cuda:2", "2", "--device cuda:2: .*invalid device ordinal"),
    ("tpu", "0", "--device tpu: .*Expected one of cpu, cuda"),
])
def test_cli_train_refuses_a_device_it_cannot_use(tmp_path, device, standin, message):
    if standin == "0" and devices.library() == "cupy":
        pytest.skip("a real GPU is here")
    result = run_cli("train", "lenet", "--device", device, "--out", str(tmp_path / "run"),
                     env_extra={devices.STANDIN_VARIABLE: standin})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("corrnet train: error: ")
    assert __import__("re").search(message, result.stderr), result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_train_lenet_on_the_device(cuda, tmp_path, monkeypatch, capsys):
    """``corrnet train lenet --device cuda:1`` on a few fake Fashion-MNIST images: the run
    says where it trains, its summary ends on the device, and its checkpoint (saved from the
    device) loads on the CPU and resumes on the device."""
    from fake_fashion_mnist import make

    from corrnet import cli, models

    files = make(tmp_path, monkeypatch)
    argv = ["train", "lenet", "--epochs", "1", "--limit", "32", "--batch-size", "16",
            "--data-root", str(files), "--out", str(tmp_path / "run"), "--no-progress",
            "--no-plot", "--device", "cuda:1"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert ", on cuda:1; checkpoints in" in out and out.rstrip().endswith("examples/sec on cuda:1")
    net, info = models.from_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert info.epoch == 1 and not next(net.parameters()).is_cuda
    assert cli.main(argv[:3] + ["2"] + argv[4:] + ["--resume"]) == 0
    assert "resuming from" in capsys.readouterr().out


# ------------------------------------------------------------------------------ d2l, the book


def test_d2l_gpu_helpers_find_the_devices(cuda):
    assert d2l.num_gpus() == 2 and d2l.try_gpu() == cn.device("cuda:0")
    assert d2l.try_gpu(1) == cn.device("cuda", 1) and d2l.try_gpu(2) == cn.device("cpu")
    assert d2l.try_all_gpus() == [cn.device("cuda:0"), cn.device("cuda:1")]
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1)
    assert trainer.gpus == [cn.device("cuda:0")]


# ------------------------------------------------------------------------- make test-gpu


def test_the_switch_puts_corrnet_inputs_on_the_test_device():
    """The one switch point of ``make test-gpu``: on the CPU run (the default) everything is
    on the CPU; under ``CORRNET_TEST_DEVICE=cuda`` corrnet's inputs are on CUDA."""
    from oracle.helpers import check_functional

    x, t = both(np.ones((2, 3), np.float32))
    assert str(x.device).split(":")[0] == torch_compare.TEST_DEVICE.split(":")[0]
    assert t.device.type == torch_compare.TORCH_DEVICE.split(":")[0]
    result = check_functional("relu", np.array([[-1.0, 2.0]]))
    assert result.corrnet_outputs[0].is_cuda == torch_compare.on_cuda()


@pytest.mark.skipif(torch_compare.on_cuda(), reason="this is the CPU run's check of the subset")
def test_gpu_suite_subset_on_the_standin():
    """``make test-gpu`` in CI-size form: a fixed subset of the oracle suite with corrnet's
    tensors on the stand-in device (``tests/gpu_suite.py --subset``), in a subprocess."""
    env = dict(os.environ, CORRNET_ORACLE="0.25")
    env.pop(devices.STANDIN_VARIABLE, None)
    result = subprocess.run([sys.executable, "tests/gpu_suite.py", "--subset", "-x",
                             "-p", "no:cacheprovider"], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    first = result.stdout.splitlines()[0]
    if "STAND-IN" not in first:
        assert first.startswith("make test-gpu: corrnet on the GPU through CuPy")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# ------------------------------------------------------------------ make bench-gpu, gpu_check


def test_bench_gpu_refuses_to_run_without_a_gpu():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop(devices.STANDIN_VARIABLE, None)
    if devices.library() == "cupy":
        pytest.skip("a real GPU is here")
    result = subprocess.run([sys.executable, "benchmarks/gpu.py"], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 2
    assert "no CUDA GPU through CuPy here" in result.stderr and "--standin" in result.stderr


def test_bench_gpu_standin_smoke_run(tmp_path):
    """``benchmarks/gpu.py --standin`` end to end on its smallest section: says its numbers
    mean nothing, measures PyTorch, and writes the markdown section."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = tmp_path / "gpu.md"
    result = subprocess.run([sys.executable, "benchmarks/gpu.py", "--standin", "--only",
                             "pooling", "--out", str(out)], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("STAND-IN RUN") and "mean NOTHING" in result.stdout
    markdown = out.read_text()
    assert markdown.startswith("## GPU: corrnet through CuPy against PyTorch CUDA")
    assert "**Stand-in run: the numbers below mean nothing**" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| max ")
            or line.startswith("| avg ")]
    assert len(rows) == 6 and all(" ms |" in row for row in rows)  # PyTorch's times


def test_gpu_check_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", "benchmarks/gpu_check.sh"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--bogus"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown argument --bogus" in result.stderr
