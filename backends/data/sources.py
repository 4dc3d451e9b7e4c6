"""Where examples come from. Each source returns images scaled to [0, 1], channels first.

``digits`` is scikit-learn's bundled copy of the UCI 8×8 handwritten digits (1,797
images, offline). Pixels are integers 0..16 and are divided by 16. The split is fixed
(stratified 80/20 by class with seed 0), so every run and both targets see the same
test set whatever ``--seed`` is.

``mnist`` and ``fashion_mnist`` are read by torchvision from ``DATA_DIR/<Name>/raw``,
downloading them there when the network allows.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsl import DataError

DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (N, ...) and targets ``y``: int64 class ids or float values."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int | None) -> Split:
        return self if n is None else Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class Source:
    train: Split
    test: Split
    num_classes: int


def digits() -> Source:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=DIGITS_SPLIT_SEED)
    return Source(Split(x_train, y_train), Split(x_test, y_test), 10)


_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def torchvision_images(name: str, data_dir: str | Path) -> Source:
    """MNIST-format datasets through torchvision: downloaded into ``data_dir`` if missing."""
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    raw = Path(data_dir) / cls.__name__ / "raw"
    splits = []
    for train in (True, False):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # torchvision prints each download attempt
                dataset = cls(root=str(data_dir), train=train, download=True)
        except (RuntimeError, OSError) as err:
            files = ", ".join(Path(url).name.removesuffix(".gz") for url, _ in cls.resources)
            raise DataError(f"{name}: could not load or download it into {raw} ({_first_line(err)}); "
                            f"without network, put {files} (or their .gz) there") from None
        x = (dataset.data.numpy().astype(np.float32) / 255.0)[:, None, :, :]
        splits.append(Split(x, dataset.targets.numpy().astype(np.int64)))
    return Source(splits[0], splits[1], len(cls.classes))


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
