"""Issue 13, item 2: the planner's per-machine calibration (kernels/calibration.py, `corrnet
tune`): the file's key and place, its round trip and atomic write, damaged and foreign files
ignored with a warning, `choose`'s order (forced, autotune, the file's winner, the rules), the
autotune winners kept across processes, and the CLI.

Every test works in its own CORRNET_CACHE_DIR (tmp_path); conftest.py points the whole test
run at a temporary folder as well, so nothing here touches the user's cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import corrnet
from corrnet import cli
from corrnet.kernels import calibration, jit, plan
from corrnet.kernels.windows import make_window

from torch_compare import assert_grad, assert_same

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A fresh calibration folder, and a planner that has read nothing yet."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CORRNET_CACHE_DIR", str(folder))
    monkeypatch.setattr(calibration, "_write_failed", False)
    calibration.forget_loaded()
    plan.forget_choices()
    yield folder
    calibration.forget_loaded()
    plan.forget_choices()


# LeNet's second layer, small: the rules pick the compiled direct engine for its forward (or
# im2col + GEMM without numba); the FFT and im2col + GEMM support it too
X_SHAPE, W_SHAPE = (2, 6, 14, 14), (16, 6, 5, 5)
WINDOW = make_window("conv2d", 14, 14, (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1))


def _key(pass_name="forward", x_shape=X_SHAPE, w_shape=W_SHAPE, window=WINDOW, groups=1):
    return calibration.entry_key(pass_name, x_shape, w_shape, window, groups, np.float32,
                                 jit.enabled(), plan.settings.memory_budget)


def _with_winners(winners: dict[str, str], machine=None) -> Path:
    data = calibration.empty(machine)
    data["winners"] = {key: {"algorithm": name, "source": "test"} for key, name in winners.items()}
    file = calibration.write(data, calibration.path())
    calibration.forget_loaded()
    plan.forget_choices()
    return file


def _other_than_rules(pass_name="forward") -> str:
    """An algorithm that supports the pass but is not the rules' pick."""
    ruled = plan.rule_choice(pass_name, X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
    able = plan.candidates(pass_name, X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
    return next(name for name in ("fft", "gemm") if name in able and name != ruled)


# -- the key and where the file lives ----------------------------------------------------------


def test_issue13_tune_machine_key_names_the_cpu_its_simd_cores_and_versions():
    key = calibration.machine_key()
    assert set(key) == {"cpu", "simd", "cores", "corrnet", "numpy", "numba"}
    assert isinstance(key["cpu"], str) and key["cpu"]
    assert set(key["simd"]) <= {"avx2", "avx512f"} and key["simd"] == sorted(key["simd"])
    assert isinstance(key["cores"], int) and key["cores"] >= 1
    assert key["corrnet"] == corrnet.__version__
    assert key["numpy"] == np.__version__
    if importlib.util.find_spec("numba") is not None:
        import numba

        assert key["numba"] == numba.__version__
    if Path("/proc/cpuinfo").exists():
        text = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                     if line.startswith("model name"))
        assert key["cpu"] == model
        flags = next(line.split(":", 1)[1].split() for line in text.splitlines()
                     if line.startswith("flags"))
        assert ("avx512f" in key["simd"]) == ("avx512f" in flags)
        assert ("avx2" in key["simd"]) == ("avx2" in flags)


def test_issue13_tune_file_place_follows_the_environment(cache, tmp_path, monkeypatch):
    key = calibration.machine_key()
    assert calibration.path().parent == cache
    assert calibration.path().name.startswith("calibration-")
    assert calibration.path().suffix == ".json"
    # another machine (or another numpy) has another file
    assert calibration.path({**key, "numpy": "0.0"}) != calibration.path(key)
    monkeypatch.delenv("CORRNET_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert calibration.path().parent == tmp_path / "xdg" / "corrnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert calibration.path().parent == tmp_path / "home" / ".cache" / "corrnet"


def test_issue13_tune_entry_key_is_what_choose_looks_up():
    """A winner stored under entry_key(...) of a pass is what choose returns for that pass,
    even where the rules pick another algorithm; other passes and shapes keep the rules'."""
    other = _other_than_rules("forward")
    _with_winners({_key("forward"): other})
    assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == other
    assert plan.describe(X_SHAPE, W_SHAPE, WINDOW)["forward"] == other
    for pass_name in ("grad_input", "grad_weight"):
        assert plan.choose(pass_name, X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == \
            plan.rule_choice(pass_name, X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
    bigger = (4, *X_SHAPE[1:])
    assert plan.choose("forward", bigger, W_SHAPE, WINDOW, 1, np.float32) == \
        plan.rule_choice("forward", bigger, W_SHAPE, WINDOW, 1, np.float32)


def test_issue13_tune_calibrated_winner_gives_torchs_values():
    """A conv2d whose passes all run on the file's winners (not the rules') still computes
    PyTorch's output and gradients."""
    _with_winners({_key(p): _other_than_rules(p) for p in plan.PASSES})
    rng = np.random.default_rng(3)
    x = rng.standard_normal(X_SHAPE).astype(np.float32)
    w = rng.standard_normal(W_SHAPE).astype(np.float32)
    cx, cw = (corrnet.tensor(a, requires_grad=True) for a in (x, w))
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    out = corrnet.nn.functional.conv2d(cx, cw)
    expected = torch.nn.functional.conv2d(tx, tw)
    assert_same(out, expected, "conv2d forward on calibrated winners")
    grad = rng.standard_normal(expected.shape).astype(np.float32)
    out.backward(corrnet.tensor(grad))
    expected.backward(torch.tensor(grad))
    assert_grad(cx.grad, tx.grad, "grad_input")
    assert_grad(cw.grad, tw.grad, "grad_weight")


def test_issue13_tune_winner_that_no_longer_applies_is_passed_over():
    """A stored algorithm that does not support the pass (Winograd for a 5x5 kernel, a name
    from another version) or does not fit the memory budget: the rules decide."""
    ruled = plan.rule_choice("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
    for stored in ("winograd", "no-such-algorithm"):
        _with_winners({_key("forward"): stored})
        assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == ruled
    _with_winners({_key("forward"): "fft"})
    previous = plan.settings.memory_budget
    try:
        plan.settings.memory_budget = 64   # the file's key has the default budget: no match
        assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) != "fft"
    finally:
        plan.settings.memory_budget = previous


def test_issue13_tune_order_forced_then_autotune_then_file_then_rules(monkeypatch):
    other = _other_than_rules("forward")
    _with_winners({_key("forward"): other})
    with plan.forcing("gemm"):
        assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == "gemm"
    # autotuning takes the saved winner without timing anything
    monkeypatch.setattr(plan.settings, "benchmark", True)
    monkeypatch.setattr(plan, "_fastest", lambda names, trial: pytest.fail("timed again"))
    assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32,
                       trial=lambda name: None) == other
    monkeypatch.setattr(plan.settings, "benchmark", False)
    assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == other
    plan.settings.calibration = False
    try:
        assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == \
            plan.rule_choice("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
        assert calibration.rates() is None
    finally:
        plan.settings.calibration = True
    assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == other
    with pytest.raises(ValueError, match="calibration"):
        plan.settings.calibration = "yes"


# -- the file: round trip, atomic write, damaged and foreign files ---------------------------


def test_issue13_tune_round_trip():
    data = calibration.empty()
    data["rates"] = {"sgemm_gflops": {"128": 50.0}, "bandwidth_gbs": 10.0, "numba_gflops": None}
    data["winners"] = {_key("forward"): {"algorithm": "fft", "seconds": {"fft": 1e-3}}}
    file = calibration.write(data)
    assert file == calibration.path()
    assert calibration.read() == data
    assert calibration.rates() == data["rates"]
    assert calibration.winner(_key("forward")) == "fft"
    assert calibration.winner(_key("grad_input")) is None


def test_issue13_tune_write_is_atomic(cache, monkeypatch):
    """A write that fails half way leaves the previous file whole and no temporary file."""
    first = calibration.empty()
    first["winners"] = {_key(): {"algorithm": "gemm"}}
    file = calibration.write(first)
    before = file.read_bytes()
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)),
                                                     real_replace(a, b))[1])

    def broken_dump(obj, out, **kwargs):
        out.write('{"format": "corrnet-calib')
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", broken_dump)
    second = calibration.empty()
    second["winners"] = {_key(): {"algorithm": "fft"}}
    with pytest.raises(OSError, match="disk full"):
        calibration.write(second)
    assert file.read_bytes() == before
    assert [p.name for p in cache.iterdir()] == [file.name]
    assert replaced == []
    monkeypatch.undo()
    monkeypatch.setenv("CORRNET_CACHE_DIR", str(cache))
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)),
                                                     real_replace(a, b))[1])
    calibration.write(second)
    assert len(replaced) == 1 and Path(replaced[0][1]) == file
    assert Path(replaced[0][0]).parent == cache            # the same folder: one rename
    assert calibration.read()["winners"][_key()]["algorithm"] == "fft"
    assert [p.name for p in cache.iterdir()] == [file.name]


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]",
                                     b'{"format": "corrnet-calibration", "winners": [1]}',
                                     b'{"format": "corrnet-calibration", "version": 1, '
                                     b'"winners": {"k": {"algorithm": 3}}}',
                                     b"[" * 100000])
