"""Embedding: integer ids -> rows of a learned table, the first op with an integer input.

torch's semantics (torch.nn.Embedding): the table is (num_embeddings, embedding_dim),
initialized N(0, 1) (Flax's ``Embed`` uses std 1/√dim: docs/PARITY.md §9);
``padding_idx`` starts as a zero row and never receives a gradient. ``padding_idx``
may be negative, counted from the end as in torch. Ids outside the table are a
data error: torch raises on them, XLA clamps silently, so the parity checker draws
ids within the table.

``field_embedding`` and ``bias`` are the recommender tables. ``field_embedding`` reads
one id per field ([N, F], each field its own id space, as Criteo's 26 categorical
columns) from ONE table of sum(vocab_sizes) rows: field f's id i is row
offsets[f] + i (pytorch-fm's ``FeaturesEmbedding``), so the state dict holds one
``weight`` and the offsets are a constant, not a weight. ``bias`` is a learned scalar
per id (an ``nn.Embedding(num, 1)`` read without its last axis), starting at zero as a
bias does; over fields it takes ``vocab_sizes`` and offsets as ``field_embedding``.
Their sizes default to the input's declared ``vocab:``, and a table smaller than a
declared vocab is an error: the ids past it would have no row.

``sparse: true`` (on any of the three) is torch's ``nn.Embedding(sparse=True)``: the table's gradient holds
only the rows the batch looked up (duplicates summed, ``padding_idx`` left out), and
the optimizer must take such a gradient: ``sparse_adam`` (lazy Adam on those rows),
or plain ``sgd`` (docs/PARITY.md §20).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..tensors import INT_DTYPES, TensorType, format_shape
from ..types import Bool, Int, Params, PositiveInt
from .base import Constant, Example, Normal, OpDef, ShapeError, Weight

Sizes = Annotated[tuple[PositiveInt, ...], Field(min_length=1, max_length=4096)]


class EmbeddingParams(Params):
    num_embeddings: PositiveInt
    embedding_dim: PositiveInt
    padding_idx: Int | None = None
    sparse: Bool = False


def _require_ids(ids: TensorType) -> None:
    """int32 or int64: torch's embedding refuses floats and bools (JAX would read a bool as ids 0 and 1)."""
    if ids.dtype not in INT_DTYPES:
        raise ShapeError(f"takes integer ids (int32 or int64), got {ids.dtype} input {format_shape(ids.shape)}; "
                         f"declare the input's dtype: int64")


def _one_table(rows: int, ids: TensorType, param: str = "num_embeddings") -> None:
    """A table of ``rows`` read by ids of one id space: it must hold the input's declared vocab, which must not
    be per field (fields' ids would share rows)."""
    if isinstance(ids.vocab, tuple):
        raise ShapeError(f"its input declares a vocab per field ({len(ids.vocab)} sizes), but one table of "
                         f"{param} rows would give field 0's id 5 and field 1's id 5 the same row; use "
                         f"field_embedding (one table with offsets per field)", param=param)
    if ids.vocab is not None and rows < ids.vocab:
        raise ShapeError(f"{param} is {rows}, smaller than its input's declared vocab {ids.vocab}: ids "
                         f"{rows}..{ids.vocab - 1} would have no row; give {param}: {ids.vocab} (or more)",
                         param=param)


def _infer_embedding(p: EmbeddingParams, ids: TensorType) -> tuple[EmbeddingParams, TensorType]:
    _require_ids(ids)
    _one_table(p.num_embeddings, ids)
    if p.padding_idx is not None and not -p.num_embeddings <= p.padding_idx < p.num_embeddings:
        raise ShapeError(f"padding_idx {p.padding_idx} is outside the table of {p.num_embeddings} rows "
                         f"(valid: -{p.num_embeddings}..{p.num_embeddings - 1})", param="padding_idx")
    padding = None if p.padding_idx is None else p.padding_idx % p.num_embeddings
    return p.model_copy(update={"padding_idx": padding}), TensorType(ids.shape + (p.embedding_dim,), "float32")


def _embedding_weights(p: EmbeddingParams) -> dict[str, Weight]:
    zero = () if p.padding_idx is None else (p.padding_idx,)
    return {"weight": Weight((p.num_embeddings, p.embedding_dim), Normal(1.0), zero_rows=zero, sparse=p.sparse)}


class FieldEmbeddingParams(Params):
    vocab_sizes: Sizes | None = None
    embedding_dim: PositiveInt
    sparse: Bool = False


class BiasParams(Params):
    num_embeddings: PositiveInt | None = None
    vocab_sizes: Sizes | None = None
    sparse: Bool = False


