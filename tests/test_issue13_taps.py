"""Issue 13: the taps algorithm (kernels/taps.py) — a convolution as one channel GEMM per
kernel tap on channels-last layouts, the products of the zero padding left out.

PyTorch is the oracle for all three passes over random geometries (stride, dilation, padding
on each side up to past the kernel's reach, so that some taps read only padding, groups,
both float dtypes, chunks of images within a small budget); the tap ranges and the padding
share are checked against a count over every output and tap; the planner's rule against the
shapes it was measured on."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from corrnet.kernels import jit, plan, taps
from corrnet.kernels.windows import make_window


@st.composite
def problems(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = tuple((draw(st.integers(0, 5)), draw(st.integers(0, 5))) for _ in range(2))
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    low = [max(1, reach[a] - sum(pads[a])) for a in (0, 1)]
    size = tuple(draw(st.integers(low[a], low[a] + 7)) for a in (0, 1))
    return dict(n=draw(st.integers(1, 4)), c_in=groups * draw(st.integers(1, 4)),
                c_out=groups * draw(st.integers(1, 4)), size=size, kernel=kernel,
                stride=stride, dilation=dilation, pads=pads, groups=groups,
                bias=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32, np.float64])),
                small_budget=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)))


def _torch_passes(x, weight, bias, upstream, p):
    (top, bottom), (left, right) = p["pads"]
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(weight).requires_grad_()
    out = torch.nn.functional.conv2d(
        torch.nn.functional.pad(tx, (left, right, top, bottom)), tw,
        None if bias is None else torch.from_numpy(bias), p["stride"], 0, p["dilation"],
        p["groups"])
    out.backward(torch.from_numpy(upstream))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()


@settings(max_examples=150, deadline=None)
@given(problem=problems())
def test_issue13_taps_match_torch_in_every_pass(problem):
    p = problem
    rng = np.random.default_rng(p["seed"])
    dtype = p["dtype"]
    x = rng.standard_normal((p["n"], p["c_in"], *p["size"])).astype(dtype)
    weight = rng.standard_normal((p["c_out"], p["c_in"] // p["groups"], *p["kernel"])).astype(
        dtype)
    bias = rng.standard_normal(p["c_out"]).astype(dtype) if p["bias"] else None
    window = make_window("conv2d", *p["size"], p["kernel"], p["stride"], p["pads"],
                         p["dilation"])
    upstream = rng.standard_normal(
        (p["n"], p["c_out"], window.out_height, window.out_width)).astype(dtype)
    # a budget of one image's temporaries: chunks of one image
    budget = (taps.least_bytes(x.shape, weight.shape, window, p["groups"], dtype, "forward")
              if p["small_budget"] else taps.DEFAULT_BUDGET)
    got = (taps.forward(x, weight, bias, window, p["groups"], budget),
           taps.grad_input(upstream, weight, window, p["groups"], x.shape, budget),
           taps.grad_weight(upstream, x, weight.shape, window, p["groups"], budget))
    expected = _torch_passes(x, weight, bias, upstream, p)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for name, value, want in zip(("forward", "grad_input", "grad_weight"), got, expected,
                                 strict=True):
        assert value.dtype == dtype and value.shape == want.shape, name
        assert value.flags.c_contiguous, name
        np.testing.assert_allclose(value, want, rtol=0,
                                   atol=tolerance * (1 + np.abs(want).max()), err_msg=name)


@settings(max_examples=200, deadline=None)
@given(out_size=st.integers(1, 9), size=st.integers(1, 9), stride=st.integers(1, 4),
       start=st.integers(-12, 12))
def test_issue13_tap_range_is_every_output_whose_input_is_inside(out_size, size, stride, start):
    first, end = taps._tap_range(out_size, size, stride, start)
    inside = [out for out in range(out_size) if 0 <= out * stride + start < size]
    assert list(range(first, end)) == inside


def test_issue13_padding_share_counts_the_padding_cells():
    """3x3 kernel, padding 1: on a 3x3 map 32 of 81 window cells are padding; on 6x6, 68 of
    324; none without padding."""
    def share(side, pad, stride=1):
        window = make_window("conv2d", side, side, (3, 3), (stride, stride),
                             ((pad, pad), (pad, pad)), (1, 1))
        return taps.padding_share(window)

    assert share(3, 1) == pytest.approx(32 / 81)
    assert share(6, 1) == pytest.approx(68 / 324)
    assert share(6, 0) == 0


def test_issue13_taps_doctests():
    assert doctest.testmod(taps).failed == 0


@pytest.mark.parametrize("x_shape, w_shape, stride, is_taps", [
    ((64, 512, 3, 3), (512, 512, 3, 3), 1, True),     # ResNet-18's last stage, 96x96 inputs
    ((64, 256, 6, 6), (512, 256, 3, 3), 2, True),     # into that stage (share 0.21)
    ((16, 512, 7, 7), (512, 512, 3, 3), 1, False),    # 7x7 maps: share 0.18
    ((64, 128, 12, 12), (256, 128, 3, 3), 2, False),  # share 0.11
    ((64, 32, 3, 3), (32, 32, 3, 3), 1, False),       # too few channels
    ((64, 256, 6, 6), (256, 256, 3, 3), 1, False),    # Winograd's rule comes first
])
def test_issue13_taps_rule(x_shape, w_shape, stride, is_taps):
    window = make_window("conv2d", *x_shape[2:], w_shape[2:], (stride, stride),
                         ((1, 1), (1, 1)), (1, 1))
    for pass_name in plan.PASSES:
        chosen = plan.rule_choice(pass_name, x_shape, w_shape, window, 1, np.float32)
        assert (chosen == "taps") == is_taps, (pass_name, chosen)


def test_issue13_taps_rule_alone():
    """4x4 maps at 64 channels (share 0.31): the rule holds (the planner asks lanes first)."""
    window = make_window("conv2d", 4, 4, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert taps.rule("grad_weight", (64, 64, 4, 4), (64, 64, 3, 3), window, 1)
    assert not taps.rule("grad_weight", (64, 63, 4, 4), (63, 63, 3, 3), window, 1)


@pytest.mark.parametrize("compiled", [
    pytest.param(True, id="numba",
                 marks=pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")),
    pytest.param(False, id="numpy")])
@pytest.mark.parametrize("weight_shape, groups", [
    ((512, 16, 3, 3), 1), ((37, 5, 3, 3), 1), ((36, 5, 2, 4), 3), ((20, 33, 1, 1), 2),
    ((17, 4, 5, 1), 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_issue13_taps_tap_major_is_each_taps_matrix(compiled, weight_shape, groups, dtype):
    """The tap-major weight (the compiled copy, in blocks of output channels, a block cut
    short at the end, and NumPy's): [i, j, g, o, c] = weight[g*Og + o, c, i, j], contiguous."""
    weight = np.random.default_rng(0).standard_normal(weight_shape).astype(dtype)
    c_out, c_group, kh, kw = weight_shape
    outs = c_out // groups
    with jit.use_compiled(compiled):
        got = taps._tap_major(weight, groups)
    assert got.shape == (kh, kw, groups, outs, c_group) and got.dtype == dtype
    assert got.flags.c_contiguous
    for i in range(kh):
        for j in range(kw):
            for g in range(groups):
                np.testing.assert_array_equal(got[i, j, g],
                                              weight[g * outs:(g + 1) * outs, :, i, j])
