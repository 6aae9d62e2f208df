"""Small Fashion-MNIST look-alikes for command-line tests (the pattern of test_data.py's
`fake` fixture): the four IDX .gz files written to a folder, corrnet.datasets' checksum and
size tables patched to them, and every other place it looks (environment, cache, Debian's
folder, mirrors) pointed inside the test's tmp_path, so nothing is downloaded."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np

from corrnet import datasets


def idx_bytes(array: np.ndarray) -> bytes:
    """uint8 IDX by hand: 00 00 08 <ndim>, big-endian uint32 sizes, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make(tmp_path, monkeypatch, train: int = 64, test: int = 32):
    """Write the files to tmp_path/data and patch corrnet.datasets to them; the folder."""
    rng = np.random.default_rng(0)
    files = tmp_path / "data"
    files.mkdir()
    digests, sizes = {}, {}
    for prefix, n in (("train", train), ("t10k", test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for label in range(10):  # a bright bar whose row depends on the class: learnable
            images[labels == label, 2 + 2 * label:4 + 2 * label, 4:24] = 230
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            content = idx_bytes(array)
            digests[name], sizes[name] = hashlib.sha256(content).hexdigest(), len(content)
            (files / name).write_bytes(gzip.compress(content))
    monkeypatch.setattr(datasets, "SHA256", digests)
    monkeypatch.setattr(datasets, "SIZES", sizes)
    monkeypatch.setattr(datasets, "_verified", {})
    monkeypatch.delenv("CORRNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CORRNET_NO_DOWNLOAD", "1")
    monkeypatch.setattr(datasets, "DEBIAN_DIR", str(tmp_path / "debian"))
    return files
