"""torch's attention and Transformer layers in Flax, over torch's own weight layout and in torch's order.

Flax's ``MultiHeadDotProductAttention`` keeps three (E, H, D) kernels (docs/PARITY.md
§11). These modules keep torch's packed ``in_proj_weight`` (3E, E) and each Linear's
(out, in) weight under torch's names, so the conversion only nests the dotted names
(``self_attn.out_proj.weight`` -> ``{'self_attn': {'out_proj': {'weight'}}}``; a
LayerNorm's weight is Flax's ``scale``). They compute as torch's
``multi_head_attention_forward`` does: one projection matmul for self-attention, one
for query and one for the packed key/value when key is value (cross-attention), else
three; scores (q kᵀ)/√d with −inf at masked keys; a row with no visible key gives
zeros, as torch's SDPA math (its eval fast path gives NaN there, PARITY.md §18);
dropout on the probabilities; heads merged; out_proj. The Transformer layers are
torch's ``_sa_block``/``_mha_block``/``_ff_block`` with the norm before (``norm_first``)
or after each residual. Float32 outputs agree with torch's own modules to ~1e-6
(``tests/test_attention.py``). Dropout draws from the ``dropout`` rng, as linen's
Dropout; every Flax initializer is torch's, though dslc samples weights from the
canonical init and converts them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from dsl import Node

from .base import JaxOp, torch_uniform_bias
from .dropout import Dropout

_TORCH_LINEAR = jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform", in_axis=-1, out_axis=-2)
_XAVIER = jax.nn.initializers.xavier_uniform(in_axis=-1, out_axis=-2)  # over torch's (out, in) layout


def _linear(x, weight, bias):
    """torch's F.linear: x Wᵀ + b with W stored (out, in)."""
    y = x @ weight.T
    return y if bias is None else y + bias


def _split_bias(bias, sizes: int):
    return (None,) * sizes if bias is None else jnp.split(bias, sizes)


def in_projection(query, key, value, weight, bias):
    """torch's ``_in_projection_packed``: the same tensor projects once, and its result is split.

    The model passes one JAX value for one dslc value, so ``is`` sees what torch's does.
    """
    if key is value and query is key:
        return jnp.split(_linear(query, weight, bias), 3, axis=-1)
    if key is value:
        e = query.shape[-1]
        (b_q, b_kv) = (None, None) if bias is None else (bias[:e], bias[e:])
        return (_linear(query, weight[:e], b_q), *jnp.split(_linear(key, weight[e:], b_kv), 2, axis=-1))
    return tuple(_linear(x, w, b) for x, w, b in zip((query, key, value), jnp.split(weight, 3), _split_bias(bias, 3)))


def split_heads(x, heads: int):
    """[N, T, E] -> [N, heads, T, E/heads]."""
    n, t, e = x.shape
    return x.reshape(n, t, heads, e // heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """[N, heads, T, D] -> [N, T, heads·D]."""
    n, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, t, h * d)


def visible_keys(mask, meaning: str | None, causal: bool, queries: int, keys: int):
    """Bool [N or 1, 1, T or 1, S], True where a query may see a key; None when every key is visible."""
    visible = None if mask is None else ((mask != 0) if meaning == "keep" else (mask == 0))[:, None, None, :]
    if causal:
        lower = jnp.tril(jnp.ones((queries, keys), bool))[None, None]
        visible = lower if visible is None else visible & lower
    return visible


def scores(q, k):
    """(q kᵀ)/√d over [N, heads, T, d] and [N, heads, S, d]."""
    return jnp.einsum("nhtd,nhsd->nhts", q, k) * (1 / math.sqrt(q.shape[-1]))


def torch_probabilities(logits, visible):
    """softmax with −inf at hidden keys; a row with no visible key gives zeros, its gradient too (torch's SDPA).

    Hidden rows are softmaxed as zeros before being zeroed: a softmax of −inf alone is
    NaN, and ``where`` would send NaN back through the gradient.
    """
    if visible is None:
        return jax.nn.softmax(logits, axis=-1)
    seen = visible.any(axis=-1, keepdims=True)
    logits = jnp.where(seen, jnp.where(visible, logits, -jnp.inf), 0)
    return jnp.where(seen, jax.nn.softmax(logits, axis=-1), 0)


def finfo_min_probabilities(logits, visible):
    """softmax with finfo(dtype).min added at hidden keys (Hugging Face's BERT): a row with no visible key is
    uniform."""
    if visible is None:
        return jax.nn.softmax(logits, axis=-1)
    return jax.nn.softmax(logits + jnp.where(visible, 0, jnp.finfo(logits.dtype).min).astype(logits.dtype), axis=-1)


def attend(q, k, v, visible, probabilities, dropout, train: bool):
    """Attention over split heads: probabilities (dropped out while training) times the values, heads merged."""
    probs = Dropout(dropout, deterministic=not train)(probabilities(scores(q, k), visible))
    return merge_heads(jnp.einsum("nhts,nhsd->nhtd", probs, v))


class TorchMultiheadAttention(nn.Module):
    """torch.nn.MultiheadAttention (batch first) with its parameters: in_proj_weight/bias, out_proj.{weight,bias}."""

    num_heads: int
    dropout: float
    use_bias: bool

    @nn.compact
    def __call__(self, query, key, value, visible, *, train: bool):
        e = query.shape[-1]
        weight = self.param("in_proj_weight", _XAVIER, (3 * e, e), query.dtype)
        bias = self.param("in_proj_bias", nn.initializers.zeros, (3 * e,), query.dtype) if self.use_bias else None
        q, k, v = (split_heads(x, self.num_heads) for x in in_projection(query, key, value, weight, bias))
        context = attend(q, k, v, visible, torch_probabilities, self.dropout, train)
        return TorchLinear(e, self.use_bias, nn.initializers.zeros, name="out_proj")(context)


