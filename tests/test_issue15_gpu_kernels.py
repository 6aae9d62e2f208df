"""Issue 15: the device kernels (kernels/device_conv.py, kernels/device_pool.py), written
against an array namespace so that CuPy runs them on a GPU, checked here on the CPU.

* against PyTorch's CPU kernels (hypothesis over shapes, stride, padding, dilation, groups,
  ceil_mode, count_include_pad, divisor_override, dtypes, memory budgets; forward and every
  gradient, max pooling's indices), and against the plain loops of kernels/reference.py;
* through `strict`, a namespace that forwards only the functions CuPy also has
  (namespace.PORTABLE, each in CuPy's reference) and hands out arrays that, as CuPy's, refuse
  NumPy's own functions and any mixing with host arrays: a NumPy-only call, or a host array
  created inside a kernel, fails here as it would on a GPU;
* by reading the modules: NumPy itself is used there for dtype metadata only, and CuPy is
  never imported;
* on a GPU, where CuPy and one are there (the lent machine: not in CI, and not in the
  session that wrote this), the same hypothesis tests also run the kernels with CuPy's
  namespace (`MODES`).

PyTorch's CPU build is the oracle (its CUDA build is not installed here); integer-valued
float inputs make every sum exact, so that results compare exactly whatever the order of
the additions.
"""

from __future__ import annotations

import ast
import doctest
import gc
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from corrnet.kernels import device_conv, device_pool, jit, namespace, pool, reference
from corrnet.kernels.windows import make_window

from pool_geometry import pool_windows_touch_input

KERNEL_MODULES = (device_conv, device_pool)


# ---------------------------------------------------------------------------------------------
# a strict stand-in for CuPy: only CuPy's functions, arrays that stay "on the device"
# ---------------------------------------------------------------------------------------------

_inside = [0]   # > 0 while a namespace function runs (NumPy's functions may then see arrays)


