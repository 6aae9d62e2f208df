"""Every convolution algorithm of the planner (kernels/plan.py), forced in turn, against PyTorch.

For each algorithm, hypothesis draws configurations from the region where it applies (3x3
stride 1 for Winograd, 1x1 for pointwise, one filter per channel for depthwise, ...); the
test forces it with `plan.forcing`, checks that the planner really picked it for the forward
pass (so that a silent fallback to im2col can't pass for it), and compares conv2d and
conv_transpose2d — forward values, every gradient, shapes, dtypes — with torch. The compiled
(numba) and NumPy paths both run. The modules' own tests compare them with the plain-loop
reference (tests/test_winograd.py, test_fft_conv.py, test_direct_conv.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch as tt
from hypothesis import assume, given
from hypothesis import strategies as st

import corrnet as ct
from corrnet.kernels import jit, plan
from corrnet.kernels.windows import make_window, without_idle_strides

from torch_compare import seeds

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import check_functional, oracle_settings, random_array
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import check_functional, oracle_settings, random_array

SETTINGS = oracle_settings(40)
FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])

# (algorithm, compiled): every algorithm on both paths, except `direct`, `unrolled` and
# `lanes`, which are compiled only
CASES = [(name, compiled) for name in plan.ALGORITHMS
         for compiled in ([False, True] if jit.AVAILABLE else [False])
         if compiled or name not in ("direct", "unrolled", "lanes")]


@st.composite
def configs(draw, algorithm: str):
    """(x_shape, w_shape, with_bias, stride, padding, dilation, groups) where `algorithm`
    is likely to apply."""
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
        stride = (1, 1)
    elif algorithm == "depthwise":
        groups = c_in = draw(st.integers(1, 4))
        c_out = c_in * draw(st.integers(1, 2))
    # (up to 2 past the kernel's reach: windows that read only the padding, whose input
    # gradient im2col's band copy indexed with a negative row: fuzz, seed 20261217)
    padding = (draw(st.integers(0, (kh - 1) * dilation[0] + 2)),
               draw(st.integers(0, (kw - 1) * dilation[1] + 2)))
    smallest = [max(1, dilation[a] * (k - 1) + 1 - 2 * padding[a]) for a, k in ((0, kh), (1, kw))]
    height = draw(st.integers(smallest[0], smallest[0] + 10))
    width = draw(st.integers(smallest[1], smallest[1] + 10))
    if draw(st.integers(0, 7)) == 0:
        # an idle stride: longer than the padded input along one axis, so a single output
        # there (the planner then sees stride 1 with that one output: Winograd computed every
        # stride-1 output instead, conv2d of an 8x8 input with stride (9, 1) gave 8 rows)
        axis = draw(st.integers(0, 1))
        extent = (height, width)[axis] + 2 * padding[axis]
        stride = tuple(extent + draw(st.integers(0, 3)) if a == axis else stride[a]
                       for a in range(2))
    n = draw(st.sampled_from([1, 2, 3, 17]))
    return ((n, c_in, height, width), (c_out, c_in // groups, kh, kw), draw(st.booleans()),
            stride, padding, dilation, groups)


def _picked(algorithm, x_shape, w_shape, stride, padding, dilation, groups, dtype) -> bool:
    window = without_idle_strides(make_window("conv2d", *x_shape[2:], w_shape[2:], stride,
                                              tuple((p, p) for p in padding), dilation))
    with plan.forcing(algorithm):
        return plan.choose("forward", x_shape, w_shape, window, groups, dtype) == algorithm


@pytest.mark.parametrize(("algorithm", "compiled"), CASES)
def test_every_algorithm_matches_torch(algorithm, compiled):
    @SETTINGS
    @given(configs(algorithm), FLOAT_DTYPES, seeds)
    def check(config, dtype, seed):
        x_shape, w_shape, with_bias, stride, padding, dilation, groups = config
        with jit.use_compiled(compiled):
            assume(_picked(algorithm, x_shape, w_shape, stride, padding, dilation, groups,
                           dtype))
            rng = np.random.default_rng(seed)
            x = random_array(rng, x_shape, dtype)
            w = random_array(rng, w_shape, dtype)
            b = random_array(rng, (w_shape[0],), dtype) if with_bias else None
            with plan.forcing(algorithm):
                check_functional("conv2d", x, w, b, stride=stride, padding=padding,
                                 dilation=dilation, groups=groups, seed=seed)
                # the transposed convolution runs the same passes the other way round
                out_t = tt.nn.functional.conv2d(tt.from_numpy(x), tt.from_numpy(w),
                                                stride=stride, padding=padding,
                                                dilation=dilation, groups=groups)
                # (where the transposed output is x's size, so that it is the same geometry)
                sizes = [(out - 1) * s - 2 * p + d * (k - 1) + 1 for out, s, p, d, k in zip(
                    out_t.shape[2:], stride, padding, dilation, w_shape[2:], strict=True)]
                if tuple(sizes) == tuple(x_shape[2:]):
                    y = random_array(rng, tuple(out_t.shape), dtype)
                    check_functional("conv_transpose2d", y, w, stride=stride, padding=padding,
                                     dilation=dilation, groups=groups, seed=seed)

    check()


@st.composite
def transposed_configs(draw, algorithm: str):
    """(x_shape, w_shape, with_bias, stride, padding, output_padding, dilation, groups) of a
    transposed convolution where `algorithm` is likely to run its forward (a convolution's
    input gradient): kernels of size 1 included, dilation above the stride, groups, and
    output_padding anywhere up to max(stride, dilation) - 1 (issue 11: a 1-wide kernel with
    output_padding crashed the pointwise algorithm, and no strategy drew it)."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    if algorithm == "winograd":
        kh = kw = 3
        stride = dilation = (1, 1)
    elif algorithm == "pointwise":
        kh = kw = 1
        padding = (0, 0)
    elif algorithm == "fft":
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    elif algorithm == "depthwise":   # the convolution it is the adjoint of: one filter each
        c_out = groups
        c_in = groups * draw(st.integers(1, 2))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                           for s, d in zip(stride, dilation, strict=True))
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    out = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in zip(
        (height, width), stride, padding, dilation, (kh, kw), output_padding, strict=True)]
    assume(min(out) >= 1)
    n = draw(st.sampled_from([1, 2, 17]))
    return ((n, c_in, height, width), (c_in, c_out // groups, kh, kw), draw(st.booleans()),
            stride, padding, output_padding, dilation, groups)


@pytest.mark.parametrize(("algorithm", "compiled"), CASES)
def test_every_algorithm_transposed_with_output_padding_matches_torch(algorithm, compiled):
    """conv_transpose2d on every algorithm, forced, with output_padding (the rows and columns
    past the last window of the convolution it is the adjoint of)."""
    @SETTINGS
    @given(transposed_configs(algorithm), FLOAT_DTYPES, seeds)
    def check(config, dtype, seed):
        x_shape, w_shape, with_bias, stride, padding, output_padding, dilation, groups = config
        sizes = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in zip(
            x_shape[2:], stride, padding, dilation, w_shape[2:], output_padding, strict=True)]
        out_shape = (x_shape[0], w_shape[1] * groups, *sizes)
        with jit.use_compiled(compiled):
            window = make_window("conv2d", *sizes, w_shape[2:], stride,
                                 tuple((p, p) for p in padding), dilation)
            window = dataclasses.replace(window, out_height=x_shape[2], out_width=x_shape[3])
            with plan.forcing(algorithm):
                assume(plan.choose("grad_input", out_shape, w_shape, window, groups,
                                   dtype) == algorithm)
            rng = np.random.default_rng(seed)
            x = random_array(rng, x_shape, dtype)
            w = random_array(rng, w_shape, dtype)
            b = random_array(rng, (w_shape[1] * groups,), dtype) if with_bias else None
            with plan.forcing(algorithm):
                check_functional("conv_transpose2d", x, w, b, stride=stride, padding=padding,
                                 output_padding=output_padding, dilation=dilation,
                                 groups=groups, seed=seed)

    check()


