"""Saving and loading state dicts: ``corrnet.save(obj, path)`` / ``corrnet.load(path)``.

The file is a NumPy ``.npz`` archive, never a pickle: every tensor or array is one ``.npy``
member (``0.npy``, ``1.npy``, ...), and one more member, ``structure.json``, holds the nesting
(dicts, lists, tuples, numbers, strings, None) with a reference to each array. Members are
stored uncompressed, so what a file holds is never larger than the file itself.

>>> corrnet.save({"weight": corrnet.ones(2, 2), "epoch": 3}, "model.npz")
>>> corrnet.load("model.npz")["epoch"]
3

**Loading trusts nothing in the file.** Everything is checked before any array is allocated:
the archive's directory (no compressed, encrypted, duplicated or overlapping members, sizes
that fit in the file), the structure (each array referenced exactly once, by a valid index,
at most `MAX_DEPTH` containers deep) and each member's ``.npy`` header (its shape times its
item size must be the size the directory gives; no object dtypes, so never a pickle). Arrays
are then read straight into their final memory, and a CRC mismatch, a truncation or anything
else wrong raises `LoadError` naming the file and the problem. Loading never executes code from
the file, and needs no more memory than the arrays it returns.

**Saving is atomic** (`atomic_write`): the archive is written to a temporary file in the target
directory, flushed to disk and renamed over the target, so an interrupted save leaves the
previous file intact. Each array is streamed into the archive in slices (no full extra copy of
a tensor). On Linux the temporary file has no name until it is complete (``O_TMPFILE``), so a
killed save leaves nothing behind; elsewhere (and for the instant between naming it and the
rename) it is named ``.<target>.<random>.corrnet-tmp`` and locked while it is written, and the
next save in that directory removes such files that no live process holds.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import secrets
import stat
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from . import devices
from .backend import _BY_NUMPY
from .devices import device
from .tensor import Tensor, from_numpy

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so orphaned temporaries are not collected
    fcntl = None

__all__ = ["LoadError", "MAX_DEPTH", "MAX_STRUCTURE_BYTES", "atomic_write", "load",
           "new_file_mode", "remove_orphan_temporaries", "save"]

_STRUCTURE = "structure.json"
TEMP_SUFFIX = ".corrnet-tmp"

#: The deepest nesting of dicts, lists and tuples that `save` writes and `load` reads.
MAX_DEPTH = 100
#: The largest ``structure.json`` that `save` writes and `load` reads (store large collections
#: of numbers as an array, not as a list).
MAX_STRUCTURE_BYTES = 16 << 20
#: NumPy's limit on the number of dimensions.
MAX_NDIM = 64
_CHUNK = 8 << 20  # bytes per slice when streaming an array into an archive (no copy)
_READ_CHUNK = 1 << 20  # bytes per read from an archive (each read is a temporary bytes)


class LoadError(RuntimeError):
    """`load` refused a file: damaged, truncated, tampered with, or not a corrnet save file."""


# -- atomic writes ----------------------------------------------------------------------------


def new_file_mode() -> int:
    """The permissions a newly created file gets under the process umask (temporary files
    are created private; a finished one is given these before it is renamed into place)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _is_temporary_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_orphan_temporaries(directory) -> int:
    """Delete the temporary files (``.*.corrnet-tmp``) in `directory` that a killed writer
    left behind; return how many. A writer holds an exclusive ``flock`` on its temporary file
    for as long as the file has a name, and the kernel drops the lock when the writer dies, so
    a file that can be locked belongs to no one. Without ``fcntl`` (Windows) nothing is
    removed."""
    if fcntl is None:
        return 0
    removed = 0
    try:
        entries = os.scandir(directory)
    except OSError:
        return 0
    with entries:
        for entry in entries:
            if not _is_temporary_name(entry.name):
                continue
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            try:
                fd = os.open(entry.path, flags)
            except OSError:
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer holds it
                # Only unlink the name if it still is the file we locked (it may have been
                # renamed into place a moment ago).
                with contextlib.suppress(OSError):
                    if os.path.samestat(os.fstat(fd), os.stat(entry.path, follow_symlinks=False)):
                        os.unlink(entry.path)
                        removed += 1
            finally:
                os.close(fd)
    return removed


