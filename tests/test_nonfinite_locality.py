"""Non-finite values (NaN, +inf, -inf) stay exactly as local as in PyTorch (issue 11, item 4).

One NaN pixel must poison the outputs whose windows read it and no others, on every
algorithm the planner may pick (each forced in turn, compiled and NumPy paths), in every
pass (forward, grad_input, grad_weight) of conv2d, conv_transpose2d and conv1d, and in every
pool (max, average, adaptive). Hypothesis draws the shapes, the options, the operand(s) that
hold non-finite values (input, weight, bias, upstream gradient), their positions and kinds,
and zeros among the weights (inf * 0 = NaN: PyTorch's direct sum gives NaN where an inf meets
a zero weight). Each output is classified (finite / +inf / -inf / NaN); the classes must equal
PyTorch's and the finite values must agree with PyTorch's to the usual tolerance.

The convolution's oracle for the classes is PyTorch in float64 on the same values. It
follows the definition: every product of the zero-padded window is summed, so an inf weight
that meets the zero padding gives NaN (inf * 0), in the forward pass and, for an inf
upstream gradient, in the weight gradient. PyTorch's float32 convolution agrees with it
wherever it runs its own im2col kernel; where it picks oneDNN (batches > 1, kernels over 3x3,
groups, large inputs: a heuristic that also depends on the thread count) it skips the
products with padding, so an inf weight there gives inf (or a finite value) instead of NaN at
the border, and its input gradient multiplies the zeros between strided output gradients (an
inf weight gives NaN where the definition has no term). Every non-finite value in the input
(and in the upstream gradient, for grad_input) gives the same classes on both of PyTorch's
paths. corrnet follows the definition on every algorithm; its finite values are compared
with PyTorch's float64 ones, to the tolerance of the input's dtype.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import corrnet as ct
from corrnet.kernels import jit, plan, pool
from corrnet.kernels.windows import make_window

from torch_compare import assert_scaled_close, seeds

F = ct.nn.functional
TF = torch.nn.functional

# (algorithm, compiled): every algorithm on both paths, but `direct`, `unrolled` and `lanes`,
# which are compiled only
CASES = [(name, compiled) for name in plan.ALGORITHMS
         for compiled in ([False, True] if jit.AVAILABLE else [False])
         if compiled or name not in ("direct", "unrolled", "lanes")]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
NON_FINITE = (np.nan, np.inf, -np.inf)


def classes(a) -> np.ndarray:
    """0 finite, 1 +inf, 2 -inf, 3 NaN, elementwise."""
    a = np.asarray(a)
    return np.select([np.isnan(a), np.isposinf(a), np.isneginf(a)], [3, 1, 2], 0)


def assert_same_nonfinite(got, want, what: str, want64=None) -> None:
    """got's classes and finite values equal torch's: want (in got's dtype), or where given
    want64 (torch in float64 on the same values), to got's dtype's tolerance."""
    got = np.asarray(got)
    reference = np.asarray(want if want64 is None else want64)
    assert got.shape == reference.shape, f"{what}: shape {got.shape} != {reference.shape}"
    got_classes, want_classes = classes(got), classes(reference)
    differ = got_classes != want_classes
    assert not differ.any(), (
        f"{what}: {int(differ.sum())} of {got.size} outputs classed differently from torch "
        f"(corrnet {int((got_classes != 0).sum())} non-finite, torch "
        f"{int((want_classes != 0).sum())}); first at {np.argwhere(differ)[0].tolist()}: "
        f"corrnet {got[tuple(np.argwhere(differ)[0])]}, torch "
        f"{reference[tuple(np.argwhere(differ)[0])]}")
    finite = want_classes == 0
    if finite.any():
        assert_scaled_close(got[finite], reference[finite].astype(got.dtype),
                            RTOL[got.dtype.type],
                            RTOL[got.dtype.type] / 10, what)


@st.composite
def poisoned(draw, arrays: dict, rng: np.random.Generator):
    """Put 1-3 non-finite values into one or two of `arrays` (name -> array, edited in place),
    and sometimes zeros among the weights. Returns the names poisoned."""
    names = [name for name, a in arrays.items() if a is not None and a.size]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    for name in chosen:
        array = arrays[name]
        for _ in range(draw(st.integers(1, 3))):
            where = tuple(draw(st.integers(0, size - 1)) for size in array.shape)
            array[where] = draw(st.sampled_from(NON_FINITE))
    if "w" in arrays and draw(st.booleans()):
        weight = arrays["w"]
        weight[(rng.random(weight.shape) < 0.3) & np.isfinite(weight)] = 0
    return chosen


@st.composite
def conv_configs(draw, algorithm: str):
    """(x_shape, w_shape, stride, padding, dilation, groups) where `algorithm` likely applies
    (as tests/oracle/test_algorithms.py draws them)."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if algorithm == "winograd":
        kh = kw = 3
        stride = dilation = (1, 1)
    elif algorithm == "pointwise":
        kh = kw = 1
        stride = (1, 1) if draw(st.booleans()) else stride
    elif algorithm == "fft":
        kh, kw = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        stride = (1, 1) if draw(st.booleans()) else stride
    elif algorithm == "depthwise":
        groups = c_in = draw(st.integers(1, 4))
        c_out = c_in * draw(st.integers(1, 2))
    padding = (0, 0) if algorithm == "pointwise" else (
        draw(st.integers(0, (kh - 1) * dilation[0])), draw(st.integers(0, (kw - 1) * dilation[1])))
    smallest = [max(1, dilation[a] * (k - 1) + 1 - 2 * padding[a]) for a, k in ((0, kh), (1, kw))]
    height = draw(st.integers(smallest[0], smallest[0] + 9))
    width = draw(st.integers(smallest[1], smallest[1] + 9))
    n = draw(st.sampled_from([1, 2, 3]))
    return (n, c_in, height, width), (c_out, c_in // groups, kh, kw), stride, padding, dilation, \
        groups


def _picked(algorithm, pass_name, x_shape, w_shape, stride, padding, dilation, groups, dtype):
    window = make_window("conv2d", *x_shape[2:], w_shape[2:], stride,
                         tuple((p, p) for p in padding), dilation)
    with plan.forcing(algorithm):
        return plan.choose(pass_name, x_shape, w_shape, window, groups, dtype) == algorithm


def _run_both(op: str, x, w, b, upstream, **kwargs):
    """op's output and the gradients of x, w (and b) in corrnet and in torch (in x's dtype
    and in float64): {name: (corrnet, torch, torch float64)}."""
    results = {}
    for library, dtype in ((ct, None), (torch, None), (torch, np.float64)):
        functional = F if library is ct else TF

        def make(a, dtype=dtype, library=library):
            if a is None:
                return None
            return library.tensor(a if dtype is None else a.astype(dtype), requires_grad=True)

        tx, tw, tb = make(x), make(w), make(b)
        out = getattr(functional, op)(tx, tw, tb, **kwargs)
        out.backward(make(upstream).detach())
        for name, value in (("out", out), ("grad_x", tx.grad), ("grad_w", tw.grad),
                            ("grad_b", None if tb is None else tb.grad)):
            if value is not None:
                results.setdefault(name, []).append(value.detach().numpy())
    return results


def _check_op(op, x, w, b, upstream, label, **kwargs):
    for name, (got, want, want64) in _run_both(op, x, w, b, upstream, **kwargs).items():
        assert_same_nonfinite(got, want, f"{label} {name}", want64)


@pytest.mark.parametrize(("algorithm", "compiled"), CASES)
def test_issue11_nonfinite_stays_local_on_every_algorithm(algorithm, compiled):
    """conv2d and conv_transpose2d with each algorithm forced: classes as torch's."""
    @settings(max_examples=40, deadline=None)
    @given(conv_configs(algorithm), st.sampled_from([np.float32, np.float64]), seeds,
           st.booleans(), st.data())
    def check(config, dtype, seed, with_bias, data):
        x_shape, w_shape, stride, padding, dilation, groups = config
        with jit.use_compiled(compiled):
            assume(_picked(algorithm, "forward", x_shape, w_shape, stride, padding, dilation,
                           groups, dtype))
            rng = np.random.default_rng(seed)
            x = rng.uniform(-1, 1, x_shape).astype(dtype)
            w = rng.uniform(-1, 1, w_shape).astype(dtype)
            b = rng.uniform(-1, 1, w_shape[:1]).astype(dtype) if with_bias else None
            out_shape = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride,
                                  padding=padding, dilation=dilation, groups=groups).shape
            upstream = rng.uniform(-1, 1, tuple(out_shape)).astype(dtype)
            poisoned_names = data.draw(poisoned({"x": x, "w": w, "b": b, "g": upstream}, rng))
            label = (f"{algorithm} compiled={compiled} conv2d x{x_shape} w{w_shape} "
                     f"stride={stride} padding={padding} dilation={dilation} groups={groups} "
                     f"{np.dtype(dtype).name}, non-finite in {poisoned_names}")
            with plan.forcing(algorithm):
                _check_op("conv2d", x, w, b, upstream, label, stride=stride, padding=padding,
                          dilation=dilation, groups=groups)
                # the transposed convolution: its forward pass is the grad_input pass above,
                # on an input of the convolution's output shape (a bias of C_out/G*G)
                sizes = [(o - 1) * s - 2 * p + d * (k - 1) + 1 for o, s, p, d, k in zip(
                    out_shape[2:], stride, padding, dilation, w_shape[2:], strict=True)]
                if tuple(sizes) == tuple(x_shape[2:]):
                    bias_t = None if b is None else rng.uniform(
                        -1, 1, w_shape[1] * groups).astype(dtype)
                    _check_op("conv_transpose2d", upstream, w, bias_t, x,
                              label.replace("conv2d", "conv_transpose2d"), stride=stride,
                              padding=padding, dilation=dilation, groups=groups)

    check()


@pytest.mark.parametrize(("algorithm", "compiled"), CASES)
def test_issue11_nonfinite_stays_local_in_conv1d(algorithm, compiled):
    """conv1d and conv_transpose1d (a 2-D convolution of height 1), each algorithm forced."""
    @settings(max_examples=15, deadline=None)
    @given(conv_configs(algorithm), st.sampled_from([np.float32, np.float64]), seeds,
           st.data())
    def check(config, dtype, seed, data):
        (n, c_in, _, width), (c_out, c_group, _, k), stride, padding, dilation, groups = config
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, (n, c_in, width)).astype(dtype)
        w = rng.uniform(-1, 1, (c_out, c_group, k)).astype(dtype)
        b = rng.uniform(-1, 1, (c_out,)).astype(dtype)
        options = dict(stride=stride[1], padding=padding[1], dilation=dilation[1], groups=groups)
        out_shape = TF.conv1d(torch.from_numpy(x), torch.from_numpy(w), **options).shape
        upstream = rng.uniform(-1, 1, tuple(out_shape)).astype(dtype)
        poisoned_names = data.draw(poisoned({"x": x, "w": w, "b": b, "g": upstream}, rng))
        label = (f"{algorithm} compiled={compiled} conv1d x{x.shape} w{w.shape} {options} "
                 f"{np.dtype(dtype).name}, non-finite in {poisoned_names}")
        with jit.use_compiled(compiled), plan.forcing(algorithm):
            _check_op("conv1d", x, w, b, upstream, label, **options)
            size = (out_shape[2] - 1) * options["stride"] - 2 * options["padding"] + \
                options["dilation"] * (k - 1) + 1
            if size == width:
                _check_op("conv_transpose1d", upstream, w, None, x,
                          label.replace("conv1d", "conv_transpose1d"), **options)

    check()


