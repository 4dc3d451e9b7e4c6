"""Seeded random data for any model, with targets a fixed random "teacher" computes.

Float inputs are standard normal, integer inputs ids within their declared ``vocab``
and the tables that read them (``OpDef.id_bound``; per field where either is), bool
inputs coin flips, and inputs declared as padding masks masks (real tokens first,
then padding). Each target depends on the inputs
(argmax, or tanh, of a random linear map of the examples' features, where an id's
feature is a random vector per id), so a model can learn them and smoke tests can
see accuracy rise; the data is the same for a given seed on every machine. A ctc
term gets label sequences padded with the blank, and the frame counts its loss reads.
"""

from __future__ import annotations

import numpy as np

from dsl import LOSSES, Graph, TensorType
from dsl.columns import id_bound
from dsl.objectives import Objective, Term
from dsl.targets import class_count

from .sources import Source, Split

DEFAULT_TRAIN_SIZE, DEFAULT_TEST_SIZE = 2048, 512
ID_RANGE = 1000
"""Integer inputs are drawn from 0..ID_RANGE-1, or fewer where a layer reading them has a smaller table."""


def synthetic(graph: Graph, objective: Objective | None, seed: int, train_size: int | None,
              test_size: int | None) -> Source:
    rng = np.random.default_rng([seed, 0x5EED])
    sizes = (train_size or DEFAULT_TRAIN_SIZE, test_size or DEFAULT_TEST_SIZE)
    total = sum(sizes)
    names = objective.inputs if objective else tuple(n for n, _ in graph.inputs)
    columns = {name: draw_examples(graph.value_type(name), total, rng, id_high(graph, name), mask=graph.mask_of(name))
               for name in names}
    features = np.concatenate([_features(columns[n], rng, id_high(graph, n)) for n in names], axis=1)
    classes = None
    for term in objective.terms if objective and objective.targets else ():
        out = graph.value_type(term.value)
        if LOSSES[term.loss.name].targets == "classes":
            classes = class_count(term.loss, out)
            teacher = rng.standard_normal((features.shape[1], out.numel))
            scores = (features @ teacher).reshape(total, *out.shape)
            columns[term.target] = scores.argmax(axis=term.loss.params.class_axis).astype(np.int64)
        elif LOSSES[term.loss.name].targets == "labels":
            columns.update(ctc_columns(term, out, total, rng, features))
        else:
            teacher = rng.standard_normal((features.shape[1], out.numel)) / np.sqrt(features.shape[1])
            columns[term.target] = np.tanh(features @ teacher).reshape(total, *out.shape).astype(np.float32)
    n = sizes[0]
    split = Split(columns)
    return Source(Split({k: v[:n] for k, v in split.columns.items()}),
                  Split({k: v[n:] for k, v in split.columns.items()}), classes)


def id_high(graph: Graph, name: str, limit: int = ID_RANGE) -> int | tuple[int, ...]:
    """Ids for input ``name`` lie in 0..id_high-1: within its declared vocab (the whole of it; else below
    ``limit``) and every table that reads it; a tuple bounds each field (the last axis) on its own."""
    return id_bound(graph, name, limit)


def draw_examples(kind: TensorType, count: int, rng: np.random.Generator, high: int,
                  dtype: str | None = None, mask: str | None = None) -> np.ndarray:
    """``count`` examples of an input: floats standard normal, bools coin flips, integer ids in 0..high-1,
    padding masks (``mask``: ``keep`` or ``ignore``) as ``padding_masks`` draws them.

    Floats are drawn in float32 (numpy's own float32 sampler), or in float64 and cast to
    ``dtype`` where one is given (``dslc check``'s stream, which float64 checks share).
    """
    if mask is not None:
        return padding_masks(kind, count, rng, mask)
    shape = (count, *kind.shape)
    if kind.is_float:
        return rng.standard_normal(shape, dtype=np.float32) if dtype is None else \
            rng.standard_normal(shape).astype(dtype)
    if kind.dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, np.asarray(high) if isinstance(high, tuple) else high, shape).astype(kind.dtype)


def padding_masks(kind: TensorType, count: int, rng: np.random.Generator, mask: str) -> np.ndarray:
    """Masks [count, T] in the input's dtype: 1..T real tokens per row, first, then padding; nonzero marks the
    real tokens for ``keep`` (Hugging Face's attention_mask), the padding for ``ignore`` (key_padding_mask)."""
    steps = kind.shape[0]
    real = np.arange(steps)[None, :] < rng.integers(1, steps + 1, count)[:, None]
    return (real if mask == "keep" else ~real).astype(kind.dtype)


def ctc_columns(term: Term, out: TensorType, count: int, rng: np.random.Generator,
                features: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """A ctc term's targets and the frame counts its loss reads (``Term.columns``), ``count`` examples.

    Targets are 1..S labels (S a third of the T frames), never the blank, then blanks; a
    teacher picks them from ``features`` (learnable), or they are random. Frame counts lie
    in 2L..T for L labels: enough for any alignment (L labels need at most 2L - 1 frames).
    """
    frames, classes = out.shape
    blank = term.loss.params.blank
    labels, longest = np.array([c for c in range(classes) if c != blank]), max(1, frames // 3)
    if features is None:
        picks = rng.integers(0, len(labels), (count, longest))
    else:
        teacher = rng.standard_normal((features.shape[1], longest * len(labels)))
        picks = (features @ teacher).reshape(count, longest, len(labels)).argmax(-1)
    lengths = rng.integers(1, longest + 1, count)
    targets = np.where(np.arange(longest)[None, :] < lengths[:, None], labels[picks], blank).astype(np.int64)
    columns = {term.target: targets}
    for _, column in term.columns:
        columns[column] = rng.integers(np.minimum(2 * lengths, frames), frames + 1).astype(np.int64)
    return columns


def _features(column: np.ndarray, rng: np.random.Generator, high: int) -> np.ndarray:
    """What the teacher sees of one input: floats as they are, each id as a random vector of its own."""
    if column.dtype.kind == "f":
        return column.reshape(len(column), -1)
    table = rng.standard_normal((max(np.max(high), 2), 8))
    return table[column.reshape(len(column), -1).astype(np.int64)].reshape(len(column), -1)
