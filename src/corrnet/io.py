"""Image files as tensors, under torchvision.io's names: ``corrnet.io`` is ``torchvision.io``.

``read_image(path)`` gives a (C, H, W) tensor — channels first, as every corrnet and PyTorch
image function expects — and ``write_png`` / ``write_jpeg`` write one back. PNG, JPEG, TIFF
and BMP go through Pillow, imported only when a file is read or written.

Pixel types:

* 8-bit files give ``uint8`` tensors (0..255), as torchvision.
* 16-bit files (16-bit grayscale PNG or TIFF) give ``uint16`` tensors (0..65535), as
  torchvision >= 0.21. uint16 is a "shell" dtype in PyTorch: it converts, indexes and
  saves, but promotes with no other integer dtype, so convert before arithmetic —
  ``image.float()`` (exact for 0..65535) or ``image.int()``. The writers turn it around: a
  uint8 tensor is written with 8 bits per sample, a uint16 tensor with 16 (so is any other
  integer tensor holding 0..65535, such as int32). Pillow reads 16-bit *colour* PNGs as
  8-bit RGB (a warning says so) and writes 16 bits for one channel only.
* Float tensors are not pixels yet: ``corrnet.utils.save_image`` writes floats in [0, 1].

>>> import corrnet
>>> image = corrnet.zeros(3, 4, 5, dtype=corrnet.uint8)     # (C, H, W): 3 channels, 4 x 5
>>> corrnet.io.write_png(image, "black.png")
>>> corrnet.io.read_image("black.png").shape
torch.Size([3, 4, 5])
>>> corrnet.io.read_image("black.png", mode="GRAY").shape
torch.Size([1, 4, 5])

Bad input is refused with the file and the shapes named: a missing or unreadable file, a
truncated image, a (H, W, C) array where (C, H, W) is expected (see `check_channels_first`),
a tensor a format cannot hold (16 bits or an alpha channel in a JPEG).
"""

from __future__ import annotations

import io as _bytes_io
import os
import warnings
from enum import Enum
from pathlib import Path

import numpy as np

__all__ = [
    "ImageReadMode", "decode_image", "decode_jpeg", "decode_png", "encode_jpeg", "encode_png",
    "read_array", "read_file", "read_image", "write_file", "write_image", "write_jpeg",
    "write_png",
]

# file suffix -> Pillow's format name
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP"}
# what each format can hold: channel counts at 8 bits, channel counts at 16 bits
_CHANNELS_8 = {"PNG": (1, 2, 3, 4), "TIFF": (1, 2, 3, 4), "JPEG": (1, 3), "BMP": (1, 3)}
_CHANNELS_16 = {"PNG": (1,), "TIFF": (1,), "JPEG": (), "BMP": ()}
_CHANNEL_NAMES = {1: "gray", 2: "gray + alpha", 3: "RGB", 4: "RGBA"}


class ImageReadMode(Enum):
    """How `read_image` converts the channels (strings such as ``"RGB"`` work as well):
    UNCHANGED as stored, GRAY (1 channel), GRAY_ALPHA (2), RGB (3), RGB_ALPHA alias RGBA (4).
    """

    UNCHANGED = 0
    GRAY = 1
    GRAY_ALPHA = 2
    RGB = 3
    RGB_ALPHA = 4
    RGBA = RGB_ALPHA


def _read_mode(mode) -> ImageReadMode:
    if isinstance(mode, ImageReadMode):
        return mode
    if isinstance(mode, str) and mode.upper() in ImageReadMode.__members__:
        return ImageReadMode[mode.upper()]
    names = ", ".join(ImageReadMode.__members__)
    raise ValueError(f"read_image: mode must be an ImageReadMode or one of {names}, "
                     f"got mode={mode!r}")


# ---------------------------------------------------------------------------------------------
# (H, W, C) arrays where (C, H, W) is expected
# ---------------------------------------------------------------------------------------------

def looks_channels_last(shape) -> bool:
    """True when a 3-D `shape` can only be an (H, W, C) image: its last axis has 1, 3 or 4
    entries (gray, RGB, RGBA) and both other axes more than 4. A (C, H, W) image or a small
    stack of planes has a first axis of at most 4; corrnet refuses such a shape where it
    expects channels first (`read_image`'s output, the writers, ``corr2d``) rather than
    filter or write the wrong axes.

    >>> looks_channels_last((600, 510, 3)), looks_channels_last((3, 600, 510))
    (True, False)
    """
    return len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] > 4 and shape[1] > 4


