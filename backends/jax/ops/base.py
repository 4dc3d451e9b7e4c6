"""What a JAX lowering declares: how to apply the op, in which layout, and its weight layout.

Layouts are planned by ``backends/jax/layout.py``: 4-D activations stay channels-last
(NHWC) between the ops that want it, so a conv/relu/pool stack runs without
transposes; canonical (NCHW) order is restored at the model's boundary and before
any op that counts axes the torch way (``softmax``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

Layout = Literal["channels_first", "channels_last", "any", "features"]
Canonical = dict[str, np.ndarray]  # one layer's state-dict entries by suffix: {"weight": ..., "bias": ...}
FlaxVars = dict[str, dict[str, np.ndarray]]  # one layer's Flax variables by collection: {"params": {"kernel": ...}}

TOUCHED = "touched_rows"
"""The Flax collection where a sparse table reports, in a training step, the rows the step looked up: a bool [V]
mask under the table's own path and name (``{'user': {'embedding': mask}}`` beside ``params``' table), which the
train step hands to the optimizer (``sparse_adam``). JAX's gradient of a gather is dense, zero on the rows not
looked up but also on looked-up rows whose gradient sums to 0, so which rows torch's sparse gradient would hold
can only come from the ids."""


def no_weights_to_flax(canonical: Canonical, received) -> FlaxVars:
    return {}


def no_weights_from_flax(variables: FlaxVars, received) -> Canonical:
    return {}


@dataclass(frozen=True)
class JaxOp:
    """The JAX lowering of one op.

    Attributes:
        apply: ``apply(node, *inputs, train) -> output``; runs inside the Flax model's
            ``@compact`` call, inside the Flax scopes of the node's dotted name
            (``layer1`` then ``0`` for ``layer1.0.conv1``), so it may create one Flax
            submodule, named ``node.local_name`` (``conv1``).
        layout: the layout ``apply`` expects 4-D inputs in; ``any`` for ops that do not
            care (element-wise), whose output keeps the input's layout; ``features``
            for ops reading only the last axis, which also take (H, W, C)-ordered
            flattened features.
        to_flax: ``to_flax(canonical, received)``: canonical (torch) weights of one layer
            -> its Flax variables, given the layouts its inputs arrive in.
        from_flax: the inverse of ``to_flax``.
        place: overrides the placement rule of ``layout`` (see ``layout.place``).
        per_replica: ``apply`` also takes ``replicas``, the data-parallel replicas whose
            batch shards it treats separately (BatchNorm's statistics, ``FlaxModel.replicas``).
    """

    apply: Callable[..., jax.Array]
    layout: Layout
    to_flax: Callable[[Canonical, tuple], FlaxVars] = no_weights_to_flax
    from_flax: Callable[[FlaxVars, tuple], Canonical] = no_weights_from_flax
    place: Callable | None = None
    per_replica: bool = False


def torch_uniform_bias(fan_in: int):
    """Flax initializer for torch's default bias, U(±1/√fan_in); Flax passes no fan_in to bias_init."""
    bound = 1 / np.sqrt(fan_in)

    def init(key, shape, dtype=np.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_kernel_init():
    """torch's kaiming_uniform(a=√5), i.e. U(±1/√fan_in), over a Flax (…, in, out) kernel."""
    return jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def channels_first_io(apply: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """A channels-last ``apply`` made to take and give [N, C, *spatial], for ops of any rank.

    The layout plan holds only 4-D activations channels-last (``layout.place``), so a
    1-D op ([N, C, L]) receives channels-first and moves its channel axis itself.
    """
    def moved(node, x, *, train: bool):
        return jnp.moveaxis(apply(node, jnp.moveaxis(x, 1, -1), train=train), -1, 1)

    return moved