class DeviceArray(np.ndarray):
    """A NumPy array playing a CuPy array: NumPy's own functions (np.zeros_like(a), ...)
    refuse it, and ufuncs, item assignment and indexing refuse host arrays beside it."""

    def __array_function__(self, func, types, args, kwargs):
        if not _inside[0]:
            raise TypeError(f"numpy.{func.__name__} called on a device array: use xp")
        return super().__array_function__(func, types, args, kwargs)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        operands = inputs + (out or ())
        _refuse_host(operands, f"numpy.{ufunc.__name__}")
        inputs = tuple(_host_view(a) for a in inputs)
        if out is not None:
            kwargs["out"] = tuple(_host_view(a) for a in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(result)

    def __setitem__(self, key, value):
        _refuse_host((key, value) if not isinstance(key, tuple) else (*key, value),
                     "item assignment")
        super().__setitem__(key, value)

    def __getitem__(self, key):
        _refuse_host(key if isinstance(key, tuple) else (key,), "indexing")
        return super().__getitem__(key)


def _refuse_host(operands, what):
    for a in operands:
        if isinstance(a, np.ndarray) and not isinstance(a, DeviceArray) and a.ndim:
            raise TypeError(f"{what}: a host (NumPy) array mixed with device arrays")


def _host_view(a):
    return a.view(np.ndarray) if isinstance(a, DeviceArray) else a


def _device(result):
    if isinstance(result, tuple):
        return tuple(_device(r) for r in result)
    if isinstance(result, np.ndarray) and not isinstance(result, DeviceArray):
        return result.view(DeviceArray)
    return result


def _forwarding(name, function):
    def call(*args, **kwargs):
        _inside[0] += 1
        try:
            return _device(function(*args, **kwargs))
        finally:
            _inside[0] -= 1
    call.__name__ = name
    return call


class _Namespace:
    """The functions of namespace.PORTABLE (and lib.stride_tricks.as_strided), nothing else:
    any other attribute is an AttributeError naming it."""

    def __init__(self):
        for name in namespace.PORTABLE:
            setattr(self, name, _forwarding(name, getattr(np, name)))
        stride_tricks = type("stride_tricks", (), {"as_strided": staticmethod(_forwarding(
            "as_strided", np.lib.stride_tricks.as_strided))})
        self.lib = type("lib", (), {"stride_tricks": stride_tricks})

    def __getattr__(self, name):
        raise AttributeError(f"the device kernels called xp.{name}, which is not in "
                             "namespace.PORTABLE (the functions CuPy also has)")


strict = _Namespace()


def _cupy_modes() -> list[str]:
    """["cupy"] where CuPy and a GPU are there (the lent GPU machine), else []."""
    try:
        import cupy
        return ["cupy"] if cupy.cuda.runtime.getDeviceCount() > 0 else []
    except Exception:   # noqa: BLE001  (no CuPy, no driver, no device)
        return []


# numpy: NumPy's namespace found from the arrays (xp=None); strict: the stand-in above;
# cupy: CuPy's on the GPU, where there is one
MODES = ["numpy", "strict", *_cupy_modes()]


def _mode(name):
    """(xp, host -> device, device -> host) of a mode."""
    if name == "numpy":
        return None, np.asarray, np.asarray
    if name == "strict":
        return strict, on_device, to_host
    import cupy
    return cupy, cupy.asarray, cupy.asnumpy


def on_device(a):
    return None if a is None else np.array(a).view(DeviceArray)


def to_host(a):
    assert isinstance(a, DeviceArray), f"a {type(a).__name__} came back, not a device array"
    return a.view(np.ndarray)


def test_strict_namespace_catches_what_cupy_refuses():
    a = on_device(np.ones((2, 2)))
    with pytest.raises(AttributeError, match="xp.add"):
        strict.add                                              # noqa: B018
    with pytest.raises(TypeError, match="numpy.zeros_like"):
        np.zeros_like(a)
    with pytest.raises(TypeError, match="host"):
        a + np.ones((2, 2))
    with pytest.raises(TypeError, match="host"):
        a[...] = np.ones((2, 2))
    assert isinstance(strict.matmul(a, a), DeviceArray)
    assert isinstance(strict.asarray(np.ones(3)), DeviceArray)     # an explicit upload


def test_kernel_modules_use_numpy_for_dtypes_only_and_never_import_cupy():
    """Arrays come from `xp` only: NumPy's module appears in the kernels for dtype
    metadata (np.dtype, np.float16 ..., np.issubdtype), and CuPy is not imported."""
    metadata = {"dtype", "float16", "float32", "int64", "issubdtype", "floating"}
    for module in KERNEL_MODULES + (namespace,):
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not any("cupy" in n for n in names), f"{module.__name__} imports cupy"
            if module is namespace:
                continue
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "np"):
                assert node.attr in metadata, f"{module.__name__} calls np.{node.attr}"


def test_docstring_examples():
    for module in KERNEL_MODULES + (namespace,):
        failed, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert tried and not failed, module.__name__


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------

T = torch.nn.functional


def _values(rng, shape, dtype, low=-3, high=4):
    """Small integers (every sum exact) in `dtype`."""
    return rng.integers(low, high, shape).astype(dtype)


