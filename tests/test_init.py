"""``init:``: per-layer and by-op initializers, resolved once in dsl/ and sampled once in numpy for both targets.

Statistics are checked on tensors of 300k-600k values, where the sampling error of a
standard deviation is about 0.1%: a 2% tolerance catches a wrong formula (a fan_in
for a fan_out is a factor of 2 or more here) and never a correct one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dsl
from backends.parity import check
from backends.weights import init_weights
from dsl.initializers import InitSpec, KaimingArgs, fan_in_and_fan_out
from dsl.ops import Constant, Normal, Uniform
from dsl.schema import json_schema
from dsl.summary import summary_rows
from dsl.weight_init import parse_initializer
from tests.conftest import REPO

BIG_CONV = """
name: big_conv
input: {{shape: [256, 3, 3]}}
model:
  - conv2d: {{out_channels: 256, kernel_size: 3, name: conv, init: {{weight: {init}}}}}
"""


def sampled(init: str, seed: int = 0) -> np.ndarray:
    """The conv weight [256, 256, 3, 3] drawn with ``init`` (a YAML flow value)."""
    _, graph = dsl.loads(BIG_CONV.format(init=init))
    return init_weights(graph, seed=seed, dtype="float64")["conv.weight"]


def test_normal_std_on_a_large_conv():
    weight = sampled("{normal: {std: 0.02}}")
    assert weight.shape == (256, 256, 3, 3)
    assert abs(weight.std() / 0.02 - 1) < 0.02
    assert abs(weight.mean()) < 1e-4  # 4 standard errors of the mean (0.02 / 768)


def test_normal_mean():
    weight = sampled("{normal: {mean: 1.0, std: 0.02}}")
    assert abs(weight.mean() - 1.0) < 1e-4 and abs(weight.std() / 0.02 - 1) < 0.02


@pytest.mark.parametrize("init, value", [("zeros", 0.0), ("ones", 1.0), ("{constant: {value: -0.25}}", -0.25)])
def test_constants_are_exact(init, value):
    assert np.array_equal(sampled(init), np.full((256, 256, 3, 3), value))


TORCH_INITS = [
    ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"}),  # torchvision's ResNet
    ("kaiming_normal", {}),
    ("kaiming_uniform", {"a": math.sqrt(5)}),  # torch's own Linear/Conv default, written out
    ("kaiming_uniform", {"mode": "fan_out", "nonlinearity": "tanh"}),
    ("xavier_uniform", {"gain": 2.0}),
    ("xavier_normal", {}),
    ("normal", {"mean": 0.5, "std": 0.02}),
    ("uniform", {"a": -0.1, "b": 0.3}),
    ("trunc_normal", {"std": 0.02, "a": -0.03, "b": 0.03}),
    ("orthogonal", {"gain": 1.5}),
]


@pytest.mark.parametrize("name, args", TORCH_INITS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_INITS)])
def test_statistics_match_torch_nn_init(name, args):
    """Mean and std of dslc's numpy draws against torch.nn.init's own on the same shape."""
    yaml_args = ", ".join(f"{k}: {v}" for k, v in args.items())
    ours = sampled(f"{{{name}: {{{yaml_args}}}}}")
    theirs = torch.empty(256, 256, 3, 3, dtype=torch.float64)
    torch.manual_seed(0)
    getattr(torch.nn.init, name + "_")(theirs, **args)
    theirs = theirs.numpy()
    assert abs(ours.std() / theirs.std() - 1) < 0.02, (ours.std(), theirs.std())
    assert abs(ours.mean() - theirs.mean()) < 0.02 * theirs.std() + 1e-12
    if name in ("uniform", "trunc_normal"):
        assert args["a"] <= ours.min() and ours.max() <= args["b"]


def test_kaiming_fan_out_std_is_gain_over_root_fan_out():
    resolved = parse_initializer({"kaiming_normal": {"mode": "fan_out", "nonlinearity": "relu"}}).resolve((64, 3, 7, 7))
    assert resolved == Normal(math.sqrt(2) / math.sqrt(64 * 49))
    weight = sampled("{kaiming_normal: {mode: fan_out, nonlinearity: relu}}")
    assert abs(weight.std() / (math.sqrt(2) / math.sqrt(256 * 9)) - 1) < 0.02


@pytest.mark.parametrize("shape", [(8, 5), (16, 4, 3, 3), (6, 2, 4, 4), (4, 3, 5), (100, 32)])
def test_fans_are_torchs_on_the_stored_layout(shape):
    """linear [out, in], conv2d, conv_transpose2d [in, out/groups, k, k], conv1d, embedding: torch's dims 1 and 0."""
    assert fan_in_and_fan_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_conv_transpose_fans_come_from_its_in_out_layout():
    spec = """
name: ct
input: {shape: [8, 4, 4]}
model:
  - conv_transpose2d: {out_channels: 6, kernel_size: 3, groups: 2, name: up, init: {weight: xavier_normal}}
"""
    _, graph = dsl.loads(spec)
    weight = graph.state_dict_spec()["up.weight"]
    assert weight.shape == (8, 3, 3, 3)  # [in, out/groups, kH, kW]
    fan_in, fan_out = 3 * 9, 8 * 9  # torch's: dim 1, then dim 0, as stored
    assert weight.init == Normal(math.sqrt(2 / (fan_in + fan_out)))


