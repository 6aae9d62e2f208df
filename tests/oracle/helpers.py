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

`check_module` does the same for a layer: ``corrnet.nn.<Name>(*args, **kwargs)`` and
``torch.nn.<Name>(...)`` built alike (construction must fail alike), the same random
parameters put in both, the layer called on the same inputs, and the parameter gradients
compared as well.

Tolerances: float32 rtol 1e-4, float64 rtol 1e-10; the absolute tolerance is scaled by
the magnitude of the reference so that sums of many terms are judged fairly.

Example budget: every hypothesis test of the oracle suite takes its settings from
`oracle_settings(n)`, which multiplies its CI-size example count ``n`` by the factor of
the profile named by the environment variable ``CORRNET_ORACLE``: unset (or ``ci``) = 1,
``nightly`` = `NIGHTLY_FACTOR` (about 50,000 examples over the whole suite), or a number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch as tt
import torch.nn.functional as tF
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

import corrnet as ct
from corrnet.nn import functional as cF

from torch_compare import (  # on sys.path through tests/conftest.py
    assert_scaled_close,
    corrnet_tensor,
    to_test_device,
    to_torch_device,
    torch_tensor,
)

# Exceptions we accept from corrnet when PyTorch rejects a configuration.
ERROR_FAMILY: tuple[type[BaseException], ...] = (RuntimeError, ValueError, TypeError)

# (rtol, atol) per floating dtype; atol is multiplied by max(1, max|reference|).
TOLERANCES = {
    "float16": (1e-2, 1e-2),
    "bfloat16": (1e-2, 1e-2),
    "float32": (1e-4, 1e-5),
    "float64": (1e-10, 1e-10),
}


# ---------------------------------------------------------------------- example budget
PROFILE_ENV = "CORRNET_ORACLE"
# CI size is ~7,000 examples over tests/oracle; nightly multiplies every test by this.
NIGHTLY_FACTOR = 7.0
PROFILE_FACTORS = {"": 1.0, "ci": 1.0, "nightly": NIGHTLY_FACTOR}


def example_factor() -> float:
    """The multiplier of every oracle test's example count, from ``$CORRNET_ORACLE``."""
    name = os.environ.get(PROFILE_ENV, "").strip().lower()
    if name in PROFILE_FACTORS:
        return PROFILE_FACTORS[name]
    try:
        factor = float(name)
    except ValueError:
        raise ValueError(f"{PROFILE_ENV}={name!r}: expected 'ci', 'nightly' or a number") from None
    if not factor > 0:
        raise ValueError(f"{PROFILE_ENV}={name!r}: the factor must be positive")
    return factor


def profile_name() -> str:
    return os.environ.get(PROFILE_ENV, "").strip().lower() or "ci"


_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

# The profile also sets the defaults of any hypothesis test here that names no settings.
settings.register_profile(
    f"corrnet-oracle-{profile_name()}",
    max_examples=max(1, math.ceil(100 * example_factor())),
    deadline=None,
    suppress_health_check=_SUPPRESSED,
)


def oracle_settings(max_examples: int, **kwargs: Any) -> settings:
    """Settings for an oracle test that runs ``max_examples`` examples at CI size."""
    return settings(
        max_examples=max(1, math.ceil(max_examples * example_factor())),
        deadline=None,
        suppress_health_check=_SUPPRESSED,
        **kwargs,
    )


