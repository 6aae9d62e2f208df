"""Issue 13, item 4: under load, corrnet's kernels and NumPy's BLAS use fewer threads.

`threads.active()` is `get_num_threads()` less the cores other processes kept busy (from
/proc/stat, less this process's own CPU time); where it takes cores away, OpenBLAS gets as many
threads fewer through threadpoolctl, and its own count back when the load is gone. The
simulated tests feed the readings; one test runs a real spinning process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

import corrnet
from corrnet.kernels import threads
from corrnet.nn import functional as F


def _openblas_threads() -> list[int]:
    return [lib.num_threads for lib in ThreadpoolController().select(
        internal_api="openblas").lib_controllers]


class FakeMachine:
    """Readings of /proc/stat (busy ticks of our cores), our CPU seconds and the clock."""

    def __init__(self, monkeypatch, cores=2):
        self.now, self.busy, self.own = 1000.0, 0, 0.0
        monkeypatch.setattr(threads, "_busy_ticks", lambda: self.busy)
        monkeypatch.setattr(threads, "_own_seconds", lambda: self.own)
        monkeypatch.setattr(threads.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(threads, "_cores", lambda: cores)
        monkeypatch.setattr(threads, "_threads", cores)
        monkeypatch.setattr(threads, "_load", threads._Load())

    def run(self, seconds, own_cores, other_cores):
        """`seconds` pass, with this process busy on own_cores and others on other_cores."""
        self.now += seconds
        self.own += seconds * own_cores
        self.busy += round(seconds * (own_cores + other_cores) * threads._TICK)


@pytest.fixture
def machine(monkeypatch):
    fake = FakeMachine(monkeypatch)
    yield fake
    threads._set_taken(0)      # BLAS's own count back, whatever the test left


def test_issue13_idle_machine_keeps_every_thread(machine):
    assert threads.active() == 2            # the first look only records
    machine.run(0.5, own_cores=2, other_cores=0)
    assert threads.active() == 2
    machine.run(0.5, own_cores=1.9, other_cores=0.1)   # a little noise: no core taken
    assert threads.active() == 2


def test_issue13_a_busy_core_is_taken_from_corrnet_and_blas_and_given_back(machine):
    before = _openblas_threads()
    threads.active()
    machine.run(0.5, own_cores=1, other_cores=1)
    assert threads.active() == 1
    assert all(count == 1 for count in _openblas_threads())
    machine.run(0.1, own_cores=1, other_cores=1)      # within LOAD_INTERVAL: no new look
    assert threads.active() == 1
    machine.run(0.5, own_cores=2, other_cores=0)
    assert threads.active() == 2
    assert _openblas_threads() == before


def test_issue13_never_fewer_than_one_thread(machine):
    threads.active()
    machine.run(0.5, own_cores=0, other_cores=2)
    assert threads.active() == 1


def test_issue13_without_proc_stat_the_count_stays(monkeypatch, machine):
    monkeypatch.setattr(threads, "_busy_ticks", lambda: None)
    for _ in range(3):
        machine.run(0.5, own_cores=0, other_cores=2)
        assert threads.active() == 2


def test_issue13_results_are_the_same_under_load(machine):
    rng = np.random.default_rng(0)
    x = corrnet.tensor(rng.standard_normal((8, 6, 14, 14), dtype=np.float32))
    w = corrnet.tensor(rng.standard_normal((16, 6, 5, 5), dtype=np.float32))
    threads.active()
    idle = F.conv2d(x, w).numpy()
    machine.run(0.5, own_cores=1, other_cores=1)
    assert threads.active() == 1
    np.testing.assert_allclose(F.conv2d(x, w).numpy(), idle, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not os.path.exists("/proc/stat") or not hasattr(os, "sched_getaffinity"),
                    reason="reads /proc/stat (Linux)")
def test_issue13_a_real_spinning_process_is_seen(monkeypatch):
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores")
    monkeypatch.setattr(threads, "_load", threads._Load())
    spinner = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, "
                                f"{{{cores[-1]}}})\nwhile True:\n    pass\n"])
    try:
        time.sleep(0.3)
        threads.active()
        time.sleep(1.0)
        assert threads.active() <= threads.get_num_threads() - 1
    finally:
        spinner.kill()
        spinner.wait()
        threads._set_taken(0)


def _kernels_numpy_blas():
    """NumPy's BLAS as the compiled kernels' blocks hold it (skips where they do not)."""
    from corrnet.kernels import blas

    library = blas.controller()
    if library is None:
        pytest.skip("NumPy's BLAS has no 64-bit CBLAS interface here: kernels use SciPy's")
    library.set_num_threads(2)
    if library.num_threads != 2:
        pytest.skip("NumPy's BLAS runs on one thread here")
    return library


def test_issue13_load_that_comes_during_a_kernels_block_outlasts_the_block(machine):
    """The kernels' blocks hold NumPy's BLAS at one thread; a busy core seen meanwhile must
    limit the count the block gives back, and its end give the full count back. (Before: the
    limit kept the block's one thread as the count to give back, and the block's end undid
    the limit: NumPy's BLAS on two threads under load, then one for good after it.)"""
    library = _kernels_numpy_blas()
    threads.active()
    with threads.numba_blas_on_one_thread():
        assert library.num_threads == 1
        machine.run(0.5, own_cores=1, other_cores=1)
        assert threads.active() == 1
        assert library.num_threads == 1
    assert library.num_threads == 1           # the load's limit, past the block
    machine.run(0.5, own_cores=2, other_cores=0)
    assert threads.active() == 2
    assert library.num_threads == 2


def test_issue13_load_that_leaves_during_a_kernels_block(machine):
    library = _kernels_numpy_blas()
    threads.active()
    machine.run(0.5, own_cores=1, other_cores=1)
    assert threads.active() == 1 and library.num_threads == 1
    with threads.numba_blas_on_one_thread():
        machine.run(0.5, own_cores=2, other_cores=0)
        assert threads.active() == 2
        assert library.num_threads == 1
    assert library.num_threads == 2

