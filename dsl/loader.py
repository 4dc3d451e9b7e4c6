"""From a YAML file to a validated ``Spec`` and its ``Graph``, with located errors."""

from __future__ import annotations

import typing
import warnings
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ValidationError

from .build import build_graph
from .choice import describe_error, format_path
from .columns import check_columns
from .decoding import check_decode
from .errors import Location, SpecSchemaError, SpecWarning, did_you_mean
from .graph import Graph, Node
from .monitor import check_early_stopping, check_validation
from .objectives import Term, resolve_objective
from .schema import Spec
from .source import SourceMap, load_yaml, parse_yaml
from .targets import class_count, target_shape
from .tensors import TensorType, format_shape
from .training import DATASETS, LOSSES, DatasetDef

SHAPE_ONLY = frozenset({"flatten", "identity", "dropout"})
"""Ops that pass values on unchanged: the loss reads what the layer before them computed."""

REDUNDANT_BEFORE_LOSS = MappingProxyType({
    ("cross_entropy", "softmax"): (
        "which applies log_softmax itself (as torch.nn.CrossEntropyLoss and Keras's from_logits=True do); a softmax "
        "before it squashes the gradients and trains far worse; remove this layer and apply softmax at prediction "
        "time"),
    ("cross_entropy", "log_softmax"): (
        "which applies log_softmax itself; log_softmax is idempotent, so this layer is redundant and results are "
        "unchanged; remove it"),
    ("bce_with_logits", "sigmoid"): (
        "which applies the sigmoid itself (as torch.nn.BCEWithLogitsLoss does); a sigmoid before it squashes the "
        "gradients and trains far worse; remove this layer and apply sigmoid at prediction time"),
})
"""(loss, op of the layer that feeds it) -> why that layer is a mistake and the fix."""


def load_spec(path: str | Path) -> Spec:
    """Reads and validates a spec file (schema only; see :func:`load` for shapes)."""
    data, source = load_yaml(path)
    return validate_spec(data, source)


def load(path: str | Path) -> tuple[Spec, Graph]:
    """Reads a spec file and infers its graph.

    Raises:
        SpecError: with ``file:line:col`` of the first problem.

    Example:
        >>> spec, graph = load("specs/mnist_cnn.yaml")
        >>> graph.num_parameters
        693962
    """
    return _compile(*load_yaml(path))


def loads(text: str, file: str = "<string>") -> tuple[Spec, Graph]:
    """:func:`load` for spec text held in memory."""
    return _compile(*parse_yaml(text, file))


def _compile(data: object, source: SourceMap) -> tuple[Spec, Graph]:
    spec = validate_spec(data, source)
    graph = build_graph(spec)
    check_training(spec, graph)
    warn_training(spec, graph, stacklevel=3)  # points at the caller of load/loads
    return spec, graph


def validate_spec(data: object, source: SourceMap) -> Spec:
    if not isinstance(data, dict):
        raise SpecSchemaError("a spec is a mapping with keys 'name', 'input', 'model' (and 'data', 'train')",
                              source.locate(()))
    try:
        blocks = data.get("blocks")
        spec = Spec.model_validate(data, context={"blocks": blocks if isinstance(blocks, dict) else {}})
    except ValidationError as err:
        raise _located(err.errors()[0], source) from None
    spec._source = source
    return spec


def check_training(spec: Spec, graph: Graph) -> None:
    """Checks that span sections: the objective must fit the models, the data the inputs and the losses."""
    if spec.train is not None:
        resolve_objective(spec, graph)
    if spec.data is not None:
        check_dataset(spec, graph, spec.data.dataset)
    if spec.decode is not None:
        check_decode(spec, graph)
    check_early_stopping(spec, graph)


