"""torch lowerings of the objectives (``dsl/objectives.py``): each step of a batch, and evaluation.

An objective lowers to ``phases``, one per optimizer step of a batch, each
``(model, step(batch) -> (mean loss, metric sums))``, and to ``evaluate(batch, mask)
-> metric sums`` over the unmasked rows. Batches are dicts of tensors named as the
objective's columns. Metric sums stay tensors: the driver syncs once per epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dsl.objectives import Objective

from .training import TORCH_LOSSES, TORCH_METRICS


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
        for term, loss_fn in zip(objective.terms, losses):
            value = loss_fn(out[term.output], batch[term.target])
            total = total + term.weight * value if not (lone and term.weight == 1.0) else value
            if not lone:
                metrics[f"{term.label}loss"] = value.detach() * n
            for metric in term.metrics:
                metrics[f"{term.label}{metric}"] = TORCH_METRICS[metric](term.loss.name, out[term.output].detach(),
                                                                 batch[term.target])
        return total, {"loss": total.detach() * n, **metrics}

    @torch.no_grad()
    def evaluate(batch, mask):
        out = outputs(batch)
        total, metrics = 0.0, {}
        for term, loss_fn in zip(objective.terms, losses):
            per_example = loss_fn(out[term.output], batch[term.target], reduction="none")
            total = total + term.weight * per_example
            if not lone:
                metrics[f"{term.label}loss"] = (per_example * mask).sum()
            for metric in term.metrics:
                metrics[f"{term.label}{metric}"] = TORCH_METRICS[metric](term.loss.name, out[term.output],
                                                                 batch[term.target], mask)
        return {"loss": (total * mask).sum(), **metrics}

    return [(objective.roles["model"], step)], evaluate


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
