"""A photo-like test picture, generated: something real-looking to filter and to identify
kernels on, without shipping (or licensing) a photograph.

`landscape()` draws a small outdoor scene — a sky with soft clouds and a sun, mountain ridges
fading with distance, a lake, a meadow with a house and trees — with the things filters react
to in a photograph: straight edges (the house), soft edges (clouds, ridges), texture (grass,
foliage), smooth gradients (sky) and a little sensor noise. It is the same image on every
machine (a fixed seed, NumPy and SciPy only).

>>> from corrnet.samples import landscape
>>> picture = landscape()
>>> picture.shape, picture.dtype
(torch.Size([3, 384, 512]), torch.uint8)
"""

from __future__ import annotations

import numpy as np


def _smooth_noise(rng, shape, scale: float) -> np.ndarray:
    """Gaussian noise blurred by `scale` pixels and rescaled to [-1, 1]."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(shape), scale, mode="wrap")
    return field / np.abs(field).max()


def _ridge(rng, width: int, base: float, height: float, roughness: float) -> np.ndarray:
    """A mountain skyline: rows (from the top) of a ridge, one per column."""
    profile = np.zeros(width)
    for octave in range(6):      # midpoint-displacement-like sum of smooth noises
        scale = width / 4 / 2**octave
        profile += roughness**octave * _smooth_noise(rng, (width,), max(scale, 1.0))
    profile = (profile - profile.min()) / (np.ptp(profile) + 1e-12)
    return base - height * profile


def landscape(height: int = 384, width: int = 512, seed: int = 0):
    """The scene as a (3, height, width) uint8 tensor (RGB), the layout `corrnet.io` reads
    and writes. Any size from 64x64 up; about 30 ms at 384x512."""
    import corrnet

    if height < 64 or width < 64:
        raise ValueError(f"landscape(): height and width must be at least 64, got "
                         f"height={height}, width={width}")
    rng = np.random.default_rng(seed)
    rows = np.arange(height)[:, None] / height          # (H, 1), 0 at the top
    cols = np.arange(width)[None, :] / width            # (1, W)
    horizon = 0.55
    # sky: blue to pale towards the horizon, a sun, soft clouds
    sky_t = np.clip(rows / horizon, 0, 1)
    image = np.empty((height, width, 3))
    image[:] = (1 - sky_t)[..., None] * [0.25, 0.45, 0.85] + sky_t[..., None] * [0.75, 0.85, 0.95]
    sun = np.hypot((cols - 0.78) * width / height, rows - 0.16)
    image += np.clip(1 - sun / 0.06, 0, 1)[..., None] ** 0.5 * [0.6, 0.5, 0.2]
    clouds = np.clip(_smooth_noise(rng, (height, width), 12) * 2.5 - 0.4, 0, 1)
    clouds *= np.clip(1 - rows / horizon, 0, 1) ** 0.5
    image = image * (1 - clouds[..., None]) + clouds[..., None] * 0.97
    # mountains: two ridges, the far one hazier
    for base, top, color in [(0.50, 0.22, [0.52, 0.58, 0.70]), (0.56, 0.18, [0.30, 0.38, 0.36])]:
        skyline = _ridge(rng, width, base, top, 0.55)[None, :]
        mask = rows >= skyline                           # (H, W)
        shade = 0.85 + 0.15 * _smooth_noise(rng, (height, width), 3)
        image[mask] = (np.array(color) * shade[..., None])[mask]
    # lake below the mountains, reflecting the sky with ripples; meadow in front
    lake = np.broadcast_to((rows >= horizon) & (rows < 0.68), (height, width))
    ripples = 0.05 * np.sin(rows * 900 + 3 * _smooth_noise(rng, (height, width), 6))
    image[lake] = ([0.30, 0.45, 0.65] + ripples[..., None])[lake]
    meadow = np.broadcast_to(rows >= 0.68, (height, width))
    grass = _smooth_noise(rng, (height, width), 1.2) * 0.5 + _smooth_noise(rng, (height, width), 8)
    image[meadow] = (np.array([0.30, 0.55, 0.20]) * (1 + 0.25 * grass[..., None]))[meadow]
    # a house: walls, a roof, a door and windows (straight edges, corners)
    left, right, eaves, ground = 0.18, 0.40, 0.62, 0.86
    walls = (cols >= left) & (cols < right) & (rows >= eaves) & (rows < ground)
    image[walls] = [0.85, 0.78, 0.62]
    roof_height = (np.abs(cols - (left + right) / 2) / ((right - left) / 2 + 0.03)) * 0.1
    roof = (rows >= eaves - 0.1 + roof_height) & (rows < eaves) & ~(roof_height > 0.1)
    image[roof] = [0.55, 0.18, 0.12]
    for x0 in (0.21, 0.33):
        window = (cols >= x0) & (cols < x0 + 0.045) & (rows >= 0.67) & (rows < 0.73)
        image[window] = [0.20, 0.30, 0.45]
    door = (cols >= 0.27) & (cols < 0.31) & (rows >= 0.75) & (rows < ground)
    image[door] = [0.35, 0.22, 0.12]
    # trees: round, textured crowns on trunks
    foliage = _smooth_noise(rng, (height, width), 1.5)
    for x0, y0, radius in [(0.55, 0.70, 0.07), (0.66, 0.74, 0.09), (0.90, 0.72, 0.06)]:
        trunk = (np.abs(cols - x0) < 0.008) & (rows >= y0) & (rows < y0 + 0.16)
        image[trunk] = [0.30, 0.20, 0.10]
        crown = np.hypot((cols - x0) * width / height, rows - y0) < radius
        image[crown] = (np.array([0.15, 0.40, 0.12]) * (1 + 0.4 * foliage[..., None]))[crown]
    # a lens's softness and a sensor's noise
    from scipy import ndimage

    image = ndimage.gaussian_filter(image, (0.7, 0.7, 0))
    image += rng.normal(0, 0.01, image.shape)
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return corrnet.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