# ---------------------------------------------------------------------------------------------
# the cases of the issue, by name
# ---------------------------------------------------------------------------------------------


def _one_nan_count(algorithm, x_shape, w_shape, padding):
    """Non-finite outputs of conv2d (corrnet with `algorithm` forced, and torch) for one NaN
    pixel in the middle of the input."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    x[0, 0, x_shape[2] // 2, x_shape[3] // 2] = np.nan
    with plan.forcing(algorithm):
        got = F.conv2d(ct.tensor(x), ct.tensor(w), padding=padding).numpy()
    want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=padding).numpy()
    assert_same_nonfinite(got, want, f"{algorithm} one NaN pixel")
    return int((~np.isfinite(got)).sum()), int((~np.isfinite(want)).sum())


def test_issue11_fft_nan_stays_local():
    """One NaN pixel in a 64x64 image, 16 channels of 7x7 kernels: 16*49 = 784 NaN outputs
    (all 65,536 were NaN on the FFT path)."""
    assert _one_nan_count("fft", (1, 16, 64, 64), (16, 16, 7, 7), 3) == (784, 784)


def test_issue11_winograd_nan_stays_local():
    """One NaN pixel, 64 -> 64 channels, 3x3: 64*9 = 576 NaN outputs (1,600 on Winograd)."""
    for compiled in ([False, True] if jit.AVAILABLE else [False]):
        with jit.use_compiled(compiled):
            assert _one_nan_count("winograd", (1, 64, 32, 32), (64, 64, 3, 3), 1) == (576, 576)


def test_issue11_winograd_inf_weight_meets_padding_as_torch_float64():
    """An inf weight: NaN where it meets the zero padding (inf * 0), inf elsewhere — PyTorch's
    float64 classes (Winograd gave NaN everywhere)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 16, 12, 12))
    w = rng.standard_normal((16, 16, 3, 3))
    w[0, 0, 0, 0] = np.inf
    with plan.forcing("winograd"):
        got = F.conv2d(ct.tensor(x), ct.tensor(w), padding=1).numpy()
    want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    assert_same_nonfinite(got, want, "winograd inf weight")
    assert np.isnan(got[0, 0, 0]).all() and np.isinf(got[0, 0, 1:, 1:]).all()


