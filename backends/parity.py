"""``dslc check``: proof that the torch and JAX lowerings compute the same function.

Both targets start from the same canonical weights and see the same batches. The
check compares evaluation-mode outputs, the loss, every weight's gradient, then K
optimizer steps: each step's losses and the weights and buffers it ends with.
Outputs and losses are compared relative to the reference's scale (max |torch
value|), the measure Keras uses between its own backends.

Gradients and weights are compared in relative L2 norm (‖Δ‖/‖torch‖) instead. In
float64 every quantity is judged at 1e-9: that is the proof. Float32 has
discontinuities no lowering avoids, and its tolerances leave room for them. A ReLU
input within rounding of 0 takes the other branch in one target and drops the
upstream gradient at that position, which then reaches every earlier layer:
resnet20_cifar at batch 32 (524,288 ReLU inputs per layer) has gradients 2e-3 to 6e-3
apart (L2) from one such branch, in whichever target took it, while its outputs agree
to 6e-7 (a ReLU is continuous, its derivative is not). So float32 judges gradients at
1e-2, outputs and losses at 1e-5 (where precision mistakes show: JAX's tanh GELU is
1.8e-4 off), and shows the weights after each step without judging them (see
``_weight_rows``: Adam turns a gradient's rounding noise into a whole lr-sized step).

Each step starts both targets from the same state: before step k, the JAX target
loads torch's weights, buffers and optimizer state (``load_state`` then
``load_optimizer_state``, the canonical conversion ``dslc train --resume`` uses).
Without that, a rounding-level difference at step 1 is amplified by every later
step (at SGD lr 0.1, ResNet-18's weights parted by 1e-9 in float64 after 5 steps),
and the check would measure the optimizer's sensitivity rather than the lowering.
So every step tests one update from an identical state: the gradients, the
optimizer's rule at that step count (Adam's bias correction, momentum buffers), and
BatchNorm's running statistics.

Outputs are compared in evaluation and in training mode, gradients in training mode
(for BatchNorm: through the batch statistics, as training computes them), and the
buffers after each step with the weights (running statistics relative, counters
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
from dsl.targets import class_count, target_shape

from .data.synthetic import ctc_columns, draw_examples, id_high
from .metrics import epoch_metrics
from .precision import check_precision
from .schedules import schedule_tables
from .target import make_target
from .weights import init_weights


@dataclass(frozen=True)
class Tolerances:
    """Largest accepted relative error: outputs and loss at the start, gradients, and after K steps."""

    output: float
    grad: float
    trained: float


# float32 gradients: 1e-2 in relative L2, because a ReLU input within rounding of 0 takes the other branch in one
# target and drops one upstream gradient there, which reaches every earlier layer: resnet20_cifar at batch 32
# measured 2e-3 to 6e-3 on most of its gradients from one such branch, in whichever target took it (its
# outputs agree to 6e-7: a ReLU is continuous, its derivative is not). Outputs and losses stay at 1e-5 and
# catch precision mistakes (JAX's tanh GELU: 1.8e-4); float64 proves the gradients at 1e-9.
TOLERANCES = {
    "float32": Tolerances(output=1e-5, grad=1e-2, trained=1e-4),
    "float64": Tolerances(output=1e-9, grad=1e-9, trained=1e-9),
    "bf16": Tolerances(output=1e-2, grad=5e-2, trained=1e-2),
}
"""bf16 (``--precision bf16``): 2.5 bfloat16 epsilons (2^-8 = 3.9e-3) for outputs, losses and steps, 5e-2 in L2 for
gradients, or ``NOISE_FACTORS['bf16']`` times torch's own bf16 error (torch with autocast against torch without,
from the same weights) where larger. Measured with ``check(..., precision='bf16', steps=3)`` on this CPU: torch's
own bf16 error is 4e-3 to 5e-3 on outputs (digits_mlp, digits_cnn), up to 1e-1 on single gradients (L2), 1e-5
to 1e-4 on mean losses, which average the rounding away; the targets differ by 0.2x to 8.9x that error (the
largest on a bias gradient whose own error is a tenth of the others'). A target left in float32 by mistake
differs from torch's bf16 by exactly torch's own error, which these tolerances admit: ``tests/test_precision.py``
checks separately that each target's bf16 outputs are not its float32 ones."""


NOISE_FACTOR = 10.0
"""A float32 row passes while the targets differ by at most this many times torch's own float32 error (its
distance to the same computation in float64), where that is above the row's tolerance: agreement to within an
order of magnitude of what float32 can tell apart on this model. Measured ratios of the zoo are 1.0 (only torch
takes the other branch at a ReLU input within rounding of 0: resnet20_cifar) to 4.6 (Adam's first step on
dcgan_mnist's generator, where gradients near 0 turn rounding into whole lr-sized steps in both targets);
bf16 or TF32 arithmetic in one target, the precision mistakes a float32 check exists for, measure 1e3 and more."""


NOISE_FACTORS = {"float32": NOISE_FACTOR, "bf16": 4.0}
"""bf16 rows pass within 4x torch's own bf16 error where that is above the row's tolerance (see ``TOLERANCES``)."""
REFERENCE = "reference"
"""The key of the noise reference among a check's targets: torch float64 for a float32 check, torch float32 (no
autocast) for a bf16 one."""


ZERO = 1e-6
"""A gradient or weight whose torch norm is below this fraction of the whole model's (all gradients, or the loss
where larger; all weights) is judged relative to that floor, not to itself: it is zero in exact arithmetic, and
both targets hold rounding noise of the whole there, which float64's 1e-9 can only judge at this floor or above
(eps 2.2e-16 / 1e-9). BERT's key biases (a softmax ignores a shift shared by every key of a query): float64
gradients 7e-21, apart by 91% of themselves, 1.6e-14 of the floor. The loss stands in for the gradients' scale
where every gradient is such noise (a bias added to every logit before cross_entropy, the model's only weight).

A weight whose gradient is below the floor takes steps driven by that noise, different in each target: Adam
scales it by lr/eps (1e5 at lr 1e-3), and the fuzz tests (tests/test_fuzz_specs.py) met steps of 1e-11, 7e-6 of
the weights' floor. Its gradient rows already show it zero in both targets, so its rows after the steps are
shown, not judged (nor counted in the all-weights row); BERT's key biases moved by lr·g/eps = 1e-16.
"""


@dataclass(frozen=True)
class Row:
    """One compared quantity; ``relative`` is max|Δ|/max|ref|, or ‖Δ‖/‖ref‖ when ``norm`` is 'l2'.

    ``noise`` (float32 checks) is torch's own float32 error in the same measure: torch
    float32 against torch float64 from the same values. ``tolerance`` is the larger of
    the dtype's and ``NOISE_FACTOR`` times that noise.
    """

    quantity: str
    max_abs: float
    scale: float
    relative: float
    tolerance: float
    norm: str = "max"
    noise: float | None = None
    judged: bool = True  # False: shown to locate a difference, not counted (one weight after float32 steps)

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
    precision: str = "float32"

    @property
    def judged_as(self) -> str:
        """The tolerances' key: bf16 for mixed precision, else the dtype."""
        return "bf16" if self.precision == "bf16" else self.dtype

    @property
    def failures(self) -> list[Row]:
        """Judged rows beyond their tolerance."""
        return [r for r in self.rows if r.judged and not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def add(self, quantity: str, values: dict, tolerance: float, norm: str = "max", floor: float = 0.0) -> Row:
        row = measure(quantity, values, tolerance, norm, floor, NOISE_FACTORS.get(self.judged_as, NOISE_FACTOR))
        self.rows.append(row)
        return row

    def worst(self, prefix: str) -> float:
        return max((r.relative for r in self.rows if r.quantity.startswith(prefix)), default=0.0)


def measure(quantity: str, values: dict, tolerance: float, norm: str = "max", floor: float = 0.0,
            factor: float = NOISE_FACTOR) -> Row:
    """Compares ``values['jax']`` with ``values['torch']``, given ``values[REFERENCE]`` (torch in float64 for
    float32 checks, torch float32 for bf16 ones) to measure torch's own noise against; ``floor``: see ``compare``."""
    row = compare(quantity, values["jax"], values["torch"], tolerance, norm, floor)
    if REFERENCE not in values:
        return row
    noise = compare(quantity, values["torch"], values[REFERENCE], tolerance, norm, floor).relative
    return replace(row, noise=noise, tolerance=max(tolerance, factor * noise))


def compare(quantity: str, value, reference, tolerance: float, norm: str = "max", floor: float = 0.0) -> Row:
    """One row; the error is relative to the reference's size or ``floor`` (``ZERO`` times the whole model's),
    whichever is larger."""
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
    size = max(size, floor)
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

    Floats are standard normal (in ``dtype``), integers ids in their declared dtype,
    across their declared ``vocab`` (else 0..ID_RANGE-1) and within every table that
    reads them (``OpDef.id_bound``: an embedding's rows, per field for
    ``field_embedding``; torch raises on other ids, XLA clamps them), bools fair coin
    flips (masks).
    """
    xs = tuple(draw_examples(kind, batch_size, rng, id_high(graph, name, ID_RANGE), dtype, graph.mask_of(name))
               for name, kind in graph.inputs)
    return xs[0] if len(xs) == 1 else xs


def make_batch(graph: Graph, objective: Objective, batch_size: int, dtype: str, rng: np.random.Generator
               ) -> dict[str, np.ndarray]:
    """One batch of the objective's columns: inputs as ``make_inputs`` draws them, targets that fit each
    loss (class ids, label sequences with their frame counts, 0/1 or real values), drawn columns standard normal."""
    types = {**graph.input_types, **dict(objective.drawn)}
    batch = {name: draw_examples(types[name], batch_size, rng, id_high(graph, name, ID_RANGE), dtype,
                                 graph.mask_of(name))
             for name in objective.inputs + tuple(n for n, _ in objective.drawn)}
    for term in objective.terms if objective.targets else ():
        kind = graph.value_type(term.value)
        out = kind.shape
        if LOSSES[term.loss.name].targets == "classes":
            shape = (batch_size, *target_shape(term.loss, kind))
            batch[term.target] = rng.integers(0, class_count(term.loss, kind), shape).astype(np.int64)
        elif LOSSES[term.loss.name].targets == "labels":
            batch.update(ctc_columns(term, kind, batch_size, rng))
        elif term.loss.name == "bce_with_logits":
            batch[term.target] = rng.integers(0, 2, (batch_size, *out)).astype(dtype)
        else:
            batch[term.target] = rng.standard_normal((batch_size, *out)).astype(dtype)
    return batch


def check(spec: Spec, graph: Graph, *, dtype: str = "float32", steps: int = 5, batch_size: int | None = None,
          seed: int = 0, disabled_passes: tuple[str, ...] = (), precision: str | None = None,
          device: str = "auto") -> Report:
    """Runs both targets side by side (and torch as the noise reference: in float64 for float32, without
    autocast for bf16); see the module docstring. ``precision``: None is the spec's ``train.precision``."""
    recipe = spec.train
    precision = check_precision(precision or (recipe.precision if recipe else "float32"), dtype)
    graph_, notes = deterministic(graph)
    objective = resolve_objective(spec, graph) if recipe else None
    batch_size = batch_size or (recipe.batch_size if recipe else 16)
    report = Report(dtype, steps if recipe else 0, batch_size, notes=notes, precision=precision)
    tol = TOLERANCES[report.judged_as]
    schedules = schedule_tables(spec, recipe, objective.phases, report.steps, 1) if recipe else {}
    targets = {k: make_target(name, graph_, recipe, seed=seed, dtype=d, precision=p, device=device,
                              disabled_passes=disabled_passes, full_precision=True, objective=objective,
                              schedules=schedules)
               for k, (name, d, p) in _kinds(dtype, precision).items()}
    if any(t.device_name.startswith("cuda") for t in targets.values()):
        report.notes.append(f"on {targets['torch'].device_name}: TF32 off in torch (matmul and cuDNN), JAX matmul "
                            "precision 'highest', so float32 is float32")
    state = init_weights(graph, seed, dtype)
    for target in targets.values():
        target.load_state(state)
    rng = np.random.default_rng(seed)
    x = make_inputs(graph, batch_size, dtype, rng)

    if not _add_outputs(report, "", _forward(targets, x), tol.output):
        report.first_divergence = first_divergence(graph_, recipe, state, x, dtype, disabled_passes, tol.output,
                                                   precision, device)
    _add_outputs(report, " (training mode)", _forward(targets, x, train=True), tol.output)
    if recipe:
        batch, noise = make_batch(graph, objective, batch_size, dtype, rng), set()
        for phase, (model, _) in enumerate(targets["torch"].phases):
            name = f"phase {phase + 1} ({model}) " if len(targets["torch"].phases) > 1 else ""
            results = {k: t.loss_and_grads(batch, phase) for k, t in targets.items()}
            report.add(f"{name}loss", {k: loss for k, (loss, _) in results.items()}, tol.output)
            loss, grads = results["torch"]
            floor = ZERO * max(_norm(grads.values()), abs(float(loss)))
            for key in grads:
                report.add(f"{name}grad {key}", {k: grads[key] for k, (_, grads) in results.items()}, tol.grad,
                           norm="l2", floor=floor)
            noise |= {key for key, grad in grads.items() if _norm([grad]) < floor}
        _compare_training(report, targets, graph, objective, rng, tol, noise)
        _add_schedules(report, targets, schedules, tol.output)
        _add_outputs(report, "", _forward(targets, x), tol.trained, prefix=f"step {report.steps} ")
    return report


def _kinds(dtype: str, precision: str) -> dict[str, tuple[str, str, str]]:
    """The check's targets by key: (target, dtype, precision); the noise reference is torch one step more exact."""
    kinds = {"torch": ("torch", dtype, precision), "jax": ("jax", dtype, precision)}
    if precision == "bf16":
        return kinds | {REFERENCE: ("torch", dtype, "float32")}
    return kinds | ({REFERENCE: ("torch", "float64", "float32")} if dtype == "float32" else {})


def _forward(targets: dict, x, train: bool = False) -> dict:
    return {k: t.forward(x, train=train)[0] for k, t in targets.items()}


def _compare_training(report: Report, targets: dict, graph: Graph, objective: Objective, rng,
                      tol: Tolerances, noise: set[str] = frozenset()) -> None:
    """K steps on every target (every phase of each), each from torch's state of the step before; compares
    each step's losses, and the weights after it (one row per weight: its worst step; the weights in ``noise``,
    whose gradients are rounding noise, shown and not judged: see ``ZERO``)."""
    batches = [make_batch(graph, objective, report.batch_size, report.dtype, rng) for _ in range(report.steps)]
    columns = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    index = np.arange(report.steps * report.batch_size, dtype=np.int32).reshape(report.steps, report.batch_size)
    data = {k: t.put(columns) for k, t in targets.items()}  # steps compile on first use: no ahead-of-time
    # compile, whose trial of JAX's multi-step loop costs more than the K single steps (gru_classifier: 6.5 s)
    worst: dict[str, Row] = {}
    for step, rows in enumerate(index, start=1):
        if step > 1:
            for k in targets.keys() - {"torch"}:
                _sync(targets[k], targets["torch"])
        sums = {k: epoch_metrics(objective, t.train_steps(data[k], [rows]), report.batch_size)
                for k, t in targets.items()}
        for metric in (m for m in objective.metric_names if m.endswith("loss")):
            report.add(f"step {step} {metric}", {k: s[metric] for k, s in sums.items()}, tol.trained)
        states = {k: t.export_state() for k, t in targets.items()}
        for key, row in _weight_rows(f"step {step}", graph, states, tol.trained, report.dtype, noise):
            if key not in worst or _excess(row) >= _excess(worst[key]):  # ties: the later step
                worst[key] = row
    report.rows.extend(worst.values())


def _add_schedules(report: Report, targets: dict, schedules: dict, tolerance: float) -> None:
    """A row per scheduled model for the lr its K steps used (and one for one_cycle's momentum), as each target
    reports it (``Target.hyperparameters``). The check counts each step as an epoch, so a per-epoch schedule
    changes within its K steps; one_cycle's and cosine's run-length defaults are K."""
    if schedules:
        report.notes.append("schedules: each check step counts as an epoch; one_cycle's and cosine's defaults "
                            f"span the {report.steps} steps")
    values = {k: t.hyperparameters(range(report.steps)) for k, t in targets.items()}
    for model in schedules:
        for name in values["torch"][model]:
            label = f"{'learning rate' if name == 'lr' else name} ({model + ', ' if model else ''}{report.steps} steps)"
            report.add(label, {k: v[model][name] for k, v in values.items()}, tolerance)


def _weight_rows(prefix: str, graph: Graph, states: dict, tolerance: float, dtype: str,
                 noise: set[str] = frozenset()) -> list[tuple[str, Row]]:
    """(what, row): all float weights and buffers as one vector, then each one (relative L2), then the counters
    (exactly); ``what`` names the row without the step, which ``prefix`` adds to its quantity.

    In float32 the weights are shown, not judged; the step's update is judged by the
    losses of every step and the outputs after the last, and float64 judges each weight
    at 1e-9. Adam's first step moves a weight by lr·g/(|g| + eps), ±lr wherever |g| is
    far above eps, so a gradient that is float32 noise around zero moves its weight by
    ±lr in each target, independently: dcgan_mnist (weights N(0, 0.02)) had one such
    weight, 2·lr = 4e-4 apart, 4e-4 of all its weights' norm. A ReLU input within
    rounding of 0 does the same to a few entries of one gradient, past 1e-4 of a
    weight whose norm is small (ResNet-18: 1.4e-4 on BatchNorm biases a few steps
    from 0, where torch's own float32 noise is 6e-7).
    """
    spec = graph.state_dict_spec()
    floats = [key for key, w in spec.items() if w.dtype == FLOAT]
    kept = [key for key in floats if key not in noise]
    values = {key: {k: s[key] for k, s in states.items()} for key in spec}
    shown = list(floats)
    if kept:
        every = f"weights (all {len(kept)}, as one vector)"
        values[every] = {k: np.concatenate([np.ravel(s[key]) for key in kept]) for k, s in states.items()}
        shown.insert(0, every)
    floor = ZERO * _norm([states["torch"][key] for key in floats])
    rows = [(what, replace(measure(f"{prefix} {what}", values[what], tolerance, "l2", floor),
                           judged=dtype != "float32" and what not in noise)) for what in shown]
    return rows + [(key, measure(f"{prefix} {key}", values[key], 0.0)) for key, w in spec.items() if w.dtype != FLOAT]


def _norm(arrays) -> float:
    """L2 norm of several arrays taken as one vector."""
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(a, np.float64))) for a in arrays)))


