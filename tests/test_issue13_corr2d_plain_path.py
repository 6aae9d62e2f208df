"""corr2d's plain path (issue 13): a 2-D float image and kernel, valid mode, no gradient wanted.

`functional._plain_corr2d` calls the planner's forward pass on the arrays directly instead of
building the general path's ops (reshape, conv2d's checks, the autograd Function): 0.21 ->
0.14 ms for a 512x512 image and a 3x3 kernel, against OpenCV's filter2D at 0.11 ms. Oracle:
SciPy's correlate2d in float64 (values, NaN and inf where they land), and the general path
(the same call with a gradient wanted) on the same data.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corrnet as ct
from corrnet import functional

from torch_compare import assert_scaled_close, seeds

RTOL = {"float32": 2e-4, "float64": 1e-10}


@st.composite
def plain_calls(draw):
    height, width = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    kh = draw(st.integers(1, min(height, 17)))
    kw = draw(st.integers(1, min(width, 17)))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    special = draw(st.sampled_from([None, None, "nan", "inf"]))
    return height, width, kh, kw, dtype, layout, special, draw(seeds)


def _image(rng, height, width, dtype, layout, special):
    if layout == "transposed":      # a view with swapped strides
        base = rng.uniform(-2, 2, (width, height)).astype(dtype)
        image = ct.from_numpy(base).T
    elif layout == "strided":       # every other column of a wider array
        base = rng.uniform(-2, 2, (height, 2 * width)).astype(dtype)
        image = ct.from_numpy(base)[:, ::2]
    else:
        image = ct.from_numpy(rng.uniform(-2, 2, (height, width)).astype(dtype))
    if special is not None:
        image = image.clone()
        row, column = rng.integers(0, height), rng.integers(0, width)
        image[int(row), int(column)] = float(special)
    return image


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_calls())
def test_plain_path_matches_scipy_and_the_general_path(call):
    height, width, kh, kw, dtype, layout, special, seed = call
    rng = np.random.default_rng(seed)
    image = _image(rng, height, width, dtype, layout, special)
    kernel = ct.from_numpy(rng.uniform(0.5, 2, (kh, kw)).astype(dtype))  # no zero taps
    expected = scipy.signal.correlate2d(image.numpy().astype(np.float64),
                                        kernel.numpy().astype(np.float64), mode="valid")

    out = ct.corr2d(image, kernel)
    assert out.dtype == image.dtype and not out.requires_grad and out.grad_fn is None
    assert out.is_contiguous()
    got = out.numpy()
    assert got.shape == expected.shape == (height - kh + 1, width - kw + 1)
    assert np.array_equal(np.isnan(got), np.isnan(expected)), "NaN where SciPy has none"
    assert np.array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_scaled_close(got[finite], expected[finite].astype(dtype), RTOL[dtype], RTOL[dtype],
                        "plain corr2d")

    general = ct.corr2d(image.detach().requires_grad_(), kernel).detach().numpy()
    assert np.array_equal(np.isnan(general), np.isnan(got))
    assert_scaled_close(got[finite], general[finite], RTOL[dtype], RTOL[dtype],
                        "plain vs general corr2d")


def test_the_plain_path_builds_no_op_and_the_general_path_takes_the_rest(monkeypatch):
    """Which calls take the plain path: shown by making the general path's op fail."""
    def no_conv(*args):
        raise AssertionError("the general path ran")

    monkeypatch.setattr(functional._Conv2d, "apply", no_conv)
    image, kernel = ct.rand(9, 8), ct.rand(3, 3)
    assert tuple(ct.corr2d(image, kernel).shape) == (7, 6)
    with ct.no_grad():
        assert not ct.corr2d(image.requires_grad_(), kernel).requires_grad
    general = [
        lambda: ct.corr2d(image, kernel),                         # image requires grad
        lambda: ct.corr2d(ct.rand(9, 8), kernel.double()),        # mixed dtypes: promotion
        lambda: ct.corr2d(ct.rand(2, 9, 8), kernel),              # planes (..., H, W)
        lambda: ct.corr2d(ct.rand(9, 8), kernel, mode="same"),
        lambda: ct.convolve2d(ct.rand(9, 8), kernel),
        lambda: ct.corr2d(ct.arange(72).reshape(9, 8), ct.ones(3, 3, dtype=ct.int64)),
    ]
    for call in general:
        with pytest.raises(AssertionError, match="the general path ran"):
            call()


def test_plain_path_output_has_no_graph_and_the_general_one_has():
    image, kernel = ct.rand(6, 6, requires_grad=True), ct.rand(2, 2)
    out = ct.corr2d(image, kernel)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    assert image.grad is not None and tuple(image.grad.shape) == (6, 6)
    with ct.no_grad():
        assert ct.corr2d(image, kernel).grad_fn is None
