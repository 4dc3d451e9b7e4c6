"""The seeded recommender datasets: planted_ratings and planted_clicks, their arguments, columns and ceilings."""

from __future__ import annotations

import numpy as np
import pytest

import dsl
from backends.data import epoch_batches, load_dataset
from backends.data.clicks import DEFAULT_VOCAB, click_world, planted_auc, planted_clicks
from backends.data.columns import Feeds, check_vocab
from backends.data.ratings import MEAN, planted_ratings, rating_world
from dsl.errors import SpecSchemaError
from dsl.training import PlantedClicksParams, PlantedRatingsParams


def clicks_spec(data: str, table: int = 100) -> str:
    """A click model in Criteo's layout: one ``table``-row embedding reads the 26 fields; the output is ``label``."""
    return f"""\
name: clicks
inputs:
  dense: {{shape: [13]}}
  sparse: {{shape: [26], dtype: int64}}
model:
  - embedding: {{num_embeddings: {table}, embedding_dim: 2, inputs: [sparse]}}
  - flatten: {{name: flat}}
  - concat: {{inputs: [flat, dense], dim: 1}}
  - linear: {{out_features: 1}}
  - select: {{dim: 1, index: 0, name: label}}
data: {data}
train: {{loss: bce_with_logits, optimizer: adam}}
"""


CLICKS_SPEC = clicks_spec("{dataset: {planted_clicks: {rank: 2}}, train_size: 3000, test_size: 1000}")

RATINGS_SPEC = """\
name: mf
inputs:
  user: {shape: [1], dtype: int64}
  item: {shape: [1], dtype: int64}
model:
  - embedding: {num_embeddings: 300, embedding_dim: 4, inputs: [user]}
  - flatten: {name: rating}
data: {dataset: planted_ratings}
train: {loss: mse, optimizer: adam}
"""


class NoVocab:
    """Feeds of a model that declares no vocab and has no table reading the ids."""

    def vocab(self, column):
        return None


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a - b))))


def test_planted_ratings_columns():
    source = planted_ratings(PlantedRatingsParams(), 0, None, None)
    assert (len(source.train), len(source.test)) == (200_000, 20_000)
    for column, dtype in (("user", np.int64), ("item", np.int64), ("rating", np.float32)):
        assert source.train[column].dtype == dtype and source.train[column].shape == (200_000,)
    assert 0 == source.train["user"].min() and source.train["user"].max() == 299
    assert 0 == source.train["item"].min() and source.train["item"].max() == 299


@pytest.mark.parametrize("noise", [0.5, 0.2])
def test_the_best_test_rmse_is_the_noise(noise):
    """The truth's error on the test split is the noise std: 20,000 draws put it within 1.5%."""
    params = PlantedRatingsParams(noise=noise)
    test = planted_ratings(params, 0, None, None).test
    assert rmse(rating_world(params).expected(test["user"], test["item"]), test["rating"]) == \
        pytest.approx(noise, rel=0.015)


def test_the_biases_carry_signal_a_plain_mf_lacks():
    """Knowing the biases takes the test error from 1.288 (the global mean) to 1.059: this world's biases have stds
    0.52 and 0.48 (drawn at 0.5), its rank-4 product 0.94 (drawn at 1); what is left is the product and the noise."""
    params = PlantedRatingsParams()
    world, test = rating_world(params), planted_ratings(params, 0, None, None).test
    biased = MEAN + world.user_bias[test["user"]] + world.item_bias[test["item"]]
    assert rmse(np.full(len(test), MEAN), test["rating"]) == pytest.approx(1.288, abs=1e-3)
    assert rmse(biased, test["rating"]) == pytest.approx(1.059, abs=1e-3)


def test_training_ratings_follow_the_seed_and_test_ratings_do_not():
    params = PlantedRatingsParams(users=50, items=40)
    a, b, again = (planted_ratings(params, seed, 1000, 200) for seed in (0, 1, 0))
    np.testing.assert_array_equal(a.train["rating"], again.train["rating"])
    assert not np.array_equal(a.train["user"], b.train["user"])
    for column in ("user", "item", "rating"):
        np.testing.assert_array_equal(a.test[column], b.test[column])


