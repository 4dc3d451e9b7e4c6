"""Tabular inputs (``shape: []``, ``vocab:``) and the recommender ops, against numbers computed by hand.

The op parity tests prove torch and JAX compute the same; these pin what they compute:
which table row a field's id reads, the FM term as the sum over field pairs it stands
for, the state dict keys a torch user expects, and ids drawn inside every declared
vocabulary (the top of each field included, where an offset bug would show).
"""

import numpy as np
import pytest
import torch

import dsl
from backends.data.synthetic import draw_examples, id_high
from backends.jax import FlaxModel, variables_from_state
from backends.parity import make_inputs
from backends.predict import prepare_inputs
from backends.torch import build_module
from backends.torch.training import TORCH_LOSSES
from dsl.errors import UsageError
from tests.conftest import REPO

MF, DEEPFM = REPO / "specs/mf_movielens.yaml", REPO / "specs/deepfm_criteo.yaml"

FIELDS = """
name: fields
inputs:
  sparse: {shape: [3], dtype: int64, vocab: [2, 3, 4]}
model:
  - field_embedding: {embedding_dim: 2, inputs: [sparse], name: table}
  - bias: {inputs: [sparse], name: per_id}
outputs: [table, per_id]
"""


def both(graph: dsl.Graph, state: dict[str, np.ndarray], *xs: np.ndarray) -> tuple[dict, dict]:
    """The outputs by name of the torch and the Flax model, in float64, from the same canonical weights."""
    out_t = build_module(graph, state, dtype="float64").eval()(*map(torch.from_numpy, xs))
    out_j = FlaxModel(graph).apply(variables_from_state(graph, state), *xs, train=False)  # x64: tests/conftest.py
    out_j = {k: np.asarray(v) for k, v in out_j.items()}
    return {k: v.detach().numpy() for k, v in out_t.items()}, out_j


def test_field_ids_read_the_rows_after_the_fields_before_them():
    """Sizes [2, 3, 4]: field 0 starts at row 0, field 1 at 2, field 2 at 5; both ops, both backends."""
    _, graph = dsl.loads(FIELDS)
    table, per_id = np.arange(18.0).reshape(9, 2), np.arange(9.0)[:, None] * 10
    ids = np.array([[0, 0, 0], [1, 2, 3]])
    rows = np.array([[0, 2, 5], [1, 4, 8]])
    for out in both(graph, {"table.weight": table, "per_id.weight": per_id}, ids):
        np.testing.assert_array_equal(out["table"], table[rows])
        np.testing.assert_array_equal(out["per_id"], per_id[rows, 0])


def test_the_offsets_are_not_in_the_state_dict():
    """One ``weight`` per table, as pytorch-fm saves it; the offsets are a non-persistent buffer."""
    _, graph = dsl.loads(FIELDS)
    module = build_module(graph)
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == {"table.weight": (9, 2),
                                                                           "per_id.weight": (9, 1)}
    assert module.get_buffer("table.offsets").tolist() == [0, 2, 5]
    assert not module.get_submodule("per_id").weight.detach().any()  # a bias starts at zero


def test_fm_interaction_is_the_sum_of_products_over_field_pairs():
    """½((Σv)² - Σv²) against the O(F²·D) definition Σ_{i<j} v_i ⊙ v_j, to float64 rounding."""
    _, graph = dsl.loads("name: fm\ninput: {shape: [5, 3]}\nmodel: [fm_interaction: {name: fm}, "
                         "fm_interaction: {reduce: false, inputs: [input], name: vector}]\noutputs: [fm, vector]")
    v = np.random.default_rng(0).standard_normal((4, 5, 3))
    pairs = sum(v[:, i] * v[:, j] for i in range(5) for j in range(i + 1, 5))
    for out in both(graph, {}, v):
        np.testing.assert_allclose(out["vector"], pairs, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out["fm"], pairs.sum(1, keepdims=True), rtol=1e-12, atol=1e-12)