def field_sizes(sizes: tuple[int, ...] | None, ids: TensorType) -> tuple[int, ...]:
    """Each field's table size: ``sizes`` as given, else the input's declared vocab; checked against both."""
    _require_ids(ids)
    if not ids.rank:
        raise ShapeError(f"reads one id per field, [N, F], got {format_shape(ids.shape)}; a single id per example "
                         f"is embedding's (or bias's num_embeddings)")
    fields, vocab = ids.shape[-1], ids.vocab
    declared = (vocab,) * fields if isinstance(vocab, int) else vocab
    if sizes is None and declared is None:
        raise ShapeError("needs vocab_sizes, one table size per field, or a vocab: declared on its integer input "
                         "to take them from", param="vocab_sizes")
    sizes = declared if sizes is None else sizes
    if len(sizes) != fields:
        raise ShapeError(f"vocab_sizes lists {len(sizes)} sizes, but its input {format_shape(ids.shape)} has "
                         f"{fields} fields (the last axis)", param="vocab_sizes")
    short = [f for f in range(fields) if declared and sizes[f] < declared[f]]
    if short:
        f = short[0]
        raise ShapeError(f"vocab_sizes[{f}] is {sizes[f]}, smaller than its input's declared vocab for field {f} "
                         f"({declared[f]}): those ids would have no row; give vocab_sizes[{f}] at least "
                         f"{declared[f]}, or leave vocab_sizes out to take the declared vocab", param="vocab_sizes")
    return tuple(sizes)


def _infer_field_embedding(p: FieldEmbeddingParams, ids: TensorType) -> tuple[FieldEmbeddingParams, TensorType]:
    sizes = field_sizes(p.vocab_sizes, ids)
    return p.model_copy(update={"vocab_sizes": sizes}), TensorType(ids.shape + (p.embedding_dim,), "float32")


def _infer_bias(p: BiasParams, ids: TensorType) -> tuple[BiasParams, TensorType]:
    """One table (``num_embeddings``, or an input's single declared vocab), or per-field sizes with offsets."""
    _require_ids(ids)
    if p.num_embeddings is not None and p.vocab_sizes is not None:
        raise ShapeError("takes num_embeddings (one table for one id space) or vocab_sizes (one size per field), "
                         "not both", param="vocab_sizes")
    if p.vocab_sizes is not None or (p.num_embeddings is None and isinstance(ids.vocab, tuple)):
        return p.model_copy(update={"vocab_sizes": field_sizes(p.vocab_sizes, ids)}), TensorType(ids.shape, "float32")
    rows = ids.vocab if p.num_embeddings is None else p.num_embeddings
    if rows is None:
        raise ShapeError("needs num_embeddings (the ids' range), vocab_sizes (one per field), or a vocab: declared "
                         "on its integer input", param="num_embeddings")
    _one_table(rows, ids)
    return p.model_copy(update={"num_embeddings": rows}), TensorType(ids.shape, "float32")


def bias_rows(p: BiasParams) -> int:
    return p.num_embeddings if p.vocab_sizes is None else sum(p.vocab_sizes)


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
            Example((), {"num_embeddings": 9, "embedding_dim": 3}, "int64", vocab=8),
            Example((3, 2), {"num_embeddings": 9, "embedding_dim": 3, "padding_idx": 1, "sparse": True}, "int64", 5),
        ),
    ),
    OpDef(
        name="field_embedding",
        params=FieldEmbeddingParams,
        infer=_infer_field_embedding,
        weights=lambda p: {"weight": Weight((sum(p.vocab_sizes), p.embedding_dim), Normal(1.0), sparse=p.sparse)},
        id_bound=lambda p: p.vocab_sizes,
        doc="One id per field [N, F] -> [N, F, embedding_dim] from ONE table of sum(vocab_sizes) rows, field f's "
            "ids offset by the sizes before it (pytorch-fm's FeaturesEmbedding); vocab_sizes default to the "
            "input's declared vocab; init N(0, 1).",
        examples=(
            Example((3,), {"vocab_sizes": [4, 7, 2], "embedding_dim": 5}, "int64", (4, 7, 2)),
            Example((2,), {"embedding_dim": 3}, "int32", vocab=(3, 6)),
            Example((4, 2), {"vocab_sizes": [5, 9], "embedding_dim": 2}, "int64", (5, 9), vocab=5),
            Example((3,), {"vocab_sizes": [4, 2, 6], "embedding_dim": 2, "sparse": True}, "int64", (4, 2, 6)),
        ),
    ),
    OpDef(
        name="bias",
        params=BiasParams,
        infer=_infer_bias,
        weights=lambda p: {"weight": Weight((bias_rows(p), 1), Constant(0.0), sparse=p.sparse)},
        id_bound=lambda p: p.num_embeddings if p.vocab_sizes is None else p.vocab_sizes,
        doc="A learned scalar per id: ids [N] or [N, F] -> floats of the same shape, from a (rows, 1) table "
            "(nn.Embedding(rows, 1) without its last axis) starting at 0; num_embeddings for one id space, "
            "vocab_sizes (with offsets) for fields; both default to the input's declared vocab.",
        examples=(
            Example((), {"num_embeddings": 6}, "int64", 6),
            Example((), {}, "int32", vocab=9),
            Example((3,), {"vocab_sizes": [2, 5, 3]}, "int64", (2, 5, 3)),
            Example((4,), {}, "int64", vocab=(3, 1, 4, 2)),
            Example((2, 3), {"num_embeddings": 8}, "int64", 8),
            Example((3,), {"vocab_sizes": [3, 5, 2], "sparse": True}, "int64", (3, 5, 2)),
        ),
    ),
)
