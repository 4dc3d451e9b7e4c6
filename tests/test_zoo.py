"""The model zoo's training specs: ResNet-20 on glyphs, the autoencoder, the U-Net and the DCGAN.

Each trains on both targets to a measured level, with a margin, and the targets
agree (``dslc check`` for the zoo: tests/test_parity_check.py).
"""

import json

import pytest

import dsl
from backends.loop import TrainOptions, train
from tests.conftest import REPO

RESNET20 = "specs/resnet20_cifar.yaml"
UNET_ACCURACY, UNET_IOU = 0.95, 0.80  # measured after the spec's 5 epochs: 0.967 / 0.842 on both targets
DCGAN_EPOCHS = 15  # ~12 s a target; the grids then show blurred but readable digits, the same on both targets


def run(path: str, target: str, out, **options) -> list[dict]:
    spec, graph = dsl.load(REPO / path)
    train(spec, graph, TrainOptions(target=target, out_dir=out, progress=False, **options))
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "jax"])
def test_bert_tiny_hf_classifies_the_planted_tokens(tmp_path, target):
    """The spec as written: 1 epoch of 2048 planted-token sequences (64 AdamW steps at lr 1e-3, batch 32).
    Measured: test accuracy 1.000 on both targets (test loss torch 0.047, jax 0.034); 160 s (torch) and 103 s
    (jax, 30 s of it compiling) on a 2-core CPU shared with 3 other runs, 61 s and 40 s of CPU. Half the data
    (32 steps) reached only 0.88 (torch) and 0.53 (jax)."""
    last = run("specs/bert_tiny_hf.yaml", target, tmp_path / target)[-1]
    assert last["test_accuracy"] >= 0.95, last


@pytest.mark.slow
def test_resnet20_learns_the_glyphs_on_both_targets(tmp_path):
    """The spec as written (glyphs, the paper's augmentation, SGD lr 0.1, batch 128), 3 of its 5 epochs.

    Test accuracy by epoch, measured by this test: torch 0.272 0.672 0.974, jax 0.714 0.945 0.974 (train
    accuracy 0.944 and 0.975 after epoch 3; 5.4 minutes for both on an idle 2-core CPU). The spec's 5
    epochs with `dslc train`: torch 0.934, jax 0.997. Test accuracy swings at a constant lr 0.1
    (BatchNorm's running statistics lag the weights; the paper divides the lr by 10 later), so the best
    of epochs 2-3 is asserted. The targets' trajectories part within the first epoch (train loss 1.57 and
    1.67 after it): float32 rounding, amplified by SGD at lr 0.1 over 79 steps; ``dslc check`` shows
    the steps themselves agree.
    """
    records = {t: run(RESNET20, t, tmp_path / t, epochs=3) for t in ("torch", "jax")}
    for target, lines in records.items():
        assert max(r["test_accuracy"] for r in lines[1:]) >= 0.85, (target, lines)
        assert lines[-1]["train_accuracy"] >= 0.9, (target, lines)


def test_autoencoder_test_loss_falls_well_below_the_first_epochs_on_both_targets(tmp_path):
    """Test loss (mse) by epoch, measured identical to 4 digits on both targets:
    0.2176 0.1529 0.1163 0.0973 0.0907 0.0882 0.0848 0.0828 0.0820 0.0816 (final/first 0.375)."""
    records = {t: run("specs/autoencoder_digits.yaml", t, tmp_path / t) for t in ("torch", "jax")}
    for target, lines in records.items():
        assert lines[-1]["test_loss"] <= 0.5 * lines[0]["test_loss"], (target, lines)
        assert "test_accuracy" not in lines[-1]
    assert records["jax"][-1]["test_loss"] == pytest.approx(records["torch"][-1]["test_loss"], rel=1e-3)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_unet_segments_the_planted_shapes(tmp_path, target):
    """Per-pixel accuracy and foreground IoU on the shapes test split after 5 epochs (the spec's)."""
    last = run("specs/unet_small.yaml", target, tmp_path / target)[-1]
    assert last["test_accuracy"] >= UNET_ACCURACY and last["test_iou"] >= UNET_IOU, last


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_dcgan_digits_trains_to_the_end_and_samples_a_grid(tmp_path, target):
    """Finite losses every epoch on both targets, and a grid sampled from the trained generator."""
    import math

    from backends.sample import sample_grid
    from backends.weights import load_weights

    lines = run("specs/dcgan_digits.yaml", target, tmp_path / "run", epochs=DCGAN_EPOCHS)
    assert len(lines) == DCGAN_EPOCHS
    assert all(math.isfinite(line[k]) for line in lines for k in ("train_d_loss", "train_g_loss", "test_d_loss"))
    spec, graph = dsl.load(REPO / "specs/dcgan_digits.yaml")
    images = sample_grid(spec, graph, target, load_weights(tmp_path / "run" / "weights.safetensors", graph),
                         tmp_path / "grid.png", count=16, nrow=4)
    assert images.shape == (16, 1, 8, 8) and images.std() > 0.05  # not one flat colour
