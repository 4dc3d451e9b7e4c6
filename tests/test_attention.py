"""The attention ops against torch's own modules, and padding masks that really mask.

The catalog's parity examples (tests/test_op_parity.py) compare the two lowerings
with each other, from torch's init, where in_proj_bias, out_proj.bias and the
LayerNorm biases are zero. Here every weight is random, the weights come from
``state_dict()``s of ``torch.nn.MultiheadAttention``, ``TransformerEncoderLayer``
and ``TransformerDecoderLayer`` (loaded strictly), and the reference is torch's
module itself in evaluation mode, float32: both its paths, the one autograd takes
and the fused one it takes under ``no_grad`` (``torch._transformer_encoder_layer_fwd``,
``_native_multi_head_attention``). dslc's torch lowering is torch's module, so it
gives the same numbers; the JAX lowering is within 1e-5 of both (measured: at most
~1e-6, ``pytest -s`` prints each case).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import numpy as np
import pytest
import torch
from torch import nn

import dsl
from backends.jax import FlaxModel, variables_from_state
from backends.jax.layout import CHANNELS_FIRST, plan
from backends.jax.ops import JAX_OPS
from backends.torch import build_module
from backends.weights import init_weights
from dsl.initializers import INITIALIZERS, GainArgs
from dsl.schema import Spec
from tests.helpers import padding_mask

TOLERANCE = 1e-5  # max abs, float32, outputs of order 1
N, T, S, E, FF = 3, 6, 7, 16, 32


@dataclass(frozen=True)
class Case:
    """One configuration: the op, its spec arguments, whether it has a padding mask (in the ``mask`` convention),
    and whether attention reads a second sequence (cross-attention; the decoder always does)."""

    op: str
    args: dict = field(default_factory=dict)
    cross: bool = False

    @property
    def meaning(self) -> str | None:
        return self.args.get("mask")

    @property
    def id(self) -> str:
        return "-".join([self.op, *(f"{k}={v}" for k, v in self.args.items()), *(["cross"] if self.cross else [])])


CASES = [
    Case("multi_head_attention", {"num_heads": 1}),
    Case("multi_head_attention", {"num_heads": 4, "mask": "ignore"}),
    Case("multi_head_attention", {"num_heads": 4, "causal": True, "mask": "keep", "bias": False}),
    Case("multi_head_attention", {"num_heads": 4, "mask": "keep"}, cross=True),
    Case("transformer_encoder_layer", {"nhead": 4, "mask": "keep"}),
    Case("transformer_encoder_layer", {"nhead": 1, "activation": "gelu", "norm_first": True, "causal": True}),
    Case("transformer_encoder_layer", {"nhead": 4, "activation": "gelu", "norm_first": True, "causal": True,
                                       "mask": "ignore", "bias": False}),
    Case("transformer_decoder_layer", {"nhead": 4, "causal": True, "mask": "keep"}, cross=True),
    Case("transformer_decoder_layer", {"nhead": 1, "activation": "gelu", "norm_first": True}, cross=True),
    Case("transformer_decoder_layer", {"nhead": 4, "activation": "gelu", "norm_first": True, "causal": True,
                                       "mask": "ignore"}, cross=True),
]


def torch_reference(case: Case) -> nn.Module:
    """torch's own module for ``case``, batch first, every weight random (no zero bias or unit scale hides a bug)."""
    torch.manual_seed(0)
    a = case.args
    if case.op == "multi_head_attention":
        module = nn.MultiheadAttention(E, a["num_heads"], bias=a.get("bias", True), batch_first=True)
    else:
        layer = nn.TransformerEncoderLayer if case.op == "transformer_encoder_layer" else nn.TransformerDecoderLayer
        module = layer(E, a["nhead"], FF, activation=a.get("activation", "relu"), norm_first=a.get("norm_first", False),
                       bias=a.get("bias", True), batch_first=True)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return module.eval()


def dslc_graph(case: Case) -> dsl.Graph:
    """A one-layer spec: inputs x (and memory, a second sequence of S steps), and a bool padding mask when masked."""
    inputs = {"x": {"shape": [T, E]}}
    if case.cross:
        inputs["memory"] = {"shape": [S, E]}
    reads = {"multi_head_attention": ["x", "memory", "memory"] if case.cross else ["x", "x", "x"],
             "transformer_encoder_layer": ["x"], "transformer_decoder_layer": ["x", "memory"]}[case.op]
    if case.meaning:  # a mask per sequence of keys: x's (self-attention), memory's (cross-attention), or both
        masks = ({"x_mask": T, "memory_mask": S} if case.op == "transformer_decoder_layer" else
                 {"memory_mask": S} if case.cross else {"x_mask": T})
        inputs |= {name: {"shape": [length], "dtype": "bool"} for name, length in masks.items()}
        reads += list(masks)
    extra = {"dim_feedforward": FF} if case.op != "multi_head_attention" else {}
    spec = {"name": "t", "inputs": inputs, "model": [{case.op: {**case.args, **extra, "inputs": reads, "name": "op"}}]}
    return dsl.build_graph(Spec.model_validate(spec))


