"""Issue 16, item 1: corr2d, convolve2d and the named filters on dask arrays equal the in-memory
function on the whole image — every mode, boundary and dtype, whatever the chunking (chunks of
1, chunks smaller than the kernel, uneven chunks, leading axes) — and scipy.signal /
scipy.ndimage / dask_image where they define the same thing."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import corrnet
from corrnet import filters

da = pytest.importorskip("dask.array")
cdask = pytest.importorskip("corrnet.dask")

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
MODES = ("same", "valid", "full")
BOUNDARIES = ("symm", "fill", "wrap")


@st.composite
def chunking(draw, size: int):
    """A partition of `size` into chunks: ones, uneven, or a single chunk."""
    kind = draw(st.sampled_from(["ones", "random", "single"]))
    if kind == "ones":
        return (1,) * size
    if kind == "single":
        return (size,)
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=4))) if size > 1 else []
    edges = [0, *cuts, size]
    return tuple(b - a for a, b in zip(edges, edges[1:], strict=False))


@st.composite
def images(draw, dtypes=("float64", "float32", "int64", "uint8")):
    """(image, its dask array): 2-D or with one or two leading axes, random chunks."""
    lead = draw(st.sampled_from([(), (2,), (2, 1)]))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype.kind == "f":
        image = rng.standard_normal((*lead, h, w)).astype(dtype)
    else:
        image = rng.integers(0, 50, (*lead, h, w)).astype(dtype)
    chunks = tuple(draw(chunking(n)) if n > 1 else (n,) for n in (*lead, h, w))
    return image, da.from_array(image, chunks=chunks)


def assert_matches(lazy, expected):
    """The dask result equals the in-memory one: integers exactly, floats to rounding (each
    chunk's convolution may sum in another order than the whole image's)."""
    assert isinstance(lazy, da.Array)
    expected = expected.numpy() if isinstance(expected, corrnet.Tensor) else expected
    got = lazy.compute()
    assert got.dtype == expected.dtype and got.shape == expected.shape == lazy.shape
    assert tuple(sum(c) for c in lazy.chunks) == lazy.shape
    if expected.dtype.kind in "iub":
        np.testing.assert_array_equal(got, expected)
    else:
        rtol = 1e-4 if expected.dtype.itemsize <= 4 else 1e-10
        scale = max(1.0, float(np.abs(expected).max(initial=0)))
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


# ---------------------------------------------------------------------------------------------
# corr2d and convolve2d
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), image=images(), mode=st.sampled_from(MODES),
       boundary=st.sampled_from(BOUNDARIES), kh=st.integers(1, 6), kw=st.integers(1, 6),
       fillvalue=st.sampled_from([0, 2, -1.5]), flip=st.booleans())
def test_issue16_corr2d_and_convolve2d_equal_the_in_memory_function(data, image, mode, boundary,
                                                                    kh, kw, fillvalue, flip):
    array, X = image
    h, w = array.shape[-2:]
    assume(mode != "valid" or (kh <= h and kw <= w))
    kernel_dtype = data.draw(st.sampled_from(["float64", "int64"]))
    K = np.random.default_rng(kh * 7 + kw).integers(-3, 4, (kh, kw)).astype(kernel_dtype)
    name = "convolve2d" if flip else "corr2d"
    lazy = getattr(cdask, name)(X, K, mode=mode, boundary=boundary, fillvalue=fillvalue)
    expected = getattr(corrnet, name)(array, K, mode=mode, boundary=boundary,
                                      fillvalue=fillvalue)
    assert_matches(lazy, expected)
    # scipy.signal defines the same thing (2-D float64, kernel inside the image)
    if array.ndim == 2 and array.dtype == np.float64 and kh <= h and kw <= w:
        scipy_function = scipy.signal.convolve2d if flip else scipy.signal.correlate2d
        reference = scipy_function(array, K.astype(float), mode=mode, boundary=boundary,
                                   fillvalue=fillvalue)
        np.testing.assert_allclose(expected.numpy(), reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_issue16_chunks_of_one_pixel_under_a_large_kernel(mode):
    """15x15 kernel, 1-pixel chunks, an image barely larger than the kernel: chunks merge."""
    rng = np.random.default_rng(1)
    image, K = rng.standard_normal((16, 17)), rng.standard_normal((15, 15))
    X = da.from_array(image, chunks=1)
    for boundary in BOUNDARIES:
        assert_matches(cdask.corr2d(X, K, mode, boundary),
                       scipy.signal.correlate2d(image, K, mode, boundary))


def test_issue16_kernel_larger_than_the_image_mirrors_and_wraps_again():
    """'same' and 'full' with a kernel larger than the image: the padding mirrors (or wraps)
    several times, as the in-memory function's (dask's own da.pad truncates such pads)."""
    rng = np.random.default_rng(2)
    image, K = rng.standard_normal((2, 3, 4)), rng.standard_normal((9, 6))
    X = da.from_array(image, chunks=(1, 2, 3))
    for mode in ("same", "full"):
        for boundary in BOUNDARIES:
            assert_matches(cdask.corr2d(X, K, mode, boundary, 0.5),
                           corrnet.corr2d(image, K, mode, boundary, 0.5))


def test_issue16_same_keeps_the_chunks_and_stays_lazy():
    calls = []

    def block(_):
        calls.append(1)
        return np.ones((40, 30))

    import dask

    X = da.concatenate([da.from_delayed(dask.delayed(block)(i), (40, 30), float)
                        for i in range(3)], axis=1)            # (40, 90), 3 chunks
    X = X.rechunk((20, 30))
    Y = cdask.corr2d(X, np.ones((4, 5)), mode="same", boundary="symm")
    assert calls == [] and Y.chunks == X.chunks
    assert_matches(Y, np.full((40, 90), 20.0))
    assert len(calls) == 3


def test_issue16_integer_and_bool_dtypes_follow_the_in_memory_function():
    image = np.arange(30).reshape(5, 6)
    for dtype, kernel in (("uint8", [[1, 2], [3, 4]]), ("int32", [[1, 2]]),
                          ("bool", [[1, 1], [1, 1]]), ("uint8", [[0.5, 0.5]])):
        array = (image % 7 == 0) if dtype == "bool" else image.astype(dtype)
        X = da.from_array(array, chunks=2)
        K = np.array(kernel)
        expected = corrnet.corr2d(array, K, "same", "fill", 3)
        assert_matches(cdask.corr2d(X, K, "same", "fill", 3), expected)


# ---------------------------------------------------------------------------------------------
# the named filters
# ---------------------------------------------------------------------------------------------

NAMED = ["edge", "sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "scharr_x", "scharr_y",
         "laplacian", "sharpen", "emboss", "sobel", "prewitt", "scharr"]
WITH_PARAMETERS = {"gaussian": (0.8,), "box": (4,), "unsharp": (0.6, 1.5)}


@pytest.mark.parametrize("name", NAMED + list(WITH_PARAMETERS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(dtypes=("float64", "float32", "uint8")), mode=st.sampled_from(MODES),
       boundary=st.sampled_from(BOUNDARIES), fillvalue=st.sampled_from([0, 2.5]))
def test_issue16_named_filters_equal_the_in_memory_filters(name, image, mode, boundary,
                                                           fillvalue):
    array, X = image
    args = WITH_PARAMETERS.get(name, ())
    size = {"gaussian": 7, "box": 4, "unsharp": 7, "edge": 2}.get(name, 3)
    assume(mode != "valid" or min(array.shape[-2:]) >= size)
    lazy = getattr(cdask, name)(X, *args, mode=mode, boundary=boundary, fillvalue=fillvalue)
    expected = getattr(filters, name)(array, *args, mode=mode, boundary=boundary,
                                      fillvalue=fillvalue)
    assert_matches(lazy, expected)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(dtypes=("float64",)), sigma=st.sampled_from([0.4, 0.9]),
       boundary=st.sampled_from(["symm", "wrap", "fill"]))
def test_issue16_gaussian_sobel_laplace_box_agree_with_scipy_ndimage(image, sigma, boundary):
    """scipy.ndimage defines the same filters in mode 'same' ('symm' = 'reflect', 'wrap' =
    'grid-wrap', 'fill' with 0 = 'constant'), for images at least as large as the kernel:
    the dask result and the in-memory one both equal it."""
    array, X = image
    assume(min(array.shape[-2:]) >= 2 * int(4 * sigma + 0.5) + 1)
    ndmode = {"symm": "reflect", "wrap": "grid-wrap", "fill": "constant"}[boundary]

    def per_plane(function):  # scipy.ndimage's filters work on every axis: one plane each
        planes = array.reshape(-1, *array.shape[-2:])
        return np.stack([function(plane) for plane in planes]).reshape(array.shape)

    cases = [  # (corrnet.dask, corrnet in memory, scipy.ndimage)
        (cdask.gaussian(X, sigma, boundary=boundary),
         filters.gaussian(array, sigma, boundary=boundary),
         per_plane(lambda p: scipy.ndimage.gaussian_filter(p, sigma, mode=ndmode))),
        (cdask.sobel_x(X, boundary=boundary), filters.sobel_x(array, boundary=boundary),
         per_plane(lambda p: scipy.ndimage.sobel(p, 1, mode=ndmode))),
        (cdask.laplacian(X, boundary=boundary), filters.laplacian(array, boundary=boundary),
         per_plane(lambda p: scipy.ndimage.laplace(p, mode=ndmode))),
        (cdask.box(X, 3, boundary=boundary), filters.box(array, 3, boundary=boundary),
         per_plane(lambda p: scipy.ndimage.uniform_filter(p, 3, mode=ndmode))),
        (cdask.sobel(X, boundary=boundary), filters.sobel(array, boundary=boundary),
         per_plane(lambda p: np.hypot(scipy.ndimage.sobel(p, 0, mode=ndmode),
                                      scipy.ndimage.sobel(p, 1, mode=ndmode)))),
    ]
    for lazy, in_memory, reference in cases:
        np.testing.assert_allclose(in_memory.numpy(), reference, rtol=1e-10, atol=1e-10)
        assert_matches(lazy, reference)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(dtypes=("float64",)), kh=st.integers(1, 5), kw=st.integers(1, 5),
       boundary=st.sampled_from(["symm", "fill"]))
def test_issue16_correlate_agrees_with_dask_image(image, kh, kw, boundary):
    """dask_image.ndfilters.correlate on the same chunks, where its modes map ('reflect',
    'constant'); both centre the kernel at K[kh // 2, kw // 2]."""
    ndfilters = pytest.importorskip("dask_image.ndfilters")
    array, X = image
    assume(min(array.shape[-2:]) >= max(kh, kw))
    K = np.random.default_rng(kh * 5 + kw).standard_normal((kh, kw))
    weights = K.reshape((1,) * (array.ndim - 2) + K.shape)
    ndmode = {"symm": "reflect", "fill": "constant"}[boundary]
    theirs = ndfilters.correlate(X, weights, mode=ndmode).compute()
    assert_matches(cdask.correlate(X, K, boundary=boundary), theirs)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_issue16_bad_input_is_refused_with_the_argument_and_shapes():
    X = da.ones((8, 9), chunks=4)
    with pytest.raises(TypeError, match=r"X must be a dask array.*corrnet\.corr2d"):
        cdask.corr2d(np.ones((8, 9)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"X must have shape \(\.\.\., H, W\).*\(8,\)"):
        cdask.sobel(da.ones(8, chunks=4))
    with pytest.raises(TypeError, match=r"K must be in memory.*K\.compute\(\)"):
        cdask.corr2d(X, da.ones((2, 2), chunks=1))
    with pytest.raises(ValueError, match=r"K must be 2-D.*\(2, 2, 2\)"):
        cdask.convolve2d(X, np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"kernel of shape \(9, 2\) is larger than the image X "
                                         r"of shape \(8, 9\)"):
        cdask.corr2d(X, np.ones((9, 2)), mode="valid")
    with pytest.raises(TypeError, match=r"X must hold.*complex128.*\(8, 9\)"):
        cdask.gaussian(X.astype(complex), 1.0)
    with pytest.raises(TypeError, match=r"X must hold.*object"):
        cdask.corr2d(da.from_array(np.ones((4, 4), dtype=object), chunks=2), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"K must hold.*complex"):
        cdask.corr2d(X, np.ones((2, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"mode must be .*mode='middle'"):
        cdask.box(X, 3, mode="middle")
    with pytest.raises(ValueError, match=r"boundary must be .*boundary='mirror'"):
        cdask.corr2d(X, np.ones((2, 2)), boundary="mirror")
    with pytest.raises(ValueError, match=r"\(H, W, C\).*X\.permute\(2, 0, 1\)"):
        cdask.sobel(da.ones((30, 20, 3), chunks=10))
    with pytest.raises(NotImplementedError, match=r"uint16.*X\.astype\('float32'\)"):
        cdask.corr2d(X.astype("uint16"), np.ones((2, 2), dtype="uint16"))
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        cdask.sobel(X[X[:, 0] > 0])
    with pytest.raises(ValueError, match=r"sigma must be a finite number"):
        cdask.gaussian(X, -1.0)
    with pytest.raises(ValueError, match=r"box: n must be a positive integer"):
        cdask.box(X, 0)


# ---------------------------------------------------------------------------------------------
# the package: lazy about dask, its examples run
# ---------------------------------------------------------------------------------------------

def test_issue16_corrnet_does_not_import_dask_and_corrnet_dask_names_the_extra():
    import subprocess
    import sys

    code = ("import sys, corrnet; assert 'dask' not in sys.modules, 'corrnet imported dask'\n"
            "sys.modules['dask'] = None  # as if the extra were not installed\n"
            "try:\n    import corrnet.dask\nexcept ImportError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install corrnet[dask]" in done.stdout


@pytest.mark.parametrize("module", ["corrnet.dask", "corrnet.dask.filtering",
                                    "corrnet.dask.batch", "corrnet.dask.shipping"])
def test_issue16_docstring_examples(module, tmp_path, monkeypatch):
    import doctest
    import importlib

    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module)
    globs = {**vars(module), "corrnet": corrnet, "np": np}
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(
        module, module.__name__, globs=globs) if t.examples]
    assert tests
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_issue16_the_readme_section_runs_as_pasted():
    """README's "Huge images on Dask": its examples (filters, predict, apply) print what they
    say."""
    import doctest
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    section = re.search(r"## Huge images on Dask\n(.*?)\n## ", text, re.S)
    if section is None:
        pytest.skip("README has no section 'Huge images on Dask'")
    blocks = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    assert len(blocks) >= 2  # filtering and prediction; tiled inference (one namespace)
    test = doctest.DocTestParser().get_doctest("".join(blocks), {}, "README", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
