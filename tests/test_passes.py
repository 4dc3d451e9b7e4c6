"""Optimization passes change how a model runs, never what it computes."""

import re

import numpy as np
import pytest
import torch

import dsl
from backends.jax import state_from_variables, variables_from_state
from backends.torch import build_module
from backends.weights import init_weights
from dsl.passes import HINTS, PASSES, optimize, passes_for, relu_inplace
from tests.conftest import REPO
from tests.test_op_parity import run_jax, run_torch

CNN = """
name: pool_relu
input: {shape: [2, 12, 12]}
model:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: conv}
  - relu
  - max_pool2d: {kernel_size: 2}
  - conv2d: {out_channels: 3, kernel_size: 3, name: conv2}
  - relu
  - max_pool2d: {kernel_size: 3, stride: 1}
  - flatten
  - linear: {out_features: 5, name: head}
"""


def test_pool_before_activation_swaps_relu_and_max_pool_keeping_names():
    _, graph = dsl.loads(CNN)
    swapped = optimize(graph, ["pool_before_activation"])
    assert [n.op for n in swapped.nodes] == ["conv2d", "max_pool2d", "relu", "conv2d", "max_pool2d", "relu",
                                             "flatten", "linear"]
    assert [n.name for n in swapped.nodes][:3] == ["conv", "max_pool2d_1", "relu_1"]
    assert swapped.node("relu_1").output.shape == (4, 6, 6)
    assert swapped.node("conv2").inputs == ("relu_1",)
    assert swapped.state_dict_spec().keys() == graph.state_dict_spec().keys()


def test_max_pool_blocks_marks_only_tiling_pools():
    _, graph = dsl.loads(CNN)
    hinted = optimize(graph, ["max_pool_blocks"])
    assert hinted.node("max_pool2d_1").hints == ("blocks",)
    assert hinted.node("max_pool2d_2").hints == ()  # 3x3 windows, stride 1: they overlap


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("inputs", ["normal", "ties"])
def test_optimized_models_compute_what_the_plain_torch_model_computes(dtype, inputs):
    _, graph = dsl.loads(CNN.replace("shape: [2, 12, 12]", f"shape: [2, 12, 12], dtype: {dtype}"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 12, 12))
    x = (np.round(x) if inputs == "ties" else x).astype(dtype)  # integer images tie inside windows
    cotangent = rng.standard_normal((4, 5)).astype(dtype)
    state = init_weights(graph, 0, dtype)
    plain = run_torch(graph, state, x, cotangent, dtype, passes=False)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for name, result in (("torch", run_torch(graph, state, x, cotangent, dtype)),
                         ("jax", run_jax(graph, state, x, cotangent))):
        for got, expected in zip(result[:2], plain[:2]):
            np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance * np.abs(expected).max(), err_msg=name)
        for key in plain[2]:
            np.testing.assert_allclose(result[2][key], plain[2][key], rtol=0,
                                       atol=tolerance * np.abs(plain[2][key]).max(), err_msg=f"{name} {key}")


def test_passes_can_be_turned_off_one_by_one_or_all():
    assert passes_for("jax") == ["max_pool_blocks", "flatten_channels_last", "conv_weight_grad_gemm"]
    assert passes_for("torch") == ["pool_before_activation", "channels_last", "relu_inplace"]
    assert passes_for("jax", ["max_pool_blocks"]) == ["flatten_channels_last", "conv_weight_grad_gemm"]
    assert passes_for("jax", ["all"]) == []
    with pytest.raises(dsl.DslcError, match="unknown pass 'nope'|unknown pass nope"):
        passes_for("jax", ["nope"])
    assert all(p.doc for p in PASSES.values())


def test_relu_runs_in_place_only_where_its_input_is_read_by_nothing_else():
    """resnet20_cifar: the ReLU after each stem/block BatchNorm and after each residual add is marked; none
    whose input is a model output, is read twice, or comes from an op that keeps its output (tanh)."""
    _, graph = dsl.load(REPO / "specs/resnet20_cifar.yaml")
    marked = [n.name for n in relu_inplace(graph).nodes if "inplace" in n.hints]
    assert len(marked) == 1 + 9 * 2 == len([n for n in graph.nodes if n.op == "relu"])
    _, flat = dsl.loads("""
name: reads
input: {shape: [4]}
model:
  - linear: {out_features: 4, name: a}
  - relu: {name: r1}
  - tanh: {name: t}
  - relu: {name: r2}
  - linear: {out_features: 4, name: b}
  - relu: {name: r3}
  - add: {inputs: [b, r3]}
""")
    assert [n.name for n in relu_inplace(flat).nodes if "inplace" in n.hints] == ["r1"]


