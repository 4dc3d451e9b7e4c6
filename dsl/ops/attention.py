"""Attention: ``scaled_dot_product_attention``, ``multi_head_attention`` and torch's Transformer layers.

Sequences are batch first, [N, T, E] (torch's modules are built with
``batch_first=True``; a spec never says so). Each op takes a padding mask as an
optional last input ([N, S], int or bool, one flag per key), and then needs
``mask``: ``keep`` (nonzero marks a real token, Hugging Face's ``attention_mask``)
or ``ignore`` (nonzero marks padding, torch's ``key_padding_mask``). Both
conventions are common and a wrong guess silently attends to padding only, so
there is no default. ``causal`` hides later keys from each query; it needs as many
keys as queries (torch's square ``generate_square_subsequent_mask``; SDPA's
``is_causal`` would align a longer key sequence at the top left, silently).

Masked keys are handled as the models people load do: ``scaled_dot_product_attention``
adds ``finfo(dtype).min`` to their scores as Hugging Face's BERT does (a row with no
real key is then uniform, never NaN); the torch modules add −inf, and a row with no
real key attends to nothing (zeros; torch's own eval fast path gives NaN there,
docs/PARITY.md §18). The weights are torch's state_dict entries and inits.
"""

from __future__ import annotations

import math
from typing import Literal

from ..tensors import TensorType, format_shape
from ..types import Bool, Params, PositiveFloat, PositiveInt, Probability
from .base import Constant, Example, OpDef, ShapeError, Uniform, Weight
from .normalization import divisors


class MaskedParams(Params):
    """What every attention op takes: ``causal``, and the meaning of a padding-mask input."""

    causal: Bool = False
    mask: Literal["keep", "ignore"] | None = None


class AttentionParams(MaskedParams):
    heads: PositiveInt
    dropout: Probability = 0.0


class MultiheadAttentionParams(MaskedParams):
    """torch.nn.MultiheadAttention's arguments; the unsupported ones are declared so that they are refused by name."""

    num_heads: PositiveInt
    embed_dim: PositiveInt | None = None
    dropout: Probability = 0.0
    bias: Bool = True
    add_bias_kv: Bool = False
    add_zero_attn: Bool = False
    kdim: PositiveInt | None = None
    vdim: PositiveInt | None = None


class TransformerLayerParams(MaskedParams):
    """torch.nn.TransformerEncoderLayer's and TransformerDecoderLayer's arguments (the same), torch's defaults."""

    nhead: PositiveInt
    d_model: PositiveInt | None = None
    dim_feedforward: PositiveInt = 2048
    dropout: Probability = 0.1
    activation: Literal["relu", "gelu"] = "relu"
    layer_norm_eps: PositiveFloat = 1e-5
    norm_first: Bool = False
    bias: Bool = True


def _sequence(x: TensorType, what: str) -> tuple[int, int]:
    """(T, E) of a float [N, T, E] input."""
    if not x.is_float:
        raise ShapeError(f"expects a floating-point {what}, got {x.dtype}")
    if x.rank != 2:
        raise ShapeError(f"expects {what} of shape [N, T, E] (batch first), got {format_shape(x.shape)}")
    return x.shape


def _divides(heads: int, features: int, param: str) -> None:
    if features % heads:
        valid = ", ".join(map(str, divisors(features)))
        raise ShapeError(f"{param} {heads} does not divide the {features} features; valid: {valid}", param=param)


def _check_causal(p: MaskedParams, queries: int, keys: int) -> None:
    if p.causal and queries != keys:
        raise ShapeError(f"causal: true needs as many keys as queries, got {queries} queries and {keys} keys",
                         param="causal")


def _check_mask(p: MaskedParams, mask: TensorType | None, keys: int, what: str = "the padding mask") -> None:
    """A mask input needs ``mask: keep|ignore``, and ``mask:`` needs a mask input; [N, S] ints or bools."""
    if mask is None:
        if p.mask is not None:
            raise ShapeError(f"mask: {p.mask} describes a padding-mask input, but none is given; add it as the "
                             "last input or leave mask out", param="mask")
        return
    if p.mask is None:
        raise ShapeError("a padding-mask input needs mask: keep (nonzero marks a real token, as Hugging Face's "
                         "attention_mask) or mask: ignore (nonzero marks padding, as torch's key_padding_mask)",
                         param="mask")
    if mask.is_float:
        raise ShapeError(f"takes {what} as int or bool (one flag per key), got {mask.dtype}; an additive float "
                         "mask is not supported")
    if mask.shape != (keys,):
        raise ShapeError(f"{what} must be [N, {keys}], one flag per key, got {format_shape(mask.shape)}")


