"""``dslc check``: proof that the torch and JAX lowerings compute the same function.

Both targets start from the same canonical weights and see the same batches. The
check compares evaluation-mode outputs, the loss, every weight's gradient, then the
losses of K optimizer steps and the weights they end with. Errors are relative to
the reference's scale (max |torch value|), the measure Keras uses between its own
backends. Weights after training are compared in relative L2 norm instead: Adam
divides each gradient by its own magnitude, so where a gradient is float32 noise
around zero its sign can differ between frameworks and move that one weight by
2·lr, while the model as a whole (its losses, its outputs) still agrees.

Outputs are compared in evaluation and in training mode, gradients in training mode
(for BatchNorm: through the batch statistics, as training computes them), and the
buffers after K steps with the weights (running statistics relative, counters
exactly). Stochastic ops run with their catalog's ``deterministic`` arguments
(dropout: p = 0): the two frameworks' random streams cannot agree, and
docs/PARITY.md §8 checks dropout's formula separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from dsl import LOSSES, OPS, Graph, Spec
from dsl.objectives import Objective, resolve_objective
from dsl.ops import FLOAT
from dsl.passes import passes_for

from .data.synthetic import draw_examples, id_high
from .target import make_target
from .weights import init_weights


@dataclass(frozen=True)
class Tolerances:
    """Largest accepted relative error: outputs and loss at the start, gradients, and after K steps."""

    output: float
    grad: float
    trained: float


TOLERANCES = {
    "float32": Tolerances(output=1e-5, grad=1e-4, trained=1e-4),
    "float64": Tolerances(output=1e-9, grad=1e-9, trained=1e-9),
}


@dataclass(frozen=True)
class Row:
    """One compared quantity; ``relative`` is max|Δ|/max|ref|, or ‖Δ‖/‖ref‖ when ``norm`` is 'l2'."""

    quantity: str
    max_abs: float
    scale: float
    relative: float
    tolerance: float
    norm: str = "max"

    @property
    def ok(self) -> bool:
        return self.relative <= self.tolerance


@dataclass
class Report:
    dtype: str
    steps: int
    batch_size: int
    rows: list[Row] = field(default_factory=list)
    first_divergence: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def add(self, quantity: str, jax_value, torch_value, tolerance: float, norm: str = "max") -> Row:
        row = compare(quantity, jax_value, torch_value, tolerance, norm)
        self.rows.append(row)
        return row

    def worst(self, prefix: str) -> float:
        return max((r.relative for r in self.rows if r.quantity.startswith(prefix)), default=0.0)


def compare(quantity: str, value, reference, tolerance: float, norm: str = "max") -> Row:
    value, reference = np.asarray(value, np.float64), np.asarray(reference, np.float64)
    if value.shape != reference.shape:
        return Row(f"{quantity} (shape {value.shape} vs {reference.shape})", np.inf, 0.0, np.inf, tolerance)
    diff = value - reference
    max_abs = float(np.max(np.abs(diff), initial=0.0))
    scale = float(np.max(np.abs(reference), initial=0.0))
    if norm == "l2":
        error, size = float(np.linalg.norm(diff)), float(np.linalg.norm(reference))
    else:
        error, size = max_abs, scale
    return Row(quantity, max_abs, scale, error / size if size > 0 else error, tolerance, norm)


def deterministic(graph: Graph) -> tuple[Graph, list[str]]:
    """The graph with every stochastic op given its ``deterministic`` arguments, and a note per changed layer."""
    nodes, notes = [], []
    for node in graph.nodes:
        if node.is_random:
            notes.append(f"{node.name} ({node.op}) runs without randomness in both models: their random streams "
                         "cannot match")
            node = replace(node, params=OPS[node.op].deterministic(node.params))
        nodes.append(node)
    return replace(graph, nodes=tuple(nodes)), notes


ID_RANGE = 10
"""Integer inputs are drawn from 0..ID_RANGE-1, or fewer where a layer reading them has a smaller table."""


def make_inputs(graph: Graph, batch_size: int, dtype: str, rng: np.random.Generator):
    """One batch for the model's inputs: an array for one input, a tuple in declared order for several.

    Floats are standard normal (in ``dtype``), integers ids in their declared dtype and
    within every table that reads them (``OpDef.id_bound``: an embedding's rows; torch
    raises on other ids, XLA clamps them), bools fair coin flips (masks).
    """
    xs = tuple(draw_examples(kind, batch_size, rng, id_high(graph, name, ID_RANGE), dtype)
               for name, kind in graph.inputs)
    return xs[0] if len(xs) == 1 else xs


def make_batch(graph: Graph, objective: Objective, batch_size: int, dtype: str, rng: np.random.Generator
               ) -> dict[str, np.ndarray]:
    """One batch of the objective's columns: inputs as ``make_inputs`` draws them, targets that fit each
    loss (class ids, 0/1 or real values), drawn columns standard normal."""
    types = {**graph.input_types, **dict(objective.drawn)}
    batch = {name: draw_examples(types[name], batch_size, rng, id_high(graph, name, ID_RANGE), dtype)
             for name in objective.inputs + tuple(n for n, _ in objective.drawn)}
    for term in objective.terms if objective.targets else ():
        out = graph.value_type(term.value).shape
        if LOSSES[term.loss.name].targets == "classes":
            batch[term.target] = rng.integers(0, out[0], (batch_size, *out[1:])).astype(np.int64)
        elif term.loss.name == "bce_with_logits":
            batch[term.target] = rng.integers(0, 2, (batch_size, *out)).astype(dtype)
        else:
            batch[term.target] = rng.standard_normal((batch_size, *out)).astype(dtype)
    return batch


def check(spec: Spec, graph: Graph, *, dtype: str = "float32", steps: int = 5, batch_size: int | None = None,
          seed: int = 0, disabled_passes: tuple[str, ...] = ()) -> Report:
    """Runs both targets side by side; see the module docstring."""
    tol = TOLERANCES[dtype]
    graph_, notes = deterministic(graph)
    recipe = spec.train
    objective = resolve_objective(spec, graph) if recipe else None
    batch_size = batch_size or (recipe.batch_size if recipe else 16)
    report = Report(dtype, steps if recipe else 0, batch_size, notes=notes)
    torch_t, jax_t = (make_target(name, graph_, recipe, seed=seed, dtype=dtype, disabled_passes=disabled_passes,
                                  full_precision=True, objective=objective) for name in ("torch", "jax"))
    state = init_weights(graph, seed, dtype)
    for target in (torch_t, jax_t):
        target.load_state(state)
    rng = np.random.default_rng(seed)
    x = make_inputs(graph, batch_size, dtype, rng)

    (out_j, _), (out_t, _) = jax_t.forward(x), torch_t.forward(x)
    if not _add_outputs(report, "", out_j, out_t, tol.output):
        report.first_divergence = first_divergence(graph_, recipe, state, x, dtype, disabled_passes, tol.output)
    (out_j, _), (out_t, _) = jax_t.forward(x, train=True), torch_t.forward(x, train=True)
    _add_outputs(report, " (training mode)", out_j, out_t, tol.output)
    if recipe:
        batch = make_batch(graph, objective, batch_size, dtype, rng)
        for phase, (model, _) in enumerate(torch_t.phases):
            name = f"phase {phase + 1} ({model}) " if len(torch_t.phases) > 1 else ""
            (loss_j, grads_j), (loss_t, grads_t) = (t.loss_and_grads(batch, phase) for t in (jax_t, torch_t))
            report.add(f"{name}loss", loss_j, loss_t, tol.output)
            for key in grads_t:
                report.add(f"{name}grad {key}", grads_j[key], grads_t[key], tol.grad)
        _compare_training(report, torch_t, jax_t, graph, objective, rng, tol)
        (out_j, _), (out_t, _) = jax_t.forward(x), torch_t.forward(x)
        _add_outputs(report, "", out_j, out_t, tol.trained, prefix=f"step {report.steps} ")
    return report


def _compare_training(report: Report, torch_t, jax_t, graph: Graph, objective: Objective, rng,
                      tol: Tolerances) -> None:
    """K steps on both targets (every phase of each), comparing each step's metrics, then the weights."""
    batches = [make_batch(graph, objective, report.batch_size, report.dtype, rng) for _ in range(report.steps)]
    columns = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    index = np.arange(report.steps * report.batch_size, dtype=np.int32).reshape(report.steps, report.batch_size)
    data = {t.name: t.put(columns) for t in (torch_t, jax_t)}
    for t in (torch_t, jax_t):
        t.compile(data[t.name], data[t.name], [report.batch_size], report.batch_size)
    for k, rows in enumerate(index, start=1):
        sums_j, sums_t = (t.train_steps(data[t.name], [rows]) for t in (jax_t, torch_t))
        for metric in objective.metric_names:
            if metric.endswith("loss"):
                report.add(f"step {k} {metric}", float(sums_j[metric]) / report.batch_size,
                           float(sums_t[metric]) / report.batch_size, tol.trained)
    final_j, final_t = jax_t.export_state(), torch_t.export_state()
    for key, weight in graph.state_dict_spec().items():
        if weight.dtype == FLOAT:
            report.add(f"step {report.steps} {key}", final_j[key], final_t[key], tol.trained, norm="l2")
        else:  # counters (num_batches_tracked) agree exactly
            report.add(f"step {report.steps} {key}", final_j[key], final_t[key], 0.0)


