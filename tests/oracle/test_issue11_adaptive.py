"""Adaptive pooling's output_size at its extremes, against PyTorch (issue 11, found by the fuzz
suite): an output_size of 0 along an axis computes an empty output whose backward PyTorch
refuses; a size beyond int64 is a ValueError; an output larger than memory is refused before
anything is allocated (PyTorch's allocator fails; corrnet says which op and shape)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import corrnet as cn
from corrnet.nn import functional as cF

OPS = [("adaptive_avg_pool2d", (2, 3, 5, 5)), ("adaptive_max_pool2d", (2, 3, 5, 5)),
       ("adaptive_avg_pool1d", (2, 3, 5)), ("adaptive_max_pool1d", (2, 3, 5))]


def _outcome(lib_F, lib, name, shape, output_size):
    """('shape', output shape, backward's exception type or None) or ('raises', type)."""
    x = lib.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32),
                   requires_grad=True)
    try:
        out = getattr(lib_F, name)(x, output_size)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return ("raises", type(exc))
    try:
        out.sum().backward()
        backward = None
    except Exception as exc:  # noqa: BLE001
        backward = type(exc)
    return ("shape", tuple(out.shape), backward)


@pytest.mark.parametrize(("name", "shape"), OPS)
@pytest.mark.parametrize("size", ["zero", "zeros", "int64_overflow"])
def test_issue11_adaptive_pool_output_size_extremes_as_torch(name, shape, size):
    dims = len(shape) - 2
    output_size = {"zero": (5, 0)[-dims:] if dims == 2 else 0, "zeros": (0,) * dims,
                   "int64_overflow": 2**63}[size]
    assert (_outcome(cF, cn, name, shape, output_size)
            == _outcome(torch.nn.functional, torch, name, shape, output_size))


@pytest.mark.parametrize(("name", "shape"), OPS)
def test_issue11_adaptive_pool_output_beyond_memory_refused_clearly(name, shape):
    with pytest.raises(RuntimeError, match=rf"{name}: the output would have shape"):
        getattr(cF, name)(cn.randn(*shape), 10**12)


EMPTY_SHAPES = {2: [(0, 3, 5, 5), (2, 0, 5, 5), (0, 5, 5)], 1: [(0, 3, 5), (2, 0, 5), (0, 5)]}
POOLS = [("adaptive_avg_pool2d", 2, (2,)), ("adaptive_max_pool2d", 2, (2,)),
         ("adaptive_avg_pool1d", 1, (2,)), ("adaptive_max_pool1d", 1, (2,)),
         ("max_pool2d", 2, (2,)), ("max_pool1d", 1, (2,)), ("avg_pool2d", 2, (2,)),
         ("avg_pool1d", 1, (2,)),
         # an output of 1 (x 1): PyTorch's average pool takes the mean there, whose backward
         # passes a batch of no channels (fuzz, seed 20261221: corrnet refused it)
         ("adaptive_avg_pool2d", 2, (1,)), ("adaptive_avg_pool2d", 2, ((1, 2),)),
         ("adaptive_avg_pool2d", 2, ((1, None),)), ("adaptive_max_pool2d", 2, (1,)),
         ("adaptive_avg_pool1d", 1, (1,)), ("adaptive_max_pool1d", 1, (1,))]


@pytest.mark.parametrize(("name", "dims", "args"), POOLS)
@pytest.mark.parametrize("which", [0, 1, 2], ids=["empty-batch", "no-channels", "unbatched"])
def test_pools_of_empty_batches_and_channels_as_torch(name, dims, args, which):
    """An empty batch (or an unbatched input with no channels) is pooled, its backward too;
    a batch with no channels is refused by the max pools, as PyTorch (found by the fuzz
    suite: the adaptive max pool crashed in NumPy on all three)."""
    shape = EMPTY_SHAPES[dims][which]
    outcomes = [_outcome(lib_F, lib, name, shape, *args)
                for lib_F, lib in ((torch.nn.functional, torch), (cF, cn))]
    theirs, ours = outcomes
    assert ours[0] == theirs[0], (name, shape, outcomes)
    if theirs[0] == "raises":
        assert ours[1] is RuntimeError, (name, shape, outcomes)
    else:
        assert ours[1:] == theirs[1:], (name, shape, outcomes)


SIZE_FORMS = [3, [1], (1,), (None,), [1, 2], (2, None), (1, 2, 3), [], 2.0, "a", None]


@pytest.mark.parametrize(("name", "shape"), OPS)
@pytest.mark.parametrize("output_size", SIZE_FORMS, ids=repr)
def test_adaptive_pool_output_size_forms_as_torch(name, shape, output_size):
    """Which forms of output_size each adaptive pool takes, and the exception type of those it
    refuses (found by the fuzz suite: a 2-d pool took (1,) and [1], which PyTorch refuses)."""
    def outcome(lib_F, lib):
        x = lib.tensor(np.random.default_rng(1).standard_normal(shape))
        try:
            out = getattr(lib_F, name)(x, output_size)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc)
        return tuple(out.shape)

    assert outcome(cF, cn) == outcome(torch.nn.functional, torch)


@pytest.mark.parametrize("dtype", ["bool", "int64", "uint8", "float64"])
@pytest.mark.parametrize(("name", "dims"), [("adaptive_avg_pool2d", 2), ("adaptive_max_pool2d", 2),
                                            ("adaptive_avg_pool1d", 1), ("adaptive_max_pool1d", 1)])
@pytest.mark.parametrize(("shape", "output_size"), [
    ((2, 0, 1), 5), ((0, 3, 4), 2), ((2, 3, 4), 2), ((2, 3, 4), 0), ((3, 0), 2), ((0, 4), 2),
    ((0, 0, 4), 3)])
def test_adaptive_pools_of_other_dtypes_on_empty_inputs_as_torch(dtype, name, dims, shape,
                                                                 output_size):
    """Integer and bool inputs: the average pools return an empty output in the input's
    dtype where there is nothing to average (corrnet refused the dtype: found by the fuzz
    suite, seed 20261234), the max pools refuse the dtype, but check the sizes first, as
    PyTorch; the exception's type is compared."""
    shape = (*shape, 4) if dims == 2 else shape

    def outcome(lib_F, lib):
        try:
            out = getattr(lib_F, name)(lib.zeros(shape, dtype=getattr(lib, dtype)), output_size)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc)
        return tuple(out.shape), str(out.dtype)

    assert outcome(cF, cn) == outcome(torch.nn.functional, torch)
