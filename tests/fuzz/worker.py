"""The fuzz worker: a subprocess that runs cases with the oracle and with corrnet and judges
each outcome. Started by `runner` (``python -m fuzz.worker``), one per mode; it reads one
request a line on stdin (``{"seed": S, "index": I}``) and answers on its protocol pipe.

Limits: the worker caps its address space (RLIMIT_AS: its size after the imports plus
``FUZZ_MEMORY_MB``, default 3072, for each library's call: corrnet's limit is raised by the size
of the oracle's result, held meanwhile) so an allocation that runs away fails rather than
taking the machine; the runner kills it when a call outlives the time limit.

How an outcome is classified (the reference for the whole suite):

- ``agrees``: both returned, and every part of ``result`` is the same: tensors in dtype, shape
  and values (float64 to rtol 1e-10, float32 1e-4, float16 1e-2, each with an absolute
  tolerance of a tenth of that times the largest finite |oracle| value; NaN where the oracle
  has NaN, infinities equal; integers and bools exactly; random ops ('shape' cases) in dtype
  and shape only), Python scalars alike in type and value, sequences element by element,
  gradients None exactly where the oracle's are; a gradient at no tighter a tolerance than
  that of the narrowest floating dtype the case names (a float64 leaf's gradient through a
  float32 op, a float32 base's gradient through a float16 exponent, where PyTorch rounds
  ``exponent - 1`` to float16: its error is 2e-4 of the value, corrnet's 6e-8).
- ``clear``: both raised, and corrnet's exception is *clear*: its type is ValueError,
  TypeError, RuntimeError, IndexError, NotImplementedError or ImportError (not a
  RecursionError), its message is not empty, and it was raised by a ``raise`` statement in
  corrnet's own source (the innermost traceback frame is a line inside an ``ast.Raise`` of a
  file in the corrnet package) — or it is a TypeError about the arguments raised by Python
  itself at the call (the innermost frame is the case's own code: a signature mismatch, an
  operator the type does not define).
- ``cryptic``: corrnet raised anything else (from inside NumPy, SciPy, numba, Python's
  built-ins; AttributeError, KeyError, ZeroDivisionError, OverflowError, MemoryError,
  RecursionError, ...), whether or not the oracle raised; or its call emitted one of NumPy's
  floating-point warnings ("invalid value encountered in multiply": sub ``NumPy warning``)
  where it would otherwise agree or refuse clearly (PyTorch returns NaN and inf silently).
- ``wrong``: the outcomes differ; the subclass says how: ``value``, ``dtype``, ``shape``,
  ``grad`` (a gradient part differs, or is None on one side only), ``type`` / ``structure``
  (a non-tensor part differs), ``accepts`` (corrnet returned where the oracle raised),
  ``refused`` (corrnet raised a clear error where the oracle returned) — except for the
  ops in ``UNSUPPORTED`` (a feature corrnet documents it lacks: complex dtypes), where a clear
  refusal is ``clear``, sub ``unsupported: ...``.
- Where PyTorch contradicts its own rule for the same op (``REFUSAL_DEFECTS``,
  ``_nan_at_padding``, ``_float16_summed_in_float32``, ``_pool_window_in_padding`` and
  ``_pow_exponent_beyond_float32``, each documented with its evidence),
  a clear refusal is ``clear`` and a value ``agrees``, sub ``oracle defect: ...``; the report
  lists them. A clear refusal that is one of corrnet's deliberate differences
  (``DELIBERATE_REFUSALS``) is ``clear``, sub ``deliberate: ...``; a value where PyTorch
  refuses, for one of the reasons in ``ACCEPTS``, ``agrees`` with that sub.
- ``crash`` and ``hang`` are decided by the runner: the worker died (by a signal, or exited)
  during the corrnet call, and dies again when the case's corrnet call runs alone in a fresh
  worker (where it does not, the oracle's call had corrupted the process: PyTorch's max-pool
  backward writes past its gradient's buffer for a window entirely in the padding, and the
  heap's checks abort the next allocation: ``skip``, sub ``oracle corrupted the process``);
  the corrnet call outlived the time limit twice (the second time in a fresh worker, with six
  times the limit: a first call may be compiling numba kernels).
- ``skip``: the oracle itself could not answer (it ran out of memory or time), or the case's
  own input-making failed (a generator fault); nothing is said about corrnet.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
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


def _held_bytes(normalized) -> int:
    """The bytes of the arrays in a normalized result."""
    if isinstance(normalized, dict):
        return sum(_held_bytes(v) for v in normalized.values())
    if isinstance(normalized, tuple) and normalized and normalized[0] == "T":
        return int(normalized[3].nbytes)
    if isinstance(normalized, tuple) and normalized and normalized[0] == "L":
        return sum(_held_bytes(v) for v in normalized[1])
    return 0


def _numpy_of(tensor) -> np.ndarray:
    """A tensor's values; PyTorch's ZeroTensor (the gradient of sgn, say), which refuses
    ``.numpy()``, as the zeros it stands for."""
    try:
        return tensor.numpy()
    except RuntimeError as error:
        if "ZeroTensor" not in str(error):
            raise
        return (tensor + 0).numpy()


def normalize(value):
    """A library-neutral form of a result: ('T', dtype, shape, array) for a tensor (or a NumPy
    array from SciPy), ('S', type, value) for a Python scalar, ('L', items) for sequences,
    ('D', name) for a dtype, ('N',) for None, ('O', type name) for anything else."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    # (the arrays are views, not copies: a case's result is not touched after it returns,
    # and a copy would double the memory of a call whose output is large)
    if isinstance(value, np.ndarray):
        return ("T", f"torch.{value.dtype}", tuple(value.shape), value)
    if hasattr(value, "detach") and hasattr(value, "dtype") and hasattr(value, "shape"):
        return ("T", str(value.dtype), tuple(value.shape), _numpy_of(value.detach()))
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
                                               or "not supported between instances" in str(exc)
                                               or "can only concatenate" in str(exc))
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
    # in blocks, so that comparing a huge result needs little memory beyond it
    got, expected = got.reshape(-1), expected.reshape(-1)
    blocks = [slice(start, start + _BLOCK) for start in range(0, got.size, _BLOCK)]
    scale = 1.0
    for block in blocks:
        e = expected[block].astype(np.float64)
        finite = np.isfinite(e)
        if finite.any():
            scale = max(scale, float(np.abs(e[finite]).max()))
    nan_extra = nan_missing = inf_diff = bad = 0
    worst = 0.0
    for block in blocks:
        g, e = got[block].astype(np.float64), expected[block].astype(np.float64)
        nan_g, nan_e = np.isnan(g), np.isnan(e)
        nan_extra += int((nan_g & ~nan_e).sum())
        nan_missing += int((nan_e & ~nan_g).sum())
        inf_g, inf_e = np.isinf(g), np.isinf(e)
        inf_diff += int((inf_g != inf_e).sum()) + int((g[inf_e] != e[inf_e]).sum())
        finite = np.isfinite(e) & ~nan_g & ~inf_g
        with np.errstate(invalid="ignore"):   # (inf - inf where both are inf: not counted)
            off = finite & ~(np.abs(g - e) <= 0.1 * rtol * scale + rtol * np.abs(e))
        if off.any():
            bad += int(off.sum())
            worst = max(worst, float(np.max(np.abs(g - e)[off])))
    if nan_extra or nan_missing:
        return (f"NaN at {nan_extra} places the oracle has none, missing at {nan_missing}")
    if inf_diff:
        return f"infinities differ at {inf_diff} places"
    if bad:
        return f"{bad} of {got.size} differ (max abs diff {worst:.3g}, scale {scale:.3g})"
    return None


