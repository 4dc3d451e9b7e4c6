"""JAX lowerings of the training vocabulary, and the pure, jit-compiled steps.

Losses follow torch (docs/PARITY.md §12): ``mse`` is the mean of squared errors, not
optax's half ``l2_loss``; cross-entropy's class axis is 1. Optimizers follow
torch.optim (§13): ``adam``'s weight decay is L2 added to the gradient before Adam,
``adamw``'s is decoupled, SGD momentum is optax's trace (equal to torch's with no
dampening).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dsl.schema import ChoiceSpec


def _per_example(losses):
    return losses.reshape(losses.shape[0], -1).mean(1)


def _cross_entropy(p):
    def loss(out, y):
        logits = jnp.moveaxis(out, 1, -1)
        if p.label_smoothing:
            targets = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype), p.label_smoothing)
            return _per_example(optax.softmax_cross_entropy(logits, targets))
        return _per_example(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    return loss


JAX_LOSSES = {
    "cross_entropy": _cross_entropy,
    "mse": lambda p: lambda out, y: _per_example(jnp.square(out - y)),
    "bce_with_logits": lambda p: lambda out, y: _per_example(optax.sigmoid_binary_cross_entropy(out, y)),
}
"""Loss name -> (params -> loss(out, y) giving one value per example); the batch loss is their mean."""


def _with_l2(p, transform):
    return optax.chain(optax.add_decayed_weights(p.weight_decay), transform) if p.weight_decay else transform


JAX_OPTIMIZERS = {
    "sgd": lambda p: _with_l2(p, optax.sgd(p.lr, momentum=p.momentum or None, nesterov=p.nesterov)),
    "adam": lambda p: _with_l2(p, optax.adam(p.lr, b1=p.betas[0], b2=p.betas[1], eps=p.eps)),
    "adamw": lambda p: optax.adamw(p.lr, b1=p.betas[0], b2=p.betas[1], eps=p.eps, weight_decay=p.weight_decay),
}



def make_optimizer(optimizer: ChoiceSpec) -> optax.GradientTransformation:
    return JAX_OPTIMIZERS[optimizer.name](optimizer.params)


def _predicted(loss: str, out, y):
    """Predicted and true labels: the argmax over the class axis, or the logit's sign for bce_with_logits."""
    return (jnp.argmax(out, axis=1), y) if loss == "cross_entropy" else (out > 0, y > 0.5)


def _accuracy(loss: str, out, y):
    """Correct predictions per example (averaged over an example's positions)."""
    predicted, true = _predicted(loss, out, y)
    return _per_example((predicted == true).astype(out.dtype))


def _iou(loss: str, out, y):
    """Each example's foreground intersection over union (see the torch lowering)."""
    predicted, true = (t.reshape(t.shape[0], -1) != 0 for t in _predicted(loss, out, y))
    inter, union = ((m.sum(1)).astype(out.dtype) for m in (predicted & true, predicted | true))
    return jnp.where(union > 0, inter / jnp.maximum(union, 1), 1.0)


JAX_METRICS = {"accuracy": _accuracy, "iou": _iou}
"""Metric name -> (loss name, outputs, targets) -> one value per example."""


class TrainState(NamedTuple):
    """Everything a train step reads and replaces; donated to the compiled step."""

    params: Any
    model_state: Any  # non-trainable collections (BatchNorm statistics), {} when none
    opt_state: Any  # by model name ('' for a one-model spec)
    step: jax.Array
    key: jax.Array


def sub(tree, model: str):
    """One model's part of a tree of all models' variables (the tree itself for '', the one model)."""
    return tree[model] if model else tree


def put_sub(tree, model: str, value):
    return {**tree, model: value} if model else value


def make_apply(models: dict):
    """``apply(model, params, model_state, inputs, train, rng) -> (output, model_state)`` for the objectives.

    ``models`` are the Flax modules by model name; each reads its own part of the
    variables (its names are prefixed by its model's) and, in training mode, writes
    back its part of the model state (BatchNorm's running statistics).
    """
    def apply(model, params, model_state, inputs, train, rng):
        wrap = (lambda x: {model: x}) if model else (lambda x: x)
        collections = {c: wrap(sub(v, model)) for c, v in model_state.items() if not model or model in v}
        variables = {"params": wrap(sub(params, model)), **collections}
        if not train:
            return models[model].apply(variables, *inputs, train=False), model_state
        if not collections:
            return models[model].apply(variables, *inputs, train=True, rngs={"dropout": rng}), model_state
        out, updated = models[model].apply(variables, *inputs, train=True, rngs={"dropout": rng},
                                           mutable=list(collections))
        return out, {c: put_sub(v, model, sub(updated[c], model)) if c in updated else v
                     for c, v in model_state.items()}

    return apply


def make_steps(phases, evaluate, txs: dict):
    """The pure train step (every phase of the objective on one batch), a loop of them, the eval step."""

    def train_step(state: TrainState, data, index):
        batch = {k: v[index] for k, v in data.items()}
        rng = jax.random.fold_in(state.key, state.step)
        params, model_state, opt_state, metrics = state.params, state.model_state, dict(state.opt_state), {}
        for model, phase in phases:
            def objective(part, params=params, model_state=model_state, phase=phase, model=model):
                return phase(put_sub(params, model, part), model_state, batch, rng)

            part = sub(params, model)
            (_, (sums, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(part)
            updates, opt_state[model] = txs[model].update(grads, opt_state[model], part)
            params = put_sub(params, model, optax.apply_updates(part, updates))
            metrics.update(sums)
        return state._replace(params=params, model_state=model_state, opt_state=opt_state,
                              step=state.step + 1), metrics

    def train_loop(state: TrainState, data, indices):
        """``len(indices)`` steps in one compiled call (``lax.scan``): no dispatch or host sync between them."""
        state, metrics = jax.lax.scan(lambda s, index: train_step(s, data, index), state, indices)
        return state, jax.tree.map(jnp.sum, metrics)

    def eval_step(params, model_state, data, index, mask):
        return evaluate(params, model_state, {k: v[index] for k, v in data.items()}, mask)

    return train_step, train_loop, eval_step
