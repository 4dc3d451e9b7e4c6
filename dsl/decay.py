"""Which weights an optimizer does not decay: its ``no_decay`` list resolved against the model's weight names.

Each entry is an fnmatch pattern over canonical (torch ``state_dict``) names, as they
appear in the weights file (``fc1.bias``, ``generator.bn1.weight``; ``*`` crosses
dots), or the shortcut ``bias_and_norm``: Hugging Face Trainer's rule (no decay on
biases and LayerNorm weights) read from the graph instead of from module classes.
It takes every weight whose own name holds ``bias`` (``bias``, ``in_proj_bias``, an
LSTM's ``bias_ih_l0``), every weight of a normalization op (``batch_norm1d``,
``batch_norm2d``, ``layer_norm``, ``group_norm``, ``instance_norm2d``) and those of the
Transformer layers' ``norm1``.. sub-layers. A name holding a dot can never be the
shortcut, so the word cannot shadow a pattern.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from .graph import Graph
from .ops import OP_GROUPS

BIAS_AND_NORM = "bias_and_norm"
_NORM_SUBLAYER = re.compile(r"^norm\d*$")


def no_decay_names(graph: Graph, optimizer) -> set[str]:
    """The trainable weights of ``graph`` its optimizer's arguments (``optimizer``) exempt from weight decay."""
    return {name for pattern in getattr(optimizer, "no_decay", None) or () for name in matching(graph, pattern)}


def matching(graph: Graph, pattern: str) -> list[str]:
    """The trainable weights one ``no_decay`` entry names, in state-dict order."""
    if pattern == BIAS_AND_NORM:
        return [f"{node.name}.{suffix}" for node in graph.nodes for suffix, weight in node.weights.items()
                if weight.trainable and _bias_or_norm(node.op, suffix)]
    return [name for name, weight in graph.state_dict_spec().items()
            if weight.trainable and fnmatchcase(name, pattern)]


def _bias_or_norm(op: str, suffix: str) -> bool:
    """A bias (its own name holds ``bias``), or a weight of a normalization layer or sub-layer."""
    *path, own = suffix.split(".")
    return "bias" in own or op in OP_GROUPS["normalization"] or any(_NORM_SUBLAYER.match(p) for p in path)
