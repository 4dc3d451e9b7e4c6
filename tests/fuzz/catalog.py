"""Which layers the op catalog allows at a point of a graph: the fuzz generator's only source of ops.

Every ``OpDef`` carries its argument schema, its shape rule and examples. A layer is
a candidate where one of its op's examples (or a variation of one) validates and its
shape rule accepts the values it would read. Nothing here names an op: a new op in
``dsl/ops`` is fuzzed as soon as one of its examples fits a generated shape.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from dsl.ops import OPS, Example, OpDef, ShapeError, Weight
from dsl.tensors import TensorType

MAX_VALUES = 256
"""Largest value per example a generated layer may output: keeps the float64 checks tiny."""
MAX_WEIGHTS = 4096
"""Largest weight count of one generated layer."""


@dataclass(frozen=True)
class Value:
    """Something a layer can read: ``ref`` is how a spec names it (``x``, ``l3``, ``lstm_1[h_n]``).

    ``mask`` is a padding-mask input's meaning (``keep`` or ``ignore``), None for any other value.
    ``source`` numbers the item that makes it (-1: a model input); ``trained`` says whether a trainable
    weight lies upstream, so it must reach an output. ``computed``: integers an op computed (``add`` of ids),
    which no table may read.
    """

    ref: str
    type: TensorType
    mask: str | None = None
    source: int = -1
    trained: bool = False
    computed: bool = False


@dataclass(frozen=True)
class Layer:
    """One op layer that fits: its arguments as a spec writes them, what it reads and gives."""

    op: str
    args: dict
    reads: tuple[Value, ...]
    outputs: tuple[TensorType, ...]
    weights: dict[str, Weight] = field(default_factory=dict)

    @property
    def output(self) -> TensorType:
        return self.outputs[0]

    @property
    def trainable(self) -> bool:
        return any(w.trainable for w in self.weights.values())


def fit(op: OpDef, args: dict, reads: tuple[Value, ...]) -> Layer | None:
    """The layer ``op: args`` reading ``reads``, or None where its schema or shape rule refuses it (or it is not
    tiny). Any other exception is a bug in the op and propagates."""
    found = _fit_types(op.name, _frozen(args), tuple(v.type for v in reads))
    return None if found is None else Layer(op.name, dict(args), reads, *found)


@functools.cache
def _fit_types(name: str, args: tuple, types: tuple[TensorType, ...]):
    """``fit`` by types alone, cached: a spec asks the same question of every op at each item."""
    op = OPS[name]
    try:
        params = op.params.model_validate(_thawed(args))
        params, out = op.infer(params, *types)
    except (ValidationError, ShapeError):
        return None
    outputs = out if isinstance(out, tuple) else (out,)
    weights = op.weights(params)
    if any(o.numel > MAX_VALUES or o.numel == 0 for o in outputs):
        return None
    if sum(math.prod(w.shape) for w in weights.values()) > MAX_WEIGHTS:
        return None
    return outputs, weights


def _frozen(value):
    """A hashable copy of arguments: mappings as sorted item tuples, lists as ('list', items)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(_frozen(v) for v in value))
    return value


def _thawed(value):
    if isinstance(value, tuple) and value[:1] == ("list",):
        return [_thawed(v) for v in value[1]]
    if isinstance(value, tuple):
        return {k: _thawed(v) for k, v in value}
    return value


def read_tuples(example: Example, first: Value, pool: list[Value]) -> list[tuple[Value, ...]]:
    """The inputs a layer shaped as ``example`` could read: ``first`` first, a declared mask in each mask slot,
    and each other slot one value of the pool (the same in every such slot: self-attention, ``add(x, skip)``)."""
    count = len(example.inputs)
    if count == 1:
        return [(first,)]
    masks = [v for v in pool if v.mask]
    others = [v for v in pool if not v.mask]
    tuples = {}
    for other in others:
        for mask in masks or [None]:
            slots = (first, *(mask if i in example.masks else other for i in range(1, count)))
            if None not in slots:
                tuples[slots] = None
    return list(tuples)


def with_mask_meaning(example: Example, reads: tuple[Value, ...]) -> dict:
    """The example's arguments, ``mask`` set to what the declared mask input it reads means."""
    args = dict(example.params)
    meanings = {reads[i].mask for i in example.masks}
    if len(meanings) == 1 and "mask" in args:
        args["mask"] = meanings.pop()
    return args


