"""corrnet.vision.transforms and corrnet.vision.datasets against torchvision's semantics:
PIL images through Pillow itself, tensors against PyTorch's F.interpolate (bilinear,
antialias=True), and the book's shapes from load_data_fashion_mnist."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import corrnet
from corrnet.vision import datasets, transforms

SHARED_DATA = Path(os.environ.get("CORRNET_DATA") or Path(__file__).resolve().parents[2]
                   / "shared" / "data" / "fashion-mnist")
needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                reason=f"Fashion-MNIST is not in {SHARED_DATA}")


def grey(height, width, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width),
                                                                 dtype=np.uint8))


def test_issue12_to_tensor_of_pil_and_arrays():
    img = grey(5, 7)
    t = transforms.ToTensor()(img)
    assert t.dtype == corrnet.float32 and tuple(t.shape) == (1, 5, 7)
    np.testing.assert_array_equal(t.numpy()[0], np.asarray(img, np.float32) / np.float32(255))
    rgb = np.random.default_rng(1).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    t = transforms.ToTensor()(Image.fromarray(rgb))
    assert tuple(t.shape) == (3, 4, 6)
    np.testing.assert_array_equal(t.numpy(), rgb.transpose(2, 0, 1) / np.float32(255))
    np.testing.assert_array_equal(transforms.ToTensor()(rgb).numpy(), t.numpy())
    floats = np.random.default_rng(2).random((4, 6, 2))  # not uint8: kept, as torchvision
    out = transforms.ToTensor()(floats)
    assert out.dtype == corrnet.float64
    np.testing.assert_array_equal(out.numpy(), floats.transpose(2, 0, 1))
    with pytest.raises(TypeError, match="pic should be"):
        transforms.ToTensor()([1, 2])
    with pytest.raises(ValueError, match="2 or 3 dimensional"):
        transforms.ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))


@pytest.mark.parametrize(("size", "expected"), [(14, (14, 20)), ((10, 12), (10, 12)),
                                                (56, (56, 80))])
def test_issue12_resize_of_a_pil_image_is_pillows(size, expected):
    img = grey(28, 40)
    out = transforms.Resize(size)(img)
    assert (out.height, out.width) == expected  # an int is the smaller edge
    reference = img.resize((expected[1], expected[0]), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(reference))
    nearest = transforms.Resize(size, interpolation="nearest")(img)
    np.testing.assert_array_equal(
        np.asarray(nearest), np.asarray(img.resize((expected[1], expected[0]),
                                                   Image.Resampling.NEAREST)))


@settings(max_examples=30, deadline=None)
@given(h=st.integers(2, 20), w=st.integers(2, 20), oh=st.integers(2, 24), ow=st.integers(2, 24),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**31))
def test_issue12_resize_of_a_tensor_is_antialiased_interpolate(h, w, oh, ow, dtype, seed):
    """(Output sides from 2: PyTorch 2.13's CPU antialiased bilinear gives a constant
    column for a 2x2 -> 3x1 resize, [1.5, 1.5, 1.5] for [[1, 2], [3, 4]], where its own
    non-antialiased path and the filter give [1.5, 2.5, 3.5]; corrnet gives the latter.)"""
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w)).astype(dtype)
    mine = corrnet.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out = transforms.Resize((oh, ow))(mine)
    expected = torch.nn.functional.interpolate(theirs, size=(oh, ow), mode="bilinear",
                                               align_corners=False, antialias=True)
    rtol = 1e-5 if dtype == "float32" else 1e-10
    assert out.dtype == getattr(corrnet, dtype) and tuple(out.shape) == (2, 3, oh, ow)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=rtol,
                               atol=rtol)
    upstream = np.random.default_rng(seed + 1).standard_normal((2, 3, oh, ow)).astype(dtype)
    out.backward(corrnet.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=rtol)


def test_issue12_resize_to_one_column_averages():
    out = transforms.Resize((3, 1))(corrnet.tensor([[[1.0, 2.0], [3.0, 4.0]]]))
    np.testing.assert_allclose(out.numpy()[0, :, 0], [1.5, 2.5, 3.5])


def test_issue12_normalize_and_compose():
    x = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = transforms.Normalize(mean, std)(corrnet.tensor(x))
    expected = (x - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="3 values for a tensor of 2 channels"):
        transforms.Normalize(mean, std)(corrnet.zeros(2, 4, 4))
    with pytest.raises(TypeError, match="float tensor"):
        transforms.Normalize((0,), (1,))(corrnet.zeros(1, 2, 2, dtype=corrnet.int64))
    pipeline = transforms.Compose([transforms.Resize(14), transforms.ToTensor(),
                                   transforms.Normalize((0.5,), (0.5,))])
    out = pipeline(grey(28, 28))
    assert tuple(out.shape) == (1, 14, 14) and out.min().item() >= -1 and out.max() <= 1
    assert "Resize(size=14" in repr(pipeline)


@pytest.mark.parametrize(("size", "crop"), [((6, 8), (2, 4)), ((5, 5), (2, 2)),
                                            ((3, 4), (6, 7)), ((4, 4), (4, 4))])
def test_issue12_center_crop_as_torchvision(size, crop):
    """Central region with torchvision's rounding; a larger crop pads with zeros, the odd
    pixel at the bottom/right."""
    h, w = size
    x = corrnet.arange(float(h * w)).reshape(1, h, w) + 1
    out = transforms.CenterCrop(crop)(x).numpy()[0]
    ch, cw = crop
    pad_top, pad_left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
    padded = np.zeros((max(h, ch) + 1, max(w, cw) + 1))
    padded[pad_top:pad_top + h, pad_left:pad_left + w] = x.numpy()[0]
    H, W = max(h, ch), max(w, cw)
    top, left = int(round((H - ch) / 2)), int(round((W - cw) / 2))
    np.testing.assert_array_equal(out, padded[top:top + ch, left:left + cw])
    pil = transforms.CenterCrop(crop)(grey(h, w))
    assert (pil.height, pil.width) == (ch, cw)


def test_issue12_random_crop_and_flip():
    x = corrnet.arange(36.0).reshape(1, 6, 6)
    corrnet.manual_seed(0)
    crops = [transforms.RandomCrop(4)(x).numpy()[0] for _ in range(20)]
    full = x.numpy()[0]
    for c in crops:  # every crop is a window of the image
        assert any(np.array_equal(c, full[i:i + 4, j:j + 4])
                   for i in range(3) for j in range(3))
    assert len({c.tobytes() for c in crops}) > 1
    corrnet.manual_seed(0)
    again = [transforms.RandomCrop(4)(x).numpy()[0] for _ in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(crops, again, strict=True))
    padded = transforms.RandomCrop(6, padding=2)(x)
    assert tuple(padded.shape) == (1, 6, 6)
    with pytest.raises(ValueError, match="larger than input image size"):
        transforms.RandomCrop(8)(x)
    assert tuple(transforms.RandomCrop(8, pad_if_needed=True)(x).shape) == (1, 8, 8)
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(1.0)(x).numpy(),
                                  full[None, :, ::-1])
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(0.0)(x).numpy(), x.numpy())
    flipped = transforms.RandomHorizontalFlip(1.0)(grey(3, 5))
    np.testing.assert_array_equal(np.asarray(flipped), np.asarray(grey(3, 5))[:, ::-1])


@needs_data
def test_issue12_fashion_mnist_in_torchvisions_form(monkeypatch):
    monkeypatch.setenv("CORRNET_DATA", str(SHARED_DATA))
    test = datasets.FashionMNIST(root=None, train=False)
    assert len(test) == 10000 and test.classes[0] == "T-shirt/top"
    image, label = test[0]
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
    assert label == 9 and isinstance(label, int)
    trans = transforms.Compose([transforms.Resize(96), transforms.ToTensor()])
    resized = datasets.FashionMNIST(root=None, train=False, transform=trans,
                                    target_transform=lambda y: y + 100)
    x, y = resized[3]
    assert tuple(x.shape) == (1, 96, 96) and y == int(test.targets[3]) + 100
    # the batch path (no target transform) gives the per-image transform's values exactly
    fast = datasets.FashionMNIST(root=None, train=False, transform=trans)
    X, Y = next(iter(corrnet.utils.data.DataLoader(fast, batch_size=8)))
    per_image = np.stack([trans(test[i][0]).numpy() for i in range(8)])
    np.testing.assert_array_equal(X.numpy(), per_image)
    assert Y.dtype == corrnet.int64


@needs_data
def test_issue12_load_data_fashion_mnist_gives_the_books_shapes(monkeypatch):
    monkeypatch.setenv("CORRNET_DATA", str(SHARED_DATA))
    from corrnet import d2l

    train_iter, test_iter = d2l.load_data_fashion_mnist(256, resize=96)
    X, y = next(iter(test_iter))
    assert tuple(X.shape) == (256, 1, 96, 96) and X.dtype == corrnet.float32
    assert tuple(y.shape) == (256,) and y.dtype == corrnet.int64
    assert len(train_iter) == 235
