"""Where examples come from. Each source returns examples as stored, channels first.

Scaling to [0, 1] is not done here but by the one input transform
(``transform.py``, from ``DatasetDef.scale``), which ``dslc predict`` applies too.

``digits`` is scikit-learn's bundled copy of the UCI 8×8 handwritten digits (1,797
images, offline), pixels 0..16 exactly as ``sklearn.datasets.load_digits`` gives
them. The split is fixed (stratified 80/20 by class with seed 0), so every run and
both targets see the same test set whatever ``--seed`` is.

``mnist`` and ``fashion_mnist`` are read by torchvision from ``DATA_DIR/<Name>/raw``,
and ``cifar10`` from ``DATA_DIR/cifar-10-batches-py`` (torchvision's pickled batches,
md5-checked by torchvision), downloading them there when the network allows.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dsl import DataError

DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class Split:
    """Named columns of equal length: a batch's arrays for every example (``dsl/objectives.py``).

    A source's splits name theirs ``image`` and ``label``; ``load_dataset`` renames them
    to what they feed (the model input, the output whose target they are).
    """

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def head(self, n: int | None) -> Split:
        return self if n is None else Split({k: v[:n] for k, v in self.columns.items()})


@dataclass(frozen=True)
class Source:
    train: Split
    test: Split
    num_classes: int | None
    files: Mapping[str, bytes] = field(default_factory=dict)  # kept next to the run's weights (vocab.json)
    val: Split | None = None  # a validation split the files hold (image_folder's data.path/val/)


def digits() -> Source:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=DIGITS_SPLIT_SEED)
    return Source(images_split(x_train, y_train), images_split(x_test, y_test), 10)


def images_split(x: np.ndarray, y: np.ndarray) -> Split:
    """An image dataset's split: ``image`` (N, C, H, W) as stored, ``label`` int64 class ids."""
    return Split({"image": x, "label": y})


def column_files(inputs: tuple[str, ...], targets: tuple[str, ...], present) -> dict[str, str]:
    """Batch column name -> the name the user's files give it (npy: a file stem; npz: a key before ``_train``).

    A column is named as the model names it (its input, or its output for a target);
    ``x`` and ``y`` stand for the one input and the one target where a model has one of
    each and the file holds no column by the model's name (``present(name)`` says).
    """
    names = {n: n for n in inputs + targets}
    for group, alias in ((inputs, "x"), (targets, "y")):
        if len(group) == 1 and not present(group[0]):
            names[group[0]] = alias
    return names