def draw_inputs(case: Case, graph: dsl.Graph, rng) -> dict[str, np.ndarray]:
    """Standard normal sequences; masks with some rows padded (each keeps one real token or more)."""
    return {name: padding_mask(rng, N, kind.shape[0], case.meaning) if kind.dtype == "bool" else
            rng.standard_normal((N, *kind.shape)).astype("float32") for name, kind in graph.inputs}


def torch_padding(case: Case, mask: np.ndarray | None) -> torch.Tensor | None:
    """torch's key_padding_mask (True = padding) from a mask in the case's convention."""
    if mask is None:
        return None
    return torch.from_numpy(~mask if case.meaning == "keep" else mask)


def run_reference(case: Case, module: nn.Module, xs: dict[str, np.ndarray]) -> torch.Tensor:
    t = {k: torch.from_numpy(v) for k, v in xs.items() if v.dtype != bool}
    x_pad, memory_pad = torch_padding(case, xs.get("x_mask")), torch_padding(case, xs.get("memory_mask"))
    causal = case.args.get("causal", False)
    square = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
    if case.op == "multi_head_attention":
        kv = t["memory"] if case.cross else t["x"]
        return module(t["x"], kv, kv, key_padding_mask=memory_pad if case.cross else x_pad, need_weights=False,
                      attn_mask=square, is_causal=causal)[0]
    if case.op == "transformer_encoder_layer":
        return module(t["x"], src_mask=square, src_key_padding_mask=x_pad, is_causal=causal)
    return module(t["x"], t["memory"], tgt_mask=square, tgt_key_padding_mask=x_pad,
                  memory_key_padding_mask=memory_pad, tgt_is_causal=causal)


def dslc_targets(graph: dsl.Graph, state):
    """``run(xs) -> (torch lowering's output, JAX lowering's output)`` in evaluation mode, each built once."""
    module, apply = build_module(graph, state).eval(), jax.jit(FlaxModel(graph).apply)
    variables = variables_from_state(graph, state)

    def run(xs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        arrays = [xs[name] for name, _ in graph.inputs]
        with torch.no_grad():
            out_t = module(*map(torch.from_numpy, arrays)).numpy()
        return out_t, np.asarray(apply(variables, *arrays))

    return run


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_torch_state_dicts_load_strictly_and_both_targets_match_torch(case):
    reference, graph = torch_reference(case), dslc_graph(case)
    state = {f"op.{k}": v.numpy() for k, v in reference.state_dict().items()}
    assert list(state) == list(graph.state_dict_spec())  # the same keys, in torch's order
    xs = draw_inputs(case, graph, np.random.default_rng(0))
    with torch.enable_grad():
        autograd_path = run_reference(case, reference, xs).detach().numpy()
    with torch.no_grad():  # torch's inference fast path, where its conditions hold
        fused_path = run_reference(case, reference, xs).numpy()
    out_t, out_j = dslc_targets(graph, state)(xs)
    np.testing.assert_array_equal(out_t, fused_path)  # dslc's torch lowering is torch's module
    errors = [np.abs(out_j - ref).max() for ref in (autograd_path, fused_path)]
    print(f"{case.id}: JAX vs torch {errors[0]:.1e} (autograd path), {errors[1]:.1e} (fused path); torch's two "
          f"paths differ by {np.abs(autograd_path - fused_path).max():.1e}")
    assert max(errors) <= TOLERANCE


MASKED = [c for c in CASES if c.meaning]


@pytest.mark.parametrize("case", MASKED, ids=[c.id for c in MASKED])
def test_values_at_padded_positions_do_not_change_real_outputs(case):
    """Padding filled with other values changes nothing at the real positions, on either target."""
    graph = dslc_graph(case)
    state = {f"op.{k}": v.numpy() for k, v in torch_reference(case).state_dict().items()}
    rng = np.random.default_rng(1)
    xs = draw_inputs(case, graph, rng)
    changed = dict(xs)
    for name in ("x", "memory"):
        if f"{name}_mask" in xs:
            padded = (~xs[f"{name}_mask"] if case.meaning == "keep" else xs[f"{name}_mask"])[..., None]
            changed[name] = np.where(padded, 100 * rng.standard_normal(xs[name].shape), xs[name]).astype("float32")
    real, run = _real_queries(case, xs), dslc_targets(graph, state)
    for before, after in zip(run(xs), run(changed), strict=True):
        assert np.array_equal(before[real], after[real])


def _real_queries(case: Case, xs) -> np.ndarray:
    """[N, T] True at the outputs that must not change: every query unless the queries themselves are padded."""
    if "x_mask" not in xs:
        return np.ones((N, T), bool)
    return xs["x_mask"] if case.meaning == "keep" else ~xs["x_mask"]


def test_scaled_dot_product_attention_is_hugging_face_berts_attention():
    """BERT's self-attention core: heads split, q kᵀ/√d + (1 − mask)·finfo.min, softmax, v; a fully padded row is
    uniform over the keys, never NaN, on both targets."""
    spec = {"name": "t", "inputs": {"q": {"shape": [T, E]}, "k": {"shape": [T, E]}, "v": {"shape": [T, E]},
                                    "mask": {"shape": [T], "dtype": "int64"}},
            "model": [{"scaled_dot_product_attention": {"inputs": ["q", "k", "v", "mask"], "heads": 4,
                                                        "mask": "keep"}}]}
    graph = dsl.build_graph(Spec.model_validate(spec))
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((N, T, E)).astype("float32") for _ in range(3))
    mask = padding_mask(rng, N, T).astype("int64")
    mask[1] = 0  # every key of example 1 is padding
    expected = _bert_attention(q, k, v, mask, heads=4)
    for out in dslc_targets(graph, {})({"q": q, "k": k, "v": v, "mask": mask}):
        assert np.abs(out - expected).max() <= TOLERANCE
    np.testing.assert_allclose(expected[1], np.broadcast_to(v[1].mean(0), (T, E)), atol=1e-6)


