"""Ops that move values without computing on them: ``flatten``, ``unflatten``, ``chunk``, ``reshape``, ``permute``,
``select``, ``slice``, ``squeeze``."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, Strict

from ..tensors import TensorType, format_shape
from ..types import MAX_SIZE, Int, Params, PositiveInt
from .base import Example, OpDef, ShapeError


class FlattenParams(Params):
    start_dim: Int = 1
    end_dim: Int = -1


def _infer_flatten(p: FlattenParams, x: TensorType) -> tuple[FlattenParams, TensorType]:
    """Flattens dims start_dim..end_dim of the batched tensor, in channels-first order."""
    rank = x.rank + 1
    start, end = (d + rank if d < 0 else d for d in (p.start_dim, p.end_dim))
    if not 1 <= start < rank:
        raise ShapeError(
            f"start_dim {p.start_dim} is out of range for input {format_shape(x.shape)} (dim 0, the batch, stays)",
            param="start_dim",
        )
    if not start <= end < rank:
        raise ShapeError(f"end_dim {p.end_dim} must not come before start_dim {p.start_dim}", param="end_dim")
    shape = x.shape[: start - 1] + (math.prod(x.shape[start - 1 : end]),) + x.shape[end:]
    return p.model_copy(update={"start_dim": start, "end_dim": end}), x.with_shape(shape)


class UnflattenParams(Params):
    dim: Int = 1
    unflattened_size: Annotated[tuple[PositiveInt, ...], Field(min_length=1, max_length=8)]


def _batched_dim(dim: int, x: TensorType) -> int:
    """``dim`` of the batched tensor, made non-negative; the batch axis (0) is not one an op may split."""
    rank = x.rank + 1
    positive = dim + rank if dim < 0 else dim
    if not 1 <= positive < rank:
        raise ShapeError(f"dim {dim} is out of range for input {format_shape(x.shape)} (dim 0, the batch, stays)",
                         param="dim")
    return positive


def _infer_unflatten(p: UnflattenParams, x: TensorType) -> tuple[UnflattenParams, TensorType]:
    """Splits dim ``dim`` of the batched tensor into ``unflattened_size`` (channels-first order)."""
    dim = _batched_dim(p.dim, x)
    size = x.shape[dim - 1]
    if math.prod(p.unflattened_size) != size:
        raise ShapeError(f"unflattened_size {list(p.unflattened_size)} holds {math.prod(p.unflattened_size)} values, "
                         f"but dim {p.dim} of the input {format_shape(x.shape)} has {size}",
                         param="unflattened_size")
    shape = x.shape[: dim - 1] + tuple(p.unflattened_size) + x.shape[dim:]
    return p.model_copy(update={"dim": dim}), x.with_shape(shape)


class ChunkParams(Params):
    chunks: Annotated[int, Field(ge=2, le=1024)]
    dim: Int = 1


def _infer_chunk(p: ChunkParams, x: TensorType) -> tuple[ChunkParams, tuple[TensorType, ...]]:
    """``chunks`` equal parts along ``dim``: the first op with several outputs (``chunk_1[1]`` is the second).

    Only even splits: ``torch.chunk`` returns fewer or uneven parts otherwise (6 along 4
    chunks gives 3 parts of 2), a trap this refuses.
    """
    dim = _batched_dim(p.dim, x)
    size = x.shape[dim - 1]
    if size % p.chunks:
        raise ShapeError(f"dim {p.dim} of {format_shape(x.shape)} has {size}, which {p.chunks} chunks do not divide "
                         f"(torch.chunk would return fewer or uneven parts)", param="chunks")
    part = x.with_shape(x.shape[: dim - 1] + (size // p.chunks,) + x.shape[dim:])
    return p.model_copy(update={"dim": dim}), (part,) * p.chunks


ShapeEntry = Annotated[int, Strict(), Field(ge=-1, le=MAX_SIZE)]


class ReshapeParams(Params):
    shape: Annotated[tuple[ShapeEntry, ...], Field(min_length=1, max_length=8)]


def _infer_reshape(p: ReshapeParams, x: TensorType) -> tuple[ReshapeParams, TensorType]:
    """``shape`` is per example (the batch stays and is not written); a -1 is resolved here, as torch.reshape does."""
    if 0 in p.shape or p.shape.count(-1) > 1:
        raise ShapeError(f"shape {list(p.shape)}: entries must be positive, with at most one -1 (inferred)",
                         param="shape")
    values, known = math.prod(x.shape), math.prod(d for d in p.shape if d != -1)
    if (values % known if -1 in p.shape else values != known):
        raise ShapeError(_count_mismatch(p.shape, x, known), param="shape")
    shape = tuple(values // known if d == -1 else d for d in p.shape)
    return p.model_copy(update={"shape": shape}), x.with_shape(shape)


def _count_mismatch(shape: tuple[int, ...], x: TensorType, known: int) -> str:
    values = math.prod(x.shape)
    if -1 in shape:
        return (f"shape {list(shape)} cannot hold the {values} values per example of the input "
                f"{format_shape(x.shape)}: {values} is not a multiple of {known}")
    return f"shape {list(shape)} holds {known} values per example, but the input {format_shape(x.shape)} holds {values}"


class PermuteParams(Params):
    dims: Annotated[tuple[Int, ...], Field(min_length=2, max_length=9)]


def _infer_permute(p: PermuteParams, x: TensorType) -> tuple[PermuteParams, TensorType]:
    """``dims`` of the batched tensor, as torch.permute takes them; the batch (dim 0) must stay first."""
    dims, rank = list(p.dims), x.rank + 1
    if len(dims) != rank:
        raise ShapeError(f"dims {dims} has {len(dims)} entries, but the input {format_shape(x.shape)} has {rank} "
                         f"dims (the batch, dim 0, included)", param="dims")
    if any(not -rank <= d < rank for d in dims):
        raise ShapeError(f"dims {dims} is out of range for input {format_shape(x.shape)} "
                         f"(valid: 0..{rank - 1} or -{rank}..-1)", param="dims")
    positive = [d % rank for d in dims]
    if sorted(positive) != list(range(rank)):
        raise ShapeError(f"dims {dims} is not a permutation of 0..{rank - 1}: each dim must appear once",
                         param="dims")
    if positive[0] != 0:
        raise ShapeError(f"dims {dims} moves the batch: dim 0 must stay first", param="dims")
    shape = tuple(x.shape[d - 1] for d in positive[1:])
    return p.model_copy(update={"dims": tuple(positive)}), x.with_shape(shape)


class SelectParams(Params):
    dim: Int
    index: Int


def _infer_select(p: SelectParams, x: TensorType) -> tuple[SelectParams, TensorType]:
    """torch.select: one index along ``dim`` (counted on the batched tensor), which drops that dim."""
    dim = _batched_dim(p.dim, x)
    size = x.shape[dim - 1]
    if not -size <= p.index < size:
        raise ShapeError(f"index {p.index} is out of range for dim {p.dim} of {format_shape(x.shape)}, which has "
                         f"{size} (valid: 0..{size - 1} or -{size}..-1)", param="index")
    shape = x.shape[: dim - 1] + x.shape[dim:]
    return p.model_copy(update={"dim": dim, "index": p.index % size}), x.with_shape(shape)


class SliceParams(Params):
    dim: Int
    start: Int = 0
    end: Int | None = None
    step: PositiveInt = 1


def _infer_slice(p: SliceParams, x: TensorType) -> tuple[SliceParams, TensorType]:
    """``x[..., start:end:step]`` along ``dim``, with Python's rules for negative and out-of-range bounds.

    The bounds are resolved here (``slice.indices``), so both lowerings read
    non-negative ``start`` and ``end``; an empty result is refused, since it is
    always a mistake in a model (torch would return a tensor with a zero dim).
    """
    dim = _batched_dim(p.dim, x)
    size = x.shape[dim - 1]
    start, end, step = slice(p.start, p.end, p.step).indices(size)
    count = len(range(start, end, step))
    if not count:
        raise ShapeError(f"start {p.start}, end {p.end} selects nothing from dim {p.dim} of {format_shape(x.shape)}, "
                         f"which has {size}", param="start" if p.end is None else "end")
    shape = x.shape[: dim - 1] + (count,) + x.shape[dim:]
    return p.model_copy(update={"dim": dim, "start": start, "end": start + (count - 1) * step + 1}), x.with_shape(shape)


class SqueezeParams(Params):
    dim: Int


def _infer_squeeze(p: SqueezeParams, x: TensorType) -> tuple[SqueezeParams, TensorType]:
    """Drops ``dim``, which must have size 1: torch.squeeze leaves any other dim as it is, silently, and without
    ``dim`` it would drop the batch of a batch of one too."""
    dim = _batched_dim(p.dim, x)
    if x.shape[dim - 1] != 1:
        raise ShapeError(f"dim {p.dim} of {format_shape(x.shape)} has size {x.shape[dim - 1]}, not 1; squeeze drops "
                         f"a dim of size 1 (a linear head's [N, 1] to [N])", param="dim")
    return p.model_copy(update={"dim": dim}), x.with_shape(x.shape[: dim - 1] + x.shape[dim:])


OPS = (
    OpDef(
        name="flatten",
        params=FlattenParams,
        infer=_infer_flatten,
        moves_values=True,
        doc="Flattens dims start_dim..end_dim (default 1..-1) in (C, H, W) order (torch.nn.Flatten).",
        examples=(Example((3, 4, 5)), Example((3, 4, 5), {"start_dim": 2}), Example((2, 3, 4), {"end_dim": 2})),
    ),
    OpDef(
        name="unflatten",
        params=UnflattenParams,
        infer=_infer_unflatten,
        moves_values=True,
        doc="Splits one dim into several, in (C, H, W) order (torch.nn.Unflatten): a generator's features to an "
            "image.",
        examples=(Example((64,), {"unflattened_size": [4, 4, 4]}),
                  Example((3, 20), {"dim": 2, "unflattened_size": [4, 5]}),
                  Example((6, 5), {"dim": -2, "unflattened_size": [2, 3]})),
    ),
    OpDef(
        name="chunk",
        params=ChunkParams,
        infer=_infer_chunk,
        moves_values=True,
        doc="Splits dim into equal parts, one output each (torch.chunk): name[0], name[1], ...",
        examples=(Example((8,), {"chunks": 2}), Example((6, 4, 4), {"chunks": 3}),
                  Example((2, 6), {"chunks": 2, "dim": -1})),
    ),
    OpDef(
        name="reshape",
        params=ReshapeParams,
        infer=_infer_reshape,
        moves_values=True,
        doc="Reshapes each example to shape (the batch stays and is not written; one entry may be -1), in (C, H, W) "
            "order (torch.reshape).",
        examples=(Example((3, 4, 5), {"shape": [12, 5]}), Example((3, 4, 5), {"shape": [5, -1, 2]}),
                  Example((60,), {"shape": [3, 4, 5]}), Example((2, 3, 4, 2), {"shape": [-1]})),
    ),
    OpDef(
        name="permute",
        params=PermuteParams,
        infer=_infer_permute,
        moves_values=True,
        doc="Reorders the batched tensor's dims as torch.permute (dims: [0, 2, 3, 1] for [N, H, W, C]); dim 0 stays "
            "first.",
        examples=(Example((3, 4, 5), {"dims": [0, 2, 3, 1]}), Example((3, 4, 5), {"dims": [0, -1, 1, 2]}),
                  Example((4, 6), {"dims": [0, 2, 1]})),
    ),
    OpDef(
        name="select",
        params=SelectParams,
        infer=_infer_select,
        moves_values=True,
        doc="One index along dim, which is dropped (torch.select; dim counted on the batched tensor, never 0; "
            "a negative index counts from the end): [N, T, E] with dim 1, index 0 gives [N, E].",
        examples=(Example((5, 3), {"dim": 1, "index": 0}), Example((5, 3), {"dim": -1, "index": -1}),
                  Example((3, 4, 5), {"dim": 2, "index": 2})),
    ),
    OpDef(
        name="slice",
        params=SliceParams,
        infer=_infer_slice,
        moves_values=True,
        doc="x[..., start:end:step] along dim (Python's rules: negative bounds count from the end, end null is "
            "the end; step >= 1); an empty result is an error.",
        examples=(Example((6, 3), {"dim": 1, "start": 1, "end": 4}),
                  Example((7, 2), {"dim": 1, "start": 1, "end": -1, "step": 2}),
                  Example((3, 4, 5), {"dim": -1, "end": 100, "step": 3}),
                  Example((3, 4, 5), {"dim": 2, "start": -3, "end": -1})),
    ),
    OpDef(
        name="squeeze",
        params=SqueezeParams,
        infer=_infer_squeeze,
        moves_values=True,
        doc="Drops dim, which must have size 1 (torch.squeeze(x, dim); counted on the batched tensor, never 0): "
            "a one-logit head's [N, 1] to [N].",
        examples=(Example((1,), {"dim": 1}), Example((3, 1), {"dim": -1}), Example((1, 4, 2), {"dim": 1})),
    ),
)
