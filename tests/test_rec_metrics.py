"""The recommender metrics against scikit-learn on the same predictions, on both targets.

A click head (bce_with_logits: logloss, auc) and a rating head (mse: rmse, mae) share
a trunk; one of them is squeezed to per-example scalars [N] (``select``), the other
stays [N, 1]. ``dslc eval``'s numbers are compared with ``sklearn.metrics`` on the
target's own evaluation-mode outputs: in float64 to 1e-9 relative (the sums and
sklearn's means differ only in summation order), auc to 1e-12 (the same scores,
ranked by the same function). RMSE is the split's, not a mean of batch RMSEs; the
metrics do not depend on the evaluation batch size or on streaming the split.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

import dsl
from backends.loop import TrainOptions, evaluate, train
from backends.split_metrics import SPLIT_METRICS
from backends.target import make_target
from backends.weights import init_weights, load_weights
from dsl.errors import DataError

TIGHT = 1e-9  # float64: sums in another order than sklearn's
SPEC = """
name: ctr_rating
inputs: {features: {shape: [8]}}
model:
  - linear: {out_features: 16, name: trunk, inputs: [features]}
  - relu: {name: hidden}
  - linear: {out_features: 1, name: click, inputs: [hidden]}
  - linear: {out_features: 1, name: rating, inputs: [hidden]}
  - select: {dim: 1, index: 0, name: scalar, inputs: [SQUEEZED]}
outputs: OUTPUTS
data: {dataset: npy, path: DATA, stream: STREAM}
train:
  loss: {click: bce_with_logits, rating: mse}
  metrics: {click: [accuracy, logloss, auc], rating: [rmse, mae]}
  optimizer: {adam: {lr: 0.01}}
  batch_size: 32
  epochs: 3
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Clicks drawn from a logistic model of the features, ratings linear in them plus noise; 101 test
    examples, so every evaluation batch size here leaves a padded last batch."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("clicks")
    w, v = rng.normal(size=8), rng.normal(size=8)
    for split, n in (("train", 512), ("test", 101)):
        x = rng.normal(size=(n, 8)).astype(np.float32)
        (root / split).mkdir()
        np.save(root / split / "features.npy", x)
        np.save(root / split / "click.npy", (rng.random((n, 1)) < expit(2 * x @ w)[:, None]).astype(np.float32))
        np.save(root / split / "rating.npy", (x @ v + rng.normal(scale=0.5, size=n))[:, None].astype(np.float32))
    return root


def load(folder, squeezed: str, stream: bool = False):
    """The spec with ``squeezed`` ('click' or 'rating') output [N] and the other [N, 1]; its targets reshaped to
    match, in a sibling folder."""
    data = folder.parent / f"{folder.name}-{squeezed}"
    if not data.exists():
        for split in ("train", "test"):
            (data / split).mkdir(parents=True)
            for column in ("features", "click", "rating"):
                array = np.load(folder / split / f"{column}.npy")
                np.save(data / split / f"{column}.npy", array[:, 0] if column == squeezed else array)
    outputs = {"click": "click", "rating": "rating", squeezed: "scalar"}
    text = (SPEC.replace("SQUEEZED", squeezed).replace("OUTPUTS", json.dumps(outputs).replace('"', ""))
            .replace("DATA", str(data)).replace("STREAM", str(stream).lower()))
    return dsl.loads(text), data


def sklearn_metrics(graph, target: str, state, data) -> dict[str, float]:
    """The metrics sklearn gives on the target's float64 evaluation-mode outputs over the test split."""
    model = make_target(target, graph, None, dtype="float64")
    model.load_state(state)
    out = model.predict(np.load(data / "test" / "features.npy"), 1000)
    logits, ratings = out["click"].reshape(-1), out["rating"].reshape(-1)
    clicks, truth = (np.load(data / "test" / f"{c}.npy").reshape(-1) for c in ("click", "rating"))
    return {"test_click_logloss": log_loss(clicks, expit(logits)),
            "test_click_auc": roc_auc_score(clicks, logits),
            "test_rating_rmse": math.sqrt(mean_squared_error(truth, ratings)),
            "test_rating_mae": mean_absolute_error(truth, ratings)}


