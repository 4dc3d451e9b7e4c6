from torch import nn

from dsl import Node


def dropout(node: Node) -> nn.Module:
    return nn.Dropout(node.params.p)


def dropout2d(node: Node) -> nn.Module:
    return nn.Dropout2d(node.params.p)


LOWERINGS = {"dropout": dropout, "dropout2d": dropout2d}
