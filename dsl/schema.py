"""The spec file's schema: pydantic models for every section.

Layers, losses and optimizers use the ``op: {args}`` form (see ``dsl/choice.py``);
their arguments are validated against the catalogs in ``dsl/ops`` and
``dsl/training``, so adding an op needs no change here. ``json_schema()`` renders
the same rules for editors (``dslc schema``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    Field,
    PlainValidator,
    PrivateAttr,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from .choice import choice_error, split_choice, validate_params, within
from .decoding import DecodeSpec
from .errors import did_you_mean
from .layers import CONTROL_KEYS, LAYER_NAME, RESERVED_NAMES, SEQUENTIAL, LayerSpec, parse_layer
from .names import unknown_name
from .ops import OPS
from .schedules import SCHEDULES, WarmupParams
from .source import SourceMap
from .tensors import BOOL_DTYPES, FLOAT_DTYPES, INT_DTYPES
from .training import (
    AUGMENTATIONS,
    DATASETS,
    LOSSES,
    METRICS,
    OBJECTIVES,
    OPTIMIZERS,
    TOKENIZERS,
    EarlyStoppingParams,
)
from .types import Bool, FloatList, Params, PositiveFloat, PositiveInt
from .weight_init import parse_op_defaults, possible_weights


@dataclass(frozen=True)
class ChoiceSpec:
    """A loss or optimizer: its name and validated arguments."""

    name: str
    params: Params


def _parse_layer(value, info: ValidationInfo) -> LayerSpec:
    return parse_layer(value, (info.context or {}).get("blocks", {}))


def _parse_loss(value) -> ChoiceSpec:
    name, args = split_choice(value, "loss", LOSSES, ("cross_entropy", "cross_entropy"))
    return ChoiceSpec(name, validate_params(LOSSES[name].params, args, (name,), name))


def _parse_optimizer(value) -> ChoiceSpec:
    name, args = split_choice(value, "optimizer", OPTIMIZERS, ("adam", "adam"))
    return ChoiceSpec(name, validate_params(OPTIMIZERS[name], args, (name,), name))


def _parse_schedule(value) -> ChoiceSpec:
    name, args = split_choice(value, "schedule", SCHEDULES, ("cosine", "cosine"))
    return ChoiceSpec(name, validate_params(SCHEDULES[name], args, (name,), name))


def _parse_warmups(value) -> WarmupParams | dict[str, WarmupParams]:
    """One warmup (``{steps: 100, start_factor: 0.01}``), or a mapping of model names to warmups: a mapping whose
    keys are all warmup arguments is the first form."""
    if isinstance(value, dict) and value and not value.keys() <= WarmupParams.model_fields.keys():
        parsed = {}
        for key, item in value.items():
            if not isinstance(key, str) or not LAYER_NAME.match(key) or not isinstance(item, dict):
                raise choice_error(f"warmup takes {', '.join(WarmupParams.model_fields)} ({{steps: 100}}), or a "
                                   f"warmup per model name; '{key}' is neither", (key,), True)
            parsed[key] = validate_params(WarmupParams, item, (key,), "warmup")
        return parsed
    if not isinstance(value, dict):
        raise choice_error(f"warmup is a mapping ({{steps: 100, start_factor: 0.01}}); got {value!r}")
    return validate_params(WarmupParams, value, (), "warmup")


def _parse_objective(value) -> ChoiceSpec:
    name, args = split_choice(value, "objective", OBJECTIVES, ("supervised", "gan"))
    return ChoiceSpec(name, validate_params(OBJECTIVES[name].params, args, (name,), name))


def _parse_augmentation(value) -> ChoiceSpec:
    name, args = split_choice(value, "augmentation", AUGMENTATIONS, ("horizontal_flip", "random_crop"))
    return ChoiceSpec(name, validate_params(AUGMENTATIONS[name], args, (name,), name))


def _parse_tokenizer(value) -> ChoiceSpec:
    """``char``, ``{vocab: {max_size: N, min_freq: k}}`` or ``{file: tokenizer.json}`` (the path as the value)."""
    if isinstance(value, dict) and len(value) == 1 and "file" in value:
        path = value["file"]
        if not isinstance(path, str):
            raise choice_error(f"tokenizer file: give the path of a Hugging Face tokenizers file (file: "
                               f"tokenizer.json); got {path!r}", ("file",))
        value = {"file": {"path": path}}
    keyed = isinstance(value, dict) and len(value) == 1
    name = next(iter(value)) if keyed else value
    if isinstance(name, str) and name not in TOKENIZERS:
        raise choice_error(f"unknown tokenizer '{name}'{did_you_mean(name, TOKENIZERS)}; valid tokenizers: "
                           f"{', '.join(TOKENIZERS)}", (name,) if keyed else (), keyed)
    name, args = split_choice(value, "tokenizer", TOKENIZERS, ("char", "vocab"))
    return ChoiceSpec(name, validate_params(TOKENIZERS[name], args, (name,), name))


def _per_name(parse, catalog: Mapping, what: str):
    """``parse`` for one choice, or a mapping of names (outputs, models) to choices (Keras's ``loss={...}``).

    A mapping whose one key is in ``catalog`` is the one-choice form (``adam: {lr: 0.1}``);
    any other mapping is per name.
    """
    def parse_any(value):
        if isinstance(value, dict) and value and not (len(value) == 1 and next(iter(value)) in catalog):
            parsed = {}
            for key, item in value.items():
                if not isinstance(key, str) or not LAYER_NAME.match(key):
                    raise choice_error(f"{what} are given per name ({what} name: choice); '{key}' is neither "
                                       f"a name nor one of {', '.join(catalog)}", (key,), True)
                parsed[key] = within((key,), parse, item)
            return parsed
        return parse(value)
    return parse_any


def _name_in(kind: str, names) -> PlainValidator:
    """A validator that accepts one of ``names`` and otherwise raises ``unknown_name``'s located message."""
    def parse(value) -> str:
        if isinstance(value, str) and value in names:
            return value
        raise choice_error(unknown_name(kind, value))
    return PlainValidator(parse)


# Plain validators rather than Literal: pydantic's literal message lists the choices but cannot say
# that Keras's 'acc' is dslc's 'accuracy'. The JSON Schema still gives editors the enum.
def _parse_dataset(value) -> str:
    """A dataset's name, bare or with its arguments (``{movielens: {variant: 1m}}``, checked here, located)."""
    if not isinstance(value, dict):
        return _name_in("dataset", DATASETS).func(value)
    name, args = split_choice(value, "dataset", DATASETS, ("digits", "movielens"))
    validate_params(DATASETS[name].params, args, (name,), name)
    return name


_DATASET_SCHEMA = {"type": "string", "enum": list(DATASETS)}
Dataset = Annotated[str, PlainValidator(_parse_dataset), WithJsonSchema({"anyOf": [
    _DATASET_SCHEMA, {"type": "object", "minProperties": 1, "maxProperties": 1, "propertyNames": _DATASET_SCHEMA}]})]



def _parse_metrics(value) -> list[str] | dict[str, list[str]]:
    """A list of metric names for every output, or a mapping of output name to such a list."""
    def names(items, at: tuple) -> list[str]:
        if not isinstance(items, list):
            raise choice_error(f"metrics are a list of names ([accuracy]); got {items!r}", at)
        for index, item in enumerate(items):
            if not isinstance(item, str) or item not in METRICS:
                raise choice_error(unknown_name("metric", item), at + (index,))
        return list(items)
    if isinstance(value, dict):
        return {key: names(items, (key,)) for key, items in value.items()}
    return names(value, ())


Metrics = Annotated[list[str] | dict[str, list[str]], PlainValidator(_parse_metrics),
                    WithJsonSchema({"anyOf": [{"type": "array", "items": {"enum": list(METRICS)}},
                                              {"type": "object", "additionalProperties": {
                                                  "type": "array", "items": {"enum": list(METRICS)}}}]})]

OpInits = Annotated[dict, PlainValidator(parse_op_defaults), WithJsonSchema({
    "type": "object", "description": "initializers by op and weight name, for every layer of that op "
                                     "(init: {conv2d: {weight: {normal: {std: 0.02}}}}); a layer's own init: wins",
    "additionalProperties": {"type": "object"}})]

_PLACEHOLDER = {"$comment": "replaced by json_schema()"}
Layer = Annotated[LayerSpec, PlainValidator(_parse_layer), WithJsonSchema({**_PLACEHOLDER, "title": "layer"})]
Loss = Annotated[ChoiceSpec, PlainValidator(_parse_loss), WithJsonSchema({**_PLACEHOLDER, "title": "loss"})]
Optimizer = Annotated[ChoiceSpec, PlainValidator(_parse_optimizer),
                      WithJsonSchema({**_PLACEHOLDER, "title": "optimizer"})]
Losses = Annotated[ChoiceSpec | dict, PlainValidator(_per_name(_parse_loss, LOSSES, "losses")),
                   WithJsonSchema({**_PLACEHOLDER, "title": "loss"})]
Optimizers = Annotated[ChoiceSpec | dict, PlainValidator(_per_name(_parse_optimizer, OPTIMIZERS, "optimizers")),
                       WithJsonSchema({**_PLACEHOLDER, "title": "optimizer"})]
Schedules = Annotated[ChoiceSpec | dict, PlainValidator(_per_name(_parse_schedule, SCHEDULES, "schedules")),
                      WithJsonSchema({**_PLACEHOLDER, "title": "schedule"})]
Warmups = Annotated[WarmupParams | dict, PlainValidator(_parse_warmups),
                    WithJsonSchema({**_PLACEHOLDER, "title": "warmup"})]
Objective = Annotated[ChoiceSpec, PlainValidator(_parse_objective),
                      WithJsonSchema({**_PLACEHOLDER, "title": "objective"})]
Augmentation = Annotated[ChoiceSpec, PlainValidator(_parse_augmentation),
                         WithJsonSchema({**_PLACEHOLDER, "title": "augmentation"})]
Tokenizer = Annotated[ChoiceSpec, PlainValidator(_parse_tokenizer), WithJsonSchema({
    "anyOf": [{"enum": ["char", "vocab"]},
              {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
               "properties": {"char": {"type": ["object", "null"]}, "vocab": {"type": ["object", "null"]},
                              "file": {"type": "string"}}}],
    "description": "how text becomes ids: char, vocab (words) or file: tokenizer.json (Hugging Face tokenizers)"})]


Name = Annotated[str, Field(pattern=LAYER_NAME.pattern)]


class InputSpec(Params):
    """One example's shape, channels first: ``[1, 28, 28]`` for an MNIST image; ``[]`` for one value per
    example (a user id: the batch is [N]), as a table's columns are.

    ``mask`` declares a padding mask ``[T]`` (int or bool), so ``dslc check`` and the
    synthetic dataset draw it as one (real tokens, then padding) rather than as ids:
    ``keep``, nonzero marks a real token (Hugging Face's ``attention_mask``); ``ignore``,
    nonzero marks padding (torch's ``key_padding_mask``).

    ``vocab`` declares the ids an integer input holds, 0..vocab-1: one size (943 users),
    or one per field for ``[F]`` (Criteo's 26 categorical columns, each its own id
    space). Data is drawn within it, and a table reading the input must cover it; the
    tables of ``embedding``, ``field_embedding`` and ``bias`` default to it.
    """

    shape: Annotated[tuple[PositiveInt, ...], Field(max_length=8)]
    dtype: Literal[FLOAT_DTYPES + INT_DTYPES + BOOL_DTYPES] = "float32"
    mask: Literal["keep", "ignore"] | None = None
    vocab: PositiveInt | Annotated[list[PositiveInt], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _vocab_fits(self) -> InputSpec:
        if self.vocab is None:
            return self
        if self.dtype not in INT_DTYPES or self.mask is not None:
            what = "a padding mask" if self.mask is not None else f"{self.dtype}"
            raise choice_error(f"vocab declares the ids of an integer input (dtype: int64); this input is {what}",
                               ("vocab",), True)
        if isinstance(self.vocab, list) and len(self.vocab) != (self.shape or (None,))[-1]:
            fix = (f"give {self.shape[-1]} sizes, or one size for all (vocab: N)" if self.shape else
                   "give one size (vocab: N) for an input of one id per example")
            count = f"{len(self.vocab)} size{'s' * (len(self.vocab) > 1)}"
            raise choice_error(f"vocab lists {count}, one per field (the last axis), but the "
                               f"input's shape is {list(self.shape)}; {fix}", ("vocab",))
        return self

    @model_validator(mode="after")
    def _mask_is_int_and_flat(self) -> InputSpec:
        if self.mask is not None and self.dtype in FLOAT_DTYPES:
            raise choice_error(f"a padding mask is int or bool ([N, T], nonzero marks a "
                               f"{'real token' if self.mask == 'keep' else 'padding position'}); this input is "
                               f"{self.dtype}: give dtype: int64 or bool", ("mask",))
        if self.mask is not None and len(self.shape) != 1:
            raise choice_error(f"a padding mask is [N, T], one flag per position: give shape [T], not "
                               f"{list(self.shape)}", ("shape",))
        return self


class NormalizeSpec(Params):
    """Per-channel ``(x - mean) / std`` after the dataset's own scaling to [0, 1]."""

    mean: FloatList
    std: Annotated[list[PositiveFloat], Field(min_length=1)]


class DataSpec(Params):
    dataset: Dataset
    normalize: NormalizeSpec | None = None
    train_size: PositiveInt | None = Field(None, description="use the first N training examples (synthetic: N made)")
    test_size: PositiveInt | None = Field(None, description="use the first N test examples (synthetic: N made)")
    path: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="npy: the folder holding train/ and test/, one <column>.npy per input and target; "
                          "npz: the .npz file; image_folder: the folder holding train/<class>/ and test/<class>/")
    stream: Bool = Field(False, description="npy: read batches from memory-mapped files instead of loading them")
    augment: list[Augmentation] = Field(
        [], description="training-split augmentations, in order, e.g. [random_crop: {padding: 4}, horizontal_flip]")
    columns: dict[Annotated[str, Field(min_length=1)], Name] = Field(
        {}, description="dataset column -> the model input or output it feeds ({input_ids: tokens, label: topic}); "
                        "a column not listed feeds the input or output of its own name")
    tokenizer: Tokenizer | None = None
    validation_split: Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)] | None = Field(
        None, description="carve this fraction of the training split off as the validation split, the same rows "
                          "for a seed on both targets (ceil(fraction * N) examples)")
    validation: Name | None = Field(
        None, description="the validation split your files hold beside train and test: npy data.path/<name>/, "
                          "npz <column>_<name>, image_folder data.path/<name>/<class>/ (e.g. validation: val)")
    _args: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_validation_split(self) -> DataSpec:
        if self.validation_split is not None and self.validation is not None:
            raise choice_error("give one validation split: validation_split carves a fraction off the training "
                               "split, validation names one on disk; drop one of them", ("validation",), True)
        if self.validation in ("train", "test"):
            use = ("the test split is never used to choose anything (early stopping, the best checkpoint)"
                   if self.validation == "test" else "the training split cannot also be the validation split")
            raise choice_error(f"validation: {self.validation}: {use}; name a third split (validation: val) or "
                               f"carve one off the training split (validation_split: 0.1)", ("validation",))
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _keep_dataset_args(cls, value, handler) -> DataSpec:
        """The arguments of ``dataset: {name: {args}}`` (``dataset`` itself keeps the name)."""
        data = handler(value)
        raw = value.get("dataset") if isinstance(value, dict) else None
        if isinstance(raw, dict):
            data._args = dict(next(iter(raw.values())) or {})
        return data

    def options(self, name: str) -> Params:
        """Dataset ``name``'s arguments: the spec's for its own dataset, the defaults for another (``--dataset``)."""
        schema = DATASETS[name].params
        return schema.model_validate(self._args if name == self.dataset else {})


