"""From a YAML file to a validated ``Spec`` and its ``Graph``, with located errors."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from .choice import describe_error, format_path
from .errors import SpecSchemaError, did_you_mean
from .graph import Graph, build_graph
from .schema import Spec
from .source import SourceMap, load_yaml, parse_yaml
from .tensors import format_shape
from .training import DATASETS, LOSSES


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
    return spec, graph


def validate_spec(data: object, source: SourceMap) -> Spec:
    if not isinstance(data, dict):
        raise SpecSchemaError("a spec is a mapping with keys 'name', 'input', 'model' (and 'data', 'train')",
                              source.locate(()))
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        raise _located(err.errors()[0], source) from None
    spec._source = source
    return spec


def check_training(spec: Spec, graph: Graph) -> None:
    """Checks that span sections: the data must fit the input, the loss and metrics the output."""
    if spec.data is not None:
        check_dataset(spec, graph, spec.data.dataset)
    if spec.train is None:
        return
    loss, out = spec.train.loss.name, graph.output_type
    if LOSSES[loss].targets == "classes" and out.rank < 1:
        raise SpecSchemaError(f"{loss} needs an output with a class axis; the model outputs "
                              f"{out}", spec.source.locate(("train", "loss")))
    if "accuracy" in spec.train.metrics and loss == "mse":
        raise SpecSchemaError("accuracy needs a classification loss (cross_entropy or bce_with_logits), not mse",
                              spec.source.locate(("train", "metrics")))


def check_dataset(spec: Spec, graph: Graph, name: str) -> None:
    """Raises a located error unless dataset ``name`` can feed this model (shape, channels, classes)."""
    data = spec.data
    dataset = DATASETS[name]
    input_type = graph.input_types["input"]
    where = spec.source.locate(("data", "dataset") if data else ())
    if dataset.example_shape and dataset.example_shape != input_type.shape:
        raise SpecSchemaError(f"dataset {dataset.name} has examples of shape {format_shape(dataset.example_shape)} "
                              f"but input.shape is {format_shape(input_type.shape)}", where)
    if data and data.normalize:
        channels = input_type.shape[0]
        for key in ("mean", "std"):
            count = len(getattr(data.normalize, key))
            if count not in (1, channels):
                choices = "1 value" if channels == 1 else f"1 or {channels} values"
                raise SpecSchemaError(f"normalize.{key} has {count} values; the input has {channels} "
                                      f"channel{'s' * (channels > 1)}, so give {choices}",
                                      spec.source.locate(("data", "normalize", key)))
    classification = spec.train and LOSSES[spec.train.loss.name].targets == "classes"
    if classification and dataset.num_classes and graph.output_type.shape[0] != dataset.num_classes:
        raise SpecSchemaError(f"dataset {dataset.name} has {dataset.num_classes} classes but the model outputs "
                              f"{graph.output_type} (classes on axis 1)", where)


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
    """Field names of the schema model found by following ``loc`` from ``Spec``."""
    model: type[BaseModel] = Spec
    for part in loc:
        field = model.model_fields.get(str(part))
        candidates = [a for a in getattr(field.annotation, "__args__", (field.annotation,))] if field else []
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not models:
            return []
        model = models[0]
    return list(model.model_fields)
