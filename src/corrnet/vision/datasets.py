"""Data sets in torchvision's form: ``corrnet.vision.datasets`` is ``torchvision.datasets``.

``FashionMNIST(root, train=True, transform=None, target_transform=None, download=False)``:
``dataset[i]`` is ``(PIL image of mode "L", int label)`` without a transform, as torchvision's.
The files are found (and, with ``download=True``, downloaded and verified) by
``corrnet.datasets``: under `root` (as given, ``root/fashion-mnist`` or torchvision's
``root/FashionMNIST/raw``), then ``$CORRNET_DATA``, the user cache and Debian's copy.

A DataLoader over it with the default collate and the book's transform
(``ToTensor()`` or ``Compose([Resize(size), ToTensor()])``) makes whole batches at once, with
the same values as the per-image transform (Pillow's bilinear resampling, reproduced exactly).
"""

from __future__ import annotations

import operator

import numpy as np

from .. import datasets as _files
from ..tensor import Tensor, from_numpy
from ..utils.data import Dataset
from . import transforms as T

__all__ = ["FashionMNIST"]


class FashionMNIST(Dataset):
    """Fashion-MNIST, 60000 training and 10000 test images of 28x28 grey clothes.

    >>> train = FashionMNIST(root="../data", train=True, download=True)
    >>> image, label = train[0]       # a PIL image and an int, as torchvision
    """

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None,
                 download: bool = False):
        self.root, self.train = root, bool(train)
        self.transform, self.target_transform = transform, target_transform
        images, labels = _files._load_split(self.train, root, download)
        self._images, self._labels = images, labels.astype(np.int64)
        self.data = from_numpy(images)
        self.targets = from_numpy(self._labels)
        self._batch_size = self._fast_resize()

    @property
    def class_to_idx(self) -> dict:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return self._images.shape[0]

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.item()
        index = operator.index(index)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"FashionMNIST: index {index} out of range for {n} samples")
        from PIL import Image

        img = Image.fromarray(np.array(self._images[index]))  # uint8 (28, 28): mode "L"
        target = int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def _fast_resize(self):
        """The (height, width) the book's transforms give when the batch path can make them
        (False when it cannot: another transform, or a target transform)."""
        t = self.transform
        steps = t.transforms if isinstance(t, T.Compose) else [t]
        if self.target_transform is not None or not steps or \
                type(steps[-1]) is not T.ToTensor:
            return False
        if len(steps) == 1:
            return None
        resize = steps[0]
        if len(steps) != 2 or type(resize) is not T.Resize or \
                resize.interpolation != "bilinear" or resize.max_size is not None:
            return False
        return T._output_size(28, 28, resize.size, None)

    def _get_batch(self, indices: np.ndarray):
        if self._batch_size is False:
            return NotImplemented
        images = self._images[indices]
        if self._batch_size is not None and self._batch_size != (28, 28):
            rows = _files._resize_weights(28, self._batch_size[0])
            cols = _files._resize_weights(28, self._batch_size[1])
            images = _files._resample_u8(_files._resample_u8(images, cols, 2), rows, 1)
        pixels = np.divide(images[:, None], np.float32(255), dtype=np.float32)
        return [from_numpy(pixels), from_numpy(self._labels[indices])]

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {split}"]
        if self.transform is not None:
            lines.append("    StandardTransform\n" + f"Transform: {self.transform}")
        return "\n".join(lines)
