"""Convolutions, with torch.nn.Conv1d / Conv2d / ConvTranspose2d arguments and output-size rules.

Conv1d and Conv2d share one shape rule and one weight rule, written over the spatial
axes (L, or H and W), so the channel axis is handled the same whatever the rank.
"""

from __future__ import annotations

import math
from typing import Literal

from ..tensors import TensorType, format_shape
from ..types import Bool, NonNegativePair, Padding, Padding1d, Pair, Params, PositiveInt, Single
from .base import Example, OpDef, ShapeError, Uniform, Weight, require_float, require_rank

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


class Conv2dParams(Params):
    in_channels: PositiveInt | None = None
    out_channels: PositiveInt
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Padding = (0, 0)
    dilation: Pair = (1, 1)
    groups: PositiveInt = 1
    bias: Bool = True
    padding_mode: PaddingMode = "zeros"


class Conv1dParams(Conv2dParams):
    """torch.nn.Conv1d's arguments: Conv2d's, one size per argument (``3`` or ``[3]``)."""

    kernel_size: Single
    stride: Single = (1,)
    padding: Padding1d = (0,)
    dilation: Single = (1,)


class ConvTranspose2dParams(Conv2dParams):
    """torch.nn.ConvTranspose2d's arguments: Conv2d's, plus output_padding; padding is numbers only and
    padding_mode only 'zeros', as torch's ConvTranspose2d accepts."""

    padding: NonNegativePair = (0, 0)
    output_padding: NonNegativePair = (0, 0)
    padding_mode: Literal["zeros"] = "zeros"


