"""Ops that make features interact, as recommenders score them: ``dot`` and ``fm_interaction``.

``dot`` is the matrix-factorization score, a row-wise inner product of two embeddings
(torch's ``(u * v).sum(-1)``; Keras's ``Dot(axes=-1)`` keeps a last axis of 1, which
``keepdim: true`` gives). ``fm_interaction`` is the factorization machine's second-order
term over field embeddings [N, F, D], Rendle's O(F·D) identity
Σ_{i<j} <v_i, v_j> = ½ ((Σ_f v_f)² - Σ_f v_f²), summed over D to [N, 1] as pytorch-fm's
``FactorizationMachine(reduce_sum=True)`` returns it, so it adds to a linear head's
[N, 1] without a reshape; ``reduce: false`` keeps the vector [N, D] (the bi-interaction
pooling of NFM).
"""

from __future__ import annotations

from ..tensors import TensorType, format_shape
from ..types import Bool, Params
from .base import Example, OpDef, ShapeError, require_float


class DotParams(Params):
    keepdim: Bool = False


class FmInteractionParams(Params):
    reduce: Bool = True


def _infer_dot(p: DotParams, a: TensorType, b: TensorType) -> tuple[DotParams, TensorType]:
    require_float(a)
    require_float(b)
    if a.shape != b.shape or not a.rank:
        raise ShapeError(f"needs two inputs of one shape [N, ..., D] (no broadcasting), got {format_shape(a.shape)} "
                         f"and {format_shape(b.shape)}")
    return p, a.with_shape(a.shape[:-1] + (1,) * p.keepdim)


def _infer_fm(p: FmInteractionParams, x: TensorType) -> tuple[FmInteractionParams, TensorType]:
    require_float(x)
    if x.rank != 2:
        raise ShapeError(f"expects field embeddings [N, F, D], got {format_shape(x.shape)}; field_embedding gives "
                         f"them")
    return p, x.with_shape((1,) if p.reduce else x.shape[1:])


OPS = (
    OpDef(
        name="dot",
        params=DotParams,
        infer=_infer_dot,
        arity=(2, 2),
        doc="Row-wise dot product over the last axis: [N, ..., D] · [N, ..., D] -> [N, ...] (torch's "
            "(a * b).sum(-1)); keepdim: true keeps a last axis of 1 (Keras's Dot).",
        examples=(
            Example((4,), more_inputs=((4,),)),
            Example((3, 5), more_inputs=((3, 5),)),
            Example((6,), {"keepdim": True}, more_inputs=((6,),)),
        ),
    ),
    OpDef(
        name="fm_interaction",
        params=FmInteractionParams,
        infer=_infer_fm,
        doc="The factorization machine's pairwise term over [N, F, D]: ½((Σ_f v)² - Σ_f v²) in O(F·D), summed "
            "over D to [N, 1] (pytorch-fm's FactorizationMachine), or the vector [N, D] with reduce: false.",
        examples=(Example((5, 3)), Example((4, 6), {"reduce": False}), Example((1, 2))),
    ),
)
