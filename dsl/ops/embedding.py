"""Embedding: integer ids -> rows of a learned table, the first op with an integer input.

torch's semantics (torch.nn.Embedding): the table is (num_embeddings, embedding_dim),
initialized N(0, 1) (Flax's ``Embed`` uses std 1/√dim: docs/PARITY.md §9);
``padding_idx`` starts as a zero row and never receives a gradient. ``padding_idx``
may be negative, counted from the end as in torch. Ids outside the table are a
data error: torch raises on them, XLA clamps silently, so the parity checker draws
ids within the table.

``sparse: true`` is torch's ``nn.Embedding(sparse=True)``: the table's gradient holds
only the rows the batch looked up (duplicates summed, ``padding_idx`` left out), and
the optimizer must take such a gradient: ``sparse_adam`` (lazy Adam on those rows),
or plain ``sgd`` (docs/PARITY.md §20).
"""

from __future__ import annotations

from ..tensors import TensorType, format_shape
from ..types import Bool, Int, Params, PositiveInt
from .base import Example, Normal, OpDef, ShapeError, Weight


class EmbeddingParams(Params):
    num_embeddings: PositiveInt
    embedding_dim: PositiveInt
    padding_idx: Int | None = None
    sparse: Bool = False


def _infer_embedding(p: EmbeddingParams, ids: TensorType) -> tuple[EmbeddingParams, TensorType]:
    if ids.is_float:
        raise ShapeError(f"takes integer ids (int32 or int64), got {ids.dtype} input {format_shape(ids.shape)}; "
                         f"declare the input's dtype: int64")
    if p.padding_idx is not None and not -p.num_embeddings <= p.padding_idx < p.num_embeddings:
        raise ShapeError(f"padding_idx {p.padding_idx} is outside the table of {p.num_embeddings} rows "
                         f"(valid: -{p.num_embeddings}..{p.num_embeddings - 1})", param="padding_idx")
    padding = None if p.padding_idx is None else p.padding_idx % p.num_embeddings
    return p.model_copy(update={"padding_idx": padding}), TensorType(ids.shape + (p.embedding_dim,), "float32")


def _embedding_weights(p: EmbeddingParams) -> dict[str, Weight]:
    zero = () if p.padding_idx is None else (p.padding_idx,)
    return {"weight": Weight((p.num_embeddings, p.embedding_dim), Normal(1.0), zero_rows=zero, sparse=p.sparse)}


OPS = (
    OpDef(
        name="embedding",
        params=EmbeddingParams,
        infer=_infer_embedding,
        weights=_embedding_weights,
        id_bound=lambda p: p.num_embeddings,
        doc="Rows of a (num_embeddings, embedding_dim) table for integer ids (torch.nn.Embedding); padding_idx "
            "stays zero and gets no gradient; sparse: true gives the table a gradient of the looked-up rows only, "
            "for optimizer sparse_adam.",
        examples=(
            Example((5,), {"num_embeddings": 11, "embedding_dim": 4}, "int64", 11),
            Example((3, 2), {"num_embeddings": 6, "embedding_dim": 3, "padding_idx": 0}, "int64", 6),
            Example((4,), {"num_embeddings": 7, "embedding_dim": 2, "padding_idx": -1}, "int32", 7),
            Example((3, 2), {"num_embeddings": 9, "embedding_dim": 3, "padding_idx": 1, "sparse": True}, "int64", 5),
        ),
    ),
)