def test_issue13_tune_damaged_file_is_ignored_with_one_warning(cache, content):
    cache.mkdir(parents=True)
    calibration.path().write_bytes(content)
    with pytest.warns(calibration.CalibrationWarning, match="damaged") as caught:
        ruled = plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert ruled == plan.rule_choice("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # read once per process: no second warning
        plan.describe((3, *X_SHAPE[1:]), W_SHAPE, WINDOW)
    # saving a winner replaces the damaged file with a good one
    with pytest.warns(calibration.CalibrationWarning):
        calibration.remember({_key(): {"algorithm": "gemm", "source": "test"}})
    assert calibration.read()["winners"][_key()]["algorithm"] == "gemm"


def test_issue13_tune_foreign_file_is_ignored(cache):
    """A well-formed calibration of another machine (or other versions) at this machine's
    path: ignored with a warning, its winners unused."""
    foreign = {**calibration.machine_key(), "cpu": "Some Other CPU", "numba": "0.1"}
    file = _with_winners({_key("forward"): _other_than_rules("forward")}, machine=foreign)
    file.rename(calibration.path())
    with pytest.warns(calibration.CalibrationWarning, match="another machine") as caught:
        assert plan.choose("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32) == \
            plan.rule_choice("forward", X_SHAPE, W_SHAPE, WINDOW, 1, np.float32)
    assert len(caught) == 1
    data = json.loads(calibration.path().read_text())
    data["machine"] = calibration.machine_key()
    data["version"] = 999   # a later format
    calibration.path().write_text(json.dumps(data))
    calibration.forget_loaded()
    with pytest.warns(calibration.CalibrationWarning, match="another machine"):
        assert calibration.read() is None


def test_issue13_tune_unwritable_folder_warns_once_and_keeps_the_winners(cache, tmp_path,
                                                                         monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CORRNET_CACHE_DIR", str(blocker / "corrnet"))
    calibration.forget_loaded()
    with pytest.warns(calibration.CalibrationWarning, match="not saved"):
        assert calibration.remember({_key(): {"algorithm": "fft"}}) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert calibration.remember({_key("grad_input"): {"algorithm": "gemm"}}) is None
    assert calibration.winner(_key()) == "fft"
    assert calibration.winner(_key("grad_input")) == "gemm"


def test_issue13_tune_remember_merges_with_the_file():
    """Another process's winners, written since this one read the file, are kept."""
    calibration.remember({_key("forward"): {"algorithm": "fft"}})
    data = calibration.read()
    data["winners"][_key("grad_weight")] = {"algorithm": "gemm", "source": "elsewhere"}
    calibration.write(data)
    calibration.remember({_key("grad_input"): {"algorithm": "gemm"}})
    assert set(calibration.read()["winners"]) == {_key(p) for p in plan.PASSES}


# -- autotune winners across processes ----------------------------------------------------------


_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import corrnet
    from corrnet.kernels import plan
    corrnet.backends.conv.benchmark = True
    timed = []
    real_fastest = plan._fastest
    plan._fastest = lambda names, trial: timed.append(names) or real_fastest(names, trial)
    rng = np.random.default_rng(0)
    x = corrnet.tensor(rng.standard_normal((2, 6, 14, 14)).astype(np.float32),
                       requires_grad=True)
    w = corrnet.tensor(rng.standard_normal((16, 6, 5, 5)).astype(np.float32),
                       requires_grad=True)
    corrnet.nn.functional.conv2d(x, w).sum().backward()
    print(json.dumps({"timed": len(timed), "chosen": sorted(plan._autotuned.values()),
                      "keys": len(plan._autotuned)}))
""")


def _process(cache) -> dict:
    env = {**os.environ, "CORRNET_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _PROCESS], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_issue13_tune_autotune_winners_persist_across_processes(cache):
    first = _process(cache)
    assert first["timed"] == first["keys"] == 3        # forward, grad_input, grad_weight
    data = calibration.read()
    assert len(data["winners"]) == 3
    assert {e["source"] for e in data["winners"].values()} == {"autotune"}
    # a second process times nothing and takes the same winners
    second = _process(cache)
    assert second["timed"] == 0 and second["chosen"] == first["chosen"]
    # it takes them from the file: changed there, changed in the next process
    for key in data["winners"]:
        data["winners"][key]["algorithm"] = "gemm"
    calibration.write(data)
    third = _process(cache)
    assert third["timed"] == 0 and third["chosen"] == ["gemm"] * 3


# -- corrnet tune --------------------------------------------------------------------------------


def test_issue13_tune_cli_quick_writes_the_file(cache):
    env = {**os.environ, "CORRNET_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "corrnet.cli", "tune", "--quick"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    files = list(cache.glob("calibration-*.json"))
    assert files == [calibration.path()]
    assert str(files[0]) in done.stdout
    data = calibration.read()
    rates = data["rates"]
    assert all(value > 0 for value in rates["sgemm_gflops"].values())
    assert rates["bandwidth_gbs"] > 0
    assert (rates["numba_gflops"] is not None) == jit.enabled()
    assert len(data["winners"]) == 3 * len(calibration.QUICK_LAYERS)
    for entry in data["winners"].values():
        assert entry["source"] == "tune"
        assert entry["algorithm"] in plan.ALGORITHMS
        timed = {n: t for n, t in entry["seconds"].items() if t is not None}
        if timed:
            assert entry["algorithm"] == min(timed, key=timed.get)
    assert "default/tuned" in done.stdout
    assert "defaults within 20% of the tuned choice on" in done.stdout
    # this process now takes the file's winners
    layer = calibration.QUICK_LAYERS[1]
    x_shape, w_shape, window = calibration._shapes(layer)
    key = calibration.entry_key("grad_weight", x_shape, w_shape, window, layer.groups,
                                np.float32, jit.enabled(), plan.settings.memory_budget)
    assert plan.choose("grad_weight", x_shape, w_shape, window, layer.groups, np.float32) == \
        data["winners"][key]["algorithm"]


def test_issue13_tune_cli_show_compare_forget(cache, capsys):
    assert cli.main(["tune", "--compare"]) == 1
    assert "run `corrnet tune` first" in capsys.readouterr().out
    assert cli.main(["tune", "--show"]) == 0
    assert "no calibration for this machine" in capsys.readouterr().out
    layer = calibration.QUICK_LAYERS[1]
    x_shape, w_shape, window = calibration._shapes(layer)
    winners = {}
    for pass_name in plan.PASSES:
        ruled = plan.rule_choice(pass_name, x_shape, w_shape, window, 1, np.float32)
        key = calibration.entry_key(pass_name, x_shape, w_shape, window, 1, np.float32,
                                    jit.enabled(), plan.settings.memory_budget)
        assert ruled != "fft"
        winners[key] = {"algorithm": "fft", "source": "tune", "layer": layer.label,
                        "seconds": {"gemm": 2.0, "fft": 1.0, ruled: 1.5}}
    calibration.remember(winners, {"sgemm_gflops": {"128": 1.0}, "bandwidth_gbs": 2.0,
                                   "numba_gflops": None})
    assert cli.main(["tune", "--show"]) == 0
    shown = capsys.readouterr().out
    assert str(calibration.path()) in shown and "3 from tune" in shown
    assert cli.main(["tune", "--compare", "--quick"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith(layer.label)]
    assert len(rows) == 4                              # three passes and fwd+bwd
    assert all(line.rstrip().endswith("1.50x") for line in rows)
    assert "on 0 of 4" in table and "worst 1.50x" in table
    assert cli.main(["tune", "--forget"]) == 0
    assert "deleted" in capsys.readouterr().out
    assert not calibration.path().exists()


def test_issue13_tune_layers_are_the_benchmarks_rows():
    """calibration.BENCHMARK_ROWS are benchmarks/run.py's conv rows (a)-(h), so that the
    comparison `corrnet tune` prints is about the benchmark's layers."""
    spec = importlib.util.spec_from_file_location("corrnet_benchmarks_run_tune",
                                                  ROOT / "benchmarks" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    theirs = [(s.label, s.n, s.c_in, s.c_out, s.size, s.kernel, s.stride, s.padding, s.groups)
              for s in bench.FULL.layers]
    assert [tuple(layer) for layer in calibration.BENCHMARK_ROWS] == theirs


def test_issue13_tune_python_api_writes_and_uses_the_file(monkeypatch):
    """corrnet.backends.conv.tune(): the same measurement as `corrnet tune`, used by this
    process at once (choices remembered before it are forgotten)."""
    layer = calibration.Layer("tiny", 2, 6, 16, 14, 5)
    monkeypatch.setattr(calibration, "QUICK_LAYERS", (layer,))
    x_shape, w_shape, window = calibration._shapes(layer)
    before = plan.choose("forward", x_shape, w_shape, window, 1, np.float32)
    assert before == plan.rule_choice("forward", x_shape, w_shape, window, 1, np.float32)
    file = corrnet.backends.conv.tune(quick=True, verbose=False)
    assert file == calibration.path() and file.exists()
    data = calibration.read()
    assert len(data["winners"]) == 3 and data["rates"]["statistic"] in ("median", "min")
    for pass_name in plan.PASSES:
        key = calibration.entry_key(pass_name, x_shape, w_shape, window, 1, np.float32,
                                    jit.enabled(), plan.settings.memory_budget)
        assert plan.choose(pass_name, x_shape, w_shape, window, 1, np.float32) == \
            data["winners"][key]["algorithm"]