def check_dataset(spec: Spec, graph: Graph, name: str) -> None:
    """Raises a located error unless dataset ``name`` can feed this model (shape, channels, labels, classes)."""
    data = spec.data
    dataset = DATASETS[name]
    where = spec.source.locate(("data", "dataset") if data else ())
    objective = resolve_objective(spec, graph) if spec.train else None
    fed = objective.inputs if objective else tuple(n for n, _ in graph.inputs)
    if dataset.path and not (data and data.path):
        raise SpecSchemaError(f"dataset {name} reads your files: add data.path, {dataset.path}", where)
    if data and data.stream and name != "npy":
        raise SpecSchemaError(f"data.stream memory-maps .npy files; dataset {name} is held in memory (use dataset "
                              f"npy to stream)", spec.source.locate(("data", "stream")))
    if data and data.path and not dataset.path:
        readers = ", ".join(d.name for d in DATASETS.values() if d.path)
        raise SpecSchemaError(f"data.path is where datasets {readers} find their files; dataset {name} does not "
                              f"read it", spec.source.locate(("data", "path")))
    check_columns(spec, graph, dataset, fed, objective.targets if objective else ())
    if len(fed) != 1 and not dataset.named_columns:
        raise SpecSchemaError(f"dataset {dataset.name} feeds a model with one input; this one has "
                              f"{len(fed)} ({', '.join(fed)}); the synthetic dataset feeds any inputs", where)
    input_type = graph.value_type(fed[0])
    if dataset.example_shape and dataset.example_shape != input_type.shape:
        raise SpecSchemaError(f"dataset {dataset.name} has examples of shape {format_shape(dataset.example_shape)} "
                              f"but {fed[0]}.shape is {format_shape(input_type.shape)}", where)
    if name == "image_folder" and (input_type.rank != 3 or input_type.shape[0] not in (1, 3)):
        raise SpecSchemaError(f"dataset image_folder decodes images to [C, H, W] with 1 (grayscale) or 3 (RGB) "
                              f"channels; {fed[0]}.shape is {format_shape(input_type.shape)}", where)
    if data and data.augment:
        _check_augment(spec, graph, fed)
    if data and data.normalize:
        if len(fed) != 1 or not input_type.is_float or input_type.rank < 1:
            raise SpecSchemaError(f"data.normalize applies to one float input with a channel axis; this model reads "
                                  f"{', '.join(f'{n} {graph.value_type(n)}' for n in fed)}",
                                  spec.source.locate(("data", "normalize"), key=True))
        channels = input_type.shape[0]
        for key in ("mean", "std"):
            count = len(getattr(data.normalize, key))
            if count not in (1, channels):
                choices = "1 value" if channels == 1 else f"1 or {channels} values"
                raise SpecSchemaError(f"normalize.{key} has {count} values; the input has {channels} "
                                      f"channel{'s' * (channels > 1)}, so give {choices}",
                                      spec.source.locate(("data", "normalize", key)))
    if data and dataset.sizes:
        _check_sizes(spec, dataset)
    check_validation(spec, graph, name)
    if objective and objective.extras:
        _check_extras(spec, objective, dataset)
    if objective and objective.targets and dataset.labels:
        if len(objective.terms) != 1:
            raise SpecSchemaError(f"dataset {dataset.name} yields one label per example; this model has "
                                  f"{len(objective.terms)} outputs with losses; the synthetic dataset makes a "
                                  f"target for each", where)
        _check_labels(spec, graph, dataset, objective.terms[0], where)


def _check_extras(spec: Spec, objective, dataset: DatasetDef) -> None:
    """The columns a loss reads besides its target (ctc's input_lengths) must be ones the dataset yields."""
    if dataset.named_columns:
        return  # read by name from the user's files, or drawn (synthetic)
    for term in objective.terms:
        for argument, column in term.columns:
            if column not in {c.name for c in dataset.columns}:
                has = f"its extra columns are {', '.join(c.name for c in dataset.columns)}" if dataset.columns else \
                    "it yields only its input and its label"
                path = ("train", "loss") + ((term.output,) if isinstance(spec.train.loss, dict) else ())
                raise SpecSchemaError(f"{term.loss.name} {argument} names column '{column}', which dataset "
                                      f"{dataset.name} does not yield ({has}); name one of its columns, or leave "
                                      f"{argument} out to use every frame",
                                      spec.source.locate(path + (term.loss.name, argument)))


