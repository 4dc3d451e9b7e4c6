"""BatchNorm's state on both targets: torch's running statistics, over several steps, and through training.

The op parity tests compare one forward pass per catalog example; these follow the
buffers over several training-mode passes (``momentum: null`` is a cumulative
average, so a one-step test cannot tell it from ``momentum: 1``), check the
configurations without state, and train ``specs/digits_bn_cnn.yaml`` end to end.
"""

import json

import jax
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from backends.jax import FlaxModel, state_from_variables, variables_from_state
from backends.torch import build_module, export_state
from backends.weights import init_weights
from dsl.ops import Example
from tests.helpers import single_op_graph
from tests.test_cli import dslc

STEPS = 4


def batches(shape, dtype="float64"):
    """Batches with different means and spreads, so every step moves the statistics."""
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((5, *shape)) * (1 + k) + k).astype(dtype) for k in range(STEPS)]


def train_both(graph, xs, dtype="float64"):
    """Training-mode forwards on both targets; yields (torch state, JAX state, torch out, JAX out) per step."""
    state = init_weights(graph, seed=0, dtype=dtype)
    module = build_module(graph, state, dtype=dtype).train()
    model, variables = FlaxModel(graph), variables_from_state(graph, state)
    for x in xs:
        with torch.no_grad():
            out_t = module(torch.from_numpy(x)).numpy()
        out_j, updated = model.apply(variables, x, train=True, mutable=["batch_stats"])
        variables = {**variables, **updated}
        yield export_state(module), state_from_variables(graph, variables), out_t, np.asarray(out_j)


@pytest.mark.parametrize("op, shape", [("batch_norm2d", (3, 4, 4)), ("batch_norm1d", (6,)), ("batch_norm1d", (3, 5))])
def test_momentum_null_is_the_cumulative_average_on_both_targets(op, shape):
    graph = single_op_graph(op, Example(shape, {"momentum": None}), "float64")
    xs = batches(shape)
    axes = tuple(a for a in range(len(shape) + 1) if a != 1)
    for step, (state_t, state_j, out_t, out_j) in enumerate(train_both(graph, xs), start=1):
        for key in state_t:
            np.testing.assert_allclose(state_j[key], state_t[key], rtol=1e-12, atol=0, err_msg=key)
        count = state_j[f"{op}_1.num_batches_tracked"]
        assert count.dtype == np.int64 and count.shape == () and count == step
        np.testing.assert_allclose(out_j, out_t, rtol=0, atol=1e-12)
        seen = xs[:step]  # torch: the plain mean of every batch's mean and unbiased variance so far
        np.testing.assert_allclose(state_t[f"{op}_1.running_mean"], np.mean([x.mean(axes) for x in seen], 0),
                                   rtol=1e-12)
        np.testing.assert_allclose(state_t[f"{op}_1.running_var"], np.mean([x.var(axes, ddof=1) for x in seen], 0),
                                   rtol=1e-12)


def test_momentum_moves_running_var_towards_the_unbiased_variance():
    """Flax's BatchNorm uses the biased variance here (docs/PARITY.md §6); dslc's JAX lowering follows torch."""
    graph = single_op_graph("batch_norm1d", Example((4,), {"momentum": 0.3}), "float64")
    x = batches((4,))[1]
    state_t, state_j, _, _ = next(train_both(graph, [x]))
    expected = 0.7 * 1.0 + 0.3 * x.var(0, ddof=1)
    np.testing.assert_allclose(state_j["batch_norm1d_1.running_var"], expected, rtol=1e-12)
    np.testing.assert_allclose(state_t["batch_norm1d_1.running_var"], expected, rtol=1e-12)


def eval_outputs(graph, x):
    state = init_weights(graph, seed=0, dtype="float64")
    torch_out = build_module(graph, state, dtype="float64").eval()(torch.from_numpy(x)).detach().numpy()
    return torch_out, np.asarray(FlaxModel(graph).apply(variables_from_state(graph, state), x))


