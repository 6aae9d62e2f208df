"""Issue 13: compiled kernels multiply matrices on NumPy's own BLAS (blas.py): `product_into`
against NumPy's float64 products over shapes (empty ones too), dtypes and the operands'
layouts, on both paths (NumPy's CBLAS, and np.dot where it is not reachable); the kernels
that call it, on both paths, against PyTorch; the thread count of the library it calls."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corrnet.kernels import blas, direct, jit, threads, unrolled, winograd
from corrnet.kernels.windows import make_window

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="compiled kernels are off")

NUMPY_GEMM = blas.gemm_for(np.float32) is not None
PATHS = ["numpy", "none"] if NUMPY_GEMM else ["none"]


@functools.cache
def _product_kernel():
    """A compiled caller of `blas.product_into` (compiled once, on first use)."""
    numba = jit.load_numba()

    @numba.njit
    def product(gemm, a, b, out):
        blas.product_into(gemm, a, b, out)

    return product


def _product(gemm, a, b, out):
    _product_kernel()(gemm, a, b, out)


def _laid_out(matrix, order):
    """matrix with its rows contiguous ("C") or its columns ("F": a transposed C array)."""
    return np.ascontiguousarray(matrix) if order == "C" else np.ascontiguousarray(matrix.T).T


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 37), inner=st.integers(0, 41), cols=st.integers(0, 39),
       dtype=st.sampled_from([np.float32, np.float64]), a_order=st.sampled_from("CF"),
       b_order=st.sampled_from("CF"), path=st.sampled_from(PATHS), seed=st.integers(0, 99))
@example(rows=3, inner=0, cols=4, dtype=np.float32, a_order="C", b_order="C", path=PATHS[0],
         seed=0)      # (an empty inner dimension: the product is zeros)
def test_issue13_product_into_is_the_matrix_product(rows, inner, cols, dtype, a_order,
                                                     b_order, path, seed):
    rng = np.random.default_rng(seed)
    a = _laid_out(rng.standard_normal((rows, inner)).astype(dtype), a_order)
    b = _laid_out(rng.standard_normal((inner, cols)).astype(dtype), b_order)
    assert a.flags.c_contiguous or a.flags.f_contiguous
    out = np.full((rows, cols), np.nan, dtype)        # (every number must be written)
    _product(blas.gemm_for(dtype) if path == "numpy" else None, a, b, out)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    tolerance = (1e-5 if dtype == np.float32 else 1e-13) * (scale + 1)
    assert out.dtype == dtype
    assert np.all(np.abs(out - expected) <= tolerance)


def test_issue13_product_into_takes_views_of_larger_arrays():
    """Operands that are slices of larger arrays, as the kernels pass them (Winograd's
    kernel blocks: a transposed run of rows; the items' channel blocks: a run of rows)."""
    if not NUMPY_GEMM:
        pytest.skip("NumPy's BLAS has no 64-bit CBLAS interface here")
    rng = np.random.default_rng(3)
    kernels = rng.standard_normal((4, 50, 24)).astype(np.float32)   # (positions, Cg, Og)
    transformed = rng.standard_normal((4, 50, 31)).astype(np.float32)
    out = np.empty((24, 31), np.float32)
    kernel_block, columns = kernels[2, 10:40].T, transformed[2, 10:40]
    _product(blas.gemm_for(np.float32), kernel_block, columns, out)
    expected = kernel_block.astype(np.float64) @ columns.astype(np.float64)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_issue13_gemm_for_reaches_numpys_own_blas():
    """NumPy's wheels carry an OpenBLAS with the 64-bit CBLAS interface: gemm_for finds it,
    and `controller` is the library np.matmul itself runs on (threadpoolctl's view of it)."""
    from threadpoolctl import ThreadpoolController

    built = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if built.get("name") != "scipy-openblas" or "USE64BITINT" not in built.get(
            "openblas configuration", ""):
        pytest.skip(f"NumPy's BLAS here is {built.get('name')}, not a scipy-openblas64 build")
    assert blas.gemm_for(np.float32) is not None and blas.gemm_for(np.float64) is not None
    assert blas.gemm_for(np.int32) is None and blas.gemm_for(np.float16) is None
    # the library np.matmul runs on: the one whose thread count changes matmul's threads
    library = blas.controller()
    assert library is not None and library.internal_api == "openblas"
    matmul_libraries = ThreadpoolController().select(user_api="blas")
    assert library.filepath in [lib.filepath for lib in matmul_libraries.lib_controllers]
    assert "numpy" in library.filepath


def test_issue13_weight_gradients_take_numpys_blas_unless_it_runs_avx512_kernels(monkeypatch):
    """`weight_gradient_gemm`: NumPy's gemm with OpenBLAS's AVX2 (or older) kernels, np.dot
    (None) with its AVX-512 ones, whatever the case of the name; None where NumPy's BLAS
    cannot be reached."""
    for core in ("Haswell", "Zen", "Prescott", ""):
        monkeypatch.setattr(blas, "_openblas_core", lambda core=core: core)
        assert blas.weight_gradient_gemm(np.float32) is blas.gemm_for(np.float32)
    for core in ("SkylakeX", "COOPERLAKE", "SapphireRapids"):
        monkeypatch.setattr(blas, "_openblas_core", lambda core=core: core)
        assert blas.weight_gradient_gemm(np.float32) is None
    monkeypatch.setattr(blas, "_openblas_core", lambda: "Haswell")
    monkeypatch.setattr(blas, "gemm_for", lambda dtype: None)
    assert blas.weight_gradient_gemm(np.float64) is None


def test_issue13_openblas_core_names_the_kernels_of_numpys_blas():
    """The core name comes from NumPy's own OpenBLAS, as threadpoolctl reports it."""
    if not NUMPY_GEMM:
        pytest.skip("NumPy's BLAS has no 64-bit CBLAS interface here")
    library = blas.controller()
    assert blas._openblas_core() == library.architecture


def test_issue13_kernels_blas_runs_on_one_thread_meanwhile():
    if not NUMPY_GEMM:
        pytest.skip("NumPy's BLAS has no 64-bit CBLAS interface here")
    library = blas.controller()
    before = library.num_threads
    with threads.numba_blas_on_one_thread():
        assert library.num_threads == 1
    assert library.num_threads == before


CASES = [   # (algorithm, N, C_in, C_out, size, kernel, stride, padding)
    ("pointwise", 3, 20, 12, 9, 1, 1, 0),
    ("pointwise", 2, 12, 20, 9, 1, 2, 0),
    ("unrolled", 3, 6, 16, 14, 5, 1, 0),
    ("unrolled", 2, 5, 13, 11, 3, 2, 1),
    ("winograd", 2, 17, 19, 10, 3, 1, 1),
]
MODULES = {"pointwise": direct.pointwise, "unrolled": unrolled, "winograd": winograd}


@pytest.mark.parametrize("core", ["Haswell", "SkylakeX"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CASES, ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)])
def test_issue13_kernels_on_either_blas_match_torch(case, path, core, monkeypatch):
    """The compiled passes that multiply matrices, with NumPy's BLAS and with np.dot (where
    `gemm_for` finds none), against PyTorch in float64; the weight gradients on either,
    as NumPy's OpenBLAS runs AVX2 kernels ("Haswell": NumPy's) or AVX-512 ones ("SkylakeX":
    np.dot)."""
    name, n, c_in, c_out, size, k, stride, padding = case
    monkeypatch.setattr(blas, "_openblas_core", lambda: core)
    if path == "none":
        monkeypatch.setattr(blas, "gemm_for", lambda dtype: None)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c_in, size, size))
    weight = rng.standard_normal((c_out, c_in, k, k))
    bias = rng.standard_normal(c_out)
    window = make_window("conv2d", size, size, (k, k), (stride, stride),
                         ((padding, padding), (padding, padding)), (1, 1))
    grad_out = rng.standard_normal((n, c_out, window.out_height, window.out_width))
    module = MODULES[name]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight, requires_grad=True)
    out_t = torch.nn.functional.conv2d(xt, wt, torch.tensor(bias), stride, padding)
    out_t.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(module.forward(x, weight, bias, window, 1),
                               out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(module.grad_input(grad_out, weight, window, 1, x.shape),
                               xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(module.grad_weight(grad_out, x, weight.shape, window, 1),
                               wt.grad.numpy(), rtol=1e-10, atol=1e-9)
