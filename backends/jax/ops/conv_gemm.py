"""A convolution whose weight gradient is one matrix product over explicit patches.

For a convolution with few input values per window (the first layer of an image
model: 1 or 3 channels, 3×3), XLA's CPU backend computes the weight gradient as a
convolution over transposed copies of the output gradient; here it is
``patches(kh·kw·Cin, N·Ho·Wo) @ dY(N·Ho·Wo, Cout)``, which reads the NHWC output
gradient as it lies. The forward pass and the input gradient stay XLA's own. Used
when the ``conv_weight_grad_gemm`` pass marks a convolution; same values, same
gradients (the parity tests run both formulations).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None, **unused):
    """Drop-in for ``lax.conv_general_dilated`` as flax's ``nn.Conv`` calls it (NHWC, one group)."""
    if tuple(lhs_dilation or (1, 1)) != (1, 1) or feature_group_count != 1:
        raise ValueError("the patch-GEMM weight gradient handles plain convolutions with one group only")
    config = (tuple(window_strides), tuple(tuple(p) for p in padding), tuple(rhs_dilation or (1, 1)), precision)
    return _conv(lhs, rhs, config)


def _plain(x, kernel, config):
    strides, padding, dilation, precision = config
    return lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation, dimension_numbers=_NHWC,
                                    precision=precision)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x, kernel, config):
    return _plain(x, kernel, config)


def _forward(x, kernel, config):
    return _plain(x, kernel, config), (x, kernel)


def _backward(config, residuals, grad):
    x, kernel = residuals
    strides, padding, dilation, precision = config
    kh, kw, cin, cout = kernel.shape
    n, ho, wo, _ = grad.shape
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    taps = [x[:, i * dilation[0]: i * dilation[0] + (ho - 1) * strides[0] + 1: strides[0],
              j * dilation[1]: j * dilation[1] + (wo - 1) * strides[1] + 1: strides[1], :]
            for i in range(kh) for j in range(kw)]
    patches = jnp.stack(taps).transpose(0, 4, 1, 2, 3).reshape(kh * kw * cin, n * ho * wo)
    kernel_grad = jnp.matmul(patches, grad.reshape(n * ho * wo, cout), precision=precision)
    _, input_vjp = jax.vjp(lambda inputs: _plain(inputs, kernel, (strides, padding, dilation, precision)),
                           residuals[0])
    return input_vjp(grad)[0], kernel_grad.reshape(kh, kw, cin, cout).astype(kernel.dtype)


_conv.defvjp(_forward, _backward)
