"""Datasets and batching under PyTorch's names: ``corrnet.utils.data`` is ``torch.utils.data``.

``Dataset``, ``IterableDataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``,
``ChainDataset``, ``random_split``, the samplers (``WeightedRandomSampler`` among them) and
``DataLoader``, with ``default_collate``. Loading happens in the calling process
(``num_workers`` is accepted and ignored).

Randomness. ``shuffle=True``, ``RandomSampler`` and ``random_split`` take ``generator=``:

- ``None``: corrnet's global generator, so ``corrnet.manual_seed(s)`` makes shuffles
  reproducible;
- an ``int``: a seed; the loader keeps its own generator made from it, so two loaders made
  with the same seed give the same sequence of epochs;
- a ``numpy.random.Generator`` (what corrnet's random functions take as ``generator=``).

Speed. A loader over a ``TensorDataset`` (or a ``Subset`` of one, or a dataset with a
``_get_batch(indices)`` method such as ``corrnet.datasets.FashionMNIST``) with the default
``collate_fn`` makes each batch with one fancy-index operation per tensor, instead of calling
``__getitem__`` once per sample and stacking the results.
"""

from __future__ import annotations

import bisect
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..tensor import Generator, Tensor, _rng, from_numpy, randint, randperm, stack

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "random_split",
]


# -- generators -------------------------------------------------------------------------------


def _resolve_generator(generator, where: str):
    """``None`` (corrnet's default generator, looked up at each draw), a corrnet or NumPy
    Generator (also looked up at each draw), or a NumPy Generator made from an int seed."""
    if generator is None or isinstance(generator, (Generator, np.random.Generator)):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(
        f"{where}: generator must be None (corrnet's default generator, seeded by "
        "corrnet.manual_seed), a corrnet.Generator, an int seed or a numpy.random.Generator, "
        "got "
        f"{type(generator).__name__}"
    )


def _permutation(n: int, generator) -> np.ndarray:
    return randperm(n, generator=generator).numpy()


