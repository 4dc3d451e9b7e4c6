"""Lowers a ``Graph`` to a native Flax (linen) module, and converts its weights.

Why linen and not nnx: a linen model is a pure ``apply(variables, x)`` over a plain
pytree, which is exactly what a ``jax.jit``-compiled, donated, ``lax.scan``-able
train step and sharding over a device mesh want, with no split/merge per step
(docs/PARITY.md §15 measured graph-mode ``nnx.jit`` at ~0.7 ms extra per step on this
CPU). The variables pytree also maps one-to-one onto the canonical state dict.

The module takes and returns channels-first arrays, like the torch model; inside,
activations are held in the layouts ``layout.py`` plans (NHWC between convolutions
and pools), and the weight converters follow the same plan. It takes the model's
inputs positionally in declared order (``apply(variables, *inputs)``) and returns
one array, or a dict by output name when the spec declares several outputs.

Dotted node names nest: the node ``layer1.0.conv1`` runs inside the linen scopes
``layer1`` and then ``0`` (one ``_Scope`` instance per path, called once per node
inside it), so its variables sit at ``{'params': {'layer1': {'0': {'conv1': ...}}}}``,
as a hand-written nested linen model's would.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from flax import linen as nn

from dsl import Graph

from ..weights import StateDict, check_state_dict
from .layout import CHANNELS_FIRST, convert, plan
from .ops import JAX_OPS


class _Scope(nn.Module):
    """One level of a dotted name: calling it runs ``fn`` inside this module's variable scope."""

    @nn.compact
    def __call__(self, fn, *args):
        return fn(*args)


def _in_scopes(scopes: dict, path: tuple[str, ...], fn, *args):
    """Runs ``fn(*args)`` inside the nested scopes ``path``; ``scopes`` caches each path's ``_Scope``.

    A child scope is created inside its parent's call the first time (so linen makes
    it the parent's submodule) and reused after, so every node under ``layer1`` lands
    in one ``layer1`` dict.
    """
    for depth in range(len(path), 0, -1):
        inner, key = fn, path[:depth]

        def fn(*a, inner=inner, key=key):
            if key not in scopes:
                scopes[key] = _Scope(name=key[-1])
            return scopes[key](inner, *a)
    return fn(*args)


class FlaxModel(nn.Module):
    """The spec's model as a linen module: ``apply(variables, x, train=False)``.

    Example:
        >>> model = FlaxModel(graph)
        >>> variables = variables_from_state(graph, init_weights(graph, seed=0))
        >>> model.apply(variables, np.zeros((2, 1, 28, 28), np.float32)).shape
        (2, 10)
    """

    graph: Graph
    replicas: int = 1
    """Data-parallel replicas whose batch shards the ops marked ``per_replica`` (BatchNorm) treat separately:
    ``np.array_split(batch, replicas)``, as torch DDP's ranks see it (``JaxTarget`` sets it)."""

    @nn.compact
    def __call__(self, *inputs, train: bool = False, capture: bool = False):
        """Runs the graph; with ``capture``, also returns every node's output (channels-first)."""
        placements = plan(self.graph, JAX_OPS)
        if len(inputs) != len(self.graph.inputs):
            raise TypeError(f"model '{self.graph.name}' takes {len(self.graph.inputs)} inputs "
                            f"({', '.join(n for n, _ in self.graph.inputs)}), got {len(inputs)}")
        values = {name: (x, CHANNELS_FIRST) for (name, _), x in zip(self.graph.inputs, inputs)}
        captured, scopes = {}, {}
        for node in self.graph.nodes:
            placement = placements[node.name]
            args = [convert(*values[name], layout) for name, layout in zip(node.inputs, placement.inputs)]
            op = JAX_OPS[node.op]
            apply = partial(op.apply, replicas=self.replicas) if op.per_replica else op.apply
            out = _in_scopes(scopes, tuple(node.name.split(".")[:-1]),
                             lambda *a, node=node, apply=apply: apply(node, *a, train=train), *args)
            for value, array in zip(node.value_names, out if node.more else (out,)):
                values[value] = (array, placement.output)
                if capture:
                    captured[value] = convert(array, placement.output, CHANNELS_FIRST)
        outputs = {name: convert(*values[value], CHANNELS_FIRST) for name, value in self.graph.outputs}
        output = next(iter(outputs.values())) if len(outputs) == 1 else outputs
        return (output, captured) if capture else output


def variables_from_state(graph: Graph, state: StateDict) -> dict:
    """Canonical (torch) weights -> Flax variables ``{'params': {layer: {...}}}``."""
    check_state_dict(graph, state)
    placements = plan(graph, JAX_OPS)
    variables: dict[str, dict] = {}
    for node in graph.nodes:
        layer = {suffix: np.asarray(state[f"{node.name}.{suffix}"]) for suffix in node.weights}
        for collection, entries in JAX_OPS[node.op].to_flax(layer, placements[node.name].inputs).items():
            tree = variables.setdefault(collection, {})
            for part in node.name.split(".")[:-1]:
                tree = tree.setdefault(part, {})
            tree[node.local_name] = _arrays(entries)
    variables.setdefault("params", {})
    return variables


def _arrays(entries: dict) -> dict:
    """A layer's Flax variables as numpy arrays, nested where its Flax module nests (a Transformer layer's
    ``self_attn``)."""
    return {k: _arrays(v) if isinstance(v, dict) else np.asarray(v) for k, v in entries.items()}


def state_from_variables(graph: Graph, variables) -> StateDict:
    """Flax variables (or gradients shaped like them) -> canonical names and layouts."""
    placements = plan(graph, JAX_OPS)
    state = {}
    for node in graph.nodes:
        if not node.weights:
            continue
        layer = {c: jax.device_get(entry) for c, v in variables.items()
                 if (entry := _get(v, node.name.split("."))) is not None}
        for suffix, value in JAX_OPS[node.op].from_flax(layer, placements[node.name].inputs).items():
            state[f"{node.name}.{suffix}"] = np.array(value, order="C")  # a copy: device buffers are donated
    return state


def _get(tree, path: list[str]):
    """``tree[path[0]][path[1]]...``, or None where the path is absent."""
    for part in path:
        if not hasattr(tree, "get") or part not in tree:
            return None
        tree = tree[part]
    return tree
