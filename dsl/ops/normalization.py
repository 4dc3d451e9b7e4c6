"""Normalization layers with torch.nn's arguments, defaults and state.

Batch normalization (torch.nn.BatchNorm1d / BatchNorm2d) is described here; layer,
group and instance normalization follow their own section below.

The state is torch's: ``weight`` and ``bias`` parameters (``affine``), and the
buffers ``running_mean``, ``running_var`` (float) and ``num_batches_tracked`` (int64)
when ``track_running_stats``. In training mode a layer normalizes with the batch's
biased variance and moves ``running_var`` towards the *unbiased* one, by
``momentum`` (``null``: the cumulative average over ``num_batches_tracked``
batches). Flax's BatchNorm differs on all three counts (docs/PARITY.md §6), so the
JAX lowering is dslc's own.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from ..tensors import TensorType, format_shape
from ..types import Bool, Params, PositiveFloat, PositiveInt, Probability
from .base import Constant, Example, OpDef, ShapeError, Weight, require_float


class BatchNormParams(Params):
    num_features: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    momentum: Probability | None = 0.1
    affine: Bool = True
    track_running_stats: Bool = True


def _channels(x: TensorType, given: int | None, param: str) -> int:
    """Dim 1 of the batched input, checked against the argument that may restate it."""
    if x.rank == 0:
        raise ShapeError("expects input of shape [N, C, *], got [N]; there is no channel axis")
    channels = x.shape[0]
    if given is not None and given != channels:
        raise ShapeError(f"{param} is {given} but its input has {channels} channels (input shape "
                         f"{format_shape(x.shape)}); set {param}: {channels} or leave it out to infer it", param=param)
    return channels


def _infer(p: BatchNormParams, x: TensorType, ranks: tuple[int, ...], layout: str, other: str):
    """``other`` names the BatchNorm that takes this input's rank: the usual fix."""
    require_float(x)
    if x.rank not in ranks:
        raise ShapeError(f"expects input of shape {layout}, got {format_shape(x.shape)}; {other}")
    return p.model_copy(update={"num_features": _channels(x, p.num_features, "num_features")}), x


def _infer_2d(p: BatchNormParams, x: TensorType):
    return _infer(p, x, (3,), "[N, C, H, W]", "batch_norm1d takes [N, C] and [N, C, L]")


def _infer_1d(p: BatchNormParams, x: TensorType):
    return _infer(p, x, (1, 2), "[N, C] or [N, C, L]", "batch_norm2d takes [N, C, H, W]")


def _affine_weights(shape: tuple[int, ...], affine: bool) -> dict[str, Weight]:
    """torch.nn's affine normalization parameters: weight ones, bias zeros."""
    return {"weight": Weight(shape, Constant(1.0)), "bias": Weight(shape, Constant(0.0))} if affine else {}


def _weights(p: BatchNormParams) -> dict[str, Weight]:
    """torch's state_dict entries, in its order: weight, bias, running_mean, running_var, num_batches_tracked."""
    channels = (p.num_features,)
    weights = _affine_weights(channels, p.affine)
    if p.track_running_stats:
        weights |= {"running_mean": Weight(channels, Constant(0.0), "buffer"),
                    "running_var": Weight(channels, Constant(1.0), "buffer"),
                    "num_batches_tracked": Weight((), Constant(0), "buffer", "int64")}
    return weights



# Layer, group and instance normalization: statistics of each sample, never of the batch, so
# training and evaluation compute the same. Flax's defaults differ from torch's (eps 1e-6,
# GroupNorm's num_groups 32, LayerNorm over the last axis only; docs/PARITY.md §6): the
# arguments below are torch's, and the JAX lowering passes every one of them explicitly.


def _shape_or_int(value):
    """``normalized_shape: 5`` means ``[5]``, as in torch."""
    return (value,) if isinstance(value, int) and not isinstance(value, bool) else value


NormalizedShape = Annotated[
    tuple[PositiveInt, ...], BeforeValidator(_shape_or_int), Field(min_length=1, max_length=8),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1},
                              {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}]}),
]


class LayerNormParams(Params):
    normalized_shape: NormalizedShape | None = None
    eps: PositiveFloat = 1e-5
    elementwise_affine: Bool = True
    bias: Bool = True


def _infer_layer_norm(p: LayerNormParams, x: TensorType) -> tuple[LayerNormParams, TensorType]:
    """``normalized_shape`` must be the input's trailing dims; left out, it is the last one.

    The batch axis is never normalized over: its size is not part of the model.
    """
    require_float(x)
    if x.rank == 0:
        raise ShapeError("expects input of shape [N, *], got [N]; layer_norm needs a feature axis")
    shape = p.normalized_shape or x.shape[-1:]
    if len(shape) > x.rank or tuple(x.shape[x.rank - len(shape):]) != tuple(shape):
        raise ShapeError(f"normalized_shape {list(shape)} must be the trailing dims of the input "
                         f"{format_shape(x.shape)}; e.g. normalized_shape: {x.shape[-1]} for the last one",
                         param="normalized_shape")
    return p.model_copy(update={"normalized_shape": tuple(shape)}), x


