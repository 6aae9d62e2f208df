"""corrnet.identify_kernel: the kernel K and bias b with Y = corr2d(X, K) + b, in one solve.

Oracles: NumPy's ``lstsq`` on the window matrix A built explicitly (one row per window, one
column per kernel coefficient, plus a column of ones), SVD of that A for the rank and the
undetermined directions, SciPy's ``correlate2d`` to make Y from known kernels, and PyTorch
running the notebooks' gradient descent for the step count.
"""

from __future__ import annotations

import doctest
import os

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corrnet
from corrnet import identify

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def stripes() -> np.ndarray:
    """The notebooks' image: white, with a black stripe in columns 2 to 5."""
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    return X


def correlate(X: np.ndarray, K: np.ndarray, mode: str = "valid", boundary: str = "fill"):
    """SciPy's correlation: Y[o] = sum_c correlate2d(X[c], K[o, c]) (as conv2d)."""
    return np.stack([sum(scipy.signal.correlate2d(X[c], K[o, c], mode=mode, boundary=boundary)
                         for c in range(X.shape[0])) for o in range(K.shape[0])])


def window_matrix(X: np.ndarray, kh: int, kw: int, bias: bool) -> np.ndarray:
    """A: one row per valid window (row-major), columns (c, a, b) then ones."""
    C, H, W = X.shape
    rows = []
    for i in range(H - kh + 1):
        for j in range(W - kw + 1):
            row = list(X[:, i:i + kh, j:j + kw].ravel())
            rows.append(row + [1.0] if bias else row)
    return np.array(rows)


def lstsq_oracle(X, Y, kh, kw, bias, keep=None):
    """Per output channel: (theta, rss, rank, std errors) from lstsq on the explicit A."""
    A = window_matrix(X, kh, kw, bias)
    out = []
    for o in range(Y.shape[0]):
        y = Y[o].ravel()
        rows = np.ones(y.size, bool) if keep is None else keep[o].ravel()
        theta, _, rank, _ = np.linalg.lstsq(A[rows], y[rows], rcond=None)
        rss = float(((A[rows] @ theta - y[rows]) ** 2).sum())
        sigma2 = rss / (rows.sum() - rank)
        se = np.sqrt(sigma2 * np.diag(np.linalg.inv(A[rows].T @ A[rows])))
        out.append((theta, rss, rank, se, int(rows.sum())))
    return out


# ---------------------------------------------------------------------------------------------
# the notebooks' pair
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_the_notebooks_pair_gives_exactly_the_edge_kernel_in_one_solve(bias):
    X = stripes()
    Y = scipy.signal.correlate2d(X, [[1.0, -1.0]], mode="valid")
    fit = corrnet.identify_kernel(X, Y, bias=bias)
    assert fit.kernel.shape == (1, 2) and fit.kernel_size == (1, 2) and fit.mode == "valid"
    np.testing.assert_allclose(fit.kernel, [[1.0, -1.0]], rtol=0, atol=1e-12)
    assert abs(fit.bias) <= 1e-12
    assert fit.identifiable and fit.rank == fit.n_params == 2 + bias
    assert fit.residual_rms <= 1e-12 and fit.n_equations == 42
    assert fit.gd is None and fit.method == "closed"


