"""Shared oracle helper: run one op in corrnet and in PyTorch and compare everything.

`check_op` is the single entry point.  It is deliberately generic so that every conv/pool
option (and later ones such as ``return_indices``) can reuse it:

* the op is given as two callables (one per library) taking the same positional
  tensors, so any keyword configuration is closed over by the caller;
  ``check_functional("conv2d", x, w, b, stride=2)`` is the shortcut for ops that have the
  same name in ``corrnet.nn.functional`` and ``torch.nn.functional``;
* inputs are NumPy arrays; anything else (``None`` for ``bias``, a kernel size, ...) is
  passed through unchanged;
  floating arrays get ``requires_grad`` unless ``requires_grad`` says otherwise;
* if PyTorch rejects the call, corrnet must reject it too (with an exception of the
  RuntimeError/ValueError/TypeError family, or of PyTorch's own type);
* otherwise the forward values, shapes, dtypes and ``requires_grad`` flags of every
  output are compared, a random upstream gradient is back-propagated through both and the
  gradient of every input is compared (value, shape, dtype).

Tolerances: float32 rtol 1e-4, float64 rtol 1e-10; the absolute tolerance is scaled by
the magnitude of the reference so that sums of many terms are judged fairly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as tt
import torch.nn.functional as tF

import corrnet as ct
from corrnet.nn import functional as cF

from torch_compare import assert_scaled_close  # on sys.path through tests/conftest.py

# Exceptions we accept from corrnet when PyTorch rejects a configuration.
ERROR_FAMILY: tuple[type[BaseException], ...] = (RuntimeError, ValueError, TypeError)

# (rtol, atol) per floating dtype; atol is multiplied by max(1, max|reference|).
TOLERANCES = {
    "float16": (1e-2, 1e-2),
    "bfloat16": (1e-2, 1e-2),
    "float32": (1e-4, 1e-5),
    "float64": (1e-10, 1e-10),
}


# --------------------------------------------------------------------------- utilities
def dtype_name(dtype: Any) -> str:
    """'torch.float32' / 'corrnet.float32' / np.float32 -> 'float32'."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype).name
    return str(dtype).rsplit(".", 1)[-1]


def to_numpy(t: Any) -> np.ndarray:
    """A corrnet/torch tensor (or array) -> a NumPy array copy."""
    if isinstance(t, np.ndarray):
        return t.copy()
    if hasattr(t, "detach"):
        t = t.detach()
    return np.array(t.numpy(), copy=True)


