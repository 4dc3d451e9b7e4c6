from torch import nn

from dsl import Node


def flatten(node: Node) -> nn.Module:
    return nn.Flatten(node.params.start_dim, node.params.end_dim)


def unflatten(node: Node) -> nn.Module:
    return nn.Unflatten(node.params.dim, tuple(node.params.unflattened_size))


LOWERINGS = {"flatten": flatten, "unflatten": unflatten}
