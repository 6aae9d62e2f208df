"""Issue 14, item 2: ``corrnet.filters`` — named kernels and filter functions — against
scipy.ndimage and OpenCV on the same boundary, and the command line's kernel specs.

Boundaries as they really correspond (checked here, not assumed):
corrnet 'symm' = scipy.ndimage 'reflect' = cv2.BORDER_REFLECT (edge pixel repeated);
'fill' (0) = ndimage 'constant' = cv2.BORDER_CONSTANT; 'wrap' = ndimage 'wrap' (OpenCV's
filter2D refuses BORDER_WRAP, so wrap is checked against SciPy only).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet
from corrnet import filters

SETTINGS = settings(max_examples=30, deadline=None)
NDI_MODE = {"symm": "reflect", "fill": "constant", "wrap": "wrap"}
CV_BORDER = {"symm": cv2.BORDER_REFLECT, "fill": cv2.BORDER_CONSTANT}


def _ndi(fn, X, boundary, **kw):
    """scipy.ndimage on each trailing (H, W) plane of X."""
    planes = X.reshape(-1, *X.shape[-2:])
    out = [fn(p, mode=NDI_MODE[boundary], **kw) for p in planes]
    return np.stack(out).reshape(X.shape)


def _cv(fn, X, boundary, *args, **kw):
    planes = X.reshape(-1, *X.shape[-2:])
    out = [fn(np.ascontiguousarray(p), *args, borderType=CV_BORDER[boundary], **kw)
           for p in planes]
    return np.stack(out).reshape(X.shape)


def _close(got, expected, what=""):
    got = got.numpy() if isinstance(got, corrnet.Tensor) else got
    assert got.shape == expected.shape, f"{what}: {got.shape} != {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10, err_msg=what)


images = st.tuples(st.sampled_from([(), (2,), (1, 3)]), st.integers(3, 12), st.integers(3, 12),
                   st.integers(0, 2**31))


def _draw(shape_seed):
    lead, h, w, seed = shape_seed
    return np.random.default_rng(seed).uniform(-1, 1, (*lead, h, w))


# -- named filters against scipy.ndimage and OpenCV ----------------------------------------------

@SETTINGS
@given(images, st.sampled_from(["symm", "fill", "wrap"]))
def test_derivative_filters_match_scipy_ndimage(shape_seed, boundary):
    X = _draw(shape_seed)
    sobel = [_ndi(ndi.sobel, X, boundary, axis=a) for a in (-1, -2)]
    prewitt = [_ndi(ndi.prewitt, X, boundary, axis=a) for a in (-1, -2)]
    _close(filters.sobel_x(X, boundary=boundary), sobel[0], "sobel_x")
    _close(filters.sobel_y(X, boundary=boundary), sobel[1], "sobel_y")
    _close(filters.sobel(X, boundary=boundary), np.hypot(*sobel), "sobel")
    _close(filters.prewitt_x(X, boundary=boundary), prewitt[0], "prewitt_x")
    _close(filters.prewitt_y(X, boundary=boundary), prewitt[1], "prewitt_y")
    _close(filters.prewitt(X, boundary=boundary), np.hypot(*prewitt), "prewitt")
    _close(filters.laplacian(X, boundary=boundary), _ndi(ndi.laplace, X, boundary), "laplace")


@SETTINGS
@given(images, st.sampled_from(["symm", "fill"]))
def test_derivative_filters_match_opencv(shape_seed, boundary):
    X = _draw(shape_seed)
    f64 = cv2.CV_64F
    _close(filters.sobel_x(X, boundary=boundary), _cv(cv2.Sobel, X, boundary, f64, 1, 0))
    _close(filters.sobel_y(X, boundary=boundary), _cv(cv2.Sobel, X, boundary, f64, 0, 1))
    _close(filters.scharr_x(X, boundary=boundary), _cv(cv2.Scharr, X, boundary, f64, 1, 0))
    _close(filters.scharr_y(X, boundary=boundary), _cv(cv2.Scharr, X, boundary, f64, 0, 1))
    gx, gy = _cv(cv2.Scharr, X, boundary, f64, 1, 0), _cv(cv2.Scharr, X, boundary, f64, 0, 1)
    _close(filters.scharr(X, boundary=boundary), np.hypot(gx, gy), "scharr")
    _close(filters.laplacian(X, boundary=boundary),
           _cv(cv2.Laplacian, X, boundary, f64, ksize=1), "laplacian")
    for name in ("sharpen", "emboss", "edge"):       # fixed kernels through OpenCV's filter2D
        expected = _cv(cv2.filter2D, X, boundary, -1, filters.KERNELS[name])
        _close(getattr(filters, name)(X, boundary=boundary), expected, name)


@SETTINGS
@given(images, st.floats(0.3, 2.5), st.sampled_from(["symm", "fill", "wrap"]))
def test_gaussian_matches_scipy_truncate_4_and_opencv(shape_seed, sigma, boundary):
    X = _draw(shape_seed)
    got = filters.gaussian(X, sigma, boundary=boundary)
    _close(got, _ndi(ndi.gaussian_filter, X, boundary, sigma=sigma), "gaussian_filter")
    radius = int(4.0 * sigma + 0.5)
    assert filters.gaussian_kernel(sigma).shape == (2 * radius + 1,) * 2
    if boundary != "wrap":
        size = (2 * radius + 1, 2 * radius + 1)
        expected = _cv(cv2.GaussianBlur, X, boundary, size, sigma)
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-7)  # OpenCV's own weights
    amount = 1.5
    sharp = X + amount * (X - _ndi(ndi.gaussian_filter, X, boundary, sigma=sigma))
    _close(filters.unsharp(X, sigma, amount, boundary=boundary), sharp, "unsharp")
    _close(filters.correlate(X, filters.unsharp_kernel(sigma, amount), boundary=boundary), sharp,
           "unsharp kernel")


@SETTINGS
@given(images, st.integers(1, 6), st.sampled_from(["symm", "fill", "wrap"]))
def test_box_matches_uniform_filter_and_blur_even_sizes_included(shape_seed, n, boundary):
    X = _draw(shape_seed)
    got = filters.box(X, n, boundary=boundary)
    _close(got, _ndi(ndi.uniform_filter, X, boundary, size=n), f"box {n}")
    if boundary != "wrap":
        _close(got, _cv(cv2.blur, X, boundary, (n, n)), f"cv2.blur {n}")


@SETTINGS
@given(images, st.integers(1, 4), st.integers(1, 4), st.sampled_from(["symm", "fill", "wrap"]))
def test_any_kernel_centred_as_ndimage_correlate_and_filter2d(shape_seed, kh, kw, boundary):
    X = _draw(shape_seed)
    K = np.random.default_rng(kh * 10 + kw).uniform(-1, 1, (kh, kw))
    got = filters.correlate(X, K, boundary=boundary)
    _close(got, _ndi(ndi.correlate, X, boundary, weights=K), "ndimage.correlate")
    if boundary != "wrap":
        _close(got, _cv(cv2.filter2D, X, boundary, -1, K), "cv2.filter2D")


@pytest.mark.parametrize("mode", ["valid", "full"])
@pytest.mark.parametrize("boundary", ["symm", "fill", "wrap"])
def test_valid_and_full_modes_match_scipy_signal(mode, boundary):
    X = np.random.default_rng(3).uniform(-1, 1, (9, 11))
    for name, got in [("sobel_x", filters.sobel_x(X, mode, boundary)),
                      ("gaussian", filters.gaussian(X, 0.8, mode, boundary)),
                      ("box", filters.box(X, 3, mode, boundary))]:
        K = {"sobel_x": filters.KERNELS["sobel_x"], "gaussian": filters.gaussian_kernel(0.8),
             "box": filters.box_kernel(3)}[name]
        expected = scipy.signal.correlate2d(X, K, mode=mode, boundary=boundary)
        _close(got, expected, f"{name} {mode} {boundary}")


def test_fill_with_a_nonzero_value_pads_the_image_once():
    X = np.random.default_rng(4).uniform(-1, 1, (7, 8))
    for name, K, got in [
        ("sobel", filters.KERNELS["sobel_x"], filters.sobel_x(X, boundary="fill", fillvalue=3)),
        ("gaussian", filters.gaussian_kernel(1.0),
         filters.gaussian(X, 1.0, boundary="fill", fillvalue=3)),
        ("box", filters.box_kernel(4), filters.box(X, 4, boundary="fill", fillvalue=3))]:
        expected = ndi.correlate(X, K, mode="constant", cval=3)
        _close(got, expected, name)


def test_signs_and_the_notebooks_edge():
    ramp = corrnet.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert filters.sobel_x(ramp).numpy().min() >= 0          # brighter to the right: positive
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    np.testing.assert_array_equal(filters.edge(X, mode="valid").numpy(),
                                  corrnet.corr2d(X, [[1.0, -1.0]]).numpy())
    np.testing.assert_array_equal(filters.edge(X, mode="valid").numpy()[0],
                                  [0, 1, 0, 0, 0, -1, 0])


def test_integer_images_are_filtered_in_floating_point_and_grads_flow():
    X = np.arange(30, dtype=np.uint8).reshape(5, 6)
    out = filters.gaussian(X, 1.0)
    assert out.dtype.is_floating_point
    assert out.dtype is corrnet.float32                       # 8 bits: float32 is exact enough
    np.testing.assert_allclose(out.numpy(), ndi.gaussian_filter(X.astype(float), 1.0),
                               rtol=1e-6)
    T = corrnet.tensor(np.random.default_rng(0).random((5, 6)), requires_grad=True)
    filters.sobel(T).sum().backward()
    assert T.grad is not None and T.grad.shape == (5, 6)


def test_bad_mode_boundary_and_sizes_name_the_argument():
    X = np.zeros((4, 5))
    with pytest.raises(ValueError, match="mode='nearest'"):
        filters.sobel(X, mode="nearest")
    with pytest.raises(ValueError, match="boundary='reflect'"):
        filters.gaussian(X, 1.0, boundary="reflect")
    with pytest.raises(ValueError, match=r"\(1, 9\) is larger.*\(4, 5\).*'valid'"):
        filters.box(X, 9, mode="valid")
    with pytest.raises(ValueError, match=r"\(\..., H, W\).*\(5,\)"):
        filters.laplacian(np.zeros(5))


def test_filters_refuse_an_hwc_photo():
    with pytest.raises(ValueError, match=r"\(40, 30, 3\).*permute\(2, 0, 1\)"):
        filters.sobel(np.zeros((40, 30, 3)))
    with pytest.raises(ValueError, match=r"\(40, 30, 4\).*permute\(2, 0, 1\)"):
        filters.gaussian(np.zeros((40, 30, 4)), 1.0)


# -- kernel specs --------------------------------------------------------------------------------

def test_kernel_specs_by_name_and_with_parameters():
    np.testing.assert_array_equal(filters.kernel("edge"), [[1.0, -1.0]])
    for name in ("sobel", "prewitt"):                # as ndimage's filters of a unit impulse
        impulse = np.zeros((5, 5))
        impulse[2, 2] = 1
        # the response of a correlation to an impulse is the kernel turned by 180 degrees
        dx = ndi.sobel(impulse, axis=1) if name == "sobel" else ndi.prewitt(impulse, axis=1)
        np.testing.assert_array_equal(filters.kernel(f"{name}-x"), dx[1:4, 1:4][::-1, ::-1])
        np.testing.assert_array_equal(filters.kernel(f"{name}_y"),
                                      filters.kernel(f"{name}-x").T)
    impulse = np.zeros((13, 13))
    impulse[6, 6] = 1
    np.testing.assert_allclose(filters.kernel("gaussian:1.5"),
                               ndi.gaussian_filter(impulse, 1.5, mode="constant"), atol=1e-15)
    np.testing.assert_array_equal(filters.kernel(" Box:5 "), np.full((5, 5), 1 / 25))
    unsharp = filters.kernel("unsharp:2,1.5")
    assert unsharp.shape == (17, 17) and np.isclose(unsharp.sum(), 1.0)
    np.testing.assert_array_equal(filters.kernel("laplacian"), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])


def test_kernel_literals_and_files(tmp_path):
    np.testing.assert_array_equal(filters.kernel("[[1, -1]]"), [[1.0, -1.0]])
    np.testing.assert_array_equal(filters.kernel("[1, 0, -1]"), [[1.0, 0.0, -1.0]])  # a row
    np.testing.assert_array_equal(filters.kernel("((1, 2), (3, 4.5))"), [[1, 2], [3, 4.5]])
    (tmp_path / "k.txt").write_text("# a 2x3 kernel\n1 2 3\n4 5 6\n")
    np.testing.assert_array_equal(filters.kernel(tmp_path / "k.txt"), [[1, 2, 3], [4, 5, 6]])
    np.save(tmp_path / "k.npy", np.eye(3))
    np.testing.assert_array_equal(filters.kernel(str(tmp_path / "k.npy")), np.eye(3))
    np.testing.assert_array_equal(filters.kernel(corrnet.ones(2, 2)), np.ones((2, 2)))


@pytest.mark.parametrize(("spec", "match"), [
    ("[[1,-1]", "literal .*does not parse"),
    ("[[1, -1], [2]]", "literal"),
    ("[['a', 'b']]", "literal"),
    ("__import__('os').system('echo hacked')", "unknown kernel.*sobel-x.*gaussian:SIGMA"),
    ("[__import__('os')]", "does not parse"),
    ("[[1, inf]]", "does not parse"),
    ("[[1e999, 1]]", "not finite"),
    ("[[]]", "non-empty"),
    ("gaussian:", "gaussian:SIGMA"),
    ("gaussian:-1", "sigma"),
    ("box:2.5", "whole number"),
    ("box:0", "positive integer"),
    ("unsharp:1", "unsharp:SIGMA,AMOUNT"),
    ("sobel", "gradient magnitude.*sobel-x"),
    ("nosuch", "unknown kernel 'nosuch'"),
])
def test_bad_kernel_specs_say_what_is_wrong(spec, match):
    with pytest.raises(ValueError, match=match):
        filters.kernel(spec)


def test_bad_kernel_files_are_named(tmp_path):
    (tmp_path / "bad.txt").write_text("1 2\n3\n")
    with pytest.raises(ValueError, match="bad.txt"):
        filters.kernel(tmp_path / "bad.txt")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy.*pickle"):         # never unpickled
        filters.kernel(tmp_path / "obj.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"cube.npy.*2-D.*\(2, 2, 2\)"):
        filters.kernel(tmp_path / "cube.npy")
