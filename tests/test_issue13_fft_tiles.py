"""Issue 13: the FFT forward pass on tiles of a large image (overlap-save, fft.py's "Large
images"). Compared with PyTorch's conv2d over random geometries — the tile sizes made small so
that tiling runs on small problems too, with several tiles a side and partial last tiles —
and end to end through corrnet.corr2d on an image large enough to tile at the real sizes.
The memory budget holds (tracemalloc, as tests/test_memory_budget.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_memory_budget import SLACK, temporaries

import corrnet
from corrnet.kernels import fft, plan, threads
from corrnet.kernels.windows import make_window


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles on small problems: any grid over 256 numbers, tiles 64 a side (windows of up to
    16 a side tile), shared among corrnet's threads however few outputs there are."""
    monkeypatch.setattr(fft, "TILE_GRID_SIZE", 256)
    monkeypatch.setattr(fft, "TILE_SIDE", 64)
    monkeypatch.setattr(threads, "MIN_PARALLEL_SIZE", 1)


@st.composite
def geometries(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    height = draw(st.integers(max(dh * (kh - 1) + 1 - 2 * pads[0], 17), 150))
    width = draw(st.integers(max(dw * (kw - 1) + 1 - 2 * pads[1], 17), 150))
    return dict(n=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, groups=groups,
                size=(height, width), kernel=(kh, kw), dilation=(dh, dw), padding=pads,
                bias=draw(st.booleans()))


def _problem(geometry, dtype, seed=0):
    rng = np.random.default_rng(seed)
    g = geometry
    x = rng.standard_normal((g["n"], g["c_in"], *g["size"])).astype(dtype)
    weight = rng.standard_normal((g["c_out"], g["c_in"] // g["groups"], *g["kernel"]))
    bias = rng.standard_normal(g["c_out"]).astype(dtype) if g["bias"] else None
    window = make_window("conv2d", *g["size"], g["kernel"], (1, 1),
                         tuple((p, p) for p in g["padding"]), g["dilation"])
    return x, weight.astype(dtype), bias, window


def _torch_forward(x, weight, bias, geometry):
    return torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(weight),
        None if bias is None else torch.from_numpy(bias), padding=geometry["padding"],
        dilation=geometry["dilation"], groups=geometry["groups"]).numpy()


# the fixture only sets module constants: the same for every example
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(geometry=geometries())
def test_issue13_tiled_fft_forward_matches_torch_float64(small_tiles, geometry):
    x, weight, bias, window = _problem(geometry, np.float64)
    assert fft._tiles(window, fft.fft_grid(window)) is not None
    out = fft.forward(x, weight, bias, window, geometry["groups"])
    np.testing.assert_allclose(out, _torch_forward(x, weight, bias, geometry),
                               rtol=1e-10, atol=1e-10)


def test_issue13_tiling_runs_with_several_partial_tiles(small_tiles):
    geometry = dict(n=2, c_in=2, c_out=3, groups=1, size=(150, 140), kernel=(5, 3),
                    dilation=(2, 1), padding=(3, 1), bias=True)
    x, weight, bias, window = _problem(geometry, np.float32)
    tiles = fft._tiles(window, fft.fft_grid(window))
    assert tiles is not None
    assert window.out_height % tiles[0] and window.out_width % tiles[1]   # partial last ones
    assert window.out_height > 2 * tiles[0] and window.out_width > 2 * tiles[1]
    out = fft.forward(x, weight, bias, window, 1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _torch_forward(x, weight, bias, geometry),
                               rtol=1e-4, atol=1e-4)


def test_issue13_corr2d_of_a_large_image_runs_on_fft_tiles_and_matches_torch():
    rng = np.random.default_rng(3)
    image = rng.random((1100, 1030), dtype=np.float32)
    kernel = rng.random((15, 13), dtype=np.float32)
    window = make_window("conv2d", 1100, 1030, (15, 13), (1, 1), ((0, 0), (0, 0)), (1, 1))
    assert fft._tiles(window, fft.fft_grid(window)) is not None
    with plan.forcing("fft"):
        out = corrnet.corr2d(corrnet.from_numpy(image), corrnet.from_numpy(kernel)).numpy()
    expected = torch.nn.functional.conv2d(torch.from_numpy(image)[None, None],
                                          torch.from_numpy(kernel)[None, None])[0, 0].numpy()
    # float32 FFT error is relative to the largest sums (fft.py, Precision): S <= 195 here
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * 195)


def test_issue13_tiles_in_the_padding_alone_hold_the_bias(small_tiles):
    """Padding wider than a tile: whole tiles read nothing but zeros (their input is a zeroed
    block, `_tile_input`), others begin or end in the padding."""
    geometry = dict(n=1, c_in=2, c_out=2, groups=1, size=(40, 35), kernel=(3, 5),
                    dilation=(1, 1), padding=(90, 70), bias=True)
    x, weight, bias, window = _problem(geometry, np.float64)
    tiles = fft._tiles(window, fft.fft_grid(window))
    assert tiles is not None and 90 > tiles[0] + 2 and 70 > tiles[1] + 4
    out = fft.forward(x, weight, bias, window, 1)
    expected = _torch_forward(x, weight, bias, geometry)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(out[0, :, :tiles[0], :], np.broadcast_to(
        bias[:, None, None], (2, tiles[0], out.shape[3])))


def test_issue13_tiles_give_the_same_numbers_on_one_thread_and_on_two(small_tiles):
    """Each tile goes through the same transforms on whichever thread takes it."""
    geometry = dict(n=2, c_in=3, c_out=2, groups=1, size=(150, 140), kernel=(7, 5),
                    dilation=(1, 1), padding=(2, 3), bias=True)
    x, weight, bias, window = _problem(geometry, np.float32)
    before = corrnet.get_num_threads()
    try:
        corrnet.set_num_threads(1)
        alone = fft.forward(x, weight, bias, window, 1)
        corrnet.set_num_threads(2)
        shared = fft.forward(x, weight, bias, window, 1)
    finally:
        corrnet.set_num_threads(before)
    np.testing.assert_array_equal(alone, shared)
    np.testing.assert_allclose(shared, _torch_forward(x, weight, bias, geometry),
                               rtol=1e-4, atol=1e-4)


def test_issue13_tiled_fft_holds_the_memory_budget(small_tiles):
    geometry = dict(n=2, c_in=2, c_out=2, groups=1, size=(300, 280), kernel=(7, 7),
                    dilation=(1, 1), padding=(3, 3), bias=True)
    x, weight, bias, window = _problem(geometry, np.float32)
    assert fft._tiles(window, fft.fft_grid(window)) is not None
    whole = x.nbytes
    for budget in (whole // 4, whole, 4 * whole):
        least = fft.least_bytes(x.shape, weight.shape, window, 1, np.float32, "forward")
        used, out = temporaries(lambda b=budget: fft.forward(x, weight, bias, window, 1, b))
        assert used <= max(budget, least) + SLACK, (budget, least, used)
    np.testing.assert_allclose(out, _torch_forward(x, weight, bias, geometry),
                               rtol=1e-4, atol=1e-4)


@settings(max_examples=200, deadline=None)
@given(out=st.integers(1, 5000), extent=st.integers(1, 128))
def test_issue13_tile_sides_cover_the_output_on_fast_grids_no_larger_than_before(out, extent):
    """Each tile's input (outputs + extent - 1) is a fast FFT length within TILE_SIDE, the
    tiles cover the output, and their grids hold no more cells along the axis than the
    previous rule's (as many tiles of TILE_SIDE - extent + 1 outputs as needed, on grids of
    TILE_SIDE)."""
    import scipy.fft

    side = fft._tile_side(out, extent)
    count = -(-out // side)
    if out + extent - 1 <= fft.TILE_SIDE:
        assert side == out
        return
    length = side + extent - 1
    assert length <= fft.TILE_SIDE
    assert scipy.fft.next_fast_len(length, real=True) == length
    assert count * side >= out
    previous = -(-out // (fft.TILE_SIDE - extent + 1)) * fft.TILE_SIDE
    assert count * length <= previous


def test_issue13_tiles_of_a_2048_image_and_a_31x31_kernel():
    """7 tiles a side of 290 outputs on 320 x 320 grids (2240 cells a side, not 5 x 512)."""
    window = make_window("conv2d", 2048, 2048, (31, 31), (1, 1), ((0, 0), (0, 0)), (1, 1))
    assert fft._tiles(window, fft.fft_grid(window)) == (290, 290)
