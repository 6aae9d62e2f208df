"""Waiting by spinning: the compiled loops of corrnet's helper pool (threads.py, `_Helpers`).

A thread that sleeps until another one wakes it (a lock, a queue, an event) wakes late on the
VMs measured: 20-50 microseconds after the call that wakes it. A kernel split between the
calling thread and a helper met that twice per call: the helper woke late for its piece, and
the caller woke late when the piece was done. PyTorch's OpenMP threads wait for their next
region by spinning for a while. So corrnet's threads do too, in these loops, which run
compiled with the GIL released (a spin in Python would hold the GIL the other thread needs):

    changed = wait_for_change(counter, seen, cycle_limit)
        # spin until counter[0] != seen (True), or for cycle_limit time-stamp cycles (False)
    found = finish_then_wait(done, posted, seen, gated_post, gate, cycle_limit)
        # a helper: done[0] = 1 (its job's end, seen by the thread spinning on it), then
        # wait_for_change(posted, ...), then, if the new post is the gated one (its number
        # is gated_post[0]), until gate[0] != 0 (see threads.run_shared)

Every wait has a limit, `threads.SPIN_SECONDS` or `threads.WAIT_SPIN_SECONDS` in cycles of the
time-stamp counter (`cycles_per_second` measures its rate once): after it the thread sleeps
on the pool's queue or the job's lock, as before. A job's end is written here, after its
helper released the GIL (`finish_then_wait`), so that the caller, spinning on it, finds the
GIL free as it returns to Python instead of sleeping until the helper lets go of it.

    >>> import numpy as np
    >>> counter = np.zeros(1, np.int64)
    >>> wait_for_change(counter, 0, 1000)    # nothing changes it: False after 1000 cycles
    False
    >>> wait_for_change(counter, 5, 1000)    # already changed
    True
"""

from __future__ import annotations

import time

from . import simd
from .jit import inline, jit

# a waiting loop reads its counter once every this many pause instructions
PAUSES_PER_READ = 8


@inline()
def _spin_until_changed(counter, seen, cycle_limit):
    start = simd.cycles()
    while simd.read_atomic(counter) == seen:
        if simd.cycles() - start >= cycle_limit:
            return False
        for _ in range(PAUSES_PER_READ):
            simd.spin_pause()
    return True


@jit()
def wait_for_change(counter, seen, cycle_limit):
    """Spin until counter[0] != seen (True), for at most cycle_limit cycles (False)."""
    return _spin_until_changed(counter, seen, cycle_limit)


@jit()
def finish_then_wait(done, posted, seen, gated_post, gate, cycle_limit):
    """done[0] = 1, then spin until posted[0] != seen (True), for at most cycle_limit cycles
    (False); where the new post is number gated_post[0], then also until gate[0] != 0, for
    at most cycle_limit cycles more."""
    simd.write_atomic(done, 1)
    if not _spin_until_changed(posted, seen, cycle_limit):
        return False
    # the job posted last waits for its caller to open the gate (its first take of the counter)
    start = simd.cycles()
    while simd.read_atomic(gated_post) == simd.read_atomic(posted) and simd.read_atomic(gate) == 0:
        if simd.cycles() - start >= cycle_limit:
            break
        for _ in range(PAUSES_PER_READ):
            simd.spin_pause()
    return True


@jit()
def _cycles_now():
    return simd.cycles()


def cycles_per_second(interval: float = 0.005) -> float:
    """The time-stamp counter's rate, measured over `interval` seconds of sleep (0 on a CPU
    whose counter does not count: then nothing spins)."""
    first_cycles, first_time = _cycles_now(), time.perf_counter()
    time.sleep(interval)
    cycles, seconds = _cycles_now() - first_cycles, time.perf_counter() - first_time
    return max(0.0, cycles / seconds)
