"""Batch normalization with torch.nn.BatchNorm1d / BatchNorm2d's arguments and state.

The state is torch's: ``weight`` and ``bias`` parameters (``affine``), and the
buffers ``running_mean``, ``running_var`` (float) and ``num_batches_tracked`` (int64)
when ``track_running_stats``. In training mode a layer normalizes with the batch's
biased variance and moves ``running_var`` towards the *unbiased* one, by
``momentum`` (``null``: the cumulative average over ``num_batches_tracked``
batches). Flax's BatchNorm differs on all three counts (docs/PARITY.md §6), so the
JAX lowering is dslc's own.
"""

from __future__ import annotations

from ..tensors import TensorType, format_shape
from ..types import Bool, Params, PositiveFloat, PositiveInt, Probability
from .base import Constant, Example, OpDef, ShapeError, Weight, require_float


class BatchNormParams(Params):
    num_features: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    momentum: Probability | None = 0.1
    affine: Bool = True
    track_running_stats: Bool = True


def _infer(p: BatchNormParams, x: TensorType, ranks: tuple[int, ...], layout: str, other: str):
    """``other`` names the BatchNorm that takes this input's rank: the usual fix."""
    require_float(x)
    if x.rank not in ranks:
        raise ShapeError(f"expects input of shape {layout}, got {format_shape(x.shape)}; {other}")
    channels = x.shape[0]
    if p.num_features is not None and p.num_features != channels:
        raise ShapeError(f"num_features is {p.num_features} but its input has {channels} channels (input shape "
                         f"{format_shape(x.shape)}); set num_features: {channels} or leave it out to infer it",
                         param="num_features")
    return p.model_copy(update={"num_features": channels}), x


def _infer_2d(p: BatchNormParams, x: TensorType):
    return _infer(p, x, (3,), "[N, C, H, W]", "batch_norm1d takes [N, C] and [N, C, L]")


def _infer_1d(p: BatchNormParams, x: TensorType):
    return _infer(p, x, (1, 2), "[N, C] or [N, C, L]", "batch_norm2d takes [N, C, H, W]")


def _weights(p: BatchNormParams) -> dict[str, Weight]:
    """torch's state_dict entries, in its order: weight, bias, running_mean, running_var, num_batches_tracked."""
    channels = (p.num_features,)
    weights = {}
    if p.affine:
        weights |= {"weight": Weight(channels, Constant(1.0)), "bias": Weight(channels, Constant(0.0))}
    if p.track_running_stats:
        weights |= {"running_mean": Weight(channels, Constant(0.0), "buffer"),
                    "running_var": Weight(channels, Constant(1.0), "buffer"),
                    "num_batches_tracked": Weight((), Constant(0), "buffer", "int64")}
    return weights


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
)
