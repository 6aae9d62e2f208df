"""Issue 12: facts from the Builders' Guide (both editions) and the 1.0 edition's CNN chapter
(convolutions, padding and strides, channels, pooling, LeNet), checked against PyTorch.

The book's cells were run with only the imports swapped (outside this repository); these tests
pin what they rely on: `d2l.corr2d`'s result dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as TF

import corrnet as cn
from corrnet import d2l

from torch_compare import assert_same


@pytest.mark.parametrize("dtype", ["int64", "float32", "float64"])
def test_issue12_book_d2l_corr2d_gives_the_default_dtype(dtype):
    # the d2l package's corr2d fills a `zeros` tensor: float32 whatever X's and K's dtype
    rng = np.random.default_rng(0)
    X = rng.integers(-5, 6, (5, 6)).astype(dtype)
    K = rng.integers(-3, 4, (2, 3)).astype(dtype)
    got = d2l.corr2d(cn.tensor(X), cn.tensor(K))
    expected = TF.conv2d(torch.tensor(X, dtype=torch.float64)[None, None],
                         torch.tensor(K, dtype=torch.float64)[None, None])[0, 0].float()
    assert_same(got, expected, f"d2l.corr2d of {dtype}")


def test_issue12_book_d2l_corr2d_is_differentiable_through_the_cast():
    X64 = np.random.default_rng(1).standard_normal((4, 4))
    K = np.array([[1.0, -1.0]])
    X = cn.tensor(X64, requires_grad=True)
    d2l.corr2d(X, cn.tensor(K)).sum().backward()
    Xt = torch.tensor(X64, requires_grad=True)
    TF.conv2d(Xt[None, None], torch.tensor(K)[None, None])[0, 0].float().sum().backward()
    assert_same(X.grad, Xt.grad, "d2l.corr2d's gradient")
