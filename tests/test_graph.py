"""The graph language: inputs:, merge ops, named inputs and outputs, sequential:, blocks, if:, repeat:.

Shapes and names are checked on the graph; a block-built residual network is
checked against a hand-written nested torch module (same state_dict keys, same
outputs from the same weights on both targets); ``dslc check`` runs on a residual,
a two-input and a two-output spec.
"""

import jax
import numpy as np
import pytest
import torch
from torch import nn

import dsl
from backends.jax import FlaxModel, state_from_variables, variables_from_state
from backends.parity import check, make_inputs
from backends.target import make_target
from backends.torch import build_module
from backends.weights import init_weights
from dsl.expr import ExprError, evaluate
from dsl.summary import summary_rows
from tests.conftest import REPO

RESNET = REPO / "specs" / "resnet_tiny.yaml"

TWO_INPUTS = """
name: two_inputs
inputs:
  image: {shape: [1, 8, 8]}
  features: {shape: [16], dtype: float64}
model:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, inputs: [image], name: conv}
  - relu
  - flatten
  - linear: {out_features: 32, name: img_proj}
  - linear: {out_features: 32, inputs: [features], name: feat_proj}
  - relu
  - concat: {inputs: [img_proj, relu_2], dim: 1}
  - linear: {out_features: 10, name: head}
train: {loss: cross_entropy, optimizer: adam, batch_size: 8}
"""

TWO_OUTPUTS = """
name: two_outputs
input: {shape: [2, 6, 6]}
model:
  - conv2d: {out_channels: 3, kernel_size: 3, name: conv}
  - relu
  - flatten
  - linear: {out_features: 5, name: head}
outputs: {logits: head, features: conv}
"""


def test_layers_read_earlier_layers_by_name_and_merge_them():
    _, graph = dsl.loads("""
name: merge
input: {shape: [3, 4, 4]}
model:
  - conv2d: {out_channels: 2, kernel_size: 1, name: a}
  - conv2d: {out_channels: 5, kernel_size: 1, inputs: [input], name: b}
  - concat: {inputs: [a, b]}
  - conv2d: {out_channels: 3, kernel_size: 1}
  - add: {inputs: [conv2d_3, input]}
  - multiply: {inputs: [add_1, add_1, input]}
""")
    assert [(n.name, n.inputs, n.output.shape) for n in graph.nodes] == [
        ("a", ("input",), (2, 4, 4)), ("b", ("input",), (5, 4, 4)), ("concat_1", ("a", "b"), (7, 4, 4)),
        ("conv2d_3", ("concat_1",), (3, 4, 4)), ("add_1", ("conv2d_3", "input"), (3, 4, 4)),
        ("multiply_1", ("add_1", "add_1", "input"), (3, 4, 4))]
    assert graph.node("concat_1").params.dim == 1


@pytest.mark.parametrize("dim, shapes, expected", [
    (1, ((2, 3), (4, 3)), (6, 3)), (-1, ((2, 3), (2, 5)), (2, 8)), (2, ((1, 2, 3), (1, 4, 3)), (1, 6, 3)),
])
def test_concat_shape_counts_dims_on_the_batched_tensor(dim, shapes, expected):
    inputs = "\n".join(f"  x{i}: {{shape: {list(s)}}}" for i, s in enumerate(shapes))
    _, graph = dsl.loads(f"name: c\ninputs:\n{inputs}\nmodel:\n  - concat: {{dim: {dim}, inputs: [x0, x1]}}\n")
    assert graph.output_type.shape == expected


