"""Reductions along one axis: ``sum`` and ``mean`` (torch.sum / torch.mean with ``dim`` and ``keepdim``).

``dim`` is required and counted on the batched tensor, as every dslc op counts it
(``concat``, ``softmax``): ``dim: 1`` is the first axis after the batch, and the
batch itself (dim 0) is never reduced, so a model keeps one output per example.
torch's no-``dim`` form sums everything, the batch included, which no layer wants.
"""

from __future__ import annotations

from ..tensors import TensorType
from ..types import Bool, Int, Params
from .activation import resolve_dim
from .base import Example, OpDef, require_float


class ReduceParams(Params):
    dim: Int
    keepdim: Bool = False


def _infer_reduce(p: ReduceParams, x: TensorType) -> tuple[ReduceParams, TensorType]:
    require_float(x)
    axis = resolve_dim(p.dim, x)
    kept = (1,) if p.keepdim else ()
    return p.model_copy(update={"dim": axis}), x.with_shape(x.shape[:axis - 1] + kept + x.shape[axis:])


def _reduction(name: str, doc: str) -> OpDef:
    return OpDef(
        name=name,
        params=ReduceParams,
        infer=_infer_reduce,
        doc=doc,
        examples=(Example((5,), {"dim": 1}), Example((4, 3), {"dim": 1, "keepdim": True}),
                  Example((3, 4, 2), {"dim": -1}), Example((2, 3, 4, 5), {"dim": 1})),
    )


OPS = (
    _reduction("sum", "Sum along dim (required; counted on the batched tensor, never 0), keepdim: false "
                      "(torch.sum): [N, F] with dim 1 gives [N]."),
    _reduction("mean", "Mean along dim (required; counted on the batched tensor, never 0), keepdim: false "
                       "(torch.mean)."),
)
