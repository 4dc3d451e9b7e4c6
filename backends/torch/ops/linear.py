import torch
from torch import nn

from dsl import Node


def linear(node: Node) -> nn.Module:
    p = node.params
    return nn.Linear(p.in_features, p.out_features, bias=p.bias)


def identity(node: Node) -> nn.Module:
    return nn.Identity()


class AddBias(nn.Module):
    """x + b with one learned scalar b, zeros (a global bias); its state dict key is ``bias``."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


LOWERINGS = {"linear": linear, "identity": identity, "add_bias": lambda node: AddBias()}
