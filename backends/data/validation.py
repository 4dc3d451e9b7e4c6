"""The validation split carved off the training split (``data.validation_split``).

The rows are a function of the seed and the training split's size only: the same on
both targets, and on a resumed run, whatever the batch size or the epoch. They are
drawn from their own generator (``VALIDATION_STREAM``), so the batch order of the
examples left to train on is still ``epoch_batches``' function of (seed, epoch). The
split keeps the training split's transform and no augmentation, as the test split.
"""

from __future__ import annotations

import numpy as np

from dsl.monitor import validation_count

from .sources import Split

VALIDATION_STREAM = 0x7A11D
"""Seeds the row draw beside the seed, so it shares no numbers with the batch order or the synthetic data."""


def validation_rows(examples: int, fraction: float, seed: int) -> np.ndarray:
    """The validation split's rows of a training split of ``examples``, ascending: ``validation_count`` of them,
    a random choice from the seed."""
    order = np.random.default_rng([seed, VALIDATION_STREAM]).permutation(examples)
    return np.sort(order[:validation_count(fraction, examples)])


def carve(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(the training examples left, in their order; the validation split) of ``split``."""
    held = validation_rows(len(split), fraction, seed)
    kept = np.setdiff1d(np.arange(len(split)), held)
    return (Split({k: v[kept] for k, v in split.columns.items()}),
            Split({k: v[held] for k, v in split.columns.items()}))
