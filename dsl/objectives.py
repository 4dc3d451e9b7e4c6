"""What training minimizes, resolved against the graph: the one description both targets lower.

``train.objective`` names an entry of ``OBJECTIVES`` (``dsl/training.py``);
``resolve_objective`` checks it against the models (located errors, before anything
compiles) and returns an ``Objective``: the loss terms, the models each step updates,
and the **batch columns** it reads. A batch is a dict of named arrays, named by what
they feed: a model input by its value name (``input``, ``ids``,
``discriminator.input``), a target by its output's name (``fc2``, ``digit``). Columns
the data does not hold are *drawn* from the seed (a GAN's noise), by the one data
pipeline, so both targets see the same numbers.

Each target lowers every objective once (``backends/*/objectives.py``, literal
tables, completeness tested); steps return a dict of metric sums named by
``Objective.metric_names``, and the counts some of them are divided by
(``Objective.counts``).

**Extra columns.** A loss may read columns besides its target (ctc's
``input_lengths``: frames per example). ``Term.columns`` names them and
``Objective.extras`` lists them for the data, which supplies them like targets (the
npy and npz files hold them by name, the synthetic dataset and ``dslc check`` draw them).

**Sums and counts.** A step returns per-batch sums; the driver divides each by a count
once per epoch (``backends/metrics.py``). A loss that is a mean over targets
(cross_entropy's targets other than ``ignore_index``: tokens, pixels) makes its term
return that count, ``{label}targets``, and its loss and per-target metrics
(accuracy, perplexity) are divided by it: token-level means over the epoch, what
torchmetrics and Keras report for sequences. Everything else is divided by the
examples. With several terms, ``loss`` is derived after the division: the weighted
sum of the terms' epoch means.

**Split metrics.** A metric that ranks examples against each other (auc) is no sum
of per-batch values: ``Term.split`` names them, the steps leave them out
(``Term.summed``), and the driver computes them once per evaluation from the whole
test split's scores and labels (``backends/split_metrics.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import SpecSchemaError, did_you_mean
from .graph import Graph
from .recipe import check_recipe
from .schema import ChoiceSpec, Spec
from .targets import class_count
from .tensors import TensorType, format_shape
from .training import LOSSES, METRICS, SPARSE_OPTIMIZERS

DEFAULT_GAN_LOSS = ChoiceSpec("bce_with_logits", LOSSES["bce_with_logits"].params())


@dataclass(frozen=True)
class Term:
    """One loss: a model output against a batch column, weighted in the sum."""

    output: str  # the graph's output name (the column of its target, for supervised)
    value: str  # the graph value the output reads
    target: str  # the batch column holding the target
    loss: ChoiceSpec
    weight: float
    metrics: tuple[str, ...]
    label: str  # metric prefix: '' for a lone term, else the output's name in its model ('digit_')
    columns: tuple[tuple[str, str], ...] = ()  # (loss argument, batch column) it reads besides the target

    @property
    def count(self) -> str | None:
        """The sum of counted targets this term's step returns (its loss is a mean over them), or None: examples."""
        return f"{self.label}targets" if LOSSES[self.loss.name].counts == "targets" else None

    @property
    def summed(self) -> tuple[str, ...]:
        """The metrics whose per-batch sums the steps return: all but the ``per: split`` ones (auc)."""
        return tuple(m for m in self.metrics if METRICS[m].per != "split")

    @property
    def split(self) -> tuple[str, ...]:
        """The metrics computed once from the whole test split's scores and labels (auc), not by the steps."""
        return tuple(m for m in self.metrics if METRICS[m].per == "split")


