"""One backend-neutral data pipeline: numpy arrays in memory, batches by seeded index.

``load_dataset`` returns normalized arrays checked against the model; the training
driver hands index batches from ``batches`` to whichever target trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsl import DATASETS, LOSSES, Graph, Spec
from dsl.errors import DataError, SpecSchemaError
from dsl.loader import check_dataset
from dsl.names import unknown_name

from .batches import epoch_batches, eval_batches
from .sources import Split, digits, torchvision_images
from .synthetic import synthetic

DEFAULT_DATA_DIR = Path("data")


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    num_classes: int


def load_dataset(spec: Spec, graph: Graph, *, data_dir: str | Path = DEFAULT_DATA_DIR, name: str | None = None,
                 seed: int = 0) -> Dataset:
    """The spec's dataset (or ``name``), normalized as the spec says and checked against the model."""
    data = spec.data
    name = name or (data.dataset if data else None)
    if name is None:
        raise SpecSchemaError("spec has no data section; add data: {dataset: digits} or pass --dataset",
                              spec.source.locate(()))
    if name not in DATASETS:
        raise DataError(unknown_name("dataset", name))
    check_dataset(spec, graph, name)
    (input_name, input_type), = graph.inputs
    targets = LOSSES[spec.train.loss.name].targets if spec.train else "classes"
    if name == "synthetic":
        source = synthetic(input_type, graph.output_type, targets, seed,
                           data.train_size if data else None, data.test_size if data else None)
    else:
        source = digits() if name == "digits" else torchvision_images(name, data_dir)
    if source.train.x.shape[1:] != input_type.shape:
        raise RuntimeError(f"dataset {name} yielded {source.train.x.shape[1:]}, not its declared shape")
    train, test = source.train, source.test
    if data and name != "synthetic":
        train, test = train.head(data.train_size), test.head(data.test_size)
    if data and data.normalize:
        train, test = (_normalize(s, data.normalize) for s in (train, test))
    return Dataset(name, train, test, source.num_classes)


def _normalize(split: Split, normalize) -> Split:
    """Per-channel (x - mean) / std; the lengths were checked against the input by ``check_dataset``."""
    mean, std = (np.asarray(v, np.float32) for v in (normalize.mean, normalize.std))
    shape = (1, -1) + (1,) * (split.x.ndim - 2)
    return Split(((split.x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32), split.y)


__all__ = ["Dataset", "Split", "load_dataset", "epoch_batches", "eval_batches", "DEFAULT_DATA_DIR"]