def torch_gd_steps(X, Y, tolerance, max_steps=10_000):
    """The notebooks' loop in PyTorch: Conv2d(1, 1, (1, 2), bias=False), lr 3e-2, summed
    squared error, until the kernel is within `tolerance` of [1, -1]."""
    weight = torch.zeros(1, 1, 1, 2, dtype=torch.float64, requires_grad=True)
    X4 = torch.tensor(X).reshape(1, 1, *X.shape)
    Y4 = torch.tensor(Y).reshape(1, 1, *Y.shape)
    for step in range(1, max_steps + 1):
        loss = ((torch.nn.functional.conv2d(X4, weight) - Y4) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            weight -= 3e-2 * weight.grad
            weight.grad.zero_()
        if (weight.reshape(2) - torch.tensor([1.0, -1.0], dtype=torch.float64)).abs().max() \
                <= tolerance:
            return step, weight.detach().numpy().reshape(1, 2)
    return None, None


def test_method_gd_runs_the_notebooks_descent_and_counts_its_steps():
    X = stripes()
    Y = scipy.signal.correlate2d(X, [[1.0, -1.0]], mode="valid")
    fit = corrnet.identify_kernel(X, Y, bias=False, method="gd")
    steps, kernel = torch_gd_steps(X, Y, fit.gd["tolerance"])
    assert fit.gd["reached"] and fit.gd["lr"] == 3e-2 and fit.gd["tolerance"] == 1e-12
    assert steps is not None and abs(fit.gd["steps"] - steps) <= 1, (fit.gd, steps)
    assert fit.gd["steps"] > 10  # the one solve beats it; the notebooks' 10 steps are not enough
    np.testing.assert_allclose(fit.kernel, kernel, atol=1e-11)
    assert "gradient descent" in str(fit) and f"{fit.gd['steps']} steps" in str(fit)


def test_method_gd_reports_when_it_never_gets_there():
    rng = np.random.default_rng(0)
    X = rng.random((40, 40)) * 255  # lr 3e-2 on a summed loss diverges on a real image
    Y = scipy.signal.correlate2d(X, [[1.0, -1.0]], mode="valid")
    fit = corrnet.identify_kernel(X, Y, method="gd")
    assert not fit.gd["reached"] and "diverged" in fit.gd["why"]
    edges = scipy.signal.correlate2d(stripes(), [[1, -1]], "valid")
    fit = corrnet.identify_kernel(stripes(), edges, method="gd", gd_max_steps=5)
    assert not fit.gd["reached"] and fit.gd["steps"] == 5 and "did not come within" in str(fit)


# ---------------------------------------------------------------------------------------------
# against lstsq on the explicit window matrix
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       kh=st.integers(1, 4), kw=st.integers(1, 4), extra_h=st.integers(2, 8),
       extra_w=st.integers(2, 8), bias=st.booleans(), route=st.sampled_from(["windows", "lags"]))
