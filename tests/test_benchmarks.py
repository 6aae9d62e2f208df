"""benchmarks/run.py: its smoke mode runs every row type, and the Targets and BENCHMARKS.md
are built from the rows it measured.

No timing is asserted (a CI runner's timings mean nothing): only the structure — a row for
every case, positive finite values and ratios, targets that follow from the rows, and a
markdown file (in a tmp_path, never the real BENCHMARKS.md) with every section. OpenCV is
optional: without it, its column is n/a.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pytest

RUN_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _load_benchmarks():
    spec = importlib.util.spec_from_file_location("corrnet_benchmarks_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


bench = _load_benchmarks()


@pytest.fixture(scope="module")
def smoke_rows():
    return bench.run_suite(bench.SMOKE, print_rows=False)


def _rows(rows, section, passes=None):
    return [row for row in rows if row.section == section
            and (passes is None or row.passes == passes)]


def _positive_finite(number) -> bool:
    return isinstance(number, float) and math.isfinite(number) and number > 0


# -- the smoke suite mirrors the full one ---------------------------------------------------

def test_smoke_suite_has_every_case_of_the_full_suite():
    assert [spec.label for spec in bench.SMOKE.layers] == [spec.label
                                                            for spec in bench.FULL.layers]
    for smoke, full in zip(bench.SMOKE.layers, bench.FULL.layers, strict=True):
        assert (smoke.stride > 1) == (full.stride > 1)
        assert (smoke.groups == smoke.c_in) == (full.groups == full.c_in)  # depthwise
    assert [(p.kind, p.kernel, p.stride, p.padding) for p in bench.SMOKE.pools] == [
        (p.kind, p.kernel, p.stride, p.padding) for p in bench.FULL.pools]
    assert bench.SMOKE.memory_layer.label == bench.FULL.memory_layer.label == "(g)"
    assert bench.SMOKE.timing.repeats == 1
    assert len(bench.FULL.filters) == 12


# -- the smoke run's rows -------------------------------------------------------------------

def test_smoke_run_has_a_row_for_every_case(smoke_rows):
    assert {row.section for row in smoke_rows} == set(bench.SECTIONS)
    for passes in ("fwd", "fwd+bwd"):
        assert [row.key for row in _rows(smoke_rows, "layers", passes)] == [
            spec.label for spec in bench.SMOKE.layers]
        assert len(_rows(smoke_rows, "pooling", passes)) == len(bench.SMOKE.pools)
    assert len(_rows(smoke_rows, "filtering")) == len(bench.SMOKE.filters)
    assert len(_rows(smoke_rows, "memory")) == 1
    assert [row.key for row in _rows(smoke_rows, "import")] == ["import", "first-step"]
    assert [row.key for row in _rows(smoke_rows, "lenet")] == ["train", "inference", "loop"]
    assert [row.key for row in _rows(smoke_rows, "resnet")] == ["resnet"]
    assert [row.key for row in _rows(smoke_rows, "load")] == ["load"]
    assert [row.key for row in _rows(smoke_rows, "overhead")] == ["overhead"]


def test_smoke_rows_have_positive_finite_values_and_ratios(smoke_rows):
    opencv_missing = bench.cv2 is None
    for row in smoke_rows:
        assert row.values["corrnet"] is not None, (row.title, row.notes)
        for name, value in row.values.items():
            if name == "opencv" and opencv_missing:
                assert value is None and row.notes[name] == "not installed"
            elif row.section == "memory":
                # a tiny layer's call may reuse the pages its warm-up call freed: growth 0
                assert value is not None and math.isfinite(value) and value >= 0, (row, name)
            elif row.key == "first-step":
                # a first step minus a warm one: tiny, and may be below 0 by noise
                assert value is not None and math.isfinite(value), (row, name)
            else:
                assert _positive_finite(value), (row.title, name, value, row.notes)
        for name, ratio in row.ratios.items():
            if name.startswith("opencv") and opencv_missing:
                assert ratio is None
            elif row.section == "memory":  # None where torch's growth was 0
                assert ratio is None or (math.isfinite(ratio) and ratio >= 0), (row, ratio)
            elif row.key == "first-step":  # no ratios: two differences
                raise AssertionError(f"unexpected ratio {name} on {row.title}")
            else:
                assert _positive_finite(ratio), (row.title, name, ratio)
        assert row.line().startswith(row.title)


def test_ratios_are_contender_over_corrnet(smoke_rows):
    (filtering,) = _rows(smoke_rows, "filtering")
    assert set(filtering.ratios) == {"torch / corrnet", "ndimage / corrnet",
                                     "fftconvolve / corrnet", "opencv / corrnet"}
    torch_ratio = filtering.values["torch"] / filtering.values["corrnet"]
    assert filtering.ratios["torch / corrnet"] == pytest.approx(torch_ratio)
    (memory,) = _rows(smoke_rows, "memory")
    assert memory.ratios["corrnet / torch"] == pytest.approx(
        memory.values["corrnet"] / memory.values["torch"])


# -- Targets --------------------------------------------------------------------------------

def test_targets_are_computed_from_the_rows(smoke_rows):
    targets = {target.goal: target for target in bench.compute_targets(smoke_rows)}
    assert len(targets) == 15
    for target in targets.values():
        assert target.status in ("met", "missed", "n/a")
        if target.value is not None and "corrnet failed" not in target.where:
            assert target.status == ("met" if bench.COMPARISONS[target.comparison](
                target.value, target.threshold) else "missed")

    def find(words):
        (goal,) = [goal for goal in targets if words in goal]
        return targets[goal]

    layer_rows = _rows(smoke_rows, "layers")
    both_ratios = [row.ratios["torch / corrnet"] for row in _rows(smoke_rows, "layers",
                                                                    "fwd+bwd")]
    geometric_mean = math.exp(statistics.fmean(math.log(r) for r in both_ratios))
    assert find("geometric mean").value == pytest.approx(geometric_mean)
    assert find("layer suite, lowest").value == min(row.ratios["torch / corrnet"]
                                                    for row in layer_rows)
    assert find("pooling").value == min(row.ratios["torch / corrnet"]
                                        for row in _rows(smoke_rows, "pooling"))
    assert find("lowest ndimage").value == min(row.ratios["ndimage / corrnet"]
                                               for row in _rows(smoke_rows, "filtering"))
    (memory,) = _rows(smoke_rows, "memory")
    assert find("peak memory").value == memory.ratios["corrnet / torch"]
    imports, first_step = _rows(smoke_rows, "import")
    assert find("import corrnet").value == imports.values["corrnet"]
    assert find("first LeNet step").value == first_step.values["corrnet"]
    lenet = {row.key: row for row in _rows(smoke_rows, "lenet")}
    assert find("training loop").value == lenet["loop"].ratios["torch / corrnet"]
    assert find("LeNet inference").value == lenet["inference"].ratios["torch / corrnet"]
    (resnet,) = _rows(smoke_rows, "resnet")
    assert find("ResNet-18").value == resnet.ratios["torch / corrnet"]
    (overhead,) = _rows(smoke_rows, "overhead")
    assert find("per-batch overhead").value == pytest.approx(
        overhead.values["corrnet"] / overhead.values["corrnet step"])
    (load,) = _rows(smoke_rows, "load")
    assert find("under load").value == pytest.approx(
        load.values["corrnet"] / load.values["corrnet idle"])
    if bench.cv2 is None:
        assert find("opencv").status == "n/a"


def _corrnet_failed(row):
    return dataclasses.replace(row, values={**row.values, "corrnet": None},
                               ratios={name: None for name in row.ratios},
                               notes={"corrnet": "failed: MemoryError: too big"})


def _pooling_target(rows):
    (target,) = [t for t in bench.compute_targets(rows) if t.goal.startswith("pooling")]
    return target


def test_a_row_where_corrnet_failed_misses_its_target(smoke_rows):
    all_failed = [_corrnet_failed(row) if row.section == "pooling" else row
                  for row in smoke_rows]
    target = _pooling_target(all_failed)
    assert target.status == "missed" and target.value is None
    assert "corrnet failed" in target.where

    first_pooling = _rows(smoke_rows, "pooling")[0]
    one_failed = [_corrnet_failed(row) if row is first_pooling else row for row in smoke_rows]
    target = _pooling_target(one_failed)
    assert target.status == "missed" and "corrnet failed" in target.where
    assert target.value == min(row.ratios["torch / corrnet"]
                               for row in _rows(smoke_rows, "pooling")[1:])


# -- timing ---------------------------------------------------------------------------------

def test_time_candidates_counts_samples_and_survives_a_failing_candidate():
    calls = {"corrnet": 0}

    def corrnet_call():
        calls["corrnet"] += 1

    def failing_call():
        raise MemoryError("Unable to allocate 59.2 GiB")

    timing = bench.Timing(repeats=7, budget_s=10.0, settle_s=0.0)
    seconds, samples, notes = bench.time_candidates(
        {"corrnet": corrnet_call, "torch": failing_call, "opencv": None}, timing)
    assert samples == {"corrnet": 7, "torch": 0, "opencv": 0}
    assert calls["corrnet"] == 2 + 7  # the two warm-up calls, then the samples
    assert _positive_finite(seconds["corrnet"])
    assert seconds["torch"] is None and notes["torch"].startswith("failed: MemoryError")
    assert seconds["opencv"] is None and notes["opencv"] == "not installed"


def test_each_turn_in_a_round_starts_with_untimed_calls_for_settle_s():
    """A candidate's samples in a round follow settle_s of its own calls (so that the other
    library's spinning threads are asleep); a call slower than settle_s is not repeated: a
    pause of settle_s comes before its samples instead."""
    calls = []

    def candidate(name, seconds):
        def call():
            calls.append((name, time.perf_counter()))
            time.sleep(seconds)
        return call

    # (margins wide enough for a busy machine: a 1 ms call stays well under settle_s)
    timing = bench.Timing(repeats=10, budget_s=10.0, rounds=5, settle_s=0.05)
    _, samples, _ = bench.time_candidates(
        {"corrnet": candidate("corrnet", 0.001), "torch": candidate("torch", 0.001),
         "slow": candidate("slow", 0.1)}, timing)
    assert samples == {"corrnet": 10, "torch": 10, "slow": 10}
    turns = []      # (name, the start times of its calls) of each turn
    for name, at in calls[6:]:                          # after the two warm-up calls each
        if turns and turns[-1][0] == name:
            turns[-1][1].append(at)
        else:
            turns.append((name, [at]))
    assert [name for name, _ in turns] == ["corrnet", "torch", "slow"] * 5
    for index, (name, times) in enumerate(turns):
        if name == "slow":
            assert len(times) == 2                      # its two samples, no untimed call,
            assert times[0] - turns[index - 1][1][-1] >= 0.05   # after a pause of settle_s
        else:
            assert len(times) > 2                       # untimed calls, then two samples
            assert times[-2] - times[0] >= 0.05         # the samples begin after settle_s


def test_a_slow_call_is_its_own_single_sample():
    calls = []
    timing = bench.Timing(repeats=20, budget_s=3.0, slow_call_s=0.0)  # every call is "slow"
    seconds, samples, _ = bench.time_candidates({"corrnet": lambda: calls.append(1)}, timing)
    assert samples == {"corrnet": 1} and len(calls) == 2    # the second warm-up call
    assert bench._split(7, 5) == [2, 2, 1, 1, 1]


def test_a_slow_first_call_is_not_the_sample():
    """A first call that compiles (numba's cache empty) takes seconds; the sample is the
    second, warm call."""
    durations = iter([0.3, 0.01] + [0.01] * 100)
    timing = bench.Timing(repeats=3, budget_s=0.1, slow_call_s=0.2, settle_s=0.0)
    seconds, samples, _ = bench.time_candidates(
        {"corrnet": lambda: time.sleep(next(durations))}, timing)
    assert samples["corrnet"] == 3 and seconds["corrnet"] < 0.1


# -- the corrnet algorithm of a conv layer row ----------------------------------------------

def test_algorithm_note_is_empty_without_a_planner(monkeypatch):
    monkeypatch.setitem(sys.modules, "corrnet.kernels.plan", None)  # import raises ImportError
    assert bench._algorithm_note(bench.FULL.layers[2], backward=True) == ""


def test_algorithm_note_names_the_planner_choice(monkeypatch):
    def describe(x_shape, weight_shape, window, groups=1, dtype=np.float32):
        assert x_shape == (8, 64, 56, 56) and weight_shape == (64, 64, 3, 3)
        assert (window.out_height, window.out_width) == (56, 56) and groups == 1
        return {"forward": "winograd", "grad_input": "winograd", "grad_weight": "gemm"}

    monkeypatch.setitem(sys.modules, "corrnet.kernels.plan",
                        type(sys)("corrnet.kernels.plan"))
    monkeypatch.setattr(sys.modules["corrnet.kernels.plan"], "describe", describe,
                        raising=False)
    spec = bench.FULL.layers[2]  # (c): 8x64x56x56, 3x3 pad 1
    assert bench._algorithm_note(spec) == "winograd"
    assert bench._algorithm_note(spec, backward=True) == (
        "forward winograd, grad_input winograd, grad_weight gemm")


# -- the contenders compute the same filter -------------------------------------------------

def test_filter_contenders_agree_on_the_valid_region():
    spec = bench.SMOKE.filters[0]
    results = {name: call() for name, call in bench.filter_case(spec).items() if call}
    border = spec.kernel // 2  # same-size outputs: the valid region lies inside this border
    valid = {
        "corrnet": results["corrnet"].numpy(),
        "torch": results["torch"].numpy()[0, 0],
        "ndimage": results["ndimage"][border:-border, border:-border],
        "fftconvolve": results["fftconvolve"],
    }
    if "opencv" in results:
        valid["opencv"] = results["opencv"][border:-border, border:-border]
    for name, array in valid.items():
        np.testing.assert_allclose(array, valid["corrnet"], rtol=1e-4, atol=1e-4,
                                   err_msg=name)


# -- BENCHMARKS.md --------------------------------------------------------------------------

def test_markdown_has_targets_and_every_section(smoke_rows, tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    bench.write_markdown(smoke_rows, bench.compute_targets(smoke_rows), path, bench.SMOKE)
    text = path.read_text()
    headings = ["## Targets"] + [f"## {section.heading}" for section in bench.SECTIONS.values()]
    assert all(heading in text for heading in headings)
    assert [line for line in text.splitlines() if line.startswith("## ")] == headings
    assert "AVX2" in text and "AVX-512" in text and "PyTorch" in text
    for row in smoke_rows:
        assert f"| {row.title} |" in text


def test_steal_share_of_the_run_from_proc_stat(monkeypatch, tmp_path):
    """The header reports the hypervisor's steal over the run: the steal ticks' share of all
    ticks between two readings of /proc/stat's first line (its 8th number is steal)."""
    stat = tmp_path / "stat"
    real_path = bench.Path

    def fake_path(name):
        return stat if name == "/proc/stat" else real_path(name)

    monkeypatch.setattr(bench, "Path", fake_path)
    stat.write_text("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n")
    before = bench._cpu_ticks()
    assert before == (1000, 35)
    stat.write_text("cpu  400 0 150 1200 10 0 5 235 0 0\n")
    after = bench._cpu_ticks()
    assert after == (2000, 235)
    assert bench._steal(before, after).startswith("20.0% of the cores' time")
    stat.unlink()
    assert bench._cpu_ticks() is None
    assert bench._steal(None, after).startswith("not known")
    monkeypatch.setattr(bench, "Path", real_path)
    path = tmp_path / "BENCHMARKS.md"
    row = bench.filter_row(bench.SMOKE.filters[0], bench.SMOKE.timing)
    bench.write_markdown([row], bench.compute_targets([row]), path, bench.SMOKE,
                         bench._steal(before, after))
    assert "- hypervisor steal during the run: 20.0% of the cores' time" in path.read_text()


def test_without_opencv_its_column_and_target_say_n_a(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "cv2", None)
    row = bench.filter_row(bench.SMOKE.filters[0], bench.SMOKE.timing)
    assert row.values["opencv"] is None and row.ratios["opencv / corrnet"] is None
    targets = bench.compute_targets([row])
    (opencv,) = [target for target in targets if "opencv" in target.goal]
    assert opencv.status == "n/a"
    path = tmp_path / "BENCHMARKS.md"
    bench.write_markdown([row], targets, path, bench.SMOKE)
    assert "OpenCV wasn't installed" in path.read_text()


def test_only_the_full_mode_writes_benchmarks_md(smoke_rows, monkeypatch, tmp_path, capsys):
    suites = []
    monkeypatch.setattr(bench, "run_suite", lambda suite: suites.append(suite) or smoke_rows)
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    for flag in ("--smoke", "--quick"):
        assert bench.main([flag]) == 0
        assert not (tmp_path / "BENCHMARKS.md").exists()
    assert bench.main([]) == 0
    assert [suite.name for suite in suites] == ["smoke", "quick", "full"]
    assert "## Targets" in (tmp_path / "BENCHMARKS.md").read_text()
    assert not list(tmp_path.glob("*.tmp"))
    assert "Targets:" in capsys.readouterr().out


def test_a_full_run_keeps_the_sections_other_scripts_wrote(smoke_rows, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "run_suite", lambda suite: smoke_rows)
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    kept = f"{bench.KEPT_MARKER}\n\n## Scale-out on Dask and MPI\n\n| a | b |\n|---|---|\n"
    (tmp_path / "BENCHMARKS.md").write_text("# Benchmarks\n\nold rows\n\n" + kept)
    assert bench.main([]) == 0
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "old rows" not in text and "## Targets" in text
    assert text.endswith(kept) and text.count(bench.KEPT_MARKER) == 1
