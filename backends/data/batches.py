"""The order examples are visited in: a function of the seed and the epoch only.

Both targets call these, so for the same seed they train on identical batches in
identical order. Batches are index arrays into the in-memory dataset; nothing is
copied per example.
"""

from __future__ import annotations

import numpy as np


def epoch_batches(num_examples: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled index batches for one epoch; the last one may be smaller (as torch's DataLoader)."""
    order = np.random.default_rng([seed, epoch]).permutation(num_examples).astype(np.int32)
    return [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]


def eval_batches(num_examples: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """In-order index batches padded to one shape, and a mask that is 0 on the padding.

    One shape means one compiled evaluation step, whatever the dataset size.
    """
    batch_size = min(batch_size, num_examples)
    count = -(-num_examples // batch_size)
    index = np.arange(count * batch_size, dtype=np.int32)
    mask = (index < num_examples).astype(np.float32)
    index = np.where(index < num_examples, index, 0)
    return index.reshape(count, batch_size), mask.reshape(count, batch_size)
