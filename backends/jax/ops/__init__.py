"""One JAX lowering per op of ``dsl.OPS`` (a ``JaxOp``): apply, layout, and weight conversion."""

from ...tables import merge_lowerings
from . import (
    activation,
    attention,
    conv,
    dropout,
    embedding,
    interaction,
    linear,
    merge,
    normalization,
    pooling,
    recurrent,
    reduction,
    resample,
    reshape,
    sequence,
)
from .base import JaxOp

__all__ = ["JAX_OPS", "JaxOp"]

JAX_OPS = merge_lowerings(
    "JAX", linear.LOWERINGS, conv.LOWERINGS, pooling.LOWERINGS, activation.LOWERINGS, reshape.LOWERINGS,
    dropout.LOWERINGS, embedding.LOWERINGS, normalization.LOWERINGS, merge.LOWERINGS, resample.LOWERINGS,
    sequence.LOWERINGS,
    recurrent.LOWERINGS,
    attention.LOWERINGS,
    interaction.LOWERINGS,
    reduction.LOWERINGS,
)