_BLOCK = 1 << 22  # elements compared at a time


def _count_diff(mask) -> int:
    return int(np.asarray(mask).sum())


def _narrowest_float(code: str) -> str | None:
    """The least precise floating dtype the case's code names (its tensors'), as a tolerance
    key of RTOL: a gradient computed through it is no more accurate than it."""
    for name in ("float16", "float32"):
        if name in code:
            return f"torch.{name}"
    return None


def compare(got, expected, compare_mode: str, key: str = "out",
            grad_floor: str | None = None) -> tuple[str, str] | None:
    """None when corrnet's normalized result equals the oracle's, else (subclass, detail).
    Gradients are compared at the looser of their dtype's tolerance and `grad_floor`'s (a
    float64 leaf's gradient through a float32 op carries float32's rounding, in either
    library's summation order)."""
    grad = key.startswith(("grad", "param grads"))
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            return "structure", "result keys differ"
        for k in expected:
            diff = compare(got[k], expected[k], compare_mode, k, grad_floor)
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
        tolerance = ed
        if grad and grad_floor and RTOL.get(grad_floor, 0) > RTOL.get(ed, 0):
            tolerance = grad_floor
        why = _close(ga, ea, tolerance)
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
            diff = compare(a, b, compare_mode, f"{key}[{i}]", grad_floor)
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


