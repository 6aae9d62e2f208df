"""Issue 13, hand-offs: corrnet's helper pool (kernels/threads.py, `_Helpers`), whose threads
wait for their next job, and whose callers wait for a job's end, spinning for a while in the
compiled loops of kernels/waiting.py before they sleep; `run_shared` hands its jobs out
through the pool's gate. Checked here: the loops and their intrinsics, results and errors
through the pool, concurrent callers (each job taken once, the gate held by one at a time),
the limits (an idle pool burns no CPU), a forked child, a replaced pool, and the pool
without the compiled kernels."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import corrnet
from corrnet.kernels import jit, simd, threads

COMPILED = pytest.mark.skipif(not jit.AVAILABLE, reason="needs numba")


@pytest.fixture
def spinning_pool():
    """A pool of one helper (two threads in all), with its spin limits measured."""
    previous = corrnet.get_num_threads()
    corrnet.set_num_threads(2)
    pool = threads.helper_pool()
    deadline = time.monotonic() + 60            # (numba's cache may be empty: compiling)
    while not threads._spin.helper_cycles and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads._spin.helper_cycles > 0, "the helpers never started spinning"
    yield pool
    corrnet.set_num_threads(previous)


@COMPILED
def test_issue13_waiting_intrinsics_read_write_and_count():
    """read_atomic / write_atomic on element 0 and nothing else; cycles counts up; spin_pause
    runs (x86's pause, or nothing)."""
    numba = jit.load_numba()

    @numba.njit(nogil=True)
    def exercise(counter, value):
        before = simd.read_atomic(counter)
        simd.write_atomic(counter, value)
        simd.spin_pause()
        start = simd.cycles()
        for _ in range(1000):
            simd.spin_pause()
        return before, simd.read_atomic(counter), simd.cycles() - start

    counter = np.array([7, 99], np.int64)
    before, after, elapsed = exercise(counter, 42)
    assert (before, after) == (7, 42)
    assert counter.tolist() == [42, 99]
    assert elapsed > 0


@COMPILED
def test_issue13_waiting_loops_spin_to_their_limit_or_the_change():
    from corrnet.kernels import waiting

    rate = waiting.cycles_per_second()
    assert rate > 1e6                      # a counter of at least 1 MHz (x86: GHz)
    counter = np.zeros(1, np.int64)
    start = time.perf_counter()
    assert waiting.wait_for_change(counter, 0, int(0.02 * rate)) is False
    assert 0.015 < time.perf_counter() - start < 1.0
    assert waiting.wait_for_change(counter, 5, int(10 * rate)) is True    # already changed

    # another thread changes it after 20 ms: seen within the (10 s) limit, soon after
    writer = threading.Timer(0.02, lambda: counter.__setitem__(0, 3))
    start = time.perf_counter()
    writer.start()
    assert waiting.wait_for_change(counter, 0, int(10 * rate)) is True
    assert time.perf_counter() - start < 2.0
    writer.join()


@COMPILED
def test_issue13_waiting_for_a_gated_job():
    """finish_then_wait: a new post that is not the gated one ends the wait at once; the gated
    one waits for the gate, within the limit; the job's end is written first."""
    from corrnet.kernels import waiting

    rate = waiting.cycles_per_second()
    posted, gated_post, gate, done = (np.zeros(1, np.int64) for _ in range(4))
    posted[0], gated_post[0] = 3, 2
    assert waiting.finish_then_wait(done, posted, 2, gated_post, gate, int(10 * rate)) is True
    done[0] = 0

    gated_post[0] = 3           # post 3 is gated, and its gate opens after 30 ms
    opener = threading.Timer(0.03, lambda: gate.__setitem__(0, 1))
    start = time.perf_counter()
    opener.start()
    assert waiting.finish_then_wait(done, posted, 2, gated_post, gate, int(10 * rate)) is True
    assert 0.02 < time.perf_counter() - start < 2.0
    assert done[0] == 1
    opener.join()

    gate[0] = 0                 # a gate that never opens: the limit still ends the wait
    start = time.perf_counter()
    assert waiting.finish_then_wait(done, posted, 2, gated_post, gate, int(0.02 * rate)) is True
    assert time.perf_counter() - start < 1.0
    # nothing posted: False at the limit
    assert waiting.finish_then_wait(done, posted, 3, gated_post, gate, int(0.01 * rate)) is False


@COMPILED
def test_issue13_waiting_pool_results_errors_and_concurrent_callers(spinning_pool):
    pool = spinning_pool
    assert pool.submit(lambda a, b: a * b, 6, 7).result() == 42

    def fails():
        raise KeyError("a helper's error")

    with pytest.raises(KeyError, match="a helper's error"):
        pool.submit(fails).result()

    # several Python threads hand out jobs at once; each gets its own results
    results = {}

    def caller(number):
        jobs = [pool.submit(lambda i=i: (number, i * i)) for i in range(300)]
        results[number] = [job.result() for job in jobs]

    callers = [threading.Thread(target=caller, args=(number,)) for number in range(3)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    for number in range(3):
        assert results[number] == [(number, i * i) for i in range(300)]


@COMPILED
def test_issue13_run_shared_each_job_once_with_concurrent_callers(spinning_pool):
    """Two Python threads run run_shared at once, again and again: one holds the pool's gate,
    the other its own counter; every job of each run is taken exactly once."""
    numba = jit.load_numba()

    @numba.njit(nogil=True)
    def mark(taken, counter):
        while True:
            job = simd.take_next(counter)
            if job >= taken.size:
                return
            taken[job] += 1

    mark(np.zeros(1, np.int64), np.zeros(1, np.int64))      # compiled before the race
    failures = []

    def caller():
        for size in range(1, 400, 7):
            taken = np.zeros(size, np.int64)
            threads.run_shared(2, mark, taken)
            if not (taken == 1).all():
                failures.append(taken.tolist())

    callers = [threading.Thread(target=caller) for _ in range(2)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert failures == []
    assert spinning_pool.gate_lock.acquire(blocking=False)     # let go after the runs
    spinning_pool.gate_lock.release()


@COMPILED
def test_issue13_run_shared_lets_the_gate_go_after_an_error(spinning_pool):
    """The calling thread's piece raises: run_shared waits for the helper's piece, raises the
    error, and lets the gate go; the next run is whole."""
    main = threading.get_ident()
    helper_done = []

    def kernel(taken, counter):
        if threading.get_ident() == main:
            raise ValueError("the caller's piece failed")
        time.sleep(0.05)
        helper_done.append(True)

    with pytest.raises(ValueError, match="the caller's piece failed"):
        threads.run_shared(2, kernel, np.zeros(4, np.int64))
    assert helper_done == [True]
    assert threads.helper_pool().gate_lock.acquire(blocking=False)
    threads.helper_pool().gate_lock.release()
    assert threads.helper_pool().gated_post[0] == 0


@COMPILED
def test_issue13_an_idle_pool_sleeps(spinning_pool):
    """After a job, the helper spins for SPIN_SECONDS, then sleeps: half a second of an idle
    pool costs far less than half a second of CPU."""
    spinning_pool.submit(lambda: None).result()
    start = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - start < 0.15


FORKED = """
import multiprocessing, numpy as np, corrnet
from corrnet.kernels import threads
corrnet.set_num_threads(2)

def halve(source, target):
    np.multiply(source, 0.5, out=target)

def run():
    source = np.arange(4 * threads.MIN_PARALLEL_SIZE, dtype=np.float64).reshape(64, -1)
    target = np.empty_like(source)
    threads.split_run(halve, source, target)
    return bool((target == source * 0.5).all())

assert run()                                 # the parent's helpers started
child = multiprocessing.get_context("fork").Process(target=lambda: exit(0 if run() else 3))
child.start()
child.join(60)
print("child", child.exitcode)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork: Linux")
def test_issue13_a_forked_child_starts_its_own_helpers():
    result = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["child", "0"]


def test_issue13_a_replaced_pool_lets_its_threads_go():
    """A pool dropped by set_num_threads: its helpers exit, also when they were still
    spinning after a job as the pool went (they then find the stop in the queue as they
    look for a next job), five times over."""
    previous = corrnet.get_num_threads()

    def alive():
        return {thread.native_id for thread in threading.enumerate()}

    try:
        for _ in range(5):
            corrnet.set_num_threads(3)
            pool = threads.helper_pool()
            deadline = time.monotonic() + 60     # (numba's cache may be empty: compiling)
            while (jit.AVAILABLE and not threads._spin.helper_cycles
                   and time.monotonic() < deadline):
                time.sleep(0.01)                  # the helpers spin after a job (with numba)
            deadline = time.monotonic() + 10
            while len(pool.cores) < 2 and time.monotonic() < deadline:    # both started
                time.sleep(0.01)
            helpers = set(pool.cores)
            assert len(helpers) == 2 and helpers <= alive()
            jobs = [pool.submit(time.sleep, 0.01) for _ in range(2)]      # both busy
            for job in jobs:
                job.result()
            del pool, jobs
            corrnet.set_num_threads(2)            # the pool of 2 helpers is dropped
            assert threads.helper_pool().submit(lambda: 5).result() == 5
            while helpers & alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not helpers & alive()
    finally:
        corrnet.set_num_threads(previous)


NO_NUMBA = """
import time, numpy as np, corrnet
from corrnet.kernels import threads
corrnet.set_num_threads(2)
pool = threads.helper_pool()
time.sleep(0.3)
print(pool.submit(lambda: 6 * 7).result(), threads._spin.helper_cycles, threads._spin.waits)
"""


def test_issue13_without_compiled_kernels_nothing_spins():
    env = {**__import__("os").environ, "CORRNET_NUMBA": "0"}
    result = subprocess.run([sys.executable, "-c", NO_NUMBA], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "0", "None"]