@st.composite
def conv_problems(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    size = [draw(st.integers(max(1, r - 2 * p), r + 6))
            for r, p in zip(reach, padding, strict=True)]
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(["float32", "float64", "float64", "float16", "int64",
                                  "int32", "int8"]))
    if dtype in ("int32", "int8"):
        dilation = (1, 1)                 # PyTorch's CPU build: dilated integer conv int64 only
        size = [max(s, k - 2 * p) for s, k, p in zip(size, kernel, padding, strict=True)]
    if dtype == "float16" and kernel[1] == 1:
        # PyTorch 2.13's CPU float16 conv2d reads out of bounds, and segfaults now and then
        # (~1 call in 3000 of these), with an input 1 wide, a kernel 1 wide dilated, a stride
        # and padding in width (x (1, 1, 7, 1), weight (1, 1, 1, 1), stride (1, 2), padding
        # (0, 1), dilation (1, 2)). Dilating a kernel 1 wide changes nothing.
        dilation = (dilation[0], 1)
    return dict(x_shape=(n, c_in, *size), weight_shape=(c_out, c_in // groups, *kernel),
                stride=stride, padding=padding, dilation=dilation, groups=groups, dtype=dtype,
                bias=draw(st.booleans()),
                budget=draw(st.sampled_from([1, 3000, 2**30])),   # 1: one row per chunk
                mode=draw(st.sampled_from(MODES)), seed=draw(st.integers(0, 2**32 - 1)))


def _conv_window(p):
    (ph, pw) = p["padding"]
    return make_window("conv2d", *p["x_shape"][2:], p["weight_shape"][2:], p["stride"],
                       ((ph, ph), (pw, pw)), p["dilation"])


def _run(function, p, *arrays, **kwargs):
    """function(*arrays, ..., xp=...) in the problem's mode (`MODES`), the results brought
    back to the host."""
    xp, up, down = _mode(p["mode"])
    results = function(*(None if a is None else up(a) for a in arrays), xp=xp, **kwargs)
    if isinstance(results, tuple):
        return tuple(None if r is None else down(r) for r in results)
    return down(results)


@settings(max_examples=60, deadline=None)
@given(conv_problems())
def test_conv2d_forward_and_gradients_match_torch(p):
    rng = np.random.default_rng(p["seed"])
    dtype, window = np.dtype(p["dtype"]), _conv_window(p)
    floating = np.issubdtype(dtype, np.floating)
    x, weight = _values(rng, p["x_shape"], dtype), _values(rng, p["weight_shape"], dtype)
    bias = _values(rng, p["weight_shape"][:1], dtype) if p["bias"] else None
    tx, tw = torch.tensor(x, requires_grad=floating), torch.tensor(weight, requires_grad=floating)
    tb = None if bias is None else torch.tensor(bias)
    expected = T.conv2d(tx, tw, tb, p["stride"], p["padding"], p["dilation"], p["groups"])
    args = (window, p["groups"])
    out = _run(lambda a, w, b, xp: device_conv.forward(a, w, b, *args, p["budget"], xp=xp),
               p, x, weight, bias)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected.detach().numpy(), err_msg=str(p))
    if not floating:
        return
    grad = _values(rng, expected.shape, dtype)
    expected.backward(torch.tensor(grad))
    grad_x = _run(lambda g, w, xp: device_conv.grad_input(g, w, *args, x.shape, p["budget"],
                                                          xp=xp), p, grad, weight)
    grad_w = _run(lambda g, a, xp: device_conv.grad_weight(g, a, weight.shape, *args,
                                                           p["budget"], xp=xp), p, grad, x)
    assert grad_x.dtype == grad_w.dtype == dtype
    np.testing.assert_array_equal(grad_x, tx.grad.numpy(), err_msg=f"grad_input {p}")
    np.testing.assert_array_equal(grad_w, tw.grad.numpy(), err_msg=f"grad_weight {p}")


