"""Streamed splits: examples read batch by batch from memory-mapped arrays, never all at once.

A ``Stream`` is the other form a split can take (``sources.Split`` holds its columns
in memory). The training driver hands it to a target's ``put`` like a split; the
target keeps it on the host and, in ``train_steps``/``evaluate``, moves one batch at
a time to the device. Batches are gathered by the same index arrays as the
in-memory path (``batches.py``), so a streamed run visits the same examples in the
same order; a thread gathers up to ``PREFETCH`` batches ahead of the steps, so disk
reads overlap compute (numpy releases the GIL while it copies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

PREFETCH = 4


@dataclass(frozen=True)
class Stream:
    """Columns of equal length (memory-mapped ``.npy`` files, or any array-likes indexed by rows).

    ``transforms`` map a column name to a function applied to each gathered batch of it
    (the input transform); ``extra`` columns are held in memory (a GAN's drawn noise);
    ``augment``, then, maps a transformed batch and its row indices to the batch trained
    on (the epoch's augmentation, ``augment.py``).
    """

    columns: dict[str, np.ndarray]
    transforms: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)
    augment: Callable[[dict[str, np.ndarray], np.ndarray], dict[str, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def head(self, n: int | None) -> Stream:
        return self if n is None else replace(self, columns={k: v[:n] for k, v in self.columns.items()})

    def with_columns(self, extra: dict[str, np.ndarray]) -> Stream:
        return replace(self, columns={**self.columns, **extra}) if extra else self

    def augmented(self, augment: Callable[[dict[str, np.ndarray], np.ndarray], dict[str, np.ndarray]]) -> Stream:
        return replace(self, augment=augment)

    def gather(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """One batch: the rows ``index`` names, in that order, transformed.

        Rows are read in ascending order (sequential disk access) and put back in the
        batch's order, which gives the same batch as ``column[index]``.
        """
        order = np.argsort(index, kind="stable")
        rows, back = index[order], np.empty_like(order)
        back[order] = np.arange(len(order))
        batch = {}
        for name, column in self.columns.items():
            values = np.asarray(column[rows])[back]
            batch[name] = self.transforms[name](values) if name in self.transforms else values
        return self.augment(batch, index) if self.augment else batch

    def iterate(self, batches: list[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """The gathered batches in order, read on a thread up to ``PREFETCH`` batches ahead."""
        with ThreadPoolExecutor(1, thread_name_prefix="dslc-stream") as pool:
            pending = [pool.submit(self.gather, b) for b in batches[:PREFETCH]]
            for i in range(len(batches)):
                if i + PREFETCH < len(batches):
                    pending.append(pool.submit(self.gather, batches[i + PREFETCH]))
                yield pending[i].result()
                pending[i] = None


def with_columns(split, extra: dict[str, np.ndarray]):
    """A split (in memory: its columns dict; or a ``Stream``) with ``extra`` in-memory columns added."""
    if isinstance(split, Stream):
        return split.with_columns(extra)
    return {**split.columns, **extra}
