"""torch's BatchNorm, written out: Flax's ``nn.BatchNorm`` cannot reproduce it.

docs/PARITY.md §6 measured the three differences: Flax's momentum is torch's 1 − m
(running_mean off by 0.345 after 3 steps at the defaults), its running variance is
the biased one (eval outputs off by 0.039 after 3 steps with 36 values per channel),
and it has no cumulative average (torch's ``momentum=None``). This module keeps
torch's state under Flax's names: ``params`` {scale, bias}, ``batch_stats`` {mean,
var, num_batches_tracked}. ``num_batches_tracked`` is JAX's default int (int32
unless x64 is on); the converters give it back as torch's int64.

Data parallel over ``replicas`` devices (``FlaxModel.replicas``, set by the JAX
target for ``--devices N`` without ``train.sync_batch_norm``), a training step
normalizes each replica's contiguous shard (``np.array_split(batch, replicas)``) by
that shard's statistics, as each torch DDP rank does with plain BatchNorm, and the
running statistics are updated from shard 0's alone: DDP broadcasts rank 0's
buffers before every forward, so rank 0's updates are the ones that last. With
``sync_batch_norm`` (or one device) the statistics are the global batch's, which the
sharded global computation gives with an all-reduce, as torch's SyncBatchNorm.
Evaluation always normalizes the global batch (running statistics, or without
them the batch's), so evaluation does not depend on the device count.

Layer, group and instance normalization are Flax's own layers given torch's
arguments: eps (Flax's default is 1e-6), the reduction axes, and
``use_fast_variance=False``, the two-pass variance torch computes (PARITY.md §6:
E[x²]−E[x]² is off by 1.13 on inputs with mean 3000). Their weights keep the
BatchNorm names (``scale``, ``bias``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from dsl import Node

from .base import JaxOp

# canonical suffix -> (Flax collection, Flax name)
FLAX_NAMES = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
    "num_batches_tracked": ("batch_stats", "num_batches_tracked"),
}


class TorchBatchNorm(nn.Module):
    """torch.nn.BatchNorm over ``axis`` (−1: NHWC activations; 1: [N, C] and [N, C, L])."""

    features: int
    axis: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool
    replicas: int = 1

    @nn.compact
    def __call__(self, x, *, train: bool):
        """A bfloat16 input (``precision: bf16``) is normalized in float32 and returned in bfloat16, as torch's
        kernel under autocast does."""
        dtype, x = x.dtype, x.astype(jnp.promote_types(x.dtype, jnp.float32))
        axis = self.axis % x.ndim
        reduce = tuple(a for a in range(x.ndim) if a != axis)
        shape = tuple(self.features if a == axis else 1 for a in range(x.ndim))
        scale, bias = (self.param("scale", nn.initializers.ones, (self.features,), x.dtype),
                       self.param("bias", nn.initializers.zeros, (self.features,), x.dtype)) if self.affine else (
                       jnp.ones(self.features, x.dtype), jnp.zeros(self.features, x.dtype))
        if train or not self.track_running_stats:  # torch: no running stats means batch statistics in eval too
            sizes = shard_sizes(x.shape[0], self.replicas if train else 1)
            if train and self.track_running_stats:
                first = x[:sizes[0]]  # DDP keeps rank 0's running statistics
                self._update(*batch_statistics(first, reduce), first.size // self.features)
            return normalize_shards(x, scale, bias, reduce, shape, self.eps, sizes).astype(dtype)
        mean, var = (v.value for v in self._statistics(x.dtype)[:2])
        return _affine(x, mean, jax.lax.rsqrt(var + jnp.asarray(self.eps, x.dtype)), scale, bias, shape).astype(dtype)

    def _statistics(self, dtype):
        channels = (self.features,)
        return (self.variable("batch_stats", "mean", lambda: jnp.zeros(channels, dtype)),
                self.variable("batch_stats", "var", lambda: jnp.ones(channels, dtype)),
                self.variable("batch_stats", "num_batches_tracked", lambda: jnp.zeros((), int)))

    def _update(self, mean, var, n: int) -> None:
        """torch's update: the unbiased variance n/(n−1), by momentum or 1/num_batches_tracked."""
        running_mean, running_var, count = self._statistics(mean.dtype)
        if self.is_initializing():
            return
        count.value = count.value + 1
        factor = (1 / count.value if self.momentum is None else self.momentum)
        factor = jnp.asarray(factor, mean.dtype)
        mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var * (n / (n - 1)))  # no gradient
        running_mean.value = (1 - factor) * running_mean.value + factor * mean
        running_var.value = (1 - factor) * running_var.value + factor * var


