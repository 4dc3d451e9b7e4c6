"""Synthetic MNIST-shaped data, the same for every variant and every process.

``images`` are uint8 (N, 1, 28, 28), the bytes torchvision's MNIST holds; ``x`` is what
dslc's pipeline makes of them (``/255``, then the spec's Normalize(0.5, 0.5)), float32
(N, 1, 28, 28); labels are int64 0..9 from a fixed random linear "teacher", so the
task is learnable and losses fall. Everything is a function of the seed only, so a
subprocess (the Keras workers) rebuilds the identical arrays instead of receiving them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BATCH_SIZE = 64
LR = 1e-3
NUM_CLASSES = 10


@dataclass(frozen=True)
class BenchData:
    images: np.ndarray  # uint8 (N, C, H, W)
    x: np.ndarray       # float32 (N, 1, 28, 28), normalized to [-1, 1]
    y: np.ndarray       # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)


@lru_cache(maxsize=2)
def make_data(num_examples: int, seed: int = 0, shape: tuple[int, ...] = (1, 28, 28),
              classes: int = NUM_CLASSES) -> BenchData:
    """MNIST-shaped by default; another spec's input shape and class count may be given."""
    rng = np.random.default_rng([seed, 0xBE7C])
    images = rng.integers(0, 256, size=(num_examples, *shape), dtype=np.uint8)
    x = images.astype(np.float32)  # in place from here: no full-size temporaries (memory is measured)
    x /= 255.0
    x -= 0.5
    x /= 0.5
    teacher = rng.standard_normal((int(np.prod(shape)), classes)).astype(np.float32)
    y = (x.reshape(num_examples, -1) @ teacher).argmax(1).astype(np.int64)
    return BenchData(images, x, y)


def run_batches(num_examples: int, steps: int, repeat: int, seed: int = 0) -> list[np.ndarray]:
    """The index batches of one timed run: dslc's own epoch order, full batches only.

    Full batches only, so no variant meets a new batch shape (a recompile) inside the
    timed region. Runs longer than an epoch continue into the next epoch's order.
    """
    from backends.data import epoch_batches

    batches: list[np.ndarray] = []
    epoch = 1 + repeat * 1000
    while len(batches) < steps:
        batches += [b for b in epoch_batches(num_examples, BATCH_SIZE, seed, epoch) if len(b) == BATCH_SIZE]
        epoch += 1
    return batches[:steps]
