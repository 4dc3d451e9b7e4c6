"""Where examples come from. Each source returns examples as stored, channels first.

Scaling to [0, 1] is not done here but by the one input transform
(``transform.py``, from ``DatasetDef.scale``), which ``dslc predict`` applies too.

``digits`` is scikit-learn's bundled copy of the UCI 8×8 handwritten digits (1,797
images, offline), pixels 0..16 exactly as ``sklearn.datasets.load_digits`` gives
them. The split is fixed (stratified 80/20 by class with seed 0), so every run and
both targets see the same test set whatever ``--seed`` is.

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
    x = bunch.images[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=DIGITS_SPLIT_SEED)
    return Source(Split(x_train, y_train), Split(x_test, y_test), 10)


_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def torchvision_images(name: str, data_dir: str | Path) -> Source:
    """MNIST-format datasets through torchvision (uint8 pixels): downloaded into ``data_dir`` if missing.

    A failed download removes the folders it created, so an offline first run leaves
    nothing behind but the message saying where to put the files.
    """
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    raw = Path(data_dir) / cls.__name__ / "raw"
    created = [p for p in (Path(data_dir), raw.parent, raw) if not p.exists()]
    splits = []
    for train in (True, False):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # torchvision prints each download attempt
                dataset = cls(root=str(data_dir), train=train, download=True)
        except (RuntimeError, OSError):
            _remove_empty(created)
            raise DataError(_missing_message(name, cls, raw)) from None
        splits.append(Split(dataset.data.numpy()[:, None, :, :], dataset.targets.numpy().astype(np.int64)))
    return Source(splits[0], splits[1], len(cls.classes))


def _missing_message(name: str, cls, raw: Path) -> str:
    files = ", ".join(Path(url).name.removesuffix(".gz") for url, _ in cls.resources)
    return (f"{name} is not in {raw} and could not be downloaded (no network?); put {files} "
            f"(or their .gz) there; for an offline start, train a digits spec (specs/digits_cnn.yaml)")


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):  # not empty (a partial download): keep it
            folder.rmdir()
