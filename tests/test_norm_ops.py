"""layer_norm, group_norm, instance_norm2d, prelu and dropout2d beyond the catalog's parity examples.

The parity examples start from torch's init (weight ones, bias zeros, slopes 0.25), under
which a lowering that scaled the wrong axis still matches in the forward pass. Here the
weights are random and both backends are checked against a float64 numpy reference,
over grids of group counts and normalized shapes; dropout2d's training mode, which parity
cannot compare (the random streams differ), is checked by its values on both targets.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

import dsl
from backends.jax import FlaxModel, variables_from_state
from backends.torch import build_module

TOLERANCE = 1e-5  # float32 outputs against the float64 reference, relative to the largest value


def one_op(op: str, shape: tuple[int, ...], args: str = "") -> dsl.Graph:
    layer = f"{op}: {{{args}}}" if args else op
    return dsl.loads(f"name: t\ninput: {{shape: {list(shape)}}}\nmodel:\n  - {layer}\n")[1]


def random_state(graph: dsl.Graph, rng) -> dict[str, np.ndarray]:
    """Every weight drawn N(1, 0.5²), so no axis mix-up hides behind ones and zeros."""
    return {k: (1 + 0.5 * rng.standard_normal(w.shape)).astype("float32") for k, w in graph.state_dict_spec().items()}


def both_backends(graph: dsl.Graph, state, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(torch output, JAX output) in evaluation mode."""
    with torch.no_grad():
        out_t = build_module(graph, state).eval()(torch.from_numpy(x)).numpy()
    out_j = FlaxModel(graph).apply(variables_from_state(graph, state), x)
    return out_t, np.asarray(out_j)


def assert_close(value, reference, tolerance=TOLERANCE):
    error = np.abs(np.asarray(value, np.float64) - reference).max() / np.abs(reference).max()
    assert error <= tolerance, error


def normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """(x − mean) / √(biased var + eps) over ``axes``, in float64."""
    x = x.astype(np.float64)
    mean = x.mean(axes, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axes, keepdims=True) + eps)