def _infer_attention(p: AttentionParams, q: TensorType, k: TensorType, v: TensorType, mask: TensorType | None = None):
    (t, e), (s, e_k), (s_v, e_v) = _sequence(q, "query"), _sequence(k, "key"), _sequence(v, "value")
    if e_k != e or s_v != s:
        raise ShapeError(f"needs keys with the query's features and values as long as the keys, got query "
                         f"{format_shape(q.shape)}, key {format_shape(k.shape)}, value {format_shape(v.shape)}")
    _divides(p.heads, e, "heads")
    _divides(p.heads, e_v, "heads")
    _check_causal(p, t, s)
    _check_mask(p, mask, s)
    return p, q.with_shape((t, e_v))


def _refuse_unsupported(p: MultiheadAttentionParams, features: int) -> None:
    for flag in ("add_bias_kv", "add_zero_attn"):
        if getattr(p, flag):
            raise ShapeError(f"{flag}: true is not supported; leave it false (torch's default)", param=flag)
    for param in ("kdim", "vdim"):
        size = getattr(p, param)
        if size is not None and size != features:
            raise ShapeError(f"{param} {size} differs from embed_dim {features}: separate key and value sizes "
                             f"(torch's q/k/v_proj_weight) are not supported; project them to {features} first",
                             param=param)


def _infer_mha(p: MultiheadAttentionParams, query: TensorType, key: TensorType, value: TensorType,
               mask: TensorType | None = None):
    (t, e), (s, e_k), (s_v, e_v) = (_sequence(query, "query"), _sequence(key, "key"), _sequence(value, "value"))
    if p.embed_dim is not None and p.embed_dim != e:
        raise ShapeError(f"embed_dim is {p.embed_dim} but the query has {e} features (query shape "
                         f"{format_shape(query.shape)}); set embed_dim: {e} or leave it out to infer it",
                         param="embed_dim")
    _refuse_unsupported(p, e)
    if (e_k, e_v) != (e, e) or s_v != s:
        raise ShapeError(f"needs key and value of one shape [N, S, {e}] (the query's features), got key "
                         f"{format_shape(key.shape)}, value {format_shape(value.shape)}")
    _divides(p.num_heads, e, "num_heads")
    _check_causal(p, t, s)
    _check_mask(p, mask, s)
    return p.model_copy(update={"embed_dim": e, "kdim": e, "vdim": e}), query


def _check_layer(p: TransformerLayerParams, x: TensorType, what: str) -> int:
    """d_model: the features of ``x``, checked against the argument that may restate it."""
    features = _sequence(x, what)[1]
    if p.d_model is not None and p.d_model != features:
        raise ShapeError(f"d_model is {p.d_model} but its {what} has {features} features (shape "
                         f"{format_shape(x.shape)}); set d_model: {features} or leave it out to infer it",
                         param="d_model")
    _divides(p.nhead, features, "nhead")
    return features


def _infer_encoder(p: TransformerLayerParams, x: TensorType, mask: TensorType | None = None):
    features = _check_layer(p, x, "input")
    _check_mask(p, mask, x.shape[0])
    return p.model_copy(update={"d_model": features}), x


def _infer_decoder(p: TransformerLayerParams, tgt: TensorType, memory: TensorType, *masks: TensorType):
    """[tgt, memory] or [tgt, memory, tgt padding mask, memory padding mask]: one mask alone would be ambiguous."""
    if len(masks) == 1:
        raise ShapeError("takes [tgt, memory] or [tgt, memory, tgt_padding_mask, memory_padding_mask]; give both "
                         "masks (a mask of ones pads nothing)")
    features = _check_layer(p, tgt, "tgt")
    if _sequence(memory, "memory")[1] != features:
        raise ShapeError(f"needs memory with the tgt's {features} features, got memory {format_shape(memory.shape)}")
    tgt_mask, memory_mask = masks or (None, None)
    _check_mask(p, tgt_mask, tgt.shape[0], "the tgt padding mask")
    _check_mask(p, memory_mask, memory.shape[0], "the memory padding mask")
    return p.model_copy(update={"d_model": features}), tgt


def _linear(out_features: int, in_features: int, bias: bool) -> dict[str, Weight]:
    """torch.nn.Linear's entries and default init, U(±1/√in_features)."""
    bound = 1 / math.sqrt(in_features)
    weights = {"weight": Weight((out_features, in_features), Uniform.symmetric(bound))}
    return weights | ({"bias": Weight((out_features,), Uniform.symmetric(bound))} if bias else {})


def _layer_norm(features: int, bias: bool) -> dict[str, Weight]:
    weights = {"weight": Weight((features,), Constant(1.0))}
    return weights | ({"bias": Weight((features,), Constant(0.0))} if bias else {})


def _prefixed(prefix: str, weights: dict[str, Weight]) -> dict[str, Weight]:
    return {f"{prefix}.{suffix}": weight for suffix, weight in weights.items()}


