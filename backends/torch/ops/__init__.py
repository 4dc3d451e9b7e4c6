"""One torch lowering per op of ``dsl.OPS``: a function from a graph node to an ``nn.Module``.

The modules are torch.nn's own, built with the node's resolved arguments, so the
lowered model is plain torch and its ``state_dict`` is the canonical format as is.
"""

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

TORCH_OPS = merge_lowerings(
    "torch", linear.LOWERINGS, conv.LOWERINGS, pooling.LOWERINGS, activation.LOWERINGS, reshape.LOWERINGS,
    dropout.LOWERINGS, embedding.LOWERINGS, normalization.LOWERINGS, merge.LOWERINGS, resample.LOWERINGS,
    sequence.LOWERINGS,
    recurrent.LOWERINGS,
    attention.LOWERINGS,
    interaction.LOWERINGS,
    reduction.LOWERINGS,
)
