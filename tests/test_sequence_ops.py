"""The sequence utilities against the plain torch and Hugging Face-style expressions they stand for.

The catalog's parity examples prove the two targets equal; these prove both equal to
what a torch user writes by hand: ``nn.Embedding`` at ``arange(T)`` (BERT's position
embeddings), the PyTorch tutorial's ``PositionalEncoding``, a masked mean, the last
real step, ``x[:, start:end:step]``. Masks are drawn with right padding and at least
one real step per row, as ``tests/helpers.padding_mask`` draws them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dsl
from backends.jax import FlaxModel, variables_from_state
from backends.torch import build_module
from backends.weights import init_weights
from tests.helpers import padding_mask

BATCH, STEPS, FEATURES = 4, 7, 6


def model(text: str) -> dsl.Graph:
    return dsl.loads("name: t\n" + text)[1]


def run_both(graph: dsl.Graph, state: dict, *xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(torch output, JAX output) in evaluation mode."""
    with torch.no_grad():
        out_t = build_module(graph, state).eval()(*(torch.from_numpy(x) for x in xs)).numpy()
    return out_t, np.asarray(FlaxModel(graph).apply(variables_from_state(graph, state), *xs))


def pool_model(mode: str, mask_dtype: str, reading: str) -> dsl.Graph:
    return model(f"""inputs:
  x: {{shape: [{STEPS}, {FEATURES}]}}
  mask: {{shape: [{STEPS}], dtype: {mask_dtype}}}
model:
  - sequence_pool: {{mode: {mode}, mask: {reading}, inputs: [x, mask]}}
""")


def masked_input(reading: str, mask_dtype: str, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, the mask as the op reads it, keep: True at real steps)."""
    keep = padding_mask(rng, BATCH, STEPS)
    mask = (keep if reading == "keep" else ~keep).astype(mask_dtype)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32"), mask, keep


def test_position_embedding_is_an_embedding_at_arange_with_hugging_faces_key():
    graph = model(f"""input: {{shape: [{STEPS}], dtype: int64}}
model:
  - position_embedding: {{num_embeddings: 16, embedding_dim: {FEATURES}, name: position_embeddings}}
""")
    state = init_weights(graph, seed=3)
    assert list(state) == ["position_embeddings.weight"] and state["position_embeddings.weight"].shape == (16, 6)
    module = build_module(graph, state)
    assert list(module.state_dict()) == ["position_embeddings.weight"]  # nothing else: positions are built per call
    reference = nn.Embedding(16, FEATURES)
    reference.load_state_dict({"weight": torch.from_numpy(state["position_embeddings.weight"])})
    ids = np.random.default_rng(0).integers(0, 30000, (BATCH, STEPS))
    expected = reference(torch.arange(STEPS)[None]).expand(BATCH, -1, -1).detach().numpy()
    out_t, out_j = run_both(graph, state, ids)
    np.testing.assert_array_equal(out_t, expected)
    np.testing.assert_array_equal(out_j, expected)


def test_position_embedding_reads_the_length_of_a_feature_input_and_adds_to_it():
    """BERT's sum: word embeddings [N, T, E] + position embeddings of the same [N, T, E], no broadcasting."""
    graph = model(f"""input: {{shape: [{STEPS}], dtype: int64}}
model:
  - embedding: {{num_embeddings: 20, embedding_dim: {FEATURES}, name: words}}
  - position_embedding: {{num_embeddings: {STEPS}, embedding_dim: {FEATURES}, name: positions}}
  - add: {{inputs: [words, positions]}}
""")
    state = init_weights(graph, seed=1)
    ids = np.random.default_rng(1).integers(0, 20, (BATCH, STEPS))
    expected = state["words.weight"][ids] + state["positions.weight"][None]
    out_t, out_j = run_both(graph, state, ids)
    np.testing.assert_array_equal(out_t, expected)
    np.testing.assert_array_equal(out_j, expected)


class TutorialPositionalEncoding(nn.Module):
    """The PyTorch tutorial's PositionalEncoding (batch first, without its dropout), verbatim in float32."""

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[: x.size(1)]


def test_sinusoidal_position_is_the_tutorials_table_and_equal_on_both_targets():
    """The tutorial computes in float32 (1.9e-6 from the float64 table over 64 positions at E = 32); both targets round
    the float64 table once, so they agree exactly."""
    steps, features = 64, 32
    graph = model(f"input: {{shape: [{steps}, {features}]}}\nmodel:\n  - sinusoidal_position\n")
    assert graph.state_dict_spec() == {} and build_module(graph).state_dict() == {}
    x = np.random.default_rng(2).standard_normal((BATCH, steps, features)).astype("float32")
    out_t, out_j = run_both(graph, {}, x)
    np.testing.assert_array_equal(out_j, out_t)
    expected = TutorialPositionalEncoding(features)(torch.from_numpy(x)).numpy()
    assert np.abs(out_t - expected).max() <= 5e-6


