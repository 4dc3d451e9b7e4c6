"""Sparse embeddings and ``sparse_adam``: torch's SparseAdam (lazy Adam) reproduced by the JAX target.

torch: ``nn.Embedding(sparse=True)`` gives the table a sparse gradient (the ids looked
up, ``padding_idx`` left out, duplicates summed when SparseAdam coalesces), and
SparseAdam updates the moments and weights of exactly those rows, with one global
step count. JAX: the embedding reports the rows it looked up (``TOUCHED``) and the
optimizer masks a dense Adam-like update with them. The batches here touch some rows
twice, some in one step and not the next, and some never.
"""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import dsl
from backends.jax.ops.embedding import looked_up
from backends.jax.training import sparse_adam
from backends.optimizer_state import STEP
from backends.parity import check, make_batch
from backends.weights import init_weights
from dsl.objectives import resolve_objective
from dsl.training import SparseAdamParams
from tests.helpers import make_trainer

SPEC = """
name: sparse_tower
inputs:
  user: {shape: [3], dtype: int64}
  features: {shape: [4]}
model:
  - embedding: {num_embeddings: 12, embedding_dim: 5, padding_idx: 0, sparse: true, inputs: [user], name: user_table}
  - flatten: {name: user_vector}
  - linear: {out_features: 6, inputs: [features], name: feature_tower}
  - concat: {inputs: [user_vector, feature_tower], dim: 1}
  - tanh
  - linear: {out_features: 3, name: head}
train:
  loss: cross_entropy
  optimizer: {sparse_adam: {lr: 0.05, eps: 0.01}}
  batch_size: 4
"""
"""eps 0.01 is large next to these gradients' √v, so SparseAdam's eps (added to the uncorrected √v) and Adam's (to
the corrected one) give visibly different steps: a JAX step with Adam's eps placement fails the comparisons."""

IDS = [  # one batch per step: [4 examples, 3 ids]; 0 is padding_idx
    [[1, 2, 2], [3, 0, 1], [2, 2, 0], [3, 3, 3]],  # rows 1, 2, 3, some twice or more
    [[4, 5, 0], [0, 0, 0], [5, 4, 4], [4, 0, 5]],  # rows 4, 5 only: 1-3 must not move
    [[1, 4, 0], [1, 1, 4], [0, 0, 0], [4, 1, 0]],
    [[6, 0, 0], [2, 6, 0], [0, 2, 0], [6, 6, 2]],
]
NEVER = [7, 8, 9, 10, 11]


def sparse_spec(optimizer: str | None = None):
    text = SPEC if optimizer is None else SPEC.replace("{sparse_adam: {lr: 0.05, eps: 0.01}}", optimizer)
    return dsl.loads(text)


def batches(graph, spec, dtype: str) -> dict[str, np.ndarray]:
    """The four steps' batches back to back, with ``IDS`` as the looked-up ids."""
    batch = make_batch(graph, resolve_objective(spec, graph), 4 * len(IDS), dtype, np.random.default_rng(0))
    return {**batch, "user": np.array(IDS, np.int64).reshape(-1, 3)}


def trained(name: str, spec, graph, data, steps: range, dtype: str = "float64", start=None):
    """A target of ``name`` from seed-0 weights (or ``start``: weights and optimizer state), after ``steps``."""
    target = make_trainer(name, spec, graph, dtype=dtype, full_precision=True)
    target.load_state(init_weights(graph, 0, dtype) if start is None else start[0])
    if start is not None:
        target.load_optimizer_state(start[1])
    if steps:
        target.train_steps(target.put(data), [np.arange(4 * k, 4 * k + 4, dtype=np.int32) for k in steps])
    return target


def assert_states_close(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-14, err_msg=f"{what}: {key}")


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_only_the_rows_a_batch_looked_up_move(name):
    """Lazy Adam on the table: after step 2 (rows 4, 5) rows 1-3 are where step 1 left them, although their
    exp_avg is not 0 (dense Adam would move them); rows never looked up and padding_idx keep their init, with
    zero moments; the dense weights move every step."""
    spec, graph = sparse_spec()
    data, init = batches(graph, spec, "float64"), init_weights(graph, 0, "float64")
    one, two = (trained(name, spec, graph, data, range(k)) for k in (1, 2))
    table = {k: t.export_state()["user_table.weight"] for k, t in (("one", one), ("two", two))}
    moments = two.export_optimizer_state()
    np.testing.assert_array_equal(table["two"][[1, 2, 3]], table["one"][[1, 2, 3]])
    assert np.abs(moments["optimizer.user_table.weight.exp_avg"][[1, 2, 3]]).min() > 1e-6
    assert np.abs(table["two"][[4, 5]] - init["user_table.weight"][[4, 5]]).min() > 1e-3
    np.testing.assert_array_equal(table["two"][[0, *NEVER]], init["user_table.weight"][[0, *NEVER]])
    for entry in ("exp_avg", "exp_avg_sq"):
        assert not moments[f"optimizer.user_table.weight.{entry}"][[0, *NEVER]].any()
    assert np.abs(two.export_state()["head.weight"] - one.export_state()["head.weight"]).min() > 0


