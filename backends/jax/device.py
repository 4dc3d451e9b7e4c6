"""Which JAX device a target runs on, and its bf16 mixed-precision policy (``backends/precision.py``).

The policy is torch autocast's where it matters for parity: float inputs, and the
parameters of the ops autocast runs in bfloat16 (``BF16_PARAM_OPS``: linear, conv,
recurrent and attention layers), are cast to bfloat16 inside the differentiated
function, so the gradients arrive in float32 through the cast and the optimizer
updates float32 weights. The weights of the ops autocast leaves alone (norms,
embeddings, biases added by their own op) stay float32, as in torch, and so does
BatchNorm's model state; BatchNorm computes its statistics in float32 (as torch's
kernel does) and returns its input's dtype. The model's outputs are cast to float32
before any loss or metric, as torch's autocast runs every loss in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax.traverse_util import flatten_dict, unflatten_dict

from ..precision import check_device, no_gpu


def resolve_device(device: str | None) -> jax.Device:
    """The first device of the platform: ``cpu``, ``cuda`` (``jax.devices('gpu')``, refused when JAX has none)
    or ``auto``/None: JAX's default backend, a GPU where it has one."""
    device = check_device(device or "auto")
    if device == "auto":
        return jax.devices()[0]
    if device == "cpu":
        return jax.devices("cpu")[0]
    try:
        return jax.devices("gpu")[0]
    except RuntimeError as err:
        raise no_gpu("JAX", f"jax.devices('gpu'): {str(err).splitlines()[0]}") from None


def device_name(device: jax.Device) -> str:
    """As summary.json records it: ``cpu``, or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.platform == "cpu":
        return "cpu"
    return f"cuda:{device.id} ({device.device_kind})"


def cast_floats(tree, dtype):
    """Every floating leaf of ``tree`` in ``dtype``; integer and bool leaves (ids, masks) unchanged."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a, tree)


BF16_PARAM_OPS = frozenset({"linear", "conv1d", "conv2d", "conv_transpose2d", "lstm", "gru", "prelu", "dot",
                            "multi_head_attention", "transformer_encoder_layer", "transformer_decoder_layer"})
"""Ops whose weights the bf16 policy casts: the ones torch autocast runs in bfloat16 (its 'lower precision' list:
linear, convolutions, matmuls, RNN cells, prelu). A transformer layer's own LayerNorms are cast with it here,
where torch keeps their float32 weights."""


def bf16_nodes(graph) -> frozenset[str]:
    return frozenset(n.name for n in graph.nodes if n.op in BF16_PARAM_OPS)


def cast_params(params, nodes: frozenset[str]):
    """The parameters of the ``nodes`` in bfloat16 (a path whose prefix names one), the others as they are."""
    flat = flatten_dict(params)
    return unflatten_dict({path: v.astype(jnp.bfloat16) if _of(path, nodes) and jnp.issubdtype(v.dtype, jnp.floating)
                           else v for path, v in flat.items()})


def _of(path: tuple[str, ...], nodes: frozenset[str]) -> bool:
    return any(".".join(path[:i]) in nodes for i in range(1, len(path)))


def mixed_apply(apply, nodes: frozenset[str]):
    """``make_apply``'s ``apply`` under the bf16 policy (see the module docstring)."""
    def run(model, params, model_state, inputs, train, rng):
        out, model_state = apply(model, cast_params(params, nodes), model_state, cast_floats(inputs, jnp.bfloat16),
                                 train, rng)
        return cast_floats(out, jnp.float32), model_state

    return run


def mixed_variables(variables: dict, nodes: frozenset[str]) -> dict:
    """Flax variables under the bf16 policy: those parameters cast, the running statistics as they are."""
    return {**variables, "params": cast_params(variables["params"], nodes)}


def mixed_model_apply(model_apply, nodes: frozenset[str]):
    """A Flax ``apply(variables, *inputs, **kwargs)`` under the bf16 policy; everything it returns (outputs,
    captured values, updated statistics) in float32."""
    def run(variables, *inputs, **kwargs):
        out = model_apply(mixed_variables(variables, nodes), *cast_floats(inputs, jnp.bfloat16), **kwargs)
        return cast_floats(out, jnp.float32)

    return run
