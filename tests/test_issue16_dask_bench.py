"""Issue 16: benchmarks/dask_filters.py runs (``--quick``: a tiny size, once), so it cannot rot;
its figures come from the full run, never from the test suite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("dask.array")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "dask_filters.py"


def test_issue16_dask_benchmark_runs_quick_and_prints_its_tables(capsys):
    spec = importlib.util.spec_from_file_location("dask_filters_benchmark", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--quick"])
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "Dask " in out
    for row in ("| correlate 3x3 | 40 |", "| correlate 15x15 | 40 |", "| gaussian sigma 1 | 40 |",
                "| in-process loop |", "| corrnet.dask.predict (threads) |"):
        assert row in out
    # tiled and in-memory results agree (the table's last column)
    for line in out.splitlines():
        if line.startswith("| correlate") or line.startswith("| gaussian"):
            assert float(line.rstrip(" |").rsplit("|", 1)[1]) < 1e-4, line
