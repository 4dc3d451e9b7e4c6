"""Canonical optimizer state: torch's state entries by weight name, moving between targets mid-training.

A state exported by one target after k steps and loaded into the other must make the
next steps land where continuing on the source lands (float64: only rounding apart).
"""

import numpy as np
import pytest

import dsl
from backends.optimizer_state import STEP, check_optimizer_state
from backends.parity import make_batch
from backends.weights import init_weights
from dsl import WeightsError
from dsl.objectives import resolve_objective
from tests.conftest import REPO
from tests.helpers import make_trainer

OPTIMIZERS = {
    "adam_l2": "adam: {lr: 0.01, weight_decay: 0.1}",
    "adamw": "adamw: {lr: 0.01}",
    "sgd_nesterov_l2": "sgd: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01}",
    "sgd_plain": "sgd: {lr: 0.1}",
}


def cnn_with(optimizer: str):
    """digits_cnn (conv kernels transposed, flatten rows permuted on JAX) trained by ``optimizer``."""
    text = (REPO / "specs/digits_cnn.yaml").read_text().replace("adam: {lr: 0.001}", optimizer)
    return dsl.loads(text)


def targets(spec, graph, dtype="float64"):
    made = {name: make_trainer(name, spec, graph, dtype=dtype, full_precision=True) for name in ("torch", "jax")}
    for target in made.values():
        target.load_state(init_weights(graph, 0, dtype))
    return made


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=list(OPTIMIZERS))
@pytest.mark.parametrize("source, dest", [("torch", "jax"), ("jax", "torch")])
def test_state_moved_mid_training_continues_like_the_source(optimizer, source, dest):
    spec, graph = cnn_with(OPTIMIZERS[optimizer])
    batch = make_batch(graph, resolve_objective(spec, graph), 16 * 6, "float64", np.random.default_rng(0))
    batches = list(np.arange(96, dtype=np.int32).reshape(6, 16))
    made = targets(spec, graph)
    data = {name: t.put(batch) for name, t in made.items()}
    made[source].train_steps(data[source], batches[:3])
    exported = made[source].export_optimizer_state()
    made[dest].load_state(made[source].export_state())
    made[dest].load_optimizer_state(exported)
    back = made[dest].export_optimizer_state()
    assert back.keys() == exported.keys() and int(back[STEP]) == 3
    for key in exported:
        np.testing.assert_array_equal(back[key], exported[key], err_msg=key)  # the conversion itself is exact
    for name in (source, dest):
        made[name].train_steps(data[name], batches[3:])
    weights = {name: t.export_state() for name, t in made.items()}
    states = {name: t.export_optimizer_state() for name, t in made.items()}
    for key in weights[source]:
        np.testing.assert_allclose(weights[dest][key], weights[source][key], rtol=1e-12, atol=1e-14, err_msg=key)
    for key in states[source]:
        np.testing.assert_allclose(states[dest][key], states[source][key], rtol=1e-12, atol=1e-14, err_msg=key)


def test_names_are_torch_entries_by_weight_name():
    spec, graph = cnn_with(OPTIMIZERS["adamw"])
    made = targets(spec, graph, "float32")
    assert made["torch"].export_optimizer_state().keys() == {STEP}  # torch has no state before the first step
    batch = make_batch(graph, resolve_objective(spec, graph), 8, "float32", np.random.default_rng(1))
    for name, target in made.items():
        target.train_steps(target.put(batch), [np.arange(8, dtype=np.int32)])
        state = target.export_optimizer_state()
        assert state[STEP].dtype == np.int64 and state[STEP].shape == () and int(state[STEP]) == 1
        assert state["optimizer.conv1.weight.step"].dtype == np.float32
        assert state["optimizer.conv1.weight.exp_avg"].shape == (32, 1, 3, 3)  # torch's OIHW, on JAX too
        assert {k.rsplit(".", 1)[1] for k in state if k != STEP} == {"step", "exp_avg", "exp_avg_sq"}


def test_sgd_momentum_buffer_is_absent_before_the_first_step_on_both_targets():
    spec, graph = cnn_with(OPTIMIZERS["sgd_nesterov_l2"])
    for target in targets(spec, graph, "float32").values():
        assert target.export_optimizer_state().keys() == {STEP}


def test_malformed_state_is_a_weights_error():
    spec, graph = cnn_with(OPTIMIZERS["adam_l2"])
    made = targets(spec, graph, "float32")
    batch = make_batch(graph, resolve_objective(spec, graph), 8, "float32", np.random.default_rng(1))
    made["torch"].train_steps(made["torch"].put(batch), [np.arange(8, dtype=np.int32)])
    state = made["torch"].export_optimizer_state()
    check_optimizer_state(graph, "adam", state)
    with pytest.raises(WeightsError, match="no optimizer.step"):
        check_optimizer_state(graph, "adam", {k: v for k, v in state.items() if k != STEP})
    with pytest.raises(WeightsError, match="unexpected optimizer.fc1.weight.momentum_buffer"):
        check_optimizer_state(graph, "adam", {**state, "optimizer.fc1.weight.momentum_buffer": state[STEP]})
    with pytest.raises(WeightsError, match="some weights have adam state and some do not"):
        made["jax"].load_optimizer_state({k: v for k, v in state.items() if not k.startswith("optimizer.fc1.")})
    with pytest.raises(WeightsError, match="optimizer.fc2.bias.exp_avg has shape"):
        check_optimizer_state(graph, "adam", {**state, "optimizer.fc2.bias.exp_avg": np.zeros(3, np.float32)})


@pytest.mark.parametrize("name, optimizer", [
    pytest.param(name, optimizer, id=f"{name}-{optimizer}",
                 marks=pytest.mark.slow if name == "jax" and optimizer in ("adam_l2", "sgd_plain") else ())
    for name in ("torch", "jax") for optimizer in OPTIMIZERS])  # JAX 7-9 s each: CI reloads adamw and nesterov
def test_reloading_into_a_fresh_target_changes_nothing_bitwise(optimizer, name):
    """float32, same target: torch's fused kernels and optax continue bit for bit from a reloaded state."""
    spec, graph = cnn_with(OPTIMIZERS[optimizer])
    batch = make_batch(graph, resolve_objective(spec, graph), 16 * 6, "float32", np.random.default_rng(2))
    batches = list(np.arange(96, dtype=np.int32).reshape(6, 16))
    original, fresh = (make_trainer(name, spec, graph) for _ in range(2))
    original.load_state(init_weights(graph, 0))
    data = original.put(batch)
    original.train_steps(data, batches[:3])
    fresh.load_state(original.export_state())
    fresh.load_optimizer_state(original.export_optimizer_state())
    for target in (original, fresh):
        target.train_steps(data, batches[3:])
    a = {**original.export_state(), **original.export_optimizer_state()}
    b = {**fresh.export_state(), **fresh.export_optimizer_state()}
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
