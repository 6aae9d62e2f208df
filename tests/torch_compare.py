"""Helpers shared by the test files that compare corrnet with PyTorch.

PyTorch is the oracle: a corrnet tensor must equal the torch tensor computed from the same
NumPy input in dtype, shape and values (float32 to rtol 1e-4, float64 to rtol 1e-10, with an
absolute tolerance of a tenth of that scaled by the reference's magnitude; integers and
booleans exactly).

Importable as ``torch_compare`` from every test file: ``tests/conftest.py`` puts this folder
on ``sys.path``.

The device switch (``make test-gpu``): with ``CORRNET_TEST_DEVICE=cuda`` the corrnet inputs
and modules the oracle helpers build (`both`, `corrnet_tensor`, `to_test_device`, and
``oracle/helpers.py``'s ``check_op`` / ``check_module``) are put on corrnet's CUDA device,
and every result comes back with ``.cpu()`` before it is compared (`numpy_of`). PyTorch runs
on the CPU, or on its own CUDA device where ``CORRNET_TEST_TORCH_DEVICE=cuda`` asks (TF32
off, so float32 stays float32). Unset, everything is on the CPU as before.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from hypothesis import strategies as st

import corrnet as cn

ALL_DTYPES = ("float32", "float64", "int64", "int32", "bool")
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int64", "int32")
NP_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
}

# rtol per floating torch dtype; assert_same uses atol = rtol / 10 (scaled by magnitude)
FLOAT_RTOL = {"torch.float32": 1e-4, "torch.float64": 1e-10}

seeds = st.integers(0, 2**32 - 1)

TEST_DEVICE_VARIABLE = "CORRNET_TEST_DEVICE"
TORCH_DEVICE_VARIABLE = "CORRNET_TEST_TORCH_DEVICE"


def _device_from(variable: str) -> str:
    value = os.environ.get(variable, "").strip() or "cpu"
    if value.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"{variable}={value!r}: expected cpu, cuda or cuda:N")
    return value


#: where corrnet's inputs go: 'cpu' (the default) or 'cuda[:N]' (``make test-gpu``)
TEST_DEVICE = _device_from(TEST_DEVICE_VARIABLE)
#: where PyTorch's inputs go: the CPU unless CORRNET_TEST_TORCH_DEVICE names its CUDA device
TORCH_DEVICE = _device_from(TORCH_DEVICE_VARIABLE)
if TORCH_DEVICE != "cpu":  # compare float32 with float32, not with TF32's 10-bit mantissas
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def on_cuda() -> bool:
    """Whether this run puts corrnet's inputs on a CUDA device (``make test-gpu``)."""
    return TEST_DEVICE != "cpu"


def to_test_device(x):
    """A corrnet tensor or module on the test device (itself on the CPU run)."""
    return x if TEST_DEVICE == "cpu" else x.to(TEST_DEVICE)


def to_torch_device(x):
    """A torch tensor or module on PyTorch's test device (itself on the CPU)."""
    return x if TORCH_DEVICE == "cpu" else x.to(TORCH_DEVICE)


def corrnet_tensor(arr, **kw):
    """``corrnet.tensor(arr, **kw)`` made on the test device."""
    return cn.tensor(arr, **kw) if TEST_DEVICE == "cpu" else cn.tensor(arr, device=TEST_DEVICE,
                                                                        **kw)


def torch_tensor(arr, **kw):
    """``torch.tensor(arr, **kw)`` made on PyTorch's test device."""
    return torch.tensor(arr, **kw) if TORCH_DEVICE == "cpu" else torch.tensor(
        arr, device=TORCH_DEVICE, **kw)


def numpy_of(t) -> np.ndarray:
    """A NumPy copy of a corrnet or torch tensor's values (copied from its device first)."""
    return np.array(t.detach().cpu().numpy(), copy=True)


#: corrnet's creation functions that take ``device=`` (what `on_test_device` redirects)
CREATION_FUNCTIONS = ("tensor", "as_tensor", "zeros", "ones", "empty", "full", "arange",
                      "linspace", "eye", "rand", "randn", "randint", "randperm")


class _OnTestDevice:
    """corrnet as a test case sees it under the switch: every attribute is corrnet's, but a
    creation function called without ``device=`` makes its tensor on the test device."""

    def __init__(self, module, device: str):
        self._module, self._device = module, device

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if name not in CREATION_FUNCTIONS:
            return value
        device = self._device

        def on_device(*args, **kwargs):
            kwargs.setdefault("device", device)
            return value(*args, **kwargs)

        return on_device


def on_test_device(module=cn):
    """`module` (corrnet) for test cases written against ``m.tensor(...)``/``m.zeros(...)``
    with ``m`` corrnet or torch: corrnet itself on the CPU run; under the switch a stand-in
    whose creation functions put their tensors on the test device (the index tensors of
    gather/scatter, say, must sit beside the tensor they index, as in PyTorch).

    >>> on_test_device().tensor([1, 2]).device.type in ("cpu", "cuda")
    True
    """
    return module if TEST_DEVICE == "cpu" else _OnTestDevice(module, TEST_DEVICE)


def both(arr, **kw):
    """The same NumPy array as a corrnet tensor and as a torch tensor (same keywords), each
    on its test device."""
    return corrnet_tensor(arr, **kw), torch_tensor(arr, **kw)


def assert_scaled_close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float,
                        what: str = "") -> None:
    """assert_allclose with atol multiplied by max(1, largest finite |expected|); NaN == NaN."""
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, equal_nan=True,
                               err_msg=what)


def assert_same(got, expected, what: str = "") -> None:
    """corrnet tensor `got` equals torch tensor `expected` in dtype, shape and values."""
    assert got is not None, f"{what}: corrnet gave None, torch gave a tensor"
    assert str(got.dtype) == str(expected.dtype), (
        f"{what}: dtype {got.dtype} != torch {expected.dtype}"
    )
    assert tuple(got.shape) == tuple(expected.shape), (
        f"{what}: shape {tuple(got.shape)} != torch {tuple(expected.shape)}"
    )
    g, e = numpy_of(got), numpy_of(expected)
    rtol = FLOAT_RTOL.get(str(expected.dtype))
    if rtol is None:
        np.testing.assert_array_equal(g, e, err_msg=what)
    else:
        assert_scaled_close(g, e, rtol, 0.1 * rtol, what)


def assert_grad(got, expected, what: str = "") -> None:
    """Leaf gradients: None exactly where torch has None, else equal tensors."""
    if expected is None:
        assert got is None, f"{what}: torch grad is None, corrnet grad is {got!r}"
    else:
        assert_same(got, expected, what)


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def draw_reshape_target(draw, shape) -> tuple[int, ...]:
    """With a Hypothesis `draw`: a shape of up to 4 dims holding as many elements as `shape`,
    sometimes with one dim given as -1."""
    factors = _prime_factors(math.prod(shape))
    k = draw(st.integers(1 if factors else 0, 4))
    target = [1] * k
    for f in factors:
        target[draw(st.integers(0, k - 1))] *= f
    if k and draw(st.booleans()):
        target[draw(st.integers(0, k - 1))] = -1
    return tuple(target)
