"""Issue 14, item 1: image files as (C, H, W) tensors (``corrnet.io``, torchvision.io's names),
``corrnet.utils.make_grid`` / ``save_image``, and (H, W, C) arrays refused where (C, H, W) is
expected.

Oracles: OpenCV (``cv2.imread`` / ``cv2.imwrite``, its own PNG/TIFF/BMP/JPEG codecs) and
Pillow read or write every file independently of corrnet; make_grid's layout is rebuilt here
from torchvision's documented rule with plain NumPy slicing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import corrnet
from corrnet import io

SETTINGS = settings(max_examples=25, deadline=None)


def _cv2_read(path) -> np.ndarray:
    """OpenCV's pixels of a file as (C, H, W) in RGB(A) order."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert pixels is not None, f"OpenCV cannot read {path}"
    if pixels.ndim == 2:
        return pixels[None]
    order = {3: [2, 1, 0], 4: [2, 1, 0, 3]}[pixels.shape[2]]
    return pixels[:, :, order].transpose(2, 0, 1)


def _cv2_write(path, chw: np.ndarray) -> None:
    if chw.shape[0] == 1:
        hwc = chw[0]
    else:
        order = {3: [2, 1, 0], 4: [2, 1, 0, 3]}[chw.shape[0]]
        hwc = np.ascontiguousarray(chw.transpose(1, 2, 0)[:, :, order])
    assert cv2.imwrite(str(path), hwc)


def _image(seed: int, channels: int, height: int, width: int, dtype=np.uint8) -> np.ndarray:
    top = 255 if dtype == np.uint8 else 65535
    rng = np.random.default_rng(seed)
    return rng.integers(0, top + 1, size=(channels, height, width)).astype(dtype)


# -- reading and writing, against OpenCV ------------------------------------------------------

@SETTINGS
@given(st.sampled_from([(".png", 1), (".png", 3), (".png", 4), (".tif", 1), (".tif", 3),
                        (".tif", 4), (".bmp", 1), (".bmp", 3)]),
       st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31))
def test_lossless_formats_round_trip_and_match_opencv(tmp_path_factory, kind, h, w, seed):
    suffix, channels = kind
    folder = tmp_path_factory.mktemp("rt")
    pixels = _image(seed, channels, h, w)
    path = folder / f"corrnet{suffix}"
    io.write_image(corrnet.from_numpy(pixels), path)
    if (suffix, channels) == (".tif", 4):
        # OpenCV reads an RGBA TIFF with unassociated alpha (ExtraSamples 2, as Pillow writes
        # it) premultiplied by alpha; Pillow reads the samples as stored
        with Image.open(path) as im:
            assert im.tag_v2.get(338) == (2,)
            np.testing.assert_array_equal(np.asarray(im).transpose(2, 0, 1), pixels)
    else:
        np.testing.assert_array_equal(_cv2_read(path), pixels)          # OpenCV reads ours
    other = folder / f"opencv{suffix}"
    _cv2_write(other, pixels)
    got = io.read_image(other)                                          # we read OpenCV's
    assert got.dtype is corrnet.uint8 and tuple(got.shape) == pixels.shape
    np.testing.assert_array_equal(got.numpy(), pixels)


def test_write_png_is_read_back_exactly_with_every_channel_count(tmp_path):
    for channels in (1, 2, 3, 4):
        pixels = _image(channels, channels, 5, 7)
        io.write_png(corrnet.from_numpy(pixels), tmp_path / "x.png", compression_level=9)
        np.testing.assert_array_equal(io.read_image(tmp_path / "x.png").numpy(), pixels)
        with Image.open(tmp_path / "x.png") as im:                      # Pillow's view
            assert im.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]


