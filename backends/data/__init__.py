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
from dsl.objectives import resolve_objective

from .batches import epoch_batches, eval_batches
from .draws import draw_columns
from .sources import Source, Split, digits, npy_folder, torchvision_images
from .stream import Stream, with_columns
from .synthetic import synthetic
from .transform import InputTransform, input_transform

DEFAULT_DATA_DIR = Path("data")


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split | Stream
    test: Split | Stream
    num_classes: int | None


def load_dataset(spec: Spec, graph: Graph, *, data_dir: str | Path = DEFAULT_DATA_DIR, name: str | None = None,
                 seed: int = 0) -> Dataset:
    """The spec's dataset (or ``name``) as columns named for the objective, through the input transform,
    checked against the model."""
    data = spec.data
    name = name or (data.dataset if data else None)
    if name is None:
        raise SpecSchemaError("spec has no data section; add data: {dataset: digits} or pass --dataset",
                              spec.source.locate(()))
    if name not in DATASETS:
        raise DataError(unknown_name("dataset", name))
    check_dataset(spec, graph, name)
    objective = resolve_objective(spec, graph) if spec.train else None
    if name == "synthetic":
        source = synthetic(graph, objective, seed, data.train_size if data else None, data.test_size if data else None)
        train, test = source.train, source.test
    elif name == "npy":
        train, test = (_npy(spec, graph, objective, split).head(getattr(data, f"{split}_size"))
                       for split in ("train", "test"))
        source = Source(train, test, None)
    else:
        source = digits() if name == "digits" else torchvision_images(name, data_dir)
        fed = objective.inputs[0] if objective else graph.inputs[0][0]
        if source.train["image"].shape[1:] != graph.value_type(fed).shape:
            raise RuntimeError(f"dataset {name} yielded {source.train['image'].shape[1:]}, not its declared shape")
        transform = input_transform(spec, name)
        train, test = (_feed(s.head(getattr(data, f"{k}_size", None) if data else None), fed, objective, transform)
                       for k, s in (("train", source.train), ("test", source.test)))
    for term in objective.terms if objective and objective.targets else ():
        for split, part in (("train", train), ("test", test)):
            check_targets(f"{name} ({split})", part[term.target], term.loss.name, graph.value_type(term.value))
    return Dataset(name, train, test, source.num_classes)


def _npy(spec: Spec, graph: Graph, objective, split: str) -> Split | Stream:
    """A split of the user's ``.npy`` files, in memory or memory-mapped (``data.stream``), checked against the
    model; ``x.npy``/``y.npy`` stand for the one input and the one target where a model has one of each."""
    data = spec.data
    inputs = objective.inputs if objective else tuple(n for n, _ in graph.inputs)
    targets = objective.targets if objective else ()
    folder = Path(data.path) / split
    names = {n: n for n in inputs + targets}
    for group, alias in ((inputs, "x"), (targets, "y")):
        if len(group) == 1 and not (folder / f"{group[0]}.npy").exists():
            names[group[0]] = alias
    columns = npy_folder(data.path, split, names, data.stream)
    for name in inputs:
        kind, column = graph.value_type(name), columns[name]
        same_kind = (column.dtype.kind == "f") == kind.is_float and (column.dtype == bool) == (kind.dtype == "bool")
        if column.shape[1:] != kind.shape or not same_kind:
            raise DataError(f"dataset npy: {folder / names[name]}.npy holds {column.dtype} examples of shape "
                            f"{list(column.shape[1:])}, but input {name} takes {kind.dtype} of shape "
                            f"{list(kind.shape)}")
    transform = input_transform(spec, "npy")
    changed = {} if transform.is_identity else {inputs[0]: transform}
    if data.stream:
        return Stream(columns, changed)
    return Split({k: changed[k](v) if k in changed else v for k, v in columns.items()})


def _feed(split: Split, fed: str, objective, transform: InputTransform) -> Split:
    """An image dataset's split renamed for the model: ``image`` -> the input it feeds (transformed),
    ``label`` -> the one supervised output (a reconstruction or a GAN reads no labels)."""
    columns = {fed: transform(split["image"])}
    if objective and objective.targets:
        columns[objective.targets[0]] = split["label"]
    return Split(columns)


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


__all__ = ["Dataset", "Split", "Stream", "with_columns", "InputTransform", "load_dataset", "input_transform",
           "epoch_batches", "eval_batches",
           "draw_columns", "DEFAULT_DATA_DIR"]
