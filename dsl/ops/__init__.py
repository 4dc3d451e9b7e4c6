"""The op catalog: every op of the spec language, declared once.

To add an op: declare its ``OpDef`` in the category module here (or a new one added
to ``_CATEGORIES``), then one lowering in ``backends/torch/ops`` and one in
``backends/jax/ops``. ``tests/test_catalog.py`` fails until all three exist, and
``tests/test_op_parity.py`` runs the op's examples through both backends.
"""

from __future__ import annotations

from types import MappingProxyType

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
from .base import FLOAT, Constant, Example, Init, Normal, OpDef, Orthogonal, ShapeError, TruncNormal, Uniform, Weight

_CATEGORIES = (linear, conv, pooling, resample, normalization, activation, reshape, dropout, embedding, merge,
               sequence, recurrent, attention, interaction, reduction)


def _register(categories) -> MappingProxyType:
    table: dict[str, OpDef] = {}
    for category in categories:
        for op in category.OPS:
            if op.name in table:
                raise ValueError(f"op '{op.name}' is declared twice (in {category.__name__})")
            table[op.name] = op
    return MappingProxyType(table)


def _group(categories) -> MappingProxyType:
    return MappingProxyType({c.__name__.rsplit(".", 1)[-1]: tuple(op.name for op in c.OPS) for c in categories})


OPS = _register(_CATEGORIES)
"""Op name -> OpDef, read-only."""

OP_GROUPS = _group(_CATEGORIES)
"""Category (the module's name: linear, conv, ...) -> its op names, in catalog order; for error messages."""

__all__ = ["OPS", "OP_GROUPS", "OpDef", "Example", "ShapeError", "Weight", "Init", "Uniform", "Constant", "Normal",
           "TruncNormal", "Orthogonal", "FLOAT"]
