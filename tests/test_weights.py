"""Canonical weights: torch state_dict names and layouts, safetensors on disk, exact round trips."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import dsl
from backends.jax import FlaxModel, state_from_variables, variables_from_state
from backends.torch import build_module, export_state
from backends.weights import init_weights, load_weights, save_weights


@pytest.fixture
def cnn():
    return dsl.load("specs/mnist_cnn.yaml")[1]


def test_state_dict_keys_are_the_layer_names(cnn):
    assert list(build_module(cnn).state_dict()) == [
        "conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert list(init_weights(cnn, 0)) == list(build_module(cnn).state_dict())


def test_torch_to_flax_to_torch_round_trip_is_exact(cnn):
    state = export_state(build_module(cnn))  # torch's own init
    variables = variables_from_state(cnn, state)
    assert variables["params"]["conv1"]["kernel"].shape == (3, 3, 1, 32)  # HWIO
    assert variables["params"]["fc1"]["kernel"].shape == (5408, 128)  # (in, out)
    back = state_from_variables(cnn, variables)
    assert back.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(back[key], state[key])


def test_init_is_seeded_and_follows_torch_bounds(cnn):
    a, b, c = init_weights(cnn, 0), init_weights(cnn, 0), init_weights(cnn, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc1.weight"], c["fc1.weight"])
    bound = 1 / np.sqrt(5408)
    limit = bound * (1 + 1e-6)  # float32 rounding may land a hair above the float64 bound
    assert 0.99 * bound < np.abs(a["fc1.weight"]).max() <= limit
    torch_default = build_module(cnn).fc1.weight.detach().abs().max().item()
    assert 0.99 * bound < torch_default <= limit


def test_safetensors_written_by_torch_loads_into_both_targets(cnn, tmp_path):
    module = build_module(cnn)
    path = tmp_path / "torch_saved.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    state = load_weights(path, cnn)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    expected = module.eval()(torch.from_numpy(x)).detach().numpy()
    out = np.asarray(FlaxModel(cnn).apply(variables_from_state(cnn, state), x))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_save_then_load_is_identical(cnn, tmp_path):
    state = init_weights(cnn, 3)
    save_weights(tmp_path / "w.safetensors", state, {"spec": "mnist_cnn"})
    loaded = load_weights(tmp_path / "w.safetensors", cnn)
    assert all(np.array_equal(loaded[k], state[k]) for k in state)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left behind


def test_weights_that_do_not_fit_are_refused(cnn, tmp_path):
    state = init_weights(cnn, 0)
    del state["fc2.bias"]
    state["head.weight"] = np.zeros((2, 2), np.float32)
    save_weights(tmp_path / "bad.safetensors", state)
    with pytest.raises(dsl.WeightsError, match="missing fc2.bias; unexpected head.weight"):
        load_weights(tmp_path / "bad.safetensors", cnn)
    state = init_weights(cnn, 0)
    state["fc1.weight"] = state["fc1.weight"][:, :1152]
    save_weights(tmp_path / "shape.safetensors", state)
    with pytest.raises(dsl.WeightsError, match=r"fc1.weight has shape \[128, 1152\], the model needs \[128, 5408\]"):
        load_weights(tmp_path / "shape.safetensors", cnn)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(dsl.WeightsError, match="not a safetensors file"):
        load_weights(tmp_path / "junk.safetensors", cnn)


def test_exported_weights_are_copies_that_training_does_not_change():
    spec, graph = dsl.load("specs/digits_cnn.yaml")
    from tests.helpers import columns, make_trainer

    x = np.random.default_rng(0).standard_normal((64, 1, 8, 8)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, 64)
    for name in ("torch", "jax"):
        target = make_trainer(name, spec, graph)
        target.load_state(init_weights(graph, 0))
        data = target.put(columns(graph, x, y))
        target.compile(data, data, [32], 32)
        before = target.export_state()
        snapshot = {k: v.copy() for k, v in before.items()}
        target.train_steps(data, [np.arange(32, dtype=np.int32)] * 3)
        after = target.export_state()
        assert all(np.array_equal(before[k], snapshot[k]) for k in before), name
        assert not np.array_equal(after["fc1.weight"], before["fc1.weight"]), name


def test_embedding_init_is_torchs_normal_with_the_padding_row_zeroed():
    _, graph = dsl.loads("""