def _check_augment(spec: Spec, graph: Graph, fed: tuple[str, ...]) -> None:
    """Augmentations move pixels of one (C, H, W) input, and must give examples of that input's shape."""
    where = spec.source.locate(("data", "augment"), key=True)
    kind = graph.value_type(fed[0])
    if len(fed) != 1 or kind.rank != 3:
        raise SpecSchemaError(f"data.augment moves the pixels of one input with channel, height and width axes "
                              f"[C, H, W]; this model reads {', '.join(f'{n} {graph.value_type(n)}' for n in fed)}",
                              where)
    height, width = kind.shape[1:]
    for index, step in enumerate(spec.data.augment):
        if step.name != "random_crop" or step.params.size is None:
            continue
        at = spec.source.locate(("data", "augment", index, "random_crop", "size"))
        padding, size = step.params.padding, step.params.size
        if size[0] > height + 2 * padding or size[1] > width + 2 * padding:
            raise SpecSchemaError(f"random_crop of size {list(size)} is larger than the padded input "
                                  f"[{height + 2 * padding}, {width + 2 * padding}] ({fed[0]} [{height}, {width}] "
                                  f"padded by {padding} on each side)", at)
        if size != (height, width):
            raise SpecSchemaError(f"random_crop of size {list(size)} gives examples the model cannot read: "
                                  f"{fed[0]} takes height and width [{height}, {width}]; leave size out to crop "
                                  f"that", at)


def _check_sizes(spec: Spec, dataset: DatasetDef) -> None:
    """``train_size``/``test_size`` take the first N examples; more than there are was clamped silently."""
    for key, available in zip(("train_size", "test_size"), dataset.sizes):
        asked = getattr(spec.data, key)
        if asked is not None and asked > available:
            split = key.removesuffix("_size")
            raise SpecSchemaError(f"data.{key} is {asked:,} but dataset {dataset.name} has {available:,} {split} "
                                  f"examples; give at most {available} or leave it out to use them all",
                                  spec.source.locate(("data", key)))


_OTHER_LOSS = MappingProxyType({
    "classes": "use cross_entropy, which takes logits [N, {classes}] and class ids",
    "values": "use mse (or bce_with_logits for 0/1 targets)",
})
"""What the dataset's labels call for, when the spec's loss takes the other kind of target."""


def _check_labels(spec: Spec, graph: Graph, dataset: DatasetDef, term: Term, where: Location) -> None:
    """The loss must take the targets the dataset yields, and the output must fit one example's labels.

    Without this, mse on class ids trains silently wrong in JAX (it broadcasts (N, 1)
    against (N,)) while torch raises; and cross_entropy on a [N, C, L] output reads one
    class id per example as if it were one per position.
    """
    loss, out = term.loss.name, graph.value_type(term.value)
    if LOSSES[loss].targets != dataset.labels:
        fix = _OTHER_LOSS[dataset.labels].format(classes=dataset.num_classes or "C")
        raise SpecSchemaError(f"{loss} takes {_target_words(LOSSES[loss].targets, out)}, but dataset {dataset.name} "
                              f"yields {_label_words(dataset)}; {fix}", spec.source.locate(("train", "loss")))
    expected = _expected_output(dataset, term, out)
    if dataset.labels == "classes" and out.rank == len(expected) and target_shape(term.loss, out) == \
            dataset.label_shape and dataset.num_classes and class_count(term.loss, out) != dataset.num_classes:
        raise SpecSchemaError(f"dataset {dataset.name} has {dataset.num_classes} classes but the model outputs "
                              f"{out} (classes on axis {term.loss.params.class_axis})", where)
    if out.shape != expected:
        hint = "; reduce the extra axes (flatten then linear, or pool them away) before the output"
        raise SpecSchemaError(f"dataset {dataset.name} yields {_label_words(dataset)}, so {loss} needs "
                              f"{_output_words(dataset)} {format_shape(expected)}, but the model outputs {out}"
                              f"{hint if out.rank > len(expected) else ''}", where)


def _expected_output(dataset: DatasetDef, term: Term, out: TensorType) -> tuple:
    """The output shape the dataset's labels call for: the classes on the loss's class axis around the label shape."""
    if dataset.labels != "classes":
        return dataset.label_shape
    classes = dataset.num_classes or (class_count(term.loss, out) if out.rank else "C")  # None: one per folder
    last = term.loss.params.class_axis == -1 and dataset.label_shape
    return (*dataset.label_shape, classes) if last else (classes, *dataset.label_shape)