def npy_folder(path: str | Path, split: str, names: dict[str, str], stream: bool) -> dict[str, np.ndarray]:
    """The columns of ``path/<split>/<file>.npy`` by batch name (``names``: batch name -> file stem).

    With ``stream`` the arrays are memory-mapped (``np.load(mmap_mode='r')``): rows are
    read from disk as batches gather them, so a split need not fit in memory.
    """
    folder = Path(path) / split
    columns = {}
    for name, stem in names.items():
        file = folder / f"{stem}.npy"
        if not file.is_file():
            other = f" (or {name}.npy)" if stem != name else ""
            raise DataError(f"dataset npy: {file} is missing{other}; put one .npy per column in {folder}: "
                            f"{', '.join(f'{s}.npy' for s in names.values())}")
        try:
            columns[name] = np.load(file, mmap_mode="r" if stream else None, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(f"dataset npy: {file} is not a numpy .npy array file ({err})") from None
    same_lengths(columns, {n: f"{s}.npy" for n, s in names.items()}, f"dataset npy: the {split} files hold")
    return columns


def npz_keys(path: str | Path) -> list[str]:
    """The names of the arrays an ``.npz`` file holds."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return list(archive.files)
    except (ValueError, OSError, AttributeError) as err:  # AttributeError: an .npy, which has no .files
        raise DataError(f"dataset npz: {path} is not a numpy .npz file of arrays ({err})") from None


def npz_columns(path: str | Path, split: str, names: dict[str, str]) -> dict[str, np.ndarray]:
    """The ``<name>_<split>`` arrays of an ``.npz`` file by batch name (``names``: batch name -> key stem)."""
    held = npz_keys(path)
    columns = {}
    with np.load(path, allow_pickle=False) as archive:
        for name, stem in names.items():
            key = f"{stem}_{split}"
            if key not in held:
                other = f" (or {name}_{split})" if stem != name else ""
                raise DataError(f"dataset npz: {path} has no array {key}{other}; it holds {', '.join(held) or 'none'}")
            try:
                columns[name] = archive[key]
            except ValueError as err:  # an object array, which allow_pickle=False refuses
                raise DataError(f"dataset npz: {path}: {key} is not a plain numeric array ({err})") from None
    same_lengths(columns, {n: f"{s}_{split}" for n, s in names.items()}, f"dataset npz: {path} holds")
    return columns


def same_lengths(columns: dict[str, np.ndarray], labels: dict[str, str], what: str) -> None:
    """Raises a one-line ``DataError`` unless every column holds as many examples (rows)."""
    lengths = {name: len(c) if c.ndim else 0 for name, c in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{labels[n]} {k:,}" for n, k in lengths.items())
        raise DataError(f"{what} different numbers of examples ({listed}); each row is one example, so they must "
                        "agree")


_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def torchvision_images(name: str, data_dir: str | Path) -> Source:
    """MNIST-format datasets and CIFAR-10 through torchvision (uint8 pixels, made channels first):
    downloaded into ``data_dir`` if missing.

    A failed download removes the folders it created, so an offline first run leaves
    nothing behind but the message saying where to put the files.
    """
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    top = Path(data_dir)
    folder = _folder(cls, top)
    created = [p for p in reversed([folder, *folder.parents]) if (p == top or top in p.parents) and not p.exists()]
    splits = []
    for train in (True, False):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # torchvision prints each download attempt
                dataset = cls(root=str(data_dir), train=train, download=True)
        except (RuntimeError, OSError):
            _remove_empty(created)
            raise DataError(_missing_message(name, cls, folder)) from None
        splits.append(images_split(_channels_first(np.asarray(dataset.data)), np.asarray(dataset.targets, np.int64)))
    return Source(splits[0], splits[1], len(dataset.classes))


def _folder(cls, data_dir: Path) -> Path:
    """Where torchvision keeps the dataset's files: ``MNIST/raw``, ``cifar-10-batches-py``."""
    return data_dir / cls.base_folder if hasattr(cls, "base_folder") else data_dir / cls.__name__ / "raw"


def _channels_first(x: np.ndarray) -> np.ndarray:
    """torchvision's ``data``: MNIST's (N, H, W) gets a channel axis; CIFAR's (N, H, W, C) becomes (N, C, H, W)."""
    return x[:, None, :, :] if x.ndim == 3 else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _missing_message(name: str, cls, folder: Path) -> str:
    if hasattr(cls, "filename"):  # CIFAR: one archive, unpacked into its folder
        where = f"put {cls.filename} in {folder.parent} (it is unpacked there)"
    else:
        files = ", ".join(Path(url).name.removesuffix(".gz") for url, _ in cls.resources)
        where = f"put {files} (or their .gz) there"
    return (f"{name} is not in {folder} and could not be downloaded (no network?); {where}; "
            f"for an offline start, train a digits spec (specs/digits_cnn.yaml)")


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):  # not empty (a partial download): keep it
            folder.rmdir()


SHAPES_SIZE, SHAPES_SPLIT = 16, (2048, 512)


def planted_shapes(seed: int = 0) -> Source:
    """``shapes``: noise images with 1-3 planted rectangles and their per-pixel masks, from ``seed``.

    Each rectangle is 3-8 pixels a side, anywhere in the 16x16 image, brighter than the
    background by 1.5 (the noise is standard normal), so the mask is learnable from local
    contrast and shape, the task a U-Net's skip connections are for. The images are
    stored as used (no scaling); ``label`` holds class ids per pixel, [N, 16, 16].
    """
    rng = np.random.default_rng([seed, 0x5A4E5])
    count, size = sum(SHAPES_SPLIT), SHAPES_SIZE
    images = rng.standard_normal((count, 1, size, size)).astype(np.float32)
    masks = np.zeros((count, size, size), np.int64)
    for i in range(count):
        for _ in range(rng.integers(1, 4)):
            h, w = rng.integers(3, 9, 2)
            top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            masks[i, top:top + h, left:left + w] = 1
    images[:, 0] += 1.5 * masks
    n = SHAPES_SPLIT[0]
    return Source(images_split(images[:n], masks[:n]), images_split(images[n:], masks[n:]), 2)