# -- where PyTorch contradicts itself --------------------------------------------------------
#
# A few of PyTorch 2.13's outcomes contradict its own rule for the same op elsewhere; corrnet
# follows the rule, and these outcomes are not counted against it (class ``clear`` for a
# refusal, ``agrees`` for a value, sub ``oracle defect: NAME``). Each entry is narrow: the op,
# the kind of disagreement and the argument that triggers the defect.

_BIG_INT = re.compile(r"(?<![\w.])(\d{10,19})(?![\w.])")
_POWER_OF_TWO = re.compile(r"(?<![\w.])2\*\*(\d+)(?![\w.])")
_CONV_OPS = ("F.conv1d", "F.conv2d", "F.conv_transpose1d", "F.conv_transpose2d", "nn.Conv1d",
             "nn.Conv2d", "nn.ConvTranspose1d", "nn.ConvTranspose2d")


def _int32_overflow(case: Case, refusal: str) -> bool:
    """A convolution with a size argument beyond int32: PyTorch computes its output size
    with wrapping int32 arithmetic and returns a shape that is not its formula's (conv1d of
    a length-8 input padded by 2**31 on each side gives length 2, not 2**32 + 2), where its
    other kernels refuse the value ("value cannot be converted to type int without
    overflow"). corrnet computes the formula, and refuses the output it cannot hold."""
    values = [int(n) for n in _BIG_INT.findall(case.code)]
    values += [2 ** int(n) for n in _POWER_OF_TWO.findall(case.code)]
    return case.op in _CONV_OPS and any(2**31 <= v < 2**63 for v in values)


def _transposed_dilation(case: Case, refusal: str) -> bool:
    """conv_transpose2d with a dilation below 1: PyTorch refuses it ("dilation should be
    greater than zero") except on its oneDNN path (a batch of several inputs with several
    channels), which computes."""
    return "transpose" in case.op.lower() and "dilation must be positive" in refusal


def _empty_batched_matmul(case: Case, refusal: str) -> bool:
    """matmul of operands of different dtypes: PyTorch refuses it ("expected m1 and m2 to
    have the same dtype"), except on its batched path when an operand is empty, where it
    returns an empty result in the second operand's dtype before checking."""
    return case.op.startswith("matmul.") and ("same dtype" in refusal
                                              or "needs one dtype" in refusal)


def _bool_as_size(case: Case, refusal: str) -> bool:
    """A bool among the ints of a size or a list of dims (``x.permute(0, 3, 2, True)``,
    ``x.repeat(0, 3, True)``): PyTorch reads True as 1 after the first position (where it
    refuses a bool); corrnet refuses a bool anywhere in a size, a deliberate difference."""
    return "must be a sequence of ints" in refusal and re.search(r"\b(True|False)\b",
                                                                 refusal) is not None


# deliberate differences: a clear refusal is ``clear``, sub ``deliberate: NAME``
DELIBERATE_REFUSALS = {"a bool in a size or dims": _bool_as_size}


