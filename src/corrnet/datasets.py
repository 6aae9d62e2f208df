"""Fashion-MNIST from its original IDX files (``corrnet.datasets`` plays torchvision's part).

    from corrnet import datasets
    train = datasets.FashionMNIST(train=True)            # 60000 samples
    train_iter, test_iter = datasets.load_data_fashion_mnist(256)

Where the four files are looked for, in this order (each file is taken from the first folder
that holds it, gzipped or not):

1. ``root=`` if given,
2. ``$CORRNET_DATA`` if set,
3. the user cache folder: ``$XDG_CACHE_HOME/corrnet`` (``~/.cache/corrnet`` when
   ``XDG_CACHE_HOME`` is unset or not absolute),

each of them as given, with a ``fashion-mnist/`` subfolder and with torchvision's
``FashionMNIST/raw/`` subfolder; then

4. ``/usr/share/datasets/fashion-mnist`` (Debian's package ``dataset-fashion-mnist``).

Otherwise, with ``download=True`` (and ``$CORRNET_NO_DOWNLOAD`` unset), the missing files are
downloaded from the dataset's public mirror (``MIRRORS``) into
``<root or $CORRNET_DATA or the cache folder>/fashion-mnist/``.

Every file is checked against the SHA-256 of its *decompressed* content (``SHA256``), so the
Debian copies, whose gzip headers differ from the originals, pass too. A download goes to a
temporary file in the target folder, is verified, and only then renamed into place
(``os.replace``, see ``corrnet.serialization.atomic_write``): an interrupted or damaged
download never leaves a file under the final name.

Nothing is trusted before it is checked, and no file can make corrnet use more memory than
the data set itself: each file's content size is known (``SIZES``), an IDX header is checked
against it (and against the file's size, for any IDX file ``read_idx`` reads) before the array
is allocated, gzip data is decompressed in bounded pieces straight into that array and never
beyond its size (a gzip bomb fails after at most the file's known size), and a download stops
as soon as the server sends more than the file can take or takes longer than
``DOWNLOAD_TIMEOUT`` plus its size over ``DOWNLOAD_MIN_RATE``.

Files already present are verified once per process, and the parsed arrays are kept in memory,
so making a second dataset of the same split is immediate.

A corrupt, truncated or foreign file raises ``DataFileError``, naming the file, what is wrong
with it and what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import math
import operator
import os
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .serialization import MAX_NDIM, atomic_write
from .tensor import Tensor, from_numpy
from .utils.data import DataLoader, Dataset

__all__ = [
    "DataFileError",
    "FashionMNIST",
    "cache_dir",
    "load_data_fashion_mnist",
    "parse_idx",
    "read_idx",
    "search_dirs",
]

#: SHA-256 of each file's decompressed content (the IDX bytes). Computed from the original
#: files (whose md5 match the official table) and equal for Debian's re-headered copies.
SHA256 = {
    "train-images-idx3-ubyte.gz":
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz":
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz":
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz":
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: The size of each file's decompressed content (the IDX bytes): a file is never decompressed
#: beyond it, and a download stops there.
SIZES = {
    "train-images-idx3-ubyte.gz": 16 + 60000 * 28 * 28,
    "train-labels-idx1-ubyte.gz": 8 + 60000,
    "t10k-images-idx3-ubyte.gz": 16 + 10000 * 28 * 28,
    "t10k-labels-idx1-ubyte.gz": 8 + 10000,
}

#: The dataset's public mirrors, tried in order: Zalando Research's GitHub repository (https),
#: then its S3 bucket (whose website endpoint serves plain http only; every file is checked
#: against `SHA256` whichever mirror it comes from). A file's URL is the mirror followed by
#: its name.
MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
SUBFOLDERS = ("", "fashion-mnist", os.path.join("FashionMNIST", "raw"))
DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a download gives up
#: Bytes per second a download must average: a file gets DOWNLOAD_TIMEOUT seconds plus its
#: largest size over this rate, after which it is stopped (a server that trickles forever).
DOWNLOAD_MIN_RATE = 16 * 1024
#: Deflate cannot expand data more than about 1032 times: an IDX header that describes more
#: data than that times its gzip file's size is damaged (refused before allocating).
MAX_GZIP_RATIO = 1032
_CHUNK = 1 << 20  # bytes read or decompressed at a time
_EXTRA = 1 << 16  # bytes read past the end of the content to say how many follow

_SPLITS = {
    True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
                   0x0E: "float64"}

_urlopen = urllib.request.urlopen  # replaced by tests
_verified: dict[tuple, np.ndarray] = {}  # (path, size, mtime_ns, sha256) -> parsed array


class DataFileError(RuntimeError):
    """A data file is damaged, truncated or not the file it should be."""


# -- where the files are ----------------------------------------------------------------------


def cache_dir() -> Path:
    """corrnet's user cache folder: ``$XDG_CACHE_HOME/corrnet``, else ``~/.cache/corrnet``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "corrnet"


