import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from dsl import Node
from dsl.ops.conv import conv2d_padding

from . import conv_gemm
from .base import JaxOp, torch_kernel_init, torch_uniform_bias

# torch padding_mode -> numpy/jnp.pad mode
_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _conv2d(node: Node, x, *, train: bool):
    """NHWC convolution with torch's explicit padding (never Flax's 'SAME', see docs/PARITY.md §2)."""
    p = node.params
    padding = conv2d_padding(p)
    if p.padding_mode != "zeros":
        x = jnp.pad(x, ((0, 0), *padding, (0, 0)), mode=_PAD_MODES[p.padding_mode])
        padding = ((0, 0), (0, 0))
    fan_in = p.in_channels // p.groups * int(np.prod(p.kernel_size))
    conv = nn.Conv(p.out_channels, p.kernel_size, strides=p.stride, padding=padding, kernel_dilation=p.dilation,
                   feature_group_count=p.groups, use_bias=p.bias, kernel_init=torch_kernel_init(),
                   bias_init=torch_uniform_bias(fan_in), name=node.local_name,
                   conv_general_dilated=conv_gemm.conv_general_dilated if "gemm_weight_grad" in node.hints else None)
    return conv(x)


def _to_flax(w, received):
    """torch OIHW weight -> Flax HWIO kernel."""
    params = {"kernel": np.asarray(w["weight"]).transpose(2, 3, 1, 0)}
    if "bias" in w:
        params["bias"] = w["bias"]
    return {"params": params}


def _from_flax(v, received):
    state = {"weight": np.asarray(v["params"]["kernel"]).transpose(3, 2, 0, 1)}
    if "bias" in v["params"]:
        state["bias"] = v["params"]["bias"]
    return state


LOWERINGS = {"conv2d": JaxOp(_conv2d, "channels_last", _to_flax, _from_flax)}
