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
