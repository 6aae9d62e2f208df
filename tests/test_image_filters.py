"""corrnet.corr2d / corrnet.convolve2d against SciPy (values) and PyTorch (gradients).

``corr2d(X, K, mode='valid'|'same'|'full', boundary='fill'|'wrap'|'symm', fillvalue=0)`` and
``convolve2d`` (same signature, flipped kernel) filter a 2-D array, or every trailing 2-D
slice of an (..., H, W) array with the same 2-D kernel.  Oracle for the values: SciPy's
``signal.correlate2d`` / ``signal.convolve2d`` applied to each 2-D slice (in float64 or
int64, then cast to the dtype PyTorch's promotion gives, which is what corrnet follows).
Oracle for the gradients: the same filter built from PyTorch ops (padding by index maps, then
``conv2d``), itself first checked against SciPy's forward values.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch as tt
import torch.nn.functional as tF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corrnet as ct

from torch_compare import assert_scaled_close, seeds

MODES = ["valid", "same", "full"]
BOUNDARIES = ["fill", "wrap", "symm"]
NUMERIC = ["int32", "int64", "float32", "float64"]
FILTERS = {"corr2d": scipy.signal.correlate2d, "convolve2d": scipy.signal.convolve2d}
RTOL = {"float32": 1e-4, "float64": 1e-10}
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _promoted(x_dtype: str, k_dtype: str) -> str:
    return str(tt.promote_types(getattr(tt, x_dtype), getattr(tt, k_dtype))).rsplit(".", 1)[-1]


def scipy_filter(op: str, X: np.ndarray, K: np.ndarray, mode: str, boundary: str,
                 fillvalue) -> np.ndarray:
    """SciPy on every trailing 2-D slice, cast to torch's promoted dtype."""
    out_dtype = np.dtype(_promoted(X.dtype.name, K.dtype.name))
    work = np.float64 if out_dtype.kind == "f" else np.int64
    flat = X.reshape(-1, *X.shape[-2:]).astype(work)
    outs = [FILTERS[op](s, K.astype(work), mode=mode, boundary=boundary,
                        fillvalue=fillvalue) for s in flat]
    return np.stack(outs).reshape(*X.shape[:-2], *outs[0].shape).astype(out_dtype)


def _numpy(t) -> np.ndarray:
    return np.array(t.detach().numpy() if hasattr(t, "detach") else t, copy=True)


def _assert_matches(out, expected: np.ndarray, what: str) -> None:
    assert isinstance(out, ct.Tensor), f"{what}: returned {type(out).__name__}, not a Tensor"
    assert str(out.dtype).rsplit(".", 1)[-1] == expected.dtype.name, (
        f"{what}: dtype {out.dtype} != {expected.dtype}")
    got = _numpy(out)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    if expected.dtype.kind == "f":
        rtol = RTOL[expected.dtype.name]
        assert_scaled_close(got, expected, rtol, rtol / 10, what)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=what)