@pytest.mark.parametrize("optimizer", ["sparse_adam", "sgd"])
def test_both_targets_train_alike_without_syncing(optimizer):
    """Four float64 steps on each target from the same weights, never synced: weights and optimizer state
    agree to rounding (1e-12), so each step's touched rows, moments and bias correction are torch's. Plain sgd
    takes the sparse gradient as torch's unfused SGD does: a zero step for the rows it lacks."""
    spec, graph = sparse_spec(None if optimizer == "sparse_adam" else "{sgd: {lr: 0.5}}")
    data = batches(graph, spec, "float64")
    made = {name: trained(name, spec, graph, data, range(4)) for name in ("torch", "jax")}
    assert_states_close(made["jax"].export_state(), made["torch"].export_state(), "weights")
    states = {name: t.export_optimizer_state() for name, t in made.items()}
    assert_states_close(states["jax"], states["torch"], "optimizer state")
    assert int(states["torch"][STEP]) == 4


@pytest.mark.parametrize("source, dest", [("torch", "jax"), ("jax", "torch")])
def test_state_moved_mid_training_continues_like_the_source(source, dest):
    """Canonical state after 2 steps (the table's SparseAdam ``step`` included) loaded into the other target:
    the conversion is exact, and steps 3-4 land where the source's own steps 3-4 land."""
    spec, graph = sparse_spec()
    data = batches(graph, spec, "float64")
    first = trained(source, spec, graph, data, range(2))
    exported = first.export_optimizer_state()
    moved = trained(dest, spec, graph, data, range(0), start=(first.export_state(), exported))
    back = moved.export_optimizer_state()
    assert back.keys() == exported.keys()
    for key in exported:
        np.testing.assert_array_equal(back[key], exported[key], err_msg=key)
    first.train_steps(first.put(data), [np.arange(4 * k, 4 * k + 4, dtype=np.int32) for k in (2, 3)])
    moved.train_steps(moved.put(data), [np.arange(4 * k, 4 * k + 4, dtype=np.int32) for k in (2, 3)])
    assert_states_close(moved.export_state(), first.export_state(), "weights")
    assert_states_close(moved.export_optimizer_state(), first.export_optimizer_state(), "optimizer state")


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_reloading_into_a_fresh_target_changes_nothing_bitwise(name):
    """float32, same target: a reloaded state continues bit for bit. For torch this needs SparseAdam's ``step``
    back as a Python int: as the float32 tensor ``load_state_dict`` leaves, β^step is taken in float32."""
    spec, graph = sparse_spec()
    data = batches(graph, spec, "float32")
    original = trained(name, spec, graph, data, range(2), dtype="float32")
    fresh = trained(name, spec, graph, data, range(0), dtype="float32",
                    start=(original.export_state(), original.export_optimizer_state()))
    for target in (original, fresh):
        target.train_steps(target.put(data), [np.arange(4 * k, 4 * k + 4, dtype=np.int32) for k in (2, 3)])
    a = {**original.export_state(), **original.export_optimizer_state()}
    b = {**fresh.export_state(), **fresh.export_optimizer_state()}
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def test_state_names_are_torch_entries_on_both_targets():
    spec, graph = sparse_spec()
    data = batches(graph, spec, "float32")
    for name in ("torch", "jax"):
        state = trained(name, spec, graph, data, range(1), dtype="float32").export_optimizer_state()
        assert state["optimizer.user_table.weight.step"].dtype == np.float32  # SparseAdam's int, as Adam's type
        assert float(state["optimizer.user_table.weight.step"]) == 1.0 == float(state["optimizer.head.weight.step"])
        assert state["optimizer.user_table.weight.exp_avg"].shape == (12, 5)


