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


LOWERINGS = {
    "embedding": JaxOp(_embedding, "features", lambda w, received: {"params": {"embedding": w["weight"]}},
                       lambda v, received: {"weight": v["params"]["embedding"]}),
}
