"""torch lowerings of the objectives (``dsl/objectives.py``): each step of a batch, and evaluation.

An objective lowers to ``phases``, one per optimizer step of a batch, each
``(model, step(batch) -> (mean loss, metric sums))``, and to ``evaluate(batch, mask)
-> metric sums`` over the unmasked rows. Batches are dicts of tensors named as the
objective's columns. Metric sums stay tensors: the driver syncs once per epoch, and
divides each by its count (``backends/metrics.py``): a term's counted targets, which
the steps return too (``Objective.counts``), or the examples. With several terms the
total ``loss`` is derived there, from the terms' epoch means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dsl.objectives import Objective

from .training import TORCH_LOSSES, TORCH_METRICS, masked_sum


def _supervised(objective: Objective, models: dict, dtype):
    model = models[objective.roles["model"]]
    losses = [TORCH_LOSSES[t.loss.name](t.loss.params) for t in objective.terms]
    lone = len(objective.terms) == 1

    def outputs(batch):
        out = model(*(batch[c] for c in objective.inputs))
        return {objective.terms[0].output: out} if lone else out

    def step(batch):
        out, n = outputs(batch), len(batch[objective.inputs[0]])
        total, metrics = 0.0, {}
        for term, loss in zip(objective.terms, losses):
            value, count = loss.mean(out[term.output], batch[term.target], **_columns(term, batch))
            total = total + term.weight * value if not (lone and term.weight == 1.0) else value
            if count is not None:
                metrics[term.count] = count
            metrics[f"{term.label}loss"] = (total if lone else value).detach() * (n if count is None else count)
            for metric in term.summed:
                metrics[f"{term.label}{metric}"] = TORCH_METRICS[metric](term.loss, out[term.output].detach(),
                                                                 batch[term.target])
        return total, metrics

    @torch.no_grad()
    def evaluate(batch, mask):
        out, metrics = outputs(batch), {}
        for term, loss in zip(objective.terms, losses):
            values, counts = loss.rows(out[term.output], batch[term.target], **_columns(term, batch))
            if counts is not None:
                metrics[term.count] = masked_sum(counts, mask)
            metrics[f"{term.label}loss"] = masked_sum(values * (term.weight if lone else 1.0), mask)
            for metric in term.summed:
                metrics[f"{term.label}{metric}"] = TORCH_METRICS[metric](term.loss, out[term.output],
                                                                 batch[term.target], mask)
        return metrics

    return [(objective.roles["model"], step)], evaluate


def _columns(term, batch) -> dict:
    """The batch columns a term's loss reads besides its target, by argument (ctc's input_lengths)."""
    return {argument: batch[column] for argument, column in term.columns}


def _gan(objective: Objective, models: dict, dtype):
    """The DCGAN paper's alternating steps, as PyTorch's DCGAN example writes them.

    The discriminator step sees real examples (target 1) and the generator's output,
    detached (target 0); the generator step then scores that same output with the
    updated discriminator against target 1 (the non-saturating loss).
    """
    generator, discriminator = (models[objective.roles[r]] for r in ("generator", "discriminator"))
    real, noise = objective.inputs[0], objective.drawn[0][0]
    kept = {}

    def bce(logits, target: float, reduction="mean"):
        losses = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction=reduction)
        return losses if reduction == "mean" else losses.reshape(len(losses), -1).mean(1)

    def d_step(batch):
        fake = generator(batch[noise])
        kept["fake"] = fake
        loss = bce(discriminator(batch[real]), 1.0) + bce(discriminator(fake.detach()), 0.0)
        return loss, {"d_loss": loss.detach() * len(fake)}

    def g_step(batch):
        fake = kept.pop("fake")
        loss = bce(discriminator(fake), 1.0)
        return loss, {"g_loss": loss.detach() * len(fake)}

    @torch.no_grad()
    def evaluate(batch, mask):
        fake = generator(batch[noise])
        d_loss = bce(discriminator(batch[real]), 1.0, "none") + bce(discriminator(fake), 0.0, "none")
        return {"d_loss": (d_loss * mask).sum(), "g_loss": (bce(discriminator(fake), 1.0, "none") * mask).sum()}

    return [(objective.roles["discriminator"], d_step), (objective.roles["generator"], g_step)], evaluate


TORCH_OBJECTIVES = {
    "supervised": _supervised,
    "reconstruction": _supervised,  # a term whose target column is the model's input
    "gan": _gan,
}
"""Objective name -> (objective, modules by model, dtype) -> (phases, evaluate)."""
