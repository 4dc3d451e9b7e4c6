"""Convolutions, with torch.nn.Conv2d's arguments and output-size rule."""

from __future__ import annotations

import math
from typing import Literal

from ..tensors import TensorType, format_shape
from ..types import Bool, Padding, Pair, Params, PositiveInt
from .base import Example, OpDef, ShapeError, Uniform, Weight, require_float, require_rank


class Conv2dParams(Params):
    in_channels: PositiveInt | None = None
    out_channels: PositiveInt
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Padding = (0, 0)
    dilation: Pair = (1, 1)
    groups: PositiveInt = 1
    bias: Bool = True
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"


def conv2d_padding(p: Conv2dParams) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit (low, high) zero padding per spatial axis, resolving 'same' and 'valid'.

    torch's 'same' puts the odd extra element at the end, as does XLA's 'SAME' at
    stride 1; both backends use these explicit numbers.
    """
    if p.padding == "valid":
        return (0, 0), (0, 0)
    if p.padding == "same":
        totals = [d * (k - 1) for k, d in zip(p.kernel_size, p.dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((q, q) for q in p.padding)


def _infer_conv2d(p: Conv2dParams, x: TensorType) -> tuple[Conv2dParams, TensorType]:
    require_float(x)
    require_rank(x, 3, "C, H, W")
    channels, *spatial = x.shape
    if p.in_channels is not None and p.in_channels != channels:
        raise ShapeError(
            f"in_channels is {p.in_channels} but its input has {channels} channels "
            f"(input shape {format_shape(x.shape)}); set in_channels: {channels} or leave it out",
            param="in_channels",
        )
    for name, value in (("in_channels", channels), ("out_channels", p.out_channels)):
        if value % p.groups:
            raise ShapeError(f"{name} ({value}) must be divisible by groups ({p.groups})", param="groups")
    if p.padding == "same" and p.stride != (1, 1):
        raise ShapeError("padding 'same' needs stride 1 (as in torch); give the padding as numbers", param="padding")
    out = []
    for size, k, s, d, (low, high) in zip(spatial, p.kernel_size, p.stride, p.dilation, conv2d_padding(p)):
        if p.padding_mode == "reflect" and max(low, high) >= size:
            raise ShapeError(f"reflect padding {max(low, high)} must be smaller than the input size {size}", "padding")
        extent = d * (k - 1) + 1
        if size + low + high < extent:
            raise ShapeError(
                f"kernel extent {extent} is larger than the padded input {size + low + high} "
                f"(input shape {format_shape(x.shape)})",
                param="kernel_size",
            )
        out.append((size + low + high - extent) // s + 1)
    return p.model_copy(update={"in_channels": channels}), x.with_shape((p.out_channels, *out))


def _conv2d_weights(p: Conv2dParams) -> dict[str, Weight]:
    fan_in = p.in_channels // p.groups * math.prod(p.kernel_size)
    bound = 1 / math.sqrt(fan_in)
    weights = {"weight": Weight((p.out_channels, p.in_channels // p.groups, *p.kernel_size), Uniform(bound))}
    if p.bias:
        weights["bias"] = Weight((p.out_channels,), Uniform(bound))
    return weights


OPS = (
    OpDef(
        name="conv2d",
        params=Conv2dParams,
        infer=_infer_conv2d,
        weights=_conv2d_weights,
        doc="2-D convolution over [N, C, H, W] (torch.nn.Conv2d); in_channels is inferred.",
        examples=(
            Example((1, 10, 10), {"out_channels": 4, "kernel_size": 3}),
            Example((3, 10, 10), {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}),
            Example((3, 11, 9), {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}),
            Example((3, 8, 8), {"out_channels": 2, "kernel_size": 7, "stride": 2, "padding": 3}),
            Example((2, 9, 8), {"out_channels": 3, "kernel_size": 4, "padding": "same"}),
            Example((2, 9, 8), {"out_channels": 3, "kernel_size": [2, 3], "padding": "valid", "bias": False}),
            Example((2, 12, 12), {"out_channels": 3, "kernel_size": 3, "dilation": 2, "padding": "same"}),
            Example((4, 9, 9), {"out_channels": 6, "kernel_size": 3, "groups": 2, "padding": 1}),
            Example((4, 9, 9), {"out_channels": 4, "kernel_size": 3, "groups": 4, "stride": [2, 1]}),
            Example((2, 7, 7), {"out_channels": 3, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"}),
            Example((2, 7, 7), {"out_channels": 3, "kernel_size": 3, "padding": [1, 2], "padding_mode": "replicate"}),
            Example((2, 7, 7), {"out_channels": 3, "kernel_size": 3, "padding": 1, "padding_mode": "circular"}),
        ),
    ),
)
