"""The validation split and what watches it: early stopping and the best checkpoint.

A spec gets a validation split from ``data.validation_split`` (a fraction carved off
the training split, ``backends/data/validation.py``) or ``data.validation`` (a split
its files hold beside train and test). The driver evaluates it every epoch as it does
the test split and records ``val_<metric>`` (Keras's names). One validation metric,
the monitor, chooses the best epoch (``best.safetensors``) and, with
``train.early_stopping``, when to stop; it defaults to ``val_loss``. The test split
is never used to choose anything.

These checks run when a spec is validated, before anything is loaded, and each
refusal is one located line that names the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .errors import SpecSchemaError, did_you_mean
from .graph import Graph
from .objectives import Objective, resolve_objective
from .schema import Spec
from .training import DATASETS, METRICS

PREFIX = "val_"
"""What the validation split's metrics are called in metrics.jsonl (Keras's ``val_loss``, ``val_accuracy``)."""

Mode = Literal["min", "max"]


@dataclass(frozen=True)
class Watch:
    """What chooses among epochs: ``monitor`` (a recorded ``val_`` metric), minimized or maximized, with
    early stopping's ``patience`` (None: no early stopping, only the best checkpoint) and ``min_delta``."""

    monitor: str = "val_loss"
    mode: Mode = "min"
    patience: int | None = None
    min_delta: float = 0.0


def has_validation(spec: Spec) -> bool:
    data = spec.data
    return data is not None and (data.validation_split is not None or data.validation is not None)


def directions(objective: Objective) -> dict[str, Mode]:
    """Each metric an evaluation records (named without its split's prefix) -> whether it is better low or high:
    losses low, the metrics that grow with quality (``MetricDef.better``: accuracy, iou, auc) high."""
    if not objective.terms:
        return dict.fromkeys(objective.metric_names, "min")
    found: dict[str, Mode] = {"loss": "min"}
    for term in objective.terms:
        if term.label:
            found[f"{term.label}loss"] = "min"
        for metric in term.metrics:
            found[f"{term.label}{metric}"] = "max" if METRICS[metric].better == "higher" else "min"
    return found


def watch_of(spec: Spec, graph: Graph) -> Watch | None:
    """The spec's watch, ``auto`` resolved; None without a validation split."""
    if not has_validation(spec):
        return None
    stopping = spec.train.early_stopping if spec.train else None
    if stopping is None:
        return Watch()
    mode = stopping.mode
    if mode == "auto":
        mode = directions(resolve_objective(spec, graph))[stopping.monitor.removeprefix(PREFIX)]
    return Watch(stopping.monitor, mode, stopping.patience, stopping.min_delta)


def check_early_stopping(spec: Spec, graph: Graph) -> None:
    """``train.early_stopping`` needs a validation split, and watches a validation metric the run records."""
    stopping = spec.train.early_stopping if spec.train else None
    if stopping is None:
        return
    if not has_validation(spec):
        raise SpecSchemaError("early_stopping watches a validation metric, and this spec has no validation split; "
                              "add data: {validation_split: 0.1} (or validation: val where your files hold one)",
                              spec.source.locate(("train", "early_stopping"), key=True))
    recorded = [PREFIX + name for name in directions(resolve_objective(spec, graph))]
    if stopping.monitor not in recorded:
        raise SpecSchemaError(_unknown_monitor(stopping.monitor, recorded),
                              spec.source.locate(("train", "early_stopping", "monitor")))


def _unknown_monitor(monitor: str, recorded: list[str]) -> str:
    base = monitor.removeprefix("test_").removeprefix("train_")
    if monitor.startswith("test_") and PREFIX + base in recorded:
        return (f"monitor '{monitor}' would choose by the test split, which must stay unseen; monitor the "
                f"validation split: {PREFIX}{base}")
    hint = f"; did you mean '{PREFIX}{base}'?" if PREFIX + base in recorded else did_you_mean(monitor, recorded)
    return f"monitor '{monitor}' is not a validation metric this run records ({', '.join(recorded)}){hint}"


def check_validation(spec: Spec, graph: Graph, name: str) -> None:
    """The validation split must be one dataset ``name`` can give: a split on disk where it keeps them, a fraction
    of a training split held in memory, leaving both splits examples where the sizes are known."""
    if not has_validation(spec):
        return
    data, dataset = spec.data, DATASETS[name]
    key = "validation" if data.validation is not None else "validation_split"
    objective = resolve_objective(spec, graph) if spec.train else None
    if objective is not None and objective.name == "gan":
        raise SpecSchemaError(f"a gan's losses ({', '.join(objective.metric_names)}) do not say which epoch's "
                              f"generator is better, so a validation split would choose nothing; drop data.{key}",
                              spec.source.locate(("data", key), key=True))
    if data.validation is not None and not dataset.splits_on_disk:
        keeping = ", ".join(d.name for d in DATASETS.values() if d.splits_on_disk)
        raise SpecSchemaError(f"dataset {name} keeps no split named '{data.validation}' (only {keeping} read one "
                              f"from your files); carve one off the training split: validation_split: 0.1",
                              spec.source.locate(("data", "validation")))
    if data.validation_split is not None and data.stream:
        raise SpecSchemaError("data.stream reads the training files in place, so no fraction is carved off them; "
                              "put the validation examples in data.path/val/ and write validation: val",
                              spec.source.locate(("data", "validation_split")))
    if data.validation_split is not None and dataset.sizes:
        check_fraction(spec, data.train_size or dataset.sizes[0])


def validation_count(fraction: float, examples: int) -> int:
    """The examples ``fraction`` carves off ``examples``: ceil, as scikit-learn's train_test_split counts its test
    split (a float product just above a whole number, 0.7 * 10, is not rounded up past it)."""
    return math.ceil(round(fraction * examples, 9))


def check_fraction(spec: Spec, examples: int) -> None:
    """Both splits must keep an example: ``validation_split`` of ``examples`` training examples."""
    fraction = spec.data.validation_split
    count = validation_count(fraction, examples)
    if count >= examples:
        raise SpecSchemaError(f"validation_split {fraction:g} of {examples:,} training examples takes {count:,}, "
                              f"leaving none to train on; give a smaller fraction or more training examples",
                              spec.source.locate(("data", "validation_split")))