def test_issue11_adaptive_avg_pool_inf_stays_local():
    """One inf in adaptive_avg_pool2d(x, 4): one output inf (all 16 were non-finite)."""
    x = np.random.default_rng(2).standard_normal((1, 1, 16, 16)).astype(np.float32)
    x[0, 0, 5, 9] = np.inf
    got = F.adaptive_avg_pool2d(ct.tensor(x), 4).numpy()
    want = TF.adaptive_avg_pool2d(torch.from_numpy(x), 4).numpy()
    assert_same_nonfinite(got, want, "adaptive_avg_pool2d")
    assert int((~np.isfinite(got)).sum()) == 1


def test_issue11_adaptive_avg_pool_nan_gradient_stays_local():
    """One NaN in the upstream gradient reaches only its window's cells."""
    x = ct.tensor(np.zeros((1, 1, 10, 7)), requires_grad=True)
    upstream = np.ones((1, 1, 3, 4))
    upstream[0, 0, 1, 2] = np.nan
    F.adaptive_avg_pool2d(x, (3, 4)).backward(ct.tensor(upstream))
    tx = torch.zeros((1, 1, 10, 7), dtype=torch.float64, requires_grad=True)
    TF.adaptive_avg_pool2d(tx, (3, 4)).backward(torch.from_numpy(upstream))
    assert_same_nonfinite(x.grad.numpy(), tx.grad.numpy(), "adaptive_avg_pool2d backward")
    assert 0 < int(np.isnan(x.grad.numpy()).sum()) < 70


