"""The convolution memory budget (``corrnet.backends.conv.memory_budget``) holds (issue 11,
item 7): every pass of every algorithm keeps its temporaries — the peak of the memory
tracemalloc sees (NumPy's buffers, and numba's, both report to it) beyond what was allocated
before the call and the array it returns — within the budget, input copies included.

Where an algorithm's smallest chunk does not fit, the planner does not pick it (a forced one
falls back to im2col + GEMM, which can always cut down to one output row of one image).
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
import torch

import corrnet
from corrnet.kernels import jit, plan, threads
from corrnet.kernels.windows import make_window

KiB, MiB = 2**10, 2**20
# Python objects a call makes besides its arrays (slices, tuples, cached layouts of new chunk
# sizes): far below any budget worth setting
SLACK = 16 * KiB
BUDGETS = [MiB // 4, MiB, 4 * MiB]

# (name, algorithm, x shape, weight shape, stride, padding, dilation, groups, compiled)
CASES = [
    ("gemm", "gemm", (8, 16, 32, 32), (16, 16, 3, 3), 1, 1, 1, 1, True),
    ("gemm batch-innermost", "gemm", (32, 16, 12, 12), (16, 16, 3, 3), 1, 1, 1, 1, True),
    ("gemm batch-innermost numpy", "gemm", (32, 16, 12, 12), (16, 16, 3, 3), 1, 1, 1, 1,
     False),
    ("gemm strided dilated grouped", "gemm", (8, 16, 32, 32), (16, 8, 5, 5), 2, 2, 2, 2, True),
    # one image at a time in bands of output rows (conv.banded: 2.4 MB of windows per image)
    ("gemm banded", "gemm", (2, 16, 64, 64), (16, 16, 3, 3), 1, 1, 1, 1, True),
    ("gemm banded numpy", "gemm", (2, 16, 64, 64), (16, 16, 3, 3), 1, 1, 1, 1, False),
    ("gemm banded strided grouped", "gemm", (2, 8, 96, 96), (8, 4, 7, 7), 2, 3, 1, 2, True),
    ("pointwise", "pointwise", (8, 64, 32, 32), (64, 64, 1, 1), 1, 0, 1, 1, True),
    ("pointwise strided grouped", "pointwise", (8, 64, 32, 32), (64, 32, 1, 1), 2, 0, 1, 2,
     True),
    ("depthwise numpy", "depthwise", (8, 32, 32, 32), (64, 1, 3, 3), 1, 1, 1, 32, False),
    ("depthwise compiled", "depthwise", (8, 32, 32, 32), (64, 1, 3, 3), 2, 1, 1, 32, True),
    ("direct", "direct", (8, 4, 64, 64), (8, 4, 3, 3), 1, 1, 1, 1, True),
    ("direct strided", "direct", (8, 4, 64, 64), (8, 4, 3, 3), 2, 1, 1, 1, True),
    ("winograd", "winograd", (4, 32, 32, 32), (32, 32, 3, 3), 1, 1, 1, 1, True),
    ("winograd numpy", "winograd", (4, 32, 32, 32), (32, 32, 3, 3), 1, 1, 1, 1, False),
    ("fft", "fft", (4, 8, 64, 64), (8, 8, 9, 9), 1, 4, 1, 1, True),
    ("fft strided grouped", "fft", (4, 8, 64, 64), (8, 4, 7, 7), 2, 3, 1, 2, True),
    ("taps", "taps", (64, 64, 6, 6), (64, 64, 3, 3), 1, 1, 1, 1, True),
    ("taps strided grouped", "taps", (64, 64, 7, 7), (64, 32, 3, 3), 2, 1, 1, 2, True),
]


def temporaries(call):
    """(bytes of temporaries at the peak of call(), its result): tracemalloc's peak during the
    call beyond the memory traced before it and the array it returns. (tracemalloc counts
    every thread's allocations: numba's set-up, which `import corrnet` starts on a thread of
    its own, must be over first, or its imports land in the first measurement, and so must
    the measuring of the spin loops' clock, which the first helper pool starts. The garbage
    collector stays off during the call: garbage made before it is neither freed there nor
    counted.)"""
    for thread in (jit._warm_up_thread, threads._spin.thread):
        if thread is not None:
            thread.join()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    collecting = gc.isenabled()
    gc.disable()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if collecting:
            gc.enable()
        if started:
            tracemalloc.stop()
    return peak - before - result.nbytes, result


def _problem(case, rng, broadcast_grad):
    name, algorithm, x_shape, w_shape, s, p, d, groups, compiled = case
    window = make_window("conv2d", *x_shape[2:], w_shape[2:], (s, s), ((p, p), (p, p)), (d, d))
    x = rng.standard_normal(x_shape, dtype=np.float32)
    weight = rng.standard_normal(w_shape, dtype=np.float32)
    bias = rng.standard_normal(w_shape[0], dtype=np.float32)
    out_shape = (x_shape[0], w_shape[0], window.out_height, window.out_width)
    # a broadcast gradient (that of .sum()) makes the kernels that read it contiguous copy it
    grad = (np.broadcast_to(np.float32(0.5), out_shape) if broadcast_grad
            else rng.standard_normal(out_shape, dtype=np.float32))
    passes = {"forward": (x, weight, bias, window, groups),
              "grad_input": (grad, weight, window, groups, x_shape),
              "grad_weight": (grad, x, w_shape, window, groups)}
    return window, passes


def _run_case(case, budget, broadcast_grad):
    """{pass: (temporaries, the algorithm that ran)} for one case under `budget`."""
    name, algorithm, x_shape, w_shape, *_, groups, compiled = case
    window, passes = _problem(case, np.random.default_rng(0), broadcast_grad)
    found = {}
    previous = plan.settings.memory_budget
    with jit.use_compiled(compiled and jit.AVAILABLE), plan.forcing(algorithm):
        try:
            for pass_name, args in passes.items():
                problem = (x_shape, w_shape, window, groups, np.float32)

                def call(pass_name=pass_name, problem=problem, args=args):
                    return plan.conv_pass(pass_name, *problem, *args)

                plan.settings.memory_budget = 256 * MiB
                call()            # compiling, imports and caches first
                plan.settings.memory_budget = budget
                call()            # a kernel the chunked path alone runs compiles here, once
                ran = plan.choose(pass_name, *problem)
                found[pass_name] = (temporaries(call)[0], ran)
        finally:
            plan.settings.memory_budget = previous
    return found


@pytest.mark.parametrize("broadcast_grad", [False, True], ids=["grad", "broadcast-grad"])
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_issue11_every_algorithm_holds_the_memory_budget(case, broadcast_grad):
    """Item 7: each pass of each algorithm (or im2col, where its smallest chunk does not fit)
    keeps its temporaries within budgets of 1/4, 1 and 4 MiB; the problems' whole-batch
    buffers are several times larger."""
    for budget in BUDGETS:
        for pass_name, (used, ran) in _run_case(case, budget, broadcast_grad).items():
            assert used <= budget + SLACK, (
                f"{case[0]} {pass_name} on {ran}: {used / MiB:.2f} MiB of temporaries under a "
                f"budget of {budget / MiB:.2f} MiB")


def test_issue11_forced_im2col_makes_no_whole_padded_copy():
    """Item 7: im2col forced on a large batch (the issue: N=64, a 1 GiB input) unrolls,
    pads and sums in chunks: no pass holds a padded copy of the whole input (here 4 MiB,
    under a 1 MiB budget)."""
    case = ("gemm N=64", "gemm", (64, 16, 32, 32), (16, 16, 3, 3), 1, 1, 1, 1, True)
    for pass_name, (used, _) in _run_case(case, MiB, broadcast_grad=False).items():
        assert used <= MiB + SLACK, f"{pass_name}: {used / MiB:.2f} MiB"


@pytest.mark.parametrize("budget", [3 * KiB, 40 * KiB, 300 * KiB])
@pytest.mark.parametrize("compiled", [True, False] if jit.AVAILABLE else [False])
def test_im2col_chunks_and_bands_match_torch(budget, compiled):
    """Chunks of images and bands of output rows (strided, dilated, padded, grouped, with
    leftover rows no window reaches) give torch's values and gradients in every pass."""
    rng = np.random.default_rng(budget)
    x = rng.standard_normal((20, 4, 17, 13))
    w = rng.standard_normal((6, 2, 3, 4))
    b = rng.standard_normal(6)
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    x_t, w_t, b_t = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = torch.nn.functional.conv2d(x_t, w_t, b_t, **kwargs)
    grad = rng.standard_normal(tuple(out_t.shape))
    out_t.backward(torch.tensor(grad))
    previous = corrnet.backends.conv.memory_budget
    corrnet.backends.conv.memory_budget = budget
    try:
        with jit.use_compiled(compiled), plan.forcing("gemm"):
            xs, ws, bs = (corrnet.tensor(a, requires_grad=True) for a in (x, w, b))
            out = corrnet.nn.functional.conv2d(xs, ws, bs, **kwargs)
            out.backward(corrnet.tensor(grad))
    finally:
        corrnet.backends.conv.memory_budget = previous
    np.testing.assert_allclose(out.detach().numpy(), out_t.detach().numpy(), rtol=1e-10,
                               atol=1e-10)
    for ours, theirs in ((xs, x_t), (ws, w_t), (bs, b_t)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10,
                                   atol=1e-10)


