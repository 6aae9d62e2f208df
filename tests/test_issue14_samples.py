"""Issue 14, item 6: the demo's photo-like picture, generated (corrnet.samples.landscape)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from corrnet.samples import landscape


def test_landscape_is_an_rgb_uint8_picture_the_same_on_every_call():
    first, second = landscape(), landscape()
    assert tuple(first.shape) == (3, 384, 512) and first.numpy().dtype == np.uint8
    assert np.array_equal(first.numpy(), second.numpy())
    assert not np.array_equal(first.numpy(), landscape(seed=1).numpy())
    assert tuple(landscape(100, 80).shape) == (3, 100, 80)


def test_landscape_has_what_filters_react_to():
    """Edges, smooth areas and texture, as a photograph has: SciPy's Sobel magnitude of the
    gray picture is strong on a few percent of the pixels, near zero on much of it."""
    gray = landscape().numpy().astype(float).mean(axis=0)
    magnitude = np.hypot(scipy.ndimage.sobel(gray, 0), scipy.ndimage.sobel(gray, 1))
    strong = (magnitude > 100).mean()
    flat = (magnitude < 10).mean()
    assert 0.005 < strong < 0.2, strong
    assert flat > 0.3, flat
    assert np.ptp(gray) > 150      # dark and bright parts


def test_landscape_refuses_tiny_sizes():
    with pytest.raises(ValueError, match="height and width must be at least 64"):
        landscape(32, 512)


def test_demo_ends_with_edge_maps_and_the_kernel_identified_back(tmp_path, capsys):
    """`corrnet demo`'s last section: the picture and its edge maps as PNG files, and Sobel x
    identified back from the 8-bit files (checked against SciPy's Sobel)."""
    from PIL import Image

    from corrnet import cli

    assert cli.main(["demo", "--size", "16", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    files = {p.name for p in tmp_path.iterdir()}
    assert {"landscape.png", "landscape-gray.png", "edges-edge.png", "edges-sobel-x.png",
            "edges-sobel-y.png", "edges-sobel.png", "sobel-x-clipped.png"} <= files
    gray = np.asarray(Image.open(tmp_path / "landscape-gray.png"), dtype=float)
    assert gray.shape == (384, 512)
    # the magnitude map follows SciPy's Sobel magnitude of the same gray picture
    drawn = np.asarray(Image.open(tmp_path / "edges-sobel.png"), dtype=float)
    reference = np.hypot(scipy.ndimage.sobel(gray, 0, mode="reflect"),
                         scipy.ndimage.sobel(gray, 1, mode="reflect"))
    assert np.corrcoef(drawn.ravel(), reference.ravel())[0, 1] > 0.98
    # the clipped file is SciPy's Sobel x, clipped to 0..255
    clipped = np.asarray(Image.open(tmp_path / "sobel-x-clipped.png"), dtype=float)
    np.testing.assert_array_equal(
        clipped, np.clip(scipy.ndimage.sobel(gray, 1, mode="reflect"), 0, 255))
    # the kernel identified back, as printed: SciPy's Sobel x kernel (its impulse response,
    # flipped: ndimage.sobel correlates)
    impulse = np.zeros((3, 3))
    impulse[1, 1] = 1
    sobel_x = scipy.ndimage.sobel(impulse, 1, mode="constant")[::-1, ::-1]
    section = printed.split("8. A photo-like picture")[1]
    rows = [line for line in section.splitlines() if line.strip().startswith("[")][:3]
    printed_kernel = np.array([[float(v) for v in row.replace("[", " ").replace("]", " ").split()]
                               for row in rows])
    np.testing.assert_allclose(printed_kernel, sobel_x, atol=1e-3)
    assert "largest error" in section and "kernels that ran" in printed
