"""JAX lowerings of the training vocabulary, and the pure, jit-compiled steps.

Losses follow torch (docs/PARITY.md §12): ``mse`` is the mean of squared errors, not
optax's half ``l2_loss``; cross-entropy's class axis is 1 (or -1) and its mean skips
``ignore_index``; ctc is torch's, length-normalized, with its infinities. Optimizers follow
torch.optim (§13): ``adam``'s weight decay is L2 added to the gradient before Adam,
``adamw``'s is decoupled, SGD momentum is optax's trace (equal to torch's with no
dampening).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax.traverse_util import flatten_dict, unflatten_dict

from dsl.schema import ChoiceSpec

from ..optimizer_state import sparse_names
from .ops.base import TOUCHED
from .schedule import StepRule, per_step


def _per_example(losses):
    return losses.reshape(losses.shape[0], -1).mean(1)


def _row_sums(values):
    return values.reshape(values.shape[0], -1).sum(1)


def _cross_entropy(p):
    """torch's cross entropy per row: the loss summed over the row's targets other than ``ignore_index``, and
    their count (the batch's loss is the sum of the first over the sum of the second, torch's 'mean')."""
    def rows(out, y):
        losses, kept = _token_losses(p, out, y, p.label_smoothing)
        return _row_sums(losses), _row_sums(kept.astype(jnp.int32))

    return rows


def _token_losses(p, out, y, label_smoothing: float):
    """Each target's cross entropy (0 where ignored), with the classes moved last, and which targets count."""
    logits = jnp.moveaxis(out, 1, -1) if p.class_axis == 1 else out
    kept = y != p.ignore_index
    labels = jnp.where(kept, y, 0)
    if label_smoothing:
        targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype), label_smoothing)
        losses = optax.softmax_cross_entropy(logits, targets)
    else:
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.where(kept, losses, 0.0), kept


def _ctc(p):
    """torch's F.ctc_loss per row through optax.ctc_loss, on the same batch-first logits.

    optax gives each sequence's loss, not divided by its length, and puts log(0) at
    -1e5, so an alignment the frames cannot hold (fewer frames than labels plus
    repeated neighbours) costs about 1e5 instead of torch's inf. It is found exactly
    and given torch's value: inf with a NaN gradient on the row's frames, or 0 and no
    gradient with ``zero_infinity``. Each row is then divided by its target length (at
    least 1): the batch mean of the rows is torch's reduction 'mean'.
    """
    def rows(out, y, input_lengths=None):
        frames = jnp.full(out.shape[:1], out.shape[1]) if input_lengths is None else input_lengths
        lengths = (y != p.blank).sum(1)
        feasible = frames >= lengths + ((y[:, 1:] == y[:, :-1]) & (y[:, 1:] != p.blank)).sum(1)
        padded = jnp.arange(out.shape[1])[None, :] >= frames[:, None]
        logits = out if p.zero_infinity else _nan_gradient(out, (~feasible[:, None] & ~padded)[..., None])
        losses = optax.ctc_loss(logits, padded.astype(out.dtype), y, (y == p.blank).astype(out.dtype),
                                blank_id=p.blank)
        losses = jnp.where(feasible, losses, 0.0 if p.zero_infinity else jnp.inf)
        return losses / jnp.maximum(lengths, 1).astype(out.dtype), None

    return rows


@jax.custom_vjp
def _nan_gradient(x, poisoned):
    """``x``, with a NaN gradient where ``poisoned``: torch's CTC gradient on the frames of an infinite loss."""
    return x


def _nan_gradient_fwd(x, poisoned):
    return x, poisoned


def _nan_gradient_bwd(poisoned, g):
    return jnp.where(poisoned, jnp.nan, g), None


_nan_gradient.defvjp(_nan_gradient_fwd, _nan_gradient_bwd)


def _elementwise(fn):
    return lambda p: lambda out, y: (_per_example(fn(out, y)), None)


JAX_LOSSES = {
    "cross_entropy": _cross_entropy,
    "ctc": _ctc,
    "mse": _elementwise(lambda out, y: jnp.square(out - y)),
    "bce_with_logits": _elementwise(optax.sigmoid_binary_cross_entropy),
}
"""Loss name -> (params -> ``rows(out, y, **columns)``): per row, the loss summed over the targets it counts and
their count, or the example's loss and None (then the batch's loss is the rows' mean); ``columns`` are the batch
columns the loss reads besides ``y`` (``Term.columns``)."""


def _with_l2(p, transform, mask=None):
    """torch's coupled weight decay: ``wd·p`` added to the gradient first (not to the weights ``mask`` exempts)."""
    return optax.chain(optax.add_decayed_weights(p.weight_decay, mask), transform) if p.weight_decay else transform


