"""benchmarks/loop_overhead.py (issue 13): the book loop's per-batch overhead measurement runs
and returns its parts; no timing is asserted (a CI runner's timings mean nothing)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "loop_overhead.py"


def _load():
    spec = importlib.util.spec_from_file_location("corrnet_benchmarks_loop_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_issue13_loop_overhead_reports_every_part_and_a_fraction():
    module = _load()
    result = module.loop_overhead(batch_size=8, batches=3, warmup=1, synthetic=True)
    assert result["data"] == "synthetic"
    for part in module.PARTS:
        assert math.isfinite(result[part]) and result[part] >= 0
    assert result["step"] > 0
    overhead = sum(result[p] for p in module.PARTS if p != "step")
    assert math.isclose(result["fraction"], overhead / result["step"])
