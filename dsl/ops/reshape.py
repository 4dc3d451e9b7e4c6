"""Ops that move values without computing on them: ``flatten``."""

from __future__ import annotations

import math

from ..tensors import TensorType, format_shape
from ..types import Int, Params
from .base import Example, OpDef, ShapeError


class FlattenParams(Params):
    start_dim: Int = 1
    end_dim: Int = -1


def _infer_flatten(p: FlattenParams, x: TensorType) -> tuple[FlattenParams, TensorType]:
    """Flattens dims start_dim..end_dim of the batched tensor, in channels-first order."""
    rank = x.rank + 1
    start, end = (d + rank if d < 0 else d for d in (p.start_dim, p.end_dim))
    if not 1 <= start < rank:
        raise ShapeError(
            f"start_dim {p.start_dim} is out of range for input {format_shape(x.shape)} (dim 0, the batch, stays)",
            param="start_dim",
        )
    if not start <= end < rank:
        raise ShapeError(f"end_dim {p.end_dim} must not come before start_dim {p.start_dim}", param="end_dim")
    shape = x.shape[: start - 1] + (math.prod(x.shape[start - 1 : end]),) + x.shape[end:]
    return p.model_copy(update={"start_dim": start, "end_dim": end}), x.with_shape(shape)


OPS = (
    OpDef(
        name="flatten",
        params=FlattenParams,
        infer=_infer_flatten,
        doc="Flattens dims start_dim..end_dim (default 1..-1) in (C, H, W) order (torch.nn.Flatten).",
        examples=(Example((3, 4, 5)), Example((3, 4, 5), {"start_dim": 2}), Example((2, 3, 4), {"end_dim": 2})),
    ),
)
