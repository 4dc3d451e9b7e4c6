"""torch's adaptive pools, Upsample and ZeroPad2d in NHWC, one spatial axis at a time.

Every index and weight is computed here with numpy at trace time (the shapes are
static) by torch's own CPU formulas, then applied with gathers: XLA sees constant
indices, and gradients are the gathers' scatter-adds, which is what torch's backward
kernels compute. Two traps: ``jax.image.resize`` puts nearest samples at half-pixel
centers where torch's legacy ``nearest`` floors ``dst · scale``, and torch's adaptive
bins overlap when the sizes do not divide (7 → 3: [0, 3), [2, 5), [4, 7)), so neither
``jax.image.resize`` nor a strided pool can stand in (docs/PARITY.md §5, adaptive rows).
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from dsl import Node

from .base import JaxOp
from .pooling import _first_max

SPATIAL = (1, 2)  # H and W of an NHWC array


def adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive bins: start = floor(i·size/out), end = ceil((i+1)·size/out), in integers."""
    i = np.arange(out)
    return i * size // out, -(-(i + 1) * size // out)


def _adaptive_avg_pool2d(node: Node, x, *, train: bool):
    """The bin means along H, then along W; the mean of a rectangle is the mean of its row means.

    Output 1x1 (a global average) is one mean over both axes; a size that divides the
    input reshapes instead of gathering.
    """
    if node.params.output_size == (1, 1):
        return jnp.mean(x, axis=SPATIAL, keepdims=True)
    for axis, out in zip(SPATIAL, node.params.output_size):
        x = _bin_mean(x, axis, out)
    return x


def _bin_mean(x, axis: int, out: int):
    size = x.shape[axis]
    if size % out == 0:
        return jnp.mean(x.reshape(*x.shape[:axis], out, size // out, *x.shape[axis + 1:]), axis=axis + 1)
    start, end = adaptive_bins(size, out)
    total = sum(_take(x, np.minimum(start + k, end - 1), axis) * _mask(k < end - start, axis, x)
                for k in range(int((end - start).max())))
    return total / _along(end - start, axis, x)


def _adaptive_max_pool2d(node: Node, x, *, train: bool):
    """The first maximum of each bin, along W, then along H: torch's first maximum in row-major order.

    A rectangle's row-major first maximum lies in its first row holding the maximum, at
    that row's first maximum, which is what taking the first along W, then the first of
    those along H, finds. Output 1x1 is one argmax over the flattened image.
    """
    if node.params.output_size == (1, 1):
        return _global_first_max(x)
    for axis, out in zip((2, 1), node.params.output_size[::-1]):
        x = _bin_max(x, axis, out)
    return x


def _global_first_max(x):
    """The first maximum over H·W (row-major), keeping (N, 1, 1, C); its gradient goes to that element only.

    ``jnp.max`` would split a tied gradient between the maxima. One difference from torch
    remains: with several NaNs, torch's gradient goes to the last and this one's to the first.
    """
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    return jnp.take_along_axis(flat, jnp.argmax(flat, axis=1, keepdims=True), axis=1).reshape(n, 1, 1, c)


def _bin_max(x, axis: int, out: int):
    """Each bin's first maximum along ``axis``; a short bin repeats its last element, which never wins a tie."""
    start, end = adaptive_bins(x.shape[axis], out)
    return _first_max(_take(x, np.minimum(start + k, end - 1), axis) for k in range(int((end - start).max())))


def _upsample(node: Node, x, *, train: bool):
    p = node.params
    scales = p.scale_factor or (None, None)
    for axis, out, scale in zip(SPATIAL, node.output.shape[1:], scales):
        if p.mode == "nearest":
            x = _take(x, nearest_source(x.shape[axis], out, scale), axis)
        else:
            x = _linear(x, axis, out, scale, bool(p.align_corners))
    return x


def nearest_source(size: int, out: int, scale: float | None) -> np.ndarray:
    """torch's ``nearest_idx``: src = min(floor(dst · s), size - 1), with s in float32.

    s is float32(1/scale_factor) when a scale factor was given, else size/out; the
    same-size and doubling cases are exact integer copies. Float32 whatever the tensor's
    dtype, as in torch: checked against torch for sizes 1 to 29 and 19 factors (0.3 to
    4.1, among them 1.9999999 and 2.0000001) in float32 and float64, identical; the same
    rule in float64 differs in 122 of those 1,086 cases.
    """
    dst = np.arange(out)
    if out == size:
        return dst
    if out == 2 * size:
        return dst >> 1
    step = np.float32(1.0 / scale) if scale else np.float32(size) / np.float32(out)
    return np.minimum(np.floor(dst.astype(np.float32) * step).astype(np.int64), size - 1)


def linear_source(size: int, out: int, scale: float | None, align_corners: bool, dtype) -> tuple:
    """torch's ``compute_source_index_and_lambda``: (first index, second index, weight of the second).

    Computed in the tensor's precision (torch's opmath: float32 for float32). Without
    align_corners, sources sit at half-pixel centers, (dst + 0.5)·s - 0.5, and negative
    ones are clamped to 0; with it, at dst·(size-1)/(out-1), ignoring any scale factor.
    """
    dst = np.arange(out)
    if out == size:
        return dst, dst, np.zeros(out, dtype)
    if align_corners:
        step = dtype.type(size - 1) / dtype.type(out - 1) if out > 1 else dtype.type(0)
        real = step * dst.astype(dtype)
    else:
        step = dtype.type(1.0 / scale) if scale else dtype.type(size) / dtype.type(out)
        real = np.maximum(step * (dst.astype(dtype) + dtype.type(0.5)) - dtype.type(0.5), 0)
    first = np.minimum(np.floor(real).astype(np.int64), size - 1)
    weight = np.clip(real - first, 0, 1).astype(dtype)
    return first, first + (first < size - 1), weight


def _linear(x, axis: int, out: int, scale: float | None, align_corners: bool):
    first, second, weight = linear_source(x.shape[axis], out, scale, align_corners, np.dtype(x.dtype))
    return _take(x, first, axis) * _along(1 - weight, axis, x) + _take(x, second, axis) * _along(weight, axis, x)


def _zero_pad2d(node: Node, x, *, train: bool):
    """``lax.pad``: negative padding crops, as in torch."""
    left, right, top, bottom = node.params.padding
    return lax.pad(x, np.array(0, x.dtype), ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))


def _take(x, indices: np.ndarray, axis: int):
    return jnp.take(x, jnp.asarray(indices), axis=axis)


def _along(values: np.ndarray, axis: int, x):
    """``values`` (one per position along ``axis``) shaped to broadcast against NHWC ``x``, in its dtype."""
    shape = [1] * x.ndim
    shape[axis] = len(values)
    return jnp.asarray(np.asarray(values).reshape(shape), x.dtype)


def _mask(valid: np.ndarray, axis: int, x):
    return _along(valid.astype(np.float64), axis, x)


LOWERINGS = {
    "adaptive_avg_pool2d": JaxOp(_adaptive_avg_pool2d, "channels_last"),
    "adaptive_max_pool2d": JaxOp(_adaptive_max_pool2d, "channels_last"),
    "upsample": JaxOp(_upsample, "channels_last"),
    "zero_pad2d": JaxOp(_zero_pad2d, "channels_last"),
}