def _anonymous_file(directory: Path) -> int | None:
    """An unnamed file in `directory` (Linux ``O_TMPFILE``), or None where there is none."""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError:  # the file system does not support it
        return None


def _named_temporary(directory: Path, name: str) -> tuple[int, str]:
    """A new private file ``.<name>.<random>.corrnet-tmp``, locked (see
    `remove_orphan_temporaries`)."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=directory)
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A cleaner may have taken the lock between mkstemp and flock and removed the file.
        try:
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return fd, tmp
        except FileNotFoundError:
            pass
        os.close(fd)


def _give_name(fd: int, directory: Path, name: str) -> str:
    """Link the unnamed file `fd` into `directory` under a locked temporary name; that name.
    (Through ``/proc/self/fd`` as a directory: ``os.link`` only follows the magic link with a
    ``src_dir_fd``.)"""
    proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        while True:
            tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
            try:
                os.link(str(fd), tmp, src_dir_fd=proc, follow_symlinks=True)
                return tmp
            except FileExistsError:
                continue
    finally:
        os.close(proc)


def _copy_to_named(fd: int, directory: Path, name: str) -> tuple[int, str]:
    """Copy the finished unnamed file `fd` (closed here) to a new locked named temporary;
    (its descriptor, its name)."""
    named_fd, tmp = _named_temporary(directory, name)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        while chunk := os.read(fd, _CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(named_fd, view):]
        os.fsync(named_fd)
        if hasattr(os, "fchmod"):
            os.fchmod(named_fd, new_file_mode())
    except BaseException:
        os.close(named_fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return named_fd, tmp


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path):
    """``with atomic_write(path) as file:`` write bytes to `file`; when the block ends without
    an exception they replace `path` in one step (``os.replace``), with the umask's
    permissions. On an exception, or if the process is killed, `path` is left as it was.

    Also removes the temporaries that killed writers left in that directory.
    """
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    remove_orphan_temporaries(directory)
    fd = _anonymous_file(directory)
    tmp = None
    if fd is None:
        fd, tmp = _named_temporary(directory, path.name)
    elif fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held before the file ever has a name
    try:
        with os.fdopen(fd, "wb", closefd=False) as file:
            yield file
            file.flush()
            os.fsync(fd)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, new_file_mode())
        if tmp is None:
            try:
                tmp = _give_name(fd, directory, path.name)
            except OSError:  # linking refused (no /proc, a sandbox): copy it to a named one
                anonymous, fd = fd, None  # _copy_to_named closes it
                fd, tmp = _copy_to_named(anonymous, directory, path.name)
        if fcntl is None:  # Windows cannot rename an open file
            os.close(fd)
            fd = None
            os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(directory)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if fd is not None:
            os.close(fd)  # releases the lock, after the name is gone


# -- saving -----------------------------------------------------------------------------------


def _encode(obj, arrays: list, depth: int = 0):
    """obj -> a JSON-able structure; arrays are appended to `arrays` and referenced by index."""
    if isinstance(obj, Tensor):
        arrays.append(obj.detach().numpy(force=True))  # a cuda tensor: its copy on the host
        if obj.is_cuda:
            return {"__tensor_on__": [len(arrays) - 1, str(obj.device)]}
        return {"__tensor__": len(arrays) - 1}
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("save: cannot store a NumPy array of dtype object (it would need a "
                            "pickle)")
        arrays.append(obj)
        return {"__array__": len(arrays) - 1}
    if isinstance(obj, np.generic):
        return _encode(obj.item(), arrays, depth)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (dict, tuple, list)) and depth >= MAX_DEPTH:
        raise ValueError(f"save: the object is nested more than {MAX_DEPTH} dicts, lists or "
                         "tuples deep")
    if isinstance(obj, dict):
        items = [[_encode(k, arrays, depth + 1), _encode(v, arrays, depth + 1)]
                 for k, v in obj.items()]
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, depth + 1) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, arrays, depth + 1) for v in obj]
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} (only tensors, "
                    "arrays, numbers, strings, None, and dicts, lists and tuples of them)")


def _npy_header(array: np.ndarray) -> bytes:
    """The ``.npy`` header of `array` (version 1.0, or 2.0 for a very long one)."""
    header = np.lib.format.header_data_from_array_1_0(array)
    buffer = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buffer, header)
    except ValueError:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def _write_array(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    """Stream `array` into the archive as the member `name` (a ``.npy``), in slices of at most
    `_CHUNK` bytes: a contiguous array is written from its own memory, another one through
    NumPy's buffered iterator, so no full copy is ever made."""
    header = _npy_header(array)
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = len(header) + array.nbytes  # lets zipfile choose ZIP64 up front
    with archive.open(info, "w") as member:
        member.write(header)
        if array.nbytes == 0:
            return
        if array.flags.c_contiguous or array.flags.f_contiguous:
            # the header says Fortran order exactly when the array is F- but not C-contiguous
            flat = memoryview(array.reshape(-1, order="A").view(np.uint8))
            for start in range(0, len(flat), _CHUNK):
                member.write(flat[start:start + _CHUNK])
        else:
            for chunk in np.nditer(array, flags=["external_loop", "buffered", "zerosize_ok"],
                                   buffersize=max(_CHUNK // array.itemsize, 1), order="C"):
                member.write(chunk.tobytes("C"))


def save(obj, path) -> None:
    """Write `obj` (a state dict, or any nesting of tensors, arrays, numbers and strings) to
    `path` as an .npz archive, atomically (see the module docstring)."""
    arrays: list = []
    structure = json.dumps({"corrnet": 1, "root": _encode(obj, arrays)}).encode()
    if len(structure) > MAX_STRUCTURE_BYTES:
        raise ValueError(f"save: the object's structure takes {len(structure)} bytes of JSON, "
                         f"more than the {MAX_STRUCTURE_BYTES} that load accepts; store large "
                         "collections of numbers as one tensor or array")
    with atomic_write(path) as file:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_STRUCTURE, structure)
            for i, array in enumerate(arrays):
                _write_array(archive, f"{i}.npy", array)


# -- loading ----------------------------------------------------------------------------------


class _Refusal(Exception):
    """A problem found in the file; `load` turns it into a LoadError naming the file."""


def _check_directory(archive: zipfile.ZipFile, file_size: int) -> dict[str, zipfile.ZipInfo]:
    """The members by name, after checking the archive's directory."""
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in archive.infolist():
        if info.filename in members:
            raise _Refusal(f"the member {info.filename!r} appears twice")
        members[info.filename] = info
        if info.flag_bits & 0x1:
            raise _Refusal(f"the member {info.filename!r} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED:
            raise _Refusal(f"the member {info.filename!r} is compressed (zip method "
                           f"{info.compress_type}); corrnet.save stores members uncompressed, "
                           "and a compressed one could expand far beyond the file's size")
        if info.compress_size != info.file_size:
            raise _Refusal(f"the member {info.filename!r} is stored uncompressed but its sizes "
                           f"differ ({info.compress_size} bytes stored, {info.file_size} "
                           "declared)")
        total += info.file_size
    if total > file_size:
        raise _Refusal(f"its members declare {total} bytes in all, more than the file's "
                       f"{file_size} bytes (overlapping or forged members)")
    if _STRUCTURE not in members:
        raise _Refusal(f"it has no {_STRUCTURE} member")
    if members[_STRUCTURE].file_size > MAX_STRUCTURE_BYTES:
        raise _Refusal(f"its {_STRUCTURE} takes {members[_STRUCTURE].file_size} bytes, more "
                       f"than the {MAX_STRUCTURE_BYTES} corrnet.save writes")
    return members


def _read_structure(archive: zipfile.ZipFile):
    try:
        header = json.loads(archive.read(_STRUCTURE).decode("utf-8"))
    except RecursionError:
        raise _Refusal(f"its {_STRUCTURE} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, too many int digits
        raise _Refusal(f"its {_STRUCTURE} is not valid JSON ({exc})") from None
    if (not isinstance(header, dict) or set(header) != {"corrnet", "root"}
            or type(header["corrnet"]) is not int):
        raise _Refusal(f"its {_STRUCTURE} is not a corrnet structure (expected an object with "
                       "the keys 'corrnet' and 'root')")
    if header["corrnet"] != 1:
        raise _Refusal(f"it is in corrnet file format {header['corrnet']}; this version reads "
                       "format 1")
    return header["root"]


_TAGS = ("__tensor__", "__tensor_on__", "__array__", "__tuple__", "__dict__")
_CUDA_LOCATION = re.compile(r"cuda:(0|[1-9][0-9]{0,5})")  # where a saved cuda tensor was


def _collect_references(root) -> dict[int, str]:
    """Check the structure's form; {array index: "tensor" or "array"} for every reference.
    Iterative, so that no nesting can exhaust the stack."""
    references: dict[int, str] = {}
    stack = [(root, "root", 0)]
    while stack:
        node, where, depth = stack.pop()
        if node is None or isinstance(node, (bool, int, float, str)):
            continue
        if depth >= MAX_DEPTH:
            raise _Refusal(f"the structure is nested more than {MAX_DEPTH} containers deep "
                           f"(at {where})")
        if isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))
            continue
        # JSON objects are only ever tagged nodes: {"<tag>": value}
        if len(node) != 1 or next(iter(node)) not in _TAGS:
            raise _Refusal(f"the structure has an unknown object at {where} (keys "
                           f"{sorted(node)[:5]})")
        tag, value = next(iter(node.items()))
        if tag == "__tensor_on__":  # [array index, "cuda:N"]
            if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str)
                    or not _CUDA_LOCATION.fullmatch(value[1])):
                raise _Refusal(f"the structure's {tag} at {where} is {str(value)[:80]}, not an "
                               "[array index, 'cuda:N'] pair")
            value = value[0]
        if tag in ("__tensor__", "__tensor_on__", "__array__"):
            if type(value) is not int or value < 0:
                raise _Refusal(f"the structure's {tag} reference at {where} is {value!r}, not "
                               "an array index")
            if value in references:
                raise _Refusal(f"the structure refers to array {value} twice (again at {where})")
            references[value] = "array" if tag == "__array__" else "tensor"
        elif not isinstance(value, list):
            raise _Refusal(f"the structure's {tag} at {where} is not a list")
        elif tag == "__tuple__":
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        else:
            for i, pair in enumerate(value):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise _Refusal(f"the structure's dict at {where} has an item {i} that is "
                                   "not a [key, value] pair")
                stack.append((pair[0], f"{where} key {i}", depth + 1))
                stack.append((pair[1], f"{where} value {i}", depth + 1))
    if set(references) != set(range(len(references))):
        missing = sorted(set(range(len(references))) - set(references))[:5]
        raise _Refusal(f"the structure's array references are not 0..{len(references) - 1} "
                       f"(missing {missing})")
    return references


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, kind: str) -> np.ndarray:
    """The array in one ``.npy`` member, checked against the directory before allocation."""
    name = info.filename
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise _Refusal(f"the member {name!r} is .npy version {version}, not 1.0 or 2.0")
        except (ValueError, SyntaxError, TypeError, KeyError) as exc:
            raise _Refusal(f"the member {name!r} is not a valid .npy array ({exc})") from None
        header_size = member.tell()
        if dtype.hasobject:
            raise _Refusal(f"the member {name!r} holds Python objects (dtype {dtype}), which "
                           "only a pickle could restore; corrnet never loads pickles")
        if len(shape) > MAX_NDIM or any(type(n) is not int or n < 0 for n in shape):
            raise _Refusal(f"the member {name!r} has an invalid shape {shape!r}")
        if kind == "tensor" and dtype.newbyteorder("=") not in _BY_NUMPY:
            raise _Refusal(f"the tensor in member {name!r} has dtype {dtype}, which corrnet "
                           "tensors do not support")
        data_size = math.prod(shape) * dtype.itemsize
        if header_size + data_size != info.file_size:
            raise _Refusal(f"the member {name!r} declares a {shape} {dtype} array "
                           f"({data_size} bytes of data after a {header_size}-byte header) but "
                           f"the archive's directory gives it {info.file_size} bytes")
        array = np.empty(shape, dtype, order="F" if fortran else "C")
        if data_size:
            target = memoryview(array.reshape(-1, order="A").view(np.uint8))
            done = 0
            while done < data_size:
                count = member.readinto(target[done:done + _READ_CHUNK])
                if not count:
                    raise _Refusal(f"the member {name!r} ends after {done} of its {data_size} "
                                   "bytes of data")
                done += count
        if member.read(1):  # also makes zipfile check the CRC-32 at the end of the member
            raise _Refusal(f"the member {name!r} has data after its array")
    if not dtype.isnative and dtype.fields is None:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def _decode(node, arrays: dict, placements: list):
    """The object a checked structure describes (each array is used once, without a copy);
    every tensor is made on the CPU and listed in `placements` with its saved location."""
    if isinstance(node, list):
        return [_decode(v, arrays, placements) for v in node]
    if isinstance(node, dict):
        tag, value = next(iter(node.items()))
        if tag in ("__tensor__", "__tensor_on__"):
            index, location = (value, "cpu") if tag == "__tensor__" else value
            tensor = from_numpy(arrays[index])
            placements.append((tensor, location))
            return tensor
        if tag == "__array__":
            return arrays[value]
        if tag == "__tuple__":
            return tuple(_decode(v, arrays, placements) for v in value)
        result = {}
        for i, (key, item) in enumerate(value):
            key = _decode(key, arrays, placements)
            try:
                hash(key)
            except TypeError:
                raise _Refusal(f"the structure has a dict key of type {type(key).__name__} "
                               f"(item {i}), which cannot be a key") from None
            result[key] = _decode(item, arrays, placements)
        return result
    return node