@pytest.mark.parametrize("name", ["direct", "depthwise", "pointwise"])
def test_chunked_engines_under_a_broadcast_gradient_match_torch(name):
    """The direct engine and pointwise products, cut into chunks of images because the
    output gradient (that of a sum) is a broadcast view, give torch's gradients."""
    rng = np.random.default_rng(5)
    shapes = {"direct": ((6, 3, 20, 20), (5, 3, 3, 3), 1),
              "depthwise": ((6, 4, 20, 20), (8, 1, 3, 3), 4),
              "pointwise": ((6, 8, 20, 20), (4, 8, 1, 1), 1)}
    x_shape, w_shape, groups = shapes[name]
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    kwargs = dict(stride=2, padding=0 if name == "pointwise" else 1, groups=groups)
    x_t, w_t = (torch.tensor(a, requires_grad=True) for a in (x, w))
    torch.nn.functional.conv2d(x_t, w_t, **kwargs).sum().backward()
    previous = corrnet.backends.conv.memory_budget
    corrnet.backends.conv.memory_budget = 64 * KiB
    try:
        with plan.forcing(name):
            xs, ws = (corrnet.tensor(a, requires_grad=True) for a in (x, w))
            corrnet.nn.functional.conv2d(xs, ws, **kwargs).sum().backward()
    finally:
        corrnet.backends.conv.memory_budget = previous
    for ours, theirs in ((xs, x_t), (ws, w_t)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10,
                                   atol=1e-10)


