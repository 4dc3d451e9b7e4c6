"""Pooling, with torch.nn.MaxPool1d/2d and AvgPool1d/2d arguments and output-size rule.

The 1-D and 2-D pools share one shape rule over their spatial axes (torch runs its
1-D pools as 2-D ones over a unit axis, with the same checks).

Note the torch default that Flax does not share: ``stride`` defaults to the kernel
size, not to 1.
"""

from __future__ import annotations

from ..tensors import TensorType, format_shape
from ..types import Bool, NonNegativePair, NonNegativeSingle, Pair, Params, PositiveInt, Single
from .base import Example, OpDef, ShapeError, require_float, require_rank


class MaxPool2dParams(Params):
    kernel_size: Pair
    stride: Pair | None = None
    padding: NonNegativePair = (0, 0)
    dilation: Pair = (1, 1)
    ceil_mode: Bool = False


class AvgPool2dParams(Params):
    kernel_size: Pair
    stride: Pair | None = None
    padding: NonNegativePair = (0, 0)
    ceil_mode: Bool = False
    count_include_pad: Bool = True
    divisor_override: PositiveInt | None = None


class MaxPool1dParams(MaxPool2dParams):
    """torch.nn.MaxPool1d's arguments: MaxPool2d's, one size per argument (``3`` or ``[3]``)."""

    kernel_size: Single
    stride: Single | None = None
    padding: NonNegativeSingle = (0,)
    dilation: Single = (1,)


class AvgPool1dParams(Params):
    """torch.nn.AvgPool1d's arguments: AvgPool2d's but divisor_override, which torch's 1-D pool does not take."""

    kernel_size: Single
    stride: Single | None = None
    padding: NonNegativeSingle = (0,)
    ceil_mode: Bool = False
    count_include_pad: Bool = True


SPATIAL_LAYOUTS = {1: "C, L", 2: "C, H, W"}  # spatial axes -> the per-example layout named in rank errors


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``: a window may not start inside the right padding."""
    extent = dilation * (kernel - 1) + 1
    span = size + 2 * pad - extent
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _infer_pool(p, x: TensorType):
    """The shape rule of every pool, 1-D or 2-D: one output size per spatial axis."""
    require_float(x)
    require_rank(x, len(p.kernel_size) + 1, SPATIAL_LAYOUTS[len(p.kernel_size)])
    stride = p.stride or p.kernel_size
    dilation = getattr(p, "dilation", (1,) * len(p.kernel_size))
    out = []
    for size, k, s, q, d in zip(x.shape[1:], p.kernel_size, stride, p.padding, dilation):
        if 2 * q > k:
            raise ShapeError(f"padding {q} must be at most half the kernel size {k} (as in torch)", param="padding")
        o = pool_output_size(size, k, s, q, d, p.ceil_mode)
        if o < 1:
            raise ShapeError(
                f"kernel {k} does not fit the input (input shape {format_shape(x.shape)}); "
                "use a smaller kernel or add padding",
                param="kernel_size",
            )
        out.append(o)
    return p.model_copy(update={"stride": stride}), x.with_shape((x.shape[0], *out))


def _pool(name: str, params: type[Params], kind: str, module: str, layout: str, examples) -> OpDef:
    return OpDef(name=name, params=params, infer=_infer_pool, examples=examples,
                 doc=f"{kind} pooling over [N, {layout}] (torch.nn.{module}); stride defaults to kernel_size.")


OPS = (
    _pool("max_pool2d", MaxPool2dParams, "Max", "MaxPool2d", "C, H, W", (
        Example((2, 8, 8), {"kernel_size": 2}),
        Example((2, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Example((2, 10, 10), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
        Example((2, 9, 11), {"kernel_size": [2, 3], "stride": [2, 1], "padding": [1, 1], "ceil_mode": True}),
        Example((2, 11, 11), {"kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1}),
    )),
    _pool("avg_pool2d", AvgPool2dParams, "Average", "AvgPool2d", "C, H, W", (
        Example((2, 8, 8), {"kernel_size": 2}),
        Example((2, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Example((2, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
        Example((2, 10, 10), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
        Example((2, 10, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        Example((2, 10, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                              "count_include_pad": False}),
        Example((2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 4}),
    )),
    _pool("max_pool1d", MaxPool1dParams, "Max", "MaxPool1d", "C, L", (
        Example((2, 8), {"kernel_size": 2}),
        Example((2, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Example((2, 10), {"kernel_size": [3], "stride": 2, "ceil_mode": True}),
        Example((2, 11), {"kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1, "ceil_mode": True}),
    )),
    _pool("avg_pool1d", AvgPool1dParams, "Average", "AvgPool1d", "C, L", (
        Example((2, 8), {"kernel_size": 2}),
        Example((2, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
        Example((2, 10), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        Example((2, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    )),
)
