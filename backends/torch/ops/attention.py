"""torch's attention modules behind forwards that take the layer's inputs positionally.

The fx graph calls each layer's module with its inputs in order, and a dslc op has
one output, so each module here is torch.nn's own (its state_dict keys are torch's,
and a state_dict saved from ``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer``
or ``nn.TransformerDecoderLayer`` loads strictly) with a ``forward`` that takes the
padding mask as a positional tensor, turns dslc's ``keep``/``ignore`` convention into
torch's boolean ``key_padding_mask`` (True = padding), builds the causal mask, and
returns the output only (``need_weights=False``, which also lets torch use its fused
kernels). ``scaled_dot_product_attention`` has no torch module, so it is a small one
around ``F.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dsl import Node


def key_padding(mask: torch.Tensor | None, meaning: str | None) -> torch.Tensor | None:
    """torch's key_padding_mask, True where a key is padding, from a mask in dslc's ``keep``/``ignore`` convention."""
    if mask is None:
        return None
    return mask == 0 if meaning == "keep" else mask != 0


def causal_mask(length: int, device) -> torch.Tensor:
    """torch's attn_mask for causal attention: True above the diagonal (a key after the query is hidden)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


class ScaledDotProductAttention(nn.Module):
    """Heads split from [N, T, E], F.scaled_dot_product_attention, heads merged; masked keys get finfo.min.

    finfo.min is Hugging Face BERT's additive mask ((1 − attention_mask)·finfo.min): a
    row whose keys are all masked is uniform rather than NaN. One mask carries both the
    padding and the causal rule, as torch takes an attn_mask or is_causal, not both.
    """

    def __init__(self, heads: int, causal: bool, dropout: float, meaning: str | None):
        super().__init__()
        self.heads, self.causal, self.p, self.meaning = heads, causal, dropout, meaning

    def forward(self, query, key, value, mask=None):
        q, k, v = (self._split(x) for x in (query, key, value))
        bias = None if mask is None else self._bias(mask, query.dtype, query.shape[1])
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p if self.training else 0.0,
                                             is_causal=self.causal and bias is None)
        return out.transpose(1, 2).flatten(2)

    def _split(self, x):
        """[N, T, E] -> [N, heads, T, E/heads]."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def _bias(self, mask, dtype, queries: int):
        """[N, 1, 1 or T, S]: 0 where a query may see the key, finfo(dtype).min elsewhere."""
        hidden = key_padding(mask, self.meaning)[:, None, None, :]
        if self.causal:
            hidden = hidden | causal_mask(queries, mask.device)
        return torch.zeros(hidden.shape, dtype=dtype, device=mask.device).masked_fill(hidden, torch.finfo(dtype).min)


class MultiheadAttention(nn.MultiheadAttention):
    """torch.nn.MultiheadAttention, batch first, taking (query, key, value[, mask]) and returning the output."""

    def __init__(self, p):
        super().__init__(p.embed_dim, p.num_heads, dropout=p.dropout, bias=p.bias, batch_first=True)
        self.causal, self.meaning = p.causal, p.mask

    def forward(self, query, key, value, mask=None):
        attn_mask = causal_mask(query.shape[1], query.device) if self.causal else None
        out, _ = super().forward(query, key, value, key_padding_mask=key_padding(mask, self.meaning),
                                 need_weights=False, attn_mask=attn_mask, is_causal=self.causal)
        return out


def _layer_args(p) -> dict:
    return {"d_model": p.d_model, "nhead": p.nhead, "dim_feedforward": p.dim_feedforward, "dropout": p.dropout,
            "activation": p.activation, "layer_norm_eps": p.layer_norm_eps, "batch_first": True,
            "norm_first": p.norm_first, "bias": p.bias}


class TransformerEncoderLayer(nn.TransformerEncoderLayer):
    """torch.nn.TransformerEncoderLayer, batch first, taking (x[, mask])."""

    def __init__(self, p):
        super().__init__(**_layer_args(p))
        self.causal, self.meaning = p.causal, p.mask

    def forward(self, x, mask=None):
        src_mask = causal_mask(x.shape[1], x.device) if self.causal else None
        return super().forward(x, src_mask=src_mask, src_key_padding_mask=key_padding(mask, self.meaning),
                               is_causal=self.causal)


class TransformerDecoderLayer(nn.TransformerDecoderLayer):
    """torch.nn.TransformerDecoderLayer, batch first, taking (tgt, memory[, tgt mask, memory mask]); ``causal``
    is the self-attention's (torch's tgt_mask), the cross-attention sees every memory position that is not padding."""

    def __init__(self, p):
        super().__init__(**_layer_args(p))
        self.causal, self.meaning = p.causal, p.mask

    def forward(self, tgt, memory, tgt_padding=None, memory_padding=None):
        tgt_mask = causal_mask(tgt.shape[1], tgt.device) if self.causal else None
        return super().forward(tgt, memory, tgt_mask=tgt_mask, tgt_is_causal=self.causal,
                               tgt_key_padding_mask=key_padding(tgt_padding, self.meaning),
                               memory_key_padding_mask=key_padding(memory_padding, self.meaning))


def scaled_dot_product_attention(node: Node) -> nn.Module:
    p = node.params
    return ScaledDotProductAttention(p.heads, p.causal, p.dropout, p.mask)


LOWERINGS = {
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "multi_head_attention": lambda node: MultiheadAttention(node.params),
    "transformer_encoder_layer": lambda node: TransformerEncoderLayer(node.params),
    "transformer_decoder_layer": lambda node: TransformerDecoderLayer(node.params),
}
