"""One backend-neutral data pipeline: numpy arrays in memory, batches by seeded index.

``load_dataset`` returns normalized arrays checked against the model; the training
driver hands index batches from ``batches`` to whichever target trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dsl import DATASETS, LOSSES, Graph, Spec, TensorType
from dsl.errors import DataError, SpecSchemaError
from dsl.loader import check_dataset
from dsl.monitor import check_fraction
from dsl.names import unknown_name
from dsl.objectives import resolve_objective
from dsl.schema import ChoiceSpec
from dsl.targets import class_count, target_shape

from .augment import Augment, augmentation
from .batches import epoch_batches, eval_batches, padded_batches
from .columns import feeds_of, fit
from .draws import draw_columns
from .folders import image_folder
from .glyphs import glyphs
from .recommenders import RECOMMENDERS, recommender
from .sequences import planted_tokens, reverse
from .sources import (
    Source,
    Split,
    column_files,
    digits,
    npy_folder,
    npz_columns,
    npz_keys,
    planted_shapes,
    torchvision_images,
)
from .speech import synthetic_speech
from .stream import Stream, with_columns
from .synthetic import synthetic
from .text import parallel_text, text_classification
from .transform import InputTransform, input_transform
from .validation import carve

DEFAULT_DATA_DIR = Path("data")
SEQUENCES = {"planted_tokens": planted_tokens, "reverse": reverse, "synthetic_speech": synthetic_speech}
"""The seeded sequence tasks: (Feeds, seed, train_size, test_size) -> Source."""


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split | Stream
    test: Split | Stream
    num_classes: int | None
    augment: Augment | None = None  # of the training split, per epoch (``epoch_split``)
    files: Mapping[str, bytes] = field(default_factory=dict)  # for the run folder, beside the weights (vocab.json)
    val: Split | Stream | None = None  # the validation split (``data.validation_split`` or ``data.validation``)


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
    fed = objective.inputs[0] if objective else graph.inputs[0][0]
    val = None
    if name == "synthetic":
        source = synthetic(graph, objective, seed, data.train_size if data else None, data.test_size if data else None)
        train, test = source.train, source.test
    elif DATASETS[name].columns:
        source = _named(name, spec, graph, seed, data_dir)
        train, test = source.train, source.test
    elif name in ("npy", "npz"):
        train, test = (_user_arrays(spec, graph, objective, split, name).head(getattr(data, f"{split}_size"))
                       for split in ("train", "test"))
        source = Source(train, test, None)
        if data.validation:
            val = _user_arrays(spec, graph, objective, data.validation, name)
    else:
        source = _images(name, graph.value_type(fed).shape, data, data_dir)
        if source.train["image"].shape[1:] != graph.value_type(fed).shape:
            raise RuntimeError(f"dataset {name} yielded {source.train['image'].shape[1:]}, not its declared shape")
        transform = input_transform(spec, name)
        train, test = (_feed(s.head(getattr(data, f"{k}_size", None) if data else None), fed, objective, transform)
                       for k, s in (("train", source.train), ("test", source.test)))
        if source.val is not None:
            val = _feed(source.val, fed, objective, transform)
    if data and data.validation_split is not None:
        check_fraction(spec, len(train))
        train, val = carve(train, data.validation_split, seed)
    held_out = (("train", train), ("test", test)) + ((("val", val),) if val is not None else ())
    for term in objective.terms if objective and objective.targets else ():
        for split, part in held_out:
            check_targets(f"{name} ({split})", part[term.target], term.loss, graph.value_type(term.value))
            for _, column in term.columns:
                check_lengths(f"{name} ({split})", column, part[column], graph.value_type(term.value))
    if name == "image_folder" and objective and objective.targets:
        _check_class_count(data.path, source.num_classes, graph.value_type(objective.terms[0].value))
    return Dataset(name, train, test, source.num_classes, _augment(spec, graph, name, fed), source.files, val)


def _named(name: str, spec: Spec, graph: Graph, seed: int, data_dir: str | Path) -> Source:
    """A dataset that names its own columns, renamed and cast for the model (``data.columns``)."""
    feeds, data = feeds_of(spec, graph, name), spec.data
    if name in SEQUENCES:
        source = SEQUENCES[name](feeds, seed, data.train_size if data else None, data.test_size if data else None)
    elif name in RECOMMENDERS:
        source = recommender(name, spec, feeds, seed, data_dir)
    elif name == "parallel_text":
        source = parallel_text(spec, feeds)
    else:
        source = text_classification(name, spec, feeds, data_dir)
    return Source(fit(source.train, feeds), fit(source.test, feeds), source.num_classes, source.files)


def _images(name: str, shape: tuple[int, ...], data, data_dir: str | Path) -> Source:
    """An image dataset's source: its ``image`` (N, C, H, W) as stored and its ``label``."""
    if name == "digits":
        return digits()
    if name == "shapes":
        return planted_shapes()
    if name == "glyphs":
        return glyphs()
    if name == "image_folder":
        return image_folder(data.path, shape, data_dir, data.validation)
    return torchvision_images(name, data_dir)