def _transposed_output_of_size_zero(case: Case, oracle_error: str) -> bool:
    """A transposed convolution whose output has size 0 along an axis: PyTorch's own kernels
    refuse it ("Output size is too small": float64, and float32 on some shapes), its oneDNN
    path returns the empty output (float32 batches, grouped inputs); corrnet returns the
    empty output in every dtype (tests/oracle/test_issue11_geo_args.py)."""
    return "transpose" in case.op.lower() and "Output size is too small" in oracle_error


def _reduction_dim_none_or_bool(case: Case, oracle_error: str) -> bool:
    """``x.prod(dim=None)`` (the product of all) and ``var(x, dim=True)`` (dim 1): accepted
    by corrnet on purpose, refused by PyTorch's argument parser."""
    return case.op in ("reduce.prod", "reduce.var", "reduce.std") and (
        "dim=None" in case.code or "dim=True" in case.code or "dim=False" in case.code) and (
        "invalid combination" in oracle_error or "must be int, not NoneType" in oracle_error)


def _atan2_backward_of_a_bool(case: Case, oracle_error: str) -> bool:
    """atan2 with a bool tensor and a floating one that requires grad: PyTorch computes the
    value (the bool promoted), but its backward negates the bool operand and raises
    ("Negation, the `-` operator, on a bool tensor is not supported"); corrnet differentiates
    it as the promoted value, as for any other integer operand."""
    return case.op.endswith(("atan2", "arctan2")) and "on a bool tensor is not supported" \
        in oracle_error


def _unpool_of_an_empty_stride(case: Case, oracle_error: str) -> bool:
    """max_unpool with stride=(): PyTorch's max_pool takes an empty stride as the default
    (the kernel size), but its max_unpool's Python wrapper indexes it and raises IndexError
    ("tuple index out of range"); corrnet takes the default for both (seed 20261233)."""
    return "unpool" in case.op.lower() and "stride=()" in case.code and \
        "tuple index out of range" in oracle_error


def _bool_base_power(case: Case, oracle_error: str) -> bool:
    """``True ** x`` (or False) with x wanting a gradient: PyTorch computes the power (the
    bool as the number 1 or 0, node PowBackward2) but its backward fails an internal assert
    ("unknown ivalue tag 4": a Scalar holding a bool); corrnet differentiates it as the
    number's power, as ``1 ** x`` (seed 20261236)."""
    return case.op == "binary.r**" and "unknown ivalue tag" in oracle_error and (
        "True **" in case.code or "False **" in case.code)


# accepted by corrnet where PyTorch refuses: ``agrees``, sub ``oracle defect: NAME`` or
# ``deliberate: NAME``
ACCEPTS = {"oracle defect: PyTorch's backward of a bool number ** tensor fails an internal "
           "assert": _bool_base_power,
           "oracle defect: PyTorch's atan2 backward negates a bool operand":
               _atan2_backward_of_a_bool,
           "oracle defect: PyTorch's max_unpool indexes an empty stride that its max_pool "
           "takes as the default": _unpool_of_an_empty_stride,
           "oracle defect: PyTorch's native transposed convolution refuses an output of "
           "size 0 that its oneDNN path returns": _transposed_output_of_size_zero,
           "deliberate: prod(dim=None) and a bool dim accepted": _reduction_dim_none_or_bool}


def _half_fill_of_one_element(case: Case, refusal: str) -> bool:
    """A float16 fill (full, fill_, full_like, ...) with a finite number beyond float16's
    range: PyTorch refuses it ("value cannot be converted to type c10::Half without
    overflow") for 0 or 2 and more elements, and for float32 at any size, but gives inf for
    a single element (a fast path without the check); corrnet refuses it at every size."""
    return case.op.startswith(("creation.", "binary.fill_")) and "c10::Half without overflow" \
        in refusal


def _global_average_of_nothing(case: Case, refusal: str) -> bool:
    """An adaptive average pool to an output of all 1s, of an input with an empty spatial
    dimension: PyTorch refuses empty spatial dimensions ("Expected input to have non-zero
    size for non-batch dimensions") for every other output size and in its adaptive max
    pools, but its global-average shortcut (output 1: a mean over the spatial dimensions)
    skips the check and returns NaN; corrnet refuses it at every output size."""
    return case.op.startswith(("F.adaptive_avg_pool", "nn.AdaptiveAvgPool")) and \
        "empty spatial dimension" in refusal


