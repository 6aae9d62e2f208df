"""Hostile files (issue 11): every file corrnet reads is built here to attack it — deflate,
gzip and overlapping-member bombs, truncated and bit-flipped archives, tampered structures,
pickle payloads, oversized IDX headers, endless downloads, saves killed by SIGKILL, NaN in
training and in checkpoints. Each must be rejected with a clear error (corrnet's `LoadError`,
`DataFileError`, `NonFiniteError`, or the error PyTorch raises) or survived, with memory
bounded and nothing from the file executed.

The memory of the bombs is measured in a child process (tracemalloc peak per case, and the
growth of the child's peak RSS over all of them) under an address-space limit (RLIMIT_AS) of
what it had after importing corrnet plus `HEADROOM`, so that even the unfixed code cannot take
the machine down.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import io
import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corrnet as ct
from corrnet import datasets, nn, optim, serialization
from corrnet.serialization import LoadError
from corrnet.train import NonFiniteError, fit, load_checkpoint
from corrnet.utils.data import DataLoader, TensorDataset

SRC = str(Path(ct.__file__).resolve().parents[1])  # the corrnet under test, for children
MiB = 1 << 20
HEADROOM = 768 * MiB  # address space a bomb child may use beyond its imports

# -- building hostile files -------------------------------------------------------------------


def zip_bytes(members) -> bytes:
    """A zip archive written by hand, so that every field can lie. `members`: dicts with
    name, data (the bytes stored), and optionally method (0 stored, 8 deflated), file_size
    (the declared uncompressed size), crc and offset (to point several entries at one
    place); members with an offset are not written again."""
    out, central = bytearray(), bytearray()
    for m in members:
        name, data = m["name"].encode(), m["data"]
        method, size = m.get("method", 0), m.get("file_size", len(m["data"]))
        crc = m.get("crc", zlib.crc32(data))
        offset = m.get("offset")
        if offset is None:
            offset = len(out)
            out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(name), 0) + name + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(name), 0, 0, 0, 0, 0, offset) + name
    start = len(out)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                 len(central), start, 0)
    return bytes(out)


def npy_header(shape, descr="|u1") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def structure(root) -> bytes:
    return json.dumps({"corrnet": 1, "root": root}).encode()


def deflate_zeros(prefix: bytes, zeros: int) -> bytes:
    """Raw deflate of `prefix` followed by `zeros` zero bytes, built in milliseconds: after a
    full flush the compressor has no history, so each MiB of zeros compresses to the same
    block, which is repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    assert zeros % MiB == 0 and zeros >= 2 * MiB
    return head + block * (zeros // MiB) + c.flush()


def gzip_zeros(prefix: bytes, zeros: int) -> bytes:
    """A gzip file of `prefix` and `zeros` zero bytes (its CRC is wrong: nothing may read that
    far)."""
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + deflate_zeros(prefix, zeros)
            + struct.pack("<LL", 0, zeros & 0xFFFFFFFF))


def idx_header(code, dims) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def overlap_bomb(copies: int, payload: int) -> bytes:
    """`copies` stored .npy members whose data overlap: member i's data is a .npy header
    followed by every later member (its local header included), so each declares about
    `payload` bytes of uint8 and all of them together `copies` times the file's size."""
    tail = bytes(payload)
    chain = []  # (name, data, .npy header length), last member first
    for i in reversed(range(copies)):
        name = f"{i}.npy".encode()
        header = npy_header((len(tail),))
        data = header + tail
        local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data),
                            len(data), len(data), len(name), 0) + name
        chain.append((name, data, len(header)))
        tail = local + data
    root = [{"__array__": i} for i in range(copies)]
    single = zip_bytes([{"name": "structure.json", "data": structure(root)}])
    archive = bytearray(tail + single[: single.index(b"PK\x01\x02")])
    central = bytearray()
    offsets = [0]  # where each member's local header is: inside the data of the one before
    for name, _, header_length in reversed(chain):
        offsets.append(offsets[-1] + 30 + len(name) + header_length)
    entries = [(name, data, at)
               for (name, data, _), at in zip(reversed(chain), offsets[:-1], strict=True)]
    entries.append((b"structure.json", structure(root), len(tail)))
    for name, data, at in entries:
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21,
                               zlib.crc32(data), len(data), len(data), len(name), 0, 0, 0, 0,
                               0, at) + name
    start = len(archive)
    archive += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries),
                                     len(entries), len(central), start, 0)
    return bytes(archive)


# -- the bombs, in a child under an address-space limit ---------------------------------------

