"""The oracle suite's example budget and its report.

``CORRNET_ORACLE`` (see `helpers.example_factor`) scales every oracle test's example count:
unset = CI size, ``nightly`` = about 50,000 examples in all.  `helpers` registers the
profile; it is loaded here so that it is also the default of any hypothesis test that names
no settings (nightly or a number only: at CI size hypothesis' defaults are left alone, so
that running tests/ as a whole behaves as before).  At the end of a run the number of
hypothesis examples actually executed is reported (summed from hypothesis' own per-test
statistics).
"""

from __future__ import annotations

import re
import time

from hypothesis import settings

try:
    from .helpers import example_factor, profile_name
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import example_factor, profile_name

if profile_name() != "ci":  # at CI size hypothesis' own defaults stay untouched
    settings.load_profile(f"corrnet-oracle-{profile_name()}")

_COUNTS = {"passing": 0, "failing": 0, "invalid": 0, "tests": 0}
_START = time.monotonic()
_LINE = re.compile(r"- (\d+) passing, (\d+) failing, and (\d+) invalid test cases")


def pytest_runtest_logreport(report):
    stats = report.__dict__.get("_hypothesis_stats")
    if report.when != "teardown" or not stats:
        return
    _COUNTS["tests"] += 1
    for passing, failing, invalid in _LINE.findall(stats):
        _COUNTS["passing"] += int(passing)
        _COUNTS["failing"] += int(failing)
        _COUNTS["invalid"] += int(invalid)


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS["tests"]:
        return
    terminalreporter.write_line(
        f"corrnet oracle [{profile_name()} x{example_factor():g}]: "
        f"{_COUNTS['passing']} hypothesis examples passed, {_COUNTS['failing']} failed, "
        f"{_COUNTS['invalid']} discarded, in {_COUNTS['tests']} hypothesis tests, "
        f"{time.monotonic() - _START:.0f} s")
