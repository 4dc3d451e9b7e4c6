"""Linear layers: ``linear``, ``identity`` (torch.nn groups them the same way) and ``add_bias``.

``add_bias`` is a model's global offset, one learned scalar added to every value
(matrix factorization's global mean rating; a torch model's
``nn.Parameter(torch.zeros(1))``), starting at 0.
"""

from __future__ import annotations

import math

from ..tensors import TensorType, format_shape
from ..types import Bool, Params, PositiveInt
from .base import Constant, Example, OpDef, ShapeError, Uniform, Weight, require_float


class LinearParams(Params):
    in_features: PositiveInt | None = None
    out_features: PositiveInt
    bias: Bool = True


def _infer_linear(p: LinearParams, x: TensorType) -> tuple[LinearParams, TensorType]:
    require_float(x)
    if x.rank == 0:
        raise ShapeError(f"expects input of shape [N, ..., features], got {format_shape(x.shape)} (one value per "
                         "example); give it a features axis first (reshape: {shape: [1]})")
    features = x.shape[-1]
    if p.in_features is not None and p.in_features != features:
        raise ShapeError(
            f"in_features is {p.in_features} but its input has {features} features "
            f"(input shape {format_shape(x.shape)}); set in_features: {features} or leave it out to infer it",
            param="in_features",
        )
    return p.model_copy(update={"in_features": features}), x.with_shape(x.shape[:-1] + (p.out_features,))


def _linear_weights(p: LinearParams) -> dict[str, Weight]:
    bound = 1 / math.sqrt(p.in_features)
    weights = {"weight": Weight((p.out_features, p.in_features), Uniform.symmetric(bound))}
    if p.bias:
        weights["bias"] = Weight((p.out_features,), Uniform.symmetric(bound))
    return weights


class IdentityParams(Params):
    pass


def _infer_identity(p: IdentityParams, x: TensorType) -> tuple[IdentityParams, TensorType]:
    return p, x


def _infer_add_bias(p: IdentityParams, x: TensorType) -> tuple[IdentityParams, TensorType]:
    require_float(x)
    return p, x


OPS = (
    OpDef(
        name="linear",
        params=LinearParams,
        infer=_infer_linear,
        weights=_linear_weights,
        doc="y = x Wᵀ + b over the last axis (torch.nn.Linear); in_features is inferred.",
        examples=(
            Example((7,), {"out_features": 5}),
            Example((12,), {"out_features": 3, "bias": False}),
            Example((4, 6), {"out_features": 2}),
        ),
    ),
    OpDef(
        name="identity",
        params=IdentityParams,
        infer=_infer_identity,
        moves_values=True,
        doc="Returns its input unchanged (torch.nn.Identity).",
        examples=(Example((3, 4, 4)),),
    ),
    OpDef(
        name="add_bias",
        params=IdentityParams,
        infer=_infer_add_bias,
        weights=lambda p: {"bias": Weight((1,), Constant(0.0))},
        doc="x + b, one learned scalar b added to every value (a global bias; torch's nn.Parameter(torch.zeros(1))), "
            "starting at 0; weight key bias, shape [1].",
        examples=(Example(()), Example((3, 2))),
    ),
)
