"""``lstm`` and ``gru`` against torch.nn.LSTM and torch.nn.GRU themselves, and their named outputs.

A state_dict saved from torch's own module loads strictly into dslc's torch lowering
(whose outputs are then torch's, bit for bit) and, converted, into the Flax model,
whose outputs and final states must match torch's within 1e-5 max abs in float32,
evaluation mode. Measured (CPU, torch 2.14.1, jax 0.10.2; inputs N(0, 1), 3 x 7 x 5,
hidden 6), max abs of each output:

| configuration | lstm (output, h_n, c_n) | gru (output, h_n) |
|---|---|---|
| 1 layer | 8.9e-8, 8.9e-8, 6.0e-8 | 8.9e-8, 8.9e-8 |
| 2 layers | 7.5e-8, 8.9e-8, 1.2e-7 | 6.0e-8, 1.2e-7 |
| bidirectional | 8.6e-8, 6.0e-8, 1.2e-7 | 1.2e-7, 6.0e-8 |
| 2 layers, bidirectional (dropout 0.3, off in eval) | 8.9e-8, 8.9e-8, 1.2e-7 | 8.9e-8, 6.0e-8 |
| 2 layers, bias false | 1.8e-8, 8.9e-8, 8.9e-8 | 4.5e-8, 3.0e-8 |
"""

import io

import jax
import numpy as np
import pytest
import torch

import dsl
from backends.jax import FlaxModel, variables_from_state
from backends.jax.layout import plan
from backends.jax.ops import JAX_OPS
from backends.torch import build_module
from backends.torch.ops import TORCH_OPS
from tests.conftest import REPO

N, T, FEATURES, HIDDEN = 3, 7, 5, 6
CONFIGS = {
    "1-layer": {},
    "2-layers": {"num_layers": 2},
    "bidirectional": {"bidirectional": True},
    "2-layers-bidirectional": {"num_layers": 2, "bidirectional": True, "dropout": 0.3},
    "bias-false": {"num_layers": 2, "bias": False},
}
TORCH_MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
CASES = [(op, name) for op in TORCH_MODULES for name in CONFIGS]


def _graph(op: str, config: dict) -> dsl.Graph:
    """One recurrent layer named ``rnn`` over [N, T, 5], every output of it a model output, by name."""
    args = ", ".join(f"{k}: {str(v).lower()}" for k, v in {"hidden_size": HIDDEN, **config}.items())
    states = ["h_n", "c_n"] if op == "lstm" else ["h_n"]
    outputs = ", ".join(["output: rnn"] + [f'{s}: "rnn[{s}]"' for s in states])
    return dsl.loads(f"name: {op}_case\ninput: {{shape: [{T}, {FEATURES}]}}\n"
                     f"model:\n  - {op}: {{{args}, name: rnn}}\noutputs: {{{outputs}}}\n")[1]


def _saved_torch_module(op: str, config: dict, seed: int) -> tuple[torch.nn.Module, dict]:
    """torch's own module (eval mode) and its state_dict, saved and read back as a checkpoint file would be."""
    torch.manual_seed(seed)
    module = TORCH_MODULES[op](FEATURES, HIDDEN, batch_first=True, **config).eval()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    return module, torch.load(buffer)