def check_channels_first(op: str, name: str, shape) -> None:
    """Raise a ValueError that says how to fix it when `shape` looks like (H, W, C)."""
    if looks_channels_last(shape):
        shape = tuple(shape)
        raise ValueError(
            f"{op}: {name} of shape {shape} looks like an (H, W, C) image with the channels "
            f"last; corrnet expects (C, H, W): use {name}.permute(2, 0, 1) (a NumPy array: "
            f"{name}.transpose(2, 0, 1)) to get shape {(shape[2], shape[0], shape[1])}")


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def _pillow():
    try:
        from PIL import Image
    except ImportError as err:  # a run-time dependency, but say what is missing
        raise ImportError("corrnet.io needs Pillow: pip install Pillow") from err
    return Image


def _file_bytes(op: str, path) -> bytes:
    path = Path(os.fspath(path))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{op}: no such file: '{path}'") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{op}: '{path}' is a folder, not an image file") from None
    except OSError as err:
        raise OSError(f"{op}: cannot read '{path}': {err.strerror or err}") from None


def _raw_mode(image) -> str:
    """How the file stores its samples, e.g. 'RGB;16B' for a 16-bit colour PNG ('' unknown)."""
    args = image.tile[0][3] if image.tile and len(image.tile[0]) > 3 else None
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else ""


def _open(op: str, data: bytes, source: str, apply_exif_orientation: bool):
    """A loaded Pillow image, or a ValueError naming `source` and what Pillow said."""
    Image = _pillow()
    buffer = _bytes_io.BytesIO(data)
    try:
        image = Image.open(buffer)
        rawmode = _raw_mode(image)
        image.load()  # decodes now: a truncated file fails here, not later
        if apply_exif_orientation:
            from PIL import ImageOps

            image = ImageOps.exif_transpose(image)
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error ...
        what = (str(err) or type(err).__name__).replace(f" {buffer!r}", "")  # (not the file)
        raise ValueError(f"{op}: cannot read {source} as an image (Pillow: {what})") from None
    if rawmode.startswith(("RGB;16", "RGBA;16")):
        warnings.warn(f"{op}: {source} has 16 bits per colour sample; Pillow reads it as "
                      f"8-bit {image.mode}", stacklevel=3)
    return image


def _decoded_array(image, source: str, op: str) -> np.ndarray:
    """The pixels of a Pillow image as a (C, H, W) uint8 or uint16 array, as stored."""
    mode = image.mode
    if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La"):
        has_alpha = mode in ("PA", "RGBa", "La") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else ("L" if mode == "1" else "RGB"))
    elif mode == "I":  # 32-bit integers: older Pillow reads 16-bit gray as "I"
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"{op}: {source} holds 32-bit integers beyond 0..65535; corrnet "
                             f"reads 8- and 16-bit images only")
        return values.astype(np.uint16)[None]
    elif mode == "F":
        raise ValueError(f"{op}: {source} holds 32-bit floating point pixels; corrnet reads "
                         f"8- and 16-bit images only")
    pixels = np.asarray(image)
    if pixels.dtype.kind == "u" and pixels.dtype.itemsize == 2:
        pixels = pixels.astype(np.uint16)  # I;16B (big-endian) -> native
    elif pixels.dtype != np.uint8:
        raise ValueError(f"{op}: {source} has pixels of type {pixels.dtype} (Pillow mode "
                         f"{mode!r}); corrnet reads 8- and 16-bit images only")
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _convert(pixels: np.ndarray, image, mode: ImageReadMode) -> np.ndarray:
    """(C, H, W) pixels in the channels `mode` asks for."""
    channels = pixels.shape[0]
    wanted = {ImageReadMode.GRAY: 1, ImageReadMode.GRAY_ALPHA: 2, ImageReadMode.RGB: 3,
              ImageReadMode.RGB_ALPHA: 4}.get(mode, channels)
    if wanted == channels:
        return pixels
    if pixels.dtype == np.uint8:  # Pillow's conversions (ITU-R 601-2 luma for gray)
        pillow_mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
        image = image.convert(pillow_mode[channels]) if image.mode != pillow_mode[channels] \
            else image
        converted = np.asarray(image.convert(pillow_mode[wanted]))
        return converted[None] if converted.ndim == 2 else converted.transpose(2, 0, 1)
    # 16-bit gray (the only 16-bit layout Pillow reads): repeat it, add an opaque alpha
    gray = pixels[:1]
    opaque = np.full_like(gray, 65535)
    layers = {1: [gray], 2: [gray, opaque], 3: [gray] * 3, 4: [gray] * 3 + [opaque]}[wanted]
    return np.concatenate(layers, axis=0)


def _decode_to_array(data: bytes, source: str, op: str, mode=ImageReadMode.UNCHANGED,
                     apply_exif_orientation: bool = False) -> np.ndarray:
    """(C, H, W) uint8 or uint16 NumPy array of an encoded image (used by the CLI too)."""
    mode = _read_mode(mode)
    image = _open(op, data, source, apply_exif_orientation)
    pixels = _decoded_array(image, source, op)
    return np.ascontiguousarray(_convert(pixels, image, mode))


