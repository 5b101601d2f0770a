"""Photo-like renderings of digits: dark ink on a light, unevenly lit, noisy page, the digit at
another size and anywhere on it. Test data for model.predict's photo path, shared by
benchmarks.predict (its accuracy on photos) and tests/test_photo.py."""
from __future__ import annotations

import numpy as np


def render(digit: np.ndarray, rng: np.random.Generator, noise: float = 6.0, gradient: float = 25.0,
           size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 (H, W) page holding `digit` (uint8 (28, 28), white on black) scaled and placed at random."""
    from PIL import Image

    h, w = size or (int(rng.integers(100, 300)), int(rng.integers(100, 300)))
    yy, xx = np.mgrid[:h, :w]
    page = rng.uniform(190, 235) + rng.uniform(-gradient, gradient) * yy / h + rng.uniform(-gradient, gradient) * xx / w
    s = int(rng.integers(36, int(min(h, w) * 0.9) + 1))
    big = np.asarray(Image.fromarray(digit).resize((s, s), Image.Resampling.BILINEAR), np.float32) / 255
    y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    ink = np.zeros((h, w), np.float32)
    ink[y0:y0 + s, x0:x0 + s] = big
    img = page - ink * (page - rng.uniform(20, 70)) + rng.normal(0, noise, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8)
