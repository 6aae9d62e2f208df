"""Issue 12's data API against torch.utils.data: IterableDataset (and ChainDataset) through
DataLoader, ConcatDataset, WeightedRandomSampler and random_split. Random draws cannot equal
PyTorch's (different generators), so samplers are checked by their errors, lengths, support
and frequencies, and splits by their sizes and by covering the dataset exactly once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.utils.data as tdata

import corrnet as cn
from corrnet.utils import data as cdata


def _stream(lib, n=7, pairs=False):
    class Numbers(lib.IterableDataset):
        def __iter__(self):
            for i in range(n):
                yield (i, float(i) / 2) if pairs else i
    return Numbers()


def _sized_stream(lib, n=7):
    class Sized(lib.IterableDataset):
        def __iter__(self):
            return iter(range(n))

        def __len__(self):
            return n
    return Sized()


def _as_lists(batches):
    return [b.tolist() if hasattr(b, "tolist") else
            [x.tolist() if hasattr(x, "tolist") else x for x in b] if isinstance(b, list) else b
            for b in batches]


@pytest.mark.parametrize("kwargs", [dict(), dict(batch_size=3), dict(batch_size=3,
                                    drop_last=True), dict(batch_size=None),
                                    dict(batch_size=7), dict(batch_size=10, drop_last=True)])
@pytest.mark.parametrize("pairs", [False, True])
def test_issue12_iterable_dataset_batches_match_torch(kwargs, pairs):
    cbatches = list(cdata.DataLoader(_stream(cdata, pairs=pairs), **kwargs))
    tbatches = list(tdata.DataLoader(_stream(tdata, pairs=pairs), **kwargs))
    assert _as_lists(cbatches) == _as_lists(tbatches)
    for c, t in zip(cbatches, tbatches, strict=True):
        for c_item, t_item in zip(c if isinstance(c, list) else [c],
                                  t if isinstance(t, list) else [t], strict=True):
            if isinstance(t_item, torch.Tensor):
                assert str(c_item.dtype) == str(t_item.dtype)


@pytest.mark.parametrize("kwargs", [dict(batch_size=3), dict(batch_size=3, drop_last=True),
                                    dict(batch_size=None), dict(batch_size=2)])
def test_issue12_iterable_dataset_len_matches_torch(kwargs):
    assert len(cdata.DataLoader(_sized_stream(cdata), **kwargs)) == len(
        tdata.DataLoader(_sized_stream(tdata), **kwargs))
    with pytest.raises(TypeError):
        len(tdata.DataLoader(_stream(tdata), **kwargs))
    with pytest.raises(TypeError):
        len(cdata.DataLoader(_stream(cdata), **kwargs))


@pytest.mark.parametrize("name, value", [("shuffle", True), ("sampler", [0, 1]),
                                         ("batch_sampler", [[0, 1]])])
def test_issue12_iterable_dataset_refuses_sampling_options(name, value):
    for lib in (tdata, cdata):
        with pytest.raises(ValueError, match=f"expected unspecified {name} option"):
            lib.DataLoader(_stream(lib), **{name: value})
    assert list(cdata.DataLoader(_stream(cdata), shuffle=False, batch_size=None))[:2] == [0, 1]


def test_issue12_chain_dataset():
    for lib in (tdata, cdata):
        chained = _stream(lib, 3) + _sized_stream(lib, 2)
        assert isinstance(chained, lib.ChainDataset)
        assert list(chained) == [0, 1, 2, 0, 1]
        assert len(lib.ChainDataset([_sized_stream(lib, 2), _sized_stream(lib, 3)])) == 5
    with pytest.raises(TypeError, match="IterableDataset"):
        list(cdata.ChainDataset([range(3)]))


def test_issue12_concat_dataset_matches_torch():
    parts = [range(3), range(10, 14), range(20, 21)]
    cconcat, tconcat = cdata.ConcatDataset(parts), tdata.ConcatDataset(parts)
    assert cconcat.cumulative_sizes == tconcat.cumulative_sizes == [3, 7, 8]
    assert len(cconcat) == len(tconcat) == 8
    for i in range(-8, 8):
        assert cconcat[i] == tconcat[i]
    for index, error in ((-9, ValueError), (8, IndexError)):
        for concat in (cconcat, tconcat):
            with pytest.raises(error):
                concat[index]
    with pytest.raises(TypeError, match="does not support IterableDataset"):
        cdata.ConcatDataset([range(2), _stream(cdata)])
    data = cdata.TensorDataset(cn.arange(4.0)) + cdata.TensorDataset(cn.arange(10.0, 12.0))
    assert [b[0].tolist() for b in cdata.DataLoader(data, batch_size=4)] == [
        [0.0, 1.0, 2.0, 3.0], [10.0, 11.0]]


# -- WeightedRandomSampler ----------------------------------------------------------------------


@pytest.mark.parametrize("args, kwargs, error, match", [
    (([[1.0, 2.0]], 3), {}, ValueError, "1d sequence"),
    (([1.0, 2.0], 0), {}, ValueError, "num_samples"),
    (([1.0, 2.0], 2.5), {}, ValueError, "num_samples"),
    (([1.0, 2.0], 3), dict(replacement=1), ValueError, "replacement"),
])
def test_issue12_weighted_sampler_construction_errors(args, kwargs, error, match):
    for lib in (tdata, cdata):
        with pytest.raises(error, match=match):
            lib.WeightedRandomSampler(*args, **kwargs)


@pytest.mark.parametrize("weights, num_samples, replacement, match", [
    ([1.0, 2.0], 3, False, "n_sample > prob_dist"),
    ([1.0, -2.0], 3, True, "probability entry < 0"),
    ([0.0, 0.0], 3, True, "sum of probabilities <= 0"),
])
def test_issue12_weighted_sampler_draw_errors(weights, num_samples, replacement, match):
    for lib in (tdata, cdata):
        sampler = lib.WeightedRandomSampler(weights, num_samples, replacement=replacement)
        with pytest.raises(RuntimeError, match=match):
            list(sampler)


def test_issue12_weighted_sampler_distribution():
    weights = [0.0, 1.0, 3.0, 6.0]
    csampler = cdata.WeightedRandomSampler(weights, 20000, generator=0)
    tsampler = tdata.WeightedRandomSampler(weights, 20000)
    assert len(csampler) == len(tsampler) == 20000
    assert str(csampler.weights.dtype) == str(tsampler.weights.dtype) == "torch.float64"
    draws = list(csampler)
    assert all(isinstance(i, int) for i in draws[:5])
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(frequencies, np.array(weights) / 10, atol=0.015)  # ~5 sigma
    # without replacement: distinct indices, the zero-weight one never drawn
    for _ in range(20):
        once = list(cdata.WeightedRandomSampler(weights, 3, replacement=False))
        assert sorted(once) == [1, 2, 3]
    with pytest.raises(RuntimeError, match="not enough"):
        list(cdata.WeightedRandomSampler(weights, 4, replacement=False))


def test_issue12_weighted_sampler_generators_and_loader():
    weights = cn.tensor([1.0, 2.0, 3.0])
    a = list(cdata.WeightedRandomSampler(weights, 12, generator=cn.Generator().manual_seed(5)))
    b = list(cdata.WeightedRandomSampler(weights, 12, generator=cn.Generator().manual_seed(5)))
    assert a == b
    cn.manual_seed(3)
    c = list(cdata.WeightedRandomSampler(weights, 12))
    cn.manual_seed(3)
    assert list(cdata.WeightedRandomSampler(weights, 12)) == c
    dataset = cdata.TensorDataset(cn.arange(30.0, 33.0))
    loader = cdata.DataLoader(dataset, batch_size=4,
                              sampler=cdata.WeightedRandomSampler(weights, 10, generator=1))
    batches = [b[0].tolist() for b in loader]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert set(sum(batches, [])) <= {30.0, 31.0, 32.0}


# -- random_split ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n, lengths", [(10, [3, 7]), (10, [0.3, 0.3, 0.4]),
                                        (10, [0.33, 0.33, 0.34]), (7, [0.5, 0.5]),
                                        (5, [1.0]), (4, [0.25, 0.75])])
def test_issue12_random_split_sizes_match_torch(n, lengths):
    csplits = cdata.random_split(range(n), lengths, generator=cn.Generator().manual_seed(0))
    tsplits = tdata.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in csplits] == [len(s) for s in tsplits]
    assert all(isinstance(s, cdata.Subset) for s in csplits)
    assert sorted(i for s in csplits for i in s) == list(range(n))


@pytest.mark.parametrize("lengths", [[3, 3], [0.5, 0.6], [11]])
def test_issue12_random_split_errors_match_torch(lengths):
    with pytest.raises(ValueError):
        tdata.random_split(range(10), lengths)
    with pytest.raises(ValueError):
        cdata.random_split(range(10), lengths)


def test_issue12_random_split_refuses_negative_and_fractional_lengths():
    """PyTorch splits [-1, 11] into odd subsets and fails inside randperm for [2.5, 7.5];
    corrnet says what is wrong."""
    for lengths in ([-1, 11], [2.5, 7.5]):
        with pytest.raises(ValueError, match="non-negative ints"):
            cdata.random_split(range(10), lengths)


def test_issue12_random_split_warns_of_empty_splits_as_torch():
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        tdata.random_split(range(3), [0.1, 0.1, 0.8])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        cdata.random_split(range(3), [0.1, 0.1, 0.8])


def test_issue12_random_split_generator_reproducible():
    first = cdata.random_split(range(20), [5, 15], generator=cn.Generator().manual_seed(9))
    again = cdata.random_split(range(20), [5, 15], generator=cn.Generator().manual_seed(9))
    assert [list(s) for s in first] == [list(s) for s in again]