def test_16_bit_gray_png_and_tiff_read_as_uint16_and_written_back_with_16_bits(tmp_path):
    pixels = _image(1, 1, 6, 5, np.uint16)
    pixels[0, 0, 0], pixels[0, 0, 1] = 65535, 0
    for suffix in (".png", ".tif"):
        path = tmp_path / f"opencv{suffix}"
        assert cv2.imwrite(str(path), pixels[0])
        got = io.read_image(path)
        # uint16, as torchvision >= 0.21 gives
        assert got.dtype is corrnet.uint16 and tuple(got.shape) == (1, 6, 5)
        np.testing.assert_array_equal(got.numpy(), pixels)
        assert io.read_array(path).dtype == np.uint16
        io.write_image(got, tmp_path / f"back{suffix}")
        back = cv2.imread(str(tmp_path / f"back{suffix}"), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint16
        np.testing.assert_array_equal(back, pixels[0])


def test_16_bit_gray_converts_to_rgb_and_alpha_at_16_bits(tmp_path):
    pixels = _image(2, 1, 3, 4, np.uint16)
    assert cv2.imwrite(str(tmp_path / "g.png"), pixels[0])
    rgba = io.read_image(tmp_path / "g.png", mode="RGBA").numpy()
    np.testing.assert_array_equal(rgba[:3], np.repeat(pixels, 3, axis=0))
    assert (rgba[3] == 65535).all()


def test_16_bit_colour_png_is_read_as_8_bit_with_a_warning(tmp_path):
    pixels = _image(3, 3, 4, 4, np.uint16)
    _cv2_write(tmp_path / "deep.png", pixels)
    with pytest.warns(UserWarning, match="deep.png.*16 bits"):
        got = io.read_image(tmp_path / "deep.png")
    assert got.dtype is corrnet.uint8 and tuple(got.shape) == (3, 4, 4)


def test_jpeg_written_by_corrnet_decodes_close_in_opencv(tmp_path):
    y, x = np.mgrid[0:32, 0:48]
    smooth = np.stack([x * 5, y * 7, (x + y) * 3]).astype(np.uint8)     # JPEG-friendly
    io.write_jpeg(corrnet.from_numpy(smooth), tmp_path / "a.jpg", quality=95)
    decoded = _cv2_read(tmp_path / "a.jpg").astype(int)
    assert decoded.shape == smooth.shape
    assert np.abs(decoded - smooth).mean() < 3
    io.write_jpeg(corrnet.from_numpy(smooth), tmp_path / "low.jpg", quality=10)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "a.jpg").stat().st_size
    gray = smooth[:1]
    io.write_jpeg(corrnet.from_numpy(gray), tmp_path / "g.jpg")
    assert io.read_image(tmp_path / "g.jpg").shape == (1, 32, 48)


