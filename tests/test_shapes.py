"""Shape inference agrees with what torch and JAX actually compute, for every op example."""

import jax
import numpy as np
import pytest
import torch

import dsl
from backends.jax import FlaxModel
from backends.torch import build_module
from tests.helpers import example_cases, single_op_graph


@pytest.mark.parametrize("case, op, example", example_cases(), ids=[c[0] for c in example_cases()])
def test_inferred_shape_matches_torch_meta_and_jax_eval_shape(case, op, example):
    graph = single_op_graph(op, example)
    expected = (2, *graph.output_type.shape)
    dtypes = [example.dtype_of(i, "float32") for i in range(len(example.inputs))]
    with torch.device("meta"):
        module = build_module(graph).eval()  # BatchNorm's momentum: null reads num_batches_tracked while training
        xs_t = (torch.empty(2, *shape, dtype=getattr(torch, d)) for shape, d in zip(example.inputs, dtypes))
        assert tuple(module(*xs_t).shape) == expected
    model = FlaxModel(graph)
    xs = [jax.ShapeDtypeStruct((2, *shape), np.dtype(d)) for shape, d in zip(example.inputs, dtypes)]
    variables = jax.eval_shape(model.init, jax.random.key(0), *xs)
    assert jax.eval_shape(model.apply, variables, *xs).shape == expected


def test_the_article_cnn_flattens_to_5408():
    spec, graph = dsl.load("specs/mnist_cnn.yaml")
    shapes = {n.name: n.output.shape for n in graph.nodes}
    assert shapes["conv1"] == (32, 26, 26)
    assert shapes["max_pool2d_1"] == (32, 13, 13)
    assert shapes["flatten_1"] == (5408,)
    assert graph.node("fc1").params.in_features == 5408


@pytest.mark.parametrize("path, parameters", [("specs/mnist_cnn.yaml", 693_962), ("specs/mnist_mlp.yaml", 101_770),
                                              ("specs/digits_cnn.yaml", 67_274), ("specs/digits_mlp.yaml", 9_610),
                                              ("specs/digits_bn_cnn.yaml", 67_434)])  # BatchNorm buffers not counted
def test_parameter_counts_agree_with_torch_and_flax(path, parameters):
    _, graph = dsl.load(path)
    assert graph.num_parameters == parameters
    assert sum(p.numel() for p in build_module(graph).parameters()) == parameters
    x = np.zeros((1, *graph.input_types["input"].shape), np.float32)
    variables = FlaxModel(graph).init(jax.random.key(0), x)
    assert sum(a.size for a in jax.tree.leaves(variables["params"])) == parameters


def test_unnamed_layers_get_op_and_count_names():
    _, graph = dsl.loads("""
name: naming
input: {shape: [4]}
model: [relu, {linear: {out_features: 3}}, relu, {linear: {out_features: 2, name: head}}, tanh]
""")
    assert [n.name for n in graph.nodes] == ["relu_1", "linear_1", "relu_2", "head", "tanh_1"]


@pytest.mark.parametrize("padding, stride, dilation, kernel, size, expected", [
    ("same", 1, 1, 4, 9, 9), ("valid", 1, 1, 3, 9, 7), (1, 2, 1, 3, 10, 5), (3, 2, 1, 7, 8, 4), (0, 1, 2, 3, 12, 8),
])
def test_conv_output_size(padding, stride, dilation, kernel, size, expected):
    _, graph = dsl.loads(f"""
name: conv
input: {{shape: [2, {size}, {size}]}}
model:
  - conv2d: {{out_channels: 3, kernel_size: {kernel}, padding: {padding}, stride: {stride}, dilation: {dilation}}}
""")
    assert graph.output_type.shape == (3, expected, expected)
