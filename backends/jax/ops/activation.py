"""Activations with torch's semantics: exact GELU unless asked for tanh (jax.nn.gelu defaults to tanh)."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from dsl import Node

from .base import JaxOp


def _elementwise(fn) -> JaxOp:
    return JaxOp(lambda node, x, *, train: fn(x, node.params), "any")


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
    "prelu": JaxOp(_prelu, "channels_last",
                   lambda w, received: {"params": {"negative_slope": w["weight"]}},
                   lambda v, received: {"weight": np.asarray(v["params"]["negative_slope"])}),
    "softmax": JaxOp(lambda node, x, *, train: jax.nn.softmax(x, axis=node.params.dim), "channels_first"),
    "log_softmax": JaxOp(lambda node, x, *, train: jax.nn.log_softmax(x, axis=node.params.dim), "channels_first"),
}