@dataclass(frozen=True)
class Objective:
    """A resolved ``train.objective``; see the module docstring."""

    name: str
    terms: tuple[Term, ...]  # supervised, reconstruction
    roles: dict[str, str]  # role -> model name ('' is a one-model spec's model): {'model': ''} or gan's two
    phases: tuple[str, ...]  # model updated by each step of a batch, in order
    inputs: tuple[str, ...]  # columns the data supplies to model inputs
    targets: tuple[str, ...]  # columns the data supplies as targets
    drawn: tuple[tuple[str, TensorType], ...] = ()  # columns drawn from the seed: standard normal
    extras: tuple[tuple[str, TensorType], ...] = ()  # columns the data supplies to losses (ctc's input_lengths)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The sums a step returns: ``loss`` first (the minimized total), then each term's and its summed metrics."""
        if self.name == "gan":
            return "d_loss", "g_loss"
        names = ["loss"]
        for term in self.terms:
            if term.label:
                names.append(f"{term.label}loss")
            names += [f"{term.label}{metric}" for metric in term.summed]
        return tuple(names)

    @property
    def counts(self) -> tuple[str, ...]:
        """The counts a step returns beside the metric sums: each term's counted targets, where it counts them."""
        return tuple(term.count for term in self.terms if term.count)


def resolve_objective(spec: Spec, graph: Graph) -> Objective:
    """The spec's objective checked against its models; raises a located ``SpecSchemaError``."""
    train = spec.train
    resolve = {"supervised": _supervised, "reconstruction": _reconstruction, "gan": _gan}[train.objective.name]
    objective = resolve(spec, graph)
    _check_optimizers(spec, graph, objective)
    for model in dict.fromkeys(objective.phases):
        _check_trainable(spec, graph.submodel(model), model)
        _check_sparse(spec, graph.submodel(model), model)
    check_recipe(spec, graph, list(dict.fromkeys(objective.phases)))
    return objective


def _where(spec: Spec, *path, key: bool = False):
    return spec.source.locate(("train",) + path, key=key)


def _one_model(spec: Spec, graph: Graph, name: str) -> str:
    if graph.models:
        raise SpecSchemaError(f"objective {name} trains one model; this spec has {len(graph.models)} "
                              f"({', '.join(graph.models)}): use objective gan, or one model",
                              _where(spec, "objective"))
    return ""


def _local(model: str, name: str) -> str:
    return name.removeprefix(model + ".") if model else name


def _supervised(spec: Spec, graph: Graph) -> Objective:
    train = spec.train
    model = _one_model(spec, graph, "supervised")
    outputs = dict(graph.outputs)
    if train.loss is None:
        raise SpecSchemaError("objective supervised needs train.loss (loss: cross_entropy, or one per output: "
                              "{name: loss})", _where(spec, key=True) if spec._source else None)
    for what, given in (("loss", train.loss), ("loss_weights", train.loss_weights), ("metrics", train.metrics)):
        for key in given if isinstance(given, dict) else ():
            if key not in outputs:
                raise SpecSchemaError(f"train.{what} names '{key}', which is not an output"
                                      f"{did_you_mean(key, outputs)}; outputs: {', '.join(outputs)}",
                                      _where(spec, what, key, key=True))
    missing = [o for o in outputs if train.loss_for(o) is None]
    if missing:
        raise SpecSchemaError(f"output '{missing[0]}' has no loss; give train.loss one per output "
                              f"({', '.join(outputs)})", _where(spec, "loss", key=True))
    lone = len(outputs) == 1
    terms = tuple(Term(o, v, o, train.loss_for(o), train.loss_weights.get(o, 1.0), train.metrics_for(o),
                       "" if lone else f"{_local(model, o)}_") for o, v in outputs.items())
    terms = tuple(_with_columns(spec, graph, term, _loss_path(train, term)) for term in terms)
    for term in terms:
        _check_term(spec, graph, term, _loss_path(train, term))
    return Objective("supervised", terms, {"model": model}, (model,), tuple(n for n, _ in graph.inputs),
                     tuple(outputs), extras=_extras(terms))


def _loss_path(train, term: Term) -> tuple:
    return ("loss", term.output) if isinstance(train.loss, dict) else ("loss",)


