"""corrnet.utils.data (Dataset, TensorDataset, DataLoader, ...) and corrnet.datasets.

DataLoader behaviour is compared with torch.utils.data.DataLoader. The IDX reader, the search
order and the download path run on small IDX files written here; the real Fashion-MNIST is
read from ../shared/data/fashion-mnist where that folder exists.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch

import corrnet as cn
from corrnet import datasets
from corrnet.utils import data

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist"
NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def assert_same(ours, theirs):
    """A corrnet tensor equals a torch tensor in shape, dtype and values."""
    assert isinstance(ours, cn.Tensor), type(ours)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def assert_same_batch(ours, theirs):
    if isinstance(theirs, torch.Tensor):
        assert_same(ours, theirs)
        return
    assert type(ours) is type(theirs)
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        for key in theirs:
            assert_same_batch(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert_same_batch(a, b)
    else:
        assert ours == theirs


# -- TensorDataset and DataLoader against PyTorch ---------------------------------------------


def _arrays(n=10):
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    y = (np.arange(n) % 3).astype(np.int64)
    return x, y


@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 11])
@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_dataset_loader_matches_torch(batch_size, drop_last):
    x, y = _arrays()
    ours = data.DataLoader(data.TensorDataset(cn.tensor(x), cn.tensor(y)), batch_size=batch_size,
                           drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=batch_size,
        drop_last=drop_last)
    assert len(ours) == len(theirs)
    ours_batches, theirs_batches = list(ours), list(theirs)
    assert len(ours_batches) == len(theirs_batches) == len(theirs)
    for a, b in zip(ours_batches, theirs_batches, strict=True):
        assert_same_batch(a, b)


def test_tensor_dataset_items_match_torch():
    x, y = _arrays()
    ours = data.TensorDataset(cn.tensor(x), cn.tensor(y))
    theirs = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    assert len(ours) == len(theirs) == 10
    for i in (0, 3, -1):
        assert isinstance(ours[i], tuple)
        for a, b in zip(ours[i], theirs[i], strict=True):
            assert_same(a, b)


def test_tensor_dataset_size_mismatch_names_sizes():
    with pytest.raises(ValueError, match=r"size mismatch.*\[3, 4\]"):
        data.TensorDataset(cn.zeros(3, 2), cn.zeros(4))
    with pytest.raises(TypeError, match="argument 1"):
        data.TensorDataset(cn.zeros(3), [1, 2, 3])


def test_tensor_dataset_accepts_numpy_arrays():
    x, y = _arrays()
    ds = data.TensorDataset(x, y)
    assert np.shares_memory(ds.tensors[0].numpy(), x)
    xb, yb = next(iter(data.DataLoader(ds, batch_size=4)))
    assert tuple(xb.shape) == (4, 2, 3) and yb.dtype == cn.int64


def test_tensor_dataset_batches_with_one_index_per_tensor(monkeypatch):
    """The fast path: no per-sample __getitem__ for a TensorDataset (or a Subset of one)."""
    x, y = _arrays(100)

    def forbidden(self, index):
        raise AssertionError("per-sample __getitem__ called")

    monkeypatch.setattr(data.TensorDataset, "__getitem__", forbidden)
    ds = data.TensorDataset(cn.tensor(x), cn.tensor(y))
    cn.manual_seed(0)
    seen = np.concatenate([yb.numpy() * 0 + xb.numpy()[:, 0, 0] // 6 for xb, yb in
                           data.DataLoader(ds, batch_size=32, shuffle=True)])
    assert sorted(seen.tolist()) == list(range(100))
    sub = data.Subset(ds, [5, 7, 9])
    xb, yb = next(iter(data.DataLoader(sub, batch_size=3)))
    np.testing.assert_array_equal(xb.numpy(), x[[5, 7, 9]])


def _epoch_order(loader):
    return np.concatenate([yb.numpy() for _, yb in loader]).tolist()


def test_shuffle_is_a_permutation_and_reproducible_with_a_seed():
    n = 50
    ds = data.TensorDataset(cn.zeros(n, 2), cn.arange(n))
    a = data.DataLoader(ds, batch_size=8, shuffle=True, generator=123)
    b = data.DataLoader(ds, batch_size=8, shuffle=True, generator=123)
    first, second = _epoch_order(a), _epoch_order(a)
    assert sorted(first) == list(range(n)) and sorted(second) == list(range(n))
    assert first != list(range(n))
    assert first != second  # every epoch draws a new order
    assert [first, second] == [_epoch_order(b), _epoch_order(b)]
    c = data.DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(123))
    assert _epoch_order(c) == first


def test_shuffle_follows_manual_seed():
    ds = data.TensorDataset(cn.arange(40))
    loader = data.DataLoader(ds, batch_size=6, shuffle=True)
    cn.manual_seed(7)
    first = [t.tolist() for (t,) in loader]
    cn.manual_seed(7)
    again = [t.tolist() for (t,) in loader]
    assert first == again
    assert sorted(sum(first, [])) == list(range(40))


def test_shuffle_drop_last():
    ds = data.TensorDataset(cn.arange(10))
    loader = data.DataLoader(ds, batch_size=4, shuffle=True, drop_last=True, generator=0)
    batches = [t.tolist() for (t,) in loader]
    assert len(loader) == len(batches) == 2
    assert all(len(b) == 4 for b in batches)
    assert len(set(sum(batches, []))) == 8


def test_generator_type_is_checked():
    ds = data.TensorDataset(cn.arange(4))
    with pytest.raises(TypeError, match="generator"):
        data.DataLoader(ds, shuffle=True, generator="seed")


def test_loader_argument_errors_match_torch():
    ds = data.TensorDataset(cn.arange(4))
    for kwargs in ({"batch_size": 0}, {"sampler": [0, 1], "shuffle": True},
                   {"batch_size": None, "drop_last": True}, {"num_workers": -1}):
        with pytest.raises(ValueError) as ours:
            data.DataLoader(ds, **kwargs)
        with pytest.raises(ValueError) as theirs:
            torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(4)),
                                        **kwargs)
        assert str(ours.value).split()[0] == str(theirs.value).split()[0]


class _ListDataset(data.Dataset):
    def __init__(self, items):
        self.items = items

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


class _TorchListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


Point = namedtuple("Point", ["x", "y"])


def _samples(kind, n=5):
    rng = np.random.default_rng(0)
    if kind == "tuple":
        return [(rng.random((1, 3)).astype(np.float32), i % 3) for i in range(n)]
    if kind == "numbers":
        return [(float(i) / 2, i, i % 2 == 0, np.uint8(i), np.float32(i)) for i in range(n)]
    if kind == "dict":
        return [{"a": rng.random(2), "b": [i, i + 1], "name": f"s{i}"} for i in range(n)]
    if kind == "namedtuple":
        return [Point(rng.random(2).astype(np.float32), i) for i in range(n)]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["tuple", "numbers", "dict", "namedtuple"])
def test_default_collate_matches_torch(kind):
    samples = _samples(kind)
    ours = list(data.DataLoader(_ListDataset(samples), batch_size=2))
    theirs = list(torch.utils.data.DataLoader(_TorchListDataset(samples), batch_size=2))
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        assert_same_batch(a, b)


def test_default_collate_stacks_tensors_and_tensor_samples_match_torch():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    ours = data.default_collate([(cn.tensor(r), cn.tensor(i)) for i, r in enumerate(x)])
    theirs = torch.utils.data.default_collate(
        [(torch.tensor(r), torch.tensor(i)) for i, r in enumerate(x)])
    assert_same_batch(ours, theirs)


def test_default_collate_refuses_unknown_types():
    with pytest.raises(TypeError, match="object"):
        data.default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="equal size"):
        data.default_collate([[1, 2], [1]])


def test_custom_collate_and_batch_size_none():
    samples = [(np.full(2, i, np.float32), i) for i in range(5)]
    loader = data.DataLoader(_ListDataset(samples), batch_size=2, collate_fn=lambda b: len(b))
    assert list(loader) == [2, 2, 1]
    unbatched = list(data.DataLoader(_ListDataset(samples), batch_size=None))
    assert len(unbatched) == 5
    x, label = unbatched[3]
    assert isinstance(x, cn.Tensor) and x.tolist() == [3.0, 3.0] and label == 3


def test_samplers_and_batch_sampler():
    ds = data.TensorDataset(cn.arange(7))
    batches = data.BatchSampler(data.SequentialSampler(ds), 3, drop_last=False)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6]] and len(batches) == 3
    loader = data.DataLoader(ds, batch_sampler=[[6, 0], [3]])
    assert [t.tolist() for (t,) in loader] == [[6, 0], [3]]
    loader = data.DataLoader(ds, batch_size=2, sampler=[4, 2, 1])
    assert [t.tolist() for (t,) in loader] == [[4, 2], [1]]
    rs = data.RandomSampler(ds, replacement=True, num_samples=20, generator=1)
    drawn = list(rs)
    assert len(drawn) == len(rs) == 20 and set(drawn) <= set(range(7))


def test_subset_concat_and_random_split():
    ds = data.TensorDataset(cn.arange(10) * 10)
    sub = data.Subset(ds, [9, 1])
    assert len(sub) == 2 and sub[0][0].item() == 90
    both = ds + sub
    assert isinstance(both, data.ConcatDataset) and len(both) == 12
    assert both[10][0].item() == 90 and both[-1][0].item() == 10
    parts = data.random_split(ds, [3, 7], generator=0)
    assert [len(p) for p in parts] == [3, 7]
    seen = sorted(int(p[i][0].item()) for p in parts for i in range(len(p)))
    assert seen == list(range(0, 100, 10))
    assert [len(p) for p in data.random_split(ds, [0.25, 0.75], generator=0)] == [3, 7]
    assert ([len(p) for p in data.random_split(range(10), [0.25, 0.75])]
            == [len(p) for p in torch.utils.data.random_split(range(10), [0.25, 0.75])])
    with pytest.raises(ValueError, match="sum of input lengths"):
        data.random_split(ds, [3, 3])


def test_utils_data_is_reachable_as_in_torch():
    assert cn.utils.data.DataLoader is data.DataLoader


# -- IDX files --------------------------------------------------------------------------------

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
          np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX by hand: 00 00 <type> <ndim>, big-endian uint32 sizes, big-endian values."""
    code = _CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype", list(_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype is np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    content = idx_bytes(array)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(content) if compress else content)
    back = datasets.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    magic = int.from_bytes(content[:4], "big")
    assert datasets.read_idx(path, expected_magic=magic).shape == (2, 3, 4)


