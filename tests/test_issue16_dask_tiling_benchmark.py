"""benchmarks/dask_tiling.py --quick runs every section (so that the benchmark cannot rot).

No timing or memory figure is asserted (a loaded runner's figures mean nothing): only that
each section prints its table, the tiled run agrees with the in-memory one, and the
figures are positive numbers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "dask_tiling.py"


def test_quick_run_prints_every_section():
    # a script of its own: the cluster's workers re-run it as their main module
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    for heading in ("## (a) Throughput", "## (b) Peak memory per worker",
                    "## (c) Scheduler overhead per task", "| CPU |", "| Dask |"):
        assert heading in text
    rows = [line for line in text.splitlines() if line.startswith("| apply, threads")]
    assert len(rows) == 2
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[2]) > 0 and float(cells[3]) < 1e-4  # MP/s; error vs in memory
    peaks = re.findall(r"^\| 256x256 \| 128 \|.*$", text, flags=re.M)
    assert len(peaks) == 1 and "region" in text
    overhead = [line for line in text.splitlines() if line.startswith("| distributed,")]
    assert len(overhead) == 2 and all(float(line.strip("|").split("|")[2]) > 0
                                      for line in overhead)