def _add_outputs(report: Report, suffix: str, out_j, out_t, tolerance: float, prefix: str = "") -> bool:
    """One row per model output (a dict of several, or one array); True when all agree."""
    rows = [report.add(f"{prefix}{name}{suffix}", out_j[key] if key else out_j, out_t[key] if key else out_t,
                       tolerance) for name, key in _output_rows(out_t)]
    return all(r.ok for r in rows)


def _output_rows(out) -> list[tuple[str, str | None]]:
    """(row name, output key): 'output' for one output, 'output NAME' per output of several."""
    return [(f"output {k}", k) for k in out] if isinstance(out, dict) else [("output", None)]


def print_report(report: Report, console=None) -> None:
    from rich.table import Table

    from dsl.console import make_console

    console = console or make_console()
    table = Table(title=f"dslc check: jax vs torch, {report.dtype}, batch {report.batch_size}, {report.steps} steps")
    for column in ("quantity", "max |Δ|", "scale", "relative error", "norm", "tolerance", ""):
        table.add_column(column, justify="left" if column in ("quantity", "norm") else "right", no_wrap=True)
    for r in report.rows:
        table.add_row(r.quantity, f"{r.max_abs:.2e}", f"{r.scale:.2e}", f"{r.relative:.2e}", r.norm,
                      f"{r.tolerance:.0e}", "ok" if r.ok else "[red]FAIL[/red]")
    console.print(table)
    tol = TOLERANCES[report.dtype]
    console.print(f"tolerances ({report.dtype}): outputs and loss {tol.output:.0e}, gradients {tol.grad:.0e}, "
                  f"after training {tol.trained:.0e}; relative to max |torch value| (norm max) or ‖torch‖ (l2)")
    for note in report.notes:
        console.print(f"note: {note}")
    if report.first_divergence:
        console.print(f"[red]first diverging layer:[/red] {report.first_divergence}")
    failed = sum(not r.ok for r in report.rows)
    console.print("[green]PASS[/green]: the two models agree" if report.ok else
                  f"[red]FAIL[/red]: {failed} of {len(report.rows)} quantities differ beyond tolerance")


def first_divergence(graph: Graph, recipe, state, x: np.ndarray, dtype: str, disabled_passes, tolerance: float):
    """The first node (in execution order) whose outputs differ beyond tolerance.

    Both models are rebuilt with the passes of both targets, so the graph has the
    same structure on each side (a rewrite such as ``pool_before_activation`` changes
    what a node name holds) while each backend still lowers its own hints.
    """
    names = sorted(set(passes_for("torch", disabled_passes)) | set(passes_for("jax", disabled_passes)))
    torch_t, jax_t = (make_target(name, graph, recipe, dtype=dtype, passes=names, full_precision=True)
                      for name in ("torch", "jax"))
    for target in (torch_t, jax_t):
        target.load_state(state)
    (_, inner_j), (_, inner_t) = jax_t.forward(x, capture=True), torch_t.forward(x, capture=True)
    for node in jax_t.graph.nodes:
        row = compare(node.name, inner_j[node.name], inner_t[node.name], tolerance)
        if not row.ok:
            return f"{node.name} ({node.op}): relative error {row.relative:.2e} > {tolerance:.0e}"
    return None
