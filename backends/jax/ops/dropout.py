from flax import linen as nn

from dsl import Node

from .base import JaxOp


def _dropout(node: Node, x, *, train: bool):
    """Active only when training; needs the 'dropout' rng then, as linen's Dropout does."""
    return nn.Dropout(node.params.p, deterministic=not train, name=node.local_name)(x)


def _dropout2d(node: Node, x, *, train: bool):
    """Planned channels_last, so an NHWC input: one draw per (sample, channel), broadcast over H and W."""
    return nn.Dropout(node.params.p, broadcast_dims=(1, 2), deterministic=not train, name=node.local_name)(x)


LOWERINGS = {"dropout": JaxOp(_dropout, "any"), "dropout2d": JaxOp(_dropout2d, "channels_last")}
