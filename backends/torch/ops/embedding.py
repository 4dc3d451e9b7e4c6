import itertools

import torch
from torch import nn

from dsl import Node


def embedding(node: Node) -> nn.Module:
    p = node.params
    return nn.Embedding(p.num_embeddings, p.embedding_dim, padding_idx=p.padding_idx, sparse=p.sparse)


def field_offsets(sizes: tuple[int, ...] | None) -> torch.Tensor | None:
    """Row of each field's id 0 in the shared table: 0, v1, v1 + v2, ... (None: one id space, no offsets)."""
    return None if sizes is None else torch.tensor([0, *itertools.accumulate(sizes)][:-1])


class FieldEmbedding(nn.Embedding):
    """nn.Embedding over all fields' ids at once: field f's id i reads row offsets[f] + i (pytorch-fm's
    FeaturesEmbedding). The offsets are a non-persistent buffer, so the state dict is nn.Embedding's ``weight``."""

    def __init__(self, rows: int, dim: int, sizes: tuple[int, ...] | None, sparse: bool = False):
        super().__init__(rows, dim, sparse=sparse)
        self.register_buffer("offsets", field_offsets(sizes), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids if self.offsets is None else ids + self.offsets)


class Bias(FieldEmbedding):
    """A learned scalar per id: nn.Embedding(rows, 1), zeros, read without its last axis."""

    def __init__(self, rows: int, sizes: tuple[int, ...] | None, sparse: bool = False):
        super().__init__(rows, 1, sizes, sparse)
        nn.init.zeros_(self.weight)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids).squeeze(-1)


def field_embedding(node: Node) -> nn.Module:
    p = node.params
    return FieldEmbedding(sum(p.vocab_sizes), p.embedding_dim, p.vocab_sizes, p.sparse)


def bias(node: Node) -> nn.Module:
    p = node.params
    return Bias(p.num_embeddings if p.vocab_sizes is None else sum(p.vocab_sizes), p.vocab_sizes, p.sparse)


LOWERINGS = {"embedding": embedding, "field_embedding": field_embedding, "bias": bias}