def test_read_modes_match_pillow_conversions_and_accept_strings(tmp_path):
    rgba = _image(4, 4, 5, 6)
    io.write_png(rgba, tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as im:
        luma = np.asarray(im.convert("L"))                              # ITU-R 601-2
        rgb = np.asarray(im.convert("RGB")).transpose(2, 0, 1)
    cases = {io.ImageReadMode.GRAY: luma[None], "gray": luma[None], "RGB": rgb,
             io.ImageReadMode.RGB_ALPHA: rgba, io.ImageReadMode.RGBA: rgba,
             "UNCHANGED": rgba}
    for mode, expected in cases.items():
        np.testing.assert_array_equal(io.read_image(tmp_path / "c.png", mode=mode).numpy(),
                                      expected, err_msg=str(mode))
    gray = _image(5, 1, 5, 6)
    io.write_png(gray, tmp_path / "g.png")
    got = io.read_image(tmp_path / "g.png", mode="RGB_ALPHA").numpy()
    np.testing.assert_array_equal(got[:3], np.repeat(gray, 3, axis=0))
    assert (got[3] == 255).all()
    with pytest.raises(ValueError, match="mode=.CMYK"):
        io.read_image(tmp_path / "g.png", mode="CMYK")


def test_palette_and_bilevel_images_are_expanded(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[1:3, 1:3] = (200, 10, 30)
    palette = Image.fromarray((rgb[:, :, 0] > 0).astype(np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 200, 10, 30])
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(io.read_image(tmp_path / "p.png").numpy(),
                                  rgb.transpose(2, 0, 1))
    Image.fromarray(rgb[:, :, 0] > 0).save(tmp_path / "b.png")         # mode "1"
    np.testing.assert_array_equal(io.read_image(tmp_path / "b.png").numpy()[0],
                                  np.where(rgb[:, :, 0] > 0, 255, 0))


def test_encode_decode_and_file_bytes(tmp_path):
    pixels = _image(6, 3, 4, 5)
    data = io.encode_png(corrnet.from_numpy(pixels))
    assert data.dtype is corrnet.uint8 and data.dim() == 1
    np.testing.assert_array_equal(io.decode_image(data).numpy(), pixels)
    io.write_file(tmp_path / "x.png", data)
    np.testing.assert_array_equal(io.read_file(tmp_path / "x.png").numpy(), data.numpy())
    np.testing.assert_array_equal(io.decode_image(str(tmp_path / "x.png")).numpy(), pixels)
    jpeg = io.encode_jpeg(corrnet.from_numpy(pixels), quality=90)
    assert bytes(jpeg.numpy()[:2]) == b"\xff\xd8"


# -- bad input: one clear error naming the file, argument or shapes -----------------------------

def test_missing_folder_and_non_image_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: '.*nope.png'"):
        io.read_image(tmp_path / "nope.png")
    with pytest.raises(IsADirectoryError, match="folder"):
        io.read_image(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png.*Pillow: cannot identify"):
        io.read_image(tmp_path / "notes.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".bmp"])
def test_truncated_images_are_refused_with_the_file_and_pillows_words(tmp_path, suffix):
    y, x = np.mgrid[0:64, 0:64]
    pixels = np.stack([x * 4, y * 4, (x * y) % 256]).astype(np.uint8)
    io.write_image(pixels, tmp_path / f"whole{suffix}")
    data = (tmp_path / f"whole{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"cut\{suffix}.*\(Pillow: .+\)"):
        io.read_image(tmp_path / f"cut{suffix}")


@pytest.mark.parametrize("write", [io.write_png, io.write_jpeg])
def test_writers_refuse_channels_last_with_the_permute_fix(tmp_path, write):
    photo = np.zeros((60, 51, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(60, 51, 3\).*permute\(2, 0, 1\).*\(3, 60, 51\)"):
        write(corrnet.from_numpy(photo), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(("pixels", "write", "match"), [
    (np.zeros((3, 4, 4), np.float32), io.write_png, "float32.*save_image"),
    (np.zeros((1, 4, 4), np.int32) + 70000, io.write_png, "0..65535.*70000"),
    (np.zeros((3, 4, 4), np.uint16), io.write_png, "PNG holds gray at 16 bits.*3 channel"),
    (np.zeros((1, 4, 4), np.uint16), io.write_jpeg, "JPEG holds nothing at 16 bits"),
    (np.zeros((4, 4, 4), np.uint8), io.write_jpeg, r"JPEG holds.*RGBA.*input\[:3\]"),
    (np.zeros((2, 4, 4), np.uint8), io.write_jpeg, r"JPEG holds gray or RGB.*input\[:1\]"),
    (np.zeros((5, 4, 4), np.uint8), io.write_png, r"C = 1.*got shape \(5, 4, 4\)"),
    (np.zeros((1, 2, 4, 4), np.uint8), io.write_png, r"got shape \(1, 2, 4, 4\)"),
])
def test_writers_refuse_what_the_format_cannot_hold(tmp_path, pixels, write, match):
    target = tmp_path / "x.out"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match=match):
        write(pixels, target)
    assert target.read_bytes() == b"old"                # atomic: untouched on failure
    assert sorted(os.listdir(tmp_path)) == ["x.out"]    # and no temporary left behind


def test_bmp_refuses_alpha_and_levels_are_checked(tmp_path):
    with pytest.raises(ValueError, match="BMP.*RGBA"):
        io.write_image(np.zeros((4, 3, 3), np.uint8), tmp_path / "x.bmp")
    with pytest.raises(ValueError, match="compression_level"):
        io.write_png(np.zeros((1, 3, 3), np.uint8), tmp_path / "x.png", compression_level=10)
    with pytest.raises(ValueError, match="quality"):
        io.write_jpeg(np.zeros((1, 3, 3), np.uint8), tmp_path / "x.jpg", quality=0)
    with pytest.raises(ValueError, match="x.gif.*suffix"):
        io.write_image(np.zeros((1, 3, 3), np.uint8), tmp_path / "x.gif")


def test_corr2d_refuses_an_hwc_photo_and_keeps_chw_and_stacks():
    photo = np.zeros((600, 510, 3))
    for op in (corrnet.corr2d, corrnet.convolve2d):
        with pytest.raises(ValueError, match=r"\(600, 510, 3\).*X\.permute\(2, 0, 1\)"):
            op(photo, np.ones((3, 3)))
        # channels first, as the error says: every channel filtered
        assert op(corrnet.from_numpy(photo).permute(2, 0, 1), np.ones((3, 3))).shape == \
            (3, 598, 508)
        # planes of 510 x 3 on purpose: a leading axis says so
        assert op(photo[None], np.ones((3, 3))).shape == (1, 600, 508, 1)
    for shape in [(4, 20, 3), (3, 20, 4), (6, 4, 3), (6, 6, 5), (6, 6, 2), (2, 3, 6, 6)]:
        assert not io.looks_channels_last(shape), shape
        corrnet.corr2d(np.zeros(shape), np.ones((1, 1)))                 # still accepted
    for shape in [(5, 5, 1), (5, 5, 3), (600, 510, 4)]:
        assert io.looks_channels_last(shape), shape


# -- make_grid and save_image --------------------------------------------------------------------

def _expected_grid(images: np.ndarray, nrow: int, padding: int, pad_value: float) -> np.ndarray:
    """torchvision's documented layout, cell by cell."""
    n, c, h, w = images.shape
    if c == 1:
        images, c = np.repeat(images, 3, axis=1), 3
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding),
                   pad_value, dtype=images.dtype)
    for k in range(n):
        y0 = (k // cols) * (h + padding) + padding
        x0 = (k % cols) * (w + padding) + padding
        grid[:, y0:y0 + h, x0:x0 + w] = images[k]
    return grid


@SETTINGS
@given(st.integers(2, 11), st.sampled_from([1, 3]), st.integers(1, 5), st.integers(1, 5),
       st.integers(1, 9), st.integers(0, 3), st.sampled_from([0.0, 0.5, 1.0]))
def test_make_grid_layout(n, c, h, w, nrow, padding, pad_value):
    images = np.random.default_rng(n * 100 + h).random((n, c, h, w)).astype(np.float32)
    got = corrnet.utils.make_grid(corrnet.from_numpy(images), nrow=nrow, padding=padding,
                                  pad_value=pad_value)
    np.testing.assert_array_equal(got.numpy(), _expected_grid(images, nrow, padding, pad_value))
    as_list = corrnet.utils.make_grid([corrnet.from_numpy(i) for i in images], nrow=nrow,
                                      padding=padding, pad_value=pad_value)
    np.testing.assert_array_equal(as_list.numpy(), got.numpy())


def test_make_grid_single_image_normalize_and_value_range():
    image = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    np.testing.assert_array_equal(corrnet.utils.make_grid(image).numpy(),
                                  np.repeat(image, 3, axis=0))    # one image, made RGB
    got = corrnet.utils.make_grid(image, normalize=True).numpy()
    np.testing.assert_allclose(got[0], image[0] / 11, rtol=1e-6)
    got = corrnet.utils.make_grid(image, normalize=True, value_range=(2.0, 6.0)).numpy()
    np.testing.assert_allclose(got[0], np.clip((image[0] - 2) / 4, 0, 1), rtol=1e-6)
    batch = np.stack([np.full((1, 2, 2), 1.0), np.full((1, 2, 2), 3.0)]).astype(np.float32)
    batch[0, 0, 0, 0], batch[1, 0, 0, 0] = 0.0, 1.0
    each = corrnet.utils.make_grid(batch, normalize=True, scale_each=True, padding=0).numpy()
    np.testing.assert_allclose(each[0], [[0, 1, 0, 1], [1, 1, 1, 1]])
    joint = corrnet.utils.make_grid(batch, normalize=True, padding=0).numpy()
    np.testing.assert_allclose(joint[0], [[0, 1 / 3, 1 / 3, 1], [1 / 3, 1 / 3, 1, 1]],
                               rtol=1e-6)
    with pytest.raises(TypeError, match="value_range"):
        corrnet.utils.make_grid(image, normalize=True, value_range=[0, 1])
    with pytest.raises(ValueError, match=r"permute\(2, 0, 1\)"):
        corrnet.utils.make_grid(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="one shape"):
        corrnet.utils.make_grid([np.zeros((3, 2, 2)), np.zeros((3, 2, 3))])


def test_save_image_scales_rounds_and_clamps_as_torchvision(tmp_path):
    batch = np.random.default_rng(7).uniform(-0.2, 1.2, (5, 3, 4, 6)).astype(np.float32)
    corrnet.utils.save_image(corrnet.from_numpy(batch), tmp_path / "grid.png", nrow=3)
    grid = _expected_grid(batch, 3, 2, 0.0)
    expected = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8)     # values outside clamp
    with Image.open(tmp_path / "grid.png") as im:                      # Pillow reads it
        np.testing.assert_array_equal(np.asarray(im).transpose(2, 0, 1), expected)
    corrnet.utils.save_image(batch[0, :1], tmp_path / "one.bmp")       # one gray image -> RGB
    np.testing.assert_array_equal(_cv2_read(tmp_path / "one.bmp"),
                                  np.repeat(np.clip(batch[0, :1] * 255 + 0.5, 0, 255)
                                            .astype(np.uint8), 3, axis=0))
    with open(tmp_path / "f.png", "wb") as file:
        corrnet.utils.save_image(batch[0], file, format="png")
    assert io.read_image(tmp_path / "f.png").shape == (3, 4, 6)


def test_import_corrnet_does_not_import_pillow():
    code = "import sys, corrnet; assert 'PIL' not in sys.modules; corrnet.io.ImageReadMode.RGB"
    env = {**os.environ, "PYTHONPATH": str(Path(corrnet.__file__).parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


@pytest.mark.parametrize("suffix", ["png", "jpg", "tif", "bmp"])
def test_issue14_load_of_an_image_file_says_to_read_it_as_an_image(tmp_path, suffix):
    """`corrnet.load("x.jpg")` (a mistake the issue saw) names the format and the function."""
    from PIL import Image

    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    with pytest.raises(RuntimeError, match=r"is a (PNG|JPEG|TIFF|BMP) image, not a corrnet "
                                           r"save file: read it with corrnet.io.read_image"):
        corrnet.load(path)