def _bert_attention(q, k, v, mask, heads: int) -> np.ndarray:
    """Hugging Face's BertSelfAttention (eager) after its projections, in float64 numpy."""
    def split(x):
        return x.astype(np.float64).reshape(N, T, heads, -1).transpose(0, 2, 1, 3)

    scores = split(q) @ split(k).transpose(0, 1, 3, 2) / math.sqrt(E // heads)
    scores = scores + (1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return (probs @ split(v)).transpose(0, 2, 1, 3).reshape(N, T, E)


def test_in_proj_weight_starts_as_torchs_xavier_uniform():
    graph = dslc_graph(Case("transformer_decoder_layer", {"nhead": 4}, cross=True))
    spec = graph.state_dict_spec()
    for key in ("op.self_attn.in_proj_weight", "op.multihead_attn.in_proj_weight"):
        xavier = INITIALIZERS["xavier_uniform"].resolve(GainArgs(), (3 * E, E))
        assert (spec[key].init.low, spec[key].init.high) == pytest.approx((xavier.low, xavier.high), rel=1e-12)
    assert spec["op.self_attn.in_proj_bias"].init.value == spec["op.self_attn.out_proj.bias"].init.value == 0
    assert spec["op.linear1.weight"].init.high == 1 / math.sqrt(E)


def test_a_token_model_with_named_int_inputs_runs_on_both_targets():
    """Token ids and an int attention mask as named inputs, an encoder layer, a conv1d over the sequence (the JAX
    layout plan keeps [N, T, E] activations in torch's order) and a linear head; both targets agree."""
    text = """
name: tokens
inputs:
  ids: {shape: [8], dtype: int64}
  attention_mask: {shape: [8], dtype: int64}
model:
  - embedding: {inputs: [ids], num_embeddings: 20, embedding_dim: 16}
  - transformer_encoder_layer: {inputs: [embedding_1, attention_mask], nhead: 2, dim_feedforward: 32, mask: keep}
  - permute: {dims: [0, 2, 1]}
  - conv1d: {out_channels: 16, kernel_size: 3, padding: 1}
  - permute: {dims: [0, 2, 1]}
  - linear: {out_features: 5}
"""
    graph = dsl.loads(text)[1]
    placements = plan(graph, JAX_OPS).values()
    assert all(p.output == CHANNELS_FIRST and set(p.inputs) == {CHANNELS_FIRST} for p in placements)
    rng = np.random.default_rng(3)
    xs = {"ids": rng.integers(0, 20, (N, 8)), "attention_mask": padding_mask(rng, N, 8).astype("int64")}
    out_t, out_j = dslc_targets(graph, init_weights(graph, seed=0))(xs)
    assert out_t.shape == (N, 8, 5)
    assert np.abs(out_j - out_t).max() <= TOLERANCE


def test_a_query_with_every_key_masked_attends_to_nothing_as_torchs_autograd_path():
    """torch's module gives zero attention (the output is out_proj.bias) on its autograd path but NaN on its fused
    no_grad path; the JAX lowering gives the former (docs/PARITY.md §18)."""
    case = Case("multi_head_attention", {"num_heads": 4, "mask": "keep"})
    reference, graph = torch_reference(case), dslc_graph(case)
    xs = draw_inputs(case, graph, np.random.default_rng(4))
    xs["x_mask"][1] = False
    with torch.enable_grad():
        autograd_path = run_reference(case, reference, xs).detach().numpy()
    with torch.no_grad():
        fused_path = run_reference(case, reference, xs).numpy()
    out_j = dslc_targets(graph, {f"op.{k}": v.numpy() for k, v in reference.state_dict().items()})(xs)[1]
    np.testing.assert_array_equal(autograd_path[1], np.broadcast_to(reference.out_proj.bias.detach().numpy(), (T, E)))
    assert np.isnan(fused_path[1]).all() and not np.isnan(fused_path[0]).any()
    assert np.abs(out_j - autograd_path).max() <= TOLERANCE
