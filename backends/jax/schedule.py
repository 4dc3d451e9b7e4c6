"""What a JAX train step does around each optimizer's update: torch's clipping, the scheduled lr, cycled momentum.

Scheduled optimizers are built with lr 1 and their updates multiplied by the step's
lr inside the jitted step (``StepRule.scale``). That is exact because every update
dslc has is linear in lr, as in torch: adam's and sgd's final ``scale(-lr)``, adamw's
decoupled decay ``-lr·(adam + wd·p)`` (torch: ``p·(1 - lr·wd)`` then the Adam step),
SGD's momentum trace (torch keeps its buffer without lr), sparse_adam's step size. With
lr 1 the chain's last scale is ``-1``, exact in floats, so multiplying by a constant
lr afterwards gives the unscheduled step's very numbers. one_cycle's momentum enters
as an extra argument of the update (``momentum``): the optax transformation is made
with the step's value, as torch's Adam reads ``betas[0]`` (and SGD ``momentum``) from
its param group each step, for the moment and Adam's bias correction alike.

Clipping is torch's, not optax's: ``clip_by_global_norm`` has no epsilon, torch's
``clip_grad_norm_`` scales by ``max_norm / (total_norm + 1e-6)`` clamped to 1, always
(a factor of exactly 1 below the threshold), the norm taken as the norm of the
per-tensor norms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dsl import Graph
from dsl.ops import FLOAT
from dsl.schema import TrainSpec

from ..schedules import StepSchedule
from .model import variables_from_state

TORCH_CLIP_EPS = 1e-6
"""torch's ``clip_grad_norm_`` adds it to the total norm before dividing."""


@dataclass(frozen=True)
class StepRule:
    """One model's step around its optimizer: ``clip`` its gradients, pass ``extra_args`` (the cycled momentum)
    to the update, ``scale`` the update by the step's lr. Each is the identity where the spec asks for nothing,
    so an unscheduled, unclipped step traces exactly the operations it always did."""

    clip: Callable = lambda grads: grads
    lr: jax.Array | None = None  # the lr of every step, in the model's dtype
    momentum: jax.Array | None = None

    def extra_args(self, step) -> dict:
        return {} if self.momentum is None else {"momentum": self.momentum[step]}

    def scale(self, updates, step):
        return updates if self.lr is None else jax.tree.map(lambda u: u * self.lr[step].astype(u.dtype), updates)


def step_rule(train: TrainSpec, schedule: StepSchedule | None, dtype) -> StepRule:
    """The model's rule from the spec's clipping and its lr table (None: unscheduled)."""
    lr = None if schedule is None else jnp.asarray(schedule.lr, dtype)
    momentum = None if schedule is None or schedule.momentum is None else jnp.asarray(schedule.momentum, dtype)
    return StepRule(_clip(train), lr, momentum)


def _clip(train: TrainSpec) -> Callable:
    if train.clip_grad_norm is not None:
        return lambda grads: clip_grad_norm(grads, train.clip_grad_norm)
    if train.clip_grad_value is not None:
        return lambda grads: jax.tree.map(lambda g: jnp.clip(g, -train.clip_grad_value, train.clip_grad_value), grads)
    return lambda grads: grads


def clip_grad_norm(grads, max_norm: float):
    """torch's ``clip_grad_norm_`` (norm_type 2): every gradient times ``min(max_norm / (total + 1e-6), 1)``,
    ``total`` the L2 norm of the per-tensor L2 norms."""
    leaves = jax.tree.leaves(grads)
    if not leaves:
        return grads
    total = jnp.linalg.norm(jnp.stack([jnp.linalg.norm(g.ravel()) for g in leaves]))
    coef = jnp.minimum(max_norm / (total + TORCH_CLIP_EPS), 1.0)
    return jax.tree.map(lambda g: g * coef.astype(g.dtype), grads)


def per_step(make: Callable) -> optax.GradientTransformationExtraArgs:
    """``make(momentum)``'s transformation, remade at each update with the ``momentum`` extra argument (one_cycle's
    value for the step); its state is ``make``'s own, so checkpoints read as the unscheduled optimizer's."""
    def update(updates, state, params=None, *, momentum, **extra_args):
        return make(momentum).update(updates, state, params)

    return optax.GradientTransformationExtraArgs(make(0.0).init, update)


def decay_mask(graph: Graph, model: str, exempt: set[str]):
    """A tree shaped like ``model``'s params: True where its weight decays, False for the ``exempt`` canonical
    names. Found by converting marker weights (1 decays, 0 not) the way weights are converted, so it follows
    every layout the converters know; a Flax array mixing both refuses."""
    markers = {k: np.full(w.shape, k not in exempt and w.trainable, np.float32 if w.dtype == FLOAT else w.dtype)
               for k, w in graph.state_dict_spec().items()}
    params = variables_from_state(graph, markers)["params"]
    params = params[model] if model else params
    return jax.tree.map(lambda leaf: _one_marker(np.asarray(leaf)), params)


def _one_marker(leaf: np.ndarray) -> bool:
    if leaf.size and leaf.min() != leaf.max():
        raise ValueError("no_decay splits a Flax array between decayed and exempt weights; match whole layers")
    return bool(leaf.size and leaf.max() > 0)