def _with_columns(spec: Spec, graph: Graph, term: Term, where: tuple) -> Term:
    """The term with the batch columns its loss reads besides the target; each must be a column of its own."""
    column = getattr(term.loss.params, "input_lengths", None)
    if column is None:
        return term
    taken = {name: "a model input" for name, _ in graph.inputs} | {o: "an output's target" for o, _ in graph.outputs}
    if column in taken:
        raise SpecSchemaError(f"{term.loss.name} input_lengths names '{column}', {taken[column]}; it reads one int "
                              f"per example from a column of its own (frame_lengths)",
                              _where(spec, *where, term.loss.name, "input_lengths"))
    return replace(term, columns=(("input_lengths", column),))


def _extras(terms: tuple[Term, ...]) -> tuple[tuple[str, TensorType], ...]:
    """The columns losses read besides their targets: one int64 per example each (lengths)."""
    names = dict.fromkeys(column for term in terms for _, column in term.columns)
    return tuple((name, TensorType((), "int64")) for name in names)


def _reconstruction(spec: Spec, graph: Graph) -> Objective:
    train = spec.train
    model = _one_model(spec, graph, "reconstruction")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise SpecSchemaError(f"objective reconstruction needs a model with one input and one output; this one "
                              f"has {len(graph.inputs)} and {len(graph.outputs)}", _where(spec, "objective"))
    (name, kind), (output, value) = graph.inputs[0], graph.outputs[0]
    loss = train.loss_for(output)
    if loss is None or LOSSES[loss.name].targets != "values":
        raise SpecSchemaError("objective reconstruction compares the output with the input: give train.loss mse "
                              "(or bce_with_logits for inputs in [0, 1])",
                              _where(spec, "loss" if loss else "objective"))
    out = graph.value_type(value)
    if not kind.is_float:
        raise SpecSchemaError(f"objective reconstruction compares the output with the input, so the input must be "
                              f"float, not {kind.dtype}", _where(spec, "objective"))
    if out.shape != kind.shape:
        raise SpecSchemaError(f"objective reconstruction: the output {out} must have the input's shape "
                              f"{format_shape(kind.shape)}", _where(spec, "objective"))
    term = Term(output, value, name, loss, 1.0, train.metrics_for(output), "")
    _check_term(spec, graph, term, ("loss",))
    return Objective("reconstruction", (term,), {"model": model}, (model,), (name,), ())


def _gan(spec: Spec, graph: Graph) -> Objective:
    roles = spec.train.objective.params
    named = {role: getattr(roles, role) for role in ("generator", "discriminator")}
    for role, model in named.items():
        if model not in graph.models:
            path = ("objective", "gan", role) if role in roles.model_fields_set else ("objective",)
            have = f"models: {', '.join(graph.models)}" if graph.models else "it has one model, at the top"
            raise SpecSchemaError(f"objective gan: the {role} '{model}' is not a model of this spec ({have}); "
                                  f"define it under models:", _where(spec, *path))
    if named["generator"] == named["discriminator"]:
        path = ("objective", "gan", "discriminator") if "discriminator" in roles.model_fields_set else ("objective",)
        raise SpecSchemaError(f"objective gan: the generator and the discriminator must be two models; both are "
                              f"'{named['generator']}' (models: {', '.join(graph.models)})", _where(spec, *path))
    g, d = (graph.submodel(named[role]) for role in ("generator", "discriminator"))
    at = spec.source.locate
    for role, sub in (("generator", g), ("discriminator", d)):
        if len(sub.inputs) != 1 or len(sub.outputs) != 1:
            raise SpecSchemaError(f"objective gan: the {role} needs one input and one output; '{named[role]}' "
                                  f"has {len(sub.inputs)} and {len(sub.outputs)}",
                                  at(("models", named[role]), key=True))
    noise, real = g.inputs[0], d.inputs[0]
    fake = g.value_type(g.outputs[0][1])
    if not noise[1].is_float:
        raise SpecSchemaError(f"objective gan: the generator's input is its noise, so it must be float, not "
                              f"{noise[1].dtype}", at(_input_path(spec, named["generator"], noise[0]) + ("dtype",)))
    if fake.shape != real[1].shape:
        raise SpecSchemaError(f"objective gan: the generator outputs {fake} but the discriminator reads "
                              f"{format_shape(real[1].shape)}; they must match", _output_at(spec, g))
    logit = d.value_type(d.outputs[0][1])
    if logit.shape not in ((), (1,)):
        raise SpecSchemaError(f"objective gan: the discriminator must output one logit per example ([N, 1]); it "
                              f"outputs {logit}", _output_at(spec, d))
    return Objective("gan", (), named, (named["discriminator"], named["generator"]), (real[0],), (),
                     drawn=(noise,))