def _bad(tmp_path, payload: bytes, name="train-labels-idx1-ubyte.gz", expected_magic=None):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(datasets.DataFileError) as err:
        datasets.read_idx(path, expected_magic)
    message = str(err.value)
    assert str(path) in message
    return message


def test_idx_errors_name_the_file_and_the_problem(tmp_path):
    labels = idx_bytes(np.arange(10, dtype=np.uint8))
    message = _bad(tmp_path, gzip.compress(b"PK\x03\x04 not an idx file"))
    assert "not an IDX file" in message
    assert "Delete this file" in message and "CORRNET_DATA" in message and "root=" in message
    assert "too few" in _bad(tmp_path, gzip.compress(b"\x00\x00"))
    assert "not an IDX file" in _bad(tmp_path, b"\x00\x00\x07\x01" + labels[4:])
    assert "truncated" in _bad(tmp_path, gzip.compress(labels[:-3]))
    assert "3 bytes follow" in _bad(tmp_path, gzip.compress(labels + b"abc"))
    assert "ends after" in _bad(tmp_path, gzip.compress(labels[:6]))
    message = _bad(tmp_path, gzip.compress(labels), expected_magic=2051)
    assert "2049" in message and "expected 2051" in message
    compressed = gzip.compress(labels * 50)
    assert "gzip data is truncated" in _bad(tmp_path, compressed[: len(compressed) // 2])
    broken = bytearray(compressed)
    broken[-6] ^= 0xFF  # the CRC-32/size trailer
    assert "corrupt" in _bad(tmp_path, bytes(broken))
    assert "follow the gzip data" in _bad(tmp_path, gzip.compress(labels) + b"junk")


def test_idx_error_for_other_files_has_a_generic_hint(tmp_path):
    message = _bad(tmp_path, b"\x01\x02\x03\x04", name="mine.idx")
    assert "Replace it" in message


# -- Fashion-MNIST on small files written here ------------------------------------------------


def _fake_split(n, rng):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Small Fashion-MNIST look-alikes in tmp_path/files (SHA256 table patched to them); the
    environment, cache, Debian folder and mirrors point inside tmp_path."""
    rng = np.random.default_rng(0)
    arrays = {}
    arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"] = \
        _fake_split(30, rng)
    arrays["t10k-images-idx3-ubyte.gz"], arrays["t10k-labels-idx1-ubyte.gz"] = \
        _fake_split(20, rng)
    files = tmp_path / "files"
    files.mkdir()
    digests = {}
    for name, array in arrays.items():
        content = idx_bytes(array)
        digests[name] = hashlib.sha256(content).hexdigest()
        (files / name).write_bytes(gzip.compress(content))
    monkeypatch.setattr(datasets, "SHA256", digests)
    monkeypatch.setattr(datasets, "SIZES", {name: len(idx_bytes(array))
                                            for name, array in arrays.items()})
    monkeypatch.setattr(datasets, "_verified", {})
    monkeypatch.delenv("CORRNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "DEBIAN_DIR", str(tmp_path / "debian"))
    monkeypatch.setattr(datasets, "MIRRORS", (files.as_uri() + "/",))

    class Fake:
        pass

    fake = Fake()
    fake.tmp, fake.files, fake.arrays = tmp_path, files, arrays
    return fake


def test_fashion_mnist_from_root(fake):
    ds = datasets.FashionMNIST(root=fake.files, train=True, download=False)
    images, labels = fake.arrays["train-images-idx3-ubyte.gz"], \
        fake.arrays["train-labels-idx1-ubyte.gz"]
    assert len(ds) == 30
    assert ds.data.dtype == cn.uint8 and tuple(ds.data.shape) == (30, 28, 28)
    assert ds.targets.dtype == cn.int64
    image, label = ds[4]
    assert image.dtype == cn.float32 and tuple(image.shape) == (1, 28, 28)
    np.testing.assert_array_equal(image.numpy()[0], images[4].astype(np.float32) / 255)
    assert label == int(labels[4]) and isinstance(label, int)
    assert ds[-1][1] == int(labels[-1])
    with pytest.raises(IndexError):
        ds[30]
    assert ds.classes == ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal",
                          "shirt", "sneaker", "bag", "ankle boot"]
    test = datasets.FashionMNIST(root=fake.files, train=False, download=False)
    assert len(test) == 20


def test_fashion_mnist_batches_equal_per_sample_collation(fake):
    ds = datasets.FashionMNIST(root=fake.files, download=False)
    fast = list(data.DataLoader(ds, batch_size=8))
    slow = list(data.DataLoader(ds, batch_size=8, collate_fn=data.default_collate))
    transformed = datasets.FashionMNIST(root=fake.files, download=False,
                                        transform=lambda x: x, target_transform=lambda y: y)
    via_transform = list(data.DataLoader(transformed, batch_size=8))
    assert len(fast) == len(slow) == len(via_transform) == 4
    for (xf, yf), (xs, ys), (xt, yt) in zip(fast, slow, via_transform, strict=True):
        assert tuple(xf.shape) == tuple(xs.shape) and xf.dtype == xs.dtype == cn.float32
        assert yf.dtype == ys.dtype == cn.int64
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(xf.numpy(), xt.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        np.testing.assert_array_equal(yf.numpy(), yt.numpy())


def test_fashion_mnist_resize(fake):
    same = datasets.FashionMNIST(root=fake.files, download=False, resize=28)
    plain = datasets.FashionMNIST(root=fake.files, download=False)
    np.testing.assert_array_equal(same[3][0].numpy(), plain[3][0].numpy())
    big = datasets.FashionMNIST(root=fake.files, download=False, resize=(64, 40))
    x, _ = next(iter(data.DataLoader(big, batch_size=5)))
    assert tuple(x.shape) == (5, 1, 64, 40) and x.dtype == cn.float32
    values = x.numpy()
    assert 0 <= values.min() and values.max() <= 1
    np.testing.assert_array_equal(np.round(values * 255), values * 255)  # 8-bit, as PIL
    small = datasets.FashionMNIST(root=fake.files, download=False, resize=14)
    assert tuple(small[0][0].shape) == (1, 14, 14)
    with pytest.raises(ValueError, match="resize"):
        datasets.FashionMNIST(root=fake.files, download=False, resize=0)


def test_resize_keeps_constant_images_and_is_bilinear():
    const = np.full((1, 28, 28), 77, np.uint8)
    for size in (14, 28, 33, 96, 224):
        rows = datasets._resize_weights(28, size)
        out = datasets._resample_u8(datasets._resample_u8(const, rows, 2), rows, 1)
        assert out.shape == (1, size, size) and np.all(out == 77)
    # doubling a ramp: PIL's bilinear with half-pixel centres, edges clamped
    ramp = np.array([[[0, 100, 200]]], np.uint8)
    out = datasets._resample_u8(ramp, datasets._resize_weights(3, 6), 2)
    assert out[0, 0].tolist() == [0, 25, 75, 125, 175, 200]


def test_wrong_checksum_says_which_file_and_what_to_do(fake):
    path = fake.files / "train-labels-idx1-ubyte.gz"
    labels = fake.arrays["train-labels-idx1-ubyte.gz"].copy()
    labels[0] = 9
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(datasets.DataFileError) as err:
        datasets.FashionMNIST(root=fake.files, download=False)
    message = str(err.value)
    assert str(path) in message and "SHA-256" in message and "Delete this file" in message


def test_image_and_label_counts_must_match(fake, monkeypatch):
    path = fake.files / "train-labels-idx1-ubyte.gz"
    content = idx_bytes(fake.arrays["train-labels-idx1-ubyte.gz"][:-1])
    path.write_bytes(gzip.compress(content))
    digests = dict(datasets.SHA256, **{path.name: hashlib.sha256(content).hexdigest()})
    monkeypatch.setattr(datasets, "SHA256", digests)
    monkeypatch.setattr(datasets, "SIZES", dict(datasets.SIZES, **{path.name: len(content)}))
    with pytest.raises(datasets.DataFileError, match="30 images but .* 29 labels"):
        datasets.FashionMNIST(root=fake.files, download=False)


def test_wrong_magic_in_a_dataset_file(fake):
    path = fake.files / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(fake.arrays["t10k-labels-idx1-ubyte.gz"])))
    with pytest.raises(datasets.DataFileError, match="expected 2051"):
        datasets.FashionMNIST(root=fake.files, train=False, download=False)


def test_existing_files_are_verified_once_per_process(fake, monkeypatch):
    datasets.FashionMNIST(root=fake.files, download=False)
    calls = []
    real = datasets._read_idx_file
    monkeypatch.setattr(datasets, "_read_idx_file", lambda *a: calls.append(a) or real(*a))
    again = datasets.FashionMNIST(root=fake.files, download=False)
    assert calls == [] and len(again) == 30
    os.utime(fake.files / "train-images-idx3-ubyte.gz", ns=(1, 1))  # changed: verified again
    datasets.FashionMNIST(root=fake.files, download=False)
    assert len(calls) == 1


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "corrnet"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "corrnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "corrnet"


def _place(folder: Path, fake, names=NAMES, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        content = (fake.files / name).read_bytes()
        if gz:
            (folder / name).write_bytes(content)
        else:
            (folder / name[:-3]).write_bytes(gzip.decompress(content))


def test_search_order(fake, monkeypatch):
    root, env = fake.tmp / "root", fake.tmp / "env"
    cache = fake.tmp / "cache" / "corrnet" / "fashion-mnist"
    debian = Path(datasets.DEBIAN_DIR)
    monkeypatch.setenv("CORRNET_DATA", str(env))
    for folder in (root / "FashionMNIST" / "raw", env, cache, debian):
        _place(folder, fake)
    name = "train-images-idx3-ubyte.gz"
    assert datasets._find(name, root) == root / "FashionMNIST" / "raw" / name
    _place(root, fake, gz=False)  # the folder itself comes before its subfolders
    assert datasets._find(name, root) == root / name[:-3]
    assert datasets._find(name, None) == env / name
    monkeypatch.delenv("CORRNET_DATA")
    assert datasets._find(name, None) == cache / name
    (cache / name).unlink()
    assert datasets._find(name, None) == debian / name
    ds = datasets.FashionMNIST(download=False)  # images from Debian's folder, labels cached
    assert len(ds) == 30
    listed = [str(folder) for folder, _ in datasets.search_dirs(root)]
    assert listed[0] == str(root) and listed[-1] == str(debian)


def test_missing_files_without_download(fake):
    with pytest.raises(FileNotFoundError) as err:
        datasets.FashionMNIST(root=fake.tmp / "nowhere", download=False)
    message = str(err.value)
    for expected in ("train-images-idx3-ubyte.gz", str(fake.tmp / "nowhere"),
                     str(fake.tmp / "cache" / "corrnet"), datasets.DEBIAN_DIR, "download=True",
                     "CORRNET_DATA", "root="):
        assert expected in message


# -- downloads --------------------------------------------------------------------------------


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_into_the_cache(fake):
    ds = datasets.FashionMNIST(train=False)  # from the file:// mirror
    target = fake.tmp / "cache" / "corrnet" / "fashion-mnist"
    assert _leftovers(target) == sorted(NAMES[2:])
    for name in NAMES[2:]:
        assert (target / name).read_bytes() == (fake.files / name).read_bytes()
    assert len(ds) == 20
    datasets.FashionMNIST(root=fake.tmp / "mine", train=True)
    assert _leftovers(fake.tmp / "mine" / "fashion-mnist") == sorted(NAMES[:2])


def test_download_checksum_mismatch_leaves_nothing(fake, monkeypatch):
    monkeypatch.setattr(datasets, "SHA256", dict(datasets.SHA256,
                                                 **{NAMES[0]: "0" * 64}))
    target = fake.tmp / "cache" / "corrnet" / "fashion-mnist"
    with pytest.raises(datasets.DataFileError) as err:
        datasets.FashionMNIST(train=True)
    assert "SHA-256" in str(err.value) and NAMES[0] in str(err.value)
    assert NAMES[0] not in _leftovers(target)
    assert not [n for n in _leftovers(target) if n.endswith(".part")]


class _Response(io.BytesIO):
    """A response that delivers `limit` bytes of `payload`, then fails with `error`."""

    def __init__(self, payload, limit=None, error=None):
        super().__init__(payload[:limit] if limit is not None else payload)
        self.error = error

    def read(self, size=-1):
        chunk = super().read(min(size, 1000))
        if not chunk and self.error is not None:
            raise self.error
        return chunk


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_nothing(fake, monkeypatch, error):
    payload = (fake.files / NAMES[2]).read_bytes()
    monkeypatch.setattr(datasets, "_urlopen",
                        lambda url, timeout: _Response(payload, len(payload) // 2, error))
    target = fake.tmp / "cache" / "corrnet" / "fashion-mnist"
    expected = datasets.DataFileError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        datasets.FashionMNIST(train=False)
    assert _leftovers(target) == []


def test_truncated_download_is_refused(fake, monkeypatch):
    payload = (fake.files / NAMES[2]).read_bytes()
    monkeypatch.setattr(datasets, "_urlopen",
                        lambda url, timeout: _Response(payload, len(payload) - 100))
    with pytest.raises(datasets.DataFileError, match="incomplete"):
        datasets.FashionMNIST(train=False)
    assert _leftovers(fake.tmp / "cache" / "corrnet" / "fashion-mnist") == []


def test_download_falls_back_to_the_next_mirror(fake, monkeypatch):
    monkeypatch.setattr(datasets, "MIRRORS",
                        ((fake.tmp / "empty").as_uri() + "/", fake.files.as_uri() + "/"))
    assert len(datasets.FashionMNIST(train=False)) == 20
    monkeypatch.setattr(datasets, "MIRRORS", ((fake.tmp / "empty").as_uri() + "/",))
    with pytest.raises(datasets.DataFileError, match="could not download") as err:
        datasets.FashionMNIST(train=True)
    assert "root=" in str(err.value)


def test_load_data_fashion_mnist_on_small_files(fake):
    train_iter, test_iter = datasets.load_data_fashion_mnist(8, root=fake.files, download=False)
    assert len(train_iter) == 4 and len(test_iter) == 3
    x, y = next(iter(test_iter))
    assert tuple(x.shape) == (8, 1, 28, 28) and y.tolist() == list(range(8))
    cn.manual_seed(0)
    labels = np.concatenate([y.numpy() for _, y in train_iter])
    assert sorted(labels.tolist()) == sorted(fake.arrays[NAMES[1]].tolist())


# -- the real Fashion-MNIST -------------------------------------------------------------------

needs_real_data = pytest.mark.skipif(
    not all((SHARED_DATA / name).is_file() for name in NAMES),
    reason=f"the Fashion-MNIST files are not in {SHARED_DATA}",
)


@needs_real_data
@pytest.mark.parametrize("train, n", [(True, 60000), (False, 10000)])
def test_real_fashion_mnist(train, n):
    ds = datasets.FashionMNIST(root=SHARED_DATA, train=train, download=False)
    assert len(ds) == n
    assert tuple(ds.data.shape) == (n, 28, 28) and ds.data.dtype == cn.uint8
    counts = np.bincount(ds.targets.numpy(), minlength=10)
    assert counts.tolist() == [n // 10] * 10
    x, y = next(iter(data.DataLoader(ds, batch_size=n)))
    assert tuple(x.shape) == (n, 1, 28, 28) and x.dtype == cn.float32 and y.dtype == cn.int64
    values = x.numpy()
    assert values.min() == 0.0 and values.max() == 1.0
    if train:  # the commonly quoted normalisation mean
        assert abs(values.mean() - 0.2860) < 1e-3


@needs_real_data
def test_real_load_data_fashion_mnist():
    train_iter, test_iter = datasets.load_data_fashion_mnist(256, resize=32, root=SHARED_DATA)
    assert len(train_iter) == 235 and len(test_iter) == 40
    x, y = next(iter(test_iter))
    assert tuple(x.shape) == (256, 1, 32, 32) and tuple(y.shape) == (256,)
    assert datasets.FashionMNIST.classes[int(y[0].item())] == "ankle boot"


# ------------------------------------------------------------------ corrnet.Generator
def test_dataloader_with_a_seeded_corrnet_generator_as_in_pytorch():
    """``DataLoader(..., generator=torch.Generator().manual_seed(s))``, the PyTorch idiom."""
    dataset = data.TensorDataset(cn.arange(12))

    def order(seed):
        loader = data.DataLoader(dataset, batch_size=4, shuffle=True,
                                 generator=cn.Generator().manual_seed(seed))
        return [batch[0].tolist() for batch in loader]

    assert order(7) == order(7) and order(7) != order(8)
    assert sorted(sum(order(7), [])) == list(range(12))


def test_generator_state_round_trip_and_default_generator():
    g = cn.Generator().manual_seed(3)
    assert g.initial_seed() == 3
    state = g.get_state()
    first = cn.rand(4, generator=g)
    g.set_state(state)
    assert cn.equal(first, cn.rand(4, generator=g))
    assert cn.manual_seed(5) is cn.default_generator and cn.initial_seed() == 5
    saved = cn.get_rng_state()
    a = cn.randn(3)
    cn.set_rng_state(saved)
    assert cn.equal(a, cn.randn(3))
    w, v = cn.empty(100), cn.empty(100)
    cn.nn.init.uniform_(w, generator=cn.Generator().manual_seed(1))
    cn.nn.init.uniform_(v, generator=cn.Generator().manual_seed(1))
    assert cn.equal(w, v)
    with pytest.raises(TypeError, match="generator must be"):
        cn.rand(2, generator="seed")
