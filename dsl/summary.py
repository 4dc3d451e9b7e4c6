"""The ``dslc summary`` table: the nesting as an indented tree, each layer's op, output shape and parameters.

Sequentials, block instances and repeats are rows of their own, indented by depth,
with the parameters of everything inside them, so a ResNet reads as torchvision
prints it: ``layer2`` (sequential), ``0`` (basic), ``conv1``, ...
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .console import make_console
from .graph import Graph, Group
from .tensors import format_shape


def summary_rows(graph: Graph) -> list[tuple[int, str, str, str, int]]:
    """(depth, name, op or group kind, output shape, parameters) in execution order, groups before their contents."""
    groups = {g.name: g for g in graph.groups}
    rows, opened = [], set()
    for node in graph.nodes:
        parts = node.name.split(".")
        for depth in range(1, len(parts)):
            name = ".".join(parts[:depth])
            if name in groups and name not in opened:
                opened.add(name)
                rows.append((depth - 1, parts[depth - 1], _kind(graph, groups[name]), _last_shape(graph, name),
                             _parameters(graph, name)))
        rows.append((len(parts) - 1, parts[-1], node.op, format_shape(node.output.shape), node.num_parameters))
    return rows


def _kind(graph: Graph, group: Group) -> str:
    """``sequential``, the block's name for an instance, ``basic ×3`` for a repeat."""
    if group.kind == "repeat":
        count = sum(1 for g in graph.groups if g.index is not None and g.name.rsplit(".", 1)[0] == group.name)
        return f"{group.block} ×{count}"
    return group.block or group.kind


def _last_shape(graph: Graph, prefix: str) -> str:
    inside = [n for n in graph.nodes if n.name.startswith(prefix + ".")]
    return format_shape(inside[-1].output.shape)


def _parameters(graph: Graph, prefix: str) -> int:
    return sum(n.num_parameters for n in graph.nodes if n.name.startswith(prefix + "."))


def print_summary(graph: Graph, console: Console | None = None) -> None:
    console = console or make_console()
    inputs = ", ".join(f"{'' if name == 'input' else name + ' '}{format_shape(t.shape)} {t.dtype}{_vocab(t)}"
                       for name, t in graph.inputs)
    table = Table(title=f"{graph.name}: {'input' if len(graph.inputs) == 1 else 'inputs'} {inputs}")
    for column, justify in (("layer", "left"), ("op", "left"), ("output shape", "left"), ("params", "right")):
        table.add_column(column, justify=justify)
    for depth, name, op, shape, count in summary_rows(graph):
        table.add_row("  " * depth + name, op, shape, f"{count:,}")
    table.add_section()
    table.add_row("total", "", "", f"{graph.num_parameters:,}")
    if len(graph.outputs) > 1 or graph.outputs[0][0] != graph.outputs[0][1]:
        table.add_row("outputs", ", ".join(f"{name}: {value}" for name, value in graph.outputs), "", "")
    console.print(table)


def _vocab(kind) -> str:
    """`` vocab 943``, or per field `` vocab [1460, 583, ...]`` (the first five), or nothing."""
    vocab = kind.vocab
    if isinstance(vocab, tuple):
        return f" vocab [{', '.join(map(str, vocab[:5]))}{', ...' if len(vocab) > 5 else ''}]"
    return "" if vocab is None else f" vocab {vocab}"
