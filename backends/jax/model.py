"""Lowers a ``Graph`` to a native Flax (linen) module, and converts its weights.

Why linen and not nnx: a linen model is a pure ``apply(variables, x)`` over a plain
pytree, which is exactly what a ``jax.jit``-compiled, donated, ``lax.scan``-able
train step and sharding over a device mesh want, with no split/merge per step
(PARITY.md §15 measured graph-mode ``nnx.jit`` at ~0.7 ms extra per step on this
CPU). The variables pytree also maps one-to-one onto the canonical state dict.

The module takes and returns channels-first arrays and flattens in (C, H, W) order,
like the torch model; inside, 4-D activations stay channels-last between ops that
want it (see ``ops/base.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from flax import linen as nn

from dsl import INPUT, Graph

from ..weights import StateDict, check_state_dict
from .ops import JAX_OPS

_TO_LAST, _TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)


@dataclass(frozen=True)
class _Value:
    """An activation and the layout it is held in (only 4-D arrays are ever channels-last)."""

    array: jax.Array
    layout: str

    def to(self, layout: str) -> _Value:
        if layout == "any" or layout == self.layout or self.array.ndim != 4:
            return self
        return _Value(self.array.transpose(_TO_LAST if layout == "channels_last" else _TO_FIRST), layout)


class FlaxModel(nn.Module):
    """The spec's model as a linen module: ``apply(variables, x, train=False)``.

    Example:
        >>> model = FlaxModel(graph)
        >>> variables = variables_from_state(graph, init_weights(graph, seed=0))
        >>> model.apply(variables, np.zeros((2, 1, 28, 28), np.float32)).shape
        (2, 10)
    """

    graph: Graph

    @nn.compact
    def __call__(self, x, *, train: bool = False, capture: bool = False):
        """Runs the graph; with ``capture``, also returns every node's output (channels-first)."""
        values = {INPUT: _Value(x, "channels_first")}
        captured = {}
        for node in self.graph.nodes:
            op = JAX_OPS[node.op]
            inputs = [values[name].to(op.layout) for name in node.inputs]
            layout = inputs[0].layout if op.layout == "any" else op.layout
            values[node.name] = _Value(op.apply(node, *(v.array for v in inputs), train=train), layout)
            if capture:
                captured[node.name] = values[node.name].to("channels_first").array
        output = values[self.graph.output].to("channels_first").array
        return (output, captured) if capture else output


def variables_from_state(graph: Graph, state: StateDict) -> dict:
    """Canonical (torch) weights -> Flax variables ``{'params': {layer: {...}}}``."""
    check_state_dict(graph, state)
    variables: dict[str, dict] = {}
    for node in graph.nodes:
        layer = {suffix: np.asarray(state[f"{node.name}.{suffix}"]) for suffix in node.weights}
        for collection, entries in JAX_OPS[node.op].to_flax(layer).items():
            variables.setdefault(collection, {})[node.name] = {k: np.asarray(v) for k, v in entries.items()}
    variables.setdefault("params", {})
    return variables


def state_from_variables(graph: Graph, variables) -> StateDict:
    """Flax variables (or gradients shaped like them) -> canonical names and layouts."""
    state = {}
    for node in graph.nodes:
        if not node.weights:
            continue
        layer = {c: jax.device_get(v[node.name]) for c, v in variables.items() if node.name in v}
        for suffix, value in JAX_OPS[node.op].from_flax(layer).items():
            state[f"{node.name}.{suffix}"] = np.ascontiguousarray(value)
    return state
