"""Element-wise activations and the softmax family.

Defaults are torch's, stated here once because Flax differs: ``gelu`` is exact
(erf) unless ``approximate: tanh`` (jax.nn.gelu defaults to tanh), ``leaky_relu``
slopes at 0.01, ``prelu`` starts at 0.25 (Flax's PReLU at 0.01, docs/PARITY.md §7),
``elu``'s alpha is 1 and ``softplus`` returns x where beta·x > threshold (20;
jax.nn.softplus has no threshold). ``softmax`` and ``log_softmax`` take ``dim``
counted on the batched tensor as in torch, default -1 (the last axis, as in Keras and
jax.nn).
"""

from __future__ import annotations

from typing import Literal

from ..tensors import TensorType, format_shape
from ..types import Float, Int, Params, PositiveFloat, PositiveInt
from .base import Constant, Example, OpDef, ShapeError, Weight, require_float


class NoArgs(Params):
    pass


class LeakyReluParams(Params):
    negative_slope: Float = 0.01


class GeluParams(Params):
    approximate: Literal["none", "tanh"] = "none"


class EluParams(Params):
    alpha: Float = 1.0


class SoftplusParams(Params):
    """torch's defaults; beta must be positive: torch takes 0 and returns inf, and a negative beta mirrors it."""

    beta: PositiveFloat = 1.0
    threshold: Float = 20.0
class PReluParams(Params):
    num_parameters: PositiveInt = 1
    init: Float = 0.25


class SoftmaxParams(Params):
    dim: Int = -1


def _infer_elementwise(p: Params, x: TensorType) -> tuple[Params, TensorType]:
    require_float(x)
    return p, x


def resolve_dim(dim: int, x: TensorType) -> int:
    """A torch-style dim of the batched tensor as a non-negative axis; never the batch axis."""
    rank = x.rank + 1
    axis = dim + rank if dim < 0 else dim
    if not 1 <= axis < rank:
        raise ShapeError(
            f"dim {dim} is out of range for input {format_shape(x.shape)} "
            f"(valid: 1..{rank - 1} or -{rank - 1}..-1; dim 0 is the batch)",
            param="dim",
        )
    return axis


def _infer_softmax(p: SoftmaxParams, x: TensorType) -> tuple[SoftmaxParams, TensorType]:
    require_float(x)
    return p.model_copy(update={"dim": resolve_dim(p.dim, x)}), x


def _infer_prelu(p: PReluParams, x: TensorType) -> tuple[PReluParams, TensorType]:
    """One slope, or one per channel (dim 1 of the batched input, whatever its rank), as torch.nn.PReLU."""
    require_float(x)
    channels = x.shape[0] if x.rank else 1  # torch: an input with no dim 1 has one channel
    if p.num_parameters not in (1, channels):
        raise ShapeError(f"num_parameters is {p.num_parameters} but must be 1 or the input's {channels} channels "
                         f"(dim 1 of {format_shape(x.shape)})", param="num_parameters")
    return p, x


def _prelu_weights(p: PReluParams) -> dict[str, Weight]:
    return {"weight": Weight((p.num_parameters,), Constant(p.init))}


def _elementwise(name: str, doc: str, params=NoArgs, examples=({},)) -> OpDef:
    return OpDef(
        name=name,
        params=params,
        infer=_infer_elementwise,
        doc=doc,
        examples=tuple(Example((3, 5, 4), e) for e in examples) + tuple(Example((6,), e) for e in examples),
    )


OPS = (
    _elementwise("relu", "max(x, 0)."),
    _elementwise("leaky_relu", "x if x > 0 else negative_slope·x (default 0.01).", LeakyReluParams,
                 ({}, {"negative_slope": 0.2})),
    _elementwise("gelu", "x·Φ(x); approximate: none (exact erf, the default) or tanh.", GeluParams,
                 ({}, {"approximate": "tanh"})),
    _elementwise("tanh", "Hyperbolic tangent."),
    _elementwise("sigmoid", "1 / (1 + exp(-x))."),
    _elementwise("silu", "x·sigmoid(x), also called swish."),
    _elementwise("relu6", "min(max(x, 0), 6)."),
    _elementwise("hardsigmoid", "relu6(x + 3) / 6."),
    _elementwise("hardswish", "x·relu6(x + 3) / 6."),
    _elementwise("elu", "x if x > 0 else alpha·(exp(x) - 1) (default alpha 1).", EluParams, ({}, {"alpha": 0.5})),
    _elementwise("softplus", "log(1 + exp(beta·x)) / beta, or x where beta·x > threshold (defaults 1, 20).",
                 SoftplusParams, ({}, {"beta": 2.0, "threshold": 1.0})),
    OpDef(
        name="prelu",
        params=PReluParams,
        infer=_infer_prelu,
        weights=_prelu_weights,
        doc="x if x > 0 else a·x with a learned slope a, one or one per channel (torch.nn.PReLU, init 0.25).",
        examples=(Example((3, 5, 4)), Example((6,), {"num_parameters": 6}),
                  Example((3, 4, 4), {"num_parameters": 3, "init": 0.1}), Example((4, 5), {"num_parameters": 4})),
    ),
    OpDef(
        name="softmax",
        params=SoftmaxParams,
        infer=_infer_softmax,
        doc="exp(x) normalized along dim (default -1, counted on the batched tensor).",
        examples=(Example((5,)), Example((3, 4, 4), {"dim": 1}), Example((3, 4, 5), {"dim": -2})),
    ),
    OpDef(
        name="log_softmax",
        params=SoftmaxParams,
        infer=_infer_softmax,
        doc="log(softmax(x)) computed stably along dim (default -1).",
        examples=(Example((5,)), Example((3, 4, 4), {"dim": 1})),
    ),
)
