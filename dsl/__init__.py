"""dslc's spec language: schema, safe loading, the op catalog and shape inference.

This package imports neither torch nor jax; the backends lower the ``Graph`` it builds.

Example:
    >>> import dsl
    >>> spec, graph = dsl.load("specs/mnist_cnn.yaml")
    >>> [(n.name, str(n.output)) for n in graph.nodes][:2]
    [('conv1', '[N, 32, 26, 26]'), ('relu_1', '[N, 32, 26, 26]')]
"""

from .build import build_graph
from .errors import DataError, DivergedError, DslcError, Location, SpecError, SpecWarning, UsageError, WeightsError
from .graph import INPUT, Graph, Group, Node
from .loader import load, load_spec, loads
from .ops import OPS
from .schema import Spec, json_schema
from .tensors import TensorType
from .training import DATASETS, LOSSES, METRICS, OPTIMIZERS

__all__ = [
    "DATASETS", "INPUT", "LOSSES", "METRICS", "OPS", "OPTIMIZERS",
    "DataError", "DivergedError", "DslcError", "Graph", "Group", "Location", "Node", "Spec", "SpecError",
    "SpecWarning", "TensorType", "UsageError", "WeightsError",
    "build_graph", "json_schema", "load", "load_spec", "loads",
]