def tolerances(dtype: Any) -> tuple[float, float]:
    return TOLERANCES.get(dtype_name(dtype), (0.0, 0.0))


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str,
                 rtol: float | None = None, atol: float | None = None) -> None:
    """Shape, dtype and value comparison with a magnitude-scaled atol."""
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}")
    assert actual.dtype == expected.dtype, (
        f"{what}: dtype {actual.dtype} != expected {expected.dtype}")
    d_rtol, d_atol = tolerances(expected.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    if expected.dtype.kind in "fc" and expected.size:
        assert_scaled_close(actual, expected, rtol, atol, what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def random_array(rng: np.random.Generator, shape: Sequence[int], dtype: Any = np.float64,
                 low: float = -1.0, high: float = 1.0) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.integers(int(low), int(high) + 1, size=tuple(shape)).astype(dtype)
    return rng.uniform(low, high, size=tuple(shape)).astype(dtype)


def distinct_array(rng: np.random.Generator, shape: Sequence[int],
                   dtype: Any = np.float64) -> np.ndarray:
    """Values without ties (a shuffled grid, spacing 1/8), e.g. for max pooling."""
    n = int(np.prod(shape))
    vals = (rng.permutation(n) - n / 2.0) / 8.0
    return vals.reshape(tuple(shape)).astype(dtype)


def as_pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def conv_out_len(size: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a convolution along one dimension (may be <= 0: invalid)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# ----------------------------------------------------------------------- main helper
@dataclass
class OpResult:
    """What `check_op` saw, for further assertions by the caller."""

    rejected: bool
    torch_error: BaseException | None = None
    corrnet_error: BaseException | None = None
    torch_outputs: list[Any] = field(default_factory=list)
    corrnet_outputs: list[Any] = field(default_factory=list)


def _make(lib: Any, arr: Any, requires_grad: bool) -> Any:
    if arr is None or not isinstance(arr, np.ndarray):
        return arr
    if requires_grad:
        return lib.tensor(arr.copy(), requires_grad=True)
    return lib.tensor(arr.copy())


def _outputs(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_op(
    corrnet_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    arrays: Sequence[np.ndarray | None],
    *,
    requires_grad: Sequence[bool] | bool | None = None,
    grad: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    name: str = "op",
) -> OpResult:
    """Run ``torch_fn(*tensors)`` and ``corrnet_fn(*tensors)`` on the same inputs and compare.

    ``requires_grad``: one flag per array (default: True for floating arrays); ignored for
    non-floating arrays and ``None``.  ``grad=False`` skips the backward comparison.
    """
    arrays = list(arrays)
    if requires_grad is None or isinstance(requires_grad, bool):
        flag = True if requires_grad is None else requires_grad
        requires_grad = [flag] * len(arrays)
    rg = [bool(f) and isinstance(a, np.ndarray) and a.dtype.kind == "f"
          for a, f in zip(arrays, requires_grad, strict=True)]

    t_in = [_make(tt, a, f) for a, f in zip(arrays, rg, strict=True)]
    try:
        t_out = torch_fn(*t_in)
    except ERROR_FAMILY + (IndexError,) as exc:
        c_in = [_make(ct, a, f) for a, f in zip(arrays, rg, strict=True)]
        accepted = ERROR_FAMILY + (type(exc),)  # torch's own type is always fine
        try:
            corrnet_fn(*c_in)
        except accepted as c_exc:
            return OpResult(rejected=True, torch_error=exc, corrnet_error=c_exc)
        except Exception as c_exc:  # report the wrong exception family clearly
            raise AssertionError(
                f"{name}: torch rejects with {type(exc).__name__}({exc}); corrnet raised "
                f"{type(c_exc).__name__}({c_exc}), expected one of "
                f"{sorted({e.__name__ for e in accepted})}") from c_exc
        raise AssertionError(
            f"{name}: torch rejects the call with {type(exc).__name__}({exc}) "
            f"but corrnet accepted it") from None

    c_in = [_make(ct, a, f) for a, f in zip(arrays, rg, strict=True)]
    try:
        c_out = corrnet_fn(*c_in)
    except Exception as exc:
        raise AssertionError(
            f"{name}: torch accepts the call but corrnet raised "
            f"{type(exc).__name__}: {exc}") from exc

    t_outs, c_outs = _outputs(t_out), _outputs(c_out)
    assert len(c_outs) == len(t_outs), f"{name}: {len(c_outs)} outputs, torch has {len(t_outs)}"
    for i, (c, t) in enumerate(zip(c_outs, t_outs, strict=True)):
        what = f"{name} output[{i}]"
        assert tuple(c.shape) == tuple(t.shape), (
            f"{what}: shape {tuple(c.shape)} != torch {tuple(t.shape)}")
        assert dtype_name(c.dtype) == dtype_name(t.dtype), (
            f"{what}: dtype {c.dtype} != torch {t.dtype}")
        assert bool(c.requires_grad) == bool(t.requires_grad), (
            f"{what}: requires_grad {c.requires_grad} != torch {t.requires_grad}")
        assert_close(to_numpy(c), to_numpy(t), what, rtol, atol)

    result = OpResult(rejected=False, torch_outputs=t_outs, corrnet_outputs=c_outs)
    if not grad or not any(rg):
        return result

    # Backward with a random upstream gradient on every differentiable output.
    rng = np.random.default_rng(seed)
    diff = [i for i, t in enumerate(t_outs) if t.requires_grad]
    if not diff:
        return result
    ups = {i: rng.standard_normal(tuple(t_outs[i].shape)).astype(to_numpy(t_outs[i]).dtype)
           for i in diff}
    if len(diff) == 1:
        (i,) = diff
        t_outs[i].backward(tt.tensor(ups[i]))
        c_outs[i].backward(ct.tensor(ups[i]))
    else:
        tt.autograd.backward([t_outs[i] for i in diff], [tt.tensor(ups[i]) for i in diff])
        loss = None
        for i in diff:
            term = (c_outs[i] * ct.tensor(ups[i])).sum()
            loss = term if loss is None else loss + term
        loss.backward()

    for k, (a, f, t, c) in enumerate(zip(arrays, rg, t_in, c_in, strict=True)):
        if not f:
            if isinstance(a, np.ndarray):
                assert getattr(c, "grad", None) is None, (
                    f"{name}: input[{k}] does not require grad but got a .grad")
            continue
        what = f"{name} grad of input[{k}] (shape {a.shape})"
        if t.grad is None:
            assert c.grad is None or not np.any(to_numpy(c.grad)), f"{what}: torch has no grad"
            continue
        assert c.grad is not None, f"{what}: corrnet grad is None"
        assert tuple(c.grad.shape) == tuple(t.grad.shape), (
            f"{what}: shape {tuple(c.grad.shape)} != torch {tuple(t.grad.shape)}")
        assert dtype_name(c.grad.dtype) == dtype_name(t.grad.dtype), (
            f"{what}: dtype {c.grad.dtype} != torch {t.grad.dtype}")
        assert_close(to_numpy(c.grad), to_numpy(t.grad), what, rtol, atol)
    return result


def check_functional(op: str, *arrays: np.ndarray | None, requires_grad=None, grad=True,
                     rtol=None, atol=None, seed=0, **kwargs: Any) -> OpResult:
    """``check_op`` for ``corrnet.nn.functional.<op>`` vs ``torch.nn.functional.<op>``.

    Keyword arguments are forwarded to both (e.g. ``stride=(1, 2), ceil_mode=True``).
    """
    c_op, t_op = getattr(cF, op), getattr(tF, op)
    desc = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    shapes = ", ".join(f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else repr(a)
                       for a in arrays)
    return check_op(
        lambda *ts: c_op(*ts, **kwargs),
        lambda *ts: t_op(*ts, **kwargs),
        arrays,
        requires_grad=requires_grad,
        grad=grad,
        rtol=rtol,
        atol=atol,
        seed=seed,
        name=f"{op}({shapes}; {desc})",
    )
