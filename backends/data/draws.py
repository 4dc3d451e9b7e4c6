"""Columns drawn from the seed rather than read from the data: a GAN's noise.

A function of (seed, epoch, column) only, made by the one data pipeline for both
targets, so their generators see the same noise and a resumed run the noise an
uninterrupted one did. Each example gets fresh noise every epoch.
"""

from __future__ import annotations

import zlib

import numpy as np

from dsl.objectives import Objective

EVAL_EPOCH = 0
"""Evaluation draws with epoch 0 (training epochs count from 1): the same noise every evaluation."""


def draw_columns(objective: Objective | None, count: int, seed: int, epoch: int) -> dict[str, np.ndarray]:
    """Standard-normal float32 noise for each of the objective's drawn columns, ``count`` examples."""
    columns = {}
    for name, kind in objective.drawn if objective else ():
        rng = np.random.default_rng([seed, epoch, zlib.crc32(name.encode())])
        columns[name] = rng.standard_normal((count, *kind.shape), dtype=np.float32)
    return columns
