"""This process's place among the processes of one data-parallel run.

torch DDP runs one process per worker (``--nproc N``, or an external ``torchrun``,
which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``); a multi-host JAX run has one
process per host (``jax.process_index()`` of ``jax.process_count()``). Every process
runs the same driver on the same global batches; only rank 0 writes the run's files
and shows progress, so a run folder never has two writers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the device index on this host (torch: cuda:LOCAL_RANK)

    @property
    def writes(self) -> bool:
        """Whether this process writes files and shows progress: rank 0 only."""
        return self.rank == 0

    @classmethod
    def from_env(cls, environ=os.environ) -> World:
        """torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); one process where they are absent."""
        return cls(int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)), int(environ.get("LOCAL_RANK", 0)))
