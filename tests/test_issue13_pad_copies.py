"""Issue 13: the non-constant pads (`kernels.windows.pad_array`) are made by slice copies
into one output instead of a gather per axis. Checked against the gather it replaced
(`pad_array_reference`) for every mode, with cropping and with pads wider than the axis
(where the copy plan hands over to the gather), and against `numpy.pad`, an independent
oracle, for non-negative pads (PyTorch's F.pad is compared in tests/oracle/test_fold_pad.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from corrnet.kernels.windows import _copy_plan, pad_array, pad_array_reference

NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap",
               "symmetric": "symmetric"}


@st.composite
def pad_cases(draw):
    mode = draw(st.sampled_from(sorted(NUMPY_MODES)))
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=4)))
    count = draw(st.integers(1, min(2, len(shape))))
    pads = [(draw(st.integers(-2, shape[-count + i] + 3)),
             draw(st.integers(-2, shape[-count + i] + 3))) for i in range(count)]
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64]))
    return mode, shape, pads, dtype, draw(st.integers(0, 2**31))


@settings(max_examples=400, deadline=None)
@given(pad_cases())
def test_copies_equal_the_gather(case):
    mode, shape, pads, dtype, seed = case
    x = (np.random.default_rng(seed).standard_normal(shape) * 100).astype(dtype)
    lengths = [shape[len(shape) - len(pads) + i] + before + after
               for i, (before, after) in enumerate(pads)]
    assume(min(lengths) >= 1)  # cropped to nothing: F.pad refuses before it gets here
    if mode == "circular":  # wraps around what cropping leaves: F.pad refuses nothing left
        assume(all(size - max(-before, 0) - max(-after, 0) >= 1
                   for (before, after), size in zip(pads, shape[-len(pads):], strict=True)))
    expected = pad_array_reference(x, pads, mode)
    got = pad_array(x, pads, mode)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    if all(before >= 0 and after >= 0 for before, after in pads) and (
            mode != "reflect" or all(max(p) < s for p, s in zip(pads, shape[-len(pads):],
                                                                 strict=True))):
        full = [(0, 0)] * (len(shape) - len(pads)) + list(pads)
        np.testing.assert_array_equal(got, np.pad(x, full, mode=NUMPY_MODES[mode]))


def test_the_copy_plan_hands_wide_pads_to_the_gather():
    assert _copy_plan(4, 1, 2, "symmetric").copies == {0: 1, 5: 4, 6: 3}
    assert _copy_plan(3, 7, 0, "symmetric").copies[0] == 7   # wider than the axis: copies
    assert _copy_plan(4, -3, 3, "symmetric") is None         # mirrors cells cropped away
    assert _copy_plan(5, -3, 2, "reflect") is None
    assert _copy_plan(5, 2, -3, "circular").copies == {0: 2, 1: 3}  # wraps what is left
    image = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(pad_array(image, [(3, 3), (4, 4)], "symmetric"),
                                  np.pad(image, [(3, 3), (4, 4)], mode="symmetric"))


@settings(max_examples=300, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       data=st.data(), value=st.sampled_from([0, 1.5, -3]),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_constant_pads_fill_every_border_cell(shape, data, value, dtype):
    """Constant mode writes the borders around the copied part (into an uninitialised
    array): against cropping by slices and numpy.pad, with pads that crop one or both sides
    and pads wider than the axis, on 1 or 2 trailing axes."""
    shape = tuple(shape)
    count = data.draw(st.integers(1, min(2, len(shape))))
    pads = [(data.draw(st.integers(-2, 9)), data.draw(st.integers(-2, 9))) for _ in range(count)]
    sizes = shape[len(shape) - count:]
    assume(all(size + before + after >= 1 for size, (before, after) in zip(sizes, pads,
                                                                           strict=True)))
    # (F.pad refuses crops of more than an axis holds before it gets here)
    assume(all(max(-before, 0) + max(-after, 0) <= size
               for size, (before, after) in zip(sizes, pads, strict=True)))
    x = (np.random.default_rng(7).standard_normal(shape) * 100).astype(dtype)
    kept = x[(Ellipsis, *(slice(max(-before, 0), size - max(-after, 0))
                          for size, (before, after) in zip(sizes, pads, strict=True)))]
    full = [(0, 0)] * (len(shape) - count) + [(max(before, 0), max(after, 0))
                                               for before, after in pads]
    # (a crop past the far side leaves nothing; its place in the output is all padding)
    lengths = [size + before + after for size, (before, after) in zip(sizes, pads,
                                                                      strict=True)]
    if 0 in kept.shape[len(shape) - count:]:
        expected = np.full(shape[:len(shape) - count] + tuple(lengths), value, dtype)
    else:
        expected = np.pad(kept, full, constant_values=value)
    got = pad_array(x, pads, "constant", value)
    assert got.dtype == x.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
