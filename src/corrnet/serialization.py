"""Saving and loading state dicts: ``corrnet.save(obj, path)`` / ``corrnet.load(path)``.

The file is a NumPy ``.npz`` archive, never a pickle: every tensor or array is one ``.npy``
member, and one more member, ``structure.json``, holds the nesting (dicts, lists, tuples,
numbers, strings, None) with a reference to each array. Loading never executes code from the
file (``allow_pickle=False``). Writes are atomic: the archive is written to a temporary file in
the same directory, flushed to disk and then renamed over the target, so an interrupted save
leaves the previous file intact.

>>> corrnet.save({"weight": corrnet.ones(2, 2), "epoch": 3}, "model.npz")
>>> corrnet.load("model.npz")["epoch"]
3
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .tensor import Tensor, from_numpy

_STRUCTURE = "structure.json"


def _encode(obj, arrays: list):
    """obj -> a JSON-able structure; arrays are appended to `arrays` and referenced by index."""
    if isinstance(obj, Tensor):
        arrays.append(obj.detach().numpy())
        return {"__tensor__": len(arrays) - 1}
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        return {"__array__": len(arrays) - 1}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        items = [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, arrays) for v in obj]
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} (only tensors, "
                    "arrays, numbers, strings, None, and dicts, lists and tuples of them)")


def _decode(obj, arrays):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return from_numpy(np.array(arrays[obj["__tensor__"]]))
        if "__array__" in obj:
            return np.array(arrays[obj["__array__"]])
        if "__tuple__" in obj:
            return tuple(_decode(v, arrays) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["__dict__"]}
    return obj


def new_file_mode() -> int:
    """The permissions a newly created file gets under the process umask (temporary files
    are created private; a finished one is given these before it is renamed into place)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save(obj, path) -> None:
    """Write `obj` (a state dict, or any nesting of tensors, arrays, numbers and strings) to
    `path` as an .npz archive, atomically."""
    path = Path(path)
    arrays: list = []
    structure = _encode(obj, arrays)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr(_STRUCTURE, json.dumps({"corrnet": 1, "root": structure}))
                for i, array in enumerate(arrays):
                    buffer = io.BytesIO()
                    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                    archive.writestr(f"{i}.npy", buffer.getvalue())
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp_name, new_file_mode())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def load(path, map_location=None, weights_only=True):
    """Read what `save` wrote. Tensors come back as corrnet tensors on the CPU.

    `map_location` and `weights_only` are accepted for PyTorch compatibility; the file format
    holds data only, so loading is always as safe as ``weights_only=True``.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if _STRUCTURE not in names:
                raise ValueError("no structure.json member")
            header = json.loads(archive.read(_STRUCTURE))
            count = sum(1 for name in names if name.endswith(".npy"))
            arrays = [np.load(io.BytesIO(archive.read(f"{i}.npy")), allow_pickle=False)
                      for i in range(count)]
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"load: {path} is not a corrnet save file or is damaged ({exc}); "
                           "re-create it with corrnet.save") from exc
    return _decode(header["root"], arrays)
