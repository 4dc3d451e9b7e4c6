"""A dataset's own columns as a batch names them: renamed by ``data.columns``, cast to each input's dtype.

The datasets that name their columns (``DatasetDef.columns``) make them knowing what
each feeds: the length of the input an ``ids`` column feeds is the sequence length,
the table reading it bounds the ids, the output a ``class`` column is the target of
counts the classes. ``Feeds`` answers those questions from the graph; ``dsl/columns.py``
has checked the mapping before anything is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl import DATASETS, Graph, Spec, TensorType
from dsl.columns import column_names, table_size

from .sources import Split
from .synthetic import ID_RANGE


@dataclass(frozen=True)
class Feeds:
    """What each of a dataset's columns feeds: ``names`` maps column -> batch column; ``graph`` gives the types."""

    names: dict[str, str]
    graph: Graph

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

    def id_high(self, *columns: str) -> int:
        """Synthetic ids for ``columns`` lie in 0..id_high-1: within every table reading any of them."""
        return min([ID_RANGE, *(t for t in map(self.table, columns) if t is not None)])


def feeds_of(spec: Spec, graph: Graph, name: str) -> Feeds:
    return Feeds(column_names(spec, DATASETS[name]), graph)


def fit(split: Split, feeds: Feeds) -> Split:
    """``split`` named as the batch names its columns, each input's column in that input's dtype
    (a mask made as int64 feeds a ``bool`` or ``float32`` input as well)."""
    inputs = dict(feeds.graph.inputs)
    columns = {}
    for column, values in split.columns.items():
        name = feeds.names.get(column, column)
        columns[name] = values.astype(inputs[name].dtype, copy=False) if name in inputs else values
    return Split(columns)
