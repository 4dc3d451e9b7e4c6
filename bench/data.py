"""Synthetic image data shaped like the model's input, the same for every variant and every process.

``images`` are uint8 (N, C, H, W): for MNIST-shaped (1, 28, 28) the bytes torchvision's
MNIST holds, for CIFAR-shaped (3, 32, 32) CIFAR-10's; ``x`` is what dslc's pipeline
makes of them (``/255``, then Normalize(0.5, 0.5) per channel, MNIST specs' own),
float32 (N, C, H, W) in [-1, 1]; labels are int64 class ids from a fixed random linear
"teacher", so the task is learnable and losses fall. Everything is a function of the
seed (and the shape) only, so a subprocess (the Keras workers) rebuilds the identical
arrays instead of receiving them. Batch size and optimizer come from each model's
spec (``bench/models.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NUM_CLASSES = 10


@dataclass(frozen=True)
class BenchData:
    images: np.ndarray  # uint8 (N, C, H, W)
    x: np.ndarray       # float32 (N, C, H, W), normalized to [-1, 1]
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


def run_batches(num_examples: int, steps: int, repeat: int, seed: int, batch_size: int) -> list[np.ndarray]:
    """The index batches of one timed run: dslc's own epoch order, full batches only.

    Full batches only, so no variant meets a new batch shape (a recompile) inside the
    timed region. Runs longer than an epoch continue into the next epoch's order.
    """
    from backends.data import epoch_batches

    batches: list[np.ndarray] = []
    epoch = 1 + repeat * 1000
    while len(batches) < steps:
        batches += [b for b in epoch_batches(num_examples, batch_size, seed, epoch) if len(b) == batch_size]
        epoch += 1
    return batches[:steps]
