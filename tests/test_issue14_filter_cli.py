"""Issue 14, item 2: ``corrnet filter IN OUT --kernel K`` — in-process through
``corrnet.cli.main`` (one subprocess test for the installed entry point's path).

Oracles: scipy.ndimage and OpenCV filter the same pixels, read by OpenCV from the same file;
the output file is read back by OpenCV (and Pillow for modes OpenCV premultiplies).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image

import corrnet
from corrnet import io
from corrnet.cli import main


def _photo(channels=3, height=24, width=32, dtype=np.uint8, seed=0) -> np.ndarray:
    """A smooth picture with an edge and noise, (C, H, W)."""
    top = 255 if dtype == np.uint8 else 65535
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    planes = [(x * (c + 1) * 3 + y * 2 + (x > width // 2) * 80 + rng.integers(0, 20, x.shape))
              % 256 / 255 * top for c in range(channels)]
    return np.stack(planes).astype(dtype)


def _read(path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return pixels[None] if pixels.ndim == 2 else \
        pixels[:, :, [2, 1, 0, 3][:pixels.shape[2]]].transpose(2, 0, 1)


def _read_la(path) -> np.ndarray:
    """Pillow's pixels of a gray + alpha file (OpenCV expands it to BGRA)."""
    with Image.open(path) as im:
        assert im.mode == "LA"
        return np.asarray(im).transpose(2, 0, 1)