def _excess(row: Row) -> float:
    """How far past its tolerance a row is (below 1: within it); counters have tolerance 0."""
    return row.relative / row.tolerance if row.tolerance else (np.inf if row.relative else 0.0)


def _sync(target, reference) -> None:
    """``target`` continues from ``reference``'s weights, buffers and optimizer state (canonical form)."""
    target.load_state(reference.export_state())
    target.load_optimizer_state(reference.export_optimizer_state())


def _add_outputs(report: Report, suffix: str, outs: dict, tolerance: float, prefix: str = "") -> bool:
    """One row per model output (a dict of several, or one array); True when all agree."""
    rows = [report.add(f"{prefix}{name}{suffix}", {k: out[key] if key else out for k, out in outs.items()},
                       tolerance) for name, key in _output_rows(outs["torch"])]
    return all(r.ok for r in rows)


def _output_rows(out) -> list[tuple[str, str | None]]:
    """(row name, output key): 'output' for one output, 'output NAME' per output of several."""
    return [(f"output {k}", k) for k in out] if isinstance(out, dict) else [("output", None)]


def print_report(report: Report, console=None) -> None:
    from rich.table import Table

    from dsl.console import make_console

    console = console or make_console()
    what = "bf16 mixed precision (float32 weights)" if report.precision == "bf16" else report.dtype
    table = Table(title=f"dslc check: jax vs torch, {what}, batch {report.batch_size}, {report.steps} steps")
    noise = report.dtype == "float32"
    noise_name = "bf16 noise" if report.precision == "bf16" else "f32 noise"
    table.add_column("quantity", overflow="fold", ratio=1)  # long names wrap; the numbers never do
    for column in ("max |Δ|", "relative", "norm", *((noise_name,) if noise else ()), "tolerance", ""):
        table.add_column(column, justify="left" if column == "norm" else "right", no_wrap=True)
    for r in report.rows:
        table.add_row(r.quantity, f"{r.max_abs:.1e}", f"{r.relative:.1e}", r.norm,
                      *((f"{r.noise:.1e}",) if noise else ()), f"{r.tolerance:.0e}", _verdict(r))
    console.print(table)
    tol, kind = TOLERANCES[report.judged_as], report.judged_as
    console.print(f"tolerances ({kind}): outputs and loss {tol.output:.0e}, gradients {tol.grad:.0e}, "
                  f"steps {tol.trained:.0e}; relative to max |torch value| (norm max) or ‖torch‖ (l2)"
                  + (f", or {NOISE_FACTORS[kind]:g}x torch's own {kind} noise ({noise_name}: torch {kind} vs "
                     f"{'float32 without autocast' if kind == 'bf16' else 'float64'}) where larger"
                     if noise else ""))
    for note in report.notes:
        console.print(f"note: {note}")
    if report.first_divergence:
        console.print(f"[red]first diverging layer:[/red] {report.first_divergence}")
    if any(not r.judged for r in report.rows):
        console.print(f"shown: the weights after {kind} steps, to locate a difference; the steps are judged by "
                      "their losses and the outputs after the last, the weights one by one in float64 "
                      "(README: what dslc check measures)")
    console.print("[green]PASS[/green]: the two models agree" if report.ok else
                  f"[red]FAIL[/red]: {len(report.failures)} of {sum(r.judged for r in report.rows)} quantities "
                  "differ beyond tolerance")