def _layer_norm_weights(p: LayerNormParams) -> dict[str, Weight]:
    """torch's LayerNorm: weight ones and bias zeros over normalized_shape, bias only if both flags are set."""
    weights = {"weight": Weight(p.normalized_shape, Constant(1.0))} if p.elementwise_affine else {}
    if p.elementwise_affine and p.bias:
        weights["bias"] = Weight(p.normalized_shape, Constant(0.0))
    return weights


class GroupNormParams(Params):
    num_groups: PositiveInt
    num_channels: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    affine: Bool = True


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` ascending (the group or head counts it allows); O(√n): a size may be absurd."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


def _infer_group_norm(p: GroupNormParams, x: TensorType) -> tuple[GroupNormParams, TensorType]:
    require_float(x)
    channels = _channels(x, p.num_channels, "num_channels")
    if channels % p.num_groups:
        valid = ", ".join(map(str, divisors(channels)))
        raise ShapeError(f"num_groups {p.num_groups} does not divide the input's {channels} channels "
                         f"(input shape {format_shape(x.shape)}); valid: {valid}", param="num_groups")
    return p.model_copy(update={"num_channels": channels}), x


def _group_norm_weights(p: GroupNormParams) -> dict[str, Weight]:
    return _affine_weights((p.num_channels,), p.affine)


class InstanceNormParams(BatchNormParams):
    """torch.nn.InstanceNorm2d's arguments are BatchNorm's, but its defaults are not: no affine, no running stats."""

    affine: Bool = False
    track_running_stats: Bool = False


def _infer_instance_norm(p: InstanceNormParams, x: TensorType) -> tuple[InstanceNormParams, TensorType]:
    """[N, C, H, W] only: torch reads a 3-D input as one unbatched image, which dslc never passes."""
    require_float(x)
    if p.track_running_stats:
        raise ShapeError("track_running_stats: true is not supported yet for instance_norm2d; leave it false "
                         "(torch's default) to normalize with each sample's statistics", param="track_running_stats")
    if x.rank != 3:
        raise ShapeError(f"expects input of shape [N, C, H, W], got {format_shape(x.shape)}")
    return p.model_copy(update={"num_features": _channels(x, p.num_features, "num_features")}), x


def _instance_norm_weights(p: InstanceNormParams) -> dict[str, Weight]:
    return _affine_weights((p.num_features,), p.affine)


OPS = (
    OpDef(
        name="batch_norm2d",
        params=BatchNormParams,
        infer=_infer_2d,
        weights=_weights,
        doc="Normalizes each channel of [N, C, H, W] by batch statistics while training, running ones in "
            "evaluation (torch.nn.BatchNorm2d); num_features is inferred.",
        examples=(
            Example((4, 5, 5)),
            Example((3, 4, 4), {"momentum": None}),
            Example((2, 3, 3), {"affine": False, "momentum": 0.3, "eps": 1e-3}),
            Example((3, 4, 4), {"track_running_stats": False}),
        ),
    ),
    OpDef(
        name="batch_norm1d",
        params=BatchNormParams,
        infer=_infer_1d,
        weights=_weights,
        doc="Normalizes each channel of [N, C] or [N, C, L] by batch statistics while training, running ones in "
            "evaluation (torch.nn.BatchNorm1d); num_features is inferred.",
        examples=(
            Example((6,)),
            Example((4, 5), {"momentum": None}),
            Example((5,), {"affine": False, "track_running_stats": False}),
        ),
    ),
    OpDef(
        name="layer_norm", params=LayerNormParams, infer=_infer_layer_norm, weights=_layer_norm_weights,
        doc="Normalizes each sample over its trailing normalized_shape dims (torch.nn.LayerNorm); "
            "normalized_shape defaults to the last dim.",
        examples=(
            Example((7,)),
            Example((4, 6), {"normalized_shape": [4, 6], "eps": 1e-3}),
            Example((3, 4, 5), {"normalized_shape": 5, "bias": False}),
            Example((2, 3, 4), {"normalized_shape": [3, 4], "elementwise_affine": False}),
        ),
    ),
    OpDef(
        name="group_norm", params=GroupNormParams, infer=_infer_group_norm, weights=_group_norm_weights,
        doc="Normalizes each sample over groups of num_groups contiguous channels (torch.nn.GroupNorm); "
            "num_channels is inferred.",
        examples=(
            Example((6, 3, 3), {"num_groups": 3}),
            Example((4, 5), {"num_groups": 2, "eps": 1e-3}),
            Example((6,), {"num_groups": 2, "affine": False}),
        ),
    ),
    OpDef(
        name="instance_norm2d", params=InstanceNormParams, infer=_infer_instance_norm, weights=_instance_norm_weights,
        doc="Normalizes each channel of each sample of [N, C, H, W] (torch.nn.InstanceNorm2d); no affine "
            "and no running statistics by default.",
        examples=(
            Example((3, 4, 5)),
            Example((2, 3, 3), {"affine": True, "eps": 1e-3}),
        ),
    ),
)
