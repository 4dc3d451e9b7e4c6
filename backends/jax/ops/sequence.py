"""Sequence utilities over batch-first [N, T, ...] arrays, which the layout plan never transposes.

``channels_first`` throughout: a 3-D sequence is held as it is, and a 4-D input
(position_embedding reads any tensor's dim 1) is restored to torch's order first.
A padding mask is read as ``keep`` (True = a real step) throughout.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from dsl import Node

from ...positions import sinusoidal_table
from .base import JaxOp


class PositionEmbedding(nn.Module):
    """Rows 0..T-1 of a table initialized N(0, 1) (torch.nn.Embedding's init), expanded over the batch."""

    num_embeddings: int
    features: int

    @nn.compact
    def __call__(self, x):
        table = self.param("embedding", jax.nn.initializers.normal(1.0), (self.num_embeddings, self.features))
        return jnp.broadcast_to(table[: x.shape[1]], (x.shape[0], x.shape[1], self.features))


def _position_embedding(node: Node, x, *, train: bool):
    p = node.params
    return PositionEmbedding(p.num_embeddings, p.embedding_dim, name=node.local_name)(x)


def _sinusoidal_position(node: Node, x, *, train: bool):
    """The float64 table's first T rows, rounded to x's dtype once, as the torch buffer is."""
    table = sinusoidal_table(node.params.max_len, x.shape[-1])[: x.shape[1]]
    return x + jnp.asarray(np.asarray(table, x.dtype))


def keep_mask(mask, reading: str):
    """A padding mask [N, T] as bools, True at real steps, from either reading (``dsl/ops/sequence.py``)."""
    return mask != 0 if reading == "keep" else mask == 0


def _mean(x, keep):
    weights = keep.astype(x.dtype)[..., None]
    return (x * weights).sum(1) / jnp.maximum(weights.sum(1), 1)


def _last(x, keep):
    """The last real step: the largest position whose mask is set; step 0 for a row with none (as torch's)."""
    last = jnp.argmax(jnp.arange(x.shape[1]) * keep, axis=1)
    return x[jnp.arange(x.shape[0]), last]


def _max(x, keep):
    """Gathers the first maximum (argmax), so ties send the gradient where torch's lowering does."""
    first = jnp.argmax(jnp.where(keep[..., None], x, -jnp.inf), axis=1)[:, None]
    return jnp.where(keep.any(1, keepdims=True), jnp.take_along_axis(x, first, axis=1)[:, 0], 0)


POOLS = {"mean": _mean, "last": _last, "max": _max}


def _sequence_pool(node: Node, x, mask=None, *, train: bool):
    p = node.params
    if p.mode == "first":
        return x[:, 0]
    keep = jnp.ones(x.shape[:2], bool) if mask is None else keep_mask(mask, p.mask)
    return POOLS[p.mode](x, keep)


def _table_to_flax(canonical, received):
    return {"params": {"embedding": canonical["weight"]}}


def _table_from_flax(variables, received):
    return {"weight": variables["params"]["embedding"]}


LOWERINGS = {
    "position_embedding": JaxOp(_position_embedding, "channels_first", _table_to_flax, _table_from_flax),
    "sinusoidal_position": JaxOp(_sinusoidal_position, "channels_first"),
    "sequence_pool": JaxOp(_sequence_pool, "channels_first"),
}
