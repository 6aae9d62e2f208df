"""corrnet's kernels called from several Python threads at once (issue 11, items 1 and 8).

A race in a compiled kernel can take the whole process down (numba's workqueue threading
layer, which Winograd's transforms once ran on, aborted with "Concurrent access" when two
threads entered a parallel region at once), so each scenario runs in a subprocess: this
file run as a script, ``python test_threads_safety.py SCENARIO``. A scenario computes every
kernel family once on the main thread (the expected values), then again from several threads
at once, and checks that every result equals the expected one to float32 rounding (a race's
lost or doubled term is orders above it). Not bit for bit: the products that compiled kernels
hand to NumPy's OpenBLAS run on its two threads when called from another thread than the one
that set its count to one (threads.numba_blas_on_one_thread), and OpenBLAS's AVX2 kernels
round a product cut in two otherwise (an AMD EPYC: Winograd's outputs 1e-6 apart, relative to
the largest; Intel's AVX-512 kernels gave the same bits).

The families cover every compiled kernel that runs on more than one thread (each on pieces of
its work, on the calling thread and corrnet's helper threads): Winograd's transforms (forward
and gradients), the direct and depthwise engines, im2col/col2im with the batch innermost,
max and average pooling, and sigmoid, each with its backward pass where it has one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import corrnet
from corrnet.kernels import jit
from corrnet.kernels import threads as kernel_threads
from corrnet.kernels.plan import describe
from corrnet.kernels.windows import make_window

# (name, input shape, weight shape, padding, groups, the algorithms the planner picks)
CONVOLUTIONS = [
    ("winograd", (2, 64, 16, 16), (64, 64, 3, 3), 1, 1, ("winograd", "winograd", "winograd")),
    ("direct", (2, 3, 32, 32), (8, 3, 3, 3), 1, 1, ("direct", "direct", "direct")),
    # (depthwise convolution: the planner takes `direct`, the same compiled engine)
    ("depthwise", (2, 32, 32, 32), (32, 1, 3, 3), 1, 32, ("direct", "direct", "direct")),
    ("lanes", (2, 6, 14, 14), (16, 6, 5, 5), 0, 1, ("lanes", "lanes", "lanes")),
    ("unrolled", (2, 16, 12, 12), (16, 16, 5, 5), 0, 1, ("lanes", "unrolled", "lanes")),
    ("im2col", (16, 64, 7, 7), (64, 64, 3, 3), 1, 1, ("gemm", "gemm", "gemm")),
    ("taps", (32, 64, 6, 6), (64, 64, 3, 3), 1, 1, ("taps", "taps", "taps")),
]


def _conv_family(x_shape, weight_shape, padding, groups):
    rng = np.random.default_rng(0)
    x_data = rng.standard_normal(x_shape, dtype=np.float32)
    w_data = rng.standard_normal(weight_shape, dtype=np.float32)

    def run():
        x = corrnet.tensor(x_data, requires_grad=True)
        w = corrnet.tensor(w_data, requires_grad=True)
        out = corrnet.nn.functional.conv2d(x, w, padding=padding, groups=groups)
        (out * out).sum().backward()
        return [out.detach().numpy(), x.grad.numpy(), w.grad.numpy()]

    return run


def _pool_family():
    x_data = np.random.default_rng(1).standard_normal((8, 32, 32, 32), dtype=np.float32)
    functional = corrnet.nn.functional

    def run():
        x = corrnet.tensor(x_data, requires_grad=True)
        biggest = functional.max_pool2d(x, 3, stride=1, padding=1)
        mean = functional.avg_pool2d(x, 2)
        ((biggest * biggest).sum() + (mean * mean).sum()).backward()
        return [biggest.detach().numpy(), mean.detach().numpy(), x.grad.numpy()]

    return run


def _sigmoid_family():
    x_data = np.random.default_rng(2).standard_normal((4, 1 << 16), dtype=np.float32)

    def run():
        x = corrnet.tensor(x_data, requires_grad=True)
        out = corrnet.sigmoid(x)
        (out * out).sum().backward()
        return [out.detach().numpy(), x.grad.numpy()]

    return run


def families() -> dict:
    """{name: a function computing that family's results afresh}."""
    found = {name: _conv_family(x_shape, weight_shape, padding, groups)
             for name, x_shape, weight_shape, padding, groups, _ in CONVOLUTIONS}
    found["pooling"] = _pool_family()
    found["sigmoid"] = _sigmoid_family()
    return found


def _in_threads(tasks) -> None:
    """Run each task on its own thread, the last on the calling one; re-raise the first error."""
    errors = []

    def guarded(task):
        try:
            task()
        except BaseException as error:  # reported by the calling thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(task,)) for task in tasks[:-1]]
    for thread in threads:
        thread.start()
    guarded(tasks[-1])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _assert_same_to_rounding(got, want) -> None:
    """got == want to float32 rounding of want's largest value (see the module docstring)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5,
                               atol=1e-6 * float(np.abs(want).max(initial=0)))


def _repeating(run, expected, rounds):
    def task():
        for _ in range(rounds):
            for got, want in zip(run(), expected, strict=True):
                _assert_same_to_rounding(got, want)
    return task


def _scenario(name: str) -> None:
    """Run one scenario (see `SCENARIOS`) in this process."""
    # Another process's load (a parallel test run) would take a core from corrnet, and a
    # thread from OpenBLAS with it, which changes the rounding of im2col's weight gradient
    # (its products' sums split another way): the results are compared to rounding, but the
    # load is kept out of it all the same, so that the scenario runs as on an idle machine.
    kernel_threads.TAKEN_BUSY = float("inf")
    runs = families()
    expected = {family: run() for family, run in runs.items()}
    if name == "issue_repro":          # the issue's repro: two threads, 50 3x3 convolutions
        x, w = corrnet.randn(1, 64, 32, 32), corrnet.randn(64, 64, 3, 3)

        def convolve():
            for _ in range(50):
                corrnet.nn.functional.conv2d(x, w, padding=1)

        _in_threads([convolve, convolve])
    elif name == "same_family":        # two threads (three: and the main one) per family
        for family, run in runs.items():
            _in_threads([_repeating(run, expected[family], 4)] * 3)
    elif name == "all_families":       # every family on a thread of its own, all at once
        _in_threads([_repeating(run, expected[family], 4) for family, run in runs.items()])
    elif name == "set_num_threads":    # the count changed over and over while others compute
        done = threading.Event()

        def change_count():
            count = 0
            while not done.is_set():
                corrnet.set_num_threads(1 + count % 3)
                count += 1

        changer = threading.Thread(target=change_count)
        changer.start()
        try:
            _in_threads([_repeating(run, expected[family], 6) for family, run in runs.items()])
        finally:
            done.set()
            changer.join()
    else:
        raise ValueError(f"unknown scenario {name!r}")
    print("scenario passed:", name)


SCENARIOS = ["issue_repro", "same_family", "all_families", "set_num_threads"]


def _run_scenario(name: str, compiled: bool) -> subprocess.CompletedProcess:
    source_root = str(Path(corrnet.__file__).resolve().parents[1])
    env = {**os.environ, "CORRNET_NUMBA": "1" if compiled else "0",
           "PYTHONPATH": os.pathsep.join([source_root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, __file__, name], env=env, capture_output=True,
                          text=True, timeout=600)


def _check(result: subprocess.CompletedProcess, name: str) -> None:
    assert result.returncode == 0, (
        f"scenario {name} ended with exit status {result.returncode}\n"
        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}")
    assert f"scenario passed: {name}" in result.stdout


def test_families_take_the_intended_algorithms():
    """The convolution families run on the algorithms they are meant to exercise."""
    if not jit.enabled():
        pytest.skip("the planner picks other algorithms without numba")
    for name, x_shape, weight_shape, padding, groups, picks in CONVOLUTIONS:
        window = make_window("conv2d", *x_shape[2:], weight_shape[2:], (1, 1),
                             ((padding, padding),) * 2, (1, 1))
        chosen = describe(x_shape, weight_shape, window, groups)
        assert tuple(chosen.values()) == picks, (name, chosen)


@pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("scenario", SCENARIOS[:3])
def test_issue11_concurrent_compiled_kernels_do_not_abort(scenario):
    """Item 1: compiled kernels called from several threads at once (the main one among
    them) neither abort the process nor disturb each other's results."""
    _check(_run_scenario(scenario, compiled=True), scenario)


@pytest.mark.parametrize("compiled", [True, False] if jit.AVAILABLE else [False])
def test_issue11_set_num_threads_while_others_compute(compiled):
    """Item 8: changing the thread count over and over while every kernel family runs on
    other threads raises nothing ('cannot schedule new futures after shutdown') and changes
    no result."""
    _check(_run_scenario("set_num_threads", compiled), "set_num_threads")


def test_set_num_threads_rejects_bad_counts():
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match="count must be a positive int"):
            corrnet.set_num_threads(bad)