def test_a_merge_of_channels_last_activations_matches_torch():
    """Both concat inputs are NHWC in the Flax model (convolutions); the add mixes NHWC with the NCHW input."""
    _, graph = dsl.loads("""
name: layouts
input: {shape: [3, 6, 6], dtype: float64}
model:
  - conv2d: {out_channels: 2, kernel_size: 3, padding: 1, name: a}
  - conv2d: {out_channels: 1, kernel_size: 3, padding: 1, inputs: [input], name: b}
  - concat: {inputs: [a, b], dim: 1}
  - add: {inputs: [concat_1, input]}
  - concat: {inputs: [add_1, concat_1], dim: 3}
  - max_pool2d: {kernel_size: 2}
  - flatten
  - linear: {out_features: 4}
""")
    out_t, out_j = _outputs_both(graph, init_weights(graph, 0, "float64"),
                                 np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    np.testing.assert_allclose(out_j, out_t, rtol=0, atol=1e-12)


def _outputs_both(graph, state, *xs):
    torch_out = build_module(graph, state, dtype="float64")(*(torch.from_numpy(x) for x in xs))
    jax.config.update("jax_enable_x64", True)
    jax_out = FlaxModel(graph).apply(variables_from_state(graph, state), *xs)
    return jax.tree.map(lambda t: t.detach().numpy(), torch_out), jax.tree.map(np.asarray, jax_out)


def test_named_inputs_are_positional_in_declared_order_and_keep_their_dtype():
    _, graph = dsl.loads(TWO_INPUTS)
    assert [(n, t.dtype) for n, t in graph.inputs] == [("image", "float32"), ("features", "float64")]
    module = build_module(graph)
    assert [n.name for n in module.graph.nodes if n.op == "placeholder"] == ["image", "features"]
    assert tuple(module(torch.zeros(2, 1, 8, 8), torch.zeros(2, 16)).shape) == (2, 10)


def test_several_outputs_come_back_as_a_dict_on_both_targets():
    _, graph = dsl.loads(TWO_OUTPUTS)
    assert graph.outputs == (("logits", "head"), ("features", "conv"))
    with pytest.raises(ValueError, match="2 outputs"):
        _ = graph.output
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    out_t, out_j = _outputs_both(graph, init_weights(graph, 0, "float64"), x)
    assert set(out_t) == set(out_j) == {"logits", "features"}
    assert out_t["features"].shape == (3, 3, 4, 4)
    for key in out_t:
        np.testing.assert_allclose(out_j[key], out_t[key], rtol=0, atol=1e-12)


def test_make_inputs_draws_each_input_by_dtype():
    _, graph = dsl.loads("""
name: kinds
inputs:
  ids: {shape: [5], dtype: int64}
  mask: {shape: [5], dtype: bool}
  x: {shape: [5]}
model:
  - linear: {out_features: 2, inputs: [x]}
outputs: [linear_1]
""")
    ids, mask, x = make_inputs(graph, 4, "float64", np.random.default_rng(0))
    assert ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 10 and mask.dtype == bool
    assert x.dtype == np.float64 and x.shape == (4, 5)
    _, one = dsl.loads("name: one\ninput: {shape: [3]}\nmodel: [relu]\n")
    assert make_inputs(one, 2, "float32", np.random.default_rng(0)).shape == (2, 3)  # one input: a bare array


# --- sequential, blocks, names ----------------------------------------------------------------------------

def test_sequential_numbers_unnamed_layers_and_nests_names():
    _, graph = dsl.loads("""
name: seq
input: {shape: [4]}
model:
  - linear: {out_features: 4, name: fc}
  - sequential:
      name: body
      model: [{linear: {out_features: 3}}, relu, {linear: {out_features: 2, name: out}}]
  - relu
""")
    assert [n.name for n in graph.nodes] == ["fc", "body.0", "body.1", "body.out", "relu_1"]
    assert list(graph.state_dict_spec()) == ["fc.weight", "fc.bias", "body.0.weight", "body.0.bias",
                                             "body.out.weight", "body.out.bias"]
    assert graph.node("relu_1").inputs == ("body.out",)


def test_block_instances_nest_and_repeat_records_the_instances():
    _, graph = dsl.load(REPO / "specs" / "digits_gated_mini.yaml")
    assert [g for g in graph.groups if g.name.startswith("stack")] == [
        dsl.Group("stack", "repeat", "gated"), dsl.Group("stack.0", "block", "gated", 0),
        dsl.Group("stack.1", "block", "gated", 1)]
    inner = [n for n in graph.nodes if n.name.startswith("stack.")]
    first = [(n.name.split(".", 2)[2], n.op, n.params) for n in inner if n.name.startswith("stack.0.")]
    second = [(n.name.split(".", 2)[2], n.op, n.params) for n in inner if n.name.startswith("stack.1.")]
    assert first == second  # identical instances: what a later lax.scan over stacked weights needs
    assert graph.node("stack.1.gate").inputs == ("stack.0.add_1",)


def test_repeat_of_a_block_with_two_inputs_chains_the_first_and_keeps_the_second():
    """A layer stack reads the previous layer's output and the same second input (BERT's mask) each time."""
    _, graph = dsl.loads("""
name: stack2
inputs: {x: {shape: [4]}, side: {shape: [4]}}
blocks:
  mix:
    inputs: [h, s]
    model: [{linear: {out_features: 4, inputs: [h], name: fc}}, {add: {inputs: [fc, s]}}]
model:
  - mix: {repeat: 3, inputs: [x, side], name: layer}
""")
    assert graph.node("layer.0.fc").inputs == ("x",)
    assert graph.node("layer.1.fc").inputs == ("layer.0.add_1",)
    assert graph.node("layer.2.fc").inputs == ("layer.1.add_1",)
    assert [graph.node(f"layer.{k}.add_1").inputs[1] for k in range(3)] == ["side"] * 3
    assert list(dict(graph.outputs).values()) == ["layer.2.add_1"]


def test_if_drops_a_layer_and_its_name_stands_for_its_input():
    _, graph = dsl.load(RESNET)
    assert graph.node("layer1.0.add_1").inputs == ("layer1.0.bn2", "relu_1")  # identity shortcut
    assert graph.node("layer2.0.add_1").inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    assert graph.node("layer2.0.downsample.0").inputs == ("layer1.0.relu_2",)  # the block's own input
    assert "layer2.1.downsample.0" not in {n.name for n in graph.nodes}


def test_names_resolve_in_the_nearest_scope_first():
    _, graph = dsl.loads("""
name: scopes
input: {shape: [4]}
model:
  - linear: {out_features: 4, name: a}
  - sequential:
      name: s
      model:
        - linear: {out_features: 4, name: a}
        - add: {inputs: [a, input]}
  - add: {inputs: [a, s]}
""")
    assert graph.node("s.1").inputs == ("s.a", "input")
    assert graph.node("add_1").inputs == ("a", "s.1")


def test_expressions_are_evaluated_without_eval():
    assert evaluate("${planes * 4 // 2 - 1}", {"planes": 16}) == 31
    assert evaluate("${stride != 1 or not downsample}", {"stride": 1, "downsample": True}) is False
    assert evaluate("${1 < x <= 3}", {"x": 3}) is True
    for text in ("${__import__('os')}", "${x.__class__}", "${x ** 99}", "${[1]}", "${'a'}"):
        with pytest.raises(ExprError):
            evaluate(text, {"x": 1})


def test_summary_shows_the_nesting_with_parameters_per_group():
    _, graph = dsl.load(RESNET)
    rows = {(depth, name): (op, params) for depth, name, op, _, params in summary_rows(graph)}
    assert rows[(0, "layer2")] == ("sequential", sum(n.num_parameters for n in graph.nodes
                                                     if n.name.startswith("layer2.")))
    assert rows[(1, "0")][0] == "basic" and rows[(2, "downsample")] == ("sequential", 32 * 16 + 2 * 32)
    _, gated = dsl.load(REPO / "specs" / "digits_gated_mini.yaml")
    assert ("gated ×2" in [op for _, _, op, _, _ in summary_rows(gated)])


# --- a block-built ResNet against a hand-written nested torch module ---------------------------------------

class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, as torchvision writes it."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
                           if stride != 1 else None)

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNetTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(16, 16))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32))
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def test_block_resnet_has_the_hand_written_modules_state_dict_and_outputs():
    """Keys, buffers included, equal the hand-written torchvision-style module's; so do outputs in both modes."""
    _, graph = dsl.load(RESNET)
    reference = ResNetTiny().double()
    assert list(build_module(graph).state_dict()) == list(reference.state_dict()) == list(graph.state_dict_spec())
    assert "layer2.0.downsample.1.running_var" in reference.state_dict()
    state = init_weights(graph, 3, "float64")
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8))
    for train in (False, True):
        expected = reference.train(train)(torch.from_numpy(x)).detach().numpy()
        for target in ("torch", "jax"):
            t = make_target(target, graph, None, dtype="float64")
            t.load_state(state)
            out, _ = t.forward(x, train=train)
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12, err_msg=f"{target}, train={train}")


