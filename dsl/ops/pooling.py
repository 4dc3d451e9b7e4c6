"""Pooling, with torch.nn.MaxPool2d / AvgPool2d arguments and output-size rule.

Note the torch default that Flax does not share: ``stride`` defaults to the kernel
size, not to 1.
"""

from __future__ import annotations

from ..tensors import TensorType, format_shape
from ..types import Bool, NonNegativePair, Pair, Params, PositiveInt
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


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``: a window may not start inside the right padding."""
    extent = dilation * (kernel - 1) + 1
    span = size + 2 * pad - extent
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _infer_pool(p: MaxPool2dParams | AvgPool2dParams, x: TensorType):
    require_float(x)
    require_rank(x, 3, "C, H, W")
    stride = p.stride or p.kernel_size
    dilation = getattr(p, "dilation", (1, 1))
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


OPS = (
    OpDef(
        name="max_pool2d",
        params=MaxPool2dParams,
        infer=_infer_pool,
        doc="Max pooling over [N, C, H, W] (torch.nn.MaxPool2d); stride defaults to kernel_size.",
        examples=(
            Example((2, 8, 8), {"kernel_size": 2}),
            Example((2, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
            Example((2, 10, 10), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
            Example((2, 9, 11), {"kernel_size": [2, 3], "stride": [2, 1], "padding": [1, 1], "ceil_mode": True}),
            Example((2, 11, 11), {"kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1}),
        ),
    ),
    OpDef(
        name="avg_pool2d",
        params=AvgPool2dParams,
        infer=_infer_pool,
        doc="Average pooling over [N, C, H, W] (torch.nn.AvgPool2d); stride defaults to kernel_size.",
        examples=(
            Example((2, 8, 8), {"kernel_size": 2}),
            Example((2, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
            Example((2, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
            Example((2, 10, 10), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
            Example((2, 10, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
            Example((2, 10, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                  "count_include_pad": False}),
            Example((2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 4}),
        ),
    ),
)
