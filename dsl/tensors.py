"""The static type of a tensor flowing between layers."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
BOOL_DTYPES = ("bool",)


@dataclass(frozen=True)
class TensorType:
    """Shape and dtype of one example: the batch axis is implicit and comes first.

    Shapes are channels-first (C, H, W), as in torch, whatever layout a backend
    uses internally. ``vocab`` is a model input's declared id range (``vocab:`` in
    the spec): one bound for every id, or one per position of the last axis (per
    field). Only the declared input carries it: ``with_shape`` drops it, since ids
    moved by a reshape no longer sit in the positions the bounds name.
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    vocab: int | tuple[int, ...] | None = None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def with_shape(self, shape) -> TensorType:
        return replace(self, shape=tuple(int(d) for d in shape), vocab=None)

    def __str__(self) -> str:
        return format_shape(self.shape)


def format_shape(shape: tuple[int, ...]) -> str:
    """``[N, 32, 13, 13]``: the batch axis is shown as N."""
    return "[" + ", ".join(["N", *map(str, shape)]) + "]"