def test_compiled_pieces_follow_corrnet_thread_count():
    """A kernel cut into pieces (`threads.run_pieces`, Winograd's transforms) runs one piece
    per thread corrnet may use now, from any thread: all on the calling thread after
    set_num_threads(1), on two (or on one, while other processes keep a core busy) with
    two."""
    from corrnet.kernels import threads, winograd
    before = corrnet.get_num_threads()
    seen = []

    def kernel(out, first, end):        # records which thread ran which jobs
        seen.append((threading.get_ident(), first, end))
        out[first:end] = np.arange(first, end)

    def cut(jobs: int):
        seen.clear()
        out = np.zeros(jobs)
        threads.run_pieces(kernel, jobs, threads.MIN_PARALLEL_SIZE, out)
        assert np.array_equal(out, np.arange(jobs))       # every job once
        return sorted(seen, key=lambda piece: piece[1])

    try:
        corrnet.set_num_threads(1)
        caller = []
        thread = threading.Thread(target=lambda: caller.append((threading.get_ident(),
                                                                cut(10))))
        thread.start()
        thread.join()
        ident, pieces = caller[0]
        assert pieces == [(ident, 0, 10)]
        # Winograd's transforms from a new thread: the same results as on the main thread (to
        # rounding: its products run on OpenBLAS's two threads there, see the docstring)
        x = np.random.default_rng(3).standard_normal((2, 64, 16, 16)).astype(np.float32)
        w = np.random.default_rng(4).standard_normal((64, 64, 3, 3)).astype(np.float32)
        expected = winograd.correlate(x, w, None, ((1, 1), (1, 1)))
        corrnet.set_num_threads(2)
        got = []
        thread = threading.Thread(
            target=lambda: got.append(winograd.correlate(x, w, None, ((1, 1), (1, 1)))))
        thread.start()
        thread.join()
        _assert_same_to_rounding(got[0], expected)
        pieces = cut(10)
        assert len(pieces) in (1, 2)          # two, unless `active()` saw a core taken
        assert [(first, end) for _, first, end in pieces] == (
            [(0, 10)] if len(pieces) == 1 else [(0, 5), (5, 10)])
        assert pieces[0][0] == threading.get_ident()     # the first piece on the caller
    finally:
        corrnet.set_num_threads(before)


if __name__ == "__main__":
    _scenario(sys.argv[1])