@pytest.mark.parametrize("reading, mask_dtype", [("keep", "int64"), ("ignore", "bool")])
def test_sequence_pool_against_expressions_by_hand(reading, mask_dtype):
    """Masked mean, max over real steps, the last real step (index count - 1 under right padding), step 0."""
    rng = np.random.default_rng(4)
    x, mask, keep = masked_input(reading, mask_dtype, rng)
    rows, count = np.arange(BATCH), keep.sum(1)
    expected = {
        "mean": (x * keep[..., None]).sum(1) / count[:, None],
        "max": np.where(keep[..., None], x, -np.inf).max(1),
        "last": x[rows, count - 1],
    }
    for mode, reference in expected.items():
        out_t, out_j = run_both(pool_model(mode, mask_dtype, reading), {}, x, mask)
        np.testing.assert_allclose(out_t, reference, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(out_j, reference, rtol=1e-6, atol=1e-6)
    out_t, out_j = run_both(model(f"input: {{shape: [{STEPS}, {FEATURES}]}}\nmodel:\n  - sequence_pool: "
                                  "{mode: first}\n"), {}, x)
    np.testing.assert_array_equal(out_t, x[:, 0])
    np.testing.assert_array_equal(out_j, x[:, 0])


@pytest.mark.parametrize("mode", ["mean", "max", "last"])
def test_padded_steps_do_not_change_the_pooled_output(mode):
    rng = np.random.default_rng(5)
    x, mask, keep = masked_input("keep", "int64", rng)
    changed = np.where(keep[..., None], x, 100 * rng.standard_normal(x.shape)).astype("float32")
    graph = pool_model(mode, "int64", "keep")
    for before, after in zip(run_both(graph, {}, x, mask), run_both(graph, {}, changed, mask)):
        np.testing.assert_array_equal(after, before)


def test_a_row_without_real_steps_pools_to_zeros_or_step_0():
    """The documented choice for an all-padding row (docs/PARITY.md): finite and equal on both targets."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, STEPS, FEATURES)).astype("float32")
    mask = np.array([[1] * STEPS, [0] * STEPS])
    for mode, empty in (("mean", np.zeros(FEATURES)), ("max", np.zeros(FEATURES)), ("last", x[1, 0])):
        for out in run_both(pool_model(mode, "int64", "keep"), {}, x, mask):
            np.testing.assert_array_equal(out[1], empty)


def test_max_sends_the_gradient_of_tied_values_to_the_first():
    """After a relu, zeros tie; torch's lowering gathers at argmax (the first), and JAX's does the same."""
    import jax

    graph = pool_model("max", "bool", "ignore")
    x = np.zeros((1, STEPS, FEATURES), np.float32)
    mask = np.zeros((1, STEPS), bool)
    xt = torch.from_numpy(x).requires_grad_()
    build_module(graph)(xt, torch.from_numpy(mask)).sum().backward()
    expected = np.zeros_like(x)
    expected[:, 0] = 1
    np.testing.assert_array_equal(xt.grad.numpy(), expected)
    variables = variables_from_state(graph, {})
    grad = jax.grad(lambda v: FlaxModel(graph).apply(variables, v, mask).sum())(x)
    np.testing.assert_array_equal(np.asarray(grad), expected)


def test_select_and_slice_count_dims_as_torch_after_a_channels_last_convolution():
    """The JAX plan holds the conv's output NHWC; select and slice see it restored to NCHW."""
    from backends.jax.layout import CHANNELS_LAST, plan
    from backends.jax.ops import JAX_OPS

    graph = model("""input: {shape: [2, 7, 7]}
model:
  - conv2d: {out_channels: 4, kernel_size: 3, name: conv}
  - slice: {dim: 3, start: 1, end: -1, step: 2, name: cols}
  - select: {dim: 1, index: -2, name: channel}
""")
    assert plan(graph, JAX_OPS)["conv"].output == CHANNELS_LAST
    state = init_weights(graph, seed=0)
    x = np.random.default_rng(7).standard_normal((BATCH, 2, 7, 7)).astype("float32")
    with torch.no_grad():
        conv = nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(state["conv.weight"]),
                                    torch.from_numpy(state["conv.bias"]))
    expected = conv[:, :, :, 1:-1:2].select(1, -2).numpy()
    out_t, out_j = run_both(graph, state, x)
    assert out_t.shape == (BATCH, 5, 2)
    np.testing.assert_array_equal(out_t, expected)
    np.testing.assert_allclose(out_j, expected, rtol=1e-5, atol=1e-5)


SLICES = [(0, None, 1), (2, 5, 1), (-3, None, 1), (1, -1, 2), (-100, 100, 3), (5, 100, 1), (-1, None, 4), (0, 1, 9)]


@pytest.mark.parametrize("start, end, step", SLICES)
def test_slice_follows_python_bounds(start, end, step):
    """Negative and out-of-range bounds as Python resolves them; ids keep their dtype."""
    graph = model(f"""input: {{shape: [{STEPS}, 3], dtype: int64}}
model:
  - slice: {{dim: 1, start: {start}, end: {'null' if end is None else end}, step: {step}}}
""")
    ids = np.arange(BATCH * STEPS * 3).reshape(BATCH, STEPS, 3)
    for out in run_both(graph, {}, ids):
        np.testing.assert_array_equal(out, ids[:, start:end:step])