# --------------------------------------------------------------------------- utilities
def dtype_name(dtype: Any) -> str:
    """'torch.float32' / 'corrnet.float32' / np.float32 -> 'float32'."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype).name
    return str(dtype).rsplit(".", 1)[-1]


def to_numpy(t: Any) -> np.ndarray:
    """A corrnet/torch tensor (or array) -> a NumPy array copy (from its device first)."""
    if isinstance(t, np.ndarray):
        return t.copy()
    if hasattr(t, "detach"):
        t = t.detach().cpu()
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


# ------------------------------------------------------------- strategy building blocks
def rarely(draw) -> bool:
    """Rarely True (1 in 16): each knob of a "free" configuration is usually valid."""
    return draw(st.integers(0, 15)) == 7


def free_int(draw, lo: int, hi: int, bad: Sequence[int]) -> int:
    """Usually an int in [lo, hi]; rarely one of the ``bad`` values."""
    return draw(st.sampled_from(list(bad))) if rarely(draw) else draw(st.integers(lo, hi))


def int_or_pair(draw, a: int, b: int) -> int | tuple[int, int]:
    """``a`` (an int) when both dimensions agree, sometimes; else the pair ``(a, b)``."""
    if a == b and draw(st.booleans()):
        return a
    return (a, b)


def drop_none(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments that are not None (None = leave the argument out)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def note_verdict(res: OpResult) -> OpResult:
    """For "free" configurations: either verdict is fine once corrnet agrees with torch."""
    event("rejected by torch" if res.rejected else "accepted by torch")
    return res


def assert_accepted(res: OpResult) -> OpResult:
    """For configurations built to be valid."""
    assert not res.rejected, f"valid config rejected by torch: {res.torch_error}"
    return res


# ----------------------------------------------------------------------- main helper
@dataclass
class OpResult:
    """What `check_op` saw, for further assertions by the caller."""

    rejected: bool
    torch_error: BaseException | None = None
    corrnet_error: BaseException | None = None
    torch_outputs: list[Any] = field(default_factory=list)
    corrnet_outputs: list[Any] = field(default_factory=list)


def tensor_of(lib: Any, arr: Any, requires_grad: bool = False) -> Any:
    """`arr` (copied) as a tensor of `lib` (corrnet or torch) on that library's test device
    (torch_compare's switch); anything but a NumPy array is returned as it is. Tests that
    build tensors for both libraries (``lib.tensor(arr)``) use this instead."""
    if arr is None or not isinstance(arr, np.ndarray):
        return arr
    make = corrnet_tensor if lib is ct else torch_tensor
    if requires_grad:
        return make(arr.copy(), requires_grad=True)
    return make(arr.copy())


_make = tensor_of


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
    A corrnet module given as ``corrnet_fn`` (its parameters and buffers) goes to the test
    device in place, as the inputs do (torch_compare's switch); a torch module to PyTorch's.
    """
    if isinstance(corrnet_fn, ct.nn.Module):
        corrnet_fn = to_test_device(corrnet_fn)
    if isinstance(torch_fn, tt.nn.Module):
        torch_fn = to_torch_device(torch_fn)
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
    if any(t_outs[i].numel() == 0 for i in diff):
        # PyTorch's own backward fails on some empty outputs: the adaptive pools refuse them
        # ("Expected grad_output to have non-zero size"), and so must corrnet; max_unpool's
        # backward reads its indices in the empty output ("index 0 is out of bounds"), and
        # so does corrnet's; otherwise corrnet's gradient of an empty output is all zeros
        t_loss = sum(t_outs[i].sum() for i in diff)
        loss = None
        for i in diff:
            loss = c_outs[i].sum() if loss is None else loss + c_outs[i].sum()
        try:
            t_loss.backward()
        except RuntimeError as exc:
            if "Expected grad_output to have non-zero size" in str(exc):
                with pytest.raises(RuntimeError, match="non-zero size"):
                    loss.backward()
                return result
            if "out of bounds" in str(exc):
                with pytest.raises(RuntimeError, match="out of bounds"):
                    loss.backward()
                return result
        loss.backward()
        for k, c in enumerate(c_in):
            if rg[k]:
                assert c.grad is None or not np.any(to_numpy(c.grad)), (
                    f"{name}: nonzero gradient of input[{k}] through an empty output")
        return result
    ups = {i: rng.standard_normal(tuple(t_outs[i].shape)).astype(to_numpy(t_outs[i]).dtype)
           for i in diff}
    if len(diff) == 1:
        (i,) = diff
        t_outs[i].backward(torch_tensor(ups[i]))
        c_outs[i].backward(corrnet_tensor(ups[i]))
    else:
        tt.autograd.backward([t_outs[i] for i in diff], [torch_tensor(ups[i]) for i in diff])
        loss = None
        for i in diff:
            term = (c_outs[i] * corrnet_tensor(ups[i])).sum()
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


def _build(lib_nn: Any, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    return getattr(lib_nn, name)(*args, **kwargs)


def check_module(
    name: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    arrays: Sequence[np.ndarray | None] = (),
    call_kwargs: dict[str, Any] | None = None,
    *,
    dtype: Any = np.float64,
    requires_grad: Sequence[bool] | bool | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
) -> OpResult:
    """``corrnet.nn.<name>`` against ``torch.nn.<name>``, built with the same arguments.

    Construction must succeed or fail alike.  Every parameter of the torch layer is replaced
    (in both layers) by the same random array of ``dtype``; the layers are then called on
    ``arrays`` (positional) and ``call_kwargs`` through `check_op`, which compares outputs
    and input gradients; the parameter gradients are compared here.
    """
    kwargs = dict(kwargs or {})
    call_kwargs = dict(call_kwargs or {})
    desc = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    label = f"nn.{name}({desc})"
    try:
        t_mod = _build(tt.nn, name, args, kwargs)
    except ERROR_FAMILY as exc:
        try:
            _build(ct.nn, name, args, kwargs)
        except ERROR_FAMILY + (type(exc),) as c_exc:
            return OpResult(rejected=True, torch_error=exc, corrnet_error=c_exc)
        raise AssertionError(f"{label}: torch refuses to build it ({type(exc).__name__}: "
                             f"{exc}) but corrnet builds it") from None
    try:
        c_mod = _build(ct.nn, name, args, kwargs)
    except Exception as exc:
        raise AssertionError(f"{label}: torch builds it but corrnet raised "
                             f"{type(exc).__name__}: {exc}") from exc

    rng = np.random.default_rng(seed + 1)
    params = {}
    for pname, p in list(t_mod.named_parameters()):
        arr = random_array(rng, tuple(p.shape), dtype, -0.5, 0.5)
        params[pname] = arr
        setattr(t_mod, pname, tt.nn.Parameter(tt.tensor(arr.copy())))
        setattr(c_mod, pname, ct.nn.Parameter(ct.tensor(arr.copy())))
    c_names = {n for n, _ in c_mod.named_parameters()}
    assert c_names == set(params), f"{label}: parameters {sorted(c_names)} != {sorted(params)}"
    t_mod, c_mod = to_torch_device(t_mod), to_test_device(c_mod)

    shapes = ", ".join(f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else repr(a)
                       for a in arrays)
    call = ", ".join(f"{k}={v!r}" for k, v in call_kwargs.items())
    res = check_op(
        lambda *ts: c_mod(*ts, **call_kwargs),
        lambda *ts: t_mod(*ts, **call_kwargs),
        arrays,
        requires_grad=requires_grad,
        rtol=rtol,
        atol=atol,
        seed=seed,
        name=f"{label}({shapes}{'; ' + call if call else ''})",
    )
    if res.rejected or not params:
        return res
    t_params = dict(t_mod.named_parameters())
    c_params = dict(c_mod.named_parameters())
    for pname in params:
        t_grad, c_grad = t_params[pname].grad, c_params[pname].grad
        what = f"{label}: grad of parameter {pname!r}"
        if t_grad is None:
            assert c_grad is None or not np.any(to_numpy(c_grad)), f"{what}: torch has none"
            continue
        assert c_grad is not None, f"{what}: corrnet grad is None"
        assert dtype_name(c_grad.dtype) == dtype_name(t_grad.dtype), (
            f"{what}: dtype {c_grad.dtype} != torch {t_grad.dtype}")
        assert_close(to_numpy(c_grad), to_numpy(t_grad), what, rtol, atol)
    return res
