"""``sum`` and ``mean`` along one dim, counted as torch counts it: channels-first, as ``select`` is."""

import jax.numpy as jnp

from .base import JaxOp


def _reduction(fn) -> JaxOp:
    return JaxOp(lambda node, x, *, train: fn(x, axis=node.params.dim, keepdims=node.params.keepdim),
                 "channels_first")


LOWERINGS = {"sum": _reduction(jnp.sum), "mean": _reduction(jnp.mean)}