@pytest.mark.parametrize("squeezed", ["click", "rating"])
@pytest.mark.parametrize("target", ["torch", "jax"])
def test_test_metrics_equal_sklearns_on_the_same_predictions(folder, target, squeezed):
    (spec, graph), data = load(folder, squeezed)
    state = init_weights(graph, seed=1)
    result = evaluate(spec, graph, target, state, batch_size=16, dtype="float64")
    expected = sklearn_metrics(graph, target, state, data)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-12 if name.endswith("auc") else TIGHT), name
    assert result["test_click_logloss"] == pytest.approx(result["test_click_loss"], rel=TIGHT)  # unweighted bce
    assert result["test_rating_rmse"] == pytest.approx(math.sqrt(result["test_rating_loss"]), rel=TIGHT)


def test_rmse_is_the_splits_not_a_mean_of_batch_rmses(folder):
    """The two differ on this split by more than the tolerance, so the equality above tells them apart."""
    (spec, graph), data = load(folder, "rating")
    state = init_weights(graph, seed=1)
    result = evaluate(spec, graph, "torch", state, batch_size=16, dtype="float64")
    model = make_target("torch", graph, None, dtype="float64")
    model.load_state(state)
    errors = model.predict(np.load(data / "test" / "features.npy"), 16)["rating"] - np.load(data / "test" /
                                                                                             "rating.npy")
    batch_rmses = [math.sqrt(np.mean(errors[i:i + 16] ** 2)) for i in range(0, len(errors), 16)]
    assert abs(np.mean(batch_rmses) - result["test_rating_rmse"]) > 1e-3
    assert result["test_rating_rmse"] == pytest.approx(math.sqrt(np.mean(errors ** 2)), rel=TIGHT)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_metrics_do_not_depend_on_batch_size_or_streaming(folder, target):
    """Batches of 7 (15, the last padded), one batch of the whole split, and the split streamed from disk."""
    state = None
    results = []
    for stream, batch_size in ((False, 7), (False, 1000), (True, 7)):
        (spec, graph), _ = load(folder, "click", stream)
        state = state or init_weights(graph, seed=2)
        results.append(evaluate(spec, graph, target, state, batch_size=batch_size, dtype="float64"))
    names = [k for k in results[0] if k.startswith("test_")]
    assert {"test_click_auc", "test_click_logloss", "test_rating_rmse", "test_rating_mae"} <= set(names)
    for other in results[1:]:
        for name in names:
            assert other[name] == pytest.approx(results[0][name], rel=1e-12), name


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_training_reports_test_auc_per_epoch_and_in_the_summary(folder, target, tmp_path, capsys):
    """auc is the test split's only (no train_auc); the summed metrics are reported for both splits. After 3
    epochs the click head ranks clicks well, and the last test_auc is sklearn's on the saved weights (float32)."""
    (spec, graph), data = load(folder, "click")
    summary = train(spec, graph, TrainOptions(target=target, out_dir=tmp_path / "run", progress=False))
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    printed = capsys.readouterr().out.splitlines()
    assert len(lines) == len(printed) == 3 and all("test_click_auc" in line for line in printed)
    for line in lines:
        assert {"train_click_logloss", "train_rating_rmse", "test_click_auc"} <= line.keys()
        assert "train_click_auc" not in line
    assert summary["test_click_auc"] == lines[-1]["test_click_auc"] > 0.85
    assert "train_click_auc" not in summary
    model = make_target(target, graph, None)
    model.load_state(load_weights(tmp_path / "run" / "weights.safetensors", graph))
    logits = model.predict(np.load(data / "test" / "features.npy"), 1000)["click"]
    assert summary["test_click_auc"] == pytest.approx(roc_auc_score(np.load(data / "test" / "click.npy"), logits),
                                                      rel=1e-12)


def test_auc_of_one_class_is_nan_and_of_soft_labels_an_error():
    auc = SPLIT_METRICS["auc"]
    assert auc(np.array([0.0, 1.0, 1.0]), np.array([0.2, 0.1, 0.3])) == pytest.approx(0.5, abs=0)
    assert math.isnan(auc(np.ones(4), np.arange(4.0)))
    with pytest.raises(DataError, match=r"^auc needs 0/1 labels \(click or not\); the test split's targets hold 0.3$"):
        auc(np.array([0.0, 0.3, 1.0]), np.arange(3.0))
