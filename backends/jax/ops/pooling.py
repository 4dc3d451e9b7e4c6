"""torch pooling in channels-last layout (NHWC, or NLC for the 1-D pools).

The 1-D pools receive [N, C, L] (the layout plan holds only 4-D activations
channels-last) and move the channel axis themselves; past that, every function here
works over any number of spatial axes.

``ceil_mode`` becomes extra padding at the end of each axis; the average's divisor is
computed exactly as torch does (declared padding counts when ``count_include_pad``,
the ceil-mode overhang never does; docs/PARITY.md §5).
"""

import functools
import itertools

import jax.numpy as jnp
import numpy as np
from jax import lax

from dsl import Node
from dsl.ops.pooling import pool_output_size

from .base import JaxOp, channels_first_io


def _window(node: Node, x):
    """(window, strides, padding, dilation) for channels-last ``x``, with ceil-mode end padding added."""
    p = node.params
    dilation = getattr(p, "dilation", (1,) * len(p.kernel_size))
    pads = []
    for size, k, s, q, d in zip(x.shape[1:-1], p.kernel_size, p.stride, p.padding, dilation):
        out = pool_output_size(size, k, s, q, d, p.ceil_mode)
        extra = max((out - 1) * s + d * (k - 1) + 1 - (size + 2 * q), 0)
        pads.append((q, q + extra))
    return (1, *p.kernel_size, 1), (1, *p.stride, 1), ((0, 0), *pads, (0, 0)), (1, *dilation, 1)


def _max_pool(node: Node, x, *, train: bool):
    if "blocks" in node.hints:
        return _block_max(x, node.params.kernel_size)
    return _window_max(x, *_window(node, x))


def _first_max(values):
    """Element-wise maximum of ``values``, taken from the first of equal maxima (NaN wins).

    This is torch's tie rule: a tied window's gradient goes to its first maximum in
    row-major order. XLA's ``reduce_window`` max breaks ties differently on GPU (and
    has no gradient with dilation), and ``jnp.max`` splits the gradient between ties.
    """
    best = None
    for value in values:
        best = value if best is None else jnp.where((value > best) | jnp.isnan(value), value, best)
    return best


def _block_max(x, kernel: tuple[int, int]):
    """A max-pool whose windows tile the input, over a (N, Ho, kh, Wo, kw, C) reshape.

    XLA fuses the maxima into one loop forward and one backward, faster than strided
    slices, and far faster than ``reduce_window``'s select-and-scatter gradient (29 ms
    against 0.5 ms for the MNIST CNN's pool on this CPU).
    """
    (kh, kw), (n, h, w, c) = kernel, x.shape
    ho, wo = h // kh, w // kw
    windows = x[:, :ho * kh, :wo * kw, :].reshape(n, ho, kh, wo, kw, c)
    return _first_max(windows[:, :, i, :, j, :] for i in range(kh) for j in range(kw))


def _window_max(x, window, strides, padding, dilation):
    """Any max-pool, as the first maximum over one strided slice of the padded input per window position."""
    x = jnp.pad(x, padding, constant_values=np.array(-np.inf, x.dtype))
    axes = range(1, x.ndim - 1)
    out = [(x.shape[a] - dilation[a] * (window[a] - 1) - 1) // strides[a] + 1 for a in axes]

    def position(offsets: tuple[int, ...]):
        spatial = tuple(slice(i * dilation[a], i * dilation[a] + (o - 1) * strides[a] + 1, strides[a])
                        for i, a, o in zip(offsets, axes, out))
        return x[(slice(None), *spatial, slice(None))]

    return _first_max(position(offsets) for offsets in itertools.product(*(range(window[a]) for a in axes)))


def _avg_pool(node: Node, x, *, train: bool):
    window, strides, padding, _ = _window(node, x)
    total = lax.reduce_window(x, np.array(0, x.dtype), lax.add, window, strides, padding)
    return total / jnp.asarray(_divisor(node, x.shape[1:-1], total.shape[1:-1]), x.dtype)


def _divisor(node: Node, size: tuple[int, ...], out: tuple[int, ...]) -> np.ndarray:
    """torch's per-window divisor, shaped (1, *out, 1): (1, Ho, Wo, 1), or (1, Lo, 1) for a 1-D pool."""
    p = node.params
    if getattr(p, "divisor_override", None):  # AvgPool1d has none
        return np.full((1, *out, 1), p.divisor_override)
    counts = []
    for n, o, k, s, q in zip(size, out, p.kernel_size, p.stride, p.padding):
        start = np.arange(o) * s - q
        low, high = (-q, n + q) if p.count_include_pad else (0, n)
        counts.append(np.minimum(start + k, high) - np.maximum(start, low))
    return functools.reduce(np.multiply.outer, counts)[None, ..., None]


LOWERINGS = {
    "max_pool2d": JaxOp(_max_pool, "channels_last"),
    "avg_pool2d": JaxOp(_avg_pool, "channels_last"),
    "max_pool1d": JaxOp(channels_first_io(_max_pool), "channels_first"),
    "avg_pool1d": JaxOp(channels_first_io(_avg_pool), "channels_first"),
}