# Everything zipfile and the .npy reader may raise on a damaged file.
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError,
           IndexError, TypeError, OverflowError, NotImplementedError, UnicodeDecodeError)


def load(path, map_location=None, weights_only=True):
    """Read what `save` wrote. Tensors come back on the device they were saved from (``save``
    writes a cuda tensor's data and its device), or where `map_location` sends them, as
    PyTorch's: a device or string (every tensor there: ``'cpu'`` loads a GPU's save on a
    machine without one), a dict from saved location to location (``{'cuda:1': 'cuda:0'}``;
    others stay), or a callable ``f(tensor_on_the_cpu, location)`` returning the tensor to
    use, or None for the default.

    Raises `LoadError` (a RuntimeError) naming the file and the problem when the file is not
    one `save` could have written; see the module docstring for what is checked. Loading a
    cuda tensor without CUDA (or on a device beyond the count) raises a RuntimeError that
    names ``map_location``. `weights_only` is accepted for PyTorch compatibility; the file
    format holds data only, so loading is always as safe as ``weights_only=True``.

    >>> corrnet.save({"w": corrnet.ones(2)}, "model.npz")
    >>> corrnet.load("model.npz", map_location="cpu")["w"].device
    device(type='cpu')
    """
    restore = _restorer(map_location)
    path = Path(path)
    try:
        with open(path, "rb") as file, zipfile.ZipFile(file) as archive:
            members = _check_directory(archive, os.fstat(file.fileno()).st_size)
            root = _read_structure(archive)
            references = _collect_references(root)
            expected = {_STRUCTURE} | {f"{i}.npy" for i in references}
            if set(members) != expected:
                extra = sorted(set(members) - expected)[:5]
                missing = sorted(expected - set(members))[:5]
                raise _Refusal(f"its members do not match its structure (missing {missing}, "
                               f"unexpected {extra})")
            arrays = {i: _read_array(archive, members[f"{i}.npy"], kind)
                      for i, kind in references.items()}
            placements: list = []
            result = _decode(root, arrays, placements)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except _Refusal as exc:
        raise LoadError(f"load: {path} is not a file corrnet.save wrote, or it was damaged or "
                        f"tampered with: {exc}") from None
    except _DAMAGE as exc:
        image_format = _image_format(path)
        if image_format is not None:
            raise LoadError(f"load: {path} is a {image_format} image, not a corrnet save file: "
                            f"read it with corrnet.io.read_image({str(path)!r})") from None
        raise LoadError(f"load: {path} is not a corrnet save file or is damaged "
                        f"({type(exc).__name__}: {exc}); re-create it with corrnet.save") from exc
    for tensor, location in placements:
        placed = restore(tensor, location)
        if placed is not tensor:
            tensor._data = placed._data
    return result