def test_matrix_factorization_scores_dot_plus_biases_plus_the_global_bias():
    spec, graph = dsl.load(MF)
    rng = np.random.default_rng(1)
    state = {k: rng.standard_normal(w.shape) for k, w in graph.state_dict_spec().items()}
    user, item = np.array([0, 942, 17]), np.array([1681, 0, 5])
    expected = ((state["user_embedding.weight"][user] * state["item_embedding.weight"][item]).sum(1)
                + state["user_bias.weight"][user, 0] + state["item_bias.weight"][item, 0] + state["rating.bias"][0])
    out_t = build_module(graph, state, dtype="float64")(torch.from_numpy(user), torch.from_numpy(item))
    np.testing.assert_allclose(out_t.detach().numpy(), expected, rtol=1e-12)


def test_the_zoo_specs_keep_torch_keys_and_parameter_counts():
    """MF: 943·32 + 1682·32 + 943 + 1682 + 1; DeepFM's tables hold sum(vocab) = 224,556 rows."""
    shapes = {k: w.shape for k, w in dsl.load(MF)[1].state_dict_spec().items()}
    assert shapes == {"user_embedding.weight": (943, 32), "item_embedding.weight": (1682, 32),
                      "user_bias.weight": (943, 1), "item_bias.weight": (1682, 1), "rating.bias": (1,)}
    assert dsl.load(MF)[1].num_parameters == 86_626
    _, deepfm = dsl.load(DEEPFM)
    spec = deepfm.state_dict_spec()
    assert spec["embeddings.weight"].shape == (224_556, 10) and spec["field_bias.weight"].shape == (224_556, 1)
    assert deepfm.output_type.shape == () and deepfm.num_parameters == 2_900_931


def test_ids_are_drawn_within_each_fields_vocab_and_reach_its_top():
    """The synthetic dataset's draw (limit 1000) and dslc check's (limit 10) both take the declared vocab whole."""
    _, graph = dsl.load(DEEPFM)
    vocab = graph.input_types["sparse"].vocab
    assert id_high(graph, "sparse") == vocab
    ids = draw_examples(graph.input_types["sparse"], 20_000, np.random.default_rng(0), id_high(graph, "sparse"))
    assert ids.min() >= 0 and (ids.max(0) < np.array(vocab)).all()
    small = np.array(vocab) <= 30  # 20,000 draws reach both ends of these
    np.testing.assert_array_equal(ids.min(0)[small], 0)
    np.testing.assert_array_equal(ids.max(0)[small], np.array(vocab)[small] - 1)
    spec, mf = dsl.load(MF)
    user, item = make_inputs(mf, 4096, "float32", np.random.default_rng(0))
    assert user.shape == (4096,) and 900 <= user.max() < 943 and 1600 <= item.max() < 1682


def test_predict_refuses_an_id_outside_its_fields_vocab():
    spec, graph = dsl.load(DEEPFM)
    sparse = np.zeros((2, 26), np.int64)
    sparse[1, 8] = 3  # field 8 has 3 ids
    with pytest.raises(UsageError, match=r"sparse: the inputs hold ids of field 8 0\.\.3, but its declared vocab "
                                         r"holds 3 ids: ids of field 8 must lie in 0\.\.2"):
        prepare_inputs(spec, graph, {"dense": np.zeros((2, 13), np.float32), "sparse": sparse})


def test_predict_takes_one_id_per_example_as_a_vector():
    spec, graph = dsl.load(MF)
    (user, item), single = prepare_inputs(spec, graph, {"user": np.array([3, 942]), "item": np.array([0, 1])})
    assert user.shape == item.shape == (2,) and user.dtype == np.int64 and not single


@pytest.mark.parametrize("loss, expected", [("mse", lambda out, y: np.mean((out - y) ** 2)),
                                            ("bce_with_logits", lambda out, y: np.mean(
                                                np.log1p(np.exp(-out)) + (1 - y) * out))])
def test_losses_take_one_value_per_example(loss, expected):
    """An output [N] against targets [N]: the mean over examples, with no broadcasting to [N, N]."""
    out, y = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 1.0])
    value, _ = TORCH_LOSSES[loss](None).mean(torch.from_numpy(out), torch.from_numpy(y))
    assert value.item() == pytest.approx(expected(out, y), rel=1e-12)
