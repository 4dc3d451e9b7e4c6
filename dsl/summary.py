"""The ``dslc summary`` table: each layer's name, op, output shape and parameter count."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .console import make_console
from .graph import Graph
from .tensors import format_shape


def summary_rows(graph: Graph) -> list[tuple[str, str, str, int]]:
    return [(n.name, n.op, format_shape(n.output.shape), n.num_parameters) for n in graph.nodes]


def print_summary(graph: Graph, console: Console | None = None) -> None:
    console = console or make_console()
    (name, input_type), = graph.inputs
    table = Table(title=f"{graph.name}: input {format_shape(input_type.shape)} {input_type.dtype}")
    for column, justify in (("layer", "left"), ("op", "left"), ("output shape", "left"), ("params", "right")):
        table.add_column(column, justify=justify)
    for layer, op, shape, count in summary_rows(graph):
        table.add_row(layer, op, shape, f"{count:,}")
    table.add_section()
    table.add_row("total", "", "", f"{graph.num_parameters:,}")
    console.print(table)
