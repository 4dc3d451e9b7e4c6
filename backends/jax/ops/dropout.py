from flax import linen as nn

from dsl import Node

from .base import JaxOp


def _dropout(node: Node, x, *, train: bool):
    """Active only when training; needs the 'dropout' rng then, as linen's Dropout does."""
    return nn.Dropout(node.params.p, deterministic=not train, name=node.local_name)(x)


LOWERINGS = {"dropout": JaxOp(_dropout, "any")}
