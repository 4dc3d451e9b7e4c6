"""Checks across the model, the loss and the data: located warnings at load, and the labels guard at data loading.

A softmax (or log_softmax, or sigmoid) before a loss that applies it itself is valid
but trains badly, so ``dsl.load`` warns at the layer; a dataset whose labels do not
fit the loss and the output is refused by ``load_dataset`` before anything compiles.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import backends.data
import dsl
from backends.data import load_dataset
from backends.data.sources import Source, Split, digits
from dsl.errors import Location, SpecWarning
from dsl.loader import warn_training
from dsl.schema import Spec

REPO = Path(__file__).resolve().parents[1]


def spec_text(layers: str, loss: str = "cross_entropy", dataset: str = "digits") -> str:
    return (f"name: checks\ninput: {{shape: [1, 8, 8]}}\nmodel:\n{layers}"
            f"data:\n  dataset: {dataset}\ntrain:\n  loss: {loss}\n  optimizer: adam\n")


def only_warning(text: str) -> SpecWarning:
    with pytest.warns(SpecWarning) as record:
        dsl.loads(text, "keras.yaml")
    assert len(record) == 1
    return record[0].message


def no_warnings(load) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load()
    assert [str(w.message) for w in record if issubclass(w.category, SpecWarning)] == []


def test_spec_warning_reads_as_one_compiler_line():
    assert str(SpecWarning("a\nb", Location("m.yaml", 3, 5))) == r"m.yaml:3:5: warning: a\nb"
    assert str(SpecWarning("no file")) == "warning: no file"
    assert issubclass(SpecWarning, UserWarning)


def test_softmax_before_cross_entropy_warns_at_the_layer():
    """The faithful Keras translation: softmax last, then a loss that expects logits."""
    warning = only_warning(spec_text("  - flatten\n  - linear: {out_features: 10}\n  - softmax: {dim: 1}\n"))
    assert (warning.location.file, warning.location.line, warning.location.col) == ("keras.yaml", 6, 5)
    assert str(warning).startswith("keras.yaml:6:5: warning: softmax_1 (softmax) feeds cross_entropy, which "
                                   "applies log_softmax itself")
    assert "trains far worse" in str(warning) and "apply softmax at prediction time" in str(warning)


def test_log_softmax_before_cross_entropy_warns_that_it_is_redundant():
    warning = only_warning(spec_text("  - flatten\n  - linear: {out_features: 10}\n  - log_softmax\n"))
    assert (warning.location.line, warning.location.col) == (6, 5)  # the bare op name
    assert "log_softmax_1 (log_softmax) feeds cross_entropy" in warning.message
    assert "idempotent" in warning.message and "remove it" in warning.message


def test_sigmoid_before_bce_with_logits_warns():
    layers = "  - flatten\n  - linear: {out_features: 1, name: head}\n  -   sigmoid\n"
    warning = only_warning(spec_text(layers, loss="bce_with_logits", dataset="synthetic"))
    assert (warning.location.line, warning.location.col) == (6, 7)  # the op name, however indented
    assert "sigmoid_1 (sigmoid) feeds bce_with_logits, which applies the sigmoid itself" in warning.message
    assert "remove this layer" in warning.message


def test_the_layer_is_found_through_flatten_dropout_and_identity():
    layers = ("  - flatten\n  - linear: {out_features: 10}\n  - softmax: {name: probs}\n"
              "  - dropout: {p: 0.1}\n  - identity\n  - flatten\n")
    warning = only_warning(spec_text(layers))
    assert (warning.location.line, warning.location.col) == (6, 5)
    assert warning.message.startswith("probs (softmax) feeds cross_entropy")


@pytest.mark.parametrize("layers, loss, dataset", [
    ("  - flatten\n  - linear: {out_features: 10}\n", "cross_entropy", "digits"),  # logits: right
    ("  - flatten\n  - softmax\n  - linear: {out_features: 10}\n", "cross_entropy", "digits"),  # not the last
    ("  - flatten\n  - linear: {out_features: 10}\n  - sigmoid\n", "mse", "synthetic"),  # mse takes values
    ("  - flatten\n  - linear: {out_features: 10}\n  - sigmoid\n", "cross_entropy", "digits"),
], ids=["logits", "softmax-inside", "sigmoid-mse", "sigmoid-cross-entropy"])
def test_no_warning_when_the_loss_gets_what_it_expects(layers, loss, dataset):
    no_warnings(lambda: dsl.loads(spec_text(layers, loss, dataset)))


def test_log_softmax_over_another_axis_is_not_called_redundant():
    """Only over the class axis does the loss's own log_softmax leave it unchanged."""
    text = ("name: checks\ninput: {shape: [4, 6]}\nmodel:\n  - linear: {out_features: 5}\n  - log_softmax\n"
            "data: {dataset: synthetic}\ntrain: {loss: cross_entropy, optimizer: adam}\n")
    no_warnings(lambda: dsl.loads(text))


