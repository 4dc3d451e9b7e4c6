"""The order examples are visited in: a function of the seed and the epoch only.

Both targets call these, so for the same seed they train on identical batches in
identical order. Batches are index arrays into the in-memory dataset; nothing is
copied per example.
"""

from __future__ import annotations

import numpy as np


def epoch_batches(num_examples: int, batch_size: int, seed: int, epoch: int, rank: int = 0,
                  world: int = 1) -> list[np.ndarray]:
    """Shuffled index batches for one epoch; the last one may be smaller (as torch's DataLoader).

    The global order, and so each global batch of ``batch_size`` examples, is a
    function of (seed, epoch) only. Of ``world`` data-parallel ranks, rank ``r`` takes
    shard ``r`` of every global batch: ``np.array_split(batch, world)[r]``, contiguous
    shards whose sizes differ by at most one (the first ``len(batch) % world`` shards
    have the extra example). Nothing is dropped or padded, unlike torch's
    ``DistributedSampler`` (which pads by repeating examples or drops the tail), so the
    ranks together train on exactly the batches one process would; a rank may get an
    empty shard of a last batch smaller than ``world``. A data-parallel step that
    averages gradients must weight each rank by its shard size (sum of per-example
    losses over the global batch size) to equal the one-process step.
    ``rank=0, world=1`` gives the global batches themselves.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank must lie in 0..world-1 and world be at least 1; got rank={rank}, world={world}")
    order = np.random.default_rng([seed, epoch]).permutation(num_examples).astype(np.int32)
    batches = [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]
    return batches if world == 1 else [shard_of(batch, rank, world) for batch in batches]


def shard_of(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s contiguous share of one global batch (``epoch_batches``'s shards; the whole batch for one)."""
    return batch if world == 1 else np.array_split(batch, world)[rank]


def eval_batches(num_examples: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """In-order index batches padded to one shape, and a mask that is 0 on the padding.

    One shape means one compiled evaluation step, whatever the dataset size.
    """
    return padded_batches(num_examples, min(batch_size, num_examples))


def padded_batches(num_examples: int, batch_size: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``eval_batches`` of exactly ``batch_size`` rows over rows ``start .. start + num_examples - 1``: a split
    that shares the arrays (and the compiled step) of another, the validation split after the test split's rows."""
    count = -(-num_examples // batch_size)
    index = np.arange(count * batch_size, dtype=np.int32)
    mask = (index < num_examples).astype(np.float32)
    index = np.where(index < num_examples, index, 0) + start
    return index.reshape(count, batch_size), mask.reshape(count, batch_size)