_CHILD = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    import corrnet
    from corrnet import datasets
    from corrnet.kernels import jit
    if jit._warm_up_thread is not None:   # numba's set-up, started at import: not the cases'
        jit._warm_up_thread.join()
    cases, headroom = json.loads(sys.argv[1]), int(sys.argv[2])
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, resource.RLIM_INFINITY))

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak RSS (VmHWM) to the current RSS
    before = status("VmRSS:")
    results = {}
    for name, call, arg in cases:
        tracemalloc.start()
        try:
            if call == "load":
                corrnet.load(arg)
            elif call == "read_idx":
                datasets.read_idx(arg)
            elif call == "fashion_mnist":
                datasets.FashionMNIST(root=arg, train=True, download=False)
            outcome, message = "returned", ""
        except BaseException as exc:
            outcome, message = type(exc).__name__, str(exc)[:400]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        results[name] = {"outcome": outcome, "message": message, "peak": peak}
    after = status("VmHWM:")
    print(json.dumps({"cases": results, "rss_before": before, "rss_after": after}))
""")


def run_child(cases, headroom=HEADROOM, timeout=300):
    env = dict(os.environ, PYTHONPATH=SRC)
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases), str(headroom)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


GiB = 1 << 30


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """Build every bomb (each a few MiB at most) and open them all in one child."""
    folder = tmp_path_factory.mktemp("bombs")
    files = {}

    # a corrnet save file whose one array is a deflated GiB of zeros (1 MiB on disk)
    header = npy_header((GiB,))
    files["npz_deflate_bomb"] = zip_bytes([
        {"name": "structure.json", "data": structure({"__tensor__": 0})},
        {"name": "0.npy", "data": deflate_zeros(header, GiB), "method": 8,
         "file_size": len(header) + GiB, "crc": 0},
    ])
    # 300 stored members overlapping in 1 MiB: 300 MiB declared
    files["npz_overlap_bomb"] = overlap_bomb(300, MiB)
    # a .npy header announcing 2**40 float64 in a member of a few bytes
    files["npz_header_lies"] = zip_bytes([
        {"name": "structure.json", "data": structure({"__array__": 0})},
        {"name": "0.npy", "data": npy_header((1 << 40,), "<f8") + bytes(16)},
    ])
    # the directory declares a 4 GiB stored member in a small file
    files["npz_directory_lies"] = zip_bytes([
        {"name": "structure.json", "data": structure({"__array__": 0})},
        {"name": "0.npy", "data": npy_header((4,)) + bytes(4), "file_size": 4 * GiB - 1},
    ])
    # Fashion-MNIST's training images: a correct header, then 1 GiB of zeros (1 MiB of gzip)
    root = folder / "fmnist"
    root.mkdir()
    (root / "train-images-idx3-ubyte.gz").write_bytes(
        gzip_zeros(idx_header(0x08, (60000, 28, 28)), GiB))
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"junk"))
    # read_idx: ten labels, then a GiB of zeros after them
    files["idx_gzip_bomb.gz"] = gzip_zeros(idx_header(0x08, (10,)), GiB)
    # read_idx: a header announcing 2**62 bytes in a small gzip file
    files["idx_header_lies.gz"] = gzip.compress(idx_header(0x08, (1 << 31, 1 << 31)) + bytes(64))

    cases = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        cases.append([name, "read_idx" if name.startswith("idx") else "load", str(path)])
    cases.append(["fashion_mnist_gzip_bomb", "fashion_mnist", str(root)])
    result = run_child(cases)
    result["sizes"] = {name: len(data) for name, data in files.items()}
    result["sizes"]["fashion_mnist_gzip_bomb"] = \
        (root / "train-images-idx3-ubyte.gz").stat().st_size
    return result


def _check_bomb(bombs, name, error, bound):
    case = bombs["cases"][name]
    assert case["outcome"] == error, case
    assert case["peak"] < bound, f"{name}: peak {case['peak'] / MiB:.1f} MiB ({case})"
    return case


def test_issue11_deflate_bomb_npz_is_refused_before_decompressing(bombs):
    case = _check_bomb(bombs, "npz_deflate_bomb", "LoadError", 4 * MiB)
    assert "compressed" in case["message"] and "0.npy" in case["message"]


def test_issue11_overlapping_members_are_refused(bombs):
    case = _check_bomb(bombs, "npz_overlap_bomb", "LoadError", 8 * MiB)
    assert "more than the file" in case["message"] or "Overlapped" in case["message"]


def test_npy_header_or_directory_that_lies_about_sizes_is_refused(bombs):
    case = _check_bomb(bombs, "npz_header_lies", "LoadError", MiB)
    assert "directory gives it" in case["message"]
    _check_bomb(bombs, "npz_directory_lies", "LoadError", MiB)


def test_issue11_fashion_mnist_gzip_bomb_is_cut_off_at_the_known_size(bombs):
    # the known size of the training images is 47 MB: never more is decompressed
    case = _check_bomb(bombs, "fashion_mnist_gzip_bomb", "DataFileError",
                       datasets.SIZES["train-images-idx3-ubyte.gz"] + 8 * MiB)
    assert "bytes follow" in case["message"] and "train-images" in case["message"]


def test_issue11_idx_gzip_bomb_is_cut_off(bombs):
    case = _check_bomb(bombs, "idx_gzip_bomb.gz", "DataFileError", 4 * MiB)
    assert "bytes follow" in case["message"]
    case = _check_bomb(bombs, "idx_header_lies.gz", "DataFileError", MiB)
    assert "more than a gzip file" in case["message"]


def test_bomb_child_stayed_within_its_memory(bombs):
    grown = bombs["rss_after"] - bombs["rss_before"]
    assert grown < datasets.SIZES["train-images-idx3-ubyte.gz"] + 64 * MiB, grown


# -- IDX headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_issue11_idx_headers_with_too_many_dims_or_overflowing_sizes(tmp_path, gz):
    cases = {
        "65 dims": (idx_header(0x08, (1,) * 65), "at most 64"),
        "255 dims": (idx_header(0x08, (1,) * 255), "at most 64"),
        # 2**64 elements: wraps to 0 in int64 arithmetic
        "overflow": (idx_header(0x08, (1 << 16,) * 4), "bytes"),
        "overflow float64": (idx_header(0x0E, (0xFFFFFFFF,) * 8), "bytes"),
        "larger than the file": (idx_header(0x0C, (1000, 1000)) + bytes(40), "bytes"),
    }
    for label, (content, expected) in cases.items():
        path = tmp_path / ("x.idx.gz" if gz else "x.idx")
        path.write_bytes(gzip.compress(content) if gz else content)
        with pytest.raises(datasets.DataFileError, match=expected) as err:
            datasets.read_idx(path)
        assert str(path) in str(err.value), label
        with pytest.raises(datasets.DataFileError, match=expected):
            datasets.parse_idx(content, path)


# -- corrnet.save files: tampering ------------------------------------------------------------


def _save_file(tmp_path, obj=None) -> Path:
    path = tmp_path / "model.npz"
    ct.save(obj if obj is not None else
            {"w": ct.arange(12.).reshape(3, 4), "b": ct.tensor([1, 2, 3]), "epoch": 3,
             "opt": {"lr": 0.1, "betas": (0.9, 0.99)}, "a": np.arange(5.0)}, path)
    return path


def _members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _rewrite(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _tamper(path, root) -> None:
    members = _members(path)
    members["structure.json"] = structure(root)
    _rewrite(path, members)


@pytest.mark.parametrize("root, problem", [
    ({"__dict__": [["w", {"__tensor__": -1}], ["b", {"__tensor__": 1}],
                   ["a", {"__array__": 2}]]}, "not an array index"),
    ({"__dict__": [["w", {"__tensor__": 0}], ["b", {"__tensor__": 0}],
                   ["a", {"__array__": 2}]]}, "twice"),
    ({"__dict__": [["w", {"__tensor__": 0}], ["b", {"__tensor__": 1}],
                   ["a", {"__array__": 7}]]}, "missing"),
    ({"__dict__": [["w", {"__tensor__": 0}], ["b", {"__tensor__": 1}],
                   ["a", {"__array__": "2"}]]}, "not an array index"),
    ({"__dict__": [["w", {"__tensor__": 0}], ["b", {"__tensor__": 1}],
                   ["a", {"__array__": True}]]}, "not an array index"),
    ({"__dict__": [[["unhashable"], {"__tensor__": 0}], ["b", {"__tensor__": 1}],
                   ["a", {"__array__": 2}]]}, "cannot be a key"),
    ({"__dict__": [["w"], ["b", {"__tensor__": 1}]]}, "pair"),
    ({"__dict__": 5}, "not a list"),
    ({"__evil__": 0}, "unknown object"),
    ({"__tensor__": 0, "__array__": 1}, "unknown object"),
])
def test_issue11_tampered_structure_is_refused(tmp_path, root, problem):
    path = _save_file(tmp_path)
    _tamper(path, root)
    with pytest.raises(LoadError, match=problem) as err:
        ct.load(path)
    assert str(path) in str(err.value)


def test_deeply_nested_structure_is_refused_without_recursion_error(tmp_path):
    path = _save_file(tmp_path)
    members = _members(path)
    for depth in (serialization.MAX_DEPTH + 1, 100_000):
        members["structure.json"] = b'{"corrnet": 1, "root": ' + b"[" * depth + b"]" * depth \
            + b"}"
        _rewrite(path, members)
        with pytest.raises(LoadError, match="nested"):
            ct.load(path)
    with pytest.raises(ValueError, match="nested"):
        nested = []
        for _ in range(serialization.MAX_DEPTH + 1):
            nested = [nested]
        ct.save(nested, tmp_path / "deep.npz")


def test_issue11_npz_nested_in_a_member_is_refused(tmp_path):
    path = _save_file(tmp_path)
    inner = io.BytesIO()
    np.savez(inner, x=np.arange(3), y=np.arange(4))
    members = _members(path)
    members["0.npy"] = inner.getvalue()
    _rewrite(path, members)
    with pytest.raises(LoadError, match="not a valid .npy"):
        ct.load(path)


def test_unexpected_member_and_missing_structure_are_refused(tmp_path):
    path = _save_file(tmp_path)
    members = _members(path)
    _rewrite(path, dict(members, **{"extra.npy": members["0.npy"]}))
    with pytest.raises(LoadError, match="unexpected"):
        ct.load(path)
    _rewrite(path, {k: v for k, v in members.items() if k != "structure.json"})
    with pytest.raises(LoadError, match="no structure.json"):
        ct.load(path)


def test_tensor_member_of_an_unsupported_dtype_is_refused(tmp_path):
    path = _save_file(tmp_path)
    members = _members(path)
    buffer = io.BytesIO()
    np.save(buffer, np.ones((3, 4), np.complex64))
    members["0.npy"] = buffer.getvalue()
    _rewrite(path, members)
    with pytest.raises(LoadError, match="complex64"):
        ct.load(path)


class _Payload:
    """Unpickling this would create `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("member", ["0.npy", "structure.json", "whole file"])
def test_pickle_payloads_are_never_executed(tmp_path, member):
    sentinel = tmp_path / "executed"
    path = _save_file(tmp_path)
    buffer = io.BytesIO()
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(sentinel)
    np.save(buffer, payload, allow_pickle=True)
    members = _members(path)
    if member == "whole file":
        import pickle

        path.write_bytes(pickle.dumps(_Payload(sentinel)))
    else:
        members[member] = buffer.getvalue()
        _rewrite(path, members)
    with pytest.raises(LoadError):
        ct.load(path)
    assert not sentinel.exists()


# -- bit flips and truncation (hypothesis) ----------------------------------------------------


def _same(a, b) -> bool:
    if isinstance(a, ct.Tensor):
        return isinstance(b, ct.Tensor) and a.dtype == b.dtype and \
            np.array_equal(a.numpy(), b.numpy())
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b and type(a) is type(b)


ORIGINAL = {"w": ct.arange(24.).reshape(2, 3, 4), "b": ct.tensor([1, 2, 3]),
            "epoch": 3, "opt": {"lr": 0.1, "betas": (0.9, 0.99)}, "a": np.arange(5.0)}
OUTCOMES: dict = {}  # figures for the report: kind -> {outcome: count}


def _outcome(kind, path):
    """'survived' (loaded, equal to the original) or 'clear error'; anything else fails."""
    try:
        back = ct.load(path)
    except LoadError as err:
        assert str(path) in str(err)
        result = "clear error"
    else:
        assert _same(ORIGINAL, back), "a damaged file loaded as something else"
        result = "survived"
    OUTCOMES.setdefault(kind, {}).setdefault(result, 0)
    OUTCOMES[kind][result] += 1


@pytest.fixture(scope="module")
def original_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("orig") / "model.npz"
    ct.save(ORIGINAL, path)
    return path.read_bytes()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bit_flipped_archives_are_refused_or_unchanged(tmp_path, original_bytes, data):
    raw = bytearray(original_bytes)
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 7)),
                               min_size=1, max_size=4))
    for position, bit in flips:
        raw[position] ^= 1 << bit
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(raw))
    _outcome("bit flips", path)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_truncated_archives_are_refused(tmp_path, original_bytes, data):
    cut = data.draw(st.integers(0, len(original_bytes) - 1))
    path = tmp_path / "cut.npz"
    path.write_bytes(original_bytes[:cut])
    _outcome("truncations", path)
    assert OUTCOMES["truncations"].get("survived", 0) == 0


def _json_values():
    """Structure nodes, valid and not: the forms save writes, with any values in them."""
    scalars = st.none() | st.booleans() | st.integers(-3, 8) | st.floats() | st.text(max_size=3)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["__tensor__", "__array__", "__tuple__", "__dict__",
                                           "x"]), inner, max_size=2)
        | st.builds(lambda pairs: {"__dict__": pairs},
                    st.lists(st.lists(inner, min_size=0, max_size=3), max_size=3)),
        max_leaves=20)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(root=_json_values(), arrays=st.integers(0, 3))
def test_tampered_structures_are_refused_or_load_consistently(tmp_path, root, arrays):
    members = {"structure.json": structure(root)}
    for i in range(arrays):
        buffer = io.BytesIO()
        np.save(buffer, np.full(2, i, np.float32))
        members[f"{i}.npy"] = buffer.getvalue()
    path = tmp_path / "tampered.npz"
    _rewrite(path, members)
    try:
        ct.load(path)
        result = "loaded"
    except LoadError as err:
        assert str(path) in str(err)
        result = "clear error"
    OUTCOMES.setdefault("tampered structure", {}).setdefault(result, 0)
    OUTCOMES["tampered structure"][result] += 1


# -- saving: memory and killed writers --------------------------------------------------------


def _traced_peak(function):
    import tracemalloc

    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_issue11_save_streams_arrays_without_a_full_copy(tmp_path):
    big = ct.zeros(16, 1024, 1024)  # 64 MiB
    transposed = ct.ones(2048, 2048).t()  # 16 MiB, not contiguous
    peak = _traced_peak(lambda: ct.save({"big": big, "t": transposed}, tmp_path / "big.npz"))
    assert peak < 20 * MiB, peak / MiB
    back = {}
    peak = _traced_peak(lambda: back.update(ct.load(tmp_path / "big.npz")))
    assert peak < 80 * MiB + 4 * MiB, peak / MiB  # the arrays themselves, and one read buffer
    assert np.array_equal(back["t"].numpy(), np.ones((2048, 2048), np.float32))


_SAVER = textwrap.dedent("""
    import sys, corrnet
    path = sys.argv[1]
    versions = [corrnet.full((1 << 21,), float(i)) for i in range(2)]  # 8 MiB each
    print("ready", flush=True)
    i = 0
    while True:
        corrnet.save({"v": versions[i % 2], "i": i % 2}, path)
        i += 1
""")

KILLS: dict = {}  # figures for the report


def _temporaries(folder: Path, target: str):
    return sorted(p.name for p in folder.iterdir() if p.name != target)


def test_issue11_killed_saves_leave_no_orphan_temporaries(tmp_path):
    target = tmp_path / "model.npz"
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=SRC)
    kills, intact, orphans_seen = 20, 0, 0
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", _SAVER, str(target)],
                                 stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.02, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        if target.exists():  # never half-written: one of the two versions, whole
            back = ct.load(target)
            assert np.all(back["v"].numpy() == back["i"])
            intact += 1
        orphans_seen = max(orphans_seen, len(_temporaries(tmp_path, target.name)))
    left_before = _temporaries(tmp_path, target.name)
    ct.save({"v": ct.zeros(1)}, tmp_path / "next.npz")  # the next save in that folder
    left_after = _temporaries(tmp_path, "next.npz")
    KILLS.update(kills=kills, intact=intact, orphans_after_kills=len(left_before),
                 orphans_after_next_save=len([n for n in left_after if n != target.name]))
    assert [n for n in left_after if n != target.name] == []


def test_orphan_collection_spares_a_live_writer(tmp_path):
    dead = tmp_path / ".model.npz.abc123.corrnet-tmp"
    dead.write_bytes(b"left by a killed save")
    live = tmp_path / ".model.npz.def456.corrnet-tmp"
    live.write_bytes(b"being written")
    import fcntl

    with open(live, "rb") as held:  # another open file description: the lock conflicts
        fcntl.flock(held, fcntl.LOCK_EX)
        ct.save({"x": 1}, tmp_path / "model.npz")
        assert not dead.exists() and live.exists()
    ct.save({"x": 2}, tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def _refuse_link(*args):
    raise PermissionError("linkat refused")


@pytest.mark.parametrize("patch", ["no O_TMPFILE", "no linkat"])
def test_atomic_write_without_o_tmpfile(tmp_path, monkeypatch, patch):
    if patch == "no O_TMPFILE":
        monkeypatch.setattr(serialization, "_anonymous_file", lambda directory: None)
    else:
        monkeypatch.setattr(serialization, "_give_name", _refuse_link)
    path = tmp_path / "m.npz"
    ct.save({"x": ct.ones(3)}, path)
    with pytest.raises(RuntimeError, match="interrupted"):
        with serialization.atomic_write(path) as file:
            file.write(b"half")
            raise RuntimeError("interrupted")
    assert ct.load(path)["x"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# -- downloads --------------------------------------------------------------------------------


# A fixed client stops at about 65 kB; an unfixed one reads on until these caps (4 MiB of the
# bomb is 4 GiB of content).
CAPS = {"bomb": 4 * MiB, "bomb burst": 4 * MiB, "empty blocks": 64 * MiB, "length": 64 * MiB}


class _Endless(http.server.BaseHTTPRequestHandler):
    """Serves an endless body of the server's `kind` until the client leaves (or until
    `CAPS`, which keeps the test bounded even for a client that never stops); counts the
    bytes sent."""


    def do_GET(self):  # noqa: N802
        kind = self.server.kind
        self.send_response(200)
        if kind == "length":
            self.send_header("Content-Length", str(10 * GiB))
        self.end_headers()
        gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        try:
            if kind in ("bomb", "bomb burst"):
                c = zlib.compressobj(9, zlib.DEFLATED, -15)
                self._send(gzip_header + c.compress(idx_header(0x08, (60000,)))
                           + c.flush(zlib.Z_FULL_FLUSH))
                block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
                if kind == "bomb burst":  # more than the size limit arrives in one read
                    block = block * 128
                while self.server.sent < CAPS[kind]:
                    self._send(block)
            elif kind in ("empty blocks", "length"):
                self._send(gzip_header)
                chunk = b"\x00\x00\x00\xff\xff" * (64 * 1024)  # empty stored blocks
                while self.server.sent < CAPS[kind]:
                    self._send(chunk)
            elif kind == "trickle":
                self._send(gzip_header)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    self._send(b"\x00\x00\x00\xff\xff")
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, data):
        self.wfile.write(data)
        self.wfile.flush()
        self.server.sent += len(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _server(kind):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    server.kind, server.sent = kind, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


DOWNLOADS: dict = {}  # figures for the report


@pytest.mark.parametrize("kind", ["empty blocks", "bomb", "bomb burst", "trickle", "length"])
def test_issue11_endless_download_is_cut_off(tmp_path, monkeypatch, kind):
    name = "train-labels-idx1-ubyte.gz"  # 60,008 bytes of content
    if kind == "trickle":
        monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT", 2.0)
        monkeypatch.setattr(datasets, "DOWNLOAD_MIN_RATE", 10 * MiB)
    with _server(kind) as server:
        start = time.monotonic()
        peak = {}

        def run():
            with pytest.raises(datasets.DataFileError) as err:
                datasets.download(name, tmp_path, mirrors=[f"http://127.0.0.1:"
                                                           f"{server.server_port}/"])
            peak["message"] = str(err.value)

        peak["traced"] = _traced_peak(run)
        elapsed = time.monotonic() - start
        sent = server.sent
    DOWNLOADS[kind] = {"seconds": round(elapsed, 2), "sent": sent, "peak": peak["traced"]}
    assert elapsed < 15, elapsed
    limit = datasets._max_download_size(name)
    assert sent < limit + 8 * MiB, sent  # what the socket buffers held when it was cut
    assert peak["traced"] < 4 * MiB
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert {"empty blocks": "more than", "bomb": "larger than", "bomb burst": "larger than",
            "trickle": "longer than", "length": "announces"}[kind] in peak["message"]


def test_issue11_first_mirror_is_https():
    assert datasets.MIRRORS[0].startswith("https://")


# -- training: NaN and checkpoints ------------------------------------------------------------


def _batches(bad_at=None, n=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n * 4, 3)).astype(np.float32)
    y = rng.integers(0, 2, n * 4).astype(np.int64)
    if bad_at is not None:
        X[bad_at] = np.nan
    return DataLoader(TensorDataset(ct.from_numpy(X), ct.from_numpy(y)), batch_size=4)


class _PoisonAfter:
    """A loader that gives `good` epochs of clean batches, then NaN at one batch."""

    def __init__(self, good_epochs, bad_step):
        self.clean, self.bad = _batches(), _batches(bad_at=4 * (bad_step - 1))
        self.epochs, self.good_epochs = 0, good_epochs

    def __len__(self):
        return len(self.clean)

    def __iter__(self):
        self.epochs += 1
        return iter(self.clean if self.epochs <= self.good_epochs else self.bad)


def test_issue11_nan_loss_stops_training_and_the_last_good_checkpoint_survives(tmp_path):
    ct.manual_seed(0)
    net = nn.Linear(3, 2)
    checkpoint = tmp_path / "ckpt.npz"
    with pytest.raises(NonFiniteError, match=r"loss is nan at epoch 2, step 3 of 8") as err:
        fit(net, _PoisonAfter(1, 3), _batches(), 3, lr=0.1, checkpoint=checkpoint,
            progress=False, log=None)
    assert "holds epoch 1" in str(err.value)
    assert all(np.isfinite(p.detach().numpy()).all() for p in net.parameters())
    state = ct.load(checkpoint)
    assert state["epoch"] == 1
    assert all(np.isfinite(t.numpy()).all() for t in state["model"].values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]


def test_on_nonfinite_skip_skips_the_bad_batches_as_torch_would_without_them():
    ct.manual_seed(0)
    net = nn.Linear(3, 2)
    w0, b0 = net.weight.detach().numpy().copy(), net.bias.detach().numpy().copy()
    history = fit(net, _batches(bad_at=9), _batches(), 1, lr=0.1, progress=False, log=None,
                  on_nonfinite="skip")
    assert history.last.skipped == 1 and history.last.examples == 28
    # PyTorch, the same steps on the clean batches only
    tnet = torch.nn.Linear(3, 2)
    with torch.no_grad():
        tnet.weight.copy_(torch.from_numpy(w0))
        tnet.bias.copy_(torch.from_numpy(b0))
    opt = torch.optim.SGD(tnet.parameters(), lr=0.1)
    for i, (X, y) in enumerate(_batches(bad_at=9)):
        if i == 2:  # rows 8..11: the batch with the NaN
            continue
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tnet(torch.from_numpy(X.numpy())),
                                          torch.from_numpy(y.numpy())).backward()
        opt.step()
    np.testing.assert_allclose(net.weight.detach().numpy(), tnet.weight.detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="on_nonfinite"):
        fit(net, _batches(), _batches(), 1, lr=0.1, progress=False, log=None,
            on_nonfinite="ignore")


def test_cli_train_passes_on_nonfinite(tmp_path, monkeypatch):
    import corrnet.train
    from corrnet import cli

    calls = []
    monkeypatch.setattr(datasets, "FashionMNIST", lambda *a, **k: TensorDataset(
        ct.zeros(4, 1, 28, 28), ct.zeros(4, dtype=ct.int64)))
    monkeypatch.setattr(corrnet.train, "fit", lambda *a, **k: calls.append(k))
    cli.main(["train", "--epochs", "1", "--out", str(tmp_path), "--no-progress", "--no-plot",
              "--on-nonfinite", "skip"])
    assert calls[0]["on_nonfinite"] == "skip"
    with pytest.raises(SystemExit):
        cli.main(["train", "--on-nonfinite", "ignore"])


def test_issue11_tampered_checkpoint_with_nan_weights_is_refused(tmp_path):
    ct.manual_seed(0)
    net = nn.Linear(3, 2)
    checkpoint = tmp_path / "ckpt.npz"
    fit(net, _batches(), _batches(), 1, lr=0.1, checkpoint=checkpoint, progress=False,
        log=None)
    state = ct.load(checkpoint)
    state["model"]["bias"] = ct.tensor([0.0, float("nan")])
    ct.save(state, checkpoint)
    fresh = nn.Linear(3, 2)
    before = [p.detach().numpy().copy() for p in fresh.parameters()]
    opt = optim.SGD(fresh.parameters(), lr=0.1)
    with pytest.raises(LoadError, match="bias") as err:
        load_checkpoint(checkpoint, fresh, opt)
    assert str(checkpoint) in str(err.value)
    with pytest.raises(LoadError):
        fit(fresh, _batches(), _batches(), 2, lr=None, optimizer=opt, checkpoint=checkpoint,
            resume=True, progress=False, log=None)
    assert _unchanged(before, fresh)


def test_checkpoint_with_a_bad_optimizer_state_changes_nothing(tmp_path):
    ct.manual_seed(0)
    net = nn.Linear(3, 2)
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    checkpoint = tmp_path / "ckpt.npz"
    fit(net, _batches(), _batches(), 1, optimizer=opt, checkpoint=checkpoint, progress=False,
        log=None)
    state = ct.load(checkpoint)
    state["optimizer"]["state"][1]["momentum_buffer"] = ct.zeros(5)  # bias is (2,)
    ct.save(state, checkpoint)
    fresh = nn.Linear(3, 2)
    fresh_opt = optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    before = [p.detach().numpy().copy() for p in fresh.parameters()]
    rng_before = ct.random.get_rng_state() if hasattr(ct, "random") else None
    with pytest.raises(LoadError, match="momentum_buffer"):
        load_checkpoint(checkpoint, fresh, fresh_opt)
    assert _unchanged(before, fresh)
    assert len(fresh_opt.state) == 0
    if rng_before is not None:
        assert np.array_equal(ct.random.get_rng_state(), rng_before)


# -- load_state_dict: validate first, refuse what PyTorch refuses -----------------------------


def _unchanged(before, module) -> bool:
    after = [p.detach().numpy() for p in module.parameters()]
    return len(before) == len(after) and all(map(np.array_equal, before, after))


def _torch_error(state):
    module = torch.nn.Linear(3, 2)
    try:
        module.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - the oracle's exception type
        return type(exc)
    return None


@pytest.mark.parametrize("label, make", [
    ("list instead of dict", lambda T, A: [("weight", T(np.ones((2, 3)))),
                                           ("bias", T(np.ones(2)))]),
    ("numpy arrays", lambda T, A: {"weight": np.ones((2, 3), np.float32),
                                   "bias": np.ones(2, np.float32)}),
    ("python lists", lambda T, A: {"weight": [[1.0] * 3] * 2, "bias": [1.0, 1.0]}),
    ("object array last", lambda T, A: {"weight": T(np.full((2, 3), 7.0)),
                                        "bias": np.array([None, None], dtype=object)}),
    ("complex array last", lambda T, A: {"weight": T(np.full((2, 3), 7.0)),
                                         "bias": np.ones(2, np.complex64)}),
    ("wrong shape last", lambda T, A: {"weight": T(np.full((2, 3), 7.0)),
                                       "bias": T(np.ones(3))}),
    ("string last", lambda T, A: {"weight": T(np.full((2, 3), 7.0)), "bias": "x"}),
])
def test_issue11_load_state_dict_refuses_as_torch_and_changes_nothing(label, make):
    expected = _torch_error(make(lambda a: torch.from_numpy(np.asarray(a, np.float32)), None))
    assert expected is not None, label
    module = nn.Linear(3, 2)
    before = {k: v.numpy().copy() for k, v in module.state_dict().items()}
    with pytest.raises(expected):
        module.load_state_dict(make(lambda a: ct.from_numpy(np.asarray(a, np.float32)), None))
    after = {k: v.numpy() for k, v in module.state_dict().items()}
    assert all(np.array_equal(before[k], after[k]) for k in before), label


def test_issue11_optimizer_load_state_dict_checks_before_changing():
    w = ct.zeros(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    good = opt.state_dict()
    bad_states = [
        {"state": {0: {"momentum_buffer": ct.zeros(5)}}, "param_groups": good["param_groups"]},
        {"state": {}, "param_groups": [dict(good["param_groups"][0], lr="fast")]},
        {"state": {}, "param_groups": [dict(good["param_groups"][0], lr=float("nan"))]},
        {"state": [], "param_groups": good["param_groups"]},
        {"state": {0: [1, 2]}, "param_groups": good["param_groups"]},
        {"state": {}, "param_groups": [dict(good["param_groups"][0], params=["0"])]},
        {"state": {}, "param_groups": {"params": [0]}},
    ]
    for bad in bad_states:
        with pytest.raises((TypeError, ValueError)):
            opt.load_state_dict(bad)
        assert opt.param_groups[0]["lr"] == 0.1 and len(opt.state) == 0


# -- the figures ------------------------------------------------------------------------------


def test_zz_report_figures(bombs, capsys):
    """Prints the figures of this suite (run with -s to see them)."""
    rows = [f"{name}: {case['outcome']}, peak {case['peak'] / MiB:.2f} MiB "
            f"(file {bombs['sizes'].get(name, 0) / MiB:.2f} MiB)"
            for name, case in bombs["cases"].items()]
    rows.append(f"bomb child RSS growth {(bombs['rss_after'] - bombs['rss_before']) / MiB:.1f} "
                "MiB")
    rows += [f"{kind}: {counts}" for kind, counts in OUTCOMES.items()]
    rows += [f"download {kind}: {v}" for kind, v in DOWNLOADS.items()]
    rows.append(f"SIGKILLed saves: {KILLS}")
    with capsys.disabled():
        print("\nhostile files:\n  " + "\n  ".join(rows))
