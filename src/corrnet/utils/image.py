"""Pictures of tensors, under torchvision.utils' names: `make_grid` and `save_image`."""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["make_grid", "save_image"]


def _images(tensor) -> np.ndarray:
    """A (N, C, H, W) NumPy array of a tensor, an array or a list of (C, H, W) images."""
    from ..io import _as_array, check_channels_first

    if isinstance(tensor, (list, tuple)):
        if not tensor:
            raise ValueError("make_grid: got an empty list of images")
        parts = [_as_array(t) for t in tensor]
        shapes = {p.shape for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"make_grid: the images of a list must have one shape, got "
                             f"{sorted(shapes)}")
        array = np.stack(parts)
    else:
        array = _as_array(tensor)
    given = tuple(array.shape)
    if array.ndim == 3:
        check_channels_first("make_grid", "tensor", array.shape)
    if array.ndim == 2:                                  # (H, W) -> (1, H, W)
        array = array[None]
    if array.ndim == 3:                                  # (C, H, W) -> (1, C, H, W)
        array = array[None]
    if array.ndim != 4 or array.shape[1] not in (1, 2, 3, 4):
        raise ValueError(f"make_grid: expected (N, C, H, W), (C, H, W) or (H, W) with C of "
                         f"1 to 4, got shape {given}")
    if array.shape[1] == 1:                              # gray -> RGB, as torchvision
        array = np.repeat(array, 3, axis=1)
    return array


def _normalized(images: np.ndarray, value_range, scale_each: bool) -> np.ndarray:
    """Values mapped from `value_range` (default: the min and max) to [0, 1], clamped."""
    if value_range is not None and (not isinstance(value_range, tuple) or len(value_range) != 2):
        raise TypeError(f"make_grid: value_range must be a tuple (min, max), got "
                        f"{value_range!r}")
    images = images.astype(np.result_type(images.dtype, np.float32), copy=True)
    groups = list(images) if scale_each else [images]
    for group in groups:  # views into `images`: changed in place
        low, high = value_range if value_range is not None else (group.min(), group.max())
        np.clip(group, low, high, out=group)
        group -= low
        group /= max(high - low, 1e-5)
    return images


def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False,
              pad_value=0.0):
    """A batch of images (N, C, H, W) — or a list of (C, H, W) images — laid out as one
    (C, rows * (H + padding) + padding, nrow * (W + padding) + padding) image, `nrow` images
    to a row, as ``torchvision.utils.make_grid``. Gray images become RGB; one image comes
    back as it is (made 3-channel). `normalize` maps `value_range` (default: the batch's min
    and max; each image's with `scale_each`) to [0, 1].

    >>> grid = corrnet.utils.make_grid(corrnet.ones(5, 1, 4, 4), nrow=4)
    >>> grid.shape                               # 2 rows of 4: 2 * (4 + 2) + 2, 4 * (4 + 2) + 2
    torch.Size([3, 14, 26])
    """
    from ..tensor import from_numpy

    images = _images(tensor)
    if normalize:
        images = _normalized(images, value_range, scale_each)
    if images.shape[0] == 1:
        return from_numpy(np.ascontiguousarray(images[0]))
    count, channels, height, width = images.shape
    columns = min(nrow, count)
    rows = math.ceil(count / columns)
    cell_h, cell_w = height + padding, width + padding
    grid = np.full((channels, rows * cell_h + padding, columns * cell_w + padding), pad_value,
                   dtype=images.dtype)
    for k, image in enumerate(images):
        row, column = divmod(k, columns)
        top, left = row * cell_h + padding, column * cell_w + padding
        grid[:, top:top + height, left:left + width] = image
    return from_numpy(grid)


def save_image(tensor, fp, format=None, **kwargs) -> None:
    """Save a tensor of floats in [0, 1] — an image (C, H, W) or a batch (N, C, H, W) laid
    out by `make_grid` (its keyword arguments: nrow, padding, normalize, value_range, ...) —
    as an 8-bit image file, as ``torchvision.utils.save_image``: values are scaled by 255,
    rounded and clamped to 0..255 (so values outside [0, 1] saturate). The format comes from
    `format` or the file's suffix (PNG, JPEG, TIFF, BMP); a path is written atomically.

    >>> corrnet.utils.save_image(corrnet.rand(4, 3, 8, 8), "batch.png", nrow=2)
    >>> corrnet.io.read_image("batch.png").shape     # 2 x 2 grid of 8 x 8 images, padding 2
    torch.Size([3, 22, 22])
    """
    from .. import io

    grid = make_grid(tensor, **kwargs).numpy()
    if grid.dtype.kind in "iub":  # torchvision refuses these too (its in-place add of 0.5)
        top = {"uint8": " / 255", "uint16": " / 65535"}.get(grid.dtype.name, "")
        raise ValueError(f"save_image: expected floats in [0, 1], got a {grid.dtype} tensor "
                         f"(scaled by 255 it would saturate); write pixels as they are with "
                         f"corrnet.io.write_png, or scale them: tensor.float(){top}")
    if grid.dtype.kind != "f":
        raise ValueError(f"save_image: expected real values, got {grid.dtype}")
    pixels = np.clip(grid * 255.0 + 0.5, 0, 255).astype(np.uint8)   # torchvision's mapping
    if format is None:
        if not isinstance(fp, (str, os.PathLike)):
            raise ValueError("save_image: give format= when fp is a file object")
        format = io.format_for(fp, "save_image")
    format = {"JPG": "JPEG", "TIF": "TIFF"}.get(format.upper(), format.upper())
    if format not in ("PNG", "JPEG", "TIFF", "BMP"):
        raise ValueError(f"save_image: format must be PNG, JPEG, TIFF or BMP, got {format!r}")
    if isinstance(fp, (str, os.PathLike)):
        data = io._encode("save_image", pixels, format)
        io._write_bytes(fp, data)
    else:
        fp.write(io._encode("save_image", pixels, format))