def _input_path(spec: Spec, model: str, name: str) -> tuple:
    """The YAML path of a model input's spec: ``models.M.input`` or ``models.M.inputs.NAME``."""
    local = name.removeprefix(model + ".")
    return ("models", model, "input") if spec.models[model].inputs is None else ("models", model, "inputs", local)


def _output_at(spec: Spec, graph: Graph):
    """Where a model's (only) output is made: its layer, whose arguments decide the output's shape."""
    value = graph.outputs[0][1]
    node = next((n for n in graph.nodes if n.name == value), None)
    return spec.source.locate(node.path, key=True) if node is not None and node.path else None


def _check_term(spec: Spec, graph: Graph, term: Term, where: tuple) -> None:
    """The loss must suit its output: a class axis for cross_entropy, [N, T, C] for ctc; each metric must suit
    the loss."""
    loss, out = term.loss.name, graph.value_type(term.value)
    if LOSSES[loss].targets == "classes" and out.rank < 1:
        raise SpecSchemaError(f"{loss} needs an output with a class axis; {term.output} is {out}",
                              _where(spec, *where))
    if loss == "ctc":
        _check_ctc(spec, term, out, where)
    if "iou" in term.metrics and (LOSSES[loss].targets != "classes" or out.rank < 2) and loss != "bce_with_logits":
        raise SpecSchemaError(f"iou compares predicted and true regions: it needs per-position classes "
                              f"(cross_entropy on an output [N, C, H, W]) or bce_with_logits; {term.output} is {out} "
                              f"under {loss}", _where(spec, "metrics"))
    per_output = isinstance(spec.train.metrics, dict)
    at = _where(spec, *(("metrics", term.output) if per_output else ("metrics",)))
    named = f" (output {term.output!r})" if per_output else ""
    for metric in term.metrics:
        if loss not in METRICS[metric].losses:
            raise SpecSchemaError(f"{metric} needs {METRICS[metric].needs}, not {loss}{named}", at)
    if term.split and out.shape not in ((), (1,)):
        raise SpecSchemaError(f"{term.split[0]} ranks one score per example: it needs one logit each (an output "
                              f"[N] or [N, 1]); {term.output} is {out}", at)


def _check_ctc(spec: Spec, term: Term, out: TensorType, where: tuple) -> None:
    """ctc reads logits [N, T, C], batch first, with the blank one of the C classes and at least one label."""
    if out.rank != 2:
        raise SpecSchemaError(f"ctc takes logits [N, T, C] (batch first: frames, then classes with the blank); "
                              f"{term.output} is {out}", _where(spec, *where))
    blank, classes = term.loss.params.blank, class_count(term.loss, out)
    if classes < 2 or blank >= classes:
        problem = (f"blank {blank} is not one of its {classes} classes" if blank >= classes else
                   "it has one class, the blank, and no label")
        raise SpecSchemaError(f"ctc on {term.output} {out}: {problem}; the last axis holds the blank and the labels",
                              _where(spec, *where, *(("ctc", "blank") if blank >= classes else ())))


