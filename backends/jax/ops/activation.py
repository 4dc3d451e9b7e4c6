"""Activations with torch's semantics: exact GELU unless asked for tanh (jax.nn.gelu defaults to tanh)."""

import jax
import jax.numpy as jnp

from .base import JaxOp


def _elementwise(fn) -> JaxOp:
    return JaxOp(lambda node, x, *, train: fn(x, node.params), "any")


LOWERINGS = {
    "relu": _elementwise(lambda x, p: jax.nn.relu(x)),
    "leaky_relu": _elementwise(lambda x, p: jax.nn.leaky_relu(x, p.negative_slope)),
    "gelu": _elementwise(lambda x, p: jax.nn.gelu(x, approximate=p.approximate == "tanh")),
    "tanh": _elementwise(lambda x, p: jnp.tanh(x)),
    "sigmoid": _elementwise(lambda x, p: jax.nn.sigmoid(x)),
    "silu": _elementwise(lambda x, p: jax.nn.silu(x)),
    "softmax": JaxOp(lambda node, x, *, train: jax.nn.softmax(x, axis=node.params.dim), "channels_first"),
    "log_softmax": JaxOp(lambda node, x, *, train: jax.nn.log_softmax(x, axis=node.params.dim), "channels_first"),
}