def test_swapped_model_is_still_a_plain_torch_module():
    _, graph = dsl.loads(CNN)
    module = build_module(optimize(graph, passes_for("torch")), init_weights(graph, 0))
    assert "max_pool2d_1 = self.max_pool2d_1(contiguous_1)" in module.code
    assert module.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert module(torch.zeros(1, 2, 12, 12)).shape == (1, 5)


def test_flatten_channels_last_permutes_the_linear_kernel_and_round_trips_exactly():
    _, graph = dsl.loads(CNN)
    optimized = optimize(graph, passes_for("jax"))
    assert optimized.node("flatten_1").hints == ("flatten_hwc",)
    state = init_weights(graph, 0)
    variables = variables_from_state(optimized, state)
    w = state["head.weight"]  # (5, 3 * 2 * 2), rows of torch's (C, H, W) flatten
    expected = w.reshape(5, 3, 2, 2).transpose(2, 3, 1, 0).reshape(2 * 2 * 3, 5)  # docs/PARITY.md section 4
    np.testing.assert_array_equal(variables["params"]["head"]["kernel"], expected)
    back = state_from_variables(optimized, variables)
    assert all(np.array_equal(back[k], state[k]) for k in state)


def test_flatten_read_by_anything_but_linear_keeps_torch_order():
    relu_first = CNN.replace("  - linear: {out_features: 5, name: head}", "  - relu\n  - linear: {out_features: 5}")
    _, graph = dsl.loads(relu_first)
    assert optimize(graph, passes_for("jax")).node("flatten_1").hints == ()


def test_every_hint_a_lowering_reads_is_declared_for_that_backend():
    """One name, one meaning: a hint read by the torch lowering is a torch hint, and so on."""
    read = {}
    for backend in ("torch", "jax"):
        for path in (REPO / "backends" / backend).rglob("*.py"):
            for hint in re.findall(r"[\"'](\w+)[\"'] in node\.hints", path.read_text()):
                read.setdefault(hint, set()).add(backend)
    assert read, "no lowering reads a hint: the pattern above is stale"
    for hint, backends in read.items():
        assert hint in HINTS, hint
        assert backends == {HINTS[hint].target}, (hint, backends)
    assert {h.target for h in HINTS.values()} <= {"torch", "jax"}


@pytest.mark.parametrize("path, marked", [("specs/mnist_cnn.yaml", True), ("specs/resnet_tiny.yaml", True),
                                          ("specs/digits_bn_cnn.yaml", True), ("specs/unet_small.yaml", False)])
def test_channels_last_marks_only_graphs_of_proven_ops(path, marked):
    """unet_small has concat and upsample, which the pass has not been proven on."""
    _, graph = dsl.load(path)
    hinted = [n.name for n in optimize(graph, ["channels_last"]).nodes if "nhwc_memory" in n.hints]
    assert bool(hinted) == marked


@pytest.mark.parametrize("path", ["specs/resnet_tiny.yaml", "specs/digits_bn_cnn.yaml"])
def test_channels_last_leaves_no_contiguous_activation_beside_an_nhwc_one(path):
    """Every 4-D value is NHWC: mixed formats in one BatchNorm/add backward gave torch float32 gradients
    2.2e-2 off (the pass's docstring)."""
    _, graph = dsl.load(path)
    module = build_module(optimize(graph, ["channels_last"]))
    formats = []

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            value = super().run_node(n)
            if n.op != "placeholder" and isinstance(value, torch.Tensor) and value.dim() == 4:
                formats.append((n.name, value.is_contiguous(memory_format=torch.channels_last)))
            return value

    Recorder(module).run(torch.randn(2, *graph.inputs[0][1].shape))
    assert formats and all(nhwc for _, nhwc in formats), [name for name, nhwc in formats if not nhwc]