class TrainSpec(Params):
    """The recipe. ``loss``, ``optimizer`` and ``metrics`` take one choice for everything, or a
    mapping by output (losses, metrics) or by model (optimizers), as Keras's ``compile`` does."""

    objective: Objective = ChoiceSpec("supervised", OBJECTIVES["supervised"].params())
    loss: Losses | None = None
    loss_weights: dict[Name, Annotated[float, Field(ge=0)]] = {}
    optimizer: Optimizers
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 1
    metrics: Metrics = []
    precision: Literal["float32", "bf16"] = "float32"
    """``bf16``: mixed precision, bfloat16 compute with float32 weights and optimizer state (torch autocast, and
    the same policy in JAX); ``--precision`` overrides it."""
    sync_batch_norm: bool = False
    """Data-parallel runs: BatchNorm statistics over the global batch (torch ``SyncBatchNorm``) instead of each
    replica's shard (DDP's default, which the JAX target reproduces)."""
    early_stopping: EarlyStoppingParams | None = None
    """Stop when a validation metric stops improving (Keras's EarlyStopping); needs a validation split."""
    schedule: Schedules | None = None
    """The learning rate's schedule (``dsl/schedules.py``), or one per model, as ``optimizer``."""
    warmup: Warmups | None = None
    """A linear warmup composed in front of the schedule (or alone), or one per model."""
    clip_grad_norm: PositiveFloat | None = None
    """Each optimizer's gradients scaled to this global L2 norm at most (torch's ``clip_grad_norm_``)."""
    clip_grad_value: PositiveFloat | None = None
    """Each gradient clamped to [-v, v] (torch's ``clip_grad_value_``)."""

    @model_validator(mode="after")
    def _one_clipping(self) -> TrainSpec:
        if self.clip_grad_norm is not None and self.clip_grad_value is not None:
            raise choice_error("give clip_grad_norm or clip_grad_value, not both: which comes first changes the "
                               "step", ("clip_grad_value",), True)
        return self

    @model_validator(mode="after")
    def _warmup_counts_the_schedules_interval(self) -> TrainSpec:
        for model in _keys(self.schedule) | _keys(self.warmup):
            schedule, warmup = self.schedule_for(model), self.warmup_for(model)
            if schedule is None or warmup is None or warmup.interval == schedule.params.interval:
                continue
            count, other = ("steps", "epochs") if warmup.interval == "step" else ("epochs", "steps")
            raise choice_error(f"the warmup counts {count}, and schedule {schedule.name} steps once per "
                               f"{schedule.params.interval} (interval: {schedule.params.interval}): they step "
                               f"together, as torch's SequentialLR; give warmup: {{{other}: N}}, or interval: "
                               f"{warmup.interval} in {schedule.name}",
                               ("warmup",) + ((model,) if isinstance(self.warmup, dict) else ()) + (count,), True)
        return self

    def loss_for(self, output: str) -> ChoiceSpec | None:
        return self.loss.get(output) if isinstance(self.loss, dict) else self.loss

    def optimizer_for(self, model: str) -> ChoiceSpec:
        return self.optimizer[model] if isinstance(self.optimizer, dict) else self.optimizer

    def metrics_for(self, output: str) -> tuple[str, ...]:
        return tuple(self.metrics.get(output, ()) if isinstance(self.metrics, dict) else self.metrics)

    def schedule_for(self, model: str) -> ChoiceSpec | None:
        """The model's schedule; None where it has none (a mapping by model may leave a model out)."""
        return self.schedule.get(model) if isinstance(self.schedule, dict) else self.schedule

    def warmup_for(self, model: str) -> WarmupParams | None:
        return self.warmup.get(model) if isinstance(self.warmup, dict) else self.warmup


