"""``glyphs``: a CIFAR-shaped classification task that trains offline, drawn from a seed.

CIFAR-10 cannot be downloaded everywhere (this project's CI has no network), and a
random teacher over noise images is no task for a convnet: ResNet-20's global
average pooling cannot see where a pixel is, so on ``synthetic`` data only its
training loss falls. Here each 3x32x32 uint8 image holds one of ten glyphs (the
class) at a random position and size, in a random colour over a random background
colour, with pixel noise: what a class is does not depend on where or how large it
is, as in natural images, and every glyph looks the same mirrored left to right, so
torchvision's ``RandomHorizontalFlip`` keeps the label.
"""

from __future__ import annotations

import numpy as np

from .sources import Source, images_split

GLYPHS_SIZE, GLYPHS_SPLIT = 32, (10000, 2000)
GLYPH_NAMES = ("square", "frame", "disc", "ring", "plus", "cross", "bar", "pillar", "triangle", "dots")


def glyphs(seed: int = 0) -> Source:
    """Images (N, 3, 32, 32) uint8 and labels 0..9 (``GLYPH_NAMES``), both splits from one seed."""
    rng = np.random.default_rng([seed, 0x6C1F5])
    count = sum(GLYPHS_SPLIT)
    labels = rng.integers(0, len(GLYPH_NAMES), count)
    masks = _masks(labels, rng)
    background, ink = (rng.uniform(0, 255, (count, 3, 1, 1)).astype(np.float32) for _ in range(2))
    ink = np.where(np.abs(ink - background) < 80, 255 - background, ink)  # keep every glyph visible
    noise = 20 * rng.standard_normal((count, 3, GLYPHS_SIZE, GLYPHS_SIZE), np.float32)
    images = np.where(masks[:, None], ink, background) + noise
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    n = GLYPHS_SPLIT[0]
    return Source(images_split(images[:n], labels[:n]), images_split(images[n:], labels[n:]), len(GLYPH_NAMES))


def _masks(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean (N, 32, 32): each label's glyph, radius 5-11 pixels, centred anywhere it fits."""
    count, size = len(labels), GLYPHS_SIZE
    radius = rng.uniform(5, 11, count)
    cy, cx = (rng.uniform(radius + 1, size - radius - 1) for _ in range(2))
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    masks = np.zeros((count, size, size), bool)
    for label, shape in enumerate(_SHAPES):
        rows = np.flatnonzero(labels == label)
        scale = radius[rows, None, None]
        dy, dx = (y - cy[rows, None, None]) / scale, (x - cx[rows, None, None]) / scale  # [-1, 1] in its box
        masks[rows] = (np.abs(dy) <= 1) & (np.abs(dx) <= 1) & shape(dy, dx)
    return masks


THIN = 0.3
_SHAPES = (  # in the glyph's own coordinates; each is cut to its box [-1, 1]^2 by _masks
    lambda dy, dx: np.ones_like(dy, bool),                                          # square
    lambda dy, dx: (np.abs(dy) > 1 - THIN) | (np.abs(dx) > 1 - THIN),               # frame
    lambda dy, dx: np.hypot(dy, dx) <= 1,                                           # disc
    lambda dy, dx: np.abs(np.hypot(dy, dx) - (1 - THIN / 2)) <= THIN / 2,           # ring
    lambda dy, dx: (np.abs(dy) < THIN) | (np.abs(dx) < THIN),                       # plus
    lambda dy, dx: np.abs(np.abs(dy) - np.abs(dx)) < THIN,                          # cross (x)
    lambda dy, dx: np.abs(dy) < THIN,                                               # bar
    lambda dy, dx: np.abs(dx) < THIN,                                               # pillar
    lambda dy, dx: np.abs(dx) <= (dy + 1) / 2,                                      # triangle, apex up
    lambda dy, dx: np.hypot(np.abs(dy) - 0.5, np.abs(dx) - 0.5) < 0.35,             # dots: four
)
