"""A dataset's own columns as a batch names them: renamed by ``data.columns``, cast to each input's dtype.

The datasets that name their columns (``DatasetDef.columns``) make them knowing what
each feeds: the length of the input an ``ids`` column feeds is the sequence length,
the table reading it bounds the ids, the output a ``class`` column is the target of
counts the classes. ``Feeds`` answers those questions from the graph; ``dsl/columns.py``
has checked the mapping before anything is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from dsl import DATASETS, DataError, Graph, Spec, TensorType
from dsl.columns import column_names, table_size

from .sources import Split
from .stream import Stream
from .synthetic import ID_RANGE


@dataclass(frozen=True)
class Feeds:
    """What each of a dataset's columns feeds: ``names`` maps column -> batch column; ``graph`` gives the types."""

    names: dict[str, str]
    graph: Graph
    declared: dict[str, int | tuple[int, ...]] = field(default_factory=dict)  # an input's vocab, by input name

    def input(self, column: str) -> TensorType | None:
        """The model input ``column`` feeds, or None."""
        return dict(self.graph.inputs).get(self.names.get(column))

    def output(self, column: str) -> TensorType | None:
        """The output ``column`` is the target of (the value the output reads), or None."""
        value = dict(self.graph.outputs).get(self.names.get(column))
        return self.graph.value_type(value) if value else None

    def length(self, column: str, default: int | None = None) -> int | None:
        """The length of the sequences ``column`` feeds (its input's first axis), or ``default``."""
        kind = self.input(column)
        return kind.shape[0] if kind is not None else default

    def table(self, column: str) -> int | None:
        """The rows of the table reading the ids of ``column`` (its ``num_embeddings``), or None."""
        name = self.names.get(column)
        return table_size(self.graph, name) if name in dict(self.graph.inputs) else None

    def vocab(self, column: str) -> int | tuple[int, ...] | None:
        """How many ids the input ``column`` feeds takes: its declared ``vocab`` (one number, or one per field),
        else the rows of the table reading it, else None."""
        return self.declared.get(self.names.get(column)) or self.table(column)

    def id_high(self, *columns: str) -> int:
        """Synthetic ids for ``columns`` lie in 0..id_high-1: within every table reading any of them."""
        return min([ID_RANGE, *(t for t in map(self.table, columns) if t is not None)])


def feeds_of(spec: Spec, graph: Graph, name: str) -> Feeds:
    return Feeds(column_names(spec, DATASETS[name]), graph, _declared_vocab(spec))


def _declared_vocab(spec: Spec) -> dict[str, int | tuple[int, ...]]:
    """The ``vocab`` the one-model form's inputs declare (an id input's ids lie below it), by input name."""
    inputs = spec.input_specs if spec.models is None else {}
    vocab = {name: getattr(kind, "vocab", None) for name, kind in inputs.items()}
    return {name: tuple(v) if isinstance(v, (list, tuple)) else v for name, v in vocab.items() if v is not None}


def check_vocab(dataset: str, column: str, ids: np.ndarray, vocab: int | tuple[int, ...] | None) -> None:
    """Raises a one-line ``DataError`` unless every id lies below the vocab of the input it feeds (per field for
    ids [N, F]): an id out of range fails in torch's embedding on the device, and JAX clamps it silently."""
    if vocab is None or not ids.size:
        return
    high = ids.max(axis=0) if ids.ndim == 2 else ids.max(keepdims=True)
    bound = np.asarray(vocab)
    if bound.size not in (1, high.size):
        raise DataError(f"dataset {dataset}: {column} has {high.size} fields, but the vocab of the input it feeds "
                        f"lists {bound.size}; give one vocab per field")
    bad = np.flatnonzero(high >= bound)
    if bad.size:
        at, field = bad[0], f" in field {bad[0]}" if ids.ndim == 2 else ""
        raise DataError(f"dataset {dataset}: {column} holds ids up to {high[at]}{field}, but the input it feeds "
                        f"takes ids below {np.broadcast_to(bound, high.shape)[at]} (its vocab); give a vocab of at "
                        f"least {high[at] + 1}")


def fit(split: Split | Stream, feeds: Feeds) -> Split | Stream:
    """``split`` named as the batch names its columns, each input's column in that input's dtype
    (a mask made as int64 feeds a ``bool`` or ``float32`` input as well); a ``Stream`` stays one (a memory-mapped
    column already of its input's dtype is not copied)."""
    inputs = dict(feeds.graph.inputs)
    columns = {}
    for column, values in split.columns.items():
        name = feeds.names.get(column, column)
        columns[name] = values.astype(inputs[name].dtype, copy=False) if name in inputs else values
    return replace(split, columns=columns)
