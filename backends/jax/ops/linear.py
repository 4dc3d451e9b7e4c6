import numpy as np
from flax import linen as nn

from dsl import Node

from .base import JaxOp, torch_kernel_init, torch_uniform_bias


def _linear(node: Node, x, *, train: bool):
    p = node.params
    dense = nn.Dense(p.out_features, use_bias=p.bias, kernel_init=torch_kernel_init(),
                     bias_init=torch_uniform_bias(p.in_features), name=node.local_name)
    return dense(x)


def _to_flax(w, received):
    """torch (out, in) weight -> Flax (in, out) kernel, rows in (H, W, C) order after an NHWC flatten."""
    kernel = np.asarray(w["weight"]).T
    if received[0].kind == "flat_hwc":  # docs/PARITY.md §4: W.reshape(O,C,H,W).transpose(2,3,1,0).reshape(HWC, O)
        c, h, wd = received[0].chw
        kernel = kernel.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(h * wd * c, -1)
    params = {"kernel": kernel}
    if "bias" in w:
        params["bias"] = w["bias"]
    return {"params": params}


def _from_flax(v, received):
    kernel = np.asarray(v["params"]["kernel"])
    if received[0].kind == "flat_hwc":
        c, h, wd = received[0].chw
        kernel = kernel.reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(c * h * wd, -1)
    state = {"weight": kernel.T}
    if "bias" in v["params"]:
        state["bias"] = v["params"]["bias"]
    return state


class AddBias(nn.Module):
    """x + b with one learned scalar b, zeros (torch's AddBias)."""

    @nn.compact
    def __call__(self, x):
        return x + self.param("bias", nn.initializers.zeros, (1,), x.dtype)


LOWERINGS = {
    "linear": JaxOp(_linear, "features", _to_flax, _from_flax),
    "identity": JaxOp(lambda node, x, *, train: x, "any"),
    "add_bias": JaxOp(lambda node, x, *, train: AddBias(name=node.local_name)(x), "any",
                      lambda w, received: {"params": {"bias": w["bias"]}},
                      lambda v, received: {"bias": v["params"]["bias"]}),
}
