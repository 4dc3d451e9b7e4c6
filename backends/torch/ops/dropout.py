from torch import nn

from dsl import Node


def dropout(node: Node) -> nn.Module:
    return nn.Dropout(node.params.p)


LOWERINGS = {"dropout": dropout}