def conv_padding(p: Conv2dParams) -> tuple[tuple[int, int], ...]:
    """Explicit (low, high) zero padding per spatial axis, resolving 'same' and 'valid'.

    torch's 'same' puts the odd extra element at the end, as does XLA's 'SAME' at
    stride 1; both backends use these explicit numbers.
    """
    if p.padding == "valid":
        return tuple((0, 0) for _ in p.kernel_size)
    if p.padding == "same":
        totals = [d * (k - 1) for k, d in zip(p.kernel_size, p.dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((q, q) for q in p.padding)


def _check_channels(p, x: TensorType) -> int:
    """The input's channel count, checked against a given in_channels and against groups."""
    channels = x.shape[0]
    if p.in_channels is not None and p.in_channels != channels:
        raise ShapeError(
            f"in_channels is {p.in_channels} but its input has {channels} channels "
            f"(input shape {format_shape(x.shape)}); set in_channels: {channels} or leave it out",
            param="in_channels",
        )
    for name, value in (("in_channels", channels), ("out_channels", p.out_channels)):
        if value % p.groups:
            raise ShapeError(f"{name} ({value}) must be divisible by groups ({p.groups})", param="groups")
    return channels


def _conv_size(p, x: TensorType, size: int, k: int, s: int, d: int, low: int, high: int) -> int:
    """One spatial axis of torch's Conv output: floor((size + pads - extent) / stride) + 1."""
    if p.padding_mode == "reflect" and max(low, high) >= size:
        raise ShapeError(f"reflect padding {max(low, high)} must be smaller than the input size {size}", "padding")
    extent = d * (k - 1) + 1
    if size + low + high < extent:
        raise ShapeError(
            f"kernel extent {extent} is larger than the padded input {size + low + high} "
            f"(input shape {format_shape(x.shape)})",
            param="kernel_size",
        )
    return (size + low + high - extent) // s + 1


def _infer_conv(layout: str):
    """The shape rule of a convolution over [N, ``layout``] (``C, L`` or ``C, H, W``)."""
    def infer(p, x: TensorType):
        require_float(x)
        require_rank(x, layout.count(",") + 1, layout)
        channels = _check_channels(p, x)
        if p.padding == "same" and any(s != 1 for s in p.stride):
            raise ShapeError("padding 'same' needs stride 1 (as in torch); give the padding as numbers", "padding")
        out = [_conv_size(p, x, size, k, s, d, low, high) for size, k, s, d, (low, high)
               in zip(x.shape[1:], p.kernel_size, p.stride, p.dilation, conv_padding(p))]
        return p.model_copy(update={"in_channels": channels}), x.with_shape((p.out_channels, *out))

    return infer


def _torch_conv_weights(shape: tuple[int, ...], p: Conv2dParams) -> dict[str, Weight]:
    """Weight and bias U(±1/√fan_in), torch's fan_in being the weight's dims past the first: shape[1]·kernel."""
    bound = 1 / math.sqrt(math.prod(shape[1:]))
    weights = {"weight": Weight(shape, Uniform.symmetric(bound))}
    if p.bias:
        weights["bias"] = Weight((p.out_channels,), Uniform.symmetric(bound))
    return weights


def _conv_weights(p: Conv2dParams) -> dict[str, Weight]:
    return _torch_conv_weights((p.out_channels, p.in_channels // p.groups, *p.kernel_size), p)


def _transposed_size(x: TensorType, size: int, k: int, s: int, q: int, op: int, d: int) -> int:
    """One spatial axis of torch's ConvTranspose output: (size-1)·s - 2q + d(k-1) + op + 1.

    torch refuses an output_padding at least as large as both the stride and the
    dilation, and an output smaller than 1 (checked over a grid in tests/test_conv_transpose.py).
    """
    if op >= s and op >= d:
        raise ShapeError(f"output_padding {op} must be smaller than stride ({s}) or dilation ({d}), as in torch",
                         param="output_padding")
    out = (size - 1) * s - 2 * q + d * (k - 1) + op + 1
    if out < 1:
        raise ShapeError(
            f"padding {q} leaves an output of size {out} (input shape {format_shape(x.shape)}, kernel {k}, "
            f"stride {s}); use less padding",
            param="padding",
        )
    return out


def _infer_conv_transpose2d(p: ConvTranspose2dParams, x: TensorType):
    require_float(x)
    require_rank(x, 3, "C, H, W")
    channels = _check_channels(p, x)
    out = [_transposed_size(x, *axis) for axis in
           zip(x.shape[1:], p.kernel_size, p.stride, p.padding, p.output_padding, p.dilation)]
    return p.model_copy(update={"in_channels": channels}), x.with_shape((p.out_channels, *out))


def _conv_transpose_weights(p: ConvTranspose2dParams) -> dict[str, Weight]:
    """Weight (in, out/groups, kH, kW), as torch's, so its fan_in is out/groups·kH·kW (PARITY.md §1)."""
    return _torch_conv_weights((p.in_channels, p.out_channels // p.groups, *p.kernel_size), p)


def _conv_op(name: str, params: type[Conv2dParams], module: str, layout: str, examples) -> OpDef:
    """Conv1d or Conv2d: one shape rule and one weight rule over the spatial axes of [N, ``layout``]."""
    return OpDef(name=name, params=params, infer=_infer_conv(layout), weights=_conv_weights, examples=examples,
                 doc=f"{layout.count(',')}-D convolution over [N, {layout}] (torch.nn.{module}); "
                     "in_channels is inferred.")


OPS = (
    _conv_op("conv2d", Conv2dParams, "Conv2d", "C, H, W", (
        Example((1, 10, 10), {"out_channels": 4, "kernel_size": 3}),
        Example((3, 10, 10), {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}),
        Example((3, 11, 9), {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}),
        Example((3, 8, 8), {"out_channels": 2, "kernel_size": 7, "stride": 2, "padding": 3}),
        Example((2, 9, 8), {"out_channels": 3, "kernel_size": 4, "padding": "same"}),
        Example((2, 9, 8), {"out_channels": 3, "kernel_size": [2, 3], "padding": "valid", "bias": False}),
        Example((2, 12, 12), {"out_channels": 3, "kernel_size": 3, "dilation": 2, "padding": "same"}),
        Example((4, 9, 9), {"out_channels": 6, "kernel_size": 3, "groups": 2, "padding": 1}),
        # the per-tap weight-gradient GEMM of the conv_weight_grad_gemm pass (Cin·sh·sw in 64..128, >= 64 pixels)
        Example((64, 8, 9), {"out_channels": 5, "kernel_size": 3, "padding": 1, "bias": False}),
        Example((16, 17, 18), {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1}),
        Example((32, 20, 12), {"out_channels": 4, "kernel_size": 3, "stride": [2, 1], "dilation": 2, "padding": 2}),
        Example((4, 9, 9), {"out_channels": 4, "kernel_size": 3, "groups": 4, "stride": [2, 1]}),
        Example((2, 7, 7), {"out_channels": 3, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"}),
        Example((2, 7, 7), {"out_channels": 3, "kernel_size": 3, "padding": [1, 2], "padding_mode": "replicate"}),
        Example((2, 7, 7), {"out_channels": 3, "kernel_size": 3, "padding": 1, "padding_mode": "circular"}),
    )),
    _conv_op("conv1d", Conv1dParams, "Conv1d", "C, L", (
        Example((1, 10), {"out_channels": 4, "kernel_size": 3}),
        Example((3, 11), {"out_channels": 4, "kernel_size": [3], "stride": 2, "padding": 1}),
        Example((2, 9), {"out_channels": 3, "kernel_size": 4, "padding": "same", "dilation": 2}),
        Example((2, 9), {"out_channels": 3, "kernel_size": 2, "padding": "valid", "bias": False}),
        Example((4, 9), {"out_channels": 6, "kernel_size": 3, "groups": 2, "padding": 1}),
        Example((2, 7), {"out_channels": 3, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"}),
        Example((2, 7), {"out_channels": 3, "kernel_size": 3, "padding": 2, "padding_mode": "replicate"}),
        Example((2, 7), {"out_channels": 3, "kernel_size": 3, "padding": 1, "padding_mode": "circular"}),
    )),
    OpDef(
        name="conv_transpose2d",
        params=ConvTranspose2dParams,
        infer=_infer_conv_transpose2d,
        weights=_conv_transpose_weights,
        doc="2-D transposed convolution over [N, C, H, W] (torch.nn.ConvTranspose2d); in_channels is inferred.",
        examples=(
            Example((3, 1, 1), {"out_channels": 4, "kernel_size": 4, "bias": False}),  # DCGAN's first layer
            Example((3, 4, 4), {"out_channels": 2, "kernel_size": 4, "stride": 2, "padding": 1}),
            Example((2, 5, 4), {"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}),
            Example((2, 4, 5), {"out_channels": 3, "kernel_size": [2, 3], "stride": [3, 1], "padding": [0, 2],
                                "output_padding": [2, 0]}),
            Example((2, 4, 4), {"out_channels": 2, "kernel_size": 3, "dilation": 2, "output_padding": 1}),
            Example((4, 4, 4), {"out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 2}),
            Example((2, 3, 3), {"out_channels": 3, "kernel_size": 1, "padding": 1, "stride": 3}),  # crops
        ),
    ),
)
