"""Ops that change an image's spatial size: adaptive pools, ``upsample`` and ``zero_pad2d``.

Each follows torch.nn's module of the same name, defaults included. The traps where
JAX's own functions differ (``jax.image.resize``'s half-pixel nearest rule, adaptive
bins that overlap when the sizes do not divide) are handled in the JAX lowering,
``backends/jax/ops/resample.py``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BeforeValidator, WithJsonSchema

from ..tensors import TensorType, format_shape
from ..types import MAX_SIZE, Bool, Pair, Params
from .base import Example, OpDef, ShapeError, require_float, require_rank


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _per_axis(value, count: int, accepts, what: str) -> tuple:
    """``value`` as a ``count``-tuple: one accepted value repeated, or a list of ``count`` of them."""
    values = (value,) * count if accepts(value) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if len(values) != count or not all(accepts(v) for v in values):
        raise ValueError(f"expected {what} or a list of {count} of them, got {value!r}")
    return values


def _output_size(value) -> tuple[int | None, int | None]:
    """torch's adaptive ``output_size``: ``3`` or ``[3, 5]``; ``null`` in the list keeps that axis's size."""
    def accepts(v) -> bool:
        return v is None or _is_int(v) and 1 <= v <= MAX_SIZE

    if value is None:  # torch's AdaptiveAvgPool2d(None) raises a TypeError; only list entries may be None
        raise ValueError("expected a positive integer or a list of two (null keeps that axis), got None")
    return _per_axis(value, 2, accepts, "a positive integer (null in a list keeps that axis)")


def _scale_factor(value) -> tuple[float, float]:
    def accepts(v) -> bool:
        return _is_number(v) and 0 < v < MAX_SIZE

    return tuple(float(v) for v in _per_axis(value, 2, accepts, "a positive number"))


def _padding4(value) -> tuple[int, int, int, int]:
    def accepts(v) -> bool:
        return _is_int(v) and abs(v) <= MAX_SIZE

    return _per_axis(value, 4, accepts, "an integer")


def _either(single: dict, count: int, item: dict | None = None) -> dict:
    """JSON Schema for one value or a list of ``count`` (of ``item``, when list entries differ from ``single``)."""
    return {"anyOf": [single, {"type": "array", "items": item or single, "minItems": count, "maxItems": count}]}


OutputSize = Annotated[
    tuple[int | None, int | None], BeforeValidator(_output_size),
    WithJsonSchema(_either({"type": "integer", "minimum": 1}, 2,
                           {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]})),
]
"""A positive size per spatial axis, or null (in a list) for "keep the input's"."""

ScaleFactor = Annotated[
    tuple[float, float], BeforeValidator(_scale_factor),
    WithJsonSchema(_either({"type": "number", "exclusiveMinimum": 0}, 2)),
]
"""A positive scale per spatial axis: ``2`` means ``(2.0, 2.0)``."""

Padding4 = Annotated[
    tuple[int, int, int, int], BeforeValidator(_padding4), WithJsonSchema(_either({"type": "integer"}, 4)),
]
"""torch's ZeroPad2d padding: ``(left, right, top, bottom)``; negative values crop."""


class AdaptivePool2dParams(Params):
    output_size: OutputSize


class UpsampleParams(Params):
    size: Pair | None = None
    scale_factor: ScaleFactor | None = None
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: Bool | None = None


class ZeroPad2dParams(Params):
    padding: Padding4


def _image(x: TensorType) -> None:
    require_float(x)
    require_rank(x, 3, "C, H, W")


def _infer_adaptive(p: AdaptivePool2dParams, x: TensorType):
    """Fills null sizes with the input's; a size larger than the input is allowed (torch's bins then repeat)."""
    _image(x)
    size = tuple(x.shape[1 + axis] if s is None else s for axis, s in enumerate(p.output_size))
    return p.model_copy(update={"output_size": size}), x.with_shape((x.shape[0], *size))


