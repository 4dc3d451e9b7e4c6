"""Dropout: linen's ``nn.Dropout`` exactly (same mask from the same rng), its mask drawn by ``threefry.bernoulli``.

Every JAX lowering that drops out (``dropout``, ``dropout2d``, attention, the
recurrent layers, the Transformer layers) uses ``Dropout`` from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from dsl import Node

from .. import threefry
from .base import JaxOp


class Dropout(nn.Module):
    """``flax.linen.Dropout`` (rate, broadcast_dims, deterministic, the 'dropout' rng) with the fused draw."""

    rate: float
    broadcast_dims: Sequence[int] = ()
    deterministic: bool = False

    @nn.compact
    def __call__(self, inputs):
        if self.rate == 0.0 or self.deterministic:
            return inputs
        if self.rate == 1.0:  # linen's: no division by a keep probability of 0
            return jnp.zeros_like(inputs)
        keep = 1.0 - self.rate
        shape = tuple(1 if d in self.broadcast_dims else n for d, n in enumerate(inputs.shape))
        mask = jnp.broadcast_to(threefry.bernoulli(self.make_rng("dropout"), keep, shape), inputs.shape)
        return jax.lax.select(mask, inputs / keep, jnp.zeros_like(inputs))


def _dropout(node: Node, x, *, train: bool):
    """Active only when training; needs the 'dropout' rng then, as linen's Dropout does."""
    return Dropout(node.params.p, deterministic=not train, name=node.local_name)(x)


def _dropout2d(node: Node, x, *, train: bool):
    """Planned channels_last, so an NHWC input: one draw per (sample, channel), broadcast over H and W."""
    return Dropout(node.params.p, broadcast_dims=(1, 2), deterministic=not train, name=node.local_name)(x)


LOWERINGS = {"dropout": JaxOp(_dropout, "any"), "dropout2d": JaxOp(_dropout2d, "channels_last")}