def _restorer(map_location):
    """PyTorch's ``map_location`` as a function (tensor on the CPU, saved location) -> the
    tensor where it belongs; refuses a `map_location` of another type before any reading."""
    if map_location is None:
        return _default_restore
    if isinstance(map_location, dict):
        mapping = {}
        for saved, target in map_location.items():
            if not isinstance(saved, str) or not isinstance(target, (str, device)):
                raise TypeError(f"load: map_location as a dict maps saved locations (strings "
                                f"such as 'cuda:1') to devices, got the item {saved!r}: "
                                f"{target!r}")
            mapping[saved] = str(device(target))

        return lambda tensor, location: _default_restore(tensor, mapping.get(location, location))
    if isinstance(map_location, (str, device)):
        target = str(device(map_location))
        return lambda tensor, location: _default_restore(tensor, target)
    if callable(map_location):
        def restore(tensor, location):
            result = map_location(tensor, location)
            if result is None:
                return _default_restore(tensor, location)
            if not isinstance(result, Tensor):
                raise TypeError(f"load: map_location({location!r}) returned a "
                                f"{type(result).__name__}; expected a tensor or None")
            return result

        return restore
    raise TypeError(f"load: map_location must be a string, a corrnet.device, a dict or a "
                    f"callable, got {type(map_location).__name__}")