def _verdict(row: Row) -> str:
    if not row.judged:
        return "[dim]shown[/dim]" if row.ok else "[yellow]shown[/yellow]"
    return "ok" if row.ok else "[red]FAIL[/red]"


def first_divergence(graph: Graph, recipe, state, x: np.ndarray, dtype: str, disabled_passes, tolerance: float,
                     precision: str = "float32", device: str = "auto"):
    """The first node (in execution order) whose outputs differ beyond tolerance.

    Both models are rebuilt with the passes of both targets, so the graph has the
    same structure on each side (a rewrite such as ``pool_before_activation`` changes
    what a node name holds) while each backend still lowers its own hints.
    """
    names = sorted(set(passes_for("torch", disabled_passes)) | set(passes_for("jax", disabled_passes)))
    torch_t, jax_t = (make_target(name, graph, recipe, dtype=dtype, passes=names, full_precision=True,
                                  precision=precision, device=device)
                      for name in ("torch", "jax"))
    for target in (torch_t, jax_t):
        target.load_state(state)
    (_, inner_j), (_, inner_t) = jax_t.forward(x, capture=True), torch_t.forward(x, capture=True)
    for node in jax_t.graph.nodes:
        row = compare(node.name, inner_j[node.name], inner_t[node.name], tolerance)
        if not row.ok:
            return f"{node.name} ({node.op}): relative error {row.relative:.2e} > {tolerance:.0e}"
    return None