def _torch_reference(module: torch.nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """torch's outputs by dslc's names, the states moved batch first as dslc gives them."""
    with torch.no_grad():
        output, states = module(torch.from_numpy(x))
    states = states if isinstance(states, tuple) else (states,)
    named = dict(zip(("h_n", "c_n"), (s.transpose(0, 1).numpy() for s in states)))
    return {"output": output.numpy(), **named}


@pytest.mark.parametrize("op, name", CASES, ids=[f"{op}-{name}" for op, name in CASES])
def test_torch_checkpoints_load_strictly_and_both_targets_match_torch(op, name):
    config = CONFIGS[name]
    module, saved = _saved_torch_module(op, config, seed=len(name))
    graph = _graph(op, config)
    assert [(k, tuple(w.shape)) for k, w in graph.state_dict_spec().items()] == \
        [(f"rnn.{k}", tuple(v.shape)) for k, v in saved.items()]  # torch's keys, shapes and order
    TORCH_OPS[op](graph.node("rnn")).load_state_dict(saved, strict=True)

    x = np.random.default_rng(0).standard_normal((N, T, FEATURES)).astype(np.float32)
    expected = _torch_reference(module, x)
    state = {f"rnn.{k}": v.numpy() for k, v in saved.items()}
    with torch.no_grad():
        out_t = build_module(graph, state).eval()(torch.from_numpy(x))
    out_j = FlaxModel(graph).apply(variables_from_state(graph, state), x)
    assert set(out_t) == set(out_j) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(out_t[key].numpy(), value)  # torch's own module: the same numbers
        assert out_j[key].dtype == np.float32 and out_j[key].shape == value.shape
        assert np.abs(np.asarray(out_j[key]) - value).max() <= 1e-5, key


def test_dropout_acts_between_layers_only_and_only_when_training():
    graph = _graph("lstm", {"num_layers": 2, "dropout": 0.5})
    _, saved = _saved_torch_module("lstm", {"num_layers": 2, "dropout": 0.5}, seed=0)
    variables = variables_from_state(graph, {f"rnn.{k}": v.numpy() for k, v in saved.items()})
    x = np.random.default_rng(1).standard_normal((N, T, FEATURES)).astype(np.float32)
    model = FlaxModel(graph)
    evaluated = model.apply(variables, x)
    trained = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(0)})
    assert np.abs(np.asarray(trained["output"]) - np.asarray(evaluated["output"])).max() > 1e-2
    assert np.all(np.asarray(trained["output"]) != 0)  # the last layer's output is not dropped


LAYERS = """
name: named
input: {shape: [4, 3]}
model:
  - lstm: {hidden_size: 5, num_layers: 2}
  - flatten: {inputs: [REF]}
"""


@pytest.mark.parametrize("ref, value, shape", [("lstm_1[h_n]", "lstm_1[1]", (2, 5)), ("lstm_1[1]", "lstm_1[1]", (2, 5)),
                                               ("lstm_1[c_n]", "lstm_1[2]", (2, 5)),
                                               ("lstm_1[output]", "lstm_1", (4, 5)), ("lstm_1", "lstm_1", (4, 5))])
def test_an_output_is_read_by_name_or_index(ref, value, shape):
    _, graph = dsl.loads(LAYERS.replace("REF", f'"{ref}"'))
    assert graph.nodes[1].inputs == (value,)
    assert graph.value_type(value).shape == shape


@pytest.mark.parametrize("op, ref, message", [
    ("lstm", "lstm_1[hn]", "'lstm_1[hn]': lstm_1 (lstm) has no output 'hn'; did you mean 'h_n'?; its outputs are "
                          "output, h_n, c_n (lstm_1[0], lstm_1[1], lstm_1[2])"),
    ("gru", "gru_1[c_n]", "'gru_1[c_n]': gru_1 (gru) has no output 'c_n'; its outputs are output, h_n "
                          "(gru_1[0], gru_1[1])"),
    ("lstm", "lstm_1[3]", "'lstm_1[3]': lstm_1 (lstm) has 3 outputs (lstm_1[0], lstm_1[1], lstm_1[2]): "
                          "output, h_n, c_n"),
])
def test_a_wrong_output_name_is_a_located_error_listing_the_names(op, ref, message):
    text = LAYERS.replace("lstm:", f"{op}:").replace("REF", f'"{ref}"')
    with pytest.raises(dsl.SpecError) as info:
        dsl.loads(text)
    assert info.value.message == message
    assert (info.value.location.line, info.value.location.col) == (6, 24)


def test_sequences_are_never_planned_channels_last_in_the_flax_model():
    """The layout planner holds 4-D values NHWC; [N, T, F] sequences must stay in torch's order throughout."""
    _, graph = dsl.load(REPO / "specs" / "gru_classifier.yaml")
    placements = plan(graph, JAX_OPS).values()
    assert {layout.kind for p in placements for layout in (*p.inputs, p.output)} == {"channels_first"}
