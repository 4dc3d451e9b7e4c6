"""Metrics no per-batch sum gives, computed once per evaluation from the whole test split: auc.

AUC ranks every example against every other, so a step cannot return its share as a
sum (``metrics.py``). For each term that asks for one (``Term.split``) the driver
collects the scores and labels over the split, batch by batch through the target's
evaluation-mode ``predict`` (the contract every target already keeps: nothing is
added to it, and each target's forward is the one ``dslc predict`` runs), holding
only those two vectors, and hands them to scikit-learn once. A ``Stream`` is read
in order with its read-ahead thread, one batch at a time. The price is a second
forward pass over the test split, paid only by specs that ask for a split metric.

Training epochs report none: their outputs come from a model that changes every
step, in training mode (dropout), so an AUC over them would describe no model;
auc is ``test_auc`` only (``dslc train``'s epoch lines, ``metrics.jsonl``,
``summary.json``, ``dslc eval``).

Scores are the logits, not their sigmoid: AUC depends only on their order, which a
float32 sigmoid collapses into ties near 0 and 1.
"""

from __future__ import annotations

import math

import numpy as np

from dsl.errors import DataError
from dsl.objectives import Objective, Term

from .data.stream import Stream


def split_metrics(target, objective: Objective, split, batch_size: int) -> dict[str, float]:
    """Each term's split metrics over ``split`` (a ``Split`` or a ``Stream``), named as the steps' metrics are."""
    terms = [term for term in objective.terms if term.split]
    if not terms:
        return {}
    scored = _collect(target, objective, terms, split, batch_size)
    return {f"{t.label}{m}": SPLIT_METRICS[m](*scored[t.output]) for t in terms for m in t.split}


def _collect(target, objective: Objective, terms: list[Term], split, batch_size: int) -> dict:
    """Per term, by output name: (labels, scores) over the split in order, one of each per example."""
    parts = {t.output: ([], []) for t in terms}
    for batch in _batches(split, batch_size):
        out = _outputs(target, objective, batch, batch_size)
        for t in terms:
            parts[t.output][0].append(np.asarray(batch[t.target]).reshape(-1))
            parts[t.output][1].append(np.asarray(out[t.output]).reshape(-1))
    return {name: (np.concatenate(labels), np.concatenate(scores)) for name, (labels, scores) in parts.items()}


def _outputs(target, objective: Objective, batch: dict, batch_size: int) -> dict:
    """The model's outputs on a batch, in evaluation mode, by output name."""
    xs = tuple(batch[c] for c in objective.inputs)
    out = target.predict(xs[0] if len(xs) == 1 else xs, batch_size)
    return out if isinstance(out, dict) else {objective.terms[0].output: out}


def _batches(split, batch_size: int):
    """The split's batches in order: gathered from a ``Stream`` (read ahead on a thread), or slices of memory."""
    starts = range(0, len(split), batch_size)
    if isinstance(split, Stream):
        return split.iterate([np.arange(i, min(i + batch_size, len(split))) for i in starts])
    return ({k: v[i:i + batch_size] for k, v in split.columns.items()} for i in starts)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """``sklearn.metrics.roc_auc_score``; NaN where the split holds one class only (no pair to rank), decided
    here: sklearn's answer to it depends on its version (a warning and NaN, or an error)."""
    from sklearn.metrics import roc_auc_score  # about 1 s to import: only runs that ask for auc pay it

    held = np.unique(labels)
    if not np.isin(held, (0, 1)).all():
        raise DataError(f"auc needs 0/1 labels (click or not); the test split's targets hold "
                        f"{held[~np.isin(held, (0, 1))][0]:g}")
    return float(roc_auc_score(labels, scores)) if len(held) == 2 else math.nan


SPLIT_METRICS = {"auc": _auc}
"""``per: split`` metric name (``dsl.training.METRICS``) -> (labels, scores over the whole split) -> its value."""
