"""Bad input gets a clear error: the right exception family, naming the argument and the shape.

Every test checks the exception type (RuntimeError or ValueError, as PyTorch raises
RuntimeError for most of these) AND that the message names the offending argument and
contains the offending shape / value.  Shapes are accepted in any common spelling:
``(1, 3, 5, 5)``, ``[1, 3, 5, 5]``, ``1 x 3 x 5 x 5`` or ``1x3x5x5``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import corrnet as torch
from corrnet import nn
from corrnet.nn import functional as F

ERRORS = (ValueError, RuntimeError)


def shape_pattern(shape) -> str:
    """Regex matching ``shape`` as a run of integers separated by ',', 'x' or '×'."""
    nums = [re.escape(str(int(n))) for n in shape]
    if len(nums) == 1:  # a bare number is too common: require brackets for 1-D shapes
        return r"[\(\[]\s*" + nums[0] + r"\s*,?\s*[\)\]]"
    sep = r"\s*(?:,|x|×|\*)\s*"
    return r"(?<![\d.\-])" + sep.join(nums) + r"(?![\d.])"


def value_pattern(value: int) -> str:
    return r"(?<![\d.\-])" + re.escape(str(value)) + r"(?![\d.])"


def assert_clear(excinfo, names=(), shapes=(), values=()):
    """Message names each of ``names`` (str, or tuple of alternatives; case-insensitive),
    contains each shape of ``shapes`` (a shape, or a list of alternative shapes) and each
    integer of ``values``."""
    msg = str(excinfo.value)
    low = msg.lower()
    for name in names:
        alts = (name,) if isinstance(name, str) else tuple(name)
        assert any(a.lower() in low for a in alts), (
            f"message does not name {' or '.join(map(repr, alts))}: {msg!r}")
    for shape in shapes:
        alts = shape if isinstance(shape, list) else [shape]
        assert any(re.search(shape_pattern(s), msg) for s in alts), (
            f"message does not contain shape {' or '.join(map(str, alts))}: {msg!r}")
    for v in values:
        assert re.search(value_pattern(v), msg), f"message does not contain {v}: {msg!r}"


def t(*shape, dtype=np.float32):
    return torch.tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))


def test_patterns_self_check():
    assert re.search(shape_pattern((1, 3, 5, 5)), "got input of size: [1, 3, 5, 5]")
    assert re.search(shape_pattern((1, 3, 5, 5)), "input (1, 3, 5, 5) is bad")
    assert re.search(shape_pattern((2, 3)), "shapes cannot be multiplied (2x3 and 4x5)")
    assert not re.search(shape_pattern((1, 3, 5, 5)), "input (11, 3, 5, 5)")
    assert re.search(shape_pattern((4,)), "tensor of shape (4,)")
    assert re.search(shape_pattern((4,)), "tensor of shape [4]")
    assert not re.search(value_pattern(1), "got -1")
    assert re.search(value_pattern(-1), "got -1")


# ----------------------------------------------------------------------- conv2d: rank
@pytest.mark.parametrize("x_shape", [(5, 5), (1, 1, 1, 5, 5), (7,)])
def test_conv2d_input_wrong_rank(x_shape):
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(*x_shape), t(1, 1, 2, 2))
    assert_clear(excinfo, names=["input"], shapes=[x_shape])


@pytest.mark.parametrize("w_shape", [(1, 3, 2), (1, 3, 2, 2, 2), (3, 2)])
def test_conv2d_weight_not_4d(w_shape):
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 3, 5, 5), t(*w_shape))
    assert_clear(excinfo, names=["weight"], shapes=[w_shape])


# ------------------------------------------------------------------ conv2d: channels
def test_conv2d_channel_mismatch():
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 4, 5, 5), t(2, 3, 3, 3))
    assert_clear(excinfo, names=["input", "weight", "channel"],
                 shapes=[(1, 4, 5, 5), (2, 3, 3, 3)])


def test_conv2d_channel_mismatch_unbatched():
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(2, 5, 5), t(2, 3, 3, 3))
    assert_clear(excinfo, names=["input", "weight"], shapes=[[(2, 5, 5), (1, 2, 5, 5)]])


def test_conv2d_groups_do_not_divide_input_channels():
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 3, 5, 5), t(4, 1, 3, 3), groups=2)
    assert_clear(excinfo, names=["groups"], shapes=[(1, 3, 5, 5)])


def test_conv2d_groups_do_not_divide_output_channels():
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 4, 5, 5), t(3, 2, 3, 3), groups=2)
    assert_clear(excinfo, names=["groups"], shapes=[(3, 2, 3, 3)])


def test_conv2d_bias_wrong_shape():
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 2, 5, 5), t(4, 2, 3, 3), t(3))
    assert_clear(excinfo, names=["bias"], shapes=[(3,)])


# ---------------------------------------------------------- conv2d: window vs input
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, input_alts",
    [
        ((1, 1, 4, 4), (1, 1, 5, 5), {}, [(4, 4)]),
        ((1, 1, 2, 2), (1, 1, 5, 5), {"padding": 1}, [(2, 2), (4, 4)]),
        ((1, 1, 4, 6), (1, 1, 3, 3), {"dilation": 3}, [(4, 6)]),
        ((2, 3, 3), (1, 2, 4, 2), {}, [(3, 3)]),  # unbatched
    ],
)
def test_conv2d_kernel_larger_than_padded_input(x_shape, w_shape, kwargs, input_alts):
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(*x_shape), t(*w_shape), **kwargs)
    assert_clear(excinfo, names=[("kernel", "weight")], shapes=[input_alts])


# ------------------------------------------------------- conv2d: stride/padding/...
@pytest.mark.parametrize("stride, bad", [(0, 0), ((1, 0), 0), (-1, -1), ((2, -2), -2)])
def test_conv2d_non_positive_stride(stride, bad):
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=stride)
    assert_clear(excinfo, names=["stride"], values=[bad])


@pytest.mark.parametrize("padding, bad", [(-1, -1), ((0, -2), -2)])
def test_conv2d_negative_padding(padding, bad):
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding=padding)
    assert_clear(excinfo, names=["padding"], values=[bad])


def test_conv2d_non_positive_dilation():
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), dilation=0)
    assert_clear(excinfo, names=["dilation"], values=[0])


def test_conv2d_non_positive_groups():
    with pytest.raises(ERRORS) as excinfo:
        F.conv2d(t(1, 2, 5, 5), t(2, 2, 3, 3), groups=0)
    assert_clear(excinfo, names=["groups"], values=[0])


def test_conv2d_module_reports_input_shape():
    conv = nn.Conv2d(3, 2, 3)
    with pytest.raises(ERRORS) as excinfo:
        conv(t(1, 1, 5, 5))
    assert_clear(excinfo, names=["input"], shapes=[(1, 1, 5, 5)])


# ---------------------------------------------------------------------------- pooling
POOLS = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d}


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("kernel, padding, bad", [(3, 2, 2), (2, 2, 2), ((3, 4), (1, 3), 3)])
def test_pool_padding_more_than_half_kernel(pool, kernel, padding, bad):
    with pytest.raises(ERRORS) as excinfo:
        POOLS[pool](t(1, 1, 8, 8), kernel, padding=padding)
    assert_clear(excinfo, names=["pad", "kernel"], values=[bad])


def test_max_pool_padding_more_than_half_raw_kernel_with_dilation():
    """torch also requires padding <= kernel_size / 2 on the undilated kernel size."""
    with pytest.raises(ERRORS) as excinfo:
        F.max_pool2d(t(1, 1, 8, 8), 3, padding=2, dilation=2)
    assert_clear(excinfo, names=["pad", "kernel"], values=[2, 3])


@pytest.mark.parametrize("pool", list(POOLS))
def test_pool_padding_more_than_half_kernel_module(pool):
    module = nn.MaxPool2d(3, padding=2) if pool == "max_pool2d" else nn.AvgPool2d(3, padding=2)
    with pytest.raises(ERRORS) as excinfo:
        module(t(1, 1, 8, 8))
    assert_clear(excinfo, names=["pad", "kernel"], values=[2, 3])


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("stride, bad", [(0, 0), ((1, -1), -1)])
def test_pool_non_positive_stride(pool, stride, bad):
    with pytest.raises(ERRORS) as excinfo:
        POOLS[pool](t(1, 1, 6, 6), 2, stride=stride)
    assert_clear(excinfo, names=["stride"], values=[bad])


@pytest.mark.parametrize("pool", list(POOLS))
def test_pool_negative_padding(pool):
    with pytest.raises(ERRORS) as excinfo:
        POOLS[pool](t(1, 1, 6, 6), 3, padding=-1)
    assert_clear(excinfo, names=["pad"], values=[-1])


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("kernel, bad", [(0, 0), ((2, -1), -1)])
def test_pool_non_positive_kernel(pool, kernel, bad):
    with pytest.raises(ERRORS) as excinfo:
        POOLS[pool](t(1, 1, 6, 6), kernel, stride=1)
    assert_clear(excinfo, names=["kernel"], values=[bad])


def test_max_pool_non_positive_dilation():
    with pytest.raises(ERRORS) as excinfo:
        F.max_pool2d(t(1, 1, 6, 6), 2, dilation=0)
    assert_clear(excinfo, names=["dilation"], values=[0])


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("x_shape", [(6, 6), (1, 1, 1, 6, 6)])
def test_pool_input_wrong_rank(pool, x_shape):
    with pytest.raises((*ERRORS, IndexError)) as excinfo:
        POOLS[pool](t(*x_shape), 2)
    assert_clear(excinfo, names=["input"], shapes=[x_shape])


@pytest.mark.parametrize("pool", list(POOLS))
def test_pool_kernel_larger_than_input(pool):
    with pytest.raises(ERRORS) as excinfo:
        POOLS[pool](t(1, 1, 2, 2), 3)
    assert_clear(excinfo, names=[("kernel", "input")], shapes=[(2, 2)])


def test_avg_pool_zero_divisor_override():
    with pytest.raises(ERRORS) as excinfo:
        F.avg_pool2d(t(1, 1, 4, 4), 2, divisor_override=0)
    assert_clear(excinfo, names=["divisor"])


# --------------------------------------------------------------------------- corr2d
def test_corr2d_kernel_larger_than_input():
    with pytest.raises(ERRORS) as excinfo:
        torch.corr2d(t(3, 3), t(4, 2))
    assert_clear(excinfo, shapes=[(3, 3), (4, 2)])


def test_corr2d_kernel_not_2d():
    with pytest.raises(ERRORS) as excinfo:
        torch.corr2d(t(3, 3), t(1, 2, 2))
    assert_clear(excinfo, names=["K"], shapes=[(1, 2, 2)])


def test_corr2d_image_not_2d():
    with pytest.raises(ERRORS) as excinfo:
        torch.corr2d(t(3), t(2, 2))
    assert_clear(excinfo, names=["X"], shapes=[(3,)])


# ---------------------------------------------------------------------- tensor ops
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_shapes_do_not_broadcast(op):
    a, b = t(2, 3), t(4, 5)
    fn = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
          "div": lambda: a / b}[op]
    with pytest.raises(ERRORS) as excinfo:
        fn()
    assert_clear(excinfo, names=[("broadcast", "match", "compatible")],
                 shapes=[(2, 3), (4, 5)])


@pytest.mark.parametrize("how", ["mm", "matmul", "@"])
def test_matmul_incompatible(how):
    a, b = t(2, 3), t(4, 5)
    fn = {"mm": lambda: torch.mm(a, b), "matmul": lambda: torch.matmul(a, b),
          "@": lambda: a @ b}[how]
    with pytest.raises(ERRORS) as excinfo:
        fn()
    assert_clear(excinfo, shapes=[(2, 3), (4, 5)])


def test_backward_on_non_scalar_without_gradient():
    x = torch.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    with pytest.raises(ERRORS) as excinfo:
        y.backward()
    assert_clear(excinfo, names=[("scalar", "grad")], shapes=[(2, 3)])


def test_backward_gradient_of_wrong_shape():
    x = torch.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    with pytest.raises(ERRORS) as excinfo:
        y.backward(torch.tensor(np.ones((3, 2))))
    assert_clear(excinfo, names=["grad"], shapes=[(2, 3), (3, 2)])


def test_cat_mismatched_shapes():
    with pytest.raises(ERRORS) as excinfo:
        torch.cat([t(2, 3), t(2, 4)], dim=0)
    assert_clear(excinfo, shapes=[[(2, 3), (2, 4)]])


def test_reshape_wrong_number_of_elements():
    with pytest.raises(ERRORS) as excinfo:
        t(2, 3).reshape(4, 2)
    assert_clear(excinfo, shapes=[(4, 2)], values=[6])


def test_tensor_from_ragged_nested_list():
    with pytest.raises(ValueError, match=r"tensor\(\).*different lengths"):
        torch.tensor([[1, 2], [3]])


@pytest.mark.parametrize("data", [["a", "b"], [None, 1.0]])
def test_tensor_from_non_numbers(data):
    with pytest.raises(TypeError, match=r"tensor\(\): data must hold numbers or bools"):
        torch.tensor(data)


def test_empty_convolution_with_an_unindexable_output_is_a_clear_error():
    """No input channels and padding 2**31: the output is empty, but NumPy cannot make an
    array of shape (1, 0, 1431655765, 4294967296) (PyTorch can): a RuntimeError naming the
    shape, not NumPy's "array is too big" ValueError (fuzz, seed 20261209)."""
    with pytest.raises(RuntimeError) as excinfo:
        F.conv2d(torch.zeros(1, 0, 3, 2), torch.zeros(2, 0, 3, 2), stride=(3, 1),
                 padding=2147483648, dilation=(3, 2))
    assert_clear(excinfo, names=("convolution", "padding"),
                 shapes=[(1, 0, 1431655765, 4294967296)])
