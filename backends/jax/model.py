"""Lowers a ``Graph`` to a native Flax (linen) module, and converts its weights.

Why linen and not nnx: a linen model is a pure ``apply(variables, x)`` over a plain
pytree, which is exactly what a ``jax.jit``-compiled, donated, ``lax.scan``-able
train step and sharding over a device mesh want, with no split/merge per step
(docs/PARITY.md §15 measured graph-mode ``nnx.jit`` at ~0.7 ms extra per step on this
CPU). The variables pytree also maps one-to-one onto the canonical state dict.

The module takes and returns channels-first arrays, like the torch model; inside,
activations are held in the layouts ``layout.py`` plans (NHWC between convolutions
and pools), and the weight converters follow the same plan.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import linen as nn

from dsl import INPUT, Graph

from ..weights import StateDict, check_state_dict
from .layout import CHANNELS_FIRST, convert, plan
from .ops import JAX_OPS


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
        placements = plan(self.graph, JAX_OPS)
        values = {INPUT: (x, CHANNELS_FIRST)}
        captured = {}
        for node in self.graph.nodes:
            placement = placements[node.name]
            inputs = [convert(*values[name], layout) for name, layout in zip(node.inputs, placement.inputs)]
            values[node.name] = (JAX_OPS[node.op].apply(node, *inputs, train=train), placement.output)
            if capture:
                captured[node.name] = convert(*values[node.name], CHANNELS_FIRST)
        output = convert(*values[self.graph.output], CHANNELS_FIRST)
        return (output, captured) if capture else output


def variables_from_state(graph: Graph, state: StateDict) -> dict:
    """Canonical (torch) weights -> Flax variables ``{'params': {layer: {...}}}``."""
    check_state_dict(graph, state)
    placements = plan(graph, JAX_OPS)
    variables: dict[str, dict] = {}
    for node in graph.nodes:
        layer = {suffix: np.asarray(state[f"{node.name}.{suffix}"]) for suffix in node.weights}
        for collection, entries in JAX_OPS[node.op].to_flax(layer, placements[node.name].inputs).items():
            variables.setdefault(collection, {})[node.name] = {k: np.asarray(v) for k, v in entries.items()}
    variables.setdefault("params", {})
    return variables


def state_from_variables(graph: Graph, variables) -> StateDict:
    """Flax variables (or gradients shaped like them) -> canonical names and layouts."""
    placements = plan(graph, JAX_OPS)
    state = {}
    for node in graph.nodes:
        if not node.weights:
            continue
        layer = {c: jax.device_get(v[node.name]) for c, v in variables.items() if node.name in v}
        for suffix, value in JAX_OPS[node.op].from_flax(layer, placements[node.name].inputs).items():
            state[f"{node.name}.{suffix}"] = np.array(value, order="C")  # a copy: device buffers are donated
    return state
