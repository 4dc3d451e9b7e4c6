"""``dslc sample``: a GAN generator's images as a grid, the same on both targets."""

from __future__ import annotations

import numpy as np
from PIL import Image

import cli
import dsl
from backends.sample import sample_grid
from backends.weights import init_weights, save_weights
from tests.conftest import REPO

SPEC = REPO / "specs" / "gan_digits.yaml"


def test_both_targets_draw_the_same_grid_and_pixels_invert_the_normalize(tmp_path):
    spec, graph = dsl.load(SPEC)
    state = init_weights(graph, 3)
    images = {t: sample_grid(spec, graph, t, state, tmp_path / f"{t}.png", count=16, nrow=4) for t in ("torch", "jax")}
    np.testing.assert_allclose(images["jax"], images["torch"], atol=1e-6)
    assert images["torch"].shape == (16, 1, 8, 8) and 0.0 <= images["torch"].min() <= images["torch"].max() <= 1.0
    # the generator ends in tanh: values in (-1, 1), mapped by normalize's inverse (x * 0.5 + 0.5) into (0, 1)
    assert images["torch"].min() > 0.0 and images["torch"].max() < 1.0
    grid = np.asarray(Image.open(tmp_path / "torch.png"))
    assert grid.shape[:2] == (4 * (8 + 2) + 2, 4 * (8 + 2) + 2)  # make_grid: 2-pixel padding around each image


def test_the_cli_writes_a_grid_and_refuses_a_spec_that_is_not_a_gan(tmp_path, capsys):
    spec, graph = dsl.load(SPEC)
    save_weights(tmp_path / "w.safetensors", init_weights(graph, 0))
    assert cli.main(["sample", str(SPEC), "--weights", str(tmp_path / "w.safetensors"), "--out",
                     str(tmp_path / "grid.png"), "--count", "9", "--nrow", "3"]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "grid.png").stat().st_size > 0
    assert cli.main(["sample", str(REPO / "specs" / "digits_cnn.yaml"), "--weights", "w", "--out",
                     str(tmp_path / "g.png")]) == 2
    assert "dslc sample draws from a GAN's generator; this spec's objective is supervised" in capsys.readouterr().err
