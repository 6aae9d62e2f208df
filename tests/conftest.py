"""Makes this folder importable, so that test files here and in oracle/ can share modules
(``torch_compare``, ``pool_geometry``). Pytest's default (prepend) import mode already puts
this folder on sys.path; the insertion below keeps that true under other import modes."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


# -- the planner's calibration file (kernels/calibration.py) -----------------------------------
# Tests never read or write the user's cache: the calibration file (``corrnet tune``, and the
# winners autotuning saves) goes to a folder of this test run, which subprocesses inherit
# through the environment, and which is removed at exit.
_CACHE = tempfile.mkdtemp(prefix="corrnet-test-cache-")
os.environ["CORRNET_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


# -- stand-in CUDA devices (corrnet/_standin.py) for the device tests -------------------------

import pytest  # noqa: E402


@pytest.fixture
def cuda(monkeypatch):
    """Two stand-in CUDA devices for the test (NumPy arrays that refuse implicit host
    conversion, as CuPy's do)."""
    from corrnet import devices

    monkeypatch.setenv(devices.STANDIN_VARIABLE, "2")
    devices.reset()
    yield
    monkeypatch.delenv(devices.STANDIN_VARIABLE)
    devices.reset()


@pytest.fixture
def no_cuda(monkeypatch):
    """No CUDA device for the test (as on a machine without CuPy or a GPU)."""
    from corrnet import devices

    monkeypatch.delenv(devices.STANDIN_VARIABLE, raising=False)
    devices.reset()
    if devices.is_available():  # a real GPU (make test-gpu on a GPU machine)
        pytest.skip("CUDA is available here: the no-CUDA behaviour cannot be checked")
    yield
    devices.reset()


# -- corrnet's helper threads, started late ---------------------------------------------------

class _LateHelpers:
    """A stand-in for corrnet's helper pool (`threads.helper_pool()`) whose helpers start
    `delay` seconds after the work is handed out."""

    def __init__(self, delay: float):
        import threading

        import numpy as np

        self.delay = delay
        # what run_shared reads of a pool: its gate (see threads.run_shared)
        self.gate, self.gated_post, self.posted = (np.zeros(1, np.int64) for _ in range(3))
        self.gate_lock = threading.Lock()

    def submit(self, function, *args):
        import concurrent.futures
        import time

        executor = concurrent.futures.ThreadPoolExecutor(1)
        future = executor.submit(lambda: (time.sleep(self.delay), function(*args))[1])
        executor.shutdown(wait=False)
        return future


@pytest.fixture
def late_helpers():
    """late_helpers(delay): a stand-in for `threads.helper_pool` (to monkeypatch in) whose
    helpers start `delay` seconds late."""
    return lambda delay: (lambda: _LateHelpers(delay))
