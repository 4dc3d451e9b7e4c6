"""The spec file's schema: pydantic models for every section.

Layers, losses and optimizers use the ``op: {args}`` form (see ``dsl/choice.py``);
their arguments are validated against the catalogs in ``dsl/ops`` and
``dsl/training``, so adding an op needs no change here. ``json_schema()`` renders
the same rules for editors (``dslc schema``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, PlainValidator, PrivateAttr, WithJsonSchema, create_model
from pydantic.json_schema import models_json_schema

from .choice import choice_error, split_choice, validate_params
from .names import unknown_name
from .ops import OPS
from .source import SourceMap
from .tensors import FLOAT_DTYPES, INT_DTYPES
from .training import DATASETS, LOSSES, METRICS, OPTIMIZERS
from .types import FloatList, Params, PositiveFloat, PositiveInt

LAYER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_NAMES = frozenset({"input"})


@dataclass(frozen=True)
class LayerSpec:
    """One item of ``model:``: an op, its validated arguments, and its name if given."""

    op: str
    params: Params
    name: str | None = None


@dataclass(frozen=True)
class ChoiceSpec:
    """A loss or optimizer: its name and validated arguments."""

    name: str
    params: Params


def _parse_layer(value) -> LayerSpec:
    op, args = split_choice(value, "op", OPS, ("relu", "conv2d"))
    name = args.pop("name", None)
    if name is not None and (not isinstance(name, str) or not LAYER_NAME.match(name) or name in RESERVED_NAMES):
        raise choice_error(f"layer name {name!r} must be a Python-style identifier (letters, digits, _) "
                           f"and not {', '.join(sorted(RESERVED_NAMES))}", (op, "name"))
    return LayerSpec(op, validate_params(OPS[op].params, args, (op,), op), name)


def _parse_loss(value) -> ChoiceSpec:
    name, args = split_choice(value, "loss", LOSSES, ("cross_entropy", "cross_entropy"))
    return ChoiceSpec(name, validate_params(LOSSES[name].params, args, (name,), name))


def _parse_optimizer(value) -> ChoiceSpec:
    name, args = split_choice(value, "optimizer", OPTIMIZERS, ("adam", "adam"))
    return ChoiceSpec(name, validate_params(OPTIMIZERS[name], args, (name,), name))


def _name_in(kind: str, names) -> PlainValidator:
    """A validator that accepts one of ``names`` and otherwise raises ``unknown_name``'s located message."""
    def parse(value) -> str:
        if isinstance(value, str) and value in names:
            return value
        raise choice_error(unknown_name(kind, value))
    return PlainValidator(parse)


# Plain validators rather than Literal: pydantic's literal message lists the choices but cannot say
# that Keras's 'acc' is dslc's 'accuracy'. The JSON Schema still gives editors the enum.
Dataset = Annotated[str, _name_in("dataset", DATASETS), WithJsonSchema({"type": "string", "enum": list(DATASETS)})]
Metric = Annotated[str, _name_in("metric", METRICS), WithJsonSchema({"type": "string", "enum": list(METRICS)})]

_PLACEHOLDER = {"$comment": "replaced by json_schema()"}
Layer = Annotated[LayerSpec, PlainValidator(_parse_layer), WithJsonSchema({**_PLACEHOLDER, "title": "layer"})]
Loss = Annotated[ChoiceSpec, PlainValidator(_parse_loss), WithJsonSchema({**_PLACEHOLDER, "title": "loss"})]
Optimizer = Annotated[ChoiceSpec, PlainValidator(_parse_optimizer),
                      WithJsonSchema({**_PLACEHOLDER, "title": "optimizer"})]


class InputSpec(Params):
    """One example's shape, channels first: ``[1, 28, 28]`` for an MNIST image."""

    shape: Annotated[tuple[PositiveInt, ...], Field(min_length=1, max_length=8)]
    dtype: Literal[FLOAT_DTYPES + INT_DTYPES] = "float32"


class NormalizeSpec(Params):
    """Per-channel ``(x - mean) / std`` after the dataset's own scaling to [0, 1]."""

    mean: FloatList
    std: Annotated[list[PositiveFloat], Field(min_length=1)]


class DataSpec(Params):
    dataset: Dataset
    normalize: NormalizeSpec | None = None
    train_size: PositiveInt | None = Field(None, description="use the first N training examples (synthetic: N made)")
    test_size: PositiveInt | None = Field(None, description="use the first N test examples (synthetic: N made)")


class TrainSpec(Params):
    loss: Loss
    optimizer: Optimizer
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 1
    metrics: list[Metric] = []


class Spec(Params):
    """A whole spec file: the model, and optionally the data and training recipe."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=100)]
    description: str = ""
    input: InputSpec
    model: Annotated[list[Layer], Field(min_length=1)]
    data: DataSpec | None = None
    train: TrainSpec | None = None

    _source: SourceMap | None = PrivateAttr(default=None)

    @property
    def source(self) -> SourceMap:
        """Positions of the file this spec was read from (an empty map for specs built in code)."""
        return self._source or SourceMap("<spec>")


def json_schema() -> dict:
    """The JSON Schema of a spec file, for editor completion and validation."""
    schema = Spec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    layer_args = {
        name: create_model(_camel(name) + "Layer", __base__=op.params, __doc__=op.doc,
                           name=(str | None, Field(None, pattern=LAYER_NAME.pattern)))
        for name, op in OPS.items()
    }
    choices = {
        "layer": _choice_schema(layer_args, defs, {n: op.doc for n, op in OPS.items()}),
        "loss": _choice_schema({n: d.params for n, d in LOSSES.items()}, defs, {n: d.doc for n, d in LOSSES.items()}),
        "optimizer": _choice_schema(dict(OPTIMIZERS), defs, {}),
    }
    return _fill_placeholders(schema, choices)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _choice_schema(models: dict[str, type[Params]], defs: dict, docs: dict[str, str]) -> dict:
    refs, extra = models_json_schema([(m, "validation") for m in models.values()], ref_template="#/$defs/{model}")
    defs.update(extra.get("$defs", {}))
    bare = [name for name, model in models.items() if not any(f.is_required() for f in model.model_fields.values())]
    options = [{"enum": bare}] if bare else []
    for name, model in models.items():
        args = refs[(model, "validation")]
        options.append({
            "type": "object", "additionalProperties": False, "required": [name], "minProperties": 1,
            "maxProperties": 1,
            "properties": {name: {"anyOf": [args, {"type": "null"}], "description": docs.get(name, "")}},
        })
    return {"anyOf": options}


def _fill_placeholders(node, choices: dict):
    if isinstance(node, dict):
        if node.get("$comment") == _PLACEHOLDER["$comment"]:
            return choices[node["title"]]
        return {k: _fill_placeholders(v, choices) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill_placeholders(v, choices) for v in node]
    return node
