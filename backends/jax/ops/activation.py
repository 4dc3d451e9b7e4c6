"""Activations with torch's semantics: exact GELU unless asked for tanh (jax.nn.gelu defaults to tanh).

Where jax.nn's function differs from torch's, in values or in the gradient torch's
autograd formula gives, the op is written here with torch's formula (docs/PARITY.md §7
lists the activations; ``tests/test_activations.py`` checks the kinks and thresholds
in float64, where these differences show).
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from dsl import Node

from .base import JaxOp

TORCH_ONE_SIXTH = float(np.float32(1 / 6))
"""torch's hardsigmoid_backward multiplies by ``1.0f / 6.0f``, a float32 constant, in float64 too: its gradient
is 0.16666667163 where jax.nn.hard_sigmoid's is 1/6 (5.0e-9 apart, measured on torch 2.14.1)."""


def _elementwise(fn) -> JaxOp:
    return JaxOp(lambda node, x, *, train: fn(x, node.params), "any")


def _with_derivative(value, derivative):
    """``value`` whose gradient is ``derivative(x)·g``: torch's autograd formula, not the derivative of JAX's code."""
    fn = jax.custom_jvp(value)
    fn.defjvp(lambda primals, tangents: (value(*primals), derivative(*primals) * tangents[0]))
    return fn


def _relu6_plus_3(x):
    return jnp.minimum(jnp.maximum(x + 3, 0), 6)


hardsigmoid = _with_derivative(
    lambda x: _relu6_plus_3(x) / 6,
    lambda x: jnp.where((x > -3) & (x < 3), TORCH_ONE_SIXTH, 0).astype(x.dtype))
"""0 at x = ±3, as torch's (jax.nn.hard_sigmoid too, through relu6's gradient)."""

hardswish = _with_derivative(
    lambda x: x * _relu6_plus_3(x) / 6,
    lambda x: jnp.where(x <= -3, 0, jnp.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype))
"""torch computes (x·relu6(x + 3)) / 6 in that order: x·(relu6(x + 3) / 6), jax.nn.hard_swish's, differs in the
last bit (float64: 22,567 of 100,001 points of [-5, 5]). The gradient is 0 at -3 and 1 at 3 (hardswish_backward)."""


def elu(x, alpha: float):
    """alpha·expm1(x) for x <= 0, with torch's gradient there, alpha·exp(x) (alpha at x = 0, as jax.nn.elu's).

    jax.nn.elu's gradient is expm1(x) + 1, which cancels: at x = -30 it is 9.35918e-14
    against exp(-30) = 9.35762e-14 (1.7e-4 relative, float64).
    """
    def value(x):
        return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))

    def derivative(x):
        return jnp.where(x > 0, 1, alpha * jnp.exp(jnp.minimum(x, 0))).astype(x.dtype)

    return _with_derivative(value, derivative)(x)


def softplus(x, beta: float, threshold: float):
    """torch's: x where beta·x > threshold, else log1p(exp(beta·x)) / beta, with gradient z / (z + 1), z = exp(beta·x).

    jax.nn.softplus has no threshold: at x = 20.5 it is 1.25e-9 above torch's value and its
    gradient 1.25e-9 below torch's 1 (float64).
    """
    def value(x):
        return jnp.where(x * beta > threshold, x, jnp.log1p(jnp.exp(x * beta)) / beta)

    def derivative(x):
        z = jnp.exp(x * beta)
        return jnp.where(x * beta > threshold, 1, z / (z + 1)).astype(x.dtype)

    return _with_derivative(value, derivative)(x)
class TorchPReLU(nn.Module):
    """torch.nn.PReLU: ``num_parameters`` slopes (Flax's PReLU has one, starting at 0.01; PARITY.md §7)."""

    num_parameters: int
    init: float

    @nn.compact
    def __call__(self, x):
        slope = self.param("negative_slope", nn.initializers.constant(self.init), (self.num_parameters,), x.dtype)
        if self.num_parameters > 1:  # one per channel: NHWC's last axis for images as planned, else dim 1
            axis = x.ndim - 1 if x.ndim == 4 else 1
            slope = slope.reshape([self.num_parameters if a == axis else 1 for a in range(x.ndim)])
        return jnp.where(x > 0, x, slope * x)  # torch's x > 0 test: at 0 the gradient is the slope's


def _prelu(node: Node, x, *, train: bool):
    return TorchPReLU(node.params.num_parameters, node.params.init, name=node.local_name)(x)


LOWERINGS = {
    "relu": _elementwise(lambda x, p: jax.nn.relu(x)),
    "leaky_relu": _elementwise(lambda x, p: jax.nn.leaky_relu(x, p.negative_slope)),
    "gelu": _elementwise(lambda x, p: jax.nn.gelu(x, approximate=p.approximate == "tanh")),
    "tanh": _elementwise(lambda x, p: jnp.tanh(x)),
    "sigmoid": _elementwise(lambda x, p: jax.nn.sigmoid(x)),
    "silu": _elementwise(lambda x, p: jax.nn.silu(x)),
    "relu6": _elementwise(lambda x, p: jax.nn.relu6(x)),  # its custom gradient is torch's: 0 at x = 0 and 6
    "hardsigmoid": _elementwise(lambda x, p: hardsigmoid(x)),
    "hardswish": _elementwise(lambda x, p: hardswish(x)),
    "elu": _elementwise(lambda x, p: elu(x, p.alpha)),
    "softplus": _elementwise(lambda x, p: softplus(x, p.beta, p.threshold)),
    "prelu": JaxOp(_prelu, "channels_last",
                   lambda w, received: {"params": {"negative_slope": w["weight"]}},
                   lambda v, received: {"weight": np.asarray(v["params"]["negative_slope"])}),
    "softmax": JaxOp(lambda node, x, *, train: jax.nn.softmax(x, axis=node.params.dim), "channels_first"),
    "log_softmax": JaxOp(lambda node, x, *, train: jax.nn.log_softmax(x, axis=node.params.dim), "channels_first"),
}
