"""Issue 13: the convolution's bias gradient (conv.conv2d_grad_bias), summed per channel by a
compiled kernel in float64 (`_channel_sums_kernel`), against float64 sums and PyTorch's bias
gradient, over shapes (empty ones too), dtypes, layouts and both kernel paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from corrnet.kernels import conv, jit

PATHS = [True, False] if jit.AVAILABLE else [False]


@settings(max_examples=80, deadline=None)
@given(shape=st.tuples(st.integers(0, 5), st.integers(1, 9), st.integers(0, 7),
                       st.integers(0, 7)),
       dtype=st.sampled_from([np.float32, np.float64]), layout=st.sampled_from(
           ["contiguous", "channels_last", "sliced"]), compiled=st.sampled_from(PATHS),
       seed=st.integers(0, 99))
def test_issue13_bias_gradient_is_the_sum_over_images_and_pixels(shape, dtype, layout,
                                                                  compiled, seed):
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    if layout == "channels_last":
        grad = np.ascontiguousarray(
            rng.standard_normal((n, h, w, c)).astype(dtype)).transpose(0, 3, 1, 2)
    elif layout == "sliced":
        grad = rng.standard_normal((n, c, h, w + 3)).astype(dtype)[..., 1:w + 1]
    else:
        grad = rng.standard_normal(shape).astype(dtype)
    with jit.use_compiled(compiled):
        got = conv.conv2d_grad_bias(grad)
    expected = grad.astype(np.float64).sum(axis=(0, 2, 3))
    scale = np.abs(grad).astype(np.float64).sum(axis=(0, 2, 3))
    assert got.dtype == dtype and got.shape == (c,)
    eps = 4e-7 if dtype == np.float32 else 1e-15
    assert np.all(np.abs(got - expected) <= eps * (scale + 1))


@pytest.mark.parametrize("compiled", PATHS)
def test_issue13_bias_gradient_of_a_layer_matches_torch(compiled):
    """A ResNet-sized output gradient through conv2d's backward, against PyTorch's."""
    import corrnet as ct

    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 16, 24, 24)).astype(np.float32)
    weight = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(32).astype(np.float32)
    upstream = rng.standard_normal((8, 32, 24, 24)).astype(np.float32)
    results = []
    for library in (ct, torch):
        tensors = [library.tensor(a, requires_grad=True) for a in (x, weight, bias)]
        functional = ct.nn.functional if library is ct else torch.nn.functional
        with jit.use_compiled(compiled) if library is ct else np.errstate():
            out = functional.conv2d(*tensors, padding=1)
            out.backward(library.tensor(upstream))
        results.append(tensors[2].grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-3)