name: emb
input: {shape: [3], dtype: int64}
model:
  - embedding: {num_embeddings: 2000, embedding_dim: 16, padding_idx: -2}
""")
    table = init_weights(graph, seed=0)["embedding_1.weight"]
    assert graph.nodes[0].params.padding_idx == 1998  # negative indices count from the end, as in torch
    assert not table[1998].any() and table[1999].any()
    assert abs(table.std() - 1.0) < 0.02 and abs(table.mean()) < 0.02


@pytest.fixture
def bn_cnn():
    return dsl.load("specs/digits_bn_cnn.yaml")[1]


def test_buffers_round_trip_with_torch_names_and_dtypes(bn_cnn, tmp_path):
    """torch state_dict -> safetensors -> canonical -> Flax variables -> canonical -> safetensors -> torch, exactly."""
    module = build_module(bn_cnn).train()
    module(torch.randn(16, 1, 8, 8))  # moves the running statistics away from their init
    module(torch.randn(16, 1, 8, 8))
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "torch.safetensors"))
    state = load_weights(tmp_path / "torch.safetensors", bn_cnn)
    assert set(state) == set(module.state_dict())  # safetensors stores names sorted
    assert list(module.state_dict()) == list(init_weights(bn_cnn, 0))  # torch's order, buffers after the parameters
    assert state["bn1.num_batches_tracked"].dtype == np.int64 and state["bn1.num_batches_tracked"] == 2
    variables = variables_from_state(bn_cnn, state)
    assert set(variables) == {"params", "batch_stats"}
    assert set(variables["params"]["bn1"]) == {"scale", "bias"}
    assert set(variables["batch_stats"]["bn2"]) == {"mean", "var", "num_batches_tracked"}
    assert list(state_from_variables(bn_cnn, variables)) == list(module.state_dict())
    save_weights(tmp_path / "back.safetensors", state_from_variables(bn_cnn, variables))
    back = load_file(str(tmp_path / "back.safetensors"))
    assert back.keys() == module.state_dict().keys()
    for key, value in module.state_dict().items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value), key
    build_module(bn_cnn).load_state_dict(back, strict=True)


def test_init_weights_gives_buffers_torch_values_and_dtypes(bn_cnn):
    state = init_weights(bn_cnn, 0, dtype="float64")
    assert state["bn1.running_mean"].dtype == np.float64 and not state["bn1.running_mean"].any()
    assert (state["bn1.running_var"] == 1).all() and (state["bn1.weight"] == 1).all()
    assert state["bn1.num_batches_tracked"].dtype == np.int64 and state["bn1.num_batches_tracked"].shape == ()
    torch_init = build_module(bn_cnn).state_dict()
    for key in ("bn1.running_var", "bn2.bias", "bn2.num_batches_tracked"):
        np.testing.assert_array_equal(init_weights(bn_cnn, 0)[key], torch_init[key].numpy())


def test_buffer_dtypes_are_checked(bn_cnn, tmp_path):
    state = init_weights(bn_cnn, 0)
    state["bn1.num_batches_tracked"] = np.zeros((), np.float32)
    save_weights(tmp_path / "count.safetensors", state)
    with pytest.raises(dsl.WeightsError, match=r"bn1.num_batches_tracked has dtype float32, the model needs int64 "
                                               r"\(buffer\)"):
        load_weights(tmp_path / "count.safetensors", bn_cnn)
    state = init_weights(bn_cnn, 0)
    state["bn2.running_var"] = np.ones(128, np.int64)
    save_weights(tmp_path / "var.safetensors", state)
    with pytest.raises(dsl.WeightsError, match="bn2.running_var has dtype int64, the model needs a float dtype"):
        load_weights(tmp_path / "var.safetensors", bn_cnn)