def _array(rng, shape, dtype: str) -> np.ndarray:
    if dtype.startswith("int"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.uniform(-2, 2, size=shape).astype(dtype)


@st.composite
def filter_configs(draw):
    op = draw(st.sampled_from(sorted(FILTERS)))
    mode = draw(st.sampled_from(MODES))
    boundary = draw(st.sampled_from(BOUNDARIES))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    if mode == "valid" or boundary != "fill":
        # valid: the kernel must fit (corrnet keeps rejecting larger kernels); wrap/symm: a
        # kernel within the input keeps SciPy's boundary extension to one period
        kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    else:
        kh, kw = draw(st.integers(1, h + 3)), draw(st.integers(1, w + 3))
    lead = draw(st.sampled_from([(), (), (1,), (3,), (2, 3)]))
    x_dtype, k_dtype = draw(st.sampled_from(NUMERIC)), draw(st.sampled_from(NUMERIC))
    if _promoted(x_dtype, k_dtype).startswith("int"):
        fillvalue = draw(st.sampled_from([0, 0, 1, -3]))
    else:
        fillvalue = draw(st.sampled_from([0, 0, 1.5, -2.0]))
    as_tensor = draw(st.sampled_from(["tensor", "tensor", "numpy", "mixed"]))
    return (op, (*lead, h, w), (kh, kw), x_dtype, k_dtype, mode, boundary, fillvalue, as_tensor,
            draw(seeds))


@SETTINGS
@given(filter_configs())
def test_filters_match_scipy_on_every_slice(cfg):
    op, x_shape, k_shape, x_dtype, k_dtype, mode, boundary, fillvalue, as_tensor, seed = cfg
    rng = np.random.default_rng(seed)
    X, K = _array(rng, x_shape, x_dtype), _array(rng, k_shape, k_dtype)
    expected = scipy_filter(op, X, K, mode, boundary, fillvalue)
    x_in = X if as_tensor == "numpy" else ct.tensor(X)
    k_in = K if as_tensor != "tensor" else ct.tensor(K)
    kwargs = {"mode": mode, "boundary": boundary, "fillvalue": fillvalue}
    if mode == "valid" and boundary == "fill" and fillvalue == 0:
        kwargs = {}  # the defaults
    out = getattr(ct, op)(x_in, k_in, **kwargs)
    _assert_matches(out, expected, f"{op}({X.dtype}{X.shape}, {K.dtype}{K.shape}, {kwargs})")


@pytest.mark.parametrize("op", sorted(FILTERS))
def test_filters_default_is_valid_fill(op):
    rng = np.random.default_rng(1)
    X, K = _array(rng, (6, 7), "float64"), _array(rng, (3, 2), "float64")
    expected = FILTERS[op](X, K, mode="valid")
    _assert_matches(getattr(ct, op)(ct.tensor(X), ct.tensor(K)), expected, op)
    _assert_matches(getattr(ct, op)(X, K), expected, op + " on numpy arrays")


def test_corr2d_d2l_example_unchanged():
    X = ct.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = ct.tensor([[0.0, 1.0], [2.0, 3.0]])
    _assert_matches(ct.corr2d(X, K), np.array([[19.0, 25.0], [37.0, 43.0]], np.float32),
                    "corr2d")
    # true convolution flips the kernel: 0*3 + 1*2 + 3*1 + 4*0 = 5, ...
    _assert_matches(ct.convolve2d(X, K),
                    scipy.signal.convolve2d(_numpy(X), _numpy(K), "valid").astype(np.float32),
                    "convolve2d")


@pytest.mark.parametrize("op", sorted(FILTERS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("k_shape", [(2, 2), (3, 4), (1, 3), (4, 1)])
def test_filters_even_and_odd_kernels_all_modes(op, mode, boundary, k_shape):
    rng = np.random.default_rng(2)
    X, K = _array(rng, (2, 5, 6), "float64"), _array(rng, k_shape, "float64")
    expected = scipy_filter(op, X, K, mode, boundary, 0.5)
    out = getattr(ct, op)(ct.tensor(X), ct.tensor(K), mode=mode, boundary=boundary,
                          fillvalue=0.5)
    _assert_matches(out, expected, f"{op} {mode} {boundary} {k_shape}")


@pytest.mark.parametrize("op", sorted(FILTERS))
@pytest.mark.parametrize("bad", [
    {"mode": "middle"}, {"boundary": "reflect"}, {"boundary": "nearest"},
])
def test_filters_reject_unknown_mode_and_boundary(op, bad):
    X, K = ct.tensor(np.ones((4, 4))), ct.tensor(np.ones((2, 2)))
    with pytest.raises(ValueError):
        getattr(ct, op)(X, K, **bad)
    with pytest.raises(ValueError):  # SciPy refuses them too
        FILTERS[op](np.ones((4, 4)), np.ones((2, 2)), **bad)


@pytest.mark.parametrize("op", sorted(FILTERS))
def test_filters_reject_bad_shapes(op):
    with pytest.raises((RuntimeError, ValueError)):
        getattr(ct, op)(ct.tensor(np.ones((3, 3))), ct.tensor(np.ones((4, 2))))  # valid
    with pytest.raises((RuntimeError, ValueError)):
        getattr(ct, op)(ct.tensor(np.ones(5)), ct.tensor(np.ones((2, 2))))  # 1-D X
    with pytest.raises((RuntimeError, ValueError)):
        getattr(ct, op)(ct.tensor(np.ones((5, 5))), ct.tensor(np.ones((2, 2, 2))))  # 3-D K


# ------------------------------------------------------------------ gradients (torch)
def _pad_index(n: int, before: int, after: int, boundary: str) -> np.ndarray:
    return np.pad(np.arange(n), (before, after), mode={"wrap": "wrap", "symm": "symmetric"}[
        boundary])


def torch_filter(op, X, K, mode, boundary, fillvalue, lefts):
    """The filter in PyTorch ops: pad X (by `lefts` before, the rest after), conv2d."""
    dtype = tt.promote_types(X.dtype, K.dtype)
    X, K = X.to(dtype), K.to(dtype)
    if op == "convolve2d":
        K = tt.flip(K, (0, 1))
    (kh, kw), (h, w) = K.shape, X.shape[-2:]
    if mode == "valid":
        pads = [(0, 0), (0, 0)]
    elif mode == "full":
        pads = [(kh - 1, kh - 1), (kw - 1, kw - 1)]
    else:
        pads = [(lefts[0], kh - 1 - lefts[0]), (lefts[1], kw - 1 - lefts[1])]
    x = X.reshape(-1, 1, h, w)
    if mode != "valid":
        if boundary == "fill":
            x = tF.pad(x, (*pads[1], *pads[0]), value=float(fillvalue))
        else:
            x = x[:, :, tt.tensor(_pad_index(h, *pads[0], boundary))]
            x = x[:, :, :, tt.tensor(_pad_index(w, *pads[1], boundary))]
    y = tF.conv2d(x, K[None, None])
    return y.reshape(*X.shape[:-2], *y.shape[-2:])


def _lefts_matching_scipy(op, X, K, mode, boundary, fillvalue):
    """The 'same' alignment that reproduces SciPy (the torch oracle is checked by SciPy)."""
    expected = scipy_filter(op, X, K, mode, boundary, fillvalue)
    kh, kw = K.shape
    for lefts in {((kh - 1) // 2, (kw - 1) // 2), (kh // 2, kw // 2),
                  ((kh - 1) // 2, kw // 2), (kh // 2, (kw - 1) // 2)}:
        got = torch_filter(op, tt.tensor(X), tt.tensor(K), mode, boundary, fillvalue, lefts)
        if got.shape == expected.shape and np.allclose(got.numpy(), expected, atol=1e-8):
            return lefts
    raise AssertionError("no torch reference reproduces SciPy")  # pragma: no cover


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filter_configs(), st.sampled_from(["float32", "float64"]),
       st.sampled_from(["float32", "float64"]))
def test_filter_gradients_match_torch(cfg, x_dtype, k_dtype):
    op, x_shape, k_shape, _, _, mode, boundary, fillvalue, _, seed = cfg
    rng = np.random.default_rng(seed)
    X, K = _array(rng, x_shape, x_dtype), _array(rng, k_shape, k_dtype)
    fillvalue = float(fillvalue)
    lefts = _lefts_matching_scipy(op, X.astype(np.float64), K.astype(np.float64), mode,
                                  boundary, fillvalue)
    xt, kt = tt.tensor(X, requires_grad=True), tt.tensor(K, requires_grad=True)
    xc, kc = ct.tensor(X, requires_grad=True), ct.tensor(K, requires_grad=True)
    yt = torch_filter(op, xt, kt, mode, boundary, fillvalue, lefts)
    yc = getattr(ct, op)(xc, kc, mode=mode, boundary=boundary, fillvalue=fillvalue)
    _assert_matches(yc, yt.detach().numpy(), f"{op} forward")
    assert yc.requires_grad
    up = rng.standard_normal(tuple(yt.shape)).astype(yt.detach().numpy().dtype)
    yt.backward(tt.tensor(up))
    yc.backward(ct.tensor(up))
    for name, c, t in (("X", xc, xt), ("K", kc, kt)):
        assert c.grad is not None, f"{op}: no gradient for {name}"
        _assert_matches(c.grad, t.grad.numpy(), f"{op} {mode} {boundary}: grad of {name}")
