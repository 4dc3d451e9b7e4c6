import jax
import jax.numpy as jnp

from dsl import Node

from ..layout import CHANNELS_FIRST, CHANNELS_LAST, Placement, flat_hwc
from .base import JaxOp


def _flatten(node: Node, x, *, train: bool):
    """A reshape: the plan hands this op NCHW, or NHWC when it may keep (H, W, C) order."""
    start, end = node.params.start_dim, node.params.end_dim
    return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])


def _place(node: Node, layouts, types) -> Placement:
    """Flattens NHWC as it is when the ``flatten_channels_last`` pass allows it, else in (C, H, W) order."""
    (source,), (source_type,) = layouts, types
    if "flatten_hwc" in node.hints and source == CHANNELS_LAST:
        return Placement((CHANNELS_LAST,), flat_hwc(source_type.shape))
    return Placement((CHANNELS_FIRST,), CHANNELS_FIRST)


def _unflatten(node: Node, x, *, train: bool):
    dim = node.params.dim
    return x.reshape(x.shape[:dim] + tuple(node.params.unflattened_size) + x.shape[dim + 1:])


def _chunk(node: Node, x, *, train: bool):
    """A tuple of equal parts (jnp.split), as torch.chunk returns them for an even split."""
    return tuple(jnp.split(x, node.params.chunks, axis=node.params.dim))


def _reshape(node: Node, x, *, train: bool):
    """Channels-first, so the values are read in torch's (C, H, W) order (docs/PARITY.md §4, the flatten trap)."""
    return x.reshape((x.shape[0], *node.params.shape))


def _permute(node: Node, x, *, train: bool):
    return jnp.transpose(x, node.params.dims)


def _select(node: Node, x, *, train: bool):
    """Channels-first, so ``dim`` counts as torch's does even after channels-last convolutions."""
    return jnp.take(x, node.params.index, axis=node.params.dim)


def _slice(node: Node, x, *, train: bool):
    p = node.params
    return jax.lax.slice_in_dim(x, p.start, p.end, p.step, axis=p.dim)


LOWERINGS = {"flatten": JaxOp(_flatten, "channels_first", place=_place),
             "chunk": JaxOp(_chunk, "channels_first"),
             "unflatten": JaxOp(_unflatten, "channels_first"),
             "reshape": JaxOp(_reshape, "channels_first"),
             "permute": JaxOp(_permute, "channels_first"),
             "select": JaxOp(_select, "channels_first"),
             "slice": JaxOp(_slice, "channels_first"),
             "squeeze": JaxOp(lambda node, x, *, train: jnp.squeeze(x, node.params.dim), "channels_first")}
