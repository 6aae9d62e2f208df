"""The fuzz worker: a subprocess that runs cases with the oracle and with corrnet and judges
each outcome. Started by `runner` (``python -m fuzz.worker``), one per mode; it reads one
request a line on stdin (``{"seed": S, "index": I}``) and answers on its protocol pipe.

Limits: the worker caps its address space (RLIMIT_AS: its size after the imports plus
``FUZZ_MEMORY_MB``, default 3072) so an allocation that runs away fails rather than taking the
machine; the runner kills it when a call outlives the time limit.

How an outcome is classified (the reference for the whole suite):

- ``agrees``: both returned, and every part of ``result`` is the same: tensors in dtype, shape
  and values (float64 to rtol 1e-10, float32 1e-4, float16 1e-2, each with an absolute
  tolerance of a tenth of that times the largest finite |oracle| value; NaN where the oracle
  has NaN, infinities equal; integers and bools exactly; random ops ('shape' cases) in dtype
  and shape only), Python scalars alike in type and value, sequences element by element,
  gradients None exactly where the oracle's are.
- ``clear``: both raised, and corrnet's exception is *clear*: its type is ValueError,
  TypeError, RuntimeError, IndexError, NotImplementedError or ImportError (not a
  RecursionError), its message is not empty, and it was raised by a ``raise`` statement in
  corrnet's own source (the innermost traceback frame is a line inside an ``ast.Raise`` of a
  file in the corrnet package) — or it is a TypeError about the arguments raised by Python
  itself at the call (the innermost frame is the case's own code: a signature mismatch, an
  operator the type does not define).
- ``cryptic``: corrnet raised anything else (from inside NumPy, SciPy, numba, Python's
  built-ins; AttributeError, KeyError, ZeroDivisionError, OverflowError, MemoryError,
  RecursionError, ...), whether or not the oracle raised.
- ``wrong``: the outcomes differ; the subclass says how: ``value``, ``dtype``, ``shape``,
  ``grad`` (a gradient part differs, or is None on one side only), ``type`` / ``structure``
  (a non-tensor part differs), ``accepts`` (corrnet returned where the oracle raised),
  ``refused`` (corrnet raised a clear error where the oracle returned) — except for the
  ops in ``UNSUPPORTED`` (a feature corrnet documents it lacks: complex dtypes), where a clear
  refusal is ``clear``, sub ``unsupported: ...``.
- ``crash`` and ``hang`` are decided by the runner: the worker died (by a signal, or exited)
  during the corrnet call; the corrnet call outlived the time limit twice (the second time in
  a fresh worker, with six times the limit: a first call may be compiling numba kernels).
- ``skip``: the oracle itself could not answer (it ran out of memory or time), or the case's
  own input-making failed (a generator fault); nothing is said about corrnet.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import resource
import sys
import time
import traceback
import warnings

import numpy as np

from .cases import Case, arr, make_case

# Case ops that use a feature corrnet documents it does not have: a clear refusal where the
# oracle computes is classed ``clear`` (sub ``unsupported: REASON``), not ``wrong/refused``.
UNSUPPORTED = {"creation.from_numpy_complex": "corrnet has no complex dtypes"}

CLEAR_TYPES = (ValueError, TypeError, RuntimeError, IndexError, NotImplementedError, ImportError)
RTOL = {"torch.float64": 1e-10, "torch.float32": 1e-4, "torch.float16": 1e-2}


# -- running a case -------------------------------------------------------------------------

def execute(code: str, lib, scipy_module=None):
    """Run a case's code with `lib` bound; returns its `result` dict (or raises)."""
    namespace = {"np": np, "arr": arr, "lib": lib, "scipy": scipy_module}
    if lib is not None:
        namespace.update(F=lib.nn.functional, nn=lib.nn)
    exec(compile(code, "<fuzz case>", "exec"), namespace)  # noqa: S102 - the case's own code
    return normalize(namespace["result"])


