"""Issue 13, a planner that fits the machine: corrnet's kernels are compiled with LLVM's
"prefer-vector-width"="512" (kernels/jit.py, `_wide_vector_compiler`), so that on Intel's
AVX-512 server cores, where LLVM's own tuning vectorizes with 256-bit registers, their loops
use the 512-bit ones, as they already do on AMD's Zen 4. Checked here: the attribute reaches
the compiled function, the loops use 512-bit registers where the CPU has them, the max
pool's kernel keeps LLVM's own width, and a kernel computes the same numbers either way."""

from __future__ import annotations

import numpy as np
import pytest

from corrnet.kernels import jit

COMPILED = pytest.mark.skipif(not jit.AVAILABLE, reason="needs numba")
WIDE = '"prefer-vector-width"="512"'


def multiply_add(x, y, out):
    for i in range(x.shape[0]):
        out[i] = x[i] * y[i] + y[i]


def _dispatcher(wide: bool):
    numba = jit.load_numba()
    pipeline = {"pipeline_class": jit._wide_vector_compiler()} if wide else {}
    return numba.njit(nogil=True, error_model="numpy", **pipeline)(multiply_add)


def _host_has_avx512() -> bool:
    import llvmlite.binding as llvm

    return bool(llvm.get_host_cpu_features().get("avx512f", False))


@COMPILED
def test_issue13_wide_compiler_marks_the_function_and_computes_alike():
    x = np.arange(1000, dtype=np.float32) / 7
    y = np.linspace(-1, 1, 1000, dtype=np.float32)
    results = {}
    for wide in (True, False):
        kernel = _dispatcher(wide)
        out = np.empty_like(x)
        kernel(x, y, out)
        results[wide] = out
        ir = kernel.inspect_llvm(kernel.signatures[0])
        assert (WIDE in ir) is wide
    np.testing.assert_array_equal(results[True], results[False])
    np.testing.assert_array_equal(results[True], x * y + y)


@COMPILED
@pytest.mark.skipif(jit.AVAILABLE and not _host_has_avx512(), reason="the CPU has no AVX-512")
def test_issue13_wide_loops_use_512_bit_registers():
    """On any CPU with AVX-512 (Intel's, whose tuning prefers 256 bits, or AMD's Zen 4), the
    marked loop runs on zmm registers."""
    kernel = _dispatcher(True)
    x = np.ones(4096, np.float32)
    kernel(x, x, np.empty_like(x))
    assembly = kernel.inspect_asm(kernel.signatures[0])
    assert "zmm" in assembly


@COMPILED
def test_issue13_jit_kernels_use_the_wide_compiler_and_max_pool_opts_out():
    from corrnet.kernels import direct, pool

    assert direct._shifted_sum_kernel.wide_vectors
    assert not pool._max_pool_kernel(2, 2, 2, 2, 1, 1).wide_vectors
    # what `jit` compiles with, either way (numba's dispatcher keeps its pipeline class)
    wide = jit._compile(multiply_add, False, True)
    narrow = jit._compile(multiply_add, False, False)
    assert wide._compiler.pipeline_class is jit._wide_vector_compiler()
    assert narrow._compiler.pipeline_class is not jit._wide_vector_compiler()


@COMPILED
def test_issue13_forward_engine_same_numbers_wide_and_narrow():
    """The direct engine's forward kernel (`_shifted_sum_kernel`, no reassociation) compiled
    both ways gives bit-for-bit the same output on a 3x3 filter of a random image."""
    from corrnet.kernels import direct

    numba = jit.load_numba()
    rng = np.random.default_rng(3)
    image = rng.standard_normal((1, 1, 67, 45)).astype(np.float32)
    weight = rng.standard_normal((1, 9)).astype(np.float32)
    taps = direct._window_taps((1, 1, 3, 3), (1, 1))
    layout = direct._layout(image.shape, taps, (1, 1), 0, 0, (65, 43), 1, 1)
    outputs = []
    for pipeline in ({"pipeline_class": jit._wide_vector_compiler()}, {}):
        kernel = numba.njit(nogil=True, error_model="numpy", **pipeline)(
            direct._shifted_sum_kernel.py_func)
        out = np.empty((1, 1, 65, 43), np.float32)
        kernel(image.reshape(-1), image.shape, weight, layout.tap_offsets,
               np.zeros(1, np.float32), out, 1, 1, 0, 0, 1, layout.band_rows,
               layout.source_rows, layout.row_width, layout.copy_source, layout.tasks, 2,
               np.zeros(1, np.int64))
        outputs.append(out)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    expected = sum(weight[0, 3 * i + j] * image[0, 0, i:i + 65, j:j + 43].astype(np.float64)
                   for i in range(3) for j in range(3))
    np.testing.assert_allclose(outputs[0][0, 0], expected, rtol=1e-5, atol=1e-5)


@COMPILED
def test_issue13_without_the_hooks_jit_compiles_at_llvms_width(monkeypatch):
    """A numba without the lowering hooks (`_wide_vector_compiler` gives None): the kernel
    compiles with numba's own compiler and computes the same numbers."""
    monkeypatch.setattr(jit, "_wide_vector_compiler", lambda: None)
    kernel = jit._compile(multiply_add, False, True)
    assert kernel._compiler.pipeline_class is not None      # (numba's default, not None)
    x = np.linspace(0, 1, 300, dtype=np.float32)
    out = np.empty_like(x)
    kernel(x, x, out)
    np.testing.assert_array_equal(out, x * x + x)