def _augment(spec: Spec, graph: Graph, name: str, fed: str) -> Augment | None:
    """The spec's augmentation of the input ``fed``, padding with what a zero pixel becomes under its transform."""
    if not (spec.data and spec.data.augment):
        return None
    channels = graph.value_type(fed).shape[0]
    fill = input_transform(spec, name)(np.zeros((1, channels, 1, 1), np.float32))
    return augmentation(spec.data.augment, fed, fill)


def _check_class_count(path: str, classes: int, output: TensorType) -> None:
    """An image folder's classes are its folders: as many as the output has logits, or a class is unreachable."""
    if output.rank and output.shape[0] != classes:
        raise DataError(f"dataset image_folder: {Path(path) / 'train'} has {classes} class folders, but the output "
                        f"{output} has {output.shape[0]} logits; give the output one per class")


def epoch_columns(dataset: Dataset, objective, seed: int, epoch: int) -> dict[str, np.ndarray]:
    """The training columns that change from epoch to epoch, as functions of (seed, epoch): drawn noise and,
    for a split held in memory, the augmented input (a ``Stream`` augments each gathered batch instead)."""
    columns = draw_columns(objective, len(dataset.train), seed, epoch)
    augment = dataset.augment
    if augment is not None and not isinstance(dataset.train, Stream):
        columns[augment.column] = augment(dataset.train[augment.column], seed, epoch)
    return columns


def epoch_split(dataset: Dataset, objective, seed: int, epoch: int):
    """The training split as the driver puts it for ``epoch``: ``epoch_columns`` in place of the stored ones."""
    train, augment = dataset.train, dataset.augment
    if augment is not None and isinstance(train, Stream):
        train = train.augmented(augment.per_batch(len(train), train[augment.column].shape[1:], seed, epoch))
    return with_columns(train, epoch_columns(dataset, objective, seed, epoch))


def _user_arrays(spec: Spec, graph: Graph, objective, split: str, name: str) -> Split | Stream:
    """A split of the user's arrays (``npy``: one file per column, in memory or memory-mapped with
    ``data.stream``; ``npz``: one file), checked against the model's inputs."""
    data = spec.data
    inputs = objective.inputs if objective else tuple(n for n, _ in graph.inputs)
    targets = objective.targets if objective else ()
    extras = {n: n for n, _ in objective.extras} if objective else {}
    if name == "npy":
        folder = Path(data.path) / split
        names = column_files(inputs, targets, lambda stem: (folder / f"{stem}.npy").exists()) | extras
        names.update({batch: stem for stem, batch in data.columns.items()})
        columns = npy_folder(data.path, split, names, data.stream)
        where = {n: f"{folder / stem}.npy" for n, stem in names.items()}
    else:
        held = npz_keys(data.path)
        names = column_files(inputs, targets, lambda stem: f"{stem}_{split}" in held) | extras
        names.update({batch: stem for stem, batch in data.columns.items()})
        columns = npz_columns(data.path, split, names)
        where = {n: f"{data.path}: {stem}_{split}" for n, stem in names.items()}
    for column in inputs:
        _check_input(name, where[column], columns[column], column, graph.value_type(column))
    transform = input_transform(spec, name)
    changed = {} if transform.is_identity else {inputs[0]: transform}
    if data.stream:
        return Stream(columns, changed)
    return Split({k: changed[k](v) if k in changed else v for k, v in columns.items()})


def _check_input(dataset: str, where: str, column: np.ndarray, name: str, kind: TensorType) -> None:
    same_kind = (column.dtype.kind == "f") == kind.is_float and (column.dtype == bool) == (kind.dtype == "bool")
    if column.shape[1:] != kind.shape or not same_kind:
        raise DataError(f"dataset {dataset}: {where} holds {column.dtype} examples of shape {list(column.shape[1:])}"
                        f", but input {name} takes {kind.dtype} of shape {list(kind.shape)}")


