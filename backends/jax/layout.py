"""Where each activation lives inside the Flax model, planned before tracing.

The model's inputs and outputs are channels-first, like torch's. Inside, a 4-D
activation may be held channels-last (NHWC), the layout XLA's convolutions and
pools want, and a flatten of an NHWC activation may keep its features in (H, W, C)
order when the layer that reads it is a ``linear`` whose kernel rows are stored in
that order: flattening then costs nothing, where transposing back to (C, H, W)
made the MNIST CNN's backward pass ~40% slower on CPU. The plan is static, so the
weight converters know each linear's row order, and a value is converted only
where the next op cannot take it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl import Graph, Node, TensorType


@dataclass(frozen=True)
class Layout:
    """``channels_first``, ``channels_last`` (4-D only) or ``flat_hwc`` (2-D, features from (H, W, C))."""

    kind: str
    chw: tuple[int, int, int] | None = None  # flat_hwc: the (C, H, W) its features came from


CHANNELS_FIRST = Layout("channels_first")
CHANNELS_LAST = Layout("channels_last")


def flat_hwc(chw: tuple[int, ...]) -> Layout:
    return Layout("flat_hwc", tuple(chw))


@dataclass(frozen=True)
class Placement:
    """A node's inputs as the op receives them (after any conversion) and its output's layout."""

    inputs: tuple[Layout, ...]
    output: Layout


def place(op_layout: str, node: Node, layouts: list[Layout], types: list[TensorType]) -> Placement:
    """The default placement rules for an op declaring ``op_layout`` (see ``JaxOp.layout``)."""
    if op_layout == "any":
        return Placement(tuple(layouts), layouts[0])
    if op_layout == "features":  # reads the last axis only: takes (H, W, C)-ordered features as they are
        received = tuple(x if x.kind == "flat_hwc" else CHANNELS_FIRST for x in layouts)
        return Placement(received, CHANNELS_FIRST)
    if op_layout == "channels_last":
        received = tuple(CHANNELS_LAST if t.rank == 3 else CHANNELS_FIRST for t in types)
        return Placement(received, CHANNELS_LAST if node.output.rank == 3 else CHANNELS_FIRST)
    return Placement((CHANNELS_FIRST,) * len(layouts), CHANNELS_FIRST)


def plan(graph: Graph, jax_ops) -> dict[str, Placement]:
    """Node name -> its placement, for every node in execution order."""
    held = {name: CHANNELS_FIRST for name, _ in graph.inputs}
    types = dict(graph.inputs)
    placements = {}
    for node in graph.nodes:
        op = jax_ops[node.op]
        rule = op.place or (lambda n, layouts, t: place(op.layout, n, layouts, t))
        placements[node.name] = rule(node, [held[i] for i in node.inputs], [types[i] for i in node.inputs])
        for value, kind in zip(node.value_names, (node.output, *node.more)):  # several outputs: one layout
            held[value], types[value] = placements[node.name].output, kind
    return placements


def convert(array, source: Layout, target: Layout):
    """Moves an array between layouts (a no-op when they match)."""
    if source == target:
        return array
    if source.kind == "flat_hwc":
        c, h, w = source.chw
        array = array.reshape(array.shape[0], h, w, c).transpose(0, 3, 1, 2).reshape(array.shape[0], -1)
        return convert(array, CHANNELS_FIRST, target)
    if target.kind == "channels_last":
        return array.transpose(0, 2, 3, 1)
    if target.kind == "channels_first":
        return array.transpose(0, 3, 1, 2)
    raise ValueError(f"cannot convert {source} to {target}")
