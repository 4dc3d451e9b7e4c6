import itertools

import jax
import jax.numpy as jnp
from flax import linen as nn

from dsl import Node

from .base import TOUCHED, JaxOp


class Embedding(nn.Module):
    """torch.nn.Embedding: a lookup whose ``padding_idx`` row is held out of the gradient.

    Flax's ``Embed`` has no padding row and initializes with std 1/√dim (torch: 1), so
    the table is a plain param here, initialized as torch does. A ``sparse`` table
    also reports the rows it looked up in the ``TOUCHED`` collection, where the train
    step makes it mutable (``sow`` does nothing elsewhere): the rows torch's sparse
    gradient holds, for ``sparse_adam``.
    """

    num_embeddings: int
    features: int
    padding_idx: int | None = None
    sparse: bool = False

    @nn.compact
    def __call__(self, ids):
        table = self.param("embedding", jax.nn.initializers.normal(1.0), (self.num_embeddings, self.features))
        if self.padding_idx is not None:
            frozen = jnp.arange(self.num_embeddings)[:, None] == self.padding_idx
            table = jnp.where(frozen, jax.lax.stop_gradient(table), table)
        if self.sparse:
            self.sow(TOUCHED, "embedding", looked_up(ids, self.num_embeddings, self.padding_idx),
                     reduce_fn=jnp.logical_or, init_fn=lambda: jnp.zeros(self.num_embeddings, bool))
        return jnp.take(table, ids, axis=0)


def looked_up(ids, rows: int, padding_idx: int | None = None):
    """A [rows] mask of the rows ``ids`` names, ``padding_idx`` left out: the rows of torch's sparse gradient
    (its backward drops the padding ids; a row named twice is one row, its gradients summed)."""
    mask = jnp.zeros(rows, bool).at[ids.reshape(-1)].set(True)
    return mask if padding_idx is None else mask.at[padding_idx].set(False)


def _embedding(node: Node, ids, *, train: bool):
    p = node.params
    return Embedding(p.num_embeddings, p.embedding_dim, p.padding_idx, p.sparse, name=node.local_name)(ids)


class FieldTable(nn.Module):
    """One table for every field: field f's id i reads row offsets[f] + i (torch's FieldEmbedding); the offsets are
    a constant of the module, not a variable, as they are a non-persistent buffer in torch. A ``sparse`` table
    reports the rows it looked up, offsets added, as ``Embedding`` does."""

    rows: int
    features: int
    sizes: tuple[int, ...] | None
    table_init: object = jax.nn.initializers.normal(1.0)
    sparse: bool = False

    @nn.compact
    def __call__(self, ids):
        table = self.param("embedding", self.table_init, (self.rows, self.features))
        if self.sizes is not None:
            ids = ids + jnp.asarray([0, *itertools.accumulate(self.sizes)][:-1], ids.dtype)
        if self.sparse:
            self.sow(TOUCHED, "embedding", looked_up(ids, self.rows), reduce_fn=jnp.logical_or,
                     init_fn=lambda: jnp.zeros(self.rows, bool))
        return jnp.take(table, ids, axis=0)


def _field_embedding(node: Node, ids, *, train: bool):
    p = node.params
    return FieldTable(sum(p.vocab_sizes), p.embedding_dim, p.vocab_sizes, sparse=p.sparse, name=node.local_name)(ids)


def _bias(node: Node, ids, *, train: bool):
    """A (rows, 1) table of zeros read without its last axis (torch's nn.Embedding(rows, 1))."""
    p = node.params
    rows = p.num_embeddings if p.vocab_sizes is None else sum(p.vocab_sizes)
    return FieldTable(rows, 1, p.vocab_sizes, jax.nn.initializers.zeros, p.sparse, name=node.local_name)(ids)[..., 0]


def _table(apply) -> JaxOp:
    """A lowering whose one weight is torch's ``weight`` table, Flax's ``embedding`` param, in the same layout."""
    return JaxOp(apply, "features", lambda w, received: {"params": {"embedding": w["weight"]}},
                 lambda v, received: {"weight": v["params"]["embedding"]})


LOWERINGS = {
    "embedding": _table(_embedding),
    "field_embedding": _table(_field_embedding),
    "bias": _table(_bias),
}
