"""Dropout: zeroes each value (dropout2d: each channel) with probability p while training,
scaling the rest by 1/(1-p).

Both backends agree on the formula; their random streams cannot match, so parity
is checked with ``p = 0`` (the op's ``deterministic`` arguments), as docs/PARITY.md
§8 advises.
"""

from __future__ import annotations

from ..tensors import TensorType, format_shape
from ..types import Params, Probability
from .base import Example, OpDef, ShapeError, require_float


class DropoutParams(Params):
    p: Probability = 0.5


def _infer_dropout(p: DropoutParams, x: TensorType) -> tuple[DropoutParams, TensorType]:
    require_float(x)
    return p, x


def _infer_dropout2d(p: DropoutParams, x: TensorType) -> tuple[DropoutParams, TensorType]:
    """[N, C, H, W] only: torch reads a 3-D input as (N, C, L) with a warning, a layout dslc refuses to guess."""
    require_float(x)
    if x.rank != 3:
        raise ShapeError(f"expects input of shape [N, C, H, W], got {format_shape(x.shape)}; "
                         "dropout zeroes single values of any shape")
    return p, x


def _no_randomness(p: DropoutParams) -> DropoutParams:
    return p.model_copy(update={"p": 0.0})


OPS = (
    OpDef(
        name="dropout",
        params=DropoutParams,
        infer=_infer_dropout,
        doc="Zeroes values with probability p (default 0.5) while training (torch.nn.Dropout).",
        examples=(Example((6,)), Example((3, 4, 4), {"p": 0.2})),
        deterministic=_no_randomness,
    ),
    OpDef(
        name="dropout2d",
        params=DropoutParams,
        infer=_infer_dropout2d,
        doc="Zeroes whole channels of [N, C, H, W] with probability p (default 0.5) while training "
            "(torch.nn.Dropout2d).",
        examples=(Example((3, 4, 4)), Example((2, 3, 5), {"p": 0.2})),
        deterministic=_no_randomness,
    ),
)
