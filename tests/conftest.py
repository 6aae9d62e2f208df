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
