"""The validation split, early stopping and the best checkpoint.

The split: carved rows are disjoint from the rows left to train on, fixed by the seed,
and read from disk where the files hold one. The stopping rule: Keras's, checked on
made-up metric sequences. Real runs (digits, 240 training examples, lr 0.01, so the
validation loss turns up after a few epochs) on both targets: they record the same
``val_`` metrics, stop where the rule says, keep the best epoch's weights in
``best.safetensors``, and a run killed mid-epoch and resumed stops at the same epoch
with the same best weights.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

import dsl
from backends.checkpoint import check_resumable, read_checkpoint
from backends.data import load_dataset
from backends.data.sources import Split
from backends.data.validation import carve, validation_rows
from backends.early_stopping import EarlyStopping
from backends.loop import BEST, TrainOptions, _Checkpoints, evaluate, train
from backends.weights import load_weights
from dsl.monitor import Watch, watch_of

SPEC = """\
name: digits_early
input: {shape: [1, 8, 8]}
model:
  - flatten
  - linear: {out_features: 128, name: fc1}
  - relu
  - linear: {out_features: 10, name: fc2}
data:
  dataset: digits
  normalize: {mean: [0.5], std: [0.5]}
  train_size: 300
  validation_split: 0.2
train:
  loss: cross_entropy
  optimizer: {adam: {lr: 0.01}}
  batch_size: 32
  epochs: 30
  metrics: [accuracy]
  early_stopping: {monitor: val_loss, patience: 2}
"""
PATIENCE = 2
STEPS_PER_EPOCH = 8  # 240 training examples left by the 60 carved off, batches of 32


# --- the split ---------------------------------------------------------------------------------------------------

def test_carved_rows_are_disjoint_fixed_by_the_seed_and_ceil_of_the_fraction():
    rows = validation_rows(1437, 0.1, seed=0)
    assert len(rows) == 144 and np.all(np.diff(rows) > 0)  # ceil(143.7), ascending, no repeats
    assert np.array_equal(rows, validation_rows(1437, 0.1, seed=0))
    assert not np.array_equal(rows, validation_rows(1437, 0.1, seed=1))
    assert len(validation_rows(10, 0.7, seed=0)) == 7  # 0.7 * 10 is 7.000000000000001 in floats: not 8
    split = Split({"id": np.arange(50) * 10, "y": np.arange(50)})
    kept, held = carve(split, 0.3, seed=4)
    assert len(held) == 15 and len(kept) == 35
    assert not set(kept["id"]) & set(held["id"]) and set(kept["id"]) | set(held["id"]) == set(split["id"])
    assert np.array_equal(kept["id"], kept["y"] * 10) and np.array_equal(held["id"], held["y"] * 10)  # rows whole
    assert np.all(np.diff(kept["id"]) > 0)  # the kept rows in their order: the batch order is the seed's alone


def test_load_dataset_carves_the_validation_split_off_the_training_split():
    spec, graph = dsl.loads(SPEC)
    data = load_dataset(spec, graph, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (240, 60, 360)
    whole = load_dataset(*dsl.loads(SPEC.replace("  validation_split: 0.2\n", "").replace(
        "  early_stopping: {monitor: val_loss, patience: 2}\n", "")), seed=0)
    assert whole.val is None
    images = [split["input"].reshape(len(split), -1) for split in (data.train, data.val, whole.train)]
    rows = validation_rows(300, 0.2, seed=0)
    np.testing.assert_array_equal(images[1], images[2][rows])
    np.testing.assert_array_equal(images[0], np.delete(images[2], rows, axis=0))
    np.testing.assert_array_equal(data.test["input"], whole.test["input"])  # the test split is untouched
    other = load_dataset(spec, graph, seed=1)
    assert not np.array_equal(other.val["input"], data.val["input"])


def test_npz_and_npy_folders_give_their_own_validation_split(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"{c}_{s}": rng.standard_normal((n, 4)).astype(np.float32) if c == "x" else
              rng.integers(0, 2, n).astype(np.int64) for s, n in (("train", 30), ("test", 10), ("val", 7))
              for c in ("x", "y")}
    np.savez(tmp_path / "arrays.npz", **arrays)
    for split in ("train", "test", "val"):
        (tmp_path / "npy" / split).mkdir(parents=True)
        for c in ("x", "y"):
            np.save(tmp_path / "npy" / split / f"{c}.npy", arrays[f"{c}_{split}"])
    spec = ("name: arrays\ninput: {shape: [4]}\nmodel: [linear: {out_features: 2}]\n"
            "data: {dataset: %s, path: '%s', validation: val%s}\ntrain: {loss: cross_entropy, optimizer: sgd}\n")
    for dataset, path, stream in (("npz", tmp_path / "arrays.npz", ""), ("npy", tmp_path / "npy", ""),
                                  ("npy", tmp_path / "npy", ", stream: true")):
        data = load_dataset(*dsl.loads(spec % (dataset, path, stream)))
        assert (len(data.train), len(data.val), len(data.test)) == (30, 7, 10)
        np.testing.assert_array_equal(np.asarray(data.val["input"]), arrays["x_val"])
        np.testing.assert_array_equal(np.asarray(data.val["linear_1"]), arrays["y_val"])
    with pytest.raises(dsl.DataError, match=r"arrays.npz has no array x_valid \(or input_valid\); it holds x_train"):
        load_dataset(*dsl.loads(spec.replace("val%s", "valid%s") % ("npz", tmp_path / "arrays.npz", "")))


def test_image_folder_reads_its_validation_folder(tmp_path):
    from tests.test_vision_data import write_shapes

    folder = write_shapes(tmp_path / "shapes", train=4, test=2)
    shutil.copytree(folder / "test", folder / "val")
    text = f"""\
