"""What a JAX lowering declares: how to apply the op, in which layout, and its weight layout.

Inside the Flax model, 4-D activations may be kept channels-last (NHWC), the layout
XLA's convolutions and pools want; the model moves a value between layouts only
when the next op asks for the other one, so a conv/relu/pool stack runs without
transposes. Canonical layout (NCHW) is restored at the model's boundary and before
any op that counts axes the torch way (``flatten``, ``softmax``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import jax
import numpy as np

Layout = Literal["channels_first", "channels_last", "any"]
Canonical = dict[str, np.ndarray]  # one layer's state-dict entries by suffix: {"weight": ..., "bias": ...}
FlaxVars = dict[str, dict[str, np.ndarray]]  # one layer's Flax variables by collection: {"params": {"kernel": ...}}


def no_weights_to_flax(canonical: Canonical) -> FlaxVars:
    return {}


def no_weights_from_flax(variables: FlaxVars) -> Canonical:
    return {}


@dataclass(frozen=True)
class JaxOp:
    """The JAX lowering of one op.

    Attributes:
        apply: ``apply(node, *inputs, train) -> output``; runs inside the Flax model's
            ``@compact`` call, so it may create Flax submodules named ``node.name``.
        layout: the layout ``apply`` expects 4-D inputs in; ``any`` for ops that do not
            care (element-wise), whose output keeps the input's layout.
        to_flax: canonical (torch) weights of one layer -> its Flax variables.
        from_flax: the inverse of ``to_flax``.
    """

    apply: Callable[..., jax.Array]
    layout: Layout
    to_flax: Callable[[Canonical], FlaxVars] = no_weights_to_flax
    from_flax: Callable[[FlaxVars], Canonical] = no_weights_from_flax


def torch_uniform_bias(fan_in: int):
    """Flax initializer for torch's default bias, U(±1/√fan_in); Flax passes no fan_in to bias_init."""
    bound = 1 / np.sqrt(fan_in)

    def init(key, shape, dtype=np.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_kernel_init():
    """torch's kaiming_uniform(a=√5), i.e. U(±1/√fan_in), over a Flax (…, in, out) kernel."""
    return jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
