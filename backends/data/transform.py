"""The input transform: what happens to a stored example before the model sees it.

Written once and used by training (``load_dataset``) and by ``dslc predict``, so raw
images given to ``predict`` reach the model exactly as the training data did. Before
this, ``predict`` skipped ``normalize``: raw digits gave other logits than training
saw, silently (accuracy on a sample fell from 0.875 to 0.75).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsl import DATASETS, Spec


@dataclass(frozen=True)
class InputTransform:
    """``x / scale`` (the dataset's stored range to [0, 1]), then per-channel ``(x - mean) / std``.

    ``scale`` is None where the data is stored as used (synthetic, or a spec without a
    dataset); ``mean`` and ``std`` are None without ``data.normalize``.
    """

    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def is_identity(self) -> bool:
        return self.scale is None and self.mean is None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.scale is not None:
            x = x / np.float32(self.scale)
        if self.mean is not None:
            mean, std = self._per_channel(x, np.float32)
            x = (x - mean) / std
        return x.astype(np.float32, copy=False)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        """The inverse of ``normalize`` (float64): model-space values back to the [0, 1] range it was applied to
        (a GAN's generated images, for ``dslc sample``)."""
        x = np.asarray(x, np.float64)
        if self.mean is None:
            return x
        mean, std = self._per_channel(x, np.float64)
        return x * std + mean

    def _per_channel(self, x: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
        """``mean`` and ``std`` shaped to broadcast over channels-first examples (N, C, ...)."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return tuple(np.asarray(v, dtype).reshape(shape) for v in (self.mean, self.std))

    def describe(self, dataset: str | None) -> str:
        """``'/ 16 (digits' stored range), then (x - [0.5]) / [0.5]'``, for messages and ``--help``."""
        steps = [f"/ {self.scale:g} ({dataset}'s stored range)"] if self.scale is not None else []
        if self.mean is not None:
            steps.append(f"(x - {list(self.mean)}) / {list(self.std)}")
        return ", then ".join(steps) or "none"


def input_transform(spec: Spec, dataset: str | None = None) -> InputTransform:
    """The transform training applies for this spec (and ``--dataset`` override, if any)."""
    name = dataset or (spec.data.dataset if spec.data else None)
    scale = DATASETS[name].scale if name in DATASETS else None
    normalize = spec.data.normalize if spec.data else None
    if normalize is None:
        return InputTransform(scale)
    return InputTransform(scale, tuple(normalize.mean), tuple(normalize.std))