def _circular_pad_past_the_crop(case: Case, refusal: str) -> bool:
    """Circular padding with a negative pad on one side: PyTorch crops first, then wraps
    around what is left, but checks each pad against the size before cropping. A pad larger
    than what is left reads cells its kernel has not written: PyTorch returns uninitialized
    memory (CircularPad2d((2, -1)) of a row [0, 1]: [3.5e-37, 0, 0], other numbers each
    call). corrnet refuses such a pad, naming the size after cropping (seed 20261232)."""
    return ("ircular" in case.op or "circular" in case.code) and \
        "may wrap around at most once" in refusal and "(after cropping)" in refusal


REFUSAL_DEFECTS = {"int32 overflow in PyTorch's convolution sizes": _int32_overflow,
                   "PyTorch's circular pad reads past what its crop leaves":
                       _circular_pad_past_the_crop,
                   "PyTorch's adaptive average pool to 1 skips its empty-input check":
                       _global_average_of_nothing,
                   "PyTorch's float16 fill of one element skips its range check":
                       _half_fill_of_one_element,
                   "PyTorch's oneDNN transposed convolution skips its dilation check":
                       _transposed_dilation,
                   "PyTorch's batched matmul skips its dtype check for empty operands":
                       _empty_batched_matmul}


_MAX_POOLS = {"F.max_pool1d": 1, "F.max_pool2d": 2, "nn.MaxPool1d": 1, "nn.MaxPool2d": 2}


def _pool_window_in_padding(case: Case, diff: tuple) -> bool:
    """A max-pool gradient where some window lies entirely in the padding (dilation makes
    that possible: length 2, padding 1, dilation 3). PyTorch's CPU kernel records for such a
    window an index past the input's plane and its backward adds the gradient there, into
    the next channel's plane (or past the tensor); corrnet's window has no input cell and
    passes no gradient on. Read from the case's code: x1's shape and the pool's arguments."""
    if case.op not in _MAX_POOLS or diff[0] != "grad":
        return False
    try:
        return _some_window_in_padding(case)
    except (TypeError, ValueError, IndexError, SyntaxError):   # hostile arguments: not this
        return False


