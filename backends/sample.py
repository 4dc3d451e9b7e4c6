"""``dslc sample``: a grid of images from a GAN's generator, written with torchvision's own code.

The noise is standard normal from ``--seed`` (numpy, so both targets draw the same
numbers); the generator runs in evaluation mode on the chosen target; its outputs are
mapped back through the inverse of the spec's ``data.normalize`` to [0, 1] pixels
(what the discriminator's real images were before the transform), clamped, and laid
out by ``torchvision.utils.make_grid`` and written by ``save_image``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsl import Graph, Spec
from dsl.errors import UsageError
from dsl.objectives import resolve_objective

from .data.transform import input_transform
from .predict import predict

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def check_grid_path(path: Path) -> None:
    """The grid's file must be an image name in an existing folder: refused before anything is computed."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"--out {path}: give an image file name ending in {', '.join(IMAGE_SUFFIXES)}")
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; give a file name such as {path / 'grid.png'}")
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: the folder {path.parent} does not exist; create it first")


def generator_of(spec: Spec, graph: Graph) -> tuple[str, tuple[int, ...]]:
    """The generator model's name and its noise shape; a one-line error for a spec that is not a GAN."""
    objective = resolve_objective(spec, graph) if spec.train else None
    if objective is None or objective.name != "gan":
        name = objective.name if objective else "none (no train section)"
        raise UsageError(f"dslc sample draws from a GAN's generator; this spec's objective is {name} "
                         f"(train.objective: gan)")
    generator = objective.roles["generator"]
    out = graph.submodel(generator).outputs[0][1]
    if graph.value_type(out).rank != 3 or graph.value_type(out).shape[0] not in (1, 3):
        raise UsageError(f"the generator outputs {graph.value_type(out)}; a grid needs images [N, 1 or 3, H, W]")
    return generator, objective.drawn[0][1].shape


def sample_grid(spec: Spec, graph: Graph, target: str, state, out: Path, *, count: int = 64, seed: int = 0,
                nrow: int = 8, device: str = "auto") -> np.ndarray:
    """Writes the grid to ``out``; returns the images in [0, 1], (count, C, H, W)."""
    import torch
    from torchvision.utils import make_grid, save_image

    check_grid_path(out)
    generator, noise_shape = generator_of(spec, graph)
    noise = np.random.default_rng(seed).standard_normal((count, *noise_shape)).astype(np.float32)
    images = predict(spec, graph, target, state, noise, model=generator, device=device)
    images = np.clip(input_transform(spec).unnormalize(images), 0.0, 1.0).astype(np.float32)
    save_image(make_grid(torch.from_numpy(images), nrow=nrow, padding=2), str(out))
    return images