def _bases(root=None) -> list[tuple[Path, str]]:
    bases = []
    if root is not None:
        bases.append((Path(os.fspath(root)).expanduser(), "root="))
    env = os.environ.get("CORRNET_DATA", "")
    if env:
        bases.append((Path(env).expanduser(), "$CORRNET_DATA"))
    bases.append((cache_dir(), "user cache"))
    return bases


def search_dirs(root=None) -> list[tuple[Path, str]]:
    """The folders searched for the files, in order, each with where it comes from."""
    dirs = [(base / sub if sub else base, why) for base, why in _bases(root) for sub in SUBFOLDERS]
    dirs.append((Path(DEBIAN_DIR), "Debian package dataset-fashion-mnist"))
    return dirs


def _download_dir(root=None) -> Path:
    return _bases(root)[0][0] / "fashion-mnist"


def _find(name: str, root=None) -> Path | None:
    for folder, _ in search_dirs(root):
        for candidate in (folder / name, folder / name[: -len(".gz")]):
            if candidate.is_file():
                return candidate
    return None


# -- IDX files --------------------------------------------------------------------------------


def _fix_hint(path) -> str:
    if str(path).startswith(DEBIAN_DIR):
        return ("Reinstall Debian's package (apt-get install --reinstall dataset-fashion-mnist), "
                "or pass root= (or set $CORRNET_DATA) to a folder with intact copies.")
    if Path(path).name in SHA256 or Path(path).name + ".gz" in SHA256:
        return ("Delete this file and run again with download=True to fetch a fresh copy, or "
                "pass root= (or set $CORRNET_DATA) to a folder with intact copies of the four "
                "Fashion-MNIST files.")
    return "Replace it with an intact copy."


def _error(path, problem: str) -> DataFileError:
    return DataFileError(f"{path}: {problem}. {_fix_hint(path)}")


