"""Sequence utilities over batch-first [N, T, ...] tensors: positions and pooling over T.

``position_embedding`` is Hugging Face BERT's ``embeddings.position_embeddings``: a
torch.nn.Embedding read at ``position_ids = arange(T)``, so a BERT checkpoint's
``position_embeddings.weight`` loads as it is. ``sinusoidal_position`` adds the fixed
table of "Attention Is All You Need", as the PyTorch tutorial's ``PositionalEncoding``
builds it (without its dropout: a ``dropout`` layer after it is the same model).
``sequence_pool`` reduces T to one vector per row, reading a padding mask when given.

Padding masks follow one convention across the catalog: an op taking a mask input
[N, T] (int or bool) has the argument ``mask: keep | ignore``, required exactly when
the mask input is given, because the two readings both exist and neither is a safe
default: ``keep`` says nonzero marks a real token (Hugging Face's ``attention_mask``),
``ignore`` says nonzero marks padding (torch's ``key_padding_mask``).
"""

from __future__ import annotations

from typing import Literal

from ..tensors import TensorType, format_shape
from ..types import Params, PositiveInt
from .base import Example, Normal, OpDef, ShapeError, Weight, require_float

MaskReading = Literal["keep", "ignore"]

MAX_TABLE = 2**25
"""The most values a sinusoidal table may hold (256 MiB in float64); the tutorial's 5000 × 512 holds 2.6M."""


def check_padding_mask(reading: MaskReading | None, x: TensorType, mask: TensorType | None) -> None:
    """The mask convention (the module docstring): ``mask:`` given exactly with a mask input [N, T] of x's T."""
    if mask is None:
        if reading is not None:
            raise ShapeError(f"mask: {reading} reads a padding mask, but the layer has no mask input; list it second "
                             f"in inputs: [x, mask], or drop mask:", param="mask")
        return
    if reading is None:
        raise ShapeError("has a mask input but no mask: argument; say how to read it: mask: keep (nonzero = real "
                         "token, Hugging Face's attention_mask) or mask: ignore (nonzero = padding, torch's "
                         "key_padding_mask)", param="mask")
    if mask.is_float:
        raise ShapeError(f"takes an int or bool padding mask, got {mask.dtype}; declare the mask input's dtype: "
                         f"int64 or bool")
    if mask.shape != x.shape[:1]:
        raise ShapeError(f"needs a padding mask [N, {x.shape[0]}] for the input {format_shape(x.shape)}, got "
                         f"{format_shape(mask.shape)}")


class PositionEmbeddingParams(Params):
    num_embeddings: PositiveInt
    embedding_dim: PositiveInt


def _sequence_length(x: TensorType) -> int:
    if x.rank < 1:
        raise ShapeError(f"needs a sequence [N, T, ...], got {format_shape(x.shape)}")
    return x.shape[0]


def _infer_position_embedding(p: PositionEmbeddingParams, x: TensorType
                              ) -> tuple[PositionEmbeddingParams, TensorType]:
    """Reads only T, dim 1 of the input (ids or features); the output is expanded over the batch."""
    steps = _sequence_length(x)
    if steps > p.num_embeddings:
        raise ShapeError(f"the input {format_shape(x.shape)} has {steps} positions, more than the "
                         f"{p.num_embeddings} rows of the table; raise num_embeddings to at least {steps}",
                         param="num_embeddings")
    return p, TensorType((steps, p.embedding_dim), "float32")


class SinusoidalPositionParams(Params):
    max_len: PositiveInt = 5000


def _infer_sinusoidal(p: SinusoidalPositionParams, x: TensorType) -> tuple[SinusoidalPositionParams, TensorType]:
    require_float(x)
    if x.rank != 2:
        raise ShapeError(f"expects input of shape [N, T, E], got {format_shape(x.shape)}")
    steps, features = x.shape
    if features % 2:
        raise ShapeError(f"needs an even feature size E, got {features}: the table interleaves sin and cos columns "
                         f"(the PyTorch tutorial's PositionalEncoding fails on an odd size too)")
    if steps > p.max_len:
        raise ShapeError(f"the input {format_shape(x.shape)} has {steps} positions, more than max_len {p.max_len}",
                         param="max_len")
    if p.max_len * features > MAX_TABLE:
        raise ShapeError(f"max_len {p.max_len} × E {features} is a table of {p.max_len * features:,} values, more "
                         f"than {MAX_TABLE:,}; lower max_len to the longest sequence the model reads",
                         param="max_len")
    return p, x