def fits(op: OpDef, first: Value, pool: list[Value]) -> list[Layer]:
    """Every (example, inputs) of ``op`` that fits with ``first`` as its first input; where none does, the
    examples with a shape-like argument adapted to ``first`` (reshape's shape, unflatten's sizes)."""
    if first.mask or (op.id_bound and first.computed):
        return []
    layers = [replace(layer, reads=(first,)) for layer in _single_fits(op.name, first.type)]
    for example in op.examples:
        for reads in read_tuples(example, first, pool) if len(example.inputs) > 1 else ():
            layer = fit(op, with_mask_meaning(example, reads), reads)
            if layer is not None:
                layers.append(layer)
    return layers or [replace(layer, reads=(first,)) for layer in _adapted(op.name, first.type)]


@functools.cache
def _single_fits(name: str, kind: TensorType) -> tuple[Layer, ...]:
    """The one-input examples of op ``name`` that fit a value of type ``kind`` (cached: specs repeat types)."""
    value = Value("", kind)
    found = (fit(OPS[name], dict(e.params), (value,)) for e in OPS[name].examples if len(e.inputs) == 1)
    return tuple(layer for layer in found if layer is not None)


@functools.cache
def _adapted(name: str, kind: TensorType) -> tuple[Layer, ...]:
    """One-input examples whose integer-list arguments, replaced by a list derived from the shape, fit."""
    value, layers = Value("", kind), []
    for example in OPS[name].examples:
        keys = [k for k, v in example.params.items() if isinstance(v, list | tuple)]
        for key in keys if len(example.inputs) == 1 else ():
            for sizes in shape_lists(kind):
                layer = fit(OPS[name], {**example.params, key: sizes}, (value,))
                if layer is not None:
                    layers.append(layer)
    return tuple(layers)


def catalog_fits(first: Value, pool: list[Value], single_input: bool = False) -> dict[str, list[Layer]]:
    """Op name -> the layers of that op that fit at this point (ops with none left out)."""
    found = {}
    for name, op in OPS.items():
        if single_input and op.arity[0] > 1:
            continue
        layers = fits(op, first, pool if not single_input else [first])
        if layers:
            found[name] = layers
    return found


PROBES = (TensorType((2, 6, 6)), TensorType((6,)), TensorType((4, 8)), TensorType((3, 4)), TensorType((4, 1)),
          TensorType((5,), "int64"), TensorType((), "int64", 6), TensorType((3,), "int64", (3, 4, 5)), TensorType(()))
"""Typical values of the generated specs: images, vectors, sequences, a size-1 axis, ids, ids per field,
scalars."""


def probe_fits() -> Counter:
    """Op name -> how many of the probes it fits (with a padding mask beside each, for the ops that read one)."""
    fitting = Counter()
    for kind in PROBES:
        value = Value("probe", kind)
        mask = Value("mask", TensorType(kind.shape[:1] or (1,), "int64"), "keep")
        fitting.update(list(catalog_fits(value, [value, mask])))
    return fitting


def op_weights() -> dict[str, int]:
    """How often to draw each op where it fits: more where it fits fewer probes (attention fits sequences only,
    relu everything), so that no op is drowned by the generic ones; by the square root of the ratio, so that
    the specific ones do not drown the generic ones either."""
    fitting = probe_fits()
    return {name: round(2 * math.sqrt(len(PROBES) / max(fitting[name], 1))) for name in OPS}


def shape_lists(kind: TensorType) -> list[list[int]]:
    """Integer lists a shape-like argument could take at ``kind`` (reshape's shape, unflatten's sizes,
    layer_norm's normalized_shape, an adaptive pool's output size): derived from the shape, op-blind."""
    shape = list(kind.shape)
    lists = [shape, shape[::-1], [-1], [kind.numel]]
    lists += [shape[i:] for i in range(1, len(shape))]
    for size in {kind.numel, *shape}:
        lists += [[d, size // d] for d in range(2, size) if size % d == 0][:3]
    lists.append(list(range(len(shape) + 1)))  # a permutation of the batched dims
    return [x for x in lists if x]
