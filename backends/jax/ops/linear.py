import numpy as np
from flax import linen as nn

from dsl import Node

from .base import JaxOp, torch_kernel_init, torch_uniform_bias


def _linear(node: Node, x, *, train: bool):
    p = node.params
    dense = nn.Dense(p.out_features, use_bias=p.bias, kernel_init=torch_kernel_init(),
                     bias_init=torch_uniform_bias(p.in_features), name=node.name)
    return dense(x)


def _to_flax(w):
    """torch (out, in) weight -> Flax (in, out) kernel."""
    params = {"kernel": np.asarray(w["weight"]).T}
    if "bias" in w:
        params["bias"] = w["bias"]
    return {"params": params}


def _from_flax(v):
    state = {"weight": np.asarray(v["params"]["kernel"]).T}
    if "bias" in v["params"]:
        state["bias"] = v["params"]["bias"]
    return state


LOWERINGS = {
    "linear": JaxOp(_linear, "channels_first", _to_flax, _from_flax),
    "identity": JaxOp(lambda node, x, *, train: x, "any"),
}