# -- datasets ---------------------------------------------------------------------------------


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(index)`` and ``__len__()``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream of samples: subclasses define ``__iter__()``. A
    `DataLoader` batches the samples in the order the stream gives them (it takes no
    `sampler` and no `shuffle`); ``a + b`` chains two streams.

    >>> class Numbers(IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(5))
    >>> [b.tolist() for b in DataLoader(Numbers(), batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """The samples of several iterable datasets, one stream after another."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class TensorDataset(Dataset):
    """Samples are the ``i``-th rows of each tensor: ``dataset[i] == (t[i] for t in tensors)``.

    All tensors must have the same size in dimension 0. NumPy arrays are accepted and shared
    (``from_numpy``).
    """

    def __init__(self, *tensors):
        converted = []
        for i, t in enumerate(tensors):
            if isinstance(t, np.ndarray):
                t = from_numpy(t)
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"TensorDataset: argument {i} must be a Tensor, got {type(t).__name__}"
                )
            if t.dim() == 0:
                raise ValueError(
                    f"TensorDataset: argument {i} is a 0-d tensor; each tensor needs a first "
                    "dimension that indexes the samples"
                )
            converted.append(t)
        sizes = [t.shape[0] for t in converted]
        if len(set(sizes)) > 1:
            raise ValueError(
                "TensorDataset: size mismatch between tensors: all must have the same size in "
                f"dimension 0, got sizes {sizes}"
            )
        self.tensors = tuple(converted)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors else 0

    def _get_batch(self, indices: np.ndarray):
        return [t[indices] for t in self.tensors]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)

    def _get_batch(self, indices: np.ndarray):
        get_batch = getattr(self.dataset, "_get_batch", None)
        if get_batch is None:
            return NotImplemented
        own = self.indices.numpy() if isinstance(self.indices, Tensor) else self.indices
        cached = getattr(self, "_index_array", None)
        if cached is None or cached[0] is not own:  # made again if `indices` is replaced
            self._index_array = cached = (own, np.asarray(own, dtype=np.int64))
        return get_batch(cached[1][indices])


class ConcatDataset(Dataset):
    """The samples of several datasets one after another."""

    def __init__(self, datasets):
        try:
            self.datasets = list(datasets)
        except TypeError:
            raise TypeError(f"ConcatDataset: datasets must be an iterable of datasets, not "
                            f"{type(datasets).__name__}") from None
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(f"ConcatDataset does not support IterableDataset (datasets[{i}] "
                                f"is a {type(d).__name__}); chain iterable datasets with "
                                "ChainDataset")
            if not hasattr(d, "__len__") or not hasattr(d, "__getitem__"):
                raise TypeError(f"ConcatDataset: datasets[{i}] is a {type(d).__name__}, not a "
                                "dataset with a length")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        n = len(self)
        if index < -n:
            raise ValueError(f"absolute value of index should not exceed dataset length "
                             f"(ConcatDataset: index {index}, length {n})")
        if index >= n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        index %= n
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split `dataset` into non-overlapping random subsets of the given lengths.

    `lengths` are counts summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder of flooring is handed out one by one from the first subset, as PyTorch does).
    """
    n = len(dataset)
    try:
        lengths = list(lengths)
    except TypeError:
        raise TypeError(f"random_split: lengths must be a sequence of ints or fractions, not "
                        f"{type(lengths).__name__}") from None
    if lengths and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for frac in lengths:
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction {frac} is not between 0 and 1")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an "
                              "empty dataset.", UserWarning, stacklevel=2)
        lengths = counts
    for length in lengths:
        if not isinstance(length, numbers.Integral) or length < 0:
            raise ValueError(f"random_split: lengths must be non-negative ints (or fractions "
                             f"summing to 1), got {length!r} in {list(lengths)}")
    if sum(lengths) != n:
        raise ValueError(
            f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length "
            f"of the input dataset ({n})"
        )
    order = _permutation(n, _resolve_generator(generator, "random_split"))
    bounds = np.cumsum([0, *lengths]).tolist()
    return [Subset(dataset, order[a:b].tolist())
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# -- samplers ---------------------------------------------------------------------------------


class Sampler:
    """An iterable of dataset indices."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """Indices 0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def _order(self) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random permutation of the indices at every iteration (or draws with
    replacement); see the module docstring for `generator`."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = bool(replacement)
        self._num_samples = num_samples
        self.generator = _resolve_generator(generator, "RandomSampler")
        if num_samples is not None and (
            not isinstance(num_samples, numbers.Integral) or num_samples <= 0
        ):
            raise ValueError(
                "RandomSampler: num_samples should be a positive integer value, but got "
                f"num_samples={num_samples}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def _order(self) -> np.ndarray:
        n, k = len(self.data_source), self.num_samples
        if self.replacement:
            return randint(0, n, (k,), generator=self.generator).numpy()
        if k <= n:
            return _permutation(n, self.generator)[:k]
        reps = -(-k // n)
        return np.concatenate([_permutation(n, self.generator) for _ in range(reps)])[:k]

    def __iter__(self):
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return self.num_samples


class WeightedRandomSampler(Sampler):
    """`num_samples` indices drawn with probability proportional to `weights` (1-d, not
    necessarily summing to 1), with or without `replacement`; a fresh draw at every
    iteration. See the module docstring for `generator`.

    >>> sampler = WeightedRandomSampler([0.1, 0.9], num_samples=4)
    >>> loader = DataLoader(dataset, batch_size=2, sampler=sampler)
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if (not isinstance(num_samples, numbers.Integral) or isinstance(num_samples, bool)
                or num_samples <= 0):
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        if isinstance(weights, (str, bytes)):
            raise TypeError(f"WeightedRandomSampler: weights must be a sequence of numbers, "
                            f"not {type(weights).__name__}")
        try:
            array = np.asarray(weights.numpy() if isinstance(weights, Tensor) else weights,
                               dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"WeightedRandomSampler: weights must be a sequence of numbers, "
                            f"got {weights!r}") from None
        if array.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(array.shape)}")
        self.weights = from_numpy(array)
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = _resolve_generator(generator, "WeightedRandomSampler")

    def _order(self) -> np.ndarray:
        weights = self.weights.numpy()
        if np.any(weights < 0) or np.any(np.isnan(weights)) or np.any(np.isinf(weights)):
            raise RuntimeError("invalid multinomial distribution (encountering probability "
                               "entry < 0)")
        total = weights.sum()
        if not total > 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if not self.replacement:
            if self.num_samples > len(weights):
                raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples "
                                   f"without replacement ({self.num_samples} from "
                                   f"{len(weights)} weights)")
            if self.num_samples > np.count_nonzero(weights):
                raise RuntimeError("invalid multinomial distribution (with replacement=False, "
                                   "not enough non-negative category to sample)")
        rng = _rng(self.generator)
        return rng.choice(len(weights), size=self.num_samples, replace=self.replacement,
                          p=weights / total).astype(np.int64)

    def __iter__(self):
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedSampler(Sampler):
    """The share of `dataset`'s indices that one rank of a data-parallel run loads, as
    ``torch.utils.data.DistributedSampler``: the indices (shuffled with a generator seeded
    ``seed + epoch`` when `shuffle`, the same on every rank) are padded by repeating them from
    the start until they divide evenly (or cut, with `drop_last`), and rank r takes every
    `num_replicas`-th from position r. `num_replicas` and `rank` default to the process
    group's (`corrnet.distributed`). Call ``set_epoch(epoch)`` before each epoch, or every
    epoch sees the same order. (corrnet's generator is not PyTorch's: a shuffled order differs
    from PyTorch's for the same seed; the unshuffled assignment is the same.)

    >>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
    [1, 3, 0]
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed

            if not distributed.is_available():
                raise RuntimeError("DistributedSampler: requires the distributed package (pip "
                                   "install 'corrnet[mpi]'), or pass num_replicas and rank")
            if num_replicas is None:
                num_replicas = distributed.get_world_size()
            if rank is None:
                rank = distributed.get_rank()
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, numbers.Integral) \
                or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got "
                             f"{num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or \
                not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, "
                             f"{num_replicas - 1}] (num_replicas={num_replicas})")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch = 0
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            generator = Generator().manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=generator).numpy()
        else:
            indices = np.arange(n, dtype=np.int64)
        if self.drop_last:
            indices = indices[:self.total_size]
        elif self.total_size > n:  # pad by repeating the indices from the start
            indices = np.concatenate([indices] * math.ceil(self.total_size / n))[
                :self.total_size]
        return indices[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffle of `epoch` from the next iteration on (the same on every rank)."""
        self.epoch = int(epoch)


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size`."""

    def __init__(self, sampler, batch_size, drop_last):
        if (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                or batch_size <= 0):
            raise ValueError(
                "batch_size should be a positive integer value, but got "
                f"batch_size={batch_size!r}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(
                f"drop_last should be a boolean value, but got drop_last={drop_last!r}"
            )
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def _index_arrays(self):
        """The batches as int64 arrays (vectorized for the built-in samplers)."""
        order_fn = getattr(self.sampler, "_order", None)
        if order_fn is not None:
            order = order_fn()
        else:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        n, size = len(order), self.batch_size
        stop = n - n % size if self.drop_last else n
        for start in range(0, stop, size):
            yield order[start:start + size]

    def __iter__(self):
        for batch in self._index_arrays():
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# -- collation --------------------------------------------------------------------------------


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch):
    """Combine a list of samples into a batch, field by field, as PyTorch does.

    Tensors are stacked; NumPy arrays and scalars become tensors of their dtype; Python ints
    int64, floats float64, bools bool; strings stay a list; dicts, named tuples and sequences
    are collated per field (tuples and lists give a list).
    """
    if not batch:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "SUOV":
            raise TypeError(
                "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                f"lists; found a numpy array of {elem.dtype}"
            )
        return from_numpy(np.stack(batch))
    if isinstance(elem, np.generic) and elem.dtype.kind in "biuf":
        return from_numpy(np.array(batch))
    if isinstance(elem, bool):
        return from_numpy(np.array(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return from_numpy(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return from_numpy(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch, strict=True)))
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(field)) for field in zip(*batch, strict=True)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}"
    )


