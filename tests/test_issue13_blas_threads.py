"""Issue 13, robust threads: OpenBLAS's idle helper threads sleep soon after a product instead
of polling for 0.1 s beside corrnet's kernels (kernels/threads.py, `quiet_blas_threads`).

Each case runs in a fresh interpreter, since the setting is made at import, and reads two
things: the timeout each loaded OpenBLAS reports, and the CPU time the process burns while its
main thread sleeps right after a product that OpenBLAS split over two threads. A user's own
OPENBLAS_THREAD_TIMEOUT=28 (OpenBLAS's default) is the control: it is left alone, and its
threads are seen polling.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")
TWO_CORES = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2

CHILD = """
import ctypes, json, os, sys, time
if sys.argv[1] == "numpy-first":
    import numpy as np
    np.ones((600, 600), np.float32) @ np.ones((600, 600), np.float32)   # threads started
import corrnet
import numpy as np
from threadpoolctl import ThreadpoolController

timeouts = [ctypes.CDLL(c.filepath).openblas_thread_timeout()
            for c in ThreadpoolController().select(internal_api="openblas").lib_controllers]
rng = np.random.default_rng(0)
a, b = rng.random((700, 500)), rng.random((500, 600))
product = a.astype(np.float32) @ b.astype(np.float32)       # on two threads
times = os.times()
start = times.user + times.system
time.sleep(0.3)
times = os.times()
print(json.dumps({"timeouts": timeouts, "idle_cpu": times.user + times.system - start,
                  "variable": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
                  "product_error": float(abs(product - a @ b).max())}))
"""


def child(order: str, code: str = CHILD, **environment) -> dict:
    env = {name: value for name, value in os.environ.items()
           if name not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT",
                           "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    env["CORRNET_WARM_UP"] = "0"        # nothing else running while the process sleeps
    env.update(environment)
    result = subprocess.run([sys.executable, "-c", code, order], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("order", ["corrnet-first", "numpy-first"])
def test_openblas_threads_sleep_soon_after_a_product(order):
    result = child(order)
    assert result["variable"] == "16"
    assert result["timeouts"] and set(result["timeouts"]) == {16}, result
    assert result["product_error"] < 1e-3          # restarted threads still compute right
    if TWO_CORES:
        assert result["idle_cpu"] < 0.03, result


def test_a_loaded_openblas_is_not_restarted_while_other_threads_run():
    # another Python thread could be inside a product: the restart waits for a quieter import
    code = CHILD.replace("import corrnet\n", "import threading\n"
                         "stop = threading.Event()\n"
                         "threading.Thread(target=stop.wait, daemon=True).start()\n"
                         "import corrnet\n", 1)
    loaded = child("numpy-first", code)
    assert loaded["variable"] == "16"           # for libraries loaded from now on
    assert set(loaded["timeouts"]) == {0}, loaded   # NumPy's, loaded before: left as it was


def test_a_timeout_in_the_environment_is_left_alone():
    result = child("numpy-first", OPENBLAS_THREAD_TIMEOUT="28")
    assert result["variable"] == "28"
    assert set(result["timeouts"]) == {28}, result
    if TWO_CORES:
        # OpenBLAS's default: its helper thread polls for 2**28 cycles (about 0.1 s)
        assert result["idle_cpu"] > 0.04, result