def _check_optimizers(spec: Spec, graph: Graph, objective: Objective) -> None:
    """A mapping of optimizers names each trained model exactly."""
    given = spec.train.optimizer
    if not isinstance(given, dict):
        return
    trained = [m for m in dict.fromkeys(objective.phases) if m]
    if not trained:
        raise SpecSchemaError("train.optimizer is a mapping by model, but this spec has one model: give one "
                              "optimizer (optimizer: adam)", _where(spec, "optimizer", key=True))
    for key in given:
        if key not in trained:
            raise SpecSchemaError(f"train.optimizer names '{key}', which is not a trained model"
                                  f"{did_you_mean(key, trained)}; models: {', '.join(trained)}",
                                  _where(spec, "optimizer", key, key=True))
    for model in trained:
        if model not in given:
            raise SpecSchemaError(f"train.optimizer has no entry for model '{model}'; give one per model "
                                  f"({', '.join(trained)}) or one for all", _where(spec, "optimizer", key=True))


def _check_trainable(spec: Spec, graph: Graph, model: str) -> None:
    """Every weight a model trains gets a gradient, and there is one at least. torch steps only the weights the
    loss reaches: one in a layer no output depends on has no gradient, so torch leaves it out of every step
    (no weight decay, no optimizer state: the canonical state has an entry for every weight), where optax would
    decay it; and torch refuses an optimizer with no weights at all."""
    unused = [node for node in graph.unused() if node.num_parameters]
    if unused:
        node = unused[0]
        raise SpecSchemaError(f"{node.name} ({node.op}) has weights, but no output depends on its values, so they "
                              f"would never train (torch gives them no gradient); read it with inputs: [...], make "
                              f"it an output, or remove it", spec.source.locate(node.path, key=True))
    if not graph.num_parameters:
        what = f"model {model}" if model else "the model"
        raise SpecSchemaError(f"{what} has no trainable weights, so the optimizer has nothing to train (torch "
                              f"refuses an empty parameter list); add a layer with weights (linear, conv2d, ...) "
                              f"or leave out train:", _where(spec, *_optimizer_path(spec, model), key=True))


def _check_sparse(spec: Spec, graph: Graph, model: str) -> None:
    """A model's optimizer takes its sparse tables' gradients, and ``sparse_adam`` has a table to be lazy on:
    torch raises on the first mismatch (Adam on a sparse gradient), or trains plain Adam under the other's name."""
    optimizer = spec.train.optimizer_for(model)
    tables = [n for n in graph.nodes if any(w.sparse for w in n.weights.values())]
    if optimizer.name == "sparse_adam" and not tables:
        raise SpecSchemaError(f"optimizer sparse_adam updates the looked-up rows of sparse embedding tables, and "
                              f"{f'model {model}' if model else 'this model'} has none: set sparse: true on an "
                              f"embedding, or use adam", _where(spec, *_optimizer_path(spec, model)))
    problem = _sparse_problem(optimizer)
    if tables and problem:
        node = tables[0]
        raise SpecSchemaError(f"{node.name} has sparse: true, and optimizer {optimizer.name} {problem}; use "
                              f"optimizer sparse_adam (lazy Adam on the looked-up rows, Adam on the rest) or plain "
                              f"sgd, or sparse: false", spec.source.locate(node.path + ("sparse",)))


def _optimizer_path(spec: Spec, model: str) -> tuple[str, ...]:
    return ("optimizer", model) if isinstance(spec.train.optimizer, dict) else ("optimizer",)


def _sparse_problem(optimizer: ChoiceSpec) -> str | None:
    """Why ``optimizer`` cannot take a sparse gradient as torch gives it, or None when it can."""
    if optimizer.name not in SPARSE_OPTIMIZERS:
        return "cannot take its sparse gradient (torch raises)"
    moving = [k for k in ("momentum", "weight_decay") if getattr(optimizer.params, k, 0)]
    return f"with {' and '.join(moving)} cannot take its sparse gradient" if moving else None
