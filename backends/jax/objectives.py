"""JAX lowerings of the objectives (``dsl/objectives.py``): pure functions the target jit-compiles.

An objective lowers to ``phases``, one per optimizer step of a batch, each
``(model, step)`` with ``step(params, model_state, batch, rng) -> (mean loss,
(metric sums, model_state))`` differentiated by the target with respect to that
model's parameters only, and to ``evaluate(variables, batch, mask) -> metric sums``.
``apply(model, params, model_state, inputs, train, rng) -> (outputs, model_state)``
runs one model of the graph (``target.py``); batches are dicts named as the
objective's columns. Each lowering mirrors ``backends/torch/objectives.py`` line for
line, so ``dslc check`` can compare every phase.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from dsl.objectives import Objective

from .training import JAX_LOSSES, JAX_METRICS, masked_sum


def _supervised(objective: Objective, apply):
    model = objective.roles["model"]
    losses = [JAX_LOSSES[t.loss.name](t.loss.params) for t in objective.terms]
    lone = len(objective.terms) == 1

    def outputs(params, model_state, batch, train, rng):
        out, model_state = apply(model, params, model_state, tuple(batch[c] for c in objective.inputs), train, rng)
        return ({objective.terms[0].output: out} if lone else out), model_state

    def step(params, model_state, batch, rng):
        out, model_state = outputs(params, model_state, batch, True, rng)
        n = batch[objective.inputs[0]].shape[0]
        total, metrics = 0.0, {}
        for term, loss_fn in zip(objective.terms, losses):
            values, counts = loss_fn(out[term.output], batch[term.target], **_columns(term, batch))
            count = n if counts is None else counts.sum()
            value = values.mean() if counts is None else values.sum() / count.astype(values.dtype)
            total = total + term.weight * value
            if counts is not None:
                metrics[term.count] = count
            metrics[f"{term.label}loss"] = (total if lone else value) * count
            for metric in term.summed:
                metrics[f"{term.label}{metric}"] = JAX_METRICS[metric](term.loss, out[term.output],
                                                                 batch[term.target]).sum()
        return total, (metrics, model_state)

    def evaluate(params, model_state, batch, mask):
        out, _ = outputs(params, model_state, batch, False, None)
        metrics = {}
        for term, loss_fn in zip(objective.terms, losses):
            values, counts = loss_fn(out[term.output], batch[term.target], **_columns(term, batch))
            if counts is not None:
                metrics[term.count] = masked_sum(counts, mask)
            metrics[f"{term.label}loss"] = masked_sum(values * (term.weight if lone else 1.0), mask)
            for metric in term.summed:
                metrics[f"{term.label}{metric}"] = masked_sum(JAX_METRICS[metric](term.loss, out[term.output],
                                                                            batch[term.target]), mask)
        return metrics

    return [(model, step)], evaluate


def _columns(term, batch) -> dict:
    """The batch columns a term's loss reads besides its target, by argument (ctc's input_lengths)."""
    return {argument: batch[column] for argument, column in term.columns}


def _bce(logits, target: float):
    """Binary cross-entropy of logits against a constant target, one value per example."""
    losses = optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target))
    return losses.reshape(losses.shape[0], -1).mean(1)


def _gan(objective: Objective, apply):
    """The DCGAN paper's alternating steps (see ``backends/torch/objectives.py``).

    The generator step recomputes the generator's output, which in training mode is
    the discriminator step's exactly (BatchNorm normalizes by the batch's statistics,
    dropout draws from the same key); the running statistics that recomputation
    would update again are dropped, so they move once per batch, as in torch.
    """
    g, d = objective.roles["generator"], objective.roles["discriminator"]
    real, noise = objective.inputs[0], objective.drawn[0][0]

    def d_step(params, model_state, batch, rng):
        fake, model_state = apply(g, params, model_state, (batch[noise],), True, jax.random.fold_in(rng, 0))
        real_logit, model_state = apply(d, params, model_state, (batch[real],), True, jax.random.fold_in(rng, 1))
        fake_logit, model_state = apply(d, params, model_state, (jax.lax.stop_gradient(fake),), True,
                                        jax.random.fold_in(rng, 2))
        loss = _bce(real_logit, 1.0).mean() + _bce(fake_logit, 0.0).mean()
        return loss, ({"d_loss": loss * fake.shape[0]}, model_state)

    def g_step(params, model_state, batch, rng):
        fake, _ = apply(g, params, model_state, (batch[noise],), True, jax.random.fold_in(rng, 0))
        logit, model_state = apply(d, params, model_state, (fake,), True, jax.random.fold_in(rng, 3))
        loss = _bce(logit, 1.0).mean()
        return loss, ({"g_loss": loss * fake.shape[0]}, model_state)

    def evaluate(params, model_state, batch, mask):
        fake, _ = apply(g, params, model_state, (batch[noise],), False, None)
        real_logit, _ = apply(d, params, model_state, (batch[real],), False, None)
        fake_logit, _ = apply(d, params, model_state, (fake,), False, None)
        return {"d_loss": ((_bce(real_logit, 1.0) + _bce(fake_logit, 0.0)) * mask).sum(),
                "g_loss": (_bce(fake_logit, 1.0) * mask).sum()}

    return [(d, d_step), (g, g_step)], evaluate


JAX_OBJECTIVES = {
    "supervised": _supervised,
    "reconstruction": _supervised,  # a term whose target column is the model's input
    "gan": _gan,
}
"""Objective name -> (objective, apply) -> (phases, evaluate)."""
