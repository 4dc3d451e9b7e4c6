"""Dropout: zeroes each value with probability p while training, scaling the rest by 1/(1-p).

Both backends agree on the formula; their random streams cannot match, so parity
is checked with ``p = 0`` (the op's ``deterministic`` arguments), as docs/PARITY.md
§8 advises.
"""

from __future__ import annotations

from ..tensors import TensorType
from ..types import Params, Probability
from .base import Example, OpDef, require_float


class DropoutParams(Params):
    p: Probability = 0.5


def _infer_dropout(p: DropoutParams, x: TensorType) -> tuple[DropoutParams, TensorType]:
    require_float(x)
    return p, x


OPS = (
    OpDef(
        name="dropout",
        params=DropoutParams,
        infer=_infer_dropout,
        doc="Zeroes values with probability p (default 0.5) while training (torch.nn.Dropout).",
        examples=(Example((6,)), Example((3, 4, 4), {"p": 0.2})),
        deterministic=lambda p: p.model_copy(update={"p": 0.0}),
    ),
)