LAYERED = """
name: layered
input: {shape: [3, 8, 8]}
init:
  conv2d: {weight: {normal: {std: 0.02}}, bias: zeros}
  batch_norm2d: {weight: {normal: {mean: 1.0, std: 0.02}}, bias: zeros}
model:
  - conv2d: {out_channels: 4, kernel_size: 3, name: a}
  - batch_norm2d: {name: bn}
  - conv2d: {out_channels: 4, kernel_size: 3, name: b, init: {weight: ones}}
  - conv2d: {out_channels: 4, kernel_size: 3, bias: false, name: c}
  - flatten
  - linear: {out_features: 3, name: fc}
"""


def test_a_layers_own_init_beats_the_by_op_default_weight_by_weight():
    _, graph = dsl.loads(LAYERED)
    inits = {k: w.init for k, w in graph.state_dict_spec().items()}
    assert inits["a.weight"] == Normal(0.02) and inits["a.bias"] == Constant(0.0)
    assert inits["b.weight"] == Constant(1.0) and inits["b.bias"] == Constant(0.0)  # its own weight, the op's bias
    assert "c.bias" not in inits  # bias: false: the default's bias is skipped, as weights_init's `if m.bias`
    assert inits["bn.weight"] == Normal(0.02, mean=1.0)
    assert inits["bn.running_var"] == Constant(1.0)  # buffers keep theirs
    assert isinstance(inits["fc.weight"], Uniform)  # no default for linear: torch's
    state = init_weights(graph, seed=0)
    assert np.array_equal(state["b.weight"], np.ones((4, 4, 3, 3), "float32"))


def test_a_models_own_defaults_beat_the_top_level_ones():
    spec = """
name: two
init: {linear: {weight: zeros, bias: zeros}}
models:
  g:
    input: {shape: [4]}
    init: {linear: {weight: ones}}
    model: [{linear: {out_features: 2, name: fc}}]
  d:
    input: {shape: [4]}
    model: [{linear: {out_features: 2, name: fc}}]
"""
    _, graph = dsl.loads(spec)
    inits = {k: w.init for k, w in graph.state_dict_spec().items()}
    assert inits == {"g.fc.weight": Constant(1.0), "g.fc.bias": Constant(0.0),
                     "d.fc.weight": Constant(0.0), "d.fc.bias": Constant(0.0)}


def test_block_arguments_reach_init_and_prelu_keeps_its_own_init_argument():
    spec = """
name: blocky
input: {shape: [16]}
blocks:
  dense:
    args: {width: 8, std: 0.5}
    model:
      - linear: {out_features: "${width}", name: fc, init: {weight: {normal: {std: "${std}"}}}}
      - prelu: {init: 0.1, name: act}
model:
  - dense: {std: 0.03}
  - prelu: {init: {weight: {constant: {value: 0.3}}}}
"""
    _, graph = dsl.loads(spec)
    inits = {k: w.init for k, w in graph.state_dict_spec().items()}
    assert inits["dense_1.fc.weight"] == Normal(0.03)
    assert inits["dense_1.act.weight"] == Constant(0.1) and inits["prelu_1.weight"] == Constant(0.3)


