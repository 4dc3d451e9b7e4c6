import torch
from torch import nn

from dsl import Node


def flatten(node: Node) -> nn.Module:
    return nn.Flatten(node.params.start_dim, node.params.end_dim)


def unflatten(node: Node) -> nn.Module:
    return nn.Unflatten(node.params.dim, tuple(node.params.unflattened_size))


class Chunk(nn.Module):
    """``torch.chunk`` as a module (torch.nn has none): a tuple of equal parts."""

    def __init__(self, chunks: int, dim: int):
        super().__init__()
        self.chunks, self.dim = chunks, dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.chunk(x, self.chunks, self.dim)


def chunk(node: Node) -> nn.Module:
    return Chunk(node.params.chunks, node.params.dim)


class Reshape(nn.Module):
    """``x.reshape(N, *shape)`` as a module (torch.nn has none); reshape, not view, so a permuted input works."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    """``x.permute(dims)`` as a module (torch.nn has none); dims include the batch, dim 0, first."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class Select(nn.Module):
    """``torch.select(x, dim, index)`` as a module (torch.nn has none): drops ``dim``."""

    def __init__(self, dim: int, index: int):
        super().__init__()
        self.dim, self.index = dim, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)


class Slice(nn.Module):
    """``x[..., start:end:step]`` along ``dim`` as a module; the bounds arrive resolved (non-negative)."""

    def __init__(self, dim: int, start: int, end: int, step: int):
        super().__init__()
        self.dim, self.part = dim, slice(start, end, step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[(slice(None),) * self.dim + (self.part,)]


class Squeeze(nn.Module):
    """``x.squeeze(dim)`` as a module; the shape rule made sure dim has size 1."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(self.dim)


def slice_(node: Node) -> nn.Module:
    p = node.params
    return Slice(p.dim, p.start, p.end, p.step)


LOWERINGS = {"flatten": flatten, "unflatten": unflatten, "chunk": chunk,
             "reshape": lambda node: Reshape(tuple(node.params.shape)),
             "permute": lambda node: Permute(tuple(node.params.dims)),
             "select": lambda node: Select(node.params.dim, node.params.index), "slice": slice_,
             "squeeze": lambda node: Squeeze(node.params.dim)}