def _infer_upsample(p: UpsampleParams, x: TensorType):
    """torch's F.interpolate rules: exactly one of size and scale_factor; align_corners only with bilinear.

    With ``scale_factor`` the output is floor(input · scale) (torch's ``compute_output_size``),
    and the lowering keeps the factor itself: torch maps output to input positions with
    1/scale_factor, not input/output, when ``recompute_scale_factor`` is unset.
    """
    _image(x)
    if (p.size is None) == (p.scale_factor is None):
        raise ShapeError("give exactly one of size and scale_factor (as torch.nn.Upsample)",
                         param="scale_factor" if p.scale_factor else None)
    if p.align_corners is not None and p.mode == "nearest":
        raise ShapeError("align_corners applies only to mode: bilinear (torch raises for nearest)",
                         param="align_corners")
    size = p.size or tuple(math.floor(n * s) for n, s in zip(x.shape[1:], p.scale_factor))
    if min(size) < 1:
        raise ShapeError(f"scale_factor {list(p.scale_factor)} turns {format_shape(x.shape)} into "
                         f"{list(size)}: an empty image", param="scale_factor")
    return p, x.with_shape((x.shape[0], *size))


def _infer_zero_pad(p: ZeroPad2dParams, x: TensorType):
    """torch's ZeroPad2d: negative padding crops; cropping a whole axis away is refused."""
    _image(x)
    left, right, top, bottom = p.padding
    size = (x.shape[1] + top + bottom, x.shape[2] + left + right)
    if min(size) < 1:
        raise ShapeError(f"padding {list(p.padding)} (left, right, top, bottom) crops {format_shape(x.shape)} "
                         f"to {list(size)}: an empty image", param="padding")
    return p, x.with_shape((x.shape[0], *size))


_ADAPTIVE_EXAMPLES = (
    Example((2, 7, 7), {"output_size": 1}),
    Example((2, 7, 5), {"output_size": [3, 2]}),
    Example((2, 6, 3), {"output_size": [4, 5]}),
    Example((2, 8, 6), {"output_size": [None, 3]}),
)

OPS = (
    OpDef(
        name="adaptive_avg_pool2d",
        params=AdaptivePool2dParams,
        infer=_infer_adaptive,
        doc="Average over torch's adaptive bins, to output_size [H, W] (torch.nn.AdaptiveAvgPool2d); 1 is the "
            "global average, shaped [N, C, 1, 1].",
        examples=_ADAPTIVE_EXAMPLES,
    ),
    OpDef(
        name="adaptive_max_pool2d",
        params=AdaptivePool2dParams,
        infer=_infer_adaptive,
        doc="Maximum over torch's adaptive bins, to output_size [H, W] (torch.nn.AdaptiveMaxPool2d).",
        examples=_ADAPTIVE_EXAMPLES,
    ),
    OpDef(
        name="upsample",
        params=UpsampleParams,
        infer=_infer_upsample,
        doc="Resizes [N, C, H, W] by size or scale_factor, nearest (torch's floor rule) or bilinear "
            "(torch.nn.Upsample).",
        examples=(
            Example((2, 3, 4), {"scale_factor": 2}),
            Example((2, 5, 3), {"size": [7, 4]}),
            Example((2, 5, 4), {"scale_factor": [1.7, 0.6]}),
            Example((2, 4, 3), {"scale_factor": 2, "mode": "bilinear"}),
            Example((2, 5, 4), {"scale_factor": 1.5, "mode": "bilinear", "align_corners": True}),
            Example((2, 6, 5), {"size": [4, 7], "mode": "bilinear"}),
        ),
    ),
    OpDef(
        name="zero_pad2d",
        params=ZeroPad2dParams,
        infer=_infer_zero_pad,
        doc="Pads [N, C, H, W] with zeros, padding N or [left, right, top, bottom]; negative crops "
            "(torch.nn.ZeroPad2d).",
        examples=(Example((2, 3, 4), {"padding": 1}), Example((2, 5, 4), {"padding": [2, -1, 0, 3]})),
    ),
)