def _some_window_in_padding(case: Case) -> bool:
    """`_pool_window_in_padding`'s geometry, from the case's code."""
    tree = ast.parse(case.code)
    shape = arguments = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name == "arr" and shape is None:
            shape = ast.literal_eval(node.args[0])
        elif name.endswith(("max_pool1d", "max_pool2d", "MaxPool1d", "MaxPool2d")):
            arguments = {k.arg: ast.literal_eval(k.value) for k in node.keywords
                         if k.arg and isinstance(k.value, (ast.Constant, ast.Tuple))}
    if shape is None or arguments is None or "kernel_size" not in arguments:
        return False
    dims = _MAX_POOLS[case.op]

    def pair(value, default):
        value = default if value is None else value
        values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        return values * dims if len(values) == 1 else values

    kernel = pair(arguments["kernel_size"], 1)
    stride = pair(arguments.get("stride") or arguments["kernel_size"], 1)
    padding, dilation = pair(arguments.get("padding"), 0), pair(arguments.get("dilation"), 1)
    ceil = bool(arguments.get("ceil_mode", False))
    for axis in range(dims):
        size = shape[len(shape) - dims + axis]
        k, s, p, d = kernel[axis], stride[axis], padding[axis], dilation[axis]
        if not all(type(v) is int for v in (size, k, s, p, d)) or min(k, s, d) < 1:
            return False
        span = size + 2 * p - d * (k - 1) - 1
        outs = (-(-span // s) if ceil else span // s) + 1
        if ceil and (outs - 1) * s >= size + p:
            outs -= 1
        for o in range(max(outs, 0)):
            if all(not 0 <= o * s - p + j * d < size for j in range(k)):
                return True
    return False


def _nan_at_padding(case: Case, detail: str) -> bool:
    """A convolution's gradient in float32 with an infinite input: where an infinite value
    meets the zero padding, PyTorch's float64 kernels give NaN (inf x 0, as a direct sum
    over the padded input does) but its float32 oneDNN kernels skip the padding. corrnet
    computes both dtypes as the float64 path does."""
    return (case.op in _CONV_OPS and "NaN at" in detail and "missing at 0" in detail
            and "float32" in case.code)


@functools.cache
def _torch_sums_float16_in_float32() -> bool:
    """Whether PyTorch on this CPU runs float16 convolutions on oneDNN, summing in float32
    (CPUs with AVX512-FP16: Intel's Sapphire Rapids and later), rather than on its own
    kernels, which round each product to float16 ([300, 300] transposed-convolved with
    [300, -300]: [inf, 0, -inf] against [inf, nan, -inf])."""
    import torch

    out = torch.nn.functional.conv_transpose1d(
        torch.tensor([[[300.0, 300.0]]], dtype=torch.float16),
        torch.tensor([[[300.0, -300.0]]], dtype=torch.float16))
    return not bool(torch.isnan(out).any())


def _float16_summed_in_float32(case: Case, detail: str) -> bool:
    """A float16 convolution whose NaN or inf places differ, on a CPU where PyTorch sums
    float16 in float32 (`_torch_sums_float16_in_float32`): corrnet follows PyTorch's own
    float16 kernels (each product rounded to float16, as on CPUs without AVX512-FP16;
    tests/oracle/test_issue11_geo_args.py compares them where PyTorch runs them)."""
    return (case.op in _CONV_OPS and "float16" in case.code
            and ("NaN at" in detail or "inf" in detail)
            and _torch_sums_float16_in_float32())


_POW_OPS = ("binary.**", "binary.pow", "binary.r**", "unary.pow")


def _pow_exponent_beyond_float32(case: Case, detail: str) -> bool:
    """A float32 power whose Python-int exponent (or that exponent minus 1, the gradient's)
    float32 cannot hold: PyTorch's vectorized loop rounds the exponent to float32 while its
    scalar loop (short tensors, the tail of longer ones) keeps it in double, so that
    ``full((n,), -1.0000001) ** 16777217`` is -7.389056 for n = 17 and +7.389055 for n = 64
    (16777217 rounds to the even 16777216). corrnet rounds it as the vectorized loop does,
    at every length."""
    if case.op not in _POW_OPS or "float32" not in case.code:
        return False
    values = [int(n) for n in _BIG_INT.findall(case.code)]
    values += [2 ** int(n) for n in _POWER_OF_TWO.findall(case.code)]
    return any(float(np.float32(v - one)) != v - one for v in values for one in (0, 1))


def judge(case: Case, oracle_outcome, corrnet_outcome, corrnet_dir: str) -> dict:
    """The verdict on one case (the rules in the module docstring). Each outcome is `_run`'s
    (ok, value, NumPy warnings); the warnings may be left out. A warning counts where corrnet's
    own code called NumPy (not the case's input-making)."""
    verdict = _judge_outcomes(case, oracle_outcome[:2], corrnet_outcome[:2], corrnet_dir)
    warned = [f"{message} (from {os.path.relpath(mine[-1], corrnet_dir)})"
              for message, frames in (corrnet_outcome[2] if len(corrnet_outcome) > 2 else ())
              for mine in [[f for f in frames if f.startswith(corrnet_dir + os.sep)]] if mine]
    if warned and verdict["class"] in ("agrees", "clear"):
        return {**verdict, "class": "cryptic", "sub": "NumPy warning", "detail": warned[0]}
    return verdict


def _judge_outcomes(case: Case, oracle_outcome, corrnet_outcome, corrnet_dir: str) -> dict:
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
        if o_ok:
            refusal = str(c_val)
            for name, applies in REFUSAL_DEFECTS.items():
                if applies(case, refusal):
                    return {**verdict, "class": "clear", "sub": f"oracle defect: {name}"}
            for name, applies in DELIBERATE_REFUSALS.items():
                if applies(case, refusal):
                    return {**verdict, "class": "clear", "sub": f"deliberate: {name}"}
        return {**verdict, "class": "clear" if not o_ok else "wrong",
                "sub": "" if not o_ok else "refused"}
    if not o_ok:
        for name, applies in ACCEPTS.items():
            if applies(case, str(o_val)):
                return {**verdict, "class": "agrees", "sub": name}
        return {**verdict, "class": "wrong", "sub": "accepts"}
    diff = compare(c_val, o_val, case.compare, grad_floor=_narrowest_float(case.code))
    if diff is None:
        return {"class": "agrees", "sub": ""}
    if diff[0] == "grad" and _nan_at_padding(case, diff[1]):
        return {"class": "agrees", "sub": "oracle defect: PyTorch's float32 convolution "
                                          "skips the padding where float64 gives NaN",
                "detail": diff[1][:300]}
    if _pool_window_in_padding(case, diff):
        return {"class": "agrees", "sub": "oracle defect: PyTorch's max-pool backward writes "
                                          "a window of padding only past the input",
                "detail": diff[1][:300]}
    if _pow_exponent_beyond_float32(case, diff[1]):
        return {"class": "agrees", "sub": "oracle defect: PyTorch's float32 pow rounds a "
                                          "scalar exponent in its vectorized loop only",
                "detail": diff[1][:300]}
    if _float16_summed_in_float32(case, diff[1]):
        return {"class": "agrees", "sub": "oracle defect: PyTorch on this CPU sums float16 "
                                          "convolutions in float32 (AVX512-FP16)",
                "detail": diff[1][:300]}
    return {"class": "wrong", "sub": diff[0], "detail": diff[1][:300]}


# -- the loop -------------------------------------------------------------------------------

_NUMPY_WARNING = re.compile(r"encountered in ")   # NumPy's floating-point warnings


def _run(code, lib, scipy_module=None):
    """(True, the case's result) or (False, the exception), and the NumPy floating-point
    warnings the call emitted ("invalid value encountered in multiply"), as (message, the
    files of the frames on the stack when it was emitted) pairs."""
    warned = []

    def note(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RuntimeWarning) and _NUMPY_WARNING.search(str(message)):
            frames = [f"{frame.filename}:{frame.lineno}" for frame in traceback.extract_stack()]
            warned.append((str(message), frames))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = note      # (catch_warnings puts the original back)
        try:
            ok, value = True, execute(code, lib, scipy_module)
        except Exception as exc:  # noqa: BLE001 - every exception is an outcome to judge
            ok, value = False, exc
    return ok, value, warned


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
    # each library gets `budget` for its own call: while corrnet runs, the oracle's result
    # (held for the comparison) is added to the soft limit, up to the hard one
    limit = size + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit + budget))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))     # a crash leaves no core file
    protocol.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")

    defaults = _settings(corrnet, torch)
    for line in sys.stdin:
        request = json.loads(line)
        index = request["index"]
        case = make_case(request["seed"], index)
        if request.get("corrnet_only"):   # the runner's check after a crash (runner.run_chunk)
            protocol.write(json.dumps({"index": index, "phase": "corrnet"}) + "\n")
            mine = _run(case.code, corrnet)
            _restore(corrnet, torch, defaults)
            protocol.write(json.dumps({"index": index, "class": "skip", "sub": "corrnet alone",
                                       "corrnet_ok": mine[0]}) + "\n")
            continue
        protocol.write(json.dumps({"index": index, "phase": "oracle"}) + "\n")
        start = time.perf_counter()
        if case.oracle == "scipy":
            oracle = _run(case.oracle_code, None, scipy)
        else:
            oracle = _run(case.code, torch)
        oracle_s = time.perf_counter() - start
        protocol.write(json.dumps({"index": index, "phase": "corrnet"}) + "\n")
        held = _held_bytes(oracle[1]) if oracle[0] else 0
        resource.setrlimit(resource.RLIMIT_AS, (limit + min(held, budget), limit + budget))
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
        del oracle, mine  # before the next case's calls, which have their own budget
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit + budget))
        protocol.write(json.dumps(verdict) + "\n")


if __name__ == "__main__":
    main()