def default_convert(data):
    """What a loader with ``batch_size=None`` yields: NumPy arrays become tensors."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        return from_numpy(data)
    if isinstance(data, Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data


# -- loader -----------------------------------------------------------------------------------


class DataLoader:
    """Iterates over `dataset` in batches.

    ``DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, generator=None,
    collate_fn=None)``, plus PyTorch's ``sampler`` and ``batch_sampler``. ``len(loader)`` is
    the number of batches. ``num_workers`` and the other worker options are accepted for
    compatibility and ignored: batches are made in the calling process.

    ``pin_memory=True`` puts each batch's tensors in page-locked host memory where CUDA is
    available (``Tensor.pin_memory``), for faster copies when the loop moves them with
    ``.to(device, non_blocking=True)``; without CUDA it warns as PyTorch's and changes
    nothing. Batches stay on the host either way.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True):
        if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler),
                                ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                     f"{name} option, but got {name}={value!r}")
        elif not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(
                "DataLoader: dataset must define __getitem__ and __len__, got "
                f"{type(dataset).__name__}"
            )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with "
                "drop_last"
            )
        self.generator = _resolve_generator(generator, "DataLoader")
        if self._iterable:  # the stream decides the order (PyTorch has a placeholder too)
            sampler = _StreamSampler()
        elif sampler is None:
            if shuffle:
                sampler = RandomSampler(dataset, generator=self.generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._auto_collation = batch_sampler is not None
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    def _index_batches(self):
        if isinstance(self.batch_sampler, BatchSampler):
            return self.batch_sampler._index_arrays()
        return iter(self.batch_sampler)

    def _iter_stream(self):
        """Batches of an IterableDataset, in the order of its stream."""
        if not self._auto_collation:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __iter__(self):
        batches = self._batches()
        if not self.pin_memory:
            return batches
        from .. import devices

        if not devices.is_available():
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, "
                          "then device pinned memory won't be used.", UserWarning, stacklevel=2)
            return batches
        return (_pin(batch) for batch in batches)

    def _batches(self):
        dataset, collate = self.dataset, self.collate_fn
        if self._iterable:
            yield from self._iter_stream()
            return
        if not self._auto_collation:
            for index in self.sampler:
                yield collate(dataset[index])
            return
        get_batch = getattr(dataset, "_get_batch", None) if collate is default_collate else None
        for indices in self._index_batches():
            if get_batch is not None:
                batch = get_batch(np.asarray(indices, dtype=np.int64))
                if batch is not NotImplemented:
                    yield batch
                    continue
                get_batch = None
            if isinstance(indices, np.ndarray):
                indices = indices.tolist()
            yield collate([dataset[i] for i in indices])

    def __len__(self) -> int:
        if self._iterable:  # the stream's length, if it has one, in batches
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self._auto_collation:
            return len(self.batch_sampler)
        return len(self.sampler)


def _pin(batch):
    """`batch` with each of its tensors pinned (through tuples, lists and dicts)."""
    if isinstance(batch, Tensor):
        return batch.pin_memory()
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a named tuple
        return type(batch)(*(_pin(item) for item in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_pin(item) for item in batch)
    if isinstance(batch, dict):
        return type(batch)((key, _pin(value)) for key, value in batch.items())
    return batch


class _StreamSampler(Sampler):
    """The sampler of a loader over an IterableDataset: the stream decides the order."""

    def __iter__(self):
        raise TypeError("a DataLoader over an IterableDataset has no sampler to iterate: "
                        "iterate the loader itself")
