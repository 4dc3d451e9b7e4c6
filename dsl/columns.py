"""Which model input or output each column of a dataset feeds (``data.columns``), checked before loading.

A batch names its arrays by what they feed (``dsl/objectives.py``): an input by its
name, a target by its output's. Datasets name their columns their own way (Hugging
Face's ``input_ids``, ``attention_mask``, ``label``), so ``data.columns`` maps one to
the other, dataset column -> input or output name, as
``{input_ids: tokens, label: topic}``. A column not listed keeps its own name, so a
model whose inputs are named as the dataset's columns needs no mapping. Every column
of a dataset reaches the batch, the ones no input or target reads too (a loss may read
one by name, as ctc's ``input_lengths`` reads ``frame_lengths``).

Everything here is checked from the declarations (``DatasetDef.columns``) and the
graph, so ``dslc validate`` points at the line to fix without reading any data.
"""

from __future__ import annotations

from .errors import Location, SpecSchemaError, did_you_mean
from .graph import Graph
from .ops import OPS
from .schema import Spec
from .tensors import format_shape
from .training import DATASETS, Column, DatasetDef

RESERVED_IDS = 4
"""Ids every dslc vocabulary keeps: 0 ``<pad>``, 1 ``<bos>``, 2 ``<eos>``, 3 ``<unk>``; tokens start at 4."""

KIND_WORDS = {"ids": "token ids [L] (integers)", "mask": "a padding mask [L]", "frames": "float frames [T, F]",
              "id": "one integer id per example (shape [])", "field_ids": "integer ids [F], one per field",
              "features": "float features [F]"}
"""What an input fed by a column of each kind must be; other kinds are not checked against inputs."""


def column_names(spec: Spec, dataset: DatasetDef) -> dict[str, str]:
    """Dataset column -> the batch column it becomes: ``data.columns`` over the identity."""
    mapping = spec.data.columns if spec.data else {}
    return {c.name: mapping.get(c.name, c.name) for c in dataset.columns}


Bound = int | float | tuple[int, ...]
"""One past the largest id: for every position, or per field (the last axis); ``math.inf`` for no bound."""


def _table_bounds(graph: Graph, name: str) -> list[Bound]:
    """The id bound of every table reading input ``name``: directly (per field where the table is), or through
    layers that move its ids (``OpDef.moves_values``: a reshape, a select), where fields may have moved, so the
    smallest field's bound holds for all."""
    bounds, moved = [], set()
    for node in graph.nodes:
        op, direct = OPS[node.op], name in node.inputs
        if not direct and not moved & set(node.inputs):
            continue
        if op.id_bound:
            bound = op.id_bound(node.params)
            bounds.append(bound if direct and not moved & set(node.inputs) else min(_fields(bound)))
        elif op.moves_values:
            moved |= set(node.value_names)
    return bounds


def _fields(bound: Bound) -> tuple[int, ...]:
    return bound if isinstance(bound, tuple) else (bound,)


def table_size(graph: Graph, name: str) -> int | None:
    """The smallest table (``num_embeddings``; a field's size) reading input ``name``, directly or through layers
    that move its ids; None where none does."""
    return min((min(b) if isinstance(b, tuple) else b for b in _table_bounds(graph, name)), default=None)


def id_bound(graph: Graph, name: str, limit: Bound) -> Bound:
    """Ids of input ``name`` lie below this: its declared ``vocab`` (else ``limit``) and every table reading it,
    field by field where any of them is per field (a tuple)."""
    vocab = graph.value_type(name).vocab
    bound = limit if vocab is None else vocab
    for table in _table_bounds(graph, name):
        bound = _smaller(bound, table)
    return bound


def _smaller(a: Bound, b: Bound) -> Bound:
    """The element-wise minimum, where a number stands for every field."""
    if not isinstance(a, tuple) and not isinstance(b, tuple):
        return min(a, b)
    fields = len(a) if isinstance(a, tuple) else len(b)
    a, b = (x if isinstance(x, tuple) else (x,) * fields for x in (a, b))
    return tuple(min(x, y) for x, y in zip(a, b, strict=True))


def check_columns(spec: Spec, graph: Graph, dataset: DatasetDef, inputs: tuple[str, ...],
                  targets: tuple[str, ...]) -> None:
    """Raises a located error unless ``data.columns`` names real columns and real inputs or outputs, and every
    input and target the objective reads gets a column of the right kind."""
    data = spec.data
    if data and data.columns:
        _check_mapping(spec, graph, dataset)
    _check_tokenizer(spec, graph, dataset)
    if dataset.columns:
        _check_fed(spec, dataset, inputs, targets)
        _check_kinds(spec, graph, dataset)
        if data and data.normalize:
            raise SpecSchemaError(f"data.normalize scales the channels of images; dataset {dataset.name} yields "
                                  f"sequences", spec.source.locate(("data", "normalize"), key=True))


def _check_mapping(spec: Spec, graph: Graph, dataset: DatasetDef) -> None:
    mapping, at = spec.data.columns, spec.source.locate
    if not dataset.named_columns or dataset.name == "synthetic":
        why = "makes one column per input and output, by name" if dataset.named_columns else \
            "feeds the model's one input and its one output"
        raise SpecSchemaError(f"data.columns maps the columns of a dataset to inputs and outputs; dataset "
                              f"{dataset.name} {why}: remove data.columns", at(("data", "columns"), key=True))
    own = [c.name for c in dataset.columns]
    batch = [n for n, _ in graph.inputs] + [n for n, _ in graph.outputs]
    for key, value in mapping.items():
        if own and key not in own:
            raise SpecSchemaError(f"dataset {dataset.name} has no column '{key}'{did_you_mean(key, own)}; its "
                                  f"columns: {', '.join(own)}", at(("data", "columns", key), key=True))
        if value not in batch:
            raise SpecSchemaError(f"data.columns maps {key} to '{value}', which is neither an input nor an output of "
                                  f"the model{did_you_mean(value, batch)}; {_names(graph)}",
                                  at(("data", "columns", key)))
        _check_distinct(spec, dataset, key, value)


