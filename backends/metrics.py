"""An epoch's metrics from the steps' per-batch sums: each divided by its count, then the derived ones.

Steps return sums (``backends/*/objectives.py``) so that the driver syncs once per
epoch and any batch grouping gives the same numbers. A sum is divided by what its
metric is a mean over: a term's counted targets, which the steps sum too (cross_entropy
skips ``ignore_index``: a token-level mean over the epoch, not a mean of batch means),
or the examples. What is not a mean of per-batch values comes after the division:
perplexity is exp of the mean cross entropy per token, RMSE is sqrt of the epoch's mean
squared error (not a mean of batch RMSEs: the value sklearn's ``mean_squared_error`` over
the whole split gives, then sqrt), and with several terms ``loss`` is the weighted sum
of their means. Metrics that are no sum at all (auc) are ``split_metrics.py``'s.
"""

from __future__ import annotations

import math

from dsl.objectives import Objective
from dsl.training import METRICS


def epoch_metrics(objective: Objective, sums: dict, examples: int) -> dict[str, float]:
    """``Objective.metric_names`` -> the epoch's value, from summed ``sums`` over ``examples`` examples."""
    if not objective.terms:  # gan: losses per example
        return {name: _ratio(sums.get(name, 0.0), examples) for name in objective.metric_names}
    lone, means = len(objective.terms) == 1, {"loss": 0.0}
    for term in objective.terms:
        count = sums.get(term.count, 0.0) if term.count else examples
        loss = _ratio(sums.get(f"{term.label}loss", 0.0), count)
        means["loss"] = loss if lone else means["loss"] + term.weight * loss
        if not lone:
            means[f"{term.label}loss"] = loss
        for name in term.summed:
            metric = METRICS[name]
            mean = _ratio(sums.get(f"{term.label}{name}", 0.0), count if metric.per == "target" else examples)
            means[f"{term.label}{name}"] = DERIVED[metric.derive](mean) if metric.derive else mean
    return means


DERIVED = {"exp": math.exp, "sqrt": math.sqrt}
"""``MetricDef.derive`` -> what is applied to the epoch's mean: perplexity is exp of the mean cross entropy, rmse
sqrt of the mean squared error (of the whole epoch: sklearn's mean_squared_error over the split, then sqrt)."""


def _ratio(total, count) -> float:
    """``total / count`` as a float; NaN for a count of 0 (every target ignored), as torch's mean gives."""
    count = float(count)
    return float(total) / count if count else math.nan