def _target_words(targets: str, out: TensorType) -> str:
    if targets == "labels":
        return "label sequences [N, S] padded with the blank"
    return "class ids" if targets == "classes" else f"float targets shaped like the output {out}"


def _output_words(dataset: DatasetDef) -> str:
    return "logits" if dataset.labels == "classes" else "an output"


def _label_words(dataset: DatasetDef) -> str:
    if dataset.labels == "classes":
        per = "one per example" if not dataset.label_shape else f"shaped {format_shape(dataset.label_shape)}"
        return f"class ids (int64, {per})"
    return f"float values shaped {format_shape(dataset.label_shape)}"


def training_warnings(spec: Spec, graph: Graph) -> list[SpecWarning]:
    """Valid specs that train badly: a softmax, log_softmax or sigmoid feeding a loss that applies it already.

    A faithful Keras translation (softmax last, then a loss with from_logits=False)
    lands here: dslc's losses take logits, as torch's do.
    """
    if spec.train is None or spec.train.objective.name != "supervised" or len(graph.outputs) != 1 \
            or (node := loss_input(graph)) is None:
        return []
    chosen = spec.train.loss_for(graph.outputs[0][0])
    loss = chosen.name
    message = REDUNDANT_BEFORE_LOSS.get((loss, node.op))
    if message is None or (node.op == "log_softmax" and not _on_class_axis(node, graph, chosen)):
        return []
    where = spec.source.locate(node.path, key=True) if spec._source and node.path else None
    return [SpecWarning(f"{node.name} ({node.op}) feeds {loss}, {message}", where)]


def warn_training(spec: Spec, graph: Graph, stacklevel: int = 1) -> None:
    """Emits :func:`training_warnings` as ``SpecWarning``s (``stacklevel`` as in ``warnings.warn``, from here)."""
    for warning in training_warnings(spec, graph):
        warnings.warn(warning, stacklevel=stacklevel + 1)


def loss_input(graph: Graph) -> Node | None:
    """The layer whose values the loss reads: the output, looking back through shape-only layers."""
    nodes = {node.name: node for node in graph.nodes}
    name = graph.output
    while name in nodes and nodes[name].op in SHAPE_ONLY:
        name = nodes[name].inputs[0]
    return nodes.get(name)


def _on_class_axis(node: Node, graph: Graph, loss) -> bool:
    """Whether a softmax-family layer normalizes the axis the loss treats as classes (only then is it idempotent)."""
    out, batched = graph.output_type, graph.output_type.rank + 1
    return node.params.dim % batched == loss.params.class_axis % batched and node.output.shape == out.shape


def _located(error: dict, source: SourceMap) -> SpecSchemaError:
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if error["type"] == "dslc":
        return SpecSchemaError(ctx["message"], source.locate(loc + tuple(ctx["subpath"]), key=ctx["at_key"]))
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(loc[:-1])
        hint = did_you_mean(key, allowed) + (f"; valid keys: {', '.join(allowed)}" if allowed else "")
        section = format_path(loc[:-1]) or "the spec"
        return SpecSchemaError(f"unknown key '{key}' in {section}{hint}", source.locate(loc, key=True))
    return SpecSchemaError(describe_error(error), source.locate(loc))


def _fields_at(loc: tuple) -> list[str]:
    """Field names of the schema model found by following ``loc`` from ``Spec`` (through ``dict[str, Model]``)."""
    model: type[BaseModel] = Spec
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        models = _models_in(field.annotation) if field else []
        if not models:
            return []
        model, keyed = models[0]
        if keyed:
            if not parts:
                return []
            parts.pop(0)  # the mapping's key (a model's name)
    return list(model.model_fields)


def _models_in(annotation) -> list[tuple[type[BaseModel], bool]]:
    """The pydantic models an annotation holds, each with whether it is a dict's value (keyed by name)."""
    found = []
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append((arg, False))
        elif typing.get_origin(arg) is dict:
            found += [(m, True) for m, _ in _models_in(typing.get_args(arg)[1])]
        elif typing.get_args(arg):
            found += _models_in(arg)
    return found
