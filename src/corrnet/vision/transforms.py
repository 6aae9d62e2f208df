"""Image transforms with torchvision's semantics: ``corrnet.vision.transforms`` is
``torchvision.transforms``.

A transform takes a PIL image or a tensor (..., C, H, W) and returns the same kind:

- ``ToTensor``: a PIL image or an H x W (x C) uint8 array to a float32 tensor (C, H, W) in
  [0, 1] (other arrays keep their dtype, as torchvision);
- ``Resize(size)``: an int resizes the smaller edge to `size` keeping the aspect ratio, a pair
  is (height, width). A PIL image is resampled by Pillow itself (bilinear by default), so the
  result is Pillow's, bit for bit; a tensor by ``F.interpolate(..., mode="bilinear",
  antialias=True)`` (PIL's triangle filter widened by the scale when shrinking, in floating
  point), so it is differentiable;
- ``Normalize(mean, std)``, ``CenterCrop``, ``RandomCrop``, ``RandomHorizontalFlip``,
  ``Compose``.

The random transforms draw from corrnet's global generator (``corrnet.manual_seed``).

>>> t = Compose([Resize(4), ToTensor()])
>>> t(PIL.Image.new("L", (8, 8), color=255)).shape
torch.Size([1, 4, 4])
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence

import numpy as np

from ..nn import functional as F
from ..tensor import Tensor, as_tensor, from_numpy, rand, randint

__all__ = ["CenterCrop", "Compose", "InterpolationMode", "Normalize", "RandomCrop",
           "RandomHorizontalFlip", "Resize", "ToTensor"]


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow is a dependency
        raise ImportError("corrnet.vision needs Pillow: pip install Pillow") from exc
    return Image


def _is_pil(img) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(img, Image.Image)


def _check_image(img, where: str) -> None:
    if _is_pil(img):
        return
    if not isinstance(img, Tensor):
        raise TypeError(f"{where}: img should be a PIL Image or a Tensor, got "
                        f"{type(img).__name__}")
    if img.dim() < 2:
        raise ValueError(f"{where}: a tensor image needs at least 2 dimensions (..., H, W), "
                         f"got shape {tuple(img.shape)}")


def _image_size(img) -> tuple[int, int]:
    """(height, width) of a PIL image or a tensor (..., H, W)."""
    if _is_pil(img):
        width, height = img.size
        return height, width
    return int(img.shape[-2]), int(img.shape[-1])


def _size_arg(size, where: str, allow_int: bool = True):
    """An int (or a one-element sequence, read as the int) or an (h, w) pair."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        if size <= 0:
            raise ValueError(f"{where}: size must be positive, got {size}")
        return int(size) if allow_int else (int(size), int(size))
    if isinstance(size, Sequence) and len(size) in (1, 2):
        values = tuple(operator.index(v) for v in size)
        if any(v <= 0 for v in values):
            raise ValueError(f"{where}: size must be positive, got {size!r}")
        if len(values) == 1:
            return values[0] if allow_int else (values[0], values[0])
        return values
    raise TypeError(f"{where}: size should be an int or a sequence of 1 or 2 ints, got "
                    f"{size!r}")


class Compose:
    """Apply transforms one after another.

    >>> Compose([ToTensor(), Normalize((0.5,), (0.5,))])
    Compose(
        ToTensor()
        Normalize(mean=(0.5,), std=(0.5,))
    )
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """A PIL image or an H x W (x C) array to a tensor (C, H, W); uint8 values (and PIL images
    of 8-bit modes) are divided by 255 into float32 [0, 1], as torchvision.

    >>> ToTensor()(np.full((2, 3), 255, np.uint8))
    tensor([[[1., 1., 1.],
             [1., 1., 1.]]])
    """

    def __call__(self, pic):
        if _is_pil(pic):
            array = np.asarray(pic)
            if pic.mode == "1":
                array = array.astype(np.uint8) * 255
        elif isinstance(pic, np.ndarray):
            array = pic
        else:
            raise TypeError(f"ToTensor: pic should be a PIL Image or an ndarray, got "
                            f"{type(pic).__name__}")
        if array.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional (H x W or "
                             f"H x W x C), got {array.ndim} dimensions (shape {array.shape})")
        if array.ndim == 2:
            array = array[:, :, None]
        chw = np.ascontiguousarray(array.transpose(2, 0, 1))
        if chw.dtype == np.uint8:
            return from_numpy(np.divide(chw, np.float32(255), dtype=np.float32))
        return from_numpy(chw.copy())

    def __repr__(self) -> str:
        return "ToTensor()"


class InterpolationMode:
    """torchvision's interpolation names (the strings Resize accepts)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {"nearest": "NEAREST", "bilinear": "BILINEAR", "bicubic": "BICUBIC",
                "box": "BOX", "hamming": "HAMMING", "lanczos": "LANCZOS"}


