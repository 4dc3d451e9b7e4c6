"""``image_folder``: torchvision's ImageFolder layout, decoded once into uint8 arrays and cached as ``.npy``.

Files are listed by torchvision (``find_classes``, ``make_dataset``), so class ids
are the sorted class folder names, as ``ImageFolder`` numbers them. Each image is
decoded by PIL, converted to ``L`` (an input with one channel) or ``RGB`` (three)
and resized to the input's height and width with PIL's bilinear filter (what
torchvision's ``Resize`` does to a PIL image; images already that size are not
resampled). Decoding is the slow part (Python per file), so each split is decoded
once and cached under ``DATA_DIR/image_folder/`` by a sha256 of its file list, sizes,
modification times and the decoded shape: a second run reads two ``.npy`` files, and
an added, removed or edited image changes the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from dsl import DataError

from .sources import Source, Split, images_split

EXTENSIONS = (".png", ".jpg", ".jpeg")
CACHE_FOLDER = "image_folder"
CACHE_VERSION = 1  # part of the key: bump when decoding changes


def image_folder(path: str | Path, shape: tuple[int, int, int], data_dir: str | Path,
                 validation: str | None = None) -> Source:
    """``path/train/<class>/*`` and ``path/test/<class>/*`` (and ``path/<validation>/<class>/*``) as (N, C, H, W)
    uint8 images of ``shape`` and class ids."""
    root = Path(path)
    classes = _classes(root / "train")
    for split in ("test",) + ((validation,) if validation else ()):
        held_classes = _classes(root / split)
        if held_classes != classes:
            raise DataError(f"dataset image_folder: {root / split} has class folders {', '.join(held_classes)} but "
                            f"{root / 'train'} has {', '.join(classes)}; every split needs the same classes")
    cache = Path(data_dir) / CACHE_FOLDER
    train, test = (_split(root / split, classes, shape, cache) for split in ("train", "test"))
    val = _split(root / validation, classes, shape, cache) if validation else None
    return Source(train, test, len(classes), val=val)


def _classes(folder: Path) -> list[str]:
    from torchvision.datasets.folder import find_classes

    if not folder.is_dir():
        raise DataError(f"dataset image_folder: {folder} is not a folder; put one folder of images per class "
                        f"there ({folder}/<class>/*.png)")
    try:
        return find_classes(str(folder))[0]
    except FileNotFoundError:
        raise DataError(f"dataset image_folder: {folder} has no class folders; put one folder of images per "
                        f"class there ({folder}/<class>/*.png)") from None


def _split(folder: Path, classes: list[str], shape: tuple[int, int, int], cache: Path) -> Split:
    """One split's images and labels, from the cache when its key matches, else decoded and cached."""
    from torchvision.datasets.folder import make_dataset

    try:
        samples = make_dataset(str(folder), {c: i for i, c in enumerate(classes)}, extensions=EXTENSIONS)
    except FileNotFoundError as err:  # a class folder without images
        raise DataError(f"dataset image_folder: {folder}: {str(err).splitlines()[0]}") from None
    key = cache_key(folder, samples, shape)
    files = {kind: cache / f"{key}-{folder.name}-{kind}.npy" for kind in ("image", "label")}
    if all(f.is_file() for f in files.values()):
        return images_split(np.load(files["image"]), np.load(files["label"]))
    split = images_split(np.stack([decode(Path(file), shape) for file, _ in samples]),
                   np.asarray([label for _, label in samples], np.int64))
    cache.mkdir(parents=True, exist_ok=True)
    for kind, file in files.items():
        _save_atomic(file, split[kind])
    return split


def cache_key(folder: Path, samples: list[tuple[str, int]], shape: tuple[int, int, int]) -> str:
    """sha256 (first 20 hex digits) of each file's path under ``folder``, class, size and mtime, and ``shape``."""
    listing = []
    for file, label in samples:
        stat = os.stat(file)
        listing.append([os.path.relpath(file, folder), label, stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"version": CACHE_VERSION, "shape": list(shape), "files": listing})
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def decode(file: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image as (C, H, W) uint8: ``L`` or ``RGB`` by C, resized bilinearly to (H, W)."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    try:
        with Image.open(file) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"dataset image_folder: {file} is not an image PIL can read ({err})") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _save_atomic(file: Path, array: np.ndarray) -> None:
    """Writes beside ``file`` and renames, so an interrupted run never leaves a half-written cache."""
    partial = file.with_name(file.name + ".partial")
    with open(partial, "wb") as f:
        np.save(f, array)
    os.replace(partial, file)
