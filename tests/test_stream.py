"""Streamed data: the npy dataset memory-mapped (``data.stream: true``) trains as the in-memory path does.

Both read the user's ``.npy`` files; streaming gathers each batch on the host from
memory-mapped arrays (a thread reads ahead) and puts it on the device, where the
in-memory path gathers on the device from the whole split. Same seed, same batches,
so the same weights: bit for bit on torch, to float32 rounding on JAX (whose
compiled step gathers inside the computation in one case and not in the other).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import dsl
from backends.data import Stream, load_dataset
from backends.data.sources import digits
from backends.loop import TrainOptions, train
from backends.weights import load_weights
from tests.conftest import REPO


def write_digits(folder, x_name="x", y_name="y") -> None:
    source = digits()
    for split, part in (("train", source.train), ("test", source.test)):
        (folder / split).mkdir(parents=True)
        np.save(folder / split / f"{x_name}.npy", (part["image"] / 16).astype(np.float32))
        np.save(folder / split / f"{y_name}.npy", part["label"])


def npy_spec(folder, stream: bool, spec="specs/digits_mlp.yaml"):
    text = (REPO / spec).read_text().replace(
        "  dataset: digits", f"  dataset: npy\n  path: {folder}\n  stream: {str(stream).lower()}")
    return dsl.loads(text)


def test_a_streamed_split_is_memory_mapped_and_gathers_like_an_array(tmp_path):
    write_digits(tmp_path / "d")
    spec, graph = npy_spec(tmp_path / "d", True)
    data = load_dataset(spec, graph)
    assert isinstance(data.train, Stream) and isinstance(data.train["input"], np.memmap)
    index = np.random.default_rng(0).permutation(len(data.train))[:50].astype(np.int32)
    batch = data.train.gather(index)
    expected = ((digits().train["image"][index] / 16).astype(np.float32) - 0.5) / 0.5  # normalize 0.5, 0.5
    np.testing.assert_array_equal(batch["input"], expected)
    np.testing.assert_array_equal(batch["fc2"], digits().train["label"][index])
    batches = [index[:20], index[20:45], index[45:]]
    for got, rows in zip(data.train.iterate(batches), batches, strict=True):
        np.testing.assert_array_equal(got["fc2"], digits().train["label"][rows])


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_streamed_training_ends_with_the_in_memory_weights(tmp_path, target):
    write_digits(tmp_path / "d")
    weights, metrics = {}, {}
    for stream in (False, True):
        spec, graph = npy_spec(tmp_path / "d", stream)
        out = tmp_path / f"run-{stream}"
        train(spec, graph, TrainOptions(target=target, out_dir=out, progress=False, epochs=2))
        weights[stream] = load_weights(out / "weights.safetensors", graph)
        metrics[stream] = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics[True]["test_accuracy"] > 0.8
    for key, value in weights[False].items():
        if target == "torch":
            np.testing.assert_array_equal(weights[True][key], value, err_msg=key)
        else:
            np.testing.assert_allclose(weights[True][key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    assert metrics[True]["test_loss"] == pytest.approx(metrics[False]["test_loss"], rel=1e-5)


def test_columns_may_be_named_by_the_model(tmp_path):
    """``input.npy``/``fc2.npy`` (the model's input and output names) work as well as ``x.npy``/``y.npy``."""
    write_digits(tmp_path / "d", "input", "fc2")
    spec, graph = npy_spec(tmp_path / "d", False)
    data = load_dataset(spec, graph)
    assert set(data.train.columns) == {"input", "fc2"} and len(data.test) == 360


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "test" / "y.npy").unlink(), r"test/y\.npy is missing \(or fc2\.npy\); put one \.npy per column"),
    (lambda d: np.save(d / "train" / "y.npy", np.zeros(5, np.int64)),
     r"the train files hold different numbers of examples \(x\.npy 1,437, y\.npy 5\)"),
    (lambda d: np.save(d / "train" / "x.npy", np.zeros((1437, 64), np.float32)),
     r"x\.npy holds float32 examples of shape \[64\], but input input takes float32 of shape \[1, 8, 8\]"),
    (lambda d: (d / "train" / "x.npy").write_text("not an array"), r"x\.npy is not a numpy \.npy array file"),
], ids=["missing", "lengths", "shape", "garbage"])
def test_bad_npy_folders_are_one_line_errors(tmp_path, damage, message):
    write_digits(tmp_path / "d")
    damage(tmp_path / "d")
    spec, graph = npy_spec(tmp_path / "d", True)
    with pytest.raises(dsl.DataError, match=message) as info:
        load_dataset(spec, graph)
    assert "\n" not in str(info.value)