def test_lazy_adam_is_sparse_adam_on_hand_made_gradients():
    """The rule alone, against torch.optim.SparseAdam fed uncoalesced sparse gradients: duplicate ids summed,
    and a looked-up row whose gradient is exactly 0 still touched (torch keeps every coalesced index, zero or
    not): its moments decay and it moves. float64, three steps; rows 0 and 2 are never looked up."""
    p = SparseAdamParams(lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    rng = np.random.default_rng(3)
    table = rng.standard_normal((6, 2))
    weight = torch.nn.Parameter(torch.from_numpy(table.copy()))
    reference, tx = torch.optim.SparseAdam([weight], lr=p.lr, betas=p.betas, eps=p.eps), sparse_adam(p)
    params = {"t": {"embedding": jnp.asarray(table)}}
    state, rows = tx.init(params), []
    for ids in ([1, 3, 3], [1, 4, 1], [5, 5]):
        values = rng.standard_normal((len(ids), 2))
        if ids == [1, 4, 1]:
            values[2] = -values[0]  # row 1's two gradients cancel: touched, summed gradient exactly 0
        weight.grad = torch.sparse_coo_tensor(torch.tensor([ids]), torch.from_numpy(values), (6, 2),
                                              check_invariants=True)
        reference.step()
        dense = np.zeros((6, 2))
        np.add.at(dense, ids, values)
        touched = {"t": {"embedding": looked_up(jnp.asarray(ids), 6)}}
        updates, state = tx.update({"t": {"embedding": jnp.asarray(dense)}}, state, params, touched_rows=touched)
        params = {"t": {"embedding": params["t"]["embedding"] + updates["t"]["embedding"]}}
        mine = np.asarray(params["t"]["embedding"])
        np.testing.assert_allclose(mine, weight.detach().numpy(), rtol=1e-13, atol=1e-15)
        for moment, entry in ((state.mu, "exp_avg"), (state.nu, "exp_avg_sq")):
            np.testing.assert_allclose(np.asarray(moment["t"]["embedding"]), reference.state[weight][entry].numpy(),
                                       rtol=1e-13, atol=1e-15)
        rows.append(mine[1])
    assert np.abs(rows[1] - rows[0]).min() > 1e-3  # the zero-gradient row moved at step 2
    np.testing.assert_array_equal(rows[2], rows[1])  # and not at step 3, which did not look it up
    np.testing.assert_array_equal(np.asarray(params["t"]["embedding"])[[0, 2]], table[[0, 2]])


def test_looked_up_leaves_out_padding_as_torchs_sparse_gradient_does():
    ids = torch.tensor([[2, 0, 2], [5, 0, 1]])
    table = torch.nn.Embedding(7, 2, padding_idx=0, sparse=True)
    table(ids).sum().backward()
    rows = np.zeros(7, bool)
    rows[table.weight.grad.coalesce().indices().numpy()] = True
    np.testing.assert_array_equal(np.asarray(looked_up(jnp.asarray(ids.numpy()), 7, 0)), rows)
    assert rows.tolist() == [False, True, True, False, False, True, False]


@pytest.mark.parametrize("dtype", [pytest.param("float32", marks=pytest.mark.slow), "float64"])  # 9 s: -m slow
def test_dslc_check_passes(dtype):
    """``dslc check`` on the sparse spec: gradients (torch's sparse one densified), 5 steps synced from torch's
    state each step, at the check's own tolerances."""
    spec, graph = sparse_spec()
    report = check(spec, graph, dtype=dtype, steps=5, batch_size=8)
    assert report.ok, report.failures
    assert report.worst("grad user_table.weight") <= (1e-6 if dtype == "float32" else 1e-13)
    assert report.worst("step 5 output") <= (1e-5 if dtype == "float32" else 1e-13)


FIELD_SPEC = """
name: sparse_fields
inputs:
  fields: {shape: [3], dtype: int64, vocab: [5, 7, 4]}
  features: {shape: [4]}
model:
  - field_embedding: {embedding_dim: 4, sparse: true, inputs: [fields], name: table}   # rows 0-4, 5-11, 12-15
  - flatten: {name: field_vectors}
  - bias: {sparse: true, inputs: [fields], name: first}
  - linear: {out_features: 6, inputs: [features], name: feature_tower}
  - concat: {inputs: [field_vectors, first, feature_tower], dim: 1}
  - tanh
  - linear: {out_features: 3, name: head}
train:
  loss: cross_entropy
  optimizer: {sparse_adam: {lr: 0.05, eps: 0.01}}
  batch_size: 4
"""
FIELD_IDS = [  # per field ids, offsets added by the tables: field 0's id 4 (row 4) and field 1's 6 (row 11) never
    [[0, 1, 2], [0, 1, 2], [3, 0, 0], [1, 5, 3]],
    [[2, 2, 1], [2, 3, 1], [2, 2, 1], [2, 4, 1]],
    [[0, 0, 0], [3, 1, 3], [1, 5, 2], [0, 0, 0]],
    [[1, 3, 2], [1, 2, 2], [3, 3, 1], [1, 1, 1]],
]


def test_field_tables_train_sparse_alike_and_leave_unread_rows():
    """field_embedding and bias with sparse: true: the looked-up rows are field offsets plus ids on both targets
    (the JAX tables report them after adding the offsets); 4 float64 steps agree to 1e-12, and rows no batch read
    (4 and 11) keep their initial weights."""
    spec, graph = dsl.loads(FIELD_SPEC)
    batch = make_batch(graph, resolve_objective(spec, graph), 16, "float64", np.random.default_rng(1))
    data = {**batch, "fields": np.array(FIELD_IDS, np.int64).reshape(-1, 3)}
    made = {name: trained(name, spec, graph, data, range(4)) for name in ("torch", "jax")}
    weights = {name: t.export_state() for name, t in made.items()}
    assert_states_close(weights["jax"], weights["torch"], "weights")
    assert_states_close(made["jax"].export_optimizer_state(), made["torch"].export_optimizer_state(), "state")
    start = init_weights(graph, 0, "float64")
    for key in ("table.weight", "first.weight"):
        moved = np.abs(weights["torch"][key] - start[key]).max(axis=1) > 0
        assert not moved[[4, 11]].any() and moved.sum() == len(moved) - 2, (key, moved)
