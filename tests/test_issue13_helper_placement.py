"""Issue 13, robust threads: corrnet's helper threads are kept off the core of the thread that
hands them work (kernels/threads.py, `helper_pool`), so that a kernel split between the caller
and a helper runs on two cores even where the scheduler would wake the helper on the caller's.

Each case runs in a fresh interpreter (the pool and the main thread's affinity are process
state). The main thread is pinned to one core, then to another; each piece records the core it
ran on, and the helper's affinity is read back.
"""

import json
import os
import subprocess
import sys

import pytest

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

CHILD = """
import ctypes, json, os, sys, threading
import numpy as np
import corrnet
from corrnet.kernels import threads

where = sys.argv[1]
if where == "one-core":
    os.sched_setaffinity(0, {int(sys.argv[2])})      # before the helpers start: they inherit it
corrnet.set_num_threads(2)
getcpu = ctypes.CDLL(None).sched_getcpu
cores_seen = []

def kernel(source, target):        # a piece: where it ran, then its work
    cores_seen.append((threading.get_native_id(), getcpu()))
    np.sqrt(source, out=target)

source = np.arange(2 * threads.MIN_PARALLEL_SIZE, dtype=np.float64).reshape(64, -1)
target = np.empty_like(source)
for _ in range(3):                                  # the helper starts and notes its cores
    threads.split_run(kernel, source, target)
runs = []
for core in [int(c) for c in sys.argv[2:]]:
    os.sched_setaffinity(0, {core})                 # the calling (main) thread only
    cores_seen.clear()
    threads.split_run(kernel, source, target)
    main = threading.get_native_id()
    pool = threads.helper_pool()
    runs.append({"core": core,
                 "helper_cores": [c for tid, c in cores_seen if tid != main],
                 "main_cores": [c for tid, c in cores_seen if tid == main],
                 "helper_affinity": {str(tid): sorted(os.sched_getaffinity(tid))
                                     for tid in pool.cores},
                 "correct": bool(np.array_equal(target, np.sqrt(source)))})
print(json.dumps(runs))
"""


def child(*arguments: str) -> list:
    result = subprocess.run([sys.executable, "-c", CHILD, *arguments], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(len(CORES) < 2, reason="needs two cores this process may run on")
def test_the_helper_runs_off_the_calling_threads_core():
    first, second = CORES[0], CORES[1]
    runs = child("all", str(first), str(second), str(first))
    for run in runs:
        assert run["correct"]
        assert run["main_cores"] == [run["core"]]
        # the helper took its piece, on another core, and may run anywhere else
        assert run["helper_cores"] and run["core"] not in run["helper_cores"]
        assert list(run["helper_affinity"].values()) == [
            [core for core in CORES if core != run["core"]]]


@pytest.mark.skipif(not CORES, reason="needs sched_getaffinity (Linux)")
def test_a_helper_that_may_use_one_core_keeps_it():
    only = CORES[0]
    runs = child("one-core", str(only))
    assert runs[0]["correct"]
    assert list(runs[0]["helper_affinity"].values()) == [[only]]
    assert set(runs[0]["helper_cores"]) <= {only}