def test_conv2d_float32_random_values_and_large_sums_match_torch():
    """Random normal values (rounding, not exact sums) and float16 sums beyond its range in
    the middle of a sum (computed in float32, as PyTorch's CPU kernels)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 11, 9)).astype(np.float32)
    weight = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    window = make_window("conv2d", 11, 9, (3, 2), (2, 1), ((1, 1), (2, 2)), (1, 2))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(weight, requires_grad=True)
    expected = T.conv2d(tx, tw, None, (2, 1), (1, 2), (1, 2), 2)
    grad = rng.standard_normal(expected.shape).astype(np.float32)
    expected.backward(torch.tensor(grad))
    for budget in (1, 2**30):
        close = dict(rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(device_conv.forward(x, weight, None, window, 2, budget),
                                   expected.detach().numpy(), **close)
        np.testing.assert_allclose(device_conv.grad_input(grad, weight, window, 2, x.shape,
                                                          budget), tx.grad.numpy(), **close)
        np.testing.assert_allclose(device_conv.grad_weight(grad, x, weight.shape, window, 2,
                                                           budget), tw.grad.numpy(), **close)
    big = np.array([60000, 60000, -60000], np.float16).reshape(1, 3, 1, 1)
    ones = np.ones((1, 3, 1, 1), np.float16)                        # 60000 + 60000 - 60000
    one = make_window("conv2d", 1, 1, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1))
    expected = T.conv2d(torch.tensor(big), torch.tensor(ones)).numpy()
    assert expected.tolist() == [[[[60000.0]]]]
    assert device_conv.forward(big, ones, None, one, 1, 2**20).tolist() == expected.tolist()
    assert device_conv.grad_weight(np.ones((1, 1, 1, 1), np.float16), big, ones.shape, one, 1,
                                   2**20).dtype == np.float16


def test_conv2d_matches_the_reference_loops():
    rng = np.random.default_rng(1)
    x, weight = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2))
    bias = rng.standard_normal(6)
    window = make_window("conv2d", 7, 6, (3, 2), (2, 1), ((2, 2), (1, 1)), (2, 1))
    expected = reference.conv2d(x, weight, bias, (2, 1), (2, 1), (2, 1), groups=2)
    for budget in (1, 2**30):
        out = to_host(device_conv.forward(*map(on_device, (x, weight, bias)), window, 2,
                                          budget, xp=strict))
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_memory_budget_splits_the_batch_and_the_rows():
    """The chunks each pass works in are conv.budget_chunks': within the budget, or one
    output row of one image at the least; the results don't depend on them."""
    from corrnet.kernels import conv
    window = make_window("conv2d", 12, 12, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    shapes = ((8, 4, 12, 12), (5, 4, 3, 3))
    whole = list(conv.budget_chunks(*shapes, window, np.float32, 2**30))
    assert whole == [(slice(0, 8), slice(0, 12))]
    least = conv.least_bytes(*shapes, window, 1, np.float32, "forward")
    rows = list(conv.budget_chunks(*shapes, window, np.float32, least))
    assert len(rows) == 8 * 12
    middle = conv.chunk_bytes(3, 12, *shapes, window, np.float32)
    chunks = list(conv.budget_chunks(*shapes, window, np.float32, middle))
    assert [c[0] for c in chunks] == [slice(0, 3), slice(3, 6), slice(6, 8)]
    assert device_conv.least_bytes is conv.least_bytes
    assert device_conv.supports(shapes[0], shapes[1], window, 1, np.float16, "grad_input")


def _temporaries(call):
    """(bytes of temporaries at the peak of call(), its result): tracemalloc's peak beyond
    the memory traced before the call and the array it returns (test_memory_budget's way),
    once numba's warm-up thread (jit.py), whose imports tracemalloc would count, is done."""
    jit._wait_for_warm_up()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before - result.nbytes, result


@pytest.mark.parametrize("budget", [2**16, 2**18])
@pytest.mark.parametrize("geometry", [(1, 1, 1, 1), (2, 2, 2, 2)],
                         ids=["3x3", "strided-dilated-grouped"])
def test_conv2d_temporaries_stay_within_the_memory_budget(budget, geometry):
    """Each pass holds at most `budget` bytes of temporaries (NumPy's buffers, measured by
    tracemalloc; on a GPU the same arrays come from CuPy's memory pool)."""
    stride, padding, dilation, groups = geometry
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 8, 24, 24), dtype=np.float32)
    weight = rng.standard_normal((8, 8 // groups, 3, 3), dtype=np.float32)
    window = make_window("conv2d", 24, 24, (3, 3), (stride, stride),
                         ((padding, padding), (padding, padding)), (dilation, dilation))
    grad = rng.standard_normal((4, 8, window.out_height, window.out_width), dtype=np.float32)
    passes = {
        "forward": lambda: device_conv.forward(x, weight, None, window, groups, budget),
        "grad_input": lambda: device_conv.grad_input(grad, weight, window, groups, x.shape,
                                                     budget),
        "grad_weight": lambda: device_conv.grad_weight(grad, x, weight.shape, window, groups,
                                                       budget),
    }
    for name, call in passes.items():
        call()                           # (the first call imports modules: not temporaries)
        used, _ = _temporaries(call)
        assert used <= budget + 16 * 2**10, f"{name}: {used:,} bytes over a {budget:,} budget"


def test_conv2d_empty_batch():
    window = make_window("conv2d", 5, 5, (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1))
    x, weight = np.zeros((0, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32)
    assert device_conv.forward(x, weight, None, window, 1, 2**20).shape == (0, 3, 3, 3)
    grad = np.zeros((0, 3, 3, 3), np.float32)
    assert device_conv.grad_input(grad, weight, window, 1, x.shape, 2**20).shape == x.shape
    assert not device_conv.grad_weight(grad, x, weight.shape, window, 1, 2**20).any()


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------


@st.composite
def pool_problems(draw, kind):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if kind == "max" else (1, 1)
    ceil_mode = draw(st.booleans())
    size = [draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 8))
            for k, p, d in zip(kernel, padding, dilation, strict=True)]
    dtypes = (["float32", "float64", "float16", "int64", "int32", "int8"] if kind == "max"
              else ["float32", "float64", "float16", "int64"])
    return dict(x_shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size),
                kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                ceil_mode=ceil_mode, dtype=draw(st.sampled_from(dtypes)),
                count_include_pad=draw(st.booleans()),
                divisor_override=draw(st.sampled_from([None, None, 1, 3])),
                mode=draw(st.sampled_from(MODES)), seed=draw(st.integers(0, 2**32 - 1)))


