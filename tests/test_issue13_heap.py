"""Issue 13: large freed arrays are reused from the heap, not re-faulted (kernels/heap.py).

Each check runs in a fresh interpreter, since the settings are made once, at import. What is
measured is the behaviour the settings are for, against glibc's own defaults in the same
test: the page faults of allocating, touching and freeing a 64 MiB array again and again,
and the resident memory that `release` gives back.
"""

import json
import os
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION")
                                                  if hasattr(os, "confstr") else "")
pytestmark = pytest.mark.skipif(not GLIBC, reason="the heap settings are glibc's (Linux)")

ROUNDS = 4
MIB = 64

CHILD = f"""
import json, resource
import numpy as np
import corrnet

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def resident_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

np.ones({MIB} * 2**20 // 8)          # once, untimed: the heap grows to hold it
start = faults()
for _ in range({ROUNDS}):
    block = np.ones({MIB} * 2**20 // 8)     # every page touched
    del block
after_free = resident_kib()
released = corrnet.backends.memory.release()
print(json.dumps({{"faults": faults() - start, "kept": corrnet.backends.memory.keeps_freed,
                  "repr": repr(corrnet.backends.memory), "released": released,
                  "resident_drop_kib": after_free - resident_kib()}}))
"""


def child(**environment) -> dict:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    env["CORRNET_WARM_UP"] = "0"     # no numba set-up allocating beside the loop
    env.update(environment)
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_freed_blocks_are_reused_without_page_faults():
    kept = child()
    default = child(CORRNET_KEEP_FREED_MEMORY="0")
    assert kept["kept"] and not default["kept"]
    # glibc's defaults map each 64 MiB block afresh: one fault per page touched (4 KiB pages,
    # or 2 MiB ones where transparent huge pages are always on); kept, the block is reused
    assert default["faults"] >= ROUNDS * MIB * 2**20 // (2 * 2**20)
    assert kept["faults"] * 10 < default["faults"], (kept, default)


def test_release_gives_the_free_memory_back():
    kept = child()
    assert kept["released"]
    assert kept["resident_drop_kib"] >= 0.75 * MIB * 1024, kept


@pytest.mark.parametrize("variable, value", [
    ("CORRNET_KEEP_FREED_MEMORY", "0"),
    ("MALLOC_TRIM_THRESHOLD_", "65536"),          # what Dask's nanny sets for its workers
    ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1048576"),
])
def test_a_choice_made_in_the_environment_is_left_alone(variable, value):
    result = child(**{variable: value})
    assert not result["kept"]
    assert f"left to {variable}" in result["repr"]
