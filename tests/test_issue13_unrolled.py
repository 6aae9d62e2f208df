"""Issue 13, small layers: the unrolled im2col + GEMM algorithm (corrnet.kernels.unrolled) and the
planner's choice of it.

Its three passes against PyTorch (float64 autograd, a random upstream gradient) and the
plain-loop reference, over small-channel shapes (C_in 1-8, C_out 1-32, kernels 1-7, stride,
asymmetric padding, dilation, groups; float32 and float64); bands of a few images and
threaded unrolling forced on; the memory budget; the planner's pick for LeNet's layers; and
the conv2d op end to end on both kernel paths (with the compiled kernels off unrolled is not
available and im2col + GEMM takes its passes).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_direct_conv import check_against_torch, check_all_passes, config_of
from test_memory_budget import SLACK, _run_case

import corrnet as ct
from corrnet.kernels import direct, jit, plan, unrolled
from corrnet.kernels.windows import make_window

from torch_compare import assert_scaled_close

MiB = 2**20
COMPILED = pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")


@st.composite
def small_layers(draw):
    """A random small-channel convolution (the configuration dict of test_direct_conv)."""
    kernel = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # (stride 1 half the time along each axis: it has a kernel of its own)
    stride = (draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3])))
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    low = [max(1, reach[axis] - sum(pads[axis])) for axis in (0, 1)]
    height = draw(st.integers(low[0], max(low[0], 10)))
    width = draw(st.integers(low[1], max(low[1], 10)))
    groups = draw(st.sampled_from([1, 1, 2, 4]))
    c_in = groups * draw(st.integers(1, 8 // groups))
    c_out = groups * draw(st.integers(1, 32 // groups))
    return dict(n=draw(st.integers(1, 5)), c_in=c_in, c_out=c_out, height=height, width=width,
                kernel=kernel, stride=stride, pads=pads, dilation=dilation, groups=groups,
                has_bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**32 - 1)))


@COMPILED
@settings(max_examples=15, deadline=None)
@given(config=small_layers())
def test_issue13_unrolled_matches_torch_and_reference(config):
    with jit.use_compiled(True):
        check_all_passes(unrolled, config)


@COMPILED
@settings(max_examples=15, deadline=None)
@given(config=small_layers(), threads=st.integers(2, 4))
def test_issue13_unrolled_on_threads(config, threads):
    """The images split among 2-4 threads (more threads than images too), whatever the
    work: each thread's own buffers, the weight gradient's partial sums added."""
    with pytest.MonkeyPatch.context() as patch, jit.use_compiled(True):
        patch.setattr(unrolled, "PARALLEL_WORK", 0)
        patch.setattr(unrolled, "active", lambda: threads)
        check_against_torch(unrolled, {**config, "n": 3})


@COMPILED
@pytest.mark.parametrize("budget", [1, 64 * 1024, 256 * MiB])
def test_issue13_unrolled_lenet_layers_under_budgets(budget):
    """LeNet's two layers, a batch of 20, on as many threads as the budget holds buffers for
    (one at the least, below `least_bytes`)."""
    with jit.use_compiled(True):
        check_against_torch(unrolled, config_of(20, 6, 16, 14, 5), budget)
        check_against_torch(unrolled, config_of(20, 1, 6, 28, 5, pad=2), budget)
        check_against_torch(unrolled, config_of(20, 6, 16, 14, 5, dtype=np.float64), budget)


@COMPILED
@pytest.mark.parametrize("broadcast_grad", [False, True], ids=["grad", "broadcast-grad"])
@pytest.mark.parametrize("case", [
    ("unrolled", "unrolled", (32, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1, 1, True),
    ("unrolled strided dilated grouped", "unrolled", (16, 8, 24, 24), (32, 4, 3, 3), 2, 2, 2, 2,
     True),
], ids=lambda case: case[0])
def test_issue13_unrolled_holds_the_memory_budget(case, broadcast_grad):
    """Each pass keeps its temporaries within budgets of 1/4, 1 and 4 MiB (tracemalloc, as
    test_memory_budget's algorithms); the whole batch's windows are larger."""
    for budget in (MiB // 4, MiB, 4 * MiB):
        for pass_name, (used, ran) in _run_case(case, budget, broadcast_grad).items():
            assert ran == "unrolled"
            assert used <= budget + SLACK, (
                f"{case[0]} {pass_name}: {used / MiB:.2f} MiB under {budget / MiB:.2f} MiB")


def _window(size, kernel, padding):
    return make_window("conv2d", size, size, (kernel, kernel), (1, 1),
                       ((padding, padding), (padding, padding)), (1, 1))


def test_issue13_planner_picks_unrolled_where_lanes_computes_too_much():
    """16 -> 16 5x5 on 12x12 (K 400, Og 16): unrolled for the input gradient, compiled, where
    lanes' would compute 2.25x its products (the forward and the weight gradient are lanes',
    test_issue13_lanes); LeNet's second layer (6 -> 16 5x5 on 14x14) is lanes' in all
    three passes; the first layer (1 -> 6, Og 6) stays on the direct engine for its
    gradients (its forward: lanes'); with the compiled kernels off, im2col."""
    second = ((256, 6, 14, 14), (16, 6, 5, 5), _window(14, 5, 0))
    wider = ((256, 16, 12, 12), (16, 16, 5, 5), _window(12, 5, 0))
    first = ((256, 1, 28, 28), (6, 1, 5, 5), _window(28, 5, 2))
    if jit.AVAILABLE:
        with jit.use_compiled(True):
            assert plan.describe(*wider) == {"forward": "lanes", "grad_input": "unrolled",
                                             "grad_weight": "lanes"}
            assert set(plan.describe(*second).values()) == {"lanes"}
            assert plan.describe(*first) == {"forward": "lanes", "grad_input": "direct",
                                             "grad_weight": "direct"}
    with jit.use_compiled(False):
        assert set(plan.describe(*second).values()) == {"gemm"}
        assert not unrolled.supports(second[0], second[1], second[2], 1, np.float32, "forward")


def test_issue13_unrolled_rule_in_shape_quantities():
    """The rule counts output channels per group (>= 12), window length K (>= 64), K*Og
    (<= 16384) and an image's windows K*L (<= 2**17); the direct rule declines exactly where
    it holds."""
    window = _window(16, 3, 1)
    stem = make_window("conv2d", 224, 224, (7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1))
    cases = [((8, 16, 16, 16), (16, 16, 3, 3), 1, window, True),     # K 144, Og 16
             ((8, 8, 16, 16), (8, 8, 3, 3), 1, window, False),        # Og 8
             ((8, 3, 16, 16), (16, 3, 3, 3), 1, window, False),       # K 27
             ((8, 16, 16, 16), (32, 8, 3, 3), 2, window, True),       # grouped: K 72, Og 16
             ((8, 256, 16, 16), (256, 256, 3, 3), 1, window, False),  # wide: K*Og 589824
             ((8, 3, 224, 224), (64, 3, 7, 7), 1, stem, False)]       # K*L 1.8M
    for x_shape, w_shape, groups, geometry, expected in cases:
        for pass_name in plan.PASSES:
            assert unrolled.rule(pass_name, x_shape, w_shape, geometry, groups) is expected
            if expected:
                assert not direct.direct_rule(pass_name, x_shape, w_shape, geometry, groups)


@pytest.mark.parametrize("compiled", [pytest.param(True, marks=COMPILED), False],
                         ids=["numba", "numpy"])
@pytest.mark.parametrize("shape", [((12, 6, 14, 14), (16, 6, 5, 5), 0, 1),
                                   ((5, 8, 9, 9), (24, 4, 3, 3), 1, 2)])
def test_issue13_conv2d_on_the_planners_pick_matches_torch(compiled, shape):
    """F.conv2d forward and all three gradients against torch, on whatever the planner picks
    (unrolled compiled, im2col without numba)."""
    x_shape, w_shape, padding, groups = shape
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(np.float32)
               for s in (x_shape, w_shape, w_shape[:1]))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    want = torch.nn.functional.conv2d(tx, tw, tb, padding=padding, groups=groups)
    upstream = rng.standard_normal(tuple(want.shape)).astype(np.float32)
    want.backward(torch.tensor(upstream))
    with jit.use_compiled(compiled):
        cx, cw, cb = (ct.tensor(a, requires_grad=True) for a in (x, w, b))
        got = ct.nn.functional.conv2d(cx, cw, cb, padding=padding, groups=groups)
        got.backward(ct.tensor(upstream))
    for mine, theirs in ((got, want), (cx.grad, tx.grad), (cw.grad, tw.grad),
                         (cb.grad, tb.grad)):
        assert_scaled_close(mine.detach().numpy(), theirs.detach().numpy(), 1e-5, 1e-5)