def read_array(path, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False) -> np.ndarray:
    """`read_image` as a NumPy array, keeping the file's bit depth: (C, H, W) uint8 or uint16.

    >>> import numpy as np
    >>> corrnet.io.write_png(np.full((1, 2, 3), 40000), "deep.png")    # 16 bits
    >>> corrnet.io.read_array("deep.png").dtype
    dtype('uint16')
    """
    return _decode_to_array(_file_bytes("read_image", path), f"'{os.fspath(path)}'",
                            "read_image", mode, apply_exif_orientation)


def _tensor(array: np.ndarray):
    """A (C, H, W) uint8 or uint16 array (or 1-D bytes) as a tensor of the same dtype."""
    from .tensor import from_numpy

    return from_numpy(np.ascontiguousarray(array))


def read_image(path, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False):
    """The image in file `path` as a (C, H, W) tensor: uint8, or uint16 for 16-bit files (as
    torchvision >= 0.21). `mode` converts the channels (`ImageReadMode` or its name: "GRAY",
    "RGB", ...). PNG, JPEG, TIFF, BMP and whatever else Pillow reads.

    >>> corrnet.io.write_png(corrnet.full((1, 2, 3), 7, dtype=corrnet.uint8), "gray.png")
    >>> corrnet.io.read_image("gray.png", mode=corrnet.io.ImageReadMode.RGB)[:, 0, 0]
    tensor([7, 7, 7], dtype=torch.uint8)
    >>> corrnet.io.write_png(corrnet.full((1, 2, 3), 40000, dtype=corrnet.uint16), "deep.png")
    >>> deep = corrnet.io.read_image("deep.png")         # 16 bits per sample
    >>> deep[0, 0]
    tensor([40000, 40000, 40000], dtype=torch.uint16)
    >>> deep.float().mean()                              # convert before arithmetic
    tensor(40000.)
    """
    return _tensor(read_array(path, mode, apply_exif_orientation))


def read_file(path):
    """The bytes of file `path` as a 1-D uint8 tensor (for `decode_image`)."""
    return _tensor(np.frombuffer(_file_bytes("read_file", path), dtype=np.uint8).copy())


def _encoded_bytes(op: str, input) -> bytes:
    data = _as_array(input)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise ValueError(f"{op}: input must be a 1-D uint8 tensor of encoded bytes (from "
                         f"read_file), got {data.dtype} of shape {data.shape}")
    return data.tobytes()


def decode_image(input, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False):
    """Decode the bytes of an image file (a 1-D uint8 tensor, or a path as torchvision
    accepts) to a (C, H, W) tensor, as `read_image`.

    >>> data = corrnet.io.encode_png(corrnet.zeros(1, 2, 2, dtype=corrnet.uint8))
    >>> corrnet.io.decode_image(data).shape
    torch.Size([1, 2, 2])
    """
    if isinstance(input, (str, os.PathLike)):
        return read_image(input, mode, apply_exif_orientation)
    data = _encoded_bytes("decode_image", input)
    return _tensor(_decode_to_array(data, "the given bytes", "decode_image", mode,
                                    apply_exif_orientation))


decode_png = decode_image
decode_jpeg = decode_image


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _as_array(input) -> np.ndarray:
    from .tensor import Tensor

    if isinstance(input, Tensor):
        return input.detach().cpu().numpy()
    return np.asarray(input)


