from torch import nn

from dsl import Node


def linear(node: Node) -> nn.Module:
    p = node.params
    return nn.Linear(p.in_features, p.out_features, bias=p.bias)


def identity(node: Node) -> nn.Module:
    return nn.Identity()


LOWERINGS = {"linear": linear, "identity": identity}