def test_flax_variables_nest_and_round_trip():
    _, graph = dsl.load(RESNET)
    state = init_weights(graph, 0)
    variables = variables_from_state(graph, state)
    assert set(variables["params"]["layer2"]["0"]["downsample"]["0"]) == {"kernel"}
    assert set(variables["batch_stats"]["layer2"]["0"]["downsample"]["1"]) == {"mean", "var", "num_batches_tracked"}
    init = FlaxModel(graph).init(jax.random.key(0), np.zeros((1, 1, 8, 8), np.float32))
    for collection in ("params", "batch_stats"):
        assert jax.tree.structure(init[collection]) == jax.tree.structure(variables[collection])
    back = state_from_variables(graph, variables)
    assert list(back) == list(state) and all(np.array_equal(back[k], state[k]) for k in state)


# --- dslc check ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [pytest.param("float32", marks=pytest.mark.slow), "float64"])  # float32: 20 s
@pytest.mark.parametrize("text", [TWO_INPUTS, TWO_OUTPUTS], ids=["two_inputs", "two_outputs"])
def test_check_passes_on_several_inputs_and_outputs(text, dtype):
    spec, graph = dsl.loads(text)
    report = check(spec, graph, dtype=dtype, steps=3)
    assert report.ok, report.failures
    outputs = [r.quantity for r in report.rows if r.quantity.startswith("output") and "training" not in r.quantity]
    assert outputs == (["output"] if spec.train else ["output logits", "output features"])