def _check_distinct(spec: Spec, dataset: DatasetDef, key: str, value: str) -> None:
    """Two columns may not become one batch column: neither two mapped ones, nor a mapped and an unmapped one."""
    mapping = spec.data.columns
    earlier = [k for k in list(mapping)[:list(mapping).index(key)] if mapping[k] == value]
    unmapped = value in (c.name for c in dataset.columns) and value not in mapping
    clash = earlier[0] if earlier else value if unmapped else None
    if clash is not None:
        raise SpecSchemaError(f"data.columns feeds '{value}' from both {clash} and {key}; one column feeds each "
                              f"input and output", spec.source.locate(("data", "columns", key)))


def _check_fed(spec: Spec, dataset: DatasetDef, inputs: tuple[str, ...], targets: tuple[str, ...]) -> None:
    """Every input and target gets a column, and the first column (it sets the sequence length) feeds an input."""
    names = column_names(spec, dataset)
    fed = set(names.values())
    for kind, name in [("input", n) for n in inputs] + [("output", n) for n in targets]:
        if name not in fed:
            free = next((c.name for c in dataset.columns if names[c.name] not in inputs + targets
                         and (c.kind in ("class", "tokens", "value")) == (kind == "output")), "COLUMN")
            raise SpecSchemaError(f"{kind} '{name}' gets no column from dataset {dataset.name} (its columns: "
                                  f"{', '.join(names)}); map one to it, as data.columns: {{{free}: {name}}}",
                                  _where(spec))
    first = dataset.columns[0].name
    if names[first] not in inputs:
        raise SpecSchemaError(f"dataset {dataset.name}'s column {first} sets the sequence length, so it must feed a "
                              f"model input; inputs: {', '.join(inputs)}", _where(spec, first))


def _check_kinds(spec: Spec, graph: Graph, dataset: DatasetDef) -> None:
    """An input fed ids must take integers [L], a mask [L] of any dtype, frames floats [T, F]; one id an integer
    [], field ids integers [F], features floats [F]."""
    names, inputs = column_names(spec, dataset), dict(graph.inputs)
    for column in dataset.columns:
        kind = inputs.get(names[column.name])
        if kind is None or column.kind not in KIND_WORDS or _fits(column, kind):
            continue
        raise SpecSchemaError(f"dataset {dataset.name}'s {column.name} are {KIND_WORDS[column.kind]}, but input "
                              f"{names[column.name]} is {kind.dtype} {format_shape(kind.shape)}",
                              _where(spec, column.name))


def _fits(column: Column, kind) -> bool:
    if column.kind in ("frames", "features"):
        return kind.is_float and kind.rank == (2 if column.kind == "frames" else 1)
    rank = 0 if column.kind == "id" else 1
    return kind.rank == rank and (column.kind == "mask" or kind.dtype.startswith("int"))


def _check_tokenizer(spec: Spec, graph: Graph, dataset: DatasetDef) -> None:
    """A dataset of text needs a tokenizer, others refuse one; a vocabulary must fit the table reading its ids."""
    tokenizer, at = spec.data.tokenizer if spec.data else None, spec.source.locate
    if dataset.tokenized and tokenizer is None:
        raise SpecSchemaError(f"dataset {dataset.name} reads text: add data.tokenizer (char, vocab, or file: "
                              f"tokenizer.json)", _where(spec))
    if tokenizer is not None and not dataset.tokenized:
        readers = ", ".join(d.name for d in DATASETS.values() if d.tokenized)
        raise SpecSchemaError(f"data.tokenizer turns text into ids for datasets {readers}; dataset {dataset.name} "
                              f"makes its own ids: remove it", at(("data", "tokenizer"), key=True))
    if tokenizer is None or tokenizer.name == "file" or tokenizer.params.max_size is None:
        return
    names = column_names(spec, dataset)
    for column in (c for c in dataset.columns if c.kind == "ids"):
        size = table_size(graph, names[column.name])
        if size is not None and tokenizer.params.max_size + RESERVED_IDS > size:
            raise SpecSchemaError(f"tokenizer {tokenizer.name} max_size {tokenizer.params.max_size} gives ids up to "
                                  f"{tokenizer.params.max_size + RESERVED_IDS - 1} (after the {RESERVED_IDS} reserved "
                                  f"ids), but the table reading {names[column.name]} has {size} rows; give at most "
                                  f"{size - RESERVED_IDS}, or leave max_size out to fill the table",
                                  at(("data", "tokenizer", tokenizer.name, "max_size")))


def _where(spec: Spec, column: str | None = None) -> Location | None:
    """A mapped column's value, else ``data.columns``, else ``data.dataset``."""
    columns = spec.data.columns if spec.data else {}
    if column in columns:
        return spec.source.locate(("data", "columns", column))
    if columns:
        return spec.source.locate(("data", "columns"), key=True)
    return spec.source.locate(("data", "dataset") if spec.data else ())


def _names(graph: Graph) -> str:
    inputs, outputs = [n for n, _ in graph.inputs], [n for n, _ in graph.outputs]
    return f"inputs: {', '.join(inputs)}; outputs: {', '.join(outputs)}"