name: shapes
input: {{shape: [3, 16, 16]}}
model: [flatten, linear: {{out_features: 3}}]
data: {{dataset: image_folder, path: '{folder}', validation: val}}
train: {{loss: cross_entropy, optimizer: sgd}}
"""
    data = load_dataset(*dsl.loads(text), data_dir=tmp_path / "data")
    assert len(data.val) == len(data.test) == 6
    np.testing.assert_array_equal(data.val["input"], data.test["input"])
    np.testing.assert_array_equal(data.val["linear_1"], data.test["linear_1"])


# --- the stopping rule, on numbers ---------------------------------------------------------------------------------

def _stops(values, **watch) -> tuple[int | None, int | None, list[int]]:
    """(stopped epoch, best epoch, epochs that were a new best) of the rule fed ``values`` as epochs 1, 2, ..."""
    rule, improved = EarlyStopping(Watch(**watch)), []
    for epoch, value in enumerate(values, 1):
        if rule.update(epoch, value):
            improved.append(epoch)
        if rule.stopped:
            break
    return rule.stopped_epoch, rule.best_epoch, improved


def test_the_rule_stops_after_patience_epochs_without_improvement():
    losses = [1.0, 0.8, 0.9, 0.85, 0.7, 0.6]
    assert _stops(losses, patience=2) == (4, 2, [1, 2])  # epochs 3 and 4 do not beat 0.8
    assert _stops(losses, patience=3) == (None, 6, [1, 2, 5, 6])  # epoch 5 comes in time
    assert _stops(losses, patience=0) == (3, 2, [1, 2])  # the first epoch that does not improve
    assert _stops(losses, patience=None) == (None, 6, [1, 2, 5, 6])  # no early stopping: the best only
    assert _stops([0.5, 0.5], patience=0) == (2, 1, [1])  # equal is no improvement


def test_min_delta_is_an_absolute_margin_and_max_mode_looks_up():
    assert _stops([1.0, 0.95, 0.85, 0.8], patience=1, min_delta=0.1) == (2, 1, [1])  # 0.95 + 0.1 is not < 1.0
    assert _stops([1.0, 0.85, 0.8, 0.7], patience=2, min_delta=0.1) == (None, 4, [1, 2, 4])  # 0.7 + 0.1 < 0.85
    accuracies = [0.5, 0.6, 0.6, 0.62, 0.7]
    assert _stops(accuracies, mode="max", patience=1) == (3, 2, [1, 2])
    assert _stops(accuracies, mode="max", patience=2) == (None, 5, [1, 2, 4, 5])
    assert _stops(accuracies, mode="max", patience=2, min_delta=0.05) == (4, 2, [1, 2])  # 0.62 - 0.05 < 0.6
    assert _stops(accuracies, mode="max", patience=3, min_delta=0.05) == (None, 5, [1, 2, 5])


def test_nan_never_improves_and_the_first_epoch_never_stops():
    assert _stops([math.nan, 1.0, 2.0], patience=0) == (3, 2, [2])
    assert _stops([math.nan, math.nan], patience=0) == (2, None, [])


def test_resumed_state_continues_the_rule_exactly():
    values = [1.0, 0.7, 0.8, 0.75, 0.72]
    whole = EarlyStopping(Watch(patience=3))
    first = EarlyStopping(Watch(patience=3))
    for epoch, value in enumerate(values[:4], 1):
        whole.update(epoch, value)
        first.update(epoch, value)
    state = json.loads(json.dumps(first.state()))  # as a checkpoint's metadata keeps it
    assert state == {"best": 0.7, "best_epoch": 2, "wait": 2, "stopped_epoch": None}
    second = EarlyStopping.resumed(Watch(patience=3), state)
    for epoch, value in enumerate(values[4:], 5):
        whole.update(epoch, value)
        second.update(epoch, value)
    assert second == whole and whole.stopped_epoch == 5


def test_auto_mode_minimizes_losses_and_maximizes_accuracy():
    spec, graph = dsl.loads(SPEC)
    assert watch_of(spec, graph) == Watch("val_loss", "min", 2, 0.0)
    spec, graph = dsl.loads(SPEC.replace("{monitor: val_loss, patience: 2}", "{monitor: val_accuracy}"))
    assert watch_of(spec, graph) == Watch("val_accuracy", "max", 0, 0.0)
    spec, graph = dsl.loads(SPEC.replace("  early_stopping: {monitor: val_loss, patience: 2}\n", ""))
    assert watch_of(spec, graph) == Watch("val_loss", "min", None, 0.0)  # the best checkpoint only


# --- real runs ---------------------------------------------------------------------------------------------------

def _train(tmp_path, target: str, name: str, **options) -> dict:
    spec, graph = dsl.loads(SPEC)
    return train(spec, graph, TrainOptions(target=target, out_dir=tmp_path / name, progress=False, **options))


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One uninterrupted run per target: {target: (summary, records, run folder)}."""
    folder = tmp_path_factory.mktemp("runs")
    found = {}
    for target in ("torch", "jax"):
        summary = _train(folder, target, target)
        found[target] = summary, _records(folder / target), folder / target
    return found


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_real_run_stops_where_the_rule_says(runs, target):
    summary, records, _ = runs[target]
    losses = [r["val_loss"] for r in records]
    best, stopped = summary["best_epoch"], summary["stopped_epoch"]
    assert summary["stopped_early"] and summary["monitor"] == "val_loss" and summary["mode"] == "min"
    assert stopped == len(records) == best + PATIENCE < 30  # stopped after the evaluation of its last epoch
    assert summary["steps"] == stopped * STEPS_PER_EPOCH
    assert summary["best_value"] == losses[best - 1] == min(losses) and losses.index(min(losses)) == best - 1
    assert summary["val_loss"] == losses[-1] and summary["test_loss"] == records[-1]["test_loss"]
    assert [k for k in records[0] if k.startswith(("val_", "test_"))] == ["val_loss", "val_accuracy", "test_loss",
                                                                          "test_accuracy"]


