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