def _feed(split: Split, fed: str, objective, transform: InputTransform) -> Split:
    """An image dataset's split renamed for the model: ``image`` -> the input it feeds (transformed),
    ``label`` -> the one supervised output (a reconstruction or a GAN reads no labels)."""
    columns = {fed: transform(split["image"])}
    if objective and objective.targets:
        columns[objective.targets[0]] = split["label"]
    return Split(columns)


def check_targets(name: str, y: np.ndarray, loss: ChoiceSpec, output: TensorType) -> None:
    """Raises a one-line ``DataError`` unless ``y`` is what ``loss`` takes for this output.

    ``dslc validate`` checks what a dataset declares (``dsl.DATASETS``); this checks
    what it yields, before anything is compiled, so a dataset whose labels differ from
    its declaration fails here rather than as a backend traceback or, in JAX, as a
    silent broadcast (or, for class ids out of range, a silent clamp).
    """
    kind = LOSSES[loss.name].targets
    if kind == "labels":
        return _check_label_sequences(name, y, loss, output)
    if kind == "classes":
        what, dtype_ok, shape = "integer class ids", y.dtype.kind in "iu", (len(y), *target_shape(loss, output))
    else:
        what, dtype_ok, shape = "float values", y.dtype.kind == "f", (len(y), *output.shape)
    if not dtype_ok or y.shape != shape:
        raise DataError(f"dataset {name} yields targets of dtype {y.dtype} and shape {y.shape}, but {loss.name} on "
                        f"the output {output} takes {what} of shape {shape}")
    if kind == "classes":
        _check_class_ids(name, y[y != loss.params.ignore_index], loss, output)


def _check_class_ids(name: str, ids: np.ndarray, loss: ChoiceSpec, output: TensorType) -> None:
    classes = class_count(loss, output)
    if ids.size and not 0 <= ids.min() <= ids.max() < classes:
        axis = "" if output.rank == 1 else f" on axis {loss.params.class_axis}"
        raise DataError(f"dataset {name} yields class ids {ids.min()}..{ids.max()}, but the output {output} has "
                        f"{classes} classes{axis}, so ids must lie in 0..{classes - 1} (or be ignore_index, "
                        f"{loss.params.ignore_index}, where nothing is to be learned)")


def _check_label_sequences(name: str, y: np.ndarray, loss: ChoiceSpec, output: TensorType) -> None:
    """ctc targets: int [N, S], ids below the output's classes, the labels of each row first, then the blank."""
    blank, classes = loss.params.blank, class_count(loss, output)
    if y.dtype.kind not in "iu" or y.ndim != 2:
        raise DataError(f"dataset {name} yields targets of dtype {y.dtype} and shape {y.shape}, but ctc takes "
                        f"integer label sequences [N, S] padded with the blank ({blank})")
    if y.size and not 0 <= y.min() <= y.max() < classes:
        raise DataError(f"dataset {name} yields labels {y.min()}..{y.max()}, but the output {output} has {classes} "
                        f"classes (the blank, {blank}, among them), so labels must lie in 0..{classes - 1}")
    after_blank = (np.cumsum(y == blank, axis=1) > 0) & (y != blank)
    if after_blank.any():
        row = int(np.argmax(after_blank.any(axis=1)))
        raise DataError(f"dataset {name}: target row {row} has a label after the blank ({blank}): {y[row].tolist()};"
                        f" ctc counts a row's labels as its non-blank ids, so put them first and pad the end with "
                        f"the blank")


def check_lengths(name: str, column: str, lengths: np.ndarray, output: TensorType) -> None:
    """A loss's frame counts: one integer per example within the output's T frames."""
    frames = output.shape[0]
    if lengths.dtype.kind not in "iu" or lengths.ndim != 1:
        raise DataError(f"dataset {name}: column {column} holds {lengths.dtype} of shape {lengths.shape}; it is a "
                        f"frame count per example: integers of shape (N,)")
    if lengths.size and not 0 <= lengths.min() <= lengths.max() <= frames:
        raise DataError(f"dataset {name}: column {column} holds frame counts {lengths.min()}..{lengths.max()}, but "
                        f"the output {output} has {frames} frames, so they must lie in 0..{frames}")


__all__ = ["Dataset", "Split", "Stream", "with_columns", "InputTransform", "load_dataset", "input_transform",
           "epoch_batches", "eval_batches", "padded_batches", "epoch_columns", "epoch_split",
           "draw_columns", "DEFAULT_DATA_DIR"]
