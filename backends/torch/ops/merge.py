"""Merge ops as tiny modules, so every node stays one ``call_module`` (forward hooks capture it for ``dslc check``)."""

import functools
import operator

import torch
from torch import nn


class Add(nn.Module):
    """Sum of the inputs, left to right (as ``a + b + c``)."""

    def forward(self, *inputs):
        return functools.reduce(operator.add, inputs)


class Multiply(nn.Module):
    """Product of the inputs, left to right."""

    def forward(self, *inputs):
        return functools.reduce(operator.mul, inputs)


class Concat(nn.Module):
    """``torch.cat`` along ``dim`` of the batched tensor."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *inputs):
        return torch.cat(inputs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


LOWERINGS = {
    "add": lambda node: Add(),
    "multiply": lambda node: Multiply(),
    "concat": lambda node: Concat(node.params.dim),
}