class TorchLinear(nn.Module):
    """torch.nn.Linear with its (out, in) ``weight`` and ``bias``."""

    features: int
    use_bias: bool
    bias_init: object = None  # None: torch's U(±1/√in)

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        weight = self.param("weight", _TORCH_LINEAR, (self.features, fan_in), x.dtype)
        bias = self.param("bias", self.bias_init or torch_uniform_bias(fan_in), (self.features,), x.dtype) \
            if self.use_bias else None
        return _linear(x, weight, bias)


class TorchTransformerLayer(nn.Module):
    """torch.nn.TransformerEncoderLayer (``cross=False``) or TransformerDecoderLayer (``cross=True``), batch first."""

    nhead: int
    dim_feedforward: int
    dropout: float
    activation: str
    eps: float
    norm_first: bool
    use_bias: bool
    cross: bool

    @nn.compact
    def __call__(self, x, memory, self_visible, memory_visible, *, train: bool):
        blocks = [lambda y: self._attention("self_attn", y, y, self_visible, train)]
        if self.cross:
            blocks.append(lambda y: self._attention("multihead_attn", y, memory, memory_visible, train))
        blocks.append(lambda y: self._feed_forward(y, train))
        for k, block in enumerate(blocks, start=1):
            norm = nn.LayerNorm(self.eps, use_bias=self.use_bias, use_fast_variance=False, param_dtype=x.dtype,
                                name=f"norm{k}")
            x = x + block(norm(x)) if self.norm_first else norm(x + block(x))
        return x

    def _attention(self, name: str, x, memory, visible, train: bool):
        """torch's _sa_block (memory is x) or _mha_block: attention, then dropout1 or dropout2."""
        out = TorchMultiheadAttention(self.nhead, self.dropout, self.use_bias, name=name)(
            x, memory, memory, visible, train=train)
        return Dropout(self.dropout, deterministic=not train)(out)

    def _feed_forward(self, x, train: bool):
        """torch's _ff_block: linear2(dropout(activation(linear1(x)))), then the last dropout."""
        activation = jax.nn.relu if self.activation == "relu" else lambda y: jax.nn.gelu(y, approximate=False)
        hidden = Dropout(self.dropout, deterministic=not train)(
            activation(TorchLinear(self.dim_feedforward, self.use_bias, name="linear1")(x)))
        out = TorchLinear(x.shape[-1], self.use_bias, name="linear2")(hidden)
        return Dropout(self.dropout, deterministic=not train)(out)


def _sdpa(node: Node, query, key, value, mask=None, *, train: bool):
    p = node.params
    visible = visible_keys(mask, p.mask, p.causal, query.shape[1], key.shape[1])
    q, k, v = (split_heads(x, p.heads) for x in (query, key, value))
    return attend(q, k, v, visible, finfo_min_probabilities, p.dropout, train)


def _mha(node: Node, query, key, value, mask=None, *, train: bool):
    p = node.params
    visible = visible_keys(mask, p.mask, p.causal, query.shape[1], key.shape[1])
    return TorchMultiheadAttention(p.num_heads, p.dropout, p.bias, name=node.local_name)(
        query, key, value, visible, train=train)


def _layer(node: Node, cross: bool):
    p = node.params
    return TorchTransformerLayer(p.nhead, p.dim_feedforward, p.dropout, p.activation, p.layer_norm_eps, p.norm_first,
                                 p.bias, cross, name=node.local_name)


def _encoder(node: Node, x, mask=None, *, train: bool):
    visible = visible_keys(mask, node.params.mask, node.params.causal, x.shape[1], x.shape[1])
    return _layer(node, cross=False)(x, None, visible, None, train=train)


def _decoder(node: Node, tgt, memory, tgt_mask=None, memory_mask=None, *, train: bool):
    p, t = node.params, tgt.shape[1]
    return _layer(node, cross=True)(tgt, memory, visible_keys(tgt_mask, p.mask, p.causal, t, t),
                                    visible_keys(memory_mask, p.mask, False, t, memory.shape[1]), train=train)


# Flax names: torch's dotted names nested, except a LayerNorm's weight (Flax's ``scale``); sorted back into torch's
# state_dict order (a gradient tree comes back with its keys sorted).
_ORDER = ("in_proj_weight", "in_proj_bias", "out_proj", "self_attn", "multihead_attn", "linear1", "linear2",
          "norm1", "norm2", "norm3", "weight", "bias")


def _flax_path(suffix: str) -> tuple[str, ...]:
    *scopes, leaf = suffix.split(".")
    is_norm = bool(scopes) and scopes[-1].startswith("norm")
    return (*scopes, "scale" if is_norm and leaf == "weight" else leaf)


def _to_flax(canonical, received):
    return {"params": traverse_util.unflatten_dict({_flax_path(k): v for k, v in canonical.items()})}


def _from_flax(variables, received):
    flat = traverse_util.flatten_dict(variables["params"])
    state = {".".join(path[:-1] + ("weight" if path[-1] == "scale" else path[-1],)): v for path, v in flat.items()}
    return {k: np.asarray(state[k]) for k in sorted(state, key=lambda k: [_ORDER.index(p) for p in k.split(".")])}


LOWERINGS = {
    "scaled_dot_product_attention": JaxOp(_sdpa, "channels_first"),
    "multi_head_attention": JaxOp(_mha, "channels_first", _to_flax, _from_flax),
    "transformer_encoder_layer": JaxOp(_encoder, "channels_first", _to_flax, _from_flax),
    "transformer_decoder_layer": JaxOp(_decoder, "channels_first", _to_flax, _from_flax),
}
