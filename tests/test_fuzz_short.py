"""The short fuzz run of `make test`: a few hundred calls of the differential fuzz suite
(tests/fuzz, `make fuzz` runs the nightly size) in each mode — compiled kernels on, off and
bounds-checked — each in a bounded subprocess. Strict: no call may end cryptic, wrong, crash
or hang (the classes are defined in tests/fuzz/worker.py). A failure lists each bad call with
the command that prints its repro."""

from __future__ import annotations

import os

import pytest
from fuzz import runner

CALLS_PER_MODE = int(os.environ.get("CORRNET_FUZZ_SHORT", "100"))
SEED = 11


def _describe(r: dict) -> str:
    what = r.get("detail") or r.get("error") or ""
    if r.get("oracle_error"):
        what += f" (oracle: {r['oracle_error'][:100]})"
    return (f"{r['class']}/{r.get('sub', '')} {r.get('op', '?')} [{r['mode']}]: {what[:260]}\n"
            f"    repro: PYTHONPATH=tests python -m fuzz repro {SEED} {r['index']} "
            f"--mode {r['mode']}")


@pytest.mark.parametrize("mode", runner.MODES)
def test_fuzz_short_run_has_no_failing_calls(mode):
    results = runner.run(SEED, CALLS_PER_MODE, modes=(mode,), jobs=1, timeout=20.0,
                         chunk=CALLS_PER_MODE)
    assert len(results) == CALLS_PER_MODE
    bad = [r for r in results if r["class"] in runner.FAILING]
    assert not bad, (f"{len(bad)} of {len(results)} fuzz calls failed in mode {mode!r}:\n"
                     + "\n".join(_describe(r) for r in bad[:40]))