def batch_statistics(x, reduce: tuple[int, ...]):
    """Per-channel mean and biased variance in one pass, shifted by the first example's value.

    E[(x−s)²] − E[x−s]² reads x once, as Flax's fast variance does, and with s a value
    of x per channel it keeps the two-pass formula's accuracy: what cancels is the
    spread of the data around s, not its mean (PARITY.md §6: E[x²]−E[x]² is off by 1.13
    at mean 3000). XLA computes both sums in one fusion; the same expression inside
    ``batch_normalize`` and for the running statistics is computed once.
    """
    shift = jax.lax.stop_gradient(x[tuple(0 if a in reduce else slice(None) for a in range(x.ndim))])
    shifted = x - jnp.expand_dims(shift, reduce)
    mean_shifted = shifted.mean(reduce)
    return mean_shifted + shift, jnp.square(shifted).mean(reduce) - jnp.square(mean_shifted)


def _affine(x, mean, rstd, scale, bias, shape: tuple[int, ...]):
    """(x − mean)·(rstd·γ) + β, the scale folded into the per-channel multiplier as Flax's BatchNorm does."""
    return (x - mean.reshape(shape)) * (rstd * scale).reshape(shape) + bias.reshape(shape)


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def batch_normalize(x, scale, bias, reduce: tuple[int, ...], shape: tuple[int, ...], eps: float):
    """(x − mean)·(rstd·γ) + β with the batch's statistics, and torch's analytic gradient."""
    return _normalize_forward(x, scale, bias, reduce, shape, eps)[0]


def _normalize_forward(x, scale, bias, reduce, shape, eps):
    mean, var = batch_statistics(x, reduce)
    rstd = jax.lax.rsqrt(var + jnp.asarray(eps, x.dtype))
    return _affine(x, mean, rstd, scale, bias, shape), (x, mean, rstd, scale)


def _normalize_backward(reduce, shape, eps, saved, dy):
    """torch's batch_norm backward: dx = γ·rstd/n · (n·dy − Σdy − x̂·Σ(dy·x̂)), the sums in one pass over dy.

    Autodiff of the forward differentiates through the mean and the variance and made
    ResNet-20's BatchNorm forward + backward 1.4x as slow at [128, 32, 32, 16] (4.9
    against 3.4 ms for Flax's fast variance; 3.9 ms with this backward).
    """
    x, mean, rstd, scale = saved
    xhat = (x - mean.reshape(shape)) * rstd.reshape(shape)
    dbias, dscale = dy.sum(reduce), (dy * xhat).sum(reduce)
    n = x.size // mean.size
    dx = (scale * rstd / n).reshape(shape) * (n * dy - dbias.reshape(shape) - xhat * dscale.reshape(shape))
    return dx, dscale, dbias


batch_normalize.defvjp(_normalize_forward, _normalize_backward)