def test_matches_lstsq_on_the_window_matrix(seed, c_in, c_out, kh, kw, extra_h, extra_w, bias,
                                            route):
    rng = np.random.default_rng(seed)
    H, W = kh + extra_h + c_in * 2, kw + extra_w + c_in * 2  # enough windows for full rank
    X = rng.normal(size=(c_in, H, W)) + rng.normal() * 3       # an offset: centring matters
    Y = rng.normal(size=(c_out, H - kh + 1, W - kw + 1)) * rng.uniform(0.1, 10)
    fit = identify.identify_kernel(X, Y, bias=bias, mode="valid", _route=route)
    p = c_in * kh * kw
    assert fit.kernel.shape == (c_out, c_in, kh, kw) and fit.kernel_size == (kh, kw)
    rss = 0.0
    for o, (theta, rss_o, rank, se, _) in enumerate(lstsq_oracle(X, Y, kh, kw, bias)):
        assert rank == fit.rank == fit.n_params == p + bias
        np.testing.assert_allclose(fit.kernel[o].ravel(), theta[:p], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(fit.std_errors[o].ravel(), se[:p], rtol=1e-6)
        if bias:
            np.testing.assert_allclose(fit.bias[o], theta[p], rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(fit.bias_std_errors[o], se[p], rtol=1e-6)
        rss += rss_o
    n_total = c_out * (H - kh + 1) * (W - kw + 1)
    assert fit.n_equations == n_total
    np.testing.assert_allclose(fit.residual_rms, np.sqrt(rss / n_total), rtol=1e-9)
    total = sum(float(((Y[o] - Y[o].mean()) ** 2).sum()) for o in range(c_out))
    np.testing.assert_allclose(fit.r_squared, 1 - rss / total, rtol=1e-7, atol=1e-9)


def test_a_y_that_is_no_linear_filter_of_x_is_called_a_poor_fit():
    """A gradient magnitude is no correlation of X: whatever kernel the solve gives, the
    fit explains little of Y and the report says so; an exact pair explains all of it."""
    rng = np.random.default_rng(3)
    X = scipy.ndimage.gaussian_filter(rng.random((80, 90)), 2)
    magnitude = np.hypot(scipy.ndimage.sobel(X, 0), scipy.ndimage.sobel(X, 1))
    poor = identify.identify_kernel(X, magnitude, kernel_size=3)
    assert poor.r_squared < 0.9
    assert "a poor fit" in str(poor)
    exact = identify.identify_kernel(X, scipy.ndimage.sobel(X, 1), kernel_size=3)
    assert exact.r_squared > 1 - 1e-9
    assert "a poor fit" not in str(exact)


def test_correlation_sums_equal_the_window_by_window_sums():
    """The lag route (FFT autocorrelation less edge strips) against explicit patches."""
    rng = np.random.default_rng(1)
    for C, O, H, W, kh, kw in [(1, 1, 9, 11, 3, 4), (2, 3, 12, 10, 4, 3), (3, 2, 7, 8, 7, 8),
                               (1, 1, 5, 5, 1, 1), (2, 1, 40, 33, 6, 5)]:
        X = rng.normal(size=(C, H, W))
        Y = rng.normal(size=(O, H - kh + 1, W - kw + 1))
        direct = identify._sums(X, Y, kh, kw, "windows")
        lags = identify._sums(X, Y, kh, kw, "lags")
        for name in ("xx", "x1", "xy", "y1", "yy"):
            np.testing.assert_allclose(getattr(lags, name), getattr(direct, name), rtol=1e-10,
                                       atol=1e-10 * H * W, err_msg=name)


# ---------------------------------------------------------------------------------------------
# channels, sizes and modes
# ---------------------------------------------------------------------------------------------

def test_channels_give_a_c_out_by_c_in_kernel_and_per_channel_kernels():
    rng = np.random.default_rng(2)
    X = rng.random((3, 30, 40))
    K = rng.normal(size=(2, 3, 3, 2))
    b = np.array([0.5, -2.0])
    Y = correlate(X, K) + b[:, None, None]
    fit = corrnet.identify_kernel(X, Y)
    np.testing.assert_allclose(fit.kernel, K, atol=1e-10)
    np.testing.assert_allclose(fit.bias, b, atol=1e-10)
    Kc = rng.normal(size=(3, 4, 4))
    Yc = np.stack([scipy.signal.correlate2d(X[c], Kc[c], mode="valid") for c in range(3)]) + 1
    fit = corrnet.identify_kernel(X, Yc, per_channel=True)
    assert fit.kernel.shape == (3, 4, 4) and fit.std_errors.shape == (3, 4, 4)
    np.testing.assert_allclose(fit.kernel, Kc, atol=1e-10)
    np.testing.assert_allclose(fit.bias, [1, 1, 1], atol=1e-10)
    with pytest.raises(ValueError, match="per_channel.*shape"):
        corrnet.identify_kernel(X, Yc[:2], per_channel=True)


def test_tensors_and_integer_images_are_accepted():
    X = corrnet.tensor(stripes()).long()
    Y = corrnet.corr2d(X, corrnet.tensor([[1, -1]]))
    fit = corrnet.identify_kernel(X, Y)
    np.testing.assert_allclose(fit.kernel, [[1, -1]], atol=1e-12)


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_same_size_images_search_the_size_and_leave_the_border_out(boundary):
    rng = np.random.default_rng(3)
    X = rng.random((40, 48))
    K = rng.normal(size=(3, 5))
    Y = scipy.signal.correlate2d(X, K, mode="same", boundary=boundary) + 0.25
    fit = corrnet.identify_kernel(X, Y)  # mode inferred: 'same'; size: searched
    assert fit.mode == "same" and fit.kernel_size == (3, 5)
    np.testing.assert_allclose(fit.kernel, K, atol=1e-10)
    np.testing.assert_allclose(fit.bias, 0.25, atol=1e-10)
    assert fit.size_search and min(fit.size_search, key=lambda r: r["bic"])["kh"] == 3
    # an explicit size: the interior only, whatever the boundary did
    fit = corrnet.identify_kernel(X, Y, (3, 5), mode="same")
    np.testing.assert_allclose(fit.kernel, K, atol=1e-10)
    assert fit.n_equations == (40 - 2) * (48 - 4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kh=st.sampled_from([1, 3, 5]),
       kw=st.sampled_from([1, 3, 5]), side=st.integers(18, 30),
       boundary=st.sampled_from(["fill", "wrap", "symm"]), c_in=st.integers(1, 2))
def test_the_size_search_finds_random_odd_kernels(seed, kh, kw, side, boundary, c_in):
    rng = np.random.default_rng(seed)
    X = rng.random((c_in, side, side + 3))
    K = rng.normal(size=(1, c_in, kh, kw))
    K += np.sign(K) * 0.1  # no coefficient near zero: the size is the kernel's own
    Y = correlate(X, K, mode="same", boundary=boundary) + rng.normal()
    fit = corrnet.identify_kernel(X, Y)
    assert fit.kernel_size == (kh, kw)
    np.testing.assert_allclose(fit.kernel, K, atol=1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kh=st.sampled_from([1, 3, 5]),
       kw=st.sampled_from([1, 3, 5]), height=st.integers(96, 256), width=st.integers(96, 320),
       smoothness=st.floats(0.5, 4.0))
def test_the_size_search_finds_integer_kernels_of_8bit_images(seed, kh, kw, height, width,
                                                               smoothness):
    """As `corrnet demo` and a user's photos: a smooth 8-bit image, an integer kernel, Y
    clipped to 0..255 as an 8-bit file holds it. An exact fit's RSS is float64 cancellation
    that grows with N and the kernel's size: on the demo's 384x512 picture it came above the
    old floor ((1e-7 sd(Y))^2 per equation) for Sobel x's 3x3 and below it for 3x5, which won
    (AMD EPYC)."""
    rng = np.random.default_rng(seed)
    field = scipy.ndimage.gaussian_filter(rng.random((height, width)), smoothness)
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-12)
    X = np.round(255 * field).astype(np.uint8)
    K = rng.integers(1, 3, size=(kh, kw)) * rng.choice([-1, 1], size=(kh, kw))
    if K.size > 1:      # summing to 0, as an edge filter: most of Y inside 0..255
        K[kh // 2, kw // 2] -= K.sum()
    Y = scipy.signal.correlate2d(X.astype(np.float64), K, mode="same", boundary="symm")
    Y = np.clip(Y + 128, 0, 255).astype(np.uint8)       # saturated 0 and 255 left out
    fit = corrnet.identify_kernel(X, Y)
    assert fit.kernel_size == (kh, kw), [(r["kh"], r["kw"], r["rss"]) for r in fit.size_search
                                         if r["rss"] < 1e-3]
    np.testing.assert_allclose(fit.kernel, K, atol=1e-6)
    np.testing.assert_allclose(fit.bias, 128, atol=1e-4)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), c_in=st.integers(1, 2), kh=st.integers(1, 3),
       kw=st.integers(1, 3), clipped=st.floats(0.05, 0.7),
       route=st.sampled_from(["windows", "lags"]))
