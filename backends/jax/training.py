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

from ..inputs import as_tuple


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


def make_loss(loss: ChoiceSpec):
    return JAX_LOSSES[loss.name](loss.params)


def make_optimizer(optimizer: ChoiceSpec) -> optax.GradientTransformation:
    return JAX_OPTIMIZERS[optimizer.name](optimizer.params)


def correct_count(loss: str, out, y):
    """Correct predictions per example (averaged over an example's positions)."""
    if loss == "cross_entropy":
        hits = jnp.argmax(out, axis=1) == y
    elif loss == "bce_with_logits":
        hits = (out > 0) == (y > 0.5)
    else:
        return jnp.zeros(out.shape[0], out.dtype)
    return _per_example(hits.astype(out.dtype))


class TrainState(NamedTuple):
    """Everything a train step reads and replaces; donated to the compiled step."""

    params: Any
    model_state: Any  # non-trainable collections (BatchNorm statistics), {} when none
    opt_state: Any
    step: jax.Array
    key: jax.Array


def apply_train(model, params, model_state: dict, x, rng):
    """A training-mode forward: (output, model_state updated by it), e.g. BatchNorm's running statistics."""
    return model.apply({"params": params, **model_state}, *as_tuple(x), train=True, rngs={"dropout": rng},
                       mutable=list(model_state))


def make_steps(model, loss_name: str, loss_fn, tx: optax.GradientTransformation):
    """The pure train step, a loop of train steps, and the eval step; the target jits them."""

    def train_step(state: TrainState, x_all, y_all, index):
        x, y = jax.tree.map(lambda a: a[index], x_all), y_all[index]  # x_all: one array, or a tuple (inputs)
        rng = jax.random.fold_in(state.key, state.step)

        def objective(params):
            out, model_state = apply_train(model, params, state.model_state, x, rng)
            return loss_fn(out, y).mean(), (out, model_state)

        (loss, (out, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = (loss * index.shape[0], correct_count(loss_name, out, y).sum())
        return state._replace(params=params, model_state=model_state, opt_state=opt_state, step=state.step + 1), metrics

    def train_loop(state: TrainState, x_all, y_all, indices):
        """``len(indices)`` steps in one compiled call (``lax.scan``): no dispatch or host sync between them."""
        state, (losses, hits) = jax.lax.scan(lambda s, index: train_step(s, x_all, y_all, index), state, indices)
        return state, (losses.sum(), hits.sum())

    def eval_step(variables, x_all, y_all, index, mask):
        x, y = jax.tree.map(lambda a: a[index], x_all), y_all[index]
        out = model.apply(variables, *as_tuple(x), train=False)
        return (loss_fn(out, y) * mask).sum(), (correct_count(loss_name, out, y) * mask).sum()

    return train_step, train_loop, eval_step
