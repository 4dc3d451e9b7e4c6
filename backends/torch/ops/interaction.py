"""Recommender interactions: ``dot`` and ``fm_interaction`` (dsl/ops/interaction.py), as small modules."""

import torch
from torch import nn


class Dot(nn.Module):
    """``(a * b).sum(-1)``, the row-wise dot product."""

    def __init__(self, keepdim: bool):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(-1, keepdim=self.keepdim)


class FmInteraction(nn.Module):
    """pytorch-fm's FactorizationMachine: ½((Σ_f v)² - Σ_f v²) over fields [N, F, D], summed over D to [N, 1]."""

    def __init__(self, reduce: bool):
        super().__init__()
        self.reduce = reduce

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        pairs = 0.5 * (v.sum(1) ** 2 - (v ** 2).sum(1))
        return pairs.sum(1, keepdim=True) if self.reduce else pairs


LOWERINGS = {
    "dot": lambda node: Dot(node.params.keepdim),
    "fm_interaction": lambda node: FmInteraction(node.params.reduce),
}