GROUP_CASES = [(groups, shape) for shape in [(6, 4, 4), (6, 5), (6,)] for groups in [1, 2, 3, 6]
               if np.prod(shape) // groups > 1]  # a group of one value normalizes to 0 ± rounding/√eps: no test


@pytest.mark.parametrize("groups, shape", GROUP_CASES)
def test_group_norm_over_group_counts(groups, shape):
    graph = one_op("group_norm", shape, f"num_groups: {groups}")
    rng = np.random.default_rng(groups)
    state = random_state(graph, rng)
    x = (3 + 2 * rng.standard_normal((2, *shape))).astype("float32")  # mean 3: a one-pass variance would drift
    grouped = x.reshape(2, groups, -1)
    expected = normalize(grouped, (2,), 1e-5).reshape(x.shape)
    per_channel = (1, 6) + (1,) * (len(shape) - 1)
    expected = expected * state["group_norm_1.weight"].reshape(per_channel) + state["group_norm_1.bias"].reshape(
        per_channel)
    for out in both_backends(graph, state, x):
        assert_close(out, expected)


@pytest.mark.parametrize("normalized_shape", ["5", "[5]", "[4, 5]", "[3, 4, 5]"])
def test_layer_norm_over_one_two_and_three_trailing_dims(normalized_shape):
    graph = one_op("layer_norm", (3, 4, 5), f"normalized_shape: {normalized_shape}")
    dims = graph.nodes[0].params.normalized_shape
    rng = np.random.default_rng(len(dims))
    state = random_state(graph, rng)
    x = rng.standard_normal((2, 3, 4, 5)).astype("float32")
    axes = tuple(range(4 - len(dims), 4))
    expected = normalize(x, axes, 1e-5) * state["layer_norm_1.weight"] + state["layer_norm_1.bias"]
    for out in both_backends(graph, state, x):
        assert_close(out, expected)


def test_layer_norm_eps_is_torchs_not_flaxs():
    """With std 1e-3 the variance (1e-6) is below eps: Flax's default 1e-6 would give outputs 2.3x torch's 1e-5."""
    graph = one_op("layer_norm", (8,), "elementwise_affine: false")
    x = (1e-3 * np.random.default_rng(0).standard_normal((2, 8))).astype("float32")
    expected = normalize(x, (1,), 1e-5)
    assert np.abs(normalize(x, (1,), 1e-6)).max() / np.abs(expected).max() > 2
    for out in both_backends(graph, {}, x):
        assert_close(out, expected)


@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm2d_normalizes_each_channel_of_each_sample(affine):
    graph = one_op("instance_norm2d", (3, 4, 5), f"affine: {str(affine).lower()}")
    rng = np.random.default_rng(3)
    state = random_state(graph, rng)
    x = (3 + 2 * rng.standard_normal((2, 3, 4, 5))).astype("float32")
    expected = normalize(x, (2, 3), 1e-5)
    if affine:
        expected = expected * state["instance_norm2d_1.weight"][:, None, None] + state["instance_norm2d_1.bias"][
            :, None, None]
    assert len(state) == 2 * affine  # torch's default: no weights, no buffers
    for out in both_backends(graph, state, x):
        assert_close(out, expected)


@pytest.mark.parametrize("shape, num_parameters", [((3, 4, 4), 3), ((5,), 5), ((4, 6), 4), ((3, 4, 4), 1)])
def test_prelu_slopes_are_per_channel_on_dim_1(shape, num_parameters):
    graph = one_op("prelu", shape, f"num_parameters: {num_parameters}")
    rng = np.random.default_rng(num_parameters)
    state = {"prelu_1.weight": rng.uniform(-1, 1, num_parameters).astype("float32")}
    x = rng.standard_normal((2, *shape)).astype("float32")
    slope = state["prelu_1.weight"].reshape((1, -1) + (1,) * (len(shape) - 1))
    expected = np.where(x > 0, x, slope * x)
    for out in both_backends(graph, state, x):
        assert_close(out, expected)


def dropout2d_train_outputs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(torch output, JAX output) of dropout2d with p = 0.5 in training mode."""
    graph = one_op("dropout2d", x.shape[1:])
    torch.manual_seed(0)
    out_t = build_module(graph).train()(torch.from_numpy(x)).detach().numpy()
    out_j = FlaxModel(graph).apply({}, x, train=True, rngs={"dropout": jax.random.key(0)})
    return out_t, np.asarray(out_j)


def test_dropout2d_zeroes_or_doubles_whole_channels_on_both_targets():
    """64 (sample, channel) slices at p = 0.5: each is all 0 or all 2·x; between 16 and 48 are dropped
    (binomial(64, 0.5) lies outside that with probability 6e-5, and the seeds are fixed)."""
    x = np.random.default_rng(0).uniform(1, 2, (4, 16, 3, 3)).astype("float32")  # no zeros of its own
    for out in dropout2d_train_outputs(x):
        dropped = np.all(out == 0, axis=(2, 3))
        kept = np.all(np.abs(out - 2 * x) <= 1e-6 * 2 * x, axis=(2, 3))
        assert np.all(dropped ^ kept)
        assert 16 <= dropped.sum() <= 48, dropped.sum()


@pytest.mark.parametrize("op, shape, args, col, message", [
    ("group_norm", (6, 4, 4), "num_groups: 4", 30,
     "num_groups 4 does not divide the input's 6 channels (input shape [N, 6, 4, 4]); valid: 1, 2, 3, 6"),
    ("group_norm", (6, 4), "num_groups: 2, num_channels: 4", 47,
     "num_channels is 4 but its input has 6 channels (input shape [N, 6, 4]); set num_channels: 6 or leave it out"),
    ("instance_norm2d", (6, 4, 4), "track_running_stats: true", 44,
     "track_running_stats: true is not supported yet for instance_norm2d"),
    ("instance_norm2d", (6, 4), "", 5, "expects input of shape [N, C, H, W], got [N, 6, 4]"),
    ("layer_norm", (6, 4, 5), "normalized_shape: [5, 4]", 36,
     "normalized_shape [5, 4] must be the trailing dims of the input [N, 6, 4, 5]; e.g. normalized_shape: 5"),
    ("layer_norm", (4,), "normalized_shape: [6, 4]", 36, "normalized_shape [6, 4] must be the trailing dims"),
    ("prelu", (6, 4, 5), "num_parameters: 4", 29,
     "num_parameters is 4 but must be 1 or the input's 6 channels (dim 1 of [N, 6, 4, 5])"),
    ("dropout2d", (6, 4), "", 5, "expects input of shape [N, C, H, W], got [N, 6, 4]"),
])
def test_errors_point_at_the_argument(op, shape, args, col, message):
    with pytest.raises(dsl.SpecError) as info:
        one_op(op, shape, args)
    assert str(info.value).startswith(f"<string>:4:{col}: {op}_1 ({op}): {message}")


def test_a_conv_stack_stays_channels_last_in_jax_and_matches_torch():
    """conv → group_norm → prelu → instance_norm2d → dropout2d → flatten → linear: the JAX plan keeps the
    image NHWC from the conv to the flatten, so each op's channel axis is the last one there."""
    from backends.jax.layout import CHANNELS_LAST, plan
    from backends.jax.ops import JAX_OPS
    from backends.weights import init_weights

    _, graph = dsl.loads("""
name: t
input: {shape: [2, 6, 6]}
model:
  - conv2d: {out_channels: 4, kernel_size: 3}
  - group_norm: {num_groups: 2}
  - prelu: {num_parameters: 4}
  - instance_norm2d: {affine: true}
  - dropout2d
  - flatten
  - linear: {out_features: 3}
""")
    rng = np.random.default_rng(0)
    state = {**init_weights(graph, seed=0), **{k: v for k, v in random_state(graph, rng).items()
                                               if k.split(".")[0] in ("group_norm_1", "prelu_1", "instance_norm2d_1")}}
    placements = plan(graph, JAX_OPS)
    assert [placements[n].output for n in ("conv2d_1", "group_norm_1", "prelu_1", "instance_norm2d_1",
                                           "dropout2d_1")] == [CHANNELS_LAST] * 5
    out_t, out_j = both_backends(graph, state, rng.standard_normal((2, 2, 6, 6)).astype("float32"))
    assert_close(out_j, out_t.astype(np.float64))
