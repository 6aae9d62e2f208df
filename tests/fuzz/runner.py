"""The fuzz runner: deals the cases out to bounded worker subprocesses in each mode, turns a
worker's death into ``crash`` and a call past the time limit into ``hang``, restarts workers,
prints the counts and writes the JSON report.

Modes (the same cases run in each):

- ``on``: corrnet's compiled kernels on (the default);
- ``off``: ``CORRNET_NUMBA=0``, the NumPy fallbacks;
- ``bounds``: ``NUMBA_BOUNDSCHECK=1`` with numba's cache in a folder of its own
  (``build/numba-boundscheck``), so every kernel is compiled with index checks: an
  out-of-bounds access raises IndexError (cryptic) instead of reading past an array.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .cases import make_case

HERE = Path(__file__).resolve().parent          # tests/fuzz
REPO = HERE.parent.parent
MODES = ("on", "off", "bounds")
CLASSES = ("agrees", "clear", "cryptic", "wrong", "crash", "hang", "skip")
FAILING = ("cryptic", "wrong", "crash", "hang")
RETRY_FACTOR = 6


def mode_env(mode: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.pop("CORRNET_NUMBA", None)
    env.pop("NUMBA_BOUNDSCHECK", None)
    if mode == "off":
        env["CORRNET_NUMBA"] = "0"
    elif mode == "bounds":
        env["NUMBA_BOUNDSCHECK"] = "1"
        env["NUMBA_CACHE_DIR"] = env.get("FUZZ_BOUNDS_CACHE",
                                         str(REPO / "build" / "numba-boundscheck"))
    return env


class WorkerDied(Exception):
    pass


class Worker:
    """One worker subprocess of a mode, and the line protocol with it."""

    def __init__(self, mode: str, startup_s: float = 300.0):
        self.mode = mode
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "fuzz.worker"], env=mode_env(mode),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, cwd=str(REPO))
        self.buffer = b""
        line = self._read_line(startup_s)
        if line is None or not json.loads(line).get("ready"):
            self.close()
            raise WorkerDied(f"worker ({mode}) did not start: {self.stderr_tail()}")

    def _read_line(self, timeout: float) -> bytes | None:
        """The next protocol line; None on timeout; WorkerDied at end of stream."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise WorkerDied()
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def run(self, seed: int, index: int, timeout: float, corrnet_only: bool = False) -> dict:
        """The verdict on one case (with `corrnet_only`, the oracle's call left out: class
        skip, sub "corrnet alone", if it returns). A worker that dies or times out is closed:
        the verdict is then crash / hang (or skip when the oracle was the one running)."""
        phase = "sent"
        request = {"seed": seed, "index": index, "corrnet_only": corrnet_only}
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            while True:
                line = self._read_line(timeout)
                if line is None:
                    self.close()
                    if phase == "corrnet":
                        return {"class": "hang", "sub": f"over {timeout:g} s"}
                    return {"class": "skip", "sub": "oracle over the time limit"}
                message = json.loads(line)
                if "phase" in message:
                    phase = message["phase"]
                    continue
                return message
        except (WorkerDied, BrokenPipeError):
            code = self.proc.wait()
            tail = self.stderr_tail()
            self.close()
            if phase != "corrnet":
                return {"class": "skip", "sub": "oracle killed the worker", "detail": tail}
            how = (f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}")
            return {"class": "crash", "sub": how, "detail": tail}

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - 600))
            return self.stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def run_chunk(mode: str, seed: int, indices: list[int], timeout: float,
              retry_hangs: bool = True) -> list[dict]:
    """Run the cases `indices` in mode `mode`, restarting the worker after a crash or hang. A
    call past `timeout` is tried once more in a fresh worker with RETRY_FACTOR times the time
    (a first call may be compiling numba kernels, slowly on a loaded machine): only a call
    that outlives both is a hang. A crash is tried once more with corrnet's call alone in a
    fresh worker: if that one finishes, the oracle's call had corrupted the process (skip)."""
    results = []
    worker = None
    for index in indices:
        for attempt in (1, 2):
            if worker is None or not worker.alive():
                worker = Worker(mode)
            limit = timeout if attempt == 1 else RETRY_FACTOR * timeout
            verdict = worker.run(seed, index, limit)
            if verdict["class"] != "hang" or attempt == 2 or not retry_hangs:
                break
        if verdict["class"] == "crash":
            worker = Worker(mode)
            alone = worker.run(seed, index, RETRY_FACTOR * timeout, corrnet_only=True)
            if alone["class"] == "skip":
                verdict = {"class": "skip", "sub": "oracle corrupted the process",
                           "detail": f"corrnet alone finishes; with the oracle first: "
                                     f"{verdict['sub']}: {verdict.get('detail', '')}"}
        verdict.update(mode=mode, index=index)
        verdict.setdefault("op", make_case(seed, index).op)
        results.append(verdict)
    if worker is not None:
        worker.close()
    return results