def _output_size(height: int, width: int, size, max_size) -> tuple[int, int]:
    """torchvision's rule: an int sets the smaller edge (the other scaled and truncated)."""
    if isinstance(size, tuple):
        if max_size is not None:
            raise ValueError("Resize: max_size is only supported when size is an int (the "
                             f"smaller edge), got size={size}")
        return size
    short, long = (height, width) if height <= width else (width, height)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None:
        if max_size <= size:
            raise ValueError(f"Resize: max_size = {max_size} must be strictly greater than "
                             f"the requested size for the smaller edge size = {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_short, new_long) if height <= width else (new_long, new_short)


# the modes F.interpolate resamples a tensor with (torchvision's tensor Resize)
_TENSOR_MODES = ("nearest", "bilinear", "bicubic")


def resize_tensor(img: Tensor, size: tuple[int, int], interpolation: str = "bilinear",
                  antialias: bool = True) -> Tensor:
    """A tensor (..., H, W) resampled to (..., h, w) by ``F.interpolate`` (bilinear or bicubic
    with ``align_corners=False`` and antialiasing when shrinking, or nearest), so gradients
    flow through it; an integer image is resampled in float32 and rounded back, as
    torchvision's."""
    if interpolation not in _TENSOR_MODES:
        raise ValueError(f"Resize: a tensor is resized with one of {_TENSOR_MODES}, got "
                         f"interpolation={interpolation!r}")
    height, width = _image_size(img)
    leading = tuple(img.shape[:-2])
    integer = not img.is_floating_point()
    x = img.reshape(-1, 1, height, width)  # (N*C, 1, H, W): F.interpolate's batch
    if integer:
        x = x.float()
    smooth = interpolation != "nearest"
    out = F.interpolate(x, size=tuple(size), mode=interpolation,
                        align_corners=False if smooth else None,
                        antialias=bool(antialias) and smooth)
    if integer:
        info = np.iinfo(img._data.dtype)
        out = out.round().clamp(float(info.min), float(info.max)).to(img.dtype)
    return out.reshape(*leading, *size)


class Resize:
    """Resize to `size`: an int is the smaller edge (aspect ratio kept), (h, w) is exact.

    A PIL image is resized by Pillow (``interpolation`` "bilinear" by default; any of
    ``InterpolationMode``); a tensor (..., H, W) by ``F.interpolate`` (bilinear with
    antialiasing by default; nearest, bicubic), as torchvision.

    >>> Resize(2)(corrnet.ones(1, 4, 6)).shape
    torch.Size([1, 2, 3])
    """

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        self.size = _size_arg(size, "Resize")
        interpolation = getattr(interpolation, "value", interpolation)
        if interpolation not in _PIL_FILTERS:
            raise ValueError(f"Resize: interpolation must be one of {sorted(_PIL_FILTERS)}, "
                             f"got {interpolation!r}")
        self.interpolation, self.max_size, self.antialias = interpolation, max_size, antialias

    def __call__(self, img):
        _check_image(img, "Resize")
        height, width = _image_size(img)
        out_h, out_w = _output_size(height, width, self.size, self.max_size)
        if _is_pil(img):
            if (out_h, out_w) == (height, width):
                return img
            Image = _pil()
            return img.resize((out_w, out_h), getattr(Image.Resampling,
                                                      _PIL_FILTERS[self.interpolation]))
        return resize_tensor(img, (out_h, out_w), self.interpolation, self.antialias)

    def __repr__(self) -> str:
        return (f"Resize(size={self.size}, interpolation={self.interpolation}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class Normalize:
    """``(img - mean) / std`` per channel of a float tensor (C, H, W) or (N, C, H, W).

    >>> Normalize((0.5,), (0.25,))(corrnet.ones(1, 1, 2))
    tensor([[[2., 2.]]])
    """

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: tensor should be a Tensor, got "
                            f"{type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise TypeError(f"Normalize: input tensor should be a float tensor, got "
                            f"{tensor.dtype}")
        if tensor.dim() < 3:
            raise ValueError(f"Normalize: expected a tensor image of size (..., C, H, W), got "
                             f"shape {tuple(tensor.shape)}")
        dtype = tensor._data.dtype
        mean = np.atleast_1d(np.asarray(self.mean, dtype=dtype))
        std = np.atleast_1d(np.asarray(self.std, dtype=dtype))
        if (std == 0).any():
            raise ValueError(f"Normalize: std evaluated to zero after conversion to {dtype}, "
                             "leading to division by zero")
        channels = tensor.shape[-3]
        for name, values in (("mean", mean), ("std", std)):
            if values.size not in (1, channels):
                raise ValueError(f"Normalize: {name} has {values.size} values for a tensor of "
                                 f"{channels} channels (shape {tuple(tensor.shape)})")
        out = (tensor - as_tensor(mean.reshape(-1, 1, 1))) / as_tensor(std.reshape(-1, 1, 1))
        if self.inplace:
            tensor.data[...] = out.detach()
            return tensor
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


def _crop(img, top: int, left: int, height: int, width: int):
    """torchvision's crop: regions outside the image are filled with 0."""
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    img_h, img_w = _image_size(img)
    if top < 0 or left < 0 or top + height > img_h or left + width > img_w:
        pad = [max(-top, 0), max(top + height - img_h, 0), max(-left, 0),
               max(left + width - img_w, 0)]
        array = np.zeros(tuple(img.shape[:-2]) + (img_h + pad[0] + pad[1],
                                                   img_w + pad[2] + pad[3]), img._data.dtype)
        array[..., pad[0]:pad[0] + img_h, pad[2]:pad[2] + img_w] = img._data
        img, top, left = from_numpy(array), top + pad[0], left + pad[2]
    return img[..., top:top + height, left:left + width]


class CenterCrop:
    """The central (h, w) region (an int is a square); padded with 0 where the image is
    smaller, as torchvision.

    >>> CenterCrop(2)(corrnet.arange(16.).reshape(1, 4, 4))
    tensor([[[ 5.,  6.],
             [ 9., 10.]]])
    """

    def __init__(self, size):
        self.size = _size_arg(size, "CenterCrop", allow_int=False)

    def __call__(self, img):
        _check_image(img, "CenterCrop")
        img_h, img_w = _image_size(img)
        crop_h, crop_w = self.size
        if crop_h > img_h or crop_w > img_w:  # torchvision pads first, the odd pixel after
            pad_w, pad_h = max(crop_w - img_w, 0), max(crop_h - img_h, 0)
            img = RandomCrop._pad(img, pad_w // 2, pad_h // 2, (pad_w + 1) // 2,
                                  (pad_h + 1) // 2, 0)
            img_h, img_w = _image_size(img)
        top = int(round((img_h - crop_h) / 2.0))
        left = int(round((img_w - crop_w) / 2.0))
        return _crop(img, top, left, crop_h, crop_w)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


class RandomCrop:
    """A random (h, w) region, after optional zero `padding` (an int, (left/right,
    top/bottom) or (left, top, right, bottom), as torchvision) and, with `pad_if_needed`,
    padding up to the crop size. Only ``padding_mode="constant"`` is supported."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0,
                 padding_mode="constant"):
        self.size = _size_arg(size, "RandomCrop", allow_int=False)
        if padding_mode != "constant":
            raise NotImplementedError(f"RandomCrop: padding_mode {padding_mode!r} is not "
                                      "supported (only 'constant')")
        self.padding, self.pad_if_needed, self.fill = padding, pad_if_needed, fill
        self.padding_mode = padding_mode

    @staticmethod
    def _pad(img, left, top, right, bottom, fill):
        if not (left or top or right or bottom):
            return img
        if _is_pil(img):
            Image = _pil()
            width, height = img.size
            out = Image.new(img.mode, (width + left + right, height + top + bottom), fill)
            out.paste(img, (left, top))
            return out
        array = np.full(tuple(img.shape[:-2]) + (img.shape[-2] + top + bottom,
                                                  img.shape[-1] + left + right),
                        fill, img._data.dtype)
        array[..., top:top + img.shape[-2], left:left + img.shape[-1]] = img._data
        return from_numpy(array)

    def __call__(self, img):
        _check_image(img, "RandomCrop")
        if self.padding is not None:
            p = self.padding
            p = [p] if isinstance(p, numbers.Integral) else list(p)
            if len(p) == 1:
                p = p * 4
            elif len(p) == 2:
                p = [p[0], p[1], p[0], p[1]]
            elif len(p) != 4:
                raise ValueError(f"RandomCrop: padding must be an int or 1, 2 or 4 values, "
                                 f"got {self.padding!r}")
            img = self._pad(img, *p, self.fill)
        height, width = _image_size(img)
        crop_h, crop_w = self.size
        if self.pad_if_needed and width < crop_w:
            img = self._pad(img, crop_w - width, 0, crop_w - width, 0, self.fill)
        if self.pad_if_needed and height < crop_h:
            img = self._pad(img, 0, crop_h - height, 0, crop_h - height, self.fill)
        height, width = _image_size(img)
        if height < crop_h or width < crop_w:
            raise ValueError(f"RandomCrop: required crop size {(crop_h, crop_w)} is larger "
                             f"than input image size {(height, width)}")
        top = int(randint(0, height - crop_h + 1, size=(1,)).item())
        left = int(randint(0, width - crop_w + 1, size=(1,)).item())
        return _crop(img, top, left, crop_h, crop_w)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror left-right with probability `p`."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        _check_image(img, "RandomHorizontalFlip")
        if float(rand(1).item()) < self.p:
            if _is_pil(img):
                return img.transpose(_pil().Transpose.FLIP_LEFT_RIGHT)
            return img[..., _reversed(img.shape[-1])]
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def _reversed(n: int) -> Tensor:
    return as_tensor(np.arange(n - 1, -1, -1))