# ---------------------------------------------------------------------------------------------
# pools
# ---------------------------------------------------------------------------------------------


@st.composite
def pool_calls(draw):
    """(op name, input shape, keyword arguments) of a pool call torch accepts."""
    op = draw(st.sampled_from(["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                               "adaptive_max_pool2d", "max_pool1d", "avg_pool1d",
                               "adaptive_avg_pool1d", "adaptive_max_pool1d"]))
    dims = 1 if op.endswith("1d") else 2
    sizes = tuple(draw(st.integers(1, 12)) for _ in range(dims))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *sizes)
    if op.startswith("adaptive"):
        out = tuple(draw(st.integers(0, 2 * size)) for size in sizes)   # 0: an empty output
        return op, shape, {"output_size": out if dims == 2 else out[0]}
    kernel = tuple(draw(st.integers(1, size)) for size in sizes)
    stride = tuple(draw(st.integers(1, 3)) for _ in sizes)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    options = {"kernel_size": kernel, "stride": stride, "padding": padding,
               "ceil_mode": draw(st.booleans())}
    if op.startswith("max"):
        dilation = tuple(draw(st.integers(1, 2)) for _ in sizes)
        # every window keeps a cell inside the input
        assume(all((k - 1) * d + 1 <= size + 2 * p
                   for k, d, p, size in zip(kernel, dilation, padding, sizes, strict=True)))
        options["dilation"] = dilation
    else:
        options["count_include_pad"] = draw(st.booleans())
    return op, shape, options


