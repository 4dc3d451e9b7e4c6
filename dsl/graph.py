"""The typed graph every backend lowers: named nodes with inferred shapes.

A spec's ``model:`` list becomes a chain, but nodes name their inputs, so graphs
with skip connections and several inputs fit the same structure. Unnamed layers are
named ``{op}_{k}``, k counting that op's layers from 1 in file order (the second
``relu`` is ``relu_2``), so canonical weight names never depend on anything but
the spec.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .errors import SpecSchemaError, SpecShapeError
from .ops import OPS, ShapeError, Weight
from .schema import Spec
from .tensors import TensorType, format_shape
from .types import Params

INPUT = "input"
MAX_ELEMENTS = 2**31  # per example and per tensor; more is refused as absurd
MAX_PARAMETERS = 2**32


@dataclass(frozen=True)
class Node:
    """One layer: its op, resolved arguments, inputs (by name) and output type.

    ``hints`` are set by optimization passes (``dsl/passes.py``) to pick a faster
    lowering of the same function, e.g. ``blocks`` for a max-pool whose windows tile
    the input; lowerings that do not know a hint ignore it.
    """

    name: str
    op: str
    params: Params
    inputs: tuple[str, ...]
    output: TensorType
    hints: tuple[str, ...] = ()

    @property
    def weights(self) -> dict[str, Weight]:
        """Canonical state-dict entries of this layer, keyed by suffix (``weight``, ``bias``)."""
        return OPS[self.op].weights(self.params)

    @property
    def num_parameters(self) -> int:
        return sum(TensorType(w.shape).numel for w in self.weights.values() if w.trainable)


@dataclass(frozen=True)
class Graph:
    """A model: named inputs, nodes in execution order, and the node that is its output."""

    name: str
    inputs: tuple[tuple[str, TensorType], ...]
    nodes: tuple[Node, ...]
    output: str

    @property
    def input_types(self) -> dict[str, TensorType]:
        return dict(self.inputs)

    @property
    def output_type(self) -> TensorType:
        return self.node(self.output).output

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def state_dict_spec(self) -> dict[str, Weight]:
        """Every canonical tensor (torch ``state_dict`` key -> shape and init), in order."""
        return {f"{n.name}.{suffix}": w for n in self.nodes for suffix, w in n.weights.items()}

    @property
    def num_parameters(self) -> int:
        return sum(n.num_parameters for n in self.nodes)


def build_graph(spec: Spec) -> Graph:
    """Names the layers and infers every shape; raises a located ``SpecError``."""
    source = spec.source
    names = _layer_names(spec)
    current = TensorType(tuple(spec.input.shape), spec.input.dtype)
    if current.numel > MAX_ELEMENTS:  # each dimension is in range, their product may not be
        raise SpecShapeError(f"input.shape {format_shape(current.shape)} has {current.numel:,} values per example, "
                             f"more than {MAX_ELEMENTS:,}", source.locate(("input", "shape")))
    previous = INPUT
    nodes = []
    parameters = 0
    for index, (layer, name) in enumerate(zip(spec.model, names)):
        op = OPS[layer.op]
        path = layer_path(source, index, layer.op)
        try:
            params, output = op.infer(layer.params, current)
        except ShapeError as err:
            at = path + (err.param,) if err.param and err.param in layer.params.model_fields_set else path
            raise SpecShapeError(f"{name} ({layer.op}): {err}", source.locate(at)) from None
        if output.numel > MAX_ELEMENTS:
            raise SpecShapeError(f"{name} ({layer.op}) outputs {format_shape(output.shape)}, "
                                 f"more than {MAX_ELEMENTS:,} values per example", source.locate(path))
        node = Node(name, layer.op, params, (previous,), output)
        parameters += node.num_parameters
        if parameters > MAX_PARAMETERS:
            raise SpecShapeError(f"{name} ({layer.op}) brings the model to {parameters:,} parameters, more than "
                                 f"the limit of {MAX_PARAMETERS:,}", source.locate(path))
        nodes.append(node)
        current, previous = output, name
    return Graph(spec.name, ((INPUT, TensorType(tuple(spec.input.shape), spec.input.dtype)),), tuple(nodes), previous)


def layer_path(source, index: int, op: str) -> tuple:
    """The YAML path of layer ``index``: its op key (``- conv2d: {...}``) or the bare op name (``- relu``)."""
    return ("model", index, op) if _is_mapping(source, index) else ("model", index)


def _is_mapping(source, index: int) -> bool:
    return any(len(p) == 3 and p[:2] == ("model", index) for p in source.keys)


def _layer_names(spec: Spec) -> list[str]:
    given = Counter(layer.name for layer in spec.model if layer.name)
    first: dict[str, int] = {}  # layer name -> index of the layer that gave it first
    seen: Counter[str] = Counter()
    names = []
    for index, layer in enumerate(spec.model):
        seen[layer.op] += 1
        if layer.name in first:  # reported at the repeat, as a compiler reports a redefinition
            earlier = spec.source.keys.get(("model", first[layer.name], spec.model[first[layer.name]].op, "name"))
            raise SpecSchemaError(f"layer name '{layer.name}' is used more than once"
                                  + (f" (first at line {earlier.line})" if earlier else ""),
                                  spec.source.locate(("model", index, layer.op, "name")))
        if layer.name:
            first[layer.name] = index
        automatic = f"{layer.op}_{seen[layer.op]}"
        if not layer.name and automatic in given:
            raise SpecSchemaError(f"'{automatic}' is both a layer's name and the automatic name of "
                                  f"{layer.op} layer {seen[layer.op]}; rename one or name both",
                                  spec.source.locate(("model", index)))
        names.append(layer.name or automatic)
    return names