def _pixels(op: str, input, format: str) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 / uint16 array that Pillow writes as `format`; a ValueError
    naming the shapes and dtype when the format cannot hold the tensor."""
    array = _as_array(input)
    check_channels_first(op, "input", array.shape)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or not 1 <= array.shape[0] <= 4 or 0 in array.shape:
        raise ValueError(f"{op}: input must be a (C, H, W) image with C = 1 (gray), 2 (gray + "
                         f"alpha), 3 (RGB) or 4 (RGBA) and H, W >= 1, got shape "
                         f"{tuple(array.shape)}")
    channels = array.shape[0]
    if array.dtype == np.uint8:
        bits, allowed = 8, _CHANNELS_8[format]
    elif array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 65535:
            raise ValueError(f"{op}: an integer tensor other than uint8 is written with 16 bits "
                             f"per sample and must hold 0..65535; input ({array.dtype}) holds "
                             f"{array.min()}..{array.max()}; clamp it, or convert to uint16 "
                             f"yourself: input.clamp(0, 65535).to(corrnet.uint16)")
        bits, allowed = 16, _CHANNELS_16[format]
        array = array.astype(np.uint16)
    else:
        raise ValueError(f"{op}: input must hold pixels: uint8 (8 bits) or uint16 (16 bits; "
                         f"another integer dtype with values 0..65535 too), got {array.dtype}; "
                         f"for floats in [0, 1] use corrnet.utils.save_image, or "
                         f"(x * 255 + 0.5).clamp(0, 255).to(corrnet.uint8)")
    if channels not in allowed:
        kinds = " or ".join(_CHANNEL_NAMES[c] for c in allowed) if allowed else "nothing"
        hint = ""
        if channels in (2, 4) and channels - 1 in allowed:
            hint = f"; drop the alpha channel: input[:{channels - 1}]"
        elif bits == 16 and channels in _CHANNELS_8[format]:
            hint = "; convert to 8 bits: (input // 257).to(corrnet.uint8)"
        raise ValueError(f"{op}: {format} holds {kinds} at {bits} bits per sample, got "
                         f"{channels} channel(s) ({_CHANNEL_NAMES[channels]}) of {bits} bits, "
                         f"shape {tuple(array.shape)}{hint}")
    return array[0] if channels == 1 else array.transpose(1, 2, 0)


def _encode(op: str, input, format: str, **options) -> bytes:
    Image = _pillow()
    image = Image.fromarray(np.ascontiguousarray(_pixels(op, input, format)))
    buffer = _bytes_io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _check_level(op: str, name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise ValueError(f"{op}: {name} must be an integer from {low} to {high}, got "
                         f"{name}={value!r}")


def encode_png(input, compression_level=6):
    """The PNG bytes of a (C, H, W) image tensor, as a 1-D uint8 tensor; `compression_level`
    0 (none) to 9 (smallest)."""
    _check_level("encode_png", "compression_level", compression_level, 0, 9)
    data = _encode("encode_png", input, "PNG", compress_level=int(compression_level))
    return _tensor(np.frombuffer(data, dtype=np.uint8).copy())


def encode_jpeg(input, quality=75):
    """The JPEG bytes of a (C, H, W) uint8 image (1 or 3 channels), as a 1-D uint8 tensor."""
    _check_level("encode_jpeg", "quality", quality, 1, 100)
    data = _encode("encode_jpeg", input, "JPEG", quality=int(quality))
    return _tensor(np.frombuffer(data, dtype=np.uint8).copy())


def _write_bytes(path, data: bytes) -> None:
    from .serialization import atomic_write

    with atomic_write(path) as file:  # a temporary beside `path`, then os.replace
        file.write(data)


def write_file(filename, data) -> None:
    """Write a 1-D uint8 tensor of bytes to `filename` (atomically)."""
    _write_bytes(filename, _encoded_bytes("write_file", data))


def write_png(input, filename, compression_level=6) -> None:
    """Write a (C, H, W) image tensor to a PNG file, atomically: uint8 gives 8 bits per
    sample (1 to 4 channels), uint16 (or another integer dtype holding values 0..65535)
    gives a 16-bit grayscale PNG.

    >>> corrnet.io.write_png(corrnet.zeros(3, 2, 2, dtype=corrnet.uint8), "rgb.png")
    """
    _check_level("write_png", "compression_level", compression_level, 0, 9)
    _write_bytes(filename, _encode("write_png", input, "PNG",
                                   compress_level=int(compression_level)))


def write_jpeg(input, filename, quality=75) -> None:
    """Write a (C, H, W) uint8 tensor with 1 or 3 channels to a JPEG file, atomically
    (`quality` 1 to 100). JPEG holds neither alpha nor 16 bits: such tensors are refused."""
    _check_level("write_jpeg", "quality", quality, 1, 100)
    _write_bytes(filename, _encode("write_jpeg", input, "JPEG", quality=int(quality)))


def format_for(path, op: str = "write_image") -> str:
    """Pillow's format name for the suffix of `path` (.png, .jpg/.jpeg, .tif/.tiff, .bmp)."""
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{op}: cannot tell the image format of '{os.fspath(path)}' from its "
                         f"suffix; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def write_image(input, filename, quality=75, compression_level=6) -> None:
    """Write a (C, H, W) image tensor in the format its file suffix names (corrnet's own
    helper: PNG, JPEG, TIFF or BMP), atomically, with `write_png`'s rules on dtypes.

    >>> corrnet.io.write_image(corrnet.zeros(1, 2, 2, dtype=corrnet.uint8), "gray.tif")
    """
    format = format_for(filename)
    options = {"PNG": {"compress_level": compression_level}, "JPEG": {"quality": quality},
               "TIFF": {}, "BMP": {}}[format]
    _write_bytes(filename, _encode("write_image", input, format, **options))
