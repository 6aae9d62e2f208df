"""round / floor / ceil / trunc and the byte / char / short casts, against PyTorch.

Image code needs them (float pixels back to uint8: ``x.clamp(0, 255).round().byte()``);
values, dtypes, gradients (zero: the functions are piecewise constant) and the grad_fn names
must be PyTorch's. Ties (x.5) round half to even, as PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet as cn

from torch_compare import assert_same, seeds

ROUNDINGS = ["round", "floor", "ceil", "trunc"]
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64,
          "int32": np.int32, "uint8": np.uint8}


def _values(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        # halves (ties), near-integers, negatives, and plain values
        halves = rng.integers(-20, 20, shape) / 2
        return np.where(rng.random(shape) < 0.5, halves,
                        rng.standard_normal(shape) * 50).astype(dtype)
    return rng.integers(0, 200, shape).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(ROUNDINGS), st.sampled_from(sorted(DTYPES)),
       st.lists(st.integers(0, 5), min_size=0, max_size=3), seeds)
def test_rounding_matches_torch(how, dtype, shape, seed):
    values = _values(np.random.default_rng(seed), tuple(shape), DTYPES[dtype])
    expected = getattr(torch.from_numpy(values.copy()), how)()
    assert_same(getattr(cn.from_numpy(values.copy()), how)(), expected, how)
    assert_same(getattr(cn, how)(cn.from_numpy(values.copy())), expected, f"corrnet.{how}")


@settings(max_examples=30, deadline=None)
@given(st.integers(-3, 3), st.sampled_from(["float32", "float64"]), seeds)
def test_round_decimals_matches_torch(decimals, dtype, seed):
    values = np.random.default_rng(seed).standard_normal(12).astype(dtype) * 100
    assert_same(cn.from_numpy(values.copy()).round(decimals=decimals),
                torch.from_numpy(values.copy()).round(decimals=decimals), "round(decimals)")


@pytest.mark.parametrize("how", ROUNDINGS)
@pytest.mark.parametrize("decimals", [0, 2])
def test_rounding_gradient_and_node_name_match_torch(how, decimals):
    values = np.array([0.5, 1.26, -2.5, 3.7], dtype=np.float64)
    arguments = {"decimals": decimals} if how == "round" else {}
    if decimals and how != "round":
        pytest.skip("decimals is round's only")
    x_c = cn.tensor(values, requires_grad=True)
    x_t = torch.tensor(values, requires_grad=True)
    y_c, y_t = getattr(x_c, how)(**arguments), getattr(x_t, how)(**arguments)
    assert y_c.grad_fn.name() == y_t.grad_fn.name()
    (y_c * 3).sum().backward()
    (y_t * 3).sum().backward()
    assert_same(x_c.grad, x_t.grad, "gradient")


@pytest.mark.parametrize("how", ROUNDINGS)
def test_rounding_a_bool_tensor_raises_as_torch(how):
    with pytest.raises(NotImplementedError) as torch_error:
        getattr(torch.tensor([True]), how)()
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        getattr(cn.tensor([True]), how)()
    assert "Bool" in str(torch_error.value)


@pytest.mark.parametrize(("method", "dtype"), [("byte", "uint8"), ("char", "int8"),
                                               ("short", "int16")])
def test_byte_char_short_cast_as_torch(method, dtype):
    values = np.array([0.0, 1.7, 100.2, 126.9, 3.5], dtype=np.float32)
    got, expected = getattr(cn.from_numpy(values), method)(), getattr(torch.from_numpy(values),
                                                                     method)()
    assert str(got.dtype) == str(expected.dtype) == f"torch.{dtype}"
    assert np.array_equal(got.numpy(), expected.numpy())


def test_pixels_back_to_uint8_as_image_code_writes_it():
    pixels = np.array([[-3.2, 0.49, 0.5, 1.5, 254.5, 300.0]], dtype=np.float32)
    assert np.array_equal(cn.from_numpy(pixels).clamp(0, 255).round().byte().numpy(),
                          torch.from_numpy(pixels).clamp(0, 255).round().byte().numpy())