def test_specs_without_init_draw_exactly_as_before():
    """torch's defaults, drawn in state_dict order from one generator: replayed here by hand."""
    _, graph = dsl.load(REPO / "specs/digits_cnn.yaml")
    rng = np.random.default_rng(7)
    for key, value in init_weights(graph, seed=7).items():
        weight = graph.state_dict_spec()[key]
        fan_in = int(np.prod(graph.node(key.rsplit(".", 1)[0]).weights["weight"].shape[1:]))
        expected = rng.uniform(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), weight.shape).astype("float32")
        assert np.array_equal(value, expected), key


def test_init_changes_neither_the_parameter_count_nor_the_summary():
    defaults = ("init:", "  conv2d: {w", "  batch_norm2d: {w")
    lines = [line for line in LAYERED.splitlines() if not line.startswith(defaults)]
    plain = "\n".join(lines).replace(", init: {weight: ones}", "")
    assert "init" not in plain
    _, with_init = dsl.loads(LAYERED)
    _, without = dsl.loads(plain)
    assert with_init.num_parameters == without.num_parameters
    assert summary_rows(with_init) == summary_rows(without)
    assert {k: w.shape for k, w in with_init.state_dict_spec().items()} == {
        k: w.shape for k, w in without.state_dict_spec().items()}


PARITY = """
name: parity
input: {shape: [3, 8, 8]}
init:
  conv2d: {weight: {kaiming_normal: {mode: fan_out, nonlinearity: relu}}}
  batch_norm2d: {weight: {normal: {mean: 1.0, std: 0.02}}, bias: {constant: {value: 0.1}}}
model:
  - batch_norm2d: {name: bn}
  - conv2d: {out_channels: 4, kernel_size: 3, name: conv, init: {bias: {uniform: {a: -0.1, b: 0.1}}}}
  - relu
  - flatten
  - linear: {out_features: 3, name: fc, init: {weight: {trunc_normal: {std: 0.02}}, bias: zeros}}
data: {dataset: synthetic, train_size: 64, test_size: 16}
train: {loss: cross_entropy, optimizer: adam, batch_size: 8}
"""


def test_both_targets_start_from_the_same_overridden_weights():
    """dslc check on a spec whose every weight is overridden: outputs, gradients and 2 steps agree."""
    spec, graph = dsl.loads(PARITY)
    assert all(not isinstance(w.init, Uniform) or w.init.low == -0.1 for w in graph.state_dict_spec().values())
    report = check(spec, graph, dtype="float64", steps=2, batch_size=8)
    assert report.ok, report.failures


def test_dcgan_specs_start_from_the_papers_init():
    _, graph = dsl.load(REPO / "specs/dcgan_digits.yaml")
    state = init_weights(graph, seed=0, dtype="float64")
    convs = np.concatenate([state[k].ravel() for k in state if "conv" in k and k.endswith("weight")])
    assert abs(convs.std() / 0.02 - 1) < 0.05 and abs(convs.mean()) < 1e-3  # 43k values
    assert np.array_equal(state["generator.bn1.bias"], np.zeros(64))
    assert abs(state["generator.bn1.weight"].mean() - 1) < 0.01
    assert graph.state_dict_spec()["discriminator.conv3.bias"].init == Uniform.symmetric(1 / math.sqrt(64 * 4))


def test_the_json_schema_offers_init_on_layers_with_weights():
    schema = json_schema()
    defs = schema["$defs"]
    assert "init" in defs["Conv2dLayer"]["properties"] and "init" not in defs["ReluLayer"]["properties"]
    assert "init" in schema["properties"] and "init" in defs["ModelSpec"]["properties"]


def test_an_initializer_is_parsed_as_torch_names_it():
    assert parse_initializer("zeros").resolve((3,)) == Constant(0.0)
    assert parse_initializer({"kaiming_uniform": None}) == InitSpec("kaiming_uniform", KaimingArgs())
    assert parse_initializer({"uniform": {"a": -1, "b": 1}}).resolve((3,)) == Uniform(-1.0, 1.0)