def test_planted_clicks_columns():
    source = planted_clicks(PlantedClicksParams(), NoVocab(), 0, 5000, 1000)
    train = source.train
    assert (train["dense"].shape, train["dense"].dtype) == ((5000, 13), np.float32)
    assert (train["sparse"].shape, train["sparse"].dtype) == ((5000, 26), np.int64)
    assert (train["label"].shape, train["label"].dtype) == ((5000,), np.float32)
    assert set(np.unique(train["label"])) == {0.0, 1.0}
    np.testing.assert_array_equal(train["sparse"].max(axis=0), np.array(DEFAULT_VOCAB) - 1)
    assert train["sparse"].min() == 0


def test_planted_clicks_ceiling_and_why_a_model_needs_the_interactions():
    """The truth's AUC on the default test split is 0.8329 (the number the model tests are held to); without
    its pairwise part the logit's AUC drops by more than 0.05, so a model must learn the interactions."""
    world = click_world(DEFAULT_VOCAB, 4)
    test = planted_clicks(PlantedClicksParams(), NoVocab(), 0, None, None).test
    assert planted_auc(world, test) == pytest.approx(0.8329, abs=5e-4)
    flat = click_world(DEFAULT_VOCAB, 4)
    flat = type(flat)(flat.dense, flat.first, tuple(np.zeros_like(v) for v in flat.latent))
    assert planted_auc(flat, test) < planted_auc(world, test) - 0.05
    assert test["label"].mean() == pytest.approx(0.37, abs=0.01)


def test_planted_clicks_through_load_dataset_fits_the_table_reading_the_ids():
    """The embedding reading ``sparse`` has 100 rows, so every field's ids lie below 100 (not DEFAULT_VOCAB's)."""
    spec, graph = dsl.loads(CLICKS_SPEC)
    dataset = load_dataset(spec, graph, seed=3)
    assert (len(dataset.train), len(dataset.test)) == (3000, 1000)
    assert dataset.train["sparse"].max() == 99 and dataset.train["sparse"].dtype == np.int64
    again = load_dataset(spec, graph, seed=3)
    batch = epoch_batches(len(dataset.train), 256, 3, 1)[0]
    for column in ("dense", "sparse", "label"):
        np.testing.assert_array_equal(dataset.train[column][batch], again.train[column][batch])


def test_ids_beyond_a_declared_vocab_are_one_line():
    feeds = Feeds({"sparse": "sparse"}, dsl.loads(CLICKS_SPEC)[1], {"sparse": (50,) * 26})
    source = planted_clicks(PlantedClicksParams(), feeds, 0, 100, 100)
    assert source.train["sparse"].max() == 49
    with pytest.raises(dsl.DataError) as info:
        check_vocab("planted_clicks", "sparse", source.train["sparse"], (50,) * 25 + (40,))
    assert str(info.value) == ("dataset planted_clicks: sparse holds ids up to 49 in field 25, but the input it feeds "
                               "takes ids below 40 (its vocab); give a vocab of at least 50")


def test_dataset_arguments_are_validated_where_they_are_written():
    text = CLICKS_SPEC.replace("{planted_clicks: {rank: 2}}", "{planted_clicks: {rnak: 2}}")
    with pytest.raises(SpecSchemaError) as info:
        dsl.loads(text)
    assert (info.value.location.line, info.value.location.col) == (11, 35)
    assert info.value.message == "unknown key 'rnak' for planted_clicks; did you mean 'rank'?; valid keys: rank, ids"


def test_options_of_another_dataset_are_its_defaults():
    spec, _ = dsl.loads(CLICKS_SPEC)
    assert spec.data.options("planted_clicks") == PlantedClicksParams(rank=2)
    assert spec.data.options("planted_ratings") == PlantedRatingsParams()


def test_a_rating_id_feeds_a_scalar_input():
    """user and item are one id per example, shape []: an input of shape [1] is refused before loading."""
    with pytest.raises(SpecSchemaError) as info:
        dsl.loads(RATINGS_SPEC)
    assert info.value.message == ("dataset planted_ratings's user are one integer id per example (shape []), but "
                                  "input user is int64 [N, 1]")


def test_user_ids_beyond_the_vocab_are_one_line():
    check_vocab("movielens", "user", np.array([0, 5, 942]), 943)
    with pytest.raises(dsl.DataError) as info:
        check_vocab("movielens", "user", np.array([0, 5, 943]), 943)
    assert str(info.value) == ("dataset movielens: user holds ids up to 943, but the input it feeds takes ids below "
                               "943 (its vocab); give a vocab of at least 944")