@pytest.mark.parametrize("budget", [1, 3000, 40000])
def test_im2col_in_pieces_within_a_memory_budget(budget):
    """With a budget smaller than one image's windows, im2col unrolls bands of output rows;
    with a larger one, chunks of the batch. Values and gradients stay torch's."""
    rng = np.random.default_rng(budget)
    x = random_array(rng, (5, 3, 13, 11), np.float64)
    w = random_array(rng, (4, 3, 3, 2), np.float64)
    b = random_array(rng, (4,), np.float64)
    previous = ct.backends.conv.memory_budget
    ct.backends.conv.memory_budget = budget
    try:
        with plan.forcing("gemm"):
            check_functional("conv2d", x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
            check_functional("conv_transpose2d", x, w[:, :3].transpose(1, 0, 2, 3).copy(),
                             stride=2, padding=1)
    finally:
        ct.backends.conv.memory_budget = previous


def test_autotune_times_once_per_shape_and_keeps_the_winner(monkeypatch):
    """benchmark=True: the first call of a shape runs every algorithm that supports it; later
    calls of that shape run only the one kept; results stay torch's."""
    calls = []
    real_run = plan.run

    def counting_run(pass_name, algorithm, *args):
        calls.append((pass_name, algorithm))
        return real_run(pass_name, algorithm, *args)

    monkeypatch.setattr(plan, "run", counting_run)
    monkeypatch.setattr(plan, "_autotuned", {})
    monkeypatch.setattr(plan.settings, "benchmark", True)
    rng = np.random.default_rng(0)
    x = random_array(rng, (2, 4, 10, 10), np.float32)
    w = random_array(rng, (4, 4, 3, 3), np.float32)
    check_functional("conv2d", x, w, padding=1, requires_grad=[False, False])
    first = list(calls)
    window = make_window("conv2d", 10, 10, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    able = plan.candidates("forward", x.shape, w.shape, window, 1, np.float32)
    assert len(able) > 1
    assert {name for _, name in first} == set(able)    # each candidate timed
    assert len(plan._autotuned) == 1
    calls.clear()
    ct.nn.functional.conv2d(ct.tensor(x), ct.tensor(w), padding=1)
    assert calls == [("forward", next(iter(plan._autotuned.values())))]


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="memory_budget"):
        ct.backends.conv.memory_budget = 0
    with pytest.raises(ValueError, match="memory_budget"):
        ct.backends.conv.memory_budget = "1GB"
    with pytest.raises(ValueError, match="algorithm must be None or one of"):
        ct.backends.conv.algorithm = "magic"
    assert ct.backends.cudnn is ct.backends.conv


def test_describe_names_an_algorithm_for_each_pass():
    window = make_window("conv2d", 56, 56, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    chosen = plan.describe((8, 64, 56, 56), (64, 64, 3, 3), window)
    assert set(chosen) == set(plan.PASSES)
    assert set(chosen.values()) <= set(plan.ALGORITHMS)
    # integers: only im2col computes them exactly
    ints = plan.describe((8, 64, 56, 56), (64, 64, 3, 3), window, dtype=np.int64)
    assert set(ints.values()) == {"gemm"}
