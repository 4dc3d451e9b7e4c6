"""Building one-layer graphs from the op catalog's examples, for catalog-driven tests."""

from __future__ import annotations

import dsl
from dsl.ops import Example
from dsl.schema import Spec


def single_op_graph(op: str, example: Example, dtype: str = "float32") -> dsl.Graph:
    layer = {op: dict(example.params)} if example.params else op
    spec = Spec.model_validate({"name": f"{op}_example", "input": {"shape": list(example.input), "dtype": dtype},
                                "model": [layer]})
    return dsl.build_graph(spec)


def example_cases():
    """(id, op, example) for every example of every op, for pytest.mark.parametrize."""
    return [(f"{name}-{i}", name, ex) for name, op in dsl.OPS.items() for i, ex in enumerate(op.examples)]