def run(seed: int, calls: int, modes=MODES, jobs: int = 2, timeout: float = 10.0,
        chunk: int = 400, progress=None, retry_hangs: bool = True) -> list[dict]:
    """Run `calls` cases in all, split evenly over `modes` (the same indices in each mode),
    on `jobs` worker processes at a time. Returns every verdict."""
    per_mode = max(1, calls // len(modes))
    tasks: queue.Queue = queue.Queue()
    for start in range(0, per_mode, chunk):
        for mode in modes:
            tasks.put((mode, list(range(start, min(per_mode, start + chunk)))))
    results: list[dict] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def drain():
        while True:
            try:
                mode, indices = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                out = run_chunk(mode, seed, indices, timeout, retry_hangs)
            except BaseException as exc:  # noqa: BLE001 - reported after the threads end
                errors.append(exc)
                return
            with lock:
                results.extend(out)
                if progress:
                    progress(len(results), per_mode * len(modes))

    threads = [threading.Thread(target=drain, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def counts(results: list[dict]) -> dict:
    table: dict = {mode: collections.Counter() for mode in sorted({r["mode"] for r in results})}
    for r in results:
        table[r["mode"]][r["class"]] += 1
    return table


def _shape_of_text(text: str, n: int = 60) -> str:
    """A message with its numbers and quoted values blotted out, to group alike ones."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text.split("\n")[0])
    return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", text)[:n]


def signature(r: dict) -> str:
    """What groups verdicts into one finding: class, subclass, op, and where corrnet raised
    (cryptic, clear, refused), or the oracle's error (accepts), or what differs (wrong
    values), with numbers blotted out."""
    parts = [r["class"], r.get("sub", ""), r.get("op", "?")]
    if r["class"] in ("cryptic", "clear") or r.get("sub") == "refused":
        parts.append(r.get("where", ""))
        parts.append(r.get("error", "").split(":")[0])
    elif r.get("sub") == "accepts":
        parts.append("oracle: " + _shape_of_text(r.get("oracle_error", "")))
    elif r["class"] == "wrong":
        parts.append(_shape_of_text(r.get("detail", ""), 40))
    return " | ".join(p for p in parts if p)


def format_table(results: list[dict]) -> str:
    table = counts(results)
    lines = ["mode    " + "".join(f"{c:>9}" for c in CLASSES) + "    total"]
    total = collections.Counter()
    for mode, c in table.items():
        total.update(c)
        lines.append(f"{mode:<8}" + "".join(f"{c[k]:>9}" for k in CLASSES)
                     + f"{sum(c.values()):>9}")
    lines.append(f"{'all':<8}" + "".join(f"{total[k]:>9}" for k in CLASSES)
                 + f"{sum(total.values()):>9}")
    subs = collections.Counter((r["class"], r.get("sub", "")) for r in results
                               if r["class"] in FAILING or r.get("sub") == "refused")
    if subs:
        lines.append("")
        lines.append("by subclass: " + ", ".join(f"{c}/{s or '-'} {n}" for (c, s), n in
                                                   sorted(subs.items())))
    return "\n".join(lines)


def write_report(path: Path, seed: int, results: list[dict], elapsed: float) -> None:
    """The JSON report: the counts, and every case that did not agree with the command that
    prints its repro."""
    cases = []
    for r in sorted(results, key=lambda r: (r["class"], r.get("op", ""), r["index"], r["mode"])):
        if r["class"] == "agrees":
            continue
        entry = {**r, "signature": signature(r),
                 "repro": (f"PYTHONPATH=tests python -m fuzz repro {seed} {r['index']} "
                           f"--mode {r['mode']}")}
        if r["class"] in FAILING:
            entry["code"] = make_case(seed, r["index"]).code
        cases.append(entry)
    groups = collections.Counter(signature(r) for r in results
                                 if r["class"] in FAILING or r.get("sub") == "refused")
    report = {"seed": seed, "calls": len(results), "elapsed_s": round(elapsed, 1),
              "counts": {m: dict(c) for m, c in counts(results).items()},
              "signatures": dict(groups.most_common()), "cases": cases}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str))


# op family -> the source file most likely at fault, for verdicts with no corrnet frame
LIKELY_FILE = (
    ("F.conv", "corrnet/functional.py (conv) + kernels/conv.py"),
    ("nn.Conv", "corrnet/nn/conv.py + functional.py (conv)"),
    ("F.fold", "corrnet/functional.py (fold/unfold) + kernels/windows.py"),
    ("F.unfold", "corrnet/functional.py (fold/unfold) + kernels/windows.py"),
    ("F.pad", "corrnet/functional.py (pad)"),
    ("nn.", "corrnet/nn/"),
    ("F.adaptive", "corrnet/functional.py (adaptive pools) + kernels/pool.py"),
    ("F.max", "corrnet/functional.py (pools) + kernels/pool.py"),
    ("F.avg", "corrnet/functional.py (pools) + kernels/pool.py"),
    ("F.", "corrnet/nn/functional.py"),
    ("filter.", "corrnet/functional.py (corr2d/convolve2d)"),
    ("autograd.", "corrnet/autograd.py + tensor.py"),
    ("creation.", "corrnet/tensor.py (creation)"),
    ("", "corrnet/tensor.py + ops.py"),
)


def likely_file(r: dict) -> str:
    w = r.get("where", "")
    if w.startswith("corrnet/"):
        return w.split(":")[0]
    for prefix, name in LIKELY_FILE:
        if r.get("op", "").startswith(prefix):
            return name
    return "?"


def summary_markdown(report: dict) -> str:
    """The failing signatures of a report as Markdown, grouped by the likely file at fault."""
    seed = report["seed"]
    groups: dict = {}
    for r in report["cases"]:
        if r["class"] not in FAILING and r.get("sub") != "refused":
            continue
        groups.setdefault(likely_file(r), {}).setdefault(signature(r), []).append(r)
    lines = [f"Fuzz report: {report['calls']} calls, seed {seed}.", ""]
    for file in sorted(groups, key=lambda f: -sum(len(v) for v in groups[f].values())):
        sigs = groups[file]
        lines.append(f"## {file} ({sum(len(v) for v in sigs.values())} calls)")
        lines.append("")
        for sig, rs in sorted(sigs.items(), key=lambda kv: -len(kv[1])):
            modes = sorted({r["mode"] for r in rs})
            r = rs[0]
            what = r.get("detail") or r.get("error") or ""
            oracle = r.get("oracle_error", "")
            cases = len({r["index"] for r in rs})
            lines.append(f"- **{sig}** — {cases} cases, {len(rs)} calls ({', '.join(modes)})")
            lines.append(f"  - corrnet: {what[:200]}")
            if oracle:
                lines.append(f"  - oracle: {oracle[:160]}")
            code = r.get("code") or ""
            body = [ln for ln in code.splitlines() if not ln.startswith(("_y", "if isinstance(_y",
                                                                          "    _y.backward"))]
            lines.append(f"  - repro `python -m fuzz repro {seed} {r['index']} --mode "
                         f"{r['mode']}`:")
            lines.append("    ```python")
            lines += ["    " + ln for ln in body[:8]]
            lines.append("    ```")
        lines.append("")
    return "\n".join(lines)