class _Content:
    """The content of a file, gunzipped on the fly when it is gzip, read in bounded pieces:
    ``read(n)`` never decompresses more than `n` bytes, so a gzip bomb costs no memory
    beyond what the caller asked for."""

    def __init__(self, file, path):
        self.file, self.path = file, path
        self.gzipped = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gzipped else None
        self.pending = b""  # compressed bytes read from the file, not yet decompressed

    def read(self, n: int) -> bytes:
        """Up to `n` bytes of content (fewer only where the content ends)."""
        if not self.gzipped:
            return self.file.read(n)
        pieces, got = [], 0
        while got < n and not self.inflater.eof:
            if not self.pending:
                self.pending = self.file.read(_CHUNK // 4)
                if not self.pending:
                    break
            try:
                piece = self.inflater.decompress(self.pending, n - got)
            except zlib.error as err:
                raise _error(self.path, f"the gzip data is corrupt ({err})") from None
            self.pending = self.inflater.unconsumed_tail
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def readinto(self, target: memoryview) -> int:
        """Fill `target` (bytes) from the content; how many bytes it got."""
        done = 0
        while done < len(target):
            piece = self.read(min(_CHUNK, len(target) - done))
            if not piece:
                break
            target[done:done + len(piece)] = piece
            done += len(piece)
        return done

    def check_gzip_complete(self) -> None:
        """Where the content has ended: raise if a gzip stream ended before its end."""
        if self.gzipped and not self.inflater.eof:
            raise _error(self.path, f"the gzip data is truncated (the file ends after "
                                    f"{self.file.tell()} bytes, before the end of the "
                                    "compressed stream)")

    def check_end(self, extra_message) -> None:
        """Check that the content ends here and that a gzip stream is complete, with nothing
        after it. `extra_message(n)` describes `n` more bytes of content."""
        extra = self.read(_EXTRA)
        if extra:
            raise _error(self.path, extra_message(len(extra)))
        if not self.gzipped:
            return
        self.check_gzip_complete()
        trailing = len(self.inflater.unused_data) + len(self.file.read(_EXTRA))
        if trailing:
            raise _error(self.path, f"{trailing} unexpected bytes follow the gzip data")


def _read_idx_header(read, path, expected_magic):
    """(dims, dtype, header bytes) from the IDX header `read(n)` delivers; checks the magic
    number and the number of dimensions before anything else is read."""
    head = read(4)
    if len(head) < 4:
        raise _error(path, f"it holds {len(head)} bytes, too few for an IDX header")
    magic = int.from_bytes(head, "big")
    code, ndim = head[2], head[3]
    if head[0] or head[1] or code not in _IDX_DTYPES:
        raise _error(path, f"it does not start with an IDX magic number (its first four bytes "
                           f"are 0x{magic:08x}); it is not an IDX file")
    if expected_magic is not None and magic != expected_magic:
        raise _error(path, f"its IDX magic number is {magic} (a {ndim}-dimensional "
                           f"{_IDX_TYPE_NAMES[code]} array), expected {expected_magic} (a "
                           f"{expected_magic & 0xFF}-dimensional "
                           f"{_IDX_TYPE_NAMES[(expected_magic >> 8) & 0xFF]} array)")
    if ndim > MAX_NDIM:
        raise _error(path, f"its IDX header announces {ndim} dimensions; arrays have at most "
                           f"{MAX_NDIM}")
    sizes = read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise _error(path, f"the header announces {ndim} dimensions but the content ends after "
                           f"{4 + len(sizes)} bytes")
    dims = tuple(int.from_bytes(sizes[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    return dims, np.dtype(_IDX_DTYPES[code]), head + sizes


def _describe(dims, dtype) -> str:
    return f"{'x'.join(map(str, dims)) or 'scalar'} {dtype.newbyteorder('=').name} array"


def parse_idx(content: bytes, path="<bytes>", expected_magic: int | None = None) -> np.ndarray:
    """The array stored in IDX bytes: magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32
    sizes, then the values, big-endian. Returned in native byte order (read-only for bytes)."""
    stream = io.BytesIO(content)
    dims, dtype, header = _read_idx_header(stream.read, path, expected_magic)
    header = len(header)
    expected, actual = math.prod(dims) * dtype.itemsize, len(content) - header
    if actual < expected:
        raise _error(path, f"it is truncated: the header describes a {_describe(dims, dtype)} "
                           f"({expected} bytes of data) but only {actual} bytes follow the "
                           "header")
    if actual > expected:
        raise _error(path, f"{actual - expected} bytes follow the {_describe(dims, dtype)} "
                           "that the header describes")
    array = np.frombuffer(content, dtype, math.prod(dims), header).reshape(dims)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _read_idx_file(path, expected_magic=None, expected_size=None, digest=None) -> np.ndarray:
    """The array in an IDX file (gzipped or not), streamed straight into its final memory.

    Everything is checked before the array is allocated: the header's shape must fit in the
    file (exactly, uncompressed; at most `MAX_GZIP_RATIO` times the file's size, gzipped) and,
    when `expected_size` is given, the content must be exactly that many bytes; a gzip stream
    is never decompressed beyond what the header describes. `digest` (a hashlib object) is
    updated with the content."""
    with open(path, "rb") as file:
        file_size = os.fstat(file.fileno()).st_size
        content = _Content(file, path)
        dims, dtype, header_bytes = _read_idx_header(content.read, path, expected_magic)
        header = len(header_bytes)
        data_size = math.prod(dims) * dtype.itemsize
        what = f"the header describes a {_describe(dims, dtype)} ({data_size} bytes of data)"
        if expected_size is not None and header + data_size != expected_size:
            raise _error(path, f"{what}, but this file's content is {expected_size} bytes "
                               f"({expected_size - header} bytes of data)")
        if not content.gzipped and data_size > file_size - header:
            raise _error(path, f"it is truncated: {what} but only {file_size - header} bytes "
                               "follow the header")
        if content.gzipped and data_size > MAX_GZIP_RATIO * file_size:
            raise _error(path, f"{what}, more than a gzip file of {file_size} bytes can hold "
                               f"(at most {MAX_GZIP_RATIO}x); the header is damaged")
        array = np.empty(dims, dtype)
        target = memoryview(array.reshape(-1).view(np.uint8)) if data_size else memoryview(b"")
        got = content.readinto(target)
        if got < data_size:
            content.check_gzip_complete()
            raise _error(path, f"it is truncated: {what} but only {got} bytes follow the header")
        content.check_end(lambda n: f"{'at least ' if n >= _EXTRA else ''}{n} bytes follow "
                                    f"the {_describe(dims, dtype)} that the header describes")
    if digest is not None:
        digest.update(header_bytes)
        digest.update(target)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """The array in an IDX file, gzipped (``.gz``) or not; see `parse_idx`. The file is
    streamed: the header is checked against the file's size before anything is allocated,
    and a gzip stream is never decompressed beyond the size its header describes."""
    return _read_idx_file(path, expected_magic)


def _load_verified(path: Path, name: str, expected_magic: int) -> np.ndarray:
    """Parse `path` and check its content's size and SHA-256; once per process for an
    unchanged file. The content is never decompressed beyond the file's known size."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, SHA256[name])
    if key in _verified:
        return _verified[key]
    digest = hashlib.sha256()
    array = _read_idx_file(path, expected_magic, SIZES[name], digest)
    if digest.hexdigest() != SHA256[name]:
        raise _error(path, f"its content is not the original {name} (SHA-256 of the "
                           f"decompressed content is {digest.hexdigest()}, expected "
                           f"{SHA256[name]})")
    array.flags.writeable = False
    _verified[key] = array
    return array


# -- download ---------------------------------------------------------------------------------


def _max_download_size(name: str) -> int:
    """The most bytes a gzip file of `name`'s content can take (stored blocks and headers)."""
    return SIZES[name] + SIZES[name] // 100 + 4096


def _download_one(url: str, dest: Path, name: str) -> None:
    """Stream `url` into `dest` (atomically), checking as it comes that the compressed size
    stays within `_max_download_size`, that the content never exceeds `SIZES` (the
    decompression is capped), and the time within the deadline; then the SHA-256."""
    limit, size = SIZES[name], _max_download_size(name)
    allowed = DOWNLOAD_TIMEOUT + size / DOWNLOAD_MIN_RATE
    deadline = time.monotonic() + allowed
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    digest, received, produced = hashlib.sha256(), 0, 0
    with atomic_write(dest) as out, _urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        headers = getattr(response, "headers", None)
        length = headers.get("Content-Length") if headers is not None else None
        if length is not None and length.strip().isdigit() and int(length) > size:
            raise DataFileError(f"{url}: the server announces {int(length)} bytes, more than "
                                f"the {size} bytes {name} can take; nothing was downloaded")
        # an HTTP response's read1 returns what has arrived, so the deadline is checked often
        read = response.read1 if isinstance(response, http.client.HTTPResponse) else response.read
        while True:
            if time.monotonic() > deadline:
                raise DataFileError(f"{url}: the download took longer than {allowed:.0f} s "
                                    f"({received} bytes received); stopped")
            chunk = read(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            pending = chunk
            while pending and not inflater.eof:
                try:
                    # never more than one byte beyond the known size
                    piece = inflater.decompress(pending, limit + 1 - produced)
                except zlib.error as err:
                    raise DataFileError(f"{url}: the downloaded data is not valid gzip "
                                        f"({err})") from None
                pending = inflater.unconsumed_tail
                produced += len(piece)
                if produced > limit:
                    raise DataFileError(f"{url}: the content is larger than the {limit} bytes "
                                        f"of {name}; stopped")
                digest.update(piece)
            if inflater.eof and (inflater.unused_data or pending):
                raise DataFileError(f"{url}: unexpected data follows the gzip stream")
            # checked after the content, so that a bomb is named as one however the bytes
            # arrive in chunks
            if received > size:
                raise DataFileError(f"{url}: the server sent more than the {size} bytes {name} "
                                    "can take; stopped")
            out.write(chunk)
        if not inflater.eof:
            raise DataFileError(f"{url}: the download is incomplete ({received} bytes "
                                "received, the gzip stream does not end)")
        if digest.hexdigest() != SHA256[name]:
            raise DataFileError(f"{url}: SHA-256 of the decompressed content is "
                                f"{digest.hexdigest()}, expected {SHA256[name]}")


def download(name: str, directory, mirrors=None) -> Path:
    """Download one of the four files into `directory`, verified, atomically; its path."""
    if name not in SHA256:
        raise ValueError(f"download: unknown file {name!r}; expected one of {sorted(SHA256)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / name
    failures = []
    for mirror in MIRRORS if mirrors is None else mirrors:
        url = mirror.rstrip("/") + "/" + name
        print(f"corrnet: downloading {url} to {dest}", file=sys.stderr)
        try:
            _download_one(url, dest, name)
            return dest
        except (OSError, urllib.error.URLError, http.client.HTTPException, DataFileError,
                ValueError) as err:
            # a DataFileError names the URL already
            failures.append(f"  {err}" if isinstance(err, DataFileError) else f"  {url}: {err}")
    raise DataFileError(
        f"could not download {name} (nothing was saved to {dest}):\n" + "\n".join(failures)
        + "\nCheck the network connection and run again, or fetch the four .gz files yourself "
        "and pass root= (or set $CORRNET_DATA) to their folder."
    )


def downloads_disabled() -> bool:
    """True when ``$CORRNET_NO_DOWNLOAD`` is set (to anything but "" or "0"): files that are
    not found are then never downloaded, as with ``download=False`` (offline machines, CI)."""
    return os.environ.get("CORRNET_NO_DOWNLOAD", "") not in ("", "0")


def missing_files(root=None) -> list[str]:
    """The names of the four Fashion-MNIST files that are in none of `search_dirs(root)`."""
    return [name for name in SHA256 if _find(name, root) is None]


def where_looked(root=None) -> str:
    """One line: the folders searched for the files (see `search_dirs`)."""
    bases = [f"{base} ({why})" for base, why in _bases(root)]
    subfolders = " and ".join(f"{sub}/" for sub in SUBFOLDERS if sub)
    return ", ".join(bases) + f" (each also with {subfolders}), {DEBIAN_DIR}"


def _locate(name: str, root, allow_download: bool) -> Path:
    path = _find(name, root)
    if path is not None:
        return path
    if allow_download and not downloads_disabled():
        return download(name, _download_dir(root))
    looked = "\n".join(f"  {folder}  ({why})" for folder, why in search_dirs(root))
    raise FileNotFoundError(
        f"Fashion-MNIST file {name} was not found. Looked in:\n{looked}\n"
        f"Pass download=True to fetch it into {_download_dir(root)}, or put the four files in "
        "a folder and pass root= or set $CORRNET_DATA to it, or install Debian's package "
        "dataset-fashion-mnist."
    )


def _load_split(train: bool, root=None, download: bool = True):
    """(images uint8 (N, 28, 28), labels uint8 (N,)) as read-only NumPy arrays."""
    image_name, label_name = _SPLITS[bool(train)]
    image_path = _locate(image_name, root, download)
    label_path = _locate(label_name, root, download)
    images = _load_verified(image_path, image_name, _IMAGES_MAGIC)
    labels = _load_verified(label_path, label_name, _LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(
            f"{image_path} holds {images.shape[0]} images but {label_path} holds "
            f"{labels.shape[0]} labels. {_fix_hint(image_path)}"
        )
    return images, labels


# -- resizing (as torchvision's Resize on a PIL image, then ToTensor) -------------------------


def _resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) weights of PIL's bilinear resampling (antialiased when shrinking),
    in PIL's 22-bit fixed point."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filterscale
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        x = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((x - center + 0.5) / filterscale), 0.0, None)
        weights[i, lo:hi] = w / w.sum()
    precision = 1 << 22
    return np.trunc(weights * precision + np.where(weights >= 0, 0.5, -0.5))


def _resample_u8(values: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """One PIL pass along `axis`: fixed-point sums rounded and clipped to 0..255 (exact in
    float64: every product and sum is an integer below 2**53)."""
    moved = np.moveaxis(values.astype(np.float64), axis, -1) @ weights.T
    out = np.clip(np.floor((moved + (1 << 21)) / (1 << 22)), 0, 255)
    return np.moveaxis(out, -1, axis)


def _size_pair(resize):
    if resize is None:
        return None
    if isinstance(resize, (tuple, list)) and len(resize) == 2:
        h, w = (operator.index(v) for v in resize)
    else:
        try:
            h = w = operator.index(resize)
        except TypeError:
            raise TypeError(f"FashionMNIST: resize must be None, an int or a pair (height, "
                            f"width), got {resize!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"FashionMNIST: resize must be positive, got {resize!r}")
    return h, w


# -- the dataset ------------------------------------------------------------------------------


class FashionMNIST(Dataset):
    """Fashion-MNIST: 28x28 grey images of 10 kinds of clothing, 60000 to train, 10000 to test.

    ``dataset[i]`` is ``(image, label)``: a float32 tensor (1, H, W) with values in [0, 1]
    (torchvision's ``ToTensor`` convention) and an int; a ``DataLoader`` batches them into
    (N, 1, H, W) float32 and (N,) int64. ``resize`` (an int or (height, width)) resizes as
    torchvision's ``Resize`` on the PIL image does (bilinear, antialiased when shrinking,
    rounded to 8 bits) before the conversion. ``transform`` / ``target_transform`` are applied
    to that tensor and to the int label.

    As in torchvision, ``data`` holds the raw images (uint8, (N, 28, 28)) and ``targets`` the
    labels (int64, (N,)); ``classes`` are the names of the labels. See the module docstring for
    where the files are looked for and how they are downloaded and verified.
    """

    classes = ["t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot"]

    def __init__(self, root=None, train=True, download=True, transform=None,
                 target_transform=None, resize=None):
        self.root, self.train = root, bool(train)
        self.transform, self.target_transform = transform, target_transform
        self.resize = _size_pair(resize)
        images, labels = _load_split(self.train, root, download)
        self._images = images
        self._labels = labels.astype(np.int64)
        self.data = from_numpy(images)
        self.targets = from_numpy(self._labels)
        if self.resize is None:
            self._weights = None
        else:
            self._weights = (_resize_weights(images.shape[1], self.resize[0]),
                             _resize_weights(images.shape[2], self.resize[1]))

    @property
    def class_to_idx(self) -> dict:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return self._images.shape[0]

    def _to_float(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W) -> float32 (B, 1, H', W') in [0, 1]."""
        if self._weights is not None:
            rows, cols = self._weights
            images = _resample_u8(_resample_u8(images, cols, 2), rows, 1)
        # one float32 allocation: uint8 -> float32, then the division (torchvision's ToTensor)
        return np.divide(images[:, None], np.float32(255), dtype=np.float32)

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.item()
        index = operator.index(index)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"FashionMNIST: index {index} out of range for {n} samples")
        index %= n
        image = from_numpy(self._to_float(self._images[index:index + 1])[0])
        target = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def _get_batch(self, indices: np.ndarray):
        if self.transform is not None or self.target_transform is not None:
            return NotImplemented
        return [from_numpy(self._to_float(self._images[indices])),
                from_numpy(self._labels[indices])]

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        size = "" if self.resize is None else f", resize={self.resize}"
        return f"FashionMNIST(split={split}, samples={len(self)}{size})"


def load_data_fashion_mnist(batch_size, resize=None, root=None, download=True):
    """``(train_iter, test_iter)``: DataLoaders over Fashion-MNIST, the training one shuffled
    (with corrnet's global generator), as D2L's function of the same name."""
    train = FashionMNIST(root=root, train=True, download=download, resize=resize)
    test = FashionMNIST(root=root, train=False, download=download, resize=resize)
    return (DataLoader(train, batch_size, shuffle=True),
            DataLoader(test, batch_size, shuffle=False))