def _attention_weights(features: int, bias: bool) -> dict[str, Weight]:
    """torch's ``_reset_parameters``: xavier_uniform over the packed (3E, E) in_proj_weight (fan_in E, fan_out 3E),
    zero in_proj_bias; out_proj a Linear whose bias is then zeroed. In state_dict order."""
    packed = {"in_proj_weight": Weight((3 * features, features), Uniform.symmetric(math.sqrt(6 / (4 * features))))}
    if bias:
        packed["in_proj_bias"] = Weight((3 * features,), Constant(0.0))
    out = _linear(features, features, bias)
    if bias:
        out["bias"] = Weight((features,), Constant(0.0))
    return packed | _prefixed("out_proj", out)


def _mha_weights(p: MultiheadAttentionParams) -> dict[str, Weight]:
    return _attention_weights(p.embed_dim, p.bias)


def _layer_weights(p: TransformerLayerParams, attentions: tuple[str, ...], norms: int) -> dict[str, Weight]:
    """torch's state_dict order: the attentions, linear1, linear2, then norm1..norm{norms}."""
    e, f = p.d_model, p.dim_feedforward
    weights = {}
    for name in attentions:
        weights |= _prefixed(name, _attention_weights(e, p.bias))
    weights |= _prefixed("linear1", _linear(f, e, p.bias)) | _prefixed("linear2", _linear(e, f, p.bias))
    for k in range(1, norms + 1):
        weights |= _prefixed(f"norm{k}", _layer_norm(e, p.bias))
    return weights


def _no_dropout(p):
    return p.model_copy(update={"dropout": 0.0})


OPS = (
    OpDef(
        name="scaled_dot_product_attention",
        params=AttentionParams,
        infer=_infer_attention,
        arity=(3, 4),
        deterministic=_no_dropout,
        doc="softmax(q kᵀ/√d + mask) v over heads of projected [N, T, E] query, key and value "
            "(torch's F.scaled_dot_product_attention); masked keys get finfo.min, as Hugging Face's BERT.",
        examples=(
            Example((5, 8), {"heads": 2}, more_inputs=((5, 8), (5, 8))),
            Example((4, 6), {"heads": 3, "causal": True, "mask": "keep"}, more_inputs=((4, 6), (4, 6), (4,)),
                    masks=(3,)),
            Example((3, 4), {"heads": 1, "mask": "ignore"}, more_inputs=((5, 4), (5, 6), (5,)), masks=(3,),
                    mask_dtype="bool"),
        ),
    ),
    OpDef(
        name="multi_head_attention",
        params=MultiheadAttentionParams,
        infer=_infer_mha,
        weights=_mha_weights,
        arity=(3, 4),
        deterministic=_no_dropout,
        doc="torch.nn.MultiheadAttention (batch first) over [query, key, value(, padding mask)]: packed "
            "in_proj_weight, out_proj; returns the output only.",
        examples=(
            Example((5, 8), {"num_heads": 2}, more_inputs=((5, 8), (5, 8))),
            Example((4, 6), {"num_heads": 3, "causal": True, "mask": "keep", "bias": False},
                    more_inputs=((4, 6), (4, 6), (4,)), masks=(3,)),
            Example((3, 4), {"num_heads": 1, "mask": "ignore"}, more_inputs=((5, 4), (5, 4), (5,)), masks=(3,),
                    mask_dtype="bool"),
        ),
    ),
    OpDef(
        name="transformer_encoder_layer",
        params=TransformerLayerParams,
        infer=_infer_encoder,
        weights=lambda p: _layer_weights(p, ("self_attn",), 2),
        arity=(1, 2),
        deterministic=_no_dropout,
        doc="torch.nn.TransformerEncoderLayer (batch first): self-attention and a feed-forward block, "
            "post-norm unless norm_first; d_model is inferred.",
        examples=(
            Example((5, 8), {"nhead": 2, "dim_feedforward": 16}),
            Example((4, 8), {"nhead": 4, "dim_feedforward": 12, "norm_first": True, "activation": "gelu",
                             "causal": True, "mask": "keep"}, more_inputs=((4,),), masks=(1,)),
            Example((4, 6), {"nhead": 1, "dim_feedforward": 8, "bias": False, "layer_norm_eps": 1e-3,
                             "mask": "ignore"}, more_inputs=((4,),), masks=(1,), mask_dtype="bool"),
        ),
    ),
    OpDef(
        name="transformer_decoder_layer",
        params=TransformerLayerParams,
        infer=_infer_decoder,
        weights=lambda p: _layer_weights(p, ("self_attn", "multihead_attn"), 3),
        arity=(2, 4),
        deterministic=_no_dropout,
        doc="torch.nn.TransformerDecoderLayer (batch first) over [tgt, memory(, tgt mask, memory mask)]: "
            "self-attention (causal: true for decoding), cross-attention, feed-forward.",
        examples=(
            Example((4, 8), {"nhead": 2, "dim_feedforward": 16}, more_inputs=((5, 8),)),
            Example((4, 8), {"nhead": 4, "dim_feedforward": 12, "norm_first": True, "activation": "gelu",
                             "causal": True, "mask": "keep"}, more_inputs=((5, 8), (4,), (5,)), masks=(2, 3)),
        ),
    ),
)