class SequencePoolParams(Params):
    mode: Literal["mean", "first", "last", "max"]
    mask: MaskReading | None = None


def _infer_sequence_pool(p: SequencePoolParams, x: TensorType, mask: TensorType | None = None
                         ) -> tuple[SequencePoolParams, TensorType]:
    require_float(x)
    if x.rank != 2:
        raise ShapeError(f"expects input of shape [N, T, E], got {format_shape(x.shape)}")
    if p.mode == "first" and mask is not None:
        raise ShapeError("mode first reads step 0 whatever the mask says (BERT's [CLS] token); drop the mask input",
                         param="mode")
    check_padding_mask(p.mask, x, mask)
    return p, x.with_shape(x.shape[1:])


OPS = (
    OpDef(
        name="position_embedding",
        params=PositionEmbeddingParams,
        infer=_infer_position_embedding,
        shape_only=True,
        weights=lambda p: {"weight": Weight((p.num_embeddings, p.embedding_dim), Normal(1.0))},
        doc="Learned positions: rows 0..T-1 of a (num_embeddings, embedding_dim) table (torch.nn.Embedding at "
            "arange(T), Hugging Face's position_embeddings), [N, T, embedding_dim] for an input whose dim 1 is T.",
        examples=(
            Example((6,), {"num_embeddings": 8, "embedding_dim": 4}, "int64", 100),
            Example((5,), {"num_embeddings": 5, "embedding_dim": 3}, "int32", 7),
            Example((4, 3), {"num_embeddings": 10, "embedding_dim": 2}),
        ),
    ),
    OpDef(
        name="sinusoidal_position",
        params=SinusoidalPositionParams,
        infer=_infer_sinusoidal,
        doc="Adds the fixed sin/cos table of 'Attention Is All You Need' to [N, T, E] (the PyTorch tutorial's "
            "PositionalEncoding, without its dropout); no weights.",
        examples=(Example((7, 6)), Example((4, 2), {"max_len": 4}), Example((3, 16), {"max_len": 100})),
    ),
    OpDef(
        name="sequence_pool",
        params=SequencePoolParams,
        infer=_infer_sequence_pool,
        arity=(1, 2),
        doc="[N, T, E] -> [N, E]: mode mean, max, first (step 0, BERT's [CLS]) or last step; with a padding mask "
            "input (mask: keep or ignore), over the real steps only.",
        examples=(
            Example((5, 3), {"mode": "mean"}),
            Example((5, 3), {"mode": "first"}),
            Example((5, 3), {"mode": "last"}),
            Example((5, 3), {"mode": "max"}),
            Example((6, 4), {"mode": "mean", "mask": "keep"}, more_inputs=((6,),), mask_dtype="int64",
                    masks=(1,)),
            Example((6, 4), {"mode": "mean", "mask": "ignore"}, more_inputs=((6,),), mask_dtype="bool",
                    masks=(1,)),
            Example((6, 4), {"mode": "last", "mask": "keep"}, more_inputs=((6,),), mask_dtype="bool",
                    masks=(1,)),
            Example((6, 4), {"mode": "last", "mask": "ignore"}, more_inputs=((6,),), mask_dtype="int32",
                    masks=(1,)),
            Example((6, 4), {"mode": "max", "mask": "keep"}, more_inputs=((6,),), mask_dtype="int64",
                    masks=(1,)),
            Example((6, 4), {"mode": "max", "mask": "ignore"}, more_inputs=((6,),), mask_dtype="bool",
                    masks=(1,)),
        ),
    ),
)