def _keys(value) -> set[str]:
    """The model names of a per-model mapping; ``{''}`` for one value for every model, ``set()`` for none."""
    return set(value) if isinstance(value, dict) else set() if value is None else {""}


class BlockSpec(Params):
    """A parameterized sub-graph, used in ``model:`` like an op (``- basic: {planes: 64}``).

    ``args`` maps each argument to its default (null: required); ``inputs`` names what
    an instance reads (default one input, ``input``); ``output`` names the layer whose
    value an instance gives (default the last).
    """

    args: dict[Name, int | float | bool | str | list | None] = {}
    inputs: Annotated[list[Name], Field(min_length=1)] = ["input"]
    model: Annotated[list[Layer], Field(min_length=1)]
    output: str | None = None

    @model_validator(mode="after")
    def _distinct(self) -> BlockSpec:
        for key in self.args:
            if key in CONTROL_KEYS:
                raise choice_error(f"block argument '{key}' would shadow the control key {key}: of every layer; "
                                   "rename it", ("args", key), True)
        for index, name in enumerate(self.inputs):
            if name in self.inputs[:index]:
                raise choice_error(f"input name '{name}' is listed twice", ("inputs", index))
        return self


class ModelSpec(Params):
    """One model: it reads ``input`` (one input, named ``input``) or ``inputs`` (several, by
    name, in this order) and returns ``outputs`` (default: its last layer)."""

    input: InputSpec | None = None
    inputs: Annotated[dict[Name, InputSpec], Field(min_length=1)] | None = None
    model: Annotated[list[Layer], Field(min_length=1)]
    outputs: Annotated[list[str], Field(min_length=1)] | Annotated[dict[Name, str], Field(min_length=1)] | None = None
    init: OpInits = {}

    @model_validator(mode="after")
    def _one_input_form(self) -> ModelSpec:
        _check_model_form(self)
        return self

    @property
    def input_specs(self) -> dict[str, InputSpec]:
        """The model's inputs by name, in order: ``{'input': ...}`` for the single ``input:`` form."""
        return dict(self.inputs) if self.inputs is not None else {"input": self.input}