def sparse_adam(p, mask=None) -> optax.GradientTransformationExtraArgs:
    """torch's ``SparseAdam`` on the tables whose looked-up rows the step passes, optax's Adam on the other weights.

    ``update(grads, state, params, touched_rows=...)`` takes the ``TOUCHED`` tree: a
    [V] mask per sparse table, at the table's path in the params. The state is
    ``adam``'s (one ``count``, ``mu``, ``nu``), so it converts to torch's entries the
    same way. The update is a masked dense one, not sparse in memory: every row of a
    table is computed and the untouched ones keep their moments and weights.
    """
    adam = optax.scale_by_adam(p.betas[0], p.betas[1], p.eps)

    def update(grads, state, params=None, *, touched_rows=None, **extra_args):
        steps, new = adam.update(grads, state)
        updates, mu, nu = (_flat(t) for t in (jax.tree.map(lambda u: -p.lr * u, steps), new.mu, new.nu))
        g, m, v = (_flat(t) for t in (grads, state.mu, state.nu))
        for path, rows in _flat(touched_rows or {}).items():
            updates[path], mu[path], nu[path] = lazy_adam(p, g[path], m[path], v[path], rows, new.count)
        return unflatten_dict(updates), new._replace(mu=unflatten_dict(mu), nu=unflatten_dict(nu))

    return optax.GradientTransformationExtraArgs(adam.init, update)


def _flat(tree) -> dict:
    return flatten_dict(tree, keep_empty_nodes=True)


def lazy_adam(p, g, m, v, rows, count):
    """``torch.optim.SparseAdam``'s step on the rows ``rows`` marks, in its order of operations; the other rows keep
    their moments and weights. ``m``, ``v`` are the moments before the step, ``count`` the steps including it.

    Unlike Adam's, the step is ``lr·√(1-β2^t)/(1-β1^t) · m/(√v + eps)``: eps is added
    to the uncorrected ``√v``, so it weighs 1/√(1-β2^t) times less than Adam's (31.6
    times at the first step with β2 0.999).
    """
    b1, b2 = p.betas
    t = count.astype(g.dtype)
    m_new = m + (g - m) * (1 - b1)
    v_new = v + (g * g - v) * (1 - b2)
    step_size = p.lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    keep = rows.reshape(rows.shape + (1,) * (g.ndim - 1))
    return (jnp.where(keep, -step_size * (m_new / (jnp.sqrt(v_new) + p.eps)), 0),
            jnp.where(keep, m_new, m), jnp.where(keep, v_new, v))


JAX_OPTIMIZERS = {
    "sgd": lambda p, mask: _with_l2(p, optax.sgd(p.lr, momentum=p.momentum or None, nesterov=p.nesterov), mask),
    "adam": lambda p, mask: _with_l2(p, optax.adam(p.lr, b1=p.betas[0], b2=p.betas[1], eps=p.eps), mask),
    "adamw": lambda p, mask: optax.adamw(p.lr, b1=p.betas[0], b2=p.betas[1], eps=p.eps, weight_decay=p.weight_decay,
                                         mask=mask),
    "sparse_adam": sparse_adam,
}
"""Optimizer name -> (params, decay mask or None -> transformation). Plain sgd needs nothing for a sparse table:
its step on a row whose gradient is zero is zero, as torch's on a row its sparse gradient lacks."""


def _adam_cycled(p):
    """optax's ``scale_by_adam`` with beta1 given per update (one_cycle's cycled momentum)."""
    return per_step(lambda b1: optax.scale_by_adam(b1, p.betas[1], p.eps))


CYCLED_OPTIMIZERS = {
    "sgd": lambda p, mask: _with_l2(p, optax.chain(per_step(lambda m: optax.trace(m, p.nesterov)),
                                                   optax.scale_by_learning_rate(p.lr)), mask),
    "adam": lambda p, mask: _with_l2(p, optax.chain(_adam_cycled(p), optax.scale_by_learning_rate(p.lr)), mask),
    "adamw": lambda p, mask: optax.chain(_adam_cycled(p), optax.add_decayed_weights(p.weight_decay, mask),
                                         optax.scale_by_learning_rate(p.lr)),
}
"""``JAX_OPTIMIZERS``' chains with the momentum (SGD's trace decay, Adam's beta1) taken per update: sgd always
keeps a trace, as torch's SGD keeps a buffer once OneCycleLR gives it a momentum, even from ``momentum: 0``."""


def make_optimizer(optimizer: ChoiceSpec, *, scheduled: bool = False, cycled: bool = False,
                   decay_mask=None) -> optax.GradientTransformationExtraArgs:
    """The optimizer, taking the step's ``touched_rows`` (only ``sparse_adam`` reads them). ``scheduled``: built
    with lr 1, the step scales its updates (``schedule.py``); ``cycled``: it takes a ``momentum`` per update;
    ``decay_mask``: the weights its weight decay applies to (``no_decay``), None for all."""
    params = optimizer.params.model_copy(update={"lr": 1.0}) if scheduled else optimizer.params
    table = CYCLED_OPTIMIZERS if cycled else JAX_OPTIMIZERS
    return optax.with_extra_args_support(table[optimizer.name](params, decay_mask))


