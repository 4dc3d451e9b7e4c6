"""The sinusoidal position table both targets add: one float64 numpy computation, cast by each.

Both targets read the same float64 table and round it once to the model's dtype,
so their float32 outputs agree exactly. The PyTorch tutorial's ``PositionalEncoding``
computes in float32, where ``position · div`` loses digits as positions grow: its
table is 3.1e-6 from this one over the first 64 positions, 3.0e-5 over 512 and 3.9e-4
over 5000 (max abs, E = 512; E = 32: 1.9e-6, 1.6e-5, 1.6e-4).
``tests/test_sequence_ops.py`` checks the first 64 positions.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np


@cache
def sinusoidal_table(max_len: int, features: int) -> np.ndarray:
    """[max_len, features], read-only: sin(pos · div) in even columns, cos in odd, div = 10000^(-2i/features)."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    div = np.exp(np.arange(0, features, 2, dtype=np.float64) * (-math.log(10000.0) / features))
    table = np.empty((max_len, features), np.float64)
    table[:, 0::2] = np.sin(position * div)
    table[:, 1::2] = np.cos(position * div)
    table.flags.writeable = False
    return table