def shard_sizes(batch: int, replicas: int) -> tuple[int, ...]:
    """The sizes of ``np.array_split(range(batch), replicas)``: the first ``batch % replicas`` one larger."""
    return tuple(batch // replicas + (r < batch % replicas) for r in range(replicas))


def normalize_shards(x, scale, bias, reduce: tuple[int, ...], shape: tuple[int, ...], eps: float,
                     sizes: tuple[int, ...]):
    """``batch_normalize`` of each contiguous shard of the batch (axis 0) by its own statistics.

    Equal shards are one reshape to [replicas, shard, ...] and a ``vmap``: on a mesh
    whose devices each hold one shard, every device normalizes its own rows with no
    communication. Unequal shards (a last batch the device count does not divide,
    which the target runs replicated) are sliced; empty ones are skipped.
    """
    if len(sizes) == 1:
        return batch_normalize(x, scale, bias, reduce, shape, eps)
    if len(set(sizes)) == 1:
        groups = x.reshape(len(sizes), sizes[0], *x.shape[1:])
        out = jax.vmap(lambda g: batch_normalize(g, scale, bias, reduce, shape, eps))(groups)
        return out.reshape(x.shape)
    bounds = np.cumsum((0, *sizes))
    return jnp.concatenate([batch_normalize(x[a:b], scale, bias, reduce, shape, eps)
                            for a, b in zip(bounds[:-1], bounds[1:]) if b > a])


def _batch_norm(axis: int):
    def apply(node: Node, x, *, train: bool, replicas: int = 1):
        p = node.params
        return TorchBatchNorm(p.num_features, axis, p.eps, p.momentum, p.affine, p.track_running_stats, replicas,
                              name=node.local_name)(x, train=train)

    return apply


def _layer_norm(node: Node, x, *, train: bool):
    """Over the trailing dims of channels-first (torch order) data, hence the channels_first layout."""
    p = node.params
    axes = tuple(range(-len(p.normalized_shape), 0))
    return nn.LayerNorm(p.eps, use_scale=p.elementwise_affine, use_bias=p.elementwise_affine and p.bias,
                        reduction_axes=axes, feature_axes=axes, use_fast_variance=False, param_dtype=x.dtype,
                        name=node.local_name)(x)


def _on_channels_last(norm, x):
    """``norm`` (a Flax layer reading channels from the last axis) on an input planned channels_last:
    4-D inputs arrive NHWC; [N, C] and [N, C, L] stay channels-first, so their dim 1 moves last and back."""
    if x.ndim == 4:
        return norm(x)
    return jnp.moveaxis(norm(jnp.moveaxis(x, 1, -1)), -1, 1)


def _group_norm(node: Node, x, *, train: bool):
    """Flax groups contiguous channels as torch does (PARITY.md §6); num_groups has no default here."""
    p = node.params
    norm = nn.GroupNorm(p.num_groups, epsilon=p.eps, use_scale=p.affine, use_bias=p.affine,
                        use_fast_variance=False, param_dtype=x.dtype, name=node.local_name)
    return _on_channels_last(norm, x)


def _instance_norm2d(node: Node, x, *, train: bool):
    """NHWC: each (sample, channel) is normalized over H and W; no running statistics (dsl refuses them)."""
    p = node.params
    return nn.InstanceNorm(p.eps, use_scale=p.affine, use_bias=p.affine, use_fast_variance=False,
                           param_dtype=x.dtype, name=node.local_name)(x)


def _to_flax(w, received):
    variables: dict[str, dict] = {}
    for suffix, value in w.items():
        collection, name = FLAX_NAMES[suffix]
        variables.setdefault(collection, {})[name] = value
    return variables


def _from_flax(v, received):
    state = {suffix: v[c][name] for suffix, (c, name) in FLAX_NAMES.items() if name in v.get(c, {})}
    if "num_batches_tracked" in state:
        state["num_batches_tracked"] = np.asarray(state["num_batches_tracked"], np.int64)  # torch's dtype
    return state


LOWERINGS = {
    "batch_norm2d": JaxOp(_batch_norm(-1), "channels_last", _to_flax, _from_flax,  # conv -> bn -> relu stays NHWC
                          per_replica=True),
    "batch_norm1d": JaxOp(_batch_norm(1), "channels_first", _to_flax, _from_flax, per_replica=True),
    "layer_norm": JaxOp(_layer_norm, "channels_first", _to_flax, _from_flax),
    "group_norm": JaxOp(_group_norm, "channels_last", _to_flax, _from_flax),  # conv -> gn -> relu stays NHWC
    "instance_norm2d": JaxOp(_instance_norm2d, "channels_last", _to_flax, _from_flax),
}
