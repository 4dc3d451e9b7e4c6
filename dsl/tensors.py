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
    uses internally.
    """

    shape: tuple[int, ...]
    dtype: str = "float32"

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
        return replace(self, shape=tuple(int(d) for d in shape))

    def __str__(self) -> str:
        return format_shape(self.shape)


def format_shape(shape: tuple[int, ...]) -> str:
    """``[N, 32, 13, 13]``: the batch axis is shown as N."""
    return "[" + ", ".join(["N", *map(str, shape)]) + "]"
