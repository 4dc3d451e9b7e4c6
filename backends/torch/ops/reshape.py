from torch import nn

from dsl import Node


def flatten(node: Node) -> nn.Module:
    return nn.Flatten(node.params.start_dim, node.params.end_dim)


LOWERINGS = {"flatten": flatten}
