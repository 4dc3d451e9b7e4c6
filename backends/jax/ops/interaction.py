"""Recommender interactions: ``dot`` and ``fm_interaction`` (dsl/ops/interaction.py), torch's formulas.

Channels-first: both count the last axis of the canonical tensor, which a 4-D input
held NHWC would have moved.
"""

import jax.numpy as jnp

from dsl import Node

from .base import JaxOp


def _dot(node: Node, a, b, *, train: bool):
    return jnp.sum(a * b, axis=-1, keepdims=node.params.keepdim)


def _fm_interaction(node: Node, v, *, train: bool):
    """½((Σ_f v)² - Σ_f v²) over the fields (axis 1), then summed over D to [N, 1] unless reduce is false."""
    pairs = 0.5 * (jnp.sum(v, axis=1) ** 2 - jnp.sum(v ** 2, axis=1))
    return jnp.sum(pairs, axis=1, keepdims=True) if node.params.reduce else pairs


LOWERINGS = {
    "dot": JaxOp(_dot, "channels_first"),
    "fm_interaction": JaxOp(_fm_interaction, "channels_first"),
}
