"""``sum`` and ``mean`` along one dim of the batched tensor, as modules (torch.nn has none)."""

import torch
from torch import nn


class Reduce(nn.Module):
    """``torch.sum`` or ``torch.mean`` along ``dim``."""

    def __init__(self, fn, dim: int, keepdim: bool):
        super().__init__()
        self.fn, self.dim, self.keepdim = fn, dim, keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, self.dim, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"{self.fn.__name__}, dim={self.dim}, keepdim={self.keepdim}"


LOWERINGS = {
    "sum": lambda node: Reduce(torch.sum, node.params.dim, node.params.keepdim),
    "mean": lambda node: Reduce(torch.mean, node.params.dim, node.params.keepdim),
}