def _check_model_form(model: ModelSpec | Spec) -> None:
    """One input form, and output names that are distinct and not input names."""
    if model.input is None and model.inputs is None:
        raise choice_error("missing required key 'input' (one input) or 'inputs' (several, by name)")
    if model.input is not None and model.inputs is not None:
        raise choice_error("give 'input' (one input) or 'inputs' (several), not both", ("inputs",), True)
    inputs = dict(model.inputs) if model.inputs is not None else {"input": model.input}
    names = list(model.outputs) if model.outputs is not None else []
    for index, name in enumerate(names):
        where = ("outputs", index) if isinstance(model.outputs, list) else ("outputs", name)
        if name in names[:index]:
            raise choice_error(f"output '{name}' is listed twice", where)
        if name in inputs:
            raise choice_error(f"output '{name}' has the name of an input; batches name targets by output "
                               "and inputs by input, so rename one", where, isinstance(model.outputs, dict))


class Spec(Params):
    """A whole spec file: one model (``input``/``inputs``, ``model``, ``outputs`` at the top) or
    several (``models: {generator: {...}, discriminator: {...}}``), and optionally the data and
    training recipe. ``init`` at the top sets initializers by op for every model; a model's
    own ``init`` wins over it, weight by weight.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=100)]
    description: str = ""
    input: InputSpec | None = None
    inputs: Annotated[dict[Name, InputSpec], Field(min_length=1)] | None = None
    blocks: dict[str, BlockSpec] = {}
    model: Annotated[list[Layer], Field(min_length=1)] | None = None
    outputs: Annotated[list[str], Field(min_length=1)] | Annotated[dict[Name, str], Field(min_length=1)] | None = None
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)] | None = None
    init: OpInits = {}
    data: DataSpec | None = None
    train: TrainSpec | None = None
    decode: DecodeSpec | None = None

    _source: SourceMap | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_model_form(self) -> Spec:
        inline = [k for k in ("input", "inputs", "model", "outputs") if getattr(self, k) is not None]
        if self.models is not None and inline:
            raise choice_error(f"give the model at the top (input, model) or several under models:, not both; "
                               f"move '{inline[0]}' into a model", (inline[0],), True)
        if self.models is None:
            if self.model is None:
                raise choice_error("missing required key 'model' (or 'models', for several)")
            _check_model_form(self)
        for name in self.blocks:
            if not LAYER_NAME.match(name) or name in OPS or name == SEQUENTIAL or name in RESERVED_NAMES:
                raise choice_error(f"block name '{name}' must be an identifier that is not an op's name, "
                                   f"'sequential' or 'input'", ("blocks", name), True)
        return self

    @model_validator(mode="after")
    def _precision_fits(self) -> Spec:
        """bf16 mixes bfloat16 compute into a float32 model: a float64 input says the model is not one."""
        if self.train is None or self.train.precision != "bf16":
            return self
        inputs = {"input": self.input} if self.input else {f"inputs.{k}": v for k, v in (self.inputs or {}).items()}
        for model, spec in (self.models or {}).items():
            inputs |= {f"models.{model}.{k}": v for k, v in spec.input_specs.items()}
        for where, kind in inputs.items():
            if kind.dtype == "float64":
                raise choice_error(f"precision bf16 computes in bfloat16 over float32 weights; {where} is float64: "
                                   f"use precision float32, or a float32 input", ("train", "precision"))
        return self

    @property
    def model_specs(self) -> dict[str, ModelSpec]:
        """The models by name; ``{'': ...}`` for a spec with one model at the top (its names have no prefix)."""
        if self.models is not None:
            return dict(self.models)
        return {"": ModelSpec.model_construct(input=self.input, inputs=self.inputs, model=self.model,
                                              outputs=self.outputs)}

    @property
    def input_specs(self) -> dict[str, InputSpec]:
        """The one-model form's inputs by name (``{'input': ...}`` for ``input:``)."""
        return self.model_specs[""].input_specs

    @property
    def source(self) -> SourceMap:
        """Positions of the file this spec was read from (an empty map for specs built in code)."""
        return self._source or SourceMap("<spec>")


