"""The objectives and the proving specs: named inputs of two dtypes, two weighted outputs, two models in a GAN.

Each spec trains on both targets from the same seed; the metric must rise and the
two targets' metrics agree (they run the same batches, the same noise, the same
steps). The GAN is judged by what it generates: the first two moments of its
samples per pixel against the real digits', before and after training.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import dsl
from backends.loop import TrainOptions, train
from backends.parity import check
from backends.target import make_target
from backends.weights import init_weights, load_weights
from dsl.objectives import resolve_objective
from dsl.schema import ChoiceSpec
from dsl.training import CrossEntropyParams
from tests.conftest import REPO


def run(path: str, target: str, out, **options) -> list[dict]:
    spec, graph = dsl.load(REPO / path)
    train(spec, graph, TrainOptions(target=target, out_dir=out, progress=False, **options))
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("path, metric, floor", [
    ("specs/two_tower.yaml", "test_accuracy", 0.95),
    ("specs/multi_head.yaml", "test_label_accuracy", 0.93),
])
def test_named_input_and_output_specs_learn_alike_on_both_targets(tmp_path, path, metric, floor):
    records = {t: run(path, t, tmp_path / t, epochs=4) for t in ("torch", "jax")}
    for target, lines in records.items():
        assert lines[-1][metric] >= floor, (target, lines[-1])
        assert lines[-1]["test_loss"] < 0.5 * lines[0]["train_loss"], (target, lines)
    for key, value in records["torch"][-1].items():
        if key.startswith(("train_", "test_")) and key != "train_samples_per_sec":
            assert records["jax"][-1][key] == pytest.approx(value, rel=1e-3, abs=1e-4), key


def test_multi_head_reports_each_output_and_the_weighted_sum(tmp_path):
    last = run("specs/multi_head.yaml", "jax", tmp_path / "r", epochs=1)[-1]
    assert {"test_loss", "test_label_loss", "test_value_loss", "test_label_accuracy"} <= last.keys()
    assert "test_value_accuracy" not in last and "test_accuracy" not in last  # metrics only where asked
    assert last["test_loss"] == pytest.approx(last["test_label_loss"] + 0.5 * last["test_value_loss"], rel=1e-5)


def generated_moments_gap(path, weights, seed=0) -> float:
    """How far the generator's samples are from the real test digits: per-pixel mean and std, L2 over pixels."""
    from backends.data import load_dataset

    spec, graph = dsl.load(REPO / path)
    real = load_dataset(spec, graph).test["discriminator.input"]
    target = make_target("jax", graph, None)
    target.load_state(weights)
    z = np.random.default_rng(seed).standard_normal((len(real), 16)).astype(np.float32)
    fake, _ = target.forward((z, real))
    fake = fake["generator.image"]
    return float(np.linalg.norm(fake.mean(0) - real.mean(0)) + np.linalg.norm(fake.std(0) - real.std(0)))


@pytest.mark.parametrize("target", [pytest.param("torch", marks=pytest.mark.slow), "jax"])
def test_gan_generates_digit_like_images_on_both_targets(tmp_path, target):
    """40 epochs of the digits GAN. torch's run (35-68 s here) is under ``-m slow``: CI trains a torch GAN to the
    end through tests/test_zoo.py's dcgan_digits, and checks both GAN phases on both targets below."""
    path = "specs/gan_digits.yaml"
    spec, graph = dsl.load(REPO / path)
    lines = run(path, target, tmp_path / "r", epochs=40)
    assert {"train_d_loss", "train_g_loss", "test_d_loss", "test_g_loss"} <= lines[-1].keys()
    before = generated_moments_gap(path, init_weights(graph, 0))
    after = generated_moments_gap(path, load_weights(tmp_path / "r" / "weights.safetensors", graph))
    assert after < 0.35 * before, (before, after)  # measured on JAX: 8.6 -> 4.4 after 20 epochs, 2.3 after 40
    saved = load_weights(tmp_path / "r" / "weights.safetensors", graph)
    assert {k.split(".")[0] for k in saved} == {"generator", "discriminator"}


GAN_WITH_BATCH_NORM = """
name: gan_bn
models:
  generator:
    inputs: {z: {shape: [8]}}
    model:
      - linear: {out_features: 32, bias: false}
      - batch_norm1d: {name: bn}
      - relu
      - linear: {out_features: 12}
      - tanh
      - unflatten: {unflattened_size: [3, 4]}
  discriminator:
    input: {shape: [3, 4]}
    model:
      - flatten
      - linear: {out_features: 16, bias: false}   # a bias before BatchNorm has zero gradient: float noise
      - batch_norm1d: {momentum: null}
      - leaky_relu: {negative_slope: 0.2}
      - dropout: {p: 0.3}
      - linear: {out_features: 1}
train:
  objective: gan
  optimizer: {generator: {adam: {lr: 0.01, betas: [0.5, 0.999]}}, discriminator: {sgd: {lr: 0.05, momentum: 0.9}}}
  batch_size: 8
"""