def _pool_window(p, op):
    (ph, pw) = p["padding"]
    window = make_window(op, *p["x_shape"][2:], p["kernel"], p["stride"],
                         ((ph, ph), (pw, pw)), p["dilation"], p["ceil_mode"])
    assume(all(pool_windows_touch_input(size, k, s, pad, d, p["ceil_mode"])
               for size, k, s, pad, d in zip(p["x_shape"][2:], p["kernel"], p["stride"],
                                             p["padding"], p["dilation"], strict=True)))
    return window


@settings(max_examples=60, deadline=None)
@given(pool_problems("max"))
def test_max_pool2d_forward_indices_and_gradient_match_torch(p):
    rng = np.random.default_rng(p["seed"])
    dtype, window = np.dtype(p["dtype"]), _pool_window(p, "max_pool2d")
    floating = np.issubdtype(dtype, np.floating)
    x = _values(rng, p["x_shape"], dtype, -2, 3)                       # many ties
    if floating:
        x[rng.random(x.shape) < 0.15] = -np.inf
        x[rng.random(x.shape) < 0.05] = np.nan
    else:
        x[rng.random(x.shape) < 0.2] = np.iinfo(dtype).min
    tx = torch.tensor(x, requires_grad=floating)
    expected, expected_indices = T.max_pool2d(tx, p["kernel"], p["stride"], p["padding"],
                                              p["dilation"], p["ceil_mode"], True)
    out, winner = _run(lambda a, xp: device_pool.max_pool2d_forward(a, window, True, xp=xp),
                       p, x)
    indices = _run(lambda w, xp: device_pool.max_pool2d_indices(w, window, xp=xp), p, winner)
    alone, none = _run(lambda a, xp: device_pool.max_pool2d_forward(a, window, xp=xp), p, x)
    assert none is None
    assert out.dtype == alone.dtype == dtype and indices.dtype == np.int64
    np.testing.assert_array_equal(out, expected.detach().numpy(), err_msg=str(p))
    np.testing.assert_array_equal(alone, out, err_msg=f"without winners {p}")
    np.testing.assert_array_equal(indices, expected_indices.numpy(), err_msg=f"indices {p}")
    # the same winners as the CPU kernels'
    cpu_out, cpu_winner = pool.max_pool2d_forward(x, window, True)
    np.testing.assert_array_equal(winner, cpu_winner, err_msg=f"winners {p}")
    if not floating:
        return
    grad = _values(rng, expected.shape, dtype)
    expected.backward(torch.tensor(grad))
    grad_x = _run(lambda g, w, xp: device_pool.max_pool2d_backward(g, w, window, x.shape,
                                                                   xp=xp), p, grad, winner)
    assert grad_x.dtype == dtype
    np.testing.assert_array_equal(grad_x, tx.grad.numpy(), err_msg=f"gradient {p}")