def test_saturation_masks_match_lstsq_without_those_rows(seed, c_in, kh, kw, clipped, route):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(c_in, 14, 15))
    Y = rng.normal(size=(2, 14 - kh + 1, 15 - kw + 1))
    lo, hi = np.quantile(Y, [clipped / 2, 1 - clipped / 2])
    keep = (Y > lo) & (Y < hi)
    fit = identify.identify_kernel(X, Y, saturated=(lo, hi), mode="valid", _route=route)
    assert fit.n_saturated == int((~keep).sum())
    for o, (theta, _, _, se, _) in enumerate(lstsq_oracle(X, Y, kh, kw, True, keep)):
        np.testing.assert_allclose(fit.kernel[o].ravel(), theta[:-1], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(fit.bias[o], theta[-1], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(fit.std_errors[o].ravel(), se[:-1], rtol=1e-6)
    assert fit.n_equations == int(keep.sum())


def test_an_even_kernel_in_same_mode_shows_up_padded_to_the_next_odd_size():
    X = np.random.default_rng(4).random((20, 24))
    Y = np.asarray(corrnet.corr2d(X, [[1.0, -1.0]], mode="same"))
    fit = corrnet.identify_kernel(X, Y, kernel_size="auto")
    assert fit.kernel_size == (1, 3)
    np.testing.assert_allclose(fit.kernel, [[0, 1, -1]], atol=1e-10)


def test_the_size_search_finds_the_size_under_noise():
    rng = np.random.default_rng(5)
    X = rng.random((64, 64))
    K = rng.normal(size=(5, 5))
    Y = scipy.signal.correlate2d(X, K, mode="same", boundary="symm")
    Y += rng.normal(scale=0.01, size=Y.shape)
    fit = corrnet.identify_kernel(X, Y)
    assert fit.kernel_size == (5, 5)


def test_full_mode_implies_the_size():
    rng = np.random.default_rng(6)
    X = rng.random((12, 15))
    K = rng.normal(size=(4, 3))
    Y = scipy.signal.correlate2d(X, K, mode="full")
    fit = corrnet.identify_kernel(X, Y, mode="full")
    assert fit.kernel_size == (4, 3)
    np.testing.assert_allclose(fit.kernel, K, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# noise and saturation
# ---------------------------------------------------------------------------------------------

def test_noise_residual_estimates_sigma_and_standard_errors_cover_the_kernel():
    rng = np.random.default_rng(7)
    X = rng.random((2, 80, 90))
    K = rng.normal(size=(1, 2, 3, 3))
    sigma = 0.01
    Y = correlate(X, K) + 0.5 + rng.normal(scale=sigma, size=(1, 78, 88))
    fit = corrnet.identify_kernel(X, Y)
    assert abs(fit.residual_rms - sigma) < 0.05 * sigma
    z = np.abs(fit.kernel - K) / fit.std_errors
    assert (z < 3).mean() >= 0.9, z  # 18 coefficients: most within 3 SE
    assert abs(fit.bias - 0.5) < 4 * fit.bias_std_errors
    # the SE as the oracle computes them
    theta, rss, rank, se, n = lstsq_oracle(X, Y, 3, 3, True)[0]
    np.testing.assert_allclose(fit.std_errors.ravel(), se[:-1], rtol=1e-6)


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535)])
def test_saturated_outputs_are_left_out(dtype, top):
    rng = np.random.default_rng(8)
    X = (rng.random((1, 30, 36)) * top).astype(dtype)
    K = np.array([[[[0.5, -0.5, 0.3], [0.2, 1.0, -0.7]]]])
    exact = correlate(X.astype(float), K) + top * 0.3
    Y = np.clip(np.round(exact), 0, top).astype(dtype)
    keep = (Y > 0) & (Y < top)
    assert 0.1 < 1 - keep.mean() < 0.6  # many clipped
    fit = corrnet.identify_kernel(X, Y)  # saturated='auto' from the dtype
    assert fit.n_saturated == int((~keep).sum())
    theta = lstsq_oracle(X.astype(float), Y.astype(float), 2, 3, True, keep)[0][0]
    np.testing.assert_allclose(fit.kernel.ravel(), theta[:-1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.kernel, K, atol=3e-3 if dtype == np.uint8 else 1e-4)
    unmasked = corrnet.identify_kernel(X, Y, saturated=None)
    assert np.abs(unmasked.kernel - K).max() > 10 * np.abs(fit.kernel - K).max()
    # float images: limits given
    fit = corrnet.identify_kernel(X.astype(float), Y.astype(float), saturated=(0, top))
    np.testing.assert_allclose(fit.kernel.ravel(), theta[:-1], rtol=1e-8, atol=1e-10)


def test_saturation_with_a_large_image_uses_the_correlation_sums_less_the_dropped_windows():
    rng = np.random.default_rng(9)
    X = (rng.random((2, 120, 130)) * 255).astype(np.uint8)
    K = rng.normal(size=(2, 2, 5, 5)) * 0.05
    Y = np.clip(np.round(correlate(X.astype(float), K) + 120), 0, 255).astype(np.uint8)
    fit_lags = identify.identify_kernel(X, Y, _route="lags")
    fit_windows = identify.identify_kernel(X, Y, _route="windows")
    assert fit_lags.n_saturated > 0
    np.testing.assert_allclose(fit_lags.kernel, fit_windows.kernel, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit_lags.kernel, K, atol=0.02)


# ---------------------------------------------------------------------------------------------
# not identifiable: say so, give the directions
# ---------------------------------------------------------------------------------------------

def null_space(A: np.ndarray) -> np.ndarray:
    _, s, vt = np.linalg.svd(A)
    return vt[(s > 1e-9 * s[0]).sum():]                     # (n_null, q)


def test_a_constant_image_is_not_identifiable():
    X = np.full((7, 9), 3.0)
    Y = np.full((6, 8), 2.0)
    fit = corrnet.identify_kernel(X, Y)
    assert not fit.identifiable and fit.rank == 1 and fit.n_params == 5
    expected = null_space(window_matrix(X[None], 2, 2, True))
    got = np.concatenate([fit.undetermined.reshape(len(fit.undetermined), -1),
                          fit.undetermined_bias[:, None]], axis=1)
    assert got.shape == expected.shape == (4, 5)
    # the same subspace: equal projectors
    np.testing.assert_allclose(got.T @ got, expected.T @ expected, atol=1e-9)
    assert np.isinf(fit.std_errors).all()
    # the minimum-norm kernel: zero, the bias carries the level
    np.testing.assert_allclose(fit.kernel, 0, atol=1e-12)
    np.testing.assert_allclose(fit.bias, 2.0, atol=1e-12)
    assert "NOT identifiable" in str(fit) and "direction 4" in str(fit)


def test_the_stripe_image_transposed_under_a_1x2_kernel_is_not_identifiable():
    X = stripes().T
    Y = scipy.signal.correlate2d(X, [[1.0, -1.0]], mode="valid")
    fit = corrnet.identify_kernel(X, Y)
    assert not fit.identifiable and fit.rank == 2 and fit.n_params == 3
    assert fit.undetermined.shape == (1, 1, 2)
    np.testing.assert_allclose(fit.undetermined[0], [[2 ** -0.5, -(2 ** -0.5)]], atol=1e-12)
    np.testing.assert_allclose(fit.undetermined_bias, [0.0], atol=1e-12)
    np.testing.assert_allclose(fit.kernel, 0, atol=1e-12)  # not an arbitrary [1, -1] + t*[1, 1]
    assert np.isinf(fit.std_errors).all()
    fit = corrnet.identify_kernel(X, Y, bias=False)
    assert not fit.identifiable and fit.undetermined.shape == (1, 1, 2)
    record = fit.to_dict()
    assert record["identifiable"] is False and record["std_errors"] == [[None, None]]


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("X_shape, Y_shape, kwargs, match", [
    ((6, 8), (7, 8), {}, r"Y of shape \(7, 8\) is larger than X of shape \(6, 8\)"),
    ((6, 8), (5, 7), {"kernel_size": (3, 3)}, r"kernel_size \(3, 3\) does not fit.*2x2"),
    ((6, 8), (6, 8), {"kernel_size": 9}, r"kernel_size 9x9 is larger than the image X"),
    ((6, 8), (4, 9), {"mode": "valid"}, r"no kernel connects them"),
    ((6, 8), (6, 8), {"mode": "diagonal"}, r"mode must be"),
    ((6, 8), (5, 7), {"method": "newton"}, r"method must be"),
    ((6, 8), (5, 7), {"saturated": "sometimes"}, r"saturated must be"),
    ((2, 6, 8), (3, 5, 7), {"per_channel": True}, r"per_channel"),
    ((6,), (5,), {}, r"X must be \(H, W\) or \(C, H, W\)"),
])
def test_bad_input_names_the_argument_and_the_shapes(X_shape, Y_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        corrnet.identify_kernel(np.ones(X_shape), np.ones(Y_shape), **kwargs)


def test_non_finite_values_are_refused():
    Y = np.ones((5, 7))
    Y[1, 1] = np.nan
    with pytest.raises(ValueError, match="Y holds NaN"):
        corrnet.identify_kernel(np.ones((6, 8)), Y)


def test_docstring_example_runs():
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(identify, "corrnet.identify",
                            globs={"corrnet": corrnet, "np": np}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.skipif(not os.environ.get("CORRNET_SLOW"), reason="CORRNET_SLOW=1: 4096x4096")
def test_a_4096_pair_with_a_15x15_kernel():
    rng = np.random.default_rng(10)
    X = rng.random((4096, 4096))
    K = rng.normal(size=(15, 15))
    Y = scipy.signal.fftconvolve(X, K[::-1, ::-1], mode="valid") + 1.0
    fit = corrnet.identify_kernel(X, Y)
    np.testing.assert_allclose(fit.kernel, K, atol=1e-9)
    assert fit.identifiable


def test_the_readme_section_runs_as_pasted():
    """README's "Recovering a kernel from two images": its Python example prints what it
    says (its shell example runs in test_issue14_identify_cli.py)."""
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    section = re.search(r"## Recovering a kernel from two images\n(.*?)\n## ", text, re.S)
    if section is None:
        pytest.skip("README has no section 'Recovering a kernel from two images'")
    block = re.search(r"```python\n(.*?)```", section.group(1), re.S).group(1)
    test = doctest.DocTestParser().get_doctest(block, {}, "README", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