@pytest.mark.slow  # float32 17 s, float64 27 s; CI checks a GAN with BatchNorm through dcgan_digits's dslc check
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_both_gan_phases_agree_with_batch_norm_in_both_models(dtype):
    """The discriminator runs three times a batch (real, generated, then in the generator step) and the
    generator's statistics move once: buffers after K steps must match torch's, per phase gradients too."""
    spec, graph = dsl.loads(GAN_WITH_BATCH_NORM)
    report = check(spec, graph, dtype=dtype, steps=6)
    failed = report.failures
    assert not failed, failed
    quantities = [r.quantity for r in report.rows]
    assert any(q.startswith("phase 1 (discriminator) grad discriminator.") for q in quantities)
    assert any(q.startswith("phase 2 (generator) grad generator.") for q in quantities)
    assert "step 6 discriminator.batch_norm1d_1.num_batches_tracked" in quantities
    assert any(q.startswith("step 6 g_loss") for q in quantities)


def test_gan_optimizer_state_moves_between_targets_mid_training():
    """Two optimizers (Adam and SGD with momentum), exported from torch after 3 steps, continue on JAX
    exactly as torch continues (float64)."""
    spec, graph = dsl.loads(GAN_WITH_BATCH_NORM.replace("dropout: {p: 0.3}", "dropout: {p: 0.0}"))
    objective = resolve_objective(spec, graph)
    made = {n: make_target(n, graph, spec.train, dtype="float64", objective=objective, full_precision=True)
            for n in ("torch", "jax")}
    rng = np.random.default_rng(0)
    columns = {"discriminator.input": rng.standard_normal((48, 3, 4)), "generator.z": rng.standard_normal((48, 8))}
    batches = list(np.arange(48, dtype=np.int32).reshape(6, 8))
    made["torch"].load_state(init_weights(graph, 0, "float64"))
    data = {n: t.put(columns) for n, t in made.items()}
    made["torch"].train_steps(data["torch"], batches[:3])
    made["jax"].load_state(made["torch"].export_state())
    made["jax"].load_optimizer_state(made["torch"].export_optimizer_state())
    assert made["jax"].export_optimizer_state().keys() == made["torch"].export_optimizer_state().keys()
    sums = {n: t.train_steps(data[n], batches[3:]) for n, t in made.items()}
    assert float(sums["jax"]["g_loss"]) == pytest.approx(float(sums["torch"]["g_loss"]), rel=1e-9)
    final = {n: t.export_state() for n, t in made.items()}
    for key, value in final["torch"].items():
        np.testing.assert_allclose(final["jax"][key], value, rtol=1e-8, atol=1e-10, err_msg=key)


AUTOENCODER = """
name: autoencoder
input: {shape: [1, 8, 8]}
model:
  - flatten
  - linear: {out_features: 16}
  - relu
  - linear: {out_features: 64}
  - unflatten: {unflattened_size: [1, 8, 8]}
data: {dataset: digits, normalize: {mean: [0.5], std: [0.5]}}
train:
  objective: reconstruction
  loss: mse
  optimizer: {adam: {lr: 0.003}}
  epochs: 5
"""


def test_reconstruction_learns_to_copy_its_input_on_both_targets(tmp_path):
    spec, graph = dsl.loads(AUTOENCODER)
    results = {}
    for target in ("torch", "jax"):
        train(spec, graph, TrainOptions(target=target, out_dir=tmp_path / target, progress=False))
        lines = [json.loads(x) for x in (tmp_path / target / "metrics.jsonl").read_text().splitlines()]
        assert lines[-1]["test_loss"] < 0.4 * lines[0]["train_loss"], lines
        assert set(lines[-1]) >= {"train_loss", "test_loss"} and "test_accuracy" not in lines[-1]
        results[target] = lines[-1]["test_loss"]
    assert results["jax"] == pytest.approx(results["torch"], rel=1e-3)


def test_iou_is_each_examples_foreground_intersection_over_union_on_both_targets():
    """Hand-counted: example 0 predicts 2 foreground pixels of which 1 is true, with 2 true (IoU 1/3); example 1
    predicts and holds none (1 by definition); example 2 is all background predicted foreground (IoU 0)."""
    import jax.numpy as jnp
    import torch

    from backends.jax.training import JAX_METRICS
    from backends.torch.training import TORCH_METRICS

    labels = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]], [[0, 0, 0, 0]]])  # [N, H=1, W=4] class ids
    predicted = np.array([[[1, 0, 1, 0]], [[0, 0, 0, 0]], [[2, 1, 1, 1]]])
    logits = np.eye(3)[predicted].transpose(0, 3, 1, 2)  # [N, C=3, 1, 4]: argmax = predicted
    expected = np.array([1 / 3, 1.0, 0.0])
    loss = ChoiceSpec("cross_entropy", CrossEntropyParams())
    got_t = TORCH_METRICS["iou"](loss, torch.from_numpy(logits), torch.from_numpy(labels))
    got_j = JAX_METRICS["iou"](loss, jnp.asarray(logits), jnp.asarray(labels))
    assert float(got_t) == pytest.approx(expected.sum(), abs=1e-12)
    np.testing.assert_allclose(np.asarray(got_j), expected, atol=1e-6)
