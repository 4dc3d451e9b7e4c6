"""One backend-neutral data pipeline: numpy arrays in memory, batches by seeded index.

``load_dataset`` returns normalized arrays checked against the model; the training
driver hands index batches from ``batches`` to whichever target trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsl import DATASETS, LOSSES, Graph, Spec, TensorType
from dsl.errors import DataError, SpecSchemaError
from dsl.loader import check_dataset
from dsl.names import unknown_name

from .batches import epoch_batches, eval_batches
from .sources import Split, digits, torchvision_images
from .synthetic import synthetic
from .transform import InputTransform, input_transform

DEFAULT_DATA_DIR = Path("data")


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    num_classes: int


def load_dataset(spec: Spec, graph: Graph, *, data_dir: str | Path = DEFAULT_DATA_DIR, name: str | None = None,
                 seed: int = 0) -> Dataset:
    """The spec's dataset (or ``name``), through the input transform, checked against the model."""
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
    transform = input_transform(spec, name)
    train, test = (Split(transform(s.x), s.y) for s in (train, test))
    if spec.train:
        for split, labels in (("train", train.y), ("test", test.y)):
            check_targets(f"{name} ({split})", labels, spec.train.loss.name, graph.output_type)
    return Dataset(name, train, test, source.num_classes)


def check_targets(name: str, y: np.ndarray, loss: str, output: TensorType) -> None:
    """Raises a one-line ``DataError`` unless ``y`` is what ``loss`` takes for this output.

    ``dslc validate`` checks what a dataset declares (``dsl.DATASETS``); this checks
    what it yields, before anything is compiled, so a dataset whose labels differ from
    its declaration fails here rather than as a backend traceback or, in JAX, as a
    silent broadcast.
    """
    by_class = LOSSES[loss].targets == "classes"
    if by_class:
        what, dtype_ok, shape = "integer class ids", y.dtype.kind in "iu", (len(y), *output.shape[1:])
    else:
        what, dtype_ok, shape = "float values", y.dtype.kind == "f", (len(y), *output.shape)
    if not dtype_ok or y.shape != shape:
        raise DataError(f"dataset {name} yields targets of dtype {y.dtype} and shape {y.shape}, but {loss} on the "
                        f"output {output} takes {what} of shape {shape}")
    classes = output.shape[0]
    if by_class and y.size and not 0 <= y.min() <= y.max() < classes:
        raise DataError(f"dataset {name} yields class ids {y.min()}..{y.max()}, but the output {output} has "
                        f"{classes} classes, so ids must lie in 0..{classes - 1}")


__all__ = ["Dataset", "Split", "InputTransform", "load_dataset", "input_transform", "epoch_batches", "eval_batches",
           "DEFAULT_DATA_DIR"]
