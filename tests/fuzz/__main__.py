"""``python -m fuzz``: the fuzz run, or one case's repro. Run from the repository root with
``PYTHONPATH=tests`` (and ``src`` when corrnet is not installed).

    python -m fuzz [--calls N] [--seed S] [--modes on,off,bounds] [--jobs J] [--timeout T]
                   [--report build/fuzz-report.json]
    python -m fuzz repro SEED INDEX [--mode on|off|bounds]
    python -m fuzz summary [REPORT]       # the failing signatures as Markdown, by file

The run exits with status 1 when any call ended cryptic, wrong, crash or hang.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import runner
from .cases import make_case

# The cases turn autotuning on (``backends.cudnn.benchmark = True``), whose winners persist in
# the calibration file: the workers (which inherit this environment) get a cache folder of
# their own, removed at exit, never the user's (a fuzz run used to leave a calibration file
# there that a later `make bench` then read).
_CACHE = tempfile.mkdtemp(prefix="corrnet-fuzz-cache-")
os.environ["CORRNET_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "repro":
        parser = argparse.ArgumentParser(prog="python -m fuzz repro")
        parser.add_argument("seed", type=int)
        parser.add_argument("index", type=int)
        parser.add_argument("--mode", default="on", choices=runner.MODES)
        args = parser.parse_args(argv[1:])
        print(make_case(args.seed, args.index).repro(args.mode))
        return 0
    if argv and argv[0] == "summary":
        parser = argparse.ArgumentParser(prog="python -m fuzz summary")
        parser.add_argument("report", nargs="?",
                            default=str(runner.REPO / "build" / "fuzz-report.json"))
        args = parser.parse_args(argv[1:])
        print(runner.summary_markdown(json.loads(Path(args.report).read_text())))
        return 0
    parser = argparse.ArgumentParser(prog="python -m fuzz")
    parser.add_argument("--calls", type=int, default=30000, help="calls in all, over the modes")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--modes", default=",".join(runner.MODES))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes at a time")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    parser.add_argument("--chunk", type=int, default=400, help="calls per worker process")
    parser.add_argument("--report", default=str(runner.REPO / "build" / "fuzz-report.json"))
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    start = time.monotonic()
    last = [0.0]

    def progress(done, total):
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  {done}/{total} calls, {time.monotonic() - start:.0f} s", flush=True)

    results = runner.run(args.seed, args.calls, modes, args.jobs, args.timeout, args.chunk,
                         progress)
    elapsed = time.monotonic() - start
    print(f"fuzz: {len(results)} calls (seed {args.seed}, modes {', '.join(modes)}) in "
          f"{elapsed:.0f} s")
    print(runner.format_table(results))
    runner.write_report(Path(args.report), args.seed, results, elapsed)
    print(f"report: {args.report}")
    failing = sum(1 for r in results if r["class"] in runner.FAILING)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