def test_both_targets_evaluate_the_same_validation_split(runs):
    (torch_summary, torch_records, _), (jax_summary, jax_records, _) = runs["torch"], runs["jax"]
    assert torch_summary["stopped_epoch"] == jax_summary["stopped_epoch"]
    assert torch_summary["best_epoch"] == jax_summary["best_epoch"]
    for a, b in zip(torch_records, jax_records):  # the same model function on the same rows: float32 sums apart
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1 / 60 + 1e-9)  # one example at most


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_best_checkpoint_holds_the_best_epochs_weights(runs, target):
    summary, records, out = runs[target]
    best = records[summary["best_epoch"] - 1]
    spec, graph = dsl.loads(SPEC)
    weights = load_weights(out / BEST, graph)
    assert _metadata(out / BEST)["epoch"] == str(summary["best_epoch"])
    val = evaluate(spec, graph, target, weights, split="val", seed=0)
    assert val["examples"] == 60
    assert val["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert val["val_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-9)
    assert evaluate(spec, graph, target, weights)["test_loss"] == pytest.approx(best["test_loss"], rel=1e-5)
    last = evaluate(spec, graph, target, load_weights(out / "weights.safetensors", graph), split="val", seed=0)
    assert last["val_loss"] == pytest.approx(records[-1]["val_loss"], rel=1e-5)
    assert last["val_loss"] > val["val_loss"]  # the last epoch's weights are not the best ones