def json_schema() -> dict:
    """The JSON Schema of a spec file, for editor completion and validation."""
    schema = Spec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    layer_args = {name: create_model(_camel(name) + "Layer", __base__=op.params, __doc__=op.doc,
                                     **_layer_fields(name)) for name, op in OPS.items()}
    choices = {
        "layer": _choice_schema(layer_args, defs, {n: op.doc for n, op in OPS.items()}),
        "loss": _choice_schema({n: d.params for n, d in LOSSES.items()}, defs, {n: d.doc for n, d in LOSSES.items()}),
        "optimizer": _choice_schema(dict(OPTIMIZERS), defs, {}),
        "schedule": _per_model_schema(_choice_schema(dict(SCHEDULES), defs,
                                                     {n: " ".join(p.__doc__.split()) for n, p in SCHEDULES.items()})),
        "warmup": _per_model_schema(WarmupParams.model_json_schema()),
        "objective": _choice_schema({n: d.params for n, d in OBJECTIVES.items()}, defs,
                                    {n: d.doc for n, d in OBJECTIVES.items()}),
        "augmentation": _choice_schema(dict(AUGMENTATIONS), defs,
                                       {n: " ".join(p.__doc__.split()) for n, p in AUGMENTATIONS.items()}),
    }
    return _fill_placeholders(schema, choices)


def _per_model_schema(choice: dict) -> dict:
    """A choice, or a mapping of model names to it (``train.schedule`` by model)."""
    return {"anyOf": [choice, {"type": "object", "additionalProperties": choice}]}


def _layer_fields(op: str) -> dict:
    """The keys every layer of ``op`` takes beside its arguments: ``name``, and ``init`` where it has weights."""
    fields = {"name": (str | None, Field(None, pattern=LAYER_NAME.pattern))}
    if any(w.trainable for w in possible_weights(op).values()):
        own = OPS[op].params.model_fields.get("init")  # prelu's starting slope: a number, or the initializers
        fields["init"] = (own.annotation | dict if own else dict | None,
                          Field(own.default if own else None, description="initializers by weight name"))
    return fields


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