def test_a_spec_built_in_code_warns_without_a_location():
    spec = Spec.model_validate({"name": "code", "input": {"shape": [8]},
                                "model": [{"linear": {"out_features": 3}}, "softmax"],
                                "train": {"loss": "cross_entropy", "optimizer": "sgd"}})
    with pytest.warns(SpecWarning) as record:
        warn_training(spec, dsl.build_graph(spec))
    assert record[0].message.location is None
    assert str(record[0].message).startswith("warning: softmax_1 (softmax) feeds cross_entropy")


@pytest.mark.parametrize("path", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_the_zoo_specs_load_without_warnings(path):
    no_warnings(lambda: dsl.load(path))


# --- the labels: declared (checked at validate) and yielded (checked when loaded) ---

def code_spec(loss: str, out_features: int = 10, dataset: str = "digits") -> tuple[Spec, dsl.Graph]:
    """A spec built in code and never validated across sections, as a library user might."""
    spec = Spec.model_validate({"name": "code", "input": {"shape": [1, 8, 8]},
                                "model": ["flatten", {"linear": {"out_features": out_features}}],
                                "data": {"dataset": dataset}, "train": {"loss": loss, "optimizer": "adam"}})
    return spec, dsl.build_graph(spec)


def test_a_dataset_override_is_checked_against_the_loss():
    """``--dataset digits`` on a spec whose mse fits its synthetic data."""
    spec, graph = dsl.loads(spec_text("  - flatten\n  - linear: {out_features: 10}\n", "mse", "synthetic"))
    with pytest.raises(dsl.SpecError, match=r"mse takes float targets .* dataset digits yields class ids") as info:
        load_dataset(spec, graph, name="digits")
    assert (info.value.location.line, info.value.location.col) == (9, 9)


def test_the_guard_refuses_class_ids_for_mse_when_validation_was_skipped(monkeypatch):
    monkeypatch.setattr(backends.data, "check_dataset", lambda *args: None)
    spec, graph = code_spec("mse")
    with pytest.raises(dsl.DataError) as info:
        load_dataset(spec, graph)
    assert str(info.value) == ("dataset digits (train) yields targets of dtype int64 and shape (1437,), but mse on "
                               "the output [N, 10] takes float values of shape (1437, 10)")


def lying_digits(y_of):
    """Digits whose labels are replaced by ``y_of(labels)``: a dataset that does not yield what it declares."""
    source = digits()
    return lambda: Source(*(Split({"image": s["image"], "label": y_of(s["label"])})
                            for s in (source.train, source.test)), 10)


@pytest.mark.parametrize("y_of, fragment", [
    (lambda y: y[:, None], r"dtype int64 and shape \(1437, 1\), but cross_entropy on the output \[N, 10\] takes "
                           r"integer class ids of shape \(1437,\)"),
    (lambda y: y.astype(np.float32), r"dtype float32 and shape \(1437,\)"),
    (lambda y: y + 1, r"class ids 1\.\.10, but the output \[N, 10\] has 10 classes, so ids must lie in 0\.\.9"),
], ids=["column", "float", "one-based"])
def test_the_guard_refuses_labels_that_differ_from_the_declaration(monkeypatch, y_of, fragment):
    monkeypatch.setattr(backends.data, "digits", lying_digits(y_of))
    spec, graph = dsl.load(REPO / "specs" / "digits_mlp.yaml")
    with pytest.raises(dsl.DataError, match=fragment) as info:
        load_dataset(spec, graph)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("loss, shape", [("mse", (64, 10)), ("bce_with_logits", (64, 10)), ("cross_entropy", (64,))])
def test_synthetic_targets_pass_the_guard(loss, shape):
    spec, graph = dsl.loads(spec_text("  - flatten\n  - linear: {out_features: 10}\n", loss, "synthetic")
                            + "  batch_size: 8\n")
    data = load_dataset(spec, graph, seed=0)
    assert data.test[graph.outputs[0][0]][:64].shape == shape