def _run(capsys, *argv):
    code = main(["filter", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _per_plane(fn, planes, **kw):
    return np.stack([fn(p.astype(float), **kw) for p in planes])


def test_sobel_on_rgb_is_the_magnitude_per_channel_clipped(tmp_path, capsys):
    pixels = _photo()
    io.write_png(pixels, tmp_path / "in.png")
    code, out, err = _run(capsys, tmp_path / "in.png", tmp_path / "out.png", "--kernel", "sobel")
    assert (code, err) == (0, "") and "out.png" in out
    magnitude = np.stack([np.hypot(ndi.sobel(p, 0, mode="reflect"),
                                   ndi.sobel(p, 1, mode="reflect"))
                          for p in pixels.astype(float)])
    np.testing.assert_array_equal(_read(tmp_path / "out.png"),
                                  np.clip(np.rint(magnitude), 0, 255).astype(np.uint8))


def test_rgba_keeps_alpha_and_filters_colour_like_opencv(tmp_path, capsys):
    pixels = _photo(4)
    io.write_png(pixels, tmp_path / "in.png")
    code, _, err = _run(capsys, tmp_path / "in.png", tmp_path / "out.png", "-k", "gaussian:1.2")
    assert (code, err) == (0, "")
    got = _read(tmp_path / "out.png")
    np.testing.assert_array_equal(got[3], pixels[3])                  # alpha unchanged
    r = int(4 * 1.2 + 0.5)
    blurred = np.stack([cv2.GaussianBlur(p.astype(float), (2 * r + 1,) * 2, 1.2,
                                         borderType=cv2.BORDER_REFLECT) for p in pixels[:3]])
    assert np.abs(got[:3].astype(int) - np.rint(blurred)).max() <= 1   # OpenCV's own weights
    np.testing.assert_array_equal(
        got[:3], np.clip(np.rint(_per_plane(ndi.gaussian_filter, pixels[:3], sigma=1.2,
                                            mode="reflect")), 0, 255))


def test_16_bit_gray_stays_16_bit(tmp_path, capsys):
    pixels = _photo(1, dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "in.png"), pixels[0])
    code, _, err = _run(capsys, tmp_path / "in.png", tmp_path / "out.tif", "--kernel", "box:3",
                        "--boundary", "wrap")
    assert (code, err) == (0, "")
    got = cv2.imread(str(tmp_path / "out.tif"), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, np.rint(ndi.uniform_filter(pixels[0].astype(float), 3,
                                                                  mode="wrap")))


def test_abs_and_normalize_mappings_of_a_literal_kernel(tmp_path, capsys):
    pixels = _photo(1)
    io.write_png(pixels, tmp_path / "in.png")
    K = np.array([[1.0, -1.0]])
    raw = cv2.filter2D(pixels[0].astype(float), -1, K, borderType=cv2.BORDER_REFLECT)
    assert raw.min() < 0                                              # both signs present
    _run(capsys, tmp_path / "in.png", tmp_path / "abs.png", "--kernel", "[[1,-1]]", "--abs")
    np.testing.assert_array_equal(_read(tmp_path / "abs.png")[0],
                                  np.clip(np.rint(np.abs(raw)), 0, 255))
    _run(capsys, tmp_path / "in.png", tmp_path / "clip.png", "--kernel", "edge")
    np.testing.assert_array_equal(_read(tmp_path / "clip.png")[0], np.clip(np.rint(raw), 0, 255))
    _run(capsys, tmp_path / "in.png", tmp_path / "norm.png", "--kernel", "edge", "--normalize")
    stretched = np.rint((raw - raw.min()) * 255 / (raw.max() - raw.min()))
    got = _read(tmp_path / "norm.png")[0]
    np.testing.assert_array_equal(got, stretched)
    assert got.min() == 0 and got.max() == 255


def test_valid_and_full_modes_resize_colour_and_alpha_together(tmp_path, capsys):
    pixels = _photo(2, 10, 12)                                        # gray + alpha
    io.write_png(pixels, tmp_path / "in.png")
    np.save(tmp_path / "k.npy", np.arange(15.0).reshape(3, 5) / 100)
    _run(capsys, tmp_path / "in.png", tmp_path / "valid.png", "--kernel", tmp_path / "k.npy",
         "--mode", "valid")
    got = _read_la(tmp_path / "valid.png")
    assert got.shape == (2, 8, 8)
    np.testing.assert_array_equal(got[1], pixels[1, 1:9, 2:10])      # alpha at window centres
    colour = ndi.correlate(pixels[0].astype(float), np.arange(15.0).reshape(3, 5) / 100)
    np.testing.assert_array_equal(got[0], np.clip(np.rint(colour[1:9, 2:10]), 0, 255))
    (tmp_path / "k.txt").write_text("1 2\n3 4\n")
    _run(capsys, tmp_path / "in.png", tmp_path / "full.png", "--kernel", tmp_path / "k.txt",
         "--mode", "full", "--boundary", "fill", "--normalize")
    assert _read_la(tmp_path / "full.png").shape == (2, 11, 13)


def test_gray_option_and_jpeg_output(tmp_path, capsys):
    io.write_png(_photo(4), tmp_path / "in.png")
    code, _, err = _run(capsys, tmp_path / "in.png", tmp_path / "out.png", "-k", "laplacian",
                        "--gray", "--abs")
    assert (code, err) == (0, "") and _read_la(tmp_path / "out.png").shape == (2, 24, 32)
    io.write_png(_photo(3), tmp_path / "rgb.png")
    code, _, err = _run(capsys, tmp_path / "rgb.png", tmp_path / "out.jpg", "-k", "sharpen")
    assert (code, err) == (0, "") and _read(tmp_path / "out.jpg").shape == (3, 24, 32)


@pytest.mark.parametrize(("make", "argv", "match"), [
    (None, ["missing.png", "out.png", "-k", "edge"], "no such file: '.*missing.png'"),
    ("text", ["in.png", "out.png", "-k", "edge"], "in.png.*Pillow"),
    ("cut", ["in.png", "out.png", "-k", "edge"], "in.png.*Pillow"),
    ("rgb", ["in.png", "out.png", "-k", "[[1,-1]"], "--kernel: the literal '\\[\\[1,-1\\]'"),
    ("rgb", ["in.png", "out.png", "-k", "blur"], "--kernel: unknown kernel 'blur'"),
    ("rgb", ["in.png", "out.png", "-k", "box:40", "--mode", "valid"],
     "--kernel box:40: the kernel \\(40 x 40\\) is larger than the image '.*in.png' "
     "\\(24 x 32\\)"),
    ("rgba", ["in.png", "out.jpg", "-k", "edge"],
     "OUT '.*out.jpg': JPEG holds gray or RGB at 8 bits; IN '.*in.png' is RGBA"),
    ("deep", ["in.png", "out.jpg", "-k", "edge"], "OUT '.*out.jpg': JPEG holds nothing at 16"),
    ("rgb", ["in.png", "out.gif", "-k", "edge"], "out.gif.*suffix"),
])
def test_bad_input_is_one_line_naming_the_file_or_argument(tmp_path, capsys, make, argv, match):
    if make == "text":
        (tmp_path / "in.png").write_text("hello")
    elif make == "cut":
        io.write_png(_photo(), tmp_path / "whole.png")
        data = (tmp_path / "whole.png").read_bytes()
        (tmp_path / "in.png").write_bytes(data[: len(data) // 2])
    elif make == "deep":
        assert cv2.imwrite(str(tmp_path / "in.png"), _photo(1, dtype=np.uint16)[0])
    elif make is not None:
        io.write_png(_photo({"rgb": 3, "rgba": 4}[make]), tmp_path / "in.png")
    argv = [str(tmp_path / a) if a.endswith((".png", ".jpg", ".gif")) else a for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corrnet filter: error: "), err
    assert "Traceback" not in err
    import re

    assert re.search(match, lines[0]), lines[0]
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())   # nothing written


def test_usage_errors_from_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["filter", "a.png", "b.png"])                 # --kernel is required
    assert stop.value.code == 2 and "--kernel" in capsys.readouterr().err


def test_the_command_runs_as_a_program(tmp_path):
    io.write_png(_photo(1, 8, 9), tmp_path / "in.png")
    env = {**os.environ, "PYTHONPATH": str(Path(corrnet.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-m", "corrnet.cli", "filter", "in.png", "out.bmp",
                           "--kernel", "emboss"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _read(tmp_path / "out.bmp").shape == (1, 8, 9)