def test_planner_leaves_out_algorithms_whose_smallest_chunk_does_not_fit():
    """A Winograd-sized layer under a budget below one image's tiles runs on im2col, and
    goes back to Winograd when the budget allows it again."""
    if not jit.enabled():
        pytest.skip("the rules pick Winograd for this shape with the compiled kernels")
    window = make_window("conv2d", 32, 32, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    problem = ((8, 64, 32, 32), (64, 64, 3, 3), window, 1)
    previous = plan.settings.memory_budget
    try:
        assert plan.describe(*problem)["forward"] == "winograd"
        plan.settings.memory_budget = 64 * KiB
        assert plan.describe(*problem) == dict.fromkeys(plan.PASSES, "gemm")
        with plan.forcing("winograd"):
            assert plan.describe(*problem)["forward"] == "gemm"
        plan.settings.memory_budget = previous
        assert plan.describe(*problem)["forward"] == "winograd"
    finally:
        plan.settings.memory_budget = previous


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_issue11_functional_convolutions_hold_the_budget(op):
    """F.conv2d and F.conv_transpose2d (whose forward is conv2d's input gradient), without
    autograd, hold no more than the budget besides their result."""
    rng = np.random.default_rng(7)
    x = corrnet.tensor(rng.standard_normal((16, 16, 24, 24), dtype=np.float32))
    w = corrnet.tensor(rng.standard_normal((16, 16, 3, 3), dtype=np.float32))
    run = getattr(corrnet.nn.functional, op)
    previous = corrnet.backends.conv.memory_budget
    try:
        with corrnet.no_grad():
            run(x, w, stride=2, padding=1)
            for budget in BUDGETS:
                corrnet.backends.conv.memory_budget = budget
                used, _ = temporaries(lambda: run(x, w, stride=2, padding=1).numpy())
                assert used <= budget + SLACK, f"{op}: {used / MiB:.2f} MiB under {budget}"
    finally:
        corrnet.backends.conv.memory_budget = previous