def normalize(value):
    """A library-neutral form of a result: ('T', dtype, shape, array) for a tensor (or a NumPy
    array from SciPy), ('S', type, value) for a Python scalar, ('L', items) for sequences,
    ('D', name) for a dtype, ('N',) for None, ('O', type name) for anything else."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return ("T", f"torch.{value.dtype}", tuple(value.shape), value.copy())
    if hasattr(value, "detach") and hasattr(value, "dtype") and hasattr(value, "shape"):
        return ("T", str(value.dtype), tuple(value.shape),
                np.array(value.detach().numpy(), copy=True))
    if value is None:
        return ("N",)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return ("S", type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        return ("L", [normalize(v) for v in value])
    if type(value).__name__ == "dtype":
        return ("D", str(value))
    return ("O", type(value).__name__)


# -- judging --------------------------------------------------------------------------------

@functools.cache
def _raise_spans(filename: str) -> tuple:
    """The (first, last) lines of every raise statement in a source file."""
    try:
        with open(filename, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return ()
    return tuple((n.lineno, n.end_lineno) for n in ast.walk(tree) if isinstance(n, ast.Raise))


def innermost_frame(exc: BaseException) -> tuple[str, int]:
    tb = exc.__traceback__
    if tb is None:
        return "?", 0
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def is_clear(exc: BaseException, corrnet_dir: str) -> bool:
    """The rule in the module docstring."""
    if not isinstance(exc, CLEAR_TYPES) or isinstance(exc, RecursionError) or not str(exc):
        return False
    filename, line = innermost_frame(exc)
    if filename == "<fuzz case>":
        return isinstance(exc, TypeError) and ("argument" in str(exc)
                                               or "unsupported operand" in str(exc)
                                               or "not supported between instances" in str(exc))
    if not os.path.abspath(filename).startswith(corrnet_dir + os.sep):
        return False
    return any(first <= line <= last for first, last in _raise_spans(filename))


def where(exc: BaseException, corrnet_dir: str) -> str:
    """The innermost frame as 'file:line', corrnet's files relative to its package."""
    filename, line = innermost_frame(exc)
    path = os.path.abspath(filename)
    if path.startswith(corrnet_dir + os.sep):
        filename = "corrnet/" + os.path.relpath(path, corrnet_dir)
    elif "site-packages" in path:
        filename = path.split("site-packages" + os.sep, 1)[1]
    return f"{filename}:{line}"


def _close(got: np.ndarray, expected: np.ndarray, dtype: str) -> str | None:
    """None when the arrays agree under the tolerance of `dtype`, else why not."""
    rtol = RTOL.get(dtype)
    if rtol is None or got.dtype.kind not in "fc":
        if got.dtype.kind in "fc" or expected.dtype.kind in "fc":
            same = np.array_equal(got, expected, equal_nan=True)
        else:
            same = np.array_equal(got, expected)
        return None if same else f"{_count_diff(got != expected)} of {got.size} differ"
    g, e = got.astype(np.float64), expected.astype(np.float64)
    nan_g, nan_e = np.isnan(g), np.isnan(e)
    if (nan_g != nan_e).any():
        return (f"NaN at {int((nan_g & ~nan_e).sum())} places the oracle has none, "
                f"missing at {int((nan_e & ~nan_g).sum())}")
    inf_g, inf_e = np.isinf(g), np.isinf(e)
    if (inf_g != inf_e).any() or (g[inf_e] != e[inf_e]).any():
        return f"infinities differ at {int((inf_g != inf_e).sum())} places"
    finite = np.isfinite(e)
    scale = max(1.0, float(np.abs(e[finite]).max())) if finite.any() else 1.0
    bad = finite & ~(np.abs(g - e) <= 0.1 * rtol * scale + rtol * np.abs(e))
    if bad.any():
        worst = float(np.max(np.abs(g - e)[bad]))
        return f"{int(bad.sum())} of {g.size} differ (max abs diff {worst:.3g}, scale {scale:.3g})"
    return None


def _count_diff(mask) -> int:
    return int(np.asarray(mask).sum())


def compare(got, expected, compare_mode: str, key: str = "out") -> tuple[str, str] | None:
    """None when corrnet's normalized result equals the oracle's, else (subclass, detail)."""
    grad = key.startswith(("grad", "param grads"))
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            return "structure", "result keys differ"
        for k in expected:
            diff = compare(got[k], expected[k], compare_mode, k)
            if diff:
                return diff
        return None
    sub = "grad" if grad else None
    if got[0] != expected[0]:
        return sub or "type", f"{key}: corrnet gave {_kind(got)}, oracle {_kind(expected)}"
    tag = got[0]
    if tag == "T":
        _, gd, gs, ga = got
        _, ed, es, ea = expected
        if gd != ed:
            return sub or "dtype", f"{key}: dtype {gd} != oracle {ed}"
        if gs != es:
            return sub or "shape", f"{key}: shape {gs} != oracle {es}"
        if compare_mode == "shape":
            return None
        why = _close(ga, ea, ed)
        return (sub or "value", f"{key}: {why}") if why else None
    if tag == "S":
        if got[1] != expected[1]:
            return sub or "type", (f"{key}: {got[1]} {got[2]!r} != oracle "
                                   f"{expected[1]} {expected[2]!r}")
        a, b = got[2], expected[2]
        if isinstance(b, float):
            same = (np.isnan(a) and np.isnan(b)) or a == b or abs(a - b) <= 1e-4 * abs(b) + 1e-6
        else:
            same = a == b
        return None if same else (sub or "value", f"{key}: {a!r} != oracle {b!r}")
    if tag == "L":
        if len(got[1]) != len(expected[1]):
            return sub or "structure", f"{key}: {len(got[1])} items != oracle {len(expected[1])}"
        for i, (a, b) in enumerate(zip(got[1], expected[1], strict=True)):
            diff = compare(a, b, compare_mode, f"{key}[{i}]")
            if diff:
                return diff
        return None
    if got != expected:
        return sub or "type", f"{key}: {got!r} != oracle {expected!r}"
    return None


