"""Issue 13: Winograd's compiled passes run item by item (winograd.py, `_items_kernel`): each
item is a band of rows of tiles, across images where the maps are small, taken through the
input transform, the GEMMs (`CHANNEL_BLOCK` channels at a time) and the output transform (or,
for the weight gradient, the output gradient's transform and the products summed in float64)
on one thread.

PyTorch is the oracle for all three passes, with the item size and the channel block made
small so that the items are single rows of tiles, bands that end inside an image and bands
that span images, and the channel sums take several blocks (with a short last one). The
kernel reads x in place: padding on every side up to 4 (so that the input gradient's
correlation crops its input), maps narrower than the padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from corrnet.kernels import jit, threads, winograd
from corrnet.kernels.windows import make_window

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="numba missing")


@st.composite
def problems(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    # pads past 2: the input gradient's correlation crops its input (pads 2 - pad < 0)
    pads = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(2))
    height = draw(st.integers(max(1, 3 - sum(pads[0])), 13))
    width = draw(st.integers(max(1, 3 - sum(pads[1])), 13))
    return dict(n=draw(st.integers(1, 4)), c_in=groups * draw(st.integers(1, 7)),
                c_out=groups * draw(st.integers(1, 7)), size=(height, width), pads=pads,
                groups=groups, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                item_bytes=draw(st.sampled_from([1, 3000, 20000, 2**20])),
                channel_block=draw(st.sampled_from([1, 2, 3, 64])),
                seed=draw(st.integers(0, 2**32 - 1)))


def _torch_passes(x, weight, bias, upstream, pads, groups):
    """PyTorch's forward, input gradient and weight gradient, the padding possibly
    asymmetric (F.pad first)."""
    (top, bottom), (left, right) = pads
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(weight).requires_grad_()
    out = torch.nn.functional.conv2d(
        torch.nn.functional.pad(tx, (left, right, top, bottom)), tw,
        None if bias is None else torch.from_numpy(bias), groups=groups)
    out.backward(torch.from_numpy(upstream))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()


@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_issue13_winograd_items_match_torch_in_every_pass(problem):
    p = problem
    rng = np.random.default_rng(p["seed"])
    dtype = p["dtype"]
    x = rng.standard_normal((p["n"], p["c_in"], *p["size"])).astype(dtype)
    weight = rng.standard_normal((p["c_out"], p["c_in"] // p["groups"], 3, 3)).astype(dtype)
    bias = rng.standard_normal(p["c_out"]).astype(dtype) if p["bias"] else None
    window = make_window("conv2d", *p["size"], (3, 3), (1, 1), p["pads"], (1, 1))
    upstream = rng.standard_normal(
        (p["n"], p["c_out"], window.out_height, window.out_width)).astype(dtype)
    expected = _torch_passes(x, weight, bias, upstream, p["pads"], p["groups"])
    saved = winograd.ITEM_BYTES, winograd.CHANNEL_BLOCK
    winograd.ITEM_BYTES, winograd.CHANNEL_BLOCK = p["item_bytes"], p["channel_block"]
    try:
        with jit.use_compiled(True):
            got = (winograd.forward(x, weight, bias, window, p["groups"]),
                   winograd.grad_input(upstream, weight, window, p["groups"], x.shape),
                   winograd.grad_weight(upstream, x, weight.shape, window, p["groups"]))
    finally:
        winograd.ITEM_BYTES, winograd.CHANNEL_BLOCK = saved
    tolerance = 1e-4 if dtype == np.float32 else 1e-11
    for name, value, want in zip(("forward", "grad_input", "grad_weight"), got, expected,
                                 strict=True):
        assert value.dtype == dtype and value.shape == want.shape, name
        scale = 1 + np.abs(want).max()
        np.testing.assert_allclose(value, want, rtol=0, atol=tolerance * scale, err_msg=name)


def test_issue13_winograd_items_span_images_on_small_maps():
    """6x6 maps (ResNet-18's third stage at 96x96 inputs): 3 rows of tiles an image, items
    of 4 rows, so every item but the first starts inside an image and most span two."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 8, 6, 6))
    weight = rng.standard_normal((8, 8, 3, 3))
    window = make_window("conv2d", 6, 6, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    upstream = rng.standard_normal((5, 8, 6, 6))
    # one row of tiles: V and M of 3 tiles, 16 positions, 8 + 8 channels, and a partial
    # product (8 channels), in float64
    row_bytes = 8 * 3 * (16 * (8 + 8) + 8)
    saved = winograd.ITEM_BYTES
    winograd.ITEM_BYTES = 4 * row_bytes
    try:
        with jit.use_compiled(True):
            got = (winograd.forward(x, weight, None, window, 1),
                   winograd.grad_input(upstream, weight, window, 1, x.shape))
    finally:
        winograd.ITEM_BYTES = saved
    expected = _torch_passes(x, weight, None, upstream, ((1, 1), (1, 1)), 1)
    for value, want in zip(got, expected[:2], strict=True):
        np.testing.assert_allclose(value, want, rtol=0, atol=1e-11 * (1 + np.abs(want).max()))


@pytest.mark.parametrize("count", [2, 3])
def test_issue13_winograd_items_on_threads(monkeypatch, late_helpers, count):
    """Small items on 2 and 3 threads: the forward pass and the input gradient take them
    from a shared counter (`threads.run_shared`), the weight gradient runs fixed runs of
    them (`threads.run_pieces`), its threads' float64 sums added; a helper that starts late
    finds fewer items left."""
    rng = np.random.default_rng(count)
    x = rng.standard_normal((3, 5, 9, 11))
    weight = rng.standard_normal((4, 5, 3, 3))
    bias = rng.standard_normal(4)
    window = make_window("conv2d", 9, 11, (3, 3), (1, 1), ((1, 1), (2, 0)), (1, 1))
    upstream = rng.standard_normal((3, 4, window.out_height, window.out_width))
    expected = _torch_passes(x, weight, bias, upstream, ((1, 1), (2, 0)), 1)
    monkeypatch.setattr(winograd, "ITEM_BYTES", 1)          # one row of tiles an item
    monkeypatch.setattr(winograd, "MIN_PARALLEL_SIZE", 0)
    monkeypatch.setattr(winograd, "active", lambda: count)
    monkeypatch.setattr(threads, "active", lambda: count)
    monkeypatch.setattr(threads, "MIN_PARALLEL_SIZE", 0)
    for helpers in (threads.helper_pool, late_helpers(0.05)):
        monkeypatch.setattr(threads, "helper_pool", helpers)
        with jit.use_compiled(True):
            got = (winograd.forward(x, weight, bias, window, 1),
                   winograd.grad_input(upstream, weight, window, 1, x.shape),
                   winograd.grad_weight(upstream, x, weight.shape, window, 1))
        for value, want in zip(got, expected, strict=True):
            np.testing.assert_allclose(value, want, rtol=0,
                                       atol=1e-11 * (1 + np.abs(want).max()))


def test_issue13_run_pieces_returns_each_runs_result_in_job_order():
    def kernel(first, end):
        return (first, end)

    runs = threads.run_pieces(kernel, 10, 2**30)
    assert runs[0][0] == 0 and runs[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(runs, runs[1:], strict=False))
    assert threads.run_pieces(kernel, 10, 1) == [(0, 10)]     # small work: one run