@settings(max_examples=60, deadline=None)
@given(pool_problems("avg"))
def test_avg_pool2d_forward_and_gradient_match_torch(p):
    rng = np.random.default_rng(p["seed"])
    dtype, window = np.dtype(p["dtype"]), _pool_window(p, "avg_pool2d")
    floating = np.issubdtype(dtype, np.floating)
    x = _values(rng, p["x_shape"], dtype, -20, 21)
    tx = torch.tensor(x, requires_grad=floating)
    options = (p["kernel"], p["stride"], p["padding"], p["ceil_mode"], p["count_include_pad"],
               p["divisor_override"])
    expected = T.avg_pool2d(tx, *options)
    divisor = pool.avg_pool2d_divisor(window, p["count_include_pad"], p["divisor_override"])
    out = _run(lambda a, xp: device_pool.avg_pool2d_forward(a, window, divisor, xp=xp), p, x)
    assert out.dtype == dtype
    # float16: both sum in float32 and round the quotient once; the quotient itself may
    # round differently (PyTorch multiplies by 1/divisor in places): one float16 step
    close = dict(rtol=1e-3, atol=0) if dtype == np.float16 else dict(rtol=1e-6, atol=0)
    if floating:
        np.testing.assert_allclose(out, expected.detach().numpy(), err_msg=str(p), **close)
    else:
        np.testing.assert_array_equal(out, expected.numpy(), err_msg=str(p))
        return
    grad = _values(rng, expected.shape, dtype)
    expected.backward(torch.tensor(grad))
    grad_x = _run(lambda g, xp: device_pool.avg_pool2d_backward(g, divisor, window, x.shape,
                                                                xp=xp), p, grad)
    assert grad_x.dtype == dtype
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), err_msg=f"gradient {p}",
                               **(dict(rtol=2e-3, atol=2e-3) if dtype == np.float16
                                  else dict(rtol=1e-6, atol=1e-6)))


def test_pooling_matches_the_reference_loops():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 8))
    x[0, 0, :3, :3] = -np.inf                                  # a window of -inf
    for ceil_mode in (False, True):
        window = make_window("max_pool2d", 9, 8, (3, 2), (2, 3), ((1, 1), (1, 1)), (2, 1),
                             ceil_mode)
        out = to_host(device_pool.max_pool2d_forward(on_device(x), window, xp=strict)[0])
        np.testing.assert_array_equal(out, reference.max_pool2d(
            x, (3, 2), (2, 3), (1, 1), (2, 1), ceil_mode))
        window = make_window("avg_pool2d", 9, 8, (3, 2), (2, 3), ((1, 1), (1, 1)), (1, 1),
                             ceil_mode)
        for include_pad, override in ((True, None), (False, None), (True, 5)):
            divisor = pool.avg_pool2d_divisor(window, include_pad, override)
            out = to_host(device_pool.avg_pool2d_forward(on_device(x), window, divisor,
                                                         xp=strict))
            np.testing.assert_allclose(out, reference.avg_pool2d(
                x, (3, 2), (2, 3), (1, 1), ceil_mode, include_pad, override), rtol=1e-12)


def test_max_pool2d_gradient_adds_up_where_windows_share_their_winner():
    """Overlapping windows (stride 1) that all pick the same cell: its gradient is the sum."""
    x = np.zeros((1, 1, 4, 4), np.float64)
    x[0, 0, 1, 1] = 5
    window = make_window("max_pool2d", 4, 4, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    _, winner = device_pool.max_pool2d_forward(on_device(x), window, True, xp=strict)
    grad = on_device(np.arange(16.0).reshape(1, 1, 4, 4))
    grad_x = to_host(device_pool.max_pool2d_backward(grad, winner, window, x.shape,
                                                     xp=strict))
    # windows (0..2, 0..2) all hold cell (1, 1) and its 5
    assert grad_x[0, 0, 1, 1] == sum(grad.view(np.ndarray)[0, 0, :3, :3].ravel())
    assert math.isclose(grad_x.sum(), 120.0)


def test_namespace_of():
    assert namespace.namespace_of(np.zeros(1)) is np

    class Other:
        def __array_namespace__(self):
            return "the namespace"
    assert namespace.namespace_of(Other()) == "the namespace"
    nowhere = type("Array", (), {"__module__": "no_such_array_library"})
    with pytest.raises(TypeError, match="no array namespace"):
        namespace.namespace_of(nowhere())
