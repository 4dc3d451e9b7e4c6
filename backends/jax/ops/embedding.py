import jax
import jax.numpy as jnp
from flax import linen as nn

from dsl import Node

from .base import JaxOp


class Embedding(nn.Module):
    """torch.nn.Embedding: a lookup whose ``padding_idx`` row is held out of the gradient.

    Flax's ``Embed`` has no padding row and initializes with std 1/√dim (torch: 1), so
    the table is a plain param here, initialized as torch does.
    """

    num_embeddings: int
    features: int
    padding_idx: int | None = None

    @nn.compact
    def __call__(self, ids):
        table = self.param("embedding", jax.nn.initializers.normal(1.0), (self.num_embeddings, self.features))
        if self.padding_idx is not None:
            frozen = jnp.arange(self.num_embeddings)[:, None] == self.padding_idx
            table = jnp.where(frozen, jax.lax.stop_gradient(table), table)
        return jnp.take(table, ids, axis=0)


def _embedding(node: Node, ids, *, train: bool):
    p = node.params
    return Embedding(p.num_embeddings, p.embedding_dim, p.padding_idx, name=node.local_name)(ids)


LOWERINGS = {
    "embedding": JaxOp(_embedding, "features", lambda w, received: {"params": {"embedding": w["weight"]}},
                       lambda v, received: {"weight": v["params"]["embedding"]}),
}