def _predicted(loss: ChoiceSpec, out, y):
    """Predicted and true labels: the argmax over the class axis, or the logit's sign for bce_with_logits."""
    if loss.name == "cross_entropy":
        return jnp.argmax(out, axis=loss.params.class_axis), y
    return out > 0, y > 0.5


def _accuracy(loss: ChoiceSpec, out, y):
    """Correct predictions per row: a count over the targets cross_entropy counts, or the example's share of
    correct positions (bce_with_logits)."""
    predicted, true = _predicted(loss, out, y)
    if loss.name == "cross_entropy":
        return _row_sums(((predicted == true) & (y != loss.params.ignore_index)).astype(out.dtype))
    return _per_example((predicted == true).astype(out.dtype))


def _iou(loss: ChoiceSpec, out, y):
    """Each example's foreground intersection over union (see the torch lowering)."""
    predicted, true = (t.reshape(t.shape[0], -1) != 0 for t in _predicted(loss, out, y))
    inter, union = ((m.sum(1)).astype(out.dtype) for m in (predicted & true, predicted | true))
    return jnp.where(union > 0, inter / jnp.maximum(union, 1), 1.0)


def _perplexity(loss: ChoiceSpec, out, y):
    """Each row's cross entropy summed over its counted targets, without label smoothing (see the torch lowering)."""
    return _row_sums(_token_losses(loss.params, out, y, 0.0)[0])


def masked_sum(values, mask):
    """The sum of per-row values over the rows ``mask`` keeps, so an infinite loss on a padding row adds nothing."""
    return jnp.where(mask > 0, values * mask, 0.0).sum()


def _example_mean(fn):
    """A metric that is each example's mean of ``fn(out, y)`` over its positions (see the torch lowering)."""
    return lambda loss, out, y: _per_example(fn(out, y))


JAX_METRICS = {"accuracy": _accuracy, "iou": _iou, "perplexity": _perplexity,
               "rmse": _example_mean(optax.squared_error), "mae": _example_mean(lambda out, y: jnp.abs(out - y)),
               "logloss": _example_mean(optax.sigmoid_binary_cross_entropy)}
"""Metric name -> (loss spec, outputs, targets) -> one value per row, whose sum is the batch's
(``dsl.training.METRICS`` says what the driver divides it by); auc is no sum (``backends/split_metrics.py``)."""


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
    back its part of the model state (BatchNorm's running statistics). A model with
    sparse tables also writes the rows they looked up (``TOUCHED``, OR-ed over the
    calls until the train step takes it out: one phase's calls), for its optimizer.
    """
    sparse = {m for m, module in models.items() if sparse_names(module.graph)}

    def apply(model, params, model_state, inputs, train, rng):
        wrap = (lambda x: {model: x}) if model else (lambda x: x)
        collections = {c: wrap(sub(v, model)) for c, v in model_state.items() if not model or model in v}
        variables = {"params": wrap(sub(params, model)), **collections}
        if not train:
            return models[model].apply(variables, *inputs, train=False), model_state
        mutable = list(collections) + ([TOUCHED] if model in sparse and TOUCHED not in collections else [])
        if not mutable:
            return models[model].apply(variables, *inputs, train=True, rngs={"dropout": rng}), model_state
        out, updated = models[model].apply(variables, *inputs, train=True, rngs={"dropout": rng}, mutable=mutable)
        return out, {**model_state, **{c: put_sub(model_state.get(c, {}), model, sub(v, model))
                                       for c, v in updated.items()}}

    return apply


def take_touched(model_state: dict, model: str) -> tuple[dict, dict]:
    """The model state without ``TOUCHED``, and the rows ``model``'s sparse tables looked up ({} when none)."""
    touched = model_state.get(TOUCHED, {})
    return {c: v for c, v in model_state.items() if c != TOUCHED}, touched.get(model, {}) if model else touched


def make_steps(phases, evaluate, txs: dict, rules: dict[str, StepRule] | None = None):
    """The pure train step (every phase of the objective on one batch), a loop of them, the eval step; ``rules``
    are what each model's step does around its optimizer (clipping, scheduled lr and momentum)."""
    rules = rules or {}

    def train_step(state: TrainState, data, index):
        """Each phase's optimizer gets the rows its sparse tables looked up in that phase (``take_touched``)."""
        batch = {k: v[index] for k, v in data.items()}
        rng = jax.random.fold_in(state.key, state.step)
        params, model_state, opt_state, metrics = state.params, state.model_state, dict(state.opt_state), {}
        for model, phase in phases:
            def objective(part, params=params, model_state=model_state, phase=phase, model=model):
                return phase(put_sub(params, model, part), model_state, batch, rng)

            part = sub(params, model)
            (_, (sums, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(part)
            model_state, touched = take_touched(model_state, model)
            rule = rules.get(model, StepRule())
            updates, opt_state[model] = txs[model].update(rule.clip(grads), opt_state[model], part,
                                                          touched_rows=touched, **rule.extra_args(state.step))
            params = put_sub(params, model, optax.apply_updates(part, rule.scale(updates, state.step)))
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
