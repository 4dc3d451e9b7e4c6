"""Ops that combine several inputs: ``add``, ``multiply``, ``concat``.

``add`` and ``multiply`` are element-wise over inputs of equal shape and dtype; torch's
broadcasting is deliberately not allowed. A broadcast aligns trailing axes, and the
JAX model may hold a 4-D activation channels-last (NHWC), where the trailing axis is
C, not W: a ``[C, 1, 1]`` bias broadcast against ``[C, H, W]`` would need a layout
rule of its own on each backend, and a shape mismatch is far more often a wiring
mistake (a skip connection around a strided layer) than a wish to broadcast, so it
is reported with both shapes. ``concat`` joins along ``dim``, counted on the batched
tensor as in torch (``dim: 1`` is channels); the JAX lowering remaps it when the
inputs are held NHWC.
"""

from __future__ import annotations

from ..tensors import TensorType, format_shape
from ..types import Int, Params
from .activation import resolve_dim
from .base import Example, OpDef, ShapeError


class MergeParams(Params):
    pass


class ConcatParams(Params):
    dim: Int = 1


def _same_dtype(inputs: tuple[TensorType, ...]) -> None:
    """One dtype, where float32 and float64 count as one: the model computes every float in one dtype."""
    dtypes = [x.dtype for x in inputs]
    if len({"float" if x.is_float else x.dtype for x in inputs}) > 1:
        raise ShapeError(f"needs inputs of one dtype, got {', '.join(dtypes)}")


def _infer_elementwise(p: MergeParams, *inputs: TensorType) -> tuple[MergeParams, TensorType]:
    _same_dtype(inputs)
    shapes = [x.shape for x in inputs]
    if len(set(shapes)) > 1:
        raise ShapeError(f"needs inputs of the same shape (no broadcasting), got "
                         f"{' and '.join(format_shape(s) for s in shapes)}")
    return p, inputs[0]


def _infer_concat(p: ConcatParams, *inputs: TensorType) -> tuple[ConcatParams, TensorType]:
    _same_dtype(inputs)
    first = inputs[0]
    axis = resolve_dim(p.dim, first)
    for x in inputs[1:]:
        if x.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis - 1):
            raise ShapeError(f"needs inputs whose shapes differ only in dim {axis}, got "
                             f"{' and '.join(format_shape(y.shape) for y in inputs)}")
    size = sum(x.shape[axis - 1] for x in inputs)
    return p.model_copy(update={"dim": axis}), first.with_shape(first.shape[:axis - 1] + (size,) + first.shape[axis:])


def _elementwise(name: str, doc: str) -> OpDef:
    return OpDef(
        name=name,
        params=MergeParams,
        infer=_infer_elementwise,
        doc=doc,
        arity=(2, None),
        examples=(Example((3, 4, 4), more_inputs=((3, 4, 4),)), Example((6,), more_inputs=((6,), (6,))),
                  Example((2, 5), more_inputs=((2, 5),))),
    )


OPS = (
    _elementwise("add", "Element-wise sum of two or more inputs of the same shape (a skip connection)."),
    _elementwise("multiply", "Element-wise product of two or more inputs of the same shape (a gate)."),
    OpDef(
        name="concat",
        params=ConcatParams,
        infer=_infer_concat,
        moves_values=True,
        doc="Joins two or more inputs along dim (default 1, channels; counted on the batched tensor as in torch).",
        arity=(2, None),
        examples=(
            Example((3, 4, 4), more_inputs=((2, 4, 4),)),
            Example((3, 4, 5), {"dim": 2}, more_inputs=((3, 2, 5),)),
            Example((3, 4, 5), {"dim": -1}, more_inputs=((3, 4, 2), (3, 4, 1))),
            Example((5,), more_inputs=((3,),)),
            Example((2, 6), {"dim": 1}, more_inputs=((4, 6),)),
        ),
    ),
)