def test_without_running_stats_there_are_no_buffers_and_evaluation_uses_the_batch():
    graph = single_op_graph("batch_norm2d", Example((3, 4, 4), {"track_running_stats": False}), "float64")
    assert list(graph.state_dict_spec()) == ["batch_norm2d_1.weight", "batch_norm2d_1.bias"]
    x = batches((3, 4, 4))[2]
    expected = (x - x.mean((0, 2, 3), keepdims=True)) / np.sqrt(x.var((0, 2, 3), keepdims=True) + 1e-5)
    for out in eval_outputs(graph, x):
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_affine_false_has_buffers_but_no_parameters():
    graph = single_op_graph("batch_norm1d", Example((4, 5), {"affine": False}), "float64")
    spec = graph.state_dict_spec()
    assert [k.split(".")[1] for k in spec] == ["running_mean", "running_var", "num_batches_tracked"]
    assert [w.kind for w in spec.values()] == ["buffer"] * 3 and graph.num_parameters == 0
    assert list(build_module(graph).parameters()) == []
    variables = variables_from_state(graph, init_weights(graph, 0))
    assert variables["params"] == {} and set(variables["batch_stats"]["batch_norm1d_1"]) == {
        "mean", "var", "num_batches_tracked"}
    x = batches((4, 5))[3]
    torch_out, jax_out = eval_outputs(graph, x)  # running statistics at init: mean 0, var 1
    np.testing.assert_allclose(jax_out, torch_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(torch_out, x / np.sqrt(1 + 1e-5), rtol=1e-12)


def test_buffers_are_not_parameters_on_either_target():
    graph = single_op_graph("batch_norm2d", Example((8, 3, 3)))
    assert graph.num_parameters == 16
    assert sum(p.numel() for p in build_module(graph).parameters()) == 16
    variables = FlaxModel(graph).init(jax.random.key(0), np.zeros((2, 8, 3, 3), np.float32))
    assert sum(a.size for a in jax.tree.leaves(variables["params"])) == 16
    assert {k: v.shape for k, v in variables["batch_stats"]["batch_norm2d_1"].items()} == {
        "mean": (8,), "var": (8,), "num_batches_tracked": ()}


def test_training_backward_saves_only_the_input(capsys):
    """The backward pass is torch's analytic one (a custom VJP): it keeps x and per-channel statistics, no
    activation-sized intermediate. Autodiff of the forward kept x − mean and more, and with the normalized x
    as well ResNet-20's BatchNorm forward + backward took ~1.5x as long on CPU and dslc's JAX target trailed
    Flax."""
    from jax.ad_checkpoint import print_saved_residuals

    from backends.jax.ops.normalization import TorchBatchNorm

    module = TorchBatchNorm(16, -1, 1e-5, 0.1, affine=True, track_running_stats=True)
    x = np.ones((8, 4, 4, 16), np.float32)
    variables = module.init(jax.random.key(0), x, train=True)

    def forward(params, x):
        return module.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])[0]

    print_saved_residuals(forward, variables["params"], x)
    saved = [line for line in capsys.readouterr().out.splitlines() if "[8,4,4,16]" in line]
    assert saved == ["f32[8,4,4,16] from the argument x"], saved


@pytest.mark.parametrize("mean", [0.0, 3000.0])
def test_float32_batch_statistics_stay_accurate_far_from_zero(mean):
    """The one-pass variance is shifted by one example per channel, so a mean of 3000 costs no accuracy:
    measured at mean 3000, training outputs 1.1e-4 from torch's (float32 resolves the input itself to
    2.4e-4) and running variances 7.8e-7 (relative). Flax's fast E[x²]−E[x]² in its place: outputs 1,011
    apart, running variance 56% (PARITY.md §6)."""
    graph = single_op_graph("batch_norm2d", Example((8, 6, 6)))
    xs = [x + mean for x in batches((8, 6, 6), "float32")]
    for state_t, state_j, out_t, out_j in train_both(graph, xs, "float32"):
        np.testing.assert_allclose(out_j, out_t, rtol=0, atol=5e-4)
        for key in ("batch_norm2d_1.running_mean", "batch_norm2d_1.running_var"):
            np.testing.assert_allclose(state_j[key], state_t[key], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def bn_runs(tmp_path_factory):
    runs = {}
    for target in ("jax", "torch"):
        runs[target] = tmp_path_factory.mktemp(f"bn-{target}")
        dslc("train", "specs/digits_bn_cnn.yaml", "--target", target, "--out", runs[target], "--threads", "1")
    return runs


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_digits_bn_cnn_trains_to_97_percent_in_seconds(bn_runs, target):
    summary = json.loads((bn_runs[target] / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.97
    assert summary["wall_seconds"] < 45


@pytest.mark.parametrize("trained_by, evaluated_by", [("jax", "torch"), ("torch", "jax")])
def test_trained_buffers_move_between_targets_with_the_same_accuracy(bn_runs, trained_by, evaluated_by):
    """Evaluation reads the running statistics: weights saved by one target evaluate the same on the other."""
    weights = bn_runs[trained_by] / "weights.safetensors"
    evaluated = json.loads(dslc("eval", "specs/digits_bn_cnn.yaml", "--target", evaluated_by,
                                "--weights", weights, "--threads", "1").stdout)
    summary = json.loads((bn_runs[trained_by] / "summary.json").read_text())
    assert abs(evaluated["test_accuracy"] - summary["test_accuracy"]) <= 0.002
    assert evaluated["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-4)
    saved = load_file(weights)
    assert saved["bn1.num_batches_tracked"].dtype == np.int64 and saved["bn1.num_batches_tracked"].shape == ()
    assert saved["bn1.num_batches_tracked"] == summary["steps"]
    assert not np.allclose(saved["bn2.running_var"], 1.0)  # trained statistics, not the init