def test_check_draws_ids_within_the_smallest_table_that_reads_them():
    """An embedding of 4 rows: ids 0..9 made torch raise an IndexError inside dslc check."""
    spec, graph = dsl.loads("""
name: small_table
inputs: {ids: {shape: [6], dtype: int64}}
model:
  - embedding: {num_embeddings: 4, embedding_dim: 3}
  - flatten
  - linear: {out_features: 2}
""")
    ids = make_inputs(graph, 64, "float32", np.random.default_rng(0))
    assert ids.max() == 3 and ids.min() == 0
    assert check(spec, graph, dtype="float64").ok


GLU = """
name: glu
input: {shape: [8]}
model:
  - linear: {out_features: 16, name: proj}
  - chunk: {chunks: 2, name: halves}        # two outputs: halves (= halves[0]) and halves[1]
  - sigmoid: {inputs: ["halves[1]"], name: gate}
  - multiply: {inputs: [halves, gate], name: glu}
  - linear: {out_features: 3, name: head}
outputs: {logits: head, gate: "halves[1]"}
"""


def test_an_op_with_several_outputs_is_addressed_by_index_on_both_targets():
    """A gated linear unit from ``chunk``: ``halves[1]`` feeds a layer and is a model output; both targets agree."""
    spec, graph = dsl.loads(GLU)
    halves = graph.node("halves")
    assert halves.value_names == ("halves", "halves[1]") and str(graph.value_type("halves[1]")) == "[N, 8]"
    assert graph.node("gate").inputs == ("halves[1]",) and dict(graph.outputs)["gate"] == "halves[1]"
    x = np.random.default_rng(0).standard_normal((5, 8))
    state = init_weights(graph, 0, "float64")
    outs = {}
    for target in ("torch", "jax"):
        t = make_target(target, graph, None, dtype="float64")
        t.load_state(state)
        outs[target], captured = t.forward(x, capture=True)
        assert set(captured) >= {"halves", "halves[1]", "glu"}
    for key in ("logits", "gate"):
        np.testing.assert_allclose(outs["jax"][key], outs["torch"][key], rtol=1e-12, atol=1e-12)
    proj = x @ state["proj.weight"].T + state["proj.bias"]
    np.testing.assert_allclose(outs["torch"]["gate"], proj[:, 8:], rtol=1e-12)  # the second half, not the first
    report = check(spec, graph, dtype="float64")
    assert report.ok, report.failures
