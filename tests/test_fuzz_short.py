"""The short fuzz run of `make test`: 80 calls of the differential fuzz suite (tests/fuzz;
`make fuzz` runs the nightly size) in each mode — compiled kernels on, off and bounds-checked
— each in a bounded worker subprocess. Strict: no call may end cryptic, wrong, crash or hang
(the classes are defined in tests/fuzz/worker.py). A failure lists each bad call with the
command that prints its repro."""

from __future__ import annotations

import os

from fuzz import runner
from fuzz.cases import SELF_TEST

CALLS_PER_MODE = int(os.environ.get("CORRNET_FUZZ_SHORT", "80"))
SEED = 11


def _describe(r: dict) -> str:
    what = r.get("detail") or r.get("error") or ""
    if r.get("oracle_error"):
        what += f" (oracle: {r['oracle_error'][:100]})"
    return (f"{r['class']}/{r.get('sub', '')} {r.get('op', '?')} [{r['mode']}]: {what[:260]}\n"
            f"    repro: PYTHONPATH=tests python -m fuzz repro {SEED} {r['index']} "
            f"--mode {r['mode']}")


def test_fuzz_short_run_has_no_failing_calls():
    results = runner.run(SEED, CALLS_PER_MODE * len(runner.MODES), jobs=2, timeout=20.0,
                         chunk=CALLS_PER_MODE)
    assert len(results) == CALLS_PER_MODE * len(runner.MODES)
    bad = [r for r in results if r["class"] in runner.FAILING]
    assert not bad, (f"{len(bad)} of {len(results)} fuzz calls failed:\n"
                     + "\n".join(_describe(r) for r in bad[:60]))


def test_fuzz_harness_tells_each_outcome_apart():
    """The self-test cases (seed -1): one that agrees, one wrong, one cryptic, one that kills
    the worker (SIGABRT) and one that sleeps past the time limit — each classified as such,
    the worker restarted after the crash and the hang."""
    results = runner.run(-1, len(SELF_TEST), modes=("off",), jobs=1, timeout=2.0,
                         retry_hangs=False)
    assert {r["op"]: r["class"] for r in results} == {
        f"selftest.{name}": name for name, _ in SELF_TEST}
    crash = next(r for r in results if r["class"] == "crash")
    assert crash["sub"] == "signal SIGABRT"
