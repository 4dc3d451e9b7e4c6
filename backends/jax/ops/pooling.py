"""torch pooling in NHWC with ``lax.reduce_window``.

``ceil_mode`` becomes extra padding at the end of each axis; the average's divisor is
computed exactly as torch does (declared padding counts when ``count_include_pad``,
the ceil-mode overhang never does; PARITY.md §5).
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from dsl import Node
from dsl.ops.pooling import pool_output_size

from .base import JaxOp


def _window(node: Node, x):
    """(window, strides, padding, dilation) for NHWC, with ceil-mode end padding added."""
    p = node.params
    dilation = getattr(p, "dilation", (1, 1))
    pads = []
    for size, k, s, q, d in zip(x.shape[1:3], p.kernel_size, p.stride, p.padding, dilation):
        out = pool_output_size(size, k, s, q, d, p.ceil_mode)
        extra = max((out - 1) * s + d * (k - 1) + 1 - (size + 2 * q), 0)
        pads.append((q, q + extra))
    return (1, *p.kernel_size, 1), (1, *p.stride, 1), ((0, 0), *pads, (0, 0)), (1, *dilation, 1)


def _max_pool2d(node: Node, x, *, train: bool):
    if "blocks" in node.hints:
        return _block_max(x, node.params.kernel_size)
    window, strides, padding, dilation = _window(node, x)
    init = np.array(-np.inf, x.dtype)  # a concrete scalar: jax then uses its differentiable max-pool
    if dilation == (1, 1, 1, 1):
        return lax.reduce_window(x, init, lax.max, window, strides, padding)
    return _dilated_max(x, init, window, strides, padding, dilation)


def _block_max(x, kernel: tuple[int, int]):
    """A max-pool whose windows tile the input, as element-wise maxima over the window's positions.

    The input is cropped to whole windows and reshaped to (N, Ho, kh, Wo, kw, C); XLA
    fuses the maxima into one loop forward and one backward, where
    ``reduce_window``'s gradient is a slow select-and-scatter (29 ms against 0.5 ms
    for the MNIST CNN's pool on this CPU). ``>`` keeps the earlier value on ties, so
    the gradient goes to the first maximum as in torch; NaN wins, as in torch.
    """
    (kh, kw), (n, h, w, c) = kernel, x.shape
    ho, wo = h // kh, w // kw
    windows = x[:, :ho * kh, :wo * kw, :].reshape(n, ho, kh, wo, kw, c)
    best = None
    for i in range(kh):
        for j in range(kw):
            value = windows[:, :, i, :, j, :]
            best = value if best is None else jnp.where((value > best) | jnp.isnan(value), value, best)
    return best


def _dilated_max(x, init, window, strides, padding, dilation):
    """Max over the window's strided slices: jax has no gradient for a dilated reduce_window max.

    The value is taken at the first maximum in row-major window order, so the gradient
    of a tied window goes to that one element, as in torch (``jnp.max`` would split it).
    """
    x = jnp.pad(x, padding, constant_values=init)
    out = [(x.shape[a] - dilation[a] * (window[a] - 1) - 1) // strides[a] + 1 for a in (1, 2)]
    slices = [
        x[:, i * dilation[1]: i * dilation[1] + (out[0] - 1) * strides[1] + 1: strides[1],
          j * dilation[2]: j * dilation[2] + (out[1] - 1) * strides[2] + 1: strides[2], :]
        for i in range(window[1]) for j in range(window[2])
    ]
    stacked = jnp.stack(slices)
    first = jnp.argmax(lax.stop_gradient(stacked), axis=0)
    return jnp.take_along_axis(stacked, first[None], axis=0)[0]


def _avg_pool2d(node: Node, x, *, train: bool):
    window, strides, padding, _ = _window(node, x)
    total = lax.reduce_window(x, np.array(0, x.dtype), lax.add, window, strides, padding)
    return total / jnp.asarray(_divisor(node, x.shape[1:3], total.shape[1:3]), x.dtype)


def _divisor(node: Node, size: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """torch's per-window divisor, shaped (1, Ho, Wo, 1)."""
    p = node.params
    if p.divisor_override:
        return np.full((1, *out, 1), p.divisor_override)
    counts = []
    for n, o, k, s, q in zip(size, out, p.kernel_size, p.stride, p.padding):
        start = np.arange(o) * s - q
        low, high = (-q, n + q) if p.count_include_pad else (0, n)
        counts.append(np.minimum(start + k, high) - np.maximum(start, low))
    return np.outer(*counts)[None, :, :, None]


LOWERINGS = {
    "max_pool2d": JaxOp(_max_pool2d, "channels_last"),
    "avg_pool2d": JaxOp(_avg_pool2d, "channels_last"),
}
