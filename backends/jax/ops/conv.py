"""torch convolutions in Flax: Conv1d and Conv2d through one channels-last lowering, and ConvTranspose2d.

The layout plan (backends/jax/layout.py) holds only 4-D activations channels-last, so
``conv2d`` receives NHWC, while ``conv1d`` receives [N, C, L] and moves its channel
axis last itself (``channels_first_io``); past that, both run the same code over any
number of spatial axes.
"""

import math

import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

from dsl import Node
from dsl.ops.conv import conv_padding

from . import conv_gemm
from .base import JaxOp, channels_first_io, torch_kernel_init, torch_uniform_bias

# torch padding_mode -> numpy/jnp.pad mode
_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _conv(node: Node, x, *, train: bool):
    """Channels-last convolution with torch's explicit padding (never Flax's 'SAME', see docs/PARITY.md §2)."""
    p = node.params
    padding = conv_padding(p)
    if p.padding_mode != "zeros":
        x = jnp.pad(x, ((0, 0), *padding, (0, 0)), mode=_PAD_MODES[p.padding_mode])
        padding = tuple((0, 0) for _ in padding)
    fan_in = p.in_channels // p.groups * math.prod(p.kernel_size)
    conv = nn.Conv(p.out_channels, p.kernel_size, strides=p.stride, padding=padding, kernel_dilation=p.dilation,
                   feature_group_count=p.groups, use_bias=p.bias, kernel_init=torch_kernel_init(),
                   bias_init=torch_uniform_bias(fan_in), name=node.local_name,
                   conv_general_dilated=conv_gemm.conv_general_dilated if "gemm_weight_grad" in node.hints else None)
    return conv(x)


def _to_flax(w, received):
    """torch (O, I, *spatial) weight -> Flax (*spatial, I, O) kernel: OIHW -> HWIO, OIL -> LIO (PARITY.md §2)."""
    weight = np.asarray(w["weight"])
    params = {"kernel": weight.transpose(*range(2, weight.ndim), 1, 0)}
    if "bias" in w:
        params["bias"] = w["bias"]
    return {"params": params}


def _from_flax(v, received):
    kernel = np.asarray(v["params"]["kernel"])
    state = {"weight": kernel.transpose(kernel.ndim - 1, kernel.ndim - 2, *range(kernel.ndim - 2))}
    if "bias" in v["params"]:
        state["bias"] = v["params"]["bias"]
    return state


class TorchConvTranspose2d(nn.Module):
    """torch.nn.ConvTranspose2d over NHWC, as the plain convolution it is (docs/PARITY.md §3, rule B).

    The input is dilated by the stride and padded by d(k-1)-p at the start and
    d(k-1)-p+output_padding at the end (negative: cropped), then convolved with the
    spatially flipped kernel. The kernel is stored flipped, (kh, kw, in, out/groups):
    with one group, the layout of ``flax.linen.ConvTranspose(transpose_kernel=False)``.
    Flax's own layer is not used: it has no groups, and its 'SAME' padding differs
    from torch's output_padding (Δ 2.04 for k3 s2 p1 op1, PARITY.md §3).
    """

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    use_bias: bool

    @nn.compact
    def __call__(self, x):
        # torch's fan_in of a ConvTranspose weight is its dim 1 times the window: out/groups·kh·kw (PARITY.md §1)
        per_group = self.features // self.groups
        init = torch_uniform_bias(per_group * math.prod(self.kernel_size))  # U(±1/√fan_in), any shape
        kernel = self.param("kernel", init, (*self.kernel_size, x.shape[-1], per_group))
        bias = self.param("bias", init, (self.features,)) if self.use_bias else None
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
        y = lax.conv_general_dilated(x, _grouped(kernel, self.groups), (1, 1), self._pads(),
                                     lhs_dilation=self.strides, rhs_dilation=self.dilation,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=self.groups)
        return y if bias is None else y + bias

    def _pads(self) -> tuple[tuple[int, int], ...]:
        return tuple((d * (k - 1) - q, d * (k - 1) - q + op)
                     for k, q, op, d in zip(self.kernel_size, self.padding, self.output_padding, self.dilation))


def _grouped(kernel, groups: int):
    """(kh, kw, in, out/g) -> (kh, kw, in/g, out), the kernel of a grouped convolution: group i reads
    input channels [i·in/g, (i+1)·in/g) and writes output channels [i·out/g, (i+1)·out/g)."""
    kh, kw, cin, per_group = kernel.shape
    split = kernel.reshape(kh, kw, groups, cin // groups, per_group)
    return split.transpose(0, 1, 3, 2, 4).reshape(kh, kw, cin // groups, groups * per_group)


def _conv_transpose2d(node: Node, x, *, train: bool):
    p = node.params
    return TorchConvTranspose2d(p.out_channels, p.kernel_size, p.stride, p.padding, p.output_padding, p.dilation,
                                p.groups, p.bias, name=node.local_name)(x)


def _transpose_to_flax(w, received):
    """torch (in, out/g, kh, kw) weight -> the flipped Flax kernel (kh, kw, in, out/g) (PARITY.md §3, rule B)."""
    params = {"kernel": np.asarray(w["weight"])[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)}
    if "bias" in w:
        params["bias"] = w["bias"]
    return {"params": params}


def _transpose_from_flax(v, received):
    state = {"weight": np.asarray(v["params"]["kernel"]).transpose(2, 3, 0, 1)[:, :, ::-1, ::-1]}
    if "bias" in v["params"]:
        state["bias"] = v["params"]["bias"]
    return state


LOWERINGS = {
    "conv2d": JaxOp(_conv, "channels_last", _to_flax, _from_flax),
    "conv1d": JaxOp(channels_first_io(_conv), "channels_first", _to_flax, _from_flax),
    "conv_transpose2d": JaxOp(_conv_transpose2d, "channels_last", _transpose_to_flax, _transpose_from_flax),
}
