"""Named regressions: corners of convolution and pooling that other projects got wrong.

Each one is checked against PyTorch through `helpers.check_op` / `check_functional` (values,
gradients, shapes, dtypes, integer indices exactly, the verdict), and some also against the
value PyTorch is known to give, so that the corner itself is visible in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt
import torch.nn.functional as tF

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import (
        assert_accepted,
        check_functional,
        check_module,
        distinct_array,
        random_array,
        to_numpy,
    )
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import (
        assert_accepted,
        check_functional,
        check_module,
        distinct_array,
        random_array,
        to_numpy,
    )

DTYPES = [np.float32, np.float64]


# ------------------------------------------------------------------ max-pool padding
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, x_shape, args, kwargs", [
    ("max_pool2d", (1, 2, 4, 5), (3,), {"stride": 2, "padding": 1}),
    ("max_pool2d", (2, 1, 3, 3), (2,), {"stride": 1, "padding": 1, "return_indices": True}),
    ("max_pool2d", (1, 1, 5, 5), (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
    ("max_pool1d", (1, 2, 5), (3,), {"stride": 2, "padding": 1, "return_indices": True}),
])
def test_regression_maxpool_pads_with_neg_inf_not_zero(op, x_shape, args, kwargs, dtype):
    """All-negative input: zero padding would win every border window."""
    x = -1.0 - np.abs(distinct_array(np.random.default_rng(0), x_shape, dtype))
    res = assert_accepted(check_functional(op, x, *args, **kwargs))
    assert np.all(to_numpy(res.torch_outputs[0]) < 0)  # the corner is really exercised


# ------------------------------------------------------------------------- ceil_mode
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("size, k, s, p, expected", [
    (5, 2, 2, 1, 3),  # a 4th window would start at index 5: in the right padding only
    (3, 2, 2, 1, 2),  # a 3rd would start at index 3: in the right padding only
    (4, 2, 3, 1, 2),  # a 3rd would start at index 5
    (6, 3, 2, 1, 4),  # kept: the 4th window starts at index 5, inside the input
    (7, 3, 3, 1, 3),
])
def test_regression_ceil_mode_last_window_starts_inside_input_or_left_padding(
        op, size, k, s, p, expected):
    x = distinct_array(np.random.default_rng(1), (1, 2, size, size + 1), np.float64)
    res = assert_accepted(check_functional(op, x, k, s, p, ceil_mode=True))
    assert res.torch_outputs[0].shape[-2] == expected


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"])
def test_regression_ceil_mode_output_size_kernel1_stride2_on_32(op):
    """The documented formula gives ceil(31 / 2) + 1 = 17; PyTorch gives 16."""
    shape = (1, 1, 32, 32) if op.endswith("2d") else (1, 2, 32)
    x = distinct_array(np.random.default_rng(2), shape, np.float32)
    res = assert_accepted(check_functional(op, x, 1, 2, ceil_mode=True))
    assert res.torch_outputs[0].shape[-1] == 16


# ----------------------------------------------------------------------- avg divisor
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, x_shape, args", [
    ("avg_pool2d", (1, 1, 5, 5), (2, 2, 1)),
    ("avg_pool2d", (1, 2, 6, 7), ((3, 2), (2, 2), (1, 1))),
    ("avg_pool2d", (1, 1, 4, 4), (3, 2, 1)),
    ("avg_pool1d", (1, 1, 5), (2, 2, 1)),
    ("avg_pool1d", (2, 3, 6), (3, 2, 1)),
])
def test_regression_avgpool_count_include_pad_with_ceil_mode_divides_by_clipped_window(
        op, x_shape, args, dtype):
    """The last (ceil_mode) window hangs past the padded input: divide by the part of it that
    lies within input + padding, not by the full kernel area nor by the real elements."""
    x = np.ones(x_shape, dtype)
    res = assert_accepted(check_functional(op, x, *args, ceil_mode=True, count_include_pad=True))
    out = to_numpy(res.torch_outputs[0])
    assert np.any(out < 1.0) and np.any(np.isclose(out, 1.0))  # padding counted, but clipped
    x = random_array(np.random.default_rng(3), x_shape, dtype)
    for include in (True, False):
        assert_accepted(check_functional(op, x, *args, ceil_mode=True,
                                         count_include_pad=include))


# ---------------------------------------------------------------------- padding='same'
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, x_shape, w_shape, kwargs", [
    ("conv2d", (1, 1, 5, 6), (1, 1, 2, 4), {}),
    ("conv2d", (2, 2, 6, 5), (3, 2, 4, 2), {"dilation": (1, 3)}),
    ("conv2d", (1, 1, 4, 4), (1, 1, 2, 2), {"dilation": 2}),  # odd total: even dilated size
    ("conv1d", (1, 2, 7), (2, 2, 4), {}),
    ("conv1d", (2, 7), (3, 2, 2), {"dilation": 3}),
])
def test_regression_conv_same_even_kernel_pads_extra_at_end(op, x_shape, w_shape, kwargs,
                                                            dtype):
    rng = np.random.default_rng(4)
    x, w = random_array(rng, x_shape, dtype), random_array(rng, w_shape, dtype)
    res = assert_accepted(check_functional(op, x, w, padding="same", **kwargs))
    assert res.torch_outputs[0].shape[-1] == x_shape[-1]
    # the same result as explicit padding with the extra row/column at the end
    k, d = w_shape[-1], kwargs.get("dilation", 1)
    d = d if isinstance(d, int) else d[-1]
    total = d * (k - 1)
    ref = getattr(tF, op)(tF.pad(tt.tensor(x), (total // 2, total - total // 2)
                                 + ((0, 0) if op == "conv1d" else
                                    _pads_h(w_shape, kwargs))), tt.tensor(w), **kwargs)
    np.testing.assert_allclose(to_numpy(res.torch_outputs[0]), ref.numpy(), rtol=1e-5,
                               atol=1e-5)


def _pads_h(w_shape, kwargs):
    d = kwargs.get("dilation", 1)
    d = d if isinstance(d, int) else d[0]
    total = d * (w_shape[-2] - 1)
    return (total // 2, total - total // 2)


@pytest.mark.parametrize("op, x_shape, w_shape, stride", [
    ("conv2d", (1, 1, 6, 6), (1, 1, 3, 3), 2),
    ("conv2d", (1, 1, 6, 6), (1, 1, 3, 3), (1, 2)),
    ("conv1d", (1, 1, 6), (1, 1, 3), 2),
])
def test_regression_conv_same_refused_for_stride_gt_1(op, x_shape, w_shape, stride):
    rng = np.random.default_rng(5)
    x, w = random_array(rng, x_shape, np.float64), random_array(rng, w_shape, np.float64)
    assert check_functional(op, x, w, stride=stride, padding="same").rejected


@pytest.mark.parametrize("name, args", [("Conv2d", (1, 1, 3)), ("Conv1d", (1, 1, 3))])
def test_regression_conv_module_same_refused_for_stride_gt_1(name, args):
    shape = (1, 1, 6, 6) if name == "Conv2d" else (1, 1, 6)
    x = random_array(np.random.default_rng(5), shape, np.float64)
    assert check_module(name, args, {"stride": 2, "padding": "same"}, [x]).rejected


# ------------------------------------------------------------ pooling padding bound
@pytest.mark.parametrize("op, x_shape, args, kwargs", [
    ("max_pool2d", (1, 1, 8, 8), (3,), {"padding": 2}),
    ("max_pool2d", (1, 1, 8, 8), (2,), {"padding": 2}),
    ("max_pool2d", (1, 1, 8, 8), ((3, 2),), {"padding": (1, 2)}),
    ("max_pool2d", (1, 1, 8, 8), (3,), {"padding": 2, "dilation": 3}),  # raw kernel counts
    ("avg_pool2d", (1, 1, 8, 8), (3,), {"padding": 2}),
    ("avg_pool2d", (1, 1, 8, 8), ((4, 1),), {"padding": (2, 1)}),
    ("max_pool1d", (1, 1, 8), (3,), {"padding": 2}),
    ("avg_pool1d", (1, 1, 8), (1,), {"padding": 1}),
])
def test_regression_pool_padding_larger_than_half_kernel_refused(op, x_shape, args, kwargs):
    x = distinct_array(np.random.default_rng(6), x_shape, np.float64)
    assert check_functional(op, x, *args, **kwargs).rejected


def test_regression_pool_padding_exactly_half_kernel_accepted():
    x = distinct_array(np.random.default_rng(6), (1, 1, 6, 6), np.float64)
    assert_accepted(check_functional("max_pool2d", x, 2, padding=1))
    assert_accepted(check_functional("avg_pool2d", x, (4, 2), padding=(2, 1)))


# ------------------------------------------------------------------------------ ties
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, x, args, kwargs", [
    ("max_pool2d", np.ones((1, 1, 4, 4)), (2,), {"return_indices": True}),
    ("max_pool2d", np.ones((1, 2, 5, 5)), (3,), {"stride": 1, "return_indices": True}),
    ("max_pool2d", np.array([[[[1, 3, 3], [3, 3, 0], [2, 3, 3]]]]), (2,),
     {"stride": 1, "padding": 1, "return_indices": True}),
    ("max_pool2d", np.zeros((1, 1, 5, 6)), ((2, 3),), {"stride": 2, "dilation": (2, 1),
                                                       "ceil_mode": True,
                                                       "return_indices": True}),
    ("max_pool1d", np.array([[[2, 2, 1, 2, 2, 2]]]), (3,), {"stride": 1, "return_indices": True}),
    ("adaptive_max_pool2d", np.ones((1, 1, 5, 7)), ((3, 2),), {"return_indices": True}),
    ("adaptive_max_pool1d", np.ones((2, 5)), (3,), {"return_indices": True}),
])
def test_regression_maxpool_backward_ties_go_to_a_single_index(op, x, args, kwargs, dtype):
    """Each window sends its whole gradient to one element: the first maximum in row-major
    order (torch), not split among the tied maxima nor sent to all of them."""
    x = x.astype(dtype)
    res = assert_accepted(check_functional(op, x, *args, **kwargs))
    idx = to_numpy(res.torch_outputs[1])
    flat = x.reshape(*x.shape[:-2 if op.endswith("2d") else -1], -1)
    win_first = np.take_along_axis(flat, idx.reshape(*flat.shape[:-1], -1), -1)
    assert np.all(win_first == to_numpy(res.torch_outputs[0]).reshape(win_first.shape))
    # gradient of sum(): each window contributes exactly 1, to one element
    xt = tt.tensor(x, requires_grad=True)
    getattr(tF, op)(xt, *args, **kwargs)[0].sum().backward()
    assert xt.grad.sum().item() == idx.size


def test_regression_maxpool_ties_through_module():
    x = np.ones((1, 1, 4, 4))
    assert_accepted(check_module("MaxPool2d", (2,), {"stride": 1, "return_indices": True},
                                 [x]))