def _kind(norm) -> str:
    return {"T": "a tensor", "S": f"a {norm[1]}" if norm[0] == "S" else "", "L": "a sequence",
            "D": "a dtype", "N": "None", "O": f"a {norm[-1]}"}[norm[0]]


def _in_case_helpers(exc: BaseException) -> bool:
    """Whether the exception came out of the case's own input-making (`arr`): a fault of the
    generator, not of the library."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is arr.__code__:
            return True
        tb = tb.tb_next
    return False


def _oom(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or \
        "DefaultCPUAllocator" in text or "not enough memory" in text


def judge(case: Case, oracle_outcome, corrnet_outcome, corrnet_dir: str) -> dict:
    """The verdict on one case (the rules in the module docstring)."""
    o_ok, o_val = oracle_outcome
    c_ok, c_val = corrnet_outcome
    verdict: dict = {}
    if not c_ok and _in_case_helpers(c_val):
        return {"class": "skip", "sub": "case error",
                "detail": f"{type(c_val).__name__}: {str(c_val)[:200]}"}
    if not c_ok:
        verdict["error"] = f"{type(c_val).__name__}: {str(c_val)[:300]}"
        verdict["where"] = where(c_val, corrnet_dir)
    if not o_ok:
        verdict["oracle_error"] = f"{type(o_val).__name__}: {str(o_val)[:200]}"
        if _oom(o_val):
            return {**verdict, "class": "skip", "sub": "oracle out of memory"}
    if not c_ok:
        if not is_clear(c_val, corrnet_dir):
            return {**verdict, "class": "cryptic", "sub": type(c_val).__name__}
        if o_ok and case.op in UNSUPPORTED:
            return {**verdict, "class": "clear", "sub": f"unsupported: {UNSUPPORTED[case.op]}"}
        return {**verdict, "class": "clear" if not o_ok else "wrong",
                "sub": "" if not o_ok else "refused"}
    if not o_ok:
        return {**verdict, "class": "wrong", "sub": "accepts"}
    diff = compare(c_val, o_val, case.compare)
    if diff is None:
        return {"class": "agrees", "sub": ""}
    return {"class": "wrong", "sub": diff[0], "detail": diff[1][:300]}


# -- the loop -------------------------------------------------------------------------------

def _run(code, lib, scipy_module=None):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return True, execute(code, lib, scipy_module)
    except Exception as exc:  # noqa: BLE001 - every exception is an outcome to judge
        return False, exc


def _settings(corrnet, torch) -> dict:
    conv = corrnet.backends.conv
    return {"algorithm": conv.algorithm, "memory_budget": conv.memory_budget,
            "benchmark": conv.benchmark, "torch_benchmark": torch.backends.cudnn.benchmark}


def _restore(corrnet, torch, defaults: dict) -> None:
    conv = corrnet.backends.conv
    conv.algorithm = defaults["algorithm"]
    conv.memory_budget = defaults["memory_budget"]
    conv.benchmark = defaults["benchmark"]
    torch.backends.cudnn.benchmark = defaults["torch_benchmark"]


def main() -> None:
    # the protocol gets its own pipe: anything the code under test prints goes to stderr
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    import scipy.signal
    import torch

    import corrnet

    torch.set_num_threads(1)
    corrnet_dir = os.path.dirname(os.path.abspath(corrnet.__file__))
    budget = int(os.environ.get("FUZZ_MEMORY_MB", "3072")) * 2**20
    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + budget, size + budget))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))     # a crash leaves no core file
    protocol.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")

    defaults = _settings(corrnet, torch)
    for line in sys.stdin:
        request = json.loads(line)
        index = request["index"]
        case = make_case(request["seed"], index)
        protocol.write(json.dumps({"index": index, "phase": "oracle"}) + "\n")
        start = time.perf_counter()
        if case.oracle == "scipy":
            oracle = _run(case.oracle_code, None, scipy)
        else:
            oracle = _run(case.code, torch)
        oracle_s = time.perf_counter() - start
        protocol.write(json.dumps({"index": index, "phase": "corrnet"}) + "\n")
        start = time.perf_counter()
        mine = _run(case.code, corrnet)
        corrnet_s = time.perf_counter() - start
        _restore(corrnet, torch, defaults)       # a case may have set the planner's knobs
        try:
            verdict = judge(case, oracle, mine, corrnet_dir)
        except Exception:  # noqa: BLE001 - a judging bug must not pass as a corrnet crash
            verdict = {"class": "skip", "sub": "judge failed",
                       "detail": traceback.format_exc(limit=3)[-300:]}
        verdict.update(index=index, op=case.op, oracle_s=round(oracle_s, 4),
                       corrnet_s=round(corrnet_s, 4))
        protocol.write(json.dumps(verdict) + "\n")


if __name__ == "__main__":
    main()