def _default_restore(tensor: Tensor, location: str) -> Tensor:
    """`tensor` (on the CPU) on the device `location` names, with PyTorch's errors."""
    where = device(location)
    if where.type == "cpu":
        return tensor
    if not devices.is_available():
        raise RuntimeError("load: Attempting to deserialize object on a CUDA device but "
                           "corrnet.cuda.is_available() is False. If you are running on a "
                           "CPU-only machine, please use corrnet.load with "
                           "map_location='cpu' to map your storages to the CPU.")
    index = devices.current_device() if where.index is None else where.index
    if index >= devices.device_count():
        raise RuntimeError(f"load: Attempting to deserialize object on CUDA device {index} but "
                           f"corrnet.cuda.device_count() is {devices.device_count()}. Please "
                           "use corrnet.load with map_location to map your storages to an "
                           f"existing device (e.g. map_location={{'cuda:{index}': 'cuda:0'}}).")
    return tensor.to(devices.device("cuda", index))


# the first bytes of the image files people hand to `load` by mistake
_IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF",
                     b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"BM": "BMP"}


def _image_format(path) -> str | None:
    """'PNG', 'JPEG', ... when the file starts as an image file does, else None."""
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError:
        return None
    return next((name for signature, name in _IMAGE_SIGNATURES.items()
                 if head.startswith(signature)), None)