def _metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(path, "np") as f:
        return f.metadata()


class _Killed(Exception):
    """Stands for a SIGKILL right after a checkpoint (tests/test_resume.py kills real processes)."""


@pytest.mark.parametrize("target", ["torch", pytest.param("jax", marks=pytest.mark.slow)])  # driver state: jax 16 s
def test_a_run_resumed_mid_epoch_stops_at_the_same_epoch_with_the_same_best(runs, tmp_path, monkeypatch, target):
    """Killed in the epoch after the first one without improvement, the resumed run must know it has waited one
    epoch already: with the state lost it would wait PATIENCE more and stop later."""
    summary, records, whole = runs[target]
    kill_step = (summary["best_epoch"] + 1) * STEPS_PER_EPOCH + 4  # mid-epoch best + 2
    write = _Checkpoints.write

    def write_then_die(self, target_, position, state=None):
        seconds = write(self, target_, position, state)
        if position.step == kill_step:
            raise _Killed
        return seconds

    monkeypatch.setattr(_Checkpoints, "write", write_then_die)
    with pytest.raises(_Killed):
        _train(tmp_path, target, "killed", checkpoint_every=4)
    monkeypatch.setattr(_Checkpoints, "write", write)
    checkpoint = read_checkpoint(tmp_path / "killed", tensors=True)
    assert checkpoint.position.batch == 4 and checkpoint.monitor == {
        "best": summary["best_value"], "best_epoch": summary["best_epoch"], "wait": 1, "stopped_epoch": None}
    spec, graph = dsl.loads(SPEC)
    resumed = train(spec, graph, TrainOptions(target=target, out_dir=tmp_path / "killed", progress=False,
                                              checkpoint_every=4), checkpoint)
    for key in ("stopped_epoch", "best_epoch", "best_value", "steps"):
        assert resumed[key] == summary[key], key
    best, reference = load_file(tmp_path / "killed" / BEST), load_file(whole / BEST)
    assert best.keys() == reference.keys()
    for key in best:
        np.testing.assert_array_equal(best[key], reference[key], err_msg=key)
    assert [r["epoch"] for r in _records(tmp_path / "killed")] == [r["epoch"] for r in records]
    with pytest.raises(dsl.UsageError, match=r"early stopping ended the run after epoch \d+ \(best epoch \d+\)"):
        check_resumable(read_checkpoint(tmp_path / "killed"), tmp_path / "killed")