@pytest.mark.parametrize("compiled", [False, True] if jit.AVAILABLE else [False])
def test_issue11_nonfinite_stays_local_in_pools(compiled, monkeypatch):
    """Every pool, forward and backward, non-finite values in the input or the upstream
    gradient: classes and finite values as torch's (same dtype)."""
    if compiled:  # the compiled pool kernels, at every size
        monkeypatch.setattr(pool, "COMPILED_MIN_SIZE", 0)

    # Each new pool geometry compiles its kernel (about 0.1 s, then cached on disk): the
    # compiled path draws 60 examples, 150 with CORRNET_SLOW=1.
    @settings(max_examples=150 if not compiled or os.environ.get("CORRNET_SLOW") else 60,
              deadline=None)
    @given(pool_calls(), st.sampled_from([np.float32, np.float64]), seeds, st.data())
    def check(call, dtype, seed, data):
        op, shape, options = call
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, shape).astype(dtype)
        try:
            torch_out = getattr(TF, op)(torch.from_numpy(x), **options)
        except RuntimeError:
            assume(False)
        upstream = rng.uniform(-1, 1, tuple(torch_out.shape)).astype(dtype)
        poisoned_names = data.draw(poisoned({"x": x, "g": upstream}, rng))
        label = f"{op} {shape} {options} {np.dtype(dtype).name}, non-finite in {poisoned_names}"
        with jit.use_compiled(compiled):
            cx = ct.tensor(x, requires_grad=True)
            got = getattr(F, op)(cx, **options)
        tx = torch.tensor(x, requires_grad=True)
        want = getattr(TF, op)(tx, **options)
        if want.numel() == 0:  # PyTorch's adaptive pools refuse an empty output's backward
            assert got.shape == want.shape, label
            return
        with jit.use_compiled(compiled):
            got.backward(ct.tensor(upstream))
        want.backward(torch.from_numpy(upstream))
        assert_same_nonfinite(got.detach().numpy(), want.detach().numpy(), f"{label} out")
        assert_same_nonfinite(cx.grad.numpy(), tx.grad.numpy(), f"{label} grad")

    check()


@pytest.mark.parametrize("compiled", [True, False] if jit.AVAILABLE else [False])
@pytest.mark.parametrize("algorithm", ["winograd", "fft", "lanes", "direct", "depthwise",
                                       "unrolled"])
@pytest.mark.parametrize("poison", [np.inf, np.nan])
def test_issue13_every_single_nonfinite_number_on_the_partly_checked_passes(algorithm,
                                                                           compiled, poison):
    """The passes that plan.run checks only in part: the transforms' passes (Winograd, the
    FFT: their result only, not their operands, so a non-finite number must leave some
    output non-finite and the pass runs again on im2col + GEMM) and the input gradients
    that correlate a zero-padded output gradient (lanes, the direct engine, depthwise,
    unrolled: their weight only, so a non-finite output gradient must stay local there).
    Every position of x, of the weight and of the output gradient in turn, on even and odd
    maps with each padding (a tile cut by the map's edge, padding a window never reads),
    against PyTorch's non-finite classes."""
    rng = np.random.default_rng(11)
    groups = 2 if algorithm == "depthwise" else 1
    ran = 0
    with jit.use_compiled(compiled), plan.forcing(algorithm):
        for height, width, padding in ((6, 6, 1), (7, 5, 0), (5, 7, 2), (4, 4, 1)):
            x = rng.uniform(-1, 1, (1, 2, height, width))
            w = rng.uniform(-1, 1, (2, 2 // groups, 3, 3))
            window = make_window("conv2d", height, width, (3, 3), (1, 1),
                                 ((padding, padding), (padding, padding)), (1, 1))
            chosen = plan.choose("grad_input", x.shape, w.shape, window, groups, x.dtype)
            if chosen != algorithm:
                continue
            ran += 1
            out_shape = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=padding,
                                  groups=groups).shape
            upstream = rng.uniform(-1, 1, tuple(out_shape))
            for name, array in (("x", x), ("w", w), ("g", upstream)):
                for position in np.ndindex(array.shape):
                    operands = {"x": x.copy(), "w": w.copy(), "g": upstream.copy()}
                    operands[name][position] = poison
                    _check_op("conv2d", operands["x"], operands["w"], None, operands["g"],
                              f"{algorithm} compiled={compiled} {height}x{width} padding "
                              f"{padding}: {poison} at {name}{position}", padding=padding,
                              groups=groups)
    if not ran:
        pytest.skip(f"{algorithm} takes none of these input gradients (compiled={compiled})")
