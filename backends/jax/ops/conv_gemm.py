"""A convolution whose weight gradient is computed as matrix products over the input's taps.

XLA's CPU backend computes a convolution's weight gradient as another convolution
over transposed copies of the output gradient, two to three times the forward's
time. Here it is matrix products that read the NHWC output gradient as it lies:

- few input values per window (the first layer of an image model: 1 or 3 channels,
  3×3; ``kh·kw·Cin <= PATCH_GEMM_MAX``): one product
  ``patches(kh·kw·Cin, N·Ho·Wo) @ dY(N·Ho·Wo, Cout)`` over the stacked taps;
- more channels: one product per tap, ``dY(N·Ho·Wo, Cout)ᵀ @ tap(N·Ho·Wo, Cin)``,
  without stacking the kh·kw taps into one large copy.

The forward pass and the input gradient stay XLA's own. Used when the
``conv_weight_grad_gemm`` pass marks a convolution; same values, same gradients
(the parity tests run both formulations). Measured on this 2-core CPU (f32, NHWC,
3×3), per-tap weight gradient against XLA's: 64 channels at 8×8, batch 128,
13.5 against 20.2 ms; 32→64 channels, stride 2, 16×16: 6.8 against 12.9 ms;
ResNet-18's 64 channels at 56×56, batch 32: 217 against 375 ms.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")

PATCH_GEMM_MAX = 27
"""Input values per window up to which the taps are stacked into one product (3×3 over RGB)."""


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
    rows = grad.reshape(n * ho * wo, cout)
    if kh * kw * cin <= PATCH_GEMM_MAX:
        patches = jnp.stack(taps).transpose(0, 4, 1, 2, 3).reshape(kh * kw * cin, n * ho * wo)
        kernel_grad = jnp.matmul(patches, rows, precision=precision).reshape(kh, kw, cin, cout)
    else:
        per_tap = [lax.dot_general(rows, tap.reshape(n * ho * wo, cin), (((0,), (0,)), ((), ())), precision=precision)
                   for tap in taps]  # each (Cout, Cin)
        kernel_grad = jnp.stack(per_tap).reshape(kh, kw, cout, cin).transpose(0, 1, 3, 2)
    _, input_vjp = jax.vjp(lambda inputs: _plain(inputs, kernel, (strides, padding, dilation, precision)),
                           residuals[0])
    return input_vjp(grad)[0], kernel_grad.astype(kernel.dtype)


_conv.defvjp(_forward, _backward)
