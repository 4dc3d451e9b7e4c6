"""Sequence utilities as small modules; a padding mask is read as ``keep`` (True = a real step) throughout."""

import torch
from torch import nn

from dsl import Node

from ...positions import sinusoidal_table


class PositionEmbedding(nn.Embedding):
    """nn.Embedding at positions ``arange(T)``, expanded over the batch (Hugging Face BERT's position_embeddings).

    The positions are built per call rather than kept as a buffer, so the
    state_dict is ``{weight}`` exactly, as Hugging Face's (whose ``position_ids``
    buffer is non-persistent).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = super().forward(torch.arange(x.shape[1], device=x.device))
        return rows.expand(x.shape[0], -1, -1)


class SinusoidalPosition(nn.Module):
    """x + pe[:T] (the PyTorch tutorial's PositionalEncoding without dropout); pe is a non-persistent buffer,
    built in float64 and cast with the module (``build_module``'s ``.to(dtype)``)."""

    def __init__(self, max_len: int, features: int):
        super().__init__()
        self.register_buffer("pe", torch.tensor(sinusoidal_table(max_len, features)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1]]


def keep_mask(mask: torch.Tensor, reading: str) -> torch.Tensor:
    """A padding mask [N, T] as bools, True at real steps, from either reading (``dsl/ops/sequence.py``)."""
    return mask != 0 if reading == "keep" else mask == 0


class SequencePool(nn.Module):
    """[N, T, E] -> [N, E] over the real steps; a row with none pools to zeros (``mean``, ``max``) or step 0
    (``last``, as Hugging Face's last-token pooling gives)."""

    def __init__(self, mode: str, reading: str | None):
        super().__init__()
        self.mode, self.reading = mode, reading

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "first":
            return x[:, 0]
        keep = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None \
            else keep_mask(mask, self.reading)
        return getattr(self, self.mode)(x, keep)

    def mean(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        weights = keep.to(x.dtype).unsqueeze(-1)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1)

    def last(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The last real step: the largest position whose mask is set (count - 1 under right padding)."""
        last = (torch.arange(x.shape[1], device=x.device) * keep).argmax(1)
        return x[torch.arange(x.shape[0], device=x.device), last]

    def max(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The first maximum of each feature takes the gradient (argmax), not torch.amax's even split of ties."""
        first = x.masked_fill(~keep.unsqueeze(-1), -torch.inf).argmax(1, keepdim=True)
        return torch.where(keep.any(1, keepdim=True), x.gather(1, first).squeeze(1), 0)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, mask={self.reading}"


def position_embedding(node: Node) -> nn.Module:
    return PositionEmbedding(node.params.num_embeddings, node.params.embedding_dim)


def sinusoidal_position(node: Node) -> nn.Module:
    return SinusoidalPosition(node.params.max_len, node.output.shape[-1])


LOWERINGS = {"position_embedding": position_embedding, "sinusoidal_position": sinusoidal_position,
             "sequence_pool": lambda node: SequencePool(node.params.mode, node.params.mask)}
