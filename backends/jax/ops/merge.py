"""Merge ops: element-wise over any one layout; ``concat`` remaps torch's dim when inputs are held NHWC."""

import functools
import operator

import jax.numpy as jnp

from dsl import Node

from ..layout import CHANNELS_FIRST, CHANNELS_LAST, Placement
from .base import JaxOp

NCHW_TO_NHWC = {1: 3, 2: 1, 3: 2}
"""A torch dim of a 4-D batched tensor -> the same axis of its NHWC copy."""


def _place_elementwise(node: Node, layouts, types) -> Placement:
    """Inputs held alike are merged as they are; otherwise all meet channels-last (4-D) or channels-first.

    The first rule keeps a residual block's ``add`` of two NHWC convolutions free of
    transposes; the second converts the one operand that differs (the model's NCHW
    input on a skip connection, say) rather than both.
    """
    if len(set(layouts)) == 1:
        return Placement(tuple(layouts), layouts[0])
    common = CHANNELS_LAST if node.output.rank == 3 else CHANNELS_FIRST
    return Placement((common,) * len(layouts), common)


def _concat(node: Node, *inputs, train: bool):
    """The ``channels_last`` layout hands this op 4-D inputs as NHWC, where torch's dim 1 is axis 3."""
    axis = node.params.dim
    return jnp.concatenate(inputs, axis=NCHW_TO_NHWC[axis] if inputs[0].ndim == 4 else axis)


def _elementwise(fn) -> JaxOp:
    return JaxOp(lambda node, *inputs, train: functools.reduce(fn, inputs), "any", place=_place_elementwise)


LOWERINGS = {
    "add": _elementwise(operator.add),
    "multiply": _elementwise(operator.mul),
    "concat": JaxOp(_concat, "channels_last"),
}
